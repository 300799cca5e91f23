//! What an anonymous client cannot make the server store: no session row for reading pages,
//! and no body past its route's limit, whatever its framing.

use std::sync::Arc;

use portcullis::domain::role::Role;
use reqwest::StatusCode;
use reqwest::cookie::CookieStore;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

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
    // 210 page views from one browser, 105 from browsers seen once each, 105 with a cookie
    // naming a session that does not exist.
    let browser = new_client();
    let unknown = format!("portcullis={}", tower_sessions::session::Id::default());
    for i in 0..30 {
        for path in pages {
            let page = app.get_with(&browser, path).await;
            assert!(page.status.as_u16() < 500, "{path}: {}", page.status);
            if i % 2 == 0 {
                app.get_with(&new_client(), path).await;
                let made_up = new_client()
                    .get(app.url(path))
                    .header("cookie", &unknown)
                    .send()
                    .await
                    .unwrap();
                assert!(made_up.status().as_u16() < 500, "{path}");
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

/// Sends a POST whose body is chunked (no Content-Length), on a connection of its own, and
/// returns the status code.
async fn post_chunked(app: &TestApp, path: &str, cookie: &str, body: &[u8]) -> u16 {
    let mut stream = tokio::net::TcpStream::connect(app.address).await.unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {}\r\nCookie: {cookie}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\n\
         Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
        app.address
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    for chunk in body.chunks(8 * 1024) {
        let size = format!("{:x}\r\n", chunk.len());
        let framed = [size.as_bytes(), chunk, &b"\r\n"[..]].concat();
        if stream.write_all(&framed).await.is_err() {
            break; // answered and closed before the end: the status is in what came back
        }
    }
    let _ = stream.write_all(b"0\r\n\r\n").await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        stream.read_to_end(&mut answer),
    )
    .await
    .expect("an answer within 10 s");
    let answer = String::from_utf8_lossy(&answer);
    answer
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP answer: {answer}"))
}

#[tokio::test]
async fn a_chunked_form_body_is_held_to_the_form_limit() {
    let app = spawn_app().await;
    app.seed_demo().await;
    let jar = Arc::new(reqwest::cookie::Jar::default());
    let admin = reqwest::Client::builder()
        .cookie_provider(jar.clone())
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let page = app.login_with(&admin, "carol", "portcullis-demo").await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    let token = app.csrf_with(&admin).await;
    let url = app.url("/").parse().unwrap();
    let cookie = jar.cookies(&url).unwrap();
    let cookie = cookie.to_str().unwrap();
    let groups = || async {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM groups WHERE name LIKE 'Chunked%'")
            .fetch_one(&app.db)
            .await
            .unwrap()
    };

    // 100 KiB, over the 64 KiB of a form, in a field the form does not even read.
    let padding = "x".repeat(100 * 1024);
    let big = format!("csrf_token={token}&name=Chunked+big&description=&go=save&padding={padding}");
    assert_eq!(
        post_chunked(&app, "/admin/groups/new", cookie, big.as_bytes()).await,
        413
    );
    assert_eq!(groups().await, 0, "nothing stored");

    // 100 KiB to the sign-in form: refused the same way.
    let login = format!("csrf_token={token}&username=carol&password={padding}");
    assert_eq!(
        post_chunked(&app, "/login", cookie, login.as_bytes()).await,
        413
    );

    let small = format!("csrf_token={token}&name=Chunked+small&description=&go=save&padding=xx");
    assert_eq!(
        post_chunked(&app, "/admin/groups/new", cookie, small.as_bytes()).await,
        303
    );
    assert_eq!(
        groups().await,
        1,
        "a chunked body within the limit is read as usual"
    );
}
