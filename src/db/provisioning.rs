//! Service credentials and the recorded grant and revoke steps of sessions on their targets
//! (`crate::provision`, driven by the worker).

use sqlx::{FromRow, PgConnection, PgExecutor};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::domain::catalog::LoginMode;
use crate::domain::provisioner::OwnedObjects;
use crate::domain::provisioner::ProvisionerKind;

/// A new service credential; `sealed_secret` is sealed with the credential's id.
pub struct NewCredential<'a> {
    pub id: Uuid,
    pub name: &'a str,
    pub username: &'a str,
    pub sealed_secret: &'a [u8],
}

/// Stores a service credential.
pub async fn create_credential(
    db: impl PgExecutor<'_>,
    c: &NewCredential<'_>,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "INSERT INTO service_credentials (id, name, username, secret_ciphertext)
         VALUES ($1, $2, $3, $4)",
        c.id,
        c.name,
        c.username,
        c.sealed_secret
    )
    .execute(db)
    .await
    .map(|_| ())
}

/// A Provisioning session whose resource has a real provisioner, with what its grant needs.
#[derive(Debug)]
pub struct ToGrant {
    pub id: Uuid,
    pub requester_username: String,
    pub resource_name: String,
    pub login_mode: LoginMode,
    pub login_template: Option<String>,
    pub target_groups: Vec<String>,
    pub provisioner: ProvisionerKind,
    pub host: String,
    pub port: i32,
    pub host_key: Option<String>,
    pub credential_id: Option<Uuid>,
    pub service_user: Option<String>,
    pub sealed_secret: Option<Vec<u8>>,
    pub database_name: Option<String>,
    pub provisioner_command: Option<String>,
    pub activity_name: String,
    pub owned_objects: OwnedObjects,
    pub requested_start: OffsetDateTime,
    /// The end `make_available` will set, computed now (the postgresql role's VALID UNTIL).
    pub ends_at: OffsetDateTime,
}

/// Claims one Provisioning session on a target with a real provisioner, locking it until the
/// caller's transaction ends (other instances skip it meanwhile, and nothing can end it while
/// its grant is under way, so a revoke never overtakes the grant it undoes). `NO KEY`: the
/// step rows that reference the session must still be insertable from another connection.
pub async fn claim_grant(tx: &mut PgConnection) -> Result<Option<ToGrant>, sqlx::Error> {
    sqlx::query_as!(
        ToGrant,
        r#"SELECT s.id, u.username AS requester_username, s.resource_name,
                r.login_mode AS "login_mode: LoginMode",
                r.login_template, r.target_groups, res.provisioner AS "provisioner: ProvisionerKind",
                res.address AS host,
                coalesce(res.port, CASE WHEN res.provisioner = 'postgresql' THEN 5432 ELSE 22 END)
                    AS "port!",
                res.host_key, c.id AS "credential_id?", c.username AS "service_user?",
                c.secret_ciphertext AS "sealed_secret?", res.database_name, res.provisioner_command,
                s.activity_name, a.owned_objects AS "owned_objects: OwnedObjects", s.requested_start,
                greatest(s.requested_start, now()) + make_interval(mins => r.duration_minutes)
                    AS "ends_at!"
         FROM activity_sessions s
         JOIN requests r ON r.id = s.request_id
         JOIN users u ON u.id = s.requester_id
         JOIN resources res ON res.id = s.resource_id
         JOIN activities a ON a.id = r.activity_id
         LEFT JOIN service_credentials c ON c.id = res.credential_id
         WHERE s.status = 'provisioning' AND res.provisioner <> 'simulated'
         ORDER BY s.requested_start
         LIMIT 1
         FOR NO KEY UPDATE OF s SKIP LOCKED"#
    )
    .fetch_optional(&mut *tx)
    .await
}

/// What a step does, as recorded (no secret).
pub struct StepRecord<'a> {
    pub session: Uuid,
    pub provisioner: ProvisionerKind,
    pub credential: Option<Uuid>,
    pub host: &'a str,
    pub port: i32,
    pub host_key: Option<&'a str>,
    pub mode: LoginMode,
    pub account: &'a str,
    pub groups: &'a [String],
    pub database_name: Option<&'a str>,
    pub command: Option<&'a str>,
    pub owned_objects: OwnedObjects,
}

/// Records that a grant is about to be made, committed on its own before anything happens on
/// the target: if this instance dies halfway, the session's end still finds the step and
/// removes whatever was made. A repeated grant counts another attempt.
pub async fn record_grant_intent(
    db: impl PgExecutor<'_>,
    s: &StepRecord<'_>,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "INSERT INTO provision_steps (session_id, action, provisioner, credential_id, host, port,
                                      host_key, login_mode, account, target_groups, attempts,
                                      database_name, provisioner_command, owned_objects)
         VALUES ($1, 'grant', $2, $3, $4, $5, $6, $7, $8, $9, 1, $10, $11, $12)
         ON CONFLICT (session_id, action, round) DO UPDATE
         SET attempts = provision_steps.attempts + 1, account = EXCLUDED.account,
             target_groups = EXCLUDED.target_groups",
        s.session,
        s.provisioner as ProvisionerKind,
        s.credential,
        s.host,
        s.port,
        s.host_key,
        s.mode as LoginMode,
        s.account,
        s.groups,
        s.database_name,
        s.command,
        s.owned_objects as OwnedObjects
    )
    .execute(db)
    .await
    .map(|_| ())
}

/// Marks a session's grant done, or failed with `error`.
pub async fn finish_grant(
    tx: &mut PgConnection,
    session: Uuid,
    error: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "UPDATE provision_steps
         SET done_at = CASE WHEN $2::text IS NULL THEN now() END, last_error = $2
         WHERE session_id = $1 AND action = 'grant' AND round = 0",
        session,
        error
    )
    .execute(&mut *tx)
    .await
    .map(|_| ())
}

/// After a successful grant: the account the target ended up with (a command may answer its
/// own) and the end of the window the target accepted (from the session, now Available).
pub async fn grant_applied(
    tx: &mut PgConnection,
    session: Uuid,
    account: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "UPDATE provision_steps p SET account = $2, valid_until = s.ends_at
         FROM activity_sessions s
         WHERE p.session_id = $1 AND p.action = 'grant' AND p.round = 0 AND s.id = p.session_id",
        session,
        account
    )
    .execute(&mut *tx)
    .await
    .map(|_| ())
}

/// A live session whose end moved since its target last learned it (postgresql, command, and
/// linux_ssh ephemeral accounts, which expire).
#[derive(Debug, FromRow)]
pub struct ToExtend {
    pub id: i64,
    pub session_id: Uuid,
    pub provisioner: ProvisionerKind,
    pub provisioner_command: Option<String>,
    pub login_mode: LoginMode,
    pub target_groups: Vec<String>,
    pub resource_name: String,
    pub activity_name: String,
    pub requested_start: OffsetDateTime,
    pub host: String,
    pub port: i32,
    pub host_key: Option<String>,
    pub account: String,
    pub database_name: Option<String>,
    pub ends_at: OffsetDateTime,
    /// The end the target accepted last.
    pub valid_until: Option<OffsetDateTime>,
    pub attempts: i32,
    pub credential_id: Option<Uuid>,
    pub service_user: Option<String>,
    pub sealed_secret: Option<Vec<u8>>,
}

/// Claims one grant whose target must learn a new end, locked until the caller's transaction
/// ends. Should the session end meanwhile, its revoke may run beside this: the role is then
/// either still there (and dropped right after) or gone (nothing to extend).
pub async fn claim_extend(tx: &mut PgConnection) -> Result<Option<ToExtend>, sqlx::Error> {
    // Runtime SQL: the usable status set is rendered from the domain (status_sql).
    sqlx::query_as(&format!(
        "SELECT p.id, p.session_id, p.provisioner, p.provisioner_command, p.login_mode,
                p.target_groups, s.resource_name, s.activity_name, s.requested_start,
                p.host, p.port, p.host_key, p.account, p.database_name, s.ends_at,
                p.valid_until,
                p.attempts, c.id AS credential_id, c.username AS service_user,
                c.secret_ciphertext AS sealed_secret
         FROM provision_steps p
         JOIN activity_sessions s ON s.id = p.session_id
         LEFT JOIN service_credentials c ON c.id = p.credential_id
         WHERE p.action = 'grant'
           AND (p.provisioner IN ('postgresql', 'command')
                OR (p.provisioner = 'linux_ssh' AND p.login_mode = 'ephemeral'))
           AND p.done_at IS NOT NULL
           -- The session's live grant: not one a Lock already took back.
           AND NOT EXISTS (SELECT 1 FROM provision_steps r
                           WHERE r.session_id = p.session_id AND r.action = 'revoke'
                             AND r.round = p.round)
           AND p.valid_until IS DISTINCT FROM s.ends_at AND p.next_attempt_at <= now()
           AND s.status IN {usable}
         ORDER BY p.next_attempt_at
         LIMIT 1
         FOR UPDATE OF p SKIP LOCKED",
        usable = *crate::db::status_sql::USABLE
    ))
    .fetch_optional(&mut *tx)
    .await
}

/// Records that the target accepted `until`.
pub async fn extend_outcome(
    tx: &mut PgConnection,
    step: i64,
    until: OffsetDateTime,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "UPDATE provision_steps SET valid_until = $2, last_error = NULL WHERE id = $1",
        step,
        until
    )
    .execute(&mut *tx)
    .await
    .map(|_| ())
}

/// A revoke still to do.
#[derive(Debug)]
pub struct ToRevoke {
    pub id: i64,
    pub session_id: Uuid,
    pub provisioner: ProvisionerKind,
    pub host: String,
    pub port: i32,
    pub host_key: Option<String>,
    pub login_mode: LoginMode,
    pub account: String,
    pub target_groups: Vec<String>,
    pub attempts: i32,
    pub credential_id: Option<Uuid>,
    pub service_user: Option<String>,
    pub sealed_secret: Option<Vec<u8>>,
    pub database_name: Option<String>,
    pub provisioner_command: Option<String>,
    pub owned_objects: OwnedObjects,
    pub resource_name: String,
    pub activity_name: String,
    pub requested_start: OffsetDateTime,
    pub ends_at: OffsetDateTime,
}

/// Claims one due revoke, locked until the caller's transaction ends.
pub async fn claim_revoke(tx: &mut PgConnection) -> Result<Option<ToRevoke>, sqlx::Error> {
    sqlx::query_as!(
        ToRevoke,
        r#"SELECT p.id, p.session_id, p.provisioner AS "provisioner: ProvisionerKind", p.host,
                p.port, p.host_key, p.login_mode AS "login_mode: LoginMode",
                p.account, p.target_groups, p.attempts, c.id AS "credential_id?",
                c.username AS "service_user?", c.secret_ciphertext AS "sealed_secret?",
                p.database_name, p.provisioner_command,
                p.owned_objects AS "owned_objects: OwnedObjects", s.resource_name,
                s.activity_name, s.requested_start, s.ends_at
         FROM provision_steps p
         JOIN activity_sessions s ON s.id = p.session_id
         LEFT JOIN service_credentials c ON c.id = p.credential_id
         WHERE p.action = 'revoke' AND p.done_at IS NULL AND p.next_attempt_at <= now()
         ORDER BY p.next_attempt_at
         LIMIT 1
         FOR UPDATE OF p SKIP LOCKED"#
    )
    .fetch_optional(&mut *tx)
    .await
}

/// Marks a revoke done.
pub async fn revoke_done(tx: &mut PgConnection, step: i64) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "UPDATE provision_steps SET done_at = now(), last_error = NULL, attempts = attempts + 1
         WHERE id = $1",
        step
    )
    .execute(&mut *tx)
    .await
    .map(|_| ())
}

/// Records a failed revoke and when to try again.
pub async fn revoke_failed(
    tx: &mut PgConnection,
    step: i64,
    error: &str,
    retry_in: std::time::Duration,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "UPDATE provision_steps
         SET attempts = attempts + 1, last_error = $2,
             next_attempt_at = now() + make_interval(secs => $3)
         WHERE id = $1",
        step,
        error,
        retry_in.as_secs_f64()
    )
    .execute(&mut *tx)
    .await
    .map(|_| ())
}

/// A session's access removal that the target has not confirmed yet.
#[derive(Debug, Clone)]
pub struct PendingRemoval {
    pub account: String,
    pub host: String,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub next_attempt_at: OffsetDateTime,
}

/// The unconfirmed removal of a session's access, if any.
pub async fn pending_removal(
    db: impl PgExecutor<'_>,
    session: Uuid,
) -> Result<Option<PendingRemoval>, sqlx::Error> {
    sqlx::query_as!(
        PendingRemoval,
        "SELECT account, host, attempts, last_error, next_attempt_at FROM provision_steps
         WHERE session_id = $1 AND action = 'revoke' AND done_at IS NULL
         ORDER BY round DESC
         LIMIT 1",
        session
    )
    .fetch_optional(db)
    .await
}

/// How many ended sessions still have access on their target.
pub async fn pending_removals(db: impl PgExecutor<'_>) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar!(
        r#"SELECT count(*) AS "count!" FROM provision_steps
           WHERE action = 'revoke' AND done_at IS NULL"#
    )
    .fetch_one(db)
    .await
}
