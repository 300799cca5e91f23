//! Page 1, Request Type: Select Activity from what the user's policies grant, and the policy
//! when several grant it.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use tower_sessions::Session;
use uuid::Uuid;

use super::{StepView, cancel, load, steps};
use crate::app::requests::{ACTIVITY_NOT_GRANTED, SELECT_ACTIVITY};
use crate::app::{self, wizard::ActivityChoice};
use crate::auth::session::{self, FlashKind};
use crate::db::catalog::{self, GrantedActivity};
use crate::domain::wizard::{Draft, Step};
use crate::state::AppState;
use crate::web::chrome::Chrome;
use crate::web::error::AppResult;
use crate::web::form::{Form, first};
use crate::web::guard::CurrentUser;

/// One choice in the list: an activity through one policy.
pub struct Choice {
    pub value: String,
    pub activity: GrantedActivity,
    /// Several policies grant this activity: the policy is named in the choice.
    pub show_policy: bool,
    pub checked: bool,
}

#[derive(Template, WebTemplate)]
#[template(path = "wizard/request_type.html")]
pub struct RequestTypePage {
    chrome: Chrome,
    steps: Vec<StepView>,
    search: String,
    choices: Vec<Choice>,
    total: usize,
    error: Option<&'static str>,
}

#[derive(Debug, Default, Deserialize)]
pub struct SearchQuery {
    #[serde(default)]
    q: String,
}

fn choice_value(a: &GrantedActivity) -> String {
    format!("{}:{}", a.activity_id, a.policy_id)
}

async fn page(
    state: &AppState,
    chrome: Chrome,
    user: &CurrentUser,
    draft: &Draft,
    search: &str,
    selected: Option<String>,
    error: Option<&'static str>,
) -> AppResult<RequestTypePage> {
    let granted = catalog::granted_activities(&state.db, user.id).await?;
    let total = granted.len();
    let selected = selected.or_else(|| match (draft.activity_id, draft.policy_id) {
        (Some(a), Some(p)) => Some(format!("{a}:{p}")),
        _ => None,
    });
    let needle = search.to_lowercase();
    let choices = granted
        .iter()
        .filter(|a| {
            needle.is_empty()
                || a.name.to_lowercase().contains(&needle)
                || a.platform.to_lowercase().contains(&needle)
                || a.description.to_lowercase().contains(&needle)
        })
        .map(|a| Choice {
            value: choice_value(a),
            show_policy: granted
                .iter()
                .filter(|b| b.activity_id == a.activity_id)
                .count()
                > 1,
            checked: selected.as_deref() == Some(&choice_value(a)),
            activity: a.clone(),
        })
        .collect();
    Ok(RequestTypePage {
        chrome: chrome.at("dashboard"),
        steps: steps(draft, Step::RequestType),
        search: search.to_owned(),
        choices,
        total,
        error,
    })
}

pub async fn show(
    State(state): State<AppState>,
    chrome: Chrome,
    user: CurrentUser,
    session: Session,
    Query(q): Query<SearchQuery>,
) -> AppResult<RequestTypePage> {
    let draft = load(&session).await?;
    let search: String = q.q.trim().chars().take(100).collect();
    page(&state, chrome, &user, &draft, &search, None, None).await
}

/// The Request Type step: the button pressed, the search, and the chosen
/// `activity:policy` pair.
#[derive(serde::Deserialize)]
pub struct RequestTypeForm {
    #[serde(default, deserialize_with = "first")]
    go: String,
    #[serde(default, deserialize_with = "first")]
    q: String,
    #[serde(default, deserialize_with = "first")]
    activity: String,
}

impl RequestTypeForm {
    /// The chosen activity and policy, if the pair reads as two ids.
    fn chosen(&self) -> Option<(Uuid, Uuid)> {
        let (a, p) = self.activity.split_once(':')?;
        Some((Uuid::parse_str(a).ok()?, Uuid::parse_str(p).ok()?))
    }
}

pub async fn submit(
    State(state): State<AppState>,
    chrome: Chrome,
    user: CurrentUser,
    session: Session,
    Form(form): Form<RequestTypeForm>,
) -> AppResult<Response> {
    match form.go.as_str() {
        "cancel" => return Ok(cancel(&session).await?.into_response()),
        // Request Type is the first page: it offers no Back, and a Back posted anyway leaves
        // the wizard as it is (Create Session then offers to continue or start over).
        "back" => return Ok(Redirect::to("/dashboard").into_response()),
        _ => {}
    }
    let mut draft = load(&session).await?;
    let search: String = form.q.trim().chars().take(100).collect();
    if form.go == "search" {
        return Ok(Redirect::to(&search_target(&search)).into_response());
    }
    let actor = app::Actor::from(&user);
    let error =
        match app::wizard::choose_activity(&state, &actor, &mut draft, form.chosen()).await? {
            ActivityChoice::Chosen { dropped } => {
                if dropped > 0 {
                    session::flash(&session, FlashKind::Info, dropped_text(dropped)).await?;
                }
                session::save_draft(&session, &draft).await?;
                return Ok(Redirect::to(Step::Resources.path()).into_response());
            }
            ActivityChoice::Nothing => SELECT_ACTIVITY,
            ActivityChoice::NotGranted => ACTIVITY_NOT_GRANTED,
        };
    let page = page(&state, chrome, &user, &draft, &search, None, Some(error)).await?;
    Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
}

/// Request Type showing the activities that match `search`.
fn search_target(search: &str) -> String {
    format!(
        "{}?{}",
        Step::RequestType.path(),
        serde_urlencoded::to_string([("q", search)]).unwrap_or_default()
    )
}

/// Resources ticked before that the new choice does not grant: how many were unticked.
fn dropped_text(dropped: usize) -> String {
    let noun = if dropped == 1 {
        "resource was"
    } else {
        "resources were"
    };
    format!("{dropped} selected {noun} removed: not available for the new choice.")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::web::form;

    #[test]
    fn the_chosen_pair_reads_as_two_ids_or_nothing() {
        let (a, p) = (Uuid::new_v4(), Uuid::new_v4());
        let f: RequestTypeForm = form::parse(format!("activity={a}:{p}").as_bytes()).unwrap();
        assert_eq!(f.chosen(), Some((a, p)));
        for bad in [&b"activity=x:y"[..], b"activity=", b""] {
            let f: RequestTypeForm = form::parse(bad).unwrap();
            assert_eq!(f.chosen(), None);
        }
    }
}
