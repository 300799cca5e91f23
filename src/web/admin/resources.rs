//! Admin > Resources: the list (search, filters, paging), the resource form, delete and
//! restore.

use super::crud::{Catalogue, Deletable, Restorable};
use super::{Pager, actor, finish_save, invalid, look_alike, taken};
use crate::db;
use crate::db::audit::{Actor, WriteError};
use crate::db::look_alike::Named;
use crate::db::resources::{Filter, Removal, Row};
use crate::domain::admin_input::{FieldErrors, RawResource, ResourceInput};
use crate::domain::catalog::ResourceKind;
use crate::domain::provisioner::ProvisionerKind;
use crate::domain::target_access::{
    AccessInput, RawAccess, credential_mismatch, fingerprint, parse_host_key,
};
use crate::provision::keyscan::{self, FoundKey};
use crate::state::AppState;
use crate::web::chrome::Chrome;
use crate::web::error::AppResult;
use crate::web::form::first;
use crate::web::guard::CurrentUser;
use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use sqlx::PgConnection;
use tower_sessions::Session;
use uuid::Uuid;

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

/// The list's filters, clean.
struct Filters {
    search: String,
    kind: Option<ResourceKind>,
    platform: String,
    archived: bool,
}

impl Filters {
    fn of(query: &ListQuery) -> Self {
        Self {
            search: query.q.trim().chars().take(100).collect(),
            kind: ResourceKind::parse(&query.kind),
            platform: query.platform.trim().chars().take(64).collect(),
            archived: !query.archived.is_empty(),
        }
    }

    fn filter(&self) -> Filter<'_> {
        Filter {
            search: &self.search,
            kind: self.kind,
            platform: &self.platform,
            archived: self.archived,
        }
    }

    fn kind_key(&self) -> &'static str {
        self.kind.map_or("", |k| k.key())
    }

    /// Paging that keeps the filters.
    fn pager(&self, page: i64, total: i64) -> Pager {
        Pager::new(
            page,
            total,
            &[
                ("q", &self.search),
                ("kind", self.kind_key()),
                ("platform", &self.platform),
                ("archived", if self.archived { "1" } else { "" }),
            ],
        )
    }
}

pub async fn list(
    State(state): State<AppState>,
    chrome: Chrome,
    Query(query): Query<ListQuery>,
) -> AppResult<ListPage> {
    let filters = Filters::of(&query);
    let page = Pager::requested(&query.page);
    let offset = Pager::offset(page);
    let (rows, total) =
        db::resources::list(&state.db, &filters.filter(), super::PAGE_SIZE, offset).await?;
    Ok(ListPage {
        chrome: chrome.at("admin"),
        rows,
        kind: filters.kind_key().to_owned(),
        pager: filters.pager(page, total),
        search: filters.search,
        platform: filters.platform,
        archived: filters.archived,
        kinds: ResourceKind::ALL,
        platforms: db::resources::platforms(&state.db).await?,
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
    provisioner: String,
    provisioners: Vec<ProvisionerKind>,
    credential: String,
    /// id, name, user.
    credentials: Vec<(Uuid, String, String)>,
    host_key: String,
    /// `postgresql`: the database name; `command`: the command's name.
    database_name: String,
    command: String,
    /// The fingerprint of the host key in the field, when it is one.
    fingerprint: Option<String>,
    /// What Fetch host key found, or why it found nothing.
    fetched: Option<Result<Vec<FoundKey>, String>>,
    errors: FieldErrors,
}

/// The resource form as posted.
#[derive(Debug, Default, Clone, serde::Deserialize)]
pub struct ResourceForm {
    #[serde(default, deserialize_with = "first")]
    name: String,
    #[serde(default, deserialize_with = "first")]
    kind: String,
    #[serde(default, deserialize_with = "first")]
    platform: String,
    #[serde(default, deserialize_with = "first")]
    address: String,
    #[serde(default, deserialize_with = "first")]
    port: String,
    #[serde(default, deserialize_with = "first")]
    description: String,
    #[serde(default, deserialize_with = "first")]
    provisioner: String,
    #[serde(default, deserialize_with = "first")]
    credential: String,
    #[serde(default, deserialize_with = "first")]
    host_key: String,
    #[serde(default, deserialize_with = "first")]
    database_name: String,
    #[serde(default, deserialize_with = "first")]
    command: String,
    /// `fetch_host_key` from Fetch host key, else Save.
    #[serde(default, deserialize_with = "first")]
    go: String,
    /// "Save anyway" on a look-alike name.
    #[serde(default, deserialize_with = "first")]
    look_alike_ok: String,
}

impl ResourceForm {
    fn raw(&self) -> RawResource<'_> {
        RawResource {
            name: &self.name,
            kind: &self.kind,
            platform: &self.platform,
            address: &self.address,
            port: &self.port,
            description: &self.description,
        }
    }

    fn raw_access(&self) -> RawAccess<'_> {
        RawAccess {
            provisioner: &self.provisioner,
            credential: &self.credential,
            host_key: &self.host_key,
            database_name: &self.database_name,
            command: &self.command,
        }
    }
}

/// The form with `f`'s values.
async fn page(
    state: &AppState,
    chrome: Chrome,
    id: Option<Uuid>,
    archived: bool,
    f: &ResourceForm,
    errors: FieldErrors,
) -> AppResult<FormPage> {
    let host_key = f.host_key.clone();
    Ok(FormPage {
        chrome: chrome.at("admin"),
        id,
        archived,
        name: f.name.clone(),
        kind: f.kind.clone(),
        platform: f.platform.clone(),
        address: f.address.clone(),
        port: f.port.clone(),
        description: f.description.clone(),
        kinds: ResourceKind::ALL,
        provisioner: f.provisioner.clone(),
        provisioners: ProvisionerKind::ALL.to_vec(),
        credential: f.credential.clone(),
        credentials: db::credentials::options(&state.db).await?,
        fingerprint: parse_host_key(&host_key).ok().and_then(|k| fingerprint(&k)),
        host_key,
        database_name: f.database_name.clone(),
        command: f.command.clone(),
        fetched: None,
        errors,
    })
}

pub async fn new(State(state): State<AppState>, chrome: Chrome) -> AppResult<FormPage> {
    let f = ResourceForm {
        kind: "server".into(),
        provisioner: ProvisionerKind::Simulated.key().into(),
        ..ResourceForm::default()
    };
    page(&state, chrome, None, false, &f, FieldErrors::default()).await
}

/// Fetch host key: the form again, with the keys the address offers and their fingerprints,
/// the preferred one filled in for the administrator to check and save.
async fn fetch_host_key(
    state: &AppState,
    chrome: Chrome,
    id: Option<Uuid>,
    f: &ResourceForm,
) -> AppResult<Response> {
    let port = match f.port.trim() {
        "" => Ok(22),
        p => p.parse::<u16>().map_err(|_| ()),
    };
    let fetched = match port {
        Ok(port) if port > 0 => keyscan::scan(f.address.trim(), port).await,
        _ => Err("The port must be a whole number from 1 to 65535.".to_owned()),
    };
    let mut f = f.clone();
    f.host_key = match &fetched {
        Ok(keys) => keys.first().map(|k| k.key.clone()).unwrap_or_default(),
        Err(_) => String::new(),
    };
    let archived = match id {
        Some(id) => db::resources::get(&state.db, id)
            .await?
            .is_some_and(|r| r.archived),
        None => false,
    };
    let mut form = page(state, chrome, id, archived, &f, FieldErrors::default()).await?;
    form.fetched = Some(fetched);
    Ok(form.into_response())
}

/// Checks the whole form; the input, or the form again with its problems.
async fn checked(
    state: &AppState,
    chrome: Chrome,
    id: Option<Uuid>,
    f: &ResourceForm,
) -> AppResult<Result<(ResourceInput, AccessInput), Response>> {
    let mut errors = FieldErrors::default();
    let input = ResourceInput::parse(&f.raw());
    if let Err(e) = &input {
        errors = e.clone();
    }
    let access = AccessInput::parse(&f.raw_access(), &mut errors);
    if let Some(credential) = access.credential_id {
        match db::credentials::get(&state.db, credential).await? {
            None => errors.add(
                "credential",
                "That service credential does not exist any more: choose another.",
            ),
            Some(c) => {
                if let Some(message) = credential_mismatch(access.provisioner, c.kind) {
                    errors.add("credential", message);
                }
            }
        }
    }
    let input = match input {
        Ok(r) if errors.is_empty() => r,
        _ => {
            return Ok(Err(invalid(
                page(state, chrome, id, false, f, errors).await?,
            )));
        }
    };
    if let Some(errors) = look_alike::warning(
        &state.db,
        Named::Resources,
        &input.name,
        id,
        !f.look_alike_ok.is_empty(),
    )
    .await?
    {
        return Ok(Err(invalid(
            page(state, chrome, id, false, f, errors).await?,
        )));
    }
    Ok(Ok((input, access)))
}

const LIST: &str = "/admin/resources";

/// Resources as a catalogue: the generic handlers of `super::crud` serve them.
pub struct Resources;

impl Catalogue for Resources {
    type Form = ResourceForm;
    const WHAT: &'static str = "resource";
    const LIST: &'static str = LIST;
    const NEW: &'static str = "/admin/resources/new";
    const ONE: &'static str = "/admin/resources/{id}";

    async fn edit_page(state: &AppState, chrome: Chrome, id: Uuid) -> AppResult<Option<Response>> {
        let Some(r) = db::resources::get(&state.db, id).await? else {
            return Ok(None);
        };
        let f = ResourceForm {
            name: r.name,
            kind: r.kind.key().to_owned(),
            platform: r.platform,
            address: r.address,
            port: r.port.map(|p| p.to_string()).unwrap_or_default(),
            description: r.description,
            provisioner: r.provisioner.key().to_owned(),
            credential: r.credential_id.map(|c| c.to_string()).unwrap_or_default(),
            host_key: r.host_key.unwrap_or_default(),
            database_name: r.database_name.unwrap_or_default(),
            command: r.provisioner_command.unwrap_or_default(),
            ..ResourceForm::default()
        };
        Ok(Some(
            page(
                state,
                chrome,
                Some(id),
                r.archived,
                &f,
                FieldErrors::default(),
            )
            .await?
            .into_response(),
        ))
    }

    /// Creates (`id` None) or updates a resource; "Fetch host key" fills the form instead.
    async fn save(
        state: &AppState,
        chrome: Chrome,
        user: &CurrentUser,
        session: &Session,
        id: Option<Uuid>,
        f: &ResourceForm,
    ) -> AppResult<Response> {
        if f.go == "fetch_host_key" {
            return fetch_host_key(state, chrome, id, f).await;
        }
        let (input, access) = match checked(state, chrome.clone(), id, f).await? {
            Ok(checked) => checked,
            Err(page) => return Ok(page),
        };
        let mut tx = state.db.begin().await?;
        let result = match id {
            None => db::resources::create(&mut tx, &actor(user), &input, &access)
                .await
                .map(|_| ()),
            Some(id) => db::resources::update(&mut tx, &actor(user), id, &input, &access).await,
        };
        let result = result.map(|()| LIST.to_owned());
        match finish_save(
            tx,
            session,
            result,
            id.is_some(),
            &input.name,
            "resource",
            LIST,
        )
        .await?
        {
            Some(response) => Ok(response),
            None => {
                let mut errors = FieldErrors::default();
                errors.add("name", taken("resource", &input.name));
                Ok(invalid(page(state, chrome, id, false, f, errors).await?))
            }
        }
    }
}

impl Deletable for Resources {
    const DELETE: &'static str = "/admin/resources/{id}/delete";

    async fn remove(tx: &mut PgConnection, actor: &Actor, id: Uuid) -> Result<Removal, WriteError> {
        db::resources::remove(tx, actor, id).await
    }
}

impl Restorable for Resources {
    const RESTORE: &'static str = "/admin/resources/{id}/restore";

    async fn restore(tx: &mut PgConnection, actor: &Actor, id: Uuid) -> Result<String, WriteError> {
        db::resources::restore(tx, actor, id).await
    }
}
