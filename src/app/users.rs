//! Administering accounts: create one, change one, disable or enable it, set its password,
//! reset its second factor. Each change is audited under the administrator's name.

use uuid::Uuid;

use crate::app::Actor;
use crate::auth::{AuthResult, password};
use crate::db;
use crate::db::audit::WriteError;
use crate::db::users::{AccountFields, Who};
use crate::domain::names::{NewPassword, Username};
use crate::domain::role::Role;
use crate::state::AppState;

/// Whether `admin` may give account `id` the role `role`: an administrator cannot remove
/// their own administrator role (another one must), so the last one cannot lock everyone out.
pub fn may_set_role(admin: &Actor, id: Uuid, role: Role) -> bool {
    id != admin.id || role == Role::Admin
}

/// What creating an account did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Creation {
    Created(Uuid),
    /// Another account has the username (compared without regard to case); nothing stored.
    Taken,
}

/// Creates an account with its groups and initial password, audited.
pub async fn create(
    state: &AppState,
    admin: &Actor,
    username: &Username,
    fields: &AccountFields<'_>,
    secret: &NewPassword,
) -> AuthResult<Creation> {
    let hash = password::hash(secret.expose().to_owned()).await?;
    let mut tx = state.db.begin().await?;
    match db::users::create_audited(&mut tx, &admin.into(), username, fields, &hash).await {
        Ok(id) => {
            tx.commit().await?;
            Ok(Creation::Created(id))
        }
        Err(WriteError::Taken) => Ok(Creation::Taken),
        Err(e) => Err(e.into()),
    }
}

/// Sets a new password on account `id`, audited; its username, or `None` when it is gone.
pub async fn reset_password(
    state: &AppState,
    admin: &Actor,
    id: Uuid,
    secret: &NewPassword,
) -> AuthResult<Option<String>> {
    let hash = password::hash(secret.expose().to_owned()).await?;
    let mut tx = state.db.begin().await?;
    let name = db::users::reset_password(&mut tx, &admin.into(), Who::Id(id), &hash).await?;
    if name.is_some() {
        tx.commit().await?;
    }
    Ok(name)
}

/// In the caller's transaction (which may still have to end the sessions the change no
/// longer grants): changes account `id`'s details, role and groups, audited. Returns the
/// sessions the account had live before, to check for what lapsed; `None` when it is gone.
pub async fn update(
    tx: &mut sqlx::PgConnection,
    admin: &Actor,
    id: Uuid,
    fields: &AccountFields<'_>,
) -> AuthResult<Option<Vec<Uuid>>> {
    match db::users::update_audited(&mut *tx, &admin.into(), id, fields).await {
        // Groups left take with them what policies grant those groups. Read after the
        // account's row is locked, in the order disabling takes them (account, then
        // sessions), so the two cannot deadlock.
        Ok(()) => Ok(Some(db::grants::live_of_user(tx, id).await?)),
        Err(WriteError::NotFound) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// What disabling or enabling an account did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Disabling {
    /// An administrator cannot disable their own account; nothing changed.
    OwnAccount,
    /// No such account.
    Gone,
    /// Done, to the account named; disabling also ended its sign-ins and every session of
    /// its that is not over.
    Done(String),
}

/// Disables or enables account `id`, audited.
pub async fn set_disabled(
    state: &AppState,
    admin: &Actor,
    id: Uuid,
    disabled: bool,
) -> crate::app::Result<Disabling> {
    if disabled && id == admin.id {
        return Ok(Disabling::OwnAccount);
    }
    let mut tx = state.db.begin().await?;
    let Some(name) = db::users::set_disabled(&mut tx, &admin.into(), Who::Id(id), disabled).await?
    else {
        return Ok(Disabling::Gone);
    };
    tx.commit().await?;
    Ok(Disabling::Done(name))
}

/// What resetting a second factor did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reset {
    /// No such account.
    Gone,
    /// The account (named) has no second factor; nothing changed.
    NoFactor(String),
    /// Removed, and every sign-in of the account (named) ended.
    Reset(String),
}

/// Removes account `id`'s second factor (a lost device): they enrol again at their next
/// sign-in when the policy requires one. Whoever holds the lost device may hold a signed-in
/// browser too, so every sign-in of the account ends. Audited.
pub async fn reset_second_factor(
    state: &AppState,
    admin: &Actor,
    id: Uuid,
) -> crate::app::Result<Reset> {
    let mut tx = state.db.begin().await?;
    let Some((_, username)) = db::users::find(&mut *tx, Who::Id(id)).await? else {
        return Ok(Reset::Gone);
    };
    if !db::second_factor::remove(&mut tx, id).await? {
        return Ok(Reset::NoFactor(username));
    }
    db::users::end_sessions(&mut *tx, id).await?;
    db::audit::record(
        &mut tx,
        &admin.into(),
        db::audit::Entry {
            action: "reset_second_factor",
            object_kind: "user",
            object_id: Some(id),
            object_name: &username,
            before: Some(r#"{"second_factor": true}"#.to_owned()),
            after: Some(r#"{"second_factor": false}"#.to_owned()),
        },
    )
    .await?;
    tx.commit().await?;
    tracing::info!(admin = %admin.id, user = %id, "reset a second factor");
    Ok(Reset::Reset(username))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::tz::TimeZone;

    fn admin() -> Actor {
        Actor {
            id: Uuid::new_v4(),
            username: "ada".into(),
            display_name: "Ada".into(),
            role: Role::Admin,
            time_zone: TimeZone::parse("UTC").unwrap(),
        }
    }

    #[test]
    fn an_administrator_cannot_remove_their_own_administrator_role() {
        let ada = admin();
        assert!(may_set_role(&ada, ada.id, Role::Admin));
        assert!(!may_set_role(&ada, ada.id, Role::User));
        assert!(!may_set_role(&ada, ada.id, Role::Auditor));
    }

    #[test]
    fn an_administrator_may_give_another_account_any_role() {
        let ada = admin();
        let other = Uuid::new_v4();
        assert!(may_set_role(&ada, other, Role::User));
        assert!(may_set_role(&ada, other, Role::Auditor));
    }
}
