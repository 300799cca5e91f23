//! Actions on one session from its page: Extend (requester when the profile allows;
//! administrators always; see `app::sessions`), Lock with a message and Unlock
//! (administrators). Extend and Unlock re-check the session's grant first (`db::grants`).

use crate::app;
use crate::app::sessions::{Extended, Locked, MAX_LOCK_MESSAGE, Unlocked};
use crate::auth::session::{self, FlashKind};
use crate::domain::wizard::format_local;
use crate::state::AppState;
use crate::web::client::ClientAddr;
use crate::web::error::{AppError, AppResult};
use crate::web::form::{Form, first};
use crate::web::guard::CurrentUser;
use axum::extract::State;
use axum::response::Redirect;
use tower_sessions::Session;

use crate::web::path_id::PathId;

/// Extend (`app::sessions::extend`).
pub async fn extend(
    State(state): State<AppState>,
    user: CurrentUser,
    session: Session,
    ClientAddr(client): ClientAddr,
    PathId(id): PathId,
) -> AppResult<Redirect> {
    let (kind, message) =
        match app::sessions::extend(&state, &app::Actor::from(&user), client, id).await? {
            Extended::NotFound => return Err(AppError::NotFound),
            Extended::Until(ends) => {
                let local = format_local(user.time_zone.local(ends));
                (
                    FlashKind::Success,
                    format!("Extended: the session now ends at {local}."),
                )
            }
            Extended::Lapsed(why) => (FlashKind::Error, format!("{why} The session was ended.")),
            Extended::Refused(why) => (FlashKind::Error, why),
        };
    session::flash(&session, kind, message).await?;
    Ok(Redirect::to(&format!("/sessions/{id}")))
}

/// The Lock form: the message the requester sees.
#[derive(serde::Deserialize)]
pub struct LockForm {
    #[serde(default, deserialize_with = "first")]
    message: String,
}

/// Lock, with a message the requester sees.
pub async fn lock(
    State(state): State<AppState>,
    user: CurrentUser,
    session: Session,
    ClientAddr(client): ClientAddr,
    PathId(id): PathId,
    Form(form): Form<LockForm>,
) -> AppResult<Redirect> {
    let actor = app::Actor::from(&user);
    let (kind, message) =
        match app::sessions::lock(&state, &actor, client, id, &form.message).await? {
            Locked::Done => (
                FlashKind::Success,
                "Locked: no new connection until it is unlocked.".to_owned(),
            ),
            Locked::NoMessage => (
                FlashKind::Error,
                format!(
                    "Give the requester a reason for the lock (1 to {MAX_LOCK_MESSAGE} characters)."
                ),
            ),
            Locked::NotLockable => (
                FlashKind::Error,
                "Only Available or Logged In sessions can be locked.".to_owned(),
            ),
        };
    session::flash(&session, kind, message).await?;
    Ok(Redirect::to(&format!("/sessions/{id}")))
}

/// Unlock: back to where it was.
pub async fn unlock(
    State(state): State<AppState>,
    user: CurrentUser,
    session: Session,
    ClientAddr(client): ClientAddr,
    PathId(id): PathId,
) -> AppResult<Redirect> {
    let actor = app::Actor::from(&user);
    let (kind, message) = match app::sessions::unlock(&state, &actor, client, id).await? {
        Unlocked::To(status) => (
            FlashKind::Success,
            format!("Unlocked: the session is {} again.", status.label()),
        ),
        Unlocked::Lapsed(why) => (
            FlashKind::Error,
            format!("{why} The session was ended instead of unlocked."),
        ),
        Unlocked::NotLocked => (FlashKind::Error, "This session is not locked.".to_owned()),
    };
    session::flash(&session, kind, message).await?;
    Ok(Redirect::to(&format!("/sessions/{id}")))
}
