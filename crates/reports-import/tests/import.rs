//! The pipeline on a real store: ambiguous and unmatched rows listed, repeated rows in one report
//! and re-imports counted as duplicates, opted-out subscribers dropped by the gate (no finding,
//! no proposal), a disabled measure refused before anything is written, Shift_JIS reports
//! converted and undecodable ones refused whole.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::net::Ipv4Addr;
use std::sync::Arc;

use mamori_attribution::Index;
use mamori_attribution::radius::PortBlock;
use mamori_attribution::session::{SessionKey, SessionRow};
use mamori_core::catalog::MeasureId;
use mamori_core::clock::WallClock;
use mamori_core::config::Config;
use mamori_core::governance::Governance;
use mamori_core::store::OutboxMessage;
use mamori_core::subject::{Actor, SubscriberId};
use mamori_reports_import::format::{Format, Kind};
use mamori_reports_import::import::Report;
use mamori_reports_import::{Encoding, ImportError, SeenDb, import};
use mamori_store::{SqliteStore, StoreOptions};

/// 2026-11-24T00:00:00Z
const T: u32 = 1_795_478_400;

fn session(sub: &str, start: u32, end: u32, v4: Option<[u8; 4]>, block: Option<([u8; 4], u16, u16)>) -> SessionRow {
    SessionRow {
        key: SessionKey::new("nas", sub.as_bytes(), sub),
        subscriber: sub.into(),
        nas: "nas".into(),
        start,
        last: start,
        interim: 600,
        stop: Some(end),
        framed_ipv4: v4.map(Ipv4Addr::from),
        port_blocks: block
            .map(|(a, first, last)| vec![PortBlock { public: Ipv4Addr::from(a), first, last }])
            .unwrap_or_default(),
        ipv6: vec![],
    }
}

fn setup() -> (tempfile::TempDir, Governance, SeenDb, Index) {
    let dir = tempfile::tempdir().unwrap();
    let config = Config { data_dir: dir.path().to_path_buf(), ..Config::default() };
    let store = Arc::new(SqliteStore::open(&config.database_path(), StoreOptions::default()).unwrap());
    let gov = Governance::new(store, Arc::new(WallClock), Arc::new(config)).unwrap();
    let seen = SeenDb::open(&dir.path().join("reports-import.sqlite")).unwrap();
    let mut index = Index::new();
    // S1 holds 198.51.100.1 all day; S2 and S3 overlap on 198.51.100.2 (a lost Stop); S4 holds
    // a CGNAT port block of 203.0.113.1 and S5 the next one.
    index.insert(&session("S1", T, T + 86_400, Some([198, 51, 100, 1]), None));
    index.insert(&session("S2", T, T + 86_400, Some([198, 51, 100, 2]), None));
    index.insert(&session("S3", T + 3600, T + 86_400, Some([198, 51, 100, 2]), None));
    index.insert(&session("S4", T, T + 86_400, None, Some(([203, 0, 113, 1], 1024, 3039))));
    index.insert(&session("S5", T, T + 86_400, None, Some(([203, 0, 113, 1], 3040, 5055))));
    index.compact();
    (dir, gov, seen, index)
}

fn outbox(gov: &Governance) -> Vec<OutboxMessage> {
    gov.store().outbox(1000).unwrap()
}

const REPORT: &str = "ip,port,timestamp,malware\n\
    198.51.100.1,5555,2026-11-24 02:00:00,mirai\n\
    198.51.100.1,5555,2026-11-24 02:00:00,mirai\n\
    198.51.100.1,5556,2026-11-24 03:00:00,mirai\n\
    198.51.100.2,1,2026-11-24 05:00:00,emotet\n\
    203.0.113.1,2000,2026-11-24 05:00:00,qsnatch\n\
    203.0.113.1,,2026-11-24 05:00:00,qsnatch\n\
    192.0.2.1,1,2026-11-24 05:00:00,emotet\n\
    198.51.100.1,x,2026-11-24 05:00:00,emotet\n";

#[test]
fn rows_become_one_alert_per_subscriber_without_duplicates() {
    let (_dir, gov, mut seen, index) = setup();
    let format = Format::builtin(&Kind::Takedown).unwrap();
    let report = Report {
        file: "takedown.csv",
        bytes: REPORT.as_bytes(),
        format: &format,
        source: "police",
        encoding: Encoding::Auto,
    };

    let e = import(report, &index, &gov, &mut seen, &()).unwrap_err();
    assert!(matches!(e, ImportError::NotEnabled(_)), "{e}");
    gov.enable_measure(MeasureId::BotsAlertFromThirdParty, &Actor("t".into())).unwrap();

    let out = import(report, &index, &gov, &mut seen, &()).unwrap();
    let s = &out.summary;
    assert_eq!((s.rows, s.attributed, s.ambiguous, s.unmatched, s.bad_rows), (8, 4, 2, 1, 1), "{s:?}");
    assert_eq!((s.duplicates, s.subscribers, s.findings, s.alerts_queued), (1, 2, 2, 2), "{s:?}");
    assert_eq!(out.bad[0].line, 9);
    let amb: Vec<_> = out.unattributed.iter().filter(|u| u.status == "ambiguous").collect();
    assert_eq!(amb[0].candidates, vec!["S2", "S3"]);
    assert_eq!(amb[1].candidates, vec!["S4", "S5"]);
    assert_eq!(out.unattributed.iter().filter(|u| u.status == "unmatched").count(), 1);
    let subs: Vec<_> = outbox(&gov).into_iter().map(|m| m.subscriber.0).collect();
    assert_eq!(subs.len(), 2);
    assert!(subs.contains(&"S1".to_owned()) && subs.contains(&"S4".to_owned()), "{subs:?}");

    let again = import(report, &index, &gov, &mut seen, &()).unwrap();
    assert!(again.summary.previously_imported.is_some());
    assert_eq!((again.summary.duplicates, again.summary.findings, again.summary.alerts_queued), (4, 0, 0));
    assert_eq!(outbox(&gov).len(), 2);
}

#[test]
fn opted_out_subscribers_never_reach_the_consumer() {
    let (_dir, gov, mut seen, index) = setup();
    let m = MeasureId::IotAlertWeakCredentials;
    gov.record_notice(m, "https://carrier.example/terms", "2026-04", None, &Actor("t".into())).unwrap();
    gov.enable_measure(m, &Actor("t".into())).unwrap();
    gov.opt_out(&SubscriberId("S1".into()), m, "web", &Actor("t".into())).unwrap();
    let format = Format::builtin(&Kind::NoticeIot).unwrap();
    let text = "ip_address,port,detected_at,device_type\n198.51.100.1,23,2026-11-24 12:00:00,webcam\n\
                203.0.113.1,2000,2026-11-24 12:00:00,router\n";
    let report = Report {
        file: "notice.csv",
        bytes: text.as_bytes(),
        format: &format,
        source: "notice",
        encoding: Encoding::Auto,
    };
    let out = import(report, &index, &gov, &mut seen, &()).unwrap();
    assert_eq!((out.summary.attributed, out.summary.opted_out, out.summary.alerts_queued), (2, 1, 1));
    let ob = outbox(&gov);
    assert_eq!(ob.len(), 1);
    assert_eq!(ob[0].subscriber.0, "S4");
    // Nothing about S1 in the ledger for this measure but the opt-out.
    let mut about_s1 = Vec::new();
    gov.store()
        .export_ledger(&Default::default(), &mut |e| {
            if e.subject.as_deref() == Some("subscriber:S1") {
                about_s1.push(e.kind);
            }
            Ok(())
        })
        .unwrap();
    assert_eq!(about_s1.len(), 1, "{about_s1:?}");
}

fn shift_jis(s: &str) -> Vec<u8> {
    let (b, _, unmappable) = encoding_rs::SHIFT_JIS.encode(s);
    assert!(!unmappable);
    b.into_owned()
}

fn ledger_len(gov: &Governance) -> usize {
    let mut n = 0;
    gov.store()
        .export_ledger(&Default::default(), &mut |_| {
            n += 1;
            Ok(())
        })
        .unwrap();
    n
}

/// A NOTICE-style list as a Japanese source exports it: Japanese headers and values, Shift_JIS.
const NOTICE_JA: &str = "検知日時,IPアドレス,ポート番号,機器種別,所在地\n\
    2026-11-24 12:00:00,198.51.100.1,23,ネットワークカメラ,東京都\n\
    2026-11-24 12:05:00,203.0.113.1,2000,ﾙｰﾀｰ,大阪府\n";

#[test]
fn shift_jis_reports_are_converted_and_dedupe_with_their_utf8_copy() {
    let (_dir, gov, mut seen, index) = setup();
    let m = MeasureId::IotAlertWeakCredentials;
    gov.record_notice(m, "https://carrier.example/terms", "2026-04", None, &Actor("t".into())).unwrap();
    gov.enable_measure(m, &Actor("t".into())).unwrap();
    let format = Format::builtin(&Kind::NoticeIot).unwrap();
    let bytes = shift_jis(NOTICE_JA);
    assert!(std::str::from_utf8(&bytes).is_err());

    // `--encoding utf-8` refuses it, naming the first non-UTF-8 byte; nothing is written.
    let before = ledger_len(&gov);
    let report =
        Report { file: "notice-sjis.csv", bytes: &bytes, format: &format, source: "notice", encoding: Encoding::Utf8 };
    let e = import(report, &index, &gov, &mut seen, &()).unwrap_err();
    let msg = e.to_string();
    assert!(msg.starts_with("notice-sjis.csv: not UTF-8") && msg.contains("line 1, byte offset 0"), "{msg}");
    assert_eq!((ledger_len(&gov), outbox(&gov).len()), (before, 0));

    for encoding in [Encoding::Auto, Encoding::ShiftJis] {
        let (_dir, gov, mut seen, index) = setup();
        gov.record_notice(m, "https://carrier.example/terms", "2026-04", None, &Actor("t".into())).unwrap();
        gov.enable_measure(m, &Actor("t".into())).unwrap();
        let report = Report { file: "notice-sjis.csv", bytes: &bytes, format: &format, source: "notice", encoding };
        let out = import(report, &index, &gov, &mut seen, &()).unwrap();
        let s = &out.summary;
        assert_eq!(s.encoding, "shift_jis");
        assert_eq!((s.rows, s.attributed, s.bad_rows, s.alerts_queued), (2, 2, 0, 2), "{s:?} {:?}", out.bad);
        // The Japanese values reached the findings as text, not mojibake.
        let mut seen_values = Vec::new();
        gov.store()
            .export_ledger(&Default::default(), &mut |e| {
                if e.subject.as_deref() == Some("subscriber:S1") && e.kind.as_str() == "finding" {
                    seen_values.push(e.body.clone());
                }
                Ok(())
            })
            .unwrap();
        assert_eq!(seen_values.len(), 1);
        assert!(seen_values[0].contains("ネットワークカメラ"), "{}", seen_values[0]);

        // The same rows delivered in UTF-8 (with a BOM) are duplicates.
        let utf8 = format!("\u{feff}{NOTICE_JA}");
        let report = Report {
            file: "notice.csv",
            bytes: utf8.as_bytes(),
            format: &format,
            source: "notice",
            encoding: Encoding::Auto,
        };
        let again = import(report, &index, &gov, &mut seen, &()).unwrap();
        assert_eq!(again.summary.encoding, "utf-8");
        assert_eq!((again.summary.duplicates, again.summary.alerts_queued), (2, 0), "{:?}", again.summary);
        assert_eq!(outbox(&gov).len(), 2);
    }
}

#[test]
fn an_undecodable_report_is_refused_whole() {
    let (_dir, gov, mut seen, index) = setup();
    gov.enable_measure(MeasureId::BotsAlertFromThirdParty, &Actor("t".into())).unwrap();
    let format = Format::builtin(&Kind::Takedown).unwrap();
    // Good Shift_JIS rows, then a byte neither encoding can read on line 4.
    let mut bytes = shift_jis(
        "ip,port,timestamp,malware\n198.51.100.1,5555,2026-11-24 02:00:00,東京都\n\
                               203.0.113.1,2000,2026-11-24 05:00:00,qsnatch\n",
    );
    let offset = bytes.len() + 13;
    bytes.extend(b"198.51.100.1,\xff,2026-11-24 05:00:00,x\n");
    let before = ledger_len(&gov);
    for encoding in [Encoding::Auto, Encoding::ShiftJis] {
        let report = Report { file: "bad.csv", bytes: &bytes, format: &format, source: "police", encoding };
        let e = import(report, &index, &gov, &mut seen, &()).unwrap_err();
        let msg = e.to_string();
        assert!(matches!(e, ImportError::Encoding(_)), "{e:?}");
        assert!(msg.contains(&format!("line 4, byte offset {offset}")), "{msg}");
    }
    assert_eq!((ledger_len(&gov), outbox(&gov).len()), (before, 0));
    // Nothing was marked as seen: the corrected file imports in full.
    let good: Vec<u8> = bytes[..offset - 13].to_vec();
    let report = Report { file: "good.csv", bytes: &good, format: &format, source: "police", encoding: Encoding::Auto };
    let out = import(report, &index, &gov, &mut seen, &()).unwrap();
    assert_eq!(
        (out.summary.attributed, out.summary.duplicates, out.summary.alerts_queued),
        (2, 0, 2),
        "{:?}",
        out.summary
    );
}
