//! Whether a user may connect to a session now, as the Connect page's actions check it: the
//! connection string genuine for the session's access as it is now, the session theirs,
//! their account enabled, the grant still holding, the status Available or Logged In, and
//! the window open. The same checks run again while a connection lives ([`verdict`]).

use time::OffsetDateTime;
use uuid::Uuid;

use super::Refusal;
use crate::db;
use crate::db::sessions::ConnectInfo;
use crate::domain::status::SessionStatus;
use crate::state::AppState;

/// What the checks found: the session, ready to connect to.
pub struct Allowed {
    pub session: ConnectInfo,
    pub user_name: String,
}

fn internal(e: sqlx::Error) -> Refusal {
    tracing::error!(error = %e, "gateway check failed");
    Refusal("Portcullis could not check the session; try again in a moment.".into())
}

/// Why a session in this state cannot be used, in one line; `None` when it can.
pub fn unusable(s: &ConnectInfo, now: OffsetDateTime) -> Option<String> {
    let name = &s.resource_name;
    match s.status {
        SessionStatus::Locked => Some(format!(
            "Session {name} is Locked by an administrator: {}",
            s.lock_message.as_deref().unwrap_or("no reason given")
        )),
        status if !status.is_connectable() => Some(format!("Session {name} is {}", status.label())),
        _ if s.ends_at <= now => Some(format!("Session {name} is outside its window")),
        _ => None,
    }
}

/// Checks that `user` may connect with `connection_string` now.
pub async fn authorize(
    app: &AppState,
    user: Uuid,
    connection_string: &str,
) -> Result<Allowed, Refusal> {
    let not_valid = || {
        Refusal(
            "The connection string is not valid for your sessions: show it again on the session's Connect page."
                .into(),
        )
    };
    let id = db::sessions::verify_connection_string(&app.db, &app.secrets, connection_string)
        .await
        .map_err(internal)?
        .ok_or_else(not_valid)?;
    authorize_session(app, user, id).await
}

/// Checks that `user` may connect to session `id` now (the browser terminal's door, behind
/// the signed-in web session).
pub async fn authorize_session(app: &AppState, user: Uuid, id: Uuid) -> Result<Allowed, Refusal> {
    let not_valid = || Refusal("This session is not one of yours.".into());
    let user_name = db::gateway::enabled_user(&app.db, user)
        .await
        .map_err(internal)?
        .ok_or_else(|| Refusal("Your Portcullis account is disabled.".into()))?;
    let session = db::sessions::connect_info(&app.db, id)
        .await
        .map_err(internal)?
        .filter(|s| s.requester_id == user)
        .ok_or_else(not_valid)?;
    if !session.status.is_final() {
        let mut tx = app.db.begin().await.map_err(internal)?;
        let lapsed = db::grants::revoke_if_lapsed(&mut tx, id)
            .await
            .map_err(internal)?;
        tx.commit().await.map_err(internal)?;
        if let Some(why) = lapsed {
            return Err(Refusal(format!("{why} The session was ended.")));
        }
    }
    if let Some(why) = unusable(&session, OffsetDateTime::now_utc()) {
        return Err(Refusal(why));
    }
    Ok(Allowed { session, user_name })
}

/// While a connection lives: why it must close now, else when the session ends.
pub async fn verdict(app: &AppState, session: Uuid) -> Result<OffsetDateTime, String> {
    let s = match db::sessions::connect_info(&app.db, session).await {
        Ok(Some(s)) => s,
        Ok(None) => return Err("the session no longer exists".into()),
        // A passing database fault does not cut a live connection; the next check decides.
        Err(e) => {
            tracing::warn!(error = %e, "gateway re-check failed");
            return Ok(OffsetDateTime::now_utc() + time::Duration::seconds(15));
        }
    };
    let why = match s.status {
        SessionStatus::Locked => Some(format!(
            "the session was locked by an administrator: {}",
            s.lock_message.as_deref().unwrap_or("no reason given")
        )),
        status if status.is_final() => Some(format!("the session ended ({})", status.label())),
        status if !status.is_connectable() => Some(format!("the session is {}", status.label())),
        _ if s.ends_at <= OffsetDateTime::now_utc() => Some("the session's window ended".into()),
        _ => None,
    };
    match why {
        Some(why) => Err(why),
        None => Ok(s.ends_at),
    }
}
