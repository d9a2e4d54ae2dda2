//! Enforcement in Kamailio: the `phone.*` actions as htable entries that
//! `examples/kamailio/kamailio.cfg` consults on every call.
//!
//! | measure | htable | key |
//! |---|---|---|
//! | `phone.suspend-line-on-surge`, `phone.suspend-on-request`, `phone.suspend-dormant` | `mamori_lines` | line id (the authenticated SIP user) |
//! | `phone.suspend-sip-auth-from-ip` | `mamori_ips` | source address (canonical text form) |
//! | `phone.restrict-country` | `mamori_countries` | country calling code (1–3 digits) |
//!
//! Several actions may block the same key (a line suspended on its subscriber's request and on a
//! surge): the entry's value is the sorted, comma-separated set of the ids of the actions that put
//! it there, so removing one action keeps the block while another holds it, and the state survives a
//! restart of mamori without any bookkeeping here. [`Actuator::reconcile`] dumps each table and makes
//! it equal to what governance says is in force: orphans are deleted, missing entries re-added.
//!
//! Errors and logs name the action, the measure and the table, never the key: keys are
//! subscriber data.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

use mamori_core::action::ActionRecord;
use mamori_core::actuator::{Actuator, ActuatorError};
use mamori_core::authorization::Authorization;
use mamori_core::catalog::MeasureId;
use mamori_core::subject::Target;
use serde_json::Value;

use crate::jsonrpc::{RpcClient, RpcError};

/// The names of the three htables (those of `examples/kamailio/kamailio.cfg` by default).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tables {
    /// Lines whose international calls are suspended.
    pub lines: String,
    /// Source addresses whose SIP authentication is suspended.
    pub ips: String,
    /// Restricted country calling codes.
    pub countries: String,
}

impl Default for Tables {
    fn default() -> Self {
        Tables { lines: "mamori_lines".into(), ips: "mamori_ips".into(), countries: "mamori_countries".into() }
    }
}

/// Which of the three tables a measure writes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Table {
    Lines,
    Ips,
    Countries,
}

impl Table {
    const ALL: [Table; 3] = [Table::Lines, Table::Ips, Table::Countries];

    fn of(measure: MeasureId) -> Option<Table> {
        match measure {
            MeasureId::PhoneSuspendLineOnSurge | MeasureId::PhoneSuspendOnRequest | MeasureId::PhoneSuspendDormant => {
                Some(Table::Lines)
            }
            MeasureId::PhoneSuspendSipAuthFromIp => Some(Table::Ips),
            MeasureId::PhoneRestrictCountry => Some(Table::Countries),
            _ => None,
        }
    }
}

/// Default timeout of one JSON-RPC call.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// The Kamailio actuator: `apply` = `htable.sets`, `remove` = `htable.delete` (or a smaller set),
/// `reconcile` = `htable.dump` and repair.
#[derive(Debug)]
pub struct KamailioActuator {
    rpc: RpcClient,
    tables: Tables,
    /// Serializes read-modify-write sequences on entries (the engine applies while a
    /// reconciliation or the scheduler runs).
    lock: Mutex<()>,
}

/// What a reconciliation changed, per table.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ReconcileCounts {
    /// Entries added (missing in Kamailio).
    pub added: usize,
    /// Entries whose set of actions was corrected.
    pub updated: usize,
    /// Orphan entries deleted.
    pub removed: usize,
    /// Entries already right.
    pub unchanged: usize,
}

impl KamailioActuator {
    /// An actuator talking to Kamailio's JSON-RPC endpoint (e.g. `http://127.0.0.1:5071/RPC`),
    /// with the default table names and timeout.
    pub fn new(jsonrpc_url: &str) -> Self {
        Self::with(jsonrpc_url, Tables::default(), DEFAULT_TIMEOUT)
    }

    /// An actuator with other table names or another timeout per call.
    pub fn with(jsonrpc_url: &str, tables: Tables, timeout: Duration) -> Self {
        KamailioActuator { rpc: RpcClient::new(jsonrpc_url, timeout), tables, lock: Mutex::new(()) }
    }

    /// The JSON-RPC endpoint.
    pub fn url(&self) -> &str {
        self.rpc.url()
    }

    fn table_name(&self, t: Table) -> &str {
        match t {
            Table::Lines => &self.tables.lines,
            Table::Ips => &self.tables.ips,
            Table::Countries => &self.tables.countries,
        }
    }

    /// Where an action lives: its table and key.
    fn slot(&self, measure: MeasureId, target: &Target, action_id: &str) -> Result<(Table, String), ActuatorError> {
        let table = Table::of(measure).ok_or(ActuatorError::Unsupported(measure))?;
        let refused = |what: &str| ActuatorError::Refused(format!("action {action_id} ({measure}): {what}"));
        valid_action_id(action_id).map_err(refused)?;
        let key = match (table, target) {
            (Table::Lines, Target::Line(id)) => {
                valid_line_id(id).map_err(refused)?;
                id.clone()
            }
            (Table::Ips, Target::Ip(addr)) => {
                addr.parse::<IpAddr>().map_err(|_| refused("the target is not an IP address"))?.to_string()
            }
            (Table::Countries, Target::Country(code)) => {
                valid_calling_code(code).map_err(refused)?;
                code.clone()
            }
            (_, t) => return Err(refused(&format!("Kamailio cannot enforce it on a {} target", t.kind()))),
        };
        Ok((table, key))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ()> {
        // A panic while holding the lock leaves no broken state behind (every step is one RPC).
        self.lock.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The action ids held under `key`, if any.
    fn get(&self, table: Table, key: &str) -> Result<Option<BTreeSet<String>>, ActuatorError> {
        let name = self.table_name(table);
        match self.rpc.call("htable.get", &[name, key]) {
            Ok(v) => {
                let value = v.get("item").and_then(|i| i.get("value")).ok_or_else(|| {
                    ActuatorError::Refused(format!("Kamailio htable.get on {name}: the answer has no item.value"))
                })?;
                Ok(Some(parse_ids(value)))
            }
            Err(RpcError::Server { message, .. }) if message.contains("doesn't exist") => Ok(None),
            Err(e) => Err(self.map_err(table, e)),
        }
    }

    fn set(&self, table: Table, key: &str, ids: &BTreeSet<String>) -> Result<(), ActuatorError> {
        let value = ids.iter().map(String::as_str).collect::<Vec<_>>().join(",");
        self.rpc
            .call("htable.sets", &[self.table_name(table), key, &value])
            .map(|_| ())
            .map_err(|e| self.map_err(table, e))
    }

    fn delete(&self, table: Table, key: &str) -> Result<(), ActuatorError> {
        match self.rpc.call("htable.delete", &[self.table_name(table), key]) {
            Ok(_) => Ok(()),
            // Already gone: the goal is reached.
            Err(RpcError::Server { code: 404, .. }) => Ok(()),
            Err(e) => Err(self.map_err(table, e)),
        }
    }

    /// Every entry of a table: key → action ids.
    fn dump(&self, table: Table) -> Result<BTreeMap<String, BTreeSet<String>>, ActuatorError> {
        let name = self.table_name(table);
        let v = self.rpc.call("htable.dump", &[name]).map_err(|e| self.map_err(table, e))?;
        let bad = || ActuatorError::Refused(format!("Kamailio htable.dump of {name}: unexpected answer"));
        let mut out = BTreeMap::new();
        for slot in v.as_array().ok_or_else(bad)? {
            for item in slot.get("slot").and_then(Value::as_array).ok_or_else(bad)? {
                let key = item.get("name").and_then(Value::as_str).ok_or_else(bad)?;
                let value = item.get("value").ok_or_else(bad)?;
                out.insert(key.to_owned(), parse_ids(value));
            }
        }
        Ok(out)
    }

    fn map_err(&self, table: Table, e: RpcError) -> ActuatorError {
        match e {
            RpcError::Unavailable { .. } => ActuatorError::PeerUnavailable(e.to_string()),
            RpcError::Server { ref message, .. } if message.contains("No such htable") => {
                ActuatorError::Refused(format!(
                    "Kamailio has no htable `{}`: is it running mamori's kamailio.cfg (examples/kamailio)?",
                    self.table_name(table)
                ))
            }
            _ => ActuatorError::Refused(e.to_string()),
        }
    }

    /// Makes Kamailio's tables hold exactly these actions; returns what changed per table.
    ///
    /// Every table is repaired as far as possible; the first error is returned at the end.
    pub fn reconcile_counts(
        &self,
        in_force: &[&Authorization],
    ) -> Result<BTreeMap<String, ReconcileCounts>, ActuatorError> {
        let mut want: BTreeMap<Table, BTreeMap<String, BTreeSet<String>>> = BTreeMap::new();
        let mut first_err = None;
        for auth in in_force {
            if Table::of(auth.measure()).is_none() {
                continue;
            }
            match self.slot(auth.measure(), auth.target(), auth.action_id()) {
                Ok((t, key)) => {
                    want.entry(t).or_default().entry(key).or_default().insert(auth.action_id().to_owned());
                }
                Err(e) => {
                    tracing::warn!(action = auth.action_id(), measure = %auth.measure(), error = %e, "cannot enforce an action in force in Kamailio");
                    first_err.get_or_insert(e);
                }
            }
        }
        let _guard = self.lock();
        let mut counts = BTreeMap::new();
        for t in Table::ALL {
            let mut c = ReconcileCounts::default();
            let result = (|| {
                let have = self.dump(t)?;
                let empty = BTreeMap::new();
                let wanted = want.get(&t).unwrap_or(&empty);
                for key in have.keys().filter(|k| !wanted.contains_key(*k)) {
                    self.delete(t, key)?;
                    c.removed += 1;
                }
                for (key, ids) in wanted {
                    match have.get(key) {
                        Some(h) if h == ids => c.unchanged += 1,
                        Some(_) => {
                            self.set(t, key, ids)?;
                            c.updated += 1;
                        }
                        None => {
                            self.set(t, key, ids)?;
                            c.added += 1;
                        }
                    }
                }
                Ok::<_, ActuatorError>(())
            })();
            let name = self.table_name(t);
            match result {
                Ok(()) if c.added + c.updated + c.removed > 0 => tracing::info!(
                    table = name,
                    added = c.added,
                    updated = c.updated,
                    removed = c.removed,
                    unchanged = c.unchanged,
                    "Kamailio htable reconciled"
                ),
                Ok(()) => tracing::debug!(table = name, unchanged = c.unchanged, "Kamailio htable already in line"),
                Err(e) => {
                    tracing::warn!(table = name, error = %e, "Kamailio htable reconciliation failed");
                    first_err.get_or_insert(e);
                }
            }
            counts.insert(name.to_owned(), c);
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(counts),
        }
    }
}

impl Actuator for KamailioActuator {
    fn name(&self) -> &str {
        "kamailio"
    }

    fn handles(&self, measure: MeasureId) -> bool {
        Table::of(measure).is_some()
    }

    fn apply(&self, auth: &Authorization) -> Result<(), ActuatorError> {
        let (t, key) = self.slot(auth.measure(), auth.target(), auth.action_id())?;
        let _guard = self.lock();
        let mut ids = self.get(t, &key)?.unwrap_or_default();
        ids.insert(auth.action_id().to_owned());
        self.set(t, &key, &ids)?;
        tracing::info!(action = auth.action_id(), measure = %auth.measure(), table = self.table_name(t), holders = ids.len(), "applied in Kamailio");
        Ok(())
    }

    fn remove(&self, action: &ActionRecord) -> Result<(), ActuatorError> {
        let (t, key) = self.slot(action.measure, &action.target, &action.id)?;
        let _guard = self.lock();
        let Some(mut ids) = self.get(t, &key)? else {
            tracing::info!(action = %action.id, measure = %action.measure, table = self.table_name(t), "not in Kamailio: nothing to remove");
            return Ok(());
        };
        ids.remove(&action.id);
        if ids.is_empty() {
            self.delete(t, &key)?;
        } else {
            // Another action still holds this key.
            self.set(t, &key, &ids)?;
        }
        tracing::info!(action = %action.id, measure = %action.measure, table = self.table_name(t), still_held_by = ids.len(), "removed from Kamailio");
        Ok(())
    }

    fn reconcile(&self, in_force: &[&Authorization]) -> Result<(), ActuatorError> {
        self.reconcile_counts(in_force).map(|_| ())
    }
}

/// The action ids in an entry's value (any other value — an entry set by hand — is one opaque id,
/// so it still blocks until reconciliation removes it).
fn parse_ids(value: &Value) -> BTreeSet<String> {
    let text = match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    text.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect()
}

fn valid_action_id(id: &str) -> Result<(), &'static str> {
    if id.is_empty() || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
        return Err("the action id is not usable as an htable value");
    }
    Ok(())
}

/// A line id as Kamailio sees it in `$au`: printable ASCII, no whitespace, no `[`/`]` (htable array
/// syntax) and no `,`.
fn valid_line_id(id: &str) -> Result<(), &'static str> {
    if id.is_empty() || id.len() > 128 {
        return Err("the line id is empty or longer than 128 bytes");
    }
    if !id.bytes().all(|b| b.is_ascii_graphic() && !matches!(b, b'[' | b']' | b',')) {
        return Err("the line id has characters a SIP user name in Kamailio's htable can't hold");
    }
    Ok(())
}

/// An ITU-T calling code: 1–3 digits, not starting with 0.
fn valid_calling_code(code: &str) -> Result<(), &'static str> {
    if code.is_empty() || code.len() > 3 || !code.bytes().all(|b| b.is_ascii_digit()) || code.starts_with('0') {
        return Err("Kamailio restricts countries by calling code (1–3 digits), not by this target");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn measures_map_to_tables() {
        assert_eq!(Table::of(MeasureId::PhoneSuspendLineOnSurge), Some(Table::Lines));
        assert_eq!(Table::of(MeasureId::PhoneSuspendOnRequest), Some(Table::Lines));
        assert_eq!(Table::of(MeasureId::PhoneSuspendDormant), Some(Table::Lines));
        assert_eq!(Table::of(MeasureId::PhoneSuspendSipAuthFromIp), Some(Table::Ips));
        assert_eq!(Table::of(MeasureId::PhoneRestrictCountry), Some(Table::Countries));
        assert_eq!(Table::of(MeasureId::PhoneAdviseUsers), None);
        assert_eq!(Table::of(MeasureId::DdosBlockToProtectNetwork), None);
    }

    #[test]
    fn keys_are_validated_and_canonical() {
        let a = KamailioActuator::new("http://127.0.0.1:1/RPC");
        let m = MeasureId::PhoneSuspendSipAuthFromIp;
        let (_, k) = a.slot(m, &Target::Ip("2001:DB8:0:0::7".into()), "A1").unwrap();
        assert_eq!(k, "2001:db8::7");
        assert!(a.slot(m, &Target::Ip("not-an-ip".into()), "A1").is_err());
        assert!(a.slot(m, &Target::Line("0312345678".into()), "A1").is_err());
        let c = MeasureId::PhoneRestrictCountry;
        assert!(a.slot(c, &Target::Country("882".into()), "A1").is_ok());
        for bad in ["GB", "0", "8821", "", "08"] {
            assert!(a.slot(c, &Target::Country(bad.into()), "A1").is_err(), "{bad}");
        }
        let l = MeasureId::PhoneSuspendOnRequest;
        assert!(a.slot(l, &Target::Line("0312345678".into()), "A20261124-abc").is_ok());
        assert!(a.slot(l, &Target::Line("a b".into()), "A1").is_err());
        assert!(a.slot(l, &Target::Line("x[0]".into()), "A1").is_err());
        assert!(a.slot(l, &Target::Line("0312345678".into()), "A,1").is_err());
        assert!(matches!(
            a.slot(MeasureId::PhoneAdviseUsers, &Target::Network, "A1"),
            Err(ActuatorError::Unsupported(_))
        ));
    }

    #[test]
    fn errors_name_no_target() {
        let a = KamailioActuator::new("http://127.0.0.1:1/RPC");
        let e = a.slot(MeasureId::PhoneSuspendSipAuthFromIp, &Target::Ip("secret-ish".into()), "A1").unwrap_err();
        assert!(!e.to_string().contains("secret-ish"), "{e}");
        let e = a.slot(MeasureId::PhoneSuspendOnRequest, &Target::Line("03 1234".into()), "A1").unwrap_err();
        assert!(!e.to_string().contains("03 1234"), "{e}");
    }

    #[test]
    fn values_are_sets_of_action_ids() {
        assert_eq!(parse_ids(&json!("A2,A1")), BTreeSet::from(["A1".to_owned(), "A2".to_owned()]));
        assert_eq!(parse_ids(&json!("")), BTreeSet::new());
        assert_eq!(parse_ids(&json!(1)), BTreeSet::from(["1".to_owned()]));
    }

    #[test]
    fn an_unreachable_kamailio_is_unavailable_not_refused() {
        // Port 1 on loopback: nothing listens there.
        let a = KamailioActuator::with("http://127.0.0.1:1/RPC", Tables::default(), Duration::from_secs(2));
        let e = a.get(Table::Lines, "0312345678").unwrap_err();
        assert!(matches!(e, ActuatorError::PeerUnavailable(_)), "{e}");
        assert!(!e.to_string().contains("0312345678"));
    }
}
