//! The wizard's pages as use cases. Each takes the draft (the web layer keeps it in the
//! session and stores it again afterwards), applies one page's input with its rules, and
//! says what happened; Finish is [`requests::finish`].

use uuid::Uuid;

use crate::app::Actor;
use crate::app::requests;
use crate::db::catalog::{self, Grant, Resource, TierView};
use crate::db::requests::Created;
use crate::domain::wizard::{
    self, Draft, NotesErrors, PageTicks, Schedule, ScheduleError, TicksError, TypedNotes, Window,
};
use crate::state::AppState;
use crate::ticket_validation::{OnFailure, TicketCheck};

/// What Request Type did with the choice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActivityChoice {
    /// The draft has this activity and policy now; `dropped` resources ticked before are not
    /// granted under them and were unticked.
    Chosen { dropped: usize },
    /// Nothing was chosen (or nothing that reads as an activity and a policy).
    Nothing,
    /// No policy grants the user this activity (a hand-made POST may name anything).
    NotGranted,
}

/// Request Type's Next: the activity and policy chosen, if a policy grants them to `user`.
pub async fn choose_activity(
    state: &AppState,
    user: &Actor,
    draft: &mut Draft,
    chosen: Option<(Uuid, Uuid)>,
) -> crate::app::Result<ActivityChoice> {
    let Some((activity, policy)) = chosen else {
        return Ok(ActivityChoice::Nothing);
    };
    if catalog::grant(&state.db, user.id, activity, policy)
        .await?
        .is_none()
    {
        return Ok(ActivityChoice::NotGranted);
    }
    let mut dropped = 0;
    if draft.policy_id != Some(policy) || draft.activity_id != Some(activity) {
        let still = catalog::granted_subset(&state.db, policy, &draft.resource_ids).await?;
        let ids: Vec<Uuid> = still.iter().map(|r| r.id).collect();
        dropped = draft.retain_resources(&ids);
        draft.activity_id = Some(activity);
        draft.policy_id = Some(policy);
    }
    Ok(ActivityChoice::Chosen { dropped })
}

/// Why Resource Selection refused the ticks of the page just shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TicksRefused {
    /// The ticks could not be read.
    Unreadable,
    /// More than the most one request may cover (how many).
    TooMany(usize),
    /// A ticked resource is not granted by the draft's policy.
    NotGranted,
}

/// Resource Selection: applies the ticks of the page just shown to the draft, if the policy
/// grants every resource then ticked.
pub async fn tick(
    state: &AppState,
    grant: &Grant,
    draft: &mut Draft,
    page: PageTicks<'_>,
) -> crate::app::Result<Result<(), TicksRefused>> {
    let ids = match wizard::merge_ticks(&draft.resource_ids, page) {
        Ok(ids) => ids,
        Err(TicksError::Unreadable) => return Ok(Err(TicksRefused::Unreadable)),
        Err(TicksError::TooMany(n)) => return Ok(Err(TicksRefused::TooMany(n))),
    };
    let granted = catalog::granted_subset(&state.db, grant.policy_id, &ids).await?;
    if granted.len() != ids.len() {
        return Ok(Err(TicksRefused::NotGranted));
    }
    draft.resource_ids = ids;
    Ok(Ok(()))
}

/// What Notes' Next did.
#[derive(Debug, Clone)]
pub enum NotesStep {
    /// Kept in the draft. `warning`: the validator has not said the ticket is open, and the
    /// profile only warns (its answer goes with the request to the approvers).
    Taken { warning: Option<TicketCheck> },
    /// The notes or the ticket break the profile's rules.
    Invalid(NotesErrors),
    /// The validator has not said the ticket is open, and the profile blocks; `checked`: the
    /// notes and the ticket as checked (trimmed), to show again.
    TicketNotOpen {
        check: TicketCheck,
        checked: TypedNotes,
    },
}

/// Notes' Next: checks the notes and the ticket against the profile and asks its ticket
/// validator, if it has one, at every Next (a ticket may close meanwhile). The draft keeps
/// the validator's answer; its notes only when they are taken.
pub async fn take_notes(
    state: &AppState,
    user: &Actor,
    grant: &Grant,
    draft: &mut Draft,
    typed: &TypedNotes,
) -> crate::app::Result<NotesStep> {
    let rules = requests::notes_rules(grant);
    let (notes, ticket) = match wizard::check_notes(&typed.notes, &typed.ticket, &rules) {
        Ok(checked) => checked,
        Err(errors) => {
            draft.notes_done = false;
            return Ok(NotesStep::Invalid(errors));
        }
    };
    let asked = requests::ask_about(state, user, grant, &ticket).await?;
    draft.ticket_check = asked.as_ref().map(|(_, check)| check.clone());
    let mut warning = None;
    if let Some((on_failure, check)) = asked
        && !check.is_open()
    {
        if on_failure == OnFailure::Block {
            draft.notes_done = false;
            return Ok(NotesStep::TicketNotOpen {
                check,
                checked: TypedNotes { notes, ticket },
            });
        }
        warning = Some(check);
    }
    draft.notes = notes;
    draft.ticket = ticket;
    draft.notes_done = true;
    Ok(NotesStep::Taken { warning })
}

/// What Review shows besides the draft itself.
#[derive(Debug, Clone)]
pub struct Review {
    /// The ticked resources the policy still grants.
    pub resources: Vec<Resource>,
    /// The window of the draft's schedule as of now, or why it has none any more.
    pub window: Result<Window, ScheduleError>,
    /// Who must approve, tier by tier; empty when the profile needs no approval.
    pub tiers: Vec<TierView>,
}

/// Review: the draft as Finish would see it now.
pub async fn review(
    state: &AppState,
    user: &Actor,
    draft: &Draft,
    grant: &Grant,
) -> crate::app::Result<Review> {
    let resources =
        catalog::granted_subset(&state.db, grant.policy_id, &draft.resource_ids).await?;
    let window = wizard::check_schedule(
        &draft.schedule.clone().unwrap_or(Schedule::Now),
        user.time_zone,
        time::OffsetDateTime::now_utc(),
        requests::schedule_rules(grant),
    );
    let tiers = if grant.profile.approval_required {
        catalog::tiers(&state.db, grant.profile.id).await?
    } else {
        Vec::new()
    };
    Ok(Review {
        resources,
        window,
        tiers,
    })
}

/// Finish posted for draft `posted` while the session holds `current` (or none): the request
/// an earlier Finish of that draft created, if any.
pub async fn finished_before(
    state: &AppState,
    user: &Actor,
    current: Option<&Draft>,
    posted: Option<Uuid>,
) -> crate::app::Result<Option<Created>> {
    match wizard::earlier_draft(current, posted) {
        Some(id) => crate::db::requests::existing(&state.db, id, user.id).await,
        None => Ok(None),
    }
}
