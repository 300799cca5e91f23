//! The Connect page in a real browser: Reveal, Copy, and the password hidden again.

use std::time::{Duration, Instant};

use uuid::Uuid;

use crate::harness::Browser;
use crate::support::{TestApp, spawn_demo_app};

/// An Available session of alice's with an ephemeral account and a generated password.
pub(crate) async fn available_session(app: &TestApp) -> Uuid {
    let request = Uuid::now_v7();
    let session = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO requests (id, requester_id, policy_id, profile_id, activity_id, policy_name,
             profile_name, activity_name, protocol, login_mode, login_template, notes, start_now,
             requested_start, duration_minutes, tier_count)
         SELECT $1, u.id, p.id, p.profile_id, a.id, 'Linux operations', 'Standard',
                'Linux break-glass', 'ssh', 'ephemeral', 'pc-{username}-{session}', 'Outage', true,
                now(), 120, 0
         FROM users u, access_policies p, activities a
         WHERE u.username = 'alice' AND p.name = 'Linux operations'
           AND a.name = 'Linux break-glass'",
    )
    .bind(request)
    .execute(&app.db)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO activity_sessions (id, request_id, requester_id, resource_id, resource_name,
             resource_address, resource_port, activity_name, status, requested_start, ends_at)
         SELECT $1, r.id, r.requester_id, (SELECT id FROM resources WHERE name = 'lnx-web-01'),
                'lnx-web-01', 'lnx-web-01.corp.example', 22, 'Linux break-glass', 'provisioning',
                now(), now() + interval '2 hours'
         FROM requests r WHERE r.id = $2",
    )
    .bind(session)
    .bind(request)
    .execute(&app.db)
    .await
    .unwrap();
    portcullis::worker::provision(&app.db, &app.secrets, Some(&[session]))
        .await
        .unwrap();
    session
}

#[tokio::test(flavor = "multi_thread")]
async fn alice_reveals_and_copies_the_password_and_sees_it_hidden_after_twenty_seconds() {
    let app = spawn_demo_app().await;
    let id = available_session(&app).await;
    let sealed: Vec<u8> =
        sqlx::query_scalar("SELECT password_ciphertext FROM activity_sessions WHERE id = $1")
            .bind(id)
            .fetch_one(&app.db)
            .await
            .unwrap();
    let secret = app.secrets.open(id, &sealed).unwrap();

    let browser = Browser::new().await;
    browser.login(&app, "alice", "portcullis-demo").await;
    assert_eq!(
        browser.texts("#sessions tbody .status").await,
        ["Available"]
    );
    // For SSH the row's Connection icon opens the browser terminal; the Connect page (with
    // the ssh line and Reveal) is one step further.
    browser.submit("#sessions a.connect").await;
    assert_eq!(browser.path().await, format!("/sessions/{id}/terminal"));
    browser.goto(&app, &format!("/sessions/{id}/connect")).await;
    assert!(
        browser
            .text("h1")
            .await
            .starts_with("Connect: Linux break-glass on lnx-web-01")
    );
    assert!(
        browser
            .text("#ssh-command")
            .await
            .starts_with("ssh -p 22 pc-alice-")
    );

    browser.submit("#reveal").await;
    let revealed_at = Instant::now();
    assert_eq!(browser.text("#password").await, secret);
    browser.click("#copy-password").await;
    browser
        .wait_for_text(
            "#live-status",
            "Copied to the clipboard.",
            Duration::from_secs(5),
        )
        .await;

    browser
        .wait_for_text("#password-hint", "Hidden again.", Duration::from_secs(25))
        .await;
    assert!(
        revealed_at.elapsed() >= Duration::from_secs(19),
        "not before twenty seconds"
    );
    assert_ne!(browser.text("#password").await, secret);
    assert!(browser.texts("#copy-password").await.is_empty());

    let kinds: Vec<String> = sqlx::query_scalar(
        "SELECT kind::text FROM session_events WHERE session_id = $1 ORDER BY id",
    )
    .bind(id)
    .fetch_all(&app.db)
    .await
    .unwrap();
    assert_eq!(kinds, ["provisioned", "password_revealed"]);
    browser.close().await;
}
