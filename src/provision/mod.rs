//! Provisioners: what makes a session's access real on its target, and takes it away.
//!
//! A resource names its provisioner. `simulated` does nothing on the target (the demo's hosts,
//! said plainly wherever the account is shown). `linux_ssh` logs in to the target over SSH
//! with the resource's service credential and creates, rotates or extends accounts there
//! (`linux_ssh.rs`). Steps are driven by the worker (`crate::worker`), which records each one
//! in `provision_steps` so that any instance can resume or repeat it; every operation here is
//! idempotent for that reason (creating an account that exists is a repair, not a failure).

pub mod command;
pub mod keyscan;
pub mod linux_ssh;
pub mod postgresql;
pub mod session_key;
pub mod shell;

use std::time::Duration;

use crate::domain::catalog::LoginMode;

pub use crate::domain::provisioner::{ProvisionerKind, valid_name};

/// The target and how to log in to it, as recorded with the step.
#[derive(Debug, Clone)]
pub struct Target {
    pub host: String,
    pub port: u16,
    /// The pinned host key, `type base64`.
    pub host_key: String,
    /// The service account on the target.
    pub service_user: String,
    /// Its OpenSSH private key.
    pub private_key: String,
}

/// What a grant or revoke does to one session's login account.
#[derive(Debug, Clone)]
pub struct Change {
    pub mode: LoginMode,
    pub account: String,
    /// Groups the account joins for the session (and leaves at the end).
    pub groups: Vec<String>,
    /// The password to set (grant of ephemeral and managed accounts).
    pub password: Option<String>,
    /// The end of the session's window: an ephemeral account expires after it.
    pub until: Option<time::OffsetDateTime>,
    /// The session's own public key (`ssh-ed25519 base64`), installed as the ephemeral
    /// account's only authorized key; the gateway logs in with its private half.
    pub public_key: Option<String>,
}

/// Why a step failed; the text is shown to the requester and administrators, so it names
/// what failed and where, never a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StepError {
    #[error("the account name \"{0}\" is not a valid account name on a Linux target")]
    BadAccount(String),
    #[error("the group name \"{0}\" is not a valid group name on a Linux target")]
    BadGroup(String),
    #[error("the pinned host key of the resource is not a valid SSH public key")]
    BadHostKey,
    #[error("the host key of {0} does not match the pinned key (it may have been replaced)")]
    HostKeyChanged(String),
    #[error("could not log in to {0} with the service credential")]
    Denied(String),
    #[error("could not reach {0}: {1}")]
    Unreachable(String, String),
    #[error("no answer from {0} within {1} seconds")]
    Timeout(String, u64),
    #[error("on {0}: {1}")]
    Target(String, String),
    #[error("could not run the SSH client: {0}")]
    Client(String),
    #[error("the role name \"{0}\" is not a valid role name for a PostgreSQL target")]
    BadRole(String),
    #[error(
        "the postgresql provisioner makes ephemeral roles only; this activity's login mode is {0}"
    )]
    Mode(&'static str),
    #[error("no command named \"{0}\" in the provisioners file")]
    UnknownCommand(String),
    #[error("the command {0}: {1}")]
    Command(String, String),
    #[error("could not make the session's SSH key: {0}")]
    SessionKey(String),
}

/// How long one step may take on a target before it is given up (and retried, for revokes).
pub const STEP_TIMEOUT: Duration = Duration::from_secs(30);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_reads_back_from_its_stored_spelling_and_nothing_else_does() {
        for kind in ProvisionerKind::ALL {
            assert_eq!(ProvisionerKind::parse(kind.key()), Some(kind));
        }
        assert_eq!(ProvisionerKind::ALL.len(), 4);
        for bad in ["", "Linux_ssh", "ssh", "postgres", "command "] {
            assert_eq!(ProvisionerKind::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn account_names_are_what_useradd_accepts_and_no_shell_syntax() {
        for ok in ["pc-alice-1a2b3c4d", "_svc", "a", "deploy_2"] {
            assert!(valid_name(ok), "{ok}");
        }
        for bad in [
            "",
            "Alice",
            "-x",
            "1abc",
            "a b",
            "a;rm",
            "a$(id)",
            "a'b",
            "a\nb",
            "ab\u{200b}",
            &"a".repeat(33),
        ] {
            assert!(!valid_name(bad), "{bad:?}");
        }
    }
}
