//! Approval decisions: who may decide what, and the decision itself with the transition it
//! causes, as one conditional change in one transaction.

use std::net::IpAddr;

use sqlx::{PgConnection, PgExecutor};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::db::sessions::{self, Actor, NewEvent};
use crate::domain::approval::{self, Barrier, Step, Tally};
use crate::domain::event::EventKind;
use crate::domain::status::{SessionStatus, Transition};

// Sessions waiting for the decision of user `$1` (`s`, with its request `r` and current tier
// `t`): in the current tier, which names the user; not the user's own unless the profile
// allows self-approval; not already decided by them. The query macros take literals only, so
// `waiting_for`, `waiting_count` and `waiting_sessions` each spell out this same FROM ...
// WHERE; change them together.

/// One row of the Approvals tab: a request, with its resources waiting for the viewer.
#[derive(Debug, Clone)]
pub struct Row {
    pub request_id: Uuid,
    pub created_at: OffsetDateTime,
    pub requester_name: String,
    pub resources: i64,
    pub resource_names: Vec<String>,
    pub activity_name: String,
    pub requested_start: OffsetDateTime,
    pub ends_at: OffsetDateTime,
    pub decision_deadline: Option<OffsetDateTime>,
    pub notes: String,
    pub ticket_number: String,
    pub current_tier: i16,
    pub tier_count: i16,
}

/// Requests with sessions waiting for `user`'s decision, one row per request.
pub async fn waiting_for(
    db: impl PgExecutor<'_>,
    user: Uuid,
    search: &str,
) -> Result<Vec<Row>, sqlx::Error> {
    sqlx::query_as!(
        Row,
        r#"SELECT r.id AS request_id, r.created_at, min(u.display_name) AS "requester_name!",
                count(*) AS "resources!",
                array_agg(s.resource_name ORDER BY s.resource_name) AS "resource_names!",
                r.activity_name, min(s.requested_start) AS "requested_start!",
                max(s.ends_at) AS "ends_at!", r.decision_deadline, r.notes, r.ticket_number,
                min(s.current_tier) AS "current_tier!", r.tier_count
         FROM activity_sessions s
         JOIN requests r ON r.id = s.request_id
         JOIN users u ON u.id = s.requester_id
         JOIN approval_tiers t ON t.profile_id = r.profile_id AND t.position = s.current_tier
         WHERE s.status = 'waiting_for_approval'
           AND (s.requester_id <> $1 OR r.allow_self_approval)
           AND (EXISTS (SELECT 1 FROM approval_tier_users tu
                        WHERE tu.tier_id = t.id AND tu.user_id = $1)
                OR EXISTS (SELECT 1 FROM approval_tier_groups tg
                           JOIN group_members gm ON gm.group_id = tg.group_id
                           WHERE tg.tier_id = t.id AND gm.user_id = $1))
           AND NOT EXISTS (SELECT 1 FROM approval_decisions d
                           WHERE d.session_id = s.id AND d.tier = s.current_tier
                             AND d.approver_id = $1)
           AND ($2 = '' OR strpos(lower(s.resource_name), lower($2)) > 0
                OR strpos(lower(s.activity_name), lower($2)) > 0
                OR strpos(lower(u.display_name), lower($2)) > 0
                OR strpos(lower(r.notes), lower($2)) > 0
                OR strpos(lower(r.ticket_number), lower($2)) > 0)
         GROUP BY r.id
         ORDER BY r.created_at, r.id
         LIMIT 500"#,
        user,
        search,
    )
    .fetch_all(db)
    .await
}

/// How many requests wait for `user`'s decision.
pub async fn waiting_count(db: impl PgExecutor<'_>, user: Uuid) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar!(
        r#"SELECT count(DISTINCT r.id) AS "count!"
         FROM activity_sessions s
         JOIN requests r ON r.id = s.request_id
         JOIN users u ON u.id = s.requester_id
         JOIN approval_tiers t ON t.profile_id = r.profile_id AND t.position = s.current_tier
         WHERE s.status = 'waiting_for_approval'
           AND (s.requester_id <> $1 OR r.allow_self_approval)
           AND (EXISTS (SELECT 1 FROM approval_tier_users tu
                        WHERE tu.tier_id = t.id AND tu.user_id = $1)
                OR EXISTS (SELECT 1 FROM approval_tier_groups tg
                           JOIN group_members gm ON gm.group_id = tg.group_id
                           WHERE tg.tier_id = t.id AND gm.user_id = $1))
           AND NOT EXISTS (SELECT 1 FROM approval_decisions d
                           WHERE d.session_id = s.id AND d.tier = s.current_tier
                             AND d.approver_id = $1)"#,
        user,
    )
    .fetch_one(db)
    .await
}

/// The sessions of `requests` that wait for `user`'s decision.
pub async fn waiting_sessions(
    db: impl PgExecutor<'_>,
    user: Uuid,
    requests: &[Uuid],
) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar!(
        "SELECT s.id
         FROM activity_sessions s
         JOIN requests r ON r.id = s.request_id
         JOIN users u ON u.id = s.requester_id
         JOIN approval_tiers t ON t.profile_id = r.profile_id AND t.position = s.current_tier
         WHERE s.status = 'waiting_for_approval'
           AND (s.requester_id <> $1 OR r.allow_self_approval)
           AND (EXISTS (SELECT 1 FROM approval_tier_users tu
                        WHERE tu.tier_id = t.id AND tu.user_id = $1)
                OR EXISTS (SELECT 1 FROM approval_tier_groups tg
                           JOIN group_members gm ON gm.group_id = tg.group_id
                           WHERE tg.tier_id = t.id AND gm.user_id = $1))
           AND NOT EXISTS (SELECT 1 FROM approval_decisions d
                           WHERE d.session_id = s.id AND d.tier = s.current_tier
                             AND d.approver_id = $1)
           AND r.id = ANY($2) ORDER BY r.created_at, s.resource_name",
        user,
        requests,
    )
    .fetch_all(db)
    .await
}

pub use crate::domain::approval::Decision;

/// Who decides, and why.
pub struct Decide<'a> {
    pub session: Uuid,
    pub approver: Uuid,
    pub approver_name: &'a str,
    pub decision: Decision,
    pub comment: &'a str,
    pub client: Option<IpAddr>,
}

/// What a decision did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Counted; the tier needs more approvals.
    Counted { approvals: i64, required: i32 },
    /// The tier is satisfied; the next tier decides now.
    NextTier { tier: i16 },
    /// The last tier is satisfied: Pending or Provisioning.
    Approved(SessionStatus),
    /// Approval Denied.
    Denied,
}

/// Why a decision was refused (`web::approvals::refusal_text` words it for the approver).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    NotFound,
    /// Someone or something decided first.
    AlreadyMoved(Moved),
    OwnRequest,
    NotInTier(i16),
    AlreadyDecided(i16),
    /// The request's grant no longer holds: it was canceled instead (keep that: commit).
    GrantLapsed(crate::domain::grant::Lapsed),
}

/// How a request left Waiting for Approval before this decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Moved {
    pub status: SessionStatus,
    /// The event that moved it: who (None: the system) and when.
    pub by: Option<(Option<String>, OffsetDateTime)>,
    /// Ended because its grant lapsed, not withdrawn.
    pub revoked: bool,
}

struct Locked {
    status: SessionStatus,
    requester_id: Uuid,
    current_tier: Option<i16>,
    tier_count: i16,
    allow_self_approval: bool,
    requested_start: OffsetDateTime,
    tier_id: Option<Uuid>,
    approvals_required: Option<i32>,
}

/// Records a decision and the transition it causes, in the caller's transaction. The
/// session row is locked first, so concurrent decisions are taken one after the other and
/// see each other's effects: one consistent outcome, and a clear refusal for the late ones.
pub async fn decide(
    tx: &mut PgConnection,
    d: &Decide<'_>,
) -> Result<Result<Outcome, Refused>, sqlx::Error> {
    let row = sqlx::query_as!(
        Locked,
        r#"SELECT s.status AS "status: SessionStatus", s.requester_id, s.current_tier,
                r.tier_count, r.allow_self_approval, s.requested_start,
                t.id AS "tier_id?", t.approvals_required AS "approvals_required?"
         FROM activity_sessions s
         JOIN requests r ON r.id = s.request_id
         LEFT JOIN approval_tiers t ON t.profile_id = r.profile_id AND t.position = s.current_tier
         WHERE s.id = $1
         FOR UPDATE OF s"#,
        d.session,
    )
    .fetch_optional(&mut *tx)
    .await?;
    let Some(row) = row else {
        return Ok(Err(Refused::NotFound));
    };
    // Someone who may not see this request learns nothing of it, not even that it exists:
    // the same answer as for an unknown id (no "already approved by ... at ...").
    if row.requester_id != d.approver && !is_approver_of(&mut *tx, d.approver, d.session).await? {
        return Ok(Err(Refused::NotFound));
    }
    if row.status != SessionStatus::WaitingForApproval {
        return Ok(Err(Refused::AlreadyMoved(
            already_moved(tx, d.session, row.status).await?,
        )));
    }
    let tier = row.current_tier.unwrap_or(1);
    let in_tier = match row.tier_id {
        Some(tier_id) => {
            // The tier's approvers: users named directly or through a group, not disabled.
            sqlx::query_scalar!(
                r#"SELECT EXISTS (
                     SELECT 1 FROM (
                         SELECT tu.user_id FROM approval_tier_users tu WHERE tu.tier_id = $1
                         UNION
                         SELECT gm.user_id FROM approval_tier_groups tg
                         JOIN group_members gm ON gm.group_id = tg.group_id
                         WHERE tg.tier_id = $1) a
                     JOIN users u ON u.id = a.user_id
                     WHERE a.user_id = $2 AND NOT u.disabled) AS "in_tier!""#,
                tier_id,
                d.approver,
            )
            .fetch_one(&mut *tx)
            .await?
        }
        None => false,
    };
    match approval::may_decide(
        row.requester_id == d.approver,
        row.allow_self_approval,
        in_tier,
    ) {
        Ok(()) => {}
        Err(Barrier::OwnRequest) => return Ok(Err(Refused::OwnRequest)),
        Err(Barrier::NotInTier) => return Ok(Err(Refused::NotInTier(tier))),
    }
    // Approving grants access: only while the policy still grants it (the request ends
    // otherwise, and the caller commits that).
    if let Some(why) = crate::db::grants::revoke_if_lapsed(tx, d.session).await? {
        return Ok(Err(Refused::GrantLapsed(why)));
    }
    let inserted = sqlx::query!(
        "INSERT INTO approval_decisions (id, session_id, tier, approver_id, decision, comment)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT ON CONSTRAINT approval_decisions_one_per_approver DO NOTHING",
        Uuid::now_v7(),
        d.session,
        tier,
        d.approver,
        d.decision as Decision,
        d.comment,
    )
    .execute(&mut *tx)
    .await?;
    if inserted.rows_affected() == 0 {
        return Ok(Err(Refused::AlreadyDecided(tier)));
    }
    let actor = Actor::User {
        id: d.approver,
        name: d.approver_name,
    };
    let event = |kind, comment| NewEvent::new(d.session, actor, kind, comment, d.client);

    let approvals = sqlx::query_scalar!(
        r#"SELECT count(*) AS "count!" FROM approval_decisions
         WHERE session_id = $1 AND tier = $2 AND decision = 'approved'"#,
        d.session,
        tier,
    )
    .fetch_one(&mut *tx)
    .await?;
    let tally = Tally {
        tier,
        tier_count: row.tier_count,
        approvals,
        required: row.approvals_required.unwrap_or(1),
        start: row.requested_start,
    };
    let said = if d.comment.is_empty() {
        String::new()
    } else {
        format!(": {}", d.comment)
    };
    match approval::step(d.decision, tally, OffsetDateTime::now_utc()) {
        Step::Deny => {
            sessions::transition(tx, Transition::Deny, event(EventKind::Denied, d.comment)).await?;
            Ok(Ok(Outcome::Denied))
        }
        Step::Count {
            approvals,
            required,
        } => {
            let comment =
                format!("Approved in tier {tier} ({approvals} of {required} approvals){said}");
            sessions::record(tx, &event(EventKind::Approval, &comment)).await?;
            Ok(Ok(Outcome::Counted {
                approvals,
                required,
            }))
        }
        Step::NextTier { next } => {
            sqlx::query!(
                "UPDATE activity_sessions SET current_tier = $2, updated_at = now()
                 WHERE id = $1 AND current_tier = $3",
                d.session,
                next,
                tier,
            )
            .execute(&mut *tx)
            .await?;
            let comment = format!(
                "Tier {tier} of {} approved{said}; waiting for tier {next}.",
                row.tier_count
            );
            let mut e = event(EventKind::TierApproved, &comment);
            e.from = Some(SessionStatus::WaitingForApproval);
            e.to = Some(SessionStatus::WaitingForApproval);
            sessions::record(tx, &e).await?;
            Ok(Ok(Outcome::NextTier { tier: next }))
        }
        Step::Approve(transition) => {
            let comment = format!("Approved{said}");
            let moved =
                sessions::transition(tx, transition, event(EventKind::Approved, &comment)).await?;
            match moved {
                sessions::Moved::Done { to, .. } => Ok(Ok(Outcome::Approved(to))),
                // Unreachable: the row is locked and was Waiting for Approval.
                _ => Ok(Err(Refused::NotFound)),
            }
        }
    }
}

/// The event that moved a session out of Waiting for Approval.
async fn already_moved(
    tx: &mut PgConnection,
    session: Uuid,
    status: SessionStatus,
) -> Result<Moved, sqlx::Error> {
    let last = sqlx::query!(
        r#"SELECT actor_name, at, actor_id, kind AS "kind: EventKind" FROM session_events
         WHERE session_id = $1 AND from_status = 'waiting_for_approval'
           AND to_status IS DISTINCT FROM 'waiting_for_approval'
         ORDER BY id DESC LIMIT 1"#,
        session,
    )
    .fetch_optional(&mut *tx)
    .await?
    .map(|r| (r.actor_name, r.at, r.actor_id, r.kind));
    Ok(Moved {
        status,
        revoked: matches!(&last, Some((_, _, _, kind)) if *kind == EventKind::Revoked),
        by: last.map(|(name, at, actor, _)| (actor.map(|_| name), at)),
    })
}

/// Whether `user` is named (directly or through a group) in any tier of the profile of
/// `session`'s request, and may see it (not their own unless self-approval is allowed).
pub async fn is_approver_of(
    db: impl PgExecutor<'_>,
    user: Uuid,
    session: Uuid,
) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar!(
        r#"SELECT EXISTS (
             SELECT 1 FROM activity_sessions s
             JOIN requests r ON r.id = s.request_id
             JOIN approval_tiers t ON t.profile_id = r.profile_id
             WHERE s.id = $2 AND (s.requester_id <> $1 OR r.allow_self_approval)
               AND (EXISTS (SELECT 1 FROM approval_tier_users tu WHERE tu.tier_id = t.id AND tu.user_id = $1)
                    OR EXISTS (SELECT 1 FROM approval_tier_groups tg
                               JOIN group_members gm ON gm.group_id = tg.group_id
                               WHERE tg.tier_id = t.id AND gm.user_id = $1))) AS "approver!""#,
        user,
        session,
    )
    .fetch_one(db)
    .await
}
