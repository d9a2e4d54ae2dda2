//! Configuration: one TOML file with defaults for everything; unknown keys are errors.
//!
//! Configuration can only narrow what the catalog allows: a measure's `max_duration` may be
//! shorter than the catalog's, never longer; retention may be set between 1 and 365 days (the
//! longest period the public comments asked for).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use jiff::SignedDuration;
use serde::{Deserialize, Serialize};

use crate::calendar::{CalendarConfig, JapanCalendar};
use crate::catalog::{self, MeasureId};

mod attribution;
mod dns;
mod flow;
mod notify;
mod report_import;
pub use attribution::{AttributionConfig, RadiusClientConfig, RadiusSecret, parse_client_network};
pub use dns::{DnsConfig, DnsListConfig, DnsListFormat, DnsListKind, DnstapConfig, FilterConfig, RpzConfig};
pub use flow::{FlowBgpConfig, FlowConfig};
pub use notify::{NotifyConfig, StartTls};
pub use report_import::{NaiveTimes, ReportImportConfig, ReportMappingConfig};

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Where the database and other state live.
    pub data_dir: PathBuf,
    /// HTTP API, console and `/metrics`.
    pub server: ServerConfig,
    /// Business hours and closed days (Japan time).
    pub calendar: CalendarConfig,
    /// Deadlines of governance steps.
    pub governance: GovernanceConfig,
    /// Who may do what.
    pub roles: RolesConfig,
    /// The audit ledger.
    pub ledger: LedgerConfig,
    /// The scheduler.
    pub scheduler: SchedulerConfig,
    /// Logs.
    pub log: LogConfig,
    /// Telephone fraud (`phone.*`): detector settings, tariff, Kamailio.
    pub phone: PhoneConfig,
    /// Notifications to subscribers: SMTP, retries, the alert rate limit, notice-page links.
    pub notify: NotifyConfig,
    /// Attribution: the RADIUS accounting listener and the session index (who held an address when).
    pub attribution: AttributionConfig,
    /// DNS: dnstap ingest, the response-policy zone, the inline filter, reputation lists.
    pub dns: DnsConfig,
    /// Third-party report import: column mappings for sources without a built-in format.
    pub report_import: ReportImportConfig,
    /// Flows and DDoS: the NetFlow/IPFIX collector, detector limits, the BGP speaker.
    pub flow: FlowConfig,
    /// Per-measure settings, keyed by measure id.
    pub measures: BTreeMap<MeasureId, MeasureConfig>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("mamori-data"),
            server: ServerConfig::default(),
            calendar: CalendarConfig::default(),
            governance: GovernanceConfig::default(),
            roles: RolesConfig::default(),
            ledger: LedgerConfig::default(),
            scheduler: SchedulerConfig::default(),
            log: LogConfig::default(),
            phone: PhoneConfig::default(),
            notify: NotifyConfig::default(),
            attribution: AttributionConfig::default(),
            dns: DnsConfig::default(),
            report_import: ReportImportConfig::default(),
            flow: FlowConfig::default(),
            measures: BTreeMap::new(),
        }
    }
}

/// `[server]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Listen address; loopback by default.
    pub listen: SocketAddr,
    /// File of API tokens, one `person token` pair per line (`#` comments). Without it the API
    /// is read-only and changes go through the CLI. Tokens are secrets: never logged.
    pub api_tokens_file: Option<PathBuf>,
    /// How long a console session lasts from login.
    pub session_ttl: SignedDuration,
    /// Mark the session cookie `Secure`: set when mamori is reached over HTTPS (a TLS-terminating
    /// proxy in front of it).
    pub secure_cookies: bool,
    /// Largest request body accepted, in bytes (larger ones are refused with 413).
    pub max_body_bytes: usize,
    /// Largest file upload (CDR replays, subscriber lists) accepted, in bytes.
    pub max_upload_bytes: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8470)),
            api_tokens_file: None,
            session_ttl: SignedDuration::from_hours(8),
            secure_cookies: false,
            max_body_bytes: 1 << 20,
            max_upload_bytes: 256 << 20,
        }
    }
}

/// `[governance]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GovernanceConfig {
    /// How long a consent request waits for the subscriber before it lapses.
    pub consent_request_ttl: SignedDuration,
    /// How long an action waits for approvals before it lapses.
    pub approval_ttl: SignedDuration,
    /// How long a stage unlock lasts.
    pub stage_unlock_ttl: SignedDuration,
}

impl Default for GovernanceConfig {
    fn default() -> Self {
        GovernanceConfig {
            consent_request_ttl: SignedDuration::from_hours(24),
            approval_ttl: SignedDuration::from_hours(8),
            stage_unlock_ttl: SignedDuration::from_hours(24),
        }
    }
}

/// `[roles]`: names of the people who may approve and audit. Approval of severe measures is
/// impossible until approvers are listed.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RolesConfig {
    /// Who may approve actions (never their own proposals).
    pub approvers: Vec<String>,
}

/// `[ledger]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LedgerConfig {
    /// Write a checkpoint every this many entries.
    pub checkpoint_every: u32,
    /// At most this many batches per group commit.
    pub group_commit_max: u32,
}

impl Default for LedgerConfig {
    fn default() -> Self {
        LedgerConfig { checkpoint_every: 1000, group_commit_max: 1024 }
    }
}

/// `[scheduler]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SchedulerConfig {
    /// How often due actions are expired and lapsed.
    pub tick: SignedDuration,
    /// How often the retention sweeper runs.
    pub retention_every: SignedDuration,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        SchedulerConfig { tick: SignedDuration::from_secs(1), retention_every: SignedDuration::from_hours(1) }
    }
}

/// `[log]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `error`, `warn`, `info`, `debug` or `trace` (or an env-filter directive).
    pub level: String,
    /// `text` or `json`.
    pub format: LogFormat,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig { level: "info".into(), format: LogFormat::Text }
    }
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable.
    Text,
    /// One JSON object per line.
    Json,
}

/// `[phone]`: the telephone-fraud detectors. Defaults are meant for a real carrier's traffic;
/// every threshold is a floor *and* a multiple of the line's (or country's) own normal level.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PhoneConfig {
    /// How often charge totals are evaluated (data time in replay, wall time live).
    pub interval: SignedDuration,
    /// The window charges are summed over.
    pub window: SignedDuration,
    /// A line's window charge (yen, completed plus in progress, projected at the current rate)
    /// below this is never a surge, whatever its history.
    pub surge_floor_jpy: u64,
    /// A surge is this many times the line's normal level (its decayed peak window charge).
    pub surge_factor: f64,
    /// Charges sustained over hours (a two-hour moving sum) at or above this, and `surge_factor`
    /// times the line's normal sustained level, are a rise too: slow fraud that never bursts.
    pub sustained_floor_jpy: u64,
    /// Half-life of a line's learned peak.
    pub normal_half_life: SignedDuration,
    /// Rows this far out of start order are put back in order (replay).
    pub reorder_lateness: SignedDuration,
    /// A source IP's authentication stays suspended until it has placed no international call
    /// for this long.
    pub ip_cooldown: SignedDuration,
    /// `phone.restrict-country`: at least this many international calls in progress to one country…
    pub country_min_calls: u32,
    /// …from at least this many distinct lines…
    pub country_min_lines: u32,
    /// …and this many times the country's normal concurrent volume.
    pub country_factor: f64,
    /// Fraud toward a restricted country has stopped when it has been at its normal level this long.
    pub country_cooldown: SignedDuration,
    /// `phone.suspend-dormant`: a line with no international call for this many days is asked.
    pub dormant_after_days: u32,
    /// Prices of calls in progress (live calls have no billed charge until they end).
    pub tariff: TariffConfig,
    /// Kamailio: live call events (evapi) and enforcement (htable over JSON-RPC). Absent: none.
    pub kamailio: Option<KamailioConfig>,
}

impl Default for PhoneConfig {
    fn default() -> Self {
        PhoneConfig {
            interval: SignedDuration::from_secs(10),
            window: SignedDuration::from_mins(10),
            surge_floor_jpy: 3000,
            surge_factor: 4.0,
            sustained_floor_jpy: 20_000,
            normal_half_life: SignedDuration::from_hours(24 * 14),
            reorder_lateness: SignedDuration::from_mins(5),
            ip_cooldown: SignedDuration::from_mins(30),
            country_min_calls: 20,
            country_min_lines: 5,
            country_factor: 10.0,
            country_cooldown: SignedDuration::from_mins(30),
            dormant_after_days: 180,
            tariff: TariffConfig::default(),
            kamailio: None,
        }
    }
}

/// `[phone.tariff]`: yen per minute by country calling code, to value calls in progress.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TariffConfig {
    /// Yen per minute for codes not listed.
    pub default_jpy_per_min: f64,
    /// Yen per minute by calling code (`"882" = 450.0`).
    pub jpy_per_min: BTreeMap<String, f64>,
}

impl Default for TariffConfig {
    fn default() -> Self {
        // Orders of magnitude of Japanese carriers' published rates: ordinary destinations tens of
        // yen a minute; satellite and premium-prone ones hundreds.
        let jpy_per_min = [
            ("1", 9.0),
            ("44", 20.0),
            ("82", 30.0),
            ("86", 30.0),
            ("53", 250.0),
            ("252", 300.0),
            ("881", 450.0),
            ("882", 450.0),
            ("883", 450.0),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        TariffConfig { default_jpy_per_min: 60.0, jpy_per_min }
    }
}

/// `[phone.kamailio]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KamailioConfig {
    /// Kamailio's evapi listener (mamori connects to it and receives call events).
    pub evapi: SocketAddr,
    /// Kamailio's JSON-RPC over HTTP endpoint (xhttp + jsonrpcs), e.g. `http://127.0.0.1:5071/RPC`
    /// (plain HTTP: keep it on loopback or the management network).
    pub jsonrpc_url: String,
}

/// `[measures."<id>"]`
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MeasureConfig {
    /// Shorter maximum duration than the catalog's.
    pub max_duration: Option<SignedDuration>,
    /// Retention of raw records and unlocked data, in days (1–365).
    pub retention_days: Option<u32>,
}

/// A configuration error, naming the key and, where known, the line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The file couldn't be read.
    #[error("cannot read {path}: {detail}")]
    Read {
        /// File.
        path: String,
        /// Cause.
        detail: String,
    },
    /// TOML syntax, a wrong type or an unknown key (the message names line and key).
    #[error("{path}: {detail}")]
    Parse {
        /// File.
        path: String,
        /// toml's message, with line, column and the offending key.
        detail: String,
    },
    /// A value that parses but is not allowed.
    #[error("{path}{}: `{key}`: {detail}", line.map(|l| format!(":{l}")).unwrap_or_default())]
    Invalid {
        /// File.
        path: String,
        /// Line, where found.
        line: Option<usize>,
        /// Dotted key.
        key: String,
        /// Why.
        detail: String,
    },
}

impl Config {
    /// Reads and validates a file.
    pub fn load(path: &Path) -> Result<Config, Vec<ConfigError>> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| vec![ConfigError::Read { path: path.display().to_string(), detail: e.to_string() }])?;
        Config::parse(&text, &path.display().to_string())
    }

    /// Parses and validates TOML text; `origin` names it in errors. Returns every validation
    /// error at once.
    pub fn parse(text: &str, origin: &str) -> Result<Config, Vec<ConfigError>> {
        let config: Config = toml::from_str(text).map_err(|e| {
            vec![ConfigError::Parse { path: origin.to_owned(), detail: e.to_string().trim_end().to_owned() }]
        })?;
        let errors = config.validate(text, origin);
        if errors.is_empty() { Ok(config) } else { Err(errors) }
    }

    fn validate(&self, text: &str, origin: &str) -> Vec<ConfigError> {
        let mut errors = Vec::new();
        let mut invalid = |section: &str, key: &str, detail: String| {
            errors.push(ConfigError::Invalid {
                path: origin.to_owned(),
                line: line_of(text, section, key),
                key: if section.is_empty() { key.to_owned() } else { format!("{section}.{key}") },
                detail,
            });
        };
        if let Err(e) = JapanCalendar::new(&self.calendar) {
            invalid("calendar", "closed_days", e.to_string());
        }
        for (key, d) in [
            ("consent_request_ttl", self.governance.consent_request_ttl),
            ("approval_ttl", self.governance.approval_ttl),
            ("stage_unlock_ttl", self.governance.stage_unlock_ttl),
        ] {
            if d <= SignedDuration::ZERO {
                invalid("governance", key, "must be positive".into());
            }
        }
        if self.server.session_ttl <= SignedDuration::ZERO {
            invalid("server", "session_ttl", "must be positive".into());
        }
        if self.server.max_body_bytes < 1024 {
            invalid("server", "max_body_bytes", "must be at least 1024".into());
        }
        if self.server.max_upload_bytes < self.server.max_body_bytes {
            invalid("server", "max_upload_bytes", "must be at least max_body_bytes".into());
        }
        if self.scheduler.tick <= SignedDuration::ZERO || self.scheduler.retention_every <= SignedDuration::ZERO {
            invalid("scheduler", "tick", "intervals must be positive".into());
        }
        if self.ledger.checkpoint_every == 0 {
            invalid("ledger", "checkpoint_every", "must be at least 1".into());
        }
        if self.ledger.group_commit_max == 0 {
            invalid("ledger", "group_commit_max", "must be at least 1".into());
        }
        let p = &self.phone;
        for (key, d) in [
            ("interval", p.interval),
            ("window", p.window),
            ("normal_half_life", p.normal_half_life),
            ("ip_cooldown", p.ip_cooldown),
            ("country_cooldown", p.country_cooldown),
        ] {
            if d <= SignedDuration::ZERO {
                invalid("phone", key, "must be positive".into());
            }
        }
        if p.reorder_lateness < SignedDuration::ZERO {
            invalid("phone", "reorder_lateness", "must not be negative".into());
        }
        if p.interval > p.window {
            invalid("phone", "interval", "must not be longer than `window`".into());
        }
        if !(p.surge_factor.is_finite() && p.surge_factor >= 1.0) {
            invalid("phone", "surge_factor", "must be at least 1".into());
        }
        if !(p.country_factor.is_finite() && p.country_factor >= 1.0) {
            invalid("phone", "country_factor", "must be at least 1".into());
        }
        for (code, price) in &p.tariff.jpy_per_min {
            if !code.parse::<u16>().is_ok_and(|c| (1..1000).contains(&c)) {
                invalid("phone.tariff.jpy_per_min", code, format!("`{code}` is not a country calling code (1–999)"));
            }
            if !(price.is_finite() && *price >= 0.0) {
                invalid("phone.tariff.jpy_per_min", code, "price must be a non-negative number".into());
            }
        }
        if let Some(k) = &p.kamailio {
            // Kamailio's JSON-RPC listener is a loopback or management-network HTTP endpoint; the
            // client is built without TLS to keep the build lean.
            if !k.jsonrpc_url.starts_with("http://") {
                invalid("phone.kamailio", "jsonrpc_url", "must be an http:// URL (TLS is not supported)".into());
            }
        }
        for (key, detail) in self.notify.problems() {
            invalid("notify", key, detail);
        }
        for (key, detail) in self.attribution.problems() {
            invalid("attribution", &key, detail);
        }
        for (section, key, detail) in self.dns.problems() {
            invalid(&section, &key, detail);
        }
        for (key, detail) in self.report_import.problems() {
            invalid("report_import", &key, detail);
        }
        for (key, detail) in self.flow.problems() {
            invalid("flow", &key, detail);
        }
        for (id, mc) in &self.measures {
            let m = catalog::measure(*id);
            let section = format!("measures.\"{}\"", id.as_str());
            if m.is_refused() {
                invalid(&section, "", format!("{id} is refused by the working group and cannot be configured"));
                continue;
            }
            if let Some(d) = mc.max_duration {
                match m.max_duration {
                    None => invalid(&section, "max_duration", format!("{id} has no duration (one-shot action)")),
                    Some(max) if d > max => invalid(
                        &section,
                        "max_duration",
                        format!(
                            "{d:#} exceeds the catalog's maximum of {max:#} for {id}; configuration may only shorten it"
                        ),
                    ),
                    Some(_) if d <= SignedDuration::ZERO => {
                        invalid(&section, "max_duration", "must be positive".into())
                    }
                    _ => {}
                }
            }
            if let Some(days) = mc.retention_days {
                if !(1..=365).contains(&days) {
                    invalid(&section, "retention_days", format!("{days} is outside 1–365 days"));
                }
            }
        }
        errors
    }

    /// The effective maximum duration of a measure's actions.
    pub fn max_duration(&self, id: MeasureId) -> Option<SignedDuration> {
        let catalog_max = catalog::measure(id).max_duration?;
        Some(self.measures.get(&id).and_then(|m| m.max_duration).map_or(catalog_max, |d| d.min(catalog_max)))
    }

    /// The effective retention of a measure, in days.
    pub fn retention_days(&self, id: MeasureId) -> u32 {
        self.measures.get(&id).and_then(|m| m.retention_days).unwrap_or(catalog::measure(id).retention_days)
    }

    /// The database file.
    pub fn database_path(&self) -> PathBuf {
        self.data_dir.join("mamori.sqlite")
    }

    /// The default configuration as commented TOML (what `mamori config default` prints).
    pub fn default_toml() -> &'static str {
        DEFAULT_TOML
    }
}

/// Best-effort line of `key` inside `[section]` (1-based), for errors found after parsing.
fn line_of(text: &str, section: &str, key: &str) -> Option<usize> {
    let mut in_section = section.is_empty();
    let mut header_line = None;
    for (i, line) in text.lines().enumerate() {
        let t = line.trim();
        if t.starts_with('[') {
            let name = t.trim_matches(|c| c == '[' || c == ']').trim();
            in_section = name == section;
            if in_section {
                header_line = Some(i + 1);
            }
            continue;
        }
        if in_section && !key.is_empty() {
            if let Some((k, _)) = t.split_once('=') {
                if k.trim() == key {
                    return Some(i + 1);
                }
            }
        }
    }
    header_line
}

const DEFAULT_TOML: &str = r#"# mamori configuration. Every key is optional; these are the defaults.
# Unknown keys are errors. Check a file with `mamori config check FILE`.

# Where the SQLite database (and other state) lives.
data_dir = "mamori-data"

[server]
# HTTP API, console and Prometheus /metrics. Loopback by default.
listen = "127.0.0.1:8470"
# API tokens for automation: one "person token" pair per line. A token acts as that person
# (their account's role, if they have one). People log in to the console with accounts
# (`mamori accounts add`). (No default.)
# api_tokens_file = "/etc/mamori/tokens"
# How long a console session lasts from login.
session_ttl = "8h"
# Mark the session cookie Secure (set when a TLS-terminating proxy serves mamori over HTTPS).
secure_cookies = false
# Largest request body accepted, in bytes (larger: 413).
max_body_bytes = 1048576
# Largest file upload (CDR replays, subscriber lists over the API), in bytes.
max_upload_bytes = 268435456

[calendar]
# Japan time. Outside business hours, on weekends, national holidays and closed days, measures
# with an emergency exception may act first and notify promptly; inside, they ask first.
business_start = "09:00"
business_end = "18:00"
closed_days = ["12-29", "12-30", "12-31", "01-02", "01-03"]

[governance]
consent_request_ttl = "24h"
approval_ttl = "8h"
stage_unlock_ttl = "24h"

[roles]
# People who may approve actions that need approval (never their own proposals).
approvers = []

[ledger]
checkpoint_every = 1000
group_commit_max = 1024

[scheduler]
tick = "1s"
retention_every = "1h"

[log]
level = "info"
format = "text"

[phone]
# Telephone fraud. Charge totals per line are evaluated every `interval` over `window`; a surge is
# a window charge above `surge_floor_jpy` and `surge_factor` times the line's own normal level.
interval = "10s"
window = "10m"
surge_floor_jpy = 3000
surge_factor = 4.0
sustained_floor_jpy = 20000
normal_half_life = "336h"
reorder_lateness = "5m"
ip_cooldown = "30m"
country_min_calls = 20
country_min_lines = 5
country_factor = 10.0
country_cooldown = "30m"
dormant_after_days = 180

[phone.tariff]
# Yen per minute, to value calls still in progress (live events carry no charge until they end).
default_jpy_per_min = 60.0
jpy_per_min = { "1" = 9.0, "44" = 20.0, "82" = 30.0, "86" = 30.0, "53" = 250.0, "252" = 300.0, "881" = 450.0, "882" = 450.0, "883" = 450.0 }

# Kamailio: live call events and enforcement. (No default.)
# [phone.kamailio]
# evapi = "127.0.0.1:8448"
# jsonrpc_url = "http://127.0.0.1:5071/RPC"

[notify]
# Email to subscribers: consent requests, emergency notices, alerts, lift notices, each in the
# subscriber's language (`mamori subscribers import`). mamori hands mail to an SMTP relay; without
# `smtp_host` nothing is sent and messages wait in the outbox. (No default.)
# smtp_host = "127.0.0.1"
smtp_port = 25
# "never": plain SMTP to a relay on loopback or a trusted network; "required": STARTTLS (a build
# with the `tls` feature of mamori-notify).
starttls = "never"
# smtp_username = "mamori"
# smtp_password_file = "/etc/mamori/smtp-password"
from = "mamori <noreply@localhost>"
smtp_timeout = "30s"
# A failed attempt is retried after `retry_initial`, doubling up to `retry_max`, `max_attempts` in all.
max_attempts = 8
retry_initial = "1m"
retry_max = "1h"
# At most one alert per subscriber and measure in this period; the rest are suppressed and ledgered.
alert_period = "24h"
# Links to the subscriber's notice page (`/s/...`) are signed with the secret in `link_secret_file`
# (default DATA_DIR/notice-link.key, created on first use) and expire after `link_ttl`.
link_ttl = "336h"
# link_secret_file = "/etc/mamori/notice-link.key"
public_base_url = "http://127.0.0.1:8470"
poll = "5s"
batch = 100

[attribution]
# RADIUS accounting (RFC 2866) from the BNGs: which subscriber held an address (and port block,
# behind carrier-grade NAT) at an instant. `mamori serve` listens only when clients are listed.
listen = "127.0.0.1:1813"
# Interval assumed when accounting carries no Acct-Interim-Interval; a session without a Stop
# ends at its last update plus twice its interval.
interim_default = "10m"
# Sessions that ended longer ago than this are deleted (1-365 days).
retention_days = 90
# CSV `user_name,subscriber_id` mapping RADIUS User-Names to subscriber ids; unlisted names are
# their own subscriber id. (No default.)
# subscribers_file = "/etc/mamori/radius-users.csv"
# One block per NAS (or network of NASes sharing a secret). Secrets are never logged.
# [[attribution.clients]]
# name = "bng-tokyo-1"
# address = "192.0.2.0/24"
# secret = "change-me"

[dns]
# DNS guard. Every part is off until its section is present.
# Random-subdomain (water torture) and amplification detections become `dns.block-fqdn-list`
# entries at once through governance when true; otherwise they wait for an operator
# (`mamori dns block`). Entries last `block_for` (capped by the measure's maximum).
auto_apply = false
block_for = "1h"
# dnstap from the resolvers (Unbound: `dnstap-socket-path`, or `dnstap-ip` with `dnstap-tls: no`).
# [dns.dnstap]
# socket_path = "/run/mamori/dnstap.sock"
# tcp_listen = "127.0.0.1:6000"
# The response-policy zone, served by AXFR/IXFR with NOTIFY; resolvers load it as an RPZ.
# [dns.rpz]
# zone = "rpz.mamori."
# listen = "127.0.0.1:5353"
# allow_transfer = ["127.0.0.1"]
# notify = ["127.0.0.1:53"]
# dry_run = false
# The inline filter: a DNS front on UDP and TCP forwarding to the resolver.
# [dns.filter]
# listen = "127.0.0.1:5300"
# upstream = "127.0.0.1:53"
# warn_address = "127.0.0.1"
# warn_page_listen = "127.0.0.1:8080"
# cache_entries = 0               # the resolver's answers kept, each for its TTL (0: no cache)
# busy_poll_us = 0                # poll the sockets this long before sleeping: a lower latency tail on
#                                 # VMs for a core kept busy under steady load (0: sleep at once)
# udp_workers = 0                 # UDP workers, two threads each (0: one per CPU, at most 8); with
#                                 # busy polling every worker polls, so fewer keep cores free
# List files loaded at start (kind: cnc, malware or block; format: plain, hosts or rpz, else
# guessed from the name). `mamori dns load-list` adds lists without editing this file.
# [[dns.lists]]
# path = "/etc/mamori/cnc.txt"
# kind = "cnc"
# source = "jpcert-2026-11"

[report_import]
# Column mappings for third-party reports without a built-in format
# (`mamori reports import FILE --kind custom:NAME --source NAME`). Header names are compared
# without case; times without an offset are read in `naive_times` ("utc" or "japan").
# [[report_import.mappings]]
# name = "isac-bots"
# measure = "bots.alert-from-third-party"
# timestamp = "first_seen"
# address = "src"
# port = "sport"
# detail = "malware"
# naive_times = "utc"

[flow]
# NetFlow v5/v9 and IPFIX over UDP (templates per exporter and observation domain, counts scaled
# by the sampling rate). `mamori serve` runs the collector only when `listen` is set. (No default.)
# listen = "0.0.0.0:2055"
# sFlow v5 over UDP (flow samples scaled by their sampling rate; counter samples skipped). (No default.)
# sflow_listen = "0.0.0.0:6343"
# Rates are per second over this window (1s-5m).
window = "5s"
# Customer prefixes: traffic toward them is examined for attacks, from them toward outside for bots.
customer_prefixes = []
# Limits toward one host: packets/s, bits/s, flows/s.
host_pps = 100000
host_bps = 1000000000
host_fps = 20000
# Limits toward one customer prefix as a whole (its hosts summed: attacks spread over many hosts).
prefix_pps = 500000
prefix_bps = 5000000000
prefix_fps = 100000
# Limits from one customer host toward outside destinations (bots, `ddos.block-unintended-source`).
source_pps = 50000
source_bps = 500000000
source_fps = 10000
# A host this many times over its learned normal packet rate, and over min_pps, is attacked.
normal_factor = 10
min_pps = 10000
# Exporter scopes (address, version, observation domain) kept at most.
max_exporters = 4096
# A learned normal rate (toward a host or customer prefix, or a host's outbound rate) is forgotten
# when no window had its traffic for this long (window time, at least `window`).
learned_forget_after = "168h"
# Learned normal rates kept at most per map (hosts, prefixes, outbound). A full map first forgets
# those learned from one window and unseen for an hour (scan targets); then new hosts are judged
# by the fixed limits only (counted in mamori_flow_learned_normals_refused_total).
learned_max_entries = 1000000
# Aggregate customer prefixes (at most /24 or /48 each) exported as top talkers by
# `net.traffic-overview` on /metrics.
top_talkers = 10
# The BGP speaker (GoBGP) announcing FlowSpec and RTBH. Without it nothing is announced.
# [flow.bgp]
# gobgp = "gobgp"
# api = "127.0.0.1:50051"
# rtbh_next_hop = "192.0.2.1"
# rtbh_community = "65535:666"
# Marks every route mamori announces; reconciliation withdraws only routes that carry it.
# owner_community = "64512:7"

# Per-measure settings may only narrow the catalog:
# [measures."phone.suspend-line-on-surge"]
# max_duration = "48h"
# retention_days = 90
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_toml_is_the_default() {
        let parsed = Config::parse(DEFAULT_TOML, "default").unwrap();
        assert_eq!(parsed, Config::default());
    }

    #[test]
    fn unknown_key_names_key_and_line() {
        let errs = Config::parse("[server]\nlisten = \"127.0.0.1:1\"\nlistne = 3\n", "x.toml").unwrap_err();
        let msg = errs[0].to_string();
        assert!(msg.contains("line 3"), "{msg}");
        assert!(msg.contains("listne"), "{msg}");
    }

    #[test]
    fn unknown_measure_id_is_an_error() {
        let errs = Config::parse("[measures.\"phone.suspend-all\"]\nmax_duration = \"1h\"\n", "x.toml").unwrap_err();
        let msg = errs[0].to_string();
        assert!(msg.contains("phone.suspend-all"), "{msg}");
        assert!(msg.contains("line 1"), "{msg}");
    }

    #[test]
    fn config_cannot_lengthen_a_measure() {
        let text = "data_dir = \"d\"\n\n[measures.\"phone.restrict-country\"]\nmax_duration = \"720h\"\n";
        let errs = Config::parse(text, "x.toml").unwrap_err();
        match &errs[0] {
            ConfigError::Invalid { line, key, .. } => {
                assert_eq!(*line, Some(4));
                assert_eq!(key, "measures.\"phone.restrict-country\".max_duration");
            }
            other => panic!("{other:?}"),
        }
        let ok = Config::parse("[measures.\"phone.restrict-country\"]\nmax_duration = \"12h\"\n", "x").unwrap();
        assert_eq!(ok.max_duration(MeasureId::PhoneRestrictCountry), Some(SignedDuration::from_hours(12)));
    }

    #[test]
    fn refused_measure_cannot_be_configured() {
        let errs = Config::parse("[measures.\"cnc.detect-servers\"]\n", "x").unwrap_err();
        assert!(errs[0].to_string().contains("refused"));
    }

    #[test]
    fn all_errors_are_reported_at_once() {
        let text = "[governance]\napproval_ttl = \"-1h\"\n[measures.\"net.drop-malformed\"]\nretention_days = 900\n";
        let errs = Config::parse(text, "x").unwrap_err();
        assert_eq!(errs.len(), 2, "{errs:?}");
    }
}
