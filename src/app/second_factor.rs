//! A person's second factor, as signing in and the account page share it: enrolment (a
//! secret, confirmed with a right code), recovery codes, checking a code, and switching it
//! off. The secrets are sealed, so these return [`AuthResult`].

use uuid::Uuid;

use crate::auth::AuthResult;
use crate::auth::second_factor::{self, Enrolment, Typed};
use crate::db;
use crate::state::AppState;

/// Checks a code of a user whose second factor is on, using it up when it is right (see
/// [`second_factor::check_code`]).
pub async fn check_code(state: &AppState, user: Uuid, input: &str) -> AuthResult<bool> {
    second_factor::check_code(&state.db, &state.secrets, user, input).await
}

/// New recovery codes replace the user's old ones; returns them as shown, once.
pub async fn new_recovery_codes(
    conn: &mut sqlx::PgConnection,
    user: Uuid,
) -> AuthResult<Vec<String>> {
    let codes = second_factor::new_recovery_codes();
    let hashes: Vec<Vec<u8>> = codes
        .iter()
        .map(|c| second_factor::recovery_hash(user, &c.replace('-', "")))
        .collect();
    db::second_factor::replace_recovery_codes(conn, user, &hashes).await?;
    Ok(codes)
}

/// The enrolment of `user` to show: the secret under way, or a new one.
pub async fn start_enrolment(
    state: &AppState,
    user: Uuid,
    username: &str,
) -> AuthResult<Enrolment> {
    let fresh = second_factor::new_secret();
    let sealed = state
        .secrets
        .seal(user, &second_factor::encode_secret(&fresh));
    let mut conn = state.db.acquire().await?;
    let factor = db::second_factor::start_enrolment(&mut conn, user, &sealed).await?;
    drop(conn);
    let secret = second_factor::open_secret(&state.secrets, user, &factor.secret_sealed)?;
    second_factor::enrolment(&secret, username)
}

/// Switches the enrolment under way on when `input` is a right code for its secret, with
/// new recovery codes (returned, to show once). `None` when the code is not right.
pub async fn confirm_enrolment(
    state: &AppState,
    user: Uuid,
    input: &str,
) -> AuthResult<Option<Vec<String>>> {
    let Typed::Totp(code) = second_factor::parse(input) else {
        return Ok(None);
    };
    let Some(factor) = db::second_factor::get(&state.db, user).await? else {
        return Ok(None);
    };
    if factor.confirmed {
        return Ok(None);
    }
    let secret = second_factor::open_secret(&state.secrets, user, &factor.secret_sealed)?;
    let Some(step) = second_factor::matching_step(&secret, &code, second_factor::current_step())?
    else {
        return Ok(None);
    };
    let mut tx = state.db.begin().await?;
    if !db::second_factor::confirm(&mut *tx, user, step).await? {
        return Ok(None);
    }
    let codes = new_recovery_codes(&mut tx, user).await?;
    tx.commit().await?;
    tracing::info!(user = %user, "second factor switched on");
    Ok(Some(codes))
}

/// Why a change to a second factor that should be on was not made; nothing changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unchanged {
    /// The second factor is not on.
    Off,
    /// The code confirming the change is not right (counted towards the lockout, as at
    /// sign-in).
    WrongCode,
}

/// The user's second factor is on and `code` is right (used up), or why not; a wrong code
/// counts as a failed sign-in.
async fn confirmed(state: &AppState, user: Uuid, code: &str) -> AuthResult<Result<(), Unchanged>> {
    if !db::second_factor::is_on(&state.db, user).await? {
        return Ok(Err(Unchanged::Off));
    }
    if !check_code(state, user, code).await? {
        db::users::record_failed_login(&state.db, user).await?;
        return Ok(Err(Unchanged::WrongCode));
    }
    Ok(Ok(()))
}

/// New recovery codes replace the user's old ones, confirmed with a code; returned to show
/// once.
pub async fn regenerate(
    state: &AppState,
    user: Uuid,
    code: &str,
) -> AuthResult<Result<Vec<String>, Unchanged>> {
    if let Err(refused) = confirmed(state, user, code).await? {
        return Ok(Err(refused));
    }
    let mut tx = state.db.begin().await?;
    let codes = new_recovery_codes(&mut tx, user).await?;
    tx.commit().await?;
    tracing::info!(%user, "new recovery codes");
    Ok(Ok(codes))
}

/// Switches the user's second factor off, confirmed with a code. The caller has checked
/// that the policy does not require one.
pub async fn switch_off(
    state: &AppState,
    user: Uuid,
    code: &str,
) -> AuthResult<Result<(), Unchanged>> {
    if let Err(refused) = confirmed(state, user, code).await? {
        return Ok(Err(refused));
    }
    let mut conn = state.db.acquire().await?;
    db::second_factor::remove(&mut conn, user).await?;
    tracing::info!(%user, "second factor switched off");
    Ok(Ok(()))
}
