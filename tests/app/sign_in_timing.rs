//! A wrong password costs the same work whether or not the name exists: one row written and
//! one commit (the time itself is measured by `bench/login_timing.sh`, never in a test).

use portcullis::domain::role::Role;
use reqwest::StatusCode;

use crate::support::{TestApp, spawn_app};

/// Failures counted on accounts, and on the decoy rows.
async fn writes(app: &TestApp) -> (i64, i64) {
    sqlx::query_as(
        "SELECT (SELECT coalesce(sum(failed_logins), 0)::bigint FROM users),
                (SELECT sum(failures)::bigint FROM sign_in_decoys)",
    )
    .fetch_one(&app.db)
    .await
    .unwrap()
}

#[tokio::test]
async fn every_failed_sign_in_writes_one_row_whether_or_not_the_name_exists() {
    let app = spawn_app().await;
    app.create_user("alice", Role::User).await;
    let bob = app.create_user("bob", Role::User).await;
    sqlx::query("UPDATE users SET disabled = true WHERE id = $1")
        .bind(bob)
        .execute(&app.db)
        .await
        .unwrap();
    assert_eq!(writes(&app).await, (0, 0));

    for (name, expected) in [
        // An existing account: its failure count.
        ("alice", (1, 0)),
        ("ALICE", (2, 0)),
        // An unknown name, and a disabled account (whose count is not kept): a decoy row.
        ("nobody", (2, 1)),
        ("bob", (2, 2)),
    ] {
        let page = app.login_with(&app.client, name, "wrong-password").await;
        assert_eq!(page.status, StatusCode::UNAUTHORIZED, "{name}");
        assert_eq!(writes(&app).await, expected, "{name}");
    }
    // No name is kept.
    let columns: Vec<String> = sqlx::query_scalar(
        "SELECT column_name::text FROM information_schema.columns
         WHERE table_name = 'sign_in_decoys' ORDER BY 1",
    )
    .fetch_all(&app.db)
    .await
    .unwrap();
    assert_eq!(columns, ["failures", "last_at", "slot"]);
}
