//! The store and the index together: events in, durable rows, index updated, lookups out.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use jiff::Timestamp;

use crate::db::{DbError, SessionDb};
use crate::index::{Index, unix_secs};
use crate::radius::StatusType;
use crate::session::{AcctEvent, SessionKey, SessionRow};

/// User-Name → subscriber id. Names it doesn't list are their own subscriber id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SubscriberMap(HashMap<String, String>);

/// A bad line of a subscriber map file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}:{line}: {detail}")]
pub struct MapError {
    /// The file.
    pub path: String,
    /// 1-based line.
    pub line: usize,
    /// What is wrong.
    pub detail: String,
}

impl SubscriberMap {
    /// Reads CSV `user_name,subscriber_id` with that header.
    pub fn load(path: &Path) -> Result<SubscriberMap, MapError> {
        let text = std::fs::read_to_string(path).map_err(|e| MapError {
            path: path.display().to_string(),
            line: 0,
            detail: e.to_string(),
        })?;
        SubscriberMap::parse(&text, &path.display().to_string())
    }

    /// Parses the CSV text.
    pub fn parse(text: &str, origin: &str) -> Result<SubscriberMap, MapError> {
        let err = |line, detail: &str| MapError { path: origin.to_owned(), line, detail: detail.to_owned() };
        let mut lines = text.lines().enumerate();
        match lines.next() {
            Some((_, h)) if h.trim().trim_start_matches('\u{feff}') == "user_name,subscriber_id" => {}
            _ => return Err(err(1, "header must be `user_name,subscriber_id`")),
        }
        let mut map = HashMap::new();
        for (i, line) in lines {
            if line.trim().is_empty() {
                continue;
            }
            let Some((u, s)) = line.split_once(',') else { return Err(err(i + 1, "expected two columns")) };
            let (u, s) = (u.trim(), s.trim());
            if u.is_empty() || s.is_empty() || s.contains(',') {
                return Err(err(i + 1, "expected two non-empty columns"));
            }
            map.insert(u.to_owned(), s.to_owned());
        }
        Ok(SubscriberMap(map))
    }

    /// The subscriber id of a User-Name.
    pub fn subscriber<'a>(&'a self, user_name: &'a str) -> &'a str {
        self.0.get(user_name).map_or(user_name, |s| s.as_str())
    }
}

/// How sessions are built from events.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Interim interval (seconds) for sessions whose accounting carries none.
    pub default_interim: u32,
    /// User-Name → subscriber id.
    pub subscribers: SubscriberMap,
}

impl Settings {
    /// From `[attribution]`: its subscriber map file (if any) and default interim interval.
    pub fn from_config(a: &mamori_core::config::AttributionConfig) -> Result<Settings, MapError> {
        let subscribers = match &a.subscribers_file {
            Some(p) => SubscriberMap::load(p)?,
            None => SubscriberMap::default(),
        };
        let default_interim = u32::try_from(a.interim_default.as_secs().max(1)).unwrap_or(u32::MAX);
        Ok(Settings { default_interim, subscribers })
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings { default_interim: 600, subscribers: SubscriberMap::default() }
    }
}

/// What a batch of events did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Applied {
    /// Sessions written (new or changed).
    pub written: usize,
    /// Events that changed nothing (retransmissions).
    pub unchanged: usize,
    /// Events without what a session needs (Acct-Session-Id, User-Name) or of other kinds.
    pub ignored: usize,
    /// Sessions closed by an Accounting-On/Off of their NAS.
    pub closed_by_nas: usize,
}

/// Sessions on disk and in memory.
#[derive(Debug)]
pub struct Attributor {
    db: SessionDb,
    index: Arc<RwLock<Index>>,
    settings: Settings,
}

/// The sessions of a store in a compacted index: all of them, or only those covering an instant
/// (Unix seconds), which is all a single lookup needs.
pub fn index_of(db: &SessionDb, covering: Option<u32>) -> Result<Index, DbError> {
    let mut index = Index::new();
    match covering {
        Some(at) => db.for_each_covering(at, |row| index.insert(&row))?,
        None => db.for_each(|row| index.insert(&row))?,
    }
    index.compact();
    Ok(index)
}

/// [`index_of`] the store at `path`, opened read-only (beside a running server that writes it).
pub fn load_index(path: &Path, covering: Option<u32>) -> Result<Index, DbError> {
    index_of(&SessionDb::open_read_only(path)?, covering)
}

/// The store's file in a data directory.
pub fn store_path(data_dir: &Path) -> PathBuf {
    data_dir.join("attribution.sqlite")
}

fn write(ix: &RwLock<Index>) -> RwLockWriteGuard<'_, Index> {
    ix.write().unwrap_or_else(|p| p.into_inner())
}

/// Reads the shared index (a poisoned lock is still read: the index is never left half-updated
/// by a panic in a lookup).
pub fn read(ix: &RwLock<Index>) -> RwLockReadGuard<'_, Index> {
    ix.read().unwrap_or_else(|p| p.into_inner())
}

impl Attributor {
    /// Opens the store and loads every session into the index.
    pub fn open(path: &Path, settings: Settings) -> Result<Attributor, DbError> {
        let db = SessionDb::open(path)?;
        let index = index_of(&db, None)?;
        Ok(Attributor { db, index: Arc::new(RwLock::new(index)), settings })
    }

    /// Opens the store without loading the index: for writing (imports), where the index built
    /// holds only what is written.
    pub fn open_for_writes(path: &Path, settings: Settings) -> Result<Attributor, DbError> {
        Ok(Attributor { db: SessionDb::open(path)?, index: Arc::new(RwLock::new(Index::new())), settings })
    }

    /// The shared index (read it with [`read`]).
    pub fn index(&self) -> &Arc<RwLock<Index>> {
        &self.index
    }

    /// The store.
    pub fn db(&self) -> &SessionDb {
        &self.db
    }

    /// Applies events in one transaction; the index changes only once it committed. On error
    /// nothing is applied (the RADIUS server then doesn't answer, and the NAS retransmits).
    pub fn apply(&mut self, events: &[AcctEvent]) -> Result<Applied, DbError> {
        let mut out = Applied::default();
        // key → (row as stored before this batch, row now)
        let mut changes: Vec<(Option<SessionRow>, SessionRow)> = Vec::new();
        let mut at: HashMap<SessionKey, usize> = HashMap::new();
        let path = self.db.path().to_owned();
        let default_interim = self.settings.default_interim;
        {
            let tx = self.db.begin()?;
            for ev in events {
                match ev.status {
                    StatusType::Start | StatusType::Stop | StatusType::InterimUpdate => {
                        let (Some(key), Some(user)) = (ev.key(), ev.user_name.as_deref()) else {
                            out.ignored += 1;
                            continue;
                        };
                        let subscriber = self.settings.subscribers.subscriber(user);
                        let i = match at.get(&key) {
                            Some(&i) => i,
                            None => {
                                let stored = SessionDb::get(&tx, &path, &key)?;
                                let row = stored
                                    .clone()
                                    .unwrap_or_else(|| SessionRow::merge(None, key, ev, subscriber, default_interim));
                                changes.push((stored, row));
                                at.insert(key, changes.len() - 1);
                                changes.len() - 1
                            }
                        };
                        let merged = SessionRow::merge(Some(&changes[i].1), key, ev, subscriber, default_interim);
                        if merged == changes[i].1 && changes[i].0.is_some() {
                            out.unchanged += 1;
                        }
                        changes[i].1 = merged;
                    }
                    StatusType::AccountingOn | StatusType::AccountingOff => {
                        for stored in SessionDb::open_of_nas(&tx, &path, &ev.nas, ev.time)? {
                            if !at.contains_key(&stored.key) {
                                let key = stored.key;
                                changes.push((Some(stored.clone()), stored));
                                at.insert(key, changes.len() - 1);
                            }
                        }
                        for (_, row) in changes.iter_mut() {
                            if row.nas == ev.nas && row.stop.is_none() && row.start <= ev.time {
                                *row = row.closed_at(ev.time);
                                out.closed_by_nas += 1;
                            }
                        }
                    }
                    StatusType::Other(_) => out.ignored += 1,
                }
            }
            for (before, now) in &changes {
                if before.as_ref() != Some(now) {
                    SessionDb::put(&tx, &path, now)?;
                    out.written += 1;
                }
            }
            tx.commit().map_err(|source| DbError::Sqlite { path: path.clone(), source })?;
        }
        let mut ix = write(&self.index);
        for (before, now) in &changes {
            if before.as_ref() != Some(now) {
                ix.update(before.as_ref(), now);
            }
        }
        Ok(out)
    }

    /// Deletes sessions that ended before `cutoff`, on disk and in memory. Returns the sessions
    /// deleted and the range of their ends.
    pub fn retain(&mut self, cutoff: Timestamp) -> Result<(usize, Option<(u32, u32)>), DbError> {
        let r = self.db.delete_ended_before(unix_secs(cutoff))?;
        write(&self.index).retain(cutoff);
        Ok(r)
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;
    use crate::index::Attribution;

    fn ev(status: StatusType, user: &str, sid: &str, time: u32, ip: [u8; 4]) -> AcctEvent {
        AcctEvent {
            status,
            user_name: Some(user.into()),
            session_id: Some(sid.as_bytes().to_vec()),
            nas: "192.0.2.1".into(),
            time,
            interim: Some(300),
            session_time: None,
            framed_ipv4: Some(Ipv4Addr::from(ip)),
            port_blocks: vec![],
            ipv6: vec![],
        }
    }

    fn who(a: &Attributor, ip: [u8; 4], t: u32) -> Attribution<String> {
        let ix = read(a.index());
        match ix.resolve(&ix.lookup_v4_secs(Ipv4Addr::from(ip), None, t)) {
            Attribution::Unique(s) => Attribution::Unique(s.0),
            Attribution::Ambiguous(v) => Attribution::Ambiguous(v.into_iter().map(|s| s.0).collect()),
            Attribution::Unknown => Attribution::Unknown,
        }
    }

    #[test]
    fn restart_loses_nothing_and_nas_reboot_closes_sessions() {
        let dir = tempfile::tempdir().unwrap();
        let path = store_path(dir.path());
        let ip = [198, 51, 100, 7];
        let settings = Settings {
            subscribers: SubscriberMap::parse("user_name,subscriber_id\nalice@isp,S-1\n", "m").unwrap(),
            ..Settings::default()
        };
        {
            let mut a = Attributor::open(&path, settings.clone()).unwrap();
            let r = a.apply(&[ev(StatusType::Start, "alice@isp", "1", 1000, ip)]).unwrap();
            assert_eq!(r.written, 1);
            // A retransmission changes nothing.
            let r = a.apply(&[ev(StatusType::Start, "alice@isp", "1", 1000, ip)]).unwrap();
            assert_eq!((r.written, r.unchanged), (0, 1));
            a.apply(&[ev(StatusType::InterimUpdate, "alice@isp", "1", 2000, ip)]).unwrap();
            assert_eq!(who(&a, ip, 2500), Attribution::Unique("S-1".into()));
        }
        let mut a = Attributor::open(&path, settings).unwrap();
        assert_eq!(who(&a, ip, 2500), Attribution::Unique("S-1".into()));
        assert_eq!(who(&a, ip, 2600), Attribution::Unknown);
        // The NAS reboots at 2100: the session ends there.
        let on = AcctEvent {
            status: StatusType::AccountingOn,
            user_name: None,
            session_id: None,
            ..ev(StatusType::Start, "", "", 2100, ip)
        };
        let r = a.apply(&[on]).unwrap();
        assert_eq!(r.closed_by_nas, 1);
        assert_eq!(who(&a, ip, 2099), Attribution::Unique("S-1".into()));
        assert_eq!(who(&a, ip, 2100), Attribution::Unknown);
        // Retention.
        let (n, range) = a.retain(Timestamp::from_second(3000).unwrap()).unwrap();
        assert_eq!((n, range), (1, Some((2100, 2100))));
        assert_eq!(who(&a, ip, 2000), Attribution::Unknown);
    }

    #[test]
    fn events_in_one_batch_build_on_each_other() {
        let dir = tempfile::tempdir().unwrap();
        let mut a = Attributor::open(&store_path(dir.path()), Settings::default()).unwrap();
        let ip = [198, 51, 100, 8];
        let r = a
            .apply(&[
                ev(StatusType::Start, "bob", "9", 1000, ip),
                ev(StatusType::Stop, "bob", "9", 1500, ip),
                ev(StatusType::Start, "carol", "10", 1500, ip),
                AcctEvent { user_name: None, ..ev(StatusType::Start, "x", "11", 1500, ip) },
            ])
            .unwrap();
        assert_eq!((r.written, r.ignored), (2, 1));
        assert_eq!(who(&a, ip, 1499), Attribution::Unique("bob".into()));
        assert_eq!(who(&a, ip, 1500), Attribution::Unique("carol".into()));
    }

    #[test]
    fn subscriber_map_errors_name_the_line() {
        let e = SubscriberMap::parse("user_name,subscriber_id\nalice\n", "m.csv").unwrap_err();
        assert_eq!(e.to_string(), "m.csv:2: expected two columns");
        assert!(SubscriberMap::parse("user,sub\n", "m.csv").is_err());
    }
}
