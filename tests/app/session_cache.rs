//! The session cache (`auth::cache`): page views are answered from a kept copy of the
//! browser session, and nothing that changes a session or its account is ever missed for
//! longer than its announcement takes, whichever instance or tool makes the change.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use portcullis::domain::role::Role;
use reqwest::StatusCode;

use crate::support::{
    Page, TestApp, fresh_database, new_client, settings, settled, spawn_app_on,
    spawn_app_unannounced, spawn_app_with_cache,
};
use crate::wizard::activity_value;

const TOKEN: &str = "scrape-token-0123456789";
const DEMO: &str = "portcullis-demo";

async fn app_with(options: sqlx::postgres::PgConnectOptions, cache: Duration) -> TestApp {
    let mut settings = settings();
    settings.metrics_token = Some(TOKEN.into());
    spawn_app_with_cache(options, settings, cache).await
}

/// Session cache lookups so far, by result.
async fn lookups(app: &TestApp) -> BTreeMap<&'static str, f64> {
    let text = new_client()
        .get(app.url("/metrics"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let samples = crate::metrics::parse(&text);
    ["hit", "miss"]
        .into_iter()
        .map(|r| {
            let key = format!("portcullis_session_cache_lookups_total{{result=\"{r}\"}}");
            (r, samples.get(&key).copied().unwrap_or(0.0))
        })
        .collect()
}

/// Asks for `path` until it stops answering 200, for at most five seconds (the cache keeps
/// copies for 30, so only the announcement can do it in time): whether it then redirects to
/// the sign-in page.
async fn signed_out_soon(app: &TestApp, client: &reqwest::Client, path: &str) -> bool {
    let page = settled(
        || app.get_with(client, path),
        |p| p.status != StatusCode::OK,
    )
    .await;
    page.status == StatusCode::SEE_OTHER && page.location().starts_with("/login")
}

/// Asks for the dashboard until a view is answered from a kept copy (at most ten tries).
async fn answered_from_a_copy(app: &TestApp, client: &reqwest::Client) {
    for _ in 0..10 {
        let hits = lookups(app).await["hit"];
        assert_eq!(
            app.get_with(client, "/dashboard").await.status,
            StatusCode::OK
        );
        if lookups(app).await["hit"] > hits {
            return;
        }
    }
    panic!("no view was answered from a kept copy");
}

#[tokio::test]
async fn page_views_after_the_first_are_answered_from_the_kept_session() {
    let app = app_with(fresh_database().await, Duration::from_secs(30)).await;
    app.create_user("alice", Role::User).await;
    app.login("alice").await;
    let before = lookups(&app).await;
    for _ in 0..6 {
        assert_eq!(app.get("/dashboard").await.status, StatusCode::OK);
    }
    let after = lookups(&app).await;
    let (hits, misses) = (after["hit"] - before["hit"], after["miss"] - before["miss"]);
    // The first view after signing in reads the session and keeps it; the others do not read
    // it. (A second read happens only if the sign-in's own announcement arrives while the
    // first is under way, which makes that copy unsafe to keep.)
    assert_eq!(hits + misses, 6.0, "{before:?} {after:?}");
    assert!(
        (1.0..=2.0).contains(&misses) && hits >= 4.0,
        "{before:?} {after:?}"
    );
}

#[tokio::test]
async fn an_account_disabled_in_the_database_is_refused_once_announced() {
    let app = app_with(fresh_database().await, Duration::from_secs(30)).await;
    let id = app.create_user("alice", Role::User).await;
    app.login("alice").await;
    answered_from_a_copy(&app, &app.client).await;

    // Not through Portcullis: only the announcement can tell the cache.
    sqlx::query("UPDATE users SET disabled = true WHERE id = $1")
        .bind(id)
        .execute(&app.db)
        .await
        .unwrap();
    assert!(signed_out_soon(&app, &app.client, "/dashboard").await);
}

#[tokio::test]
async fn a_new_role_and_name_apply_once_announced() {
    let app = app_with(fresh_database().await, Duration::from_secs(30)).await;
    let id = app.create_user("alice", Role::User).await;
    app.login("alice").await;
    assert_eq!(app.get("/admin/users").await.status, StatusCode::FORBIDDEN);
    assert_eq!(app.get("/admin/users").await.status, StatusCode::FORBIDDEN);
    sqlx::query("UPDATE users SET role = 'admin', display_name = 'Alice Admin' WHERE id = $1")
        .bind(id)
        .execute(&app.db)
        .await
        .unwrap();
    let admin = settled(|| app.get("/admin/users"), |p| p.status == StatusCode::OK).await;
    assert_eq!(admin.status, StatusCode::OK);
    assert_eq!(admin.texts(".account-name"), ["Alice Admin"]);
}

#[tokio::test]
async fn becoming_an_approver_shows_the_approvals_tab_once_announced() {
    let app = app_with(fresh_database().await, Duration::from_secs(30)).await;
    app.seed_demo().await;
    let alice = new_client();
    app.login_with(&alice, "alice", DEMO).await;
    assert_eq!(
        app.get_with(&alice, "/approvals").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.get_with(&alice, "/approvals").await.status,
        StatusCode::NOT_FOUND
    );
    sqlx::query(
        "INSERT INTO group_members (group_id, user_id)
         SELECT g.id, u.id FROM groups g, users u WHERE g.name = 'Approvers' AND u.username = 'alice'",
    )
    .execute(&app.db)
    .await
    .unwrap();
    let status = settled(
        || async { app.get_with(&alice, "/approvals").await.status },
        |s| *s == StatusCode::OK,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "still {status}");
}

#[tokio::test]
async fn a_stolen_cookie_stops_working_when_its_owner_signs_out_on_another_instance() {
    let a = app_with(fresh_database().await, Duration::from_secs(30)).await;
    let b = spawn_app_on(a.options.clone(), settings()).await;
    b.wait_until_listening().await;
    a.create_user("alice", Role::User).await;
    let jar = std::sync::Arc::new(reqwest::cookie::Jar::default());
    let alice = reqwest::Client::builder()
        .cookie_provider(jar.clone())
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    a.login_with(&alice, "alice", crate::support::PASSWORD)
        .await;
    // Someone copies alice's cookies (session id and stamp) and uses them on instance A, which
    // keeps the session.
    use reqwest::cookie::CookieStore;
    let cookie = jar
        .cookies(&a.url("/").parse().unwrap())
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    assert!(cookie.contains("portcullis-v="), "{cookie}");
    let thief = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let as_thief = |path: &str| {
        thief
            .get(a.url(path))
            .header(reqwest::header::COOKIE, cookie.clone())
            .send()
    };
    let hits = lookups(&a).await["hit"];
    for _ in 0..10 {
        assert_eq!(as_thief("/dashboard").await.unwrap().status(), 200);
        if lookups(&a).await["hit"] > hits {
            break;
        }
    }
    assert!(lookups(&a).await["hit"] > hits, "the copy was in use");

    // alice signs out on instance B.
    let token = b.get_with(&alice, "/dashboard").await.csrf();
    let out = b
        .post_raw_with(&alice, "/logout", &[("csrf_token", &token)])
        .await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);

    let status = settled(
        || async { as_thief("/dashboard").await.unwrap().status() },
        |s| *s == StatusCode::SEE_OTHER,
    )
    .await;
    assert_eq!(
        status,
        StatusCode::SEE_OTHER,
        "the copied cookie still works"
    );
}

#[tokio::test]
async fn a_wizard_walked_across_two_instances_never_sees_an_older_copy() {
    let a = app_with(fresh_database().await, Duration::from_secs(30)).await;
    a.seed_demo().await;
    let b = spawn_app_on(a.options.clone(), settings()).await;
    wizard_across(&a, &b).await;
    assert!(
        lookups(&a).await["hit"] > 0.0,
        "instance A answered some pages from its copy"
    );
}

#[tokio::test]
async fn before_any_announcement_arrives_the_stamp_alone_keeps_older_copies_out() {
    let options = fresh_database().await;
    let a = spawn_app_unannounced(options.clone()).await;
    a.seed_demo().await;
    let b = spawn_app_unannounced(options).await;
    wizard_across(&a, &b).await;
}

/// alice walks the wizard with each step saved on one instance and the next page asked of the
/// other at once; each page must see the step before it.
async fn wizard_across(a: &TestApp, b: &TestApp) {
    let alice = new_client();
    a.login_with(&alice, "alice", DEMO).await;
    // A keeps the session as it is now: no activity chosen, so Resource Selection sends back.
    // The next step is saved on B; A must not answer from that copy.
    for _ in 0..2 {
        let page = a.get_with(&alice, "/wizard/resources").await;
        assert_eq!(page.location(), "/wizard/request-type");
    }
    let value = activity_value(b, &alice, "Linux administration", Some("Linux operations")).await;
    let page = b
        .post_with(
            &alice,
            "/wizard/request-type",
            &[("activity", &value), ("go", "next")],
        )
        .await;
    assert_eq!(page.location(), "/wizard/resources");
    let page: Page = a.get_with(&alice, "/wizard/resources").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.location());

    let ids = crate::wizard::resource_ids(a, &alice, &["lnx-web-01"]).await;
    let page = a
        .post_with(
            &alice,
            "/wizard/resources",
            &[("go", "next"), ("shown", &ids[0]), ("pick", &ids[0])],
        )
        .await;
    assert_eq!(page.location(), "/wizard/notes");
    let notes = b.get_with(&alice, "/wizard/notes").await;
    assert_eq!(notes.status, StatusCode::OK, "{}", notes.location());
    let page = b
        .post_with(
            &alice,
            "/wizard/notes",
            &[("notes", "Patch"), ("ticket", ""), ("go", "next")],
        )
        .await;
    assert_eq!(page.location(), "/wizard/scheduling");
    let scheduling = a.get_with(&alice, "/wizard/scheduling").await;
    assert_eq!(
        scheduling.status,
        StatusCode::OK,
        "{}",
        scheduling.location()
    );
}

#[tokio::test]
async fn before_any_announcement_arrives_an_admin_change_applies_at_once_on_its_instance() {
    let app = spawn_app_unannounced(fresh_database().await).await;
    app.seed_demo().await;
    let erin = new_client();
    app.login_with(&erin, "erin", DEMO).await;
    for _ in 0..2 {
        assert_eq!(
            app.get_with(&erin, "/dashboard").await.status,
            StatusCode::OK
        );
    }
    let carol = new_client();
    app.login_with(&carol, "carol", DEMO).await;
    let id: uuid::Uuid = sqlx::query_scalar("SELECT id FROM users WHERE username = 'erin'")
        .fetch_one(&app.db)
        .await
        .unwrap();
    let page = app
        .post_with(&carol, &format!("/admin/users/{id}/disable"), &[])
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    let next = app.get_with(&erin, "/dashboard").await;
    assert_eq!(next.status, StatusCode::SEE_OTHER);
    assert!(next.location().starts_with("/login"));
}

#[tokio::test]
async fn with_a_zero_lifetime_every_click_reads_the_database() {
    let app = app_with(fresh_database().await, Duration::ZERO).await;
    let id = app.create_user("alice", Role::User).await;
    app.login("alice").await;
    for _ in 0..3 {
        assert_eq!(app.get("/dashboard").await.status, StatusCode::OK);
    }
    assert_eq!(lookups(&app).await["hit"], 0.0);
    sqlx::query("UPDATE users SET disabled = true WHERE id = $1")
        .bind(id)
        .execute(&app.db)
        .await
        .unwrap();
    // No announcement needed: the very next click is refused.
    let next = app.get("/dashboard").await;
    assert_eq!(next.status, StatusCode::SEE_OTHER);
    assert!(next.location().starts_with("/login"));
}

#[tokio::test]
async fn the_cache_is_off_while_its_listener_is_disconnected_and_back_after() {
    let app = app_with(fresh_database().await, Duration::from_secs(30)).await;
    app.create_user("alice", Role::User).await;
    app.login("alice").await;
    app.get("/dashboard").await;
    sqlx::query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
         WHERE datname = current_database() AND query LIKE 'LISTEN%'",
    )
    .execute(&app.db)
    .await
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(2);
    while app.sessions.is_listening() {
        assert!(
            Instant::now() < deadline,
            "the lost connection went unnoticed"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // Reconnected (after a second's pause) with nothing kept from before.
    app.wait_until_listening().await;
    let before = lookups(&app).await;
    app.get("/dashboard").await;
    app.get("/dashboard").await;
    let after = lookups(&app).await;
    assert_eq!(after["miss"] - before["miss"], 1.0, "{before:?} {after:?}");
    assert_eq!(after["hit"] - before["hit"], 1.0, "{before:?} {after:?}");
}
