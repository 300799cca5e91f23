//! Finish: re-checks the draft against the policies as they are now and creates the request
//! and its sessions in one transaction. The draft's id is the request's id, so a double
//! click, a second tab or a replayed POST lands on the same result and creates nothing more.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use time::OffsetDateTime;
use tower_sessions::Session;
use uuid::Uuid;

use super::{cancel, grant_lost, guard, load};
use crate::auth::session::{self, FlashKind};
use crate::db::requests::{self, Created, NewRequest};
use crate::domain::status::SessionStatus;
use crate::domain::wizard::{self, Schedule, Step};
use crate::state::AppState;
use crate::web::chrome::Chrome;
use crate::web::client::ClientAddr;
use crate::web::error::AppResult;
use crate::web::form::MultiForm;
use crate::web::guard::CurrentUser;

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

pub async fn submit(
    State(state): State<AppState>,
    chrome: Chrome,
    user: CurrentUser,
    session: Session,
    ClientAddr(client): ClientAddr,
    MultiForm(form): MultiForm,
) -> AppResult<Response> {
    match form.text("go") {
        "cancel" => return Ok(cancel(&session).await?.into_response()),
        "back" => return Ok(Redirect::to(Step::Scheduling.path()).into_response()),
        _ => {}
    }
    // A replay after the draft was cleared: the posted draft id finds the finished request.
    let posted = Uuid::parse_str(form.text("draft_id")).ok();
    let draft = session::draft(&session).await?;
    let finished_id = match (&draft, posted) {
        (Some(d), Some(p)) if d.id != p => Some(p),
        (None, Some(p)) => Some(p),
        _ => None,
    };
    if let Some(id) = finished_id
        && let Some(created) = requests::existing(&state.db, id, user.id).await?
    {
        session::flash(&session, FlashKind::Success, summary(&created)).await?;
        return Ok(Redirect::to("/dashboard").into_response());
    }
    let mut draft = match draft {
        Some(d) => d,
        None => load(&session).await?,
    };
    if let Some(r) = guard(&draft, Step::Review) {
        return Ok(r.into_response());
    }
    if let Some(created) = requests::existing(&state.db, draft.id, user.id).await? {
        return done(&session, &created, false).await;
    }
    let (Some(activity), Some(policy)) = (draft.activity_id, draft.policy_id) else {
        return Ok(Redirect::to(Step::RequestType.path()).into_response());
    };

    let mut tx = state.db.begin().await?;
    let (grant, resources) =
        match requests::recheck(&mut tx, user.id, activity, policy, &draft.resource_ids).await? {
            Ok(ok) => ok,
            Err(message) => {
                tx.rollback().await?;
                if crate::db::catalog::grant(&state.db, user.id, activity, policy)
                    .await?
                    .is_none()
                {
                    session::flash(&session, FlashKind::Error, message).await?;
                    return Ok(grant_lost(&session, &mut draft).await?.into_response());
                }
                return refuse(&state, chrome, &user, &draft, message).await;
            }
        };
    let notes = wizard::check_notes(&draft.notes, &draft.ticket, &super::notes::rules(&grant));
    let schedule = draft.schedule.clone().unwrap_or(Schedule::Now);
    let window = wizard::check_schedule(
        &schedule,
        user.time_zone,
        OffsetDateTime::now_utc(),
        super::scheduling::rules(&grant),
    );
    let ((notes, ticket), window) = match (notes, window) {
        (Ok(n), Ok(w)) => (n, w),
        (Err(e), _) => {
            tx.rollback().await?;
            let message = e.notes.or(e.ticket).unwrap_or_default();
            return refuse(&state, chrome, &user, &draft, format!("The connection profile changed: {message} Nothing was created; go back to Notes.")).await;
        }
        (_, Err(e)) => {
            tx.rollback().await?;
            return refuse(
                &state,
                chrome,
                &user,
                &draft,
                format!(
                    "{} Nothing was created; go back to Scheduling.",
                    e.message()
                ),
            )
            .await;
        }
    };
    // A profile with a ticket validator needs the Notes page's answer about this ticket:
    // open, or (when the profile only warns) recorded as it was.
    let validator = if ticket.is_empty() {
        None
    } else {
        crate::db::profiles::validator(&mut *tx, grant.profile.id).await?
    };
    let ticket_check = match validator {
        None => None,
        Some(v) => match draft.ticket_check.as_ref().filter(|c| c.ticket == ticket) {
            Some(c) if c.is_open() || v.on_failure == crate::ticket_validation::OnFailure::Warn => {
                Some(c.clone())
            }
            _ => {
                tx.rollback().await?;
                return refuse(
                    &state,
                    chrome,
                    &user,
                    &draft,
                    "The ticket system has not confirmed that the ticket is open. Nothing was created; go back to Notes.".into(),
                )
                .await;
            }
        },
    };
    let created = requests::create(
        &mut tx,
        &NewRequest {
            id: draft.id,
            requester: user.id,
            requester_name: &user.display_name,
            grant: &grant,
            resources: &resources,
            notes: &notes,
            ticket: &ticket,
            window,
            client,
        },
    )
    .await?;
    if let (Some(_), Some(check)) = (&created, &ticket_check) {
        requests::record_ticket_check(&mut tx, draft.id, check).await?;
    }
    tx.commit().await?;
    let Some(mut created) = created else {
        // Another submission of this draft committed first.
        let created = requests::existing(&state.db, draft.id, user.id)
            .await?
            .unwrap_or(Created {
                sessions: 0,
                status: SessionStatus::WaitingForApproval,
                to_provision: Vec::new(),
                new: false,
            });
        return done(&session, &created, window.start_now).await;
    };
    tracing::info!(request = %draft.id, sessions = created.sessions, status = created.status.label(), "request created");
    if !created.to_provision.is_empty() {
        // Starting now: prepare the login accounts at once rather than on the worker's next
        // tick. A failure here is retried by the worker.
        match crate::worker::provision(&state.db, &state.secrets, Some(&created.to_provision)).await
        {
            Ok(_) => {
                if let Some(now) = requests::existing(&state.db, draft.id, user.id).await? {
                    created.status = now.status;
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "immediate provisioning failed; the worker will retry")
            }
        }
    }
    done(&session, &created, window.start_now).await
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
