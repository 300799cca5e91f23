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

/// The first character of `name` that shows nothing or changes how the rest is shown:
/// control characters, every format character (Unicode category Cf: zero-width spaces and
/// joiners, word joiner, byte order mark, the bidirectional marks, embeddings, overrides and
/// isolates, the Arabic letter mark...), and a few invisible letters (Hangul fillers, the
/// combining grapheme joiner). A name holding one can pass for another name in a list or a
/// log (`lnx-web-01` with a zero-width space), or show its characters in another order
/// (a right-to-left override).
pub fn hidden_character(name: &str) -> Option<char> {
    use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};
    name.chars().find(|&c| {
        c.is_control()
            || c.general_category() == GeneralCategory::Format
            || matches!(
                c,
                '\u{034F}' | '\u{115F}' | '\u{1160}' | '\u{3164}' | '\u{FFA0}'
            )
    })
}

/// The message for a name holding [`hidden_character`] `c`, after the field's label.
pub fn hidden_character_message(c: char) -> String {
    if c.is_control() {
        format!(
            "must not contain control characters (U+{:04X})",
            u32::from(c)
        )
    } else {
        format!(
            "must not contain invisible or direction-changing characters (U+{:04X})",
            u32::from(c)
        )
    }
}

/// What a name looks like, for telling look-alike names apart: its UTS #39 confusable
/// skeleton (`0` and `O`, `1` and `l`, Cyrillic `а` and Latin `a` fold together), taken
/// without regard to case, as names are unique without regard to case.
pub fn look_alike_key(name: &str) -> String {
    use unicode_security::skeleton;
    let folded: String = skeleton(name.trim()).collect::<String>().to_lowercase();
    skeleton(&folded).collect()
}

/// A display name: 1 to 128 characters after trimming, no control, invisible or
/// direction-changing characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisplayName(String);

/// Why a display name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "a display name is 1 to 128 characters, without control, invisible or direction-changing characters"
)]
pub struct BadDisplayName;

impl DisplayName {
    pub fn parse(s: &str) -> Result<Self, BadDisplayName> {
        let s = s.trim();
        let ok = !s.is_empty() && s.chars().count() <= 128 && hidden_character(s).is_none();
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
    fn invisible_and_direction_changing_characters_are_found() {
        for c in [
            '\u{200B}', '\u{200C}', '\u{200D}', '\u{2060}', '\u{FEFF}', '\u{202A}', '\u{202E}',
            '\u{2066}', '\u{2069}', '\u{200E}', '\u{200F}', '\u{061C}', '\u{00AD}', '\u{3164}',
            '\0', '\u{1B}',
        ] {
            let name = format!("lnx-web{c}-01");
            assert_eq!(hidden_character(&name), Some(c), "U+{:04X}", u32::from(c));
            assert!(DisplayName::parse(&name).is_err());
        }
        for name in [
            "lnx-web-01",
            "Zoë Brontë",
            "Δημήτρης",
            "山田 太郎",
            "O'Brien-Smith",
        ] {
            assert_eq!(hidden_character(name), None, "{name}");
            assert!(DisplayName::parse(name).is_ok());
        }
    }

    #[test]
    fn look_alike_names_share_a_key_and_different_names_do_not() {
        let key = look_alike_key("lnx-web-01");
        assert_eq!(look_alike_key("lnx-web-0l"), key);
        assert_eq!(look_alike_key("lnx-web-O1"), key);
        assert_eq!(look_alike_key("LNX-WEB-01"), key);
        // Cyrillic а (U+0430) and е (U+0435).
        assert_eq!(look_alike_key("lnx-w\u{0435}b-01"), key);
        assert_ne!(look_alike_key("lnx-web-02"), key);
        assert_ne!(look_alike_key("lnx-db-01"), key);
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
