//! Resources as the administrators manage them: list, create, edit, delete (or archive), the
//! CSV import, and the checkbox list of the policy form. Every change writes its audit entry
//! in the same transaction.

use std::collections::HashMap;

use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

use crate::db::audit::{self, Actor, Choice, Entry, WriteError};
use crate::domain::admin_input::ResourceInput;
use crate::domain::catalog::ResourceKind;
use crate::domain::csv_import::{Existing, ImportRow};
use crate::domain::provisioner::ProvisionerKind;
use crate::domain::target_access::AccessInput;

/// A row of the resource list.
#[derive(Debug, Clone)]
pub struct Row {
    pub id: Uuid,
    pub name: String,
    pub kind: ResourceKind,
    pub platform: String,
    pub address: String,
    pub port: Option<i32>,
    pub description: String,
    pub archived: bool,
    pub provisioner: ProvisionerKind,
    pub credential_id: Option<Uuid>,
    /// The pinned SSH host key, `type base64`.
    pub host_key: Option<String>,
    /// `postgresql`: the database to connect to (None: `postgres`).
    pub database_name: Option<String>,
    /// `command`: the provisioners file's entry.
    pub provisioner_command: Option<String>,
}

/// What the list filters by.
#[derive(Debug, Default)]
pub struct Filter<'a> {
    pub search: &'a str,
    pub kind: Option<ResourceKind>,
    pub platform: &'a str,
    /// Include archived resources (they are hidden otherwise).
    pub archived: bool,
}

/// One page of resources by name, and how many match.
pub async fn list(
    db: impl PgExecutor<'_>,
    filter: &Filter<'_>,
    limit: i64,
    offset: i64,
) -> Result<(Vec<Row>, i64), sqlx::Error> {
    let rows = sqlx::query!(
        r#"SELECT id, name, kind AS "kind: ResourceKind", platform, address, port, description,
                archived_at IS NOT NULL AS "archived!", provisioner AS "provisioner: ProvisionerKind",
                credential_id, host_key, database_name, provisioner_command,
                count(*) OVER () AS "total!"
         FROM resources
         WHERE ($1 = '' OR strpos(lower(name), lower($1)) > 0
                OR strpos(lower(address), lower($1)) > 0
                OR strpos(lower(description), lower($1)) > 0)
           AND ($2::resource_kind IS NULL OR kind = $2)
           AND ($3 = '' OR lower(platform) = lower($3))
           AND ($4 OR archived_at IS NULL)
         ORDER BY lower(name)
         LIMIT $5 OFFSET $6"#,
        filter.search,
        filter.kind as Option<ResourceKind>,
        filter.platform,
        filter.archived,
        limit,
        offset
    )
    .fetch_all(db)
    .await?;
    let total = rows.first().map_or(0, |r| r.total);
    let rows = rows
        .into_iter()
        .map(|r| Row {
            id: r.id,
            name: r.name,
            kind: r.kind,
            platform: r.platform,
            address: r.address,
            port: r.port,
            description: r.description,
            archived: r.archived,
            provisioner: r.provisioner,
            credential_id: r.credential_id,
            host_key: r.host_key,
            database_name: r.database_name,
            provisioner_command: r.provisioner_command,
        })
        .collect();
    Ok((rows, total))
}

/// The platforms in use, for the list's filter.
pub async fn platforms(db: impl PgExecutor<'_>) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar!("SELECT DISTINCT platform FROM resources ORDER BY platform")
        .fetch_all(db)
        .await
}

/// One resource.
pub async fn get(db: impl PgExecutor<'_>, id: Uuid) -> Result<Option<Row>, sqlx::Error> {
    sqlx::query_as!(
        Row,
        r#"SELECT id, name, kind AS "kind: ResourceKind", platform, address, port, description,
                archived_at IS NOT NULL AS "archived!", provisioner AS "provisioner: ProvisionerKind",
                credential_id, host_key, database_name, provisioner_command
         FROM resources WHERE id = $1"#,
        id
    )
    .fetch_optional(db)
    .await
}

const NAME_KEY: &str = "resources_name_key";

/// Creates a resource.
pub async fn create(
    tx: &mut PgConnection,
    actor: &Actor,
    r: &ResourceInput,
    access: &AccessInput,
) -> Result<Uuid, WriteError> {
    let id = Uuid::now_v7();
    sqlx::query!(
        "INSERT INTO resources (id, name, kind, platform, address, port, description,
                               provisioner, credential_id, host_key, database_name,
                               provisioner_command)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        id,
        r.name,
        r.kind as ResourceKind,
        r.platform,
        r.address,
        r.port,
        r.description,
        access.provisioner as ProvisionerKind,
        access.credential_id,
        access.host_key,
        access.database_name,
        access.command
    )
    .execute(&mut *tx)
    .await
    .map_err(|e| WriteError::from_unique(e, NAME_KEY))?;
    let after = audit::snapshot(tx, "resources", id).await?;
    audit::record(
        tx,
        actor,
        Entry {
            action: "create",
            object_kind: "resource",
            object_id: Some(id),
            object_name: &r.name,
            before: None,
            after,
        },
    )
    .await?;
    Ok(id)
}

/// Changes a resource.
pub async fn update(
    tx: &mut PgConnection,
    actor: &Actor,
    id: Uuid,
    r: &ResourceInput,
    access: &AccessInput,
) -> Result<(), WriteError> {
    let before = lock(tx, id).await?;
    sqlx::query!(
        "UPDATE resources SET name = $2, kind = $3, platform = $4, address = $5, port = $6,
                              description = $7, provisioner = $8, credential_id = $9,
                              host_key = $10, database_name = $11,
                              provisioner_command = $12, updated_at = now()
         WHERE id = $1",
        id,
        r.name,
        r.kind as ResourceKind,
        r.platform,
        r.address,
        r.port,
        r.description,
        access.provisioner as ProvisionerKind,
        access.credential_id,
        access.host_key,
        access.database_name,
        access.command
    )
    .execute(&mut *tx)
    .await
    .map_err(|e| WriteError::from_unique(e, NAME_KEY))?;
    let after = audit::snapshot(tx, "resources", id).await?;
    audit::record(
        tx,
        actor,
        Entry {
            action: "update",
            object_kind: "resource",
            object_id: Some(id),
            object_name: &r.name,
            before: Some(before),
            after,
        },
    )
    .await?;
    Ok(())
}

/// Locks a row and returns its JSON.
async fn lock(tx: &mut PgConnection, id: Uuid) -> Result<String, WriteError> {
    sqlx::query_scalar!(
        r#"SELECT to_jsonb(r)::text AS "row!" FROM resources r WHERE id = $1 FOR UPDATE"#,
        id
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(WriteError::NotFound)
}

/// What became of a deletion.
#[derive(Debug, PartialEq, Eq)]
pub enum Removal {
    /// Gone for good: nothing referred to it.
    Deleted(String),
    /// Kept for the history that names it, but no longer offered.
    Archived(String),
    /// Refused: the message says what uses it.
    InUse(String),
}

/// Deletes a resource nothing uses, archives one that only history refers to, and refuses
/// one that access policies or live sessions use.
pub async fn remove(tx: &mut PgConnection, actor: &Actor, id: Uuid) -> Result<Removal, WriteError> {
    let before = lock(tx, id).await?;
    let name: String = sqlx::query_scalar!("SELECT name FROM resources WHERE id = $1", id)
        .fetch_one(&mut *tx)
        .await?;
    let policies: Vec<String> = sqlx::query_scalar!(
        "SELECT p.name FROM policy_resources pr JOIN access_policies p ON p.id = pr.policy_id
         WHERE pr.resource_id = $1 ORDER BY lower(p.name)",
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
    // Runtime SQL: the live statuses are rendered by status_sql (as the partial index has them).
    let live: i64 = sqlx::query_scalar(&format!(
        "SELECT count(*) FROM activity_sessions WHERE resource_id = $1 AND status IN {live}",
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
        r#"SELECT EXISTS (SELECT 1 FROM activity_sessions WHERE resource_id = $1) AS "history!""#,
        id
    )
    .fetch_one(&mut *tx)
    .await?;
    let (action, after, outcome) = if history {
        sqlx::query!(
            "UPDATE resources SET archived_at = now(), updated_at = now() WHERE id = $1",
            id
        )
        .execute(&mut *tx)
        .await?;
        (
            "archive",
            audit::snapshot(tx, "resources", id).await?,
            Removal::Archived(name.clone()),
        )
    } else {
        sqlx::query!("DELETE FROM resources WHERE id = $1", id)
            .execute(&mut *tx)
            .await?;
        ("delete", None, Removal::Deleted(name.clone()))
    };
    audit::record(
        tx,
        actor,
        Entry {
            action,
            object_kind: "resource",
            object_id: Some(id),
            object_name: &name,
            before: Some(before),
            after,
        },
    )
    .await?;
    Ok(outcome)
}

/// Brings an archived resource back.
pub async fn restore(tx: &mut PgConnection, actor: &Actor, id: Uuid) -> Result<String, WriteError> {
    let before = lock(tx, id).await?;
    let name: String = sqlx::query_scalar!(
        "UPDATE resources SET archived_at = NULL, updated_at = now() WHERE id = $1 RETURNING name",
        id
    )
    .fetch_one(&mut *tx)
    .await?;
    let after = audit::snapshot(tx, "resources", id).await?;
    audit::record(
        tx,
        actor,
        Entry {
            action: "restore",
            object_kind: "resource",
            object_id: Some(id),
            object_name: &name,
            before: Some(before),
            after,
        },
    )
    .await?;
    Ok(name)
}

/// The stored resources with these names (any case), keyed by lower-case name, for the
/// import's plan.
pub async fn existing(
    db: impl PgExecutor<'_>,
    names: &[String],
) -> Result<HashMap<String, Existing>, sqlx::Error> {
    let lower: Vec<String> = names.iter().map(|n| n.to_lowercase()).collect();
    let rows: Vec<Row> = sqlx::query_as!(
        Row,
        r#"SELECT id, name, kind AS "kind: ResourceKind", platform, address, port, description,
                archived_at IS NOT NULL AS "archived!", provisioner AS "provisioner: ProvisionerKind",
                credential_id, host_key, database_name, provisioner_command
         FROM resources WHERE lower(name) = ANY($1)"#,
        &lower
    )
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            (
                r.name.to_lowercase(),
                Existing {
                    archived: r.archived,
                    access: AccessInput {
                        provisioner: r.provisioner,
                        credential_id: r.credential_id,
                        host_key: r.host_key,
                        database_name: r.database_name,
                        command: r.provisioner_command,
                    },
                    resource: ResourceInput {
                        name: r.name,
                        kind: r.kind,
                        platform: r.platform,
                        address: r.address,
                        port: r.port,
                        description: r.description,
                    },
                },
            )
        })
        .collect())
}

/// Creates or updates (and un-archives) the given resources by name in one statement, with
/// one audit entry each. A row with access sets the resource's provisioner and what it uses;
/// one without leaves a stored resource's as it is (a new one is simulated). Returns
/// (created, updated), or `NotFound` when a service credential it names was deleted since
/// the plan (nothing is written then).
pub async fn import(
    tx: &mut PgConnection,
    actor: &Actor,
    writes: &[ImportRow],
) -> Result<(usize, usize), WriteError> {
    if writes.is_empty() {
        return Ok((0, 0));
    }
    // The credentials stay until the transaction ends: a deletion waits, then sees the use.
    let mut wanted: Vec<Uuid> = writes
        .iter()
        .filter_map(|w| w.access.as_ref().and_then(|a| a.credential_id))
        .collect();
    wanted.sort_unstable();
    wanted.dedup();
    if !wanted.is_empty() {
        let found: Vec<Uuid> = sqlx::query_scalar!(
            "SELECT id FROM service_credentials WHERE id = ANY($1) FOR SHARE",
            &wanted
        )
        .fetch_all(&mut *tx)
        .await?;
        if found.len() != wanted.len() {
            return Err(WriteError::NotFound);
        }
    }
    let ids: Vec<Uuid> = writes.iter().map(|_| Uuid::now_v7()).collect();
    let names: Vec<&str> = writes.iter().map(|w| w.resource.name.as_str()).collect();
    let kinds: Vec<&str> = writes.iter().map(|w| w.resource.kind.key()).collect();
    let platforms: Vec<&str> = writes
        .iter()
        .map(|w| w.resource.platform.as_str())
        .collect();
    let addresses: Vec<&str> = writes.iter().map(|w| w.resource.address.as_str()).collect();
    let ports: Vec<Option<i32>> = writes.iter().map(|w| w.resource.port).collect();
    let descriptions: Vec<&str> = writes
        .iter()
        .map(|w| w.resource.description.as_str())
        .collect();
    let set_access: Vec<bool> = writes.iter().map(|w| w.access.is_some()).collect();
    let access = |w: &ImportRow| w.access.clone();
    let provisioners: Vec<&str> = writes
        .iter()
        .map(|w| {
            w.access
                .as_ref()
                .map_or(ProvisionerKind::Simulated, |a| a.provisioner)
                .key()
        })
        .collect();
    let credentials: Vec<Option<Uuid>> = writes
        .iter()
        .map(|w| access(w).and_then(|a| a.credential_id))
        .collect();
    let host_keys: Vec<Option<String>> = writes
        .iter()
        .map(|w| access(w).and_then(|a| a.host_key))
        .collect();
    let databases: Vec<Option<String>> = writes
        .iter()
        .map(|w| access(w).and_then(|a| a.database_name))
        .collect();
    let commands: Vec<Option<String>> = writes
        .iter()
        .map(|w| access(w).and_then(|a| a.command))
        .collect();
    // Every CTE sees the table as it was before the statement: `old` holds the rows before.
    // The array binds carry their element type (`&str`, `Option<_>` for NULL elements) as
    // overrides, since the macro would otherwise want `&[String]` and non-null elements.
    let is_new: Vec<bool> = sqlx::query_scalar!(
        r#"WITH input AS (
             SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[]::resource_kind[], $4::text[],
                                  $5::text[], $6::int[], $7::text[], $10::bool[],
                                  $11::text[]::provisioner_kind[], $12::uuid[], $13::text[],
                                  $14::text[], $15::text[])
                      AS t(id, name, kind, platform, address, port, description, set_access,
                           provisioner, credential_id, host_key, database_name,
                           provisioner_command)
         ),
         old AS (
             SELECT r.* FROM resources r JOIN input i ON lower(r.name) = lower(i.name)
         ),
         up AS (
             INSERT INTO resources AS r (id, name, kind, platform, address, port, description,
                                         provisioner, credential_id, host_key, database_name,
                                         provisioner_command)
             SELECT id, name, kind, platform, address, port, description, provisioner,
                    credential_id, host_key, database_name, provisioner_command
             FROM input
             ON CONFLICT ((lower(name))) DO UPDATE
             SET name = EXCLUDED.name, kind = EXCLUDED.kind, platform = EXCLUDED.platform,
                 address = EXCLUDED.address, port = EXCLUDED.port,
                 description = EXCLUDED.description, archived_at = NULL, updated_at = now(),
                 (provisioner, credential_id, host_key, database_name, provisioner_command) =
                     (SELECT CASE WHEN i.set_access THEN EXCLUDED.provisioner
                                  ELSE r.provisioner END,
                             CASE WHEN i.set_access THEN EXCLUDED.credential_id
                                  ELSE r.credential_id END,
                             CASE WHEN i.set_access THEN EXCLUDED.host_key ELSE r.host_key END,
                             CASE WHEN i.set_access THEN EXCLUDED.database_name
                                  ELSE r.database_name END,
                             CASE WHEN i.set_access THEN EXCLUDED.provisioner_command
                                  ELSE r.provisioner_command END
                      FROM input i WHERE i.id = EXCLUDED.id)
             RETURNING r.*
         ),
         logged AS (
             INSERT INTO admin_audit (actor_id, actor_name, action, object_kind, object_id,
                                      object_name, before, after)
             SELECT $8, $9, CASE WHEN old.id IS NULL THEN 'create' ELSE 'update' END,
                    'resource', up.id, up.name, to_jsonb(old), to_jsonb(up)
             FROM up LEFT JOIN old ON old.id = up.id
             RETURNING action
         )
         SELECT action = 'create' AS "created!" FROM logged"#,
        &ids,
        &names as &[&str],
        &kinds as &[&str],
        &platforms as &[&str],
        &addresses as &[&str],
        &ports as &[Option<i32>],
        &descriptions as &[&str],
        actor.id,
        actor.name,
        &set_access,
        &provisioners as &[&str],
        &credentials as &[Option<Uuid>],
        &host_keys as &[Option<String>],
        &databases as &[Option<String>],
        &commands as &[Option<String>]
    )
    .fetch_all(&mut *tx)
    .await?;
    let created = is_new.iter().filter(|c| **c).count();
    Ok((created, is_new.len() - created))
}

/// The policy form's resource list.
pub async fn choices(
    db: impl PgExecutor<'_>,
    search: &str,
    ticked: &[Uuid],
    limit: i64,
) -> Result<(Vec<Choice>, i64), sqlx::Error> {
    audit::choices(
        db,
        "resources",
        "name",
        "platform || ' · ' || address",
        "archived_at IS NULL",
        search,
        ticked,
        limit,
    )
    .await
}
