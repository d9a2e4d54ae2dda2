//! Queries for known C&C names: each is a finding against the client address, once per client and
//! listed name within a cooldown.

use std::net::IpAddr;

use jiff::{SignedDuration, Timestamp};

use crate::seeded::SeededMap;
use crate::views::CncQueryView;

/// The detector.
#[derive(Debug)]
pub struct CncQueries {
    cooldown: SignedDuration,
    /// Seeded: keyed by client addresses and queried names (listed names only, but the clients
    /// are any the resolver serves).
    last: SeededMap<(IpAddr, Box<str>), Timestamp>,
}

impl Default for CncQueries {
    fn default() -> Self {
        CncQueries::new(SignedDuration::from_hours(1))
    }
}

impl CncQueries {
    /// A detector reporting each client and name at most once per `cooldown`.
    pub fn new(cooldown: SignedDuration) -> Self {
        CncQueries { cooldown, last: SeededMap::default() }
    }

    /// Whether this query is a new finding.
    pub fn observe(&mut self, v: &CncQueryView, now: Timestamp) -> bool {
        let t = v.time.unwrap_or(now);
        if self.last.len() > 1_000_000 {
            let cd = self.cooldown;
            self.last.retain(|_, at| t.duration_since(*at) < cd);
        }
        let key = (v.client, v.listed.as_str().into());
        match self.last.get(&key) {
            Some(at) if t.duration_since(*at) < self.cooldown => false,
            _ => {
                self.last.insert(key, t);
                true
            }
        }
    }
}
