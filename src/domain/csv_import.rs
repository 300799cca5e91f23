//! Resources imported from CSV (columns name, kind, platform, address, port, description,
//! and optionally how access is granted: provisioner, credential, host_key, database,
//! command): reading the file, checking every line with the rules of the resource form, and
//! the plan of what applying it would create, update or refuse, line by line. Used by the web
//! import and `portcullis import resources`, so both say the same things.

use std::collections::HashMap;

use uuid::Uuid;

use crate::domain::admin_input::{RawResource, ResourceInput};
use crate::domain::names::look_alike_key;
use crate::domain::provisioner::ProvisionerKind;
use crate::domain::target_access::{
    AccessInput, CredentialKind, credential_mismatch, parse_host_key, valid_database_name,
};

/// The columns a file may have; `port` and `description` may be left out, and so may the
/// access columns (from `provisioner` on: without them, how access to a stored resource is
/// granted stays as it is, and a new one is simulated).
pub const COLUMNS: [&str; 11] = [
    "name",
    "kind",
    "platform",
    "address",
    "port",
    "description",
    "provisioner",
    "credential",
    "host_key",
    "database",
    "command",
];
const REQUIRED: [&str; 4] = ["name", "kind", "platform", "address"];
/// The columns that describe how access is granted; all but `provisioner` need it.
const ACCESS_COLUMNS: [&str; 4] = ["credential", "host_key", "database", "command"];

/// Largest file accepted (the web route's body limit is a little above this).
pub const MAX_BYTES: usize = 2 * 1024 * 1024;
/// Most lines accepted in one file.
pub const MAX_ROWS: usize = 20_000;

/// Why a whole file was refused before any line was looked at.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FileError {
    #[error("The file is empty.")]
    Empty,
    #[error("The file is larger than 2 MiB. Split it into smaller files.")]
    TooLarge,
    #[error("This is not a CSV file: it contains binary data.")]
    Binary,
    #[error("The file is not UTF-8 text. Save it as \"CSV UTF-8\" and try again.")]
    NotUtf8,
    #[error("Line 1: {0}")]
    Header(String),
    #[error("The file has more than {MAX_ROWS} lines. Split it into smaller files.")]
    TooManyRows,
    #[error("Line {line}: {message}")]
    Malformed { line: usize, message: String },
}

/// One line of the file, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsvLine {
    /// 1-based line in the file.
    pub line: usize,
    /// The name as written, for the preview even when the line is refused.
    pub name: String,
    pub parsed: Result<CsvResource, String>,
}

/// A line's resource, and how access to it is granted when the file has a `provisioner`
/// column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsvResource {
    pub resource: ResourceInput,
    pub access: Option<CsvAccess>,
}

/// How access is granted, as a line gives it: the credential still by name (the plan finds
/// it among the stored ones).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsvAccess {
    pub provisioner: ProvisionerKind,
    pub credential: Option<String>,
    pub host_key: Option<String>,
    pub database_name: Option<String>,
    pub command: Option<String>,
}

/// A stored service credential, as the plan looks it up (by lower-case name).
#[derive(Debug, Clone, Copy)]
pub struct KnownCredential {
    pub id: Uuid,
    pub kind: CredentialKind,
}

/// A resource to create or update, and how access to it is granted (None: as it is).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportRow {
    pub resource: ResourceInput,
    pub access: Option<AccessInput>,
}

/// Reads and checks a file. Lines with problems are kept, with the reason.
pub fn parse(bytes: &[u8]) -> Result<Vec<CsvLine>, FileError> {
    if bytes.len() > MAX_BYTES {
        return Err(FileError::TooLarge);
    }
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(FileError::Empty);
    }
    if bytes.contains(&0) {
        return Err(FileError::Binary);
    }
    let text = std::str::from_utf8(bytes).map_err(|_| FileError::NotUtf8)?;
    if text
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        return Err(FileError::Binary);
    }
    // One line ending for all, so that a browser's pasted text (always CRLF), a Windows file
    // and a Unix file count their lines alike.
    let text = text.replace("\r\n", "\n").replace('\r', "\n");
    let mut lines = LineCounter::new(&text);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes());
    let mut records = reader.records();
    let header = match records.next() {
        Some(Ok(h)) => h,
        Some(Err(e)) => return Err(malformed(&e)),
        None => return Err(FileError::Empty),
    };
    let columns = header_columns(&header)?;
    let mut out = Vec::new();
    for record in records {
        let record = record.map_err(|e| malformed(&e))?;
        let line = record.position().map_or(out.len() + 2, |p| {
            lines.line_of(usize::try_from(p.byte()).unwrap_or(usize::MAX))
        });
        if record.iter().all(|f| f.trim().is_empty()) {
            continue;
        }
        if out.len() >= MAX_ROWS {
            return Err(FileError::TooManyRows);
        }
        let field = |name: &str| {
            columns
                .iter()
                .position(|c| *c == name)
                .and_then(|i| record.get(i))
                .unwrap_or("")
        };
        let name = field("name").trim().to_owned();
        if record.len() != columns.len() {
            out.push(CsvLine {
                line,
                name,
                parsed: Err(format!(
                    "has {} field(s), but the header has {}.",
                    record.len(),
                    columns.len()
                )),
            });
            continue;
        }
        let raw = RawResource {
            name: field("name"),
            kind: field("kind"),
            platform: field("platform"),
            address: field("address"),
            port: field("port"),
            description: field("description"),
        };
        let resource = ResourceInput::parse(&raw);
        let mut problems: Vec<String> = match &resource {
            Ok(_) => Vec::new(),
            Err(errors) => errors.iter().map(|(_, m)| m.to_owned()).collect(),
        };
        let access = columns
            .contains(&"provisioner")
            .then(|| line_access(&field, &mut problems))
            .flatten();
        let parsed = match resource {
            Ok(resource) if problems.is_empty() => Ok(CsvResource { resource, access }),
            _ => Err(problems.join(" ")),
        };
        out.push(CsvLine { line, name, parsed });
    }
    Ok(out)
}

/// A line's access columns, checked like a seed file's: each belongs to the provisioners
/// that use it, and one given to another is refused rather than dropped. An empty
/// `provisioner` is `simulated`, as on the resource form.
fn line_access<'a>(
    field: &dyn Fn(&str) -> &'a str,
    problems: &mut Vec<String>,
) -> Option<CsvAccess> {
    let given = |name: &str| Some(field(name).trim()).filter(|v| !v.is_empty());
    let provisioner = match given("provisioner") {
        None => ProvisionerKind::Simulated,
        Some(key) => match ProvisionerKind::parse(key) {
            Some(p) => p,
            None => {
                let known: Vec<&str> = ProvisionerKind::ALL.iter().map(|k| k.key()).collect();
                problems.push(format!(
                    "The provisioner must be one of {} (or empty: simulated).",
                    known.join(", ")
                ));
                return None;
            }
        },
    };
    use ProvisionerKind::{Command, LinuxSsh, Postgresql};
    let uses: [(&str, &[ProvisionerKind]); 4] = [
        ("credential", &[LinuxSsh, Postgresql]),
        ("host_key", &[LinuxSsh]),
        ("database", &[Postgresql]),
        ("command", &[Command]),
    ];
    for (column, used_by) in uses {
        let used = used_by.contains(&provisioner);
        if given(column).is_some() && !used {
            let keys: Vec<&str> = used_by.iter().map(|k| k.key()).collect();
            problems.push(format!(
                "The {column} column is for the {} provisioner only; leave it empty for {}.",
                keys.join(" and "),
                provisioner.key()
            ));
        } else if used && column != "database" && given(column).is_none() {
            problems.push(match column {
                "credential" => format!("The {} provisioner needs the name of a service credential in the credential column (create it on Admin > Service credentials).", provisioner.key()),
                "host_key" => "The linux_ssh provisioner needs the target's host key in the host_key column, as ssh-keyscan prints it.".to_owned(),
                _ => "The command provisioner needs the name of a command from the provisioners file in the command column.".to_owned(),
            });
        }
    }
    let used = |column: &str| {
        uses.iter()
            .any(|(c, by)| *c == column && by.contains(&provisioner))
    };
    let host_key = match given("host_key").filter(|_| used("host_key")) {
        None => None,
        Some(text) => match parse_host_key(text) {
            Ok(key) => Some(key),
            Err(message) => {
                problems.push(message);
                None
            }
        },
    };
    let database_name = given("database").filter(|_| used("database")).and_then(|name| {
        let ok = valid_database_name(name);
        if !ok {
            problems.push("A database name starts with a letter or _ and holds letters, digits, _, $ or - (at most 63).".to_owned());
        }
        ok.then(|| name.to_owned())
    });
    let command = given("command").filter(|_| used("command")).and_then(|name| {
        let ok = crate::domain::provisioner::valid_command_name(name);
        if !ok {
            problems.push("A command name is lower-case letters, digits, _ and - (at most 64), as in the provisioners file.".to_owned());
        }
        ok.then(|| name.to_owned())
    });
    Some(CsvAccess {
        provisioner,
        credential: given("credential")
            .filter(|_| used("credential"))
            .map(str::to_owned),
        host_key,
        database_name,
        command,
    })
}

/// The line a record starts on. The reader's own position is taken before it skips blank
/// lines, so a record after a blank line would be put on the blank line.
struct LineCounter<'a> {
    text: &'a [u8],
    offset: usize,
    line: usize,
}

impl<'a> LineCounter<'a> {
    fn new(text: &'a str) -> Self {
        Self {
            text: text.as_bytes(),
            offset: 0,
            line: 1,
        }
    }

    /// The line of the first character at or after byte `start` that is not a line ending;
    /// `start` never goes backwards from one call to the next.
    fn line_of(&mut self, start: usize) -> usize {
        let mut end = start.min(self.text.len());
        while self.text.get(end) == Some(&b'\n') {
            end += 1;
        }
        if end > self.offset {
            let passed = self.text.get(self.offset..end).unwrap_or_default();
            self.line += passed.iter().filter(|b| **b == b'\n').count();
            self.offset = end;
        }
        self.line
    }
}

fn malformed(e: &csv::Error) -> FileError {
    let line = e
        .position()
        .map_or(1, |p| usize::try_from(p.line()).unwrap_or(1));
    FileError::Malformed {
        line,
        message: "the line cannot be read as CSV.".into(),
    }
}

fn header_columns(header: &csv::StringRecord) -> Result<Vec<&'static str>, FileError> {
    let mut columns = Vec::new();
    for raw in header {
        let name = raw.trim().to_lowercase();
        let Some(known) = COLUMNS.iter().find(|c| **c == name) else {
            return Err(FileError::Header(format!(
                "unknown column \"{}\". The header must name the columns {}, and may add {}.",
                raw.trim(),
                COLUMNS[..6].join(", "),
                COLUMNS[6..].join(", ")
            )));
        };
        if columns.contains(known) {
            return Err(FileError::Header(format!(
                "the column \"{known}\" appears twice."
            )));
        }
        columns.push(*known);
    }
    let missing: Vec<&str> = REQUIRED
        .iter()
        .filter(|c| !columns.contains(c))
        .copied()
        .collect();
    if !missing.is_empty() {
        return Err(FileError::Header(format!(
            "the header lacks the column(s) {}. The columns are {}.",
            missing.join(", "),
            COLUMNS.join(", ")
        )));
    }
    if !columns.contains(&"provisioner")
        && let Some(lone) = ACCESS_COLUMNS.iter().find(|c| columns.contains(c))
    {
        return Err(FileError::Header(format!(
            "the column \"{lone}\" needs the column \"provisioner\" too."
        )));
    }
    Ok(columns)
}

/// A resource already stored, as the plan compares it.
#[derive(Debug, Clone)]
pub struct Existing {
    pub resource: ResourceInput,
    pub access: AccessInput,
    pub archived: bool,
}

/// What applying a line does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Create,
    Update,
    Unchanged,
    Refuse,
}

impl Action {
    pub fn label(self) -> &'static str {
        match self {
            Self::Create => "Create",
            Self::Update => "Update",
            Self::Unchanged => "Unchanged",
            Self::Refuse => "Refuse",
        }
    }

    pub fn key(self) -> &'static str {
        match self {
            Self::Create => "create",
            Self::Update => "update",
            Self::Unchanged => "unchanged",
            Self::Refuse => "refuse",
        }
    }
}

/// One line of the preview.
#[derive(Debug, Clone)]
pub struct PlanLine {
    pub line: usize,
    pub name: String,
    pub action: Action,
    /// Why refused, or what changes.
    pub detail: String,
}

/// The preview of a file against what is stored.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    pub lines: Vec<PlanLine>,
    /// The resources to create or update (refused and unchanged lines are left out).
    pub writes: Vec<ImportRow>,
}

impl Plan {
    pub fn count(&self, action: Action) -> usize {
        self.lines.iter().filter(|l| l.action == action).count()
    }

    /// Applying is all-or-nothing: a single refused line stops it.
    pub fn can_apply(&self) -> bool {
        self.count(Action::Refuse) == 0
    }

    /// `file:line: name: reason` lines, for the command line.
    pub fn refusals(&self, file: &str) -> Vec<String> {
        self.lines
            .iter()
            .filter(|l| l.action == Action::Refuse)
            .map(|l| {
                if l.name.is_empty() {
                    format!("{file}:{}: {}", l.line, l.detail)
                } else {
                    format!("{file}:{}: {}: {}", l.line, l.name, l.detail)
                }
            })
            .collect()
    }
}

/// Finds a line's credential among the stored ones and checks it serves the provisioner.
fn resolve(
    access: Option<CsvAccess>,
    credentials: &HashMap<String, KnownCredential>,
) -> Result<Option<AccessInput>, String> {
    let Some(a) = access else {
        return Ok(None);
    };
    let credential_id = match &a.credential {
        None => None,
        Some(name) => {
            let Some(known) = credentials.get(&name.to_lowercase()) else {
                return Err(format!(
                    "No service credential is named \"{name}\": create it on Admin > Service credentials first."
                ));
            };
            if let Some(message) = credential_mismatch(a.provisioner, known.kind) {
                return Err(message);
            }
            Some(known.id)
        }
    };
    Ok(Some(AccessInput {
        provisioner: a.provisioner,
        credential_id,
        host_key: a.host_key,
        database_name: a.database_name,
        command: a.command,
    }))
}

/// Compares the file's lines with the stored resources (keyed by lower-case name); `stored`
/// names every stored resource, for the look-alike warning; `credentials` are the stored
/// service credentials by lower-case name.
pub fn plan(
    lines: Vec<CsvLine>,
    existing: &HashMap<String, Existing>,
    stored: &[String],
    credentials: &HashMap<String, KnownCredential>,
) -> Plan {
    let mut seen: HashMap<String, usize> = HashMap::new();
    // What each name looks like (see `names::look_alike_key`): a new name that looks like a
    // stored one or an earlier line's is still created, but the preview says so before Apply.
    let mut look_alikes: HashMap<String, String> = stored
        .iter()
        .map(|name| (look_alike_key(name), name.clone()))
        .collect();
    let mut plan = Plan::default();
    for l in lines {
        let parsed = l
            .parsed
            .and_then(|p| resolve(p.access, credentials).map(|a| (p.resource, a)));
        let (resource, access) = match parsed {
            Err(reason) => {
                plan.lines.push(PlanLine {
                    line: l.line,
                    name: l.name,
                    action: Action::Refuse,
                    detail: reason,
                });
                continue;
            }
            Ok(r) => r,
        };
        let key = resource.name.to_lowercase();
        if let Some(first) = seen.get(&key) {
            plan.lines.push(PlanLine {
                line: l.line,
                name: resource.name.clone(),
                action: Action::Refuse,
                detail: format!(
                    "\"{}\" is already on line {first} of this file (names are compared without regard to case).",
                    resource.name
                ),
            });
            continue;
        }
        seen.insert(key.clone(), l.line);
        let look = look_alike_key(&resource.name);
        let (action, detail) = match existing.get(&key) {
            None => match look_alikes.get(&look) {
                Some(other) => (
                    Action::Create,
                    format!("Looks like the resource \"{other}\": check the name."),
                ),
                None => (Action::Create, String::new()),
            },
            Some(old) => {
                let mut changed = changes(&old.resource, &resource);
                if let Some(access) = &access {
                    changed.extend(access_changes(&old.access, access));
                }
                if changed.is_empty() && !old.archived {
                    (Action::Unchanged, "Already as in the file.".to_owned())
                } else {
                    let mut parts = Vec::new();
                    if !changed.is_empty() {
                        parts.push(format!("Changes {}.", changed.join(", ")));
                    }
                    if old.archived {
                        parts.push("Restores the archived resource.".to_owned());
                    }
                    (Action::Update, parts.join(" "))
                }
            }
        };
        if matches!(action, Action::Create | Action::Update) {
            plan.writes.push(ImportRow {
                resource: resource.clone(),
                access,
            });
        }
        look_alikes
            .entry(look)
            .or_insert_with(|| resource.name.clone());
        plan.lines.push(PlanLine {
            line: l.line,
            name: resource.name,
            action,
            detail,
        });
    }
    plan
}

fn changes(old: &ResourceInput, new: &ResourceInput) -> Vec<&'static str> {
    let mut out = Vec::new();
    if old.name != new.name {
        out.push("name");
    }
    if old.kind != new.kind {
        out.push("kind");
    }
    if old.platform != new.platform {
        out.push("platform");
    }
    if old.address != new.address {
        out.push("address");
    }
    if old.port != new.port {
        out.push("port");
    }
    if old.description != new.description {
        out.push("description");
    }
    out
}

fn access_changes(old: &AccessInput, new: &AccessInput) -> Vec<&'static str> {
    let mut out = Vec::new();
    if old.provisioner != new.provisioner {
        out.push("provisioner");
    }
    if old.credential_id != new.credential_id {
        out.push("credential");
    }
    if old.host_key != new.host_key {
        out.push("host key");
    }
    if old.database_name != new.database_name {
        out.push("database");
    }
    if old.command != new.command {
        out.push("command");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "name,kind,platform,address,port,description\n";

    fn simulated() -> AccessInput {
        AccessInput {
            provisioner: ProvisionerKind::Simulated,
            credential_id: None,
            host_key: None,
            database_name: None,
            command: None,
        }
    }

    #[test]
    fn every_line_is_planned_with_its_number() {
        let text = format!(
            "{HEADER}db-01,database,PostgreSQL,db-01.example,5432,Main\nweb,printer,Linux,w.example,80,\nDB-01,server,Linux,x,22,\n"
        );
        let lines = parse(text.as_bytes()).unwrap();
        let plan = plan(lines, &HashMap::new(), &[], &HashMap::new());
        let got: Vec<(usize, Action)> = plan.lines.iter().map(|l| (l.line, l.action)).collect();
        assert_eq!(
            got,
            [
                (2, Action::Create),
                (3, Action::Refuse),
                (4, Action::Refuse)
            ]
        );
        assert!(plan.lines[2].detail.contains("already on line 2"));
        assert!(!plan.can_apply());
    }

    #[test]
    fn files_that_are_not_csv_text_are_refused_whole() {
        assert_eq!(parse(b""), Err(FileError::Empty));
        assert_eq!(parse(b"\x89PNG\r\n\x1a\n\0\0"), Err(FileError::Binary));
        assert_eq!(parse(b"name,kind\n\xff\xfe"), Err(FileError::NotUtf8));
        assert!(matches!(
            parse(b"hostname,ip\na,b\n"),
            Err(FileError::Header(_))
        ));
    }

    #[test]
    fn a_line_with_the_wrong_number_of_fields_is_refused() {
        let lines = parse(format!("{HEADER}a,server,Linux\n").as_bytes()).unwrap();
        assert!(lines[0].parsed.as_ref().unwrap_err().contains("3 field(s)"));
    }

    #[test]
    fn unchanged_and_changed_resources_are_told_apart() {
        let lines = parse(
            format!("{HEADER}a,server,Linux,a.example,22,\nb,server,Linux,b2.example,22,\n")
                .as_bytes(),
        )
        .unwrap();
        let stored = |name: &str, address: &str| Existing {
            resource: ResourceInput {
                name: name.into(),
                kind: crate::domain::catalog::ResourceKind::Server,
                platform: "Linux".into(),
                address: address.into(),
                port: Some(22),
                description: String::new(),
            },
            access: simulated(),
            archived: false,
        };
        let existing = HashMap::from([
            ("a".to_owned(), stored("a", "a.example")),
            ("b".to_owned(), stored("b", "b.example")),
        ]);
        let plan = plan(
            lines,
            &existing,
            &["a".to_owned(), "b".to_owned()],
            &HashMap::new(),
        );
        assert_eq!(plan.lines[0].action, Action::Unchanged);
        assert_eq!(plan.lines[1].action, Action::Update);
        assert_eq!(plan.lines[1].detail, "Changes address.");
        assert_eq!(plan.writes.len(), 1);
    }

    #[test]
    fn a_new_name_that_looks_like_another_is_created_with_a_warning() {
        let lines = parse(
            "name,kind,platform,address,port,description\n\
             lnx-web-0l,server,Linux,x.example,22,\n\
             db-01,server,Linux,y.example,22,\n\
             db-0l,server,Linux,z.example,22,\n"
                .as_bytes(),
        )
        .unwrap();
        let stored = Existing {
            resource: ResourceInput {
                name: "lnx-web-01".into(),
                kind: crate::domain::catalog::ResourceKind::Server,
                platform: "Linux".into(),
                address: "w.example".into(),
                port: Some(22),
                description: String::new(),
            },
            access: simulated(),
            archived: false,
        };
        let plan = plan(
            lines,
            &HashMap::from([("lnx-web-01".to_owned(), stored)]),
            &["lnx-web-01".to_owned()],
            &HashMap::new(),
        );
        let got: Vec<(Action, &str)> = plan
            .lines
            .iter()
            .map(|l| (l.action, l.detail.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                (
                    Action::Create,
                    "Looks like the resource \"lnx-web-01\": check the name."
                ),
                (Action::Create, ""),
                (
                    Action::Create,
                    "Looks like the resource \"db-01\": check the name."
                ),
            ]
        );
    }

    #[test]
    fn access_columns_are_checked_and_the_credential_found_by_name() {
        let key =
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIlNyAh1Ifr+mVdkn4LPWYxI8b4jS2G3k4ecJobMkAUJ";
        let text = format!(
            "name,kind,platform,address,provisioner,credential,host_key\n\
             a,server,Linux,a.example,linux_ssh,Root,{key}\n\
             b,server,Linux,b.example,,,\n\
             c,server,Linux,c.example,simulated,Root,\n"
        );
        let lines = parse(text.as_bytes()).unwrap();
        let id = Uuid::new_v4();
        let credentials = HashMap::from([(
            "root".to_owned(),
            KnownCredential {
                id,
                kind: CredentialKind::SshKey,
            },
        )]);
        let plan = plan(lines, &HashMap::new(), &[], &credentials);
        let got: Vec<Action> = plan.lines.iter().map(|l| l.action).collect();
        assert_eq!(got, [Action::Create, Action::Create, Action::Refuse]);
        assert_eq!(
            plan.writes[0]
                .access
                .as_ref()
                .map(|a| (a.provisioner, a.credential_id)),
            Some((ProvisionerKind::LinuxSsh, Some(id)))
        );
        assert_eq!(
            plan.writes[1].access.as_ref().map(|a| a.provisioner),
            Some(ProvisionerKind::Simulated)
        );
        assert!(plan.lines[2].detail.contains("credential column"));
    }
}
