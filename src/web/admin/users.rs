//! Admin > Users: the accounts, with lockouts to lift and second factors to reset.

use crate::app::users::{self, Reset};
use crate::auth::session::{self, FlashKind};
use crate::db;
use crate::state::AppState;
use crate::web::chrome::Chrome;
use crate::web::error::{AppError, AppResult};
use crate::web::guard::CurrentUser;
use crate::web::path_id::PathId;
use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Query, State};
use axum::response::{Redirect, Response};
use serde::Deserialize;
use tower_sessions::Session;

#[derive(Template, WebTemplate)]
#[template(path = "admin/users.html")]
pub struct UsersPage {
    chrome: Chrome,
    search: String,
    users: Vec<db::users::ListRow>,
}

#[derive(Debug, Deserialize)]
pub struct UsersQuery {
    #[serde(default)]
    q: String,
}

pub async fn list(
    State(state): State<AppState>,
    chrome: Chrome,
    Query(query): Query<UsersQuery>,
) -> AppResult<UsersPage> {
    let search: String = query.q.trim().chars().take(100).collect();
    let users = db::users::list(&state.db, &search, 500).await?;
    Ok(UsersPage {
        chrome: chrome.at("admin"),
        search,
        users,
    })
}

/// Lifts a lockout before it runs out.
pub async fn unlock(
    State(state): State<AppState>,
    admin: CurrentUser,
    session: Session,
    PathId(id): PathId,
) -> AppResult<Redirect> {
    let username = db::users::unlock(&state.db, db::users::Who::Id(id))
        .await?
        .ok_or(AppError::NotFound)?;
    tracing::info!(admin = %admin.id, user = %id, "unlocked an account");
    session::flash(
        &session,
        FlashKind::Success,
        format!("{username} is unlocked."),
    )
    .await?;
    Ok(Redirect::to("/admin/users"))
}

/// Removes a user's second factor (lost device; see [`users::reset_second_factor`]).
pub async fn reset_second_factor(
    State(state): State<AppState>,
    admin: CurrentUser,
    session: Session,
    PathId(id): PathId,
) -> AppResult<Response> {
    let back = format!("/admin/users/{id}");
    match users::reset_second_factor(&state, &(&admin).into(), id).await? {
        Reset::Gone => super::gone(&session, "user", "/admin/users").await,
        Reset::NoFactor(username) => {
            let text = format!("{username} has no second factor. Nothing was changed.");
            super::refused(&session, text, &back).await
        }
        Reset::Reset(username) => {
            let text = format!(
                "Reset the second factor of {username}: they set up a new one at their next sign-in."
            );
            super::done(&session, text, &back).await
        }
    }
}
