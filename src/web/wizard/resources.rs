//! Page 2, Resource Selection: the resources the chosen policy grants, with search and
//! paging; ticks survive both; View Selections lists what is ticked.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use tower_sessions::Session;
use uuid::Uuid;

use super::{At, AtStep, OnResources, StepView, at_step, cancel, steps};
use crate::auth::session;
use crate::db::catalog::{self, Grant, Resource};
use crate::domain::wizard::{Draft, MAX_RESOURCES, Step};
use crate::state::AppState;
use crate::web::chrome::Chrome;
use crate::web::error::AppResult;
use crate::web::form::{Form, first};
use crate::web::guard::CurrentUser;

/// Resources per page.
pub const PAGE_SIZE: i64 = 25;

#[derive(Template, WebTemplate)]
#[template(path = "wizard/resources.html")]
pub struct ResourcesPage {
    chrome: Chrome,
    steps: Vec<StepView>,
    activity: String,
    policy: String,
    search: String,
    rows: Vec<(Resource, bool)>,
    selections: Option<Vec<Resource>>,
    ticked: usize,
    /// Ticked resources not on this page (the live count adds the page's ticks to it).
    ticked_elsewhere: usize,
    page: i64,
    /// How many pages the matching resources fill (at least `page`).
    pages: i64,
    max: usize,
    error: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct ResourcesQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    page: String,
    #[serde(default)]
    view: String,
}

fn target(search: &str, page: i64, selections: bool) -> String {
    let mut q: Vec<(&str, String)> = Vec::new();
    if !search.is_empty() {
        q.push(("q", search.to_owned()));
    }
    if page > 1 {
        q.push(("page", page.to_string()));
    }
    if selections {
        q.push(("view", "selections".into()));
    }
    let qs = serde_urlencoded::to_string(&q).unwrap_or_default();
    if qs.is_empty() {
        Step::Resources.path().to_owned()
    } else {
        format!("{}?{qs}", Step::Resources.path())
    }
}

#[allow(clippy::too_many_arguments)]
async fn page(
    state: &AppState,
    chrome: Chrome,
    draft: &Draft,
    grant: &Grant,
    search: &str,
    page: i64,
    selections: bool,
    error: Option<String>,
) -> AppResult<ResourcesPage> {
    let (found, total) = catalog::granted_resources(
        &state.db,
        grant.policy_id,
        search,
        PAGE_SIZE,
        (page - 1) * PAGE_SIZE,
    )
    .await?;
    let rows: Vec<(Resource, bool)> = found
        .into_iter()
        .map(|r| {
            let ticked = draft.resource_ids.contains(&r.id);
            (r, ticked)
        })
        .collect();
    let on_page = rows.iter().filter(|(_, t)| *t).count();
    let selections = if selections {
        Some(catalog::granted_subset(&state.db, grant.policy_id, &draft.resource_ids).await?)
    } else {
        None
    };
    Ok(ResourcesPage {
        chrome: chrome.at("dashboard"),
        steps: steps(draft, Step::Resources),
        activity: grant.activity_name.clone(),
        policy: grant.policy_name.clone(),
        search: search.to_owned(),
        rows,
        selections,
        ticked: draft.resource_ids.len(),
        ticked_elsewhere: draft.resource_ids.len().saturating_sub(on_page),
        page,
        pages: ((total + PAGE_SIZE - 1) / PAGE_SIZE).max(page),
        max: MAX_RESOURCES,
        error,
    })
}

pub async fn show(
    State(state): State<AppState>,
    chrome: Chrome,
    At(AtStep { draft, grant }, _): At<OnResources>,
    Query(q): Query<ResourcesQuery>,
) -> AppResult<Response> {
    let search: String = q.q.trim().chars().take(100).collect();
    let p = page(
        &state,
        chrome,
        &draft,
        &grant,
        &search,
        q.page.trim().parse::<i64>().unwrap_or(1).clamp(1, 100_000),
        q.view == "selections",
        None,
    )
    .await?;
    Ok(p.into_response())
}

/// The Resources step: the button pressed, the search and page shown, which view, the rows
/// shown and those ticked.
#[derive(serde::Deserialize)]
pub struct ResourcesForm {
    #[serde(default, deserialize_with = "first")]
    go: String,
    #[serde(default, deserialize_with = "first")]
    q: String,
    #[serde(default, deserialize_with = "first")]
    page: String,
    #[serde(default, deserialize_with = "first")]
    view: String,
    #[serde(default)]
    shown: Vec<String>,
    #[serde(default)]
    pick: Vec<String>,
}

/// Applies the ticks of the page just shown: its rows are replaced by what is ticked now.
/// Refuses ids the policy does not grant and more than the maximum.
async fn merge_ticks(
    state: &AppState,
    grant: &Grant,
    draft: &Draft,
    form: &ResourcesForm,
    whole_page: bool,
) -> AppResult<Result<Vec<Uuid>, String>> {
    let shown: Vec<Uuid> = form
        .shown
        .iter()
        .filter_map(|s| Uuid::parse_str(s).ok())
        .collect();
    let picked: Vec<Uuid> = form
        .pick
        .iter()
        .filter_map(|s| Uuid::parse_str(s).ok())
        .collect();
    if form.pick.len() != picked.len() || picked.iter().any(|p| !shown.contains(p)) {
        return Ok(Err(
            "The selection could not be read. Tick the resources again.".into(),
        ));
    }
    let mut ids: Vec<Uuid> = draft
        .resource_ids
        .iter()
        .copied()
        .filter(|id| !shown.contains(id))
        .collect();
    let picked = if whole_page { shown.clone() } else { picked };
    for p in picked {
        if !ids.contains(&p) {
            ids.push(p);
        }
    }
    if ids.len() > MAX_RESOURCES {
        return Ok(Err(crate::app::requests::too_many_resources(ids.len())));
    }
    let granted = catalog::granted_subset(&state.db, grant.policy_id, &ids).await?;
    if granted.len() != ids.len() {
        return Ok(Err(crate::app::requests::RESOURCE_NOT_GRANTED.into()));
    }
    Ok(Ok(ids))
}

pub async fn submit(
    State(state): State<AppState>,
    chrome: Chrome,
    user: CurrentUser,
    session: Session,
    Form(form): Form<ResourcesForm>,
) -> AppResult<Response> {
    let go = form.go.clone();
    if go == "cancel" {
        return Ok(cancel(&session).await?.into_response());
    }
    let AtStep { mut draft, grant } =
        match at_step(&state, &user, &session, Step::Resources).await? {
            Ok(at) => at,
            Err(elsewhere) => return Ok(elsewhere),
        };
    let search: String = form.q.trim().chars().take(100).collect();
    let current: i64 = form.page.parse().unwrap_or(1);
    let selections = form.view == "selections";

    if let Some(id) = go.strip_prefix("remove:") {
        if let Ok(id) = Uuid::parse_str(id) {
            draft.resource_ids.retain(|r| *r != id);
            session::save_draft(&session, &draft).await?;
        }
        return Ok(Redirect::to(&target(&search, current, true)).into_response());
    }
    if !selections {
        match merge_ticks(&state, &grant, &draft, &form, go == "select-page").await? {
            Ok(ids) => draft.resource_ids = ids,
            Err(message) => {
                let p = page(
                    &state,
                    chrome,
                    &draft,
                    &grant,
                    &search,
                    current.max(1),
                    false,
                    Some(message),
                )
                .await?;
                return Ok((StatusCode::UNPROCESSABLE_ENTITY, p).into_response());
            }
        }
    }
    session::save_draft(&session, &draft).await?;
    let to = match go.as_str() {
        "back" => Step::RequestType.path().to_owned(),
        "search" => target(&search, 1, false),
        "selections" => target(&search, current, true),
        "all" | "select-page" => target(&search, current, false),
        g if g.starts_with("page:") => target(
            &search,
            g[5..].parse::<i64>().unwrap_or(1).clamp(1, 100_000),
            false,
        ),
        _ => {
            if draft.resource_ids.is_empty() {
                let p = page(
                    &state,
                    chrome,
                    &draft,
                    &grant,
                    &search,
                    current.max(1),
                    selections,
                    Some(crate::app::requests::SELECT_RESOURCE.into()),
                )
                .await?;
                return Ok((StatusCode::UNPROCESSABLE_ENTITY, p).into_response());
            }
            Step::Notes.path().to_owned()
        }
    };
    Ok(Redirect::to(&to).into_response())
}
