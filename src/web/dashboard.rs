//! Dashboard: the signed-in user's sessions by tab (Active, Scheduled, Historical), search,
//! End Session on ticked rows, and the Historical export as CSV.

use crate::app::sessions::{EndOutcome, ListQuery};
use crate::auth::session::{self, FlashKind};
use crate::db::sessions::{Filter, Row};
use crate::domain::catalog::Protocol;
use crate::domain::ending::Ending;
use crate::domain::spreadsheet;
use crate::domain::status::{SessionStatus, Tab, Transition};
use crate::domain::tz::TimeZone;
use crate::domain::wizard::format_local;
use crate::state::AppState;
use crate::web::chrome::Chrome;
use crate::web::client::ClientAddr;
use crate::web::error::{AppError, AppResult};
use crate::web::form::{self, Form, first, uuids};
use crate::web::guard::CurrentUser;
use crate::web::route_table::{Access, Routes, get, post};
use crate::{app, db};
use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Query, RawQuery, State};
use axum::http::header;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use tower_sessions::Session;
use uuid::Uuid;

pub fn routes() -> Routes {
    Routes::new(Access::User)
        .route("/dashboard", get(active))
        .route("/dashboard/scheduled", get(scheduled))
        .route("/dashboard/historical", get(historical))
        .route("/dashboard/historical.csv", get(export_csv))
        .route("/dashboard/end", post(end_sessions))
        .route("/dashboard/logs", get(view_logs))
}

/// A dashboard row, formatted for the viewer.
pub struct RowView {
    pub id: Uuid,
    pub request_id: Uuid,
    pub status: SessionStatus,
    pub requested: String,
    pub requester: String,
    pub resource: String,
    pub login_account: String,
    pub activity: String,
    pub start: String,
    pub end: String,
    /// When it really ended, or empty.
    pub ended: String,
    /// Who or what ended it ("by the requester"), or empty.
    pub ended_how: &'static str,
    pub notes: String,
    pub ticket: String,
    /// All view: "Access removal pending" beside the status.
    pub removal_pending: bool,
    /// The viewer asked for it: only then is there a Connection icon (an administrator's All
    /// view lists other people's sessions, which they cannot connect to).
    pub own: bool,
    /// The activity's protocol while the session can be connected to.
    pub protocol: Option<Protocol>,
}

impl RowView {
    pub fn from_row(row: Row, tz: TimeZone, viewer: Uuid) -> Self {
        Self {
            own: row.requester_id == viewer,
            id: row.id,
            request_id: row.request_id,
            status: row.status,
            requested: format_local(tz.local(row.created_at)),
            requester: row.requester_name,
            resource: row.resource_name,
            login_account: row.login_account.unwrap_or_default(),
            activity: row.activity_name,
            start: format_local(tz.local(row.requested_start)),
            end: format_local(tz.local(row.ends_at)),
            ended: row
                .ended_at
                .map(|at| format_local(tz.local(at)))
                .unwrap_or_default(),
            ended_how: Ending::of(row.status, row.end_actor, row.requester_id)
                .map_or("", Ending::label),
            notes: row.notes,
            ticket: row.ticket_number,
            removal_pending: row.removal_pending,
            protocol: row.protocol,
        }
    }

    pub fn connectable(&self) -> bool {
        self.own && self.status.is_connectable()
    }

    /// Where the Connection icon leads: the browser terminal for SSH, else the Connect page
    /// (which has the .rdp file for RDP and the link for HTTPS).
    pub fn connect_href(&self) -> String {
        match self.protocol {
            Some(Protocol::Ssh) => format!("/sessions/{}/terminal", self.id),
            _ => format!("/sessions/{}/connect", self.id),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct DashboardQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    scope: String,
    #[serde(default)]
    resource: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    /// Kept as text: a malformed page number means page 1, not an error page.
    #[serde(default)]
    page: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "dashboard/tab.html")]
pub struct TabPage {
    chrome: Chrome,
    tab: &'static str,
    title: &'static str,
    /// Why the table is empty: nothing yet, or nothing matching the search and filters.
    empty: String,
    rows: Vec<RowView>,
    search: String,
    all: bool,
    is_admin: bool,
    is_approver: bool,
    /// Approvers: how many requests wait for their decision.
    waiting: i64,
    resource: String,
    from: String,
    to: String,
    filter_error: Option<String>,
    page: i64,
    /// Another page follows.
    more: bool,
    /// The query string of this view without the page, for paging links.
    query: String,
    time_zone: &'static str,
}

impl TabPage {
    /// The table's columns, for the empty row.
    pub fn columns(&self) -> usize {
        11 + usize::from(self.all) + usize::from(self.tab == "historical")
    }

    pub fn page_link(&self, page: i64) -> String {
        let sep = if self.query.is_empty() { "" } else { "&" };
        format!("?{}{sep}page={page}", self.query)
    }
}

/// Clean inputs of a tab's query.
struct Parsed {
    filter: Filter,
    search: String,
    all: bool,
    resource: String,
    from: String,
    to: String,
    error: Option<String>,
    page: i64,
    query: String,
}

fn parse(user: &CurrentUser, tab: Tab, q: DashboardQuery) -> Parsed {
    let l = app::sessions::listing(
        &app::Actor::from(user),
        tab,
        &ListQuery {
            search: &q.q,
            resource: &q.resource,
            from: &q.from,
            to: &q.to,
            all: q.scope == "all",
            page: &q.page,
        },
    );
    let mut pairs: Vec<(&str, &str)> = Vec::new();
    for (k, v) in [
        ("q", &l.search),
        ("resource", &l.resource),
        ("from", &q.from),
        ("to", &q.to),
    ] {
        if !v.trim().is_empty() {
            pairs.push((k, v.trim()));
        }
    }
    if l.all {
        pairs.push(("scope", "all"));
    }
    let query = serde_urlencoded::to_string(&pairs).unwrap_or_default();
    Parsed {
        filter: l.filter,
        search: l.search,
        all: l.all,
        resource: l.resource,
        // A date field holds a date or nothing: a value that is not one is not echoed back.
        from: echo_date(&q.from, l.from_valid),
        to: echo_date(&q.to, l.to_valid),
        error: l.error,
        page: l.page,
        query,
    }
}

/// Why a tab shows no rows: the filters are wrong, they matched nothing, or there is nothing yet.
fn empty_message(p: &Parsed, none_yet: &str) -> String {
    if p.error.is_some() {
        return "No sessions are shown: correct the filters above.".into();
    }
    if p.page > 1 {
        return "No sessions on this page.".into();
    }
    let mut what = Vec::new();
    if !p.search.is_empty() {
        what.push(format!("\u{201c}{}\u{201d}", p.search));
    }
    if !p.resource.is_empty() {
        what.push(format!("resource \u{201c}{}\u{201d}", p.resource));
    }
    match (p.from.is_empty(), p.to.is_empty()) {
        (false, false) => what.push(format!("{} to {}", p.from, p.to)),
        (false, true) => what.push(format!("from {}", p.from)),
        (true, false) => what.push(format!("until {}", p.to)),
        (true, true) => {}
    }
    if what.is_empty() {
        none_yet.to_owned()
    } else {
        format!("No sessions match {}.", what.join(", "))
    }
}

/// The date text to show again in a filter field: the text when it was a date, else nothing.
fn echo_date(text: &str, valid: bool) -> String {
    if valid {
        text.trim().chars().take(10).collect()
    } else {
        String::new()
    }
}

/// One page of sessions; a list of the user's own names them as its requester.
async fn list(
    state: &AppState,
    user: &CurrentUser,
    filter: &Filter,
) -> AppResult<(Vec<Row>, bool)> {
    Ok(app::sessions::list(state, &app::Actor::from(user), filter).await?)
}

async fn render(
    state: &AppState,
    chrome: Chrome,
    user: &CurrentUser,
    tab: Tab,
    q: DashboardQuery,
) -> AppResult<TabPage> {
    let p = parse(user, tab, q);
    let (rows, more) = if p.error.is_some() {
        (Vec::new(), false)
    } else {
        list(state, user, &p.filter).await?
    };
    let waiting = if user.is_approver {
        db::approvals::waiting_count(&state.db, user.id).await?
    } else {
        0
    };
    let (key, title, none_yet) = match tab {
        Tab::Active => (
            "active",
            "Active Sessions",
            "No active sessions. Create Session to request access.",
        ),
        Tab::Scheduled => (
            "scheduled",
            "Scheduled Sessions",
            "No scheduled sessions. Create Session and choose a later start to schedule one.",
        ),
        Tab::Historical => (
            "historical",
            "Historical Sessions",
            "No past sessions yet. Sessions appear here once they end.",
        ),
    };
    let empty = empty_message(&p, none_yet);
    Ok(TabPage {
        chrome: chrome.at("dashboard"),
        tab: key,
        title,
        empty,
        rows: rows
            .into_iter()
            .map(|r| RowView::from_row(r, user.time_zone, user.id))
            .collect(),
        search: p.search,
        all: p.all,
        is_admin: user.is_admin(),
        is_approver: user.is_approver,
        waiting,
        resource: p.resource,
        from: p.from,
        to: p.to,
        filter_error: p.error,
        page: p.page,
        more,
        query: p.query,
        time_zone: user.time_zone.name(),
    })
}

/// Dashboard > Active.
pub async fn active(
    State(state): State<AppState>,
    chrome: Chrome,
    user: CurrentUser,
    Query(q): Query<DashboardQuery>,
) -> AppResult<TabPage> {
    render(&state, chrome, &user, Tab::Active, q).await
}

/// Dashboard > Scheduled.
pub async fn scheduled(
    State(state): State<AppState>,
    chrome: Chrome,
    user: CurrentUser,
    Query(q): Query<DashboardQuery>,
) -> AppResult<TabPage> {
    render(&state, chrome, &user, Tab::Scheduled, q).await
}

/// Dashboard > Historical.
pub async fn historical(
    State(state): State<AppState>,
    chrome: Chrome,
    user: CurrentUser,
    Query(q): Query<DashboardQuery>,
) -> AppResult<TabPage> {
    render(&state, chrome, &user, Tab::Historical, q).await
}

/// Most rows one export holds.
const EXPORT_LIMIT: i64 = 100_000;

/// Export as CSV: the Historical rows matching the filters.
pub async fn export_csv(
    State(state): State<AppState>,
    user: CurrentUser,
    Query(q): Query<DashboardQuery>,
) -> AppResult<Response> {
    let mut p = parse(&user, Tab::Historical, q);
    if let Some(e) = p.error {
        return Err(AppError::Validation(e));
    }
    p.filter.limit = EXPORT_LIMIT;
    p.filter.offset = 0;
    let (rows, _) = list(&state, &user, &p.filter).await?;
    let body = historical_csv(rows, &user)?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"portcullis-historical-sessions.csv\"",
            ),
        ],
        body,
    )
        .into_response())
}

/// The Historical tab's columns as a spreadsheet, as `user` sees them.
fn historical_csv(rows: Vec<Row>, user: &CurrentUser) -> AppResult<Vec<u8>> {
    let mut out = spreadsheet::writer();
    let header = [
        "Status",
        "Requested",
        "Requested By",
        "Resource",
        "Login Account",
        "Activity",
        "Start",
        "Planned End",
        "Ended",
        "How It Ended",
        "Notes",
        "Ticket Number",
    ];
    out.write_record(header).map_err(AppError::internal)?;
    for row in rows {
        let v = RowView::from_row(row, user.time_zone, user.id);
        let record = [
            v.status.label(),
            &v.requested,
            &v.requester,
            &v.resource,
            &v.login_account,
            &v.activity,
            &v.start,
            &v.end,
            &v.ended,
            v.ended_how,
            &v.notes,
            &v.ticket,
        ];
        out.write_record(record.iter().map(|c| spreadsheet::defuse(c)))
            .map_err(AppError::internal)?;
    }
    out.into_inner().map_err(AppError::internal)
}

/// One ticked session on the End Session confirmation page.
pub struct EndItem {
    pub id: Uuid,
    /// What Confirm does to it: "Withdraw", "End", "Cancel", or nothing (already over).
    pub action: &'static str,
    pub resource: String,
    pub activity: String,
    pub requester: String,
    pub status: SessionStatus,
    pub start: String,
    pub end: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "dashboard/end_confirm.html")]
pub struct EndConfirmPage {
    chrome: Chrome,
    items: Vec<EndItem>,
    back: String,
    /// The confirm button's words, naming what it does.
    confirm: String,
}

/// The confirmation page: every ticked session the user may end, named, with what Confirm
/// does to it. Nothing changes until it is confirmed.
async fn end_confirmation(
    state: &AppState,
    chrome: Chrome,
    user: &CurrentUser,
    ids: &[Uuid],
    back: String,
) -> AppResult<EndConfirmPage> {
    let tz = user.time_zone;
    let items: Vec<EndItem> = app::sessions::preview_end(state, &app::Actor::from(user), ids)
        .await?
        .into_iter()
        .map(|p| {
            let d = p.details;
            EndItem {
                id: d.id,
                action: match p.transition {
                    None => "",
                    Some(Transition::Withdraw) => "Withdraw",
                    Some(Transition::Complete) => "End",
                    Some(_) => "Cancel",
                },
                resource: d.resource_name,
                activity: d.activity_name,
                requester: d.requester_name,
                status: d.status,
                start: format_local(tz.local(d.requested_start)),
                end: format_local(tz.local(d.ends_at)),
            }
        })
        .collect();
    let count = |verb: &str| items.iter().filter(|i| i.action == verb).count();
    let (withdraw, end) = (count("Withdraw"), count("End") + count("Cancel"));
    let plural =
        |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    let confirm = match (withdraw, end) {
        (0, 0) => String::new(),
        (0, 1) => "End the session".into(),
        (1, 0) => "Withdraw the request".into(),
        (0, n) => format!("End {}", plural(n, "session", "sessions")),
        (n, 0) => format!("Withdraw {}", plural(n, "request", "requests")),
        (w, e) => format!(
            "Withdraw {} and end {}",
            plural(w, "request", "requests"),
            plural(e, "session", "sessions")
        ),
    };
    Ok(EndConfirmPage {
        chrome: chrome.at("dashboard"),
        items,
        back,
        confirm,
    })
}

/// End Session: the ticked sessions, where to go back to, and whether the confirmation page
/// said yes.
#[derive(Deserialize)]
pub struct EndForm {
    #[serde(default)]
    id: Vec<String>,
    #[serde(default, deserialize_with = "first")]
    back: String,
    #[serde(default, deserialize_with = "first")]
    confirm: String,
}

/// End Session on the ticked rows: first a confirmation page naming them (so a stray click
/// ends nothing); confirmed, a request not yet begun is withdrawn (Canceled), a begun one ends
/// (Completed); an administrator ending someone else's session cancels it.
pub async fn end_sessions(
    State(state): State<AppState>,
    chrome: Chrome,
    user: CurrentUser,
    session: Session,
    ClientAddr(client): ClientAddr,
    Form(form): Form<EndForm>,
) -> AppResult<Response> {
    let back = Some(form.back)
        .filter(|b| crate::web::guard::is_safe_next(b))
        .unwrap_or_else(|| "/dashboard".to_owned());
    let ids = uuids(&form.id, usize::MAX);
    if ids.is_empty() {
        session::flash(
            &session,
            FlashKind::Error,
            "Tick the sessions to end first.",
        )
        .await?;
        return Ok(Redirect::to(&back).into_response());
    }
    if form.confirm != "yes" {
        return Ok(end_confirmation(&state, chrome, &user, &ids, back)
            .await?
            .into_response());
    }
    let outcomes = app::sessions::end(&state, &app::Actor::from(&user), client, &ids).await?;
    flash_ended(&session, outcomes).await?;
    Ok(Redirect::to(&back).into_response())
}

/// What End did, as messages: one for the sessions ended and requests withdrawn, one for each
/// refusal.
async fn flash_ended(session: &Session, outcomes: Vec<(Uuid, EndOutcome)>) -> AppResult<()> {
    let (mut ended, mut withdrawn) = (0, 0);
    let mut refused = Vec::new();
    for (_, outcome) in outcomes {
        match outcome {
            EndOutcome::Withdrawn => withdrawn += 1,
            EndOutcome::Ended => ended += 1,
            EndOutcome::Refused(why) => refused.push(capitalise(&why)),
            EndOutcome::NotFound => {}
        }
    }
    if let Some(done) = ended_message(ended, withdrawn) {
        session::flash(session, FlashKind::Success, done).await?;
    }
    for message in refused {
        session::flash(session, FlashKind::Error, format!("{message}.")).await?;
    }
    Ok(())
}

/// "Withdrew 1 request. Ended 2 sessions.": a request not yet begun is withdrawn, not ended.
fn ended_message(ended: usize, withdrawn: usize) -> Option<String> {
    let plural =
        |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    let mut parts = Vec::new();
    if withdrawn > 0 {
        parts.push(format!(
            "Withdrew {}.",
            plural(withdrawn, "request", "requests")
        ));
    }
    if ended > 0 {
        parts.push(format!("Ended {}.", plural(ended, "session", "sessions")));
    }
    (!parts.is_empty()).then(|| parts.join(" "))
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

/// The sessions ticked on the dashboard, in View Logs' query string.
#[derive(Deserialize)]
struct Ticked {
    #[serde(default)]
    id: Vec<String>,
}

/// View Logs opens one session's log: the first ticked. With several ticked it says so, and
/// names the one it opened.
pub async fn view_logs(
    State(state): State<AppState>,
    user: CurrentUser,
    session: Session,
    RawQuery(query): RawQuery,
) -> AppResult<Redirect> {
    let ticked: Ticked = form::parse(query.unwrap_or_default().as_bytes())?;
    let ids = uuids(&ticked.id, usize::MAX);
    let Some(id) = ids.first().copied() else {
        session::flash(
            &session,
            FlashKind::Error,
            "Tick a session to view its logs.",
        )
        .await?;
        return Ok(Redirect::to("/dashboard"));
    };
    if ids.len() > 1
        && let Some(d) = db::sessions::details(&state.db, id).await?
        && crate::web::recordings::may_see_recordings(&user, &d)
    {
        session::flash(
            &session,
            FlashKind::Info,
            format!(
                "View Logs opens one session at a time: this is the first of the {} you ticked, {} ({}). Go back to open another.",
                ids.len(),
                d.resource_name,
                d.activity_name
            ),
        )
        .await?;
    }
    Ok(Redirect::to(&format!("/sessions/{id}")))
}
