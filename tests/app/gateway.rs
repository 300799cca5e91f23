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
use crate::support::{TestApp, settings, spawn_demo_app};
use crate::target_host::TargetHost;

pub const DEMO: &str = "portcullis-demo";

/// A target, an app, a gateway in front of them, and alice's key.
pub struct Rig {
    /// Kept for its drop, which stops sshd and removes the accounts.
    pub _host: TargetHost,
    pub app: TestApp,
    pub port: u16,
    pub dir: tempfile::TempDir,
}

pub fn keygen(path: &std::path::Path) {
    let ok = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(path)
        .status()
        .unwrap()
        .success();
    assert!(ok);
}

/// Registers the public key at `path` for `username`, as the Account page does.
pub async fn register_key(app: &TestApp, username: &str, path: &std::path::Path) {
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
        Self::start_with(settings()).await
    }

    /// [`Rig::start`] with the gateway's instance on `settings`.
    pub async fn start_with(settings: portcullis::Settings) -> (Self, Uuid) {
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
            settings: Arc::new(settings),
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

    pub async fn recordings(&self, id: Uuid) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM recordings WHERE session_id = $1")
            .bind(id)
            .fetch_one(&self.app.db)
            .await
            .unwrap()
    }
}

pub async fn account(app: &TestApp, id: Uuid) -> String {
    sqlx::query_scalar("SELECT login_account FROM activity_sessions WHERE id = $1")
        .bind(id)
        .fetch_one(&app.db)
        .await
        .unwrap()
}

/// The session's recordings as asciicast events (every chunk, as the player gets them).
pub async fn recorded(app: &TestApp, id: Uuid) -> String {
    let recordings: Vec<Uuid> =
        sqlx::query_scalar("SELECT id FROM recordings WHERE session_id = $1 ORDER BY started_at")
            .bind(id)
            .fetch_all(&app.db)
            .await
            .unwrap();
    let mut all = String::new();
    for rid in recordings {
        let (events, _) = portcullis::db::recordings::events_from(&app.db, rid, 0)
            .await
            .unwrap();
        all.push_str(&events);
    }
    all
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

/// An interactive shell through the gateway (`ssh -tt`, stdin piped), with what it printed.
pub struct Shell {
    child: tokio::process::Child,
    stdin: tokio::process::ChildStdin,
    stdout: tokio::process::ChildStdout,
    pub seen: String,
}

impl Shell {
    pub fn open(rig: &Rig, string: &str) -> Self {
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

    pub async fn send(&mut self, text: &str) {
        self.stdin.write_all(text.as_bytes()).await.unwrap();
        self.stdin.flush().await.unwrap();
    }

    /// Reads until `text` appears (or the output ends); whether it did.
    pub async fn until(&mut self, text: &str, within: Duration) -> bool {
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
    pub async fn closed_within(&mut self, within: Duration) -> Option<Duration> {
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

fn home_of(account: &str) -> String {
    let out = std::process::Command::new("getent")
        .args(["passwd", account])
        .output()
        .unwrap();
    let line = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    line.split(':').nth(5).unwrap().to_owned()
}

#[tokio::test]
async fn the_gateway_logs_in_with_the_sessions_own_key_and_falls_back_to_the_password() {
    let (rig, id) = Rig::start().await;
    let login = account(&rig.app, id).await;
    // The ephemeral account's only authorized key is the session's own, made at the grant;
    // its private half is stored sealed.
    let authorized =
        std::fs::read_to_string(format!("{}/.ssh/authorized_keys", home_of(&login))).unwrap();
    assert_eq!(authorized.lines().count(), 1, "{authorized}");
    assert!(authorized.starts_with("ssh-ed25519 "), "{authorized}");
    let sealed: Option<Vec<u8>> =
        sqlx::query_scalar("SELECT ssh_key_ciphertext FROM activity_sessions WHERE id = $1")
            .bind(id)
            .fetch_one(&rig.app.db)
            .await
            .unwrap();
    let private = rig.app.secrets.open(id, &sealed.unwrap()).unwrap();
    let key = russh::keys::PrivateKey::from_openssh(&private).unwrap();
    assert_eq!(
        key.public_key().to_openssh().unwrap(),
        authorized.trim_end()
    );
    // Never shown to the requester.
    let body = authorized.split_whitespace().nth(1).unwrap();
    let connect = rig.app.get(&format!("/sessions/{id}/connect")).await;
    let revealed = rig.app.post(&format!("/sessions/{id}/reveal"), &[]).await;
    for page in [&connect, &revealed] {
        assert!(!page.body.contains("PRIVATE KEY"));
        assert!(!page.body.contains(body));
    }
    let password = revealed.texts("#password").pop().unwrap();

    // With the password changed on the target, the gateway still logs in: with the key.
    crate::target_host::set_password(&login, "Not-the-revealed-one-42");
    let string = rig.connection_string(id).await;
    let (code, out, err) = rig.run(&string, "whoami").await;
    assert_eq!((code, out.trim()), (0, login.as_str()), "stderr: {err}");

    // With the key taken off the target, it falls back to the session's password.
    std::fs::remove_file(format!("{}/.ssh/authorized_keys", home_of(&login))).unwrap();
    crate::target_host::set_password(&login, &password);
    let (code, out, err) = rig.run(&string, "whoami").await;
    assert_eq!((code, out.trim()), (0, login.as_str()), "stderr: {err}");

    // The end wipes the sealed key with the password.
    crate::provisioning::end(&rig.app, id).await;
    let wiped: Option<Vec<u8>> =
        sqlx::query_scalar("SELECT ssh_key_ciphertext FROM activity_sessions WHERE id = $1")
            .bind(id)
            .fetch_one(&rig.app.db)
            .await
            .unwrap();
    assert!(wiped.is_none());
}

/// The cipher `ssh -v` reports for the gateway's answers, and whether the command ran.
async fn negotiated(rig: &Rig, string: &str, extra: &[&str]) -> (Option<String>, String) {
    let mut args = vec!["-v"];
    args.extend_from_slice(extra);
    let out = rig
        .ssh("alice", string, &args)
        .arg("whoami")
        .output()
        .await
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    let cipher = err
        .lines()
        .find_map(|l| l.split("kex: server->client cipher: ").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .map(str::to_owned);
    (
        cipher,
        String::from_utf8_lossy(&out.stdout).trim().to_owned(),
    )
}

#[tokio::test]
async fn users_get_aes_gcm_on_aes_hardware_unless_other_ciphers_are_configured() {
    let (rig, id) = Rig::start().await;
    let string = rig.connection_string(id).await;
    let login = account(&rig.app, id).await;
    // OpenSSH's own order puts ChaCha20-Poly1305 first: the gateway decides by what it offers.
    let (cipher, out) = negotiated(&rig, &string, &[]).await;
    assert_eq!(out, login);
    let aes = portcullis::gateway::ciphers::aes_instructions();
    let expected = if aes {
        "aes128-gcm@openssh.com"
    } else {
        "chacha20-poly1305@openssh.com"
    };
    assert_eq!(cipher.as_deref(), Some(expected));
    if aes {
        let (cipher, out) =
            negotiated(&rig, &string, &["-c", "chacha20-poly1305@openssh.com"]).await;
        assert_eq!(
            (cipher, out.as_str()),
            (None, ""),
            "not offered, nothing ran"
        );
    }

    let mut configured = settings();
    configured.ssh_gateway_ciphers = vec!["chacha20-poly1305@openssh.com".into()];
    let (rig, id) = Rig::start_with(configured).await;
    let string = rig.connection_string(id).await;
    let (cipher, out) = negotiated(&rig, &string, &[]).await;
    assert_eq!(out, account(&rig.app, id).await);
    assert_eq!(cipher.as_deref(), Some("chacha20-poly1305@openssh.com"));
}
