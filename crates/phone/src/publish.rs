//! The public side of the telephone family: the countries targeted by fraud
//! (`phone.publish-fraud-destinations`, T4: aggregates only, urging terminal-side barring) and the
//! guidance for users (`phone.advise-users`, T1), in Japanese and English.
//!
//! The destinations are computed from mamori's own actions (the countries in the evidence of
//! `phone.suspend-line-on-surge` actions, and the targets of `phone.restrict-country`), never from
//! call records, and counts below [`MIN_PUBLISHED_LINES`] are shown as "fewer than" so that no
//! published figure points at one subscriber.

use std::collections::BTreeMap;

use jiff::Timestamp;
use mamori_core::action::ActionRecord;
use mamori_core::catalog::MeasureId;
use serde::Serialize;

use crate::numbering::{CountryCode, NumberingPlan};

/// Counts below this are published as "fewer than this".
pub const MIN_PUBLISHED_LINES: u32 = 3;

/// One targeted country.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TargetedCountry {
    /// Calling code.
    pub calling_code: u16,
    /// ISO 3166 regions sharing the code.
    pub regions: Vec<String>,
    /// Lines whose suspension involved calls to it; `None` when fewer than [`MIN_PUBLISHED_LINES`].
    pub lines: Option<u32>,
    /// Calls to it were restricted (`phone.restrict-country`) in the period.
    pub restricted: bool,
}

/// The publication.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FraudDestinations {
    /// Period start (RFC 3339).
    pub from: String,
    /// Period end (RFC 3339).
    pub to: String,
    /// Most targeted first.
    pub countries: Vec<TargetedCountry>,
    /// Counts below this are not shown.
    pub min_published_lines: u32,
}

/// Aggregates the targeted countries from the period's actions.
pub fn fraud_destinations(actions: &[ActionRecord], from: Timestamp, to: Timestamp) -> FraudDestinations {
    let mut lines: BTreeMap<u16, u32> = BTreeMap::new();
    let mut restricted: BTreeMap<u16, bool> = BTreeMap::new();
    let plan = NumberingPlan::new();
    for a in actions.iter().filter(|a| a.proposed_at >= from && a.proposed_at < to) {
        match a.measure {
            MeasureId::PhoneSuspendLineOnSurge => {
                let evidence = a.evidence.get("evidence").unwrap_or(&a.evidence);
                let codes = evidence.get("countries").and_then(|c| c.as_array()).cloned().unwrap_or_default();
                for code in codes.iter().filter_map(|c| c.as_u64()).filter_map(|c| u16::try_from(c).ok()) {
                    if plan.is_assigned(code) {
                        *lines.entry(code).or_default() += 1;
                    }
                }
            }
            MeasureId::PhoneRestrictCountry if a.applied_at.is_some() => {
                if let Some(code) = a.target.to_string().strip_prefix("country:").and_then(|c| c.parse::<u16>().ok()) {
                    restricted.insert(code, true);
                    lines.entry(code).or_default();
                }
            }
            _ => {}
        }
    }
    let mut countries: Vec<TargetedCountry> = lines
        .into_iter()
        .map(|(code, n)| TargetedCountry {
            calling_code: code,
            regions: NumberingPlan::regions(CountryCode(code)),
            lines: (n >= MIN_PUBLISHED_LINES).then_some(n),
            restricted: restricted.get(&code).copied().unwrap_or(false),
        })
        .collect();
    countries.sort_by(|a, b| {
        b.restricted
            .cmp(&a.restricted)
            .then(b.lines.unwrap_or(0).cmp(&a.lines.unwrap_or(0)))
            .then(a.calling_code.cmp(&b.calling_code))
    });
    FraudDestinations {
        from: from.to_string(),
        to: to.to_string(),
        countries,
        min_published_lines: MIN_PUBLISHED_LINES,
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// Page language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    /// 日本語
    Ja,
    /// English
    En,
}

impl Lang {
    /// From `ja`/`en` (anything else is Japanese, the carrier's default).
    pub fn parse(s: &str) -> Lang {
        if s.eq_ignore_ascii_case("en") { Lang::En } else { Lang::Ja }
    }
}

/// The publication as an HTML page.
pub fn fraud_destinations_html(d: &FraudDestinations, lang: Lang) -> String {
    let (title, intro, h_code, h_regions, h_lines, h_restricted, fewer, yes) = match lang {
        Lang::Ja => (
            "国際電話の不正利用の宛先国",
            "次の国・地域あての国際電話が、乗っ取られたPBXや盗まれたSIPアカウントによる不正利用に使われました。国際電話を使わない場合や、これらの国・地域へ発信しない場合は、端末（PBX・ルータ）で発信制限を設定してください。",
            "国番号",
            "国・地域",
            "休止した回線数",
            "発信規制",
            "3未満",
            "実施",
        ),
        Lang::En => (
            "Countries targeted by international call fraud",
            "Calls to these countries and regions were placed through hijacked PBXs and stolen SIP accounts. If you do not call abroad, or not these destinations, please bar them on your terminal (PBX or router).",
            "Calling code",
            "Countries / regions",
            "Lines suspended",
            "Calls restricted",
            "fewer than 3",
            "yes",
        ),
    };
    let mut rows = String::new();
    for c in &d.countries {
        rows.push_str(&format!(
            "<tr><td>+{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
            c.calling_code,
            escape(&c.regions.join(", ")),
            c.lines.map_or_else(|| fewer.to_owned(), |n| n.to_string()),
            if c.restricted { yes } else { "" }
        ));
    }
    format!(
        "<!doctype html>\n<html lang=\"{lang}\"><head><meta charset=\"utf-8\"><title>{title}</title></head><body>\n<h1>{title}</h1>\n<p>{intro}</p>\n<p>{from} – {to}</p>\n<table>\n<tr><th>{h_code}</th><th>{h_regions}</th><th>{h_lines}</th><th>{h_restricted}</th></tr>\n{rows}</table>\n</body></html>\n",
        lang = if lang == Lang::Ja { "ja" } else { "en" },
        from = escape(&d.from),
        to = escape(&d.to),
    )
}

/// The guidance for users (seed 003 §2(1)): check the connection and the equipment, harden it.
pub fn advice_html(lang: Lang) -> String {
    let (l, title, items) = match lang {
        Lang::Ja => (
            "ja",
            "IP電話の不正利用を防ぐために",
            [
                "PBX・IP電話対応ルータ等の設定を確認し、不要に外部から接続できる設定になっていないか確かめ、不要なら削除してください。",
                "国際電話を利用しない場合は、端末側で国際発信を制限してください。当社に申し込めば国際電話の利用を休止できます。",
                "外部から接続する際のパスワードや、設定・管理用のパスワードに、推測されやすいものや簡単なものを使わないでください。",
                "使用するソフトウェアを最新のバージョンに更新してください。",
                "通信機器にアクセスログの記録機能がある場合は、不審なアクセスがないか定期的に確認してください。",
            ],
        ),
        Lang::En => (
            "en",
            "Protect your IP phone from fraud",
            [
                "Check the settings of your PBX or VoIP router: make sure it cannot be reached from outside unless you need it, and remove such access if you don't.",
                "If you do not call abroad, bar international calls on your equipment. You can also ask us to suspend international calls on your line.",
                "Never use guessable or simple passwords for remote access or for administration.",
                "Keep the software of your equipment up to date.",
                "If your equipment keeps access logs, check them regularly for suspicious access.",
            ],
        ),
    };
    let list: String = items.iter().map(|i| format!("<li>{}</li>\n", escape(i))).collect();
    format!(
        "<!doctype html>\n<html lang=\"{l}\"><head><meta charset=\"utf-8\"><title>{title}</title></head><body>\n<h1>{title}</h1>\n<ol>\n{list}</ol>\n<p><a href=\"?lang=ja\">日本語</a> | <a href=\"?lang=en\">English</a></p>\n</body></html>\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use mamori_core::action::ActionState;
    use mamori_core::catalog::LegalBasis;
    use mamori_core::subject::{Actor, Target};
    use serde_json::json;

    fn action(measure: MeasureId, target: Target, evidence: serde_json::Value, at: &str) -> ActionRecord {
        let t: Timestamp = at.parse().unwrap();
        ActionRecord {
            id: format!("A-{at}"),
            measure,
            target,
            subscriber: None,
            state: ActionState::Applied,
            legal_basis: LegalBasis::LegitimateBusiness,
            emergency: true,
            time_class: "night".into(),
            proposer: Actor("detector".into()),
            proposed_at: t,
            applied_at: Some(t),
            ended_at: None,
            deadline: None,
            lift_condition: String::new(),
            evidence,
            end_reason: None,
            grant_seq: None,
            approvals: vec![],
        }
    }

    #[test]
    fn aggregates_only_and_small_counts_hidden() {
        let mut actions = vec![];
        for i in 0..4 {
            actions.push(action(
                MeasureId::PhoneSuspendLineOnSurge,
                Target::Line(format!("L{i}")),
                json!({"countries": [882, 252]}),
                "2026-11-20T00:00:00Z",
            ));
        }
        actions.push(action(
            MeasureId::PhoneSuspendLineOnSurge,
            Target::Line("L9".into()),
            json!({"countries": [53]}),
            "2026-11-20T00:00:00Z",
        ));
        actions.push(action(
            MeasureId::PhoneRestrictCountry,
            Target::Country("232".into()),
            json!({}),
            "2026-11-21T00:00:00Z",
        ));
        // Outside the period.
        actions.push(action(
            MeasureId::PhoneSuspendLineOnSurge,
            Target::Line("L8".into()),
            json!({"countries": [1]}),
            "2026-10-01T00:00:00Z",
        ));
        let d = fraud_destinations(
            &actions,
            "2026-11-01T00:00:00Z".parse().unwrap(),
            "2026-12-01T00:00:00Z".parse().unwrap(),
        );
        let codes: Vec<u16> = d.countries.iter().map(|c| c.calling_code).collect();
        assert_eq!(codes, [232, 252, 882, 53]);
        assert_eq!(d.countries[1].lines, Some(4));
        assert_eq!(d.countries[3].lines, None, "one line is not published as a count");
        let json = serde_json::to_string(&d).unwrap();
        assert!(!json.contains("L0") && !json.contains("L9"), "no line ids: {json}");
        let html = fraud_destinations_html(&d, Lang::Ja);
        assert!(html.contains("+882") && html.contains("3未満"));
        assert!(fraud_destinations_html(&d, Lang::En).contains("fewer than 3"));
    }

    #[test]
    fn advice_in_both_languages() {
        assert!(advice_html(Lang::Ja).contains("パスワード"));
        assert!(advice_html(Lang::En).contains("passwords"));
    }
}
