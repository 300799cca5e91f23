//! Admin > Audit log: every administrative change, newest first, with filters.

use super::{PAGE_SIZE, Pager};
use crate::db;
use crate::db::audit::Filter;
use crate::domain::tz::TimeZone;
use crate::domain::wizard::format_local;
use crate::state::AppState;
use crate::web::chrome::Chrome;
use crate::web::error::AppResult;
use crate::web::guard::CurrentUser;
use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Query, State};
use serde::Deserialize;

/// The kinds of object the log records.
pub const KINDS: [(&str, &str); 8] = [
    ("user", "Users"),
    ("group", "Groups"),
    ("resource", "Resources"),
    ("activity", "Activities"),
    ("profile", "Connection profiles"),
    ("policy", "Access policies"),
    ("service_credential", "Service credentials"),
    ("webhook", "Webhooks"),
];

/// One entry, formatted for the viewer.
pub struct EntryView {
    pub at: String,
    pub actor: String,
    pub action: String,
    pub kind: String,
    pub name: String,
    pub before: String,
    pub after: String,
}

impl EntryView {
    fn of(r: db::audit::Row, tz: TimeZone) -> Self {
        Self {
            at: format_local(tz.local(r.at)),
            actor: r.actor_name,
            action: r.action,
            kind: r.object_kind,
            name: r.object_name,
            before: pretty(r.before),
            after: pretty(r.after),
        }
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/audit.html")]
pub struct AuditPage {
    chrome: Chrome,
    entries: Vec<EntryView>,
    kinds: [(&'static str, &'static str); 8],
    kind: String,
    actor: String,
    search: String,
    pager: Pager,
}

#[derive(Debug, Default, Deserialize)]
pub struct AuditQuery {
    #[serde(default)]
    kind: String,
    #[serde(default)]
    actor: String,
    #[serde(default)]
    q: String,
    #[serde(default)]
    page: String,
}

fn pretty(json: Option<String>) -> String {
    json.and_then(|j| serde_json::from_str::<serde_json::Value>(&j).ok())
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .unwrap_or_default()
}

pub async fn list(
    State(state): State<AppState>,
    chrome: Chrome,
    user: CurrentUser,
    Query(query): Query<AuditQuery>,
) -> AppResult<AuditPage> {
    let kind = KINDS
        .iter()
        .find(|(k, _)| *k == query.kind)
        .map_or("", |(k, _)| *k);
    let actor: String = query.actor.trim().chars().take(64).collect();
    let search: String = query.q.trim().chars().take(100).collect();
    let page = Pager::requested(&query.page);
    let filter = Filter {
        kind,
        actor: &actor,
        search: &search,
    };
    let (rows, total) = db::audit::list(&state.db, &filter, PAGE_SIZE, Pager::offset(page)).await?;
    let entries = rows
        .into_iter()
        .map(|r| EntryView::of(r, user.time_zone))
        .collect();
    let pager = Pager::new(
        page,
        total,
        &[("kind", kind), ("actor", &actor), ("q", &search)],
    );
    Ok(AuditPage {
        chrome: chrome.at("admin"),
        entries,
        kinds: KINDS,
        kind: kind.to_owned(),
        actor,
        search,
        pager,
    })
}
