//! The engine: calls in, governance decisions out, on one clock.
//!
//! The same code runs on billing files (replay: the clock is the data's own, actuators are
//! recorded) and on live calls from Kamailio (the clock is the wall's, actuators are real). Every
//! `interval` it evaluates the lines with international calls in the window, the countries being
//! called, the addresses under suspension and, once a day, dormant lines. State is per active line
//! and per country, never per call beyond the calls still in the window, so memory stays bounded on
//! files of any length, and it is a deterministic function of the calls seen (a shard can be
//! rebuilt by replay, DESIGN.md).

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::hash::{BuildHasher, Hasher};
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use mamori_core::action::{ActionRecord, ActionState};
use mamori_core::actuator::Actuator;
use mamori_core::authorization::Authorization;
use mamori_core::catalog::{self, MeasureId, NotificationDuty};
use mamori_core::clock::DataClock;
use mamori_core::config::PhoneConfig;
use mamori_core::governance::{Decision, Governance, GovernanceError, Proposal};
use mamori_core::subject::{Actor, SubscriberId, Target};
use mamori_core::view::{Admission, ViewError, ViewGate};
use rustc_hash::{FxBuildHasher, FxHashMap};
use serde::Serialize;
use serde_json::json;

use crate::cdr::Cdr;
use crate::cdr::parser::CdrRef;
use crate::detect::country::{self, CountrySettings};
use crate::detect::{dormant, source, surge};
use crate::learn::LaggedPeak;
use crate::learned::{CountryLearned, Learned, LineLearned};
use crate::line_index::{LineIndex, ShortId};
use crate::live::{CallEvent, Tariff};
use crate::numbering::{CountryCode, Destination, NumberingPlan};
use crate::recent::Recent;
use crate::views::{
    CallDetail, CountryActivity, CountryView, DormantView, LineCalls, LineLastInternational, LineTotals,
    SourceActivity, SourceView, SurgeCallDetails, SurgeTotals,
};

/// Which clock the engine runs on.
#[derive(Debug, Clone)]
pub enum Mode {
    /// Billing files on their own clock: the engine moves the data clock and ticks governance
    /// (expiry, lapses) itself.
    Replay(DataClock),
    /// Live calls on the wall clock: the server's scheduler expires actions.
    Live,
}

/// Engine failures that stop it (the store is gone); everything else is logged and counted.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// A view doesn't match the catalog (a programming error caught at start).
    #[error(transparent)]
    View(#[from] ViewError),
    /// Governance or its store failed.
    #[error(transparent)]
    Governance(#[from] GovernanceError),
}

/// Line → subscriber (and language), from the carrier's customer records.
#[derive(Debug, Clone, Default)]
pub struct Subscribers {
    by_line: FxHashMap<String, SubscriberId>,
}

/// A subscribers file that can't be used.
#[derive(Debug, thiserror::Error)]
pub enum SubscribersError {
    /// Unreadable.
    #[error("{path}: {detail}")]
    Read {
        /// File.
        path: String,
        /// Cause.
        detail: String,
    },
    /// A bad row.
    #[error("{path}:{line}: {detail}")]
    Row {
        /// File.
        path: String,
        /// Line.
        line: u64,
        /// What.
        detail: String,
    },
}

impl Subscribers {
    /// Reads `line_id,subscriber_id[,language]` CSV with a header.
    pub fn load(path: &Path) -> Result<Self, SubscribersError> {
        let p = path.display().to_string();
        let mut r = csv::ReaderBuilder::new()
            .flexible(true)
            .from_path(path)
            .map_err(|e| SubscribersError::Read { path: p.clone(), detail: e.to_string() })?;
        let headers = r.headers().map_err(|e| SubscribersError::Read { path: p.clone(), detail: e.to_string() })?;
        if headers.get(0) != Some("line_id") || headers.get(1) != Some("subscriber_id") {
            return Err(SubscribersError::Row {
                path: p,
                line: 1,
                detail: "the header must start with `line_id,subscriber_id`".into(),
            });
        }
        let mut s = Subscribers::default();
        for row in r.records() {
            let row = row.map_err(|e| SubscribersError::Read { path: p.clone(), detail: e.to_string() })?;
            let line = row.position().map(|q| q.line()).unwrap_or_default();
            match (row.get(0).map(str::trim), row.get(1).map(str::trim)) {
                (Some(l), Some(sub)) if !l.is_empty() && !sub.is_empty() => s.insert(l, sub),
                _ => {
                    return Err(SubscribersError::Row {
                        path: p,
                        line,
                        detail: "line_id and subscriber_id must not be empty".into(),
                    });
                }
            }
        }
        Ok(s)
    }

    /// Adds one.
    pub fn insert(&mut self, line_id: &str, subscriber: &str) {
        self.by_line.insert(line_id.to_owned(), SubscriberId(subscriber.to_owned()));
    }

    /// The subscriber of a line; a line not in the records is its own subscriber id.
    pub fn of(&self, line_id: &str) -> SubscriberId {
        self.by_line.get(line_id).cloned().unwrap_or_else(|| SubscriberId(line_id.to_owned()))
    }

    /// How many lines are known.
    pub fn len(&self) -> usize {
        self.by_line.len()
    }

    /// None known.
    pub fn is_empty(&self) -> bool {
        self.by_line.is_empty()
    }
}

/// One governance event, as `mamori replay cdr` prints it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PhoneEvent {
    /// Data (or wall) time, RFC 3339 in Japan time.
    pub at: String,
    /// Catalog id.
    pub measure: &'static str,
    /// `finding`, `consent-requested`, `applied`, `notified`, `pending-approval` or `lifted`.
    pub event: &'static str,
    /// `line:…`, `ip:…` or `country:…`.
    pub target: String,
    /// The action, once there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action_id: Option<String>,
    /// Why (evidence summary, lift reason).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<serde_json::Value>,
}

/// What the engine has counted.
#[derive(Debug, Clone, Default, Serialize)]
pub struct EngineCounters {
    /// Calls taken in.
    pub calls: u64,
    /// International ones.
    pub international: u64,
    /// Live events whose number could not be classified.
    pub unclassified: u64,
    /// Live ends for calls never started (or already dropped).
    pub unmatched_ends: u64,
    /// Evaluations run.
    pub evaluations: u64,
    /// Stage-2 unlocks.
    pub unlocks: u64,
    /// Governance calls that failed without stopping the engine.
    pub governance_errors: u64,
    /// Actuator calls that failed.
    pub actuator_errors: u64,
}

/// Calls older than this with no end are assumed lost (a BYE never seen) and dropped.
const STALE_CALL: SignedDuration = SignedDuration::from_hours(6);
/// Past calls a line needs before "new country / new address" means anything.
const HISTORY_MIN_CALLS: u32 = 5;
/// Re-examine a line already judged legitimate only when its charge has doubled since.
const REJUDGE_FACTOR: f64 = 2.0;
/// How often an unanswered consent request is re-proposed while the fraud goes on (so it becomes
/// an emergency suspension when night falls).
const REPROPOSE_EVERY: SignedDuration = SignedDuration::from_mins(5);
/// A line's calls join its history only when it has been calm this long.
const CALM_BEFORE_LEARNING: SignedDuration = SignedDuration::from_hours(1);
/// Yen per minute from which a destination counts as expensive.
const EXPENSIVE_JPY_PER_MIN: f64 = 150.0;
/// Time constant of a line's sustained charge (ms): about two hours of calls count.
const SUSTAINED_TAU_MS: f64 = 2.0 * 3600.0 * 1000.0;
/// Calls in progress that count as parallel (must match `detect::surge`).
const PARALLEL_CALLS: u32 = surge::PARALLEL_CALLS;
/// The end of a call that goes on ([`ActiveCall::end`]).
const LIVE: i64 = i64::MAX;
/// Marks a live call whose start was taken in but not held (domestic).
const NOT_HELD: u32 = u32::MAX;
/// How long countries are watched before their normal volume is trusted.
const COUNTRY_WARMUP: SignedDuration = SignedDuration::from_hours(24);
/// An idle country whose normal calls in progress fell to this is forgotten.
const FORGET_COUNTRY_BELOW: f64 = 0.01;
/// How many hot lines ahead the 10-s evaluation starts loading a line's record: between two
/// evaluations the rows of 10 s of data push the hot lines' records out of the near caches, and
/// one line's record and calls were two misses after each other. 4 and 2 did as well as 8 and 4
/// or 3 and 1 (BENCHMARKS.md, issue 4, ninth round).
const PREFETCH_LINES_AHEAD: usize = 4;
/// How many hot lines ahead it starts loading a line's calls (their address is in the record,
/// loaded by then).
const PREFETCH_CALLS_AHEAD: usize = 2;
/// History sizes per line.
const HISTORY_COUNTRIES: usize = 16;
const HISTORY_SOURCES: usize = 8;
const HISTORY_CALLING: usize = 8;

#[derive(Debug, Clone)]
struct ActiveCall {
    key: u64,
    /// Unix milliseconds: the per-evaluation arithmetic stays on integers.
    start: i64,
    /// [`LIVE`] while the call goes on: one integer rather than an `Option`, so that the sums
    /// over a line's calls take the bound without a branch on whether it has ended.
    end: i64,
    jpy_per_sec: f64,
    country: CountryCode,
    source_ip: IpAddr,
    calling: u64,
    new_country: bool,
    new_source_ip: bool,
    unfamiliar_calling: bool,
}

impl ActiveCall {
    /// Without a branch: every hot line sums its calls every evaluation, and which of them
    /// overlap is data (an early return, or even a masked result, compiled to a mispredicted
    /// branch around the division). An empty overlap gives `0 / 1000 * rate`, the same +0.0 an
    /// early return gave, since rates are finite and never negative (see `Tariff::new`; a
    /// billed rate is a charge over a positive duration).
    #[inline]
    fn accrued_between(&self, from: i64, to: i64) -> f64 {
        let start = self.start.max(from);
        let end = self.end.min(to);
        secs_of_ms((end - start).max(0)) * self.jpy_per_sec
    }
    #[inline]
    fn in_progress_at(&self, t: i64) -> bool {
        (self.start <= t) & (self.end > t)
    }
    /// Left the window (ended before `from`), or live for so long that its end is surely lost.
    #[inline]
    fn gone(&self, from: i64, t: i64) -> bool {
        (self.end < from) | ((self.end == LIVE) & (t - self.start > STALE_CALL.as_millis() as i64))
    }
}

/// `ms as f64 / 1000.0` for `0 <= ms < 2^53`, without the division when `ms` is whole seconds
/// (every time of a billing record is): the quotient is then an integer, which the division
/// rounds to itself, so the number is the same. The division's latency was the longest step of
/// the sums over a line's calls, every evaluation.
#[inline]
fn secs_of_ms(ms: i64) -> f64 {
    if ms % 1000 == 0 { (ms / 1000) as f64 } else { ms as f64 / 1000.0 }
}

/// What a line's calls add up to at an evaluation, in one pass over them.
#[derive(Debug, Clone, Copy)]
struct CallSums {
    /// Charge accrued in the window.
    window_jpy: f64,
    /// Charge accrued since the last update of the moving sum.
    accrued: f64,
    /// The rate of the calls in progress.
    rate_jpy_per_min: f64,
    calls_in_progress: u32,
    /// Some call has [gone](ActiveCall::gone): it must be dropped and the sums taken again.
    any_gone: bool,
}

impl CallSums {
    /// Each sum adds the same terms in the same order, starting from -0.0 as `Iterator::sum` does
    /// (the numbers are the bits separate passes gave); a call not in progress adds `+0.0` to the
    /// rate, which changes no sum of non-negative terms starting from `+0.0`. No branch per call:
    /// how many calls overlap the window or are in progress changes from line to line.
    #[inline]
    fn of(calls: &[ActiveCall], from: i64, since: i64, t: i64) -> CallSums {
        let mut sums =
            CallSums { window_jpy: -0.0, accrued: -0.0, rate_jpy_per_min: 0.0, calls_in_progress: 0, any_gone: false };
        for c in calls {
            sums.window_jpy += c.accrued_between(from, t);
            sums.accrued += c.accrued_between(since, t);
            let in_progress = c.in_progress_at(t);
            // The rate or +0.0, by a mask (a `bool` select compiled to a branch).
            let rate = c.jpy_per_sec * 60.0;
            sums.rate_jpy_per_min += f64::from_bits(rate.to_bits() & u64::from(in_progress).wrapping_neg());
            sums.calls_in_progress += u32::from(in_progress);
            sums.any_gone |= c.gone(from, t);
        }
        sums
    }
}

/// What a line's calm calls taught it: its countries and SIP clients, most recent last.
#[derive(Debug, Clone, Default)]
struct History {
    countries: Vec<u16>,
    sources: Vec<IpAddr>,
}

/// The part of a line's state that its domestic calls (most rows) read and write, laid out in the
/// first two cache lines of [`LineState`]: the learning gate, the count, the history's last SIP
/// client (the usual call repeats it, so the list is not read) and the recent calling numbers
/// (a PBX's vary from call to call).
#[derive(Debug, Clone)]
#[repr(C)]
struct OwnUse {
    /// Calls that start after this instant (nanoseconds since the epoch) teach the line its own
    /// use: `i128::MAX` while a verdict stands, the last rise plus [`CALM_BEFORE_LEARNING`] after
    /// one, `i128::MIN` before any. Kept by [`LineState::set_verdict`] and
    /// [`LineState::set_last_rise`].
    learn_after_ns: i128,
    /// Calls learned from.
    calls: u32,
    /// `History::sources.last()`.
    last_source: Option<IpAddr>,
    /// The calling numbers' hashes, most recent last.
    calling: Recent<u64, HISTORY_CALLING>,
}

impl Default for OwnUse {
    fn default() -> Self {
        OwnUse { learn_after_ns: i128::MIN, calls: 0, last_source: None, calling: Recent::default() }
    }
}

/// Makes `v` the most recent of `list` (most recent last; the oldest goes when it holds `cap`).
pub(crate) fn remember<T: PartialEq + Copy>(list: &mut Vec<T>, v: T, cap: usize) {
    if list.last() == Some(&v) {
        // The usual case: the same address or number as the last call.
        return;
    }
    if let Some(i) = list.iter().position(|x| *x == v) {
        // Most recent last, so the oldest goes first when full.
        list.remove(i);
    } else if list.len() >= cap {
        list.remove(0);
    }
    list.push(v);
}

impl Verdict {
    /// The subscriber's own use, as judged at this rise.
    fn legit(rise: &surge::Rise) -> Verdict {
        Verdict::Legit {
            judged_at_jpy: rise.projected_jpy,
            sustained: rise.sustained,
            parallel: rise.calls_in_progress >= PARALLEL_CALLS,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Verdict {
    Calm,
    /// Judged the subscriber's own use at this charge, with these supporting signs.
    Legit {
        judged_at_jpy: f64,
        sustained: bool,
        parallel: bool,
    },
    Fraud {
        action_id: String,
        last_proposed: Timestamp,
    },
}

/// One line's state. It starts a cache line with [`OwnUse`], so that a domestic call touches
/// that one line of the record.
#[derive(Debug)]
#[repr(C, align(64))]
struct LineState {
    own: OwnUse,
    history: History,
    verdict: Verdict,
    last_rise: Option<Timestamp>,
    line_id: Box<str>,
    subscriber: SubscriberId,
    calls: Vec<ActiveCall>,
    normal: LaggedPeak,
    /// Charges over the hours: a moving sum with a two-hour time constant.
    sustained_jpy: f64,
    sustained_at: i64,
    normal_sustained: LaggedPeak,
    last_international: Option<Timestamp>,
    known_since: Timestamp,
    hot: bool,
    dormant_asked: bool,
}

impl LineState {
    /// Starts loading the fields an evaluation reads (software prefetches: nothing waits).
    #[inline]
    fn prefetch_head(&self) {
        fn line_of<T>(field: &T) {
            prefetch_index::prefetch_index(std::slice::from_ref(field), 0);
        }
        line_of(&self.verdict);
        line_of(&self.last_rise);
        line_of(&self.calls);
        line_of(&self.normal);
        line_of(&self.sustained_at);
        line_of(&self.normal_sustained);
        line_of(&self.hot);
    }

    /// A domestic call: the SIP client and the calling number of ordinary calls are the line's
    /// own, learned while the line is calm (its verdict calm, its last rise an hour past).
    #[inline]
    fn learn_own(&mut self, start: Timestamp, source_ip: &IpAddr, calling: u64) {
        let learns = start.as_nanosecond() > self.own.learn_after_ns;
        debug_assert_eq!(
            learns,
            matches!(self.verdict, Verdict::Calm)
                && self.last_rise.is_none_or(|r| start.duration_since(r) > CALM_BEFORE_LEARNING),
            "the learning gate follows the verdict and the last rise"
        );
        if learns {
            self.learn(source_ip, calling);
        }
    }

    /// A call of the line's calm use joins its history. The address comes by reference, from
    /// where the row holds it: passed by value, it was copied to the stack in two stores (16 bytes
    /// and 1) and read back in loads that straddle them, which the processor cannot forward from
    /// the stores: a stall on every domestic row.
    #[inline]
    fn learn(&mut self, source_ip: &IpAddr, calling: u64) {
        let own = &mut self.own;
        if own.last_source.as_ref() != Some(source_ip) {
            remember(&mut self.history.sources, *source_ip, HISTORY_SOURCES);
            own.last_source = Some(*source_ip);
        }
        own.calling.remember(calling);
        own.calls = own.calls.saturating_add(1);
    }

    /// Every change of the verdict goes through here, so the learning gate follows it.
    fn set_verdict(&mut self, verdict: Verdict) {
        self.verdict = verdict;
        self.set_learning_gate();
    }

    /// A rise at `t`: the line learns again only an hour after it.
    fn set_last_rise(&mut self, t: Timestamp) {
        self.last_rise = Some(t);
        self.set_learning_gate();
    }

    fn set_learning_gate(&mut self) {
        self.own.learn_after_ns = match (&self.verdict, self.last_rise) {
            (Verdict::Calm, None) => i128::MIN,
            (Verdict::Calm, Some(r)) => r.checked_add(CALM_BEFORE_LEARNING).map_or(i128::MAX, |a| a.as_nanosecond()),
            _ => i128::MAX,
        };
    }

    /// After an evaluation (and its judgement, if it rose): a legitimate-use verdict ends with its
    /// rise, and the normal levels learn this window unless the line is under a fraud verdict or
    /// rose without a verdict (a rise judged legitimate is learned, after the lag, from the hour
    /// it was judged in, unless [`spoil_hour`](Self::spoil_hour) kept that hour out; a fraud never
    /// is).
    #[inline]
    fn settle(&mut self, t: Timestamp, window_jpy: f64, sustained_jpy: f64, rising: bool, half_life: SignedDuration) {
        let fraud = matches!(self.verdict, Verdict::Fraud { .. });
        if !rising && matches!(self.verdict, Verdict::Legit { .. }) {
            self.set_verdict(Verdict::Calm);
        }
        let spoiled = fraud || (rising && matches!(self.verdict, Verdict::Calm));
        self.normal.observe(t, window_jpy, spoiled, half_life);
        self.normal_sustained.observe(t, sustained_jpy, spoiled, half_life);
    }

    /// Keeps the hour of `t` out of the learned levels.
    fn spoil_hour(&mut self, t: Timestamp, half_life: SignedDuration) {
        // A zero value raises no maximum: only the hour's mark changes.
        self.normal.observe(t, 0.0, true, half_life);
        self.normal_sustained.observe(t, 0.0, true, half_life);
    }
}

#[derive(Debug, Default)]
struct CountryState {
    in_progress: u32,
    lines: FxHashMap<u32, u32>,
    sources: FxHashMap<IpAddr, u32>,
    normal: LaggedPeak,
    flagged: Option<String>,
    calm_since: Option<Timestamp>,
    /// (the normal's `peak_at`, a time before which its normal is surely above the level at
    /// which an idle country is forgotten): spares the exponential per idle country and
    /// evaluation (hundreds of countries, every 10 s of data time).
    kept_until: Option<(Option<Timestamp>, Timestamp)>,
    /// In [`Engine::active_countries`].
    listed: bool,
}

#[derive(Debug)]
struct BlockedSource {
    action_id: String,
    last_call: Timestamp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct PendingEnd {
    at: Timestamp,
    line: u32,
    call: u64,
}

struct Gates {
    surge_totals: ViewGate<SurgeTotals>,
    surge_details: ViewGate<SurgeCallDetails>,
    source: ViewGate<SourceView>,
    country: ViewGate<CountryView>,
    dormant: ViewGate<DormantView>,
}

/// The telephone-fraud engine. Not `Sync`: one task owns it.
pub struct Engine {
    gov: Arc<Governance>,
    mode: Mode,
    actuators: Vec<Arc<dyn Actuator>>,
    settings: PhoneConfig,
    surge: surge::SurgeSettings,
    country_settings: CountrySettings,
    tariff: Tariff,
    plan: NumberingPlan,
    subscribers: Subscribers,
    gates: Gates,
    tz: TimeZone,
    lines: Vec<LineState>,
    /// Line id (its bytes, as the CDR reader hands them out) → slot in `lines`.
    line_index: LineIndex,
    hot: Vec<u32>,
    /// Spare buffer for [`Engine::evaluate_lines`]'s list of lines still hot.
    still_hot: Vec<u32>,
    /// [`Engine::evaluate_lines`]'s stage-1 record, reused from line to line.
    totals: LineTotals,
    /// [`Engine::dormant_until`]'s record, reused from line to line.
    dormant_record: LineLastInternational,
    /// Live calls in progress: key → (line slot or NOT_HELD, start in ms).
    live_calls: FxHashMap<u64, (u32, i64)>,
    ends: BinaryHeap<Reverse<PendingEnd>>,
    countries: FxHashMap<u16, CountryState>,
    /// The countries with calls in progress or flagged (and, until the next evaluation, those
    /// that just stopped being either), in the order they became so: what each evaluation looks
    /// at, instead of every country ever called.
    active_countries: Vec<u16>,
    /// No idle country can be forgotten before this (see [`Engine::forget_idle_countries`]);
    /// `None` when a country became idle since the last sweep.
    countries_kept_until: Option<Timestamp>,
    blocked_sources: FxHashMap<IpAddr, BlockedSource>,
    fraud_sources: FxHashMap<IpAddr, (u32, Timestamp)>,
    enabled: Vec<MeasureId>,
    enabled_checked: Option<std::time::Instant>,
    first_seen: Option<Timestamp>,
    next_eval: Option<Timestamp>,
    next_dormant_check: Option<Timestamp>,
    /// Deadlines of the actions this engine opened (expiry, consent and approval deadlines), so
    /// a replay ticks governance exactly when something is due, without scanning the store.
    deadlines: BinaryHeap<Reverse<Timestamp>>,
    now: Timestamp,
    events: Vec<PhoneEvent>,
    /// What was counted.
    pub counters: EngineCounters,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine").field("lines", &self.lines.len()).field("counters", &self.counters).finish()
    }
}

fn ms(t: Timestamp) -> i64 {
    t.as_millisecond()
}

fn ms_time(v: i64) -> Timestamp {
    Timestamp::from_millisecond(v).unwrap_or(Timestamp::UNIX_EPOCH)
}

fn hash_str(s: &str) -> u64 {
    hash_bytes(s.as_bytes())
}

/// The hash of a text's bytes: the same number as `hash_str` of that text (what `str::hash`
/// writes: the bytes, then 0xff), for the CDR reader's byte fields.
pub(crate) fn hash_bytes(b: &[u8]) -> u64 {
    let mut h = FxBuildHasher.build_hasher();
    h.write(b);
    h.write_u8(0xff);
    h.finish()
}

const PHONE_MEASURES: [MeasureId; 4] = [
    MeasureId::PhoneSuspendLineOnSurge,
    MeasureId::PhoneSuspendSipAuthFromIp,
    MeasureId::PhoneRestrictCountry,
    MeasureId::PhoneSuspendDormant,
];

impl Engine {
    /// An engine on `governance`, with `[phone]` settings, the subscriber directory and the
    /// actuators that enforce (a `RecordingActuator` in replay).
    pub fn new(
        governance: Arc<Governance>,
        settings: &PhoneConfig,
        subscribers: Subscribers,
        actuators: Vec<Arc<dyn Actuator>>,
        mode: Mode,
    ) -> Result<Engine, EngineError> {
        let clock = match &mode {
            Mode::Replay(c) => Arc::new(c.clone()) as Arc<dyn mamori_core::clock::Clock>,
            Mode::Live => Arc::new(mamori_core::clock::WallClock),
        };
        let gates = Gates {
            surge_totals: ViewGate::open(&governance, clock.clone())?,
            surge_details: ViewGate::open(&governance, clock.clone())?,
            source: ViewGate::open(&governance, clock.clone())?,
            country: ViewGate::open(&governance, clock.clone())?,
            dormant: ViewGate::open(&governance, clock)?,
        };
        let window_mins = settings.window.as_secs_f64() / 60.0;
        Ok(Engine {
            surge: surge::SurgeSettings {
                floor_jpy: settings.surge_floor_jpy as f64,
                factor: settings.surge_factor,
                window_mins,
                expensive_jpy_per_min: EXPENSIVE_JPY_PER_MIN,
                sustained_floor_jpy: settings.sustained_floor_jpy as f64,
            },
            country_settings: CountrySettings {
                min_calls: settings.country_min_calls,
                min_lines: settings.country_min_lines,
                factor: settings.country_factor,
            },
            tariff: Tariff::new(&settings.tariff),
            settings: settings.clone(),
            plan: NumberingPlan::new(),
            gov: governance,
            mode,
            actuators,
            subscribers,
            gates,
            tz: TimeZone::get("Asia/Tokyo").unwrap_or(TimeZone::UTC),
            lines: Vec::new(),
            line_index: LineIndex::default(),
            hot: Vec::new(),
            still_hot: Vec::new(),
            totals: LineTotals {
                line_id: String::new(),
                subscriber: SubscriberId(String::new()),
                window_jpy: 0.0,
                rate_jpy_per_min: 0.0,
                calls_in_progress: 0,
                normal_jpy: 0.0,
                sustained_jpy: 0.0,
                normal_sustained_jpy: 0.0,
            },
            dormant_record: LineLastInternational {
                line_id: String::new(),
                subscriber: SubscriberId(String::new()),
                last_international: None,
                known_since: Timestamp::UNIX_EPOCH,
            },
            live_calls: FxHashMap::default(),
            ends: BinaryHeap::new(),
            countries: FxHashMap::default(),
            active_countries: Vec::new(),
            countries_kept_until: None,
            blocked_sources: FxHashMap::default(),
            fraud_sources: FxHashMap::default(),
            enabled: Vec::new(),
            enabled_checked: None,
            first_seen: None,
            next_eval: None,
            next_dormant_check: None,
            deadlines: BinaryHeap::new(),
            now: Timestamp::UNIX_EPOCH,
            events: Vec::new(),
            counters: EngineCounters::default(),
        })
    }

    /// The events since the last call.
    pub fn take_events(&mut self) -> Vec<PhoneEvent> {
        std::mem::take(&mut self.events)
    }

    /// Lines known.
    pub fn lines(&self) -> usize {
        self.lines.len()
    }

    /// Calls held (in the window or in progress): what memory grows with.
    pub fn calls_held(&self) -> usize {
        self.hot.iter().filter_map(|i| self.lines.get(*i as usize)).map(|l| l.calls.len()).sum()
    }

    /// What the engine has learned (stage-1 levels only; see [`crate::learned`]), to be
    /// [restored](Self::restore) after a restart.
    pub fn learned(&self) -> Learned {
        let mut countries: Vec<CountryLearned> =
            self.countries.iter().map(|(code, c)| CountryLearned { code: *code, normal: c.normal.clone() }).collect();
        countries.sort_by_key(|c| c.code);
        Learned {
            version: crate::learned::FORMAT_VERSION,
            taken_at: self.now,
            first_seen: self.first_seen,
            lines: self
                .lines
                .iter()
                .map(|l| LineLearned {
                    line_id: l.line_id.to_string(),
                    normal: l.normal.clone(),
                    normal_sustained: l.normal_sustained.clone(),
                    known_since: l.known_since,
                    last_international: l.last_international,
                })
                .collect(),
            countries,
        }
    }

    /// Takes back what an earlier engine learned ([`Self::learned`]): each line's and country's
    /// normal levels, when lines were first seen and last called abroad. Call it before the
    /// first event; a line or country the engine already knows keeps its own state. Returns the
    /// number of lines restored.
    pub fn restore(&mut self, learned: Learned) -> usize {
        let mut restored = 0;
        for l in learned.lines {
            if self.line_index.get(l.line_id.as_bytes()).is_some() {
                continue;
            }
            let i = self.line_slot(l.line_id.as_bytes(), l.known_since);
            if let Some(line) = self.lines.get_mut(i as usize) {
                line.normal = l.normal;
                line.normal_sustained = l.normal_sustained;
                line.last_international = l.last_international;
                line.sustained_at = ms(learned.taken_at);
                restored += 1;
            }
        }
        for c in learned.countries {
            self.countries.entry(c.code).or_insert_with(|| CountryState { normal: c.normal, ..Default::default() });
        }
        // The idle countries' sweep bound is recomputed with the restored normals.
        self.countries_kept_until = None;
        self.first_seen = match (self.first_seen, learned.first_seen) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        restored
    }

    fn line_slot(&mut self, line_id: &[u8], at: Timestamp) -> u32 {
        if let Some(i) = self.line_index.get(line_id) {
            return i;
        }
        let i = u32::try_from(self.lines.len()).unwrap_or(u32::MAX);
        // Line ids come from `str`s or the reader's UTF-8 fields: the conversion is exact.
        let text: Box<str> = String::from_utf8_lossy(line_id).into();
        self.lines.push(LineState {
            own: OwnUse::default(),
            subscriber: self.subscribers.of(&text),
            line_id: text,
            calls: Vec::new(),
            normal: LaggedPeak::default(),
            sustained_jpy: 0.0,
            sustained_at: ms(at),
            normal_sustained: LaggedPeak::default(),
            history: History::default(),
            last_international: None,
            known_since: at,
            last_rise: None,
            verdict: Verdict::Calm,
            hot: false,
            dormant_asked: false,
        });
        self.line_index.insert(line_id, i);
        i
    }

    /// Takes one billing record. Records must come in start order (see
    /// [`Reorder`](crate::cdr::order::Reorder)); the engine first evaluates up to its start.
    pub fn on_cdr(&mut self, cdr: &Cdr) -> Result<(), EngineError> {
        self.advance_to(cdr.start)?;
        let secs = cdr.end.duration_since(cdr.start).as_secs_f64();
        let jpy_per_sec = if secs > 0.0 { cdr.charge_jpy as f64 / secs } else { 0.0 };
        self.add_cdr(cdr, jpy_per_sec);
        Ok(())
    }

    /// Takes a domestic billing record out of order: it only teaches the line its own SIP client
    /// and calling number, so it neither waits in the reorder buffer nor moves the clock.
    pub fn on_domestic_cdr(&mut self, cdr: &CdrRef<'_>) {
        if !cdr.is_international() {
            // `add_call`'s path for a domestic call, without the arguments only held calls use
            // (most rows come here).
            let (li, calling) = self.count_call(cdr.line_id, cdr.calling_number, cdr.start);
            if let Some(line) = self.lines.get_mut(li as usize) {
                line.learn_own(cdr.start, &cdr.source_ip, calling);
            }
        }
    }

    /// The slot of a known line, looked up ahead of its row (see [`crate::domestic`]).
    #[inline]
    pub(crate) fn find_line(&self, key: &ShortId) -> Option<u32> {
        self.line_index.get_short(key)
    }

    /// Starts loading where [`Engine::find_line`] will look for `key` (a software prefetch).
    #[inline]
    pub(crate) fn prefetch_line(&self, key: &ShortId) {
        self.line_index.prefetch_short(key);
    }

    /// Reads the head of a line's record ahead of its row, so that the row finds it in the cache.
    #[inline]
    pub(crate) fn touch_line(&self, slot: u32) -> (i128, u32) {
        // Both cache lines of the record's head: the gate, and the calling numbers.
        self.lines.get(slot as usize).map_or((0, 0), |l| (l.own.learn_after_ns, l.own.calling.len() as u32))
    }

    /// [`Engine::on_domestic_cdr`] for a row held in a [`crate::domestic`] batch: its line's slot
    /// as looked up ahead (`None`: not known then, so found or added now) and the calling number's
    /// hash ([`hash_bytes`]).
    #[inline]
    pub(crate) fn on_domestic_row(
        &mut self,
        slot: Option<u32>,
        line: &ShortId,
        start: Timestamp,
        source_ip: &IpAddr,
        calling: u64,
    ) {
        self.count(start);
        let li = match slot {
            Some(li) => li,
            None => {
                let (bytes, len) = line.bytes();
                self.line_slot(bytes.get(..len).unwrap_or_default(), start)
            }
        };
        if let Some(line) = self.lines.get_mut(li as usize) {
            line.learn_own(start, source_ip, calling);
        }
    }

    /// Every line's learned own use and history, as text, line by line (for tests comparing
    /// two ways of feeding the engine).
    #[cfg(test)]
    pub(crate) fn learned_state(&self) -> String {
        use std::fmt::Write;
        let mut out = String::new();
        for l in &self.lines {
            let _ = writeln!(
                out,
                "{} {:?} {:?} calm={} calls={} last_rise={:?}",
                l.line_id,
                l.own,
                l.history,
                l.verdict == Verdict::Calm,
                l.calls.len(),
                l.last_rise
            );
        }
        out
    }

    /// Counts a call and finds its line: the line's slot and the calling number's hash.
    fn count_call(&mut self, line_id: &[u8], calling_number: &[u8], start: Timestamp) -> (u32, u64) {
        self.count(start);
        (self.line_slot(line_id, start), hash_bytes(calling_number))
    }

    /// Counts a call that starts at `start`.
    #[inline]
    fn count(&mut self, start: Timestamp) {
        self.counters.calls += 1;
        if self.first_seen.is_none() {
            self.first_seen = Some(start);
        }
    }

    fn add_cdr(&mut self, cdr: &Cdr, jpy_per_sec: f64) {
        // Only calls abroad are held (and need their key); most rows skip the hash.
        let key = if cdr.is_international() { hash_str(&cdr.call_id) } else { 0 };
        self.add_call(
            key,
            cdr.line_id.as_bytes(),
            cdr.calling_number.as_bytes(),
            cdr.destination,
            cdr.source_ip,
            cdr.start,
            Some(cdr.end),
            jpy_per_sec,
        );
    }

    /// Takes one live event (calls are valued in progress with the tariff).
    pub fn on_call_event(&mut self, event: CallEvent) {
        match event {
            CallEvent::Start(s) => {
                let Ok(destination) = self.plan.classify(&s.called_number) else {
                    self.counters.unclassified += 1;
                    return;
                };
                let rate = match destination {
                    Destination::International(cc) => self.tariff.jpy_per_sec(cc),
                    Destination::Domestic => 0.0,
                };
                let key = hash_str(&s.call_id);
                let held = self.add_call(
                    key,
                    s.line_id.as_bytes(),
                    s.calling_number.as_bytes(),
                    destination,
                    s.source_ip,
                    s.at,
                    None,
                    rate,
                );
                // Domestic calls are not held; their end is expected, not unmatched.
                self.live_calls.insert(key, (held.unwrap_or(NOT_HELD), ms(s.at)));
            }
            CallEvent::End(e) => {
                let key = hash_str(&e.call_id);
                let Some((line, _)) = self.live_calls.remove(&key) else {
                    self.counters.unmatched_ends += 1;
                    return;
                };
                if line == NOT_HELD {
                    return;
                }
                if let Some(call) =
                    self.lines.get_mut(line as usize).and_then(|l| l.calls.iter_mut().find(|c| c.key == key))
                {
                    let end = e.at.max(ms_time(call.start));
                    call.end = ms(end);
                    let secs = (ms(end) - call.start) as f64 / 1000.0;
                    if let (Some(charge), true) = (e.charge_jpy, secs > 0.0) {
                        call.jpy_per_sec = charge as f64 / secs;
                    }
                    let ip = call.source_ip;
                    self.ends.push(Reverse(PendingEnd { at: end, line, call: key }));
                    if let Some(b) = self.blocked_sources.get_mut(&ip) {
                        b.last_call = b.last_call.max(end);
                    }
                }
            }
        }
    }

    /// Adds a call; returns the line slot when the call is international (held in the window).
    #[allow(clippy::too_many_arguments)]
    fn add_call(
        &mut self,
        key: u64,
        line_id: &[u8],
        calling_number: &[u8],
        destination: Destination,
        source_ip: IpAddr,
        start: Timestamp,
        end: Option<Timestamp>,
        jpy_per_sec: f64,
    ) -> Option<u32> {
        let (li, calling) = self.count_call(line_id, calling_number, start);
        let line = self.lines.get_mut(li as usize)?;
        let Destination::International(country) = destination else {
            line.learn_own(start, &source_ip, calling);
            return None;
        };
        self.counters.international += 1;
        if end.is_some_and(|e| e <= start) {
            // Unanswered: no charge, no history; still the date of an attempt abroad.
            return None;
        }
        line.last_international = Some(line.last_international.map_or(start, |l| l.max(start)));
        let call = ActiveCall {
            key,
            start: ms(start),
            end: end.map_or(LIVE, ms),
            jpy_per_sec,
            country,
            source_ip,
            calling,
            new_country: !line.history.countries.contains(&country.0),
            new_source_ip: !line.history.sources.contains(&source_ip),
            unfamiliar_calling: !line.own.calling.contains(&calling),
        };
        line.calls.push(call);
        if !line.hot {
            line.hot = true;
            self.hot.push(li);
        }
        if let Some(b) = self.blocked_sources.get_mut(&source_ip) {
            b.last_call = b.last_call.max(end.unwrap_or(start));
        }
        let c = self.countries.entry(country.0).or_default();
        c.in_progress += 1;
        if !c.listed {
            c.listed = true;
            self.active_countries.push(country.0);
        }
        *c.lines.entry(li).or_default() += 1;
        *c.sources.entry(source_ip).or_default() += 1;
        if let Some(end) = end {
            self.ends.push(Reverse(PendingEnd { at: end, line: li, call: key }));
        }
        Some(li)
    }

    /// Runs every evaluation due up to `now` (data time in replay, wall time live).
    pub fn advance_to(&mut self, now: Timestamp) -> Result<(), EngineError> {
        let interval = self.settings.interval;
        let mut next = match self.next_eval {
            Some(n) => n,
            None => {
                let step = interval.as_nanos().max(1);
                let t = now.as_nanosecond();
                let first = Timestamp::from_nanosecond((t / step + 1) * step).unwrap_or(now);
                self.next_dormant_check = Some(first);
                first
            }
        };
        while next <= now {
            // Nothing in flight: jump over empty evaluations to the last one due.
            if self.hot.is_empty()
                && self.ends.is_empty()
                && self.blocked_sources.is_empty()
                && !self.any_country_flag()
            {
                let steps = now.duration_since(next).as_nanos() / interval.as_nanos().max(1);
                if steps > 0 {
                    let jump =
                        next.checked_add(SignedDuration::from_nanos_i128(steps * interval.as_nanos())).unwrap_or(now);
                    self.governance_deadlines_until(jump)?;
                    self.dormant_until(jump)?;
                    next = jump;
                }
            }
            self.evaluate(next)?;
            next = next.checked_add(interval).unwrap_or(now);
        }
        self.next_eval = Some(next);
        self.now = self.now.max(now);
        Ok(())
    }

    fn any_country_flag(&self) -> bool {
        self.countries.values().any(|c| c.flagged.is_some())
    }

    fn set_clock(&mut self, at: Timestamp) {
        if let Mode::Replay(c) = &self.mode {
            c.advance_to(at);
        }
        self.now = self.now.max(at);
    }

    fn enabled(&mut self, m: MeasureId) -> bool {
        // Wall time, not data time: an operator enables or disables a measure in real time, and
        // a replay must not query the store every simulated minute.
        let now = std::time::Instant::now();
        if self.enabled_checked.is_none_or(|t| now.duration_since(t) > std::time::Duration::from_secs(1)) {
            self.enabled = PHONE_MEASURES.into_iter().filter(|m| self.gov.is_enabled(*m).unwrap_or(false)).collect();
            self.enabled_checked = Some(now);
        }
        self.enabled.contains(&m)
    }

    fn evaluate(&mut self, t: Timestamp) -> Result<(), EngineError> {
        self.set_clock(t);
        self.counters.evaluations += 1;
        if self.counters.evaluations % 64 == 0 && !self.live_calls.is_empty() {
            // Ends that never came (a lost BYE) must not grow memory forever.
            let oldest = ms(t) - STALE_CALL.as_millis() as i64;
            self.live_calls.retain(|_, (_, start)| *start >= oldest);
        }
        self.governance_deadlines_until(t)?;
        self.process_ends(t);
        self.evaluate_lines(t)?;
        self.evaluate_sources(t)?;
        self.evaluate_countries(t)?;
        self.dormant_until(t)?;
        Ok(())
    }

    fn process_ends(&mut self, t: Timestamp) {
        while let Some(Reverse(e)) = self.ends.peek().copied() {
            if e.at > t {
                break;
            }
            self.ends.pop();
            let Some(line) = self.lines.get(e.line as usize) else { continue };
            let Some(call) = line.calls.iter().find(|c| c.key == e.call) else { continue };
            let (cc, ip) = (call.country.0, call.source_ip);
            self.release_country(e.line, cc, ip);
        }
    }

    fn release_country(&mut self, line: u32, cc: u16, ip: IpAddr) {
        if let Some(c) = self.countries.get_mut(&cc) {
            c.in_progress = c.in_progress.saturating_sub(1);
            if c.in_progress == 0 {
                self.countries_kept_until = None;
            }
            if let Some(n) = c.lines.get_mut(&line) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    c.lines.remove(&line);
                }
            }
            if let Some(n) = c.sources.get_mut(&ip) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    c.sources.remove(&ip);
                }
            }
        }
    }

    fn evaluate_lines(&mut self, t: Timestamp) -> Result<(), EngineError> {
        let window_start = t.checked_sub(self.settings.window).unwrap_or(t);
        let surge_on = self.enabled(MeasureId::PhoneSuspendLineOnSurge);
        let hot = std::mem::take(&mut self.hot);
        // The list of the previous evaluation, reused: no allocation per evaluation.
        let mut still_hot = std::mem::take(&mut self.still_hot);
        still_hot.clear();
        still_hot.reserve(hot.len());
        let mut stale = Vec::new();
        // Most hot lines were evaluated 10 s ago, so their decay factors are the same number:
        // computed once (the same expression on the same input, so the same bits).
        let mut decay_for: Option<(i64, f64)> = None;
        for (k, &li) in hot.iter().enumerate() {
            if let Some(ahead) = hot.get(k + PREFETCH_LINES_AHEAD).and_then(|&a| self.lines.get(a as usize)) {
                ahead.prefetch_head();
            }
            if let Some(ahead) = hot.get(k + PREFETCH_CALLS_AHEAD).and_then(|&a| self.lines.get(a as usize)) {
                prefetch_index::prefetch_index(&ahead.calls, 0);
            }
            let Some(line) = self.lines.get_mut(li as usize) else { continue };
            // Drop calls that left the window; a calm line learns from them.
            let unsettled = !matches!(line.verdict, Verdict::Calm)
                || line.last_rise.is_some_and(|r| t.duration_since(r) <= CALM_BEFORE_LEARNING);
            let learn = !unsettled;
            let (from_ms, t_ms) = (ms(window_start), ms(t));
            // The moving sum decays from its last update and takes what accrued since.
            let since = line.sustained_at.min(t_ms);
            let mut sums = CallSums::of(&line.calls, from_ms, since, t_ms);
            if sums.any_gone {
                // Drop calls that left the window (a calm line learns from them), then sum again
                // without them. Rare: each call leaves once, after dozens of evaluations.
                let mut i = 0;
                while i < line.calls.len() {
                    if line.calls[i].gone(from_ms, t_ms) {
                        let c = line.calls.swap_remove(i);
                        if c.end == LIVE {
                            // A live call whose end never came: release its country count here.
                            stale.push((li, c.country.0, c.source_ip));
                        }
                        if learn {
                            remember(&mut line.history.countries, c.country.0, HISTORY_COUNTRIES);
                            line.learn(&c.source_ip, c.calling);
                        }
                    } else {
                        i += 1;
                    }
                }
                sums = CallSums::of(&line.calls, from_ms, since, t_ms);
            }
            if line.calls.is_empty() {
                line.hot = false;
                if matches!(line.verdict, Verdict::Legit { .. }) {
                    line.set_verdict(Verdict::Calm);
                }
                continue;
            }
            still_hot.push(li);
            if !surge_on {
                continue;
            }
            let CallSums { window_jpy, accrued, rate_jpy_per_min, calls_in_progress, .. } = sums;
            let decay = match decay_for {
                Some((dt, d)) if dt == t_ms - since => d,
                _ => {
                    let d = (-((t_ms - since) as f64) / SUSTAINED_TAU_MS).exp();
                    decay_for = Some((t_ms - since, d));
                    d
                }
            };
            line.sustained_jpy = line.sustained_jpy * decay + accrued;
            line.sustained_at = t_ms;
            let sustained_jpy = line.sustained_jpy;
            let projected = window_jpy.max(rate_jpy_per_min * self.surge.window_mins);
            if projected < self.surge.floor_jpy && sustained_jpy < self.surge.sustained_floor_jpy {
                // Under the floor no line can be rising: learn and move on without building a
                // record (the common case, and the replay's hot path).
                line.settle(t, window_jpy, sustained_jpy, false, self.settings.normal_half_life);
                if calls_in_progress == 0 && matches!(line.verdict, Verdict::Calm) {
                    // Nothing in progress: from here its charges only fall until its next call,
                    // which makes it hot again. Its calls stay for that evaluation to prune.
                    line.hot = false;
                    if still_hot.last() == Some(&li) {
                        still_hot.pop();
                    }
                }
                continue;
            }
            let normal_jpy = line.normal.normal(t, self.settings.normal_half_life);
            let normal_sustained_jpy = line.normal_sustained.normal(t, self.settings.normal_half_life);
            let Some(line) = self.lines.get(li as usize) else { continue };
            // The record is rewritten in place: its strings keep their buffers, so a line over
            // the floor costs no allocation (tens of thousands per hour on a busy file).
            let totals = &mut self.totals;
            totals.line_id.clear();
            totals.line_id.push_str(&line.line_id);
            totals.subscriber.0.clear();
            totals.subscriber.0.push_str(&line.subscriber.0);
            totals.window_jpy = window_jpy;
            totals.rate_jpy_per_min = rate_jpy_per_min;
            totals.calls_in_progress = calls_in_progress;
            totals.normal_jpy = normal_jpy;
            totals.sustained_jpy = sustained_jpy;
            totals.normal_sustained_jpy = normal_sustained_jpy;
            let Admission::Admitted(view) = self.gates.surge_totals.admit(&self.totals) else { continue };
            let rise = surge::rise(&view, &self.surge);
            let rising = rise.is_some();
            // Judged first, learned after: a rise that stage 2 judges the subscriber's own use is
            // learned (after the lag) from this very evaluation. Settled before the judgement, its
            // first hour was spoiled, so a line whose use abroad is one short burst a day never
            // learned it and had stage 2 unlocked for it every day.
            let judged = match rise {
                Some(rise) => self.on_rise(li, t, rise, window_start),
                None => Ok(()),
            };
            if let Some(line) = self.lines.get_mut(li as usize) {
                line.settle(t, window_jpy, sustained_jpy, rising, self.settings.normal_half_life);
            }
            judged?;
        }
        still_hot.append(&mut self.hot);
        self.hot = still_hot;
        self.still_hot = hot;
        for (li, cc, ip) in stale {
            self.release_country(li, cc, ip);
        }
        Ok(())
    }

    fn on_rise(
        &mut self,
        li: u32,
        t: Timestamp,
        rise: surge::Rise,
        window_start: Timestamp,
    ) -> Result<(), EngineError> {
        let Some(line) = self.lines.get_mut(li as usize) else { return Ok(()) };
        line.set_last_rise(t);
        if let Verdict::Fraud { last_proposed, .. } = &line.verdict {
            // The first check of the arm below, before cloning the verdict (a fraud line is over
            // its threshold at every evaluation, every 10 s).
            if t.duration_since(*last_proposed) < REPROPOSE_EVERY {
                return Ok(());
            }
        }
        match line.verdict.clone() {
            Verdict::Fraud { action_id, last_proposed } => {
                if t.duration_since(last_proposed) < REPROPOSE_EVERY {
                    return Ok(());
                }
                // The action may have ended elsewhere (the subscriber answered, a person lifted it,
                // the scheduler expired it).
                let state = if action_id.is_empty() {
                    None
                } else {
                    self.gov.store().action_state(&action_id).map_err(GovernanceError::from)?
                };
                match state {
                    Some(ActionState::Rejected | ActionState::Lifted) => {
                        // "It was me": this use is the subscriber's, and theirs to learn.
                        if let Some(line) = self.lines.get_mut(li as usize) {
                            line.set_verdict(Verdict::legit(&rise));
                        }
                    }
                    // Escalate only while charges rise in the window itself: the hours-long sum
                    // outlives the fraud it measured.
                    Some(ActionState::AwaitingConsent) | None
                        if rise.projected_jpy >= rise.threshold_jpy && self.gov.calendar().classify(t).is_urgent() =>
                    {
                        if let Some(line) = self.lines.get_mut(li as usize) {
                            line.set_verdict(Verdict::Fraud { action_id, last_proposed: t });
                        }
                        self.propose_line(li, t, json!({"still_rising": rise}))?;
                    }
                    Some(s) if s.is_final() => {
                        if let Some(line) = self.lines.get_mut(li as usize) {
                            line.set_verdict(Verdict::Calm);
                        }
                        self.propose_line(li, t, json!({"still_rising": rise}))?;
                    }
                    _ => {
                        if let Some(line) = self.lines.get_mut(li as usize) {
                            line.set_verdict(Verdict::Fraud { action_id, last_proposed: t });
                        }
                    }
                }
                return Ok(());
            }
            Verdict::Legit { judged_at_jpy, sustained, parallel }
                if rise.projected_jpy < REJUDGE_FACTOR * judged_at_jpy
                    && (sustained || !rise.sustained)
                    && (parallel || rise.calls_in_progress < PARALLEL_CALLS) =>
            {
                // Still the legitimate use judged before: nothing new to weigh.
                return Ok(());
            }
            _ => {}
        }
        // Stage 1 alone can't decide: unlock stage 2 for this line only.
        let record = self.line_calls(li, window_start, t);
        let Some(record) = record else { return Ok(()) };
        let view = match self.gates.surge_details.admit(&record) {
            Admission::Admitted(v) => v,
            Admission::OptedOut => return Ok(()),
            Admission::Locked => {
                let reason = format!(
                    "international charges {:.0} yen over the line's threshold of {:.0} yen (normal {:.0}); charges alone can't decide",
                    rise.projected_jpy, rise.threshold_jpy, rise.normal_jpy
                );
                let subject = Target::Line(record.line_id.clone());
                match self.gov.unlock_stage(
                    MeasureId::PhoneSuspendLineOnSurge,
                    2,
                    &subject,
                    &reason,
                    &detector("surge"),
                ) {
                    Ok(_) => self.counters.unlocks += 1,
                    Err(e) => return self.soft(e),
                }
                match self.gates.surge_details.admit(&record) {
                    Admission::Admitted(v) => v,
                    _ => return Ok(()),
                }
            }
        };
        let judgement = surge::judge(&view, &rise, &self.surge);
        if !judgement.other_user_highly_probable {
            let half_life = self.settings.normal_half_life;
            if let Some(line) = self.lines.get_mut(li as usize) {
                if judgement.unfamiliar {
                    // Judged the subscriber's own, but to new dear destinations: the hour it began
                    // is not learned (a slow fraud judged before its second kind of sign arrives
                    // must not raise the bar it has to cross); the hours after it, still judged
                    // the subscriber's, are.
                    line.spoil_hour(t, half_life);
                }
                line.set_verdict(Verdict::legit(&rise));
            }
            return Ok(());
        }
        let mut countries: Vec<u16> = view.calls.iter().map(|c| c.country.0).collect();
        countries.sort_unstable();
        countries.dedup();
        let evidence = json!({
            "rule": "surge.v1",
            "projected_jpy": rise.projected_jpy.round(),
            "threshold_jpy": rise.threshold_jpy.round(),
            "normal_jpy": rise.normal_jpy.round(),
            "calls_in_progress": rise.calls_in_progress,
            "sustained": rise.sustained,
            "anomalies": judgement.anomalies,
            "support": judgement.support,
            "countries": countries,
            "time_class": self.gov.calendar().classify(t).label(),
        });
        let target = Target::Line(record.line_id.clone());
        match self.gov.record_finding(MeasureId::PhoneSuspendLineOnSurge, &target, "phone.surge", evidence.clone()) {
            Ok(_) => {
                self.push_event(t, MeasureId::PhoneSuspendLineOnSurge, "finding", &target, None, Some(evidence.clone()))
            }
            Err(e) => return self.soft(e),
        }
        if let Some(line) = self.lines.get_mut(li as usize) {
            line.set_verdict(Verdict::Fraud { action_id: String::new(), last_proposed: t });
        }
        self.propose_line(li, t, evidence)?;
        self.suspect_sources(li, t, &view)?;
        Ok(())
    }

    fn line_calls(&self, li: u32, window_start: Timestamp, t: Timestamp) -> Option<LineCalls> {
        let line = self.lines.get(li as usize)?;
        let calls = line
            .calls
            .iter()
            .filter(|c| c.start <= ms(t))
            .map(|c| CallDetail {
                country: c.country,
                source_ip: c.source_ip,
                window_jpy: c.accrued_between(ms(window_start), ms(t)).max(c.jpy_per_sec * 60.0),
                jpy_per_min: c.jpy_per_sec * 60.0,
                new_country: c.new_country,
                new_source_ip: c.new_source_ip,
                unfamiliar_calling_number: c.unfamiliar_calling,
            })
            .collect();
        Some(LineCalls {
            line_id: line.line_id.to_string(),
            subscriber: line.subscriber.clone(),
            calls,
            history_known: line.own.calls >= HISTORY_MIN_CALLS,
            calling_numbers_stable: line.own.calling.len() <= 2,
        })
    }

    fn propose_line(&mut self, li: u32, t: Timestamp, evidence: serde_json::Value) -> Result<(), EngineError> {
        let Some(line) = self.lines.get(li as usize) else { return Ok(()) };
        let target = Target::Line(line.line_id.to_string());
        let proposal = Proposal {
            subscriber: Some(line.subscriber.clone()),
            ..Proposal::new(MeasureId::PhoneSuspendLineOnSurge, target, detector("surge"), evidence)
        };
        let decision = match self.gov.propose(proposal) {
            Ok(d) => d,
            Err(e) => return self.soft(e),
        };
        if let Some(line) = self.lines.get_mut(li as usize) {
            line.set_verdict(Verdict::Fraud { action_id: decision.action.id.clone(), last_proposed: t });
        }
        self.handle_decision(t, decision);
        Ok(())
    }

    fn suspect_sources(&mut self, li: u32, t: Timestamp, view: &SurgeCallDetails) -> Result<(), EngineError> {
        let total: f64 = view.calls.iter().map(|c| c.window_jpy).sum::<f64>().max(f64::MIN_POSITIVE);
        let mut by_ip: FxHashMap<IpAddr, (f64, bool, Vec<CountryCode>)> = FxHashMap::default();
        for c in &view.calls {
            let e = by_ip.entry(c.source_ip).or_insert((0.0, true, Vec::new()));
            e.0 += c.window_jpy;
            e.1 &= c.new_source_ip;
            if !e.2.contains(&c.country) {
                e.2.push(c.country);
            }
        }
        let history_known = view.history_known;
        let _ = li;
        for (ip, (jpy, new, countries)) in by_ip {
            let lines = {
                let e = self.fraud_sources.entry(ip).or_insert((0, t));
                // A campaign counts lines within a day.
                if t.duration_since(e.1) > SignedDuration::from_hours(24) {
                    *e = (0, t);
                }
                e.0 += 1;
                e.1 = t;
                e.0
            };
            if self.blocked_sources.contains_key(&ip) || !self.enabled(MeasureId::PhoneSuspendSipAuthFromIp) {
                continue;
            }
            let record = SourceActivity {
                source_ip: ip,
                countries,
                fraud_lines: lines,
                share_of_fraud_charge: jpy / total,
                new_for_lines: new && (history_known || lines >= 2),
                last_call: t,
            };
            let Admission::Admitted(v) = self.gates.source.admit(&record) else { continue };
            if !source::is_fraudster(&v) {
                continue;
            }
            let target = Target::Ip(ip.to_string());
            let evidence = json!({
                "rule": "source.v1",
                "fraud_lines": v.fraud_lines,
                "share_of_fraud_charge": (v.share_of_fraud_charge * 100.0).round() / 100.0,
                "countries": v.countries.iter().map(|c| c.0).collect::<Vec<_>>(),
            });
            match self.gov.record_finding(
                MeasureId::PhoneSuspendSipAuthFromIp,
                &target,
                "phone.source",
                evidence.clone(),
            ) {
                Ok(_) => self.push_event(
                    t,
                    MeasureId::PhoneSuspendSipAuthFromIp,
                    "finding",
                    &target,
                    None,
                    Some(evidence.clone()),
                ),
                Err(e) => {
                    self.soft(e)?;
                    continue;
                }
            }
            let decision = match self.gov.propose(Proposal::new(
                MeasureId::PhoneSuspendSipAuthFromIp,
                target,
                detector("source"),
                evidence,
            )) {
                Ok(d) => d,
                Err(e) => {
                    self.soft(e)?;
                    continue;
                }
            };
            if decision.action.state == ActionState::Applied {
                self.blocked_sources.insert(ip, BlockedSource { action_id: decision.action.id.clone(), last_call: t });
            }
            self.handle_decision(t, decision);
        }
        Ok(())
    }

    fn evaluate_sources(&mut self, t: Timestamp) -> Result<(), EngineError> {
        if self.blocked_sources.is_empty() {
            return Ok(());
        }
        let cooldown = self.settings.ip_cooldown;
        let due: Vec<(IpAddr, String)> = self
            .blocked_sources
            .iter()
            .filter(|(_, b)| t.duration_since(b.last_call) >= cooldown)
            .map(|(ip, b)| (*ip, b.action_id.clone()))
            // Never while it goes on: a call from it still in progress keeps it suspended.
            .filter(|(ip, _)| !self.countries.values().any(|c| c.sources.contains_key(ip)))
            .collect();
        for (ip, id) in due {
            self.blocked_sources.remove(&ip);
            let reason = format!("no international call from this address for {cooldown:#}: the fraud has stopped");
            self.lift(t, &id, &reason)?;
        }
        Ok(())
    }

    fn evaluate_countries(&mut self, t: Timestamp) -> Result<(), EngineError> {
        // A country's normal volume means nothing until it has been watched for a day.
        let warm = self.first_seen.is_some_and(|f| t.duration_since(f) >= COUNTRY_WARMUP);
        let on = warm && self.enabled(MeasureId::PhoneRestrictCountry);
        // Those no longer active leave the list; no call abroad is added while it is evaluated.
        let countries = &mut self.countries;
        self.active_countries.retain(|code| match countries.get_mut(code) {
            Some(c) if c.in_progress > 0 || c.flagged.is_some() => true,
            Some(c) => {
                c.listed = false;
                false
            }
            None => false,
        });
        for i in 0..self.active_countries.len() {
            let Some(&code) = self.active_countries.get(i) else { break };
            let half_life = self.settings.normal_half_life;
            let Some(c) = self.countries.get_mut(&code) else { continue };
            if c.flagged.is_none() && (!on || c.in_progress < self.country_settings.min_calls) {
                // Cannot be a flood: learn without building a record. While warming up nothing is
                // judged, so a flood then must not become the country's normal: learn at most what
                // could never have been one.
                let seen = if warm {
                    c.in_progress
                } else {
                    c.in_progress.min(self.country_settings.min_calls.saturating_sub(1))
                };
                c.normal.observe(t, f64::from(seen), false, half_life);
                continue;
            }
            let c = &*c;
            // Only here, where it is reported: most active countries take the branch above.
            let normal = c.normal.normal(t, half_life);
            let mut top: Vec<(IpAddr, u32)> = c.sources.iter().map(|(ip, n)| (*ip, *n)).collect();
            top.sort_unstable_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
            top.truncate(10);
            let record = CountryActivity {
                country: CountryCode(code),
                calls_in_progress: c.in_progress,
                lines: u32::try_from(c.lines.len()).unwrap_or(u32::MAX),
                top_sources: top.into_iter().map(|x| x.0).collect(),
                sources: u32::try_from(c.sources.len()).unwrap_or(u32::MAX),
                normal_calls: normal,
            };
            let flagged = c.flagged.clone();
            let Admission::Admitted(v) = self.gates.country.admit(&record) else { continue };
            let flood = if on { country::flooded(&v, &self.country_settings) } else { None };
            let calm = country::calm(&v, &self.country_settings);
            let half_life = self.settings.normal_half_life;
            if let Some(c) = self.countries.get_mut(&code) {
                let spoiled = flood.is_some() || flagged.is_some();
                c.normal.observe(t, f64::from(v.calls_in_progress), spoiled, half_life);
                c.calm_since = if calm { c.calm_since.or(Some(t)) } else { None };
            }
            match (flood, flagged) {
                (Some(evidence), None) => {
                    let target = Target::Country(code.to_string());
                    let evidence = serde_json::to_value(&evidence).unwrap_or_default();
                    match self.gov.record_finding(
                        MeasureId::PhoneRestrictCountry,
                        &target,
                        "phone.country",
                        evidence.clone(),
                    ) {
                        Ok(_) => self.push_event(
                            t,
                            MeasureId::PhoneRestrictCountry,
                            "finding",
                            &target,
                            None,
                            Some(evidence.clone()),
                        ),
                        Err(e) => {
                            self.soft(e)?;
                            continue;
                        }
                    }
                    match self.gov.propose(Proposal::new(
                        MeasureId::PhoneRestrictCountry,
                        target,
                        detector("country"),
                        evidence,
                    )) {
                        Ok(d) => {
                            if let Some(c) = self.countries.get_mut(&code) {
                                c.flagged = Some(d.action.id.clone());
                                c.calm_since = None;
                            }
                            self.handle_decision(t, d);
                        }
                        Err(e) => self.soft(e)?,
                    }
                }
                (_, Some(id)) => {
                    let calm_long = self
                        .countries
                        .get(&code)
                        .and_then(|c| c.calm_since)
                        .is_some_and(|s| t.duration_since(s) >= self.settings.country_cooldown);
                    if !calm_long {
                        continue;
                    }
                    if let Some(c) = self.countries.get_mut(&code) {
                        c.flagged = None;
                        self.countries_kept_until = None;
                    }
                    let state = self.gov.store().action_state(&id).map_err(GovernanceError::from)?;
                    if state == Some(ActionState::Applied) {
                        let reason = format!(
                            "calls to the country back to normal for {:#}: the fraud toward it has stopped",
                            self.settings.country_cooldown
                        );
                        self.lift(t, &id, &reason)?;
                    }
                }
                _ => {}
            }
        }
        self.forget_idle_countries(t);
        Ok(())
    }

    /// Forgets the idle countries whose normal volume has decayed away. An idle country's normal
    /// only decays (it is observed only while it has calls in progress or is flagged), so the
    /// sweep over all countries is skipped until the earliest time one of them could fall below
    /// the level, or until a country becomes idle; the result is the same as sweeping at every
    /// evaluation.
    fn forget_idle_countries(&mut self, t: Timestamp) {
        if self.countries_kept_until.is_some_and(|u| t < u) {
            return;
        }
        let half_life = self.settings.normal_half_life;
        let mut kept_until: Option<Timestamp> = None;
        let mut sweep_next_time = false;
        self.countries.retain(|_, c| {
            if c.in_progress > 0 || c.flagged.is_some() {
                // Becomes idle only through `release_country` or a flag's end, which reset the
                // bound.
                return true;
            }
            let peak_at = c.normal.peak_at();
            let until = match c.kept_until {
                Some((at, until)) if at == peak_at => Some(until),
                _ => {
                    let until = c.normal.surely_above_until(FORGET_COUNTRY_BELOW, half_life);
                    c.kept_until = until.map(|u| (peak_at, u));
                    until
                }
            };
            match until {
                Some(u) if t < u => {
                    kept_until = Some(kept_until.map_or(u, |k| k.min(u)));
                    true
                }
                _ => {
                    let keep = c.normal.normal(t, half_life) > FORGET_COUNTRY_BELOW;
                    sweep_next_time |= keep;
                    keep
                }
            }
        });
        self.countries_kept_until = if sweep_next_time { None } else { Some(kept_until.unwrap_or(Timestamp::MAX)) };
    }

    fn dormant_until(&mut self, t: Timestamp) -> Result<(), EngineError> {
        let Some(next) = self.next_dormant_check else { return Ok(()) };
        if next > t {
            return Ok(());
        }
        self.next_dormant_check = next.checked_add(SignedDuration::from_hours(24)).ok();
        if !self.enabled(MeasureId::PhoneSuspendDormant) {
            return Ok(());
        }
        let days = self.settings.dormant_after_days;
        for li in 0..self.lines.len() {
            let Some(line) = self.lines.get(li) else { continue };
            if line.dormant_asked {
                continue;
            }
            // The record is rewritten in place (no allocation per line and day).
            let record = &mut self.dormant_record;
            record.line_id.clear();
            record.line_id.push_str(&line.line_id);
            record.subscriber.0.clear();
            record.subscriber.0.push_str(&line.subscriber.0);
            record.last_international = line.last_international;
            record.known_since = line.known_since;
            let Admission::Admitted(v) = self.gates.dormant.admit(&self.dormant_record) else { continue };
            let record = &self.dormant_record;
            if !dormant::is_dormant(&v, t, days) {
                continue;
            }
            if let Some(line) = self.lines.get_mut(li) {
                line.dormant_asked = true;
            }
            let target = Target::Line(record.line_id.clone());
            let proposal = Proposal {
                subscriber: Some(record.subscriber.clone()),
                ..Proposal::new(
                    MeasureId::PhoneSuspendDormant,
                    target,
                    detector("dormant"),
                    json!({"rule": "dormant.v1", "quiet_days_at_least": days}),
                )
            };
            match self.gov.propose(proposal) {
                Ok(d) => self.handle_decision(t, d),
                Err(e) => self.soft(e)?,
            }
        }
        Ok(())
    }

    fn governance_deadlines_until(&mut self, t: Timestamp) -> Result<(), EngineError> {
        if !matches!(self.mode, Mode::Replay(_)) {
            return Ok(());
        }
        while let Some(Reverse(d)) = self.deadlines.peek().copied() {
            if d > t {
                break;
            }
            while self.deadlines.peek().is_some_and(|Reverse(x)| *x <= d) {
                self.deadlines.pop();
            }
            self.set_clock(d);
            let out = self.gov.tick()?;
            for rec in out.expired {
                self.remove_from_actuators(&rec);
                let target = rec.target.clone();
                self.forget_action(&rec);
                self.push_event(
                    d,
                    rec.measure,
                    "lifted",
                    &target,
                    Some(rec.id.clone()),
                    Some(json!({"reason": "maximum duration reached"})),
                );
            }
            for rec in out.lapsed {
                self.forget_action(&rec);
            }
        }
        Ok(())
    }

    fn forget_action(&mut self, rec: &ActionRecord) {
        match &rec.target {
            Target::Line(id) => {
                if let Some(li) = self.line_index.get(id.as_bytes()) {
                    if let Some(line) = self.lines.get_mut(li as usize) {
                        if matches!(&line.verdict, Verdict::Fraud { action_id, .. } if *action_id == rec.id) {
                            line.set_verdict(Verdict::Calm);
                        }
                    }
                }
            }
            Target::Ip(ip) => {
                if let Ok(ip) = ip.parse::<IpAddr>() {
                    if self.blocked_sources.get(&ip).is_some_and(|b| b.action_id == rec.id) {
                        self.blocked_sources.remove(&ip);
                    }
                }
            }
            Target::Country(code) => {
                if let Some(c) = code.parse::<u16>().ok().and_then(|c| self.countries.get_mut(&c)) {
                    if c.flagged.as_deref() == Some(rec.id.as_str()) {
                        c.flagged = None;
                        self.countries_kept_until = None;
                    }
                }
            }
            _ => {}
        }
    }

    fn lift(&mut self, t: Timestamp, id: &str, reason: &str) -> Result<(), EngineError> {
        match self.gov.lift(id, &detector("lift"), reason) {
            Ok(rec) => {
                self.remove_from_actuators(&rec);
                let target = rec.target.clone();
                self.push_event(
                    t,
                    rec.measure,
                    "lifted",
                    &target,
                    Some(rec.id.clone()),
                    Some(json!({"reason": reason})),
                );
                Ok(())
            }
            Err(e) => self.soft(e),
        }
    }

    fn handle_decision(&mut self, t: Timestamp, d: Decision) {
        let m = d.action.measure;
        let target = d.action.target.clone();
        let id = Some(d.action.id.clone());
        if let Some(auth) = &d.authorization {
            self.apply_to_actuators(auth);
            self.push_event(
                t,
                m,
                "applied",
                &target,
                id.clone(),
                Some(json!({"emergency": d.action.emergency, "legal_basis": d.action.legal_basis})),
            );
            let notifies = d.action.emergency
                || !matches!(catalog::measure(m).notification, NotificationDuty::None | NotificationDuty::Public);
            if notifies && d.action.subscriber.is_some() {
                let purpose = if d.action.emergency { "emergency-notice" } else { "confirmation" };
                self.push_event(t, m, "notified", &target, id, Some(json!({"purpose": purpose})));
            }
        } else if !d.existing {
            match d.action.state {
                ActionState::AwaitingConsent => self.push_event(t, m, "consent-requested", &target, id, None),
                ActionState::PendingApproval => self.push_event(t, m, "pending-approval", &target, id, None),
                _ => {}
            }
        }
        if let Some(deadline) = d.action.deadline {
            self.deadlines.push(Reverse(deadline));
        }
    }

    fn apply_to_actuators(&mut self, auth: &Authorization) {
        for a in &self.actuators {
            if a.handles(auth.measure()) {
                if let Err(e) = a.apply(auth) {
                    self.counters.actuator_errors += 1;
                    tracing::warn!(actuator = a.name(), action = auth.action_id(), error = %e, "actuator failed to apply");
                }
            }
        }
    }

    fn remove_from_actuators(&mut self, rec: &ActionRecord) {
        for a in &self.actuators {
            if a.handles(rec.measure) {
                if let Err(e) = a.remove(rec) {
                    self.counters.actuator_errors += 1;
                    tracing::warn!(actuator = a.name(), action = %rec.id, error = %e, "actuator failed to remove");
                }
            }
        }
    }

    fn push_event(
        &mut self,
        t: Timestamp,
        measure: MeasureId,
        event: &'static str,
        target: &Target,
        action_id: Option<String>,
        detail: Option<serde_json::Value>,
    ) {
        let at = t.to_zoned_datetime(self.tz.clone()).strftime("%Y-%m-%dT%H:%M:%S%:z").to_string();
        self.events.push(PhoneEvent {
            at,
            measure: measure.as_str(),
            event,
            target: target.to_string(),
            action_id,
            detail,
        });
    }

    /// A governance refusal (not enabled, a race with a person) is logged and counted; a store
    /// failure stops the engine.
    fn soft(&mut self, e: GovernanceError) -> Result<(), EngineError> {
        if let GovernanceError::Store(_) = e {
            return Err(e.into());
        }
        self.counters.governance_errors += 1;
        tracing::warn!(error = %e, "governance refused a phone detector's request");
        Ok(())
    }

    /// Runs what remains due after the last record (end of a replay): evaluations until every
    /// call has left the window and the cool-downs have run.
    pub fn finish(&mut self, until: Timestamp) -> Result<(), EngineError> {
        self.advance_to(until)
    }
}

fn detector(name: &str) -> Actor {
    Actor(format!("detector:phone.{name}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_of_milliseconds_are_the_division_bit_for_bit() {
        let mut ms = 0i64;
        // Every value up to a minute, then strides through the years (whole seconds and not).
        while ms < (1i64 << 53) {
            assert_eq!(secs_of_ms(ms).to_bits(), (ms as f64 / 1000.0).to_bits(), "{ms}");
            ms = if ms < 60_000 { ms + 1 } else { ms + ms / 7 + 13 };
        }
        for ms in [999_999_999_000i64, 86_400_000 * 365 * 300, (1i64 << 53) - 1000, (1i64 << 53) - 1] {
            assert_eq!(secs_of_ms(ms).to_bits(), (ms as f64 / 1000.0).to_bits(), "{ms}");
        }
    }
}
