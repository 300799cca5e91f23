//! `/api/v1`: tokens instead of cookies, JSON in and out, the same rules as the pages.

use portcullis::domain::api_token::{self, NewToken, Scope, Secret};
use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::support::{TestApp, spawn_demo_app};

/// A token of `username` with `scopes`, made as the Account page makes one.
pub async fn token(app: &TestApp, username: &str, scopes: &[Scope]) -> String {
    let id: Uuid = sqlx::query_scalar("SELECT id FROM users WHERE username = $1")
        .bind(username)
        .fetch_one(&app.db)
        .await
        .unwrap();
    let secret = Secret::generate();
    let mut tx = app.db.begin().await.unwrap();
    portcullis::db::api_tokens::create(
        &mut tx,
        &portcullis::db::audit::Actor::command_line(),
        id,
        username,
        &NewToken {
            name: format!("test {username}"),
            scopes: scopes.to_vec(),
            days: 30,
        },
        &api_token::digest(secret.as_str()),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    secret.as_str().to_owned()
}

/// An answer: status, headers and JSON body (Null when the body is not JSON).
pub struct Answer {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub json: Value,
}

/// Calls the API with `token` (if any) and a JSON body (if any), without cookies.
pub async fn call(
    app: &TestApp,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> Answer {
    call_with(app, method, path, token, body, &[]).await
}

pub async fn call_with(
    app: &TestApp,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&Value>,
    headers: &[(&str, &str)],
) -> Answer {
    let client = reqwest::Client::new();
    let mut request = match method {
        "GET" => client.get(app.url(path)),
        _ => client.post(app.url(path)),
    };
    if let Some(t) = token {
        request = request.bearer_auth(t);
    }
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    if let Some(b) = body {
        request = request
            .header("content-type", "application/json")
            .body(serde_json::to_vec(b).unwrap());
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let text = response.text().await.unwrap();
    Answer {
        status,
        headers,
        json: serde_json::from_str(&text).unwrap_or(Value::Null),
    }
}

/// `POST /api/v1/requests` with `body`, as `token`'s owner.
async fn create(app: &TestApp, token: &str, body: &Value) -> Answer {
    call(app, "POST", "/api/v1/requests", Some(token), Some(body)).await
}

async fn id_of(app: &TestApp, table: &str, name: &str) -> String {
    let id: Uuid = sqlx::query_scalar(&format!("SELECT id FROM {table} WHERE name = $1"))
        .bind(name)
        .fetch_one(&app.db)
        .await
        .unwrap();
    id.to_string()
}

async fn requests_of(app: &TestApp, username: &str) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM requests r JOIN users u ON u.id = r.requester_id WHERE u.username = $1",
    )
    .bind(username)
    .fetch_one(&app.db)
    .await
    .unwrap()
}

/// A request body for alice: Web console access on Grafana (self-service, starts now).
async fn web_console(app: &TestApp) -> Value {
    json!({
        "activity": id_of(app, "activities", "Web console access").await,
        "resources": [id_of(app, "resources", "Grafana").await],
        "notes": "Dashboards",
    })
}

#[tokio::test]
async fn a_request_made_through_the_api_shows_on_the_dashboard_and_can_be_ended() {
    let app = spawn_demo_app().await;
    let alice = token(&app, "alice", &[Scope::Read, Scope::Request]).await;
    let body = web_console(&app).await;
    let created = create(&app, &alice, &body).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.json);
    let id = created.json["id"].as_str().unwrap().to_owned();
    assert_eq!(
        created.headers["location"].to_str().unwrap(),
        format!("/api/v1/requests/{id}")
    );
    assert_eq!(created.json["activity"], "Web console access");
    let session = created.json["sessions"][0]["session_id"]
        .as_str()
        .unwrap()
        .to_owned();

    // The dashboard's Active tab lists it, with its status as the pages word it.
    let list = call(
        &app,
        "GET",
        "/api/v1/sessions?tab=active",
        Some(&alice),
        None,
    )
    .await;
    assert_eq!(list.status, StatusCode::OK);
    let row = &list.json["sessions"][0];
    assert_eq!(row["id"], session.as_str());
    assert_eq!(row["resource"], "Grafana");
    assert!(["provisioning", "available"].contains(&row["status"]["key"].as_str().unwrap()));
    let none = call(
        &app,
        "GET",
        "/api/v1/sessions?tab=historical",
        Some(&alice),
        None,
    )
    .await;
    assert_eq!(none.json["sessions"], json!([]));

    let details = call(
        &app,
        "GET",
        &format!("/api/v1/sessions/{session}"),
        Some(&alice),
        None,
    )
    .await;
    assert_eq!(details.status, StatusCode::OK);
    assert_eq!(details.json["events"][0]["kind"], "requested");

    let ended = call(
        &app,
        "POST",
        &format!("/api/v1/sessions/{session}/end"),
        Some(&alice),
        None,
    )
    .await;
    assert_eq!(ended.status, StatusCode::OK, "{}", ended.json);
    assert_eq!(ended.json["status"]["key"], "completed");
    // Ending it again is refused, and says why.
    let again = call(
        &app,
        "POST",
        &format!("/api/v1/sessions/{session}/end"),
        Some(&alice),
        None,
    )
    .await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert_eq!(again.json["error"], "conflict");
    let historical = call(
        &app,
        "GET",
        "/api/v1/sessions?tab=historical",
        Some(&alice),
        None,
    )
    .await;
    assert_eq!(historical.json["sessions"][0]["id"], session.as_str());
}

#[tokio::test]
async fn a_request_breaking_the_wizards_rules_gets_its_words_per_field_and_creates_nothing() {
    let app = spawn_demo_app().await;
    let alice = token(&app, "alice", &[Scope::Request]).await;
    let nothing = call(
        &app,
        "POST",
        "/api/v1/requests",
        Some(&alice),
        Some(&json!({})),
    )
    .await;
    assert_eq!(nothing.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(nothing.json["error"], "invalid");
    assert_eq!(nothing.json["fields"]["activity"], "Select an activity.");
    assert_eq!(
        nothing.json["fields"]["resources"],
        "Select at least one resource."
    );

    // Linux administration is granted by two policies: the policy must be named.
    let ambiguous = json!({
        "activity": id_of(&app, "activities", "Linux administration").await,
        "resources": [id_of(&app, "resources", "lnx-app-01").await],
    });
    let answer = create(&app, &alice, &ambiguous).await;
    assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        answer.json["fields"]["policy"]
            .as_str()
            .unwrap()
            .contains("Linux self-service")
    );

    // The Change window profile: notes and a ticket like CHG123456; no past start.
    let change = json!({
        "activity": id_of(&app, "activities", "Domain administration").await,
        "resources": [id_of(&app, "resources", "win-dc-01").await],
        "ticket": "INC1",
        "start_date": "2001-01-01",
        "start_time": "10:00",
    });
    let answer = create(&app, &alice, &change).await;
    assert_eq!(
        answer.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        answer.json
    );
    assert_eq!(
        answer.json["fields"]["notes"],
        "Notes are required for this activity."
    );
    assert_eq!(
        answer.json["fields"]["ticket"],
        "Ticket Number must look like CHG123456."
    );
    assert!(
        answer.json["fields"]["start_date"]
            .as_str()
            .unwrap()
            .contains("past")
    );

    // Web console access is self-service for at most 60 minutes: 30 is fine, 61 is not.
    let mut long = web_console(&app).await;
    long["duration_minutes"] = json!(61);
    let answer = create(&app, &alice, &long).await;
    assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        answer.json["fields"]["duration_minutes"]
            .as_str()
            .unwrap()
            .contains("1 to 60")
    );

    // A resource the policy does not grant, and text that is no id.
    let foreign = json!({
        "activity": id_of(&app, "activities", "Web console access").await,
        "resources": [id_of(&app, "resources", "win-dc-01").await],
    });
    let answer = create(&app, &alice, &foreign).await;
    assert_eq!(
        answer.json["fields"]["resources"],
        "A selected resource is not available to you under this policy."
    );
    let garbage = json!({"activity": "nope", "resources": ["x"]});
    let answer = create(&app, &alice, &garbage).await;
    assert_eq!(
        answer.json["fields"]["activity"],
        "That activity is not available to you. Select one from the list."
    );

    // Not JSON, or an unknown field: 400.
    let client = reqwest::Client::new();
    let response = client
        .post(app.url("/api/v1/requests"))
        .bearer_auth(&alice)
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let typo = json!({"activty": "x"});
    let answer = create(&app, &alice, &typo).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert_eq!(answer.json["error"], "bad_request");

    // A NUL escaped in JSON is refused like one in a form.
    let mut nul = web_console(&app).await;
    nul["notes"] = json!("before\u{0}after");
    let answer = create(&app, &alice, &nul).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{}", answer.json);
    assert!(
        answer.json["message"]
            .as_str()
            .unwrap()
            .contains("control character")
    );

    assert_eq!(requests_of(&app, "alice").await, 0);
}

#[tokio::test]
async fn a_shorter_duration_gives_a_shorter_window() {
    let app = spawn_demo_app().await;
    let alice = token(&app, "alice", &[Scope::Request]).await;
    let mut body = web_console(&app).await;
    body["duration_minutes"] = json!(30);
    body["start_date"] = json!("2999-01-01");
    body["start_time"] = json!("10:00");
    // Beyond the horizon: the wizard's words.
    let far = create(&app, &alice, &body).await;
    assert!(
        far.json["fields"]["start_date"]
            .as_str()
            .unwrap()
            .contains("days ahead")
    );
    let tomorrow = (time::OffsetDateTime::now_utc() + time::Duration::days(1)).date();
    body["start_date"] = json!(tomorrow.to_string());
    let created = create(&app, &alice, &body).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.json);
    assert_eq!(created.json["duration_minutes"], 30);
    let (minutes, status): (f64, String) = sqlx::query_as(
        "SELECT (extract(epoch FROM ends_at - requested_start) / 60)::float8, status::text FROM activity_sessions",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!((minutes, status.as_str()), (30.0, "pending"));
}

#[tokio::test]
async fn an_idempotency_key_answers_a_retry_with_the_same_request_and_refuses_another_body() {
    let app = spawn_demo_app().await;
    let alice = token(&app, "alice", &[Scope::Request]).await;
    let body = web_console(&app).await;
    let key = [("Idempotency-Key", "deploy-42")];
    let first = call_with(
        &app,
        "POST",
        "/api/v1/requests",
        Some(&alice),
        Some(&body),
        &key,
    )
    .await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.json);
    let again = call_with(
        &app,
        "POST",
        "/api/v1/requests",
        Some(&alice),
        Some(&body),
        &key,
    )
    .await;
    assert_eq!(again.status, StatusCode::CREATED);
    assert_eq!(again.json["id"], first.json["id"]);
    assert_eq!(again.headers["idempotent-replayed"], "true");
    assert_eq!(requests_of(&app, "alice").await, 1);

    let mut other = body.clone();
    other["notes"] = json!("Something else");
    let reused = call_with(
        &app,
        "POST",
        "/api/v1/requests",
        Some(&alice),
        Some(&other),
        &key,
    )
    .await;
    assert_eq!(reused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(reused.json["error"], "idempotency_key_reused");
    assert_eq!(requests_of(&app, "alice").await, 1);

    // Keys are per user: erin's deploy-42 is hers.
    let erin = token(&app, "erin", &[Scope::Request]).await;
    let hers = call_with(
        &app,
        "POST",
        "/api/v1/requests",
        Some(&erin),
        Some(&body),
        &key,
    )
    .await;
    assert_eq!(hers.status, StatusCode::CREATED);
    assert_ne!(hers.json["id"], first.json["id"]);
}

#[tokio::test]
async fn two_racing_calls_with_one_idempotency_key_create_one_request() {
    let app = spawn_demo_app().await;
    let alice = token(&app, "alice", &[Scope::Request]).await;
    let body = web_console(&app).await;
    for round in 0..5 {
        let key = format!("race-{round}");
        let headers = [("Idempotency-Key", key.as_str())];
        let (a, b) = tokio::join!(
            call_with(
                &app,
                "POST",
                "/api/v1/requests",
                Some(&alice),
                Some(&body),
                &headers
            ),
            call_with(
                &app,
                "POST",
                "/api/v1/requests",
                Some(&alice),
                Some(&body),
                &headers
            ),
        );
        assert_eq!(a.status, StatusCode::CREATED, "{}", a.json);
        assert_eq!(b.status, StatusCode::CREATED, "{}", b.json);
        assert_eq!(a.json["id"], b.json["id"]);
        assert_eq!(requests_of(&app, "alice").await, round + 1);
    }
}

#[tokio::test]
async fn an_approver_lists_and_decides_through_the_api_with_the_pages_rules() {
    let app = spawn_demo_app().await;
    let alice = token(
        &app,
        "alice",
        &[Scope::Read, Scope::Request, Scope::Approve],
    )
    .await;
    let bob = token(&app, "bob", &[Scope::Read, Scope::Approve]).await;
    // Standard profile: one approver from Approvers (bob, dave).
    let body = json!({
        "activity": id_of(&app, "activities", "Linux break-glass").await,
        "resources": [id_of(&app, "resources", "lnx-web-01").await],
        "notes": "Patch",
    });
    let created = create(&app, &alice, &body).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.json);
    let id = created.json["id"].as_str().unwrap().to_owned();
    assert_eq!(
        created.json["sessions"][0]["status"]["key"],
        "waiting_for_approval"
    );

    let waiting = call(&app, "GET", "/api/v1/approvals", Some(&bob), None).await;
    assert_eq!(waiting.json["approvals"][0]["request_id"], id.as_str());
    assert_eq!(waiting.json["approvals"][0]["requester"], "Alice Archer");

    // Her own request is not hers to decide.
    let own = call(
        &app,
        "POST",
        &format!("/api/v1/approvals/{id}/decide"),
        Some(&alice),
        Some(&json!({"decision": "approve"})),
    )
    .await;
    assert_eq!(own.status, StatusCode::CONFLICT);
    assert_eq!(
        own.json["message"],
        "You cannot decide on your own request."
    );
    // A denial needs a comment.
    let bare = call(
        &app,
        "POST",
        &format!("/api/v1/approvals/{id}/decide"),
        Some(&bob),
        Some(&json!({"decision": "deny"})),
    )
    .await;
    assert_eq!(bare.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        bare.json["fields"]["comment"],
        "A comment is required to deny: say why."
    );

    let approved = call(
        &app,
        "POST",
        &format!("/api/v1/approvals/{id}/decide"),
        Some(&bob),
        Some(&json!({"decision": "approve", "comment": "ok"})),
    )
    .await;
    assert_eq!(approved.status, StatusCode::OK, "{}", approved.json);
    assert_eq!(approved.json["approved"], 1);
    // Deciding again: the pages' words for a request already moved on.
    let late = call(
        &app,
        "POST",
        &format!("/api/v1/approvals/{id}/decide"),
        Some(&bob),
        Some(&json!({"decision": "deny", "comment": "no"})),
    )
    .await;
    assert_eq!(late.status, StatusCode::CONFLICT);
    assert!(
        late.json["message"]
            .as_str()
            .unwrap()
            .starts_with("This request"),
        "{}",
        late.json
    );

    let request = call(
        &app,
        "GET",
        &format!("/api/v1/requests/{id}"),
        Some(&bob),
        None,
    )
    .await;
    assert_eq!(request.status, StatusCode::OK);
    assert_ne!(
        request.json["sessions"][0]["status"]["key"],
        "waiting_for_approval"
    );
    // erin is no decider and not the requester: not found.
    let erin = token(&app, "erin", &[Scope::Read]).await;
    let hidden = call(
        &app,
        "GET",
        &format!("/api/v1/requests/{id}"),
        Some(&erin),
        None,
    )
    .await;
    assert_eq!(hidden.status, StatusCode::NOT_FOUND);
    assert_eq!(hidden.json["error"], "not_found");
}

#[tokio::test]
async fn a_session_of_someone_else_is_not_found_and_unchanged() {
    let app = spawn_demo_app().await;
    let alice = token(&app, "alice", &[Scope::Request]).await;
    let erin = token(&app, "erin", &[Scope::Read, Scope::Request]).await;
    let created = call(
        &app,
        "POST",
        "/api/v1/requests",
        Some(&alice),
        Some(&web_console(&app).await),
    )
    .await;
    let session = created.json["sessions"][0]["session_id"]
        .as_str()
        .unwrap()
        .to_owned();
    for (method, path) in [
        ("GET", format!("/api/v1/sessions/{session}")),
        ("POST", format!("/api/v1/sessions/{session}/end")),
        ("POST", format!("/api/v1/sessions/{session}/extend")),
        ("GET", "/api/v1/sessions/not-an-id".to_owned()),
    ] {
        let answer = call(&app, method, &path, Some(&erin), None).await;
        assert_eq!(answer.status, StatusCode::NOT_FOUND, "{method} {path}");
    }
    let ended: bool = sqlx::query_scalar(
        "SELECT ended_at IS NOT NULL FROM activity_sessions WHERE id = $1::uuid",
    )
    .bind(&session)
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert!(!ended);
}

#[tokio::test]
async fn an_administrator_exports_the_audit_log_as_csv_and_json() {
    let app = spawn_demo_app().await;
    let carol = token(&app, "carol", &[Scope::Admin]).await;
    let users = call(&app, "GET", "/api/v1/admin/users?q=ali", Some(&carol), None).await;
    assert_eq!(users.status, StatusCode::OK);
    assert_eq!(users.json["users"][0]["username"], "alice");
    let resources = call(
        &app,
        "GET",
        "/api/v1/admin/resources?kind=planet",
        Some(&carol),
        None,
    )
    .await;
    assert_eq!(resources.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(resources.json["fields"]["kind"].is_string());

    let json = call(
        &app,
        "GET",
        "/api/v1/admin/audit/export?format=json&kind=api_token",
        Some(&carol),
        None,
    )
    .await;
    assert_eq!(json.status, StatusCode::OK);
    // The token made for carol is on the record, without its secret or digest.
    let entry = &json.json[0];
    assert_eq!(entry["action"], "create");
    assert_eq!(entry["object_kind"], "api_token");
    assert!(!json.json.to_string().contains(&carol));

    let csv = reqwest::Client::new()
        .get(app.url("/api/v1/admin/audit/export?kind=api_token"))
        .bearer_auth(&carol)
        .send()
        .await
        .unwrap();
    assert_eq!(csv.headers()["content-type"], "text/csv; charset=utf-8");
    let text = csv.text().await.unwrap();
    assert!(
        text.starts_with(r#""At","Actor","Action","Object Kind","Object","Before","After""#),
        "{text}"
    );
    assert!(text.contains("api_token"));
}

#[tokio::test]
async fn the_openapi_document_describes_every_api_route_and_the_reference_page_renders_it() {
    let app = spawn_demo_app().await;
    let doc = call(&app, "GET", "/api/v1/openapi.json", None, None).await;
    assert_eq!(doc.status, StatusCode::OK);
    assert_eq!(doc.json["openapi"], "3.1.0");
    for (method, path, scope) in crate::routes::api_routes() {
        assert!(
            portcullis::web::api::docs::describe(method, &path).is_some(),
            "{method} {path} has no description"
        );
        let op = &doc.json["paths"][&path][method.to_ascii_lowercase()];
        assert!(op.is_object(), "{method} {path} missing from the document");
        if let Some(scope) = scope {
            assert_eq!(op["x-scope"], scope.key(), "{method} {path}");
            assert!(op["responses"]["403"].is_object());
        }
    }
    assert!(doc.json["components"]["schemas"]["NewRequest"]["properties"]["activity"].is_object());

    let page = reqwest::get(app.url("/api/v1/docs")).await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(csp, portcullis::web::CSP);
    let html = scraper::Html::parse_document(&page.text().await.unwrap());
    let h2 = scraper::Selector::parse("h2 code").unwrap();
    let titles: Vec<String> = html.select(&h2).map(|e| e.text().collect()).collect();
    assert!(
        titles.contains(&"POST /api/v1/requests".to_owned()),
        "{titles:?}"
    );
    let script = scraper::Selector::parse("script").unwrap();
    assert_eq!(html.select(&script).count(), 0);
}

/// Refusals made by the layers the API shares with the pages (a body over the limit, a NUL
/// in the address) come back as the API's JSON errors, not as HTML pages, and change nothing.
#[tokio::test]
async fn refusals_by_the_shared_layers_are_json_too() {
    let app = spawn_demo_app().await;
    let alice = token(&app, "alice", &[Scope::Read, Scope::Request]).await;
    let before = requests_of(&app, "alice").await;

    let huge = json!({ "notes": "x".repeat(200 * 1024) });
    let answer = create(&app, &alice, &huge).await;
    assert_eq!(answer.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(answer.json["error"], "too_large", "{}", answer.json);
    assert!(
        answer.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );

    let answer = call(&app, "GET", "/api/v1/sessions?q=a%00b", Some(&alice), None).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert_eq!(answer.json["error"], "bad_request", "{}", answer.json);

    assert_eq!(requests_of(&app, "alice").await, before);
    // The pages keep their HTML refusal.
    let page = app.get("/dashboard?q=a%00b").await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert!(page.body.contains("<html"), "{}", page.body);
}

/// `sessions` narrows a decision to some resources of the request; the others keep waiting,
/// and a session of another request is refused with nothing decided.
#[tokio::test]
async fn a_decision_can_name_some_sessions_of_the_request() {
    let app = spawn_demo_app().await;
    let alice = token(&app, "alice", &[Scope::Read, Scope::Request]).await;
    let bob = token(&app, "bob", &[Scope::Read, Scope::Approve]).await;
    let body = json!({
        "activity": id_of(&app, "activities", "Linux break-glass").await,
        "resources": [
            id_of(&app, "resources", "lnx-web-01").await,
            id_of(&app, "resources", "lnx-web-02").await,
        ],
        "notes": "Patch both",
    });
    let created = create(&app, &alice, &body).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.json);
    let id = created.json["id"].as_str().unwrap().to_owned();
    let sessions: Vec<String> = created.json["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["session_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(sessions.len(), 2);
    let status = |s: &str| {
        let s = Uuid::parse_str(s).unwrap();
        let db = app.db.clone();
        async move {
            sqlx::query_scalar::<_, String>(
                "SELECT status::text FROM activity_sessions WHERE id = $1",
            )
            .bind(s)
            .fetch_one(&db)
            .await
            .unwrap()
        }
    };

    // A session id of nothing in this request: refused, nothing decided.
    let stray = call(
        &app,
        "POST",
        &format!("/api/v1/approvals/{id}/decide"),
        Some(&bob),
        Some(&json!({"decision": "approve", "sessions": [Uuid::now_v7()]})),
    )
    .await;
    assert_eq!(
        stray.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        stray.json
    );
    assert!(
        stray.json["fields"]["sessions"].is_string(),
        "{}",
        stray.json
    );
    assert_eq!(status(&sessions[0]).await, "waiting_for_approval");
    assert_eq!(status(&sessions[1]).await, "waiting_for_approval");

    // Approve the first only.
    let first = call(
        &app,
        "POST",
        &format!("/api/v1/approvals/{id}/decide"),
        Some(&bob),
        Some(&json!({"decision": "approve", "sessions": [sessions[0]]})),
    )
    .await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.json);
    assert_eq!(
        (
            first.json["approved"].as_u64(),
            first.json["denied"].as_u64()
        ),
        (Some(1), Some(0))
    );
    assert_ne!(status(&sessions[0]).await, "waiting_for_approval");
    assert_eq!(status(&sessions[1]).await, "waiting_for_approval");

    // Then deny the second, with a comment.
    let second = call(
        &app,
        "POST",
        &format!("/api/v1/approvals/{id}/decide"),
        Some(&bob),
        Some(&json!({"decision": "deny", "comment": "Not this one", "sessions": [sessions[1]]})),
    )
    .await;
    assert_eq!(second.status, StatusCode::OK, "{}", second.json);
    assert_eq!(second.json["denied"].as_u64(), Some(1));
    assert_eq!(status(&sessions[1]).await, "approval_denied");
}
