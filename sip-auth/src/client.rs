//! Client side: answer a challenge with an `Authorization` / `Proxy-Authorization` value.
//!
//! Randomness comes from the caller: every call takes the `cnonce` to use (at least 8 random
//! bytes, hex or base64, is plenty).

use alloc::string::{String, ToString};

use crate::algorithm::{Algorithm, HexDigest};
use crate::digest::{self, ResponseInput};
use crate::error::ClientError;
use crate::header::{Challenge, Qop, push_param_quoted, push_param_token};

/// The request being authorized.
#[derive(Debug, Clone, Copy, Default)]
pub struct ClientRequest<'a> {
    /// Method.
    pub method: &'a str,
    /// Request-URI (sent as digest-uri).
    pub uri: &'a str,
    /// Body (for `auth-int`).
    pub body: &'a [u8],
}

#[derive(Debug, Clone)]
struct Session {
    realm: String,
    nonce: String,
    opaque: Option<String>,
    algorithm: Algorithm,
    qop: Option<Qop>,
    userhash: bool,
    nc: u32,
}

/// Digest credentials of one user, and the nonce state needed to reuse a nonce with an
/// increasing `nc`.
#[derive(Debug, Clone)]
pub struct DigestClient {
    username: String,
    password: String,
    session: Option<Session>,
    pending: bool,
}

impl DigestClient {
    /// A client for `username` with `password`.
    pub fn new(username: &str, password: &str) -> Self {
        DigestClient {
            username: username.to_string(),
            password: password.to_string(),
            session: None,
            pending: false,
        }
    }

    /// Answer the challenges of a 401/407 (all `WWW-Authenticate` / `Proxy-Authenticate`
    /// values of the response). Picks the strongest offered algorithm (SHA-512-256 >
    /// SHA-256 > MD5), `auth` over `auth-int` unless only `auth-int` is offered, starts `nc`
    /// at 1. If the previous answer was re-challenged without `stale=true`, the credentials
    /// were refused: returns [`ClientError::Rejected`] instead of looping (call again to
    /// retry anyway).
    pub fn respond(
        &mut self,
        challenges: &[&[u8]],
        req: &ClientRequest<'_>,
        cnonce: &str,
    ) -> Result<String, ClientError> {
        let mut best: Option<(Challenge<'_>, Algorithm, Option<Qop>)> = None;
        let mut last_err = None;
        for v in challenges {
            let ch = match Challenge::parse(v) {
                Ok(c) => c,
                Err(e) => {
                    last_err = Some(e);
                    continue;
                }
            };
            let Some(alg) = ch.algorithm else { continue };
            let qop = if ch.qop_present {
                if ch.qop.contains(&Qop::Auth) {
                    Some(Qop::Auth)
                } else if ch.qop.contains(&Qop::AuthInt) {
                    Some(Qop::AuthInt)
                } else {
                    continue;
                }
            } else {
                None
            };
            if best
                .as_ref()
                .is_none_or(|(_, b, _)| alg.strength() > b.strength())
            {
                best = Some((ch, alg, qop));
            }
        }
        let Some((ch, alg, qop)) = best else {
            return Err(last_err.map_or(ClientError::Unsupported, ClientError::Parse));
        };
        if self.pending && !ch.stale {
            self.pending = false;
            return Err(ClientError::Rejected);
        }
        self.session = Some(Session {
            realm: ch.realm.into_owned(),
            nonce: ch.nonce.into_owned(),
            opaque: ch.opaque.map(alloc::borrow::Cow::into_owned),
            algorithm: alg,
            qop,
            userhash: ch.userhash,
            nc: 0,
        });
        self.pending = true;
        self.authorize(req, cnonce)
    }

    /// An authorization for a further request on the last nonce, with the next `nc`
    /// (pre-emptive authentication).
    pub fn authorize(
        &mut self,
        req: &ClientRequest<'_>,
        cnonce: &str,
    ) -> Result<String, ClientError> {
        let s = self.session.as_mut().ok_or(ClientError::NoNonce)?;
        s.nc = s.nc.wrapping_add(1).max(1);
        let nc = alloc::format!("{:08x}", s.nc);
        let hash = s.algorithm.hash();
        let ha1: HexDigest = digest::ha1(hash, &self.username, &s.realm, &self.password);
        let response = digest::response(
            &ha1,
            &ResponseInput {
                algorithm: s.algorithm,
                nonce: s.nonce.as_bytes(),
                nc: nc.as_bytes(),
                cnonce: cnonce.as_bytes(),
                qop: s.qop,
                method: req.method.as_bytes(),
                uri: req.uri.as_bytes(),
                body: req.body,
            },
        );
        let mut out = String::with_capacity(256);
        out.push_str("Digest ");
        if s.userhash {
            let uh = digest::userhash(hash, &self.username, &s.realm);
            push_param_quoted(&mut out, "username", uh.as_str());
        } else {
            push_param_quoted(&mut out, "username", &self.username);
        }
        push_param_quoted(&mut out, "realm", &s.realm);
        push_param_quoted(&mut out, "nonce", &s.nonce);
        push_param_quoted(&mut out, "uri", req.uri);
        push_param_quoted(&mut out, "response", response.as_str());
        push_param_token(&mut out, "algorithm", s.algorithm.as_str());
        if let Some(q) = s.qop {
            push_param_token(&mut out, "qop", q.as_str());
            push_param_token(&mut out, "nc", &nc);
            push_param_quoted(&mut out, "cnonce", cnonce);
        } else if s.algorithm.is_session() {
            push_param_quoted(&mut out, "cnonce", cnonce);
        }
        if let Some(o) = &s.opaque {
            push_param_quoted(&mut out, "opaque", o);
        }
        if s.userhash {
            push_param_token(&mut out, "userhash", "true");
        }
        Ok(out)
    }

    /// The request was accepted: a later challenge is a new one, not a refusal.
    pub fn accepted(&mut self) {
        self.pending = false;
    }

    /// The algorithm of the current nonce, if any.
    pub fn algorithm(&self) -> Option<Algorithm> {
        self.session.as_ref().map(|s| s.algorithm)
    }
}
