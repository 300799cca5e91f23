//! The administrators' catalogues (resources, activities, groups, profiles, policies,
//! credentials, webhooks) share one shape: a list, a form for a new one, the form of an
//! existing one, saving it, deleting it and, for some, restoring it. What differs (the
//! form, its checks, what a deletion must refuse) is each kind's [`Catalogue`]; the handlers
//! and routes here are written once for all of them.

use super::{actor, done, finish_removal, gone};
use crate::db::audit::{Actor, WriteError};
use crate::db::resources::Removal;
use crate::state::AppState;
use crate::web::chrome::Chrome;
use crate::web::error::AppResult;
use crate::web::form::Form;
use crate::web::guard::CurrentUser;
use crate::web::path_id::PathId;
use crate::web::route_table::{Endpoint, Routes, get, post};
use axum::extract::State;
use axum::response::Response;
use sqlx::PgConnection;
use std::future::Future;
use tower_sessions::Session;
use uuid::Uuid;

/// One kind of object administrators keep.
pub trait Catalogue: Send + Sync + 'static {
    /// What one is called in messages ("That group does not exist").
    const WHAT: &'static str;
    /// The list, where a change lands (`/admin/groups`).
    const LIST: &'static str;
    /// The form for a new one (`/admin/groups/new`).
    const NEW: &'static str;
    /// One of them (`/admin/groups/{id}`).
    const ONE: &'static str;

    /// The form as posted: a struct named as the page's fields.
    type Form: serde::de::DeserializeOwned + Send + Sync;

    /// The form filled from the stored object, or `None` when there is none.
    fn edit_page(
        state: &AppState,
        chrome: Chrome,
        id: Uuid,
    ) -> impl Future<Output = AppResult<Option<Response>>> + Send;

    /// Checks the form and creates (`id` None) or updates the object: the form again with
    /// its problems, or the next page with what was done.
    fn save(
        state: &AppState,
        chrome: Chrome,
        user: &CurrentUser,
        session: &Session,
        id: Option<Uuid>,
        f: &Self::Form,
    ) -> impl Future<Output = AppResult<Response>> + Send;
}

/// A kind whose objects are deleted with nothing more to confirm.
pub trait Deletable: Catalogue {
    /// `/admin/groups/{id}/delete`.
    const DELETE: &'static str;

    /// Deletes (or archives) the object in `tx`, or says why it must stay.
    fn remove(
        tx: &mut PgConnection,
        actor: &Actor,
        id: Uuid,
    ) -> impl Future<Output = Result<Removal, WriteError>> + Send;
}

/// A kind whose deleted objects are archived, and can be brought back.
pub trait Restorable: Catalogue {
    /// `/admin/resources/{id}/restore`.
    const RESTORE: &'static str;

    /// Brings the archived object back; its name.
    fn restore(
        tx: &mut PgConnection,
        actor: &Actor,
        id: Uuid,
    ) -> impl Future<Output = Result<String, WriteError>> + Send;
}

/// The list at `K::LIST` (`list`), the new form at `K::NEW` (`new`, and saving it), and each
/// one's form at `K::ONE` (shown and saved).
pub fn routes<K: Catalogue>(routes: Routes, list: Endpoint, new: Endpoint) -> Routes {
    routes
        .route(K::LIST, list)
        .route(K::NEW, new.post(create::<K>))
        .route(K::ONE, get(edit::<K>).post(update::<K>))
}

/// Deleting at `K::DELETE`.
pub fn delete_route<K: Deletable>(routes: Routes) -> Routes {
    routes.route(K::DELETE, post(delete::<K>))
}

/// Restoring at `K::RESTORE`.
pub fn restore_route<K: Restorable>(routes: Routes) -> Routes {
    routes.route(K::RESTORE, post(restore::<K>))
}

pub async fn create<K: Catalogue>(
    State(state): State<AppState>,
    chrome: Chrome,
    user: CurrentUser,
    session: Session,
    Form(f): Form<K::Form>,
) -> AppResult<Response> {
    K::save(&state, chrome, &user, &session, None, &f).await
}

pub async fn edit<K: Catalogue>(
    State(state): State<AppState>,
    chrome: Chrome,
    session: Session,
    PathId(id): PathId,
) -> AppResult<Response> {
    match K::edit_page(&state, chrome, id).await? {
        Some(page) => Ok(page),
        None => gone(&session, K::WHAT, K::LIST).await,
    }
}

pub async fn update<K: Catalogue>(
    State(state): State<AppState>,
    chrome: Chrome,
    user: CurrentUser,
    session: Session,
    PathId(id): PathId,
    Form(f): Form<K::Form>,
) -> AppResult<Response> {
    K::save(&state, chrome, &user, &session, Some(id), &f).await
}

pub async fn delete<K: Deletable>(
    State(state): State<AppState>,
    user: CurrentUser,
    session: Session,
    PathId(id): PathId,
) -> AppResult<Response> {
    let mut tx = state.db.begin().await?;
    let result = K::remove(&mut tx, &actor(&user), id).await;
    finish_removal(
        tx,
        &session,
        result,
        K::WHAT,
        K::LIST,
        &format!("{}/{id}", K::LIST),
    )
    .await
}

pub async fn restore<K: Restorable>(
    State(state): State<AppState>,
    user: CurrentUser,
    session: Session,
    PathId(id): PathId,
) -> AppResult<Response> {
    let mut tx = state.db.begin().await?;
    match K::restore(&mut tx, &actor(&user), id).await {
        Ok(name) => {
            tx.commit().await?;
            done(&session, format!("Restored {name}."), K::LIST).await
        }
        Err(WriteError::NotFound) => gone(&session, K::WHAT, K::LIST).await,
        Err(e) => Err(e.into()),
    }
}
