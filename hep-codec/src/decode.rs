//! Decoding HEPv1, HEPv2 and HEPv3 from a byte slice, without copying.

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::DecodeError;
use crate::chunk::{self, RawChunk};
use crate::packet::{HepPacket, OrderEntry};
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
        match buf {
            [b'H', b'E', b'P', b'3', ..] => decode_v3(buf, mode),
            [1 | 2, ..] => decode_v12(buf, mode),
            [] => Err(DecodeError::Truncated {
                offset: 0,
                needed: 1,
                available: 0,
            }),
            [b, ..] => Err(DecodeError::UnknownVersion {
                offset: 0,
                found: *b,
            }),
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

fn be64(v: &[u8]) -> u64 {
    u64::from_be_bytes(arr(v))
}

fn ipv4(v: &[u8]) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(arr::<4>(v)))
}

fn ipv6(v: &[u8]) -> IpAddr {
    IpAddr::V6(Ipv6Addr::from(arr::<16>(v)))
}

/// Stores `v` in an empty slot; a filled slot means a repeated chunk (kept raw).
fn set<T>(slot: &mut Option<T>, v: T) -> bool {
    if slot.is_some() {
        return false;
    }
    *slot = Some(v);
    true
}

#[inline]
fn decode_v3(buf: &[u8], mode: Mode) -> Result<HepPacket<'_>, DecodeError> {
    if buf.len() < 6 {
        return Err(DecodeError::Truncated {
            offset: 0,
            needed: 6,
            available: buf.len(),
        });
    }
    let total = usize::from(be16(&buf[4..6]));
    let bad_len = match mode {
        Mode::Strict => total != buf.len(),
        Mode::Lenient => total > buf.len(),
    };
    if bad_len || total < 6 {
        return Err(DecodeError::LengthMismatch {
            offset: 4,
            declared: total,
            actual: buf.len(),
        });
    }
    let packet = &buf[..total];
    let mut p = HepPacket::default();
    let mut pos = 6;
    while let Some(rest) = packet.get(pos..).filter(|r| !r.is_empty()) {
        let [v0, v1, t0, t1, l0, l1, ..] = *rest else {
            return Err(DecodeError::ChunkOverrun {
                offset: pos,
                length: 6,
                remaining: rest.len(),
            });
        };
        let length = usize::from(u16::from_be_bytes([l0, l1]));
        if length < 6 {
            return Err(DecodeError::ChunkTooShort {
                offset: pos,
                length,
            });
        }
        let Some(value) = rest.get(6..length) else {
            return Err(DecodeError::ChunkOverrun {
                offset: pos,
                length,
                remaining: rest.len(),
            });
        };
        let raw = RawChunk {
            vendor: u16::from_be_bytes([v0, v1]),
            chunk_type: u16::from_be_bytes([t0, t1]),
            value,
        };
        let stored = raw.vendor == chunk::VENDOR_GENERIC && store_generic(&mut p, pos, raw, mode)?;
        if stored {
            p.order.push(OrderEntry::Generic(raw.chunk_type));
        } else {
            p.order.push(OrderEntry::Extra);
            p.extra.push(raw);
        }
        pos += length;
    }
    check_mandatory(&p, total, mode)?;
    Ok(p)
}

/// Puts a generic chunk into its field. `Ok(false)`: keep it raw.
#[inline]
fn store_generic<'a>(
    p: &mut HepPacket<'a>,
    offset: usize,
    raw: RawChunk<'a>,
    mode: Mode,
) -> Result<bool, DecodeError> {
    let ty = raw.chunk_type;
    let v = raw.value;
    if ty == 0 {
        return Err(DecodeError::ReservedChunkType { offset });
    }
    if let Some(expected) = chunk::fixed_size(ty) {
        if v.len() != expected {
            if mode == Mode::Strict && chunk::size_enforced(ty) {
                return Err(DecodeError::BadChunkSize {
                    offset,
                    chunk_type: ty,
                    expected,
                    found: v.len(),
                });
            }
            return Ok(false);
        }
    }
    let b0 = v.first().copied().unwrap_or(0);
    Ok(match ty {
        chunk::IP_FAMILY => set(&mut p.family, AddressFamily(b0)),
        chunk::IP_PROTO => set(&mut p.ip_proto, IpProto(b0)),
        chunk::IPV4_SRC | chunk::IPV6_SRC => {
            let a = if ty == chunk::IPV4_SRC {
                ipv4(v)
            } else {
                ipv6(v)
            };
            set(&mut p.src_addr, a)
        }
        chunk::IPV4_DST | chunk::IPV6_DST => {
            let a = if ty == chunk::IPV4_DST {
                ipv4(v)
            } else {
                ipv6(v)
            };
            set(&mut p.dst_addr, a)
        }
        chunk::SRC_PORT => set(&mut p.src_port, be16(v)),
        chunk::DST_PORT => set(&mut p.dst_port, be16(v)),
        chunk::TS_SEC => set(&mut p.ts_sec, be32(v)),
        chunk::TS_USEC => set(&mut p.ts_usec, be32(v)),
        chunk::PROTO_TYPE => set(&mut p.proto_type, ProtoType(b0)),
        chunk::CAPTURE_ID => set(&mut p.capture_id, be32(v)),
        chunk::KEEP_ALIVE => set(&mut p.keep_alive, be16(v)),
        chunk::AUTH_KEY => set(&mut p.auth_key, v),
        chunk::PAYLOAD => set(&mut p.payload, v),
        chunk::COMPRESSED_PAYLOAD => set(&mut p.compressed_payload, v),
        chunk::CORRELATION_ID => set(&mut p.correlation_id, v),
        chunk::VLAN => set(&mut p.vlan, be16(v)),
        chunk::NODE_NAME => set(&mut p.node_name, v),
        chunk::SRC_MAC => set(&mut p.src_mac, be64(v)),
        chunk::DST_MAC => set(&mut p.dst_mac, be64(v)),
        chunk::ETH_TYPE => set(&mut p.eth_type, be16(v)),
        chunk::TCP_FLAGS => set(&mut p.tcp_flags, b0),
        chunk::IP_TOS => set(&mut p.ip_tos, b0),
        chunk::MOS => set(&mut p.mos, be16(v)),
        chunk::R_FACTOR => set(&mut p.r_factor, be16(v)),
        chunk::GEO_LOCATION => set(&mut p.geo_location, v),
        chunk::JITTER => set(&mut p.jitter, be32(v)),
        chunk::TRANSACTION_TYPE => set(&mut p.transaction_type, v),
        chunk::PAYLOAD_JSON_KEYS => set(&mut p.payload_json_keys, v),
        chunk::TAGS_VALUES => set(&mut p.tags_values, v),
        chunk::TAG_TYPE => set(&mut p.tag_type, be16(v)),
        chunk::EVENT_TYPE => set(&mut p.event_type, be16(v)),
        chunk::GROUP_ID => set(&mut p.group_id, v),
        _ => false,
    })
}

#[inline]
fn check_mandatory(p: &HepPacket<'_>, end: usize, mode: Mode) -> Result<(), DecodeError> {
    let present = [
        p.family.is_some(),
        p.ip_proto.is_some(),
        p.src_addr.is_some(),
        p.dst_addr.is_some(),
        p.src_port.is_some(),
        p.dst_port.is_some(),
        p.ts_sec.is_some(),
        p.ts_usec.is_some(),
        p.proto_type.is_some(),
        p.capture_id.is_some(),
        p.payload.is_some() || p.compressed_payload.is_some(),
    ];
    let missing = |i: usize| DecodeError::MissingChunk {
        offset: end,
        chunk_type: CORE[i],
    };
    let first_missing = present.iter().position(|&x| !x);
    match mode {
        Mode::Strict => first_missing.map_or(Ok(()), |i| Err(missing(i))),
        Mode::Lenient => {
            if !present[2] {
                return Err(missing(2));
            }
            if !present[3] {
                return Err(missing(3));
            }
            let count = present.iter().filter(|&&x| x).count();
            match first_missing {
                Some(i) if count < 9 => Err(missing(i)),
                _ => Ok(()),
            }
        }
    }
}

fn decode_v12(buf: &[u8], mode: Mode) -> Result<HepPacket<'_>, DecodeError> {
    let [version, hlen, family, proto, s0, s1, d0, d1, ..] = *buf else {
        return Err(DecodeError::Truncated {
            offset: 0,
            needed: 8,
            available: buf.len(),
        });
    };
    let addr_len = match family {
        2 => 4,
        10 => 16,
        found => return Err(DecodeError::UnsupportedFamily { offset: 2, found }),
    };
    let base = 8 + 2 * addr_len;
    let hl = usize::from(hlen);
    // The layout follows from the family alone; like Kamailio, lenient mode does not look at
    // the length byte (sngrep 1.6's HEPv2 sender fills it with the high byte of the total
    // length).
    let ok = hl == base || (version == 2 && hl == base + 12);
    if !ok && mode == Mode::Strict {
        return Err(DecodeError::BadHeaderLength {
            offset: 1,
            version,
            found: hlen,
        });
    }
    let Some(addrs) = buf.get(8..base) else {
        return Err(DecodeError::Truncated {
            offset: 8,
            needed: 2 * addr_len,
            available: buf.len() - 8,
        });
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
            return Err(DecodeError::Truncated {
                offset: base,
                needed: 12,
                available: buf.len() - base,
            });
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
