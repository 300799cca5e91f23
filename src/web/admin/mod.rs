//! The administrators' pages. Every route here sits behind `require_admin`.

pub mod users;

use axum::Router;
use axum::response::Redirect;
use axum::routing::{get, post};

use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/admin", get(|| async { Redirect::to("/admin/users") }))
        .route("/admin/users", get(users::list))
        .route("/admin/users/{id}/unlock", post(users::unlock))
        .route(
            "/admin/sessions/{id}/lock",
            post(crate::web::session_actions::lock),
        )
        .route(
            "/admin/sessions/{id}/unlock",
            post(crate::web::session_actions::unlock),
        )
}
