//! Small typed values carried in HEP: version, address family, IP protocol, payload protocol
//! type, timestamp, endpoint.

use core::fmt;
use core::net::{IpAddr, SocketAddr};
use core::str::FromStr;
use core::time::Duration;

use sip_parser::Transport;

use crate::error::{DecodeError, DecodeErrorKind};

/// HEP wire version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Version {
    /// HEPv1: fixed header, no timestamp.
    V1,
    /// HEPv2: fixed header plus timestamp and 16-bit capture id.
    V2,
    /// HEPv3 (EEP): chunked.
    #[default]
    V3,
}

impl Version {
    /// 1, 2 or 3.
    pub const fn number(self) -> u8 {
        match self {
            Self::V1 => 1,
            Self::V2 => 2,
            Self::V3 => 3,
        }
    }

    /// The version for its number: 1, 2 or 3.
    pub const fn from_number(n: u8) -> Option<Self> {
        match n {
            1 => Some(Self::V1),
            2 => Some(Self::V2),
            3 => Some(Self::V3),
            _ => None,
        }
    }

    /// The version of the HEP packet that starts `buf`, from its first bytes: `HEP3` (HEPv3),
    /// or the version byte 1 or 2 (HEPv1/v2). Only the version is looked at, not whether
    /// the rest is well formed.
    ///
    /// An error says where `buf` departs from every version (`UnknownVersion`), or that it
    /// is too short to tell (`Truncated`: empty, or a beginning of `HEP3`).
    ///
    /// ```
    /// use hep_codec::{DecodeErrorKind, Version};
    ///
    /// assert_eq!(Version::sniff(b"HEP3\x00\x06"), Ok(Version::V3));
    /// assert_eq!(Version::sniff(&[2, 16, 2, 17]), Ok(Version::V2));
    /// let err = Version::sniff(b"HEX3").unwrap_err();
    /// assert_eq!((err.offset(), err.kind()), (2, DecodeErrorKind::UnknownVersion { found: b'X' }));
    /// assert_eq!(
    ///     Version::sniff(b"HE").unwrap_err().kind(),
    ///     DecodeErrorKind::Truncated { needed: 4, available: 2 }
    /// );
    /// ```
    #[inline]
    pub fn sniff(buf: &[u8]) -> Result<Self, DecodeError> {
        match buf {
            [b'H', b'E', b'P', b'3', ..] => Ok(Self::V3),
            [1, ..] => Ok(Self::V1),
            [2, ..] => Ok(Self::V2),
            _ => Err(not_a_version(buf)),
        }
    }
}

/// The error of [`Version::sniff`] for a buffer that starts no version.
#[cold]
#[inline(never)]
fn not_a_version(buf: &[u8]) -> DecodeError {
    for (offset, (&found, &want)) in buf.iter().zip(b"HEP3").enumerate() {
        if found != want {
            return DecodeError::new(offset, DecodeErrorKind::UnknownVersion { found });
        }
    }
    // Empty (one byte tells v1/v2), or a beginning of "HEP3".
    let needed = if buf.is_empty() { 1 } else { 4 };
    DecodeError::new(
        0,
        DecodeErrorKind::Truncated {
            needed,
            available: buf.len(),
        },
    )
}

/// Address family byte (chunk 0x0001, HEPv1/v2 header byte 2). Linux `AF_*` numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AddressFamily(pub u8);

impl AddressFamily {
    /// `AF_INET`.
    pub const IPV4: Self = Self(2);
    /// `AF_INET6` (Linux).
    pub const IPV6: Self = Self(10);

    /// "ipv4" / "ipv6", or `None` for other values.
    pub const fn name(self) -> Option<&'static str> {
        match self.0 {
            2 => Some("ipv4"),
            10 => Some("ipv6"),
            _ => None,
        }
    }
}

/// IANA IP protocol number (chunk 0x0002, HEPv1/v2 header byte 3): the wire value. Code
/// that knows the SIP transport passes a [`Transport`] (`IpProto::from(Transport::Udp)`);
/// [`IpProto::transport`] reads one back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IpProto(pub u8);

/// The HEP IP protocol value of a transport, as Kamailio sends it (22 for TLS, WS and WSS).
impl From<Transport> for IpProto {
    fn from(transport: Transport) -> Self {
        match transport {
            Transport::Udp => Self::UDP,
            Transport::Tcp => Self::TCP,
            Transport::Sctp => Self::SCTP,
            Transport::Tls | Transport::Ws | Transport::Wss => Self::TLS,
        }
    }
}

impl IpProto {
    /// TCP (6).
    pub const TCP: Self = Self(6);
    /// UDP (17).
    pub const UDP: Self = Self(17);
    /// 22 (IPPROTO_IDP): Kamailio's placeholder for TLS, WS and WSS.
    pub const TLS: Self = Self(22);
    /// ESP (50).
    pub const ESP: Self = Self(50);
    /// SCTP (132).
    pub const SCTP: Self = Self(132);

    /// "udp", "tcp", "tls", "esp", "sctp", or `None`.
    pub const fn name(self) -> Option<&'static str> {
        match self.0 {
            6 => Some("tcp"),
            17 => Some("udp"),
            22 => Some("tls"),
            50 => Some("esp"),
            132 => Some("sctp"),
            _ => None,
        }
    }

    /// The SIP transport this value stands for: UDP, TCP, SCTP, and TLS for 22 (which
    /// Kamailio also sends for WS and WSS); `None` for other protocols.
    pub const fn transport(self) -> Option<Transport> {
        match self.0 {
            6 => Some(Transport::Tcp),
            17 => Some(Transport::Udp),
            22 => Some(Transport::Tls),
            132 => Some(Transport::Sctp),
            _ => None,
        }
    }
}

/// What the payload is (chunk 0x000b).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ProtoType(pub u8);

impl ProtoType {
    /// 0x00 reserved.
    pub const RESERVED: Self = Self(0x00);
    /// 0x01 SIP.
    pub const SIP: Self = Self(0x01);
    /// 0x02 XMPP.
    pub const XMPP: Self = Self(0x02);
    /// 0x03 SDP.
    pub const SDP: Self = Self(0x03);
    /// 0x04 RTP.
    pub const RTP: Self = Self(0x04);
    /// 0x05 RTCP (JSON).
    pub const RTCP: Self = Self(0x05);
    /// 0x06 MGCP.
    pub const MGCP: Self = Self(0x06);
    /// 0x07 MEGACO/H.248.
    pub const MEGACO: Self = Self(0x07);
    /// 0x08 M2UA.
    pub const M2UA: Self = Self(0x08);
    /// 0x09 M3UA.
    pub const M3UA: Self = Self(0x09);
    /// 0x0a IAX.
    pub const IAX: Self = Self(0x0a);
    /// 0x0b H.322.
    pub const H322: Self = Self(0x0b);
    /// 0x0c H.321.
    pub const H321: Self = Self(0x0c);
    /// 0x0d M2PA.
    pub const M2PA: Self = Self(0x0d);
    /// 0x14 JSON/webRTC (sipcapture Lua dissector).
    pub const JSON_WEBRTC: Self = Self(0x14);
    /// 0x20 JSON QoS report (Kamailio stores it in `report_capture`).
    pub const QOS_REPORT: Self = Self(0x20);
    /// 0x22 MOS full report (JSON); heplify-server "rtpagent".
    pub const MOS_FULL: Self = Self(0x22);
    /// 0x23 MOS short report (JSON); heplify-server "rtcpxr".
    pub const MOS_SHORT: Self = Self(0x23);
    /// 0x26 horaclifix (heplify-server).
    pub const HORACLIFIX: Self = Self(0x26);
    /// 0x32 SIP as JSON.
    pub const SIP_JSON: Self = Self(0x32);
    /// 0x35 DNS (JSON).
    pub const DNS_JSON: Self = Self(0x35);
    /// 0x36 M3UA/ISUP (JSON).
    pub const M3UA_ISUP_JSON: Self = Self(0x36);
    /// 0x37 RTSP (JSON).
    pub const RTSP_JSON: Self = Self(0x37);
    /// 0x38 Diameter (JSON).
    pub const DIAMETER_JSON: Self = Self(0x38);
    /// 0x39 GSM MAP (JSON).
    pub const GSM_MAP_JSON: Self = Self(0x39);
    /// 0x3a RTCP PION.
    pub const RTCP_PION: Self = Self(0x3a);
    /// 0x3c CDR.
    pub const CDR: Self = Self(0x3c);
    /// 0x3d Verto (JSON).
    pub const VERTO_JSON: Self = Self(0x3d);
    /// 0x63 JSON report (Kamailio `report_capture`).
    pub const REPORT: Self = Self(0x63);
    /// 0x64 log (Kamailio `hlog()`, heplify-server "log").
    pub const LOG: Self = Self(0x64);

    /// Lower-case name of a well-known value.
    pub const fn name(self) -> Option<&'static str> {
        Some(match self.0 {
            0x01 => "sip",
            0x02 => "xmpp",
            0x03 => "sdp",
            0x04 => "rtp",
            0x05 => "rtcp",
            0x06 => "mgcp",
            0x07 => "megaco",
            0x08 => "m2ua",
            0x09 => "m3ua",
            0x0a => "iax",
            0x0b => "h322",
            0x0c => "h321",
            0x0d => "m2pa",
            0x14 => "json_webrtc",
            0x20 => "qos_report",
            0x22 => "mos_full",
            0x23 => "mos_short",
            0x26 => "horaclifix",
            0x32 => "sip_json",
            0x35 => "dns_json",
            0x36 => "m3ua_isup_json",
            0x37 => "rtsp_json",
            0x38 => "diameter_json",
            0x39 => "gsm_map_json",
            0x3a => "rtcp_pion",
            0x3c => "cdr",
            0x3d => "verto_json",
            0x63 => "report",
            0x64 => "log",
            _ => return None,
        })
    }
}

impl fmt::Display for ProtoType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => f.write_str(n),
            None => write!(f, "{}", self.0),
        }
    }
}

/// When a message was captured, as HEP carries it: seconds since the Unix epoch and
/// microseconds within the second (chunks 0x0009 and 0x000a, the HEPv2 time block).
///
/// Built from the wall clock (`SystemTime`, with `std`), from a `Duration` since the epoch
/// (without `std`: time is the caller's), or from its two numbers. Written and parsed as
/// `SECONDS.MICROSECONDS`.
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use hep_codec::Timestamp;
///
/// let t = Timestamp::from(Duration::from_micros(1_700_000_000_250_000));
/// assert_eq!(t, Timestamp::new(1_700_000_000, 250_000));
/// assert_eq!(t.to_string(), "1700000000.250000");
/// assert_eq!("1700000000.25".parse(), Ok(t));
/// assert_eq!(t.since_epoch(), Duration::from_micros(1_700_000_000_250_000));
/// let now = Timestamp::from(SystemTime::now());
/// assert!(now > t);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Timestamp {
    /// Seconds since the Unix epoch (1970-01-01 UTC).
    pub sec: u32,
    /// Microseconds within the second (below 1 000 000).
    pub usec: u32,
}

impl Timestamp {
    /// The time `sec` seconds and `usec` microseconds after the Unix epoch.
    pub const fn new(sec: u32, usec: u32) -> Self {
        Self { sec, usec }
    }

    /// The time `since_epoch` after the Unix epoch, to the microsecond below. Seconds past
    /// HEP's 32-bit field (year 2106) saturate at `u32::MAX`.
    pub const fn from_unix(since_epoch: Duration) -> Self {
        let secs = since_epoch.as_secs();
        Self {
            sec: if secs > u32::MAX as u64 {
                u32::MAX
            } else {
                secs as u32
            },
            usec: since_epoch.subsec_micros(),
        }
    }

    /// The time since the Unix epoch.
    pub const fn since_epoch(self) -> Duration {
        Duration::from_secs(self.sec as u64).saturating_add(Duration::from_micros(self.usec as u64))
    }
}

impl From<Duration> for Timestamp {
    /// [`Timestamp::from_unix`].
    fn from(since_epoch: Duration) -> Self {
        Self::from_unix(since_epoch)
    }
}

#[cfg(feature = "std")]
impl From<std::time::SystemTime> for Timestamp {
    /// The wall-clock time `t`; a time before the Unix epoch gives 0.
    fn from(t: std::time::SystemTime) -> Self {
        Self::from_unix(t.duration_since(std::time::UNIX_EPOCH).unwrap_or_default())
    }
}

impl fmt::Display for Timestamp {
    /// `SECONDS.MICROSECONDS`, six fraction digits.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:06}", self.sec, self.usec)
    }
}

/// A timestamp that is not `SECONDS[.MICROSECONDS]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "expected SECONDS[.MICROSECONDS]: decimal seconds below 2^32, up to 6 fraction digits (at byte {offset})"
)]
pub struct TimestampError {
    /// Byte offset of the first character that does not fit.
    pub offset: usize,
}

impl FromStr for Timestamp {
    type Err = TimestampError;

    /// `SECONDS[.MICROSECONDS]`: decimal seconds (at most `u32::MAX`), then optionally a dot
    /// and 1 to 6 fraction digits (`.5` is 500 000 µs).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (sec, frac) = s.split_once('.').map_or((s, None), |(a, b)| (a, Some(b)));
        let sec = decimal(sec, 0)?;
        let usec = match frac {
            None => 0,
            Some(frac) => {
                let start = s.len() - frac.len();
                if frac.len() > 6 {
                    return Err(TimestampError { offset: start + 6 });
                }
                decimal(frac, start)? * 10u32.pow(6 - frac.len() as u32)
            }
        };
        Ok(Self::new(sec, usec))
    }
}

/// A non-empty run of decimal digits below 2^32 found at offset `start`.
fn decimal(digits: &str, start: usize) -> Result<u32, TimestampError> {
    if digits.is_empty() {
        return Err(TimestampError { offset: start });
    }
    digits.bytes().enumerate().try_fold(0u32, |n, (i, b)| {
        let digit = b.is_ascii_digit().then(|| u32::from(b - b'0'));
        digit
            .and_then(|d| n.checked_mul(10)?.checked_add(d))
            .ok_or(TimestampError { offset: start + i })
    })
}

/// An address with its port when known: how a HEP packet's source or destination is shown.
/// Printed `192.0.2.1:5060`, `[2001:db8::1]:5060` (brackets around IPv6 with a port), or the
/// bare address without a port.
///
/// ```
/// use hep_codec::Endpoint;
///
/// let v6 = Endpoint::from("[2001:db8::1]:5060".parse::<std::net::SocketAddr>().unwrap());
/// assert_eq!(v6.to_string(), "[2001:db8::1]:5060");
/// let bare = Endpoint { addr: "2001:db8::1".parse().unwrap(), port: None };
/// assert_eq!(bare.to_string(), "2001:db8::1");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Endpoint {
    /// The IP address.
    pub addr: IpAddr,
    /// The port, when known.
    pub port: Option<u16>,
}

impl From<SocketAddr> for Endpoint {
    fn from(a: SocketAddr) -> Self {
        Self {
            addr: a.ip(),
            port: Some(a.port()),
        }
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.port {
            Some(port) => SocketAddr::new(self.addr, port).fmt(f),
            None => self.addr.fmt(f),
        }
    }
}
