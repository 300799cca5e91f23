//! Fetching a target's SSH host keys on first contact (`ssh-keyscan`), for the administrator
//! to check their fingerprint and pin one on the resource. Nothing is trusted from this: the
//! key is only used once an administrator saves it.

use std::process::Stdio;
use std::time::Duration;

use crate::domain::target_access::{fingerprint, parse_host_key};
use crate::provision::linux_ssh::valid_host;

/// A host key the target offered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundKey {
    /// `type base64`, as pinned.
    pub key: String,
    /// `SHA256:...`, as OpenSSH prints it.
    pub fingerprint: String,
}

/// How long `ssh-keyscan` waits for the target (its `-T`); the whole scan is cut off a little
/// after, so a request never hangs on a silent host.
const WAIT_SECONDS: u64 = 5;

/// The host keys `host:port` offers, Ed25519 first; or why there are none, for the form.
pub async fn scan(host: &str, port: u16) -> Result<Vec<FoundKey>, String> {
    if !valid_host(host) {
        return Err("Give the resource's address (a DNS name or IP address) first.".into());
    }
    // Arguments, never a shell: the host is checked above and cannot be read as an option.
    let child = tokio::process::Command::new("ssh-keyscan")
        .args(["-T", &WAIT_SECONDS.to_string(), "-p", &port.to_string()])
        .args(["-t", "ed25519,ecdsa,rsa", host])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("Could not run ssh-keyscan: {e}."))?;
    let output = tokio::time::timeout(
        Duration::from_secs(WAIT_SECONDS + 3),
        child.wait_with_output(),
    )
    .await
    .map_err(|_| format!("No answer from {host}:{port} within {WAIT_SECONDS} seconds."))?
    .map_err(|e| format!("Could not run ssh-keyscan: {e}."))?;
    let mut keys: Vec<FoundKey> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| parse_host_key(l).ok())
        .filter_map(|key| fingerprint(&key).map(|fingerprint| FoundKey { key, fingerprint }))
        .collect();
    keys.dedup();
    keys.sort_by_key(|k| !k.key.starts_with("ssh-ed25519"));
    if keys.is_empty() {
        return Err(format!(
            "{host}:{port} offered no SSH host key (is an SSH server listening there?)."
        ));
    }
    Ok(keys)
}
