//! `/metrics`: off without a token, refused with a wrong one, and Prometheus text that follows
//! the requests, the sessions and the worker's lag.

use std::collections::BTreeMap;

use reqwest::StatusCode;

use crate::support::{TestApp, fresh_database, settings, spawn_app, spawn_app_on};
use crate::wizard::{Request, request};

const TOKEN: &str = "scrape-token-0123456789";

/// Every sample of an OpenMetrics text, by `name{labels}`; fails on a line that is not a
/// comment or a sample with a number.
pub fn parse(text: &str) -> BTreeMap<String, f64> {
    assert!(text.ends_with("# EOF\n"), "ends with # EOF: {text}");
    let mut samples = BTreeMap::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let (key, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("not a sample: {line}"));
        let value: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("not a number: {line}"));
        assert!(key.starts_with("portcullis_"), "{line}");
        samples.insert(key.to_owned(), value);
    }
    samples
}

async fn scrape(app: &TestApp) -> BTreeMap<String, f64> {
    let response = app
        .client
        .get(app.url("/metrics"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text"),
    );
    parse(&response.text().await.unwrap())
}

async fn with_token() -> TestApp {
    let mut settings = settings();
    settings.metrics_token = Some(TOKEN.into());
    spawn_app_on(fresh_database().await, settings).await
}

fn requests(samples: &BTreeMap<String, f64>, method: &str, route: &str, class: &str) -> f64 {
    let key = format!(
        "portcullis_http_requests_total{{method=\"{method}\",route=\"{route}\",status=\"{class}\"}}"
    );
    samples.get(&key).copied().unwrap_or(0.0)
}

#[tokio::test]
async fn metrics_do_not_exist_without_a_token() {
    let app = spawn_app().await;
    let page = app.get("/metrics").await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    let response = app
        .client
        .get(app.url("/metrics"))
        .bearer_auth("anything-at-all-0123")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn metrics_refuse_a_missing_or_wrong_token() {
    let app = with_token().await;
    let none = app.get("/metrics").await;
    assert_eq!(none.status, StatusCode::UNAUTHORIZED);
    assert!(!none.body.contains("portcullis_"), "nothing is told");
    for wrong in [
        format!("Bearer {TOKEN}x"),
        format!("Bearer {}", &TOKEN[1..]),
        format!("Basic {TOKEN}"),
        TOKEN.to_owned(),
    ] {
        let response = app
            .client
            .get(app.url("/metrics"))
            .header("authorization", &wrong)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{wrong}");
        assert_eq!(response.headers()["www-authenticate"], "Bearer");
    }
}

#[tokio::test]
async fn request_counts_follow_the_matched_route_and_status_class() {
    let app = with_token().await;
    app.seed_demo().await;
    let before = scrape(&app).await;
    assert_eq!(requests(&before, "GET", "/login", "2xx"), 0.0);

    app.get("/login").await;
    app.get("/login").await;
    let id = uuid::Uuid::new_v4();
    let unknown = app.get(&format!("/sessions/{id}")).await; // anonymous: sent to sign in
    assert_eq!(unknown.status, StatusCode::SEE_OTHER);
    app.get("/no/such/page").await;

    let response = app
        .client
        .get(app.url("/metrics"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    let text = response.text().await.unwrap();
    assert!(!text.contains(&id.to_string()), "routes, never raw paths");
    let after = parse(&text);
    assert_eq!(requests(&after, "GET", "/login", "2xx"), 2.0);
    assert_eq!(requests(&after, "GET", "/sessions/{id}", "3xx"), 1.0);
    assert_eq!(requests(&after, "GET", "unmatched", "4xx"), 1.0);
    assert_eq!(
        requests(&after, "GET", "/metrics", "2xx"),
        1.0,
        "the first scrape counts too"
    );
    let latency = "portcullis_http_request_duration_seconds_count{method=\"GET\",route=\"/login\",status=\"2xx\"}";
    assert_eq!(after[latency], 2.0);
    let buckets = after
        .keys()
        .filter(|k| {
            k.starts_with("portcullis_http_request_duration_seconds_bucket{")
                && k.contains("route=\"/login\"")
        })
        .count();
    assert!(buckets > 5, "a latency histogram with buckets");
    assert_eq!(after["portcullis_database_up"], 1.0);
    assert_eq!(after["portcullis_db_pool_max_connections"], 5.0);
    assert!(after.contains_key("portcullis_db_pool_connections{state=\"idle\"}"));
}

#[tokio::test]
async fn sessions_by_status_and_worker_lag_come_from_the_database() {
    let app = with_token().await;
    app.seed_demo().await;
    let empty = scrape(&app).await;
    assert_eq!(empty["portcullis_sessions{status=\"available\"}"], 0.0);
    assert_eq!(
        empty["portcullis_sessions{status=\"completed\"}"], 0.0,
        "every status is listed"
    );
    assert_eq!(empty["portcullis_worker_lag_seconds"], 0.0);

    let alice = crate::support::new_client();
    app.login_with(&alice, "alice", "portcullis-demo").await;
    let finish = request(
        &app,
        &alice,
        &Request {
            activity: "Web console access",
            policy: None,
            resources: &["Grafana", "Jenkins"],
            notes: "",
            ticket: "",
            at: None,
        },
    )
    .await;
    assert_eq!(finish.status, StatusCode::SEE_OTHER);
    let now = scrape(&app).await;
    assert_eq!(now["portcullis_sessions{status=\"available\"}"], 2.0);
    assert_eq!(
        now["portcullis_worker_lag_seconds"], 0.0,
        "nothing is due yet"
    );

    // One window ended 90 seconds ago and no worker runs in this test: it waits.
    sqlx::query(
        "UPDATE activity_sessions SET requested_start = now() - interval '1 hour',
                ends_at = now() - interval '90 seconds'
         WHERE resource_name = 'Grafana'",
    )
    .execute(&app.db)
    .await
    .unwrap();
    let late = scrape(&app).await;
    let lag = late["portcullis_worker_lag_seconds"];
    assert!((90.0..120.0).contains(&lag), "lag {lag}");
    portcullis::worker::tick(&app.db, &app.secrets)
        .await
        .unwrap();
    let caught_up = scrape(&app).await;
    assert_eq!(caught_up["portcullis_worker_lag_seconds"], 0.0);
    assert_eq!(caught_up["portcullis_sessions{status=\"completed\"}"], 1.0);
    assert_eq!(caught_up["portcullis_sessions{status=\"available\"}"], 1.0);
}

#[tokio::test]
async fn made_up_methods_and_paths_do_not_grow_the_metrics() {
    let app = with_token().await;
    let series = |samples: &BTreeMap<String, f64>| {
        samples
            .keys()
            .filter(|k| k.starts_with("portcullis_http_"))
            .count()
    };
    app.get("/login").await;
    let before = scrape(&app).await;

    // 300 requests, each with a method and a path of its own, to known and unknown routes.
    for i in 0..300 {
        let method = reqwest::Method::from_bytes(format!("MADEUP{i}").as_bytes()).unwrap();
        let path = if i % 2 == 0 {
            "/login".to_owned()
        } else {
            format!("/no/such/page/{i}")
        };
        let response = app
            .client
            .request(method, app.url(&path))
            .send()
            .await
            .unwrap();
        assert!(response.status().is_client_error(), "{}", response.status());
    }
    let response = app
        .client
        .get(app.url("/metrics"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    let text = response.text().await.unwrap();
    assert!(
        !text.contains("MADEUP"),
        "no method a client made up is a label"
    );
    assert!(
        !text.contains("/no/such/page"),
        "no path a client made up is a label"
    );
    let after = parse(&text);
    let other =
        requests(&after, "OTHER", "/login", "4xx") + requests(&after, "OTHER", "unmatched", "4xx");
    assert_eq!(other, 300.0, "every made-up method is counted as OTHER");
    // Two routes × one method × one status class make at most two request series, each
    // with a counter and a histogram (count, sum and 16 buckets), plus the scrape's own.
    let grown = series(&after) - series(&before);
    assert!(
        grown <= 2 * 19 + 19,
        "{grown} new series for 300 distinct methods"
    );
}
