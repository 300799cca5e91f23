//! The API's errors: JSON `{"error": code, "message": ..., "fields": {...}}` with the status
//! that says what happened. A server-side failure is logged once and never shown.

use std::collections::BTreeMap;

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// What went wrong, for an API client.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    /// A stable code a script can match on: `unauthorized`, `forbidden`, `not_found`,
    /// `invalid`, `conflict`, `bad_request`, `unavailable`, `internal`.
    pub code: &'static str,
    pub message: String,
    /// Per input field, what is wrong with it.
    pub fields: BTreeMap<&'static str, String>,
    /// The cause of a server-side failure: logged, never sent.
    cause: Option<String>,
}

/// The JSON body of an error (also the OpenAPI schema's shape).
#[derive(Debug, Serialize)]
pub struct ErrorBody<'a> {
    pub error: &'a str,
    pub message: &'a str,
    pub fields: &'a BTreeMap<&'static str, String>,
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            fields: BTreeMap::new(),
            cause: None,
        }
    }

    /// No token, or one that is unknown, revoked, expired or whose owner is disabled.
    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Send a valid API token: Authorization: Bearer pcs_...",
        )
    }

    /// The token lacks the scope, or its owner the role.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    /// Nothing there, or not the caller's to see.
    pub fn not_found() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "There is nothing here, or it is not yours to see.",
        )
    }

    /// The action lost a race or no longer applies.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", message)
    }

    /// Well-formed input that breaks a rule; `fields` says where.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", message)
    }

    /// Input that cannot be read at all (not JSON, wrong types).
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    /// A failure on our side: logged, never shown.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        let mut error = Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "The request failed. It has been logged; try again.",
        );
        error.cause = Some(cause.to_string());
        error
    }

    /// Adds a field's message.
    pub fn field(mut self, name: &'static str, message: impl Into<String>) -> Self {
        self.fields.insert(name, message.into());
        self
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        let mut error = if crate::db::is_unavailable(&e) {
            Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "Portcullis cannot reach its database right now. Try again in a moment.",
            )
        } else {
            Self::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "The request failed. It has been logged; try again.",
            )
        };
        error.cause = Some(e.to_string());
        error
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let Some(cause) = &self.cause {
            if self.status == StatusCode::SERVICE_UNAVAILABLE {
                tracing::warn!(%cause, "database unavailable");
            } else {
                tracing::error!(%cause, "API request failed");
            }
        }
        let body = ErrorBody {
            error: self.code,
            message: &self.message,
            fields: &self.fields,
        };
        (self.status, Json(body)).into_response()
    }
}

/// Outermost, for `/api/` paths only: an error page answered by a layer the API shares with
/// the pages (the body limit's 413 and 408, the control-character guard's 400) becomes the
/// API's JSON error with the same status, so an API client never has to read HTML.
pub async fn json_errors(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::http::header;
    let api = request.uri().path().starts_with("/api/");
    let response = next.run(request).await;
    let status = response.status();
    let html = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    if !api || !html || !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let (code, message) = match status {
        StatusCode::PAYLOAD_TOO_LARGE => (
            "too_large",
            "The body is larger than this endpoint accepts. Nothing was changed.",
        ),
        StatusCode::REQUEST_TIMEOUT => (
            "timeout",
            "The body took too long to arrive. Nothing was changed.",
        ),
        StatusCode::BAD_REQUEST => (
            "bad_request",
            "The request could not be read, or it holds a control character (such as NUL). Nothing was changed.",
        ),
        _ => ("error", "The request was refused. Nothing was changed."),
    };
    let connection = response.headers().get(header::CONNECTION).cloned();
    let mut json = ApiError::new(status, code, message).into_response();
    if let Some(value) = connection {
        json.headers_mut().insert(header::CONNECTION, value);
    }
    json
}
