//! The Activity Request wizard's draft and the rules of its pages (Notes, Scheduling). The
//! draft lives in the server-side session under one key until Finish.

use serde::{Deserialize, Serialize};
use time::macros::format_description;
use time::{Date, Duration, OffsetDateTime, PrimitiveDateTime, Time};
use uuid::Uuid;

use crate::domain::tz::TimeZone;

/// Most resources one request may cover.
pub const MAX_RESOURCES: usize = 50;
/// Longest notes, in characters.
pub const MAX_NOTES: usize = 2000;
/// Longest ticket number, in characters.
pub const MAX_TICKET: usize = 64;
/// How far in the past a scheduled start may be (the time it takes to fill in the page).
pub const PAST_GRACE: Duration = Duration::minutes(1);

/// The wizard's pages, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Step {
    RequestType,
    Resources,
    Notes,
    Scheduling,
    Review,
}

impl Step {
    pub const ALL: [Step; 5] = [
        Self::RequestType,
        Self::Resources,
        Self::Notes,
        Self::Scheduling,
        Self::Review,
    ];

    /// The page's title, in the seed's words.
    pub fn title(self) -> &'static str {
        match self {
            Self::RequestType => "Request Type",
            Self::Resources => "Resource Selection",
            Self::Notes => "Notes",
            Self::Scheduling => "Scheduling",
            Self::Review => "Review",
        }
    }

    /// The page's path.
    pub fn path(self) -> &'static str {
        match self {
            Self::RequestType => "/wizard/request-type",
            Self::Resources => "/wizard/resources",
            Self::Notes => "/wizard/notes",
            Self::Scheduling => "/wizard/scheduling",
            Self::Review => "/wizard/review",
        }
    }

    pub fn previous(self) -> Option<Step> {
        match self {
            Self::RequestType => None,
            Self::Resources => Some(Self::RequestType),
            Self::Notes => Some(Self::Resources),
            Self::Scheduling => Some(Self::Notes),
            Self::Review => Some(Self::Scheduling),
        }
    }

    pub fn next(self) -> Option<Step> {
        match self {
            Self::RequestType => Some(Self::Resources),
            Self::Resources => Some(Self::Notes),
            Self::Notes => Some(Self::Scheduling),
            Self::Scheduling => Some(Self::Review),
            Self::Review => None,
        }
    }
}

/// When the session should start, as the requester chose it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "when", rename_all = "lowercase")]
pub enum Schedule {
    Now,
    /// A wall-clock time in the requester's time zone, as typed.
    Later {
        date: String,
        time: String,
    },
}

/// Everything chosen so far. Its id becomes the request's id at Finish, which is what makes
/// a repeated Finish of the same draft harmless.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Draft {
    pub id: Uuid,
    pub activity_id: Option<Uuid>,
    pub policy_id: Option<Uuid>,
    pub resource_ids: Vec<Uuid>,
    pub notes: String,
    pub ticket: String,
    /// Notes passed validation (they may legitimately be empty).
    pub notes_done: bool,
    pub schedule: Option<Schedule>,
    /// The Scheduling page's inputs as last typed, kept when Back is pressed mid-edit.
    pub schedule_input: Option<Schedule>,
    /// What the profile's ticket validator said about `ticket` on the Notes page.
    #[serde(default)]
    pub ticket_check: Option<crate::domain::ticket_check::TicketCheck>,
}

impl Draft {
    pub fn new() -> Self {
        Self {
            id: Uuid::now_v7(),
            activity_id: None,
            policy_id: None,
            resource_ids: Vec::new(),
            notes: String::new(),
            ticket: String::new(),
            notes_done: false,
            schedule: None,
            schedule_input: None,
            ticket_check: None,
        }
    }

    /// Something was chosen or typed: Create Session asks before it goes on with this draft.
    pub fn in_progress(&self) -> bool {
        self.activity_id.is_some()
            || self.policy_id.is_some()
            || !self.resource_ids.is_empty()
            || !self.notes.is_empty()
            || !self.ticket.is_empty()
            || self.notes_done
            || self.schedule.is_some()
            || self.schedule_input.is_some()
    }

    /// The first page that still needs input; Review when everything is there.
    pub fn first_incomplete(&self) -> Step {
        if self.activity_id.is_none() || self.policy_id.is_none() {
            Step::RequestType
        } else if self.resource_ids.is_empty() {
            Step::Resources
        } else if !self.notes_done {
            Step::Notes
        } else if self.schedule.is_none() {
            Step::Scheduling
        } else {
            Step::Review
        }
    }

    /// Where a request for `step` should land: the step itself, or the first unfinished one
    /// before it.
    pub fn allowed(&self, step: Step) -> Step {
        step.min(self.first_incomplete())
    }

    /// Keeps only the ticked resources in `granted`; returns how many were dropped.
    pub fn retain_resources(&mut self, granted: &[Uuid]) -> usize {
        let before = self.resource_ids.len();
        self.resource_ids.retain(|id| granted.contains(id));
        before - self.resource_ids.len()
    }
}

impl Draft {
    /// Notes' Back: keeps what was typed, valid or not; the page counts as done only when
    /// it is valid.
    pub fn keep_typed_notes(&mut self, typed: TypedNotes, rules: &NotesRules) {
        self.notes_done = check_notes(&typed.notes, &typed.ticket, rules).is_ok();
        self.notes = typed.notes;
        self.ticket = typed.ticket;
    }

    /// Scheduling's Next (or Back): keeps the input as typed, and as the schedule only when
    /// it gives a window.
    pub fn choose_schedule(
        &mut self,
        input: Schedule,
        tz: TimeZone,
        now: OffsetDateTime,
        rules: ScheduleRules,
    ) -> Result<Window, ScheduleError> {
        let checked = check_schedule(&input, tz, now, rules);
        self.schedule_input = Some(input.clone());
        self.schedule = checked.is_ok().then_some(input);
        checked
    }
}

/// Finish posted for draft `posted` while the session holds `current` (or none): the id of an
/// earlier draft, whose Finish may have created its request already (a double click, a second
/// tab, a replayed POST after the draft was cleared).
pub fn earlier_draft(current: Option<&Draft>, posted: Option<Uuid>) -> Option<Uuid> {
    posted.filter(|p| current.is_none_or(|d| d.id != *p))
}

/// Why the ticks of a Resource Selection page cannot be applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TicksError {
    /// A tick is not an id, or not one of the rows shown (a hand-made POST).
    Unreadable,
    /// More than [`MAX_RESOURCES`] would be ticked (how many).
    TooMany(usize),
}

/// The ticks of a Resource Selection page as posted.
#[derive(Debug, Clone, Copy)]
pub struct PageTicks<'a> {
    /// The ids of the rows the page showed.
    pub shown: &'a [String],
    /// The ids of the rows ticked.
    pub picked: &'a [String],
    /// Select Page: every row shown is ticked.
    pub whole_page: bool,
}

/// The ticked resources after a Resource Selection page: the rows it showed are replaced by
/// those it ticks now (all of them for Select Page); the ticks on other pages are kept.
pub fn merge_ticks(ticked: &[Uuid], page: PageTicks<'_>) -> Result<Vec<Uuid>, TicksError> {
    let shown: Vec<Uuid> = page
        .shown
        .iter()
        .filter_map(|s| Uuid::parse_str(s).ok())
        .collect();
    let read: Vec<Uuid> = page
        .picked
        .iter()
        .filter_map(|s| Uuid::parse_str(s).ok())
        .collect();
    if read.len() != page.picked.len() || read.iter().any(|p| !shown.contains(p)) {
        return Err(TicksError::Unreadable);
    }
    let mut ids: Vec<Uuid> = ticked
        .iter()
        .copied()
        .filter(|id| !shown.contains(id))
        .collect();
    for p in if page.whole_page { shown } else { read } {
        if !ids.contains(&p) {
            ids.push(p);
        }
    }
    if ids.len() > MAX_RESOURCES {
        return Err(TicksError::TooMany(ids.len()));
    }
    Ok(ids)
}

impl Default for Draft {
    fn default() -> Self {
        Self::new()
    }
}

/// What the connection profile asks of the Notes page.
#[derive(Debug, Clone)]
pub struct NotesRules {
    pub notes_required: bool,
    pub ticket_required: bool,
    pub ticket_pattern: Option<String>,
}

/// Notes and Ticket Number as typed, cut to one character over their limits before anything
/// keeps them (in the session, or on a page shown again), so the check still sees that they
/// were too long.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypedNotes {
    pub notes: String,
    pub ticket: String,
}

impl TypedNotes {
    pub fn bounded(notes: &str, ticket: &str) -> Self {
        Self {
            notes: notes.chars().take(MAX_NOTES + 1).collect(),
            ticket: ticket.chars().take(MAX_TICKET + 1).collect(),
        }
    }
}

/// Errors on the Notes page, by field.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct NotesErrors {
    pub notes: Option<String>,
    pub ticket: Option<String>,
}

impl NotesErrors {
    pub fn is_empty(&self) -> bool {
        self.notes.is_none() && self.ticket.is_none()
    }
}

/// Checks notes and ticket number against the profile; returns them trimmed.
pub fn check_notes(
    notes: &str,
    ticket: &str,
    rules: &NotesRules,
) -> Result<(String, String), NotesErrors> {
    let notes = notes.trim();
    let ticket = ticket.trim();
    let mut errors = NotesErrors::default();
    if notes.chars().count() > MAX_NOTES {
        errors.notes = Some(format!("Notes can be at most {MAX_NOTES} characters."));
    } else if rules.notes_required && notes.is_empty() {
        errors.notes = Some("Notes are required for this activity.".into());
    }
    if ticket.chars().count() > MAX_TICKET {
        errors.ticket = Some(format!(
            "Ticket Number can be at most {MAX_TICKET} characters."
        ));
    } else if ticket.chars().any(char::is_control) {
        errors.ticket = Some("Ticket Number cannot contain control characters.".into());
    } else if rules.ticket_required && ticket.is_empty() {
        errors.ticket = Some("Ticket Number is required for this activity.".into());
    } else if let (Some(pattern), false) = (&rules.ticket_pattern, ticket.is_empty()) {
        let matches = crate::domain::catalog::compile_ticket_pattern(pattern)
            .map(|re| re.is_match(ticket))
            .unwrap_or(false);
        if !matches {
            // Requesters see an example, never the regex.
            errors.ticket = Some(match crate::domain::ticket_sample::sample(pattern) {
                Some(like) => format!("Ticket Number must look like {like}."),
                None => "Ticket Number is not in the form this activity needs.".into(),
            });
        }
    }
    if errors.is_empty() {
        Ok((notes.to_owned(), ticket.to_owned()))
    } else {
        Err(errors)
    }
}

/// What the connection profile asks of the Scheduling page.
#[derive(Debug, Clone, Copy)]
pub struct ScheduleRules {
    pub horizon_days: i32,
    pub max_duration_minutes: i32,
}

/// A start time that passed the rules, and the window it gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub start_now: bool,
    pub start: OffsetDateTime,
    pub end: OffsetDateTime,
}

/// Errors on the Scheduling page, by field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScheduleError {
    Date(String),
    Time(String),
    When(String),
}

impl ScheduleError {
    pub fn message(&self) -> &str {
        match self {
            Self::Date(m) | Self::Time(m) | Self::When(m) => m,
        }
    }
}

/// The length of the window asked for, in minutes: the profile's maximum when none is asked
/// (as the wizard always does), else a whole number of minutes up to it.
pub fn check_duration(asked: Option<i64>, max_minutes: i32) -> Result<i32, String> {
    match asked {
        None => Ok(max_minutes),
        Some(m) if m >= 1 && m <= i64::from(max_minutes) => Ok(m as i32),
        Some(_) => Err(format!(
            "Duration: a whole number of minutes from 1 to {max_minutes}, this activity's maximum."
        )),
    }
}

/// Turns the requester's choice into a window, in their time zone: not in the past (with a
/// minute's grace), not beyond the profile's horizon; a skipped local time is refused, a
/// repeated one means its first occurrence.
pub fn check_schedule(
    schedule: &Schedule,
    tz: TimeZone,
    now: OffsetDateTime,
    rules: ScheduleRules,
) -> Result<Window, ScheduleError> {
    let duration = Duration::minutes(i64::from(rules.max_duration_minutes));
    let (date, time) = match schedule {
        Schedule::Now => {
            return Ok(Window {
                start_now: true,
                start: now,
                end: now + duration,
            });
        }
        Schedule::Later { date, time } => (date, time),
    };
    let date = Date::parse(date.trim(), format_description!("[year]-[month]-[day]"))
        .map_err(|_| ScheduleError::Date("Choose a date.".into()))?;
    let time =
        parse_time(time.trim()).ok_or_else(|| ScheduleError::Time("Choose a time.".into()))?;
    let start = tz
        .instant(PrimitiveDateTime::new(date, time))
        .map_err(|e| {
            ScheduleError::Time(format!(
                "{}. Choose another time.",
                capitalise(&e.to_string())
            ))
        })?;
    if start < now - PAST_GRACE {
        return Err(ScheduleError::When(
            "The start is in the past. Choose Now or a later time.".into(),
        ));
    }
    let horizon = now + Duration::days(i64::from(rules.horizon_days));
    if start > horizon {
        return Err(ScheduleError::When(format!(
            "The start can be at most {} days ahead (until {}).",
            rules.horizon_days,
            format_local(tz.local(horizon))
        )));
    }
    Ok(Window {
        start_now: false,
        start,
        end: start + duration,
    })
}

fn parse_time(s: &str) -> Option<Time> {
    Time::parse(s, format_description!("[hour]:[minute]"))
        .or_else(|_| Time::parse(s, format_description!("[hour]:[minute]:[second]")))
        .ok()
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

/// `YYYY-MM-DD HH:MM`, the format every time is shown in (in the viewer's zone).
pub fn format_local(t: OffsetDateTime) -> String {
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use time::macros::datetime;

    fn rules() -> ScheduleRules {
        ScheduleRules {
            horizon_days: 14,
            max_duration_minutes: 120,
        }
    }

    fn later(date: &str, time: &str) -> Schedule {
        Schedule::Later {
            date: date.into(),
            time: time.into(),
        }
    }

    #[test]
    fn an_empty_draft_starts_at_request_type_and_later_pages_send_back_there() {
        let draft = Draft::new();
        assert_eq!(draft.first_incomplete(), Step::RequestType);
        assert_eq!(draft.allowed(Step::Review), Step::RequestType);
    }

    #[test]
    fn a_duration_is_at_most_the_profiles_maximum() {
        assert_eq!(check_duration(None, 120), Ok(120));
        assert_eq!(check_duration(Some(30), 120), Ok(30));
        assert_eq!(check_duration(Some(120), 120), Ok(120));
        for bad in [0, -5, 121, i64::MAX] {
            assert!(
                check_duration(Some(bad), 120)
                    .unwrap_err()
                    .contains("1 to 120")
            );
        }
    }

    #[test]
    fn now_opens_a_window_of_the_profiles_duration() {
        let now = datetime!(2026-06-01 10:00 UTC);
        let w = check_schedule(&Schedule::Now, TimeZone::utc(), now, rules()).unwrap();
        assert_eq!((w.start, w.end), (now, datetime!(2026-06-01 12:00 UTC)));
        assert!(w.start_now);
    }

    #[test]
    fn a_time_in_the_past_is_refused_but_a_minute_of_grace_is_allowed() {
        let now = datetime!(2026-06-01 10:00 UTC);
        assert!(
            check_schedule(&later("2026-06-01", "09:59"), TimeZone::utc(), now, rules()).is_ok()
        );
        let err = check_schedule(&later("2026-06-01", "09:58"), TimeZone::utc(), now, rules())
            .unwrap_err();
        assert!(matches!(err, ScheduleError::When(_)));
    }

    #[test]
    fn a_start_beyond_the_horizon_is_refused_with_the_limit() {
        let now = datetime!(2026-06-01 10:00 UTC);
        let err = check_schedule(&later("2026-06-16", "10:01"), TimeZone::utc(), now, rules())
            .unwrap_err();
        assert_eq!(
            err.message(),
            "The start can be at most 14 days ahead (until 2026-06-15 10:00)."
        );
    }

    #[test]
    fn a_skipped_local_time_is_refused_clearly() {
        let berlin = TimeZone::parse("Europe/Berlin").unwrap();
        let now = datetime!(2026-03-20 10:00 UTC);
        let err = check_schedule(&later("2026-03-29", "02:30"), berlin, now, rules()).unwrap_err();
        assert_eq!(
            err.message(),
            "2026-03-29 02:30 does not exist in Europe/Berlin: the clocks skip it for daylight saving time. Choose another time."
        );
    }

    #[test]
    fn malformed_dates_and_times_are_refused_by_field() {
        let now = datetime!(2026-06-01 10:00 UTC);
        assert!(matches!(
            check_schedule(&later("01/06/2026", "10:00"), TimeZone::utc(), now, rules()),
            Err(ScheduleError::Date(_))
        ));
        assert!(matches!(
            check_schedule(&later("2026-06-01", "25:00"), TimeZone::utc(), now, rules()),
            Err(ScheduleError::Time(_))
        ));
    }

    #[test]
    fn ticket_pattern_is_shown_as_an_example() {
        let rules = NotesRules {
            notes_required: true,
            ticket_required: true,
            ticket_pattern: Some("^CHG[0-9]{6}$".into()),
        };
        let err = check_notes("why", "CHG12", &rules).unwrap_err();
        assert_eq!(
            err.ticket.as_deref(),
            Some("Ticket Number must look like CHG123456.")
        );
        let err = check_notes("", "", &rules).unwrap_err();
        assert_eq!(
            err.notes.as_deref(),
            Some("Notes are required for this activity.")
        );
        assert_eq!(
            err.ticket.as_deref(),
            Some("Ticket Number is required for this activity.")
        );
        assert_eq!(
            check_notes(" why ", "CHG123456", &rules),
            Ok(("why".into(), "CHG123456".into()))
        );
    }

    #[test]
    fn notes_longer_than_the_limit_are_refused() {
        let rules = NotesRules {
            notes_required: false,
            ticket_required: false,
            ticket_pattern: None,
        };
        assert!(check_notes(&"x".repeat(2000), "", &rules).is_ok());
        assert!(check_notes(&"x".repeat(2001), "", &rules).is_err());
        assert!(check_notes("", &"1".repeat(65), &rules).is_err());
    }

    fn ids(n: usize) -> Vec<Uuid> {
        (0..n).map(|_| Uuid::new_v4()).collect()
    }

    fn texts(ids: &[Uuid]) -> Vec<String> {
        ids.iter().map(Uuid::to_string).collect()
    }

    #[test]
    fn a_pages_ticks_replace_its_rows_and_keep_the_other_pages_ticks() {
        let elsewhere = ids(2);
        let rows = ids(3);
        let ticked = [elsewhere.clone(), vec![rows[0]]].concat();
        let page = PageTicks {
            shown: &texts(&rows),
            picked: &texts(&rows[1..2]),
            whole_page: false,
        };
        assert_eq!(
            merge_ticks(&ticked, page),
            Ok(vec![elsewhere[0], elsewhere[1], rows[1]])
        );
        let all = PageTicks {
            whole_page: true,
            ..page
        };
        assert_eq!(merge_ticks(&ticked, all), Ok([elsewhere, rows].concat()));
    }

    #[test]
    fn ticks_that_are_not_ids_or_not_rows_shown_are_unreadable() {
        let rows = ids(2);
        let shown = texts(&rows);
        for picked in [vec!["x".to_owned()], texts(&ids(1))] {
            let page = PageTicks {
                shown: &shown,
                picked: &picked,
                whole_page: false,
            };
            assert_eq!(merge_ticks(&[], page), Err(TicksError::Unreadable));
        }
    }

    #[test]
    fn ticks_beyond_the_most_one_request_covers_are_refused_with_their_count() {
        let ticked = ids(MAX_RESOURCES);
        let rows = ids(2);
        let page = PageTicks {
            shown: &texts(&rows),
            picked: &texts(&rows[..1]),
            whole_page: false,
        };
        assert_eq!(
            merge_ticks(&ticked, page),
            Err(TicksError::TooMany(MAX_RESOURCES + 1))
        );
    }

    #[test]
    fn finish_looks_for_an_earlier_draft_only_when_another_id_is_posted() {
        let draft = Draft::new();
        let other = Uuid::new_v4();
        assert_eq!(earlier_draft(Some(&draft), Some(other)), Some(other));
        assert_eq!(earlier_draft(None, Some(other)), Some(other));
        assert_eq!(earlier_draft(Some(&draft), Some(draft.id)), None);
        assert_eq!(earlier_draft(Some(&draft), None), None);
    }

    #[test]
    fn a_schedule_is_kept_as_typed_and_chosen_only_when_it_gives_a_window() {
        let now = datetime!(2026-06-01 10:00 UTC);
        let mut draft = Draft::new();
        let good = later("2026-06-02", "09:00");
        assert!(
            draft
                .choose_schedule(good.clone(), TimeZone::utc(), now, rules())
                .is_ok()
        );
        assert_eq!(draft.schedule.as_ref(), Some(&good));
        let bad = later("2026-06-02", "99:00");
        assert!(
            draft
                .choose_schedule(bad.clone(), TimeZone::utc(), now, rules())
                .is_err()
        );
        assert_eq!((draft.schedule, draft.schedule_input), (None, Some(bad)));
    }

    #[test]
    fn notes_kept_on_back_count_as_done_only_when_valid_and_stay_too_long_to_pass() {
        let rules = NotesRules {
            notes_required: true,
            ticket_required: false,
            ticket_pattern: None,
        };
        let mut draft = Draft::new();
        draft.keep_typed_notes(TypedNotes::bounded(" why ", ""), &rules);
        assert!(draft.notes_done);
        assert_eq!(draft.notes, " why ");
        let long = TypedNotes::bounded(&"x".repeat(MAX_NOTES + 500), "");
        assert_eq!(long.notes.chars().count(), MAX_NOTES + 1);
        draft.keep_typed_notes(long, &rules);
        assert!(!draft.notes_done);
    }

    fn zones() -> impl Strategy<Value = TimeZone> {
        prop::sample::select(vec![
            "UTC",
            "Europe/Berlin",
            "America/New_York",
            "Australia/Lord_Howe",
            "Asia/Kolkata",
            "America/Sao_Paulo",
            "Pacific/Chatham",
        ])
        .prop_map(|n| TimeZone::parse(n).unwrap())
    }

    proptest! {
        /// Whatever zone and time is typed: a time the zone skips is refused; otherwise the
        /// start is accepted exactly when it lies within the rules, shows as the typed
        /// wall-clock time, and the window is the profile's duration.
        #[test]
        fn typed_starts_are_accepted_exactly_within_the_rules(
            tz in zones(),
            now_secs in 1_700_000_000i64..1_900_000_000,
            ahead_minutes in -180i64..(20 * 24 * 60),
        ) {
            let now = OffsetDateTime::from_unix_timestamp(now_secs).unwrap();
            let local = tz.local(now + Duration::minutes(ahead_minutes));
            let typed = PrimitiveDateTime::new(local.date(), local.time().replace_second(0).unwrap().replace_nanosecond(0).unwrap());
            let schedule = later(
                &format!("{:04}-{:02}-{:02}", local.year(), u8::from(local.month()), local.day()),
                &format!("{:02}:{:02}", local.hour(), local.minute()),
            );
            let result = check_schedule(&schedule, tz, now, rules());
            match tz.instant(typed) {
                Err(_) => prop_assert!(matches!(result, Err(ScheduleError::Time(_)))),
                Ok(instant) => {
                    let within = instant >= now - PAST_GRACE && instant <= now + Duration::days(14);
                    prop_assert_eq!(result.is_ok(), within);
                    if let Ok(w) = result {
                        let shown = tz.local(w.start);
                        prop_assert_eq!((shown.hour(), shown.minute()), (local.hour(), local.minute()));
                        prop_assert_eq!(w.end - w.start, Duration::minutes(120));
                    }
                }
            }
        }

        /// Every local time in a zone either names exactly the instant that shows as it, or is
        /// refused as skipped; an ambiguous one gives the earlier instant.
        #[test]
        fn local_times_resolve_to_the_earliest_matching_instant(
            tz in zones(),
            secs in 1_700_000_000i64..1_900_000_000,
        ) {
            let instant = OffsetDateTime::from_unix_timestamp(secs - secs % 60).unwrap();
            let local = tz.local(instant);
            let typed = PrimitiveDateTime::new(local.date(), local.time());
            let resolved = tz.instant(typed).unwrap();
            prop_assert!(resolved <= instant);
            let shown = tz.local(resolved);
            prop_assert_eq!((shown.date(), shown.time()), (local.date(), local.time()));
        }
    }
}
