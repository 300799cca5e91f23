//! Finish: a wizard draft becomes a request and one activity session per resource, in one
//! transaction, exactly once per draft.

use std::net::IpAddr;

use sqlx::{PgConnection, PgPool};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use crate::db::catalog::{self, Grant, Resource};
use crate::db::sessions::{self, Actor, NewEvent};
use crate::domain::catalog::{LoginMode, Protocol};
use crate::domain::event::EventKind;
use crate::domain::status::SessionStatus;
use crate::domain::wizard::Window;

/// What Finish creates.
pub struct NewRequest<'a> {
    pub id: Uuid,
    pub requester: Uuid,
    pub requester_name: &'a str,
    pub grant: &'a Grant,
    pub resources: &'a [Resource],
    pub notes: &'a str,
    pub ticket: &'a str,
    pub window: Window,
    pub client: Option<IpAddr>,
}

/// The outcome of Finish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Created {
    pub sessions: usize,
    pub status: SessionStatus,
    /// The sessions that start now and need provisioning.
    pub to_provision: Vec<Uuid>,
    /// False when this draft had already been finished (a double click or a replay).
    pub new: bool,
}

/// The status a new session starts in (DESIGN section 3).
pub fn initial_status(approval_required: bool, start_now: bool) -> SessionStatus {
    match (approval_required, start_now) {
        (true, _) => SessionStatus::WaitingForApproval,
        (false, true) => SessionStatus::Provisioning,
        (false, false) => SessionStatus::Pending,
    }
}

/// A request that already exists for this draft id, as Finish reported it.
pub async fn existing(
    db: &PgPool,
    id: Uuid,
    requester: Uuid,
) -> Result<Option<Created>, sqlx::Error> {
    let rows = sqlx::query_scalar!(
        r#"SELECT s.status AS "status: SessionStatus"
         FROM activity_sessions s JOIN requests r ON r.id = s.request_id
         WHERE r.id = $1 AND r.requester_id = $2 ORDER BY s.created_at"#,
        id,
        requester,
    )
    .fetch_all(db)
    .await?;
    let Some(first) = rows.first() else {
        // A request id that belongs to someone else is reported as not existing.
        return Ok(None);
    };
    Ok(Some(Created {
        sessions: rows.len(),
        status: *first,
        to_provision: Vec::new(),
        new: false,
    }))
}

/// Inserts the request and its sessions with their events. The request id is the draft's,
/// so a second call with the same draft inserts nothing (`ON CONFLICT DO NOTHING` waits for
/// a concurrent first call to commit, then finds its row).
pub async fn create(
    tx: &mut PgConnection,
    r: &NewRequest<'_>,
) -> Result<Option<Created>, sqlx::Error> {
    let profile = &r.grant.profile;
    let tier_count: i16 = if profile.approval_required {
        sqlx::query_scalar!(
            r#"SELECT count(*)::int2 AS "count!" FROM approval_tiers WHERE profile_id = $1"#,
            profile.id
        )
        .fetch_one(&mut *tx)
        .await?
    } else {
        0
    };
    let approval = tier_count > 0;
    let deadline = approval.then(|| {
        OffsetDateTime::now_utc() + Duration::minutes(i64::from(profile.decision_timeout_minutes))
    });
    // The window's length: the profile's maximum from the wizard, or less when asked.
    let duration_minutes = i32::try_from((r.window.end - r.window.start).whole_minutes())
        .unwrap_or(profile.max_duration_minutes);
    let inserted = sqlx::query!(
        "INSERT INTO requests (id, requester_id, policy_id, profile_id, activity_id, policy_name,
             profile_name, activity_name, protocol, login_mode, login_template, notes,
             ticket_number, start_now, requested_start, duration_minutes, tier_count,
             allow_self_approval, decision_deadline, extension_minutes, max_extensions,
             target_groups)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21,
                 coalesce((SELECT a.target_groups FROM activities a WHERE a.id = $5), '{}'))
         ON CONFLICT (id) DO NOTHING",
        r.id,
        r.requester,
        r.grant.policy_id,
        profile.id,
        r.grant.activity_id,
        &r.grant.policy_name,
        &profile.name,
        &r.grant.activity_name,
        r.grant.protocol as Protocol,
        r.grant.login_mode as LoginMode,
        r.grant.login_template.as_deref(),
        r.notes,
        r.ticket,
        r.window.start_now,
        r.window.start,
        duration_minutes,
        tier_count,
        profile.allow_self_approval,
        deadline,
        if profile.extension_allowed { profile.extension_minutes } else { 0 },
        if profile.extension_allowed { profile.max_extensions } else { 0 },
    )
    .execute(&mut *tx)
    .await?;
    if inserted.rows_affected() == 0 {
        return Ok(None);
    }

    let status = initial_status(approval, r.window.start_now);
    let mut to_provision = Vec::new();
    for resource in r.resources {
        let id = Uuid::now_v7();
        sqlx::query!(
            "INSERT INTO activity_sessions (id, request_id, requester_id, resource_id, resource_name,
                 resource_address, resource_port, activity_name, status, current_tier,
                 requested_start, ends_at, notes, ticket_number)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
            id,
            r.id,
            r.requester,
            resource.id,
            &resource.name,
            &resource.address,
            resource.port,
            &r.grant.activity_name,
            status as SessionStatus,
            approval.then_some(1i16),
            r.window.start,
            r.window.end,
            r.notes,
            r.ticket,
        )
        .execute(&mut *tx)
        .await?;
        let comment = match status {
            SessionStatus::WaitingForApproval => "Requested; waiting for approval.",
            SessionStatus::Pending => "Requested; starts at the scheduled time.",
            _ => "Requested; starting now.",
        };
        sessions::record(
            tx,
            &NewEvent {
                session: id,
                actor: Actor::User {
                    id: r.requester,
                    name: r.requester_name,
                },
                kind: EventKind::Requested,
                from: None,
                to: Some(status),
                comment,
                client: r.client,
            },
        )
        .await?;
        if status == SessionStatus::Provisioning {
            to_provision.push(id);
        }
    }
    Ok(Some(Created {
        sessions: r.resources.len(),
        status,
        to_provision,
        new: true,
    }))
}

/// Re-reads the grant and the resources inside the Finish transaction, so that a policy
/// changed since the wizard began is noticed before anything is written.
pub async fn recheck(
    tx: &mut PgConnection,
    requester: Uuid,
    activity: Uuid,
    policy: Uuid,
    resources: &[Uuid],
) -> Result<Result<(Grant, Vec<Resource>), String>, sqlx::Error> {
    let Some(grant) = catalog::grant(&mut *tx, requester, activity, policy).await? else {
        return Ok(Err(
            "The access policy no longer grants you this activity. Nothing was created; choose the activity again.".into(),
        ));
    };
    let granted = catalog::granted_subset(&mut *tx, policy, resources).await?;
    if granted.len() != resources.len() {
        let missing = resources.len() - granted.len();
        return Ok(Err(format!(
            "{missing} of the selected resources are no longer available to you under {}. Nothing was created; review Resource Selection.",
            grant.policy_name
        )));
    }
    Ok(Ok((grant, granted)))
}

/// Stores what the ticket validator said about the request's ticket.
pub async fn record_ticket_check(
    tx: &mut PgConnection,
    request: Uuid,
    check: &crate::domain::ticket_check::TicketCheck,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "UPDATE requests SET ticket_check_outcome = $2, ticket_check_message = left($3, 1000)
         WHERE id = $1",
        request,
        check.outcome.key(),
        &check.message,
    )
    .execute(tx)
    .await
    .map(|_| ())
}
