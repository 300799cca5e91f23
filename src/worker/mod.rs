//! The clock and the simulated provisioner: timed transitions, run every few seconds inside
//! each server. Rows are claimed with `FOR UPDATE SKIP LOCKED`, so several instances against
//! one database never make the same transition twice.

use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;
use tokio::sync::watch;
use uuid::Uuid;

use crate::crypto::SecretBox;
use crate::db::sessions::{self, Actor, NewEvent};
use crate::db::status_sql;
use crate::domain::event::EventKind;
use crate::domain::provision;
use crate::domain::status::Transition;
use crate::provision::command::Provisioners;

mod extend;
mod grant;
pub mod recordings;
mod regrant;
mod targets;
use extend::extend_on_targets;
pub use targets::revoke_backoff;
use targets::{grant_on_targets, revoke_on_targets};

/// How often the worker looks for due sessions.
pub const INTERVAL: Duration = Duration::from_secs(2);
const BATCH: i64 = 200;

/// Runs until `stop` changes.
pub async fn run(
    pool: PgPool,
    secrets: SecretBox,
    provisioners: Arc<Provisioners>,
    mut stop: watch::Receiver<bool>,
) {
    let mut ticker = tokio::time::interval(INTERVAL);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {
                if let Err(e) = tick_with(&pool, &secrets, &provisioners).await {
                    if crate::db::is_unavailable(&e) {
                        tracing::warn!(error = %e, "worker: database unavailable");
                    } else {
                        tracing::error!(error = %e, "worker tick failed");
                    }
                }
            }
            _ = stop.changed() => break,
        }
    }
    tracing::info!("worker stopped");
}

/// One pass with no command provisioners declared.
pub async fn tick(pool: &PgPool, secrets: &SecretBox) -> Result<(), sqlx::Error> {
    tick_with(pool, secrets, &Provisioners::default()).await
}

/// One pass: start what is due, provision, end what is over, expire what waited too long.
pub async fn tick_with(
    pool: &PgPool,
    secrets: &SecretBox,
    provisioners: &Provisioners,
) -> Result<(), sqlx::Error> {
    timed(
        pool,
        &status_sql::due::START,
        Transition::Start,
        EventKind::Started,
        "The scheduled start time came.",
    )
    .await?;
    provision(pool, secrets, None).await?;
    grant_on_targets(pool, secrets, provisioners).await?;
    timed(
        pool,
        &status_sql::due::END,
        Transition::Complete,
        EventKind::WindowEnded,
        "The session window ended.",
    )
    .await?;
    timed(
        pool,
        &status_sql::due::EXPIRY,
        Transition::Expire,
        EventKind::Expired,
        "No decision came in time.",
    )
    .await?;
    extend_on_targets(pool, secrets, provisioners).await?;
    revoke_on_targets(pool, secrets, provisioners).await?;
    regrant::regrant_on_targets(pool, secrets, provisioners).await?;
    Ok(())
}

async fn timed(
    pool: &PgPool,
    condition: &str,
    transition: Transition,
    kind: EventKind,
    comment: &str,
) -> Result<usize, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let due = sessions::claim_due(&mut tx, condition, BATCH).await?;
    let mut moved = 0;
    for (id, _) in &due {
        // Starting grants access: a session whose policy no longer grants it ends instead.
        if transition == Transition::Start
            && crate::db::grants::revoke_if_lapsed(&mut tx, *id)
                .await?
                .is_some()
        {
            continue;
        }
        let event = NewEvent::new(*id, Actor::System, kind, comment, None);
        if sessions::transition(&mut tx, transition, event)
            .await?
            .done()
        {
            moved += 1;
        }
    }
    tx.commit().await?;
    if moved > 0 {
        tracing::info!(kind = kind.key(), moved, "timed transitions");
    }
    Ok(moved)
}

/// Prepares the login accounts of sessions in Provisioning on simulated targets (only those
/// in `only`, if given): Available with the account and its sealed password, or Failed with
/// the reason; Canceled when the grant no longer holds. Returns how many were prepared.
/// Nothing leaves the database, so this also runs inside the request that made the sessions;
/// real targets are left to the worker (`grant_on_targets`).
pub async fn provision(
    pool: &PgPool,
    secrets: &SecretBox,
    only: Option<&[Uuid]>,
) -> Result<usize, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let claimed = sessions::claim_provisioning(&mut tx, only, BATCH).await?;
    let mut prepared = 0;
    for s in &claimed {
        // Provisioning makes the account: only while the grant holds (the worker's own start
        // checked it, but an approval or a Finish a moment ago may race a policy change).
        if crate::db::grants::revoke_if_lapsed(&mut tx, s.id)
            .await?
            .is_some()
        {
            continue;
        }
        prepared += 1;
        match provision::prepare(
            s.login_mode,
            s.login_template.as_deref(),
            &s.requester_username,
            s.id,
            &s.resource_name,
        ) {
            Ok(account) => {
                let sealed = account.password.as_deref().map(|p| secrets.seal(s.id, p));
                sessions::make_available(&mut tx, s.id, &account.name, sealed.as_deref()).await?;
            }
            Err(e) => {
                let reason = format!("Provisioning failed: {e}.");
                let event = NewEvent::new(
                    s.id,
                    Actor::System,
                    EventKind::ProvisioningFailed,
                    &reason,
                    None,
                );
                sessions::transition(&mut tx, Transition::ProvisioningFailed, event).await?;
            }
        }
    }
    tx.commit().await?;
    Ok(prepared)
}
