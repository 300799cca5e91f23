//! What the access policies grant a user: the wizard's reads.

use sqlx::PgExecutor;
use uuid::Uuid;

use crate::domain::catalog::{LoginMode, Protocol, ResourceKind};

/// An activity as one policy grants it.
#[derive(Debug, Clone)]
pub struct GrantedActivity {
    pub activity_id: Uuid,
    pub name: String,
    pub platform: String,
    pub description: String,
    pub protocol: Protocol,
    pub login_mode: LoginMode,
    pub policy_id: Uuid,
    pub policy_name: String,
    pub profile_name: String,
    pub approval_required: bool,
}

/// Every (activity, policy) pair granted to the user, by activity name then policy name.
pub async fn granted_activities(
    db: impl PgExecutor<'_>,
    user: Uuid,
) -> Result<Vec<GrantedActivity>, sqlx::Error> {
    // `mine`: the enabled policies whose members include the user, directly or through a
    // group (the same in `grant`).
    sqlx::query_as!(
        GrantedActivity,
        r#"WITH mine AS (
             SELECT p.id FROM access_policies p
             WHERE p.enabled AND (
                 EXISTS (SELECT 1 FROM policy_users pu
                         WHERE pu.policy_id = p.id AND pu.user_id = $1)
                 OR EXISTS (SELECT 1 FROM policy_groups pg
                            JOIN group_members gm ON gm.group_id = pg.group_id
                            WHERE pg.policy_id = p.id AND gm.user_id = $1)))
         SELECT a.id AS activity_id, a.name, a.platform, a.description,
                a.protocol AS "protocol: Protocol", a.login_mode AS "login_mode: LoginMode",
                p.id AS policy_id, p.name AS policy_name, cp.name AS profile_name,
                cp.approval_required
         FROM mine
         JOIN access_policies p ON p.id = mine.id
         JOIN connection_profiles cp ON cp.id = p.profile_id
         JOIN policy_activities pa ON pa.policy_id = p.id
         JOIN activities a ON a.id = pa.activity_id AND a.archived_at IS NULL
         ORDER BY lower(a.name), lower(p.name)"#,
        user,
    )
    .fetch_all(db)
    .await
}

/// The rules of a connection profile.
#[derive(Debug, Clone)]
pub struct Profile {
    pub id: Uuid,
    pub name: String,
    pub max_duration_minutes: i32,
    pub notes_required: bool,
    pub ticket_required: bool,
    pub ticket_pattern: Option<String>,
    pub schedule_horizon_days: i32,
    pub approval_required: bool,
    pub allow_self_approval: bool,
    pub decision_timeout_minutes: i32,
    pub extension_allowed: bool,
    pub extension_minutes: i32,
    pub max_extensions: i32,
}

/// An activity, a policy that grants it to the user, and that policy's profile: everything
/// the later pages and Finish need.
#[derive(Debug, Clone)]
pub struct Grant {
    pub activity_id: Uuid,
    pub activity_name: String,
    pub activity_platform: String,
    pub protocol: Protocol,
    pub login_mode: LoginMode,
    pub login_template: Option<String>,
    pub policy_id: Uuid,
    pub policy_name: String,
    pub profile: Profile,
}

/// The grant of `activity` through `policy` to `user`, if the policy (still) gives it.
pub async fn grant(
    db: impl PgExecutor<'_>,
    user: Uuid,
    activity: Uuid,
    policy: Uuid,
) -> Result<Option<Grant>, sqlx::Error> {
    // `mine` as in `granted_activities`.
    let row = sqlx::query!(
        r#"WITH mine AS (
             SELECT p.id FROM access_policies p
             WHERE p.enabled AND (
                 EXISTS (SELECT 1 FROM policy_users pu
                         WHERE pu.policy_id = p.id AND pu.user_id = $1)
                 OR EXISTS (SELECT 1 FROM policy_groups pg
                            JOIN group_members gm ON gm.group_id = pg.group_id
                            WHERE pg.policy_id = p.id AND gm.user_id = $1)))
         SELECT a.id AS activity_id, a.name AS activity_name, a.platform AS activity_platform,
                a.protocol AS "protocol: Protocol", a.login_mode AS "login_mode: LoginMode",
                a.login_template,
                p.id AS policy_id, p.name AS policy_name,
                cp.id, cp.name, cp.max_duration_minutes, cp.notes_required, cp.ticket_required,
                cp.ticket_pattern, cp.schedule_horizon_days, cp.approval_required,
                cp.allow_self_approval, cp.decision_timeout_minutes, cp.extension_allowed,
                cp.extension_minutes, cp.max_extensions
         FROM mine
         JOIN access_policies p ON p.id = mine.id
         JOIN connection_profiles cp ON cp.id = p.profile_id
         JOIN policy_activities pa ON pa.policy_id = p.id AND pa.activity_id = $2
         JOIN activities a ON a.id = pa.activity_id AND a.archived_at IS NULL
         WHERE p.id = $3"#,
        user,
        activity,
        policy,
    )
    .fetch_optional(db)
    .await?;
    Ok(row.map(|r| Grant {
        activity_id: r.activity_id,
        activity_name: r.activity_name,
        activity_platform: r.activity_platform,
        protocol: r.protocol,
        login_mode: r.login_mode,
        login_template: r.login_template,
        policy_id: r.policy_id,
        policy_name: r.policy_name,
        profile: Profile {
            id: r.id,
            name: r.name,
            max_duration_minutes: r.max_duration_minutes,
            notes_required: r.notes_required,
            ticket_required: r.ticket_required,
            ticket_pattern: r.ticket_pattern,
            schedule_horizon_days: r.schedule_horizon_days,
            approval_required: r.approval_required,
            allow_self_approval: r.allow_self_approval,
            decision_timeout_minutes: r.decision_timeout_minutes,
            extension_allowed: r.extension_allowed,
            extension_minutes: r.extension_minutes,
            max_extensions: r.max_extensions,
        },
    }))
}

/// A resource as the wizard lists it.
#[derive(Debug, Clone)]
pub struct Resource {
    pub id: Uuid,
    pub name: String,
    pub kind: ResourceKind,
    pub platform: String,
    pub address: String,
    pub port: Option<i32>,
}

/// A `LIKE` pattern matching `text` anywhere (lower-cased), with `%`, `_` and backslash
/// taken literally.
pub fn contains_pattern(text: &str) -> String {
    let mut p = String::with_capacity(text.len() + 2);
    p.push('%');
    for c in text.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('%');
    p
}

/// One page of the resources a policy grants, matching `search` in name, platform or
/// address, and how many match in all (0 when the page is past the end). Substring search
/// uses the trigram indexes.
pub async fn granted_resources(
    db: impl PgExecutor<'_>,
    policy: Uuid,
    search: &str,
    limit: i64,
    offset: i64,
) -> Result<(Vec<Resource>, i64), sqlx::Error> {
    // Two statements rather than one with an optional filter, so each gets its own plan.
    let rows: Vec<(Resource, i64)> = if search.is_empty() {
        sqlx::query!(
            r#"SELECT r.id, r.name, r.kind AS "kind: ResourceKind", r.platform, r.address, r.port,
                      count(*) OVER () AS "total!"
               FROM policy_resources pr
               JOIN resources r ON r.id = pr.resource_id AND r.archived_at IS NULL
               WHERE pr.policy_id = $1
               ORDER BY lower(r.name), r.id LIMIT $2 OFFSET $3"#,
            policy,
            limit,
            offset,
        )
        .fetch_all(db)
        .await?
        .into_iter()
        .map(|r| {
            let resource = Resource {
                id: r.id,
                name: r.name,
                kind: r.kind,
                platform: r.platform,
                address: r.address,
                port: r.port,
            };
            (resource, r.total)
        })
        .collect()
    } else {
        sqlx::query!(
            r#"SELECT r.id, r.name, r.kind AS "kind: ResourceKind", r.platform, r.address, r.port,
                      count(*) OVER () AS "total!"
               FROM policy_resources pr
               JOIN resources r ON r.id = pr.resource_id AND r.archived_at IS NULL
               WHERE pr.policy_id = $1
                 AND (lower(r.name) LIKE $4 OR lower(r.platform) LIKE $4
                      OR lower(r.address) LIKE $4)
               ORDER BY lower(r.name), r.id LIMIT $2 OFFSET $3"#,
            policy,
            limit,
            offset,
            contains_pattern(search),
        )
        .fetch_all(db)
        .await?
        .into_iter()
        .map(|r| {
            let resource = Resource {
                id: r.id,
                name: r.name,
                kind: r.kind,
                platform: r.platform,
                address: r.address,
                port: r.port,
            };
            (resource, r.total)
        })
        .collect()
    };
    let total = rows.first().map_or(0, |r| r.1);
    Ok((rows.into_iter().map(|r| r.0).collect(), total))
}

/// The resources among `ids` that `policy` grants (and are not archived), in `ids`' order.
pub async fn granted_subset(
    db: impl PgExecutor<'_>,
    policy: Uuid,
    ids: &[Uuid],
) -> Result<Vec<Resource>, sqlx::Error> {
    sqlx::query_as!(
        Resource,
        r#"SELECT r.id, r.name, r.kind AS "kind: ResourceKind", r.platform, r.address, r.port
         FROM unnest($2::uuid[]) WITH ORDINALITY AS wanted(id, n)
         JOIN policy_resources pr ON pr.resource_id = wanted.id AND pr.policy_id = $1
         JOIN resources r ON r.id = wanted.id AND r.archived_at IS NULL
         ORDER BY wanted.n"#,
        policy,
        ids,
    )
    .fetch_all(db)
    .await
}

/// One approval tier as the Review page shows it.
#[derive(Debug, Clone)]
pub struct TierView {
    pub position: i16,
    pub approvals_required: i32,
    /// Users by display name, then groups as "group NAME".
    pub approvers: Vec<String>,
}

/// The profile's approval tiers with who can approve in each.
pub async fn tiers(db: impl PgExecutor<'_>, profile: Uuid) -> Result<Vec<TierView>, sqlx::Error> {
    sqlx::query_as!(
        TierView,
        r#"SELECT t.position, t.approvals_required,
                ARRAY(SELECT u.display_name FROM approval_tier_users tu
                      JOIN users u ON u.id = tu.user_id WHERE tu.tier_id = t.id
                      ORDER BY lower(u.display_name))
                || ARRAY(SELECT 'group ' || g.name FROM approval_tier_groups tg
                         JOIN groups g ON g.id = tg.group_id WHERE tg.tier_id = t.id
                         ORDER BY lower(g.name)) AS "approvers!"
         FROM approval_tiers t WHERE t.profile_id = $1 ORDER BY t.position"#,
        profile,
    )
    .fetch_all(db)
    .await
}

#[cfg(test)]
mod tests {
    use super::contains_pattern;

    #[test]
    fn search_terms_match_literally_inside_like_patterns() {
        assert_eq!(contains_pattern("Web_01"), "%web\\_01%");
        assert_eq!(contains_pattern("100%"), "%100\\%%");
        assert_eq!(contains_pattern("a\\b"), "%a\\\\b%");
    }
}
