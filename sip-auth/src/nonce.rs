//! Stateless nonces: a timestamp and an issue number authenticated by an HMAC-SHA-256 keyed
//! with a shared secret, over the realm and optional request bindings.
//!
//! Any node holding the secret verifies a nonce another node issued; a forged or altered nonce
//! fails the MAC check without any lookup. Layout (32 bytes, written as 64 lower-case hex
//! characters):
//!
//! | bytes | field |
//! |-------|-------|
//! | 0     | version (1) |
//! | 1-8   | issue time, Unix seconds, big-endian |
//! | 9-12  | issue number (`nid`), indexes the replay table of the issuing node |
//! | 13-14 | node id of the issuer |
//! | 15    | secret id |
//! | 16-31 | HMAC-SHA-256 over bytes 0-15, the realm and the bindings, truncated to 128 bits |
//!
//! Times are wall-clock Unix seconds because other nodes verify them; everything else in this
//! crate takes a monotonic `now` from the caller.
//!
//! A nonce in this format that cannot be verified (its secret id is unknown, its MAC fails,
//! it was issued in the future) is told apart from one that is not in this format at all:
//! the first is what a restart with a new secret, a rotation or a changed binding leaves
//! clients holding, and the server answers it as stale (see `FailReason`).

use core::net::IpAddr;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::algorithm::ct_eq;

type HmacSha256 = Hmac<Sha256>;

const VERSION: u8 = 1;
const HEADER_LEN: usize = 16;
const MAC_LEN: usize = 16;
const NONCE_BYTES: usize = HEADER_LEN + MAC_LEN;
/// Length of a nonce on the wire (hex).
const NONCE_HEX_LEN: usize = NONCE_BYTES * 2;

/// What a nonce is bound to, besides the realm. Each enabled binding must have the same value
/// when the nonce comes back, or the nonce is rejected as invalid.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Bindings {
    /// Bind to the request's source IP address.
    pub source_ip: bool,
    /// Bind to the Call-ID.
    pub call_id: bool,
    /// Bind to the From tag.
    pub from_tag: bool,
    /// Bind to the Request-URI.
    pub request_uri: bool,
}

/// Values for the bindings, taken from the request being challenged or verified.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct BindingValues<'a> {
    /// Source address of the request.
    pub(crate) source_ip: Option<IpAddr>,
    /// Call-ID.
    pub(crate) call_id: &'a [u8],
    /// From tag.
    pub(crate) from_tag: &'a [u8],
    /// Request-URI.
    pub(crate) request_uri: &'a [u8],
}

/// The secrets nonces are keyed with: the current one, and the previous one, kept after a
/// rotation so that nonces issued before it still verify until they expire.
#[derive(Clone)]
pub struct NonceSecrets {
    current: (u8, HmacSha256),
    previous: Option<(u8, HmacSha256)>,
}

impl core::fmt::Debug for NonceSecrets {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("NonceSecrets")
            .field("current_id", &self.current.0)
            .field("previous_id", &self.previous.as_ref().map(|p| p.0))
            .finish_non_exhaustive()
    }
}

impl NonceSecrets {
    /// Start with secret `key` under id `id`. Every node that must verify the others'
    /// nonces is given the same `(id, key)` pairs. The key is used as given (HMAC takes any
    /// length): it must hold at least 256 random bits, e.g. 32 bytes from the OS RNG, or
    /// their base64 text (`head -c 32 /dev/urandom | base64`). A guessable key lets anyone
    /// forge nonces.
    pub fn new(id: u8, key: &[u8]) -> Self {
        NonceSecrets {
            current: (id, keyed(key)),
            previous: None,
        }
    }

    /// A secret of 32 bytes from the operating system's RNG, under a random id: for a
    /// single node. After a restart the old nonces carry another id (255 times in 256), so
    /// clients holding one are re-challenged as stale. Nodes that verify each other's
    /// nonces need a shared secret instead ([`NonceSecrets::new`]).
    #[cfg(feature = "std")]
    pub fn random() -> std::io::Result<Self> {
        let mut key = [0u8; 33];
        getrandom::fill(&mut key).map_err(std::io::Error::other)?;
        Ok(Self::new(key[32], &key[..32]))
    }

    /// Make `key` (id `id`) the current secret. The previous current secret still verifies;
    /// the one before it is dropped. Rotate no more often than the nonce lifetime.
    pub fn rotate(&mut self, id: u8, key: &[u8]) {
        let old = core::mem::replace(&mut self.current, (id, keyed(key)));
        self.previous = Some(old);
    }

    /// Stop accepting nonces made with the previous secret.
    pub fn drop_previous(&mut self) {
        self.previous = None;
    }

    fn by_id(&self, id: u8) -> Option<&HmacSha256> {
        if self.current.0 == id {
            Some(&self.current.1)
        } else {
            self.previous.as_ref().filter(|p| p.0 == id).map(|p| &p.1)
        }
    }
}

fn keyed(key: &[u8]) -> HmacSha256 {
    // HMAC accepts keys of any length; this cannot fail.
    <HmacSha256 as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!())
}

/// The authenticated fields of a nonce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct NonceInfo {
    /// Issue time, Unix seconds.
    pub(crate) issued: u64,
    /// Issue number on the issuing node.
    pub(crate) nid: u32,
    /// Issuing node.
    pub(crate) node: u16,
}

/// Result of checking a nonce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NonceCheck {
    /// Authentic and within its lifetime.
    Valid(NonceInfo),
    /// Authentic but expired: answer a valid response with `stale=true`.
    Expired(NonceInfo),
    /// In this crate's format, but made with a secret we do not hold (unknown id, or a
    /// MAC that fails: a new secret under the same id, other bindings, another realm, or
    /// forged), or issued in the future.
    Unverifiable,
    /// Not in this crate's format (another server's nonce, or garbage).
    Foreign,
}

/// Nonce lifetime policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lifetime {
    /// Seconds a nonce stays valid (default 300).
    pub expiry: u64,
    /// Allowed clock difference between nodes, seconds (default 5).
    pub drift: u64,
}

impl Default for Lifetime {
    fn default() -> Self {
        Lifetime {
            expiry: 300,
            drift: 5,
        }
    }
}

fn mac(
    key: &HmacSha256,
    header: &[u8; HEADER_LEN],
    realm: &str,
    bindings: Bindings,
    v: &BindingValues<'_>,
) -> [u8; MAC_LEN] {
    let mut m = key.clone();
    m.update(header);
    let flags = u8::from(bindings.source_ip)
        | u8::from(bindings.call_id) << 1
        | u8::from(bindings.from_tag) << 2
        | u8::from(bindings.request_uri) << 3;
    m.update(&[flags]);
    let field = |m: &mut HmacSha256, b: &[u8]| {
        m.update(&(b.len() as u32).to_be_bytes());
        m.update(b);
    };
    field(&mut m, realm.as_bytes());
    if bindings.source_ip {
        match v.source_ip {
            Some(IpAddr::V4(a)) => field(&mut m, &a.octets()),
            Some(IpAddr::V6(a)) => field(&mut m, &a.octets()),
            None => field(&mut m, b""),
        }
    }
    if bindings.call_id {
        field(&mut m, v.call_id);
    }
    if bindings.from_tag {
        field(&mut m, v.from_tag);
    }
    if bindings.request_uri {
        field(&mut m, v.request_uri);
    }
    let full = m.finalize().into_bytes();
    let mut out = [0u8; MAC_LEN];
    out.copy_from_slice(&full[..MAC_LEN]);
    out
}

/// A nonce in its wire form (64 hex characters), on the stack.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Nonce([u8; NONCE_HEX_LEN]);

impl Nonce {
    /// The wire form.
    pub fn as_str(&self) -> &str {
        core::str::from_utf8(&self.0).unwrap_or("")
    }
}

impl core::fmt::Debug for Nonce {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Nonce({})", self.as_str())
    }
}

/// Make a nonce with the current secret.
pub(crate) fn issue(
    secrets: &NonceSecrets,
    info: NonceInfo,
    realm: &str,
    bindings: Bindings,
    values: &BindingValues<'_>,
) -> Nonce {
    let mut raw = [0u8; NONCE_BYTES];
    raw[0] = VERSION;
    raw[1..9].copy_from_slice(&info.issued.to_be_bytes());
    raw[9..13].copy_from_slice(&info.nid.to_be_bytes());
    raw[13..15].copy_from_slice(&info.node.to_be_bytes());
    raw[15] = secrets.current.0;
    let mut header = [0u8; HEADER_LEN];
    header.copy_from_slice(&raw[..HEADER_LEN]);
    let tag = mac(&secrets.current.1, &header, realm, bindings, values);
    raw[HEADER_LEN..].copy_from_slice(&tag);
    let hex = crate::algorithm::HexDigest::from_raw(&raw);
    let mut out = [0u8; NONCE_HEX_LEN];
    out.copy_from_slice(hex.as_bytes());
    Nonce(out)
}

/// Check a nonce received from a client.
pub(crate) fn check(
    secrets: &NonceSecrets,
    nonce: impl AsRef<[u8]>,
    realm: &str,
    bindings: Bindings,
    values: &BindingValues<'_>,
    lifetime: Lifetime,
    unix_now: u64,
) -> NonceCheck {
    let Some(raw) = decode_hex(nonce.as_ref()) else {
        return NonceCheck::Foreign;
    };
    if raw[0] != VERSION {
        return NonceCheck::Foreign;
    }
    let Some(key) = secrets.by_id(raw[15]) else {
        return NonceCheck::Unverifiable;
    };
    let mut header = [0u8; HEADER_LEN];
    header.copy_from_slice(&raw[..HEADER_LEN]);
    let tag = mac(key, &header, realm, bindings, values);
    if !ct_eq(&tag, &raw[HEADER_LEN..]) {
        return NonceCheck::Unverifiable;
    }
    let mut ts = [0u8; 8];
    ts.copy_from_slice(&raw[1..9]);
    let mut nid = [0u8; 4];
    nid.copy_from_slice(&raw[9..13]);
    let info = NonceInfo {
        issued: u64::from_be_bytes(ts),
        nid: u32::from_be_bytes(nid),
        node: u16::from_be_bytes([raw[13], raw[14]]),
    };
    if info.issued > unix_now.saturating_add(lifetime.drift) {
        return NonceCheck::Unverifiable;
    }
    if unix_now
        > info
            .issued
            .saturating_add(lifetime.expiry)
            .saturating_add(lifetime.drift)
    {
        return NonceCheck::Expired(info);
    }
    NonceCheck::Valid(info)
}

/// Decode the 64 lower-case hex digits of a nonce: a branch-free validity test that
/// vectorises, then eight hex digits per word (SWAR), independent of each other.
fn decode_hex(s: &[u8]) -> Option<[u8; NONCE_BYTES]> {
    const LO: u64 = 0x0101_0101_0101_0101;
    let b: &[u8; NONCE_HEX_LEN] = s.try_into().ok()?;
    let mut bad = 0u8;
    for &c in b {
        let is_d = c.wrapping_sub(b'0') < 10;
        let is_l = c.wrapping_sub(b'a') < 6;
        bad |= u8::from(!(is_d | is_l));
    }
    if bad != 0 {
        return None;
    }
    let mut out = [0u8; NONCE_BYTES];
    for (o, c) in out.chunks_exact_mut(4).zip(b.chunks_exact(8)) {
        let mut t = [0u8; 8];
        t.copy_from_slice(c);
        let w = u64::from_le_bytes(t);
        // '0'..'9' -> 0..9, 'a'..'f' -> 1..6 + 9 (bit 6 marks a letter).
        let n = (w & (LO * 0x0f)) + ((w >> 6) & LO) * 9;
        // Byte 2k becomes (high nibble << 4) | low nibble; then the even bytes are packed.
        let p = ((n << 4) | (n >> 8)) & 0x00ff_00ff_00ff_00ff;
        let p = (p | (p >> 8)) & 0x0000_ffff_0000_ffff;
        let p = p | (p >> 16);
        o.copy_from_slice(&p.to_le_bytes()[..4]);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const INFO: NonceInfo = NonceInfo {
        issued: 1_000_000,
        nid: 7,
        node: 1,
    };

    fn all() -> Bindings {
        Bindings {
            source_ip: true,
            call_id: true,
            from_tag: true,
            request_uri: true,
        }
    }

    fn vals(ip: [u8; 4]) -> BindingValues<'static> {
        BindingValues {
            source_ip: Some(IpAddr::from(ip)),
            call_id: b"c1",
            from_tag: b"t1",
            request_uri: b"sip:r",
        }
    }

    #[test]
    fn round_trip_expiry_and_bindings() {
        let s = NonceSecrets::new(1, b"secret-secret-secret-secret-0000");
        let v = vals([10, 0, 0, 1]);
        let n = issue(&s, INFO, "r", all(), &v);
        let lt = Lifetime::default();
        let ck =
            |n: &str, realm, v: &BindingValues<'_>, now| check(&s, n, realm, all(), v, lt, now);
        assert_eq!(ck(n.as_str(), "r", &v, 1_000_000), NonceCheck::Valid(INFO));
        assert_eq!(ck(n.as_str(), "r", &v, 1_000_305), NonceCheck::Valid(INFO));
        assert_eq!(
            ck(n.as_str(), "r", &v, 1_000_306),
            NonceCheck::Expired(INFO)
        );
        assert_eq!(ck(n.as_str(), "r", &v, 999_995), NonceCheck::Valid(INFO));
        assert_eq!(ck(n.as_str(), "r", &v, 999_994), NonceCheck::Unverifiable);
        assert_eq!(
            ck(n.as_str(), "other", &v, 1_000_000),
            NonceCheck::Unverifiable
        );
        assert_eq!(
            ck(n.as_str(), "r", &vals([10, 0, 0, 2]), 1_000_000),
            NonceCheck::Unverifiable
        );
        let mut v2 = v;
        v2.call_id = b"c2";
        assert_eq!(
            ck(n.as_str(), "r", &v2, 1_000_000),
            NonceCheck::Unverifiable
        );
        // Without the binding, the IP does not matter.
        let n2 = issue(&s, INFO, "r", Bindings::default(), &v);
        assert_eq!(
            check(
                &s,
                n2.as_str(),
                "r",
                Bindings::default(),
                &vals([1, 2, 3, 4]),
                lt,
                1_000_000
            ),
            NonceCheck::Valid(INFO)
        );
        // Not in our format at all: foreign.
        assert_eq!(ck("zz", "r", &v, 0), NonceCheck::Foreign);
        let mut other_version = n.as_str().to_string();
        other_version.replace_range(0..2, "02");
        assert_eq!(ck(&other_version, "r", &v, 1_000_000), NonceCheck::Foreign);
        assert_eq!(
            ck(&n.as_str().to_ascii_uppercase(), "r", &v, 1_000_000),
            NonceCheck::Foreign
        );
    }

    #[test]
    fn rotation() {
        let mut s = NonceSecrets::new(1, b"k1");
        let v = BindingValues::default();
        let lt = Lifetime::default();
        let old = issue(&s, INFO, "r", Bindings::default(), &v);
        s.rotate(2, b"k2");
        let new = issue(&s, INFO, "r", Bindings::default(), &v);
        for n in [old, new] {
            assert!(matches!(
                check(
                    &s,
                    n.as_str(),
                    "r",
                    Bindings::default(),
                    &v,
                    lt,
                    INFO.issued
                ),
                NonceCheck::Valid(_)
            ));
        }
        s.rotate(3, b"k3");
        assert_eq!(
            check(
                &s,
                old.as_str(),
                "r",
                Bindings::default(),
                &v,
                lt,
                INFO.issued
            ),
            NonceCheck::Unverifiable
        );
        let other = NonceSecrets::new(3, b"different");
        assert_eq!(
            check(
                &other,
                new.as_str(),
                "r",
                Bindings::default(),
                &v,
                lt,
                INFO.issued
            ),
            NonceCheck::Unverifiable
        );
    }

    #[cfg(feature = "std")]
    #[test]
    fn random_secrets_differ_and_verify_their_own() {
        let v = BindingValues::default();
        let (a, b) = (
            NonceSecrets::random().unwrap(),
            NonceSecrets::random().unwrap(),
        );
        let ck = |s: &NonceSecrets, n: Nonce| {
            check(
                s,
                n.as_str(),
                "r",
                Bindings::default(),
                &v,
                Lifetime::default(),
                INFO.issued,
            )
        };
        let na = issue(&a, INFO, "r", Bindings::default(), &v);
        let nb = issue(&b, INFO, "r", Bindings::default(), &v);
        assert_eq!(ck(&a, na), NonceCheck::Valid(INFO));
        assert_eq!(ck(&b, nb), NonceCheck::Valid(INFO));
        // A restart with a fresh random secret: the old nonce is ours but unverifiable.
        assert_eq!(ck(&b, na), NonceCheck::Unverifiable);
        assert_ne!(na, nb);
    }
}
