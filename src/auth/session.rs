//! The typed view of a browser's server-side session (tower-sessions, stored in PostgreSQL).
//! Each kind of data lives under one key with one type.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use tower_sessions::Session;
use uuid::Uuid;

use crate::error::AppResult;

const AUTH: &str = "auth";
const CSRF: &str = "csrf";
const FLASH: &str = "flash";
const PENDING: &str = "pending_sign_in";

/// Who signed in, and when.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Auth {
    pub user_id: Uuid,
    /// Unix seconds of the sign-in: the absolute lifetime counts from here.
    pub signed_in_at: i64,
    /// Unix seconds of the last recorded activity; re-saved at most once a minute, which
    /// also pushes the idle expiry of the stored session and the cookie forward.
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
pub async fn auth(session: &Session) -> AppResult<Option<Auth>> {
    Ok(session.get(AUTH).await?)
}

/// The signed-in user's account as the session store loaded it with this request's session.
pub async fn principal(session: &Session) -> AppResult<Option<crate::db::users::CurrentRow>> {
    Ok(session.get(crate::auth::store::PRINCIPAL).await?)
}

/// Records a sign-in: a new session id (so a session fixed before sign-in is worthless) and a
/// new CSRF token.
pub async fn sign_in(session: &Session, user_id: Uuid) -> AppResult<()> {
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
pub async fn begin_second_factor(session: &Session, user_id: Uuid, next: String) -> AppResult<()> {
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
pub async fn pending(session: &Session) -> AppResult<Option<Pending>> {
    let Some(p) = session.get::<Pending>(PENDING).await? else {
        return Ok(None);
    };
    if OffsetDateTime::now_utc().unix_timestamp() - p.since > PENDING_SECONDS {
        session.remove_value(PENDING).await?;
        return Ok(None);
    }
    Ok(Some(p))
}

/// Drops the sign-in waiting for its second factor.
pub async fn clear_pending(session: &Session) -> AppResult<()> {
    if session.get_value(PENDING).await?.is_some() {
        session.remove_value(PENDING).await?;
    }
    Ok(())
}

/// Seconds between two records of a sign-in's activity.
pub const TOUCH_SECONDS: i64 = 60;

/// Records activity, writing the session only when the last record is a minute old.
pub async fn touch(session: &Session, auth: &Auth, now: i64) -> AppResult<()> {
    if now - auth.last_seen >= TOUCH_SECONDS {
        let mut auth = auth.clone();
        auth.last_seen = now;
        session.insert(AUTH, auth).await?;
    }
    Ok(())
}

/// Ends the sign-in: the stored session is deleted and the cookie cleared.
pub async fn sign_out(session: &Session) -> AppResult<()> {
    session.flush().await?;
    Ok(())
}

/// The session's CSRF token, made on first use by a session that already holds something.
/// An anonymous visitor's empty session gets none, so that showing a page stores no session
/// row: the one form such a visitor sees, the sign-in form, carries a signed token instead
/// (`auth::login_token`).
pub async fn csrf_token(session: &Session) -> AppResult<Option<String>> {
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
pub async fn existing_csrf_token(session: &Session) -> AppResult<Option<String>> {
    Ok(session.get::<String>(CSRF).await?)
}

fn new_token() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Queues a message for the next page.
pub async fn flash(session: &Session, kind: FlashKind, text: impl Into<String>) -> AppResult<()> {
    let mut list: Vec<Flash> = session.get(FLASH).await?.unwrap_or_default();
    list.push(Flash {
        kind,
        text: text.into(),
    });
    session.insert(FLASH, list).await?;
    Ok(())
}

/// Takes the queued messages (the session is written only when there were some).
pub async fn take_flashes(session: &Session) -> AppResult<Vec<Flash>> {
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
pub async fn draft(session: &Session) -> AppResult<Option<crate::domain::wizard::Draft>> {
    Ok(session.get(WIZARD).await?)
}

/// Stores the draft.
pub async fn save_draft(session: &Session, draft: &crate::domain::wizard::Draft) -> AppResult<()> {
    session.insert(WIZARD, draft).await?;
    Ok(())
}

/// Discards the draft (Cancel, or after Finish).
pub async fn clear_draft(session: &Session) -> AppResult<()> {
    if session.get_value(WIZARD).await?.is_some() {
        session.remove_value(WIZARD).await?;
    }
    Ok(())
}
