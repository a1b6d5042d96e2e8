#![doc = include_str!("../README.md")]
#![cfg_attr(not(feature = "std"), no_std)]
#![deny(missing_docs)]

extern crate alloc;

// Where each thing lives: `ua` (user-agent dialogs, RFC 3261 §12) and `route` (the
// Request-URI and Route of in-dialog requests); `tracker` (the proxy's table and its API),
// `shard` (one shard: slab, indexes, deadline heap), `profile` (dlg_profile counters),
// `record` (the stored record and the BYE/OPTIONS the proxy sends itself), `uid` (ids and
// the Record-Route cookie); `store` (the DialogStore trait, MemoryStore, Change) and
// `persist` (db_mode); `kpi` (call KPIs); `sync` (the lock); `error`.
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
