//! Figures for `/metrics`, read at scrape time.

use std::time::Duration;

use sqlx::PgPool;

/// Sessions by status (every status, zero included).
pub async fn sessions_by_status(pool: &PgPool) -> Result<Vec<(String, i64)>, sqlx::Error> {
    let rows = sqlx::query!(
        r#"SELECT e.status::text AS "status!", count(s.id) AS "count!"
         FROM unnest(enum_range(NULL::session_status)) AS e(status)
         LEFT JOIN activity_sessions s ON s.status = e.status
         GROUP BY e.status
         ORDER BY e.status"#,
    )
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(|r| (r.status, r.count)).collect())
}

/// How long the longest-waiting session that is due a timed transition has waited: zero when
/// the worker is keeping up. Due since: the start time (Pending), the moment it entered
/// Provisioning, the end of its window (usable statuses), or the decision deadline or end of
/// the requested window, whichever came first (Waiting for Approval). Reads the live-status
/// index only.
pub async fn worker_lag(pool: &PgPool) -> Result<Duration, sqlx::Error> {
    // Runtime SQL: the live statuses are rendered from the domain (status_sql) to match the
    // partial index.
    let seconds: Option<f64> = sqlx::query_scalar(&format!(
        "SELECT EXTRACT(EPOCH FROM now() - min(due))::float8
         FROM (
             SELECT CASE s.status
                 WHEN 'pending' THEN s.requested_start
                 WHEN 'provisioning' THEN s.updated_at
                 WHEN 'waiting_for_approval' THEN s.approval_due_at
                 ELSE s.ends_at
             END AS due
             FROM activity_sessions s
             WHERE s.status IN {live}
         ) AS live
         WHERE due <= now()",
        live = *super::status_sql::LIVE
    ))
    .fetch_one(pool)
    .await?;
    Ok(Duration::from_secs_f64(seconds.unwrap_or(0.0).max(0.0)))
}
