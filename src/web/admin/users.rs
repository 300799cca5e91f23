//! Admin > Users: the accounts, with lockouts to lift.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, Query, State};
use axum::response::Redirect;
use serde::Deserialize;
use tower_sessions::Session;
use uuid::Uuid;

use crate::AppState;
use crate::auth::CurrentUser;
use crate::auth::session::{self, FlashKind};
use crate::db;
use crate::error::{AppError, AppResult};
use crate::web::chrome::Chrome;

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
    Path(id): Path<String>,
) -> AppResult<Redirect> {
    let id = Uuid::parse_str(&id).map_err(|_| AppError::NotFound)?;
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
