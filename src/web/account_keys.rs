//! The SSH public keys on the Account page: add (one pasted OpenSSH line and a name) and
//! remove, each audited. The gateway signs people in with these keys.

use axum::Form;
use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use tower_sessions::Session;

use crate::app::Actor;
use crate::app::account::{self, KeyAdded, KeyRefused};
use crate::auth::session::{self, FlashKind};
use crate::db;
use crate::domain::ssh_keys::MAX_KEYS;
use crate::domain::tz::TimeZone;
use crate::domain::wizard::format_local;
use crate::state::AppState;
use crate::web::admin::actor;
use crate::web::error::AppResult;
use crate::web::guard::CurrentUser;
use crate::web::path_id::PathId;

/// A key as the Account page lists it.
pub struct KeyView {
    pub id: String,
    pub name: String,
    pub algorithm: String,
    pub fingerprint: String,
    pub added: String,
    pub last_used: String,
}

/// The user's keys, with times in their time zone.
pub async fn views(state: &AppState, user: &CurrentUser) -> AppResult<Vec<KeyView>> {
    let tz: TimeZone = user.time_zone;
    Ok(db::ssh_keys::list_for_user(&state.db, user.id)
        .await?
        .into_iter()
        .map(|k| KeyView {
            id: k.id.to_string(),
            name: k.name,
            algorithm: k.algorithm,
            fingerprint: k.fingerprint,
            added: format_local(tz.local(k.created_at)),
            last_used: k
                .last_used_at
                .map_or_else(|| "Never".to_owned(), |at| format_local(tz.local(at))),
        })
        .collect())
}

#[derive(Deserialize)]
pub struct AddForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    public_key: String,
}

/// Registers a key, or says why not; a refused text is never shown back nor kept.
pub async fn add(
    State(state): State<AppState>,
    session: Session,
    user: CurrentUser,
    Form(form): Form<AddForm>,
) -> AppResult<Response> {
    let actor = Actor::from(&user);
    let (kind, text) = match account::add_key(&state, &actor, &form.name, &form.public_key).await? {
        Ok(KeyAdded { name, fingerprint }) => (
            FlashKind::Success,
            format!("Added the key {name} ({fingerprint})."),
        ),
        Err(refused) => (
            FlashKind::Error,
            format!("Nothing was added. {}", refusal(refused)),
        ),
    };
    session::flash(&session, kind, text).await?;
    Ok(Redirect::to("/account#ssh-keys").into_response())
}

/// Why a key was not added.
fn refusal(refused: KeyRefused) -> String {
    match refused {
        KeyRefused::BadKey(bad) => bad.to_string(),
        KeyRefused::BadName(why) => why,
        KeyRefused::TooMany => {
            format!("You have {MAX_KEYS} keys, the most allowed: remove one first.")
        }
        KeyRefused::KeyTaken => "This key is already registered.".to_owned(),
        KeyRefused::NameTaken(name) => {
            format!("You already have a key named {name}: choose another name.")
        }
    }
}

/// Removes one of the user's own keys (someone else's key is not found).
pub async fn remove(
    State(state): State<AppState>,
    session: Session,
    user: CurrentUser,
    PathId(id): PathId,
) -> AppResult<Response> {
    let name = db::ssh_keys::remove(&state.db, &actor(&user), user.id, id)
        .await?
        .ok_or(crate::web::error::AppError::NotFound)?;
    tracing::info!(user = %user.id, "removed an SSH key");
    session::flash(
        &session,
        FlashKind::Success,
        format!("Removed the key {name}: it no longer signs you in to the gateway."),
    )
    .await?;
    Ok(Redirect::to("/account#ssh-keys").into_response())
}
