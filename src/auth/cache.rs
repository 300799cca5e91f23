//! Recently loaded browser sessions, kept in memory with their signed-in account, so that a
//! page view costs one database round trip (its own query) instead of two.
//!
//! A kept copy answers a request only when all of these hold:
//! - the request is a GET or HEAD: anything that changes state reads the stored session;
//! - the browser presents the copy's stamp, a digest of the session's contents that every
//!   save sends in a cookie beside the session id, so a session saved through another
//!   instance (the wizard's previous step, say) is never answered from an older copy;
//! - this instance is listening on `portcullis_auth` (migration 0011), which announces every
//!   change to stored sessions, to the accounts they are signed in as and to approver
//!   membership, whoever makes it; while that connection is down nothing is kept or used;
//! - the copy is younger than the configured lifetime (`PORTCULLIS_SESSION_CACHE_SECONDS`,
//!   default 30; 0 turns the cache off), a backstop should a notification go missing, and
//!   the store finds it recent enough (no activity record due: see `auth::store`);
//! - nothing was announced while it was being read.
//!
//! Copies are kept under the session's stored id (`auth::store::stored_id`, a digest of the
//! cookie's value), which is also what the announcements name.
//!
//! So a change made through this instance (its own saves, and the account pages, whose POSTs
//! clear the cache before they answer) takes effect on the next click; one made through
//! another instance or directly in the database takes effect when its notification arrives,
//! in milliseconds.

use std::cell::Cell;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use time::OffsetDateTime;
use tower_sessions::session::Record;
use uuid::Uuid;

/// The channel the triggers of migration 0011 announce changes on.
pub const CHANNEL: &str = "portcullis_auth";
/// Copies kept at most; past that, stale ones go first, then all.
const MAX_ENTRIES: usize = 10_000;

/// How a lookup went, for `/metrics`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LookupLabels {
    result: &'static str,
}

struct Entry {
    record: Record,
    user: Uuid,
    stamp: i64,
    kept_at: Instant,
}

#[derive(Default)]
struct State {
    listening: bool,
    /// Counts announcements and local changes: a read that began under another count may have
    /// missed one, so it is not kept.
    changes: u64,
    /// By stored id.
    entries: HashMap<String, Entry>,
}

impl State {
    fn changed(&mut self) {
        self.changes = self.changes.wrapping_add(1);
    }
}

/// This instance's kept sessions.
pub struct SessionCache {
    lifetime: Duration,
    state: Mutex<State>,
    lookups: Family<LookupLabels, Counter>,
}

/// Where a read began, to be handed back to [`SessionCache::keep`].
#[derive(Debug, Clone, Copy)]
pub struct Ticket(u64);

impl SessionCache {
    /// A cache whose copies live at most `lifetime` (zero: nothing is ever kept).
    pub fn new(lifetime: Duration) -> Arc<Self> {
        Arc::new(Self {
            lifetime,
            state: Mutex::new(State::default()),
            lookups: Family::default(),
        })
    }

    /// Hits and misses by result, for the metrics registry.
    pub fn lookups(&self) -> Family<LookupLabels, Counter> {
        self.lookups.clone()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves nothing half-done that matters: at worst a
        // copy too few.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn count(&self, result: &'static str) {
        self.lookups.get_or_create(&LookupLabels { result }).inc();
    }

    /// The kept copy of the session stored as `key` if it may answer a request presenting
    /// `stamp` (`None`: the browser sent none) and passes `usable`.
    pub fn get(
        &self,
        key: &str,
        stamp: Option<i64>,
        usable: impl Fn(&Record) -> bool,
    ) -> Option<Record> {
        if self.lifetime.is_zero() {
            return None;
        }
        let Some(stamp) = stamp else {
            self.count("miss");
            return None;
        };
        let found = {
            let state = self.lock();
            state
                .entries
                .get(key)
                .filter(|e| {
                    state.listening
                        && e.stamp == stamp
                        && e.kept_at.elapsed() < self.lifetime
                        && e.record.expiry_date > OffsetDateTime::now_utc()
                        && usable(&e.record)
                })
                .map(|e| e.record.clone())
        };
        self.count(if found.is_some() { "hit" } else { "miss" });
        found
    }

    /// Call before reading a session from the database.
    pub fn ticket(&self) -> Ticket {
        Ticket(self.lock().changes)
    }

    /// Keeps a session stored as `key` and read from the database since `ticket`, signed in
    /// as `user`.
    pub fn keep(&self, key: String, record: &Record, user: Uuid, stamp: i64, ticket: Ticket) {
        if self.lifetime.is_zero() || stamp == 0 {
            return;
        }
        let mut state = self.lock();
        if !state.listening || state.changes != ticket.0 {
            return;
        }
        if state.entries.len() >= MAX_ENTRIES && !state.entries.contains_key(&key) {
            let lifetime = self.lifetime;
            state.entries.retain(|_, e| e.kept_at.elapsed() < lifetime);
            if state.entries.len() >= MAX_ENTRIES {
                state.entries.clear();
            }
        }
        state.entries.insert(
            key,
            Entry {
                record: record.clone(),
                user,
                stamp,
                kept_at: Instant::now(),
            },
        );
    }

    /// The session stored as `key` was saved or deleted here.
    pub fn forget(&self, key: &str) {
        let mut state = self.lock();
        state.changed();
        state.entries.remove(key);
    }

    /// Forgets everything (an account page changed something, or an announcement says so).
    pub fn clear(&self) {
        let mut state = self.lock();
        state.changed();
        state.entries.clear();
    }

    /// Whether announcements are arriving. Either way, what is kept is dropped: while deaf,
    /// changes may be missed; on hearing again, some may have been.
    pub fn set_listening(&self, listening: bool) {
        let mut state = self.lock();
        state.listening = listening;
        state.changed();
        state.entries.clear();
    }

    /// Whether announcements are arriving (and so whether anything is kept).
    pub fn is_listening(&self) -> bool {
        self.lock().listening
    }

    /// Applies one announcement from [`CHANNEL`] (see migration 0011 for the payloads).
    pub fn announced(&self, payload: &str) {
        let mut state = self.lock();
        state.changed();
        if let Some(ids) = payload.strip_prefix("s:") {
            for key in ids.split(',') {
                if is_stored_id(key) {
                    state.entries.remove(key);
                } else {
                    // Not ours to read: be safe.
                    state.entries.clear();
                }
            }
        } else if let Some(user) = payload.strip_prefix("u:") {
            match user.parse::<Uuid>() {
                Ok(user) => state.entries.retain(|_, e| e.user != user),
                Err(_) => state.entries.clear(),
            }
        } else {
            state.entries.clear();
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().entries.len()
    }
}

/// Whether `key` looks like a stored session id (64 lowercase hex digits).
fn is_stored_id(key: &str) -> bool {
    key.len() == 64 && key.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// What the session store needs to know about the request it is serving.
struct RequestScope {
    /// For a GET or HEAD, the stamp cookie the browser sent (if any); `None` for others.
    presented: Option<Option<i64>>,
    /// The stamp this request's save wrote.
    saved: Cell<Option<i64>>,
}

tokio::task_local! {
    static REQUEST: RequestScope;
}

/// Runs `serve` (the rest of the request) with the browser's stamp visible to the session
/// store (see [`RequestScope::presented`]), and returns its response with the stamp of what a
/// save wrote, if any.
pub async fn scope<F: Future>(
    presented: Option<Option<i64>>,
    serve: F,
) -> (F::Output, Option<i64>) {
    let request = RequestScope {
        presented,
        saved: Cell::new(None),
    };
    REQUEST
        .scope(request, async {
            let out = serve.await;
            let saved = REQUEST.try_with(|r| r.saved.get()).ok().flatten();
            (out, saved)
        })
        .await
}

/// When a kept copy may answer the current request (a GET or HEAD), the stamp it presented.
pub fn presented() -> Option<Option<i64>> {
    REQUEST.try_with(|r| r.presented).ok().flatten()
}

/// Records the stamp a save wrote, for the response's cookie.
pub fn saved(stamp: i64) {
    let _ = REQUEST.try_with(|r| r.saved.set(Some(stamp)));
}

#[cfg(test)]
mod tests {
    use tower_sessions::session::Id;

    use super::*;

    fn record(expires_in: time::Duration) -> Record {
        Record {
            id: Id::default(),
            data: HashMap::new(),
            expiry_date: OffsetDateTime::now_utc() + expires_in,
        }
    }

    fn key(r: &Record) -> String {
        crate::auth::store::stored_id(&r.id)
    }

    fn listening_cache() -> Arc<SessionCache> {
        let cache = SessionCache::new(Duration::from_secs(30));
        cache.set_listening(true);
        cache
    }

    const HOUR: time::Duration = time::Duration::hours(1);

    fn any(_: &Record) -> bool {
        true
    }

    #[test]
    fn a_kept_copy_answers_only_its_own_stamp() {
        let cache = listening_cache();
        let r = record(HOUR);
        let user = Uuid::new_v4();
        cache.keep(key(&r), &r, user, 7, cache.ticket());
        assert!(cache.get(&key(&r), Some(7), any).is_some());
        assert!(cache.get(&key(&r), Some(8), any).is_none());
        assert!(cache.get(&key(&record(HOUR)), Some(7), any).is_none());
    }

    #[test]
    fn nothing_is_kept_or_used_while_not_listening() {
        let cache = SessionCache::new(Duration::from_secs(30));
        let r = record(HOUR);
        cache.keep(key(&r), &r, Uuid::new_v4(), 7, cache.ticket());
        assert_eq!(cache.len(), 0);
        cache.set_listening(true);
        cache.keep(key(&r), &r, Uuid::new_v4(), 7, cache.ticket());
        assert!(cache.get(&key(&r), Some(7), any).is_some());
        cache.set_listening(false);
        assert!(cache.get(&key(&r), Some(7), any).is_none());
    }

    #[test]
    fn a_read_that_overlapped_a_change_is_not_kept() {
        let cache = listening_cache();
        let r = record(HOUR);
        let ticket = cache.ticket();
        cache.announced(&format!("s:{}", key(&record(HOUR))));
        cache.keep(key(&r), &r, Uuid::new_v4(), 7, ticket);
        assert!(cache.get(&key(&r), Some(7), any).is_none());
    }

    #[test]
    fn announcements_forget_the_sessions_and_accounts_they_name() {
        let cache = listening_cache();
        let (a, b, c) = (record(HOUR), record(HOUR), record(HOUR));
        let (alice, bob) = (Uuid::new_v4(), Uuid::new_v4());
        cache.keep(key(&a), &a, alice, 1, cache.ticket());
        cache.keep(key(&b), &b, alice, 2, cache.ticket());
        cache.keep(key(&c), &c, bob, 3, cache.ticket());
        cache.announced(&format!("s:{},{}", key(&a), key(&record(HOUR))));
        assert!(cache.get(&key(&a), Some(1), any).is_none());
        assert!(cache.get(&key(&b), Some(2), any).is_some());
        cache.announced(&format!("u:{alice}"));
        assert!(cache.get(&key(&b), Some(2), any).is_none());
        assert!(cache.get(&key(&c), Some(3), any).is_some());
        cache.announced("*");
        assert!(cache.get(&key(&c), Some(3), any).is_none());
        cache.keep(key(&c), &c, bob, 3, cache.ticket());
        cache.announced("s:not-an-id");
        assert_eq!(cache.len(), 0);
    }

    #[test]
    fn expired_sessions_and_old_copies_are_not_used() {
        let cache = SessionCache::new(Duration::from_millis(50));
        cache.set_listening(true);
        let gone = record(time::Duration::seconds(-1));
        cache.keep(key(&gone), &gone, Uuid::new_v4(), 1, cache.ticket());
        assert!(cache.get(&key(&gone), Some(1), any).is_none());
        let r = record(HOUR);
        cache.keep(key(&r), &r, Uuid::new_v4(), 1, cache.ticket());
        assert!(cache.get(&key(&r), Some(1), any).is_some());
        std::thread::sleep(Duration::from_millis(60));
        assert!(cache.get(&key(&r), Some(1), any).is_none());
    }

    #[test]
    fn a_zero_lifetime_keeps_nothing() {
        let cache = SessionCache::new(Duration::ZERO);
        cache.set_listening(true);
        let r = record(HOUR);
        cache.keep(key(&r), &r, Uuid::new_v4(), 1, cache.ticket());
        assert!(cache.get(&key(&r), Some(1), any).is_none());
    }
}
