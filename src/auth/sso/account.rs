//! The account a provider's sign-in lands in: found by (issuer, subject), or created when
//! allowed, then refreshed from the claims, all in one transaction. A refusal changes nothing.

use sqlx::PgPool;
use uuid::Uuid;

use super::Sso;
use super::flow::Identity;
use crate::auth::{AuthError, AuthResult};
use crate::db::audit::WriteError;
use crate::db::identities::{self, Profile};
use crate::domain::names::{DisplayName, Username};

/// Why a person the provider vouched for is not let in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// No account is linked and creating accounts is off.
    CreationOff,
    /// No account is linked and the provider sent no `preferred_username`.
    NoUsername,
    /// The provider's username does not follow Portcullis's rules.
    BadUsername(String),
    /// Another account already has the username.
    Taken(String),
    /// The linked account is disabled in Portcullis.
    Disabled,
}

/// Finds or creates the account and refreshes it; `Err(Refusal)` leaves the database as it
/// was.
pub async fn sign_in(
    db: &PgPool,
    sso: &Sso,
    identity: &Identity,
    time_zone: &str,
) -> AuthResult<Result<Uuid, Refusal>> {
    let mut tx = db.begin().await?;
    let linked = match identities::find(&mut tx, &identity.issuer, &identity.subject).await? {
        Some(linked) => linked,
        None => match create(&mut tx, sso, identity, time_zone).await? {
            Ok(linked) => linked,
            Err(refusal) => return Ok(Err(refusal)),
        },
    };
    if linked.disabled {
        return Ok(Err(Refusal::Disabled));
    }
    let display_name = display_name(identity, &linked.username)?;
    let groups = sso.mapping.groups_for(&identity.groups);
    let email = identity
        .email
        .as_deref()
        .filter(|e| (3..=254).contains(&e.chars().count()));
    let profile = Profile {
        display_name: &display_name,
        email,
        groups: &groups,
        role: sso.mapping.role_for(&groups),
    };
    identities::refresh(&mut tx, &linked, &identity.issuer, &sso.mapping, &profile).await?;
    tx.commit().await?;
    Ok(Ok(linked.user_id))
}

async fn create(
    tx: &mut sqlx::PgConnection,
    sso: &Sso,
    identity: &Identity,
    time_zone: &str,
) -> AuthResult<Result<identities::Linked, Refusal>> {
    if !sso.create_accounts {
        return Ok(Err(Refusal::CreationOff));
    }
    let Some(wanted) = identity.preferred_username.as_deref() else {
        return Ok(Err(Refusal::NoUsername));
    };
    let Ok(username) = Username::parse(wanted) else {
        return Ok(Err(Refusal::BadUsername(
            wanted.chars().take(100).collect(),
        )));
    };
    let display_name = display_name(identity, username.as_str())?;
    match identities::create(
        tx,
        &identity.issuer,
        &identity.subject,
        &username,
        &display_name,
        time_zone,
    )
    .await
    {
        Ok(user_id) => Ok(Ok(identities::Linked {
            user_id,
            username: username.as_str().to_owned(),
            disabled: false,
        })),
        Err(WriteError::Taken) => Ok(Err(Refusal::Taken(username.as_str().to_owned()))),
        Err(e) => Err(e.into()),
    }
}

/// The name from the `name` claim when it is a valid display name, else the username.
fn display_name(identity: &Identity, username: &str) -> AuthResult<DisplayName> {
    identity
        .name
        .as_deref()
        .and_then(|n| DisplayName::parse(n).ok())
        .map_or_else(
            || {
                DisplayName::parse(username)
                    .map_err(|_| AuthError::internal("username is no display name"))
            },
            Ok,
        )
}
