//! The email channel: a [`Mailer`] trait and its SMTP implementation over `lettre`.
//!
//! mamori hands each message to one SMTP relay (the carrier's MTA), which queues and delivers
//! it; "sent" means the relay accepted it. Failures are classified, never quoted: an SMTP
//! server's reply text may repeat the recipient's address, so only the reply code is kept.

use std::time::Duration;

use lettre::message::Mailbox;
use lettre::message::header::ContentType;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{Message, SmtpTransport, Transport};
use mamori_core::config::{NotifyConfig, StartTls};

use crate::Lang;

/// One email to send.
#[derive(Clone)]
pub struct Email {
    /// The recipient's address.
    pub to: String,
    /// Subject line.
    pub subject: String,
    /// Plain-text body.
    pub text: String,
    /// Its language (sets `Content-Language`).
    pub language: Lang,
}

impl std::fmt::Debug for Email {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Addresses and bodies never reach logs.
        f.debug_struct("Email").field("language", &self.language).finish_non_exhaustive()
    }
}

/// Why a send failed, without the peer's words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// The relay refused for good (5xx): retrying won't help.
    #[error("refused by the relay ({code})")]
    Permanent {
        /// The SMTP reply code.
        code: String,
    },
    /// Worth another try later: a 4xx reply, no connection, a time-out.
    #[error("{kind}")]
    Transient {
        /// `smtp-4xx`, `connect`, `timeout`, `tls`, …
        kind: String,
    },
    /// The address or message couldn't be built (a bad address in the directory).
    #[error("the message could not be built: {0}")]
    Invalid(&'static str),
}

impl SendError {
    /// A short label for the delivery record, logs and metrics.
    pub fn label(&self) -> String {
        match self {
            SendError::Permanent { code } => format!("smtp-permanent {code}"),
            SendError::Transient { kind } => kind.clone(),
            SendError::Invalid(what) => format!("invalid {what}"),
        }
    }

    /// Whether another attempt may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, SendError::Transient { .. })
    }
}

/// Somewhere to send email.
pub trait Mailer: Send + Sync {
    /// Sends one message; returns once the relay accepted it.
    fn send(&self, email: &Email) -> Result<(), SendError>;
}

/// Problems setting the channel up.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// `from` isn't an address.
    #[error("[notify] from: `{0}` is not an email address")]
    From(String),
    /// The password file couldn't be read.
    #[error("[notify] smtp_password_file {path}: {source}")]
    Password {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// STARTTLS asked for but not built in, or refused by the TLS stack.
    #[error("[notify] starttls: {0}")]
    Tls(String),
}

/// SMTP to one relay.
pub struct SmtpMailer {
    transport: SmtpTransport,
    from: Mailbox,
}

impl std::fmt::Debug for SmtpMailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SmtpMailer")
    }
}

impl SmtpMailer {
    /// The relay `[notify]` names; `None` when it names none (nothing is sent then).
    pub fn from_config(cfg: &NotifyConfig) -> Result<Option<Self>, SetupError> {
        let Some(host) = cfg.smtp_host.as_deref().map(str::trim) else { return Ok(None) };
        let from: Mailbox = cfg.from.trim().parse().map_err(|_| SetupError::From(cfg.from.clone()))?;
        let mut builder = SmtpTransport::builder_dangerous(host)
            .port(cfg.smtp_port)
            .timeout(Some(Duration::try_from(cfg.smtp_timeout).unwrap_or(Duration::from_secs(30))));
        if cfg.starttls == StartTls::Required {
            builder = with_starttls(builder, host)?;
        }
        if let (Some(user), Some(path)) = (&cfg.smtp_username, &cfg.smtp_password_file) {
            let password = std::fs::read_to_string(path)
                .map_err(|source| SetupError::Password { path: path.display().to_string(), source })?;
            let password = password.lines().next().unwrap_or_default().to_owned();
            builder = builder.credentials(Credentials::new(user.clone(), password));
        }
        Ok(Some(SmtpMailer { transport: builder.build(), from }))
    }
}

#[cfg(feature = "tls")]
fn with_starttls(
    builder: lettre::transport::smtp::SmtpTransportBuilder,
    host: &str,
) -> Result<lettre::transport::smtp::SmtpTransportBuilder, SetupError> {
    use lettre::transport::smtp::client::{Tls, TlsParameters};
    let params = TlsParameters::new(host.to_owned()).map_err(|e| SetupError::Tls(e.to_string()))?;
    Ok(builder.tls(Tls::Required(params)))
}

#[cfg(not(feature = "tls"))]
fn with_starttls(
    _builder: lettre::transport::smtp::SmtpTransportBuilder,
    _host: &str,
) -> Result<lettre::transport::smtp::SmtpTransportBuilder, SetupError> {
    Err(SetupError::Tls(
        "`required`, but this build has no TLS (build mamori-notify with the `tls` feature, or relay through a local MTA)"
            .into(),
    ))
}

impl Mailer for SmtpMailer {
    fn send(&self, email: &Email) -> Result<(), SendError> {
        let to: Mailbox = email.to.trim().parse().map_err(|_| SendError::Invalid("recipient address"))?;
        let subject = email.subject.replace(['\r', '\n'], " ");
        let msg = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(subject)
            .header(ContentType::TEXT_PLAIN)
            .header(ContentLanguage(email.language.as_str().to_owned()))
            .body(email.text.clone())
            .map_err(|_| SendError::Invalid("message"))?;
        match self.transport.send(&msg) {
            Ok(_) => Ok(()),
            Err(e) => Err(classify(&e)),
        }
    }
}

fn classify(e: &lettre::transport::smtp::Error) -> SendError {
    let code = e.status().map(|c| c.to_string());
    if e.is_permanent() {
        return SendError::Permanent { code: code.unwrap_or_else(|| "5xx".into()) };
    }
    let kind = if e.is_transient() {
        format!("smtp-transient {}", code.unwrap_or_else(|| "4xx".into()))
    } else if e.is_timeout() {
        "timeout".into()
    } else if e.is_response() {
        "smtp-protocol".into()
    } else {
        "connect".into()
    };
    SendError::Transient { kind }
}

/// `Content-Language`, so mail clients know what they show.
#[derive(Debug, Clone)]
struct ContentLanguage(String);

impl lettre::message::header::Header for ContentLanguage {
    fn name() -> lettre::message::header::HeaderName {
        lettre::message::header::HeaderName::new_from_ascii_str("Content-Language")
    }

    fn parse(s: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(ContentLanguage(s.to_owned()))
    }

    fn display(&self) -> lettre::message::header::HeaderValue {
        lettre::message::header::HeaderValue::new(Self::name(), self.0.clone())
    }
}
