//! One engine, two clocks (DESIGN.md invariant 6): live operation reads the wall clock, offline
//! replay and tests read a clock driven by the data.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use jiff::Timestamp;

/// The source of "now" for governance, scheduling and detection.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// The current instant.
    fn now(&self) -> Timestamp;
}

/// The system's wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct WallClock;

impl Clock for WallClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

/// A clock set by the data (replay) or by a test. Cloning shares the same instant.
#[derive(Debug, Clone)]
pub struct DataClock {
    nanos: Arc<AtomicI64>,
}

impl DataClock {
    /// A clock at `start`.
    pub fn new(start: Timestamp) -> Self {
        DataClock { nanos: Arc::new(AtomicI64::new(to_nanos(start))) }
    }

    /// Moves the clock to `at`; data time never runs backwards, so an earlier instant (a record
    /// slightly out of order) leaves it where it is.
    pub fn advance_to(&self, at: Timestamp) {
        self.nanos.fetch_max(to_nanos(at), Ordering::SeqCst);
    }

    /// Sets the clock to `at`, even backwards (tests only need this to model a wrong host clock).
    pub fn set(&self, at: Timestamp) {
        self.nanos.store(to_nanos(at), Ordering::SeqCst);
    }

    /// Moves the clock forward by `d`.
    pub fn advance(&self, d: jiff::SignedDuration) {
        let now = self.now();
        self.set(now.checked_add(d).unwrap_or(now));
    }
}

fn to_nanos(t: Timestamp) -> i64 {
    // i64 nanoseconds reach the year 2262, far beyond any record mamori will see.
    i64::try_from(t.as_nanosecond()).unwrap_or(i64::MAX)
}

impl Clock for DataClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_nanosecond(i128::from(self.nanos.load(Ordering::SeqCst))).unwrap_or(Timestamp::UNIX_EPOCH)
    }
}
