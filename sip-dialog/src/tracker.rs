//! [`Tracker`]: proxy-side dialog tracking, what Kamailio's `dialog` module does for a
//! stateful proxy. The proxy creates a dialog for an initial INVITE it chooses to track and
//! hands the tracker every request it routes and every response it forwards; the tracker
//! follows each dialog through Unconfirmed → Early → Confirmed → Confirmed+ACKed →
//! Terminated, keeps both parties' CSeq, Contact, route set and socket, counts profiles and
//! KPIs, and reports when a lifetime ends, with what the proxy needs to send BYE to both
//! parties.

use alloc::boxed::Box;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicUsize, Ordering};
use core::time::Duration;

use ahash::RandomState;
use sip_parser::Message;

use crate::error::TrackError;
use crate::kpi::{CallEvent, Kpi};
use crate::profile::{Profile, Profiles};
use crate::record::{DialogFlags, DialogRecord, DialogState, Direction, PartyRequest, Side};
use crate::shard::{Entry, NEVER, Shard, ms_down, ms_up};
use crate::store::Change;
use crate::sync::Lock;
use crate::ua::{contact_uri, is_target_refresh, record_route_set, utf8};
use crate::uid::{DialogUid, RrCookie, UidGen, cookie_in_routes};

/// How in-dialog requests are matched to dialogs: Kamailio's `dlg_match_mode`, same numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum MatchMode {
    /// 0, DID_ONLY: only by the dialog-id cookie in a Route URI (then Call-ID and tags are
    /// checked); a request without one matches nothing.
    DidOnly,
    /// 1, DID_FALLBACK: by the cookie when there is one, else by Call-ID and tags.
    #[default]
    DidFallback,
    /// 2, DID_NONE: by Call-ID and tags only (no cookie needs to be put in the
    /// Record-Route).
    SipOnly,
}

impl MatchMode {
    /// The mode from its number (`dlg_match_mode` 0–2).
    pub fn from_number(n: u8) -> Option<Self> {
        Some(match n {
            0 => Self::DidOnly,
            1 => Self::DidFallback,
            2 => Self::SipOnly,
            _ => return None,
        })
    }
}

/// The tracker's settings. Every limit is explicit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackerConfig {
    /// This node's number, in every [`DialogUid`] it hands out (distinct per node sharing a
    /// store). Default 0.
    pub node: u8,
    /// Shards of the table (rounded up to a power of two; each has its own lock). Default 64.
    pub shards: usize,
    /// At most this many dialogs; past it [`Tracker::create`] fails with
    /// [`TrackError::Full`] (answer 503). Default 100 000.
    pub max_dialogs: usize,
    /// The lifetime of a confirmed dialog unless [`CreateOptions::lifetime`] overrides it
    /// (Kamailio `default_timeout`, 43 200 s = 12 h).
    pub default_lifetime: Duration,
    /// How long a dialog may stay unconfirmed or early before it is dropped (the INVITE
    /// transaction ends long before: Timer C is over 3 min). Default 300 s.
    pub setup_timeout: Duration,
    /// After a CANCEL, how long to wait for the INVITE's final response before dropping the
    /// dialog. Default 32 s (64 × T1).
    pub cancel_grace: Duration,
    /// How in-dialog requests are matched. Default [`MatchMode::DidFallback`].
    pub match_mode: MatchMode,
    /// The Record-Route URI parameter carrying the dialog id (Kamailio `rr_param`). Default
    /// `did`.
    pub rr_param: Box<str>,
    /// Flags every new dialog starts with ([`DialogFlags`] bits: Kamailio's `send_bye`,
    /// `timeout_noreset`…), OR-ed with [`CreateOptions::flags`]. Default none (Kamailio's
    /// defaults: no BYE at timeout, lifetime restarted by each in-dialog request).
    pub default_flags: u32,
    /// Interval of the OPTIONS keepalives of dialogs flagged for them (Kamailio
    /// `ka_interval`, at least 1 s here); `None`: no keepalives. Default `None`.
    pub keepalive_interval: Option<Duration>,
    /// Failed keepalives (408 or 481) in a row that end the dialog (Kamailio
    /// `ka_failed_limit`). Default 1.
    pub keepalive_failed_limit: u8,
    /// What is left of the lifetime after the keepalives failed (Kamailio: 10 s).
    pub keepalive_grace: Duration,
    /// Report every change of a confirmed dialog as a [`Change`] (for a
    /// [`Persister`](crate::Persister) in db_mode 1–3 or a replicator). Default false
    /// (db_mode 0: nothing is built for nobody).
    pub record_changes: bool,
    /// At most this many profiles per dialog. Default 8.
    pub max_profiles: usize,
    /// At most this many dialogs share one Call-ID (forked or re-sent INVITEs with new From
    /// tags); past it [`Tracker::create`] fails with [`TrackError::CallIdLimit`]. Bounds the
    /// work of every lookup, whatever a peer sends. Default 8.
    pub max_dialogs_per_call_id: usize,
}

impl Default for TrackerConfig {
    fn default() -> Self {
        TrackerConfig {
            node: 0,
            shards: 64,
            max_dialogs: 100_000,
            default_lifetime: Duration::from_secs(43_200),
            setup_timeout: Duration::from_secs(300),
            cancel_grace: Duration::from_secs(32),
            match_mode: MatchMode::DidFallback,
            rr_param: "did".into(),
            default_flags: 0,
            keepalive_interval: None,
            keepalive_failed_limit: 1,
            keepalive_grace: Duration::from_secs(10),
            record_changes: false,
            max_profiles: 8,
            max_dialogs_per_call_id: 8,
        }
    }
}

/// Per-dialog choices when creating it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CreateOptions<'a> {
    /// Lifetime of this dialog (Kamailio `timeout_avp`); `None`: the default.
    pub lifetime: Option<Duration>,
    /// The local socket the INVITE arrived on (opaque, stored and given back).
    pub caller_socket: &'a [u8],
    /// The local socket it leaves on toward the callee.
    pub callee_socket: &'a [u8],
    /// How many Record-Route entries the proxy adds (1, or 2 when it double-record-routes
    /// across two interfaces): with them the tracker tells the callee's route set from the
    /// proxy's own entries in the 2xx when they carry no cookie.
    pub own_record_routes: u8,
    /// [`DialogFlags`] bits added to [`TrackerConfig::default_flags`].
    pub flags: u32,
    /// Script flags, stored untouched.
    pub sflags: u32,
    /// Profiles to count the dialog in; a limit reached refuses the dialog.
    pub profiles: &'a [Profile<'a>],
    /// Dialog variables to store with it.
    pub vars: &'a [(&'a str, &'a str)],
}

impl Default for CreateOptions<'_> {
    fn default() -> Self {
        CreateOptions {
            lifetime: None,
            caller_socket: &[],
            callee_socket: &[],
            own_record_routes: 1,
            flags: 0,
            sflags: 0,
            profiles: &[],
            vars: &[],
        }
    }
}

/// A tracked dialog as the tracker's caller names it: its id and where it lives. Cheap to
/// copy and to keep (e.g. beside a transaction).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DialogHandle {
    /// The dialog's id.
    pub uid: DialogUid,
    shard: u32,
}

/// What [`Tracker::create`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Created {
    /// A new dialog.
    New(DialogHandle),
    /// The INVITE came back through the proxy (a spiral: same Call-ID, From tag and CSeq as
    /// an unconfirmed dialog, Kamailio `detect_spirals`): this is that dialog; nothing new
    /// is counted.
    Spiral(DialogHandle),
}

impl Created {
    /// The dialog, new or not.
    pub fn handle(&self) -> DialogHandle {
        match self {
            Created::New(h) | Created::Spiral(h) => *h,
        }
    }
}

/// Why a dialog ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    /// A BYE from this party.
    Bye {
        /// Who sent it.
        by: Side,
    },
    /// The caller CANCELled the INVITE (487), or the final response never came after the
    /// CANCEL.
    Cancelled,
    /// The INVITE failed with this status (3xx–6xx).
    Failed {
        /// The final status.
        status: u16,
    },
    /// A request in the dialog was answered 481 or 408 by `side` (RFC 3261 §12.2.1.2: the
    /// party no longer knows the dialog): the other party may still think it exists.
    Gone {
        /// The status.
        status: u16,
        /// The party that answered it.
        side: Side,
    },
    /// The lifetime ended (send BYE to both parties when [`DialogFlags::SEND_BYE`] is set).
    Expired,
    /// Never confirmed within [`TrackerConfig::setup_timeout`].
    SetupTimeout,
    /// Ended through [`Tracker::terminate`] (an operator's `dialog end`: send the BYEs).
    Terminated,
}

/// A dialog that ended: its last record (state [`DialogState::Terminated`]) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ended {
    /// The record.
    pub record: Arc<DialogRecord>,
    /// Why.
    pub reason: EndReason,
}

/// A request or response that belongs to a tracked dialog, after the tracker took it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tracked {
    /// The dialog.
    pub handle: DialogHandle,
    /// Which way the request travels (for a response: the request it answers).
    pub direction: Direction,
    /// The state after the message.
    pub state: DialogState,
    /// The dialog ended with this message.
    pub ended: Option<Ended>,
    /// The change to record (db_mode) or publish (replication), when
    /// [`TrackerConfig::record_changes`] is on and the dialog is a confirmed one.
    pub change: Option<Change>,
}

/// What [`Tracker::on_request`] and [`Tracker::on_response`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The message belongs to no tracked dialog (an initial request; an in-dialog request
    /// of a dialog not tracked, or without the cookie in [`MatchMode::DidOnly`]; a 2xx from a
    /// second forked branch after the first answered: the caller will BYE that branch).
    NotFound,
    /// It belongs to a tracked dialog.
    Tracked(Tracked),
}

impl Outcome {
    /// The tracked dialog's result, if any.
    pub fn tracked(&self) -> Option<&Tracked> {
        match self {
            Outcome::Tracked(t) => Some(t),
            Outcome::NotFound => None,
        }
    }
}

/// What [`Tracker::poll`] reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TimerEvent {
    /// A dialog's time ran out ([`EndReason::Expired`] or [`EndReason::SetupTimeout`]); it
    /// left the table. For a confirmed dialog: ask the
    /// [`Persister`](crate::Persister::expire) (it also takes it out of the store), then send
    /// [`DialogRecord::byes`] when its flags have [`DialogFlags::SEND_BYE`].
    Expired(Ended),
    /// Send this OPTIONS and report its final status with [`Tracker::keepalive_result`].
    Keepalive {
        /// The dialog.
        handle: DialogHandle,
        /// The request and the socket to send it from.
        probe: PartyRequest,
    },
}

/// How full the tracker is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TrackerStats {
    /// Dialogs tracked.
    pub dialogs: usize,
    /// Of which in each state 1–4 (index 0: Unconfirmed … 3: Confirmed).
    pub by_state: [usize; 4],
    /// Entries in the deadline heaps (live and stale).
    pub timers: usize,
    /// Profile counters held.
    pub profile_entries: usize,
}

/// The proxy's dialog table: sharded (a lock per shard), shared by the worker threads by
/// reference, bounded, with deadlines in per-shard heaps (no scans). Every method takes the
/// wall-clock time as `now` (see the crate documentation).
///
/// The proxy's calls, in the order a call goes:
///
/// 1. [`on_request`](Self::on_request) for each request it routes (in-dialog requests
///    update their dialog; others come back [`Outcome::NotFound`]);
/// 2. [`create`](Self::create) for an initial INVITE it tracks, before forwarding it (add
///    [`cookie`](Self::cookie) to the Record-Route it inserts);
/// 3. [`on_response`](Self::on_response) for each response it forwards upstream;
/// 4. [`poll`](Self::poll) when [`next_deadline`](Self::next_deadline) comes: lifetimes that
///    ended (send the BYEs) and keepalives to send.
///
/// Each [`Tracked::change`] goes to the [`Persister`](crate::Persister) (and to a replicator).
#[derive(Debug)]
pub struct Tracker {
    config: TrackerConfig,
    shards: Box<[Lock<Shard>]>,
    hasher: RandomState,
    uids: UidGen,
    count: AtomicUsize,
    profiles: Profiles,
    kpi: Kpi,
}

/// A removed entry, finished outside the shard lock.
struct Removed {
    entry: Entry,
    reason: EndReason,
}

fn missing(header: &'static str) -> TrackError {
    TrackError::Field(sip_parser::FieldError {
        header,
        offset: 0,
        kind: sip_parser::FieldErrorKind::Missing,
    })
}

impl Tracker {
    /// A tracker with these settings, hashing Call-IDs with ahash under `seeds` (random ones
    /// keep an attacker from aiming collisions at one shard), handing out ids from `now`.
    pub fn new(config: TrackerConfig, seeds: [u64; 4], now: Duration) -> Self {
        let n = config.shards.clamp(1, 1 << 16).next_power_of_two();
        let hasher = RandomState::with_seeds(seeds[0], seeds[1], seeds[2], seeds[3]);
        Tracker {
            shards: (0..n).map(|_| Lock::new(Shard::default())).collect(),
            profiles: Profiles::new(n, hasher.clone()),
            hasher,
            uids: UidGen::new(config.node, now),
            count: AtomicUsize::new(0),
            kpi: Kpi::new(now),
            config,
        }
    }

    /// A tracker with random hash seeds (from the standard library's per-process keys).
    #[cfg(feature = "std")]
    pub fn with_random_seeds(config: TrackerConfig, now: Duration) -> Self {
        use core::hash::BuildHasher as _;
        let s = std::collections::hash_map::RandomState::new();
        Self::new(config, core::array::from_fn(|i| s.hash_one(i)), now)
    }

    /// The settings.
    pub fn config(&self) -> &TrackerConfig {
        &self.config
    }

    /// The KPI counters (the tracker counts tracked calls; count calls the proxy answers
    /// itself with [`Kpi::record`]).
    pub fn kpi(&self) -> &Kpi {
        &self.kpi
    }

    /// Dialogs tracked.
    pub fn len(&self) -> usize {
        self.count.load(Ordering::Relaxed)
    }

    /// True when no dialog is tracked.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Dialogs counted in profile `name` (every value), or in `name`/`value`.
    pub fn profile_size(&self, name: &str, value: Option<&str>) -> u32 {
        self.profiles.size(name, value)
    }

    /// The Record-Route URI parameter carrying `handle`'s id, to add to the proxy's
    /// Record-Route when forwarding the INVITE (`<sip:proxy;lr;did=…>`).
    pub fn cookie(&self, handle: DialogHandle) -> RrCookie<'_> {
        RrCookie::new(&self.config.rr_param, handle.uid)
    }

    fn shard_of(&self, hash: u64) -> u32 {
        (hash as usize & (self.shards.len() - 1)) as u32
    }

    fn hash(&self, call_id: &str) -> u64 {
        self.hasher.hash_one(call_id)
    }

    fn change(&self, e: &Entry, insert: bool) -> Option<Change> {
        if !self.config.record_changes {
            return None;
        }
        if insert {
            Some(Change::Insert(e.rec.clone()))
        } else if e.written {
            Some(Change::Update(e.rec.clone()))
        } else {
            None
        }
    }

    /// Starts tracking the dialog of an initial INVITE (no To tag), in state Unconfirmed
    /// until a response comes, dropped after [`TrackerConfig::setup_timeout`] if none
    /// confirms it. Counts an attempt in the KPIs, and the dialog in its profiles.
    ///
    /// Fails with [`TrackError::Full`] past [`TrackerConfig::max_dialogs`] and
    /// [`TrackError::ProfileLimit`] when a profile is at its limit (answer 503, or a status of
    /// the caller's policy), or when the INVITE lacks what a dialog needs.
    pub fn create<B: AsRef<[u8]>>(
        &self,
        invite: &Message<B>,
        opts: &CreateOptions<'_>,
        now: Duration,
    ) -> Result<Created, TrackError> {
        let to = invite.to()?;
        if invite.method() != Some("INVITE") || to.tag().is_some() {
            return Err(TrackError::NotInitialInvite);
        }
        if opts.profiles.len() > self.config.max_profiles {
            return Err(TrackError::TooManyProfiles {
                max: self.config.max_profiles,
            });
        }
        let from = invite.from()?;
        let Some(from_tag) = from.tag() else {
            return Err(TrackError::NoFromTag);
        };
        let call_id = invite.call_id().ok_or_else(|| missing("Call-ID"))?;
        let cseq = invite.cseq()?.seq;
        let hash = self.hash(call_id);
        let shard = self.shard_of(hash);

        // A spiral is found before anything is counted.
        let spiral = self.shards[shard as usize].with(|s| {
            s.find_setup(hash, call_id, from_tag, cseq)
                .and_then(|slot| s.entry(slot).map(|e| e.rec.id))
        });
        if let Some(uid) = spiral {
            return Ok(Created::Spiral(DialogHandle { uid, shard }));
        }

        let caller_route_set = record_route_set(invite)?;
        let caller_rr = u8::try_from(caller_route_set.len()).unwrap_or(u8::MAX);
        let s = |v: &str| Box::<str>::from(v);
        let rec = DialogRecord {
            id: self.uids.next(),
            rev: 0,
            state: DialogState::Unconfirmed,
            call_id: s(call_id),
            from_uri: utf8(from.raw_uri, "From")?.into(),
            from_tag: s(from_tag),
            to_uri: utf8(to.raw_uri, "To")?.into(),
            to_tag: s(""),
            caller_cseq: cseq,
            callee_cseq: 0,
            caller_route_set,
            callee_route_set: Vec::new(),
            caller_contact: match contact_uri(invite)? {
                Some(u) => utf8(u, "Contact")?.into(),
                None => s(""),
            },
            callee_contact: s(""),
            caller_socket: opts.caller_socket.into(),
            callee_socket: opts.callee_socket.into(),
            created: now,
            start_time: Duration::ZERO,
            timeout: now.saturating_add(self.config.setup_timeout),
            lifetime: opts.lifetime.unwrap_or(self.config.default_lifetime),
            flags: DialogFlags(self.config.default_flags | opts.flags),
            sflags: opts.sflags,
            request_uri: utf8(invite.request_uri().unwrap_or_default(), "Request-URI")?.into(),
            profiles: opts
                .profiles
                .iter()
                .map(|p| (s(p.name), s(p.value.unwrap_or(""))))
                .collect(),
            vars: opts.vars.iter().map(|(k, v)| (s(k), s(v))).collect(),
        };

        self.reserve()?;
        for (i, p) in opts.profiles.iter().enumerate() {
            if !self.profiles.enter(p) {
                for q in &opts.profiles[..i] {
                    self.profiles.leave(q.name, q.value);
                }
                self.count.fetch_sub(1, Ordering::Relaxed);
                return Err(TrackError::ProfileLimit {
                    profile: p.name.into(),
                    value: p.value.unwrap_or("").into(),
                    limit: p.limit.unwrap_or(0),
                });
            }
        }
        let uid = rec.id;
        let timeout = ms_up(rec.timeout);
        let per_call_id = self.config.max_dialogs_per_call_id;
        let inserted = self.shards[shard as usize].with(|s| {
            // Another thread may have created it since the first look.
            if let Some(slot) = s.find_setup(hash, call_id, from_tag, cseq) {
                return Err(s.entry(slot).map(|e| e.rec.id));
            }
            if s.count_call_id(hash, call_id) >= per_call_id {
                return Err(None);
            }
            let slot = s.insert(Entry {
                rec: Arc::new(rec),
                hash,
                generation: 0,
                due: NEVER,
                ka_due: NEVER,
                ka_fail: [0; 2],
                invite_cseq: cseq,
                caller_rr,
                own_rr: opts.own_record_routes,
                ringing: false,
                written: false,
            });
            s.schedule(slot, timeout);
            Ok(())
        });
        if let Err(spiral) = inserted {
            for p in opts.profiles {
                self.profiles.leave(p.name, p.value);
            }
            self.count.fetch_sub(1, Ordering::Relaxed);
            return match spiral {
                Some(uid) => Ok(Created::Spiral(DialogHandle { uid, shard })),
                None => Err(TrackError::CallIdLimit { max: per_call_id }),
            };
        }
        self.kpi.record(CallEvent::Attempt);
        Ok(Created::New(DialogHandle { uid, shard }))
    }

    /// Takes a place in the table, or fails when it is full.
    fn reserve(&self) -> Result<(), TrackError> {
        let max = self.config.max_dialogs;
        self.count
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                (n < max).then_some(n + 1)
            })
            .map(|_| ())
            .map_err(|_| TrackError::Full { max })
    }

    /// Takes a request the proxy routes. An in-dialog request (To tag) of a tracked dialog
    /// updates it: the sender's CSeq, its Contact for a target refresh request, the state
    /// for the ACK of the 2xx (Confirmed), the lifetime restarted (unless
    /// [`DialogFlags::NO_RESET`]); a BYE ends it. A CANCEL of a tracked INVITE is noted (the
    /// dialog ends with the 487). Every request's Max-Forwards is counted for the AHR KPI.
    pub fn on_request<B: AsRef<[u8]>>(&self, request: &Message<B>, now: Duration) -> Outcome {
        if let Ok(Some(mf)) = request.max_forwards() {
            self.kpi.record(CallEvent::Hops { max_forwards: mf });
        }
        let Some(method) = request.method() else {
            return Outcome::NotFound;
        };
        let Ok(to) = request.to() else {
            return Outcome::NotFound;
        };
        if to.tag().is_none() && method != "CANCEL" {
            // An initial request: nothing to look up.
            return Outcome::NotFound;
        }
        let (Some(call_id), Ok(from), Ok(cseq)) =
            (request.call_id(), request.from(), request.cseq())
        else {
            return Outcome::NotFound;
        };
        let Some(from_tag) = from.tag() else {
            return Outcome::NotFound;
        };
        let Some(to_tag) = to.tag() else {
            if method == "CANCEL" {
                let hash = self.hash(call_id);
                let shard = self.shard_of(hash);
                return self.on_cancel(shard, hash, call_id, from_tag, cseq.seq, now);
            }
            // An initial request: nothing to look up.
            return Outcome::NotFound;
        };
        let hash = self.hash(call_id);
        let shard = self.shard_of(hash);
        let mode = self.config.match_mode;
        let target_contact = if is_target_refresh(method) {
            contact_uri(request)
                .ok()
                .flatten()
                .and_then(|u| core::str::from_utf8(u).ok())
        } else {
            None
        };
        let mut removed = None;
        let out = self.shards[shard as usize].with(|s| {
            let mut found = None;
            if mode != MatchMode::SipOnly {
                for uid in cookie_in_routes(request, &self.config.rr_param) {
                    let hit = s.find_uid(uid).and_then(|slot| {
                        let e = s.entry(slot)?;
                        Shard::direction(e, call_id, from_tag, to_tag).map(|d| (slot, d))
                    });
                    if hit.is_some() {
                        found = hit;
                        break;
                    }
                }
            }
            if found.is_none() && mode != MatchMode::DidOnly {
                found = s.find_sip(hash, call_id, from_tag, to_tag);
            }
            let (slot, direction) = found?;
            let e = s.entry_mut(slot)?;
            let sender = direction.sender();
            let r = Arc::make_mut(&mut e.rec);
            r.rev = r.rev.saturating_add(1);
            match sender {
                Side::Caller => r.caller_cseq = r.caller_cseq.max(cseq.seq),
                Side::Callee => r.callee_cseq = r.callee_cseq.max(cseq.seq),
            }
            if let Some(c) = target_contact {
                match sender {
                    Side::Caller => r.caller_contact = c.into(),
                    Side::Callee => r.callee_contact = c.into(),
                }
            }
            if method == "BYE" {
                r.state = DialogState::Terminated;
                let handle = DialogHandle { uid: r.id, shard };
                removed = s.remove(slot).map(|entry| Removed {
                    entry,
                    reason: EndReason::Bye { by: sender },
                });
                return Some((handle, direction, DialogState::Terminated, None));
            }
            if method == "ACK"
                && r.state == DialogState::ConfirmedNotAcked
                && sender == Side::Caller
            {
                r.state = DialogState::Confirmed;
            }
            let mut reschedule = None;
            if r.state.is_confirmed() && !r.flags.has(DialogFlags::NO_RESET) {
                r.timeout = now.saturating_add(r.lifetime);
                reschedule = Some(ms_up(r.timeout));
            }
            let state = r.state;
            let handle = DialogHandle { uid: r.id, shard };
            let change = self.change(e, false);
            if let Some(at) = reschedule {
                s.schedule(slot, at);
            }
            Some((handle, direction, state, change))
        });
        let Some((handle, direction, state, change)) = out else {
            return Outcome::NotFound;
        };
        let (ended, change) = match removed {
            Some(rm) => self.finish(rm, now),
            None => (None, change),
        };
        Outcome::Tracked(Tracked {
            handle,
            direction,
            state,
            ended,
            change,
        })
    }

    /// The Update change of a dialog that is written (looked up again: the caller holds no
    /// lock).
    fn current_change(&self, handle: DialogHandle) -> Option<Change> {
        if !self.config.record_changes {
            return None;
        }
        self.shards[handle.shard as usize].with(|s| {
            let e = s.entry(s.find_uid(handle.uid)?)?;
            self.change(e, false)
        })
    }

    fn on_cancel(
        &self,
        shard: u32,
        hash: u64,
        call_id: &str,
        from_tag: &str,
        cseq: u32,
        now: Duration,
    ) -> Outcome {
        self.shards[shard as usize]
            .with(|s| {
                let slot = s.find_setup(hash, call_id, from_tag, cseq)?;
                self.mark_cancelled(s, shard, slot, now)
            })
            .map_or(Outcome::NotFound, Outcome::Tracked)
    }

    /// Notes a CANCEL of a dialog's INVITE: the dialog ends with the 487 (reason
    /// [`EndReason::Cancelled`]) or, if no final response comes, after
    /// [`TrackerConfig::cancel_grace`]. Too late once a 2xx was seen (RFC 3261 §9.2: the 2xx
    /// wins; the caller will BYE).
    fn mark_cancelled(
        &self,
        s: &mut Shard,
        shard: u32,
        slot: u32,
        now: Duration,
    ) -> Option<Tracked> {
        let e = s.entry_mut(slot)?;
        let handle = DialogHandle {
            uid: e.rec.id,
            shard,
        };
        if e.rec.state.is_confirmed() {
            return Some(Tracked {
                handle,
                direction: Direction::Downstream,
                state: e.rec.state,
                ended: None,
                change: None,
            });
        }
        let r = Arc::make_mut(&mut e.rec);
        r.rev = r.rev.saturating_add(1);
        r.flags.set(DialogFlags::CANCELLED, true);
        let limit = now.saturating_add(self.config.cancel_grace);
        if r.timeout > limit {
            r.timeout = limit;
        }
        let (state, at) = (r.state, ms_up(r.timeout));
        s.schedule(slot, at);
        Some(Tracked {
            handle,
            direction: Direction::Downstream,
            state,
            ended: None,
            change: None,
        })
    }

    /// The INVITE of `handle` was CANCELled, learnt without the CANCEL itself (a
    /// transaction layer that answers CANCELs and reports only that the INVITE was
    /// cancelled, like sip-transaction's `Event::Cancelled`): as when
    /// [`on_request`](Self::on_request) sees the CANCEL. `None` when the dialog is not
    /// tracked.
    pub fn cancel(&self, handle: DialogHandle, now: Duration) -> Option<Tracked> {
        self.shards[handle.shard as usize].with(|s| {
            let slot = s.find_uid(handle.uid)?;
            self.mark_cancelled(s, handle.shard, slot, now)
        })
    }

    /// Takes a response the proxy forwards upstream (sip-transaction's `Forwarded` event),
    /// or one it sends itself for a tracked INVITE. For the initial INVITE: a 101–199 with a
    /// To tag makes the dialog Early (the first 18x counts the post-dial delay); a 2xx
    /// confirms it (To tag, the callee's Contact and route set, the answer time, the
    /// lifetime starts; the first [`Change::Insert`]); a 3xx–6xx ends it. For a request in
    /// the dialog: a 2xx to a target refresh request refreshes the responder's Contact; a
    /// 481 or 408 ends the dialog ([`EndReason::Gone`]).
    pub fn on_response<B: AsRef<[u8]>>(&self, response: &Message<B>, now: Duration) -> Outcome {
        let Some(status) = response.status() else {
            return Outcome::NotFound;
        };
        let Some(call_id) = response.call_id() else {
            return Outcome::NotFound;
        };
        let (Ok(from), Ok(to), Ok(cseq)) = (response.from(), response.to(), response.cseq()) else {
            return Outcome::NotFound;
        };
        let (Some(from_tag), to_tag) = (from.tag(), to.tag()) else {
            return Outcome::NotFound;
        };
        if status < 101 {
            return Outcome::NotFound;
        }
        let hash = self.hash(call_id);
        let shard = self.shard_of(hash);
        // Only a 2xx brings a Contact the dialog keeps.
        let contact = if (200..300).contains(&status) {
            contact_uri(response)
                .ok()
                .flatten()
                .and_then(|u| core::str::from_utf8(u).ok())
        } else {
            None
        };
        let mut removed = None;
        let mut kpi: [Option<CallEvent>; 2] = [None, None];
        let rr_param = &*self.config.rr_param;
        let out = self.shards[shard as usize].with(|s| {
            // The initial INVITE's transaction first: its responses carry the To tag the
            // dialog does not know yet.
            let setup = if cseq.method == "INVITE" {
                s.find_setup(hash, call_id, from_tag, cseq.seq)
            } else {
                None
            };
            let (slot, direction) = match setup {
                Some(slot) => (slot, Direction::Downstream),
                None => s.find_sip(hash, call_id, from_tag, to_tag?)?,
            };
            let e = s.entry_mut(slot)?;
            let handle = DialogHandle {
                uid: e.rec.id,
                shard,
            };
            let responder = direction.sender().other();
            if setup.is_some() && !e.rec.state.is_confirmed() {
                match status {
                    101..=199 => {
                        let tag = to_tag?;
                        let first_ringing = (180..=189).contains(&status) && !e.ringing;
                        if first_ringing {
                            e.ringing = true;
                            kpi[0] = Some(CallEvent::Ringing {
                                post_dial_delay: now.saturating_sub(e.rec.created),
                            });
                        }
                        let r = Arc::make_mut(&mut e.rec);
                        r.rev = r.rev.saturating_add(1);
                        r.state = DialogState::Early;
                        if &*r.to_tag != tag {
                            r.to_tag = tag.into();
                        }
                        return Some((handle, direction, DialogState::Early, None));
                    }
                    200..=299 => {
                        let tag = to_tag?;
                        let theirs = callee_route_set(response, rr_param, handle.uid, e);
                        let r = Arc::make_mut(&mut e.rec);
                        r.rev = r.rev.saturating_add(1);
                        r.state = DialogState::ConfirmedNotAcked;
                        r.to_tag = tag.into();
                        if let Some(c) = contact {
                            r.callee_contact = c.into();
                        }
                        r.callee_route_set = theirs;
                        r.start_time = now;
                        r.timeout = now.saturating_add(r.lifetime);
                        let at = ms_up(r.timeout);
                        let ka = self.keepalive_wanted(r);
                        kpi[1] = Some(CallEvent::Final { status });
                        e.written = self.config.record_changes;
                        let change = self.change(e, true);
                        s.schedule(slot, at);
                        if let Some(at) = ka {
                            s.schedule_keepalive(slot, at);
                        }
                        return Some((handle, direction, DialogState::ConfirmedNotAcked, change));
                    }
                    _ => {
                        kpi[1] = Some(CallEvent::Final { status });
                        let r = Arc::make_mut(&mut e.rec);
                        r.rev = r.rev.saturating_add(1);
                        r.state = DialogState::Terminated;
                        let reason = if r.flags.has(DialogFlags::CANCELLED) && status == 487 {
                            EndReason::Cancelled
                        } else {
                            EndReason::Failed { status }
                        };
                        removed = s.remove(slot).map(|entry| Removed { entry, reason });
                        return Some((handle, direction, DialogState::Terminated, None));
                    }
                }
            }
            if setup.is_some() && to_tag != Some(&*e.rec.to_tag) {
                // A 2xx (or 1xx) of another branch after the dialog was confirmed.
                return None;
            }
            // A response within the dialog (or a retransmitted 2xx).
            if matches!(status, 408 | 481) && cseq.method != "BYE" {
                let r = Arc::make_mut(&mut e.rec);
                r.rev = r.rev.saturating_add(1);
                r.state = DialogState::Terminated;
                removed = s.remove(slot).map(|entry| Removed {
                    entry,
                    reason: EndReason::Gone {
                        status,
                        side: responder,
                    },
                });
                return Some((handle, direction, DialogState::Terminated, None));
            }
            if (200..300).contains(&status) && is_target_refresh(cseq.method) && setup.is_none() {
                if let Some(c) = contact {
                    let current = match responder {
                        Side::Caller => &e.rec.caller_contact,
                        Side::Callee => &e.rec.callee_contact,
                    };
                    if &**current != c {
                        let r = Arc::make_mut(&mut e.rec);
                        r.rev = r.rev.saturating_add(1);
                        match responder {
                            Side::Caller => r.caller_contact = c.into(),
                            Side::Callee => r.callee_contact = c.into(),
                        }
                        let change = self.change(e, false);
                        return Some((handle, direction, e.rec.state, change));
                    }
                }
            }
            Some((handle, direction, e.rec.state, None))
        });
        for ev in kpi.into_iter().flatten() {
            self.kpi.record(ev);
        }
        let Some((handle, direction, state, change)) = out else {
            return Outcome::NotFound;
        };
        let (ended, change) = match removed {
            Some(rm) => self.finish(rm, now),
            None => (None, change),
        };
        Outcome::Tracked(Tracked {
            handle,
            direction,
            state,
            ended,
            change,
        })
    }

    /// The keepalive interval, at least one second (so a timer never fires again at once).
    fn keepalive_interval(&self) -> Option<Duration> {
        self.config
            .keepalive_interval
            .map(|iv| iv.max(Duration::from_secs(1)))
    }

    fn keepalive_wanted(&self, r: &DialogRecord) -> Option<u64> {
        let interval = self.keepalive_interval()?;
        let any = r.flags.has(DialogFlags::KEEPALIVE_CALLER)
            || r.flags.has(DialogFlags::KEEPALIVE_CALLEE);
        any.then(|| ms_up(r.start_time.max(r.created).saturating_add(interval)))
    }

    /// Finishes a removal outside the shard lock: the count, the profiles, the KPIs, the
    /// change.
    fn finish(&self, rm: Removed, now: Duration) -> (Option<Ended>, Option<Change>) {
        let Removed { entry, reason } = rm;
        self.count.fetch_sub(1, Ordering::Relaxed);
        for (name, value) in &entry.rec.profiles {
            self.profiles
                .leave(name, (!value.is_empty()).then_some(&**value));
        }
        if !entry.rec.start_time.is_zero() {
            self.kpi.record(CallEvent::SessionEnded {
                duration: entry.rec.duration(now),
            });
        }
        // Expiry is the persister's to write (it claims the dialog in the store first).
        let change = (entry.written
            && self.config.record_changes
            && !matches!(reason, EndReason::Expired | EndReason::SetupTimeout))
        .then(|| Change::Remove {
            id: entry.rec.id,
            rev: entry.rec.rev,
        });
        (
            Some(Ended {
                record: entry.rec,
                reason,
            }),
            change,
        )
    }

    /// Reports what is due at `now` into `out`: dialogs whose lifetime (or setup time) ran
    /// out — they leave the table — and keepalives to send. Costs O(log n) per event, nothing
    /// per idle dialog.
    pub fn poll(&self, now: Duration, out: &mut Vec<TimerEvent>) {
        let now_ms = ms_down(now);
        let interval = self.keepalive_interval();
        for (i, shard) in self.shards.iter().enumerate() {
            let mut removed: Vec<Removed> = Vec::new();
            shard.with(|s| {
                while let Some(t) = s.pop_due(now_ms) {
                    let Some(e) = s.entry_mut(t.slot) else {
                        continue;
                    };
                    if t.keepalive {
                        let (Some(iv), true) = (interval, e.rec.state.is_confirmed()) else {
                            continue;
                        };
                        let handle = DialogHandle {
                            uid: e.rec.id,
                            shard: i as u32,
                        };
                        for (side, flag) in [
                            (Side::Caller, DialogFlags::KEEPALIVE_CALLER),
                            (Side::Callee, DialogFlags::KEEPALIVE_CALLEE),
                        ] {
                            if e.rec.flags.has(flag) {
                                out.push(TimerEvent::Keepalive {
                                    handle,
                                    probe: e.rec.keepalive_to(side),
                                });
                            }
                        }
                        let at = ms_up(now.saturating_add(iv)).max(now_ms.saturating_add(1));
                        s.schedule_keepalive(t.slot, at);
                        continue;
                    }
                    if e.rec.timeout > now {
                        // Later than `now_ms`, so this loop never takes it again.
                        let at = ms_up(e.rec.timeout).max(now_ms.saturating_add(1));
                        s.schedule(t.slot, at);
                        continue;
                    }
                    let reason = if e.rec.state.is_confirmed() {
                        EndReason::Expired
                    } else if e.rec.flags.has(DialogFlags::CANCELLED) {
                        EndReason::Cancelled
                    } else {
                        EndReason::SetupTimeout
                    };
                    let r = Arc::make_mut(&mut e.rec);
                    r.rev = r.rev.saturating_add(1);
                    r.state = DialogState::Terminated;
                    if let Some(entry) = s.remove(t.slot) {
                        removed.push(Removed { entry, reason });
                    }
                }
            });
            for rm in removed {
                if let (Some(ended), _) = self.finish(rm, now) {
                    out.push(TimerEvent::Expired(ended));
                }
            }
        }
    }

    /// The earliest time [`poll`](Self::poll) may have something to report (possibly
    /// earlier than needed, never later).
    pub fn next_deadline(&self) -> Option<Duration> {
        self.shards
            .iter()
            .filter_map(|s| s.with(|s| s.next_due()))
            .min()
            .map(Duration::from_millis)
    }

    /// The final status of a keepalive sent to `side`: a 408 or 481 counts as a failure, and
    /// [`TrackerConfig::keepalive_failed_limit`] failures in a row leave the dialog
    /// [`TrackerConfig::keepalive_grace`] to live (then it expires); anything else resets
    /// the count.
    pub fn keepalive_result(
        &self,
        handle: DialogHandle,
        side: Side,
        status: u16,
        now: Duration,
    ) -> Option<Change> {
        let limit = self.config.keepalive_failed_limit.max(1);
        let grace = self.config.keepalive_grace;
        let i = usize::from(side == Side::Callee);
        let changed = self.shards[handle.shard as usize].with(|s| {
            let slot = s.find_uid(handle.uid)?;
            let e = s.entry_mut(slot)?;
            if !matches!(status, 408 | 481) {
                e.ka_fail[i] = 0;
                return None;
            }
            e.ka_fail[i] = e.ka_fail[i].saturating_add(1);
            if e.ka_fail[i] < limit || e.rec.timeout <= now.saturating_add(grace) {
                return None;
            }
            let r = Arc::make_mut(&mut e.rec);
            r.rev = r.rev.saturating_add(1);
            r.timeout = now.saturating_add(grace);
            let at = ms_up(r.timeout);
            s.schedule(slot, at);
            Some(())
        });
        changed.and_then(|()| self.current_change(handle))
    }

    /// Sets a dialog's lifetime to `lifetime` from `now` (Kamailio `dlg_set_timeout`): it
    /// ends then unless something restarts it. Returns the change to record; `None` also
    /// when the dialog is not tracked.
    pub fn set_lifetime(
        &self,
        handle: DialogHandle,
        lifetime: Duration,
        now: Duration,
    ) -> Option<Change> {
        let found = self.shards[handle.shard as usize].with(|s| {
            let slot = s.find_uid(handle.uid)?;
            let e = s.entry_mut(slot)?;
            let r = Arc::make_mut(&mut e.rec);
            r.rev = r.rev.saturating_add(1);
            r.lifetime = lifetime;
            r.timeout = now.saturating_add(lifetime);
            let at = ms_up(r.timeout);
            s.schedule(slot, at);
            Some(())
        });
        found.and_then(|()| self.current_change(handle))
    }

    /// Sets (or, with `None`, removes) dialog variable `key`. Returns the change to record.
    pub fn set_var(&self, handle: DialogHandle, key: &str, value: Option<&str>) -> Option<Change> {
        let found = self.shards[handle.shard as usize].with(|s| {
            let e = s.entry_mut(s.find_uid(handle.uid)?)?;
            let r = Arc::make_mut(&mut e.rec);
            r.rev = r.rev.saturating_add(1);
            r.vars.retain(|(k, _)| &**k != key);
            if let Some(v) = value {
                r.vars.push((key.into(), v.into()));
            }
            Some(())
        });
        found.and_then(|()| self.current_change(handle))
    }

    /// Ends a dialog now (an operator's `dialog end`, Kamailio `dlg.end_dlg`): it leaves the
    /// table and its record comes back; send [`DialogRecord::byes`]. Also reports the
    /// removal change.
    pub fn terminate(
        &self,
        handle: DialogHandle,
        now: Duration,
    ) -> Option<(Ended, Option<Change>)> {
        let rm = self.shards[handle.shard as usize].with(|s| {
            let slot = s.find_uid(handle.uid)?;
            let e = s.entry_mut(slot)?;
            let r = Arc::make_mut(&mut e.rec);
            r.rev = r.rev.saturating_add(1);
            r.state = DialogState::Terminated;
            s.remove(slot).map(|entry| Removed {
                entry,
                reason: EndReason::Terminated,
            })
        })?;
        let (ended, change) = self.finish(rm, now);
        ended.map(|e| (e, change))
    }

    /// Drops a dialog silently (no KPI, no change): another node claimed it
    /// ([`Persister::reap`](crate::Persister::reap)) and ends it.
    pub fn forget(&self, handle: DialogHandle) -> Option<Arc<DialogRecord>> {
        let entry = self.shards[handle.shard as usize].with(|s| {
            let slot = s.find_uid(handle.uid)?;
            s.remove(slot)
        })?;
        self.count.fetch_sub(1, Ordering::Relaxed);
        for (name, value) in &entry.rec.profiles {
            self.profiles
                .leave(name, (!value.is_empty()).then_some(&**value));
        }
        Some(entry.rec)
    }

    /// The current record of a dialog.
    pub fn get(&self, handle: DialogHandle) -> Option<Arc<DialogRecord>> {
        self.shards[handle.shard as usize].with(|s| {
            let e = s.entry(s.find_uid(handle.uid)?)?;
            Some(e.rec.clone())
        })
    }

    /// The handle of dialog `uid` (looks in every shard: for operators' commands, not for
    /// the message path, which has handles or Call-IDs).
    pub fn handle(&self, uid: DialogUid) -> Option<DialogHandle> {
        self.shards.iter().enumerate().find_map(|(i, s)| {
            s.with(|s| s.find_uid(uid)).map(|_| DialogHandle {
                uid,
                shard: i as u32,
            })
        })
    }

    /// The dialog with this Call-ID and tags (either order), like Kamailio `dlg_get`.
    pub fn find(&self, call_id: &str, tag_a: &str, tag_b: &str) -> Option<DialogHandle> {
        let hash = self.hash(call_id);
        let shard = self.shard_of(hash);
        self.shards[shard as usize].with(|s| {
            let (slot, _) = s.find_sip(hash, call_id, tag_a, tag_b)?;
            Some(DialogHandle {
                uid: s.entry(slot)?.rec.id,
                shard,
            })
        })
    }

    /// Every tracked dialog's record (for a listing, or the SHUTDOWN db_mode).
    pub fn snapshot(&self) -> Vec<Arc<DialogRecord>> {
        let mut v = Vec::with_capacity(self.len());
        for s in &self.shards {
            s.with(|s| v.extend(s.entries().map(|e| e.rec.clone())));
        }
        v
    }

    /// How full the tables are.
    pub fn stats(&self) -> TrackerStats {
        let mut st = TrackerStats {
            profile_entries: self.profiles.entries(),
            ..TrackerStats::default()
        };
        for s in &self.shards {
            s.with(|s| {
                st.dialogs += s.len();
                st.timers += s.timers();
                for e in s.entries() {
                    let i = usize::from(e.rec.state.number().clamp(1, 4)) - 1;
                    st.by_state[i] += 1;
                }
            });
        }
        st
    }

    /// Tracks a dialog from a record: one restored from a store at start-up
    /// ([`Persister::restore`](crate::Persister::restore)), or one another node created
    /// (found in a shared store after [`Outcome::NotFound`], or refreshed there). Its
    /// deadline is its stored timeout (a past one expires at the next poll); its changes are
    /// reported as updates from now on. Counted in its profiles without limits.
    pub fn insert_record(
        &self,
        record: DialogRecord,
        now: Duration,
    ) -> Result<DialogHandle, TrackError> {
        let hash = self.hash(&record.call_id);
        let shard = self.shard_of(hash);
        if self.shards[shard as usize].with(|s| s.find_uid(record.id).is_some()) {
            return Err(TrackError::Duplicate(record.id));
        }
        self.reserve()?;
        self.uids.observe(record.id);
        let profiles = record.profiles.clone();
        let uid = record.id;
        let confirmed = record.state.is_confirmed();
        let timeout = ms_up(record.timeout);
        let ka = if confirmed {
            self.keepalive_interval().and_then(|iv| {
                (record.flags.has(DialogFlags::KEEPALIVE_CALLER)
                    || record.flags.has(DialogFlags::KEEPALIVE_CALLEE))
                .then(|| ms_up(now.saturating_add(iv)))
            })
        } else {
            None
        };
        let caller_rr = u8::try_from(record.caller_route_set.len()).unwrap_or(u8::MAX);
        let invite_cseq = record.caller_cseq;
        let written = self.config.record_changes && confirmed;
        let inserted = self.shards[shard as usize].with(|s| {
            if s.find_uid(uid).is_some() {
                return false;
            }
            let slot = s.insert(Entry {
                rec: Arc::new(record),
                hash,
                generation: 0,
                due: NEVER,
                ka_due: NEVER,
                ka_fail: [0; 2],
                invite_cseq,
                caller_rr,
                own_rr: 1,
                ringing: true,
                written,
            });
            s.schedule(slot, timeout);
            if let Some(at) = ka {
                s.schedule_keepalive(slot, at);
            }
            true
        });
        if !inserted {
            self.count.fetch_sub(1, Ordering::Relaxed);
            return Err(TrackError::Duplicate(uid));
        }
        for (name, value) in &profiles {
            self.profiles.enter(&Profile {
                name,
                value: (!value.is_empty()).then_some(&**value),
                limit: None,
            });
        }
        Ok(DialogHandle { uid, shard })
    }
}

/// The callee's route set from a 2xx to the initial INVITE: the Record-Route entries above
/// the proxy's own, nearest first. The proxy's topmost entry is the first carrying the
/// dialog's cookie; without one, the count of entries the INVITE carried plus the proxy's
/// own is taken off the bottom.
fn callee_route_set<B: AsRef<[u8]>>(
    response: &Message<B>,
    rr_param: &str,
    uid: DialogUid,
    e: &Entry,
) -> Vec<Box<str>> {
    let entries: Vec<_> = response.record_routes().map_while(Result::ok).collect();
    let ours_at = entries
        .iter()
        .position(|r| crate::uid::uri_cookie(r.raw_uri, rr_param) == Some(uid));
    let theirs = ours_at.unwrap_or_else(|| {
        entries
            .len()
            .saturating_sub(usize::from(e.caller_rr) + usize::from(e.own_rr))
    });
    entries[..theirs]
        .iter()
        .rev()
        .map_while(|r| crate::ua::route_entry(r).ok())
        .collect()
}
