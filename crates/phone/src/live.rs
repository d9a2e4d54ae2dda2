//! Calls as they happen, from a switch (Kamailio's evapi events) rather than billing files.
//!
//! A live source turns the switch's messages into [`CallEvent`]s; the engine prices a call in
//! progress with the configured tariff ([`Tariff`]), so a burst of expensive calls is seen within
//! a tick, long before any CDR is written.

use std::net::IpAddr;

use jiff::Timestamp;
use mamori_core::config::TariffConfig;

use crate::numbering::CountryCode;

/// A call was answered (or placed: unanswered calls end at once with no charge).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallStart {
    /// The switch's call id (SIP Call-ID).
    pub call_id: String,
    /// The billed line (the authenticated SIP user).
    pub line_id: String,
    /// The calling number as presented (From user).
    pub calling_number: String,
    /// The number dialled (Request-URI user).
    pub called_number: String,
    /// The SIP client's address.
    pub source_ip: IpAddr,
    /// When.
    pub at: Timestamp,
}

/// A call ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallEnd {
    /// The switch's call id.
    pub call_id: String,
    /// When.
    pub at: Timestamp,
    /// The billed charge when the source knows it; otherwise the engine's tariff estimate stands.
    pub charge_jpy: Option<u64>,
}

/// One live event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallEvent {
    /// Answered.
    Start(CallStart),
    /// Ended.
    End(CallEnd),
}

/// Per-minute prices of calls in progress, from `[phone.tariff]`, as a table by calling code.
#[derive(Clone)]
pub struct Tariff {
    jpy_per_sec: Box<[f64; 1000]>,
}

impl std::fmt::Debug for Tariff {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tariff").finish_non_exhaustive()
    }
}

impl Tariff {
    /// Builds the table (codes that don't parse were refused by `config check`; they are ignored).
    /// Rates are finite and never negative (an infinite or negative one counts as 0), which the
    /// engine's per-call sums rely on.
    pub fn new(config: &TariffConfig) -> Self {
        let per_sec = |per_min: f64| if per_min.is_finite() { per_min.max(0.0) / 60.0 } else { 0.0 };
        let mut jpy_per_sec = Box::new([per_sec(config.default_jpy_per_min); 1000]);
        for (code, per_min) in &config.jpy_per_min {
            if let Some(slot) = code.parse::<usize>().ok().and_then(|c| jpy_per_sec.get_mut(c)) {
                *slot = per_sec(*per_min);
            }
        }
        Tariff { jpy_per_sec }
    }

    /// Yen per second to a calling code.
    pub fn jpy_per_sec(&self, code: CountryCode) -> f64 {
        self.jpy_per_sec.get(usize::from(code.0)).copied().unwrap_or(0.0)
    }
}
