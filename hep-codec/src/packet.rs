//! The decoded (or to-be-encoded) HEP packet.

use alloc::vec::Vec;
use core::fmt;
use core::net::{IpAddr, SocketAddr};

use sip_parser::Transport;

use crate::chunk::{self, RawChunk};
use crate::types::{AddressFamily, Endpoint, IpProto, ProtoType, Timestamp, Version};

/// A HEP packet: every generic HEPv3 chunk as a typed field (`None` = chunk absent), plus the
/// chunks this crate does not interpret, kept raw in [`HepPacket::extra`].
///
/// Decoding borrows every byte string from the input buffer (zero copy); nothing is allocated
/// unless the packet has extra chunks. Building one by hand is plain struct syntax (or
/// [`HepPacket::sip`]); [`HepPacket::encode`] writes it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HepPacket<'a> {
    /// Wire version this packet was decoded from / is encoded as by [`HepPacket::encode`].
    pub version: Version,
    /// 0x0001 address family.
    pub family: Option<AddressFamily>,
    /// 0x0002 IP protocol.
    pub ip_proto: Option<IpProto>,
    /// 0x0003 / 0x0005 source address.
    pub src_addr: Option<IpAddr>,
    /// 0x0004 / 0x0006 destination address.
    pub dst_addr: Option<IpAddr>,
    /// 0x0007 source port.
    pub src_port: Option<u16>,
    /// 0x0008 destination port.
    pub dst_port: Option<u16>,
    /// 0x0009 timestamp seconds (Unix epoch).
    pub ts_sec: Option<u32>,
    /// 0x000a timestamp microseconds.
    pub ts_usec: Option<u32>,
    /// 0x000b what the payload is.
    pub proto_type: Option<ProtoType>,
    /// 0x000c capture agent id (16 bits in HEPv2).
    pub capture_id: Option<u32>,
    /// 0x000d keep-alive timer, seconds.
    pub keep_alive: Option<u16>,
    /// 0x000e authentication key (plain text).
    pub auth_key: Option<&'a [u8]>,
    /// 0x000f captured payload (e.g. the SIP message).
    pub payload: Option<&'a [u8]>,
    /// 0x0010 compressed payload, still compressed.
    pub compressed_payload: Option<&'a [u8]>,
    /// 0x0011 correlation id (usually a SIP Call-ID).
    pub correlation_id: Option<&'a [u8]>,
    /// 0x0012 VLAN id.
    pub vlan: Option<u16>,
    /// 0x0013 capture agent (node) name; "group id" in older tables.
    pub node_name: Option<&'a [u8]>,
    /// 0x0014 source MAC (8-byte value).
    pub src_mac: Option<u64>,
    /// 0x0015 destination MAC (8-byte value).
    pub dst_mac: Option<u64>,
    /// 0x0016 Ethernet type.
    pub eth_type: Option<u16>,
    /// 0x0017 TCP flags.
    pub tcp_flags: Option<u8>,
    /// 0x0018 IP TOS.
    pub ip_tos: Option<u8>,
    /// 0x0020 MOS value (heplify sends MOS × 100).
    pub mos: Option<u16>,
    /// 0x0021 R-factor.
    pub r_factor: Option<u16>,
    /// 0x0022 GEO location.
    pub geo_location: Option<&'a [u8]>,
    /// 0x0023 jitter.
    pub jitter: Option<u32>,
    /// 0x0024 transaction type ("call", "registration", …).
    pub transaction_type: Option<&'a [u8]>,
    /// 0x0025 payload JSON keys.
    pub payload_json_keys: Option<&'a [u8]>,
    /// 0x0026 tags values.
    pub tags_values: Option<&'a [u8]>,
    /// 0x0027 tag type.
    pub tag_type: Option<u16>,
    /// 0x0028 event type.
    pub event_type: Option<u16>,
    /// 0x0029 group id.
    pub group_id: Option<&'a [u8]>,
    /// Chunks not mapped to a field above, in wire order: vendor chunks, unknown generic types,
    /// repeated generic types (the first occurrence fills the field), and fixed-size types
    /// with an unexpected size that the decoding mode tolerates. Encoding writes them back.
    pub extra: Vec<RawChunk<'a>>,
    /// The wire order seen by the decoder, so that re-encoding a decoded packet reproduces
    /// its bytes. Empty for a hand-built packet: the encoder then uses sngrep's order.
    pub order: ChunkOrder,
}

impl<'a> HepPacket<'a> {
    /// A HEPv3 SIP packet with the core chunks set (family from the addresses, IP protocol
    /// from the transport, capture id 0), ready to encode. `time` is a [`Timestamp`], a
    /// `Duration` since the Unix epoch, or (with `std`) a `SystemTime`.
    pub fn sip(
        src: SocketAddr,
        dst: SocketAddr,
        transport: Transport,
        time: impl Into<Timestamp>,
        payload: &'a [u8],
    ) -> Self {
        let time = time.into();
        Self {
            family: Some(if src.is_ipv4() {
                AddressFamily::IPV4
            } else {
                AddressFamily::IPV6
            }),
            ip_proto: Some(IpProto::from(transport)),
            src_addr: Some(src.ip()),
            dst_addr: Some(dst.ip()),
            src_port: Some(src.port()),
            dst_port: Some(dst.port()),
            ts_sec: Some(time.sec),
            ts_usec: Some(time.usec),
            proto_type: Some(ProtoType::SIP),
            capture_id: Some(0),
            payload: Some(payload),
            ..Self::default()
        }
    }

    /// Builder step: the wire version [`HepPacket::encode`] writes.
    pub fn with_version(mut self, version: Version) -> Self {
        self.version = version;
        self
    }

    /// Builder step: capture agent id (chunk 0x000c).
    pub fn with_capture_id(mut self, id: u32) -> Self {
        self.capture_id = Some(id);
        self
    }

    /// Builder step: authentication key (chunk 0x000e).
    pub fn with_auth_key(mut self, key: &'a [u8]) -> Self {
        self.auth_key = Some(key);
        self
    }

    /// Builder step: correlation id (chunk 0x0011), usually the Call-ID.
    pub fn with_correlation_id(mut self, id: &'a [u8]) -> Self {
        self.correlation_id = Some(id);
        self
    }

    /// Builder step: capture node name (chunk 0x0013).
    pub fn with_node_name(mut self, name: &'a [u8]) -> Self {
        self.node_name = Some(name);
        self
    }

    /// Builder step: one more raw chunk (vendor chunk or unknown type), written after the
    /// typed chunks.
    pub fn with_chunk(mut self, vendor: u16, chunk_type: u16, value: &'a [u8]) -> Self {
        self.extra.push(RawChunk {
            vendor,
            chunk_type,
            value,
        });
        self
    }

    /// Source address and port, when both are present.
    pub fn src(&self) -> Option<SocketAddr> {
        Some(SocketAddr::new(self.src_addr?, self.src_port?))
    }

    /// Destination address and port, when both are present.
    pub fn dst(&self) -> Option<SocketAddr> {
        Some(SocketAddr::new(self.dst_addr?, self.dst_port?))
    }

    /// The source address, with its port when present: what to show for a packet whose
    /// port chunk may be missing (lenient decoding accepts that).
    pub fn src_endpoint(&self) -> Option<Endpoint> {
        Some(Endpoint {
            addr: self.src_addr?,
            port: self.src_port,
        })
    }

    /// The destination address, with its port when present.
    pub fn dst_endpoint(&self) -> Option<Endpoint> {
        Some(Endpoint {
            addr: self.dst_addr?,
            port: self.dst_port,
        })
    }

    /// True when the payload is a SIP message: HEPv1/v2 carry nothing else, HEPv3 says so
    /// with protocol type 1 (chunk 0x000b).
    pub fn is_sip(&self) -> bool {
        self.version != Version::V3 || self.proto_type == Some(ProtoType::SIP)
    }

    /// True when the packet carries only a compressed payload (chunk 0x0010).
    pub fn is_compressed(&self) -> bool {
        self.payload.is_none() && self.compressed_payload.is_some()
    }

    /// The payload as a zero-copy [`bytes::Bytes`] slice of `buf`, the buffer this packet was
    /// decoded from. `None` if there is no payload or it does not lie inside `buf`.
    pub fn payload_bytes(&self, buf: &bytes::Bytes) -> Option<bytes::Bytes> {
        sub_bytes(buf, self.payload.or(self.compressed_payload)?)
    }

    /// The value of generic chunk `chunk_type` as this packet would encode it, or `None`
    /// when absent (addresses answer on the type matching their family).
    pub(crate) fn value_of(&self, chunk_type: u16) -> Option<Value<'a>> {
        use Value::{Bytes, U8, U16, U32, U64, V4, V6};
        let addr = |a: Option<IpAddr>, v6: bool| match a? {
            IpAddr::V4(a) if !v6 => Some(V4(a.octets())),
            IpAddr::V6(a) if v6 => Some(V6(a.octets())),
            _ => None,
        };
        match chunk_type {
            chunk::IP_FAMILY => self.family.map(|f| U8(f.0)),
            chunk::IP_PROTO => self.ip_proto.map(|p| U8(p.0)),
            chunk::IPV4_SRC => addr(self.src_addr, false),
            chunk::IPV4_DST => addr(self.dst_addr, false),
            chunk::IPV6_SRC => addr(self.src_addr, true),
            chunk::IPV6_DST => addr(self.dst_addr, true),
            chunk::SRC_PORT => self.src_port.map(U16),
            chunk::DST_PORT => self.dst_port.map(U16),
            chunk::TS_SEC => self.ts_sec.map(U32),
            chunk::TS_USEC => self.ts_usec.map(U32),
            chunk::PROTO_TYPE => self.proto_type.map(|p| U8(p.0)),
            chunk::CAPTURE_ID => self.capture_id.map(U32),
            chunk::KEEP_ALIVE => self.keep_alive.map(U16),
            chunk::AUTH_KEY => self.auth_key.map(Bytes),
            chunk::PAYLOAD => self.payload.map(Bytes),
            chunk::COMPRESSED_PAYLOAD => self.compressed_payload.map(Bytes),
            chunk::CORRELATION_ID => self.correlation_id.map(Bytes),
            chunk::VLAN => self.vlan.map(U16),
            chunk::NODE_NAME => self.node_name.map(Bytes),
            chunk::SRC_MAC => self.src_mac.map(U64),
            chunk::DST_MAC => self.dst_mac.map(U64),
            chunk::ETH_TYPE => self.eth_type.map(U16),
            chunk::TCP_FLAGS => self.tcp_flags.map(U8),
            chunk::IP_TOS => self.ip_tos.map(U8),
            chunk::MOS => self.mos.map(U16),
            chunk::R_FACTOR => self.r_factor.map(U16),
            chunk::GEO_LOCATION => self.geo_location.map(Bytes),
            chunk::JITTER => self.jitter.map(U32),
            chunk::TRANSACTION_TYPE => self.transaction_type.map(Bytes),
            chunk::PAYLOAD_JSON_KEYS => self.payload_json_keys.map(Bytes),
            chunk::TAGS_VALUES => self.tags_values.map(Bytes),
            chunk::TAG_TYPE => self.tag_type.map(U16),
            chunk::EVENT_TYPE => self.event_type.map(U16),
            chunk::GROUP_ID => self.group_id.map(Bytes),
            _ => None,
        }
    }
}

fn sub_bytes(buf: &bytes::Bytes, part: &[u8]) -> Option<bytes::Bytes> {
    let base = buf.as_ptr() as usize;
    let start = (part.as_ptr() as usize).checked_sub(base)?;
    let end = start.checked_add(part.len())?;
    (end <= buf.len()).then(|| buf.slice(start..end))
}

/// A generic chunk value, ready to write.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Value<'a> {
    U8(u8),
    U16(u16),
    U32(u32),
    U64(u64),
    V4([u8; 4]),
    V6([u8; 16]),
    Bytes(&'a [u8]),
}

impl Value<'_> {
    pub(crate) fn len(&self) -> usize {
        match self {
            Self::U8(_) => 1,
            Self::U16(_) => 2,
            Self::U32(_) | Self::V4(_) => 4,
            Self::U64(_) => 8,
            Self::V6(_) => 16,
            Self::Bytes(b) => b.len(),
        }
    }
}

/// Capacity of [`ChunkOrder`]: packets with more chunks re-encode in canonical order.
pub const CHUNK_ORDER_CAPACITY: usize = 48;

/// Wire order of a decoded packet's chunks: generic type ids, with "next extra chunk" marks.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ChunkOrder {
    ids: [u8; CHUNK_ORDER_CAPACITY],
    /// Entries recorded, or [`OVERFLOW`] once more than the capacity were pushed.
    len: u8,
}

impl Default for ChunkOrder {
    fn default() -> Self {
        Self {
            ids: [0; CHUNK_ORDER_CAPACITY],
            len: 0,
        }
    }
}

/// One entry of a [`ChunkOrder`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderEntry {
    /// A generic chunk held in a typed field.
    Generic(u16),
    /// The next chunk of [`HepPacket::extra`].
    Extra,
}

const EXTRA_MARK: u8 = ChunkOrder::EXTRA_MARK;

/// `ChunkOrder::len` once the order is forgotten.
const OVERFLOW: u8 = u8::MAX;

const _: () = assert!(CHUNK_ORDER_CAPACITY < OVERFLOW as usize);

impl ChunkOrder {
    /// The id recorded for [`OrderEntry::Extra`].
    pub(crate) const EXTRA_MARK: u8 = 0xff;

    /// The order of `n` recorded chunks whose first ids are `ids` (forgotten past the
    /// capacity), as `n` calls of [`ChunkOrder::push`] would leave it.
    #[inline]
    pub(crate) fn from_recorded(ids: [u8; CHUNK_ORDER_CAPACITY], n: usize) -> Self {
        let len = if n <= CHUNK_ORDER_CAPACITY {
            u8::try_from(n).unwrap_or(OVERFLOW)
        } else {
            OVERFLOW
        };
        Self { ids, len }
    }

    /// Records one more chunk; past the capacity the whole order is forgotten.
    #[inline]
    pub fn push(&mut self, entry: OrderEntry) {
        let id = match entry {
            OrderEntry::Generic(t) if t < u16::from(EXTRA_MARK) => t.to_be_bytes()[1],
            _ => EXTRA_MARK,
        };
        self.push_id(id);
    }

    #[inline]
    fn push_id(&mut self, id: u8) {
        // One comparison: an overflowed order has `len == OVERFLOW`, past the capacity.
        if let Some(slot) = self.ids.get_mut(usize::from(self.len)) {
            *slot = id;
            self.len += 1;
        } else {
            self.len = OVERFLOW;
        }
    }

    /// True when no order is recorded (the encoder then uses its canonical order).
    pub fn is_empty(&self) -> bool {
        self.len == 0 || self.len == OVERFLOW
    }

    /// The recorded entries.
    pub fn iter(&self) -> impl Iterator<Item = OrderEntry> + '_ {
        let len = if self.len == OVERFLOW { 0 } else { self.len };
        self.ids[..usize::from(len)].iter().map(|&id| {
            if id == EXTRA_MARK {
                OrderEntry::Extra
            } else {
                OrderEntry::Generic(u16::from(id))
            }
        })
    }
}

impl fmt::Debug for ChunkOrder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}
