//! The response-policy zone as data: entries with their expiry and the action that put them there,
//! a serial that only grows, and the zone's records in standard ISC RPZ form (`name CNAME .` for
//! NXDOMAIN, `*.name CNAME .` for its subtree; `CNAME rpz-passthru.` in dry-run, which resolvers
//! log but don't enforce).
//!
//! Every change is also kept in a bounded journal of difference sequences (RFC 1995), one per
//! serial, so an IXFR from a recent serial gets only what changed since. The journal lives in
//! memory: after a restart it is empty, and an IXFR from any earlier serial falls back to the
//! whole zone (RFC 1995 §4). That is correct only if the new serial is ahead of every serial
//! served before the restart (else a resolver holding one keeps its stale copy, or takes the new
//! zone's differences for its own); [`Zone::resume_after`] ensures it from the last serial kept.

use std::collections::{BTreeMap, VecDeque};

use hickory_proto::rr::rdata::{CNAME, NS, SOA};
use hickory_proto::rr::{Name, RData, Record};
use jiff::Timestamp;

use crate::names::normalize;

/// One listed name.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Entry {
    /// The name listed (normalized).
    pub name: String,
    /// Whether names below it are listed too.
    pub subtree: bool,
    /// When it leaves the zone.
    pub expires: Option<Timestamp>,
    /// The governance action that put it there.
    pub action_id: String,
}

/// Why a name can't go into the zone.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a valid name for the policy zone")]
pub struct BadName(pub String);

/// One change of the zone: the names whose records left and came between two serials (one
/// difference sequence of RFC 1995). A name is (normalized key, subtree).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delta {
    /// The serial before the change.
    pub from: u32,
    /// The serial after it.
    pub to: u32,
    /// Names whose records were removed.
    pub removed: Vec<(String, bool)>,
    /// Names whose records were added.
    pub added: Vec<(String, bool)>,
}

impl Delta {
    fn size(&self) -> usize {
        self.removed.len() + self.added.len()
    }
}

/// The zone's state.
#[derive(Debug, Clone)]
pub struct Zone {
    origin: Name,
    serial: u32,
    dry_run: bool,
    entries: BTreeMap<String, Entry>,
    journal: VecDeque<Delta>,
    journal_names: usize,
}

const TTL: u32 = 60;

/// How many changes (serials) the journal keeps; an IXFR from an older serial gets the whole zone.
pub const JOURNAL_SERIALS: usize = 1024;
/// How many names the journal's changes may hold in all; the oldest changes go first. A single
/// change larger than this (a big `replace_all`) empties the journal: the whole zone is then as
/// cheap to send as the difference.
pub const JOURNAL_NAMES: usize = 200_000;

impl Zone {
    /// An empty zone; the serial starts at the current Unix time so a restart never goes back.
    pub fn new(origin: &str, dry_run: bool, now: Timestamp) -> Result<Self, BadName> {
        let mut origin = Name::from_ascii(origin).map_err(|_| BadName(origin.to_owned()))?;
        origin.set_fqdn(true);
        Ok(Zone {
            origin,
            serial: now.as_second().clamp(1, i64::from(u32::MAX)) as u32,
            dry_run,
            entries: BTreeMap::new(),
            journal: VecDeque::new(),
            journal_names: 0,
        })
    }

    /// The zone's origin.
    pub fn origin(&self) -> &Name {
        &self.origin
    }

    /// The current serial.
    pub fn serial(&self) -> u32 {
        self.serial
    }

    /// Moves the serial past `last` (the last one served before a restart) if it isn't already
    /// ahead of it in serial-number arithmetic (RFC 1982): the clock-based start serial falls
    /// behind after more changes than seconds.
    pub fn resume_after(&mut self, last: u32) {
        let ahead = self.serial.wrapping_sub(last);
        if ahead == 0 || ahead >= 1 << 31 {
            self.serial = last.wrapping_add(1).max(1);
        }
    }

    /// The entries.
    pub fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.entries.values()
    }

    /// Moves to the next serial and journals what changed.
    fn bump(&mut self, removed: Vec<(String, bool)>, added: Vec<(String, bool)>) {
        let from = self.serial;
        self.serial = self.serial.wrapping_add(1).max(1);
        let d = Delta { from, to: self.serial, removed, added };
        if d.size() > JOURNAL_NAMES {
            self.journal.clear();
            self.journal_names = 0;
            return;
        }
        self.journal_names += d.size();
        self.journal.push_back(d);
        while self.journal.len() > JOURNAL_SERIALS || self.journal_names > JOURNAL_NAMES {
            let Some(old) = self.journal.pop_front() else { break };
            self.journal_names -= old.size();
        }
    }

    /// The changes from `serial` to the current one, oldest first, if the journal still holds
    /// them all; `None` when `serial` is not one the journal knows (too old, from before a
    /// restart, or never served). Empty when `serial` is the current one.
    pub fn changes_since(&self, serial: u32) -> Option<Vec<&Delta>> {
        if serial == self.serial {
            return Some(Vec::new());
        }
        let start = self.journal.iter().position(|d| d.from == serial)?;
        let out: Vec<&Delta> = self.journal.range(start..).collect();
        // The journal is contiguous by construction; check it anyway rather than send a wrong diff.
        let contiguous = out.windows(2).all(|w| w[0].to == w[1].from);
        (contiguous && out.last().is_some_and(|d| d.to == self.serial)).then_some(out)
    }

    /// The oldest serial an IXFR can start from (the current one when the journal is empty).
    pub fn journal_oldest(&self) -> u32 {
        self.journal.front().map_or(self.serial, |d| d.from)
    }

    /// Adds or replaces an entry; returns whether the zone changed.
    pub fn insert(&mut self, e: Entry) -> Result<bool, BadName> {
        let key = normalize(&e.name);
        if key == "." || self.owner(&key, false).is_err() {
            return Err(BadName(e.name));
        }
        let e = Entry { name: key.clone(), ..e };
        if self.entries.get(&key) == Some(&e) {
            return Ok(false);
        }
        let added = (key.clone(), e.subtree);
        let old = self.entries.insert(key, e).map(|o| (o.name, o.subtree));
        // A new expiry or action for the same name changes no record: an empty difference.
        let (removed, added) = match old {
            Some(o) if o == added => (vec![], vec![]),
            Some(o) => (vec![o], vec![added]),
            None => (vec![], vec![added]),
        };
        self.bump(removed, added);
        Ok(true)
    }

    /// Removes the entry an action put there; returns whether the zone changed.
    pub fn remove(&mut self, name: &str, action_id: &str) -> bool {
        let key = normalize(name);
        if self.entries.get(&key).is_some_and(|e| e.action_id == action_id) {
            if let Some(e) = self.entries.remove(&key) {
                self.bump(vec![(e.name, e.subtree)], vec![]);
            }
            return true;
        }
        false
    }

    /// Makes the zone hold exactly `entries`; returns whether it changed.
    pub fn replace_all(&mut self, entries: Vec<Entry>) -> bool {
        let new: BTreeMap<String, Entry> = entries
            .into_iter()
            .filter(|e| self.owner(&normalize(&e.name), false).is_ok())
            .map(|e| (normalize(&e.name), Entry { name: normalize(&e.name), ..e }))
            .collect();
        if new == self.entries {
            return false;
        }
        let removed: Vec<(String, bool)> = self
            .entries
            .values()
            .filter(|o| new.get(&o.name).is_none_or(|n| n.subtree != o.subtree))
            .map(|o| (o.name.clone(), o.subtree))
            .collect();
        let added: Vec<(String, bool)> = new
            .values()
            .filter(|n| self.entries.get(&n.name).is_none_or(|o| o.subtree != n.subtree))
            .map(|n| (n.name.clone(), n.subtree))
            .collect();
        self.entries = new;
        self.bump(removed, added);
        true
    }

    /// Drops entries whose expiry passed; returns the ones dropped.
    pub fn purge_expired(&mut self, now: Timestamp) -> Vec<Entry> {
        let gone: Vec<String> =
            self.entries.values().filter(|e| e.expires.is_some_and(|x| x <= now)).map(|e| e.name.clone()).collect();
        let out: Vec<Entry> = gone.iter().filter_map(|k| self.entries.remove(k)).collect();
        if !out.is_empty() {
            self.bump(out.iter().map(|e| (e.name.clone(), e.subtree)).collect(), vec![]);
        }
        out
    }

    fn owner(&self, key: &str, wildcard: bool) -> Result<Name, BadName> {
        let rel = if wildcard { format!("*.{key}") } else { key.to_owned() };
        Name::from_ascii(&rel).and_then(|n| n.append_name(&self.origin)).map_err(|_| BadName(key.to_owned()))
    }

    /// The SOA record.
    pub fn soa(&self) -> Record {
        self.soa_at(self.serial)
    }

    /// The SOA record as it was (or is) at `serial`: what opens and closes each difference
    /// sequence of an IXFR.
    pub fn soa_at(&self, serial: u32) -> Record {
        let mname = Name::from_ascii("localhost.").unwrap_or_else(|_| Name::root());
        let rname = Name::from_ascii("hostmaster.localhost.").unwrap_or_else(|_| Name::root());
        Record::from_rdata(self.origin.clone(), TTL, RData::SOA(SOA::new(mname, rname, serial, 60, 30, 86400, 60)))
    }

    /// The policy records of one listed name: `name CNAME .`, and `*.name CNAME .` for a subtree.
    fn name_records(&self, key: &str, subtree: bool, out: &mut Vec<Record>) {
        let target = if self.dry_run {
            Name::from_ascii("rpz-passthru.").unwrap_or_else(|_| Name::root())
        } else {
            Name::root()
        };
        if let Ok(n) = self.owner(key, false) {
            out.push(Record::from_rdata(n, TTL, RData::CNAME(CNAME(target.clone()))));
        }
        if subtree {
            if let Ok(n) = self.owner(key, true) {
                out.push(Record::from_rdata(n, TTL, RData::CNAME(CNAME(target))));
            }
        }
    }

    /// Every record of the zone except the closing SOA: SOA, NS, then the policy records.
    pub fn records(&self) -> Vec<Record> {
        let mut out = Vec::with_capacity(2 + 2 * self.entries.len());
        out.push(self.soa());
        let ns = Name::from_ascii("localhost.").unwrap_or_else(|_| Name::root());
        out.push(Record::from_rdata(self.origin.clone(), TTL, RData::NS(NS(ns))));
        for e in self.entries.values() {
            self.name_records(&e.name, e.subtree, &mut out);
        }
        out
    }

    /// The answer records of an incremental transfer (RFC 1995 §4) from `serial`, if the journal
    /// holds every change since: the current SOA, then per change (not condensed) the old SOA,
    /// the records removed, the new SOA, the records added; then the current SOA again. `None`
    /// when the journal can't say (the caller sends the whole zone instead).
    pub fn ixfr_records(&self, serial: u32) -> Option<Vec<Record>> {
        let changes = self.changes_since(serial)?;
        let mut out = vec![self.soa()];
        for d in changes {
            out.push(self.soa_at(d.from));
            for (k, s) in &d.removed {
                self.name_records(k, *s, &mut out);
            }
            out.push(self.soa_at(d.to));
            for (k, s) in &d.added {
                self.name_records(k, *s, &mut out);
            }
        }
        out.push(self.soa());
        Some(out)
    }

    /// The zone in master-file form (what `mamori dns rpz show` prints).
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        for r in self.records() {
            s.push_str(&r.to_string());
            s.push('\n');
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(name: &str, exp: Option<i64>) -> Entry {
        Entry {
            name: name.into(),
            subtree: true,
            expires: exp.map(|s| Timestamp::from_second(s).unwrap()),
            action_id: "A1".into(),
        }
    }

    #[test]
    fn entries_become_cname_dot_records_and_bump_the_serial() {
        let mut z = Zone::new("rpz.mamori", false, Timestamp::from_second(1000).unwrap()).unwrap();
        let s0 = z.serial();
        assert!(z.insert(e("Victim.Example.", Some(2000))).unwrap());
        assert!(!z.insert(e("victim.example", Some(2000))).unwrap());
        assert_eq!(z.serial(), s0 + 1);
        let text = z.to_text();
        assert!(text.contains("victim.example.rpz.mamori. 60 IN CNAME ."), "{text}");
        assert!(text.contains("*.victim.example.rpz.mamori. 60 IN CNAME ."), "{text}");
        assert!(z.purge_expired(Timestamp::from_second(1999).unwrap()).is_empty());
        assert_eq!(z.purge_expired(Timestamp::from_second(2000).unwrap()).len(), 1);
        assert_eq!(z.serial(), s0 + 2);
        assert!(z.insert(e("bad name with spaces", None)).is_err());
    }

    #[test]
    fn remove_only_by_the_owning_action() {
        let mut z = Zone::new("rpz.mamori.", true, Timestamp::from_second(1).unwrap()).unwrap();
        z.insert(e("a.test", None)).unwrap();
        assert!(!z.remove("a.test", "other"));
        assert!(z.remove("a.test", "A1"));
        assert!(z.to_text().lines().count() == 2);
        z.insert(e("b.test", None)).unwrap();
        assert!(z.to_text().contains("CNAME rpz-passthru."));
    }

    fn names(v: &[(String, bool)]) -> Vec<&str> {
        v.iter().map(|(n, _)| n.as_str()).collect()
    }

    fn lines(rs: &[Record]) -> Vec<String> {
        rs.iter()
            .map(|r| match r.data().as_soa() {
                Some(soa) => format!("SOA {}", soa.serial()),
                None => r.name().to_string(),
            })
            .collect()
    }

    #[test]
    fn journal_keeps_one_difference_per_serial() {
        let mut z = Zone::new("rpz.mamori.", false, Timestamp::from_second(1000).unwrap()).unwrap();
        let s0 = z.serial();
        z.insert(e("a.test", Some(2000))).unwrap(); // s0+1: add a
        z.insert(e("b.test", None)).unwrap(); // s0+2: add b
        assert!(z.remove("a.test", "A1")); // s0+3: remove a
        z.insert(e("c.test", Some(1500))).unwrap(); // s0+4: add c
        z.insert(Entry { subtree: false, ..e("b.test", None) }).unwrap(); // s0+5: b's subtree goes
        z.insert(e("b.test", Some(3000))).unwrap(); // s0+6: b's subtree back, with an expiry
        z.insert(Entry { action_id: "A2".into(), ..e("b.test", Some(4000)) }).unwrap(); // s0+7: no record changes
        assert_eq!(z.purge_expired(Timestamp::from_second(1500).unwrap()).len(), 1); // s0+8: c expires
        assert_eq!(z.serial(), s0 + 8);

        let d = z.changes_since(s0).unwrap();
        assert_eq!(d.len(), 8);
        assert_eq!((d[0].from, d[0].to), (s0, s0 + 1));
        assert_eq!(names(&d[0].added), ["a.test"]);
        assert!(d[0].removed.is_empty());
        assert_eq!(names(&d[2].removed), ["a.test"]);
        assert_eq!(d[4].removed, [("b.test".to_owned(), true)]);
        assert_eq!(d[4].added, [("b.test".to_owned(), false)]);
        assert!(d[6].removed.is_empty() && d[6].added.is_empty());
        assert_eq!(names(&d[7].removed), ["c.test"]);
        assert_eq!(z.changes_since(s0 + 6).unwrap().len(), 2);
        assert_eq!(z.changes_since(s0 + 8).unwrap().len(), 0);
        // Unknown serials: older than the journal, or ahead of the zone (another instance's).
        assert!(z.changes_since(s0 - 1).is_none());
        assert!(z.changes_since(s0 + 9).is_none());
        assert_eq!(z.journal_oldest(), s0);
    }

    #[test]
    fn ixfr_records_are_the_rfc_1995_sequences() {
        let mut z = Zone::new("rpz.mamori.", false, Timestamp::from_second(1000).unwrap()).unwrap();
        z.insert(e("old.test", None)).unwrap();
        let s1 = z.serial();
        z.insert(e("new.test", None)).unwrap();
        assert!(z.remove("old.test", "A1"));
        z.insert(Entry { subtree: false, ..e("one.test", Some(1100)) }).unwrap();
        z.purge_expired(Timestamp::from_second(1100).unwrap());
        let s = z.serial();
        assert_eq!(s, s1 + 4);
        let got = lines(&z.ixfr_records(s1).unwrap());
        let want = [
            format!("SOA {s}"),
            // + new.test
            format!("SOA {s1}"),
            format!("SOA {}", s1 + 1),
            "new.test.rpz.mamori.".into(),
            "*.new.test.rpz.mamori.".into(),
            // - old.test
            format!("SOA {}", s1 + 1),
            "old.test.rpz.mamori.".into(),
            "*.old.test.rpz.mamori.".into(),
            format!("SOA {}", s1 + 2),
            // + one.test (exact only)
            format!("SOA {}", s1 + 2),
            format!("SOA {}", s1 + 3),
            "one.test.rpz.mamori.".into(),
            // - one.test, expired
            format!("SOA {}", s1 + 3),
            "one.test.rpz.mamori.".into(),
            format!("SOA {}", s1 + 4),
            format!("SOA {s}"),
        ];
        assert_eq!(got, want);
        for r in z.ixfr_records(s1).unwrap().iter().filter(|r| r.record_type() == hickory_proto::rr::RecordType::CNAME)
        {
            assert_eq!(r.data().to_string(), ".");
        }
        assert_eq!(lines(&z.ixfr_records(s).unwrap()), [format!("SOA {s}"), format!("SOA {s}")]);
    }

    #[test]
    fn replace_all_journals_the_set_difference() {
        let mut z = Zone::new("rpz.mamori.", false, Timestamp::from_second(1000).unwrap()).unwrap();
        z.insert(e("keep.test", None)).unwrap();
        z.insert(e("drop.test", None)).unwrap();
        let s = z.serial();
        assert!(z.replace_all(vec![e("keep.test", Some(5000)), e("add.test", None)]));
        let d = z.changes_since(s).unwrap();
        assert_eq!(d.len(), 1);
        assert_eq!(names(&d[0].removed), ["drop.test"]);
        assert_eq!(names(&d[0].added), ["add.test"]);
    }

    #[test]
    fn journal_is_bounded_and_lost_on_restart() {
        let mut z = Zone::new("rpz.mamori.", false, Timestamp::from_second(1000).unwrap()).unwrap();
        let s0 = z.serial();
        for i in 0..JOURNAL_SERIALS + 10 {
            z.insert(e(&format!("n{i}.test"), None)).unwrap();
        }
        assert!(z.changes_since(s0).is_none(), "older than the journal");
        assert!(z.changes_since(s0 + 9).is_none());
        assert_eq!(z.journal_oldest(), s0 + 10);
        assert_eq!(z.changes_since(s0 + 10).unwrap().len(), JOURNAL_SERIALS);
        // One change larger than the journal's name budget empties it.
        let big: Vec<Entry> = (0..JOURNAL_NAMES + 1).map(|i| e(&format!("b{i}.test"), None)).collect();
        let before = z.serial();
        assert!(z.replace_all(big));
        assert!(z.changes_since(before).is_none());
        assert_eq!(z.changes_since(z.serial()).unwrap().len(), 0);
        // A restart: a new zone from the same entries starts a new serial with an empty journal.
        let last = z.serial();
        let mut again = Zone::new("rpz.mamori.", false, Timestamp::from_second(1_000_000).unwrap()).unwrap();
        again.replace_all(z.entries().cloned().collect());
        assert!(again.serial() > last);
        assert!(again.changes_since(last).is_none());
        assert!(again.ixfr_records(last).is_none());
        // Restarted behind the last serial served (more changes than seconds): moved past it.
        let mut behind = Zone::new("rpz.mamori.", false, Timestamp::from_second(1000).unwrap()).unwrap();
        behind.resume_after(last);
        assert_eq!(behind.serial(), last + 1);
        let mut ahead = Zone::new("rpz.mamori.", false, Timestamp::from_second(5000).unwrap()).unwrap();
        ahead.resume_after(4000);
        assert_eq!(ahead.serial(), 5000);
        ahead.resume_after(u32::MAX); // 5000 is ahead of u32::MAX in serial arithmetic (RFC 1982)
        assert_eq!(ahead.serial(), 5000);
    }
}
