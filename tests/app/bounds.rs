//! What an anonymous client cannot make the server store: no session row for reading pages.

use portcullis::domain::role::Role;
use reqwest::StatusCode;

use crate::support::{PASSWORD, TestApp, new_client, spawn_app};

async fn stored_sessions(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM web_sessions")
        .fetch_one(&app.db)
        .await
        .unwrap()
}

fn signed_in(page: &crate::support::Page) -> bool {
    page.status == StatusCode::SEE_OTHER && page.location() == "/"
}

#[tokio::test]
async fn anonymous_pages_store_no_session() {
    let app = spawn_app().await;
    app.create_user("alice", Role::User).await;
    let pages = [
        "/login",
        "/login?next=/dashboard",
        "/no/such/page",
        "/dashboard",
        "/sessions/00000000-0000-0000-0000-000000000000",
        "/login/code",
        "/login/enrol",
    ];
    // 210 page views, half from one browser, half from browsers seen once each.
    let browser = new_client();
    for i in 0..30 {
        for path in pages {
            let page = app.get_with(&browser, path).await;
            assert!(page.status.as_u16() < 500, "{path}: {}", page.status);
            if i % 2 == 0 {
                app.get_with(&new_client(), path).await;
            }
        }
    }
    // A failed sign-in stores nothing either.
    let failed = app.login_with(&browser, "alice", "wrong-password").await;
    assert_eq!(failed.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        stored_sessions(&app).await,
        0,
        "no session row for reading pages"
    );

    // The sign-in form still works, and a right password stores the one session.
    let page = app.login_with(&browser, "alice", PASSWORD).await;
    assert!(signed_in(&page), "{}", page.status);
    assert_eq!(stored_sessions(&app).await, 1);
    assert_eq!(
        app.get_with(&browser, "/dashboard").await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn sign_in_refuses_a_missing_wrong_or_foreign_form_token() {
    let app = spawn_app().await;
    app.create_user("alice", Role::User).await;
    let browser = new_client();
    let token = app.csrf_with(&browser).await;
    let other = new_client();
    let foreign = app.csrf_with(&other).await;
    let (issued, mac) = token.split_once('.').unwrap();
    let later = format!("{}.{mac}", issued.parse::<i64>().unwrap() + 1);
    let attempts: [(&str, Option<&str>); 5] = [
        ("no token", None),
        ("a made-up token", Some("1.00")),
        ("another browser's token", Some(&foreign)),
        ("a token with its time changed", Some(&later)),
        ("an empty token", Some("")),
    ];
    for (what, sent) in attempts {
        let mut form = vec![("username", "alice"), ("password", PASSWORD), ("next", "")];
        if let Some(sent) = sent {
            form.push(("csrf_token", sent));
        }
        let page = app.post_raw_with(&browser, "/login", &form).await;
        assert_eq!(page.status, StatusCode::FORBIDDEN, "{what}");
        assert_eq!(page.texts("h1"), ["Form expired"], "{what}");
    }
    // The right token, but from a browser without its cookie.
    let page = app
        .post_raw_with(
            &new_client(),
            "/login",
            &[
                ("csrf_token", &token),
                ("username", "alice"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(
        page.status,
        StatusCode::FORBIDDEN,
        "token without its cookie"
    );
    assert_eq!(stored_sessions(&app).await, 0, "nobody signed in");
    assert_eq!(
        app.get_with(&browser, "/dashboard").await.status,
        StatusCode::SEE_OTHER
    );

    let page = app
        .post_raw_with(
            &browser,
            "/login",
            &[
                ("csrf_token", &token),
                ("username", "alice"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert!(signed_in(&page), "the browser's own token: {}", page.status);
}

#[tokio::test]
async fn the_sign_in_cookie_is_http_only_strict_and_short_lived() {
    let app = spawn_app().await;
    let page = app.get("/login").await;
    let cookie = page
        .headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("portcullis-login="))
        .expect("the sign-in form's cookie")
        .to_owned();
    for part in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=3600"] {
        assert!(cookie.contains(part), "{part}: {cookie}");
    }
}
