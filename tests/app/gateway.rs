//! The SSH gateway end to end: a real `sshd` as the target (`target_host`), the `linux_ssh`
//! provisioner making the session's account on it, the gateway started on a random port, and
//! the OpenSSH client as the user, logging in with a key registered on their account.

use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use portcullis::AppState;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use uuid::Uuid;

use crate::provisioning::{approved_and_granted, events, status, use_target};
use crate::support::{TestApp, new_client, settings, spawn_demo_app};
use crate::target_host::TargetHost;

const DEMO: &str = "portcullis-demo";

/// A target, an app, a gateway in front of them, and alice's key.
pub struct Rig {
    /// Kept for its drop, which stops sshd and removes the accounts.
    pub _host: TargetHost,
    pub app: TestApp,
    pub port: u16,
    pub dir: tempfile::TempDir,
}

fn keygen(path: &std::path::Path) {
    let ok = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(path)
        .status()
        .unwrap()
        .success();
    assert!(ok);
}

/// Registers the public key at `path` for `username`, as the Account page does.
async fn register_key(app: &TestApp, username: &str, path: &std::path::Path) {
    let public = std::fs::read_to_string(path.with_extension("pub")).unwrap();
    let line: Vec<&str> = public.split_whitespace().take(2).collect();
    let listed = std::process::Command::new("ssh-keygen")
        .arg("-lf")
        .arg(path.with_extension("pub"))
        .output()
        .unwrap();
    let listed = String::from_utf8(listed.stdout).unwrap();
    let fingerprint = listed.split_whitespace().nth(1).unwrap().to_owned();
    sqlx::query(
        "INSERT INTO user_ssh_keys (id, user_id, name, algorithm, public_key, fingerprint)
         SELECT $1, id, 'laptop', $2, $3, $4 FROM users WHERE username = $5",
    )
    .bind(Uuid::new_v4())
    .bind(line[0])
    .bind(line.join(" "))
    .bind(fingerprint)
    .bind(username)
    .execute(&app.db)
    .await
    .unwrap();
}

impl Rig {
    /// alice's approved session on the target, her key registered, and the gateway running
    /// as an instance of its own (with its own LISTEN) on the same database.
    pub async fn start() -> (Self, Uuid) {
        let host = TargetHost::start();
        let app = spawn_demo_app().await;
        use_target(
            &app,
            &host,
            "ephemeral",
            &format!("{}-{{session}}", host.prefix),
        )
        .await;
        let id = approved_and_granted(&app).await;
        assert_eq!(
            status(&app, id).await,
            "available",
            "{:?}",
            events(&app, id).await
        );
        let dir = tempfile::tempdir().unwrap();
        keygen(&dir.path().join("alice"));
        register_key(&app, "alice", &dir.path().join("alice")).await;
        let state = AppState {
            db: app.db.clone(),
            settings: Arc::new(settings()),
            secrets: app.secrets.clone(),
            live: portcullis::live::Hub::new(),
            sessions: portcullis::auth::cache::SessionCache::new(Duration::from_secs(30)),
        };
        tokio::spawn(
            state
                .live
                .clone()
                .listen(app.db.clone(), state.sessions.clone()),
        );
        let key =
            portcullis::gateway::load_or_create_host_key(&dir.path().join("host_key")).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        portcullis::gateway::spawn(state, listener, key);
        // The gateway's LISTEN is up once a notification reaches it; give it a moment.
        tokio::time::sleep(Duration::from_millis(300)).await;
        (
            Self {
                _host: host,
                app,
                port,
                dir,
            },
            id,
        )
    }

    pub async fn connection_string(&self, id: Uuid) -> String {
        let epoch: i32 =
            sqlx::query_scalar("SELECT access_epoch FROM activity_sessions WHERE id = $1")
                .bind(id)
                .fetch_one(&self.app.db)
                .await
                .unwrap();
        self.app.secrets.connection_string(id, epoch)
    }

    /// `ssh` through the gateway as `user@`, with the key `key` (in the rig's folder).
    pub fn ssh(&self, key: &str, user: &str, extra: &[&str]) -> tokio::process::Command {
        let mut c = tokio::process::Command::new("ssh");
        c.args(["-F", "/dev/null", "-o", "StrictHostKeyChecking=no"])
            .args(["-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes"])
            .args(["-o", "IdentitiesOnly=yes", "-o", "LogLevel=ERROR", "-i"])
            .arg(self.dir.path().join(key))
            .arg("-p")
            .arg(self.port.to_string())
            .args(extra)
            .arg(format!("{user}@127.0.0.1"))
            .stdin(Stdio::null())
            .kill_on_drop(true);
        c
    }

    /// Runs `command` through the gateway as alice: (exit code, stdout, stderr).
    pub async fn run(&self, user: &str, command: &str) -> (i32, String, String) {
        let out = self
            .ssh("alice", user, &[])
            .arg(command)
            .output()
            .await
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    async fn recordings(&self, id: Uuid) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM recordings WHERE session_id = $1")
            .bind(id)
            .fetch_one(&self.app.db)
            .await
            .unwrap()
    }
}

async fn account(app: &TestApp, id: Uuid) -> String {
    sqlx::query_scalar("SELECT login_account FROM activity_sessions WHERE id = $1")
        .bind(id)
        .fetch_one(&app.db)
        .await
        .unwrap()
}

/// The recording's text as stored (asciicast events of every chunk).
async fn recorded(app: &TestApp, id: Uuid) -> String {
    let chunks: Vec<String> = sqlx::query_scalar(
        "SELECT c.events FROM recording_chunks c JOIN recordings r ON r.id = c.recording_id
         WHERE r.session_id = $1 ORDER BY r.started_at, c.seq",
    )
    .bind(id)
    .fetch_all(&app.db)
    .await
    .unwrap();
    chunks.concat()
}

#[tokio::test]
async fn a_command_through_the_gateway_runs_as_the_login_account_is_recorded_and_logs_in() {
    let (rig, id) = Rig::start().await;
    let string = rig.connection_string(id).await;
    let (code, out, err) = rig.run(&string, "whoami; exit 3").await;
    let login = account(&rig.app, id).await;
    assert_eq!(out.trim(), login, "stderr: {err}");
    assert_eq!(code, 3, "the exit status comes back");
    assert_eq!(status(&rig.app, id).await, "logged_in");
    let connected: Vec<_> = events(&rig.app, id)
        .await
        .into_iter()
        .filter(|(k, _)| k == "connected")
        .collect();
    assert_eq!(connected.len(), 1, "{connected:?}");
    // A second connection does not log in again.
    let (_, again, _) = rig.run(&string, "whoami").await;
    assert_eq!(again.trim(), login);
    let later = events(&rig.app, id).await;
    assert_eq!(later.iter().filter(|(k, _)| k == "connected").count(), 1);
    let text = crate::support::settled(
        || recorded(&rig.app, id),
        |t: &String| t.matches(&login).count() >= 2,
    )
    .await;
    assert!(text.contains(&login), "{text}");
    let ended: Vec<Option<String>> =
        sqlx::query_scalar("SELECT end_reason FROM recordings WHERE session_id = $1")
            .bind(id)
            .fetch_all(&rig.app.db)
            .await
            .unwrap();
    assert_eq!(ended.len(), 2);
}

#[tokio::test]
async fn the_connect_page_shows_the_gateway_host_key_as_ssh_keygen_prints_it() {
    let (rig, id) = Rig::start().await;
    let path = rig.dir.path().join("host_key");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let listed = std::process::Command::new("ssh-keygen")
        .arg("-lf")
        .arg(&path)
        .output()
        .unwrap();
    let listed = String::from_utf8(listed.stdout).unwrap();
    let fingerprint = listed.split_whitespace().nth(1).unwrap().to_owned();
    assert!(fingerprint.starts_with("SHA256:"), "{listed}");
    let page = rig.app.get(&format!("/sessions/{id}/connect")).await;
    let shown = page.texts("#gateway-fingerprint");
    assert!(shown[0].contains(&fingerprint), "{shown:?}");
    // A second start keeps the key.
    let again = portcullis::gateway::load_or_create_host_key(&path).unwrap();
    assert_eq!(portcullis::gateway::fingerprint(&again), fingerprint);
}

/// Sets the session's status directly (the transitions have tests of their own).
async fn set_status(app: &TestApp, id: Uuid, status: &str) {
    sqlx::query(
        "UPDATE activity_sessions SET status = $2::text::session_status,
                current_tier = CASE WHEN $2::text = 'waiting_for_approval' THEN 1 END,
                password_ciphertext = CASE WHEN $2::text IN ('waiting_for_approval', 'completed')
                                           THEN NULL ELSE password_ciphertext END,
                lock_message = CASE WHEN $2::text = 'locked' THEN 'Incident 9' END,
                locked_from = CASE WHEN $2::text = 'locked' THEN 'available'::session_status END
         WHERE id = $1",
    )
    .bind(id)
    .bind(status)
    .execute(&app.db)
    .await
    .unwrap();
}

#[tokio::test]
async fn refusals_say_why_in_one_line_and_open_nothing_upstream() {
    let (rig, id) = Rig::start().await;
    let string = rig.connection_string(id).await;
    keygen(&rig.dir.path().join("mallory"));
    keygen(&rig.dir.path().join("bob"));
    register_key(&rig.app, "bob", &rig.dir.path().join("bob")).await;

    // A key nobody registered: the client is not let in at all.
    let out = rig
        .ssh("mallory", &string, &[])
        .arg("whoami")
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(255));
    assert!(String::from_utf8_lossy(&out.stderr).contains("Permission denied"));
    // bob's own key, alice's string.
    let out = rig
        .ssh("bob", &string, &[])
        .arg("whoami")
        .output()
        .await
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        "Portcullis: This session is not one of yours."
    );
    assert_eq!(out.status.code(), Some(1));
    // A forged tag.
    let mut forged = string.clone();
    let last = forged.pop().unwrap();
    forged.push(if last == 'A' { 'B' } else { 'A' });
    let (code, _, err) = rig.run(&forged, "whoami").await;
    assert_eq!(code, 1);
    assert_eq!(
        err.trim(),
        "Portcullis: The connection string is not valid for your sessions: show it again on the session's Connect page."
    );
    // Port forwarding, either way.
    let out = rig
        .ssh("alice", &string, &["-W", "127.0.0.1:22"])
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(255));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("stdio forwarding failed"),
        "{out:?}"
    );
    let out = rig
        .ssh(
            "alice",
            &string,
            &[
                "-N",
                "-o",
                "ExitOnForwardFailure=yes",
                "-R",
                "0:127.0.0.1:22",
            ],
        )
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(255));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("forwarding failed"),
        "{out:?}"
    );

    for (status, line) in [
        (
            "waiting_for_approval",
            "Session lnx-web-01 is Waiting for Approval",
        ),
        (
            "locked",
            "Session lnx-web-01 is Locked by an administrator: Incident 9",
        ),
        ("completed", "Session lnx-web-01 is Completed"),
    ] {
        set_status(&rig.app, id, status).await;
        // Lock and the end move the access epoch: a string from before no longer verifies,
        // so the status check is reached with one for the epoch as it is now.
        let string = rig.connection_string(id).await;
        let (code, out, err) = rig.run(&string, "whoami").await;
        assert_eq!((code, out.as_str()), (1, ""), "{status}");
        assert_eq!(err.trim(), format!("Portcullis: {line}"), "{status}");
    }
    assert_eq!(rig.recordings(id).await, 0, "nothing was opened upstream");
    let connected = events(&rig.app, id).await;
    assert!(
        !connected.iter().any(|(k, _)| k == "connected"),
        "{connected:?}"
    );
}

/// An interactive shell through the gateway (`ssh -tt`, stdin piped), with what it printed.
struct Shell {
    child: tokio::process::Child,
    stdin: tokio::process::ChildStdin,
    stdout: tokio::process::ChildStdout,
    seen: String,
}

impl Shell {
    fn open(rig: &Rig, string: &str) -> Self {
        let mut child = rig
            .ssh("alice", string, &["-tt"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        Self {
            child,
            stdin,
            stdout,
            seen: String::new(),
        }
    }

    async fn send(&mut self, text: &str) {
        self.stdin.write_all(text.as_bytes()).await.unwrap();
        self.stdin.flush().await.unwrap();
    }

    /// Reads until `text` appears (or the output ends); whether it did.
    async fn until(&mut self, text: &str, within: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + within;
        let mut buf = [0u8; 4096];
        while !self.seen.contains(text) {
            match tokio::time::timeout_at(deadline, self.stdout.read(&mut buf)).await {
                Ok(Ok(n)) if n > 0 => self.seen.push_str(&String::from_utf8_lossy(&buf[..n])),
                _ => return false,
            }
        }
        true
    }

    /// Waits for the client to exit; how long it took.
    async fn closed_within(&mut self, within: Duration) -> Option<Duration> {
        let started = Instant::now();
        let mut buf = [0u8; 4096];
        let _ = tokio::time::timeout(within, async {
            while let Ok(n) = self.stdout.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                self.seen.push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        })
        .await;
        let exited =
            tokio::time::timeout(within.saturating_sub(started.elapsed()), self.child.wait()).await;
        exited.is_ok().then(|| started.elapsed())
    }
}

#[tokio::test]
async fn an_interactive_shell_is_recorded_and_end_session_closes_it_within_two_seconds() {
    let (rig, id) = Rig::start().await;
    let string = rig.connection_string(id).await;
    let mut shell = Shell::open(&rig, &string);
    shell.send("echo hello-$((40+2))\n").await;
    assert!(
        shell.until("hello-42", Duration::from_secs(10)).await,
        "{}",
        shell.seen
    );
    assert_eq!(status(&rig.app, id).await, "logged_in");

    rig.app
        .post(
            "/dashboard/end",
            &[("id", &id.to_string()), ("confirm", "yes")],
        )
        .await;
    assert_eq!(status(&rig.app, id).await, "completed");
    let took = shell.closed_within(Duration::from_secs(5)).await;
    assert!(
        took.is_some_and(|t| t <= Duration::from_secs(2)),
        "{took:?}"
    );
    assert!(
        shell
            .seen
            .contains("Portcullis: the session ended (Completed)."),
        "{}",
        shell.seen
    );
    let text = crate::support::settled(
        || recorded(&rig.app, id),
        |t: &String| t.contains("hello-42"),
    )
    .await;
    assert!(text.contains("hello-42"), "{text}");
    let reason: Option<String> =
        sqlx::query_scalar("SELECT end_reason FROM recordings WHERE session_id = $1")
            .bind(id)
            .fetch_one(&rig.app.db)
            .await
            .unwrap();
    assert_eq!(
        reason.as_deref(),
        Some("Portcullis closed the connection: the session ended (Completed).")
    );
}

#[tokio::test]
async fn an_admin_lock_closes_a_live_shell_with_its_message() {
    let (rig, id) = Rig::start().await;
    let string = rig.connection_string(id).await;
    let mut shell = Shell::open(&rig, &string);
    shell.send("echo up-$((1+1))\n").await;
    assert!(
        shell.until("up-2", Duration::from_secs(10)).await,
        "{}",
        shell.seen
    );
    let carol = new_client();
    rig.app.login_with(&carol, "carol", DEMO).await;
    rig.app
        .post_with(
            &carol,
            &format!("/admin/sessions/{id}/lock"),
            &[("message", "Incident 42: stop all changes")],
        )
        .await;
    assert_eq!(status(&rig.app, id).await, "locked");
    let took = shell.closed_within(Duration::from_secs(5)).await;
    assert!(
        took.is_some_and(|t| t <= Duration::from_secs(2)),
        "{took:?}"
    );
    assert!(
        shell.seen.contains(
            "Portcullis: the session was locked by an administrator: Incident 42: stop all changes."
        ),
        "{}",
        shell.seen
    );
}

#[tokio::test]
async fn the_window_end_warns_then_closes_a_live_shell_on_time() {
    let (rig, id) = Rig::start().await;
    sqlx::query(
        "UPDATE activity_sessions SET ends_at = now() + interval '4 seconds' WHERE id = $1",
    )
    .bind(id)
    .execute(&rig.app.db)
    .await
    .unwrap();
    let string = rig.connection_string(id).await;
    let mut shell = Shell::open(&rig, &string);
    assert!(
        shell
            .until("the session ends in 1 minute", Duration::from_secs(4))
            .await,
        "{}",
        shell.seen
    );
    let ends_at: time::OffsetDateTime =
        sqlx::query_scalar("SELECT ends_at FROM activity_sessions WHERE id = $1")
            .bind(id)
            .fetch_one(&rig.app.db)
            .await
            .unwrap();
    assert!(
        shell.closed_within(Duration::from_secs(8)).await.is_some(),
        "{}",
        shell.seen
    );
    let late = time::OffsetDateTime::now_utc() - ends_at;
    assert!(
        late <= time::Duration::seconds(2),
        "closed {late} after the end"
    );
    assert!(
        shell
            .seen
            .contains("Portcullis: the session's window ended."),
        "{}",
        shell.seen
    );
}

/// `ssh` through the gateway with keyboard-interactive only: `answer(prompt)` answers each
/// prompt (through SSH_ASKPASS).
async fn interactive(rig: &Rig, user: &str, password: &str, code: &str) -> (i32, String, String) {
    let askpass = rig.dir.path().join("askpass");
    std::fs::write(
        &askpass,
        "#!/bin/sh\ncase \"$1\" in *code*) printf '%s\\n' \"$PCT_CODE\" ;; *) printf '%s\\n' \"$PCT_PASSWORD\" ;; esac\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&askpass, std::fs::Permissions::from_mode(0o700)).unwrap();
    let out = tokio::process::Command::new("ssh")
        .args(["-F", "/dev/null", "-o", "StrictHostKeyChecking=no"])
        .args(["-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR"])
        .args([
            "-o",
            "PubkeyAuthentication=no",
            "-o",
            "PreferredAuthentications=keyboard-interactive",
        ])
        .args(["-o", "NumberOfPasswordPrompts=1", "-p"])
        .arg(rig.port.to_string())
        .arg(format!("{user}@127.0.0.1"))
        .arg("whoami")
        .env("SSH_ASKPASS", &askpass)
        .env("SSH_ASKPASS_REQUIRE", "force")
        .env("PCT_PASSWORD", password)
        .env("PCT_CODE", code)
        .env_remove("DISPLAY")
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn without_a_key_the_password_and_second_factor_code_log_in() {
    let (rig, id) = Rig::start().await;
    let string = rig.connection_string(id).await;
    let login = account(&rig.app, id).await;
    let (code, out, err) = interactive(&rig, &string, DEMO, "").await;
    assert_eq!((code, out.trim()), (0, login.as_str()), "{err}");
    let (code, out, _) = interactive(&rig, &string, "wrong password", "").await;
    assert_eq!((code, out.as_str()), (255, ""));

    let (secret, _) = crate::second_factor::enrol_from_account(&rig.app, &rig.app.client).await;
    let (code, out, _) = interactive(&rig, &string, DEMO, "").await;
    assert_eq!(
        (code, out.as_str()),
        (255, ""),
        "the second factor is missing"
    );
    let step = crate::second_factor::step().await;
    let totp = crate::second_factor::code(&secret, step);
    let (code, out, err) = interactive(&rig, &string, DEMO, &totp).await;
    assert_eq!((code, out.trim()), (0, login.as_str()), "{err}");
    let (code, _, _) = interactive(&rig, &string, DEMO, &totp).await;
    assert_eq!(code, 255, "a code is accepted once");
}
