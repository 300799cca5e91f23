//! Admin > Access policies: the list, the policy form (profile, members, activities,
//! resources), enable, disable, delete. The wizard reads policies live: changes apply at once.

use super::crud::Catalogue;
use super::picker::{self, Picker};
use super::revocation::{Ask, end_or_ask, flash_ended};
use super::{actor, done, finish_removal, finish_save, gone, invalid, taken};
use crate::db;
use crate::db::audit::WriteError;
use crate::db::look_alike::Named;
use crate::db::policies::{LINKS, PolicyInput, Row};
use crate::db::resources::Removal;
use crate::domain::admin_input::{self, FieldErrors};
use crate::state::AppState;
use crate::web::chrome::Chrome;
use crate::web::error::AppResult;
use crate::web::form::{Fields, Form, first};
use crate::web::guard::CurrentUser;
use crate::web::path_id::PathId;
use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tower_sessions::Session;
use uuid::Uuid;

/// How many unticked resources the resource list shows at most (there can be thousands).
pub const RESOURCES_SHOWN: i64 = 200;

#[derive(Template, WebTemplate)]
#[template(path = "admin/policies.html")]
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
        rows: db::policies::list(&state.db, &search).await?,
        search,
    })
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/policy_form.html")]
pub struct FormPage {
    chrome: Chrome,
    id: Option<Uuid>,
    enabled: bool,
    name: String,
    description: String,
    profile: String,
    profiles: Vec<(Uuid, String)>,
    users: Picker,
    groups: Picker,
    activities: Picker,
    resources: Picker,
    warnings: Vec<String>,
    errors: FieldErrors,
}

/// The policy form as posted.
#[derive(Debug, Default, serde::Deserialize)]
pub struct PolicyForm {
    #[serde(default, deserialize_with = "first")]
    name: String,
    #[serde(default, deserialize_with = "first")]
    description: String,
    #[serde(default, deserialize_with = "first")]
    profile: String,
    /// Ticked ids, and each list's search box.
    #[serde(default)]
    users: Vec<String>,
    #[serde(default, deserialize_with = "first")]
    users_q: String,
    #[serde(default)]
    groups: Vec<String>,
    #[serde(default, deserialize_with = "first")]
    groups_q: String,
    #[serde(default)]
    activities: Vec<String>,
    #[serde(default, deserialize_with = "first")]
    activities_q: String,
    #[serde(default)]
    resources: Vec<String>,
    #[serde(default, deserialize_with = "first")]
    resources_q: String,
    /// `search` from a list's Search button, else Save.
    #[serde(default, deserialize_with = "first")]
    go: String,
    /// "Save anyway" on a look-alike name.
    #[serde(default, deserialize_with = "first")]
    look_alike_ok: String,
    /// How many sessions the administrator agreed to end.
    #[serde(default, deserialize_with = "first")]
    confirm: String,
}

impl PolicyForm {
    /// The ticked ids of the list `field` (one of `LINKS`' fields).
    fn list_mut(&mut self, field: &str) -> Option<&mut Vec<String>> {
        match field {
            "users" => Some(&mut self.users),
            "groups" => Some(&mut self.groups),
            "activities" => Some(&mut self.activities),
            "resources" => Some(&mut self.resources),
            _ => None,
        }
    }

    /// The form as fields, posted again by the "end these sessions?" page.
    fn echo(&self) -> Fields {
        Fields::of(
            &[
                ("name", &self.name),
                ("description", &self.description),
                ("profile", &self.profile),
                ("users_q", &self.users_q),
                ("groups_q", &self.groups_q),
                ("activities_q", &self.activities_q),
                ("resources_q", &self.resources_q),
                ("look_alike_ok", &self.look_alike_ok),
                ("confirm", &self.confirm),
            ],
            &[
                ("users", &self.users),
                ("groups", &self.groups),
                ("activities", &self.activities),
                ("resources", &self.resources),
            ],
        )
    }
}

/// Enable, Disable and Delete: only the count of sessions confirmed to end.
#[derive(serde::Deserialize)]
pub struct ConfirmForm {
    #[serde(default, deserialize_with = "first")]
    confirm: String,
}

impl ConfirmForm {
    fn echo(&self) -> Fields {
        Fields(vec![("confirm".into(), self.confirm.clone())])
    }
}

fn ids(values: &[String]) -> Vec<Uuid> {
    admin_input::ids(values.iter().map(String::as_str))
}

async fn page(
    state: &AppState,
    chrome: Chrome,
    id: Option<Uuid>,
    f: &PolicyForm,
    errors: FieldErrors,
) -> AppResult<FormPage> {
    let (tu, tg, ta, tr) = (
        ids(&f.users),
        ids(&f.groups),
        ids(&f.activities),
        ids(&f.resources),
    );
    let (su, sg, sa, sr) = (
        picker::bounded(&f.users_q),
        picker::bounded(&f.groups_q),
        picker::bounded(&f.activities_q),
        picker::bounded(&f.resources_q),
    );
    let users = db::users::choices(&state.db, &su, &tu, picker::SHOWN).await?;
    let groups = db::groups::choices(&state.db, &sg, &tg, picker::SHOWN).await?;
    let activities = db::activities::choices(&state.db, &sa, &ta, picker::SHOWN).await?;
    let resources = db::resources::choices(&state.db, &sr, &tr, RESOURCES_SHOWN).await?;
    let mut warnings = Vec::new();
    let mut enabled = true;
    if let Some(id) = id {
        if let Some(p) = db::policies::get(&state.db, id).await? {
            enabled = p.enabled;
        }
        if let Some(username) = db::policies::lone_self_approver(&state.db, id).await? {
            warnings.push(format!(
                "{username} is this policy's only member and also the only approver its connection profile names: nobody else can approve {username}'s requests."
            ));
        }
    }
    Ok(FormPage {
        chrome: chrome.at("admin"),
        id,
        enabled,
        name: f.name.clone(),
        description: f.description.clone(),
        profile: f.profile.clone(),
        profiles: db::profiles::options(&state.db).await?,
        users: Picker::new("users", "Members: users", &su, users, &tu)
            .with_error(errors.get("users")),
        groups: Picker::new("groups", "Members: groups", &sg, groups, &tg)
            .with_error(errors.get("groups")),
        activities: Picker::new("activities", "Activities", &sa, activities, &ta)
            .with_error(errors.get("activities")),
        resources: Picker::new("resources", "Resources", &sr, resources, &tr)
            .with_error(errors.get("resources")),
        warnings,
        errors,
    })
}

pub async fn new(State(state): State<AppState>, chrome: Chrome) -> AppResult<FormPage> {
    page(
        &state,
        chrome,
        None,
        &PolicyForm::default(),
        FieldErrors::default(),
    )
    .await
}

async fn parse(state: &AppState, f: &PolicyForm) -> AppResult<Result<PolicyInput, FieldErrors>> {
    let mut e = FieldErrors::default();
    let name = admin_input::text(&mut e, "name", "Name", &f.name, 100);
    let description =
        admin_input::optional_text(&mut e, "description", "Description", &f.description, 1000);
    let profile_id = match Uuid::parse_str(f.profile.trim()) {
        Ok(id) if db::profiles::get(&state.db, id).await?.is_some() => id,
        Ok(_) => {
            e.add(
                "profile",
                "That connection profile no longer exists. Choose another.",
            );
            Uuid::nil()
        }
        Err(_) => {
            e.add("profile", "Choose a connection profile.");
            Uuid::nil()
        }
    };
    let mut lists: Vec<Vec<Uuid>> = Vec::new();
    for (field, ticked) in [
        ("users", &f.users),
        ("groups", &f.groups),
        ("activities", &f.activities),
        ("resources", &f.resources),
    ] {
        // Each list's field is named as its table.
        let ids = ids(ticked);
        if db::audit::count_existing(&state.db, field, &ids).await? != ids.len() {
            e.add(
                field,
                format!("Some of the ticked {field} no longer exist. Check the list again."),
            );
        }
        lists.push(ids);
    }
    let mut lists = lists.into_iter();
    let mut next = || lists.next().unwrap_or_default();
    let input = PolicyInput {
        name,
        description,
        profile_id,
        users: next(),
        groups: next(),
        activities: next(),
        resources: next(),
    };
    Ok(e.into_result(input))
}

async fn switch(
    state: &AppState,
    chrome: Chrome,
    user: &CurrentUser,
    session: &Session,
    id: Uuid,
    on: bool,
    f: &ConfirmForm,
) -> AppResult<Response> {
    let mut tx = state.db.begin().await?;
    let before = if on {
        Vec::new()
    } else {
        db::grants::live_under_policy(&mut tx, id).await?
    };
    match db::policies::set_enabled(&mut tx, &actor(user), id, on).await {
        Ok(name) => {
            let echo = f.echo();
            let ask = Ask::policy("Disable", id, &name, "/disable", &echo);
            let ended = match end_or_ask(&mut tx, chrome, user, &before, ask).await? {
                Ok(n) => n,
                Err(page) => {
                    tx.rollback().await?;
                    return Ok(page);
                }
            };
            tx.commit().await?;
            let verb = if on { "Enabled" } else { "Disabled" };
            let response = done(
                session,
                format!("{verb} {name}."),
                &format!("/admin/policies/{id}"),
            )
            .await?;
            flash_ended(session, ended).await?;
            Ok(response)
        }
        Err(WriteError::NotFound) => gone(session, "access policy", "/admin/policies").await,
        Err(e) => Err(e.into()),
    }
}

pub async fn enable(
    State(state): State<AppState>,
    chrome: Chrome,
    user: CurrentUser,
    session: Session,
    PathId(id): PathId,
    Form(f): Form<ConfirmForm>,
) -> AppResult<Response> {
    switch(&state, chrome, &user, &session, id, true, &f).await
}

/// Disable: when live sessions were granted by this policy alone, the administrator first
/// sees which ones will end and confirms.
pub async fn disable(
    State(state): State<AppState>,
    chrome: Chrome,
    user: CurrentUser,
    session: Session,
    PathId(id): PathId,
    Form(f): Form<ConfirmForm>,
) -> AppResult<Response> {
    switch(&state, chrome, &user, &session, id, false, &f).await
}

/// Delete: like Disable, live sessions made under it end only once confirmed.
pub async fn delete(
    State(state): State<AppState>,
    chrome: Chrome,
    user: CurrentUser,
    session: Session,
    PathId(id): PathId,
    Form(f): Form<ConfirmForm>,
) -> AppResult<Response> {
    let mut tx = state.db.begin().await?;
    let before = db::grants::live_under_policy(&mut tx, id).await?;
    let (result, ended) = match db::policies::remove(&mut tx, &actor(&user), id).await {
        Ok(name) => {
            let echo = f.echo();
            let ask = Ask::policy("Delete", id, &name, "/delete", &echo);
            match end_or_ask(&mut tx, chrome, &user, &before, ask).await? {
                Ok(n) => (Ok(Removal::Deleted(name)), n),
                Err(page) => {
                    tx.rollback().await?;
                    return Ok(page);
                }
            }
        }
        Err(e) => (Err(e), 0),
    };
    let response = finish_removal(
        tx,
        &session,
        result,
        "access policy",
        "/admin/policies",
        &format!("/admin/policies/{id}"),
    )
    .await?;
    flash_ended(&session, ended).await?;
    Ok(response)
}

/// Policies as a catalogue: the generic handlers of `super::crud` serve them.
pub struct Policies;

impl Catalogue for Policies {
    type Form = PolicyForm;
    const WHAT: &'static str = "access policy";
    const LIST: &'static str = "/admin/policies";
    const NEW: &'static str = "/admin/policies/new";
    const ONE: &'static str = "/admin/policies/{id}";

    async fn edit_page(state: &AppState, chrome: Chrome, id: Uuid) -> AppResult<Option<Response>> {
        let Some(p) = db::policies::get(&state.db, id).await? else {
            return Ok(None);
        };
        let mut f = PolicyForm {
            name: p.name,
            description: p.description,
            profile: p.profile_id.to_string(),
            ..PolicyForm::default()
        };
        for (field, table, column) in LINKS {
            let linked = db::policies::linked(&state.db, table, column, id).await?;
            if let Some(list) = f.list_mut(field) {
                *list = linked.iter().map(Uuid::to_string).collect();
            }
        }
        Ok(Some(
            page(state, chrome, Some(id), &f, FieldErrors::default())
                .await?
                .into_response(),
        ))
    }

    async fn save(
        state: &AppState,
        chrome: Chrome,
        user: &CurrentUser,
        session: &Session,
        id: Option<Uuid>,
        f: &PolicyForm,
    ) -> AppResult<Response> {
        if f.go == "search" {
            return Ok(page(state, chrome, id, f, FieldErrors::default())
                .await?
                .into_response());
        }
        let input = match parse(state, f).await? {
            Ok(p) => p,
            Err(errors) => return Ok(invalid(page(state, chrome, id, f, errors).await?)),
        };
        if let Some(errors) = super::look_alike::warning(
            &state.db,
            Named::Policies,
            &input.name,
            id,
            !f.look_alike_ok.is_empty(),
        )
        .await?
        {
            return Ok(invalid(page(state, chrome, id, f, errors).await?));
        }
        let mut tx = state.db.begin().await?;
        let mut ended = 0;
        let result = match id {
            None => db::policies::create(&mut tx, &actor(user), &input).await,
            Some(id) => {
                let before = db::grants::live_under_policy(&mut tx, id).await?;
                match db::policies::update(&mut tx, &actor(user), id, &input).await {
                    Ok(()) => {
                        let echo = f.echo();
                        let ask = Ask::policy("Save", id, &input.name, "", &echo);
                        match end_or_ask(&mut tx, chrome.clone(), user, &before, ask).await? {
                            Ok(n) => {
                                ended = n;
                                Ok(id)
                            }
                            Err(page) => {
                                tx.rollback().await?;
                                return Ok(page);
                            }
                        }
                    }
                    Err(e) => Err(e),
                }
            }
        };
        let result = result.map(|saved| format!("/admin/policies/{saved}"));
        match finish_save(
            tx,
            session,
            result,
            id.is_some(),
            &input.name,
            "access policy",
            "/admin/policies",
        )
        .await?
        {
            Some(response) => {
                flash_ended(session, ended).await?;
                Ok(response)
            }
            None => {
                let mut errors = FieldErrors::default();
                errors.add("name", taken("access policy", &input.name));
                Ok(invalid(page(state, chrome, id, f, errors).await?))
            }
        }
    }
}
