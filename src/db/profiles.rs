//! Connection profiles with their ordered approval tiers (Admin > Connection profiles). Every
//! change writes its audit entry (the profile with its tiers' approvers by name) in the same
//! transaction.

use crate::db::resources::Removal;
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

use crate::db::audit::{self, Actor, Entry, WriteError};

/// A row of the profile list.
#[derive(Debug, Clone)]
pub struct Row {
    pub id: Uuid,
    pub name: String,
    pub description: String,
    pub max_duration_minutes: i32,
    pub tiers: i64,
    /// Names of the access policies using it, comma separated.
    pub policies: String,
}

pub async fn list(db: impl PgExecutor<'_>, search: &str) -> Result<Vec<Row>, sqlx::Error> {
    sqlx::query_as!(
        Row,
        r#"SELECT cp.id, cp.name, cp.description, cp.max_duration_minutes,
                (SELECT count(*) FROM approval_tiers t WHERE t.profile_id = cp.id) AS "tiers!",
                COALESCE((SELECT string_agg(p.name, ', ' ORDER BY lower(p.name))
                          FROM access_policies p WHERE p.profile_id = cp.id), '') AS "policies!"
         FROM connection_profiles cp
         WHERE $1 = '' OR strpos(lower(cp.name), lower($1)) > 0
         ORDER BY lower(cp.name) LIMIT 1000"#,
        search
    )
    .fetch_all(db)
    .await
}

/// A profile as stored.
#[derive(Debug, Clone)]
pub struct Profile {
    pub id: Uuid,
    pub name: String,
    pub description: String,
    pub max_duration_minutes: i32,
    pub notes_required: bool,
    pub ticket_required: bool,
    pub ticket_pattern: Option<String>,
    pub schedule_horizon_days: i32,
    pub allow_self_approval: bool,
    pub decision_timeout_minutes: i32,
    pub extension_allowed: bool,
    pub extension_minutes: i32,
    pub max_extensions: i32,
    pub record_input: bool,
    pub ticket_validator_url: Option<String>,
    pub ticket_validator_timeout_seconds: i32,
    pub ticket_validator_on_failure: String,
}

pub async fn get(db: impl PgExecutor<'_>, id: Uuid) -> Result<Option<Profile>, sqlx::Error> {
    sqlx::query_as!(
        Profile,
        "SELECT id, name, description, max_duration_minutes, notes_required, ticket_required,
                ticket_pattern, schedule_horizon_days, allow_self_approval,
                decision_timeout_minutes, extension_allowed, extension_minutes, max_extensions,
                record_input, ticket_validator_url, ticket_validator_timeout_seconds,
                ticket_validator_on_failure
         FROM connection_profiles WHERE id = $1",
        id
    )
    .fetch_optional(db)
    .await
}

/// One approval tier: how many must approve, and who may.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tier {
    pub approvals_required: i32,
    pub users: Vec<Uuid>,
    pub groups: Vec<Uuid>,
}

/// A valid profile, as the form gives it.
#[derive(Debug, Clone)]
pub struct ProfileInput {
    pub name: String,
    pub description: String,
    pub max_duration_minutes: i32,
    pub notes_required: bool,
    pub ticket_required: bool,
    pub ticket_pattern: Option<String>,
    pub schedule_horizon_days: i32,
    pub allow_self_approval: bool,
    pub decision_timeout_minutes: i32,
    pub extension_allowed: bool,
    pub extension_minutes: i32,
    pub max_extensions: i32,
    /// Whether sessions under it record what the user types, besides what they see.
    pub record_input: bool,
    /// In order; at most three.
    pub tiers: Vec<Tier>,
    /// Ticket validation: the validator's address (`None`: no validation), its timeout and
    /// what a ticket not confirmed open does (`block` or `warn`).
    pub ticket_validator_url: Option<String>,
    pub ticket_validator_timeout_seconds: i32,
    pub ticket_validator_on_failure: String,
}

/// Sets a profile's ticket validation (kept apart from the other fields' statements).
pub async fn set_validator(
    tx: &mut PgConnection,
    id: Uuid,
    url: Option<&str>,
    timeout_seconds: i32,
    on_failure: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "UPDATE connection_profiles
         SET ticket_validator_url = $2, ticket_validator_timeout_seconds = $3,
             ticket_validator_on_failure = $4
         WHERE id = $1
           AND (ticket_validator_url, ticket_validator_timeout_seconds, ticket_validator_on_failure)
               IS DISTINCT FROM ($2, $3, $4)",
        id,
        url,
        timeout_seconds,
        on_failure
    )
    .execute(tx)
    .await
    .map(|_| ())
}

/// The ticket validator of a profile, if it has one.
pub async fn validator(
    db: impl PgExecutor<'_>,
    id: Uuid,
) -> Result<Option<crate::domain::ticket_check::Validator>, sqlx::Error> {
    let row = sqlx::query!(
        "SELECT ticket_validator_url, ticket_validator_timeout_seconds, ticket_validator_on_failure
         FROM connection_profiles WHERE id = $1",
        id
    )
    .fetch_optional(db)
    .await?;
    Ok(row.and_then(|r| {
        let (url, timeout, on_failure) = (
            r.ticket_validator_url,
            r.ticket_validator_timeout_seconds,
            r.ticket_validator_on_failure,
        );
        Some(crate::domain::ticket_check::Validator {
            url: url?,
            timeout: std::time::Duration::from_secs(u64::try_from(timeout).unwrap_or(5)),
            on_failure: crate::domain::ticket_check::OnFailure::parse(&on_failure)
                .unwrap_or(crate::domain::ticket_check::OnFailure::Block),
        })
    }))
}

/// A profile's tiers, in order.
pub async fn tiers(db: &mut PgConnection, id: Uuid) -> Result<Vec<Tier>, sqlx::Error> {
    let rows = sqlx::query!(
        "SELECT id, approvals_required FROM approval_tiers WHERE profile_id = $1 ORDER BY position",
        id
    )
    .fetch_all(&mut *db)
    .await?;
    let mut out = Vec::new();
    for row in rows {
        let users = sqlx::query_scalar!(
            "SELECT user_id FROM approval_tier_users WHERE tier_id = $1",
            row.id
        )
        .fetch_all(&mut *db)
        .await?;
        let groups = sqlx::query_scalar!(
            "SELECT group_id FROM approval_tier_groups WHERE tier_id = $1",
            row.id
        )
        .fetch_all(&mut *db)
        .await?;
        out.push(Tier {
            approvals_required: row.approvals_required,
            users,
            groups,
        });
    }
    Ok(out)
}

/// What the database says of one tier's approvers, inside the transaction that saves it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TierCheck {
    /// Some of the tier's users no longer exist.
    pub users_gone: bool,
    /// Some of the tier's groups no longer exist.
    pub groups_gone: bool,
    /// Distinct enabled users among its users and the members of its groups.
    pub eligible: i64,
}

/// Checks `tiers` inside the transaction that will save them, and locks (`FOR SHARE`, until
/// the transaction ends) everything the counts rest on: the accounts, the groups and the group
/// memberships. A concurrent disable, membership removal or group change therefore either
/// commits first (and is counted) or waits for this save: none slips between the check and
/// the write. Locks are taken accounts first, then groups, then memberships, the order in
/// which the user and group forms take theirs, so the two cannot deadlock. A member who joins
/// a group after the accounts were locked is not counted (the count errs low, never high).
pub async fn check_tiers(
    tx: &mut PgConnection,
    tiers: &[Tier],
) -> Result<Vec<TierCheck>, sqlx::Error> {
    let named_users: Vec<Uuid> = tiers.iter().flat_map(|t| t.users.clone()).collect();
    let named_groups: Vec<Uuid> = tiers.iter().flat_map(|t| t.groups.clone()).collect();
    let accounts: Vec<(Uuid, bool)> = sqlx::query!(
        "SELECT u.id, u.disabled FROM users u
         WHERE u.id = ANY($1)
            OR u.id IN (SELECT gm.user_id FROM group_members gm WHERE gm.group_id = ANY($2))
         ORDER BY u.id FOR SHARE",
        &named_users,
        &named_groups
    )
    .fetch_all(&mut *tx)
    .await?
    .into_iter()
    .map(|r| (r.id, r.disabled))
    .collect();
    let groups: Vec<Uuid> = sqlx::query_scalar!(
        "SELECT id FROM groups WHERE id = ANY($1) ORDER BY id FOR SHARE",
        &named_groups
    )
    .fetch_all(&mut *tx)
    .await?;
    let memberships: Vec<(Uuid, Uuid)> = sqlx::query!(
        "SELECT group_id, user_id FROM group_members WHERE group_id = ANY($1)
         ORDER BY group_id, user_id FOR SHARE",
        &named_groups
    )
    .fetch_all(&mut *tx)
    .await?
    .into_iter()
    .map(|r| (r.group_id, r.user_id))
    .collect();
    Ok(tiers
        .iter()
        .map(|tier| TierCheck {
            users_gone: !tier
                .users
                .iter()
                .all(|u| accounts.iter().any(|(id, _)| id == u)),
            groups_gone: !tier.groups.iter().all(|g| groups.contains(g)),
            eligible: accounts
                .iter()
                .filter(|(id, disabled)| {
                    !disabled
                        && (tier.users.contains(id)
                            || memberships
                                .iter()
                                .any(|(g, u)| u == id && tier.groups.contains(g)))
                })
                .count()
                .try_into()
                .unwrap_or(i64::MAX),
        })
        .collect())
}

/// The stored tiers that can no longer be satisfied (members left, accounts disabled):
/// (position, approvals required, eligible approvers).
pub async fn shortfalls(
    db: impl PgExecutor<'_>,
    id: Uuid,
) -> Result<Vec<(i16, i32, i64)>, sqlx::Error> {
    sqlx::query!(
        r#"SELECT t.position, t.approvals_required,
                (SELECT count(DISTINCT u.id) FROM users u
                 WHERE NOT u.disabled
                   AND (EXISTS (SELECT 1 FROM approval_tier_users tu
                                WHERE tu.tier_id = t.id AND tu.user_id = u.id)
                        OR EXISTS (SELECT 1 FROM approval_tier_groups tg
                                   JOIN group_members gm ON gm.group_id = tg.group_id
                                   WHERE tg.tier_id = t.id AND gm.user_id = u.id))) AS "eligible!"
         FROM approval_tiers t WHERE t.profile_id = $1
         ORDER BY t.position"#,
        id
    )
    .fetch_all(db)
    .await
    .map(|rows| {
        rows.into_iter()
            .map(|r| (r.position, r.approvals_required, r.eligible))
            .filter(|(_, r, e)| e < &i64::from(*r))
            .collect()
    })
}

/// Every profile's id and name, by name (the policy form's select).
pub async fn options(db: impl PgExecutor<'_>) -> Result<Vec<(Uuid, String)>, sqlx::Error> {
    sqlx::query!("SELECT id, name FROM connection_profiles ORDER BY lower(name)")
        .fetch_all(db)
        .await
        .map(|rows| rows.into_iter().map(|r| (r.id, r.name)).collect())
}

/// The profile as JSON with its tiers (approvers by name), for the audit log.
async fn snapshot(tx: &mut PgConnection, id: Uuid) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar!(
        r#"SELECT (to_jsonb(cp) || jsonb_build_object('tiers', COALESCE(
                    (SELECT jsonb_agg(jsonb_build_object(
                         'position', t.position,
                         'approvals_required', t.approvals_required,
                         'users', COALESCE((SELECT jsonb_agg(u.username ORDER BY lower(u.username))
                                            FROM approval_tier_users tu JOIN users u ON u.id = tu.user_id
                                            WHERE tu.tier_id = t.id), '[]'::jsonb),
                         'groups', COALESCE((SELECT jsonb_agg(g.name ORDER BY lower(g.name))
                                             FROM approval_tier_groups tg JOIN groups g ON g.id = tg.group_id
                                             WHERE tg.tier_id = t.id), '[]'::jsonb))
                         ORDER BY t.position)
                     FROM approval_tiers t WHERE t.profile_id = cp.id), '[]'::jsonb)))::text
                AS "snapshot!"
         FROM connection_profiles cp WHERE cp.id = $1"#,
        id
    )
    .fetch_optional(tx)
    .await
}

const NAME_KEY: &str = "connection_profiles_name_key";

/// Makes the profile's tiers exactly `tiers`: upserted by position, the rest deleted.
async fn set_tiers(tx: &mut PgConnection, id: Uuid, tiers: &[Tier]) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "DELETE FROM approval_tiers WHERE profile_id = $1 AND position > $2",
        id,
        i16::try_from(tiers.len()).unwrap_or(3)
    )
    .execute(&mut *tx)
    .await?;
    for (i, tier) in tiers.iter().enumerate() {
        let tier_id: Uuid = sqlx::query_scalar!(
            "INSERT INTO approval_tiers (id, profile_id, position, approvals_required)
             VALUES ($1, $2, $3, $4)
             ON CONFLICT (profile_id, position) DO UPDATE
             SET approvals_required = EXCLUDED.approvals_required
             RETURNING id",
            Uuid::now_v7(),
            id,
            i16::try_from(i + 1).unwrap_or(3),
            tier.approvals_required
        )
        .fetch_one(&mut *tx)
        .await?;
        for (table, column, ids) in [
            ("approval_tier_users", "user_id", &tier.users),
            ("approval_tier_groups", "group_id", &tier.groups),
        ] {
            super::replace_links(&mut *tx, table, "tier_id", column, tier_id, ids).await?;
        }
    }
    Ok(())
}

pub async fn create(
    tx: &mut PgConnection,
    actor: &Actor,
    p: &ProfileInput,
) -> Result<Uuid, WriteError> {
    let id = Uuid::now_v7();
    sqlx::query!(
        "INSERT INTO connection_profiles
             (id, name, description, max_duration_minutes, notes_required, ticket_required,
              ticket_pattern, schedule_horizon_days, approval_required, allow_self_approval,
              decision_timeout_minutes, extension_allowed, extension_minutes, max_extensions,
              record_input)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
        id,
        p.name,
        p.description,
        p.max_duration_minutes,
        p.notes_required,
        p.ticket_required,
        p.ticket_pattern,
        p.schedule_horizon_days,
        !p.tiers.is_empty(),
        p.allow_self_approval,
        p.decision_timeout_minutes,
        p.extension_allowed,
        p.extension_minutes,
        p.max_extensions,
        p.record_input
    )
    .execute(&mut *tx)
    .await
    .map_err(|e| WriteError::from_unique(e, NAME_KEY))?;
    set_tiers(tx, id, &p.tiers).await?;
    set_validator(
        tx,
        id,
        p.ticket_validator_url.as_deref(),
        p.ticket_validator_timeout_seconds,
        &p.ticket_validator_on_failure,
    )
    .await?;
    let after = snapshot(tx, id).await?;
    audit::record(
        tx,
        actor,
        Entry {
            action: "create",
            object_kind: "profile",
            object_id: Some(id),
            object_name: &p.name,
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
    p: &ProfileInput,
) -> Result<(), WriteError> {
    sqlx::query_scalar!(
        "SELECT 1 AS one FROM connection_profiles WHERE id = $1 FOR UPDATE",
        id
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(WriteError::NotFound)?;
    let before = snapshot(tx, id).await?;
    sqlx::query!(
        "UPDATE connection_profiles
         SET name = $2, description = $3, max_duration_minutes = $4, notes_required = $5,
             ticket_required = $6, ticket_pattern = $7, schedule_horizon_days = $8,
             approval_required = $9, allow_self_approval = $10,
             decision_timeout_minutes = $11, extension_allowed = $12,
             extension_minutes = $13, max_extensions = $14, record_input = $15,
             updated_at = now()
         WHERE id = $1",
        id,
        p.name,
        p.description,
        p.max_duration_minutes,
        p.notes_required,
        p.ticket_required,
        p.ticket_pattern,
        p.schedule_horizon_days,
        !p.tiers.is_empty(),
        p.allow_self_approval,
        p.decision_timeout_minutes,
        p.extension_allowed,
        p.extension_minutes,
        p.max_extensions,
        p.record_input
    )
    .execute(&mut *tx)
    .await
    .map_err(|e| WriteError::from_unique(e, NAME_KEY))?;
    set_tiers(tx, id, &p.tiers).await?;
    set_validator(
        tx,
        id,
        p.ticket_validator_url.as_deref(),
        p.ticket_validator_timeout_seconds,
        &p.ticket_validator_on_failure,
    )
    .await?;
    let after = snapshot(tx, id).await?;
    audit::record(
        tx,
        actor,
        Entry {
            action: "update",
            object_kind: "profile",
            object_id: Some(id),
            object_name: &p.name,
            before,
            after,
        },
    )
    .await?;
    Ok(())
}

/// Deletes a profile, unless access policies use it: then the message names them.
pub async fn remove(tx: &mut PgConnection, actor: &Actor, id: Uuid) -> Result<Removal, WriteError> {
    let name: String = sqlx::query_scalar!(
        "SELECT name FROM connection_profiles WHERE id = $1 FOR UPDATE",
        id
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(WriteError::NotFound)?;
    let policies: Vec<String> = sqlx::query_scalar!(
        "SELECT name FROM access_policies WHERE profile_id = $1 ORDER BY lower(name)",
        id
    )
    .fetch_all(&mut *tx)
    .await?;
    if !policies.is_empty() {
        return Ok(Removal::InUse(format!(
            "{name} cannot be deleted: it is used by access policies: {}. Give them another profile first.",
            policies.join(", ")
        )));
    }
    let before = snapshot(tx, id).await?;
    sqlx::query!("DELETE FROM connection_profiles WHERE id = $1", id)
        .execute(&mut *tx)
        .await?;
    audit::record(
        tx,
        actor,
        Entry {
            action: "delete",
            object_kind: "profile",
            object_id: Some(id),
            object_name: &name,
            before,
            after: None,
        },
    )
    .await?;
    Ok(Removal::Deleted(name))
}
