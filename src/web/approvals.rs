//! Dashboard > Approvals: the requests waiting for the signed-in approver, and Approve /
//! Deny on the ticked rows with a comment.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Query, State};
use axum::response::Redirect;
use serde::Deserialize;
use tower_sessions::Session;
use uuid::Uuid;

use crate::AppState;
use crate::auth::CurrentUser;
use crate::auth::session::{self, FlashKind};
use crate::db;
use crate::db::approvals::{Decide, Decision, Outcome, Row};
use crate::domain::status::SessionStatus;
use crate::domain::wizard::format_local;
use crate::error::AppResult;
use crate::web::chrome::Chrome;
use crate::web::client::ClientAddr;
use crate::web::form::MultiForm;

/// Longest decision comment.
pub const MAX_COMMENT: usize = 1000;

/// A row formatted for the viewer.
pub struct RowView {
    pub id: Uuid,
    pub status: SessionStatus,
    pub requested: String,
    pub requester: String,
    pub resource: String,
    pub login_account: String,
    pub activity: String,
    pub start: String,
    pub end: String,
    pub notes: String,
    pub ticket: String,
    pub tier: String,
    pub approvals: String,
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
        .map(|r: Row| RowView {
            id: r.id,
            status: r.status,
            requested: format_local(tz.local(r.created_at)),
            requester: r.requester_name,
            resource: r.resource_name,
            login_account: r.login_account.unwrap_or_default(),
            activity: r.activity_name,
            start: format_local(tz.local(r.requested_start)),
            end: format_local(tz.local(r.ends_at)),
            notes: r.notes,
            ticket: r.ticket_number,
            tier: format!("{} of {}", r.current_tier, r.tier_count),
            approvals: format!("{} of {} approvals", r.approvals, r.approvals_required),
        })
        .collect();
    Ok(ApprovalsPage {
        chrome: chrome.at("approvals"),
        rows,
        search,
        time_zone: tz.name(),
        max_comment: MAX_COMMENT,
    })
}

/// Approve or Deny on the ticked rows. A denial needs a comment. Each row is its own
/// transaction: one refused row does not undo the others.
pub async fn decide(
    State(state): State<AppState>,
    user: CurrentUser,
    session: Session,
    ClientAddr(client): ClientAddr,
    MultiForm(form): MultiForm,
) -> AppResult<Redirect> {
    // Someone who is no approver (a hand-made POST) has no Approvals tab to return to.
    let back = if user.is_approver {
        "/approvals"
    } else {
        "/dashboard"
    };
    let decision = match form.text("decision") {
        "approve" => Decision::Approved,
        "deny" => Decision::Denied,
        _ => {
            session::flash(&session, FlashKind::Error, "Choose Approve or Deny.").await?;
            return Ok(Redirect::to(back));
        }
    };
    let comment = form.text("comment").trim();
    if comment.chars().count() > MAX_COMMENT {
        session::flash(
            &session,
            FlashKind::Error,
            format!("The comment can be at most {MAX_COMMENT} characters."),
        )
        .await?;
        return Ok(Redirect::to(back));
    }
    if decision == Decision::Denied && comment.is_empty() {
        session::flash(
            &session,
            FlashKind::Error,
            "A comment is required to deny: say why.",
        )
        .await?;
        return Ok(Redirect::to(back));
    }
    let ids: Vec<Uuid> = form
        .all("id")
        .filter_map(|s| Uuid::parse_str(s).ok())
        .collect();
    if ids.is_empty() {
        session::flash(
            &session,
            FlashKind::Error,
            "Tick the requests to decide first.",
        )
        .await?;
        return Ok(Redirect::to(back));
    }
    let (mut approved, mut denied) = (0, 0);
    let mut to_provision = Vec::new();
    for id in ids.iter().take(200) {
        let mut tx = state.db.begin().await?;
        let result = db::approvals::decide(
            &mut tx,
            &Decide {
                session: *id,
                approver: user.id,
                approver_name: &user.display_name,
                decision,
                comment,
                client,
                tz: user.time_zone,
            },
        )
        .await?;
        match result {
            Ok(outcome) => {
                tx.commit().await?;
                match outcome {
                    Outcome::Denied => denied += 1,
                    Outcome::Approved(SessionStatus::Provisioning) => {
                        approved += 1;
                        to_provision.push(*id);
                    }
                    _ => approved += 1,
                }
            }
            Err(refused) => {
                // A refusal wrote nothing, except the ending of a request whose grant lapsed,
                // which stays.
                tx.commit().await?;
                session::flash(&session, FlashKind::Error, refused.to_string()).await?;
            }
        }
    }
    if !to_provision.is_empty()
        && let Err(e) =
            crate::worker::provision(&state.db, &state.secrets, Some(&to_provision)).await
    {
        tracing::warn!(error = %e, "immediate provisioning failed; the worker will retry");
    }
    if approved > 0 {
        session::flash(
            &session,
            FlashKind::Success,
            format!("Approved {approved} {}.", plural(approved)),
        )
        .await?;
    }
    if denied > 0 {
        session::flash(
            &session,
            FlashKind::Success,
            format!("Denied {denied} {}.", plural(denied)),
        )
        .await?;
    }
    Ok(Redirect::to(back))
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "request" } else { "requests" }
}
