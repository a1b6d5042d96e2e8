//! Server- and client-side SIP Digest authentication (RFC 2617/7616/8760), stateless nonces, auth cache and brute-force banning.
//!
//! This crate is a placeholder: its implementation lands with its own issue.
#![cfg_attr(not(feature = "std"), no_std)]
