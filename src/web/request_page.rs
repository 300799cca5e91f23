//! The request page: one request as one thing to decide on. Who asked and for what, every
//! resource with its session, the tiers and who may decide in them, each decision, the
//! requester's recent requests, and Approve / Deny on the ticked resources.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use time::Duration;
use tower_sessions::Session;
use uuid::Uuid;

use crate::db;
use crate::db::approvals::Decision;
use crate::db::request_page::{DecisionRow, Header, Recent, Resource, Tier};
use crate::domain::role::Role;
use crate::domain::status::SessionStatus;
use crate::domain::wizard::format_local;
use crate::state::AppState;
use crate::web::approvals::{self, DecisionForm, MAX_COMMENT};
use crate::web::chrome::Chrome;
use crate::web::client::ClientAddr;
use crate::web::error::{AppError, AppResult};
use crate::web::form::{Form, uuids};
use crate::web::guard::CurrentUser;
use crate::web::path_id::PathId;

/// One resource of the request, for the viewer.
pub struct ResourceView {
    pub session: Uuid,
    pub name: String,
    pub login_account: String,
    pub status: SessionStatus,
    pub tier: String,
    pub end: String,
    /// The viewer may decide on it now.
    pub decidable: bool,
    pub ticked: bool,
}

/// One decision, for the viewer.
pub struct DecisionView {
    pub resource: String,
    pub tier: i16,
    pub approver: String,
    pub approved: bool,
    pub comment: String,
    pub at: String,
}

/// One of the requester's other requests, for the viewer.
pub struct RecentView {
    pub id: Uuid,
    pub requested: String,
    pub activity: String,
    pub outcome: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "requests/show.html")]
pub struct RequestPage {
    chrome: Chrome,
    r: Header,
    requested: String,
    start: String,
    end: String,
    deadline: String,
    resources: Vec<ResourceView>,
    tiers: Vec<Tier>,
    decisions: Vec<DecisionView>,
    recent: Vec<RecentView>,
    can_decide: bool,
    /// The viewer may open the requester's other requests (an approver may not).
    link_recent: bool,
    comment: String,
    error: Option<String>,
    max_comment: usize,
    time_zone: &'static str,
}

/// What the approver ticked and typed, kept when a decision is refused.
struct Kept {
    ticked: Option<Vec<Uuid>>,
    comment: String,
    error: Option<String>,
}

/// The request, for those who may see it: its requester, whoever may decide on it now or
/// decided on it, administrators and auditors. Anyone else gets not found, as for an
/// unknown id.
async fn visible(state: &AppState, user: &CurrentUser, id: Uuid) -> AppResult<Header> {
    crate::app::requests::visible(state, &crate::app::Actor::from(user), id)
        .await?
        .ok_or(AppError::NotFound)
}

/// The request page.
pub async fn show(
    State(state): State<AppState>,
    chrome: Chrome,
    user: CurrentUser,
    PathId(id): PathId,
) -> AppResult<RequestPage> {
    let header = visible(&state, &user, id).await?;
    let kept = Kept {
        ticked: None,
        comment: String::new(),
        error: None,
    };
    page(&state, chrome, &user, header, kept).await
}

/// Approve or Deny the ticked resources of the request, through the Approvals tab's code.
/// A refusal re-shows the page with what was ticked and typed.
pub async fn decide(
    State(state): State<AppState>,
    chrome: Chrome,
    user: CurrentUser,
    session: Session,
    ClientAddr(client): ClientAddr,
    PathId(id): PathId,
    Form(form): Form<DecisionForm>,
) -> AppResult<Response> {
    let header = visible(&state, &user, id).await?;
    let named = uuids(&form.id, 200);
    let ticked = db::request_page::sessions_of(&state.db, header.id, &named).await?;
    let asked = form.asked().and_then(|asked| {
        if ticked.is_empty() {
            Err("Tick the resources to decide on first.".to_owned())
        } else {
            Ok(asked)
        }
    });
    let asked = match asked {
        Ok(asked) => asked,
        Err(message) => {
            let kept = Kept {
                ticked: Some(ticked),
                comment: form.comment.chars().take(MAX_COMMENT * 2).collect(),
                error: Some(message),
            };
            let page = page(&state, chrome, &user, header, kept).await?;
            return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
        }
    };
    approvals::apply(&state, &user, &session, client, &ticked, &asked).await?;
    Ok(Redirect::to(&format!("/requests/{}", header.id)).into_response())
}

async fn page(
    state: &AppState,
    chrome: Chrome,
    user: &CurrentUser,
    r: Header,
    kept: Kept,
) -> AppResult<RequestPage> {
    let tz = user.time_zone;
    let local = |at| format_local(tz.local(at));
    let decidable = db::approvals::waiting_sessions(&state.db, user.id, &[r.id]).await?;
    let resources = db::request_page::resources(&state.db, r.id)
        .await?
        .into_iter()
        .map(|s: Resource| {
            let may = decidable.contains(&s.session_id);
            ResourceView {
                ticked: may
                    && kept
                        .ticked
                        .as_ref()
                        .is_none_or(|t| t.contains(&s.session_id)),
                decidable: may,
                session: s.session_id,
                name: s.resource_name,
                login_account: s.login_account.unwrap_or_default(),
                status: s.status,
                tier: s
                    .current_tier
                    .map(|t| format!("tier {t} of {}", r.tier_count))
                    .unwrap_or_default(),
                end: local(s.ends_at),
            }
        })
        .collect();
    let decisions = db::request_page::decisions(&state.db, r.id)
        .await?
        .into_iter()
        .map(|d: DecisionRow| DecisionView {
            resource: d.resource_name,
            tier: d.tier,
            approver: d.approver_name,
            approved: d.decision == Decision::Approved,
            comment: d.comment,
            at: local(d.decided_at),
        })
        .collect();
    let recent = db::request_page::recent(&state.db, r.requester_id, r.id)
        .await?
        .into_iter()
        .map(|o: Recent| RecentView {
            id: o.id,
            requested: local(o.created_at),
            activity: o.activity_name,
            outcome: outcome(&o.statuses),
        })
        .collect();
    Ok(RequestPage {
        chrome: chrome.at("dashboard"),
        requested: local(r.created_at),
        start: local(r.requested_start),
        end: local(r.requested_start + Duration::minutes(i64::from(r.duration_minutes))),
        deadline: r.decision_deadline.map(local).unwrap_or_default(),
        tiers: db::request_page::tiers(&state.db, r.id).await?,
        can_decide: !decidable.is_empty(),
        link_recent: r.requester_id == user.id || matches!(user.role, Role::Admin | Role::Auditor),
        resources,
        decisions,
        recent,
        r,
        comment: kept.comment,
        error: kept.error,
        max_comment: MAX_COMMENT,
        time_zone: tz.name(),
    })
}

/// "Approval Denied", or "Ended, Canceled" for a request whose sessions ended differently.
fn outcome(statuses: &[SessionStatus]) -> String {
    let mut labels: Vec<&str> = Vec::new();
    for s in statuses {
        if !labels.contains(&s.label()) {
            labels.push(s.label());
        }
    }
    labels.join(", ")
}
