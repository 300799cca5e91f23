//! Writes a validated seed file: everything upserted by name in one transaction, or nothing.
//! Rows that would not change are not touched, so applying a file twice changes nothing.

use super::replace_links;
use std::collections::HashMap;

use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::domain::catalog::{LoginMode, Protocol, ResourceKind};
use crate::domain::provisioner::ProvisionerKind;
use crate::domain::role::Role;
use crate::domain::seed::{Ref, Seed, SeedError};

/// Why a seed could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The file refers to things that exist neither in it nor in the database, or describes
    /// something that cannot work. Nothing was written.
    #[error("the seed file has {} error(s)", .0.len())]
    Invalid(Vec<SeedError>),
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    #[error("cannot hash a password: {0}")]
    Hash(String),
}

/// How many entries of each kind the file held.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Summary {
    pub users: usize,
    pub groups: usize,
    pub resources: usize,
    pub activities: usize,
    pub profiles: usize,
    pub policies: usize,
}

/// Applies `seed` in one transaction, with the password hashes of its users (by lowercase
/// username; `crate::seeding::apply` makes them).
pub async fn apply_hashed(
    pool: &PgPool,
    seed: &Seed,
    hashes: &HashMap<String, String>,
) -> Result<Summary, ApplyError> {
    let mut tx = pool.begin().await?;
    let mut errors = Vec::new();
    write(&mut tx, seed, hashes, &mut errors).await?;
    if !errors.is_empty() {
        tx.rollback().await?;
        errors.sort_by_key(|e| e.line);
        return Err(ApplyError::Invalid(errors));
    }
    tx.commit().await?;
    Ok(Summary {
        users: seed.users.len(),
        groups: seed.groups.len(),
        resources: seed.resources.len(),
        activities: seed.activities.len(),
        profiles: seed.profiles.len(),
        policies: seed.policies.len(),
    })
}

async fn write(
    tx: &mut PgConnection,
    seed: &Seed,
    hashes: &HashMap<String, String>,
    errors: &mut Vec<SeedError>,
) -> Result<(), sqlx::Error> {
    for u in &seed.users {
        sqlx::query!(
            "INSERT INTO users (id, username, display_name, role, time_zone, email, disabled, password_hash)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
             ON CONFLICT ((lower(username))) DO UPDATE
             SET display_name = EXCLUDED.display_name, role = EXCLUDED.role,
                 time_zone = EXCLUDED.time_zone, email = EXCLUDED.email,
                 disabled = EXCLUDED.disabled, updated_at = now()
             WHERE (users.display_name, users.role, users.time_zone, users.email, users.disabled)
                   IS DISTINCT FROM
                   (EXCLUDED.display_name, EXCLUDED.role, EXCLUDED.time_zone, EXCLUDED.email, EXCLUDED.disabled)",
            Uuid::now_v7(),
            u.username.as_str(),
            u.display_name.as_str(),
            u.role as Role,
            &u.time_zone,
            u.email.as_deref(),
            u.disabled,
            hashes.get(&u.username.as_str().to_lowercase()).map(String::as_str),
        )
        .execute(&mut *tx)
        .await?;
    }

    for g in &seed.groups {
        // Returns nothing when the row is unchanged, so the id is looked up either way.
        sqlx::query!(
            "INSERT INTO groups (id, name, description) VALUES ($1, $2, $3)
             ON CONFLICT ((lower(name))) DO UPDATE
             SET name = EXCLUDED.name, description = EXCLUDED.description, updated_at = now()
             WHERE (groups.name, groups.description) IS DISTINCT FROM (EXCLUDED.name, EXCLUDED.description)",
            Uuid::now_v7(),
            &g.name,
            &g.description,
        )
        .execute(&mut *tx)
        .await?;
        let id = id_by_name(tx, "groups", "name", &g.name).await?;
        let members = resolve(tx, "users", "username", &g.members, "user", errors).await?;
        replace_links(tx, "group_members", "group_id", "user_id", id, &members).await?;
    }

    for r in &seed.resources {
        // Without a provisioner in the file, how access is granted stays as it is.
        let (provisioner, credential, host_key, database, command) = match &r.access {
            None => (None, None, None, None, None),
            Some(a) => {
                let credential = match &a.credential {
                    None => None,
                    Some(c) => {
                        let found = resolve(
                            tx,
                            "service_credentials",
                            "name",
                            std::slice::from_ref(c),
                            "service credential",
                            errors,
                        )
                        .await?;
                        let Some(id) = found.first() else {
                            // Reported with its line; the whole file is refused.
                            continue;
                        };
                        let kind = crate::db::credentials::get(&mut *tx, *id)
                            .await?
                            .map(|row| row.kind);
                        if let Some(message) = kind.and_then(|k| {
                            crate::domain::target_access::credential_mismatch(a.provisioner, k)
                        }) {
                            errors.push(SeedError {
                                line: c.line,
                                field: c.field.clone(),
                                message,
                            });
                            continue;
                        }
                        Some(*id)
                    }
                };
                (
                    Some(a.provisioner),
                    credential,
                    a.host_key.clone(),
                    a.database_name.clone(),
                    a.command.clone(),
                )
            }
        };
        sqlx::query!(
            "INSERT INTO resources (id, name, kind, platform, address, port, description,
                                    provisioner, credential_id, host_key, database_name,
                                    provisioner_command)
             VALUES ($1, $2, $3, $4, $5, $6, $7, coalesce($8::provisioner_kind, 'simulated'), $9, $10, $11, $12)
             ON CONFLICT ((lower(name))) DO UPDATE
             SET name = EXCLUDED.name, kind = EXCLUDED.kind, platform = EXCLUDED.platform,
                 address = EXCLUDED.address, port = EXCLUDED.port,
                 description = EXCLUDED.description, archived_at = NULL, updated_at = now(),
                 provisioner = coalesce($8, resources.provisioner),
                 credential_id = CASE WHEN $8 IS NULL THEN resources.credential_id ELSE $9 END,
                 host_key = CASE WHEN $8 IS NULL THEN resources.host_key ELSE $10 END,
                 database_name = CASE WHEN $8 IS NULL THEN resources.database_name ELSE $11 END,
                 provisioner_command =
                     CASE WHEN $8 IS NULL THEN resources.provisioner_command ELSE $12 END
             WHERE (resources.name, resources.kind, resources.platform, resources.address,
                    resources.port, resources.description, resources.archived_at,
                    resources.provisioner, resources.credential_id, resources.host_key,
                    resources.database_name, resources.provisioner_command)
                   IS DISTINCT FROM
                   (EXCLUDED.name, EXCLUDED.kind, EXCLUDED.platform, EXCLUDED.address,
                    EXCLUDED.port, EXCLUDED.description, NULL::timestamptz,
                    coalesce($8, resources.provisioner),
                    CASE WHEN $8 IS NULL THEN resources.credential_id ELSE $9 END,
                    CASE WHEN $8 IS NULL THEN resources.host_key ELSE $10 END,
                    CASE WHEN $8 IS NULL THEN resources.database_name ELSE $11 END,
                    CASE WHEN $8 IS NULL THEN resources.provisioner_command ELSE $12 END)",
            Uuid::now_v7(),
            &r.name,
            r.kind as ResourceKind,
            &r.platform,
            &r.address,
            r.port,
            &r.description,
            provisioner as Option<ProvisionerKind>,
            credential,
            host_key,
            database,
            command,
        )
        .execute(&mut *tx)
        .await?;
    }

    for a in &seed.activities {
        sqlx::query!(
            "INSERT INTO activities (id, name, description, platform, protocol, login_mode, login_template,
                                     target_groups, file_transfer, revoke_on_lock)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
             ON CONFLICT ((lower(name))) DO UPDATE
             SET name = EXCLUDED.name, description = EXCLUDED.description,
                 platform = EXCLUDED.platform, protocol = EXCLUDED.protocol,
                 login_mode = EXCLUDED.login_mode, login_template = EXCLUDED.login_template,
                 target_groups = EXCLUDED.target_groups, file_transfer = EXCLUDED.file_transfer,
                 revoke_on_lock = EXCLUDED.revoke_on_lock, archived_at = NULL, updated_at = now()
             WHERE (activities.name, activities.description, activities.platform, activities.protocol,
                    activities.login_mode, activities.login_template, activities.target_groups,
                    activities.file_transfer, activities.revoke_on_lock, activities.archived_at)
                   IS DISTINCT FROM
                   (EXCLUDED.name, EXCLUDED.description, EXCLUDED.platform, EXCLUDED.protocol,
                    EXCLUDED.login_mode, EXCLUDED.login_template, EXCLUDED.target_groups,
                    EXCLUDED.file_transfer, EXCLUDED.revoke_on_lock, NULL::timestamptz)",
            Uuid::now_v7(),
            &a.name,
            &a.description,
            &a.platform,
            a.protocol as Protocol,
            a.login_mode as LoginMode,
            a.login_template.as_deref(),
            &a.target_groups as &[String],
            a.file_transfer,
            a.revoke_on_lock,
        )
        .execute(&mut *tx)
        .await?;
    }

    for p in &seed.profiles {
        let profile_id = sqlx::query_scalar!(
            "INSERT INTO connection_profiles
                 (id, name, description, max_duration_minutes, notes_required, ticket_required,
                  ticket_pattern, schedule_horizon_days, approval_required, allow_self_approval,
                  decision_timeout_minutes, extension_allowed, extension_minutes, max_extensions,
                  record_input)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
             ON CONFLICT ((lower(name))) DO UPDATE
             SET name = EXCLUDED.name, description = EXCLUDED.description,
                 max_duration_minutes = EXCLUDED.max_duration_minutes,
                 notes_required = EXCLUDED.notes_required, ticket_required = EXCLUDED.ticket_required,
                 ticket_pattern = EXCLUDED.ticket_pattern,
                 schedule_horizon_days = EXCLUDED.schedule_horizon_days,
                 approval_required = EXCLUDED.approval_required,
                 allow_self_approval = EXCLUDED.allow_self_approval,
                 decision_timeout_minutes = EXCLUDED.decision_timeout_minutes,
                 extension_allowed = EXCLUDED.extension_allowed,
                 extension_minutes = EXCLUDED.extension_minutes,
                 max_extensions = EXCLUDED.max_extensions, record_input = EXCLUDED.record_input,
                 updated_at = now()
             WHERE (connection_profiles.name, connection_profiles.description,
                    connection_profiles.max_duration_minutes, connection_profiles.notes_required,
                    connection_profiles.ticket_required, connection_profiles.ticket_pattern,
                    connection_profiles.schedule_horizon_days, connection_profiles.approval_required,
                    connection_profiles.allow_self_approval, connection_profiles.decision_timeout_minutes,
                    connection_profiles.extension_allowed, connection_profiles.extension_minutes,
                    connection_profiles.max_extensions, connection_profiles.record_input)
                   IS DISTINCT FROM
                   (EXCLUDED.name, EXCLUDED.description, EXCLUDED.max_duration_minutes,
                    EXCLUDED.notes_required, EXCLUDED.ticket_required, EXCLUDED.ticket_pattern,
                    EXCLUDED.schedule_horizon_days, EXCLUDED.approval_required,
                    EXCLUDED.allow_self_approval, EXCLUDED.decision_timeout_minutes,
                    EXCLUDED.extension_allowed, EXCLUDED.extension_minutes, EXCLUDED.max_extensions,
                    EXCLUDED.record_input)
             RETURNING id",
            Uuid::now_v7(),
            &p.name,
            &p.description,
            p.max_duration_minutes,
            p.notes_required,
            p.ticket_required,
            p.ticket_pattern.as_deref(),
            p.schedule_horizon_days,
            !p.tiers.is_empty(),
            p.allow_self_approval,
            p.decision_timeout_minutes,
            p.extension_allowed,
            p.extension_minutes,
            p.max_extensions,
            p.record_input,
        )
        .fetch_optional(&mut *tx)
        .await?;
        // No row back means the profile exists unchanged.
        let profile_id = match profile_id {
            Some(id) => id,
            None => id_by_name(tx, "connection_profiles", "name", &p.name).await?,
        };
        crate::db::profiles::set_validator(
            tx,
            profile_id,
            p.ticket_validator_url.as_deref(),
            p.ticket_validator_timeout_seconds,
            &p.ticket_validator_on_failure,
        )
        .await?;

        sqlx::query!(
            "DELETE FROM approval_tiers WHERE profile_id = $1 AND position > $2",
            profile_id,
            i16::try_from(p.tiers.len()).unwrap_or(3),
        )
        .execute(&mut *tx)
        .await?;
        for tier in &p.tiers {
            let tier_id = sqlx::query_scalar!(
                "INSERT INTO approval_tiers (id, profile_id, position, approvals_required)
                 VALUES ($1, $2, $3, $4)
                 ON CONFLICT (profile_id, position) DO UPDATE
                 SET approvals_required = EXCLUDED.approvals_required
                 RETURNING id",
                Uuid::now_v7(),
                profile_id,
                tier.position,
                tier.approvals_required,
            )
            .fetch_one(&mut *tx)
            .await?;
            let users = resolve(tx, "users", "username", &tier.users, "user", errors).await?;
            let groups = resolve(tx, "groups", "name", &tier.groups, "group", errors).await?;
            replace_links(
                tx,
                "approval_tier_users",
                "tier_id",
                "user_id",
                tier_id,
                &users,
            )
            .await?;
            replace_links(
                tx,
                "approval_tier_groups",
                "tier_id",
                "group_id",
                tier_id,
                &groups,
            )
            .await?;
            let eligible = sqlx::query_scalar!(
                r#"SELECT count(DISTINCT user_id) AS "eligible!" FROM (
                     SELECT user_id FROM approval_tier_users WHERE tier_id = $1
                     UNION
                     SELECT gm.user_id FROM approval_tier_groups tg
                     JOIN group_members gm ON gm.group_id = tg.group_id WHERE tg.tier_id = $1
                 ) approvers JOIN users u ON u.id = approvers.user_id WHERE NOT u.disabled"#,
                tier_id,
            )
            .fetch_one(&mut *tx)
            .await?;
            if eligible < i64::from(tier.approvals_required) {
                errors.push(SeedError {
                    line: tier.line,
                    field: format!("profiles({}).tiers[{}].approvals_required", p.name, tier.position - 1),
                    message: format!(
                        "requires {} approvals but only {eligible} enabled user(s) can approve in this tier",
                        tier.approvals_required
                    ),
                });
            }
        }
    }

    for p in &seed.policies {
        let profile = resolve(
            tx,
            "connection_profiles",
            "name",
            std::slice::from_ref(&p.profile),
            "connection profile",
            errors,
        )
        .await?;
        let Some(profile_id) = profile.first().copied() else {
            continue;
        };
        let policy_id = sqlx::query_scalar!(
            "INSERT INTO access_policies (id, name, description, profile_id, enabled)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT ((lower(name))) DO UPDATE
             SET name = EXCLUDED.name, description = EXCLUDED.description,
                 profile_id = EXCLUDED.profile_id, enabled = EXCLUDED.enabled, updated_at = now()
             WHERE (access_policies.name, access_policies.description, access_policies.profile_id,
                    access_policies.enabled)
                   IS DISTINCT FROM
                   (EXCLUDED.name, EXCLUDED.description, EXCLUDED.profile_id, EXCLUDED.enabled)
             RETURNING id",
            Uuid::now_v7(),
            &p.name,
            &p.description,
            profile_id,
            p.enabled,
        )
        .fetch_optional(&mut *tx)
        .await?;
        let policy_id = match policy_id {
            Some(id) => id,
            None => id_by_name(tx, "access_policies", "name", &p.name).await?,
        };
        let users = resolve(tx, "users", "username", &p.users, "user", errors).await?;
        let groups = resolve(tx, "groups", "name", &p.groups, "group", errors).await?;
        let activities =
            resolve(tx, "activities", "name", &p.activities, "activity", errors).await?;
        let resources = resolve(tx, "resources", "name", &p.resources, "resource", errors).await?;
        replace_links(
            tx,
            "policy_users",
            "policy_id",
            "user_id",
            policy_id,
            &users,
        )
        .await?;
        replace_links(
            tx,
            "policy_groups",
            "policy_id",
            "group_id",
            policy_id,
            &groups,
        )
        .await?;
        replace_links(
            tx,
            "policy_activities",
            "policy_id",
            "activity_id",
            policy_id,
            &activities,
        )
        .await?;
        replace_links(
            tx,
            "policy_resources",
            "policy_id",
            "resource_id",
            policy_id,
            &resources,
        )
        .await?;
    }
    Ok(())
}

async fn id_by_name(
    tx: &mut PgConnection,
    table: &'static str,
    column: &'static str,
    name: &str,
) -> Result<Uuid, sqlx::Error> {
    // Runtime SQL: one helper for several tables; table and column names are constants of
    // this module, never input.
    sqlx::query_scalar(&format!(
        "SELECT id FROM {table} WHERE lower({column}) = lower($1)"
    ))
    .bind(name)
    .fetch_one(&mut *tx)
    .await
}

/// Looks up referenced names (case-insensitively); each unknown one becomes an error at its
/// line. Returns the ids found.
async fn resolve(
    tx: &mut PgConnection,
    table: &'static str,
    column: &'static str,
    refs: &[Ref],
    what: &str,
    errors: &mut Vec<SeedError>,
) -> Result<Vec<Uuid>, sqlx::Error> {
    if refs.is_empty() {
        return Ok(Vec::new());
    }
    let names: Vec<String> = refs.iter().map(|r| r.name.to_lowercase()).collect();
    // Runtime SQL: one helper for several tables, the names given by the caller.
    let rows: Vec<(Uuid, String)> = sqlx::query_as(&format!(
        "SELECT id, lower({column}) FROM {table} WHERE lower({column}) = ANY($1)"
    ))
    .bind(&names)
    .fetch_all(&mut *tx)
    .await?;
    let found: HashMap<String, Uuid> = rows.into_iter().map(|(id, n)| (n, id)).collect();
    let mut ids = Vec::new();
    for r in refs {
        match found.get(&r.name.to_lowercase()) {
            Some(id) if !ids.contains(id) => ids.push(*id),
            Some(_) => {}
            None => errors.push(SeedError {
                line: r.line,
                field: r.field.clone(),
                message: format!(
                    "unknown {what} \"{}\": define it in this file or create it first",
                    r.name
                ),
            }),
        }
    }
    Ok(ids)
}
