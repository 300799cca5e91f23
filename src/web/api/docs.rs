//! The API's description: an OpenAPI 3.1 document built from the route table (so every
//! served route is described, with the scope it needs) and a reference page rendered on the
//! server from the same description, with no script and nothing from elsewhere.

use askama::Template;
use askama_web::WebTemplate;
use axum::Json;
use serde_json::{Map, Value, json};

use crate::domain::api_token::Scope;
use crate::web::route_table::{Access, Route};

/// What one route does, beyond its method, path and scope.
pub struct Described {
    pub summary: &'static str,
    /// Query parameters: name and meaning.
    pub query: &'static [(&'static str, &'static str)],
    /// The request body's schema name, if it takes one.
    pub body: Option<&'static str>,
    /// The success status and its body's schema name.
    pub ok: (u16, &'static str),
}

const LIST_QUERY: &[(&str, &str)] = &[
    ("tab", "active (default), scheduled or historical"),
    (
        "q",
        "search in resource, activity, login account, notes and ticket",
    ),
    ("resource", "historical: part of a resource name"),
    (
        "from",
        "historical: YYYY-MM-DD, in the token owner's time zone",
    ),
    ("to", "historical: YYYY-MM-DD"),
    ("scope", "all: everyone's sessions (administrators)"),
    ("page", "from 1; 50 sessions a page"),
];
const SEARCH: &[(&str, &str)] = &[
    ("q", "part of a name"),
    ("kind", "resources: server, database, website or domain"),
    ("archived", "true: include archived ones"),
];
const AUDIT: &[(&str, &str)] = &[
    ("kind", "object kind: user, resource, api_token, ..."),
    ("actor", "part of the actor's name"),
    ("q", "part of the object's name or the action"),
];

/// The description of an API route; `None` for a route this list does not know (a test
/// fails on it, so a new route cannot go undescribed).
pub fn describe(method: &str, path: &str) -> Option<Described> {
    let d = |summary, query, body, ok| Described {
        summary,
        query,
        body,
        ok,
    };
    Some(match (method, path) {
        ("GET", "/api/v1/me") => d(
            "Whom the token speaks for, and its scopes",
            &[],
            None,
            (200, "Me"),
        ),
        ("GET", "/api/v1/catalog") => d(
            "What I may request: activities, their policies and resources",
            &[],
            None,
            (200, "Object"),
        ),
        ("GET", "/api/v1/sessions") => d(
            "My sessions, by dashboard tab and filters",
            LIST_QUERY,
            None,
            (200, "SessionList"),
        ),
        ("GET", "/api/v1/sessions/{id}") => d(
            "One session with its log",
            &[],
            None,
            (200, "SessionDetails"),
        ),
        ("POST", "/api/v1/sessions/{id}/end") => d(
            "End Session (a request not yet begun is withdrawn)",
            &[],
            None,
            (200, "ActionResult"),
        ),
        ("POST", "/api/v1/sessions/{id}/extend") => d(
            "Extend by the profile's minutes",
            &[],
            None,
            (200, "ActionResult"),
        ),
        ("POST", "/api/v1/requests") => d(
            "Create a request (the wizard in one call); send Idempotency-Key to retry safely",
            &[],
            Some("NewRequest"),
            (201, "Request"),
        ),
        ("GET", "/api/v1/requests/{id}") => {
            d("One request with its sessions", &[], None, (200, "Request"))
        }
        ("GET", "/api/v1/approvals") => d(
            "Requests waiting for my decision",
            &[],
            None,
            (200, "WaitingList"),
        ),
        ("POST", "/api/v1/approvals/{id}/decide") => d(
            "Approve or deny a request (a denial needs a comment)",
            &[],
            Some("Decision"),
            (200, "DecideResult"),
        ),
        ("GET", "/api/v1/admin/resources") => d("Resources", SEARCH, None, (200, "Object")),
        ("GET", "/api/v1/admin/activities") => d("Activities", SEARCH, None, (200, "Object")),
        ("GET", "/api/v1/admin/policies") => d("Access policies", SEARCH, None, (200, "Object")),
        ("GET", "/api/v1/admin/users") => d("Users", SEARCH, None, (200, "Object")),
        ("GET", "/api/v1/admin/audit") => {
            d("The audit log, newest first", AUDIT, None, (200, "Object"))
        }
        ("GET", "/api/v1/admin/audit/export") => d(
            "The audit log as a file: format=csv (default) or json",
            AUDIT,
            None,
            (200, "Object"),
        ),
        ("GET", "/api/v1/openapi.json") => d(
            "This description (no token needed)",
            &[],
            None,
            (200, "Object"),
        ),
        ("GET", "/api/v1/docs") => d(
            "The reference page (no token needed)",
            &[],
            None,
            (200, "Object"),
        ),
        _ => return None,
    })
}

/// The API's routes from the route table.
pub fn api_routes() -> Vec<Route> {
    crate::web::route_table()
        .into_iter()
        .filter(|r| r.path.starts_with(super::BASE))
        .collect()
}

fn scope_of(access: Access) -> Option<Scope> {
    match access {
        Access::Api(scope) => Some(scope),
        _ => None,
    }
}

fn string() -> Value {
    json!({"type": "string"})
}

fn object(required: &[&str], properties: &[(&str, Value)]) -> Value {
    let props: Map<String, Value> = properties
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect();
    json!({"type": "object", "required": required, "properties": props})
}

fn schemas() -> Value {
    let id = json!({"type": "string", "format": "uuid"});
    let time = json!({"type": "string", "format": "date-time"});
    let opt = |v: Value| json!({"oneOf": [v, {"type": "null"}]});
    let status = object(&["key", "label"], &[("key", string()), ("label", string())]);
    let session = object(
        &[
            "id",
            "request_id",
            "status",
            "resource",
            "activity",
            "start",
            "end",
        ],
        &[
            ("id", id.clone()),
            ("request_id", id.clone()),
            ("status", json!({"$ref": "#/components/schemas/Status"})),
            ("requested_at", time.clone()),
            ("requester", string()),
            ("resource", string()),
            ("login_account", opt(string())),
            ("activity", string()),
            ("start", time.clone()),
            ("end", time.clone()),
            ("ended_at", opt(time.clone())),
            ("notes", string()),
            ("ticket", string()),
        ],
    );
    let event = object(
        &["at", "actor", "kind"],
        &[
            ("at", time.clone()),
            ("actor", string()),
            ("kind", string()),
            ("from", opt(string())),
            ("to", opt(string())),
            ("comment", string()),
        ],
    );
    json!({
        "Error": object(&["error", "message", "fields"], &[
            ("error", json!({"type": "string", "enum": ["unauthorized", "forbidden", "not_found", "invalid", "conflict", "bad_request", "idempotency_key_reused", "unavailable", "internal"]})),
            ("message", string()),
            ("fields", json!({"type": "object", "additionalProperties": {"type": "string"}})),
        ]),
        "Status": status,
        "Object": {"type": "object"},
        "Me": object(&["id", "username", "scopes"], &[
            ("id", id.clone()), ("username", string()), ("display_name", string()),
            ("role", json!({"type": "string", "enum": ["user", "admin", "auditor"]})),
            ("time_zone", string()),
            ("scopes", json!({"type": "array", "items": {"type": "string", "enum": ["read", "request", "approve", "admin"]}})),
        ]),
        "Session": session,
        "SessionList": object(&["tab", "page", "more", "sessions"], &[
            ("tab", string()), ("page", json!({"type": "integer"})), ("more", json!({"type": "boolean"})),
            ("sessions", json!({"type": "array", "items": {"$ref": "#/components/schemas/Session"}})),
        ]),
        "Event": event,
        "SessionDetails": {"allOf": [{"$ref": "#/components/schemas/Session"}, object(&["events"], &[
            ("address", string()), ("port", opt(json!({"type": "integer"}))), ("policy", string()),
            ("lock_message", opt(string())), ("extensions_used", json!({"type": "integer"})),
            ("max_extensions", json!({"type": "integer"})),
            ("events", json!({"type": "array", "items": {"$ref": "#/components/schemas/Event"}})),
        ])]},
        "ActionResult": object(&["id", "outcome", "message", "status", "end"], &[
            ("id", id.clone()), ("outcome", json!({"type": "string", "enum": ["ended", "withdrawn", "extended"]})),
            ("message", string()), ("status", json!({"$ref": "#/components/schemas/Status"})), ("end", time.clone()),
        ]),
        "NewRequest": object(&["activity", "resources"], &[
            ("activity", id.clone()),
            ("policy", json!({"type": "string", "format": "uuid", "description": "needed only when several policies grant the activity"})),
            ("resources", json!({"type": "array", "items": {"type": "string", "format": "uuid"}, "minItems": 1, "maxItems": crate::domain::wizard::MAX_RESOURCES})),
            ("notes", json!({"type": "string", "maxLength": crate::domain::wizard::MAX_NOTES})),
            ("ticket", json!({"type": "string", "maxLength": crate::domain::wizard::MAX_TICKET})),
            ("start_date", json!({"type": "string", "description": "YYYY-MM-DD in the token owner's time zone; with start_time. Both absent: now"})),
            ("start_time", json!({"type": "string", "description": "HH:MM"})),
            ("duration_minutes", json!({"type": "integer", "minimum": 1, "description": "minutes of access, up to the profile's maximum (the default)"})),
        ]),
        "Request": object(&["id", "activity", "sessions"], &[
            ("id", id.clone()), ("requester", string()), ("activity", string()), ("policy", string()),
            ("notes", string()), ("ticket", string()), ("requested_at", time.clone()), ("start", time.clone()),
            ("duration_minutes", json!({"type": "integer"})), ("decision_deadline", opt(time.clone())),
            ("sessions", json!({"type": "array", "items": object(&["session_id", "resource", "status"], &[
                ("session_id", id.clone()), ("resource", string()), ("login_account", opt(string())),
                ("status", json!({"$ref": "#/components/schemas/Status"})), ("end", time.clone()),
            ])})),
        ]),
        "WaitingList": object(&["approvals"], &[("approvals", json!({"type": "array", "items": object(&["request_id"], &[
            ("request_id", id.clone()), ("requested_at", time.clone()), ("requester", string()),
            ("resources", json!({"type": "array", "items": {"type": "string"}})), ("activity", string()),
            ("start", time.clone()), ("end", time.clone()), ("decision_deadline", opt(time.clone())),
            ("notes", string()), ("ticket", string()), ("tier", json!({"type": "integer"})), ("tiers", json!({"type": "integer"})),
        ])}))]),
        "Decision": object(&["decision"], &[
            ("decision", json!({"type": "string", "enum": ["approve", "deny"]})),
            ("comment", json!({"type": "string", "maxLength": crate::app::approvals::MAX_COMMENT})),
            ("sessions", json!({"type": "array", "items": {"type": "string", "format": "uuid"}})),
        ]),
        "DecideResult": object(&["request_id", "approved", "denied", "message"], &[
            ("request_id", id), ("approved", json!({"type": "integer"})), ("denied", json!({"type": "integer"})), ("message", string()),
        ]),
    })
}

fn error_response(description: &str) -> Value {
    json!({"description": description, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}})
}

/// The OpenAPI 3.1 document.
pub fn document() -> Value {
    let mut paths = Map::new();
    for route in api_routes() {
        let method = route.method.as_str().to_ascii_lowercase();
        let Some(d) = describe(route.method.as_str(), route.path) else {
            continue;
        };
        let scope = scope_of(route.access);
        let mut parameters: Vec<Value> = d
            .query
            .iter()
            .map(|(name, about)| json!({"name": name, "in": "query", "required": false, "description": about, "schema": {"type": "string"}}))
            .collect();
        if route.path.contains("{id}") {
            parameters.push(json!({"name": "id", "in": "path", "required": true, "schema": {"type": "string", "format": "uuid"}}));
        }
        if route.path == "/api/v1/requests" {
            parameters.push(json!({"name": "Idempotency-Key", "in": "header", "required": false, "description": "the same key with the same body answers the same request and creates nothing; with another body: 422", "schema": {"type": "string", "maxLength": super::requests::MAX_KEY}}));
        }
        let mut responses = Map::new();
        responses.insert(
            d.ok.0.to_string(),
            json!({"description": "done", "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{}", d.ok.1)}}}}),
        );
        if let Some(scope) = scope {
            responses.insert("401".into(), error_response("no valid token"));
            responses.insert(
                "403".into(),
                error_response(&format!(
                    "the token lacks the {} scope{}",
                    scope.key(),
                    if scope == Scope::Admin {
                        ", or its owner the admin role"
                    } else {
                        ""
                    }
                )),
            );
        }
        if route.path.contains("{id}") {
            responses.insert(
                "404".into(),
                error_response("not found, or not yours to see"),
            );
        }
        if route.method == axum::http::Method::POST {
            responses.insert(
                "400".into(),
                error_response("a body that is not this call's JSON"),
            );
            responses.insert(
                "409".into(),
                error_response("lost a race, or no longer applies"),
            );
            responses.insert(
                "422".into(),
                error_response("breaks a rule; fields says where"),
            );
        }
        let mut operation = json!({
            "summary": d.summary,
            "parameters": parameters,
            "responses": responses,
            "security": if scope.is_some() { json!([{"token": []}]) } else { json!([]) },
        });
        if let Some(scope) = scope {
            operation["x-scope"] = json!(scope.key());
        }
        if let Some(body) = d.body {
            operation["requestBody"] = json!({"required": true, "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{body}")}}}});
        }
        let entry = paths
            .entry(route.path.to_owned())
            .or_insert_with(|| json!({}));
        entry[method] = operation;
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Portcullis API",
            "version": "1",
            "description": "Just-in-time privileged access: sessions, requests, approvals. Authenticate with an API token from the Account page: Authorization: Bearer pcs_...; a token carries its owner's permissions and no more.",
        },
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {
            "schemas": schemas(),
            "securitySchemes": {"token": {"type": "http", "scheme": "bearer", "description": "an API token, pcs_ and 64 hex digits"}},
        },
    })
}

/// `GET /api/v1/openapi.json`.
pub async fn openapi() -> Json<Value> {
    Json(document())
}

/// One operation on the reference page.
pub struct OperationView {
    pub method: String,
    pub path: String,
    pub anchor: String,
    pub summary: String,
    pub scope: String,
    pub parameters: Vec<(String, String, String)>,
    pub body: String,
    pub responses: Vec<(String, String)>,
}

#[derive(Template, WebTemplate)]
#[template(path = "api/docs.html")]
pub struct DocsPage {
    operations: Vec<OperationView>,
    schemas: Vec<(String, String)>,
}

/// `GET /api/v1/docs`: the reference, rendered from [`document`].
pub async fn page() -> DocsPage {
    let doc = document();
    let mut operations = Vec::new();
    if let Some(paths) = doc["paths"].as_object() {
        for (path, methods) in paths {
            let Some(methods) = methods.as_object() else {
                continue;
            };
            for (method, op) in methods {
                operations.push(operation_view(path, method, op));
            }
        }
    }
    let schemas = doc["components"]["schemas"]
        .as_object()
        .map(|s| {
            s.iter()
                .map(|(name, schema)| {
                    (
                        name.clone(),
                        serde_json::to_string_pretty(schema).unwrap_or_default(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    DocsPage {
        operations,
        schemas,
    }
}

/// One operation of the document, for the reference page.
fn operation_view(path: &str, method: &str, op: &Value) -> OperationView {
    let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    let parameters = op["parameters"]
        .as_array()
        .map(|ps| {
            ps.iter()
                .map(|p| (text(&p["name"]), text(&p["in"]), text(&p["description"])))
                .collect()
        })
        .unwrap_or_default();
    let responses = op["responses"]
        .as_object()
        .map(|rs| {
            rs.iter()
                .map(|(code, r)| (code.clone(), text(&r["description"])))
                .collect()
        })
        .unwrap_or_default();
    let body = op["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        .as_str()
        .and_then(|r| r.rsplit('/').next())
        .unwrap_or_default()
        .to_owned();
    OperationView {
        method: method.to_ascii_uppercase(),
        anchor: format!("{method}-{path}").replace(['/', '{', '}', '.'], "-"),
        path: path.to_owned(),
        summary: text(&op["summary"]),
        scope: text(&op["x-scope"]),
        parameters,
        body,
        responses,
    }
}
