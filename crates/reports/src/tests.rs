//! Tests on real records (real measures, real dates in Japan time).

use jiff::Timestamp;
use mamori_core::action::{ActionRecord, ActionState};
use mamori_core::catalog::{LegalBasis, MeasureId, measure};
use mamori_core::subject::{Actor, SubscriberId};

use super::*;
use crate::stats::median;

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

/// November 2026, Japan time.
fn november() -> Period {
    Period::new(ts("2026-11-01T00:00:00+09:00"), ts("2026-12-01T00:00:00+09:00")).unwrap()
}

fn generated() -> Timestamp {
    ts("2026-12-01T09:00:00+09:00")
}

fn rec(measure: MeasureId, target: &str, subscriber: Option<&str>, state: ActionState, proposed: &str) -> ActionRecord {
    let proposed_at = ts(proposed);
    let in_force = matches!(state, ActionState::Applied | ActionState::Lifted | ActionState::Expired);
    ActionRecord {
        id: format!("A-{proposed}-{target}"),
        measure,
        target: target.parse().unwrap(),
        subscriber: subscriber.map(|s| SubscriberId(s.into())),
        state,
        legal_basis: LegalBasis::LegitimateBusiness,
        emergency: false,
        time_class: "night".into(),
        proposer: Actor::system(),
        proposed_at,
        applied_at: (in_force || state == ActionState::Completed).then_some(proposed_at),
        ended_at: (state.is_final() && state != ActionState::Applied).then_some(proposed_at),
        deadline: None,
        lift_condition: String::new(),
        evidence: serde_json::Value::Null,
        end_reason: None,
        grant_seq: None,
        approvals: vec![],
    }
}

/// An action applied at `applied` and ended at `ended` (or still in force when `None`).
fn applied(measure: MeasureId, target: &str, subscriber: &str, applied: &str, ended: Option<&str>) -> ActionRecord {
    let mut r = rec(
        measure,
        target,
        Some(subscriber),
        if ended.is_some() { ActionState::Lifted } else { ActionState::Applied },
        applied,
    );
    r.applied_at = Some(ts(applied));
    r.ended_at = ended.map(ts);
    r
}

fn stats<'a>(r: &'a TransparencyReport, id: &str) -> &'a MeasureStats {
    r.measures.iter().find(|m| m.measure == id).unwrap_or_else(|| panic!("{id} missing from the report"))
}

/// A minimal RFC 4180 reader, to check what a spreadsheet would see.
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut rows = vec![];
    let mut row = vec![];
    let mut field = String::new();
    let mut chars = text.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        if quoted {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                '"' => quoted = false,
                c => field.push(c),
            }
        } else {
            match c {
                '"' => {
                    assert!(field.is_empty(), "quote inside an unquoted field");
                    quoted = true;
                }
                ',' => row.push(std::mem::take(&mut field)),
                '\r' => assert_eq!(chars.next(), Some('\n'), "bare CR"),
                '\n' => panic!("LF without CR"),
                c => field.push(c),
            }
            if c == '\r' {
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
            }
        }
    }
    assert!(!quoted, "unterminated quote");
    assert!(field.is_empty() && row.is_empty(), "last row without CRLF");
    rows
}

#[test]
fn median_odd_even_and_empty() {
    assert_eq!(median(&[]), None);
    assert_eq!(median(&[7]), Some(7.0));
    assert_eq!(median(&[1, 5, 100]), Some(5.0));
    assert_eq!(median(&[1, 2, 4, 100]), Some(3.0));
    assert_eq!(median(&[3600, 7201]), Some(5400.5));
    assert_eq!(median(&[i64::MAX, i64::MAX]), Some(i64::MAX as f64), "no overflow");
}

#[test]
fn durations_median_and_max_odd_count() {
    let id = MeasureId::PhoneSuspendLineOnSurge;
    let actions = vec![
        // 1 h, 3 h, 10 h
        applied(id, "line:0311110001", "S-1", "2026-11-20T22:00:00+09:00", Some("2026-11-20T23:00:00+09:00")),
        applied(id, "line:0311110002", "S-2", "2026-11-21T01:00:00+09:00", Some("2026-11-21T04:00:00+09:00")),
        applied(id, "line:0311110003", "S-3", "2026-11-22T00:00:00+09:00", Some("2026-11-22T10:00:00+09:00")),
        // not in force: no duration
        rec(id, "line:0311110004", Some("S-4"), ActionState::Rejected, "2026-11-23T12:00:00+09:00"),
    ];
    let r = build(&actions, november(), generated());
    let m = stats(&r, "phone.suspend-line-on-surge");
    assert_eq!(m.actions, 4);
    assert_eq!(m.durations_counted, 3);
    assert_eq!(m.duration_median_seconds, Some(3.0 * 3600.0));
    assert_eq!(m.duration_max_seconds, Some(10 * 3600));
    assert_eq!(m.by_state.lifted, 3);
    assert_eq!(m.by_state.rejected, 1);
}

#[test]
fn durations_even_count_and_still_in_force_until_generation() {
    let id = MeasureId::PhoneSuspendLineOnSurge;
    let actions = vec![
        // 2 h
        applied(id, "line:0311110001", "S-1", "2026-11-20T22:00:00+09:00", Some("2026-11-21T00:00:00+09:00")),
        // still in force: from 2026-11-30T09:00 to generated (2026-12-01T09:00) = 24 h
        applied(id, "line:0311110002", "S-2", "2026-11-30T09:00:00+09:00", None),
    ];
    let r = build(&actions, november(), generated());
    let m = stats(&r, "phone.suspend-line-on-surge");
    assert_eq!(m.by_state.applied, 1);
    assert_eq!(m.duration_median_seconds, Some((2.0 * 3600.0 + 24.0 * 3600.0) / 2.0));
    assert_eq!(m.duration_max_seconds, Some(24 * 3600));
    // a later generation time lengthens the open one only
    let later = build(&actions, november(), ts("2026-12-02T09:00:00+09:00"));
    assert_eq!(stats(&later, "phone.suspend-line-on-surge").duration_max_seconds, Some(48 * 3600));
}

#[test]
fn completed_one_shot_actions_have_no_duration() {
    let actions = vec![rec(
        MeasureId::IotAlertWeakCredentials,
        "ip:203.0.113.7",
        Some("S-9"),
        ActionState::Completed,
        "2026-11-05T10:00:00+09:00",
    )];
    let r = build(&actions, november(), generated());
    let m = stats(&r, "iot.alert-weak-credentials");
    assert_eq!(m.by_state.completed, 1);
    assert_eq!(m.durations_counted, 0);
    assert_eq!(m.duration_median_seconds, None);
    assert_eq!(m.duration_max_seconds, None);
    assert_eq!(m.subscribers_affected, 1, "an alert reached the subscriber");
    let html = r.to_html();
    assert!(html.contains("No action of this period was in force."));
}

#[test]
fn subscribers_are_counted_distinct_and_only_when_affected() {
    let surge = MeasureId::PhoneSuspendLineOnSurge;
    let request = MeasureId::PhoneSuspendOnRequest;
    let actions = vec![
        applied(surge, "line:0311110001", "S-1001", "2026-11-20T22:00:00+09:00", Some("2026-11-20T23:00:00+09:00")),
        applied(surge, "line:0311110001", "S-1001", "2026-11-21T22:00:00+09:00", Some("2026-11-21T23:00:00+09:00")),
        applied(surge, "line:0311110002", "S-1001", "2026-11-22T22:00:00+09:00", None),
        applied(surge, "line:0311110003", "S-2002", "2026-11-23T22:00:00+09:00", None),
        // refused and awaiting: the subscriber was not affected
        rec(surge, "line:0311110004", Some("S-3003"), ActionState::Refused, "2026-11-24T22:00:00+09:00"),
        rec(surge, "line:0311110005", Some("S-4004"), ActionState::AwaitingConsent, "2026-11-24T23:00:00+09:00"),
        // the same subscriber under another measure
        applied(request, "line:0311110001", "S-1001", "2026-11-25T10:00:00+09:00", None),
    ];
    let r = build(&actions, november(), generated());
    let m = stats(&r, "phone.suspend-line-on-surge");
    assert_eq!(m.actions, 6);
    assert_eq!(m.subscribers_affected, 2);
    assert_eq!(m.by_state.open(), 1);
    assert_eq!(stats(&r, "phone.suspend-on-request").subscribers_affected, 1);
    assert_eq!(r.totals.subscribers_affected, 2, "S-1001 counts once across measures");
    assert_eq!(r.totals.actions, 7);
    assert_eq!(r.totals.measures_with_actions, 2);

    // ids never leave the process
    for out in [r.to_html(), r.to_csv(), r.to_json()] {
        for id in ["S-1001", "S-2002", "S-3003", "S-4004"] {
            assert!(!out.contains(id), "subscriber id {id} published");
        }
    }
}

#[test]
fn lines_and_addresses_are_never_published_even_where_targets_are() {
    let restrict = MeasureId::PhoneRestrictCountry;
    let publish = MeasureId::PhonePublishFraudDestinations;
    assert!(measure(restrict).publish_targets && measure(publish).publish_targets);
    let actions = vec![
        applied(restrict, "line:0399998888", "S-1", "2026-11-20T22:00:00+09:00", None),
        applied(restrict, "ip:198.51.100.23", "S-2", "2026-11-20T22:10:00+09:00", None),
        applied(restrict, "subscriber:S-77", "S-3", "2026-11-20T22:20:00+09:00", None),
        applied(restrict, "prefix:198.51.100.0/24", "S-4", "2026-11-20T22:30:00+09:00", None),
        rec(publish, "line:0355554444", None, ActionState::Completed, "2026-11-21T10:00:00+09:00"),
        rec(publish, "fqdn:fraud.example", None, ActionState::Completed, "2026-11-21T11:00:00+09:00"),
    ];
    let r = build(&actions, november(), generated());
    assert!(stats(&r, "phone.restrict-country").published_targets.is_empty());
    assert!(stats(&r, "phone.publish-fraud-destinations").published_targets.is_empty());
    for out in [r.to_html(), r.to_csv(), r.to_json()] {
        for secret in ["0399998888", "198.51.100", "S-77", "0355554444", "fraud.example"] {
            assert!(!out.contains(secret), "{secret} published");
        }
    }
}

#[test]
fn countries_are_published_for_restrict_country_only_when_allowed_and_effective() {
    let restrict = MeasureId::PhoneRestrictCountry;
    let surge = MeasureId::PhoneSuspendLineOnSurge;
    assert!(!measure(surge).publish_targets);
    let actions = vec![
        applied(restrict, "country:882", "S-1", "2026-11-20T22:00:00+09:00", Some("2026-11-22T22:00:00+09:00")),
        applied(restrict, "country:882", "S-2", "2026-11-23T22:00:00+09:00", None),
        applied(restrict, "country:44", "S-3", "2026-11-24T22:00:00+09:00", None),
        // a rejected proposal to restrict a country is not published (trade relations)
        rec(restrict, "country:86", None, ActionState::Rejected, "2026-11-25T10:00:00+09:00"),
        // a measure that may not publish targets: its country stays unnamed
        applied(surge, "country:675", "S-4", "2026-11-25T22:00:00+09:00", None),
    ];
    let r = build(&actions, november(), generated());
    let m = stats(&r, "phone.restrict-country");
    assert_eq!(
        m.published_targets,
        vec![
            TargetCount { target: "country:882".into(), actions: 2 },
            TargetCount { target: "country:44".into(), actions: 1 },
        ]
    );
    assert!(stats(&r, "phone.suspend-line-on-surge").published_targets.is_empty());

    let csv = parse_csv(&r.to_csv());
    let row = csv.iter().find(|row| row[0] == "phone.restrict-country").unwrap();
    assert_eq!(row[16], "country:882=2;country:44=1");
    for out in [r.to_html(), r.to_csv(), r.to_json()] {
        assert!(out.contains("country:882"));
        assert!(!out.contains("country:86"), "rejected target published");
        assert!(!out.contains("country:675"), "target of a non-publishing measure published");
    }
}

#[test]
fn only_actions_proposed_in_the_period_count() {
    let id = MeasureId::PhoneSuspendLineOnSurge;
    let actions = vec![
        // the boundaries: `from` is in, `to` is out
        rec(id, "line:1", Some("S-1"), ActionState::Rejected, "2026-10-31T23:59:59+09:00"),
        rec(id, "line:2", Some("S-2"), ActionState::Rejected, "2026-11-01T00:00:00+09:00"),
        rec(id, "line:3", Some("S-3"), ActionState::Rejected, "2026-11-30T23:59:59+09:00"),
        rec(id, "line:4", Some("S-4"), ActionState::Rejected, "2026-12-01T00:00:00+09:00"),
        // a whole measure outside the period does not appear at all
        rec(MeasureId::DnsBlockFqdnList, "fqdn:x.example", None, ActionState::Applied, "2026-12-05T00:00:00+09:00"),
    ];
    let r = build(&actions, november(), generated());
    assert_eq!(r.measures.len(), 1);
    assert_eq!(stats(&r, "phone.suspend-line-on-surge").actions, 2);
    assert_eq!(r.totals.actions, 2);
    assert!(r.measures.iter().all(|m| m.measure != "dns.block-fqdn-list"));
}

#[test]
fn days_are_japan_days() {
    let id = MeasureId::PhoneSuspendLineOnSurge;
    // 08:00 in Japan on the 21st is still the 20th in UTC
    let actions = vec![
        rec(id, "line:1", None, ActionState::Rejected, "2026-11-21T08:00:00+09:00"),
        rec(id, "line:2", None, ActionState::Rejected, "2026-11-21T23:59:00+09:00"),
        rec(id, "line:3", None, ActionState::Rejected, "2026-11-22T00:00:00+09:00"),
    ];
    let r = build(&actions, november(), generated());
    let days: Vec<(String, u64)> =
        stats(&r, "phone.suspend-line-on-surge").per_day.iter().map(|(d, n)| (d.to_string(), *n)).collect();
    assert_eq!(days, vec![("2026-11-21".into(), 2), ("2026-11-22".into(), 1)]);
    assert_eq!(r.totals.per_day.len(), 2);
    let json: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
    assert_eq!(json["measures"][0]["per_day"]["2026-11-21"], 2);
}

#[test]
fn emergency_and_legal_basis_are_counted() {
    let id = MeasureId::PhoneSuspendLineOnSurge;
    let mut a = applied(id, "line:1", "S-1", "2026-11-21T02:00:00+09:00", None);
    a.emergency = true;
    let mut b = applied(id, "line:2", "S-2", "2026-11-21T14:00:00+09:00", None);
    b.legal_basis = LegalBasis::Consent;
    let r = build(&[a, b], november(), generated());
    let m = stats(&r, "phone.suspend-line-on-surge");
    assert_eq!(m.emergency_actions, 1);
    assert_eq!(r.totals.emergency_actions, 1);
    assert_eq!(m.by_legal_basis.get("consent"), Some(&1));
    assert_eq!(m.by_legal_basis.get("legitimate-business"), Some(&1));
}

#[test]
fn hostile_targets_are_escaped_in_html() {
    let restrict = MeasureId::PhoneRestrictCountry;
    let actions = vec![
        applied(restrict, "country:<script>alert(1)</script>", "S-1", "2026-11-20T22:00:00+09:00", None),
        applied(restrict, "country:\"><img src=x onerror=alert(2)>", "S-2", "2026-11-20T23:00:00+09:00", None),
    ];
    let r = build(&actions, november(), generated());
    assert_eq!(stats(&r, "phone.restrict-country").published_targets.len(), 2, "the hostile targets are published");
    let html = r.to_html();
    assert!(!html.contains("<script"), "raw script tag in the page");
    assert!(!html.contains("<img"), "raw img tag in the page");
    assert!(html.contains("country:&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(html.contains("country:&quot;&gt;&lt;img src=x onerror=alert(2)&gt;"));
    assert_eq!(escape_html("a&b<c>\"d'"), "a&amp;b&lt;c&gt;&quot;d&#39;");
}

#[test]
fn html_is_self_contained() {
    let id = MeasureId::PhoneSuspendLineOnSurge;
    let actions = vec![applied(id, "line:1", "S-1", "2026-11-20T22:00:00+09:00", Some("2026-11-21T01:30:00+09:00"))];
    let html = build(&actions, november(), generated()).to_html();
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(!html.contains("<script"));
    assert!(!html.contains(" src="));
    assert!(!html.contains("<link"));
    assert!(
        !html.contains("http://")
            || html.matches("http://").count() == html.matches("http://www.w3.org/2000/svg").count()
    );
    assert!(!html.contains("https://"));
    assert_eq!(html.matches("<svg").count(), 2, "both charts present");
    assert!(html.contains(&format!("lang=\"ja\">{}</span>", measure(id).title_ja)), "Japanese title shown");
    assert!(html.contains("2026-11-01 00:00 +09:00"), "period shown in Japan time");
    assert!(html.contains("3 h 30 min"), "duration shown");
    assert!(html.contains("cnc.detect-servers"), "refused measure listed");
}

#[test]
fn csv_quotes_fields_per_rfc_4180() {
    use crate::csv::field;
    assert_eq!(field("plain"), "plain");
    assert_eq!(field("a,b"), "\"a,b\"");
    assert_eq!(field("say \"hi\""), "\"say \"\"hi\"\"\"");
    assert_eq!(field("two\nlines"), "\"two\nlines\"");
    assert_eq!(field("cr\r"), "\"cr\r\"");

    let restrict = MeasureId::PhoneRestrictCountry;
    let actions = vec![
        applied(restrict, "country:8,\"8;2=9", "S-1", "2026-11-20T22:00:00+09:00", None),
        applied(restrict, "country:44", "S-2", "2026-11-20T23:00:00+09:00", None),
    ];
    let r = build(&actions, november(), generated());
    let text = r.to_csv();
    let rows = parse_csv(&text);
    assert_eq!(rows[0].join(","), crate::csv::HEADER.join(","));
    assert_eq!(rows.len(), 2);
    let row = &rows[1];
    assert_eq!(row.len(), 17, "{row:?}");
    assert_eq!(row[0], "phone.restrict-country");
    assert_eq!(row[3], "2", "actions");
    assert_eq!(row[4], "2", "applied");
    // the list separators inside the target are percent-encoded, the comma and quote CSV-quoted
    assert_eq!(row[16], "country:44=1;country:8,\"8%3B2%3D9=1", "equal counts sort by target");
}

#[test]
fn csv_columns_line_up_with_the_header() {
    let id = MeasureId::PhoneSuspendLineOnSurge;
    let actions = vec![
        applied(id, "line:1", "S-1", "2026-11-20T22:00:00+09:00", Some("2026-11-20T23:00:00+09:00")),
        applied(id, "line:2", "S-2", "2026-11-20T22:00:00+09:00", Some("2026-11-21T00:00:01+09:00")),
        rec(id, "line:3", None, ActionState::Lapsed, "2026-11-22T22:00:00+09:00"),
        rec(id, "line:4", None, ActionState::PendingApproval, "2026-11-22T22:00:00+09:00"),
    ];
    let r = build(&actions, november(), generated());
    let rows = parse_csv(&r.to_csv());
    let get = |col: &str| {
        let i = rows[0].iter().position(|h| h == col).unwrap();
        rows[1][i].clone()
    };
    assert_eq!(get("measure"), "phone.suspend-line-on-surge");
    assert_eq!(get("family"), "phone");
    assert_eq!(get("actions"), "4");
    assert_eq!(get("lifted"), "2");
    assert_eq!(get("lapsed"), "1");
    assert_eq!(get("open"), "1");
    assert_eq!(get("subscribers_affected"), "2");
    assert_eq!(get("median_duration_s"), "5400.5");
    assert_eq!(get("max_duration_s"), "7201");
    assert_eq!(get("published_targets"), "");
    assert_eq!(get("legal_basis"), measure(id).legal_basis.iter().map(|b| b.as_str()).collect::<Vec<_>>().join(";"));
}

#[test]
fn empty_report_renders() {
    let r = build(&[], november(), generated());
    assert!(r.is_empty());
    assert_eq!(r.totals.actions, 0);
    let html = r.to_html();
    assert!(html.contains("No actions in this period."));
    assert!(!html.contains("NaN") && !html.contains("=\"inf"));
    assert!(html.contains("cnc.detect-servers"));
    let rows = parse_csv(&r.to_csv());
    assert_eq!(rows.len(), 1, "header only");
    let json: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
    assert_eq!(json["measures"].as_array().unwrap().len(), 0);
    assert_eq!(json["not_provided"][0]["measure"], "cnc.detect-servers");
    assert_eq!(json["not_provided"][0]["actions_in_period"], 0);
}

#[test]
fn refused_measure_actions_are_flagged_not_counted() {
    let actions =
        vec![rec(MeasureId::CncDetectServers, "ip:192.0.2.1", None, ActionState::Refused, "2026-11-20T22:00:00+09:00")];
    let r = build(&actions, november(), generated());
    assert!(r.measures.is_empty());
    assert_eq!(r.not_provided.len(), 1);
    assert_eq!(r.not_provided[0].actions_in_period, 1);
}

#[test]
fn charts_group_days_in_long_periods() {
    let year = Period::new(ts("2026-01-01T00:00:00+09:00"), ts("2027-01-01T00:00:00+09:00")).unwrap();
    let id = MeasureId::PhoneSuspendLineOnSurge;
    let actions = vec![
        applied(id, "line:1", "S-1", "2026-01-01T00:00:00+09:00", Some("2026-01-01T01:00:00+09:00")),
        applied(id, "line:2", "S-2", "2026-12-31T23:59:59+09:00", None),
    ];
    let r = build(&actions, year, generated());
    let bins = crate::svg::DayBins::new(&r);
    assert!(bins.bars as i64 <= crate::svg::MAX_BARS);
    assert_eq!(bins.days_per_bar, 4, "365 days in 92 bars");
    assert_eq!(bins.index("2026-01-01".parse().unwrap()), 0);
    assert_eq!(bins.index("2026-12-31".parse().unwrap()), bins.bars - 1);
    let html = r.to_html();
    assert!(html.contains("4 days per bar"));
}

#[test]
fn nice_axes() {
    use crate::svg::nice_axis;
    assert_eq!(nice_axis(0.0, 1.0), (1.0, 1.0));
    assert_eq!(nice_axis(3.0, 1.0), (3.0, 1.0));
    assert_eq!(nice_axis(7.0, 1.0), (8.0, 2.0));
    assert_eq!(nice_axis(42.0, 1.0), (50.0, 10.0));
    assert_eq!(nice_axis(0.5, 0.0), (0.5, 0.1));
}

#[test]
fn empty_period_is_rejected() {
    let t = ts("2026-11-20T22:00:00+09:00");
    assert!(matches!(Period::new(t, t), Err(ReportError::EmptyPeriod { .. })));
    // built anyway (struct literal), it renders without panicking
    let r = build(&[], Period { from: t, to: t }, t);
    assert!(r.to_html().contains("No actions in this period."));
}

#[test]
fn write_all_writes_three_files() {
    let dir = std::env::temp_dir().join(format!("mamori-reports-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let actions =
        vec![applied(MeasureId::PhoneRestrictCountry, "country:882", "S-1", "2026-11-20T22:00:00+09:00", None)];
    let r = build(&actions, november(), generated());
    let files = write_all(&r, &dir.join("nested")).unwrap();
    let names: Vec<_> = files.iter().map(|p| p.file_name().unwrap().to_str().unwrap().to_owned()).collect();
    assert_eq!(names, FILE_NAMES);
    assert_eq!(std::fs::read_to_string(&files[0]).unwrap(), r.to_html());
    assert_eq!(std::fs::read_to_string(&files[1]).unwrap(), r.to_csv());
    let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&files[2]).unwrap()).unwrap();
    assert_eq!(json["measures"][0]["measure"], "phone.restrict-country");
    let leftovers = std::fs::read_dir(dir.join("nested")).unwrap().count();
    assert_eq!(leftovers, 3, "no temporary files left");
    std::fs::remove_dir_all(&dir).unwrap();
}
