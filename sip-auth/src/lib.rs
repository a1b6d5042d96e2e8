#![doc = include_str!("../README.md")]
#![cfg_attr(not(feature = "std"), no_std)]

extern crate alloc;

pub mod algorithm;
pub mod ban;
pub mod cache;
pub mod client;
mod clockmap;
pub mod credentials;
pub mod digest;
pub mod error;
pub mod header;
pub mod htdigest;
pub mod nonce;
pub mod ratelimit;
pub mod replay;
pub mod server;
mod sync;

pub use algorithm::{Algorithm, HashKind, HexDigest};
pub use ban::{BanConfig, FailureTracker, FailureVerdict, IpNet};
pub use cache::AuthCache;
pub use client::{ClientRequest, DigestClient};
pub use credentials::{CredentialStore, MemoryStore, Secret};
pub use error::{ClientError, FileError, ParseError};
pub use header::{Challenge, Credentials, Qop};
pub use htdigest::HtdigestFile;
pub use nonce::{Bindings, Lifetime, NonceSecrets};
pub use ratelimit::{RateConfig, RateLimiter};
pub use replay::ReplayTable;
pub use server::{
    Authenticated, ChallengeKind, DigestServer, FailReason, Outcome, Request, ServerConfig,
};
