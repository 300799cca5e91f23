//! Requests: create in one call with the wizard's rules and words (field errors in
//! `fields`), idempotent by a client-chosen `Idempotency-Key`; get one.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::auth::Caller;
use super::error::{ApiError, ApiResult};
use super::sessions::Status;
use super::{parse_id, parse_json, ts};
use crate::app::one_call::{self, Invalid, OneCall};
use crate::app::requests::{self as use_case, Finished, IdempotencyKey, Refusal};
use crate::db;
use crate::domain::wizard::{self, Schedule, ScheduleError, TypedNotes};
use crate::state::AppState;
use crate::web::client::ClientAddr;
use crate::web::wizard::notes::ticket_not_open;

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
        match one_call::replay(&state, &caller.actor, key).await? {
            Some(Ok(id)) => return answer(&state, &caller, id, true).await,
            Some(Err(refusal)) => {
                return Err(refused(ApiError::invalid(""), refusal));
            }
            None => {}
        }
    }
    let input: NewRequest = parse_json(&body)?;
    let call = input.into_call(key);
    let error = ApiError::invalid("The request was not created: see fields.");
    let (id, replayed) = match one_call::create(&state, &caller.actor, client, call).await? {
        Err(invalid) => return Err(invalid_fields(error, invalid)),
        Ok(Finished::Created { id, .. }) => (id, false),
        Ok(Finished::Already { id, .. }) => (id, true),
        Ok(Finished::Refused(refusal)) => return Err(refused(error, refusal)),
    };
    answer(&state, &caller, id, replayed).await
}

impl NewRequest {
    /// The body as the application reads it: text that is not an id names nothing; no start
    /// date nor time is Now; the notes bounded as the Notes page bounds them.
    fn into_call(self, idempotency: Option<IdempotencyKey>) -> OneCall {
        let schedule = match (&self.start_date, &self.start_time) {
            (None, None) => Schedule::Now,
            (date, time) => Schedule::Later {
                date: date.as_deref().unwrap_or("").chars().take(10).collect(),
                time: time.as_deref().unwrap_or("").chars().take(8).collect(),
            },
        };
        OneCall {
            activity: self.activity.as_deref().map(id_of),
            policy: self.policy.as_deref().map(id_of),
            resources: self.resources.iter().map(|r| id_of(r)).collect(),
            typed: TypedNotes::bounded(&self.notes, &self.ticket),
            schedule,
            duration_minutes: self.duration_minutes,
            idempotency,
        }
    }
}

/// A call not even tried: every field's error, as each wizard page would word it.
fn invalid_fields(mut error: ApiError, invalid: Invalid) -> ApiError {
    match invalid {
        Invalid::Selection(e) => {
            for (field, message) in [
                ("activity", e.activity),
                ("policy", e.policy),
                ("resources", e.resources),
            ] {
                if let Some(m) = message {
                    error = error.field(field, m);
                }
            }
            error
        }
        Invalid::Fields {
            notes,
            schedule,
            duration,
        } => {
            error = notes_fields(error, notes);
            if let Some(e) = schedule {
                error = schedule_field(error, e);
            }
            match duration {
                Some(m) => error.field("duration_minutes", m),
                None => error,
            }
        }
    }
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
        Refusal::TicketNotOpen(Some(check)) => error.field("ticket", ticket_not_open(&check)),
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
