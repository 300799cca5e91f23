//! Session details (View Logs): the session's fields and every event in order.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::State;

use crate::app;
use crate::app::sessions::Viewed;
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
    let viewed = app::sessions::view(&state, &app::Actor::from(&user), id)
        .await?
        .ok_or(AppError::NotFound)?;
    let recordings = if viewed.recordings {
        recordings::for_session(&state, user.time_zone, id).await?
    } else {
        Vec::new()
    };
    Ok(DetailsPage::new(chrome, &user, viewed, recordings))
}

impl DetailsPage {
    /// The page of `viewed`, in `user`'s time zone.
    fn new(
        chrome: Chrome,
        user: &CurrentUser,
        viewed: Viewed,
        recordings: Vec<RecordingView>,
    ) -> Self {
        let tz = user.time_zone;
        let s = viewed.details;
        let events = viewed
            .events
            .into_iter()
            .map(|e: Event| EventView {
                at: format_local(tz.local(e.at)),
                actor: e.actor_name,
                from: e.from_status.map_or("", |s| s.label()),
                to: e.to_status.map_or("", |s| s.label()),
                comment: e.comment,
            })
            .collect();
        let removal = viewed.removal.map(|r| {
            let next = format_local(tz.local(r.next_attempt_at));
            (r, next)
        });
        Self {
            recordings,
            show_recordings: viewed.recordings,
            account_note: account_note(
                s.provisioner,
                s.login_mode,
                s.login_account.as_deref(),
                &s.resource_name,
            ),
            removal,
            is_owner: s.requester_id == user.id,
            is_admin: user.is_admin(),
            can_extend: viewed.can_extend,
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
        }
    }
}
