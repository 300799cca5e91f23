//! The id in a page's path. [`PathId`] takes the route's one `{id}` segment as a [`Uuid`];
//! anything else is answered with the not-found page, as an object the user may not see is
//! (DESIGN 6), before the handler runs.

use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use uuid::Uuid;

use crate::web::error::AppError;

/// The route's path parameter, as an id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PathId(pub Uuid);

impl<S: Send + Sync> FromRequestParts<S> for PathId {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Path(text) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        Uuid::parse_str(&text)
            .map(Self)
            .map_err(|_| AppError::NotFound.into_response())
    }
}
