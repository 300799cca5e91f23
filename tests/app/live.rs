//! Live status: changes reach open event streams, across instances, filtered per user.

use std::time::Duration;

use reqwest::StatusCode;

use crate::support::{TestApp, new_client, settings, spawn_app, spawn_app_on, spawn_demo_app};
use crate::wizard::{Request, request};

const DEMO: &str = "portcullis-demo";

/// Reads an event stream until `needle` appears or `wait` passes; returns what was read.
async fn read_stream(mut response: reqwest::Response, needle: &str, wait: Duration) -> String {
    let mut seen = String::new();
    let deadline = tokio::time::Instant::now() + wait;
    while !seen.contains(needle) {
        match tokio::time::timeout_at(deadline, response.chunk()).await {
            Ok(Ok(Some(bytes))) => seen.push_str(&String::from_utf8_lossy(&bytes)),
            _ => break,
        }
    }
    seen
}

async fn open_stream(app: &TestApp, client: &reqwest::Client) -> reqwest::Response {
    let response = client.get(app.url("/events")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    response
}

#[tokio::test]
async fn an_approval_on_one_instance_reaches_the_requester_on_another() {
    let a = spawn_demo_app().await;
    let b = spawn_app_on(a.options.clone(), settings()).await;

    let alice = new_client();
    a.login_with(&alice, "alice", DEMO).await;
    request(
        &a,
        &alice,
        &Request {
            activity: "Linux administration",
            policy: Some("Linux operations"),
            resources: &["lnx-web-01"],
            notes: "x",
            ticket: "",
            at: None,
        },
    )
    .await;
    let id: uuid::Uuid = sqlx::query_scalar("SELECT id FROM activity_sessions")
        .fetch_one(&a.db)
        .await
        .unwrap();
    let alice_stream = open_stream(&a, &alice).await;
    let erin = new_client();
    a.login_with(&erin, "erin", DEMO).await;
    let erin_stream = open_stream(&a, &erin).await;
    // Let the streams subscribe before the change.
    tokio::time::sleep(Duration::from_millis(200)).await;

    let bob = new_client();
    b.login_with(&bob, "bob", DEMO).await;
    b.post_with(
        &bob,
        "/approvals/decide",
        &[
            ("id", &id.to_string()),
            ("decision", "approve"),
            ("comment", ""),
        ],
    )
    .await;

    let seen = read_stream(
        alice_stream,
        "\"status\":\"available\"",
        Duration::from_secs(10),
    )
    .await;
    assert!(seen.contains("event: session"), "{seen}");
    assert!(seen.contains(&format!("\"session\":\"{id}\"")), "{seen}");
    assert!(seen.contains("\"label\":\"Provisioning\""), "{seen}");
    assert!(seen.contains("\"label\":\"Available\""), "{seen}");
    assert!(seen.contains("\"resource\":\"lnx-web-01\""), "{seen}");

    let erins = read_stream(erin_stream, "lnx-web-01", Duration::from_secs(2)).await;
    assert!(
        !erins.contains("lnx-web-01"),
        "erin hears nothing of alice's session: {erins}"
    );
}

#[tokio::test]
async fn approvers_hear_of_new_requests_for_them() {
    let app = spawn_demo_app().await;
    let dave = new_client();
    app.login_with(&dave, "dave", DEMO).await;
    let stream = open_stream(&app, &dave).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let alice = new_client();
    app.login_with(&alice, "alice", DEMO).await;
    request(
        &app,
        &alice,
        &Request {
            activity: "Linux administration",
            policy: Some("Linux operations"),
            resources: &["lnx-web-02"],
            notes: "x",
            ticket: "",
            at: None,
        },
    )
    .await;
    let seen = read_stream(stream, "Waiting for Approval", Duration::from_secs(10)).await;
    assert!(seen.contains("\"resource\":\"lnx-web-02\""), "{seen}");
}

#[tokio::test]
async fn the_event_stream_is_for_signed_in_users() {
    let app = spawn_app().await;
    let page = app.get("/events").await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn a_background_reload_leaves_flash_messages_for_the_next_page() {
    let app = spawn_demo_app().await;
    app.login_with(&app.client, "alice", DEMO).await;
    app.post("/dashboard/end", &[]).await; // flashes "Tick the sessions to end first."
    let background = app
        .client
        .get(app.url("/dashboard"))
        .header("x-portcullis-refresh", "1")
        .send()
        .await
        .unwrap();
    assert!(
        !background
            .text()
            .await
            .unwrap()
            .contains("Tick the sessions")
    );
    assert_eq!(
        app.get("/dashboard").await.texts(".flash"),
        ["Tick the sessions to end first."]
    );
}
