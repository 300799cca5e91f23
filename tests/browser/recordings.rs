//! View Logs in a real browser: the recording written by the real recorder plays in the
//! vendored asciinema-player, under the application's Content-Security-Policy.

use std::time::Duration;

use crate::connect::available_session;
use crate::harness::Browser;
use crate::support::{record, spawn_demo_app};

#[tokio::test(flavor = "multi_thread")]
async fn view_logs_plays_the_recorded_output() {
    let app = spawn_demo_app().await;
    let session = available_session(&app).await;
    record(
        &app,
        session,
        &[
            "alice@lnx-web-01:~$ whoami\r\n",
            "\x1b[32mpc-alice-recorded\x1b[0m\r\n",
        ],
    )
    .await;

    let browser = Browser::new().await;
    browser.login(&app, "alice", "portcullis-demo").await;
    browser.goto(&app, &format!("/sessions/{session}")).await;
    browser
        .wait_for_text(
            "#recordings-table tbody tr",
            "Session ended",
            Duration::from_secs(5),
        )
        .await;
    browser.click(".cast-player .start-prompt").await;
    browser
        .wait_for_text(
            ".cast-player pre",
            "pc-alice-recorded",
            Duration::from_secs(10),
        )
        .await;
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_administrator_watches_a_live_connection_drawn_as_it_is_written() {
    let app = spawn_demo_app().await;
    let session = available_session(&app).await;
    let recorder = portcullis::recording::Recorder::start(
        &app.db,
        crate::support::alice_shell(&app, session).await,
    )
    .await
    .unwrap();
    recorder
        .output(&b"alice@lnx-web-01:~$ uptime\r\n"[..])
        .await;

    let browser = Browser::new().await;
    browser.login(&app, "carol", "portcullis-demo").await;
    browser.goto(&app, &format!("/sessions/{session}")).await;
    browser.click(".watch-live").await;
    browser
        .wait_for_text(".xterm-rows", "uptime", Duration::from_secs(10))
        .await;
    // What is written later arrives without a reload.
    recorder
        .output(&b" 10:42:01 up 12 days, load average: 0.01\r\n"[..])
        .await;
    browser
        .wait_for_text(".xterm-rows", "12 days", Duration::from_secs(10))
        .await;
    recorder.finish("Session ended").await;
    browser
        .wait_for_text(
            "#terminal-status",
            "This connection has ended",
            Duration::from_secs(10),
        )
        .await;
    browser.close().await;
}
