//! Quoting for the POSIX shell scripts sent to targets. Scripts are built from validated
//! names and from values quoted here; nothing a user typed reaches a shell unquoted.

/// `word` as one single-quoted shell word.
pub fn quote(word: &str) -> String {
    format!("'{}'", word.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_keeps_every_character_literal() {
        assert_eq!(quote("abc"), "'abc'");
        assert_eq!(quote("a'b"), r"'a'\''b'");
        assert_eq!(quote("$(id) `x` ; \\"), r"'$(id) `x` ; \'");
    }

    #[test]
    fn a_quoted_word_is_read_back_unchanged_by_a_real_shell() {
        for word in ["plain", "it's", "$(id)", "a\"b", "%!=+@", "new\nline", ""] {
            let out = std::process::Command::new("sh")
                .arg("-c")
                .arg(format!("printf '%s' {}", quote(word)))
                .output()
                .unwrap_or_else(|e| panic!("sh: {e}"));
            assert_eq!(String::from_utf8_lossy(&out.stdout), word);
        }
    }
}
