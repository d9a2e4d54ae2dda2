//! mamori's notifications: what subscribers are told, in their language, and how they answer.
//!
//! Governance queues a message whenever it owes the subscriber one (a consent request, the
//! prompt notice of an emergency suspension, an alert, a confirmation, a lift notice); this
//! crate delivers it:
//!
//! - [`templates`]: one text per measure and purpose in Japanese and English (files under
//!   `templates/`, embedded), each inside a frame that states the legal ground, links to the
//!   subscriber's notice page and, where the measure rests on comprehensive consent, says how
//!   to opt out;
//! - [`sender`]: the delivery loop: claims due messages from the store, applies the alert
//!   rate limit and late opt-outs, sends over SMTP ([`mailer`]), retries with backoff, and
//!   commits every state change with its ledger entry (`notice-sent`, `notice-failed`,
//!   `notice-suppressed`; never a body or an address);
//! - [`links`]: the signed, expiring link to the notice page and its forms' CSRF value;
//! - [`page`]: the notice page's content (read messages, answer consent requests, opt out or
//!   back in), served by `mamori-server`;
//! - [`contacts`]: the subscriber directory (language and email address) and its CSV import.
//!
//! Logs carry action ids, measure ids and purposes, never subscriber ids, addresses, tokens or
//! bodies.
#![deny(missing_docs)]

pub mod contacts;
mod lang;
pub mod links;
pub mod mailer;
pub mod page;
pub mod sender;
pub mod templates;

use mamori_core::governance::GovernanceError;
use mamori_core::store::StoreError;

pub use lang::Lang;
pub use links::{LinkError, LinkKey};
pub use mailer::{Email, Mailer, SendError, SmtpMailer};
pub use page::NoticePages;
pub use sender::{Notifier, RoundReport};
pub use templates::Templates;

/// Failures of the notification family.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NotifyError {
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Governance refused or failed.
    #[error(transparent)]
    Governance(#[from] GovernanceError),
    /// A template is broken.
    #[error(transparent)]
    Template(#[from] templates::TemplateError),
    /// The link secret is unusable.
    #[error(transparent)]
    Key(#[from] links::KeyError),
    /// The SMTP channel couldn't be set up.
    #[error(transparent)]
    Setup(#[from] mailer::SetupError),
}

/// Metric names (Prometheus).
pub mod metrics_names {
    /// Messages the relay accepted.
    pub const SENT: &str = "mamori_notify_sent_total";
    /// Messages given up.
    pub const FAILED: &str = "mamori_notify_failed_total";
    /// Messages not sent on purpose, by reason (`rate-limit`, `opted-out`, `no-longer-pending`).
    pub const SUPPRESSED: &str = "mamori_notify_suppressed_total";
    /// Attempts that failed and will be retried.
    pub const RETRIES: &str = "mamori_notify_retries_total";
    /// Messages per delivery state (refreshed every round).
    pub const OUTBOX: &str = "mamori_notify_outbox";
    /// Notice-page requests refused, by reason (`expired`, `forged`, `form`).
    pub const PAGE_REFUSED: &str = "mamori_notice_page_refused_total";

    /// Registers help text.
    pub fn describe() {
        metrics::describe_counter!(SENT, "Messages to subscribers accepted by the SMTP relay");
        metrics::describe_counter!(FAILED, "Messages to subscribers given up after their attempts or a refusal");
        metrics::describe_counter!(SUPPRESSED, "Messages not sent on purpose (rate limit, late opt-out)");
        metrics::describe_counter!(RETRIES, "Delivery attempts that failed and will be retried");
        metrics::describe_gauge!(OUTBOX, "Messages per delivery state");
        metrics::describe_counter!(PAGE_REFUSED, "Notice-page requests refused (expired or forged link, bad form)");
    }
}
