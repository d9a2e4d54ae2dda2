//! Command-line definitions. Help text here is the user documentation of each command.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// mamori (守り): detect attacks and fraud in a carrier's own signalling and traffic, act only in
/// ways the Telecommunications Business Act art. 4 allows, and prove it afterwards.
#[derive(Debug, Parser)]
#[command(name = "mamori", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    /// Configuration file (TOML). Without it, built-in defaults are used (see `mamori config default`).
    #[arg(long, short, global = true, env = "MAMORI_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Data directory (overrides `data_dir` of the configuration).
    #[arg(long, global = true, env = "MAMORI_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    /// More log output (-v: debug, -vv: trace). Logs go to stderr.
    #[arg(long, short, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the service: HTTP API and console, /metrics, the scheduler that lifts and expires on
    /// time, reconciliation of actuators at start.
    Serve(ServeArgs),
    /// Run the same engine offline over recorded data, on the data's own clock.
    #[command(subcommand)]
    Replay(ReplayCommand),
    /// Print the measure catalog: legal ground, fields per stage, consent, approvals, durations,
    /// notification duty, retention.
    Catalog(CatalogArgs),
    /// Check or print configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Enable or disable measures; record the public notice (terms/website) they require.
    #[command(subcommand)]
    Measures(MeasuresCommand),
    /// The consent registry: individual consent, opt-out, opt-in, history.
    #[command(subcommand)]
    Consent(ConsentCommand),
    /// Actions: list, show, propose, approve, reject, lift, record a subscriber's reply.
    #[command(subcommand)]
    Actions(ActionsCommand),
    /// The audit ledger: verify the hash chain, export entries for an auditor.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Reports.
    #[command(subcommand)]
    Report(ReportCommand),
    /// Retention of raw records and unlocked data.
    #[command(subcommand)]
    Retention(RetentionCommand),
    /// Telephone fraud: subscriber requests, the public pages (targeted countries, guidance).
    #[command(subcommand)]
    Phone(PhoneCommand),
    /// The subscriber directory: each subscriber's language and email address, for notifications.
    #[command(subcommand)]
    Subscribers(SubscribersCommand),
    /// People who use the console and API: accounts with roles (operator, approver, auditor,
    /// admin). Every change is a ledger entry.
    #[command(subcommand)]
    Accounts(AccountsCommand),
    /// Attribution: which subscriber held an address (and CGNAT port) when; RADIUS accounting
    /// back-fill from FreeRADIUS detail files.
    #[command(subcommand)]
    Attribution(crate::attribution::AttributionCommand),
    /// DNS: load C&C/malware/block lists, show the FQDN list in force, block a name for a time
    /// (`dns.block-fqdn-list`, through governance).
    #[command(subcommand)]
    Dns(crate::dns::DnsCommand),
    /// Flows and DDoS: record a victim's report and propose the matching mitigation
    /// (`ddos.block-on-victim-request`).
    #[command(subcommand)]
    Flow(crate::flow::FlowCommand),
    /// Third-party reports (Shadowserver, NOTICE, takedown lists, blacklists): attribute each
    /// row to a subscriber, record findings, queue alerts.
    #[command(subcommand)]
    Reports(crate::reports_import::ReportsCommand),
    /// Internal tools for tests (crash-safety drills).
    #[command(subcommand, hide = true)]
    Internal(InternalCommand),
}

/// `serve`
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Listen address (overrides `[server] listen`).
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
}

/// `replay`
#[derive(Debug, Subcommand)]
pub enum ReplayCommand {
    /// Replay a CDR file through the telephone-fraud measures on the data's own clock.
    ///
    /// Japan-time rules apply to data time (a fraud at 02:00 in the file is a night-time fraud).
    /// Actuators are recorded, not called. Prints one JSON object per governance event to
    /// stdout; progress, bad rows and the summary go to stderr. The file is mamori's generic CDR
    /// format (see the README): `call_id,start_time,end_time,line_id,calling_number,
    /// called_number,source_ip,charge_jpy`.
    #[command(verbatim_doc_comment)]
    Cdr {
        /// The CDR CSV file (`-` for standard input).
        file: PathBuf,
        /// Subscriber file: CSV `line_id,subscriber_id[,language]` with a header. Without it,
        /// each line is its own subscriber.
        #[arg(long, value_name = "FILE")]
        subscribers: Option<PathBuf>,
        /// Keep the replay's database (ledger, actions) in this directory instead of a scratch
        /// one, for `mamori --data-dir DIR audit …` afterwards.
        #[arg(long, value_name = "DIR")]
        keep_db: Option<PathBuf>,
        /// With --keep-db: replay into the database already there (e.g. a running server's, whose
        /// console then shows what the replay decided). Its measure switches, notices and consent
        /// are used as they are: nothing is enabled for the replay, and writes are durable.
        #[arg(long, requires = "keep_db")]
        append: bool,
        /// No progress bar.
        #[arg(long)]
        quiet: bool,
    },
}

/// `phone`
#[derive(Debug, Subcommand)]
pub enum PhoneCommand {
    /// A subscriber asks to suspend international calls on their line (phone.suspend-on-request):
    /// applied at once, on their consent. Resume with `mamori actions lift`.
    RequestSuspension {
        /// The line.
        line: String,
        /// The subscriber (default: the line id).
        #[arg(long)]
        subscriber: Option<String>,
        /// How the request arrived (phone, web, counter, letter…).
        #[arg(long, default_value = "phone")]
        method: String,
        #[command(flatten)]
        by: By,
    },
    /// Publish the countries targeted by fraud in a period (phone.publish-fraud-destinations):
    /// aggregates only, as JSON and HTML in Japanese and English; the publication is recorded in
    /// the ledger.
    Publish {
        /// Period start (RFC 3339 or a date, Japan time).
        #[arg(long)]
        from: String,
        /// Period end (exclusive).
        #[arg(long)]
        to: String,
        /// Output directory.
        #[arg(long, default_value = "fraud-destinations")]
        out: PathBuf,
        #[command(flatten)]
        by: By,
    },
    /// Print the guidance page for users (phone.advise-users) as HTML.
    Advice {
        /// `ja` or `en`.
        #[arg(long, default_value = "ja")]
        lang: String,
    },
}

/// `subscribers`
#[derive(Debug, Subcommand)]
pub enum SubscribersCommand {
    /// Import (add or replace) subscribers from a CSV file with the header
    /// `subscriber_id,email,language` (UTF-8; language `ja` or `en`, empty = `ja`; email may be
    /// empty). Bad rows are reported with their line and skipped; the rest is imported.
    Import {
        /// The CSV file (`-` for standard input).
        file: PathBuf,
        #[command(flatten)]
        by: By,
    },
}

/// `catalog`
#[derive(Debug, Args)]
pub struct CatalogArgs {
    /// JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Only this measure, in full.
    #[arg(long, value_name = "ID")]
    pub measure: Option<String>,
}

/// `config`
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Check a configuration file: every error with its key and line; exit code 2 if any.
    Check {
        /// The file (default: --config).
        file: Option<PathBuf>,
    },
    /// Print the default configuration, commented.
    Default,
}

/// Who is acting (recorded in the ledger).
#[derive(Debug, Args)]
pub struct By {
    /// Your name, as recorded in the ledger.
    #[arg(long, env = "MAMORI_ACTOR", value_name = "NAME")]
    pub by: String,
}

/// `measures`
#[derive(Debug, Subcommand)]
pub enum MeasuresCommand {
    /// Every measure's standing: enabled, notice, refused.
    List {
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Enable a measure (refused for measures the working group refused, and for measures that
    /// act before consent until their public notice is recorded).
    Enable {
        /// Measure id.
        measure: String,
        #[command(flatten)]
        by: By,
    },
    /// Disable a measure (actions in force stay until lifted or expired).
    Disable {
        /// Measure id.
        measure: String,
        #[command(flatten)]
        by: By,
    },
    /// Record where the terms of service / website announce a measure.
    Notice {
        /// Measure id.
        measure: String,
        /// Where (http or https URL).
        #[arg(long)]
        url: String,
        /// Version of the terms or page (e.g. 2026-04).
        #[arg(long = "terms-version", value_name = "VERSION")]
        terms_version: String,
        /// The clause (number or text) when the terms carry comprehensive consent.
        #[arg(long)]
        clause: Option<String>,
        #[command(flatten)]
        by: By,
    },
}

/// `consent`
#[derive(Debug, Subcommand)]
pub enum ConsentCommand {
    /// Record a subscriber's individual consent for a measure.
    Grant(ConsentArgs),
    /// Opt a subscriber out of a measure: effective at once.
    OptOut(ConsentArgs),
    /// Opt a subscriber back in.
    OptIn(ConsentArgs),
    /// A subscriber's position for every consent-based measure, and their history.
    Show {
        /// Subscriber id.
        #[arg(long)]
        subscriber: String,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
}

/// Arguments of consent changes.
#[derive(Debug, Args)]
pub struct ConsentArgs {
    /// Subscriber id.
    #[arg(long)]
    pub subscriber: String,
    /// Measure id.
    #[arg(long)]
    pub measure: String,
    /// How the subscriber expressed it (phone, web, written, email-reply, …).
    #[arg(long, default_value = "operator")]
    pub method: String,
    #[command(flatten)]
    pub by: By,
}

/// `actions`
#[derive(Debug, Subcommand)]
pub enum ActionsCommand {
    /// List actions, newest first.
    List {
        /// Only this state (proposed, awaiting-consent, pending-approval, applied, lifted, expired,
        /// rejected, refused, lapsed, completed).
        #[arg(long)]
        state: Option<String>,
        /// Only this measure.
        #[arg(long)]
        measure: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 50)]
        limit: usize,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// One action in full, with its ledger entries.
    Show {
        /// Action id.
        id: String,
    },
    /// Propose an action by hand (e.g. a subscriber's request to suspend international calls).
    Propose {
        /// Measure id.
        #[arg(long)]
        measure: String,
        /// Target: line:ID, ip:ADDR, country:CODE, prefix:CIDR, fqdn:NAME, subscriber:ID or network.
        #[arg(long)]
        target: String,
        /// The subscriber concerned.
        #[arg(long)]
        subscriber: Option<String>,
        /// The subscriber asked for it; how (phone, web, …). Recorded as their consent.
        #[arg(long, value_name = "METHOD")]
        requested_by_subscriber: Option<String>,
        /// Shorter than the measure's maximum, e.g. `12h`.
        #[arg(long)]
        duration: Option<String>,
        /// Free-text reason, kept as evidence.
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        by: By,
    },
    /// Approve a pending action; record the assessments the measure asks for.
    Approve {
        /// Action id.
        id: String,
        /// An assessment, `field=text` (repeat for each field the measure asks for).
        #[arg(long = "assess", value_name = "FIELD=TEXT")]
        assessments: Vec<String>,
        #[command(flatten)]
        by: By,
    },
    /// Reject a pending action.
    Reject {
        /// Action id.
        id: String,
        /// Why.
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        by: By,
    },
    /// Lift an action in force.
    Lift {
        /// Action id.
        id: String,
        /// Why.
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        by: By,
    },
    /// Record a subscriber's answer to a consent request or an emergency notice.
    Reply {
        /// Action id.
        id: String,
        /// `agree` ("yes, suspend") or `decline` ("it was me").
        #[arg(long, value_parser = ["agree", "decline"])]
        answer: String,
        /// How the answer came (phone, web, email-reply, …).
        #[arg(long, default_value = "phone")]
        method: String,
    },
}

/// `audit`
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Verify the whole hash chain and its checkpoints; names the first bad entry. Exit code 1 if
    /// the ledger was tampered with.
    Verify {
        /// The tip hash you recorded last time (catches deletion of the newest entries).
        #[arg(long, value_name = "HEX")]
        expect_tip: Option<String>,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Export entries as JSON Lines for an outside auditor.
    Export {
        /// From (RFC 3339, or a date taken as 00:00 Japan time).
        #[arg(long)]
        from: Option<String>,
        /// To, exclusive.
        #[arg(long)]
        to: Option<String>,
        /// Only this measure.
        #[arg(long)]
        measure: Option<String>,
        /// Output file (default: stdout).
        #[arg(long, short)]
        out: Option<PathBuf>,
    },
}

/// `report`
#[derive(Debug, Subcommand)]
pub enum ReportCommand {
    /// Transparency report: per measure, how many actions, how long, how many subscribers, which
    /// countries/targets where publishable. Writes HTML (with SVG charts), CSV and JSON.
    Transparency {
        /// From (RFC 3339, or a date taken as 00:00 Japan time).
        #[arg(long)]
        from: String,
        /// To, exclusive.
        #[arg(long)]
        to: String,
        /// Output directory.
        #[arg(long, short, default_value = "transparency")]
        out: PathBuf,
    },
}

/// `retention`
#[derive(Debug, Subcommand)]
pub enum RetentionCommand {
    /// Delete what each measure's retention says is due; the ledger records counts and ranges.
    Sweep,
}

/// `internal`
#[derive(Debug, Subcommand)]
pub enum InternalCommand {
    /// Write `count` actions as fast as possible, printing `ack <action> <seq>` after each is
    /// durable (crash-safety drills kill the process midway).
    Burst {
        /// How many.
        #[arg(long, default_value_t = 1000)]
        count: u64,
        /// Concurrent writers.
        #[arg(long, default_value_t = 8)]
        threads: u64,
    },
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    /// clap checks argument names only when a subcommand is parsed; this checks them all at once.
    #[test]
    fn command_line_definition_is_consistent() {
        super::Cli::command().debug_assert();
    }
}

/// `accounts`
#[derive(Debug, Subcommand)]
pub enum AccountsCommand {
    /// Every account: name, role, language, disabled.
    List,
    /// Add an account. The password is read from standard input (one line), never from the
    /// command line, so it stays out of shell history and process lists.
    Add {
        /// Login name (also the name the ledger records).
        name: String,
        /// operator, approver, auditor or admin.
        #[arg(long)]
        role: String,
        /// Console language: ja or en.
        #[arg(long, default_value = "ja")]
        language: String,
        /// Read the password from standard input (required: there is no other way to give it).
        #[arg(long, required = true)]
        password_stdin: bool,
        /// Who makes the change, as recorded in the ledger (default: the local administrator
        /// at the machine's shell).
        #[arg(long, env = "MAMORI_ACTOR", value_name = "NAME", default_value = "local-administrator")]
        by: String,
    },
    /// Change an account's role.
    SetRole {
        /// Login name.
        name: String,
        /// operator, approver, auditor or admin.
        role: String,
        /// Who makes the change, as recorded in the ledger (default: the local administrator
        /// at the machine's shell).
        #[arg(long, env = "MAMORI_ACTOR", value_name = "NAME", default_value = "local-administrator")]
        by: String,
    },
    /// Set a new password, read from standard input.
    Passwd {
        /// Login name.
        name: String,
        /// Who makes the change, as recorded in the ledger (default: the local administrator
        /// at the machine's shell).
        #[arg(long, env = "MAMORI_ACTOR", value_name = "NAME", default_value = "local-administrator")]
        by: String,
    },
    /// Disable an account (its sessions end at once).
    Disable {
        /// Login name.
        name: String,
        /// Who makes the change, as recorded in the ledger (default: the local administrator
        /// at the machine's shell).
        #[arg(long, env = "MAMORI_ACTOR", value_name = "NAME", default_value = "local-administrator")]
        by: String,
    },
    /// Re-enable a disabled account.
    Enable {
        /// Login name.
        name: String,
        /// Who makes the change, as recorded in the ledger (default: the local administrator
        /// at the machine's shell).
        #[arg(long, env = "MAMORI_ACTOR", value_name = "NAME", default_value = "local-administrator")]
        by: String,
    },
}
