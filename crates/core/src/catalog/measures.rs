//! The catalog table, one row per measure, in [`MeasureId::ALL`] order.
//!
//! Sources: `shared/MEASURES.md` and seeds 000–004 (MIC study group reports, working-group minutes,
//! public-comment answers, the ISP guideline). Durations and retention periods are mamori's
//! defaults where the documents give none; configuration may shorten them, never lengthen them.

use jiff::SignedDuration;

use super::{ApprovalRule, ConsentModel, Field, LegalBasis, Measure, MeasureId, NotificationDuty, Provision, Stage};
use ConsentModel::*;
use Field::*;
use LegalBasis::*;

const fn hours(h: i64) -> Option<SignedDuration> {
    Some(SignedDuration::from_hours(h))
}

const NONE: &[Stage] = &[];

const fn stage(number: u8, purpose: &'static str, fields: &'static [Field]) -> Stage {
    Stage { number, purpose, fields, unlocked_per_subject: false }
}

const fn unlocked_stage(number: u8, purpose: &'static str, fields: &'static [Field]) -> Stage {
    Stage { number, purpose, fields, unlocked_per_subject: true }
}

/// Shorthand so the table below reads like MEASURES.md.
#[allow(clippy::too_many_arguments)]
const fn row(
    id: MeasureId,
    id_str: &'static str,
    family: &'static str,
    title_en: &'static str,
    title_ja: &'static str,
    source: &'static str,
    legal_basis: &'static [LegalBasis],
    stages: &'static [Stage],
    consent: ConsentModel,
) -> Measure {
    Measure {
        id,
        id_str,
        family,
        title_en,
        title_ja,
        source,
        legal_basis,
        stages,
        consent,
        acts_before_consent: false,
        restrictive: false,
        approval: None,
        max_duration: None,
        lift_condition: "",
        notification: NotificationDuty::None,
        retention_days: 180,
        publish_targets: false,
        provision: Provision::Provided,
    }
}

const fn restrictive(mut m: Measure, max: Option<SignedDuration>, lift: &'static str) -> Measure {
    m.restrictive = true;
    m.max_duration = max;
    m.lift_condition = lift;
    m
}

const fn notify(mut m: Measure, n: NotificationDuty) -> Measure {
    m.notification = n;
    m
}

const fn before_consent(mut m: Measure) -> Measure {
    m.acts_before_consent = true;
    m
}

const fn retention(mut m: Measure, days: u32) -> Measure {
    m.retention_days = days;
    m
}

const fn publishes_targets(mut m: Measure) -> Measure {
    m.publish_targets = true;
    m
}

const fn approval(mut m: Measure, rule: ApprovalRule) -> Measure {
    m.approval = Some(rule);
    m
}

const fn refused(mut m: Measure, why: &'static str) -> Measure {
    m.provision = Provision::Refused(why);
    m
}

/// The measure catalog.
pub static CATALOG: [Measure; 27] = [
    // ── Telephone service fraud — seed 003, guideline §6(2) ───────────────────────────────────
    publishes_targets(row(
        MeasureId::PhoneAdviseUsers,
        "phone.advise-users",
        "phone",
        "Publish guidance: check PBX exposure, bar international calls at the terminal if unused, strong passwords, updates, access logs",
        "利用者への注意喚起（接続・利用環境の確認、セキュリティ対策の強化）",
        "seed 003 §2(1)",
        &[NoSecret],
        NONE,
        NotRequired,
    )),
    notify(
        restrictive(
            row(
                MeasureId::PhoneSuspendOnRequest,
                "phone.suspend-on-request",
                "phone",
                "Suspend a line's international calls when its subscriber asks",
                "契約者からの申請による国際電話の利用休止",
                "seed 003 §2(2)",
                &[Consent],
                &[stage(1, "the subscriber's request", &[SubscriberRequest])],
                IndividualRequired,
            ),
            hours(24 * 365),
            "the subscriber asks to resume international calls",
        ),
        NotificationDuty::Confirmation,
    ),
    notify(
        restrictive(
            row(
                MeasureId::PhoneSuspendDormant,
                "phone.suspend-dormant",
                "phone",
                "Lines with no international call for a long time: ask the subscriber, suspend if they agree",
                "国際電話を利用していない回線の意向確認と利用休止",
                "seed 003 §2(3)",
                &[Consent],
                &[stage(1, "per line: date of the last international call", &[LastInternationalCallDate])],
                IndividualRequired,
            ),
            hours(24 * 365),
            "the subscriber asks to resume international calls",
        ),
        NotificationDuty::ConsentRequestOrPromptNotice,
    ),
    publishes_targets(notify(
        row(
            MeasureId::PhonePublishFraudDestinations,
            "phone.publish-fraud-destinations",
            "phone",
            "Publish the countries targeted by fraud, urging terminal-side barring",
            "不正利用の宛先国の公表",
            "seed 003 §2(4)",
            &[NoSecret],
            &[stage(1, "aggregate counts per country", &[CountryCallCounts])],
            NotRequired,
        ),
        NotificationDuty::Public,
    )),
    retention(
        before_consent(notify(
            restrictive(
                row(
                    MeasureId::PhoneSuspendLineOnSurge,
                    "phone.suspend-line-on-surge",
                    "phone",
                    "On a sharp rise of a line's international charges over its normal level, suspend its international calls if use by someone other than the subscriber is highly probable",
                    "国際電話料金の急激な高騰を検知した回線の国際電話の利用休止",
                    "seed 003 §2(5), 別紙(1)",
                    &[LegitimateBusiness],
                    &[
                        stage(1, "charge totals per line at a fixed frequency", &[LineChargeTotals]),
                        unlocked_stage(
                            2,
                            "only when charges alone can't decide: that line's international calls",
                            &[CountryCode, CallingNumber, SourceIp],
                        ),
                    ],
                    IndividualFirstEmergencyException,
                ),
                hours(72),
                "the subscriber is reached: their reply lifts (\"it was me\") or confirms the suspension",
            ),
            NotificationDuty::ConsentRequestOrPromptNotice,
        )),
        90,
    ),
    retention(
        restrictive(
            row(
                MeasureId::PhoneSuspendSipAuthFromIp,
                "phone.suspend-sip-auth-from-ip",
                "phone",
                "On such a rise, if a source IP is highly probably a fraudster's, suspend SIP authentication from it",
                "不正利用の蓋然性が高い発信元IPアドレスからのSIP認証の一時停止",
                "seed 003 §2(6), 別紙(2)",
                &[LegitimateBusiness],
                &[stage(1, "country code and source IP of international calls", &[CountryCode, SourceIp])],
                NotRequired,
            ),
            hours(24 * 7),
            "the fraud from this address has stopped for the cool-down period",
        ),
        90,
    ),
    publishes_targets(approval(
        before_consent(notify(
            restrictive(
                row(
                    MeasureId::PhoneRestrictCountry,
                    "phone.restrict-country",
                    "phone",
                    "Last resort: very many simultaneous calls to one country used almost exclusively for fraud: restrict all outgoing calls to it",
                    "専ら不正利用に用いられている特定国宛て発信の一時的な規制",
                    "seed 003 §2(7), 別紙(3)",
                    &[LegitimateBusiness],
                    &[stage(
                        1,
                        "calls to the country, and its normal volume",
                        &[CountryCode, CallingNumber, SourceIp, CountryNormalVolume, CountryCallCounts],
                    )],
                    NotRequired,
                ),
                hours(72),
                "the fraud toward the country has stopped",
            ),
            NotificationDuty::Public,
        )),
        ApprovalRule { distinct_approvers: 2, assessments: &["normal_volume", "trade_relations", "emergency_calls"] },
    )),
    // ── Cyberattacks and mass traffic — guideline §5-1, seed 004 ──────────────────────────────
    notify(
        restrictive(
            row(
                MeasureId::DdosBlockOnVictimRequest,
                "ddos.block-on-victim-request",
                "ddos",
                "Block attack traffic toward a subscriber who reports it",
                "被害者からの申告に基づく攻撃通信の遮断",
                "guideline §5-1",
                &[Consent, LegitimateBusiness],
                &[stage(
                    1,
                    "the victim's report and the attack's characteristics",
                    &[
                        VictimReport,
                        DestinationAddress,
                        SourceAddress,
                        Protocol,
                        SourcePort,
                        DestinationPort,
                        TcpFlags,
                        FragmentFlags,
                        TrafficRates,
                    ],
                )],
                IndividualRequired,
            ),
            hours(24),
            "the attack has stopped for the cool-down period, or the victim withdraws the request",
        ),
        NotificationDuty::Requester,
    ),
    retention(
        restrictive(
            row(
                MeasureId::DdosBlockToProtectNetwork,
                "ddos.block-to-protect-network",
                "ddos",
                "Block mass traffic that impairs or threatens the carrier's equipment",
                "設備に支障を及ぼす大量通信の遮断",
                "guideline §5-1, seed 004",
                &[SelfDefense, Necessity],
                &[stage(
                    1,
                    "traffic matching the attack",
                    &[
                        DestinationAddress,
                        SourceAddress,
                        Protocol,
                        SourcePort,
                        DestinationPort,
                        TcpFlags,
                        FragmentFlags,
                        TrafficRates,
                        CustomerPrefix,
                    ],
                )],
                NotRequired,
            ),
            hours(24),
            "the attack traffic has stopped for the cool-down period",
        ),
        90,
    ),
    retention(
        restrictive(
            row(
                MeasureId::DdosBlockUnintendedSource,
                "ddos.block-unintended-source",
                "ddos",
                "Block mass traffic sent without the source owner's intent (bots)",
                "送信者の意図しない大量通信の遮断",
                "guideline §5-1",
                &[Necessity],
                &[stage(
                    1,
                    "traffic matching the attack",
                    &[SourceAddress, DestinationAddress, Protocol, DestinationPort, TrafficRates],
                )],
                NotRequired,
            ),
            hours(24),
            "the attack traffic has stopped for the cool-down period",
        ),
        90,
    ),
    retention(
        restrictive(
            row(
                MeasureId::NetDropSpoofedSource,
                "net.drop-spoofed-source",
                "net",
                "Drop packets whose source address can't be the sender's (BCP 38)",
                "送信元偽装パケットの破棄",
                "guideline §5-1",
                &[LegitimateBusiness],
                &[stage(
                    1,
                    "source address against the customer's prefixes",
                    &[SourceAddress, IngressInterface, CustomerPrefix],
                )],
                NotRequired,
            ),
            hours(24 * 30),
            "the customer's prefixes change, or the operator lifts it",
        ),
        90,
    ),
    retention(
        restrictive(
            row(
                MeasureId::NetDropMalformed,
                "net.drop-malformed",
                "net",
                "Discard broken packets",
                "不正な形式のパケットの破棄",
                "guideline §5-1",
                &[LegitimateBusiness],
                &[stage(1, "packet header validity", &[PacketValidity])],
                NotRequired,
            ),
            hours(24 * 30),
            "the operator lifts it",
        ),
        30,
    ),
    retention(
        restrictive(
            row(
                MeasureId::NetBlockMalwareSpread,
                "net.block-malware-spread",
                "net",
                "Block traffic that drives malware traffic growth, when it harms or threatens equipment",
                "マルウェア感染拡大に伴う通信の遮断",
                "guideline §5-1",
                &[SelfDefense, Necessity],
                &[stage(1, "traffic matching the spread", &[DestinationPort, Protocol, TrafficRates, SourceAddress])],
                NotRequired,
            ),
            hours(24),
            "the spread traffic has stopped for the cool-down period",
        ),
        90,
    ),
    retention(
        restrictive(
            row(
                MeasureId::NetBlockUnintendedEffect,
                "net.block-unintended-effect",
                "net",
                "Block traffic with unintended effects on receivers (reflection)",
                "受信者に意図しない影響を及ぼす通信（リフレクション）の遮断",
                "guideline §5-1",
                &[LegitimateBusiness],
                &[stage(1, "reflection traffic", &[SourcePort, Protocol, DestinationAddress, TrafficRates])],
                NotRequired,
            ),
            hours(24),
            "the reflection has stopped for the cool-down period",
        ),
        90,
    ),
    retention(
        row(
            MeasureId::NetTrafficOverview,
            "net.traffic-overview",
            "net",
            "Grasp the state of in-network traffic (aggregates only)",
            "ネットワーク内トラヒックの状況把握",
            "guideline §5-1",
            &[NoSecret],
            &[stage(1, "aggregates only", &[AggregateTraffic])],
            NotRequired,
        ),
        365,
    ),
    row(
        MeasureId::SharingJointResponse,
        "sharing.joint-response",
        "sharing",
        "Share attack sources and signatures with other carriers (no subscriber identity)",
        "他事業者との攻撃元・攻撃特性の共有",
        "guideline §5-1",
        &[LegitimateBusiness],
        &[stage(1, "attack sources and signatures", &[AttackSignature, SourceAddress])],
        NotRequired,
    ),
    retention(
        restrictive(
            row(
                MeasureId::DnsBlockFqdnList,
                "dns.block-fqdn-list",
                "dns",
                "Check every query FQDN at the carrier's resolvers against a list (DNS amplification, random-subdomain attacks) and drop matches",
                "DNSサーバにおけるFQDNリストに基づく名前解決の遮断",
                "guideline §5-1",
                &[LegitimateBusiness],
                &[stage(1, "query names, types and answer codes", &[QueryName, QueryType, ResponseCode, ResponseSize])],
                NotRequired,
            ),
            hours(24 * 7),
            "the entry expires, or the attack on the name has stopped",
        ),
        90,
    ),
    // ── Infected and vulnerable terminals, reputation — guideline §5-3, seeds 001, 002, 004 ──
    notify(
        row(
            MeasureId::BotsAlertFromThirdParty,
            "bots.alert-from-third-party",
            "bots",
            "Match infected-terminal reports (sinkholes, taken-down C&C servers, stepping stones) against connection logs, alert the subscriber",
            "第三者からの感染端末情報に基づく利用者への注意喚起",
            "guideline §5-3, seed 004",
            &[LegitimateBusiness],
            &[stage(
                1,
                "the report row and who held the address then",
                &[ThirdPartyReport, SessionAttribution, SubscriberContact],
            )],
            NotRequired,
        ),
        NotificationDuty::Alert,
    ),
    notify(
        row(
            MeasureId::BotsDetectCncQueries,
            "bots.detect-cnc-queries",
            "bots",
            "Find terminals that query known C&C domains at the carrier's resolvers, alert the subscriber",
            "DNSサーバにおけるC&Cサーバへの名前解決による感染端末の検知と注意喚起",
            "seeds 001, 002, 004",
            &[LegitimateBusiness],
            &[stage(
                1,
                "queries for listed domains only",
                &[QueryName, ResolverClientAddress, SessionAttribution, SubscriberContact],
            )],
            ComprehensiveOptOut,
        ),
        NotificationDuty::Alert,
    ),
    notify(
        row(
            MeasureId::IotAlertWeakCredentials,
            "iot.alert-weak-credentials",
            "iot",
            "Alert users of devices found with weak passwords (national survey results)",
            "脆弱なID・パスワードのIoT機器利用者への注意喚起",
            "guideline §5-3",
            &[ComprehensiveConsent],
            &[stage(
                1,
                "the survey row and who held the address then",
                &[ThirdPartyReport, SessionAttribution, SubscriberContact],
            )],
            ComprehensiveOptOut,
        ),
        NotificationDuty::Alert,
    ),
    notify(
        row(
            MeasureId::RouterAlertVulnerable,
            "router.alert-vulnerable",
            "router",
            "Survey for broadband routers open to reflection or PPPoE credential theft, find the subscriber in connection logs, alert",
            "脆弱なブロードバンドルータの利用者への注意喚起",
            "guideline §5-3",
            &[LegitimateBusiness],
            &[stage(
                1,
                "the survey row and who held the address then",
                &[ThirdPartyReport, SessionAttribution, SubscriberContact],
            )],
            NotRequired,
        ),
        NotificationDuty::Alert,
    ),
    before_consent(restrictive(
        row(
            MeasureId::ReputationWarnMalwareSite,
            "reputation.warn-malware-site",
            "reputation",
            "Warn before access to a malware distribution site (reputation DB); the user may proceed",
            "マルウェア配布サイトへのアクセス時の注意喚起",
            "guideline §5-3, seed 002",
            &[ComprehensiveConsent],
            &[stage(1, "destination IP/URL only, mechanically", &[DestinationAddress, DestinationUrl, QueryName])],
            ComprehensiveOptOut,
        ),
        hours(24 * 30),
        "the site leaves the reputation list, or the subscriber opts out or chooses to continue",
    )),
    before_consent(restrictive(
        row(
            MeasureId::ReputationBlockCnc,
            "reputation.block-cnc",
            "reputation",
            "Block traffic between infected terminals and C&C servers (reputation DB)",
            "C&Cサーバとの通信の遮断",
            "guideline §5-3, seeds 001, 002",
            &[ComprehensiveConsent],
            &[stage(1, "destination against the C&C list", &[DestinationAddress, QueryName])],
            ComprehensiveOptOut,
        ),
        hours(24 * 30),
        "the server leaves the C&C list, or the subscriber opts out",
    )),
    refused(
        row(
            MeasureId::CncDetectServers,
            "cnc.detect-servers",
            "cnc",
            "Find probable C&C servers by analysing whole traffic",
            "通信全体の分析によるC&Cサーバの検知",
            "seed 001 (working group)",
            &[],
            NONE,
            NotRequired,
        ),
        "not provided: the working group judged analysing whole traffic too broad an intrusion on the secrecy of communications",
    ),
    // ── Mail and unauthorized use of services — guideline §5-2, §6(1) ─────────────────────────
    notify(
        row(
            MeasureId::MailBlacklistAlert,
            "mail.blacklist-alert",
            "mail",
            "Alert subscribers whose addresses appear on spam blacklists",
            "スパムブラックリスト掲載利用者への注意喚起",
            "guideline §5-2",
            &[LegitimateBusiness],
            &[stage(
                1,
                "the listing and who held the address then",
                &[BlacklistListing, SessionAttribution, SubscriberContact],
            )],
            NotRequired,
        ),
        NotificationDuty::Alert,
    ),
    before_consent(notify(
        restrictive(
            row(
                MeasureId::MailSmtpAuthAbuse,
                "mail.smtp-auth-abuse",
                "mail",
                "SMTP-auth credentials probably abused to send spam: ask for a password change, or suspend the account temporarily",
                "SMTP認証の不正利用が疑われるアカウントの一時停止",
                "guideline §6(1)",
                &[LegitimateBusiness],
                &[stage(1, "per account sending volume", &[SmtpAuthAccountVolume, SubscriberContact])],
                IndividualFirstEmergencyException,
            ),
            hours(72),
            "the subscriber changes the password",
        ),
        NotificationDuty::ConsentRequestOrPromptNotice,
    )),
    before_consent(notify(
        restrictive(
            row(
                MeasureId::AuthPppoeCredentialAbuse,
                "auth.pppoe-credential-abuse",
                "auth",
                "PPPoE credentials used by someone else: ask for a password change, or suspend temporarily",
                "PPPoE認証情報の不正利用時の一時停止",
                "guideline §6(1)",
                &[LegitimateBusiness],
                &[stage(1, "authentication log of the account", &[PppoeAuthLog, SubscriberContact])],
                IndividualFirstEmergencyException,
            ),
            hours(72),
            "the subscriber changes the password",
        ),
        NotificationDuty::ConsentRequestOrPromptNotice,
    )),
];
