//! Webhook endpoints' rules: the event types one may ask for, and what an address and a
//! signing secret must look like (the sender is `crate::webhooks`).

use std::net::IpAddr;

/// The event types an endpoint can ask for, with their labels.
pub const EVENT_TYPES: [(&str, &str); 3] = [
    ("request.created", "Request created"),
    ("request.decision", "Decision (approval or denial)"),
    ("session.status_changed", "Session status change"),
];

/// Checks an endpoint address: `https://` anywhere, or `http://` to this machine only
/// (loopback), without a user name or password, at most 2000 characters. Returns it trimmed.
pub fn check_url(text: &str) -> Result<String, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err(
            "Enter the endpoint's address, such as https://hooks.example.com/portcullis.".into(),
        );
    }
    if text.chars().count() > 2000 {
        return Err("The address is too long: at most 2000 characters.".into());
    }
    let url = reqwest::Url::parse(text).map_err(|e| {
        format!("This is not a valid address ({e}): write it as https://host/path.")
    })?;
    let Some(host) = url.host_str().filter(|h| !h.is_empty()) else {
        return Err("The address needs a host name: write it as https://host/path.".into());
    };
    if !url.username().is_empty() || url.password().is_some() {
        return Err("The address must not hold a user name or password (it would be shown on the pages); authenticate the events with the secret instead.".into());
    }
    if url.fragment().is_some() {
        return Err("The address must not have a #fragment.".into());
    }
    match url.scheme() {
        "https" => Ok(text.to_owned()),
        "http" if is_loopback(host) => Ok(text.to_owned()),
        "http" => Err("Plain http:// is only allowed to this machine (127.0.0.1, [::1] or localhost): use https://.".into()),
        other => Err(format!("The address must start with https:// (not {other}://).")),
    }
}

fn is_loopback(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Checks a signing secret: 16 to 200 characters, no spaces or control characters.
pub fn check_secret(text: &str) -> Result<String, String> {
    let n = text.chars().count();
    if n < 16 {
        return Err("The secret must have at least 16 characters (use a random string, such as the output of: openssl rand -hex 32).".into());
    }
    if n > 200 {
        return Err("The secret is too long: at most 200 characters.".into());
    }
    if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("The secret must not contain spaces or control characters.".into());
    }
    Ok(text.to_owned())
}
