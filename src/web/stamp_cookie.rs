//! The session's stamp cookie (see `auth::cache`): its name, reading it from a request and
//! writing it on a response.

use axum::http::{HeaderMap, HeaderValue, header};

/// The stamp cookie's name beside the session cookie's.
pub fn cookie_name(secure: bool) -> &'static str {
    if secure {
        "__Host-portcullis-v"
    } else {
        "portcullis-v"
    }
}

/// The stamp in the request's cookies, if there is exactly one well-formed one.
pub fn read_cookie(headers: &HeaderMap, name: &str) -> Option<i64> {
    let mut found = None;
    for value in headers.get_all(header::COOKIE) {
        let Ok(value) = value.to_str() else { continue };
        for pair in value.split(';') {
            let Some((k, v)) = pair.trim().split_once('=') else {
                continue;
            };
            if k == name {
                if found.is_some() {
                    return None;
                }
                found = Some(u64::from_str_radix(v, 16).ok()?);
            }
        }
    }
    found.map(|v| v as i64).filter(|v| *v != 0)
}

/// The `Set-Cookie` value for a new stamp.
pub fn set_cookie(name: &str, stamp: i64, secure: bool, max_age_seconds: i64) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    let text = format!(
        "{name}={:x}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age_seconds}{secure}",
        stamp as u64
    );
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stamp_cookie_is_read_strictly() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("portcullis=abc; portcullis-v=ff"),
        );
        assert_eq!(read_cookie(&headers, "portcullis-v"), Some(255));
        let stamp = -5;
        let cookie = set_cookie("portcullis-v", stamp, false, 1800);
        let value = cookie.to_str().unwrap_or_default();
        let pair = value.split(';').next().unwrap_or_default();
        headers.insert(header::COOKIE, HeaderValue::from_str(pair).unwrap());
        assert_eq!(read_cookie(&headers, "portcullis-v"), Some(stamp));
        for bad in [
            "portcullis-v=zz",
            "portcullis-v=0",
            "portcullis-v=1; portcullis-v=2",
            "portcullis-v=1ffffffffffffffff",
        ] {
            headers.insert(header::COOKIE, HeaderValue::from_static(bad));
            assert_eq!(read_cookie(&headers, "portcullis-v"), None, "{bad}");
        }
        assert!(
            set_cookie("__Host-portcullis-v", 1, true, 60)
                .to_str()
                .unwrap_or_default()
                .ends_with("; Secure")
        );
    }
}
