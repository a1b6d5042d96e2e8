//! The Digest computations themselves (RFC 7616 §3.4.1-3.4.3, RFC 2617 §3.2.2), shared by
//! server and client. No allocation: every intermediate value is a stack [`HexDigest`].

use sha2::Digest;

use crate::algorithm::{Algorithm, HashKind, HexDigest};
use crate::header::Qop;

/// HA1 = H(username ":" realm ":" password) for the given hash function.
pub fn ha1(hash: HashKind, username: &str, realm: &str, password: &str) -> HexDigest {
    hash.hex(&[
        username.as_bytes(),
        b":",
        realm.as_bytes(),
        b":",
        password.as_bytes(),
    ])
}

/// `userhash` value: H(username ":" realm) (RFC 7616 §3.4.4).
pub fn userhash(hash: HashKind, username: &str, realm: &str) -> HexDigest {
    hash.hex(&[username.as_bytes(), b":", realm.as_bytes()])
}

/// The parts of a request that enter the response, as the bytes that are hashed.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ResponseInput<'a> {
    /// The algorithm.
    pub(crate) algorithm: Algorithm,
    /// Server nonce.
    pub(crate) nonce: &'a [u8],
    /// Nonce count as written on the wire (8 hex digits); ignored without qop.
    pub(crate) nc: &'a [u8],
    /// Client nonce; used with qop and by `-sess` algorithms.
    pub(crate) cnonce: &'a [u8],
    /// qop, or `None` for the RFC 2069 form.
    pub(crate) qop: Option<Qop>,
    /// Request method (empty for `rspauth`).
    pub(crate) method: &'a [u8],
    /// digest-uri.
    pub(crate) uri: &'a [u8],
    /// Message body (used by `auth-int` only).
    pub(crate) body: &'a [u8],
}

/// The `response` (or `rspauth` with an empty method) for a base HA1.
pub(crate) fn response(base_ha1: &HexDigest, input: &ResponseInput<'_>) -> HexDigest {
    // One dispatch, then monomorphic code: no hasher enum moved around.
    match input.algorithm.hash() {
        HashKind::Md5 => response_with::<md5::Md5>(base_ha1, input),
        HashKind::Sha256 => response_with::<sha2::Sha256>(base_ha1, input),
        HashKind::Sha512_256 => response_with::<sha2::Sha512_256>(base_ha1, input),
    }
}

#[inline]
fn hex_of<D: Digest>(h: D) -> HexDigest {
    let out = h.finalize();
    // The length is a constant of `D`: one arm survives monomorphisation.
    if let Ok(a) = <&[u8; 16]>::try_from(out.as_slice()) {
        HexDigest::from_array(a)
    } else if let Ok(a) = <&[u8; 32]>::try_from(out.as_slice()) {
        HexDigest::from_array(a)
    } else {
        HexDigest::from_raw(&out)
    }
}

fn response_with<D: Digest>(base_ha1: &HexDigest, input: &ResponseInput<'_>) -> HexDigest {
    let ha1 = if input.algorithm.is_session() {
        hex_of(
            D::new()
                .chain_update(base_ha1.as_bytes())
                .chain_update(b":")
                .chain_update(input.nonce)
                .chain_update(b":")
                .chain_update(input.cnonce),
        )
    } else {
        *base_ha1
    };
    let mut h2 = D::new();
    h2.update(input.method);
    h2.update(b":");
    h2.update(input.uri);
    if input.qop == Some(Qop::AuthInt) {
        h2.update(b":");
        h2.update(hex_of(D::new().chain_update(input.body)).as_bytes());
    }
    let ha2 = hex_of(h2);
    let mut h = D::new();
    h.update(ha1.as_bytes());
    h.update(b":");
    h.update(input.nonce);
    h.update(b":");
    if let Some(qop) = input.qop {
        h.update(input.nc);
        h.update(b":");
        h.update(input.cnonce);
        h.update(b":");
        h.update(qop.as_str().as_bytes());
        h.update(b":");
    }
    h.update(ha2.as_bytes());
    hex_of(h)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input<'a>(alg: Algorithm, qop: Option<Qop>) -> ResponseInput<'a> {
        ResponseInput {
            algorithm: alg,
            nonce: b"dcd98b7102dd2f0e8b11d0f600bfb0c093",
            nc: b"00000001",
            cnonce: b"0a4f113b",
            qop,
            method: b"GET",
            uri: b"/dir/index.html",
            body: b"",
        }
    }

    /// RFC 2617 §3.5.
    #[test]
    fn rfc2617_3_5() {
        let h = ha1(
            HashKind::Md5,
            "Mufasa",
            "testrealm@host.com",
            "Circle Of Life",
        );
        let r = response(&h, &input(Algorithm::Md5, Some(Qop::Auth)));
        assert_eq!(r.as_str(), "6629fae49393a05397450978507c4ef1");
    }

    /// RFC 7616 §3.9.1, MD5 and SHA-256.
    #[test]
    fn rfc7616_3_9_1() {
        let realm = "http-auth@example.org";
        let mk = |alg| ResponseInput {
            algorithm: alg,
            nonce: b"7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
            nc: b"00000001",
            cnonce: b"f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
            qop: Some(Qop::Auth),
            method: b"GET",
            uri: b"/dir/index.html",
            body: b"",
        };
        let h = ha1(HashKind::Md5, "Mufasa", realm, "Circle of Life");
        assert_eq!(
            response(&h, &mk(Algorithm::Md5)).as_str(),
            "8ca523f5e9506fed4657c9700eebdbec"
        );
        let h = ha1(HashKind::Sha256, "Mufasa", realm, "Circle of Life");
        assert_eq!(
            response(&h, &mk(Algorithm::Sha256)).as_str(),
            "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"
        );
    }

    /// RFC 7616 §3.9.2 (userhash; its example uses SHA-512-256, the algorithm RFC 8760 adds
    /// for SIP). The RFC prints values computed with a pre-standard SHA-512/256
    /// (username 488869…, response ae66e6…); these are the corrected ones of erratum 4897,
    /// which every current implementation produces.
    #[test]
    fn rfc7616_3_9_2_sha512_256_userhash() {
        let user = "J\u{e4}s\u{f8}n Doe";
        let realm = "api@example.org";
        assert_eq!(
            userhash(HashKind::Sha512_256, user, realm).as_str(),
            "793263caabb707a56211940d90411ea4a575adeccb7e360aeb624ed06ece9b0b"
        );
        let h = ha1(HashKind::Sha512_256, user, realm, "Secret, or not?");
        let inp = ResponseInput {
            algorithm: Algorithm::Sha512_256,
            nonce: b"5TsQWLVdgBdmrQ0XsxbDODV+57QdFR34I9HAbC/RVvkK",
            nc: b"00000001",
            cnonce: b"NTg6RKcb9boFIAS3KrFK9BGeh+iDa/sm6jUMp2wds69v",
            qop: Some(Qop::Auth),
            method: b"GET",
            uri: b"/doe.json",
            body: b"",
        };
        assert_eq!(
            response(&h, &inp).as_str(),
            "3798d4131c277846293534c3edc11bd8a5e4cdcbff78b05db9d95eeb1cec68a5"
        );
    }

    /// RFC 2069 form (no qop): response = H(HA1:nonce:HA2).
    #[test]
    fn rfc2069_no_qop() {
        let h = ha1(
            HashKind::Md5,
            "Mufasa",
            "testrealm@host.com",
            "CircleOfLife",
        );
        let r = response(&h, &input(Algorithm::Md5, None));
        let ha2 = HashKind::Md5.hex(&[b"GET:/dir/index.html"]);
        let want = HashKind::Md5.hex(&[
            h.as_bytes(),
            b":dcd98b7102dd2f0e8b11d0f600bfb0c093:",
            ha2.as_bytes(),
        ]);
        assert_eq!(r, want);
        // The value RFC 2069 §2.4 prints for this example.
        assert_eq!(r.as_str(), "1949323746fe6a43ef61f9606e7febea");
    }

    #[test]
    fn auth_int_and_sess_by_hand() {
        let h = ha1(HashKind::Sha256, "alice", "atlanta.com", "pw");
        let mut inp = input(Algorithm::Sha256Sess, Some(Qop::AuthInt));
        inp.body = b"v=0\r\n";
        let sess = HashKind::Sha256.hex(&[h.as_bytes(), b":", inp.nonce, b":", inp.cnonce]);
        let hb = HashKind::Sha256.hex(&[b"v=0\r\n"]);
        let ha2 = HashKind::Sha256.hex(&[b"GET:/dir/index.html:", hb.as_bytes()]);
        let want = HashKind::Sha256.hex(&[
            sess.as_bytes(),
            b":",
            inp.nonce,
            b":00000001:0a4f113b:auth-int:",
            ha2.as_bytes(),
        ]);
        assert_eq!(response(&h, &inp), want);
        // The body matters with auth-int, not with auth.
        let mut other = inp;
        other.body = b"v=1\r\n";
        assert_ne!(response(&h, &other), want);
        inp.qop = Some(Qop::Auth);
        other.qop = Some(Qop::Auth);
        assert_eq!(response(&h, &inp), response(&h, &other));
    }
}
