//! Governance rules end to end on the embedded store, with real Japan-time dates: the
//! single-connection store a replay uses (`StoreOptions::single_thread`), same cases.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

const SINGLE_THREAD: bool = true;

include!("cases/governance.rs");
