//! The `web_sessions` table: browser sessions, keyed by a digest of their id (see
//! `auth::store`, which decides what the data holds).

use sqlx::{PgExecutor, PgPool, Row};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::db::users::{CURRENT_COLUMNS, CurrentRow};

/// A stored session as loaded: its data (JSON), expiry, and the row of the user it is signed
/// in as, read by the same query.
pub struct Loaded {
    pub data: Vec<u8>,
    pub expires_at: OffsetDateTime,
    pub user: Option<CurrentRow>,
}

/// Writes a session; with `insert_only`, never over an existing one. Whether a row was written.
pub async fn save(
    db: impl PgExecutor<'_>,
    key: &str,
    user: Option<Uuid>,
    data: &[u8],
    expires_at: OffsetDateTime,
    insert_only: bool,
) -> Result<bool, sqlx::Error> {
    let done = if insert_only {
        sqlx::query!(
            "INSERT INTO web_sessions (id, user_id, data, expires_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (id) DO NOTHING",
            key,
            user,
            data,
            expires_at,
        )
        .execute(db)
        .await?
    } else {
        sqlx::query!(
            "INSERT INTO web_sessions (id, user_id, data, expires_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (id) DO UPDATE
             SET user_id = excluded.user_id, data = excluded.data, expires_at = excluded.expires_at",
            key,
            user,
            data,
            expires_at,
        )
        .execute(db)
        .await?
    };
    Ok(done.rows_affected() == 1)
}

/// The session with its user's [`CurrentRow`] columns (NULL when nobody is signed in).
// Runtime SQL: shares users::CURRENT_COLUMNS (one definition of is_approver) with the user
// loaders.
fn load_sql() -> &'static str {
    static SQL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    SQL.get_or_init(|| {
        format!(
            "SELECT s.data, s.expires_at, {CURRENT_COLUMNS}
             FROM web_sessions s LEFT JOIN users u ON u.id = s.user_id
             WHERE s.id = $1 AND s.expires_at > now()"
        )
    })
}

/// The unexpired session stored under `key`, with its user as they are now.
pub async fn load(db: &PgPool, key: &str) -> Result<Option<Loaded>, sqlx::Error> {
    // Runtime SQL: the text comes from load_sql (users::CURRENT_COLUMNS).
    let Some(row) = sqlx::query(load_sql()).bind(key).fetch_optional(db).await? else {
        return Ok(None);
    };
    let user_id: Option<Uuid> = row.try_get("id")?;
    let user = match user_id {
        Some(id) => Some(CurrentRow {
            id,
            username: row.try_get("username")?,
            display_name: row.try_get("display_name")?,
            role: row.try_get("role")?,
            time_zone: row.try_get("time_zone")?,
            disabled: row.try_get("disabled")?,
            is_approver: row.try_get("is_approver")?,
        }),
        None => None,
    };
    Ok(Some(Loaded {
        data: row.try_get("data")?,
        expires_at: row.try_get("expires_at")?,
        user,
    }))
}

/// Removes the session stored under `key`.
pub async fn delete(db: &PgPool, key: &str) -> Result<(), sqlx::Error> {
    sqlx::query!("DELETE FROM web_sessions WHERE id = $1", key)
        .execute(db)
        .await
        .map(|_| ())
}

/// Removes every expired session.
pub async fn delete_expired(db: &PgPool) -> Result<(), sqlx::Error> {
    sqlx::query!("DELETE FROM web_sessions WHERE expires_at <= now()")
        .execute(db)
        .await
        .map(|_| ())
}
