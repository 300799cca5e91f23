//! The request page in a real browser: an approver opens a two-resource request from the
//! Approvals tab, approves one resource, then the rest.

use std::time::Duration;

use crate::harness::Browser;
use crate::support::spawn_demo_app;
use crate::wizard::request_two_servers;

const DEMO_PASSWORD: &str = "portcullis-demo";
const WAIT: Duration = Duration::from_secs(5);

#[tokio::test(flavor = "multi_thread")]
async fn bob_approves_a_two_resource_request_from_its_page() {
    let app = spawn_demo_app().await;
    let alice = Browser::new().await;
    alice.login(&app, "alice", DEMO_PASSWORD).await;
    request_two_servers(&alice).await;
    alice.close().await;

    let bob = Browser::new().await;
    bob.login(&app, "bob", DEMO_PASSWORD).await;
    assert_eq!(
        bob.text("#waiting-approvals").await,
        "1 request waits for your approval."
    );
    bob.goto(&app, "/approvals").await;
    assert_eq!(
        bob.texts("#approvals tbody td:nth-child(5)").await,
        ["2 resources"]
    );
    bob.submit("#approvals tbody a").await;
    assert!(bob.path().await.starts_with("/requests/"));
    assert_eq!(bob.text("h1").await, "Linux break-glass for Alice Archer");

    // Untick lnx-web-02: approve lnx-web-01 alone.
    bob.click("#resources tbody tr:nth-child(2) input[name=id]")
        .await;
    bob.fill("#comment", "One at a time").await;
    bob.submit("button[value=approve]").await;
    bob.wait_for_text(".flash", "Approved 1 request.", WAIT)
        .await;
    assert_eq!(
        bob.texts("#resources tbody .status").await,
        ["Available", "Waiting for Approval"]
    );
    assert_eq!(
        bob.texts("#decisions tbody td:nth-child(2)").await,
        ["Bob Brennan"]
    );

    // Deny without a comment: refused, the tick kept.
    bob.submit("button[value=deny]").await;
    bob.wait_for_text(
        "#decide-error",
        "A comment is required to deny: say why.",
        WAIT,
    )
    .await;
    assert_eq!(
        bob.texts("#resources input[name=id]:checked").await.len(),
        1
    );

    bob.submit("button[value=approve]").await;
    bob.wait_for_text(".flash", "Approved 1 request.", WAIT)
        .await;
    assert_eq!(
        bob.texts("#resources tbody .status").await,
        ["Available", "Available"]
    );
    assert!(
        bob.texts("button[value=approve]").await.is_empty(),
        "nothing left to decide"
    );
    bob.close().await;
}
