//! The `command` provisioner: an executable that the operator declared in the provisioners
//! file (TOML, read at start and never editable from the web, so that a stolen administrator
//! sign-in cannot make the server run a program of its choosing). A resource only names an
//! entry. The executable is run directly, without a shell, with one JSON object on standard
//! input, and answers one JSON object on standard output within its timeout:
//!
//! ```text
//! in:  {"action": "grant" | "revoke" | "extend", "session": "<uuid>",
//!       "resource": {"name": "...", "address": "...", "port": 22},
//!       "account": "...", "mode": "ephemeral" | "managed" | "own", "activity": "...",
//!       "groups": ["..."], "window": {"start": "<rfc3339>", "end": "<rfc3339>"}}
//! out: {"login_account": "...", "password": "..."}   (grant; both optional; ignored
//!       after extend and revoke)
//! ```
//!
//! A non-zero exit, no answer in time (the process is killed) or an answer that is not such
//! JSON fails the step with the last line of standard error.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::StepError;

/// The default time an executable has to answer.
const DEFAULT_TIMEOUT_SECONDS: u64 = 30;
/// The only environment variables a command inherits.
const PASSED_ENV: [&str; 5] = ["PATH", "HOME", "LANG", "LC_ALL", "TZ"];
/// At most this much of its output is read.
const MAX_OUTPUT: u64 = 64 * 1024;

/// The provisioners file: commands by name.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Provisioners {
    #[serde(default)]
    pub commands: BTreeMap<String, CommandSpec>,
}

/// One declared executable.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommandSpec {
    /// An absolute path, run as is (no shell, no PATH lookup).
    pub path: PathBuf,
    #[serde(default)]
    pub args: Vec<String>,
    #[serde(default = "default_timeout")]
    pub timeout_seconds: u64,
}

fn default_timeout() -> u64 {
    DEFAULT_TIMEOUT_SECONDS
}

impl Provisioners {
    /// Reads the file, with an error that names the file and the line of any mistake.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            anyhow::anyhow!("cannot read the provisioners file {}: {e}", path.display())
        })?;
        Self::parse(&text).map_err(|e| {
            anyhow::anyhow!("the provisioners file {} is invalid: {e}", path.display())
        })
    }

    /// Parses the file's text: TOML, names as resources spell them, absolute paths, a
    /// timeout between 1 and 3600 seconds.
    pub fn parse(text: &str) -> Result<Self, String> {
        let parsed: Self = toml::from_str(text).map_err(|e| {
            let line = e
                .span()
                .map(|s| text.get(..s.start).unwrap_or(text).matches('\n').count() + 1);
            match line {
                Some(line) => format!("line {line}: {}", e.message()),
                None => e.message().to_owned(),
            }
        })?;
        for (name, spec) in &parsed.commands {
            if !valid_command_name(name) {
                return Err(format!(
                    "[commands.{name}]: a command name is 1 to 64 lowercase letters, digits, \
                     '-' or '_', starting with a letter or digit"
                ));
            }
            if !spec.path.is_absolute() {
                return Err(format!(
                    "[commands.{name}]: path must be absolute, not {}",
                    spec.path.display()
                ));
            }
            if !(1..=3600).contains(&spec.timeout_seconds) {
                return Err(format!(
                    "[commands.{name}]: timeout_seconds must be between 1 and 3600"
                ));
            }
        }
        Ok(parsed)
    }
}

pub use crate::domain::provisioner::valid_command_name;

/// What the executable is told.
#[derive(Debug, Serialize)]
pub struct Call<'a> {
    pub action: &'a str,
    pub session: uuid::Uuid,
    pub resource: Resource<'a>,
    pub account: &'a str,
    pub mode: &'a str,
    pub activity: &'a str,
    pub groups: &'a [String],
    pub window: Window,
}

#[derive(Debug, Serialize)]
pub struct Resource<'a> {
    pub name: &'a str,
    pub address: &'a str,
    pub port: i32,
}

#[derive(Debug, Serialize)]
pub struct Window {
    #[serde(with = "time::serde::rfc3339")]
    pub start: time::OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub end: time::OffsetDateTime,
}

/// What a grant answers.
#[derive(Debug, Default, Deserialize, PartialEq, Eq)]
pub struct Answer {
    pub login_account: Option<String>,
    pub password: Option<String>,
}

/// An account name a command may answer: printable, no control characters, at most 64
/// characters (so `DOMAIN\user` or `user@example.org` pass).
pub fn valid_login_account(name: &str) -> bool {
    !name.is_empty()
        && name.chars().count() <= 64
        && name.chars().all(|c| !c.is_control() && !c.is_whitespace())
}

/// Runs the named command; the answer of a grant, or an empty one.
pub async fn run(
    provisioners: &Provisioners,
    name: &str,
    call: &Call<'_>,
) -> Result<Answer, StepError> {
    let spec = provisioners
        .commands
        .get(name)
        .ok_or_else(|| StepError::UnknownCommand(name.to_owned()))?;
    let fail = |why: String| StepError::Command(name.to_owned(), why);
    let input = serde_json::to_vec(call).map_err(|e| fail(e.to_string()))?;
    let mut command = tokio::process::Command::new(&spec.path);
    // The server's environment holds secrets (DATABASE_URL, the SMTP password, the metrics
    // token): the command gets only what locates programs and text settings.
    command.env_clear();
    for name in PASSED_ENV {
        if let Some(value) = std::env::var_os(name) {
            command.env(name, value);
        }
    }
    let mut child = command
        .args(&spec.args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| fail(format!("could not be started: {e}")))?;
    let (Some(mut stdin), Some(stdout), Some(stderr)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        return Err(fail("its pipes could not be opened".into()));
    };
    let timeout = Duration::from_secs(spec.timeout_seconds);
    let work = async {
        // A command that does not read its input must not block us: the write may fail.
        let _ = stdin.write_all(&input).await;
        drop(stdin);
        let mut out = Vec::new();
        let mut err = Vec::new();
        let mut stdout = stdout.take(MAX_OUTPUT);
        let mut stderr = stderr.take(MAX_OUTPUT);
        let (_, _) = tokio::join!(stdout.read_to_end(&mut out), stderr.read_to_end(&mut err));
        let status = child.wait().await;
        (status, out, err)
    };
    let (status, out, err) = match tokio::time::timeout(timeout, work).await {
        Ok(done) => done,
        // Dropping the future drops the child, which kills it (`kill_on_drop`).
        Err(_) => {
            return Err(fail(format!(
                "gave no answer within {} seconds and was stopped",
                spec.timeout_seconds
            )));
        }
    };
    let status = status.map_err(|e| fail(e.to_string()))?;
    if !status.success() {
        let code = status
            .code()
            .map_or_else(|| "a signal".to_owned(), |c| c.to_string());
        return Err(fail(format!("exited with {code}: {}", last_line(&err))));
    }
    if call.action != "grant" {
        return Ok(Answer::default());
    }
    let answer: Answer = serde_json::from_slice(&out).map_err(|_| {
        fail(format!(
            "answered something other than the expected JSON{}",
            match last_line(&err) {
                l if l.is_empty() => String::new(),
                l => format!(" ({l})"),
            }
        ))
    })?;
    if let Some(account) = &answer.login_account
        && !valid_login_account(account)
    {
        return Err(fail(
            "answered a login_account with control characters, spaces or over 64 characters".into(),
        ));
    }
    if answer
        .password
        .as_deref()
        .is_some_and(|p| p.is_empty() || p.len() > 1024)
    {
        return Err(fail("answered an empty or overlong password".into()));
    }
    Ok(answer)
}

/// The last non-empty line of standard error, printable and at most 200 characters.
fn last_line(err: &[u8]) -> String {
    let text = String::from_utf8_lossy(err);
    let line = text
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("");
    line.chars().filter(|c| !c.is_control()).take(200).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_provisioners_file_is_read() {
        let p = Provisioners::parse(
            "[commands.active-directory]\npath = \"/usr/local/lib/portcullis/ad.sh\"\n\
             timeout_seconds = 10\nargs = [\"--domain\", \"corp\"]\n",
        )
        .unwrap_or_default();
        let spec = &p.commands["active-directory"];
        assert_eq!(spec.timeout_seconds, 10);
        assert_eq!(spec.args, ["--domain", "corp"]);
        assert!(Provisioners::parse("").is_ok_and(|p| p.commands.is_empty()));
    }

    #[test]
    fn a_bad_provisioners_file_is_refused_with_the_line() {
        let cases = [
            (
                "[commands.ad]\npath = \"/x\"\ntimeout_seconds = \n",
                "line 3",
            ),
            ("[commands.ad]\npath = \"/x\"\nshell = true\n", "line 3"),
            (
                "[commands.ad]\npath = \"relative.sh\"\n",
                "must be absolute",
            ),
            ("[commands.AD]\npath = \"/x\"\n", "a command name"),
            (
                "[commands.ad]\npath = \"/x\"\ntimeout_seconds = 0\n",
                "between 1 and 3600",
            ),
        ];
        for (text, expected) in cases {
            match Provisioners::parse(text) {
                Ok(_) => panic!("accepted {text:?}"),
                Err(e) => assert!(e.contains(expected), "{text:?}: {e}"),
            }
        }
    }

    #[test]
    fn answered_account_names_are_printable_and_short() {
        for ok in ["pc-alice", r"CORP\alice", "alice@corp.example"] {
            assert!(valid_login_account(ok), "{ok}");
        }
        for bad in ["", "a b", "a\nb", "a\u{7}", &"a".repeat(65)] {
            assert!(!valid_login_account(bad), "{bad:?}");
        }
    }
}
