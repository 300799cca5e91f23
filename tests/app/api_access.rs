//! Who may call which API route, swept over every API route of the route table: no token,
//! a browser's session cookie, a revoked, expired or disabled owner's token -> 401; a token
//! without the route's scope, or an admin-scope token of a non-administrator -> 403. Always
//! JSON, and nothing changes.

use portcullis::domain::api_token::Scope;
use portcullis::domain::role::Role;
use reqwest::StatusCode;
use serde_json::json;
use uuid::Uuid;

use crate::api::{Answer, call, token};
use crate::routes::{api_routes, path};
use crate::support::{TestApp, spawn_app, spawn_demo_app};

/// Every scoped route answered `status` with a JSON error of `code`.
async fn sweep(
    app: &TestApp,
    token: Option<&str>,
    id: Uuid,
    skip: Option<Scope>,
    status: StatusCode,
    code: &str,
) {
    let mut swept = 0;
    for (method, template, scope) in api_routes() {
        let Some(scope) = scope else { continue };
        if Some(scope) == skip {
            continue;
        }
        let p = path(&template, id);
        let Answer {
            status: got,
            json,
            headers,
        } = call(app, method, &p, token, Some(&json!({}))).await;
        assert_eq!(got, status, "{method} {p}: {json}");
        assert_eq!(json["error"], code, "{method} {p}: {json}");
        assert!(json["message"].is_string(), "{method} {p}");
        assert_eq!(headers["content-type"], "application/json", "{method} {p}");
        assert!(
            !headers.contains_key("access-control-allow-origin"),
            "{method} {p}"
        );
        swept += 1;
    }
    assert!(swept > 0);
}

async fn audit_and_requests(app: &TestApp) -> (i64, i64) {
    let audit =
        sqlx::query_scalar("SELECT count(*) FROM admin_audit WHERE object_kind <> 'api_token'")
            .fetch_one(&app.db)
            .await
            .unwrap();
    let requests = sqlx::query_scalar("SELECT count(*) FROM requests")
        .fetch_one(&app.db)
        .await
        .unwrap();
    (audit, requests)
}

#[test]
fn every_api_route_is_listed_with_a_scope_or_as_public() {
    let routes = api_routes();
    for (method, path, scope) in [
        ("GET", "/api/v1/sessions", Some(Scope::Read)),
        ("POST", "/api/v1/requests", Some(Scope::Request)),
        (
            "POST",
            "/api/v1/approvals/{id}/decide",
            Some(Scope::Approve),
        ),
        ("GET", "/api/v1/admin/audit/export", Some(Scope::Admin)),
        ("GET", "/api/v1/openapi.json", None),
    ] {
        assert!(
            routes.contains(&(method, path.to_owned(), scope)),
            "{method} {path}"
        );
    }
    // Only the API's own description is public.
    let public: Vec<_> = routes.iter().filter(|r| r.2.is_none()).collect();
    assert_eq!(public.len(), 2, "{public:?}");
}

#[tokio::test]
async fn without_a_valid_token_every_api_route_answers_401_json() {
    let app = spawn_app().await;
    let alice = app.create_user("alice", Role::Admin).await;
    let before = audit_and_requests(&app).await;
    sweep(
        &app,
        None,
        alice,
        None,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    )
    .await;
    sweep(
        &app,
        Some("pcs_nonsense"),
        alice,
        None,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    )
    .await;
    let unknown = format!("pcs_{}", "0".repeat(64));
    sweep(
        &app,
        Some(&unknown),
        alice,
        None,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    )
    .await;
    assert_eq!(audit_and_requests(&app).await, before);
}

#[tokio::test]
async fn a_browser_sign_in_alone_opens_no_api_route() {
    let app = spawn_app().await;
    app.create_user("carol", Role::Admin).await;
    app.login("carol").await;
    assert_eq!(app.get("/dashboard").await.status, StatusCode::OK);
    let carol = Uuid::nil();
    for (method, template, scope) in api_routes() {
        if scope.is_none() {
            continue;
        }
        let p = path(&template, carol);
        // The test client carries carol's session cookie (and a CSRF token for the POSTs).
        let page = match method {
            "GET" => app.get(&p).await,
            _ => app.post(&p, &[]).await,
        };
        assert_eq!(
            page.status,
            StatusCode::UNAUTHORIZED,
            "{method} {p}: {}",
            page.body
        );
        let body: serde_json::Value = serde_json::from_str(&page.body).unwrap();
        assert_eq!(body["error"], "unauthorized");
    }
}

#[tokio::test]
async fn a_token_without_the_routes_scope_is_forbidden_on_every_route_needing_another() {
    let app = spawn_demo_app().await;
    let carol: Uuid = sqlx::query_scalar("SELECT id FROM users WHERE username = 'carol'")
        .fetch_one(&app.db)
        .await
        .unwrap();
    let before = audit_and_requests(&app).await;
    for scope in Scope::ALL {
        // carol is an administrator: only the scope stands in the way.
        let t = token(&app, "carol", &[scope]).await;
        sweep(
            &app,
            Some(&t),
            carol,
            Some(scope),
            StatusCode::FORBIDDEN,
            "forbidden",
        )
        .await;
    }
    assert_eq!(audit_and_requests(&app).await, before);
}

#[tokio::test]
async fn an_admin_scope_gives_a_non_administrator_no_admin_route() {
    let app = spawn_demo_app().await;
    let alice_id: Uuid = sqlx::query_scalar("SELECT id FROM users WHERE username = 'alice'")
        .fetch_one(&app.db)
        .await
        .unwrap();
    let alice = token(&app, "alice", &Scope::ALL).await;
    let mut swept = 0;
    for (method, template, scope) in api_routes() {
        if scope != Some(Scope::Admin) {
            continue;
        }
        let p = path(&template, alice_id);
        let answer = call(&app, method, &p, Some(&alice), None).await;
        assert_eq!(answer.status, StatusCode::FORBIDDEN, "{method} {p}");
        assert_eq!(answer.json["error"], "forbidden");
        swept += 1;
    }
    assert!(swept >= 6);
    // Her other scopes work.
    let me = call(&app, "GET", "/api/v1/me", Some(&alice), None).await;
    assert_eq!(me.status, StatusCode::OK);
    assert_eq!(me.json["username"], "alice");
}

#[tokio::test]
async fn revoked_expired_and_disabled_owners_tokens_answer_401() {
    let app = spawn_demo_app().await;
    let alice_id: Uuid = sqlx::query_scalar("SELECT id FROM users WHERE username = 'alice'")
        .fetch_one(&app.db)
        .await
        .unwrap();
    let digest = |t: &str| portcullis::domain::api_token::digest(t);

    let revoked = token(&app, "alice", &Scope::ALL).await;
    assert_eq!(
        call(&app, "GET", "/api/v1/me", Some(&revoked), None)
            .await
            .status,
        StatusCode::OK
    );
    sqlx::query("UPDATE api_tokens SET revoked_at = now() WHERE token_sha256 = $1")
        .bind(digest(&revoked))
        .execute(&app.db)
        .await
        .unwrap();
    sweep(
        &app,
        Some(&revoked),
        alice_id,
        None,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    )
    .await;

    let expired = token(&app, "alice", &Scope::ALL).await;
    sqlx::query("UPDATE api_tokens SET created_at = now() - interval '2 days', expires_at = now() - interval '1 second' WHERE token_sha256 = $1")
        .bind(digest(&expired))
        .execute(&app.db)
        .await
        .unwrap();
    sweep(
        &app,
        Some(&expired),
        alice_id,
        None,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    )
    .await;

    let disabled = token(&app, "alice", &Scope::ALL).await;
    assert_eq!(
        call(&app, "GET", "/api/v1/me", Some(&disabled), None)
            .await
            .status,
        StatusCode::OK
    );
    sqlx::query("UPDATE users SET disabled = true WHERE id = $1")
        .bind(alice_id)
        .execute(&app.db)
        .await
        .unwrap();
    sweep(
        &app,
        Some(&disabled),
        alice_id,
        None,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    )
    .await;
}

#[tokio::test]
async fn an_unknown_api_path_is_a_json_404() {
    let app = spawn_app().await;
    for method in ["GET", "POST"] {
        let answer = call(&app, method, "/api/v1/nothing-here", None, None).await;
        assert_eq!(answer.status, StatusCode::NOT_FOUND, "{method}");
        assert_eq!(answer.json["error"], "not_found", "{method}");
    }
}
