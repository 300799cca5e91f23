//! Keyboard-interactive login for people without a registered key: the Portcullis password
//! of the session's requester (the user name is the connection string, which names the
//! session) and, when they have a second factor, its code, checked as the sign-in page checks
//! them, under the same per-address rate limit and lockout.

use std::net::IpAddr;

use uuid::Uuid;

use crate::app::sign_in;
use crate::auth::password;
use crate::db;
use crate::state::AppState;

/// Who the connection string says is logging in, and whether they answer a code too. An
/// unknown or forged string still gets the password prompt, so the prompts tell nothing.
pub(super) async fn who(app: &AppState, connection_string: &str) -> (Option<Uuid>, bool) {
    let Ok(Some(id)) =
        db::sessions::verify_connection_string(&app.db, &app.secrets, connection_string).await
    else {
        return (None, false);
    };
    let Ok(Some(s)) = db::sessions::connect_info(&app.db, id).await else {
        return (None, false);
    };
    let code = db::second_factor::is_on(&app.db, s.requester_id)
        .await
        .unwrap_or(false);
    (Some(s.requester_id), code)
}

/// The prompts the client shows.
pub(super) fn prompts(code: bool) -> Vec<(String, bool)> {
    let mut prompts = vec![("Portcullis password: ".to_owned(), false)];
    if code {
        prompts.push(("Second-factor code: ".to_owned(), false));
    }
    prompts
}

/// Whether the answers sign `user` in.
pub(super) async fn check(
    app: &AppState,
    user: Option<Uuid>,
    code: bool,
    client: Option<IpAddr>,
    answers: Vec<String>,
) -> bool {
    match check_inner(app, user, code, client, answers).await {
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
    code: bool,
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
    if code {
        let typed = answers.next().unwrap_or_default();
        if !crate::auth::second_factor::check_code(&app.db, &app.secrets, row.id, &typed).await? {
            db::users::record_failed_login(&app.db, row.id).await?;
            return Ok(false);
        }
    }
    db::users::record_successful_login(&app.db, row.id).await?;
    // The limit counts failed attempts only, as on the sign-in page.
    if let Some(ip) = client {
        sign_in::attempt_succeeded(app, ip).await?;
    }
    Ok(true)
}
