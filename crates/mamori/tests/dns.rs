//! `mamori serve` with `[dns]` in front of a real Unbound: the policy zone is served by AXFR with
//! NOTIFY, the inline filter forwards to Unbound, and Unbound's dnstap goes to mamori's socket; an operator's `mamori dns block` (a second
//! process, through governance) is refused by Unbound through RPZ and by the filter, and a list
//! loaded with `mamori dns load-list` reaches the running filter. The log names no queried name.
//!
//! Skipped loudly without Unbound unless `MAMORI_REQUIRE_PEERS` is set.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[path = "../../dns/tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;
use support::{Unbound, UnboundOptions, free_port, query, wait_for};

mod common;
use common::{mamori, ok, serve};

fn rcode(server: std::net::SocketAddr, name: &str) -> Option<ResponseCode> {
    query(server, name, RecordType::A).map(|m| m.response_code())
}

#[test]
fn serve_with_dns_publishes_an_operator_block_that_unbound_refuses_through_rpz() {
    let Some(unbound_bin) = support::unbound_binary() else { return };
    let dir = tempfile::tempdir().unwrap();
    let (http, rpz, filter, unbound_port) = (free_port(), free_port(), free_port(), free_port());
    let cfg = dir.path().join("mamori.toml");
    let sock = dir.path().join("dnstap.sock");
    std::fs::write(
        &cfg,
        format!(
            "data_dir = \"{}\"\n[server]\nlisten = \"127.0.0.1:{http}\"\n[scheduler]\ntick = \"1s\"\n\
             [dns.rpz]\nzone = \"rpz.mamori.\"\nlisten = \"127.0.0.1:{rpz}\"\nnotify = [\"127.0.0.1:{unbound_port}\"]\n\
             [dns.filter]\nlisten = \"127.0.0.1:{filter}\"\nupstream = \"127.0.0.1:{unbound_port}\"\n\
             [dns.dnstap]\nsocket_path = \"{}\"\n",
            dir.path().join("data").display(),
            sock.display()
        ),
    )
    .unwrap();
    ok(mamori(&cfg, &["config", "check", cfg.to_str().unwrap()]));
    ok(mamori(&cfg, &["measures", "enable", "dns.block-fqdn-list", "--by", "sato"]));

    let log = dir.path().join("serve.log");
    let _serve = serve(&cfg, &log);
    let read_log = || std::fs::read_to_string(&log).unwrap_or_default();
    let started = Instant::now();
    let ready =
        |l: &str| ["dns inline filter started", "dnstap listening", "mamori listening"].iter().all(|m| l.contains(m));
    while !ready(&read_log()) {
        assert!(started.elapsed() < Duration::from_secs(20), "serve did not start:\n{}", read_log());
        std::thread::sleep(Duration::from_millis(50));
    }

    let zone = "$ORIGIN example.test.\n$TTL 1\n@ SOA ns admin 1 3600 600 86400 1\n@ NS ns\nns A 127.0.0.1\n\
                www A 192.0.2.1\nshop A 192.0.2.2\nfeed-listed A 192.0.2.3\n";
    let udir = dir.path().join("unbound");
    std::fs::create_dir_all(&udir).unwrap();
    let unbound = Unbound::start(
        &unbound_bin,
        &udir,
        UnboundOptions {
            port: Some(unbound_port),
            dnstap: Some(support::Dnstap::Unix(sock.clone())),
            rpz: Some(("rpz.mamori.".into(), ([127, 0, 0, 1], rpz).into())),
            local_zones: vec![],
            local_data: vec![],
            auth_zones: vec![("example.test.".into(), zone.into())],
        },
    );
    let filter_addr: std::net::SocketAddr = ([127, 0, 0, 1], filter).into();
    assert_eq!(rcode(unbound.addr, "www.example.test."), Some(ResponseCode::NoError));
    assert_eq!(rcode(filter_addr, "www.example.test."), Some(ResponseCode::NoError));

    // The operator blocks a name for 30 minutes, from another process.
    let out = ok(mamori(&cfg, &["dns", "block", "www.example.test", "--for", "30m", "--by", "sato"]));
    assert!(out.contains("applied") && out.contains("fqdn:www.example.test"), "{out}");
    let refused = wait_for(Duration::from_secs(10), || {
        (rcode(unbound.addr, "www.example.test.") == Some(ResponseCode::NXDomain)).then_some(())
    });
    assert!(refused.is_some(), "Unbound still answers\n{}\n{}", unbound.log(), read_log());
    assert_eq!(rcode(unbound.addr, "shop.example.test."), Some(ResponseCode::NoError));
    assert_eq!(rcode(filter_addr, "a.www.example.test."), Some(ResponseCode::NXDomain));
    assert_eq!(rcode(filter_addr, "shop.example.test."), Some(ResponseCode::NoError));
    let list = ok(mamori(&cfg, &["dns", "list"]));
    assert!(list.contains("www.example.test") && list.contains("until"), "{list}");

    // A block list loaded from a file reaches the running filter; its loading is in the ledger.
    let feed = dir.path().join("feed.txt");
    std::fs::write(&feed, "# test feed\nfeed-listed.example.test\nnot a name\n").unwrap();
    let out = ok(mamori(&cfg, &["dns", "load-list", feed.to_str().unwrap(), "--kind", "block", "--source", "feed-1"]));
    assert!(out.contains("1 names, 1 lines skipped"), "{out}");
    let blocked = wait_for(Duration::from_secs(10), || {
        (rcode(filter_addr, "feed-listed.example.test.") == Some(ResponseCode::NXDomain)).then_some(())
    });
    assert!(blocked.is_some(), "{}", read_log());
    let list = ok(mamori(&cfg, &["dns", "list"]));
    assert!(list.contains("feed-1"), "{list}");
    let audit = ok(mamori(&cfg, &["audit", "export", "--measure", "dns.block-fqdn-list"]));
    assert!(audit.contains("feed-1") && audit.contains("www.example.test"), "{audit}");
    ok(mamori(&cfg, &["audit", "verify"]));

    drop(unbound);
    let text = read_log();
    assert!(!text.contains("example.test"), "the log shows a queried name:\n{text}");
}

/// A C&C query seen over dnstap from an address a subscriber held at that instant (a RADIUS
/// session back-filled with `attribution import-detail`) is a finding and a proposal naming that
/// subscriber; the log shows neither the address's holder nor the name.
#[test]
fn serve_attributes_a_cnc_query_to_the_subscriber_holding_the_client_address() {
    let Some(unbound_bin) = support::unbound_binary() else { return };
    let dir = tempfile::tempdir().unwrap();
    let (http, unbound_port) = (free_port(), free_port());
    let cfg = dir.path().join("mamori.toml");
    let sock = dir.path().join("dnstap.sock");
    std::fs::write(
        &cfg,
        format!(
            "data_dir = \"{}\"\n[server]\nlisten = \"127.0.0.1:{http}\"\n[dns.dnstap]\nsocket_path = \"{}\"\n",
            dir.path().join("data").display(),
            sock.display()
        ),
    )
    .unwrap();
    let now = jiff::Timestamp::now() - jiff::SignedDuration::from_secs(60);
    let detail = dir.path().join("session.detail");
    std::fs::write(
        &detail,
        format!(
            "{}\n\tAcct-Status-Type = Start\n\tUser-Name = \"dave-7\"\n\tAcct-Session-Id = \"s-127\"\n\tNAS-IP-Address = 192.0.2.1\n\tFramed-IP-Address = 127.0.0.1\n\tAcct-Interim-Interval = 3600\n\tEvent-Timestamp = \"{}\"\n\tTimestamp = {}\n\n",
            now.strftime("%a %b %e %H:%M:%S %Y"),
            now.strftime("%b %e %Y %H:%M:%S UTC"),
            now.as_second()
        ),
    )
    .unwrap();
    let out = ok(mamori(&cfg, &["attribution", "import-detail", detail.to_str().unwrap()]));
    assert!(out.contains("1 imported"), "{out}");
    let feed = dir.path().join("cnc.txt");
    std::fs::write(&feed, "cnc-host.example.test\n").unwrap();
    ok(mamori(&cfg, &["dns", "load-list", feed.to_str().unwrap(), "--kind", "cnc", "--source", "cnc-feed"]));
    let m = "bots.detect-cnc-queries";
    ok(mamori(
        &cfg,
        &[
            "measures",
            "notice",
            m,
            "--url",
            "https://carrier.example/terms",
            "--terms-version",
            "2026-04",
            "--by",
            "sato",
        ],
    ));
    ok(mamori(&cfg, &["measures", "enable", m, "--by", "sato"]));

    let log = dir.path().join("serve.log");
    let _serve = serve(&cfg, &log);
    let read_log = || std::fs::read_to_string(&log).unwrap_or_default();
    let started = Instant::now();
    while !["dnstap listening", "mamori listening"].iter().all(|m| read_log().contains(m)) {
        assert!(started.elapsed() < Duration::from_secs(20), "serve did not start:\n{}", read_log());
        std::thread::sleep(Duration::from_millis(50));
    }
    let zone = "$ORIGIN example.test.\n$TTL 1\n@ SOA ns admin 1 3600 600 86400 1\n@ NS ns\nns A 127.0.0.1\n\
                cnc-host A 192.0.2.66\n";
    let udir = dir.path().join("unbound");
    std::fs::create_dir_all(&udir).unwrap();
    let unbound = Unbound::start(
        &unbound_bin,
        &udir,
        UnboundOptions {
            port: Some(unbound_port),
            dnstap: Some(support::Dnstap::Unix(sock.clone())),
            rpz: None,
            local_zones: vec![],
            local_data: vec![],
            auth_zones: vec![("example.test.".into(), zone.into())],
        },
    );
    let proposed = wait_for(Duration::from_secs(15), || {
        let _ = rcode(unbound.addr, "cnc-host.example.test.");
        let out = ok(mamori(&cfg, &["actions", "list", "--measure", m, "--json"]));
        out.contains("dave-7").then_some(out)
    });
    let out =
        proposed.unwrap_or_else(|| panic!("no proposal naming the subscriber\n{}\n{}", unbound.log(), read_log()));
    assert!(out.contains("ip:127.0.0.1"), "{out}");
    let audit = ok(mamori(&cfg, &["audit", "export", "--measure", m]));
    assert!(audit.contains("dns.cnc-queries") && audit.contains("cnc-host.example.test"), "{audit}");
    ok(mamori(&cfg, &["audit", "verify"]));
    drop(unbound);
    let text = read_log();
    assert!(!text.contains("example.test") && !text.contains("dave-7"), "the log shows a name or subscriber:\n{text}");
}
