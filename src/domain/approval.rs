//! The approval rules (DESIGN.md section 3): what one decision does to a request waiting at
//! a tier. Pure: the database layer gathers the facts under the session's row lock, writes the
//! decision, then asks here what follows.

use time::OffsetDateTime;

use crate::domain::status::Transition;

/// An approver's answer, mirrored by the PostgreSQL enum `approval_decision`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::Type)]
#[sqlx(type_name = "approval_decision", rename_all = "lowercase")]
pub enum Decision {
    Approved,
    Denied,
}

/// Where the request stands once the decision is counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    /// The tier deciding now (1-based).
    pub tier: i16,
    /// How many tiers the profile has.
    pub tier_count: i16,
    /// Approvals in this tier, this one included.
    pub approvals: i64,
    /// Approvals this tier needs.
    pub required: i32,
    /// The requested start.
    pub start: OffsetDateTime,
}

/// What the decision does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Approval Denied: one denial ends the request.
    Deny,
    /// Counted; the tier waits for more approvals.
    Count { approvals: i64, required: i32 },
    /// The tier is satisfied; the next one is asked.
    NextTier { next: i16 },
    /// The last tier is satisfied: Pending when the start is ahead, else Provisioning.
    Approve(Transition),
}

/// The step one decision causes, given the tally after it and the time now.
pub fn step(decision: Decision, tally: Tally, now: OffsetDateTime) -> Step {
    if decision == Decision::Denied {
        return Step::Deny;
    }
    if tally.approvals < i64::from(tally.required) {
        return Step::Count {
            approvals: tally.approvals,
            required: tally.required,
        };
    }
    if tally.tier < tally.tier_count {
        return Step::NextTier {
            next: tally.tier + 1,
        };
    }
    Step::Approve(if tally.start > now {
        Transition::ApprovedForLater
    } else {
        Transition::ApprovedNow
    })
}

/// Why someone may not decide, before anything is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Barrier {
    /// The requester, when the profile does not allow self-approval.
    OwnRequest,
    /// Not named in the tier deciding now.
    NotInTier,
}

/// Whether this approver may decide at the current tier.
pub fn may_decide(
    is_requester: bool,
    self_approval_allowed: bool,
    in_current_tier: bool,
) -> Result<(), Barrier> {
    if is_requester && !self_approval_allowed {
        return Err(Barrier::OwnRequest);
    }
    if !in_current_tier {
        return Err(Barrier::NotInTier);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::Duration;

    fn tally(tier: i16, tier_count: i16, approvals: i64, required: i32) -> Tally {
        Tally {
            tier,
            tier_count,
            approvals,
            required,
            start: OffsetDateTime::UNIX_EPOCH,
        }
    }

    fn now() -> OffsetDateTime {
        OffsetDateTime::UNIX_EPOCH + Duration::hours(1)
    }

    #[test]
    fn one_denial_ends_the_request_whatever_the_count() {
        assert_eq!(step(Decision::Denied, tally(1, 1, 0, 1), now()), Step::Deny);
        assert_eq!(step(Decision::Denied, tally(2, 3, 5, 1), now()), Step::Deny);
    }

    #[test]
    fn a_tier_short_of_its_count_waits() {
        assert_eq!(
            step(Decision::Approved, tally(1, 2, 1, 2), now()),
            Step::Count {
                approvals: 1,
                required: 2
            }
        );
    }

    #[test]
    fn a_satisfied_tier_hands_on_to_the_next() {
        assert_eq!(
            step(Decision::Approved, tally(1, 3, 2, 2), now()),
            Step::NextTier { next: 2 }
        );
        assert_eq!(
            step(Decision::Approved, tally(2, 3, 1, 1), now()),
            Step::NextTier { next: 3 }
        );
    }

    #[test]
    fn the_last_tier_approves_for_now_or_for_later() {
        assert_eq!(
            step(Decision::Approved, tally(3, 3, 1, 1), now()),
            Step::Approve(Transition::ApprovedNow)
        );
        let later = Tally {
            start: now() + Duration::minutes(5),
            ..tally(1, 1, 1, 1)
        };
        assert_eq!(
            step(Decision::Approved, later, now()),
            Step::Approve(Transition::ApprovedForLater)
        );
        // A start exactly now is now.
        let exact = Tally {
            start: now(),
            ..tally(1, 1, 1, 1)
        };
        assert_eq!(
            step(Decision::Approved, exact, now()),
            Step::Approve(Transition::ApprovedNow)
        );
    }

    #[test]
    fn more_approvals_than_needed_still_move_on() {
        assert_eq!(
            step(Decision::Approved, tally(1, 1, 4, 2), now()),
            Step::Approve(Transition::ApprovedNow)
        );
    }

    #[test]
    fn the_requester_decides_only_when_self_approval_is_allowed() {
        assert_eq!(may_decide(true, false, true), Err(Barrier::OwnRequest));
        assert_eq!(may_decide(true, true, true), Ok(()));
        assert_eq!(may_decide(true, true, false), Err(Barrier::NotInTier));
        assert_eq!(may_decide(false, false, false), Err(Barrier::NotInTier));
        assert_eq!(may_decide(false, false, true), Ok(()));
    }
}
