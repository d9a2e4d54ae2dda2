//! Metric names, described once so `/metrics` carries help text.

/// Actions ended by the scheduler at their maximum duration.
pub const EXPIRED: &str = "mamori_actions_expired_total";
/// Consent requests and approvals that lapsed.
pub const LAPSED: &str = "mamori_actions_lapsed_total";
/// Rows deleted by the retention sweeper.
pub const RETENTION_DELETED: &str = "mamori_retention_deleted_total";
/// Actuator calls that failed (retried on the next reconciliation).
pub const ACTUATOR_ERRORS: &str = "mamori_actuator_errors_total";
/// Scheduler runs that failed.
pub const SCHEDULER_ERRORS: &str = "mamori_scheduler_errors_total";
/// Actions in force, per measure (refreshed at each scrape).
pub const IN_FORCE: &str = "mamori_actions_in_force";
/// Actions waiting for consent or approval.
pub const WAITING: &str = "mamori_actions_waiting";
/// Ledger entries.
pub const LEDGER_ENTRIES: &str = "mamori_ledger_entries";
/// HTTP requests refused for lack of a valid token.
pub const HTTP_UNAUTHORIZED: &str = "mamori_http_unauthorized_total";
/// HTTP requests refused because the caller's role lacks the right.
pub const HTTP_FORBIDDEN: &str = "mamori_http_forbidden_total";
/// Form posts and API calls refused for a missing or wrong CSRF token or a foreign origin.
pub const HTTP_CSRF_REFUSED: &str = "mamori_http_csrf_refused_total";
/// HTTP requests refused as malformed (bad JSON or form, oversized body).
pub const HTTP_BAD_REQUEST: &str = "mamori_http_bad_request_total";
/// Console logins, by outcome (ok, failed, limited).
pub const LOGINS: &str = "mamori_console_logins_total";

/// Registers help text.
pub fn describe() {
    metrics::describe_counter!(EXPIRED, "Actions ended by the scheduler at their maximum duration");
    metrics::describe_counter!(LAPSED, "Consent requests and approvals that went unanswered until their deadline");
    metrics::describe_counter!(RETENTION_DELETED, "Rows deleted by the retention sweeper");
    metrics::describe_counter!(ACTUATOR_ERRORS, "Actuator calls that failed");
    metrics::describe_counter!(SCHEDULER_ERRORS, "Scheduler runs that failed");
    metrics::describe_gauge!(IN_FORCE, "Actions in force");
    metrics::describe_gauge!(WAITING, "Actions awaiting consent or approval");
    metrics::describe_gauge!(LEDGER_ENTRIES, "Entries in the audit ledger");
    metrics::describe_counter!(HTTP_UNAUTHORIZED, "API requests refused for a missing or wrong token");
    metrics::describe_counter!(HTTP_FORBIDDEN, "Requests refused because the role lacks the right");
    metrics::describe_counter!(
        HTTP_CSRF_REFUSED,
        "Changes refused for a missing or wrong CSRF token or a foreign origin"
    );
    metrics::describe_counter!(HTTP_BAD_REQUEST, "Requests refused as malformed or oversized");
    metrics::describe_counter!(LOGINS, "Console logins by outcome");
    mamori_notify::metrics_names::describe();
}
