//! Grants, extensions and revokes on real targets (`crate::provision`), several at a time,
//! each in its own transaction holding its row, so that instances never run the same step
//! at once and a step interrupted by a crash is found and repeated (every step is
//! idempotent).

use std::time::Duration;

use sqlx::PgPool;
use uuid::Uuid;

use crate::crypto::SecretBox;
use crate::db::provisioning;
use crate::db::sessions::{self, Actor, NewEvent};
use crate::domain::catalog::LoginMode;
use crate::domain::event::EventKind;
use crate::domain::provision;
use crate::domain::status::Transition;
use crate::provision::command::{self, Provisioners};
use crate::provision::{ProvisionerKind, StepError};

/// How many grants or revokes one instance runs on targets at once.
const TARGET_CONCURRENCY: usize = 8;

/// Grants the sessions in Provisioning whose resource has a real provisioner, several at a
/// time, each in its own transaction.
pub(super) async fn grant_on_targets(
    pool: &PgPool,
    secrets: &SecretBox,
    provisioners: &Provisioners,
) -> Result<usize, sqlx::Error> {
    in_lanes(|| grant_one(pool, secrets, provisioners)).await
}

/// Runs `step` in [`TARGET_CONCURRENCY`] lanes, each until `step` finds nothing more to do
/// (answers false); how many steps were done.
pub(super) async fn in_lanes<F, Fut>(step: F) -> Result<usize, sqlx::Error>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<bool, sqlx::Error>>,
{
    let lanes = (0..TARGET_CONCURRENCY).map(|_| async {
        let mut done = 0;
        while step().await? {
            done += 1;
        }
        Ok::<usize, sqlx::Error>(done)
    });
    let mut total = 0;
    for lane in futures_util::future::join_all(lanes).await {
        total += lane?;
    }
    Ok(total)
}

pub(super) fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// Opens the service credential of a step, if it has one.
pub(super) fn open_credential(
    secrets: &SecretBox,
    credential: Option<Uuid>,
    sealed: Option<&[u8]>,
) -> Result<String, StepError> {
    match (credential, sealed) {
        (Some(id), Some(sealed)) => secrets
            .open(id, sealed)
            .map_err(|e| StepError::Client(format!("the service credential: {e}"))),
        _ => Err(StepError::Client("the service credential is gone".into())),
    }
}

/// Everything a grant can settle before the target is contacted: the account's name and
/// password, and the service credential's secret (empty for commands). What is refused here
/// records no step: a revoke of something never attempted could only do harm (drop a role
/// that was not ours, run a command for nothing).
fn before_the_target(
    s: &provisioning::ToGrant,
    secrets: &SecretBox,
    provisioners: &Provisioners,
) -> Result<(provision::Account, String), String> {
    let account = provision::prepare(
        s.login_mode,
        s.login_template.as_deref(),
        &s.requester_username,
        s.id,
        &s.resource_name,
    )
    .map_err(|e| e.to_string())?;
    let refused = match s.provisioner {
        ProvisionerKind::Postgresql if s.login_mode != LoginMode::Ephemeral => {
            Some(StepError::Mode(s.login_mode.label()))
        }
        ProvisionerKind::Postgresql => {
            crate::provision::postgresql::check(&account.name, &s.target_groups).err()
        }
        ProvisionerKind::Command => match s.provisioner_command.as_deref() {
            Some(name) if provisioners.commands.contains_key(name) => None,
            name => Some(StepError::UnknownCommand(
                name.unwrap_or_default().to_owned(),
            )),
        },
        ProvisionerKind::LinuxSsh | ProvisionerKind::Simulated => None,
    };
    if let Some(e) = refused {
        return Err(e.to_string());
    }
    let secret = match s.provisioner {
        ProvisionerKind::LinuxSsh | ProvisionerKind::Postgresql => {
            open_credential(secrets, s.credential_id, s.sealed_secret.as_deref())
                .map_err(|e| e.to_string())?
        }
        ProvisionerKind::Command | ProvisionerKind::Simulated => String::new(),
    };
    Ok((account, secret))
}

/// Claims and grants one session; false when none was waiting.
async fn grant_one(
    pool: &PgPool,
    secrets: &SecretBox,
    provisioners: &Provisioners,
) -> Result<bool, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let Some(s) = provisioning::claim_grant(&mut tx).await? else {
        return Ok(false);
    };
    // Nothing is made on the target for a grant that no longer holds.
    if crate::db::grants::revoke_if_lapsed(&mut tx, s.id)
        .await?
        .is_some()
    {
        tx.commit().await?;
        return Ok(true);
    }
    let place = format!("{}:{}", s.host, s.port);
    let (account, secret) = match before_the_target(&s, secrets, provisioners) {
        Ok(ready) => ready,
        Err(reason) => {
            fail_grant(&mut tx, s.id, &format!("Provisioning failed: {reason}.")).await?;
            tx.commit().await?;
            return Ok(true);
        }
    };
    // Committed on its own connection first: should this instance die during the grant, the
    // session's end still finds this step and removes what was made.
    provisioning::record_grant_intent(
        pool,
        &provisioning::StepRecord {
            session: s.id,
            provisioner: s.provisioner,
            credential: s.credential_id,
            host: &s.host,
            port: s.port,
            host_key: s.host_key.as_deref(),
            mode: s.login_mode,
            account: &account.name,
            groups: &s.target_groups,
            database_name: s.database_name.as_deref(),
            command: s.provisioner_command.as_deref(),
            owned_objects: s.owned_objects,
        },
    )
    .await?;
    let outcome = super::grant::apply(
        &super::grant::Job {
            session: s.id,
            provisioner: s.provisioner,
            host: &s.host,
            port: s.port,
            host_key: s.host_key.as_deref(),
            service_user: s.service_user.as_deref(),
            secret,
            mode: s.login_mode,
            account: &account.name,
            password: account.password.clone(),
            groups: &s.target_groups,
            database: s.database_name.as_deref(),
            command: s.provisioner_command.as_deref(),
            resource_name: &s.resource_name,
            activity_name: &s.activity_name,
            start: s.requested_start.max(time::OffsetDateTime::now_utc()),
            ends_at: s.ends_at,
        },
        provisioners,
    )
    .await;
    match outcome {
        Ok((login, password, what, session_key)) => {
            provisioning::finish_grant(&mut tx, s.id, None).await?;
            note(&mut tx, s.id, EventKind::AccessGranted, &what).await?;
            let sealed = password.as_deref().map(|p| secrets.seal(s.id, p));
            sessions::make_available(&mut tx, s.id, &login, sealed.as_deref()).await?;
            let sealed_key = session_key.as_deref().map(|k| secrets.seal(s.id, k));
            sessions::set_session_key(&mut tx, s.id, sealed_key.as_deref()).await?;
            provisioning::grant_applied(&mut tx, s.id, &login).await?;
            tx.commit().await?;
            tracing::info!(session = %s.id, target = %place, "access granted on the target");
        }
        Err(e) => {
            tracing::warn!(session = %s.id, target = %place, error = %e, "grant failed");
            provisioning::finish_grant(&mut tx, s.id, Some(&e.to_string())).await?;
            // The end queues a revoke of whatever part of the grant was made.
            fail_grant(&mut tx, s.id, &format!("Provisioning failed: {e}.")).await?;
            tx.commit().await?;
        }
    }
    Ok(true)
}

pub(super) fn postgres_server(
    host: &str,
    port: i32,
    database: Option<&str>,
    service_user: Option<&str>,
    password: String,
) -> crate::provision::postgresql::Server {
    crate::provision::postgresql::Server {
        host: host.to_owned(),
        port: u16::try_from(port).unwrap_or(5432),
        database: database.unwrap_or("postgres").to_owned(),
        service_user: service_user.unwrap_or_default().to_owned(),
        password,
    }
}

/// Records what the system did on a session's target, without a change of status.
pub(super) async fn note(
    tx: &mut sqlx::PgConnection,
    session: Uuid,
    kind: EventKind,
    comment: &str,
) -> Result<(), sqlx::Error> {
    sessions::record(
        tx,
        &NewEvent::new(session, Actor::System, kind, comment, None),
    )
    .await
}

async fn fail_grant(
    tx: &mut sqlx::PgConnection,
    session: Uuid,
    reason: &str,
) -> Result<(), sqlx::Error> {
    let event = NewEvent::new(
        session,
        Actor::System,
        EventKind::ProvisioningFailed,
        reason,
        None,
    );
    sessions::transition(tx, Transition::ProvisioningFailed, event).await?;
    Ok(())
}

/// Removes the access of ended sessions from their targets, several at a time; a failure is
/// retried with backoff until the target confirms.
pub(super) async fn revoke_on_targets(
    pool: &PgPool,
    secrets: &SecretBox,
    provisioners: &Provisioners,
) -> Result<usize, sqlx::Error> {
    in_lanes(|| revoke_one(pool, secrets, provisioners)).await
}

/// The wait before the next try of a revoke that failed `attempts` times: 2 s doubling, at
/// most five minutes.
pub fn revoke_backoff(attempts: i32) -> Duration {
    let exponent = u32::try_from(attempts.clamp(0, 16)).unwrap_or(16);
    Duration::from_secs(2u64.saturating_pow(exponent).min(300))
}

/// Claims and runs one due revoke; false when none was due.
async fn revoke_one(
    pool: &PgPool,
    secrets: &SecretBox,
    provisioners: &Provisioners,
) -> Result<bool, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let Some(step) = provisioning::claim_revoke(&mut tx).await? else {
        return Ok(false);
    };
    let place = format!("{}:{}", step.host, step.port);
    let outcome = match step.provisioner {
        ProvisionerKind::Simulated => Ok(String::new()),
        ProvisionerKind::LinuxSsh => {
            match open_credential(secrets, step.credential_id, step.sealed_secret.as_deref()) {
                Ok(private_key) => {
                    let target = crate::provision::Target {
                        host: step.host.clone(),
                        port: u16::try_from(step.port).unwrap_or(22),
                        host_key: step.host_key.clone().unwrap_or_default(),
                        service_user: step.service_user.clone().unwrap_or_default(),
                        private_key,
                    };
                    let change = crate::provision::Change {
                        mode: step.login_mode,
                        account: step.account.clone(),
                        groups: step.target_groups.clone(),
                        password: None,
                        until: None,
                        public_key: None,
                    };
                    crate::provision::linux_ssh::revoke(&target, &change).await
                }
                Err(e) => Err(e),
            }
        }
        ProvisionerKind::Postgresql => {
            match open_credential(secrets, step.credential_id, step.sealed_secret.as_deref()) {
                Ok(password) => {
                    let server = postgres_server(
                        &step.host,
                        step.port,
                        step.database_name.as_deref(),
                        step.service_user.as_deref(),
                        password,
                    );
                    crate::provision::postgresql::revoke(&server, &step.account, step.owned_objects)
                        .await
                }
                Err(e) => Err(e),
            }
        }
        ProvisionerKind::Command => {
            let name = step.provisioner_command.clone().unwrap_or_default();
            let call = command::Call {
                action: "revoke",
                session: step.session_id,
                resource: command::Resource {
                    name: &step.resource_name,
                    address: &step.host,
                    port: step.port,
                },
                account: &step.account,
                mode: step.login_mode.key(),
                activity: &step.activity_name,
                groups: &step.target_groups,
                window: command::Window {
                    start: step.requested_start,
                    end: step.ends_at,
                },
            };
            command::run(provisioners, &name, &call)
                .await
                .map(|_| String::new())
        }
    };
    match outcome {
        Ok(_) => {
            provisioning::revoke_done(&mut tx, step.id).await?;
            let what = match (step.provisioner, step.login_mode) {
                (ProvisionerKind::Postgresql, _) => {
                    format!("Dropped role {} from {place}.", step.account)
                }
                (ProvisionerKind::Command, _) => format!(
                    "The command {} removed the access of account {}.",
                    step.provisioner_command.as_deref().unwrap_or_default(),
                    step.account
                ),
                (_, LoginMode::Ephemeral) => {
                    format!("Removed account {} from {place}.", step.account)
                }
                (_, LoginMode::Managed) => format!(
                    "Set a new, unrevealed password for account {} on {place}.",
                    step.account
                ),
                (_, LoginMode::Own) => format!(
                    "Took back the access of account {} on {place}.",
                    step.account
                ),
            };
            note(&mut tx, step.session_id, EventKind::AccessRemoved, &what).await?;
            tracing::info!(session = %step.session_id, target = %place, "access removed from the target");
        }
        Err(e) => {
            let error = e.to_string();
            let retry_in = revoke_backoff(step.attempts + 1);
            tracing::warn!(session = %step.session_id, target = %place, error = %error,
                retry_in_seconds = retry_in.as_secs(), "access removal failed; will retry");
            provisioning::revoke_failed(&mut tx, step.id, &error, retry_in).await?;
            // The first failure goes on the record; later ones only change the pending state
            // that administrators see, so a long outage does not flood the log.
            if step.attempts == 0 {
                let comment =
                    format!("Access removal pending: {error}. Retrying until it succeeds.");
                note(
                    &mut tx,
                    step.session_id,
                    EventKind::AccessRemovalFailed,
                    &comment,
                )
                .await?;
            }
        }
    }
    tx.commit().await?;
    Ok(true)
}
