//! The catalogue's vocabularies: resource kinds, protocols, login account modes, and the
//! rules for login account templates and ticket patterns.

use serde::{Deserialize, Serialize};

use crate::domain::provision;

/// What a resource is, mirrored by the PostgreSQL enum `resource_kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, sqlx::Type)]
#[sqlx(type_name = "resource_kind", rename_all = "lowercase")]
#[serde(rename_all = "lowercase")]
pub enum ResourceKind {
    Server,
    Database,
    Website,
    Domain,
}

impl ResourceKind {
    pub const ALL: [ResourceKind; 4] = [Self::Server, Self::Database, Self::Website, Self::Domain];

    pub fn label(self) -> &'static str {
        match self {
            Self::Server => "Server",
            Self::Database => "Database",
            Self::Website => "Website",
            Self::Domain => "Domain",
        }
    }

    pub fn key(self) -> &'static str {
        match self {
            Self::Server => "server",
            Self::Database => "database",
            Self::Website => "website",
            Self::Domain => "domain",
        }
    }

    /// Parses the stored spelling, in any letter case.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|k| k.key().eq_ignore_ascii_case(s.trim()))
    }
}

/// How the requester connects, mirrored by the PostgreSQL enum `protocol`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, sqlx::Type)]
#[sqlx(type_name = "protocol", rename_all = "lowercase")]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Ssh,
    Rdp,
    Https,
    None,
}

impl Protocol {
    pub const ALL: [Protocol; 4] = [Self::Ssh, Self::Rdp, Self::Https, Self::None];

    pub fn label(self) -> &'static str {
        match self {
            Self::Ssh => "SSH",
            Self::Rdp => "RDP",
            Self::Https => "HTTPS",
            Self::None => "None",
        }
    }

    pub fn key(self) -> &'static str {
        match self {
            Self::Ssh => "ssh",
            Self::Rdp => "rdp",
            Self::Https => "https",
            Self::None => "none",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|p| p.key().eq_ignore_ascii_case(s.trim()))
    }
}

/// Which login account a session uses, mirrored by the PostgreSQL enum `login_account_mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, sqlx::Type)]
#[sqlx(type_name = "login_account_mode", rename_all = "lowercase")]
#[serde(rename_all = "lowercase")]
pub enum LoginMode {
    /// The requester's own account name.
    Own,
    /// An account made for this session from a template, with a generated password.
    Ephemeral,
    /// A shared account whose password is replaced for each session.
    Managed,
}

impl LoginMode {
    pub const ALL: [LoginMode; 3] = [Self::Own, Self::Ephemeral, Self::Managed];

    pub fn label(self) -> &'static str {
        match self {
            Self::Own => "Own account",
            Self::Ephemeral => "Ephemeral account",
            Self::Managed => "Managed account",
        }
    }

    pub fn key(self) -> &'static str {
        match self {
            Self::Own => "own",
            Self::Ephemeral => "ephemeral",
            Self::Managed => "managed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|m| m.key().eq_ignore_ascii_case(s.trim()))
    }

    /// Whether sessions of this mode get a generated password.
    pub fn has_password(self) -> bool {
        !matches!(self, Self::Own)
    }
}

/// The placeholders an ephemeral account template may use.
pub const TEMPLATE_PLACEHOLDERS: [&str; 3] = ["{username}", "{session}", "{resource}"];

/// Checks the login template for a mode: none for `own`; for `ephemeral` a name template
/// using only the known placeholders; for `managed` a plain account name.
pub fn check_login_template(
    mode: LoginMode,
    template: Option<&str>,
) -> Result<Option<String>, String> {
    let template = template.map(str::trim).filter(|t| !t.is_empty());
    match (mode, template) {
        (LoginMode::Own, None) => Ok(None),
        (LoginMode::Own, Some(_)) => Err(
            "an activity using the requester's own account takes no login account template".into(),
        ),
        (_, None) => {
            Err("a login account template is required for ephemeral and managed accounts".into())
        }
        (_, Some(t)) if t.chars().count() > 128 => {
            Err("the login account template is at most 128 characters".into())
        }
        (_, Some(t)) if t.chars().any(|c| c.is_whitespace() || c.is_control()) => {
            Err("the login account template cannot contain spaces".into())
        }
        (LoginMode::Managed, Some(t)) if t.contains(['{', '}']) => Err(
            "a managed account is a fixed account name; placeholders are for ephemeral accounts"
                .into(),
        ),
        (LoginMode::Managed, Some(t)) => match provision::managed_account_problem(t) {
            Some(problem) => Err(format!("the managed account name {problem}")),
            None => Ok(Some(t.to_owned())),
        },
        (LoginMode::Ephemeral, Some(t)) => {
            let mut rest = t;
            while let Some(open) = rest.find('{') {
                let after = &rest[open..];
                let Some(close) = after.find('}') else {
                    return Err("the login account template has a '{' without a '}'".into());
                };
                let placeholder = &after[..=close];
                if !TEMPLATE_PLACEHOLDERS.contains(&placeholder) {
                    return Err(format!(
                        "unknown placeholder {placeholder} in the login account template (known: {})",
                        TEMPLATE_PLACEHOLDERS.join(", ")
                    ));
                }
                rest = &after[close + 1..];
            }
            if rest.contains('}') {
                return Err("the login account template has a '}' without a '{'".into());
            }
            check_template_characters(t)?;
            Ok(Some(t.to_owned()))
        }
    }
}

/// The rules of `provision::account_name_problem` applied to a template before it is ever
/// filled in: its own characters, its first character, and the shortest name it can make.
fn check_template_characters(template: &str) -> Result<(), String> {
    let mut literal = template.to_owned();
    for p in TEMPLATE_PLACEHOLDERS {
        literal = literal.replace(p, "");
    }
    if !literal
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '.' | '-'))
    {
        return Err(format!(
            "the login account template may only hold lowercase letters, digits, '_', '.', '-' and the placeholders {}",
            TEMPLATE_PLACEHOLDERS.join(", ")
        ));
    }
    // A sign-in name starts with a letter or digit and is lowercased; a session's short id
    // and a resource's name may start with a digit or '-'.
    let starts_well = template.starts_with("{username}")
        || template
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c == '_');
    if !starts_well {
        return Err(
            "the login account template must start with a lowercase letter, '_' or {username}"
                .into(),
        );
    }
    // Shortest filling: one character for a user or resource name, eight for a session.
    let shortest = template
        .replace("{session}", "00000000")
        .replace("{username}", "a")
        .replace("{resource}", "a");
    let n = shortest.chars().count();
    if n > provision::MAX_ACCOUNT_NAME {
        return Err(format!(
            "the login account template makes names of at least {n} characters; account names are at most {}",
            provision::MAX_ACCOUNT_NAME
        ));
    }
    Ok(())
}

/// Compiles a ticket number pattern. The `regex` crate runs in linear time, so no pattern an
/// administrator writes can stall the server on a requester's input.
pub fn compile_ticket_pattern(pattern: &str) -> Result<regex::Regex, String> {
    if pattern.chars().count() > 200 {
        return Err("the ticket pattern is at most 200 characters".into());
    }
    regex::RegexBuilder::new(pattern)
        .size_limit(1 << 20)
        .build()
        .map_err(|e| format!("the ticket pattern does not compile: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ephemeral_templates_accept_only_known_placeholders() {
        assert_eq!(
            check_login_template(LoginMode::Ephemeral, Some("pc-{username}-{session}")),
            Ok(Some("pc-{username}-{session}".into()))
        );
        let err = check_login_template(LoginMode::Ephemeral, Some("pc-{user}")).unwrap_err();
        assert!(err.contains("unknown placeholder {user}"), "{err}");
        assert!(check_login_template(LoginMode::Ephemeral, Some("pc-{username")).is_err());
        assert!(check_login_template(LoginMode::Ephemeral, None).is_err());
    }

    #[test]
    fn ephemeral_templates_make_only_names_a_target_accepts() {
        for good in [
            "pc-{username}-{session}",
            "pc_{username}_{session}",
            "{username}.jit",
        ] {
            assert!(
                check_login_template(LoginMode::Ephemeral, Some(good)).is_ok(),
                "{good}"
            );
        }
        for (bad, why) in [
            ("PC-{username}", "may only hold"),
            ("pc;{username}", "may only hold"),
            ("pc\u{0430}-{username}", "may only hold"),
            ("{session}-{username}", "must start with"),
            ("-{username}", "must start with"),
            ("pc-{session}-{session}-{session}-{session}", "at least 38"),
            ("pc-very-long-prefix-for-x-{session}", "at least 34"),
        ] {
            let err = check_login_template(LoginMode::Ephemeral, Some(bad)).unwrap_err();
            assert!(err.contains(why), "{bad}: {err}");
        }
    }

    #[test]
    fn own_accounts_take_no_template_and_managed_ones_a_plain_name() {
        assert_eq!(check_login_template(LoginMode::Own, None), Ok(None));
        assert!(check_login_template(LoginMode::Own, Some("x")).is_err());
        assert_eq!(
            check_login_template(LoginMode::Managed, Some("svc_dba")),
            Ok(Some("svc_dba".into()))
        );
        assert!(check_login_template(LoginMode::Managed, Some("svc-{username}")).is_err());
        assert!(check_login_template(LoginMode::Managed, Some("CORP\\svc-domain-admin")).is_ok());
        let err = check_login_template(LoginMode::Managed, Some("Svc$")).unwrap_err();
        assert!(err.starts_with("the managed account name "), "{err}");
    }

    #[test]
    fn ticket_patterns_that_do_not_compile_are_refused() {
        assert!(compile_ticket_pattern("^CHG[0-9]{6}$").is_ok());
        assert!(compile_ticket_pattern("^(CHG").is_err());
    }
}
