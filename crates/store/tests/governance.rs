//! Governance rules end to end on the embedded store, with real Japan-time dates: the threaded
//! store (a writer thread that group-commits, a reader connection).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

const SINGLE_THREAD: bool = false;

include!("cases/governance.rs");
