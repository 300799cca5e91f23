//! Live status: each instance listens to PostgreSQL's `portcullis_sessions` channel (fed by
//! a trigger on session events, so changes made by any instance arrive) and relays them to
//! its browsers as server-sent events, filtered to what each user may see.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use sqlx::postgres::PgListener;
use tokio::sync::{broadcast, watch};
use uuid::Uuid;

use crate::AppState;
use crate::auth::CurrentUser;
use crate::auth::cache::{self, SessionCache};
use crate::domain::status::SessionStatus;

/// The channel the trigger notifies.
pub const CHANNEL: &str = "portcullis_sessions";
/// An event stream is closed after this long; the browser reconnects (and is signed-in
/// checked again).
const STREAM_LIFETIME: Duration = Duration::from_secs(600);

/// One change, as the trigger announces it.
#[derive(Debug, Clone, Deserialize)]
pub struct Change {
    pub session: Uuid,
    pub request: Uuid,
    pub requester: Uuid,
    pub resource: String,
    pub status: SessionStatus,
    pub kind: String,
}

/// What a browser receives.
#[derive(Debug, Serialize)]
struct Message<'a> {
    session: Uuid,
    status: &'static str,
    label: &'static str,
    resource: &'a str,
}

/// Fans changes out to this instance's event streams.
#[derive(Clone)]
pub struct Hub {
    changes: broadcast::Sender<Change>,
    stop: watch::Sender<bool>,
}

impl Default for Hub {
    fn default() -> Self {
        Self::new()
    }
}

impl Hub {
    pub fn new() -> Self {
        Self {
            changes: broadcast::channel(1024).0,
            stop: watch::channel(false).0,
        }
    }

    /// Ends every open event stream (at shutdown, so that draining requests can finish).
    pub fn stop(&self) {
        let _ = self.stop.send(true);
    }

    /// Relays notifications from PostgreSQL until stopped, reconnecting after failures: status
    /// changes to the event streams, account and session changes to `sessions` (which is
    /// used only while this connection is up).
    pub async fn listen(self, pool: PgPool, sessions: Arc<SessionCache>) {
        let mut stop = self.stop.subscribe();
        loop {
            let result = tokio::select! {
                r = self.relay(&pool, &sessions) => r,
                _ = stop.changed() => Ok(()),
            };
            // Whatever is announced from now until listening again would be missed.
            sessions.set_listening(false);
            if *stop.borrow() {
                return;
            }
            match result {
                Ok(()) => tracing::warn!("live status listener lost its connection; reconnecting"),
                Err(e) => {
                    tracing::warn!(error = %e, "live status listener failed; retrying");
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = stop.changed() => return,
            }
        }
    }

    /// Relays until the connection is lost (`Ok`) or fails to open (`Err`).
    async fn relay(&self, pool: &PgPool, sessions: &SessionCache) -> Result<(), sqlx::Error> {
        let mut listener = PgListener::connect_with(pool).await?;
        // Hand a lost connection back at once rather than reconnecting inside `try_recv`, so
        // the session cache is off from the moment notifications may be missed.
        listener.eager_reconnect(false);
        listener.listen_all([CHANNEL, cache::CHANNEL]).await?;
        sessions.set_listening(true);
        loop {
            let Some(note) = listener.try_recv().await? else {
                return Ok(());
            };
            if note.channel() == cache::CHANNEL {
                sessions.announced(note.payload());
                continue;
            }
            match serde_json::from_str::<Change>(note.payload()) {
                // No receivers is fine: nobody is watching.
                Ok(change) => {
                    let _ = self.changes.send(change);
                }
                Err(e) => tracing::warn!(error = %e, "unreadable live status notification"),
            }
        }
    }
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

/// `GET /events`: the signed-in user's live status stream.
pub async fn events(
    State(state): State<AppState>,
    user: CurrentUser,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let changes = state.live.changes.subscribe();
    let stop = state.live.stop.subscribe();
    let deadline = tokio::time::Instant::now() + STREAM_LIFETIME;
    let stream = futures_util::stream::unfold(
        (changes, stop, state, user),
        move |(mut changes, mut stop, state, user)| async move {
            loop {
                if *stop.borrow() {
                    return None;
                }
                let received = tokio::select! {
                    r = changes.recv() => r,
                    _ = stop.changed() => return None,
                    _ = tokio::time::sleep_until(deadline) => return None,
                };
                let event = match received {
                    Ok(change) => {
                        if !visible(&state, &user, &change).await {
                            continue;
                        }
                        let message = Message {
                            session: change.session,
                            status: change.status.key(),
                            label: change.status.label(),
                            resource: &change.resource,
                        };
                        match Event::default().event("session").json_data(&message) {
                            Ok(e) => e,
                            Err(_) => continue,
                        }
                    }
                    // Missed some: the page should reload its table.
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        Event::default().event("resync").data("{}")
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                };
                return Some((Ok(event), (changes, stop, state, user)));
            }
        },
    );
    Sse::new(stream).keep_alive(KeepAlive::default())
}
