//! A `portcullis` process of the real binary: started with its settings, waited on until
//! ready, signalled, and killed if a test ends early.

use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use sqlx::postgres::PgConnectOptions;

pub struct Instance {
    pub port: u16,
    child: Child,
    stderr: PathBuf,
    dir: tempfile::TempDir,
}

/// A port nothing listens on now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `DATABASE_URL` for a test database (a Unix socket of the suite's cluster, or the server
/// of the suite's own `DATABASE_URL`).
pub fn database_url(options: &PgConnectOptions) -> String {
    let database = options.get_database().unwrap();
    if let Ok(url) = std::env::var("DATABASE_URL") {
        let mut url = reqwest::Url::parse(&url).unwrap();
        url.set_path(&format!("/{database}"));
        return url.to_string();
    }
    // The socket directory as the host, percent-encoded (sqlx reads a host starting with `/`
    // as a Unix socket directory).
    let socket = options.get_socket().expect("a socket directory");
    let host: String = socket
        .to_string_lossy()
        .bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect();
    format!(
        "postgres://{}@{host}:{}/{database}",
        options.get_username(),
        options.get_port()
    )
}

impl Instance {
    /// Starts the binary on a free loopback port with `env` (and nothing from the test's own
    /// environment that would change its database).
    pub fn start(env: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let stderr = dir.path().join("stderr.log");
        let mut command = Command::new(env!("CARGO_BIN_EXE_portcullis"));
        command
            .env_remove("DATABASE_URL")
            .env("RUST_LOG", "warn")
            .env("PORTCULLIS_BIND", format!("127.0.0.1:{port}"))
            .env("PORTCULLIS_DATA_DIR", dir.path().join("data"))
            // The simulated users sign in with a password alone, all from 127.0.0.1.
            .env("PORTCULLIS_SECOND_FACTOR", "optional")
            .env("PORTCULLIS_SIGN_IN_LIMIT", "1000000")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr).unwrap());
        for (k, v) in env {
            command.env(k, v);
        }
        let child = command.spawn().unwrap();
        Self {
            port,
            child,
            stderr,
            dir,
        }
    }

    /// Its data directory (the built-in cluster is in `pg/` there).
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn pid(&self) -> Pid {
        Pid::from_raw(i32::try_from(self.child.id()).unwrap())
    }

    /// Waits until `/readyz` answers 200 (a new built-in cluster takes a while to create).
    pub async fn wait_ready(&mut self) {
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if let Ok(r) = client.get(self.url("/readyz")).send().await
                && r.status() == reqwest::StatusCode::OK
            {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("portcullis exited early ({status}):\n{}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "portcullis did not become ready:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub fn signal(&self, signal: Signal) {
        kill(self.pid(), signal).unwrap();
    }

    /// Whether the process is still running.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Waits for the process to exit, at most `limit`.
    pub async fn exit_status(&mut self, limit: Duration) -> ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "portcullis did not exit in {limit:?}:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// What it wrote to standard error.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
