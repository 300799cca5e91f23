//! `multipart/form-data` bodies (file uploads), already in memory, read by axum's
//! [`Multipart`] (multer) rather than by a parser of our own. The CSRF check and the text
//! guard read the same bodies before the handler, so they share [`parse`]. The bodies are
//! bounded by the body limit before they get here, so reading them whole is fine.

use std::convert::Infallible;

use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, FromRequest, Multipart, Request};
use axum::http::header;
use tower::{Layer, ServiceExt};

/// At most this many parts: no form of ours has more.
const MAX_PARTS: usize = 100;

/// One part of the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    pub name: String,
    /// Present for a file input (empty when no file was chosen).
    pub filename: Option<String>,
    pub data: Vec<u8>,
}

/// Whether a content type is `multipart/form-data` with a boundary (which [`parse`] reads).
pub fn is_multipart(content_type: &str) -> bool {
    let mut params = content_type.split(';');
    params
        .next()
        .is_some_and(|m| m.trim().eq_ignore_ascii_case("multipart/form-data"))
        && params.any(|p| {
            p.split_once('=').is_some_and(|(k, v)| {
                k.trim().eq_ignore_ascii_case("boundary") && !v.trim().trim_matches('"').is_empty()
            })
        })
}

/// Splits a body of `content_type` into its parts; `None` when it is not a well-formed
/// `multipart/form-data` body, or has a part without a name or too many parts.
pub async fn parse(content_type: &str, body: Bytes) -> Option<Vec<Part>> {
    let request = Request::builder()
        .header(header::CONTENT_TYPE, content_type)
        .body(Body::from(body))
        .ok()?;
    // The body is in memory and within its route's limit already: no second limit here.
    let read = DefaultBodyLimit::disable().layer(tower::service_fn(|request: Request| async {
        Ok::<_, Infallible>(read_parts(request).await)
    }));
    read.oneshot(request).await.ok().flatten()
}

async fn read_parts(request: Request) -> Option<Vec<Part>> {
    let mut multipart = Multipart::from_request(request, &()).await.ok()?;
    let mut parts = Vec::new();
    while let Some(field) = multipart.next_field().await.ok()? {
        let name = field.name()?.to_owned();
        let filename = field.file_name().map(str::to_owned);
        let data = field.bytes().await.ok()?.to_vec();
        parts.push(Part {
            name,
            filename,
            data,
        });
        if parts.len() > MAX_PARTS {
            return None;
        }
    }
    Some(parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TYPE: &str = "multipart/form-data; boundary=XyZ";

    #[tokio::test]
    async fn parts_are_read_with_their_names_and_files() {
        let body = b"--XyZ\r\nContent-Disposition: form-data; name=\"csrf_token\"\r\n\r\nabc\r\n--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"r.csv\"\r\nContent-Type: text/csv\r\n\r\nname,kind\r\na,b\r\n\r\n--XyZ--\r\n";
        let parts = parse(TYPE, Bytes::from_static(body)).await.unwrap();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].name, "csrf_token");
        assert_eq!(parts[0].filename, None);
        assert_eq!(parts[0].data, b"abc");
        assert_eq!(parts[1].filename.as_deref(), Some("r.csv"));
        assert_eq!(parts[1].data, b"name,kind\r\na,b\r\n");
    }

    #[tokio::test]
    async fn bodies_that_are_not_well_formed_multipart_give_nothing() {
        assert_eq!(parse(TYPE, Bytes::from_static(b"garbage")).await, None);
        let cut = b"--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nabc";
        assert_eq!(parse(TYPE, Bytes::from_static(cut)).await, None);
        let nameless = b"--XyZ\r\nContent-Disposition: form-data\r\n\r\nabc\r\n--XyZ--\r\n";
        assert_eq!(parse(TYPE, Bytes::from_static(nameless)).await, None);
        let many: String = (0..=MAX_PARTS)
            .map(|i| format!("--XyZ\r\nContent-Disposition: form-data; name=\"f{i}\"\r\n\r\nx\r\n"))
            .collect::<String>()
            + "--XyZ--\r\n";
        assert_eq!(parse(TYPE, Bytes::from(many)).await, None);
    }

    #[test]
    fn only_form_data_with_a_boundary_is_multipart() {
        assert!(is_multipart("multipart/form-data; boundary=\"abc\""));
        assert!(!is_multipart("multipart/form-data"));
        assert!(!is_multipart("application/x-www-form-urlencoded"));
    }
}
