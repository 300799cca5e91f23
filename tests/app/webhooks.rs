//! Webhooks: endpoints registered on Admin > Webhooks receive every request, decision and
//! status change, signed, from the queue that transitions fill; the sender retries, gives
//! up, and never holds up a transition. The receiver is a real HTTP server in this module
//! that checks each signature and timestamp as the README tells receivers to.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode as AxumStatus};
use hmac::Mac;
use portcullis::webhooks::{self, Sender};
use reqwest::StatusCode;
use uuid::Uuid;

use crate::approvals::{signed_in, standard_request};
use crate::support::{TestApp, spawn_demo_app};

const SECRET: &str = "whsec-0123456789abcdef";

// ---------------------------------------------------------------------------------------
// The receiver

/// How the receiver answers the next POST.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Answer {
    Status(u16),
    /// Never answers (until the sender gives up on it).
    Hang,
}

/// A POST the receiver took, with what its checks found.
#[derive(Debug, Clone)]
struct Received {
    event_type: String,
    delivery: String,
    body: serde_json::Value,
    /// The signature matched the body and the timestamp was within five minutes.
    verified: bool,
}

#[derive(Clone, Default)]
struct Receiver {
    got: Arc<Mutex<Vec<Received>>>,
    /// Answers to give, in order; 200 once they run out.
    script: Arc<Mutex<VecDeque<Answer>>>,
}

/// What the README tells receivers to do: split `t=...,v1=...`, refuse a timestamp more than
/// five minutes away (a replay), compute HMAC-SHA256 over "t.body" and compare in constant
/// time.
fn verify(secret: &str, header: &str, body: &[u8], now: i64) -> bool {
    let mut t = None;
    let mut v1 = None;
    for part in header.split(',') {
        match part.split_once('=') {
            Some(("t", value)) => t = value.parse::<i64>().ok(),
            Some(("v1", value)) => v1 = Some(value.to_owned()),
            _ => {}
        }
    }
    let (Some(t), Some(v1)) = (t, v1) else {
        return false;
    };
    if (now - t).abs() > 300 {
        return false;
    }
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{t}.").as_bytes());
    mac.update(body);
    let Ok(given) = (0..v1.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(v1.get(i..i + 2).unwrap_or("zz"), 16))
        .collect::<Result<Vec<u8>, _>>()
    else {
        return false;
    };
    mac.verify_slice(&given).is_ok()
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

async fn receive(State(r): State<Receiver>, headers: HeaderMap, body: Bytes) -> AxumStatus {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    let verified = verify(SECRET, &header("portcullis-signature"), &body, now());
    r.got.lock().unwrap().push(Received {
        event_type: header("portcullis-event"),
        delivery: header("portcullis-delivery"),
        body: serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null),
        verified,
    });
    let answer = r.script.lock().unwrap().pop_front();
    if !verified {
        return AxumStatus::BAD_REQUEST;
    }
    match answer {
        Some(Answer::Hang) => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            AxumStatus::OK
        }
        Some(Answer::Status(code)) => AxumStatus::from_u16(code).unwrap(),
        None => AxumStatus::OK,
    }
}

impl Receiver {
    // The test's own server, not one of the app's routes.
    #[allow(clippy::disallowed_methods)]
    async fn start(script: &[Answer]) -> (Receiver, SocketAddr) {
        let r = Receiver::default();
        r.script.lock().unwrap().extend(script.iter().copied());
        let app = axum::Router::new()
            .route("/hook", axum::routing::post(receive))
            .with_state(r.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (r, address)
    }

    fn got(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }
}

// ---------------------------------------------------------------------------------------
// Helpers

/// Carol registers a webhook to `url` for `events`; returns the endpoint's id.
async fn register(app: &TestApp, carol: &reqwest::Client, url: &str, events: &[&str]) -> Uuid {
    let mut form = vec![("url", url), ("secret", SECRET), ("enabled", "on")];
    for e in events {
        form.push(("events", e));
    }
    let page = app.post_with(carol, "/admin/webhooks/new", &form).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    sqlx::query_scalar("SELECT id FROM webhook_endpoints WHERE url = $1")
        .bind(url)
        .fetch_one(&app.db)
        .await
        .unwrap()
}

fn sender(app: &TestApp, timeout: Duration) -> Sender {
    Sender::new(app.secrets.clone(), timeout).unwrap()
}

/// Makes every queued retry due now (the backoff, without waiting for it).
async fn skip_backoff(app: &TestApp) {
    sqlx::query(
        "UPDATE webhook_deliveries SET next_attempt_at = now() WHERE next_attempt_at IS NOT NULL",
    )
    .execute(&app.db)
    .await
    .unwrap();
}

#[derive(Debug, sqlx::FromRow)]
struct Row {
    attempts: i32,
    delivered: bool,
    gave_up: bool,
    pending: bool,
    response_code: Option<i32>,
    last_error: Option<String>,
}

async fn deliveries(app: &TestApp, endpoint: Uuid) -> Vec<Row> {
    sqlx::query_as(
        "SELECT attempts, delivered_at IS NOT NULL AS delivered, gave_up_at IS NOT NULL AS gave_up,
                next_attempt_at IS NOT NULL AS pending, response_code, last_error
         FROM webhook_deliveries WHERE endpoint_id = $1 ORDER BY created_at",
    )
    .bind(endpoint)
    .fetch_all(&app.db)
    .await
    .unwrap()
}

// ---------------------------------------------------------------------------------------
// Tests

#[tokio::test]
async fn a_request_and_its_decision_are_delivered_signed() {
    let app = spawn_demo_app().await;
    let (receiver, address) = Receiver::start(&[]).await;
    let carol = signed_in(&app, "carol").await;
    let url = format!("http://{address}/hook");
    let endpoint = register(&app, &carol, &url, &["all"]).await;

    let session = standard_request(&app).await;
    let bob = signed_in(&app, "bob").await;
    let page = app
        .post_with(
            &bob,
            "/approvals/decide",
            &[
                ("id", &session.to_string()),
                ("decision", "approve"),
                ("comment", "go ahead"),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);

    let delivered = webhooks::deliver_due(&app.db, &sender(&app, Duration::from_secs(5)))
        .await
        .unwrap();
    let got = receiver.got();
    assert_eq!(delivered, got.len());
    assert!(
        got.iter().all(|r| r.verified),
        "every signature checks: {got:?}"
    );
    let created = got
        .iter()
        .find(|r| r.event_type == "request.created")
        .expect("the request was delivered");
    assert_eq!(created.body["session"]["id"], session.to_string());
    assert_eq!(created.body["session"]["status"], "waiting_for_approval");
    assert_eq!(created.body["request"]["requester"], "alice");
    let decision = got
        .iter()
        .find(|r| r.event_type == "request.decision")
        .expect("the decision was delivered");
    assert_eq!(decision.body["type"], "request.decision");
    assert_eq!(decision.body["event"], "approved");
    assert_eq!(decision.body["actor"]["name"], "Bob Brennan");
    assert_eq!(decision.body["comment"], "Approved: go ahead");
    assert_eq!(
        decision.body["session"]["from_status"],
        "waiting_for_approval"
    );
    assert_eq!(decision.body["request"]["activity"], "Linux administration");
    // The session then became Available: a status change.
    assert!(
        got.iter().any(|r| r.event_type == "session.status_changed"
            && r.body["session"]["status"] == "available"),
        "{got:?}"
    );
    let rows = deliveries(&app, endpoint).await;
    assert!(
        rows.iter()
            .all(|r| r.delivered && r.attempts == 1 && r.response_code == Some(200))
    );

    // A body changed on the way, or an old timestamp, is refused by the receiver's check.
    let body = serde_json::to_vec(&decision.body).unwrap();
    let header = webhooks::signature(SECRET, now(), &body);
    assert!(verify(SECRET, &header, &body, now()));
    assert!(!verify(SECRET, &header, b"{\"type\":\"forged\"}", now()));
    assert!(
        !verify(SECRET, &header, &body, now() + 600),
        "a replay is refused"
    );

    // The log page lists them.
    let log = app
        .get_with(&carol, &format!("/admin/webhooks/{endpoint}/deliveries"))
        .await;
    assert_eq!(log.status, StatusCode::OK);
    let states = log.texts("#deliveries tbody td:nth-child(4)");
    assert_eq!(states.len(), rows.len());
    assert!(states.iter().all(|s| s == "Delivered"), "{states:?}");
}

#[tokio::test]
async fn only_the_chosen_events_are_queued() {
    let app = spawn_demo_app().await;
    let carol = signed_in(&app, "carol").await;
    let decisions = register(
        &app,
        &carol,
        "https://hooks.example.com/d",
        &["request.decision"],
    )
    .await;
    let off = register(&app, &carol, "https://hooks.example.com/off", &["all"]).await;
    let page = app
        .post_with(
            &carol,
            &format!("/admin/webhooks/{off}"),
            &[("url", "https://hooks.example.com/off"), ("events", "all")],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);

    let session = standard_request(&app).await;
    let bob = signed_in(&app, "bob").await;
    app.post_with(
        &bob,
        "/approvals/decide",
        &[
            ("id", &session.to_string()),
            ("decision", "deny"),
            ("comment", "no"),
        ],
    )
    .await;
    let types: Vec<String> = sqlx::query_scalar(
        "SELECT event_type FROM webhook_deliveries WHERE endpoint_id = $1 ORDER BY created_at",
    )
    .bind(decisions)
    .fetch_all(&app.db)
    .await
    .unwrap();
    assert_eq!(types, ["request.decision"]);
    assert!(
        deliveries(&app, off).await.is_empty(),
        "a disabled endpoint gets nothing"
    );
}

#[tokio::test]
async fn a_failed_delivery_is_retried_with_backoff_then_given_up() {
    let app = spawn_demo_app().await;
    let (receiver, address) = Receiver::start(&[Answer::Status(500)]).await;
    let carol = signed_in(&app, "carol").await;
    let endpoint = register(&app, &carol, &format!("http://{address}/hook"), &["all"]).await;

    // The button queues a test event, audited.
    let page = app
        .post_with(&carol, &format!("/admin/webhooks/{endpoint}/test"), &[])
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(
        page.location(),
        format!("/admin/webhooks/{endpoint}/deliveries")
    );
    let audited: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM admin_audit WHERE object_kind = 'webhook' AND action = 'send_test_event'",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(audited, 1);

    let sender = sender(&app, Duration::from_secs(5));
    assert_eq!(webhooks::deliver_due(&app.db, &sender).await.unwrap(), 0);
    let rows = deliveries(&app, endpoint).await;
    assert_eq!(rows.len(), 1);
    assert_eq!((rows[0].attempts, rows[0].response_code), (1, Some(500)));
    assert!(rows[0].pending && !rows[0].delivered && !rows[0].gave_up);
    let wait: f64 = sqlx::query_scalar(
        "SELECT extract(epoch FROM next_attempt_at - now())::float8 FROM webhook_deliveries",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert!(
        (5.0..=10.5).contains(&wait),
        "the first retry waits 10 s: {wait}"
    );
    let log = app
        .get_with(&carol, &format!("/admin/webhooks/{endpoint}/deliveries"))
        .await;
    assert_eq!(log.texts("#deliveries tbody td:nth-child(4)"), ["Retrying"]);
    assert!(
        log.body.contains("500 Internal Server Error"),
        "{}",
        log.body
    );

    // Not due yet: nothing is sent.
    assert_eq!(webhooks::deliver_due(&app.db, &sender).await.unwrap(), 0);
    assert_eq!(receiver.got().len(), 1);
    // Once due, the retry goes out and the receiver's 200 ends it.
    skip_backoff(&app).await;
    assert_eq!(webhooks::deliver_due(&app.db, &sender).await.unwrap(), 1);
    let got = receiver.got();
    assert_eq!(got.len(), 2);
    assert_eq!(
        got[0].delivery, got[1].delivery,
        "the same delivery, retried"
    );
    assert_eq!(got[1].event_type, "test");
    assert!(got.iter().all(|r| r.verified));
    let rows = deliveries(&app, endpoint).await;
    assert_eq!((rows[0].attempts, rows[0].delivered), (2, true));
    assert_eq!(rows[0].last_error, None);

    // A receiver that keeps failing: given up after the last attempt, and marked so.
    receiver
        .script
        .lock()
        .unwrap()
        .extend([Answer::Status(503); 2]);
    app.post_with(&carol, &format!("/admin/webhooks/{endpoint}/test"), &[])
        .await;
    sqlx::query("UPDATE webhook_deliveries SET attempts = $1 - 1 WHERE delivered_at IS NULL")
        .bind(webhooks::MAX_ATTEMPTS)
        .execute(&app.db)
        .await
        .unwrap();
    webhooks::deliver_due(&app.db, &sender).await.unwrap();
    let rows = deliveries(&app, endpoint).await;
    assert!(rows[1].gave_up && !rows[1].pending, "{rows:?}");
    assert_eq!(rows[1].attempts, webhooks::MAX_ATTEMPTS);
    let log = app
        .get_with(&carol, &format!("/admin/webhooks/{endpoint}/deliveries"))
        .await;
    assert_eq!(
        log.texts("#deliveries tbody td:nth-child(4)"),
        ["Given up", "Delivered"]
    );
}

#[tokio::test]
async fn a_hanging_endpoint_does_not_delay_the_approval() {
    let app = spawn_demo_app().await;
    let (receiver, address) = Receiver::start(&[Answer::Hang; 4]).await;
    let carol = signed_in(&app, "carol").await;
    let endpoint = register(&app, &carol, &format!("http://{address}/hook"), &["all"]).await;
    let session = standard_request(&app).await;

    // The sender is stuck on the request's event while bob approves.
    let pool = app.db.clone();
    let sender = sender(&app, Duration::from_secs(3));
    let pass = tokio::spawn(async move { webhooks::deliver_due(&pool, &sender).await });
    let deadline = Instant::now() + Duration::from_secs(10);
    while receiver.got().is_empty() {
        assert!(
            Instant::now() < deadline,
            "the request's event never reached the endpoint"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let bob = signed_in(&app, "bob").await;
    let started = Instant::now();
    let page = app
        .post_with(
            &bob,
            "/approvals/decide",
            &[
                ("id", &session.to_string()),
                ("decision", "approve"),
                ("comment", ""),
            ],
        )
        .await;
    let took = started.elapsed();
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    println!("approval with a hanging webhook endpoint: {took:?}");
    assert!(
        took < Duration::from_millis(1500),
        "the approval took {took:?}"
    );
    let status: String =
        sqlx::query_scalar("SELECT status::text FROM activity_sessions WHERE id = $1")
            .bind(session)
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(status, "available");
    assert!(
        !pass.is_finished(),
        "the sender is still waiting for the endpoint"
    );

    // The sender gives up on that attempt at its timeout and will retry.
    assert_eq!(pass.await.unwrap().unwrap(), 0);
    let rows = deliveries(&app, endpoint).await;
    assert!(
        rows.len() >= 2,
        "the approval's events were queued: {rows:?}"
    );
    let first = &rows[0];
    assert_eq!((first.attempts, first.pending), (1, true));
    assert_eq!(
        first.last_error.as_deref(),
        Some("No answer in time (timed out).")
    );
}

#[tokio::test]
async fn bad_endpoints_are_refused_with_a_message_and_nothing_is_stored() {
    let app = spawn_demo_app().await;
    let carol = signed_in(&app, "carol").await;
    let cases: [(&str, &str, &[&str], &str, &str); 7] = [
        (
            "http://hooks.example.com/x",
            SECRET,
            &["all"],
            "#url-error",
            "Plain http:// is only allowed to this machine",
        ),
        (
            "ftp://hooks.example.com/x",
            SECRET,
            &["all"],
            "#url-error",
            "must start with https://",
        ),
        (
            "https://user:pw@hooks.example.com/x",
            SECRET,
            &["all"],
            "#url-error",
            "must not hold a user name or password",
        ),
        (
            "hooks.example.com/x",
            SECRET,
            &["all"],
            "#url-error",
            "not a valid address",
        ),
        (
            "https://hooks.example.com/x",
            "short",
            &["all"],
            "#secret-error",
            "at least 16 characters",
        ),
        (
            "https://hooks.example.com/x",
            SECRET,
            &[],
            "#events-error",
            "Choose the events",
        ),
        (
            "https://hooks.example.com/x",
            SECRET,
            &["session.everything"],
            "#events-error",
            "Unknown event type",
        ),
    ];
    for (url, secret, events, field, message) in cases {
        let mut form = vec![("url", url), ("secret", secret), ("enabled", "on")];
        for e in events {
            form.push(("events", e));
        }
        let page = app.post_with(&carol, "/admin/webhooks/new", &form).await;
        assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY, "{url}");
        let errors = page.texts(field);
        assert!(
            errors.iter().any(|e| e.contains(message)),
            "{url}: {errors:?}"
        );
        assert!(!page.body.contains(SECRET), "the secret is not sent back");
    }
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM webhook_endpoints")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(stored, 0);

    // A good one is stored with its secret sealed, and the secret never shown.
    let endpoint = register(
        &app,
        &carol,
        "https://hooks.example.com/ok",
        &["request.created"],
    )
    .await;
    let sealed: Vec<u8> =
        sqlx::query_scalar("SELECT secret_ciphertext FROM webhook_endpoints WHERE id = $1")
            .bind(endpoint)
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert!(!sealed.windows(SECRET.len()).any(|w| w == SECRET.as_bytes()));
    assert_eq!(app.secrets.open(endpoint, &sealed).unwrap(), SECRET);
    let form = app
        .get_with(&carol, &format!("/admin/webhooks/{endpoint}"))
        .await;
    assert_eq!(form.status, StatusCode::OK);
    assert!(!form.body.contains(SECRET));
    let audit: Vec<String> =
        sqlx::query_scalar("SELECT after::text FROM admin_audit WHERE object_kind = 'webhook'")
            .fetch_all(&app.db)
            .await
            .unwrap();
    assert_eq!(audit.len(), 1);
    assert!(!audit[0].contains(SECRET) && !audit[0].contains("secret_ciphertext"));
    // A bad edit changes nothing.
    let page = app
        .post_with(
            &carol,
            &format!("/admin/webhooks/{endpoint}"),
            &[("url", "http://evil.example.com/"), ("events", "all")],
        )
        .await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    let url: String = sqlx::query_scalar("SELECT url FROM webhook_endpoints WHERE id = $1")
        .bind(endpoint)
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(url, "https://hooks.example.com/ok");
}

/// The retry settings (`PORTCULLIS_WEBHOOK_MAX_ATTEMPTS`, `..._FIRST_BACKOFF_SECONDS`) are
/// the sender's, and finished deliveries older than `PORTCULLIS_WEBHOOK_RETENTION_DAYS` are
/// deleted, never one still to be tried.
#[tokio::test]
async fn configured_retries_are_followed_and_old_deliveries_are_pruned() {
    let app = spawn_demo_app().await;
    let (receiver, address) = Receiver::start(&[Answer::Status(503), Answer::Status(503)]).await;
    let carol = signed_in(&app, "carol").await;
    let endpoint = register(&app, &carol, &format!("http://{address}/hook"), &["all"]).await;
    let sender = sender(&app, Duration::from_secs(5)).retrying(2, Duration::from_secs(60));

    app.post_with(&carol, &format!("/admin/webhooks/{endpoint}/test"), &[])
        .await;
    assert_eq!(webhooks::deliver_due(&app.db, &sender).await.unwrap(), 0);
    let wait: f64 = sqlx::query_scalar(
        "SELECT extract(epoch FROM next_attempt_at - now())::float8 FROM webhook_deliveries",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert!(
        (55.0..=60.5).contains(&wait),
        "the first retry waits 60 s: {wait}"
    );
    skip_backoff(&app).await;
    webhooks::deliver_due(&app.db, &sender).await.unwrap();
    let rows = deliveries(&app, endpoint).await;
    assert!(
        rows[0].gave_up && rows[0].attempts == 2,
        "given up after 2: {rows:?}"
    );
    assert_eq!(receiver.got().len(), 2);

    // One delivered (the receiver now answers 200) and one still waiting for its first try.
    app.post_with(&carol, &format!("/admin/webhooks/{endpoint}/test"), &[])
        .await;
    assert_eq!(webhooks::deliver_due(&app.db, &sender).await.unwrap(), 1);
    app.post_with(&carol, &format!("/admin/webhooks/{endpoint}/test"), &[])
        .await;
    // Age them: the given-up one 31 days, the delivered one 29 days, the waiting one was
    // queued 40 days ago (an endpoint that was off for long).
    sqlx::query(
        "UPDATE webhook_deliveries SET
             gave_up_at = CASE WHEN gave_up_at IS NOT NULL THEN now() - interval '31 days' END,
             delivered_at = CASE WHEN delivered_at IS NOT NULL THEN now() - interval '29 days' END,
             created_at = now() - interval '40 days',
             next_attempt_at = CASE WHEN next_attempt_at IS NOT NULL THEN now() + interval '1 hour' END",
    )
    .execute(&app.db)
    .await
    .unwrap();
    assert_eq!(webhooks::prune(&app.db, 30).await.unwrap(), 1);
    let rows = deliveries(&app, endpoint).await;
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert!(rows.iter().all(|r| !r.gave_up), "{rows:?}");
    assert!(rows.iter().any(|r| r.delivered) && rows.iter().any(|r| r.pending));
    assert_eq!(webhooks::prune(&app.db, 30).await.unwrap(), 0);
    assert_eq!(webhooks::prune(&app.db, 28).await.unwrap(), 1);
}
