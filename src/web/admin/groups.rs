//! Admin > Groups: the list, the group form (name, description, members), delete.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tower_sessions::Session;
use uuid::Uuid;

use super::picker::{self, Picker};
use super::revocation::{Ask, end_or_ask, flash_ended};
use super::{actor, finish_removal, finish_save, gone, invalid, taken};
use crate::db;
use crate::db::groups::Row;
use crate::db::look_alike::Named;
use crate::db::resources::Removal;
use crate::domain::admin_input::{self, FieldErrors, GroupInput};
use crate::state::AppState;
use crate::web::chrome::Chrome;
use crate::web::error::AppResult;
use crate::web::form::{Fields, MultiForm};
use crate::web::guard::CurrentUser;
use crate::web::path_id::PathId;

#[derive(Template, WebTemplate)]
#[template(path = "admin/groups.html")]
pub struct ListPage {
    chrome: Chrome,
    rows: Vec<Row>,
    search: String,
}

#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    q: String,
}

pub async fn list(
    State(state): State<AppState>,
    chrome: Chrome,
    Query(query): Query<ListQuery>,
) -> AppResult<ListPage> {
    let search: String = query.q.trim().chars().take(100).collect();
    Ok(ListPage {
        chrome: chrome.at("admin"),
        rows: db::groups::list(&state.db, &search).await?,
        search,
    })
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/group_form.html")]
pub struct FormPage {
    chrome: Chrome,
    id: Option<Uuid>,
    name: String,
    description: String,
    members: Picker,
    errors: FieldErrors,
}

async fn page(
    state: &AppState,
    chrome: Chrome,
    id: Option<Uuid>,
    f: &Fields,
    errors: FieldErrors,
) -> AppResult<FormPage> {
    let ticked = admin_input::ids(f.all("members"));
    let search = picker::search(f, "members");
    let choices = db::users::choices(&state.db, &search, &ticked, picker::SHOWN).await?;
    Ok(FormPage {
        chrome: chrome.at("admin"),
        id,
        name: f.text("name").to_owned(),
        description: f.text("description").to_owned(),
        members: Picker::new("members", "Members", &search, choices, &ticked)
            .with_error(errors.get("members")),
        errors,
    })
}

pub async fn new(State(state): State<AppState>, chrome: Chrome) -> AppResult<FormPage> {
    page(
        &state,
        chrome,
        None,
        &Fields::default(),
        FieldErrors::default(),
    )
    .await
}

pub async fn edit(
    State(state): State<AppState>,
    chrome: Chrome,
    session: Session,
    PathId(id): PathId,
) -> AppResult<Response> {
    let Some(g) = db::groups::get(&state.db, id).await? else {
        return gone(&session, "group", "/admin/groups").await;
    };
    let mut f = Fields::default();
    f.0.push(("name".into(), g.name));
    f.0.push(("description".into(), g.description));
    for m in db::groups::member_ids(&state.db, id).await? {
        f.0.push(("members".into(), m.to_string()));
    }
    Ok(page(&state, chrome, Some(id), &f, FieldErrors::default())
        .await?
        .into_response())
}

async fn save(
    state: &AppState,
    chrome: Chrome,
    user: &CurrentUser,
    session: &Session,
    id: Option<Uuid>,
    f: &Fields,
) -> AppResult<Response> {
    if picker::is_search(f) {
        return Ok(page(state, chrome, id, f, FieldErrors::default())
            .await?
            .into_response());
    }
    let members = admin_input::ids(f.all("members"));
    let mut errors = FieldErrors::default();
    let input = GroupInput::parse(f.text("name"), f.text("description"));
    if let Err(e) = &input {
        errors = e.clone();
    }
    if db::audit::count_existing(&state.db, "users", &members).await? != members.len() {
        errors.add(
            "members",
            "Some of the ticked users no longer exist. Check the list again.",
        );
    }
    let input = match input {
        Ok(g) if errors.is_empty() => g,
        _ => return Ok(invalid(page(state, chrome, id, f, errors).await?)),
    };
    if let Some(errors) =
        super::look_alike::warning(&state.db, Named::Groups, &input.name, id, f).await?
    {
        return Ok(invalid(page(state, chrome, id, f, errors).await?));
    }
    let mut tx = state.db.begin().await?;
    let mut ended = 0;
    let result = match id {
        None => db::groups::create(&mut tx, &actor(user), &input, &members)
            .await
            .map(|_| ()),
        Some(id) => {
            // Members who leave lose what policies grant the group.
            let before = db::grants::live_through_group(&mut tx, id).await?;
            let result = db::groups::update(&mut tx, &actor(user), id, &input, &members).await;
            if result.is_ok() {
                let ask = Ask {
                    section: "groups",
                    change: "Save",
                    subject: format!("the group {}", input.name),
                    action: format!("/admin/groups/{id}"),
                    back: format!("/admin/groups/{id}"),
                    fields: f,
                };
                match end_or_ask(&mut tx, chrome.clone(), user, &before, ask).await? {
                    Ok(n) => ended = n,
                    Err(page) => {
                        tx.rollback().await?;
                        return Ok(page);
                    }
                }
            }
            result
        }
    };
    let result = result.map(|()| "/admin/groups".to_owned());
    match finish_save(
        tx,
        session,
        result,
        id.is_some(),
        &input.name,
        "group",
        "/admin/groups",
    )
    .await?
    {
        Some(response) => {
            flash_ended(session, ended).await?;
            Ok(response)
        }
        None => {
            let mut errors = FieldErrors::default();
            errors.add("name", taken("group", &input.name));
            Ok(invalid(page(state, chrome, id, f, errors).await?))
        }
    }
}

pub async fn create(
    State(state): State<AppState>,
    chrome: Chrome,
    user: CurrentUser,
    session: Session,
    MultiForm(f): MultiForm,
) -> AppResult<Response> {
    save(&state, chrome, &user, &session, None, &f).await
}

pub async fn update(
    State(state): State<AppState>,
    chrome: Chrome,
    user: CurrentUser,
    session: Session,
    PathId(id): PathId,
    MultiForm(f): MultiForm,
) -> AppResult<Response> {
    save(&state, chrome, &user, &session, Some(id), &f).await
}

pub async fn delete(
    State(state): State<AppState>,
    user: CurrentUser,
    session: Session,
    PathId(id): PathId,
) -> AppResult<Response> {
    let mut tx = state.db.begin().await?;
    let result = db::groups::remove(&mut tx, &actor(&user), id)
        .await
        .map(|r| r.map_or_else(Removal::InUse, Removal::Deleted));
    finish_removal(
        tx,
        &session,
        result,
        "group",
        "/admin/groups",
        &format!("/admin/groups/{id}"),
    )
    .await
}
