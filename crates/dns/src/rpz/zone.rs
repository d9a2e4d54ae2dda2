//! The response-policy zone as data: entries with their expiry and the action that put them there,
//! a serial that only grows, and the zone's records in standard ISC RPZ form (`name CNAME .` for
//! NXDOMAIN, `*.name CNAME .` for its subtree; `CNAME rpz-passthru.` in dry-run, which resolvers
//! log but don't enforce).

use std::collections::BTreeMap;

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

/// The zone's state.
#[derive(Debug, Clone)]
pub struct Zone {
    origin: Name,
    serial: u32,
    dry_run: bool,
    entries: BTreeMap<String, Entry>,
}

const TTL: u32 = 60;

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

    /// The entries.
    pub fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.entries.values()
    }

    fn bump(&mut self) {
        self.serial = self.serial.wrapping_add(1).max(1);
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
        self.entries.insert(key, e);
        self.bump();
        Ok(true)
    }

    /// Removes the entry an action put there; returns whether the zone changed.
    pub fn remove(&mut self, name: &str, action_id: &str) -> bool {
        let key = normalize(name);
        if self.entries.get(&key).is_some_and(|e| e.action_id == action_id) {
            self.entries.remove(&key);
            self.bump();
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
        self.entries = new;
        self.bump();
        true
    }

    /// Drops entries whose expiry passed; returns the ones dropped.
    pub fn purge_expired(&mut self, now: Timestamp) -> Vec<Entry> {
        let gone: Vec<String> =
            self.entries.values().filter(|e| e.expires.is_some_and(|x| x <= now)).map(|e| e.name.clone()).collect();
        let out: Vec<Entry> = gone.iter().filter_map(|k| self.entries.remove(k)).collect();
        if !out.is_empty() {
            self.bump();
        }
        out
    }

    fn owner(&self, key: &str, wildcard: bool) -> Result<Name, BadName> {
        let rel = if wildcard { format!("*.{key}") } else { key.to_owned() };
        Name::from_ascii(&rel).and_then(|n| n.append_name(&self.origin)).map_err(|_| BadName(key.to_owned()))
    }

    /// The SOA record.
    pub fn soa(&self) -> Record {
        let mname = Name::from_ascii("localhost.").unwrap_or_else(|_| Name::root());
        let rname = Name::from_ascii("hostmaster.localhost.").unwrap_or_else(|_| Name::root());
        Record::from_rdata(self.origin.clone(), TTL, RData::SOA(SOA::new(mname, rname, self.serial, 60, 30, 86400, 60)))
    }

    /// Every record of the zone except the closing SOA: SOA, NS, then the policy records.
    pub fn records(&self) -> Vec<Record> {
        let target = if self.dry_run {
            Name::from_ascii("rpz-passthru.").unwrap_or_else(|_| Name::root())
        } else {
            Name::root()
        };
        let mut out = Vec::with_capacity(2 + 2 * self.entries.len());
        out.push(self.soa());
        let ns = Name::from_ascii("localhost.").unwrap_or_else(|_| Name::root());
        out.push(Record::from_rdata(self.origin.clone(), TTL, RData::NS(NS(ns))));
        for e in self.entries.values() {
            if let Ok(n) = self.owner(&e.name, false) {
                out.push(Record::from_rdata(n, TTL, RData::CNAME(CNAME(target.clone()))));
            }
            if e.subtree {
                if let Ok(n) = self.owner(&e.name, true) {
                    out.push(Record::from_rdata(n, TTL, RData::CNAME(CNAME(target.clone()))));
                }
            }
        }
        out
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
}
