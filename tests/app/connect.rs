//! Connect: the SSH line, the RDP file, the HTTPS link, Reveal, Logged In on first launch,
//! and the password wiped when the session ends.

use reqwest::StatusCode;
use uuid::Uuid;

use crate::support::{
    TestApp, fresh_demo_database, new_client, settings, spawn_app_on, spawn_demo_app,
};
use crate::wizard::{Request, request};

const DEMO: &str = "portcullis-demo";

/// alice's Available session for `activity` on `resource` (approval done behind the scenes).
pub(crate) async fn available(app: &TestApp, activity: &str, resource: &str) -> Uuid {
    app.login_with(&app.client, "alice", DEMO).await;
    request(
        app,
        &app.client,
        &Request {
            activity,
            policy: None,
            resources: &[resource],
            notes: "Maintenance",
            ticket: "",
            at: None,
        },
    )
    .await;
    let id: Uuid = sqlx::query_scalar("SELECT id FROM activity_sessions ORDER BY id DESC LIMIT 1")
        .fetch_one(&app.db)
        .await
        .unwrap();
    sqlx::query("UPDATE activity_sessions SET status = 'provisioning', current_tier = NULL WHERE id = $1 AND status = 'waiting_for_approval'")
        .bind(id)
        .execute(&app.db)
        .await
        .unwrap();
    portcullis::worker::provision(&app.db, &app.secrets, Some(&[id]))
        .await
        .unwrap();
    assert_eq!(status(app, id).await, "available");
    id
}

async fn status(app: &TestApp, id: Uuid) -> String {
    sqlx::query_scalar("SELECT status::text FROM activity_sessions WHERE id = $1")
        .bind(id)
        .fetch_one(&app.db)
        .await
        .unwrap()
}

async fn password(app: &TestApp, id: Uuid) -> String {
    let sealed: Vec<u8> =
        sqlx::query_scalar("SELECT password_ciphertext FROM activity_sessions WHERE id = $1")
            .bind(id)
            .fetch_one(&app.db)
            .await
            .unwrap();
    app.secrets.open(id, &sealed).unwrap()
}

async fn events(app: &TestApp, id: Uuid) -> Vec<String> {
    sqlx::query_scalar("SELECT kind::text FROM session_events WHERE session_id = $1 ORDER BY id")
        .bind(id)
        .fetch_all(&app.db)
        .await
        .unwrap()
}

async fn demo() -> TestApp {
    spawn_demo_app().await
}

#[tokio::test]
async fn ssh_sessions_show_the_command_and_reveal_the_password_only_on_request() {
    let app = demo().await;
    let id = available(&app, "Linux break-glass", "lnx-web-01").await;
    let secret = password(&app, id).await;
    let dashboard = app.get("/dashboard").await;
    assert!(
        dashboard.body.contains(&format!("/sessions/{id}/terminal")),
        "the Connection icon opens the browser terminal; the Connect page is one step further"
    );

    let page = app.get(&format!("/sessions/{id}/connect")).await;
    assert_eq!(page.status, StatusCode::OK);
    let login: String =
        sqlx::query_scalar("SELECT login_account FROM activity_sessions WHERE id = $1")
            .bind(id)
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(
        page.texts("#ssh-command"),
        [format!("ssh -p 22 {login}@lnx-web-01.corp.example")]
    );
    assert!(!page.body.contains(&secret), "no password before Reveal");
    assert!(
        page.texts("#connection-string").is_empty(),
        "the connection string only on demand"
    );
    let shown = app
        .post(&format!("/sessions/{id}/connection-string"), &[])
        .await;
    assert!(shown.texts("#connection-string")[0].starts_with("pcs1."));
    assert_eq!(
        status(&app, id).await,
        "available",
        "looking is not connecting"
    );

    // Reveal without the CSRF token: refused, nothing logged.
    let forged = app.post_raw(&format!("/sessions/{id}/reveal"), &[]).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert!(!forged.body.contains(&secret));
    assert_eq!(
        events(&app, id).await,
        ["requested", "provisioned", "connection_string_shown"]
    );

    let revealed = app.post(&format!("/sessions/{id}/reveal"), &[]).await;
    assert_eq!(revealed.status, StatusCode::OK);
    assert_eq!(revealed.texts("#password"), std::slice::from_ref(&secret));
    assert_eq!(revealed.headers["cache-control"], "no-store");
    assert_eq!(
        events(&app, id).await,
        [
            "requested",
            "provisioned",
            "connection_string_shown",
            "password_revealed",
        ]
    );
    assert_eq!(
        status(&app, id).await,
        "available",
        "revealing is not connecting: only the gateway or a launch logs in"
    );
    let copied = app
        .post(
            &format!("/sessions/{id}/launch"),
            &[("how", "ssh-copy"), ("background", "1")],
        )
        .await;
    assert_eq!(copied.status, StatusCode::NO_CONTENT);
    assert_eq!(
        status(&app, id).await,
        "available",
        "a copied line is not a connection"
    );
    // Pages that did not ask never carry it.
    for path in [
        format!("/sessions/{id}/connect"),
        format!("/sessions/{id}"),
        "/dashboard".into(),
    ] {
        assert!(!app.get(&path).await.body.contains(&secret), "{path}");
    }
    // A second reveal is logged again, without another transition.
    app.post(&format!("/sessions/{id}/reveal"), &[]).await;
    assert_eq!(
        events(&app, id)
            .await
            .iter()
            .filter(|k| *k == "password_revealed")
            .count(),
        2
    );
}

#[tokio::test]
async fn a_jump_host_appears_in_the_ssh_line() {
    let mut s = settings();
    s.ssh_jump_host = Some("bastion.corp.example:22".into());
    s.gateway_host = Some("gateway.corp.example".into());
    let app = spawn_app_on(fresh_demo_database().await, s).await;
    let id = available(&app, "Linux break-glass", "lnx-web-02").await;
    let page = app
        .post(&format!("/sessions/{id}/connection-string"), &[])
        .await;
    assert!(
        page.texts("#ssh-command")[0].starts_with("ssh -J bastion.corp.example:22 -p 22 pc-alice-")
    );
    let conn = page.texts("#connection-string")[0].clone();
    assert!(
        page.texts("#client-settings")[0].contains(&format!("ssh {conn}@gateway.corp.example"))
    );
    assert_eq!(
        portcullis::db::sessions::verify_connection_string(&app.db, &app.secrets, &conn)
            .await
            .unwrap(),
        Some(id),
        "the gateway can check it"
    );
}

#[tokio::test]
async fn rdp_sessions_download_a_file_and_that_is_the_first_launch() {
    let app = demo().await;
    let id = available(&app, "Windows server administration", "win-srv-01").await;
    let response = app
        .client
        .post(app.url(&format!("/sessions/{id}/rdp")))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("csrf_token={}", app.csrf_with(&app.client).await))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "application/x-rdp");
    assert_eq!(
        response.headers()["content-disposition"],
        "attachment; filename=\"win-srv-01.rdp\""
    );
    let file = response.text().await.unwrap();
    let settings: std::collections::HashMap<&str, &str> = file
        .split("\r\n")
        .filter(|l| !l.is_empty())
        .map(|l| {
            let mut p = l.splitn(3, ':');
            let (k, _, v) = (p.next().unwrap(), p.next().unwrap(), p.next().unwrap());
            (k, v)
        })
        .collect();
    assert_eq!(settings["full address"], "win-srv-01.corp.example:3389");
    assert!(settings["username"].starts_with("pc_alice_"), "{file}");
    assert!(!file.contains(&password(&app, id).await));
    assert_eq!(status(&app, id).await, "logged_in");
    let comment: String =
        sqlx::query_scalar("SELECT comment FROM session_events WHERE kind = 'connected'")
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(comment, "Connected: downloaded the RDP file.");
}

#[tokio::test]
async fn https_sessions_link_to_the_resource_and_opening_it_logs_in() {
    let app = demo().await;
    let id = available(&app, "Web console access", "Grafana").await;
    let page = app.get(&format!("/sessions/{id}/connect")).await;
    let link = page
        .html()
        .select(&scraper::Selector::parse("#open-link").unwrap())
        .next()
        .unwrap()
        .value()
        .attr("href")
        .unwrap()
        .to_owned();
    assert_eq!(link, "https://grafana.corp.example/");
    assert!(
        page.texts("#reveal").is_empty(),
        "own account: no password to reveal"
    );
    let launched = app
        .post(
            &format!("/sessions/{id}/launch"),
            &[("how", "https"), ("background", "1")],
        )
        .await;
    assert_eq!(launched.status, StatusCode::NO_CONTENT);
    assert_eq!(status(&app, id).await, "logged_in");
}

#[tokio::test]
async fn another_user_gets_not_found() {
    let app = demo().await;
    let id = available(&app, "Linux break-glass", "lnx-web-03").await;
    let erin = new_client();
    app.login_with(&erin, "erin", DEMO).await;
    assert_eq!(
        app.get_with(&erin, &format!("/sessions/{id}/connect"))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.post_with(&erin, &format!("/sessions/{id}/reveal"), &[])
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.post_with(
            &erin,
            &format!("/sessions/{id}/launch"),
            &[("how", "https")]
        )
        .await
        .status,
        StatusCode::NOT_FOUND
    );
    // Not even an administrator sees someone else's password.
    let carol = new_client();
    app.login_with(&carol, "carol", DEMO).await;
    assert_eq!(
        app.post_with(&carol, &format!("/sessions/{id}/reveal"), &[])
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(status(&app, id).await, "available");
}

#[tokio::test]
async fn sessions_that_cannot_be_used_say_why() {
    let app = demo().await;
    let locked = available(&app, "Linux break-glass", "lnx-web-04").await;
    let secret = password(&app, locked).await;
    request(
        &app,
        &app.client,
        &Request {
            activity: "Linux administration",
            policy: Some("Linux operations"),
            resources: &["lnx-web-05"],
            notes: "x",
            ticket: "",
            at: None,
        },
    )
    .await;
    let waiting: Uuid =
        sqlx::query_scalar("SELECT id FROM activity_sessions ORDER BY id DESC LIMIT 1")
            .fetch_one(&app.db)
            .await
            .unwrap();
    sqlx::query("UPDATE activity_sessions SET status = 'locked', locked_from = 'available', lock_message = 'Incident 7' WHERE id = $1")
        .bind(locked)
        .execute(&app.db)
        .await
        .unwrap();
    let cases = [
        (
            waiting,
            "Waiting for Approval: you can connect once it is approved.",
        ),
        (
            locked,
            "Locked by an administrator: Incident 7. No new connection until it is unlocked.",
        ),
    ];
    for (id, expected) in cases {
        let page = app.get(&format!("/sessions/{id}/connect")).await;
        assert_eq!(page.status, StatusCode::CONFLICT, "{expected}");
        assert_eq!(page.texts("#refusal"), [expected]);
        let reveal = app.post(&format!("/sessions/{id}/reveal"), &[]).await;
        assert!(!reveal.body.contains(&secret), "{expected}");
        assert_eq!(
            app.post(&format!("/sessions/{id}/launch"), &[("how", "ssh-copy")])
                .await
                .status,
            StatusCode::CONFLICT
        );
    }
    sqlx::query(
        "UPDATE activity_sessions SET status = 'pending', current_tier = NULL WHERE id = $1",
    )
    .bind(waiting)
    .execute(&app.db)
    .await
    .unwrap();
    let page = app.get(&format!("/sessions/{waiting}/connect")).await;
    assert_eq!(
        page.texts("#refusal"),
        ["Pending: you can connect when the session starts."]
    );
    assert_eq!(status(&app, locked).await, "locked", "nothing launched");
}

#[tokio::test]
async fn ending_the_session_wipes_the_password_and_the_page_says_it_is_over() {
    let app = demo().await;
    let id = available(&app, "Windows server administration", "win-srv-02").await;
    app.post(
        "/dashboard/end",
        &[("id", &id.to_string()), ("confirm", "yes")],
    )
    .await;
    let (status, sealed): (String, Option<Vec<u8>>) = sqlx::query_as(
        "SELECT status::text, password_ciphertext FROM activity_sessions WHERE id = $1",
    )
    .bind(id)
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!((status.as_str(), sealed), ("completed", None));
    let page = app.get(&format!("/sessions/{id}/connect")).await;
    assert_eq!(
        page.texts("#refusal"),
        ["This session is over (Completed). Create Session to request access again."]
    );
}

#[tokio::test]
async fn a_session_on_a_demo_resource_says_plainly_that_no_account_is_created() {
    let app = demo().await;
    let id = available(&app, "Linux break-glass", "lnx-web-01").await;
    let page = app.get(&format!("/sessions/{id}/connect")).await;
    assert_eq!(
        page.texts("#account-note"),
        ["Simulated: no account is created on lnx-web-01."]
    );
    let details = app.get(&format!("/sessions/{id}")).await;
    assert_eq!(
        details.texts("#account-note"),
        ["Simulated: no account is created on lnx-web-01."]
    );
}

/// Where each row's Connection icon leads, by session id.
fn connection_icons(page: &crate::support::Page) -> std::collections::HashMap<String, String> {
    let row = scraper::Selector::parse("#sessions tbody tr[data-session]").unwrap();
    let icon = scraper::Selector::parse("a.connect").unwrap();
    page.html()
        .select(&row)
        .filter_map(|tr| {
            let id = tr.value().attr("data-session")?.to_owned();
            let href = tr.select(&icon).next()?.value().attr("href")?.to_owned();
            Some((id, href))
        })
        .collect()
}

#[tokio::test]
async fn the_connection_icon_opens_the_browser_terminal_for_ssh_and_the_connect_page_otherwise() {
    let app = demo().await;
    let ssh = available(&app, "Linux break-glass", "lnx-web-01").await;
    let rdp = available(&app, "Windows server administration", "win-srv-01").await;
    let https = available(&app, "Web console access", "Grafana").await;
    let icons = connection_icons(&app.get("/dashboard").await);
    assert_eq!(icons.len(), 3, "{icons:?}");
    assert_eq!(icons[&ssh.to_string()], format!("/sessions/{ssh}/terminal"));
    // The Connect page has the .rdp file (a POST form) and the HTTPS link.
    assert_eq!(icons[&rdp.to_string()], format!("/sessions/{rdp}/connect"));
    assert_eq!(
        icons[&https.to_string()],
        format!("/sessions/{https}/connect")
    );
    let terminal = app.get(&icons[&ssh.to_string()]).await;
    assert_eq!(terminal.status, StatusCode::OK);
    assert!(terminal.body.contains("/terminal/socket"));

    // Still the terminal once Logged In (the RDP file's download logs its session in).
    sqlx::query("UPDATE activity_sessions SET status = 'logged_in' WHERE id = $1")
        .bind(ssh)
        .execute(&app.db)
        .await
        .unwrap();
    let icons = connection_icons(&app.get("/dashboard").await);
    assert_eq!(icons[&ssh.to_string()], format!("/sessions/{ssh}/terminal"));
    // Locked: no icon at all.
    sqlx::query(
        "UPDATE activity_sessions SET status = 'locked', locked_from = 'logged_in',
                lock_message = 'Incident 7' WHERE id = $1",
    )
    .bind(ssh)
    .execute(&app.db)
    .await
    .unwrap();
    let icons = connection_icons(&app.get("/dashboard").await);
    assert!(!icons.contains_key(&ssh.to_string()), "{icons:?}");
}
