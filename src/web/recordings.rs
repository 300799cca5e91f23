//! The recordings of a session on its View Logs page, and each recording as an asciicast
//! v2 file (`.cast`) for the player and for download. Same access as the page: the
//! session's requester, administrators and auditors; anyone else gets not found.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use uuid::Uuid;

use crate::db;
use crate::db::recordings::{Mode, Row, Via};
use crate::db::sessions::Details;
use crate::domain::tz::TimeZone;
use crate::domain::wizard::format_local;
use crate::state::AppState;
use crate::web::error::{AppError, AppResult};
use crate::web::guard::CurrentUser;

/// A recording as View Logs lists it.
pub struct RecordingView {
    pub id: Uuid,
    pub who: String,
    pub via: &'static str,
    pub mode: &'static str,
    pub command: String,
    pub start: String,
    pub end: String,
    pub end_reason: String,
    pub size: String,
    pub open: bool,
}

/// The session `id` when `user` may see it: its requester, administrators and auditors.
pub async fn visible_session(state: &AppState, user: &CurrentUser, id: &str) -> AppResult<Details> {
    let id = Uuid::parse_str(id).map_err(|_| AppError::NotFound)?;
    let s = db::sessions::details(&state.db, id)
        .await?
        .ok_or(AppError::NotFound)?;
    if !may_see_recordings(user, &s) {
        return Err(AppError::NotFound);
    }
    Ok(s)
}

/// Whether `user` may see the recordings of session `s`: its requester, administrators and
/// auditors (the deciders of its request may see the session, not its recordings).
pub fn may_see_recordings(user: &CurrentUser, s: &Details) -> bool {
    crate::app::sessions::may_see_recordings(&crate::app::Actor::from(user), s)
}

/// How a recording's mode reads.
pub fn mode_label(mode: Mode) -> &'static str {
    match mode {
        Mode::Shell => "Shell",
        Mode::Exec => "Command",
        Mode::Sftp => "File transfer",
    }
}

/// A byte count as people read it.
pub fn size_label(bytes: i64) -> String {
    match bytes {
        b if b < 1024 => format!("{b} B"),
        b if b < 1024 * 1024 => format!("{:.1} KiB", b as f64 / 1024.0),
        b => format!("{:.1} MiB", b as f64 / (1024.0 * 1024.0)),
    }
}

/// A recording row for a page, with times in `tz`.
pub fn view(r: Row, tz: TimeZone) -> RecordingView {
    RecordingView {
        id: r.id,
        who: r.user_name,
        via: match r.via {
            Via::Ssh => "SSH client",
            Via::Browser => "Browser",
        },
        mode: mode_label(r.mode),
        command: r.command,
        start: format_local(tz.local(r.started_at)),
        end: r
            .ended_at
            .map_or_else(|| "Still open".to_owned(), |at| format_local(tz.local(at))),
        end_reason: r.end_reason.unwrap_or_default(),
        size: size_label(r.bytes),
        open: r.ended_at.is_none(),
    }
}

/// The session's recordings for View Logs.
pub async fn for_session(
    state: &AppState,
    tz: TimeZone,
    id: Uuid,
) -> AppResult<Vec<RecordingView>> {
    Ok(db::recordings::for_session(&state.db, id)
        .await?
        .into_iter()
        .map(|r| view(r, tz))
        .collect())
}

/// Chunks rendered per piece of a `.cast` download.
const CAST_CHUNKS_PER_PIECE: i64 = 3;

/// The recording as asciicast v2, piece by piece: the header line, then the event lines of
/// a few chunks at a time, so that a recording of a bulk transfer (hundreds of MB) is never
/// rendered into memory whole. A database error ends the download early (the client sees it
/// cut short).
fn cast_stream(
    db: sqlx::PgPool,
    row: &Row,
) -> impl futures_util::Stream<Item = Result<String, std::io::Error>> + Send + 'static {
    let header = format!("{}\n", crate::recording::header(row));
    let first = futures_util::stream::once(async move { Ok(header) });
    let rid = row.id;
    let events = futures_util::stream::unfold(Some(0), move |from| {
        let db = db.clone();
        async move {
            let from = from?;
            match db::recordings::events_page(&db, rid, from, CAST_CHUNKS_PER_PIECE).await {
                Ok((events, next, more)) => Some((Ok(events), more.then_some(next))),
                Err(e) => {
                    tracing::warn!(error = %e, recording = %rid, "a .cast download was cut short");
                    Some((Err(std::io::Error::other(e)), None))
                }
            }
        }
    });
    first.chain(events)
}

/// `/sessions/{id}/recordings/{rid}.cast`: the recording in asciicast v2 (the header line,
/// then the event lines), offered as a download.
pub async fn cast(
    State(state): State<AppState>,
    user: CurrentUser,
    Path((id, file)): Path<(String, String)>,
) -> AppResult<Response> {
    let session = visible_session(&state, &user, &id).await?;
    let rid = file
        .strip_suffix(".cast")
        .and_then(|rid| Uuid::parse_str(rid).ok())
        .ok_or(AppError::NotFound)?;
    let row = db::recordings::get(&state.db, rid)
        .await?
        .filter(|r| r.session_id == session.id)
        .ok_or(AppError::NotFound)?;
    let mut response = Body::from_stream(cast_stream(state.db.clone(), &row)).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-asciicast"),
    );
    let disposition = format!("attachment; filename=\"recording-{rid}.cast\"");
    if let Ok(value) = HeaderValue::from_str(&disposition) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}
