//! The subscriber's notice page: their messages, the consent requests and emergency notices
//! waiting for their answer, and their opt-out choices. `mamori-server` serves it at
//! `/s/{token}`; this module decides what it shows and what a form may do.
//!
//! Every form carries a value derived from the link ([`LinkKey::form_token`]); a reply must
//! concern one of the subscriber's own actions; an opt-out goes through governance, so it takes
//! effect at once (the subscriber leaves the measure's views before any further detection).

use std::collections::BTreeSet;
use std::sync::Arc;

use jiff::Timestamp;
use mamori_core::action::{ActionRecord, ActionState};
use mamori_core::catalog::{self, ConsentModel, LegalBasis, MeasureId};
use mamori_core::consent::ConsentState;
use mamori_core::governance::{Governance, GovernanceError, SubscriberReply};
use mamori_core::store::DeliveryState;
use mamori_core::subject::{Actor, SubscriberId};
use minijinja::value::{Serde, Value};
use serde::Serialize;

use crate::links::{self, LinkError, LinkKey};
use crate::templates::{self, Templates};
use crate::{Lang, NotifyError};

/// How the page records what the subscriber did (the consent history's `method`).
pub const METHOD: &str = "notice-page";

/// What a form did, shown as a banner after the redirect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Done {
    /// A reply to a request or notice was recorded.
    Replied,
    /// Opted out.
    OptedOut,
    /// Opted back in.
    OptedIn,
    /// The request had already been answered or had ended.
    Already,
}

impl Done {
    /// The query value (`?done=`).
    pub fn as_str(self) -> &'static str {
        match self {
            Done::Replied => "reply",
            Done::OptedOut => "opt-out",
            Done::OptedIn => "opt-in",
            Done::Already => "already",
        }
    }

    /// Parses the query value.
    pub fn parse(s: &str) -> Option<Self> {
        [Done::Replied, Done::OptedOut, Done::OptedIn, Done::Already].into_iter().find(|d| d.as_str() == s)
    }
}

/// A form the page refuses.
#[derive(Debug, thiserror::Error)]
pub enum FormError {
    /// The CSRF value doesn't belong to this link.
    #[error("the form's check value does not belong to this link")]
    BadForm,
    /// The action isn't the subscriber's.
    #[error("not your action")]
    NotYours,
    /// Nonsense input (unknown measure, operation, answer).
    #[error("{0}")]
    BadRequest(String),
    /// Anything else.
    #[error(transparent)]
    Notify(#[from] NotifyError),
}

/// A submitted form (all fields optional; which ones matter depends on `op`).
#[derive(Debug, Default, Clone, serde::Deserialize)]
pub struct Form {
    /// The CSRF value.
    #[serde(default)]
    pub csrf: String,
    /// `reply`, `opt-out` or `opt-in`.
    #[serde(default)]
    pub op: String,
    /// For replies.
    pub action_id: Option<String>,
    /// `agree` or `decline`.
    pub answer: Option<String>,
    /// For opt-out and opt-in.
    pub measure: Option<String>,
}

/// The page's texts in one language.
#[derive(Debug, Serialize)]
struct Strings {
    title: &'static str,
    intro: &'static str,
    other_lang_name: &'static str,
    pending_heading: &'static str,
    nothing_pending: &'static str,
    until: &'static str,
    messages_heading: &'static str,
    no_messages: &'static str,
    choices_heading: &'static str,
    choices_intro: &'static str,
    no_choices: &'static str,
    opt_out: &'static str,
    opt_in: &'static str,
    link_valid: &'static str,
    footer: &'static str,
}

const JA: Strings = Strings {
    title: "お知らせとご回答",
    intro: "当社からのお知らせの確認、ご同意のお願いへのご回答、対策ごとのオプトアウトができます。",
    other_lang_name: "English",
    pending_heading: "ご回答をお待ちしているもの",
    nothing_pending: "ご回答が必要なものはありません。",
    until: "期限",
    messages_heading: "お知らせ",
    no_messages: "お知らせはありません。",
    choices_heading: "対策ごとの設定",
    choices_intro: "利用規約に基づく対策は、いつでも対象から外れる（オプトアウトする）ことができます。変更は直ちに有効になります。",
    no_choices: "設定を変更できる対策はありません。",
    opt_out: "この対策の対象から外れる（オプトアウト）",
    opt_in: "この対策の対象に戻る",
    link_valid: "このページのリンクの有効期限:",
    footer: "このページのアドレスは、ほかの方に教えないでください。ご不明な点はご契約の窓口にお問い合わせください。",
};

const EN: Strings = Strings {
    title: "Your notices and answers",
    intro: "Read our messages to you, answer our requests for your consent, and opt out of measures.",
    other_lang_name: "日本語",
    pending_heading: "Waiting for your answer",
    nothing_pending: "Nothing is waiting for your answer.",
    until: "until",
    messages_heading: "Messages",
    no_messages: "No messages.",
    choices_heading: "Your choices",
    choices_intro: "You may opt out of measures based on our terms of service at any time; the change takes effect at once.",
    no_choices: "There are no measures you can change here.",
    opt_out: "Opt out of this measure",
    opt_in: "Opt back in",
    link_valid: "This page's link is valid until",
    footer: "Please keep this page's address to yourself. If anything is unclear, contact our customer centre.",
};

fn strings(lang: Lang) -> &'static Strings {
    match lang {
        Lang::Ja => &JA,
        Lang::En => &EN,
    }
}

fn banner(done: Done, lang: Lang) -> &'static str {
    match (done, lang) {
        (Done::Replied, Lang::Ja) => "ご回答を承りました。ありがとうございました。",
        (Done::Replied, Lang::En) => "Thank you: your answer is recorded.",
        (Done::OptedOut, Lang::Ja) => "オプトアウトしました。直ちに有効です。",
        (Done::OptedOut, Lang::En) => "You have opted out; this takes effect at once.",
        (Done::OptedIn, Lang::Ja) => "対策の対象に戻りました。",
        (Done::OptedIn, Lang::En) => "You have opted back in.",
        (Done::Already, Lang::Ja) => "この件はすでにご回答済みか、終了しています。",
        (Done::Already, Lang::En) => "This was already answered, or has ended.",
    }
}

fn purpose_label(purpose: &str, lang: Lang) -> &'static str {
    match (purpose, lang) {
        ("alert", Lang::Ja) => "注意喚起",
        ("alert", Lang::En) => "Alert",
        ("consent-request", Lang::Ja) => "ご同意のお願い",
        ("consent-request", Lang::En) => "Request for your consent",
        ("emergency-notice", Lang::Ja) => "緊急の措置のお知らせ",
        ("emergency-notice", Lang::En) => "Notice of an urgent measure",
        ("confirmation", Lang::Ja) => "措置のお知らせ",
        ("confirmation", Lang::En) => "Measure applied",
        ("lift-notice", Lang::Ja) => "措置の終了",
        ("lift-notice", Lang::En) => "Measure ended",
        (_, Lang::Ja) => "お知らせ",
        (_, Lang::En) => "Message",
    }
}

/// The two answers' labels for an action waiting for the subscriber.
fn answers(rec: &ActionRecord, lang: Lang) -> (&'static str, &'static str) {
    let applied = rec.state == ActionState::Applied;
    match (rec.measure, applied, lang) {
        (MeasureId::PhoneSuspendDormant, _, Lang::Ja) => ("はい、休止してください", "いいえ、国際電話を使います"),
        (MeasureId::PhoneSuspendDormant, _, Lang::En) => ("Yes, suspend them", "No, I still call abroad"),
        (_, true, Lang::Ja) => ("心当たりがありません（停止を続けてください）", "私が利用しました（解除してください）"),
        (_, true, Lang::En) => ("I don't recognise this: keep it suspended", "It was me: lift it"),
        (_, false, Lang::Ja) => ("はい、停止してください", "私が利用しました"),
        (_, false, Lang::En) => ("Yes, suspend", "It was me"),
    }
}

fn situation(rec: &ActionRecord, lang: Lang) -> &'static str {
    match (rec.state, lang) {
        (ActionState::Applied, Lang::Ja) => "ご同意の前に緊急の措置を行いました。ご回答ください。",
        (ActionState::Applied, Lang::En) => "We acted before asking you, as it was urgent. Please answer.",
        (_, Lang::Ja) => "措置を行ってよいか、ご回答をお待ちしています。",
        (_, Lang::En) => "We are waiting for your answer before doing anything.",
    }
}

/// Whether an action is waiting for this subscriber's answer: a consent request, or an
/// emergency action they haven't answered yet.
fn waiting_for_answer(rec: &ActionRecord) -> bool {
    rec.state == ActionState::AwaitingConsent
        || (rec.state == ActionState::Applied && rec.emergency && rec.legal_basis != LegalBasis::Consent)
}

fn consent_label(state: &ConsentState, lang: Lang) -> String {
    match (state, lang) {
        (ConsentState::OptedOut { at }, Lang::Ja) => {
            format!("オプトアウト中です（{} から）。この対策の対象外です。", templates::format_time(*at, lang))
        }
        (ConsentState::OptedOut { at }, Lang::En) => {
            format!("Opted out since {}: this measure leaves you alone.", templates::format_time(*at, lang))
        }
        (ConsentState::CoveredByTerms { .. }, Lang::Ja) => "利用規約に基づき、対象になっています。".into(),
        (ConsentState::CoveredByTerms { .. }, Lang::En) => "Covered by our terms of service.".into(),
        (ConsentState::Granted { .. }, Lang::Ja) => "ご同意をいただいています。".into(),
        (ConsentState::Granted { .. }, Lang::En) => "You have given your consent.".into(),
        (_, Lang::Ja) => "対象外です。".into(),
        (_, Lang::En) => "Not applied to you.".into(),
    }
}

#[derive(Debug, Serialize)]
struct Pending {
    action_id: String,
    title: &'static str,
    situation: &'static str,
    deadline: Option<String>,
    agree_label: &'static str,
    decline_label: &'static str,
}

#[derive(Debug, Serialize)]
struct MessageItem {
    heading: String,
    date: String,
    purpose_label: &'static str,
    title: &'static str,
    text: Option<String>,
}

#[derive(Debug, Serialize)]
struct Choice {
    measure: &'static str,
    title: &'static str,
    state_label: String,
    opted_out: bool,
}

#[derive(Debug, Serialize)]
struct PageModel {
    lang: &'static str,
    other_lang: &'static str,
    t: &'static Strings,
    banner: Option<&'static str>,
    csrf: String,
    link_expires: String,
    pending: Vec<Pending>,
    messages: Vec<MessageItem>,
    choices: Vec<Choice>,
}

/// Renders and acts for the notice page.
pub struct NoticePages {
    templates: Arc<Templates>,
    key: LinkKey,
    base_url: String,
}

impl std::fmt::Debug for NoticePages {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NoticePages").finish_non_exhaustive()
    }
}

impl NoticePages {
    /// Pages signed with `key`, linking to `base_url`.
    pub fn new(key: LinkKey, base_url: &str) -> Result<Self, NotifyError> {
        Ok(NoticePages { templates: Arc::new(Templates::new()?), key, base_url: base_url.to_owned() })
    }

    /// The pages `[notify]` describes (the link secret is created on first use when it is the
    /// default file).
    pub fn from_config(config: &mamori_core::config::Config) -> Result<Self, NotifyError> {
        NoticePages::new(LinkKey::from_config(config)?, &config.notify.public_base_url)
    }

    /// The subscriber a link names.
    pub fn verify(&self, token: &str, now: Timestamp) -> Result<SubscriberId, LinkError> {
        self.key.verify(token, now)
    }

    /// The page refusing a link or a form (`expired`, `forged`, `form`).
    pub fn refused(&self, reason: &str) -> String {
        self.templates
            .render("page/refused.html", minijinja::context! { reason => reason })
            .unwrap_or_else(|_| "<!doctype html><title>403</title><h1>403</h1>".to_owned())
    }

    /// The page for a subscriber (the token already verified).
    pub fn render(
        &self,
        gov: &Governance,
        subscriber: &SubscriberId,
        token: &str,
        lang: Option<Lang>,
        done: Option<Done>,
    ) -> Result<String, NotifyError> {
        let store = gov.store();
        let now = gov.now();
        let lang = match lang {
            Some(l) => l,
            None => store.contact(subscriber)?.and_then(|c| Lang::parse(&c.language)).unwrap_or_default(),
        };
        let expires = LinkKey::expiry(token).unwrap_or(now);
        let link = links::page_url(&self.base_url, token);
        let deliveries = store.subscriber_deliveries(subscriber, 100)?;
        let mut seen = BTreeSet::new();
        let mut pending = Vec::new();
        let mut messages = Vec::new();
        for d in &deliveries {
            let action = store.action(&d.message.action_id)?;
            if let Some(a) = &action {
                if a.subscriber.as_ref() == Some(subscriber) && waiting_for_answer(a) && seen.insert(a.id.clone()) {
                    let (agree_label, decline_label) = answers(a, lang);
                    pending.push(Pending {
                        action_id: a.id.clone(),
                        title: templates::title(a.measure, lang),
                        situation: situation(a, lang),
                        deadline: a.deadline.map(|t| templates::format_time(t, lang)),
                        agree_label,
                        decline_label,
                    });
                }
            }
            if d.state == DeliveryState::Suppressed {
                continue;
            }
            let ctx = crate::sender::context(d, action.as_ref(), lang, link.clone(), expires, true);
            let rendered = self.templates.render_message(lang, &ctx).ok();
            messages.push(MessageItem {
                heading: rendered
                    .as_ref()
                    .map_or_else(|| templates::title(d.message.measure, lang).to_owned(), |r| r.subject.clone()),
                date: templates::format_time(d.message.at, lang),
                purpose_label: purpose_label(&d.message.purpose, lang),
                title: templates::title(d.message.measure, lang),
                text: rendered.map(|r| r.text),
            });
        }
        let switches = store.measure_switches()?;
        let (states, _) = gov.consent_overview(subscriber)?;
        let choices = states
            .into_iter()
            .filter(|(m, st)| {
                let opted_out = matches!(st, ConsentState::OptedOut { .. });
                opted_out
                    || (catalog::measure(*m).consent == ConsentModel::ComprehensiveOptOut
                        && switches.get(m).copied().unwrap_or(false))
            })
            .map(|(m, st)| Choice {
                measure: m.as_str(),
                title: templates::title(m, lang),
                state_label: consent_label(&st, lang),
                opted_out: matches!(st, ConsentState::OptedOut { .. }),
            })
            .collect();
        let model = PageModel {
            lang: lang.as_str(),
            other_lang: lang.other().as_str(),
            t: strings(lang),
            banner: done.map(|d| banner(d, lang)),
            csrf: self.key.form_token(token),
            link_expires: templates::format_time(expires, lang),
            pending,
            messages,
            choices,
        };
        Ok(self.templates.render("page/notice.html", Value::from(Serde(&model)))?)
    }

    /// Carries out a submitted form for the subscriber the token names.
    pub fn submit(
        &self,
        gov: &Governance,
        subscriber: &SubscriberId,
        token: &str,
        form: &Form,
    ) -> Result<Done, FormError> {
        if !self.key.check_form_token(token, &form.csrf) {
            return Err(FormError::BadForm);
        }
        let by = Actor::subscriber(subscriber);
        match form.op.as_str() {
            "reply" => {
                let id = form.action_id.as_deref().ok_or_else(|| FormError::BadRequest("no action".into()))?;
                let reply = match form.answer.as_deref() {
                    Some("agree") => SubscriberReply::Agree,
                    Some("decline") => SubscriberReply::Decline,
                    _ => return Err(FormError::BadRequest("answer must be agree or decline".into())),
                };
                let rec = gov.store().action(id).map_err(NotifyError::from)?.ok_or(FormError::NotYours)?;
                if rec.subscriber.as_ref() != Some(subscriber) {
                    return Err(FormError::NotYours);
                }
                if !waiting_for_answer(&rec) {
                    return Ok(Done::Already);
                }
                match gov.subscriber_reply(id, reply, METHOD) {
                    Ok(_) => Ok(Done::Replied),
                    Err(GovernanceError::InvalidTransition { .. }) => Ok(Done::Already),
                    Err(GovernanceError::Store(mamori_core::store::StoreError::Conflict { .. })) => Ok(Done::Already),
                    Err(e) => Err(NotifyError::from(e).into()),
                }
            }
            op @ ("opt-out" | "opt-in") => {
                let measure: MeasureId = form
                    .measure
                    .as_deref()
                    .unwrap_or_default()
                    .parse()
                    .map_err(|e: catalog::UnknownMeasure| FormError::BadRequest(e.to_string()))?;
                if op == "opt-out" {
                    if !templates::allows_opt_out(measure) {
                        return Err(FormError::BadRequest(format!("{measure} offers no opt-out")));
                    }
                    gov.opt_out(subscriber, measure, METHOD, &by).map_err(NotifyError::from)?;
                    tracing::info!(measure = %measure, "subscriber opted out on the notice page");
                    Ok(Done::OptedOut)
                } else {
                    gov.opt_in(subscriber, measure, METHOD, &by).map_err(NotifyError::from)?;
                    tracing::info!(measure = %measure, "subscriber opted back in on the notice page");
                    Ok(Done::OptedIn)
                }
            }
            _ => Err(FormError::BadRequest("unknown operation".into())),
        }
    }
}
