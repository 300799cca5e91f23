//! The sign-in form's CSRF protection without a stored session: a signed double-submit token.
//!
//! `GET /login` gives the browser a random value in a short-lived cookie (HttpOnly,
//! SameSite=Strict, `__Host-` prefixed over HTTPS) and puts `<issued>.<MAC>` in the form: an
//! HMAC-SHA256 of that value and the issue time, under a key derived from the key file.
//! `POST /login` must bring both, matching. Another site can make a browser post the form,
//! but can neither read nor set the cookie, nor make the MAC of a value it does not know.
//! So an anonymous visitor costs no database write, and every instance behind a load
//! balancer accepts the others' tokens, as they share the key file.

use axum::http::{HeaderMap, HeaderValue, header};
use hmac::Mac;
use subtle::ConstantTimeEq;

use crate::crypto::SecretBox;

/// What the key is derived for.
const PURPOSE: &str = "sign-in-form-csrf";
/// How long a sign-in form stays good, and its cookie.
pub const MAX_AGE_SECONDS: i64 = 3600;
/// Slack for instances whose clocks disagree a little.
const CLOCK_SKEW_SECONDS: i64 = 60;
/// The cookie value: 32 random bytes, hex.
const VALUE_LEN: usize = 64;

/// The cookie's name.
pub fn cookie_name(secure: bool) -> &'static str {
    if secure {
        "__Host-portcullis-login"
    } else {
        "portcullis-login"
    }
}

/// A token for the form, and the cookie that goes with it.
pub struct Issued {
    pub field: String,
    pub set_cookie: HeaderValue,
}

/// A token for a sign-in form, for the browser's cookie value while it has a good one (so
/// two open sign-in tabs both work), else for a new one.
pub fn issue(secrets: &SecretBox, headers: &HeaderMap, secure: bool, now: i64) -> Issued {
    let value = read_cookie(headers, cookie_name(secure)).unwrap_or_else(new_value);
    let field = match mac(secrets, &value, now) {
        Some(tag) => format!("{now}.{tag}"),
        // Cannot happen (HMAC takes any key length); such a form is refused, nothing else.
        None => String::new(),
    };
    let text = format!(
        "{}={value}; Path=/; Max-Age={MAX_AGE_SECONDS}; HttpOnly; SameSite=Strict{}",
        cookie_name(secure),
        if secure { "; Secure" } else { "" }
    );
    Issued {
        field,
        set_cookie: HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static("")),
    }
}

/// Whether `field` is a token issued, less than [`MAX_AGE_SECONDS`] ago, for the cookie this
/// request carries (compared in constant time).
pub fn verify(
    secrets: &SecretBox,
    headers: &HeaderMap,
    secure: bool,
    field: &str,
    now: i64,
) -> bool {
    let Some(value) = read_cookie(headers, cookie_name(secure)) else {
        return false;
    };
    let Some((issued, tag)) = field.split_once('.') else {
        return false;
    };
    let Ok(issued) = issued.parse::<i64>() else {
        return false;
    };
    if now.saturating_sub(issued) > MAX_AGE_SECONDS
        || issued.saturating_sub(now) > CLOCK_SKEW_SECONDS
    {
        return false;
    }
    match mac(secrets, &value, issued) {
        Some(expected) => bool::from(expected.as_bytes().ct_eq(tag.as_bytes())),
        None => false,
    }
}

/// The MAC of a cookie value and an issue time, hex.
fn mac(secrets: &SecretBox, value: &str, issued: i64) -> Option<String> {
    let key = secrets.derived_key(PURPOSE);
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&key).ok()?;
    mac.update(value.as_bytes());
    mac.update(b".");
    mac.update(issued.to_string().as_bytes());
    Some(
        mac.finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect(),
    )
}

/// The cookie's value, if the request carries exactly one well-formed one.
fn read_cookie(headers: &HeaderMap, name: &str) -> Option<String> {
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
                found = Some(v.to_owned());
            }
        }
    }
    found.filter(|v| v.len() == VALUE_LEN && v.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn new_value() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; VALUE_LEN / 2];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cookie(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            format!("portcullis-login={value}").parse().unwrap(),
        );
        h
    }

    #[test]
    fn a_token_verifies_only_with_its_cookie_its_key_and_in_time() {
        let secrets = SecretBox::random();
        let issued = issue(&secrets, &HeaderMap::new(), false, 1_000_000);
        let value = issued
            .set_cookie
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .strip_prefix("portcullis-login=")
            .unwrap()
            .to_owned();
        let jar = cookie(&value);
        assert!(verify(&secrets, &jar, false, &issued.field, 1_000_010));
        assert!(!verify(
            &secrets,
            &HeaderMap::new(),
            false,
            &issued.field,
            1_000_010
        ));
        assert!(!verify(
            &secrets,
            &cookie(&"a".repeat(64)),
            false,
            &issued.field,
            1_000_010
        ));
        assert!(!verify(
            &SecretBox::random(),
            &jar,
            false,
            &issued.field,
            1_000_010
        ));
        assert!(!verify(
            &secrets,
            &jar,
            false,
            &issued.field,
            1_000_000 + MAX_AGE_SECONDS + 1
        ));
        assert!(!verify(&secrets, &jar, false, "", 1_000_010));
        assert!(
            !verify(&secrets, &jar, true, &issued.field, 1_000_010),
            "other cookie name"
        );
        // A later time with the same MAC is a forgery.
        let (_, tag) = issued.field.split_once('.').unwrap();
        assert!(!verify(
            &secrets,
            &jar,
            false,
            &format!("1000005.{tag}"),
            1_000_010
        ));
        // The browser's cookie is kept for its next form.
        let again = issue(&secrets, &jar, false, 1_000_020);
        assert!(again.set_cookie.to_str().unwrap().contains(&value));
    }
}
