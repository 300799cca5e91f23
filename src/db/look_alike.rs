//! The names of one kind of catalogue object, for the look-alike warning of the admin forms.

use sqlx::PgExecutor;
use uuid::Uuid;

/// A kind of object whose names an administrator types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Named {
    Resources,
    Activities,
    Groups,
    Profiles,
    Policies,
}

impl Named {
    fn table(self) -> &'static str {
        match self {
            Self::Resources => "resources",
            Self::Activities => "activities",
            Self::Groups => "groups",
            Self::Profiles => "connection_profiles",
            Self::Policies => "access_policies",
        }
    }

    /// What one of them is called on screen.
    pub fn noun(self) -> &'static str {
        match self {
            Self::Resources => "resource",
            Self::Activities => "activity",
            Self::Groups => "group",
            Self::Profiles => "connection profile",
            Self::Policies => "access policy",
        }
    }
}

/// Every object's id and name (archived ones too: their names still show in history).
pub async fn names(
    db: impl PgExecutor<'_>,
    kind: Named,
) -> Result<Vec<(Uuid, String)>, sqlx::Error> {
    // Runtime SQL: one helper for five tables, the table name chosen by `kind`.
    sqlx::query_as(&format!("SELECT id, name FROM {}", kind.table()))
        .fetch_all(db)
        .await
}
