//! Revocation: the facts behind a session's grant (the rule is `domain::grant`), and ending
//! sessions whose grant no longer holds or whose requester lost their account. Every ending
//! goes through `sessions::transition`, with an event that says why.

use sqlx::PgConnection;
use uuid::Uuid;

use crate::db::sessions::{self, Actor, NewEvent};
use crate::domain::event::EventKind;
use crate::domain::grant::{self, Lapsed, PolicyFacts, Standing};
use crate::domain::status::{SessionStatus, Transition};

struct Facts {
    id: Uuid,
    status: SessionStatus,
    requester_name: String,
    requester_disabled: bool,
    policy_name: String,
    activity_name: String,
    resource_name: String,
    policy_exists: bool,
    policy_enabled: bool,
    member: bool,
    activity_granted: bool,
    resource_granted: bool,
    same_profile: bool,
}

impl Facts {
    fn standing(&self) -> Standing {
        Standing {
            requester_disabled: self.requester_disabled,
            policy_name: self.policy_name.clone(),
            activity_name: self.activity_name.clone(),
            resource_name: self.resource_name.clone(),
            policy: self.policy_exists.then_some(PolicyFacts {
                enabled: self.policy_enabled,
                member: self.member,
                activity: self.activity_granted,
                resource: self.resource_granted,
                same_profile: self.same_profile,
            }),
        }
    }
}

/// A live session whose grant no longer holds.
#[derive(Debug, Clone)]
pub struct LapsedSession {
    pub id: Uuid,
    pub status: SessionStatus,
    pub requester_name: String,
    pub activity_name: String,
    pub resource_name: String,
    pub why: Lapsed,
}

/// Among `ids`, the sessions that are not over and whose grant no longer holds.
pub async fn lapsed(
    tx: &mut PgConnection,
    ids: &[Uuid],
) -> Result<Vec<LapsedSession>, sqlx::Error> {
    // A deleted policy leaves the request's `policy_id` NULL, and so every fact about it false.
    let rows: Vec<Facts> = sqlx::query_as!(
        Facts,
        r#"SELECT s.id, s.status AS "status: SessionStatus", u.display_name AS requester_name,
                  u.disabled AS requester_disabled,
                  COALESCE(p.name, r.policy_name) AS "policy_name!", s.activity_name,
                  s.resource_name, p.id IS NOT NULL AS "policy_exists!",
                  COALESCE(p.enabled, false) AS "policy_enabled!",
                  (EXISTS (SELECT 1 FROM policy_users pu
                           WHERE pu.policy_id = p.id AND pu.user_id = s.requester_id)
                   OR EXISTS (SELECT 1 FROM policy_groups pg
                              JOIN group_members gm ON gm.group_id = pg.group_id
                              WHERE pg.policy_id = p.id AND gm.user_id = s.requester_id))
                      AS "member!",
                  EXISTS (SELECT 1 FROM policy_activities pa
                          WHERE pa.policy_id = p.id AND pa.activity_id = r.activity_id)
                      AS "activity_granted!",
                  EXISTS (SELECT 1 FROM policy_resources pr
                          WHERE pr.policy_id = p.id AND pr.resource_id = s.resource_id)
                      AS "resource_granted!",
                  COALESCE(p.profile_id = r.profile_id, false) AS "same_profile!"
           FROM activity_sessions s
           JOIN requests r ON r.id = s.request_id
           JOIN users u ON u.id = s.requester_id
           LEFT JOIN access_policies p ON p.id = r.policy_id
           WHERE s.id = ANY($1)
           ORDER BY s.created_at, s.id"#,
        ids
    )
    .fetch_all(&mut *tx)
    .await?;
    Ok(rows
        .into_iter()
        .filter(|f| !f.status.is_final())
        .filter_map(|f| {
            grant::check(&f.standing()).err().map(|why| LapsedSession {
                id: f.id,
                status: f.status,
                requester_name: f.requester_name,
                activity_name: f.activity_name,
                resource_name: f.resource_name,
                why,
            })
        })
        .collect())
}

/// Re-checks the grant of one session at the moment someone acts on it, in the caller's
/// transaction: when it no longer holds and the session is not over, the session is Canceled
/// (row locked first, conditional change, event with the reason) and the reason returned.
/// The caller then refuses what was asked and commits, so the ending is kept.
pub async fn revoke_if_lapsed(
    tx: &mut PgConnection,
    session: Uuid,
) -> Result<Option<Lapsed>, sqlx::Error> {
    let Some((status, _)) = sessions::lock_row(&mut *tx, session).await? else {
        return Ok(None);
    };
    if status.is_final() {
        return Ok(None);
    }
    let Some(found) = lapsed(&mut *tx, &[session]).await?.pop() else {
        return Ok(None);
    };
    end(tx, &found, Actor::System, &found.why.to_string()).await?;
    Ok(Some(found.why))
}

async fn end(
    tx: &mut PgConnection,
    s: &LapsedSession,
    actor: Actor<'_>,
    comment: &str,
) -> Result<bool, sqlx::Error> {
    let event = NewEvent::new(s.id, actor, EventKind::Revoked, comment, None);
    Ok(sessions::transition(tx, Transition::AdminCancel, event)
        .await?
        .done())
}

/// Ends the given lapsed sessions on an administrator's confirmed change; returns how many
/// ended (one that moved meanwhile is left as it is).
pub async fn end_lapsed(
    tx: &mut PgConnection,
    sessions: &[LapsedSession],
    actor: Actor<'_>,
    by: &str,
) -> Result<usize, sqlx::Error> {
    let mut ended = 0;
    for s in sessions {
        let comment = format!("Ended by {by}: {}", s.why);
        if end(tx, s, actor, &comment).await? {
            ended += 1;
        }
    }
    Ok(ended)
}

/// The sessions made under `policy` that are not over, locked: the ones a change to the
/// policy may end.
pub async fn live_under_policy(
    tx: &mut PgConnection,
    policy: Uuid,
) -> Result<Vec<Uuid>, sqlx::Error> {
    // Runtime SQL: the live status set is rendered from the domain (status_sql).
    sqlx::query_scalar(&format!(
        "SELECT s.id FROM activity_sessions s JOIN requests r ON r.id = s.request_id
         WHERE r.policy_id = $1
           AND s.status IN {live}
         ORDER BY s.created_at, s.id
         FOR UPDATE OF s",
        live = *crate::db::status_sql::LIVE
    ))
    .bind(policy)
    .fetch_all(&mut *tx)
    .await
}

/// The sessions not over, locked, that members of `group` asked for under policies that
/// name the group: the ones a change of its members may end.
pub async fn live_through_group(
    tx: &mut PgConnection,
    group: Uuid,
) -> Result<Vec<Uuid>, sqlx::Error> {
    // Runtime SQL: the live status set is rendered from the domain (status_sql).
    sqlx::query_scalar(&format!(
        "SELECT s.id FROM activity_sessions s JOIN requests r ON r.id = s.request_id
         WHERE s.requester_id IN (SELECT user_id FROM group_members WHERE group_id = $1)
           AND r.policy_id IN (SELECT policy_id FROM policy_groups WHERE group_id = $1)
           AND s.status IN {live}
         ORDER BY s.created_at, s.id
         FOR UPDATE OF s",
        live = *crate::db::status_sql::LIVE
    ))
    .bind(group)
    .fetch_all(&mut *tx)
    .await
}

/// The sessions of `user` that are not over, locked: the ones a change of their groups may
/// end.
pub async fn live_of_user(tx: &mut PgConnection, user: Uuid) -> Result<Vec<Uuid>, sqlx::Error> {
    // Runtime SQL: the live status set is rendered from the domain (status_sql).
    sqlx::query_scalar(&format!(
        "SELECT id FROM activity_sessions
         WHERE requester_id = $1
           AND status IN {live}
         ORDER BY created_at, id
         FOR UPDATE",
        live = *crate::db::status_sql::LIVE
    ))
    .bind(user)
    .fetch_all(&mut *tx)
    .await
}

/// Ends every session of `user` that is not over (their account is being disabled): waiting
/// and pending requests are withdrawn, live sessions cut, each Canceled with an event saying
/// `comment`; generated passwords go with the final status. Returns how many ended.
pub async fn end_all_of_user(
    tx: &mut PgConnection,
    user: Uuid,
    actor: Actor<'_>,
    comment: &str,
) -> Result<usize, sqlx::Error> {
    // Runtime SQL: the live status set is rendered from the domain (status_sql).
    let live: Vec<(Uuid, SessionStatus)> = sqlx::query_as(&format!(
        "SELECT id, status FROM activity_sessions
         WHERE requester_id = $1
           AND status IN {live}
         ORDER BY created_at, id
         FOR UPDATE",
        live = *crate::db::status_sql::LIVE
    ))
    .bind(user)
    .fetch_all(&mut *tx)
    .await?;
    let mut ended = 0;
    for (id, _) in live {
        let event = NewEvent::new(id, actor, EventKind::Revoked, comment, None);
        if sessions::transition(tx, Transition::AdminCancel, event)
            .await?
            .done()
        {
            ended += 1;
        }
    }
    Ok(ended)
}
