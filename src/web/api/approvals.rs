//! Approvals: the requests waiting for my decision; Approve or Deny one with a comment.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::auth::Caller;
use super::error::{ApiError, ApiResult};
use super::{parse_id, parse_json, ts};
use crate::app::approvals::{self as use_case, Asked, Decided, OnRequest};
use crate::db;
use crate::domain::tz::TimeZone;
use crate::state::AppState;
use crate::web::approvals::refusal_text;
use crate::web::client::ClientAddr;

/// A request waiting for the caller's decision.
#[derive(Debug, Serialize)]
pub struct Waiting {
    pub request_id: Uuid,
    pub requested_at: String,
    pub requester: String,
    pub resources: Vec<String>,
    pub activity: String,
    pub start: String,
    pub end: String,
    pub decision_deadline: Option<String>,
    pub notes: String,
    pub ticket: String,
    /// The tier deciding now, and how many there are.
    pub tier: i16,
    pub tiers: i16,
}

#[derive(Debug, Serialize)]
pub struct WaitingList {
    pub approvals: Vec<Waiting>,
}

/// `GET /api/v1/approvals`: as the Approvals tab lists them.
pub async fn list(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<WaitingList>> {
    let approvals = db::approvals::waiting_for(&state.db, caller.actor.id, "")
        .await?
        .into_iter()
        .map(|r| Waiting {
            request_id: r.request_id,
            requested_at: ts(r.created_at),
            requester: r.requester_name,
            resources: r.resource_names,
            activity: r.activity_name,
            start: ts(r.requested_start),
            end: ts(r.ends_at),
            decision_deadline: r.decision_deadline.map(ts),
            notes: r.notes,
            ticket: r.ticket_number,
            tier: r.current_tier,
            tiers: r.tier_count,
        })
        .collect();
    Ok(Json(WaitingList { approvals }))
}

/// The body of a decision.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecideBody {
    /// `approve` or `deny`.
    #[serde(default)]
    pub decision: String,
    /// Required to deny.
    #[serde(default)]
    pub comment: String,
    /// Some of the request's sessions only; absent: every one waiting for the caller.
    pub sessions: Option<Vec<Uuid>>,
}

#[derive(Debug, Serialize)]
pub struct DecideResult {
    pub request_id: Uuid,
    pub approved: usize,
    pub denied: usize,
    pub message: String,
}

/// `POST /api/v1/approvals/{id}/decide`: Approve or Deny the request's sessions that wait
/// for the caller. A refusal (own request, not in the tier, decided first by someone else)
/// is 409 with the Approvals tab's words.
pub async fn decide(
    State(state): State<AppState>,
    caller: Caller,
    ClientAddr(client): ClientAddr,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Json<DecideResult>> {
    let id = parse_id(&id)?;
    let body: DecideBody = parse_json(&body)?;
    let asked = Asked::parse(body.decision.trim(), &body.comment).map_err(invalid_decision)?;
    let only = body.sessions.as_deref();
    let decided =
        match use_case::decide_request(&state, &caller.actor, client, id, only, &asked).await? {
            OnRequest::Decided(decided) => decided,
            OnRequest::NotFound => return Err(ApiError::not_found()),
            OnRequest::NoSessions => {
                return Err(ApiError::invalid("Name sessions of this request.")
                    .field("sessions", "Tick the resources to decide on first."));
            }
        };
    let tz = caller.actor.time_zone;
    if decided.approved + decided.denied == 0
        && let Some((_, refused)) = decided.refused.first()
    {
        return Err(ApiError::conflict(refusal_text(refused, tz)));
    }
    Ok(Json(DecideResult {
        request_id: id,
        approved: decided.approved,
        denied: decided.denied,
        message: summary(&decided, tz),
    }))
}

/// A decision or comment [`Asked::parse`] refused, at its field.
fn invalid_decision(message: String) -> ApiError {
    let field = if message.contains("comment") {
        "comment"
    } else {
        "decision"
    };
    ApiError::invalid(message.clone()).field(field, message)
}

/// "Approved 2 sessions." and each refusal, in the Approvals tab's words.
fn summary(decided: &Decided, tz: TimeZone) -> String {
    let plural = |n: usize| if n == 1 { "session" } else { "sessions" };
    let mut parts = Vec::new();
    for (n, verb) in [(decided.approved, "Approved"), (decided.denied, "Denied")] {
        if n > 0 {
            parts.push(format!("{verb} {n} {}.", plural(n)));
        }
    }
    for (_, refused) in &decided.refused {
        parts.push(refusal_text(refused, tz));
    }
    parts.join(" ")
}
