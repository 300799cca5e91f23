//! Records that tell the truth (issue 16): Historical, session details and the CSV export
//! show when a session really ended, and who or what ended it, beside the planned end.

use reqwest::StatusCode;

use crate::request_page::{DEMO, alice_asks, decide, signed_in};
use crate::support::spawn_demo_app;

#[tokio::test]
async fn a_session_ended_early_shows_its_real_end_and_who_ended_it_beside_the_plan() {
    let app = spawn_demo_app().await;
    let (id, sessions) =
        alice_asks(&app, "Linux administration", &["lnx-web-01", "lnx-web-02"]).await;
    let bob = signed_in(&app, "bob", DEMO).await;
    decide(&app, &bob, id, &sessions, "approve", "").await;
    let alice = signed_in(&app, "alice", DEMO).await;
    let carol = signed_in(&app, "carol", DEMO).await;
    let ended = app
        .post_with(
            &alice,
            "/dashboard/end",
            &[("id", &sessions[0].to_string()), ("confirm", "yes")],
        )
        .await;
    assert_eq!(ended.status, StatusCode::SEE_OTHER);
    app.post_with(
        &carol,
        "/dashboard/end",
        &[("id", &sessions[1].to_string()), ("confirm", "yes")],
    )
    .await;
    let (planned, real): (time::OffsetDateTime, time::OffsetDateTime) =
        sqlx::query_as("SELECT ends_at, ended_at FROM activity_sessions WHERE id = $1")
            .bind(sessions[0])
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert!(real < planned - time::Duration::minutes(30), "ended early");

    let page = app.get_with(&alice, "/dashboard/historical").await;
    let headers = page.texts("#sessions thead th");
    assert_eq!(headers[7..9], ["Planned End", "Ended"]);
    let ended = page.texts("#sessions tbody td.ended");
    let mut ended = ended.clone();
    ended.sort();
    assert_eq!(ended.len(), 2);
    assert!(ended[0].ends_with("(by an administrator)"), "{ended:?}");
    assert!(ended[1].ends_with("(by the requester)"), "{ended:?}");
    let row = page.texts("#sessions tbody tr:first-child td");
    assert_ne!(
        row[7],
        row[8].split(" (").next().unwrap(),
        "planned and real end differ"
    );

    let details = app
        .get_with(&alice, &format!("/sessions/{}", sessions[0]))
        .await;
    let terms = details.texts("dl.details dt");
    assert!(terms.contains(&"Planned End".to_owned()), "{terms:?}");
    assert!(
        details.texts("#ended")[0].ends_with("(by the requester)"),
        "{:?}",
        details.texts("#ended")
    );

    let csv = app.get_with(&alice, "/dashboard/historical.csv").await;
    let mut reader = csv::Reader::from_reader(csv.body.as_bytes());
    let header: Vec<String> = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_owned)
        .collect();
    assert_eq!(header[7..10], ["Planned End", "Ended", "How It Ended"]);
    let mut how: Vec<String> = reader.records().map(|r| r.unwrap()[9].to_owned()).collect();
    how.sort();
    assert_eq!(how, ["by an administrator", "by the requester"]);

    // A session still open shows no real end.
    let (_, open) = alice_asks(&app, "Linux administration", &["lnx-web-03"]).await;
    let details = app
        .get_with(&alice, &format!("/sessions/{}", open[0]))
        .await;
    assert!(details.texts("#ended").is_empty());
}
