//! Decoding HEPv1, HEPv2 and HEPv3 from a byte slice, without copying.

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::chunk::{self, RawChunk};
use crate::error::{DecodeError, DecodeErrorKind as Kind};
use alloc::vec::Vec;

use crate::packet::{CHUNK_ORDER_CAPACITY, ChunkOrder, HepPacket};
use crate::types::{AddressFamily, IpProto, ProtoType, Version};

/// How strict the decoder is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// What Kamailio's sipcapture accepts: bytes after the HEPv3 total length are ignored,
    /// the HEPv1/v2 header length byte is not checked,
    /// fixed-size chunks of an odd size are kept raw in [`HepPacket::extra`], and a packet
    /// needs both addresses and at least 9 of the 11 core chunks (family, protocol, two
    /// addresses, two ports, seconds, microseconds, protocol type, capture id, payload).
    /// Unlike Kamailio it still rejects chunks shorter than 6 bytes or past the end.
    #[default]
    Lenient,
    /// What heplify-server accepts: the total length equals the buffer length (HEPv1/v2: the
    /// header length byte is 16/40, or 28/52 with the v2 time block), the
    /// fixed-size types heplify-server checks have their exact size, and all 11 core chunks
    /// are present (the payload may be the compressed one).
    Strict,
}

/// The 11 core chunks, in the order they are reported missing.
const CORE: [u16; 11] = [
    chunk::IP_FAMILY,
    chunk::IP_PROTO,
    chunk::IPV4_SRC,
    chunk::IPV4_DST,
    chunk::SRC_PORT,
    chunk::DST_PORT,
    chunk::TS_SEC,
    chunk::TS_USEC,
    chunk::PROTO_TYPE,
    chunk::CAPTURE_ID,
    chunk::PAYLOAD,
];

impl<'a> HepPacket<'a> {
    /// Decodes one HEP packet (v1, v2 or v3, detected from the first bytes) in
    /// [`Mode::Lenient`].
    pub fn decode(buf: &'a [u8]) -> Result<Self, DecodeError> {
        Self::decode_with(buf, Mode::Lenient)
    }

    /// Decodes one HEP packet in the given mode. `buf` is one datagram (or one frame from
    /// [`crate::StreamDecoder`]).
    #[inline]
    pub fn decode_with(buf: &'a [u8], mode: Mode) -> Result<Self, DecodeError> {
        match Version::sniff(buf)? {
            Version::V3 => decode_v3(buf, mode),
            Version::V1 | Version::V2 => decode_v12(buf, mode),
        }
    }
}

/// The first `N` bytes of `v` (zeros if shorter; callers check sizes first).
fn arr<const N: usize>(v: &[u8]) -> [u8; N] {
    v.get(..N)
        .and_then(|s| <[u8; N]>::try_from(s).ok())
        .unwrap_or([0; N])
}

fn be16(v: &[u8]) -> u16 {
    u16::from_be_bytes(arr(v))
}

fn be32(v: &[u8]) -> u32 {
    u32::from_be_bytes(arr(v))
}

fn le32(v: &[u8]) -> u32 {
    u32::from_le_bytes(arr(v))
}

fn ipv4(v: &[u8]) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(arr::<4>(v)))
}

fn ipv6(v: &[u8]) -> IpAddr {
    IpAddr::V6(Ipv6Addr::from(arr::<16>(v)))
}

#[inline]
fn decode_v3(buf: &[u8], mode: Mode) -> Result<HepPacket<'_>, DecodeError> {
    if buf.len() < 6 {
        return Err(DecodeError::new(
            0,
            Kind::Truncated {
                needed: 6,
                available: buf.len(),
            },
        ));
    }
    let total = usize::from(be16(&buf[4..6]));
    let bad_len = match mode {
        Mode::Strict => total != buf.len(),
        Mode::Lenient => total > buf.len(),
    };
    if bad_len || total < 6 {
        return Err(DecodeError::new(
            4,
            Kind::LengthMismatch {
                declared: total,
                actual: buf.len(),
            },
        ));
    }
    let mut p = HepPacket::default();
    // One bit per filled typed field (see `slot_bit`): repeated chunks and the mandatory
    // check read this instead of the fields.
    let mut seen: u64 = 0;
    // The chunk order, kept apart from `p` so that its length stays in a register.
    let mut ids = [0u8; CHUNK_ORDER_CAPACITY];
    let mut n_ids = 0usize;
    let mut record = |id: u8| {
        if let Some(slot) = ids.get_mut(n_ids) {
            *slot = id;
        }
        n_ids += 1;
    };
    let mut rest = buf.get(6..total).unwrap_or_default();
    while !rest.is_empty() {
        let pos = total - rest.len();
        let [v0, v1, t0, t1, l0, l1, ..] = *rest else {
            return Err(DecodeError::new(
                pos,
                Kind::ChunkOverrun {
                    length: 6,
                    remaining: rest.len(),
                },
            ));
        };
        let length = usize::from(u16::from_be_bytes([l0, l1]));
        if length < 6 {
            return Err(DecodeError::new(pos, Kind::ChunkTooShort { length }));
        }
        let (Some(value), Some(next)) = (rest.get(6..length), rest.get(length..)) else {
            return Err(DecodeError::new(
                pos,
                Kind::ChunkOverrun {
                    length,
                    remaining: rest.len(),
                },
            ));
        };
        let vendor = u16::from_be_bytes([v0, v1]);
        let chunk_type = u16::from_be_bytes([t0, t1]);
        if vendor == chunk::VENDOR_GENERIC
            && store_generic(&mut p, &mut seen, pos, chunk_type, value, mode)?
        {
            // Stored generic types are all below 0x2a, so the id is the low byte.
            record(t1);
        } else {
            record(ChunkOrder::EXTRA_MARK);
            push_extra(
                &mut p.extra,
                RawChunk {
                    vendor,
                    chunk_type,
                    value,
                },
            );
        }
        rest = next;
    }
    check_mandatory(seen, total, mode)?;
    Ok(HepPacket {
        order: ChunkOrder::from_recorded(ids, n_ids),
        ..p
    })
}

/// Out of line: keeps the vector's growth path out of the chunk loop's registers.
#[inline(never)]
fn push_extra<'a>(extra: &mut Vec<RawChunk<'a>>, raw: RawChunk<'a>) {
    extra.push(raw);
}

/// The bit of `seen` for the typed field chunk type `ty` fills: the type id itself, except
/// that the IPv6 addresses share the IPv4 addresses' fields.
const fn slot_bit(ty: u16) -> u64 {
    let slot = match ty {
        chunk::IPV6_SRC => chunk::IPV4_SRC,
        chunk::IPV6_DST => chunk::IPV4_DST,
        t => t,
    };
    1 << slot
}

/// Puts a generic chunk into its field (one `match` on the type, which also knows the fixed
/// value size). `Ok(false)`: keep it raw (unknown type, repeated type, tolerated odd size).
#[inline(always)]
fn store_generic<'a>(
    p: &mut HepPacket<'a>,
    seen: &mut u64,
    offset: usize,
    ty: u16,
    v: &'a [u8],
    mode: Mode,
) -> Result<bool, DecodeError> {
    // Fills `field` unless an earlier chunk already did.
    macro_rules! put {
        ($ty:expr, $field:ident, $val:expr) => {{
            const BIT: u64 = slot_bit($ty);
            if *seen & BIT == 0 {
                *seen |= BIT;
                p.$field = Some($val);
                true
            } else {
                false
            }
        }};
    }
    // A fixed-size type: the size comes from `chunk::fixed_size` at compile time.
    macro_rules! fixed {
        ($ty:expr, $field:ident, |$a:ident| $val:expr) => {{
            const N: usize = match chunk::fixed_size($ty) {
                Some(n) => n,
                None => panic!("not a fixed-size chunk type"),
            };
            match <[u8; N]>::try_from(v) {
                Ok($a) => put!($ty, $field, $val),
                Err(_) => return odd_size(offset, ty, N, v.len(), mode),
            }
        }};
    }
    Ok(match ty {
        0 => return Err(DecodeError::new(offset, Kind::ReservedChunkType)),
        chunk::IP_FAMILY => fixed!(chunk::IP_FAMILY, family, |a| AddressFamily(a[0])),
        chunk::IP_PROTO => fixed!(chunk::IP_PROTO, ip_proto, |a| IpProto(a[0])),
        chunk::IPV4_SRC => fixed!(chunk::IPV4_SRC, src_addr, |a| IpAddr::V4(Ipv4Addr::from(a))),
        chunk::IPV4_DST => fixed!(chunk::IPV4_DST, dst_addr, |a| IpAddr::V4(Ipv4Addr::from(a))),
        chunk::IPV6_SRC => fixed!(chunk::IPV6_SRC, src_addr, |a| IpAddr::V6(Ipv6Addr::from(a))),
        chunk::IPV6_DST => fixed!(chunk::IPV6_DST, dst_addr, |a| IpAddr::V6(Ipv6Addr::from(a))),
        chunk::SRC_PORT => fixed!(chunk::SRC_PORT, src_port, |a| u16::from_be_bytes(a)),
        chunk::DST_PORT => fixed!(chunk::DST_PORT, dst_port, |a| u16::from_be_bytes(a)),
        chunk::TS_SEC => fixed!(chunk::TS_SEC, ts_sec, |a| u32::from_be_bytes(a)),
        chunk::TS_USEC => fixed!(chunk::TS_USEC, ts_usec, |a| u32::from_be_bytes(a)),
        chunk::PROTO_TYPE => fixed!(chunk::PROTO_TYPE, proto_type, |a| ProtoType(a[0])),
        chunk::CAPTURE_ID => fixed!(chunk::CAPTURE_ID, capture_id, |a| u32::from_be_bytes(a)),
        chunk::KEEP_ALIVE => fixed!(chunk::KEEP_ALIVE, keep_alive, |a| u16::from_be_bytes(a)),
        chunk::AUTH_KEY => put!(chunk::AUTH_KEY, auth_key, v),
        chunk::PAYLOAD => put!(chunk::PAYLOAD, payload, v),
        chunk::COMPRESSED_PAYLOAD => put!(chunk::COMPRESSED_PAYLOAD, compressed_payload, v),
        chunk::CORRELATION_ID => put!(chunk::CORRELATION_ID, correlation_id, v),
        chunk::VLAN => fixed!(chunk::VLAN, vlan, |a| u16::from_be_bytes(a)),
        chunk::NODE_NAME => put!(chunk::NODE_NAME, node_name, v),
        chunk::SRC_MAC => fixed!(chunk::SRC_MAC, src_mac, |a| u64::from_be_bytes(a)),
        chunk::DST_MAC => fixed!(chunk::DST_MAC, dst_mac, |a| u64::from_be_bytes(a)),
        chunk::ETH_TYPE => fixed!(chunk::ETH_TYPE, eth_type, |a| u16::from_be_bytes(a)),
        chunk::TCP_FLAGS => fixed!(chunk::TCP_FLAGS, tcp_flags, |a| a[0]),
        chunk::IP_TOS => fixed!(chunk::IP_TOS, ip_tos, |a| a[0]),
        chunk::MOS => fixed!(chunk::MOS, mos, |a| u16::from_be_bytes(a)),
        chunk::R_FACTOR => fixed!(chunk::R_FACTOR, r_factor, |a| u16::from_be_bytes(a)),
        chunk::GEO_LOCATION => put!(chunk::GEO_LOCATION, geo_location, v),
        chunk::JITTER => fixed!(chunk::JITTER, jitter, |a| u32::from_be_bytes(a)),
        chunk::TRANSACTION_TYPE => put!(chunk::TRANSACTION_TYPE, transaction_type, v),
        chunk::PAYLOAD_JSON_KEYS => put!(chunk::PAYLOAD_JSON_KEYS, payload_json_keys, v),
        chunk::TAGS_VALUES => put!(chunk::TAGS_VALUES, tags_values, v),
        chunk::TAG_TYPE => fixed!(chunk::TAG_TYPE, tag_type, |a| u16::from_be_bytes(a)),
        chunk::EVENT_TYPE => fixed!(chunk::EVENT_TYPE, event_type, |a| u16::from_be_bytes(a)),
        chunk::GROUP_ID => put!(chunk::GROUP_ID, group_id, v),
        _ => false,
    })
}

/// A fixed-size chunk of another size: an error in strict mode for the sizes heplify-server
/// enforces, else kept raw.
#[cold]
#[inline(never)]
fn odd_size(
    offset: usize,
    chunk_type: u16,
    expected: usize,
    found: usize,
    mode: Mode,
) -> Result<bool, DecodeError> {
    if mode == Mode::Strict && chunk::size_enforced(chunk_type) {
        return Err(DecodeError::new(
            offset,
            Kind::BadChunkSize {
                chunk_type,
                expected,
                found,
            },
        ));
    }
    Ok(false)
}

/// `seen` bits of the core chunks, the payload standing for "payload or compressed payload".
const CORE_MASK: u64 = {
    let mut m = 0;
    let mut i = 0;
    while i < CORE.len() {
        m |= slot_bit(CORE[i]);
        i += 1;
    }
    m
};

/// The core chunks present, with the compressed payload counted as the payload.
const fn core_present(seen: u64) -> u64 {
    let compressed = (seen >> chunk::COMPRESSED_PAYLOAD) & 1;
    (seen | compressed << chunk::PAYLOAD) & CORE_MASK
}

#[inline]
fn check_mandatory(seen: u64, end: usize, mode: Mode) -> Result<(), DecodeError> {
    if core_present(seen) == CORE_MASK {
        Ok(())
    } else {
        incomplete(seen, end, mode)
    }
}

/// [`check_mandatory`] for a packet without all 11 core chunks.
#[cold]
#[inline(never)]
fn incomplete(seen: u64, end: usize, mode: Mode) -> Result<(), DecodeError> {
    let present = core_present(seen);
    let has = |i: usize| present & slot_bit(CORE[i]) != 0;
    let missing = |i: usize| {
        DecodeError::new(
            end,
            Kind::MissingChunk {
                chunk_type: CORE[i],
            },
        )
    };
    let first_missing = (0..CORE.len()).find(|&i| !has(i));
    match mode {
        Mode::Strict => first_missing.map_or(Ok(()), |i| Err(missing(i))),
        Mode::Lenient => {
            if !has(2) {
                return Err(missing(2));
            }
            if !has(3) {
                return Err(missing(3));
            }
            match first_missing {
                Some(i) if present.count_ones() < 9 => Err(missing(i)),
                _ => Ok(()),
            }
        }
    }
}

fn decode_v12(buf: &[u8], mode: Mode) -> Result<HepPacket<'_>, DecodeError> {
    let [version, hlen, family, proto, s0, s1, d0, d1, ..] = *buf else {
        return Err(DecodeError::new(
            0,
            Kind::Truncated {
                needed: 8,
                available: buf.len(),
            },
        ));
    };
    let addr_len = match family {
        2 => 4,
        10 => 16,
        found => return Err(DecodeError::new(2, Kind::UnsupportedFamily { found })),
    };
    let base = 8 + 2 * addr_len;
    let hl = usize::from(hlen);
    // The layout follows from the family alone; like Kamailio, lenient mode does not look at
    // the length byte (sngrep 1.6's HEPv2 sender fills it with the high byte of the total
    // length).
    let ok = hl == base || (version == 2 && hl == base + 12);
    if !ok && mode == Mode::Strict {
        return Err(DecodeError::new(
            1,
            Kind::BadHeaderLength {
                version,
                found: hlen,
            },
        ));
    }
    let Some(addrs) = buf.get(8..base) else {
        return Err(DecodeError::new(
            8,
            Kind::Truncated {
                needed: 2 * addr_len,
                available: buf.len() - 8,
            },
        ));
    };
    let (src, dst) = addrs.split_at(addr_len);
    let (src, dst) = if addr_len == 4 {
        (ipv4(src), ipv4(dst))
    } else {
        (ipv6(src), ipv6(dst))
    };
    let mut p = HepPacket {
        version: if version == 1 {
            Version::V1
        } else {
            Version::V2
        },
        family: Some(AddressFamily(family)),
        ip_proto: Some(IpProto(proto)),
        src_addr: Some(src),
        dst_addr: Some(dst),
        src_port: Some(u16::from_be_bytes([s0, s1])),
        dst_port: Some(u16::from_be_bytes([d0, d1])),
        ..HepPacket::default()
    };
    let mut pos = base;
    if version == 2 {
        let Some(t) = buf.get(base..base + 12) else {
            return Err(DecodeError::new(
                base,
                Kind::Truncated {
                    needed: 12,
                    available: buf.len() - base,
                },
            ));
        };
        // Senders write host order (little-endian on x86; Kamailio forces LE). Fall back to
        // big-endian when only that reading gives a valid microsecond value.
        let (mut sec, mut usec) = (le32(&t[0..4]), le32(&t[4..8]));
        if usec >= 1_000_000 && be32(&t[4..8]) < 1_000_000 {
            (sec, usec) = (be32(&t[0..4]), be32(&t[4..8]));
        }
        p.ts_sec = Some(sec);
        p.ts_usec = Some(usec);
        p.capture_id = Some(u32::from(u16::from_le_bytes([t[8], t[9]])));
        pos += 12;
    }
    p.payload = Some(&buf[pos..]);
    Ok(p)
}
