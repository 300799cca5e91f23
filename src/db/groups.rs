//! Groups of users, named by access policies and approval tiers. Every change writes its
//! audit entry (the group with its members' usernames) in the same transaction.

use crate::db::resources::Removal;
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

use crate::db::audit::{self, Actor, Choice, Entry, WriteError};
use crate::domain::admin_input::GroupInput;

/// A row of the group list.
#[derive(Debug, Clone)]
pub struct Row {
    pub id: Uuid,
    pub name: String,
    pub description: String,
    pub members: i64,
    /// Usernames of the members, comma separated.
    pub member_names: String,
}

pub async fn list(db: impl PgExecutor<'_>, search: &str) -> Result<Vec<Row>, sqlx::Error> {
    sqlx::query_as!(
        Row,
        r#"SELECT g.id, g.name, g.description,
                (SELECT count(*) FROM group_members gm WHERE gm.group_id = g.id) AS "members!",
                COALESCE((SELECT string_agg(u.username, ', ' ORDER BY lower(u.username))
                          FROM group_members gm JOIN users u ON u.id = gm.user_id
                          WHERE gm.group_id = g.id), '') AS "member_names!"
         FROM groups g
         WHERE $1 = '' OR strpos(lower(g.name), lower($1)) > 0
         ORDER BY lower(g.name) LIMIT 1000"#,
        search
    )
    .fetch_all(db)
    .await
}

pub async fn get(db: impl PgExecutor<'_>, id: Uuid) -> Result<Option<Row>, sqlx::Error> {
    sqlx::query_as!(
        Row,
        r#"SELECT g.id, g.name, g.description,
                (SELECT count(*) FROM group_members gm WHERE gm.group_id = g.id) AS "members!",
                COALESCE((SELECT string_agg(u.username, ', ' ORDER BY lower(u.username))
                          FROM group_members gm JOIN users u ON u.id = gm.user_id
                          WHERE gm.group_id = g.id), '') AS "member_names!"
         FROM groups g WHERE g.id = $1"#,
        id
    )
    .fetch_optional(db)
    .await
}

/// The ids of a group's members.
pub async fn member_ids(db: impl PgExecutor<'_>, id: Uuid) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar!("SELECT user_id FROM group_members WHERE group_id = $1", id)
        .fetch_all(db)
        .await
}

/// The group as JSON with its members' usernames, for the audit log.
async fn snapshot(tx: &mut PgConnection, id: Uuid) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar!(
        r#"SELECT (to_jsonb(g) || jsonb_build_object('members', COALESCE(
                    (SELECT jsonb_agg(u.username ORDER BY lower(u.username))
                     FROM group_members gm JOIN users u ON u.id = gm.user_id
                     WHERE gm.group_id = g.id), '[]'::jsonb)))::text AS "snapshot!"
         FROM groups g WHERE g.id = $1"#,
        id
    )
    .fetch_optional(tx)
    .await
}

const NAME_KEY: &str = "groups_name_key";

async fn set_members(tx: &mut PgConnection, id: Uuid, members: &[Uuid]) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "DELETE FROM group_members WHERE group_id = $1 AND NOT (user_id = ANY($2))",
        id,
        members
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query!(
        "INSERT INTO group_members (group_id, user_id)
         SELECT $1, u.id FROM users u WHERE u.id = ANY($2) ON CONFLICT DO NOTHING",
        id,
        members
    )
    .execute(&mut *tx)
    .await?;
    Ok(())
}

pub async fn create(
    tx: &mut PgConnection,
    actor: &Actor,
    g: &GroupInput,
    members: &[Uuid],
) -> Result<Uuid, WriteError> {
    let id = Uuid::now_v7();
    sqlx::query!(
        "INSERT INTO groups (id, name, description) VALUES ($1, $2, $3)",
        id,
        g.name,
        g.description
    )
    .execute(&mut *tx)
    .await
    .map_err(|e| WriteError::from_unique(e, NAME_KEY))?;
    set_members(tx, id, members).await?;
    let after = snapshot(tx, id).await?;
    audit::record(
        tx,
        actor,
        Entry {
            action: "create",
            object_kind: "group",
            object_id: Some(id),
            object_name: &g.name,
            before: None,
            after,
        },
    )
    .await?;
    Ok(id)
}

pub async fn update(
    tx: &mut PgConnection,
    actor: &Actor,
    id: Uuid,
    g: &GroupInput,
    members: &[Uuid],
) -> Result<(), WriteError> {
    sqlx::query_scalar!("SELECT 1 AS one FROM groups WHERE id = $1 FOR UPDATE", id)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(WriteError::NotFound)?;
    let before = snapshot(tx, id).await?;
    sqlx::query!(
        "UPDATE groups SET name = $2, description = $3, updated_at = now() WHERE id = $1",
        id,
        g.name,
        g.description
    )
    .execute(&mut *tx)
    .await
    .map_err(|e| WriteError::from_unique(e, NAME_KEY))?;
    set_members(tx, id, members).await?;
    let after = snapshot(tx, id).await?;
    audit::record(
        tx,
        actor,
        Entry {
            action: "update",
            object_kind: "group",
            object_id: Some(id),
            object_name: &g.name,
            before,
            after,
        },
    )
    .await?;
    Ok(())
}

/// Deletes a group, unless access policies or approval tiers name it: then the message says
/// which.
pub async fn remove(tx: &mut PgConnection, actor: &Actor, id: Uuid) -> Result<Removal, WriteError> {
    let name: String = sqlx::query_scalar!("SELECT name FROM groups WHERE id = $1 FOR UPDATE", id)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(WriteError::NotFound)?;
    let policies: Vec<String> = sqlx::query_scalar!(
        "SELECT p.name FROM policy_groups pg JOIN access_policies p ON p.id = pg.policy_id
         WHERE pg.group_id = $1 ORDER BY lower(p.name)",
        id
    )
    .fetch_all(&mut *tx)
    .await?;
    let profiles: Vec<String> = sqlx::query_scalar!(
        "SELECT DISTINCT cp.name FROM approval_tier_groups tg
         JOIN approval_tiers t ON t.id = tg.tier_id
         JOIN connection_profiles cp ON cp.id = t.profile_id
         WHERE tg.group_id = $1 ORDER BY cp.name",
        id
    )
    .fetch_all(&mut *tx)
    .await?;
    let mut uses = Vec::new();
    if !policies.is_empty() {
        uses.push(format!("access policies: {}", policies.join(", ")));
    }
    if !profiles.is_empty() {
        uses.push(format!(
            "approval tiers of connection profiles: {}",
            profiles.join(", ")
        ));
    }
    if !uses.is_empty() {
        return Ok(Removal::InUse(format!(
            "{name} cannot be deleted: it is used by {}.",
            uses.join("; and by ")
        )));
    }
    let before = snapshot(tx, id).await?;
    sqlx::query!("DELETE FROM groups WHERE id = $1", id)
        .execute(&mut *tx)
        .await?;
    audit::record(
        tx,
        actor,
        Entry {
            action: "delete",
            object_kind: "group",
            object_id: Some(id),
            object_name: &name,
            before,
            after: None,
        },
    )
    .await?;
    Ok(Removal::Deleted(name))
}

/// The groups' checkbox list (policy and tier forms, user form).
pub async fn choices(
    db: impl PgExecutor<'_>,
    search: &str,
    ticked: &[Uuid],
    limit: i64,
) -> Result<(Vec<Choice>, i64), sqlx::Error> {
    audit::choices(
        db,
        "groups",
        "name",
        "COALESCE((SELECT count(*) FROM group_members gm WHERE gm.group_id = groups.id), 0)::text || ' member(s)'",
        "true",
        search,
        ticked,
        limit,
    )
    .await
}
