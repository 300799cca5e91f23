//! Hostile and odd input: a NUL (or another control character) anywhere a request carries
//! text is refused with a 400 page naming the field, on every route of the router's table,
//! and changes nothing.

use portcullis::domain::role::Role;
use reqwest::StatusCode;

use crate::admin_resources::post_multipart;
use crate::routes::{Access, path, routes};
use crate::support::{PASSWORD, Page, TestApp, spawn_app};
use crate::wizard::{Request, activity_value, request, resource_ids};

const DEMO: &str = "portcullis-demo";

/// A fingerprint of every table but the browser sessions (which reading a form's CSRF token
/// touches): equal fingerprints, nothing stored changed.
async fn fingerprint(app: &TestApp) -> Vec<(String, String)> {
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables
         WHERE table_schema = 'public' AND table_type = 'BASE TABLE'
           AND table_name <> 'web_sessions'
         ORDER BY 1",
    )
    .fetch_all(&app.db)
    .await
    .unwrap();
    let mut out = Vec::new();
    for table in tables {
        let digest: String = sqlx::query_scalar(&format!(
            "SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) FROM \"{table}\" t"
        ))
        .fetch_one(&app.db)
        .await
        .unwrap();
        out.push((table, digest));
    }
    out
}

fn assert_refused(page: &Page, what: &str) {
    assert_eq!(
        page.status,
        StatusCode::BAD_REQUEST,
        "{what}: {}",
        page.body
    );
    let message = page.texts("main p").join(" ");
    assert!(
        message.contains("contains a character that cannot be stored (NUL). Nothing was changed."),
        "{what}: {message}"
    );
}

#[tokio::test]
async fn a_nul_is_refused_on_every_route_and_changes_nothing() {
    let app = spawn_app().await;
    app.seed_demo().await;
    let alice = app.create_user("alice2", Role::User).await;
    app.create_user("carol2", Role::Admin).await;
    app.login("carol2").await;
    let before = fingerprint(&app).await;

    let text_fields = [
        "username",
        "password",
        "notes",
        "ticket",
        "comment",
        "name",
        "display_name",
        "description",
        "q",
        "code",
    ];
    for (method, template, access) in routes() {
        let p = path(&template, alice);
        let page = match method {
            "GET" => app.get(&format!("{p}?q=%00&page=1")).await,
            _ => {
                // Every field a form of ours might have, one of them with a NUL.
                let mut form: Vec<(&str, &str)> = text_fields.iter().map(|f| (*f, "x")).collect();
                form.push(("notes", "before\0after"));
                if access == Access::Public {
                    form.push(("next", ""));
                }
                app.post(&p, &form).await
            }
        };
        assert_refused(&page, &format!("{method} {p}"));
    }
    // The upload's text field too.
    let page = post_multipart(
        &app,
        "/admin/resources/import",
        None,
        None,
        "name,kind,platform,address,port,description\nweb\0,server,Linux,h,22,d",
    )
    .await;
    assert_refused(&page, "CSV import");
    assert_eq!(fingerprint(&app).await, before);
    // Still signed in and working.
    assert_eq!(app.get("/dashboard").await.status, StatusCode::OK);
}

#[tokio::test]
async fn the_message_names_the_field_and_tabs_and_line_breaks_pass() {
    let app = spawn_app().await;
    app.create_user("alice", Role::User).await;
    // The sign-in form itself: a NUL in the name is refused, not a 500.
    let token = app.csrf_with(&app.client).await;
    let page = app
        .post_raw(
            "/login",
            &[
                ("csrf_token", &token),
                ("username", "alice\0"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_refused(&page, "sign-in");
    assert!(page.body.contains("Username contains"), "{}", page.body);
    let failures: i32 = sqlx::query_scalar("SELECT failed_logins FROM users")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(failures, 0);

    app.login("alice").await;
    // Searches and filters.
    for url in [
        "/dashboard?q=a%00b",
        "/dashboard/historical?resource=%00",
        "/dashboard/historical.csv?q=%00",
        "/wizard/resources?q=%00",
    ] {
        assert_refused(&app.get(url).await, url);
    }
    let page = app.get("/dashboard?q=%1B%5B2J").await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert!(
        page.body.contains(
            "Search contains a character that cannot be stored (control character U+001B)"
        ),
        "{}",
        page.body
    );
    // An escaped NUL in the path.
    assert_eq!(
        app.get("/sessions/%00").await.status,
        StatusCode::BAD_REQUEST
    );
    // Tab and line breaks are text.
    assert_eq!(
        app.get("/dashboard?q=a%09b%0D%0A").await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn notes_with_a_nul_are_refused_and_finish_still_works() {
    let app = spawn_app().await;
    app.seed_demo().await;
    let page = app.login_with(&app.client, "alice", DEMO).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);

    let value = activity_value(&app, &app.client, "Web console access", None).await;
    app.post(
        "/wizard/request-type",
        &[("activity", &value), ("go", "next")],
    )
    .await;
    let ids = resource_ids(&app, &app.client, &["Grafana"]).await;
    app.post(
        "/wizard/resources",
        &[("shown", &ids[0]), ("pick", &ids[0]), ("go", "next")],
    )
    .await;
    let page = app
        .post(
            "/wizard/notes",
            &[
                ("notes", "restart\0 the app"),
                ("ticket", ""),
                ("go", "next"),
            ],
        )
        .await;
    assert_refused(&page, "notes");
    assert!(page.body.contains("Notes contains"), "{}", page.body);
    // The draft did not take the notes: the wizard still waits at Notes.
    assert_eq!(
        app.get("/wizard/scheduling").await.location(),
        "/wizard/notes"
    );

    // Walking on with clean notes reaches Finish, which creates the request.
    let finish = request(
        &app,
        &app.client,
        &Request {
            activity: "Web console access",
            policy: None,
            resources: &["Grafana"],
            notes: "restart\tthe app\r\nand check",
            ticket: "",
            at: None,
        },
    )
    .await;
    assert_eq!(finish.status, StatusCode::SEE_OTHER, "{}", finish.body);
    let notes: String = sqlx::query_scalar("SELECT notes FROM requests")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(notes, "restart\tthe app\r\nand check");
}

#[tokio::test]
async fn an_approval_comment_with_a_nul_is_refused() {
    let app = spawn_app().await;
    app.seed_demo().await;
    let page = app.login_with(&app.client, "alice", DEMO).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    let finish = request(
        &app,
        &app.client,
        &Request {
            activity: "Linux administration",
            policy: Some("Linux operations"),
            resources: &["lnx-web-01"],
            notes: "patching",
            ticket: "",
            at: None,
        },
    )
    .await;
    assert_eq!(finish.status, StatusCode::SEE_OTHER, "{}", finish.body);
    let session: uuid::Uuid = sqlx::query_scalar("SELECT id FROM activity_sessions")
        .fetch_one(&app.db)
        .await
        .unwrap();
    let approver = crate::support::new_client();
    app.login_with(&approver, "bob", DEMO).await;
    let before = fingerprint(&app).await;
    let page = app
        .post_with(
            &approver,
            "/approvals/decide",
            &[
                ("id", &session.to_string()),
                ("decision", "deny"),
                ("comment", "no\0"),
            ],
        )
        .await;
    assert_refused(&page, "approval comment");
    assert!(page.body.contains("Comment contains"), "{}", page.body);
    assert_eq!(fingerprint(&app).await, before);
}
