//! The built-in PostgreSQL cluster and the `portcullis` binary that runs it.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use portcullis::pg_cluster::cluster::{Cluster, ClusterOptions};
use sqlx::Connection;

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_portcullis"));
    // The built-in database turns the SSH gateway on at 127.0.0.1:2222; tests running at
    // once each take a port of their own.
    c.env_remove("DATABASE_URL").env("RUST_LOG", "warn").env(
        "PORTCULLIS_SSH_GATEWAY_BIND",
        format!("127.0.0.1:{}", free_port()),
    );
    c
}

async fn count_users(cluster: &Cluster) -> i64 {
    let mut conn = sqlx::PgConnection::connect_with(&cluster.connect_options("portcullis"))
        .await
        .unwrap();
    sqlx::query_scalar("SELECT count(*) FROM users")
        .fetch_one(&mut conn)
        .await
        .unwrap()
}

#[tokio::test]
async fn the_cluster_starts_stops_and_keeps_its_data() {
    let dir = tempfile::tempdir().unwrap();
    let options = ClusterOptions::new(dir.path());

    let first = tokio::task::spawn_blocking({
        let o = options.clone();
        move || Cluster::start(&o).unwrap()
    })
    .await
    .unwrap();
    assert!(first.created());
    portcullis::pg_cluster::ensure_database(&first, "portcullis")
        .await
        .unwrap();
    let pool = sqlx::PgPool::connect_with(first.connect_options("portcullis"))
        .await
        .unwrap();
    portcullis::db::MIGRATOR.run(&pool).await.unwrap();
    sqlx::query(
        "INSERT INTO users (id, username, display_name) VALUES (gen_random_uuid(), 'kept', 'Kept')",
    )
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;
    tokio::task::spawn_blocking(move || first.stop().unwrap())
        .await
        .unwrap();
    assert!(
        !dir.path().join("pg/postmaster.pid").exists(),
        "a clean stop removes the pid file"
    );

    let second = tokio::task::spawn_blocking(move || Cluster::start(&options).unwrap())
        .await
        .unwrap();
    assert!(!second.created());
    assert_eq!(count_users(&second).await, 1);
    tokio::task::spawn_blocking(move || second.stop().unwrap())
        .await
        .unwrap();
}

#[tokio::test]
async fn a_stale_pid_file_left_by_a_crash_does_not_stop_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let options = ClusterOptions::new(dir.path());
    let c = tokio::task::spawn_blocking({
        let o = options.clone();
        move || Cluster::start(&o).unwrap()
    })
    .await
    .unwrap();
    tokio::task::spawn_blocking(move || c.stop().unwrap())
        .await
        .unwrap();

    // A crash leaves postmaster.pid naming a pid that is now some other process (ours).
    let pgdata = std::fs::canonicalize(dir.path().join("pg")).unwrap();
    std::fs::write(
        pgdata.join("postmaster.pid"),
        format!(
            "{}\n{}\n0\n5432\n\n\n0 0\nready\n",
            std::process::id(),
            pgdata.display()
        ),
    )
    .unwrap();
    let again = tokio::task::spawn_blocking(move || Cluster::start(&options))
        .await
        .unwrap();
    let again = again.expect("the stale lock is handled");
    tokio::task::spawn_blocking(move || again.stop().unwrap())
        .await
        .unwrap();
}

#[test]
fn missing_binaries_are_explained() {
    let message = portcullis::pg_cluster::cluster::ClusterError::BinariesNotFound.to_string();
    assert!(message.contains("apt-get install postgresql"));
    assert!(message.contains("DATABASE_URL"));
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_healthy(port: u16, child: &mut std::process::Child) {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            use std::io::{Read, Write};
            let _ = s.write_all(b"GET /readyz HTTP/1.0\r\n\r\n");
            let mut out = String::new();
            let _ = s.read_to_string(&mut out);
            if out.starts_with("HTTP/1.0 200") || out.starts_with("HTTP/1.1 200") {
                return;
            }
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("portcullis exited early: {status}");
        }
        assert!(Instant::now() < deadline, "portcullis did not become ready");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn sigterm_and_wait(child: &mut std::process::Child) -> std::process::ExitStatus {
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    child.wait().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_server_runs_its_own_database_with_demo_data_and_restarts_with_it_kept() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let start = || {
        bin()
            .env("PORTCULLIS_DATA_DIR", dir.path())
            .env("PORTCULLIS_BIND", format!("127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    let mut server = start();
    tokio::task::block_in_place(|| wait_healthy(port, &mut server));

    let app_url = format!("http://127.0.0.1:{port}");
    let client = crate::support::new_client();
    let login_page = client
        .get(format!("{app_url}/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let token = crate::support::Page {
        status: reqwest::StatusCode::OK,
        headers: Default::default(),
        body: login_page,
    }
    .csrf();
    let login = client
        .post(format!("{app_url}/login"))
        .form(&[
            ("csrf_token", token.as_str()),
            ("username", "alice"),
            ("password", "portcullis-demo"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(
        login.status(),
        reqwest::StatusCode::SEE_OTHER,
        "demo user alice signs in"
    );

    let status = tokio::task::block_in_place(|| sigterm_and_wait(&mut server));
    assert!(status.success(), "SIGTERM exits cleanly: {status}");
    assert!(
        !dir.path().join("pg/postmaster.pid").exists(),
        "the built-in cluster was stopped"
    );

    // Change something, start again: the change is kept and the demo is not loaded twice.
    let mut server = start();
    tokio::task::block_in_place(|| wait_healthy(port, &mut server));
    let cluster = tokio::task::spawn_blocking({
        let d = dir.path().to_path_buf();
        move || Cluster::start(&ClusterOptions::new(d)).unwrap()
    })
    .await
    .unwrap();
    let mut conn = sqlx::PgConnection::connect_with(&cluster.connect_options("portcullis"))
        .await
        .unwrap();
    let markers: i64 =
        sqlx::query_scalar("SELECT count(*) FROM installation WHERE key = 'demo_seed_loaded_at'")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert_eq!(markers, 1);
    assert_eq!(count_users(&cluster).await, 5);
    conn.close().await.unwrap();
    drop(cluster); // adopted: leaves the server's cluster running
    let status = tokio::task::block_in_place(|| sigterm_and_wait(&mut server));
    assert!(status.success());
}

/// Whether `/readyz` answers 200 now.
fn ready(port: u16) -> bool {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
    let _ = s.write_all(b"GET /readyz HTTP/1.0\r\n\r\n");
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out.starts_with("HTTP/1.0 200") || out.starts_with("HTTP/1.1 200")
}

/// Signs the demo user alice in on the server at `app_url`: the status of the sign-in.
async fn sign_in_alice(app_url: &str) -> reqwest::StatusCode {
    let client = crate::support::new_client();
    let login_page = client
        .get(format!("{app_url}/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let token = crate::support::Page {
        status: reqwest::StatusCode::OK,
        headers: Default::default(),
        body: login_page,
    }
    .csrf();
    client
        .post(format!("{app_url}/login"))
        .form(&[
            ("csrf_token", token.as_str()),
            ("username", "alice"),
            ("password", "portcullis-demo"),
        ])
        .send()
        .await
        .unwrap()
        .status()
}

/// The pid the built-in cluster's pid file names, if it can be read.
fn postmaster_pid(data_dir: &std::path::Path) -> Option<i32> {
    let text = std::fs::read_to_string(data_dir.join("pg/postmaster.pid")).ok()?;
    text.lines().next()?.trim().parse().ok()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_server_restarts_its_built_in_database_when_the_postmaster_is_killed() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let log = dir.path().join("stderr.log");
    let mut server = bin()
        .env("RUST_LOG", "info,sqlx=warn")
        .env("PORTCULLIS_DATA_DIR", dir.path().join("data"))
        .env("PORTCULLIS_BIND", format!("127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    tokio::task::block_in_place(|| wait_healthy(port, &mut server));
    let app_url = format!("http://127.0.0.1:{port}");
    assert_eq!(
        sign_in_alice(&app_url).await,
        reqwest::StatusCode::SEE_OTHER
    );

    let killed = postmaster_pid(&dir.path().join("data")).unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(killed),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();

    // Ready again, on a new postmaster, without a restart of Portcullis.
    let killed_at = Instant::now();
    let deadline = killed_at + Duration::from_secs(60);
    tokio::task::block_in_place(|| {
        while postmaster_pid(&dir.path().join("data")) == Some(killed) || !ready(port) {
            assert!(
                Instant::now() < deadline,
                "not ready again after the postmaster was killed:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    });
    eprintln!(
        "built-in cluster: ready again {:?} after its postmaster was killed",
        killed_at.elapsed()
    );
    assert!(
        matches!(server.try_wait(), Ok(None)),
        "the same Portcullis process"
    );
    assert_eq!(
        sign_in_alice(&app_url).await,
        reqwest::StatusCode::SEE_OTHER,
        "demo user alice signs in again"
    );
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(logged.contains("stopped unexpectedly"), "{logged}");
    assert!(logged.contains("running again"), "{logged}");

    let status = tokio::task::block_in_place(|| sigterm_and_wait(&mut server));
    assert!(status.success(), "SIGTERM exits cleanly: {status}");
    assert!(
        !dir.path().join("data/pg/postmaster.pid").exists(),
        "the restarted cluster was stopped"
    );
}

#[tokio::test]
async fn seed_apply_from_the_command_line_reports_the_line_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let seed = dir.path().join("bad.toml");
    std::fs::write(
        &seed,
        "[[groups]]\nname = \"Ops\"\nmembers = [\"nobody-here\"]\n",
    )
    .unwrap();
    let data = dir.path().join("data");
    let output = tokio::task::spawn_blocking({
        let (seed, data) = (seed.clone(), data.clone());
        move || {
            bin()
                .env("PORTCULLIS_DATA_DIR", &data)
                .args(["seed", "apply"])
                .arg(&seed)
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("bad.toml:3: groups[0].members: unknown user \"nobody-here\""),
        "{stderr}"
    );
    assert!(stderr.contains("Nothing was changed"), "{stderr}");

    let cluster =
        tokio::task::spawn_blocking(move || Cluster::start(&ClusterOptions::new(data)).unwrap())
            .await
            .unwrap();
    let mut conn = sqlx::PgConnection::connect_with(&cluster.connect_options("portcullis"))
        .await
        .unwrap();
    let groups: i64 = sqlx::query_scalar("SELECT count(*) FROM groups")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(groups, 0);
    conn.close().await.unwrap();
    tokio::task::spawn_blocking(move || cluster.stop().unwrap())
        .await
        .unwrap();
}

#[tokio::test]
async fn user_create_refuses_a_weak_password_and_accepts_a_strong_one() {
    let dir = tempfile::tempdir().unwrap();
    let run = |password: &'static str| {
        let d = dir.path().to_path_buf();
        move || {
            use std::io::Write;
            let mut child = bin()
                .env("PORTCULLIS_DATA_DIR", &d)
                .args([
                    "user",
                    "create",
                    "--username",
                    "frank",
                    "--role",
                    "admin",
                    "--password-stdin",
                ])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            child
                .stdin
                .take()
                .unwrap()
                .write_all(format!("{password}\n").as_bytes())
                .unwrap();
            child.wait_with_output().unwrap()
        }
    };
    let weak = tokio::task::spawn_blocking(run("password123"))
        .await
        .unwrap();
    assert!(!weak.status.success());
    assert!(
        String::from_utf8_lossy(&weak.stderr).contains("password"),
        "{}",
        String::from_utf8_lossy(&weak.stderr)
    );
    let empty = tokio::task::spawn_blocking(run("")).await.unwrap();
    assert!(String::from_utf8_lossy(&empty.stderr).contains("the password is empty"));

    let strong = tokio::task::spawn_blocking(run("violet-harbour-tractor-91"))
        .await
        .unwrap();
    assert!(
        strong.status.success(),
        "{}",
        String::from_utf8_lossy(&strong.stderr)
    );
    assert!(String::from_utf8_lossy(&strong.stdout).contains("Created frank (Administrator)."));

    let again = tokio::task::spawn_blocking(run("violet-harbour-tractor-91"))
        .await
        .unwrap();
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));
}

#[tokio::test]
async fn user_disable_enable_and_reset_password_work_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &'static [&'static str], stdin: &'static str| {
        let d = dir.path().to_path_buf();
        move || {
            use std::io::Write;
            let mut child = bin()
                .env("PORTCULLIS_DATA_DIR", &d)
                .args(args)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            child
                .stdin
                .take()
                .unwrap()
                .write_all(stdin.as_bytes())
                .unwrap();
            child.wait_with_output().unwrap()
        }
    };
    let created = tokio::task::spawn_blocking(run(
        &["user", "create", "--username", "gina", "--password-stdin"],
        "violet-harbour-tractor-91\n",
    ))
    .await
    .unwrap();
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );

    let disabled = tokio::task::spawn_blocking(run(&["user", "disable", "--username", "GINA"], ""))
        .await
        .unwrap();
    assert!(
        disabled.status.success(),
        "{}",
        String::from_utf8_lossy(&disabled.stderr)
    );
    let weak = tokio::task::spawn_blocking(run(
        &[
            "user",
            "reset-password",
            "--username",
            "gina",
            "--password-stdin",
        ],
        "gina12345678\n",
    ))
    .await
    .unwrap();
    assert!(!weak.status.success(), "a weak password is refused");
    let unknown =
        tokio::task::spawn_blocking(run(&["user", "disable", "--username", "nobody"], ""))
            .await
            .unwrap();
    assert!(!unknown.status.success());
    assert!(
        String::from_utf8_lossy(&unknown.stderr).contains("nobody"),
        "{}",
        String::from_utf8_lossy(&unknown.stderr)
    );

    let data = dir.path().to_path_buf();
    let cluster =
        tokio::task::spawn_blocking(move || Cluster::start(&ClusterOptions::new(data)).unwrap())
            .await
            .unwrap();
    let mut conn = sqlx::PgConnection::connect_with(&cluster.connect_options("portcullis"))
        .await
        .unwrap();
    let (disabled, hash): (bool, String) =
        sqlx::query_as("SELECT disabled, password_hash FROM users WHERE username = 'gina'")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert!(disabled);
    assert!(
        portcullis::auth::password::verify("violet-harbour-tractor-91".into(), Some(hash))
            .await
            .unwrap(),
        "the weak reset changed nothing"
    );
    conn.close().await.unwrap();
    tokio::task::spawn_blocking(move || cluster.stop().unwrap())
        .await
        .unwrap();

    let enabled = tokio::task::spawn_blocking(run(&["user", "enable", "--username", "gina"], ""))
        .await
        .unwrap();
    assert!(enabled.status.success());
    let reset = tokio::task::spawn_blocking(run(
        &[
            "user",
            "reset-password",
            "--username",
            "gina",
            "--password-stdin",
        ],
        "copper-lantern-meadow-47\n",
    ))
    .await
    .unwrap();
    assert!(
        reset.status.success(),
        "{}",
        String::from_utf8_lossy(&reset.stderr)
    );

    let data = dir.path().to_path_buf();
    let cluster =
        tokio::task::spawn_blocking(move || Cluster::start(&ClusterOptions::new(data)).unwrap())
            .await
            .unwrap();
    let mut conn = sqlx::PgConnection::connect_with(&cluster.connect_options("portcullis"))
        .await
        .unwrap();
    let (disabled, hash): (bool, String) =
        sqlx::query_as("SELECT disabled, password_hash FROM users WHERE username = 'gina'")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert!(!disabled);
    assert!(
        portcullis::auth::password::verify("copper-lantern-meadow-47".into(), Some(hash))
            .await
            .unwrap()
    );
    conn.close().await.unwrap();
    tokio::task::spawn_blocking(move || cluster.stop().unwrap())
        .await
        .unwrap();
}
