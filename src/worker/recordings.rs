//! Recordings housekeeping, beside the worker: deletes recordings older than the retention
//! (`PORTCULLIS_RECORDING_RETENTION_DAYS`) and closes those an instance left open when it
//! stopped without finishing them.

use std::time::Duration;

use sqlx::PgPool;
use tokio::sync::watch;

use crate::db::recordings;

/// How often the housekeeping runs.
const INTERVAL: Duration = Duration::from_secs(60);
/// Recordings deleted per statement, so one pass never holds a long lock.
const BATCH: i64 = 500;
/// A recording without a chunk for this long, and not ended, was left by a stopped instance.
pub const ABANDONED_MINUTES: i32 = 10;

/// Runs until `stop` changes.
pub async fn run(pool: PgPool, retention_days: u32, mut stop: watch::Receiver<bool>) {
    let mut ticker = tokio::time::interval(INTERVAL);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {
                if let Err(error) = tick(&pool, retention_days).await {
                    tracing::warn!(%error, "recordings housekeeping failed");
                }
            }
            _ = stop.changed() => break,
        }
    }
}

/// One pass: close the abandoned recordings, then delete the expired ones; how many were
/// deleted.
pub async fn tick(pool: &PgPool, retention_days: u32) -> Result<u64, sqlx::Error> {
    let closed = recordings::close_abandoned(pool, ABANDONED_MINUTES).await?;
    if closed > 0 {
        tracing::info!(closed, "closed recordings left open by a stopped instance");
    }
    let mut deleted = 0;
    loop {
        let n = recordings::prune(pool, retention_days, BATCH).await?;
        deleted += n;
        if n < BATCH as u64 {
            break;
        }
    }
    if deleted > 0 {
        tracing::info!(deleted, retention_days, "deleted expired recordings");
    }
    Ok(deleted)
}
