//! The typed view of a browser's server-side session (tower-sessions, stored in PostgreSQL).
//! Each kind of data lives under one key with one type.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use tower_sessions::Session;
use uuid::Uuid;

use crate::auth::AuthResult;

const AUTH: &str = "auth";
const CSRF: &str = "csrf";
const FLASH: &str = "flash";
const PENDING: &str = "pending_sign_in";
const SSO: &str = "pending_sso";
const SSO_ID_TOKEN: &str = "sso_id_token";

/// Who signed in, and when.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Auth {
    pub user_id: Uuid,
    /// Unix seconds of the sign-in: the absolute lifetime counts from here.
    pub signed_in_at: i64,
    /// Unix seconds of the last recorded activity; re-saved at most every
    /// [`touch_seconds`], which also pushes the idle expiry of the stored session and the
    /// cookie forward.
    pub last_seen: i64,
}

/// A sign-in whose password was right and whose second factor is still to come. The
/// session holds no [`Auth`] meanwhile: every guarded page still sends it to `/login`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Pending {
    pub user_id: Uuid,
    /// Where to go after signing in (already checked to be a path on this site).
    pub next: String,
    /// Unix seconds of the right password; the second step must follow within
    /// [`PENDING_SECONDS`].
    pub since: i64,
}

/// How long a right password waits for its second factor.
pub const PENDING_SECONDS: i64 = 600;

/// A message shown once, on the next page.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Flash {
    pub kind: FlashKind,
    pub text: String,
}

/// How a flash message is styled.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum FlashKind {
    Success,
    Info,
    Error,
}

impl FlashKind {
    pub fn class(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Info => "info",
            Self::Error => "error",
        }
    }
}

/// Reads the sign-in.
pub async fn auth(session: &Session) -> AuthResult<Option<Auth>> {
    Ok(session.get(AUTH).await?)
}

/// The signed-in user's account as the session store loaded it with this request's session.
pub async fn principal(session: &Session) -> AuthResult<Option<crate::db::users::CurrentRow>> {
    Ok(session.get(crate::auth::store::PRINCIPAL).await?)
}

/// Records a sign-in: a new session id (so a session fixed before sign-in is worthless) and a
/// new CSRF token.
pub async fn sign_in(session: &Session, user_id: Uuid) -> AuthResult<()> {
    session.cycle_id().await?;
    if session.get_value(PENDING).await?.is_some() {
        session.remove_value(PENDING).await?;
    }
    let now = OffsetDateTime::now_utc().unix_timestamp();
    session
        .insert(
            AUTH,
            Auth {
                user_id,
                signed_in_at: now,
                last_seen: now,
            },
        )
        .await?;
    session.insert(CSRF, new_token()).await?;
    Ok(())
}

/// Records a right password that waits for its second factor: any earlier sign-in of this
/// session ends, and the session gets a new id.
pub async fn begin_second_factor(session: &Session, user_id: Uuid, next: String) -> AuthResult<()> {
    session.cycle_id().await?;
    if session.get_value(AUTH).await?.is_some() {
        session.remove_value(AUTH).await?;
    }
    let since = OffsetDateTime::now_utc().unix_timestamp();
    session
        .insert(
            PENDING,
            Pending {
                user_id,
                next,
                since,
            },
        )
        .await?;
    Ok(())
}

/// The sign-in waiting for its second factor, unless there is none or it is too old (then it
/// is dropped).
pub async fn pending(session: &Session) -> AuthResult<Option<Pending>> {
    let Some(p) = session.get::<Pending>(PENDING).await? else {
        return Ok(None);
    };
    if OffsetDateTime::now_utc().unix_timestamp() - p.since > PENDING_SECONDS {
        session.remove_value(PENDING).await?;
        return Ok(None);
    }
    Ok(Some(p))
}

/// Keeps a sign-in on its way through the OpenID Connect provider (replacing any earlier
/// one: only the latest started in this browser can come back).
pub async fn begin_sso(
    session: &Session,
    pending: crate::auth::sso::flow::Pending,
) -> AuthResult<()> {
    session.insert(SSO, pending).await?;
    Ok(())
}

/// Takes the sign-in on its way through the provider, if any and not older than
/// [`PENDING_SECONDS`]: it can come back once.
pub async fn take_sso(session: &Session) -> AuthResult<Option<crate::auth::sso::flow::Pending>> {
    let pending: Option<crate::auth::sso::flow::Pending> = session.remove(SSO).await?;
    let now = OffsetDateTime::now_utc().unix_timestamp();
    Ok(pending.filter(|p| now - p.since <= PENDING_SECONDS))
}

/// Drops the sign-in waiting for its second factor.
pub async fn clear_pending(session: &Session) -> AuthResult<()> {
    if session.get_value(PENDING).await?.is_some() {
        session.remove_value(PENDING).await?;
    }
    Ok(())
}

/// Seconds between two records of a sign-in's activity under an idle timeout of
/// `idle_minutes`: a quarter of it, at most a minute. Recording every request would write the
/// session on every click; recording once a minute, as before, was too coarse for a short
/// timeout.
pub fn touch_seconds(idle_minutes: u32) -> i64 {
    (i64::from(idle_minutes) * 15).clamp(1, 60)
}

/// Seconds after its last recorded activity when a sign-in ends: the idle timeout plus the
/// recording's granularity, because the last request may have come up to that much after the
/// last record. So requests never further apart than the idle timeout keep a sign-in alive,
/// and an idle one ends between the timeout and a quarter of it (at most a minute) later. The
/// stored session and its cookie expire by the same measure.
pub fn idle_limit_seconds(idle_minutes: u32) -> i64 {
    i64::from(idle_minutes) * 60 + touch_seconds(idle_minutes)
}

/// Whether a sign-in last recorded active at `last_seen` is idle for too long at `now`.
pub fn idle_expired(last_seen: i64, now: i64, idle_minutes: u32) -> bool {
    now - last_seen > idle_limit_seconds(idle_minutes)
}

/// Whether a request at `now` should record activity, the last record being `last_seen`.
pub fn activity_record_due(last_seen: i64, now: i64, idle_minutes: u32) -> bool {
    now - last_seen >= touch_seconds(idle_minutes)
}

/// Records activity, writing the session only when a record is due.
pub async fn touch(session: &Session, auth: &Auth, now: i64, idle_minutes: u32) -> AuthResult<()> {
    if activity_record_due(auth.last_seen, now, idle_minutes) {
        let mut auth = auth.clone();
        auth.last_seen = now;
        session.insert(AUTH, auth).await?;
    }
    Ok(())
}

/// Keeps the ID token of a sign-in through the provider, for `user`, so that signing out can
/// sign out of the provider too.
pub async fn remember_id_token(session: &Session, user: Uuid, id_token: String) -> AuthResult<()> {
    session.insert(SSO_ID_TOKEN, (user, id_token)).await?;
    Ok(())
}

/// The ID token kept by [`remember_id_token`], if it was given for `user`.
pub async fn id_token(session: &Session, user: Uuid) -> AuthResult<Option<String>> {
    let kept: Option<(Uuid, String)> = session.get(SSO_ID_TOKEN).await?;
    Ok(kept.filter(|(u, _)| *u == user).map(|(_, t)| t))
}

/// Ends the sign-in: the stored session is deleted and the cookie cleared.
pub async fn sign_out(session: &Session) -> AuthResult<()> {
    session.flush().await?;
    Ok(())
}

/// The session's CSRF token, made on first use by a session that already holds something.
/// An anonymous visitor's empty session gets none, so that showing a page stores no session
/// row: the one form such a visitor sees, the sign-in form, carries a signed token instead
/// (`web::login_token`).
pub async fn csrf_token(session: &Session) -> AuthResult<Option<String>> {
    if let Some(token) = session.get::<String>(CSRF).await? {
        return Ok(Some(token));
    }
    if session.is_empty().await {
        return Ok(None);
    }
    let token = new_token();
    session.insert(CSRF, &token).await?;
    Ok(Some(token))
}

/// The session's CSRF token, if it has one (never makes one).
pub async fn existing_csrf_token(session: &Session) -> AuthResult<Option<String>> {
    Ok(session.get::<String>(CSRF).await?)
}

fn new_token() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Queues a message for the next page.
pub async fn flash(session: &Session, kind: FlashKind, text: impl Into<String>) -> AuthResult<()> {
    let mut list: Vec<Flash> = session.get(FLASH).await?.unwrap_or_default();
    list.push(Flash {
        kind,
        text: text.into(),
    });
    session.insert(FLASH, list).await?;
    Ok(())
}

/// Takes the queued messages (the session is written only when there were some).
pub async fn take_flashes(session: &Session) -> AuthResult<Vec<Flash>> {
    match session.get::<Vec<Flash>>(FLASH).await? {
        Some(list) => {
            session.remove_value(FLASH).await?;
            Ok(list)
        }
        None => Ok(Vec::new()),
    }
}

const WIZARD: &str = "wizard";

/// The Activity Request draft, if one is under way.
pub async fn draft(session: &Session) -> AuthResult<Option<crate::domain::wizard::Draft>> {
    Ok(session.get(WIZARD).await?)
}

/// Stores the draft.
pub async fn save_draft(session: &Session, draft: &crate::domain::wizard::Draft) -> AuthResult<()> {
    session.insert(WIZARD, draft).await?;
    Ok(())
}

/// Discards the draft (Cancel, or after Finish).
pub async fn clear_draft(session: &Session) -> AuthResult<()> {
    if session.get_value(WIZARD).await?.is_some() {
        session.remove_value(WIZARD).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn activity_is_recorded_every_quarter_of_the_idle_timeout_at_most_a_minute_apart() {
        assert_eq!(touch_seconds(1), 15);
        assert_eq!(touch_seconds(2), 30);
        assert_eq!(touch_seconds(4), 60);
        assert_eq!(touch_seconds(30), 60);
        assert_eq!(idle_limit_seconds(1), 75);
        assert_eq!(idle_limit_seconds(30), 1860);
    }

    /// A user whose requests are never further apart than the idle timeout, whatever the
    /// rhythm, stays signed in; one who then stops is signed out within the granularity.
    #[test]
    fn requests_no_further_apart_than_the_idle_timeout_never_end_the_sign_in() {
        for idle_minutes in [1, 2, 5, 30] {
            let idle = i64::from(idle_minutes) * 60;
            // Gaps from one second to the whole timeout, in a rhythm that lands requests just
            // before and just after each record falls due.
            let rhythms: [&[i64]; 5] = [
                &[idle],
                &[idle - 1, 1],
                &[touch_seconds(idle_minutes) - 1, idle],
                &[1, idle, 7, idle - 3],
                &[idle / 2 + 1, idle / 3, idle],
            ];
            for rhythm in rhythms {
                let mut last_seen = 0;
                let mut now = 0;
                for gap in rhythm.iter().cycle().take(50) {
                    now += gap;
                    assert!(
                        !idle_expired(last_seen, now, idle_minutes),
                        "idle {idle_minutes} min, rhythm {rhythm:?}: signed out at {now}"
                    );
                    if activity_record_due(last_seen, now, idle_minutes) {
                        last_seen = now;
                    }
                }
                let gone = now + idle + touch_seconds(idle_minutes) + 1;
                assert!(idle_expired(last_seen, gone, idle_minutes));
            }
        }
    }
}
