//! Activity session statuses and the transitions between them (DESIGN.md section 3).

use serde::{Deserialize, Serialize};

/// Where a session is in its life, mirrored by the PostgreSQL enum `session_status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, sqlx::Type)]
#[sqlx(type_name = "session_status", rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum SessionStatus {
    WaitingForApproval,
    Pending,
    Provisioning,
    Available,
    LoggedIn,
    Locked,
    Completed,
    Canceled,
    ApprovalDenied,
    Expired,
    Failed,
}

/// The dashboard tabs a session can appear on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tab {
    Active,
    Scheduled,
    Historical,
}

impl SessionStatus {
    /// Every status, in lifecycle order.
    pub const ALL: [SessionStatus; 11] = [
        Self::WaitingForApproval,
        Self::Pending,
        Self::Provisioning,
        Self::Available,
        Self::LoggedIn,
        Self::Locked,
        Self::Completed,
        Self::Canceled,
        Self::ApprovalDenied,
        Self::Expired,
        Self::Failed,
    ];

    /// The label shown on screen, exactly as DESIGN.md spells it.
    pub fn label(self) -> &'static str {
        match self {
            Self::WaitingForApproval => "Waiting for Approval",
            Self::Pending => "Pending",
            Self::Provisioning => "Provisioning",
            Self::Available => "Available",
            Self::LoggedIn => "Logged In",
            Self::Locked => "Locked",
            Self::Completed => "Completed",
            Self::Canceled => "Canceled",
            Self::ApprovalDenied => "Approval Denied",
            Self::Expired => "Expired",
            Self::Failed => "Failed",
        }
    }

    /// The stored spelling (also used as a CSS class).
    pub fn key(self) -> &'static str {
        match self {
            Self::WaitingForApproval => "waiting_for_approval",
            Self::Pending => "pending",
            Self::Provisioning => "provisioning",
            Self::Available => "available",
            Self::LoggedIn => "logged_in",
            Self::Locked => "locked",
            Self::Completed => "completed",
            Self::Canceled => "canceled",
            Self::ApprovalDenied => "approval_denied",
            Self::Expired => "expired",
            Self::Failed => "failed",
        }
    }

    /// Whether the session is over: nothing moves it any more.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            Self::Completed | Self::Canceled | Self::ApprovalDenied | Self::Expired | Self::Failed
        )
    }

    /// Whether access has begun (the login account exists or is being made).
    pub fn has_begun(self) -> bool {
        matches!(
            self,
            Self::Provisioning | Self::Available | Self::LoggedIn | Self::Locked
        )
    }

    /// Whether the requester can connect now.
    pub fn is_connectable(self) -> bool {
        matches!(self, Self::Available | Self::LoggedIn)
    }

    /// The dashboard tab; Waiting for Approval is Scheduled while its start is in the future.
    pub fn tab(self, start_in_future: bool) -> Tab {
        match self {
            Self::WaitingForApproval if start_in_future => Tab::Scheduled,
            Self::WaitingForApproval => Tab::Active,
            Self::Pending => Tab::Scheduled,
            Self::Provisioning | Self::Available | Self::LoggedIn | Self::Locked => Tab::Active,
            Self::Completed
            | Self::Canceled
            | Self::ApprovalDenied
            | Self::Expired
            | Self::Failed => Tab::Historical,
        }
    }

    /// The statuses that are not final, for queries over live sessions.
    pub fn live() -> Vec<SessionStatus> {
        Self::ALL.into_iter().filter(|s| !s.is_final()).collect()
    }

    /// The statuses that are final.
    pub fn finals() -> Vec<SessionStatus> {
        Self::ALL.into_iter().filter(|s| s.is_final()).collect()
    }
}

/// Something that moves a session from one status to another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// The last approval tier agreed; start in the future.
    ApprovedForLater,
    /// The last approval tier agreed; start now.
    ApprovedNow,
    /// An approver denied it.
    Deny,
    /// No decision in time.
    Expire,
    /// The requester withdrew it before it began.
    Withdraw,
    /// The start time came.
    Start,
    /// The login account is ready.
    Provisioned,
    /// Provisioning went wrong: the first grant, or the fresh grant after an Unlock that had
    /// removed the access on the target.
    ProvisioningFailed,
    /// The requester launched a connection.
    Connect,
    /// An administrator locked it.
    Lock,
    /// An administrator unlocked it; returns to where it was.
    Unlock,
    /// Its window ended, or the requester ended it.
    Complete,
    /// An administrator ended it.
    AdminCancel,
}

/// A transition that is not allowed from the session's status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a session that is {} cannot be {}", .from.label(), .verb)]
pub struct NotAllowed {
    pub from: SessionStatus,
    pub verb: &'static str,
}

impl Transition {
    fn verb(self) -> &'static str {
        match self {
            Self::ApprovedForLater | Self::ApprovedNow => "approved",
            Self::Deny => "denied",
            Self::Expire => "expired",
            Self::Withdraw => "withdrawn",
            Self::Start => "started",
            Self::Provisioned | Self::ProvisioningFailed => "provisioned",
            Self::Connect => "connected to",
            Self::Lock => "locked",
            Self::Unlock => "unlocked",
            Self::Complete => "ended",
            Self::AdminCancel => "canceled",
        }
    }

    /// The statuses this transition may start from (Unlock: from a lock of a usable session).
    pub fn sources(self) -> Vec<SessionStatus> {
        SessionStatus::ALL
            .into_iter()
            .filter(|s| self.apply(*s, Some(SessionStatus::Available)).is_ok())
            .collect()
    }

    /// The status after this transition from `from`, or why it is not allowed.
    /// `locked_from` is where a locked session was before the lock.
    pub fn apply(
        self,
        from: SessionStatus,
        locked_from: Option<SessionStatus>,
    ) -> Result<SessionStatus, NotAllowed> {
        use SessionStatus as S;
        let to = match (self, from) {
            (Self::ApprovedForLater, S::WaitingForApproval) => Some(S::Pending),
            (Self::ApprovedNow, S::WaitingForApproval) => Some(S::Provisioning),
            (Self::Deny, S::WaitingForApproval) => Some(S::ApprovalDenied),
            (Self::Expire, S::WaitingForApproval) => Some(S::Expired),
            (Self::Withdraw, S::WaitingForApproval | S::Pending) => Some(S::Canceled),
            (Self::Start, S::Pending) => Some(S::Provisioning),
            (Self::Provisioned, S::Provisioning) => Some(S::Available),
            (Self::ProvisioningFailed, S::Provisioning | S::Available | S::LoggedIn) => {
                Some(S::Failed)
            }
            (Self::Connect, S::Available) => Some(S::LoggedIn),
            (Self::Lock, S::Available | S::LoggedIn) => Some(S::Locked),
            (Self::Unlock, S::Locked) => locked_from.filter(|s| s.is_connectable()),
            (Self::Complete, S::Available | S::LoggedIn | S::Locked) => Some(S::Completed),
            (Self::AdminCancel, s) if !s.is_final() => Some(S::Canceled),
            _ => None,
        };
        to.ok_or(NotAllowed {
            from,
            verb: self.verb(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::SessionStatus as S;
    use super::*;

    #[test]
    fn labels_are_the_designs_words() {
        let labels: Vec<_> = S::ALL.iter().map(|s| s.label()).collect();
        assert_eq!(
            labels,
            [
                "Waiting for Approval",
                "Pending",
                "Provisioning",
                "Available",
                "Logged In",
                "Locked",
                "Completed",
                "Canceled",
                "Approval Denied",
                "Expired",
                "Failed"
            ]
        );
    }

    #[test]
    fn final_statuses_refuse_every_transition() {
        let all = [
            Transition::ApprovedForLater,
            Transition::ApprovedNow,
            Transition::Deny,
            Transition::Expire,
            Transition::Withdraw,
            Transition::Start,
            Transition::Provisioned,
            Transition::ProvisioningFailed,
            Transition::Connect,
            Transition::Lock,
            Transition::Unlock,
            Transition::Complete,
            Transition::AdminCancel,
        ];
        for from in S::finals() {
            for t in all {
                assert!(t.apply(from, None).is_err(), "{t:?} from {from:?}");
            }
        }
    }

    #[test]
    fn unlock_returns_to_where_the_session_was() {
        assert_eq!(
            Transition::Unlock.apply(S::Locked, Some(S::LoggedIn)),
            Ok(S::LoggedIn)
        );
        assert!(Transition::Unlock.apply(S::Locked, None).is_err());
    }

    #[test]
    fn a_failed_fresh_grant_after_an_unlock_fails_the_session() {
        for from in [S::Provisioning, S::Available, S::LoggedIn] {
            assert_eq!(
                Transition::ProvisioningFailed.apply(from, None),
                Ok(S::Failed)
            );
        }
        assert!(
            Transition::ProvisioningFailed
                .apply(S::WaitingForApproval, None)
                .is_err()
        );
    }

    #[test]
    fn sources_are_the_statuses_a_transition_starts_from() {
        assert_eq!(
            Transition::Complete.sources(),
            [S::Available, S::LoggedIn, S::Locked]
        );
        assert_eq!(Transition::Unlock.sources(), [S::Locked]);
        assert_eq!(
            Transition::Withdraw.sources(),
            [S::WaitingForApproval, S::Pending]
        );
    }

    #[test]
    fn requester_cannot_withdraw_a_session_that_has_begun() {
        let err = Transition::Withdraw.apply(S::Available, None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "a session that is Available cannot be withdrawn"
        );
    }

    #[test]
    fn waiting_for_approval_is_scheduled_only_when_its_start_is_ahead() {
        assert_eq!(S::WaitingForApproval.tab(true), Tab::Scheduled);
        assert_eq!(S::WaitingForApproval.tab(false), Tab::Active);
        assert_eq!(S::Pending.tab(false), Tab::Scheduled);
        assert_eq!(S::Expired.tab(false), Tab::Historical);
    }
}
