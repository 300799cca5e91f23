//! The administrators' pages. Every route here sits behind `require_admin`.

pub mod activities;
pub mod audit;
pub mod credentials;
pub mod crud;
pub mod groups;
pub mod look_alike;
pub mod picker;
pub mod policies;
pub mod profiles;
pub mod resource_import;
pub mod resources;
pub mod revocation;
pub mod user_form;
pub mod users;
pub mod webhooks;

use crate::auth::session::{self, FlashKind};
use crate::db::audit::Actor;
use crate::web::error::AppResult;
use crate::web::guard::CurrentUser;
use crate::web::route_table::{Access, Routes, get, post};
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use tower_sessions::Session;

pub fn routes() -> Routes {
    use crud::{delete_route, restore_route};
    let r = Routes::new(Access::Admin);
    // The catalogues: list, new, one (shown and saved), delete, restore, by `crud`.
    let r = crud::routes::<resources::Resources>(r, get(resources::list), get(resources::new));
    let r = restore_route::<resources::Resources>(delete_route::<resources::Resources>(r));
    let r = crud::routes::<activities::Activities>(r, get(activities::list), get(activities::new));
    let r = restore_route::<activities::Activities>(delete_route::<activities::Activities>(r));
    let r = crud::routes::<groups::Groups>(r, get(groups::list), get(groups::new));
    let r = delete_route::<groups::Groups>(r);
    let r = crud::routes::<profiles::Profiles>(r, get(profiles::list), get(profiles::new));
    let r = delete_route::<profiles::Profiles>(r);
    // A policy's deletion may first ask to end the sessions made under it.
    let r = crud::routes::<policies::Policies>(r, get(policies::list), get(policies::new));
    let r =
        crud::routes::<credentials::Credentials>(r, get(credentials::list), get(credentials::new));
    let r = delete_route::<credentials::Credentials>(r);
    let r = crud::routes::<webhooks::Webhooks>(r, get(webhooks::list), get(webhooks::new));
    let r = delete_route::<webhooks::Webhooks>(r);
    r.route("/admin", get(|| async { Redirect::to("/admin/users") }))
        .route("/admin/users", get(users::list))
        .route("/admin/users/{id}/unlock", post(users::unlock))
        .route(
            "/admin/users/new",
            get(user_form::new).post(user_form::create),
        )
        .route(
            "/admin/users/{id}",
            get(user_form::edit).post(user_form::update),
        )
        .route("/admin/users/{id}/disable", post(user_form::disable))
        .route("/admin/users/{id}/enable", post(user_form::enable))
        .route(
            "/admin/users/{id}/password",
            post(user_form::reset_password),
        )
        .route(
            "/admin/sessions/{id}/lock",
            post(crate::web::session_actions::lock),
        )
        .route(
            "/admin/sessions/{id}/unlock",
            post(crate::web::session_actions::unlock),
        )
        .route(
            "/admin/resources/import",
            get(resource_import::show)
                .post(resource_import::preview)
                .layer(DefaultBodyLimit::max(crate::web::body_limit::UPLOAD_LIMIT)),
        )
        .route(
            "/admin/resources/import/apply",
            post(resource_import::apply),
        )
        .route("/admin/activities/{id}/clone", get(activities::clone))
        .route("/admin/policies/{id}/enable", post(policies::enable))
        .route("/admin/policies/{id}/disable", post(policies::disable))
        .route("/admin/policies/{id}/delete", post(policies::delete))
        .route("/admin/audit", get(audit::list))
        .route("/admin/webhooks/{id}/deliveries", get(webhooks::deliveries))
        .route("/admin/webhooks/{id}/test", post(webhooks::send_test))
}

/// Who the audit log names for a change made by `user`.
pub fn actor(user: &CurrentUser) -> Actor {
    Actor {
        id: Some(user.id),
        name: user.username.clone(),
    }
}

/// After a successful change: the message on the next page, and 303 to it.
pub async fn done(session: &Session, text: impl Into<String>, to: &str) -> AppResult<Response> {
    session::flash(session, FlashKind::Success, text).await?;
    Ok(Redirect::to(to).into_response())
}

/// A refusal that changed nothing: the message on the next page, and 303 to it.
pub async fn refused(session: &Session, text: impl Into<String>, to: &str) -> AppResult<Response> {
    session::flash(session, FlashKind::Error, text).await?;
    Ok(Redirect::to(to).into_response())
}

/// An object that is not there (deleted meanwhile, or a stale link): back to its list.
pub async fn gone(session: &Session, what: &str, to: &str) -> AppResult<Response> {
    refused(
        session,
        format!("That {what} does not exist (any more). Nothing was changed."),
        to,
    )
    .await
}

/// Ends a create or update: commits it and lands on `result`'s page with "Created X." or
/// "Saved X.", or says the object is gone. `Ok(None)` when the name is taken: the caller
/// shows its form again with that message (the transaction is dropped, so rolled back).
pub async fn finish_save(
    tx: sqlx::Transaction<'_, sqlx::Postgres>,
    session: &Session,
    result: Result<String, crate::db::audit::WriteError>,
    updated: bool,
    name: &str,
    what: &str,
    list: &str,
) -> AppResult<Option<Response>> {
    use crate::db::audit::WriteError;
    match result {
        Ok(landing) => {
            tx.commit().await?;
            let verb = if updated { "Saved" } else { "Created" };
            done(session, format!("{verb} {name}."), &landing)
                .await
                .map(Some)
        }
        Err(WriteError::Taken) => Ok(None),
        Err(WriteError::NotFound) => gone(session, what, list).await.map(Some),
        Err(e) => Err(e.into()),
    }
}

/// Ends a deletion: commits what was deleted or archived, rolls back a refusal, and tells
/// the administrator which happened (back to the list, or to the object when refused).
pub async fn finish_removal(
    tx: sqlx::Transaction<'_, sqlx::Postgres>,
    session: &Session,
    result: Result<crate::db::resources::Removal, crate::db::audit::WriteError>,
    what: &str,
    list: &str,
    item: &str,
) -> AppResult<Response> {
    use crate::db::audit::WriteError;
    use crate::db::resources::Removal;
    match result {
        Ok(Removal::Deleted(name)) => {
            tx.commit().await?;
            done(session, format!("Deleted {name}."), list).await
        }
        Ok(Removal::Archived(name)) => {
            tx.commit().await?;
            done(
                session,
                format!("Archived {name}: past sessions name it, so it is kept for their history but can no longer be requested."),
                list,
            )
            .await
        }
        Ok(Removal::InUse(message)) => {
            tx.rollback().await?;
            refused(session, message, item).await
        }
        Err(WriteError::NotFound) => gone(session, what, list).await,
        Err(e) => Err(e.into()),
    }
}

/// A form shown again with its problems: 422.
pub fn invalid(page: impl IntoResponse) -> Response {
    (StatusCode::UNPROCESSABLE_ENTITY, page).into_response()
}

/// The message for a name another object of the kind already has.
pub fn taken(kind: &str, name: &str) -> String {
    let article = if kind.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "An"
    } else {
        "A"
    };
    format!(
        "{article} {kind} named \"{name}\" already exists (names are compared without regard to case)."
    )
}

/// Rows per page of the long lists.
pub const PAGE_SIZE: i64 = 50;

/// Page numbers for a list of `total` rows.
#[derive(Debug, Clone)]
pub struct Pager {
    pub page: i64,
    pub pages: i64,
    pub total: i64,
    /// The query string without `page`, ending in `&` when not empty.
    pub query: String,
}

impl Pager {
    pub fn new(page: i64, total: i64, params: &[(&str, &str)]) -> Self {
        let query = serde_urlencoded::to_string(
            params
                .iter()
                .filter(|(_, v)| !v.is_empty())
                .collect::<Vec<_>>(),
        )
        .unwrap_or_default();
        Self {
            page,
            pages: ((total + PAGE_SIZE - 1) / PAGE_SIZE).max(1),
            total,
            query: if query.is_empty() {
                query
            } else {
                format!("{query}&")
            },
        }
    }

    /// The page asked for, from 1.
    pub fn requested(text: &str) -> i64 {
        text.trim().parse::<i64>().unwrap_or(1).clamp(1, 1_000_000)
    }

    pub fn offset(page: i64) -> i64 {
        (page - 1) * PAGE_SIZE
    }
}
