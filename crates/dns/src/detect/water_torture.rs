//! Random-subdomain ("water torture") attacks: per parent domain, the number of never-seen labels
//! and of NXDOMAIN/SERVFAIL answers in each window, against the domain's own normal level.

use jiff::{SignedDuration, Timestamp};

use super::parent_domain;
use crate::seeded::{SeededMap, SeededSet};
use crate::views::FqdnTraffic;

/// Thresholds.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WaterTortureConfig {
    /// Window length.
    pub window: SignedDuration,
    /// New labels in a window below which nothing is judged.
    pub min_new_labels: u32,
    /// How many times its normal level the new-label count must be.
    pub factor: f64,
    /// Share of NXDOMAIN/SERVFAIL among the domain's answers in the window (0–1).
    pub min_error_share: f64,
    /// Labels remembered per parent (older ones are forgotten in bulk).
    pub max_labels_per_parent: usize,
    /// Parents tracked.
    pub max_parents: usize,
}

impl Default for WaterTortureConfig {
    fn default() -> Self {
        WaterTortureConfig {
            window: SignedDuration::from_secs(10),
            min_new_labels: 200,
            factor: 10.0,
            min_error_share: 0.5,
            max_labels_per_parent: 50_000,
            max_parents: 200_000,
        }
    }
}

/// A detection.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RandomSubdomain {
    /// The parent domain under attack.
    pub parent: String,
    /// Never-seen labels in the window.
    pub new_labels: u32,
    /// Queries in the window.
    pub queries: u32,
    /// NXDOMAIN/SERVFAIL answers in the window.
    pub errors: u32,
    /// Answers in the window.
    pub answers: u32,
    /// The domain's normal new-label level per window.
    pub normal: f64,
    /// Up to three of the labels (random junk, for the operator to see).
    pub sample: Vec<String>,
}

#[derive(Debug, Default)]
struct Parent {
    /// Seeded: a random-subdomain attack chooses these labels by design.
    seen: SeededSet<Box<str>>,
    window_start: Option<Timestamp>,
    new_labels: u32,
    queries: u32,
    errors: u32,
    answers: u32,
    normal: f64,
    windows: u32,
    sample: Vec<String>,
    flagged: bool,
}

/// The detector.
#[derive(Debug, Default)]
pub struct WaterTorture {
    cfg: WaterTortureConfig,
    /// Seeded: keyed by the queried names' parents, which clients choose.
    parents: SeededMap<Box<str>, Parent>,
}

impl WaterTorture {
    /// A detector.
    pub fn new(cfg: WaterTortureConfig) -> Self {
        WaterTorture { cfg, parents: SeededMap::default() }
    }

    /// Parents tracked.
    pub fn tracked(&self) -> usize {
        self.parents.len()
    }

    /// Takes one query or response; returns a detection at most once per window and parent.
    pub fn observe(&mut self, v: &FqdnTraffic, now: Timestamp) -> Option<RandomSubdomain> {
        let parent = parent_domain(&v.qname)?;
        if parent.len() == v.qname.len() {
            // The parent itself: counts towards answers only.
        }
        if !self.parents.contains_key(parent) && self.parents.len() >= self.cfg.max_parents {
            // Forget quiet parents first; at worst start over (bounded memory beats completeness).
            self.parents.retain(|_, p| p.new_labels > 0 || p.flagged);
            if self.parents.len() >= self.cfg.max_parents {
                self.parents.clear();
            }
        }
        let cfg = &self.cfg;
        let p = self.parents.entry(parent.into()).or_default();
        let t = v.time.unwrap_or(now);
        match p.window_start {
            Some(s) if t.duration_since(s) < cfg.window => {}
            _ => {
                // Close the window: fold its count into the normal level unless it was an attack.
                if p.window_start.is_some() && !p.flagged {
                    let x = f64::from(p.new_labels);
                    p.normal = if p.windows == 0 { x } else { 0.9 * p.normal + 0.1 * x };
                    p.windows += 1;
                }
                p.window_start = Some(t);
                p.new_labels = 0;
                p.queries = 0;
                p.errors = 0;
                p.answers = 0;
                p.sample.clear();
                p.flagged = false;
            }
        }
        if v.is_response {
            p.answers += 1;
            if matches!(v.rcode, Some(2 | 3)) {
                p.errors += 1;
            }
        } else {
            p.queries += 1;
            if v.qname.len() > parent.len() {
                let sub = &v.qname[..v.qname.len() - parent.len() - 1];
                if !p.seen.contains(sub) {
                    if p.seen.len() >= cfg.max_labels_per_parent {
                        p.seen.clear();
                    }
                    p.seen.insert(sub.into());
                    p.new_labels += 1;
                    if p.sample.len() < 3 {
                        p.sample.push(sub.to_owned());
                    }
                }
            }
        }
        if p.flagged || p.new_labels < cfg.min_new_labels {
            return None;
        }
        let above_normal = f64::from(p.new_labels) > cfg.factor * p.normal.max(1.0);
        let error_share = if p.answers == 0 { 0.0 } else { f64::from(p.errors) / f64::from(p.answers) };
        if above_normal && p.answers >= cfg.min_new_labels / 4 && error_share >= cfg.min_error_share {
            p.flagged = true;
            return Some(RandomSubdomain {
                parent: parent.to_owned(),
                new_labels: p.new_labels,
                queries: p.queries,
                errors: p.errors,
                answers: p.answers,
                normal: p.normal,
                sample: p.sample.clone(),
            });
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(name: &str, resp: Option<u16>, t: i64) -> FqdnTraffic {
        FqdnTraffic {
            qname: name.into(),
            qtype: 1,
            rcode: resp,
            response_size: resp.map(|_| 100),
            is_response: resp.is_some(),
            time: Some(Timestamp::from_second(t).unwrap()),
        }
    }

    #[test]
    fn random_labels_with_nxdomain_are_detected_once() {
        let mut d = WaterTorture::new(WaterTortureConfig { min_new_labels: 50, ..Default::default() });
        let now = Timestamp::from_second(0).unwrap();
        // Normal traffic: a few names, answered, over several windows.
        for w in 0..5 {
            for i in 0..100 {
                let n = format!("{}.victim.example", ["www", "mail", "api"][i % 3]);
                assert!(d.observe(&ev(&n, None, w * 10), now).is_none());
                assert!(d.observe(&ev(&n, Some(0), w * 10), now).is_none());
            }
        }
        let mut hits = Vec::new();
        for i in 0..500 {
            let n = format!("q{i:08x}z.victim.example");
            hits.extend(d.observe(&ev(&n, None, 60), now));
            hits.extend(d.observe(&ev(&n, Some(3), 60), now));
        }
        assert_eq!(hits.len(), 1, "{hits:?}");
        assert_eq!(hits[0].parent, "victim.example");
        assert!(hits[0].new_labels >= 50);
    }

    #[test]
    fn labels_and_parents_are_hashed_with_a_seed_of_their_own() {
        use std::hash::BuildHasher;
        // The labels are the attacker's by design: a fixed hash would let them be chosen to
        // collide in the set of labels seen.
        let now = Timestamp::from_second(0).unwrap();
        let (mut a, mut b) = (WaterTorture::default(), WaterTorture::default());
        a.observe(&ev("x.victim.example", None, 0), now);
        b.observe(&ev("x.victim.example", None, 0), now);
        let label = "q0123abcdz";
        let seen = |d: &WaterTorture| d.parents["victim.example"].seen.hasher().hash_one(label);
        assert_ne!(seen(&a), seen(&b));
        assert_ne!(a.parents.hasher().hash_one("victim.example"), b.parents.hasher().hash_one("victim.example"));
    }

    #[test]
    fn many_new_names_answered_normally_are_not_an_attack() {
        // A CDN-like domain: many unique labels, all answered NOERROR.
        let mut d = WaterTorture::new(WaterTortureConfig { min_new_labels: 50, ..Default::default() });
        let now = Timestamp::from_second(0).unwrap();
        for i in 0..2000 {
            let n = format!("img{i}.cdn.example");
            assert!(d.observe(&ev(&n, None, 1), now).is_none());
            assert!(d.observe(&ev(&n, Some(0), 1), now).is_none());
        }
    }
}
