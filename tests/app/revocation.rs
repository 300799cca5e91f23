//! Revoking access ends access (issue 13): disabling a user, disabling or narrowing a policy,
//! demotion and sign-out end sessions, refuse approvals and close event streams; the
//! connection string dies with a lock; a non-approver learns nothing from a decision.

use std::time::Duration;

use portcullis::domain::role::Role;
use reqwest::StatusCode;
use uuid::Uuid;

use crate::support::{TestApp, new_client, spawn_app};
use crate::wizard::{Request, request};

const DEMO: &str = "portcullis-demo";

async fn demo() -> TestApp {
    let app = spawn_app().await;
    app.seed_demo().await;
    app
}

async fn signed_in(app: &TestApp, user: &str) -> reqwest::Client {
    let c = new_client();
    let page = app.login_with(&c, user, DEMO).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{user} signs in");
    c
}

/// `who` asks for `activity` on `resources`; returns the new sessions' ids in order.
async fn ask(
    app: &TestApp,
    who: &reqwest::Client,
    activity: &str,
    policy: Option<&str>,
    resources: &[&str],
) -> Vec<Uuid> {
    let page = request(
        app,
        who,
        &Request {
            activity,
            policy,
            resources,
            notes: "Maintenance",
            ticket: "",
            at: None,
        },
    )
    .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    let mut ids = Vec::new();
    for r in resources {
        ids.push(
            sqlx::query_scalar(
                "SELECT id FROM activity_sessions WHERE resource_name = $1
                 ORDER BY created_at DESC LIMIT 1",
            )
            .bind(r)
            .fetch_one(&app.db)
            .await
            .unwrap(),
        );
    }
    ids
}

/// Decides on `ids` as `who`; returns the flash messages that follow.
async fn decide(app: &TestApp, who: &reqwest::Client, ids: &[Uuid], decision: &str) -> Vec<String> {
    let ids: Vec<String> = ids.iter().map(Uuid::to_string).collect();
    let mut form: Vec<(&str, &str)> = ids.iter().map(|id| ("id", id.as_str())).collect();
    form.push(("decision", decision));
    form.push(("comment", "ok"));
    let page = app.post_with(who, "/approvals/decide", &form).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    app.get_with(who, page.location()).await.texts(".flash")
}

/// alice's Linux break-glass sessions on `resources` (ephemeral accounts with passwords),
/// approved by bob and so Available.
async fn available(app: &TestApp, alice: &reqwest::Client, resources: &[&str]) -> Vec<Uuid> {
    let ids = ask(app, alice, "Linux break-glass", None, resources).await;
    let bob = signed_in(app, "bob").await;
    decide(app, &bob, &ids, "approve").await;
    for id in &ids {
        assert_eq!(status(app, *id).await, "available");
    }
    ids
}

async fn status(app: &TestApp, id: Uuid) -> String {
    sqlx::query_scalar("SELECT status::text FROM activity_sessions WHERE id = $1")
        .bind(id)
        .fetch_one(&app.db)
        .await
        .unwrap()
}

/// The session's last event: kind and comment.
async fn last_event(app: &TestApp, id: Uuid) -> (String, String) {
    sqlx::query_as(
        "SELECT kind::text, comment FROM session_events WHERE session_id = $1 ORDER BY id DESC LIMIT 1",
    )
    .bind(id)
    .fetch_one(&app.db)
    .await
    .unwrap()
}

async fn has_password(app: &TestApp, id: Uuid) -> bool {
    sqlx::query_scalar(
        "SELECT password_ciphertext IS NOT NULL FROM activity_sessions WHERE id = $1",
    )
    .bind(id)
    .fetch_one(&app.db)
    .await
    .unwrap()
}

async fn id_of(app: &TestApp, table: &str, name: &str) -> String {
    let column = if table == "users" { "username" } else { "name" };
    let id: Uuid = sqlx::query_scalar(&format!("SELECT id FROM {table} WHERE {column} = $1"))
        .bind(name)
        .fetch_one(&app.db)
        .await
        .unwrap();
    id.to_string()
}

async fn open_stream(app: &TestApp, client: &reqwest::Client) -> reqwest::Response {
    let response = client.get(app.url("/events")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response
}

/// Whether the stream's body ends within `wait` (a healthy stream stays open ten minutes).
async fn ends_within(mut stream: reqwest::Response, wait: Duration) -> bool {
    tokio::time::timeout(wait, async {
        while let Ok(Some(_)) = stream.chunk().await {}
    })
    .await
    .is_ok()
}

async fn disable_policy_behind_the_scenes(app: &TestApp, name: &str) {
    sqlx::query("UPDATE access_policies SET enabled = false WHERE name = $1")
        .bind(name)
        .execute(&app.db)
        .await
        .unwrap();
}

#[tokio::test]
async fn disabling_a_user_ends_their_sessions_withdraws_their_requests_and_closes_their_stream() {
    let app = demo().await;
    let alice = signed_in(&app, "alice").await;
    let live = available(&app, &alice, &["lnx-web-01"]).await[0];
    let shown = app
        .post_with(&alice, &format!("/sessions/{live}/connection-string"), &[])
        .await;
    let conn = shown.texts("#connection-string")[0].clone();
    let waiting = ask(
        &app,
        &alice,
        "Linux administration",
        Some("Linux operations"),
        &["lnx-web-02"],
    )
    .await[0];
    let stream = open_stream(&app, &alice).await;

    let carol = signed_in(&app, "carol").await;
    let alice_id = id_of(&app, "users", "alice").await;
    let page = app
        .post_with(&carol, &format!("/admin/users/{alice_id}/disable"), &[])
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);

    assert!(
        ends_within(stream, Duration::from_secs(5)).await,
        "alice's open event stream closes at once"
    );
    for id in [live, waiting] {
        assert_eq!(status(&app, id).await, "canceled");
        assert_eq!(
            last_event(&app, id).await,
            (
                "revoked".to_owned(),
                "The requester's account was disabled by carol.".to_owned()
            )
        );
    }
    assert!(!has_password(&app, live).await, "the password is gone");
    assert_eq!(
        portcullis::db::sessions::verify_connection_string(&app.db, &app.secrets, &conn)
            .await
            .unwrap(),
        None,
        "the connection string seen before is dead"
    );
    assert_eq!(
        app.get_with(&alice, &format!("/sessions/{live}/connect"))
            .await
            .status,
        StatusCode::SEE_OTHER,
        "alice is signed out"
    );

    let bob = signed_in(&app, "bob").await;
    let flashes = decide(&app, &bob, &[waiting], "approve").await;
    assert_eq!(flashes.len(), 1);
    assert!(
        flashes[0].starts_with("This request was already canceled by carol at "),
        "{flashes:?}"
    );
    assert_eq!(status(&app, waiting).await, "canceled");
}

#[tokio::test]
async fn disabling_a_user_from_the_command_line_ends_their_sessions_too() {
    let app = demo().await;
    let alice = signed_in(&app, "alice").await;
    let id = ask(
        &app,
        &alice,
        "Linux administration",
        Some("Linux self-service"),
        &["lnx-app-02"],
    )
    .await[0];
    assert_eq!(status(&app, id).await, "available");
    // What `portcullis user disable --username alice` runs.
    let mut tx = app.db.begin().await.unwrap();
    portcullis::db::users::set_disabled(
        &mut tx,
        &portcullis::db::audit::Actor::command_line(),
        portcullis::db::users::Who::Username("alice"),
        true,
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(status(&app, id).await, "canceled");
    assert_eq!(
        last_event(&app, id).await,
        (
            "revoked".to_owned(),
            "The requester's account was disabled (command line).".to_owned()
        )
    );
}

#[tokio::test]
async fn under_a_disabled_policy_approve_extend_and_reveal_are_refused_and_the_sessions_end() {
    let app = demo().await;
    let alice = signed_in(&app, "alice").await;
    let live = available(&app, &alice, &["lnx-web-01", "lnx-web-03"]).await;
    let (to_extend, to_reveal) = (live[0], live[1]);
    let waiting = ask(
        &app,
        &alice,
        "Linux administration",
        Some("Linux operations"),
        &["lnx-web-02"],
    )
    .await[0];
    disable_policy_behind_the_scenes(&app, "Linux operations").await;
    let why = "The policy that granted this session (Linux operations) is disabled.";

    let bob = signed_in(&app, "bob").await;
    assert_eq!(
        decide(&app, &bob, &[waiting], "approve").await,
        [format!("{why} The request was canceled.")]
    );
    assert_eq!(status(&app, waiting).await, "canceled");
    assert_eq!(
        last_event(&app, waiting).await,
        ("revoked".to_owned(), why.to_owned())
    );

    let page = app
        .post_with(&alice, &format!("/sessions/{to_extend}/extend"), &[])
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(
        app.get_with(&alice, page.location()).await.texts(".flash"),
        [format!("{why} The session was ended.")]
    );
    assert_eq!(status(&app, to_extend).await, "canceled");
    let extensions: i32 =
        sqlx::query_scalar("SELECT extensions_used FROM activity_sessions WHERE id = $1")
            .bind(to_extend)
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(extensions, 0, "not extended");

    let sealed: Vec<u8> =
        sqlx::query_scalar("SELECT password_ciphertext FROM activity_sessions WHERE id = $1")
            .bind(to_reveal)
            .fetch_one(&app.db)
            .await
            .unwrap();
    let secret = app.secrets.open(to_reveal, &sealed).unwrap();
    let page = app
        .post_with(&alice, &format!("/sessions/{to_reveal}/reveal"), &[])
        .await;
    assert_eq!(page.status, StatusCode::CONFLICT);
    assert_eq!(
        page.texts("#refusal"),
        [format!("{why} The session was ended.")]
    );
    assert!(!page.body.contains(&secret), "no password");
    assert_eq!(status(&app, to_reveal).await, "canceled");
    assert!(!has_password(&app, to_reveal).await);
    let kinds: Vec<String> = sqlx::query_scalar(
        "SELECT kind::text FROM session_events WHERE session_id = $1 ORDER BY id",
    )
    .bind(to_reveal)
    .fetch_all(&app.db)
    .await
    .unwrap();
    assert!(
        !kinds.contains(&"password_revealed".to_owned()),
        "{kinds:?}"
    );
}

#[tokio::test]
async fn leaving_the_group_a_policy_names_refuses_connect() {
    let app = demo().await;
    let alice = signed_in(&app, "alice").await;
    let id = ask(
        &app,
        &alice,
        "Windows server administration",
        None,
        &["win-srv-01"],
    )
    .await[0];
    let bob = signed_in(&app, "bob").await;
    decide(&app, &bob, &[id], "approve").await;
    assert_eq!(status(&app, id).await, "available");
    sqlx::query(
        "DELETE FROM group_members WHERE user_id = (SELECT id FROM users WHERE username = 'alice')
           AND group_id = (SELECT id FROM groups WHERE name = 'Operators')",
    )
    .execute(&app.db)
    .await
    .unwrap();

    let page = app
        .get_with(&alice, &format!("/sessions/{id}/connect"))
        .await;
    assert_eq!(page.status, StatusCode::CONFLICT);
    assert_eq!(
        page.texts("#refusal"),
        [
            "The policy Windows operations no longer grants this session: the requester is no longer one of its members. The session was ended."
        ]
    );
    assert_eq!(status(&app, id).await, "canceled");
}

#[tokio::test]
async fn removing_a_member_from_a_group_a_policy_names_warns_first_and_ends_their_session() {
    let app = demo().await;
    let alice = signed_in(&app, "alice").await;
    let id = ask(
        &app,
        &alice,
        "Windows server administration",
        None,
        &["win-srv-02"],
    )
    .await[0];
    let bob = signed_in(&app, "bob").await;
    decide(&app, &bob, &[id], "approve").await;
    assert_eq!(status(&app, id).await, "available");
    let group = id_of(&app, "groups", "Operators").await;
    let erin = id_of(&app, "users", "erin").await;
    let form = [
        ("name", "Operators"),
        ("description", "Day-to-day operations staff."),
        ("members", erin.as_str()),
        ("go", "save"),
    ];
    let carol = signed_in(&app, "carol").await;
    let path = format!("/admin/groups/{group}");
    let page = app.post_with(&carol, &path, &form).await;
    assert_eq!(page.status, StatusCode::CONFLICT, "{}", page.body);
    assert_eq!(page.texts("#ending-sessions tbody tr").len(), 1);
    let members: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM group_members WHERE group_id = (SELECT id FROM groups WHERE name = 'Operators')",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(members, 2, "nothing saved without the confirmation");
    assert_eq!(status(&app, id).await, "available");

    let mut confirmed = form.to_vec();
    confirmed.push(("confirm", "1"));
    let page = app.post_with(&carol, &path, &confirmed).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    assert_eq!(status(&app, id).await, "canceled");
    assert_eq!(
        last_event(&app, id).await.1,
        "Ended by Carol Chen (changing the group Operators): The policy Windows operations no longer grants this session: the requester is no longer one of its members."
    );
}

#[tokio::test]
async fn taking_a_users_groups_away_warns_first_and_ends_their_session() {
    let app = demo().await;
    let alice = signed_in(&app, "alice").await;
    let id = ask(
        &app,
        &alice,
        "Windows server administration",
        None,
        &["win-srv-03"],
    )
    .await[0];
    let bob = signed_in(&app, "bob").await;
    decide(&app, &bob, &[id], "approve").await;
    assert_eq!(status(&app, id).await, "available");
    let carol = signed_in(&app, "carol").await;
    let path = format!("/admin/users/{}", id_of(&app, "users", "alice").await);
    let form = [
        ("display_name", "Alice Archer"),
        ("role", "user"),
        ("time_zone", "Europe/Berlin"),
        ("go", "save"),
    ];
    let page = app.post_with(&carol, &path, &form).await;
    assert_eq!(page.status, StatusCode::CONFLICT, "{}", page.body);
    assert!(page.texts("#ending-sessions tbody tr")[0].contains("win-srv-03"));
    assert_eq!(status(&app, id).await, "available", "nothing saved yet");

    let mut confirmed = form.to_vec();
    confirmed.push(("confirm", "1"));
    let page = app.post_with(&carol, &path, &confirmed).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    assert_eq!(status(&app, id).await, "canceled");
    let groups: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM group_members WHERE user_id = (SELECT id FROM users WHERE username = 'alice')",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(groups, 0);
}

#[tokio::test]
async fn the_worker_ends_a_pending_session_whose_policy_was_disabled_instead_of_starting_it() {
    let app = demo().await;
    let alice = signed_in(&app, "alice").await;
    let date = (time::OffsetDateTime::now_utc() + time::Duration::days(2))
        .date()
        .to_string();
    let page = request(
        &app,
        &alice,
        &Request {
            activity: "Linux administration",
            policy: Some("Linux self-service"),
            resources: &["lnx-app-01"],
            notes: "Later",
            ticket: "",
            at: Some((&date, "10:00")),
        },
    )
    .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    let id: Uuid = sqlx::query_scalar("SELECT id FROM activity_sessions")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(status(&app, id).await, "pending");
    // Its start comes (moved into the past), after the policy was disabled.
    sqlx::query(
        "UPDATE activity_sessions SET requested_start = now() - interval '1 minute',
                ends_at = now() + interval '59 minutes' WHERE id = $1",
    )
    .bind(id)
    .execute(&app.db)
    .await
    .unwrap();
    disable_policy_behind_the_scenes(&app, "Linux self-service").await;

    portcullis::worker::tick(&app.db, &app.secrets)
        .await
        .unwrap();
    assert_eq!(status(&app, id).await, "canceled");
    assert_eq!(
        last_event(&app, id).await,
        (
            "revoked".to_owned(),
            "The policy that granted this session (Linux self-service) is disabled.".to_owned()
        )
    );
}

/// The policy form's fields for Linux self-service as it is, with `resources` instead.
async fn self_service_form(app: &TestApp, resources: &[&str]) -> Vec<(String, String)> {
    let mut form = vec![
        ("name".to_owned(), "Linux self-service".to_owned()),
        (
            "description".to_owned(),
            "Self-service shell access to the application servers.".to_owned(),
        ),
        (
            "profile".to_owned(),
            id_of(app, "connection_profiles", "Self-service").await,
        ),
        ("users".to_owned(), id_of(app, "users", "alice").await),
        ("users".to_owned(), id_of(app, "users", "erin").await),
        (
            "activities".to_owned(),
            id_of(app, "activities", "Linux administration").await,
        ),
        ("go".to_owned(), "save".to_owned()),
    ];
    for r in resources {
        form.push(("resources".to_owned(), id_of(app, "resources", r).await));
    }
    form
}

#[tokio::test]
async fn narrowing_a_policy_warns_first_and_ends_the_live_session_once_confirmed() {
    let app = demo().await;
    let alice = signed_in(&app, "alice").await;
    // Self-service: no approval, Available at once.
    let id = ask(
        &app,
        &alice,
        "Linux administration",
        Some("Linux self-service"),
        &["lnx-app-01"],
    )
    .await[0];
    assert_eq!(status(&app, id).await, "available");
    let policy = id_of(&app, "access_policies", "Linux self-service").await;
    let carol = signed_in(&app, "carol").await;
    let granted = || async {
        let n: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM policy_resources pr JOIN resources r ON r.id = pr.resource_id
             WHERE r.name = 'lnx-app-01'
               AND pr.policy_id = (SELECT id FROM access_policies WHERE name = 'Linux self-service')",
        )
        .fetch_one(&app.db)
        .await
        .unwrap();
        n == 1
    };

    // lnx-app-01 comes off the list: the warning comes first, and nothing is saved.
    let form = self_service_form(&app, &["lnx-app-02", "lnx-app-03"]).await;
    let fields: Vec<(&str, &str)> = form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let page = app
        .post_with(&carol, &format!("/admin/policies/{policy}"), &fields)
        .await;
    assert_eq!(page.status, StatusCode::CONFLICT, "{}", page.body);
    assert!(page.texts("#revocation-warning")[0].contains("ends 1 session"));
    let rows = page.texts("#ending-sessions tbody tr");
    assert_eq!(rows.len(), 1);
    assert!(
        rows[0].contains("Alice Archer") && rows[0].contains("lnx-app-01"),
        "{rows:?}"
    );
    assert!(granted().await, "nothing saved without the confirmation");
    assert_eq!(status(&app, id).await, "available");

    // The warning page's own form confirms.
    let html = page.html();
    let hidden = scraper::Selector::parse(&format!(
        r#"form[action="/admin/policies/{policy}"] input[type=hidden]"#
    ))
    .unwrap();
    let confirm: Vec<(String, String)> = html
        .select(&hidden)
        .map(|e| {
            (
                e.value().attr("name").unwrap().to_owned(),
                e.value().attr("value").unwrap().to_owned(),
            )
        })
        .collect();
    let mut again: Vec<(&str, &str)> = confirm
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    again.push(("go", "save"));
    let page = app
        .post_raw_with(&carol, &format!("/admin/policies/{policy}"), &again)
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    assert_eq!(
        app.get_with(&carol, page.location()).await.texts(".flash"),
        [
            "Saved Linux self-service.",
            "Ended 1 session the change no longer grants."
        ]
    );
    assert!(!granted().await);
    assert_eq!(status(&app, id).await, "canceled");
    assert_eq!(
        last_event(&app, id).await,
        (
            "revoked".to_owned(),
            "Ended by Carol Chen (changing the policy Linux self-service): The policy Linux self-service no longer grants access to lnx-app-01.".to_owned()
        )
    );
}

#[tokio::test]
async fn demotion_closes_the_event_stream() {
    let app = demo().await;
    app.create_user("zed", Role::Admin).await;
    let zed = new_client();
    app.login_with(&zed, "zed", crate::support::PASSWORD).await;
    let stream = open_stream(&app, &zed).await;
    let carol = signed_in(&app, "carol").await;
    let zed_id = id_of(&app, "users", "zed").await;
    let page = app
        .post_with(
            &carol,
            &format!("/admin/users/{zed_id}"),
            &[
                ("display_name", "zed"),
                ("role", "user"),
                ("time_zone", "UTC"),
                ("go", "save"),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    assert!(
        ends_within(stream, Duration::from_secs(5)).await,
        "a stream opened as an administrator ends with the role"
    );
    // The next one is zed's as a user.
    open_stream(&app, &zed).await;
}

#[tokio::test]
async fn signing_out_closes_the_event_stream() {
    let app = demo().await;
    let alice = signed_in(&app, "alice").await;
    let stream = open_stream(&app, &alice).await;
    let page = app.post_with(&alice, "/logout", &[]).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert!(ends_within(stream, Duration::from_secs(5)).await);
}

#[tokio::test]
async fn one_user_may_open_only_a_few_event_streams() {
    let app = demo().await;
    let alice = signed_in(&app, "alice").await;
    let mut open = Vec::new();
    for _ in 0..portcullis::live::MAX_STREAMS_PER_USER {
        open.push(open_stream(&app, &alice).await);
    }
    let refused = alice.get(app.url("/events")).send().await.unwrap();
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(refused.text().await.unwrap().contains("close some pages"));
    // Another user is not held back by alice's.
    let erin = signed_in(&app, "erin").await;
    open_stream(&app, &erin).await;
    // A closed stream gives its place back.
    drop(open.pop());
    let reopened = settled_stream(&app, &alice).await;
    assert_eq!(reopened, StatusCode::OK);
}

/// Opens a stream, retrying for a moment while a just-closed one is being let go.
async fn settled_stream(app: &TestApp, client: &reqwest::Client) -> StatusCode {
    crate::support::settled(
        || async {
            client
                .get(app.url("/events"))
                .send()
                .await
                .unwrap()
                .status()
        },
        |s| *s == StatusCode::OK,
    )
    .await
}

#[tokio::test]
async fn a_connection_string_stops_verifying_after_a_lock_and_a_new_one_is_shown_after_unlock() {
    let app = demo().await;
    let alice = signed_in(&app, "alice").await;
    let id = available(&app, &alice, &["lnx-web-04"]).await[0];
    let verify = |text: String| {
        let app = &app;
        async move {
            portcullis::db::sessions::verify_connection_string(&app.db, &app.secrets, &text)
                .await
                .unwrap()
        }
    };
    let page = app
        .get_with(&alice, &format!("/sessions/{id}/connect"))
        .await;
    assert!(
        page.texts("#connection-string").is_empty(),
        "only on demand"
    );
    let page = app
        .post_with(&alice, &format!("/sessions/{id}/connection-string"), &[])
        .await;
    assert_eq!(page.status, StatusCode::OK);
    let seen = page.texts("#connection-string")[0].clone();
    assert_eq!(verify(seen.clone()).await, Some(id));
    assert_eq!(
        last_event(&app, id).await,
        (
            "connection_string_shown".to_owned(),
            "The connection string was shown.".to_owned()
        )
    );

    let carol = signed_in(&app, "carol").await;
    let page = app
        .post_with(
            &carol,
            &format!("/admin/sessions/{id}/lock"),
            &[("message", "Audit")],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(verify(seen.clone()).await, None, "locked: dead");
    app.post_with(&carol, &format!("/admin/sessions/{id}/unlock"), &[])
        .await;
    assert_eq!(status(&app, id).await, "available");
    assert_eq!(
        verify(seen.clone()).await,
        None,
        "unlocked: the string seen before stays dead"
    );
    let page = app
        .post_with(&alice, &format!("/sessions/{id}/connection-string"), &[])
        .await;
    let fresh = page.texts("#connection-string")[0].clone();
    assert_ne!(fresh, seen);
    assert_eq!(verify(fresh.clone()).await, Some(id));

    // Locked again, then the policy is disabled: Unlock would give access back, so the
    // session ends instead.
    app.post_with(
        &carol,
        &format!("/admin/sessions/{id}/lock"),
        &[("message", "Audit")],
    )
    .await;
    disable_policy_behind_the_scenes(&app, "Linux operations").await;
    let page = app
        .post_with(&carol, &format!("/admin/sessions/{id}/unlock"), &[])
        .await;
    assert_eq!(
        app.get_with(&carol, page.location()).await.texts(".flash"),
        [
            "The policy that granted this session (Linux operations) is disabled. The session was ended instead of unlocked."
        ]
    );
    assert_eq!(status(&app, id).await, "canceled");
    assert_eq!(verify(fresh).await, None);
}

#[tokio::test]
async fn a_non_approver_learns_nothing_from_deciding_on_someone_elses_request() {
    let app = demo().await;
    let alice = signed_in(&app, "alice").await;
    let id = ask(
        &app,
        &alice,
        "Linux administration",
        Some("Linux operations"),
        &["lnx-web-05"],
    )
    .await[0];
    let bob = signed_in(&app, "bob").await;
    decide(&app, &bob, &[id], "approve").await;
    assert_eq!(status(&app, id).await, "available");

    let erin = signed_in(&app, "erin").await;
    let theirs = decide(&app, &erin, &[id], "approve").await;
    let unknown = decide(&app, &erin, &[Uuid::now_v7()], "approve").await;
    assert_eq!(theirs, unknown);
    assert_eq!(theirs, ["This request no longer exists."]);
    assert_eq!(status(&app, id).await, "available");
}
