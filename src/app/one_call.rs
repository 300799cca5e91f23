//! A request in one call (the API's create): the choices of Request Type and Resource
//! Selection, then every other field checked at once as each wizard page would, then
//! [`requests::finish`] with exactly the wizard's rules; idempotent by a client-chosen key.

use std::net::IpAddr;

use time::OffsetDateTime;
use uuid::Uuid;

use crate::app::Actor;
use crate::app::requests::{
    self, ACTIVITY_NOT_GRANTED, Finish, Finished, IdempotencyKey, RESOURCE_NOT_GRANTED, Refusal,
    SELECT_ACTIVITY, SELECT_RESOURCE, TicketSource, too_many_resources,
};
use crate::db::catalog::{self, Grant, GrantedActivity};
use crate::domain::wizard::{
    self, MAX_RESOURCES, NotesErrors, Schedule, ScheduleError, TypedNotes,
};
use crate::state::AppState;

/// A request in one call, read: ids that are not ids are `None` (they name nothing the user
/// may have); an absent activity or policy is `None` outright.
#[derive(Debug, Clone)]
pub struct OneCall {
    pub activity: Option<Option<Uuid>>,
    pub policy: Option<Option<Uuid>>,
    pub resources: Vec<Option<Uuid>>,
    pub typed: TypedNotes,
    pub schedule: Schedule,
    /// Minutes of the window; `None`: the profile's maximum.
    pub duration_minutes: Option<i64>,
    pub idempotency: Option<IdempotencyKey>,
}

/// Why a one-call request was not even tried, by field, in the wizard's words.
#[derive(Debug, Clone)]
pub enum Invalid {
    /// The choice of activity, policy or resources (nothing else is checked without a grant).
    Selection(SelectionErrors),
    /// Every other field's error at once.
    Fields {
        notes: NotesErrors,
        schedule: Option<ScheduleError>,
        duration: Option<String>,
    },
}

/// Checks the call as the wizard's pages would, all fields at once, then hands it to Finish
/// (which checks again, in its transaction, and asks the ticket validator).
pub async fn create(
    state: &AppState,
    user: &Actor,
    client: Option<IpAddr>,
    call: OneCall,
) -> crate::app::Result<Result<Finished, Invalid>> {
    let selection =
        check_selection(state, user, call.activity, call.policy, &call.resources).await?;
    let (grant, resources) = match selection {
        Ok(ok) => ok,
        Err(e) => return Ok(Err(Invalid::Selection(e))),
    };
    let TypedNotes { notes, ticket } = call.typed;
    let notes_errors = wizard::check_notes(&notes, &ticket, &requests::notes_rules(&grant));
    let schedule = wizard::check_schedule(
        &call.schedule,
        user.time_zone,
        OffsetDateTime::now_utc(),
        requests::schedule_rules(&grant),
    );
    let duration =
        wizard::check_duration(call.duration_minutes, grant.profile.max_duration_minutes);
    if notes_errors.is_err() || schedule.is_err() || duration.is_err() {
        return Ok(Err(Invalid::Fields {
            notes: notes_errors.err().unwrap_or_default(),
            schedule: schedule.err(),
            duration: duration.err(),
        }));
    }
    let finish = Finish {
        id: Uuid::now_v7(),
        activity: grant.activity_id,
        policy: grant.policy_id,
        resources,
        notes,
        ticket,
        schedule: call.schedule,
        duration_minutes: call.duration_minutes,
        ticket_check: TicketSource::AskNow,
        idempotency: call.idempotency,
    };
    Ok(Ok(requests::finish(state, user, client, &finish).await?))
}

/// What is wrong with a one-call request's choice of activity, policy and resources, by
/// field, in the wizard's words.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SelectionErrors {
    pub activity: Option<String>,
    pub policy: Option<String>,
    pub resources: Option<String>,
}

/// The choices of Request Type and Resource Selection, made in one call (the API): the
/// activity must be granted (and, when several policies grant it, the policy named), the
/// resources at least one, at most [`MAX_RESOURCES`], all granted by that policy. `None` ids
/// stand for text that is not an id (it names nothing the user may have).
async fn check_selection(
    state: &AppState,
    user: &Actor,
    activity: Option<Option<Uuid>>,
    policy: Option<Option<Uuid>>,
    resources: &[Option<Uuid>],
) -> crate::app::Result<std::result::Result<(Grant, Vec<Uuid>), SelectionErrors>> {
    let mut errors = SelectionErrors::default();
    let grant = match activity {
        None => {
            errors.activity = Some(SELECT_ACTIVITY.into());
            None
        }
        Some(activity) => {
            let granted: Vec<GrantedActivity> = requests::granted(state, user)
                .await?
                .into_iter()
                .filter(|g| Some(g.activity_id) == activity)
                .collect();
            let chosen = match policy {
                Some(p) => granted.iter().find(|g| Some(g.policy_id) == p),
                None if granted.len() > 1 => {
                    let names: Vec<&str> = granted.iter().map(|g| g.policy_name.as_str()).collect();
                    errors.policy = Some(format!(
                        "More than one access policy grants this activity: choose one of {}.",
                        names.join(", ")
                    ));
                    None
                }
                None => granted.first(),
            };
            match chosen {
                Some(g) => catalog::grant(&state.db, user.id, g.activity_id, g.policy_id).await?,
                None => {
                    if errors.policy.is_none() {
                        errors.activity = Some(ACTIVITY_NOT_GRANTED.into());
                    }
                    None
                }
            }
        }
    };
    let mut ids: Vec<Uuid> = Vec::new();
    let mut unreadable = false;
    for r in resources {
        match r {
            Some(id) if !ids.contains(id) => ids.push(*id),
            Some(_) => {}
            None => unreadable = true,
        }
    }
    if resources.is_empty() {
        errors.resources = Some(SELECT_RESOURCE.into());
    } else if ids.len() > MAX_RESOURCES {
        errors.resources = Some(too_many_resources(ids.len()));
    } else if unreadable {
        errors.resources = Some(RESOURCE_NOT_GRANTED.into());
    } else if let Some(g) = &grant
        && catalog::granted_subset(&state.db, g.policy_id, &ids)
            .await?
            .len()
            != ids.len()
    {
        errors.resources = Some(RESOURCE_NOT_GRANTED.into());
    }
    match grant {
        Some(g) if errors == SelectionErrors::default() => Ok(Ok((g, ids))),
        _ => Ok(Err(errors)),
    }
}

/// An idempotency key used before: the request it created (same body), or `Err` when it came
/// with another body. `None`: not used yet.
pub async fn replay(
    state: &AppState,
    user: &Actor,
    key: &IdempotencyKey,
) -> crate::app::Result<Option<std::result::Result<Uuid, Refusal>>> {
    Ok(
        match crate::db::api_tokens::claimed(&state.db, user.id, &key.key).await? {
            None => None,
            Some((hash, id)) if hash == key.body_sha256 => Some(Ok(id)),
            Some(_) => Some(Err(Refusal::KeyReused)),
        },
    )
}
