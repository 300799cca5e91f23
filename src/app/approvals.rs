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
