//! Security headers on every kind of response, and the request body limit.

use reqwest::StatusCode;

use crate::support::spawn_app;

#[tokio::test]
async fn every_response_carries_the_security_headers() {
    let app = spawn_app().await;
    for path in [
        "/login",
        "/static/app.css",
        "/dashboard",
        "/no/such/page",
        "/healthz",
    ] {
        let page = app.get(path).await;
        let header = |name: &str| {
            page.headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned()
        };
        let csp = header("content-security-policy");
        for directive in [
            "default-src 'self'",
            "frame-ancestors 'none'",
            "form-action 'self'",
            "base-uri 'none'",
        ] {
            assert!(
                csp.contains(directive),
                "{path}: CSP lacks {directive}: {csp}"
            );
        }
        assert!(!csp.contains("unsafe-inline"), "{path}: {csp}");
        assert_eq!(header("x-content-type-options"), "nosniff", "{path}");
        assert_eq!(header("referrer-policy"), "same-origin", "{path}");
        assert_eq!(header("x-frame-options"), "DENY", "{path}");
    }
}

#[tokio::test]
async fn pages_are_not_cached_but_static_files_are() {
    let app = spawn_app().await;
    let page = app.get("/login").await;
    assert_eq!(page.headers["cache-control"], "no-store");
    let css = app.get("/static/app.css").await;
    assert_eq!(css.headers["cache-control"], "public, max-age=3600");
    assert_eq!(css.headers["content-type"], "text/css; charset=utf-8");
}

#[tokio::test]
async fn pages_contain_no_inline_script_or_style() {
    let app = spawn_app().await;
    let page = app.get("/login").await;
    let html = page.html();
    let inline_scripts = html
        .select(&scraper::Selector::parse("script:not([src])").unwrap())
        .count();
    let styled = html
        .select(&scraper::Selector::parse("[style], style").unwrap())
        .count();
    assert_eq!((inline_scripts, styled), (0, 0));
}

#[tokio::test]
async fn oversized_bodies_are_refused() {
    let app = spawn_app().await;
    let token = app.csrf_with(&app.client).await;
    let big = "x".repeat(200 * 1024);
    let response = app
        .client
        .post(app.url("/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("csrf_token={token}&username={big}&password=x"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn health_and_readiness_answer() {
    let app = spawn_app().await;
    assert_eq!(app.get("/healthz").await.status, StatusCode::OK);
    let ready = app.get("/readyz").await;
    assert_eq!(
        (ready.status, ready.body.as_str()),
        (StatusCode::OK, "ready\n")
    );
}
