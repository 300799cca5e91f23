//! User accounts: sign-in bookkeeping, the current user, creation and unlocking.

use sqlx::{FromRow, PgExecutor};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::domain::names::{DisplayName, Username};
use crate::domain::role::Role;

/// Failed sign-ins that lock an account, and the window they are counted in.
pub const LOCKOUT_THRESHOLD: i32 = 5;
/// Minutes in which failures are counted, and for which the account is then locked.
pub const LOCKOUT_MINUTES: i32 = 15;

/// What the guard needs about the signed-in user.
#[derive(Debug, FromRow, serde::Serialize, serde::Deserialize)]
pub struct CurrentRow {
    pub id: Uuid,
    pub username: String,
    pub display_name: String,
    pub role: Role,
    pub time_zone: String,
    pub disabled: bool,
    pub is_approver: bool,
}

/// Loads the user with whether they are named in any approval tier (the SQL function
/// `user_is_approver`; the session store and the API's token check read the same).
pub async fn load_current(
    db: impl PgExecutor<'_>,
    id: Uuid,
) -> Result<Option<CurrentRow>, sqlx::Error> {
    sqlx::query_as!(
        CurrentRow,
        r#"SELECT u.id, u.username, u.display_name, u.role AS "role: Role", u.time_zone, u.disabled,
                user_is_approver(u.id) AS "is_approver!"
         FROM users u WHERE u.id = $1"#,
        id
    )
    .fetch_optional(db)
    .await
}

/// The username of account `id`, unless it is disabled or gone.
pub async fn enabled_username(
    db: impl PgExecutor<'_>,
    id: Uuid,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar!(
        "SELECT username FROM users WHERE id = $1 AND NOT disabled",
        id
    )
    .fetch_optional(db)
    .await
}

/// The account a stored browser session (by id) is signed in as now, if it still exists and
/// has not expired: what an open event stream re-checks when its sign-in or account changes.
pub async fn signed_in_as(
    db: impl PgExecutor<'_>,
    web_session: &str,
) -> Result<Option<CurrentRow>, sqlx::Error> {
    sqlx::query_as!(
        CurrentRow,
        r#"SELECT u.id, u.username, u.display_name, u.role AS "role: Role", u.time_zone, u.disabled,
                user_is_approver(u.id) AS "is_approver!"
         FROM web_sessions s JOIN users u ON u.id = s.user_id
         WHERE s.id = $1 AND s.expires_at > now()"#,
        web_session
    )
    .fetch_optional(db)
    .await
}

/// What a sign-in attempt needs to know about the account.
#[derive(Debug, FromRow)]
pub struct LoginRow {
    pub id: Uuid,
    pub password_hash: Option<String>,
    pub disabled: bool,
    pub locked: bool,
}

/// Finds an account by username, regardless of case.
pub async fn find_for_login(
    db: impl PgExecutor<'_>,
    username: &str,
) -> Result<Option<LoginRow>, sqlx::Error> {
    sqlx::query_as!(
        LoginRow,
        r#"SELECT id, password_hash, disabled,
                COALESCE(locked_until > now(), false) AS "locked!"
         FROM users WHERE lower(username) = lower($1)"#,
        username
    )
    .fetch_optional(db)
    .await
}

/// Counts a failed sign-in in one atomic update: failures older than the window start a new
/// count, and the fifth failure within it locks the account for the lockout period.
pub async fn record_failed_login(db: impl PgExecutor<'_>, id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "WITH next AS (
             SELECT id,
                    CASE WHEN failed_window_start IS NULL
                              OR failed_window_start < now() - make_interval(mins => $2)
                         THEN 1 ELSE failed_logins + 1 END AS count,
                    CASE WHEN failed_window_start IS NULL
                              OR failed_window_start < now() - make_interval(mins => $2)
                         THEN now() ELSE failed_window_start END AS window_start
             FROM users WHERE id = $1 FOR UPDATE
         )
         UPDATE users u
         SET failed_logins = next.count,
             failed_window_start = next.window_start,
             locked_until = CASE WHEN next.count >= $3
                                 THEN now() + make_interval(mins => $2)
                                 ELSE u.locked_until END
         FROM next WHERE u.id = next.id",
        id,
        LOCKOUT_MINUTES,
        LOCKOUT_THRESHOLD
    )
    .execute(db)
    .await
    .map(|_| ())
}

/// Counts a failed password sign-in under the name typed, in one statement whatever the
/// name: for an existing, enabled account as [`record_failed_login`] does; for an unknown
/// name or a disabled account, an update of one row of `sign_in_decoys` chosen by the
/// name's hash. Either way one row is written and one commit flushed, so the answer takes
/// as long whether or not the name exists (see `bench/login_timing.sh`).
pub async fn record_failed_sign_in(
    db: impl PgExecutor<'_>,
    username: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "WITH account AS (
             SELECT id,
                    CASE WHEN failed_window_start IS NULL
                              OR failed_window_start < now() - make_interval(mins => $2)
                         THEN 1 ELSE failed_logins + 1 END AS count,
                    CASE WHEN failed_window_start IS NULL
                              OR failed_window_start < now() - make_interval(mins => $2)
                         THEN now() ELSE failed_window_start END AS window_start
             FROM users WHERE lower(username) = lower($1) AND NOT disabled FOR UPDATE
         ), counted AS (
             UPDATE users u
             SET failed_logins = account.count,
                 failed_window_start = account.window_start,
                 locked_until = CASE WHEN account.count >= $3
                                     THEN now() + make_interval(mins => $2)
                                     ELSE u.locked_until END
             FROM account WHERE u.id = account.id
             RETURNING u.id
         )
         UPDATE sign_in_decoys
         SET failures = failures + 1, last_at = now()
         WHERE slot = (hashtext(lower($1)) & 63) AND NOT EXISTS (SELECT 1 FROM counted)",
        username,
        LOCKOUT_MINUTES,
        LOCKOUT_THRESHOLD
    )
    .execute(db)
    .await
    .map(|_| ())
}

/// Clears the failure count after a successful sign-in.
pub async fn record_successful_login(db: impl PgExecutor<'_>, id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "UPDATE users SET failed_logins = 0, failed_window_start = NULL, locked_until = NULL
         WHERE id = $1 AND (failed_logins <> 0 OR locked_until IS NOT NULL)",
        id
    )
    .execute(db)
    .await
    .map(|_| ())
}

/// An account named by id (web) or by username (command line).
pub enum Who<'a> {
    Id(Uuid),
    Username(&'a str),
}

/// Lifts a lockout. Returns the account's username, or `None` when there is no such account.
pub async fn unlock(db: impl PgExecutor<'_>, who: Who<'_>) -> Result<Option<String>, sqlx::Error> {
    let (id, name) = match who {
        Who::Id(id) => (Some(id), None),
        Who::Username(name) => (None, Some(name)),
    };
    sqlx::query_scalar!(
        "UPDATE users SET failed_logins = 0, failed_window_start = NULL, locked_until = NULL,
                          updated_at = now()
         WHERE id = $1 OR lower(username) = lower($2)
         RETURNING username",
        id,
        name
    )
    .fetch_optional(db)
    .await
}

/// A new account.
pub struct NewUser<'a> {
    pub username: &'a Username,
    pub display_name: &'a DisplayName,
    pub role: Role,
    pub time_zone: &'a str,
    pub password_hash: Option<&'a str>,
}

/// Why an account could not be created.
#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    #[error("a user named \"{0}\" already exists (usernames are compared without regard to case)")]
    Taken(String),
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

/// Creates an account; a username taken in any letter case is refused.
pub async fn create(db: impl PgExecutor<'_>, user: &NewUser<'_>) -> Result<Uuid, CreateError> {
    let id = Uuid::now_v7();
    let result = sqlx::query!(
        "INSERT INTO users (id, username, display_name, role, time_zone, password_hash)
         VALUES ($1, $2, $3, $4, $5, $6)",
        id,
        user.username.as_str(),
        user.display_name.as_str(),
        user.role as Role,
        user.time_zone,
        user.password_hash
    )
    .execute(db)
    .await;
    match result {
        Ok(_) => Ok(id),
        Err(sqlx::Error::Database(e)) if e.constraint() == Some("users_username_key") => {
            Err(CreateError::Taken(user.username.to_string()))
        }
        Err(e) => Err(e.into()),
    }
}

/// A row of the administrators' user list.
#[derive(Debug)]
pub struct ListRow {
    pub id: Uuid,
    pub username: String,
    pub display_name: String,
    pub role: Role,
    pub disabled: bool,
    pub locked_until: Option<OffsetDateTime>,
    pub has_password: bool,
}

/// Users whose username or display name contains `search`, by username.
pub async fn list(
    db: impl PgExecutor<'_>,
    search: &str,
    limit: i64,
) -> Result<Vec<ListRow>, sqlx::Error> {
    sqlx::query_as!(
        ListRow,
        r#"SELECT id, username, display_name, role AS "role: Role", disabled,
                CASE WHEN locked_until > now() THEN locked_until END AS "locked_until?",
                password_hash IS NOT NULL AS "has_password!"
         FROM users
         WHERE $1 = '' OR strpos(lower(username), lower($1)) > 0
               OR strpos(lower(display_name), lower($1)) > 0
         ORDER BY lower(username)
         LIMIT $2"#,
        search,
        limit
    )
    .fetch_all(db)
    .await
}

/// The users' checkbox list (groups, policies, approval tiers): enabled accounts, and any
/// ticked one.
pub async fn choices(
    db: impl PgExecutor<'_>,
    search: &str,
    ticked: &[Uuid],
    limit: i64,
) -> Result<(Vec<crate::db::audit::Choice>, i64), sqlx::Error> {
    crate::db::audit::choices(
        db,
        "users",
        "username",
        "display_name || CASE WHEN disabled THEN ' (disabled)' ELSE '' END",
        "NOT disabled",
        search,
        ticked,
        limit,
    )
    .await
}

/// The account as the audit log records it: never the password hash or sign-in counters;
/// with its groups' names.
pub async fn snapshot(
    db: &mut sqlx::PgConnection,
    id: Uuid,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar!(
        r#"SELECT (to_jsonb(u) - 'password_hash' - 'failed_logins' - 'failed_window_start'
                 - 'locked_until' - 'updated_at'
                 || jsonb_build_object('has_password', u.password_hash IS NOT NULL,
                                       'groups', COALESCE(
                    (SELECT jsonb_agg(g.name ORDER BY lower(g.name))
                     FROM group_members gm JOIN groups g ON g.id = gm.group_id
                     WHERE gm.user_id = u.id), '[]'::jsonb)))::text AS "snapshot!"
         FROM users u WHERE u.id = $1"#,
        id
    )
    .fetch_optional(db)
    .await
}

/// An account for the admin form.
#[derive(Debug)]
pub struct EditRow {
    pub id: Uuid,
    pub username: String,
    pub display_name: String,
    pub email: Option<String>,
    pub role: Role,
    pub time_zone: String,
    pub disabled: bool,
    pub locked: bool,
    pub has_password: bool,
}

pub async fn get(db: impl PgExecutor<'_>, id: Uuid) -> Result<Option<EditRow>, sqlx::Error> {
    sqlx::query_as!(
        EditRow,
        r#"SELECT id, username, display_name, email, role AS "role: Role", time_zone, disabled,
                COALESCE(locked_until > now(), false) AS "locked!",
                password_hash IS NOT NULL AS "has_password!"
         FROM users WHERE id = $1"#,
        id
    )
    .fetch_optional(db)
    .await
}

/// The ids of the groups a user belongs to.
pub async fn group_ids(db: impl PgExecutor<'_>, id: Uuid) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar!("SELECT group_id FROM group_members WHERE user_id = $1", id)
        .fetch_all(db)
        .await
}

/// Finds an account by id or by username (any case): its id and username.
pub async fn find(
    db: impl PgExecutor<'_>,
    who: Who<'_>,
) -> Result<Option<(Uuid, String)>, sqlx::Error> {
    let (id, name) = match who {
        Who::Id(id) => (Some(id), None),
        Who::Username(name) => (None, Some(name)),
    };
    sqlx::query!(
        "SELECT id, username FROM users WHERE id = $1 OR lower(username) = lower($2)",
        id,
        name
    )
    .fetch_optional(db)
    .await
    .map(|row| row.map(|r| (r.id, r.username)))
}

/// What an administrator sets on an account.
pub struct AccountFields<'a> {
    pub display_name: &'a DisplayName,
    pub email: Option<&'a str>,
    pub role: Role,
    pub time_zone: &'a str,
    pub groups: &'a [Uuid],
}

async fn set_groups(
    tx: &mut sqlx::PgConnection,
    id: Uuid,
    groups: &[Uuid],
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "DELETE FROM group_members WHERE user_id = $1 AND NOT (group_id = ANY($2))",
        id,
        groups
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query!(
        "INSERT INTO group_members (group_id, user_id)
         SELECT g.id, $1 FROM groups g WHERE g.id = ANY($2) ON CONFLICT DO NOTHING",
        id,
        groups
    )
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Creates an account with its groups and audit entry.
pub async fn create_audited(
    tx: &mut sqlx::PgConnection,
    actor: &crate::db::audit::Actor,
    username: &Username,
    fields: &AccountFields<'_>,
    password_hash: &str,
) -> Result<Uuid, crate::db::audit::WriteError> {
    use crate::db::audit::{self, Entry, WriteError};
    let id = Uuid::now_v7();
    sqlx::query!(
        "INSERT INTO users (id, username, display_name, email, role, time_zone, password_hash)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
        id,
        username.as_str(),
        fields.display_name.as_str(),
        fields.email,
        fields.role as Role,
        fields.time_zone,
        password_hash
    )
    .execute(&mut *tx)
    .await
    .map_err(|e| WriteError::from_unique(e, "users_username_key"))?;
    set_groups(tx, id, fields.groups).await?;
    let after = snapshot(tx, id).await?;
    audit::record(
        tx,
        actor,
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

/// Changes an account's details, role and groups.
pub async fn update_audited(
    tx: &mut sqlx::PgConnection,
    actor: &crate::db::audit::Actor,
    id: Uuid,
    fields: &AccountFields<'_>,
) -> Result<(), crate::db::audit::WriteError> {
    use crate::db::audit::{self, Entry, WriteError};
    let username: String =
        sqlx::query_scalar!("SELECT username FROM users WHERE id = $1 FOR UPDATE", id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(WriteError::NotFound)?;
    let before = snapshot(tx, id).await?;
    sqlx::query!(
        "UPDATE users SET display_name = $2, email = $3, role = $4, time_zone = $5,
                          updated_at = now()
         WHERE id = $1",
        id,
        fields.display_name.as_str(),
        fields.email,
        fields.role as Role,
        fields.time_zone
    )
    .execute(&mut *tx)
    .await?;
    set_groups(tx, id, fields.groups).await?;
    let after = snapshot(tx, id).await?;
    audit::record(
        tx,
        actor,
        Entry {
            action: "update",
            object_kind: "user",
            object_id: Some(id),
            object_name: &username,
            before,
            after,
        },
    )
    .await?;
    Ok(())
}

/// Disables or enables an account; disabling also ends its sign-ins and every session of
/// its that is not over. Returns its username, or `None` when there is no such account.
pub async fn set_disabled(
    tx: &mut sqlx::PgConnection,
    actor: &crate::db::audit::Actor,
    who: Who<'_>,
    disabled: bool,
) -> Result<Option<String>, sqlx::Error> {
    use crate::db::audit::{self, Entry};
    let Some((id, username)) = find(&mut *tx, who).await? else {
        return Ok(None);
    };
    let before = snapshot(tx, id).await?;
    sqlx::query!(
        "UPDATE users SET disabled = $2, updated_at = now() WHERE id = $1",
        id,
        disabled
    )
    .execute(&mut *tx)
    .await?;
    if disabled {
        end_sessions(&mut *tx, id).await?;
        // Access ends with the account: every session not over is Canceled (the password goes
        // with the final status), waiting requests can no longer be approved.
        let comment = match actor.id {
            Some(_) => format!("The requester's account was disabled by {}.", actor.name),
            None => format!("The requester's account was disabled ({}).", actor.name),
        };
        let by = match actor.id {
            Some(id) => crate::db::sessions::Actor::User {
                id,
                name: &actor.name,
            },
            None => crate::db::sessions::Actor::System,
        };
        crate::db::grants::end_all_of_user(&mut *tx, id, by, &comment).await?;
    }
    let after = snapshot(tx, id).await?;
    audit::record(
        tx,
        actor,
        Entry {
            action: if disabled { "disable" } else { "enable" },
            object_kind: "user",
            object_id: Some(id),
            object_name: &username,
            before,
            after,
        },
    )
    .await?;
    Ok(Some(username))
}

/// Ends every sign-in of an account (its stored browser sessions).
pub async fn end_sessions(db: impl PgExecutor<'_>, id: Uuid) -> Result<u64, sqlx::Error> {
    Ok(
        sqlx::query!("DELETE FROM web_sessions WHERE user_id = $1", id)
            .execute(db)
            .await?
            .rows_affected(),
    )
}

/// Sets a new password (already hashed), lifts any lockout and ends the account's sign-ins
/// (a reset usually answers a leaked password). Returns the username, or `None` when there
/// is no such account.
pub async fn reset_password(
    tx: &mut sqlx::PgConnection,
    actor: &crate::db::audit::Actor,
    who: Who<'_>,
    password_hash: &str,
) -> Result<Option<String>, sqlx::Error> {
    use crate::db::audit::{self, Entry};
    let Some((id, username)) = find(&mut *tx, who).await? else {
        return Ok(None);
    };
    sqlx::query!(
        "UPDATE users SET password_hash = $2, failed_logins = 0, failed_window_start = NULL,
                          locked_until = NULL, updated_at = now()
         WHERE id = $1",
        id,
        password_hash
    )
    .execute(&mut *tx)
    .await?;
    end_sessions(&mut *tx, id).await?;
    audit::record(
        tx,
        actor,
        Entry {
            action: "reset_password",
            object_kind: "user",
            object_id: Some(id),
            object_name: &username,
            before: None,
            after: None,
        },
    )
    .await?;
    Ok(Some(username))
}

// ---- The user's own account (the account page, issue 16) ----

/// The stored password hash of an account (`None`: no password, or no such account).
pub async fn password_hash_of(
    db: impl PgExecutor<'_>,
    id: Uuid,
) -> Result<Option<String>, sqlx::Error> {
    Ok(
        sqlx::query_scalar!("SELECT password_hash FROM users WHERE id = $1", id)
            .fetch_optional(db)
            .await?
            .flatten(),
    )
}

/// Replaces the user's own password (`old_hash` is the one their current password was
/// checked against, `new_hash` the new one, hashed), ends their other sign-ins (every stored
/// session but `keep`) and records the change. `None` when the password changed in between
/// (another tab, an administrator): then nothing is written. Else how many sign-ins ended.
pub async fn change_own_password(
    tx: &mut sqlx::PgConnection,
    id: Uuid,
    username: &str,
    old_hash: &str,
    new_hash: &str,
    keep: Option<&str>,
) -> Result<Option<u64>, sqlx::Error> {
    use crate::db::audit::{self, Actor, Entry};
    let changed = sqlx::query!(
        "UPDATE users SET password_hash = $3, updated_at = now()
         WHERE id = $1 AND password_hash = $2",
        id,
        old_hash,
        new_hash
    )
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if changed == 0 {
        return Ok(None);
    }
    let ended = sqlx::query!(
        "DELETE FROM web_sessions WHERE user_id = $1 AND id IS DISTINCT FROM $2",
        id,
        keep
    )
    .execute(&mut *tx)
    .await?
    .rows_affected();
    let actor = Actor {
        id: Some(id),
        name: username.to_owned(),
    };
    audit::record(
        tx,
        &actor,
        Entry {
            action: "change_own_password",
            object_kind: "user",
            object_id: Some(id),
            object_name: username,
            before: None,
            after: Some(serde_json::json!({ "other_sign_ins_ended": ended }).to_string()),
        },
    )
    .await?;
    Ok(Some(ended))
}

/// Sets the user's own display name and time zone (both checked), recorded with the row
/// before and after. `false` when there is no such account.
pub async fn update_own_profile(
    tx: &mut sqlx::PgConnection,
    id: Uuid,
    username: &str,
    display_name: &DisplayName,
    time_zone: &str,
) -> Result<bool, sqlx::Error> {
    use crate::db::audit::{self, Actor, Entry};
    let before: Option<String> = sqlx::query_scalar!(
        r#"SELECT jsonb_build_object('display_name', display_name, 'time_zone', time_zone)::text
                  AS "before!"
         FROM users WHERE id = $1 FOR UPDATE"#,
        id
    )
    .fetch_optional(&mut *tx)
    .await?;
    let Some(before) = before else {
        return Ok(false);
    };
    let after: String = sqlx::query_scalar!(
        r#"UPDATE users SET display_name = $2, time_zone = $3, updated_at = now() WHERE id = $1
         RETURNING jsonb_build_object('display_name', display_name, 'time_zone', time_zone)::text
                   AS "after!""#,
        id,
        display_name.as_str(),
        time_zone
    )
    .fetch_one(&mut *tx)
    .await?;
    if after != before {
        let actor = Actor {
            id: Some(id),
            name: username.to_owned(),
        };
        audit::record(
            tx,
            &actor,
            Entry {
                action: "update_own_account",
                object_kind: "user",
                object_id: Some(id),
                object_name: username,
                before: Some(before),
                after: Some(after),
            },
        )
        .await?;
    }
    Ok(true)
}
