//! Live status: each instance listens to PostgreSQL's `portcullis_sessions` channel (fed by
//! a trigger on session events, so changes made by any instance arrive) and relays them to
//! its browsers as server-sent events (`web::events`), filtered to what each user may see.
//!
//! Streams are capped per user and per instance.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Deserialize;
use sqlx::PgPool;
use sqlx::postgres::PgListener;
use tokio::sync::{broadcast, watch};
use uuid::Uuid;

use crate::auth::cache::{self, SessionCache};
use crate::domain::status::SessionStatus;

/// The channel the trigger notifies.
pub const CHANNEL: &str = "portcullis_sessions";
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

    /// Announcements on `portcullis_auth` from now on (payloads as in migration 0011).
    pub fn auth_announcements(&self) -> broadcast::Receiver<Arc<str>> {
        self.auth.subscribe()
    }

    /// Turns true when the instance shuts down: every open event stream ends.
    pub fn stopping(&self) -> watch::Receiver<bool> {
        self.stop.subscribe()
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
}
