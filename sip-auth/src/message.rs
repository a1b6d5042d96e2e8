//! Verification straight from a parsed `sip_parser::Message`: the request's fields as the
//! parser gives them, and the credentials for this server's realm among several.

use core::net::IpAddr;
use core::time::Duration;

use sip_parser::{HeaderName, Message};

use crate::cache::AuthCache;
use crate::error::DigestHeaderError;
use crate::header::{Credentials, Field};
use crate::server::{ChallengeKind, DigestServer, FailReason, Outcome, Request};
use crate::store::CredentialStore;

impl<'a> Request<'a> {
    /// The method, Request-URI, body, Call-ID and From tag of `msg` (empty when absent or,
    /// for the From tag, unreadable), and the address it came from.
    pub fn from_message<B: AsRef<[u8]>>(msg: &'a Message<B>, source: IpAddr) -> Self {
        Self::of(msg, source, true)
    }

    /// [`Request::from_message`], reading the From header only when `from_tag` is wanted.
    fn of<B: AsRef<[u8]>>(msg: &'a Message<B>, source: IpAddr, from_tag: bool) -> Self {
        let tag = from_tag
            .then(|| msg.from().ok()?.tag())
            .flatten()
            .unwrap_or_default();
        Request {
            method: msg.method().unwrap_or_default().as_bytes(),
            request_uri: msg.request_uri().unwrap_or_default(),
            body: msg.body(),
            source: Some(source),
            call_id: msg.call_id().unwrap_or_default().as_bytes(),
            from_tag: tag.as_bytes(),
        }
    }
}

impl DigestServer {
    /// The credentials `msg` carries for this server's realm: the first `Digest` value of
    /// `Authorization` ([`ChallengeKind::Www`]) or `Proxy-Authorization`
    /// ([`ChallengeKind::Proxy`]) whose realm is ours. A request may carry credentials for
    /// several realms, each proxy taking its own (RFC 3261 §22.3); values of other schemes
    /// and realms are passed over. `Ok(None)` when there is none; the first malformed
    /// Digest value's error (offsets relative to that field's value) when there is none but
    /// some could not be read.
    pub fn credentials_in<'m, B: AsRef<[u8]>>(
        &self,
        msg: &'m Message<B>,
    ) -> Result<Option<Credentials<'m>>, DigestHeaderError> {
        let name = match self.config().kind {
            ChallengeKind::Www => HeaderName::Authorization,
            ChallengeKind::Proxy => HeaderName::ProxyAuthorization,
        };
        let realm = self.config().realm.as_bytes();
        let mut malformed = None;
        for h in msg.headers_of(name) {
            match Credentials::parse(h.value) {
                Ok(c) if c.value(Field::Realm) == realm => return Ok(Some(c)),
                Ok(_) | Err(DigestHeaderError::NotDigest) => {}
                Err(e) => {
                    malformed.get_or_insert(e);
                }
            }
        }
        malformed.map_or(Ok(None), Err)
    }

    /// Verify `msg`, received from `source`, in one call: the credentials for our realm
    /// ([`DigestServer::credentials_in`]; none is [`FailReason::NoCredentials`], a
    /// malformed value [`FailReason::Malformed`]) checked against the request they came in
    /// ([`Request::from_message`]).
    ///
    /// Retransmissions: see [`DigestServer::verify`].
    pub fn verify_message<'m, B: AsRef<[u8]>, S: CredentialStore + ?Sized>(
        &self,
        msg: &'m Message<B>,
        source: IpAddr,
        store: &S,
        unix_now: u64,
    ) -> Outcome<'m> {
        self.message_inner(msg, source, store, unix_now, None)
    }

    /// [`DigestServer::verify_message`] with the HA1 looked up in `cache` first, as
    /// [`DigestServer::verify_cached`] does; `now` is the monotonic clock of the cache.
    pub fn verify_message_cached<'m, B: AsRef<[u8]>, S: CredentialStore + ?Sized>(
        &self,
        msg: &'m Message<B>,
        source: IpAddr,
        store: &S,
        cache: &AuthCache,
        unix_now: u64,
        now: Duration,
    ) -> Outcome<'m> {
        self.message_inner(msg, source, store, unix_now, Some((cache, now)))
    }

    fn message_inner<'m, B: AsRef<[u8]>, S: CredentialStore + ?Sized>(
        &self,
        msg: &'m Message<B>,
        source: IpAddr,
        store: &S,
        unix_now: u64,
        cache: Option<(&AuthCache, Duration)>,
    ) -> Outcome<'m> {
        let c = match self.credentials_in(msg) {
            Ok(Some(c)) => c,
            Ok(None) => return Outcome::Failed(FailReason::NoCredentials),
            Err(e) => return Outcome::Failed(FailReason::Malformed(e)),
        };
        let req = Request::of(msg, source, self.config().bindings.from_tag);
        self.verify_inner(&c, &req, store, unix_now, cache)
    }
}
