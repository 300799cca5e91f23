//! The per-address sign-in rate limit: one row per client address with the attempts of its
//! current window, counted by one atomic upsert so that every instance shares the count.

use std::net::IpAddr;

use sqlx::PgExecutor;

/// Counts one attempt from `address` and returns how many it has made in its current window
/// (this one included) and the seconds until that window ends. A window older than
/// `window_seconds` starts over at this attempt.
pub async fn count_attempt(
    db: impl PgExecutor<'_>,
    address: IpAddr,
    window_seconds: u32,
) -> Result<(i64, i64), sqlx::Error> {
    let row = sqlx::query!(
        r#"INSERT INTO sign_in_attempts AS a (address, window_start, attempts)
         VALUES ($1::text::inet, now(), 1)
         ON CONFLICT (address) DO UPDATE
         SET attempts = CASE WHEN a.window_start <= now() - make_interval(secs => $2)
                             THEN 1 ELSE a.attempts + 1 END,
             window_start = CASE WHEN a.window_start <= now() - make_interval(secs => $2)
                                 THEN now() ELSE a.window_start END
         RETURNING attempts::bigint AS "attempts!",
                   GREATEST(1, CEIL(EXTRACT(EPOCH FROM
                       window_start + make_interval(secs => $2) - now())))::bigint AS "retry_after!""#,
        address.to_string(),
        f64::from(window_seconds),
    )
    .fetch_one(db)
    .await?;
    Ok((row.attempts, row.retry_after))
}

/// Deletes the rows of windows that have ended (the index on `window_start` keeps this cheap
/// when there are none).
pub async fn prune(db: impl PgExecutor<'_>, window_seconds: u32) -> Result<u64, sqlx::Error> {
    sqlx::query!(
        "DELETE FROM sign_in_attempts WHERE window_start <= now() - make_interval(secs => $1)",
        f64::from(window_seconds),
    )
    .execute(db)
    .await
    .map(|r| r.rows_affected())
}

/// Gives back one attempt counted by `count_attempt` for `address`, for an attempt that
/// turned out right: only failed attempts use up the address's allowance. The count never
/// goes below zero, and a window that has ended is left for `count_attempt` to restart.
pub async fn refund_attempt(db: impl PgExecutor<'_>, address: IpAddr) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "UPDATE sign_in_attempts SET attempts = GREATEST(attempts - 1, 0)
         WHERE address = $1::text::inet",
        address.to_string(),
    )
    .execute(db)
    .await
    .map(|_| ())
}
