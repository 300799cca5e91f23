//! Single sign-on in Chromium: the button, the provider's page and the way back, through the
//! real redirects and cookies of a browser.

use serde_json::json;

use crate::harness::Browser;
use crate::oidc_provider::{Options, account, spawn};

#[tokio::test]
async fn a_person_signs_in_with_the_provider_and_lands_where_they_were_going() {
    let accounts = json!({ "mia": account("mia", &["idp-ops"], &["pwd"]) });
    let (app, _provider) = spawn(&accounts, Options::default()).await;
    let browser = Browser::new().await;

    browser.goto(&app, "/login?next=/account").await;
    browser.submit("#sso-sign-in").await;
    browser.fill("#login", "mia").await;
    browser.submit("#provider-submit").await;

    assert_eq!(browser.path().await, "/account");
    assert_eq!(
        browser.text(".account-name").await,
        "mia from the directory"
    );

    // Logout signs out of the provider too: our page hands the browser on to it (a redirect
    // answering the form would be stopped by form-action 'self'), it asks, and sends the
    // browser back to our sign-in page; the next "Sign in with" asks who you are.
    browser.submit(r#"form[action="/logout"] button"#).await;
    browser
        .wait_for_text(
            "h1",
            "Sign out of the test provider?",
            std::time::Duration::from_secs(10),
        )
        .await;
    browser.submit("#provider-logout-yes").await;
    assert_eq!(browser.path().await, "/login");
    browser.submit("#sso-sign-in").await;
    assert!(browser.path().await.starts_with("/interaction/"));
    assert_eq!(browser.text("h1").await, "Test provider");
    browser.close().await;
}
