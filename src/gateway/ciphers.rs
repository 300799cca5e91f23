//! Which ciphers each leg of a gateway connection uses. The gateway decrypts and encrypts
//! every relayed byte once more than a direct ssh does, so the cipher is most of its cost
//! per byte: with AES instructions, AES-GCM (ring's) costs the gateway and OpenSSH a
//! fraction of ChaCha20-Poly1305 (bench/README.md, "SSH gateway").
//!
//! In SSH the client's order decides: the first of its ciphers that the server offers is
//! used. Upstream the gateway is the client and puts AES-GCM first. Towards the user it is
//! the server, and OpenSSH clients list ChaCha20-Poly1305 first, so on AES hardware the
//! gateway offers AES-GCM alone unless `PORTCULLIS_SSH_GATEWAY_CIPHERS` says otherwise
//! (for a client without AES-GCM: OpenSSH has it since 6.2, PuTTY since 0.76).

use std::borrow::Cow;

use russh::cipher::{self, Name};

/// The ciphers that may be configured, by their OpenSSH names (checked when the settings are
/// read). No CBC, no 3DES, no `none`.
pub use crate::config::GATEWAY_CIPHERS as SUPPORTED;

const BY_NAME: [Name; 6] = [
    cipher::AES_128_GCM,
    cipher::AES_256_GCM,
    cipher::CHACHA20_POLY1305,
    cipher::AES_128_CTR,
    cipher::AES_192_CTR,
    cipher::AES_256_CTR,
];

/// Both AEADs and CTR, ChaCha20-Poly1305 first: russh's default order.
const CHACHA_FIRST: [Name; 6] = [
    cipher::CHACHA20_POLY1305,
    cipher::AES_256_GCM,
    cipher::AES_128_GCM,
    cipher::AES_256_CTR,
    cipher::AES_192_CTR,
    cipher::AES_128_CTR,
];

/// Every supported cipher, AES-GCM first.
const AES_GCM_FIRST: [Name; 6] = [
    cipher::AES_128_GCM,
    cipher::AES_256_GCM,
    cipher::CHACHA20_POLY1305,
    cipher::AES_256_CTR,
    cipher::AES_192_CTR,
    cipher::AES_128_CTR,
];

/// Whether this processor has the instructions that make AES-GCM fast.
pub fn aes_instructions() -> bool {
    #[cfg(target_arch = "x86_64")]
    return std::arch::is_x86_feature_detected!("aes")
        && std::arch::is_x86_feature_detected!("pclmulqdq");
    #[cfg(target_arch = "aarch64")]
    return std::arch::is_aarch64_feature_detected!("aes");
    #[allow(unreachable_code)]
    false
}

/// The upstream leg's algorithms (the gateway is the client): AES-GCM first where the
/// processor has AES instructions.
pub fn upstream() -> russh::Preferred {
    let order: &'static [Name] = if aes_instructions() {
        &AES_GCM_FIRST
    } else {
        &CHACHA_FIRST
    };
    russh::Preferred {
        cipher: Cow::Borrowed(order),
        ..russh::Preferred::default()
    }
}

/// What the gateway offers its users: the `configured` names (checked against
/// [`SUPPORTED`] when the settings were read; others are skipped) in their order, else AES-GCM
/// alone with AES instructions, else ChaCha20-Poly1305 first.
pub fn offered(configured: &[String], aes: bool) -> Vec<Name> {
    let named: Vec<Name> = configured
        .iter()
        .filter_map(|c| SUPPORTED.iter().position(|s| s == c))
        .map(|i| BY_NAME[i])
        .collect();
    if !named.is_empty() {
        return named;
    }
    if aes {
        vec![cipher::AES_128_GCM, cipher::AES_256_GCM]
    } else {
        CHACHA_FIRST.to_vec()
    }
}

/// The gateway's server-side algorithms for [`offered`] ciphers.
pub fn downstream(configured: &[String]) -> russh::Preferred {
    russh::Preferred {
        cipher: Cow::Owned(offered(configured, aes_instructions())),
        ..russh::Preferred::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[Name]) -> Vec<&str> {
        list.iter().map(|n| n.as_ref()).collect()
    }

    #[test]
    fn the_tables_name_the_same_ciphers() {
        assert_eq!(names(&BY_NAME), SUPPORTED);
    }

    #[test]
    fn users_are_offered_aes_gcm_alone_on_aes_hardware_and_chacha_first_elsewhere() {
        assert_eq!(
            names(&offered(&[], true)),
            ["aes128-gcm@openssh.com", "aes256-gcm@openssh.com"]
        );
        assert_eq!(
            names(&offered(&[], false))[0],
            "chacha20-poly1305@openssh.com"
        );
    }

    #[test]
    fn configured_ciphers_are_offered_as_listed() {
        let configured = [
            "chacha20-poly1305@openssh.com".to_owned(),
            "aes256-ctr".to_owned(),
        ];
        assert_eq!(
            names(&offered(&configured, true)),
            ["chacha20-poly1305@openssh.com", "aes256-ctr"]
        );
    }
}
