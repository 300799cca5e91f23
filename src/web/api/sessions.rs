//! My sessions: list with the dashboard's filters, details with events, end, extend.

use axum::Json;
use axum::extract::{Path, Query, State};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::auth::Caller;
use super::error::{ApiError, ApiResult};
use super::{parse_id, ts};
use crate::app::sessions::{self as use_case, EndOutcome, Extended, ListQuery};
use crate::db;
use crate::domain::api_token::Scope;
use crate::domain::status::{SessionStatus, Tab};
use crate::state::AppState;
use crate::web::client::ClientAddr;

/// `GET /api/v1/me`: whom the token speaks for.
#[derive(Debug, Serialize)]
pub struct Me {
    pub id: Uuid,
    pub username: String,
    pub display_name: String,
    pub role: crate::domain::role::Role,
    pub time_zone: &'static str,
    pub scopes: Vec<Scope>,
}

pub async fn me(caller: Caller) -> Json<Me> {
    Json(Me {
        id: caller.actor.id,
        username: caller.actor.username,
        display_name: caller.actor.display_name,
        role: caller.role,
        time_zone: caller.actor.time_zone.name(),
        scopes: caller.scopes,
    })
}

/// A session's status: its key and the words the pages show.
#[derive(Debug, Serialize)]
pub struct Status {
    pub key: &'static str,
    pub label: &'static str,
}

impl From<SessionStatus> for Status {
    fn from(s: SessionStatus) -> Self {
        Self {
            key: s.key(),
            label: s.label(),
        }
    }
}

/// One session of a list.
#[derive(Debug, Serialize)]
pub struct SessionItem {
    pub id: Uuid,
    pub request_id: Uuid,
    pub status: Status,
    pub requested_at: String,
    pub requester: String,
    pub resource: String,
    pub login_account: Option<String>,
    pub activity: String,
    pub start: String,
    pub end: String,
    pub ended_at: Option<String>,
    pub notes: String,
    pub ticket: String,
}

impl From<db::sessions::Row> for SessionItem {
    fn from(r: db::sessions::Row) -> Self {
        Self {
            id: r.id,
            request_id: r.request_id,
            status: r.status.into(),
            requested_at: ts(r.created_at),
            requester: r.requester_name,
            resource: r.resource_name,
            login_account: r.login_account,
            activity: r.activity_name,
            start: ts(r.requested_start),
            end: ts(r.ends_at),
            ended_at: r.ended_at.map(ts),
            notes: r.notes,
            ticket: r.ticket_number,
        }
    }
}

/// The dashboard's filters.
#[derive(Debug, Default, Deserialize)]
pub struct ListParams {
    /// `active` (default), `scheduled` or `historical`.
    #[serde(default)]
    pub tab: String,
    #[serde(default)]
    pub q: String,
    #[serde(default)]
    pub resource: String,
    /// YYYY-MM-DD in the token owner's time zone.
    #[serde(default)]
    pub from: String,
    #[serde(default)]
    pub to: String,
    /// `all`: everyone's sessions (administrators).
    #[serde(default)]
    pub scope: String,
    #[serde(default)]
    pub page: String,
}

#[derive(Debug, Serialize)]
pub struct SessionList {
    pub tab: &'static str,
    pub page: i64,
    /// Another page follows.
    pub more: bool,
    pub sessions: Vec<SessionItem>,
}

/// `GET /api/v1/sessions`: one page of a dashboard tab.
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(p): Query<ListParams>,
) -> ApiResult<Json<SessionList>> {
    let (tab, key) = match p.tab.trim() {
        "" | "active" => (Tab::Active, "active"),
        "scheduled" => (Tab::Scheduled, "scheduled"),
        "historical" => (Tab::Historical, "historical"),
        _ => {
            return Err(ApiError::invalid("Unknown tab.")
                .field("tab", "Choose active, scheduled or historical."));
        }
    };
    let listing = use_case::listing(
        &caller.actor,
        tab,
        &ListQuery {
            search: &p.q,
            resource: &p.resource,
            from: &p.from,
            to: &p.to,
            all: p.scope == "all",
            page: &p.page,
        },
    );
    if let Some(e) = listing.error {
        let field = if e.starts_with("To ") { "to" } else { "from" };
        return Err(ApiError::invalid(e.clone()).field(field, e));
    }
    let (rows, more) = use_case::list(&state, &caller.actor, &listing.filter).await?;
    Ok(Json(SessionList {
        tab: key,
        page: listing.page,
        more,
        sessions: rows.into_iter().map(SessionItem::from).collect(),
    }))
}

/// One entry of a session's log.
#[derive(Debug, Serialize)]
pub struct EventItem {
    pub at: String,
    pub actor: String,
    pub kind: &'static str,
    pub from: Option<&'static str>,
    pub to: Option<&'static str>,
    pub comment: String,
}

/// A session with its log.
#[derive(Debug, Serialize)]
pub struct SessionDetails {
    pub id: Uuid,
    pub request_id: Uuid,
    pub status: Status,
    pub requester: String,
    pub resource: String,
    pub address: String,
    pub port: Option<i32>,
    pub activity: String,
    pub policy: String,
    pub login_account: Option<String>,
    pub notes: String,
    pub ticket: String,
    pub requested_at: String,
    pub start: String,
    pub end: String,
    pub ended_at: Option<String>,
    pub lock_message: Option<String>,
    pub extensions_used: i32,
    pub max_extensions: i32,
    pub events: Vec<EventItem>,
}

impl From<db::sessions::Event> for EventItem {
    fn from(e: db::sessions::Event) -> Self {
        Self {
            at: ts(e.at),
            actor: e.actor_name,
            kind: e.kind.key(),
            from: e.from_status.map(SessionStatus::key),
            to: e.to_status.map(SessionStatus::key),
            comment: e.comment,
        }
    }
}

impl SessionDetails {
    fn of(d: db::sessions::Details, events: Vec<EventItem>) -> Self {
        Self {
            id: d.id,
            request_id: d.request_id,
            status: d.status.into(),
            requester: d.requester_name,
            resource: d.resource_name,
            address: d.resource_address,
            port: d.resource_port,
            activity: d.activity_name,
            policy: d.policy_name,
            login_account: d.login_account,
            notes: d.notes,
            ticket: d.ticket_number,
            requested_at: ts(d.created_at),
            start: ts(d.requested_start),
            end: ts(d.ends_at),
            ended_at: d.ended_at.map(ts),
            lock_message: d.lock_message,
            extensions_used: d.extensions_used,
            max_extensions: d.max_extensions,
            events,
        }
    }
}

/// `GET /api/v1/sessions/{id}`.
pub async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<SessionDetails>> {
    let id = parse_id(&id)?;
    let d = use_case::visible(&state, &caller.actor, id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    let events = db::sessions::events(&state.db, id)
        .await?
        .into_iter()
        .map(EventItem::from)
        .collect();
    Ok(Json(SessionDetails::of(d, events)))
}

/// What an action on a session did.
#[derive(Debug, Serialize)]
pub struct ActionResult {
    pub id: Uuid,
    /// `ended`, `withdrawn` or `extended`.
    pub outcome: &'static str,
    pub message: String,
    pub status: Status,
    pub end: String,
}

async fn result(
    state: &AppState,
    caller: &Caller,
    id: Uuid,
    outcome: &'static str,
    message: String,
) -> ApiResult<Json<ActionResult>> {
    let d = use_case::visible(state, &caller.actor, id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    Ok(Json(ActionResult {
        id,
        outcome,
        message,
        status: d.status.into(),
        end: ts(d.ends_at),
    }))
}

/// `POST /api/v1/sessions/{id}/end`: End Session, confirmed. A request not yet begun is
/// withdrawn; an administrator ending someone else's session cancels it.
pub async fn end(
    State(state): State<AppState>,
    caller: Caller,
    ClientAddr(client): ClientAddr,
    Path(id): Path<String>,
) -> ApiResult<Json<ActionResult>> {
    let id = parse_id(&id)?;
    let outcome = use_case::end(&state, &caller.actor, client, &[id])
        .await?
        .into_iter()
        .next()
        .map_or(EndOutcome::NotFound, |(_, o)| o);
    match outcome {
        EndOutcome::Ended => result(&state, &caller, id, "ended", "Ended 1 session.".into()).await,
        EndOutcome::Withdrawn => {
            result(
                &state,
                &caller,
                id,
                "withdrawn",
                "Withdrew 1 request.".into(),
            )
            .await
        }
        EndOutcome::Refused(why) => Err(ApiError::conflict(format!("{}.", capitalise(&why)))),
        EndOutcome::NotFound => Err(ApiError::not_found()),
    }
}

/// `POST /api/v1/sessions/{id}/extend`.
pub async fn extend(
    State(state): State<AppState>,
    caller: Caller,
    ClientAddr(client): ClientAddr,
    Path(id): Path<String>,
) -> ApiResult<Json<ActionResult>> {
    let id = parse_id(&id)?;
    match use_case::extend(&state, &caller.actor, client, id).await? {
        Extended::Until(ends) => {
            let local = crate::domain::wizard::format_local(caller.actor.time_zone.local(ends));
            let message = format!("Extended: the session now ends at {local}.");
            result(&state, &caller, id, "extended", message).await
        }
        Extended::Lapsed(why) => Err(ApiError::conflict(format!("{why} The session was ended."))),
        Extended::Refused(why) => Err(ApiError::conflict(why)),
        Extended::NotFound => Err(ApiError::not_found()),
    }
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}
