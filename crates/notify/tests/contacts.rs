//! The subscriber directory's CSV import: good rows in, bad rows reported by line, bad files refused.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::Arc;

use mamori_core::clock::WallClock;
use mamori_core::config::Config;
use mamori_core::governance::Governance;
use mamori_core::store::{LedgerFilter, Store};
use mamori_core::subject::{Actor, SubscriberId};
use mamori_notify::contacts::{ImportError, import};
use mamori_store::{SqliteStore, StoreOptions};

fn gov() -> (tempfile::TempDir, Governance, Arc<SqliteStore>) {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(&dir.path().join("m.sqlite"), StoreOptions::default()).unwrap());
    let gov = Governance::new(store.clone(), Arc::new(WallClock), Arc::new(Config::default())).unwrap();
    (dir, gov, store)
}

#[test]
fn good_rows_are_imported_and_bad_ones_reported_by_line() {
    let (_d, gov, store) = gov();
    let mut csv = b"\xef\xbb\xbfsubscriber_id,email,language\n".to_vec();
    csv.extend_from_slice(b"S1,a@example.jp,ja\n");
    csv.extend_from_slice(b"S2,b@example.com,EN\n");
    csv.extend_from_slice(b"S3,,\n");
    csv.extend_from_slice(b"S4,not-an-address,ja\n");
    csv.extend_from_slice(b"S5,c@example.jp,fr\n");
    csv.extend_from_slice(b"S6,c@example.jp\n");
    csv.extend_from_slice(b"S7,\x83\x65\x83\x58\x83\x67@example.jp,ja\n"); // Shift_JIS
    csv.extend_from_slice(b"\n");
    csv.extend_from_slice(b"S8,d@example.jp,en-US\n");
    let r = import(&gov, &csv[..], "dir.csv", &Actor("sato".into())).unwrap();
    assert_eq!(r.imported, 4, "{r:?}");
    let lines: Vec<_> = r.rejected.iter().map(|e| e.line).collect();
    assert_eq!(lines, [5, 6, 7, 8]);
    assert!(r.rejected[3].reason.contains("not UTF-8"), "{:?}", r.rejected[3]);
    for e in &r.rejected {
        assert!(!e.reason.contains("example.jp") && !e.reason.contains("not-an-address"), "no address in: {e:?}");
    }
    let c = store.contact(&SubscriberId("S2".into())).unwrap().unwrap();
    assert_eq!((c.email.as_deref(), c.language.as_str()), (Some("b@example.com"), "en"));
    let c = store.contact(&SubscriberId("S3".into())).unwrap().unwrap();
    assert_eq!((c.email, c.language.as_str()), (None, "ja"));
    assert!(store.contact(&SubscriberId("S4".into())).unwrap().is_none());
    let shown = format!("{:?}", store.contact(&SubscriberId("S1".into())).unwrap().unwrap());
    assert!(!shown.contains('@') && shown.contains("redacted"), "{shown}");
    // the ledger has counts only
    let mut bodies = Vec::new();
    store
        .export_ledger(&LedgerFilter::default(), &mut |e| {
            bodies.push((e.kind, e.body));
            Ok(())
        })
        .unwrap();
    assert_eq!(bodies.len(), 1);
    assert_eq!(bodies[0].0, "contacts-imported");
    assert!(!bodies[0].1.contains('@'), "{}", bodies[0].1);
    // re-importing replaces
    import(&gov, &b"subscriber_id,email,language\nS2,new@example.com,ja\n"[..], "x", &Actor("sato".into())).unwrap();
    let c = store.contact(&SubscriberId("S2".into())).unwrap().unwrap();
    assert_eq!((c.email.as_deref(), c.language.as_str()), (Some("new@example.com"), "ja"));
}

#[test]
fn a_wrong_header_imports_nothing() {
    let (_d, gov, store) = gov();
    for bad in [&b"id,mail,lang\nS1,a@example.jp,ja\n"[..], b"", b"S1,a@example.jp,ja\n"] {
        let e = import(&gov, bad, "dir.csv", &Actor("sato".into())).unwrap_err();
        assert!(matches!(e, ImportError::Header { .. }), "{e}");
        assert!(e.to_string().contains("dir.csv:1"), "{e}");
    }
    assert!(store.contact(&SubscriberId("S1".into())).unwrap().is_none());
}
