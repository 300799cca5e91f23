//! What administrators type to give Portcullis access to targets (issue 14): service
//! credentials, pinned host keys, and the groups an activity's account joins on the target.
//! Pure rules, shared by the admin forms, the seed files and the CSV import.

use sha2::{Digest, Sha256};

use uuid::Uuid;

use crate::domain::admin_input::{FieldErrors, text};
use crate::domain::catalog::LoginMode;
use crate::domain::provisioner::{ProvisionerKind, valid_name};

/// What a service credential holds, mirrored by the PostgreSQL enum `credential_kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::Type)]
#[sqlx(type_name = "credential_kind", rename_all = "snake_case")]
pub enum CredentialKind {
    /// An OpenSSH (or PEM) private key, for Linux targets.
    SshKey,
    /// A password, for database targets.
    Password,
}

impl CredentialKind {
    pub const ALL: [CredentialKind; 2] = [Self::SshKey, Self::Password];

    pub fn key(self) -> &'static str {
        match self {
            Self::SshKey => "ssh_key",
            Self::Password => "password",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::SshKey => "SSH private key",
            Self::Password => "Password",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.key() == s.trim())
    }
}

/// Why a credential of `kind` cannot serve a resource with `provisioner`, if it cannot: a
/// Linux target is logged in to with an SSH key, a PostgreSQL server with a password.
pub fn credential_mismatch(provisioner: ProvisionerKind, kind: CredentialKind) -> Option<String> {
    let needed = match provisioner {
        ProvisionerKind::LinuxSsh => CredentialKind::SshKey,
        ProvisionerKind::Postgresql => CredentialKind::Password,
        ProvisionerKind::Simulated | ProvisionerKind::Command => return None,
    };
    let holds = |k: CredentialKind| match k {
        CredentialKind::SshKey => "an SSH private key",
        CredentialKind::Password => "a password",
    };
    (needed != kind).then(|| {
        format!(
            "The {} provisioner logs in with {}, and this service credential holds {}: choose a credential of that kind.",
            provisioner.label(),
            holds(needed),
            holds(kind)
        )
    })
}

/// A service credential as typed in its form.
pub struct RawCredential<'a> {
    pub name: &'a str,
    pub username: &'a str,
    pub kind: &'a str,
    pub secret: &'a str,
}

/// A valid service credential. `secret` is `None` on an edit that keeps the stored one.
#[derive(Debug)]
pub struct CredentialInput {
    pub name: String,
    pub username: String,
    pub kind: CredentialKind,
    pub secret: Option<String>,
}

/// The longest secret accepted: an RSA 16384-bit key in OpenSSH format is about 12 KiB.
const MAX_SECRET: usize = 16 * 1024;

impl CredentialInput {
    /// Checks a submission; `new` says whether a secret is required (an edit may keep it).
    pub fn parse(raw: &RawCredential<'_>, new: bool) -> Result<Self, FieldErrors> {
        let mut e = FieldErrors::default();
        let name = text(&mut e, "name", "Name", raw.name, 100);
        let username = raw.username.trim().to_owned();
        if !valid_name(&username) {
            e.add(
                "username",
                "User must be an account name on the target: a lower-case letter or _, then up to 31 lower-case letters, digits, _ or -.",
            );
        }
        let kind = CredentialKind::parse(raw.kind);
        if kind.is_none() {
            e.add("kind", "Choose an SSH private key or a password.");
        }
        let kind = kind.unwrap_or(CredentialKind::SshKey);
        // Keys are pasted with the editor's line endings and stray blank lines around them.
        let secret = match kind {
            CredentialKind::SshKey => raw.secret.replace("\r\n", "\n").trim().to_owned(),
            CredentialKind::Password => raw.secret.to_owned(),
        };
        let secret = if secret.is_empty() {
            if new {
                e.add("secret", secret_required(kind));
            }
            None
        } else if secret.len() > MAX_SECRET {
            e.add("secret", "The secret is too long (at most 16 KiB).");
            None
        } else if kind == CredentialKind::SshKey && !looks_like_private_key(&secret) {
            e.add(
                "secret",
                "This does not look like a private key: paste the whole key, from -----BEGIN OPENSSH PRIVATE KEY----- (or BEGIN RSA / EC PRIVATE KEY) to its END line.",
            );
            None
        } else if kind == CredentialKind::Password && secret.chars().any(char::is_control) {
            e.add(
                "secret",
                "The password must be one line of printable characters.",
            );
            None
        } else {
            // OpenSSH refuses a key file without its final line break.
            Some(match kind {
                CredentialKind::SshKey => format!("{secret}\n"),
                CredentialKind::Password => secret,
            })
        };
        e.into_result(Self {
            name,
            username,
            kind,
            secret,
        })
    }
}

fn secret_required(kind: CredentialKind) -> &'static str {
    match kind {
        CredentialKind::SshKey => "Paste the service account's private key.",
        CredentialKind::Password => "Type the service account's password.",
    }
}

/// Whether `text` has the shape of an unencrypted-format private key file: one PEM block of
/// an OpenSSH, RSA or EC private key with a base64 body. (Whether it opens is for the
/// target to say: the first step that uses it reports a refused login.)
pub fn looks_like_private_key(text: &str) -> bool {
    const KINDS: [&str; 3] = ["OPENSSH PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY"];
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    let (Some(first), Some(last)) = (lines.first(), lines.last()) else {
        return false;
    };
    let Some(kind) = KINDS
        .into_iter()
        .find(|k| *first == format!("-----BEGIN {k}-----"))
    else {
        return false;
    };
    let body = &lines[1..lines.len().saturating_sub(1)];
    *last == format!("-----END {kind}-----")
        && lines.len() > 2
        && body.iter().all(|l| {
            // PEM RSA/EC keys may carry `Proc-Type:` and `DEK-Info:` headers.
            l.is_empty()
                || l.contains(": ")
                || l.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='))
        })
}

/// Host key types OpenSSH offers and the `linux_ssh` provisioner pins.
const HOST_KEY_TYPES: [&str; 5] = [
    "ssh-ed25519",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "ssh-rsa",
];

/// A host key as typed or pasted (`type base64`, optionally after a host name as in
/// `known_hosts` or `ssh-keyscan` output, optionally with a comment): `type base64`, or the
/// message for the field.
pub fn parse_host_key(typed: &str) -> Result<String, String> {
    let parts: Vec<&str> = typed.split_whitespace().collect();
    let at = parts
        .iter()
        .position(|p| HOST_KEY_TYPES.contains(p))
        .ok_or_else(|| {
            "The host key must start with its type (ssh-ed25519, ecdsa-sha2-nistp256/384/521 or ssh-rsa) followed by the key, as ssh-keyscan prints it.".to_owned()
        })?;
    let data = parts.get(at + 1).copied().unwrap_or("");
    match base64_decode(data) {
        Some(blob) if blob_type(&blob) == Some(parts[at]) => Ok(format!("{} {data}", parts[at])),
        _ => Err("The host key is not a valid SSH public key: copy the whole line again.".into()),
    }
}

/// The `SHA256:...` fingerprint of a `type base64` host key, as OpenSSH prints it.
pub fn fingerprint(host_key: &str) -> Option<String> {
    let data = host_key.split_whitespace().nth(1)?;
    let blob = base64_decode(data)?;
    let digest = Sha256::digest(&blob);
    Some(format!("SHA256:{}", base64_encode_unpadded(&digest)))
}

/// The key type named inside an SSH public key blob (a length-prefixed string first).
fn blob_type(blob: &[u8]) -> Option<&str> {
    let len = u32::from_be_bytes(blob.get(..4)?.try_into().ok()?) as usize;
    std::str::from_utf8(blob.get(4..4 + len)?).ok()
}

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let text = text.trim_end_matches('=');
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for b in text.bytes() {
        let v = ALPHABET.iter().position(|a| *a == b)? as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    (!out.is_empty()).then_some(out)
}

fn base64_encode_unpadded(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
        }
    }
    out
}

/// How access to a resource is granted, as typed in the resource form.
pub struct RawAccess<'a> {
    pub provisioner: &'a str,
    pub credential: &'a str,
    pub host_key: &'a str,
    /// `postgresql`: the database the service credential connects to (empty: `postgres`).
    pub database_name: &'a str,
    /// `command`: the name of an entry in the operator's provisioners file.
    pub command: &'a str,
}

/// How access to a resource is granted, checked (the schema's check says the same):
/// `linux_ssh` has a credential and a pinned host key, `postgresql` a credential (and maybe a
/// database), `command` the name of a declared command and neither of the others. Fields the
/// chosen provisioner does not use are dropped, so a resource never keeps a stale key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessInput {
    pub provisioner: ProvisionerKind,
    pub credential_id: Option<Uuid>,
    pub host_key: Option<String>,
    pub database_name: Option<String>,
    pub command: Option<String>,
}

/// A PostgreSQL database name a resource may give (the schema's pattern).
pub fn valid_database_name(name: &str) -> bool {
    let mut chars = name.chars();
    let Some(first) = chars.next() else {
        return false;
    };
    name.len() <= 63
        && (first.is_ascii_alphabetic() || first == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '$' | '-'))
}

impl AccessInput {
    /// Adds the problems it finds to `e` (the resource form checks its other fields too).
    pub fn parse(raw: &RawAccess<'_>, e: &mut FieldErrors) -> Self {
        // Absent (a form from before provisioners, a script): the resource stays simulated.
        let provisioner = match raw.provisioner.trim() {
            "" => Some(ProvisionerKind::Simulated),
            key => ProvisionerKind::parse(key),
        };
        if provisioner.is_none() {
            e.add("provisioner", "Choose how access is granted on the target.");
        }
        let provisioner = provisioner.unwrap_or(ProvisionerKind::Simulated);
        let uses_credential = matches!(
            provisioner,
            ProvisionerKind::LinuxSsh | ProvisionerKind::Postgresql
        );
        let uses_host_key = provisioner == ProvisionerKind::LinuxSsh;
        let credential_id = match raw.credential.trim() {
            _ if !uses_credential => None,
            "" => {
                e.add(
                    "credential",
                    "Choose the service credential Portcullis logs in to the target with.",
                );
                None
            }
            text => {
                let id = Uuid::parse_str(text).ok();
                if id.is_none() {
                    e.add("credential", "Choose a service credential from the list.");
                }
                id
            }
        };
        let host_key = match raw.host_key.trim() {
            _ if !uses_host_key => None,
            "" => {
                e.add(
                        "host_key",
                        "Give the target's host key (Fetch host key, then check its fingerprint): a changed key is refused.",
                    );
                None
            }
            text => match parse_host_key(text) {
                Ok(key) => Some(key),
                Err(message) => {
                    e.add("host_key", message);
                    None
                }
            },
        };
        let database_name = match raw.database_name.trim() {
            _ if provisioner != ProvisionerKind::Postgresql => None,
            "" => None,
            name if valid_database_name(name) => Some(name.to_owned()),
            _ => {
                e.add(
                    "database_name",
                    "A database name starts with a letter or _ and holds letters, digits, _, $ or - (at most 63).",
                );
                None
            }
        };
        let command = match raw.command.trim() {
            _ if provisioner != ProvisionerKind::Command => None,
            "" => {
                e.add(
                    "command",
                    "Name the command from the provisioners file that grants access to this resource.",
                );
                None
            }
            name if crate::domain::provisioner::valid_command_name(name) => Some(name.to_owned()),
            _ => {
                e.add(
                    "command",
                    "A command name is lower-case letters, digits, _ and - (at most 64), as in the provisioners file.",
                );
                None
            }
        };
        Self {
            provisioner,
            credential_id,
            host_key,
            database_name,
            command,
        }
    }
}

/// What the requester and administrators are told about the session's account on the
/// target: plainly that nothing is made there when the resource is simulated.
pub fn account_note(
    provisioner: ProvisionerKind,
    mode: LoginMode,
    account: Option<&str>,
    resource: &str,
) -> String {
    if provisioner == ProvisionerKind::Simulated {
        return format!("Simulated: no account is created on {resource}.");
    }
    let Some(account) = account.filter(|a| !a.is_empty()) else {
        return format!("The account is prepared on {resource} when the session starts.");
    };
    match mode {
        LoginMode::Ephemeral => format!(
            "Account {account} on {resource} (created for this session, removed at the end)."
        ),
        LoginMode::Managed => format!(
            "Account {account} on {resource} (its password is set for this session and replaced at the end)."
        ),
        LoginMode::Own => format!(
            "Your own account {account} on {resource} (it must exist there; the activity's groups are added for this session and removed at the end)."
        ),
    }
}

/// The most groups an activity's account may join (the schema's check).
pub const MAX_TARGET_GROUPS: usize = 16;

/// Target groups as typed (comma or space separated): each a Linux group name, at most 16,
/// duplicates dropped; or the message for the field.
pub fn parse_target_groups(typed: &str) -> Result<Vec<String>, String> {
    let mut groups: Vec<String> = Vec::new();
    for g in typed
        .split([',', ' ', '\t', '\n', '\r'])
        .filter(|g| !g.is_empty())
    {
        if !valid_name(g) {
            return Err(format!(
                "\"{g}\" is not a group name on a Linux target: a lower-case letter or _, then up to 31 lower-case letters, digits, _ or -."
            ));
        }
        if !groups.iter().any(|x| x == g) {
            groups.push(g.to_owned());
        }
    }
    if groups.len() > MAX_TARGET_GROUPS {
        return Err(format!(
            "At most {MAX_TARGET_GROUPS} target groups (there are {}).",
            groups.len()
        ));
    }
    Ok(groups)
}

#[cfg(test)]
mod tests {
    use super::*;

    // The host key of a throwaway sshd, with the fingerprint `ssh-keygen -lf` printed for it.
    const KEY: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIlNyAh1Ifr+mVdkn4LPWYxI8b4jS2G3k4ecJobMkAUJ";

    #[test]
    fn a_host_key_is_taken_from_a_keyscan_line_and_fingerprinted_like_openssh() {
        let line = format!("127.0.0.1 {KEY}");
        assert_eq!(parse_host_key(&line).as_deref(), Ok(KEY));
        assert_eq!(
            parse_host_key(&format!("{KEY} root@host")).as_deref(),
            Ok(KEY)
        );
        assert_eq!(
            fingerprint(KEY).as_deref(),
            Some("SHA256:KHUWEXPOYBqK2I/MK5abaGjdhB1A4r4mAqYQMzRveo8")
        );
    }

    #[test]
    fn a_host_key_of_another_type_or_mangled_is_refused() {
        assert!(parse_host_key("ssh-dss AAAAB3NzaC1kc3M=").is_err());
        assert!(parse_host_key("ssh-rsa AAAAC3NzaC1lZDI1NTE5AAAAIOMq").is_err());
        assert!(parse_host_key("ssh-ed25519 not*base64").is_err());
        assert!(parse_host_key("").is_err());
    }

    #[test]
    fn private_keys_are_recognised_by_their_armour() {
        let key = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\nAAAA==\n-----END OPENSSH PRIVATE KEY-----";
        assert!(looks_like_private_key(key));
        assert!(!looks_like_private_key("ssh-ed25519 AAAA"));
        assert!(!looks_like_private_key(
            "-----BEGIN OPENSSH PRIVATE KEY-----\n-----END RSA PRIVATE KEY-----"
        ));
        assert!(!looks_like_private_key(
            "-----BEGIN OPENSSH PRIVATE KEY-----\nnot base64!\n-----END OPENSSH PRIVATE KEY-----"
        ));
    }

    #[test]
    fn target_groups_are_linux_group_names_at_most_sixteen() {
        assert_eq!(
            parse_target_groups("sudo, adm  docker,sudo"),
            Ok(vec!["sudo".into(), "adm".into(), "docker".into()])
        );
        assert_eq!(parse_target_groups("  "), Ok(vec![]));
        assert!(parse_target_groups("Wheel").is_err());
        assert!(parse_target_groups("a;rm").is_err());
        let many: Vec<String> = (0..17).map(|i| format!("g{i}")).collect();
        assert!(parse_target_groups(&many.join(",")).is_err());
    }
}
