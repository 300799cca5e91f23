//! Sign-in and sign-out.

use askama::Template;
use askama_web::WebTemplate;
use axum::Form;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use tower_sessions::Session;

use crate::AppState;
use crate::auth::guard::is_safe_next;
use crate::auth::{password, session};
use crate::db;
use crate::error::AppResult;
use crate::web::chrome::Chrome;

/// The one message for every failed sign-in, so it tells nothing about which accounts exist,
/// are disabled or are locked.
pub const FAILED: &str = "Invalid username or password.";

#[derive(Template, WebTemplate)]
#[template(path = "login.html")]
pub struct LoginPage {
    chrome: Chrome,
    username: String,
    next: String,
    error: Option<&'static str>,
}

#[derive(Debug, Deserialize)]
pub struct LoginQuery {
    #[serde(default)]
    next: String,
}

/// The sign-in form.
pub async fn show(chrome: Chrome, Query(q): Query<LoginQuery>) -> LoginPage {
    LoginPage {
        chrome,
        username: String::new(),
        next: if is_safe_next(&q.next) {
            q.next
        } else {
            String::new()
        },
        error: None,
    }
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
    chrome: Chrome,
    Form(form): Form<LoginForm>,
) -> AppResult<Response> {
    let username = form.username.trim();
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
            db::users::record_successful_login(&state.db, a.id).await?;
            session::sign_in(&session, a.id).await?;
            tracing::info!(user = %a.id, "signed in");
            let next = if is_safe_next(&form.next) {
                form.next
            } else {
                "/".to_owned()
            };
            Ok(Redirect::to(&next).into_response())
        }
        other => {
            if let Some(a) = other.filter(|a| !a.disabled) {
                db::users::record_failed_login(&state.db, a.id).await?;
            }
            tracing::info!("failed sign-in");
            let page = LoginPage {
                chrome,
                username: username.chars().take(64).collect(),
                next: if is_safe_next(&form.next) {
                    form.next
                } else {
                    String::new()
                },
                error: Some(FAILED),
            };
            Ok((StatusCode::UNAUTHORIZED, page).into_response())
        }
    }
}

/// Ends the sign-in and deletes the server-side session.
pub async fn logout(session: Session) -> AppResult<Redirect> {
    session::sign_out(&session).await?;
    Ok(Redirect::to("/login"))
}
