//! `[notify]`: how mamori tells subscribers (email over SMTP, the signed notice-page link).
//!
//! Nothing here is a secret: the SMTP password and the link secret live in files named by
//! path, read by `mamori-notify` and never logged.

use std::path::PathBuf;

use jiff::SignedDuration;
use serde::{Deserialize, Serialize};

/// `[notify]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NotifyConfig {
    /// The SMTP relay mamori hands mail to (usually the carrier's MTA on loopback or the
    /// management network). Without it nothing is sent: messages wait in the outbox.
    pub smtp_host: Option<String>,
    /// Its port.
    pub smtp_port: u16,
    /// `never` (plain SMTP to a trusted relay) or `required` (STARTTLS; needs a build with the
    /// `tls` feature of `mamori-notify`).
    pub starttls: StartTls,
    /// SMTP AUTH user name, if the relay wants one (with `smtp_password_file`).
    pub smtp_username: Option<String>,
    /// File holding the SMTP AUTH password (first line).
    pub smtp_password_file: Option<PathBuf>,
    /// The sender, e.g. `"Example Telecom <noreply@example.jp>"`.
    pub from: String,
    /// Time limit of one SMTP conversation.
    pub smtp_timeout: SignedDuration,
    /// Attempts per message before it is given up as failed.
    pub max_attempts: u32,
    /// Wait before the second attempt; doubled after each failure…
    pub retry_initial: SignedDuration,
    /// …up to this.
    pub retry_max: SignedDuration,
    /// At most one alert per subscriber and measure in this period; the rest are suppressed,
    /// counted and recorded in the ledger.
    pub alert_period: SignedDuration,
    /// How long a notice-page link stays valid.
    pub link_ttl: SignedDuration,
    /// File holding the secret that signs notice-page links (at least 32 bytes). Default:
    /// `DATA_DIR/notice-link.key`, created on first use.
    pub link_secret_file: Option<PathBuf>,
    /// The address subscribers reach mamori's pages at; links are `{public_base_url}/s/{token}`.
    pub public_base_url: String,
    /// How often the sender looks for due messages.
    pub poll: SignedDuration,
    /// At most this many messages per round.
    pub batch: u32,
}

impl Default for NotifyConfig {
    fn default() -> Self {
        NotifyConfig {
            smtp_host: None,
            smtp_port: 25,
            starttls: StartTls::Never,
            smtp_username: None,
            smtp_password_file: None,
            from: "mamori <noreply@localhost>".into(),
            smtp_timeout: SignedDuration::from_secs(30),
            max_attempts: 8,
            retry_initial: SignedDuration::from_mins(1),
            retry_max: SignedDuration::from_hours(1),
            alert_period: SignedDuration::from_hours(24),
            link_ttl: SignedDuration::from_hours(24 * 14),
            link_secret_file: None,
            public_base_url: "http://127.0.0.1:8470".into(),
            poll: SignedDuration::from_secs(5),
            batch: 100,
        }
    }
}

/// STARTTLS to the SMTP relay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StartTls {
    /// Plain SMTP (a relay on loopback or a trusted network).
    Never,
    /// STARTTLS with certificate verification, or no delivery.
    Required,
}

impl NotifyConfig {
    /// Every problem as `(key, detail)`.
    pub(crate) fn problems(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        for (key, d) in [
            ("smtp_timeout", self.smtp_timeout),
            ("retry_initial", self.retry_initial),
            ("retry_max", self.retry_max),
            ("alert_period", self.alert_period),
            ("link_ttl", self.link_ttl),
            ("poll", self.poll),
        ] {
            if d <= SignedDuration::ZERO {
                out.push((key, "must be positive".to_owned()));
            }
        }
        if self.retry_initial > self.retry_max {
            out.push(("retry_initial", "must not be longer than `retry_max`".to_owned()));
        }
        if self.max_attempts == 0 {
            out.push(("max_attempts", "must be at least 1".to_owned()));
        }
        if self.batch == 0 {
            out.push(("batch", "must be at least 1".to_owned()));
        }
        if let Some(h) = &self.smtp_host {
            if h.trim().is_empty() || h.contains(char::is_whitespace) {
                out.push(("smtp_host", "must be a host name or address".to_owned()));
            }
        }
        if self.smtp_port == 0 {
            out.push(("smtp_port", "must not be 0".to_owned()));
        }
        if self.smtp_username.is_some() != self.smtp_password_file.is_some() {
            out.push(("smtp_username", "`smtp_username` and `smtp_password_file` go together".to_owned()));
        }
        let from = self.from.trim();
        if !from.contains('@') || from.chars().any(char::is_control) {
            out.push(("from", "must be an email address, optionally with a name: `Name <addr@example.jp>`".to_owned()));
        }
        let url = self.public_base_url.trim();
        if !(url.starts_with("https://") || url.starts_with("http://"))
            || url.len() < 10
            || url.contains(char::is_whitespace)
            || url.contains(['?', '#'])
        {
            out.push(("public_base_url", "must be an http(s) URL without query or fragment".to_owned()));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{Config, ConfigError};

    #[test]
    fn notify_settings_are_checked_with_key_and_line() {
        let text = "[notify]\nsmtp_host = \"127.0.0.1\"\nretry_initial = \"2h\"\nretry_max = \"1h\"\n\
                    from = \"nobody\"\npublic_base_url = \"ftp://x\"\nsmtp_username = \"u\"\nmax_attempts = 0\n";
        let errs = Config::parse(text, "x.toml").unwrap_err();
        let keys: Vec<String> = errs
            .iter()
            .map(|e| match e {
                ConfigError::Invalid { key, .. } => key.clone(),
                other => panic!("{other:?}"),
            })
            .collect();
        for k in ["retry_initial", "max_attempts", "smtp_username", "from", "public_base_url"] {
            assert!(keys.contains(&format!("notify.{k}")), "{k} not reported: {keys:?}");
        }
        let msg = errs.iter().find(|e| e.to_string().contains("notify.retry_initial")).unwrap().to_string();
        assert!(msg.contains("x.toml:3"), "{msg}");
    }

    #[test]
    fn starttls_is_never_or_required() {
        assert!(Config::parse("[notify]\nstarttls = \"required\"\n", "x").is_ok());
        assert!(Config::parse("[notify]\nstarttls = \"maybe\"\n", "x").is_err());
        assert!(Config::parse("[notify]\nsmtp_pasword = \"x\"\n", "x").is_err(), "unknown keys are errors");
    }
}
