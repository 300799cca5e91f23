//! Extensions on real targets: the role's VALID UNTIL, the ephemeral Linux account's expiry
//! or the command's `extend` follow a session's new end. A target that refuses keeps the old
//! end, and so does the session (with an event saying why).

use sqlx::PgPool;

use super::targets::{note, open_credential, postgres_server, rfc3339};
use crate::crypto::SecretBox;
use crate::db::provisioning;
use crate::domain::event::EventKind;
use crate::provision::command::{self, Provisioners};
use crate::provision::{ProvisionerKind, StepError};

/// Tells the targets of live sessions about a moved end (an extension): the role's VALID
/// UNTIL and the ephemeral Linux account's expiry follow the session's end, the command is
/// called with `extend`. A failure is not retried: it is recorded on the session for the
/// requester to read, and the session ends at the end the target accepted last.
pub(super) async fn extend_on_targets(
    pool: &PgPool,
    secrets: &SecretBox,
    provisioners: &Provisioners,
) -> Result<usize, sqlx::Error> {
    let mut done = 0;
    loop {
        let mut tx = pool.begin().await?;
        let Some(step) = provisioning::claim_extend(&mut tx).await? else {
            return Ok(done);
        };
        done += 1;
        let place = format!("{}:{}", step.host, step.port);
        let outcome = extend_one(&step, secrets, provisioners).await;
        match outcome {
            Ok(()) => {
                provisioning::extend_outcome(&mut tx, step.id, step.ends_at).await?;
                let until = rfc3339(step.ends_at);
                let what = match step.provisioner {
                    ProvisionerKind::Command => format!(
                        "The command {} moved the end of account {} to {until}.",
                        step.provisioner_command.as_deref().unwrap_or_default(),
                        step.account,
                    ),
                    ProvisionerKind::LinuxSsh => format!(
                        "Account {} on {place} now expires on {} (the session ends at {until}).",
                        step.account,
                        crate::provision::linux_ssh::expiry_date(step.ends_at)
                    ),
                    _ => format!(
                        "Role {} on {place} is now valid until {until}.",
                        step.account
                    ),
                };
                note(&mut tx, step.session_id, EventKind::AccessExtended, &what).await?;
            }
            Err(e) => {
                let error = e.to_string();
                tracing::warn!(session = %step.session_id, target = %place, error = %error,
                    "extension on the target failed; the session keeps its old end");
                let kept = crate::db::provisioning_rounds::extension_refused(
                    &mut tx,
                    step.id,
                    step.session_id,
                    step.ends_at,
                    &error,
                )
                .await?;
                let kept = kept.or(step.valid_until).map(rfc3339).unwrap_or_default();
                let comment = format!(
                    "The extension could not be made on the target: {error}. The session still ends at {kept}."
                );
                note(
                    &mut tx,
                    step.session_id,
                    EventKind::ExtensionFailed,
                    &comment,
                )
                .await?;
            }
        }
        tx.commit().await?;
    }
}

/// Tells one target about a session's new end.
async fn extend_one(
    step: &provisioning::ToExtend,
    secrets: &SecretBox,
    provisioners: &Provisioners,
) -> Result<(), StepError> {
    if step.provisioner == ProvisionerKind::Command {
        let name = step.provisioner_command.clone().unwrap_or_default();
        let call = command::Call {
            action: "extend",
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
        return command::run(provisioners, &name, &call).await.map(|_| ());
    }
    let secret = open_credential(secrets, step.credential_id, step.sealed_secret.as_deref())?;
    if step.provisioner == ProvisionerKind::LinuxSsh {
        let target = crate::provision::Target {
            host: step.host.clone(),
            port: u16::try_from(step.port).unwrap_or(22),
            host_key: step.host_key.clone().unwrap_or_default(),
            service_user: step.service_user.clone().unwrap_or_default(),
            private_key: secret,
        };
        return crate::provision::linux_ssh::extend(&target, &step.account, step.ends_at)
            .await
            .map(|_| ());
    }
    let server = postgres_server(
        &step.host,
        step.port,
        step.database_name.as_deref(),
        step.service_user.as_deref(),
        secret,
    );
    crate::provision::postgresql::extend(&server, &step.account, step.ends_at).await
}
