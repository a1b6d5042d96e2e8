//! Header names: the well-known ones as an enum, compact forms included.

/// A header name the parser knows, or [`HeaderName::Other`].
///
/// Classification is case-insensitive and maps every RFC 3261 compact form (`i m e l c f s
/// k t v`) and the registered extension ones (`o r b u y x a d j`) to the full name, so
/// every lookup path treats `v` and `Via` alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
#[repr(u8)]
pub enum HeaderName {
    /// `Accept`
    Accept,
    /// `Accept-Contact` (compact `a`)
    AcceptContact,
    /// `Allow`
    Allow,
    /// `Allow-Events` (compact `u`)
    AllowEvents,
    /// `Authorization`
    Authorization,
    /// `Call-ID` (compact `i`)
    CallId,
    /// `Contact` (compact `m`)
    Contact,
    /// `Content-Encoding` (compact `e`)
    ContentEncoding,
    /// `Content-Length` (compact `l`)
    ContentLength,
    /// `Content-Type` (compact `c`)
    ContentType,
    /// `CSeq`
    CSeq,
    /// `Date`
    Date,
    /// `Event` (compact `o`)
    Event,
    /// `Expires`
    Expires,
    /// `From` (compact `f`)
    From,
    /// `Identity` (compact `y`)
    Identity,
    /// `Max-Forwards`
    MaxForwards,
    /// `Min-Expires`
    MinExpires,
    /// `Path`
    Path,
    /// `Proxy-Authenticate`
    ProxyAuthenticate,
    /// `Proxy-Authorization`
    ProxyAuthorization,
    /// `Proxy-Require`
    ProxyRequire,
    /// `Reason`
    Reason,
    /// `Record-Route`
    RecordRoute,
    /// `Refer-To` (compact `r`)
    ReferTo,
    /// `Referred-By` (compact `b`)
    ReferredBy,
    /// `Reject-Contact` (compact `j`)
    RejectContact,
    /// `Request-Disposition` (compact `d`)
    RequestDisposition,
    /// `Require`
    Require,
    /// `Route`
    Route,
    /// `Server`
    Server,
    /// `Session-Expires` (compact `x`)
    SessionExpires,
    /// `Subject` (compact `s`)
    Subject,
    /// `Subscription-State`
    SubscriptionState,
    /// `Supported` (compact `k`)
    Supported,
    /// `Timestamp`
    Timestamp,
    /// `To` (compact `t`)
    To,
    /// `Unsupported`
    Unsupported,
    /// `User-Agent`
    UserAgent,
    /// `Via` (compact `v`)
    Via,
    /// `WWW-Authenticate`
    WwwAuthenticate,
    /// Any other header: compare its name as written, case-insensitively.
    Other,
}

/// Every known name, in discriminant order.
const ALL: [HeaderName; 41] = [
    HeaderName::Accept,
    HeaderName::AcceptContact,
    HeaderName::Allow,
    HeaderName::AllowEvents,
    HeaderName::Authorization,
    HeaderName::CallId,
    HeaderName::Contact,
    HeaderName::ContentEncoding,
    HeaderName::ContentLength,
    HeaderName::ContentType,
    HeaderName::CSeq,
    HeaderName::Date,
    HeaderName::Event,
    HeaderName::Expires,
    HeaderName::From,
    HeaderName::Identity,
    HeaderName::MaxForwards,
    HeaderName::MinExpires,
    HeaderName::Path,
    HeaderName::ProxyAuthenticate,
    HeaderName::ProxyAuthorization,
    HeaderName::ProxyRequire,
    HeaderName::Reason,
    HeaderName::RecordRoute,
    HeaderName::ReferTo,
    HeaderName::ReferredBy,
    HeaderName::RejectContact,
    HeaderName::RequestDisposition,
    HeaderName::Require,
    HeaderName::Route,
    HeaderName::Server,
    HeaderName::SessionExpires,
    HeaderName::Subject,
    HeaderName::SubscriptionState,
    HeaderName::Supported,
    HeaderName::Timestamp,
    HeaderName::To,
    HeaderName::Unsupported,
    HeaderName::UserAgent,
    HeaderName::Via,
    HeaderName::WwwAuthenticate,
];

type Words = [u64; 3];

/// Slot of a header name in [`CANDIDATE`]: its length and the low five bits of its first
/// byte (which tell the letters apart).
const fn candidate_key(len: usize, first: u8) -> usize {
    ((len & 31) << 5) | (first & 0x1f) as usize
}

/// For each (length, first letter): the index in [`ALL`] of the one known name (or compact
/// form) with them, `u8::MAX` for none.
static CANDIDATE: [u8; 32 * 32] = candidates();

const fn candidates() -> [u8; 32 * 32] {
    let mut t = [u8::MAX; 32 * 32];
    let mut k = 0;
    while k < ALL.len() {
        if let Some(s) = ALL[k].as_str() {
            let b = s.as_bytes();
            let slot = candidate_key(b.len(), b[0]);
            if t[slot] == u8::MAX {
                t[slot] = k as u8;
            }
        }
        if let Some(c) = ALL[k].compact() {
            t[candidate_key(1, c.as_bytes()[0])] = k as u8;
        }
        k += 1;
    }
    t
}

/// Word `k` (bytes `8k..8k+8`) of `src`, little-endian.
#[inline]
fn word(src: &[u8; 24], k: usize) -> u64 {
    let c = &src[8 * k..8 * k + 8];
    u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]])
}

/// Keeps the low `n` bytes of a word (`n` in 1..=8).
#[inline]
fn low_bytes(w: u64, n: usize) -> u64 {
    if n >= 8 {
        w
    } else {
        w & ((1u64 << (8 * n)) - 1)
    }
}

/// [`matches_packed`] for a name near the end of its buffer (fewer than 24 bytes left): out
/// of line, so the common path needs no copy.
#[cold]
fn matches_short(name: &[u8], target: &Words, mask: &Words) -> bool {
    let mut copy = [0u8; 24];
    copy[..name.len()].copy_from_slice(name);
    matches_packed(&copy, name.len(), target, mask)
}

/// Does `src[..len]` (2 ≤ len ≤ 24) equal the packed name, case folded by `mask`? Only the
/// words the name spans are loaded and compared.
#[inline(always)] // one hot caller; measured: out of line costs ~25 instructions a header
#[allow(clippy::inline_always)]
fn matches_packed(src: &[u8; 24], len: usize, target: &Words, mask: &Words) -> bool {
    let last = (len - 1) / 8;
    for k in 0..last {
        if (word(src, k) | mask[k]) != target[k] {
            return false;
        }
    }
    (low_bytes(word(src, last), len - 8 * last) | mask[last]) == target[last]
}

/// Lower-cased canonical names padded to 24 bytes, and the case-folding mask (0x20 on
/// letters), as little-endian words.
static PACKED: [(Words, Words); 41] = pack();

const fn pack() -> [(Words, Words); 41] {
    let mut out = [([0u64; 3], [0u64; 3]); 41];
    let mut k = 0;
    while k < ALL.len() {
        let name = match ALL[k].as_str() {
            Some(s) => s.as_bytes(),
            None => b"",
        };
        let mut i = 0;
        while i < name.len() {
            let b = name[i];
            let (t, m) = if b.is_ascii_alphabetic() {
                (b | 0x20, 0x20u64)
            } else {
                (b, 0)
            };
            out[k].0[i / 8] |= (t as u64) << (8 * (i % 8));
            out[k].1[i / 8] |= m << (8 * (i % 8));
            i += 1;
        }
        k += 1;
    }
    out
}

impl HeaderName {
    /// The canonical (long) spelling, e.g. `"Call-ID"`; `None` for [`HeaderName::Other`].
    pub const fn as_str(self) -> Option<&'static str> {
        Some(match self {
            Self::Accept => "Accept",
            Self::AcceptContact => "Accept-Contact",
            Self::Allow => "Allow",
            Self::AllowEvents => "Allow-Events",
            Self::Authorization => "Authorization",
            Self::CallId => "Call-ID",
            Self::Contact => "Contact",
            Self::ContentEncoding => "Content-Encoding",
            Self::ContentLength => "Content-Length",
            Self::ContentType => "Content-Type",
            Self::CSeq => "CSeq",
            Self::Date => "Date",
            Self::Event => "Event",
            Self::Expires => "Expires",
            Self::From => "From",
            Self::Identity => "Identity",
            Self::MaxForwards => "Max-Forwards",
            Self::MinExpires => "Min-Expires",
            Self::Path => "Path",
            Self::ProxyAuthenticate => "Proxy-Authenticate",
            Self::ProxyAuthorization => "Proxy-Authorization",
            Self::ProxyRequire => "Proxy-Require",
            Self::Reason => "Reason",
            Self::RecordRoute => "Record-Route",
            Self::ReferTo => "Refer-To",
            Self::ReferredBy => "Referred-By",
            Self::RejectContact => "Reject-Contact",
            Self::RequestDisposition => "Request-Disposition",
            Self::Require => "Require",
            Self::Route => "Route",
            Self::Server => "Server",
            Self::SessionExpires => "Session-Expires",
            Self::Subject => "Subject",
            Self::SubscriptionState => "Subscription-State",
            Self::Supported => "Supported",
            Self::Timestamp => "Timestamp",
            Self::To => "To",
            Self::Unsupported => "Unsupported",
            Self::UserAgent => "User-Agent",
            Self::Via => "Via",
            Self::WwwAuthenticate => "WWW-Authenticate",
            Self::Other => return None,
        })
    }

    /// Classifies a header name as written on the wire (case-insensitive, compact forms
    /// mapped to their full names).
    pub fn classify(name: &[u8]) -> Self {
        Self::classify_in(name, name.len())
    }

    /// Classifies `window[..len]`; bytes after the name in `window` let the comparison read
    /// whole words straight from the message instead of copying the name first.
    #[inline]
    pub(crate) fn classify_in(window: &[u8], len: usize) -> Self {
        let Some(name) = window.get(..len).filter(|_| (1..=24).contains(&len)) else {
            return Self::Other;
        };
        // Length and first letter index the one candidate (Call-ID and Contact share a
        // slot); one word-wise case-insensitive compare confirms it.
        let slot = CANDIDATE[candidate_key(len, name[0])];
        let Some(&(mut candidate)) = ALL.get(slot as usize) else {
            return Self::Other;
        };
        if len == 1 {
            let compact = candidate.compact().map_or(0, |c| c.as_bytes()[0]);
            return if name[0] | 0x20 == compact {
                candidate
            } else {
                Self::Other
            };
        }
        if candidate == Self::CallId && name[1] | 0x20 == b'o' {
            candidate = Self::Contact;
        }
        // Compare 24 padded bytes as three words; the mask folds case only where the
        // canonical name has a letter, so the match is exact.
        let (target, mask) = &PACKED[candidate as usize];
        let hit = match window.first_chunk::<24>() {
            Some(src) => matches_packed(src, len, target, mask),
            None => matches_short(name, target, mask),
        };
        if hit { candidate } else { Self::Other }
    }

    /// Is a field classified as `self` and written `written` the header a caller asked for by
    /// `query` (classified as `query_kind`)? Known names match by kind (so compact and long
    /// forms match each other), unknown ones by their spelling, case-insensitively.
    pub(crate) fn names_field(query_kind: Self, query: &[u8], kind: Self, written: &[u8]) -> bool {
        kind == query_kind && (kind != Self::Other || written.eq_ignore_ascii_case(query))
    }

    /// The compact form, if the header has one (`Via` → `"v"`).
    pub const fn compact(self) -> Option<&'static str> {
        Some(match self {
            Self::AcceptContact => "a",
            Self::ReferredBy => "b",
            Self::ContentType => "c",
            Self::RequestDisposition => "d",
            Self::ContentEncoding => "e",
            Self::From => "f",
            Self::CallId => "i",
            Self::RejectContact => "j",
            Self::Supported => "k",
            Self::ContentLength => "l",
            Self::Contact => "m",
            Self::Event => "o",
            Self::ReferTo => "r",
            Self::Subject => "s",
            Self::To => "t",
            Self::AllowEvents => "u",
            Self::Via => "v",
            Self::SessionExpires => "x",
            Self::Identity => "y",
            _ => return None,
        })
    }

    /// Headers whose value is a comma-separated list that may be split over several lines
    /// (RFC 3261 §7.3.1) — and, for validation, the complement: the single-valued ones.
    pub const fn is_list(self) -> bool {
        matches!(
            self,
            Self::Via
                | Self::Route
                | Self::RecordRoute
                | Self::Contact
                | Self::Allow
                | Self::AllowEvents
                | Self::Supported
                | Self::Require
                | Self::ProxyRequire
                | Self::Unsupported
                | Self::Path
                | Self::Accept
                | Self::AcceptContact
                | Self::RejectContact
                | Self::ContentEncoding
                | Self::Reason
                | Self::RequestDisposition
        )
    }
}

#[cfg(test)]
mod tests {
    use super::HeaderName as H;

    #[test]
    fn classify_every_known_name_both_cases_and_compact() {
        let all = [
            H::Accept,
            H::AcceptContact,
            H::Allow,
            H::AllowEvents,
            H::Authorization,
            H::CallId,
            H::Contact,
            H::ContentEncoding,
            H::ContentLength,
            H::ContentType,
            H::CSeq,
            H::Date,
            H::Event,
            H::Expires,
            H::From,
            H::Identity,
            H::MaxForwards,
            H::MinExpires,
            H::Path,
            H::ProxyAuthenticate,
            H::ProxyAuthorization,
            H::ProxyRequire,
            H::Reason,
            H::RecordRoute,
            H::ReferTo,
            H::ReferredBy,
            H::RejectContact,
            H::RequestDisposition,
            H::Require,
            H::Route,
            H::Server,
            H::SessionExpires,
            H::Subject,
            H::SubscriptionState,
            H::Supported,
            H::Timestamp,
            H::To,
            H::Unsupported,
            H::UserAgent,
            H::Via,
            H::WwwAuthenticate,
        ];
        for h in all {
            let s = h.as_str().unwrap();
            assert_eq!(H::classify(s.as_bytes()), h, "{s}");
            assert_eq!(H::classify(s.to_ascii_uppercase().as_bytes()), h, "{s}");
            assert_eq!(H::classify(s.to_ascii_lowercase().as_bytes()), h, "{s}");
            if let Some(c) = h.compact() {
                assert_eq!(H::classify(c.as_bytes()), h);
                assert_eq!(H::classify(c.to_ascii_uppercase().as_bytes()), h);
            }
        }
        // Near misses: every single-byte change of a known name is another name.
        for h in super::ALL {
            let name = h.as_str().unwrap().as_bytes().to_vec();
            for at in 0..name.len() {
                for b in [b'x', b'-', b'_', b'0', b'\r', name[at] ^ 0x20 ^ 0x01, 0xc1] {
                    let mut v = name.clone();
                    v[at] = b;
                    if !v.eq_ignore_ascii_case(&name) {
                        assert_eq!(H::classify(&v), H::Other, "{}", String::from_utf8_lossy(&v));
                        // Same with trailing bytes in the window (as framing calls it).
                        let mut window = v.clone();
                        window.extend_from_slice(b": value and more bytes");
                        assert_eq!(H::classify_in(&window, v.len()), H::Other);
                    }
                }
            }
            let mut window = name.clone();
            window.extend_from_slice(b": value and more bytes");
            assert_eq!(H::classify_in(&window, name.len()), h);
        }
        assert_eq!(H::classify(b"C%6Fntact"), H::Other);
        assert_eq!(H::classify(b"X-Foo"), H::Other);
        assert_eq!(H::classify(b"q"), H::Other);
        assert_eq!(H::classify(b""), H::Other);
    }
}
