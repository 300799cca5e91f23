//! What can happen to an activity session: the kinds of its log entries, mirrored by the
//! PostgreSQL enum `session_event_kind` (migration 20261201000001). The email trigger and the
//! end-of-session rules match these values, so a misspelt kind is a compile error here and a
//! refused insert there, never a silently missing email.

use serde::Serialize;

/// The kind of one `session_events` row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, sqlx::Type)]
#[sqlx(type_name = "session_event_kind", rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// The requester finished the wizard.
    Requested,
    /// One approver agreed; the tier needs more.
    Approval,
    /// A tier agreed; the next tier is asked.
    TierApproved,
    /// The last tier agreed.
    Approved,
    Denied,
    /// No decision in time.
    Expired,
    /// The requester withdrew it before it began.
    Withdrawn,
    /// The scheduled start came.
    Started,
    /// The login account is ready (simulated targets).
    Provisioned,
    ProvisioningFailed,
    /// A real connection began (gateway, browser terminal or launch action).
    Connected,
    Locked,
    Unlocked,
    Extended,
    /// Ended by the requester or an administrator.
    Ended,
    /// Its window ended.
    WindowEnded,
    /// The grant lapsed (user, policy or group changed): access taken away.
    Revoked,
    /// A provisioner made the access on the target.
    AccessGranted,
    AccessRemoved,
    /// A removal failed and will be retried.
    AccessRemovalFailed,
    /// A provisioner moved the access's end on the target.
    AccessExtended,
    ExtensionFailed,
    ConnectionStringShown,
    PasswordRevealed,
}

impl EventKind {
    /// Every kind, in the order of the PostgreSQL enum.
    pub const ALL: [EventKind; 24] = [
        Self::Requested,
        Self::Approval,
        Self::TierApproved,
        Self::Approved,
        Self::Denied,
        Self::Expired,
        Self::Withdrawn,
        Self::Started,
        Self::Provisioned,
        Self::ProvisioningFailed,
        Self::Connected,
        Self::Locked,
        Self::Unlocked,
        Self::Extended,
        Self::Ended,
        Self::WindowEnded,
        Self::Revoked,
        Self::AccessGranted,
        Self::AccessRemoved,
        Self::AccessRemovalFailed,
        Self::AccessExtended,
        Self::ExtensionFailed,
        Self::ConnectionStringShown,
        Self::PasswordRevealed,
    ];

    /// The stored spelling.
    pub fn key(self) -> &'static str {
        match self {
            Self::Requested => "requested",
            Self::Approval => "approval",
            Self::TierApproved => "tier_approved",
            Self::Approved => "approved",
            Self::Denied => "denied",
            Self::Expired => "expired",
            Self::Withdrawn => "withdrawn",
            Self::Started => "started",
            Self::Provisioned => "provisioned",
            Self::ProvisioningFailed => "provisioning_failed",
            Self::Connected => "connected",
            Self::Locked => "locked",
            Self::Unlocked => "unlocked",
            Self::Extended => "extended",
            Self::Ended => "ended",
            Self::WindowEnded => "window_ended",
            Self::Revoked => "revoked",
            Self::AccessGranted => "access_granted",
            Self::AccessRemoved => "access_removed",
            Self::AccessRemovalFailed => "access_removal_failed",
            Self::AccessExtended => "access_extended",
            Self::ExtensionFailed => "extension_failed",
            Self::ConnectionStringShown => "connection_string_shown",
            Self::PasswordRevealed => "password_revealed",
        }
    }
}

impl std::fmt::Display for EventKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.key())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_unique_snake_case_and_fit_the_old_check() {
        let mut seen = std::collections::HashSet::new();
        for k in EventKind::ALL {
            let key = k.key();
            assert!(seen.insert(key), "{key} twice");
            assert!(
                !key.is_empty()
                    && key.len() <= 32
                    && key.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{key}"
            );
        }
    }

    #[test]
    fn serde_spells_kinds_as_stored() {
        for k in EventKind::ALL {
            assert_eq!(
                serde_json::to_value(k).ok(),
                Some(serde_json::Value::String(k.key().to_owned()))
            );
        }
    }
}
