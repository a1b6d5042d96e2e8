#![doc = include_str!("../README.md")]
#![cfg_attr(not(feature = "std"), no_std)]

extern crate alloc;

mod binding;
mod change;
pub mod gruu;
mod heap;
pub mod keepalive;
mod memory;
mod merge;
mod policy;
pub mod registrar;
mod store;
mod sync;
mod tiered;

pub use binding::{
    Binding, BindingError, BindingFields, FORMAT_VERSION, Flags, Source, same_contact,
};
pub use change::{Applied, Changes, Event, EventKind, Op, Snapshot, Version, order};
pub use memory::{MemoryConfig, MemoryStore};
pub use merge::{Merged, merge};
pub use policy::{Keepalive, MaxContacts, PathMode, Policy, WhenFull};
pub use registrar::{Outcome, Refusal, Registration, Reply};
pub use store::{BackendError, Counts, Cursor, LocationStore, StoreError};
pub use tiered::{FLUSH_BATCH, Mode, Tiered};
