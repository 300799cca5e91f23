//! Whether a session's grant still holds: the rule every action that grants or prolongs
//! access applies (approve, extend, reveal, connect, the worker's start and provisioning), and
//! that a policy change or a disabled account is measured by. The facts come from
//! `db::grants`; the rule is here, pure.

/// What the database says now about the grant behind one session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Standing {
    /// The requester's account is disabled.
    pub requester_disabled: bool,
    /// The policy's name (as it is now, or as the request recorded it when it is gone).
    pub policy_name: String,
    pub activity_name: String,
    pub resource_name: String,
    /// The policy the request was made under, if it still exists.
    pub policy: Option<PolicyFacts>,
}

/// The request's policy as it is now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PolicyFacts {
    pub enabled: bool,
    /// The requester is a member, directly or through a group.
    pub member: bool,
    /// It still names the session's activity.
    pub activity: bool,
    /// It still names the session's resource.
    pub resource: bool,
    /// It still applies the connection profile the request was made under (its rules:
    /// approvals, duration, extensions).
    pub same_profile: bool,
}

/// Why a grant no longer holds, in words for the person who is refused or whose session ends.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Lapsed {
    #[error("The requester's account is disabled.")]
    AccountDisabled,
    #[error("The policy that granted this session ({0}) was deleted.")]
    PolicyDeleted(String),
    #[error("The policy that granted this session ({0}) is disabled.")]
    PolicyDisabled(String),
    #[error(
        "The policy {0} no longer grants this session: the requester is no longer one of its members."
    )]
    NotMember(String),
    #[error("The policy {policy} no longer grants the activity {activity}.")]
    Activity { policy: String, activity: String },
    #[error("The policy {policy} no longer grants access to {resource}.")]
    Resource { policy: String, resource: String },
    #[error(
        "The policy {0} now applies another connection profile; request access again under its rules."
    )]
    Profile(String),
}

/// Whether the grant holds, or the first reason it does not.
pub fn check(s: &Standing) -> Result<(), Lapsed> {
    if s.requester_disabled {
        return Err(Lapsed::AccountDisabled);
    }
    let policy = s.policy_name.clone();
    let Some(p) = s.policy else {
        return Err(Lapsed::PolicyDeleted(policy));
    };
    if !p.enabled {
        return Err(Lapsed::PolicyDisabled(policy));
    }
    if !p.member {
        return Err(Lapsed::NotMember(policy));
    }
    if !p.activity {
        return Err(Lapsed::Activity {
            policy,
            activity: s.activity_name.clone(),
        });
    }
    if !p.resource {
        return Err(Lapsed::Resource {
            policy,
            resource: s.resource_name.clone(),
        });
    }
    if !p.same_profile {
        return Err(Lapsed::Profile(policy));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn holding() -> Standing {
        Standing {
            requester_disabled: false,
            policy_name: "Linux operations".into(),
            activity_name: "Linux administration".into(),
            resource_name: "lnx-web-01".into(),
            policy: Some(PolicyFacts {
                enabled: true,
                member: true,
                activity: true,
                resource: true,
                same_profile: true,
            }),
        }
    }

    #[test]
    fn a_grant_holds_while_every_link_of_it_does() {
        assert_eq!(check(&holding()), Ok(()));
    }

    #[test]
    fn each_broken_link_says_why() {
        let with = |f: fn(&mut Standing)| {
            let mut s = holding();
            f(&mut s);
            check(&s).unwrap_err().to_string()
        };
        assert_eq!(
            with(|s| s.requester_disabled = true),
            "The requester's account is disabled."
        );
        assert_eq!(
            with(|s| s.policy = None),
            "The policy that granted this session (Linux operations) was deleted."
        );
        let facts = |f: fn(&mut PolicyFacts)| {
            let mut s = holding();
            if let Some(p) = s.policy.as_mut() {
                f(p);
            }
            check(&s).unwrap_err().to_string()
        };
        assert_eq!(
            facts(|p| p.enabled = false),
            "The policy that granted this session (Linux operations) is disabled."
        );
        assert!(facts(|p| p.member = false).contains("no longer one of its members"));
        assert_eq!(
            facts(|p| p.resource = false),
            "The policy Linux operations no longer grants access to lnx-web-01."
        );
        assert_eq!(
            facts(|p| p.activity = false),
            "The policy Linux operations no longer grants the activity Linux administration."
        );
        assert!(facts(|p| p.same_profile = false).contains("another connection profile"));
    }

    #[test]
    fn a_disabled_account_is_named_before_anything_about_the_policy() {
        let mut s = holding();
        s.requester_disabled = true;
        s.policy = None;
        assert_eq!(check(&s), Err(Lapsed::AccountDisabled));
    }
}
