//! Sans-IO SIP transaction state machines (RFC 3261 section 17).
//!
//! This crate is a placeholder: its implementation lands with its own issue.
#![cfg_attr(not(feature = "std"), no_std)]
