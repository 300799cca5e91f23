//! Connect: how to reach the resource of an Available or Logged In session, for its
//! requester only. The generated password and the connection string appear only in the
//! response to a POST (Reveal, Show connection string), each on the session's record. The
//! first real connection moves Available to Logged In: through the SSH gateway (see
//! `gateway`), or the explicit RDP and HTTPS launches here; Reveal or a copied SSH line alone
//! does not. Every action here re-checks the session's grant
//! first: one its policy no longer grants ends, and the page says why.

use std::net::IpAddr;

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::db;
use crate::db::sessions::{Actor, ConnectInfo, NewEvent};
use crate::domain::catalog::Protocol;
use crate::domain::connect;
use crate::domain::event::EventKind;
use crate::domain::status::{SessionStatus, Transition};
use crate::domain::target_access::account_note;
use crate::domain::wizard::format_local;
use crate::state::AppState;
use crate::web::chrome::Chrome;
use crate::web::client::ClientAddr;
use crate::web::error::{AppError, AppResult};
use crate::web::form::{Form, first};
use crate::web::guard::CurrentUser;
use crate::web::path_id::PathId;

/// How long a revealed password stays on screen, in seconds.
pub const REVEAL_SECONDS: u32 = 20;
/// The warning banner shows in the last minutes of the window.
pub const WARN_MINUTES: i64 = 10;

#[derive(Template, WebTemplate)]
#[template(path = "connect/page.html")]
pub struct ConnectPage {
    chrome: Chrome,
    s: ConnectInfo,
    usable: bool,
    refusal: String,
    ssh_command: String,
    /// For a database resource: how a database client reaches it, shown instead of `ssh`.
    database_line: Option<String>,
    ssh_url: String,
    https_url: String,
    has_password: bool,
    /// The password is being set afresh on the target (after an Unlock).
    restoring: bool,
    password: Option<String>,
    /// The account as it really is on the target (or that the resource is simulated).
    account_note: String,
    connection_string: Option<String>,
    gateway: Option<String>,
    /// The built-in SSH gateway's port and host key, when one runs on this database.
    gateway_ssh: Option<db::gateway::Announced>,
    ends_local: String,
    ends_iso: String,
    minutes_left: i64,
    warn: bool,
    can_extend: bool,
    reveal_seconds: u32,
    time_zone: &'static str,
}

/// The session, if it is the user's own: anyone else is told it does not exist.
pub(crate) async fn own(state: &AppState, user: &CurrentUser, id: Uuid) -> AppResult<ConnectInfo> {
    let s = db::sessions::connect_info(&state.db, id)
        .await?
        .ok_or(AppError::NotFound)?;
    if s.requester_id != user.id {
        return Err(AppError::NotFound);
    }
    Ok(s)
}

/// The user's own session, after re-checking its grant: a session its policy no longer
/// grants is ended here, and the reason comes back with it.
pub(crate) async fn checked(
    state: &AppState,
    user: &CurrentUser,
    id: Uuid,
) -> AppResult<(ConnectInfo, Option<String>)> {
    let s = own(state, user, id).await?;
    if s.status.is_final() {
        return Ok((s, None));
    }
    let mut tx = state.db.begin().await?;
    let lapsed = db::grants::revoke_if_lapsed(&mut tx, id).await?;
    tx.commit().await?;
    match lapsed {
        Some(why) => {
            let s = own(state, user, id).await?;
            Ok((s, Some(format!("{why} The session was ended."))))
        }
        None => Ok((s, None)),
    }
}

/// Why a session in `status` cannot be connected to, in words for the requester.
pub fn refusal(s: &ConnectInfo) -> String {
    match s.status {
        SessionStatus::WaitingForApproval => {
            "Waiting for Approval: you can connect once it is approved.".into()
        }
        SessionStatus::Pending => "Pending: you can connect when the session starts.".into(),
        SessionStatus::Provisioning => {
            "Provisioning: the login account is being prepared. Refresh in a moment.".into()
        }
        SessionStatus::Locked => format!(
            "Locked by an administrator: {}. No new connection until it is unlocked.",
            s.lock_message.as_deref().unwrap_or("no reason given")
        ),
        SessionStatus::Available | SessionStatus::LoggedIn => String::new(),
        other => format!(
            "This session is over ({}). Create Session to request access again.",
            other.label()
        ),
    }
}

/// What the page shows besides the session.
#[derive(Default)]
struct Shown {
    password: Option<String>,
    connection_string: Option<String>,
    /// Why the session just ended (its grant lapsed), instead of the usual refusal.
    ended: Option<String>,
}

fn page(
    state: &AppState,
    chrome: Chrome,
    user: &CurrentUser,
    s: ConnectInfo,
    shown: Shown,
) -> ConnectPage {
    let login = s.login_account.clone().unwrap_or_default();
    let target = connect::Target {
        address: &s.resource_address,
        port: s.resource_port,
        login: &login,
    };
    let now = OffsetDateTime::now_utc();
    let minutes_left = ((s.ends_at - now).whole_seconds().max(0) + 59) / 60;
    let usable = s.status.is_connectable();
    ConnectPage {
        usable,
        refusal: shown.ended.unwrap_or_else(|| refusal(&s)),
        ssh_command: connect::ssh_command(&target, state.settings.ssh_jump_host.as_deref()),
        database_line: (s.resource_kind.as_deref() == Some("database"))
            .then(|| connect::database_line(&target, s.resource_platform.as_deref().unwrap_or(""))),
        ssh_url: connect::ssh_url(&target),
        https_url: connect::https_url(&target),
        has_password: s.login_mode.has_password(),
        // An Unlock after a Lock that removed the access: the fresh grant stores the new one.
        restoring: usable && s.login_mode.has_password() && s.password_ciphertext.is_none(),
        password: shown.password,
        account_note: account_note(
            s.provisioner,
            s.login_mode,
            s.login_account.as_deref(),
            &s.resource_name,
        ),
        connection_string: shown.connection_string,
        gateway: state.settings.gateway_host.clone(),
        gateway_ssh: None,
        ends_local: format_local(user.time_zone.local(s.ends_at)),
        ends_iso: s.ends_at.unix_timestamp().to_string(),
        minutes_left,
        warn: usable && minutes_left <= WARN_MINUTES,
        can_extend: usable && s.extension_minutes > 0 && s.extensions_used < s.max_extensions,
        reveal_seconds: REVEAL_SECONDS,
        time_zone: user.time_zone.name(),
        chrome: chrome.at("dashboard"),
        s,
    }
}

/// The page, with the SSH gateway's port and host key when one runs.
async fn render(
    state: &AppState,
    chrome: Chrome,
    user: &CurrentUser,
    s: ConnectInfo,
    shown: Shown,
) -> AppResult<Response> {
    let mut p = page(state, chrome, user, s, shown);
    p.gateway_ssh = db::gateway::announced(&state.db).await?;
    Ok(respond(p))
}

fn respond(p: ConnectPage) -> Response {
    let status = if p.usable {
        StatusCode::OK
    } else {
        StatusCode::CONFLICT
    };
    (status, p).into_response()
}

/// `GET /sessions/{id}/connect`
pub async fn show(
    State(state): State<AppState>,
    chrome: Chrome,
    user: CurrentUser,
    PathId(id): PathId,
) -> AppResult<Response> {
    let (s, ended) = checked(&state, &user, id).await?;
    let shown = Shown {
        ended,
        ..Shown::default()
    };
    render(&state, chrome, &user, s, shown).await
}

/// Appends a record that something secret was shown to the requester.
async fn record_shown(
    state: &AppState,
    user: &CurrentUser,
    session: Uuid,
    kind: EventKind,
    comment: &str,
    client: Option<IpAddr>,
) -> AppResult<()> {
    let mut conn = state.db.acquire().await?;
    db::sessions::record(
        &mut conn,
        &NewEvent::new(
            session,
            Actor::User {
                id: user.id,
                name: &user.display_name,
            },
            kind,
            comment,
            client,
        ),
    )
    .await?;
    Ok(())
}

/// `POST /sessions/{id}/connection-string`: the page once more, with the connection string
/// for the session's access as it is now (logged). Lock, Unlock and the end make it stop
/// working, so one seen once is no key for the rest of the window.
pub async fn show_connection_string(
    State(state): State<AppState>,
    chrome: Chrome,
    user: CurrentUser,
    ClientAddr(client): ClientAddr,
    PathId(id): PathId,
) -> AppResult<Response> {
    let (s, ended) = checked(&state, &user, id).await?;
    if !s.status.is_connectable() {
        let shown = Shown {
            ended,
            ..Shown::default()
        };
        return render(&state, chrome, &user, s, shown).await;
    }
    record_shown(
        &state,
        &user,
        s.id,
        EventKind::ConnectionStringShown,
        "The connection string was shown.",
        client,
    )
    .await?;
    let shown = Shown {
        connection_string: Some(state.secrets.connection_string(s.id, s.access_epoch)),
        ..Shown::default()
    };
    render(&state, chrome, &user, s, shown).await
}

/// Records a launch; the first moves Available to Logged In.
async fn launch(
    state: &AppState,
    user: &CurrentUser,
    s: &ConnectInfo,
    how: &str,
    client: Option<IpAddr>,
) -> AppResult<()> {
    if s.status != SessionStatus::Available {
        return Ok(());
    }
    let mut tx = state.db.begin().await?;
    let comment = format!("Connected: {how}.");
    db::sessions::transition(
        &mut tx,
        Transition::Connect,
        NewEvent::new(
            s.id,
            Actor::User {
                id: user.id,
                name: &user.display_name,
            },
            EventKind::Connected,
            &comment,
            client,
        ),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// `POST /sessions/{id}/reveal`: the page once more, with the password.
pub async fn reveal(
    State(state): State<AppState>,
    chrome: Chrome,
    user: CurrentUser,
    ClientAddr(client): ClientAddr,
    PathId(id): PathId,
) -> AppResult<Response> {
    let (s, ended) = checked(&state, &user, id).await?;
    if !s.status.is_connectable() {
        let shown = Shown {
            ended,
            ..Shown::default()
        };
        return render(&state, chrome, &user, s, shown).await;
    }
    let Some(sealed) = &s.password_ciphertext else {
        return Err(AppError::Conflict(
            "This session's login account has no password to reveal.".into(),
        ));
    };
    let password = state
        .secrets
        .open(s.id, sealed)
        .map_err(AppError::internal)?;
    record_shown(
        &state,
        &user,
        s.id,
        EventKind::PasswordRevealed,
        "The login account's password was revealed.",
        client,
    )
    .await?;
    let shown = Shown {
        password: Some(password),
        ..Shown::default()
    };
    render(&state, chrome, &user, s, shown).await
}

/// `POST /sessions/{id}/rdp`: the .rdp file.
pub async fn rdp(
    State(state): State<AppState>,
    user: CurrentUser,
    ClientAddr(client): ClientAddr,
    PathId(id): PathId,
) -> AppResult<Response> {
    let (s, ended) = checked(&state, &user, id).await?;
    if !s.status.is_connectable() {
        return Err(AppError::Conflict(ended.unwrap_or_else(|| refusal(&s))));
    }
    if s.protocol != Protocol::Rdp {
        return Err(AppError::Conflict(
            "This activity does not use Remote Desktop.".into(),
        ));
    }
    launch(&state, &user, &s, "downloaded the RDP file", client).await?;
    let login = s.login_account.clone().unwrap_or_default();
    let body = connect::rdp_file(&connect::Target {
        address: &s.resource_address,
        port: s.resource_port,
        login: &login,
    });
    let disposition = format!(
        "attachment; filename=\"{}.rdp\"",
        connect::file_name(&s.resource_name)
    );
    Ok((
        [
            (header::CONTENT_TYPE, "application/x-rdp".to_owned()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        body,
    )
        .into_response())
}

/// How the user went to connect (`ssh-copy`, `ssh-open`, `https`), and whether the page's
/// script sent it in the background.
#[derive(serde::Deserialize)]
pub struct ConnectedForm {
    #[serde(default, deserialize_with = "first")]
    how: String,
    #[serde(default, deserialize_with = "first")]
    background: String,
}

/// `POST /sessions/{id}/launch`: the page's script reports a copied SSH command or an opened
/// link (`how`); without the script, a form posts it and returns to the page. Only the opened
/// HTTPS link counts as connecting: an SSH line is only a connection once it reaches the
/// gateway.
pub async fn launched(
    State(state): State<AppState>,
    user: CurrentUser,
    ClientAddr(client): ClientAddr,
    headers: HeaderMap,
    PathId(id): PathId,
    Form(form): Form<ConnectedForm>,
) -> AppResult<Response> {
    let (s, ended) = checked(&state, &user, id).await?;
    let how = match form.how.as_str() {
        "ssh-copy" => "copied the SSH command",
        "ssh-open" => "opened the SSH client",
        "https" => "opened the link",
        _ => return Err(AppError::Validation("Unknown way of connecting.".into())),
    };
    if !s.status.is_connectable() {
        return Err(AppError::Conflict(ended.unwrap_or_else(|| refusal(&s))));
    }
    if form.how == "https" {
        launch(&state, &user, &s, how, client).await?;
    }
    if headers.contains_key(crate::web::chrome::REFRESH_HEADER) || form.background == "1" {
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    Ok(Redirect::to(&format!("/sessions/{}/connect", s.id)).into_response())
}
