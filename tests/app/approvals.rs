//! Approvals and the session lifecycle: decisions, tiers, refusals, races and the clock.

use portcullis::domain::role::Role;
use reqwest::StatusCode;
use uuid::Uuid;

use crate::support::{PASSWORD, TestApp, new_client, spawn_demo_app};
use crate::wizard::{Request, request};

const DEMO: &str = "portcullis-demo";

async fn demo_app() -> TestApp {
    spawn_demo_app().await
}

/// alice asks for Standard access to lnx-web-01 now; returns the session id.
pub(crate) async fn standard_request(app: &TestApp) -> Uuid {
    let alice = new_client();
    app.login_with(&alice, "alice", DEMO).await;
    request(
        app,
        &alice,
        &Request {
            activity: "Linux administration",
            policy: Some("Linux operations"),
            resources: &["lnx-web-01"],
            notes: "Patch",
            ticket: "",
            at: None,
        },
    )
    .await;
    sqlx::query_scalar("SELECT id FROM activity_sessions ORDER BY id DESC LIMIT 1")
        .fetch_one(&app.db)
        .await
        .unwrap()
}

async fn status(app: &TestApp, id: Uuid) -> String {
    sqlx::query_scalar("SELECT status::text FROM activity_sessions WHERE id = $1")
        .bind(id)
        .fetch_one(&app.db)
        .await
        .unwrap()
}

pub(crate) async fn signed_in(app: &TestApp, user: &str) -> reqwest::Client {
    let c = new_client();
    let page = app.login_with(&c, user, DEMO).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{user} signs in");
    c
}

async fn decide(
    app: &TestApp,
    c: &reqwest::Client,
    id: Uuid,
    decision: &str,
    comment: &str,
) -> Vec<String> {
    let page = app
        .post_with(
            c,
            "/approvals/decide",
            &[
                ("id", &id.to_string()),
                ("decision", decision),
                ("comment", comment),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    app.get_with(c, "/approvals").await.texts(".flash")
}

#[tokio::test]
async fn an_approver_sees_the_request_and_approving_makes_it_available() {
    let app = demo_app().await;
    let id = standard_request(&app).await;
    let bob = signed_in(&app, "bob").await;
    let page = app.get_with(&bob, "/approvals").await;
    assert_eq!(
        page.texts("nav.tabs a"),
        ["Active", "Scheduled", "Approvals", "Historical"]
    );
    let cells = page.texts("#approvals tbody tr td");
    assert_eq!(
        cells[1..],
        [
            "Open request".to_owned(),
            cells[2].clone(),
            "Alice Archer".into(),
            "1 resource".into(),
            "Linux administration".into(),
            cells[6].clone(),
            cells[7].clone(),
            cells[8].clone(),
            "Patch".into(),
            String::new(),
            "1 of 1".into(),
        ]
    );
    assert!(!cells[8].is_empty(), "the decision deadline is shown");

    assert_eq!(
        decide(&app, &bob, id, "approve", "ok").await,
        ["Approved 1 request."]
    );
    assert_eq!(status(&app, id).await, "available");
    assert_eq!(
        app.get_with(&bob, "/approvals")
            .await
            .texts("#approvals td.empty"),
        ["Nothing is waiting for your approval."]
    );
    let log: Vec<(String, String)> = sqlx::query_as(
        "SELECT actor_name, comment FROM session_events WHERE session_id = $1 ORDER BY id",
    )
    .bind(id)
    .fetch_all(&app.db)
    .await
    .unwrap();
    assert_eq!(
        log[1],
        ("Bob Brennan".to_owned(), "Approved: ok".to_owned())
    );
    assert_eq!(log[2].0, "Portcullis", "then provisioned");
}

#[tokio::test]
async fn a_denial_needs_a_comment_and_the_requester_sees_why() {
    let app = demo_app().await;
    let id = standard_request(&app).await;
    let dave = signed_in(&app, "dave").await;
    assert_eq!(
        decide(&app, &dave, id, "deny", "  ").await,
        ["A comment is required to deny: say why."]
    );
    assert_eq!(status(&app, id).await, "waiting_for_approval");
    assert_eq!(
        decide(&app, &dave, id, "deny", "Not during the freeze").await,
        ["Denied 1 request."]
    );
    assert_eq!(status(&app, id).await, "approval_denied");

    let alice = signed_in(&app, "alice").await;
    let details = app.get_with(&alice, &format!("/sessions/{id}")).await;
    let last = details.texts("#events tbody tr:last-child td");
    assert_eq!(
        last[1..],
        [
            "Dave Dumont",
            "Waiting for Approval",
            "Approval Denied",
            "Not during the freeze"
        ]
    );
}

#[tokio::test]
async fn a_second_decision_is_refused_with_who_decided_first() {
    let app = demo_app().await;
    let id = standard_request(&app).await;
    let bob = signed_in(&app, "bob").await;
    let dave = signed_in(&app, "dave").await;
    decide(&app, &bob, id, "deny", "No").await;
    let flashes = decide(&app, &dave, id, "approve", "").await;
    assert_eq!(flashes.len(), 1);
    // bob's time zone is Europe/London, dave's UTC: the time is dave's.
    assert!(
        flashes[0].starts_with("This request was already denied by Bob Brennan at "),
        "{flashes:?}"
    );
    // bob deciding again is refused too.
    let again = decide(&app, &bob, id, "approve", "").await;
    assert!(
        again[0].starts_with("This request was already denied by Bob Brennan"),
        "{again:?}"
    );
    let decisions: i64 = sqlx::query_scalar("SELECT count(*) FROM approval_decisions")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(decisions, 1);
}

#[tokio::test]
async fn a_requester_cannot_approve_their_own_request_even_by_hand() {
    let app = demo_app().await;
    // alice becomes an approver too.
    sqlx::query("INSERT INTO group_members (group_id, user_id) SELECT g.id, u.id FROM groups g, users u WHERE g.name = 'Approvers' AND u.username = 'alice'")
        .execute(&app.db)
        .await
        .unwrap();
    let id = standard_request(&app).await;
    let alice = signed_in(&app, "alice").await;
    assert_eq!(
        app.get_with(&alice, "/approvals")
            .await
            .texts("#approvals td.empty"),
        ["Nothing is waiting for your approval."]
    );
    assert_eq!(
        decide(&app, &alice, id, "approve", "").await,
        ["You cannot decide on your own request."]
    );
    assert_eq!(status(&app, id).await, "waiting_for_approval");

    // Unless the profile allowed self-approval when she asked.
    sqlx::query("UPDATE requests SET allow_self_approval = true")
        .execute(&app.db)
        .await
        .unwrap();
    assert_eq!(
        app.get_with(&alice, "/approvals")
            .await
            .texts("#approvals tbody tr")
            .len(),
        1
    );
    assert_eq!(
        decide(&app, &alice, id, "approve", "").await,
        ["Approved 1 request."]
    );
}

#[tokio::test]
async fn non_approvers_have_no_approvals_tab() {
    let app = demo_app().await;
    let id = standard_request(&app).await;
    let erin = signed_in(&app, "erin").await;
    assert_eq!(
        app.get_with(&erin, "/approvals").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.get_with(&erin, "/dashboard").await.texts("nav.tabs a"),
        ["Active", "Scheduled", "Historical"]
    );
    assert_eq!(
        decide(&app, &erin, id, "approve", "").await.len(),
        0,
        "the redirect target is not found for erin"
    );
    let flashes = app.get_with(&erin, "/dashboard").await.texts(".flash");
    assert_eq!(
        flashes,
        ["This request no longer exists."],
        "as for an unknown id: erin may not know it exists"
    );
    assert_eq!(status(&app, id).await, "waiting_for_approval");
}

#[tokio::test]
async fn a_change_window_request_needs_both_tiers_in_order() {
    let app = demo_app().await;
    let alice = signed_in(&app, "alice").await;
    request(
        &app,
        &alice,
        &Request {
            activity: "Domain administration",
            policy: None,
            resources: &["win-dc-01"],
            notes: "Trust reset",
            ticket: "CHG123456",
            at: None,
        },
    )
    .await;
    let id: Uuid = sqlx::query_scalar("SELECT id FROM activity_sessions")
        .fetch_one(&app.db)
        .await
        .unwrap();
    let carol = signed_in(&app, "carol").await;
    assert_eq!(
        app.get_with(&carol, "/approvals")
            .await
            .texts("#approvals tbody tr td.empty")
            .len(),
        1,
        "tier 2 is not yet deciding"
    );
    assert_eq!(
        decide(&app, &carol, id, "approve", "").await,
        ["You are not an approver for tier 1 of this request."]
    );

    let bob = signed_in(&app, "bob").await;
    assert_eq!(
        app.get_with(&bob, "/approvals")
            .await
            .texts("#approvals tbody td:nth-child(12)"),
        ["1 of 2"]
    );
    decide(&app, &bob, id, "approve", "").await;
    assert_eq!(status(&app, id).await, "waiting_for_approval");
    let page = app.get_with(&carol, "/approvals").await;
    assert_eq!(page.texts("#approvals tbody td:nth-child(12)"), ["2 of 2"]);
    let dave = signed_in(&app, "dave").await;
    assert_eq!(
        decide(&app, &dave, id, "approve", "").await,
        ["You are not an approver for tier 2 of this request."]
    );

    decide(&app, &carol, id, "approve", "go").await;
    assert_eq!(status(&app, id).await, "available");
    let kinds: Vec<String> =
        sqlx::query_scalar("SELECT kind::text FROM session_events ORDER BY id")
            .fetch_all(&app.db)
            .await
            .unwrap();
    assert_eq!(
        kinds,
        ["requested", "tier_approved", "approved", "provisioned"]
    );
}

#[tokio::test]
async fn an_approval_of_a_future_request_makes_it_pending() {
    let app = demo_app().await;
    let alice = signed_in(&app, "alice").await;
    let date = (time::OffsetDateTime::now_utc() + time::Duration::days(2))
        .date()
        .to_string();
    request(
        &app,
        &alice,
        &Request {
            activity: "Linux administration",
            policy: Some("Linux operations"),
            resources: &["lnx-web-05"],
            notes: "Later",
            ticket: "",
            at: Some((&date, "10:00")),
        },
    )
    .await;
    let id: Uuid = sqlx::query_scalar("SELECT id FROM activity_sessions")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(
        app.get_with(&alice, "/dashboard/scheduled")
            .await
            .texts("#sessions .status"),
        ["Waiting for Approval"]
    );
    let bob = signed_in(&app, "bob").await;
    decide(&app, &bob, id, "approve", "").await;
    assert_eq!(status(&app, id).await, "pending");
}

/// Twenty approvers in one tier that needs one approval.
async fn crowd(app: &TestApp) -> Vec<reqwest::Client> {
    let hash = crate::support::password_hash().await;
    sqlx::query(
        "WITH new AS (
             INSERT INTO users (id, username, display_name, password_hash)
             SELECT gen_random_uuid(), 'approver' || n, 'Approver ' || n, $1 FROM generate_series(1, 20) n
             RETURNING id)
         INSERT INTO group_members (group_id, user_id) SELECT (SELECT id FROM groups WHERE name = 'Approvers'), id FROM new",
    )
    .bind(hash)
    .execute(&app.db)
    .await
    .unwrap();
    let mut clients = Vec::new();
    for n in 1..=20 {
        let c = new_client();
        app.login_with(&c, &format!("approver{n}"), PASSWORD).await;
        clients.push(c);
    }
    clients
}

#[tokio::test]
async fn twenty_approvers_deciding_at_once_give_one_outcome() {
    let app = demo_app().await;
    let id = standard_request(&app).await;
    let clients = crowd(&app).await;
    let mut tokens = Vec::new();
    for c in &clients {
        tokens.push(app.csrf_with(c).await);
    }
    let mut tasks = Vec::new();
    for (n, (c, token)) in clients.into_iter().zip(tokens).enumerate() {
        let url = app.url("/approvals/decide");
        let decision = if n % 2 == 0 { "approve" } else { "deny" };
        let body = format!("csrf_token={token}&id={id}&decision={decision}&comment=no+reason");
        tasks.push(tokio::spawn(async move {
            c.post(url)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body)
                .send()
                .await
                .unwrap()
                .status()
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), StatusCode::SEE_OTHER);
    }
    let final_status = status(&app, id).await;
    assert!(
        final_status == "available" || final_status == "approval_denied",
        "{final_status}"
    );
    let (decisions, moves): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM approval_decisions),
                (SELECT count(*) FROM session_events WHERE kind IN ('approved', 'denied'))",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(
        (decisions, moves),
        (1, 1),
        "one decision counted, one transition"
    );
}

#[tokio::test]
async fn two_workers_never_make_the_same_transition_twice() {
    let app = demo_app().await;
    let alice = signed_in(&app, "alice").await;
    let date = (time::OffsetDateTime::now_utc() + time::Duration::days(1))
        .date()
        .to_string();
    for (i, resource) in ["Grafana", "Jenkins", "Router admin", "Firewall console"]
        .iter()
        .enumerate()
    {
        let time = format!("{:02}:00", 10 + i);
        request(
            &app,
            &alice,
            &Request {
                activity: "Web console access",
                policy: None,
                resources: &[resource],
                notes: "",
                ticket: "",
                at: Some((&date, &time)),
            },
        )
        .await;
    }
    sqlx::query("UPDATE activity_sessions SET requested_start = now() - interval '1 minute', ends_at = now() + interval '1 hour'")
        .execute(&app.db)
        .await
        .unwrap();
    let (a, b) = tokio::join!(
        portcullis::worker::tick(&app.db, &app.secrets),
        portcullis::worker::tick(&app.db, &app.secrets)
    );
    a.unwrap();
    b.unwrap();
    let counts: Vec<(String, i64)> = sqlx::query_as(
        "SELECT kind::text, count(*) FROM session_events GROUP BY kind ORDER BY kind::text",
    )
    .fetch_all(&app.db)
    .await
    .unwrap();
    assert_eq!(
        counts,
        [
            ("provisioned".to_owned(), 4),
            ("requested".to_owned(), 4),
            ("started".to_owned(), 4)
        ]
    );
}

#[tokio::test]
async fn the_clock_expires_undecided_requests_and_ends_windows_wiping_passwords() {
    let app = demo_app().await;
    let waiting = standard_request(&app).await;
    let alice = signed_in(&app, "alice").await;
    request(
        &app,
        &alice,
        &Request {
            activity: "Linux break-glass",
            policy: None,
            resources: &["lnx-web-07"],
            notes: "x",
            ticket: "",
            at: None,
        },
    )
    .await;
    let usable: Uuid =
        sqlx::query_scalar("SELECT id FROM activity_sessions ORDER BY id DESC LIMIT 1")
            .fetch_one(&app.db)
            .await
            .unwrap();
    let bob = signed_in(&app, "bob").await;
    decide(&app, &bob, usable, "approve", "").await;
    let sealed: Option<Vec<u8>> =
        sqlx::query_scalar("SELECT password_ciphertext FROM activity_sessions WHERE id = $1")
            .bind(usable)
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert!(sealed.is_some());

    sqlx::query("UPDATE requests SET decision_deadline = now() - interval '1 second' WHERE id = (SELECT request_id FROM activity_sessions WHERE id = $1)")
        .bind(waiting)
        .execute(&app.db)
        .await
        .unwrap();
    sqlx::query("UPDATE activity_sessions SET requested_start = now() - interval '2 hours', ends_at = now() - interval '1 second' WHERE id = $1").bind(usable).execute(&app.db).await.unwrap();
    portcullis::worker::tick(&app.db, &app.secrets)
        .await
        .unwrap();
    assert_eq!(status(&app, waiting).await, "expired");
    assert_eq!(status(&app, usable).await, "completed");
    let sealed: Option<Vec<u8>> =
        sqlx::query_scalar("SELECT password_ciphertext FROM activity_sessions WHERE id = $1")
            .bind(usable)
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert!(
        sealed.is_none(),
        "the password is wiped when the session ends"
    );
    let ended: Vec<String> = sqlx::query_scalar(
        "SELECT comment FROM session_events WHERE kind IN ('expired', 'window_ended') ORDER BY id",
    )
    .fetch_all(&app.db)
    .await
    .unwrap();
    assert_eq!(
        ended,
        ["The session window ended.", "No decision came in time."]
    );
}

#[tokio::test]
async fn the_window_starts_when_access_becomes_usable() {
    let app = demo_app().await;
    let id = standard_request(&app).await;
    // The approver took an hour: the request's window would have been half over.
    sqlx::query("UPDATE activity_sessions SET requested_start = now() - interval '1 hour', ends_at = now() + interval '1 hour' WHERE id = $1")
        .bind(id)
        .execute(&app.db)
        .await
        .unwrap();
    let bob = signed_in(&app, "bob").await;
    decide(&app, &bob, id, "approve", "").await;
    let remaining: f64 = sqlx::query_scalar(
        "SELECT extract(epoch FROM ends_at - now())::float8 FROM activity_sessions WHERE id = $1",
    )
    .bind(id)
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert!(
        (7100.0..=7200.0).contains(&remaining),
        "Standard's 120 minutes from now, got {remaining}s"
    );
}

#[tokio::test]
async fn admins_lock_and_unlock_and_requesters_extend_within_the_limit() {
    let app = demo_app().await;
    let id = standard_request(&app).await;
    let bob = signed_in(&app, "bob").await;
    decide(&app, &bob, id, "approve", "").await;
    sqlx::query("UPDATE activity_sessions SET status = 'logged_in' WHERE id = $1")
        .bind(id)
        .execute(&app.db)
        .await
        .unwrap();

    let carol = signed_in(&app, "carol").await;
    let no_message = app
        .post_with(
            &carol,
            &format!("/admin/sessions/{id}/lock"),
            &[("message", "")],
        )
        .await;
    assert_eq!(no_message.status, StatusCode::SEE_OTHER);
    assert_eq!(status(&app, id).await, "logged_in");
    app.post_with(
        &carol,
        &format!("/admin/sessions/{id}/lock"),
        &[("message", "Incident 42: stop all changes")],
    )
    .await;
    assert_eq!(status(&app, id).await, "locked");
    let alice = signed_in(&app, "alice").await;
    let page = app.get_with(&alice, &format!("/sessions/{id}")).await;
    assert_eq!(
        page.texts(".banner"),
        ["Locked by an administrator: Incident 42: stop all changes"]
    );
    // The requester cannot lock or unlock.
    assert_eq!(
        app.post_with(&alice, &format!("/admin/sessions/{id}/unlock"), &[])
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    app.post_with(&carol, &format!("/admin/sessions/{id}/unlock"), &[])
        .await;
    assert_eq!(status(&app, id).await, "logged_in", "back where it was");

    // Standard allows two extensions of 30 minutes.
    let before: time::OffsetDateTime =
        sqlx::query_scalar("SELECT ends_at FROM activity_sessions WHERE id = $1")
            .bind(id)
            .fetch_one(&app.db)
            .await
            .unwrap();
    for _ in 0..2 {
        app.post_with(&alice, &format!("/sessions/{id}/extend"), &[])
            .await;
    }
    let third = app
        .post_with(&alice, &format!("/sessions/{id}/extend"), &[])
        .await;
    assert_eq!(third.status, StatusCode::SEE_OTHER);
    let flashes = app
        .get_with(&alice, &format!("/sessions/{id}"))
        .await
        .texts(".flash");
    assert_eq!(
        flashes.last().unwrap(),
        "This session has already been extended the most times its profile allows (2)."
    );
    let after: time::OffsetDateTime =
        sqlx::query_scalar("SELECT ends_at FROM activity_sessions WHERE id = $1")
            .bind(id)
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(after - before, time::Duration::minutes(60));
    // Administrators may always extend.
    app.post_with(&carol, &format!("/sessions/{id}/extend"), &[])
        .await;
    let admin: time::OffsetDateTime =
        sqlx::query_scalar("SELECT ends_at FROM activity_sessions WHERE id = $1")
            .bind(id)
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(admin - after, time::Duration::minutes(30));
}

#[tokio::test]
async fn self_service_sessions_cannot_be_extended_by_the_requester() {
    let app = spawn_demo_app().await;
    sqlx::query(
        "UPDATE connection_profiles SET extension_allowed = false WHERE name = 'Self-service'",
    )
    .execute(&app.db)
    .await
    .unwrap();
    let erin = signed_in(&app, "erin").await;
    request(
        &app,
        &erin,
        &Request {
            activity: "Web console access",
            policy: None,
            resources: &["Grafana"],
            notes: "",
            ticket: "",
            at: None,
        },
    )
    .await;
    let id: Uuid = sqlx::query_scalar("SELECT id FROM activity_sessions")
        .fetch_one(&app.db)
        .await
        .unwrap();
    let page = app.get_with(&erin, &format!("/sessions/{id}")).await;
    assert!(!page.body.contains("/extend"), "no Extend button");
    app.post_with(&erin, &format!("/sessions/{id}/extend"), &[])
        .await;
    let flashes = app
        .get_with(&erin, &format!("/sessions/{id}"))
        .await
        .texts(".flash");
    assert_eq!(
        flashes,
        ["The connection profile does not allow extending this session."]
    );
    let _ = Role::User;
}
