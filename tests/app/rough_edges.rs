//! The rough edges a new user hits (issue 16, sections 3 and 5): the sign-in limit, the
//! wizard's and dashboard's wording, the demo data.

use portcullis::Settings;
use portcullis::domain::role::Role;
use reqwest::StatusCode;

use crate::support::{PASSWORD, fresh_database, new_client, settings, spawn_app_on};

#[tokio::test]
async fn the_sign_in_limit_counts_failed_attempts_only() {
    let s = Settings {
        sign_in_limit: 3,
        ..settings()
    };
    let app = spawn_app_on(fresh_database().await, s).await;
    let names = ["alice", "bob", "carol", "dave", "erin"];
    for name in names {
        app.create_user(name, Role::User).await;
    }
    // Someone switching between the five demo users, twice over, from one address.
    for round in 0..2 {
        for name in names {
            let login = app.login_with(&new_client(), name, PASSWORD).await;
            assert_eq!(login.status, StatusCode::SEE_OTHER, "{name}, round {round}");
            assert_eq!(login.location(), "/");
        }
    }
    // Failures still count: the fourth attempt after three wrong ones is refused.
    for _ in 0..3 {
        let page = app.login_with(&new_client(), "alice", "wrong").await;
        assert_eq!(page.status, StatusCode::UNAUTHORIZED);
    }
    let limited = app.login_with(&new_client(), "alice", PASSWORD).await;
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
    // The page leads back to the sign-in form.
    let html = limited.html();
    let link = scraper::Selector::parse("a#back-to-sign-in").unwrap();
    let back = html.select(&link).next().expect("a link back to sign-in");
    assert_eq!(back.value().attr("href"), Some("/login"));
}
