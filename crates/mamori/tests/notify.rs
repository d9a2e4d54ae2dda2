//! Notifications end to end with the real binary and a real SMTP server (aiosmtpd, Debian
//! `python3-aiosmtpd`): a message delivered in the subscriber's language with a working link,
//! a retry after the SMTP server was down at first, an opt-out through the notice page that
//! stops further messages for that measure, and a storm of findings that becomes one message.
//!
//! Skipped loudly without aiosmtpd, unless `MAMORI_REQUIRE_PEERS` is set (scripts/test.sh).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A Python with aiosmtpd: Debian's first (`python3-aiosmtpd` installs there), then `python3`.
mod common;
use common::{KillOnDrop as Killed, bin, free_tcp_port, mamori};

fn python_with_aiosmtpd() -> Option<PathBuf> {
    for p in ["/usr/bin/python3", "python3"] {
        let ok = Command::new(p)
            .args(["-c", "import aiosmtpd"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            return Some(PathBuf::from(p));
        }
    }
    if std::env::var_os("MAMORI_REQUIRE_PEERS").is_some() {
        panic!("aiosmtpd (Debian python3-aiosmtpd) is not installed but MAMORI_REQUIRE_PEERS is set");
    }
    eprintln!(
        "\n################################################################################\n\
         SKIPPED: aiosmtpd not installed, so the SMTP notification test did not run.\n\
         Install: apt-get install python3-aiosmtpd\n\
         (set MAMORI_REQUIRE_PEERS=1 to fail instead of skipping; scripts/test.sh does)\n\
         ################################################################################\n"
    );
    None
}

fn ok(o: Output) -> String {
    let t = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    assert!(o.status.success(), "{t}");
    t
}

fn http(port: u16, method: &str, path: &str, form: Option<&str>) -> (u16, String, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let body = form.unwrap_or("");
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let status = out.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0);
    let (head, body) = out.split_once("\r\n\r\n").unwrap_or((&out, ""));
    (status, head.to_owned(), body.to_owned())
}

/// Every message in the Maildir, decoded by Python's own email parser.
fn mailbox(python: &Path, dir: &Path) -> Vec<serde_json::Value> {
    let new = dir.join("new");
    let mut files: Vec<_> =
        std::fs::read_dir(&new).map(|r| r.flatten().map(|e| e.path()).collect()).unwrap_or_default();
    files.sort_by_key(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok());
    if files.is_empty() {
        return vec![];
    }
    let script = r#"
import sys, json, email
from email import policy
for p in sys.argv[1:]:
    with open(p, 'rb') as f:
        m = email.message_from_binary_file(f, policy=policy.default)
    print(json.dumps({"subject": str(m["subject"]), "to": str(m["to"]), "from": str(m["from"]),
                      "lang": str(m["Content-Language"]), "body": m.get_content()}, ensure_ascii=False))
"#;
    let o = Command::new(python).arg("-c").arg(script).args(&files).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

fn wait_for<T>(what: &str, secs: u64, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(start.elapsed() < Duration::from_secs(secs), "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn outbox(db: &Path) -> Vec<(String, String, String, i64, Option<String>)> {
    let c = rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    let mut st = c.prepare("SELECT subscriber, measure, state, attempts, reason FROM outbox ORDER BY id").unwrap();
    st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

fn link_in(body: &str, http_port: u16) -> String {
    let prefix = format!("http://127.0.0.1:{http_port}/s/");
    let i = body.find(&prefix).unwrap_or_else(|| panic!("no link in {body}"));
    let token: String = body[i + prefix.len()..].chars().take_while(|c| c.is_ascii_hexdigit() || *c == '.').collect();
    format!("/s/{token}")
}

#[test]
fn messages_go_out_over_smtp_retry_respect_opt_out_and_the_rate_limit() {
    let Some(python) = python_with_aiosmtpd() else { return };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let maildir = dir.path().join("mail");
    let (smtp_port, http_port) = (free_tcp_port(), free_tcp_port());
    let cfg = dir.path().join("mamori.toml");
    std::fs::write(
        &cfg,
        format!(
            "data_dir = \"{}\"\n[server]\nlisten = \"127.0.0.1:{http_port}\"\n[notify]\nsmtp_host = \"127.0.0.1\"\n\
             smtp_port = {smtp_port}\nfrom = \"Example Telecom <noreply@carrier.example>\"\nsmtp_timeout = \"5s\"\n\
             retry_initial = \"1s\"\nretry_max = \"2s\"\npoll = \"200ms\"\npublic_base_url = \"http://127.0.0.1:{http_port}\"\n",
            data.display()
        ),
    )
    .unwrap();
    let cfg = cfg.as_path();
    let subs = dir.path().join("subscribers.csv");
    std::fs::write(&subs, "subscriber_id,email,language\nS-ja,tanaka@example.jp,ja\nS-en,smith@example.com,en\n")
        .unwrap();
    assert!(ok(mamori(cfg, &["subscribers", "import", subs.to_str().unwrap(), "--by", "sato"])).contains("imported 2"));
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
            "--clause",
            "12",
            "--by",
            "sato",
        ],
    ));
    for m in [iot, "bots.alert-from-third-party", "phone.suspend-dormant"] {
        ok(mamori(cfg, &["measures", "enable", m, "--by", "sato"]));
    }

    // mamori serves; the SMTP server is not up yet
    let server = Killed(
        Command::new(bin())
            .args(["--config", cfg.to_str().unwrap(), "serve"])
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::from(std::fs::File::create(dir.path().join("serve.log")).unwrap()))
            .spawn()
            .unwrap(),
    );
    wait_for("mamori serve", 30, || (TcpStream::connect(("127.0.0.1", http_port)).is_ok()).then_some(()));
    let alert = |sub: &str, measure: &str| {
        ok(mamori(
            cfg,
            &[
                "actions",
                "propose",
                "--measure",
                measure,
                "--target",
                &format!("subscriber:{sub}"),
                "--subscriber",
                sub,
                "--reason",
                "survey row",
                "--by",
                "detector",
            ],
        ))
    };
    alert("S-ja", iot);
    let db = data.join("mamori.sqlite");
    wait_for("a failed first attempt", 30, || {
        outbox(&db).iter().any(|r| r.2 == "queued" && r.3 >= 1 && r.4.as_deref() == Some("connect")).then_some(())
    });

    // the SMTP server comes up: the retry delivers
    let _smtp = Killed(
        Command::new(&python)
            .args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{smtp_port}"), "-c", "aiosmtpd.handlers.Mailbox"])
            .arg(&maildir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let first = wait_for("the alert in the mailbox", 60, || mailbox(&python, &maildir).into_iter().next());
    assert_eq!(first["to"], "tanaka@example.jp");
    assert_eq!(first["from"], "Example Telecom <noreply@carrier.example>");
    assert_eq!(first["lang"], "ja");
    assert_eq!(first["subject"], "【注意喚起】IoT 機器のパスワード設定をご確認ください");
    let body = first["body"].as_str().unwrap();
    assert!(body.starts_with("お客様各位"), "{body}");
    assert!(body.contains("根拠: 利用規約に基づくお客様の事前の包括的なご同意"), "{body}");
    assert!(body.contains("オプトアウト"), "{body}");
    let rows = outbox(&db);
    assert_eq!((rows[0].2.as_str(), rows[0].3 >= 2), ("sent", true), "sent after a retry: {rows:?}");

    // an English subscriber gets English; the consent request is answered on the page
    ok(mamori(
        cfg,
        &[
            "actions",
            "propose",
            "--measure",
            "phone.suspend-dormant",
            "--target",
            "line:0312340002",
            "--subscriber",
            "S-en",
            "--reason",
            "dormant 200 days",
            "--by",
            "detector",
        ],
    ));
    let en = wait_for("the English request", 30, || {
        mailbox(&python, &maildir).into_iter().find(|m| m["to"] == "smith@example.com")
    });
    assert_eq!(en["lang"], "en");
    assert_eq!(en["subject"], "Would you like international calls suspended? (your choice)");
    let en_body = en["body"].as_str().unwrap();
    assert!(en_body.starts_with("Dear customer") && en_body.contains("line 0312340002"), "{en_body}");
    let en_link = link_in(en_body, http_port);
    let (status, _, page) = http(http_port, "GET", &en_link, None);
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Yes, suspend them"), "{page}");

    // the Japanese subscriber opens the link and opts out of the measure
    let link = link_in(body, http_port);
    let (status, _, page) = http(http_port, "GET", &link, None);
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("お知らせとご回答") && page.contains("IoT 機器のパスワード設定をご確認ください"), "{page}");
    let csrf = page.split("name=\"csrf\" value=\"").nth(1).unwrap().split('"').next().unwrap().to_owned();
    let (status, head, _) = http(http_port, "POST", &link, Some(&format!("csrf={csrf}&op=opt-out&measure={iot}")));
    assert_eq!(status, 303, "{head}");
    let (_, _, page) = http(http_port, "GET", &format!("{link}?done=opt-out"), None);
    assert!(page.contains("オプトアウトしました") && page.contains("オプトアウト中です"), "{page}");
    // a forged link is refused
    let (status, _, page) = http(http_port, "GET", &format!("{link}0"), None);
    assert_eq!(status, 403);
    assert!(page.contains("This link is not valid"));

    // the next survey row for them: refused by governance, no message
    let t = alert("S-ja", iot);
    assert!(t.contains("refused"), "{t}");
    // a storm of third-party reports for the English subscriber: one message
    for _ in 0..15 {
        alert("S-en", "bots.alert-from-third-party");
    }
    wait_for("the storm to settle", 30, || {
        let rows = outbox(&db);
        rows.iter().all(|r| r.2 != "queued" && r.2 != "sending").then_some(())
    });
    std::thread::sleep(Duration::from_millis(600));
    let rows = outbox(&db);
    let storm: Vec<_> = rows.iter().filter(|r| r.1 == "bots.alert-from-third-party").collect();
    assert_eq!(storm.len(), 15);
    assert_eq!(storm.iter().filter(|r| r.2 == "sent").count(), 1, "{storm:?}");
    assert_eq!(storm.iter().filter(|r| r.2 == "suppressed" && r.4.as_deref() == Some("rate-limit")).count(), 14);
    let mail = mailbox(&python, &maildir);
    assert_eq!(
        mail.iter().filter(|m| m["to"] == "tanaka@example.jp").count(),
        1,
        "no further message after the opt-out"
    );
    assert_eq!(mail.iter().filter(|m| m["to"] == "smith@example.com").count(), 2, "the request and one alert");

    // the ledger has every message, reply and opt-out; never a body or an address
    let export = ok(mamori(cfg, &["audit", "export"]));
    let kinds: Vec<String> = export
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .map(|v| v["kind"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(kinds.iter().filter(|k| *k == "notice-sent").count(), 3);
    assert_eq!(kinds.iter().filter(|k| *k == "notice-suppressed").count(), 14);
    assert_eq!(kinds.iter().filter(|k| *k == "consent-opted-out").count(), 1);
    assert!(
        !export.contains("example.jp") && !export.contains("example.com") && !export.contains("お客様"),
        "{export}"
    );
    ok(mamori(cfg, &["audit", "verify"]));

    drop(server);
    let log = std::fs::read_to_string(dir.path().join("serve.log")).unwrap();
    assert!(log.contains("will retry"), "{log}");
    let token = link.trim_start_matches("/s/");
    for secret in [token, "tanaka@example.jp", "smith@example.com", "S-ja", "S-en"] {
        assert!(!log.contains(secret), "the log shows {secret}:\n{log}");
    }
}
