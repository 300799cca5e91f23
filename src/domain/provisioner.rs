//! Provisioners as the catalogue names them: their kinds and the names they accept. What
//! they do on the targets is in `crate::provision`.

/// How access to a resource is granted, mirrored by the PostgreSQL enum `provisioner_kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::Type)]
#[sqlx(type_name = "provisioner_kind", rename_all = "snake_case")]
pub enum ProvisionerKind {
    /// Nothing is done on the target.
    Simulated,
    /// Accounts are made and removed over SSH.
    LinuxSsh,
    /// A login role is made on a PostgreSQL server and dropped at the end.
    Postgresql,
    /// An executable declared in the provisioners file does the work.
    Command,
}

impl ProvisionerKind {
    pub const ALL: [ProvisionerKind; 4] = [
        Self::Simulated,
        Self::LinuxSsh,
        Self::Postgresql,
        Self::Command,
    ];

    /// The stored spelling.
    pub fn key(self) -> &'static str {
        match self {
            Self::Simulated => "simulated",
            Self::LinuxSsh => "linux_ssh",
            Self::Postgresql => "postgresql",
            Self::Command => "command",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Simulated => "Simulated (nothing is done on the target)",
            Self::LinuxSsh => "Linux over SSH",
            Self::Postgresql => "PostgreSQL login role",
            Self::Command => "Command from the provisioners file",
        }
    }

    /// A kind as typed in a form or seed file.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.key() == s)
    }
}

/// Checks a Linux account or group name: what `useradd` accepts by default on Debian and
/// Red Hat alike, and nothing a shell would read as syntax.
pub fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    let Some(first) = chars.next() else {
        return false;
    };
    name.len() <= 32
        && (first.is_ascii_lowercase() || first == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

/// The names resources may give (the same pattern as the database's check).
pub fn valid_command_name(name: &str) -> bool {
    let mut chars = name.chars();
    let Some(first) = chars.next() else {
        return false;
    };
    name.len() <= 64
        && (first.is_ascii_lowercase() || first.is_ascii_digit())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

/// What becomes of the objects the session's role owns when it is dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::Type)]
#[sqlx(type_name = "owned_objects_action", rename_all = "snake_case")]
pub enum OwnedObjects {
    Drop,
    Reassign,
}
