//! The `web_sessions` table: browser sessions, keyed by a digest of their id (see
//! `auth::store`, which decides what the data holds).

use sqlx::{PgExecutor, PgPool};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::db::users::CurrentRow;
use crate::domain::role::Role;

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

/// The unexpired session stored under `key`, with its user as they are now.
pub async fn load(db: &PgPool, key: &str) -> Result<Option<Loaded>, sqlx::Error> {
    let Some(row) = sqlx::query!(
        r#"SELECT s.data, s.expires_at, u.id AS "id?", u.username AS "username?",
                u.display_name AS "display_name?", u.role AS "role?: Role",
                u.time_zone AS "time_zone?", u.disabled AS "disabled?",
                user_is_approver(u.id) AS "is_approver?"
           FROM web_sessions s LEFT JOIN users u ON u.id = s.user_id
           WHERE s.id = $1 AND s.expires_at > now()"#,
        key
    )
    .fetch_optional(db)
    .await?
    else {
        return Ok(None);
    };
    let user = match (
        row.id,
        row.username,
        row.display_name,
        row.role,
        row.time_zone,
    ) {
        (Some(id), Some(username), Some(display_name), Some(role), Some(time_zone)) => {
            Some(CurrentRow {
                id,
                username,
                display_name,
                role,
                time_zone,
                disabled: row.disabled.unwrap_or(true),
                is_approver: row.is_approver.unwrap_or(false),
            })
        }
        _ => None,
    };
    Ok(Some(Loaded {
        data: row.data,
        expires_at: row.expires_at,
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
