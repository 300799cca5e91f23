//! The `installation` table: facts about this installation, by key (such as when the demo
//! data was loaded).

use sqlx::PgExecutor;

/// The value stored under `key`.
pub async fn get(db: impl PgExecutor<'_>, key: &str) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar!("SELECT value FROM installation WHERE key = $1", key)
        .fetch_optional(db)
        .await
}

/// Stores the current time under `key`, unless something is stored there already.
pub async fn mark_now(db: impl PgExecutor<'_>, key: &str) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "INSERT INTO installation (key, value) VALUES ($1, now()::text) ON CONFLICT DO NOTHING",
        key
    )
    .execute(db)
    .await
    .map(|_| ())
}
