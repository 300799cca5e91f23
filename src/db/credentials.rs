//! Service credentials as the administrators manage them (Admin > Service credentials). The
//! secret is written sealed and never read back here: only the provisioner opens it. Every
//! change writes its audit entry in the same transaction, without the secret.

use crate::db::resources::Removal;
use sqlx::{PgConnection, PgExecutor};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::db::audit::{self, Actor, Entry, WriteError};
use crate::domain::csv_import::KnownCredential;
use crate::domain::target_access::{CredentialInput, CredentialKind};

/// A credential as listed (no secret).
#[derive(Debug, Clone)]
pub struct Row {
    pub id: Uuid,
    pub name: String,
    pub username: String,
    pub kind: CredentialKind,
    /// How many resources use it.
    pub resources: i64,
    pub created_at: OffsetDateTime,
}

/// Every credential, by name.
pub async fn list(db: impl PgExecutor<'_>) -> Result<Vec<Row>, sqlx::Error> {
    sqlx::query_as!(
        Row,
        r#"SELECT c.id, c.name, c.username, c.kind AS "kind: CredentialKind", c.created_at,
                  (SELECT count(*) FROM resources r WHERE r.credential_id = c.id) AS "resources!"
           FROM service_credentials c
           ORDER BY lower(c.name) LIMIT 1000"#
    )
    .fetch_all(db)
    .await
}

/// One credential.
pub async fn get(db: impl PgExecutor<'_>, id: Uuid) -> Result<Option<Row>, sqlx::Error> {
    sqlx::query_as!(
        Row,
        r#"SELECT c.id, c.name, c.username, c.kind AS "kind: CredentialKind", c.created_at,
                  (SELECT count(*) FROM resources r WHERE r.credential_id = c.id) AS "resources!"
           FROM service_credentials c
           WHERE c.id = $1"#,
        id
    )
    .fetch_optional(db)
    .await
}

/// A credential's id by name (any letter case), for seed files and the CSV import.
pub async fn id_by_name(db: impl PgExecutor<'_>, name: &str) -> Result<Option<Uuid>, sqlx::Error> {
    sqlx::query_scalar!(
        "SELECT id FROM service_credentials WHERE lower(name) = lower($1)",
        name.trim()
    )
    .fetch_optional(db)
    .await
}

/// Every credential's id and kind by lower-case name, for the CSV import's plan.
pub async fn by_name(
    db: impl PgExecutor<'_>,
) -> Result<std::collections::HashMap<String, KnownCredential>, sqlx::Error> {
    let rows =
        sqlx::query!(r#"SELECT id, name, kind AS "kind: CredentialKind" FROM service_credentials"#)
            .fetch_all(db)
            .await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            let known = KnownCredential {
                id: r.id,
                kind: r.kind,
            };
            (r.name.to_lowercase(), known)
        })
        .collect())
}

const NAME_KEY: &str = "service_credentials_name_key";

/// The audit log's view of a credential: the row without its secret.
async fn snapshot(tx: &mut PgConnection, id: Uuid) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar!(
        r#"SELECT (to_jsonb(c) - 'secret_ciphertext')::text AS "snapshot!"
           FROM service_credentials c WHERE id = $1"#,
        id
    )
    .fetch_optional(tx)
    .await
}

/// Stores a new credential; `seal` seals its secret with the credential's id.
pub async fn create(
    tx: &mut PgConnection,
    actor: &Actor,
    c: &CredentialInput,
    seal: impl FnOnce(Uuid, &str) -> Vec<u8>,
) -> Result<Uuid, WriteError> {
    let id = Uuid::now_v7();
    let sealed = seal(id, c.secret.as_deref().unwrap_or_default());
    sqlx::query!(
        "INSERT INTO service_credentials (id, name, username, kind, secret_ciphertext)
         VALUES ($1, $2, $3, $4, $5)",
        id,
        c.name,
        c.username,
        c.kind as CredentialKind,
        sealed
    )
    .execute(&mut *tx)
    .await
    .map_err(|e| WriteError::from_unique(e, NAME_KEY))?;
    let after = snapshot(tx, id).await?;
    record(tx, actor, "create", id, &c.name, None, after).await?;
    Ok(id)
}

/// Changes a credential's name, user and kind, and replaces its secret when a new one was
/// given (the audit entry says so with `secret_replaced`, never with the secret).
pub async fn update(
    tx: &mut PgConnection,
    actor: &Actor,
    id: Uuid,
    c: &CredentialInput,
    seal: impl FnOnce(Uuid, &str) -> Vec<u8>,
) -> Result<(), WriteError> {
    sqlx::query!(
        "SELECT 1 AS one FROM service_credentials WHERE id = $1 FOR UPDATE",
        id
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(WriteError::NotFound)?;
    let before = snapshot(tx, id).await?;
    let sealed = c.secret.as_deref().map(|s| seal(id, s));
    sqlx::query!(
        "UPDATE service_credentials
         SET name = $2, username = $3, kind = $4,
             secret_ciphertext = coalesce($5, secret_ciphertext), updated_at = now()
         WHERE id = $1",
        id,
        c.name,
        c.username,
        c.kind as CredentialKind,
        sealed
    )
    .execute(&mut *tx)
    .await
    .map_err(|e| WriteError::from_unique(e, NAME_KEY))?;
    let after: Option<String> = sqlx::query_scalar!(
        r#"SELECT (to_jsonb(c) - 'secret_ciphertext'
                   || jsonb_build_object('secret_replaced', $2::boolean))::text AS "snapshot!"
           FROM service_credentials c WHERE id = $1"#,
        id,
        sealed.is_some()
    )
    .fetch_optional(&mut *tx)
    .await?;
    record(tx, actor, "update", id, &c.name, before, after).await?;
    Ok(())
}

/// Deletes a credential no resource uses; `Ok(Err(message))` names the resources that do.
/// Steps still to run for a session keep it too (a pending revoke, or the grant of a session
/// still on, still needs it), and the message names those sessions.
pub async fn remove(tx: &mut PgConnection, actor: &Actor, id: Uuid) -> Result<Removal, WriteError> {
    let name: String = sqlx::query_scalar!(
        "SELECT name FROM service_credentials WHERE id = $1 FOR UPDATE",
        id
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(WriteError::NotFound)?;
    let resources: Vec<String> = sqlx::query_scalar!(
        "SELECT name FROM resources WHERE credential_id = $1 ORDER BY lower(name)",
        id
    )
    .fetch_all(&mut *tx)
    .await?;
    if !resources.is_empty() {
        return Ok(Removal::InUse(format!(
            "{name} cannot be deleted: it is used by resources: {}. Give them another credential first.",
            resources.join(", ")
        )));
    }
    // Live uses only: a removal still to confirm on its target, or a grant still to make for
    // a session that is still on. A grant that will never run (its session ended before the
    // worker got to it, or it failed) uses nothing.
    // Runtime SQL: the live status set is rendered from the domain (status_sql).
    let uses: Vec<(Uuid, String, String)> = sqlx::query_as(&format!(
        "SELECT DISTINCT s.id, s.resource_name, p.action::text
         FROM provision_steps p JOIN activity_sessions s ON s.id = p.session_id
         WHERE p.credential_id = $1 AND p.done_at IS NULL
           AND (p.action = 'revoke'
                OR (p.action = 'grant' AND s.status IN {live}))
         ORDER BY s.id",
        live = *crate::db::status_sql::LIVE
    ))
    .bind(id)
    .fetch_all(&mut *tx)
    .await?;
    if !uses.is_empty() {
        let listed: Vec<String> = uses
            .iter()
            .take(10)
            .map(|(session, resource, action)| {
                let what = if action == "revoke" {
                    "access removal pending"
                } else {
                    "access still to grant"
                };
                format!(
                    "{resource} (session {}, {what})",
                    crate::domain::provision::short_id(*session)
                )
            })
            .collect();
        let more = if uses.len() > listed.len() {
            format!(" and {} more", uses.len() - listed.len())
        } else {
            String::new()
        };
        return Ok(Removal::InUse(format!(
            "{name} cannot be deleted: sessions still need it on their target: {}{more}. Try again once the worker has finished with them.",
            listed.join(", ")
        )));
    }
    let before = snapshot(tx, id).await?;
    // Finished steps keep their history, without the credential they used.
    sqlx::query!(
        "UPDATE provision_steps SET credential_id = NULL WHERE credential_id = $1",
        id
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query!("DELETE FROM service_credentials WHERE id = $1", id)
        .execute(&mut *tx)
        .await?;
    record(tx, actor, "delete", id, &name, before, None).await?;
    Ok(Removal::Deleted(name))
}

async fn record(
    tx: &mut PgConnection,
    actor: &Actor,
    action: &str,
    id: Uuid,
    name: &str,
    before: Option<String>,
    after: Option<String>,
) -> Result<(), sqlx::Error> {
    audit::record(
        tx,
        actor,
        Entry {
            action,
            object_kind: "service_credential",
            object_id: Some(id),
            object_name: name,
            before,
            after,
        },
    )
    .await
}

/// The credentials for the resource form's select: id, name and user.
pub async fn options(db: impl PgExecutor<'_>) -> Result<Vec<(Uuid, String, String)>, sqlx::Error> {
    let rows =
        sqlx::query!("SELECT id, name, username FROM service_credentials ORDER BY lower(name)")
            .fetch_all(db)
            .await?;
    Ok(rows
        .into_iter()
        .map(|r| (r.id, r.name, r.username))
        .collect())
}
