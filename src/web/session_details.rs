//! Session details (View Logs): the session's fields and every event in order.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::State;

use crate::db;
use crate::db::provisioning::PendingRemoval;
use crate::db::sessions::{Details, Event};
use crate::domain::ending::Ending;
use crate::domain::target_access::account_note;
use crate::domain::wizard::format_local;
use crate::state::AppState;
use crate::web::chrome::Chrome;
use crate::web::error::{AppError, AppResult};
use crate::web::guard::CurrentUser;
use crate::web::path_id::PathId;
use crate::web::recordings::{self, RecordingView};

/// An event formatted for the viewer.
pub struct EventView {
    pub at: String,
    pub actor: String,
    pub from: &'static str,
    pub to: &'static str,
    pub comment: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "sessions/details.html")]
pub struct DetailsPage {
    chrome: Chrome,
    s: Details,
    requested: String,
    start: String,
    end: String,
    /// When it really ended and how, or empty.
    ended: String,
    ended_how: &'static str,
    events: Vec<EventView>,
    time_zone: &'static str,
    is_owner: bool,
    is_admin: bool,
    can_extend: bool,
    /// The account as it really is on the target (or that the resource is simulated).
    account_note: String,
    /// Administrators: the removal of the session's access that the target has not
    /// confirmed yet, with its next try in the viewer's time.
    removal: Option<(PendingRemoval, String)>,
    /// The session's recordings through the gateway and the browser terminal.
    recordings: Vec<RecordingView>,
    /// Recordings are for the requester, administrators and auditors only, not for the
    /// request's deciders, who see the page.
    show_recordings: bool,
}

/// The session's page, for its requester, whoever may decide on its request now or decided
/// on it, administrators and auditors; anyone else gets not found.
pub async fn show(
    State(state): State<AppState>,
    chrome: Chrome,
    user: CurrentUser,
    PathId(id): PathId,
) -> AppResult<DetailsPage> {
    let s = db::sessions::details(&state.db, id)
        .await?
        .ok_or(AppError::NotFound)?;
    if !recordings::may_see_recordings(&user, &s)
        && !db::request_page::is_decider(&state.db, user.id, s.request_id).await?
    {
        return Err(AppError::NotFound);
    }
    let tz = user.time_zone;
    let events = db::sessions::events(&state.db, id)
        .await?
        .into_iter()
        .map(|e: Event| EventView {
            at: format_local(tz.local(e.at)),
            actor: e.actor_name,
            from: e.from_status.map_or("", |s| s.label()),
            to: e.to_status.map_or("", |s| s.label()),
            comment: e.comment,
        })
        .collect();
    let is_owner = s.requester_id == user.id;
    let removal = if user.is_admin() {
        db::provisioning::pending_removal(&state.db, id)
            .await?
            .map(|r| {
                let next = format_local(tz.local(r.next_attempt_at));
                (r, next)
            })
    } else {
        None
    };
    let account_note = account_note(
        s.provisioner,
        s.login_mode,
        s.login_account.as_deref(),
        &s.resource_name,
    );
    let can_extend = s.status.is_connectable()
        && (user.is_admin()
            || (is_owner && s.extension_minutes > 0 && s.extensions_used < s.max_extensions));
    let show_recordings = recordings::may_see_recordings(&user, &s);
    Ok(DetailsPage {
        recordings: if show_recordings {
            recordings::for_session(&state, tz, id).await?
        } else {
            Vec::new()
        },
        show_recordings,
        account_note,
        removal,
        is_owner,
        is_admin: user.is_admin(),
        can_extend,
        chrome: chrome.at("dashboard"),
        requested: format_local(tz.local(s.created_at)),
        start: format_local(tz.local(s.requested_start)),
        end: format_local(tz.local(s.ends_at)),
        ended: s
            .ended_at
            .map(|at| format_local(tz.local(at)))
            .unwrap_or_default(),
        ended_how: Ending::of(s.status, s.end_actor, s.requester_id).map_or("", Ending::label),
        s,
        events,
        time_zone: tz.name(),
    })
}
