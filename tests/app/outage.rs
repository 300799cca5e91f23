//! PostgreSQL going away and coming back: 503 while it is down, recovery without a restart.

use std::time::{Duration, Instant};

use portcullis::domain::role::Role;
use portcullis::pg_cluster::cluster::Cluster;
use reqwest::StatusCode;

use crate::support::{settings, spawn_app_on, start_cluster};

#[tokio::test]
async fn pages_answer_503_while_the_database_is_down_and_recover_after() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    let cluster = tokio::task::spawn_blocking(move || start_cluster(&path))
        .await
        .unwrap();
    portcullis::pg_cluster::ensure_database(&cluster, "portcullis")
        .await
        .unwrap();
    let options = cluster.connect_options("portcullis");
    {
        let pool = sqlx::PgPool::connect_with(options.clone()).await.unwrap();
        portcullis::db::MIGRATOR.run(&pool).await.unwrap();
        pool.close().await;
    }
    let app = spawn_app_on(options, settings()).await;
    app.create_user("alice", Role::User).await;
    app.login("alice").await;
    assert_eq!(app.get("/dashboard").await.status, StatusCode::OK);

    tokio::task::spawn_blocking(move || cluster.stop().unwrap())
        .await
        .unwrap();

    for path in ["/dashboard", "/login", "/readyz"] {
        let page = app.get(path).await;
        assert_eq!(page.status, StatusCode::SERVICE_UNAVAILABLE, "{path}");
    }
    let page = app.get("/dashboard").await;
    assert_eq!(page.texts("h1"), ["Temporarily unavailable"]);
    assert!(!page.body.contains("sqlx"), "no internals on the page");
    assert_eq!(page.headers["retry-after"], "5");
    assert_eq!(
        app.get("/healthz").await.status,
        StatusCode::OK,
        "the process itself is fine"
    );

    let path = dir.path().to_path_buf();
    let cluster: Cluster = tokio::task::spawn_blocking(move || start_cluster(&path))
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let page = app.get("/dashboard").await;
        if page.status == StatusCode::OK {
            assert_eq!(page.texts(".account-name"), ["alice"], "still signed in");
            break;
        }
        assert!(Instant::now() < deadline, "no recovery: {}", page.status);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    app.db.close().await;
    tokio::task::spawn_blocking(move || cluster.stop().unwrap())
        .await
        .unwrap();
}

#[tokio::test]
async fn a_sign_in_that_cannot_be_saved_answers_503_with_the_error_page() {
    let app = crate::support::spawn_app().await;
    app.create_user("alice", Role::User).await;
    app.login("alice").await;
    // The database refuses to store sessions, as it does when it shuts down between a
    // request loading its session and saving it.
    for statement in [
        "CREATE FUNCTION refuse_session_writes() RETURNS trigger LANGUAGE plpgsql AS
         $$ BEGIN RAISE EXCEPTION 'shutting down' USING ERRCODE = '57P01'; END $$",
        "CREATE TRIGGER refuse_session_writes BEFORE INSERT OR UPDATE ON web_sessions
         FOR EACH ROW EXECUTE FUNCTION refuse_session_writes()",
    ] {
        sqlx::query(statement).execute(&app.db).await.unwrap();
    }

    // Opening the wizard stores a new draft in the session.
    let page = app.get("/wizard").await;
    assert_eq!(page.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(page.texts("h1"), ["Temporarily unavailable"]);
    assert_eq!(page.headers["retry-after"], "5");
}
