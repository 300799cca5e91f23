//! Recordings housekeeping, beside the worker: deletes recordings older than the retention
//! (`PORTCULLIS_RECORDING_RETENTION_DAYS`), closes those an instance left open when it
//! stopped without finishing them, and compacts ended recordings: a live connection's chunks
//! are stored uncompressed, to keep compression off the connection's path, and are compressed
//! here once it has ended.

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
/// A recording is compacted this long after it ended (its last chunk is surely written).
const SETTLE_SECONDS: i32 = 30;
/// Chunks compacted per statement (up to a MiB each).
const COMPACT_BATCH: i32 = 16;
/// Chunks compacted per pass at most, so that a backlog spreads over several minutes.
const COMPACT_BUDGET: i32 = 512;

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
    compact(pool, SETTLE_SECONDS, COMPACT_BUDGET).await?;
    Ok(deleted)
}

/// Compacts recordings that ended `settle_seconds` ago or more, oldest first, up to about
/// `budget` chunks; how many recordings were finished.
pub async fn compact(pool: &PgPool, settle_seconds: i32, budget: i32) -> Result<u32, sqlx::Error> {
    let (mut left, mut finished) = (budget, 0);
    while left > 0 {
        let Some((id, first)) = recordings::next_to_compact(pool, settle_seconds).await? else {
            break;
        };
        let mut from = Some(first);
        while let Some(seq) = from {
            if left <= 0 {
                // The next pass goes on from the first chunk not done.
                return Ok(finished);
            }
            from = recordings::compact_some(pool, id, seq, COMPACT_BATCH).await?;
            left -= COMPACT_BATCH;
        }
        finished += 1;
    }
    Ok(finished)
}
