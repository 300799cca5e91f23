//! Admin > Resources: the list (search, filters, paging), the resource form, delete and
//! restore.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tower_sessions::Session;
use uuid::Uuid;

use super::{Pager, actor, done, finish_removal, gone, invalid, look_alike, parse_id, taken};
use crate::AppState;
use crate::auth::CurrentUser;
use crate::db;
use crate::db::audit::WriteError;
use crate::db::look_alike::Named;
use crate::db::resources::{Filter, Row};
use crate::domain::admin_input::{FieldErrors, RawResource, ResourceInput};
use crate::domain::catalog::ResourceKind;
use crate::error::AppResult;
use crate::web::chrome::Chrome;
use crate::web::form::{Fields, MultiForm};

#[derive(Template, WebTemplate)]
#[template(path = "admin/resources.html")]
pub struct ListPage {
    chrome: Chrome,
    rows: Vec<Row>,
    search: String,
    kind: String,
    platform: String,
    archived: bool,
    kinds: [ResourceKind; 4],
    platforms: Vec<String>,
    pager: Pager,
}

#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    platform: String,
    #[serde(default)]
    archived: String,
    #[serde(default)]
    page: String,
}

pub async fn list(
    State(state): State<AppState>,
    chrome: Chrome,
    Query(query): Query<ListQuery>,
) -> AppResult<ListPage> {
    let search: String = query.q.trim().chars().take(100).collect();
    let kind = ResourceKind::parse(&query.kind);
    let platform: String = query.platform.trim().chars().take(64).collect();
    let archived = !query.archived.is_empty();
    let page = Pager::requested(&query.page);
    let filter = Filter {
        search: &search,
        kind,
        platform: &platform,
        archived,
    };
    let (rows, total) =
        db::resources::list(&state.db, &filter, super::PAGE_SIZE, Pager::offset(page)).await?;
    let kind_key = kind.map(|k| k.key()).unwrap_or("");
    let pager = Pager::new(
        page,
        total,
        &[
            ("q", &search),
            ("kind", kind_key),
            ("platform", &platform),
            ("archived", if archived { "1" } else { "" }),
        ],
    );
    Ok(ListPage {
        chrome: chrome.at("admin"),
        rows,
        kind: kind_key.to_owned(),
        search,
        platform,
        archived,
        kinds: ResourceKind::ALL,
        platforms: db::resources::platforms(&state.db).await?,
        pager,
    })
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/resource_form.html")]
pub struct FormPage {
    chrome: Chrome,
    /// None: a new resource.
    id: Option<Uuid>,
    archived: bool,
    name: String,
    kind: String,
    platform: String,
    address: String,
    port: String,
    description: String,
    kinds: [ResourceKind; 4],
    errors: FieldErrors,
}

impl FormPage {
    fn from_fields(chrome: Chrome, id: Option<Uuid>, f: &Fields, errors: FieldErrors) -> Self {
        Self {
            chrome: chrome.at("admin"),
            id,
            archived: false,
            name: f.text("name").to_owned(),
            kind: f.text("kind").to_owned(),
            platform: f.text("platform").to_owned(),
            address: f.text("address").to_owned(),
            port: f.text("port").to_owned(),
            description: f.text("description").to_owned(),
            kinds: ResourceKind::ALL,
            errors,
        }
    }
}

fn raw(f: &Fields) -> RawResource<'_> {
    RawResource {
        name: f.text("name"),
        kind: f.text("kind"),
        platform: f.text("platform"),
        address: f.text("address"),
        port: f.text("port"),
        description: f.text("description"),
    }
}

pub async fn new(chrome: Chrome) -> FormPage {
    let mut fields = Fields::default();
    fields.0.push(("kind".into(), "server".into()));
    FormPage::from_fields(chrome, None, &fields, FieldErrors::default())
}

pub async fn create(
    State(state): State<AppState>,
    chrome: Chrome,
    user: CurrentUser,
    session: Session,
    MultiForm(f): MultiForm,
) -> AppResult<Response> {
    let input = match ResourceInput::parse(&raw(&f)) {
        Ok(r) => r,
        Err(errors) => return Ok(invalid(FormPage::from_fields(chrome, None, &f, errors))),
    };
    if let Some(errors) =
        look_alike::warning(&state.db, Named::Resources, &input.name, None, &f).await?
    {
        return Ok(invalid(FormPage::from_fields(chrome, None, &f, errors)));
    }
    let mut tx = state.db.begin().await?;
    match db::resources::create(&mut tx, &actor(&user), &input).await {
        Ok(_) => {
            tx.commit().await?;
            done(
                &session,
                format!("Created {}.", input.name),
                "/admin/resources",
            )
            .await
        }
        Err(WriteError::Taken) => {
            let mut errors = FieldErrors::default();
            errors.add("name", taken("resource", &input.name));
            Ok(invalid(FormPage::from_fields(chrome, None, &f, errors)))
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn edit(
    State(state): State<AppState>,
    chrome: Chrome,
    session: Session,
    Path(id): Path<String>,
) -> AppResult<Response> {
    let id = parse_id(&id)?;
    let Some(r) = db::resources::get(&state.db, id).await? else {
        return gone(&session, "resource", "/admin/resources").await;
    };
    Ok(FormPage {
        chrome: chrome.at("admin"),
        id: Some(r.id),
        archived: r.archived,
        name: r.name,
        kind: r.kind.key().to_owned(),
        platform: r.platform,
        address: r.address,
        port: r.port.map(|p| p.to_string()).unwrap_or_default(),
        description: r.description,
        kinds: ResourceKind::ALL,
        errors: FieldErrors::default(),
    }
    .into_response())
}

pub async fn update(
    State(state): State<AppState>,
    chrome: Chrome,
    user: CurrentUser,
    session: Session,
    Path(id): Path<String>,
    MultiForm(f): MultiForm,
) -> AppResult<Response> {
    let id = parse_id(&id)?;
    let input = match ResourceInput::parse(&raw(&f)) {
        Ok(r) => r,
        Err(errors) => return Ok(invalid(FormPage::from_fields(chrome, Some(id), &f, errors))),
    };
    if let Some(errors) =
        look_alike::warning(&state.db, Named::Resources, &input.name, Some(id), &f).await?
    {
        return Ok(invalid(FormPage::from_fields(chrome, Some(id), &f, errors)));
    }
    let mut tx = state.db.begin().await?;
    match db::resources::update(&mut tx, &actor(&user), id, &input).await {
        Ok(()) => {
            tx.commit().await?;
            done(
                &session,
                format!("Saved {}.", input.name),
                "/admin/resources",
            )
            .await
        }
        Err(WriteError::Taken) => {
            let mut errors = FieldErrors::default();
            errors.add("name", taken("resource", &input.name));
            Ok(invalid(FormPage::from_fields(chrome, Some(id), &f, errors)))
        }
        Err(WriteError::NotFound) => gone(&session, "resource", "/admin/resources").await,
        Err(e) => Err(e.into()),
    }
}

pub async fn delete(
    State(state): State<AppState>,
    user: CurrentUser,
    session: Session,
    Path(id): Path<String>,
) -> AppResult<Response> {
    let id = parse_id(&id)?;
    let mut tx = state.db.begin().await?;
    let result = db::resources::remove(&mut tx, &actor(&user), id).await;
    finish_removal(
        tx,
        &session,
        result,
        "resource",
        "/admin/resources",
        &format!("/admin/resources/{id}"),
    )
    .await
}

pub async fn restore(
    State(state): State<AppState>,
    user: CurrentUser,
    session: Session,
    Path(id): Path<String>,
) -> AppResult<Response> {
    let id = parse_id(&id)?;
    let mut tx = state.db.begin().await?;
    match db::resources::restore(&mut tx, &actor(&user), id).await {
        Ok(name) => {
            tx.commit().await?;
            done(&session, format!("Restored {name}."), "/admin/resources").await
        }
        Err(WriteError::NotFound) => gone(&session, "resource", "/admin/resources").await,
        Err(e) => Err(e.into()),
    }
}
