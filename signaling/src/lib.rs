//! # supernode-signaling
//!
//! The partner REST API (anonymous accounts, short-lived credentials), storage through
//! `sqlx`, WebSocket call signaling with many endpoints per account, and the directory.
//! Not built yet: this crate holds only this description until the signaling issue lands.
#![forbid(unsafe_code)]
