//! The one state machine: event kinds are a PostgreSQL enum that matches the domain's, and
//! every status change goes through `db::sessions::transition`, which lets exactly one of two
//! racing changes happen.

use portcullis::db::sessions::{self, Actor, Moved, NewEvent};
use portcullis::domain::event::EventKind;
use portcullis::domain::status::{SessionStatus, Transition};
use uuid::Uuid;

use crate::connect::available;
use crate::support::spawn_demo_app;

fn system(session: Uuid, kind: EventKind, comment: &str) -> NewEvent<'_> {
    NewEvent {
        session,
        actor: Actor::System,
        kind,
        from: None,
        to: None,
        comment,
        client: None,
    }
}

async fn status(db: &sqlx::PgPool, id: Uuid) -> SessionStatus {
    sqlx::query_scalar("SELECT status FROM activity_sessions WHERE id = $1")
        .bind(id)
        .fetch_one(db)
        .await
        .unwrap()
}

/// Where a locked session came from, and the lock's message.
async fn lock_state(db: &sqlx::PgPool, id: Uuid) -> (Option<SessionStatus>, Option<String>) {
    sqlx::query_as("SELECT locked_from, lock_message FROM activity_sessions WHERE id = $1")
        .bind(id)
        .fetch_one(db)
        .await
        .unwrap()
}

#[tokio::test]
async fn the_databases_event_kinds_are_the_domains() {
    let app = spawn_demo_app().await;
    let stored: Vec<String> =
        sqlx::query_scalar("SELECT unnest(enum_range(NULL::session_event_kind))::text")
            .fetch_all(&app.db)
            .await
            .unwrap();
    let domain: Vec<&str> = EventKind::ALL.iter().map(|k| k.key()).collect();
    assert_eq!(stored, domain);
}

#[tokio::test]
async fn a_misspelt_event_kind_is_refused_and_nothing_is_written() {
    let app = spawn_demo_app().await;
    let id = available(&app, "Linux break-glass", "lnx-web-01").await;
    let before: i64 = sqlx::query_scalar("SELECT count(*) FROM session_events")
        .fetch_one(&app.db)
        .await
        .unwrap();
    let err = sqlx::query(
        "INSERT INTO session_events (session_id, actor_name, kind, comment)
         VALUES ($1, 'x', 'aproved', '')",
    )
    .bind(id)
    .execute(&app.db)
    .await
    .unwrap_err();
    assert!(
        err.to_string().contains("invalid input value for enum"),
        "{err}"
    );
    let after: i64 = sqlx::query_scalar("SELECT count(*) FROM session_events")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(before, after);
}

#[tokio::test]
async fn two_racing_ends_have_one_outcome_and_one_event() {
    let app = spawn_demo_app().await;
    let id = available(&app, "Linux break-glass", "lnx-web-01").await;
    let mut first = app.db.begin().await.unwrap();
    let mut second = app.db.begin().await.unwrap();
    let ended = sessions::transition(
        &mut first,
        Transition::Complete,
        system(id, EventKind::Ended, "first"),
    )
    .await
    .unwrap();
    // The second waits on the row lock until the first commits, then sees Completed.
    let racing = tokio::spawn(async move {
        let moved = sessions::transition(
            &mut second,
            Transition::AdminCancel,
            system(id, EventKind::Ended, "second"),
        )
        .await
        .unwrap();
        second.commit().await.unwrap();
        moved
    });
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    first.commit().await.unwrap();
    let cancel = racing.await.unwrap();
    assert_eq!(
        ended,
        Moved::Done {
            from: SessionStatus::Available,
            to: SessionStatus::Completed
        }
    );
    assert!(matches!(cancel, Moved::NotAllowed(_)), "{cancel:?}");
    assert_eq!(status(&app.db, id).await, SessionStatus::Completed);
    let ends: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM session_events WHERE session_id = $1 AND kind = 'ended'",
    )
    .bind(id)
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(ends, 1);
}

#[tokio::test]
async fn lock_keeps_where_it_was_and_its_message_and_unlock_goes_back() {
    let app = spawn_demo_app().await;
    let id = available(&app, "Linux break-glass", "lnx-web-01").await;
    let mut tx = app.db.begin().await.unwrap();
    let locked = sessions::transition(
        &mut tx,
        Transition::Lock,
        system(id, EventKind::Locked, "Incident 42"),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(
        locked,
        Moved::Done {
            from: SessionStatus::Available,
            to: SessionStatus::Locked
        }
    );
    let (from, message) = lock_state(&app.db, id).await;
    assert_eq!(from, Some(SessionStatus::Available));
    assert_eq!(message.as_deref(), Some("Incident 42"));

    // Connect is not allowed from Locked, and changes nothing.
    let mut tx = app.db.begin().await.unwrap();
    let refused = sessions::transition(
        &mut tx,
        Transition::Connect,
        system(id, EventKind::Connected, ""),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    assert!(matches!(refused, Moved::NotAllowed(_)), "{refused:?}");

    let mut tx = app.db.begin().await.unwrap();
    let unlocked = sessions::transition(
        &mut tx,
        Transition::Unlock,
        system(id, EventKind::Unlocked, "Resolved"),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(
        unlocked,
        Moved::Done {
            from: SessionStatus::Locked,
            to: SessionStatus::Available
        }
    );
    let (from, message) = lock_state(&app.db, id).await;
    assert_eq!((from, message), (None, None));
    let kinds: Vec<EventKind> = sqlx::query_scalar(
        "SELECT kind FROM session_events WHERE session_id = $1 ORDER BY id DESC LIMIT 2",
    )
    .bind(id)
    .fetch_all(&app.db)
    .await
    .unwrap();
    assert_eq!(kinds, [EventKind::Unlocked, EventKind::Locked]);
}
