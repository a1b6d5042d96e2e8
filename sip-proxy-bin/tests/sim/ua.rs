//! Simulated user agents: one `TransactionLayer` each, with a small scripted transaction
//! user that plays a phone or a server. A UA
//!
//! * runs a script of timed [`Action`]s: calls (INVITE, then CANCEL or BYE), one-shot
//!   requests (OPTIONS …), REGISTERs, raw datagrams;
//! * answers INVITEs as its [`Callee`] policy says (ring, answer, reject, ring without end,
//!   stay silent; maybe hang up later), retransmitting its 2xx until the ACK (RFC 3261
//!   §13.3.1.4) and sending BYE if none comes;
//! * answers 401/407 challenges with `sip_auth::DigestClient`;
//! * records everything it received, and for each (Call-ID, CSeq, branch) every final
//!   status, for the invariants in [`check`](super::check).

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use bytes::Bytes;
use sip_auth::{ClientRequest, DigestClient};
use sip_parser::{Message, RequestBuilder, ResponseBuilder, Transport};
use sip_transaction::{
    ClientTxId, Config, Destination, Event, Flow, Listener, Output, ServerTxId, Timers,
    TransactionLayer, Transmit,
};

use super::Rng;

const T1: Duration = Duration::from_millis(500);
const T2: Duration = Duration::from_secs(4);

/// How a callee answers one INVITE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// 180 after `ring` (if any), 200 after `after`; then hang up after `hangup` (if any).
    Accept {
        /// Ring delay.
        ring: Option<Duration>,
        /// Answer delay (from the INVITE's arrival).
        after: Duration,
        /// The callee hangs up this long after answering.
        hangup: Option<Duration>,
    },
    /// 180 after `ring` (if any), then `status` after `after`.
    Reject {
        /// Ring delay.
        ring: Option<Duration>,
        /// The final status (300–699).
        status: u16,
        /// Delay.
        after: Duration,
    },
    /// 180 at once, then 480 only after `give_up` (longer than the proxy's Timer C, shorter
    /// than the layer's `tu_answer`, 213 s, after which the UA's own layer answers 500).
    RingLong {
        /// When the phone stops ringing.
        give_up: Duration,
    },
    /// Nothing but the transaction layer's own 100; 480 after `give_up`.
    Silent {
        /// When it answers after all.
        give_up: Duration,
    },
}

/// How a UA answers INVITEs.
#[derive(Debug, Clone, Copy)]
pub enum Callee {
    /// Always the same way.
    Fixed(Answer),
    /// A fresh choice for each INVITE, from the UA's own generator.
    Random(fn(&mut Rng) -> Answer),
}

impl Callee {
    fn pick(&self, rng: &mut Rng) -> Answer {
        match self {
            Callee::Fixed(a) => *a,
            Callee::Random(f) => f(rng),
        }
    }
}

/// What final status a request must get, if it gets one (the network may lose it).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Expect {
    /// Anything (checked by the other invariants only).
    #[default]
    Any,
    /// Exactly this.
    Status(u16),
    /// One of these.
    OneOf(Vec<u16>),
}

impl Expect {
    /// Whether `status` is allowed.
    pub fn allows(&self, status: u16) -> bool {
        match self {
            Expect::Any => true,
            Expect::Status(s) => *s == status,
            Expect::OneOf(v) => v.contains(&status),
        }
    }
}

/// A call to place.
#[derive(Debug, Clone)]
pub struct CallPlan {
    /// Request-URI.
    pub to: String,
    /// CANCEL this long after the INVITE (if no final came by then).
    pub cancel_after: Option<Duration>,
    /// Hang up this long after the 2xx.
    pub hangup_after: Option<Duration>,
    /// Max-Forwards (70 when `None`).
    pub max_forwards: Option<u8>,
    /// Extra header fields.
    pub headers: Vec<(String, String)>,
    /// The final status expected.
    pub expect: Expect,
}

impl CallPlan {
    /// A call to `uri` that hangs up 2 s after the answer.
    pub fn to(uri: &str) -> Self {
        CallPlan {
            to: uri.to_owned(),
            cancel_after: None,
            hangup_after: Some(Duration::from_secs(2)),
            max_forwards: None,
            headers: Vec::new(),
            expect: Expect::Any,
        }
    }
    /// CANCEL after `d`.
    #[must_use]
    pub fn cancel_after(mut self, d: Duration) -> Self {
        self.cancel_after = Some(d);
        self
    }
    /// Hang up `d` after the answer (`None`: the caller never does; the callee must).
    #[must_use]
    pub fn hangup_after(mut self, d: Option<Duration>) -> Self {
        self.hangup_after = d;
        self
    }
    /// Max-Forwards.
    #[must_use]
    pub fn max_forwards(mut self, n: u8) -> Self {
        self.max_forwards = Some(n);
        self
    }
    /// An extra header field.
    #[must_use]
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }
    /// The final status expected.
    #[must_use]
    pub fn expect(mut self, e: Expect) -> Self {
        self.expect = e;
        self
    }
}

/// A one-shot non-INVITE request (OPTIONS, MESSAGE …).
#[derive(Debug, Clone)]
pub struct ReqPlan {
    /// Method.
    pub method: &'static str,
    /// Request-URI.
    pub uri: String,
    /// Max-Forwards (70 when `None`).
    pub max_forwards: Option<u8>,
    /// Extra header fields.
    pub headers: Vec<(String, String)>,
    /// A To tag (an in-dialog request).
    pub to_tag: Option<String>,
    /// The final status expected.
    pub expect: Expect,
}

impl ReqPlan {
    /// `method` to `uri`.
    pub fn new(method: &'static str, uri: &str) -> Self {
        ReqPlan {
            method,
            uri: uri.to_owned(),
            max_forwards: None,
            headers: Vec::new(),
            to_tag: None,
            expect: Expect::Any,
        }
    }
    /// Max-Forwards.
    #[must_use]
    pub fn max_forwards(mut self, n: u8) -> Self {
        self.max_forwards = Some(n);
        self
    }
    /// An extra header field.
    #[must_use]
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }
    /// A To tag: the request claims to be inside a dialog.
    #[must_use]
    pub fn with_to_tag(mut self, tag: &str) -> Self {
        self.to_tag = Some(tag.to_owned());
        self
    }
    /// The final status expected.
    #[must_use]
    pub fn expect(mut self, e: Expect) -> Self {
        self.expect = e;
        self
    }
}

/// Something a UA does at a scripted time.
#[derive(Debug, Clone)]
pub enum Action {
    /// Place a call.
    Call(CallPlan),
    /// Send a one-shot request.
    Request(ReqPlan),
    /// REGISTER the UA's contact for `expires` seconds (0: remove it), with the UA's
    /// password unless `password` overrides it (a wrong one, to fail authentication).
    Register {
        /// Requested expiry.
        expires: u32,
        /// Password override.
        password: Option<String>,
        /// The final status expected.
        expect: Expect,
    },
    /// Send these bytes to the proxy as they are (malformed requests, keep-alives).
    Raw {
        /// The datagram.
        payload: Bytes,
    },
}

/// Which of a UA's tables a dialog lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// A call the UA placed.
    Caller,
    /// A call the UA received.
    Callee,
}

/// A dialog (RFC 3261 §12): what in-dialog requests are built from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dialog {
    /// Call-ID.
    pub call_id: String,
    /// Our address with our tag (From of our requests).
    pub local: String,
    /// Theirs with their tag (To of our requests).
    pub remote: String,
    /// Their tag.
    pub remote_tag: String,
    /// Route set, in the order to put in Route.
    pub route: Vec<String>,
    /// Remote target (their Contact).
    pub target: String,
    /// Our last CSeq.
    pub cseq: u32,
}

/// How a BYE we sent ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByeResult {
    /// Still running.
    Pending,
    /// A final response.
    Answered(u16),
    /// Timer F, or no route to send it on.
    Failed,
}

/// A call this UA placed.
#[derive(Debug, Clone)]
#[allow(clippy::struct_field_names)]
pub struct Call {
    /// The plan.
    pub plan: CallPlan,
    /// Call-ID.
    pub call_id: String,
    /// Our From tag.
    pub from_tag: String,
    /// When the first INVITE left.
    pub started: Duration,
    /// CSeq of the current INVITE.
    pub cseq: u32,
    /// The current INVITE transaction.
    pub tx: Option<ClientTxId>,
    /// 401/407 answered with credentials.
    pub challenges: Vec<u16>,
    /// The credentials were refused (a challenge came back for them).
    pub auth_failed: bool,
    /// Provisional statuses.
    pub provisional: Vec<u16>,
    /// Final statuses of the current INVITE (2xx repeats included).
    pub finals: Vec<u16>,
    /// Timer B fired (or a transport error).
    pub timed_out: bool,
    /// CANCEL requested.
    pub cancel_sent: bool,
    /// The dialog of the first 2xx.
    pub dialog: Option<Dialog>,
    /// The first 2xx.
    pub ok: Option<Message>,
    /// ACKs sent.
    pub acks: usize,
    /// Our BYE.
    pub bye_sent: Option<ByeResult>,
    /// The other side's BYE arrived.
    pub bye_received: bool,
    /// Dialogs of further 2xx (forking), each ACKed and ended with a BYE at once.
    pub extra: Vec<(Dialog, ByeResult)>,
    /// The UA crashed while this call was in its tables.
    pub crashed: bool,
    auth: Option<DigestClient>,
}

impl Call {
    /// The outcome: the first final status of the current INVITE.
    pub fn outcome(&self) -> Option<u16> {
        self.finals.first().copied()
    }
    /// Whether the call was answered.
    pub fn answered(&self) -> bool {
        self.dialog.is_some()
    }
}

/// A call this UA received.
#[derive(Debug, Clone)]
pub struct Incoming {
    /// Call-ID.
    pub call_id: String,
    /// The INVITE's server transaction.
    pub tx: ServerTxId,
    /// The INVITE as received.
    pub invite: Message,
    /// Our To tag.
    pub tag: String,
    /// How we chose to answer.
    pub answer: Answer,
    /// When it arrived.
    pub arrived: Duration,
    /// Statuses sent (1xx and finals; 2xx retransmissions not repeated).
    pub sent: Vec<u16>,
    /// The final status sent (487 when cancelled).
    pub final_status: Option<u16>,
    /// The CANCEL arrived before our final response.
    pub cancelled: bool,
    /// The ACK of our 2xx arrived.
    pub acked: bool,
    /// No ACK came within 64·T1 (we then sent BYE, §13.3.1.4).
    pub ack_timeout: bool,
    /// Our 2xx (retransmitted until the ACK).
    pub ok: Option<Message>,
    /// Our dialog.
    pub dialog: Option<Dialog>,
    /// Our BYE.
    pub bye_sent: Option<ByeResult>,
    /// Their BYE arrived.
    pub bye_received: bool,
    /// The UA crashed while this call was in its tables.
    pub crashed: bool,
    retx: Option<(Duration, Duration)>,
}

/// A REGISTER (with its authentication retries).
#[derive(Debug, Clone)]
pub struct Registration {
    /// Requested expiry.
    pub expires: u32,
    /// Password used (the UA's, or the override).
    pub password: Option<String>,
    /// The final status expected.
    pub expect: Expect,
    /// CSeq of the current REGISTER.
    pub cseq: u32,
    /// The current transaction.
    pub tx: Option<ClientTxId>,
    /// 401/407 answered with credentials.
    pub challenges: Vec<u16>,
    /// The credentials were refused.
    pub auth_failed: bool,
    /// Final statuses of the current REGISTER.
    pub finals: Vec<u16>,
    /// Timer F fired.
    pub timed_out: bool,
    /// The 2xx (its Contact list is the binding set).
    pub ok: Option<Message>,
    /// The UA crashed after sending it.
    pub crashed: bool,
    auth: Option<DigestClient>,
}

/// A one-shot request sent.
#[derive(Debug, Clone)]
pub struct Request {
    /// The plan.
    pub plan: ReqPlan,
    /// Call-ID.
    pub call_id: String,
    /// CSeq of the current request.
    pub cseq: u32,
    /// The current transaction.
    pub tx: Option<ClientTxId>,
    /// 401/407 answered with credentials.
    pub challenges: Vec<u16>,
    /// Final statuses.
    pub finals: Vec<u16>,
    /// The final responses themselves.
    pub responses: Vec<Message>,
    /// Timer F fired.
    pub timed_out: bool,
    /// The UA crashed after sending it.
    pub crashed: bool,
    auth: Option<DigestClient>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Purpose {
    Invite(usize),
    Bye(Side, usize),
    ExtraBye(usize, usize),
    Register(usize),
    Request(usize),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Timer {
    Respond(usize, u16),
    Retransmit(usize),
    Cancel(usize),
    Hangup(Side, usize),
}

/// (Call-ID, CSeq number, CSeq method, top Via branch): one request as a UA sent it.
pub type TxKey = (String, u32, String, String);

/// A simulated user agent.
pub struct Ua {
    /// Name (also the user part of its AOR).
    pub name: String,
    /// Its socket.
    pub addr: SocketAddr,
    /// Its transaction layer.
    pub layer: TransactionLayer,
    /// Where its initial requests go (the proxy).
    pub proxy: SocketAddr,
    /// Its domain (AOR `sip:name@domain`).
    pub domain: String,
    /// Its digest password.
    pub password: Option<String>,
    /// How it answers INVITEs.
    pub callee: Callee,
    rng: Rng,
    script: Vec<(Duration, Action)>,
    next_action: usize,
    timers: Vec<(Duration, u64, Timer)>,
    timer_seq: u64,
    counter: u64,
    reg_cseq: u32,
    purposes: BTreeMap<ClientTxId, Purpose>,
    /// Calls placed.
    pub calls: Vec<Call>,
    /// Calls received.
    pub incoming: Vec<Incoming>,
    /// REGISTERs sent.
    pub registrations: Vec<Registration>,
    /// One-shot requests sent.
    pub requests: Vec<Request>,
    /// Raw datagrams sent.
    pub raw: Vec<Bytes>,
    /// Every datagram received: (time, from, bytes).
    pub inbox: Vec<(Duration, SocketAddr, Bytes)>,
    /// Every final status received, per request.
    pub finals: BTreeMap<TxKey, Vec<u16>>,
    /// Responses that matched none of our transactions.
    pub strays: Vec<Message>,
    /// ACKs matching none of our calls.
    pub stray_acks: usize,
    /// In-dialog requests for dialogs we do not know (answered 481).
    pub unknown_dialog: Vec<Message>,
    /// What the layer refused (it must refuse nothing the proxy sends).
    pub refused: Vec<String>,
    /// Datagrams that did not parse.
    pub garbage: usize,
    /// CRLF keep-alives received.
    pub keepalives: usize,
    /// Live server transactions: when their request arrived, and its method.
    pub live_servers: BTreeMap<ServerTxId, (Duration, String)>,
    /// Times it crashed.
    pub crashes: usize,
}

/// The SDP offer/answer every call carries (its content does not matter to the proxy).
fn sdp(addr: SocketAddr) -> String {
    format!(
        "v=0\r\no=- 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\nm=audio {port} RTP/AVP 0\r\n",
        ip = addr.ip(),
        port = 20_000 + addr.port() % 1000
    )
}

/// A URI's (or name-addr's) address: literal IP only, 5060 by default.
pub fn resolve(uri: &[u8]) -> Option<SocketAddr> {
    let raw = sip_parser::NameAddr::parse(uri).map_or(uri, |n| n.raw_uri);
    let u = sip_parser::Uri::parse(raw).ok()?;
    let ip: IpAddr = u
        .host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .ok()?;
    Some(SocketAddr::new(ip, u.port.unwrap_or(5060)))
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

impl Ua {
    /// A UA `name` on `addr`, sending its initial requests to `proxy`, in `domain`. Its
    /// transaction keys and behaviour choices come from `seed`.
    pub fn new(name: &str, addr: SocketAddr, proxy: SocketAddr, domain: &str, seed: u64) -> Ua {
        let mut rng = Rng::new(seed);
        Ua {
            name: name.to_owned(),
            addr,
            layer: Self::layer_for(addr, &mut rng),
            proxy,
            domain: domain.to_owned(),
            password: None,
            callee: Callee::Fixed(Answer::Accept {
                ring: Some(Duration::from_millis(100)),
                after: Duration::from_millis(500),
                hangup: None,
            }),
            rng,
            script: Vec::new(),
            next_action: 0,
            timers: Vec::new(),
            timer_seq: 0,
            counter: 0,
            reg_cseq: 0,
            purposes: BTreeMap::new(),
            calls: Vec::new(),
            incoming: Vec::new(),
            registrations: Vec::new(),
            requests: Vec::new(),
            raw: Vec::new(),
            inbox: Vec::new(),
            finals: BTreeMap::new(),
            strays: Vec::new(),
            stray_acks: 0,
            unknown_dialog: Vec::new(),
            refused: Vec::new(),
            garbage: 0,
            keepalives: 0,
            live_servers: BTreeMap::new(),
            crashes: 0,
        }
    }

    fn layer_for(addr: SocketAddr, rng: &mut Rng) -> TransactionLayer {
        let cfg = Config {
            listeners: vec![Listener::new(Transport::Udp, addr)],
            shards: 1,
            max_transactions: 4096,
            timers: Timers::default(),
            ..Config::default()
        };
        TransactionLayer::new(&cfg, rng.bytes32())
    }

    /// The UA crashes and restarts empty: its transactions, timers and dialogs are gone
    /// (what it recorded stays; the calls it was in are marked `crashed`).
    pub fn crash(&mut self) {
        self.layer = Self::layer_for(self.addr, &mut self.rng);
        self.timers.clear();
        self.purposes.clear();
        self.live_servers.clear();
        for c in &mut self.incoming {
            c.crashed = true;
        }
        for c in &mut self.calls {
            c.crashed = true;
        }
        for r in &mut self.registrations {
            r.crashed = true;
        }
        for r in &mut self.requests {
            r.crashed = true;
        }
        self.crashes += 1;
    }

    /// With this digest password.
    #[must_use]
    pub fn password(mut self, p: &str) -> Self {
        self.password = Some(p.to_owned());
        self
    }

    /// Answering INVITEs this way.
    #[must_use]
    pub fn answering(mut self, c: Callee) -> Self {
        self.callee = c;
        self
    }

    /// Doing `a` at virtual time `t` (actions at the same time keep their order).
    #[must_use]
    pub fn at(mut self, t: Duration, a: Action) -> Self {
        self.schedule(t, a);
        self
    }

    /// Schedules `a` at virtual time `t` (not before the actions already run).
    pub fn schedule(&mut self, t: Duration, a: Action) {
        let pos = self
            .script
            .partition_point(|x| x.0 <= t)
            .max(self.next_action);
        self.script.insert(pos, (t, a));
    }

    /// The AOR, `sip:name@domain`.
    pub fn aor(&self) -> String {
        format!("sip:{}@{}", self.name, self.domain)
    }

    /// The contact, `sip:name@addr`.
    pub fn contact(&self) -> String {
        format!("sip:{}@{}", self.name, self.addr)
    }

    /// When this UA next has something to do.
    pub fn next_deadline(&self) -> Option<Duration> {
        [
            self.layer.next_timeout(),
            self.script.get(self.next_action).map(|a| a.0),
            self.timers.iter().map(|t| t.0).min(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Nothing left to do at `now`: no timer, no scripted action, and no transaction but
    /// the server transactions of OPTIONS requests (health probes) that arrived less than
    /// 64·T1 (their Timer J) ago.
    pub fn idle(&self, now: Duration) -> bool {
        let probes = self
            .live_servers
            .values()
            .filter(|(t, m)| {
                m == "OPTIONS" && now.saturating_sub(*t) <= T1 * 64 + Duration::from_secs(1)
            })
            .count();
        self.layer.len() == probes
            && self.timers.is_empty()
            && self.next_action >= self.script.len()
    }

    /// What is still running (for a failure report).
    pub fn busy(&self) -> String {
        format!(
            "{}: {} transactions, {} timers {:?}, {} actions left",
            self.name,
            self.layer.len(),
            self.timers.len(),
            self.timers
                .iter()
                .map(|t| (t.0.as_secs_f64(), t.2))
                .collect::<Vec<_>>(),
            self.script.len() - self.next_action.min(self.script.len())
        )
    }

    fn timer(&mut self, at: Duration, t: Timer) {
        self.timer_seq += 1;
        self.timers.push((at, self.timer_seq, t));
    }

    fn id(&mut self) -> u64 {
        self.counter += 1;
        self.counter
    }

    fn cnonce(&mut self) -> String {
        format!("{:016x}", self.rng.next_u64())
    }

    /// A datagram arrived from `from`.
    pub fn receive(&mut self, now: Duration, from: SocketAddr, payload: Bytes, out: &mut Output) {
        self.inbox.push((now, from, payload.clone()));
        let msg = match Message::parse(payload) {
            Ok(m) => m,
            Err(sip_parser::ParseError::KeepAlive) => {
                self.keepalives += 1;
                return;
            }
            Err(_) => {
                self.garbage += 1;
                return;
            }
        };
        if let Some(status) = msg.status() {
            if status >= 200 {
                let cseq = msg
                    .cseq()
                    .map(|c| (c.seq, c.method.to_owned()))
                    .unwrap_or_default();
                let branch = msg
                    .top_via()
                    .ok()
                    .flatten()
                    .and_then(|v| v.branch.map(str::to_owned))
                    .unwrap_or_default();
                let key = (
                    msg.call_id().unwrap_or_default().to_owned(),
                    cseq.0,
                    cseq.1,
                    branch,
                );
                self.finals.entry(key).or_default().push(status);
            }
        }
        if let Err(e) = self
            .layer
            .receive(now, msg, Flow::udp(self.addr, from), out)
        {
            self.refused
                .push(format!("{:.3}s from {from}: {e}", now.as_secs_f64()));
        }
        self.events(now, out);
    }

    /// Timers, scripted actions and TU timers due at `now`.
    pub fn tick(&mut self, now: Duration, out: &mut Output) {
        self.layer.handle_timeout(now, out);
        self.events(now, out);
        while self
            .script
            .get(self.next_action)
            .is_some_and(|a| a.0 <= now)
        {
            let a = self.script[self.next_action].1.clone();
            self.next_action += 1;
            self.act(now, a, out);
            self.events(now, out);
        }
        loop {
            let due = self
                .timers
                .iter()
                .enumerate()
                .filter(|(_, t)| t.0 <= now)
                .min_by_key(|(_, t)| (t.0, t.1))
                .map(|(i, _)| i);
            let Some(i) = due else { break };
            let (_, _, t) = self.timers.remove(i);
            self.fire(now, t, out);
            self.events(now, out);
        }
    }

    fn events(&mut self, now: Duration, out: &mut Output) {
        for _ in 0..1000 {
            if out.events.is_empty() {
                return;
            }
            for e in std::mem::take(&mut out.events) {
                self.on_event(now, e, out);
            }
        }
        panic!("{}: event storm", self.name);
    }

    fn act(&mut self, now: Duration, a: Action, out: &mut Output) {
        match a {
            Action::Call(plan) => {
                let n = self.id();
                self.calls.push(Call {
                    call_id: format!("{}-{n}-{:08x}@sim", self.name, self.rng.next_u64() as u32),
                    from_tag: format!("{}f{n}", self.name),
                    started: now,
                    cseq: 1,
                    tx: None,
                    challenges: Vec::new(),
                    auth_failed: false,
                    provisional: Vec::new(),
                    finals: Vec::new(),
                    timed_out: false,
                    cancel_sent: false,
                    dialog: None,
                    ok: None,
                    acks: 0,
                    bye_sent: None,
                    bye_received: false,
                    extra: Vec::new(),
                    crashed: false,
                    auth: None,
                    plan,
                });
                let i = self.calls.len() - 1;
                if let Some(d) = self.calls[i].plan.cancel_after {
                    self.timer(now + d, Timer::Cancel(i));
                }
                self.send_invite(now, i, None, out);
            }
            Action::Request(plan) => {
                let n = self.id();
                self.requests.push(Request {
                    call_id: format!("{}-r{n}-{:08x}@sim", self.name, self.rng.next_u64() as u32),
                    cseq: 1,
                    tx: None,
                    challenges: Vec::new(),
                    finals: Vec::new(),
                    responses: Vec::new(),
                    timed_out: false,
                    crashed: false,
                    auth: None,
                    plan,
                });
                let i = self.requests.len() - 1;
                self.send_request(now, i, None, out);
            }
            Action::Register {
                expires,
                password,
                expect,
            } => {
                self.reg_cseq += 1;
                self.registrations.push(Registration {
                    expires,
                    password: password.or_else(|| self.password.clone()),
                    expect,
                    cseq: self.reg_cseq,
                    tx: None,
                    challenges: Vec::new(),
                    auth_failed: false,
                    finals: Vec::new(),
                    timed_out: false,
                    ok: None,
                    crashed: false,
                    auth: None,
                });
                let i = self.registrations.len() - 1;
                self.send_register(now, i, None, out);
            }
            Action::Raw { payload } => {
                self.raw.push(payload.clone());
                out.transmits.push(Transmit {
                    flow: Flow::udp(self.addr, self.proxy),
                    destination: Destination::Addr,
                    payload,
                    tx: None,
                });
            }
        }
    }

    fn aor_header(&self) -> String {
        format!("<sip:{}@{}>", self.name, self.domain)
    }

    fn send_invite(
        &mut self,
        now: Duration,
        i: usize,
        auth: Option<&(&str, String)>,
        out: &mut Output,
    ) {
        let c = &self.calls[i];
        let from = self.aor_header();
        let to = format!("<{}>", c.plan.to);
        let contact = format!("<{}>", self.contact());
        let body = sdp(self.addr);
        let (uri, cid, tag, cseq) = (
            c.plan.to.clone(),
            c.call_id.clone(),
            c.from_tag.clone(),
            c.cseq,
        );
        let (mf, headers) = (c.plan.max_forwards, c.plan.headers.clone());
        let r = self.layer.send_request(
            now,
            Flow::udp(self.addr, self.proxy),
            |via| {
                let mut b = RequestBuilder::new("INVITE", uri.as_str());
                b.via(via)
                    .from(from.as_str(), Some(tag.as_str()))
                    .to(to.as_str(), None)
                    .call_id(cid.as_str())
                    .cseq(cseq)
                    .contact(contact.as_str());
                if let Some(n) = mf {
                    b.max_forwards(n);
                }
                for (n, v) in &headers {
                    b.header(n.as_str(), v.as_str());
                }
                if let Some((n, v)) = &auth {
                    b.header(*n, v.as_str());
                }
                b.body("application/sdp", body.as_str());
                b.build()
            },
            out,
        );
        let tx = r.unwrap_or_else(|e| panic!("{}: INVITE not sent: {e}", self.name));
        self.calls[i].tx = Some(tx);
        self.purposes.insert(tx, Purpose::Invite(i));
    }

    fn send_request(
        &mut self,
        now: Duration,
        i: usize,
        auth: Option<&(&str, String)>,
        out: &mut Output,
    ) {
        let r = &self.requests[i];
        let from = self.aor_header();
        let tag = format!("{}q{}", self.name, i);
        let (uri, cid, cseq, method) =
            (r.plan.uri.clone(), r.call_id.clone(), r.cseq, r.plan.method);
        let to = format!("<{uri}>");
        let (mf, headers) = (r.plan.max_forwards, r.plan.headers.clone());
        let to_tag = r.plan.to_tag.clone();
        let res = self.layer.send_request(
            now,
            Flow::udp(self.addr, self.proxy),
            |via| {
                let mut b = RequestBuilder::new(method, uri.as_str());
                b.via(via)
                    .from(from.as_str(), Some(tag.as_str()))
                    .to(to.as_str(), to_tag.as_deref())
                    .call_id(cid.as_str())
                    .cseq(cseq);
                if let Some(n) = mf {
                    b.max_forwards(n);
                }
                for (n, v) in &headers {
                    b.header(n.as_str(), v.as_str());
                }
                if let Some((n, v)) = &auth {
                    b.header(*n, v.as_str());
                }
                b.build()
            },
            out,
        );
        let tx = res.unwrap_or_else(|e| panic!("{}: {method} not sent: {e}", self.name));
        self.requests[i].tx = Some(tx);
        self.purposes.insert(tx, Purpose::Request(i));
    }

    fn send_register(
        &mut self,
        now: Duration,
        i: usize,
        auth: Option<&(&str, String)>,
        out: &mut Output,
    ) {
        let r = &self.registrations[i];
        let aor = self.aor_header();
        let uri = format!("sip:{}", self.domain);
        let cid = format!("reg-{}@sim", self.name);
        let tag = format!("{}g{}", self.name, r.cseq);
        let contact = format!("<{}>;expires={}", self.contact(), r.expires);
        let cseq = r.cseq;
        let res = self.layer.send_request(
            now,
            Flow::udp(self.addr, self.proxy),
            |via| {
                let mut b = RequestBuilder::new("REGISTER", uri.as_str());
                b.via(via)
                    .from(aor.as_str(), Some(tag.as_str()))
                    .to(aor.as_str(), None)
                    .call_id(cid.as_str())
                    .cseq(cseq)
                    .contact(contact.as_str());
                if let Some((n, v)) = &auth {
                    b.header(*n, v.as_str());
                }
                b.build()
            },
            out,
        );
        let tx = res.unwrap_or_else(|e| panic!("{}: REGISTER not sent: {e}", self.name));
        self.registrations[i].tx = Some(tx);
        self.purposes.insert(tx, Purpose::Register(i));
    }

    /// Credentials for a 401/407: the header to send them in, and the value; `None` when
    /// there is no password or the client refuses (the same credentials were refused).
    fn credentials(
        &mut self,
        client: &mut Option<DigestClient>,
        password: Option<&str>,
        resp: &Message,
        method: &str,
        uri: &str,
        body: &[u8],
    ) -> Option<(&'static str, String)> {
        let password = password?;
        let status = resp.status()?;
        let (ask, answer) = if status == 401 {
            ("WWW-Authenticate", "Authorization")
        } else {
            ("Proxy-Authenticate", "Proxy-Authorization")
        };
        let challenges: Vec<&[u8]> = resp.headers_named(ask).map(|h| h.value).collect();
        let cnonce = self.cnonce();
        let c = client.get_or_insert_with(|| DigestClient::new(&self.name, password));
        let req = ClientRequest { method, uri, body };
        c.respond(&challenges, &req, &cnonce)
            .ok()
            .map(|v| (answer, v))
    }

    fn on_event(&mut self, now: Duration, e: Event, out: &mut Output) {
        match e {
            Event::Request { tx, request, .. } => {
                let method = request.method().unwrap_or_default().to_owned();
                self.live_servers.insert(tx, (now, method));
                self.on_request(now, tx, &request, out);
            }
            Event::ServerTerminated { tx, .. } => {
                self.live_servers.remove(&tx);
            }
            Event::Ack { request, .. } => {
                let cid = request.call_id().unwrap_or_default();
                let tag = request.to().ok().and_then(|t| t.tag().map(str::to_owned));
                match self
                    .incoming
                    .iter_mut()
                    .find(|c| !c.crashed && c.call_id == cid && Some(&c.tag) == tag.as_ref())
                {
                    Some(c) => c.acked = true,
                    None => self.stray_acks += 1,
                }
            }
            Event::Cancelled { tx } => {
                if let Some(i) = self.incoming.iter().position(|c| !c.crashed && c.tx == tx) {
                    let c = &mut self.incoming[i];
                    if c.final_status.is_none() {
                        c.cancelled = true;
                        c.final_status = Some(487);
                        c.sent.push(487);
                        self.timers
                            .retain(|t| !matches!(t.2, Timer::Respond(j, _) if j == i));
                    }
                }
            }
            Event::Response { tx, response } => self.on_response(now, tx, &response, out),
            Event::Timeout { tx } | Event::TransportError { tx } => match self.purposes.get(&tx) {
                Some(Purpose::Invite(i)) => self.calls[*i].timed_out = true,
                Some(Purpose::Bye(Side::Caller, i)) => {
                    self.calls[*i].bye_sent = Some(ByeResult::Failed);
                }
                Some(Purpose::Bye(Side::Callee, i)) => {
                    self.incoming[*i].bye_sent = Some(ByeResult::Failed);
                }
                Some(Purpose::ExtraBye(i, j)) => self.calls[*i].extra[*j].1 = ByeResult::Failed,
                Some(Purpose::Register(i)) => self.registrations[*i].timed_out = true,
                Some(Purpose::Request(i)) => self.requests[*i].timed_out = true,
                None => {}
            },
            Event::StrayResponse { response, .. } => {
                // A 2xx retransmission after our INVITE transaction ended: ACK it again.
                let is_invite_2xx = response.status().is_some_and(|s| (200..300).contains(&s))
                    && response.cseq().is_ok_and(|c| c.method == "INVITE");
                if is_invite_2xx {
                    let cid = response.call_id().unwrap_or_default();
                    if let Some(i) = self
                        .calls
                        .iter()
                        .position(|c| !c.crashed && c.call_id == cid)
                    {
                        self.on_invite_2xx(now, i, &response, out);
                    }
                }
                self.strays.push(response);
            }
            _ => {}
        }
    }

    fn on_response(&mut self, now: Duration, tx: ClientTxId, resp: &Message, out: &mut Output) {
        let Some(p) = self.purposes.get(&tx).copied() else {
            self.strays.push(resp.clone());
            return;
        };
        let status = resp.status().unwrap_or(0);
        match p {
            Purpose::Invite(i) => {
                if (200..300).contains(&status) {
                    self.calls[i].finals.push(status);
                    self.on_invite_2xx(now, i, resp, out);
                    return;
                }
                if self.calls[i].tx != Some(tx) {
                    return; // an earlier attempt (before a challenge)
                }
                if status < 200 {
                    self.calls[i].provisional.push(status);
                    return;
                }
                if matches!(status, 401 | 407)
                    && self.calls[i].challenges.len() < 2
                    && !self.calls[i].cancel_sent
                {
                    let mut client = self.calls[i].auth.take();
                    let uri = self.calls[i].plan.to.clone();
                    let pw = self.password.clone();
                    let body = sdp(self.addr);
                    let cred = self.credentials(
                        &mut client,
                        pw.as_deref(),
                        resp,
                        "INVITE",
                        &uri,
                        body.as_bytes(),
                    );
                    self.calls[i].auth = client;
                    if let Some(cred) = cred {
                        let c = &mut self.calls[i];
                        c.challenges.push(status);
                        c.cseq += 1;
                        c.provisional.clear();
                        self.send_invite(now, i, Some(&cred), out);
                        return;
                    }
                    self.calls[i].auth_failed = self.password.is_some();
                }
                self.calls[i].finals.push(status);
            }
            Purpose::Bye(side, i) if status >= 200 => match side {
                Side::Caller => self.calls[i].bye_sent = Some(ByeResult::Answered(status)),
                Side::Callee => self.incoming[i].bye_sent = Some(ByeResult::Answered(status)),
            },
            Purpose::ExtraBye(i, j) if status >= 200 => {
                self.calls[i].extra[j].1 = ByeResult::Answered(status);
            }
            Purpose::Register(i) if status >= 200 => {
                if self.registrations[i].tx != Some(tx) {
                    return;
                }
                if matches!(status, 401 | 407) && self.registrations[i].challenges.len() < 2 {
                    let mut client = self.registrations[i].auth.take();
                    let pw = self.registrations[i].password.clone();
                    let uri = format!("sip:{}", self.domain);
                    let cred =
                        self.credentials(&mut client, pw.as_deref(), resp, "REGISTER", &uri, b"");
                    self.registrations[i].auth = client;
                    if let Some(cred) = cred {
                        self.reg_cseq += 1;
                        let r = &mut self.registrations[i];
                        r.challenges.push(status);
                        r.cseq = self.reg_cseq;
                        self.send_register(now, i, Some(&cred), out);
                        return;
                    }
                    self.registrations[i].auth_failed = pw.is_some();
                }
                let r = &mut self.registrations[i];
                r.finals.push(status);
                if (200..300).contains(&status) {
                    r.ok = Some(resp.clone());
                    if let Some(a) = &mut r.auth {
                        a.accepted();
                    }
                }
            }
            Purpose::Request(i) if status >= 200 => {
                if self.requests[i].tx != Some(tx) {
                    return;
                }
                if matches!(status, 401 | 407) && self.requests[i].challenges.len() < 2 {
                    let mut client = self.requests[i].auth.take();
                    let pw = self.password.clone();
                    let (method, uri) = (
                        self.requests[i].plan.method,
                        self.requests[i].plan.uri.clone(),
                    );
                    let cred =
                        self.credentials(&mut client, pw.as_deref(), resp, method, &uri, b"");
                    self.requests[i].auth = client;
                    if let Some(cred) = cred {
                        let r = &mut self.requests[i];
                        r.challenges.push(status);
                        r.cseq += 1;
                        self.send_request(now, i, Some(&cred), out);
                        return;
                    }
                }
                self.requests[i].finals.push(status);
                self.requests[i].responses.push(resp.clone());
            }
            _ => {}
        }
    }

    /// A 2xx to our INVITE (first, repeated, or from another fork): ACK it; the first one
    /// makes the dialog, a 2xx from another fork is ended at once.
    fn on_invite_2xx(&mut self, now: Duration, i: usize, ok: &Message, out: &mut Output) {
        let c = &self.calls[i];
        let local = format!("{};tag={}", self.aor_header(), c.from_tag);
        let d = dialog_uac(ok, &c.call_id, local, c.cseq);
        let cseq = ok.cseq().map_or(c.cseq, |x| x.seq);
        self.ack(&d, cseq, out);
        let c = &mut self.calls[i];
        c.acks += 1;
        if let Some(a) = &mut c.auth {
            a.accepted();
        }
        match &c.dialog {
            None => {
                c.dialog = Some(d);
                c.ok = Some(ok.clone());
                // A 2xx after our CANCEL: the call is not wanted, end it now (§9.1).
                let after = if c.cancel_sent {
                    Some(Duration::ZERO)
                } else {
                    c.plan.hangup_after
                };
                if let Some(h) = after {
                    self.timer(now + h, Timer::Hangup(Side::Caller, i));
                }
            }
            Some(first) if first.remote_tag == d.remote_tag => {}
            Some(_) => {
                if c.extra.iter().all(|e| e.0.remote_tag != d.remote_tag) {
                    let mut d = d;
                    let j = c.extra.len();
                    let sent = self.bye(now, &mut d, out);
                    let c = &mut self.calls[i];
                    match sent {
                        Some(tx) => {
                            c.extra.push((d, ByeResult::Pending));
                            self.purposes.insert(tx, Purpose::ExtraBye(i, j));
                        }
                        None => c.extra.push((d, ByeResult::Failed)),
                    }
                }
            }
        }
    }

    fn on_request(&mut self, now: Duration, tx: ServerTxId, req: &Message, out: &mut Output) {
        let to_tag = req.to().ok().and_then(|t| t.tag().map(str::to_owned));
        let from_tag = req.from().ok().and_then(|t| t.tag().map(str::to_owned));
        let cid = req.call_id().unwrap_or_default().to_owned();
        match req.method() {
            Some("INVITE") if to_tag.is_none() => self.on_invite(now, tx, req, out),
            Some("BYE") => {
                let mine = |tag: &String| Some(tag) == to_tag.as_ref();
                let caller = self.calls.iter().position(|c| {
                    !c.crashed
                        && c.call_id == cid
                        && mine(&c.from_tag)
                        && c.dialog
                            .as_ref()
                            .is_some_and(|d| Some(&d.remote_tag) == from_tag.as_ref())
                });
                let callee = self.incoming.iter().position(|c| {
                    !c.crashed && c.call_id == cid && mine(&c.tag) && c.dialog.is_some()
                });
                let status = if let Some(i) = caller {
                    self.calls[i].bye_received = true;
                    self.timers
                        .retain(|t| t.2 != Timer::Hangup(Side::Caller, i));
                    200
                } else if let Some(i) = callee {
                    self.incoming[i].bye_received = true;
                    self.timers
                        .retain(|t| t.2 != Timer::Hangup(Side::Callee, i));
                    200
                } else {
                    self.unknown_dialog.push(req.clone());
                    481
                };
                self.respond(now, tx, req, status, None, out);
            }
            Some("INVITE") => {
                self.unknown_dialog.push(req.clone());
                self.respond(now, tx, req, 481, None, out);
            }
            _ => self.respond(now, tx, req, 200, None, out),
        }
    }

    fn respond(
        &mut self,
        now: Duration,
        tx: ServerTxId,
        req: &Message,
        status: u16,
        tag: Option<&str>,
        out: &mut Output,
    ) {
        let mut b = ResponseBuilder::new(req, status, sip_parser::reason_phrase(status));
        if let Some(t) = tag {
            b.to_tag(t.to_owned());
        } else if req.to().ok().and_then(|t| t.tag()).is_none() {
            b.to_tag(format!("{}x{}", self.name, self.counter));
        }
        if status == 200 && req.method() == Some("OPTIONS") {
            b.header("Allow", "INVITE, ACK, CANCEL, BYE, OPTIONS");
        }
        let m = Message::parse(b.build()).expect("our response parses");
        if let Err(e) = self.layer.respond(now, tx, &m, out) {
            self.refused
                .push(format!("{:.3}s respond {status}: {e}", now.as_secs_f64()));
        }
    }

    fn on_invite(&mut self, now: Duration, tx: ServerTxId, req: &Message, out: &mut Output) {
        let answer = self.callee.pick(&mut self.rng);
        let n = self.id();
        let i = self.incoming.len();
        self.incoming.push(Incoming {
            call_id: req.call_id().unwrap_or_default().to_owned(),
            tx,
            invite: req.clone(),
            // Several devices may share a name (one AOR, two registrations): the address
            // keeps their tags apart.
            tag: format!("{}t{n}d{}", self.name, self.addr.ip()).replace(['.', ':'], ""),
            answer,
            arrived: now,
            sent: Vec::new(),
            final_status: None,
            cancelled: false,
            acked: false,
            ack_timeout: false,
            ok: None,
            dialog: None,
            bye_sent: None,
            bye_received: false,
            crashed: false,
            retx: None,
        });
        match answer {
            Answer::Accept { ring, after, .. } => {
                if let Some(r) = ring {
                    self.timer(now + r, Timer::Respond(i, 180));
                }
                self.timer(now + after, Timer::Respond(i, 200));
            }
            Answer::Reject {
                ring,
                status,
                after,
            } => {
                if let Some(r) = ring {
                    self.timer(now + r, Timer::Respond(i, 180));
                }
                self.timer(now + after, Timer::Respond(i, status));
            }
            Answer::RingLong { give_up } => {
                self.answer(now, i, 180, out);
                self.timer(now + give_up, Timer::Respond(i, 480));
            }
            Answer::Silent { give_up } => self.timer(now + give_up, Timer::Respond(i, 480)),
        }
    }

    /// Sends `status` for incoming call `i` (unless it is over).
    fn answer(&mut self, now: Duration, i: usize, status: u16, out: &mut Output) {
        let c = &self.incoming[i];
        if c.final_status.is_some() || c.bye_received {
            return;
        }
        let mut b = ResponseBuilder::new(&c.invite, status, sip_parser::reason_phrase(status));
        b.to_tag(c.tag.clone());
        let contact = format!("<{}>", self.contact());
        if status < 300 {
            b.copy_record_route().header("Contact", contact);
        }
        if (200..300).contains(&status) {
            b.body("application/sdp", sdp(self.addr));
        }
        let m = Message::parse(b.build()).expect("our response parses");
        if let Err(e) = self.layer.respond(now, c.tx, &m, out) {
            self.refused
                .push(format!("{:.3}s answer {status}: {e}", now.as_secs_f64()));
            return;
        }
        let local = format!(
            "{};tag={}",
            text(c.invite.header("To").unwrap_or_default()),
            c.tag
        );
        let d = (200..300)
            .contains(&status)
            .then(|| dialog_uas(&c.invite, local));
        let hangup = match c.answer {
            Answer::Accept { hangup, .. } => hangup,
            _ => None,
        };
        let c = &mut self.incoming[i];
        c.sent.push(status);
        if status >= 200 {
            c.final_status = Some(status);
        }
        if let Some(d) = d {
            c.dialog = Some(d);
            c.ok = Some(m);
            c.retx = Some((T1, now + T1 * 64));
            self.timer(now + T1, Timer::Retransmit(i));
            if let Some(h) = hangup {
                self.timer(now + h, Timer::Hangup(Side::Callee, i));
            }
        }
    }

    fn fire(&mut self, now: Duration, t: Timer, out: &mut Output) {
        match t {
            Timer::Respond(i, status) => self.answer(now, i, status, out),
            Timer::Retransmit(i) => {
                let c = &self.incoming[i];
                if c.acked || c.bye_received || c.bye_sent.is_some() {
                    return;
                }
                let Some((interval, until)) = c.retx else {
                    return;
                };
                let ok = c.ok.clone().expect("a 2xx to retransmit");
                if now >= until || self.layer.respond(now, c.tx, &ok, out).is_err() {
                    // §13.3.1.4: no ACK within 64·T1: confirm the dialog, then end it.
                    self.incoming[i].ack_timeout = true;
                    self.hang_up(now, Side::Callee, i, out);
                    return;
                }
                let next = (interval * 2).min(T2);
                self.incoming[i].retx = Some((next, until));
                self.timer(now + next, Timer::Retransmit(i));
            }
            Timer::Cancel(i) => {
                let c = &mut self.calls[i];
                if c.finals.is_empty() && !c.timed_out {
                    c.cancel_sent = true;
                    if let Some(tx) = c.tx {
                        let _ = self.layer.cancel(now, tx, out);
                    }
                }
            }
            Timer::Hangup(Side::Callee, i)
                if !self.incoming[i].acked
                    && !self.incoming[i].ack_timeout
                    && !self.incoming[i].bye_received =>
            {
                // §15: the callee must not send BYE before the ACK of its 2xx (or the end of
                // its retransmissions): try again later.
                self.timer(now + T1, Timer::Hangup(Side::Callee, i));
            }
            Timer::Hangup(side, i) => self.hang_up(now, side, i, out),
        }
    }

    fn hang_up(&mut self, now: Duration, side: Side, i: usize, out: &mut Output) {
        let (received, sent, dialog) = match side {
            Side::Caller => {
                let c = &self.calls[i];
                (c.bye_received, c.bye_sent, c.dialog.clone())
            }
            Side::Callee => {
                let c = &self.incoming[i];
                (c.bye_received, c.bye_sent, c.dialog.clone())
            }
        };
        let Some(mut d) = dialog else { return };
        if received || sent.is_some() {
            return;
        }
        let tx = self.bye(now, &mut d, out);
        let result = if tx.is_some() {
            ByeResult::Pending
        } else {
            ByeResult::Failed
        };
        match side {
            Side::Caller => {
                self.calls[i].dialog = Some(d);
                self.calls[i].bye_sent = Some(result);
            }
            Side::Callee => {
                self.incoming[i].dialog = Some(d);
                self.incoming[i].bye_sent = Some(result);
            }
        }
        if let Some(tx) = tx {
            self.purposes.insert(tx, Purpose::Bye(side, i));
        }
    }

    fn next_hop(d: &Dialog) -> Option<SocketAddr> {
        match d.route.first() {
            Some(r) => resolve(r.as_bytes()),
            None => resolve(d.target.as_bytes()),
        }
    }

    /// The ACK of a 2xx (§13.2.2.4): its own transaction, along the route set.
    fn ack(&mut self, d: &Dialog, cseq: u32, out: &mut Output) {
        let Some(hop) = Self::next_hop(d) else { return };
        let via = format!(
            "SIP/2.0/UDP {};branch=z9hG4bK-ack-{}-{cseq}-{}",
            self.addr,
            d.call_id.len(),
            d.remote_tag
        );
        let mut b = RequestBuilder::new("ACK", d.target.as_str());
        b.via(via.as_str())
            .from(d.local.as_str(), None)
            .to(d.remote.as_str(), None)
            .call_id(d.call_id.as_str())
            .cseq(cseq);
        for r in &d.route {
            b.route(r.as_str());
        }
        out.transmits.push(Transmit {
            flow: Flow::udp(self.addr, hop),
            destination: Destination::Addr,
            payload: b.build(),
            tx: None,
        });
    }

    /// A BYE in dialog `d`, as a client transaction.
    fn bye(&mut self, now: Duration, d: &mut Dialog, out: &mut Output) -> Option<ClientTxId> {
        let hop = Self::next_hop(d)?;
        d.cseq += 1;
        let d = d.clone();
        self.layer
            .send_request(
                now,
                Flow::udp(self.addr, hop),
                |via| {
                    let mut b = RequestBuilder::new("BYE", d.target.as_str());
                    b.via(via)
                        .from(d.local.as_str(), None)
                        .to(d.remote.as_str(), None)
                        .call_id(d.call_id.as_str())
                        .cseq(d.cseq);
                    for r in &d.route {
                        b.route(r.as_str());
                    }
                    b.build()
                },
                out,
            )
            .ok()
    }
}

/// The caller's dialog from a 2xx (§12.1.2): Record-Route reversed, Contact as target.
fn dialog_uac(ok: &Message, call_id: &str, local: String, cseq: u32) -> Dialog {
    let mut route: Vec<String> = ok
        .record_routes()
        .filter_map(Result::ok)
        .map(|r| format!("<{}>", text(r.raw_uri)))
        .collect();
    route.reverse();
    Dialog {
        call_id: call_id.to_owned(),
        local,
        remote: text(ok.header("To").unwrap_or_default()),
        remote_tag: ok
            .to()
            .ok()
            .and_then(|t| t.tag().map(str::to_owned))
            .unwrap_or_default(),
        route,
        target: contact_uri(ok),
        cseq,
    }
}

/// The callee's dialog from the INVITE (§12.1.1): Record-Route in order, Contact as target.
fn dialog_uas(invite: &Message, local: String) -> Dialog {
    Dialog {
        call_id: invite.call_id().unwrap_or_default().to_owned(),
        local,
        remote: text(invite.header("From").unwrap_or_default()),
        remote_tag: invite
            .from()
            .ok()
            .and_then(|t| t.tag().map(str::to_owned))
            .unwrap_or_default(),
        route: invite
            .record_routes()
            .filter_map(Result::ok)
            .map(|r| format!("<{}>", text(r.raw_uri)))
            .collect(),
        target: contact_uri(invite),
        cseq: 1000,
    }
}

fn contact_uri(m: &Message) -> String {
    m.contacts()
        .next()
        .and_then(Result::ok)
        .and_then(|c| c.addr().map(|a| text(a.raw_uri)))
        .unwrap_or_default()
}
