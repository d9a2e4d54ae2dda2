//! The people who run mamori: accounts with a role, and their console sessions.
//!
//! Roles decide what a person may do, and governance still decides what is lawful: an approver
//! can approve only what the catalog lets approvers approve, and never their own proposal.
//! Password hashes and session secrets are never logged (`Debug` redacts them) and never leave
//! the store except to be checked.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::subject::Actor;

/// What a person may do in the console and API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Watches findings and actions, proposes, lifts, records subscribers' requests and replies.
    Operator,
    /// Everything an operator does, and approves or rejects severe measures (never their own).
    Approver,
    /// Reads everything governance-related (actions, ledger, consent, reports) and changes nothing.
    Auditor,
    /// Manages accounts and measures (enable, notices); operates like an operator.
    Admin,
}

impl Role {
    /// Every role.
    pub const ALL: [Role; 4] = [Role::Operator, Role::Approver, Role::Auditor, Role::Admin];

    /// The stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Operator => "operator",
            Role::Approver => "approver",
            Role::Auditor => "auditor",
            Role::Admin => "admin",
        }
    }

    /// May this role change anything at all (propose, lift, reply, consent)? Auditors may not.
    pub fn may_operate(self) -> bool {
        !matches!(self, Role::Auditor)
    }

    /// May this role approve or reject pending actions?
    pub fn may_approve(self) -> bool {
        matches!(self, Role::Approver)
    }

    /// May this role manage accounts and switch measures?
    pub fn may_administer(self) -> bool {
        matches!(self, Role::Admin)
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| format!("unknown role {s:?} (expected operator, approver, auditor or admin)"))
    }
}

/// The console's languages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UiLanguage {
    /// 日本語 (the default).
    #[default]
    Ja,
    /// English.
    En,
}

impl UiLanguage {
    /// `ja` or `en`.
    pub fn as_str(self) -> &'static str {
        match self {
            UiLanguage::Ja => "ja",
            UiLanguage::En => "en",
        }
    }
}

impl std::str::FromStr for UiLanguage {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "ja" => Ok(UiLanguage::Ja),
            "en" => Ok(UiLanguage::En),
            other => Err(format!("unknown language {other:?} (expected ja or en)")),
        }
    }
}

/// A person's account.
#[derive(Clone, PartialEq, Eq)]
pub struct Account {
    /// Login name; also the name the ledger records as the actor.
    pub name: String,
    /// What they may do.
    pub role: Role,
    /// The Argon2id hash in PHC string format (never the password).
    pub password_hash: String,
    /// Console language.
    pub language: UiLanguage,
    /// A disabled account cannot log in; its sessions are refused.
    pub disabled: bool,
    /// When it was created or last changed.
    pub updated_at: Timestamp,
}

impl Account {
    /// The ledger's name for this person.
    pub fn actor(&self) -> Actor {
        Actor(self.name.clone())
    }
}

impl std::fmt::Debug for Account {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Account")
            .field("name", &self.name)
            .field("role", &self.role)
            .field("language", &self.language)
            .field("disabled", &self.disabled)
            .field("password_hash", &"<redacted>")
            .finish()
    }
}

/// A console session. The cookie carries a random secret; the store keeps only its BLAKE3 hash,
/// so a copy of the database does not let anyone log in.
#[derive(Clone, PartialEq, Eq)]
pub struct Session {
    /// Hex BLAKE3 hash of the cookie's secret.
    pub id_hash: String,
    /// Whose.
    pub account: String,
    /// The anti-CSRF token forms must echo (random, per session).
    pub csrf_token: String,
    /// When it was created (at login; a new login always makes a new session).
    pub created_at: Timestamp,
    /// When it ends regardless of use.
    pub expires_at: Timestamp,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("account", &self.account)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_round_trip_and_rights() {
        for r in Role::ALL {
            assert_eq!(r.as_str().parse::<Role>(), Ok(r));
        }
        assert!("root".parse::<Role>().is_err());
        assert!(!Role::Auditor.may_operate());
        assert!(Role::Approver.may_approve() && !Role::Operator.may_approve() && !Role::Admin.may_approve());
        assert!(Role::Admin.may_administer() && !Role::Approver.may_administer());
    }

    #[test]
    fn debug_hides_secrets() {
        let a = Account {
            name: "alice".into(),
            role: Role::Approver,
            password_hash: "$argon2id$secret".into(),
            language: UiLanguage::En,
            disabled: false,
            updated_at: Timestamp::UNIX_EPOCH,
        };
        assert!(!format!("{a:?}").contains("argon2id"));
        let s = Session {
            id_hash: "abcd".into(),
            account: "alice".into(),
            csrf_token: "tok".into(),
            created_at: Timestamp::UNIX_EPOCH,
            expires_at: Timestamp::UNIX_EPOCH,
        };
        let d = format!("{s:?}");
        assert!(!d.contains("abcd") && !d.contains("tok"));
    }
}
