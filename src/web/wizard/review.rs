//! Page 5, Review: everything chosen, with links back, who must approve, and Finish.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use time::OffsetDateTime;

use super::{At, AtStep, OnReview, StepView, steps};
use crate::db::catalog::{self, Resource, TierView};
use crate::domain::wizard::{self, Schedule, Step};
use crate::state::AppState;
use crate::web::chrome::Chrome;
use crate::web::error::AppResult;
use crate::web::guard::CurrentUser;

#[derive(Template, WebTemplate)]
#[template(path = "wizard/review.html")]
pub struct ReviewPage {
    chrome: Chrome,
    steps: Vec<StepView>,
    draft_id: String,
    activity: String,
    platform: String,
    protocol: &'static str,
    login_account: &'static str,
    policy: String,
    profile: String,
    resources: Vec<Resource>,
    notes: String,
    ticket: String,
    start_now: bool,
    window: String,
    approval: bool,
    tiers: Vec<TierView>,
    error: Option<String>,
    /// The ticket validator's answer about the ticket.
    ticket_check: Option<crate::ticket_validation::TicketCheck>,
}

/// Builds the Review page for the draft (also used by Finish to show a refusal).
pub async fn page(
    state: &AppState,
    chrome: Chrome,
    user: &CurrentUser,
    draft: &wizard::Draft,
    grant: &catalog::Grant,
    error: Option<String>,
) -> AppResult<ReviewPage> {
    let resources =
        catalog::granted_subset(&state.db, grant.policy_id, &draft.resource_ids).await?;
    let schedule = draft.schedule.clone().unwrap_or(Schedule::Now);
    let window = wizard::check_schedule(
        &schedule,
        user.time_zone,
        OffsetDateTime::now_utc(),
        super::scheduling::rules(grant),
    )
    .map(|w| super::scheduling::describe(&w, user.time_zone))
    .unwrap_or_else(|e| e.message().to_owned());
    let tiers = if grant.profile.approval_required {
        catalog::tiers(&state.db, grant.profile.id).await?
    } else {
        Vec::new()
    };
    Ok(ReviewPage {
        chrome: chrome.at("dashboard"),
        steps: steps(draft, Step::Review),
        draft_id: draft.id.to_string(),
        activity: grant.activity_name.clone(),
        platform: grant.activity_platform.clone(),
        protocol: grant.protocol.label(),
        login_account: grant.login_mode.label(),
        policy: grant.policy_name.clone(),
        profile: grant.profile.name.clone(),
        resources,
        notes: draft.notes.clone(),
        ticket: draft.ticket.clone(),
        start_now: schedule == Schedule::Now,
        window,
        approval: !tiers.is_empty(),
        tiers,
        error,
        ticket_check: draft
            .ticket_check
            .clone()
            .filter(|c| c.ticket == draft.ticket),
    })
}

pub async fn show(
    State(state): State<AppState>,
    chrome: Chrome,
    user: CurrentUser,
    At(AtStep { draft, grant }, _): At<OnReview>,
) -> AppResult<Response> {
    Ok(page(&state, chrome, &user, &draft, &grant, None)
        .await?
        .into_response())
}
