//! The fresh grant after an Unlock, when the activity's Lock removed the access on the target
//! (`activities.revoke_on_lock`): the same account is granted again with a new password,
//! which the session then shows. A fresh grant that fails ends the session as Failed with
//! the reason, which also queues the removal of whatever part of it was made.

use sqlx::PgPool;

use super::grant::{Job, apply};
use super::targets::{in_lanes, note, open_credential};
use crate::crypto::SecretBox;
use crate::db::provisioning_rounds as rounds;
use crate::db::sessions::{self, Actor, NewEvent};
use crate::domain::catalog::LoginMode;
use crate::domain::event::EventKind;
use crate::domain::provisioner::ProvisionerKind;
use crate::domain::status::Transition;
use crate::provision::command::Provisioners;

/// Grants afresh the unlocked sessions whose Lock took their access away.
pub(super) async fn regrant_on_targets(
    pool: &PgPool,
    secrets: &SecretBox,
    provisioners: &Provisioners,
) -> Result<usize, sqlx::Error> {
    in_lanes(|| regrant_one(pool, secrets, provisioners)).await
}

async fn regrant_one(
    pool: &PgPool,
    secrets: &SecretBox,
    provisioners: &Provisioners,
) -> Result<bool, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let Some(step) = rounds::claim_regrant(&mut tx).await? else {
        return Ok(false);
    };
    let secret = match step.provisioner {
        ProvisionerKind::LinuxSsh | ProvisionerKind::Postgresql => {
            open_credential(secrets, step.credential_id, step.sealed_secret.as_deref())
        }
        ProvisionerKind::Command | ProvisionerKind::Simulated => Ok(String::new()),
    };
    let password = match step.login_mode {
        LoginMode::Ephemeral | LoginMode::Managed => {
            Some(crate::domain::provision::generate_password())
        }
        LoginMode::Own => None,
    };
    let outcome = match secret {
        Ok(secret) => {
            let job = Job {
                session: step.session_id,
                provisioner: step.provisioner,
                host: &step.host,
                port: step.port,
                host_key: step.host_key.as_deref(),
                service_user: step.service_user.as_deref(),
                secret,
                mode: step.login_mode,
                account: &step.account,
                password,
                groups: &step.target_groups,
                database: step.database_name.as_deref(),
                command: step.provisioner_command.as_deref(),
                resource_name: &step.resource_name,
                activity_name: &step.activity_name,
                start: time::OffsetDateTime::now_utc(),
                ends_at: step.ends_at,
            };
            apply(&job, provisioners).await
        }
        Err(e) => Err(e),
    };
    match outcome {
        Ok((login, password, what, session_key)) => {
            let sealed = password
                .as_deref()
                .map(|p| secrets.seal(step.session_id, p));
            rounds::regrant_done(&mut tx, step.id, step.session_id, &login, sealed.as_deref())
                .await?;
            let sealed_key = session_key
                .as_deref()
                .map(|k| secrets.seal(step.session_id, k));
            sessions::set_session_key(&mut tx, step.session_id, sealed_key.as_deref()).await?;
            let comment = format!("Access restored after the unlock. {what}");
            note(&mut tx, step.session_id, EventKind::AccessGranted, &comment).await?;
            tracing::info!(session = %step.session_id, "access granted again after an unlock");
        }
        Err(e) => {
            let error = e.to_string();
            tracing::warn!(session = %step.session_id, error = %error, "fresh grant failed");
            rounds::regrant_failed(&mut tx, step.id, &error).await?;
            let reason = format!("Access could not be restored after the unlock: {error}.");
            let event = NewEvent::new(
                step.session_id,
                Actor::System,
                EventKind::ProvisioningFailed,
                &reason,
                None,
            );
            sessions::transition(&mut tx, Transition::ProvisioningFailed, event).await?;
        }
    }
    tx.commit().await?;
    Ok(true)
}
