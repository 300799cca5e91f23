//! Finish: a request and its sessions, created from a typed input with the wizard's rules,
//! re-checked against the policies as they are now, in one transaction, exactly once per
//! request id (and per idempotency key, for the API).

use std::net::IpAddr;

use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::app::Actor;
use crate::db::catalog::{self, Grant, GrantedActivity};
use crate::db::requests::{self, Created, NewRequest};
use crate::domain::status::SessionStatus;
use crate::domain::wizard::{self, Draft, MAX_RESOURCES, NotesErrors, Schedule, ScheduleError};
use crate::state::AppState;
use crate::ticket_validation::{self, OnFailure, TicketCheck};

/// Request Type: nothing chosen.
pub const SELECT_ACTIVITY: &str = "Select an activity.";
/// Request Type: an activity no policy grants the user.
pub const ACTIVITY_NOT_GRANTED: &str =
    "That activity is not available to you. Select one from the list.";
/// Resource Selection: nothing ticked.
pub const SELECT_RESOURCE: &str = "Select at least one resource.";
/// Resource Selection: a resource the policy does not grant.
pub const RESOURCE_NOT_GRANTED: &str =
    "A selected resource is not available to you under this policy.";

/// Resource Selection: too many ticked.
pub fn too_many_resources(ticked: usize) -> String {
    format!("You can select at most {MAX_RESOURCES} resources; {ticked} are ticked.")
}

/// Where the ticket validator's answer comes from.
#[derive(Debug, Clone)]
pub enum TicketSource {
    /// The wizard's Notes page asked already (its answer, if any, is in the draft).
    Asked(Option<TicketCheck>),
    /// Ask now (the API creates a request in one call).
    AskNow,
}

/// A client-chosen idempotency key and the digest of the body it came with.
#[derive(Debug, Clone)]
pub struct IdempotencyKey {
    pub key: String,
    pub body_sha256: Vec<u8>,
}

impl IdempotencyKey {
    pub fn new(key: &str, body: &[u8]) -> Self {
        Self {
            key: key.to_owned(),
            body_sha256: Sha256::digest(body).to_vec(),
        }
    }
}

/// Everything Finish needs, already typed.
#[derive(Debug, Clone)]
pub struct Finish {
    /// The request's id: the wizard draft's id, so a replayed Finish finds it.
    pub id: Uuid,
    pub activity: Uuid,
    pub policy: Uuid,
    pub resources: Vec<Uuid>,
    pub notes: String,
    pub ticket: String,
    pub schedule: Schedule,
    /// Minutes of the window; `None`: the profile's maximum (the wizard never asks).
    pub duration_minutes: Option<i64>,
    pub ticket_check: TicketSource,
    pub idempotency: Option<IdempotencyKey>,
}

impl Finish {
    /// The wizard's draft as Finish's input: the window as long as the profile allows, the
    /// validator's answer the one the Notes page got. `None` without an activity and policy.
    pub fn of_draft(draft: &Draft) -> Option<Self> {
        Some(Self {
            id: draft.id,
            activity: draft.activity_id?,
            policy: draft.policy_id?,
            resources: draft.resource_ids.clone(),
            notes: draft.notes.clone(),
            ticket: draft.ticket.clone(),
            schedule: draft.schedule.clone().unwrap_or(Schedule::Now),
            duration_minutes: None,
            ticket_check: TicketSource::Asked(draft.ticket_check.clone()),
            idempotency: None,
        })
    }
}

/// Why nothing was created. Each front door words it for its user.
#[derive(Debug, Clone)]
pub enum Refusal {
    /// No policy grants the activity any more (the message says so).
    GrantLost(String),
    /// Some resources are no longer granted (the message names how many).
    Resources(String),
    /// Notes or Ticket Number break the profile's rules.
    Notes(NotesErrors),
    /// The start is not allowed.
    Schedule(ScheduleError),
    /// The duration is longer than the profile allows (it may have changed meanwhile).
    Duration(String),
    /// The profile's ticket validator has not said the ticket is open (its answer, if asked).
    TicketNotOpen(Option<TicketCheck>),
    /// The idempotency key was used before with a different body.
    KeyReused,
}

/// What Finish did.
#[derive(Debug, Clone)]
pub enum Finished {
    /// Created now, or by a concurrent submission of the same id (then `created.new` is
    /// false); `start_now` is the window's.
    Created {
        id: Uuid,
        created: Created,
        start_now: bool,
    },
    /// The id (or the idempotency key) had already created this request.
    Already {
        id: Uuid,
        created: Created,
    },
    Refused(Refusal),
}

/// Creates the request and its sessions with exactly the wizard's rules; never twice for
/// one id or one idempotency key.
pub async fn finish(
    state: &AppState,
    user: &Actor,
    client: Option<IpAddr>,
    input: &Finish,
) -> crate::app::Result<Finished> {
    if let Some(created) = requests::existing(&state.db, input.id, user.id).await? {
        return Ok(Finished::Already {
            id: input.id,
            created,
        });
    }
    // An outside call: before the transaction, so no row lock waits on a slow validator.
    let asked = match &input.ticket_check {
        TicketSource::Asked(check) => check.clone(),
        TicketSource::AskNow => ask_validator(state, user, input).await?,
    };

    let mut tx = state.db.begin().await?;
    if let Some(key) = &input.idempotency {
        match claim(&mut tx, user.id, key, input.id).await? {
            Claim::New => {}
            Claim::Same(id) => {
                tx.rollback().await?;
                return Ok(match requests::existing(&state.db, id, user.id).await? {
                    Some(created) => Finished::Already { id, created },
                    None => Finished::Refused(Refusal::KeyReused),
                });
            }
            Claim::Different => {
                tx.rollback().await?;
                return Ok(Finished::Refused(Refusal::KeyReused));
            }
        }
    }
    let (grant, resources) = match requests::recheck(
        &mut tx,
        user.id,
        input.activity,
        input.policy,
        &input.resources,
    )
    .await?
    {
        Ok(ok) => ok,
        Err(message) => {
            let lost = catalog::grant(&mut *tx, user.id, input.activity, input.policy)
                .await?
                .is_none();
            tx.rollback().await?;
            return Ok(Finished::Refused(if lost {
                Refusal::GrantLost(message)
            } else {
                Refusal::Resources(message)
            }));
        }
    };
    let notes = wizard::check_notes(&input.notes, &input.ticket, &notes_rules(&grant));
    let mut rules = schedule_rules(&grant);
    match wizard::check_duration(input.duration_minutes, rules.max_duration_minutes) {
        Ok(minutes) => rules.max_duration_minutes = minutes,
        Err(message) => {
            tx.rollback().await?;
            return Ok(Finished::Refused(Refusal::Duration(message)));
        }
    }
    let window = wizard::check_schedule(
        &input.schedule,
        user.time_zone,
        OffsetDateTime::now_utc(),
        rules,
    );
    let ((notes, ticket), window) = match (notes, window) {
        (Ok(n), Ok(w)) => (n, w),
        (Err(e), _) => {
            tx.rollback().await?;
            return Ok(Finished::Refused(Refusal::Notes(e)));
        }
        (_, Err(e)) => {
            tx.rollback().await?;
            return Ok(Finished::Refused(Refusal::Schedule(e)));
        }
    };
    // A profile with a ticket validator needs its answer about this ticket: open, or (when
    // the profile only warns) recorded as it was.
    let validator = if ticket.is_empty() {
        None
    } else {
        crate::db::profiles::validator(&mut *tx, grant.profile.id).await?
    };
    let ticket_check = match validator {
        None => None,
        Some(v) => match asked.filter(|c| c.ticket == ticket) {
            Some(c) if c.is_open() || v.on_failure == OnFailure::Warn => Some(c),
            other => {
                tx.rollback().await?;
                return Ok(Finished::Refused(Refusal::TicketNotOpen(other)));
            }
        },
    };
    let created = requests::create(
        &mut tx,
        &NewRequest {
            id: input.id,
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
        requests::record_ticket_check(&mut tx, input.id, check).await?;
    }
    tx.commit().await?;
    let Some(mut created) = created else {
        // Another submission of this id committed first.
        let created = requests::existing(&state.db, input.id, user.id)
            .await?
            .unwrap_or(Created {
                sessions: 0,
                status: SessionStatus::WaitingForApproval,
                to_provision: Vec::new(),
                new: false,
            });
        return Ok(Finished::Created {
            id: input.id,
            created,
            start_now: window.start_now,
        });
    };
    tracing::info!(request = %input.id, sessions = created.sessions, status = created.status.label(), "request created");
    if !created.to_provision.is_empty() {
        // Starting now: prepare the login accounts at once rather than on the worker's next
        // tick. A failure here is retried by the worker.
        match crate::worker::provision(&state.db, &state.secrets, Some(&created.to_provision)).await
        {
            Ok(_) => {
                if let Some(now) = requests::existing(&state.db, input.id, user.id).await? {
                    created.status = now.status;
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "immediate provisioning failed; the worker will retry")
            }
        }
    }
    Ok(Finished::Created {
        id: input.id,
        created,
        start_now: window.start_now,
    })
}

/// The Notes page's rules for `grant`.
pub fn notes_rules(grant: &Grant) -> wizard::NotesRules {
    wizard::NotesRules {
        notes_required: grant.profile.notes_required,
        ticket_required: grant.profile.ticket_required,
        ticket_pattern: grant.profile.ticket_pattern.clone(),
    }
}

/// The Scheduling page's rules for `grant`.
pub fn schedule_rules(grant: &Grant) -> wizard::ScheduleRules {
    wizard::ScheduleRules {
        horizon_days: grant.profile.schedule_horizon_days,
        max_duration_minutes: grant.profile.max_duration_minutes,
    }
}

/// The validator's answer about the input's ticket, when its profile has one.
async fn ask_validator(
    state: &AppState,
    user: &Actor,
    input: &Finish,
) -> crate::app::Result<Option<TicketCheck>> {
    let Some(grant) = catalog::grant(&state.db, user.id, input.activity, input.policy).await?
    else {
        return Ok(None);
    };
    let Ok((_, ticket)) = wizard::check_notes(&input.notes, &input.ticket, &notes_rules(&grant))
    else {
        return Ok(None);
    };
    Ok(ask_about(state, user, &grant, &ticket)
        .await?
        .map(|(_, check)| check))
}

/// The answer of the ticket validator of `grant`'s profile about `ticket` (checked), with
/// what the profile does when the ticket is not open; `None` when the ticket is empty or the
/// profile has no validator. An outside call: never inside a transaction.
pub(crate) async fn ask_about(
    state: &AppState,
    user: &Actor,
    grant: &Grant,
    ticket: &str,
) -> crate::app::Result<Option<(OnFailure, TicketCheck)>> {
    if ticket.is_empty() {
        return Ok(None);
    }
    let Some(v) = crate::db::profiles::validator(&state.db, grant.profile.id).await? else {
        return Ok(None);
    };
    let check = ticket_validation::check(&v, ticket, &user.username, &grant.activity_name).await;
    Ok(Some((v.on_failure, check)))
}

/// What an idempotency key had done before.
enum Claim {
    /// First use: claimed for this request, in the caller's transaction.
    New,
    /// Used before with the same body, for this request.
    Same(Uuid),
    /// Used before with another body.
    Different,
}

/// Claims `key` for `request` in the caller's transaction. A concurrent claim of the same key
/// waits on the unique index until this transaction ends, then finds its row: two racing
/// calls create one request.
async fn claim(
    tx: &mut sqlx::PgConnection,
    user: Uuid,
    key: &IdempotencyKey,
    request: Uuid,
) -> Result<Claim, sqlx::Error> {
    if crate::db::api_tokens::claim_key(&mut *tx, user, &key.key, &key.body_sha256, request).await?
    {
        return Ok(Claim::New);
    }
    Ok(
        match crate::db::api_tokens::claimed(&mut *tx, user, &key.key).await? {
            Some((hash, id)) if hash == key.body_sha256 => Claim::Same(id),
            _ => Claim::Different,
        },
    )
}

/// The activities granted to the user, as Request Type lists them.
pub async fn granted(state: &AppState, user: &Actor) -> crate::app::Result<Vec<GrantedActivity>> {
    catalog::granted_activities(&state.db, user.id).await
}

/// A request `user` may see: their own, one they may decide or decided, or any for
/// administrators and auditors. Anything else is `None`, as if it did not exist.
pub async fn visible(
    state: &AppState,
    user: &Actor,
    id: Uuid,
) -> crate::app::Result<Option<crate::db::request_page::Header>> {
    let Some(header) = crate::db::request_page::header(&state.db, id).await? else {
        return Ok(None);
    };
    let may = header.requester_id == user.id
        || user.sees_everything()
        || crate::db::request_page::is_decider(&state.db, user.id, id).await?;
    Ok(may.then_some(header))
}
