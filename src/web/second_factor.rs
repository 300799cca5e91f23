//! The second step of signing in: the code page (an authenticator code or a recovery code)
//! and, for an account that must have a second factor and has none, enrolment. Until either
//! succeeds the session only holds a pending sign-in, so every guarded page still sends it
//! to `/login`. What a code does is `app::sign_in`'s; this words it. Also the pages the
//! account page shares: enrolment, and the page that shows new recovery codes once.

use askama::Template;
use askama_web::WebTemplate;
use axum::Form;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use tower_sessions::Session;
use uuid::Uuid;

use crate::app;
use crate::app::sign_in::{self, CodeOutcome, Enrolment};
use crate::auth::session::{self, FlashKind, Pending};
use crate::db;
use crate::state::AppState;
use crate::web::chrome::Chrome;
use crate::web::client::ClientAddr;
use crate::web::error::{AppError, AppResult};
use crate::web::login::{attempt_succeeded, rate_limited};

/// A wrong, reused or malformed code: one message for all.
pub const WRONG_CODE: &str = "That code is not right. Enter the current code from your authenticator app, or an unused recovery code.";
pub const WRONG_ENROL_CODE: &str = "That code is not right. Check that your device's clock is right and enter the code it shows now.";
const LOCKED: &str = "Too many failed attempts: sign-in to this account is locked for a while. Try again later, or ask an administrator to unlock it.";
const EXPIRED: &str = "Your sign-in took too long. Sign in again.";

#[derive(Template, WebTemplate)]
#[template(path = "login_code.html")]
pub struct CodePage {
    chrome: Chrome,
    error: Option<&'static str>,
}

#[derive(Template, WebTemplate)]
#[template(path = "second_factor_enrol.html")]
pub struct EnrolPage {
    pub chrome: Chrome,
    /// Base32 in groups of four, for typing into the app.
    pub secret: String,
    /// An `<svg>` element made here (no user input), placed as it is.
    pub qr_svg: String,
    /// Where the form posts.
    pub action: &'static str,
    /// Whether this is part of signing in (else the account page).
    pub signing_in: bool,
    pub error: Option<&'static str>,
}

#[derive(Template, WebTemplate)]
#[template(path = "recovery_codes.html")]
pub struct RecoveryCodesPage {
    pub chrome: Chrome,
    pub codes: Vec<String>,
    pub continue_to: String,
}

#[derive(Debug, Deserialize)]
pub struct CodeForm {
    #[serde(default)]
    pub code: String,
}

/// The enrolment page for `user`: the secret under way, or a new one.
pub async fn enrol_page(
    state: &AppState,
    chrome: Chrome,
    user: Uuid,
    username: &str,
    action: &'static str,
    error: Option<&'static str>,
) -> AppResult<EnrolPage> {
    let shown = app::second_factor::start_enrolment(state, user, username).await?;
    Ok(EnrolPage {
        chrome,
        secret: shown.secret,
        qr_svg: shown.qr_svg,
        action,
        signing_in: action.starts_with("/login"),
        error,
    })
}

/// The pending sign-in, if it may still go on; otherwise where to send the browser (back
/// to the sign-in form, with the reason).
async fn pending_or_restart(
    state: &AppState,
    session: &Session,
) -> AppResult<Result<Pending, Response>> {
    let Some(p) = session::pending(session).await? else {
        // A browser without a stored session (none, or an unknown cookie; the session is
        // loaded by now) has nothing to be told, and no row is created to tell it.
        if !session.is_empty().await {
            session::flash(session, FlashKind::Info, EXPIRED).await?;
        }
        return Ok(Err(Redirect::to("/login").into_response()));
    };
    if !db::second_factor::may_sign_in(&state.db, p.user_id).await? {
        return Ok(Err(restart_locked(session).await?));
    }
    Ok(Ok(p))
}

/// For a submitted code: the answer for an address over its sign-in limit, else as
/// [`pending_or_restart`].
async fn submitted_pending(
    state: &AppState,
    session: &Session,
    chrome: &Chrome,
    client: &ClientAddr,
) -> AppResult<Result<Pending, Response>> {
    if let Some(refused) = rate_limited(state, client, chrome).await? {
        return Ok(Err(refused));
    }
    pending_or_restart(state, session).await
}

async fn restart_locked(session: &Session) -> AppResult<Response> {
    session::clear_pending(session).await?;
    session::flash(session, FlashKind::Error, LOCKED).await?;
    Ok(Redirect::to("/login").into_response())
}

/// The code page.
pub async fn show_code(
    State(state): State<AppState>,
    session: Session,
    chrome: Chrome,
) -> AppResult<Response> {
    let p = match pending_or_restart(&state, &session).await? {
        Ok(p) => p,
        Err(away) => return Ok(away),
    };
    if !db::second_factor::is_on(&state.db, p.user_id).await? {
        return Ok(Redirect::to("/login/enrol").into_response());
    }
    Ok(CodePage {
        chrome,
        error: None,
    }
    .into_response())
}

/// Checks the code and finishes the sign-in. A wrong code counts towards the account's
/// lockout like a wrong password.
pub async fn submit_code(
    State(state): State<AppState>,
    session: Session,
    chrome: Chrome,
    client: ClientAddr,
    Form(form): Form<CodeForm>,
) -> AppResult<Response> {
    let p = match submitted_pending(&state, &session, &chrome, &client).await? {
        Ok(p) => p,
        Err(away) => return Ok(away),
    };
    match sign_in::with_code(&state, p.user_id, &form.code).await? {
        CodeOutcome::Right => {
            attempt_succeeded(&state, &client).await?;
            session::sign_in(&session, p.user_id).await?;
            Ok(Redirect::to(&p.next).into_response())
        }
        CodeOutcome::Locked => restart_locked(&session).await,
        CodeOutcome::Wrong => Ok((
            StatusCode::UNAUTHORIZED,
            CodePage {
                chrome,
                error: Some(WRONG_CODE),
            },
        )
            .into_response()),
    }
}

async fn username(state: &AppState, user: Uuid) -> AppResult<String> {
    db::users::load_current(&state.db, user)
        .await?
        .map(|u| u.username)
        .ok_or(AppError::NotFound)
}

/// Enrolment during sign-in, for an account that must have a second factor.
pub async fn show_enrol(
    State(state): State<AppState>,
    session: Session,
    chrome: Chrome,
) -> AppResult<Response> {
    let p = match pending_or_restart(&state, &session).await? {
        Ok(p) => p,
        Err(away) => return Ok(away),
    };
    if db::second_factor::is_on(&state.db, p.user_id).await? {
        return Ok(Redirect::to("/login/code").into_response());
    }
    let name = username(&state, p.user_id).await?;
    Ok(
        enrol_page(&state, chrome, p.user_id, &name, "/login/enrol", None)
            .await?
            .into_response(),
    )
}

/// Confirms the enrolment with a right code, signs in and shows the recovery codes once.
pub async fn submit_enrol(
    State(state): State<AppState>,
    session: Session,
    chrome: Chrome,
    client: ClientAddr,
    Form(form): Form<CodeForm>,
) -> AppResult<Response> {
    let p = match submitted_pending(&state, &session, &chrome, &client).await? {
        Ok(p) => p,
        Err(away) => return Ok(away),
    };
    match sign_in::enrol(&state, p.user_id, &form.code).await? {
        Enrolment::Enrolled(codes) => {
            attempt_succeeded(&state, &client).await?;
            session::sign_in(&session, p.user_id).await?;
            // Shown in this answer, never stored in clear: reloading it shows them no more.
            Ok(RecoveryCodesPage {
                chrome: Chrome::bare(),
                codes,
                continue_to: p.next,
            }
            .into_response())
        }
        // Enrolled meanwhile (another tab): sign in with a code instead.
        Enrolment::AlreadyOn => Ok(Redirect::to("/login/code").into_response()),
        Enrolment::Refused(CodeOutcome::Locked) => restart_locked(&session).await,
        Enrolment::Refused(_) => {
            let name = username(&state, p.user_id).await?;
            let (action, error) = ("/login/enrol", Some(WRONG_ENROL_CODE));
            let page = enrol_page(&state, chrome, p.user_id, &name, action, error).await?;
            Ok((StatusCode::UNAUTHORIZED, page).into_response())
        }
    }
}
