#![doc = include_str!("../README.md")]
#![cfg_attr(not(feature = "std"), no_std)]

extern crate alloc;

mod algorithm;
mod ban;
mod cache;
mod client;
mod clockmap;
mod digest;
mod error;
mod header;
mod htdigest;
mod message;
mod nonce;
mod ratelimit;
mod replay;
mod server;
mod store;
mod sync;

pub use algorithm::{Algorithm, HashKind, HexDigest};
pub use ban::{BanConfig, FailureTracker, FailureVerdict, IpNet};
pub use cache::AuthCache;
pub use client::{ClientRequest, DigestClient};
pub use digest::{ha1, userhash};
pub use error::{ClientError, DigestHeaderError, FileError};
pub use header::{Challenge, Credentials, Qop};
pub use htdigest::{HtdigestFile, UserEntry};
pub use nonce::{Bindings, Lifetime, Nonce, NonceSecrets};
pub use ratelimit::{RateConfig, RateLimiter};
pub use replay::{ReplayCheck, ReplayTable};
pub use server::{
    Authenticated, ChallengeKind, DigestServer, FailReason, Outcome, Request, ServerConfig,
};
pub use store::{CredentialStore, MemoryStore, Secret};
