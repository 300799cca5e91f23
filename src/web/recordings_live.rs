//! Watching a connection live (administrators; anyone else gets not found, as for the
//! search): the recording as it is written, drawn by
//! the same xterm.js as the browser terminal, which polls for the chunks written since its
//! last look (any instance wrote them: they are in PostgreSQL), with End and Lock for the
//! session beside it.

use askama::Template;
use askama_web::WebTemplate;
use axum::Json;
use axum::extract::{Query, State};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::db;
use crate::db::recordings::Row;
use crate::db::sessions::Details;
use crate::state::AppState;
use crate::web::chrome::Chrome;
use crate::web::error::{AppError, AppResult};
use crate::web::guard::CurrentUser;
use crate::web::path_id::PathId;
use crate::web::recordings::mode_label;

#[derive(Template, WebTemplate)]
#[template(path = "sessions/recording_live.html")]
pub struct LivePage {
    chrome: Chrome,
    s: Details,
    r: Row,
    mode: &'static str,
}

async fn recording(state: &AppState, user: &CurrentUser, rid: Uuid) -> AppResult<Row> {
    if !user.is_admin() {
        return Err(AppError::NotFound);
    }
    db::recordings::get(&state.db, rid)
        .await?
        .ok_or(AppError::NotFound)
}

/// `GET /recordings/{rid}/live`: the watching page.
pub async fn page(
    State(state): State<AppState>,
    chrome: Chrome,
    user: CurrentUser,
    PathId(rid): PathId,
) -> AppResult<LivePage> {
    let r = recording(&state, &user, rid).await?;
    let s = db::sessions::details(&state.db, r.session_id)
        .await?
        .ok_or(AppError::NotFound)?;
    Ok(LivePage {
        chrome: chrome.at("admin"),
        mode: mode_label(r.mode),
        s,
        r,
    })
}

/// Where the watcher is in the recording.
#[derive(Debug, Deserialize)]
pub struct From {
    from: Option<i32>,
}

/// Chunks (up to 1 MiB of output each) sent per poll: a watcher catching up with a bulk
/// transfer asks again at once rather than making the server render it all in one answer.
const CHUNKS_PER_POLL: i64 = 3;

/// What was written since: asciicast event lines, the chunk to ask for next, whether more is
/// already there (ask again at once), and whether the connection has ended (then nothing
/// more will come).
#[derive(Debug, Serialize)]
pub struct Since {
    events: String,
    next: i32,
    more: bool,
    ended: bool,
    end_reason: Option<String>,
    width: i32,
    height: i32,
}

/// `GET /recordings/{rid}/events?from=N`: the events of chunks N and later.
pub async fn events(
    State(state): State<AppState>,
    user: CurrentUser,
    PathId(rid): PathId,
    Query(from): Query<From>,
) -> AppResult<Json<Since>> {
    let from = from.from.unwrap_or(0);
    if from < 0 {
        return Err(AppError::Validation("from must be 0 or more".into()));
    }
    // Read the end first: events written before an end seen here are all returned below.
    let r = recording(&state, &user, rid).await?;
    let (events, next, more) =
        db::recordings::events_page(&state.db, r.id, from, CHUNKS_PER_POLL).await?;
    Ok(Json(Since {
        events,
        next,
        more,
        ended: r.ended_at.is_some() && !more,
        end_reason: r.end_reason,
        width: r.width,
        height: r.height,
    }))
}
