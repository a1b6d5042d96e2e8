//! HEPv3 chunk type ids (vendor 0x0000 "generic"), vendor ids, and raw chunks.

use crate::error::{DecodeError, DecodeErrorKind};

/// Vendor id of the generic chunks.
pub const VENDOR_GENERIC: u16 = 0x0000;
/// Vendor id: FreeSWITCH.
pub const VENDOR_FREESWITCH: u16 = 0x0001;
/// Vendor id: Kamailio/SER.
pub const VENDOR_KAMAILIO: u16 = 0x0002;
/// Vendor id: OpenSIPS.
pub const VENDOR_OPENSIPS: u16 = 0x0003;
/// Vendor id: Asterisk.
pub const VENDOR_ASTERISK: u16 = 0x0004;
/// Vendor id: Homer Project.
pub const VENDOR_HOMER: u16 = 0x0005;
/// Vendor id: SipXecs.
pub const VENDOR_SIPXECS: u16 = 0x0006;
/// Vendor id: Yeti Switch.
pub const VENDOR_YETI: u16 = 0x0007;
/// Vendor id: Genesys.
pub const VENDOR_GENESYS: u16 = 0x0008;

/// 0x0001 IP protocol family (uint8).
pub const IP_FAMILY: u16 = 0x0001;
/// 0x0002 IP protocol id (uint8).
pub const IP_PROTO: u16 = 0x0002;
/// 0x0003 IPv4 source address.
pub const IPV4_SRC: u16 = 0x0003;
/// 0x0004 IPv4 destination address.
pub const IPV4_DST: u16 = 0x0004;
/// 0x0005 IPv6 source address.
pub const IPV6_SRC: u16 = 0x0005;
/// 0x0006 IPv6 destination address.
pub const IPV6_DST: u16 = 0x0006;
/// 0x0007 source port (uint16).
pub const SRC_PORT: u16 = 0x0007;
/// 0x0008 destination port (uint16).
pub const DST_PORT: u16 = 0x0008;
/// 0x0009 timestamp, seconds (uint32).
pub const TS_SEC: u16 = 0x0009;
/// 0x000a timestamp, microseconds (uint32).
pub const TS_USEC: u16 = 0x000a;
/// 0x000b protocol type (uint8).
pub const PROTO_TYPE: u16 = 0x000b;
/// 0x000c capture agent id (uint32).
pub const CAPTURE_ID: u16 = 0x000c;
/// 0x000d keep-alive timer (uint16 seconds).
pub const KEEP_ALIVE: u16 = 0x000d;
/// 0x000e authenticate key (string).
pub const AUTH_KEY: u16 = 0x000e;
/// 0x000f captured packet payload.
pub const PAYLOAD: u16 = 0x000f;
/// 0x0010 captured compressed payload.
pub const COMPRESSED_PAYLOAD: u16 = 0x0010;
/// 0x0011 internal correlation id.
pub const CORRELATION_ID: u16 = 0x0011;
/// 0x0012 VLAN id (uint16).
pub const VLAN: u16 = 0x0012;
/// 0x0013 capture agent name (node name; "group id" in older tables).
pub const NODE_NAME: u16 = 0x0013;
/// 0x0014 source MAC (uint64).
pub const SRC_MAC: u16 = 0x0014;
/// 0x0015 destination MAC (uint64).
pub const DST_MAC: u16 = 0x0015;
/// 0x0016 Ethernet type (uint16).
pub const ETH_TYPE: u16 = 0x0016;
/// 0x0017 TCP flags (uint8).
pub const TCP_FLAGS: u16 = 0x0017;
/// 0x0018 IP TOS (uint8).
pub const IP_TOS: u16 = 0x0018;
/// 0x0020 MOS value (uint16).
pub const MOS: u16 = 0x0020;
/// 0x0021 R-factor (uint16).
pub const R_FACTOR: u16 = 0x0021;
/// 0x0022 GEO location (string).
pub const GEO_LOCATION: u16 = 0x0022;
/// 0x0023 jitter (uint32).
pub const JITTER: u16 = 0x0023;
/// 0x0024 transaction type (string).
pub const TRANSACTION_TYPE: u16 = 0x0024;
/// 0x0025 payload JSON keys (string).
pub const PAYLOAD_JSON_KEYS: u16 = 0x0025;
/// 0x0026 tags values (string).
pub const TAGS_VALUES: u16 = 0x0026;
/// 0x0027 tag type (uint16).
pub const TAG_TYPE: u16 = 0x0027;
/// 0x0028 event type (uint16).
pub const EVENT_TYPE: u16 = 0x0028;
/// 0x0029 group id (string).
pub const GROUP_ID: u16 = 0x0029;

/// Value sizes of the generic types 0x0000..=0x0029 (0 = variable or unknown), and whether
/// heplify-server enforces it (bit 7).
const SIZE_TABLE: [u8; 0x2a] = {
    const E: u8 = 0x80; // enforced by heplify-server
    let mut t = [0u8; 0x2a];
    t[IP_FAMILY as usize] = 1 | E;
    t[IP_PROTO as usize] = 1 | E;
    t[IPV4_SRC as usize] = 4 | E;
    t[IPV4_DST as usize] = 4 | E;
    t[IPV6_SRC as usize] = 16 | E;
    t[IPV6_DST as usize] = 16 | E;
    t[SRC_PORT as usize] = 2 | E;
    t[DST_PORT as usize] = 2 | E;
    t[TS_SEC as usize] = 4 | E;
    t[TS_USEC as usize] = 4 | E;
    t[PROTO_TYPE as usize] = 1 | E;
    t[CAPTURE_ID as usize] = 4 | E;
    t[KEEP_ALIVE as usize] = 2;
    t[VLAN as usize] = 2 | E;
    t[SRC_MAC as usize] = 8;
    t[DST_MAC as usize] = 8;
    t[ETH_TYPE as usize] = 2;
    t[TCP_FLAGS as usize] = 1;
    t[IP_TOS as usize] = 1;
    t[MOS as usize] = 2;
    t[R_FACTOR as usize] = 2;
    t[JITTER as usize] = 4;
    t[TAG_TYPE as usize] = 2;
    t[EVENT_TYPE as usize] = 2;
    t
};

/// The value size of a fixed-size generic chunk type, `None` for strings and unknown types.
pub const fn fixed_size(chunk_type: u16) -> Option<usize> {
    if chunk_type as usize >= SIZE_TABLE.len() {
        return None;
    }
    match SIZE_TABLE[chunk_type as usize] & 0x7f {
        0 => None,
        n => Some(n as usize),
    }
}

/// Fixed-size types whose size heplify-server enforces (a wrong size is an error in strict
/// mode). A wrong size on any other fixed-size type keeps the chunk as a raw chunk instead.
pub const fn size_enforced(chunk_type: u16) -> bool {
    (chunk_type as usize) < SIZE_TABLE.len() && SIZE_TABLE[chunk_type as usize] & 0x80 != 0
}

/// Name of a generic chunk type, as in the spec table.
pub const fn name(chunk_type: u16) -> Option<&'static str> {
    Some(match chunk_type {
        IP_FAMILY => "ip_family",
        IP_PROTO => "ip_proto",
        IPV4_SRC => "ipv4_src",
        IPV4_DST => "ipv4_dst",
        IPV6_SRC => "ipv6_src",
        IPV6_DST => "ipv6_dst",
        SRC_PORT => "src_port",
        DST_PORT => "dst_port",
        TS_SEC => "ts_sec",
        TS_USEC => "ts_usec",
        PROTO_TYPE => "proto_type",
        CAPTURE_ID => "capture_id",
        KEEP_ALIVE => "keep_alive",
        AUTH_KEY => "auth_key",
        PAYLOAD => "payload",
        COMPRESSED_PAYLOAD => "compressed_payload",
        CORRELATION_ID => "correlation_id",
        VLAN => "vlan",
        NODE_NAME => "node_name",
        SRC_MAC => "src_mac",
        DST_MAC => "dst_mac",
        ETH_TYPE => "eth_type",
        TCP_FLAGS => "tcp_flags",
        IP_TOS => "ip_tos",
        MOS => "mos",
        R_FACTOR => "r_factor",
        GEO_LOCATION => "geo_location",
        JITTER => "jitter",
        TRANSACTION_TYPE => "transaction_type",
        PAYLOAD_JSON_KEYS => "payload_json_keys",
        TAGS_VALUES => "tags_values",
        TAG_TYPE => "tag_type",
        EVENT_TYPE => "event_type",
        GROUP_ID => "group_id",
        _ => return None,
    })
}

/// One HEPv3 chunk as it is on the wire: vendor, type and value (without the 6-byte header).
///
/// Decoding keeps vendor chunks, unknown generic types, duplicates and odd-sized chunks as
/// `RawChunk`s in [`crate::HepPacket::extra`]; encoding writes them back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RawChunk<'a> {
    /// Vendor id (0 = generic).
    pub vendor: u16,
    /// Chunk type id.
    pub chunk_type: u16,
    /// Value bytes.
    pub value: &'a [u8],
}

/// Iterator over the chunks of a HEPv3 packet body, in wire order, without interpreting them.
///
/// Yields `Err` once (and then stops) on a chunk shorter than 6 bytes or past the end.
#[derive(Debug, Clone)]
pub struct ChunkIter<'a> {
    buf: &'a [u8],
    pos: usize,
    failed: bool,
}

impl<'a> ChunkIter<'a> {
    /// Walks `packet[6..]`; `packet` is a whole HEPv3 packet (its own total length is not read).
    pub fn new(packet: &'a [u8]) -> Self {
        Self {
            buf: packet,
            pos: 6,
            failed: false,
        }
    }
}

impl<'a> Iterator for ChunkIter<'a> {
    /// The chunk and its offset in the packet.
    type Item = Result<(usize, RawChunk<'a>), DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.pos >= self.buf.len() {
            return None;
        }
        let offset = self.pos;
        let rest = &self.buf[offset..];
        let [v0, v1, t0, t1, l0, l1, ..] = *rest else {
            self.failed = true;
            return Some(Err(DecodeError::new(
                offset,
                DecodeErrorKind::ChunkOverrun {
                    length: 6,
                    remaining: rest.len(),
                },
            )));
        };
        let length = usize::from(u16::from_be_bytes([l0, l1]));
        if length < 6 {
            self.failed = true;
            return Some(Err(DecodeError::new(
                offset,
                DecodeErrorKind::ChunkTooShort { length },
            )));
        }
        let Some(value) = rest.get(6..length) else {
            self.failed = true;
            return Some(Err(DecodeError::new(
                offset,
                DecodeErrorKind::ChunkOverrun {
                    length,
                    remaining: rest.len(),
                },
            )));
        };
        self.pos += length;
        Some(Ok((
            offset,
            RawChunk {
                vendor: u16::from_be_bytes([v0, v1]),
                chunk_type: u16::from_be_bytes([t0, t1]),
                value,
            },
        )))
    }
}
