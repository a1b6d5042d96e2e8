//! The seam between a SIP stack and capture: [`CaptureSink`].

use alloc::boxed::Box;
use alloc::sync::Arc;
use core::net::SocketAddr;

use crate::packet::HepPacket;
use crate::types::{AddressFamily, IpProto, ProtoType};

pub use sip_parser::Transport;

/// The HEP IP protocol value of a transport, as Kamailio sends it (22 for TLS, WS and WSS).
pub const fn ip_proto_of(transport: Transport) -> IpProto {
    match transport {
        Transport::Udp => IpProto::UDP,
        Transport::Tcp => IpProto::TCP,
        Transport::Sctp => IpProto::SCTP,
        Transport::Tls | Transport::Ws | Transport::Wss => IpProto::TLS,
    }
}

/// One message seen (received or sent) by a SIP stack. Borrowed: sinks copy what they keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CaptureEvent<'a> {
    /// Where the message came from.
    pub src: SocketAddr,
    /// Where it went.
    pub dst: SocketAddr,
    /// Transport it travelled on.
    pub transport: Transport,
    /// Wall-clock time, Unix seconds.
    pub ts_sec: u32,
    /// Microseconds within `ts_sec`.
    pub ts_usec: u32,
    /// What the payload is (normally [`ProtoType::SIP`]).
    pub proto_type: ProtoType,
    /// The message bytes.
    pub payload: &'a [u8],
    /// Correlation id (usually the Call-ID), if the caller has one.
    pub correlation_id: Option<&'a [u8]>,
}

impl<'a> CaptureEvent<'a> {
    /// A SIP message event.
    pub fn sip(
        src: SocketAddr,
        dst: SocketAddr,
        transport: Transport,
        ts_sec: u32,
        ts_usec: u32,
        payload: &'a [u8],
    ) -> Self {
        Self {
            src,
            dst,
            transport,
            ts_sec,
            ts_usec,
            proto_type: ProtoType::SIP,
            payload,
            correlation_id: None,
        }
    }

    /// The HEPv3 packet for this event, in sngrep's chunk order.
    pub fn to_packet(
        &self,
        capture_id: u32,
        auth_key: Option<&'a [u8]>,
        node_name: Option<&'a [u8]>,
    ) -> HepPacket<'a> {
        HepPacket {
            family: Some(if self.src.is_ipv4() {
                AddressFamily::IPV4
            } else {
                AddressFamily::IPV6
            }),
            ip_proto: Some(ip_proto_of(self.transport)),
            src_addr: Some(self.src.ip()),
            dst_addr: Some(self.dst.ip()),
            src_port: Some(self.src.port()),
            dst_port: Some(self.dst.port()),
            ts_sec: Some(self.ts_sec),
            ts_usec: Some(self.ts_usec),
            proto_type: Some(self.proto_type),
            capture_id: Some(capture_id),
            auth_key,
            correlation_id: self.correlation_id,
            payload: Some(self.payload),
            node_name,
            ..HepPacket::default()
        }
    }
}

/// What a proxy calls for every message it receives or sends. Implementations must not block
/// the caller for long (the SIP path): queue, drop, or do nothing.
pub trait CaptureSink {
    /// Records one message.
    fn capture(&self, event: &CaptureEvent<'_>);
}

/// Captures nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct NullSink;

impl CaptureSink for NullSink {
    fn capture(&self, _event: &CaptureEvent<'_>) {}
}

impl<T: CaptureSink + ?Sized> CaptureSink for &T {
    fn capture(&self, event: &CaptureEvent<'_>) {
        (**self).capture(event);
    }
}

impl<T: CaptureSink + ?Sized> CaptureSink for Box<T> {
    fn capture(&self, event: &CaptureEvent<'_>) {
        (**self).capture(event);
    }
}

impl<T: CaptureSink + ?Sized> CaptureSink for Arc<T> {
    fn capture(&self, event: &CaptureEvent<'_>) {
        (**self).capture(event);
    }
}

impl<T: CaptureSink> CaptureSink for Option<T> {
    fn capture(&self, event: &CaptureEvent<'_>) {
        if let Some(s) = self {
            s.capture(event);
        }
    }
}
