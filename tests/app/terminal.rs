//! The browser terminal's WebSocket, spoken as a browser does (the signed-in cookie and this
//! site's Origin), against the real sshd target of the gateway tests: the same upstream path,
//! recording, Logged In and cut-offs as the SSH gateway.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use reqwest::cookie::CookieStore;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use uuid::Uuid;

use crate::gateway::Rig;
use crate::provisioning::{DEMO, status};
use crate::support::{TestApp, new_client};

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// alice's session cookie, from a sign-in of a client of our own.
async fn cookie_of(app: &TestApp, username: &str) -> String {
    let jar = Arc::new(reqwest::cookie::Jar::default());
    let client = reqwest::Client::builder()
        .cookie_provider(jar.clone())
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    app.login_with(&client, username, DEMO).await;
    let url = reqwest::Url::parse(&app.url("/")).unwrap();
    jar.cookies(&url)
        .expect("signed in")
        .to_str()
        .unwrap()
        .to_owned()
}

async fn open(app: &TestApp, id: Uuid, cookie: &str, origin: &str) -> Result<Socket, WsError> {
    let url = format!(
        "ws://{}/sessions/{id}/terminal/socket?cols=100&rows=30",
        app.address
    );
    let mut request = url.into_client_request().unwrap();
    let headers = request.headers_mut();
    headers.insert("cookie", HeaderValue::from_str(cookie).unwrap());
    headers.insert("origin", HeaderValue::from_str(origin).unwrap());
    tokio_tungstenite::connect_async(request)
        .await
        .map(|(socket, _)| socket)
}

/// What the terminal shows until `text` appears (or the socket closes, or time runs out),
/// and the reason of a `closed` message if one came.
async fn read_until(socket: &mut Socket, text: &str, within: Duration) -> (String, Option<String>) {
    let deadline = Instant::now() + within;
    let mut seen = String::new();
    while !seen.contains(text) {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, socket.next()).await {
            Ok(Some(Ok(Message::Binary(bytes)))) => seen.push_str(&String::from_utf8_lossy(&bytes)),
            Ok(Some(Ok(Message::Text(t)))) => {
                let v: serde_json::Value = serde_json::from_str(&t).unwrap();
                assert_eq!(v["type"], "closed", "{t}");
                return (seen, v["reason"].as_str().map(str::to_owned));
            }
            Ok(Some(Ok(_))) => {}
            Ok(Some(Err(_)) | None) | Err(_) => break,
        }
    }
    (seen, None)
}

#[tokio::test]
async fn the_browser_terminal_runs_a_shell_is_recorded_logs_in_and_end_closes_it() {
    let (rig, id) = Rig::start().await;
    let app = &rig.app;
    let cookie = cookie_of(app, "alice").await;
    let origin = format!("http://{}", app.address);

    // The page offers it, and links the socket.
    let page = app.get(&format!("/sessions/{id}/terminal")).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body
            .contains(&format!("/sessions/{id}/terminal/socket"))
    );
    let connect = app.get(&format!("/sessions/{id}/connect")).await;
    assert!(connect.body.contains(&format!("/sessions/{id}/terminal\"")));

    let mut socket = open(app, id, &cookie, &origin).await.expect("opens");
    socket
        .send(Message::Text(
            r#"{"type":"resize","cols":120,"rows":40}"#.into(),
        ))
        .await
        .unwrap();
    socket
        .send(Message::Binary(
            b"stty size; echo hello-$((40+2))\r".to_vec().into(),
        ))
        .await
        .unwrap();
    let (seen, closed) = read_until(&mut socket, "hello-42", Duration::from_secs(15)).await;
    assert!(seen.contains("hello-42"), "{seen:?} {closed:?}");
    assert!(
        seen.contains("40 120"),
        "the resize reached the target: {seen:?}"
    );
    assert_eq!(status(app, id).await, "logged_in");

    // End Session closes it within two seconds, saying why.
    let started = Instant::now();
    app.post(
        "/dashboard/end",
        &[("id", &id.to_string()), ("confirm", "yes")],
    )
    .await;
    let (_, reason) = read_until(&mut socket, "\u{0}never", Duration::from_secs(5)).await;
    assert!(
        started.elapsed() <= Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert!(
        reason
            .as_deref()
            .unwrap_or("")
            .contains("the session ended"),
        "{reason:?}"
    );

    let (via, plain): (String, String) = sqlx::query_as(
        "SELECT r.via::text, coalesce(string_agg(c.plain, '' ORDER BY c.seq), '')
         FROM recordings r LEFT JOIN recording_chunks c ON c.recording_id = r.id
         WHERE r.session_id = $1 GROUP BY r.id",
    )
    .bind(id)
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(via, "browser");
    assert!(plain.contains("hello-42"), "{plain}");
}

#[tokio::test]
async fn the_socket_refuses_another_origin_another_user_and_an_unusable_session() {
    let (rig, id) = Rig::start().await;
    let app = &rig.app;
    let alice = cookie_of(app, "alice").await;
    let origin = format!("http://{}", app.address);

    // Another site's page, with alice's cookie: refused before anything opens.
    match open(app, id, &alice, "https://evil.example").await {
        Err(WsError::Http(response)) => assert_eq!(response.status(), 403),
        other => panic!("{:?}", other.map(|_| "opened")),
    }
    // bob, signed in, on alice's session: as if it did not exist.
    let bob = cookie_of(app, "bob").await;
    match open(app, id, &bob, &origin).await {
        Err(WsError::Http(response)) => assert_eq!(response.status(), 404),
        other => panic!("{:?}", other.map(|_| "opened")),
    }
    // Locked: the socket opens only to say why, and nothing is recorded.
    let carol = new_client();
    app.login_with(&carol, "carol", DEMO).await;
    app.post_with(
        &carol,
        &format!("/admin/sessions/{id}/lock"),
        &[("message", "Incident review")],
    )
    .await;
    assert_eq!(status(app, id).await, "locked");
    let mut socket = open(app, id, &alice, &origin)
        .await
        .expect("opens to say why");
    let (_, reason) = read_until(&mut socket, "\u{0}never", Duration::from_secs(10)).await;
    assert!(
        reason.as_deref().unwrap_or("").contains("Locked"),
        "{reason:?}"
    );
    let recordings: i64 =
        sqlx::query_scalar("SELECT count(*) FROM recordings WHERE session_id = $1")
            .bind(id)
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(recordings, 0);
}

#[tokio::test]
async fn a_user_may_have_four_browser_terminals_open_and_the_fifth_says_why_it_did_not_open() {
    let (rig, id) = Rig::start().await;
    let app = &rig.app;
    let cookie = cookie_of(app, "alice").await;
    let origin = format!("http://{}", app.address);
    let recordings = || async {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM recordings WHERE session_id = $1")
            .bind(id)
            .fetch_one(&app.db)
            .await
            .unwrap()
    };

    let mut open_ones = Vec::new();
    for n in 0..portcullis::live::MAX_TERMINALS_PER_USER {
        let mut socket = open(app, id, &cookie, &origin).await.expect("opens");
        let line = format!("echo term-$((100+{n}))\r");
        socket
            .send(Message::Binary(line.into_bytes().into()))
            .await
            .unwrap();
        let want = format!("term-{}", 100 + n);
        let (seen, closed) = read_until(&mut socket, &want, Duration::from_secs(15)).await;
        assert!(seen.contains(&want), "{seen:?} {closed:?}");
        open_ones.push(socket);
    }
    assert_eq!(recordings().await, 4);

    // The fifth opens only to say why; nothing is opened upstream or recorded.
    let mut fifth = open(app, id, &cookie, &origin)
        .await
        .expect("opens to say why");
    let (_, reason) = read_until(&mut fifth, "\u{0}never", Duration::from_secs(10)).await;
    assert_eq!(
        reason.as_deref(),
        Some(
            "You have 4 browser terminals open already; close one to open another, or use the ssh line on the Connect page."
        )
    );
    assert_eq!(recordings().await, 4);

    // Closing one gives its place back.
    let mut first = open_ones.remove(0);
    first.close(None).await.unwrap();
    drop(first);
    let again = crate::support::settled(
        || async {
            let mut socket = open(app, id, &cookie, &origin).await.expect("opens");
            socket
                .send(Message::Binary(b"echo back-$((6*7))\r".to_vec().into()))
                .await
                .unwrap();
            read_until(&mut socket, "back-42", Duration::from_secs(15)).await
        },
        |(seen, _): &(String, Option<String>)| seen.contains("back-42"),
    )
    .await;
    assert!(again.0.contains("back-42"), "{again:?}");
}
