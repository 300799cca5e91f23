//! Form bodies and query strings with repeated fields (checkbox lists), which plain serde
//! structs cannot hold.

use axum::extract::{FromRequest, Request};
use axum::http::header;

use crate::web::error::AppError;

/// The fields of a form, in order, repeated names kept.
#[derive(Debug, Default, Clone)]
pub struct Fields(pub Vec<(String, String)>);

impl Fields {
    /// Parses `a=1&b=2&b=3`.
    pub fn parse(text: &[u8]) -> Result<Self, AppError> {
        serde_urlencoded::from_bytes(text)
            .map(Self)
            .map_err(|_| AppError::Validation("The form could not be read.".into()))
    }

    /// The first value of `name`.
    pub fn first(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The first value of `name`, or "".
    pub fn text(&self, name: &str) -> &str {
        self.first(name).unwrap_or("")
    }

    /// Every value of `name`.
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A urlencoded form body as [`Fields`].
pub struct MultiForm(pub Fields);

impl<S: Send + Sync> FromRequest<S> for MultiForm {
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_form = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
        if !is_form {
            return Err(AppError::Validation("Expected a form.".into()));
        }
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|_| AppError::Validation("The form could not be read.".into()))?;
        Fields::parse(&bytes).map(MultiForm)
    }
}
