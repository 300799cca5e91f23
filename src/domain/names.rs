//! Account names and passwords, parsed once at the edge.

use std::fmt;

/// A sign-in name: 1 to 64 of letters, digits, '.', '_' and '-', starting with a letter or
/// digit. Compared without regard to case (the database's unique index is on `lower`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Username(String);

/// Why a username was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a username is 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit")]
pub struct BadUsername;

impl Username {
    pub fn parse(s: &str) -> Result<Self, BadUsername> {
        let s = s.trim();
        let ok = !s.is_empty()
            && s.len() <= 64
            && s.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(BadUsername)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A display name: 1 to 128 characters after trimming, no control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisplayName(String);

/// Why a display name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a display name is 1 to 128 characters, without control characters")]
pub struct BadDisplayName;

impl DisplayName {
    pub fn parse(s: &str) -> Result<Self, BadDisplayName> {
        let s = s.trim();
        let ok = !s.is_empty() && s.chars().count() <= 128 && !s.chars().any(char::is_control);
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(BadDisplayName)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A new password that passed the strength rules. Never printed.
pub struct NewPassword(String);

/// Why a new password was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WeakPassword {
    #[error("the password is empty")]
    Empty,
    #[error("the password must be at least 12 characters")]
    TooShort,
    #[error("the password must be at most 1024 characters")]
    TooLong,
    #[error("the password is too easy to guess{0}")]
    Guessable(String),
}

impl NewPassword {
    /// Minimum length, after NIST SP 800-63B's advice for passwords used as one factor.
    pub const MIN_CHARS: usize = 12;

    /// Checks length and guessability (zxcvbn score 3 or more, counting the username and
    /// the product's name as known words).
    pub fn parse(password: &str, username: &str) -> Result<Self, WeakPassword> {
        let chars = password.chars().count();
        if password.is_empty() {
            return Err(WeakPassword::Empty);
        }
        if chars < Self::MIN_CHARS {
            return Err(WeakPassword::TooShort);
        }
        if chars > 1024 {
            return Err(WeakPassword::TooLong);
        }
        let entropy = zxcvbn::zxcvbn(password, &[username, "portcullis"]);
        if u8::from(entropy.score()) < 3 {
            let hint = entropy
                .feedback()
                .and_then(|f| f.warning())
                .map(|w| format!(": {w}"))
                .unwrap_or_default();
            return Err(WeakPassword::Guessable(hint));
        }
        Ok(Self(password.to_owned()))
    }

    /// A password from a demo seed file, accepted as it is.
    pub fn demo(password: &str) -> Self {
        Self(password.to_owned())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for NewPassword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NewPassword(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_are_plain_ascii_words() {
        assert!(Username::parse("alice").is_ok());
        assert!(Username::parse("a.b_c-1").is_ok());
        assert!(Username::parse("").is_err());
        assert!(Username::parse("-alice").is_err());
        assert!(Username::parse("al ice").is_err());
        assert!(Username::parse(&"a".repeat(65)).is_err());
    }

    #[test]
    fn weak_passwords_are_refused_with_a_reason() {
        assert_eq!(
            NewPassword::parse("", "alice").err(),
            Some(WeakPassword::Empty)
        );
        assert_eq!(
            NewPassword::parse("short", "alice").err(),
            Some(WeakPassword::TooShort)
        );
        assert!(matches!(
            NewPassword::parse("password1234", "alice"),
            Err(WeakPassword::Guessable(_))
        ));
        assert!(matches!(
            NewPassword::parse("alicealice12", "alice"),
            Err(WeakPassword::Guessable(_))
        ));
        assert!(NewPassword::parse("violet-harbour-tractor-91", "alice").is_ok());
    }
}
