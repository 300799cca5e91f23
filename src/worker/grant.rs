//! One grant on a real target, the same for a session's first grant and for the fresh grant
//! after an Unlock (`regrant.rs`): the account and password the session ends up with, and
//! what the record says was done.

use time::OffsetDateTime;
use uuid::Uuid;

use super::targets::{postgres_server, rfc3339};
use crate::domain::catalog::LoginMode;
use crate::provision::command::{self, Provisioners};
use crate::provision::{ProvisionerKind, StepError};

/// What a grant needs: the target as recorded, the opened service credential, the account.
pub(super) struct Job<'a> {
    pub session: Uuid,
    pub provisioner: ProvisionerKind,
    pub host: &'a str,
    pub port: i32,
    pub host_key: Option<&'a str>,
    pub service_user: Option<&'a str>,
    /// The service credential's secret (empty for commands).
    pub secret: String,
    pub mode: LoginMode,
    pub account: &'a str,
    pub password: Option<String>,
    pub groups: &'a [String],
    pub database: Option<&'a str>,
    pub command: Option<&'a str>,
    pub resource_name: &'a str,
    pub activity_name: &'a str,
    pub start: OffsetDateTime,
    pub ends_at: OffsetDateTime,
}

/// The login account, its password, what was done (for the session's events), and the
/// private half of the session's SSH key (linux_ssh ephemeral accounts).
pub(super) type Granted = (String, Option<String>, String, Option<String>);

/// Makes the access real on the job's target.
pub(super) async fn apply(
    job: &Job<'_>,
    provisioners: &Provisioners,
) -> Result<Granted, StepError> {
    let place = format!("{}:{}", job.host, job.port);
    let account = job.account.to_owned();
    let groups = if job.groups.is_empty() {
        String::new()
    } else {
        format!(", in groups {}", job.groups.join(", "))
    };
    match job.provisioner {
        ProvisionerKind::LinuxSsh => {
            let target = crate::provision::Target {
                host: job.host.to_owned(),
                port: u16::try_from(job.port).unwrap_or(22),
                host_key: job.host_key.unwrap_or_default().to_owned(),
                service_user: job.service_user.unwrap_or_default().to_owned(),
                private_key: job.secret.clone(),
            };
            // An ephemeral account gets a key pair of its own, made afresh at every grant.
            let session_key = match job.mode {
                LoginMode::Ephemeral => Some(crate::provision::session_key::generate()?),
                LoginMode::Managed | LoginMode::Own => None,
            };
            let (private_key, public_key) = session_key.unzip();
            let change = crate::provision::Change {
                mode: job.mode,
                account: account.clone(),
                groups: job.groups.to_vec(),
                password: job.password.clone(),
                until: Some(job.ends_at),
                public_key,
            };
            crate::provision::linux_ssh::grant(&target, &change).await?;
            let what = match job.mode {
                LoginMode::Ephemeral => format!(
                    "Created account {account} on {place}{groups}, expiring on {}.",
                    crate::provision::linux_ssh::expiry_date(job.ends_at)
                ),
                LoginMode::Managed => {
                    format!("Set a new password for account {account} on {place}{groups}.")
                }
                LoginMode::Own => format!("Gave account {account} access on {place}{groups}."),
            };
            Ok((account, job.password.clone(), what, private_key))
        }
        ProvisionerKind::Postgresql => {
            let server = postgres_server(
                job.host,
                job.port,
                job.database,
                job.service_user,
                job.secret.clone(),
            );
            let Some(password) = job.password.as_deref() else {
                return Err(StepError::Mode(job.mode.label()));
            };
            crate::provision::postgresql::grant(
                &server,
                &account,
                password,
                job.ends_at,
                job.groups,
            )
            .await?;
            let roles = if job.groups.is_empty() {
                String::new()
            } else {
                format!(", in roles {}", job.groups.join(", "))
            };
            let what = format!(
                "Created role {account} on {place}{roles}, valid until {}.",
                rfc3339(job.ends_at)
            );
            Ok((account, job.password.clone(), what, None))
        }
        ProvisionerKind::Command => {
            let name = job.command.unwrap_or_default();
            let call = command::Call {
                action: "grant",
                session: job.session,
                resource: command::Resource {
                    name: job.resource_name,
                    address: job.host,
                    port: job.port,
                },
                account: &account,
                mode: job.mode.key(),
                activity: job.activity_name,
                groups: job.groups,
                window: command::Window {
                    start: job.start,
                    end: job.ends_at,
                },
            };
            let answer = command::run(provisioners, name, &call).await?;
            let login = answer.login_account.unwrap_or_else(|| account.clone());
            let what = format!("The command {name} granted account {login}{groups}.");
            Ok((
                login,
                answer.password.or_else(|| job.password.clone()),
                what,
                None,
            ))
        }
        // Simulated targets are prepared without the worker's target steps.
        ProvisionerKind::Simulated => Ok((account, job.password.clone(), String::new(), None)),
    }
}
