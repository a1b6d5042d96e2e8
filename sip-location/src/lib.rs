//! SIP registrar bindings and the location store (RFC 3261 section 10).
//!
//! This crate is a placeholder: its implementation lands with its own issue.
#![cfg_attr(not(feature = "std"), no_std)]
