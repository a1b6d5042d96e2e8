//! Loop detection for proxies (RFC 3261 §16.3 item 4, §16.6 item 8): a hash over the fields
//! that decide how a request is processed, carried in the proxy's branch, so that a request
//! that comes back unchanged (a loop, 482) is told from one that comes back changed (a
//! spiral, processed again).

use core::fmt;

use crate::chars::trim;
use crate::error::FieldError;
use crate::ident::{Ident, MAGIC_COOKIE};
use crate::message::Message;
use crate::name::HeaderName;
use crate::random::Random;

/// Hex digits of the hash in a branch.
const HEX: usize = 16;
/// Random characters after the hash (96 bits): the part that makes the branch unique.
const UNIQUE: usize = 16;

/// The loop-detection hash of a request (RFC 3261 §16.6 item 8): 64 bits over the
/// Request-URI as received, the To tag, the From tag, Call-ID, the CSeq number (never the
/// method, so a CANCEL or ACK hashes like its INVITE), and every Proxy-Require,
/// Proxy-Authorization and Route entry, in order.
///
/// §16.6 item 8 also lists "the topmost Via header" among its examples; it is left out on
/// purpose. When a request loops back, its topmost Via is the one the last hop added, never
/// the one that was topmost on the first pass, so a hash including it would call every loop
/// a spiral.
///
/// How a proxy uses it (§16.3 item 4):
///
/// 1. Compute `request.loop_hash()` before changing anything (Route pop, Request-URI
///    rewrite).
/// 2. For each Via whose sent-by is one of this proxy's addresses: when
///    [`matches_branch`](Self::matches_branch) holds for its branch, the request has come
///    back unchanged: a loop, answer 482 (Loop Detected). Otherwise it is a spiral:
///    process it as a new request.
/// 3. Forward with a branch from [`branch`](Self::branch): `z9hG4bK`, the hash in hex, `.`,
///    and 16 random characters, so that the branch stays unique per transaction
///    (§8.1.1.7).
///
/// ```
/// use sip_parser::{Message, Random};
/// # struct Fixed(u8); impl Random for Fixed { fn fill(&mut self, b: &mut [u8]) { for x in b { self.0 = self.0.wrapping_add(13); *x = self.0 } } }
/// # let mut rng = Fixed(0); // with `std`: sip_parser::SystemRandom::new()
/// let req = |ruri: &str, vias: &str| Message::parse(bytes::Bytes::from(format!(
///     "INVITE {ruri} SIP/2.0\r\n{vias}To: <sip:bob@example.com>\r\n\
///      From: <sip:alice@example.com>;tag=a1\r\nCall-ID: c1\r\nCSeq: 1 INVITE\r\n\r\n"
/// ))).unwrap();
/// let me = "proxy.example.com";
/// let is_loop = |m: &Message| {
///     let hash = m.loop_hash().unwrap();
///     m.via().flatten().any(|v| v.host == me && v.branch.is_some_and(|b| hash.matches_branch(b)))
/// };
///
/// // First pass: forward with a branch carrying the hash.
/// let first = req("sip:bob@example.com", "Via: SIP/2.0/UDP a.example.com;branch=z9hG4bK1\r\n");
/// assert!(!is_loop(&first));
/// let ours = first.loop_hash().unwrap().branch(&mut rng);
///
/// // It comes back unchanged through another proxy: a loop.
/// let back = req("sip:bob@example.com", &format!(
///     "Via: SIP/2.0/UDP b.example.com;branch=z9hG4bK2\r\n\
///      Via: SIP/2.0/UDP {me};branch={ours}\r\nVia: SIP/2.0/UDP a.example.com;branch=z9hG4bK1\r\n"));
/// assert!(is_loop(&back));
///
/// // It comes back with a new Request-URI (retargeted downstream): a spiral.
/// let spiral = req("sip:bob@192.0.2.4", &format!(
///     "Via: SIP/2.0/UDP b.example.com;branch=z9hG4bK2\r\n\
///      Via: SIP/2.0/UDP {me};branch={ours}\r\nVia: SIP/2.0/UDP a.example.com;branch=z9hG4bK1\r\n"));
/// assert!(!is_loop(&spiral));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LoopHash(pub u64);

impl<B: AsRef<[u8]>> Message<B> {
    /// The loop-detection hash of this request (see [`LoopHash`]). Fails when From, To or
    /// CSeq does not parse (a request that fails [`validate`](Self::validate)).
    pub fn loop_hash(&self) -> Result<LoopHash, FieldError> {
        let mut h = Fnv::new();
        h.field(trim(self.request_uri().unwrap_or_default()));
        h.field(self.to()?.tag().unwrap_or_default().as_bytes());
        h.field(self.from()?.tag().unwrap_or_default().as_bytes());
        h.field(self.call_id().unwrap_or_default().as_bytes());
        h.field(&self.cseq()?.seq.to_le_bytes());
        for name in [HeaderName::ProxyRequire, HeaderName::Route] {
            h.field(name.as_str().unwrap_or_default().as_bytes());
            for entry in self.entries(name) {
                // Past the list limit the rest is not hashed; validate() reports it.
                let Ok((_, item)) = entry else { break };
                h.field(item);
            }
        }
        h.field(b"Proxy-Authorization");
        for a in self.headers_of(HeaderName::ProxyAuthorization) {
            h.field(a.value);
        }
        Ok(LoopHash(h.0))
    }
}

impl LoopHash {
    /// A new branch carrying this hash: `z9hG4bK`, 16 hex digits, `.`, 16 random characters.
    pub fn branch(&self, rng: &mut (impl Random + ?Sized)) -> Ident {
        let mut id = Ident::empty();
        id.push(MAGIC_COOKIE.as_bytes());
        id.push(&self.hex());
        id.push(b".");
        id.push_random(rng, UNIQUE);
        id
    }

    /// True when `branch` was made by [`branch`](Self::branch) from this same hash: a
    /// request carrying it in one of this proxy's Vias has looped.
    pub fn matches_branch(&self, branch: &str) -> bool {
        let b = branch.as_bytes();
        let start = MAGIC_COOKIE.len();
        b.len() > start + HEX
            && b.starts_with(MAGIC_COOKIE.as_bytes())
            && b[start..start + HEX] == self.hex()
            && b[start + HEX] == b'.'
    }

    /// The hash as 16 lowercase hex digits.
    pub fn hex(&self) -> [u8; HEX] {
        let mut out = [0u8; HEX];
        for (i, o) in out.iter_mut().enumerate() {
            *o = b"0123456789abcdef"[((self.0 >> (60 - 4 * i)) & 0xf) as usize];
        }
        out
    }
}

impl fmt::Display for LoopHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

/// 64-bit FNV-1a, each field followed by its length so that field boundaries count.
struct Fnv(u64);

impl Fnv {
    fn new() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }
    fn field(&mut self, s: &[u8]) {
        // Two plain loops (a chained iterator checks which half it is in at every byte).
        for &b in s {
            self.byte(b);
        }
        for b in (s.len() as u32).to_le_bytes() {
            self.byte(b);
        }
    }
    fn byte(&mut self, b: u8) {
        self.0 ^= u64::from(b);
        self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::format;

    fn req(extra: &str) -> Message<alloc::vec::Vec<u8>> {
        let raw = format!(
            "INVITE sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/UDP a;branch=z9hG4bK1\r\n\
             To: <sip:bob@example.com>\r\nFrom: <sip:alice@example.com>;tag=a1\r\n\
             Call-ID: c1\r\nCSeq: 1 INVITE\r\n{extra}\r\n"
        );
        Message::from_buf(raw.into_bytes(), &crate::Limits::DEFAULT).unwrap()
    }

    fn hash(m: &str) -> LoopHash {
        Message::parse_slice(m.as_bytes())
            .unwrap()
            .loop_hash()
            .unwrap()
    }

    /// §16.6 item 8: the hash "SHOULD reflect all of those fields (including any Route,
    /// Proxy-Require and Proxy-Authorization header fields)"; "The request method MUST NOT
    /// be included".
    #[test]
    fn what_changes_the_hash_and_what_does_not() {
        let base = req("").loop_hash().unwrap();
        // Changes that alter processing: a spiral.
        for extra in [
            "Route: <sip:p2;lr>\r\n",
            "Proxy-Require: foo\r\n",
            "Proxy-Authorization: Digest username=\"a\"\r\n",
        ] {
            assert_ne!(req(extra).loop_hash().unwrap(), base, "{extra}");
        }
        let orig = core::str::from_utf8(req("").as_wire()).unwrap().to_owned();
        for (from, to) in [
            ("INVITE sip:bob@example.com", "INVITE sip:bob@192.0.2.4"),
            (
                "<sip:bob@example.com>\r\n",
                "<sip:bob@example.com>;tag=b\r\n",
            ),
            ("tag=a1", "tag=a2"),
            ("Call-ID: c1", "Call-ID: c2"),
            ("CSeq: 1 INVITE", "CSeq: 2 INVITE"),
        ] {
            assert_ne!(hash(&orig.replacen(from, to, 1)), base, "{to}");
        }
        // What does not: the method, other Vias, headers that do not route.
        let cancel = orig
            .replacen("INVITE sip", "CANCEL sip", 1)
            .replacen("1 INVITE", "1 CANCEL", 1);
        assert_eq!(hash(&cancel), base);
        let more_vias = orig.replacen("Via:", "Via: SIP/2.0/UDP p;branch=z9hG4bK9\r\nVia:", 1);
        assert_eq!(hash(&more_vias), base);
        assert_eq!(req("Subject: hi\r\n").loop_hash().unwrap(), base);
        // Entries, not fields: one Route field with two entries is two Route fields.
        assert_eq!(
            req("Route: <sip:p2;lr>, <sip:p3;lr>\r\n")
                .loop_hash()
                .unwrap(),
            req("Route: <sip:p2;lr>\r\nRoute: <sip:p3;lr>\r\n")
                .loop_hash()
                .unwrap()
        );
        // Field boundaries count.
        assert_ne!(
            req("Proxy-Require: ab\r\n").loop_hash().unwrap(),
            req("Proxy-Require: a, b\r\n").loop_hash().unwrap()
        );
    }

    #[test]
    fn branch_carries_the_hash() {
        struct Fixed;
        impl Random for Fixed {
            fn fill(&mut self, b: &mut [u8]) {
                b.fill(0);
            }
        }
        let h = LoopHash(0x0123_4567_89ab_cdef);
        let b = h.branch(&mut Fixed);
        assert_eq!(b.as_str(), "z9hG4bK0123456789abcdef.AAAAAAAAAAAAAAAA");
        assert!(h.matches_branch(&b));
        assert!(!LoopHash(1).matches_branch(&b));
        assert!(!h.matches_branch("z9hG4bK0123456789abcdef"));
        assert!(!h.matches_branch("z9hG4bK0123456789abcdefX"));
        assert!(!h.matches_branch("z9hG4bk0123456789abcdef.x"));
        assert!(crate::chars::all_token(b.as_bytes()));
        assert_eq!(alloc::format!("{h}"), "0123456789abcdef");
    }

    #[test]
    fn unparsable_fields_are_errors() {
        let m = Message::parse_slice(
            b"INVITE sip:a@b SIP/2.0\r\nTo: <sip:a@b>\r\nFrom: <sip:c@d>\r\nCSeq: x\r\n\r\n",
        )
        .unwrap();
        assert_eq!(m.loop_hash().unwrap_err().header, "CSeq");
    }
}
