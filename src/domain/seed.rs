//! Seed files: TOML describing users, groups, resources, activities, connection profiles and
//! access policies. This module parses and validates a whole file (no database); `db::seed`
//! writes a validated one. Errors name the line and the field.

use std::collections::HashSet;

use serde::Deserialize;
use toml::Spanned;

use crate::domain::catalog::{self, LoginMode, Protocol, ResourceKind};
use crate::domain::names::{DisplayName, Username};
use crate::domain::provisioner::ProvisionerKind;
use crate::domain::role::Role;
use crate::domain::target_access;
use crate::domain::tz::TimeZone;

/// One problem in a seed file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeedError {
    /// 1-based line in the file.
    pub line: usize,
    /// Where in the file's structure, e.g. `policies[2].activities`.
    pub field: String,
    pub message: String,
}

impl SeedError {
    /// `file:line: field: message`, as compilers print it.
    pub fn display(&self, file: &str) -> String {
        format!("{file}:{}: {}: {}", self.line, self.field, self.message)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    /// Only a demo file may carry passwords.
    #[serde(default)]
    demo: bool,
    #[serde(default)]
    users: Vec<Spanned<RawUser>>,
    #[serde(default)]
    groups: Vec<Spanned<RawGroup>>,
    #[serde(default)]
    resources: Vec<Spanned<RawResource>>,
    #[serde(default)]
    activities: Vec<Spanned<RawActivity>>,
    #[serde(default)]
    profiles: Vec<Spanned<RawProfile>>,
    #[serde(default)]
    policies: Vec<Spanned<RawPolicy>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUser {
    username: String,
    display_name: Option<String>,
    #[serde(default = "default_role")]
    role: String,
    time_zone: Option<String>,
    email: Option<String>,
    #[serde(default)]
    disabled: bool,
    password: Option<Spanned<String>>,
}

fn default_role() -> String {
    "user".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGroup {
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    members: Vec<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawResource {
    name: String,
    kind: String,
    platform: String,
    address: String,
    port: Option<i64>,
    #[serde(default)]
    description: String,
    /// `simulated` (the default) or another provisioner; with it, `credential` (a service
    /// credential's name: secrets are never in seed files) and `host_key` (linux_ssh),
    /// `credential` and `database` (postgresql), or `command` (command).
    provisioner: Option<String>,
    credential: Option<String>,
    host_key: Option<String>,
    database: Option<String>,
    command: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawActivity {
    name: String,
    #[serde(default)]
    description: String,
    platform: String,
    protocol: String,
    login_account: String,
    login_template: Option<String>,
    /// Groups the login account joins on the target for the session.
    #[serde(default)]
    groups: Vec<String>,
    /// scp/sftp through the gateway (off unless given).
    #[serde(default)]
    file_transfer: bool,
    /// A Lock removes the access on the target (and the Unlock grants it afresh).
    #[serde(default)]
    revoke_on_lock: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProfile {
    name: String,
    #[serde(default)]
    description: String,
    max_duration_minutes: i64,
    #[serde(default)]
    notes_required: bool,
    #[serde(default)]
    ticket_required: bool,
    ticket_pattern: Option<String>,
    #[serde(default = "default_horizon")]
    schedule_horizon_days: i64,
    #[serde(default)]
    allow_self_approval: bool,
    #[serde(default = "default_timeout")]
    decision_timeout_minutes: i64,
    #[serde(default)]
    extension_allowed: bool,
    #[serde(default = "default_extension_minutes")]
    extension_minutes: i64,
    #[serde(default)]
    max_extensions: i64,
    /// Recordings keep what the user types too.
    #[serde(default)]
    record_input: bool,
    #[serde(default)]
    tiers: Vec<Spanned<RawTier>>,
    /// Ticket validation: the validator's address, timeout and "block" or "warn".
    ticket_validator_url: Option<String>,
    #[serde(default = "default_validator_timeout")]
    ticket_validator_timeout_seconds: i64,
    #[serde(default = "default_validator_on_failure")]
    ticket_validator_on_failure: String,
}

fn default_validator_timeout() -> i64 {
    5
}
fn default_validator_on_failure() -> String {
    "block".into()
}

fn default_horizon() -> i64 {
    30
}
fn default_timeout() -> i64 {
    1440
}
fn default_extension_minutes() -> i64 {
    30
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTier {
    approvals_required: i64,
    #[serde(default)]
    users: Vec<Spanned<String>>,
    #[serde(default)]
    groups: Vec<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    name: String,
    #[serde(default)]
    description: String,
    profile: Spanned<String>,
    #[serde(default = "default_true")]
    enabled: bool,
    #[serde(default)]
    users: Vec<Spanned<String>>,
    #[serde(default)]
    groups: Vec<Spanned<String>>,
    #[serde(default)]
    activities: Vec<Spanned<String>>,
    #[serde(default)]
    resources: Vec<Spanned<String>>,
}

fn default_true() -> bool {
    true
}

/// A name that refers to something in the file or already in the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ref {
    pub name: String,
    pub line: usize,
    pub field: String,
}

/// A validated user.
#[derive(Debug)]
pub struct SeedUser {
    pub line: usize,
    pub username: Username,
    pub display_name: DisplayName,
    pub role: Role,
    pub time_zone: String,
    pub email: Option<String>,
    pub disabled: bool,
    /// Set only in demo files; applied when the account is created, never to an existing one.
    pub password: Option<String>,
}

#[derive(Debug)]
pub struct SeedGroup {
    pub line: usize,
    pub name: String,
    pub description: String,
    pub members: Vec<Ref>,
}

#[derive(Debug)]
pub struct SeedResource {
    pub line: usize,
    pub name: String,
    pub kind: ResourceKind,
    pub platform: String,
    pub address: String,
    pub port: Option<i32>,
    pub description: String,
    /// How access is granted; `None`: as it is (simulated for a new resource).
    pub access: Option<SeedAccess>,
}

/// A resource's provisioner as a seed file gives it; the credential is resolved by name.
#[derive(Debug)]
pub struct SeedAccess {
    pub provisioner: ProvisionerKind,
    pub credential: Option<Ref>,
    pub host_key: Option<String>,
    pub database_name: Option<String>,
    pub command: Option<String>,
}

#[derive(Debug)]
pub struct SeedActivity {
    pub line: usize,
    pub name: String,
    pub description: String,
    pub platform: String,
    pub protocol: Protocol,
    pub login_mode: LoginMode,
    pub login_template: Option<String>,
    pub target_groups: Vec<String>,
    pub file_transfer: bool,
    pub revoke_on_lock: bool,
}

#[derive(Debug)]
pub struct SeedTier {
    pub line: usize,
    pub position: i16,
    pub approvals_required: i32,
    pub users: Vec<Ref>,
    pub groups: Vec<Ref>,
}

#[derive(Debug)]
pub struct SeedProfile {
    pub line: usize,
    pub name: String,
    pub description: String,
    pub max_duration_minutes: i32,
    pub notes_required: bool,
    pub ticket_required: bool,
    pub ticket_pattern: Option<String>,
    pub schedule_horizon_days: i32,
    pub allow_self_approval: bool,
    pub decision_timeout_minutes: i32,
    pub extension_allowed: bool,
    pub extension_minutes: i32,
    pub max_extensions: i32,
    pub record_input: bool,
    pub tiers: Vec<SeedTier>,
    pub ticket_validator_url: Option<String>,
    pub ticket_validator_timeout_seconds: i32,
    pub ticket_validator_on_failure: String,
}

#[derive(Debug)]
pub struct SeedPolicy {
    pub line: usize,
    pub name: String,
    pub description: String,
    pub profile: Ref,
    pub enabled: bool,
    pub users: Vec<Ref>,
    pub groups: Vec<Ref>,
    pub activities: Vec<Ref>,
    pub resources: Vec<Ref>,
}

/// A seed file that passed every check that needs no database.
#[derive(Debug)]
pub struct Seed {
    pub users: Vec<SeedUser>,
    pub groups: Vec<SeedGroup>,
    pub resources: Vec<SeedResource>,
    pub activities: Vec<SeedActivity>,
    pub profiles: Vec<SeedProfile>,
    pub policies: Vec<SeedPolicy>,
}

/// Byte offsets to 1-based line numbers.
struct Lines(Vec<usize>);

impl Lines {
    fn new(text: &str) -> Self {
        Self(text.match_indices('\n').map(|(i, _)| i).collect())
    }
    fn of(&self, offset: usize) -> usize {
        self.0.partition_point(|&nl| nl < offset) + 1
    }
}

/// Collects the errors of one file.
struct Check<'a> {
    lines: &'a Lines,
    errors: Vec<SeedError>,
}

impl Check<'_> {
    fn err(&mut self, line: usize, field: impl Into<String>, message: impl Into<String>) {
        self.errors.push(SeedError {
            line,
            field: field.into(),
            message: message.into(),
        });
    }

    fn text(&mut self, line: usize, field: &str, value: &str, max: usize) -> String {
        let v = value.trim();
        if v.is_empty() {
            self.err(line, field, "must not be empty");
        } else if v.chars().count() > max {
            self.err(line, field, format!("must be at most {max} characters"));
        } else if let Some(c) = crate::domain::names::hidden_character(v) {
            self.err(
                line,
                field,
                crate::domain::names::hidden_character_message(c),
            );
        }
        v.to_owned()
    }

    fn optional_text(&mut self, line: usize, field: &str, value: &str, max: usize) -> String {
        if value.chars().count() > max {
            self.err(line, field, format!("must be at most {max} characters"));
        } else if let Some(c) = value
            .chars()
            .find(|c| c.is_control() && !matches!(c, '\t' | '\r' | '\n'))
        {
            self.err(
                line,
                field,
                crate::domain::names::hidden_character_message(c),
            );
        }
        value.trim().to_owned()
    }

    fn int(&mut self, line: usize, field: &str, value: i64, min: i64, max: i64) -> i32 {
        if value < min || value > max {
            self.err(line, field, format!("must be between {min} and {max}"));
        }
        i32::try_from(value.clamp(min, max)).unwrap_or_default()
    }

    fn refs(&self, list: &[Spanned<String>], field: &str) -> Vec<Ref> {
        list.iter()
            .map(|s| Ref {
                name: s.get_ref().trim().to_owned(),
                line: self.lines.of(s.span().start),
                field: field.to_owned(),
            })
            .collect()
    }

    /// Refuses a second entry with the same name in any letter case.
    fn unique(&mut self, seen: &mut HashSet<String>, line: usize, field: &str, name: &str) {
        if !seen.insert(name.to_lowercase()) {
            self.err(
                line,
                field,
                format!("\"{name}\" appears more than once in this file"),
            );
        }
    }
}

/// Parses and validates a seed file. Every error is reported, not just the first.
pub fn parse(text: &str) -> Result<Seed, Vec<SeedError>> {
    let lines = Lines::new(text);
    let raw: RawFile = match toml::from_str(text) {
        Ok(raw) => raw,
        Err(e) => {
            let line = e.span().map(|s| lines.of(s.start)).unwrap_or(1);
            return Err(vec![SeedError {
                line,
                field: "file".into(),
                message: e.message().to_owned(),
            }]);
        }
    };
    let mut c = Check {
        lines: &lines,
        errors: Vec::new(),
    };
    let seed = Seed {
        users: users(&mut c, &raw),
        groups: groups(&mut c, &raw),
        resources: resources(&mut c, &raw),
        activities: activities(&mut c, &raw),
        profiles: profiles(&mut c, &raw),
        policies: policies(&mut c, &raw),
    };
    if c.errors.is_empty() {
        Ok(seed)
    } else {
        c.errors.sort_by_key(|e| e.line);
        Err(c.errors)
    }
}

fn users(c: &mut Check, raw: &RawFile) -> Vec<SeedUser> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for (i, entry) in raw.users.iter().enumerate() {
        let line = c.lines.of(entry.span().start);
        let u = entry.get_ref();
        let f = |name: &str| format!("users[{i}].{name}");
        let username = match Username::parse(&u.username) {
            Ok(n) => n,
            Err(e) => {
                c.err(line, f("username"), e.to_string());
                continue;
            }
        };
        c.unique(&mut seen, line, &f("username"), username.as_str());
        let display_name =
            match DisplayName::parse(u.display_name.as_deref().unwrap_or(username.as_str())) {
                Ok(d) => d,
                Err(e) => {
                    c.err(line, f("display_name"), e.to_string());
                    continue;
                }
            };
        let Some(role) = Role::parse(&u.role) else {
            c.err(line, f("role"), "must be user, admin or auditor");
            continue;
        };
        let time_zone = match TimeZone::parse(u.time_zone.as_deref().unwrap_or("UTC")) {
            Ok(tz) => tz.name().to_owned(),
            Err(e) => {
                c.err(line, f("time_zone"), e.to_string());
                continue;
            }
        };
        let email = u.email.as_deref().map(str::trim).filter(|e| !e.is_empty());
        if let Some(e) = email
            && (!e.contains('@') || e.len() > 254 || e.chars().any(char::is_whitespace))
        {
            c.err(line, f("email"), "is not an email address");
        }
        let password = match &u.password {
            Some(p) if !raw.demo => {
                c.err(
                    c.lines.of(p.span().start),
                    f("password"),
                    "passwords are only allowed in a demo seed file (demo = true); set them with `portcullis user reset-password` or the admin pages",
                );
                None
            }
            Some(p) if p.get_ref().is_empty() => {
                c.err(
                    c.lines.of(p.span().start),
                    f("password"),
                    "must not be empty",
                );
                None
            }
            Some(p) => Some(p.get_ref().clone()),
            None => None,
        };
        out.push(SeedUser {
            line,
            username,
            display_name,
            role,
            time_zone,
            email: email.map(str::to_owned),
            disabled: u.disabled,
            password,
        });
    }
    out
}

fn groups(c: &mut Check, raw: &RawFile) -> Vec<SeedGroup> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for (i, entry) in raw.groups.iter().enumerate() {
        let line = c.lines.of(entry.span().start);
        let g = entry.get_ref();
        let name = c.text(line, &format!("groups[{i}].name"), &g.name, 100);
        c.unique(&mut seen, line, &format!("groups[{i}].name"), &name);
        out.push(SeedGroup {
            line,
            description: c.optional_text(
                line,
                &format!("groups[{i}].description"),
                &g.description,
                1000,
            ),
            members: c.refs(&g.members, &format!("groups[{i}].members")),
            name,
        });
    }
    out
}

fn resources(c: &mut Check, raw: &RawFile) -> Vec<SeedResource> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for (i, entry) in raw.resources.iter().enumerate() {
        let line = c.lines.of(entry.span().start);
        let r = entry.get_ref();
        let f = |name: &str| format!("resources[{i}].{name}");
        let name = c.text(line, &f("name"), &r.name, 200);
        c.unique(&mut seen, line, &f("name"), &name);
        let Some(kind) = ResourceKind::parse(&r.kind) else {
            c.err(
                line,
                f("kind"),
                "must be server, database, website or domain",
            );
            continue;
        };
        let port = r.port.map(|p| c.int(line, &f("port"), p, 1, 65535));
        let access = seed_access(c, line, &f, r);
        out.push(SeedResource {
            access,
            line,
            name,
            kind,
            platform: c.text(line, &f("platform"), &r.platform, 64),
            address: c.text(line, &f("address"), &r.address, 253),
            port,
            description: c.optional_text(line, &f("description"), &r.description, 1000),
        });
    }
    out
}

/// A resource's provisioner and what it uses, checked; `None` when not given. Each field
/// belongs to the provisioners that use it, and one given to another is refused rather than
/// dropped (the file says something that would not happen).
fn seed_access(
    c: &mut Check,
    line: usize,
    f: &dyn Fn(&str) -> String,
    r: &RawResource,
) -> Option<SeedAccess> {
    let Some(key) = &r.provisioner else {
        if r.credential.is_some()
            || r.host_key.is_some()
            || r.database.is_some()
            || r.command.is_some()
        {
            c.err(
                line,
                f("provisioner"),
                "give the provisioner with its credential, host key, database or command",
            );
        }
        return None;
    };
    let Some(provisioner) = ProvisionerKind::parse(key.trim()) else {
        let known: Vec<&str> = ProvisionerKind::ALL.iter().map(|k| k.key()).collect();
        c.err(
            line,
            f("provisioner"),
            format!("must be one of {}", known.join(", ")),
        );
        return None;
    };
    use ProvisionerKind::{Command, LinuxSsh, Postgresql};
    let fields: [(&str, bool, &[ProvisionerKind]); 4] = [
        (
            "credential",
            r.credential.is_some(),
            &[LinuxSsh, Postgresql],
        ),
        ("host_key", r.host_key.is_some(), &[LinuxSsh]),
        ("database", r.database.is_some(), &[Postgresql]),
        ("command", r.command.is_some(), &[Command]),
    ];
    for (field, given, used_by) in fields {
        let needed = field != "database" && used_by.contains(&provisioner);
        if given && !used_by.contains(&provisioner) {
            let keys: Vec<&str> = used_by.iter().map(|k| k.key()).collect();
            c.err(
                line,
                f(field),
                format!("is used by the {} provisioner only", keys.join(" and ")),
            );
        } else if needed && !given {
            let what = match field {
                "credential" => {
                    "a service credential's name is required for this provisioner (create it on Admin > Service credentials)"
                }
                "host_key" => "the target's host key is required for this provisioner",
                _ => {
                    "the name of a command from the provisioners file is required for this provisioner"
                }
            };
            c.err(line, f(field), what);
        }
    }
    let host_key = match r.host_key.as_deref().map(target_access::parse_host_key) {
        Some(Ok(key)) => Some(key),
        Some(Err(message)) => {
            c.err(line, f("host_key"), message);
            None
        }
        None => None,
    };
    let database_name = r.database.as_deref().map(str::trim).and_then(|name| {
        let ok = target_access::valid_database_name(name);
        if !ok {
            c.err(line, f("database"), "a database name starts with a letter or _ and holds letters, digits, _, $ or - (at most 63)");
        }
        ok.then(|| name.to_owned())
    });
    let command = r.command.as_deref().map(str::trim).and_then(|name| {
        let ok = crate::domain::provisioner::valid_command_name(name);
        if !ok {
            c.err(line, f("command"), "a command name is lower-case letters, digits, _ and - (at most 64), as in the provisioners file");
        }
        ok.then(|| name.to_owned())
    });
    let credential = r.credential.as_ref().map(|name| Ref {
        name: name.trim().to_owned(),
        line,
        field: f("credential"),
    });
    Some(SeedAccess {
        provisioner,
        credential,
        host_key,
        database_name,
        command,
    })
}

fn activities(c: &mut Check, raw: &RawFile) -> Vec<SeedActivity> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for (i, entry) in raw.activities.iter().enumerate() {
        let line = c.lines.of(entry.span().start);
        let a = entry.get_ref();
        let f = |name: &str| format!("activities[{i}].{name}");
        let name = c.text(line, &f("name"), &a.name, 200);
        c.unique(&mut seen, line, &f("name"), &name);
        let Some(protocol) = Protocol::parse(&a.protocol) else {
            c.err(line, f("protocol"), "must be ssh, rdp, https or none");
            continue;
        };
        let Some(login_mode) = LoginMode::parse(&a.login_account) else {
            c.err(
                line,
                f("login_account"),
                "must be own, ephemeral or managed",
            );
            continue;
        };
        let login_template =
            match catalog::check_login_template(login_mode, a.login_template.as_deref()) {
                Ok(t) => t,
                Err(e) => {
                    c.err(line, f("login_template"), e);
                    None
                }
            };
        let target_groups = match target_access::parse_target_groups(&a.groups.join(",")) {
            Ok(groups) => groups,
            Err(message) => {
                c.err(line, f("groups"), message);
                Vec::new()
            }
        };
        out.push(SeedActivity {
            target_groups,
            line,
            name,
            description: c.optional_text(line, &f("description"), &a.description, 1000),
            platform: c.text(line, &f("platform"), &a.platform, 64),
            protocol,
            login_mode,
            login_template,
            file_transfer: a.file_transfer,
            revoke_on_lock: a.revoke_on_lock,
        });
    }
    out
}

fn profiles(c: &mut Check, raw: &RawFile) -> Vec<SeedProfile> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for (i, entry) in raw.profiles.iter().enumerate() {
        let line = c.lines.of(entry.span().start);
        let p = entry.get_ref();
        let f = |name: &str| format!("profiles[{i}].{name}");
        let name = c.text(line, &f("name"), &p.name, 100);
        c.unique(&mut seen, line, &f("name"), &name);
        let ticket_pattern = p
            .ticket_pattern
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty());
        if let Some(pattern) = ticket_pattern
            && let Err(e) = catalog::compile_ticket_pattern(pattern)
        {
            c.err(line, f("ticket_pattern"), e);
        }
        let ticket_validator_url = match p.ticket_validator_url.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(url) => match crate::domain::webhook::check_url(url) {
                Ok(url) => Some(url),
                Err(e) => {
                    c.err(line, f("ticket_validator_url"), e);
                    None
                }
            },
        };
        let ticket_validator_on_failure =
            match crate::domain::ticket_check::OnFailure::parse(&p.ticket_validator_on_failure) {
                Some(o) => o.key().to_owned(),
                None => {
                    c.err(
                        line,
                        f("ticket_validator_on_failure"),
                        "must be \"block\" or \"warn\"",
                    );
                    "block".to_owned()
                }
            };
        if p.tiers.len() > 3 {
            c.err(line, f("tiers"), "at most three approval tiers");
        }
        let mut tiers = Vec::new();
        for (t, tier) in p.tiers.iter().enumerate().take(3) {
            let tline = c.lines.of(tier.span().start);
            let raw_tier = tier.get_ref();
            let tf = |name: &str| format!("profiles[{i}].tiers[{t}].{name}");
            let users = c.refs(&raw_tier.users, &tf("users"));
            let groups = c.refs(&raw_tier.groups, &tf("groups"));
            if users.is_empty() && groups.is_empty() {
                c.err(
                    tline,
                    tf("users"),
                    "a tier needs at least one approver (users or groups)",
                );
            }
            tiers.push(SeedTier {
                line: tline,
                position: i16::try_from(t + 1).unwrap_or(3),
                approvals_required: c.int(
                    tline,
                    &tf("approvals_required"),
                    raw_tier.approvals_required,
                    1,
                    100,
                ),
                users,
                groups,
            });
        }
        out.push(SeedProfile {
            line,
            description: c.optional_text(line, &f("description"), &p.description, 1000),
            max_duration_minutes: c.int(
                line,
                &f("max_duration_minutes"),
                p.max_duration_minutes,
                5,
                10080,
            ),
            notes_required: p.notes_required,
            ticket_required: p.ticket_required,
            ticket_pattern: ticket_pattern.map(str::to_owned),
            schedule_horizon_days: c.int(
                line,
                &f("schedule_horizon_days"),
                p.schedule_horizon_days,
                0,
                365,
            ),
            allow_self_approval: p.allow_self_approval,
            decision_timeout_minutes: c.int(
                line,
                &f("decision_timeout_minutes"),
                p.decision_timeout_minutes,
                1,
                43200,
            ),
            extension_allowed: p.extension_allowed,
            extension_minutes: c.int(line, &f("extension_minutes"), p.extension_minutes, 1, 1440),
            max_extensions: c.int(line, &f("max_extensions"), p.max_extensions, 0, 100),
            record_input: p.record_input,
            tiers,
            ticket_validator_timeout_seconds: c.int(
                line,
                &f("ticket_validator_timeout_seconds"),
                p.ticket_validator_timeout_seconds,
                1,
                30,
            ),
            ticket_validator_url,
            ticket_validator_on_failure,
            name,
        });
    }
    out
}

fn policies(c: &mut Check, raw: &RawFile) -> Vec<SeedPolicy> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for (i, entry) in raw.policies.iter().enumerate() {
        let line = c.lines.of(entry.span().start);
        let p = entry.get_ref();
        let f = |name: &str| format!("policies[{i}].{name}");
        let name = c.text(line, &f("name"), &p.name, 100);
        c.unique(&mut seen, line, &f("name"), &name);
        out.push(SeedPolicy {
            line,
            description: c.optional_text(line, &f("description"), &p.description, 1000),
            profile: Ref {
                name: p.profile.get_ref().trim().to_owned(),
                line: c.lines.of(p.profile.span().start),
                field: f("profile"),
            },
            enabled: p.enabled,
            users: c.refs(&p.users, &f("users")),
            groups: c.refs(&p.groups, &f("groups")),
            activities: c.refs(&p.activities, &f("activities")),
            resources: c.refs(&p.resources, &f("resources")),
            name,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_type_error_names_its_line() {
        let errors = parse("[[resources]]\nname = \"a\"\nkind = \"server\"\nplatform = \"Linux\"\naddress = \"a\"\nport = \"ssh\"\n").unwrap_err();
        assert_eq!(errors[0].line, 6, "{errors:?}");
    }

    #[test]
    fn every_semantic_error_is_reported_with_line_and_field() {
        let text = r#"
[[users]]
username = "alice"
password = "x"

[[activities]]
name = "Shell"
platform = "Linux"
protocol = "telnet"
login_account = "own"

[[profiles]]
name = "P"
max_duration_minutes = 60
ticket_pattern = "^(CHG"
"#;
        let errors = parse(text).unwrap_err();
        let got: Vec<(usize, &str)> = errors.iter().map(|e| (e.line, e.field.as_str())).collect();
        assert_eq!(
            got,
            [
                (4, "users[0].password"),
                (6, "activities[0].protocol"),
                (12, "profiles[0].ticket_pattern")
            ]
        );
    }

    #[test]
    fn hidden_characters_and_odd_login_templates_are_refused_with_their_line() {
        let text = "[[groups]]\nname = \"Ops\\u200B\"\n\n[[activities]]\nname = \"Shell\"\n\
                    platform = \"Linux\"\nprotocol = \"ssh\"\nlogin_account = \"ephemeral\"\n\
                    login_template = \"PC-{username}\"\n";
        let errors = parse(text).unwrap_err();
        let got: Vec<(usize, &str)> = errors.iter().map(|e| (e.line, e.field.as_str())).collect();
        assert_eq!(
            got,
            [(1, "groups[0].name"), (4, "activities[0].login_template")]
        );
        assert_eq!(
            errors[0].message,
            "must not contain invisible or direction-changing characters (U+200B)"
        );
    }

    #[test]
    fn names_are_unique_regardless_of_case() {
        let text = "[[groups]]\nname = \"Ops\"\n[[groups]]\nname = \"OPS\"\n";
        let errors = parse(text).unwrap_err();
        assert_eq!(errors[0].line, 3);
        assert!(errors[0].message.contains("more than once"));
    }

    #[test]
    fn unknown_keys_are_refused() {
        let errors = parse("[[groups]]\nname = \"Ops\"\ncolour = \"red\"\n").unwrap_err();
        assert!(errors[0].message.contains("unknown field"), "{errors:?}");
    }
}
