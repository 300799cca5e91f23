//! The Dashboard: tabs, search, End Session, Historical filters and CSV, session details.

use reqwest::StatusCode;
use scraper::Selector;
use uuid::Uuid;

use crate::support::{TestApp, new_client, spawn_demo_app};
use crate::wizard::{Request, request};

const DEMO: &str = "portcullis-demo";

async fn demo_app() -> TestApp {
    spawn_demo_app().await
}

/// Inserts a session (with its request) for `username` directly, for fixtures the wizard
/// cannot make quickly (old history, many rows).
pub async fn insert_session(
    app: &TestApp,
    username: &str,
    resource: &str,
    status: &str,
    start: &str,
    notes: &str,
    ticket: &str,
) -> Uuid {
    let request = Uuid::now_v7();
    let session = Uuid::now_v7();
    sqlx::query(
        "WITH u AS (SELECT id FROM users WHERE username = $3)
         INSERT INTO requests (id, requester_id, policy_name, profile_name, activity_name, protocol,
             login_mode, notes, ticket_number, start_now, requested_start, duration_minutes, tier_count, created_at)
         SELECT $1, u.id, 'Fixture', 'Fixture', 'Linux administration', 'ssh', 'own', $5, $6, false,
                $4::timestamptz, 60, 0, $4::timestamptz FROM u",
    )
    .bind(request)
    .bind(session)
    .bind(username)
    .bind(start)
    .bind(notes)
    .bind(ticket)
    .execute(&app.db)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO activity_sessions (id, request_id, requester_id, resource_name, resource_address,
             activity_name, status, requested_start, ends_at, created_at, login_account, current_tier, locked_from,
             notes, ticket_number)
         SELECT $1, r.id, r.requester_id, $3, $3 || '.example', 'Linux administration', $4::session_status,
                r.requested_start, r.requested_start + interval '1 hour', r.created_at, $5,
                CASE WHEN $4 = 'waiting_for_approval' THEN 1 END,
                CASE WHEN $4 = 'locked' THEN 'available'::session_status END,
                r.notes, r.ticket_number
         FROM requests r WHERE r.id = $2",
    )
    .bind(session)
    .bind(request)
    .bind(resource)
    .bind(status)
    .bind(username)
    .execute(&app.db)
    .await
    .unwrap();
    session
}

#[tokio::test]
async fn an_empty_active_tab_says_what_to_do_next() {
    let app = demo_app().await;
    app.login_with(&app.client, "alice", DEMO).await;
    let page = app.get("/dashboard").await;
    assert_eq!(
        page.texts("#sessions td.empty"),
        ["No active sessions. Create Session to request access."]
    );
    assert_eq!(page.texts(".toolbar a.button.primary"), ["Create Session"]);
    let headers = page.texts("#sessions thead th");
    assert_eq!(
        headers,
        [
            "Select",
            "Status",
            "Requested",
            "Resource",
            "Login Account",
            "Activity",
            "Start",
            "End",
            "Notes",
            "Ticket Number",
            "Connect"
        ]
    );
    assert_eq!(
        page.texts("nav.tabs a"),
        ["Active", "Scheduled", "Historical"]
    );
}

#[tokio::test]
async fn tabs_hold_the_statuses_the_design_assigns_them() {
    let app = demo_app().await;
    let future = "2999-01-01T10:00:00Z";
    let past = "2020-01-01T10:00:00Z";
    for (status, start) in [
        ("waiting_for_approval", past),
        ("waiting_for_approval", future),
        ("pending", future),
        ("provisioning", past),
        ("available", past),
        ("logged_in", past),
        ("locked", past),
        ("completed", past),
        ("canceled", past),
        ("approval_denied", past),
        ("expired", past),
        ("failed", past),
    ] {
        insert_session(
            &app,
            "alice",
            &format!("{status}-{}", &start[..4]),
            status,
            start,
            "",
            "",
        )
        .await;
    }
    app.login_with(&app.client, "alice", DEMO).await;
    let mut active = app.get("/dashboard").await.texts("#sessions tbody .status");
    active.sort();
    assert_eq!(
        active,
        [
            "Available",
            "Locked",
            "Logged In",
            "Provisioning",
            "Waiting for Approval"
        ]
    );
    let mut scheduled = app
        .get("/dashboard/scheduled")
        .await
        .texts("#sessions tbody .status");
    scheduled.sort();
    assert_eq!(scheduled, ["Pending", "Waiting for Approval"]);
    let mut historical = app
        .get("/dashboard/historical")
        .await
        .texts("#sessions tbody .status");
    historical.sort();
    assert_eq!(
        historical,
        [
            "Approval Denied",
            "Canceled",
            "Completed",
            "Expired",
            "Failed"
        ]
    );
}

#[tokio::test]
async fn search_covers_resource_activity_account_notes_and_ticket() {
    let app = demo_app().await;
    let past = "2020-01-01T10:00:00Z";
    insert_session(
        &app,
        "alice",
        "db-east",
        "available",
        past,
        "rotate certificates",
        "CHG000111",
    )
    .await;
    insert_session(
        &app,
        "alice",
        "web-west",
        "available",
        past,
        "deploy",
        "INC000222",
    )
    .await;
    app.login_with(&app.client, "alice", DEMO).await;
    for (q, expected) in [
        ("east", vec!["db-east"]),
        ("CERTIF", vec!["db-east"]),
        ("inc000222", vec!["web-west"]),
        ("linux admin", vec!["db-east", "web-west"]),
        ("nothing", vec![]),
    ] {
        let mut found = app
            .get(&format!("/dashboard?q={}", q.replace(' ', "+")))
            .await
            .texts("#sessions tbody td:nth-child(4)");
        found.sort();
        assert_eq!(found, expected, "q={q}");
    }
}

#[tokio::test]
async fn a_requester_sees_only_their_own_sessions_and_admins_can_see_all() {
    let app = demo_app().await;
    let past = "2020-01-01T10:00:00Z";
    let alices = insert_session(&app, "alice", "alice-box", "available", past, "", "").await;
    insert_session(&app, "erin", "erin-box", "available", past, "", "").await;
    app.login_with(&app.client, "erin", DEMO).await;
    assert_eq!(
        app.get("/dashboard")
            .await
            .texts("#sessions tbody td:nth-child(4)"),
        ["erin-box"]
    );
    assert_eq!(
        app.get("/dashboard?scope=all")
            .await
            .texts("#sessions tbody td:nth-child(4)"),
        ["erin-box"],
        "All is for admins"
    );
    assert_eq!(
        app.get(&format!("/sessions/{alices}")).await.status,
        StatusCode::NOT_FOUND
    );

    let carol = new_client();
    app.login_with(&carol, "carol", DEMO).await;
    assert_eq!(
        app.get_with(&carol, "/dashboard")
            .await
            .texts("#sessions td.empty")
            .len(),
        1,
        "Mine: carol has none"
    );
    let all = app.get_with(&carol, "/dashboard?scope=all").await;
    let mut by = all.texts("#sessions tbody td:nth-child(4)");
    by.sort();
    assert_eq!(by, ["Alice Archer", "Erin Estrada"], "Requested By column");
    // Other people's sessions are listed for the administrator, without a Connection icon:
    // only their requesters may connect. Erin's own list offers hers.
    assert!(
        !all.body.contains("class=\"connect\""),
        "no Connection icon in All"
    );
    let erins = app.get("/dashboard").await;
    assert_eq!(
        erins.body.matches("class=\"connect\"").count(),
        1,
        "erin's own icon"
    );
    assert_eq!(
        app.get_with(&carol, &format!("/sessions/{alices}"))
            .await
            .status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn end_session_withdraws_what_has_not_begun_and_ends_what_has() {
    let app = demo_app().await;
    let past = "2020-01-01T10:00:00Z";
    let waiting = insert_session(&app, "alice", "w", "waiting_for_approval", past, "", "").await;
    let available = insert_session(&app, "alice", "a", "available", past, "", "").await;
    let erins = insert_session(&app, "erin", "e", "available", past, "", "").await;
    app.login_with(&app.client, "alice", DEMO).await;
    let page = app
        .post(
            "/dashboard/end",
            &[
                ("id", &waiting.to_string()),
                ("id", &available.to_string()),
                ("id", &erins.to_string()),
                ("confirm", "yes"),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(
        app.get("/dashboard").await.texts(".flash"),
        ["Withdrew 1 request. Ended 1 session."],
        "a request that has not begun is withdrawn, not ended"
    );
    let statuses: Vec<(Uuid, String)> =
        sqlx::query_as("SELECT id, status::text FROM activity_sessions ORDER BY id")
            .fetch_all(&app.db)
            .await
            .unwrap();
    assert_eq!(
        statuses,
        [
            (waiting, "canceled".into()),
            (available, "completed".into()),
            (erins, "available".into())
        ],
        "erin's session is not alice's to end"
    );
    let comments: Vec<String> =
        sqlx::query_scalar("SELECT comment FROM session_events ORDER BY id")
            .fetch_all(&app.db)
            .await
            .unwrap();
    assert_eq!(
        comments,
        ["Withdrawn by the requester.", "Ended by the requester."]
    );
    let kinds: Vec<String> =
        sqlx::query_scalar("SELECT kind::text FROM session_events ORDER BY id")
            .fetch_all(&app.db)
            .await
            .unwrap();
    assert_eq!(kinds, ["withdrawn", "ended"]);

    // Ending it again is refused with a reason, and changes nothing.
    app.post(
        "/dashboard/end",
        &[("id", &available.to_string()), ("confirm", "yes")],
    )
    .await;
    assert_eq!(
        app.get("/dashboard").await.texts(".flash"),
        ["A session that is Completed cannot be ended."]
    );
    let nothing = app.post("/dashboard/end", &[]).await;
    assert_eq!(nothing.status, StatusCode::SEE_OTHER);
    assert_eq!(
        app.get("/dashboard").await.texts(".flash"),
        ["Tick the sessions to end first."]
    );
}

#[tokio::test]
async fn an_admin_ending_someone_elses_session_cancels_it() {
    let app = demo_app().await;
    let erins = insert_session(
        &app,
        "erin",
        "e",
        "logged_in",
        "2020-01-01T10:00:00Z",
        "",
        "",
    )
    .await;
    app.login_with(&app.client, "carol", DEMO).await;
    app.post(
        "/dashboard/end",
        &[("id", &erins.to_string()), ("confirm", "yes")],
    )
    .await;
    let status: String = sqlx::query_scalar("SELECT status::text FROM activity_sessions")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(status, "canceled");
}

#[tokio::test]
async fn historical_filters_pages_newest_first_and_exports_csv() {
    let app = demo_app().await;
    for day in 1..=60 {
        let start = format!("2026-01-{:02}T09:00:00Z", (day - 1) % 28 + 1);
        let start = if day > 28 {
            start.replace("2026-01", "2026-02")
        } else {
            start
        };
        insert_session(
            &app,
            "alice",
            &format!("host-{day:02}"),
            "completed",
            &start,
            "",
            "",
        )
        .await;
    }
    insert_session(
        &app,
        "alice",
        "=cmd|' /C calc'!A0",
        "completed",
        "2026-03-01T09:00:00Z",
        "said \"hi\", left;=1+1",
        "+SUM(1)",
    )
    .await;
    app.login_with(&app.client, "alice", DEMO).await;

    let first = app.get("/dashboard/historical").await;
    assert_eq!(first.texts("#sessions tbody tr").len(), 50);
    assert_eq!(first.texts(".pager a"), ["Next"]);
    let second = app.get("/dashboard/historical?page=2").await;
    assert_eq!(second.texts("#sessions tbody tr").len(), 11);
    assert_eq!(second.texts(".pager a"), ["Previous"]);

    // Newest first; alice sees Europe/Berlin times.
    let filtered = app
        .get("/dashboard/historical?resource=host-0&from=2026-01-05&to=2026-01-07")
        .await;
    assert_eq!(
        filtered.texts("#sessions tbody td:nth-child(4)"),
        ["host-07", "host-06", "host-05"]
    );
    assert_eq!(
        filtered.texts("#sessions tbody td:nth-child(7)")[0],
        "2026-01-07 10:00"
    );

    let bad = app.get("/dashboard/historical?from=yesterday").await;
    assert_eq!(
        bad.texts("#filter-error"),
        ["From must be a date as YYYY-MM-DD."]
    );

    let csv = app.get("/dashboard/historical.csv?q=said").await;
    assert_eq!(csv.status, StatusCode::OK);
    assert_eq!(csv.headers["content-type"], "text/csv; charset=utf-8");
    assert!(
        csv.headers["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment;")
    );
    let mut reader = csv::Reader::from_reader(csv.body.as_bytes());
    let header: Vec<String> = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_owned)
        .collect();
    assert_eq!(
        header,
        [
            "Status",
            "Requested",
            "Requested By",
            "Resource",
            "Login Account",
            "Activity",
            "Start",
            "Planned End",
            "Ended",
            "How It Ended",
            "Notes",
            "Ticket Number"
        ]
    );
    let rows: Vec<Vec<String>> = reader
        .records()
        .map(|r| r.unwrap().iter().map(str::to_owned).collect())
        .collect();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0][3], "'=cmd|' /C calc'!A0", "formula defused");
    // A formula after a `;` runs where `;` separates cells: defused too.
    assert_eq!(
        rows[0][10], "'said \"hi\", left;=1+1",
        "quotes and commas survive"
    );
    // Every cell is quoted, so no separator inside one splits it.
    assert!(
        csv.body
            .lines()
            .all(|line| line.starts_with('"') && line.ends_with('"')),
        "{}",
        csv.body
    );
    assert_eq!(rows[0][11], "'+SUM(1)");
}

#[tokio::test]
async fn session_details_show_the_fields_and_every_event_in_order() {
    let app = demo_app().await;
    app.login_with(&app.client, "erin", DEMO).await;
    request(
        &app,
        &app.client,
        &Request {
            activity: "Web console access",
            policy: None,
            resources: &["Grafana"],
            notes: "Check alerts",
            ticket: "",
            at: None,
        },
    )
    .await;
    let id: Uuid = sqlx::query_scalar("SELECT id FROM activity_sessions")
        .fetch_one(&app.db)
        .await
        .unwrap();
    // View Logs on the ticked row.
    let logs = app.get(&format!("/dashboard/logs?id={id}")).await;
    assert_eq!(logs.location(), format!("/sessions/{id}"));
    let page = app.get(&format!("/sessions/{id}")).await;
    assert_eq!(page.texts("h1"), ["Web console access on Grafana"]);
    let rows: Vec<Vec<String>> = page
        .html()
        .select(&Selector::parse("#events tbody tr").unwrap())
        .map(|tr| {
            tr.select(&Selector::parse("td").unwrap())
                .skip(1)
                .map(|td| td.text().collect::<String>())
                .collect()
        })
        .collect();
    let expected: Vec<Vec<String>> = [
        [
            "Erin Estrada",
            "",
            "Provisioning",
            "Requested; starting now.",
        ],
        [
            "Portcullis",
            "Provisioning",
            "Available",
            "Login account erin is ready.",
        ],
    ]
    .iter()
    .map(|r| r.iter().map(|c| (*c).to_owned()).collect())
    .collect();
    assert_eq!(rows, expected);
    assert!(
        page.texts(".details dd")
            .iter()
            .any(|d| d == "Check alerts")
    );
    assert_eq!(
        app.get(&format!("/sessions/{}", Uuid::new_v4()))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
}
