//! SSH public keys registered on the Account page (`user_ssh_keys`). The gateway finds a
//! key by its fingerprint; each add and remove is written to the audit log in the same
//! transaction.

use sqlx::{PgExecutor, PgPool};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::db::audit::{self, Actor, Entry};
use crate::domain::ssh_keys::{MAX_KEYS, ParsedKey};

/// One registered key.
#[derive(Debug, Clone)]
pub struct Key {
    pub id: Uuid,
    pub user_id: Uuid,
    pub name: String,
    pub algorithm: String,
    pub public_key: String,
    pub fingerprint: String,
    pub created_at: OffsetDateTime,
    pub last_used_at: Option<OffsetDateTime>,
}

/// Why a key was not added.
#[derive(Debug, thiserror::Error)]
pub enum AddError {
    #[error("too many keys")]
    TooMany,
    #[error("key already registered")]
    KeyTaken,
    #[error("name taken")]
    NameTaken,
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

/// Adds `key` named `name` to the user's keys and audits it. Adds for one user are
/// serialised on the user's row, so the cap holds under races.
pub async fn add(
    db: &PgPool,
    actor: &Actor,
    user_id: Uuid,
    name: &str,
    key: &ParsedKey,
) -> Result<Uuid, AddError> {
    let mut tx = db.begin().await?;
    sqlx::query!(
        "SELECT 1 AS one FROM users WHERE id = $1 FOR UPDATE",
        user_id
    )
    .fetch_optional(&mut *tx)
    .await?;
    if count_for_user(&mut *tx, user_id).await? >= MAX_KEYS {
        return Err(AddError::TooMany);
    }
    let id = Uuid::now_v7();
    sqlx::query!(
        "INSERT INTO user_ssh_keys (id, user_id, name, algorithm, public_key, fingerprint)
         VALUES ($1, $2, $3, $4, $5, $6)",
        id,
        user_id,
        name,
        &key.algorithm,
        &key.public_key,
        &key.fingerprint,
    )
    .execute(&mut *tx)
    .await
    .map_err(|e| match &e {
        sqlx::Error::Database(d) if d.constraint() == Some("user_ssh_keys_fingerprint_key") => {
            AddError::KeyTaken
        }
        sqlx::Error::Database(d) if d.constraint() == Some("user_ssh_keys_user_name_key") => {
            AddError::NameTaken
        }
        _ => AddError::Db(e),
    })?;
    let after = audit::snapshot(&mut tx, "user_ssh_keys", id).await?;
    audit::record(&mut tx, actor, entry("add_ssh_key", id, name, None, after)).await?;
    tx.commit().await?;
    Ok(id)
}

fn entry<'a>(
    action: &'a str,
    id: Uuid,
    name: &'a str,
    before: Option<String>,
    after: Option<String>,
) -> Entry<'a> {
    Entry {
        action,
        object_kind: "ssh_key",
        object_id: Some(id),
        object_name: name,
        before,
        after,
    }
}

/// Removes one of the user's own keys and audits it; the removed key's name, or None when
/// the user has no such key.
pub async fn remove(
    db: &PgPool,
    actor: &Actor,
    user_id: Uuid,
    key_id: Uuid,
) -> Result<Option<String>, sqlx::Error> {
    let mut tx = db.begin().await?;
    let before = audit::snapshot(&mut tx, "user_ssh_keys", key_id).await?;
    let name = sqlx::query_scalar!(
        "DELETE FROM user_ssh_keys WHERE id = $1 AND user_id = $2 RETURNING name",
        key_id,
        user_id,
    )
    .fetch_optional(&mut *tx)
    .await?;
    let Some(name) = name else {
        return Ok(None);
    };
    audit::record(
        &mut tx,
        actor,
        entry("remove_ssh_key", key_id, &name, before, None),
    )
    .await?;
    tx.commit().await?;
    Ok(Some(name))
}

/// The user's keys, oldest first.
pub async fn list_for_user(
    db: impl PgExecutor<'_>,
    user_id: Uuid,
) -> Result<Vec<Key>, sqlx::Error> {
    sqlx::query_as!(
        Key,
        "SELECT id, user_id, name, algorithm, public_key, fingerprint, created_at, last_used_at
         FROM user_ssh_keys WHERE user_id = $1 ORDER BY created_at, id",
        user_id,
    )
    .fetch_all(db)
    .await
}

/// How many keys the user has.
pub async fn count_for_user(db: impl PgExecutor<'_>, user_id: Uuid) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar!(
        r#"SELECT count(*) AS "count!" FROM user_ssh_keys WHERE user_id = $1"#,
        user_id
    )
    .fetch_one(db)
    .await
}
