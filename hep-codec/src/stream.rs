//! HEP packets back to back, split by the HEPv3 16-bit total length: in a stream read piece
//! by piece (HEP over TCP/TLS, [`StreamDecoder`]) or in one buffer (a capture file,
//! [`Packets`]).

use core::iter::FusedIterator;

use bytes::{Bytes, BytesMut};

use crate::decode::Mode;
use crate::error::{DecodeError, DecodeErrorKind};
use crate::packet::HepPacket;
use crate::types::Version;

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

/// The HEP packets of one buffer holding them back to back (a capture file, a stream read
/// whole), decoded one by one.
///
/// HEPv3 packets are split by their total length. A HEPv1/v2 packet has no length field: it
/// extends to the end of the buffer (one per buffer, or the last one).
///
/// A packet that is framed right but does not decode is an `Err` item, and the next packet
/// follows. Broken framing (bytes that start no packet, a length below 6 or past the end of
/// the buffer) is the last item: what follows cannot be found. Error offsets count from the
/// start of the buffer.
///
/// ```
/// use hep_codec::{DecodeErrorKind, HepPacket, Mode, Packets, Timestamp, Transport};
///
/// // One SIP message as a HEPv3 packet.
/// let hep = |sip: &[u8]| {
///     let mut out = Vec::new();
///     HepPacket::sip(
///         "192.0.2.1:5060".parse().unwrap(),
///         "192.0.2.2:5060".parse().unwrap(),
///         Transport::Udp,
///         Timestamp::new(1_700_000_000, 0),
///         sip,
///     )
///     .encode(&mut out)
///     .unwrap();
///     out
/// };
/// let options = hep(b"OPTIONS sip:bob@example.com SIP/2.0\r\n\r\n");
/// let ok = hep(b"SIP/2.0 200 OK\r\n\r\n");
/// // Two packets back to back, as `sip-proxy hep encode --out FILE` writes them.
/// let file = [options.as_slice(), ok.as_slice()].concat();
///
/// let packets: Vec<HepPacket<'_>> = Packets::new(&file, Mode::Strict)
///     .collect::<Result<_, _>>()
///     .unwrap();
/// assert_eq!(packets.len(), 2);
/// assert_eq!(packets[1].payload, Some(&b"SIP/2.0 200 OK\r\n\r\n"[..]));
///
/// // Cut one byte short: the first packet still decodes; the second is reported truncated,
/// // at its offset in the file, and is the last item.
/// let mut items = Packets::new(&file[..file.len() - 1], Mode::Strict);
/// assert!(items.next().unwrap().is_ok());
/// let err = items.next().unwrap().unwrap_err();
/// assert_eq!(err.offset(), options.len());
/// assert_eq!(
///     err.kind(),
///     DecodeErrorKind::Truncated { needed: ok.len(), available: ok.len() - 1 }
/// );
/// assert!(items.next().is_none());
/// ```
#[derive(Debug, Clone)]
pub struct Packets<'a> {
    buf: &'a [u8],
    pos: usize,
    mode: Mode,
}

impl<'a> Packets<'a> {
    /// The packets of `buf`, decoded in `mode`.
    pub const fn new(buf: &'a [u8], mode: Mode) -> Self {
        Self { buf, pos: 0, mode }
    }

    /// Offset of the next packet in the buffer (the buffer's length once done).
    pub const fn offset(&self) -> usize {
        self.pos
    }

    /// The length of the packet at the start of `rest`, or why it cannot be framed.
    fn frame(rest: &[u8]) -> Result<usize, DecodeError> {
        if Version::sniff(rest)? != Version::V3 {
            return Ok(rest.len());
        }
        let needed = frame_len(rest)?.unwrap_or(6);
        if needed > rest.len() {
            return Err(DecodeError::new(
                0,
                DecodeErrorKind::Truncated {
                    needed,
                    available: rest.len(),
                },
            ));
        }
        Ok(needed)
    }
}

impl<'a> Iterator for Packets<'a> {
    type Item = Result<HepPacket<'a>, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        let start = self.pos;
        let rest = self.buf.get(start..).filter(|r| !r.is_empty())?;
        let len = match Self::frame(rest) {
            Ok(len) => len,
            Err(e) => {
                self.pos = self.buf.len();
                return Some(Err(e.shifted(start)));
            }
        };
        self.pos = start + len;
        Some(HepPacket::decode_with(&rest[..len], self.mode).map_err(|e| e.shifted(start)))
    }
}

impl FusedIterator for Packets<'_> {}
