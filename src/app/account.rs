//! The user's own account: their password, profile, link to the single sign-on provider,
//! API tokens and SSH keys. Each change is the account's own, audited under its name.
//!
//! Checking and hashing passwords can fail outside the database (a hashing thread), so the
//! use cases that do return [`AuthResult`]; the others [`crate::app::Result`].

use uuid::Uuid;

use crate::app::Actor;
use crate::auth::sso::flow::{Identity, Pending, Provider};
use crate::auth::{AuthResult, password};
use crate::db;
use crate::db::api_tokens::Token;
use crate::db::identities::LinkRefusal;
use crate::db::ssh_keys::AddError;
use crate::domain::api_token::{self, NewToken, Secret};
use crate::domain::names::{DisplayName, NewPassword, WeakPassword};
use crate::domain::ssh_keys::{self, BadKey};
use crate::domain::tz::TimeZone;
use crate::state::AppState;

/// The audit log names the person acting by their account.
impl From<&Actor> for db::audit::Actor {
    fn from(user: &Actor) -> Self {
        Self {
            id: Some(user.id),
            name: user.username.clone(),
        }
    }
}

/// The three fields of a password change, as typed.
pub struct PasswordChange {
    pub current: String,
    pub new: String,
    pub again: String,
}

/// Why a password change was refused; nothing was changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PasswordRefused {
    /// The account signs in through single sign-on and has no password.
    NoPassword,
    /// The current password is not right (counted towards the lockout, as at sign-in).
    WrongCurrent,
    /// The new password does not pass the rules.
    Weak(WeakPassword),
    /// The new password and its repetition differ.
    Differ,
    /// The password changed in between (another tab, an administrator).
    ChangedMeanwhile,
}

/// Changes `user`'s own password: the current one must be right, the new one passes the
/// same rules as an administrator's reset. Every other sign-in of the account ends, all but
/// the stored session `keep`: how many did.
pub async fn change_password(
    state: &AppState,
    user: &Actor,
    keep: Option<&str>,
    change: PasswordChange,
) -> AuthResult<Result<u64, PasswordRefused>> {
    let Some(old_hash) = db::users::password_hash_of(&state.db, user.id).await? else {
        return Ok(Err(PasswordRefused::NoPassword));
    };
    let right = change.current.len() <= 1024
        && password::verify(change.current, Some(old_hash.clone())).await?;
    if !right {
        db::users::record_failed_login(&state.db, user.id).await?;
        return Ok(Err(PasswordRefused::WrongCurrent));
    }
    let secret = match NewPassword::parse(&change.new, &user.username) {
        Ok(secret) => secret,
        Err(weak) => return Ok(Err(PasswordRefused::Weak(weak))),
    };
    if change.again != change.new {
        return Ok(Err(PasswordRefused::Differ));
    }
    let new_hash = password::hash(secret.expose().to_owned()).await?;
    let mut tx = state.db.begin().await?;
    let ended = db::users::change_own_password(
        &mut tx,
        user.id,
        &user.username,
        &old_hash,
        &new_hash,
        keep,
    )
    .await?;
    let Some(ended) = ended else {
        tx.rollback().await?;
        return Ok(Err(PasswordRefused::ChangedMeanwhile));
    };
    tx.commit().await?;
    tracing::info!(user = %user.id, ended, "password changed by its owner");
    Ok(Ok(ended))
}

/// Sets `user`'s own display name and time zone; `false` when the account is gone.
pub async fn update_profile(
    state: &AppState,
    user: &Actor,
    display_name: &DisplayName,
    time_zone: TimeZone,
) -> crate::app::Result<bool> {
    let mut tx = state.db.begin().await?;
    let found = db::users::update_own_profile(
        &mut tx,
        user.id,
        &user.username,
        display_name,
        time_zone.name(),
    )
    .await?;
    if found {
        tx.commit().await?;
    }
    Ok(found)
}

/// Where "Link my provider sign-in" goes next.
#[derive(Debug)]
pub enum LinkStart {
    /// The account is linked to the provider already; nothing to do.
    AlreadyLinked,
    /// Not the account's password, or the account is locked; nothing was linked.
    WrongPassword,
    /// The provider could not be reached; nothing was linked.
    Unreachable,
    /// On to the provider at `url`; `pending` (marked as this account's link) goes in the
    /// browser's session, to be checked on the way back.
    Continue { url: String, pending: Pending },
}

/// Starts linking `user` to the provider: the account's password confirmed first (a wrong
/// one counts towards the lockout, as at sign-in). Never by a name or an email the provider
/// sends: only who signs in there, on the way back to this browser's signed-in session.
pub async fn start_link(
    state: &AppState,
    provider: &Provider,
    user: &Actor,
    password: String,
) -> AuthResult<LinkStart> {
    if db::identities::is_linked(&state.db, user.id, provider.sso.issuer.as_str()).await? {
        return Ok(LinkStart::AlreadyLinked);
    }
    let row = db::users::find_for_login(&state.db, &user.username).await?;
    let hash = row.as_ref().and_then(|r| r.password_hash.clone());
    let locked = row.as_ref().is_some_and(|r| r.locked);
    let right = !locked && hash.is_some() && password::verify(password, hash).await?;
    if !right {
        if !locked {
            db::users::record_failed_login(&state.db, user.id).await?;
        }
        return Ok(LinkStart::WrongPassword);
    }
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    match provider.begin("/account".to_owned(), now).await {
        Ok((url, mut pending)) => {
            pending.link = Some(user.id);
            Ok(LinkStart::Continue { url, pending })
        }
        Err(e) => {
            tracing::warn!(error = %e, "single sign-on link could not start");
            Ok(LinkStart::Unreachable)
        }
    }
}

/// What the way back of a link did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Linking {
    /// The account is gone or disabled: nothing was linked.
    NotEnabled,
    /// Linked (or it was already, to this same person).
    Linked,
    /// Refused; nothing was changed.
    Refused(LinkRefusal),
}

/// Links who signed in at the provider to account `user`, which asked (the caller has
/// checked that this browser is still signed in as it).
pub async fn link_identity(
    state: &AppState,
    user: Uuid,
    identity: &Identity,
) -> AuthResult<Linking> {
    let Some(username) = db::users::enabled_username(&state.db, user).await? else {
        return Ok(Linking::NotEnabled);
    };
    let mut tx = state.db.begin().await?;
    let outcome = db::identities::link(
        &mut tx,
        &identity.issuer,
        &identity.subject,
        user,
        &username,
    )
    .await?;
    Ok(match outcome {
        Ok(_) => {
            tx.commit().await?;
            tracing::info!(%user, subject = %identity.subject, "linked a single sign-on identity");
            Linking::Linked
        }
        Err(refusal) => Linking::Refused(refusal),
    })
}

/// Creates an API token of `user` and audits it: the token as stored, and its secret, to
/// show once (only its digest is kept).
pub async fn create_token(
    state: &AppState,
    user: &Actor,
    new: &NewToken,
) -> crate::app::Result<(Token, Secret)> {
    let secret = Secret::generate();
    let mut tx = state.db.begin().await?;
    let token = db::api_tokens::create(
        &mut tx,
        &user.into(),
        user.id,
        &user.username,
        new,
        &api_token::digest(secret.as_str()),
    )
    .await?;
    tx.commit().await?;
    Ok((token, secret))
}

/// An SSH key just added.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyAdded {
    pub name: String,
    pub fingerprint: String,
}

/// Why an SSH key was not added; nothing was stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyRefused {
    /// The text is not an acceptable public key (it is never kept nor shown back).
    BadKey(BadKey),
    /// The name (typed, or the key's comment) is not acceptable: why, worded by the rule.
    BadName(String),
    /// The user has the most keys allowed.
    TooMany,
    /// The key is registered already (to anyone).
    KeyTaken,
    /// The user has a key of this name already.
    NameTaken(String),
}

/// Registers the key pasted as `public_key` under `name` (or its comment) for `user`,
/// audited.
pub async fn add_key(
    state: &AppState,
    user: &Actor,
    name: &str,
    public_key: &str,
) -> crate::app::Result<Result<KeyAdded, KeyRefused>> {
    let key = match ssh_keys::parse(public_key) {
        Ok(key) => key,
        Err(bad) => return Ok(Err(KeyRefused::BadKey(bad))),
    };
    let name = match ssh_keys::name(name, &key.comment) {
        Ok(name) => name,
        Err(why) => return Ok(Err(KeyRefused::BadName(why))),
    };
    match db::ssh_keys::add(&state.db, &user.into(), user.id, &name, &key).await {
        Ok(_) => {
            tracing::info!(user = %user.id, "added an SSH key");
            Ok(Ok(KeyAdded {
                name,
                fingerprint: key.fingerprint,
            }))
        }
        Err(AddError::TooMany) => Ok(Err(KeyRefused::TooMany)),
        Err(AddError::KeyTaken) => Ok(Err(KeyRefused::KeyTaken)),
        Err(AddError::NameTaken) => Ok(Err(KeyRefused::NameTaken(name))),
        Err(AddError::Db(e)) => Err(e),
    }
}
