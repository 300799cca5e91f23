//! Sign-in, lockout, sign-out and the session cookie.

use portcullis::domain::role::Role;
use reqwest::StatusCode;

use crate::support::{PASSWORD, TestApp, new_client, spawn_app};

const FAILED: &str = "Invalid username or password.";

fn session_cookie(page: &crate::support::Page) -> Option<String> {
    page.headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("portcullis="))
        .map(|v| v.split(';').next().unwrap_or("").to_owned())
}

#[tokio::test]
async fn user_signs_in_and_sees_the_dashboard() {
    let app = spawn_app().await;
    app.create_user("alice", Role::User).await;

    let login = app.login("alice").await;
    assert_eq!(login.status, StatusCode::SEE_OTHER);
    assert_eq!(login.location(), "/");

    let dashboard = app.get("/dashboard").await;
    assert_eq!(dashboard.status, StatusCode::OK);
    assert_eq!(dashboard.texts("h1"), ["Dashboard"]);
    assert_eq!(dashboard.texts(".account-name"), ["alice"]);
}

#[tokio::test]
async fn username_is_matched_regardless_of_case() {
    let app = spawn_app().await;
    app.create_user("Alice", Role::User).await;
    let login = app.login("aLiCe").await;
    assert_eq!(login.status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn wrong_password_and_unknown_user_get_the_same_answer() {
    let app = spawn_app().await;
    app.create_user("alice", Role::User).await;

    let wrong = app
        .login_with(&app.client, "alice", "not-the-password")
        .await;
    let unknown = app
        .login_with(&app.client, "mallory", "not-the-password")
        .await;

    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert_eq!(unknown.status, wrong.status);
    assert_eq!(wrong.texts(".form-error"), [FAILED]);
    assert_eq!(unknown.texts(".form-error"), [FAILED]);
    assert_eq!(app.get("/dashboard").await.status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn disabled_user_loses_access_and_cannot_sign_in_again() {
    let app = spawn_app().await;
    let id = app.create_user("alice", Role::User).await;
    app.login("alice").await;
    assert_eq!(app.get("/dashboard").await.status, StatusCode::OK);

    // Disabled behind Portcullis' back: the change is announced to the app, which drops its
    // copy of the session (tests/app/session_cache.rs shows the copy was in use).
    sqlx::query("UPDATE users SET disabled = true WHERE id = $1")
        .bind(id)
        .execute(&app.db)
        .await
        .unwrap();
    let next_click =
        crate::support::settled(|| app.get("/dashboard"), |p| p.status != StatusCode::OK).await;
    assert_eq!(next_click.status, StatusCode::SEE_OTHER);
    assert!(next_click.location().starts_with("/login"));

    let again = app.login("alice").await;
    assert_eq!(again.status, StatusCode::UNAUTHORIZED);
    assert_eq!(again.texts(".form-error"), [FAILED]);
}

#[tokio::test]
async fn the_account_is_read_with_the_session_and_never_stored_in_it() {
    let app = spawn_app().await;
    let id = app.create_user("alice", Role::User).await;
    app.login("alice").await;
    assert_eq!(app.get("/admin/users").await.status, StatusCode::FORBIDDEN);

    // The stored session names its account, and holds nothing else about it.
    let (user_id, data): (Option<uuid::Uuid>, Vec<u8>) =
        sqlx::query_as("SELECT user_id, data FROM web_sessions")
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(user_id, Some(id));
    let data = String::from_utf8(data).unwrap();
    assert!(
        !data.contains("_principal") && !data.contains("alice"),
        "{data}"
    );
}

#[tokio::test]
async fn five_failures_lock_the_account_until_an_admin_unlocks_it() {
    let app = spawn_app().await;
    let alice = app.create_user("alice", Role::User).await;
    app.create_user("carol", Role::Admin).await;

    for _ in 0..5 {
        let page = app.login_with(&app.client, "alice", "wrong-password").await;
        assert_eq!(page.status, StatusCode::UNAUTHORIZED);
    }
    let locked: bool = sqlx::query_scalar("SELECT locked_until > now() FROM users WHERE id = $1")
        .bind(alice)
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert!(locked);

    // The right password no longer works, and the message does not say why.
    let refused = app.login("alice").await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    assert_eq!(refused.texts(".form-error"), [FAILED]);

    // carol unlocks alice from Admin > Users.
    let admin = new_client();
    app.login_with(&admin, "carol", PASSWORD).await;
    let users = app.get_with(&admin, "/admin/users").await;
    assert!(users.body.contains("Locked"));
    let unlocked = app
        .post_with(&admin, &format!("/admin/users/{alice}/unlock"), &[])
        .await;
    assert_eq!(unlocked.status, StatusCode::SEE_OTHER);
    let users = app.get_with(&admin, "/admin/users").await;
    assert_eq!(users.texts(".flash"), ["alice is unlocked."]);

    assert_eq!(app.login("alice").await.status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn failures_outside_the_window_do_not_add_up() {
    let app = spawn_app().await;
    let alice = app.create_user("alice", Role::User).await;
    for _ in 0..4 {
        app.login_with(&app.client, "alice", "wrong-password").await;
    }
    // The window of those four failures ended long ago.
    sqlx::query(
        "UPDATE users SET failed_window_start = now() - interval '16 minutes' WHERE id = $1",
    )
    .bind(alice)
    .execute(&app.db)
    .await
    .unwrap();
    app.login_with(&app.client, "alice", "wrong-password").await;
    assert_eq!(app.login("alice").await.status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn signing_in_gives_a_new_session_id() {
    let app = spawn_app().await;
    app.create_user("alice", Role::User).await;
    // The sign-in form stores no session: the session before this sign-in is a first one.
    let before = session_cookie(&app.login("alice").await).expect("a session at sign-in");
    let login = app.login("alice").await;
    let after = session_cookie(&login).expect("a session cookie at sign-in");
    assert_ne!(before, after);

    // The earlier id is worthless afterwards.
    let fixed = new_client();
    let page = fixed
        .get(app.url("/dashboard"))
        .header("cookie", &before)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn logout_ends_the_session_on_the_server() {
    let app = spawn_app().await;
    app.create_user("alice", Role::User).await;
    let login = app.login("alice").await;
    let cookie = session_cookie(&login).unwrap();

    let out = app.post("/logout", &[]).await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert_eq!(out.location(), "/login");
    assert_eq!(app.get("/dashboard").await.status, StatusCode::SEE_OTHER);

    // Replaying the old cookie does not bring the session back.
    let replay = new_client()
        .get(app.url("/dashboard"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(replay.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn sign_in_returns_to_the_page_asked_for_but_only_on_this_site() {
    let app = spawn_app().await;
    app.create_user("alice", Role::User).await;

    let bounced = app.get("/dashboard?tab=x").await;
    assert_eq!(bounced.location(), "/login?next=%2Fdashboard%3Ftab%3Dx");

    let form = app.get(bounced.location()).await;
    let next: Vec<_> = form
        .html()
        .select(&scraper::Selector::parse(r#"input[name="next"]"#).unwrap())
        .filter_map(|e| e.value().attr("value").map(str::to_owned))
        .collect();
    assert_eq!(next, ["/dashboard?tab=x"]);

    for (next, expected) in [
        ("/dashboard?tab=x", "/dashboard?tab=x"),
        ("//evil.example/", "/"),
        ("https://evil.example/", "/"),
    ] {
        let client = new_client();
        let token = app.csrf_with(&client).await;
        let page = app
            .post_raw_with(
                &client,
                "/login",
                &[
                    ("csrf_token", &token),
                    ("username", "alice"),
                    ("password", PASSWORD),
                    ("next", next),
                ],
            )
            .await;
        assert_eq!(page.location(), expected, "next = {next}");
    }
}

#[tokio::test]
async fn the_session_cookie_is_http_only_and_same_site() {
    let app = spawn_app().await;
    app.create_user("alice", Role::User).await;
    let page = app.login("alice").await;
    let cookie = page
        .headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("portcullis="))
        .unwrap()
        .to_owned();
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Lax"), "{cookie}");
    assert!(
        cookie.contains("Max-Age=1860"),
        "idle timeout of 30 minutes, plus the minute activity is recorded by: {cookie}"
    );
}

#[tokio::test]
async fn a_sign_in_older_than_the_absolute_lifetime_ends() {
    use crate::support::{fresh_database, settings, spawn_app_on};
    let mut short = settings();
    short.session_lifetime_hours = 1;
    let app = spawn_app_on(fresh_database().await, short).await;
    app.create_user("alice", Role::User).await;
    app.login("alice").await;
    assert_eq!(app.get("/dashboard").await.status, StatusCode::OK);

    // Signed in two hours ago, active a moment ago: only the absolute lifetime can end it.
    app.backdate_sessions(&["signed_in_at"], 7200, false).await;

    let page = app.get("/dashboard").await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    let login = app.get(page.location()).await;
    assert_eq!(
        login.texts(".flash"),
        ["Your sign-in expired. Sign in again."]
    );
}

#[tokio::test]
async fn a_sign_in_idle_longer_than_the_idle_timeout_ends() {
    let app = spawn_app().await;
    app.create_user("alice", Role::User).await;
    app.login("alice").await;
    // The last request was 32 minutes ago (idle timeout 30, activity recorded every minute).
    app.backdate_sessions(&["last_seen"], 32 * 60, false).await;
    let page = app.get("/dashboard").await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert!(page.location().starts_with("/login"));
}

#[tokio::test]
async fn malformed_ids_and_page_numbers_get_pages_not_errors() {
    let app = spawn_app().await;
    app.create_user("alice", Role::User).await;
    app.login("alice").await;
    assert_eq!(
        app.get("/sessions/not-a-uuid").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.get("/dashboard/historical?page=abc").await.status,
        StatusCode::OK
    );
    assert_eq!(
        app.get("/wizard/resources?page=-4").await.status,
        StatusCode::SEE_OTHER
    );
}

#[tokio::test]
async fn the_session_table_holds_a_digest_of_the_cookie_never_the_cookie_itself() {
    let app = spawn_app().await;
    let alice = app.create_user("alice", Role::User).await;
    let login = app.login("alice").await;
    let cookie = session_cookie(&login).expect("the sign-in sets the session cookie");
    let value = cookie.trim_start_matches("portcullis=").to_owned();

    let ids: Vec<String> = sqlx::query_scalar("SELECT id FROM web_sessions WHERE user_id = $1")
        .bind(alice)
        .fetch_all(&app.db)
        .await
        .unwrap();
    let digest: String = sqlx::query_scalar("SELECT encode(sha256(convert_to($1, 'UTF8')), 'hex')")
        .bind(&value)
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(
        ids,
        std::slice::from_ref(&digest),
        "the cookie's SHA-256 is the stored id"
    );
    let anywhere: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM web_sessions WHERE id = $1 OR position(convert_to($1, 'UTF8') in data) > 0",
    )
    .bind(&value)
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(anywhere, 0, "the cookie's value is stored nowhere");

    // Someone holding a copy of the table presents a stored id as their cookie.
    let thief = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let page = read_with_cookie(&app, &thief, &format!("portcullis={digest}")).await;
    assert_eq!(page.0, StatusCode::SEE_OTHER);
    assert!(page.1.starts_with("/login"), "{}", page.1);
    // The real cookie still works.
    let page = read_with_cookie(&app, &thief, &cookie).await;
    assert_eq!(page.0, StatusCode::OK);
}

#[tokio::test]
async fn a_sign_in_stored_before_the_upgrade_still_works_after_it() {
    let app = spawn_app().await;
    app.create_user("alice", Role::User).await;
    let cookie = session_cookie(&app.login("alice").await).expect("session cookie");
    let value = cookie.trim_start_matches("portcullis=").to_owned();
    // The table as the previous version kept it: the cookie's value as the id.
    sqlx::query("ALTER TABLE web_sessions DROP CONSTRAINT web_sessions_id_is_a_digest")
        .execute(&app.db)
        .await
        .unwrap();
    sqlx::query("UPDATE web_sessions SET id = $1")
        .bind(&value)
        .execute(&app.db)
        .await
        .unwrap();
    sqlx::raw_sql(include_str!(
        "../../migrations/20261130000004_session_hash.sql"
    ))
    .execute(&app.db)
    .await
    .unwrap();
    app.sessions.clear();

    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM web_sessions WHERE id = $1")
        .bind(&value)
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(stored, 0);
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    assert_eq!(
        read_with_cookie(&app, &client, &cookie).await.0,
        StatusCode::OK,
        "still signed in"
    );
}

/// The dashboard's status and redirect target for a request carrying just `cookie`.
async fn read_with_cookie(
    app: &TestApp,
    client: &reqwest::Client,
    cookie: &str,
) -> (StatusCode, String) {
    let response = client
        .get(app.url("/dashboard"))
        .header(reqwest::header::COOKIE, cookie)
        .send()
        .await
        .unwrap();
    let location = response
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    (response.status(), location)
}

#[tokio::test]
async fn an_active_user_is_never_signed_out_by_a_one_minute_idle_timeout() {
    use crate::support::{fresh_database, settings, spawn_app_on};
    let mut short = settings();
    short.session_idle_minutes = 1;
    let app = spawn_app_on(fresh_database().await, short).await;
    app.create_user("alice", Role::User).await;
    app.login("alice").await;
    assert_eq!(app.get("/dashboard").await.status, StatusCode::OK);

    // alice clicks now and then, never more than a minute after her previous click. The
    // clock is moved on by backdating what is stored (the sign-in's times and its expiry).
    for gap in [59, 59, 10, 59, 14, 59, 60] {
        app.backdate_sessions(&["signed_in_at", "last_seen"], gap, true)
            .await;
        let page = app.get("/dashboard").await;
        assert_eq!(
            page.status,
            StatusCode::OK,
            "signed out after a {gap} s pause: {}",
            page.location()
        );
    }

    // Then she leaves: a minute and a quarter later the sign-in is over.
    app.backdate_sessions(&["signed_in_at", "last_seen"], 76, true)
        .await;
    let page = app.get("/dashboard").await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert!(page.location().starts_with("/login"), "{}", page.location());
}
