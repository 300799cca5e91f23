//! The SSH gateway's cut-offs: End, an administrator's Lock and the window's end close a
//! live shell within two seconds, with a line saying why.

use std::time::Duration;

use crate::gateway::{DEMO, Rig, Shell, recorded};
use crate::provisioning::status;
use crate::support::new_client;

#[tokio::test]
async fn an_interactive_shell_is_recorded_and_end_session_closes_it_within_two_seconds() {
    let (rig, id) = Rig::start().await;
    let string = rig.connection_string(id).await;
    let mut shell = Shell::open(&rig, &string);
    shell.send("echo hello-$((40+2))\n").await;
    assert!(
        shell.until("hello-42", Duration::from_secs(10)).await,
        "{}",
        shell.seen
    );
    assert_eq!(status(&rig.app, id).await, "logged_in");

    rig.app
        .post(
            "/dashboard/end",
            &[("id", &id.to_string()), ("confirm", "yes")],
        )
        .await;
    assert_eq!(status(&rig.app, id).await, "completed");
    let took = shell.closed_within(Duration::from_secs(5)).await;
    assert!(
        took.is_some_and(|t| t <= Duration::from_secs(2)),
        "{took:?}"
    );
    assert!(
        shell
            .seen
            .contains("Portcullis: the session ended (Completed)."),
        "{}",
        shell.seen
    );
    let text = crate::support::settled(
        || recorded(&rig.app, id),
        |t: &String| t.contains("hello-42"),
    )
    .await;
    assert!(text.contains("hello-42"), "{text}");
    let reason: Option<String> =
        sqlx::query_scalar("SELECT end_reason FROM recordings WHERE session_id = $1")
            .bind(id)
            .fetch_one(&rig.app.db)
            .await
            .unwrap();
    assert_eq!(
        reason.as_deref(),
        Some("Portcullis closed the connection: the session ended (Completed).")
    );
}

#[tokio::test]
async fn an_admin_lock_closes_a_live_shell_with_its_message() {
    let (rig, id) = Rig::start().await;
    let string = rig.connection_string(id).await;
    let mut shell = Shell::open(&rig, &string);
    shell.send("echo up-$((1+1))\n").await;
    assert!(
        shell.until("up-2", Duration::from_secs(10)).await,
        "{}",
        shell.seen
    );
    let carol = new_client();
    rig.app.login_with(&carol, "carol", DEMO).await;
    rig.app
        .post_with(
            &carol,
            &format!("/admin/sessions/{id}/lock"),
            &[("message", "Incident 42: stop all changes")],
        )
        .await;
    assert_eq!(status(&rig.app, id).await, "locked");
    let took = shell.closed_within(Duration::from_secs(5)).await;
    assert!(
        took.is_some_and(|t| t <= Duration::from_secs(2)),
        "{took:?}"
    );
    assert!(
        shell.seen.contains(
            "Portcullis: the session was locked by an administrator: Incident 42: stop all changes."
        ),
        "{}",
        shell.seen
    );
}

#[tokio::test]
async fn the_window_end_warns_then_closes_a_live_shell_on_time() {
    let (rig, id) = Rig::start().await;
    sqlx::query(
        "UPDATE activity_sessions SET ends_at = now() + interval '4 seconds' WHERE id = $1",
    )
    .bind(id)
    .execute(&rig.app.db)
    .await
    .unwrap();
    let string = rig.connection_string(id).await;
    let mut shell = Shell::open(&rig, &string);
    assert!(
        shell
            .until("the session ends in 1 minute", Duration::from_secs(4))
            .await,
        "{}",
        shell.seen
    );
    let ends_at: time::OffsetDateTime =
        sqlx::query_scalar("SELECT ends_at FROM activity_sessions WHERE id = $1")
            .bind(id)
            .fetch_one(&rig.app.db)
            .await
            .unwrap();
    assert!(
        shell.closed_within(Duration::from_secs(8)).await.is_some(),
        "{}",
        shell.seen
    );
    let late = time::OffsetDateTime::now_utc() - ends_at;
    assert!(
        late <= time::Duration::seconds(2),
        "closed {late} after the end"
    );
    assert!(
        shell
            .seen
            .contains("Portcullis: the session's window ended."),
        "{}",
        shell.seen
    );
}
