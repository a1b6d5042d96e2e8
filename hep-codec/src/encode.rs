//! Encoding into a caller's [`BufMut`], with no intermediate allocation.

use bytes::BufMut;
use core::net::IpAddr;

use crate::EncodeError;
use crate::chunk::{self, RawChunk};
use crate::packet::{HepPacket, OrderEntry, Value};
use crate::types::Version;

/// The order used for packets without a recorded order: the captagent/sofia-sip order that
/// sngrep's positional HEPv3 reader expects (family, proto, src port, dst port, ts sec,
/// ts usec, proto type, capture id, src IP, dst IP, auth key, correlation id, payload),
/// followed by the other generic chunks by type; extra chunks come last.
pub const CANONICAL_ORDER: [u16; 34] = [
    chunk::IP_FAMILY,
    chunk::IP_PROTO,
    chunk::SRC_PORT,
    chunk::DST_PORT,
    chunk::TS_SEC,
    chunk::TS_USEC,
    chunk::PROTO_TYPE,
    chunk::CAPTURE_ID,
    chunk::IPV4_SRC,
    chunk::IPV6_SRC,
    chunk::IPV4_DST,
    chunk::IPV6_DST,
    chunk::AUTH_KEY,
    chunk::CORRELATION_ID,
    chunk::PAYLOAD,
    chunk::COMPRESSED_PAYLOAD,
    chunk::KEEP_ALIVE,
    chunk::VLAN,
    chunk::NODE_NAME,
    chunk::SRC_MAC,
    chunk::DST_MAC,
    chunk::ETH_TYPE,
    chunk::TCP_FLAGS,
    chunk::IP_TOS,
    chunk::MOS,
    chunk::R_FACTOR,
    chunk::GEO_LOCATION,
    chunk::JITTER,
    chunk::TRANSACTION_TYPE,
    chunk::PAYLOAD_JSON_KEYS,
    chunk::TAGS_VALUES,
    chunk::TAG_TYPE,
    chunk::EVENT_TYPE,
    chunk::GROUP_ID,
];

/// Maximum size of a HEPv3 packet (16-bit total length).
pub const MAX_PACKET_LEN: usize = 0xffff;

/// One chunk to write.
#[derive(Clone, Copy)]
enum Out<'a> {
    Generic(u16, Value<'a>),
    Raw(RawChunk<'a>),
}

impl Out<'_> {
    fn len(&self) -> usize {
        6 + match self {
            Self::Generic(_, v) => v.len(),
            Self::Raw(r) => r.value.len(),
        }
    }
}

fn emit<'a, F: FnMut(Out<'a>)>(p: &HepPacket<'a>, ty: u16, done: &mut u64, f: &mut F) {
    let bit = 1u64 << (ty & 63);
    if *done & bit == 0 {
        if let Some(v) = p.value_of(ty) {
            *done |= bit;
            f(Out::Generic(ty, v));
        }
    }
}

impl<'a> HepPacket<'a> {
    /// Calls `f` for every chunk, in wire order: the recorded order of a decoded packet (then
    /// anything set since), or [`CANONICAL_ORDER`]; extra chunks in their recorded places,
    /// else at the end.
    fn for_each_chunk<F: FnMut(Out<'a>)>(&self, mut f: F) {
        let mut done: u64 = 0; // one bit per generic type id (all are < 64)
        let mut extras = self.extra.iter();
        for entry in self.order.iter() {
            match entry {
                OrderEntry::Generic(ty) => emit(self, ty, &mut done, &mut f),
                OrderEntry::Extra => {
                    if let Some(r) = extras.next() {
                        f(Out::Raw(*r));
                    }
                }
            }
        }
        for ty in CANONICAL_ORDER {
            emit(self, ty, &mut done, &mut f);
        }
        for r in extras {
            f(Out::Raw(*r));
        }
    }

    /// Length of the packet [`HepPacket::encode`] writes for [`HepPacket::version`].
    pub fn encoded_len(&self) -> usize {
        match self.version {
            Version::V3 => {
                let mut n = 6;
                self.for_each_chunk(|c| n += c.len());
                n
            }
            Version::V1 | Version::V2 => {
                let addr = if matches!(self.src_addr, Some(IpAddr::V6(_))) {
                    32
                } else {
                    8
                };
                let time = if self.version == Version::V2 { 12 } else { 0 };
                8 + addr + time + self.payload.map_or(0, <[u8]>::len)
            }
        }
    }

    /// Encodes as [`HepPacket::version`] into `buf`, returning the number of bytes written.
    /// Nothing is written on error.
    pub fn encode<B: BufMut + ?Sized>(&self, buf: &mut B) -> Result<usize, EncodeError> {
        match self.version {
            Version::V3 => self.encode_v3(buf),
            Version::V1 | Version::V2 => self.encode_v12(buf),
        }
    }

    /// Encodes as HEPv3 whatever [`HepPacket::version`] says.
    pub fn encode_v3<B: BufMut + ?Sized>(&self, buf: &mut B) -> Result<usize, EncodeError> {
        if let Some(r) = self.encode_v3_simple(buf) {
            return r;
        }
        let mut total = 6usize;
        let mut chunk_too_long = 0;
        self.for_each_chunk(|c| {
            let l = c.len();
            total += l;
            if l > MAX_PACKET_LEN {
                chunk_too_long = l;
            }
        });
        if total > MAX_PACKET_LEN {
            return Err(EncodeError::TooLong { length: total });
        }
        if chunk_too_long > 0 {
            return Err(EncodeError::TooLong {
                length: chunk_too_long,
            });
        }
        if buf.remaining_mut() < total {
            return Err(EncodeError::BufferTooSmall {
                needed: total,
                available: buf.remaining_mut(),
            });
        }
        buf.put_slice(b"HEP3");
        buf.put_u16(total as u16);
        self.for_each_chunk(|c| {
            let len = c.len() as u16;
            match c {
                Out::Generic(ty, v) => {
                    buf.put_u16(chunk::VENDOR_GENERIC);
                    buf.put_u16(ty);
                    buf.put_u16(len);
                    match v {
                        Value::U8(x) => buf.put_u8(x),
                        Value::U16(x) => buf.put_u16(x),
                        Value::U32(x) => buf.put_u32(x),
                        Value::U64(x) => buf.put_u64(x),
                        Value::V4(a) => buf.put_slice(&a),
                        Value::V6(a) => buf.put_slice(&a),
                        Value::Bytes(b) => buf.put_slice(b),
                    }
                }
                Out::Raw(r) => {
                    buf.put_u16(r.vendor);
                    buf.put_u16(r.chunk_type);
                    buf.put_u16(len);
                    buf.put_slice(r.value);
                }
            }
        });
        Ok(total)
    }

    /// True when only the fields a SIP capture normally carries are set (and no recorded
    /// order or extra chunks): [`HepPacket::encode_v3_simple`] then applies.
    fn is_simple(&self) -> bool {
        self.order.is_empty()
            && self.extra.is_empty()
            && self.keep_alive.is_none()
            && self.compressed_payload.is_none()
            && self.vlan.is_none()
            && self.src_mac.is_none()
            && self.dst_mac.is_none()
            && self.eth_type.is_none()
            && self.tcp_flags.is_none()
            && self.ip_tos.is_none()
            && self.mos.is_none()
            && self.r_factor.is_none()
            && self.geo_location.is_none()
            && self.jitter.is_none()
            && self.transaction_type.is_none()
            && self.payload_json_keys.is_none()
            && self.tags_values.is_none()
            && self.tag_type.is_none()
            && self.event_type.is_none()
            && self.group_id.is_none()
    }

    /// Fast path of [`HepPacket::encode_v3`] for simple packets: every chunk before the
    /// payload value is assembled on the stack, then two `put_slice` calls. Produces exactly
    /// the bytes of the general path ([`CANONICAL_ORDER`]). `None`: not applicable.
    fn encode_v3_simple<B: BufMut + ?Sized>(
        &self,
        buf: &mut B,
    ) -> Option<Result<usize, EncodeError>> {
        if !self.is_simple() {
            return None;
        }
        let mut s = Scratch::new();
        s.put(b"HEP3\0\0");
        if let Some(v) = self.family {
            s.chunk(chunk::IP_FAMILY, &[v.0]);
        }
        if let Some(v) = self.ip_proto {
            s.chunk(chunk::IP_PROTO, &[v.0]);
        }
        if let Some(v) = self.src_port {
            s.chunk(chunk::SRC_PORT, &v.to_be_bytes());
        }
        if let Some(v) = self.dst_port {
            s.chunk(chunk::DST_PORT, &v.to_be_bytes());
        }
        if let Some(v) = self.ts_sec {
            s.chunk(chunk::TS_SEC, &v.to_be_bytes());
        }
        if let Some(v) = self.ts_usec {
            s.chunk(chunk::TS_USEC, &v.to_be_bytes());
        }
        if let Some(v) = self.proto_type {
            s.chunk(chunk::PROTO_TYPE, &[v.0]);
        }
        if let Some(v) = self.capture_id {
            s.chunk(chunk::CAPTURE_ID, &v.to_be_bytes());
        }
        for (a, v4, v6) in [
            (self.src_addr, chunk::IPV4_SRC, chunk::IPV6_SRC),
            (self.dst_addr, chunk::IPV4_DST, chunk::IPV6_DST),
        ] {
            match a {
                Some(IpAddr::V4(a)) => s.chunk(v4, &a.octets()),
                Some(IpAddr::V6(a)) => s.chunk(v6, &a.octets()),
                None => {}
            }
        }
        if let Some(v) = self.auth_key {
            s.chunk(chunk::AUTH_KEY, v);
        }
        if let Some(v) = self.correlation_id {
            s.chunk(chunk::CORRELATION_ID, v);
        }
        let payload = self.payload.unwrap_or_default();
        if let Some(p) = self.payload {
            s.chunk_header(chunk::PAYLOAD, p.len());
        }
        if s.overflow {
            return None;
        }
        let node_len = self.node_name.map_or(0, |n| 6 + n.len());
        let total = s.len + payload.len() + node_len;
        if total > MAX_PACKET_LEN {
            return Some(Err(EncodeError::TooLong { length: total }));
        }
        if buf.remaining_mut() < total {
            return Some(Err(EncodeError::BufferTooSmall {
                needed: total,
                available: buf.remaining_mut(),
            }));
        }
        s.buf[4..6].copy_from_slice(&(total as u16).to_be_bytes());
        buf.put_slice(&s.buf[..s.len]);
        buf.put_slice(payload);
        if let Some(n) = self.node_name {
            let mut h = Scratch::new();
            h.chunk_header(chunk::NODE_NAME, n.len());
            buf.put_slice(&h.buf[..h.len]);
            buf.put_slice(n);
        }
        Some(Ok(total))
    }

    /// HEPv1/v2: fixed header, addresses, (v2) little-endian time block, payload. A
    /// compressed payload is an error: these versions have no field for it, and writing
    /// the packet without it would lose the message.
    fn encode_v12<B: BufMut + ?Sized>(&self, buf: &mut B) -> Result<usize, EncodeError> {
        if self.compressed_payload.is_some() {
            return Err(EncodeError::CompressedPayloadNeedsV3);
        }
        let src = self.src_addr.ok_or(EncodeError::MissingField("src_addr"))?;
        let dst = self.dst_addr.ok_or(EncodeError::MissingField("dst_addr"))?;
        let sport = self.src_port.ok_or(EncodeError::MissingField("src_port"))?;
        let dport = self.dst_port.ok_or(EncodeError::MissingField("dst_port"))?;
        let capture_id = self.capture_id.unwrap_or(0);
        let v2 = self.version == Version::V2;
        if v2 && capture_id > 0xffff {
            return Err(EncodeError::CaptureIdTooLarge(capture_id));
        }
        let (family, hl) = match (src, dst) {
            (IpAddr::V4(_), IpAddr::V4(_)) => (2u8, 16u8),
            (IpAddr::V6(_), IpAddr::V6(_)) => (10, 40),
            _ => return Err(EncodeError::MixedAddressFamilies),
        };
        let total = self.encoded_len();
        if buf.remaining_mut() < total {
            return Err(EncodeError::BufferTooSmall {
                needed: total,
                available: buf.remaining_mut(),
            });
        }
        buf.put_u8(if v2 { 2 } else { 1 });
        buf.put_u8(hl);
        buf.put_u8(family);
        buf.put_u8(self.ip_proto.map_or(17, |p| p.0));
        buf.put_u16(sport);
        buf.put_u16(dport);
        for a in [src, dst] {
            match a {
                IpAddr::V4(a) => buf.put_slice(&a.octets()),
                IpAddr::V6(a) => buf.put_slice(&a.octets()),
            }
        }
        if v2 {
            buf.put_u32_le(self.ts_sec.unwrap_or(0));
            buf.put_u32_le(self.ts_usec.unwrap_or(0));
            buf.put_u16_le(capture_id as u16);
            buf.put_u16(0);
        }
        buf.put_slice(self.payload.unwrap_or_default());
        Ok(total)
    }
}

/// Stack buffer for the chunks before the payload value (fast path).
struct Scratch {
    buf: [u8; 256],
    len: usize,
    overflow: bool,
}

impl Scratch {
    fn new() -> Self {
        Self {
            buf: [0; 256],
            len: 0,
            overflow: false,
        }
    }

    fn put(&mut self, bytes: &[u8]) {
        match self.buf.get_mut(self.len..self.len + bytes.len()) {
            Some(dst) => {
                dst.copy_from_slice(bytes);
                self.len += bytes.len();
            }
            None => self.overflow = true,
        }
    }

    fn chunk_header(&mut self, chunk_type: u16, value_len: usize) {
        let Ok(len) = u16::try_from(value_len + 6) else {
            self.overflow = true;
            return;
        };
        let [t0, t1] = chunk_type.to_be_bytes();
        let [l0, l1] = len.to_be_bytes();
        self.put(&[0, 0, t0, t1, l0, l1]);
    }

    fn chunk(&mut self, chunk_type: u16, value: &[u8]) {
        self.chunk_header(chunk_type, value.len());
        self.put(value);
    }
}
