//! Sign-in and sign-out, and the per-address limit on sign-in attempts. A right password
//! signs in at once, or, for an account with (or required to have) a second factor, leads to
//! the code or enrolment page of `web::second_factor`.

use askama::Template;
use askama_web::WebTemplate;
use axum::Form;
use axum::extract::{Query, State};
use std::net::{IpAddr, Ipv6Addr};

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use tower_sessions::Session;

use crate::auth::{password, second_factor, session};
use crate::db;
use crate::state::AppState;
use crate::web::chrome::Chrome;
use crate::web::client::ClientAddr;
use crate::web::error::{AppError, AppResult};
use crate::web::guard::is_safe_next;
use crate::web::login_token;

/// The one message for every failed sign-in, so it tells nothing about which accounts exist,
/// are disabled or are locked.
pub const FAILED: &str = "Invalid username or password.";

/// The message for a password sign-in by someone who must use single sign-on. It depends
/// only on the name typed, never on whether such an account exists.
pub const PASSWORD_OFF: &str =
    "Password sign-in is reserved for break-glass administrators: use the button above.";

#[derive(Template, WebTemplate)]
#[template(path = "login.html")]
pub struct LoginPage {
    chrome: Chrome,
    username: String,
    next: String,
    error: Option<&'static str>,
    /// The single sign-on provider's name, for its button; `None`: no single sign-on.
    sso_name: Option<String>,
    /// Whether password sign-in is only for break-glass administrators (the form is then
    /// folded away under the provider's button).
    break_glass_only: bool,
}

impl LoginPage {
    fn new(
        state: &AppState,
        chrome: Chrome,
        username: String,
        next: String,
        error: Option<&'static str>,
    ) -> Self {
        let sso = state.settings.sso.as_deref().map(|p| &p.sso);
        Self {
            chrome,
            username,
            next: if is_safe_next(&next) {
                next
            } else {
                String::new()
            },
            error,
            sso_name: sso.map(|s| s.name.clone()),
            break_glass_only: sso.is_some_and(|s| s.break_glass.is_some()),
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct LoginQuery {
    #[serde(default)]
    next: String,
}

/// The sign-in form. Showing it stores nothing (see `web::login_token`).
pub async fn show(
    State(state): State<AppState>,
    headers: HeaderMap,
    mut chrome: Chrome,
    Query(q): Query<LoginQuery>,
) -> Response {
    let cookie = form_token(&state, &headers, &mut chrome);
    let page = LoginPage::new(&state, chrome, String::new(), q.next, None);
    with_cookie(page.into_response(), cookie)
}

/// Puts the sign-in form's CSRF token in `chrome`: the session's own when the browser has a
/// session (signed in, or half-way), else a signed token, whose cookie is returned to send
/// with the page.
fn form_token(state: &AppState, headers: &HeaderMap, chrome: &mut Chrome) -> Option<HeaderValue> {
    if !chrome.csrf.is_empty() {
        return None;
    }
    let issued = login_token::issue(
        &state.secrets,
        headers,
        state.settings.cookie_secure,
        time::OffsetDateTime::now_utc().unix_timestamp(),
    );
    chrome.csrf = issued.field;
    Some(issued.set_cookie)
}

fn with_cookie(mut response: Response, cookie: Option<HeaderValue>) -> Response {
    if let Some(cookie) = cookie {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}

#[derive(Debug, Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    next: String,
}

/// Checks the credentials. Unknown, disabled and locked accounts cost one argon2
/// verification like a wrong password and get the same message.
pub async fn submit(
    State(state): State<AppState>,
    session: Session,
    headers: HeaderMap,
    chrome: Chrome,
    client: ClientAddr,
    Form(form): Form<LoginForm>,
) -> AppResult<Response> {
    if let Some(refused) = rate_limited(&state, &client, &chrome).await? {
        return Ok(refused);
    }
    let username = form.username.trim();
    let password_off = state
        .settings
        .sso
        .as_deref()
        .is_some_and(|p| !p.sso.password_allowed(username));
    if password_off {
        tracing::info!("password sign-in refused: single sign-on only");
        let page = refused_page(&state, &headers, chrome, username, form.next, PASSWORD_OFF);
        return Ok(with_cookie_pair(StatusCode::FORBIDDEN, page));
    }
    let account = if username.is_empty() || username.len() > 64 || form.password.len() > 1024 {
        None
    } else {
        db::users::find_for_login(&state.db, username).await?
    };
    let usable = account
        .as_ref()
        .filter(|a| !a.disabled && !a.locked)
        .and_then(|a| a.password_hash.clone());
    let verified = password::verify(form.password, usable).await?;
    match account {
        Some(a) if verified => {
            attempt_succeeded(&state, &client).await?;
            let next = if is_safe_next(&form.next) {
                form.next
            } else {
                "/".to_owned()
            };
            // The failure count is cleared only once the second factor is right too, so a
            // known password does not buy more code guesses.
            if let Some(step) = second_step(&state, a.id).await? {
                session::begin_second_factor(&session, a.id, next).await?;
                tracing::info!(user = %a.id, "password right; second factor next");
                return Ok(Redirect::to(step).into_response());
            }
            db::users::record_successful_login(&state.db, a.id).await?;
            session::sign_in(&session, a.id).await?;
            tracing::info!(user = %a.id, "signed in");
            Ok(Redirect::to(&next).into_response())
        }
        _ => {
            // By the name typed, known or not: the same statement and the same one-row
            // write either way, so the time taken does not tell which names exist.
            db::users::record_failed_sign_in(&state.db, username).await?;
            tracing::info!("failed sign-in");
            let page = refused_page(&state, &headers, chrome, username, form.next, FAILED);
            Ok(with_cookie_pair(StatusCode::UNAUTHORIZED, page))
        }
    }
}

/// The sign-in form again, with `error`, and the cookie of its new CSRF token (if any).
fn refused_page(
    state: &AppState,
    headers: &HeaderMap,
    mut chrome: Chrome,
    username: &str,
    next: String,
    error: &'static str,
) -> (LoginPage, Option<HeaderValue>) {
    let cookie = form_token(state, headers, &mut chrome);
    let username = username.chars().take(64).collect();
    (
        LoginPage::new(state, chrome, username, next, Some(error)),
        cookie,
    )
}

fn with_cookie_pair(
    status: StatusCode,
    (page, cookie): (LoginPage, Option<HeaderValue>),
) -> Response {
    with_cookie((status, page).into_response(), cookie)
}

/// The page that follows a right password (or a provider's sign-in without its own
/// multi-factor authentication): the code page for an account with a second factor,
/// enrolment for one that must have one and has none, or `None` to sign in now.
pub async fn second_step(state: &AppState, user: uuid::Uuid) -> AppResult<Option<&'static str>> {
    if db::second_factor::is_on(&state.db, user).await? {
        return Ok(Some("/login/code"));
    }
    let Some(row) = db::users::load_current(&state.db, user).await? else {
        return Err(AppError::NotFound);
    };
    Ok(
        second_factor::required(state.settings.second_factor, row.role, row.is_approver)
            .then_some("/login/enrol"),
    )
}

/// The page shown instead of a sign-in form when its address has made too many attempts.
#[derive(Template, WebTemplate)]
#[template(path = "login_limited.html")]
pub struct LimitedPage {
    chrome: Chrome,
    minutes: i64,
}

/// The address attempts are counted for: an IPv6 client's /64 (one subscriber usually has a
/// whole /64), an IPv4 client's own address.
fn limit_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let s = v6.segments();
            IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
        }
        v4 => v4,
    }
}

/// Counts one sign-in attempt (a password or code form) from the client's address, and
/// answers 429 with `Retry-After` once the address has used up its attempts for the
/// window. A refused attempt changes nothing else; a right one is given back by
/// `attempt_succeeded`.
pub async fn rate_limited(
    state: &AppState,
    client: &ClientAddr,
    chrome: &Chrome,
) -> AppResult<Option<Response>> {
    let Some(ip) = client.0 else {
        return Ok(None);
    };
    let window = state.settings.sign_in_window_seconds;
    let (attempts, retry_after) =
        db::sign_in_limit::count_attempt(&state.db, limit_key(ip), window).await?;
    if attempts == 1 {
        // A window began: a good moment to drop the ended ones.
        db::sign_in_limit::prune(&state.db, window).await?;
    }
    if attempts <= i64::from(state.settings.sign_in_limit) {
        return Ok(None);
    }
    tracing::warn!(client = %ip, attempts, "sign-in attempts over the per-address limit");
    let page = LimitedPage {
        chrome: chrome.clone(),
        minutes: (retry_after + 59) / 60,
    };
    let mut response = (StatusCode::TOO_MANY_REQUESTS, page).into_response();
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(retry_after.max(1)));
    Ok(Some(response))
}

/// Gives back the attempt `rate_limited` counted, for a right password or code: the limit
/// counts failed attempts only, so someone switching between accounts is never locked out.
pub async fn attempt_succeeded(state: &AppState, client: &ClientAddr) -> AppResult<()> {
    if let Some(ip) = client.0 {
        db::sign_in_limit::refund_attempt(&state.db, limit_key(ip)).await?;
    }
    Ok(())
}

#[derive(Template, WebTemplate)]
#[template(path = "logged_out.html")]
pub struct LoggedOutPage {
    chrome: Chrome,
    provider: String,
    provider_url: String,
}

/// Ends the sign-in and deletes the server-side session, then shows the sign-in page.
///
/// Someone who signed in through the provider is sent on to sign out there too (when the
/// provider offers it and it is not switched off), and comes back to the sign-in page. That
/// goes through a page of ours that refreshes to the provider: a redirect answering the
/// form would be stopped by the pages' `form-action 'self'`.
pub async fn logout(State(state): State<AppState>, session: Session) -> AppResult<Response> {
    let mut provider_url = None;
    if let Some(provider) = state.settings.sso.as_deref()
        && let Some(auth) = session::auth(&session).await?
        && let Some(id_token) = session::id_token(&session, auth.user_id).await?
        && let Some(url) = provider.logout_url(&id_token).await
    {
        provider_url = Some((provider.sso.name.clone(), url));
    }
    session::sign_out(&session).await?;
    Ok(match provider_url {
        Some((provider, provider_url)) => LoggedOutPage {
            chrome: Chrome::bare(),
            provider,
            provider_url,
        }
        .into_response(),
        None => Redirect::to("/login").into_response(),
    })
}
