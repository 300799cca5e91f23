//! The browser terminal in Chromium, against a real sshd target: alice opens it with the
//! dashboard row's Connection icon, types a command and sees its answer drawn by xterm.js.

use std::time::Duration;

use fantoccini::Locator;
use uuid::Uuid;

use crate::harness::Browser;
use crate::support::{TestApp, spawn_demo_app};
use crate::target_host::TargetHost;

/// Points lnx-web-01 and Linux break-glass at `host`, and gives alice an Available session
/// there, its account really made on the target by the worker.
async fn session_on(app: &TestApp, host: &TargetHost) -> Uuid {
    let credential = Uuid::new_v4();
    let sealed = app.secrets.seal(credential, &host.service_key);
    portcullis::db::provisioning::create_credential(
        &app.db,
        &portcullis::db::provisioning::NewCredential {
            id: credential,
            name: "test root",
            username: "root",
            sealed_secret: &sealed,
        },
    )
    .await
    .unwrap();
    sqlx::query(
        "UPDATE resources SET address = '127.0.0.1', port = $1, provisioner = 'linux_ssh',
                credential_id = $2, host_key = $3 WHERE name = 'lnx-web-01'",
    )
    .bind(i32::from(host.port))
    .bind(credential)
    .bind(&host.host_key)
    .execute(&app.db)
    .await
    .unwrap();
    let template = format!("{}-{{session}}", host.prefix);
    let request = Uuid::now_v7();
    let session = Uuid::now_v7();
    sqlx::query(
        "UPDATE activities SET login_mode = 'ephemeral', login_template = $1
         WHERE name = 'Linux break-glass'",
    )
    .bind(&template)
    .execute(&app.db)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO requests (id, requester_id, policy_id, profile_id, activity_id, policy_name,
             profile_name, activity_name, protocol, login_mode, login_template, notes, start_now,
             requested_start, duration_minutes, tier_count)
         SELECT $1, u.id, p.id, p.profile_id, a.id, 'Linux operations', 'Standard',
                'Linux break-glass', 'ssh', 'ephemeral', $2, 'Outage', true, now(), 120, 0
         FROM users u, access_policies p, activities a
         WHERE u.username = 'alice' AND p.name = 'Linux operations'
           AND a.name = 'Linux break-glass'",
    )
    .bind(request)
    .bind(&template)
    .execute(&app.db)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO activity_sessions (id, request_id, requester_id, resource_id, resource_name,
             resource_address, resource_port, activity_name, status, requested_start, ends_at)
         SELECT $1, r.id, r.requester_id, (SELECT id FROM resources WHERE name = 'lnx-web-01'),
                'lnx-web-01', '127.0.0.1', $3, 'Linux break-glass', 'provisioning',
                now(), now() + interval '2 hours'
         FROM requests r WHERE r.id = $2",
    )
    .bind(session)
    .bind(request)
    .bind(i32::from(host.port))
    .execute(&app.db)
    .await
    .unwrap();
    portcullis::worker::provision(&app.db, &app.secrets, Some(&[session]))
        .await
        .unwrap();
    portcullis::worker::tick(&app.db, &app.secrets)
        .await
        .unwrap();
    let status: String =
        sqlx::query_scalar("SELECT status::text FROM activity_sessions WHERE id = $1")
            .bind(session)
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(status, "available");
    session
}

#[tokio::test(flavor = "multi_thread")]
async fn alice_types_a_command_into_the_browser_terminal_and_sees_the_answer() {
    let host = TargetHost::start();
    let app = spawn_demo_app().await;
    let id = session_on(&app, &host).await;
    let browser = Browser::new().await;
    browser.login(&app, "alice", "portcullis-demo").await;
    // The dashboard row's Connection icon opens the terminal.
    browser.goto(&app, "/dashboard").await;
    browser.submit("#sessions a.connect").await;
    assert_eq!(browser.path().await, format!("/sessions/{id}/terminal"));
    browser
        .wait_for_text("#terminal-status", "Connected.", Duration::from_secs(20))
        .await;
    let input = browser
        .client
        .find(Locator::Css("#terminal .xterm-helper-textarea"))
        .await
        .unwrap();
    input.send_keys("echo browser-$((20+22))\n").await.unwrap();
    let rows = browser
        .wait_for_text(".xterm-rows", "browser-42", Duration::from_secs(20))
        .await;
    assert!(
        rows.contains("$((20+22))"),
        "the typed line is echoed too: {rows}"
    );
    // xterm.js's styles arrive as constructed style sheets (the CSP refuses its <style>
    // elements).
    let adopted = browser
        .client
        .execute("return document.adoptedStyleSheets.length", vec![])
        .await
        .unwrap();
    assert!(adopted.as_u64().unwrap_or(0) >= 1, "{adopted:?}");
    let status: String =
        sqlx::query_scalar("SELECT status::text FROM activity_sessions WHERE id = $1")
            .bind(id)
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(status, "logged_in");
    browser.close().await;
}
