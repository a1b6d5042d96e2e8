//! User-agent dialogs (RFC 3261 §12): [`Dialog`], created by the UAC from a 1xx/2xx
//! response or by the UAS from the request, keeping the dialog state of §12.1 (identifier,
//! sequence numbers, local and remote URI, remote target, route set, secure flag), building
//! the requests sent in it (§12.2.1.1, loose and strict routing; the ACK of a 2xx,
//! §13.2.2.4) and checking the requests received in it (§12.2.2), crossing BYEs included
//! (RFC 5407); and [`ForkedInvite`], the dialogs a forked INVITE creates (§13.2.2.4).

use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;

use sip_parser::{Message, NameAddr, Scheme};

use crate::error::DialogError;
use crate::route::{InDialogRequest, Target};

/// Which side of a dialog a user agent is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// It sent the dialog-creating request.
    Uac,
    /// It received the dialog-creating request.
    Uas,
}

/// A user-agent dialog's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum UaState {
    /// Created by a 1xx with a To tag (RFC 3261 §12.1).
    Early,
    /// Created or confirmed by a 2xx.
    Confirmed,
    /// This side sent BYE and waits for its final response. A BYE from the peer crossing it
    /// is still answered 200 (RFC 5407); other requests get 481.
    Terminating,
    /// Ended: BYE sent and answered, BYE received, a non-2xx final response to the INVITE,
    /// or a 481/408 to a request within it (§12.2.1.2).
    Terminated,
}

/// A dialog identifier seen from this user agent (RFC 3261 §12): Call-ID, local tag, remote
/// tag.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DialogId {
    /// Call-ID.
    pub call_id: Box<str>,
    /// This side's tag.
    pub local_tag: Box<str>,
    /// The peer's tag.
    pub remote_tag: Box<str>,
}

/// What a request received in a dialog is, once [`Dialog::receive_request`] accepted it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Received {
    /// The ACK of a 2xx: no response.
    Ack,
    /// A BYE: answer 200; the dialog is now [`UaState::Terminated`]. `crossed` is true when
    /// this side had sent its own BYE (RFC 5407: both BYEs get 200).
    Bye {
        /// Both sides sent BYE.
        crossed: bool,
    },
    /// Any other request (re-INVITE, UPDATE, INFO, NOTIFY…): the application answers it.
    /// When it was a target refresh request, the remote target was replaced already.
    Request,
}

/// A user agent's dialog (RFC 3261 §12.1).
///
/// Created by [`Dialog::uac`] from the INVITE and a 101–299 response with a To tag, or by
/// [`Dialog::uas`] from the INVITE and the tag the UAS puts in its To; then
/// [`request`](Self::request) builds each request sent in it, [`ack`](Self::ack) the ACK of a
/// 2xx, [`receive_request`](Self::receive_request) checks each request received and
/// [`receive_response`](Self::receive_response) each response to a request sent.
///
/// ```
/// use sip_dialog::{Dialog, Received, UaState};
/// use sip_parser::Message;
/// // Alice's INVITE and Bob's 200 OK through two record-routing proxies.
/// let invite = Message::parse_slice(
///     b"INVITE sip:bob@biloxi.example.com SIP/2.0\r\n\
///       Via: SIP/2.0/UDP client.atlanta.example.com:5060;branch=z9hG4bK74bf9\r\n\
///       From: Alice <sip:alice@atlanta.example.com>;tag=9fxced76sl\r\n\
///       To: Bob <sip:bob@biloxi.example.com>\r\n\
///       Call-ID: 3848276298220188511@atlanta.example.com\r\nCSeq: 1 INVITE\r\n\
///       Contact: <sip:alice@client.atlanta.example.com;transport=udp>\r\n\r\n",
/// ).unwrap();
/// let ok = Message::parse_slice(
///     b"SIP/2.0 200 OK\r\n\
///       Record-Route: <sip:ss2.biloxi.example.com;lr>, <sip:ss1.atlanta.example.com;lr>\r\n\
///       From: Alice <sip:alice@atlanta.example.com>;tag=9fxced76sl\r\n\
///       To: Bob <sip:bob@biloxi.example.com>;tag=314159\r\n\
///       Call-ID: 3848276298220188511@atlanta.example.com\r\nCSeq: 1 INVITE\r\n\
///       Contact: <sip:bob@client.biloxi.example.com;transport=udp>\r\n\r\n",
/// ).unwrap();
/// let mut d = Dialog::uac(&invite, &ok, false)?;
/// assert_eq!(d.state(), UaState::Confirmed);
/// // The UAC reverses the Record-Route (RFC 3261 §12.1.2).
/// assert_eq!(d.route_set()[0].as_ref(), "<sip:ss1.atlanta.example.com;lr>");
///
/// let ack = d.ack(1);
/// assert_eq!((ack.method.as_str(), ack.cseq), ("ACK", 1));
/// assert_eq!(ack.target.request_uri, "sip:bob@client.biloxi.example.com;transport=udp");
/// assert_eq!(ack.next_hop(), "sip:ss1.atlanta.example.com;lr");
///
/// let bye = d.request("BYE")?;
/// assert_eq!(bye.cseq, 2);
/// assert_eq!(d.state(), UaState::Terminating);
/// let mut b = bye.builder();
/// b.via("SIP/2.0/UDP client.atlanta.example.com:5060;branch=z9hG4bK74bfa");
/// assert!(Message::parse(b.build()).unwrap().validate().is_ok());
/// # Ok::<(), sip_dialog::DialogError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dialog {
    id: DialogId,
    role: Role,
    state: UaState,
    local_seq: Option<u32>,
    remote_seq: Option<u32>,
    local_uri: Box<str>,
    remote_uri: Box<str>,
    remote_target: Box<str>,
    route_set: Vec<Box<str>>,
    secure: bool,
}

/// Methods whose 2xx (or which, received) replace the remote target (RFC 3261 §12.2: INVITE;
/// RFC 3311 UPDATE; RFC 6665 SUBSCRIBE and NOTIFY; RFC 3515 REFER).
pub(crate) fn is_target_refresh(method: &str) -> bool {
    matches!(
        method,
        "INVITE" | "UPDATE" | "SUBSCRIBE" | "NOTIFY" | "REFER"
    )
}

pub(crate) fn utf8<'a>(b: &'a [u8], header: &'static str) -> Result<&'a str, DialogError> {
    core::str::from_utf8(b).map_err(|_| DialogError::NotUtf8 { header })
}

/// The URI of the first Contact entry, if any.
pub(crate) fn contact_uri<B: AsRef<[u8]>>(m: &Message<B>) -> Result<Option<&[u8]>, DialogError> {
    match m.contacts().next() {
        None => Ok(None),
        Some(c) => Ok(c?.addr().map(|a| a.raw_uri)),
    }
}

/// A Route / Record-Route entry as a Route header field value: `<uri>` and its header
/// parameters (the display name, if any, is dropped).
pub(crate) fn route_entry(a: &NameAddr<'_>) -> Result<Box<str>, DialogError> {
    let uri = utf8(a.raw_uri, "Record-Route")?;
    let params = utf8(a.params.as_bytes(), "Record-Route")?;
    let mut s = String::with_capacity(uri.len() + params.len() + 2);
    s.push('<');
    s.push_str(uri);
    s.push('>');
    s.push_str(params);
    Ok(s.into_boxed_str())
}

/// The Record-Route entries of `m`, top first, as route entries (at most the message's list
/// limit).
pub(crate) fn record_route_set<B: AsRef<[u8]>>(
    m: &Message<B>,
) -> Result<Vec<Box<str>>, DialogError> {
    m.record_routes()
        .map(|r| route_entry(&r?))
        .collect::<Result<Vec<_>, _>>()
}

fn angle(uri: &str) -> String {
    alloc::format!("<{uri}>")
}

/// What the UAC keeps of its INVITE to build the dialogs its responses create.
#[derive(Debug, Clone, PartialEq, Eq)]
struct UacSeed {
    call_id: Box<str>,
    local_tag: Box<str>,
    local_uri: Box<str>,
    remote_uri: Box<str>,
    local_seq: u32,
    secure: bool,
}

impl UacSeed {
    fn new<B: AsRef<[u8]>>(invite: &Message<B>, over_tls: bool) -> Result<Self, DialogError> {
        let from = invite.from()?;
        let to = invite.to()?;
        let local_tag = from.tag().ok_or(DialogError::NoTag { header: "From" })?;
        let call_id = invite.call_id().ok_or(sip_parser::FieldError {
            header: "Call-ID",
            offset: 0,
            kind: sip_parser::FieldErrorKind::Missing,
        })?;
        let sips = invite
            .request_uri_parsed()
            .and_then(Result::ok)
            .is_some_and(|u| u.scheme == Scheme::Sips);
        Ok(UacSeed {
            call_id: call_id.into(),
            local_tag: local_tag.into(),
            local_uri: utf8(from.raw_uri, "From")?.into(),
            remote_uri: utf8(to.raw_uri, "To")?.into(),
            local_seq: invite.cseq()?.seq,
            // §12.1.2: "If the request was sent over TLS, and the Request-URI contained a SIPS
            // URI, the secure flag is set to TRUE."
            secure: over_tls && sips,
        })
    }

    /// The dialog `response` creates (RFC 3261 §12.1.2).
    fn dialog<B: AsRef<[u8]>>(&self, response: &Message<B>) -> Result<Dialog, DialogError> {
        let status = response.status().unwrap_or(0);
        let state = match status {
            101..=199 => UaState::Early,
            200..=299 => UaState::Confirmed,
            _ => return Err(DialogError::NotDialogCreating { status }),
        };
        let to = response.to()?;
        let remote_tag = to.tag().ok_or(DialogError::NoTag { header: "To" })?;
        if response.call_id() != Some(&*self.call_id)
            || response.from()?.tag() != Some(&*self.local_tag)
        {
            return Err(DialogError::NotThisDialog);
        }
        // "The route set MUST be set to the list of URIs in the Record-Route header field
        // from the response, taken in reverse order" (§12.1.2).
        let mut route_set = record_route_set(response)?;
        route_set.reverse();
        let remote_target = match contact_uri(response)? {
            Some(u) => utf8(u, "Contact")?,
            None => return Err(missing("Contact")),
        };
        Ok(Dialog {
            id: DialogId {
                call_id: self.call_id.clone(),
                local_tag: self.local_tag.clone(),
                remote_tag: remote_tag.into(),
            },
            role: Role::Uac,
            state,
            local_seq: Some(self.local_seq),
            remote_seq: None,
            local_uri: self.local_uri.clone(),
            remote_uri: self.remote_uri.clone(),
            remote_target: remote_target.into(),
            route_set,
            secure: self.secure,
        })
    }
}

fn missing(header: &'static str) -> DialogError {
    DialogError::Field(sip_parser::FieldError {
        header,
        offset: 0,
        kind: sip_parser::FieldErrorKind::Missing,
    })
}

impl Dialog {
    /// The UAC's dialog (RFC 3261 §12.1.2), from the INVITE it sent and a 101–199 (early) or
    /// 2xx (confirmed) response with a To tag: route set from the response's Record-Route
    /// reversed, remote target from its Contact, local sequence number from the INVITE's
    /// CSeq, remote sequence number empty. `over_tls`: the INVITE was sent over TLS (the
    /// secure flag is set when it was and its Request-URI is a SIPS URI).
    pub fn uac<B: AsRef<[u8]>, C: AsRef<[u8]>>(
        invite: &Message<B>,
        response: &Message<C>,
        over_tls: bool,
    ) -> Result<Self, DialogError> {
        UacSeed::new(invite, over_tls)?.dialog(response)
    }

    /// The UAS's dialog (RFC 3261 §12.1.1), created when it answers `request` with `status`
    /// (101–199: early, 2xx: confirmed) carrying `local_tag` in the To: route set from the
    /// request's Record-Route in order, remote target from its Contact, remote sequence
    /// number from its CSeq, local sequence number empty. `over_tls`: the request arrived
    /// over TLS.
    pub fn uas<B: AsRef<[u8]>>(
        request: &Message<B>,
        local_tag: &str,
        status: u16,
        over_tls: bool,
    ) -> Result<Self, DialogError> {
        let state = match status {
            101..=199 => UaState::Early,
            200..=299 => UaState::Confirmed,
            _ => return Err(DialogError::NotDialogCreating { status }),
        };
        let from = request.from()?;
        let to = request.to()?;
        let remote_tag = from.tag().ok_or(DialogError::NoTag { header: "From" })?;
        let call_id = request.call_id().ok_or_else(|| missing("Call-ID"))?;
        let remote_target = match contact_uri(request)? {
            Some(u) => utf8(u, "Contact")?,
            None => return Err(missing("Contact")),
        };
        let sips = request
            .request_uri_parsed()
            .and_then(Result::ok)
            .is_some_and(|u| u.scheme == Scheme::Sips);
        Ok(Dialog {
            id: DialogId {
                call_id: call_id.into(),
                local_tag: local_tag.into(),
                remote_tag: remote_tag.into(),
            },
            role: Role::Uas,
            state,
            local_seq: None,
            remote_seq: Some(request.cseq()?.seq),
            local_uri: utf8(to.raw_uri, "To")?.into(),
            remote_uri: utf8(from.raw_uri, "From")?.into(),
            remote_target: remote_target.into(),
            // "The route set MUST be set to the list of URIs in the Record-Route header field
            // from the request, taken in order" (§12.1.1).
            route_set: record_route_set(request)?,
            secure: over_tls && sips,
        })
    }

    /// The dialog identifier.
    pub fn id(&self) -> &DialogId {
        &self.id
    }
    /// UAC or UAS.
    pub fn role(&self) -> Role {
        self.role
    }
    /// The state.
    pub fn state(&self) -> UaState {
        self.state
    }
    /// The local sequence number (`None` until this side sends a request, for the UAS).
    pub fn local_seq(&self) -> Option<u32> {
        self.local_seq
    }
    /// The remote sequence number (`None` until the peer sends a request, for the UAC).
    pub fn remote_seq(&self) -> Option<u32> {
        self.remote_seq
    }
    /// The local URI (From of the requests this side sends).
    pub fn local_uri(&self) -> &str {
        &self.local_uri
    }
    /// The remote URI (To of the requests this side sends).
    pub fn remote_uri(&self) -> &str {
        &self.remote_uri
    }
    /// The remote target (the peer's Contact URI).
    pub fn remote_target(&self) -> &str {
        &self.remote_target
    }
    /// The route set, in the order the Route header fields of a request take it.
    pub fn route_set(&self) -> &[Box<str>] {
        &self.route_set
    }
    /// The secure flag (RFC 3261 §12.1: requests in the dialog use SIPS and TLS).
    pub fn is_secure(&self) -> bool {
        self.secure
    }

    /// Builds a new request in the dialog (RFC 3261 §12.2.1.1): the local sequence number
    /// is incremented (or set to 1 when empty, §8.1.1.5 allows any start below 2³¹) and used
    /// as the CSeq; From is the local URI and tag, To the remote URI and tag; Request-URI
    /// and Route come from [`Target::new`]. A BYE moves the dialog to
    /// [`UaState::Terminating`].
    ///
    /// ACK and CANCEL are refused (use [`ack`](Self::ack); a CANCEL is built from the INVITE
    /// with `RequestBuilder::cancel`), so is any request on an ended dialog, and a BYE from the
    /// callee on an early dialog (§15: "The callee's UA MUST NOT send a BYE on an early
    /// dialog").
    pub fn request(&mut self, method: &str) -> Result<InDialogRequest, DialogError> {
        let not_allowed = |why| DialogError::NotAllowed {
            method: method.into(),
            why,
        };
        if matches!(method, "ACK" | "CANCEL") {
            return Err(not_allowed("ACK and CANCEL are built from the INVITE"));
        }
        match self.state {
            UaState::Terminating | UaState::Terminated => return Err(DialogError::Ended),
            UaState::Early if method == "BYE" && self.role == Role::Uas => {
                return Err(not_allowed(
                    "the callee does not send BYE on an early dialog",
                ));
            }
            UaState::Early | UaState::Confirmed => {}
        }
        let seq = match self.local_seq {
            Some(s) => s.wrapping_add(1) & 0x7fff_ffff,
            None => 1,
        };
        self.local_seq = Some(seq);
        if method == "BYE" {
            self.state = UaState::Terminating;
        }
        Ok(self.make(method, seq))
    }

    /// The ACK of a 2xx to the INVITE (or re-INVITE) with CSeq number `invite_cseq`, built
    /// like any request in the dialog but with the INVITE's sequence number (RFC 3261
    /// §13.2.2.4); the local sequence number is unchanged.
    pub fn ack(&self, invite_cseq: u32) -> InDialogRequest {
        self.make("ACK", invite_cseq)
    }

    fn make(&self, method: &str, cseq: u32) -> InDialogRequest {
        InDialogRequest {
            method: method.into(),
            target: Target::new(&self.route_set, &self.remote_target),
            from: angle(&self.local_uri),
            from_tag: String::from(&*self.id.local_tag),
            to: angle(&self.remote_uri),
            to_tag: String::from(&*self.id.remote_tag),
            call_id: String::from(&*self.id.call_id),
            cseq,
        }
    }

    /// True when `m` (request or response) carries this dialog's Call-ID and tags, seen from
    /// the side that sent it: a request from the peer has the remote tag in From and the
    /// local tag in To; a response to a request of ours has them the other way round.
    pub fn matches<B: AsRef<[u8]>>(&self, m: &Message<B>) -> bool {
        let (Ok(from), Ok(to)) = (m.from(), m.to()) else {
            return false;
        };
        let (theirs, ours) = if m.is_request() {
            (from.tag(), to.tag())
        } else {
            (to.tag(), from.tag())
        };
        m.call_id() == Some(&*self.id.call_id)
            && theirs == Some(&*self.id.remote_tag)
            && ours == Some(&*self.id.local_tag)
    }

    /// Checks a request received in this dialog (RFC 3261 §12.2.2) and updates the state:
    /// the CSeq must not be lower than the remote sequence number (else
    /// [`DialogError::CSeqOutOfOrder`], answer 500), which it then becomes; a target refresh
    /// request with a Contact replaces the remote target; a BYE ends the dialog — also when
    /// this side's own BYE is in flight (a crossing BYE, RFC 5407: each side answers the
    /// other's BYE with 200). Any other request on a dialog that ended or whose BYE this side
    /// sent gets [`DialogError::Ended`] (481).
    pub fn receive_request<B: AsRef<[u8]>>(
        &mut self,
        request: &Message<B>,
    ) -> Result<Received, DialogError> {
        if !self.matches(request) {
            return Err(DialogError::NotThisDialog);
        }
        let method = request.method().unwrap_or_default();
        let cseq = request.cseq()?;
        match (self.state, method) {
            (UaState::Terminated, _) => return Err(DialogError::Ended),
            (UaState::Terminating, "BYE") => {
                self.state = UaState::Terminated;
                return Ok(Received::Bye { crossed: true });
            }
            (UaState::Terminating, "ACK") => return Ok(Received::Ack),
            (UaState::Terminating, _) => return Err(DialogError::Ended),
            (UaState::Early | UaState::Confirmed, _) => {}
        }
        if method == "ACK" {
            // The ACK carries the INVITE's number; it is no new request (§13.2.2.4).
            if self.role == Role::Uas && self.state == UaState::Early {
                return Err(DialogError::NotThisDialog);
            }
            return Ok(Received::Ack);
        }
        if let Some(remote) = self.remote_seq {
            if cseq.seq < remote {
                return Err(DialogError::CSeqOutOfOrder {
                    got: cseq.seq,
                    remote,
                });
            }
        }
        self.remote_seq = Some(cseq.seq);
        if method == "BYE" {
            self.state = UaState::Terminated;
            return Ok(Received::Bye { crossed: false });
        }
        if is_target_refresh(method) {
            self.refresh_target(request)?;
        }
        Ok(Received::Request)
    }

    /// Takes a response to a request this side sent in the dialog and returns the new state:
    /// any final response to this side's BYE ends the dialog; a 481 or 408 to any other
    /// request ends it (§12.2.1.2: "the UAC SHOULD terminate the dialog"); a 2xx to a target
    /// refresh request replaces the remote target with its Contact (§12.2.1.2); a 2xx to the
    /// INVITE confirms an early UAC dialog and recomputes its route set (§13.2.2.4); a 300–699
    /// to the INVITE ends an early dialog (§13.2.2.3).
    pub fn receive_response<B: AsRef<[u8]>>(
        &mut self,
        response: &Message<B>,
    ) -> Result<UaState, DialogError> {
        if !self.matches(response) {
            return Err(DialogError::NotThisDialog);
        }
        let status = response.status().unwrap_or(0);
        let cseq = response.cseq()?;
        if status < 200 || self.state == UaState::Terminated {
            return Ok(self.state);
        }
        if cseq.method == "BYE" || matches!(status, 408 | 481) {
            self.state = UaState::Terminated;
        } else if (200..300).contains(&status) {
            if cseq.method == "INVITE" && self.state == UaState::Early && self.role == Role::Uac {
                let mut set = record_route_set(response)?;
                set.reverse();
                self.route_set = set;
                self.state = UaState::Confirmed;
            }
            if is_target_refresh(cseq.method) {
                self.refresh_target(response)?;
            }
        } else if cseq.method == "INVITE" && self.state == UaState::Early {
            self.state = UaState::Terminated;
        }
        Ok(self.state)
    }

    fn refresh_target<B: AsRef<[u8]>>(&mut self, m: &Message<B>) -> Result<(), DialogError> {
        if let Some(uri) = contact_uri(m)? {
            self.remote_target = utf8(uri, "Contact")?.into();
        }
        Ok(())
    }

    /// For the UAS: it sent `status` to the dialog-creating INVITE. A 2xx confirms an early
    /// dialog; a 300–699 ends it.
    pub fn sent_response(&mut self, status: u16) -> UaState {
        if self.state == UaState::Early {
            match status {
                200..=299 => self.state = UaState::Confirmed,
                300..=699 => self.state = UaState::Terminated,
                _ => {}
            }
        }
        self.state
    }

    /// Ends the dialog without a BYE (the INVITE transaction ended with early dialogs left,
    /// a session timer expired…).
    pub fn terminate(&mut self) {
        self.state = UaState::Terminated;
    }
}

/// How a response changed the dialogs of a [`ForkedInvite`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ForkUpdate {
    /// No dialog concerned: a 100, a provisional response without To tag, or a response to
    /// another request.
    None,
    /// An early dialog with this remote tag was created (`new`) or refreshed.
    Early {
        /// The remote (To) tag.
        remote_tag: Box<str>,
        /// True when this response created it.
        new: bool,
    },
    /// A dialog with this remote tag is confirmed: send it an ACK. `new` is true for a 2xx
    /// from a branch that had sent no 1xx (RFC 3261 §13.2.2.4: "a new dialog in the
    /// confirmed state MUST be constructed"); several 2xx from several branches each confirm
    /// their own dialog, and the UAC may BYE the ones it does not want.
    Confirmed {
        /// The remote (To) tag.
        remote_tag: Box<str>,
        /// True when this response created it.
        new: bool,
    },
    /// A non-2xx final response: every early dialog ended (§13.2.2.3).
    Failed {
        /// The status.
        status: u16,
        /// How many early dialogs it ended.
        ended: usize,
    },
}

/// The dialogs of one INVITE a UAC sent, which forking proxies may answer from several
/// branches (RFC 3261 §12.1.2, §13.2.2.4): one early dialog per To tag of a 1xx, each
/// confirmed by its 2xx or created confirmed by a 2xx of a branch that sent no 1xx; a final
/// non-2xx ends the early ones. At most `max_dialogs` are kept (the oldest early dialog makes
/// room for a new one; a confirmed dialog always gets a place, as it must be ACKed).
///
/// ```
/// use sip_dialog::{ForkedInvite, ForkUpdate, UaState};
/// use sip_parser::Message;
/// let invite = Message::parse_slice(
///     b"INVITE sip:bob@example.com SIP/2.0\r\nFrom: <sip:alice@example.com>;tag=a1\r\n\
///       To: <sip:bob@example.com>\r\nCall-ID: c1\r\nCSeq: 7 INVITE\r\n\r\n",
/// ).unwrap();
/// let resp = |status: u16, tag: &str| {
///     let raw = format!(
///         "SIP/2.0 {status} X\r\nFrom: <sip:alice@example.com>;tag=a1\r\n\
///          To: <sip:bob@example.com>;tag={tag}\r\nCall-ID: c1\r\nCSeq: 7 INVITE\r\n\
///          Contact: <sip:bob@{tag}.example.com>\r\n\r\n");
///     Message::parse(raw.into_bytes().into()).unwrap()
/// };
/// let mut calls = ForkedInvite::new(&invite, false, 8)?;
/// calls.on_response(&resp(180, "desk"))?;   // two phones ring
/// calls.on_response(&resp(180, "mobile"))?;
/// assert_eq!(calls.dialogs().len(), 2);
/// let up = calls.on_response(&resp(200, "mobile"))?; // the mobile answers
/// assert_eq!(up, ForkUpdate::Confirmed { remote_tag: "mobile".into(), new: false });
/// assert_eq!(calls.dialog("mobile").unwrap().state(), UaState::Confirmed);
/// assert_eq!(calls.transaction_ended(), 1); // the desk phone's early dialog ends
/// assert_eq!(calls.dialogs().len(), 1);
/// # Ok::<(), sip_dialog::DialogError>(())
/// ```
#[derive(Debug, Clone)]
pub struct ForkedInvite {
    seed: UacSeed,
    dialogs: Vec<Dialog>,
    max: usize,
}

impl ForkedInvite {
    /// Starts from the INVITE as sent (From with tag, To, Call-ID, CSeq), keeping at most
    /// `max_dialogs` dialogs (at least 1).
    pub fn new<B: AsRef<[u8]>>(
        invite: &Message<B>,
        over_tls: bool,
        max_dialogs: usize,
    ) -> Result<Self, DialogError> {
        Ok(ForkedInvite {
            seed: UacSeed::new(invite, over_tls)?,
            dialogs: Vec::new(),
            max: max_dialogs.max(1),
        })
    }

    /// Takes a response to the INVITE.
    pub fn on_response<B: AsRef<[u8]>>(
        &mut self,
        response: &Message<B>,
    ) -> Result<ForkUpdate, DialogError> {
        let status = response.status().unwrap_or(0);
        let cseq = response.cseq()?;
        if cseq.method != "INVITE" || cseq.seq != self.seed.local_seq {
            return Ok(ForkUpdate::None);
        }
        if status >= 300 {
            let mut ended = 0;
            for d in &mut self.dialogs {
                if d.state == UaState::Early {
                    d.state = UaState::Terminated;
                    ended += 1;
                }
            }
            self.dialogs.retain(|d| d.state != UaState::Terminated);
            return Ok(ForkUpdate::Failed { status, ended });
        }
        let to = response.to()?;
        let Some(tag) = to.tag() else {
            return Ok(ForkUpdate::None);
        };
        if status < 101 {
            return Ok(ForkUpdate::None);
        }
        let confirmed = status >= 200;
        if let Some(d) = self.dialogs.iter_mut().find(|d| &*d.id.remote_tag == tag) {
            if confirmed {
                d.receive_response(response)?;
                return Ok(ForkUpdate::Confirmed {
                    remote_tag: tag.into(),
                    new: false,
                });
            }
            return Ok(ForkUpdate::Early {
                remote_tag: tag.into(),
                new: false,
            });
        }
        let d = self.seed.dialog(response)?;
        if self.dialogs.len() >= self.max {
            match self.dialogs.iter().position(|d| d.state == UaState::Early) {
                Some(oldest) => {
                    self.dialogs.remove(oldest);
                }
                None if !confirmed => return Ok(ForkUpdate::None),
                None => {}
            }
        }
        self.dialogs.push(d);
        Ok(if confirmed {
            ForkUpdate::Confirmed {
                remote_tag: tag.into(),
                new: true,
            }
        } else {
            ForkUpdate::Early {
                remote_tag: tag.into(),
                new: true,
            }
        })
    }

    /// The INVITE client transaction ended: early dialogs that no 2xx confirmed end too
    /// (RFC 3261 §13.2.2.4 leaves them to the transaction's lifetime). Returns how many.
    pub fn transaction_ended(&mut self) -> usize {
        let before = self.dialogs.len();
        self.dialogs.retain(|d| d.state != UaState::Early);
        before - self.dialogs.len()
    }

    /// The dialogs, in the order they were created.
    pub fn dialogs(&self) -> &[Dialog] {
        &self.dialogs
    }

    /// The dialog with this remote tag.
    pub fn dialog(&self, remote_tag: &str) -> Option<&Dialog> {
        self.dialogs
            .iter()
            .find(|d| &*d.id.remote_tag == remote_tag)
    }

    /// The dialog with this remote tag, to send or receive in it.
    pub fn dialog_mut(&mut self, remote_tag: &str) -> Option<&mut Dialog> {
        self.dialogs
            .iter_mut()
            .find(|d| &*d.id.remote_tag == remote_tag)
    }

    /// Takes the dialog with this remote tag out (to keep it on its own).
    pub fn take(&mut self, remote_tag: &str) -> Option<Dialog> {
        let i = self
            .dialogs
            .iter()
            .position(|d| &*d.id.remote_tag == remote_tag)?;
        Some(self.dialogs.remove(i))
    }
}
