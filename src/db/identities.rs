//! Accounts linked to an OpenID Connect provider's people (`user_identities`), and what each
//! sign-in through it refreshes: name, email, the mapped group memberships and the role.

use sqlx::PgConnection;
use uuid::Uuid;

use crate::db::audit::{self, Actor, Entry, WriteError};
use crate::domain::names::{DisplayName, Username};
use crate::domain::role::Role;
use crate::domain::sso_mapping::Mapping;

/// The account linked to a provider's subject.
#[derive(Debug)]
pub struct Linked {
    pub user_id: Uuid,
    pub username: String,
    pub disabled: bool,
}

/// The account the provider's `subject` is linked to, locked until the transaction ends so
/// two sign-ins of one person refresh it one after the other.
pub async fn find(
    tx: &mut PgConnection,
    issuer: &str,
    subject: &str,
) -> Result<Option<Linked>, sqlx::Error> {
    sqlx::query_as!(
        Linked,
        "SELECT u.id AS user_id, u.username, u.disabled
         FROM user_identities i JOIN users u ON u.id = i.user_id
         WHERE i.issuer = $1 AND i.subject = $2
         FOR UPDATE OF u, i",
        issuer,
        subject
    )
    .fetch_optional(tx)
    .await
}

/// Creates an account without a password, linked to the provider's subject, with its audit
/// entry. A username taken in any letter case is [`WriteError::Taken`]; so is a subject
/// linked meanwhile by a sign-in in parallel.
pub async fn create(
    tx: &mut PgConnection,
    issuer: &str,
    subject: &str,
    username: &Username,
    display_name: &DisplayName,
    time_zone: &str,
) -> Result<Uuid, WriteError> {
    let id = Uuid::now_v7();
    sqlx::query!(
        "INSERT INTO users (id, username, display_name, time_zone) VALUES ($1, $2, $3, $4)",
        id,
        username.as_str(),
        display_name.as_str(),
        time_zone
    )
    .execute(&mut *tx)
    .await
    .map_err(|e| WriteError::from_unique(e, "users_username_key"))?;
    sqlx::query!(
        "INSERT INTO user_identities (issuer, subject, user_id) VALUES ($1, $2, $3)",
        issuer,
        subject,
        id
    )
    .execute(&mut *tx)
    .await
    .map_err(|e| WriteError::from_unique(e, "user_identities_pkey"))?;
    let after = crate::db::users::snapshot(tx, id).await?;
    audit::record(
        tx,
        &Actor {
            id: None,
            name: "single sign-on".into(),
        },
        Entry {
            action: "create",
            object_kind: "user",
            object_id: Some(id),
            object_name: username.as_str(),
            before: None,
            after,
        },
    )
    .await?;
    Ok(id)
}

/// Why a provider sign-in could not be linked to an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkRefusal {
    /// The provider's person is linked to another account already.
    OtherAccount,
    /// The account is linked to another person of this provider already.
    OtherSubject,
}

/// Links the provider's `subject` to account `user` (asked for by that account, signed in
/// and having confirmed its password), with an audit entry. Linking what is already linked
/// changes nothing; a refusal changes nothing.
pub async fn link(
    tx: &mut PgConnection,
    issuer: &str,
    subject: &str,
    user: Uuid,
    username: &str,
) -> Result<Result<bool, LinkRefusal>, WriteError> {
    // The account's row first, so two links of one account run one after the other.
    sqlx::query!("SELECT 1 AS one FROM users WHERE id = $1 FOR UPDATE", user)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(WriteError::NotFound)?;
    if let Some(linked) = find(tx, issuer, subject).await? {
        return Ok(if linked.user_id == user {
            Ok(false)
        } else {
            Err(LinkRefusal::OtherAccount)
        });
    }
    let other: Option<String> = sqlx::query_scalar!(
        "SELECT subject FROM user_identities WHERE user_id = $1 AND issuer = $2",
        user,
        issuer
    )
    .fetch_optional(&mut *tx)
    .await?;
    if other.is_some() {
        return Ok(Err(LinkRefusal::OtherSubject));
    }
    let inserted = sqlx::query!(
        "INSERT INTO user_identities (issuer, subject, user_id) VALUES ($1, $2, $3)",
        issuer,
        subject,
        user
    )
    .execute(&mut *tx)
    .await
    .map_err(|e| WriteError::from_unique(e, "user_identities_pkey"));
    match inserted {
        Ok(_) => {}
        // Linked meanwhile by a sign-in in parallel: to another account.
        Err(WriteError::Taken) => return Ok(Err(LinkRefusal::OtherAccount)),
        Err(e) => return Err(e),
    }
    let after = serde_json::json!({ "issuer": issuer, "subject": subject }).to_string();
    audit::record(
        tx,
        &Actor {
            id: Some(user),
            name: username.to_owned(),
        },
        Entry {
            action: "link single sign-on",
            object_kind: "user",
            object_id: Some(user),
            object_name: username,
            before: None,
            after: Some(after),
        },
    )
    .await?;
    Ok(Ok(true))
}

/// Whether account `user` is linked to a person of the provider `issuer`.
pub async fn is_linked(
    db: impl sqlx::PgExecutor<'_>,
    user: Uuid,
    issuer: &str,
) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM user_identities WHERE user_id = $1 AND issuer = $2)
               AS "linked!""#,
        user,
        issuer
    )
    .fetch_one(db)
    .await
}

/// What the provider says about a person at a sign-in.
pub struct Profile<'a> {
    pub display_name: &'a DisplayName,
    pub email: Option<&'a str>,
    /// Portcullis groups from the mapping; memberships of other mapped groups end.
    pub groups: &'a [String],
    /// `None`: the mapping names no role group, so the role stays as it is.
    pub role: Option<Role>,
}

/// Refreshes the account from the provider and records the sign-in, with the account before
/// and after in the audit log.
pub async fn refresh(
    tx: &mut PgConnection,
    linked: &Linked,
    issuer: &str,
    mapping: &Mapping,
    profile: &Profile<'_>,
) -> Result<(), sqlx::Error> {
    let id = linked.user_id;
    let before = crate::db::users::snapshot(tx, id).await?;
    sqlx::query!(
        "UPDATE users SET display_name = $2, email = COALESCE($3, email),
                          role = COALESCE($4, role), updated_at = now()
         WHERE id = $1",
        id,
        profile.display_name.as_str(),
        profile.email,
        profile.role as Option<Role>
    )
    .execute(&mut *tx)
    .await?;
    let managed: Vec<String> = mapping.managed().map(str::to_lowercase).collect();
    let wanted: Vec<String> = profile.groups.iter().map(|g| g.to_lowercase()).collect();
    sqlx::query!(
        "DELETE FROM group_members gm USING groups g
         WHERE gm.group_id = g.id AND gm.user_id = $1
           AND lower(g.name) = ANY($2) AND NOT lower(g.name) = ANY($3)",
        id,
        &managed,
        &wanted
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query!(
        "INSERT INTO group_members (group_id, user_id)
         SELECT g.id, $1 FROM groups g WHERE lower(g.name) = ANY($2) ON CONFLICT DO NOTHING",
        id,
        &wanted
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query!(
        "UPDATE user_identities SET last_sign_in = now() WHERE user_id = $1 AND issuer = $2",
        id,
        issuer
    )
    .execute(&mut *tx)
    .await?;
    let after = crate::db::users::snapshot(tx, id).await?;
    audit::record(
        tx,
        &Actor {
            id: Some(id),
            name: linked.username.clone(),
        },
        Entry {
            action: "sign in (single sign-on)",
            object_kind: "user",
            object_id: Some(id),
            object_name: &linked.username,
            before,
            after,
        },
    )
    .await
}

/// Stops the start when the group mapping names a Portcullis group that does not exist.
pub async fn check_mapped_groups(db: &sqlx::PgPool, mapping: &Mapping) -> anyhow::Result<()> {
    let names: Vec<String> = mapping.managed().map(str::to_lowercase).collect();
    let found: Vec<String> = sqlx::query_scalar!(
        r#"SELECT lower(name) AS "name!" FROM groups WHERE lower(name) = ANY($1)"#,
        &names
    )
    .fetch_all(db)
    .await?;
    let missing: Vec<&str> = mapping
        .managed()
        .filter(|n| !found.contains(&n.to_lowercase()))
        .collect();
    if !missing.is_empty() {
        anyhow::bail!(
            "the group map file names Portcullis groups that do not exist: {} (create them first)",
            missing.join(", ")
        );
    }
    Ok(())
}
