//! SIGTERM under load: requests in flight finish, the process exits 0, and the built-in
//! PostgreSQL is shut down cleanly.

use std::path::Path;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use reqwest::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;

use crate::instance::Instance;
use crate::load::{Browser, Record};

const DEMO_USERS: [&str; 5] = ["alice", "bob", "carol", "dave", "erin"];
const CLIENTS: usize = 8;
const IN_FLIGHT: usize = 4;

/// Sends `request` on a new connection and reads the whole answer.
async fn exchange(port: u16, request: &str) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    answer
}

/// A sign-in whose body is only half sent: the server is waiting for the rest.
struct HalfSent {
    stream: TcpStream,
    rest: String,
}

/// Opens a session (cookie and CSRF token from the sign-in page), then starts a sign-in POST
/// and sends only its headers and half its body.
async fn start_sign_in(port: u16, username: &str) -> HalfSent {
    let page = exchange(
        port,
        "GET /login HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    )
    .await;
    let cookie = page
        .lines()
        .find_map(|l| l.strip_prefix("set-cookie: "))
        .and_then(|c| c.split(';').next())
        .expect("a session cookie")
        .to_owned();
    let token = page
        .split(r#"name="csrf_token" value=""#)
        .nth(1)
        .and_then(|t| t.split('"').next())
        .expect("a CSRF token")
        .to_owned();
    let body = format!("csrf_token={token}&username={username}&password=portcullis-demo");
    let (first, rest) = body.split_at(body.len() / 2);
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let head = format!(
        "POST /login HTTP/1.1\r\nHost: localhost\r\nCookie: {cookie}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{first}",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    HalfSent {
        stream,
        rest: rest.to_owned(),
    }
}

impl HalfSent {
    async fn finish(mut self) -> String {
        self.stream.write_all(self.rest.as_bytes()).await.unwrap();
        let mut answer = String::new();
        self.stream.read_to_string(&mut answer).await.unwrap();
        answer
    }
}

/// Processes whose command line names `dir` (the built-in cluster's postgres processes).
fn processes_using(dir: &Path) -> Vec<String> {
    let needle = dir.to_string_lossy().into_owned();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) {
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            if cmdline.contains(&needle) {
                found.push(format!(
                    "{}: {cmdline}",
                    entry.file_name().to_string_lossy()
                ));
            }
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_load_finishes_requests_in_flight_exits_0_and_stops_the_cluster() {
    let _turn = crate::one_at_a_time().await;
    let metrics_port = crate::instance::free_port();
    let metrics_bind = format!("127.0.0.1:{metrics_port}");
    let mut server = Instance::start(&[("PORTCULLIS_METRICS_BIND", metrics_bind.as_str())]);
    server.wait_ready().await;
    let pgdata = std::fs::canonicalize(server.data_dir().join("pg")).unwrap();
    let postmaster: i32 = std::fs::read_to_string(pgdata.join("postmaster.pid"))
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let base = server.url("");

    let record = Record::default();
    let (stop, stopped) = watch::channel(false);
    let mut clients = Vec::new();
    for i in 0..CLIENTS {
        let browser = Browser::new(&base, &record);
        let mut stopped = stopped.clone();
        clients.push(tokio::spawn(async move {
            browser
                .sign_in(DEMO_USERS[i % DEMO_USERS.len()], Duration::from_secs(30))
                .await;
            loop {
                tokio::select! {
                    page = browser.get("/dashboard") => {
                        if page.is_none() {
                            break;
                        }
                    }
                    _ = stopped.changed() => break,
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let ok_before = record
        .all()
        .iter()
        .filter(|o| o.what == "GET /dashboard" && o.status == Ok(StatusCode::OK))
        .count();
    assert!(ok_before > 0, "the load is running");

    // The metrics address counts the load; the main address has no /metrics without a token.
    let metrics = reqwest::get(format!("http://{metrics_bind}/metrics"))
        .await
        .unwrap();
    assert_eq!(metrics.status(), StatusCode::OK);
    let text = metrics.text().await.unwrap();
    let dashboard = text
        .lines()
        .find_map(|l| {
            l.strip_prefix(
                r#"portcullis_http_requests_total{method="GET",route="/dashboard",status="2xx"} "#,
            )
        })
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0);
    assert!(dashboard >= 1.0, "dashboard requests counted:\n{text}");
    let main = reqwest::get(server.url("/metrics")).await.unwrap();
    assert_eq!(main.status(), StatusCode::NOT_FOUND);

    let mut half_sent = Vec::new();
    for i in 0..IN_FLIGHT {
        half_sent.push(start_sign_in(server.port, DEMO_USERS[i % DEMO_USERS.len()]).await);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let signalled = Instant::now();
    server.signal(Signal::SIGTERM);
    tokio::time::sleep(Duration::from_millis(500)).await;
    for request in half_sent {
        let answer = request.finish().await;
        assert!(
            answer.starts_with("HTTP/1.1 303"),
            "a sign-in in flight at SIGTERM completes: {answer}"
        );
        assert!(answer.contains("location: /\r\n"), "{answer}");
    }

    let status = server.exit_status(Duration::from_secs(30)).await;
    let exited = signalled.elapsed();
    let _ = stop.send(true);
    for client in clients {
        client.await.unwrap();
    }
    let log = server.log();
    assert!(status.success(), "exit status 0, not {status}:\n{log}");
    assert!(!log.contains("panicked"), "{log}");

    let outcomes = record.all();
    eprintln!(
        "shutdown: exit {exited:?} after SIGTERM; {} answers, {} after the signal, {} failed to connect or were closed",
        outcomes.len(),
        outcomes
            .iter()
            .filter(|o| o.received >= signalled && o.status.is_ok())
            .count(),
        outcomes.iter().filter(|o| o.status.is_err()).count()
    );
    // Under load, every answer was a whole 200; what failed after the signal failed to
    // connect (the listener is closed) or found its idle keep-alive connection closed.
    for o in outcomes {
        match &o.status {
            Ok(s) => assert!(
                *s == StatusCode::OK || *s == StatusCode::SEE_OTHER,
                "{} answered {s}",
                o.what
            ),
            Err(e) => {
                assert!(
                    o.received >= signalled,
                    "{} failed before the signal: {e}",
                    o.what
                );
                assert!(
                    !e.starts_with("body cut off"),
                    "{} was cut off: {e}",
                    o.what
                );
            }
        }
    }

    assert!(
        !pgdata.join("postmaster.pid").exists(),
        "the cluster's pid file is gone"
    );
    assert!(
        !Path::new(&format!("/proc/{postmaster}")).exists()
            || !std::fs::read_to_string(format!("/proc/{postmaster}/cmdline"))
                .unwrap_or_default()
                .contains("postgres"),
        "the postmaster {postmaster} exited"
    );
    let left = processes_using(&pgdata);
    assert!(left.is_empty(), "no postgres process is left: {left:?}");
    // Beside the real `postgres` (PATH may hold links to initdb and postgres only).
    let postgres = portcullis::pg_cluster::cluster::find_bin_dir()
        .expect("PostgreSQL binaries")
        .join("postgres");
    let bin = std::fs::canonicalize(postgres).unwrap();
    let control = std::process::Command::new(bin.with_file_name("pg_controldata"))
        .arg("-D")
        .arg(&pgdata)
        .env("LC_ALL", "C")
        .output()
        .unwrap();
    let control = String::from_utf8_lossy(&control.stdout);
    let state = control
        .lines()
        .find(|l| l.starts_with("Database cluster state:"))
        .unwrap_or("");
    assert!(
        state.ends_with("shut down"),
        "a clean shutdown, not {state:?}"
    );
}
