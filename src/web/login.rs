//! Sign-in and sign-out, and the per-address limit on sign-in attempts. A right password
//! signs in at once, or, for an account with (or required to have) a second factor, leads to
//! the code or enrolment page of `web::second_factor`.

use askama::Template;
use askama_web::WebTemplate;
use axum::Form;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use tower_sessions::Session;

use crate::app::sign_in::{self, PasswordSignIn, SecondStep};
use crate::auth::session;
use crate::state::AppState;
use crate::web::chrome::Chrome;
use crate::web::client::ClientAddr;
use crate::web::error::AppResult;
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

/// Checks the credentials (see [`sign_in::with_password`]): on to the second factor, or
/// signed in, or the form again with the one message for every failure.
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
    let (status, error) = match sign_in::with_password(&state, username, form.password).await? {
        PasswordSignIn::PasswordOff => (StatusCode::FORBIDDEN, PASSWORD_OFF),
        PasswordSignIn::Failed => (StatusCode::UNAUTHORIZED, FAILED),
        PasswordSignIn::SecondFactor { user, step } => {
            attempt_succeeded(&state, &client).await?;
            session::begin_second_factor(&session, user, safe_next(form.next)).await?;
            return Ok(Redirect::to(step_page(step)).into_response());
        }
        PasswordSignIn::SignedIn(user) => {
            attempt_succeeded(&state, &client).await?;
            session::sign_in(&session, user).await?;
            return Ok(Redirect::to(&safe_next(form.next)).into_response());
        }
    };
    let page = refused_page(&state, &headers, chrome, username, form.next, error);
    Ok(with_cookie_pair(status, page))
}

/// Where to go after signing in: `next` when it is a path on this site, else home.
fn safe_next(next: String) -> String {
    if is_safe_next(&next) {
        next
    } else {
        "/".to_owned()
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

/// The page of the step after a right password (or a provider's sign-in without its own
/// multi-factor authentication).
pub fn step_page(step: SecondStep) -> &'static str {
    match step {
        SecondStep::Code => "/login/code",
        SecondStep::Enrol => "/login/enrol",
    }
}

/// The page shown instead of a sign-in form when its address has made too many attempts.
#[derive(Template, WebTemplate)]
#[template(path = "login_limited.html")]
pub struct LimitedPage {
    chrome: Chrome,
    minutes: i64,
}

/// Counts one sign-in attempt (a password or code form) from the client's address (see
/// [`sign_in::count_attempt`]), and answers 429 with `Retry-After` once the address has used
/// up its attempts for the window.
pub async fn rate_limited(
    state: &AppState,
    client: &ClientAddr,
    chrome: &Chrome,
) -> AppResult<Option<Response>> {
    let Some(ip) = client.0 else {
        return Ok(None);
    };
    let Some(retry_after) = sign_in::count_attempt(state, ip).await? else {
        return Ok(None);
    };
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

/// Gives back the attempt `rate_limited` counted, for a right password or code.
pub async fn attempt_succeeded(state: &AppState, client: &ClientAddr) -> AppResult<()> {
    if let Some(ip) = client.0 {
        sign_in::attempt_succeeded(state, ip).await?;
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
