//! What the administrators type, checked once for the web forms, the CSV import and the
//! command line alike. Each check names the field it is about, so a form can show the message
//! beside it. The rules are those of the seed files (`domain::seed`) and the schema's checks.

use uuid::Uuid;

use crate::domain::catalog::{self, LoginMode, Protocol, ResourceKind};
use crate::domain::{names, target_access};

/// Problems found in one submission, by field.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct FieldErrors(Vec<(String, String)>);

impl FieldErrors {
    /// Records a problem; the first one of a field wins.
    pub fn add(&mut self, field: &str, message: impl Into<String>) {
        if self.get(field).is_none() {
            self.0.push((field.to_owned(), message.into()));
        }
    }

    /// The message for `field`.
    pub fn get(&self, field: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(f, _)| f == field)
            .map(|(_, m)| m.as_str())
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Every problem, in the order found.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(f, m)| (f.as_str(), m.as_str()))
    }

    /// `Ok(value)` when nothing was recorded.
    pub fn into_result<T>(self, value: T) -> Result<T, FieldErrors> {
        if self.is_empty() {
            Ok(value)
        } else {
            Err(self)
        }
    }
}

/// A required line of text (a name, a platform, an address): trimmed, 1 to `max`
/// characters, no control, invisible or direction-changing characters (see
/// [`names::hidden_character`]).
pub fn text(errors: &mut FieldErrors, field: &str, label: &str, value: &str, max: usize) -> String {
    let v = value.trim();
    if v.is_empty() {
        errors.add(field, format!("{label} is required."));
    } else if v.chars().count() > max {
        errors.add(field, format!("{label} must be at most {max} characters."));
    } else if let Some(c) = names::hidden_character(v) {
        errors.add(
            field,
            format!("{label} {}.", names::hidden_character_message(c)),
        );
    }
    v.to_owned()
}

/// Free text that may be empty (descriptions): at most `max` characters, and no control
/// characters but tab and line breaks (PostgreSQL cannot store NUL; the others have no use).
pub fn optional_text(
    errors: &mut FieldErrors,
    field: &str,
    label: &str,
    value: &str,
    max: usize,
) -> String {
    let v = value.trim();
    if v.chars().count() > max {
        errors.add(field, format!("{label} must be at most {max} characters."));
    } else if let Some(c) = v
        .chars()
        .find(|c| c.is_control() && !matches!(c, '\t' | '\r' | '\n'))
    {
        errors.add(
            field,
            format!("{label} {}.", names::hidden_character_message(c)),
        );
    }
    v.to_owned()
}

/// A whole number between `min` and `max`.
pub fn int(
    errors: &mut FieldErrors,
    field: &str,
    label: &str,
    value: &str,
    min: i32,
    max: i32,
) -> i32 {
    match value.trim().parse::<i64>() {
        Ok(n) if n >= i64::from(min) && n <= i64::from(max) => i32::try_from(n).unwrap_or(min),
        _ => {
            errors.add(
                field,
                format!("{label} must be a whole number from {min} to {max}."),
            );
            min
        }
    }
}

/// A checkbox: present means on.
pub fn checkbox(value: Option<&str>) -> bool {
    value.is_some_and(|v| !v.is_empty())
}

/// Ids from checkbox values; anything that is not an id is dropped (it cannot name a row).
pub fn ids<'a>(values: impl Iterator<Item = &'a str>) -> Vec<Uuid> {
    let mut out: Vec<Uuid> = Vec::new();
    for v in values {
        if let Ok(id) = Uuid::parse_str(v.trim())
            && !out.contains(&id)
        {
            out.push(id);
        }
    }
    out
}

/// A resource as typed in a form or a CSV line.
#[derive(Debug, Clone, Default)]
pub struct RawResource<'a> {
    pub name: &'a str,
    pub kind: &'a str,
    pub platform: &'a str,
    pub address: &'a str,
    pub port: &'a str,
    pub description: &'a str,
}

/// A valid resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceInput {
    pub name: String,
    pub kind: ResourceKind,
    pub platform: String,
    pub address: String,
    pub port: Option<i32>,
    pub description: String,
}

impl ResourceInput {
    /// Checks every field, reporting all problems.
    pub fn parse(raw: &RawResource<'_>) -> Result<Self, FieldErrors> {
        let mut e = FieldErrors::default();
        let name = text(&mut e, "name", "Name", raw.name, 200);
        let kind = ResourceKind::parse(raw.kind);
        if kind.is_none() {
            e.add("kind", "Kind must be server, database, website or domain.");
        }
        let platform = text(&mut e, "platform", "Platform", raw.platform, 64);
        let address = text(&mut e, "address", "Address", raw.address, 253);
        if e.get("address").is_none()
            && !address.chars().all(|c| {
                c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':' | '[' | ']')
            })
        {
            e.add(
                "address",
                "Address must be a DNS name or an IP address (letters, digits, '.', '-', '_', ':').",
            );
        }
        let port = if raw.port.trim().is_empty() {
            None
        } else {
            Some(int(&mut e, "port", "Port", raw.port, 1, 65535))
        };
        let description =
            optional_text(&mut e, "description", "Description", raw.description, 1000);
        let value = ResourceInput {
            name,
            kind: kind.unwrap_or(ResourceKind::Server),
            platform,
            address,
            port,
            description,
        };
        e.into_result(value)
    }
}

/// An activity as typed in its form.
#[derive(Debug, Clone, Default)]
pub struct RawActivity<'a> {
    pub name: &'a str,
    pub description: &'a str,
    pub platform: &'a str,
    pub protocol: &'a str,
    pub login_mode: &'a str,
    pub login_template: &'a str,
    /// Comma or space separated.
    pub target_groups: &'a str,
    /// The "Allow file transfer" switch.
    pub file_transfer: bool,
    /// The "Lock removes the access on the target" switch.
    pub revoke_on_lock: bool,
}

/// A valid activity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActivityInput {
    pub name: String,
    pub description: String,
    pub platform: String,
    pub protocol: Protocol,
    pub login_mode: LoginMode,
    pub login_template: Option<String>,
    /// Groups the login account joins on the target for the session.
    pub target_groups: Vec<String>,
    /// Whether scp/sftp are allowed through the gateway.
    pub file_transfer: bool,
    /// Whether a Lock removes the access on the target (and the Unlock grants it afresh).
    pub revoke_on_lock: bool,
}

impl ActivityInput {
    pub fn parse(raw: &RawActivity<'_>) -> Result<Self, FieldErrors> {
        let mut e = FieldErrors::default();
        let name = text(&mut e, "name", "Name", raw.name, 200);
        let description =
            optional_text(&mut e, "description", "Description", raw.description, 1000);
        let platform = text(&mut e, "platform", "Platform", raw.platform, 64);
        let protocol = Protocol::parse(raw.protocol);
        if protocol.is_none() {
            e.add("protocol", "Protocol must be SSH, RDP, HTTPS or None.");
        }
        let login_mode = LoginMode::parse(raw.login_mode);
        let mut login_template = None;
        match login_mode {
            None => e.add(
                "login_mode",
                "Choose which login account the activity uses.",
            ),
            Some(mode) => match catalog::check_login_template(mode, Some(raw.login_template)) {
                Ok(t) => login_template = t,
                Err(message) => e.add("login_template", capitalise(&message)),
            },
        }
        let target_groups =
            target_access::parse_target_groups(raw.target_groups).unwrap_or_else(|message| {
                e.add("target_groups", message);
                Vec::new()
            });
        let value = ActivityInput {
            target_groups,
            name,
            description,
            platform,
            protocol: protocol.unwrap_or(Protocol::None),
            login_mode: login_mode.unwrap_or(LoginMode::Own),
            login_template,
            file_transfer: raw.file_transfer,
            revoke_on_lock: raw.revoke_on_lock,
        };
        e.into_result(value)
    }
}

/// A message from the shared rules, as a sentence.
pub fn capitalise(message: &str) -> String {
    let mut chars = message.chars();
    let mut out: String = match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    };
    if !out.ends_with('.') {
        out.push('.');
    }
    out
}

/// A group's name and description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupInput {
    pub name: String,
    pub description: String,
}

impl GroupInput {
    pub fn parse(name: &str, description: &str) -> Result<Self, FieldErrors> {
        let mut e = FieldErrors::default();
        let value = GroupInput {
            name: text(&mut e, "name", "Name", name, 100),
            description: optional_text(&mut e, "description", "Description", description, 1000),
        };
        e.into_result(value)
    }
}

/// Longest email address accepted.
pub const MAX_EMAIL: usize = 254;

/// An optional email address: empty, or something@something without spaces.
pub fn email(errors: &mut FieldErrors, field: &str, value: &str) -> Option<String> {
    let v = value.trim();
    if v.is_empty() {
        return None;
    }
    let ok = v.len() <= MAX_EMAIL
        && v.len() >= 3
        && !v.chars().any(|c| c.is_whitespace() || c.is_control())
        && v.split_once('@')
            .is_some_and(|(local, host)| !local.is_empty() && !host.is_empty());
    if !ok {
        errors.add(
            field,
            "Enter an email address such as name@example.com, or leave it empty.",
        );
    }
    Some(v.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resource<'a>(name: &'a str, kind: &'a str, port: &'a str) -> RawResource<'a> {
        RawResource {
            name,
            kind,
            platform: "Linux",
            address: "db.example",
            port,
            description: "",
        }
    }

    #[test]
    fn a_resource_reports_every_bad_field() {
        let errors = ResourceInput::parse(&resource("", "printer", "70000")).unwrap_err();
        assert_eq!(errors.get("name"), Some("Name is required."));
        assert!(errors.get("kind").is_some());
        assert!(errors.get("port").is_some());
    }

    #[test]
    fn names_refuse_invisible_and_direction_changing_characters() {
        let errors =
            ResourceInput::parse(&resource("lnx-web\u{200B}-01", "server", "")).unwrap_err();
        assert_eq!(
            errors.get("name"),
            Some("Name must not contain invisible or direction-changing characters (U+200B).")
        );
        let errors = GroupInput::parse("ops\u{202E}nimda", "").unwrap_err();
        assert!(errors.get("name").unwrap().contains("U+202E"));
        let errors = GroupInput::parse("ops", "a\0b").unwrap_err();
        assert_eq!(
            errors.get("description"),
            Some("Description must not contain control characters (U+0000).")
        );
        assert!(GroupInput::parse("ops", "line one\r\n\tline two").is_ok());
    }

    #[test]
    fn a_good_resource_is_trimmed_and_typed() {
        let r = ResourceInput::parse(&resource(" db-01 ", "Database", "5432")).unwrap();
        assert_eq!(r.name, "db-01");
        assert_eq!(r.kind, ResourceKind::Database);
        assert_eq!(r.port, Some(5432));
    }

    #[test]
    fn an_activity_with_an_unknown_placeholder_is_refused() {
        let raw = RawActivity {
            name: "Shell",
            platform: "Linux",
            protocol: "ssh",
            login_mode: "ephemeral",
            login_template: "pc-{user}",
            ..RawActivity::default()
        };
        let errors = ActivityInput::parse(&raw).unwrap_err();
        assert!(
            errors
                .get("login_template")
                .unwrap()
                .contains("Unknown placeholder {user}"),
            "{errors:?}"
        );
    }
}
