//! API tokens (`api_tokens`) and the API's idempotency keys (`api_idempotency_keys`).
//! Creating and revoking a token is written to the audit log in the same transaction.

use sqlx::postgres::types::PgInterval;
use sqlx::{PgConnection, PgExecutor};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use crate::db::audit::{self, Actor, Entry};
use crate::db::users::CurrentRow;
use crate::domain::api_token::{NewToken, Scope};
use crate::domain::role::Role;

/// A token as its owner's list shows it (never its secret).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Token {
    pub id: Uuid,
    pub name: String,
    pub scopes: Vec<Scope>,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_used_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub revoked_at: Option<OffsetDateTime>,
}

impl Token {
    /// Neither revoked nor expired.
    pub fn usable(&self, now: OffsetDateTime) -> bool {
        self.revoked_at.is_none() && self.expires_at > now
    }
}

/// The audit entry's JSON of a token: what it is, never its digest.
fn describe(owner: &str, t: &Token) -> String {
    serde_json::json!({
        "owner": owner,
        "name": t.name,
        "scopes": t.scopes,
        "expires_at": t.expires_at.unix_timestamp(),
        "revoked": t.revoked_at.is_some(),
    })
    .to_string()
}

/// Stores a new token of `user` (its secret's digest only) and audits it.
pub async fn create(
    tx: &mut PgConnection,
    actor: &Actor,
    user: Uuid,
    owner_name: &str,
    new: &NewToken,
    digest: &[u8],
) -> Result<Token, sqlx::Error> {
    let token = sqlx::query_as!(
        Token,
        r#"INSERT INTO api_tokens AS t (id, user_id, name, token_sha256, scopes, expires_at)
         VALUES ($1, $2, $3, $4, $5, now() + $6)
         RETURNING t.id, t.name, t.scopes AS "scopes: Vec<Scope>", t.expires_at,
                   t.last_used_at, t.created_at, t.revoked_at"#,
        Uuid::now_v7(),
        user,
        &new.name,
        digest,
        &new.scopes as &[Scope],
        PgInterval::try_from(Duration::days(new.days)).map_err(sqlx::Error::Encode)?,
    )
    .fetch_one(&mut *tx)
    .await?;
    audit::record(
        tx,
        actor,
        Entry {
            action: "create",
            object_kind: "api_token",
            object_id: Some(token.id),
            object_name: &token.name,
            before: None,
            after: Some(describe(owner_name, &token)),
        },
    )
    .await?;
    Ok(token)
}

/// The user's tokens, newest first.
pub async fn list(db: impl PgExecutor<'_>, user: Uuid) -> Result<Vec<Token>, sqlx::Error> {
    sqlx::query_as!(
        Token,
        r#"SELECT t.id, t.name, t.scopes AS "scopes: Vec<Scope>", t.expires_at, t.last_used_at,
                  t.created_at, t.revoked_at
         FROM api_tokens t WHERE t.user_id = $1
         ORDER BY t.created_at DESC, t.id DESC"#,
        user,
    )
    .fetch_all(db)
    .await
}

/// Revokes one of the user's tokens and audits it; `None` when it is not theirs or was
/// already revoked.
pub async fn revoke(
    tx: &mut PgConnection,
    actor: &Actor,
    user: Uuid,
    owner_name: &str,
    id: Uuid,
) -> Result<Option<Token>, sqlx::Error> {
    let Some(token) = sqlx::query_as!(
        Token,
        r#"UPDATE api_tokens t SET revoked_at = now()
         WHERE t.id = $1 AND t.user_id = $2 AND t.revoked_at IS NULL
         RETURNING t.id, t.name, t.scopes AS "scopes: Vec<Scope>", t.expires_at,
                   t.last_used_at, t.created_at, t.revoked_at"#,
        id,
        user,
    )
    .fetch_optional(&mut *tx)
    .await?
    else {
        return Ok(None);
    };
    audit::record(
        tx,
        actor,
        Entry {
            action: "revoke",
            object_kind: "api_token",
            object_id: Some(token.id),
            object_name: &token.name,
            before: None,
            after: Some(describe(owner_name, &token)),
        },
    )
    .await?;
    Ok(Some(token))
}

/// The owner and scopes behind a token's digest, when the token is neither revoked nor
/// expired and its owner not disabled; its last use is stamped (at most once a minute, so a
/// busy script does not write a row per call).
pub async fn authenticate(
    db: impl PgExecutor<'_>,
    digest: &[u8],
) -> Result<Option<(CurrentRow, Vec<Scope>)>, sqlx::Error> {
    let found = sqlx::query!(
        r#"WITH used AS (
               UPDATE api_tokens SET last_used_at = now()
               WHERE token_sha256 = $1 AND revoked_at IS NULL AND expires_at > now()
                 AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')
           )
           SELECT u.id, u.username, u.display_name, u.role AS "role: Role", u.time_zone,
                  u.disabled, user_is_approver(u.id) AS "is_approver!",
                  t.scopes AS "scopes: Vec<Scope>"
           FROM api_tokens t JOIN users u ON u.id = t.user_id
           WHERE t.token_sha256 = $1 AND t.revoked_at IS NULL AND t.expires_at > now()
             AND NOT u.disabled"#,
        digest
    )
    .fetch_optional(db)
    .await?;
    Ok(found.map(|f| {
        let user = CurrentRow {
            id: f.id,
            username: f.username,
            display_name: f.display_name,
            role: f.role,
            time_zone: f.time_zone,
            disabled: f.disabled,
            is_approver: f.is_approver,
        };
        (user, f.scopes)
    }))
}

/// Claims an idempotency key for `request` in the caller's transaction; false when the key
/// was claimed before (a concurrent claim waits here until the first transaction ends).
pub async fn claim_key(
    tx: &mut PgConnection,
    user: Uuid,
    key: &str,
    body_sha256: &[u8],
    request: Uuid,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query!(
        "INSERT INTO api_idempotency_keys (user_id, key, body_sha256, request_id)
         VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
        user,
        key,
        body_sha256,
        request,
    )
    .execute(tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// The body digest and request of a claimed key.
pub async fn claimed(
    db: impl PgExecutor<'_>,
    user: Uuid,
    key: &str,
) -> Result<Option<(Vec<u8>, Uuid)>, sqlx::Error> {
    let row = sqlx::query!(
        "SELECT body_sha256, request_id FROM api_idempotency_keys WHERE user_id = $1 AND key = $2",
        user,
        key,
    )
    .fetch_optional(db)
    .await?;
    Ok(row.map(|r| (r.body_sha256, r.request_id)))
}
