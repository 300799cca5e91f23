//! The `linux_ssh` provisioner: logs in to the target with the system's OpenSSH client and
//! the resource's service credential, and runs a short POSIX shell script read from standard
//! input (`sh -s`, through `sudo -n` unless the service user is root).
//!
//! Why the OpenSSH client rather than an SSH library: it is the client every Linux
//! administrator already trusts and audits, it enforces the pinned host key itself
//! (`StrictHostKeyChecking=yes` against a known-hosts file holding only that key), and the
//! secrets never reach its command line: the private key sits in a file readable by us alone
//! for the length of the step, and passwords travel inside the script on standard input.
//!
//! Every script is idempotent, so a step repeated after a crash repairs rather than fails.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::process::Stdio;

use time::OffsetDateTime;
use tokio::io::AsyncWriteExt;

use super::shell::quote;
use super::{Change, STEP_TIMEOUT, StepError, Target, valid_name};
use crate::domain::catalog::LoginMode;

/// Makes the session's access real: creates the ephemeral account (or repairs it), sets the
/// managed account's password, and adds the account to the activity's groups.
pub async fn grant(target: &Target, change: &Change) -> Result<String, StepError> {
    run(target, &grant_script(change)?).await
}

/// Takes the session's access away: removes the ephemeral account with its processes and
/// home, sets a fresh unknown password on the managed account, and takes the account out of
/// the activity's groups.
pub async fn revoke(target: &Target, change: &Change) -> Result<String, StepError> {
    run(target, &revoke_script(change)?).await
}

/// Moves the expiry of an ephemeral account to follow the session's new end (an extension).
pub async fn extend(
    target: &Target,
    account: &str,
    until: OffsetDateTime,
) -> Result<String, StepError> {
    run(target, &extend_script(account, until)?).await
}

/// The day an account ending at `until` expires on: Linux counts expiry in whole days (from
/// the start of the day, UTC), so the day after the end keeps the account usable to its end.
pub fn expiry_date(until: OffsetDateTime) -> String {
    let day = until.to_offset(time::UtcOffset::UTC).date().next_day();
    let day = day.unwrap_or(time::Date::MAX);
    format!(
        "{:04}-{:02}-{:02}",
        day.year(),
        u8::from(day.month()),
        day.day()
    )
}

fn expiry_line(until: Option<OffsetDateTime>) -> String {
    until
        .map(|t| format!("usermod -e {} \"$u\"\n", quote(&expiry_date(t))))
        .unwrap_or_default()
}

/// The extension script for `account` (public for its tests).
pub fn extend_script(account: &str, until: OffsetDateTime) -> Result<String, StepError> {
    if !valid_name(account) {
        return Err(StepError::BadAccount(account.to_owned()));
    }
    let mut s = format!("set -eu\nu={}\n", quote(account));
    s.push_str(EXISTS_OR_FAIL);
    s.push_str(&expiry_line(Some(until)));
    s.push_str(
        "echo \"$u expires on $(chage -l \"$u\" | sed -n 's/^Account expires[^:]*: //p')\"\n",
    );
    Ok(s)
}

fn checked(change: &Change) -> Result<(), StepError> {
    if !valid_name(&change.account) {
        return Err(StepError::BadAccount(change.account.clone()));
    }
    if let Some(bad) = change.groups.iter().find(|g| !valid_name(g)) {
        return Err(StepError::BadGroup(bad.clone()));
    }
    Ok(())
}

fn groups_line(change: &Change, add: bool) -> String {
    if change.groups.is_empty() {
        return String::new();
    }
    let list: Vec<String> = change.groups.iter().map(|g| quote(g)).collect();
    if add {
        format!(
            "for g in {}; do usermod -a -G \"$g\" \"$u\"; done\n",
            list.join(" ")
        )
    } else {
        // Leaving a group one is not in is fine: the step may be a repeat.
        format!(
            "for g in {}; do gpasswd -d \"$u\" \"$g\" >/dev/null 2>&1 || true; done\n",
            list.join(" ")
        )
    }
}

fn password_line(password: Option<&str>) -> String {
    // printf is a shell builtin: the password appears in no process's arguments.
    password
        .map(|p| format!("printf '%s:%s\\n' \"$u\" {} | chpasswd\n", quote(p)))
        .unwrap_or_default()
}

/// Makes `key` the ephemeral account's only authorized key (`~/.ssh/authorized_keys`, owned
/// by the account, mode 0600). Whatever stood at those paths (a link, a file, from a grant
/// that is being repeated) is replaced, never followed.
fn session_key_lines(key: Option<&str>) -> Result<String, StepError> {
    let Some(key) = key else {
        return Ok(String::new());
    };
    if !super::session_key::valid_public_key(key) {
        return Err(StepError::SessionKey("not an ed25519 public key".into()));
    }
    Ok(format!(
        "h=$(getent passwd \"$u\" | cut -d: -f6)\n\
         case \"$h\" in /?*) ;; *) echo \"$u has no home directory\" >&2; exit 3 ;; esac\n\
         rm -rf \"$h/.ssh\"\n\
         mkdir -m 700 \"$h/.ssh\"\n\
         (umask 077; printf '%s\\n' {} > \"$h/.ssh/authorized_keys\")\n\
         chown -R \"$u:$(id -g \"$u\")\" \"$h/.ssh\"\n",
        quote(key)
    ))
}

const EXISTS_OR_FAIL: &str = "if ! id -u \"$u\" >/dev/null 2>&1; then echo \"the account $u does not exist\" >&2; exit 3; fi\n";
/// A revoke of an account that is not there has nothing left to take away.
const EXISTS_OR_DONE: &str = "if ! id -u \"$u\" >/dev/null 2>&1; then echo \"no account $u: nothing to remove\"; exit 0; fi\n";

/// The grant script for `change` (public for its tests).
pub fn grant_script(change: &Change) -> Result<String, StepError> {
    checked(change)?;
    let mut s = format!("set -eu\nu={}\n", quote(&change.account));
    match change.mode {
        LoginMode::Ephemeral => {
            s.push_str(
                "if id -u \"$u\" >/dev/null 2>&1; then echo \"repaired $u\"; else \
                 shell=$(command -v bash || echo /bin/sh); useradd -m -s \"$shell\" \"$u\"; echo \"created $u\"; fi\n",
            );
            s.push_str(&expiry_line(change.until));
            s.push_str(&session_key_lines(change.public_key.as_deref())?);
        }
        LoginMode::Managed | LoginMode::Own => s.push_str(EXISTS_OR_FAIL),
    }
    s.push_str(&password_line(change.password.as_deref()));
    s.push_str(&groups_line(change, true));
    Ok(s)
}

/// The revoke script for `change` (public for its tests).
pub fn revoke_script(change: &Change) -> Result<String, StepError> {
    checked(change)?;
    let mut s = format!("set -eu\nu={}\n", quote(&change.account));
    match change.mode {
        LoginMode::Ephemeral => s.push_str(
            "if id -u \"$u\" >/dev/null 2>&1; then\n\
             \x20 pkill -KILL -u \"$u\" || true\n\
             \x20 i=0\n\
             \x20 until userdel -r \"$u\" 2>/dev/null; do\n\
             \x20   i=$((i + 1)); if [ \"$i\" -ge 20 ]; then userdel -r \"$u\"; fi\n\
             \x20   pkill -KILL -u \"$u\" || true; sleep 0.2\n\
             \x20 done\n\
             \x20 echo \"removed $u\"\n\
             else echo \"already gone: $u\"; fi\n",
        ),
        LoginMode::Managed => {
            s.push_str(EXISTS_OR_DONE);
            // A password nobody knows: the one revealed for the session stops working.
            let unknown = crate::domain::provision::generate_password();
            s.push_str(&password_line(Some(&unknown)));
            s.push_str(&groups_line(change, false));
        }
        LoginMode::Own => {
            s.push_str(EXISTS_OR_DONE);
            s.push_str(&groups_line(change, false));
        }
    }
    Ok(s)
}

/// A host key as `type base64`, checked.
fn host_key_line(key: &str) -> Result<(&str, &str), StepError> {
    let mut parts = key.split_whitespace();
    let (Some(kind), Some(data), None) = (parts.next(), parts.next(), parts.next()) else {
        return Err(StepError::BadHostKey);
    };
    let known_kind =
        kind == "ssh-ed25519" || kind == "ssh-rsa" || kind.starts_with("ecdsa-sha2-nistp");
    let base64 = data
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='));
    if known_kind && base64 {
        Ok((kind, data))
    } else {
        Err(StepError::BadHostKey)
    }
}

/// A host name or address fit for the SSH client's command line (never read as an option).
pub fn valid_host(host: &str) -> bool {
    !host.is_empty()
        && !host.starts_with('-')
        && host.len() <= 253
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'_'))
}

/// Runs `script` on the target; its standard output on success.
async fn run(target: &Target, script: &str) -> Result<String, StepError> {
    let place = format!("{}:{}", target.host, target.port);
    if !valid_host(&target.host) {
        return Err(StepError::Unreachable(
            place,
            "not a host name or address".into(),
        ));
    }
    if !valid_name(&target.service_user) {
        return Err(StepError::BadAccount(target.service_user.clone()));
    }
    let (kind, data) = host_key_line(&target.host_key)?;
    let dir = tempfile::Builder::new()
        .prefix("portcullis-ssh-")
        .tempdir()
        .map_err(|e| StepError::Client(e.to_string()))?;
    let key_path = dir.path().join("id");
    let known_path = dir.path().join("known_hosts");
    write_private(&key_path, target.private_key.trim_end().as_bytes(), true)
        .map_err(|e| StepError::Client(format!("cannot write the key file: {e}")))?;
    let known = if target.port == 22 {
        format!("{} {kind} {data}\n", target.host)
    } else {
        format!("[{}]:{} {kind} {data}\n", target.host, target.port)
    };
    write_private(&known_path, known.as_bytes(), false)
        .map_err(|e| StepError::Client(format!("cannot write the known hosts file: {e}")))?;
    let remote = if target.service_user == "root" {
        "sh -s"
    } else {
        "sudo -n sh -s"
    };
    let mut child = tokio::process::Command::new("ssh")
        .arg("-F")
        .arg("/dev/null")
        .arg("-i")
        .arg(&key_path)
        .args(["-o", "IdentitiesOnly=yes", "-o", "IdentityAgent=none"])
        .arg("-o")
        .arg(format!("UserKnownHostsFile={}", known_path.display()))
        .args([
            "-o",
            "GlobalKnownHostsFile=/dev/null",
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            "BatchMode=yes",
            "-o",
            "ConnectTimeout=10",
            "-o",
            "ServerAliveInterval=5",
            "-o",
            "ServerAliveCountMax=2",
            "-o",
            "LogLevel=ERROR",
            "-T",
        ])
        .arg("-p")
        .arg(target.port.to_string())
        .arg("-l")
        .arg(&target.service_user)
        .arg("--")
        .arg(&target.host)
        .arg(remote)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| StepError::Client(e.to_string()))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(script.as_bytes())
            .await
            .map_err(|e| StepError::Client(format!("cannot send the script: {e}")))?;
        // Closing standard input ends the script.
        drop(stdin);
    }
    let output = match tokio::time::timeout(STEP_TIMEOUT, child.wait_with_output()).await {
        Ok(Ok(output)) => output,
        Ok(Err(e)) => return Err(StepError::Client(e.to_string())),
        Err(_) => return Err(StepError::Timeout(place, STEP_TIMEOUT.as_secs())),
    };
    let stdout = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    if output.status.success() {
        return Ok(stdout);
    }
    Err(classify(&place, output.status.code(), &stderr))
}

/// Turns the SSH client's failure into a reason a person can act on.
fn classify(place: &str, code: Option<i32>, stderr: &str) -> StepError {
    let last = stderr
        .lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty())
        .unwrap_or("failed")
        .chars()
        .take(300)
        .collect::<String>();
    if code != Some(255) {
        return StepError::Target(place.to_owned(), last);
    }
    if stderr.contains("REMOTE HOST IDENTIFICATION HAS CHANGED")
        || stderr.contains("Host key verification failed")
        || stderr.contains("No ED25519 host key is known")
        || stderr.contains("host key is known")
    {
        StepError::HostKeyChanged(place.to_owned())
    } else if stderr.contains("Permission denied") {
        StepError::Denied(place.to_owned())
    } else {
        StepError::Unreachable(place.to_owned(), last)
    }
}

fn write_private(path: &std::path::Path, bytes: &[u8], newline: bool) -> std::io::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(bytes)?;
    if newline {
        file.write_all(b"\n")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(mode: LoginMode, account: &str, groups: &[&str]) -> Change {
        Change {
            mode,
            account: account.into(),
            groups: groups.iter().map(|g| (*g).to_owned()).collect(),
            password: Some("pa'ss%!".into()),
            until: None,
            public_key: None,
        }
    }

    #[test]
    fn scripts_refuse_names_a_shell_could_misread() {
        let bad = change(LoginMode::Ephemeral, "x;reboot", &[]);
        assert_eq!(
            grant_script(&bad),
            Err(StepError::BadAccount("x;reboot".into()))
        );
        let bad_group = change(LoginMode::Own, "alice", &["sudo", "$(id)"]);
        assert_eq!(
            revoke_script(&bad_group),
            Err(StepError::BadGroup("$(id)".into()))
        );
    }

    #[test]
    fn the_password_is_quoted_and_travels_only_inside_the_script() {
        let s = grant_script(&change(LoginMode::Ephemeral, "pc-a", &["adm"])).unwrap();
        assert!(s.contains(r"printf '%s:%s\n' "), "{s}");
        assert!(s.contains(r"'pa'\''ss%!'"), "{s}");
        assert!(s.contains("usermod -a -G"), "{s}");
    }

    #[test]
    fn a_managed_revoke_sets_a_password_nobody_was_shown() {
        let c = change(LoginMode::Managed, "deploy", &[]);
        let s = revoke_script(&c).unwrap();
        assert!(s.contains("chpasswd"));
        assert!(
            !s.contains("pa'\\''ss"),
            "the session's password is not reused"
        );
    }

    #[test]
    fn an_ephemeral_account_expires_the_day_after_the_session_ends() {
        let end = time::macros::datetime!(2026-12-31 23:30 UTC);
        assert_eq!(expiry_date(end), "2027-01-01");
        let late = time::macros::datetime!(2026-12-01 00:30 +02:00);
        assert_eq!(expiry_date(late), "2026-12-01", "the day is counted in UTC");
        let mut c = change(LoginMode::Ephemeral, "pc-a", &[]);
        c.until = Some(end);
        let s = grant_script(&c).unwrap();
        assert!(s.contains("usermod -e '2027-01-01' \"$u\""), "{s}");
        let moved = extend_script("pc-a", end).unwrap();
        assert!(moved.contains("usermod -e '2027-01-01'"), "{moved}");
        assert!(extend_script("x;id", end).is_err());
    }

    #[test]
    fn host_keys_and_hosts_are_checked_before_the_client_runs() {
        assert!(host_key_line("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI").is_ok());
        assert!(host_key_line("ssh-ed25519").is_err());
        assert!(host_key_line("ssh-ed25519 AAAA;rm").is_err());
        assert!(host_key_line("ssh-dss AAAA").is_err());
        assert!(valid_host("lnx-web-01.corp.example"));
        assert!(valid_host("127.0.0.1"));
        assert!(!valid_host("-oProxyCommand=x"));
        assert!(!valid_host("a b"));
    }

    #[test]
    fn client_failures_name_their_cause() {
        assert!(matches!(
            classify("h:22", Some(255), "Host key verification failed.\n"),
            StepError::HostKeyChanged(_)
        ));
        assert!(matches!(
            classify(
                "h:22",
                Some(255),
                "root@h: Permission denied (publickey).\n"
            ),
            StepError::Denied(_)
        ));
        assert!(matches!(
            classify(
                "h:22",
                Some(255),
                "ssh: connect to host h port 22: Connection refused\n"
            ),
            StepError::Unreachable(..)
        ));
        assert_eq!(
            classify("h:22", Some(6), "usermod: group 'wheel' does not exist\n"),
            StepError::Target(
                "h:22".into(),
                "usermod: group 'wheel' does not exist".into()
            )
        );
    }
}
