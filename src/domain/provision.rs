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
    #[error("the login account name \"{0}\" is longer than {MAX_ACCOUNT_NAME} characters")]
    NameTooLong(String),
    /// The template was checked when saved, but what it was filled with (a user or resource
    /// name) made a name no target accepts.
    #[error("the login account name \"{0}\" {1}")]
    BadName(String, String),
}

/// Longest login account name: what Linux `useradd` accepts (PostgreSQL roles take 63).
pub const MAX_ACCOUNT_NAME: usize = 32;

/// Why `name` is not an account name every target accepts: 1 to 32 of lowercase letters,
/// digits, '_', '.' and '-', starting with a letter or '_' (the portable POSIX user name,
/// which `useradd` and PostgreSQL take as it is, unquoted). `None`: it is one.
pub fn account_name_problem(name: &str) -> Option<String> {
    if name.chars().count() > MAX_ACCOUNT_NAME {
        return Some(format!("is longer than {MAX_ACCOUNT_NAME} characters"));
    }
    let first_ok = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_');
    let rest_ok = name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '.' | '-'));
    (!first_ok || !rest_ok).then(|| {
        "may only hold lowercase letters, digits, '_', '.' and '-', and must start with a letter or '_'"
            .to_owned()
    })
}

/// Why `name` is not a managed (existing, shared) account name: a plain account name as in
/// [`account_name_problem`], or a Windows domain account `DOMAIN\name` (letters of either
/// case, digits, '.' and '-' in the domain; letters, digits, '_', '.' and '-' in the name,
/// at most 32). `None`: it is one.
pub fn managed_account_problem(name: &str) -> Option<String> {
    let Some((domain, account)) = name.split_once('\\') else {
        return account_name_problem(name);
    };
    let domain_ok = !domain.is_empty()
        && domain.len() <= 64
        && domain
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-'));
    let account_ok = !account.is_empty()
        && account.chars().count() <= MAX_ACCOUNT_NAME
        && account
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    (!domain_ok || !account_ok).then(|| {
        "must be an account name (lowercase letters, digits, '_', '.', '-') or DOMAIN\\name, at most 32 characters"
            .to_owned()
    })
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
        LoginMode::Managed => {
            let name = template.ok_or(ProvisionError::NoTemplate)?.to_owned();
            // Checked again here, not only when saved: rows saved before the rule existed.
            if let Some(problem) = managed_account_problem(&name) {
                return Err(ProvisionError::BadName(name, problem));
            }
            return Ok(Account {
                name,
                password: Some(generate_password()),
            });
        }
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
                // Account names are lowercase; sign-in names are unique without regard to
                // case, so lowercasing one cannot make it another user's.
                .replace("{username}", &requester.to_ascii_lowercase())
                .replace("{session}", &short_id(session))
                .replace("{resource}", &resource)
        }
    };
    // Checked before any provisioner sees it: a name a target would refuse, or read as
    // something else, fails the session with the reason instead.
    if name.chars().count() > MAX_ACCOUNT_NAME {
        return Err(ProvisionError::NameTooLong(name));
    }
    if let Some(problem) = account_name_problem(&name) {
        return Err(ProvisionError::BadName(name, problem));
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
    fn account_names_are_portable_posix_names() {
        for good in ["pc-alice-deadbeef", "_svc", "svc_dba", "a.b-c_1"] {
            assert_eq!(account_name_problem(good), None, "{good}");
        }
        for bad in [
            "",
            "1abc",
            "-abc",
            "Alice",
            "pc alice",
            "pc;rm",
            "p\u{0430}c",
            &"a".repeat(33),
        ] {
            assert!(account_name_problem(bad).is_some(), "{bad}");
        }
        assert_eq!(managed_account_problem("CORP\\svc-domain-admin"), None);
        assert!(managed_account_problem("CORP\\").is_some());
        assert!(managed_account_problem("CO RP\\svc").is_some());
        assert!(managed_account_problem("Admin").is_some());
    }

    #[test]
    fn a_name_filled_in_with_odd_characters_fails_provisioning() {
        let id = Uuid::parse_str("0190a0b0-c0d0-7e0f-8000-0000deadbeef").unwrap();
        // Upper-case sign-in names are lowercased.
        let a = prepare(
            LoginMode::Ephemeral,
            Some("pc_{username}"),
            "Alice",
            id,
            "r",
        )
        .unwrap();
        assert_eq!(a.name, "pc_alice");
        // A sign-in name that starts with a digit makes a name Linux refuses.
        let err = prepare(LoginMode::Ephemeral, Some("{username}"), "1bob", id, "r").unwrap_err();
        assert!(matches!(err, ProvisionError::BadName(..)), "{err}");
        let err = prepare(LoginMode::Managed, Some("svc dba"), "alice", id, "r").unwrap_err();
        assert!(matches!(err, ProvisionError::BadName(..)), "{err}");
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
