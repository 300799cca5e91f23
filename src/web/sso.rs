//! "Sign in with <provider>": the redirect to the OpenID Connect provider, and the way back,
//! which ends in a normal Portcullis sign-in (or the second factor), or in a page saying
//! clearly why not, with nothing created.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use subtle::ConstantTimeEq;
use tower_sessions::Session;

use crate::app::account::{self, Linking};
use crate::app::sign_in::{self, ProviderSignIn};
use crate::auth::session::{self, FlashKind};
use crate::auth::sso::Sso;
use crate::auth::sso::account::Refusal;
use crate::auth::sso::flow::{FlowError, Identity, Pending, Provider};
use crate::db::identities::LinkRefusal;
use crate::state::AppState;
use crate::web::chrome::Chrome;
use crate::web::error::{AppError, AppResult};
use crate::web::guard::is_safe_next;
use crate::web::login::step_page;

/// Why a sign-in through the provider did not happen; the template words each.
#[derive(Debug)]
pub enum Problem {
    /// The way back does not match a sign-in started in this browser (forged, replayed,
    /// or too old).
    BadState,
    /// The provider answered with an error instead of a code.
    Provider(String),
    /// The provider could not be reached or its discovery document is wrong.
    Unreachable,
    /// The provider would not exchange the code (used before, or expired).
    CodeRefused,
    /// The ID token failed a check.
    Token(FlowError),
    /// The person is not let in.
    Refused(Refusal),
}

#[derive(Template, WebTemplate)]
#[template(path = "login_sso_refused.html")]
pub struct RefusedPage {
    chrome: Chrome,
    provider: String,
    problem: Problem,
}

fn provider(state: &AppState) -> AppResult<&Provider> {
    state.settings.sso.as_deref().ok_or(AppError::NotFound)
}

#[derive(Debug, Deserialize)]
pub struct StartQuery {
    #[serde(default)]
    next: String,
}

/// Sends the browser to the provider, with a new state, nonce and PKCE challenge kept in
/// its session. A link, not a form: the page's `form-action 'self'` would stop a form's
/// redirect to the provider, and starting a sign-in changes nothing but this browser's
/// session (what comes back is bound to it by the state).
pub async fn start(
    State(state): State<AppState>,
    session: Session,
    chrome: Chrome,
    Query(form): Query<StartQuery>,
) -> AppResult<Response> {
    let provider = provider(&state)?;
    let next = if is_safe_next(&form.next) {
        form.next
    } else {
        "/".to_owned()
    };
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    match provider.begin(next, now).await {
        Ok((url, pending)) => {
            session::begin_sso(&session, pending).await?;
            Ok(Redirect::to(&url).into_response())
        }
        Err(e) => Ok(refused(chrome, &provider.sso, problem_of(e))),
    }
}

#[derive(Debug, Deserialize)]
pub struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

/// The provider's way back: checks the state, exchanges the code, verifies the ID token,
/// then signs in to the linked (or new) account (see [`sign_in::with_provider`]).
pub async fn callback(
    State(state): State<AppState>,
    session: Session,
    chrome: Chrome,
    Query(query): Query<CallbackQuery>,
) -> AppResult<Response> {
    let provider = provider(&state)?;
    let pending = session::take_sso(&session).await?;
    let (code, pending) = match check_state(query, pending) {
        Ok(ok) => ok,
        Err(problem) => return Ok(refused(chrome, &provider.sso, problem)),
    };
    let next = pending.next.clone();
    let link = pending.link;
    let identity = match provider.finish(code, pending).await {
        Ok(identity) => identity,
        Err(e) => return Ok(refused(chrome, &provider.sso, problem_of(e))),
    };
    if let Some(user) = link {
        return link_account(&state, &session, chrome, provider, &identity, user).await;
    }
    let (user, to) = match sign_in::with_provider(&state, &provider.sso, &identity).await? {
        ProviderSignIn::Refused(refusal) => {
            return Ok(refused(chrome, &provider.sso, Problem::Refused(refusal)));
        }
        ProviderSignIn::SecondFactor { user, step } => {
            session::begin_second_factor(&session, user, next).await?;
            (user, step_page(step).to_owned())
        }
        ProviderSignIn::SignedIn { user, .. } => {
            session::sign_in(&session, user).await?;
            (user, next)
        }
    };
    session::remember_id_token(&session, user, identity.id_token).await?;
    Ok(Redirect::to(&to).into_response())
}

/// The way back of "Link my provider sign-in" (Account page): links who signed in at the
/// provider to the account that asked, if this browser is still signed in as it.
async fn link_account(
    state: &AppState,
    session: &Session,
    chrome: Chrome,
    provider: &Provider,
    identity: &Identity,
    user: uuid::Uuid,
) -> AppResult<Response> {
    // Still signed in, in this browser, as the account that asked (and it is enabled).
    if session::auth(session).await?.map(|a| a.user_id) != Some(user) {
        return Ok(refused(chrome, &provider.sso, Problem::BadState));
    }
    let name = &provider.sso.name;
    let (kind, text) = match account::link_identity(state, user, identity).await? {
        Linking::NotEnabled => return Ok(refused(chrome, &provider.sso, Problem::BadState)),
        Linking::Linked => (
            FlashKind::Success,
            format!("Linked: you can now sign in with {name}."),
        ),
        Linking::Refused(LinkRefusal::OtherAccount) => (
            FlashKind::Error,
            format!(
                "That {name} sign-in is linked to another Portcullis account. Nothing was linked: sign in there as yourself, or ask an administrator."
            ),
        ),
        Linking::Refused(LinkRefusal::OtherSubject) => (
            FlashKind::Error,
            format!(
                "Your account is already linked to another {name} sign-in. Nothing was changed."
            ),
        ),
    };
    session::flash(session, kind, text).await?;
    Ok(Redirect::to("/account").into_response())
}

/// The code, if the way back carries the state of the sign-in this browser started.
fn check_state(
    query: CallbackQuery,
    pending: Option<Pending>,
) -> Result<(String, Pending), Problem> {
    let (Some(pending), Some(sent)) = (pending, query.state) else {
        return Err(Problem::BadState);
    };
    if !bool::from(sent.as_bytes().ct_eq(pending.state.as_bytes())) {
        return Err(Problem::BadState);
    }
    if let Some(error) = query.error {
        return Err(Problem::Provider(error.chars().take(100).collect()));
    }
    query.code.map(|c| (c, pending)).ok_or(Problem::BadState)
}

fn problem_of(e: FlowError) -> Problem {
    tracing::warn!(error = %e, "single sign-on failed");
    match e {
        FlowError::Discovery(_) => Problem::Unreachable,
        FlowError::Exchange(_) => Problem::CodeRefused,
        other => Problem::Token(other),
    }
}

fn refused(chrome: Chrome, sso: &Sso, problem: Problem) -> Response {
    let status = match &problem {
        Problem::Unreachable => StatusCode::BAD_GATEWAY,
        Problem::Refused(_) => StatusCode::FORBIDDEN,
        _ => StatusCode::BAD_REQUEST,
    };
    let page = RefusedPage {
        chrome,
        provider: sso.name.clone(),
        problem,
    };
    (status, page).into_response()
}
