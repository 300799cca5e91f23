//! The group mapping file: which of the provider's groups make a person a member of which
//! Portcullis group, and which Portcullis groups make an administrator or an auditor.
//!
//! ```toml
//! [groups]
//! "idp-operators" = "Operations"
//! "idp-dba" = "Database administrators"
//!
//! [roles]
//! admin = "Portcullis administrators"
//! auditor = "Auditors"
//! ```

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, bail};
use serde::Deserialize;

use crate::domain::role::Role;

/// The mapping, as read.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mapping {
    /// Provider group (claim value) → Portcullis group name.
    #[serde(default)]
    pub groups: BTreeMap<String, String>,
    #[serde(default)]
    pub roles: Roles,
}

/// The Portcullis groups whose members get a role.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Roles {
    pub admin: Option<String>,
    pub auditor: Option<String>,
}

impl Mapping {
    /// Reads and checks the file; a mistake names the file and what is wrong.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the group map file {}", path.display()))?;
        Self::parse(&text).with_context(|| format!("group map file {}", path.display()))
    }

    /// Parses the file's text.
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        let mapping: Self = toml::from_str(text)?;
        for (claim, group) in &mapping.groups {
            if claim.trim().is_empty() || group.trim().is_empty() {
                bail!("an empty group name in [groups]");
            }
        }
        for group in [&mapping.roles.admin, &mapping.roles.auditor]
            .into_iter()
            .flatten()
        {
            if !mapping.managed().any(|g| g.eq_ignore_ascii_case(group)) {
                bail!("[roles] names \"{group}\", which no provider group maps to in [groups]");
            }
        }
        Ok(mapping)
    }

    /// Every Portcullis group the mapping manages: memberships in these follow the provider.
    pub fn managed(&self) -> impl Iterator<Item = &str> {
        self.groups.values().map(String::as_str)
    }

    /// The Portcullis groups a person with these provider groups belongs to.
    pub fn groups_for(&self, claimed: &[String]) -> Vec<String> {
        let mut groups: Vec<String> = claimed
            .iter()
            .filter_map(|c| self.groups.get(c).cloned())
            .collect();
        groups.sort();
        groups.dedup();
        groups
    }

    /// The role that membership in `groups` gives, or `None` when the mapping names no role
    /// group (then roles are managed in Portcullis only).
    pub fn role_for(&self, groups: &[String]) -> Option<Role> {
        let has = |name: &Option<String>| {
            name.as_ref()
                .is_some_and(|n| groups.iter().any(|g| g.eq_ignore_ascii_case(n)))
        };
        if self.roles.admin.is_none() && self.roles.auditor.is_none() {
            return None;
        }
        Some(if has(&self.roles.admin) {
            Role::Admin
        } else if has(&self.roles.auditor) {
            Role::Auditor
        } else {
            Role::User
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"
[groups]
"idp-ops" = "Operations"
"idp-admins" = "Admins"
[roles]
admin = "Admins"
"#;

    #[test]
    fn provider_groups_map_to_portcullis_groups_and_a_role() {
        let m = Mapping::parse(FILE).unwrap();
        let groups = m.groups_for(&["idp-ops".into(), "unmapped".into()]);
        assert_eq!(groups, vec!["Operations".to_owned()]);
        assert_eq!(m.role_for(&groups), Some(Role::User));
        let groups = m.groups_for(&["idp-admins".into()]);
        assert_eq!(m.role_for(&groups), Some(Role::Admin));
    }

    #[test]
    fn a_role_group_that_nothing_maps_to_is_refused_with_its_name() {
        let err = Mapping::parse("[roles]\nauditor = \"Nobody\"\n").unwrap_err();
        assert!(format!("{err:#}").contains("\"Nobody\""), "{err:#}");
        assert!(Mapping::parse("[group]\n").is_err());
    }
}
