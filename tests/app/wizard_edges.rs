//! The wizard's and the dashboard's rough edges (issue 16, section 3): the draft prompt, the
//! activity lines, Resource Selection's controls, Scheduling's hints and window, End Session's
//! confirmation, View Logs with several rows ticked, and empty states that say why.

use reqwest::StatusCode;
use scraper::Selector;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::dashboard::insert_session;
use crate::support::{Page, TestApp, spawn_demo_app};
use crate::wizard::{activity_value, bulk_linux_resources_for_alice};

const DEMO: &str = "portcullis-demo";

async fn signed_in(user: &str) -> TestApp {
    let app = spawn_demo_app().await;
    let page = app.login_with(&app.client, user, DEMO).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    app
}

/// The `attr` of every element matching `css`.
fn attrs(page: &Page, css: &str, attr: &str) -> Vec<String> {
    page.html()
        .select(&Selector::parse(css).unwrap())
        .filter_map(|e| e.value().attr(attr).map(str::to_owned))
        .collect()
}

/// alice's wizard at Resource Selection under Linux operations.
async fn to_resources(app: &TestApp) {
    let value = activity_value(
        app,
        &app.client,
        "Linux administration",
        Some("Linux operations"),
    )
    .await;
    let page = app
        .post(
            "/wizard/request-type",
            &[("activity", &value), ("go", "next")],
        )
        .await;
    assert_eq!(page.location(), "/wizard/resources");
}

/// alice's wizard at Scheduling (Linux operations, one resource, notes).
async fn to_scheduling(app: &TestApp) {
    to_resources(app).await;
    let page = app.get("/wizard/resources?q=lnx-web-01").await;
    let id = attrs(&page, "input[name=pick]", "value").remove(0);
    let next = app
        .post(
            "/wizard/resources",
            &[("shown", &id), ("pick", &id), ("go", "next")],
        )
        .await;
    assert_eq!(next.location(), "/wizard/notes");
    let next = app
        .post("/wizard/notes", &[("notes", "Patching"), ("go", "next")])
        .await;
    assert_eq!(next.location(), "/wizard/scheduling");
}

#[tokio::test]
async fn create_session_with_a_draft_in_progress_offers_continue_or_start_over() {
    let app = signed_in("alice").await;
    // Nothing chosen yet: straight to Request Type, which offers no Back.
    assert_eq!(app.get("/wizard").await.location(), "/wizard/request-type");
    let first = app.get("/wizard/request-type").await;
    assert!(
        first.texts("button[value=back]").is_empty(),
        "{}",
        first.body
    );
    assert_eq!(first.texts("button.primary"), ["Next"]);

    to_resources(&app).await;
    let prompt = app.get("/wizard").await;
    assert_eq!(prompt.status, StatusCode::OK, "{}", prompt.body);
    assert_eq!(
        prompt.texts("#draft-prompt h2"),
        ["You have an Activity Request in progress"]
    );
    assert!(
        prompt.texts("#draft-prompt p")[0].contains("Linux administration"),
        "{:?}",
        prompt.texts("#draft-prompt p")
    );
    assert_eq!(
        attrs(&prompt, "#draft-continue", "href"),
        ["/wizard/resources"]
    );

    // Start over clears the draft: the activity is no longer chosen.
    let over = app.post("/wizard", &[("go", "start-over")]).await;
    assert_eq!(over.location(), "/wizard/request-type");
    let fresh = app.get("/wizard/request-type").await;
    assert!(fresh.texts("input[name=activity][checked]").is_empty());
    assert_eq!(app.get("/wizard").await.location(), "/wizard/request-type");
    assert_eq!(
        app.get("/wizard/resources").await.location(),
        "/wizard/request-type"
    );
}

#[tokio::test]
async fn each_activity_is_one_line_with_platform_protocol_and_approval() {
    let app = signed_in("alice").await;
    let page = app.get("/wizard/request-type").await;
    let lines = page.texts("ul.choices li .activity-tags");
    let names = page.texts("ul.choices li strong");
    assert_eq!(lines.len(), names.len());
    let items = page.texts("ul.choices li");
    let standard = items
        .iter()
        .position(|t| t.contains("Policy: Linux operations"))
        .unwrap();
    let self_service = items
        .iter()
        .position(|t| t.contains("Policy: Linux self-service"))
        .unwrap();
    assert_eq!(lines[standard], "Linux SSH Approval needed");
    assert_eq!(lines[self_service], "Linux SSH No approval needed");

    // The server's search, for browsers without script, and what a miss says.
    let none = app.get("/wizard/request-type?q=zzz").await;
    assert!(none.texts("ul.choices li").is_empty());
    assert_eq!(
        none.texts("#activity-empty")[0],
        format!("No activities match “zzz”. Show all {}.", names.len())
    );
}

#[tokio::test]
async fn resource_selection_counts_live_selects_the_page_and_keeps_the_port() {
    let app = signed_in("alice").await;
    to_resources(&app).await;
    let page = app.get("/wizard/resources").await;
    assert_eq!(attrs(&page, "#ticked-count", "aria-live"), ["polite"]);
    assert_eq!(page.texts("#ticked-count"), ["0 selected."]);
    let shown = attrs(&page, "input[name=shown]", "value");
    assert!(shown.len() > 3);

    // Select all on this page.
    let mut form: Vec<(&str, &str)> = shown.iter().map(|id| ("shown", id.as_str())).collect();
    form.push(("go", "select-page"));
    let selected = app.post("/wizard/resources", &form).await;
    assert_eq!(selected.location(), "/wizard/resources");
    let page = app.get("/wizard/resources").await;
    assert_eq!(
        attrs(&page, "input[name=pick][checked]", "value").len(),
        shown.len()
    );
    assert_eq!(
        page.texts("#ticked-count"),
        [format!("{} selected.", shown.len())]
    );

    // View Selections keeps the port, and Enter there means Next, not a row's Remove.
    let view = app.get("/wizard/resources?view=selections").await;
    let addresses = view.texts("#selections tbody td:nth-child(4)");
    assert!(
        addresses.iter().any(|a| a.ends_with(":22")),
        "{addresses:?}"
    );
    let first_submit = view
        .html()
        .select(&Selector::parse("form[action=\"/wizard/resources\"] button[type=submit]").unwrap())
        .next()
        .map(|b| b.value().attr("value").unwrap_or_default().to_owned());
    assert_eq!(first_submit.as_deref(), Some("next"));

    // A search that matches nothing says so.
    let none = app.get("/wizard/resources?q=zzz").await;
    assert_eq!(
        none.texts("#resources td.empty"),
        ["No resources match “zzz”. Show all."]
    );
}

#[tokio::test]
async fn the_pager_is_a_secondary_control() {
    let app = spawn_demo_app().await;
    bulk_linux_resources_for_alice(&app, 30).await;
    let page = app.get("/wizard/resources").await;
    assert_eq!(page.texts("#page-of"), ["Page 1 of 2"]);
    assert_eq!(attrs(&page, ".pager button", "class"), ["link"]);
}

#[tokio::test]
async fn scheduling_hints_agree_with_the_controls_and_the_window_follows_the_time() {
    let app = signed_in("alice").await;
    to_scheduling(&app).await;
    let page = app.get("/wizard/scheduling").await;
    let hints = [page.texts("#date-hint"), page.texts("#time-hint")].concat();
    for hint in &hints {
        assert!(
            !hint.contains("YYYY") && !hint.contains("HH:MM") && !hint.contains("24-hour"),
            "{hint}"
        );
    }

    // The window of the time chosen, as the page's script asks for it.
    let day = (OffsetDateTime::now_utc() + time::Duration::days(3)).date();
    let date = format!(
        "{:04}-{:02}-{:02}",
        day.year(),
        u8::from(day.month()),
        day.day()
    );
    let window = app
        .get(&format!(
            "/wizard/scheduling/window?when=later&date={date}&time=10:00"
        ))
        .await;
    assert_eq!(window.status, StatusCode::OK);
    assert!(
        window.body.starts_with(&format!("{date} 10:00 – "))
            && window.body.ends_with("(Europe/Berlin)"),
        "{}",
        window.body
    );

    // A time in the past has no window: the line does not show Now's instead.
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
        past.texts("#window-text"),
        ["none yet: choose a valid date and time"]
    );
    // The server renders the chosen time's window without script.
    let later = app
        .post(
            "/wizard/scheduling",
            &[
                ("when", "later"),
                ("date", &date),
                ("time", "10:00"),
                ("go", "back"),
            ],
        )
        .await;
    assert_eq!(later.location(), "/wizard/notes");
    let page = app.get("/wizard/scheduling").await;
    assert!(
        page.texts("#window-text")[0].starts_with(&format!("{date} 10:00 – ")),
        "{:?}",
        page.texts("#window-text")
    );
    // An empty date asks for one, without a format lecture.
    let empty = app
        .post(
            "/wizard/scheduling",
            &[
                ("when", "later"),
                ("date", ""),
                ("time", "10:00"),
                ("go", "next"),
            ],
        )
        .await;
    assert_eq!(empty.texts("#date-error"), ["Choose a date."]);
}

async fn status(app: &TestApp, id: Uuid) -> String {
    sqlx::query_scalar("SELECT status::text FROM activity_sessions WHERE id = $1")
        .bind(id)
        .fetch_one(&app.db)
        .await
        .unwrap()
}

#[tokio::test]
async fn end_session_asks_for_confirmation_and_names_what_it_ends() {
    let app = spawn_demo_app().await;
    let past = "2020-01-01T10:00:00Z";
    let available = insert_session(&app, "alice", "lnx-db-07", "available", past, "", "").await;
    let waiting = insert_session(
        &app,
        "alice",
        "lnx-db-08",
        "waiting_for_approval",
        past,
        "",
        "",
    )
    .await;
    app.login_with(&app.client, "alice", DEMO).await;

    // Without confirmation: a page naming both, and nothing changed.
    let ask = app
        .post(
            "/dashboard/end",
            &[
                ("id", &available.to_string()),
                ("id", &waiting.to_string()),
                ("back", "/dashboard"),
            ],
        )
        .await;
    assert_eq!(ask.status, StatusCode::OK, "{}", ask.body);
    assert_eq!(ask.texts("h1"), ["End Session?"]);
    let items = ask.texts("#end-list li");
    assert_eq!(items.len(), 2, "{items:?}");
    assert!(items[0].starts_with("End lnx-db-07"), "{items:?}");
    assert!(items[1].starts_with("Withdraw lnx-db-08"), "{items:?}");
    assert_eq!(
        ask.texts("#end-confirm"),
        ["Withdraw 1 request and end 1 session"]
    );
    assert_eq!(attrs(&ask, "#end-keep", "href"), ["/dashboard"]);
    assert_eq!(status(&app, available).await, "available");
    assert_eq!(status(&app, waiting).await, "waiting_for_approval");
    let events: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM session_events WHERE kind IN ('ended', 'withdrawn')",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(events, 0);

    // The session page's End Session asks too.
    let details = app.get(&format!("/sessions/{available}")).await;
    let form_ids = attrs(
        &details,
        "form[action=\"/dashboard/end\"] input[name=id]",
        "value",
    );
    assert_eq!(form_ids, [available.to_string()]);
    let one = app
        .post("/dashboard/end", &[("id", &available.to_string())])
        .await;
    assert_eq!(one.texts("#end-confirm"), ["End the session"]);
    assert_eq!(status(&app, available).await, "available");

    // Confirmed: done.
    let done = app
        .post(
            "/dashboard/end",
            &[
                ("id", &available.to_string()),
                ("id", &waiting.to_string()),
                ("confirm", "yes"),
            ],
        )
        .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER);
    assert_eq!(status(&app, available).await, "completed");
    assert_eq!(status(&app, waiting).await, "canceled");
}

#[tokio::test]
async fn view_logs_with_several_rows_ticked_says_it_opens_one() {
    let app = spawn_demo_app().await;
    let past = "2020-01-01T10:00:00Z";
    let first = insert_session(&app, "alice", "lnx-db-07", "completed", past, "", "").await;
    let second = insert_session(&app, "alice", "lnx-db-08", "completed", past, "", "").await;
    app.login_with(&app.client, "alice", DEMO).await;
    let logs = app
        .get(&format!("/dashboard/logs?id={first}&id={second}"))
        .await;
    assert_eq!(logs.location(), format!("/sessions/{first}"));
    let page = app.get(&format!("/sessions/{first}")).await;
    assert_eq!(
        page.texts(".flash"),
        [
            "View Logs opens one session at a time: this is the first of the 2 you ticked, lnx-db-07 (Linux administration). Go back to open another."
        ]
    );
    // One ticked: no note.
    app.get(&format!("/dashboard/logs?id={second}")).await;
    assert!(
        app.get(&format!("/sessions/{second}"))
            .await
            .texts(".flash")
            .is_empty()
    );
}

#[tokio::test]
async fn empty_states_say_why() {
    let app = signed_in("alice").await;
    let none_yet = app.get("/dashboard/historical").await;
    assert_eq!(
        none_yet.texts("#sessions td.empty"),
        ["No past sessions yet. Sessions appear here once they end."]
    );
    let search = app.get("/dashboard?q=zzz").await;
    assert_eq!(
        search.texts("#sessions td.empty"),
        ["No sessions match “zzz”."]
    );
    let filtered = app
        .get("/dashboard/historical?from=2026-01-01&to=2026-01-31")
        .await;
    assert_eq!(
        filtered.texts("#sessions td.empty"),
        ["No sessions match 2026-01-01 to 2026-01-31."]
    );
    let reversed = app
        .get("/dashboard/historical?from=2026-02-01&to=2026-01-01")
        .await;
    assert_eq!(
        reversed.texts("#filter-error"),
        ["From is after To: choose a From date on or before the To date."]
    );
    let csv = app
        .get("/dashboard/historical.csv?from=2026-02-01&to=2026-01-01")
        .await;
    assert_eq!(csv.status, StatusCode::UNPROCESSABLE_ENTITY);
    // The same day for both is a one-day range, not an error.
    let same = app
        .get("/dashboard/historical?from=2026-01-01&to=2026-01-01")
        .await;
    assert!(same.texts("#filter-error").is_empty());
}

#[tokio::test]
async fn requesters_see_a_ticket_example_never_the_pattern() {
    let app = signed_in("alice").await;
    sqlx::query(
        "UPDATE connection_profiles SET ticket_pattern = '^CHG[0-9]{6}$' WHERE name = 'Standard'",
    )
    .execute(&app.db)
    .await
    .unwrap();
    to_resources(&app).await;
    let page = app.get("/wizard/resources?q=lnx-web-01").await;
    let id = attrs(&page, "input[name=pick]", "value").remove(0);
    app.post(
        "/wizard/resources",
        &[("shown", &id), ("pick", &id), ("go", "next")],
    )
    .await;
    let notes = app.get("/wizard/notes").await;
    let wrong = app
        .post(
            "/wizard/notes",
            &[("notes", "Patching"), ("ticket", "123"), ("go", "next")],
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        wrong.texts("#ticket-hint")[0],
        "Like CHG123456. Up to 64 characters."
    );
    let right = app
        .post(
            "/wizard/notes",
            &[
                ("notes", "Patching"),
                ("ticket", "CHG000001"),
                ("go", "next"),
            ],
        )
        .await;
    assert_eq!(right.location(), "/wizard/scheduling");
    app.post("/wizard/scheduling", &[("when", "now"), ("go", "next")])
        .await;
    let review = app.get("/wizard/review").await;
    for page in [&notes, &wrong, &review] {
        assert!(
            !page.body.contains("[0-9]") && !page.body.contains("^CHG"),
            "{}",
            page.body
        );
    }
}
