//! Request body limits: small for forms, larger for the CSV import. A body over its limit is
//! answered with a 413 page after its bytes are read and thrown away, so the browser sees the
//! page instead of a reset connection.

use askama::Template;
use axum::extract::Request;
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use futures_util::StreamExt;

use crate::web::chrome::Chrome;

/// Largest body of an ordinary form.
pub const FORM_LIMIT: usize = 64 * 1024;
/// Largest body of the CSV import (the file plus the form around it).
pub const UPLOAD_LIMIT: usize = crate::domain::csv_import::MAX_BYTES + 64 * 1024;
/// Bodies up to this size are drained before the 413 answer; bigger ones are cut off.
const DRAIN_LIMIT: usize = 64 * 1024 * 1024;

/// The routes that take uploads.
fn limit_for(path: &str) -> usize {
    if path.starts_with("/admin/resources/import") {
        UPLOAD_LIMIT
    } else {
        FORM_LIMIT
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct TooLargePage {
    chrome: Chrome,
    status: u16,
    title: &'static str,
    message: String,
}

/// Refuses a body larger than its route's limit (by `Content-Length`) with a 413 page.
pub async fn limit(request: Request, next: Next) -> Response {
    let limit = limit_for(request.uri().path());
    let length = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    match length {
        Some(n) if n > limit => {
            if n <= DRAIN_LIMIT {
                let mut stream = request.into_body().into_data_stream();
                while let Some(Ok(_)) = stream.next().await {}
            }
            too_large(limit)
        }
        _ => next.run(request).await,
    }
}

/// The 413 page.
pub fn too_large(limit: usize) -> Response {
    let page = TooLargePage {
        chrome: Chrome::bare(),
        status: 413,
        title: "Too large",
        message: format!(
            "What you sent is larger than this form accepts ({} KiB). Nothing was changed. Go back and send something smaller.",
            limit / 1024
        ),
    };
    let body = page.render().unwrap_or_else(|_| "413 Too large".to_owned());
    (StatusCode::PAYLOAD_TOO_LARGE, Html(body)).into_response()
}
