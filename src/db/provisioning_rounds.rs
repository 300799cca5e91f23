//! A session's grants after the first: the fresh grant an Unlock queues when the Lock took
//! the access away on the target (migration 20261130000013, rounds), and an extension the
//! target refused.

use sqlx::{FromRow, PgConnection};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::domain::catalog::LoginMode;
use crate::domain::provisioner::ProvisionerKind;
use crate::domain::status::SessionStatus;

/// A fresh grant queued by an Unlock, with what it needs.
#[derive(Debug, FromRow)]
pub struct ToRegrant {
    pub id: i64,
    pub session_id: Uuid,
    pub status: SessionStatus,
    pub provisioner: ProvisionerKind,
    pub host: String,
    pub port: i32,
    pub host_key: Option<String>,
    pub login_mode: LoginMode,
    pub account: String,
    pub target_groups: Vec<String>,
    pub credential_id: Option<Uuid>,
    pub service_user: Option<String>,
    pub sealed_secret: Option<Vec<u8>>,
    pub database_name: Option<String>,
    pub provisioner_command: Option<String>,
    pub resource_name: String,
    pub activity_name: String,
    pub requested_start: OffsetDateTime,
    pub ends_at: OffsetDateTime,
}

/// Claims one queued fresh grant of a session that is usable again, once every earlier
/// revoke of it is done (a revoke still pending would otherwise undo the fresh grant). The
/// session's row stays locked until the caller's transaction ends, as for a first grant:
/// nothing can lock or end it while its grant is under way, so the revoke that follows never
/// overtakes it.
pub async fn claim_regrant(tx: &mut PgConnection) -> Result<Option<ToRegrant>, sqlx::Error> {
    // Runtime SQL: the connectable status set is rendered from the domain (status_sql).
    sqlx::query_as(&format!(
        "SELECT p.id, p.session_id, s.status, p.provisioner, p.host, p.port, p.host_key,
                p.login_mode, p.account, p.target_groups, c.id AS credential_id,
                c.username AS service_user, c.secret_ciphertext AS sealed_secret,
                p.database_name, p.provisioner_command, s.resource_name, s.activity_name,
                s.requested_start, s.ends_at
         FROM provision_steps p
         JOIN activity_sessions s ON s.id = p.session_id
         LEFT JOIN service_credentials c ON c.id = p.credential_id
         WHERE p.action = 'grant' AND p.round > 0 AND p.done_at IS NULL
           AND s.status IN {connectable}
           -- Every earlier removal confirmed, and this grant not already undone (a Lock
           -- that came before the grant was made queues its revoke; the next Unlock queues
           -- another grant).
           AND NOT EXISTS (SELECT 1 FROM provision_steps r
                           WHERE r.session_id = p.session_id AND r.action = 'revoke'
                             AND (r.done_at IS NULL OR r.round = p.round))
         ORDER BY p.created_at
         LIMIT 1
         FOR UPDATE OF p SKIP LOCKED
         FOR NO KEY UPDATE OF s SKIP LOCKED",
        connectable = *crate::db::status_sql::CONNECTABLE
    ))
    .fetch_optional(&mut *tx)
    .await
}

/// A fresh grant made: the session shows the account and its new (sealed) password, and the
/// step remembers the end the target accepted.
pub async fn regrant_done(
    tx: &mut PgConnection,
    step: i64,
    session: Uuid,
    account: &str,
    sealed_password: Option<&[u8]>,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "UPDATE activity_sessions SET login_account = $2, password_ciphertext = $3,
                updated_at = now()
         WHERE id = $1",
        session,
        account,
        sealed_password
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query!(
        "UPDATE provision_steps p
         SET done_at = now(), last_error = NULL, attempts = attempts + 1, account = $2,
             valid_until = s.ends_at
         FROM activity_sessions s
         WHERE p.id = $1 AND s.id = p.session_id",
        step,
        account
    )
    .execute(&mut *tx)
    .await
    .map(|_| ())
}

/// A fresh grant that failed: its reason is kept on the step (the session ends as Failed,
/// which queues the removal of whatever part was made).
pub async fn regrant_failed(
    tx: &mut PgConnection,
    step: i64,
    error: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "UPDATE provision_steps SET attempts = attempts + 1, last_error = $2 WHERE id = $1",
        step,
        error
    )
    .execute(&mut *tx)
    .await
    .map(|_| ())
}

/// The target refused to move the end of a session's access to `tried`: the session ends
/// when the target's access does (the end it accepted last), and the extension it used is
/// given back. Only if the end is still `tried` (a later extension is tried on its own).
/// Returns the end the session keeps, if it was moved back.
pub async fn extension_refused(
    tx: &mut PgConnection,
    step: i64,
    session: Uuid,
    tried: OffsetDateTime,
    error: &str,
) -> Result<Option<OffsetDateTime>, sqlx::Error> {
    sqlx::query!(
        "UPDATE provision_steps SET last_error = $2 WHERE id = $1",
        step,
        error
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query_scalar!(
        "UPDATE activity_sessions s
         SET ends_at = p.valid_until, extensions_used = greatest(s.extensions_used - 1, 0),
             updated_at = now()
         FROM provision_steps p
         WHERE p.id = $1 AND s.id = $2 AND p.session_id = s.id AND s.ends_at = $3
           AND p.valid_until IS NOT NULL AND p.valid_until > s.requested_start
         RETURNING s.ends_at",
        step,
        session,
        tried
    )
    .fetch_optional(&mut *tx)
    .await
}
