//! What every page's layout needs: the signed-in user for the navigation, the CSRF token for
//! its forms, and the flash messages to show once.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use tower_sessions::Session;

use crate::auth::session::{self, Flash};
use crate::web::error::AppError;
use crate::web::guard::CurrentUser;

/// Sent by `static/app.js` when it reloads a table in the background.
pub const REFRESH_HEADER: &str = "x-portcullis-refresh";

/// The navigation's view of the user.
#[derive(Debug, Clone)]
pub struct NavUser {
    pub display_name: String,
    pub is_admin: bool,
    pub is_approver: bool,
}

/// Layout context, a field of every page template.
#[derive(Debug, Clone, Default)]
pub struct Chrome {
    pub user: Option<NavUser>,
    /// The session's CSRF token for the page's forms; empty for an anonymous visitor.
    pub csrf: String,
    pub flashes: Vec<Flash>,
    /// Which top-level section is current, for `aria-current`.
    pub section: &'static str,
}

impl Chrome {
    /// A layout without a user or forms (error pages).
    pub fn bare() -> Self {
        Self::default()
    }

    /// Marks the current section of the navigation.
    pub fn at(mut self, section: &'static str) -> Self {
        self.section = section;
        self
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Chrome {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let session = Session::from_request_parts(parts, state)
            .await
            .map_err(|(_, m)| AppError::internal(m))?;
        let user = parts.extensions.get::<CurrentUser>().map(|u| NavUser {
            display_name: u.display_name.clone(),
            is_admin: u.is_admin(),
            is_approver: u.is_approver,
        });
        // The live-status script reloads tables in the background: it must not eat the
        // messages meant for the next page the user opens.
        let background = parts.headers.contains_key(REFRESH_HEADER);
        Ok(Self {
            user,
            // Empty for an anonymous visitor (see `session::csrf_token`).
            csrf: session::csrf_token(&session).await?.unwrap_or_default(),
            flashes: if background {
                Vec::new()
            } else {
                session::take_flashes(&session).await?
            },
            section: "",
        })
    }
}
