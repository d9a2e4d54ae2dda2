//! `mamori replay cdr` and `mamori phone …`, run as an operator would.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::fmt::Write as _;
use std::path::Path;
use std::process::{Command, Output};

fn mamori(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mamori"))
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .env_remove("MAMORI_CONFIG")
        .env_remove("RUST_LOG")
        .output()
        .unwrap()
}

const HEADER: &str = "call_id,start_time,end_time,line_id,calling_number,called_number,source_ip,charge_jpy\n";

/// Two weeks of ordinary use by two lines, then a night-time fraud on one of them, with the mess
/// of real exports: rows out of order, a duplicate, broken rows, E.164 numbers.
fn messy_cdr_file() -> String {
    let mut rows: Vec<(i64, String)> = vec![];
    let base = jiff::Timestamp::from_second(1_793_458_800).unwrap(); // 2026-11-01T00:00:00+09:00
    let fmt = |t: jiff::Timestamp| {
        t.to_zoned_datetime(jiff::tz::TimeZone::fixed(jiff::tz::offset(9))).strftime("%Y-%m-%dT%H:%M:%S%:z").to_string()
    };
    let mut n = 0;
    let mut push =
        |rows: &mut Vec<(i64, String)>, start: i64, secs: i64, line: &str, called: &str, ip: &str, yen: i64| {
            n += 1;
            let s = base.checked_add(jiff::SignedDuration::from_secs(start)).unwrap();
            let e = s.checked_add(jiff::SignedDuration::from_secs(secs)).unwrap();
            rows.push((start, format!("c{n},{},{},{line},03{line},{called},{ip},{yen}\n", fmt(s), fmt(e))));
        };
    for day in 0..14 {
        for h in [10, 13, 16] {
            let t = day * 86_400 + h * 3600;
            push(&mut rows, t, 200, "L1", "0312345678", "192.0.2.10", 0);
            push(&mut rows, t + 600, 300, "L1", "+12125550000", "192.0.2.10", 45);
            push(&mut rows, t + 900, 120, "L2", "0698765432", "192.0.2.20", 0);
            push(&mut rows, t + 1200, 600, "L2", "0104420794600", "192.0.2.20", 200);
        }
    }
    // 2026-11-17 (Tuesday) 01:30 JST: ten calls to +882 from an unknown address.
    let onset = 16 * 86_400 + 3600 + 1800;
    for i in 0..10 {
        push(&mut rows, onset + 4 * i, 1500, "L1", &format!("01088216{i:07}"), "203.0.113.66", 11_250);
    }
    rows.sort_by_key(|r| r.0);
    // Out of order by two minutes, and one duplicate.
    let len = rows.len();
    rows.swap(len - 3, len - 12);
    let dup = rows[len - 5].1.clone();
    rows.push((0, dup));
    let mut out = String::from(HEADER);
    for (i, (_, r)) in rows.iter().enumerate() {
        out.push_str(r);
        if i == 7 {
            out.push_str("broken,row\n");
        }
        if i == 20 {
            writeln!(out, "x1,2026-11-02T10:00:00+09:00,2026-11-02T10:01:00+09:00,L1,0311,+0000,192.0.2.10,5").unwrap();
        }
    }
    out
}

#[test]
fn replay_prints_json_events_on_data_time_and_reports_bad_rows_on_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("cdr.csv");
    std::fs::write(&file, messy_cdr_file()).unwrap();
    let kept = dir.path().join("kept");
    let o =
        mamori(dir.path(), &["replay", "cdr", file.to_str().unwrap(), "--quiet", "--keep-db", kept.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{stderr}");
    assert!(stderr.contains("line 10: expected 8 fields"), "{stderr}");
    assert!(stderr.contains("called_number"), "{stderr}");
    assert!(stderr.contains("2 malformed, 1 duplicates"), "{stderr}");
    let events: Vec<serde_json::Value> =
        String::from_utf8(o.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let t5: Vec<(&str, &str)> = events
        .iter()
        .filter(|e| e["measure"] == "phone.suspend-line-on-surge")
        .map(|e| (e["event"].as_str().unwrap(), e["target"].as_str().unwrap()))
        .collect();
    assert_eq!(t5, [("finding", "line:L1"), ("applied", "line:L1"), ("notified", "line:L1")], "{events:?}");
    let first = &events[0];
    assert!(first["at"].as_str().unwrap().starts_with("2026-11-17T01:30:"), "{first}");
    assert!(events.iter().any(|e| e["target"] == "ip:203.0.113.66" && e["event"] == "applied"));
    assert!(events.iter().any(|e| e["target"] == "ip:203.0.113.66" && e["event"] == "lifted"));
    assert!(events.iter().all(|e| e["target"] != "line:L2"));
    // The replay's ledger verifies and can be audited.
    let o = mamori(&kept, &["audit", "verify"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn replay_of_a_file_with_a_wrong_header_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("cdr.csv");
    std::fs::write(&file, "id,when\n1,2\n").unwrap();
    let o = mamori(dir.path(), &["replay", "cdr", file.to_str().unwrap(), "--quiet"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("line 1: the header must be"));
    assert!(o.stdout.is_empty());
}

#[test]
fn subscriber_request_suspends_at_once_and_publication_is_aggregate() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert!(!mamori(d, &["phone", "request-suspension", "L7", "--by", "sato"]).status.success(), "measure not enabled");
    assert!(mamori(d, &["measures", "enable", "phone.suspend-on-request", "--by", "sato"]).status.success());
    let o = mamori(d, &["phone", "request-suspension", "L7", "--subscriber", "S7", "--method", "web", "--by", "sato"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("applied"));
    let o = mamori(d, &["actions", "list", "--json"]);
    assert!(String::from_utf8_lossy(&o.stdout).contains("phone.suspend-on-request"));

    assert!(mamori(d, &["measures", "enable", "phone.publish-fraud-destinations", "--by", "sato"]).status.success());
    let out = d.join("pub");
    let o = mamori(
        d,
        &[
            "phone",
            "publish",
            "--from",
            "2026-01-01",
            "--to",
            "2027-01-01",
            "--out",
            out.to_str().unwrap(),
            "--by",
            "sato",
        ],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let json = std::fs::read_to_string(out.join("fraud-destinations.json")).unwrap();
    assert!(json.contains("\"countries\""));
    assert!(!json.contains("L7") && !json.contains("S7"));
    assert!(std::fs::read_to_string(out.join("fraud-destinations.ja.html")).unwrap().contains("宛先国"));
    let o = mamori(d, &["phone", "advice", "--lang", "en"]);
    assert!(String::from_utf8_lossy(&o.stdout).contains("passwords"));
}
