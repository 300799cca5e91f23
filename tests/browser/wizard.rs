//! The Activity Request wizard walked in a real browser, as the seed document describes.

use std::time::Duration;

use crate::harness::Browser;
use crate::support::spawn_demo_app;

const DEMO_PASSWORD: &str = "portcullis-demo";

/// Request Type: search for the activity and take the one result.
async fn choose_activity(browser: &Browser, search: &str) {
    assert_eq!(browser.text("h2").await, "Request Type");
    browser.fill("#q", search).await;
    browser.submit("button[value=search]").await;
    assert_eq!(
        browser.texts("input[name=activity]").await.len(),
        1,
        "one match for {search}"
    );
    browser.click("input[name=activity]").await;
    browser.submit("button.primary[value=next]").await;
}

/// alice asks for Linux break-glass on lnx-web-01 and lnx-web-02, now, in the browser.
pub async fn request_two_servers(browser: &Browser) {
    // Dashboard > Active > Create Session
    browser.submit("a.button.primary").await;
    assert_eq!(browser.text("h1").await, "Activity Request");
    choose_activity(browser, "break-glass").await;

    assert_eq!(browser.text("h2").await, "Resource Selection");
    browser.fill("#q", "lnx-web-0").await;
    browser.submit("button[value=search]").await;
    browser
        .click("#resources tbody tr:nth-child(1) input[name=pick]")
        .await;
    browser
        .click("#resources tbody tr:nth-child(2) input[name=pick]")
        .await;
    browser.submit("button[value=selections]").await;
    assert_eq!(
        browser.texts("#selections tbody td:first-child").await,
        ["lnx-web-01", "lnx-web-02"]
    );
    browser.submit("button.primary[value=next]").await;

    assert_eq!(browser.text("h2").await, "Notes");
    browser
        .fill("#notes", "Kernel patching, maintenance window")
        .await;
    browser.submit("button.primary[value=next]").await;

    assert_eq!(browser.text("h2").await, "Scheduling");
    browser.submit("button.primary[value=next]").await; // Now

    assert_eq!(browser.text("h2").await, "Review");
    let review = browser.text("#review").await;
    assert!(
        review.contains("Linux break-glass") && review.contains("lnx-web-02"),
        "{review}"
    );
    browser.submit("button[value=finish]").await;

    browser
        .wait_for_text(
            ".flash",
            "Created 2 activity sessions: Waiting for Approval.",
            Duration::from_secs(5),
        )
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn alice_requests_standard_access_to_two_servers_and_sees_them_waiting_for_approval() {
    let app = spawn_demo_app().await;
    let browser = Browser::new().await;
    browser.login(&app, "alice", DEMO_PASSWORD).await;
    request_two_servers(&browser).await;
    assert_eq!(browser.path().await, "/dashboard");
    assert_eq!(
        browser.texts("#sessions tbody .status").await,
        ["Waiting for Approval", "Waiting for Approval"]
    );
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_self_service_request_ends_available() {
    let app = spawn_demo_app().await;
    let browser = Browser::new().await;
    browser.login(&app, "erin", DEMO_PASSWORD).await;

    browser.submit("a.button.primary").await;
    choose_activity(&browser, "console").await;
    browser
        .click("#resources tbody tr:nth-child(2) input[name=pick]")
        .await; // Grafana
    browser.submit("button.primary[value=next]").await;
    browser.submit("button.primary[value=next]").await; // Notes are optional
    browser.submit("button.primary[value=next]").await; // Now
    browser.submit("button[value=finish]").await;

    browser
        .wait_for_text(
            ".flash",
            "Created 1 activity session: Available.",
            Duration::from_secs(5),
        )
        .await;
    assert_eq!(
        browser.texts("#sessions tbody .status").await,
        ["Available"]
    );
    assert_eq!(
        browser.texts("#sessions tbody td:nth-child(4)").await,
        ["Grafana"]
    );
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn alices_open_dashboard_shows_available_when_bob_approves() {
    let app = spawn_demo_app().await;
    let alice = Browser::new().await;
    alice.login(&app, "alice", DEMO_PASSWORD).await;
    alice.submit("a.button.primary").await;
    choose_activity(&alice, "break-glass").await;
    alice
        .click("#resources tbody tr:nth-child(1) input[name=pick]")
        .await;
    alice.submit("button.primary[value=next]").await;
    alice.fill("#notes", "Disk full on lnx-app-01").await;
    alice.submit("button.primary[value=next]").await;
    alice.submit("button.primary[value=next]").await;
    alice.submit("button[value=finish]").await;
    assert_eq!(
        alice.texts("#sessions tbody .status").await,
        ["Waiting for Approval"]
    );

    // bob, in a browser of his own, approves from Dashboard > Approvals.
    let bob = Browser::new().await;
    bob.login(&app, "bob", DEMO_PASSWORD).await;
    bob.goto(&app, "/approvals").await;
    assert_eq!(
        bob.texts("#approvals tbody td:nth-child(4)").await,
        ["Alice Archer"]
    );
    bob.click("#approvals tbody input[name=request]").await;
    bob.fill("#comment", "Go ahead").await;
    bob.submit("button[value=approve]").await;
    bob.wait_for_text(".flash", "Approved 1 request.", Duration::from_secs(5))
        .await;

    // alice never reloads.
    alice
        .wait_for_text(
            "#sessions tbody .status",
            "Available",
            Duration::from_secs(10),
        )
        .await;
    alice
        .wait_for_text(
            "#live-status",
            "lnx-app-01: Available",
            Duration::from_secs(5),
        )
        .await;
    alice
        .wait_for_text(
            "#sessions tbody td:nth-child(5)",
            "pc-alice-",
            Duration::from_secs(5),
        )
        .await;
    bob.close().await;
    alice.close().await;
}

/// Issue 16, section 3, with the page's script: Select Activity narrows as you type, Resource
/// Selection counts live, a click on a row toggles it, Select all on this page ticks the page,
/// and Scheduling's window line follows the date and time as they are picked.
#[tokio::test(flavor = "multi_thread")]
async fn the_wizard_filters_counts_and_shows_the_window_as_you_go() {
    let secs = Duration::from_secs;
    let app = spawn_demo_app().await;
    let alice = Browser::new().await;
    alice.login(&app, "alice", DEMO_PASSWORD).await;
    alice.goto(&app, "/wizard").await;
    let all = alice.texts("ul.choices li").await.len();
    assert!(all > 2, "{all}");
    alice.fill("#q", "console").await;
    alice
        .wait_for_text("#activity-shown", &format!("Showing 1 of {all}."), secs(5))
        .await;
    assert_eq!(alice.path().await, "/wizard/request-type", "no page load");
    // Hidden entries render no text.
    let visible: Vec<String> = alice
        .texts("ul.choices li strong")
        .await
        .into_iter()
        .filter(|t| !t.is_empty())
        .collect();
    assert_eq!(visible, ["Web console access"]);
    choose_activity(&alice, "break-glass").await;

    assert_eq!(alice.text("#ticked-count").await, "0 selected.");
    // A click on a row's Kind cell ticks the row.
    alice
        .click("#resources tbody tr:nth-child(1) td:nth-child(3)")
        .await;
    alice
        .wait_for_text("#ticked-count", "1 selected.", secs(5))
        .await;
    let ticked = alice
        .client
        .execute(
            "return document.querySelector('#resources tbody tr:nth-child(1) input[name=pick]').checked;",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(ticked, serde_json::json!(true));
    let rows = alice.texts("#resources tbody tr").await.len();
    alice.click("#select-page").await;
    alice
        .wait_for_text("#ticked-count", &format!("{rows} selected."), secs(5))
        .await;
    alice.submit("button[value=selections]").await;
    assert_eq!(alice.texts("#selections tbody tr").await.len(), rows);
    alice.submit("button.primary[value=next]").await;
    alice.fill("#notes", "Kernel patching").await;
    alice.submit("button.primary[value=next]").await;

    assert_eq!(alice.text("h2").await, "Scheduling");
    let day = (time::OffsetDateTime::now_utc() + time::Duration::days(3)).date();
    let date = format!(
        "{:04}-{:02}-{:02}",
        day.year(),
        u8::from(day.month()),
        day.day()
    );
    alice
        .client
        .execute(
            "const d = document.getElementById('date'); d.value = arguments[0];
             d.dispatchEvent(new Event('change', { bubbles: true }));
             const t = document.getElementById('time'); t.value = '10:00';
             t.dispatchEvent(new Event('change', { bubbles: true }));",
            vec![serde_json::json!(date)],
        )
        .await
        .unwrap();
    alice
        .wait_for_text("#window-text", &format!("{date} 10:00 – "), secs(5))
        .await;
    assert_eq!(alice.path().await, "/wizard/scheduling", "no page load");
    alice.close().await;
}
