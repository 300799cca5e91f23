//! The Activity Request wizard: every page, its validation and guards, and Finish.

use portcullis::domain::role::Role;
use reqwest::StatusCode;
use scraper::Selector;

use crate::support::{Page, TestApp, spawn_app, spawn_demo_app};

const DEMO: &str = "portcullis-demo";

/// The radio value of the activity (through the policy, when given) on Request Type.
pub async fn activity_value(
    app: &TestApp,
    client: &reqwest::Client,
    activity: &str,
    policy: Option<&str>,
) -> String {
    let page = app.get_with(client, "/wizard/request-type").await;
    let html = page.html();
    let items = Selector::parse("ul.choices li").unwrap();
    let radio = Selector::parse("input[name=activity]").unwrap();
    for li in html.select(&items) {
        let text: String = li.text().collect();
        let strong: String = li
            .select(&Selector::parse("strong").unwrap())
            .flat_map(|s| s.text())
            .collect();
        if strong == activity && policy.is_none_or(|p| text.contains(&format!("Policy: {p}"))) {
            return li
                .select(&radio)
                .next()
                .unwrap()
                .value()
                .attr("value")
                .unwrap()
                .to_owned();
        }
    }
    panic!("activity {activity} not offered:\n{}", page.body);
}

/// The resource ids offered on Resource Selection for a search.
pub async fn resource_ids(app: &TestApp, client: &reqwest::Client, names: &[&str]) -> Vec<String> {
    let mut ids = Vec::new();
    for name in names {
        let page = app
            .get_with(client, &format!("/wizard/resources?q={name}"))
            .await;
        let html = page.html();
        let rows = Selector::parse("#resources tbody tr").unwrap();
        let id = html
            .select(&rows)
            .find(|tr| {
                tr.select(&Selector::parse("label").unwrap())
                    .any(|l| l.text().collect::<String>() == *name)
            })
            .and_then(|tr| {
                tr.select(&Selector::parse("input[name=pick]").unwrap())
                    .next()
            })
            .and_then(|i| i.value().attr("value").map(str::to_owned))
            .unwrap_or_else(|| panic!("resource {name} not offered:\n{}", page.body));
        ids.push(id);
    }
    ids
}

/// What to request.
pub struct Request<'a> {
    pub activity: &'a str,
    pub policy: Option<&'a str>,
    pub resources: &'a [&'a str],
    pub notes: &'a str,
    pub ticket: &'a str,
    /// None: Now; Some((date, time)) in the user's zone.
    pub at: Option<(&'a str, &'a str)>,
}

/// Walks the whole wizard and returns the Finish response.
pub async fn request(app: &TestApp, client: &reqwest::Client, r: &Request<'_>) -> Page {
    let value = activity_value(app, client, r.activity, r.policy).await;
    let page = app
        .post_with(
            client,
            "/wizard/request-type",
            &[("activity", &value), ("go", "next")],
        )
        .await;
    assert_eq!(page.location(), "/wizard/resources", "{}", page.body);
    let ids = resource_ids(app, client, r.resources).await;
    let mut form: Vec<(&str, &str)> = vec![("go", "next")];
    for id in &ids {
        form.push(("shown", id));
        form.push(("pick", id));
    }
    let page = app.post_with(client, "/wizard/resources", &form).await;
    assert_eq!(page.location(), "/wizard/notes", "{}", page.body);
    let page = app
        .post_with(
            client,
            "/wizard/notes",
            &[("notes", r.notes), ("ticket", r.ticket), ("go", "next")],
        )
        .await;
    assert_eq!(page.location(), "/wizard/scheduling", "{}", page.body);
    let page = match r.at {
        None => {
            app.post_with(
                client,
                "/wizard/scheduling",
                &[("when", "now"), ("go", "next")],
            )
            .await
        }
        Some((d, t)) => {
            app.post_with(
                client,
                "/wizard/scheduling",
                &[("when", "later"), ("date", d), ("time", t), ("go", "next")],
            )
            .await
        }
    };
    assert_eq!(page.location(), "/wizard/review", "{}", page.body);
    let review = app.get_with(client, "/wizard/review").await;
    let draft = draft_id(&review);
    app.post_with(
        client,
        "/wizard/finish",
        &[("draft_id", &draft), ("go", "finish")],
    )
    .await
}

pub fn draft_id(review: &Page) -> String {
    review
        .html()
        .select(&Selector::parse("input[name=draft_id]").unwrap())
        .next()
        .and_then(|e| e.value().attr("value").map(str::to_owned))
        .expect("the Review page carries the draft id")
}

async fn demo_app() -> TestApp {
    spawn_demo_app().await
}

async fn login_demo(app: &TestApp, user: &str) {
    let page = app.login_with(&app.client, user, DEMO).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn a_standard_request_on_two_resources_waits_for_approval() {
    let app = demo_app().await;
    login_demo(&app, "alice").await;
    let finish = request(
        &app,
        &app.client,
        &Request {
            activity: "Linux administration",
            policy: Some("Linux operations"),
            resources: &["lnx-web-01", "lnx-web-02"],
            notes: "Patch the kernel",
            ticket: "",
            at: None,
        },
    )
    .await;
    assert_eq!(finish.status, StatusCode::SEE_OTHER);
    assert_eq!(finish.location(), "/dashboard");
    let dashboard = app.get("/dashboard").await;
    assert_eq!(
        dashboard.texts(".flash"),
        ["Created 2 activity sessions: Waiting for Approval."]
    );
    assert_eq!(
        dashboard.texts("#sessions tbody .status"),
        ["Waiting for Approval", "Waiting for Approval"]
    );
    let mut resources = dashboard.texts("#sessions tbody td:nth-child(4)");
    resources.sort();
    assert_eq!(resources, ["lnx-web-01", "lnx-web-02"]);
    // The draft is gone: Create Session starts again at Request Type.
    assert_eq!(app.get("/wizard").await.location(), "/wizard/request-type");
    let (requests, events): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM requests), (SELECT count(*) FROM session_events WHERE kind = 'requested')",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!((requests, events), (1, 2));
}

#[tokio::test]
async fn a_self_service_request_now_is_available_at_once_with_a_login_account() {
    let app = demo_app().await;
    login_demo(&app, "erin").await;
    let finish = request(
        &app,
        &app.client,
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
    assert_eq!(finish.location(), "/dashboard");
    let dashboard = app.get("/dashboard").await;
    assert_eq!(
        dashboard.texts(".flash"),
        ["Created 1 activity session: Available."]
    );
    assert_eq!(dashboard.texts("#sessions tbody .status"), ["Available"]);
    assert_eq!(
        dashboard.texts("#sessions tbody td:nth-child(5)"),
        ["erin"],
        "own account: the requester's name"
    );
    assert_eq!(
        dashboard
            .html()
            .select(&Selector::parse("#sessions a.connect").unwrap())
            .count(),
        1
    );
    let events: Vec<String> =
        sqlx::query_scalar("SELECT kind::text FROM session_events ORDER BY id")
            .fetch_all(&app.db)
            .await
            .unwrap();
    assert_eq!(events, ["requested", "provisioned"]);
}

#[tokio::test]
async fn ephemeral_accounts_get_a_generated_password_sealed_at_rest() {
    let app = demo_app().await;
    login_demo(&app, "alice").await;
    request(
        &app,
        &app.client,
        &Request {
            activity: "Linux break-glass",
            policy: None,
            resources: &["lnx-web-03"],
            notes: "Outage",
            ticket: "",
            at: None,
        },
    )
    .await;
    // Standard needs approval: approve it in the database the way the approvals page will.
    let id: uuid::Uuid = sqlx::query_scalar("SELECT id FROM activity_sessions")
        .fetch_one(&app.db)
        .await
        .unwrap();
    sqlx::query(
        "UPDATE activity_sessions SET status = 'provisioning', current_tier = NULL WHERE id = $1",
    )
    .bind(id)
    .execute(&app.db)
    .await
    .unwrap();
    portcullis::worker::tick(&app.db, &app.secrets)
        .await
        .unwrap();
    let (status, account, sealed): (String, String, Vec<u8>) = sqlx::query_as(
        "SELECT status::text, login_account, password_ciphertext FROM activity_sessions WHERE id = $1",
    )
    .bind(id)
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(status, "available");
    assert!(account.starts_with("pc-alice-"), "{account}");
    let password = app.secrets.open(id, &sealed).unwrap();
    assert_eq!(password.chars().count(), 24);
    assert!(
        !sealed.windows(8).any(|w| w == &password.as_bytes()[..8]),
        "not stored in clear"
    );
}

#[tokio::test]
async fn a_future_self_service_request_is_pending_and_starts_on_time() {
    let app = demo_app().await;
    login_demo(&app, "alice").await;
    // alice is in Europe/Berlin.
    let tomorrow = (time::OffsetDateTime::now_utc() + time::Duration::days(1)).date();
    let date = format!("{tomorrow}");
    let finish = request(
        &app,
        &app.client,
        &Request {
            activity: "Web console access",
            policy: None,
            resources: &["Jenkins"],
            notes: "",
            ticket: "",
            at: Some((&date, "09:30")),
        },
    )
    .await;
    assert_eq!(finish.location(), "/dashboard/scheduled");
    let scheduled = app.get("/dashboard/scheduled").await;
    assert_eq!(scheduled.texts("#sessions tbody .status"), ["Pending"]);
    assert_eq!(
        scheduled.texts("#sessions tbody td:nth-child(7)"),
        [format!("{date} 09:30")]
    );
    assert_eq!(
        app.get("/dashboard").await.texts("#sessions tbody .status"),
        Vec::<String>::new()
    );

    // The clock reaches the start.
    sqlx::query("UPDATE activity_sessions SET requested_start = now() - interval '1 second', ends_at = now() + interval '1 hour'")
        .execute(&app.db)
        .await
        .unwrap();
    portcullis::worker::tick(&app.db, &app.secrets)
        .await
        .unwrap();
    assert_eq!(
        app.get("/dashboard").await.texts("#sessions tbody .status"),
        ["Available"]
    );
    let kinds: Vec<String> =
        sqlx::query_scalar("SELECT kind::text FROM session_events ORDER BY id")
            .fetch_all(&app.db)
            .await
            .unwrap();
    assert_eq!(kinds, ["requested", "started", "provisioned"]);
}

#[tokio::test]
async fn later_pages_lead_back_to_the_first_unfinished_one() {
    let app = demo_app().await;
    login_demo(&app, "alice").await;
    for path in [
        "/wizard/resources",
        "/wizard/notes",
        "/wizard/scheduling",
        "/wizard/review",
    ] {
        assert_eq!(
            app.get(path).await.location(),
            "/wizard/request-type",
            "{path}"
        );
    }
    let value = activity_value(&app, &app.client, "Domain administration", None).await;
    app.post(
        "/wizard/request-type",
        &[("activity", &value), ("go", "next")],
    )
    .await;
    assert_eq!(
        app.get("/wizard/review").await.location(),
        "/wizard/resources"
    );
}

#[tokio::test]
async fn request_type_requires_a_choice_and_refuses_an_activity_not_granted() {
    let app = demo_app().await;
    login_demo(&app, "bob").await; // bob is granted nothing
    let page = app.get("/wizard/request-type").await;
    assert!(
        page.body
            .contains("No access policy grants you an activity yet.")
    );
    let none = app.post("/wizard/request-type", &[("go", "next")]).await;
    assert_eq!(none.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(none.texts(".field-error"), ["Select an activity."]);

    // alice's activity and policy, posted by hand by bob.
    let (activity, policy): (uuid::Uuid, uuid::Uuid) = sqlx::query_as(
        "SELECT pa.activity_id, pa.policy_id FROM policy_activities pa JOIN access_policies p ON p.id = pa.policy_id WHERE p.name = 'Web consoles'",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    let forged = app
        .post(
            "/wizard/request-type",
            &[
                ("activity", &format!("{activity}:{policy}")),
                ("go", "next"),
            ],
        )
        .await;
    assert_eq!(forged.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        forged.texts(".field-error"),
        ["That activity is not available to you. Select one from the list."]
    );
}

#[tokio::test]
async fn an_activity_granted_by_two_policies_asks_for_the_policy() {
    let app = demo_app().await;
    login_demo(&app, "alice").await;
    let page = app.get("/wizard/request-type").await;
    let linux: Vec<String> = page
        .texts("ul.choices li")
        .into_iter()
        .filter(|t| t.starts_with("Linux administration"))
        .collect();
    assert_eq!(linux.len(), 2, "{linux:?}");
    assert!(
        linux[0].contains("Policy: Linux operations (Standard)"),
        "{}",
        linux[0]
    );
    assert!(
        linux[1].contains("Policy: Linux self-service (Self-service)"),
        "{}",
        linux[1]
    );
    let search = app.get("/wizard/request-type?q=console").await;
    assert_eq!(search.texts("ul.choices li strong"), ["Web console access"]);
}

#[tokio::test]
async fn ticks_survive_search_and_paging_and_view_selections_can_remove_them() {
    let app = demo_app().await;
    login_demo(&app, "alice").await;
    let value = activity_value(
        &app,
        &app.client,
        "Linux administration",
        Some("Linux operations"),
    )
    .await;
    app.post(
        "/wizard/request-type",
        &[("activity", &value), ("go", "next")],
    )
    .await;

    let web = resource_ids(&app, &app.client, &["lnx-web-01"]).await;
    let page = app
        .post(
            "/wizard/resources",
            &[
                ("shown", &web[0]),
                ("pick", &web[0]),
                ("q", "app-02"),
                ("go", "search"),
            ],
        )
        .await;
    assert_eq!(page.location(), "/wizard/resources?q=app-02");
    let app2 = resource_ids(&app, &app.client, &["lnx-app-02"]).await;
    app.post(
        "/wizard/resources",
        &[
            ("shown", &app2[0]),
            ("pick", &app2[0]),
            ("q", "app-02"),
            ("go", "selections"),
        ],
    )
    .await;
    let selections = app.get("/wizard/resources?view=selections").await;
    assert_eq!(
        selections.texts("#selections tbody td:first-child"),
        ["lnx-web-01", "lnx-app-02"]
    );

    // Unticking on a later page keeps the other tick.
    let page = app.get("/wizard/resources?q=lnx-web-01").await;
    assert_eq!(
        page.html()
            .select(&Selector::parse("input[name=pick][checked]").unwrap())
            .count(),
        1
    );
    let removed = app
        .post(
            "/wizard/resources",
            &[
                ("view", "selections"),
                ("go", &format!("remove:{}", web[0])),
            ],
        )
        .await;
    assert_eq!(removed.location(), "/wizard/resources?view=selections");
    let selections = app.get("/wizard/resources?view=selections").await;
    assert_eq!(
        selections.texts("#selections tbody td:first-child"),
        ["lnx-app-02"]
    );
    assert!(selections.body.contains("1 selected."));
}

/// Adds `n` servers named bulk-NN to the Linux operations policy, signs alice in and takes
/// her wizard to Resource Selection under it.
pub async fn bulk_linux_resources_for_alice(app: &TestApp, n: i32) {
    sqlx::query(
        "WITH new AS (
             INSERT INTO resources (id, name, kind, platform, address)
             SELECT gen_random_uuid(), 'bulk-' || lpad(n::text, 2, '0'), 'server', 'Linux', 'bulk' || n || '.example'
             FROM generate_series(1, $1) n RETURNING id)
         INSERT INTO policy_resources (policy_id, resource_id)
         SELECT (SELECT id FROM access_policies WHERE name = 'Linux operations'), id FROM new",
    )
    .bind(n)
    .execute(&app.db)
    .await
    .unwrap();
    login_demo(app, "alice").await;
    let value = activity_value(
        app,
        &app.client,
        "Linux administration",
        Some("Linux operations"),
    )
    .await;
    app.post(
        "/wizard/request-type",
        &[("activity", &value), ("go", "next")],
    )
    .await;
}

#[tokio::test]
async fn ticks_survive_paging_through_more_than_a_page_of_resources() {
    let app = demo_app().await;
    bulk_linux_resources_for_alice(&app, 30).await;

    let first = app.get("/wizard/resources").await;
    assert_eq!(first.texts("#resources tbody tr").len(), 25);
    assert_eq!(first.texts(".pager button"), ["Next page"]);
    // Where you are, as plain text: not the current-page style of a filled button.
    assert_eq!(first.texts("#page-of"), ["Page 1 of 2"]);
    assert!(first.texts(".pager [aria-current]").is_empty());
    let shown: Vec<String> = first
        .html()
        .select(&Selector::parse("input[name=shown]").unwrap())
        .map(|e| e.value().attr("value").unwrap().to_owned())
        .collect();
    let mut form: Vec<(&str, &str)> = shown.iter().map(|id| ("shown", id.as_str())).collect();
    form.push(("pick", &shown[0]));
    form.push(("go", "page:2"));
    assert_eq!(
        app.post("/wizard/resources", &form).await.location(),
        "/wizard/resources?page=2"
    );

    let second = app.get("/wizard/resources?page=2").await;
    assert_eq!(
        second.texts("#resources tbody tr").len(),
        44 - 25,
        "14 demo Linux servers and 30 more"
    );
    assert_eq!(second.texts("#page-of"), ["Page 2 of 2"]);
    assert_eq!(second.texts(".pager button"), ["Previous"]);
    let last = second
        .html()
        .select(&Selector::parse("input[name=pick]").unwrap())
        .map(|e| e.value().attr("value").unwrap().to_owned())
        .collect::<Vec<_>>()
        .pop()
        .unwrap();
    let page = app
        .post(
            "/wizard/resources",
            &[
                ("shown", &last),
                ("pick", &last),
                ("page", "2"),
                ("go", "page:1"),
            ],
        )
        .await;
    assert_eq!(page.location(), "/wizard/resources");
    let back = app.get("/wizard/resources").await;
    assert_eq!(
        back.html()
            .select(&Selector::parse("input[name=pick][checked]").unwrap())
            .count(),
        1,
        "page 1 tick kept"
    );
    assert!(back.body.contains("2 selected."));
}

#[tokio::test]
async fn at_most_fifty_resources_can_be_selected() {
    let app = demo_app().await;
    bulk_linux_resources_for_alice(&app, 60).await;
    let ids: Vec<String> =
        sqlx::query_scalar("SELECT id::text FROM resources WHERE name LIKE 'bulk-%' ORDER BY name")
            .fetch_all(&app.db)
            .await
            .unwrap();
    let mut form: Vec<(&str, &str)> = Vec::new();
    for id in &ids[..51] {
        form.push(("shown", id));
        form.push(("pick", id));
    }
    form.push(("go", "next"));
    let page = app.post("/wizard/resources", &form).await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        page.texts(".form-error"),
        ["You can select at most 50 resources; 51 are ticked."]
    );
    form.retain(|(_, v)| *v != ids[50]);
    assert_eq!(
        app.post("/wizard/resources", &form).await.location(),
        "/wizard/notes"
    );
}

#[tokio::test]
async fn resource_selection_needs_one_and_refuses_resources_not_granted() {
    let app = demo_app().await;
    login_demo(&app, "alice").await;
    let value = activity_value(
        &app,
        &app.client,
        "Linux administration",
        Some("Linux operations"),
    )
    .await;
    app.post(
        "/wizard/request-type",
        &[("activity", &value), ("go", "next")],
    )
    .await;
    let none = app.post("/wizard/resources", &[("go", "next")]).await;
    assert_eq!(none.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(none.texts(".form-error"), ["Select at least one resource."]);

    let windows: String =
        sqlx::query_scalar("SELECT id::text FROM resources WHERE name = 'win-srv-01'")
            .fetch_one(&app.db)
            .await
            .unwrap();
    let forged = app
        .post(
            "/wizard/resources",
            &[("shown", &windows), ("pick", &windows), ("go", "next")],
        )
        .await;
    assert_eq!(forged.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        forged.texts(".form-error"),
        ["A selected resource is not available to you under this policy."]
    );
}

#[tokio::test]
async fn changing_the_activity_drops_ticks_that_no_longer_apply() {
    let app = demo_app().await;
    login_demo(&app, "alice").await;
    let linux = activity_value(
        &app,
        &app.client,
        "Linux administration",
        Some("Linux operations"),
    )
    .await;
    app.post(
        "/wizard/request-type",
        &[("activity", &linux), ("go", "next")],
    )
    .await;
    let ids = resource_ids(&app, &app.client, &["lnx-web-01", "lnx-app-01"]).await;
    app.post(
        "/wizard/resources",
        &[
            ("shown", &ids[0]),
            ("pick", &ids[0]),
            ("shown", &ids[1]),
            ("pick", &ids[1]),
            ("go", "back"),
        ],
    )
    .await;

    // Linux self-service grants only the lnx-app servers.
    let other = activity_value(
        &app,
        &app.client,
        "Linux administration",
        Some("Linux self-service"),
    )
    .await;
    app.post(
        "/wizard/request-type",
        &[("activity", &other), ("go", "next")],
    )
    .await;
    let page = app.get("/wizard/resources?view=selections").await;
    assert_eq!(
        page.texts(".flash"),
        ["1 selected resource was removed: not available for the new choice."]
    );
    assert_eq!(
        page.texts("#selections tbody td:first-child"),
        ["lnx-app-01"]
    );
}

#[tokio::test]
async fn notes_and_ticket_follow_the_profile_and_keep_what_was_typed() {
    let app = demo_app().await;
    login_demo(&app, "alice").await;
    let value = activity_value(&app, &app.client, "Domain administration", None).await;
    app.post(
        "/wizard/request-type",
        &[("activity", &value), ("go", "next")],
    )
    .await;
    let ids = resource_ids(&app, &app.client, &["win-dc-01"]).await;
    app.post(
        "/wizard/resources",
        &[("shown", &ids[0]), ("pick", &ids[0]), ("go", "next")],
    )
    .await;

    let page = app.get("/wizard/notes").await;
    assert_eq!(page.texts("label[for=notes]"), ["Notes (required)"]);
    assert_eq!(
        page.texts("label[for=ticket]"),
        ["Ticket Number (required)"]
    );
    // An example, never the regex.
    assert_eq!(page.texts("#ticket-example"), ["CHG123456"]);
    assert!(
        !page.body.contains("[0-9]"),
        "no regex shown to the requester"
    );

    let bad = app
        .post(
            "/wizard/notes",
            &[
                ("notes", "Reset trust"),
                ("ticket", "INC42"),
                ("go", "next"),
            ],
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        bad.texts("#ticket-error"),
        ["Ticket Number must look like CHG123456."]
    );
    assert_eq!(bad.texts("#notes"), ["Reset trust"], "input kept");
    let empty = app
        .post(
            "/wizard/notes",
            &[("notes", " "), ("ticket", ""), ("go", "next")],
        )
        .await;
    assert_eq!(
        empty.texts("#notes-error"),
        ["Notes are required for this activity."]
    );
    let long = "x".repeat(2001);
    let too_long = app
        .post(
            "/wizard/notes",
            &[("notes", &long), ("ticket", "CHG123456"), ("go", "next")],
        )
        .await;
    assert_eq!(
        too_long.texts("#notes-error"),
        ["Notes can be at most 2000 characters."]
    );

    // Back keeps what was typed, even when invalid.
    app.post(
        "/wizard/notes",
        &[
            ("notes", "half written"),
            ("ticket", "CHG1"),
            ("go", "back"),
        ],
    )
    .await;
    let again = app.get("/wizard/notes").await;
    assert_eq!(again.texts("#notes"), ["half written"]);
    let ok = app
        .post(
            "/wizard/notes",
            &[
                ("notes", "Reset trust"),
                ("ticket", "CHG123456"),
                ("go", "next"),
            ],
        )
        .await;
    assert_eq!(ok.location(), "/wizard/scheduling");
}

async fn to_scheduling(app: &TestApp) {
    let value = activity_value(app, &app.client, "Web console access", None).await;
    app.post(
        "/wizard/request-type",
        &[("activity", &value), ("go", "next")],
    )
    .await;
    let ids = resource_ids(app, &app.client, &["Grafana"]).await;
    app.post(
        "/wizard/resources",
        &[("shown", &ids[0]), ("pick", &ids[0]), ("go", "next")],
    )
    .await;
    app.post(
        "/wizard/notes",
        &[("notes", ""), ("ticket", ""), ("go", "next")],
    )
    .await;
}

#[tokio::test]
async fn scheduling_refuses_the_past_the_far_future_and_skipped_times() {
    let app = demo_app().await;
    login_demo(&app, "alice").await; // Europe/Berlin, Self-service horizon 7 days
    to_scheduling(&app).await;
    let page = app.get("/wizard/scheduling").await;
    assert!(
        page.texts("#window")[0].starts_with("Window: "),
        "the window is shown"
    );
    assert_eq!(page.texts("label[for=time]"), ["Time (Europe/Berlin)"]);

    let past = app
        .post(
            "/wizard/scheduling",
            &[
                ("when", "later"),
                ("date", "2020-01-01"),
                ("time", "10:00"),
                ("go", "next"),
            ],
        )
        .await;
    assert_eq!(past.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        past.texts("#when-error"),
        ["The start is in the past. Choose Now or a later time."]
    );
    assert_eq!(
        past.html()
            .select(&Selector::parse("#date[value='2020-01-01']").unwrap())
            .count(),
        1,
        "input kept"
    );

    let far = (time::OffsetDateTime::now_utc() + time::Duration::days(9)).date();
    let far = app
        .post(
            "/wizard/scheduling",
            &[
                ("when", "later"),
                ("date", &far.to_string()),
                ("time", "10:00"),
                ("go", "next"),
            ],
        )
        .await;
    assert!(
        far.texts("#when-error")[0].starts_with("The start can be at most 7 days ahead"),
        "{:?}",
        far.texts("#when-error")
    );

    let garbage = app
        .post(
            "/wizard/scheduling",
            &[
                ("when", "later"),
                ("date", "tomorrow"),
                ("time", "10:00"),
                ("go", "next"),
            ],
        )
        .await;
    assert_eq!(garbage.texts("#date-error"), ["Choose a date."]);

    let now = app
        .post("/wizard/scheduling", &[("when", "now"), ("go", "next")])
        .await;
    assert_eq!(now.location(), "/wizard/review");
}

#[tokio::test]
async fn review_shows_every_choice_and_who_approves() {
    let app = demo_app().await;
    login_demo(&app, "alice").await;
    let value = activity_value(&app, &app.client, "Domain administration", None).await;
    app.post(
        "/wizard/request-type",
        &[("activity", &value), ("go", "next")],
    )
    .await;
    let ids = resource_ids(&app, &app.client, &["win-dc-02"]).await;
    app.post(
        "/wizard/resources",
        &[("shown", &ids[0]), ("pick", &ids[0]), ("go", "next")],
    )
    .await;
    app.post(
        "/wizard/notes",
        &[
            ("notes", "Rotate keys"),
            ("ticket", "CHG000042"),
            ("go", "next"),
        ],
    )
    .await;
    app.post("/wizard/scheduling", &[("when", "now"), ("go", "next")])
        .await;
    let review = app.get("/wizard/review").await;
    let text = review.texts("#review")[0].clone();
    for expected in [
        "Domain administration",
        "Production changes (Change window)",
        "win-dc-02",
        "Rotate keys",
        "CHG000042",
        "Tier 1: 1 of group Approvers.",
        "Tier 2: 1 of Carol Chen.",
    ] {
        assert!(text.contains(expected), "{expected} missing from: {text}");
    }
    let links: Vec<String> = review
        .html()
        .select(&Selector::parse("#review a").unwrap())
        .filter_map(|a| a.value().attr("href").map(str::to_owned))
        .collect();
    assert_eq!(
        links,
        [
            "/wizard/request-type",
            "/wizard/resources",
            "/wizard/notes",
            "/wizard/notes",
            "/wizard/scheduling"
        ]
    );
}

#[tokio::test]
async fn cancel_discards_the_draft() {
    let app = demo_app().await;
    login_demo(&app, "alice").await;
    to_scheduling(&app).await;
    let cancel = app.post("/wizard/scheduling", &[("go", "cancel")]).await;
    assert_eq!(cancel.location(), "/dashboard");
    assert_eq!(
        app.get("/dashboard").await.texts(".flash"),
        ["Activity Request canceled. Nothing was created."]
    );
    assert_eq!(
        app.get("/wizard/notes").await.location(),
        "/wizard/request-type"
    );
}

#[tokio::test]
async fn ten_simultaneous_finishes_of_one_draft_create_one_request() {
    let app = demo_app().await;
    login_demo(&app, "alice").await;
    to_scheduling(&app).await;
    app.post("/wizard/scheduling", &[("when", "now"), ("go", "next")])
        .await;
    let review = app.get("/wizard/review").await;
    let draft = draft_id(&review);
    let token = review.csrf();
    let mut handles = Vec::new();
    for _ in 0..10 {
        let client = app.client.clone();
        let url = app.url("/wizard/finish");
        let body = format!("csrf_token={token}&draft_id={draft}&go=finish");
        handles.push(tokio::spawn(async move {
            client
                .post(url)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body)
                .send()
                .await
                .unwrap()
                .status()
        }));
    }
    for h in handles {
        assert_eq!(h.await.unwrap(), StatusCode::SEE_OTHER);
    }
    let (requests, sessions): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM requests), (SELECT count(*) FROM activity_sessions)",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!((requests, sessions), (1, 1));
    let id: uuid::Uuid = sqlx::query_scalar("SELECT id FROM requests")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(id.to_string(), draft, "the draft id is the request id");

    // A replay later lands on the same result.
    let replay = app
        .post("/wizard/finish", &[("draft_id", &draft), ("go", "finish")])
        .await;
    assert_eq!(replay.location(), "/dashboard");
    assert_eq!(
        app.get("/dashboard").await.texts(".flash"),
        ["Created 1 activity session: Available."]
    );
}

#[tokio::test]
async fn a_policy_changed_mid_wizard_creates_nothing_and_says_so() {
    let app = demo_app().await;
    login_demo(&app, "alice").await;
    to_scheduling(&app).await;
    app.post("/wizard/scheduling", &[("when", "now"), ("go", "next")])
        .await;
    let draft = draft_id(&app.get("/wizard/review").await);
    sqlx::query("DELETE FROM policy_resources WHERE resource_id = (SELECT id FROM resources WHERE name = 'Grafana')")
        .execute(&app.db)
        .await
        .unwrap();
    let finish = app
        .post("/wizard/finish", &[("draft_id", &draft), ("go", "finish")])
        .await;
    assert_eq!(finish.status, StatusCode::CONFLICT);
    assert_eq!(
        finish.texts(".form-error"),
        [
            "1 of the selected resources are no longer available to you under Web consoles. Nothing was created; review Resource Selection."
        ]
    );
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM requests")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(n, 0);

    sqlx::query("UPDATE access_policies SET enabled = false WHERE name = 'Web consoles'")
        .execute(&app.db)
        .await
        .unwrap();
    let finish = app
        .post("/wizard/finish", &[("draft_id", &draft), ("go", "finish")])
        .await;
    assert_eq!(finish.location(), "/wizard/request-type");
}

#[tokio::test]
async fn the_wizard_is_for_signed_in_users_only() {
    let app = spawn_app().await;
    app.create_user("alice", Role::User).await;
    let page = app.get("/wizard/notes").await;
    assert_eq!(page.location(), "/login?next=%2Fwizard%2Fnotes");
}

#[tokio::test]
async fn a_provisioning_error_fails_the_session_with_the_reason_in_its_log() {
    let app = demo_app().await;
    // A template that renders a name longer than any system accepts.
    sqlx::query("UPDATE activities SET login_template = 'pc-{resource}-{resource}-{resource}-{resource}-{resource}-{resource}' WHERE name = 'Linux break-glass'")
        .execute(&app.db)
        .await
        .unwrap();
    login_demo(&app, "alice").await;
    request(
        &app,
        &app.client,
        &Request {
            activity: "Linux break-glass",
            policy: None,
            resources: &["lnx-web-04"],
            notes: "x",
            ticket: "",
            at: None,
        },
    )
    .await;
    sqlx::query("UPDATE activity_sessions SET status = 'provisioning', current_tier = NULL")
        .execute(&app.db)
        .await
        .unwrap();
    portcullis::worker::tick(&app.db, &app.secrets)
        .await
        .unwrap();
    let (status, comment): (String, String) = sqlx::query_as(
        "SELECT s.status::text, e.comment FROM activity_sessions s
         JOIN session_events e ON e.session_id = s.id AND e.kind = 'provisioning_failed'",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(status, "failed");
    assert!(
        comment.starts_with("Provisioning failed: the login account name \"pc-lnx-web-04-"),
        "{comment}"
    );
    assert_eq!(
        app.get("/dashboard/historical")
            .await
            .texts("#sessions tbody .status"),
        ["Failed"]
    );
}
