//! Keyboard-interactive login for people without a registered key: the Portcullis password
//! of the session's requester (the user name is the connection string, which names the
//! session) and, when they have a second factor, its code, checked as the sign-in page checks
//! them (`app::sign_in`), under the same per-address rate limit and lockout. An account that
//! must have a second factor and has none is refused, as the page sends it to enrolment first.

use std::net::IpAddr;

use uuid::Uuid;

use crate::app::sign_in::{self, CodeOutcome, SecondStep};
use crate::auth::password;
use crate::db;
use crate::state::AppState;

/// Who the connection string says is logging in, and what their password is followed by
/// (as on the sign-in page). An unknown or forged string still gets the password prompt, so
/// the prompts tell nothing.
pub(super) async fn who(
    app: &AppState,
    connection_string: &str,
) -> (Option<Uuid>, Option<SecondStep>) {
    let Ok(Some(id)) =
        db::sessions::verify_connection_string(&app.db, &app.secrets, connection_string).await
    else {
        return (None, None);
    };
    let Ok(Some(s)) = db::sessions::connect_info(&app.db, id).await else {
        return (None, None);
    };
    // A failed lookup asks for a code, which the check then refuses: never less than needed.
    let step = sign_in::second_step(app, s.requester_id)
        .await
        .unwrap_or(Some(SecondStep::Code));
    (Some(s.requester_id), step)
}

/// The prompts the client shows.
pub(super) fn prompts(step: Option<SecondStep>) -> Vec<(String, bool)> {
    let mut prompts = vec![("Portcullis password: ".to_owned(), false)];
    if step == Some(SecondStep::Code) {
        prompts.push(("Second-factor code: ".to_owned(), false));
    }
    prompts
}

/// Whether the answers sign `user` in.
pub(super) async fn check(
    app: &AppState,
    user: Option<Uuid>,
    step: Option<SecondStep>,
    client: Option<IpAddr>,
    answers: Vec<String>,
) -> bool {
    match check_inner(app, user, step, client, answers).await {
        Ok(ok) => ok,
        Err(e) => {
            tracing::error!(error = %e, "gateway password check failed");
            false
        }
    }
}

async fn check_inner(
    app: &AppState,
    user: Option<Uuid>,
    step: Option<SecondStep>,
    client: Option<IpAddr>,
    answers: Vec<String>,
) -> anyhow::Result<bool> {
    // The sign-in page's own limit: the same count, per IPv4 address or IPv6 /64.
    if let Some(ip) = client
        && sign_in::count_attempt(app, ip).await?.is_some()
    {
        return Ok(false);
    }
    let mut answers = answers.into_iter();
    let typed = answers.next().unwrap_or_default();
    let row = match user {
        Some(id) => db::gateway::login_row(&app.db, id).await?,
        None => None,
    };
    let usable = row
        .as_ref()
        .filter(|r| !r.disabled && !r.locked)
        .and_then(|r| r.password_hash.clone());
    // The decoy hash runs when there is no account, so the time taken tells nothing.
    let verified = password::verify(typed, usable).await?;
    let Some(row) = row else { return Ok(false) };
    if !verified {
        db::users::record_failed_login(&app.db, row.id).await?;
        return Ok(false);
    }
    match step {
        None => db::users::record_successful_login(&app.db, row.id).await?,
        Some(SecondStep::Code) => {
            let typed = answers.next().unwrap_or_default();
            if sign_in::with_code(app, row.id, &typed).await? != CodeOutcome::Right {
                return Ok(false);
            }
        }
        Some(SecondStep::Enrol) => {
            tracing::info!(user = %row.id, "gateway login refused: second factor not set up");
            return Ok(false);
        }
    }
    // The limit counts failed attempts only, as on the sign-in page.
    if let Some(ip) = client {
        sign_in::attempt_succeeded(app, ip).await?;
    }
    Ok(true)
}
