//! Sans-IO SIP dialogs, proxy-side dialog tracking and call KPIs.
#![cfg_attr(not(feature = "std"), no_std)]

extern crate alloc;

mod error;
mod kpi;
mod persist;
mod profile;
mod record;
mod route;
mod shard;
mod store;
mod sync;
mod tracker;
mod ua;
mod uid;

pub use error::{DialogError, StoreError, TrackError};
pub use kpi::{CallEvent, Kpi, KpiSink, KpiSnapshot, Metric, MetricKind};
pub use persist::{DbMode, Expiry, PersistError, Persister};
pub use profile::Profile;
#[doc(hidden)]
pub use record::doc_record;
pub use record::{DialogFlags, DialogRecord, DialogState, Direction, PartyRequest, Side};
pub use route::{InDialogRequest, Target};
pub use store::{Change, Claim, DEFAULT_TOMBSTONES, DialogStore, MemoryStore};
pub use tracker::{
    CreateOptions, Created, DialogHandle, EndReason, Ended, MatchMode, Outcome, TimerEvent,
    Tracked, Tracker, TrackerConfig, TrackerStats,
};
pub use ua::{Dialog, DialogId, ForkUpdate, ForkedInvite, Received, Role, UaState};
pub use uid::{BadUid, DialogUid, HexUid, MAX_ROUTES_SEARCHED, RrCookie, cookie_in_routes};
