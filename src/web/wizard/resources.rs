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
use crate::app::requests::{RESOURCE_NOT_GRANTED, SELECT_RESOURCE, too_many_resources};
use crate::app::{self, wizard::TicksRefused};
use crate::auth::session;
use crate::db::catalog::{self, Grant, Resource};
use crate::domain::wizard::{Draft, MAX_RESOURCES, PageTicks, Step};
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

/// Which part of the list a page shows.
#[derive(Debug, Clone)]
struct Listing {
    search: String,
    page: i64,
    /// View Selections: the ticked resources listed apart.
    selections: bool,
}

impl Listing {
    /// As the address asks for it.
    fn asked(q: &ResourcesQuery) -> Self {
        Self {
            search: q.q.trim().chars().take(100).collect(),
            page: q.page.trim().parse::<i64>().unwrap_or(1).clamp(1, 100_000),
            selections: q.view == "selections",
        }
    }

    /// As the page that posted the form showed it.
    fn posted(form: &ResourcesForm) -> Self {
        Self {
            search: form.q.trim().chars().take(100).collect(),
            page: form.page.parse::<i64>().unwrap_or(1).clamp(1, 100_000),
            selections: form.view == "selections",
        }
    }
}

async fn page(
    state: &AppState,
    chrome: Chrome,
    draft: &Draft,
    grant: &Grant,
    listing: &Listing,
    error: Option<String>,
) -> AppResult<ResourcesPage> {
    let page = listing.page;
    let (found, total) = catalog::granted_resources(
        &state.db,
        grant.policy_id,
        &listing.search,
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
    let selections = if listing.selections {
        Some(catalog::granted_subset(&state.db, grant.policy_id, &draft.resource_ids).await?)
    } else {
        None
    };
    Ok(ResourcesPage {
        chrome: chrome.at("dashboard"),
        steps: steps(draft, Step::Resources),
        activity: grant.activity_name.clone(),
        policy: grant.policy_name.clone(),
        search: listing.search.clone(),
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
    let listing = Listing::asked(&q);
    Ok(page(&state, chrome, &draft, &grant, &listing, None)
        .await?
        .into_response())
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

pub async fn submit(
    State(state): State<AppState>,
    chrome: Chrome,
    user: CurrentUser,
    session: Session,
    Form(form): Form<ResourcesForm>,
) -> AppResult<Response> {
    let go = form.go.as_str();
    if go == "cancel" {
        return Ok(cancel(&session).await?.into_response());
    }
    let mut at = match at_step(&state, &user, &session, Step::Resources).await? {
        Ok(at) => at,
        Err(elsewhere) => return Ok(elsewhere),
    };
    let shown = Listing::posted(&form);
    if let Some(id) = go.strip_prefix("remove:") {
        untick(&session, &mut at.draft, id).await?;
        return Ok(Redirect::to(&target(&shown.search, shown.page, true)).into_response());
    }
    if !shown.selections
        && let Err(refused) =
            app::wizard::tick(&state, &at.grant, &mut at.draft, form.ticks()).await?
    {
        return refuse(&state, chrome, &at, &shown, refused_text(refused)).await;
    }
    session::save_draft(&session, &at.draft).await?;
    if let Some(to) = leaving_to(go, &shown) {
        return Ok(Redirect::to(&to).into_response());
    }
    if at.draft.resource_ids.is_empty() {
        return refuse(&state, chrome, &at, &shown, SELECT_RESOURCE.into()).await;
    }
    Ok(Redirect::to(Step::Notes.path()).into_response())
}

impl ResourcesForm {
    /// The ticks of the page that posted the form.
    fn ticks(&self) -> PageTicks<'_> {
        PageTicks {
            shown: &self.shown,
            picked: &self.pick,
            whole_page: self.go == "select-page",
        }
    }
}

/// Remove on View Selections: unticks one resource.
async fn untick(session: &Session, draft: &mut Draft, id: &str) -> AppResult<()> {
    if let Ok(id) = Uuid::parse_str(id) {
        draft.resource_ids.retain(|r| *r != id);
        session::save_draft(session, draft).await?;
    }
    Ok(())
}

/// The page shown again with what to correct.
async fn refuse(
    state: &AppState,
    chrome: Chrome,
    at: &AtStep,
    listing: &Listing,
    message: String,
) -> AppResult<Response> {
    let p = page(state, chrome, &at.draft, &at.grant, listing, Some(message)).await?;
    Ok((StatusCode::UNPROCESSABLE_ENTITY, p).into_response())
}

/// Where a button other than Next goes (the ticks applied); `None` for Next.
fn leaving_to(go: &str, shown: &Listing) -> Option<String> {
    let search = &shown.search;
    Some(match go {
        "back" => Step::RequestType.path().to_owned(),
        "search" => target(search, 1, false),
        "selections" => target(search, shown.page, true),
        "all" | "select-page" => target(search, shown.page, false),
        g if g.starts_with("page:") => target(
            search,
            g[5..].parse::<i64>().unwrap_or(1).clamp(1, 100_000),
            false,
        ),
        _ => return None,
    })
}

/// Why the ticks were not applied, in the page's words.
fn refused_text(refused: TicksRefused) -> String {
    match refused {
        TicksRefused::Unreadable => {
            "The selection could not be read. Tick the resources again.".into()
        }
        TicksRefused::TooMany(ticked) => too_many_resources(ticked),
        TicksRefused::NotGranted => RESOURCE_NOT_GRANTED.into(),
    }
}
