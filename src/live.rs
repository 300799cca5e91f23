//! Live status: each instance listens to PostgreSQL's `portcullis_sessions` channel (fed by
//! a trigger on session events, so changes made by any instance arrive) and relays them to
//! its browsers as server-sent events, filtered to what each user may see.
//!
//! A stream lives no longer than the sign-in and the rights it was opened with: every
//! announcement on `portcullis_auth` that may concern it (its sign-in, its account, or
//! everything) makes it re-read both, and it ends at once when the sign-in is gone, the
//! account disabled, or its role or approver standing changed (the browser reconnects and
//! sees what it may see now). Streams are capped per user and per instance.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use sqlx::postgres::PgListener;
use tokio::sync::{broadcast, watch};
use tower_sessions::Session;
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
/// Open event streams one user may have on one instance (a few tabs and windows).
pub const MAX_STREAMS_PER_USER: usize = 8;
/// Open event streams one instance serves unless configured otherwise.
pub const DEFAULT_MAX_STREAMS: usize = 1000;
/// Browser terminals (WebSockets to a target) one user may have open on one instance.
pub const MAX_TERMINALS_PER_USER: usize = 4;
/// Browser terminals one instance serves unless configured otherwise.
pub const DEFAULT_MAX_TERMINALS: usize = 200;

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
    /// Announcements on `portcullis_auth` (payloads as in migration 0011).
    auth: broadcast::Sender<Arc<str>>,
    stop: watch::Sender<bool>,
    open: Arc<Mutex<Open>>,
    max_per_user: usize,
    max_total: usize,
    /// Browser terminals, counted like the streams but apart from them.
    terminals: Arc<Mutex<Open>>,
    max_terminals: usize,
}

/// The streams open on this instance.
#[derive(Default)]
struct Open {
    total: usize,
    per_user: HashMap<Uuid, usize>,
}

/// Why a stream was not opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Full {
    /// The user has the most streams allowed open.
    User(usize),
    /// The instance serves the most streams allowed.
    Instance(usize),
}

/// An open stream's place, given back when the stream ends (dropped).
pub struct Slot {
    open: Arc<Mutex<Open>>,
    user: Uuid,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = lock(&self.open);
        open.total = open.total.saturating_sub(1);
        if let Some(n) = open.per_user.get_mut(&self.user) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.per_user.remove(&self.user);
            }
        }
    }
}

fn lock(open: &Mutex<Open>) -> std::sync::MutexGuard<'_, Open> {
    // Counters only: a panic elsewhere leaves nothing half-done that matters.
    open.lock().unwrap_or_else(|e| e.into_inner())
}

/// One more place in `open` for `user`, unless `per_user` or `total` is reached.
fn take(open: &Arc<Mutex<Open>>, user: Uuid, per_user: usize, total: usize) -> Result<Slot, Full> {
    let mut counts = lock(open);
    if counts.total >= total {
        return Err(Full::Instance(total));
    }
    let mine = counts.per_user.entry(user).or_default();
    if *mine >= per_user {
        return Err(Full::User(per_user));
    }
    *mine += 1;
    counts.total += 1;
    Ok(Slot {
        open: open.clone(),
        user,
    })
}

impl Default for Hub {
    fn default() -> Self {
        Self::new()
    }
}

impl Hub {
    pub fn new() -> Self {
        Self::with_limit(DEFAULT_MAX_STREAMS)
    }

    /// A hub serving at most `max_total` streams at once (and [`MAX_STREAMS_PER_USER`] per
    /// user).
    pub fn with_limit(max_total: usize) -> Self {
        Self {
            changes: broadcast::channel(1024).0,
            auth: broadcast::channel(256).0,
            stop: watch::channel(false).0,
            open: Arc::default(),
            max_per_user: MAX_STREAMS_PER_USER,
            max_total,
            terminals: Arc::default(),
            max_terminals: DEFAULT_MAX_TERMINALS,
        }
    }

    /// The same hub serving at most `max` browser terminals at once (and
    /// [`MAX_TERMINALS_PER_USER`] per user).
    pub fn with_terminal_limit(mut self, max: usize) -> Self {
        self.max_terminals = max;
        self
    }

    /// A place for one more stream of `user`, unless a cap is reached.
    pub fn admit(&self, user: Uuid) -> Result<Slot, Full> {
        take(&self.open, user, self.max_per_user, self.max_total)
    }

    /// A place for one more browser terminal of `user`, unless a cap is reached.
    pub fn admit_terminal(&self, user: Uuid) -> Result<Slot, Full> {
        take(
            &self.terminals,
            user,
            MAX_TERMINALS_PER_USER,
            self.max_terminals,
        )
    }

    /// Every status change this instance hears of from now on (the gateway's connections
    /// close on those of their session).
    pub fn changes(&self) -> broadcast::Receiver<Change> {
        self.changes.subscribe()
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
        // Announcements may have been missed while not listening: every stream re-checks.
        let _ = self.auth.send(Arc::from("*"));
        loop {
            let Some(note) = listener.try_recv().await? else {
                return Ok(());
            };
            if note.channel() == cache::CHANNEL {
                sessions.announced(note.payload());
                let _ = self.auth.send(Arc::from(note.payload()));
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
    let changes = state.live.changes.subscribe();
    let auth = state.live.auth.subscribe();
    let stop = state.live.stop.subscribe();
    let deadline = tokio::time::Instant::now() + STREAM_LIFETIME;
    let stream = futures_util::stream::unfold(
        (changes, auth, stop, state, user, web_session, slot),
        move |(mut changes, mut auth, mut stop, state, user, web_session, slot)| async move {
            loop {
                if *stop.borrow() {
                    return None;
                }
                let received = tokio::select! {
                    r = changes.recv() => r,
                    a = auth.recv() => {
                        let recheck = match a {
                            Ok(payload) => web_session.is_empty() || concerns(&payload, &web_session, user.id),
                            // Missed some: any of them may have been about this stream.
                            Err(broadcast::error::RecvError::Lagged(_)) => true,
                            Err(broadcast::error::RecvError::Closed) => return None,
                        };
                        if recheck && !still_entitled(&state, &web_session, &user).await {
                            return None;
                        }
                        continue;
                    }
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
                return Some((
                    Ok::<_, Infallible>(event),
                    (changes, auth, stop, state, user, web_session, slot),
                ));
            }
        },
    );
    Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_capped_per_user_and_per_instance_and_slots_come_back() {
        let hub = Hub::with_limit(10);
        let (alice, bob) = (Uuid::new_v4(), Uuid::new_v4());
        let mut alices: Vec<Slot> = (0..MAX_STREAMS_PER_USER)
            .map(|_| hub.admit(alice).unwrap())
            .collect();
        assert_eq!(
            hub.admit(alice).err(),
            Some(Full::User(MAX_STREAMS_PER_USER))
        );
        let bobs: Vec<Slot> = (0..2).map(|_| hub.admit(bob).unwrap()).collect();
        assert_eq!(hub.admit(bob).err(), Some(Full::Instance(10)));
        alices.pop();
        assert!(
            hub.admit(bob).is_ok(),
            "a closed stream gives its place back"
        );
        drop(bobs);
        drop(alices);
        assert_eq!(lock(&hub.open).total, 0);
        assert!(lock(&hub.open).per_user.is_empty());
    }

    #[test]
    fn terminals_are_capped_apart_from_the_streams() {
        let hub = Hub::with_limit(1).with_terminal_limit(MAX_TERMINALS_PER_USER + 1);
        let (alice, bob) = (Uuid::new_v4(), Uuid::new_v4());
        let _stream = hub.admit(alice).unwrap();
        let alices: Vec<Slot> = (0..MAX_TERMINALS_PER_USER)
            .map(|_| hub.admit_terminal(alice).unwrap())
            .collect();
        assert_eq!(
            hub.admit_terminal(alice).err(),
            Some(Full::User(MAX_TERMINALS_PER_USER))
        );
        let bobs = hub.admit_terminal(bob).unwrap();
        assert_eq!(
            hub.admit_terminal(bob).err(),
            Some(Full::Instance(MAX_TERMINALS_PER_USER + 1))
        );
        drop(alices);
        drop(bobs);
        assert_eq!(lock(&hub.terminals).total, 0);
        assert!(lock(&hub.terminals).per_user.is_empty());
        assert_eq!(lock(&hub.open).total, 1, "the stream keeps its place");
    }

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
