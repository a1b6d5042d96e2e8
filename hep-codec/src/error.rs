//! Typed errors. A decode error says what was wrong ([`DecodeErrorKind`]) and where (the byte
//! offset, kept once in [`DecodeError`]).

/// A malformed HEP packet (or stream): what is wrong, and the byte offset of the offending
/// field, relative to the start of the packet (of the stream for [`crate::StreamDecoder`], of
/// the buffer for [`crate::Packets`]).
///
/// ```
/// use hep_codec::{DecodeErrorKind, HepPacket};
///
/// let err = HepPacket::decode(b"HEP3\x00\x05").unwrap_err();
/// assert_eq!(err.offset(), 4);
/// assert_eq!(err.kind(), DecodeErrorKind::LengthMismatch { declared: 5, actual: 6 });
/// assert_eq!(
///     err.to_string(),
///     "at offset 4: HEPv3 total length 5 does not match the 6 bytes received"
/// );
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("at offset {offset}: {kind}")]
pub struct DecodeError {
    offset: usize,
    kind: DecodeErrorKind,
}

impl DecodeError {
    /// An error of `kind` found at byte `offset`.
    pub const fn new(offset: usize, kind: DecodeErrorKind) -> Self {
        Self { offset, kind }
    }

    /// Byte offset of the problem.
    pub const fn offset(&self) -> usize {
        self.offset
    }

    /// What the problem is.
    pub const fn kind(&self) -> DecodeErrorKind {
        self.kind
    }

    /// The same error with its offset moved by `base`: an error of a packet found at `base` in
    /// a larger buffer or stream.
    #[must_use]
    pub const fn shifted(self, base: usize) -> Self {
        Self {
            offset: self.offset.saturating_add(base),
            kind: self.kind,
        }
    }
}

/// What is wrong with a malformed HEP packet (the offset is in [`DecodeError`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeErrorKind {
    /// The buffer ends before a fixed-size header or block (or, in a buffer of packets, before
    /// the packet its header announces).
    #[error("truncated: need {needed} bytes, have {available}")]
    Truncated {
        /// Bytes needed from the offset.
        needed: usize,
        /// Bytes available from the offset.
        available: usize,
    },
    /// Neither `HEP3` nor a version byte 1 or 2.
    #[error("not a HEP packet: byte 0x{found:02x}")]
    UnknownVersion {
        /// The byte found.
        found: u8,
    },
    /// HEPv3 total length field (offset 4) does not match the buffer.
    #[error("HEPv3 total length {declared} does not match the {actual} bytes received")]
    LengthMismatch {
        /// The length the header declares.
        declared: usize,
        /// The bytes actually available.
        actual: usize,
    },
    /// A chunk header declares a length below the 6-byte chunk header itself.
    #[error("chunk length {length} is below the 6-byte chunk header")]
    ChunkTooShort {
        /// Its declared length.
        length: usize,
    },
    /// A chunk (or its 6-byte header) runs past the end of the packet.
    #[error("chunk of length {length} runs past the packet end ({remaining} bytes left)")]
    ChunkOverrun {
        /// Its declared length (or 6 when the chunk header itself does not fit).
        length: usize,
        /// Bytes left in the packet from the chunk's offset.
        remaining: usize,
    },
    /// A fixed-size generic chunk has the wrong value size (strict mode).
    #[error("chunk type 0x{chunk_type:04x} has a {found}-byte value, expected {expected}")]
    BadChunkSize {
        /// Generic chunk type.
        chunk_type: u16,
        /// Expected value size.
        expected: usize,
        /// Value size found.
        found: usize,
    },
    /// Generic chunk type 0 (reserved; Kamailio rejects it too).
    #[error("reserved generic chunk type 0")]
    ReservedChunkType,
    /// A chunk the mode requires is absent. The offset is the end of the packet.
    #[error("mandatory chunk type 0x{chunk_type:04x} missing before the packet end")]
    MissingChunk {
        /// The first missing chunk type.
        chunk_type: u16,
    },
    /// HEPv1/v2 header length byte (offset 1) is not 16/40 (v2 also 28/52).
    #[error("HEPv{version} header length {found} is invalid for this address family")]
    BadHeaderLength {
        /// 1 or 2.
        version: u8,
        /// The length byte found.
        found: u8,
    },
    /// HEPv1/v2 address family (offset 2) is neither 2 (IPv4) nor 10 (IPv6).
    #[error("unsupported address family {found}")]
    UnsupportedFamily {
        /// The family byte found.
        found: u8,
    },
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
    /// HEPv1/v2 have no compressed-payload field: only HEPv3 carries one (chunk 0x0010).
    #[error("a compressed payload needs HEPv3 (chunk 0x0010); HEPv1/v2 cannot carry it")]
    CompressedPayloadNeedsV3,
}
