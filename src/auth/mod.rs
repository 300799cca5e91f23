//! Who is asking: passwords, the typed session's data, its store and cache, the second
//! factor, single sign-on. No HTTP here: the guards, CSRF and sign-in pages are `web`'s, and
//! [`AuthError`] becomes a page through `web::error`.

pub mod cache;
pub mod password;
pub mod second_factor;
pub mod session;
pub mod sso;
pub mod store;

/// What can go wrong while finding out who is asking.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The session store (PostgreSQL) failed.
    #[error(transparent)]
    Session(#[from] tower_sessions::session::Error),
    /// A query failed.
    #[error(transparent)]
    Db(#[from] sqlx::Error),
    /// A write refused by the database (a name taken, a row gone).
    #[error(transparent)]
    Write(#[from] crate::db::audit::WriteError),
    /// Anything else; logged, never shown.
    #[error("{0}")]
    Internal(String),
}

impl AuthError {
    /// Wraps an unexpected failure.
    pub fn internal(e: impl std::fmt::Display) -> Self {
        Self::Internal(e.to_string())
    }
}

/// The result of an `auth` function.
pub type AuthResult<T> = Result<T, AuthError>;
