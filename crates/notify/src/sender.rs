//! The delivery loop: due messages → rate limit and late opt-outs → template → SMTP → state and
//! ledger, one transaction per step.
//!
//! A message moves `queued → sending → sent`; a failed attempt goes back to `queued` with its
//! next attempt `retry_initial × 2^(attempts−1)` later (at most `retry_max`), and after
//! `max_attempts`, or on a permanent refusal, to `failed`. `suppressed` is for alerts over the
//! rate limit (one per subscriber, measure and `alert_period`: a storm of findings is one
//! message) and for alerts and consent requests to a subscriber who opted out after they were
//! queued. Every `sent`, `failed` and `suppressed` is a ledger entry with the purpose and a
//! reason, never the body or the address. A message found `sending` at start (the process
//! died mid-send) is queued again: delivery is at least once.

use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};
use mamori_core::action::{ActionRecord, ActionState};
use mamori_core::catalog;
use mamori_core::config::NotifyConfig;
use mamori_core::governance::Governance;
use mamori_core::ledger::{EventKind, LedgerDraft};
use mamori_core::store::{Batch, Delivery, DeliveryState, DeliveryUpdate, Mutation, RenderedBody, StoreError};
use mamori_core::subject::{Actor, Target};
use serde_json::json;

use crate::links::{self, LinkKey};
use crate::mailer::{Email, Mailer};
use crate::metrics_names as mn;
use crate::templates::{self, MessageContext, Templates};
use crate::{Lang, NotifyError};

/// What one round did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RoundReport {
    /// Accepted by the relay.
    pub sent: u32,
    /// Failed this time, to be retried.
    pub retried: u32,
    /// Given up.
    pub failed: u32,
    /// Not sent on purpose.
    pub suppressed: u32,
}

impl RoundReport {
    /// Whether anything happened.
    pub fn is_empty(&self) -> bool {
        *self == RoundReport::default()
    }
}

/// The message context of a delivery: what the templates see.
pub(crate) fn context(
    d: &Delivery,
    action: Option<&ActionRecord>,
    lang: Lang,
    link: String,
    link_expires: Timestamp,
    on_page: bool,
) -> MessageContext {
    let m = d.message.measure;
    let row = catalog::measure(m);
    let legal_basis = action.map_or(row.primary_basis(), |a| a.legal_basis);
    let deadline = action.and_then(|a| a.deadline);
    let answer_by = match (d.message.purpose.as_str(), action) {
        ("consent-request", Some(a)) if a.state == ActionState::AwaitingConsent => deadline,
        _ => None,
    };
    let ends_at = match action {
        Some(a) if a.state == ActionState::Applied && row.restrictive => deadline,
        _ => None,
    };
    let line = match action.map(|a| &a.target) {
        Some(Target::Line(l)) => Some(l.clone()),
        _ => None,
    };
    MessageContext {
        purpose: d.message.purpose.clone(),
        measure: m.as_str().to_owned(),
        title: templates::title(m, lang).to_owned(),
        legal_basis: legal_basis.as_str().to_owned(),
        opt_out: templates::allows_opt_out(m),
        link,
        link_expires: templates::format_time(link_expires, lang),
        answer_by: answer_by.map(|t| templates::format_time(t, lang)),
        ends_at: ends_at.map(|t| templates::format_time(t, lang)),
        line,
        action_id: d.message.action_id.clone(),
        on_page,
    }
}

/// Delivers queued messages.
pub struct Notifier {
    gov: Arc<Governance>,
    mailer: Arc<dyn Mailer>,
    templates: Arc<Templates>,
    key: LinkKey,
    cfg: NotifyConfig,
}

impl std::fmt::Debug for Notifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notifier").finish_non_exhaustive()
    }
}

enum Step {
    Done(DeliveryState),
    Retry,
    Skipped,
}

impl Notifier {
    /// A notifier over governance (for the store, the clock and consent) and a mailer.
    pub fn new(gov: Arc<Governance>, mailer: Arc<dyn Mailer>, key: LinkKey) -> Result<Self, NotifyError> {
        let cfg = gov.config().notify.clone();
        Ok(Notifier { gov, mailer, templates: Arc::new(Templates::new()?), key, cfg })
    }

    /// The notifier `[notify]` describes: SMTP to `smtp_host`, links signed with the configured
    /// secret. `None` when no `smtp_host` is configured (messages then wait in the outbox).
    pub fn from_config(gov: Arc<Governance>) -> Result<Option<Self>, NotifyError> {
        let Some(mailer) = crate::mailer::SmtpMailer::from_config(&gov.config().notify)? else {
            return Ok(None);
        };
        let key = LinkKey::from_config(gov.config())?;
        Ok(Some(Notifier::new(gov, Arc::new(mailer), key)?))
    }

    /// Queues again the messages a previous run left `sending` (it died mid-send). Call once at
    /// start, before the first round.
    pub fn recover(&self) -> Result<u32, NotifyError> {
        let now = self.gov.now();
        let mut n = 0;
        for d in self.gov.store().deliveries_in_state(DeliveryState::Sending, 10_000)? {
            let up = DeliveryUpdate {
                id: d.id,
                expect: DeliveryState::Sending,
                state: DeliveryState::Queued,
                attempts: d.attempts,
                next_attempt_at: Some(now),
                at: now,
                reason: Some("interrupted".into()),
                body: None,
            };
            match self.commit(up, None) {
                Ok(()) => n += 1,
                Err(StoreError::Conflict { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        if n > 0 {
            tracing::warn!(messages = n, "messages interrupted mid-send are queued again (delivery is at least once)");
        }
        Ok(n)
    }

    /// One round: every due message, oldest first, up to `[notify] batch`.
    pub fn run_once(&self) -> Result<RoundReport, NotifyError> {
        // An opt-out made by another process counts before anything is sent.
        self.gov.refresh_if_changed()?;
        let now = self.gov.now();
        let due = self.gov.store().due_deliveries(now, self.cfg.batch as usize)?;
        let mut report = RoundReport::default();
        for d in due {
            match self.deliver(&d)? {
                Step::Done(DeliveryState::Sent) => report.sent += 1,
                Step::Done(DeliveryState::Failed) => report.failed += 1,
                Step::Done(DeliveryState::Suppressed) => report.suppressed += 1,
                Step::Retry => report.retried += 1,
                Step::Done(_) | Step::Skipped => {}
            }
        }
        if let Ok(counts) = self.gov.store().delivery_counts() {
            for s in DeliveryState::ALL {
                metrics::gauge!(mn::OUTBOX, "state" => s.as_str()).set(counts.get(&s).copied().unwrap_or(0) as f64);
            }
        }
        Ok(report)
    }

    fn commit(&self, up: DeliveryUpdate, draft: Option<LedgerDraft>) -> Result<(), StoreError> {
        let at = up.at;
        self.gov
            .store()
            .commit(Batch { at, mutations: vec![Mutation::Delivery(up)], ledger: draft.into_iter().collect() })
            .map(|_| ())
    }

    fn draft(&self, d: &Delivery, kind: EventKind, body: serde_json::Value) -> LedgerDraft {
        LedgerDraft::new(kind, Actor::system(), body)
            .measure(d.message.measure)
            .action(d.message.action_id.clone())
            .subject(Target::Subscriber(d.message.subscriber.0.clone()).to_string())
    }

    /// Ends a message without sending it (suppressed or failed), with its ledger entry.
    fn finish(
        &self,
        d: &Delivery,
        expect: DeliveryState,
        state: DeliveryState,
        reason: &str,
    ) -> Result<Step, NotifyError> {
        let now = self.gov.now();
        let (kind, mut body) = match state {
            DeliveryState::Suppressed => {
                (EventKind::NoticeSuppressed, json!({"purpose": d.message.purpose, "reason": reason}))
            }
            _ => (
                EventKind::NoticeFailed,
                json!({"purpose": d.message.purpose, "reason": reason, "attempts": d.attempts}),
            ),
        };
        if reason == "rate-limit" {
            body["period"] = json!(format!("{:#}", self.cfg.alert_period));
        }
        let up = DeliveryUpdate {
            id: d.id,
            expect,
            state,
            attempts: d.attempts,
            next_attempt_at: None,
            at: now,
            reason: Some(reason.to_owned()),
            body: None,
        };
        match self.commit(up, Some(self.draft(d, kind, body))) {
            Ok(()) => {}
            Err(StoreError::Conflict { .. }) => return Ok(Step::Skipped),
            Err(e) => return Err(e.into()),
        }
        if state == DeliveryState::Suppressed {
            metrics::counter!(mn::SUPPRESSED, "reason" => reason.to_owned()).increment(1);
            tracing::debug!(action = %d.message.action_id, measure = %d.message.measure, purpose = %d.message.purpose, reason, "notice suppressed");
        } else {
            metrics::counter!(mn::FAILED).increment(1);
            tracing::warn!(action = %d.message.action_id, measure = %d.message.measure, purpose = %d.message.purpose, reason, attempts = d.attempts, "notice failed");
        }
        Ok(Step::Done(state))
    }

    fn deliver(&self, d: &Delivery) -> Result<Step, NotifyError> {
        let store = self.gov.store();
        let msg = &d.message;
        let now = self.gov.now();
        let queued = DeliveryState::Queued;
        let action = store.action(&msg.action_id)?;
        let purpose = msg.purpose.as_str();
        if matches!(purpose, "alert" | "consent-request") && self.gov.is_opted_out(&msg.subscriber, msg.measure) {
            return self.finish(d, queued, DeliveryState::Suppressed, "opted-out");
        }
        if purpose == "consent-request" && action.as_ref().is_some_and(|a| a.state != ActionState::AwaitingConsent) {
            // Answered or lapsed before the request went out: asking now would mislead.
            return self.finish(d, queued, DeliveryState::Suppressed, "no-longer-pending");
        }
        if purpose == "alert" {
            let since = now.checked_sub(self.cfg.alert_period).unwrap_or(Timestamp::MIN);
            if store.delivery_ahead(d.id, &msg.subscriber, msg.measure, "alert", since)? {
                return self.finish(d, queued, DeliveryState::Suppressed, "rate-limit");
            }
        }
        let Some(contact) = store.contact(&msg.subscriber)? else {
            return self.finish(d, queued, DeliveryState::Failed, "no-contact");
        };
        let Some(to) = contact.email.clone() else {
            return self.finish(d, queued, DeliveryState::Failed, "no-email");
        };
        let lang = Lang::parse(&contact.language).unwrap_or_default();
        let expires = now.checked_add(self.cfg.link_ttl).unwrap_or(now);
        let link = links::page_url(&self.cfg.public_base_url, &self.key.sign(&msg.subscriber, expires));
        let ctx = context(d, action.as_ref(), lang, link, expires, false);
        let rendered = match self.templates.render_message(lang, &ctx) {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(measure = %msg.measure, purpose, error = %e, "notice template failed");
                return self.finish(d, queued, DeliveryState::Failed, "template");
            }
        };

        // Claim it: from here a crash leaves it `sending`, queued again at the next start.
        let attempts = d.attempts.saturating_add(1);
        let claim = DeliveryUpdate {
            id: d.id,
            expect: queued,
            state: DeliveryState::Sending,
            attempts,
            next_attempt_at: None,
            at: now,
            reason: None,
            body: None,
        };
        match self.commit(claim, None) {
            Ok(()) => {}
            Err(StoreError::Conflict { .. }) => return Ok(Step::Skipped),
            Err(e) => return Err(e.into()),
        }
        let claimed = Delivery { attempts, ..d.clone() };
        let email = Email { to, subject: rendered.subject.clone(), text: rendered.text.clone(), language: lang };
        let result = self.mailer.send(&email);
        let now = self.gov.now();
        match result {
            Ok(()) => {
                let body = RenderedBody {
                    language: lang.as_str().to_owned(),
                    subject: rendered.subject,
                    text: links::redact_links(&rendered.text, &self.cfg.public_base_url),
                };
                let up = DeliveryUpdate {
                    id: d.id,
                    expect: DeliveryState::Sending,
                    state: DeliveryState::Sent,
                    attempts,
                    next_attempt_at: None,
                    at: now,
                    reason: None,
                    body: Some(body),
                };
                let draft = self.draft(
                    d,
                    EventKind::NoticeSent,
                    json!({"purpose": msg.purpose, "channel": "email", "language": lang.as_str(), "attempts": attempts}),
                );
                self.commit(up, Some(draft))?;
                metrics::counter!(mn::SENT).increment(1);
                tracing::info!(action = %msg.action_id, measure = %msg.measure, purpose, attempts, "notice sent");
                Ok(Step::Done(DeliveryState::Sent))
            }
            Err(e) if e.is_transient() && attempts < self.cfg.max_attempts => {
                let wait = backoff(&self.cfg, attempts);
                let up = DeliveryUpdate {
                    id: d.id,
                    expect: DeliveryState::Sending,
                    state: DeliveryState::Queued,
                    attempts,
                    next_attempt_at: Some(now.checked_add(wait).unwrap_or(now)),
                    at: now,
                    reason: Some(e.label()),
                    body: None,
                };
                self.commit(up, None)?;
                metrics::counter!(mn::RETRIES).increment(1);
                tracing::warn!(action = %msg.action_id, measure = %msg.measure, purpose, attempts, error = %e.label(), retry_in = %format!("{wait:#}"), "notice not delivered; will retry");
                Ok(Step::Retry)
            }
            Err(e) => self.finish(&claimed, DeliveryState::Sending, DeliveryState::Failed, &e.label()),
        }
    }
}

/// The wait after `attempts` failed attempts.
pub fn backoff(cfg: &NotifyConfig, attempts: u32) -> SignedDuration {
    let factor = 1i32.checked_shl(attempts.saturating_sub(1).min(30)).unwrap_or(i32::MAX);
    cfg.retry_initial.checked_mul(factor).unwrap_or(cfg.retry_max).min(cfg.retry_max)
}
