//! Signed, expiring links to a subscriber's notice page, and the CSRF token of its forms.
//!
//! A link is `{public_base_url}/s/{token}` with `token = hex(subscriber id) . expiry . hex(mac)`,
//! `mac = HMAC-SHA256(secret, "mamori-notice-link/v1" ‖ 0 ‖ subscriber id ‖ 0 ‖ expiry)`, expiry in
//! Unix seconds. The link is the subscriber's only credential, so it is never logged and the copy
//! of a message kept for the retention period has it redacted. Forms on the page carry a second
//! value derived from the link under another label, checked in constant time.

use std::io::Write;
use std::path::{Path, PathBuf};

use hmac::{Hmac, Mac};
use jiff::Timestamp;
use mamori_core::subject::SubscriberId;
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

const LINK_LABEL: &[u8] = b"mamori-notice-link/v1";
const CSRF_LABEL: &[u8] = b"mamori-notice-form/v1";
/// The shortest secret accepted.
pub const MIN_SECRET_BYTES: usize = 32;
/// Longest subscriber id a link may carry.
const MAX_ID_BYTES: usize = 256;

/// Why a link was refused. Neither variant carries the token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    /// Genuine, but past its expiry.
    #[error("the link has expired")]
    Expired,
    /// Malformed, or not signed with this secret.
    #[error("the link is not valid")]
    Forged,
}

impl LinkError {
    /// A label for logs and metrics.
    pub fn label(self) -> &'static str {
        match self {
            LinkError::Expired => "expired",
            LinkError::Forged => "forged",
        }
    }
}

/// Problems with the link secret.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The file couldn't be read or created.
    #[error("link secret {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// Too short to be a secret.
    #[error("link secret {path} holds {len} bytes; at least {MIN_SECRET_BYTES} are needed")]
    TooShort {
        /// The file.
        path: String,
        /// Its length.
        len: usize,
    },
    /// No randomness from the operating system.
    #[error("no randomness for a new link secret: {0}")]
    Random(String),
}

/// The secret that signs links. Its `Debug` never shows it.
#[derive(Clone)]
pub struct LinkKey {
    secret: Vec<u8>,
}

impl std::fmt::Debug for LinkKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LinkKey(<redacted>)")
    }
}

impl LinkKey {
    /// A key from secret bytes (at least [`MIN_SECRET_BYTES`]).
    pub fn from_bytes(secret: &[u8]) -> Option<Self> {
        (secret.len() >= MIN_SECRET_BYTES).then(|| LinkKey { secret: secret.to_vec() })
    }

    /// Reads the secret file (surrounding whitespace ignored). When the file is missing and
    /// `create` is set, writes a new random secret there first (mode 0600).
    pub fn load(path: &Path, create: bool) -> Result<Self, KeyError> {
        let io = |source| KeyError::Io { path: path.display().to_string(), source };
        if create && !path.exists() {
            let mut raw = [0u8; 32];
            getrandom::fill(&mut raw).map_err(|e| KeyError::Random(e.to_string()))?;
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(io)?;
            }
            let mut opts = std::fs::OpenOptions::new();
            opts.write(true).create_new(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                opts.mode(0o600);
            }
            match opts.open(path) {
                Ok(mut f) => {
                    f.write_all(format!("{}\n", hex::encode(raw)).as_bytes()).map_err(io)?;
                    f.sync_all().map_err(io)?;
                }
                // Another process created it meanwhile: use theirs.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(io(e)),
            }
        }
        let raw = std::fs::read(path).map_err(io)?;
        let trimmed = raw.trim_ascii();
        LinkKey::from_bytes(trimmed)
            .ok_or_else(|| KeyError::TooShort { path: path.display().to_string(), len: trimmed.len() })
    }

    /// The secret file a configuration names: `link_secret_file`, or `DATA_DIR/notice-link.key`
    /// (which is created on first use).
    pub fn from_config(config: &mamori_core::config::Config) -> Result<Self, KeyError> {
        match &config.notify.link_secret_file {
            Some(p) => LinkKey::load(p, false),
            None => LinkKey::load(&default_secret_path(config), true),
        }
    }

    fn mac(&self, label: &[u8], parts: &[&[u8]]) -> HmacSha256 {
        // HMAC takes keys of any length, so this cannot fail.
        let mut mac = <HmacSha256 as Mac>::new_from_slice(&self.secret).unwrap_or_else(|_| unreachable!());
        mac.update(label);
        for p in parts {
            mac.update(&[0]);
            mac.update(p);
        }
        mac
    }

    /// A token for the subscriber's page, valid until `expires`.
    pub fn sign(&self, subscriber: &SubscriberId, expires: Timestamp) -> String {
        let exp = expires.as_second().to_string();
        let tag = self.mac(LINK_LABEL, &[subscriber.0.as_bytes(), exp.as_bytes()]).finalize().into_bytes();
        format!("{}.{exp}.{}", hex::encode(subscriber.0.as_bytes()), hex::encode(tag))
    }

    /// The subscriber a token names, if it is genuine and not expired at `now`.
    pub fn verify(&self, token: &str, now: Timestamp) -> Result<SubscriberId, LinkError> {
        let mut parts = token.split('.');
        let (Some(id_hex), Some(exp), Some(tag_hex), None) = (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(LinkError::Forged);
        };
        if id_hex.len() > MAX_ID_BYTES * 2 || exp.len() > 20 || tag_hex.len() != 64 {
            return Err(LinkError::Forged);
        }
        let id = hex::decode(id_hex).map_err(|_| LinkError::Forged)?;
        let tag = hex::decode(tag_hex).map_err(|_| LinkError::Forged)?;
        // The signature is checked before anything else is believed.
        self.mac(LINK_LABEL, &[&id, exp.as_bytes()]).verify_slice(&tag).map_err(|_| LinkError::Forged)?;
        let exp: i64 = exp.parse().map_err(|_| LinkError::Forged)?;
        if now.as_second() >= exp {
            return Err(LinkError::Expired);
        }
        let id = String::from_utf8(id).map_err(|_| LinkError::Forged)?;
        Ok(SubscriberId(id))
    }

    /// When a genuine token expires (for the page's footer).
    pub fn expiry(token: &str) -> Option<Timestamp> {
        token.split('.').nth(1)?.parse().ok().and_then(|s| Timestamp::from_second(s).ok())
    }

    /// The value the page's forms carry: derived from the token under another label.
    pub fn form_token(&self, token: &str) -> String {
        hex::encode(self.mac(CSRF_LABEL, &[token.as_bytes()]).finalize().into_bytes())
    }

    /// Whether a submitted form value belongs to this token (constant time).
    pub fn check_form_token(&self, token: &str, submitted: &str) -> bool {
        let Ok(tag) = hex::decode(submitted.trim()) else { return false };
        self.mac(CSRF_LABEL, &[token.as_bytes()]).verify_slice(&tag).is_ok()
    }
}

/// `DATA_DIR/notice-link.key`.
pub fn default_secret_path(config: &mamori_core::config::Config) -> PathBuf {
    config.data_dir.join("notice-link.key")
}

/// The link to a subscriber's page: `{base}/s/{token}`.
pub fn page_url(base: &str, token: &str) -> String {
    format!("{}/s/{token}", base.trim().trim_end_matches('/'))
}

/// Replaces every notice-page token in `text` by `<redacted>` (the copy kept for retention).
pub fn redact_links(text: &str, base: &str) -> String {
    let prefix = format!("{}/s/", base.trim().trim_end_matches('/'));
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find(&prefix) {
        out.push_str(&rest[..i + prefix.len()]);
        out.push_str("<redacted>");
        let after = &rest[i + prefix.len()..];
        let end = after.find(|c: char| !(c.is_ascii_hexdigit() || c == '.')).unwrap_or(after.len());
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::SignedDuration;

    fn key() -> LinkKey {
        LinkKey::from_bytes(&[7u8; 32]).unwrap()
    }

    fn t(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn a_signed_link_names_its_subscriber_until_it_expires() {
        let k = key();
        let now = t("2026-11-24T13:00:00Z");
        let tok = k.sign(&SubscriberId("S-0312340002".into()), now + SignedDuration::from_hours(24));
        assert_eq!(k.verify(&tok, now).unwrap().0, "S-0312340002");
        assert_eq!(k.verify(&tok, now + SignedDuration::from_hours(23)).unwrap().0, "S-0312340002");
        assert_eq!(k.verify(&tok, now + SignedDuration::from_hours(24)), Err(LinkError::Expired));
        assert_eq!(k.verify(&tok, now + SignedDuration::from_hours(1000)), Err(LinkError::Expired));
    }

    #[test]
    fn forged_links_are_refused() {
        let k = key();
        let now = t("2026-11-24T13:00:00Z");
        let exp = now + SignedDuration::from_hours(24);
        let tok = k.sign(&SubscriberId("S1".into()), exp);
        // another subscriber's id with this signature
        let other = tok.replacen(&hex::encode("S1"), &hex::encode("S2"), 1);
        assert_eq!(k.verify(&other, now), Err(LinkError::Forged));
        // a later expiry with this signature
        let later = tok.replacen(&exp.as_second().to_string(), &(exp.as_second() + 86_400 * 365).to_string(), 1);
        assert_eq!(k.verify(&later, now), Err(LinkError::Forged));
        // an expired link re-signed by someone without the secret is forged, not merely expired
        let old = k.sign(&SubscriberId("S1".into()), now - SignedDuration::from_hours(1));
        let stretched = old.replacen(&(now - SignedDuration::from_hours(1)).as_second().to_string(), "9999999999", 1);
        assert_eq!(k.verify(&stretched, now), Err(LinkError::Forged));
        // another secret
        let k2 = LinkKey::from_bytes(&[8u8; 32]).unwrap();
        assert_eq!(k2.verify(&tok, now), Err(LinkError::Forged));
        // garbage
        for bad in ["", ".", "..", "a.b.c", "zz.1.00", &format!("{tok}.x"), &tok[..tok.len() - 2], &"a".repeat(5000)] {
            assert_eq!(k.verify(bad, now), Err(LinkError::Forged), "{bad:?}");
        }
    }

    #[test]
    fn form_tokens_belong_to_their_link() {
        let k = key();
        let now = t("2026-11-24T13:00:00Z");
        let a = k.sign(&SubscriberId("S1".into()), now + SignedDuration::from_hours(1));
        let b = k.sign(&SubscriberId("S2".into()), now + SignedDuration::from_hours(1));
        let fa = k.form_token(&a);
        assert_ne!(fa, a, "the form value is not the link");
        assert!(k.check_form_token(&a, &fa));
        assert!(!k.check_form_token(&b, &fa));
        assert!(!k.check_form_token(&a, ""));
        assert!(!k.check_form_token(&a, "not hex"));
    }

    #[test]
    fn secrets_are_created_once_private_and_never_shown() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub/notice-link.key");
        let k1 = LinkKey::load(&p, true).unwrap();
        let k2 = LinkKey::load(&p, true).unwrap();
        let now = t("2026-11-24T13:00:00Z");
        let tok = k1.sign(&SubscriberId("S1".into()), now + SignedDuration::from_hours(1));
        assert!(k2.verify(&tok, now).is_ok(), "the same secret is read back");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o600);
        }
        assert_eq!(format!("{k1:?}"), "LinkKey(<redacted>)");
        std::fs::write(&p, "short\n").unwrap();
        assert!(matches!(LinkKey::load(&p, true), Err(KeyError::TooShort { len: 5, .. })));
        assert!(matches!(LinkKey::load(&dir.path().join("absent"), false), Err(KeyError::Io { .. })));
    }

    #[test]
    fn kept_copies_have_the_token_redacted() {
        let text = "見る: https://carrier.example/notice/s/53312e31.1790000000.abcdef0123 まで\nhttps://x/s/ff.1.2";
        let r = redact_links(text, "https://carrier.example/notice/");
        assert_eq!(r, "見る: https://carrier.example/notice/s/<redacted> まで\nhttps://x/s/ff.1.2");
    }
}
