//! `GET /events`: the signed-in user's live status stream, fed by [`crate::live::Hub`].
//!
//! A stream lives no longer than the sign-in and the rights it was opened with: every
//! announcement on `portcullis_auth` that may concern it (its sign-in, its account, or
//! everything) makes it re-read both, and it ends at once when the sign-in is gone, the
//! account disabled, or its role or approver standing changed (the browser reconnects and
//! sees what it may see now).

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use std::sync::Arc;
use tokio::sync::broadcast::{self, error::RecvError};
use tokio::sync::watch;
use tower_sessions::Session;
use uuid::Uuid;

use crate::live::{Change, Full, Slot};
use crate::state::AppState;
use crate::web::guard::CurrentUser;

/// An event stream is closed after this long; the browser reconnects (and is signed-in
/// checked again).
const STREAM_LIFETIME: Duration = Duration::from_secs(600);
/// What a browser receives.
#[derive(Debug, Serialize)]
struct Message<'a> {
    session: Uuid,
    status: &'static str,
    label: &'static str,
    resource: &'a str,
}

/// Whether `user` may hear of `change`: their own sessions; everything for administrators;
/// for approvers, requests whose profile names them in a tier (so the Approvals tab can add
/// and remove rows), never their own unless self-approval is allowed.
async fn visible(state: &AppState, user: &CurrentUser, change: &Change) -> bool {
    if change.requester == user.id || user.is_admin() {
        return true;
    }
    if !user.is_approver {
        return false;
    }
    crate::db::approvals::is_approver_of(&state.db, user.id, change.session)
        .await
        .unwrap_or(false)
}

/// Whether an announcement on `portcullis_auth` may concern the stream of `user` signed in
/// with browser session `web_session` (its stored digest).
fn concerns(payload: &str, web_session: &str, user: Uuid) -> bool {
    if let Some(ids) = payload.strip_prefix("s:") {
        ids.split(',').any(|id| id == web_session)
    } else if let Some(id) = payload.strip_prefix("u:") {
        id.parse::<Uuid>().map_or(true, |id| id == user)
    } else {
        true
    }
}

/// Whether the stream of `user` may go on: its sign-in still exists as that account, which is
/// not disabled and still has the role and approver standing the stream was opened with (so
/// it may see what it was seeing). Any doubt, a database error included, ends it: the browser
/// reconnects and is checked afresh.
async fn still_entitled(state: &AppState, web_session: &str, user: &CurrentUser) -> bool {
    match crate::db::users::signed_in_as(&state.db, web_session).await {
        Ok(Some(row)) => {
            row.id == user.id
                && !row.disabled
                && row.role == user.role
                && row.is_approver == user.is_approver
        }
        Ok(None) => false,
        Err(e) => {
            tracing::warn!(error = %e, "event stream: cannot re-check the sign-in; closing");
            false
        }
    }
}

/// The answer when a cap is reached: the page falls back to Refresh.
fn refuse(full: Full, user: &CurrentUser) -> Response {
    let (status, message) = match full {
        Full::User(max) => {
            tracing::warn!(user = %user.username, max, "event stream refused: the user's cap is reached");
            (
                StatusCode::TOO_MANY_REQUESTS,
                format!(
                    "You have {max} live status streams open already (one per open page); close some pages. Refresh still works."
                ),
            )
        }
        Full::Instance(max) => {
            tracing::warn!(max, "event stream refused: this instance's cap is reached");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "This server has too many live status streams open; the page works with Refresh."
                    .to_owned(),
            )
        }
    };
    (
        status,
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (header::RETRY_AFTER, "60"),
        ],
        message,
    )
        .into_response()
}

/// `GET /events`: the signed-in user's live status stream.
pub async fn events(
    State(state): State<AppState>,
    user: CurrentUser,
    session: Session,
) -> Response {
    let slot = match state.live.admit(user.id) {
        Ok(slot) => slot,
        Err(full) => return refuse(full, &user),
    };
    // A signed-in request always has a stored session; were there none, nothing could
    // announce its end, so such a stream ends at the first announcement (and reconnects).
    // Announcements and the table name sessions by their stored digest, never the cookie.
    let web_session = session
        .id()
        .map(|id| crate::auth::store::stored_id(&id))
        .unwrap_or_default();
    let listener = Listener {
        changes: state.live.changes(),
        auth: state.live.auth_announcements(),
        stop: state.live.stopping(),
        deadline: tokio::time::Instant::now() + STREAM_LIFETIME,
        state,
        user,
        web_session,
        _slot: slot,
    };
    let stream = futures_util::stream::unfold(listener, Listener::next);
    Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response()
}

/// One open stream, between two events: what it listens to and whom it is for. Its slot is
/// held until the stream ends.
struct Listener {
    changes: broadcast::Receiver<Change>,
    auth: broadcast::Receiver<Arc<str>>,
    stop: watch::Receiver<bool>,
    deadline: tokio::time::Instant,
    state: AppState,
    user: CurrentUser,
    /// The stored digest of the sign-in, or empty.
    web_session: String,
    _slot: Slot,
}

/// What woke a stream up.
enum Woken {
    Change(Result<Change, RecvError>),
    Auth(Result<Arc<str>, RecvError>),
}

impl Listener {
    /// The next event for the browser, or `None` when the stream ends: stopping, its
    /// lifetime over, or its sign-in no longer entitled to it.
    async fn next(mut self) -> Option<(Result<Event, Infallible>, Self)> {
        loop {
            if *self.stop.borrow() {
                return None;
            }
            let woken = tokio::select! {
                r = self.changes.recv() => Woken::Change(r),
                a = self.auth.recv() => Woken::Auth(a),
                _ = self.stop.changed() => return None,
                _ = tokio::time::sleep_until(self.deadline) => return None,
            };
            let received = match woken {
                Woken::Change(received) => received,
                Woken::Auth(announced) => {
                    let recheck = match announced {
                        Ok(payload) => {
                            self.web_session.is_empty()
                                || concerns(&payload, &self.web_session, self.user.id)
                        }
                        // Missed some: any of them may have been about this stream.
                        Err(RecvError::Lagged(_)) => true,
                        Err(RecvError::Closed) => return None,
                    };
                    if recheck && !still_entitled(&self.state, &self.web_session, &self.user).await
                    {
                        return None;
                    }
                    continue;
                }
            };
            let event = match received {
                Ok(change) => match self.event_of(&change).await {
                    Some(event) => event,
                    None => continue,
                },
                // Missed some: the page should reload its table.
                Err(RecvError::Lagged(_)) => Event::default().event("resync").data("{}"),
                Err(RecvError::Closed) => return None,
            };
            return Some((Ok(event), self));
        }
    }

    /// The event of `change`, when the user may hear of it.
    async fn event_of(&self, change: &Change) -> Option<Event> {
        if !visible(&self.state, &self.user, change).await {
            return None;
        }
        let message = Message {
            session: change.session,
            status: change.status.key(),
            label: change.status.label(),
            resource: &change.resource,
        };
        Event::default().event("session").json_data(&message).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn announcements_concern_their_sign_in_their_account_or_everyone() {
        let user = Uuid::new_v4();
        assert!(concerns("s:abc,def", "def", user));
        assert!(!concerns("s:abc", "def", user));
        assert!(concerns(&format!("u:{user}"), "def", user));
        assert!(!concerns(&format!("u:{}", Uuid::new_v4()), "def", user));
        assert!(concerns("*", "def", user));
    }
}
