//! HEP v1/v2/v3 (Homer Encapsulation Protocol) encoder and decoder.
//!
//! This crate is a placeholder: its implementation lands with its own issue.
#![cfg_attr(not(feature = "std"), no_std)]
