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
