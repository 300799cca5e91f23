//! Deciding on approvals: Approve or Deny with a comment, on one session or many, each in its
//! own transaction, as the Approvals tab, the request page and the API ask.

use std::net::IpAddr;

use uuid::Uuid;

use crate::app::Actor;
use crate::db;
use crate::db::approvals::{Decide, Decision, Outcome, Refused};
use crate::domain::status::SessionStatus;
use crate::state::AppState;

/// Longest decision comment.
pub const MAX_COMMENT: usize = 1000;
/// Most sessions one decision acts on.
pub const MAX_AT_ONCE: usize = 200;

/// What an approver asked for: the decision and its comment, checked.
#[derive(Debug, Clone)]
pub struct Asked {
    pub decision: Decision,
    pub comment: String,
}

impl Asked {
    /// Reads Approve / Deny ("approve", "deny") and the comment; the refusal says what to do
    /// instead.
    pub fn parse(decision: &str, comment: &str) -> Result<Self, String> {
        let decision = match decision {
            "approve" => Decision::Approved,
            "deny" => Decision::Denied,
            _ => return Err("Choose Approve or Deny.".into()),
        };
        let comment = comment.trim();
        if comment.chars().count() > MAX_COMMENT {
            return Err(format!(
                "The comment can be at most {MAX_COMMENT} characters."
            ));
        }
        if decision == Decision::Denied && comment.is_empty() {
            return Err("A comment is required to deny: say why.".into());
        }
        Ok(Self {
            decision,
            comment: comment.to_owned(),
        })
    }
}

/// What a decision on many sessions did.
#[derive(Debug, Default)]
pub struct Decided {
    pub approved: usize,
    pub denied: usize,
    /// Each refused session and why.
    pub refused: Vec<(Uuid, Refused)>,
}

/// The sessions of `requests` waiting for `user`'s decision.
pub async fn waiting_sessions(
    state: &AppState,
    user: &Actor,
    requests: &[Uuid],
) -> crate::app::Result<Vec<Uuid>> {
    db::approvals::waiting_sessions(&state.db, user.id, requests).await
}

/// Takes the decision on each session, each in its own transaction (one refused session
/// does not undo the others), then provisions at once those that start now.
pub async fn decide(
    state: &AppState,
    user: &Actor,
    client: Option<IpAddr>,
    ids: &[Uuid],
    asked: &Asked,
) -> crate::app::Result<Decided> {
    let mut decided = Decided::default();
    let mut to_provision = Vec::new();
    for id in ids.iter().take(MAX_AT_ONCE) {
        let mut tx = state.db.begin().await?;
        let result = db::approvals::decide(
            &mut tx,
            &Decide {
                session: *id,
                approver: user.id,
                approver_name: &user.display_name,
                decision: asked.decision,
                comment: &asked.comment,
                client,
            },
        )
        .await?;
        // A refusal wrote nothing, except the ending of a request whose grant lapsed, which
        // stays: commit either way.
        tx.commit().await?;
        match result {
            Ok(Outcome::Denied) => decided.denied += 1,
            Ok(Outcome::Approved(SessionStatus::Provisioning)) => {
                decided.approved += 1;
                to_provision.push(*id);
            }
            Ok(_) => decided.approved += 1,
            Err(refused) => decided.refused.push((*id, refused)),
        }
    }
    if !to_provision.is_empty()
        && let Err(e) =
            crate::worker::provision(&state.db, &state.secrets, Some(&to_provision)).await
    {
        tracing::warn!(error = %e, "immediate provisioning failed; the worker will retry");
    }
    Ok(decided)
}

/// What a decision on one request (the API's) did.
#[derive(Debug)]
pub enum OnRequest {
    /// No such request, or not one the approver may see.
    NotFound,
    /// None of the named sessions belongs to the request.
    NoSessions,
    Decided(Decided),
}

/// Of a request's sessions `all`, those to decide on: the ones waiting for the approver; when
/// none is, all of them, so the decision's refusal says why (decided already, not in the
/// tier, own request).
fn to_decide(all: Vec<Uuid>, waiting: &[Uuid]) -> Vec<Uuid> {
    if all.iter().any(|s| waiting.contains(s)) {
        all.into_iter().filter(|s| waiting.contains(s)).collect()
    } else {
        all
    }
}

/// Takes the decision on the sessions of `request` (of those in `only`, when given) that wait
/// for `user`, as [`decide`] does.
pub async fn decide_request(
    state: &AppState,
    user: &Actor,
    client: Option<IpAddr>,
    request: Uuid,
    only: Option<&[Uuid]>,
    asked: &Asked,
) -> crate::app::Result<OnRequest> {
    if crate::app::requests::visible(state, user, request)
        .await?
        .is_none()
    {
        return Ok(OnRequest::NotFound);
    }
    let all: Vec<Uuid> = db::request_page::resources(&state.db, request)
        .await?
        .into_iter()
        .map(|r| r.session_id)
        .filter(|s| only.is_none_or(|only| only.contains(s)))
        .collect();
    if all.is_empty() {
        return Ok(OnRequest::NoSessions);
    }
    let waiting = waiting_sessions(state, user, &[request]).await?;
    let sessions = to_decide(all, &waiting);
    Ok(OnRequest::Decided(
        decide(state, user, client, &sessions, asked).await?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_sessions_waiting_for_the_approver_are_decided() {
        let (a, b, c) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        assert_eq!(to_decide(vec![a, b, c], &[b]), vec![b]);
    }

    #[test]
    fn when_none_waits_for_the_approver_all_go_to_the_decision_to_be_refused() {
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        assert_eq!(to_decide(vec![a, b], &[Uuid::new_v4()]), vec![a, b]);
    }
}
