//! How a session really ended, told from its final status and who moved it there: records
//! must not pass a planned end off as the real one.

use uuid::Uuid;

use crate::domain::status::SessionStatus;

/// Who or what ended a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// The requester ended or withdrew it.
    Requester,
    /// Someone else (an administrator) ended it.
    Administrator,
    /// An approver denied it.
    Approver,
    /// Its window ran out.
    Window,
    /// No decision came before the deadline.
    Deadline,
    /// Provisioning or the target failed.
    Failure,
    /// Portcullis ended it (the policy no longer grants it).
    System,
}

impl Ending {
    /// From the session's final status, the actor of the event that moved it there (`None`:
    /// the system) and its requester. `None` while the session has not ended.
    pub fn of(status: SessionStatus, actor: Option<Uuid>, requester: Uuid) -> Option<Self> {
        if !status.is_final() {
            return None;
        }
        Some(match (status, actor) {
            (SessionStatus::Failed, _) => Self::Failure,
            (SessionStatus::ApprovalDenied, _) => Self::Approver,
            (_, Some(a)) if a == requester => Self::Requester,
            (_, Some(_)) => Self::Administrator,
            (SessionStatus::Completed, None) => Self::Window,
            (SessionStatus::Expired, None) => Self::Deadline,
            (_, None) => Self::System,
        })
    }

    /// Words for the record: "by the requester".
    pub fn label(self) -> &'static str {
        match self {
            Self::Requester => "by the requester",
            Self::Administrator => "by an administrator",
            Self::Approver => "denied by an approver",
            Self::Window => "when its window ended",
            Self::Deadline => "undecided at the deadline",
            Self::Failure => "by a failure",
            Self::System => "by Portcullis",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_actor_and_the_status_say_who_ended_it() {
        let (alice, carol) = (Uuid::now_v7(), Uuid::now_v7());
        let of = |s, a| Ending::of(s, a, alice);
        assert_eq!(of(SessionStatus::Available, None), None);
        assert_eq!(
            of(SessionStatus::Completed, Some(alice)),
            Some(Ending::Requester)
        );
        assert_eq!(
            of(SessionStatus::Canceled, Some(alice)),
            Some(Ending::Requester)
        );
        assert_eq!(
            of(SessionStatus::Completed, Some(carol)),
            Some(Ending::Administrator)
        );
        assert_eq!(of(SessionStatus::Completed, None), Some(Ending::Window));
        assert_eq!(of(SessionStatus::Expired, None), Some(Ending::Deadline));
        assert_eq!(of(SessionStatus::Failed, None), Some(Ending::Failure));
        assert_eq!(
            of(SessionStatus::ApprovalDenied, Some(carol)),
            Some(Ending::Approver)
        );
        assert_eq!(of(SessionStatus::Canceled, None), Some(Ending::System));
    }
}
