//! Refuses control characters in any text a request carries (the path, the query string, a
//! urlencoded form, the text fields of a multipart upload) before any handler sees it.
//!
//! PostgreSQL cannot store NUL in text: before this, a NUL in a note, a search or the sign-in
//! form was a 500 and an ERROR line in the log, and a draft holding one failed at every
//! Finish. No field of ours has a use for the other C0 controls, DEL or the C1 controls
//! either (C1 holds terminal escapes). Tab, CR and LF stay allowed: text areas send them, and
//! single-line fields refuse line breaks themselves. One middleware over the whole router
//! means every route, including future ones, is covered without code per field.

use askama::Template;
use axum::body::{Body, to_bytes};
use axum::extract::Request;
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};

use crate::web::chrome::Chrome;
use crate::web::{body_limit, multipart};

/// Where the refused character was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offence {
    /// The field's name as sent (`None`: the address itself, or a field's name).
    pub field: Option<String>,
    pub character: char,
}

impl Offence {
    /// What the user is told: the field, the character, and that nothing changed.
    pub fn message(&self) -> String {
        let what = match &self.field {
            Some(name) => label(name),
            None => "The address or a field name".to_owned(),
        };
        let character = match self.character {
            '\0' => "NUL".to_owned(),
            c => format!("control character U+{:04X}", u32::from(c)),
        };
        format!(
            "{what} contains a character that cannot be stored ({character}). Nothing was changed. Go back, remove it and try again."
        )
    }
}

/// Whether `c` is refused: any control character but tab, CR and LF.
pub fn is_refused(c: char) -> bool {
    c.is_control() && !matches!(c, '\t' | '\r' | '\n')
}

/// The first refused character among urlencoded `pairs` (a query string or a form body).
pub fn check_urlencoded(pairs: &[u8]) -> Option<Offence> {
    for (name, value) in form_urlencoded_pairs(pairs) {
        if let Some(c) = name.chars().find(|c| is_refused(*c)) {
            return Some(Offence {
                field: None,
                character: c,
            });
        }
        if let Some(c) = value.chars().find(|c| is_refused(*c)) {
            return Some(Offence {
                field: Some(name),
                character: c,
            });
        }
    }
    None
}

/// The first refused character in a path (`%00`-style escapes; raw control bytes never get
/// past the HTTP parser).
pub fn check_path(path: &str) -> Option<Offence> {
    let bytes = path.as_bytes();
    bytes.windows(3).find_map(|w| {
        let [b'%', hi, lo] = w else { return None };
        let digit = |b: u8| char::from(b).to_digit(16);
        let byte = u8::try_from(digit(*hi)? * 16 + digit(*lo)?).ok()?;
        let c = char::from(byte);
        (byte < 0x80 && is_refused(c)).then_some(Offence {
            field: None,
            character: c,
        })
    })
}

fn form_urlencoded_pairs(text: &[u8]) -> Vec<(String, String)> {
    // Lossy: bytes that are not UTF-8 become U+FFFD, which the fields judge themselves.
    serde_urlencoded::from_bytes::<Vec<(String, String)>>(text).unwrap_or_default()
}

/// "ticket_number" → "Ticket number", "q" → "Search".
fn label(name: &str) -> String {
    match name {
        "q" => return "Search".to_owned(),
        "csv" => return "The CSV text".to_owned(),
        _ => {}
    }
    let words = name.replace(['_', '-'], " ");
    let mut chars = words.trim().chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => "A field".to_owned(),
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct RefusedPage {
    chrome: Chrome,
    status: u16,
    title: &'static str,
    message: String,
}

fn refuse(offence: &Offence, path: &str) -> Response {
    tracing::info!(%path, field = ?offence.field, "refused a request with a control character");
    let page = RefusedPage {
        chrome: Chrome::bare(),
        status: 400,
        title: "Invalid input",
        message: offence.message(),
    };
    let body = page
        .render()
        .unwrap_or_else(|_| "400 Invalid input".to_owned());
    (StatusCode::BAD_REQUEST, Html(body)).into_response()
}

/// The first refused character in the text fields of a multipart body (a file is judged by
/// its reader: the CSV import names the line).
async fn check_multipart(content_type: &str, bytes: axum::body::Bytes) -> Option<Offence> {
    let parts = multipart::parse(content_type, bytes).await?;
    parts
        .into_iter()
        .filter(|p| p.filename.is_none())
        .find_map(|p| {
            let text = String::from_utf8_lossy(&p.data);
            let c = text.chars().find(|c| is_refused(*c))?;
            Some(Offence {
                field: Some(p.name),
                character: c,
            })
        })
}

/// The middleware. It reads a form body once, into memory (forms are small and bounded by
/// the body limit outside), and hands the same bytes on, so later readers (the CSRF check,
/// the handler) read them from memory.
pub async fn refuse_control_characters(request: Request, next: Next) -> Response {
    let path = request.uri().path().to_owned();
    let in_address = check_path(&path).or_else(|| {
        request
            .uri()
            .query()
            .and_then(|q| check_urlencoded(q.as_bytes()))
    });
    if let Some(offence) = in_address {
        return refuse(&offence, &path);
    }
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let is_form = content_type.starts_with("application/x-www-form-urlencoded");
    let is_multipart = multipart::is_multipart(&content_type);
    if !is_form && !is_multipart {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    let bytes = match to_bytes(body, body_limit::UPLOAD_LIMIT).await {
        Ok(b) => b,
        Err(_) => return body_limit::too_large(body_limit::UPLOAD_LIMIT),
    };
    let offence = if is_multipart {
        check_multipart(&content_type, bytes.clone()).await
    } else {
        check_urlencoded(&bytes)
    };
    if let Some(offence) = offence {
        return refuse(&offence, &path);
    }
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nul_in_a_form_field_is_found_and_named() {
        let offence = check_urlencoded(b"csrf_token=x&notes=a%00b").unwrap();
        assert_eq!(offence.field.as_deref(), Some("notes"));
        assert_eq!(
            offence.message(),
            "Notes contains a character that cannot be stored (NUL). Nothing was changed. \
             Go back, remove it and try again."
        );
    }

    #[test]
    fn tabs_and_line_breaks_pass_other_controls_do_not() {
        assert_eq!(check_urlencoded(b"notes=a%09b%0D%0Ac"), None);
        assert_eq!(check_urlencoded(b"q=plain+text&x=%C3%A9"), None);
        for bad in ["%01", "%1B", "%7F", "%C2%9B"] {
            let body = format!("ticket_number=a{bad}");
            let offence = check_urlencoded(body.as_bytes()).unwrap();
            assert!(offence.message().starts_with("Ticket number contains"));
        }
        assert_eq!(
            check_urlencoded(b"q=%00").unwrap().message()[..6],
            *"Search"
        );
    }

    #[test]
    fn a_control_character_in_a_field_name_or_the_path_is_found() {
        assert_eq!(check_urlencoded(b"a%00=1").unwrap().field, None);
        assert!(check_path("/sessions/%00").is_some());
        assert!(check_path("/sessions/%1b").is_some());
        assert_eq!(check_path("/static/app%20x.css"), None);
        assert_eq!(check_path("/sessions/%C3%A9"), None);
    }
}
