//! Amplification: names abused for large ANY or TXT answers, counted per name and window.

use jiff::{SignedDuration, Timestamp};

use crate::seeded::SeededMap;
use crate::views::FqdnTraffic;

const ANY: u16 = 255;
const TXT: u16 = 16;

/// Thresholds.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AmplificationConfig {
    /// Window length.
    pub window: SignedDuration,
    /// Answer size from which an ANY/TXT answer counts as large, bytes.
    pub large_answer_bytes: u32,
    /// Large answers for one name in a window that make a detection.
    pub min_large_answers: u32,
    /// Names tracked.
    pub max_names: usize,
}

impl Default for AmplificationConfig {
    fn default() -> Self {
        AmplificationConfig {
            window: SignedDuration::from_secs(10),
            large_answer_bytes: 1200,
            min_large_answers: 100,
            max_names: 100_000,
        }
    }
}

/// A detection.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct AmplificationAbuse {
    /// The name whose answers are abused.
    pub qname: String,
    /// The query type (255 ANY, 16 TXT).
    pub qtype: u16,
    /// Large answers in the window.
    pub large_answers: u32,
    /// Bytes answered in the window.
    pub bytes: u64,
}

#[derive(Debug, Default)]
struct Name {
    start: Option<Timestamp>,
    count: u32,
    bytes: u64,
    flagged: bool,
}

/// The detector.
#[derive(Debug, Default)]
pub struct Amplification {
    cfg: AmplificationConfig,
    /// Seeded: keyed by the queried names, which clients choose.
    names: SeededMap<(Box<str>, u16), Name>,
}

impl Amplification {
    /// A detector.
    pub fn new(cfg: AmplificationConfig) -> Self {
        Amplification { cfg, names: SeededMap::default() }
    }

    /// Takes one view; returns a detection once per window and name.
    pub fn observe(&mut self, v: &FqdnTraffic, now: Timestamp) -> Option<AmplificationAbuse> {
        if !v.is_response || !matches!(v.qtype, ANY | TXT) {
            return None;
        }
        let size = v.response_size.unwrap_or(0);
        if size < self.cfg.large_answer_bytes {
            return None;
        }
        if self.names.len() >= self.cfg.max_names {
            self.names.retain(|_, n| n.flagged);
        }
        let t = v.time.unwrap_or(now);
        let n = self.names.entry((v.qname.as_str().into(), v.qtype)).or_default();
        match n.start {
            Some(s) if t.duration_since(s) < self.cfg.window => {}
            _ => *n = Name { start: Some(t), ..Default::default() },
        }
        n.count += 1;
        n.bytes += u64::from(size);
        if !n.flagged && n.count >= self.cfg.min_large_answers {
            n.flagged = true;
            return Some(AmplificationAbuse {
                qname: v.qname.clone(),
                qtype: v.qtype,
                large_answers: n.count,
                bytes: n.bytes,
            });
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_any_answers_are_detected() {
        let mut d = Amplification::new(AmplificationConfig { min_large_answers: 10, ..Default::default() });
        let now = Timestamp::from_second(0).unwrap();
        let v = |qtype, size| FqdnTraffic {
            qname: "amp.example".into(),
            qtype,
            rcode: Some(0),
            response_size: Some(size),
            is_response: true,
            time: Some(now),
        };
        for _ in 0..100 {
            assert!(d.observe(&v(1, 4000), now).is_none());
            assert!(d.observe(&v(ANY, 500), now).is_none());
        }
        let hits: Vec<_> = (0..20).filter_map(|_| d.observe(&v(ANY, 3000), now)).collect();
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0].large_answers, 10);
    }
}
