//! Where browser sessions are kept: the `web_sessions` table, read together with the account
//! they belong to.
//!
//! tower-sessions still makes the ids, sets the cookie and decides when to save; this store
//! only keeps the records. It exists so that the one query that loads a session also loads
//! its signed-in user as they are in the database now (role, disabled, approver), which is
//! what every guarded request needs next. The user rides in the loaded record under
//! [`PRINCIPAL`]; it is never written back.
//!
//! Loaded sessions are kept for a while in this instance's [`SessionCache`], which answers
//! page views only under the conditions its module lists; every save hands the session's stamp
//! to the response.
//!
//! Rows are keyed by [`stored_id`], a digest of the session id, never by the id itself: the
//! id is the cookie's value, and a copy of the table (a backup, a replica, a dump handed to
//! support) must not be a list of live sign-ins.

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::Value;
use sqlx::PgPool;
use tower_sessions::ExpiredDeletion;
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::{self, SessionStore};
use uuid::Uuid;

use crate::auth::cache::{self, SessionCache};
use crate::db::web_sessions;

/// The key of the loaded record that holds the signed-in user's row. Set only by [`Store::load`].
pub const PRINCIPAL: &str = "_principal";
/// The key under which the sign-in (with its user id) is stored; see `auth::session`.
const AUTH: &str = "auth";

/// Sessions in PostgreSQL, loaded with their user.
#[derive(Clone)]
pub struct Store {
    pool: PgPool,
    cache: Arc<SessionCache>,
    /// The idle timeout, which decides when a new record of activity is due.
    idle_minutes: u32,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").finish_non_exhaustive()
    }
}

impl Store {
    pub fn new(pool: PgPool, cache: Arc<SessionCache>, idle_minutes: u32) -> Self {
        Self {
            pool,
            cache,
            idle_minutes,
        }
    }

    /// Whether a kept copy may stand in for the stored session: not once a new record of
    /// activity is due (the guard then saves one, from the stored session). Until then the
    /// copy's older activity time cannot end the sign-in either: records fall due well within
    /// the idle limit (see `auth::session`).
    fn recent_enough(&self, record: &Record) -> bool {
        let Some(last_seen) = record
            .data
            .get(AUTH)
            .and_then(|a| a.get("last_seen"))
            .and_then(Value::as_i64)
        else {
            return false;
        };
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        !crate::auth::session::activity_record_due(last_seen, now, self.idle_minutes)
    }

    /// Deletes expired sessions now and then, forever (the server aborts the task at exit).
    pub async fn delete_expired_every(self, period: std::time::Duration) {
        let mut ticks = tokio::time::interval(period);
        loop {
            ticks.tick().await;
            if let Err(e) = self.delete_expired().await {
                tracing::warn!(error = %e, "could not delete expired sessions");
            }
        }
    }
}

/// The key a session is stored (and announced, and kept in the cache) under: the SHA-256 of
/// its id as the cookie carries it, in lowercase hex. The id is 128 random bits, so a plain
/// digest is enough: there is nothing to guess, and nothing to salt against.
pub fn stored_id(id: &Id) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(id.to_string().as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn backend(e: sqlx::Error) -> session_store::Error {
    session_store::Error::Backend(e.to_string())
}

/// The user id a record's sign-in names, if it has one.
fn user_of(record: &Record) -> Option<Uuid> {
    record
        .data
        .get(AUTH)?
        .get("user_id")?
        .as_str()?
        .parse()
        .ok()
}

/// The record's data as stored: everything but the loaded user.
fn stored_data(record: &Record) -> serde_json::Map<String, Value> {
    record
        .data
        .iter()
        .filter(|(k, _)| k.as_str() != PRINCIPAL)
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

fn encode(data: &serde_json::Map<String, Value>) -> session_store::Result<Vec<u8>> {
    serde_json::to_vec(data).map_err(|e| session_store::Error::Encode(e.to_string()))
}

/// The session's stamp (see `auth::cache`): a digest of its stored data without the time of
/// the last activity, so sessions with other contents have other stamps on every instance,
/// while the periodic activity save leaves it as it was (and the browser's cookie right).
fn stamp_of(data: &serde_json::Map<String, Value>) -> i64 {
    use sha2::{Digest, Sha256};
    let mut data = data.clone();
    if let Some(Value::Object(auth)) = data.get_mut(AUTH) {
        auth.remove("last_seen");
    }
    // Keys are sorted (serde_json's map), so equal contents digest alike.
    let digest = Sha256::digest(serde_json::to_vec(&data).unwrap_or_default());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    match i64::from_be_bytes(first) {
        0 => 1,
        stamp => stamp,
    }
}

/// Writes the record; whether a row was written.
async fn save_with(db: &PgPool, record: &Record, insert_only: bool) -> session_store::Result<bool> {
    let data = stored_data(record);
    let written = web_sessions::save(
        db,
        &stored_id(&record.id),
        user_of(record),
        &encode(&data)?,
        record.expiry_date,
        insert_only,
    )
    .await
    .map_err(backend)?;
    if written {
        cache::saved(stamp_of(&data));
    }
    Ok(written)
}

#[async_trait]
impl SessionStore for Store {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        // A fresh random id colliding is all but impossible; if it ever does, draw again
        // rather than overwrite someone else's session.
        while !save_with(&self.pool, record, true).await? {
            record.id = Id::default();
        }
        Ok(())
    }

    async fn save(&self, record: &Record) -> session_store::Result<()> {
        let saved = save_with(&self.pool, record, false).await;
        self.cache.forget(&stored_id(&record.id));
        saved.map(|_| ())
    }

    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        let key = stored_id(id);
        if let Some(stamp) = cache::presented()
            && let Some(record) = self.cache.get(&key, stamp, |r| self.recent_enough(r))
        {
            return Ok(Some(record));
        }
        let ticket = self.cache.ticket();
        let Some(row) = web_sessions::load(&self.pool, &key)
            .await
            .map_err(backend)?
        else {
            return Ok(None);
        };
        let stored: serde_json::Map<String, Value> = serde_json::from_slice(&row.data)
            .map_err(|e| session_store::Error::Decode(e.to_string()))?;
        let stamp = stamp_of(&stored);
        let mut data: std::collections::HashMap<String, Value> = stored.into_iter().collect();
        let user_id = row.user.as_ref().map(|u| u.id);
        if let Some(user) = row.user {
            let value = serde_json::to_value(user)
                .map_err(|e| session_store::Error::Decode(e.to_string()))?;
            data.insert(PRINCIPAL.to_owned(), value);
        }
        let record = Record {
            id: *id,
            data,
            expiry_date: row.expires_at,
        };
        if let Some(user_id) = user_id {
            self.cache.keep(key, &record, user_id, stamp, ticket);
        }
        Ok(Some(record))
    }

    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        let key = stored_id(id);
        let deleted = web_sessions::delete(&self.pool, &key)
            .await
            .map_err(backend);
        self.cache.forget(&key);
        deleted
    }
}

#[async_trait]
impl ExpiredDeletion for Store {
    async fn delete_expired(&self) -> session_store::Result<()> {
        web_sessions::delete_expired(&self.pool)
            .await
            .map_err(backend)
    }
}

#[cfg(test)]
mod tests {
    use time::OffsetDateTime;

    use super::*;

    fn record(data: serde_json::Value) -> Record {
        Record {
            id: Id::default(),
            data: serde_json::from_value(data).unwrap_or_default(),
            expiry_date: OffsetDateTime::now_utc(),
        }
    }

    #[test]
    fn the_loaded_user_is_never_stored() {
        let r = record(serde_json::json!({
            "csrf": "abc",
            "_principal": {"id": "00000000-0000-0000-0000-000000000001"},
        }));
        let stored: serde_json::Value =
            serde_json::from_slice(&encode(&stored_data(&r)).unwrap_or_default())
                .unwrap_or_default();
        assert_eq!(stored, serde_json::json!({"csrf": "abc"}));
    }

    #[test]
    fn the_stamp_follows_the_contents_but_not_the_last_activity() {
        let stamp = |v: serde_json::Value| stamp_of(&stored_data(&record(v)));
        let signed_in = |seen: i64, draft: &str| {
            serde_json::json!({
                "auth": {"user_id": "6f1c1c1e-8f5c-4d3a-9a43-3d2f4f0d8b11", "signed_in_at": 1, "last_seen": seen},
                "csrf": "abc",
                "wizard": {"notes": draft},
            })
        };
        assert_eq!(stamp(signed_in(5, "a")), stamp(signed_in(65, "a")));
        assert_ne!(stamp(signed_in(5, "a")), stamp(signed_in(5, "b")));
        // The loaded user is not part of it.
        let mut with_user = signed_in(5, "a");
        with_user["_principal"] = serde_json::json!({"role": "admin"});
        assert_eq!(stamp(with_user), stamp(signed_in(5, "a")));
        assert_ne!(stamp_of(&serde_json::Map::new()), 0);
    }

    #[test]
    fn the_user_column_follows_the_sign_in() {
        let id = "6f1c1c1e-8f5c-4d3a-9a43-3d2f4f0d8b11";
        let signed_in = record(serde_json::json!({"auth": {"user_id": id, "signed_in_at": 1}}));
        assert_eq!(user_of(&signed_in), id.parse().ok());
        assert_eq!(user_of(&record(serde_json::json!({"csrf": "x"}))), None);
    }
}
