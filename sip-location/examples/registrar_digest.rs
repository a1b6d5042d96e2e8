//! A registrar with Digest authentication and HEP capture over one `std::net::UdpSocket`:
//! what the crates of this workspace leave to the application, and nothing more.
//!
//! ```text
//! cargo run -p sip-location --example registrar_digest -- \
//!     --listen 127.0.0.1:5060 --users users.htdigest [--hep udp:127.0.0.1:9060] [--secret nonce.secret]
//! ```
//!
//! * `--users`: an Apache htdigest file (`htdigest -c users.htdigest example.com alice`, or
//!   `sip-proxy users add --file users.htdigest --realm example.com alice`); its realm is the
//!   realm challenged for. Every domain is served (`Policy::default()`).
//! * `--secret`: the nonce secret, shared by every node that must verify the others' nonces:
//!   `head -c 32 /dev/urandom > nonce.secret && chmod 600 nonce.secret` (at least 32 bytes,
//!   used as they are). Without it a random secret is drawn at start; a client holding a
//!   nonce of an earlier run is then re-challenged as stale, never counted as a failure.
//! * `--hep`: a HEP collector (HOMER, `sngrep -L udp:…`) that gets every datagram in and out.
//!
//! `tests/sipp_registrar_digest.rs` runs SIPp against [`serve`].

use std::error::Error;
use std::io::ErrorKind;
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hep_codec::{CaptureEvent, CaptureSink, Collector, HepConfig, HepSender, NullSink};
use sip_auth::{
    Algorithm, AuthCache, BanConfig, DigestServer, FailureTracker, HtdigestFile, NonceSecrets,
    Outcome, Request, ServerConfig,
};
use sip_location::{LocationStore, MemoryStore, Policy, Source, registrar};
use sip_parser::bytes::Bytes;
use sip_parser::{Message, ResponseBuilder, Transport, reason_phrase};
use sip_transaction::{Config, Destination, Event, Flow, Listener, Output, TransactionLayer};

/// What the registrar holds. Every method it calls takes `&self`, so worker threads reading
/// their own sockets could share one (`sip-auth` README, "Sharing across threads").
pub(crate) struct Registrar {
    pub(crate) digest: DigestServer,
    pub(crate) users: sip_auth::MemoryStore,
    /// Verified HA1s, so a REGISTER refresh skips the user store.
    pub(crate) cache: AuthCache,
    /// More than 5 password failures in 300 s from one IP: its datagrams are dropped 300 s.
    pub(crate) bans: FailureTracker,
    pub(crate) bindings: MemoryStore,
    pub(crate) policy: Policy,
    /// The monotonic clock of the cache, the bans and the transaction layer.
    pub(crate) epoch: Instant,
}

/// Wall-clock time since the Unix epoch: nonces and bindings are read by other nodes.
fn wall_clock() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

impl Registrar {
    pub(crate) fn new(htdigest: &str, secrets: NonceSecrets) -> Result<Self, Box<dyn Error>> {
        let file = HtdigestFile::parse(htdigest)?;
        let users = file.users();
        // 401, MD5 then SHA-256 (MD5-only clients read the first challenge), qop=auth; but
        // only what every user has an HA1 for: Apache's htdigest writes MD5 alone (a client
        // answering SHA-256 would be refused as an unknown user), `sip-proxy users` all.
        let mut config = ServerConfig::new(&users.first().ok_or("no user in the file")?.realm);
        let stored = |a: &Algorithm| users.iter().all(|u| u.hashes.contains(&a.hash()));
        config.algorithms.retain(stored);
        Ok(Self {
            digest: DigestServer::new(config, secrets),
            users: file.to_store(),
            cache: AuthCache::new(4096, Duration::from_secs(600)),
            bans: FailureTracker::new(BanConfig::default()),
            bindings: MemoryStore::default(),
            policy: Policy::default(),
            epoch: Instant::now(),
        })
    }

    /// The answer to a new request. Never to a retransmission: the transaction layer answers
    /// those from its copy of the response, so no request is verified twice.
    fn answer(&self, req: &Message, from: SocketAddr) -> Bytes {
        let plain = |status| ResponseBuilder::new(req, status, reason_phrase(status)).build();
        // What needs no credentials first: 405 (with Allow), 420 for a Require we lack,
        // 404 for a To domain not ours (RFC 3261 §10.3 steps 1, 2 and 5).
        if let Err(registrar::Refusal::Reply(refusal)) = registrar::aor_of(req, &self.policy) {
            return refusal.response;
        }
        let (ip, mono, wall) = (from.ip(), self.epoch.elapsed(), wall_clock());
        let (digest, bans, kind) = (&self.digest, &self.bans, self.digest.config().kind);
        let (users, cache) = (&self.users, &self.cache);
        let outcome = digest.verify_message_cached(req, ip, users, cache, wall.as_secs(), mono);
        let stale = match outcome {
            Outcome::Ok(ok) => {
                bans.record_success(ip, mono);
                // RFC 3261 §10.3 step 4: the authenticated user may register its own AOR only.
                let to_user = req.to().ok().and_then(|to| to.uri().ok()?.user);
                if to_user != Some(ok.user.as_bytes()) {
                    return plain(403);
                }
                // Each Contact's expiry is its `expires`, else Expires, else the default
                // (`Message::contact_expiry`), bounded by the policy; the 200 lists every
                // binding with what is left of it, and its top Via carries `received` and
                // `rport` (RFC 3581) for the source address: nothing to add here.
                let source = Source::new(from, Transport::Udp);
                let done = registrar::register(&self.bindings, req, &source, wall, &self.policy);
                return done.reply.map_or_else(|| plain(404), |r| r.response); // not our domain
            }
            // A nonce of ours that expired, or one made with a secret we no longer hold.
            Outcome::Stale => true,
            Outcome::Failed(reason) => {
                // Only a password checked and wrong (or a guessed user) counts towards a ban.
                if reason.counts_as_attempt() {
                    bans.record_failure(ip, None, mono);
                }
                if reason.status(kind) != kind.status() {
                    return plain(reason.status(kind)); // 400: malformed, or a rewritten URI
                }
                false
            }
        };
        let mut challenge = ResponseBuilder::new(req, kind.status(), kind.reason());
        let request = Request::from_message(req, ip);
        for value in digest.challenge(&request, wall.as_secs(), stale) {
            challenge.header(kind.challenge_header(), value);
        }
        challenge.fill_via_received(from).build()
    }
}

/// Serves `sock` until `stop()` says so, showing every datagram in and out to `capture`.
pub(crate) fn serve(
    sock: &UdpSocket,
    reg: &Registrar,
    capture: &dyn CaptureSink,
    stop: &dyn Fn() -> bool,
) -> std::io::Result<()> {
    let local = sock.local_addr()?;
    let mut config = Config::default();
    config.listeners.push(Listener::new(Transport::Udp, local));
    let layer = TransactionLayer::with_random_seed(&config);
    let seen = |from, to, datagram: &[u8]| {
        let time = SystemTime::now(); // HEP carries wall-clock time
        capture.capture(&CaptureEvent::sip(from, to, Transport::Udp, time, datagram));
    };
    let (mut out, mut buf) = (Output::new(), vec![0u8; 65_535]);
    let mut next_expiry = Duration::ZERO;
    let poll = Duration::from_millis(100); // how often `stop` is asked
    while !stop() {
        // Sleep until a datagram arrives or the layer's next timer is due.
        let now = reg.epoch.elapsed();
        let due = layer.next_timeout().map_or(poll, |t| t.saturating_sub(now));
        sock.set_read_timeout(Some(due.clamp(Duration::from_millis(1), poll)))?;
        match sock.recv_from(&mut buf) {
            Ok((n, peer)) => {
                seen(peer, local, &buf[..n]);
                // A banned source creates no state at all; anything that is not SIP (a CRLF
                // keep-alive too) is dropped.
                if reg.bans.is_banned(peer.ip(), reg.epoch.elapsed()) {
                    continue;
                }
                if let Ok(msg) = Message::parse(Bytes::copy_from_slice(&buf[..n])) {
                    // A retransmitted REGISTER matches its server transaction here
                    // (RFC 3261 §17.2.3) and gets the stored answer again; it never comes out
                    // as an `Event::Request`. That matters for Digest: a REGISTER accepted
                    // once, sent again unchanged because its 200 was lost, carries the same
                    // nonce and nc, and the verifier would refuse it as a replay (`sip-auth`
                    // README, "Retransmissions and replays"). A 401 retransmitted likewise
                    // keeps its nonce. A full table or an unmatchable request is dropped.
                    let flow = Flow::udp(local, peer);
                    let _ = layer.receive(reg.epoch.elapsed(), msg, flow, &mut out);
                }
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) => return Err(e),
        }
        let now = reg.epoch.elapsed();
        layer.handle_timeout(now, &mut out);
        for event in std::mem::take(&mut out.events) {
            let Event::Request { tx, request, flow } = event else {
                continue; // the layer handled it (timeouts, the end of transactions)
            };
            if let Ok(response) = Message::parse(reg.answer(&request, flow.remote)) {
                let (status, call_id) = (response.status().unwrap_or_default(), request.call_id());
                println!("{} from {}: {status}", call_id.unwrap_or("-"), flow.remote);
                let _ = layer.respond(now, tx, &response, &mut out);
            }
        }
        // Over UDP a response goes to the source address (rport) or the Via's port; a
        // `Destination::Host` (a Via `maddr` naming a host) is not resolved here.
        out.transmits.retain(|t| t.destination == Destination::Addr);
        for t in out.transmits.drain(..) {
            let _ = sock.send_to(&t.payload, t.flow.remote); // lost: the client sends again
            seen(local, t.flow.remote, &t.payload);
        }
        if now >= next_expiry {
            next_expiry = now + Duration::from_secs(1);
            let _ = reg.bindings.expire(wall_clock(), 10_000); // the rest a second later
        }
    }
    Ok(())
}

const USAGE: &str =
    "usage: registrar_digest --listen IP:PORT --users FILE [--hep udp:IP:PORT] [--secret FILE]";

#[allow(dead_code)] // also compiled into the SIPp test, which calls `serve` only
fn main() -> Result<(), Box<dyn Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |name: &str| args.windows(2).find(|w| w[0] == name).map(|w| w[1].clone());
    let secrets = match arg("--secret") {
        Some(path) if std::fs::metadata(&path)?.len() < 32 => Err("secret: under 32 bytes")?,
        Some(path) => NonceSecrets::new(1, &std::fs::read(path)?),
        None => NonceSecrets::random()?,
    };
    let users = std::fs::read_to_string(arg("--users").ok_or(USAGE)?)?;
    let reg = Registrar::new(&users, secrets)?;
    let capture: Box<dyn CaptureSink> = match arg("--hep").map(|c| Collector::resolve(&c)) {
        // A bounded queue: a slow collector costs dropped captures, never a blocked registrar.
        Some(hep) => Box::new(HepSender::start(hep?, HepConfig::default(), 4096)?),
        None => Box::new(NullSink),
    };
    let sock = UdpSocket::bind(arg("--listen").unwrap_or_else(|| "127.0.0.1:5060".into()))?;
    let (addr, realm) = (sock.local_addr()?, &reg.digest.config().realm);
    println!("registrar on udp:{addr}, realm {realm}");
    serve(&sock, &reg, &*capture, &|| false)?;
    Ok(())
}
