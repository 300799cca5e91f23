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
#[derive(Debug, FromRow)]
pub struct CurrentRow {
    pub id: Uuid,
    pub username: String,
    pub display_name: String,
    pub role: Role,
    pub time_zone: String,
    pub disabled: bool,
    pub is_approver: bool,
}

/// Loads the user with whether they are named in any approval tier. One round trip.
pub async fn load_current(
    db: impl PgExecutor<'_>,
    id: Uuid,
) -> Result<Option<CurrentRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT u.id, u.username, u.display_name, u.role, u.time_zone, u.disabled,
                (EXISTS (SELECT 1 FROM approval_tier_users tu WHERE tu.user_id = u.id)
                 OR EXISTS (SELECT 1 FROM approval_tier_groups tg
                            JOIN group_members gm ON gm.group_id = tg.group_id
                            WHERE gm.user_id = u.id)) AS is_approver
         FROM users u WHERE u.id = $1",
    )
    .bind(id)
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
    sqlx::query_as(
        "SELECT id, password_hash, disabled,
                COALESCE(locked_until > now(), false) AS locked
         FROM users WHERE lower(username) = lower($1)",
    )
    .bind(username)
    .fetch_optional(db)
    .await
}

/// Counts a failed sign-in in one atomic update: failures older than the window start a new
/// count, and the fifth failure within it locks the account for the lockout period.
pub async fn record_failed_login(db: impl PgExecutor<'_>, id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query(
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
    )
    .bind(id)
    .bind(LOCKOUT_MINUTES)
    .bind(LOCKOUT_THRESHOLD)
    .execute(db)
    .await
    .map(|_| ())
}

/// Clears the failure count after a successful sign-in.
pub async fn record_successful_login(db: impl PgExecutor<'_>, id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE users SET failed_logins = 0, failed_window_start = NULL, locked_until = NULL
         WHERE id = $1 AND (failed_logins <> 0 OR locked_until IS NOT NULL)",
    )
    .bind(id)
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
    sqlx::query_scalar(
        "UPDATE users SET failed_logins = 0, failed_window_start = NULL, locked_until = NULL,
                          updated_at = now()
         WHERE id = $1 OR lower(username) = lower($2)
         RETURNING username",
    )
    .bind(id)
    .bind(name)
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
    let result = sqlx::query(
        "INSERT INTO users (id, username, display_name, role, time_zone, password_hash)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(id)
    .bind(user.username.as_str())
    .bind(user.display_name.as_str())
    .bind(user.role)
    .bind(user.time_zone)
    .bind(user.password_hash)
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
#[derive(Debug, FromRow)]
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
    sqlx::query_as(
        "SELECT id, username, display_name, role, disabled,
                CASE WHEN locked_until > now() THEN locked_until END AS locked_until,
                password_hash IS NOT NULL AS has_password
         FROM users
         WHERE $1 = '' OR strpos(lower(username), lower($1)) > 0
               OR strpos(lower(display_name), lower($1)) > 0
         ORDER BY lower(username)
         LIMIT $2",
    )
    .bind(search)
    .bind(limit)
    .fetch_all(db)
    .await
}
