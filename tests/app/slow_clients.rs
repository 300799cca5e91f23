//! The server's connection loop (`server::connections`) against clients that are slow on
//! purpose: half-sent headers, a body that never ends, idle keep-alive connections, and more
//! of them than the connection cap. Everything on 127.0.0.1, bounded in count and time.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use portcullis::AppState;
use portcullis::server::connections::{self, Limits};
use reqwest::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::support::{fresh_database, new_client, settings};

const HEADER: Duration = Duration::from_secs(1);
const BODY: Duration = Duration::from_secs(2);
const IDLE: Duration = Duration::from_secs(3);
const CAP: u32 = 10;

/// The application served by the real connection loop, with short timeouts and a small cap.
async fn serve_limited() -> SocketAddr {
    let db = portcullis::db::pool_options(5)
        .connect_with(fresh_database().await)
        .await
        .unwrap();
    let state = AppState {
        db,
        settings: Arc::new(settings()),
        secrets: portcullis::crypto::SecretBox::random(),
        live: portcullis::live::Hub::new(),
        sessions: portcullis::auth::cache::SessionCache::new(Duration::from_secs(30)),
    };
    let store = portcullis::session_store(&state);
    let app = portcullis::build_router(state, store);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let limits = Limits {
        header_timeout: HEADER,
        body_timeout: BODY,
        idle_timeout: IDLE,
        max_connections: CAP,
    };
    tokio::spawn(connections::serve(
        listener,
        app,
        limits,
        std::future::pending(),
    ));
    address
}

/// Reads until the server closes the connection (at most 20 s); what it sent.
async fn until_closed(stream: &mut TcpStream) -> String {
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut answer))
        .await
        .expect("the server closes the connection within 20 s")
        .ok();
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_sent_requests_beyond_the_cap_are_closed_and_a_normal_client_is_served() {
    let address = serve_limited().await;
    let started = Instant::now();
    let mut slow = Vec::new();
    for _ in 0..50 {
        let mut stream = TcpStream::connect(address).await.unwrap();
        // Headers begun, never finished.
        stream
            .write_all(b"GET /login HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: 1\r\n")
            .await
            .unwrap();
        slow.push(tokio::spawn(async move {
            let answer = until_closed(&mut stream).await;
            (started.elapsed(), answer)
        }));
    }

    let browser = new_client();
    let page = tokio::time::timeout(Duration::from_secs(15), async {
        browser
            .get(format!("http://{address}/login"))
            .send()
            .await
            .unwrap()
    })
    .await
    .expect("a normal client is served while slow ones hold the cap");
    assert_eq!(page.status(), StatusCode::OK);
    let served = started.elapsed();

    let mut closed = Vec::new();
    for task in slow {
        let (after, answer) = task.await.unwrap();
        assert!(
            answer.is_empty() || answer.starts_with("HTTP/1.1 4"),
            "{answer}"
        );
        closed.push(after);
    }
    closed.sort();
    assert!(
        closed[0] >= HEADER - Duration::from_millis(100),
        "none closed before the header timeout: {:?}",
        closed[0]
    );
    // Past the cap, connections wait to be accepted: the second ten are taken only once the
    // first ten close, so at most ten can have closed before two header timeouts.
    let early = closed
        .iter()
        .filter(|t| **t < 2 * HEADER - Duration::from_millis(100))
        .count();
    assert!(
        early <= CAP as usize,
        "{early} closed within the first header timeout"
    );
    eprintln!(
        "slow clients: 50 half-sent, cap {CAP}, header timeout {HEADER:?}: normal client served after {served:?}, last slow one closed after {:?}",
        closed[closed.len() - 1]
    );
}

#[tokio::test]
async fn a_body_that_does_not_arrive_in_time_is_answered_408_and_closed() {
    let address = serve_limited().await;
    let mut stream = TcpStream::connect(address).await.unwrap();
    let started = Instant::now();
    stream
        .write_all(
            b"POST /login HTTP/1.1\r\nHost: 127.0.0.1\r\n\
              Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\nusername=a",
        )
        .await
        .unwrap();
    let answer = until_closed(&mut stream).await;
    let after = started.elapsed();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("Too slow"), "{answer}");
    assert!(after >= BODY - Duration::from_millis(100), "{after:?}");
}

#[tokio::test]
async fn an_idle_connection_is_kept_for_the_idle_timeout_then_closed() {
    let address = serve_limited().await;
    let mut stream = TcpStream::connect(address).await.unwrap();
    let request = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    let mut buffer = [0u8; 4096];
    stream.write_all(request).await.unwrap();
    let n = stream.read(&mut buffer).await.unwrap();
    assert!(buffer[..n].starts_with(b"HTTP/1.1 200"));

    // Idle for longer than the header timeout, less than the idle timeout: still open.
    tokio::time::sleep(HEADER * 2).await;
    stream.write_all(request).await.unwrap();
    let n = stream.read(&mut buffer).await.unwrap();
    assert!(
        buffer[..n].starts_with(b"HTTP/1.1 200"),
        "the kept-alive connection still answers: {}",
        String::from_utf8_lossy(&buffer[..n])
    );

    let idle_since = Instant::now();
    let rest = until_closed(&mut stream).await;
    let after = idle_since.elapsed();
    assert!(rest.is_empty(), "{rest}");
    assert!(
        after >= IDLE - Duration::from_millis(100) && after < IDLE + Duration::from_secs(2),
        "closed after {after:?}"
    );
}
