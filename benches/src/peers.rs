//! The published parsers, each driven through its own intended API.

pub mod ezk;
pub mod floor;
pub mod rsip;
pub mod rsipstack;
pub mod sipx;
