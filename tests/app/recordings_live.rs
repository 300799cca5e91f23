//! Watching a connection live: administrators follow a recording while it is written, with
//! End and Lock beside it; nobody else may.

use std::time::Duration;

use portcullis::recording::Recorder;
use reqwest::StatusCode;

use crate::approvals::{signed_in, standard_request};
use crate::support::{alice_shell, spawn_demo_app};

#[tokio::test]
async fn an_administrator_follows_an_open_recording_as_it_is_written() {
    let app = spawn_demo_app().await;
    let session = standard_request(&app).await;
    let recorder = Recorder::start(&app.db, alice_shell(&app, session).await)
        .await
        .unwrap();
    let rid = recorder.id();
    recorder.output(b"$ tail -f /var/log/syslog\r\n").await;
    let carol = signed_in(&app, "carol").await;
    let events = format!("/recordings/{rid}/events");

    // The first chunk is written within about a second.
    let first = crate::support::settled(
        || async {
            let page = app.get_with(&carol, &format!("{events}?from=0")).await;
            serde_json::from_str::<serde_json::Value>(&page.body).unwrap()
        },
        |v: &serde_json::Value| v["next"] == 1,
    )
    .await;
    assert_eq!(first["ended"], false);
    assert!(
        first["events"].as_str().unwrap().contains("tail -f"),
        "{first}"
    );
    let next = first["next"].as_i64().unwrap();

    // Asking from where it left off brings only what came since.
    recorder.output(b"Nov 30 kernel: link up\r\n").await;
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let page = app.get_with(&carol, &format!("{events}?from={next}")).await;
    let since: serde_json::Value = serde_json::from_str(&page.body).unwrap();
    let text = since["events"].as_str().unwrap();
    assert!(
        text.contains("link up") && !text.contains("tail -f"),
        "{since}"
    );

    // The session page offers it while open; the watching page has End and Lock.
    let details = app.get_with(&carol, &format!("/sessions/{session}")).await;
    assert!(details.body.contains(&format!("/recordings/{rid}/live")));
    let live = app
        .get_with(&carol, &format!("/recordings/{rid}/live"))
        .await;
    assert_eq!(live.status, StatusCode::OK);
    assert!(
        live.body
            .contains(&format!("data-follow=\"/recordings/{rid}/events\""))
    );
    assert!(live.body.contains("id=\"watch-end\""));

    // Once it ends, the watcher is told so.
    recorder.finish("Session ended").await;
    let page = app.get_with(&carol, &format!("{events}?from=0")).await;
    let done: serde_json::Value = serde_json::from_str(&page.body).unwrap();
    assert_eq!(done["ended"], true);
    assert_eq!(done["end_reason"], "Session ended");
    let details = app.get_with(&carol, &format!("/sessions/{session}")).await;
    assert!(!details.body.contains(&format!("/recordings/{rid}/live")));

    // Only administrators: the requester herself may not watch (she has the player), nor
    // may an approver; bad positions are refused.
    for who in ["alice", "bob"] {
        let client = signed_in(&app, who).await;
        let page = app.get_with(&client, &format!("{events}?from=0")).await;
        assert_eq!(page.status, StatusCode::NOT_FOUND, "{who}");
        assert!(!page.body.contains("tail -f"), "{who}");
    }
    let bad = app.get_with(&carol, &format!("{events}?from=-1")).await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.body);
    let bad = app.get_with(&carol, &format!("{events}?from=x")).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{}", bad.body);
}
