//! Page 3, Notes: Notes and Ticket Number, required and checked as the profile says.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use tower_sessions::Session;

use super::{At, AtStep, OnNotes, StepView, at_step, cancel, steps};
use crate::app::{self, wizard::NotesStep};
use crate::auth::session::{self, FlashKind};
use crate::db::catalog::Grant;
use crate::domain::wizard::{
    Draft, MAX_NOTES, MAX_TICKET, NotesErrors, NotesRules, Step, TypedNotes,
};
use crate::state::AppState;
use crate::ticket_validation::TicketCheck;
use crate::web::chrome::Chrome;
use crate::web::error::AppResult;
use crate::web::form::{Form, first};
use crate::web::guard::CurrentUser;

#[derive(Template, WebTemplate)]
#[template(path = "wizard/notes.html")]
pub struct NotesPage {
    chrome: Chrome,
    steps: Vec<StepView>,
    notes: String,
    ticket: String,
    notes_required: bool,
    ticket_required: bool,
    /// A ticket number the profile's pattern accepts, shown as "like CHG123456".
    ticket_example: Option<String>,
    max_notes: usize,
    max_ticket: usize,
    errors: NotesErrors,
    /// The ticket validator's answer about the ticket shown, if it was asked.
    ticket_check: Option<TicketCheck>,
}

/// The Notes rules of a grant's profile.
pub fn rules(grant: &Grant) -> NotesRules {
    crate::app::requests::notes_rules(grant)
}

fn page(
    chrome: Chrome,
    draft: &Draft,
    grant: &Grant,
    shown: TypedNotes,
    errors: NotesErrors,
) -> NotesPage {
    NotesPage {
        chrome: chrome.at("dashboard"),
        steps: steps(draft, Step::Notes),
        notes: shown.notes,
        ticket: shown.ticket,
        notes_required: grant.profile.notes_required,
        ticket_required: grant.profile.ticket_required,
        ticket_example: grant
            .profile
            .ticket_pattern
            .as_deref()
            .and_then(crate::domain::ticket_sample::sample),
        max_notes: MAX_NOTES,
        max_ticket: MAX_TICKET,
        errors,
        ticket_check: None,
    }
}

pub async fn show(
    State(_state): State<AppState>,
    chrome: Chrome,
    At(AtStep { draft, grant }, _): At<OnNotes>,
) -> AppResult<Response> {
    let shown = TypedNotes {
        notes: draft.notes.clone(),
        ticket: draft.ticket.clone(),
    };
    let mut p = page(chrome, &draft, &grant, shown, NotesErrors::default());
    p.ticket_check = draft
        .ticket_check
        .clone()
        .filter(|c| c.ticket == draft.ticket);
    Ok(p.into_response())
}

/// The Notes step: the button pressed, the notes and the ticket.
#[derive(serde::Deserialize)]
pub struct NotesForm {
    #[serde(default, deserialize_with = "first")]
    go: String,
    #[serde(default, deserialize_with = "first")]
    notes: String,
    #[serde(default, deserialize_with = "first")]
    ticket: String,
}

pub async fn submit(
    State(state): State<AppState>,
    chrome: Chrome,
    user: CurrentUser,
    session: Session,
    Form(form): Form<NotesForm>,
) -> AppResult<Response> {
    if form.go == "cancel" {
        return Ok(cancel(&session).await?.into_response());
    }
    let AtStep { mut draft, grant } = match at_step(&state, &user, &session, Step::Notes).await? {
        Ok(at) => at,
        Err(elsewhere) => return Ok(elsewhere),
    };
    // Bounded before anything is stored in the session.
    let typed = TypedNotes::bounded(&form.notes, &form.ticket);
    if form.go == "back" {
        draft.keep_typed_notes(typed, &rules(&grant));
        session::save_draft(&session, &draft).await?;
        return Ok(Redirect::to(Step::Resources.path()).into_response());
    }
    let actor = app::Actor::from(&user);
    let step = app::wizard::take_notes(&state, &actor, &grant, &mut draft, &typed).await?;
    session::save_draft(&session, &draft).await?;
    let (shown, errors, check) = match step {
        NotesStep::Taken { warning } => return taken(&session, warning).await,
        NotesStep::Invalid(errors) => (typed, errors, None),
        NotesStep::TicketNotOpen { check, checked } => {
            let errors = NotesErrors {
                notes: None,
                ticket: Some(ticket_not_open(&check)),
            };
            (checked, errors, Some(check))
        }
    };
    let mut p = page(chrome, &draft, &grant, shown, errors);
    p.ticket_check = check;
    Ok((StatusCode::UNPROCESSABLE_ENTITY, p).into_response())
}

/// Notes taken: on to Scheduling, with the validator's warning if the profile only warns.
async fn taken(session: &Session, warning: Option<TicketCheck>) -> AppResult<Response> {
    if let Some(check) = warning {
        let warning = format!(
            "Warning: {} You can go on: the warning is recorded with the request for the approvers.",
            check.message
        );
        session::flash(session, FlashKind::Info, warning).await?;
    }
    Ok(Redirect::to(Step::Scheduling.path()).into_response())
}

/// The validator has not said the ticket is open, and the profile blocks (also the API's
/// words).
pub fn ticket_not_open(check: &TicketCheck) -> String {
    format!(
        "{} This access needs a ticket that is open: correct the number, or try again later.",
        check.message
    )
}
