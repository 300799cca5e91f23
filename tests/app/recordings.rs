//! Recordings on View Logs: listed, served as asciicast v2 (.cast) to the requester,
//! administrators and auditors only, and pruned after the retention.

use portcullis::db::recordings::{Mode, NewRecording, Via};
use portcullis::domain::role::Role;
use portcullis::recording::Recorder;
use reqwest::StatusCode;
use uuid::Uuid;

use crate::approvals::{signed_in, standard_request};
use crate::support::{PASSWORD, TestApp, alice_shell, new_client, record, spawn_demo_app};

/// Who looks: (name, client) for each role the access rule names, and an anonymous client.
async fn viewers(app: &TestApp) -> Vec<(&'static str, reqwest::Client)> {
    app.create_user("audrey", Role::Auditor).await;
    let auditor = new_client();
    app.login_with(&auditor, "audrey", PASSWORD).await;
    vec![
        ("requester", signed_in(app, "alice").await),
        ("other user", signed_in(app, "dave").await),
        ("approver", signed_in(app, "bob").await),
        ("admin", signed_in(app, "carol").await),
        ("auditor", auditor),
        ("anonymous", new_client()),
    ]
}

#[tokio::test]
async fn view_logs_lists_recordings_and_the_cast_is_asciicast_v2_for_those_allowed() {
    let app = spawn_demo_app().await;
    let session = standard_request(&app).await;
    let rid = record(
        &app,
        session,
        &[
            "$ uname -a\r\n",
            "Linux lnx-web-01\r\n",
            "caf\u{e9} \x1b[1mbold\x1b[0m\r\n",
        ],
    )
    .await;
    let details = format!("/sessions/{session}");
    let cast = format!("/sessions/{session}/recordings/{rid}.cast");
    for (who, client) in viewers(&app).await {
        let page = app.get_with(&client, &details).await;
        let file = app.get_with(&client, &cast).await;
        match who {
            "requester" | "admin" | "auditor" => {
                assert_eq!(page.status, StatusCode::OK, "{who}");
                let cells = page.texts("#recordings-table tbody td");
                assert_eq!(cells.len(), 9, "{who}: one recording");
                assert_eq!(cells[..4], ["alice", "SSH client", "Shell", ""], "{who}");
                assert_eq!(cells[6..8], ["Session ended", "50 B"], "{who}");
                assert_eq!(file.status, StatusCode::OK, "{who}");
                assert!(
                    file.headers["content-disposition"]
                        .to_str()
                        .unwrap()
                        .starts_with("attachment")
                );
            }
            "anonymous" => {
                assert_eq!(file.status, StatusCode::SEE_OTHER, "{who}");
                assert!(file.location().starts_with("/login"));
            }
            _ => {
                // The deciders of the request may open the session's page (it links from the
                // request page), but never its recordings.
                if page.status == StatusCode::OK {
                    assert!(page.texts("#recordings-table tbody td").is_empty(), "{who}");
                    assert!(!page.body.contains(&rid.to_string()), "{who}");
                } else {
                    assert_eq!(page.status, StatusCode::NOT_FOUND, "{who}");
                }
                assert_eq!(file.status, StatusCode::NOT_FOUND, "{who}");
                assert!(!file.body.contains("lnx-web-01"), "{who}");
            }
        }
    }
    // The file: a header line, then one JSON event line per output, in order.
    let carol = signed_in(&app, "carol").await;
    let body = app.get_with(&carol, &cast).await.body;
    let mut lines = body.lines();
    let header: serde_json::Value = serde_json::from_str(lines.next().unwrap()).unwrap();
    assert_eq!(header["version"], 2);
    assert_eq!(
        (header["width"].as_i64(), header["height"].as_i64()),
        (Some(100), Some(30))
    );
    let events: Vec<serde_json::Value> = lines.map(|l| serde_json::from_str(l).unwrap()).collect();
    let output: String = events
        .iter()
        .map(|e| {
            assert!(e[0].as_f64().unwrap() >= 0.0);
            assert_eq!(e[1], "o");
            e[2].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(
        output,
        "$ uname -a\r\nLinux lnx-web-01\r\ncaf\u{e9} \x1b[1mbold\x1b[0m\r\n"
    );
    // A recording of another session, or a made-up id, is not found through this session.
    let other = standard_request(&app).await;
    let elsewhere = record(&app, other, &["x"]).await;
    for path in [
        format!("/sessions/{session}/recordings/{elsewhere}.cast"),
        format!("/sessions/{session}/recordings/{}.cast", Uuid::now_v7()),
        format!("/sessions/{session}/recordings/{rid}"),
    ] {
        assert_eq!(
            app.get_with(&carol, &path).await.status,
            StatusCode::NOT_FOUND,
            "{path}"
        );
    }
}

#[tokio::test]
async fn retention_deletes_old_recordings_and_closes_abandoned_ones() {
    let app = spawn_demo_app().await;
    let session = standard_request(&app).await;
    let old = record(&app, session, &["old\r\n"]).await;
    let recent = record(&app, session, &["recent\r\n"]).await;
    sqlx::query("UPDATE recordings SET started_at = now() - interval '91 days', ended_at = now() - interval '91 days' WHERE id = $1")
        .bind(old)
        .execute(&app.db)
        .await
        .unwrap();
    // An open recording whose instance stopped: its last chunk is 11 minutes old.
    let left = Recorder::start(
        &app.db,
        NewRecording {
            via: Via::Browser,
            mode: Mode::Exec,
            command: "top".into(),
            ..alice_shell(&app, session).await
        },
    )
    .await
    .unwrap();
    left.output(&b"load average"[..]).await;
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    sqlx::query("UPDATE recordings SET started_at = now() - interval '12 minutes' WHERE id = $1")
        .bind(left.id())
        .execute(&app.db)
        .await
        .unwrap();
    sqlx::query(
        "UPDATE recording_chunks SET at = now() - interval '11 minutes' WHERE recording_id = $1",
    )
    .bind(left.id())
    .execute(&app.db)
    .await
    .unwrap();

    let deleted = portcullis::worker::recordings::tick(&app.db, 90)
        .await
        .unwrap();
    assert_eq!(deleted, 1);
    let rows: Vec<(Uuid, Option<String>)> =
        sqlx::query_as("SELECT id, end_reason FROM recordings ORDER BY started_at")
            .fetch_all(&app.db)
            .await
            .unwrap();
    assert_eq!(
        rows,
        [
            (left.id(), Some("Portcullis stopped".to_owned())),
            (recent, Some("Session ended".to_owned()))
        ]
    );
    let orphan_chunks: i64 =
        sqlx::query_scalar("SELECT count(*) FROM recording_chunks WHERE recording_id = $1")
            .bind(old)
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(orphan_chunks, 0);
    // Within the retention nothing more goes.
    assert_eq!(
        portcullis::worker::recordings::tick(&app.db, 90)
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        portcullis::worker::recordings::tick(&app.db, 1)
            .await
            .unwrap(),
        0
    );
}

/// The storage an hour of typical shell use takes, for the README: one minute in real time
/// through the real recorder, a command every fourth second (its real output on this
/// machine, colours included), scaled to an hour. Run with
/// `cargo test --test app measure_an_hour -- --ignored --nocapture`.
#[tokio::test]
#[ignore = "a measurement (one minute), not a check"]
async fn measure_an_hour_of_shell_use() {
    let app = spawn_demo_app().await;
    let session = standard_request(&app).await;
    let recorder = Recorder::start(&app.db, alice_shell(&app, session).await)
        .await
        .unwrap();
    let commands = [
        "ls -la --color=always /etc | head -40",
        "ps aux | head -25",
        "df -h",
        "grep -v '^#' /etc/ssh/sshd_config | grep .",
        "ip addr",
        "tail -n 20 /etc/services",
        "free -m; uptime",
        "cat /etc/os-release",
    ];
    let mut output_bytes = 0;
    for second in 0..60 {
        if second % 4 == 0 {
            let command = commands[(second / 4) % commands.len()];
            let out = std::process::Command::new("sh")
                .arg("-c")
                .arg(command)
                .output()
                .unwrap();
            let text = format!(
                "\x1b[32malice@lnx-web-01\x1b[0m:~$ {command}\r\n{}",
                String::from_utf8_lossy(&out.stdout).replace('\n', "\r\n")
            );
            output_bytes += text.len();
            recorder.output(text).await;
        }
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
    recorder.finish("Session ended").await;
    let (chunks, stored, total): (i64, i64, i64) = sqlx::query_as(
        "SELECT count(*), sum(pg_column_size(c.*))::bigint,
                pg_total_relation_size('recording_chunks') + pg_total_relation_size('recordings')
         FROM recording_chunks c",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    println!(
        "one minute: {output_bytes} bytes of output, {chunks} chunks, rows {stored} bytes, \
         tables with indexes {total} bytes; an hour: about {:.1} MiB of rows",
        stored as f64 * 60.0 / 1_048_576.0
    );
}

#[tokio::test]
async fn administrators_and_auditors_search_the_recorded_text() {
    let app = spawn_demo_app().await;
    let session = standard_request(&app).await;
    record(
        &app,
        session,
        &[
            "$ cat /etc/motd\r\n",
            "Welcome to \x1b[1mlnx-web-01\x1b[0m, the web server\r\n",
        ],
    )
    .await;
    record(&app, session, &["$ uptime\r\n 12:00 up 3 days\r\n"]).await;
    let search = |q: &str| {
        format!(
            "/recordings/search?q={}",
            q.replace(' ', "+").replace('/', "%2F")
        )
    };
    for (who, client) in viewers(&app).await {
        let page = app.get_with(&client, &search("web server")).await;
        match who {
            "admin" | "auditor" => {
                assert_eq!(page.status, StatusCode::OK, "{who}");
                let cells = page.texts("#recordings-hits tbody td");
                assert_eq!(cells[1..3], ["alice", "lnx-web-01"], "{who}");
                assert!(
                    cells[3].contains("Welcome to lnx-web-01, the web server"),
                    "{}",
                    cells[3]
                );
                assert_eq!(page.texts("#recordings-hits tbody tr").len(), 1);
            }
            "anonymous" => assert_eq!(page.status, StatusCode::SEE_OTHER),
            _ => assert_eq!(page.status, StatusCode::NOT_FOUND, "{who}"),
        }
    }
    let carol = signed_in(&app, "carol").await;
    // Part of a word or a path: the fallback finds it.
    let page = app.get_with(&carol, &search("etc/mot")).await;
    assert_eq!(
        page.texts("#recordings-hits tbody tr").len(),
        1,
        "{}",
        page.body
    );
    let page = app.get_with(&carol, &search("nowhere to be seen")).await;
    assert_eq!(page.texts("#recordings-no-hit").len(), 1);
    let page = app.get_with(&carol, &search("x")).await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        page.texts(".field-error"),
        ["Type at least 2 characters to search for."]
    );
    let page = app.get_with(&carol, &search("%_")).await;
    assert_eq!(
        page.texts("#recordings-no-hit").len(),
        1,
        "wildcards are plain text"
    );
}

/// A bulk dump (`cat` of a large file) is recorded whole, but only the first part of each
/// second's text is searchable; binary output is recorded and never searchable.
#[tokio::test]
async fn bulk_output_is_recorded_whole_and_searchable_within_its_allowance() {
    let app = spawn_demo_app().await;
    let session = standard_request(&app).await;
    let dump = format!(
        "first-needle\r\n{}last-needle\r\n",
        "a log line of a large file, and another, and another\r\n".repeat(20_000)
    );
    let mut binary = vec![0u8, 0xff, 0xfe];
    binary.extend_from_slice(b"binary-needle");
    binary.extend([0u8; 64]);
    let started = std::time::Instant::now();
    let recorder = Recorder::start(&app.db, alice_shell(&app, session).await)
        .await
        .unwrap();
    for piece in dump.as_bytes().chunks(32 * 1024) {
        recorder.output(piece.to_vec()).await;
    }
    recorder.output(binary.clone()).await;
    recorder.finish("Session ended").await;
    let within_a_second = started.elapsed() < std::time::Duration::from_secs(1);
    let seconds = started.elapsed().as_secs() as usize + 1;

    let alice = signed_in(&app, "alice").await;
    let cast = app
        .get_with(
            &alice,
            &format!("/sessions/{session}/recordings/{}.cast", recorder.id()),
        )
        .await;
    let output: String = cast
        .body
        .lines()
        .skip(1)
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()[2]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    let binary_shown = format!("\0\u{fffd}\u{fffd}binary-needle{}", "\0".repeat(64));
    assert!(
        output == format!("{dump}{binary_shown}"),
        "every byte is in the .cast"
    );
    let (bytes, searchable): (i64, i64) = sqlx::query_as(
        "SELECT r.bytes, coalesce(sum(octet_length(c.plain)), 0)::bigint
         FROM recordings r JOIN recording_chunks c ON c.recording_id = r.id
         WHERE r.id = $1 GROUP BY r.id",
    )
    .bind(recorder.id())
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(bytes as usize, dump.len() + binary.len());
    assert!(
        searchable as usize <= portcullis::recording::SEARCHABLE_PER_SECOND * seconds,
        "{searchable} searchable bytes in {seconds} s"
    );

    let carol = signed_in(&app, "carol").await;
    let hits = |q: &'static str| {
        let carol = carol.clone();
        let app = &app;
        async move {
            app.get_with(&carol, &format!("/recordings/search?q={q}"))
                .await
                .texts("#recordings-hits tbody tr")
                .len()
        }
    };
    assert_eq!(
        hits("first-needle").await,
        1,
        "the start of the dump is searchable"
    );
    assert_eq!(hits("binary-needle").await, 0, "binary output is not");
    if within_a_second {
        assert_eq!(
            hits("last-needle").await,
            0,
            "beyond the second's allowance"
        );
    }
}

/// Recordings written before the events were stored as bytes (asciicast text in
/// `recording_chunks.events`) are converted by the migration and play as they did; NULs,
/// which PostgreSQL's text cannot hold, are dropped.
#[tokio::test]
async fn recordings_stored_as_asciicast_text_are_converted() {
    let app = spawn_demo_app().await;
    let session = standard_request(&app).await;
    let rid = record(&app, session, &[]).await;
    // The table as the previous version kept it.
    sqlx::raw_sql(
        "ALTER TABLE recording_chunks DROP COLUMN data;
         ALTER TABLE recording_chunks ADD COLUMN events text NOT NULL DEFAULT ''",
    )
    .execute(&app.db)
    .await
    .unwrap();
    // Lines as the previous recorder wrote them: serde_json of [seconds, code, text].
    let line = |seconds: f64, code: &str, text: &str| {
        format!("{}\n", serde_json::json!([seconds, code, text]))
    };
    let chunks = [
        line(0.0, "o", "$ printf 'caf\u{e9}\\0'\r\n") + &line(1.25, "r", "120x40"),
        String::new(),
        line(2.000001, "o", "caf\u{e9}\0\x1b[1m \"q\" \\u0000 \\\0!") + &line(3.5, "i", "exit\r"),
    ];
    for (seq, events) in chunks.iter().enumerate() {
        sqlx::query("INSERT INTO recording_chunks (recording_id, seq, events) VALUES ($1, $2, $3)")
            .bind(rid)
            .bind(seq as i32)
            .bind(events)
            .execute(&app.db)
            .await
            .unwrap();
    }
    sqlx::raw_sql(include_str!(
        "../../migrations/20261202000030_recording_data.sql"
    ))
    .execute(&app.db)
    .await
    .unwrap();

    let (events, next) = portcullis::db::recordings::events_from(&app.db, rid, 0)
        .await
        .unwrap();
    let expected = line(0.0, "o", "$ printf 'caf\u{e9}\\0'\r\n")
        + &line(1.25, "r", "120x40")
        + &line(2.000001, "o", "caf\u{e9}\x1b[1m \"q\" \\u0000 \\!")
        + &line(3.5, "i", "exit\r");
    assert_eq!(events, expected);
    assert_eq!(next, 3);
    let alice = signed_in(&app, "alice").await;
    let cast = app
        .get_with(
            &alice,
            &format!("/sessions/{session}/recordings/{rid}.cast"),
        )
        .await;
    assert!(cast.body.ends_with(&expected), "{}", cast.body);
}

/// A recording of many chunks (a bulk transfer) downloads whole, in order, header first,
/// though the server renders it a few chunks at a time.
#[tokio::test]
async fn a_recording_of_many_chunks_downloads_whole_in_order() {
    let app = spawn_demo_app().await;
    let session = standard_request(&app).await;
    let recorder = Recorder::start(&app.db, alice_shell(&app, session).await)
        .await
        .unwrap();
    for n in 0..7 {
        let line = format!("{n}:{}\r\n", "x".repeat(64));
        recorder
            .output(line.repeat(16_000).as_bytes().to_vec())
            .await;
    }
    recorder.finish("Session ended").await;
    let chunks: i64 =
        sqlx::query_scalar("SELECT count(*) FROM recording_chunks WHERE recording_id = $1")
            .bind(recorder.id())
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert!(chunks > 3, "more chunks than one piece renders: {chunks}");

    let alice = signed_in(&app, "alice").await;
    let cast = app
        .get_with(
            &alice,
            &format!("/sessions/{session}/recordings/{}.cast", recorder.id()),
        )
        .await;
    assert_eq!(cast.status, StatusCode::OK);
    let mut lines = cast.body.lines();
    let header: serde_json::Value = serde_json::from_str(lines.next().unwrap()).unwrap();
    assert_eq!(header["version"], 2);
    let output: String = lines
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()[2]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    let expected: String = (0..7)
        .map(|n| format!("{n}:{}\r\n", "x".repeat(64)).repeat(16_000))
        .collect();
    assert_eq!(output.len(), expected.len());
    assert!(output == expected, "every byte, in order");
}

/// Bulk output that compresses is packed by the recorder as it flows (PostgreSQL stores a
/// fraction of it and compresses nothing on the connection's path); a chunk too small to
/// pack is stored as it came and compressed by the worker once the recording has ended.
/// Both read the same before and after.
#[tokio::test]
async fn bulk_output_is_packed_as_it_flows_and_the_rest_compacted_after_the_end() {
    use portcullis::worker::recordings::compact;
    let app = spawn_demo_app().await;
    let session = standard_request(&app).await;
    // (chunks, chunks compressed by PostgreSQL, chunks still in `data`, bytes stored,
    // bytes on disk, bytes recorded)
    let state = |id: uuid::Uuid| {
        let db = app.db.clone();
        async move {
            sqlx::query_as::<_, (i64, i64, i64, i64, i64, i64)>(
                "SELECT count(*),
                        count(*) FILTER (WHERE pg_column_compression(coalesce(packed, data)) IS NOT NULL),
                        count(*) FILTER (WHERE octet_length(data) > 0),
                        sum(octet_length(coalesce(packed, data)))::bigint,
                        sum(pg_column_size(coalesce(packed, data)))::bigint,
                        (SELECT bytes FROM recordings WHERE id = $1)
                 FROM recording_chunks WHERE recording_id = $1",
            )
            .bind(id)
            .fetch_one(&db)
            .await
            .unwrap()
        }
    };
    let line = |n: usize| format!("{n}: drwxr-xr-x 2 root root 4096 Dec  1 09:00 etc\r\n");
    // A bulk dump: packed by the recorder before PostgreSQL sees it.
    let bulk = Recorder::start(&app.db, alice_shell(&app, session).await)
        .await
        .unwrap();
    for n in 0..5 {
        bulk.output(line(n).repeat(30_000)).await;
    }
    // A screenful: too small to pack, stored as it came until the worker compacts it.
    let screen = Recorder::start(&app.db, alice_shell(&app, session).await)
        .await
        .unwrap();
    screen.output(line(7).repeat(100)).await;
    assert_eq!(
        compact(&app.db, 0, 10_000).await.unwrap(),
        0,
        "not while they are live"
    );
    bulk.finish("Session ended").await;
    screen.finish("Session ended").await;

    let (chunks, compressed, raw, bulk_stored, _, recorded) = state(bulk.id()).await;
    assert!(chunks >= 2, "{chunks} chunks");
    assert_eq!(compressed, 0, "PostgreSQL compressed nothing");
    assert_eq!(raw, chunks);
    assert!(
        bulk_stored * 10 < recorded,
        "{bulk_stored} stored for {recorded} recorded"
    );
    let (chunks, compressed, raw, stored, on_disk, recorded) = state(screen.id()).await;
    assert_eq!((chunks, compressed, raw), (1, 0, 1), "stored as it came");
    assert!(
        stored > recorded && on_disk >= stored,
        "{stored} {on_disk} {recorded}"
    );

    let alice = signed_in(&app, "alice").await;
    let cast = |id: uuid::Uuid| format!("/sessions/{session}/recordings/{id}.cast");
    let before = (
        app.get_with(&alice, &cast(bulk.id())).await,
        app.get_with(&alice, &cast(screen.id())).await,
    );
    assert_eq!(
        (before.0.status, before.1.status),
        (StatusCode::OK, StatusCode::OK)
    );
    assert!(before.0.body.len() > 5 * 30_000 * 40);
    assert_eq!(before.0.body.matches("4: drwxr-xr-x").count(), 30_000);
    assert_eq!(before.1.body.matches("7: drwxr-xr-x").count(), 100);

    assert_eq!(compact(&app.db, 0, 10_000).await.unwrap(), 2);
    let (_, compressed, raw, _, on_disk, recorded) = state(screen.id()).await;
    assert_eq!((compressed, raw), (1, 0), "compressed by PostgreSQL");
    assert!(on_disk * 10 < recorded, "{on_disk} on disk for {recorded}");
    let (_, _, raw, stored_after, _, _) = state(bulk.id()).await;
    assert_eq!(raw, 0);
    assert!(
        stored_after <= bulk_stored * 2,
        "packed chunks stay small: {stored_after} after {bulk_stored}"
    );
    let compacted: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM recordings WHERE id = ANY($1) AND compacted_at IS NOT NULL",
    )
    .bind(vec![bulk.id(), screen.id()])
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(compacted, 2);
    assert_eq!(compact(&app.db, 0, 10_000).await.unwrap(), 0, "done once");

    let after = (
        app.get_with(&alice, &cast(bulk.id())).await,
        app.get_with(&alice, &cast(screen.id())).await,
    );
    assert!(after.0.body == before.0.body, "the same recording");
    assert!(after.1.body == before.1.body, "the same recording");
}
