//! Second factors: one TOTP secret per user (sealed), the last time step accepted, and the
//! hashed recovery codes. Every acceptance is one conditional UPDATE, so a code is accepted
//! at most once even when two requests carry it at the same moment.

use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

/// A user's authenticator.
#[derive(Debug)]
pub struct Factor {
    pub secret_sealed: Vec<u8>,
    /// False while enrolment waits for its first right code.
    pub confirmed: bool,
}

/// The user's authenticator, confirmed or being enrolled.
pub async fn get(db: impl PgExecutor<'_>, user: Uuid) -> Result<Option<Factor>, sqlx::Error> {
    sqlx::query_as!(
        Factor,
        r#"SELECT secret_sealed, confirmed_at IS NOT NULL AS "confirmed!"
           FROM user_totp WHERE user_id = $1"#,
        user
    )
    .fetch_optional(db)
    .await
}

/// Whether the user signs in with a second factor.
pub async fn is_on(db: impl PgExecutor<'_>, user: Uuid) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM user_totp WHERE user_id = $1 AND confirmed_at IS NOT NULL)
               AS "on!""#,
        user
    )
    .fetch_one(db)
    .await
}

/// Starts an enrolment with `sealed` unless one is under way (or done): returns the factor
/// that is stored now, so reloading the enrolment page keeps showing the same secret.
pub async fn start_enrolment(
    db: &mut PgConnection,
    user: Uuid,
    sealed: &[u8],
) -> Result<Factor, sqlx::Error> {
    sqlx::query!(
        "INSERT INTO user_totp (user_id, secret_sealed) VALUES ($1, $2)
         ON CONFLICT (user_id) DO NOTHING",
        user,
        sealed
    )
    .execute(&mut *db)
    .await?;
    get(&mut *db, user).await?.ok_or(sqlx::Error::RowNotFound)
}

/// Switches an enrolment on with the step of its first right code (which cannot then be
/// used again to sign in). False when it was not waiting for confirmation.
pub async fn confirm(db: impl PgExecutor<'_>, user: Uuid, step: i64) -> Result<bool, sqlx::Error> {
    sqlx::query!(
        "UPDATE user_totp SET confirmed_at = now(), last_step = $2
         WHERE user_id = $1 AND confirmed_at IS NULL AND last_step < $2",
        user,
        step
    )
    .execute(db)
    .await
    .map(|r| r.rows_affected() == 1)
}

/// Accepts the code of `step` if no code of this step or a later one was accepted before.
pub async fn accept_step(
    db: impl PgExecutor<'_>,
    user: Uuid,
    step: i64,
) -> Result<bool, sqlx::Error> {
    sqlx::query!(
        "UPDATE user_totp SET last_step = $2
         WHERE user_id = $1 AND confirmed_at IS NOT NULL AND last_step < $2",
        user,
        step
    )
    .execute(db)
    .await
    .map(|r| r.rows_affected() == 1)
}

/// Replaces the user's recovery codes with these hashes.
pub async fn replace_recovery_codes(
    db: &mut PgConnection,
    user: Uuid,
    hashes: &[Vec<u8>],
) -> Result<(), sqlx::Error> {
    sqlx::query!("DELETE FROM user_recovery_codes WHERE user_id = $1", user)
        .execute(&mut *db)
        .await?;
    sqlx::query!(
        "INSERT INTO user_recovery_codes (user_id, code_hash)
         SELECT $1, h FROM UNNEST($2::bytea[]) AS h",
        user,
        hashes
    )
    .execute(&mut *db)
    .await?;
    Ok(())
}

/// Uses up a recovery code: true when it was the user's and unused.
pub async fn use_recovery_code(
    db: impl PgExecutor<'_>,
    user: Uuid,
    hash: &[u8],
) -> Result<bool, sqlx::Error> {
    sqlx::query!(
        "UPDATE user_recovery_codes SET used_at = now()
         WHERE user_id = $1 AND code_hash = $2 AND used_at IS NULL
           AND EXISTS (SELECT 1 FROM user_totp t
                       WHERE t.user_id = $1 AND t.confirmed_at IS NOT NULL)",
        user,
        hash
    )
    .execute(db)
    .await
    .map(|r| r.rows_affected() == 1)
}

/// Recovery codes not used yet.
pub async fn remaining_recovery_codes(
    db: impl PgExecutor<'_>,
    user: Uuid,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar!(
        r#"SELECT count(*) AS "count!" FROM user_recovery_codes
           WHERE user_id = $1 AND used_at IS NULL"#,
        user
    )
    .fetch_one(db)
    .await
}

/// Removes the user's authenticator and recovery codes. True when there was one (confirmed
/// or being enrolled).
pub async fn remove(db: &mut PgConnection, user: Uuid) -> Result<bool, sqlx::Error> {
    sqlx::query!("DELETE FROM user_recovery_codes WHERE user_id = $1", user)
        .execute(&mut *db)
        .await?;
    sqlx::query!("DELETE FROM user_totp WHERE user_id = $1", user)
        .execute(&mut *db)
        .await
        .map(|r| r.rows_affected() == 1)
}

/// Whether the account may finish a sign-in now (exists, enabled, not locked out).
pub async fn may_sign_in(db: impl PgExecutor<'_>, user: Uuid) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM users WHERE id = $1 AND NOT disabled
                          AND password_hash IS NOT NULL
                          AND COALESCE(locked_until <= now(), true)) AS "may!""#,
        user
    )
    .fetch_one(db)
    .await
}
