//! The application layer: the use cases that the pages and the API both call (finish a
//! request, decide on approvals, end and extend sessions), so a rule lives in one place and a
//! new front door cannot skip it. Front doors only translate: they extract their input, call
//! a use case, and word its outcome for their user (a flash and a redirect, or JSON).
//!
//! It knows nothing of HTTP: it takes an [`Actor`] (each front door builds one from whoever
//! it authenticated) and returns outcomes, or the database's error.

pub mod account;
pub mod approvals;
pub mod one_call;
pub mod requests;
pub mod resource_import;
pub mod second_factor;
pub mod sessions;
pub mod sign_in;
pub mod users;
pub mod wizard;

use uuid::Uuid;

use crate::domain::role::Role;
use crate::domain::tz::TimeZone;

/// Who is acting, as their account is now.
#[derive(Debug, Clone)]
pub struct Actor {
    pub id: Uuid,
    pub username: String,
    pub display_name: String,
    pub role: Role,
    pub time_zone: TimeZone,
}

impl Actor {
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }

    /// Administrators and auditors see every request.
    pub fn sees_everything(&self) -> bool {
        matches!(self.role, Role::Admin | Role::Auditor)
    }
}

/// What a use case returns: its outcome, or the database's failure.
pub type Result<T> = std::result::Result<T, sqlx::Error>;
