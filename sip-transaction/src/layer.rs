//! [`TransactionLayer`]: the sharded transaction table, message matching, timers, and the
//! glue between the state machines (`machine.rs`) and the proxy core (`proxy.rs`).
//!
//! # Threads
//!
//! The table is split into [`Config::shards`] shards, each behind its own lock with its own
//! matching index and timer wheel. Every method takes `&self`, so worker threads share one
//! layer by reference (`Arc` or a scoped borrow) and lock only the shard a message belongs
//! to:
//!
//! * a request goes to the shard of its key's hash (branch and sent-by, or the RFC 2543
//!   fields), which leaves the method out, so an INVITE, its ACK and its CANCEL meet in one
//!   shard whatever thread receives them;
//! * a response goes to the shard its branch names: every branch this layer writes carries
//!   the shard and slot of its transaction, and a proxied request's branches are created in
//!   the shard of its server transaction, so the whole proxy context (server transaction and
//!   every branch) sits under one lock.
//!
//! A response may thus arrive on another thread than the request that created its
//! transaction; it simply locks the same shard.

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use core::time::Duration;

use bytes::Bytes;
use hashbrown::HashTable;
use sip_parser::{Limits, Message, RequestBuilder, ResponseBuilder, ResponseTarget, Via};
use smallvec::SmallVec;

use crate::config::{Config, Locals};
use crate::io::{ClientTxId, Destination, Event, Flow, Output, ServerTxId, Transmit, TxRef};
use crate::key::{Branch, Class, HashKey, MatchHash, Probe, StoredKey};
use crate::machine::{
    Effect, InviteClient, InviteClientState, InviteServer, InviteServerState, NonInviteClient,
    NonInviteServer, NonInviteServerState, Send,
};
use crate::proxy::ProxyCtx;
use crate::sync::Lock;
use crate::timer::{Timer, Timers};
use crate::wheel::Wheel;

/// Why a received message was not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReceiveError {
    /// The table is full: answer the request 503 (statelessly) and count it.
    #[error("transaction table full")]
    TableFull,
    /// The request has no top Via (or an unreadable Via, CSeq, From, To or Call-ID), so it
    /// cannot be matched: answer 400.
    #[error("request cannot be matched to a transaction (missing or malformed Via or key field)")]
    Unmatchable,
}

/// Why a TU command was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TxError {
    /// The transaction is gone (terminated, or the id is stale).
    #[error("no such transaction")]
    NoTransaction,
    /// The command does not fit the transaction's state (e.g. a second final response).
    #[error("not allowed in the transaction's current state")]
    WrongState,
    /// The table is full.
    #[error("transaction table full")]
    TableFull,
    /// The message given is not what the command needs (a request to `respond`, …).
    #[error("unusable message: {0}")]
    BadMessage(&'static str),
}

// ---- slots ----------------------------------------------------------------------------

#[derive(Debug)]
pub(crate) enum ServerMachine {
    Invite(InviteServer),
    NonInvite(NonInviteServer),
}

#[derive(Debug)]
pub(crate) enum ClientMachine {
    Invite(InviteClient),
    NonInvite(NonInviteClient),
}

#[derive(Debug)]
pub(crate) struct ServerTx {
    pub(crate) machine: ServerMachine,
    pub(crate) request: Message,
    pub(crate) flow: Flow,
    key: StoredKey,
    /// Where responses go.
    resp_flow: Flow,
    resp_dest: Destination,
    last: Option<Bytes>,
    /// To tag of the last final response (RFC 2543 ACK matching).
    last_to_tag: Option<Bytes>,
    pub(crate) proxy: Option<Box<ProxyCtx>>,
}

/// Who a client transaction reports to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Owner {
    /// The TU (events).
    Tu,
    /// Branch `index` of the proxy context of server transaction `slot`/`epoch`.
    Proxy { slot: u32, epoch: u16, index: u16 },
}

#[derive(Debug)]
pub(crate) struct CancelTx {
    machine: NonInviteClient,
    request: Bytes,
}

/// What a client transaction keeps of its request: the bytes it sends (and retransmits as
/// they are), its method (a response matches only with the same CSeq method, §17.1.3), and
/// for a TU's INVITE the framed message its CANCEL and ACK are built from (a non-INVITE has
/// neither). A proxied branch, built by the proxy core from a framed request, is not framed
/// again unless its CANCEL or ACK is needed.
#[derive(Debug)]
pub(crate) struct SentRequest {
    wire: Bytes,
    method: SmallVec<[u8; 16]>,
    framed: Option<Box<Message>>,
}

impl SentRequest {
    /// A request the TU built and the layer framed.
    pub(crate) fn framed(request: Message) -> Self {
        let method = request.method().unwrap_or_default();
        SentRequest {
            wire: request.buffer().slice_ref(request.as_wire()),
            method: SmallVec::from_slice(method.as_bytes()),
            framed: (method == "INVITE").then(|| Box::new(request)),
        }
    }

    /// A request built by the proxy core (from a framed request with method `method`).
    pub(crate) fn built(wire: Bytes, method: &str) -> Self {
        SentRequest {
            wire,
            method: SmallVec::from_slice(method.as_bytes()),
            framed: None,
        }
    }

    fn is_invite(&self) -> bool {
        self.method.as_slice() == b"INVITE"
    }

    /// `build` applied to the framed request (framing a built one now; `None` if that
    /// fails or `build` does).
    fn with_framed<R>(&self, build: impl FnOnce(&Message) -> Option<R>) -> Option<R> {
        match &self.framed {
            Some(m) => build(m),
            None => build(&Message::parse_with(self.wire.clone(), &Limits::BUILT).ok()?),
        }
    }
}

#[derive(Debug)]
pub(crate) struct ClientTx {
    pub(crate) machine: ClientMachine,
    pub(crate) request: SentRequest,
    pub(crate) flow: Flow,
    pub(crate) branch: Branch,
    pub(crate) owner: Owner,
    ack: Option<Bytes>,
    cancel: Option<Box<CancelTx>>,
    /// A CANCEL was asked for before any provisional response (§9.1: wait for one), with
    /// its Reason header value.
    cancel_wanted: bool,
    cancel_reason: Option<&'static str>,
    /// How the transaction ended without a final response (Timer B/F, Timer C, transport).
    pub(crate) failed: Option<u16>,
}

#[derive(Debug)]
pub(crate) enum Tx {
    Server(Box<ServerTx>),
    Client(Box<ClientTx>),
}

#[derive(Debug)]
struct Slot {
    epoch: u16,
    tx: Option<Tx>,
}

/// One shard: a slab of transactions, the server matching index and a timer wheel.
#[derive(Debug)]
pub(crate) struct Shard {
    index: u16,
    slots: Vec<Slot>,
    free: Vec<u32>,
    cap: usize,
    servers: HashTable<u32>,
    wheel: Wheel,
    counter: u64,
    live: usize,
    due: Vec<u32>,
}

impl Shard {
    fn new(index: u16, cap: usize) -> Self {
        Shard {
            index,
            slots: Vec::new(),
            free: Vec::new(),
            cap,
            servers: HashTable::new(),
            wheel: Wheel::new(0),
            counter: 0,
            live: 0,
            due: Vec::new(),
        }
    }

    pub(crate) fn alloc(&mut self) -> Option<u32> {
        if let Some(s) = self.free.pop() {
            self.live += 1;
            return Some(s);
        }
        if self.slots.len() >= self.cap {
            return None;
        }
        self.slots.push(Slot { epoch: 0, tx: None });
        self.wheel.grow(self.slots.len());
        self.live += 1;
        Some(self.slots.len() as u32 - 1)
    }

    /// Gives back a slot taken with `alloc` and never filled.
    pub(crate) fn free_unused(&mut self, slot: u32) {
        if self.slots[slot as usize].tx.is_none() {
            self.live -= 1;
            self.free.push(slot);
        }
    }

    fn release(&mut self, slot: u32) -> Option<Tx> {
        let s = &mut self.slots[slot as usize];
        let tx = s.tx.take()?;
        s.epoch = s.epoch.wrapping_add(1);
        self.wheel.cancel(slot);
        self.free.push(slot);
        self.live -= 1;
        Some(tx)
    }

    pub(crate) fn id(&self, slot: u32) -> u64 {
        u64::from(self.index) << 48
            | u64::from(self.slots[slot as usize].epoch) << 32
            | u64::from(slot)
    }

    pub(crate) fn epoch(&self, slot: u32) -> u16 {
        self.slots[slot as usize].epoch
    }

    /// The slot an id names, if its generation is current and it is occupied.
    fn slot_of(&self, id: u64) -> Option<u32> {
        let slot = (id & 0xffff_ffff) as u32;
        let epoch = (id >> 32) as u16;
        let s = self.slots.get(slot as usize)?;
        (s.epoch == epoch && s.tx.is_some()).then_some(slot)
    }

    pub(crate) fn server(&mut self, slot: u32) -> Option<&mut ServerTx> {
        match &mut self.slots.get_mut(slot as usize)?.tx {
            Some(Tx::Server(s)) => Some(s),
            _ => None,
        }
    }

    pub(crate) fn server_at(&mut self, slot: u32, epoch: u16) -> Option<&mut ServerTx> {
        if self.slots.get(slot as usize)?.epoch != epoch {
            return None;
        }
        self.server(slot)
    }

    pub(crate) fn client(&mut self, slot: u32) -> Option<&mut ClientTx> {
        match &mut self.slots.get_mut(slot as usize)?.tx {
            Some(Tx::Client(c)) => Some(c),
            _ => None,
        }
    }

    fn find_server(&self, p: &Probe<'_>, class: Class) -> Option<u32> {
        let slots = &self.slots;
        self.servers
            .find(p.hash, |&i| match &slots[i as usize].tx {
                Some(Tx::Server(s)) => {
                    s.key
                        .matches(&s.request, p, class, s.last_to_tag.as_deref())
                }
                _ => false,
            })
            .copied()
    }

    /// The next deadline of the transaction in `slot`, put into the wheel.
    pub(crate) fn reschedule(&mut self, slot: u32) {
        let next = match &self.slots[slot as usize].tx {
            Some(Tx::Server(s)) => s.timers().next(),
            Some(Tx::Client(c)) => {
                let own = c.timers().next();
                let cancel = c.cancel.as_ref().and_then(|x| x.machine.timers.next());
                match (own, cancel) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                }
            }
            None => None,
        };
        match next {
            Some(at) => self.wheel.set(slot, at),
            None => self.wheel.cancel(slot),
        }
    }

    /// A fresh unguessable value for a branch.
    pub(crate) fn unguessable(&mut self, key: &HashKey) -> u64 {
        use core::hash::Hasher;
        self.counter += 1;
        let mut h = key.hasher();
        h.write_u16(self.index);
        h.write_u64(self.counter);
        h.finish()
    }
}

impl ServerTx {
    fn timers(&self) -> &crate::timer::Running {
        match &self.machine {
            ServerMachine::Invite(m) => &m.timers,
            ServerMachine::NonInvite(m) => &m.timers,
        }
    }

    fn timers_mut(&mut self) -> &mut crate::timer::Running {
        match &mut self.machine {
            ServerMachine::Invite(m) => &mut m.timers,
            ServerMachine::NonInvite(m) => &mut m.timers,
        }
    }

    pub(crate) fn is_invite(&self) -> bool {
        matches!(self.machine, ServerMachine::Invite(_))
    }

    /// Still waiting for a final response from the TU.
    pub(crate) fn proceeding(&self) -> bool {
        match &self.machine {
            ServerMachine::Invite(m) => m.state == InviteServerState::Proceeding,
            ServerMachine::NonInvite(m) => matches!(
                m.state,
                NonInviteServerState::Trying | NonInviteServerState::Proceeding
            ),
        }
    }

    pub(crate) fn responded(&self) -> bool {
        self.last.is_some()
    }
}

impl ClientTx {
    fn timers(&self) -> &crate::timer::Running {
        match &self.machine {
            ClientMachine::Invite(m) => &m.timers,
            ClientMachine::NonInvite(m) => &m.timers,
        }
    }

    fn timers_mut(&mut self) -> &mut crate::timer::Running {
        match &mut self.machine {
            ClientMachine::Invite(m) => &mut m.timers,
            ClientMachine::NonInvite(m) => &mut m.timers,
        }
    }

    pub(crate) fn is_invite(&self) -> bool {
        matches!(self.machine, ClientMachine::Invite(_))
    }

    /// A final response has arrived (or the transaction ended).
    pub(crate) fn is_final(&self) -> bool {
        match &self.machine {
            ClientMachine::Invite(m) => !matches!(
                m.state,
                InviteClientState::Calling | InviteClientState::Proceeding
            ),
            ClientMachine::NonInvite(m) => !matches!(
                m.state,
                crate::NonInviteClientState::Trying | crate::NonInviteClientState::Proceeding
            ),
        }
    }
}

// ---- the layer ------------------------------------------------------------------------

/// The transaction layer: a sharded table of server and client transactions shared by
/// reference between threads, driven by the caller with messages, TU commands and time, and
/// writing what to send and what to tell the TU into an [`Output`].
///
/// See the crate documentation for an example and the module [`layer`](self) notes for the
/// threading model.
#[derive(Debug)]
pub struct TransactionLayer {
    pub(crate) timers: Timers,
    pub(crate) max_branches: usize,
    shards: Box<[Lock<Shard>]>,
    /// Per shard, its wheel's next deadline in ms (`u64::MAX`: none), stored whenever the
    /// shard is unlocked: `next_timeout` and `handle_timeout` read them without taking
    /// every shard's lock.
    deadlines: Box<[AtomicU64]>,
    pub(crate) locals: Locals,
    key: MatchHash,
    pub(crate) prf: HashKey,
    next_shard: AtomicUsize,
}

/// What to do with a received request once its shard is unlocked: hand it to the TU in an
/// event (the message moves there, no copy).
#[derive(Debug, Clone, Copy)]
enum Deliver {
    /// A new server transaction: [`Event::Request`].
    Request(ServerTxId),
    /// [`Event::Ack`].
    Ack,
}

/// One call's working context: the layer, the locked shard, `now` and the output.
pub(crate) struct Core<'a> {
    pub(crate) layer: &'a TransactionLayer,
    pub(crate) shard: &'a mut Shard,
    pub(crate) now: Duration,
    pub(crate) out: &'a mut Output,
}

impl TransactionLayer {
    /// A layer with this configuration. `seed` keys the matching hash (so that nobody can
    /// aim hash collisions at the table) and the unguessable part of every branch: pass 32
    /// random bytes (with `std`, [`TransactionLayer::with_random_seed`]).
    pub fn new(cfg: &Config, seed: [u8; 32]) -> Self {
        let word = |i: usize| {
            let mut w = [0u8; 8];
            w.copy_from_slice(&seed[i * 8..i * 8 + 8]);
            u64::from_le_bytes(w)
        };
        let shards = cfg.shards.clamp(1, 4096);
        let per = cfg.max_transactions.div_ceil(shards).max(1);
        TransactionLayer {
            timers: cfg.timers,
            max_branches: cfg.max_branches.max(1),
            shards: (0..shards)
                .map(|i| Lock::new(Shard::new(i as u16, per)))
                .collect(),
            deadlines: (0..shards).map(|_| AtomicU64::new(u64::MAX)).collect(),
            locals: Locals::new(cfg),
            key: MatchHash::new(&HashKey([word(0), word(1)])),
            prf: HashKey([word(2), word(3)]),
            next_shard: AtomicUsize::new(0),
        }
    }

    /// A layer keyed from `rng` (the workspace's randomness seam, [`sip_parser::Random`]).
    pub fn from_rng(cfg: &Config, rng: &mut (impl sip_parser::Random + ?Sized)) -> Self {
        let mut seed = [0u8; 32];
        rng.fill(&mut seed);
        Self::new(cfg, seed)
    }

    /// A layer keyed from the operating system's random source.
    #[cfg(feature = "std")]
    pub fn with_random_seed(cfg: &Config) -> Self {
        Self::from_rng(cfg, &mut sip_parser::SystemRandom::new())
    }

    /// Live transactions (server and client).
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| s.with(|s| s.live)).sum()
    }

    /// True when no transaction is live.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Timer entries held (one per transaction with a running timer): for tests and
    /// statistics.
    pub fn timer_entries(&self) -> usize {
        self.shards.iter().map(|s| s.with(|s| s.wheel.len())).sum()
    }

    fn shard_count(&self) -> u64 {
        self.shards.len() as u64
    }

    fn with_shard<R>(
        &self,
        index: usize,
        now: Duration,
        out: &mut Output,
        f: impl FnOnce(&mut Core<'_>) -> R,
    ) -> R {
        self.shards[index].with(|shard| {
            let mut core = Core {
                layer: self,
                shard,
                now,
                out,
            };
            let r = f(&mut core);
            let next = core.shard.wheel.next_deadline().map_or(u64::MAX, |d| {
                u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
            });
            self.deadlines[index].store(next, Ordering::Release);
            r
        })
    }

    fn shard_of_id(&self, id: u64) -> Option<usize> {
        let s = (id >> 48) as usize;
        (s < self.shards.len()).then_some(s)
    }

    /// A message from the network: `msg` arrived over `flow` at `now`.
    ///
    /// A request retransmission is absorbed (the last response is sent again), a new request
    /// creates a server transaction and an [`Event::Request`], an ACK completes its INVITE
    /// transaction or becomes an [`Event::Ack`], a CANCEL is answered and applied. A response
    /// goes to its client transaction (or the proxy context that owns it) or becomes an
    /// [`Event::StrayResponse`].
    pub fn receive(
        &self,
        now: Duration,
        msg: Message,
        flow: Flow,
        out: &mut Output,
    ) -> Result<(), ReceiveError> {
        if msg.is_request() {
            let probe =
                Probe::of_request(&msg, &self.key).map_err(|_| ReceiveError::Unmatchable)?;
            let index = (probe.hash % self.shard_count()) as usize;
            let deliver =
                self.with_shard(index, now, out, |core| core.request(&msg, &probe, flow))?;
            match deliver {
                Some(Deliver::Request(tx)) => out.events.push(Event::Request {
                    tx,
                    request: msg,
                    flow,
                }),
                Some(Deliver::Ack) => out.events.push(Event::Ack { request: msg, flow }),
                None => {}
            }
            Ok(())
        } else {
            // Ours when the top Via's branch is one this layer wrote: copied out (a few dozen
            // bytes) so that the message can move on to the TU.
            let branch = match msg.top_via() {
                Ok(Some(v)) => v.branch.and_then(|b| Branch::parse(b.as_bytes())),
                _ => None,
            };
            match branch.and_then(|b| self.shard_of_id(b.id()).map(|s| (b, s))) {
                Some((b, s)) => self.with_shard(s, now, out, |core| core.response(b, msg, flow)),
                None => out.events.push(Event::StrayResponse {
                    response: msg,
                    flow,
                }),
            }
            Ok(())
        }
    }

    /// The TU answers server transaction `tx` with `response` (built from its request, e.g.
    /// with [`ResponseBuilder`]). Provisional responses may come several times, then one
    /// final (several 2xx for an INVITE, RFC 6026).
    pub fn respond(
        &self,
        now: Duration,
        tx: ServerTxId,
        response: &Message,
        out: &mut Output,
    ) -> Result<(), TxError> {
        let status = response
            .status()
            .ok_or(TxError::BadMessage("respond needs a response"))?;
        self.respond_built(
            now,
            tx,
            status,
            response.buffer().slice_ref(response.as_wire()),
            out,
        )
    }

    /// [`respond`](Self::respond) with a response this program built (a
    /// [`ResponseBuilder`] result, say): its status code and its bytes, which are not read
    /// again, so the caller vouches that `response` is a well-formed response with that
    /// status, to the request of `tx`.
    ///
    /// A status outside 100–699 is refused with [`TxError::BadMessage`].
    pub fn respond_built(
        &self,
        now: Duration,
        tx: ServerTxId,
        status: u16,
        response: Bytes,
        out: &mut Output,
    ) -> Result<(), TxError> {
        if !(100..=699).contains(&status) {
            return Err(TxError::BadMessage("status code outside 100-699"));
        }
        let shard = self.shard_of_id(tx.0).ok_or(TxError::NoTransaction)?;
        self.with_shard(shard, now, out, |core| {
            let slot = core.shard.slot_of(tx.0).ok_or(TxError::NoTransaction)?;
            if core.shard.server(slot).is_some_and(|s| s.proxy.is_some()) {
                return Err(TxError::WrongState);
            }
            core.server_respond(slot, response, status)
        })
    }

    /// The TU starts a client transaction sending a request over `flow`. `build` gets the
    /// value of the top Via to put in the request (`SIP/2.0/UDP host:port;branch=…`, from the
    /// listener of `flow.local`) and returns the request's bytes.
    pub fn send_request(
        &self,
        now: Duration,
        flow: Flow,
        build: impl FnOnce(&str) -> Bytes,
        out: &mut Output,
    ) -> Result<ClientTxId, TxError> {
        let local = self
            .locals
            .find(flow.transport, flow.local)
            .ok_or(TxError::BadMessage("no listener for the flow's transport"))?;
        let prefix = &local.via_prefix;
        let index = self.next_shard.fetch_add(1, Ordering::Relaxed) % self.shards.len();
        self.with_shard(index, now, out, |core| {
            let slot = core.shard.alloc().ok_or(TxError::TableFull)?;
            let id = core.shard.id(slot);
            let branch = Branch::new(id, core.shard.unguessable(&core.layer.prf), None);
            let mut via = SmallVec::<[u8; 128]>::new();
            via.extend_from_slice(prefix);
            via.extend_from_slice(branch.as_bytes());
            let bytes = build(core::str::from_utf8(&via).unwrap_or_default());
            let request = match Message::parse_with(bytes, &Limits::BUILT) {
                Ok(m) if m.is_request() && m.method().is_some() => m,
                _ => {
                    core.shard.free_unused(slot);
                    return Err(TxError::BadMessage("request does not parse"));
                }
            };
            core.start_client(slot, SentRequest::framed(request), flow, branch, Owner::Tu);
            Ok(ClientTxId(id))
        })
    }

    /// The TU cancels its INVITE client transaction `tx` (RFC 3261 §9.1): a CANCEL is sent
    /// now if a provisional response arrived, else as soon as one does.
    pub fn cancel(&self, now: Duration, tx: ClientTxId, out: &mut Output) -> Result<(), TxError> {
        let shard = self.shard_of_id(tx.0).ok_or(TxError::NoTransaction)?;
        self.with_shard(shard, now, out, |core| {
            let slot = core.shard.slot_of(tx.0).ok_or(TxError::NoTransaction)?;
            if !core.shard.client(slot).is_some_and(|c| c.is_invite()) {
                return Err(TxError::WrongState);
            }
            core.cancel_client(slot, None);
            core.shard.reschedule(slot);
            Ok(())
        })
    }

    /// The caller could not send a transmit of transaction `tx` (RFC 3261 §17.1.4,
    /// §17.2.4): the transaction ends; a proxied branch counts as a 503 (§16.9).
    pub fn transport_error(&self, now: Duration, tx: TxRef, out: &mut Output) {
        let id = match tx {
            TxRef::Server(s) => s.0,
            TxRef::Client(c) => c.0,
        };
        let Some(shard) = self.shard_of_id(id) else {
            return;
        };
        self.with_shard(shard, now, out, |core| {
            let Some(slot) = core.shard.slot_of(id) else {
                return;
            };
            match tx {
                TxRef::Server(_) => {
                    if let Some(s) = core.shard.server(slot) {
                        let fx = match &mut s.machine {
                            ServerMachine::Invite(m) => m.transport_error(),
                            ServerMachine::NonInvite(m) => m.transport_error(),
                        };
                        if fx.terminated {
                            core.terminate_server(slot, true);
                        }
                    }
                }
                TxRef::Client(_) => {
                    if let Some(c) = core.shard.client(slot) {
                        let fx = match &mut c.machine {
                            ClientMachine::Invite(m) => m.transport_error(),
                            ClientMachine::NonInvite(m) => m.transport_error(),
                        };
                        if fx.terminated {
                            c.failed = Some(503);
                            core.terminate_client(slot);
                        }
                    }
                }
            }
        });
    }

    /// Fires every timer due at `now`. Call it when [`next_timeout`](Self::next_timeout)
    /// says (it is fine to call it more often).
    pub fn handle_timeout(&self, now: Duration, out: &mut Output) {
        let now_ms = u64::try_from(now.as_millis()).unwrap_or(u64::MAX);
        for i in 0..self.shards.len() {
            // Nothing due there (the wheel's own test, read without the lock).
            if self.deadlines[i].load(Ordering::Acquire) > now_ms {
                continue;
            }
            // A closure, not `Core::expire`: the method's lifetime is not general enough.
            #[allow(clippy::redundant_closure_for_method_calls)]
            self.with_shard(i, now, out, |core| core.expire());
        }
    }

    /// The earliest time a timer may be due (never later than the real one; it may be a
    /// little earlier, then [`handle_timeout`](Self::handle_timeout) finds nothing to do).
    pub fn next_timeout(&self) -> Option<Duration> {
        self.deadlines
            .iter()
            .map(|d| d.load(Ordering::Acquire))
            .min()
            .filter(|&ms| ms != u64::MAX)
            .map(Duration::from_millis)
    }

    pub(crate) fn run_on<R>(
        &self,
        tx: ServerTxId,
        now: Duration,
        out: &mut Output,
        f: impl FnOnce(&mut Core<'_>, u32) -> Result<R, TxError>,
    ) -> Result<R, TxError> {
        let shard = self.shard_of_id(tx.0).ok_or(TxError::NoTransaction)?;
        self.with_shard(shard, now, out, |core| {
            let slot = core.shard.slot_of(tx.0).ok_or(TxError::NoTransaction)?;
            if core.shard.server(slot).is_none() {
                return Err(TxError::NoTransaction);
            }
            f(core, slot)
        })
    }
}

// ---- the work, under a shard lock ----------------------------------------------------

impl Core<'_> {
    pub(crate) fn server_id(&self, slot: u32) -> ServerTxId {
        ServerTxId(self.shard.id(slot))
    }

    fn client_id(&self, slot: u32) -> ClientTxId {
        ClientTxId(self.shard.id(slot))
    }

    // -- requests -----------------------------------------------------------------------

    /// A request, matched or creating its server transaction. The event that carries the
    /// request itself (always the last event of the call) is left to the caller, which owns
    /// the message: [`Deliver`].
    fn request(
        &mut self,
        msg: &Message,
        p: &Probe<'_>,
        flow: Flow,
    ) -> Result<Option<Deliver>, ReceiveError> {
        match p.class {
            Class::Ack => {
                let Some(slot) = self.shard.find_server(p, Class::Invite) else {
                    return Ok(Some(Deliver::Ack));
                };
                let now = self.now;
                let t = self.layer.timers;
                let Some(s) = self.shard.server(slot) else {
                    return Ok(None);
                };
                let fx = match &mut s.machine {
                    ServerMachine::Invite(m) => m.on_ack(now, &t),
                    ServerMachine::NonInvite(_) => Effect::default(),
                };
                // (An ACK that goes to the TU never terminates the transaction: RFC 6026
                // Accepted.)
                if fx.terminated {
                    self.terminate_server(slot, true);
                } else {
                    self.shard.reschedule(slot);
                }
                Ok(fx.to_tu.then_some(Deliver::Ack))
            }
            Class::Cancel => {
                if let Some(slot) = self.shard.find_server(p, Class::Cancel) {
                    self.retransmission(slot);
                    return Ok(None);
                }
                let invite = self.shard.find_server(p, Class::Invite);
                let slot = self.create_server(msg, p, flow)?;
                let Some(inv) = invite else {
                    return Ok(Some(Deliver::Request(self.server_id(slot))));
                };
                // §9.2: 200 to the CANCEL, then cancel the INVITE.
                let ok = self
                    .shard
                    .server(slot)
                    .map(|s| ResponseBuilder::new(&s.request, 200, "OK").build());
                if let Some(ok) = ok {
                    let _ = self.server_respond(slot, ok, 200);
                }
                self.cancel_server_invite(inv);
                let id = self.server_id(inv);
                self.out.events.push(Event::Cancelled { tx: id });
                Ok(None)
            }
            Class::Invite | Class::Other => {
                if let Some(slot) = self.shard.find_server(p, p.class) {
                    self.retransmission(slot);
                    return Ok(None);
                }
                let slot = self.create_server(msg, p, flow)?;
                Ok(Some(Deliver::Request(self.server_id(slot))))
            }
        }
    }

    fn retransmission(&mut self, slot: u32) {
        let Some(s) = self.shard.server(slot) else {
            return;
        };
        let fx = match &mut s.machine {
            ServerMachine::Invite(m) => m.on_request(),
            ServerMachine::NonInvite(m) => m.on_request(),
        };
        if fx.send == Send::LastResponse {
            self.send_last(slot);
        }
    }

    fn create_server(
        &mut self,
        msg: &Message,
        p: &Probe<'_>,
        flow: Flow,
    ) -> Result<u32, ReceiveError> {
        let key = StoredKey::new(p, msg).ok_or(ReceiveError::Unmatchable)?;
        let slot = self.shard.alloc().ok_or(ReceiveError::TableFull)?;
        let reliable = flow.is_reliable();
        let t = self.layer.timers;
        let machine = if p.class == Class::Invite {
            ServerMachine::Invite(InviteServer::new(self.now, reliable, &t))
        } else {
            ServerMachine::NonInvite(NonInviteServer::new(self.now, reliable, &t))
        };
        let (resp_flow, resp_dest) = response_route(msg, &p.via, flow);
        let hash = key.hash;
        self.shard.slots[slot as usize].tx = Some(Tx::Server(Box::new(ServerTx {
            machine,
            request: msg.clone(),
            flow,
            key,
            resp_flow,
            resp_dest,
            last: None,
            last_to_tag: None,
            proxy: None,
        })));
        let slots = &self.shard.slots;
        self.shard
            .servers
            .insert_unique(hash, slot, |&i| match &slots[i as usize].tx {
                Some(Tx::Server(s)) => s.key.hash,
                _ => 0,
            });
        self.shard.reschedule(slot);
        Ok(slot)
    }

    fn transmit_server(&mut self, slot: u32, payload: Bytes) {
        let id = self.server_id(slot);
        if let Some(s) = self.shard.server(slot) {
            self.out.transmits.push(Transmit {
                flow: s.resp_flow,
                destination: s.resp_dest.clone(),
                payload,
                tx: Some(TxRef::Server(id)),
            });
        }
    }

    fn send_last(&mut self, slot: u32) {
        if let Some(last) = self.shard.server(slot).and_then(|s| s.last.clone()) {
            self.transmit_server(slot, last);
        }
    }

    /// Sends a response on server transaction `slot` (from the TU or the proxy core).
    pub(crate) fn server_respond(
        &mut self,
        slot: u32,
        response: Bytes,
        status: u16,
    ) -> Result<(), TxError> {
        let now = self.now;
        let t = self.layer.timers;
        let s = self.shard.server(slot).ok_or(TxError::NoTransaction)?;
        let fx = match &mut s.machine {
            ServerMachine::Invite(m) => m.on_tu_response(status, now, &t),
            ServerMachine::NonInvite(m) => m.on_tu_response(status, now, &t),
        };
        if fx.refused {
            return Err(TxError::WrongState);
        }
        if status >= 200 && s.key_is_legacy() {
            s.last_to_tag = Message::parse_with(response.clone(), &Limits::BUILT)
                .ok()
                .and_then(|m| {
                    m.to()
                        .ok()
                        .and_then(|t| t.tag().map(|t| m.bytes_of(t.as_bytes())))
                });
        }
        s.last = Some(response.clone());
        self.transmit_server(slot, response);
        if fx.terminated {
            self.terminate_server(slot, true);
        } else {
            self.shard.reschedule(slot);
        }
        Ok(())
    }

    pub(crate) fn terminate_server(&mut self, slot: u32, acked: bool) {
        let id = self.server_id(slot);
        let hash = match self.shard.server(slot) {
            Some(s) => s.key.hash,
            None => return,
        };
        if let Ok(e) = self.shard.servers.find_entry(hash, |&i| i == slot) {
            e.remove();
        }
        self.shard.release(slot);
        self.out
            .events
            .push(Event::ServerTerminated { tx: id, acked });
    }

    /// A CANCEL matched INVITE server transaction `slot`.
    fn cancel_server_invite(&mut self, slot: u32) {
        let Some(s) = self.shard.server(slot) else {
            return;
        };
        if s.proxy.is_some() {
            self.proxy_cancelled(slot);
            return;
        }
        if s.proceeding() {
            // §9.2: the UAS answers the INVITE 487.
            let resp = ResponseBuilder::new(&s.request, 487, "Request Terminated").build();
            let _ = self.server_respond(slot, resp, 487);
        }
    }

    // -- client transactions ------------------------------------------------------------

    pub(crate) fn start_client(
        &mut self,
        slot: u32,
        request: SentRequest,
        flow: Flow,
        branch: Branch,
        owner: Owner,
    ) {
        let reliable = flow.is_reliable();
        let t = self.layer.timers;
        let machine = if request.is_invite() {
            ClientMachine::Invite(InviteClient::new(self.now, reliable, &t))
        } else {
            ClientMachine::NonInvite(NonInviteClient::new(self.now, reliable, &t))
        };
        let payload = request.wire.clone();
        self.shard.slots[slot as usize].tx = Some(Tx::Client(Box::new(ClientTx {
            machine,
            request,
            flow,
            branch,
            owner,
            ack: None,
            cancel: None,
            cancel_wanted: false,
            cancel_reason: None,
            failed: None,
        })));
        let id = self.client_id(slot);
        self.out.transmits.push(Transmit {
            flow,
            destination: Destination::Addr,
            payload,
            tx: Some(TxRef::Client(id)),
        });
        self.shard.reschedule(slot);
    }

    fn transmit_client(&mut self, slot: u32, payload: Bytes) {
        let id = self.client_id(slot);
        if let Some(c) = self.shard.client(slot) {
            self.out.transmits.push(Transmit {
                flow: c.flow,
                destination: Destination::Addr,
                payload,
                tx: Some(TxRef::Client(id)),
            });
        }
    }

    /// A response whose top Via carries `branch`, one of ours.
    fn response(&mut self, branch: Branch, msg: Message, flow: Flow) {
        let Some(status) = msg.status() else {
            return;
        };
        // A response on one of our branches whose transaction has ended: a late 2xx goes
        // on (the TU relays it statelessly: a 2xx always reaches the caller, RFC 6026);
        // anything else is a retransmission or a late answer already settled, absorbed.
        let ended = |core: &mut Self, msg: Message| {
            if (200..300).contains(&status) {
                core.out.events.push(Event::StrayResponse {
                    response: msg,
                    flow,
                });
            }
        };
        let Some(slot) = self.shard.slot_of(branch.id()) else {
            return ended(self, msg);
        };
        if !self.shard.client(slot).is_some_and(|c| c.branch == branch) {
            return ended(self, msg);
        }
        let method = msg.cseq().ok().map(|c| c.method);
        if method.is_none() {
            self.out.events.push(Event::StrayResponse {
                response: msg,
                flow,
            });
            return;
        }
        let now = self.now;
        let t = self.layer.timers;
        let Some(c) = self.shard.client(slot) else {
            return;
        };
        if method == Some("CANCEL") {
            // The response to our CANCEL: it only ends the CANCEL's own transaction.
            if let Some(x) = &mut c.cancel {
                let fx = x.machine.on_response(status, now, &t);
                if fx.terminated {
                    c.cancel = None;
                }
            }
            self.shard.reschedule(slot);
            return;
        }
        if method.map(str::as_bytes) != Some(c.request.method.as_slice()) {
            self.out.events.push(Event::StrayResponse {
                response: msg,
                flow,
            });
            return;
        }
        let fx = match &mut c.machine {
            ClientMachine::Invite(m) => m.on_response(status, now, &t),
            ClientMachine::NonInvite(m) => m.on_response(status, now, &t),
        };
        if fx.send == Send::Ack {
            if c.ack.is_none() {
                c.ack = c
                    .request
                    .with_framed(|req| RequestBuilder::ack(req, &msg).ok().map(|b| b.build()));
            }
            if let Some(ack) = c.ack.clone() {
                self.transmit_client(slot, ack);
            }
        }
        let owner = self.shard.client(slot).map(|c| c.owner);
        // §9.1: a CANCEL waits for a provisional response, 100 included.
        if (100..200).contains(&status) {
            let wanted = self
                .shard
                .client(slot)
                .filter(|c| c.cancel_wanted)
                .map(|c| {
                    c.cancel_wanted = false;
                    c.cancel_reason
                });
            if let Some(reason) = wanted {
                self.send_cancel(slot, reason);
            }
        }
        if fx.to_tu {
            match owner {
                Some(Owner::Tu) => {
                    let tx = self.client_id(slot);
                    self.out.events.push(Event::Response { tx, response: msg });
                }
                Some(Owner::Proxy {
                    slot: s,
                    epoch,
                    index,
                }) => {
                    self.proxy_response((s, epoch, index), status, msg, flow);
                }
                None => {}
            }
        }
        if fx.terminated {
            self.terminate_client(slot);
        } else {
            self.shard.reschedule(slot);
        }
    }

    /// Cancels INVITE client transaction `slot`: CANCEL now if a provisional arrived, else
    /// once one does (§9.1). `reason`: a Reason header value (RFC 3326).
    pub(crate) fn cancel_client(&mut self, slot: u32, reason: Option<&'static str>) {
        let Some(c) = self.shard.client(slot) else {
            return;
        };
        let ClientMachine::Invite(m) = &c.machine else {
            return;
        };
        match m.state {
            InviteClientState::Proceeding => self.send_cancel(slot, reason),
            InviteClientState::Calling if c.cancel.is_none() => {
                c.cancel_wanted = true;
                c.cancel_reason = reason;
            }
            _ => {}
        }
    }

    fn send_cancel(&mut self, slot: u32, reason: Option<&'static str>) {
        let now = self.now;
        let t = self.layer.timers;
        let Some(c) = self.shard.client(slot) else {
            return;
        };
        if c.cancel.is_some() || c.is_final() {
            return;
        }
        let built = c.request.with_framed(|req| {
            let mut b = RequestBuilder::cancel(req).ok()?;
            if let Some(r) = reason {
                b.header("Reason", r);
            }
            Some(b.build())
        });
        let Some(bytes) = built else {
            return;
        };
        c.cancel = Some(Box::new(CancelTx {
            machine: NonInviteClient::new(now, c.flow.is_reliable(), &t),
            request: bytes.clone(),
        }));
        if let ClientMachine::Invite(m) = &mut c.machine {
            m.cancel_sent(now, &t);
        }
        self.transmit_client(slot, bytes);
        self.shard.reschedule(slot);
    }

    pub(crate) fn terminate_client(&mut self, slot: u32) {
        let Some(c) = self.shard.client(slot) else {
            return;
        };
        let (owner, failed) = (c.owner, c.failed);
        let id = self.client_id(slot);
        self.shard.release(slot);
        match owner {
            Owner::Tu => {
                match failed {
                    Some(408) => self.out.events.push(Event::Timeout { tx: id }),
                    Some(_) => self.out.events.push(Event::TransportError { tx: id }),
                    None => {}
                }
                self.out.events.push(Event::ClientTerminated { tx: id });
            }
            Owner::Proxy {
                slot: s,
                epoch,
                index,
            } => {
                if let Some(status) = failed {
                    self.proxy_branch_failed(s, epoch, index, status);
                }
            }
        }
    }

    // -- timers -------------------------------------------------------------------------

    fn expire(&mut self) {
        let mut due = core::mem::take(&mut self.shard.due);
        due.clear();
        self.shard.wheel.expire(self.now, &mut due);
        for &slot in &due {
            self.fire(slot);
        }
        self.shard.due = due;
    }

    fn fire(&mut self, slot: u32) {
        let now = self.now;
        // Bounded: each timer fires once per call and re-arms only into the future.
        for _ in 0..16 {
            let next = match &mut self.shard.slots[slot as usize].tx {
                Some(Tx::Server(s)) => s.timers_mut().pop_due(now).map(|t| (true, t)),
                Some(Tx::Client(c)) => {
                    if let Some(t) = c.timers_mut().pop_due(now) {
                        Some((false, t))
                    } else {
                        let cancel_due = c
                            .cancel
                            .as_mut()
                            .and_then(|x| x.machine.timers.pop_due(now));
                        if let Some(t) = cancel_due {
                            self.cancel_timer(slot, t);
                            continue;
                        }
                        None
                    }
                }
                None => return,
            };
            match next {
                Some((true, timer)) => self.server_timer(slot, timer),
                Some((false, timer)) => self.client_timer(slot, timer),
                None => break,
            }
            if self.shard.slots[slot as usize].tx.is_none() {
                return;
            }
        }
        self.shard.reschedule(slot);
    }

    fn server_timer(&mut self, slot: u32, timer: Timer) {
        let now = self.now;
        let t = self.layer.timers;
        let Some(s) = self.shard.server(slot) else {
            return;
        };
        if timer == Timer::TuAnswer {
            if s.proxy.is_some() {
                self.proxy_give_up(slot);
            } else if s.is_invite() && s.proceeding() {
                let r = ResponseBuilder::new(&s.request, 500, "Server Internal Error").build();
                let _ = self.server_respond(slot, r, 500);
            } else if s.proceeding() {
                self.terminate_server(slot, true);
            }
            return;
        }
        let fx = match &mut s.machine {
            ServerMachine::Invite(m) => m.on_timer(timer, now, &t),
            ServerMachine::NonInvite(m) => m.on_timer(timer),
        };
        match fx.send {
            Send::Trying => {
                let trying = ResponseBuilder::new(&s.request, 100, "Trying").build();
                s.last = Some(trying.clone());
                self.transmit_server(slot, trying);
            }
            Send::LastResponse => self.send_last(slot),
            _ => {}
        }
        if fx.terminated {
            self.terminate_server(slot, !fx.no_ack);
        }
    }

    fn client_timer(&mut self, slot: u32, timer: Timer) {
        let now = self.now;
        let t = self.layer.timers;
        let Some(c) = self.shard.client(slot) else {
            return;
        };
        if timer == Timer::C {
            // §16.8: CANCEL a branch that sent a provisional, else behave as if 408.
            let provisional = matches!(
                &c.machine,
                ClientMachine::Invite(m) if m.state == InviteClientState::Proceeding
            );
            if provisional {
                self.send_cancel(slot, None);
            } else {
                c.failed = Some(408);
                self.terminate_client(slot);
            }
            return;
        }
        let fx = match &mut c.machine {
            ClientMachine::Invite(m) => m.on_timer(timer, now, &t),
            ClientMachine::NonInvite(m) => m.on_timer(timer, now, &t),
        };
        if fx.send == Send::Request {
            let payload = c.request.wire.clone();
            self.transmit_client(slot, payload);
        }
        if fx.timeout {
            if let Some(c) = self.shard.client(slot) {
                c.failed = Some(408);
            }
        }
        if fx.terminated {
            self.terminate_client(slot);
        }
    }

    fn cancel_timer(&mut self, slot: u32, timer: Timer) {
        let now = self.now;
        let t = self.layer.timers;
        let Some(c) = self.shard.client(slot) else {
            return;
        };
        let Some(x) = &mut c.cancel else {
            return;
        };
        let fx = x.machine.on_timer(timer, now, &t);
        if fx.send == Send::Request {
            let payload = x.request.clone();
            self.transmit_client(slot, payload);
        }
        if fx.terminated {
            // The CANCEL got no answer; the INVITE's own guard (64·T1, §9.1) ends it.
            if let Some(c) = self.shard.client(slot) {
                c.cancel = None;
            }
        }
    }
}

impl ServerTx {
    fn key_is_legacy(&self) -> bool {
        self.key.is_legacy()
    }
}

/// Where responses to a request that arrived over `flow` with top Via `via` go (§18.2.2,
/// RFC 3581).
fn response_route(msg: &Message, via: &Via<'_>, flow: Flow) -> (Flow, Destination) {
    let (remote, dest) = match via.response_target(flow.transport, Some(flow.remote)) {
        ResponseTarget::Connection(a) | ResponseTarget::Addr(a) => (a, Destination::Addr),
        ResponseTarget::Host { host, port } => (
            flow.remote,
            Destination::Host {
                host: msg.bytes_of(host.as_bytes()),
                port: port.unwrap_or(flow.transport.default_port()),
            },
        ),
    };
    let conn = if remote == flow.remote {
        flow.conn
    } else {
        None
    };
    (
        Flow {
            remote,
            conn,
            ..flow
        },
        dest,
    )
}
