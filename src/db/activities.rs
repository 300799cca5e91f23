//! Activities as the administrators manage them: list, create, edit, clone, delete (or
//! archive). Every change writes its audit entry in the same transaction.

use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

use crate::db::audit::{self, Actor, Choice, Entry, WriteError};
use crate::domain::admin_input::ActivityInput;
use crate::domain::catalog::{LoginMode, Protocol};

/// An activity as stored.
#[derive(Debug, Clone)]
pub struct Row {
    pub id: Uuid,
    pub name: String,
    pub description: String,
    pub platform: String,
    pub protocol: Protocol,
    pub login_mode: LoginMode,
    pub login_template: Option<String>,
    pub target_groups: Vec<String>,
    pub file_transfer: bool,
    pub revoke_on_lock: bool,
    pub archived: bool,
    /// The access policies that grant it, comma separated.
    pub policies: String,
}

/// Activities matching `search` in name, platform or description, by name.
pub async fn list(
    db: impl PgExecutor<'_>,
    search: &str,
    archived: bool,
) -> Result<Vec<Row>, sqlx::Error> {
    sqlx::query_as!(
        Row,
        r#"SELECT a.id, a.name, a.description, a.platform, a.protocol AS "protocol: Protocol",
                  a.login_mode AS "login_mode: LoginMode", a.login_template, a.target_groups,
                  a.file_transfer, a.revoke_on_lock, a.archived_at IS NOT NULL AS "archived!",
                  COALESCE((SELECT string_agg(p.name, ', ' ORDER BY lower(p.name))
                            FROM policy_activities pa JOIN access_policies p ON p.id = pa.policy_id
                            WHERE pa.activity_id = a.id), '') AS "policies!"
           FROM activities a
           WHERE ($1 = '' OR strpos(lower(a.name), lower($1)) > 0
                  OR strpos(lower(a.platform), lower($1)) > 0
                  OR strpos(lower(a.description), lower($1)) > 0)
             AND ($2 OR a.archived_at IS NULL)
           ORDER BY lower(a.name) LIMIT 1000"#,
        search,
        archived
    )
    .fetch_all(db)
    .await
}

pub async fn get(db: impl PgExecutor<'_>, id: Uuid) -> Result<Option<Row>, sqlx::Error> {
    sqlx::query_as!(
        Row,
        r#"SELECT a.id, a.name, a.description, a.platform, a.protocol AS "protocol: Protocol",
                  a.login_mode AS "login_mode: LoginMode", a.login_template, a.target_groups,
                  a.file_transfer, a.revoke_on_lock, a.archived_at IS NOT NULL AS "archived!",
                  COALESCE((SELECT string_agg(p.name, ', ' ORDER BY lower(p.name))
                            FROM policy_activities pa JOIN access_policies p ON p.id = pa.policy_id
                            WHERE pa.activity_id = a.id), '') AS "policies!"
           FROM activities a
           WHERE a.id = $1"#,
        id
    )
    .fetch_optional(db)
    .await
}

const NAME_KEY: &str = "activities_name_key";

pub async fn create(
    tx: &mut PgConnection,
    actor: &Actor,
    a: &ActivityInput,
) -> Result<Uuid, WriteError> {
    let id = Uuid::now_v7();
    sqlx::query!(
        "INSERT INTO activities (id, name, description, platform, protocol, login_mode, login_template,
                                 target_groups, file_transfer, revoke_on_lock)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        id,
        a.name,
        a.description,
        a.platform,
        a.protocol as Protocol,
        a.login_mode as LoginMode,
        a.login_template,
        &a.target_groups,
        a.file_transfer,
        a.revoke_on_lock
    )
    .execute(&mut *tx)
    .await
    .map_err(|e| WriteError::from_unique(e, NAME_KEY))?;
    let after = audit::snapshot(tx, "activities", id).await?;
    audit::record(
        tx,
        actor,
        Entry {
            action: "create",
            object_kind: "activity",
            object_id: Some(id),
            object_name: &a.name,
            before: None,
            after,
        },
    )
    .await?;
    Ok(id)
}

async fn lock(tx: &mut PgConnection, id: Uuid) -> Result<(String, String), WriteError> {
    let row = sqlx::query!(
        r#"SELECT name, to_jsonb(a)::text AS "snapshot!" FROM activities a WHERE id = $1 FOR UPDATE"#,
        id
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(WriteError::NotFound)?;
    Ok((row.name, row.snapshot))
}

pub async fn update(
    tx: &mut PgConnection,
    actor: &Actor,
    id: Uuid,
    a: &ActivityInput,
) -> Result<(), WriteError> {
    let (_, before) = lock(tx, id).await?;
    sqlx::query!(
        "UPDATE activities SET name = $2, description = $3, platform = $4, protocol = $5,
                               login_mode = $6, login_template = $7, target_groups = $8,
                               file_transfer = $9, revoke_on_lock = $10, updated_at = now()
         WHERE id = $1",
        id,
        a.name,
        a.description,
        a.platform,
        a.protocol as Protocol,
        a.login_mode as LoginMode,
        a.login_template,
        &a.target_groups,
        a.file_transfer,
        a.revoke_on_lock
    )
    .execute(&mut *tx)
    .await
    .map_err(|e| WriteError::from_unique(e, NAME_KEY))?;
    let after = audit::snapshot(tx, "activities", id).await?;
    audit::record(
        tx,
        actor,
        Entry {
            action: "update",
            object_kind: "activity",
            object_id: Some(id),
            object_name: &a.name,
            before: Some(before),
            after,
        },
    )
    .await?;
    Ok(())
}

pub use crate::db::resources::Removal;

/// Deletes an activity nothing uses, archives one that only history names, refuses one that
/// access policies or live sessions use.
pub async fn remove(tx: &mut PgConnection, actor: &Actor, id: Uuid) -> Result<Removal, WriteError> {
    let (name, before) = lock(tx, id).await?;
    let policies: Vec<String> = sqlx::query_scalar!(
        "SELECT p.name FROM policy_activities pa JOIN access_policies p ON p.id = pa.policy_id
         WHERE pa.activity_id = $1 ORDER BY lower(p.name)",
        id
    )
    .fetch_all(&mut *tx)
    .await?;
    if !policies.is_empty() {
        return Ok(Removal::InUse(format!(
            "{name} cannot be deleted: it is used by access policies: {}. Remove it from them first.",
            policies.join(", ")
        )));
    }
    // Runtime SQL: the live status set is rendered from the domain (status_sql).
    let live: i64 = sqlx::query_scalar(&format!(
        "SELECT count(*) FROM activity_sessions s JOIN requests r ON r.id = s.request_id
         WHERE r.activity_id = $1 AND s.status IN {live}",
        live = *crate::db::status_sql::LIVE
    ))
    .bind(id)
    .fetch_one(&mut *tx)
    .await?;
    if live > 0 {
        return Ok(Removal::InUse(format!(
            "{name} cannot be deleted: {live} live activity session(s) use it."
        )));
    }
    let history: bool = sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM requests WHERE activity_id = $1) AS "history!""#,
        id
    )
    .fetch_one(&mut *tx)
    .await?;
    let (action, after, outcome) = if history {
        sqlx::query!(
            "UPDATE activities SET archived_at = now(), updated_at = now() WHERE id = $1",
            id
        )
        .execute(&mut *tx)
        .await?;
        (
            "archive",
            audit::snapshot(tx, "activities", id).await?,
            Removal::Archived(name.clone()),
        )
    } else {
        sqlx::query!("DELETE FROM activities WHERE id = $1", id)
            .execute(&mut *tx)
            .await?;
        ("delete", None, Removal::Deleted(name.clone()))
    };
    audit::record(
        tx,
        actor,
        Entry {
            action,
            object_kind: "activity",
            object_id: Some(id),
            object_name: &name,
            before: Some(before),
            after,
        },
    )
    .await?;
    Ok(outcome)
}

/// Brings an archived activity back.
pub async fn restore(tx: &mut PgConnection, actor: &Actor, id: Uuid) -> Result<String, WriteError> {
    let (name, before) = lock(tx, id).await?;
    sqlx::query!(
        "UPDATE activities SET archived_at = NULL, updated_at = now() WHERE id = $1",
        id
    )
    .execute(&mut *tx)
    .await?;
    let after = audit::snapshot(tx, "activities", id).await?;
    audit::record(
        tx,
        actor,
        Entry {
            action: "restore",
            object_kind: "activity",
            object_id: Some(id),
            object_name: &name,
            before: Some(before),
            after,
        },
    )
    .await?;
    Ok(name)
}

/// A name for a copy of `name` that no activity has yet: "name (copy)", "name (copy 2)", ...
pub async fn free_copy_name(db: &mut PgConnection, name: &str) -> Result<String, sqlx::Error> {
    for n in 1..100 {
        let candidate = if n == 1 {
            format!("{name} (copy)")
        } else {
            format!("{name} (copy {n})")
        };
        let candidate: String = candidate.chars().take(200).collect();
        let taken: bool = sqlx::query_scalar!(
            r#"SELECT EXISTS (SELECT 1 FROM activities WHERE lower(name) = lower($1)) AS "taken!""#,
            candidate
        )
        .fetch_one(&mut *db)
        .await?;
        if !taken {
            return Ok(candidate);
        }
    }
    Ok(format!("{name} ({})", Uuid::now_v7().simple()))
}

/// The policy form's activity list.
pub async fn choices(
    db: impl PgExecutor<'_>,
    search: &str,
    ticked: &[Uuid],
    limit: i64,
) -> Result<(Vec<Choice>, i64), sqlx::Error> {
    audit::choices(
        db,
        "activities",
        "name",
        "platform",
        "archived_at IS NULL",
        search,
        ticked,
        limit,
    )
    .await
}
