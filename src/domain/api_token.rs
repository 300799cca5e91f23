//! API tokens: scopes, the secret's format, and what a new token may be. A token is `pcs_`
//! and 64 hex digits (32 bytes from the operating system's CSPRNG); only its SHA-256 is
//! stored, and it is shown once.

use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// What a token may be used for, mirrored by the PostgreSQL enum `api_scope`. A scope never
/// adds to its owner's permissions: `admin` works only for an administrator's token.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, sqlx::Type,
)]
#[sqlx(type_name = "api_scope", rename_all = "lowercase")]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Read own sessions, requests and approvals.
    Read,
    /// Create requests; end and extend own sessions.
    Request,
    /// Approve or deny.
    Approve,
    /// The administrators' catalogue and audit log (with the admin role only).
    Admin,
}

impl Scope {
    pub const ALL: [Scope; 4] = [Scope::Read, Scope::Request, Scope::Approve, Scope::Admin];

    /// The stored and typed spelling.
    pub fn key(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Request => "request",
            Scope::Approve => "approve",
            Scope::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|x| x.key() == s.trim())
    }
}

/// The prefix of every token (lets secret scanners find leaked ones).
pub const PREFIX: &str = "pcs_";
/// Longest lifetime of a token.
pub const MAX_DAYS: i64 = 365;
/// Longest token name.
pub const MAX_NAME: usize = 100;

/// A new token's secret: shown once, never stored.
pub struct Secret(String);

impl Secret {
    /// 32 random bytes from the OS, as `pcs_` and 64 lowercase hex digits.
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        let mut text = String::with_capacity(PREFIX.len() + 64);
        text.push_str(PREFIX);
        for b in bytes {
            text.push_str(&format!("{b:02x}"));
        }
        Self(text)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Whether `text` has the form of a token (before any lookup).
pub fn well_formed(text: &str) -> bool {
    text.strip_prefix(PREFIX).is_some_and(|hex| {
        hex.len() == 64
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// What is stored of a token: the SHA-256 of its text.
pub fn digest(text: &str) -> Vec<u8> {
    Sha256::digest(text.as_bytes()).to_vec()
}

/// A new token, checked: what the Account page and the command line ask for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewToken {
    pub name: String,
    pub scopes: Vec<Scope>,
    pub days: i64,
}

/// What is wrong with a new token, by field.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewTokenErrors {
    pub name: Option<String>,
    pub scopes: Option<String>,
    pub days: Option<String>,
}

impl NewToken {
    /// Checks the typed name, scopes (their keys) and lifetime in days.
    pub fn parse<'a>(
        name: &str,
        scopes: impl IntoIterator<Item = &'a str>,
        days: &str,
    ) -> Result<Self, NewTokenErrors> {
        let mut errors = NewTokenErrors::default();
        let name = name.trim();
        if name.is_empty() {
            errors.name = Some("Give the token a name, such as the script that uses it.".into());
        } else if name.chars().count() > MAX_NAME {
            errors.name = Some(format!("The name can be at most {MAX_NAME} characters."));
        } else if name.chars().any(char::is_control) {
            errors.name = Some("The name cannot contain control characters.".into());
        }
        let mut parsed = Vec::new();
        for s in scopes {
            match Scope::parse(s) {
                Some(scope) if !parsed.contains(&scope) => parsed.push(scope),
                Some(_) => {}
                None => {
                    errors.scopes = Some(format!(
                        "Unknown scope \u{201c}{}\u{201d}: choose from read, request, approve, admin.",
                        s.trim().chars().take(40).collect::<String>()
                    ))
                }
            }
        }
        if parsed.is_empty() && errors.scopes.is_none() {
            errors.scopes = Some("Choose at least one scope.".into());
        }
        parsed.sort();
        let days = match days.trim().parse::<i64>() {
            Ok(d) if (1..=MAX_DAYS).contains(&d) => d,
            _ => {
                errors.days = Some(format!(
                    "Expires in: a whole number of days from 1 to {MAX_DAYS}."
                ));
                0
            }
        };
        if errors == NewTokenErrors::default() {
            Ok(Self {
                name: name.to_owned(),
                scopes: parsed,
                days,
            })
        } else {
            Err(errors)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_token_is_well_formed_and_unique() {
        let (a, b) = (Secret::generate(), Secret::generate());
        assert!(well_formed(a.as_str()), "{}", a.as_str());
        assert_eq!(a.as_str().len(), 68);
        assert_ne!(a.as_str(), b.as_str());
        assert_eq!(digest(a.as_str()).len(), 32);
    }

    #[test]
    fn malformed_tokens_are_refused_before_any_lookup() {
        for t in [
            "",
            "pcs_",
            "pcs_xyz",
            &format!("pcs_{}", "A".repeat(64)),
            &"a".repeat(68),
        ] {
            assert!(!well_formed(t), "{t}");
        }
    }

    #[test]
    fn a_new_token_needs_a_name_a_known_scope_and_a_lifetime_within_a_year() {
        let ok = NewToken::parse(" ci ", ["request", "read", "read"], "30").unwrap();
        assert_eq!(ok.name, "ci");
        assert_eq!(ok.scopes, [Scope::Read, Scope::Request]);
        let e = NewToken::parse("", ["write"], "366").unwrap_err();
        assert!(e.name.is_some());
        assert!(e.scopes.unwrap().contains("write"));
        assert!(e.days.unwrap().contains("365"));
        assert!(NewToken::parse("x", [], "0").unwrap_err().scopes.is_some());
    }
}
