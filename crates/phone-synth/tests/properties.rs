//! Properties of generated data sets: the format, the mess, the calendar, the episodes, determinism.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

use jiff::Timestamp;
use mamori_phone_synth::{CDR_HEADER, Summary, SynthConfig, TruthEpisode, generate};

struct DataSet {
    cdr: Vec<u8>,
    truth: Vec<TruthEpisode>,
    subscribers: String,
    summary: Summary,
}

fn make(cfg: &SynthConfig) -> DataSet {
    let (mut cdr, mut truth, mut subscribers) = (Vec::new(), Vec::new(), Vec::new());
    let summary = generate(cfg, &mut cdr, &mut truth, &mut subscribers).unwrap();
    let truth = String::from_utf8(truth).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    DataSet { cdr, truth, subscribers: String::from_utf8(subscribers).unwrap(), summary }
}

/// A row, checked against the format.
#[derive(Debug, Clone, PartialEq)]
struct Row {
    call_id: String,
    start: Timestamp,
    end: Timestamp,
    line_id: String,
    calling: String,
    called: String,
    /// Calling code if international.
    country: Option<u16>,
    ip: IpAddr,
    charge: u64,
    raw: Vec<u8>,
}

fn assigned(code: u16) -> bool {
    phonenumber::metadata::DATABASE.region(&code).is_some_and(|r| !r.is_empty())
}

/// The calling code of a dialled number, or None for a domestic one.
fn country_of(called: &str) -> Result<Option<u16>, String> {
    let (plus, digits) = match called.strip_prefix('+') {
        Some(d) => (true, d),
        None => (false, called),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("not digits: {called}"));
    }
    let international = if plus {
        digits
    } else if let Some(rest) = digits.strip_prefix("010") {
        rest
    } else if digits.starts_with('0') {
        return Ok(None);
    } else {
        return Err(format!("neither 0… nor +…: {called}"));
    };
    let mut code = 0u16;
    for d in international.bytes().take(3) {
        code = code * 10 + u16::from(d - b'0');
        if assigned(code) {
            return Ok(if code == 81 { None } else { Some(code) });
        }
    }
    Err(format!("no assigned calling code: {called}"))
}

fn parse_row(record: &csv::ByteRecord) -> Result<Row, String> {
    if record.len() != 8 {
        return Err(format!("{} fields", record.len()));
    }
    let f = |i: usize| -> Result<&str, String> {
        let s = std::str::from_utf8(&record[i]).map_err(|_| format!("field {i} not UTF-8"))?;
        if s.is_empty() { Err(format!("field {i} empty")) } else { Ok(s) }
    };
    let time = |i: usize| -> Result<Timestamp, String> {
        let s = f(i)?;
        if !s.ends_with("+09:00") || s.len() != 25 {
            return Err(format!("not RFC 3339 in +09:00: {s}"));
        }
        s.parse().map_err(|e| format!("{s}: {e}"))
    };
    let (start, end) = (time(1)?, time(2)?);
    if end < start {
        return Err("ends before it starts".into());
    }
    let charge: u64 = f(7)?.parse().map_err(|_| "charge not whole yen".to_owned())?;
    if start == end && charge > 0 {
        return Err("unanswered but charged".into());
    }
    let called = f(5)?.to_owned();
    Ok(Row {
        call_id: f(0)?.to_owned(),
        start,
        end,
        line_id: f(3)?.to_owned(),
        calling: f(4)?.to_owned(),
        country: country_of(&called)?,
        called,
        ip: f(6)?.parse().map_err(|_| "bad source ip".to_owned())?,
        charge,
        raw: record.as_slice().to_vec(),
    })
}

/// Every row, good or not, in file order.
fn rows(cdr: &[u8]) -> Vec<Result<Row, String>> {
    let mut reader = csv::ReaderBuilder::new().has_headers(true).flexible(true).from_reader(cdr);
    assert_eq!(reader.byte_headers().unwrap().as_slice(), CDR_HEADER.replace(',', "").as_bytes());
    reader.byte_records().map(|r| parse_row(&r.unwrap())).collect()
}

fn good_rows(cdr: &[u8]) -> Vec<Row> {
    rows(cdr).into_iter().map(|r| r.unwrap()).collect()
}

fn small() -> SynthConfig {
    SynthConfig {
        lines: 300,
        days: 10,
        seed: 11,
        fraud_episodes: Some(8),
        negative_episodes: Some(14),
        ..Default::default()
    }
}

#[test]
fn every_row_follows_the_cdr_format() {
    let data = make(&small());
    assert!(data.cdr.starts_with(format!("{CDR_HEADER}\n").as_bytes()));
    let rows = good_rows(&data.cdr);
    assert_eq!(rows.len() as u64, data.summary.rows);
    assert_eq!(data.summary.malformed_rows, 0);
    let international = rows.iter().filter(|r| r.country.is_some()).count();
    let e164 = rows.iter().filter(|r| r.called.starts_with('+')).count();
    assert!(international > 100, "{international} international calls");
    let share = e164 as f64 / rows.len() as f64;
    assert!((0.03..0.07).contains(&share), "E.164 share {share}");
    assert!(rows.iter().any(|r| r.called.starts_with("010")));
    assert!(rows.iter().any(|r| r.called.starts_with("090") || r.called.starts_with("080")));
    assert!(rows.iter().any(|r| r.ip.is_ipv6()) && rows.iter().any(|r| r.ip.is_ipv4()));
    let unanswered = rows.iter().filter(|r| r.start == r.end).count();
    assert!(unanswered > rows.len() / 10, "a share of calls is unanswered");
    // Subscribers: one row per line, languages ja/en.
    let lines: HashSet<&str> = rows.iter().map(|r| r.line_id.as_str()).collect();
    let subs: Vec<&str> = data.subscribers.lines().collect();
    assert_eq!(subs[0], "line_id,subscriber_id,language");
    assert_eq!(subs.len() - 1, 300);
    for s in &subs[1..] {
        let f: Vec<&str> = s.split(',').collect();
        assert_eq!(f.len(), 3);
        assert!(f[2] == "ja" || f[2] == "en");
    }
    let known: HashSet<&str> = subs[1..].iter().map(|s| s.split(',').next().unwrap()).collect();
    assert!(lines.is_subset(&known), "every line in the CDR has a subscriber");
    // Every calling code in the truth is an assigned one.
    for t in &data.truth {
        for c in &t.countries {
            assert!(assigned(c.parse().unwrap()), "{c}");
        }
    }
}

#[test]
fn duplicates_and_late_rows_come_at_the_configured_rates() {
    let cfg = SynthConfig { duplicate_rate: 0.005, max_delay_secs: 180, ..small() };
    let data = make(&cfg);
    let rows = good_rows(&data.cdr);
    let mut by_id: HashMap<&str, Vec<&Row>> = HashMap::new();
    for r in &rows {
        by_id.entry(&r.call_id).or_default().push(r);
    }
    let repeated: usize = by_id.values().map(|v| v.len() - 1).sum();
    assert_eq!(repeated as u64, data.summary.duplicate_rows);
    assert!(by_id.values().all(|v| v.len() <= 2 && v.iter().all(|r| r.raw == v[0].raw)), "repeats are identical");
    let share = repeated as f64 / by_id.len() as f64;
    assert!((0.003..0.007).contains(&share), "duplicate share {share}");

    let mut newest = Timestamp::MIN;
    let (mut late, mut latest) = (0usize, 0i64);
    for r in &rows {
        if r.start < newest {
            late += 1;
            latest = latest.max(newest.duration_since(r.start).as_secs());
        }
        newest = newest.max(r.start);
    }
    assert_eq!(late as u64, data.summary.out_of_order_rows);
    let share = late as f64 / rows.len() as f64;
    assert!((0.03..0.2).contains(&share), "out-of-order share {share}");
    assert!(latest <= 180, "no row more than the maximum delay behind: {latest}");
    assert!(latest > 60, "some rows are minutes late: {latest}");
}

#[test]
fn malformed_rows_are_broken_and_only_they_are() {
    let cfg = SynthConfig { malformed_rate: 0.01, ..small() };
    let data = make(&cfg);
    let all = rows(&data.cdr);
    let bad: Vec<&String> = all.iter().filter_map(|r| r.as_ref().err()).collect();
    assert_eq!(bad.len() as u64, data.summary.malformed_rows);
    let share = bad.len() as f64 / all.len() as f64;
    assert!((0.006..0.014).contains(&share), "{share}");
    let reasons: HashSet<&str> = bad.iter().map(|e| e.split(':').next().unwrap()).collect();
    assert!(reasons.len() >= 5, "several ways of being broken: {reasons:?}");
}

#[test]
fn every_episode_is_in_the_truth_with_its_calls_in_the_cdr() {
    let data = make(&small());
    let frauds: Vec<&TruthEpisode> = data.truth.iter().filter(|t| t.kind.starts_with("fraud-")).collect();
    assert_eq!(frauds.len(), data.summary.fraud_episodes);
    assert_eq!(frauds.len(), 8);
    let kinds: HashSet<&str> = frauds.iter().map(|t| t.kind.as_str()).collect();
    assert_eq!(kinds.len(), 5, "every fraud kind appears: {kinds:?}");
    let rows = good_rows(&data.cdr);
    for t in &frauds {
        let (start, end): (Timestamp, Timestamp) = (t.start.parse().unwrap(), t.end.parse().unwrap());
        assert!(start < end, "{t:?}");
        assert!(["day", "night", "weekend", "holiday"].contains(&t.time_class.as_str()));
        let lines: HashSet<&str> = t.line_ids.iter().map(String::as_str).collect();
        let ips: HashSet<IpAddr> = t.source_ips.iter().map(|i| i.parse().unwrap()).collect();
        let countries: HashSet<u16> = t.countries.iter().map(|c| c.parse().unwrap()).collect();
        let ids: HashSet<&str> = rows
            .iter()
            .filter(|r| lines.contains(r.line_id.as_str()) && ips.contains(&r.ip))
            .filter(|r| r.country.is_some_and(|c| countries.contains(&c)))
            .filter(|r| r.start >= start && r.end <= end)
            .map(|r| r.call_id.as_str())
            .collect();
        assert!(ids.len() as u64 >= t.calls, "{}: {} calls in the CDR, truth says {}", t.kind, ids.len(), t.calls);
        assert!(t.calls >= 3 && t.charge_jpy > 10_000, "{t:?}");
    }
    let negatives: HashSet<&str> =
        data.truth.iter().filter(|t| t.kind.starts_with("negative-")).map(|t| t.kind.as_str()).collect();
    assert_eq!(negatives.len(), 7, "every hard-negative kind appears: {negatives:?}");
}

#[test]
fn fraud_happens_by_day_by_night_and_on_days_off() {
    let data = make(&SynthConfig { lines: 1000, days: 21, seed: 5, ..Default::default() });
    assert_eq!(data.summary.fraud_episodes, 20);
    let classes: HashSet<&str> =
        data.truth.iter().filter(|t| t.kind.starts_with("fraud-")).map(|t| t.time_class.as_str()).collect();
    assert!(classes.contains("day") && classes.contains("night"), "{classes:?}");
    assert!(classes.contains("weekend") || classes.contains("holiday"), "{classes:?}");
}

#[test]
fn offices_are_quiet_on_a_national_holiday() {
    // 2026-11-03 (文化の日) is a Tuesday; 2026-11-04 an ordinary Wednesday.
    let data = make(&SynthConfig { lines: 500, days: 5, seed: 3, fraud_episodes: Some(0), ..Default::default() });
    let rows = good_rows(&data.cdr);
    let office_hours = |day: &str| {
        rows.iter()
            .filter(|r| {
                let t = r.start.to_zoned_datetime(jiff::tz::TimeZone::fixed(jiff::tz::offset(9)));
                t.date().to_string() == day && (9..18).contains(&t.hour())
            })
            .count()
    };
    let (holiday, workday) = (office_hours("2026-11-03"), office_hours("2026-11-04"));
    assert!((holiday as f64) < 0.6 * workday as f64, "holiday {holiday} vs workday {workday}");
}

#[test]
fn the_same_seed_gives_the_same_bytes() {
    let cfg = SynthConfig { lines: 120, days: 4, malformed_rate: 0.01, ..small() };
    let (a, b) = (make(&cfg), make(&cfg));
    assert_eq!(a.cdr, b.cdr);
    assert_eq!(a.truth, b.truth);
    assert_eq!(a.subscribers, b.subscribers);
    let c = make(&SynthConfig { seed: cfg.seed + 1, ..cfg });
    assert_ne!(a.cdr, c.cdr);
}

#[test]
fn target_rows_scales_the_volume() {
    let cfg = SynthConfig { lines: 200, days: 7, target_rows: Some(400_000), ..small() };
    let data = make(&cfg);
    let rows = data.summary.rows as f64;
    assert!((380_000.0..420_000.0).contains(&rows), "{rows} rows");
    assert!(data.summary.scale > 1.0);
    assert_eq!(data.summary.bytes, data.cdr.len() as u64);
}

#[test]
fn a_bad_configuration_is_refused() {
    let mut sink = std::io::sink();
    for cfg in [
        SynthConfig { lines: 0, ..small() },
        SynthConfig { days: 0, ..small() },
        SynthConfig { duplicate_rate: 1.5, ..small() },
        SynthConfig { malformed_rate: -0.1, ..small() },
    ] {
        let e = generate(&cfg, &mut sink, std::io::sink(), std::io::sink()).unwrap_err();
        assert!(e.to_string().contains("invalid configuration"), "{e}");
    }
}

#[test]
fn profiles_describe_every_line_and_leave_the_cdr_unchanged() {
    let cfg = SynthConfig { lines: 150, days: 3, ..small() };
    let (mut cdr, mut profiles) = (Vec::new(), Vec::new());
    mamori_phone_synth::generate_with_profiles(&cfg, &mut cdr, std::io::sink(), std::io::sink(), &mut profiles)
        .unwrap();
    assert_eq!(cdr, make(&cfg).cdr, "asking for profiles changes nothing else");
    let text = String::from_utf8(profiles).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some(mamori_phone_synth::PROFILES_HEADER));
    let kinds: HashSet<String> = lines.map(|l| l.split(',').nth(1).unwrap().to_owned()).collect();
    assert_eq!(text.lines().count(), 151);
    assert!(kinds.iter().all(|k| ["residential", "business", "pbx"].contains(&k.as_str())), "{kinds:?}");
}

#[test]
fn hard_negatives_present_only_numbers_their_line_uses_anyway() {
    // Otherwise "unfamiliar calling number" would be evidence the generator leaks into legitimate episodes.
    let cfg = SynthConfig { lines: 400, days: 14, negative_episodes: Some(40), ..small() };
    let data = make(&cfg);
    let rows = good_rows(&data.cdr);
    let mut checked = 0;
    for t in data.truth.iter().filter(|t| t.kind.starts_with("negative-") && t.calls > 0) {
        let (start, end): (Timestamp, Timestamp) = (t.start.parse().unwrap(), t.end.parse().unwrap());
        let line = t.line_ids[0].as_str();
        // The numbers the line presents outside the episode (when there are enough calls to know them).
        let outside: Vec<&str> = rows
            .iter()
            .filter(|r| r.line_id == line && (r.start < start || r.start > end))
            .map(|r| r.calling.as_str())
            .collect();
        if outside.len() < 30 {
            continue;
        }
        let outside: HashSet<&str> = outside.into_iter().collect();
        for r in rows.iter().filter(|r| r.line_id == line && r.start >= start && r.start <= end) {
            checked += 1;
            assert!(outside.contains(r.calling.as_str()), "{} on {line}: {}", t.kind, r.calling);
        }
    }
    assert!(checked > 0);
}
