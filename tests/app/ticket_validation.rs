//! Ticket validation: a connection profile names a validator that the wizard's Notes page
//! asks about the ticket; its answer (open, closed or unknown, or none in time) blocks or
//! warns as the profile says, is shown to the requester, and is stored with the request for
//! approvers. The validator is a real HTTP server in this module.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::State;
use reqwest::StatusCode;
use uuid::Uuid;

use crate::admin_policies::profile;
use crate::approvals::signed_in;
use crate::support::{Page, TestApp, spawn_demo_app};
use crate::wizard::{activity_value, draft_id, resource_ids};

/// The tickets the validator knows: OPEN-1 is open, CLOSED-1 closed; SLOW-1 gets no answer
/// in time; anything else is unknown.
#[derive(Clone, Default)]
struct Validator {
    asked: Arc<Mutex<Vec<serde_json::Value>>>,
}

async fn answer(
    State(v): State<Validator>,
    Json(question): Json<serde_json::Value>,
) -> Json<serde_json::Value> {
    v.asked.lock().unwrap().push(question.clone());
    let ticket = question["ticket"].as_str().unwrap_or("").to_owned();
    match ticket.as_str() {
        "OPEN-1" => Json(
            serde_json::json!({"exists": true, "open": true, "summary": "Patch the web servers"}),
        ),
        "CLOSED-1" => Json(serde_json::json!({"exists": true, "open": false})),
        "SLOW-1" => {
            tokio::time::sleep(Duration::from_secs(30)).await;
            Json(serde_json::json!({"exists": true, "open": true}))
        }
        _ => Json(serde_json::json!({"exists": false, "open": false})),
    }
}

impl Validator {
    // The test's own server, not one of the app's routes.
    #[allow(clippy::disallowed_methods)]
    async fn start() -> (Validator, String) {
        let v = Validator::default();
        let app = axum::Router::new()
            .route("/check", axum::routing::post(answer))
            .with_state(v.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/check", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (v, url)
    }
}

/// The demo data with the Standard profile (alice's Linux operations) asking `url`.
async fn app_with_validator(url: &str, on_failure: &str) -> TestApp {
    let app = spawn_demo_app().await;
    sqlx::query(
        "UPDATE connection_profiles SET ticket_validator_url = $1,
             ticket_validator_timeout_seconds = 1, ticket_validator_on_failure = $2
         WHERE name = 'Standard'",
    )
    .bind(url)
    .bind(on_failure)
    .execute(&app.db)
    .await
    .unwrap();
    app
}

/// alice walks the wizard to Notes and submits `ticket` there.
async fn notes(app: &TestApp, alice: &reqwest::Client, ticket: &str) -> Page {
    let value = activity_value(app, alice, "Linux administration", Some("Linux operations")).await;
    let page = app
        .post_with(
            alice,
            "/wizard/request-type",
            &[("activity", &value), ("go", "next")],
        )
        .await;
    assert_eq!(page.location(), "/wizard/resources", "{}", page.body);
    let ids = resource_ids(app, alice, &["lnx-web-01"]).await;
    let page = app
        .post_with(
            alice,
            "/wizard/resources",
            &[("shown", &ids[0]), ("pick", &ids[0]), ("go", "next")],
        )
        .await;
    assert_eq!(page.location(), "/wizard/notes", "{}", page.body);
    app.post_with(
        alice,
        "/wizard/notes",
        &[("notes", "Patch"), ("ticket", ticket), ("go", "next")],
    )
    .await
}

/// From Scheduling to Finish; returns the Review page shown before Finish and the request.
async fn finish(app: &TestApp, alice: &reqwest::Client) -> (Page, Uuid) {
    let page = app
        .post_with(
            alice,
            "/wizard/scheduling",
            &[("when", "now"), ("go", "next")],
        )
        .await;
    assert_eq!(page.location(), "/wizard/review", "{}", page.body);
    let review = app.get_with(alice, "/wizard/review").await;
    let draft = draft_id(&review);
    let done = app
        .post_with(
            alice,
            "/wizard/finish",
            &[("draft_id", &draft), ("go", "finish")],
        )
        .await;
    assert_eq!(done.location(), "/dashboard", "{}", done.body);
    let id = sqlx::query_scalar("SELECT id FROM requests ORDER BY created_at DESC LIMIT 1")
        .fetch_one(&app.db)
        .await
        .unwrap();
    (review, id)
}

async fn stored(app: &TestApp, id: Uuid) -> (Option<String>, Option<String>) {
    sqlx::query_as("SELECT ticket_check_outcome, ticket_check_message FROM requests WHERE id = $1")
        .bind(id)
        .fetch_one(&app.db)
        .await
        .unwrap()
}

async fn requests(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM requests")
        .fetch_one(&app.db)
        .await
        .unwrap()
}

#[tokio::test]
async fn an_open_ticket_goes_on_and_approvers_see_the_answer() {
    let (validator, url) = Validator::start().await;
    let app = app_with_validator(&url, "block").await;
    let alice = signed_in(&app, "alice").await;
    let page = notes(&app, &alice, "OPEN-1").await;
    assert_eq!(page.location(), "/wizard/scheduling", "{}", page.body);
    let asked = validator.asked.lock().unwrap().clone();
    assert_eq!(
        asked,
        [
            serde_json::json!({"ticket": "OPEN-1", "requester": "alice", "activity": "Linux administration"})
        ]
    );
    let notes_page = app.get_with(&alice, "/wizard/notes").await;
    assert_eq!(
        notes_page.texts("#ticket-check"),
        ["The ticket system confirms that ticket OPEN-1 (Patch the web servers) is open."]
    );
    let (review, id) = finish(&app, &alice).await;
    assert_eq!(
        review.texts("#ticket-check"),
        ["The ticket system confirms that ticket OPEN-1 (Patch the web servers) is open."]
    );
    assert_eq!(stored(&app, id).await.0.as_deref(), Some("open"));
    let bob = signed_in(&app, "bob").await;
    let page = app.get_with(&bob, &format!("/requests/{id}")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(
        page.texts("#ticket-check"),
        ["The ticket system confirms that ticket OPEN-1 (Patch the web servers) is open."]
    );
}

#[tokio::test]
async fn block_refuses_a_closed_unknown_or_unanswered_ticket() {
    let (_validator, url) = Validator::start().await;
    let app = app_with_validator(&url, "block").await;
    let alice = signed_in(&app, "alice").await;
    for (ticket, said) in [
        (
            "CLOSED-1",
            "The ticket system says that ticket CLOSED-1 is not open.",
        ),
        ("NOPE-1", "The ticket system does not know ticket NOPE-1."),
        (
            "SLOW-1",
            "The ticket system could not confirm ticket SLOW-1: it did not answer within 1 s.",
        ),
    ] {
        let started = Instant::now();
        let page = notes(&app, &alice, ticket).await;
        let took = started.elapsed();
        assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY, "{ticket}");
        let error = page.texts("#ticket-error");
        assert_eq!(
            error,
            [format!(
                "{said} This access needs a ticket that is open: correct the number, or try again later."
            )]
        );
        if ticket == "SLOW-1" {
            println!("Notes with a validator that does not answer: {took:?}");
            assert!(took < Duration::from_secs(4), "{took:?}");
        }
        // The wizard does not go on.
        let next = app.get_with(&alice, "/wizard/scheduling").await;
        assert_eq!(next.location(), "/wizard/notes");
    }
    assert_eq!(requests(&app).await, 0);
}

#[tokio::test]
async fn warn_lets_the_requester_go_on_with_the_warning_recorded() {
    let (_validator, url) = Validator::start().await;
    for (ticket, outcome, said) in [
        (
            "CLOSED-1",
            "closed",
            "The ticket system says that ticket CLOSED-1 is not open.",
        ),
        (
            "NOPE-1",
            "unknown",
            "The ticket system does not know ticket NOPE-1.",
        ),
        (
            "SLOW-1",
            "failed",
            "The ticket system could not confirm ticket SLOW-1: it did not answer within 1 s.",
        ),
    ] {
        let app = app_with_validator(&url, "warn").await;
        let alice = signed_in(&app, "alice").await;
        let page = notes(&app, &alice, ticket).await;
        assert_eq!(
            page.location(),
            "/wizard/scheduling",
            "{ticket}: {}",
            page.body
        );
        let flash = app
            .get_with(&alice, "/wizard/scheduling")
            .await
            .texts(".flash");
        assert!(
            flash
                .iter()
                .any(|f| f.contains(said) && f.starts_with("Warning:")),
            "{flash:?}"
        );
        let (review, id) = finish(&app, &alice).await;
        assert_eq!(review.texts("#ticket-check"), [format!("Warning: {said}")]);
        assert_eq!(
            stored(&app, id).await,
            (Some(outcome.to_owned()), Some(said.to_owned()))
        );
        let bob = signed_in(&app, "bob").await;
        let page = app.get_with(&bob, &format!("/requests/{id}")).await;
        assert_eq!(page.texts("#ticket-check"), [format!("Warning: {said}")]);
    }
}

#[tokio::test]
async fn the_profile_form_takes_a_validator_and_refuses_a_bad_one() {
    let app = spawn_demo_app().await;
    let carol = signed_in(&app, "carol").await;
    let before: i64 = sqlx::query_scalar("SELECT count(*) FROM connection_profiles")
        .fetch_one(&app.db)
        .await
        .unwrap();
    let approvers: Uuid = sqlx::query_scalar("SELECT id FROM groups WHERE name = 'Approvers'")
        .fetch_one(&app.db)
        .await
        .unwrap();
    let approvers = approvers.to_string();
    for (extra, field, message) in [
        (
            vec![("ticket_validator_url", "http://tickets.example.com/check")],
            "#ticket_validator_url-error",
            "Plain http:// is only allowed to this machine",
        ),
        (
            vec![
                ("ticket_validator_url", "https://tickets.example.com/check"),
                ("ticket_validator_timeout_seconds", "0"),
            ],
            "#ticket_validator_timeout_seconds-error",
            "from 1 to 30",
        ),
        (
            vec![
                ("ticket_validator_url", "https://tickets.example.com/check"),
                ("ticket_validator_on_failure", "ignore"),
            ],
            "#ticket_validator_on_failure-error",
            "block or warn",
        ),
    ] {
        let mut extra = extra;
        extra.push(("tier1_groups", &approvers));
        extra.push(("tier1_required", "1"));
        let page = app
            .post_with(&carol, "/admin/profiles/new", &profile("Ticketed", &extra))
            .await;
        assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
        let errors = page.texts(field);
        assert!(
            errors.iter().any(|e| e.contains(message)),
            "{field}: {errors:?}"
        );
    }
    let after: i64 = sqlx::query_scalar("SELECT count(*) FROM connection_profiles")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(after, before, "nothing stored");

    let page = app
        .post_with(
            &carol,
            "/admin/profiles/new",
            &profile(
                "Ticketed",
                &[
                    ("tier1_groups", &approvers),
                    ("tier1_required", "1"),
                    ("ticket_validator_url", "https://tickets.example.com/check"),
                    ("ticket_validator_timeout_seconds", "3"),
                    ("ticket_validator_on_failure", "warn"),
                ],
            ),
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    let row: (Option<String>, i32, String) = sqlx::query_as(
        "SELECT ticket_validator_url, ticket_validator_timeout_seconds, ticket_validator_on_failure
         FROM connection_profiles WHERE name = 'Ticketed'",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(
        row,
        (
            Some("https://tickets.example.com/check".into()),
            3,
            "warn".into()
        )
    );
}
