//! Who is calling the API: the owner of a Bearer token, with the token's scopes. Cookies are
//! not read here (the API is outside the session layer), so a browser's sign-in alone gets
//! 401 and no CSRF token is needed: a cross-site page cannot make a browser send the header.

use axum::extract::{FromRequestParts, Request, State};
use axum::http::header;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use crate::app::Actor;
use crate::domain::api_token::{self, Scope};
use crate::domain::role::Role;
use crate::domain::tz::TimeZone;
use crate::state::AppState;

/// The token's owner as their account is now, and what the token allows.
#[derive(Debug, Clone)]
pub struct Caller {
    pub actor: Actor,
    pub role: Role,
    pub scopes: Vec<Scope>,
}

impl Caller {
    /// Whether this call may use `scope`: the token has it, and for `admin` the owner is an
    /// administrator (a scope never adds to the owner's permissions).
    pub fn allows(&self, scope: Scope) -> bool {
        self.scopes.contains(&scope) && (scope != Scope::Admin || self.role == Role::Admin)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        // Put there by `authenticate`; a handler outside the API's group is a wiring mistake.
        parts
            .extensions
            .get::<Caller>()
            .cloned()
            .ok_or_else(ApiError::unauthorized)
    }
}

/// The token of `Authorization: Bearer <token>`, if the header is that.
fn bearer(request: &Request) -> Option<&str> {
    let value = request
        .headers()
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (kind, token) = value.trim().split_once(' ')?;
    kind.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// Lets a call with a valid token through with its [`Caller`]; anything else gets 401. The
/// reference pages (`/api/v1/openapi.json`, `/api/v1/docs`) need no token.
pub async fn authenticate(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    if super::is_public(request.uri().path()) {
        return next.run(request).await;
    }
    let Some(token) = bearer(&request).filter(|t| api_token::well_formed(t)) else {
        return ApiError::unauthorized().into_response();
    };
    let found =
        match crate::db::api_tokens::authenticate(&state.db, &api_token::digest(token)).await {
            Ok(found) => found,
            Err(e) => return ApiError::from(e).into_response(),
        };
    let Some((row, scopes)) = found else {
        return ApiError::unauthorized().into_response();
    };
    let caller = Caller {
        actor: Actor {
            id: row.id,
            username: row.username,
            display_name: row.display_name,
            role: row.role,
            time_zone: TimeZone::parse(&row.time_zone).unwrap_or_else(|_| TimeZone::utc()),
        },
        role: row.role,
        scopes,
    };
    request.extensions_mut().insert(caller);
    next.run(request).await
}

/// Refuses a call whose token lacks `scope` (or whose owner lacks the admin role for an
/// admin route) with 403. Runs inside `authenticate`.
pub async fn require(scope: Scope, request: Request, next: Next) -> Response {
    let Some(caller) = request.extensions().get::<Caller>() else {
        return ApiError::unauthorized().into_response();
    };
    if !caller.scopes.contains(&scope) {
        return ApiError::forbidden(format!(
            "This token does not have the {} scope.",
            scope.key()
        ))
        .into_response();
    }
    if !caller.allows(scope) {
        return ApiError::forbidden(
            "Only administrators may use this; the token's owner is not one.",
        )
        .into_response();
    }
    next.run(request).await
}
