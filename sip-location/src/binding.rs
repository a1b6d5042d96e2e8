//! [`Binding`]: one contact of an address-of-record, held in one shared byte buffer.
//!
//! A binding is written once (by the registrar, or by a backend reading it back) and then only
//! read and shared, so it is an immutable `Arc<[u8]>`: cloning it into a lookup result is an
//! atomic increment, and all its strings and fixed fields live in one heap block (no `String`
//! per field). [`Binding::as_bytes`] / [`Binding::from_bytes`] are also a stable, versioned
//! encoding a persistent backend can store as is.
//!
//! Layout (version 1, little-endian):
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 1 | format version (1) |
//! | 1 | 1 | [`Flags`] |
//! | 2 | 1 | presence bits (q, reg-id, flow, source, source IPv6, local, local IPv6, instance) |
//! | 3 | 1 | transport of the source ([`Transport`] index) |
//! | 4 | 8 | expiry, Unix seconds |
//! | 12 | 8 | last modification, Unix milliseconds |
//! | 20 | 4 | CSeq |
//! | 24 | 2 | q (thousandths) |
//! | 26 | 4 | reg-id |
//! | 30 | 10 | lengths (u16) of contact, Call-ID, Path, User-Agent, instance |
//! | 40 | 0/8 | flow id |
//! | … | 0/6/18 | source address (IP, port) |
//! | … | 0/6/18 | local socket (IP, port) |
//! | … | … | contact, Call-ID, Path, User-Agent, instance, back to back |

use alloc::sync::Arc;
use core::fmt;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use core::time::Duration;

use sip_parser::{Transport, Uri};
use smallvec::SmallVec;

/// Format version written in the first byte of [`Binding::as_bytes`].
pub const FORMAT_VERSION: u8 = 1;

const HEADER: usize = 40;
const HAS_Q: u8 = 1;
const HAS_REG_ID: u8 = 1 << 1;
const HAS_FLOW: u8 = 1 << 2;
const HAS_SOURCE: u8 = 1 << 3;
const SOURCE_V6: u8 = 1 << 4;
const HAS_LOCAL: u8 = 1 << 5;
const LOCAL_V6: u8 = 1 << 6;
const HAS_INSTANCE: u8 = 1 << 7;

/// Where a REGISTER came from, as the transport saw it (Kamailio's `received`, `socket` and
/// connection id): the proxy sends to this address instead of the Contact when the UA is
/// behind a NAT or registered an RFC 5626 flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Source {
    /// Source IP address and port of the REGISTER.
    pub addr: SocketAddr,
    /// Transport it arrived on.
    pub transport: Transport,
    /// The local socket (listener) it arrived on, when the proxy has several.
    pub local: Option<SocketAddr>,
    /// The connection or flow it arrived on (a TCP/TLS/WebSocket connection id chosen by the
    /// caller), so that requests reuse it (RFC 5626 §5.3).
    pub flow: Option<u64>,
}

impl Source {
    /// A source with no local socket and no flow id.
    pub fn new(addr: SocketAddr, transport: Transport) -> Self {
        Self {
            addr,
            transport,
            local: None,
            flow: None,
        }
    }
}

/// Per-binding flags set by the registrar (a bit set, like Kamailio's `cflags`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Flags(u8);

impl Flags {
    /// The UA is behind a NAT: the Contact differs from the source address, or names a
    /// private address. Send to [`Source::addr`], not to the Contact.
    pub const NAT: Flags = Flags(1);
    /// The binding should be kept alive with OPTIONS pings (see [`crate::keepalive`]).
    pub const KEEPALIVE: Flags = Flags(1 << 1);
    /// An RFC 5626 flow (`+sip.instance` and `reg-id` with `outbound` supported): requests
    /// to this binding go over the flow it registered on.
    pub const OUTBOUND: Flags = Flags(1 << 2);

    /// No flag.
    pub const fn empty() -> Self {
        Flags(0)
    }
    /// The raw bits.
    pub const fn bits(self) -> u8 {
        self.0
    }
    /// Flags from raw bits (unknown bits kept).
    pub const fn from_bits(bits: u8) -> Self {
        Flags(bits)
    }
    /// True when every flag of `other` is set.
    pub const fn contains(self, other: Flags) -> bool {
        self.0 & other.0 == other.0
    }
    /// The union of both.
    #[must_use]
    pub const fn with(self, other: Flags) -> Self {
        Flags(self.0 | other.0)
    }
}

impl core::ops::BitOr for Flags {
    type Output = Flags;
    fn bitor(self, rhs: Flags) -> Flags {
        self.with(rhs)
    }
}

/// The fields of a new binding, borrowed; [`Binding::new`] packs them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BindingFields<'a> {
    /// The Contact URI as written, without `<>` and header parameters.
    pub contact: &'a str,
    /// When the binding expires, in Unix seconds (wall clock: see the crate docs on time).
    pub expires_at: u64,
    /// Last registration or refresh, in Unix milliseconds (orders equal-q bindings).
    pub last_modified_ms: u64,
    /// The `q` parameter in thousandths (`None` when the Contact had none).
    pub q: Option<u16>,
    /// Call-ID of the REGISTER that created or last refreshed the binding.
    pub call_id: &'a str,
    /// CSeq number of that REGISTER.
    pub cseq: u32,
    /// The Path header values of the REGISTER (RFC 3327), comma-separated as received, or
    /// empty: the route set towards the UA.
    pub path: &'a str,
    /// The User-Agent header, or empty.
    pub user_agent: &'a str,
    /// The `+sip.instance` parameter (RFC 5626/5627), quotes removed.
    pub instance: Option<&'a str>,
    /// The `reg-id` parameter (RFC 5626).
    pub reg_id: Option<u32>,
    /// Where the REGISTER came from.
    pub source: Option<Source>,
    /// Registrar flags.
    pub flags: Flags,
}

impl<'a> BindingFields<'a> {
    /// Fields with this contact and expiry and everything else empty.
    pub fn new(contact: &'a str, expires_at: u64) -> Self {
        Self {
            contact,
            expires_at,
            last_modified_ms: 0,
            q: None,
            call_id: "",
            cseq: 0,
            path: "",
            user_agent: "",
            instance: None,
            reg_id: None,
            source: None,
            flags: Flags::empty(),
        }
    }
}

/// A binding could not be built or decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BindingError {
    /// A string field is longer than the encoding allows (65 535 bytes).
    #[error("binding field {field} is {len} bytes long (at most 65535)")]
    TooLong {
        /// Which field.
        field: &'static str,
        /// Its length.
        len: usize,
    },
    /// A stored binding does not decode.
    #[error("stored binding does not decode: {what} (at byte offset {offset})")]
    Corrupt {
        /// What was wrong.
        what: &'static str,
        /// Byte offset in the buffer.
        offset: usize,
    },
}

/// One binding of an address-of-record to a contact: immutable, cheap to clone (one shared
/// buffer), compared by content.
///
/// ```
/// use sip_location::{Binding, BindingFields};
/// let mut f = BindingFields::new("sip:alice@192.0.2.4:5060", 1_700_003_600);
/// f.q = Some(700);
/// f.call_id = "a84b4c76e66710";
/// f.cseq = 3;
/// let b = Binding::new(&f).unwrap();
/// assert_eq!(b.contact(), "sip:alice@192.0.2.4:5060");
/// assert_eq!((b.q(), b.cseq(), b.call_id()), (Some(700), 3, "a84b4c76e66710"));
/// assert_eq!(Binding::from_bytes(b.as_bytes()).unwrap(), b);
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Binding(Arc<[u8]>);

fn put_addr(out: &mut SmallVec<[u8; 256]>, a: SocketAddr) {
    match a.ip() {
        IpAddr::V4(ip) => out.extend_from_slice(&ip.octets()),
        IpAddr::V6(ip) => out.extend_from_slice(&ip.octets()),
    }
    out.extend_from_slice(&a.port().to_le_bytes());
}

fn len16(field: &'static str, s: &str) -> Result<u16, BindingError> {
    u16::try_from(s.len()).map_err(|_| BindingError::TooLong {
        field,
        len: s.len(),
    })
}

impl Binding {
    /// Packs the fields into one buffer.
    pub fn new(f: &BindingFields<'_>) -> Result<Self, BindingError> {
        let instance = f.instance.unwrap_or("");
        let lens = [
            len16("contact", f.contact)?,
            len16("Call-ID", f.call_id)?,
            len16("Path", f.path)?,
            len16("User-Agent", f.user_agent)?,
            len16("+sip.instance", instance)?,
        ];
        let mut presence = 0u8;
        let mut out: SmallVec<[u8; 256]> = SmallVec::new();
        out.extend_from_slice(&[FORMAT_VERSION, f.flags.0, 0, 0]);
        out.extend_from_slice(&f.expires_at.to_le_bytes());
        out.extend_from_slice(&f.last_modified_ms.to_le_bytes());
        out.extend_from_slice(&f.cseq.to_le_bytes());
        if f.q.is_some() {
            presence |= HAS_Q;
        }
        out.extend_from_slice(&f.q.unwrap_or(0).to_le_bytes());
        if f.reg_id.is_some() {
            presence |= HAS_REG_ID;
        }
        out.extend_from_slice(&f.reg_id.unwrap_or(0).to_le_bytes());
        for l in lens {
            out.extend_from_slice(&l.to_le_bytes());
        }
        if let Some(s) = f.source {
            presence |= HAS_SOURCE;
            out[3] = transport_index(s.transport);
            if let Some(flow) = s.flow {
                presence |= HAS_FLOW;
                out.extend_from_slice(&flow.to_le_bytes());
            }
            if s.addr.is_ipv6() {
                presence |= SOURCE_V6;
            }
            put_addr(&mut out, s.addr);
            if let Some(l) = s.local {
                presence |= HAS_LOCAL;
                if l.is_ipv6() {
                    presence |= LOCAL_V6;
                }
                put_addr(&mut out, l);
            }
        }
        if f.instance.is_some() {
            presence |= HAS_INSTANCE;
        }
        out[2] = presence;
        for s in [f.contact, f.call_id, f.path, f.user_agent, instance] {
            out.extend_from_slice(s.as_bytes());
        }
        Ok(Self(Arc::from(&out[..])))
    }

    /// Reads a binding back from [`as_bytes`](Self::as_bytes) (what a persistent backend
    /// stored), checking every length and that every string is UTF-8.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, BindingError> {
        let corrupt = |what, offset| Err(BindingError::Corrupt { what, offset });
        if bytes.len() < HEADER {
            return corrupt("shorter than the fixed header", bytes.len());
        }
        if bytes[0] != FORMAT_VERSION {
            return corrupt("unknown format version", 0);
        }
        let presence = bytes[2];
        if presence & HAS_SOURCE != 0 && transport_from(bytes[3]).is_none() {
            return corrupt("unknown transport", 3);
        }
        if presence & HAS_SOURCE == 0
            && presence & (HAS_FLOW | SOURCE_V6 | HAS_LOCAL | LOCAL_V6) != 0
        {
            return corrupt("socket bits without a source", 2);
        }
        let strings = strings_offset(presence);
        let total: usize = (0..5)
            .map(|i| usize::from(read_u16(bytes, 30 + 2 * i)))
            .sum();
        if bytes.len() != strings + total {
            return corrupt(
                "lengths do not add up to the buffer",
                strings.min(bytes.len()),
            );
        }
        let mut at = strings;
        for i in 0..5 {
            let l = usize::from(read_u16(bytes, 30 + 2 * i));
            if core::str::from_utf8(&bytes[at..at + l]).is_err() {
                return corrupt("string field is not UTF-8", at);
            }
            at += l;
        }
        Ok(Self(Arc::from(bytes)))
    }

    /// The encoded form (see the module docs), for a backend to store.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    fn presence(&self) -> u8 {
        self.0[2]
    }

    fn string(&self, i: usize) -> &str {
        let b = &self.0;
        let mut at = strings_offset(self.presence());
        for k in 0..i {
            at += usize::from(read_u16(b, 30 + 2 * k));
        }
        let l = usize::from(read_u16(b, 30 + 2 * i));
        // Checked at construction (`new` takes &str, `from_bytes` validates).
        core::str::from_utf8(&b[at..at + l]).unwrap_or_default()
    }

    /// The Contact URI as written (no `<>`).
    pub fn contact(&self) -> &str {
        self.string(0)
    }
    /// The Call-ID of the REGISTER that last wrote it.
    pub fn call_id(&self) -> &str {
        self.string(1)
    }
    /// The Path values (RFC 3327) as received, comma-separated; empty when none.
    pub fn path(&self) -> &str {
        self.string(2)
    }
    /// The User-Agent; empty when none.
    pub fn user_agent(&self) -> &str {
        self.string(3)
    }
    /// The `+sip.instance` value, quotes removed (e.g. `<urn:uuid:…>`).
    pub fn instance(&self) -> Option<&str> {
        (self.presence() & HAS_INSTANCE != 0).then(|| self.string(4))
    }
    /// The expiry instant in Unix seconds.
    pub fn expires_at(&self) -> u64 {
        read_u64(&self.0, 4)
    }
    /// The last registration or refresh, Unix milliseconds.
    pub fn last_modified_ms(&self) -> u64 {
        read_u64(&self.0, 12)
    }
    /// The CSeq number of the REGISTER that last wrote it.
    pub fn cseq(&self) -> u32 {
        read_u32(&self.0, 20)
    }
    /// The `q` value in thousandths.
    pub fn q(&self) -> Option<u16> {
        (self.presence() & HAS_Q != 0).then(|| read_u16(&self.0, 24))
    }
    /// The `reg-id` (RFC 5626).
    pub fn reg_id(&self) -> Option<u32> {
        (self.presence() & HAS_REG_ID != 0).then(|| read_u32(&self.0, 26))
    }
    /// Registrar flags.
    pub fn flags(&self) -> Flags {
        Flags(self.0[1])
    }
    /// Where the REGISTER came from.
    pub fn source(&self) -> Option<Source> {
        let p = self.presence();
        if p & HAS_SOURCE == 0 {
            return None;
        }
        let b = &self.0;
        let mut at = HEADER;
        let flow = (p & HAS_FLOW != 0).then(|| {
            at += 8;
            read_u64(b, HEADER)
        });
        let addr = read_addr(b, &mut at, p & SOURCE_V6 != 0);
        let local = (p & HAS_LOCAL != 0).then(|| read_addr(b, &mut at, p & LOCAL_V6 != 0));
        Some(Source {
            addr,
            transport: transport_from(b[3]).unwrap_or(Transport::Udp),
            local,
            flow,
        })
    }
    /// Seconds left at `now` (0 once expired).
    pub fn remaining(&self, now: Duration) -> u64 {
        self.expires_at().saturating_sub(now.as_secs())
    }
    /// True when the binding has expired at `now` (its expiry second has begun).
    pub fn is_expired(&self, now: Duration) -> bool {
        self.expires_at() <= now.as_secs()
    }
    /// The fields, borrowed (to build a changed copy).
    pub fn fields(&self) -> BindingFields<'_> {
        BindingFields {
            contact: self.contact(),
            expires_at: self.expires_at(),
            last_modified_ms: self.last_modified_ms(),
            q: self.q(),
            call_id: self.call_id(),
            cseq: self.cseq(),
            path: self.path(),
            user_agent: self.user_agent(),
            instance: self.instance(),
            reg_id: self.reg_id(),
            source: self.source(),
            flags: self.flags(),
        }
    }
    /// Where to send a request for this binding when it is not the Contact URI itself:
    /// the source of the REGISTER for a NATed UA or an RFC 5626 flow, `None` otherwise
    /// (resolve the Contact, RFC 3263). Path, when present, takes precedence for the proxy
    /// (it becomes the Route set).
    pub fn send_to(&self) -> Option<Source> {
        let f = self.flags();
        if f.contains(Flags::NAT) || f.contains(Flags::OUTBOUND) {
            self.source()
        } else {
            None
        }
    }
    /// True when this binding's contact is the same as `contact` under the URI comparison
    /// rules of RFC 3261 §19.1.4 (see [`same_contact`]).
    pub fn same_contact(&self, contact: &str) -> bool {
        same_contact(self.contact(), contact)
    }
    /// The RFC 5626 flow this binding is (`+sip.instance`, `reg-id`), when it is one
    /// ([`Flags::OUTBOUND`]).
    pub fn flow_key(&self) -> Option<(&str, u32)> {
        if !self.flags().contains(Flags::OUTBOUND) {
            return None;
        }
        Some((self.instance()?, self.reg_id()?))
    }
    /// True when `other` is the same binding of an AOR, i.e. a write of `other` replaces
    /// this one: the same RFC 5626 flow (instance and reg-id, RFC 5626 §6), or, for two
    /// bindings that are not flows, the same contact URI (RFC 3261 §10.3 step 7, §19.1.4).
    pub fn same_binding(&self, other: &Binding) -> bool {
        match (self.flow_key(), other.flow_key()) {
            (Some((i, r)), Some((j, s))) => r == s && i.eq_ignore_ascii_case(j),
            (None, None) => self.same_contact(other.contact()),
            _ => false,
        }
    }
}

/// Whether two contact URIs name the same binding: RFC 3261 §10.3 step 7 "searches the list
/// of current bindings using the URI comparison rules" (§19.1.4, [`Uri::equivalent`]). Text
/// that does not parse as a URI only matches itself byte for byte.
///
/// ```
/// assert!(sip_location::same_contact("sip:a@Host.example;transport=TCP", "sip:a@host.example;transport=tcp"));
/// assert!(!sip_location::same_contact("sip:a@host.example", "sip:A@host.example"));
/// ```
pub fn same_contact(a: &str, b: &str) -> bool {
    if a == b {
        return true;
    }
    match (Uri::parse(a.as_bytes()), Uri::parse(b.as_bytes())) {
        (Ok(x), Ok(y)) => x.equivalent(&y),
        _ => false,
    }
}

impl fmt::Debug for Binding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Binding")
            .field("contact", &self.contact())
            .field("expires_at", &self.expires_at())
            .field("q", &self.q())
            .field("call_id", &self.call_id())
            .field("cseq", &self.cseq())
            .field("last_modified_ms", &self.last_modified_ms())
            .field("path", &self.path())
            .field("user_agent", &self.user_agent())
            .field("instance", &self.instance())
            .field("reg_id", &self.reg_id())
            .field("source", &self.source())
            .field("flags", &self.flags())
            .finish()
    }
}

fn strings_offset(presence: u8) -> usize {
    let mut at = HEADER;
    if presence & HAS_SOURCE != 0 {
        if presence & HAS_FLOW != 0 {
            at += 8;
        }
        at += if presence & SOURCE_V6 != 0 { 18 } else { 6 };
        if presence & HAS_LOCAL != 0 {
            at += if presence & LOCAL_V6 != 0 { 18 } else { 6 };
        }
    }
    at
}

fn read_u16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}
fn read_u32(b: &[u8], at: usize) -> u32 {
    let mut x = [0u8; 4];
    x.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(x)
}
fn read_u64(b: &[u8], at: usize) -> u64 {
    let mut x = [0u8; 8];
    x.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(x)
}
fn read_addr(b: &[u8], at: &mut usize, v6: bool) -> SocketAddr {
    let ip = if v6 {
        let mut x = [0u8; 16];
        x.copy_from_slice(&b[*at..*at + 16]);
        *at += 16;
        IpAddr::V6(Ipv6Addr::from(x))
    } else {
        let ip = Ipv4Addr::new(b[*at], b[*at + 1], b[*at + 2], b[*at + 3]);
        *at += 4;
        IpAddr::V4(ip)
    };
    let port = read_u16(b, *at);
    *at += 2;
    SocketAddr::new(ip, port)
}

fn transport_index(t: Transport) -> u8 {
    Transport::ALL.iter().position(|&x| x == t).unwrap_or(0) as u8
}
fn transport_from(i: u8) -> Option<Transport> {
    Transport::ALL.get(usize::from(i)).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full() -> BindingFields<'static> {
        BindingFields {
            contact: "sip:alice@10.0.0.7:5060;transport=tcp",
            expires_at: 1_700_000_000,
            last_modified_ms: 1_699_999_000_123,
            q: Some(500),
            call_id: "843817637684230@998sdasdh09",
            cseq: 1826,
            path: "<sip:p1.example.com;lr>,<sip:p2.example.com;lr;ob>",
            user_agent: "softphone/1.0",
            instance: Some("<urn:uuid:00000000-0000-1000-8000-000A95A0E128>"),
            reg_id: Some(1),
            source: Some(Source {
                addr: "[2001:db8::9]:40312".parse().unwrap(),
                transport: Transport::Tls,
                local: Some("192.0.2.1:5061".parse().unwrap()),
                flow: Some(77),
            }),
            flags: Flags::NAT | Flags::OUTBOUND,
        }
    }

    #[test]
    fn round_trip_every_field() {
        let f = full();
        let b = Binding::new(&f).unwrap();
        assert_eq!(b.fields(), f);
        assert_eq!(Binding::from_bytes(b.as_bytes()).unwrap(), b);
        let minimal = BindingFields::new("sip:a@b", 5);
        let m = Binding::new(&minimal).unwrap();
        assert_eq!(m.fields(), minimal);
        assert_eq!(m.as_bytes().len(), HEADER + 7);
        let mut v4 = full();
        v4.source = Some(Source::new(
            "203.0.113.9:5060".parse().unwrap(),
            Transport::Udp,
        ));
        let b = Binding::new(&v4).unwrap();
        assert_eq!(b.fields(), v4);
    }

    #[test]
    fn corrupt_buffers_are_refused() {
        let b = Binding::new(&full()).unwrap();
        let bytes = b.as_bytes();
        for cut in [0, 10, HEADER, bytes.len() - 1] {
            assert!(Binding::from_bytes(&bytes[..cut]).is_err(), "{cut}");
        }
        let mut v = bytes.to_vec();
        v[0] = 9;
        assert!(matches!(
            Binding::from_bytes(&v),
            Err(BindingError::Corrupt { offset: 0, .. })
        ));
        let mut v = bytes.to_vec();
        let last = v.len() - 1;
        v[last] = 0xff;
        assert!(Binding::from_bytes(&v).is_err());
        let mut v = bytes.to_vec();
        v[3] = 42;
        assert!(Binding::from_bytes(&v).is_err());
    }

    #[test]
    fn too_long() {
        let long = "x".repeat(70_000);
        let f = BindingFields::new(&long, 1);
        assert_eq!(
            Binding::new(&f),
            Err(BindingError::TooLong {
                field: "contact",
                len: 70_000
            })
        );
    }

    #[test]
    fn send_to_follows_flags() {
        let mut f = full();
        assert!(Binding::new(&f).unwrap().send_to().is_some());
        f.flags = Flags::empty();
        assert!(Binding::new(&f).unwrap().send_to().is_none());
    }
}
