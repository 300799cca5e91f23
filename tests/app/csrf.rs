//! Every POST needs the session's CSRF token; without it nothing changes.

use portcullis::domain::role::Role;
use reqwest::StatusCode;

use crate::routes::{path, posts};
use crate::support::{PASSWORD, spawn_app};

#[tokio::test]
async fn every_post_route_refuses_a_missing_or_wrong_token() {
    let app = spawn_app().await;
    let alice = app.create_user("alice", Role::User).await;
    app.create_user("carol", Role::Admin).await;
    sqlx::query("UPDATE users SET locked_until = now() + interval '1 hour', failed_logins = 5 WHERE id = $1")
        .bind(alice)
        .execute(&app.db)
        .await
        .unwrap();
    app.login("carol").await;

    for (template, _) in posts() {
        let p = path(&template, alice);
        for token in [None, Some("0".repeat(64))] {
            let mut form = vec![("username", "carol"), ("password", PASSWORD)];
            if let Some(t) = &token {
                form.push(("csrf_token", t));
            }
            let page = app.post_raw(&p, &form).await;
            assert_eq!(
                page.status,
                StatusCode::FORBIDDEN,
                "POST {p} with token {token:?}"
            );
            assert_eq!(page.texts("h1"), ["Form expired"], "POST {p}");
        }
    }
    // Still signed in (logout refused), alice still locked (unlock refused).
    assert_eq!(app.get("/dashboard").await.status, StatusCode::OK);
    let locked: bool = sqlx::query_scalar("SELECT locked_until > now() FROM users WHERE id = $1")
        .bind(alice)
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert!(locked);
}

#[tokio::test]
async fn a_token_from_another_session_is_refused() {
    let app = spawn_app().await;
    app.create_user("alice", Role::User).await;
    let other = crate::support::new_client();
    let foreign = app.csrf_with(&other).await;
    let page = app
        .post_raw(
            "/login",
            &[
                ("csrf_token", &foreign),
                ("username", "alice"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_form_that_is_not_urlencoded_is_refused() {
    let app = spawn_app().await;
    let token = app.csrf_with(&app.client).await;
    let response = app
        .client
        .post(app.url("/login"))
        .header("content-type", "application/json")
        .body(format!(r#"{{"csrf_token":"{token}"}}"#))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
}
