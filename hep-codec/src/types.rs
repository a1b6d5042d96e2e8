//! Small typed values carried in HEP: address family, IP protocol, payload protocol type.

use core::fmt;

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

/// IANA IP protocol number (chunk 0x0002, HEPv1/v2 header byte 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IpProto(pub u8);

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
