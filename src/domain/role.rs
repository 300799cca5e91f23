//! Account roles. Approver is not a role: it follows from the approval tiers.

use serde::{Deserialize, Serialize};

/// What an account may do, mirrored by the PostgreSQL enum `user_role`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, sqlx::Type)]
#[sqlx(type_name = "user_role", rename_all = "lowercase")]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Requests sessions for themselves.
    User,
    /// Also runs the catalogue and may act on anyone's sessions.
    Admin,
    /// Read-only view of everything.
    Auditor,
}

impl Role {
    /// The word shown in the interface.
    pub fn label(self) -> &'static str {
        match self {
            Role::User => "User",
            Role::Admin => "Administrator",
            Role::Auditor => "Auditor",
        }
    }

    /// Parses the stored/seed spelling.
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim() {
            "user" => Some(Role::User),
            "admin" => Some(Role::Admin),
            "auditor" => Some(Role::Auditor),
            _ => None,
        }
    }
}
