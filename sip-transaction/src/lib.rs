#![doc = include_str!("../README.md")]
#![cfg_attr(not(feature = "std"), no_std)]

extern crate alloc;

mod config;
mod io;
mod key;
mod layer;
mod machine;
mod proxy;
mod sync;
mod timer;
mod wheel;

pub use config::{Config, Listener};
pub use io::{ClientTxId, ConnId, Destination, Event, Flow, Output, ServerTxId, Transmit, TxRef};
pub use layer::{ReceiveError, TransactionLayer, TxError};
pub use machine::{
    InviteClientState, InviteServerState, NonInviteClientState, NonInviteServerState,
};
pub use proxy::{Forking, ForwardError, ForwardPlan, NextHop, Target};
pub use timer::{Timer, Timers};
