//! Page 5, Review: everything chosen, with links back, who must approve, and Finish.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::State;
use axum::response::{IntoResponse, Response};

use super::{At, AtStep, OnReview, StepView, steps};
use crate::app;
use crate::db::catalog::{self, Resource, TierView};
use crate::domain::wizard::{self, Step};
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
    let review = app::wizard::review(state, &app::Actor::from(user), draft, grant).await?;
    let window = match &review.window {
        Ok(w) => super::scheduling::describe(w, user.time_zone),
        Err(e) => e.message().to_owned(),
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
        resources: review.resources,
        notes: draft.notes.clone(),
        ticket: draft.ticket.clone(),
        start_now: review.window.is_ok_and(|w| w.start_now),
        window,
        approval: !review.tiers.is_empty(),
        tiers: review.tiers,
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
