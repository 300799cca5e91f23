//! Page 4, Scheduling: Now, or a date and time in the user's time zone; the window shown.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use time::OffsetDateTime;
use tower_sessions::Session;

use super::{At, AtStep, OnScheduling, StepView, at_step, cancel, draft_grant, guard, load, steps};
use crate::auth::session;
use crate::db::catalog::Grant;
use crate::domain::tz::TimeZone;
use crate::domain::wizard::{
    self, Draft, Schedule, ScheduleError, ScheduleRules, Step, format_local,
};
use crate::state::AppState;
use crate::web::chrome::Chrome;
use crate::web::error::AppResult;
use crate::web::form::{Form, first};
use crate::web::guard::CurrentUser;

#[derive(Template, WebTemplate)]
#[template(path = "wizard/scheduling.html")]
pub struct SchedulingPage {
    chrome: Chrome,
    steps: Vec<StepView>,
    later: bool,
    date: String,
    time: String,
    time_zone: &'static str,
    max_duration_minutes: i32,
    horizon_days: i32,
    /// "start – end" of the chosen window, or of one starting now.
    window: String,
    date_error: Option<String>,
    time_error: Option<String>,
    when_error: Option<String>,
}

/// The Scheduling rules of a grant's profile.
pub fn rules(grant: &Grant) -> ScheduleRules {
    crate::app::requests::schedule_rules(grant)
}

/// "YYYY-MM-DD HH:MM – YYYY-MM-DD HH:MM" in `tz`.
pub fn describe(window: &wizard::Window, tz: TimeZone) -> String {
    format!(
        "{} – {} ({})",
        format_local(tz.local(window.start)),
        format_local(tz.local(window.end)),
        tz.name()
    )
}

/// The window line's text for `input`: its window, or what to fix to get one.
fn window_text(input: &Schedule, tz: TimeZone, now: OffsetDateTime, grant: &Grant) -> String {
    match wizard::check_schedule(input, tz, now, rules(grant)) {
        Ok(w) => describe(&w, tz),
        Err(_) => "none yet: choose a valid date and time".into(),
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct WindowQuery {
    #[serde(default)]
    when: String,
    #[serde(default)]
    date: String,
    #[serde(default)]
    time: String,
}

/// The window line for the inputs as they are now, as plain text: the Scheduling page's
/// script asks for it as the requester picks a date and time (the server knows their time
/// zone's rules and the profile's duration). Without a draft at this step: empty.
pub async fn window(
    State(state): State<AppState>,
    user: CurrentUser,
    session: Session,
    Query(q): Query<WindowQuery>,
) -> AppResult<Response> {
    let draft = load(&session).await?;
    let grant = if guard(&draft, Step::Scheduling).is_none() {
        draft_grant(&state, &user, &draft).await?
    } else {
        None
    };
    let text = match grant {
        Some(grant) => {
            let input = if q.when == "later" {
                Schedule::Later {
                    date: q.date.chars().take(10).collect(),
                    time: q.time.chars().take(8).collect(),
                }
            } else {
                Schedule::Now
            };
            window_text(&input, user.time_zone, OffsetDateTime::now_utc(), &grant)
        }
        None => String::new(),
    };
    Ok((
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        text,
    )
        .into_response())
}

fn page(
    chrome: Chrome,
    user: &CurrentUser,
    draft: &Draft,
    grant: &Grant,
    input: &Schedule,
    error: Option<ScheduleError>,
) -> SchedulingPage {
    let tz = user.time_zone;
    let now = OffsetDateTime::now_utc();
    // The window of the time chosen, never another one's: a time that is not valid has none.
    let window = window_text(input, tz, now, grant);
    let (later, date, time) = match input {
        Schedule::Now => (false, String::new(), String::new()),
        Schedule::Later { date, time } => (true, date.clone(), time.clone()),
    };
    let (mut date_error, mut time_error, mut when_error) = (None, None, None);
    match error {
        Some(ScheduleError::Date(m)) => date_error = Some(m),
        Some(ScheduleError::Time(m)) => time_error = Some(m),
        Some(ScheduleError::When(m)) => when_error = Some(m),
        None => {}
    }
    SchedulingPage {
        chrome: chrome.at("dashboard"),
        steps: steps(draft, Step::Scheduling),
        later,
        date,
        time,
        time_zone: tz.name(),
        max_duration_minutes: grant.profile.max_duration_minutes,
        horizon_days: grant.profile.schedule_horizon_days,
        window,
        date_error,
        time_error,
        when_error,
    }
}

pub async fn show(
    State(_state): State<AppState>,
    chrome: Chrome,
    user: CurrentUser,
    At(AtStep { draft, grant }, _): At<OnScheduling>,
) -> AppResult<Response> {
    let input = draft
        .schedule_input
        .clone()
        .or_else(|| draft.schedule.clone())
        .unwrap_or(Schedule::Now);
    Ok(page(chrome, &user, &draft, &grant, &input, None).into_response())
}

/// The Scheduling step: the button pressed, now or later, and the date and time typed.
#[derive(serde::Deserialize)]
pub struct SchedulingForm {
    #[serde(default, deserialize_with = "first")]
    go: String,
    #[serde(default, deserialize_with = "first")]
    when: String,
    #[serde(default, deserialize_with = "first")]
    date: String,
    #[serde(default, deserialize_with = "first")]
    time: String,
}

impl From<&SchedulingForm> for Schedule {
    /// What was asked for, bounded before it is kept in the session; checked by
    /// `wizard::check_schedule`.
    fn from(form: &SchedulingForm) -> Self {
        if form.when == "later" {
            Schedule::Later {
                date: form.date.chars().take(10).collect(),
                time: form.time.chars().take(8).collect(),
            }
        } else {
            Schedule::Now
        }
    }
}

pub async fn submit(
    State(state): State<AppState>,
    chrome: Chrome,
    user: CurrentUser,
    session: Session,
    Form(form): Form<SchedulingForm>,
) -> AppResult<Response> {
    let go = form.go.as_str();
    if go == "cancel" {
        return Ok(cancel(&session).await?.into_response());
    }
    let AtStep { mut draft, grant } =
        match at_step(&state, &user, &session, Step::Scheduling).await? {
            Ok(at) => at,
            Err(elsewhere) => return Ok(elsewhere),
        };
    let input = Schedule::from(&form);
    if go == "back" {
        draft.schedule_input = Some(input);
        session::save_draft(&session, &draft).await?;
        return Ok(Redirect::to(Step::Notes.path()).into_response());
    }
    let (tz, now) = (user.time_zone, OffsetDateTime::now_utc());
    let chosen = draft.choose_schedule(input.clone(), tz, now, rules(&grant));
    session::save_draft(&session, &draft).await?;
    match chosen {
        Ok(_) => Ok(Redirect::to(Step::Review.path()).into_response()),
        Err(e) => {
            let p = page(chrome, &user, &draft, &grant, &input, Some(e));
            Ok((StatusCode::UNPROCESSABLE_ENTITY, p).into_response())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::web::form;

    #[test]
    fn later_keeps_the_typed_date_and_time_bounded() {
        let f: SchedulingForm =
            form::parse(b"go=next&when=later&date=2030-01-02xxxx&time=09:30").unwrap();
        assert_eq!(
            Schedule::from(&f),
            Schedule::Later {
                date: "2030-01-02".into(),
                time: "09:30".into()
            }
        );
    }

    #[test]
    fn anything_but_later_is_now() {
        let f: SchedulingForm = form::parse(b"date=2030-01-02").unwrap();
        assert_eq!(Schedule::from(&f), Schedule::Now);
    }
}
