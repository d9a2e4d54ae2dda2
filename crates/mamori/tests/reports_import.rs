//! Third-party reports through the real binary: RADIUS sessions back-filled from a FreeRADIUS
//! detail file, a Shadowserver sinkhole report attributed (a finding, an alert queued),
//! imported again (nothing new), a NOTICE-style IoT list where an opted-out subscriber's rows
//! produce nothing, a Shift_JIS list converted, and bad input (undecodable bytes, a missing
//! column) refused with exit code 2.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::path::Path;
use std::process::Output;

mod common;
use common::mamori;

fn ok(o: Output) -> String {
    assert!(
        o.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

fn fails(o: Output) -> String {
    assert_eq!(o.status.code(), Some(2), "stdout: {}", String::from_utf8_lossy(&o.stdout));
    String::from_utf8(o.stderr).unwrap()
}

fn count(summary: &str, what: &str) -> u64 {
    let line = summary.lines().find(|l| l.trim_start().starts_with(what)).unwrap_or_else(|| panic!("{summary}"));
    line.split_whitespace().last().unwrap().parse().unwrap()
}

fn outbox(db: &Path) -> Vec<(String, String, String)> {
    let c = rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    let mut st = c.prepare("SELECT subscriber, measure, purpose FROM outbox ORDER BY id").unwrap();
    st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).unwrap().collect::<Result<_, _>>().unwrap()
}

const SINKHOLE_HEADER: &str = "\"timestamp\",\"ip\",\"port\",\"asn\",\"geo\",\"region\",\"city\",\"hostname\",\"type\",\"infection\",\"url\",\"agent\",\"cc\",\"cc_port\",\"cc_asn\",\"cc_geo\",\"cc_dns\",\"count\",\"proxy\",\"application\",\"p0f_genre\",\"p0f_detail\",\"machine_name\",\"id\",\"naics\",\"sic\",\"cc_naics\",\"cc_sic\",\"sector\",\"cc_sector\",\"ssl_cipher\",\"family\",\"tag\",\"public_source\"";

fn sink_row(ts: &str, ip: &str, port: &str, infection: &str) -> String {
    format!(
        "\"{ts}\",\"{ip}\",\"{port}\",\"64500\",\"JP\",\"TOKYO\",\"TOKYO\",\"\",\"tcp\",\"{infection}\",\"\",\"\",\"192.0.2.200\",\"23\",\"\",\"\",\"\",\"1\",\"\",\"\",\"\",\"\",\"\",\"\",\"\",\"\",\"\",\"\",\"\",\"\",\"\",\"{infection}\",\"{infection}\",\"\""
    )
}

#[test]
fn reports_are_attributed_alerted_once_and_respect_opt_out() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let cfg = dir.path().join("mamori.toml");
    std::fs::write(
        &cfg,
        format!(
            "data_dir = \"{}\"\n[[report_import.mappings]]\nname = \"rbl-feed\"\nmeasure = \"mail.blacklist-alert\"\n\
             timestamp = \"first_seen\"\naddress = \"src\"\ndetail = \"rbl\"\nnaive_times = \"japan\"\n",
            data.display()
        ),
    )
    .unwrap();
    let cfg = cfg.as_path();
    let db = data.join("mamori.sqlite");

    // Sessions (crates/attribution/testdata/detail/README.md): alice@isp.example holds
    // 100.64.0.7 and 203.0.113.9 ports 1024-2047,4096-5119 from 2026-11-24T13:18:34Z to
    // 13:30:14Z; carol holds 2001:db8:99::5 from 13:31:54Z.
    let detail = Path::new(env!("CARGO_MANIFEST_DIR")).join("../attribution/testdata/detail/freeradius-3.2.1.detail");
    ok(mamori(cfg, &["attribution", "import-detail", detail.to_str().unwrap()]));

    // Without the measure enabled nothing is imported.
    let sink = dir.path().join("event4_sinkhole-2026-11-24.csv");
    let rows = [
        sink_row("2026-11-24 13:20:00", "100.64.0.7", "51234", "mirai"),
        sink_row("2026-11-24 13:21:00", "100.64.0.7", "51235", "mirai"),
        sink_row("2026-11-24 13:21:00", "203.0.113.9", "1500", "qsnatch"),
        sink_row("2026-11-20 23:41:00", "100.64.0.7", "1500", "qsnatch"),
        "\"yesterday\",\"100.64.0.7\",\"1\"".to_owned(),
    ];
    std::fs::write(&sink, format!("{SINKHOLE_HEADER}\n{}\n", rows.join("\n"))).unwrap();
    let sink = sink.to_str().unwrap();
    let import = |file: &str, kind: &str| {
        mamori(cfg, &["reports", "import", file, "--kind", kind, "--source", "shadowserver", "--quiet"])
    };
    let e = fails(import(sink, "shadowserver-sinkhole"));
    assert!(e.contains("bots.alert-from-third-party is not enabled"), "{e}");

    ok(mamori(cfg, &["measures", "enable", "bots.alert-from-third-party", "--by", "sato"]));
    let out = ok(import(sink, "shadowserver-sinkhole"));
    assert_eq!(count(&out, "rows"), 5, "{out}");
    assert_eq!(count(&out, "attributed"), 3, "{out}");
    assert_eq!(count(&out, "unmatched"), 1, "{out}");
    assert_eq!(count(&out, "bad rows"), 1, "{out}");
    assert_eq!(count(&out, "findings"), 1, "{out}");
    assert_eq!(count(&out, "alerts queued"), 1, "{out}");
    let unattributed = std::fs::read_to_string(dir.path().join("event4_sinkhole-2026-11-24.unattributed.csv")).unwrap();
    assert!(unattributed.contains("5,unmatched,2026-11-20T23:41:00Z,100.64.0.7,1500,qsnatch"), "{unattributed}");
    let summary = std::fs::read_to_string(dir.path().join("event4_sinkhole-2026-11-24.summary.json")).unwrap();
    assert!(summary.contains("\"line\": 6"), "{summary}");
    assert_eq!(outbox(&db), vec![("alice@isp.example".into(), "bots.alert-from-third-party".into(), "alert".into())]);
    let ledger = ok(mamori(cfg, &["audit", "export", "--measure", "bots.alert-from-third-party"]));
    let finding =
        ledger.lines().find(|l| l.contains("\"kind\":\"finding\"") && l.contains("subscriber:alice")).unwrap();
    assert!(finding.contains("shadowserver") && finding.contains("mirai"), "{finding}");
    assert!(!ledger.contains("100.64.0.7"), "the ledger holds no addresses: {ledger}");

    // again: nothing new
    let out = ok(import(sink, "shadowserver-sinkhole"));
    assert!(out.contains("imported before"), "{out}");
    assert_eq!(count(&out, "duplicates"), 3, "{out}");
    assert_eq!(count(&out, "findings"), 0, "{out}");
    assert_eq!(count(&out, "alerts queued"), 0, "{out}");
    assert_eq!(outbox(&db).len(), 1);

    // NOTICE-style IoT list (times in Japan time); carol opted out of the measure.
    let iot = "iot.alert-weak-credentials";
    ok(mamori(
        cfg,
        &[
            "measures",
            "notice",
            iot,
            "--url",
            "https://carrier.example/terms",
            "--terms-version",
            "2026-04",
            "--by",
            "sato",
        ],
    ));
    ok(mamori(cfg, &["measures", "enable", iot, "--by", "sato"]));
    ok(mamori(
        cfg,
        &["consent", "opt-out", "--subscriber", "carol", "--measure", iot, "--method", "web", "--by", "sato"],
    ));
    let notice = dir.path().join("notice-20261124.csv");
    std::fs::write(
        &notice,
        "ip_address,port,detected_at,device_type\n\
         100.64.0.7,23,2026-11-24 22:25:00,webcam\n\
         2001:db8:99::5,2323,2026-11-24 22:40:00,router\n\
         2001:db8:99::5,23,2026-11-24 22:41:00,router\n",
    )
    .unwrap();
    let out = ok(import(notice.to_str().unwrap(), "notice-iot"));
    assert_eq!(count(&out, "attributed"), 3, "{out}");
    assert_eq!(count(&out, "opted out"), 2, "{out}");
    assert_eq!(count(&out, "alerts queued"), 1, "{out}");
    let ob = outbox(&db);
    assert_eq!(ob.len(), 2, "{ob:?}");
    assert!(ob.iter().all(|r| r.0 != "carol"), "{ob:?}");
    let ledger = ok(mamori(cfg, &["audit", "export", "--measure", iot]));
    assert!(!ledger.lines().any(|l| l.contains("subscriber:carol") && !l.contains("consent-opted-out")), "{ledger}");

    // Shift_JIS (Japanese headers: IPアドレス, ポート番号, 検知日時, 機器種別) is converted; the
    // row was imported above (a duplicate, or the opted-out subscriber's), so nothing is queued
    let sjis = dir.path().join("notice-sjis.csv");
    let mut bytes = b"IP\x83\x41\x83\x68\x83\x8c\x83\x58,\x83\x7c\x81\x5b\x83\x67\x94\xd4\x8d\x86,\
        \x8c\x9f\x92\x6d\x93\xfa\x8e\x9e,\x8b\x40\x8a\xed\x8e\xed\x95\xca\n"
        .to_vec();
    bytes.extend_from_slice(b"100.64.0.7,23,2026-11-24 22:25:00,webcam\n");
    std::fs::write(&sjis, &bytes).unwrap();
    let out = ok(import(sjis.to_str().unwrap(), "notice-iot"));
    assert_eq!((count(&out, "rows"), count(&out, "attributed"), count(&out, "alerts queued")), (1, 1, 0), "{out}");
    // `--encoding utf-8` refuses it, naming the line and byte offset
    let o = mamori(
        cfg,
        &[
            "reports",
            "import",
            sjis.to_str().unwrap(),
            "--kind",
            "notice-iot",
            "--source",
            "n",
            "--quiet",
            "--encoding",
            "utf-8",
        ],
    );
    let e = fails(o);
    assert!(e.contains("notice-sjis.csv: not UTF-8") && e.contains("line 1, byte offset 2"), "{e}");
    // neither UTF-8 nor Shift_JIS: refused whole
    bytes.extend_from_slice(b"100.64.0.7,\xff,2026-11-24 22:25:00,webcam\n");
    std::fs::write(&sjis, &bytes).unwrap();
    let e = fails(import(sjis.to_str().unwrap(), "notice-iot"));
    assert!(e.contains("neither UTF-8 nor Shift_JIS") && e.contains("line 3"), "{e}");

    // a missing column is named
    let dns = dir.path().join("scan_dns.csv");
    std::fs::write(&dns, "\"timestamp\",\"protocol\",\"port\",\"hostname\",\"tag\"\n\"2026-11-24 13:20:00\",\"udp\",\"53\",\"\",\"openresolver\"\n").unwrap();
    ok(mamori(cfg, &["measures", "enable", "router.alert-vulnerable", "--by", "sato"]));
    let e = fails(import(dns.to_str().unwrap(), "shadowserver-dns"));
    assert!(e.contains("scan_dns.csv") && e.contains("missing column") && e.contains("`ip`"), "{e}");
    assert_eq!(outbox(&db).len(), 2);

    // a blacklist listing, and a source read through a configured column mapping
    ok(mamori(cfg, &["measures", "enable", "mail.blacklist-alert", "--by", "sato"]));
    let bl = dir.path().join("listing.csv");
    std::fs::write(&bl, "ip,list,listed_at\n100.64.0.7,bl.spamcop.net,2026-11-24 13:23:00\n").unwrap();
    let out = ok(import(bl.to_str().unwrap(), "blacklist"));
    assert_eq!(count(&out, "alerts queued"), 1, "{out}");
    let feed = dir.path().join("feed.csv");
    std::fs::write(&feed, "SRC,First_Seen,RBL\n100.64.0.7,2026-11-24 22:24:00,zen\n").unwrap();
    let out = ok(import(feed.to_str().unwrap(), "custom:rbl-feed"));
    assert_eq!(count(&out, "attributed"), 1, "{out}");
    assert_eq!(count(&out, "findings"), 1, "{out}");
    let e = fails(import(feed.to_str().unwrap(), "custom:nope"));
    assert!(e.contains("`nope`"), "{e}");
    let mail: Vec<_> = outbox(&db).into_iter().filter(|r| r.1 == "mail.blacklist-alert").collect();
    assert_eq!(mail.len(), 2, "governance queues both; notify sends one per period: {mail:?}");
}
