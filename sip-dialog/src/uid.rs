//! [`DialogUid`]: the proxy's name for a tracked dialog (Kamailio's `hash_entry`/`hash_id`
//! pair), unique across restarts and across the nodes sharing a store, and the dialog-id
//! cookie a proxy carries in its Record-Route URI (Kamailio's `did` parameter,
//! `dlg_match_mode`).

use core::fmt;
use core::sync::atomic::{AtomicU64, Ordering};
use core::time::Duration;

use sip_parser::{HeaderName, Message};

/// Bits of a [`DialogUid`] below the node number.
const SEQ_BITS: u32 = 56;
const SEQ_MASK: u64 = (1 << SEQ_BITS) - 1;
/// Sequence numbers a node may hand out per millisecond before it runs ahead of the clock.
const PER_MS_SHIFT: u32 = 12;

/// A tracked dialog's identifier: the node that created it (8 bits) and a sequence number
/// (56 bits) that starts from the wall clock (milliseconds × 4096) when the tracker starts and
/// above every restored dialog of the node, so identifiers stay unique across restarts as long
/// as a node creates fewer than 4 096 000 dialogs per second on average, and across nodes as
/// long as each has its own node number.
///
/// Printed (and stored) as 16 lower-case hex digits.
///
/// ```
/// use sip_dialog::DialogUid;
/// let id = DialogUid::new(3, 0x1234);
/// assert_eq!(id.node(), 3);
/// assert_eq!(id.to_string(), "0300000000001234");
/// assert_eq!("0300000000001234".parse::<DialogUid>(), Ok(id));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DialogUid(pub u64);

impl DialogUid {
    /// The identifier of sequence number `seq` (low 56 bits kept) on `node`.
    pub const fn new(node: u8, seq: u64) -> Self {
        DialogUid(((node as u64) << SEQ_BITS) | (seq & SEQ_MASK))
    }

    /// The node that created the dialog.
    pub const fn node(self) -> u8 {
        (self.0 >> SEQ_BITS) as u8
    }

    /// The per-node sequence number.
    pub const fn seq(self) -> u64 {
        self.0 & SEQ_MASK
    }

    /// The identifier as 16 hex digits, without allocating.
    pub fn to_hex(self) -> HexUid {
        let mut buf = [0u8; 16];
        for (i, b) in buf.iter_mut().enumerate() {
            let nibble = (self.0 >> (60 - 4 * i)) & 0xf;
            *b = b"0123456789abcdef"[nibble as usize];
        }
        HexUid(buf)
    }

    /// Parses 1 to 16 hex digits (either case).
    pub fn from_hex(s: &[u8]) -> Option<Self> {
        if s.is_empty() || s.len() > 16 {
            return None;
        }
        let mut v = 0u64;
        for &c in s {
            let d = match c {
                b'0'..=b'9' => c - b'0',
                b'a'..=b'f' => c - b'a' + 10,
                b'A'..=b'F' => c - b'A' + 10,
                _ => return None,
            };
            v = (v << 4) | u64::from(d);
        }
        Some(DialogUid(v))
    }
}

impl fmt::Display for DialogUid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.to_hex().as_str())
    }
}

/// Not 1 to 16 hex digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a dialog id is 1 to 16 hex digits")]
pub struct BadUid;

impl core::str::FromStr for DialogUid {
    type Err = BadUid;
    fn from_str(s: &str) -> Result<Self, BadUid> {
        DialogUid::from_hex(s.as_bytes()).ok_or(BadUid)
    }
}

/// A [`DialogUid`] as 16 hex digits held inline.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct HexUid([u8; 16]);

impl HexUid {
    /// The digits.
    pub fn as_str(&self) -> &str {
        // Only ASCII hex digits are ever written.
        core::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl fmt::Debug for HexUid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for HexUid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The Record-Route URI parameter that carries a dialog's id (`did=0300000000001234`),
/// rendered inline: append it to the proxy's own Record-Route URI (`<sip:proxy;lr;{param}>`)
/// so that in-dialog requests bring it back in their Route (Kamailio's `rr_param`).
///
/// ```
/// use sip_dialog::{DialogUid, RrCookie};
/// let c = RrCookie::new("did", DialogUid::new(1, 0xab));
/// assert_eq!(c.to_string(), "did=01000000000000ab");
/// let rr = format!("<sip:proxy.example.com;lr;{c}>");
/// assert_eq!(rr, "<sip:proxy.example.com;lr;did=01000000000000ab>");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RrCookie<'a> {
    name: &'a str,
    uid: DialogUid,
}

impl<'a> RrCookie<'a> {
    /// The parameter `name=<16 hex digits>`.
    pub fn new(name: &'a str, uid: DialogUid) -> Self {
        RrCookie { name, uid }
    }
}

impl fmt::Display for RrCookie<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}", self.name, self.uid.to_hex())
    }
}

/// The most Route entries [`cookie_in_routes`] looks at.
pub const MAX_ROUTES_SEARCHED: usize = 8;

/// The dialog ids carried by parameter `name` in the URIs of `request`'s Route entries, top
/// first (at most [`MAX_ROUTES_SEARCHED`] entries are looked at; malformed ones are skipped).
/// Several can be found when the request passes the proxy twice (a spiral, or double
/// Record-Route); each is only a hint: the tracker still checks Call-ID and tags.
///
/// ```
/// use sip_dialog::{cookie_in_routes, DialogUid};
/// let bye = sip_parser::Message::parse_slice(
///     b"BYE sip:bob@192.0.2.4 SIP/2.0\r\n\
///       Route: <sip:proxy.example.com;lr;did=01000000000000ab>, <sip:edge.example.com;lr>\r\n\r\n",
/// ).unwrap();
/// let ids: Vec<_> = cookie_in_routes(&bye, "did").collect();
/// assert_eq!(ids, [DialogUid::new(1, 0xab)]);
/// ```
pub fn cookie_in_routes<'m, B: AsRef<[u8]>>(
    request: &'m Message<B>,
    name: &'m str,
) -> impl Iterator<Item = DialogUid> + 'm {
    // Most requests carry no cookie: look for the parameter's name in the raw Route values
    // before parsing any of them.
    let present = request
        .headers_of(HeaderName::Route)
        .any(|h| contains_param(h.value, name));
    request
        .routes()
        .take(if present { MAX_ROUTES_SEARCHED } else { 0 })
        .filter_map(Result::ok)
        .filter_map(move |r| uri_cookie(r.raw_uri, name))
}

/// The dialog id in parameter `name` of a URI as written. Read straight from the text (the
/// value up to the next `;`, `?` or `>`), without parsing the URI: a cookie is only a hint,
/// which the tracker checks against the Call-ID and tags.
pub(crate) fn uri_cookie(raw_uri: &[u8], name: &str) -> Option<DialogUid> {
    DialogUid::from_hex(param_value(raw_uri, name)?)
}

/// The value of the first `;name=value` piece of `text` (ASCII case-insensitive name), the
/// value ending at `;`, `?`, `>`, `,`, white space or the end.
fn param_value<'a>(text: &'a [u8], name: &str) -> Option<&'a [u8]> {
    let n = name.as_bytes();
    text.split(|&b| b == b';').skip(1).find_map(|p| {
        let matches =
            p.len() > n.len() && p[n.len()] == b'=' && p[..n.len()].eq_ignore_ascii_case(n);
        if !matches {
            return None;
        }
        let v = &p[n.len() + 1..];
        let end = v
            .iter()
            .position(|&b| matches!(b, b'?' | b'>' | b',' | b' ' | b'\t'))
            .unwrap_or(v.len());
        Some(&v[..end])
    })
}

/// True when `text` has a `;name=` piece: a cheap pre-check before parsing Route entries.
fn contains_param(text: &[u8], name: &str) -> bool {
    param_value(text, name).is_some()
}

/// Hands out [`DialogUid`]s: one atomic counter per tracker.
#[derive(Debug)]
pub(crate) struct UidGen {
    node: u8,
    next: AtomicU64,
}

impl UidGen {
    pub(crate) fn new(node: u8, now: Duration) -> Self {
        let ms = u64::try_from(now.as_millis()).unwrap_or(u64::MAX);
        let start = ms.saturating_mul(1 << PER_MS_SHIFT) & SEQ_MASK;
        UidGen {
            node,
            next: AtomicU64::new(start.max(1)),
        }
    }

    pub(crate) fn next(&self) -> DialogUid {
        DialogUid::new(self.node, self.next.fetch_add(1, Ordering::Relaxed))
    }

    /// Keeps new ids above a restored id of this node.
    pub(crate) fn observe(&self, uid: DialogUid) {
        if uid.node() == self.node {
            self.next.fetch_max(uid.seq() + 1, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::String;

    #[test]
    fn hex_round_trip_and_rejects() {
        for v in [0u64, 1, 0xdead_beef, u64::MAX] {
            let id = DialogUid(v);
            assert_eq!(
                DialogUid::from_hex(id.to_hex().as_str().as_bytes()),
                Some(id)
            );
        }
        assert_eq!(DialogUid::from_hex(b"AbC"), Some(DialogUid(0xabc)));
        for bad in [&b""[..], b"12345678901234567", b"xyz", b"12 3"] {
            assert_eq!(DialogUid::from_hex(bad), None);
        }
    }

    #[test]
    fn ids_are_unique_and_above_restored_ones() {
        let g = UidGen::new(7, Duration::from_secs(1_700_000_000));
        let a = g.next();
        let b = g.next();
        assert_ne!(a, b);
        assert_eq!(a.node(), 7);
        g.observe(DialogUid::new(7, a.seq() + 1000));
        assert_eq!(g.next().seq(), a.seq() + 1001);
        g.observe(DialogUid::new(8, u64::MAX));
        assert_eq!(g.next().seq(), a.seq() + 1002);
        // A later start (restart) begins above what an earlier run handed out at < 4096/ms.
        let later = UidGen::new(7, Duration::from_secs(1_700_000_001));
        assert!(later.next().seq() > a.seq() + 4000);
    }

    #[test]
    fn cookie_values_end_where_the_uri_or_entry_does() {
        for (text, want) in [
            (&b"sip:p;lr;did=ab"[..], Some(0xab)),
            (b"sip:p;did=ab;lr", Some(0xab)),
            (b"sip:p;DID=ab?x=1", Some(0xab)),
            (b"<sip:p;did=ab>;x=1", Some(0xab)),
            (b"sip:p;didx=ab;did=cd", Some(0xcd)),
            (b"sip:p;did=", None),
            (b"sip:p;did=xyz", None),
            (b"sip:p;lr", None),
            (b"sip:did=ab@p", None),
        ] {
            assert_eq!(
                uri_cookie(text, "did"),
                want.map(DialogUid),
                "{}",
                String::from_utf8_lossy(text)
            );
        }
    }

    #[test]
    fn cookies_are_found_in_any_route_entry() {
        let m = Message::parse_slice(
            b"ACK sip:b@h SIP/2.0\r\nRoute: <sip:x;lr>\r\nRoute: <sip:p;did=zz;lr>, <sip:q;lr;DID=ff>\r\n\r\n",
        )
        .unwrap();
        let ids: alloc::vec::Vec<_> = cookie_in_routes(&m, "did").collect();
        assert_eq!(ids, [DialogUid(0xff)]);
    }
}
