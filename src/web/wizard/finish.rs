//! Finish: hands the draft to `app::requests::finish`, which re-checks it against the
//! policies as they are now and creates the request and its sessions in one transaction.
//! The draft's id is the request's id, so a double click, a second tab or a replayed POST
//! lands on the same result and creates nothing more.

use super::{cancel, grant_lost, guard, load};
use crate::app;
use crate::app::requests::{Finish, Finished, Refusal};
use crate::auth::session::{self, FlashKind};
use crate::db::requests::Created;
use crate::domain::status::SessionStatus;
use crate::domain::wizard::{self, Draft, Step};
use crate::state::AppState;
use crate::web::chrome::Chrome;
use crate::web::client::ClientAddr;
use crate::web::error::{AppError, AppResult};
use crate::web::form::{Form, first};
use crate::web::guard::CurrentUser;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use tower_sessions::Session;
use uuid::Uuid;

/// The message after Finish, naming how many sessions and their status.
pub fn summary(created: &Created) -> String {
    let noun = if created.sessions == 1 {
        "activity session"
    } else {
        "activity sessions"
    };
    format!(
        "Created {} {noun}: {}.",
        created.sessions,
        created.status.label()
    )
}

/// Where the new sessions are listed.
fn landing(status: SessionStatus, start_now: bool) -> &'static str {
    match (status, start_now) {
        (SessionStatus::Pending, _) | (SessionStatus::WaitingForApproval, false) => {
            "/dashboard/scheduled"
        }
        _ => "/dashboard",
    }
}

async fn done(session: &Session, created: &Created, start_now: bool) -> AppResult<Response> {
    session::clear_draft(session).await?;
    session::flash(session, FlashKind::Success, summary(created)).await?;
    Ok(Redirect::to(landing(created.status, start_now)).into_response())
}

/// Submit on the last step: the button pressed, and the draft the page was shown for.
#[derive(serde::Deserialize)]
pub struct FinishForm {
    #[serde(default, deserialize_with = "first")]
    go: String,
    #[serde(default, deserialize_with = "first")]
    draft_id: String,
}

pub async fn submit(
    State(state): State<AppState>,
    chrome: Chrome,
    user: CurrentUser,
    session: Session,
    ClientAddr(client): ClientAddr,
    Form(form): Form<FinishForm>,
) -> AppResult<Response> {
    match form.go.as_str() {
        "cancel" => return Ok(cancel(&session).await?.into_response()),
        "back" => return Ok(Redirect::to(Step::Scheduling.path()).into_response()),
        _ => {}
    }
    let actor = app::Actor::from(&user);
    let mut draft = match draft_to_finish(&state, &actor, &session, &form.draft_id).await? {
        Ok(draft) => draft,
        Err(answer) => return Ok(answer),
    };
    let Some(input) = Finish::of_draft(&draft) else {
        return Ok(Redirect::to(Step::RequestType.path()).into_response());
    };
    let refusal = match app::requests::finish(&state, &actor, client, &input).await? {
        Finished::Created {
            created, start_now, ..
        } => return done(&session, &created, start_now).await,
        Finished::Already { created, .. } => return done(&session, &created, false).await,
        Finished::Refused(refusal) => refusal,
    };
    if let Refusal::GrantLost(message) = refusal {
        session::flash(&session, FlashKind::Error, message).await?;
        return Ok(grant_lost(&session, &mut draft).await?.into_response());
    }
    refuse(&state, chrome, &user, &draft, refused_text(refusal)?).await
}

/// The draft to finish, or the answer instead: a Finish posted again after its draft was
/// cleared finds the request it created; a draft with a page still open goes to that page.
async fn draft_to_finish(
    state: &AppState,
    actor: &app::Actor,
    session: &Session,
    posted: &str,
) -> AppResult<Result<Draft, Response>> {
    let posted = Uuid::parse_str(posted).ok();
    let draft = session::draft(session).await?;
    if let Some(created) =
        app::wizard::finished_before(state, actor, draft.as_ref(), posted).await?
    {
        session::flash(session, FlashKind::Success, summary(&created)).await?;
        return Ok(Err(Redirect::to("/dashboard").into_response()));
    }
    let draft = match draft {
        Some(d) => d,
        None => load(session).await?,
    };
    Ok(match guard(&draft, Step::Review) {
        Some(elsewhere) => Err(elsewhere.into_response()),
        None => Ok(draft),
    })
}

/// Why Finish created nothing, and where to go back to correct it.
fn refused_text(refusal: Refusal) -> AppResult<String> {
    Ok(match refusal {
        Refusal::GrantLost(message) | Refusal::Resources(message) => message,
        Refusal::Notes(e) => {
            let message = e.notes.or(e.ticket).unwrap_or_default();
            format!(
                "The connection profile changed: {message} Nothing was created; go back to Notes."
            )
        }
        Refusal::Schedule(e) => {
            format!("{} Nothing was created; go back to Scheduling.", e.message())
        }
        Refusal::TicketNotOpen(_) => {
            "The ticket system has not confirmed that the ticket is open. Nothing was created; go back to Notes.".into()
        }
        Refusal::Duration(message) => message,
        Refusal::KeyReused => {
            return Err(AppError::internal("the wizard uses no idempotency key"));
        }
    })
}

async fn refuse(
    state: &AppState,
    chrome: Chrome,
    user: &CurrentUser,
    draft: &wizard::Draft,
    message: String,
) -> AppResult<Response> {
    let Some(grant) = super::draft_grant(state, user, draft).await? else {
        return Ok(Redirect::to(Step::RequestType.path()).into_response());
    };
    let page = super::review::page(state, chrome, user, draft, &grant, Some(message)).await?;
    Ok((StatusCode::CONFLICT, page).into_response())
}
