//! The console's words in Japanese and English. Keys are the English text; a key without a
//! Japanese entry shows in English (a test keeps the table complete for the keys pages use).

use mamori_core::account::UiLanguage;
use mamori_core::governance::GovernanceError;

/// (English, Japanese)
const TEXT: &[(&str, &str)] = &[
    ("Dashboard", "ダッシュボード"),
    ("Approvals", "承認待ち"),
    ("Consent", "同意台帳"),
    ("Ledger", "監査台帳"),
    ("Report", "透明性レポート"),
    ("Catalog", "措置カタログ"),
    ("Accounts", "アカウント"),
    ("Log out", "ログアウト"),
    ("Log in", "ログイン"),
    ("Name", "ユーザー名"),
    ("Password", "パスワード"),
    ("operator", "オペレーター"),
    ("approver", "承認者"),
    ("auditor", "監査人"),
    ("admin", "管理者"),
    ("In force", "実施中の措置"),
    ("Waiting for a person", "対応待ち（同意・承認）"),
    ("Expiring next", "まもなく終了"),
    ("Active actions by measure", "措置ごとの実施件数"),
    ("Findings per day (last 14 days)", "検知件数の推移（直近14日）"),
    ("Recent actions", "最近の措置"),
    ("none", "なし"),
    ("action", "措置ID"),
    ("measure", "措置"),
    ("target", "対象"),
    ("state", "状態"),
    ("legal basis", "法的根拠"),
    ("time class", "時間区分"),
    ("deadline", "期限"),
    ("ends at the latest", "終了予定（最長）"),
    ("proposer", "提案者"),
    ("proposed at", "提案日時"),
    ("applied at", "適用日時"),
    ("ended at", "終了日時"),
    ("approvals", "承認"),
    ("evidence", "根拠データ（最小化済み）"),
    ("lift condition", "解除条件"),
    ("emergency", "緊急措置"),
    ("subscriber", "契約者"),
    ("Data stages unlocked", "解放されたデータ段階"),
    ("Timeline (ledger)", "経緯（監査台帳）"),
    ("Approve", "承認する"),
    ("Reject", "却下する"),
    ("Lift", "解除する"),
    ("Reason", "理由"),
    ("Propose an action", "措置を提案する"),
    ("Propose", "提案する"),
    ("Assessments the approver must record", "承認者が記録すべき評価"),
    ("Evidence mamori computed", "mamoriが算出した根拠"),
    ("Verify the ledger", "台帳を検証する"),
    ("The hash chain is intact", "ハッシュチェーンは完全です"),
    ("The ledger has been tampered with", "台帳が改ざんされています"),
    ("entries", "件"),
    ("checked", "検証済み"),
    ("Older entries", "古い記録"),
    ("Search", "検索"),
    ("Subscriber id", "契約者ID"),
    ("History", "履歴"),
    ("position", "状態"),
    ("enabled", "有効"),
    ("disabled", "無効"),
    ("refused by the working group", "検討会で不可とされた措置"),
    ("public notice", "公表（約款・ウェブサイト）"),
    ("required before enabling", "有効化の前に必要"),
    ("not required", "不要"),
    ("status", "状態"),
    ("Period", "期間"),
    ("from", "開始"),
    ("to", "終了"),
    ("Show", "表示"),
    ("role", "ロール"),
    ("language", "言語"),
    ("Create account", "アカウントを作成"),
    ("Change role", "ロールを変更"),
    ("Disable", "無効化"),
    ("Enable", "有効化"),
    ("Done.", "完了しました。"),
    ("Wrong name or password.", "ユーザー名またはパスワードが違います。"),
    ("Too many failed logins; try again later.", "ログイン失敗が多すぎます。しばらくしてから再度お試しください。"),
    ("needed", "必要数"),
    ("max duration", "最長期間"),
    ("consent", "同意"),
    ("approval rule", "承認要件"),
    ("stages and fields", "段階と読み取る項目"),
];

/// The text in a language.
pub(crate) fn t(lang: UiLanguage, key: &'static str) -> &'static str {
    match lang {
        UiLanguage::En => key,
        UiLanguage::Ja => TEXT.iter().find(|(en, _)| *en == key).map(|(_, ja)| *ja).unwrap_or(key),
    }
}

/// Governance's refusal in the person's language, or `None` where its own (English) text stands:
/// in English, and for errors that carry no refusal (storage failures, free-text bad requests).
/// The JSON API keeps governance's text, which is what scripts and logs match on.
pub(crate) fn refusal(lang: UiLanguage, e: &GovernanceError) -> Option<String> {
    if lang == UiLanguage::En {
        return None;
    }
    Some(match e {
        GovernanceError::Refused { measure, reason } => {
            format!("{measure} は提供されない措置です（{reason}）")
        }
        GovernanceError::NotEnabled { measure } => {
            format!("{measure} は有効になっていません（`mamori measures enable {measure}` で有効にします）")
        }
        GovernanceError::NoticeMissing { measure } => format!(
            "{measure} は加入者の同意より前に実施できる措置のため、約款またはウェブサイトで事前に公表する必要があります。\
             公表先を `mamori measures notice {measure} --url URL --version VERSION` で記録してください"
        ),
        GovernanceError::ConsentNotApplicable { measure, operation } => {
            format!("{measure} は加入者の同意に基づく措置ではないため、{operation} は適用されません")
        }
        GovernanceError::InvalidTransition { action_id, from, to } => {
            format!("措置 {action_id} は {from} の状態のため、{to} にはできません")
        }
        GovernanceError::ProposerCannotApprove { action_id, approver } => {
            format!("{approver} は措置 {action_id} の提案者のため承認できません。別の承認者の承認が必要です")
        }
        GovernanceError::AlreadyApproved { action_id, approver } => {
            format!("{approver} は措置 {action_id} をすでに承認しています。承認はそれぞれ別の人が行います")
        }
        GovernanceError::NotAnApprover { name } => {
            format!("{name} は承認者ではありません（承認者ロールを付与するか、[roles] approvers に記載してください）")
        }
        GovernanceError::MissingAssessment { measure, field } => {
            format!("{measure} の承認には評価項目 `{field}` の記入が必要です")
        }
        GovernanceError::UnknownAction(id) => format!("措置 {id} はありません"),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_in_japanese_and_english_left_to_governance() {
        let e = GovernanceError::ProposerCannotApprove { action_id: "a1".into(), approver: "alice".into() };
        let ja = refusal(UiLanguage::Ja, &e).expect("a Japanese refusal");
        assert!(ja.contains("alice") && ja.contains("a1") && ja.contains("提案者"), "{ja}");
        assert_eq!(refusal(UiLanguage::En, &e), None);
        assert_eq!(refusal(UiLanguage::Ja, &GovernanceError::BadRequest("x".into())), None);
    }

    #[test]
    fn japanese_for_every_navigation_word() {
        for k in ["Dashboard", "Approvals", "Ledger", "approver", "auditor", "Approve", "Lift"] {
            assert_ne!(t(UiLanguage::Ja, k), k);
            assert_eq!(t(UiLanguage::En, k), k);
        }
    }

    #[test]
    fn keys_are_unique() {
        let mut keys: Vec<_> = TEXT.iter().map(|(k, _)| *k).collect();
        keys.sort_unstable();
        let n = keys.len();
        keys.dedup();
        assert_eq!(keys.len(), n);
    }
}
