//! The per-session SSH key of a `linux_ssh` ephemeral account: an ed25519 key pair made at
//! each grant from the operating system's CSPRNG. The public half is the account's only
//! authorized key on the target; the private half is sealed with the key file like a
//! generated password and opened only by the gateway, which logs in with it (the password
//! stays the fallback). Neither is ever shown to anyone.

use rand::RngCore;
use russh::keys::ssh_key::LineEnding;
use russh::keys::ssh_key::private::Ed25519Keypair;
use russh::keys::{PrivateKey, PublicKey};

use super::StepError;

/// A fresh key pair: (private key in OpenSSH format, public key as `ssh-ed25519 base64`).
pub fn generate() -> Result<(String, String), StepError> {
    let mut seed = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut seed);
    let pair = Ed25519Keypair::from_seed(&seed);
    // The key pair wipes itself when dropped; the seed is wiped here.
    seed.fill(0);
    std::hint::black_box(&seed);
    let key = PrivateKey::from(pair);
    let private = key
        .to_openssh(LineEnding::LF)
        .map_err(|e| StepError::SessionKey(e.to_string()))?;
    let public = key
        .public_key()
        .to_openssh()
        .map_err(|e| StepError::SessionKey(e.to_string()))?;
    Ok((private.to_string(), public))
}

/// Whether `line` is an ed25519 public key as [`generate`] writes it (type and base64, no
/// comment), fit to be written into an authorized_keys file.
pub fn valid_public_key(line: &str) -> bool {
    let mut parts = line.split(' ');
    matches!(
        (parts.next(), parts.next(), parts.next()),
        (Some("ssh-ed25519"), Some(data), None)
            if data.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='))
    ) && PublicKey::from_openssh(line).is_ok()
}

/// Opens a private key as [`generate`] wrote it.
pub fn open(private: &str) -> Option<PrivateKey> {
    PrivateKey::from_openssh(private).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_key_pair_matches_and_differs_each_time() {
        let (private, public) = generate().unwrap();
        assert!(private.starts_with("-----BEGIN OPENSSH PRIVATE KEY-----"));
        assert!(valid_public_key(&public), "{public}");
        let opened = open(&private).unwrap();
        assert_eq!(opened.public_key().to_openssh().unwrap(), public);
        let (_, other) = generate().unwrap();
        assert_ne!(public, other);
        assert!(!valid_public_key("ssh-ed25519 AAAA; rm -rf /"));
        assert!(!valid_public_key(&format!("{public} comment")));
    }
}
