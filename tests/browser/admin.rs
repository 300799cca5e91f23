//! Administration in a real browser: carol builds a grant from nothing (group, resource,
//! activity, connection profile, access policy), erin requests under it, and bob can decide
//! only once carol makes him an approver. Along the way the checkbox pickers filter as one
//! types, count the ticks, and still post ticks the filter hides.

use std::time::{Duration, Instant};

use fantoccini::Locator;

use crate::harness::Browser;
use crate::support::{TestApp, spawn_demo_app};

const DEMO_PASSWORD: &str = "portcullis-demo";
const WAIT: Duration = Duration::from_secs(5);

/// The id of the row of `table` whose `column` is `value`.
async fn id_of(app: &TestApp, table: &str, column: &str, value: &str) -> String {
    let id: uuid::Uuid = sqlx::query_scalar(&format!("SELECT id FROM {table} WHERE {column} = $1"))
        .bind(value)
        .fetch_one(&app.db)
        .await
        .unwrap_or_else(|e| panic!("no {table} row with {column} = {value}: {e}"));
    id.to_string()
}

/// The entry labels of picker `name` that are displayed now (the filter hides the others).
async fn visible(browser: &Browser, name: &str) -> Vec<String> {
    let css = format!("#{name}-picker ul.choices li label > span:first-of-type");
    let mut out = Vec::new();
    for element in browser.client.find_all(Locator::Css(&css)).await.unwrap() {
        if element.is_displayed().await.unwrap() {
            out.push(element.text().await.unwrap().trim().to_owned());
        }
    }
    out
}

/// Waits until picker `name` displays exactly `expected` (the filter runs as one types).
async fn wait_visible(browser: &Browser, name: &str, expected: &[&str]) {
    let deadline = Instant::now() + WAIT;
    loop {
        let shown = visible(browser, name).await;
        if shown == expected {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "picker {name} shows {shown:?}, expected {expected:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Ticks (or unticks) the entry `id` of picker `name`.
async fn tick(browser: &Browser, name: &str, id: &str) {
    browser
        .click(&format!("#{name}-picker input[value=\"{id}\"]"))
        .await;
}

/// Submits the form's visible Save button and waits for the flash that says it worked.
async fn save(browser: &Browser, flash: &str) {
    browser.submit("button.primary").await;
    browser.wait_for_text(".flash", flash, WAIT).await;
}

async fn logout(browser: &Browser) {
    browser
        .submit(r#"form[action="/logout"] button[type="submit"]"#)
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn carol_grants_erin_a_new_activity_and_makes_bob_its_approver() {
    let app = spawn_demo_app().await;
    let dave = id_of(&app, "users", "username", "dave").await;
    let bob = id_of(&app, "users", "username", "bob").await;
    let erin = id_of(&app, "users", "username", "erin").await;
    let alice = id_of(&app, "users", "username", "alice").await;
    let carol = Browser::new().await;
    carol.login(&app, "carol", DEMO_PASSWORD).await;

    // A group with dave only, ticked through the filter.
    carol.goto(&app, "/admin/groups/new").await;
    carol.fill("#name", "Vault approvers").await;
    assert_eq!(carol.text("#members-picker-count").await, "0 selected");
    wait_visible(
        &carol,
        "members",
        &["alice", "bob", "carol", "dave", "erin"],
    )
    .await;
    carol.fill("#members_q", "dumont").await; // display names count too
    wait_visible(&carol, "members", &["dave"]).await;
    assert_eq!(carol.text("#members-picker-shown").await, "Showing 1 of 5.");
    tick(&carol, "members", &dave).await;
    carol
        .wait_for_text("#members-picker-count", "1 selected", WAIT)
        .await;
    // dave is now filtered out of view; the form still posts him.
    carol.fill("#members_q", "zzz").await;
    wait_visible(&carol, "members", &[]).await;
    assert_eq!(
        carol.text("#members-picker-shown").await,
        "Nothing in this list matches."
    );
    save(&carol, "Created Vault approvers.").await;
    let group = id_of(&app, "groups", "name", "Vault approvers").await;
    assert_eq!(carol.path().await, "/admin/groups");
    assert_eq!(
        carol
            .text(&format!(
                "#groups tr:has(a[href=\"/admin/groups/{group}\"]) td.clip"
            ))
            .await,
        "dave"
    );
    carol.goto(&app, &format!("/admin/groups/{group}")).await;
    assert_eq!(carol.text("#members-picker-count").await, "1 selected");
    assert_eq!(
        carol
            .texts("#members-picker li:has(input:checked) label > span:first-of-type")
            .await,
        ["dave"]
    );

    carol.goto(&app, "/admin/resources/new").await;
    carol.fill("#name", "vault-01").await;
    carol.fill("#platform", "Linux").await;
    carol.fill("#address", "vault-01.corp.example").await;
    carol.fill("#port", "22").await;
    save(&carol, "Created vault-01.").await;

    carol.goto(&app, "/admin/activities/new").await;
    carol.fill("#name", "Vault unseal").await;
    carol
        .fill("#description", "Unseal the vault after a restart")
        .await;
    carol.fill("#platform", "Linux").await;
    carol
        .client
        .find(Locator::Css("#protocol"))
        .await
        .unwrap()
        .select_by_label("SSH")
        .await
        .unwrap();
    save(&carol, "Created Vault unseal.").await;

    // One tier: one approval from the group.
    carol.goto(&app, "/admin/profiles/new").await;
    carol.fill("#name", "Vault approval").await;
    carol.fill("#tier1_groups_q", "vault").await;
    wait_visible(&carol, "tier1_groups", &["Vault approvers"]).await;
    tick(&carol, "tier1_groups", &group).await;
    save(&carol, "Created Vault approval.").await;

    // The policy: erin, the activity, the resource, under that profile.
    carol.goto(&app, "/admin/policies/new").await;
    carol.fill("#name", "Vault access").await;
    carol
        .client
        .find(Locator::Css("#profile"))
        .await
        .unwrap()
        .select_by_label("Vault approval")
        .await
        .unwrap();
    carol.fill("#users_q", "alice").await;
    wait_visible(&carol, "users", &["alice"]).await;
    tick(&carol, "users", &alice).await;
    carol.fill("#users_q", "erin").await;
    wait_visible(&carol, "users", &["erin"]).await;
    // Enter in a picker's search field filters; it does not submit the half-filled form.
    carol
        .client
        .find(Locator::Css("#users_q"))
        .await
        .unwrap()
        .send_keys("\u{E007}")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(carol.path().await, "/admin/policies/new");
    assert!(carol.texts(".form-error, .flash").await.is_empty());
    wait_visible(&carol, "users", &["erin"]).await;
    tick(&carol, "users", &erin).await;
    carol
        .wait_for_text("#users-picker-count", "2 selected", WAIT)
        .await;
    // Clear selection unticks both, even alice whom the filter hides.
    carol.click("#users-picker button[type=button]").await;
    carol
        .wait_for_text("#users-picker-count", "0 selected", WAIT)
        .await;
    tick(&carol, "users", &erin).await;
    carol
        .wait_for_text("#users-picker-count", "1 selected", WAIT)
        .await;
    carol.fill("#activities_q", "unseal").await;
    wait_visible(&carol, "activities", &["Vault unseal"]).await;
    tick(
        &carol,
        "activities",
        &id_of(&app, "activities", "name", "Vault unseal").await,
    )
    .await;
    carol.fill("#resources_q", "vault").await;
    wait_visible(&carol, "resources", &["vault-01"]).await;
    tick(
        &carol,
        "resources",
        &id_of(&app, "resources", "name", "vault-01").await,
    )
    .await;
    // Show selected only: the filter emptied, just the ticked resource remains in view.
    carol.fill("#resources_q", "").await;
    carol.click("#resources-picker-only").await;
    wait_visible(&carol, "resources", &["vault-01"]).await;
    save(&carol, "Created Vault access.").await;
    let members: Vec<String> = sqlx::query_scalar(
        "SELECT u.username FROM policy_users pu JOIN users u ON u.id = pu.user_id
         JOIN access_policies p ON p.id = pu.policy_id WHERE p.name = 'Vault access'",
    )
    .fetch_all(&app.db)
    .await
    .unwrap();
    assert_eq!(members, ["erin"]);

    // erin requests it through the whole wizard.
    let other = Browser::new().await;
    other.login(&app, "erin", DEMO_PASSWORD).await;
    other.submit("a.button.primary").await;
    assert_eq!(other.text("h2").await, "Request Type");
    other.fill("#q", "vault").await;
    other.submit("button[value=search]").await;
    assert_eq!(other.texts("input[name=activity]").await.len(), 1);
    other.click("input[name=activity]").await;
    other.submit("button.primary[value=next]").await;
    assert_eq!(other.text("h2").await, "Resource Selection");
    assert_eq!(other.texts("#resources tbody tr").await.len(), 1);
    other.click("#resources tbody input[name=pick]").await;
    other.submit("button.primary[value=next]").await;
    assert_eq!(other.text("h2").await, "Notes");
    other.fill("#notes", "Unseal after the restart").await;
    other.submit("button.primary[value=next]").await;
    assert_eq!(other.text("h2").await, "Scheduling");
    other.submit("button.primary[value=next]").await; // Now
    assert_eq!(other.text("h2").await, "Review");
    let review = other.text("#review").await;
    for expected in [
        "Vault unseal",
        "vault-01",
        "Tier 1: 1 of group Vault approvers.",
    ] {
        assert!(review.contains(expected), "{expected:?} in {review}");
    }
    other.submit("button[value=finish]").await;
    other
        .wait_for_text(
            ".flash",
            "Created 1 activity session: Waiting for Approval.",
            WAIT,
        )
        .await;
    assert_eq!(
        other.texts("#sessions tbody .status").await,
        ["Waiting for Approval"]
    );
    assert_eq!(
        other.texts("#sessions tbody td:nth-child(4)").await,
        ["vault-01"]
    );
    logout(&other).await;

    // bob approves Standard requests, but not this one: the tier names a group he is not in.
    other.login(&app, "bob", DEMO_PASSWORD).await;
    other.goto(&app, "/approvals").await;
    assert_eq!(
        other.texts("#approvals tbody td").await,
        ["Nothing is waiting for your approval."]
    );

    // carol adds bob to the group; approvers follow the profile as it is now.
    carol.goto(&app, &format!("/admin/groups/{group}")).await;
    carol.fill("#members_q", "bob").await;
    wait_visible(&carol, "members", &["bob"]).await;
    tick(&carol, "members", &bob).await;
    carol
        .wait_for_text("#members-picker-count", "2 selected", WAIT)
        .await;
    save(&carol, "Saved Vault approvers.").await;

    other.goto(&app, "/approvals").await;
    assert_eq!(
        other.texts("#approvals tbody td:nth-child(4)").await,
        ["Erin Estrada"]
    );
    assert_eq!(
        other.texts("#approvals tbody td:nth-child(5)").await,
        ["1 resource"]
    );
    other.click("#approvals tbody input[name=request]").await;
    other.fill("#comment", "Unseal it").await;
    other.submit("button[value=approve]").await;
    other
        .wait_for_text(".flash", "Approved 1 request.", WAIT)
        .await;
    assert_eq!(
        other.texts("#approvals tbody td").await,
        ["Nothing is waiting for your approval."]
    );
    let status: String = sqlx::query_scalar(
        "SELECT s.status::text FROM activity_sessions s JOIN requests r ON r.id = s.request_id
         WHERE r.policy_name = 'Vault access'",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_ne!(status, "waiting_for_approval");
    other.close().await;
    carol.close().await;
}
