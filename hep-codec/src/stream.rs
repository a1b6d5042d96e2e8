//! HEP over TCP/TLS: HEPv3 packets back to back, split by their 16-bit total length.

use bytes::{Bytes, BytesMut};

use crate::error::{DecodeError, DecodeErrorKind};

/// Length of the HEPv3 packet at the start of `buf`: `Ok(Some(n))` when `buf` holds at least
/// the 6-byte header (the packet is complete once `buf.len() >= n`), `Ok(None)` when more
/// bytes are needed to know, `Err` when the bytes cannot start a HEPv3 packet.
pub fn frame_len(buf: &[u8]) -> Result<Option<usize>, DecodeError> {
    for (i, (&got, &want)) in buf.iter().zip(b"HEP3").enumerate() {
        if got != want {
            return Err(DecodeError::new(
                i,
                DecodeErrorKind::UnknownVersion { found: got },
            ));
        }
    }
    let [_, _, _, _, l0, l1, ..] = *buf else {
        return Ok(None);
    };
    let total = usize::from(u16::from_be_bytes([l0, l1]));
    if total < 6 {
        return Err(DecodeError::new(
            4,
            DecodeErrorKind::LengthMismatch {
                declared: total,
                actual: buf.len(),
            },
        ));
    }
    Ok(Some(total))
}

/// Splits a byte stream into HEPv3 packets, however the stream is cut into reads.
///
/// Feed bytes with [`StreamDecoder::push`], take whole packets with
/// [`StreamDecoder::next_frame`] (zero-copy [`Bytes`], ready for [`crate::HepPacket::decode`]).
/// After an error the stream is out of sync: close the connection. Error offsets count from
/// the start of the stream.
#[derive(Debug, Default)]
pub struct StreamDecoder {
    buf: BytesMut,
    consumed: usize,
}

impl StreamDecoder {
    /// An empty decoder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends received bytes.
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// Bytes buffered and not yet returned as a frame.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// The next complete packet, `Ok(None)` if more bytes are needed.
    pub fn next_frame(&mut self) -> Result<Option<Bytes>, DecodeError> {
        let Some(n) = frame_len(&self.buf).map_err(|e| e.shifted(self.consumed))? else {
            return Ok(None);
        };
        if self.buf.len() < n {
            return Ok(None);
        }
        self.consumed += n;
        Ok(Some(self.buf.split_to(n).freeze()))
    }
}
