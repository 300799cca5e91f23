//! API tokens on the Account page: create (the token is shown once, on its own page), list
//! and revoke, each audited. A token carries its owner's permissions and no more.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use tower_sessions::Session;

use crate::app::account;
use crate::auth::session::{self, FlashKind};
use crate::db;
use crate::domain::api_token::{self, NewToken, Scope};
use crate::domain::wizard::format_local;
use crate::state::AppState;
use crate::web::admin::actor;
use crate::web::chrome::Chrome;
use crate::web::error::AppResult;
use crate::web::form::{Form, first};
use crate::web::guard::CurrentUser;
use crate::web::path_id::PathId;

/// A token as the Account page lists it.
pub struct TokenView {
    pub id: String,
    pub name: String,
    pub scopes: String,
    pub created: String,
    pub expires: String,
    pub last_used: String,
    /// "Active", "Expired" or "Revoked".
    pub state: &'static str,
    pub revocable: bool,
}

/// The user's tokens, with times in their time zone.
pub async fn views(state: &AppState, user: &CurrentUser) -> AppResult<Vec<TokenView>> {
    let tz = user.time_zone;
    let now = time::OffsetDateTime::now_utc();
    Ok(db::api_tokens::list(&state.db, user.id)
        .await?
        .into_iter()
        .map(|t| TokenView {
            id: t.id.to_string(),
            scopes: scope_list(&t.scopes),
            created: format_local(tz.local(t.created_at)),
            expires: format_local(tz.local(t.expires_at)),
            last_used: t
                .last_used_at
                .map_or_else(|| "Never".to_owned(), |at| format_local(tz.local(at))),
            state: match (t.revoked_at, t.usable(now)) {
                (Some(_), _) => "Revoked",
                (None, false) => "Expired",
                (None, true) => "Active",
            },
            revocable: t.revoked_at.is_none(),
            name: t.name,
        })
        .collect())
}

/// The scopes the form offers, with what each allows.
pub fn scope_choices() -> Vec<(&'static str, &'static str)> {
    Scope::ALL
        .into_iter()
        .map(|s| {
            (
                s.key(),
                match s {
                    Scope::Read => "read your sessions, requests and approvals",
                    Scope::Request => "create requests, end and extend your sessions",
                    Scope::Approve => "approve and deny",
                    Scope::Admin => "the catalogue and audit log (administrators only)",
                },
            )
        })
        .collect()
}

/// The page that shows a new token, once.
#[derive(Template, WebTemplate)]
#[template(path = "account_token.html")]
pub struct CreatedPage {
    chrome: Chrome,
    name: String,
    token: String,
    expires: String,
    scopes: String,
}

/// The new token form on the Account page.
#[derive(serde::Deserialize)]
pub struct NewTokenForm {
    #[serde(default, deserialize_with = "first")]
    name: String,
    #[serde(default)]
    scope: Vec<String>,
    #[serde(default, deserialize_with = "first")]
    days: String,
}

impl TryFrom<NewTokenForm> for NewToken {
    type Error = api_token::NewTokenErrors;

    fn try_from(f: NewTokenForm) -> Result<Self, Self::Error> {
        NewToken::parse(&f.name, f.scope.iter().map(String::as_str), &f.days)
    }
}

/// Creates a token, or says why not (nothing is stored then).
pub async fn create(
    State(state): State<AppState>,
    chrome: Chrome,
    session: Session,
    user: CurrentUser,
    Form(form): Form<NewTokenForm>,
) -> AppResult<Response> {
    let new = match NewToken::try_from(form) {
        Ok(new) => new,
        Err(e) => {
            for message in [e.name, e.scopes, e.days].into_iter().flatten() {
                session::flash(&session, FlashKind::Error, message).await?;
            }
            return Ok(Redirect::to("/account#api-tokens").into_response());
        }
    };
    let (token, secret) = account::create_token(&state, &(&user).into(), &new).await?;
    Ok(CreatedPage {
        chrome: chrome.at("account"),
        name: token.name,
        token: secret.as_str().to_owned(),
        expires: format_local(user.time_zone.local(token.expires_at)),
        scopes: scope_list(&new.scopes),
    }
    .into_response())
}

/// Scopes as the pages list them: "read, request".
fn scope_list(scopes: &[Scope]) -> String {
    scopes
        .iter()
        .map(|s| s.key())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Revokes one of the user's tokens: it stops working at once.
pub async fn revoke(
    State(state): State<AppState>,
    session: Session,
    user: CurrentUser,
    PathId(id): PathId,
) -> AppResult<Redirect> {
    let mut tx = state.db.begin().await?;
    let revoked =
        db::api_tokens::revoke(&mut tx, &actor(&user), user.id, &user.username, id).await?;
    tx.commit().await?;
    match revoked {
        Some(t) => {
            session::flash(
                &session,
                FlashKind::Success,
                format!("Revoked the API token {}: it no longer works.", t.name),
            )
            .await?
        }
        None => {
            session::flash(
                &session,
                FlashKind::Error,
                "That token is not yours or is already revoked.",
            )
            .await?
        }
    }
    Ok(Redirect::to("/account#api-tokens"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::web::form;

    #[test]
    fn a_token_form_converts_with_every_ticked_scope() {
        let f: NewTokenForm = form::parse(b"name=+ci+&scope=read&scope=request&days=30").unwrap();
        let new = NewToken::try_from(f).unwrap();
        assert_eq!(new.name, "ci");
        assert_eq!(new.scopes, [Scope::Read, Scope::Request]);
        assert_eq!(new.days, 30);
    }

    #[test]
    fn a_bad_token_form_names_each_wrong_field() {
        let f: NewTokenForm = form::parse(b"name=&days=many").unwrap();
        let e = NewToken::try_from(f).unwrap_err();
        assert!(e.name.is_some() && e.scopes.is_some() && e.days.is_some());
    }
}
