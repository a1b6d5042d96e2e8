//! Transaction matching keys (RFC 3261 §17.1.3, §17.2.3) and the layout of the branches this
//! layer generates.
//!
//! **Server side.** A request with an RFC 3261 branch (magic cookie `z9hG4bK`) matches a
//! transaction by branch, sent-by and method (ACK matching INVITE). Without the cookie (an
//! RFC 2543 peer) it matches by Request-URI (§19.1.4 comparison), To tag, From tag, Call-ID,
//! CSeq number and top Via. The hash of a key leaves the method out, so an INVITE, its ACK
//! and its CANCEL land in the same shard and bucket.
//!
//! **Client side.** The branch of every request this layer sends is
//! `z9hG4bK` + 16 hex digits naming the transaction (shard, slot, generation) + 16 hex digits
//! of a keyed PRF (unguessable) [+ `.` + 16 hex digits of the §16.6 item 8 loop hash for
//! proxied requests]. A response finds its transaction by decoding the first part (O(1), no
//! hash lookup) and comparing the whole branch.

use core::hash::{BuildHasher, Hasher};

use alloc::boxed::Box;

use ahash::{AHasher, RandomState};
use sip_parser::{Message, Uri, Via};
use siphasher::sip::SipHasher13;

/// Method classes for matching: ACK matches INVITE (§17.2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Class {
    Invite,
    Ack,
    Cancel,
    Other,
}

impl Class {
    pub(crate) fn of(method: &str) -> Self {
        match method {
            "INVITE" => Class::Invite,
            "ACK" => Class::Ack,
            "CANCEL" => Class::Cancel,
            _ => Class::Other,
        }
    }
}

/// Why a request cannot be matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyError {
    NoVia,
    BadHeader,
}

/// The fields of an incoming request that matching reads, borrowed. The top Via is parsed
/// once, here: matching reads its branch and sent-by, a new server transaction its response
/// route.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Probe<'a> {
    pub(crate) hash: u64,
    pub(crate) class: Class,
    pub(crate) method: &'a str,
    /// The top Via.
    pub(crate) via: Via<'a>,
    /// The branch, when it carries the magic cookie.
    pub(crate) branch: Option<&'a str>,
    /// RFC 2543 fields (only read when `branch` is `None`).
    pub(crate) legacy: Option<Legacy<'a>>,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Legacy<'a> {
    pub(crate) call_id: &'a str,
    pub(crate) cseq: u32,
    pub(crate) from_tag: Option<&'a str>,
    pub(crate) to_tag: Option<&'a str>,
    pub(crate) request_uri: &'a [u8],
}

/// A 128-bit key for the keyed PRF (SipHash-1-3) of the unguessable part of our branches.
#[derive(Debug, Clone, Copy)]
pub(crate) struct HashKey(pub(crate) [u64; 2]);

impl HashKey {
    pub(crate) fn hasher(&self) -> SipHasher13 {
        SipHasher13::new_with_keys(self.0[0], self.0[1])
    }
}

/// The keyed hash of the matching index (and shard choice): aHash under seeds derived from
/// the layer's secret, so nobody can aim collisions at the table (HashDoS), at a fraction of
/// SipHash's cost per message.
#[derive(Debug, Clone)]
pub(crate) struct MatchHash(RandomState);

impl MatchHash {
    /// Seeds derived from `key` (four SipHash outputs).
    pub(crate) fn new(key: &HashKey) -> Self {
        let seed = |i: u8| {
            let mut h = key.hasher();
            h.write_u8(i);
            h.finish()
        };
        MatchHash(RandomState::with_seeds(seed(0), seed(1), seed(2), seed(3)))
    }

    fn hasher(&self) -> AHasher {
        self.0.build_hasher()
    }
}

fn feed(h: &mut impl Hasher, b: &[u8]) {
    h.write(b);
    h.write_u8(0xff);
}

fn feed_lower(h: &mut impl Hasher, b: &[u8]) {
    // Lower-cased a chunk at a time: one hasher write per chunk, not per byte.
    let mut chunk = [0u8; 64];
    for part in b.chunks(chunk.len()) {
        let c = &mut chunk[..part.len()];
        c.copy_from_slice(part);
        c.make_ascii_lowercase();
        h.write(c);
    }
    h.write_u8(0xff);
}

impl<'a> Probe<'a> {
    /// Reads the matching fields of a request.
    pub(crate) fn of_request<B: AsRef<[u8]>>(
        msg: &'a Message<B>,
        key: &MatchHash,
    ) -> Result<Self, KeyError> {
        let method = msg.method().ok_or(KeyError::BadHeader)?;
        let via = msg
            .top_via()
            .map_err(|_| KeyError::BadHeader)?
            .ok_or(KeyError::NoVia)?;
        let mut h = key.hasher();
        let (branch, legacy) = if via.has_rfc3261_branch() {
            let b = via.branch.unwrap_or_default();
            feed(&mut h, b.as_bytes());
            feed_lower(&mut h, via.host.as_bytes());
            h.write_u16(via.port.unwrap_or(0));
            (Some(b), None)
        } else {
            let call_id = msg.call_id().ok_or(KeyError::BadHeader)?;
            let cseq = msg.cseq().map_err(|_| KeyError::BadHeader)?.seq;
            let from_tag = msg.from().map_err(|_| KeyError::BadHeader)?.tag();
            let to_tag = msg.to().map_err(|_| KeyError::BadHeader)?.tag();
            feed(&mut h, call_id.as_bytes());
            h.write_u32(cseq);
            feed(&mut h, from_tag.unwrap_or_default().as_bytes());
            (
                None,
                Some(Legacy {
                    call_id,
                    cseq,
                    from_tag,
                    to_tag,
                    request_uri: msg.request_uri().unwrap_or_default(),
                }),
            )
        };
        Ok(Probe {
            hash: h.finish(),
            class: Class::of(method),
            method,
            via,
            branch,
            legacy,
        })
    }
}

/// Where a part of a message is in its buffer (the stored request's: a key costs no copy
/// and no reference count).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Span {
    start: u32,
    end: u32,
}

/// A part that is not inside the message's buffer (a probe of another message).
#[derive(Debug)]
struct Outside;

impl Span {
    fn of<B: AsRef<[u8]>>(msg: &Message<B>, part: &[u8]) -> Result<Self, Outside> {
        // (An empty part may be a static "" — an accessor's answer for a value that is not
        // UTF-8 — rather than a slice of the buffer; every empty span reads the same.)
        if part.is_empty() {
            return Ok(Span { start: 0, end: 0 });
        }
        let start = msg.offset_of(part).ok_or(Outside)?;
        Ok(Span {
            start: u32::try_from(start).map_err(|_| Outside)?,
            end: u32::try_from(start + part.len()).map_err(|_| Outside)?,
        })
    }

    fn of_opt<B: AsRef<[u8]>>(
        msg: &Message<B>,
        part: Option<&str>,
    ) -> Result<Option<Self>, Outside> {
        part.map(|p| Span::of(msg, p.as_bytes())).transpose()
    }

    fn get(self, buf: &[u8]) -> &[u8] {
        buf.get(self.start as usize..self.end as usize)
            .unwrap_or_default()
    }
}

/// The key a server transaction is stored under: where its fields are in the stored request
/// (the request it was created by, which the transaction keeps). The method is the stored
/// request's own.
#[derive(Debug, Clone)]
pub(crate) struct StoredKey {
    pub(crate) hash: u64,
    pub(crate) class: Class,
    branch: Option<Span>,
    host: Span,
    port: Option<u16>,
    legacy: Option<Box<StoredLegacy>>,
}

#[derive(Debug, Clone)]
struct StoredLegacy {
    call_id: Span,
    cseq: u32,
    from_tag: Option<Span>,
    to_tag: Option<Span>,
    request_uri: Span,
    via_branch: Option<Span>,
}

impl StoredKey {
    /// The key of `msg`, whose [`Probe`] is `p` (`None` if a field of `p` is not in `msg`'s
    /// buffer, which a probe of `msg` never does).
    pub(crate) fn new<B: AsRef<[u8]>>(p: &Probe<'_>, msg: &Message<B>) -> Option<Self> {
        Self::spans(p, msg).ok()
    }

    fn spans<B: AsRef<[u8]>>(p: &Probe<'_>, msg: &Message<B>) -> Result<Self, Outside> {
        let legacy = match &p.legacy {
            None => None,
            Some(l) => Some(Box::new(StoredLegacy {
                call_id: Span::of(msg, l.call_id.as_bytes())?,
                cseq: l.cseq,
                from_tag: Span::of_opt(msg, l.from_tag)?,
                to_tag: Span::of_opt(msg, l.to_tag)?,
                request_uri: Span::of(msg, l.request_uri)?,
                via_branch: Span::of_opt(msg, p.via.branch)?,
            })),
        };
        Ok(StoredKey {
            hash: p.hash,
            class: p.class,
            branch: Span::of_opt(msg, p.branch)?,
            host: Span::of(msg, p.via.host.as_bytes())?,
            port: p.via.port,
            legacy,
        })
    }

    /// An RFC 2543 key (no magic cookie).
    pub(crate) fn is_legacy(&self) -> bool {
        self.branch.is_none()
    }

    /// Whether a request with probe `p`, looked up as class `class` (ACK looks for INVITE,
    /// CANCEL for its own class or for the INVITE it cancels), matches the transaction whose
    /// stored request is `stored` and whose key this is.
    ///
    /// `response_to_tag` is the To tag of the last response this transaction sent, which
    /// an RFC 2543 ACK carries (§17.2.3).
    pub(crate) fn matches(
        &self,
        stored: &Message,
        p: &Probe<'_>,
        class: Class,
        response_to_tag: Option<&[u8]>,
    ) -> bool {
        if self.hash != p.hash || self.class != class {
            return false;
        }
        if class == Class::Other && stored.method() != Some(p.method) {
            return false;
        }
        let buf = stored.buffer().as_ref();
        let (host, theirs) = (self.host.get(buf), p.via.host.as_bytes());
        // Hosts compare case-insensitively; a retransmission normally has the same bytes.
        if self.port != p.via.port || !(host == theirs || host.eq_ignore_ascii_case(theirs)) {
            return false;
        }
        match (&self.branch, p.branch, &self.legacy, &p.legacy) {
            (Some(mine), Some(theirs), ..) => mine.get(buf) == theirs.as_bytes(),
            (None, None, Some(mine), Some(theirs)) => {
                let bytes = |s: Option<Span>| s.map(|s| s.get(buf));
                let to_ok = match (p.class, bytes(mine.to_tag), theirs.to_tag) {
                    // The ACK of a non-2xx carries the To tag of our response.
                    (Class::Ack, None, Some(t)) => {
                        response_to_tag.is_some_and(|r| r == t.as_bytes())
                    }
                    (_, Some(a), Some(b)) => a == b.as_bytes(),
                    (_, None, None) => true,
                    _ => false,
                };
                to_ok
                    && mine.call_id.get(buf) == theirs.call_id.as_bytes()
                    && mine.cseq == theirs.cseq
                    && bytes(mine.from_tag).unwrap_or_default()
                        == theirs.from_tag.unwrap_or_default().as_bytes()
                    && bytes(mine.via_branch) == p.via.branch.map(str::as_bytes)
                    && uris_equal(mine.request_uri.get(buf), theirs.request_uri)
            }
            _ => false,
        }
    }
}

/// §17.2.3 compares Request-URIs with the §19.1.4 rules; unparsable ones byte for byte.
fn uris_equal(a: &[u8], b: &[u8]) -> bool {
    match (Uri::parse(a), Uri::parse(b)) {
        (Ok(x), Ok(y)) => x.equivalent(&y),
        _ => a == b,
    }
}

// ---- our branches ---------------------------------------------------------------------

/// The magic cookie.
pub(crate) const COOKIE: &[u8] = b"z9hG4bK";
/// Cookie + transaction id + PRF.
const BASE_LEN: usize = COOKIE.len() + 32;
/// The longest branch we write: base + `.` + loop hash.
pub(crate) const MAX_BRANCH: usize = BASE_LEN + 17;

/// A branch this layer generated, stored inline, with the transaction id it names.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct Branch {
    buf: [u8; MAX_BRANCH],
    len: u8,
    id: u64,
}

impl core::fmt::Debug for Branch {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.as_str())
    }
}

fn hex16(out: &mut [u8], v: u64) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for (i, o) in out.iter_mut().enumerate().take(16) {
        *o = HEX[((v >> (60 - 4 * i)) & 0xf) as usize];
    }
}

fn unhex16(s: &[u8]) -> Option<u64> {
    if s.len() != 16 {
        return None;
    }
    let mut v = 0u64;
    for &c in s {
        let d = match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            _ => return None,
        };
        v = v << 4 | u64::from(d);
    }
    Some(v)
}

impl Branch {
    /// `z9hG4bK` + id + unguessable part [+ `.` + loop hash].
    pub(crate) fn new(id: u64, unguessable: u64, loop_hash: Option<u64>) -> Self {
        let mut buf = [0u8; MAX_BRANCH];
        buf[..COOKIE.len()].copy_from_slice(COOKIE);
        hex16(&mut buf[COOKIE.len()..], id);
        hex16(&mut buf[COOKIE.len() + 16..], unguessable);
        let mut len = BASE_LEN;
        if let Some(h) = loop_hash {
            buf[BASE_LEN] = b'.';
            hex16(&mut buf[BASE_LEN + 1..], h);
            len = MAX_BRANCH;
        }
        Branch {
            buf,
            len: len as u8,
            id,
        }
    }

    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len as usize]
    }

    pub(crate) fn as_str(&self) -> &str {
        core::str::from_utf8(self.as_bytes()).unwrap_or_default()
    }

    /// The transaction id in a branch of ours, `None` for anyone else's.
    pub(crate) fn decode_id(branch: &[u8]) -> Option<u64> {
        if !(branch.len() == BASE_LEN || branch.len() == MAX_BRANCH) || !branch.starts_with(COOKIE)
        {
            return None;
        }
        unhex16(&branch[COOKIE.len()..COOKIE.len() + 16])
    }

    /// A received branch that has the form of ours (its id decodes), copied; `None` for
    /// anyone else's.
    pub(crate) fn parse(branch: &[u8]) -> Option<Self> {
        let id = Self::decode_id(branch)?;
        let mut buf = [0u8; MAX_BRANCH];
        buf[..branch.len()].copy_from_slice(branch);
        Some(Branch {
            buf,
            len: branch.len() as u8,
            id,
        })
    }

    /// The transaction id it names.
    pub(crate) fn id(&self) -> u64 {
        self.id
    }

    /// The loop hash carried by a branch of ours.
    pub(crate) fn loop_hash(branch: &[u8]) -> Option<u64> {
        if branch.len() != MAX_BRANCH || !branch.starts_with(COOKIE) || branch[BASE_LEN] != b'.' {
            return None;
        }
        unhex16(&branch[BASE_LEN + 1..])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn key() -> MatchHash {
        MatchHash::new(&HashKey([1, 2]))
    }

    fn msg(s: &str) -> Message {
        Message::parse(Bytes::from(s.replace('\n', "\r\n"))).unwrap()
    }

    const INVITE: &str = "INVITE sip:bob@example.com SIP/2.0\n\
        Via: SIP/2.0/UDP pc33.example.com;branch=z9hG4bKnashds8\n\
        To: <sip:bob@example.com>\nFrom: <sip:alice@example.com>;tag=1928\n\
        Call-ID: a84b4c76e66710\nCSeq: 314159 INVITE\nContent-Length: 0\n\n";

    #[test]
    fn rfc3261_invite_ack_cancel_share_a_hash_but_not_a_class() {
        let inv = msg(INVITE);
        let p = Probe::of_request(&inv, &key()).unwrap();
        let k = StoredKey::new(&p, &inv).unwrap();
        let ack = msg(&INVITE
            .replace("INVITE sip", "ACK sip")
            .replace("314159 INVITE", "314159 ACK"));
        let pa = Probe::of_request(&ack, &key()).unwrap();
        assert_eq!(pa.hash, p.hash);
        assert!(k.matches(&inv, &pa, Class::Invite, None));
        let cancel = msg(&INVITE
            .replace("INVITE sip", "CANCEL sip")
            .replace("314159 INVITE", "314159 CANCEL"));
        let pc = Probe::of_request(&cancel, &key()).unwrap();
        assert!(k.matches(&inv, &pc, Class::Invite, None)); // the INVITE it cancels
        assert!(!k.matches(&inv, &pc, Class::Cancel, None));
        // Another sent-by or branch: another transaction.
        let other = msg(&INVITE.replace("pc33.example.com;", "pc34.example.com;"));
        assert!(!k.matches(
            &inv,
            &Probe::of_request(&other, &key()).unwrap(),
            Class::Invite,
            None
        ));
        let other = msg(&INVITE.replace("nashds8", "nashds9"));
        assert!(!k.matches(
            &inv,
            &Probe::of_request(&other, &key()).unwrap(),
            Class::Invite,
            None
        ));
        // Host compared case-insensitively.
        let upper = msg(&INVITE.replace("pc33.example.com;", "PC33.example.com;"));
        assert!(k.matches(
            &inv,
            &Probe::of_request(&upper, &key()).unwrap(),
            Class::Invite,
            None
        ));
    }

    #[test]
    fn rfc2543_matching() {
        let old = INVITE.replace(";branch=z9hG4bKnashds8", "");
        let inv = msg(&old);
        let p = Probe::of_request(&inv, &key()).unwrap();
        assert!(p.branch.is_none());
        let k = StoredKey::new(&p, &inv).unwrap();
        // A retransmission, with the Request-URI written differently but equivalent.
        let re = msg(&old.replace("INVITE sip:bob@example.com", "INVITE sip:bob@EXAMPLE.com"));
        assert!(k.matches(
            &inv,
            &Probe::of_request(&re, &key()).unwrap(),
            Class::Invite,
            None
        ));
        // Its ACK carries the To tag of our response.
        let ack = msg(&old
            .replace("INVITE sip", "ACK sip")
            .replace("314159 INVITE", "314159 ACK")
            .replace(
                "To: <sip:bob@example.com>",
                "To: <sip:bob@example.com>;tag=ours",
            ));
        let pa = Probe::of_request(&ack, &key()).unwrap();
        assert!(k.matches(&inv, &pa, Class::Invite, Some(b"ours")));
        assert!(!k.matches(&inv, &pa, Class::Invite, Some(b"theirs")));
        // Another CSeq: another transaction.
        let next = msg(&old.replace("314159 INVITE", "314160 INVITE"));
        assert!(!k.matches(
            &inv,
            &Probe::of_request(&next, &key()).unwrap(),
            Class::Invite,
            None
        ));
    }

    /// An RFC 2543 key whose Via branch is a quoted value that is not UTF-8 (the accessor
    /// gives ""): stored like any other, matched by its retransmission (§17.2.3 compares
    /// the whole top Via, here its empty branch text on both sides).
    #[test]
    fn rfc2543_key_with_an_unreadable_branch() {
        let mut raw = INVITE
            .replace("branch=z9hG4bKnashds8", "branch=\"\u{1}\"")
            .replace('\n', "\r\n")
            .into_bytes();
        let at = raw.iter().position(|&b| b == 1).unwrap();
        raw[at] = 0xff;
        let inv = Message::parse(Bytes::from(raw.clone())).unwrap();
        let p = Probe::of_request(&inv, &key()).unwrap();
        assert_eq!((p.branch, p.via.branch), (None, Some("")));
        let k = StoredKey::new(&p, &inv).unwrap();
        let re = Message::parse(Bytes::from(raw)).unwrap();
        let pr = Probe::of_request(&re, &key()).unwrap();
        assert!(k.matches(&inv, &pr, Class::Invite, None));
    }

    #[test]
    fn branches_round_trip() {
        let b = Branch::new(0x0001_0002_0000_0003, 0xdead_beef, None);
        assert_eq!(b.as_bytes().len(), 39);
        assert!(b.as_str().starts_with("z9hG4bK"));
        assert_eq!(Branch::decode_id(b.as_bytes()), Some(0x0001_0002_0000_0003));
        assert_eq!(Branch::loop_hash(b.as_bytes()), None);
        let l = Branch::new(7, 8, Some(0x1234));
        assert_eq!(Branch::decode_id(l.as_bytes()), Some(7));
        assert_eq!(Branch::loop_hash(l.as_bytes()), Some(0x1234));
        assert_eq!(Branch::decode_id(b"z9hG4bKnashds8"), None);
        assert_eq!(Branch::parse(b.as_bytes()), Some(b));
        assert_eq!(Branch::parse(l.as_bytes()).map(|p| p.id()), Some(7));
        assert_eq!(Branch::parse(b"z9hG4bKnashds8"), None);
        assert_eq!(
            Branch::decode_id(b"z9hG4bK0123456789ABCDEF0123456789abcdef"),
            None
        );
    }
}
