//! The request page: one request with its resources, tiers, decisions and the requester's
//! recent requests, and who may see it.

use sqlx::PgExecutor;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::db::approvals::Decision;
use crate::domain::status::SessionStatus;

/// The request itself.
#[derive(Debug, Clone)]
pub struct Header {
    pub id: Uuid,
    pub requester_id: Uuid,
    pub requester_name: String,
    pub created_at: OffsetDateTime,
    pub activity_name: String,
    pub policy_name: String,
    pub profile_name: String,
    pub notes: String,
    pub ticket_number: String,
    pub requested_start: OffsetDateTime,
    pub duration_minutes: i32,
    pub tier_count: i16,
    pub decision_deadline: Option<OffsetDateTime>,
    /// The ticket validator's verdict (`open`, `closed`, `unknown`, `failed`) and message.
    pub ticket_check_outcome: Option<String>,
    pub ticket_check_message: Option<String>,
}

/// One resource of the request, with its session.
#[derive(Debug, Clone)]
pub struct Resource {
    pub session_id: Uuid,
    pub resource_name: String,
    pub login_account: Option<String>,
    pub status: SessionStatus,
    pub current_tier: Option<i16>,
    pub ends_at: OffsetDateTime,
}

/// One approval tier of the request's profile, with who may decide in it.
#[derive(Debug, Clone)]
pub struct Tier {
    pub position: i16,
    pub approvals_required: i32,
    pub approvers: Vec<String>,
}

/// One decision taken on one of the request's sessions.
#[derive(Debug, Clone)]
pub struct DecisionRow {
    pub resource_name: String,
    pub tier: i16,
    pub approver_name: String,
    pub decision: Decision,
    pub comment: String,
    pub decided_at: OffsetDateTime,
}

/// One of the requester's other requests, with the statuses of its sessions.
#[derive(Debug, Clone)]
pub struct Recent {
    pub id: Uuid,
    pub created_at: OffsetDateTime,
    pub activity_name: String,
    pub statuses: Vec<SessionStatus>,
}

/// The request, if it exists.
pub async fn header(db: impl PgExecutor<'_>, id: Uuid) -> Result<Option<Header>, sqlx::Error> {
    sqlx::query_as!(
        Header,
        "SELECT r.id, r.requester_id, u.display_name AS requester_name, r.created_at,
                r.activity_name, r.policy_name, r.profile_name, r.notes, r.ticket_number,
                r.requested_start, r.duration_minutes, r.tier_count, r.decision_deadline,
                r.ticket_check_outcome, r.ticket_check_message
         FROM requests r JOIN users u ON u.id = r.requester_id WHERE r.id = $1",
        id,
    )
    .fetch_optional(db)
    .await
}

/// Whether `user` may decide on the request now (named in the current tier of one of its
/// sessions still waiting, and not its requester unless self-approval is allowed) or has
/// decided on it.
pub async fn is_decider(
    db: impl PgExecutor<'_>,
    user: Uuid,
    request: Uuid,
) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar!(
        r#"SELECT EXISTS (
             SELECT 1 FROM approval_decisions d JOIN activity_sessions s ON s.id = d.session_id
             WHERE s.request_id = $2 AND d.approver_id = $1)
         OR EXISTS (
             SELECT 1 FROM activity_sessions s
             JOIN requests r ON r.id = s.request_id
             JOIN approval_tiers t ON t.profile_id = r.profile_id AND t.position = s.current_tier
             WHERE s.request_id = $2 AND s.status = 'waiting_for_approval'
               AND (s.requester_id <> $1 OR r.allow_self_approval)
               AND (EXISTS (SELECT 1 FROM approval_tier_users tu WHERE tu.tier_id = t.id AND tu.user_id = $1)
                    OR EXISTS (SELECT 1 FROM approval_tier_groups tg
                               JOIN group_members gm ON gm.group_id = tg.group_id
                               WHERE tg.tier_id = t.id AND gm.user_id = $1))) AS "decider!""#,
        user,
        request,
    )
    .fetch_one(db)
    .await
}

/// The request's sessions, by resource name.
pub async fn resources(db: impl PgExecutor<'_>, id: Uuid) -> Result<Vec<Resource>, sqlx::Error> {
    sqlx::query_as!(
        Resource,
        r#"SELECT id AS session_id, resource_name, login_account,
                  status AS "status: SessionStatus", current_tier, ends_at
         FROM activity_sessions WHERE request_id = $1 ORDER BY resource_name, id"#,
        id,
    )
    .fetch_all(db)
    .await
}

/// The tiers of the request's profile with the names of their enabled approvers.
pub async fn tiers(db: impl PgExecutor<'_>, id: Uuid) -> Result<Vec<Tier>, sqlx::Error> {
    sqlx::query_as!(
        Tier,
        r#"SELECT t.position, t.approvals_required,
                coalesce(array(SELECT u.display_name FROM users u
                               WHERE NOT u.disabled AND u.id IN (
                                   SELECT tu.user_id FROM approval_tier_users tu WHERE tu.tier_id = t.id
                                   UNION
                                   SELECT gm.user_id FROM approval_tier_groups tg
                                   JOIN group_members gm ON gm.group_id = tg.group_id
                                   WHERE tg.tier_id = t.id)
                               ORDER BY u.display_name), '{}') AS "approvers!"
         FROM requests r JOIN approval_tiers t ON t.profile_id = r.profile_id
         WHERE r.id = $1 ORDER BY t.position"#,
        id,
    )
    .fetch_all(db)
    .await
}

/// Every decision on the request's sessions, oldest first.
pub async fn decisions(db: impl PgExecutor<'_>, id: Uuid) -> Result<Vec<DecisionRow>, sqlx::Error> {
    sqlx::query_as!(
        DecisionRow,
        r#"SELECT s.resource_name, d.tier, u.display_name AS approver_name,
                d.decision AS "decision: Decision", d.comment, d.decided_at
         FROM approval_decisions d
         JOIN activity_sessions s ON s.id = d.session_id
         JOIN users u ON u.id = d.approver_id
         WHERE s.request_id = $1 ORDER BY d.decided_at, s.resource_name"#,
        id,
    )
    .fetch_all(db)
    .await
}

/// The requester's ten latest other requests.
pub async fn recent(
    db: impl PgExecutor<'_>,
    requester: Uuid,
    except: Uuid,
) -> Result<Vec<Recent>, sqlx::Error> {
    sqlx::query_as!(
        Recent,
        r#"SELECT r.id, r.created_at, r.activity_name,
                array(SELECT s.status FROM activity_sessions s WHERE s.request_id = r.id
                      ORDER BY s.resource_name) AS "statuses!: Vec<SessionStatus>"
         FROM requests r WHERE r.requester_id = $1 AND r.id <> $2
         ORDER BY r.created_at DESC LIMIT 10"#,
        requester,
        except,
    )
    .fetch_all(db)
    .await
}

/// Of `sessions`, those that belong to `request` (a hand-made form names no other).
pub async fn sessions_of(
    db: impl PgExecutor<'_>,
    request: Uuid,
    sessions: &[Uuid],
) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar!(
        "SELECT id FROM activity_sessions WHERE request_id = $1 AND id = ANY($2) ORDER BY resource_name, id",
        request,
        sessions,
    )
    .fetch_all(db)
    .await
}
