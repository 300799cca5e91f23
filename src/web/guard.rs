//! The signed-in user, reloaded on every request, and the guards that route groups wear.

use axum::extract::{FromRequestParts, Request, State};
use axum::http::Method;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use time::OffsetDateTime;
use tower_sessions::Session;
use uuid::Uuid;

use crate::auth::session::{self, FlashKind};
use crate::domain::role::Role;
use crate::domain::tz::TimeZone;
use crate::state::AppState;
use crate::web::error::AppError;

/// The account behind this request, as it is in the database now: disabling an account or
/// changing its role takes effect on its next click.
#[derive(Debug, Clone)]
pub struct CurrentUser {
    pub id: Uuid,
    pub username: String,
    pub display_name: String,
    pub role: Role,
    pub time_zone: TimeZone,
    /// Named, directly or through a group, in some approval tier.
    pub is_approver: bool,
}

impl CurrentUser {
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }
}

impl<S: Send + Sync> FromRequestParts<S> for CurrentUser {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        // Put there by `require_user`; a handler outside a guarded group is a wiring mistake.
        parts
            .extensions
            .get::<CurrentUser>()
            .cloned()
            .ok_or_else(|| AppError::internal("CurrentUser used on a route without require_user"))
    }
}

/// Why there is no signed-in user.
enum Anonymous {
    NeverSignedIn,
    Expired,
}

async fn resolve(
    state: &AppState,
    session: &Session,
) -> Result<Result<CurrentUser, Anonymous>, AppError> {
    let Some(auth) = session::auth(session).await? else {
        return Ok(Err(Anonymous::NeverSignedIn));
    };
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let idle_minutes = state.settings.session_idle_minutes;
    let lifetime = i64::from(state.settings.session_lifetime_hours) * 3600;
    if now - auth.signed_in_at > lifetime
        || session::idle_expired(auth.last_seen, now, idle_minutes)
    {
        session::sign_out(session).await?;
        return Ok(Err(Anonymous::Expired));
    }
    // Loaded with the session, in the same query (see `auth::store`).
    let Some(row) = session::principal(session)
        .await?
        .filter(|row| row.id == auth.user_id)
    else {
        session::sign_out(session).await?;
        return Ok(Err(Anonymous::NeverSignedIn));
    };
    if row.disabled {
        session::sign_out(session).await?;
        return Ok(Err(Anonymous::NeverSignedIn));
    }
    session::touch(session, &auth, now, idle_minutes).await?;
    Ok(Ok(CurrentUser {
        id: row.id,
        username: row.username,
        display_name: row.display_name,
        role: row.role,
        time_zone: TimeZone::parse(&row.time_zone).unwrap_or_else(|_| TimeZone::utc()),
        is_approver: row.is_approver,
    }))
}

/// Lets signed-in users through with a [`CurrentUser`]; sends anyone else to the sign-in page,
/// which brings them back here afterwards.
pub async fn require_user(
    State(state): State<AppState>,
    session: Session,
    mut request: Request,
    next: Next,
) -> Response {
    match resolve(&state, &session).await {
        Ok(Ok(user)) => {
            request.extensions_mut().insert(user);
            next.run(request).await
        }
        Ok(Err(why)) => {
            if matches!(why, Anonymous::Expired)
                && let Err(e) = session::flash(
                    &session,
                    FlashKind::Info,
                    "Your sign-in expired. Sign in again.",
                )
                .await
            {
                return AppError::from(e).into_response();
            }
            let back = if request.method() == Method::GET {
                request
                    .uri()
                    .path_and_query()
                    .map(|pq| pq.as_str().to_owned())
            } else {
                None
            };
            let target = match back.filter(|b| is_safe_next(b) && b != "/") {
                Some(b) => format!("/login?next={}", urlencode(&b)),
                None => "/login".to_owned(),
            };
            Redirect::to(&target).into_response()
        }
        Err(e) => e.into_response(),
    }
}

/// Lets administrators through; anyone else signed in gets 403. Runs inside `require_user`.
pub async fn require_admin(user: CurrentUser, request: Request, next: Next) -> Response {
    if user.is_admin() {
        next.run(request).await
    } else {
        AppError::Forbidden.into_response()
    }
}

/// Lets approvers through (named in some approval tier, directly or through a group); the
/// Approvals pages do not exist for anyone else. Runs inside `require_user`.
pub async fn require_approver(user: CurrentUser, request: Request, next: Next) -> Response {
    if user.is_approver {
        next.run(request).await
    } else {
        AppError::NotFound.into_response()
    }
}

/// Whether `next` is a path on this site: it starts with one '/', and holds no backslash or
/// control character that a browser might read as another host.
pub fn is_safe_next(next: &str) -> bool {
    next.starts_with('/')
        && !next.starts_with("//")
        && !next.starts_with("/\\")
        && !next.chars().any(|c| c == '\\' || c.is_control())
        && next.len() <= 2000
}

fn urlencode(s: &str) -> String {
    serde_urlencoded::to_string([("", s)])
        .map(|e| e.trim_start_matches('=').to_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::is_safe_next;

    #[test]
    fn only_same_site_relative_paths_are_followed_after_sign_in() {
        assert!(is_safe_next("/dashboard?tab=active"));
        assert!(!is_safe_next("https://evil.example/"));
        assert!(!is_safe_next("//evil.example/"));
        assert!(!is_safe_next("/\\evil.example/"));
        assert!(!is_safe_next("/ok\nLocation: x"));
        assert!(!is_safe_next("dashboard"));
    }
}
