//! API tokens on the Account page: created and shown once, listed, revoked; audited.

use portcullis::domain::role::Role;
use reqwest::StatusCode;

use crate::api::call;
use crate::support::spawn_app;

#[tokio::test]
async fn a_token_made_on_the_account_page_is_shown_once_works_and_stops_when_revoked() {
    let app = spawn_app().await;
    app.create_user("alice", Role::User).await;
    app.login("alice").await;
    let page = app
        .post(
            "/account/api-tokens",
            &[
                ("name", "ci deploy"),
                ("scope", "read"),
                ("scope", "request"),
                ("days", "30"),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let html = page.html();
    let input = scraper::Selector::parse("#api-token-value").unwrap();
    let token = html
        .select(&input)
        .next()
        .and_then(|e| e.value().attr("value"))
        .unwrap()
        .to_owned();
    assert!(token.starts_with("pcs_") && token.len() == 68, "{token}");
    // Only its digest is stored.
    let stored: Vec<u8> = sqlx::query_scalar("SELECT token_sha256 FROM api_tokens")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(stored, portcullis::domain::api_token::digest(&token));

    let me = call(&app, "GET", "/api/v1/me", Some(&token), None).await;
    assert_eq!(me.status, StatusCode::OK);
    assert_eq!(me.json["scopes"], serde_json::json!(["read", "request"]));

    // Listed, used, and never shown again.
    let account = app.get("/account").await;
    let rows = account.texts("#api-tokens-table tbody td");
    assert_eq!(rows[0], "ci deploy");
    assert_eq!(rows[1], "read, request");
    assert_ne!(rows[4], "Never");
    assert_eq!(rows[5], "Active");
    assert!(!account.body.contains(&token));

    let id: uuid::Uuid = sqlx::query_scalar("SELECT id FROM api_tokens")
        .fetch_one(&app.db)
        .await
        .unwrap();
    let revoked = app
        .post(&format!("/account/api-tokens/{id}/revoke"), &[])
        .await;
    assert_eq!(revoked.status, StatusCode::SEE_OTHER);
    assert_eq!(
        call(&app, "GET", "/api/v1/me", Some(&token), None)
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    let account = app.get("/account").await;
    assert_eq!(account.texts("#api-tokens-table tbody td")[5], "Revoked");

    let audit: Vec<(String, String)> = sqlx::query_as(
        "SELECT action, object_name FROM admin_audit WHERE object_kind = 'api_token' ORDER BY id",
    )
    .fetch_all(&app.db)
    .await
    .unwrap();
    assert_eq!(
        audit,
        [
            ("create".to_owned(), "ci deploy".to_owned()),
            ("revoke".to_owned(), "ci deploy".to_owned())
        ]
    );
}

#[tokio::test]
async fn a_token_with_bad_input_is_refused_with_messages_and_nothing_is_stored() {
    let app = spawn_app().await;
    app.create_user("alice", Role::User).await;
    app.login("alice").await;
    let page = app
        .post(
            "/account/api-tokens",
            &[("name", ""), ("scope", "root"), ("days", "400")],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    let account = app.get("/account").await;
    let flashes = account.texts(".flash").join(" ");
    assert!(flashes.contains("Give the token a name"), "{flashes}");
    assert!(flashes.contains("Unknown scope"), "{flashes}");
    assert!(flashes.contains("1 to 365"), "{flashes}");
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM api_tokens")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(count, 0);
}

#[tokio::test]
async fn someone_elses_token_cannot_be_revoked() {
    let app = spawn_app().await;
    app.create_user("alice", Role::User).await;
    app.create_user("bob", Role::User).await;
    let bobs = crate::api::token(&app, "bob", &[portcullis::domain::api_token::Scope::Read]).await;
    let id: uuid::Uuid = sqlx::query_scalar("SELECT id FROM api_tokens")
        .fetch_one(&app.db)
        .await
        .unwrap();
    app.login("alice").await;
    app.post(&format!("/account/api-tokens/{id}/revoke"), &[])
        .await;
    assert_eq!(
        call(&app, "GET", "/api/v1/me", Some(&bobs), None)
            .await
            .status,
        StatusCode::OK
    );
}

/// The test database's URL, for the command line.
fn database_url(options: &sqlx::postgres::PgConnectOptions) -> String {
    let database = options.get_database().unwrap();
    if let Ok(url) = std::env::var("DATABASE_URL") {
        // The suite's own server: the same address, this test's database.
        let (server, _) = url.rsplit_once('/').unwrap();
        return format!("{server}/{database}");
    }
    let socket = options
        .get_socket()
        .expect("the suite's cluster listens on a socket");
    format!(
        "postgres://{}@localhost:{}/{database}?host={}",
        options.get_username(),
        options.get_port(),
        socket.display()
    )
}

#[tokio::test]
async fn the_command_line_creates_a_token_for_a_service_account_and_prints_it_once() {
    let app = spawn_app().await;
    app.create_user("deploybot", Role::User).await;
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_portcullis"))
            .env("DATABASE_URL", database_url(&app.options))
            .env("RUST_LOG", "warn")
            .args(args)
            .output()
            .unwrap()
    };
    let output = run(&[
        "token",
        "create",
        "--user",
        "deploybot",
        "--name",
        "pipeline",
        "--scopes",
        "read,request",
        "--days",
        "7",
    ]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let token = String::from_utf8(output.stdout).unwrap().trim().to_owned();
    assert!(token.starts_with("pcs_") && token.len() == 68, "{token}");
    let me = call(&app, "GET", "/api/v1/me", Some(&token), None).await;
    assert_eq!(me.status, StatusCode::OK);
    assert_eq!(me.json["username"], "deploybot");
    assert_eq!(me.json["scopes"], serde_json::json!(["read", "request"]));
    let audited: String = sqlx::query_scalar(
        "SELECT actor_name FROM admin_audit WHERE object_kind = 'api_token' AND action = 'create'",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(audited, "command line");

    // Mistakes are refused before anything is stored.
    for bad in [
        &[
            "token",
            "create",
            "--user",
            "deploybot",
            "--name",
            "x",
            "--scopes",
            "root",
        ][..],
        &[
            "token",
            "create",
            "--user",
            "deploybot",
            "--name",
            "x",
            "--days",
            "366",
        ],
        &["token", "create", "--user", "nobody", "--name", "x"],
    ] {
        let output = run(bad);
        assert!(!output.status.success(), "{bad:?}");
        assert!(output.stdout.is_empty(), "{bad:?}");
        assert!(!output.stderr.is_empty(), "{bad:?}");
    }
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM api_tokens")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(count, 1);
}
