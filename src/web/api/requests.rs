//! Requests: create in one call with the wizard's rules and words (field errors in
//! `fields`), idempotent by a client-chosen `Idempotency-Key`; get one.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use super::auth::Caller;
use super::error::{ApiError, ApiResult};
use super::sessions::Status;
use super::{parse_id, parse_json, ts};
use crate::app::requests::{
    self as use_case, Finish, Finished, IdempotencyKey, Refusal, TicketSource,
};
use crate::db;
use crate::domain::wizard::{self, MAX_NOTES, MAX_TICKET, Schedule, ScheduleError};
use crate::state::AppState;
use crate::web::client::ClientAddr;

/// Longest idempotency key.
pub const MAX_KEY: usize = 255;

/// The body of `POST /api/v1/requests`.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct NewRequest {
    /// The activity's id.
    pub activity: Option<String>,
    /// The access policy's id; needed only when several policies grant the activity.
    pub policy: Option<String>,
    /// Resource ids (at least one).
    #[serde(default)]
    pub resources: Vec<String>,
    #[serde(default)]
    pub notes: String,
    #[serde(default)]
    pub ticket: String,
    /// YYYY-MM-DD in the token owner's time zone; with `start_time`. Both absent: Now.
    pub start_date: Option<String>,
    /// HH:MM.
    pub start_time: Option<String>,
    /// Minutes of access, up to the profile's maximum (the default).
    pub duration_minutes: Option<i64>,
}

/// One resource of a request, with its session.
#[derive(Debug, Serialize)]
pub struct RequestSession {
    pub session_id: Uuid,
    pub resource: String,
    pub login_account: Option<String>,
    pub status: Status,
    pub end: String,
}

/// A request as the request page shows it.
#[derive(Debug, Serialize)]
pub struct RequestView {
    pub id: Uuid,
    pub requester: String,
    pub activity: String,
    pub policy: String,
    pub notes: String,
    pub ticket: String,
    pub requested_at: String,
    pub start: String,
    pub duration_minutes: i32,
    pub decision_deadline: Option<String>,
    pub sessions: Vec<RequestSession>,
}

async fn view(state: &AppState, caller: &Caller, id: Uuid) -> ApiResult<RequestView> {
    let h = use_case::visible(state, &caller.actor, id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    let sessions = db::request_page::resources(&state.db, id)
        .await?
        .into_iter()
        .map(|r| RequestSession {
            session_id: r.session_id,
            resource: r.resource_name,
            login_account: r.login_account,
            status: r.status.into(),
            end: ts(r.ends_at),
        })
        .collect();
    Ok(RequestView {
        id: h.id,
        requester: h.requester_name,
        activity: h.activity_name,
        policy: h.policy_name,
        notes: h.notes,
        ticket: h.ticket_number,
        requested_at: ts(h.created_at),
        start: ts(h.requested_start),
        duration_minutes: h.duration_minutes,
        decision_deadline: h.decision_deadline.map(ts),
        sessions,
    })
}

/// `GET /api/v1/requests/{id}`: the requester's, a decider's, or any for administrators
/// and auditors.
pub async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<RequestView>> {
    let id = parse_id(&id)?;
    Ok(Json(view(&state, &caller, id).await?))
}

fn id_of(text: &str) -> Option<Uuid> {
    Uuid::parse_str(text.trim()).ok()
}

/// The idempotency key of a call, checked.
fn idempotency_key(headers: &HeaderMap, body: &Bytes) -> ApiResult<Option<IdempotencyKey>> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let key = value.to_str().unwrap_or("").trim();
    if key.is_empty() || key.len() > MAX_KEY || key.chars().any(char::is_control) {
        return Err(ApiError::bad_request(format!(
            "Idempotency-Key must be 1 to {MAX_KEY} visible characters."
        )));
    }
    Ok(Some(IdempotencyKey::new(key, body)))
}

/// `POST /api/v1/requests`: the wizard in one call. 201 with the request; the same
/// `Idempotency-Key` with the same body answers the same request again (and creates
/// nothing), with another body 422.
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ClientAddr(client): ClientAddr,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let key = idempotency_key(&headers, &body)?;
    // A retry is answered before anything is checked again (the policies may have changed).
    if let Some(key) = &key {
        match use_case::replay(&state, &caller.actor, key).await? {
            Some(Ok(id)) => return answer(&state, &caller, id, true).await,
            Some(Err(refusal)) => {
                return Err(refused(ApiError::invalid(""), refusal));
            }
            None => {}
        }
    }
    let input: NewRequest = parse_json(&body)?;
    let resources: Vec<Option<Uuid>> = input.resources.iter().map(|r| id_of(r)).collect();
    let selection = use_case::check_selection(
        &state,
        &caller.actor,
        input.activity.as_deref().map(id_of),
        input.policy.as_deref().map(id_of),
        &resources,
    )
    .await?;
    let schedule = match (&input.start_date, &input.start_time) {
        (None, None) => Schedule::Now,
        (date, time) => Schedule::Later {
            date: date.as_deref().unwrap_or("").chars().take(10).collect(),
            time: time.as_deref().unwrap_or("").chars().take(8).collect(),
        },
    };
    // Bounded as the Notes page bounds them before anything else.
    let notes: String = input.notes.chars().take(MAX_NOTES + 1).collect();
    let ticket: String = input.ticket.chars().take(MAX_TICKET + 1).collect();
    let mut error = ApiError::invalid("The request was not created: see fields.");
    let (grant, resource_ids) = match selection {
        Ok(ok) => ok,
        Err(e) => {
            for (field, message) in [
                ("activity", e.activity),
                ("policy", e.policy),
                ("resources", e.resources),
            ] {
                if let Some(m) = message {
                    error = error.field(field, m);
                }
            }
            return Err(error);
        }
    };
    // Every field's error at once, as each wizard page would show it; Finish checks again.
    if let Err(e) = wizard::check_notes(&notes, &ticket, &use_case::notes_rules(&grant)) {
        error = notes_fields(error, e);
    }
    if let Err(e) = wizard::check_schedule(
        &schedule,
        caller.actor.time_zone,
        OffsetDateTime::now_utc(),
        use_case::schedule_rules(&grant),
    ) {
        error = schedule_field(error, e);
    }
    if let Err(m) =
        wizard::check_duration(input.duration_minutes, grant.profile.max_duration_minutes)
    {
        error = error.field("duration_minutes", m);
    }
    if !error.fields.is_empty() {
        return Err(error);
    }
    let finish = Finish {
        id: Uuid::now_v7(),
        activity: grant.activity_id,
        policy: grant.policy_id,
        resources: resource_ids,
        notes,
        ticket,
        schedule,
        duration_minutes: input.duration_minutes,
        ticket_check: TicketSource::AskNow,
        idempotency: key,
    };
    let (id, replayed) = match use_case::finish(&state, &caller.actor, client, &finish).await? {
        Finished::Created { id, .. } => (id, false),
        Finished::Already { id, .. } => (id, true),
        Finished::Refused(refusal) => return Err(refused(error, refusal)),
    };
    answer(&state, &caller, id, replayed).await
}

/// 201 with the request, its address, and whether this was a replay.
async fn answer(
    state: &AppState,
    caller: &Caller,
    id: Uuid,
    replayed: bool,
) -> ApiResult<Response> {
    let body = view(state, caller, id).await?;
    let mut response = (StatusCode::CREATED, Json(body)).into_response();
    if let Ok(location) = HeaderValue::from_str(&format!("/api/v1/requests/{id}")) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    if replayed {
        response
            .headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    Ok(response)
}

fn notes_fields(mut error: ApiError, e: wizard::NotesErrors) -> ApiError {
    if let Some(m) = e.notes {
        error = error.field("notes", m);
    }
    if let Some(m) = e.ticket {
        error = error.field("ticket", m);
    }
    error
}

fn schedule_field(error: ApiError, e: ScheduleError) -> ApiError {
    match e {
        ScheduleError::Date(m) => error.field("start_date", m),
        ScheduleError::Time(m) => error.field("start_time", m),
        ScheduleError::When(m) => error.field("start_date", m),
    }
}

/// Finish's refusal as an API error.
fn refused(error: ApiError, refusal: Refusal) -> ApiError {
    match refusal {
        Refusal::GrantLost(m) => error.field("activity", m),
        Refusal::Resources(m) => error.field("resources", m),
        Refusal::Notes(e) => notes_fields(error, e),
        Refusal::Schedule(e) => schedule_field(error, e),
        Refusal::Duration(m) => error.field("duration_minutes", m),
        Refusal::TicketNotOpen(Some(check)) => error.field(
            "ticket",
            format!(
                "{} This access needs a ticket that is open: correct the number, or try again later.",
                check.message
            ),
        ),
        Refusal::TicketNotOpen(None) => error.field(
            "ticket",
            "The ticket system has not confirmed that the ticket is open.",
        ),
        Refusal::KeyReused => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "idempotency_key_reused",
            "This Idempotency-Key was used before with a different body: use a new key for a new request.",
        ),
    }
}
