//! The Activity Request wizard (Create Session): five pages, each with Back, Next and
//! Cancel. The draft lives in the server-side session; nothing touches the sessions tables
//! before Finish.

pub mod finish;
pub mod notes;
pub mod request_type;
pub mod resources;
pub mod review;
pub mod scheduling;

use askama::Template;
use askama_web::WebTemplate;
use std::marker::PhantomData;

use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Redirect, Response};
use tower_sessions::Session;

use crate::auth::session::{self, FlashKind};
use crate::db::catalog::{self, Grant};
use crate::domain::wizard::{Draft, Step};
use crate::state::AppState;
use crate::web::chrome::Chrome;
use crate::web::error::AppResult;
use crate::web::guard::CurrentUser;
use crate::web::route_table::{Access, Routes, get, post};

pub fn routes() -> Routes {
    Routes::new(Access::User)
        .route("/wizard", get(start).post(start_over))
        .route("/wizard/scheduling/window", get(scheduling::window))
        .route(
            "/wizard/request-type",
            get(request_type::show).post(request_type::submit),
        )
        .route(
            "/wizard/resources",
            get(resources::show).post(resources::submit),
        )
        .route("/wizard/notes", get(notes::show).post(notes::submit))
        .route(
            "/wizard/scheduling",
            get(scheduling::show).post(scheduling::submit),
        )
        .route("/wizard/review", get(review::show))
        .route("/wizard/finish", post(finish::submit))
}

/// One entry of the step list at the top of every page.
pub struct StepView {
    pub title: &'static str,
    pub path: &'static str,
    pub current: bool,
    pub done: bool,
    /// Reachable now (done, current, or the first unfinished one).
    pub link: bool,
}

/// The step list for `current`.
pub fn steps(draft: &Draft, current: Step) -> Vec<StepView> {
    let first_open = draft.first_incomplete();
    Step::ALL
        .into_iter()
        .map(|s| StepView {
            title: s.title(),
            path: s.path(),
            current: s == current,
            done: s < first_open && s != current,
            link: s <= first_open && s != current,
        })
        .collect()
}

/// Create Session with a draft under way: it says so and offers Continue or Start over.
#[derive(Template, WebTemplate)]
#[template(path = "wizard/draft.html")]
pub struct DraftPrompt {
    chrome: Chrome,
    /// Where Continue goes: the first page that still needs input.
    continue_to: &'static str,
    continue_title: &'static str,
    activity: Option<String>,
    resources: usize,
}

/// Create Session: a new draft starts at Request Type; a draft under way is not resumed
/// silently: the page says so and offers Continue (to the step reached) or Start over.
pub async fn start(
    State(state): State<AppState>,
    chrome: Chrome,
    user: CurrentUser,
    session: Session,
) -> AppResult<Response> {
    let draft = load(&session).await?;
    if !draft.in_progress() {
        return Ok(Redirect::to(Step::RequestType.path()).into_response());
    }
    let activity = draft_grant(&state, &user, &draft)
        .await?
        .map(|g| g.activity_name);
    let step = draft.first_incomplete();
    Ok(DraftPrompt {
        chrome: chrome.at("dashboard"),
        continue_to: step.path(),
        continue_title: step.title(),
        activity,
        resources: draft.resource_ids.len(),
    }
    .into_response())
}

/// Start over: discards the draft under way and opens a new one at Request Type.
pub async fn start_over(session: Session) -> AppResult<Redirect> {
    session::clear_draft(&session).await?;
    session::save_draft(&session, &Draft::new()).await?;
    Ok(Redirect::to(Step::RequestType.path()))
}

/// The draft under way, or a new one (stored).
pub async fn load(session: &Session) -> AppResult<Draft> {
    match session::draft(session).await? {
        Some(d) => Ok(d),
        None => {
            let d = Draft::new();
            session::save_draft(session, &d).await?;
            Ok(d)
        }
    }
}

/// Where a page request must go instead, when an earlier page is unfinished.
pub fn guard(draft: &Draft, step: Step) -> Option<Redirect> {
    let allowed = draft.allowed(step);
    (allowed != step).then(|| Redirect::to(allowed.path()))
}

/// The draft at one page after Request Type, with the grant behind its activity and policy:
/// what each of those pages starts from.
pub struct AtStep {
    pub draft: Draft,
    pub grant: Grant,
}

/// The draft at `step` with its grant, or the answer instead: the first unfinished page when
/// an earlier one is still open, or Request Type when the policy no longer grants the
/// activity (with a message).
pub async fn at_step(
    state: &AppState,
    user: &CurrentUser,
    session: &Session,
    step: Step,
) -> AppResult<Result<AtStep, Response>> {
    let mut draft = load(session).await?;
    if let Some(r) = guard(&draft, step) {
        return Ok(Err(r.into_response()));
    }
    Ok(match draft_grant(state, user, &draft).await? {
        Some(grant) => Ok(AtStep { draft, grant }),
        None => Err(grant_lost(session, &mut draft).await?.into_response()),
    })
}

/// A wizard page, as a type: which step it is.
pub trait Page: Send + Sync + 'static {
    const STEP: Step;
}

pub struct OnResources;
pub struct OnNotes;
pub struct OnScheduling;
pub struct OnReview;

impl Page for OnResources {
    const STEP: Step = Step::Resources;
}
impl Page for OnNotes {
    const STEP: Step = Step::Notes;
}
impl Page for OnScheduling {
    const STEP: Step = Step::Scheduling;
}
impl Page for OnReview {
    const STEP: Step = Step::Review;
}

/// The extractor for showing page `P`: the draft at it with its grant ([`at_step`]); the
/// request is answered by the redirect instead when there is none. (A submit first honours
/// Cancel, whatever the draft's state, then calls [`at_step`].)
pub struct At<P: Page>(pub AtStep, PhantomData<P>);

impl<P: Page> FromRequestParts<AppState> for At<P> {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let user = CurrentUser::from_request_parts(parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let session = Session::from_request_parts(parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        match at_step(state, &user, &session, P::STEP).await {
            Ok(Ok(at)) => Ok(At(at, PhantomData)),
            Ok(Err(elsewhere)) => Err(elsewhere),
            Err(e) => Err(e.into_response()),
        }
    }
}

/// The grant behind the draft's activity and policy, if it still holds.
pub async fn draft_grant(
    state: &AppState,
    user: &CurrentUser,
    draft: &Draft,
) -> AppResult<Option<Grant>> {
    match (draft.activity_id, draft.policy_id) {
        (Some(a), Some(p)) => Ok(catalog::grant(&state.db, user.id, a, p).await?),
        _ => Ok(None),
    }
}

/// When the draft's grant is gone (a policy changed mid-wizard), back to the first page.
pub async fn grant_lost(session: &Session, draft: &mut Draft) -> AppResult<Redirect> {
    draft.activity_id = None;
    draft.policy_id = None;
    session::save_draft(session, draft).await?;
    session::flash(
        session,
        FlashKind::Error,
        "The access policy no longer grants your chosen activity. Select Activity again.",
    )
    .await?;
    Ok(Redirect::to(Step::RequestType.path()))
}

/// Cancel: discards the draft.
pub async fn cancel(session: &Session) -> AppResult<Redirect> {
    session::clear_draft(session).await?;
    session::flash(
        session,
        FlashKind::Info,
        "Activity Request canceled. Nothing was created.",
    )
    .await?;
    Ok(Redirect::to("/dashboard"))
}
