//! One error type for every handler. It renders a generic page for its status and logs the
//! cause of a server-side failure once; the user never sees internals.

use askama::Template;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};

use crate::auth::AuthError;
use crate::db::audit::WriteError;
use crate::web::chrome::Chrome;

/// The result of a handler.
pub type AppResult<T> = Result<T, AppError>;

/// What went wrong, by what the user should be told.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The object does not exist, or the user may not know it does (DESIGN 6: an object the
    /// user may not see is answered as not found).
    #[error("not found")]
    NotFound,
    /// Signed in, but the role does not allow this page.
    #[error("forbidden")]
    Forbidden,
    /// A form without the session's CSRF token: possibly forged, or from an expired sign-in.
    #[error("missing or wrong CSRF token")]
    Csrf,
    /// The action lost a race or no longer applies; the message says what happened.
    #[error("conflict: {0}")]
    Conflict(String),
    /// Input that cannot be shown again on its form (forms re-render themselves instead).
    #[error("invalid input: {0}")]
    Validation(String),
    /// The database cannot be reached; the client may retry.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// Anything else; logged, never shown.
    #[error("internal error: {0}")]
    Internal(String),
}

impl AppError {
    /// Wraps an unexpected failure.
    pub fn internal(e: impl std::fmt::Display) -> Self {
        Self::Internal(e.to_string())
    }

    fn status(&self) -> StatusCode {
        match self {
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::Forbidden | Self::Csrf => StatusCode::FORBIDDEN,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

pub use crate::db::is_unavailable;

impl From<sqlx::Error> for AppError {
    fn from(e: sqlx::Error) -> Self {
        if is_unavailable(&e) {
            Self::Unavailable(e.to_string())
        } else if matches!(e, sqlx::Error::RowNotFound) {
            Self::NotFound
        } else {
            Self::Internal(e.to_string())
        }
    }
}

impl From<tower_sessions::session::Error> for AppError {
    fn from(e: tower_sessions::session::Error) -> Self {
        // The session store is PostgreSQL: a backend failure is almost always the database
        // being out of reach, which a retry fixes.
        match e {
            tower_sessions::session::Error::Store(_) => Self::Unavailable(e.to_string()),
            other => Self::Internal(other.to_string()),
        }
    }
}

impl From<WriteError> for AppError {
    fn from(e: WriteError) -> Self {
        match e {
            WriteError::Taken => Self::Conflict("That name is already taken.".into()),
            WriteError::NotFound => Self::NotFound,
            WriteError::Db(e) => e.into(),
        }
    }
}

impl From<AuthError> for AppError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::Session(e) => e.into(),
            AuthError::Db(e) => e.into(),
            AuthError::Write(e) => e.into(),
            AuthError::Internal(cause) => Self::Internal(cause),
        }
    }
}

/// The generic error page.
#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    chrome: Chrome,
    status: u16,
    title: &'static str,
    message: String,
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status = self.status();
        let (title, message) = match &self {
            Self::NotFound => ("Not found", "There is nothing here, or it is not yours to see.".to_owned()),
            Self::Forbidden => ("Forbidden", "Your account is not allowed to open this page.".to_owned()),
            Self::Csrf => (
                "Form expired",
                "This form could not be accepted: it has expired or did not come from Portcullis. \
                 Go back, reload the page and try again."
                    .to_owned(),
            ),
            Self::Conflict(m) => ("Conflict", m.clone()),
            Self::Validation(m) => ("Invalid input", m.clone()),
            Self::Unavailable(_) => (
                "Temporarily unavailable",
                "Portcullis cannot reach its database right now. Try again in a moment.".to_owned(),
            ),
            Self::Internal(_) => (
                "Something went wrong",
                "The request failed. It has been logged; try again, and tell your administrator if it keeps happening."
                    .to_owned(),
            ),
        };
        match &self {
            Self::Internal(cause) => tracing::error!(%cause, "request failed"),
            Self::Unavailable(cause) => tracing::warn!(%cause, "database unavailable"),
            _ => {}
        }
        let page = ErrorPage {
            chrome: Chrome::bare(),
            status: status.as_u16(),
            title,
            message,
        };
        let body = page
            .render()
            .unwrap_or_else(|_| format!("{} {title}", status.as_u16()));
        let mut response = (status, Html(body)).into_response();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from_static("5"),
            );
        }
        response
    }
}
