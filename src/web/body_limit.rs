//! Request body limits: small for forms, larger for the CSV import, whatever the framing (a
//! declared `Content-Length` or a chunked body without one). A body over its limit is
//! answered with a 413 page after its bytes are read and thrown away, so the browser sees the
//! page instead of a reset connection.
//!
//! Bodies are read here, whole, before any handler runs: a form is small, every POST's body
//! is read whole anyway for its CSRF token, and reading it in one place is what lets the
//! limit hold for chunked bodies and the server's body deadline hold for every reader.

use askama::Template;
use axum::body::{Body, Bytes, HttpBody};
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
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

/// When the body of a request must have arrived, whole. The server's connection loop sets it
/// on every request (`server::connections`); without it a body may take its time.
#[derive(Debug, Clone, Copy)]
pub struct BodyDeadline(pub tokio::time::Instant);

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
struct BodyErrorPage {
    chrome: Chrome,
    status: u16,
    title: &'static str,
    message: String,
}

/// What reading a body gave.
enum Read {
    Whole(Bytes),
    TooLarge,
    /// The client broke off or sent a malformed chunk.
    Failed,
}

/// Refuses a body larger than its route's limit with a 413 page (a declared length at once,
/// an undeclared one once it has sent more), and one that does not arrive by its deadline
/// with a 408 page; otherwise hands the handler the body, read whole.
pub async fn limit(request: Request, next: Next) -> Response {
    let limit = limit_for(request.uri().path());
    let length = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if request.body().is_end_stream() {
        return next.run(request).await;
    }
    let deadline = request.extensions().get::<BodyDeadline>().copied();
    let (parts, body) = request.into_parts();
    let reading = read_body(body, length, limit);
    let read = match deadline {
        Some(BodyDeadline(at)) => match tokio::time::timeout_at(at, reading).await {
            Ok(read) => read,
            Err(_) => return too_slow(),
        },
        None => reading.await,
    };
    match read {
        Read::Whole(bytes) => {
            next.run(Request::from_parts(parts, Body::from(bytes)))
                .await
        }
        Read::TooLarge => too_large(limit),
        Read::Failed => page(
            StatusCode::BAD_REQUEST,
            "Bad request",
            "What you sent could not be read. Nothing was changed.".to_owned(),
        ),
    }
}

/// Reads a body of declared `length` (if any) within `limit`: one declared too large is
/// refused at once (drained first when small enough, so the client reads the answer).
async fn read_body(body: Body, length: Option<usize>, limit: usize) -> Read {
    match length {
        Some(n) if n > limit => {
            if n <= DRAIN_LIMIT {
                let mut stream = body.into_data_stream();
                while let Some(Ok(_)) = stream.next().await {}
            }
            Read::TooLarge
        }
        _ => read_at_most(body, limit).await,
    }
}

/// Reads `body` whole if it holds at most `limit` bytes; past that it is drained (up to
/// [`DRAIN_LIMIT`]) and dropped.
async fn read_at_most(body: Body, limit: usize) -> Read {
    let mut stream = body.into_data_stream();
    let mut kept = Vec::new();
    let mut total = 0usize;
    while let Some(chunk) = stream.next().await {
        let Ok(chunk) = chunk else {
            return Read::Failed;
        };
        total = total.saturating_add(chunk.len());
        if total > DRAIN_LIMIT {
            return Read::TooLarge;
        }
        if total <= limit {
            kept.extend_from_slice(&chunk);
        }
    }
    if total > limit {
        Read::TooLarge
    } else {
        Read::Whole(Bytes::from(kept))
    }
}

/// The 413 page.
pub fn too_large(limit: usize) -> Response {
    page(
        StatusCode::PAYLOAD_TOO_LARGE,
        "Too large",
        format!(
            "What you sent is larger than this form accepts ({} KiB). Nothing was changed. Go back and send something smaller.",
            limit / 1024
        ),
    )
}

/// The 408 page, and the connection closes: a client this slow has no other request to send.
fn too_slow() -> Response {
    let mut response = page(
        StatusCode::REQUEST_TIMEOUT,
        "Too slow",
        "What you sent took too long to arrive. Nothing was changed. Try again.".to_owned(),
    );
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

fn page(status: StatusCode, title: &'static str, message: String) -> Response {
    let page = BodyErrorPage {
        chrome: Chrome::bare(),
        status: status.as_u16(),
        title,
        message,
    };
    let body = page
        .render()
        .unwrap_or_else(|_| format!("{} {title}", status.as_u16()));
    (status, Html(body)).into_response()
}
