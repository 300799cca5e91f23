//! The rough edges a new user hits (issue 16, sections 3 and 5): the sign-in limit, the
//! wizard's and dashboard's wording, the demo data.

use portcullis::Settings;
use portcullis::domain::role::Role;
use reqwest::StatusCode;

use crate::admin_resources::{admin_app, post_multipart};
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

#[tokio::test]
async fn pasted_csv_text_reports_the_line_numbers_of_the_file() {
    let app = admin_app().await;
    let file = "name,kind,platform,address,port,description\nok-01,server,Linux,ok.example,22,\nbad,printer,Linux,b.example,22,\n\nshort,server\n";
    let uploaded = post_multipart(
        &app,
        "/admin/resources/import",
        None,
        Some(("r.csv", file.as_bytes())),
        "",
    )
    .await;
    let numbers = uploaded.texts("#preview tbody td:first-child");
    assert_eq!(numbers, ["2", "3", "5"]);
    // A browser sends a text box's lines ended with CRLF.
    let pasted = post_multipart(
        &app,
        "/admin/resources/import",
        None,
        None,
        &file.replace('\n', "\r\n"),
    )
    .await;
    assert_eq!(pasted.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(pasted.texts("#preview tbody td:first-child"), numbers);
}
