//! Password hashing with argon2id (OWASP's minimum: 19 MiB, 2 iterations, 1 lane), always on
//! a blocking thread so a sign-in never stalls the async runtime.

use std::sync::OnceLock;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use rand::rngs::OsRng;

use crate::error::AppError;

/// Hashes computed at once. Each takes 19 MiB for about 50 ms: without a bound, a burst of
/// sign-ins would run one per blocking thread (up to 512) and hold gigabytes.
static HASHING: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(4);

fn argon2() -> Argon2<'static> {
    // The parameters are constants known to be valid; default() is the same values.
    let params = Params::new(19 * 1024, 2, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Hashes a password into a PHC string (algorithm, parameters and salt included).
pub fn hash_blocking(password: &str) -> Result<String, argon2::password_hash::Error> {
    let salt = SaltString::generate(&mut OsRng);
    Ok(argon2()
        .hash_password(password.as_bytes(), &salt)?
        .to_string())
}

/// Hashes on a blocking thread.
pub async fn hash(password: String) -> Result<String, AppError> {
    let _permit = HASHING.acquire().await.map_err(AppError::internal)?;
    tokio::task::spawn_blocking(move || hash_blocking(&password))
        .await
        .map_err(AppError::internal)?
        .map_err(AppError::internal)
}

/// A hash of a random password, verified against when the account does not exist (or cannot
/// sign in), so that every failed sign-in costs the same time.
fn decoy_hash() -> &'static str {
    static DECOY: OnceLock<String> = OnceLock::new();
    DECOY.get_or_init(|| {
        let random = uuid::Uuid::new_v4().to_string();
        hash_blocking(&random).unwrap_or_default()
    })
}

/// Verifies `password` against `stored` (or against the decoy when `stored` is `None`, which
/// always fails) on a blocking thread. Same cost either way.
pub async fn verify(password: String, stored: Option<String>) -> Result<bool, AppError> {
    let _permit = HASHING.acquire().await.map_err(AppError::internal)?;
    tokio::task::spawn_blocking(move || {
        let real = stored.is_some();
        let phc = stored.unwrap_or_else(|| decoy_hash().to_owned());
        let ok = match PasswordHash::new(&phc) {
            Ok(parsed) => argon2()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok(),
            Err(_) => {
                tracing::error!("a stored password hash is not a valid PHC string");
                false
            }
        };
        real && ok
    })
    .await
    .map_err(AppError::internal)
}

/// Computes the decoy hash ahead of the first sign-in, so that one is not slower.
pub fn warm_up() {
    let _ = decoy_hash();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_verify_and_record_their_parameters() {
        let h = hash("correct horse battery".into()).await.unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(
            verify("correct horse battery".into(), Some(h.clone()))
                .await
                .unwrap()
        );
        assert!(!verify("wrong".into(), Some(h)).await.unwrap());
        assert!(!verify("anything".into(), None).await.unwrap());
    }
}
