//! Signing in through the real form.

use std::time::Duration;

use crate::harness::Browser;
use crate::support::spawn_demo_app;

const DEMO_PASSWORD: &str = "portcullis-demo";

#[tokio::test(flavor = "multi_thread")]
async fn signing_in_lands_on_the_dashboard() {
    let app = spawn_demo_app().await;
    let browser = Browser::new().await;

    browser.login(&app, "alice", DEMO_PASSWORD).await;

    assert_eq!(browser.text("h1").await, "Dashboard");
    assert_eq!(browser.text(".account-name").await, "Alice Archer");
    assert_eq!(browser.path().await, "/dashboard");
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_password_stays_on_the_sign_in_page() {
    let app = spawn_demo_app().await;
    let browser = Browser::new().await;

    browser.login(&app, "alice", "not-the-password").await;

    browser
        .wait_for_text(
            ".form-error",
            "Invalid username or password.",
            Duration::from_secs(5),
        )
        .await;
    assert_eq!(
        browser.text(".form-error").await,
        "Invalid username or password."
    );
    assert_eq!(browser.text("h1").await, "Sign in");
    assert_eq!(browser.path().await, "/login");
    assert!(
        browser.texts(".account-name").await.is_empty(),
        "nobody is signed in"
    );
    browser.close().await;
}

/// The recovery codes page's "Copy codes" puts every code on the clipboard, one a line, and
/// says so in the live region.
#[tokio::test(flavor = "multi_thread")]
async fn copy_codes_puts_every_recovery_code_on_the_clipboard() {
    let app = spawn_demo_app().await;
    let erin = Browser::new().await;
    erin.login(&app, "erin", DEMO_PASSWORD).await;
    erin.goto(&app, "/account/second-factor").await;
    let code = erin.totp_code().await;
    erin.fill("#code", &code).await;
    erin.submit("main form.stacked button.primary").await;
    let codes = erin.texts("#recovery-codes li").await;
    assert_eq!(codes.len(), 10, "the factor is on, with its recovery codes");

    // Reading the clipboard back needs the permission a person would grant.
    erin.cdp(
        "Browser.grantPermissions",
        serde_json::json!({
            "origin": app.url(""),
            "permissions": ["clipboardReadWrite", "clipboardSanitizedWrite"],
        }),
    )
    .await;
    erin.click("#copy-recovery-codes").await;
    erin.wait_for_text(
        "#live-status",
        "The recovery codes are copied to the clipboard.",
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(erin.text("#copy-recovery-codes").await, "Copied");
    let clipboard = erin
        .client
        .execute_async(
            "navigator.clipboard.readText().then(arguments[0], (e) => arguments[0]('error: ' + e));",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(
        clipboard.as_str().unwrap(),
        format!("{}\n", codes.join("\n")),
        "every code, one a line"
    );
    erin.close().await;
}
