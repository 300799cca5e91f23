//! The browser terminal behind the Connection icon of SSH sessions: a page with xterm.js and
//! a WebSocket to the same upstream path as the SSH gateway (`gateway::upstream`), so the
//! same checks, recording and cut-offs apply. The socket needs the signed-in web session
//! (its cookie) and an Origin of this site: another site's page cannot open it with the
//! user's cookie.
//!
//! Frames: binary both ways for the terminal's bytes; text for JSON control messages,
//! `{"type":"resize","cols":..,"rows":..}` from the browser and
//! `{"type":"closed","reason":".."}` from us, just before we close.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use std::net::IpAddr;
use uuid::Uuid;

use crate::db::recordings::Via;
use crate::db::sessions::ConnectInfo;
use crate::domain::catalog::Protocol;
use crate::gateway::upstream::{self, Door, Input, Output, Pty, Request, Start, Terminal};
use crate::live::Full;
use crate::state::AppState;
use crate::web::chrome::Chrome;
use crate::web::client::ClientAddr;
use crate::web::connect;
use crate::web::error::{AppError, AppResult};
use crate::web::guard::CurrentUser;
use crate::web::path_id::PathId;

/// The largest frame the browser may send: keystrokes and pastes, not file uploads.
const MAX_FRAME: usize = 64 * 1024;

#[derive(Template, WebTemplate)]
#[template(path = "connect/terminal.html")]
pub struct TerminalPage {
    chrome: Chrome,
    s: ConnectInfo,
    usable: bool,
    refusal: String,
}

/// `GET /sessions/{id}/terminal`: the terminal page for the requester's own SSH session.
pub async fn page(
    State(state): State<AppState>,
    chrome: Chrome,
    user: CurrentUser,
    PathId(id): PathId,
) -> AppResult<Response> {
    let (s, ended) = connect::checked(&state, &user, id).await?;
    if s.protocol != Protocol::Ssh {
        return Err(AppError::NotFound);
    }
    let usable = ended.is_none() && s.status.is_connectable();
    let page = TerminalPage {
        chrome: chrome.at("dashboard"),
        usable,
        refusal: ended.unwrap_or_else(|| connect::refusal(&s)),
        s,
    };
    let status = if usable {
        StatusCode::OK
    } else {
        StatusCode::CONFLICT
    };
    Ok((status, page).into_response())
}

/// The browser's terminal size when it opens the socket.
#[derive(Debug, Deserialize)]
pub struct Size {
    cols: Option<u16>,
    rows: Option<u16>,
}

/// A resize message from the browser.
#[derive(Debug, Deserialize)]
struct Control {
    #[serde(rename = "type")]
    kind: String,
    cols: u16,
    rows: u16,
}

/// `GET /sessions/{id}/terminal/socket`: the WebSocket. Refusals (the session is not usable,
/// the target refuses) arrive as a `closed` message with the reason, which the page shows.
pub async fn socket(
    State(state): State<AppState>,
    user: CurrentUser,
    PathId(id): PathId,
    Query(size): Query<Size>,
    ClientAddr(client): ClientAddr,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> AppResult<Response> {
    if !same_origin(&headers) {
        return Err(AppError::Forbidden);
    }
    // Not the requester's own session: as if it did not exist, before anything opens.
    connect::own(&state, &user, id).await?;
    let request = shell(&user, id, &size, client);
    // Counted from here until the socket closes; beyond a cap nothing opens upstream and the
    // page shows why.
    let slot = state.live.admit_terminal(user.id);
    Ok(upgrade
        .max_message_size(MAX_FRAME)
        .max_frame_size(MAX_FRAME)
        .on_upgrade(move |socket| async move {
            let _slot = match slot {
                Ok(slot) => slot,
                Err(full) => return close(socket, &too_many(full, &user)).await,
            };
            match upstream::open_terminal(&state, request).await {
                Ok(terminal) => relay(socket, terminal).await,
                Err(refusal) => close(socket, &refusal.0).await,
            }
        }))
}

/// What the browser terminal asks upstream: a shell on session `id`, in the browser's size.
fn shell(user: &CurrentUser, id: Uuid, size: &Size, client: Option<IpAddr>) -> Request {
    let pty = Pty {
        term: "xterm-256color".into(),
        cols: u32::from(size.cols.unwrap_or(80).clamp(1, 1000)),
        rows: u32::from(size.rows.unwrap_or(24).clamp(1, 1000)),
    };
    Request {
        user: user.id,
        door: Door::Session(id),
        via: Via::Browser,
        start: Start::Shell,
        pty: Some(pty),
        client,
    }
}

/// Why a terminal beyond a cap does not open.
fn too_many(full: Full, user: &CurrentUser) -> String {
    match full {
        Full::User(max) => {
            tracing::warn!(user = %user.username, max, "browser terminal refused: the user's cap is reached");
            format!(
                "You have {max} browser terminals open already; close one to open another, or use the ssh line on the Connect page."
            )
        }
        Full::Instance(max) => {
            tracing::warn!(
                max,
                "browser terminal refused: this instance's cap is reached"
            );
            "This server has too many browser terminals open; try again in a few minutes, or use the ssh line on the Connect page.".to_owned()
        }
    }
}

/// Whether the request's Origin is this site (the Host it was sent to). Browsers always send
/// Origin on WebSocket requests; a request without one is refused too.
fn same_origin(headers: &HeaderMap) -> bool {
    let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok());
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    match (origin, host) {
        (Some(origin), Some(host)) => origin
            .strip_prefix("https://")
            .or_else(|| origin.strip_prefix("http://"))
            .is_some_and(|o| o.eq_ignore_ascii_case(host)),
        _ => false,
    }
}

/// Carries bytes both ways until either side closes.
async fn relay(mut socket: WebSocket, mut terminal: Terminal) {
    loop {
        tokio::select! {
            out = terminal.output.recv() => match out {
                Some(Output::Data(bytes) | Output::Stderr(bytes)) => {
                    if socket.send(Message::Binary(bytes)).await.is_err() {
                        return;
                    }
                }
                Some(Output::Exit(_)) => {}
                Some(Output::Closed(reason)) => {
                    let reason = reason.unwrap_or_else(|| "The connection was closed.".into());
                    return close(socket, reason.trim()).await;
                }
                None => return close(socket, "The connection was closed.").await,
            },
            message = socket.recv() => {
                let input = match message {
                    Some(Ok(Message::Binary(bytes))) => Input::Data(bytes.to_vec()),
                    Some(Ok(Message::Text(text))) => match serde_json::from_str::<Control>(&text) {
                        Ok(c) if c.kind == "resize" => Input::Resize {
                            cols: u32::from(c.cols.clamp(1, 1000)),
                            rows: u32::from(c.rows.clamp(1, 1000)),
                        },
                        _ => continue,
                    },
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                    // The browser went away: the upstream side ends when its input closes.
                    Some(Ok(Message::Close(_)) | Err(_)) | None => {
                        let _ = terminal.input.send(Input::Eof).await;
                        return;
                    }
                };
                if terminal.input.send(input).await.is_err() {
                    return close(socket, "The connection was closed.").await;
                }
            }
        }
    }
}

/// Tells the page why, then closes.
async fn close(mut socket: WebSocket, reason: &str) {
    let message = serde_json::json!({ "type": "closed", "reason": reason }).to_string();
    let _ = socket.send(Message::Text(message.into())).await;
    let _ = socket.send(Message::Close(None)).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(origin: Option<&'static str>, host: &'static str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static(host));
        if let Some(o) = origin {
            h.insert(header::ORIGIN, HeaderValue::from_static(o));
        }
        h
    }

    #[test]
    fn only_this_sites_origin_may_open_the_socket() {
        assert!(same_origin(&headers(
            Some("http://127.0.0.1:3000"),
            "127.0.0.1:3000"
        )));
        assert!(same_origin(&headers(
            Some("https://pc.example"),
            "pc.example"
        )));
        assert!(!same_origin(&headers(
            Some("https://evil.example"),
            "pc.example"
        )));
        assert!(!same_origin(&headers(
            Some("https://pc.example.evil"),
            "pc.example"
        )));
        assert!(!same_origin(&headers(Some("null"), "pc.example")));
        assert!(!same_origin(&headers(None, "pc.example")));
    }
}
