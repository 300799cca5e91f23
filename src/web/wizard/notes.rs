//! Page 3, Notes: Notes and Ticket Number, required and checked as the profile says.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use tower_sessions::Session;

use super::{At, AtStep, OnNotes, StepView, at_step, cancel, steps};
use crate::auth::session;
use crate::db::catalog::Grant;
use crate::domain::wizard::{self, Draft, MAX_NOTES, MAX_TICKET, NotesErrors, NotesRules, Step};
use crate::state::AppState;
use crate::ticket_validation::{self, OnFailure, TicketCheck};
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
    notes: String,
    ticket: String,
    errors: NotesErrors,
) -> NotesPage {
    NotesPage {
        chrome: chrome.at("dashboard"),
        steps: steps(draft, Step::Notes),
        notes,
        ticket,
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
    let (notes, ticket) = (draft.notes.clone(), draft.ticket.clone());
    let mut p = page(
        chrome,
        &draft,
        &grant,
        notes,
        ticket,
        NotesErrors::default(),
    );
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
    let go = form.go.as_str();
    if go == "cancel" {
        return Ok(cancel(&session).await?.into_response());
    }
    let AtStep { mut draft, grant } = match at_step(&state, &user, &session, Step::Notes).await? {
        Ok(at) => at,
        Err(elsewhere) => return Ok(elsewhere),
    };
    // Bounded before anything is stored in the session.
    let notes: String = form.notes.chars().take(MAX_NOTES + 1).collect();
    let ticket: String = form.ticket.chars().take(MAX_TICKET + 1).collect();
    let checked = wizard::check_notes(&notes, &ticket, &rules(&grant));
    if go == "back" {
        // Back keeps what was typed, valid or not.
        draft.notes_done = checked.is_ok();
        draft.notes = notes;
        draft.ticket = ticket;
        session::save_draft(&session, &draft).await?;
        return Ok(Redirect::to(Step::Resources.path()).into_response());
    }
    match checked {
        Ok((notes, ticket)) => {
            // The profile's ticket validator, asked at every Next (a ticket may close).
            let validator = if ticket.is_empty() {
                None
            } else {
                crate::db::profiles::validator(&state.db, grant.profile.id).await?
            };
            draft.ticket_check = None;
            if let Some(v) = validator {
                let check =
                    ticket_validation::check(&v, &ticket, &user.username, &grant.activity_name)
                        .await;
                draft.ticket_check = Some(check.clone());
                if !check.is_open() {
                    if v.on_failure == OnFailure::Block {
                        draft.notes_done = false;
                        session::save_draft(&session, &draft).await?;
                        let errors = NotesErrors {
                            notes: None,
                            ticket: Some(format!(
                                "{} This access needs a ticket that is open: correct the number, or try again later.",
                                check.message
                            )),
                        };
                        let mut p = page(chrome, &draft, &grant, notes, ticket, errors);
                        p.ticket_check = Some(check);
                        return Ok((StatusCode::UNPROCESSABLE_ENTITY, p).into_response());
                    }
                    session::flash(
                        &session,
                        session::FlashKind::Info,
                        format!(
                            "Warning: {} You can go on: the warning is recorded with the request for the approvers.",
                            check.message
                        ),
                    )
                    .await?;
                }
            }
            draft.notes = notes;
            draft.ticket = ticket;
            draft.notes_done = true;
            session::save_draft(&session, &draft).await?;
            Ok(Redirect::to(Step::Scheduling.path()).into_response())
        }
        Err(errors) => {
            draft.notes_done = false;
            session::save_draft(&session, &draft).await?;
            let p = page(chrome, &draft, &grant, notes, ticket, errors);
            Ok((StatusCode::UNPROCESSABLE_ENTITY, p).into_response())
        }
    }
}
