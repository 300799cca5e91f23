//! A hung database. Frozen: every process of its cluster stopped with SIGSTOP, so connections
//! neither fail nor answer (unlike a stopped server, which refuses them). Or a statement stuck
//! behind a lock. Pages and `/readyz` answer 503 within the configured timeouts, and all is
//! well again once it thaws.

use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use reqwest::StatusCode;

use crate::instance::{Instance, database_url};
use crate::load::{Browser, Read, Record, seed};
use crate::support::start_cluster;
use portcullis::pg_cluster::cluster::Cluster;

/// The settings under test, short so that the test is.
const ACQUIRE_SECONDS: u64 = 2;
const STATEMENT_SECONDS: u64 = 2;
/// What the answers may take beyond the timeouts on a loaded machine.
const MARGIN: Duration = Duration::from_secs(2);

/// The processes of a cluster, stopped until this is dropped (also when the test fails, so a
/// failed test leaves no frozen server behind).
struct Frozen(Vec<Pid>);

impl Frozen {
    /// Stops the postmaster first (so it starts nothing new), then every child of it: its
    /// backends and helpers, each in a session of its own, so not reached through its
    /// process group.
    fn freeze(pgdata: &std::path::Path) -> Self {
        let text = std::fs::read_to_string(pgdata.join("postmaster.pid")).unwrap();
        let postmaster: i32 = text.lines().next().unwrap().trim().parse().unwrap();
        let mut frozen = Self(Vec::new());
        kill(Pid::from_raw(postmaster), Signal::SIGSTOP).unwrap();
        frozen.0.push(Pid::from_raw(postmaster));
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            if parent_of(pid) == Some(postmaster)
                && kill(Pid::from_raw(pid), Signal::SIGSTOP).is_ok()
            {
                frozen.0.push(Pid::from_raw(pid));
            }
        }
        assert!(
            frozen.0.len() > 2,
            "the postmaster's children were found: {:?}",
            frozen.0
        );
        frozen
    }
}

impl Drop for Frozen {
    fn drop(&mut self) {
        for pid in self.0.iter().rev() {
            let _ = kill(*pid, Signal::SIGCONT);
        }
    }
}

/// The parent pid of `pid`, from `/proc/<pid>/stat` (the field after the parenthesised name).
fn parent_of(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(1)?.parse().ok()
}

/// The status of a GET of `path` by `browser`, and how long it took.
async fn timed(browser: &Browser, path: &str) -> (Option<StatusCode>, Duration, String) {
    let start = Instant::now();
    let page = browser.get(path).await;
    let took = start.elapsed();
    let body = page.as_ref().map(|p| p.body.clone()).unwrap_or_default();
    (page.map(|p| p.status), took, body)
}

/// A cluster of its own (freezing the suite's would stall every other test), with the load
/// seed's user `load1`, and the real binary serving it with the timeouts under test, `load1`
/// signed in.
async fn start() -> (tempfile::TempDir, Cluster, Instance, Browser) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    let cluster = tokio::task::spawn_blocking(move || start_cluster(&path))
        .await
        .unwrap();
    portcullis::pg_cluster::ensure_database(&cluster, "portcullis")
        .await
        .unwrap();
    let options = cluster.connect_options("portcullis");
    let db = sqlx::PgPool::connect_with(options.clone()).await.unwrap();
    portcullis::db::MIGRATOR.run(&db).await.unwrap();
    seed(&db, 1).await;
    db.close().await;

    let url = database_url(&options);
    let (acquire, statement) = (ACQUIRE_SECONDS.to_string(), STATEMENT_SECONDS.to_string());
    let mut server = Instance::start(&[
        ("DATABASE_URL", url.as_str()),
        ("PORTCULLIS_DB_ACQUIRE_TIMEOUT_SECONDS", acquire.as_str()),
        (
            "PORTCULLIS_DB_STATEMENT_TIMEOUT_SECONDS",
            statement.as_str(),
        ),
    ]);
    server.wait_ready().await;
    let browser = Browser::new(&server.url(""), &Record::default());
    browser.sign_in("load1", Duration::from_secs(30)).await;
    assert_eq!(timed(&browser, "/dashboard").await.0, Some(StatusCode::OK));
    (dir, cluster, server, browser)
}

async fn stop(server: Instance, cluster: Cluster) {
    drop(server);
    tokio::task::spawn_blocking(move || cluster.stop().unwrap())
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_database_answers_503_within_the_timeouts_and_recovers_when_it_thaws() {
    let _turn = crate::one_at_a_time().await;
    let (dir, cluster, mut server, browser) = start().await;

    let pgdata = std::fs::canonicalize(dir.path().join("pg")).unwrap();
    let frozen = Frozen::freeze(&pgdata);
    // `/readyz` gives up after the acquire timeout; a page after the statement timeout plus
    // a second, whether its connection was already open (the query is never answered) or
    // is a new one (the server never accepts it).
    let readyz_limit = Duration::from_secs(ACQUIRE_SECONDS) + MARGIN;
    let page_limit = Duration::from_secs(STATEMENT_SECONDS + 1) + MARGIN;
    let mut answers = Vec::new();
    for (path, limit) in [
        ("/readyz", readyz_limit),
        ("/dashboard", page_limit),
        ("/dashboard", page_limit),
        ("/readyz", readyz_limit),
    ] {
        let (status, took, body) = timed(&browser, path).await;
        answers.push(format!("{path}: {status:?} in {took:?}"));
        assert_eq!(
            status,
            Some(StatusCode::SERVICE_UNAVAILABLE),
            "{answers:?}\n{}",
            server.log()
        );
        assert!(
            took < limit,
            "{path} took {took:?} (limit {limit:?}): {answers:?}"
        );
        if path == "/dashboard" {
            assert!(body.contains("Temporarily unavailable"), "{body}");
        }
    }
    assert!(server.running(), "the server survived the freeze");

    let thawed = Instant::now();
    drop(frozen);
    let deadline = thawed + Duration::from_secs(15);
    loop {
        let (status, _, _) = timed(&browser, "/dashboard").await;
        if status == Some(StatusCode::OK) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no recovery after the thaw: {status:?}\n{}",
            server.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(timed(&browser, "/readyz").await.0, Some(StatusCode::OK));
    eprintln!(
        "frozen: {answers:?}; a page answered 200 again {:?} after the thaw",
        thawed.elapsed()
    );
    let log = server.log();
    assert!(!log.contains("panicked"), "no panic:\n{log}");
    stop(server, cluster).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statements_stuck_behind_a_lock_are_cancelled_by_the_server_and_answered_503() {
    let _turn = crate::one_at_a_time().await;
    let (_dir, cluster, mut server, browser) = start().await;
    let db = sqlx::PgPool::connect_with(cluster.connect_options("portcullis"))
        .await
        .unwrap();
    let visitor = Browser::new(&server.url(""), &Record::default());
    let limit = Duration::from_secs(STATEMENT_SECONDS + 1) + MARGIN;
    // Someone holds a table: the sessions a sign-in writes its new session into (reading the
    // sign-in page writes nothing), or the activity sessions the dashboard lists.
    for table in ["web_sessions", "activity_sessions"] {
        let token = visitor.get("/login").await.unwrap().csrf_token().unwrap();
        let mut tx = db.begin().await.unwrap();
        sqlx::query(&format!("LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE"))
            .execute(&mut *tx)
            .await
            .unwrap();
        let (status, took, body) = if table == "web_sessions" {
            let start = Instant::now();
            let page = visitor
                .post(
                    "/login",
                    &[
                        ("csrf_token", &token),
                        ("username", "load1"),
                        ("password", crate::load::PASSWORD),
                    ],
                )
                .await;
            let body = page.as_ref().map(|p| p.body.clone()).unwrap_or_default();
            (page.map(|p| p.status), start.elapsed(), body)
        } else {
            timed(&browser, "/dashboard").await
        };
        tx.rollback().await.unwrap();
        assert_eq!(
            status,
            Some(StatusCode::SERVICE_UNAVAILABLE),
            "{table}: {body}"
        );
        assert!(took < limit, "{table} took {took:?}");
        assert_eq!(
            timed(&browser, "/dashboard").await.0,
            Some(StatusCode::OK),
            "{table}"
        );
    }
    // PostgreSQL's own cancellation, not only our deadline.
    let log = server.log();
    assert!(
        log.contains("canceling statement due to statement timeout"),
        "{log}"
    );
    assert!(server.running());
    db.close().await;
    stop(server, cluster).await;
}
