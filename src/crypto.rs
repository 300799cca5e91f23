//! Encryption at rest for generated passwords: AES-256-GCM (the RustCrypto `aes-gcm` crate)
//! with a random nonce per message and the session id as associated data, so a ciphertext
//! copied to another session's row does not decrypt.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use aes_gcm::aead::{Aead, KeyInit, OsRng, Payload};
use aes_gcm::{AeadCore, Aes256Gcm, Key, Nonce};
use uuid::Uuid;

const NONCE_LEN: usize = 12;

/// The key that seals generated passwords.
#[derive(Clone)]
pub struct SecretBox {
    cipher: Aes256Gcm,
    /// A separate key for connection strings, derived from the same key file.
    mac_key: [u8; 32],
}

/// Why the key could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot read the key file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot create the key file {path}: {source}")]
    Create {
        path: String,
        source: std::io::Error,
    },
    #[error("the key file {0} must hold 64 hexadecimal characters (32 bytes)")]
    Format(String),
}

/// A ciphertext that does not open with this key and session.
#[derive(Debug, thiserror::Error)]
#[error("the stored password cannot be decrypted (wrong key or damaged data)")]
pub struct DecryptError;

impl SecretBox {
    /// A box with a fresh random key (tests).
    pub fn random() -> Self {
        Self::from_key(&Aes256Gcm::generate_key(OsRng))
    }

    fn from_key(key: &Key<Aes256Gcm>) -> Self {
        use sha2::Digest;
        let mut hasher = sha2::Sha256::new();
        hasher.update(b"portcullis/connection-string/v1");
        hasher.update(key.as_slice());
        Self {
            cipher: Aes256Gcm::new(key),
            mac_key: hasher.finalize().into(),
        }
    }

    /// The connection string of a session: what a gateway in front of the resources checks
    /// (`pcs1.<session id>.<HMAC-SHA256 of it and its access epoch, 128 bits, hex>`), so that
    /// a client can log in through the gateway without a password of its own. The epoch moves
    /// whenever access is cut or given back (Lock, Unlock, every end), so a string seen once
    /// is no key for the rest of the window.
    pub fn connection_string(&self, session: Uuid, epoch: i32) -> String {
        let id = session.simple().to_string();
        format!("pcs1.{id}.{}", self.tag(&id, epoch))
    }

    /// The session a connection string claims to be for, unchecked: to look up its epoch.
    pub fn connection_string_session(text: &str) -> Option<Uuid> {
        let mut parts = text.trim().split('.');
        let (Some("pcs1"), Some(id), Some(_), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return None;
        };
        Uuid::try_parse(id).ok()
    }

    /// The session a connection string names, if its tag is genuine for the session's
    /// current access `epoch` (constant-time check).
    pub fn verify_connection_string(&self, text: &str, epoch: i32) -> Option<Uuid> {
        use subtle::ConstantTimeEq;
        let mut parts = text.trim().split('.');
        let (Some("pcs1"), Some(id), Some(tag), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return None;
        };
        let expected = self.tag(id, epoch);
        bool::from(expected.as_bytes().ct_eq(tag.as_bytes()))
            .then(|| Uuid::parse_str(id).ok())
            .flatten()
    }

    /// A 256-bit key for `purpose` (a fixed name), derived from the key file: every instance
    /// sharing the key file derives the same one, and a MAC made under one purpose's key
    /// proves nothing under another's.
    pub fn derived_key(&self, purpose: &str) -> [u8; 32] {
        use sha2::Digest;
        let mut hasher = sha2::Sha256::new();
        hasher.update(b"portcullis/derived-key/v1/");
        hasher.update(purpose.as_bytes());
        hasher.update([0u8]);
        hasher.update(self.mac_key);
        hasher.finalize().into()
    }

    fn tag(&self, id: &str, epoch: i32) -> String {
        use hmac::Mac;
        let Ok(mut mac) = <hmac::Hmac<sha2::Sha256> as Mac>::new_from_slice(&self.mac_key) else {
            return String::new();
        };
        mac.update(id.as_bytes());
        // The separator keeps (id, epoch) pairs from running into each other.
        mac.update(b".");
        mac.update(epoch.to_string().as_bytes());
        mac.finalize().into_bytes()[..16]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// Loads the key from `path` (64 hex characters), creating the file with mode 0600 and a
    /// random key when it does not exist.
    pub fn load_or_create(path: &Path) -> Result<Self, KeyError> {
        let shown = path.display().to_string();
        match std::fs::read_to_string(path) {
            Ok(text) => {
                let bytes =
                    decode_hex(text.trim()).ok_or_else(|| KeyError::Format(shown.clone()))?;
                let key: [u8; 32] = bytes.try_into().map_err(|_| KeyError::Format(shown))?;
                Ok(Self::from_key(Key::<Aes256Gcm>::from_slice(&key)))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = Aes256Gcm::generate_key(OsRng);
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent).map_err(|source| KeyError::Create {
                        path: shown.clone(),
                        source,
                    })?;
                }
                let mut file = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(path)
                    .map_err(|source| KeyError::Create {
                        path: shown.clone(),
                        source,
                    })?;
                let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
                file.write_all(format!("{hex}\n").as_bytes())
                    .map_err(|source| KeyError::Create {
                        path: shown,
                        source,
                    })?;
                Ok(Self::from_key(&key))
            }
            Err(source) => Err(KeyError::Read {
                path: shown,
                source,
            }),
        }
    }

    /// Seals `plaintext` for `session`: nonce followed by ciphertext and tag.
    pub fn seal(&self, session: Uuid, plaintext: &str) -> Vec<u8> {
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let payload = Payload {
            msg: plaintext.as_bytes(),
            aad: session.as_bytes(),
        };
        // Encryption with a valid key and nonce does not fail for messages this small.
        let sealed = self.cipher.encrypt(&nonce, payload).unwrap_or_default();
        let mut out = Vec::with_capacity(NONCE_LEN + sealed.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        out
    }

    /// Opens what [`SecretBox::seal`] sealed for the same session.
    pub fn open(&self, session: Uuid, sealed: &[u8]) -> Result<String, DecryptError> {
        if sealed.len() <= NONCE_LEN {
            return Err(DecryptError);
        }
        let (nonce, body) = sealed.split_at(NONCE_LEN);
        let plain = self
            .cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: body,
                    aad: session.as_bytes(),
                },
            )
            .map_err(|_| DecryptError)?;
        String::from_utf8(plain).map_err(|_| DecryptError)
    }
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_passwords_open_only_for_their_session() {
        let sb = SecretBox::random();
        let a = Uuid::new_v4();
        let sealed = sb.seal(a, "hunter2-but-longer");
        assert!(!sealed.windows(6).any(|w| w == b"hunter"));
        assert_eq!(sb.open(a, &sealed).unwrap(), "hunter2-but-longer");
        assert!(sb.open(Uuid::new_v4(), &sealed).is_err());
        assert!(SecretBox::random().open(a, &sealed).is_err());
    }

    #[test]
    fn connection_strings_verify_only_with_their_key_and_unaltered() {
        let sb = SecretBox::random();
        let id = Uuid::new_v4();
        let s = sb.connection_string(id, 0);
        assert!(s.starts_with("pcs1."));
        assert_eq!(sb.verify_connection_string(&s, 0), Some(id));
        assert_eq!(SecretBox::connection_string_session(&s), Some(id));
        assert_eq!(SecretBox::random().verify_connection_string(&s, 0), None);
        let other = sb.connection_string(Uuid::new_v4(), 0);
        let forged = format!(
            "{}.{}",
            &s[..s.rfind('.').unwrap()],
            &other[other.rfind('.').unwrap() + 1..]
        );
        assert_eq!(sb.verify_connection_string(&forged, 0), None);
        assert_eq!(sb.verify_connection_string("pcs1.x.y", 0), None);
        assert_eq!(SecretBox::connection_string_session("pcs1.x.y"), None);
    }

    #[test]
    fn a_connection_string_stops_verifying_once_the_access_epoch_moves() {
        let sb = SecretBox::random();
        let id = Uuid::new_v4();
        let seen = sb.connection_string(id, 3);
        assert_eq!(sb.verify_connection_string(&seen, 3), Some(id));
        assert_eq!(sb.verify_connection_string(&seen, 4), None);
        assert_eq!(sb.verify_connection_string(&seen, 2), None);
        assert_ne!(sb.connection_string(id, 4), seen);
    }

    #[test]
    fn a_key_file_is_created_private_and_read_back() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret.key");
        let first = SecretBox::load_or_create(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let id = Uuid::new_v4();
        let sealed = first.seal(id, "x");
        let second = SecretBox::load_or_create(&path).unwrap();
        assert_eq!(second.open(id, &sealed).unwrap(), "x");
        std::fs::write(&path, "not hex").unwrap();
        assert!(matches!(
            SecretBox::load_or_create(&path),
            Err(KeyError::Format(_))
        ));
    }
}
