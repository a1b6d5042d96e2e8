//! The seam between a SIP stack and capture: [`CaptureSink`].

use alloc::boxed::Box;
use alloc::sync::Arc;
use core::net::SocketAddr;

use crate::packet::HepPacket;
use crate::types::{ProtoType, Timestamp};

pub(crate) use sip_parser::Transport;

/// One message seen (received or sent) by a SIP stack. Borrowed: sinks copy what they keep.
///
/// ```
/// use std::time::SystemTime;
/// use hep_codec::{CaptureEvent, Transport};
///
/// let msg = b"SIP/2.0 200 OK\r\nCall-ID: a84b4c76e66710\r\n\r\n";
/// let event = CaptureEvent::sip(
///     "192.0.2.1:5060".parse().unwrap(), // from
///     "192.0.2.2:5060".parse().unwrap(), // to
///     Transport::Udp,
///     SystemTime::now(),                 // or a Duration since the Unix epoch
///     msg,
/// )
/// .with_correlation_id(b"a84b4c76e66710");
/// assert_eq!(event.to_packet(0, None, None).correlation_id, Some(&b"a84b4c76e66710"[..]));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CaptureEvent<'a> {
    /// Where the message came from.
    pub src: SocketAddr,
    /// Where it went.
    pub dst: SocketAddr,
    /// Transport it travelled on.
    pub transport: Transport,
    /// When it was received or sent (wall clock: HEP carries it).
    pub time: Timestamp,
    /// What the payload is (normally [`ProtoType::SIP`]).
    pub proto_type: ProtoType,
    /// The message bytes.
    pub payload: &'a [u8],
    /// Correlation id (usually the Call-ID), if the caller has one.
    pub correlation_id: Option<&'a [u8]>,
}

impl<'a> CaptureEvent<'a> {
    /// A SIP message event. `time` is a [`Timestamp`], a `Duration` since the Unix epoch, or
    /// (with `std`) a `SystemTime`.
    pub fn sip(
        src: SocketAddr,
        dst: SocketAddr,
        transport: Transport,
        time: impl Into<Timestamp>,
        payload: &'a [u8],
    ) -> Self {
        Self {
            src,
            dst,
            transport,
            time: time.into(),
            proto_type: ProtoType::SIP,
            payload,
            correlation_id: None,
        }
    }

    /// Builder step: the correlation id (chunk 0x0011), usually the Call-ID.
    pub fn with_correlation_id(mut self, id: &'a [u8]) -> Self {
        self.correlation_id = Some(id);
        self
    }

    /// The HEPv3 packet for this event, in sngrep's chunk order.
    pub fn to_packet(
        &self,
        capture_id: u32,
        auth_key: Option<&'a [u8]>,
        node_name: Option<&'a [u8]>,
    ) -> HepPacket<'a> {
        HepPacket {
            proto_type: Some(self.proto_type),
            capture_id: Some(capture_id),
            auth_key,
            correlation_id: self.correlation_id,
            node_name,
            ..HepPacket::sip(self.src, self.dst, self.transport, self.time, self.payload)
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
