//! # supernode-edge
//!
//! The native edge client: logs in with a credential, places or answers calls and sends and
//! plays real media over SRTP legs of the relay. Not built yet: this crate holds only this
//! description until the end-to-end issue lands.
#![forbid(unsafe_code)]
