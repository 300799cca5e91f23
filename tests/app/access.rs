//! Who may open what: anonymous users are sent to sign in, users get 403 from admin routes.

use portcullis::domain::role::Role;
use reqwest::StatusCode;

use crate::routes::{Access, path, routes};
use crate::support::{Page, TestApp, spawn_app};

async fn request(app: &TestApp, client: &reqwest::Client, method: &str, path: &str) -> Page {
    match method {
        "GET" => app.get_with(client, path).await,
        _ => app.post_with(client, path, &[]).await,
    }
}

#[tokio::test]
async fn anonymous_users_are_sent_to_sign_in_from_every_protected_route() {
    let app = spawn_app().await;
    let someone = app.create_user("alice", Role::User).await;
    for (method, template, access) in routes() {
        let p = path(&template, someone);
        let page = request(&app, &app.client, method, &p).await;
        match access {
            Access::Public => assert_ne!(page.status, StatusCode::SEE_OTHER, "{method} {p}"),
            Access::User | Access::Admin => {
                assert_eq!(page.status, StatusCode::SEE_OTHER, "{method} {p}");
                assert!(
                    page.location().starts_with("/login"),
                    "{method} {p} -> {}",
                    page.location()
                );
            }
        }
    }
}

#[tokio::test]
async fn users_get_forbidden_from_every_admin_route() {
    let app = spawn_app().await;
    let alice = app.create_user("alice", Role::User).await;
    app.login("alice").await;
    // Signing out would end the test's sign-in; it has no admin variant anyway.
    for (method, template, _) in routes().into_iter().filter(|r| r.2 == Access::Admin) {
        let p = path(&template, alice);
        let page = request(&app, &app.client, method, &p).await;
        assert_eq!(page.status, StatusCode::FORBIDDEN, "{method} {p}");
        assert_eq!(page.texts("h1"), ["Forbidden"], "{method} {p}");
    }
    // The forbidden unlock changed nothing either.
    let changed: i64 =
        sqlx::query_scalar("SELECT count(*) FROM users WHERE updated_at <> created_at")
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(changed, 0);
}

#[tokio::test]
async fn admins_reach_every_admin_page() {
    let app = spawn_app().await;
    let carol = app.create_user("carol", Role::Admin).await;
    app.login("carol").await;
    for (method, template, access) in routes() {
        if access == Access::Admin && method == "GET" {
            let p = path(&template, carol);
            let page = app.get(&p).await;
            assert!(
                page.status == StatusCode::OK || page.status == StatusCode::SEE_OTHER,
                "{p}: {}",
                page.status
            );
        }
    }
    let nav = app.get("/dashboard").await.texts("nav.mainnav a");
    assert_eq!(nav, ["Dashboard", "Admin"]);
}

#[tokio::test]
async fn users_do_not_see_the_admin_link() {
    let app = spawn_app().await;
    app.create_user("alice", Role::User).await;
    app.login("alice").await;
    let nav = app.get("/dashboard").await.texts("nav.mainnav a");
    assert_eq!(nav, ["Dashboard"]);
}

#[tokio::test]
async fn unknown_paths_are_not_found() {
    let app = spawn_app().await;
    let page = app.get("/no/such/page").await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    assert_eq!(page.texts("h1"), ["Not found"]);
}
