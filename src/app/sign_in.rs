//! Signing in: with a password, through the provider, then with the second factor (a code,
//! or enrolment for an account that must have one), and the per-address limit on attempts.
//! The front door keeps the browser's session; these say what happened to the account.
//!
//! Password and second-factor checks can fail outside the database (a hashing thread, a
//! sealed secret), so these return [`AuthResult`] rather than [`crate::app::Result`].

use std::net::{IpAddr, Ipv6Addr};

use uuid::Uuid;

use crate::app::second_factor;
use crate::auth::sso::Sso;
use crate::auth::sso::account::{self, Refusal};
use crate::auth::sso::flow::Identity;
use crate::auth::{AuthResult, password};
use crate::db;
use crate::state::AppState;

/// What comes after a right password (or a provider's sign-in without its own multi-factor
/// authentication) for an account with a second factor, or that must have one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecondStep {
    /// A code from the authenticator app, or a recovery code.
    Code,
    /// Setting one up first: the account must have one and has none.
    Enrol,
}

/// The step after a right password, or `None` to sign in now. A missing account is
/// `RowNotFound` (the front door's "not found").
pub async fn second_step(state: &AppState, user: Uuid) -> AuthResult<Option<SecondStep>> {
    if db::second_factor::is_on(&state.db, user).await? {
        return Ok(Some(SecondStep::Code));
    }
    let row = db::users::load_current(&state.db, user)
        .await?
        .ok_or(sqlx::Error::RowNotFound)?;
    Ok(crate::auth::second_factor::required(
        state.settings.second_factor,
        row.role,
        row.is_approver,
    )
    .then_some(SecondStep::Enrol))
}

/// What a password sign-in did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PasswordSignIn {
    /// The name typed must sign in through the provider (told by the name alone, whether or
    /// not such an account exists).
    PasswordOff,
    /// Unknown, disabled or locked account, or a wrong password: counted under the name
    /// typed, and told apart by nothing.
    Failed,
    /// The password is right; `step` comes next. The failure count is cleared only once
    /// that is right too, so a known password does not buy more code guesses.
    SecondFactor { user: Uuid, step: SecondStep },
    /// The password is right and is enough: the sign-in is recorded.
    SignedIn(Uuid),
}

/// Checks `username` (as typed, trimmed) and `password`. Unknown, disabled and locked
/// accounts cost one argon2 verification like a wrong password.
pub async fn with_password(
    state: &AppState,
    username: &str,
    password: String,
) -> AuthResult<PasswordSignIn> {
    let password_off = state
        .settings
        .sso
        .as_deref()
        .is_some_and(|p| !p.sso.password_allowed(username));
    if password_off {
        tracing::info!("password sign-in refused: single sign-on only");
        return Ok(PasswordSignIn::PasswordOff);
    }
    let account = if username.is_empty() || username.len() > 64 || password.len() > 1024 {
        None
    } else {
        db::users::find_for_login(&state.db, username).await?
    };
    let usable = account
        .as_ref()
        .filter(|a| !a.disabled && !a.locked)
        .and_then(|a| a.password_hash.clone());
    let verified = password::verify(password, usable).await?;
    let Some(user) = account.filter(|_| verified).map(|a| a.id) else {
        // By the name typed, known or not: the same statement and the same one-row write
        // either way, so the time taken does not tell which names exist.
        db::users::record_failed_sign_in(&state.db, username).await?;
        tracing::info!("failed sign-in");
        return Ok(PasswordSignIn::Failed);
    };
    if let Some(step) = second_step(state, user).await? {
        tracing::info!(%user, "password right; second factor next");
        return Ok(PasswordSignIn::SecondFactor { user, step });
    }
    db::users::record_successful_login(&state.db, user).await?;
    tracing::info!(%user, "signed in");
    Ok(PasswordSignIn::SignedIn(user))
}

/// What a sign-in through the provider did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProviderSignIn {
    /// The person is not let in; nothing was created.
    Refused(Refusal),
    /// The account's second factor comes next.
    SecondFactor { user: Uuid, step: SecondStep },
    /// Signed in (recorded); `mfa_done`: the provider's own multi-factor authentication
    /// stood in for the second factor.
    SignedIn { user: Uuid, mfa_done: bool },
}

/// Signs `identity` in to its linked (or new) account.
pub async fn with_provider(
    state: &AppState,
    sso: &Sso,
    identity: &Identity,
) -> AuthResult<ProviderSignIn> {
    let time_zone = &state.settings.default_time_zone;
    let user = match account::sign_in(&state.db, sso, identity, time_zone).await? {
        Ok(user) => user,
        Err(refusal) => {
            tracing::info!(subject = %identity.subject, ?refusal, "single sign-on refused");
            return Ok(ProviderSignIn::Refused(refusal));
        }
    };
    let mfa_done = sso.trust_mfa && Sso::did_mfa(&identity.amr);
    if !mfa_done && let Some(step) = second_step(state, user).await? {
        tracing::info!(%user, "single sign-on; second factor next");
        return Ok(ProviderSignIn::SecondFactor { user, step });
    }
    db::users::record_successful_login(&state.db, user).await?;
    tracing::info!(%user, mfa_done, "signed in with single sign-on");
    Ok(ProviderSignIn::SignedIn { user, mfa_done })
}

/// What a code typed at the second step did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodeOutcome {
    /// Right: the sign-in is recorded.
    Right,
    /// Wrong, counted towards the lockout; the account may try again.
    Wrong,
    /// Wrong, and the account is now locked for a while.
    Locked,
}

/// Checks a code of `user`, whose second factor is on, and counts a wrong one.
pub async fn with_code(state: &AppState, user: Uuid, code: &str) -> AuthResult<CodeOutcome> {
    if second_factor::check_code(state, user, code).await? {
        db::users::record_successful_login(&state.db, user).await?;
        tracing::info!(%user, "signed in with a second factor");
        return Ok(CodeOutcome::Right);
    }
    failed(state, user).await
}

/// What a code typed at enrolment during sign-in did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Enrolment {
    /// The second factor is on and the sign-in recorded: the recovery codes, to show once.
    Enrolled(Vec<String>),
    /// It was switched on meanwhile (another tab): sign in with a code instead.
    AlreadyOn,
    /// Not right, as for [`with_code`].
    Refused(CodeOutcome),
}

/// Switches the enrolment under way on with a right code, and signs in.
pub async fn enrol(state: &AppState, user: Uuid, code: &str) -> AuthResult<Enrolment> {
    if let Some(codes) = second_factor::confirm_enrolment(state, user, code).await? {
        db::users::record_successful_login(&state.db, user).await?;
        tracing::info!(%user, "signed in after enrolling a second factor");
        return Ok(Enrolment::Enrolled(codes));
    }
    if db::second_factor::is_on(&state.db, user).await? {
        return Ok(Enrolment::AlreadyOn);
    }
    Ok(Enrolment::Refused(failed(state, user).await?))
}

/// Counts a wrong code like a wrong password.
async fn failed(state: &AppState, user: Uuid) -> AuthResult<CodeOutcome> {
    db::users::record_failed_login(&state.db, user).await?;
    tracing::info!(%user, "wrong second-factor code");
    Ok(if db::second_factor::may_sign_in(&state.db, user).await? {
        CodeOutcome::Wrong
    } else {
        CodeOutcome::Locked
    })
}

/// The address attempts are counted for: an IPv6 client's /64 (one subscriber usually has a
/// whole /64), an IPv4 client's own address.
fn limit_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let s = v6.segments();
            IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
        }
        v4 => v4,
    }
}

/// Counts one sign-in attempt (a password or code form) from `ip`. `Some(seconds)` once the
/// address has used up its attempts for the window: the seconds until it may try again (a
/// refused attempt changes nothing else). A right attempt is given back by
/// [`attempt_succeeded`].
pub async fn count_attempt(state: &AppState, ip: IpAddr) -> crate::app::Result<Option<i64>> {
    let window = state.settings.sign_in_window_seconds;
    let (attempts, retry_after) =
        db::sign_in_limit::count_attempt(&state.db, limit_key(ip), window).await?;
    if attempts == 1 {
        // A window began: a good moment to drop the ended ones.
        db::sign_in_limit::prune(&state.db, window).await?;
    }
    if attempts <= i64::from(state.settings.sign_in_limit) {
        return Ok(None);
    }
    tracing::warn!(client = %ip, attempts, "sign-in attempts over the per-address limit");
    Ok(Some(retry_after))
}

/// Gives back the attempt [`count_attempt`] counted, for a right password or code: the limit
/// counts failed attempts only, so someone switching between accounts is never locked out.
pub async fn attempt_succeeded(state: &AppState, ip: IpAddr) -> crate::app::Result<()> {
    db::sign_in_limit::refund_attempt(&state.db, limit_key(ip)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ipv6_client_is_counted_by_its_64_and_an_ipv4_one_by_its_address() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::2".parse().unwrap();
        let other: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(limit_key(a), limit_key(b));
        assert_ne!(limit_key(a), limit_key(other));
        let v4: IpAddr = "192.0.2.7".parse().unwrap();
        assert_eq!(limit_key(v4), v4);
    }

    #[test]
    fn an_ipv4_mapped_address_counts_as_the_ipv4_address() {
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(limit_key(mapped), "192.0.2.7".parse::<IpAddr>().unwrap());
    }
}
