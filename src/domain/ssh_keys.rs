//! SSH public keys people register on their Account page: parsed and checked with the
//! `ssh-key` crate, named, and fingerprinted exactly as `ssh-keygen -lf` prints.

use ssh_key::{HashAlg, PublicKey, public::KeyData};

use crate::domain::names::{hidden_character, hidden_character_message};

/// Keys one person may register.
pub const MAX_KEYS: i64 = 20;
/// Longest key name, in characters (the table's CHECK).
pub const NAME_MAX: usize = 100;
/// Longest pasted text looked at (the table's CHECK on the key is 16384).
const TEXT_MAX: usize = 16 * 1024;
/// Weakest RSA modulus accepted.
const RSA_MIN_BITS: usize = 2048;

/// A key as it is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedKey {
    /// As OpenSSH names it: ssh-ed25519, ecdsa-sha2-nistp256, ssh-rsa...
    pub algorithm: String,
    /// "<algorithm> <base64>", without the comment.
    pub public_key: String,
    /// "SHA256:<43 characters>".
    pub fingerprint: String,
    /// The comment after the key, trimmed ("" when none).
    pub comment: String,
}

/// Why a pasted text is not accepted as a key; the message never repeats the text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadKey {
    #[error("Paste a public key: the field is empty.")]
    Empty,
    #[error(
        "This is a private key. Never paste a private key anywhere: paste the public key \
         (the .pub file) instead. The text was not kept."
    )]
    Private,
    #[error(
        "This is not an OpenSSH public key. Paste the one line of the .pub file, such as \
         \"ssh-ed25519 AAAA... you@laptop\"."
    )]
    NotAKey,
    #[error("Paste one key at a time: the text holds more than one line.")]
    SeveralLines,
    #[error(
        "DSA keys are too weak and are not accepted: use an Ed25519 key (ssh-keygen -t ed25519)."
    )]
    Dsa,
    #[error(
        "This RSA key has {0} bits; at least 2048 are needed. Use an Ed25519 key \
         (ssh-keygen -t ed25519)."
    )]
    ShortRsa(usize),
    #[error("Keys of type {0} are not supported: use an Ed25519, ECDSA or RSA key.")]
    Unsupported(String),
}

/// Parses one pasted OpenSSH public key line.
pub fn parse(text: &str) -> Result<ParsedKey, BadKey> {
    let text = text.trim();
    if text.is_empty() {
        return Err(BadKey::Empty);
    }
    if looks_private(text) {
        return Err(BadKey::Private);
    }
    if text.len() > TEXT_MAX {
        return Err(BadKey::NotAKey);
    }
    if text.lines().filter(|l| !l.trim().is_empty()).count() > 1 {
        return Err(BadKey::SeveralLines);
    }
    let key = PublicKey::from_openssh(text).map_err(|_| BadKey::NotAKey)?;
    check_strength(key.key_data())?;
    let comment = key.comment().trim().to_owned();
    let mut bare = key.clone();
    bare.set_comment("");
    let public_key = bare
        .to_openssh()
        .map_err(|_| BadKey::NotAKey)?
        .trim()
        .to_owned();
    Ok(ParsedKey {
        algorithm: key.algorithm().as_str().to_owned(),
        public_key,
        fingerprint: key.fingerprint(HashAlg::Sha256).to_string(),
        comment,
    })
}

/// Private keys in any of the usual armours (OpenSSH, PEM, PKCS#8, PuTTY).
fn looks_private(text: &str) -> bool {
    text.contains("PRIVATE KEY") || text.starts_with("PuTTY-User-Key-File")
}

fn check_strength(data: &KeyData) -> Result<(), BadKey> {
    match data {
        KeyData::Dsa(_) => Err(BadKey::Dsa),
        KeyData::Rsa(rsa) => {
            let bits = modulus_bits(rsa.n.as_positive_bytes().unwrap_or_default());
            if bits < RSA_MIN_BITS {
                Err(BadKey::ShortRsa(bits))
            } else {
                Ok(())
            }
        }
        KeyData::Ed25519(_)
        | KeyData::Ecdsa(_)
        | KeyData::SkEd25519(_)
        | KeyData::SkEcdsaSha2NistP256(_) => Ok(()),
        other => Err(BadKey::Unsupported(other.algorithm().as_str().to_owned())),
    }
}

/// The bit length of a big-endian unsigned number.
fn modulus_bits(bytes: &[u8]) -> usize {
    let bytes = match bytes.iter().position(|&b| b != 0) {
        Some(first) => &bytes[first..],
        None => return 0,
    };
    bytes.len() * 8 - bytes[0].leading_zeros() as usize
}

/// The key's name: the one typed, else the key's comment; trimmed and checked.
pub fn name(typed: &str, comment: &str) -> Result<String, String> {
    let typed = typed.trim();
    let name = if typed.is_empty() { comment } else { typed };
    if name.is_empty() {
        return Err("Give the key a name (the key has no comment to use instead).".into());
    }
    if name.chars().count() > NAME_MAX {
        return Err(format!(
            "The name is too long: at most {NAME_MAX} characters."
        ));
    }
    if let Some(c) = hidden_character(name) {
        return Err(format!("The name {}.", hidden_character_message(c)));
    }
    Ok(name.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ED25519: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBBfLmcL8cmR1gVGAolisSx8bJSD+tR1ZxxduiKRPenT me@laptop";

    #[test]
    fn an_ed25519_key_is_parsed_with_its_comment() {
        let key = parse(&format!("  {ED25519}\n")).unwrap();
        assert_eq!(key.algorithm, "ssh-ed25519");
        assert_eq!(key.comment, "me@laptop");
        assert!(!key.public_key.ends_with(' '));
        assert!(!key.public_key.contains("laptop"));
        // What `ssh-keygen -lf` prints for this key.
        assert_eq!(
            key.fingerprint,
            "SHA256:5qrMSRHwSFvr9UzY/KKFNdNFCq1XGPaRPoKmn2bF/c4"
        );
    }

    #[test]
    fn refusals_say_why() {
        assert_eq!(parse(" \n"), Err(BadKey::Empty));
        assert_eq!(parse("hello world"), Err(BadKey::NotAKey));
        assert_eq!(
            parse("-----BEGIN OPENSSH PRIVATE KEY-----\nb3Blbn\n-----END OPENSSH PRIVATE KEY-----"),
            Err(BadKey::Private)
        );
        assert_eq!(
            parse(&format!("{ED25519}\n{ED25519}")),
            Err(BadKey::SeveralLines)
        );
    }

    #[test]
    fn modulus_bits_counts_from_the_top_bit() {
        assert_eq!(modulus_bits(&[0, 0x80, 0]), 16);
        assert_eq!(modulus_bits(&[0x01]), 1);
        assert_eq!(modulus_bits(&[]), 0);
    }

    #[test]
    fn the_name_falls_back_to_the_comment() {
        assert_eq!(name("  ", "me@laptop").unwrap(), "me@laptop");
        assert_eq!(name("work", "me@laptop").unwrap(), "work");
        assert!(name("", "").is_err());
        assert!(name(&"x".repeat(101), "").is_err());
        assert!(name("a\u{200b}b", "").is_err());
    }
}
