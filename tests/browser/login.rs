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
