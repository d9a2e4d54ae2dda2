//! Login rate limits: a few failures per account name and per client address within a window,
//! then refusals (429) until the window moves on. In memory: a restart forgets, which only
//! gives an attacker one more short window.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failures remembered per key.
#[derive(Debug)]
pub(crate) struct LoginLimiter {
    window: Duration,
    per_name: usize,
    per_address: usize,
    failures: Mutex<HashMap<String, VecDeque<Instant>>>,
}

impl LoginLimiter {
    /// At most `per_name` failures per account name and `per_address` per client address within `window`.
    pub(crate) fn new(window: Duration, per_name: usize, per_address: usize) -> Self {
        LoginLimiter { window, per_name, per_address, failures: Mutex::new(HashMap::new()) }
    }

    fn keys(name: &str, from: Option<IpAddr>) -> [Option<String>; 2] {
        [Some(format!("n:{name}")), from.map(|a| format!("a:{a}"))]
    }

    /// How long until this name/address may try again (`None`: now).
    pub(crate) fn blocked_for(&self, name: &str, from: Option<IpAddr>) -> Option<Duration> {
        let now = Instant::now();
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let mut wait = None;
        for (key, limit) in Self::keys(name, from).into_iter().zip([self.per_name, self.per_address]) {
            let Some(key) = key else { continue };
            if let Some(q) = map.get_mut(&key) {
                while q.front().is_some_and(|t| now.duration_since(*t) >= self.window) {
                    q.pop_front();
                }
                if q.len() >= limit {
                    let oldest = q.front().copied().unwrap_or(now);
                    let w = self.window.saturating_sub(now.duration_since(oldest));
                    wait = Some(wait.map_or(w, |x: Duration| x.max(w)));
                }
            }
        }
        wait
    }

    /// Remembers a failure.
    pub(crate) fn failed(&self, name: &str, from: Option<IpAddr>) {
        let now = Instant::now();
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        // Bounded memory under a spray of names: forget the oldest keys beyond a cap.
        if map.len() > 100_000 {
            map.retain(|_, q| q.back().is_some_and(|t| now.duration_since(*t) < self.window));
        }
        for key in Self::keys(name, from).into_iter().flatten() {
            map.entry(key).or_default().push_back(now);
        }
    }

    /// A success clears the name's failures (not the address's).
    pub(crate) fn succeeded(&self, name: &str) {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        map.remove(&format!("n:{name}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_after_limit_per_name_and_per_address() {
        let l = LoginLimiter::new(Duration::from_secs(60), 3, 5);
        let a: IpAddr = [127, 0, 0, 1].into();
        for _ in 0..3 {
            assert!(l.blocked_for("alice", Some(a)).is_none());
            l.failed("alice", Some(a));
        }
        assert!(l.blocked_for("alice", Some(a)).is_some());
        assert!(l.blocked_for("alice", None).is_some());
        assert!(l.blocked_for("bob", Some(a)).is_none());
        l.failed("bob", Some(a));
        l.failed("carol", Some(a));
        // Five failures from one address block every name from it.
        assert!(l.blocked_for("dave", Some(a)).is_some());
        assert!(l.blocked_for("dave", Some([10, 0, 0, 1].into())).is_none());
    }

    #[test]
    fn success_clears_the_name() {
        let l = LoginLimiter::new(Duration::from_secs(60), 2, 100);
        l.failed("alice", None);
        l.failed("alice", None);
        assert!(l.blocked_for("alice", None).is_some());
        l.succeeded("alice");
        assert!(l.blocked_for("alice", None).is_none());
    }
}
