//! Zero-copy SIP parser (work in progress).
#![cfg_attr(not(feature = "std"), no_std)]
