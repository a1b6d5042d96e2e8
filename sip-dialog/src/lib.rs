//! Sans-IO SIP dialog tracking and call KPIs (ASR, NER).
//!
//! This crate is a placeholder: its implementation lands with its own issue.
#![cfg_attr(not(feature = "std"), no_std)]
