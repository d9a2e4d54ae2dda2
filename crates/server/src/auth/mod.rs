//! People: accounts with roles, Argon2id passwords, console sessions, CSRF tokens and login
//! rate limits. Every login (failed or not), logout and account change is a ledger entry.
//!
//! Secrets (passwords, session cookies, CSRF tokens, API tokens) never reach logs or the ledger:
//! the store keeps only password hashes and the BLAKE3 hash of each session secret.

mod accounts;
mod extract;
mod limiter;

pub use accounts::{AccountError, Accounts, LoginOutcome, MIN_PASSWORD_LEN};
pub(crate) use extract::{
    ApiPerson, PagePerson, Person, Right, SESSION_COOKIE, session_cookie as session_cookie_value,
};
pub(crate) use limiter::LoginLimiter;

/// A fresh random secret as 64 hex digits (256 bits from the operating system).
pub(crate) fn random_secret() -> Result<String, getrandom::Error> {
    let mut buf = [0u8; 32];
    getrandom::fill(&mut buf)?;
    Ok(hex::encode(buf))
}

/// The hash under which the store keeps a session secret.
pub(crate) fn session_hash(secret: &str) -> String {
    blake3::hash(secret.as_bytes()).to_hex().to_string()
}

/// Compares secrets in time independent of where they differ.
pub(crate) fn same_secret(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
