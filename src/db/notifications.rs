//! The SQL of the notification queue (table `notifications`): claiming due rows under a
//! lease, the facts an email needs, and recording what happened (the sender is
//! `crate::notify`).

use std::time::Duration;

use sqlx::PgPool;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::domain::status::SessionStatus;

/// What an email is about, mirrored by the PostgreSQL enum `notification_kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, sqlx::Type)]
#[sqlx(type_name = "notification_kind", rename_all = "snake_case")]
pub enum Kind {
    /// Approvers of the tier now deciding.
    ApprovalNeeded,
    /// The requester: approved.
    Approved,
    /// The requester: denied.
    Denied,
    /// The requester: no decision in time.
    Expired,
    /// The requester: the session ends within ten minutes.
    EndingSoon,
}

/// A queue row taken by this sender until its lease runs out.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub id: i64,
    pub kind: Kind,
    pub request_id: Uuid,
    pub tier: Option<i16>,
    pub ends_at: Option<OffsetDateTime>,
    pub delivered_to: Vec<Uuid>,
    pub created_at: OffsetDateTime,
    // The session as it is now, and the event that caused the row.
    pub session_id: Uuid,
    pub resource_name: String,
    pub status: SessionStatus,
    pub current_tier: Option<i16>,
    pub requested_start: OffsetDateTime,
    pub session_ends_at: OffsetDateTime,
    pub can_extend: bool,
    pub actor_name: Option<String>,
    pub comment: String,
}

/// Queues the "ends in ten minutes" warning of every usable session whose end is that close,
/// once per session and end time. Sessions whose whole window is shorter than the warning
/// get none: they would be warned as they begin.
pub async fn enqueue_ending_soon(pool: &PgPool, lead: Duration) -> Result<u64, sqlx::Error> {
    let lead_secs = lead.as_secs_f64();
    // Runtime SQL: the usable statuses are rendered from the domain (status_sql) to match the
    // partial index.
    let done = sqlx::query(&format!(
        "INSERT INTO notifications (kind, session_id, request_id, ends_at)
         SELECT 'ending_soon', s.id, s.request_id, s.ends_at
         FROM activity_sessions s
         WHERE s.status IN {usable}
           AND s.ends_at > now()
           AND s.ends_at <= now() + make_interval(secs => $1)
           AND s.ends_at - coalesce(s.available_at, s.requested_start) > make_interval(secs => $1)
         ON CONFLICT (session_id, ends_at) WHERE kind = 'ending_soon' DO NOTHING",
        usable = *crate::db::status_sql::USABLE
    ))
    .bind(lead_secs)
    .execute(pool)
    .await?;
    Ok(done.rows_affected())
}

/// Takes the due rows of up to `requests` requests that have had no new event for `settle`
/// (so that sessions changed by one click, in one transaction each, go out in one email) and
/// pushes their next attempt `lease` ahead: other instances skip them meanwhile, and if this
/// one dies they come due again. The row locks last only for this statement, never across
/// SMTP.
pub async fn claim(
    pool: &PgPool,
    requests: i64,
    settle: Duration,
    lease: Duration,
) -> Result<Vec<Claimed>, sqlx::Error> {
    // The CTEs hide the columns' nullability from sqlx: the overrides say what the schema does.
    sqlx::query_as!(
        Claimed,
        r#"WITH due AS (
             SELECT id FROM notifications
             WHERE next_attempt_at <= now()
               AND request_id IN (SELECT request_id FROM notifications
                                  WHERE next_attempt_at <= now()
                                  GROUP BY request_id
                                  HAVING coalesce(max(created_at) FILTER (WHERE kind <> 'ending_soon'),
                                                  '-infinity') <= now() - make_interval(secs => $3)
                                  ORDER BY min(next_attempt_at), request_id LIMIT $1)
             FOR UPDATE SKIP LOCKED
         ), claimed AS (
             UPDATE notifications n SET next_attempt_at = now() + make_interval(secs => $2)
             FROM due WHERE n.id = due.id
             RETURNING n.*
         )
         SELECT c.id AS "id!", c.kind AS "kind!: Kind", c.request_id AS "request_id!",
                c.tier AS "tier?", c.ends_at AS "ends_at?", c.delivered_to AS "delivered_to!",
                c.created_at AS "created_at!",
                s.id AS "session_id!", s.resource_name AS "resource_name!",
                s.status AS "status!: SessionStatus", s.current_tier AS "current_tier?",
                s.requested_start AS "requested_start!", s.ends_at AS "session_ends_at!",
                (r.extension_minutes > 0 AND s.extensions_used < r.max_extensions)
                    AS "can_extend!",
                CASE WHEN e.actor_id IS NOT NULL THEN e.actor_name END AS "actor_name?",
                coalesce(CASE c.kind
                    WHEN 'denied' THEN e.comment
                    WHEN 'approved' THEN (SELECT d.comment FROM approval_decisions d
                                          WHERE d.session_id = s.id AND d.approver_id = e.actor_id
                                            AND d.decision = 'approved'
                                          ORDER BY d.decided_at DESC LIMIT 1)
                END, '') AS "comment!"
         FROM claimed c
         JOIN activity_sessions s ON s.id = c.session_id
         JOIN requests r ON r.id = c.request_id
         LEFT JOIN session_events e ON e.id = c.event_id
         ORDER BY c.request_id, c.kind, c.tier, s.resource_name, c.id"#,
        requests,
        lease.as_secs_f64(),
        settle.as_secs_f64(),
    )
    .fetch_all(pool)
    .await
}

/// The request an email is about, and its requester.
#[derive(Debug, Clone)]
pub struct RequestRow {
    pub activity_name: String,
    pub notes: String,
    pub ticket_number: String,
    pub tier_count: i16,
    pub profile_id: Option<Uuid>,
    pub allow_self_approval: bool,
    pub requester_id: Uuid,
    pub requester_name: String,
}

pub async fn request(pool: &PgPool, id: Uuid) -> Result<Option<RequestRow>, sqlx::Error> {
    sqlx::query_as!(
        RequestRow,
        "SELECT r.activity_name, r.notes, r.ticket_number, r.tier_count, r.profile_id,
                r.allow_self_approval, r.requester_id, u.display_name AS requester_name
         FROM requests r JOIN users u ON u.id = r.requester_id
         WHERE r.id = $1",
        id,
    )
    .fetch_optional(pool)
    .await
}

/// Someone to write to: an enabled account with an email address.
#[derive(Debug, Clone)]
pub struct Recipient {
    pub id: Uuid,
    pub display_name: String,
    pub email: String,
    pub time_zone: String,
}

/// The requester, if they can be written to.
pub async fn requester(pool: &PgPool, id: Uuid) -> Result<Vec<Recipient>, sqlx::Error> {
    sqlx::query_as!(
        Recipient,
        r#"SELECT id, display_name, email AS "email!", time_zone FROM users
         WHERE id = $1 AND email IS NOT NULL AND NOT disabled"#,
        id,
    )
    .fetch_all(pool)
    .await
}

/// The approvers of tier `position` of the profile (named directly or through a group)
/// who can be written to, without the requester unless the request allows self-approval.
pub async fn approvers(
    pool: &PgPool,
    profile: Uuid,
    position: i16,
    requester: Uuid,
    allow_self_approval: bool,
) -> Result<Vec<Recipient>, sqlx::Error> {
    sqlx::query_as!(
        Recipient,
        r#"SELECT u.id, u.display_name, u.email AS "email!", u.time_zone
         FROM users u
         WHERE u.id IN (
                 SELECT tu.user_id FROM approval_tiers t
                 JOIN approval_tier_users tu ON tu.tier_id = t.id
                 WHERE t.profile_id = $1 AND t.position = $2
                 UNION
                 SELECT gm.user_id FROM approval_tiers t
                 JOIN approval_tier_groups tg ON tg.tier_id = t.id
                 JOIN group_members gm ON gm.group_id = tg.group_id
                 WHERE t.profile_id = $1 AND t.position = $2)
           AND u.email IS NOT NULL AND NOT u.disabled
           AND (u.id <> $3 OR $4)
         ORDER BY u.display_name, u.id"#,
        profile,
        position,
        requester,
        allow_self_approval,
    )
    .fetch_all(pool)
    .await
}

/// Notes that `user` has been mailed about these rows.
pub async fn delivered(pool: &PgPool, rows: &[i64], user: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "UPDATE notifications SET delivered_to = array_append(delivered_to, $2)
         WHERE id = ANY($1) AND NOT ($2 = ANY(delivered_to))",
        rows,
        user,
    )
    .execute(pool)
    .await
    .map(|_| ())
}

/// Every recipient has these rows: done.
pub async fn sent(pool: &PgPool, rows: &[i64]) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "UPDATE notifications SET sent_at = now(), next_attempt_at = NULL WHERE id = ANY($1)",
        rows,
    )
    .execute(pool)
    .await
    .map(|_| ())
}

/// These rows will never be sent, for `reason`.
pub async fn skip(pool: &PgPool, rows: &[i64], reason: &str) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "UPDATE notifications SET skipped = left($2, 500), next_attempt_at = NULL
         WHERE id = ANY($1)",
        rows,
        reason,
    )
    .execute(pool)
    .await
    .map(|_| ())
}

/// An attempt failed: count it and try again after `first_backoff` × 2^(failures so far),
/// or give up (no next attempt) after `max_attempts`, keeping the error.
pub async fn failed(
    pool: &PgPool,
    rows: &[i64],
    error: &str,
    first_backoff: Duration,
    max_attempts: i32,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "UPDATE notifications
         SET attempts = attempts + 1,
             next_attempt_at = CASE WHEN attempts + 1 >= $3 THEN NULL
                                    ELSE now() + make_interval(secs => $4 * power(2, attempts)) END,
             last_error = left($2, 2000)
         WHERE id = ANY($1)",
        rows,
        error,
        max_attempts,
        first_backoff.as_secs_f64(),
    )
    .execute(pool)
    .await
    .map(|_| ())
}

/// Hands rows back untried (this pass ran out of time): due again at once.
pub async fn release(pool: &PgPool, rows: &[i64]) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "UPDATE notifications SET next_attempt_at = now() WHERE id = ANY($1)",
        rows
    )
    .execute(pool)
    .await
    .map(|_| ())
}
