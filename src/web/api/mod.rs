//! `/api/v1`: JSON for scripts and other systems, authenticated by API tokens (Bearer), with
//! no cookies and so no CSRF token. Handlers translate JSON to the application layer's use
//! cases (`crate::app`) and its outcomes back to JSON, so the API keeps every rule the pages
//! keep. Every route is listed in the route table with the scope it needs.

pub mod admin;
pub mod approvals;
pub mod auth;
pub mod catalog;
pub mod docs;
pub mod error;
pub mod requests;
pub mod sessions;

use axum::body::Bytes;
use axum::extract::Request;
use axum::middleware::{Next, from_fn};
use serde::de::DeserializeOwned;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;

use self::error::{ApiError, ApiResult};
use crate::domain::api_token::Scope;
use crate::web::route_table::{Access, Routes, get, post};

/// Where the API lives.
pub const BASE: &str = "/api/v1";

/// The paths that need no token: the API's own description.
pub fn is_public(path: &str) -> bool {
    path == "/api/v1/openapi.json" || path == "/api/v1/docs"
}

/// A group of routes that needs `scope`.
fn scoped(scope: Scope, routes: impl FnOnce(Routes) -> Routes) -> Routes {
    routes(Routes::new(Access::Api(scope))).route_layer(from_fn(
        move |request: Request, next: Next| auth::require(scope, request, next),
    ))
}

/// Every API route with the scope it needs (`auth::authenticate` is added by the caller: it
/// needs the state).
pub fn routes() -> Routes {
    let read = scoped(Scope::Read, |r| {
        r.route("/api/v1/me", get(sessions::me))
            .route("/api/v1/catalog", get(catalog::show))
            .route("/api/v1/sessions", get(sessions::list))
            .route("/api/v1/sessions/{id}", get(sessions::show))
            .route("/api/v1/requests/{id}", get(requests::show))
            .route("/api/v1/approvals", get(approvals::list))
    });
    let request = scoped(Scope::Request, |r| {
        r.route("/api/v1/requests", post(requests::create))
            .route("/api/v1/sessions/{id}/end", post(sessions::end))
            .route("/api/v1/sessions/{id}/extend", post(sessions::extend))
    });
    let approve = scoped(Scope::Approve, |r| {
        r.route("/api/v1/approvals/{id}/decide", post(approvals::decide))
    });
    let admin = scoped(Scope::Admin, |r| {
        r.route("/api/v1/admin/resources", get(admin::resources))
            .route("/api/v1/admin/activities", get(admin::activities))
            .route("/api/v1/admin/policies", get(admin::policies))
            .route("/api/v1/admin/users", get(admin::users))
            .route("/api/v1/admin/audit", get(admin::audit))
            .route("/api/v1/admin/audit/export", get(admin::audit_export))
    });
    let public = Routes::new(Access::Public)
        .route("/api/v1/openapi.json", get(docs::openapi))
        .route("/api/v1/docs", get(docs::page));
    read.merge(request)
        .merge(approve)
        .merge(admin)
        .merge(public)
}

/// An id from the path: one that is not a UUID names nothing.
pub fn parse_id(id: &str) -> ApiResult<Uuid> {
    Uuid::parse_str(id).map_err(|_| ApiError::not_found())
}

/// A JSON body of type `T`, or 400 saying what could not be read. As for forms
/// (`web::text_guard`), a control character other than tab and line breaks in any string is
/// refused whole: JSON escapes let one through the raw-byte check, and PostgreSQL cannot
/// store a NUL.
pub fn parse_json<T: DeserializeOwned>(body: &Bytes) -> ApiResult<T> {
    let body: &[u8] = if body.is_empty() { b"{}" } else { body };
    let value: serde_json::Value = serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request(format!("The body is not the JSON this call takes: {e}."))
    })?;
    if has_refused_character(&value) {
        return Err(ApiError::bad_request(
            "The body contains a control character (such as NUL); remove it and send it again.",
        ));
    }
    serde_json::from_value(value).map_err(|e| {
        ApiError::bad_request(format!("The body is not the JSON this call takes: {e}."))
    })
}

fn has_refused_character(value: &serde_json::Value) -> bool {
    use serde_json::Value;
    let refused = |s: &str| s.chars().any(crate::web::text_guard::is_refused);
    match value {
        Value::String(s) => refused(s),
        Value::Array(items) => items.iter().any(has_refused_character),
        Value::Object(map) => map
            .iter()
            .any(|(k, v)| refused(k) || has_refused_character(v)),
        Value::Null | Value::Bool(_) | Value::Number(_) => false,
    }
}

/// A time as RFC 3339 (UTC).
pub fn ts(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}
