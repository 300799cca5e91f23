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
    recorder.output(&b"$ tail -f /var/log/syslog\r\n"[..]).await;
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
    recorder.output(&b"Nov 30 kernel: link up\r\n"[..]).await;
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

#[tokio::test]
async fn an_idle_live_recording_grows_an_empty_heartbeat_chunk() {
    let app = spawn_demo_app().await;
    let session = standard_request(&app).await;
    let chunks = |rid: uuid::Uuid| {
        let db = app.db.clone();
        async move {
            sqlx::query_as::<_, (i32, Vec<u8>, String)>(
                "SELECT seq, data, plain FROM recording_chunks WHERE recording_id = $1 ORDER BY seq",
            )
            .bind(rid)
            .fetch_all(&db)
            .await
            .unwrap()
        }
    };
    // Two idle connections: one with the usual four minutes, one with a short heartbeat.
    let usual = Recorder::start(&app.db, alice_shell(&app, session).await)
        .await
        .unwrap();
    let idle = Recorder::start_with_heartbeat(
        &app.db,
        alice_shell(&app, session).await,
        Duration::from_millis(300),
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;

    let beats = chunks(idle.id()).await;
    assert!(!beats.is_empty(), "an idle recording writes heartbeats");
    for (n, (seq, events, plain)) in beats.iter().enumerate() {
        assert_eq!(*seq, i32::try_from(n).unwrap());
        assert_eq!((events.len(), plain.as_str()), (0, ""), "empty chunks");
    }
    assert!(
        chunks(usual.id()).await.is_empty(),
        "nothing to write and its heartbeat not due: no chunk"
    );
    // A watcher sees the recording open and moves past the empty chunks.
    let carol = signed_in(&app, "carol").await;
    let page = app
        .get_with(&carol, &format!("/recordings/{}/events?from=0", idle.id()))
        .await;
    let since: serde_json::Value = serde_json::from_str(&page.body).unwrap();
    assert_eq!(since["ended"], false);
    assert_eq!(since["events"], "");
    assert!(since["next"].as_i64().unwrap() >= 1, "{since}");

    // Output after the heartbeats comes in the next chunk, in order.
    idle.output(&b"still here\r\n"[..]).await;
    idle.finish("Session ended").await;
    let all = chunks(idle.id()).await;
    let (_, last, plain) = all.last().unwrap();
    assert!(
        last.ends_with(b"still here\r\n") && plain.contains("still here"),
        "{all:?}"
    );
    usual.finish("Session ended").await;
}

/// The form holding the button `#button` on `page`: its action and its fields as the browser
/// would send them, with `fill` for fields the user types into.
fn form_of(
    page: &crate::support::Page,
    button: &str,
    fill: &[(&str, &str)],
) -> (String, Vec<(String, String)>) {
    let html = page.html();
    let forms = scraper::Selector::parse("form").unwrap();
    let wanted = scraper::Selector::parse(&format!("#{button}")).unwrap();
    let fields = scraper::Selector::parse("input[name]").unwrap();
    let form = html
        .select(&forms)
        .find(|f| f.select(&wanted).next().is_some())
        .unwrap_or_else(|| panic!("no form with #{button}: {}", page.body));
    let action = form.value().attr("action").unwrap().to_owned();
    let values = form
        .select(&fields)
        .map(|i| {
            let name = i.value().attr("name").unwrap();
            let typed = fill.iter().find(|(n, _)| *n == name).map(|(_, v)| *v);
            let value = typed.or(i.value().attr("value")).unwrap_or("");
            (name.to_owned(), value.to_owned())
        })
        .collect();
    (action, values)
}

/// The open recording of the session's live connection, as the session page links it.
async fn watch_page(
    app: &crate::support::TestApp,
    carol: &reqwest::Client,
    session: uuid::Uuid,
) -> crate::support::Page {
    let details = app.get_with(carol, &format!("/sessions/{session}")).await;
    let live = scraper::Selector::parse("a[href$='/live']").unwrap();
    let href = details
        .html()
        .select(&live)
        .next()
        .and_then(|a| a.value().attr("href").map(str::to_owned))
        .unwrap_or_else(|| panic!("no watch link: {}", details.body));
    let page = app.get_with(carol, &href).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    page
}

#[tokio::test]
async fn an_administrator_locks_then_ends_a_live_gateway_session_from_the_watching_page() {
    use crate::gateway::{Rig, Shell};
    let (rig, id) = Rig::start().await;
    let app = &rig.app;
    let string = rig.connection_string(id).await;
    let carol = signed_in(app, "carol").await;
    let status = || async {
        sqlx::query_scalar::<_, String>("SELECT status::text FROM activity_sessions WHERE id = $1")
            .bind(id)
            .fetch_one(&app.db)
            .await
            .unwrap()
    };

    // Lock, with the form as the watching page has it.
    let mut shell = Shell::open(&rig, &string);
    shell.send("echo watched-$((2+3))\n").await;
    assert!(
        shell.until("watched-5", Duration::from_secs(10)).await,
        "{}",
        shell.seen
    );
    let page = watch_page(app, &carol, id).await;
    let (action, fields) = form_of(
        &page,
        "watch-lock",
        &[("message", "Seen on the watch page")],
    );
    let fields: Vec<(&str, &str)> = fields
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    let answer = app.post_raw_with(&carol, &action, &fields).await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
    assert_eq!(status().await, "locked");
    let took = shell.closed_within(Duration::from_secs(5)).await;
    assert!(
        took.is_some_and(|t| t <= Duration::from_secs(2)),
        "{took:?}"
    );
    assert!(
        shell.seen.contains(
            "Portcullis: the session was locked by an administrator: Seen on the watch page."
        ),
        "{}",
        shell.seen
    );

    // Unlocked, a new connection; End from its watching page closes it too.
    let answer = app
        .post_with(&carol, &format!("/admin/sessions/{id}/unlock"), &[])
        .await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
    // The lock moved the access epoch: the string is shown again.
    let string = rig.connection_string(id).await;
    let mut shell = Shell::open(&rig, &string);
    shell.send("echo again-$((3+4))\n").await;
    assert!(
        shell.until("again-7", Duration::from_secs(10)).await,
        "{}",
        shell.seen
    );
    let page = watch_page(app, &carol, id).await;
    let (action, fields) = form_of(&page, "watch-end", &[]);
    let fields: Vec<(&str, &str)> = fields
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    // End asks first and names what it ends; its Confirm button ends it.
    let asked = app.post_raw_with(&carol, &action, &fields).await;
    assert_eq!(asked.status, StatusCode::OK, "{}", asked.body);
    let (action, fields) = form_of(&asked, "end-confirm", &[]);
    let mut fields: Vec<(&str, &str)> = fields
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    fields.push(("confirm", "yes"));
    let answer = app.post_raw_with(&carol, &action, &fields).await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
    assert_eq!(answer.location(), format!("/sessions/{id}"));
    assert_eq!(status().await, "canceled");
    let took = shell.closed_within(Duration::from_secs(5)).await;
    assert!(
        took.is_some_and(|t| t <= Duration::from_secs(2)),
        "{took:?}"
    );
    assert!(
        shell.seen.contains("Portcullis: the session ended"),
        "{}",
        shell.seen
    );
    // Once ended, the watching page offers neither.
    let page = app
        .get_with(
            &carol,
            &format!("/recordings/{}/live", recording_of(app, id).await),
        )
        .await;
    assert!(!page.body.contains("watch-end") && !page.body.contains("watch-lock"));
}

/// The session's latest recording.
async fn recording_of(app: &crate::support::TestApp, session: uuid::Uuid) -> uuid::Uuid {
    sqlx::query_scalar(
        "SELECT id FROM recordings WHERE session_id = $1 ORDER BY started_at DESC LIMIT 1",
    )
    .bind(session)
    .fetch_one(&app.db)
    .await
    .unwrap()
}

/// A watcher catching up with a bulk transfer gets it a few chunks at a time, told that more
/// follows, and is told the connection ended only with the last piece.
#[tokio::test]
async fn a_watcher_catches_up_with_bulk_output_in_pieces() {
    let app = spawn_demo_app().await;
    let session = standard_request(&app).await;
    let recorder = Recorder::start(&app.db, alice_shell(&app, session).await)
        .await
        .unwrap();
    let rid = recorder.id();
    // Five chunks of about 1 MiB each.
    let line = "0123456789abcdef".repeat(4096) + "\r\n";
    for _ in 0..80 {
        recorder.output(line.as_bytes().to_vec()).await;
    }
    recorder.finish("Session ended").await;
    let chunks: i64 =
        sqlx::query_scalar("SELECT count(*) FROM recording_chunks WHERE recording_id = $1")
            .bind(rid)
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert!(chunks >= 5, "{chunks} chunks");

    let carol = signed_in(&app, "carol").await;
    let mut from = 0;
    let mut polls = 0;
    let mut text = 0;
    loop {
        let page = app
            .get_with(&carol, &format!("/recordings/{rid}/events?from={from}"))
            .await;
        assert_eq!(page.status, StatusCode::OK);
        let since: serde_json::Value = serde_json::from_str(&page.body).unwrap();
        polls += 1;
        text += since["events"]
            .as_str()
            .unwrap()
            .matches("0123456789abcdef")
            .count();
        let next = since["next"].as_i64().unwrap();
        assert!(
            next - from <= 3,
            "at most three chunks a poll: {from} -> {next}"
        );
        from = next;
        if since["more"] == true {
            assert_eq!(since["ended"], false, "not ended while more follows");
            continue;
        }
        assert_eq!(since["ended"], true);
        break;
    }
    assert_eq!(from, chunks);
    assert!(polls >= 2, "{polls} polls");
    assert_eq!(text, 80 * 4096, "every byte of output, once");
}
