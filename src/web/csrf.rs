//! CSRF protection: every POST carries the session's token in the `csrf_token` form field
//! (urlencoded, or a part of a `multipart/form-data` upload). One middleware checks every
//! POST of the application, so no route can forget to. The sign-in form may carry a signed
//! token instead (`web::login_token`), so that an anonymous visitor needs no stored session.

use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::{Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;
use tower_sessions::Session;

use crate::auth::session;
use crate::state::AppState;
use crate::web::error::AppError;
use crate::web::login_token;
use crate::web::multipart;

/// The form field that carries the token.
pub const FIELD: &str = "csrf_token";

/// Largest form body read here; the body limit layer outside refuses larger ones first.
const MAX_FORM_BYTES: usize = crate::web::body_limit::UPLOAD_LIMIT;

/// Refuses a POST whose `csrf_token` field does not match the session's token (or, for a
/// browser whose session has none, the signed sign-in token), before the handler runs (so
/// nothing changes).
pub async fn verify(
    State(state): State<AppState>,
    session: Session,
    request: Request,
    next: Next,
) -> Response {
    if request.method() != Method::POST {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    let bytes = match to_bytes(body, MAX_FORM_BYTES).await {
        Ok(b) => b,
        Err(_) => return crate::web::body_limit::too_large(MAX_FORM_BYTES),
    };
    let sent = sent_token(&parts.headers, &bytes).await;
    let expected = match session::existing_csrf_token(&session).await {
        Ok(t) => t,
        Err(e) => return AppError::from(e).into_response(),
    };
    let ok = match (sent, expected) {
        (Some(sent), Some(expected)) if bool::from(sent.as_bytes().ct_eq(expected.as_bytes())) => {
            true
        }
        // A browser whose session has no token (an anonymous visitor's forms carry the signed
        // token of `web::login_token`), and the sign-in form shown before a session began.
        (Some(sent), expected) if expected.is_none() || parts.uri.path() == "/login" => {
            signed_token_ok(&state, &parts.headers, &sent)
        }
        _ => false,
    };
    if !ok {
        tracing::warn!(path = %parts.uri.path(), "refused a POST with a missing or wrong CSRF token");
        return AppError::Csrf.into_response();
    }
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

/// The `csrf_token` field of a urlencoded or multipart body.
async fn sent_token(headers: &axum::http::HeaderMap, bytes: &axum::body::Bytes) -> Option<String> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if content_type.starts_with("application/x-www-form-urlencoded") {
        form_field(bytes, FIELD)
    } else if multipart::is_multipart(content_type) {
        multipart_field(content_type, bytes.clone()).await
    } else {
        None
    }
}

/// The signed sign-in token (`web::login_token`) of a browser without a session token.
fn signed_token_ok(state: &AppState, headers: &axum::http::HeaderMap, sent: &str) -> bool {
    login_token::verify(
        &state.secrets,
        headers,
        state.settings.cookie_secure,
        sent,
        time::OffsetDateTime::now_utc().unix_timestamp(),
    )
}

/// The token among a multipart body's text parts.
async fn multipart_field(content_type: &str, bytes: axum::body::Bytes) -> Option<String> {
    multipart::parse(content_type, bytes)
        .await?
        .into_iter()
        .find(|p| p.name == FIELD && p.filename.is_none())
        .and_then(|p| String::from_utf8(p.data).ok())
}

fn form_field(body: &[u8], name: &str) -> Option<String> {
    serde_urlencoded::from_bytes::<Vec<(String, String)>>(body)
        .ok()?
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}
