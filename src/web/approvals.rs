//! Dashboard > Approvals: the requests waiting for the signed-in approver, one row per
//! request, and Approve / Deny on the ticked requests with a comment; the decision code the
//! request page shares.

use crate::auth::session::{self, FlashKind};
use crate::db::approvals::{Refused, Row};
use crate::domain::status::SessionStatus;
use crate::domain::tz::TimeZone;
use crate::domain::wizard::format_local;
use crate::state::AppState;
use crate::web::chrome::Chrome;
use crate::web::client::ClientAddr;
use crate::web::error::AppResult;
use crate::web::form::{Form, first, uuids};
use crate::web::guard::CurrentUser;
use crate::{app, db};
use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Query, State};
use axum::response::Redirect;
use serde::Deserialize;
use std::net::IpAddr;
use tower_sessions::Session;
use uuid::Uuid;

/// Longest decision comment.
pub use crate::app::approvals::MAX_COMMENT;

/// A row formatted for the viewer: one request.
pub struct RowView {
    pub id: Uuid,
    pub requested: String,
    pub requester: String,
    pub resources: String,
    pub resource_names: String,
    pub activity: String,
    pub start: String,
    pub end: String,
    pub deadline: String,
    pub notes: String,
    pub ticket: String,
    pub tier: String,
}

impl RowView {
    fn of(r: Row, tz: TimeZone) -> Self {
        Self {
            id: r.request_id,
            requested: format_local(tz.local(r.created_at)),
            requester: r.requester_name,
            resources: format!(
                "{} {}",
                r.resources,
                if r.resources == 1 {
                    "resource"
                } else {
                    "resources"
                }
            ),
            resource_names: r.resource_names.join(", "),
            activity: r.activity_name,
            start: format_local(tz.local(r.requested_start)),
            end: format_local(tz.local(r.ends_at)),
            deadline: r
                .decision_deadline
                .map(|d| format_local(tz.local(d)))
                .unwrap_or_default(),
            notes: r.notes,
            ticket: r.ticket_number,
            tier: format!("{} of {}", r.current_tier, r.tier_count),
        }
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "dashboard/approvals.html")]
pub struct ApprovalsPage {
    chrome: Chrome,
    rows: Vec<RowView>,
    search: String,
    time_zone: &'static str,
    max_comment: usize,
}

#[derive(Debug, Default, Deserialize)]
pub struct ApprovalsQuery {
    #[serde(default)]
    q: String,
}

/// The Approvals tab. Only approvers have it; anyone else is told it is not theirs.
pub async fn show(
    State(state): State<AppState>,
    chrome: Chrome,
    user: CurrentUser,
    Query(q): Query<ApprovalsQuery>,
) -> AppResult<ApprovalsPage> {
    let search: String = q.q.trim().chars().take(200).collect();
    let tz = user.time_zone;
    let rows = db::approvals::waiting_for(&state.db, user.id, &search)
        .await?
        .into_iter()
        .map(|r| RowView::of(r, tz))
        .collect();
    Ok(ApprovalsPage {
        chrome: chrome.at("approvals"),
        rows,
        search,
        time_zone: tz.name(),
        max_comment: MAX_COMMENT,
    })
}

pub use crate::app::approvals::Asked;

/// Approve or Deny, on the Approvals tab (ticked requests) and on a request's page (ticked
/// sessions).
#[derive(Deserialize)]
pub struct DecisionForm {
    #[serde(default, deserialize_with = "first")]
    pub decision: String,
    #[serde(default, deserialize_with = "first")]
    pub comment: String,
    /// Ticked requests.
    #[serde(default)]
    pub request: Vec<String>,
    /// Ticked sessions.
    #[serde(default)]
    pub id: Vec<String>,
}

impl DecisionForm {
    /// Reads Approve / Deny and the comment; the refusal says what to do instead.
    pub fn asked(&self) -> Result<Asked, String> {
        Asked::parse(&self.decision, &self.comment)
    }
}

/// Approve or Deny on the ticked requests (every one of their resources waiting for the
/// approver). A denial needs a comment.
pub async fn decide(
    State(state): State<AppState>,
    user: CurrentUser,
    session: Session,
    ClientAddr(client): ClientAddr,
    Form(form): Form<DecisionForm>,
) -> AppResult<Redirect> {
    // Someone who is no approver (a hand-made POST) has no Approvals tab to return to.
    let back = if user.is_approver {
        "/approvals"
    } else {
        "/dashboard"
    };
    let asked = match form.asked() {
        Ok(asked) => asked,
        Err(message) => {
            session::flash(&session, FlashKind::Error, message).await?;
            return Ok(Redirect::to(back));
        }
    };
    let requests = uuids(&form.request, 200);
    let mut ids =
        app::approvals::waiting_sessions(&state, &app::Actor::from(&user), &requests).await?;
    // A session named on its own: refused below if it is not the approver's to decide.
    ids.extend(form.id.iter().filter_map(|s| Uuid::parse_str(s).ok()));
    if ids.is_empty() {
        session::flash(
            &session,
            FlashKind::Error,
            "Tick the requests to decide first.",
        )
        .await?;
        return Ok(Redirect::to(back));
    }
    apply(&state, &user, &session, client, &ids, &asked).await?;
    Ok(Redirect::to(back))
}

/// Takes the decision on each session (`app::approvals::decide`) and flashes what happened.
pub async fn apply(
    state: &AppState,
    user: &CurrentUser,
    session: &Session,
    client: Option<IpAddr>,
    ids: &[Uuid],
    asked: &Asked,
) -> AppResult<()> {
    let decided =
        app::approvals::decide(state, &app::Actor::from(user), client, ids, asked).await?;
    for (_, refused) in &decided.refused {
        let text = refusal_text(refused, user.time_zone);
        session::flash(session, FlashKind::Error, text).await?;
    }
    for (n, verb) in [(decided.approved, "Approved"), (decided.denied, "Denied")] {
        if n > 0 {
            session::flash(
                session,
                FlashKind::Success,
                format!("{verb} {n} {}.", plural(n)),
            )
            .await?;
        }
    }
    Ok(())
}

/// A refused decision in words for the approver, times in their time zone: "This request was
/// already denied by bob at 10:42."
pub fn refusal_text(refused: &Refused, tz: TimeZone) -> String {
    match refused {
        Refused::NotFound => "This request no longer exists.".into(),
        Refused::OwnRequest => "You cannot decide on your own request.".into(),
        Refused::NotInTier(tier) => {
            format!("You are not an approver for tier {tier} of this request.")
        }
        Refused::AlreadyDecided(tier) => {
            format!("You have already decided on this request in tier {tier}.")
        }
        Refused::GrantLapsed(why) => format!("{why} The request was canceled."),
        Refused::AlreadyMoved(moved) => {
            let verb = match moved.status {
                SessionStatus::Canceled if moved.revoked => "canceled",
                SessionStatus::ApprovalDenied => "denied",
                SessionStatus::Expired => "expired",
                SessionStatus::Canceled => "withdrawn",
                _ => "approved",
            };
            let clock = |at: time::OffsetDateTime| {
                let local = tz.local(at);
                format!("{:02}:{:02}", local.hour(), local.minute())
            };
            match &moved.by {
                Some((Some(name), at)) => {
                    format!(
                        "This request was already {verb} by {name} at {}.",
                        clock(*at)
                    )
                }
                Some((None, at)) => format!("This request was already {verb} at {}.", clock(*at)),
                None => format!("This request is already {}.", moved.status.label()),
            }
        }
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "request" } else { "requests" }
}
