//! Session-status sets for SQL, written from the domain's rules (`domain::status`) instead of
//! by hand: the dashboard tabs come from [`SessionStatus::tab`], the timed transitions'
//! candidates from [`Transition::sources`]. They are rendered once as SQL lists of enum
//! literals rather than bound as `$n::session_status[]`, because PostgreSQL matches a partial
//! index (the live-session indexes) only against constants it can see when planning.

use std::sync::LazyLock;

use crate::domain::status::{SessionStatus, Tab, Transition};

/// `('available', 'logged_in')`. The keys are the domain's own identifiers, never input.
pub fn list(set: impl IntoIterator<Item = SessionStatus>) -> String {
    let keys: Vec<String> = set.into_iter().map(|s| format!("'{}'", s.key())).collect();
    format!("({})", keys.join(", "))
}

/// Sessions not over yet: they hold their resource and their grant.
pub static LIVE: LazyLock<String> = LazyLock::new(|| list(SessionStatus::live()));

/// Sessions whose access exists: a window runs and may end (the sources of Complete).
pub static USABLE: LazyLock<String> = LazyLock::new(|| list(Transition::Complete.sources()));

/// Sessions a user may connect to now.
pub static CONNECTABLE: LazyLock<String> = LazyLock::new(|| {
    list(
        SessionStatus::ALL
            .into_iter()
            .filter(|s| s.is_connectable()),
    )
});

/// The predicate of a dashboard tab over `s` (activity_sessions), from
/// [`SessionStatus::tab`]. It first names every status of the tab as one list, so PostgreSQL
/// scans the partial index on live sessions once instead of combining two scans for the `OR`.
pub fn tab(tab: Tab) -> &'static str {
    static ACTIVE: LazyLock<String> = LazyLock::new(|| tab_predicate(Tab::Active));
    static SCHEDULED: LazyLock<String> = LazyLock::new(|| tab_predicate(Tab::Scheduled));
    static HISTORICAL: LazyLock<String> = LazyLock::new(|| tab_predicate(Tab::Historical));
    match tab {
        Tab::Active => &ACTIVE,
        Tab::Scheduled => &SCHEDULED,
        Tab::Historical => &HISTORICAL,
    }
}

fn tab_predicate(tab: Tab) -> String {
    let (mut always, mut ahead, mut begun) = (Vec::new(), Vec::new(), Vec::new());
    for s in SessionStatus::ALL {
        match (s.tab(true) == tab, s.tab(false) == tab) {
            (true, true) => always.push(s),
            (true, false) => ahead.push(s),
            (false, true) => begun.push(s),
            (false, false) => {}
        }
    }
    let every = always.iter().chain(&ahead).chain(&begun).copied();
    let mut predicate = format!("s.status IN {}", list(every));
    if ahead.is_empty() && begun.is_empty() {
        return predicate;
    }
    let mut cases = Vec::new();
    if !always.is_empty() {
        cases.push(format!("s.status IN {}", list(always)));
    }
    if !ahead.is_empty() {
        cases.push(format!(
            "(s.status IN {} AND s.requested_start > now())",
            list(ahead)
        ));
    }
    if !begun.is_empty() {
        cases.push(format!(
            "(s.status IN {} AND s.requested_start <= now())",
            list(begun)
        ));
    }
    predicate.push_str(&format!(" AND ({})", cases.join(" OR ")));
    predicate
}

/// Sessions due a timed transition, over `s` (activity_sessions) joined to `r` (requests).
pub mod due {
    use super::*;

    /// Pending sessions whose start has come.
    pub static START: LazyLock<String> = LazyLock::new(|| {
        format!(
            "s.status IN {} AND s.requested_start <= now()",
            list(Transition::Start.sources())
        )
    });
    /// Usable sessions whose window has ended.
    pub static END: LazyLock<String> =
        LazyLock::new(|| format!("s.status IN {} AND s.ends_at <= now()", *USABLE));
    /// Requests that waited too long for a decision, or whose requested window has passed
    /// (the earlier of the two is kept on each waiting session by a trigger: migration 0012).
    pub static EXPIRY: LazyLock<String> = LazyLock::new(|| {
        format!(
            "s.status IN {} AND s.approval_due_at <= now()",
            list(Transition::Expire.sources())
        )
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tabs_name_the_designs_statuses() {
        assert_eq!(
            tab(Tab::Active),
            "s.status IN ('provisioning', 'available', 'logged_in', 'locked', \
             'waiting_for_approval') AND (s.status IN ('provisioning', 'available', \
             'logged_in', 'locked') OR (s.status IN ('waiting_for_approval') AND \
             s.requested_start <= now()))"
        );
        assert_eq!(
            tab(Tab::Scheduled),
            "s.status IN ('pending', 'waiting_for_approval') AND (s.status IN ('pending') OR \
             (s.status IN ('waiting_for_approval') AND s.requested_start > now()))"
        );
        assert_eq!(
            tab(Tab::Historical),
            "s.status IN ('completed', 'canceled', 'approval_denied', 'expired', 'failed')"
        );
    }

    #[test]
    fn timed_transitions_claim_only_where_the_domain_allows_them() {
        assert_eq!(
            *due::START,
            "s.status IN ('pending') AND s.requested_start <= now()"
        );
        assert_eq!(
            *due::END,
            "s.status IN ('available', 'logged_in', 'locked') AND s.ends_at <= now()"
        );
        assert_eq!(
            *due::EXPIRY,
            "s.status IN ('waiting_for_approval') AND s.approval_due_at <= now()"
        );
        assert_eq!(
            *LIVE,
            "('waiting_for_approval', 'pending', 'provisioning', 'available', 'logged_in', \
             'locked')"
        );
        assert_eq!(*CONNECTABLE, "('available', 'logged_in')");
    }
}
