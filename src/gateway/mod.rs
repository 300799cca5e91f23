//! The SSH gateway: an SSH server inside Portcullis. A user logs in with
//! `ssh -p 2222 <connection string>@<gateway>` as themselves (a public key registered on
//! their account), the gateway checks the session ([`checks`]) and opens the session's
//! login account on the target ([`upstream`], which the browser terminal reuses), records
//! the connection and closes it when the session stops allowing it.

pub mod checks;
pub mod ciphers;
mod password;
mod server;
pub mod upstream;

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use rand::RngCore;
use russh::keys::ssh_key::LineEnding;
use russh::keys::ssh_key::private::{Ed25519Keypair, KeypairData};
use russh::keys::{HashAlg, PrivateKey};
use tokio::net::TcpListener;

use crate::state::AppState;

/// A refusal, in one line the ssh client prints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal(pub String);

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum HostKeyError {
    #[error("the gateway host key {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the gateway host key {path} is not an OpenSSH private key: {reason}")]
    Invalid { path: PathBuf, reason: String },
}

/// The gateway's host key file next to the sealing key file.
pub fn host_key_path(key_file: &Path) -> PathBuf {
    key_file.with_file_name("ssh_host_ed25519_key")
}

/// Loads the gateway's ed25519 host key, creating it (0600) on first start.
pub fn load_or_create_host_key(path: &Path) -> Result<PrivateKey, HostKeyError> {
    let io = |source| HostKeyError::Io {
        path: path.to_owned(),
        source,
    };
    let invalid = |reason: String| HostKeyError::Invalid {
        path: path.to_owned(),
        reason,
    };
    match std::fs::read_to_string(path) {
        Ok(text) => return PrivateKey::from_openssh(&text).map_err(|e| invalid(e.to_string())),
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io(e)),
        Err(_) => {}
    }
    let mut seed = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut seed);
    let pair = Ed25519Keypair::from_seed(&seed);
    let key = PrivateKey::new(KeypairData::Ed25519(pair), "portcullis gateway")
        .map_err(|e| invalid(e.to_string()))?;
    let text = key
        .to_openssh(LineEnding::LF)
        .map_err(|e| invalid(e.to_string()))?;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(io)?;
    file.write_all(text.as_bytes()).map_err(io)?;
    Ok(key)
}

/// The host key's fingerprint as `ssh` and `ssh-keygen -lf` print it (`SHA256:...`).
pub fn fingerprint(key: &PrivateKey) -> String {
    key.public_key().fingerprint(HashAlg::Sha256).to_string()
}

/// Serves the gateway on `listener` until the task is dropped or aborted, after recording its
/// port and host key fingerprint for the Connect page.
pub async fn serve(app: AppState, listener: TcpListener, host_key: PrivateKey) {
    let port = listener.local_addr().map(|a| a.port()).unwrap_or_default();
    if let Err(e) = crate::db::gateway::announce(&app.db, port, &fingerprint(&host_key)).await {
        tracing::warn!(error = %e, "the Connect page will not show the gateway's host key");
    }
    server::run(app, listener, host_key).await;
}

/// Starts the gateway on its own task.
pub fn spawn(
    app: AppState,
    listener: TcpListener,
    host_key: PrivateKey,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(serve(app, listener, host_key))
}
