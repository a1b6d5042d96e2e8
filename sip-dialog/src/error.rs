//! Error types: [`DialogError`] (user-agent dialogs), [`TrackError`] (the proxy's tracker)
//! and [`StoreError`] (a [`DialogStore`](crate::DialogStore) backend). Each says what was
//! wrong and, where a SIP answer follows from it, which status to send.

use alloc::string::String;

use sip_parser::FieldError;

use crate::DialogUid;

/// Why a user-agent dialog could not be created or could not take a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DialogError {
    /// A header the dialog needs is missing or malformed (offset in the message).
    #[error(transparent)]
    Field(#[from] FieldError),
    /// A header the dialog keeps is not UTF-8.
    #[error("{header} is not UTF-8")]
    NotUtf8 {
        /// Which header.
        header: &'static str,
    },
    /// The request or response lacks a tag the dialog identifier needs.
    #[error("{header} has no tag")]
    NoTag {
        /// `"From"` or `"To"`.
        header: &'static str,
    },
    /// Only 101–199 and 2xx responses to an INVITE create dialogs (RFC 3261 §12.1).
    #[error("a {status} response does not create a dialog")]
    NotDialogCreating {
        /// The response's status.
        status: u16,
    },
    /// The message's Call-ID or tags are not this dialog's.
    #[error("the message does not belong to this dialog")]
    NotThisDialog,
    /// A request whose CSeq is lower than the remote sequence number (RFC 3261 §12.2.2:
    /// "rejected with a 500 (Server Internal Error) response").
    #[error("CSeq {got} is lower than the remote sequence number {remote}")]
    CSeqOutOfOrder {
        /// The request's CSeq number.
        got: u32,
        /// The dialog's remote sequence number.
        remote: u32,
    },
    /// The dialog has ended (or this side sent BYE): a request in it gets 481.
    #[error("the dialog has ended")]
    Ended,
    /// This method cannot be sent here: ACK and CANCEL have their own builders, and a
    /// callee does not send BYE on an early dialog (RFC 3261 §15).
    #[error("{method} cannot be sent now: {why}")]
    NotAllowed {
        /// The method.
        method: String,
        /// Why.
        why: &'static str,
    },
}

impl DialogError {
    /// The status a UAS answers a request with when this error comes from
    /// [`Dialog::receive_request`](crate::Dialog::receive_request): 500 for an out-of-order
    /// CSeq, 481 for an ended or unknown dialog, 400 for a malformed request.
    pub fn status(&self) -> u16 {
        match self {
            Self::CSeqOutOfOrder { .. } => 500,
            Self::Ended | Self::NotThisDialog => 481,
            Self::Field(_) | Self::NotUtf8 { .. } | Self::NoTag { .. } => 400,
            Self::NotDialogCreating { .. } | Self::NotAllowed { .. } => 500,
        }
    }
}

/// Why the tracker refused to track (or to restore) a dialog.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TrackError {
    /// The table holds [`TrackerConfig::max_dialogs`](crate::TrackerConfig) dialogs: answer
    /// 503 (Service Unavailable).
    #[error("dialog table full ({max} dialogs)")]
    Full {
        /// The configured maximum.
        max: usize,
    },
    /// A profile's limit (a call limit, like Kamailio's `get_profile_size` checks) would be
    /// exceeded.
    #[error("profile {profile}/{value} is at its limit of {limit} dialogs")]
    ProfileLimit {
        /// The profile.
        profile: String,
        /// The value (empty for a profile without values).
        value: String,
        /// The limit.
        limit: u32,
    },
    /// [`TrackerConfig::max_dialogs_per_call_id`](crate::TrackerConfig) dialogs share this
    /// Call-ID already.
    #[error("{max} dialogs share this Call-ID already")]
    CallIdLimit {
        /// The configured maximum.
        max: usize,
    },
    /// More profiles than [`TrackerConfig::max_profiles`](crate::TrackerConfig) for one
    /// dialog.
    #[error("more than {max} profiles for one dialog")]
    TooManyProfiles {
        /// The configured maximum.
        max: usize,
    },
    /// Only an INVITE without a To tag starts a tracked dialog.
    #[error("not an initial INVITE")]
    NotInitialInvite,
    /// The INVITE's From has no tag (RFC 2543 style): the dialog could not be identified.
    #[error("the INVITE's From has no tag")]
    NoFromTag,
    /// A header the tracker needs is missing or malformed (answer 400).
    #[error(transparent)]
    Field(#[from] FieldError),
    /// A header the tracker keeps is not UTF-8 (answer 400).
    #[error("{header} is not UTF-8")]
    NotUtf8 {
        /// Which header.
        header: &'static str,
    },
    /// A restored or adopted record has the id of a dialog already tracked.
    #[error("dialog {0} is already tracked")]
    Duplicate(DialogUid),
}

impl TrackError {
    /// The status to answer the INVITE with: 503 for the limits, 400 for a malformed
    /// request, 500 otherwise.
    pub fn status(&self) -> u16 {
        match self {
            Self::Full { .. }
            | Self::ProfileLimit { .. }
            | Self::TooManyProfiles { .. }
            | Self::CallIdLimit { .. } => 503,
            Self::Field(_) | Self::NotUtf8 { .. } | Self::NoFromTag => 400,
            Self::NotInitialInvite | Self::Duplicate(_) => 500,
        }
    }
}

impl From<DialogError> for TrackError {
    fn from(e: DialogError) -> Self {
        match e {
            DialogError::Field(f) => TrackError::Field(f),
            DialogError::NotUtf8 { header } => TrackError::NotUtf8 { header },
            DialogError::NoTag { .. } => TrackError::NoFromTag,
            _ => TrackError::NotInitialInvite,
        }
    }
}

/// A [`DialogStore`](crate::DialogStore) operation that failed. Backends say which operation
/// and which dialog, so that the caller can log what was not written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The backend cannot be reached (connection refused, database locked, …).
    #[error("dialog store unavailable during {op}: {detail}")]
    Unavailable {
        /// The operation (`"put"`, `"remove"`, `"load_all"`, …).
        op: &'static str,
        /// The backend's message.
        detail: String,
    },
    /// The backend answered with an error (disk full, constraint, …).
    #[error("dialog store {op} failed{}: {detail}", fmt_id(*.id))]
    Failed {
        /// The operation.
        op: &'static str,
        /// The dialog concerned, when there is one.
        id: Option<DialogUid>,
        /// The backend's message.
        detail: String,
    },
    /// A stored record could not be read back.
    #[error("corrupt dialog record{}: {detail}", fmt_id(*.id))]
    Corrupt {
        /// The record, when its id could be read.
        id: Option<DialogUid>,
        /// What is wrong.
        detail: String,
    },
}

fn fmt_id(id: Option<DialogUid>) -> String {
    match id {
        Some(id) => alloc::format!(" for dialog {id}"),
        None => String::new(),
    }
}
