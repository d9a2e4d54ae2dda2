//! The engine on real Japan-time dates: night and holiday frauds are suspended first and notified,
//! daytime ones ask the subscriber, hard negatives stay quiet, floods to a country wait for
//! approvers, and an address is lifted only after its fraud has stopped.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};
use mamori_core::actuator::{Actuator, RecordingActuator};
use mamori_core::catalog::MeasureId;
use mamori_core::clock::DataClock;
use mamori_core::config::Config;
use mamori_core::governance::{Governance, requires_notice};
use mamori_core::store::LedgerFilter;
use mamori_core::subject::Actor;
use mamori_phone::cdr::Cdr;
use mamori_phone::engine::{Engine, Mode, PhoneEvent, Subscribers};
use mamori_phone::numbering::NumberingPlan;
use mamori_store::{SqliteStore, StoreOptions};

struct Rig {
    _dir: tempfile::TempDir,
    gov: Arc<Governance>,
    engine: Engine,
    recorder: Arc<RecordingActuator>,
    plan: NumberingPlan,
    n: u64,
    events: Vec<PhoneEvent>,
}

fn jst(s: &str) -> Timestamp {
    format!("{s}+09:00").parse().unwrap()
}

impl Rig {
    fn new(start: &str) -> Rig {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("m.sqlite"), StoreOptions::default()).unwrap();
        let clock = DataClock::new(jst(start));
        let config = Config::default();
        let phone = config.phone.clone();
        let gov = Arc::new(Governance::new(Arc::new(store), Arc::new(clock.clone()), Arc::new(config)).unwrap());
        let by = Actor("test".into());
        for m in [
            MeasureId::PhoneSuspendLineOnSurge,
            MeasureId::PhoneSuspendSipAuthFromIp,
            MeasureId::PhoneRestrictCountry,
            MeasureId::PhoneSuspendDormant,
        ] {
            if requires_notice(m) {
                gov.record_notice(m, "https://carrier.example/terms", "2026-04", None, &by).unwrap();
            }
            gov.enable_measure(m, &by).unwrap();
        }
        let recorder = Arc::new(RecordingActuator::default());
        let engine = Engine::new(
            gov.clone(),
            &phone,
            Subscribers::default(),
            vec![recorder.clone() as Arc<dyn Actuator>],
            Mode::Replay(clock),
        )
        .unwrap();
        Rig { _dir: dir, gov, engine, recorder, plan: NumberingPlan::new(), n: 0, events: vec![] }
    }

    #[allow(clippy::too_many_arguments)]
    fn call(&mut self, line: &str, start: Timestamp, secs: i64, called: &str, ip: &str, jpy_per_min: f64) {
        self.n += 1;
        let end = start.checked_add(SignedDuration::from_secs(secs)).unwrap();
        let cdr = Cdr {
            call_id: format!("c{}", self.n).into(),
            start,
            end,
            line_id: line.into(),
            calling_number: format!("03{line}").into(),
            called_number: called.into(),
            destination: self.plan.classify(called).unwrap(),
            source_ip: ip.parse().unwrap(),
            charge_jpy: (jpy_per_min * secs as f64 / 60.0).round() as u64,
        };
        self.engine.on_cdr(&cdr).unwrap();
        self.events.extend(self.engine.take_events());
    }

    /// A line's ordinary past: domestic calls and a few to the US from its own address, by day.
    fn history(&mut self, line: &str, ip: &str, from: Timestamp, days: i64) {
        for d in 0..days {
            let day = from.checked_add(SignedDuration::from_hours(24 * d)).unwrap();
            for h in [1, 3, 5] {
                let t = day.checked_add(SignedDuration::from_hours(h)).unwrap();
                self.call(line, t, 180, "0312345678", ip, 0.0);
                self.call(line, t.checked_add(SignedDuration::from_mins(20)).unwrap(), 240, "0101212555000", ip, 9.0);
            }
        }
    }

    fn until(&mut self, t: Timestamp) {
        self.engine.advance_to(t).unwrap();
        self.events.extend(self.engine.take_events());
    }

    fn kinds(&self, measure: &str, target: &str) -> Vec<&'static str> {
        self.events.iter().filter(|e| e.measure == measure && e.target == target).map(|e| e.event).collect()
    }
}

const T5: &str = "phone.suspend-line-on-surge";

fn burst(rig: &mut Rig, line: &str, at: Timestamp, ip: &str, calls: i64) {
    for i in 0..calls {
        rig.call(
            line,
            at.checked_add(SignedDuration::from_secs(3 * i)).unwrap(),
            1800,
            &format!("0108821600{i:04}"),
            ip,
            450.0,
        );
    }
}

#[test]
fn night_fraud_on_a_weekday_is_suspended_first_and_notified_within_a_minute() {
    let mut rig = Rig::new("2026-11-10T09:00:00");
    rig.history("L1", "192.0.2.10", jst("2026-11-10T09:00:00"), 7);
    let onset = jst("2026-11-18T02:10:00"); // Wednesday night
    burst(&mut rig, "L1", onset, "203.0.113.66", 8);
    rig.until(jst("2026-11-18T02:15:00"));
    assert_eq!(rig.kinds(T5, "line:L1"), ["finding", "applied", "notified"]);
    let first = rig.events.iter().find(|e| e.measure == T5).unwrap();
    let at: Timestamp = first.at.parse().unwrap();
    assert!(at.duration_since(onset) <= SignedDuration::from_secs(60), "detected at {}", first.at);
    // The fraudster's address is suspended too, and enforced.
    assert_eq!(rig.kinds("phone.suspend-sip-auth-from-ip", "ip:203.0.113.66"), ["finding", "applied"]);
    let applied: Vec<_> = rig.recorder.calls().into_iter().filter(|c| c.call == "apply").map(|c| c.target).collect();
    assert_eq!(applied, ["line:L1", "ip:203.0.113.66"]);
    // Stage 2 was unlocked, with a ledger entry, for that line only.
    let mut unlocks = vec![];
    rig.gov
        .store()
        .export_ledger(&LedgerFilter::default(), &mut |e| {
            if e.kind == "stage-unlocked" {
                unlocks.push(e.subject.unwrap_or_default());
            }
            Ok(())
        })
        .unwrap();
    assert_eq!(unlocks, ["line:L1"]);
}

#[test]
fn the_address_is_lifted_only_after_its_fraud_has_stopped_and_the_cooldown_ran() {
    let mut rig = Rig::new("2026-11-10T09:00:00");
    rig.history("L1", "192.0.2.10", jst("2026-11-10T09:00:00"), 7);
    let onset = jst("2026-11-21T23:00:00"); // Saturday night
    burst(&mut rig, "L1", onset, "203.0.113.66", 6);
    // The fraud goes on: a second wave from the same address 40 minutes later (calls of 30 min).
    burst(&mut rig, "L1", jst("2026-11-21T23:40:00"), "203.0.113.66", 6);
    rig.until(jst("2026-11-22T00:35:00"));
    assert!(!rig.kinds("phone.suspend-sip-auth-from-ip", "ip:203.0.113.66").contains(&"lifted"));
    // The last call ends at 00:10:15; lifted 30 minutes after that, not before.
    rig.until(jst("2026-11-22T01:00:00"));
    let lifted = rig
        .events
        .iter()
        .find(|e| e.target == "ip:203.0.113.66" && e.event == "lifted")
        .expect("lifted after the cool-down");
    let at: Timestamp = lifted.at.parse().unwrap();
    assert!(at >= jst("2026-11-22T00:40:15") && at <= jst("2026-11-22T00:41:00"), "{}", lifted.at);
}

#[test]
fn daytime_fraud_asks_the_subscriber_first_then_becomes_an_emergency_at_night() {
    let mut rig = Rig::new("2026-11-10T09:00:00");
    rig.history("L1", "192.0.2.10", jst("2026-11-10T09:00:00"), 7);
    let onset = jst("2026-11-19T10:00:00"); // Thursday, business hours
    burst(&mut rig, "L1", onset, "203.0.113.66", 8);
    rig.until(jst("2026-11-19T10:05:00"));
    assert_eq!(rig.kinds(T5, "line:L1"), ["finding", "consent-requested"]);
    // Nobody answers; the fraud goes on into the evening.
    let mut t = jst("2026-11-19T17:40:00");
    while t < jst("2026-11-19T18:20:00") {
        burst(&mut rig, "L1", t, "203.0.113.66", 4);
        t = t.checked_add(SignedDuration::from_mins(10)).unwrap();
    }
    rig.until(jst("2026-11-19T18:30:00"));
    let kinds = rig.kinds(T5, "line:L1");
    assert_eq!(kinds, ["finding", "consent-requested", "applied", "notified"], "{:?}", rig.events);
    let applied = rig.events.iter().find(|e| e.measure == T5 && e.event == "applied").unwrap();
    assert!(applied.at.as_str() >= "2026-11-19T18:00:00+09:00", "{}", applied.at);
}

#[test]
fn national_holiday_daytime_counts_as_urgent() {
    let mut rig = Rig::new("2026-11-10T09:00:00");
    rig.history("L1", "192.0.2.10", jst("2026-11-10T09:00:00"), 7);
    burst(&mut rig, "L1", jst("2026-11-23T11:00:00"), "203.0.113.66", 8); // 勤労感謝の日
    rig.until(jst("2026-11-23T11:05:00"));
    assert_eq!(rig.kinds(T5, "line:L1"), ["finding", "applied", "notified"]);
}

#[test]
fn hard_negatives_stay_quiet() {
    let mut rig = Rig::new("2026-11-01T09:00:00");
    // A business line that calls the US a lot by day.
    for d in 0..14 {
        let day = jst("2026-11-02T09:30:00").checked_add(SignedDuration::from_hours(24 * d)).unwrap();
        for i in 0..6 {
            rig.call(
                "B1",
                day.checked_add(SignedDuration::from_secs(40 * i)).unwrap(),
                900,
                "0101212555000",
                "192.0.2.20",
                20.0,
            );
        }
    }
    // …then a campaign: twice as many parallel calls as usual, to its usual country.
    for i in 0..14 {
        rig.call(
            "B1",
            jst("2026-11-17T10:00:00").checked_add(SignedDuration::from_secs(20 * i)).unwrap(),
            1200,
            "0101212555000",
            "192.0.2.20",
            20.0,
        );
    }
    // A residential line's long call home on a holiday, at an ordinary rate, its first abroad.
    rig.history("R1", "192.0.2.30", jst("2026-11-01T09:00:00"), 5);
    rig.call("R1", jst("2026-11-23T13:00:00"), 3 * 3600, "0106321234567", "192.0.2.30", 45.0);
    // A line whose address changed, calling as usual.
    rig.history("R2", "192.0.2.40", jst("2026-11-01T09:00:00"), 5);
    rig.history("R2", "198.51.100.40", jst("2026-11-08T09:00:00"), 5);
    rig.until(jst("2026-11-24T00:00:00"));
    let t5: Vec<_> = rig.events.iter().filter(|e| e.measure == T5).collect();
    assert!(t5.is_empty(), "{t5:?}");
}

#[test]
fn a_flood_to_one_rare_country_from_many_lines_waits_for_two_approvers() {
    let mut rig = Rig::new("2026-11-10T09:00:00");
    for l in 0..12 {
        rig.history(&format!("F{l}"), &format!("192.0.2.{}", 100 + l), jst("2026-11-10T09:00:00"), 6);
    }
    let onset = jst("2026-11-18T03:00:00");
    for l in 0..12 {
        for i in 0..3 {
            let t = onset.checked_add(SignedDuration::from_secs(i64::from(l) * 4 + i)).unwrap();
            rig.call(&format!("F{l}"), t, 2400, &format!("010252610{l:02}{i:03}"), "203.0.113.99", 300.0);
        }
    }
    rig.until(jst("2026-11-18T03:10:00"));
    let kinds = rig.kinds("phone.restrict-country", "country:252");
    assert_eq!(kinds, ["finding", "pending-approval"], "{:?}", rig.events);
    let finding = rig.events.iter().find(|e| e.target == "country:252").unwrap();
    let d = finding.detail.as_ref().unwrap();
    assert!(d["calls_in_progress"].as_u64().unwrap() >= 20);
    assert!(d["lines"].as_u64().unwrap() >= 5);
    assert_eq!(d["top_sources"][0], "203.0.113.99");
    // Not applied: nobody approved.
    assert!(rig.recorder.calls().iter().all(|c| c.target != "country:252"));
}

#[test]
fn memory_is_per_active_line_not_per_call() {
    let mut rig = Rig::new("2026-11-01T00:00:00");
    let mut t = jst("2026-11-01T00:00:00");
    for i in 0..200_000u64 {
        let line = format!("M{}", i % 500);
        rig.call(&line, t, 120, "0101212555000", "192.0.2.1", 9.0);
        t = t.checked_add(SignedDuration::from_secs(3)).unwrap();
        if i % 10_000 == 0 {
            assert!(rig.engine.calls_held() < 1_000, "{} calls held", rig.engine.calls_held());
        }
    }
    assert_eq!(rig.engine.lines(), 500);
}

/// A call centre's working hours: from 09:30 a 15-minute call to the US at 100 yen/min every
/// `every` seconds for three hours (six in progress at a time for `every` = 150).
fn working_hours(rig: &mut Rig, day: Timestamp, every: i64) {
    for i in 0..(3 * 3600 / every) {
        rig.call(
            "B2",
            day.checked_add(SignedDuration::from_secs(every * i)).unwrap(),
            900,
            "0101212555000",
            "192.0.2.50",
            100.0,
        );
    }
}

#[test]
fn learned_levels_survive_a_restart() {
    use mamori_phone::learned::Learned;
    // Two weeks of working hours teach the line its level (after its first morning's rise).
    let mut before = Rig::new("2026-11-01T09:00:00");
    for d in 0..14 {
        working_hours(
            &mut before,
            jst("2026-11-02T09:30:00").checked_add(SignedDuration::from_hours(24 * d)).unwrap(),
            150,
        );
    }
    before.until(jst("2026-11-17T09:00:00"));
    assert_eq!(before.engine.counters.unlocks, 1, "only the first morning was a rise");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("phone-learned.json");
    before.engine.learned().save(&path).unwrap();

    // A busier day (eight calls at a time), seen by an engine restarted with what was learned and
    // by one started afresh: only the fresh one, knowing no level for the line, sees a rise and
    // unlocks stage 2.
    let mut restarted = Rig::new("2026-11-17T09:00:00");
    let learned = Learned::load(&path).unwrap().expect("saved");
    assert!(learned.lines.iter().any(|l| l.line_id == "B2"));
    assert_eq!(restarted.engine.restore(learned), 1);
    let mut fresh = Rig::new("2026-11-17T09:00:00");
    for rig in [&mut restarted, &mut fresh] {
        working_hours(rig, jst("2026-11-17T09:30:00"), 112);
        rig.until(jst("2026-11-17T13:00:00"));
    }
    assert_eq!(restarted.engine.counters.unlocks, 0, "the restored level covers the busier day");
    assert!(fresh.engine.counters.unlocks >= 1, "without the learned level the same day is a rise");
    // A second save after more learning still loads.
    let again = restarted.engine.learned();
    assert_eq!(again.lines.len(), 1);
    again.save(&path).unwrap();
    assert_eq!(Learned::load(&path).unwrap(), Some(again));
}

#[test]
fn a_short_daily_burst_is_learned_after_its_first_day() {
    // An office that calls its partner abroad for half an hour every morning, all within one
    // clock hour: six 15-minute calls at a time to the US from its own address. The first morning
    // is a rise that stage 2 judges the subscriber's own use; that judgement must teach the line
    // its level, or the same burst unlocks stage 2 again every morning.
    let mut rig = Rig::new("2026-11-01T09:00:00");
    for d in 0..10 {
        let day = jst("2026-11-02T10:00:00").checked_add(SignedDuration::from_hours(24 * d)).unwrap();
        for i in 0..12 {
            rig.call(
                "B3",
                day.checked_add(SignedDuration::from_secs(150 * i)).unwrap(),
                900,
                "0101212555000",
                "192.0.2.60",
                100.0,
            );
        }
    }
    rig.until(jst("2026-11-12T12:00:00"));
    assert!(rig.engine.counters.unlocks >= 1, "the first morning is a rise");
    assert!(rig.engine.counters.unlocks <= 2, "stage 2 unlocked on {} mornings of 10", rig.engine.counters.unlocks);
    assert!(rig.kinds(T5, "line:B3").is_empty(), "the subscriber's own use is no fraud");
}

#[test]
fn a_slow_fraud_judged_own_use_at_first_is_not_learned_and_is_caught_when_it_lasts() {
    // Dear calls one at a time (20 minutes, then 5 without) to a destination the line never
    // called, from its own address:
    // at first only one kind of sign (where), so stage 2 judges it the subscriber's. That first
    // hour must not teach the line its level, or the hours-long sum that later makes the second
    // kind of sign is judged against the fraud itself.
    let mut rig = Rig::new("2026-11-10T09:00:00");
    rig.history("L4", "192.0.2.40", jst("2026-11-10T09:00:00"), 7);
    let onset = jst("2026-11-18T13:00:00"); // a Wednesday afternoon
    for i in 0..14 {
        let at = onset.checked_add(SignedDuration::from_secs(1500 * i)).unwrap();
        rig.call("L4", at, 1190, &format!("0108821600{i:04}"), "192.0.2.40", 300.0);
    }
    rig.until(jst("2026-11-18T19:00:00"));
    assert!(rig.engine.counters.unlocks >= 1, "the first dear hour is a rise");
    let kinds = rig.kinds(T5, "line:L4");
    assert_eq!(kinds.first(), Some(&"finding"), "the lasting fraud is found: {kinds:?}");
}
