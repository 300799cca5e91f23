//! Ending and extending sessions, as End Session, the session page and the API ask.

use std::net::IpAddr;

use time::macros::format_description;
use time::{Date, OffsetDateTime, PrimitiveDateTime, Time};
use uuid::Uuid;

use crate::app::Actor;
use crate::db;
use crate::db::provisioning::PendingRemoval;
use crate::db::sessions::{Actor as EventActor, Details, Moved, NewEvent};
use crate::domain::event::EventKind;
use crate::domain::status::{SessionStatus, Tab, Transition};
use crate::state::AppState;

/// Most sessions one End acts on.
pub const MAX_AT_ONCE: usize = 200;

/// What End does to a session in `status`, asked by its owner or not: a request not yet begun
/// is withdrawn (Canceled), a begun one ends (Completed); an administrator ending someone
/// else's session cancels it.
pub fn end_transition(own: bool, status: SessionStatus) -> Transition {
    match (own, status.has_begun() || status.is_final()) {
        (false, _) => Transition::AdminCancel,
        (true, false) => Transition::Withdraw,
        (true, true) => Transition::Complete,
    }
}

/// The event kind and comment of ending a session by `transition`.
fn end_event(transition: Transition) -> (EventKind, &'static str) {
    match transition {
        Transition::Withdraw => (EventKind::Withdrawn, "Withdrawn by the requester."),
        Transition::Complete => (EventKind::Ended, "Ended by the requester."),
        _ => (EventKind::Ended, "Ended by an administrator."),
    }
}

/// The event of `user` acting on session `id`.
fn by_user<'a>(
    id: Uuid,
    user: &'a Actor,
    kind: EventKind,
    comment: &'a str,
    client: Option<IpAddr>,
) -> NewEvent<'a> {
    NewEvent::new(
        id,
        EventActor::User {
            id: user.id,
            name: &user.display_name,
        },
        kind,
        comment,
        client,
    )
}

/// A session `user` may see: their own, or anyone's for an administrator. Anything else is
/// `None`, as if it did not exist.
pub async fn visible(
    state: &AppState,
    user: &Actor,
    id: Uuid,
) -> crate::app::Result<Option<Details>> {
    Ok(db::sessions::details(&state.db, id)
        .await?
        .filter(|d| d.requester_id == user.id || user.is_admin()))
}

/// Whether `user` may see the recordings of session `s`: its requester, administrators and
/// auditors (the deciders of its request may see the session, not its recordings).
pub fn may_see_recordings(user: &Actor, s: &Details) -> bool {
    s.requester_id == user.id || user.sees_everything()
}

/// Whether Extend is offered to `user` on session `s`: while it can be connected to, to
/// administrators always, to its requester while the profile has extensions left.
pub fn may_extend(user: &Actor, s: &Details) -> bool {
    let own = s.requester_id == user.id;
    s.status.is_connectable()
        && (user.is_admin()
            || (own && s.extension_minutes > 0 && s.extensions_used < s.max_extensions))
}

/// A session's page, as one user may see it.
pub struct Viewed {
    pub details: Details,
    /// Every event, in order.
    pub events: Vec<db::sessions::Event>,
    /// Administrators: the removal of the session's access that the target has not
    /// confirmed yet.
    pub removal: Option<PendingRemoval>,
    /// Its recordings are the user's to see ([`may_see_recordings`]).
    pub recordings: bool,
    /// Extend is offered ([`may_extend`]).
    pub can_extend: bool,
}

/// Session `id`'s page for its requester, whoever may decide on its request now or decided
/// on it, administrators and auditors; `None` for anyone else, as if it did not exist.
pub async fn view(state: &AppState, user: &Actor, id: Uuid) -> crate::app::Result<Option<Viewed>> {
    let Some(details) = db::sessions::details(&state.db, id).await? else {
        return Ok(None);
    };
    let recordings = may_see_recordings(user, &details);
    if !recordings && !db::request_page::is_decider(&state.db, user.id, details.request_id).await? {
        return Ok(None);
    }
    let events = db::sessions::events(&state.db, id).await?;
    let removal = if user.is_admin() {
        db::provisioning::pending_removal(&state.db, id).await?
    } else {
        None
    };
    Ok(Some(Viewed {
        can_extend: may_extend(user, &details),
        details,
        events,
        removal,
        recordings,
    }))
}

/// What End would do to one session, for a confirmation.
pub struct EndPreview {
    pub details: Details,
    /// The transition, when it applies from the status the session is in now.
    pub transition: Option<Transition>,
}

/// What End would do to each of `ids` the user may end (others are left out, as if they did
/// not exist). Changes nothing.
pub async fn preview_end(
    state: &AppState,
    user: &Actor,
    ids: &[Uuid],
) -> crate::app::Result<Vec<EndPreview>> {
    let mut out = Vec::new();
    for id in ids.iter().take(MAX_AT_ONCE) {
        let Some(d) = db::sessions::details(&state.db, *id).await? else {
            continue;
        };
        let own = d.requester_id == user.id;
        if !own && !user.is_admin() {
            continue;
        }
        let transition = end_transition(own, d.status);
        let applies = transition.apply(d.status, None).is_ok();
        out.push(EndPreview {
            details: d,
            transition: applies.then_some(transition),
        });
    }
    Ok(out)
}

/// What End did to one session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndOutcome {
    /// Completed, or Canceled by an administrator.
    Ended,
    /// A request not yet begun, withdrawn.
    Withdrawn,
    /// Not from the status it is in ("this session is already Completed"), lowercase first.
    Refused(String),
    /// No such session, or not the user's.
    NotFound,
}

/// Ends each of `ids` the user may end, each in its own transaction (one refused session
/// does not undo the others).
pub async fn end(
    state: &AppState,
    user: &Actor,
    client: Option<IpAddr>,
    ids: &[Uuid],
) -> crate::app::Result<Vec<(Uuid, EndOutcome)>> {
    let mut out = Vec::new();
    for id in ids.iter().take(MAX_AT_ONCE) {
        let mut tx = state.db.begin().await?;
        let Some((status, owner)) = db::sessions::lock_row(&mut tx, *id).await? else {
            out.push((*id, EndOutcome::NotFound));
            continue;
        };
        let own = owner == user.id;
        if !own && !user.is_admin() {
            out.push((*id, EndOutcome::NotFound));
            continue;
        }
        let transition = end_transition(own, status);
        let (kind, comment) = end_event(transition);
        let event = by_user(*id, user, kind, comment, client);
        let outcome = match db::sessions::transition(&mut tx, transition, event).await? {
            Moved::Done { .. } if transition == Transition::Withdraw => EndOutcome::Withdrawn,
            Moved::Done { .. } => EndOutcome::Ended,
            Moved::NotAllowed(e) => EndOutcome::Refused(e.to_string()),
            Moved::Gone => EndOutcome::NotFound,
        };
        tx.commit().await?;
        out.push((*id, outcome));
    }
    Ok(out)
}

/// What Extend did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Extended {
    /// The session now ends at this time.
    Until(OffsetDateTime),
    /// The policy no longer grants it: the session was ended instead (the reason).
    Lapsed(String),
    /// Refused: the reason, for the user.
    Refused(String),
    /// No such session, or not the user's.
    NotFound,
}

/// Extend (requester when the profile allows; administrators always), after re-checking
/// the session's grant.
pub async fn extend(
    state: &AppState,
    user: &Actor,
    client: Option<IpAddr>,
    id: Uuid,
) -> crate::app::Result<Extended> {
    if visible(state, user, id).await?.is_none() {
        return Ok(Extended::NotFound);
    }
    let mut tx = state.db.begin().await?;
    // Extending prolongs access: only while the policy still grants it.
    if let Some(why) = db::grants::revoke_if_lapsed(&mut tx, id).await? {
        tx.commit().await?;
        return Ok(Extended::Lapsed(why.to_string()));
    }
    let event = by_user(id, user, EventKind::Extended, "", client);
    match db::sessions::extend(&mut tx, event, user.is_admin()).await? {
        Ok(ends) => {
            tx.commit().await?;
            Ok(Extended::Until(ends))
        }
        Err(refused) => {
            tx.rollback().await?;
            Ok(Extended::Refused(refused.to_string()))
        }
    }
}

/// Longest lock message.
pub const MAX_LOCK_MESSAGE: usize = 500;

/// The message of a Lock, trimmed, when it says something and is not too long.
pub fn lock_message(text: &str) -> Option<&str> {
    let text = text.trim();
    (!text.is_empty() && text.chars().count() <= MAX_LOCK_MESSAGE).then_some(text)
}

/// What Lock did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Locked {
    /// Locked: no new connection until it is unlocked.
    Done,
    /// No message, or one over [`MAX_LOCK_MESSAGE`]: nothing changed.
    NoMessage,
    /// Not Available or Logged In (or no such session): nothing changed.
    NotLockable,
}

/// Lock (administrators, whom the route admits), with a message the requester sees.
pub async fn lock(
    state: &AppState,
    user: &Actor,
    client: Option<IpAddr>,
    id: Uuid,
    message: &str,
) -> crate::app::Result<Locked> {
    let Some(message) = lock_message(message) else {
        return Ok(Locked::NoMessage);
    };
    let mut tx = state.db.begin().await?;
    let event = by_user(id, user, EventKind::Locked, message, client);
    match db::sessions::transition(&mut tx, Transition::Lock, event).await? {
        Moved::Done { .. } => {
            tx.commit().await?;
            Ok(Locked::Done)
        }
        Moved::NotAllowed(_) | Moved::Gone => {
            tx.rollback().await?;
            Ok(Locked::NotLockable)
        }
    }
}

/// What Unlock did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unlocked {
    /// Back to the status it was locked in.
    To(SessionStatus),
    /// The policy no longer grants it: the session was ended instead (the reason).
    Lapsed(String),
    /// Not locked (or no such session): nothing changed.
    NotLocked,
}

/// Unlock (administrators, whom the route admits), after re-checking the session's grant:
/// unlocking gives access back, so only while the policy still grants it.
pub async fn unlock(
    state: &AppState,
    user: &Actor,
    client: Option<IpAddr>,
    id: Uuid,
) -> crate::app::Result<Unlocked> {
    let mut tx = state.db.begin().await?;
    if let Some(why) = db::grants::revoke_if_lapsed(&mut tx, id).await? {
        tx.commit().await?;
        return Ok(Unlocked::Lapsed(why.to_string()));
    }
    let comment = "Unlocked by an administrator.";
    let event = by_user(id, user, EventKind::Unlocked, comment, client);
    match db::sessions::transition(&mut tx, Transition::Unlock, event).await? {
        Moved::Done { to, .. } => {
            tx.commit().await?;
            Ok(Unlocked::To(to))
        }
        Moved::NotAllowed(_) | Moved::Gone => {
            tx.rollback().await?;
            Ok(Unlocked::NotLocked)
        }
    }
}

/// Rows per page of a session list.
pub const PAGE_SIZE: i64 = 50;

/// A dashboard tab's filters as typed (the dashboard's query, or the API's).
#[derive(Debug, Clone, Default)]
pub struct ListQuery<'a> {
    pub search: &'a str,
    /// Historical: part of a resource name.
    pub resource: &'a str,
    /// YYYY-MM-DD in the user's time zone, or empty.
    pub from: &'a str,
    pub to: &'a str,
    /// Administrators: everyone's sessions.
    pub all: bool,
    /// From 1; a page that is not a number is the first.
    pub page: &'a str,
}

/// The filters, checked: what to list, and the clean inputs to show again.
#[derive(Debug, Clone)]
pub struct Listing {
    pub filter: db::sessions::Filter,
    pub search: String,
    pub resource: String,
    /// Administrators who asked for everyone's sessions.
    pub all: bool,
    pub page: i64,
    /// Whether From and To were dates (a field that was not is not echoed back).
    pub from_valid: bool,
    pub to_valid: bool,
    /// What is wrong with the dates, for the user.
    pub error: Option<String>,
}

/// Checks a tab's filters for `user`: bounded texts, dates in the user's time zone, From
/// not after To; everyone's sessions only for administrators.
pub fn listing(user: &Actor, tab: Tab, q: &ListQuery<'_>) -> Listing {
    let search: String = q.search.trim().chars().take(200).collect();
    let resource: String = q.resource.trim().chars().take(200).collect();
    let all = user.is_admin() && q.all;
    let page = q.page.trim().parse::<i64>().unwrap_or(1).clamp(1, 100_000);
    let mut error = None;
    let mut day = |text: &str, label: &str| -> Option<OffsetDateTime> {
        let text = text.trim();
        if text.is_empty() {
            return None;
        }
        match Date::parse(text, format_description!("[year]-[month]-[day]")) {
            Ok(d) => user
                .time_zone
                .instant(PrimitiveDateTime::new(d, Time::MIDNIGHT))
                .ok(),
            Err(_) => {
                error = Some(format!("{label} must be a date as YYYY-MM-DD."));
                None
            }
        }
    };
    let from = day(q.from, "From");
    let until = day(q.to, "To").map(|t| t + time::Duration::days(1));
    if let (Some(f), Some(u), None) = (from, until, &error)
        && f >= u
    {
        error = Some("From is after To: choose a From date on or before the To date.".into());
    }
    Listing {
        filter: db::sessions::Filter {
            tab,
            requester: if all { None } else { Some(user.id) },
            search: search.clone(),
            resource: resource.clone(),
            from,
            until,
            limit: PAGE_SIZE,
            offset: (page - 1) * PAGE_SIZE,
        },
        search,
        resource,
        all,
        page,
        from_valid: from.is_some(),
        to_valid: until.is_some(),
        error,
    }
}

/// One page of sessions and whether more follow; a list of the user's own names them as its
/// requester.
pub async fn list(
    state: &AppState,
    user: &Actor,
    filter: &db::sessions::Filter,
) -> crate::app::Result<(Vec<db::sessions::Row>, bool)> {
    let (mut rows, more) = db::sessions::list(&state.db, filter).await?;
    if filter.requester.is_some() {
        for row in &mut rows {
            row.requester_name.clone_from(&user.display_name);
        }
    }
    Ok((rows, more))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lock_message_is_trimmed_and_needs_one_to_the_most_characters() {
        assert_eq!(lock_message("  Audit running.  "), Some("Audit running."));
        assert_eq!(lock_message("   "), None);
        let longest = "é".repeat(MAX_LOCK_MESSAGE);
        assert_eq!(lock_message(&longest), Some(longest.as_str()));
        assert_eq!(lock_message(&format!("{longest}x")), None);
    }
}
