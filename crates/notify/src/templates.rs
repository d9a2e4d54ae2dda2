//! The message and page templates, embedded at build time from `templates/` and rendered with
//! minijinja.
//!
//! Why minijinja: every text a subscriber reads is a file a reviewer (or the carrier's legal
//! team) can edit without touching Rust, with one shared frame per language (`_layout.txt`,
//! `_legal.txt`) that carries the legal ground, the notice-page link and the opt-out paragraph,
//! so no message can forget them. Inheritance (`{% extends %}`), conditionals and HTML
//! auto-escaping for the page are exactly what plain placeholder replacement lacks; minijinja is
//! built here without its default features (only `multi_template` and `serde`), and strict
//! undefined variables make a typo a test failure instead of a blank in a subscriber's mail.
//!
//! Email templates are plain text (`.txt`: no escaping; lettre encodes headers and body). Page
//! templates are `.html` and auto-escaped.

use jiff::Timestamp;
use mamori_core::calendar;
use mamori_core::catalog::{self, ConsentModel, MeasureId};
use minijinja::syntax::SyntaxConfig;
use minijinja::value::{Serde, Value};
use minijinja::{Environment, UndefinedBehavior};
use serde::Serialize;

use crate::Lang;

macro_rules! embedded {
    ($($name:literal,)*) => {
        &[$(($name, include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/templates/", $name))),)*]
    };
}

/// Every embedded template: `(name, source)`.
pub(crate) const TEMPLATES: &[(&str, &str)] = embedded![
    "page/notice.html",
    "page/refused.html",
    "email/ja/_layout.txt",
    "email/ja/_legal.txt",
    "email/ja/_generic/alert.txt",
    "email/ja/_generic/consent-request.txt",
    "email/ja/_generic/emergency-notice.txt",
    "email/ja/_generic/confirmation.txt",
    "email/ja/_generic/lift-notice.txt",
    "email/ja/phone.suspend-on-request/confirmation.txt",
    "email/ja/phone.suspend-on-request/lift-notice.txt",
    "email/ja/phone.suspend-dormant/consent-request.txt",
    "email/ja/phone.suspend-dormant/confirmation.txt",
    "email/ja/phone.suspend-dormant/lift-notice.txt",
    "email/ja/phone.suspend-line-on-surge/consent-request.txt",
    "email/ja/phone.suspend-line-on-surge/emergency-notice.txt",
    "email/ja/phone.suspend-line-on-surge/confirmation.txt",
    "email/ja/phone.suspend-line-on-surge/lift-notice.txt",
    "email/ja/ddos.block-on-victim-request/confirmation.txt",
    "email/ja/ddos.block-on-victim-request/consent-request.txt",
    "email/ja/ddos.block-on-victim-request/lift-notice.txt",
    "email/ja/bots.alert-from-third-party/alert.txt",
    "email/ja/bots.detect-cnc-queries/alert.txt",
    "email/ja/iot.alert-weak-credentials/alert.txt",
    "email/ja/router.alert-vulnerable/alert.txt",
    "email/ja/mail.blacklist-alert/alert.txt",
    "email/ja/mail.smtp-auth-abuse/consent-request.txt",
    "email/ja/mail.smtp-auth-abuse/emergency-notice.txt",
    "email/ja/mail.smtp-auth-abuse/confirmation.txt",
    "email/ja/mail.smtp-auth-abuse/lift-notice.txt",
    "email/ja/auth.pppoe-credential-abuse/consent-request.txt",
    "email/ja/auth.pppoe-credential-abuse/emergency-notice.txt",
    "email/ja/auth.pppoe-credential-abuse/confirmation.txt",
    "email/ja/auth.pppoe-credential-abuse/lift-notice.txt",
    "email/en/_layout.txt",
    "email/en/_legal.txt",
    "email/en/_generic/alert.txt",
    "email/en/_generic/consent-request.txt",
    "email/en/_generic/emergency-notice.txt",
    "email/en/_generic/confirmation.txt",
    "email/en/_generic/lift-notice.txt",
    "email/en/phone.suspend-on-request/confirmation.txt",
    "email/en/phone.suspend-on-request/lift-notice.txt",
    "email/en/phone.suspend-dormant/consent-request.txt",
    "email/en/phone.suspend-dormant/confirmation.txt",
    "email/en/phone.suspend-dormant/lift-notice.txt",
    "email/en/phone.suspend-line-on-surge/consent-request.txt",
    "email/en/phone.suspend-line-on-surge/emergency-notice.txt",
    "email/en/phone.suspend-line-on-surge/confirmation.txt",
    "email/en/phone.suspend-line-on-surge/lift-notice.txt",
    "email/en/ddos.block-on-victim-request/confirmation.txt",
    "email/en/ddos.block-on-victim-request/consent-request.txt",
    "email/en/ddos.block-on-victim-request/lift-notice.txt",
    "email/en/bots.alert-from-third-party/alert.txt",
    "email/en/bots.detect-cnc-queries/alert.txt",
    "email/en/iot.alert-weak-credentials/alert.txt",
    "email/en/router.alert-vulnerable/alert.txt",
    "email/en/mail.blacklist-alert/alert.txt",
    "email/en/mail.smtp-auth-abuse/consent-request.txt",
    "email/en/mail.smtp-auth-abuse/emergency-notice.txt",
    "email/en/mail.smtp-auth-abuse/confirmation.txt",
    "email/en/mail.smtp-auth-abuse/lift-notice.txt",
    "email/en/auth.pppoe-credential-abuse/consent-request.txt",
    "email/en/auth.pppoe-credential-abuse/emergency-notice.txt",
    "email/en/auth.pppoe-credential-abuse/confirmation.txt",
    "email/en/auth.pppoe-credential-abuse/lift-notice.txt",
];

/// The purposes governance queues messages for.
pub const PURPOSES: [&str; 5] = ["alert", "consent-request", "emergency-notice", "confirmation", "lift-notice"];

/// A template that couldn't be rendered (a bug in a template file; the tests render them all).
#[derive(Debug, thiserror::Error)]
#[error("template {name}: {detail}")]
pub struct TemplateError {
    /// The template.
    pub name: String,
    /// What minijinja said.
    pub detail: String,
}

/// A rendered message.
#[derive(Clone, PartialEq, Eq)]
pub struct Rendered {
    /// One line.
    pub subject: String,
    /// Plain text.
    pub text: String,
}

impl std::fmt::Debug for Rendered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rendered").field("text", &format_args!("<{} bytes>", self.text.len())).finish_non_exhaustive()
    }
}

/// What a message template sees. Every field is always present (strict undefined).
#[derive(Clone, Serialize)]
pub struct MessageContext {
    /// `alert`, `consent-request`, `emergency-notice`, `confirmation`, `lift-notice`.
    pub purpose: String,
    /// The measure id.
    pub measure: String,
    /// The measure's title in the subscriber's language.
    pub title: String,
    /// The ground the action rests on (kebab-case), from the catalog row or the action.
    pub legal_basis: String,
    /// Whether the measure lets the subscriber opt out (it rests on consent).
    pub opt_out: bool,
    /// The subscriber's notice page.
    pub link: String,
    /// Until when the link works (Japan time, in the subscriber's language).
    pub link_expires: String,
    /// The deadline of a consent request.
    pub answer_by: Option<String>,
    /// When an action in force ends at the latest.
    pub ends_at: Option<String>,
    /// The line concerned (telephone measures).
    pub line: Option<String>,
    /// The action id (a reference for the customer centre).
    pub action_id: String,
    /// Rendered for the notice page itself: without the link, the opt-out paragraph (the page
    /// has its own forms) and the email footer.
    pub on_page: bool,
}

impl std::fmt::Debug for MessageContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The link is the subscriber's credential: never in logs.
        f.debug_struct("MessageContext")
            .field("purpose", &self.purpose)
            .field("measure", &self.measure)
            .field("action_id", &self.action_id)
            .finish_non_exhaustive()
    }
}

/// Whether subscribers may opt out of a measure: it rests on comprehensive consent through the
/// terms of service, which MEASURES.md ties to an effective opt-out ("opt-out at any time",
/// "opt-out honoured"). Measures on individual consent are answered per request instead.
pub fn allows_opt_out(measure: MeasureId) -> bool {
    catalog::measure(measure).consent == ConsentModel::ComprehensiveOptOut
}

/// The measure's title in a language.
pub fn title(measure: MeasureId, lang: Lang) -> &'static str {
    let m = catalog::measure(measure);
    match lang {
        Lang::Ja => m.title_ja,
        Lang::En => m.title_en,
    }
}

/// A time as subscribers read it: Japan time, in their language.
pub fn format_time(t: Timestamp, lang: Lang) -> String {
    let z = t.to_zoned_datetime(calendar::japan());
    match lang {
        Lang::Ja => z.strftime("%Y年%-m月%-d日 %H:%M").to_string(),
        Lang::En => z.strftime("%-d %b %Y, %H:%M JST").to_string(),
    }
}

/// The embedded templates, ready to render.
pub struct Templates {
    env: Environment<'static>,
}

impl std::fmt::Debug for Templates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Templates")
    }
}

impl Templates {
    /// Parses every embedded template.
    pub fn new() -> Result<Self, TemplateError> {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        let syntax = SyntaxConfig::builder()
            .trim_blocks(true)
            .lstrip_blocks(true)
            .keep_trailing_newline(true)
            .build()
            .map_err(|e| TemplateError { name: "syntax".into(), detail: format!("{e:#}") })?;
        env.set_syntax(syntax);
        for (name, source) in TEMPLATES {
            env.add_template(name, source)
                .map_err(|e| TemplateError { name: (*name).to_owned(), detail: format!("{e:#}") })?;
        }
        Ok(Templates { env })
    }

    /// The template of a measure and purpose in a language: its own, or the purpose's generic one.
    pub fn message_template(&self, lang: Lang, measure: MeasureId, purpose: &str) -> Option<String> {
        let own = format!("email/{}/{}/{purpose}.txt", lang.as_str(), measure.as_str());
        if self.env.get_template(&own).is_ok() {
            return Some(own);
        }
        let generic = format!("email/{}/_generic/{purpose}.txt", lang.as_str());
        self.env.get_template(&generic).is_ok().then_some(generic)
    }

    /// Whether a measure has its own text for a purpose (not the generic one).
    pub fn has_own(&self, lang: Lang, measure: MeasureId, purpose: &str) -> bool {
        self.message_template(lang, measure, purpose)
            .is_some_and(|n| !n.starts_with(&format!("email/{}/_generic/", lang.as_str())))
    }

    /// Renders a message: the first line of the output is the subject, the rest the body.
    pub fn render_message(&self, lang: Lang, ctx: &MessageContext) -> Result<Rendered, TemplateError> {
        let measure: MeasureId = ctx
            .measure
            .parse()
            .map_err(|e: catalog::UnknownMeasure| TemplateError { name: ctx.measure.clone(), detail: e.to_string() })?;
        let name = self.message_template(lang, measure, &ctx.purpose).ok_or_else(|| TemplateError {
            name: ctx.purpose.clone(),
            detail: "no template for this purpose".into(),
        })?;
        let out = self.render(&name, Value::from(Serde(ctx)))?;
        let (subject, body) = out.split_once('\n').unwrap_or((out.as_str(), ""));
        let subject = subject.trim().to_owned();
        if subject.is_empty() {
            return Err(TemplateError { name, detail: "empty subject".into() });
        }
        Ok(Rendered { subject, text: body.trim_start_matches('\n').trim_end().to_owned() + "\n" })
    }

    /// Renders any embedded template (pages).
    pub(crate) fn render(&self, name: &str, ctx: Value) -> Result<String, TemplateError> {
        let err = |e: minijinja::Error| TemplateError { name: name.to_owned(), detail: format!("{e:#}") };
        self.env.get_template(name).map_err(err)?.render(ctx).map_err(err)
    }
}

#[cfg(test)]
mod tests;
