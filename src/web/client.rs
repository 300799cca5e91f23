//! The client's address, for session events and the sign-in rate limit.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::HeaderMap;
use axum::http::request::Parts;

use crate::state::AppState;

/// The client's address: the connection's peer, or behind a trusted reverse proxy
/// (`PORTCULLIS_TRUSTED_PROXIES`) the address that proxy says it forwarded for.
pub struct ClientAddr(pub Option<IpAddr>);

impl FromRequestParts<AppState> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip());
        Ok(Self(peer.map(|peer| {
            client_address(peer, &parts.headers, &state.settings.trusted_proxies)
        })))
    }
}

/// The client behind `peer`: when `peer` is a trusted proxy, the right-most address of
/// X-Forwarded-For that is not a trusted proxy itself (each proxy appends the address it
/// received from, so entries further left were written by whoever sent the request and prove
/// nothing). A malformed entry stops the walk at the last address known to be good.
pub fn client_address(peer: IpAddr, headers: &HeaderMap, trusted: &[IpAddr]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.contains(&canonical(*ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let mut client = peer;
    let entries: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .collect();
    for entry in entries.iter().rev() {
        match entry.trim().parse::<IpAddr>() {
            Ok(ip) => {
                client = canonical(ip);
                if !is_trusted(&client) {
                    break;
                }
            }
            Err(_) => break,
        }
    }
    client
}

/// IPv4-mapped IPv6 addresses as plain IPv4, so one client has one address.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(xff: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in xff {
            h.append("x-forwarded-for", v.parse().unwrap());
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn forwarded_for_is_believed_only_from_a_trusted_proxy() {
        let proxy = ip("10.0.0.2");
        let h = headers(&["203.0.113.9"]);
        assert_eq!(client_address(proxy, &h, &[]), proxy);
        assert_eq!(
            client_address(ip("198.51.100.1"), &h, &[proxy]),
            ip("198.51.100.1")
        );
        assert_eq!(client_address(proxy, &h, &[proxy]), ip("203.0.113.9"));
    }

    #[test]
    fn addresses_a_client_wrote_itself_are_ignored() {
        let proxy = ip("10.0.0.2");
        // The client sent "X-Forwarded-For: 1.2.3.4"; the proxy appended the real peer.
        let h = headers(&["1.2.3.4, 203.0.113.9"]);
        assert_eq!(client_address(proxy, &h, &[proxy]), ip("203.0.113.9"));
        // Two proxies in a row, over two header lines.
        let inner = ip("10.0.0.3");
        let h = headers(&["1.2.3.4", "203.0.113.9, 10.0.0.3"]);
        assert_eq!(
            client_address(proxy, &h, &[proxy, inner]),
            ip("203.0.113.9")
        );
    }

    #[test]
    fn a_malformed_entry_stops_at_the_last_good_address() {
        let proxy = ip("10.0.0.2");
        let h = headers(&["203.0.113.9, not-an-address"]);
        assert_eq!(client_address(proxy, &h, &[proxy]), proxy);
        let h = headers(&["::ffff:203.0.113.9"]);
        assert_eq!(client_address(proxy, &h, &[proxy]), ip("203.0.113.9"));
    }
}
