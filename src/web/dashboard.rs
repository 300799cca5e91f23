//! Dashboard: the signed-in user's sessions by tab.

use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::State;
use axum::routing::get;

use crate::AppState;
use crate::auth::CurrentUser;
use crate::db;
use crate::error::AppResult;
use crate::web::chrome::Chrome;

pub fn routes() -> Router<AppState> {
    Router::new().route("/dashboard", get(active))
}

#[derive(Template, WebTemplate)]
#[template(path = "dashboard/active.html")]
pub struct ActivePage {
    chrome: Chrome,
    rows: Vec<db::sessions::Row>,
}

pub async fn active(
    State(state): State<AppState>,
    chrome: Chrome,
    user: CurrentUser,
) -> AppResult<ActivePage> {
    let rows = db::sessions::active_for(&state.db, user.id).await?;
    Ok(ActivePage {
        chrome: chrome.at("dashboard"),
        rows,
    })
}
