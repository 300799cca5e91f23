//! Access policies: members × activities × resources under one connection profile (Admin >
//! Access policies). The wizard reads them live, so a change applies at once. Every change
//! writes its audit entry (the policy with everything it names, by name) in the same
//! transaction.

use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

use crate::db::audit::{self, Actor, Entry, WriteError};

/// A row of the policy list.
#[derive(Debug, Clone)]
pub struct Row {
    pub id: Uuid,
    pub name: String,
    pub description: String,
    pub profile: String,
    pub enabled: bool,
    pub members: i64,
    pub activities: i64,
    pub resources: i64,
}

pub async fn list(db: impl PgExecutor<'_>, search: &str) -> Result<Vec<Row>, sqlx::Error> {
    sqlx::query_as!(
        Row,
        r#"SELECT p.id, p.name, p.description, cp.name AS profile, p.enabled,
                (SELECT count(*) FROM policy_users x WHERE x.policy_id = p.id)
                  + (SELECT count(*) FROM policy_groups x WHERE x.policy_id = p.id) AS "members!",
                (SELECT count(*) FROM policy_activities x WHERE x.policy_id = p.id)
                    AS "activities!",
                (SELECT count(*) FROM policy_resources x WHERE x.policy_id = p.id)
                    AS "resources!"
         FROM access_policies p JOIN connection_profiles cp ON cp.id = p.profile_id
         WHERE $1 = '' OR strpos(lower(p.name), lower($1)) > 0
         ORDER BY lower(p.name) LIMIT 1000"#,
        search,
    )
    .fetch_all(db)
    .await
}

/// A policy as stored.
#[derive(Debug, Clone)]
pub struct Policy {
    pub id: Uuid,
    pub name: String,
    pub description: String,
    pub profile_id: Uuid,
    pub enabled: bool,
}

pub async fn get(db: impl PgExecutor<'_>, id: Uuid) -> Result<Option<Policy>, sqlx::Error> {
    sqlx::query_as!(
        Policy,
        "SELECT id, name, description, profile_id, enabled FROM access_policies WHERE id = $1",
        id,
    )
    .fetch_optional(db)
    .await
}

/// A valid policy, as the form gives it.
#[derive(Debug, Clone, Default)]
pub struct PolicyInput {
    pub name: String,
    pub description: String,
    pub profile_id: Uuid,
    pub users: Vec<Uuid>,
    pub groups: Vec<Uuid>,
    pub activities: Vec<Uuid>,
    pub resources: Vec<Uuid>,
}

/// The link tables: (form field, table, column).
pub const LINKS: [(&str, &str, &str); 4] = [
    ("users", "policy_users", "user_id"),
    ("groups", "policy_groups", "group_id"),
    ("activities", "policy_activities", "activity_id"),
    ("resources", "policy_resources", "resource_id"),
];

/// The ids a policy links in `table` (one of [`LINKS`]).
pub async fn linked(
    db: impl PgExecutor<'_>,
    table: &'static str,
    column: &'static str,
    id: Uuid,
) -> Result<Vec<Uuid>, sqlx::Error> {
    // Runtime SQL: one helper for the four link tables, the names given by the caller.
    sqlx::query_scalar(&format!(
        "SELECT {column} FROM {table} WHERE policy_id = $1"
    ))
    .bind(id)
    .fetch_all(db)
    .await
}

/// The username of the policy's only member when that member is also the only user who can
/// approve under its profile's tiers: nobody else could ever approve their requests.
pub async fn lone_self_approver(
    db: impl PgExecutor<'_>,
    id: Uuid,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar!(
        "WITH members AS (
             SELECT user_id FROM policy_users WHERE policy_id = $1
             UNION
             SELECT gm.user_id FROM policy_groups pg
             JOIN group_members gm ON gm.group_id = pg.group_id WHERE pg.policy_id = $1
         ), approvers AS (
             SELECT tu.user_id FROM access_policies p
             JOIN approval_tiers t ON t.profile_id = p.profile_id
             JOIN approval_tier_users tu ON tu.tier_id = t.id WHERE p.id = $1
             UNION
             SELECT gm.user_id FROM access_policies p
             JOIN approval_tiers t ON t.profile_id = p.profile_id
             JOIN approval_tier_groups tg ON tg.tier_id = t.id
             JOIN group_members gm ON gm.group_id = tg.group_id WHERE p.id = $1
         )
         SELECT u.username FROM users u
         WHERE (SELECT count(*) FROM members) = 1
           AND (SELECT count(*) FROM approvers) = 1
           AND u.id = (SELECT user_id FROM members)
           AND u.id = (SELECT user_id FROM approvers)",
        id,
    )
    .fetch_optional(db)
    .await
}

/// The policy as JSON with its profile, members, activities and resources by name.
async fn snapshot(tx: &mut PgConnection, id: Uuid) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar!(
        r#"SELECT (to_jsonb(p) || jsonb_build_object(
                    'profile', (SELECT name FROM connection_profiles WHERE id = p.profile_id),
                    'users', COALESCE((SELECT jsonb_agg(u.username ORDER BY lower(u.username))
                        FROM policy_users x JOIN users u ON u.id = x.user_id
                        WHERE x.policy_id = p.id), '[]'::jsonb),
                    'groups', COALESCE((SELECT jsonb_agg(g.name ORDER BY lower(g.name))
                        FROM policy_groups x JOIN groups g ON g.id = x.group_id
                        WHERE x.policy_id = p.id), '[]'::jsonb),
                    'activities', COALESCE((SELECT jsonb_agg(a.name ORDER BY lower(a.name))
                        FROM policy_activities x JOIN activities a ON a.id = x.activity_id
                        WHERE x.policy_id = p.id), '[]'::jsonb),
                    'resources', COALESCE((SELECT jsonb_agg(r.name ORDER BY lower(r.name))
                        FROM policy_resources x JOIN resources r ON r.id = x.resource_id
                        WHERE x.policy_id = p.id), '[]'::jsonb)))::text AS "snapshot!"
         FROM access_policies p WHERE p.id = $1"#,
        id,
    )
    .fetch_optional(tx)
    .await
}

const NAME_KEY: &str = "access_policies_name_key";

async fn set_links(tx: &mut PgConnection, id: Uuid, p: &PolicyInput) -> Result<(), sqlx::Error> {
    for ((_, table, column), ids) in
        LINKS
            .iter()
            .zip([&p.users, &p.groups, &p.activities, &p.resources])
    {
        super::replace_links(&mut *tx, table, "policy_id", column, id, ids).await?;
    }
    Ok(())
}

pub async fn create(
    tx: &mut PgConnection,
    actor: &Actor,
    p: &PolicyInput,
) -> Result<Uuid, WriteError> {
    let id = Uuid::now_v7();
    sqlx::query!(
        "INSERT INTO access_policies (id, name, description, profile_id, enabled)
         VALUES ($1, $2, $3, $4, true)",
        id,
        &p.name,
        &p.description,
        p.profile_id,
    )
    .execute(&mut *tx)
    .await
    .map_err(|e| WriteError::from_unique(e, NAME_KEY))?;
    set_links(tx, id, p).await?;
    let after = snapshot(tx, id).await?;
    audit::record(
        tx,
        actor,
        Entry {
            action: "create",
            object_kind: "policy",
            object_id: Some(id),
            object_name: &p.name,
            before: None,
            after,
        },
    )
    .await?;
    Ok(id)
}

async fn lock(tx: &mut PgConnection, id: Uuid) -> Result<String, WriteError> {
    sqlx::query_scalar!(
        "SELECT name FROM access_policies WHERE id = $1 FOR UPDATE",
        id
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(WriteError::NotFound)
}

pub async fn update(
    tx: &mut PgConnection,
    actor: &Actor,
    id: Uuid,
    p: &PolicyInput,
) -> Result<(), WriteError> {
    lock(tx, id).await?;
    let before = snapshot(tx, id).await?;
    sqlx::query!(
        "UPDATE access_policies SET name = $2, description = $3, profile_id = $4,
                updated_at = now()
         WHERE id = $1",
        id,
        &p.name,
        &p.description,
        p.profile_id,
    )
    .execute(&mut *tx)
    .await
    .map_err(|e| WriteError::from_unique(e, NAME_KEY))?;
    set_links(tx, id, p).await?;
    let after = snapshot(tx, id).await?;
    audit::record(
        tx,
        actor,
        Entry {
            action: "update",
            object_kind: "policy",
            object_id: Some(id),
            object_name: &p.name,
            before,
            after,
        },
    )
    .await?;
    Ok(())
}

/// Enables or disables a policy; returns its name.
pub async fn set_enabled(
    tx: &mut PgConnection,
    actor: &Actor,
    id: Uuid,
    enabled: bool,
) -> Result<String, WriteError> {
    let name = lock(tx, id).await?;
    let before = snapshot(tx, id).await?;
    sqlx::query!(
        "UPDATE access_policies SET enabled = $2, updated_at = now() WHERE id = $1",
        id,
        enabled
    )
    .execute(&mut *tx)
    .await?;
    let after = snapshot(tx, id).await?;
    audit::record(
        tx,
        actor,
        Entry {
            action: if enabled { "enable" } else { "disable" },
            object_kind: "policy",
            object_id: Some(id),
            object_name: &name,
            before,
            after,
        },
    )
    .await?;
    Ok(name)
}

/// Deletes a policy (requests made under it keep its name); returns its name.
pub async fn remove(tx: &mut PgConnection, actor: &Actor, id: Uuid) -> Result<String, WriteError> {
    let name = lock(tx, id).await?;
    let before = snapshot(tx, id).await?;
    sqlx::query!("DELETE FROM access_policies WHERE id = $1", id)
        .execute(&mut *tx)
        .await?;
    audit::record(
        tx,
        actor,
        Entry {
            action: "delete",
            object_kind: "policy",
            object_id: Some(id),
            object_name: &name,
            before,
            after: None,
        },
    )
    .await?;
    Ok(name)
}
