//! The built-in provisioner's rules: which login account a session gets, and a generated
//! password for ephemeral and managed accounts.

use rand::Rng;
use uuid::Uuid;

use crate::domain::catalog::LoginMode;

/// Length of generated passwords.
pub const PASSWORD_LEN: usize = 24;

/// Characters of generated passwords: letters and digits without look-alikes, and symbols
/// that survive shells, RDP clients and URLs.
const ALPHABET: &[char] = &[
    'A', 'B', 'C', 'D', 'E', 'F', 'G', 'H', 'J', 'K', 'L', 'M', 'N', 'P', 'Q', 'R', 'S', 'T', 'U',
    'V', 'W', 'X', 'Y', 'Z', 'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j', 'k', 'm', 'n', 'o',
    'p', 'q', 'r', 's', 't', 'u', 'v', 'w', 'x', 'y', 'z', '2', '3', '4', '5', '6', '7', '8', '9',
    '-', '_', '.', '+', '=', '@', '%', '!',
];

/// The login account prepared for a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub name: String,
    /// Generated for ephemeral and managed accounts; never for the requester's own.
    pub password: Option<String>,
}

/// Why an account could not be prepared (the session becomes Failed with this reason).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProvisionError {
    #[error("the activity has no login account template")]
    NoTemplate,
    #[error("the login account name \"{0}\" is longer than 64 characters")]
    NameTooLong(String),
}

/// The short form of a session id used in account names.
pub fn short_id(session: Uuid) -> String {
    session
        .simple()
        .to_string()
        .chars()
        .rev()
        .take(8)
        .collect::<String>()
        .chars()
        .rev()
        .collect()
}

/// Prepares the login account for a session.
pub fn prepare(
    mode: LoginMode,
    template: Option<&str>,
    requester: &str,
    session: Uuid,
    resource: &str,
) -> Result<Account, ProvisionError> {
    let name = match mode {
        LoginMode::Own => {
            return Ok(Account {
                name: requester.to_owned(),
                password: None,
            });
        }
        LoginMode::Managed => template.ok_or(ProvisionError::NoTemplate)?.to_owned(),
        LoginMode::Ephemeral => {
            let resource: String = resource
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || c == '-' {
                        c.to_ascii_lowercase()
                    } else {
                        '-'
                    }
                })
                .collect();
            template
                .ok_or(ProvisionError::NoTemplate)?
                .replace("{username}", requester)
                .replace("{session}", &short_id(session))
                .replace("{resource}", &resource)
        }
    };
    if name.chars().count() > 64 {
        return Err(ProvisionError::NameTooLong(name));
    }
    Ok(Account {
        name,
        password: Some(generate_password()),
    })
}

/// A password from the operating system's CSPRNG.
pub fn generate_password() -> String {
    let mut rng = rand::rngs::OsRng;
    (0..PASSWORD_LEN)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())])
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_accounts_use_the_requesters_name_and_no_password() {
        let a = prepare(LoginMode::Own, None, "alice", Uuid::new_v4(), "web-01").unwrap();
        assert_eq!(
            a,
            Account {
                name: "alice".into(),
                password: None
            }
        );
    }

    #[test]
    fn ephemeral_accounts_fill_in_the_template() {
        let id = Uuid::parse_str("0190a0b0-c0d0-7e0f-8000-0000deadbeef").unwrap();
        let a = prepare(
            LoginMode::Ephemeral,
            Some("pc-{username}-{session}-{resource}"),
            "alice",
            id,
            "Web 01",
        )
        .unwrap();
        assert_eq!(a.name, "pc-alice-deadbeef-web-01");
        assert_eq!(a.password.as_ref().map(String::len), Some(PASSWORD_LEN));
    }

    #[test]
    fn generated_passwords_differ_and_use_the_alphabet() {
        let a = generate_password();
        let b = generate_password();
        assert_ne!(a, b);
        assert_eq!(a.chars().count(), PASSWORD_LEN);
        assert!(a.chars().all(|c| ALPHABET.contains(&c)));
    }

    #[test]
    fn an_overlong_name_fails_provisioning() {
        let err = prepare(
            LoginMode::Ephemeral,
            Some("{resource}{resource}"),
            "a",
            Uuid::new_v4(),
            &"r".repeat(40),
        );
        assert!(matches!(err, Err(ProvisionError::NameTooLong(_))));
    }
}
