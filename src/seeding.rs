//! Applying a seed file: its users' passwords hashed first (argon2 is slow and needs no
//! database), then everything written in one transaction by `db::seed`. Above both `auth`
//! and `db`, so that `db` needs no password hashing.

use std::collections::HashMap;

use sqlx::PgPool;

use crate::auth::password;
use crate::domain::seed::Seed;

pub use crate::db::seed::{ApplyError, Summary};

/// Applies `seed` in one transaction: all of it, or nothing.
pub async fn apply(pool: &PgPool, seed: &Seed) -> Result<Summary, ApplyError> {
    let mut hashes = HashMap::new();
    for user in &seed.users {
        if let Some(p) = &user.password {
            let h = password::hash(p.clone())
                .await
                .map_err(|e| ApplyError::Hash(e.to_string()))?;
            hashes.insert(user.username.as_str().to_lowercase(), h);
        }
    }
    crate::db::seed::apply_hashed(pool, seed, &hashes).await
}
