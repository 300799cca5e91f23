//! The built-in PostgreSQL cluster, used when no `DATABASE_URL` is given.
//!
//! Portcullis runs the PostgreSQL server binaries already on the machine (no download):
//! `initdb` into `<data dir>/pg` on first start, then `postgres` listening only on a Unix
//! socket in `<data dir>/run` (no TCP port), trusted only through that socket's 0700
//! directory. The server process is our child: a supervisor thread owns it, and the kernel
//! sends it SIGINT (PostgreSQL's fast, clean shutdown) if this process dies without stopping
//! it, so a crash never leaves an orphan holding the data directory.
//!
//! PostgreSQL refuses to run as root. When we are root, the cluster runs as the `postgres`
//! user if it exists, else `nobody`, and the cluster's directories belong to that user.

use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::{PermissionsExt, chown};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::{Pid, User, geteuid};
use sqlx::postgres::PgConnectOptions;

/// The superuser role `initdb` creates, and the database the application uses.
pub const ROLE: &str = "portcullis";
/// PostgreSQL's port number only names the socket file; no TCP port is opened.
const PORT: u16 = 5432;
const START_TIMEOUT: Duration = Duration::from_secs(60);
const STOP_TIMEOUT: Duration = Duration::from_secs(60);

/// Why the built-in cluster could not be used. Each message says what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// Without server binaries there is nothing to run; the fix is an install or DATABASE_URL.
    #[error(
        "PostgreSQL server binaries (initdb and postgres) were not found on PATH or in \
         /usr/lib/postgresql/*/bin. Install them (Debian/Ubuntu: `apt-get install postgresql`; \
         Fedora: `dnf install postgresql-server`) or set DATABASE_URL to use an existing server."
    )]
    BinariesNotFound,
    /// PostgreSQL cannot run as root and we found no other account to run it as.
    #[error(
        "Portcullis is running as root and PostgreSQL refuses to; no `postgres` or `nobody` \
         user exists to run it as. Create one (`useradd --system postgres`), run Portcullis as \
         an unprivileged user, or set DATABASE_URL."
    )]
    NoUnprivilegedUser,
    /// A file system step failed; the path says where.
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// initdb ran and failed; its output is included.
    #[error("initdb failed for {path}: {output}")]
    Initdb { path: PathBuf, output: String },
    /// The server did not come up; the end of its log is included.
    #[error("PostgreSQL did not start (log: {log}): {reason}\n{tail}")]
    Start {
        log: PathBuf,
        reason: String,
        tail: String,
    },
}

fn io_err(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> ClusterError {
    let path = path.to_path_buf();
    move |source| ClusterError::Io { what, path, source }
}

/// Options for [`Cluster::start`].
#[derive(Debug, Clone)]
pub struct ClusterOptions {
    /// The folder holding `pg/`, `run/` and `postgres.log`.
    pub data_dir: PathBuf,
    /// Extra `-c name=value` server settings (tests turn durability off for speed).
    pub settings: Vec<(String, String)>,
}

impl ClusterOptions {
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: data_dir.into(),
            settings: Vec::new(),
        }
    }
}

/// A running built-in cluster. Dropping it does not stop the server: call [`Cluster::stop`]
/// (a process that exits without doing so still stops it, through the parent-death signal).
#[derive(Debug)]
pub struct Cluster {
    socket_dir: PathBuf,
    log_path: PathBuf,
    /// The postmaster we started, and the channel its exit status arrives on. `None` when we
    /// adopted a server that another Portcullis process (say, the running web server while
    /// an administrator runs `portcullis seed apply`) started and still owns.
    child: Option<(Pid, mpsc::Receiver<std::io::Result<ExitStatus>>)>,
    created: bool,
}

impl Cluster {
    /// Initialises the cluster if needed and starts it, or adopts one already running on the
    /// same data directory. Blocking: call it from a blocking context.
    pub fn start(options: &ClusterOptions) -> Result<Self, ClusterError> {
        let bin = find_bin_dir().ok_or(ClusterError::BinariesNotFound)?;
        let run_as = unprivileged_user()?;
        fs::create_dir_all(&options.data_dir)
            .map_err(io_err("cannot create", &options.data_dir))?;
        // Absolute paths: the socket setting needs one, and so does matching a running
        // postmaster's command line against its pid file.
        let data_dir = &fs::canonicalize(&options.data_dir)
            .map_err(io_err("cannot resolve", &options.data_dir))?;
        let pgdata = data_dir.join("pg");
        let socket_dir = data_dir.join("run");
        let log_path = data_dir.join("postgres.log");
        // A Unix socket path is limited to 107 bytes on Linux.
        if socket_dir.as_os_str().len() + ".s.PGSQL.5432.lock".len() + 1 > 107 {
            return Err(ClusterError::Io {
                what: "the data directory's path is too long for a Unix socket (keep it under 80 characters):",
                path: data_dir.clone(),
                source: std::io::Error::from(std::io::ErrorKind::InvalidInput),
            });
        }
        if run_as.is_some() {
            // The unprivileged server must be able to reach its folders inside ours.
            fs::set_permissions(data_dir, fs::Permissions::from_mode(0o711))
                .map_err(io_err("cannot set permissions of", data_dir))?;
        }
        let created = !pgdata.join("PG_VERSION").exists();
        prepare_dir(&pgdata, run_as.as_ref())?;
        prepare_dir(&socket_dir, run_as.as_ref())?;
        if created {
            initdb(&bin, &pgdata, run_as.as_ref())?;
        }

        if let Some(pid) = live_postmaster(&pgdata) {
            tracing::info!(pid, "adopting the built-in PostgreSQL already running");
            let cluster = Self {
                socket_dir,
                log_path,
                child: None,
                created,
            };
            cluster.wait_ready(&pgdata, None)?;
            return Ok(cluster);
        }
        remove_foreign_locks(&pgdata, &socket_dir);

        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(io_err("cannot open", &log_path))?;
        let log_start = log
            .metadata()
            .map_err(io_err("cannot read", &log_path))?
            .len();
        let log_err = log.try_clone().map_err(io_err("cannot open", &log_path))?;

        let mut command = Command::new(bin.join("postgres"));
        command
            .arg("-D")
            .arg(&pgdata)
            .arg("-p")
            .arg(PORT.to_string())
            .args(["-c", "listen_addresses="])
            .arg("-c")
            .arg(setting("unix_socket_directories", socket_dir.as_os_str()))
            .args(["-c", "unix_socket_permissions=0700"]);
        for (name, value) in &options.settings {
            command.arg("-c").arg(format!("{name}={value}"));
        }
        command
            .current_dir(&pgdata)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            // Its own process group: a Ctrl-C in the terminal reaches Portcullis only, which
            // then drains its requests before stopping the database.
            .process_group(0);
        if let Some(user) = &run_as {
            command.uid(user.uid.as_raw()).gid(user.gid.as_raw());
        }
        // SAFETY: prctl(PR_SET_PDEATHSIG) and getppid are async-signal-safe. This runs after
        // the uid change, which would otherwise clear the setting.
        unsafe {
            command.pre_exec(|| {
                nix::sys::prctl::set_pdeathsig(Signal::SIGINT).map_err(std::io::Error::from)?;
                Ok(())
            });
        }

        // The parent-death signal follows the *thread* that forked, so the fork happens on a
        // thread that lives exactly as long as the server does.
        let (pid_tx, pid_rx) = mpsc::channel();
        let (exit_tx, exit_rx) = mpsc::channel();
        std::thread::Builder::new()
            .name("postgres".into())
            .spawn(move || match command.spawn() {
                Ok(mut child) => {
                    let _ = pid_tx.send(Ok(child.id()));
                    let _ = exit_tx.send(child.wait());
                }
                Err(e) => {
                    let _ = pid_tx.send(Err(e));
                }
            })
            .map_err(io_err("cannot start a thread for", &pgdata))?;
        let pid = pid_rx
            .recv()
            .map_err(|e| std::io::Error::other(e.to_string()))
            .and_then(|r| r)
            .map_err(io_err("cannot run postgres for", &pgdata))?;
        let pid = Pid::from_raw(i32::try_from(pid).unwrap_or(i32::MAX));

        let mut cluster = Self {
            socket_dir,
            log_path,
            child: Some((pid, exit_rx)),
            created,
        };
        if let Err(e) = cluster.wait_ready(&pgdata, Some(log_start)) {
            let _ = cluster.stop_inner();
            return Err(e);
        }
        tracing::info!(pid = pid.as_raw(), data = %pgdata.display(), "built-in PostgreSQL started");
        Ok(cluster)
    }

    /// Whether we started the server (and so stop it), rather than adopted another
    /// process's.
    pub fn owns_server(&self) -> bool {
        self.child.is_some()
    }

    /// If the server we started has exited, why; it is then no longer ours to stop. `None`
    /// while it runs, and for an adopted server.
    pub fn exited(&mut self) -> Option<String> {
        let (pid, exit) = self.child.as_ref()?;
        let reason = match exit.try_recv() {
            Err(mpsc::TryRecvError::Empty) => return None,
            Ok(Ok(status)) => format!("postgres (pid {pid}) exited with {status}"),
            Ok(Err(e)) => format!("postgres (pid {pid}) could not be waited for: {e}"),
            Err(mpsc::TryRecvError::Disconnected) => format!("postgres (pid {pid}) exited"),
        };
        self.child = None;
        Some(reason)
    }

    /// Whether this start ran `initdb` (a brand-new, empty cluster).
    pub fn created(&self) -> bool {
        self.created
    }

    /// Connection options for `database` over the cluster's Unix socket.
    pub fn connect_options(&self, database: &str) -> PgConnectOptions {
        PgConnectOptions::new()
            .socket(&self.socket_dir)
            .port(PORT)
            .username(ROLE)
            .database(database)
    }

    /// Stops the server with a fast shutdown (clients disconnected, a clean checkpoint) and
    /// waits for it to exit. A server we adopted is left running for its owner.
    pub fn stop(mut self) -> Result<(), ClusterError> {
        self.stop_inner()
    }

    fn stop_inner(&mut self) -> Result<(), ClusterError> {
        let Some((pid, exit)) = self.child.take() else {
            return Ok(());
        };
        let _ = kill(pid, Signal::SIGINT);
        match exit.recv_timeout(STOP_TIMEOUT) {
            Ok(_) | Err(mpsc::RecvTimeoutError::Disconnected) => {
                tracing::info!(pid = pid.as_raw(), "built-in PostgreSQL stopped");
                Ok(())
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let _ = kill(pid, Signal::SIGQUIT);
                let _ = exit.recv_timeout(Duration::from_secs(10));
                Err(self.start_error("did not stop within 60 seconds; sent SIGQUIT", None))
            }
        }
    }

    /// Waits until the postmaster reports `ready` in its pid file (PostgreSQL 10 and later
    /// write their state on its eighth line), or fails with the end of the log.
    fn wait_ready(&self, pgdata: &Path, log_start: Option<u64>) -> Result<(), ClusterError> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some((_, exit)) = &self.child {
                match exit.try_recv() {
                    Ok(status) => {
                        let reason = match status {
                            Ok(s) => format!("postgres exited with {s}"),
                            Err(e) => format!("postgres could not be waited for: {e}"),
                        };
                        return Err(self.start_error(&reason, log_start));
                    }
                    Err(mpsc::TryRecvError::Disconnected) => {
                        return Err(self.start_error("postgres exited", log_start));
                    }
                    Err(mpsc::TryRecvError::Empty) => {}
                }
            }
            // The file must be our server's: a crashed one's is left for PostgreSQL to check
            // (see `remove_foreign_locks`), and it may say `ready` too.
            let ours = |pid: &str| match &self.child {
                Some((child, _)) => pid == child.as_raw().to_string(),
                None => true,
            };
            let ready = fs::read_to_string(pgdata.join("postmaster.pid"))
                .ok()
                .is_some_and(|s| {
                    let mut lines = s.lines().map(str::trim);
                    lines.next().is_some_and(ours) && lines.nth(6) == Some("ready")
                });
            if ready {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(self.start_error("not ready within 60 seconds", log_start));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn start_error(&self, reason: &str, log_start: Option<u64>) -> ClusterError {
        ClusterError::Start {
            log: self.log_path.clone(),
            reason: reason.to_owned(),
            tail: log_tail(&self.log_path, log_start),
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if self.child.is_some() {
            let _ = self.stop_inner();
        }
    }
}

fn setting(name: &str, value: &std::ffi::OsStr) -> OsString {
    let mut s = OsString::from(format!("{name}="));
    s.push(value);
    s
}

/// The folder holding `initdb` and `postgres`: the one on PATH, else the newest
/// `/usr/lib/postgresql/<version>/bin` (Debian's layout, which keeps them off PATH).
pub fn find_bin_dir() -> Option<PathBuf> {
    let has_both = |dir: &Path| dir.join("initdb").is_file() && dir.join("postgres").is_file();
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            if has_both(&dir) {
                return Some(dir);
            }
        }
    }
    let mut versions: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            has_both(&bin).then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

fn unprivileged_user() -> Result<Option<User>, ClusterError> {
    if !geteuid().is_root() {
        return Ok(None);
    }
    for name in ["postgres", "nobody"] {
        if let Ok(Some(user)) = User::from_name(name) {
            return Ok(Some(user));
        }
    }
    Err(ClusterError::NoUnprivilegedUser)
}

fn prepare_dir(dir: &Path, owner: Option<&User>) -> Result<(), ClusterError> {
    fs::create_dir_all(dir).map_err(io_err("cannot create", dir))?;
    if let Some(user) = owner {
        chown(dir, Some(user.uid.as_raw()), Some(user.gid.as_raw()))
            .map_err(io_err("cannot change the owner of", dir))?;
    }
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
        .map_err(io_err("cannot set permissions of", dir))
}

fn initdb(bin: &Path, pgdata: &Path, run_as: Option<&User>) -> Result<(), ClusterError> {
    let mut command = Command::new(bin.join("initdb"));
    command
        .arg("-D")
        .arg(pgdata)
        .args([
            "--username",
            ROLE,
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
        ])
        .current_dir(pgdata)
        .stdin(Stdio::null());
    if let Some(user) = run_as {
        command.uid(user.uid.as_raw()).gid(user.gid.as_raw());
    }
    let output = command
        .output()
        .map_err(io_err("cannot run initdb for", pgdata))?;
    if output.status.success() {
        tracing::info!(data = %pgdata.display(), "initialised a new PostgreSQL cluster");
        return Ok(());
    }
    // Leave no half-made cluster behind: the next start would take it for a real one.
    let _ = fs::remove_dir_all(pgdata);
    Err(ClusterError::Initdb {
        path: pgdata.to_path_buf(),
        output: format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
    })
}

/// The pid of a postmaster that is really running on `pgdata`, if any.
fn live_postmaster(pgdata: &Path) -> Option<i32> {
    let text = fs::read_to_string(pgdata.join("postmaster.pid")).ok()?;
    let pid: i32 = text.lines().next()?.trim().parse().ok()?;
    let recorded_dir = text.lines().nth(1)?.trim();
    is_postmaster_of(pid, recorded_dir).then_some(pid)
}

/// A crash can leave a pid file whose pid now belongs to an unrelated process; PostgreSQL
/// would then refuse to start. Only a `postgres` process with that data directory counts.
fn is_postmaster_of(pid: i32, pgdata: &str) -> bool {
    if pid <= 0 || kill(Pid::from_raw(pid), None).is_err() {
        return false;
    }
    let Ok(cmdline) = fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
    let is_postgres = args
        .first()
        .and_then(|a| Path::new(std::str::from_utf8(a).ok()?).file_name())
        .is_some_and(|n| n == "postgres");
    is_postgres && args.contains(&pgdata.as_bytes())
}

/// A crash can leave lock files naming a pid that now belongs to an unrelated process;
/// PostgreSQL would take that for a live server and refuse to start, so those locks go. (No
/// live postmaster of ours is running: the caller checked.) A lock whose process is gone is
/// left to PostgreSQL, which then makes sure, through the shared memory the lock names, that
/// no server process of the dead postmaster still runs: after a postmaster is killed its
/// backends take a moment to notice and exit, and deleting the lock would skip that check.
fn remove_foreign_locks(pgdata: &Path, socket_dir: &Path) {
    for lock in [
        pgdata.join("postmaster.pid"),
        socket_dir.join(format!(".s.PGSQL.{PORT}.lock")),
    ] {
        let owner = fs::read_to_string(&lock)
            .ok()
            .and_then(|text| text.lines().next()?.trim().parse::<i32>().ok());
        if owner.is_some_and(|pid| pid > 0 && kill(Pid::from_raw(pid), None).is_ok()) {
            tracing::warn!(file = %lock.display(), "removing a stale lock left by a crash");
            let _ = fs::remove_file(&lock);
        }
    }
}

fn log_tail(path: &Path, from: Option<u64>) -> String {
    let Ok(mut file) = File::open(path) else {
        return String::new();
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let start = from.unwrap_or(0).max(len.saturating_sub(4000));
    let mut text = String::new();
    if file.seek(SeekFrom::Start(start)).is_ok() {
        let _ = file.read_to_string(&mut text);
    }
    text
}
