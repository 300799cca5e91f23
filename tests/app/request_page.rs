//! The request page (issue 16): what it shows, who may open it, partial and whole decisions,
//! refusals that keep the input, the race, and the links to it from everywhere else.

use portcullis::domain::role::Role;
use reqwest::StatusCode;
use uuid::Uuid;

use crate::support::{PASSWORD, TestApp, new_client, spawn_demo_app};
use crate::wizard::{Request, request};

pub const DEMO: &str = "portcullis-demo";
const NOTES: &str = "Patch the kernel on both web servers, then reboot them one at a time so the pool never drops below one healthy node; roll back if the health check fails.";

pub async fn signed_in(app: &TestApp, user: &str, password: &str) -> reqwest::Client {
    let c = new_client();
    let page = app.login_with(&c, user, password).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{user} signs in");
    c
}

/// alice asks for `activity` on `resources` now; returns the request id and its sessions by
/// resource name.
pub async fn alice_asks(app: &TestApp, activity: &str, resources: &[&str]) -> (Uuid, Vec<Uuid>) {
    let alice = signed_in(app, "alice", DEMO).await;
    let (policy, ticket) = if activity == "Domain administration" {
        (None, "CHG123456")
    } else {
        (Some("Linux operations"), "")
    };
    request(
        app,
        &alice,
        &Request {
            activity,
            policy,
            resources,
            notes: NOTES,
            ticket,
            at: None,
        },
    )
    .await;
    let id: Uuid = sqlx::query_scalar("SELECT id FROM requests ORDER BY created_at DESC LIMIT 1")
        .fetch_one(&app.db)
        .await
        .unwrap();
    let sessions = sqlx::query_scalar(
        "SELECT id FROM activity_sessions WHERE request_id = $1 ORDER BY resource_name",
    )
    .bind(id)
    .fetch_all(&app.db)
    .await
    .unwrap();
    (id, sessions)
}

async fn statuses(app: &TestApp, request: Uuid) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT status::text FROM activity_sessions WHERE request_id = $1 ORDER BY resource_name",
    )
    .bind(request)
    .fetch_all(&app.db)
    .await
    .unwrap()
}

async fn decisions(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM approval_decisions")
        .fetch_one(&app.db)
        .await
        .unwrap()
}

/// Posts a decision from the request page on the ticked sessions.
pub async fn decide(
    app: &TestApp,
    c: &reqwest::Client,
    request: Uuid,
    ticked: &[Uuid],
    decision: &str,
    comment: &str,
) -> crate::support::Page {
    let ids: Vec<String> = ticked.iter().map(Uuid::to_string).collect();
    let mut form: Vec<(&str, &str)> = vec![("decision", decision), ("comment", comment)];
    form.extend(ids.iter().map(|id| ("id", id.as_str())));
    app.post_with(c, &format!("/requests/{request}/decide"), &form)
        .await
}

#[tokio::test]
async fn the_request_page_shows_who_asked_what_for_each_resource_and_each_decision() {
    let app = demo_app().await;
    let (earlier, _) = alice_asks(&app, "Linux administration", &["lnx-web-03"]).await;
    let bob = signed_in(&app, "bob", DEMO).await;
    decide(&app, &bob, earlier, &[], "approve", "").await;
    let dave = signed_in(&app, "dave", DEMO).await;
    let earlier_session: Uuid =
        sqlx::query_scalar("SELECT id FROM activity_sessions WHERE request_id = $1")
            .bind(earlier)
            .fetch_one(&app.db)
            .await
            .unwrap();
    decide(&app, &dave, earlier, &[earlier_session], "deny", "Freeze").await;
    let (id, sessions) =
        alice_asks(&app, "Linux administration", &["lnx-web-01", "lnx-web-02"]).await;

    let page = app.get_with(&bob, &format!("/requests/{id}")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(page.texts("h1"), ["Linux administration for Alice Archer"]);
    let facts = page.texts("#request dd");
    assert_eq!(facts[0], "Alice Archer");
    assert_eq!(facts[3], "Linux operations (Standard)");
    assert!(facts[4].contains(" to "), "the window: {facts:?}");
    assert_ne!(facts[5], "No approval needed", "the decision deadline");
    assert_eq!(facts[6], NOTES, "notes in full");
    assert_eq!(
        page.texts("#resources tbody td:nth-child(2)"),
        ["lnx-web-01", "lnx-web-02"]
    );
    let html = page.html();
    let links: Vec<&str> = html
        .select(&scraper::Selector::parse("#resources tbody td a").unwrap())
        .filter_map(|a| a.value().attr("href"))
        .collect();
    assert_eq!(
        links,
        [
            format!("/sessions/{}", sessions[0]),
            format!("/sessions/{}", sessions[1])
        ]
    );
    assert_eq!(
        page.texts("#resources tbody .status"),
        ["Waiting for Approval", "Waiting for Approval"]
    );
    assert_eq!(
        page.texts("#tiers li"),
        ["Tier 1: 1 of Bob Brennan, Dave Dumont"]
    );
    assert_eq!(page.texts("#decisions td.empty"), ["No decision yet."]);
    assert_eq!(
        page.texts("#recent tbody td:nth-child(3)"),
        ["Approval Denied"],
        "alice's earlier request and its outcome"
    );

    decide(&app, &bob, id, &sessions[..1], "approve", "Go").await;
    let page = app
        .get_with(&alice_client(&app).await, &format!("/requests/{id}"))
        .await;
    let row = page.texts("#decisions tbody td");
    assert_eq!(
        row[1..],
        ["Bob Brennan", "1", "lnx-web-01", "Approved", "Go"]
    );
    assert_eq!(
        page.texts("#resources tbody .status"),
        ["Available", "Waiting for Approval"]
    );
    assert!(
        page.texts("#resources input").is_empty(),
        "the requester cannot decide: no boxes"
    );
}

async fn alice_client(app: &TestApp) -> reqwest::Client {
    signed_in(app, "alice", DEMO).await
}

async fn demo_app() -> TestApp {
    spawn_demo_app().await
}

#[tokio::test]
async fn only_the_requester_its_deciders_administrators_and_auditors_may_open_it() {
    let app = demo_app().await;
    app.create_user("audrey", Role::Auditor).await;
    let oscar = app.create_user("oscar", Role::User).await;
    app.create_user("olive", Role::User).await;
    let (id, sessions) = alice_asks(&app, "Domain administration", &["win-dc-01"]).await;
    // oscar approves for another profile's tier, not this request's.
    sqlx::query(
        "INSERT INTO approval_tier_users (tier_id, user_id)
         SELECT t.id, $1 FROM approval_tiers t
         WHERE t.profile_id <> (SELECT profile_id FROM requests WHERE id = $2) LIMIT 1",
    )
    .bind(oscar)
    .bind(id)
    .execute(&app.db)
    .await
    .unwrap();
    let path = format!("/requests/{id}");
    let may = |c: reqwest::Client| {
        let app = &app;
        let path = path.clone();
        async move { app.get_with(&c, &path).await.status }
    };
    // Tier 1 (bob, dave) decides now; carol (tier 2) is an administrator.
    for (user, password, expected) in [
        ("alice", DEMO, StatusCode::OK),
        ("bob", DEMO, StatusCode::OK),
        ("dave", DEMO, StatusCode::OK),
        ("carol", DEMO, StatusCode::OK),
        ("audrey", PASSWORD, StatusCode::OK),
        ("oscar", PASSWORD, StatusCode::NOT_FOUND),
        ("olive", PASSWORD, StatusCode::NOT_FOUND),
        ("erin", DEMO, StatusCode::NOT_FOUND),
    ] {
        assert_eq!(
            may(signed_in(&app, user, password).await).await,
            expected,
            "{user}"
        );
    }
    let unknown = app
        .get_with(
            &signed_in(&app, "erin", DEMO).await,
            &format!("/requests/{}", Uuid::now_v7()),
        )
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert_eq!(
        app.get_with(&signed_in(&app, "erin", DEMO).await, &path)
            .await
            .body,
        unknown.body,
        "no existence leak"
    );
    let anonymous = app.get_with(&new_client(), &path).await;
    assert_eq!(anonymous.status, StatusCode::SEE_OTHER);
    assert!(
        anonymous.location().starts_with("/login"),
        "{}",
        anonymous.location()
    );

    // bob approves tier 1: he decided on it, so he still sees it; dave, who did not and
    // may not decide in tier 2, no longer does.
    let bob = signed_in(&app, "bob", DEMO).await;
    decide(&app, &bob, id, &sessions, "approve", "").await;
    assert_eq!(statuses(&app, id).await, ["waiting_for_approval"]);
    assert_eq!(may(bob).await, StatusCode::OK, "earlier-tier approver");
    assert_eq!(
        may(signed_in(&app, "dave", DEMO).await).await,
        StatusCode::NOT_FOUND
    );
    // The session's own page follows the same rule.
    let session = format!("/sessions/{}", sessions[0]);
    let bob = signed_in(&app, "bob", DEMO).await;
    assert_eq!(app.get_with(&bob, &session).await.status, StatusCode::OK);
    let olive = signed_in(&app, "olive", PASSWORD).await;
    assert_eq!(
        app.get_with(&olive, &session).await.status,
        StatusCode::NOT_FOUND
    );
    // erin cannot decide by hand either, and learns nothing.
    let erin = signed_in(&app, "erin", DEMO).await;
    let refused = decide(&app, &erin, id, &sessions, "approve", "").await;
    assert_eq!(refused.status, StatusCode::NOT_FOUND);
    assert_eq!(decisions(&app).await, 1);
}

#[tokio::test]
async fn approving_some_resources_leaves_the_others_waiting_then_denying_the_rest() {
    let app = demo_app().await;
    let (id, sessions) =
        alice_asks(&app, "Linux administration", &["lnx-web-01", "lnx-web-02"]).await;
    let bob = signed_in(&app, "bob", DEMO).await;
    let page = app.get_with(&bob, &format!("/requests/{id}")).await;
    assert_eq!(
        page.html()
            .select(&scraper::Selector::parse("#resources input[checked]").unwrap())
            .count(),
        2,
        "the whole request is ticked at first"
    );

    let done = decide(&app, &bob, id, &sessions[1..], "approve", "Only 02").await;
    assert_eq!(done.status, StatusCode::SEE_OTHER);
    assert_eq!(done.location(), format!("/requests/{id}"));
    assert_eq!(
        statuses(&app, id).await,
        ["waiting_for_approval", "available"]
    );
    let page = app.get_with(&bob, &format!("/requests/{id}")).await;
    assert_eq!(page.texts(".flash"), ["Approved 1 request."]);
    let boxes: Vec<String> = page
        .html()
        .select(&scraper::Selector::parse("#resources input").unwrap())
        .filter_map(|i| i.value().attr("value").map(str::to_owned))
        .collect();
    assert_eq!(
        boxes,
        [sessions[0].to_string()],
        "only what bob may still decide"
    );

    let dave = signed_in(&app, "dave", DEMO).await;
    decide(&app, &dave, id, &sessions, "deny", "Not 01").await;
    assert_eq!(statuses(&app, id).await, ["approval_denied", "available"]);
    let page = app.get_with(&dave, &format!("/requests/{id}")).await;
    let flashes = page.texts(".flash");
    assert_eq!(flashes.len(), 2, "{flashes:?}");
    assert!(
        flashes[0].starts_with("This request was already approved by Bob Brennan at "),
        "{flashes:?}"
    );
    assert_eq!(flashes[1], "Denied 1 request.");
}

#[tokio::test]
async fn the_whole_request_is_approved_at_once_from_its_page() {
    let app = demo_app().await;
    let (id, sessions) =
        alice_asks(&app, "Linux administration", &["lnx-web-01", "lnx-web-02"]).await;
    let bob = signed_in(&app, "bob", DEMO).await;
    decide(&app, &bob, id, &sessions, "approve", "").await;
    assert_eq!(statuses(&app, id).await, ["available", "available"]);
    assert_eq!(
        app.get_with(&bob, &format!("/requests/{id}"))
            .await
            .texts(".flash"),
        ["Approved 2 requests."]
    );
}

#[tokio::test]
async fn a_refused_decision_keeps_what_was_ticked_and_typed_and_changes_nothing() {
    let app = demo_app().await;
    let (id, sessions) =
        alice_asks(&app, "Linux administration", &["lnx-web-01", "lnx-web-02"]).await;
    let bob = signed_in(&app, "bob", DEMO).await;

    let page = decide(&app, &bob, id, &sessions[1..], "deny", "   ").await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        page.texts("#decide-error"),
        ["A comment is required to deny: say why."]
    );
    let ticked: Vec<String> = page
        .html()
        .select(&scraper::Selector::parse("#resources input[checked]").unwrap())
        .filter_map(|i| i.value().attr("value").map(str::to_owned))
        .collect();
    assert_eq!(ticked, [sessions[1].to_string()]);

    let page = decide(&app, &bob, id, &[], "approve", "Looks fine <b>").await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        page.texts("#decide-error"),
        ["Tick the resources to decide on first."]
    );
    assert_eq!(page.texts("#comment"), ["Looks fine <b>"]);
    assert_eq!(
        page.html()
            .select(&scraper::Selector::parse("#resources input[checked]").unwrap())
            .count(),
        0
    );
    // A session of another request is not this request's to decide.
    let (other, other_sessions) = alice_asks(&app, "Linux administration", &["lnx-web-03"]).await;
    let page = decide(&app, &bob, id, &other_sessions, "approve", "").await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(decisions(&app).await, 0);
    assert_eq!(
        statuses(&app, id).await,
        ["waiting_for_approval", "waiting_for_approval"]
    );
    assert_eq!(statuses(&app, other).await, ["waiting_for_approval"]);

    // Without the CSRF token, nothing.
    let raw = app
        .post_raw_with(
            &bob,
            &format!("/requests/{id}/decide"),
            &[("decision", "approve"), ("id", &sessions[0].to_string())],
        )
        .await;
    assert_eq!(raw.status, StatusCode::FORBIDDEN);
    assert_eq!(decisions(&app).await, 0);
}

#[tokio::test]
async fn two_approvers_deciding_on_the_request_page_at_once_give_one_outcome() {
    let app = demo_app().await;
    let (id, sessions) =
        alice_asks(&app, "Linux administration", &["lnx-web-01", "lnx-web-02"]).await;
    let bob = signed_in(&app, "bob", DEMO).await;
    let dave = signed_in(&app, "dave", DEMO).await;
    let (a, b) = tokio::join!(
        decide(&app, &bob, id, &sessions, "approve", ""),
        decide(&app, &dave, id, &sessions, "deny", "No")
    );
    assert_eq!(
        (a.status, b.status),
        (StatusCode::SEE_OTHER, StatusCode::SEE_OTHER)
    );
    let after = statuses(&app, id).await;
    for s in &after {
        assert!(s == "available" || s == "approval_denied", "{after:?}");
    }
    let (decided, moves): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM approval_decisions),
                (SELECT count(*) FROM session_events WHERE kind IN ('approved', 'denied'))",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(
        (decided, moves),
        (2, 2),
        "one decision and one move per resource"
    );
}

#[tokio::test]
async fn the_approvals_tab_lists_requests_and_everything_links_to_the_request() {
    let app = demo_app().await;
    let (id, sessions) =
        alice_asks(&app, "Linux administration", &["lnx-web-01", "lnx-web-02"]).await;
    alice_asks(&app, "Linux administration", &["lnx-web-03"]).await;
    let bob = signed_in(&app, "bob", DEMO).await;

    let dashboard = app.get_with(&bob, "/dashboard").await;
    assert_eq!(
        dashboard.texts("#waiting-approvals"),
        ["2 requests wait for your approval."]
    );
    let page = app.get_with(&bob, "/approvals").await;
    assert_eq!(
        page.texts("#approvals tbody td:nth-child(5)"),
        ["2 resources", "1 resource"]
    );
    assert!(
        page.body.contains(&format!("href=\"/requests/{id}\"")),
        "the row links to the request page"
    );

    // Ticking the request on the Approvals tab decides every resource of it.
    app.post_with(
        &bob,
        "/approvals/decide",
        &[
            ("request", &id.to_string()),
            ("decision", "approve"),
            ("comment", ""),
        ],
    )
    .await;
    assert_eq!(statuses(&app, id).await, ["available", "available"]);
    assert_eq!(
        app.get_with(&bob, "/dashboard")
            .await
            .texts("#waiting-approvals"),
        ["1 request waits for your approval."]
    );

    let alice = alice_client(&app).await;
    let dashboard = app.get_with(&alice, "/dashboard").await;
    assert!(
        dashboard.body.contains(&format!("href=\"/requests/{id}\"")),
        "dashboard rows link to their request"
    );
    assert!(
        dashboard.texts("#waiting-approvals").is_empty(),
        "alice approves nothing"
    );
    let details = app
        .get_with(&alice, &format!("/sessions/{}", sessions[0]))
        .await;
    assert!(details.body.contains(&format!("href=\"/requests/{id}\"")));
}
