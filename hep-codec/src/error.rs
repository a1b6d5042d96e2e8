//! Typed errors. Every decode error carries the byte offset where the problem was found.

/// A malformed HEP packet (or stream). `offset` is the byte offset of the offending field,
/// relative to the start of the packet (or of the stream for [`crate::StreamDecoder`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The buffer ends before a fixed-size header or block.
    #[error("truncated at offset {offset}: need {needed} more bytes, have {available}")]
    Truncated {
        /// Offset of the header or block that does not fit.
        offset: usize,
        /// Bytes needed from `offset`.
        needed: usize,
        /// Bytes available from `offset`.
        available: usize,
    },
    /// Neither `HEP3` nor a version byte 1 or 2.
    #[error("not a HEP packet at offset {offset}: first byte 0x{found:02x}")]
    UnknownVersion {
        /// Offset of the version byte.
        offset: usize,
        /// The byte found.
        found: u8,
    },
    /// HEPv3 total length field (offset 4) does not match the buffer.
    #[error(
        "HEPv3 total length {declared} at offset {offset} does not match the {actual} bytes received"
    )]
    LengthMismatch {
        /// Offset of the length field.
        offset: usize,
        /// The length the header declares.
        declared: usize,
        /// The bytes actually available.
        actual: usize,
    },
    /// A chunk header declares a length below the 6-byte chunk header itself.
    #[error("chunk at offset {offset} has length {length} (< 6)")]
    ChunkTooShort {
        /// Offset of the chunk.
        offset: usize,
        /// Its declared length.
        length: usize,
    },
    /// A chunk (or its 6-byte header) runs past the end of the packet.
    #[error(
        "chunk at offset {offset} with length {length} runs past the packet end ({remaining} bytes left)"
    )]
    ChunkOverrun {
        /// Offset of the chunk.
        offset: usize,
        /// Its declared length (or 6 when the chunk header itself does not fit).
        length: usize,
        /// Bytes left in the packet from `offset`.
        remaining: usize,
    },
    /// A fixed-size generic chunk has the wrong value size (strict mode).
    #[error(
        "chunk type 0x{chunk_type:04x} at offset {offset} has a {found}-byte value, expected {expected}"
    )]
    BadChunkSize {
        /// Offset of the chunk.
        offset: usize,
        /// Generic chunk type.
        chunk_type: u16,
        /// Expected value size.
        expected: usize,
        /// Value size found.
        found: usize,
    },
    /// Generic chunk type 0 (reserved; Kamailio rejects it too).
    #[error("reserved generic chunk type 0 at offset {offset}")]
    ReservedChunkType {
        /// Offset of the chunk.
        offset: usize,
    },
    /// A chunk the mode requires is absent. `offset` is the end of the packet.
    #[error("mandatory chunk type 0x{chunk_type:04x} missing (packet ends at offset {offset})")]
    MissingChunk {
        /// End of the packet.
        offset: usize,
        /// The first missing chunk type.
        chunk_type: u16,
    },
    /// HEPv1/v2 header length byte (offset 1) is not 16/40 (v2 also 28/52).
    #[error(
        "HEPv{version} header length {found} at offset {offset} is invalid for this address family"
    )]
    BadHeaderLength {
        /// Offset of the length byte.
        offset: usize,
        /// 1 or 2.
        version: u8,
        /// The length byte found.
        found: u8,
    },
    /// HEPv1/v2 address family (offset 2) is neither 2 (IPv4) nor 10 (IPv6).
    #[error("unsupported address family {found} at offset {offset}")]
    UnsupportedFamily {
        /// Offset of the family byte.
        offset: usize,
        /// The family byte found.
        found: u8,
    },
}

impl DecodeError {
    /// Byte offset of the problem.
    pub fn offset(&self) -> usize {
        match *self {
            Self::Truncated { offset, .. }
            | Self::UnknownVersion { offset, .. }
            | Self::LengthMismatch { offset, .. }
            | Self::ChunkTooShort { offset, .. }
            | Self::ChunkOverrun { offset, .. }
            | Self::BadChunkSize { offset, .. }
            | Self::ReservedChunkType { offset }
            | Self::MissingChunk { offset, .. }
            | Self::BadHeaderLength { offset, .. }
            | Self::UnsupportedFamily { offset, .. } => offset,
        }
    }

    /// The same error with `offset` moved by `base` (used by the stream decoder).
    #[must_use]
    pub fn shifted(mut self, base: usize) -> Self {
        match &mut self {
            Self::Truncated { offset, .. }
            | Self::UnknownVersion { offset, .. }
            | Self::LengthMismatch { offset, .. }
            | Self::ChunkTooShort { offset, .. }
            | Self::ChunkOverrun { offset, .. }
            | Self::BadChunkSize { offset, .. }
            | Self::ReservedChunkType { offset }
            | Self::MissingChunk { offset, .. }
            | Self::BadHeaderLength { offset, .. }
            | Self::UnsupportedFamily { offset, .. } => *offset = offset.saturating_add(base),
        }
        self
    }
}

/// Why a packet could not be encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// The encoded packet would exceed the 65535-byte HEPv3 limit (or a chunk its 65535 limit).
    #[error("encoded packet would be {length} bytes, more than HEP's 65535 limit")]
    TooLong {
        /// Length the packet (or chunk) would have.
        length: usize,
    },
    /// The destination buffer has less room than the encoded packet needs.
    #[error("buffer has room for {available} bytes, packet needs {needed}")]
    BufferTooSmall {
        /// Bytes needed.
        needed: usize,
        /// Bytes of room in the buffer.
        available: usize,
    },
    /// HEPv1/v2 need this field (addresses and ports are in the fixed header).
    #[error("HEPv1/v2 encoding needs the {0} field")]
    MissingField(&'static str),
    /// HEPv1/v2 need both addresses of the same family.
    #[error("HEPv1/v2 encoding needs source and destination of the same address family")]
    MixedAddressFamilies,
    /// HEPv2 carries a 16-bit capture id.
    #[error("capture id {0} does not fit HEPv2's 16-bit field")]
    CaptureIdTooLarge(u32),
}
