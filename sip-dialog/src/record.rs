//! [`DialogRecord`]: what the proxy knows of a tracked dialog — the columns of Kamailio's
//! `dialog` table — and the requests it sends in it on its own: BYE to both sides when the
//! dialog's lifetime ends (Kamailio's `send_bye`, `dlg_bye`), OPTIONS keepalives.

use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;
use core::time::Duration;

use crate::route::{InDialogRequest, Target};
use crate::uid::DialogUid;

/// A tracked dialog's state, numbered as Kamailio's `dialog` module numbers it (the `state`
/// column).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum DialogState {
    /// 1: the initial INVITE was forwarded; no provisional response with a To tag yet.
    Unconfirmed = 1,
    /// 2: a 101–199 response with a To tag was seen (ringing).
    Early = 2,
    /// 3: a 2xx was seen; waiting for its ACK.
    ConfirmedNotAcked = 3,
    /// 4: the 2xx was ACKed: an active call.
    Confirmed = 4,
    /// 5: ended (BYE, CANCEL, failure, timeout). Terminated dialogs leave the table; the
    /// state is only seen in the events that report the end.
    Terminated = 5,
}

impl DialogState {
    /// The state from its number (the `state` column), `None` outside 1–5.
    pub fn from_number(n: u8) -> Option<Self> {
        Some(match n {
            1 => Self::Unconfirmed,
            2 => Self::Early,
            3 => Self::ConfirmedNotAcked,
            4 => Self::Confirmed,
            5 => Self::Terminated,
            _ => return None,
        })
    }

    /// The number (the `state` column).
    pub fn number(self) -> u8 {
        self as u8
    }

    /// True once a 2xx was seen (states 3 and 4).
    pub fn is_confirmed(self) -> bool {
        matches!(self, Self::ConfirmedNotAcked | Self::Confirmed)
    }
}

/// One party of a dialog, as the proxy sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    /// The party that sent the initial INVITE (From).
    Caller,
    /// The party that answered it (To).
    Callee,
}

impl Side {
    /// The other party.
    pub fn other(self) -> Self {
        match self {
            Side::Caller => Side::Callee,
            Side::Callee => Side::Caller,
        }
    }
}

/// Which way a request in a tracked dialog travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// From the caller toward the callee (its From tag is the dialog's From tag).
    Downstream,
    /// From the callee toward the caller.
    Upstream,
}

impl Direction {
    /// The party that sent a request travelling this way.
    pub fn sender(self) -> Side {
        match self {
            Direction::Downstream => Side::Caller,
            Direction::Upstream => Side::Callee,
        }
    }
}

/// Dialog flags the tracker itself interprets (Kamailio's internal `iflags` and the
/// `dlg_set_property` switches), stored with the dialog. Script flags are
/// [`DialogRecord::sflags`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct DialogFlags(pub u32);

impl DialogFlags {
    /// Send BYE to both sides when the lifetime ends (Kamailio `send_bye` /
    /// `$dlg_ctx(timeout_bye)`); without it the expiry is only reported.
    pub const SEND_BYE: u32 = 1 << 0;
    /// Send OPTIONS keepalives to the caller (`ka-src`).
    pub const KEEPALIVE_CALLER: u32 = 1 << 1;
    /// Send OPTIONS keepalives to the callee (`ka-dst`).
    pub const KEEPALIVE_CALLEE: u32 = 1 << 2;
    /// In-dialog requests do not restart the lifetime (`timeout-noreset`): the lifetime is a
    /// maximum call duration counted from the answer.
    pub const NO_RESET: u32 = 1 << 3;
    /// A CANCEL was seen for the initial INVITE.
    pub const CANCELLED: u32 = 1 << 4;

    /// True when every bit of `flag` is set.
    pub fn has(self, flag: u32) -> bool {
        self.0 & flag == flag
    }

    /// Sets or clears `flag`.
    pub fn set(&mut self, flag: u32, on: bool) {
        if on {
            self.0 |= flag;
        } else {
            self.0 &= !flag;
        }
    }
}

/// A tracked dialog: the columns of Kamailio's `dialog` table (and its `dialog_vars`), what a
/// [`DialogStore`](crate::DialogStore) writes and what a restore gives back. Every time is
/// wall-clock time: a [`Duration`] since the Unix epoch (see the crate documentation).
///
/// Kamailio's `hash_entry`/`hash_id` pair is [`id`](Self::id); its `toroute_name` column has
/// no counterpart (there is no script route to run: the expiry event goes to the caller of
/// [`Tracker::poll`](crate::Tracker::poll)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DialogRecord {
    /// The dialog's id (also the Record-Route cookie).
    pub id: DialogUid,
    /// Revision, incremented on every change: a store keeps the highest it was given, so
    /// that writes from several threads arriving out of order do not go back in time.
    pub rev: u64,
    /// State (`state`).
    pub state: DialogState,
    /// Call-ID (`callid`).
    pub call_id: Box<str>,
    /// The caller's From URI (`from_uri`).
    pub from_uri: Box<str>,
    /// The caller's From tag (`from_tag`).
    pub from_tag: Box<str>,
    /// The callee's To URI (`to_uri`).
    pub to_uri: Box<str>,
    /// The callee's To tag (`to_tag`), empty until a response with one is seen.
    pub to_tag: Box<str>,
    /// The highest CSeq number the caller used (`caller_cseq`).
    pub caller_cseq: u32,
    /// The highest CSeq number the callee used (`callee_cseq`), 0 until it sends a request.
    pub callee_cseq: u32,
    /// The route set from the proxy toward the caller (`caller_route_set`): the Record-Route
    /// entries the INVITE carried when it reached the proxy, top first, as Route values.
    pub caller_route_set: Vec<Box<str>>,
    /// The route set from the proxy toward the callee (`callee_route_set`): the Record-Route
    /// entries the callee's side added above the proxy's own, nearest first.
    pub callee_route_set: Vec<Box<str>>,
    /// The caller's Contact URI (`caller_contact`), refreshed by its target refresh requests.
    pub caller_contact: Box<str>,
    /// The callee's Contact URI (`callee_contact`), from the 2xx, refreshed likewise.
    pub callee_contact: Box<str>,
    /// The proxy's local socket toward the caller (`caller_sock`), opaque: whatever the
    /// caller of [`Tracker::create`](crate::Tracker::create) gave (e.g. `udp:192.0.2.1:5060`
    /// or an encoded flow).
    pub caller_socket: Box<[u8]>,
    /// The proxy's local socket toward the callee (`callee_sock`), opaque likewise.
    pub callee_socket: Box<[u8]>,
    /// When the INVITE was seen.
    pub created: Duration,
    /// When the 2xx was seen (`start_time`); zero until then.
    pub start_time: Duration,
    /// When the dialog ends unless something happens (`timeout`): the setup deadline while
    /// unconfirmed, then the answer time plus the lifetime (restarted by in-dialog requests
    /// unless [`DialogFlags::NO_RESET`]).
    pub timeout: Duration,
    /// The lifetime (Kamailio `default_timeout`, or the per-dialog `timeout_avp` override).
    pub lifetime: Duration,
    /// Tracker flags (`iflags`).
    pub flags: DialogFlags,
    /// Script flags (`sflags`): the application's, stored and restored untouched.
    pub sflags: u32,
    /// The INVITE's Request-URI (`req_uri`).
    pub request_uri: Box<str>,
    /// Profiles the dialog counts in (`dlg_profile`): (profile, value), the value empty for a
    /// profile without values.
    pub profiles: Vec<(Box<str>, Box<str>)>,
    /// Dialog variables (`dialog_vars` / `xdata`): (key, value), the application's.
    pub vars: Vec<(Box<str>, Box<str>)>,
}

/// A request the proxy sends itself to one party of a tracked dialog (a BYE when the
/// lifetime ends, an OPTIONS keepalive): the request and the local socket to send it from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartyRequest {
    /// Which party it goes to.
    pub to: Side,
    /// The local socket recorded for that party ([`DialogRecord::caller_socket`] or
    /// [`DialogRecord::callee_socket`]).
    pub socket: Box<[u8]>,
    /// The request: add a Via (and Max-Forwards, a Reason…) with
    /// [`InDialogRequest::builder`].
    pub request: InDialogRequest,
}

impl DialogRecord {
    /// The request `method` with CSeq `cseq` sent by the proxy to `to`, as if from the other
    /// party: Request-URI and Route from that party's route set and Contact (RFC 3261
    /// §12.2.1.1, loose or strict), From and To with the tags of the dialog seen from the
    /// other party. A party without a Contact is reached at its address (the INVITE's
    /// Request-URI for the callee, the From URI for the caller).
    pub fn request_to(&self, to: Side, method: &str, cseq: u32) -> PartyRequest {
        let (route_set, contact, fallback, socket) = match to {
            Side::Caller => (
                &self.caller_route_set,
                &self.caller_contact,
                &self.from_uri,
                &self.caller_socket,
            ),
            Side::Callee => (
                &self.callee_route_set,
                &self.callee_contact,
                &self.request_uri,
                &self.callee_socket,
            ),
        };
        let remote_target = if contact.is_empty() {
            fallback
        } else {
            contact
        };
        let caller = (alloc::format!("<{}>", self.from_uri), &self.from_tag);
        let callee = (alloc::format!("<{}>", self.to_uri), &self.to_tag);
        let ((from, from_tag), (to_addr, to_tag)) = match to {
            Side::Caller => (callee, caller),
            Side::Callee => (caller, callee),
        };
        PartyRequest {
            to,
            socket: socket.clone(),
            request: InDialogRequest {
                method: method.into(),
                target: Target::new(route_set, remote_target),
                from,
                from_tag: String::from(&**from_tag),
                to: to_addr,
                to_tag: String::from(&**to_tag),
                call_id: String::from(&*self.call_id),
                cseq,
            },
        }
    }

    /// The BYE to `to` (Kamailio `dlg_bye`): the CSeq one above the highest the other party
    /// used (1 when it used none).
    pub fn bye_to(&self, to: Side) -> PartyRequest {
        let seq = match to {
            Side::Caller => self.callee_cseq,
            Side::Callee => self.caller_cseq,
        };
        self.request_to(to, "BYE", seq.saturating_add(1).min(0x7fff_ffff))
    }

    /// The BYEs to both parties, caller first: what the proxy sends when the lifetime ends
    /// (Kamailio `send_bye`) or an operator ends the call (`dlg.end_dlg`).
    pub fn byes(&self) -> [PartyRequest; 2] {
        [self.bye_to(Side::Caller), self.bye_to(Side::Callee)]
    }

    /// An OPTIONS keepalive to `to` (Kamailio `ka-src` / `ka-dst`): its CSeq is the highest
    /// the other party used (1 when none), so it never runs ahead of that party's own
    /// numbering; a UA accepts an equal number (RFC 3261 §12.2.2 only rejects lower ones).
    pub fn keepalive_to(&self, to: Side) -> PartyRequest {
        let seq = match to {
            Side::Caller => self.callee_cseq,
            Side::Callee => self.caller_cseq,
        };
        self.request_to(to, "OPTIONS", seq.max(1))
    }

    /// The session's duration so far (zero before the answer).
    pub fn duration(&self, now: Duration) -> Duration {
        if self.start_time.is_zero() {
            Duration::ZERO
        } else {
            now.saturating_sub(self.start_time)
        }
    }

    /// The value of dialog variable `key`.
    pub fn var(&self, key: &str) -> Option<&str> {
        self.vars
            .iter()
            .find(|(k, _)| &**k == key)
            .map(|(_, v)| &**v)
    }
}

/// A confirmed dialog between Alice and Bob through one proxy, for examples and tests.
#[doc(hidden)]
pub fn doc_record() -> DialogRecord {
    let s = |v: &str| Box::<str>::from(v);
    DialogRecord {
        id: DialogUid::new(1, 42),
        rev: 3,
        state: DialogState::Confirmed,
        call_id: s("a84b4c76e66710@pc33.atlanta.example.com"),
        from_uri: s("sip:alice@atlanta.example.com"),
        from_tag: s("1928301774"),
        to_uri: s("sip:bob@biloxi.example.com"),
        to_tag: s("a6c85cf"),
        caller_cseq: 314_159,
        callee_cseq: 0,
        caller_route_set: Vec::new(),
        callee_route_set: alloc::vec![s("<sip:edge.biloxi.example.com;lr>")],
        caller_contact: s("sip:alice@pc33.atlanta.example.com"),
        callee_contact: s("sip:bob@192.0.2.4"),
        caller_socket: Box::from(&b"udp:192.0.2.1:5060"[..]),
        callee_socket: Box::from(&b"udp:192.0.2.1:5060"[..]),
        created: Duration::from_secs(1_700_000_000),
        start_time: Duration::from_secs(1_700_000_005),
        timeout: Duration::from_secs(1_700_003_605),
        lifetime: Duration::from_secs(3600),
        flags: DialogFlags(DialogFlags::SEND_BYE),
        sflags: 0,
        request_uri: s("sip:bob@biloxi.example.com"),
        profiles: Vec::new(),
        vars: Vec::new(),
    }
}
