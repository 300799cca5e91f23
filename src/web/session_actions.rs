//! Actions on one session from its page: Extend (requester when the profile allows;
//! administrators always; see `app::sessions`), Lock with a message and Unlock
//! (administrators). Extend and Unlock re-check the session's grant first (`db::grants`).

use crate::app::sessions::Extended;
use crate::auth::session::{self, FlashKind};
use crate::db::sessions::{Actor, Moved, NewEvent};
use crate::domain::event::EventKind;
use crate::domain::status::Transition;
use crate::domain::wizard::format_local;
use crate::state::AppState;
use crate::web::client::ClientAddr;
use crate::web::error::{AppError, AppResult};
use crate::web::form::{Form, first};
use crate::web::guard::CurrentUser;
use crate::{app, db};
use axum::extract::State;
use axum::response::Redirect;
use tower_sessions::Session;
use uuid::Uuid;

use crate::web::path_id::PathId;

/// Longest lock message.
pub const MAX_LOCK_MESSAGE: usize = 500;

fn event<'a>(
    id: Uuid,
    user: &'a CurrentUser,
    kind: EventKind,
    comment: &'a str,
    client: Option<std::net::IpAddr>,
) -> NewEvent<'a> {
    NewEvent::new(
        id,
        Actor::User {
            id: user.id,
            name: &user.display_name,
        },
        kind,
        comment,
        client,
    )
}

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
    let message = form.message.trim();
    if message.is_empty() || message.chars().count() > MAX_LOCK_MESSAGE {
        session::flash(
            &session,
            FlashKind::Error,
            format!(
                "Give the requester a reason for the lock (1 to {MAX_LOCK_MESSAGE} characters)."
            ),
        )
        .await?;
        return Ok(Redirect::to(&format!("/sessions/{id}")));
    }
    let mut tx = state.db.begin().await?;
    let locking = event(id, &user, EventKind::Locked, message, client);
    match db::sessions::transition(&mut tx, Transition::Lock, locking).await? {
        Moved::Done { .. } => {
            tx.commit().await?;
            session::flash(
                &session,
                FlashKind::Success,
                "Locked: no new connection until it is unlocked.",
            )
            .await?;
        }
        Moved::NotAllowed(_) | Moved::Gone => {
            tx.rollback().await?;
            session::flash(
                &session,
                FlashKind::Error,
                "Only Available or Logged In sessions can be locked.",
            )
            .await?;
        }
    }
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
    let mut tx = state.db.begin().await?;
    // Unlocking gives access back: only while the policy still grants it.
    if let Some(why) = db::grants::revoke_if_lapsed(&mut tx, id).await? {
        tx.commit().await?;
        session::flash(
            &session,
            FlashKind::Error,
            format!("{why} The session was ended instead of unlocked."),
        )
        .await?;
        return Ok(Redirect::to(&format!("/sessions/{id}")));
    }
    let unlocking = event(
        id,
        &user,
        EventKind::Unlocked,
        "Unlocked by an administrator.",
        client,
    );
    match db::sessions::transition(&mut tx, Transition::Unlock, unlocking).await? {
        Moved::Done { to, .. } => {
            tx.commit().await?;
            session::flash(
                &session,
                FlashKind::Success,
                format!("Unlocked: the session is {} again.", to.label()),
            )
            .await?;
        }
        Moved::NotAllowed(_) | Moved::Gone => {
            tx.rollback().await?;
            session::flash(&session, FlashKind::Error, "This session is not locked.").await?;
        }
    }
    Ok(Redirect::to(&format!("/sessions/{id}")))
}
