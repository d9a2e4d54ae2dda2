//! Account management and logins, each a ledger entry committed with the change it records.

use std::sync::Arc;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use jiff::{SignedDuration, Timestamp};
use mamori_core::account::{Account, Role, Session, UiLanguage};
use mamori_core::governance::{Governance, GovernanceError};
use mamori_core::ledger::{EventKind, LedgerDraft};
use mamori_core::store::{Batch, Mutation, StoreError};
use mamori_core::subject::Actor;
use serde_json::json;

use super::{random_secret, session_hash};

/// Shortest password accepted.
pub const MIN_PASSWORD_LEN: usize = 12;

/// Why an account change or login failed.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    /// The name is empty, too long or has characters a ledger name should not have.
    #[error("account names are 1–64 characters of letters, digits, '.', '_', '-' and '@'")]
    BadName,
    /// The password is too short.
    #[error("passwords must be at least {MIN_PASSWORD_LEN} characters")]
    WeakPassword,
    /// The account exists already.
    #[error("account {0} exists already")]
    Exists(String),
    /// No such account.
    #[error("no account {0}")]
    Unknown(String),
    /// Wrong name or password (which one is not said).
    #[error("wrong name or password")]
    BadCredentials,
    /// Hashing failed or the random source failed.
    #[error("cannot hash or generate a secret: {0}")]
    Crypto(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Governance failed.
    #[error(transparent)]
    Governance(#[from] GovernanceError),
}

/// A successful login: the cookie's secret (only ever sent to the browser) and the session.
#[derive(Debug)]
pub struct LoginOutcome {
    /// The secret for the session cookie.
    pub secret: String,
    /// The session as stored (its CSRF token included).
    pub session: Session,
    /// Whose.
    pub account: Account,
}

/// Accounts, passwords and sessions over the governance store.
#[derive(Clone)]
pub struct Accounts {
    gov: Arc<Governance>,
    session_ttl: SignedDuration,
}

impl std::fmt::Debug for Accounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Accounts").field("session_ttl", &self.session_ttl).finish_non_exhaustive()
    }
}

fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'))
        && !name.starts_with("mamori")
}

fn hash_password(password: &str) -> Result<String, AccountError> {
    if password.chars().count() < MIN_PASSWORD_LEN {
        return Err(AccountError::WeakPassword);
    }
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| AccountError::Crypto(e.to_string()))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| AccountError::Crypto(e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AccountError::Crypto(e.to_string()))
}

fn password_matches(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|h| Argon2::default().verify_password(password.as_bytes(), &h).is_ok())
}

impl Accounts {
    /// Over a governance kernel; sessions last `session_ttl` from login.
    pub fn new(gov: Arc<Governance>, session_ttl: SignedDuration) -> Self {
        Accounts { gov, session_ttl }
    }

    fn commit(&self, mutations: Vec<Mutation>, ledger: Vec<LedgerDraft>) -> Result<(), AccountError> {
        self.gov.store().commit(Batch { at: self.gov.now(), mutations, ledger })?;
        Ok(())
    }

    /// Every account.
    pub fn list(&self) -> Result<Vec<Account>, AccountError> {
        Ok(self.gov.store().accounts()?)
    }

    /// One account.
    pub fn get(&self, name: &str) -> Result<Option<Account>, AccountError> {
        Ok(self.gov.store().account(name)?)
    }

    /// Creates an account.
    pub fn create(
        &self,
        name: &str,
        role: Role,
        password: &str,
        language: UiLanguage,
        by: &Actor,
    ) -> Result<Account, AccountError> {
        if !valid_name(name) {
            return Err(AccountError::BadName);
        }
        if self.get(name)?.is_some() {
            return Err(AccountError::Exists(name.to_owned()));
        }
        let account = Account {
            name: name.to_owned(),
            role,
            password_hash: hash_password(password)?,
            language,
            disabled: false,
            updated_at: Timestamp::now(),
        };
        self.commit(
            vec![Mutation::PutAccount(account.clone())],
            vec![
                LedgerDraft::new(
                    EventKind::AccountChanged,
                    by.clone(),
                    json!({"change": "created", "role": role.as_str(), "language": language.as_str()}),
                )
                .subject(format!("account:{name}")),
            ],
        )?;
        Ok(account)
    }

    fn change(
        &self,
        name: &str,
        by: &Actor,
        what: serde_json::Value,
        f: impl FnOnce(&mut Account) -> Result<(), AccountError>,
    ) -> Result<Account, AccountError> {
        let mut account = self.get(name)?.ok_or_else(|| AccountError::Unknown(name.to_owned()))?;
        f(&mut account)?;
        account.updated_at = Timestamp::now();
        self.commit(
            vec![Mutation::PutAccount(account.clone())],
            vec![LedgerDraft::new(EventKind::AccountChanged, by.clone(), what).subject(format!("account:{name}"))],
        )?;
        Ok(account)
    }

    /// Changes a person's role (a ledger entry names the old and new role).
    pub fn set_role(&self, name: &str, role: Role, by: &Actor) -> Result<Account, AccountError> {
        let old = self.get(name)?.ok_or_else(|| AccountError::Unknown(name.to_owned()))?.role;
        self.change(name, by, json!({"change": "role", "from": old.as_str(), "to": role.as_str()}), |a| {
            a.role = role;
            Ok(())
        })
    }

    /// Sets a new password (the ledger records that it changed, never the password).
    pub fn set_password(&self, name: &str, password: &str, by: &Actor) -> Result<Account, AccountError> {
        let hash = hash_password(password)?;
        self.change(name, by, json!({"change": "password"}), |a| {
            a.password_hash = hash;
            Ok(())
        })
    }

    /// Changes the console language.
    pub fn set_language(&self, name: &str, language: UiLanguage, by: &Actor) -> Result<Account, AccountError> {
        self.change(name, by, json!({"change": "language", "to": language.as_str()}), |a| {
            a.language = language;
            Ok(())
        })
    }

    /// Disables or re-enables an account; disabling ends its sessions.
    pub fn set_disabled(&self, name: &str, disabled: bool, by: &Actor) -> Result<Account, AccountError> {
        let change = if disabled { "disabled" } else { "enabled" };
        self.change(name, by, json!({"change": change}), |a| {
            a.disabled = disabled;
            Ok(())
        })
    }

    /// Checks a password and opens a new session (never reusing one the client presented, so a
    /// planted session id is worthless). Failures are ledger entries too; an unknown name is
    /// recorded without the name, which may be a mistyped password.
    pub fn login(&self, name: &str, password: &str, from: Option<&str>) -> Result<LoginOutcome, AccountError> {
        let account = self.get(name)?.filter(|a| !a.disabled);
        let Some(account) = account.filter(|a| password_matches(password, &a.password_hash)) else {
            let known = self.get(name)?.is_some();
            if !known {
                // Same work as a real check, so timing does not tell which names exist.
                let _ = password_matches(password, DUMMY_HASH);
            }
            let (actor, subject) = if known {
                (Actor(name.to_owned()), Some(format!("account:{name}")))
            } else {
                (Actor("unknown".into()), None)
            };
            let mut draft = LedgerDraft::new(
                EventKind::LoginFailed,
                actor,
                json!({"from": from, "reason": if known { "wrong password or disabled" } else { "unknown account" }}),
            );
            if let Some(s) = subject {
                draft = draft.subject(s);
            }
            self.commit(vec![], vec![draft])?;
            return Err(AccountError::BadCredentials);
        };
        let secret = random_secret().map_err(|e| AccountError::Crypto(e.to_string()))?;
        let now = Timestamp::now();
        let session = Session {
            id_hash: session_hash(&secret),
            account: account.name.clone(),
            csrf_token: random_secret().map_err(|e| AccountError::Crypto(e.to_string()))?,
            created_at: now,
            expires_at: now.checked_add(self.session_ttl).unwrap_or(now),
        };
        self.commit(
            vec![Mutation::PutSession(session.clone())],
            vec![
                LedgerDraft::new(
                    EventKind::LoginSucceeded,
                    account.actor(),
                    json!({"from": from, "role": account.role.as_str()}),
                )
                .subject(format!("account:{}", account.name)),
            ],
        )?;
        Ok(LoginOutcome { secret, session, account })
    }

    /// The live session and its account for a cookie's secret (expired, unknown or disabled: none).
    pub fn session(&self, secret: &str) -> Result<Option<(Account, Session)>, AccountError> {
        let store = self.gov.store();
        let Some(session) = store.session(&session_hash(secret))? else { return Ok(None) };
        if session.expires_at <= Timestamp::now() {
            return Ok(None);
        }
        Ok(store.account(&session.account)?.filter(|a| !a.disabled).map(|a| (a, session)))
    }

    /// Ends a session.
    pub fn logout(&self, secret: &str) -> Result<(), AccountError> {
        let Some((account, session)) = self.session(secret)? else { return Ok(()) };
        self.commit(
            vec![Mutation::DeleteSession { id_hash: session.id_hash }],
            vec![
                LedgerDraft::new(EventKind::Logout, account.actor(), json!({}))
                    .subject(format!("account:{}", account.name)),
            ],
        )
    }
}

/// An Argon2id hash of a random password nobody knows, checked against for unknown names.
const DUMMY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$J7sVh7ULXJGrnLNmZXCM6gmTXe5ZZ6bWQ34NUgZsRLU";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_passwords() {
        assert!(valid_name("alice") && valid_name("a.b-c_d@x"));
        assert!(!valid_name("") && !valid_name("a b") && !valid_name("mamori:phone") && !valid_name(&"x".repeat(65)));
        assert!(matches!(hash_password("short"), Err(AccountError::WeakPassword)));
        let h = hash_password("correct horse battery").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(password_matches("correct horse battery", &h));
        assert!(!password_matches("correct horse batterY", &h));
        assert!(!password_matches("x", "not a hash"));
    }
}
