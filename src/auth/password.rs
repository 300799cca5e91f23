//! Password hashing with argon2id (OWASP's minimum: 19 MiB, 2 iterations, 1 lane), always on
//! one of a few dedicated threads so a sign-in never stalls the async runtime.

use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use rand::rngs::OsRng;

use crate::auth::AuthError;

/// Threads that compute hashes, so at most this many run at once. Each hash takes 19 MiB for
/// about 50 ms. They are the same threads every time: on tokio's blocking pool a burst of
/// sign-ins would run on many different threads, and the C allocator keeps a freed 19 MiB
/// block in each thread's arena for reuse, which left the server holding over 500 MiB after
/// 64 sign-ins. Four long-lived threads hold at most four such blocks.
const HASHING_THREADS: usize = 4;

type Job = Box<dyn FnOnce() + Send>;

fn hashing_queue() -> &'static mpsc::Sender<Job> {
    static QUEUE: OnceLock<mpsc::Sender<Job>> = OnceLock::new();
    QUEUE.get_or_init(|| {
        let (send, receive) = mpsc::channel::<Job>();
        let receive = std::sync::Arc::new(Mutex::new(receive));
        for i in 0..HASHING_THREADS {
            let receive = receive.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("argon2-{i}"))
                .spawn(move || {
                    loop {
                        // Hold the lock only to take a job, never while running it.
                        let job = match receive.lock() {
                            Ok(r) => r.recv(),
                            Err(_) => return,
                        };
                        match job {
                            Ok(job) => job(),
                            Err(_) => return,
                        }
                    }
                });
            if let Err(e) = spawned {
                tracing::error!(error = %e, "cannot start a password hashing thread");
            }
        }
        send
    })
}

/// Runs `work` on a hashing thread and waits for its result without blocking the runtime.
async fn on_hashing_thread<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, AuthError> {
    let (done, result) = tokio::sync::oneshot::channel();
    let job: Job = Box::new(move || {
        let _ = done.send(work());
    });
    hashing_queue().send(job).map_err(AuthError::internal)?;
    result
        .await
        .map_err(|_| AuthError::internal("no password hashing thread is running"))
}

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

/// Hashes on a hashing thread.
pub async fn hash(password: String) -> Result<String, AuthError> {
    on_hashing_thread(move || hash_blocking(&password))
        .await?
        .map_err(AuthError::internal)
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
/// always fails) on a hashing thread. Same cost either way.
pub async fn verify(password: String, stored: Option<String>) -> Result<bool, AuthError> {
    on_hashing_thread(move || {
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
