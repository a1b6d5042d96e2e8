//! gzip (RFC 1952) for the compressed-payload chunk 0x0010 (feature `gzip`).
//!
//! [`compress`] writes a gzip member; [`decompress`] reads gzip, and also zlib (RFC 1950)
//! streams, which some capture agents put in the same chunk. Both need `alloc` only.

use alloc::borrow::Cow;
use alloc::vec::Vec;

use crate::packet::HepPacket;

/// Why a compressed payload could not be inflated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GzipError {
    /// Neither a gzip (1f 8b 08) nor a zlib header.
    #[error("not a gzip or zlib stream")]
    BadHeader,
    /// The deflate data is corrupt or truncated.
    #[error("corrupt or truncated deflate data")]
    Corrupt,
    /// The gzip trailer's CRC-32 or length does not match the inflated data.
    #[error("gzip CRC-32 or length mismatch")]
    Checksum,
    /// Inflating would exceed the caller's size limit.
    #[error("inflated payload exceeds the {0}-byte limit")]
    TooLarge(usize),
}

const CRC_TABLE: [u32; 256] = {
    let mut t = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                0xedb8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            k += 1;
        }
        t[i] = c;
        i += 1;
    }
    t
};

/// CRC-32 (IEEE, as in gzip).
pub fn crc32(data: &[u8]) -> u32 {
    !data.iter().fold(!0u32, |c, &b| {
        CRC_TABLE[usize::from((c as u8) ^ b)] ^ (c >> 8)
    })
}

/// Compresses `data` into one gzip member (deflate level 6, no file name, OS unknown).
pub fn compress(data: &[u8]) -> Vec<u8> {
    let deflated = miniz_oxide::deflate::compress_to_vec(data, 6);
    let mut out = Vec::with_capacity(deflated.len() + 18);
    out.extend_from_slice(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff]);
    out.extend_from_slice(&deflated);
    out.extend_from_slice(&crc32(data).to_le_bytes());
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out
}

/// Inflates a gzip member or a zlib stream, refusing to produce more than `limit` bytes.
pub fn decompress(data: &[u8], limit: usize) -> Result<Vec<u8>, GzipError> {
    use miniz_oxide::inflate::{
        DecompressError, TINFLStatus, decompress_to_vec_with_limit,
        decompress_to_vec_zlib_with_limit,
    };
    let map = |e: DecompressError| match e.status {
        TINFLStatus::HasMoreOutput => GzipError::TooLarge(limit),
        _ => GzipError::Corrupt,
    };
    match data {
        [0x1f, 0x8b, 8, flags, ..] => {
            let flags = *flags;
            let mut pos = 10;
            if flags & 0x04 != 0 {
                let xlen = data.get(10..12).ok_or(GzipError::BadHeader)?;
                pos += 2 + usize::from(u16::from_le_bytes([xlen[0], xlen[1]]));
            }
            for bit in [0x08, 0x10] {
                if flags & bit != 0 {
                    let rest = data.get(pos..).ok_or(GzipError::BadHeader)?;
                    let nul = rest
                        .iter()
                        .position(|&b| b == 0)
                        .ok_or(GzipError::BadHeader)?;
                    pos += nul + 1;
                }
            }
            if flags & 0x02 != 0 {
                pos += 2;
            }
            let body_end = data.len().checked_sub(8).ok_or(GzipError::Corrupt)?;
            let body = data.get(pos..body_end).ok_or(GzipError::Corrupt)?;
            let out = decompress_to_vec_with_limit(body, limit).map_err(map)?;
            let trailer = &data[body_end..];
            let crc = u32::from_le_bytes([trailer[0], trailer[1], trailer[2], trailer[3]]);
            let size = u32::from_le_bytes([trailer[4], trailer[5], trailer[6], trailer[7]]);
            if crc != crc32(&out) || size != out.len() as u32 {
                return Err(GzipError::Checksum);
            }
            Ok(out)
        }
        [cmf, flg, ..] if cmf & 0x0f == 8 && (u16::from(*cmf) << 8 | u16::from(*flg)) % 31 == 0 => {
            decompress_to_vec_zlib_with_limit(data, limit).map_err(map)
        }
        _ => Err(GzipError::BadHeader),
    }
}

impl<'a> HepPacket<'a> {
    /// The payload in clear: chunk 0x000f as is, else chunk 0x0010 inflated (at most
    /// `limit` bytes). `None` when the packet has no payload.
    pub fn inflated_payload(&self, limit: usize) -> Option<Result<Cow<'a, [u8]>, GzipError>> {
        if let Some(p) = self.payload {
            return Some(Ok(Cow::Borrowed(p)));
        }
        let c = self.compressed_payload?;
        Some(decompress(c, limit).map(Cow::Owned))
    }
}
