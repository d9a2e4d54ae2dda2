use super::*;
use mamori_core::catalog::{CATALOG, LegalBasis, NotificationDuty};

fn ctx(measure: MeasureId, purpose: &str) -> MessageContext {
    MessageContext {
        purpose: purpose.into(),
        measure: measure.as_str().into(),
        title: title(measure, Lang::Ja).into(),
        legal_basis: catalog::measure(measure).primary_basis().as_str().into(),
        opt_out: allows_opt_out(measure),
        link: "https://carrier.example/s/TOKEN".into(),
        link_expires: "2026年12月8日 22:00".into(),
        answer_by: Some("2026年11月25日 22:00".into()),
        ends_at: Some("2026年11月27日 22:00".into()),
        line: Some("0312340002".into()),
        action_id: "A20261124-0001".into(),
        on_page: false,
    }
}

/// The (measure, purpose) pairs governance can queue for a subscriber: what each measure's
/// catalog row makes `propose`, `apply` and `end` queue.
fn pairs() -> Vec<(MeasureId, &'static str)> {
    let mut out = Vec::new();
    for m in CATALOG.iter().filter(|m| !m.is_refused()) {
        let individual =
            matches!(m.consent, ConsentModel::IndividualRequired | ConsentModel::IndividualFirstEmergencyException);
        if individual {
            out.push((m.id, "consent-request"));
        }
        if m.consent == ConsentModel::IndividualFirstEmergencyException {
            out.push((m.id, "emergency-notice"));
        }
        match m.notification {
            NotificationDuty::Alert => out.push((m.id, "alert")),
            NotificationDuty::Confirmation
            | NotificationDuty::ConsentRequestOrPromptNotice
            | NotificationDuty::Requester => out.push((m.id, "confirmation")),
            NotificationDuty::None | NotificationDuty::Public => {}
        }
        if m.restrictive && (individual || !matches!(m.notification, NotificationDuty::None | NotificationDuty::Public))
        {
            out.push((m.id, "lift-notice"));
        }
    }
    out
}

#[test]
fn every_template_parses_and_every_purpose_has_a_generic_text() {
    let t = Templates::new().unwrap();
    for lang in [Lang::Ja, Lang::En] {
        for p in PURPOSES {
            assert!(t.message_template(lang, MeasureId::DnsBlockFqdnList, p).is_some(), "{lang:?} {p}");
        }
    }
}

#[test]
fn subscriber_facing_measures_have_their_own_text_in_both_languages() {
    let t = Templates::new().unwrap();
    let mut missing = Vec::new();
    for (m, p) in pairs() {
        // phone.suspend-on-request is applied on the subscriber's own request: never asked first.
        if m == MeasureId::PhoneSuspendOnRequest && p == "consent-request" {
            continue;
        }
        for lang in [Lang::Ja, Lang::En] {
            if !t.has_own(lang, m, p) {
                missing.push(format!("{lang:?} {m} {p}"));
            }
        }
    }
    assert!(missing.is_empty(), "no own text for: {missing:#?}");
}

#[test]
fn every_message_renders_in_both_languages_with_legal_ground_and_link() {
    let t = Templates::new().unwrap();
    for (m, p) in pairs() {
        for lang in [Lang::Ja, Lang::En] {
            let mut c = ctx(m, p);
            c.title = title(m, lang).into();
            let r = t.render_message(lang, &c).unwrap_or_else(|e| panic!("{m} {p} {lang:?}: {e}"));
            assert!(!r.subject.contains('\n') && !r.subject.is_empty(), "{m} {p}");
            assert!(r.text.contains("https://carrier.example/s/TOKEN"), "{m} {p} {lang:?}: no link\n{}", r.text);
            assert!(r.text.contains(title(m, lang)), "{m} {p} {lang:?}: no measure title");
            assert!(r.text.contains("A20261124-0001"), "{m} {p}: no reference");
            assert!(!r.text.contains("{{") && !r.text.contains("{%"), "{m} {p}: template syntax leaked");
            let (ground, opt) = match lang {
                Lang::Ja => ("■ 対策と法的根拠", "オプトアウト"),
                Lang::En => ("Legal ground:", "opt out"),
            };
            assert!(r.text.contains(ground), "{m} {p} {lang:?}: no legal ground\n{}", r.text);
            assert_eq!(r.text.contains(opt), allows_opt_out(m), "{m} {p} {lang:?}: opt-out text\n{}", r.text);
            if lang == Lang::Ja {
                // Japanese text, not English left behind.
                assert!(!r.text.contains("Dear customer"), "{m} {p}");
                assert!(r.subject.chars().any(|c| c > '\u{3000}'), "{m} {p}: subject not Japanese: {}", r.subject);
            } else {
                assert!(r.text.is_ascii() || !r.text.contains("お客様"), "{m} {p}: Japanese in the English text");
                assert!(r.text.starts_with("Dear customer"), "{m} {p}");
            }
        }
    }
}

#[test]
fn legal_ground_names_the_ground_of_the_action() {
    let t = Templates::new().unwrap();
    let mut c = ctx(MeasureId::PhoneSuspendLineOnSurge, "emergency-notice");
    let ja = t.render_message(Lang::Ja, &c).unwrap();
    assert!(ja.text.contains("正当業務行為"), "{}", ja.text);
    assert!(ja.text.contains("第4条"), "{}", ja.text);
    assert!(ja.text.contains("2026年11月27日 22:00"), "the latest end is stated: {}", ja.text);
    c.title = title(MeasureId::PhoneSuspendLineOnSurge, Lang::En).into();
    let en = t.render_message(Lang::En, &c).unwrap();
    assert!(en.text.contains("legitimate business act"), "{}", en.text);
    // after the subscriber agreed, the ground is their consent
    c.legal_basis = LegalBasis::Consent.as_str().into();
    c.purpose = "confirmation".into();
    let en = t.render_message(Lang::En, &c).unwrap();
    assert!(en.text.contains("Legal ground: your own consent"), "{}", en.text);
    let iot = ctx(MeasureId::IotAlertWeakCredentials, "alert");
    let ja = t.render_message(Lang::Ja, &iot).unwrap();
    assert!(ja.text.contains("包括的なご同意"), "{}", ja.text);
}

#[test]
fn opt_out_is_offered_only_where_the_measure_allows_it() {
    let t = Templates::new().unwrap();
    // comprehensive consent: opt-out offered
    for m in [MeasureId::IotAlertWeakCredentials, MeasureId::BotsDetectCncQueries] {
        let r = t.render_message(Lang::Ja, &ctx(m, "alert")).unwrap();
        assert!(r.text.contains("オプトアウト"), "{m}: {}", r.text);
        assert!(allows_opt_out(m));
    }
    // legitimate business alerts and toll-fraud suspensions: no opt-out paragraph
    for (m, p) in [
        (MeasureId::BotsAlertFromThirdParty, "alert"),
        (MeasureId::MailBlacklistAlert, "alert"),
        (MeasureId::PhoneSuspendLineOnSurge, "emergency-notice"),
    ] {
        let r = t.render_message(Lang::Ja, &ctx(m, p)).unwrap();
        assert!(!r.text.contains("オプトアウト"), "{m}: {}", r.text);
        let mut c = ctx(m, p);
        c.title = title(m, Lang::En).into();
        let r = t.render_message(Lang::En, &c).unwrap();
        assert!(!r.text.contains("opt out"), "{m}: {}", r.text);
    }
}

#[test]
fn toll_fraud_texts_say_how_to_answer() {
    let t = Templates::new().unwrap();
    let m = MeasureId::PhoneSuspendLineOnSurge;
    let ja = t.render_message(Lang::Ja, &ctx(m, "consent-request")).unwrap();
    assert_eq!(ja.subject, "【重要】国際電話の不正利用の疑い（ご確認のお願い）");
    assert!(ja.text.starts_with("お客様各位\n\n"), "{}", ja.text);
    assert!(ja.text.contains("「はい、休止してください」") && ja.text.contains("「私が利用しました」"), "{}", ja.text);
    assert!(ja.text.contains("0312340002"), "the line is named");
    let mut c = ctx(m, "emergency-notice");
    c.title = title(m, Lang::En).into();
    let en = t.render_message(Lang::En, &c).unwrap();
    assert_eq!(en.subject, "Important: international calls on your line have been suspended");
    assert!(en.text.contains("\"It was me\""), "{}", en.text);
}

#[test]
fn a_missing_variable_is_an_error_not_a_blank() {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.add_template("x.txt", "{{ nope }}").unwrap();
    assert!(env.get_template("x.txt").unwrap().render(minijinja::context! {}).is_err());
}

#[test]
fn japan_time_in_each_language() {
    let t: Timestamp = "2026-11-24T13:05:00Z".parse().unwrap();
    assert_eq!(format_time(t, Lang::Ja), "2026年11月24日 22:05");
    assert_eq!(format_time(t, Lang::En), "24 Nov 2026, 22:05 JST");
}

#[test]
fn on_the_page_a_message_has_no_link_footer_or_opt_out_paragraph() {
    let t = Templates::new().unwrap();
    let mut c = ctx(MeasureId::IotAlertWeakCredentials, "alert");
    c.on_page = true;
    let r = t.render_message(Lang::Ja, &c).unwrap();
    assert!(!r.text.contains("https://carrier.example/s/TOKEN") && !r.text.contains("送信専用"), "{}", r.text);
    assert!(!r.text.contains("オプトアウト（") && r.text.contains("■ 対策と法的根拠"), "{}", r.text);
    assert!(r.text.trim_end().ends_with("管理番号: A20261124-0001"), "{}", r.text);
}
