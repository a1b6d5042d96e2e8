//! Sans-IO SIP transaction layer (RFC 3261 §17, RFC 6026) and stateful proxy core (§16).
#![cfg_attr(not(feature = "std"), no_std)]

extern crate alloc;

mod machine;
mod timer;
mod wheel;

pub use machine::{InviteClientState, InviteServerState, NonInviteClientState, NonInviteServerState};
pub use timer::{Timer, Timers};
