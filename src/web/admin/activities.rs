//! Admin > Activities: the list, the activity form (create, edit, clone), delete and restore.

use super::crud::{Catalogue, Deletable, Restorable};
use super::{actor, done, gone, invalid, taken};
use crate::db;
use crate::db::activities::Row;
use crate::db::audit::{Actor, WriteError};
use crate::db::look_alike::Named;
use crate::db::resources::Removal;
use crate::domain::admin_input::{ActivityInput, FieldErrors, RawActivity, checkbox};
use crate::domain::catalog::{LoginMode, Protocol, TEMPLATE_PLACEHOLDERS};
use crate::state::AppState;
use crate::web::chrome::Chrome;
use crate::web::error::AppResult;
use crate::web::form::first;
use crate::web::guard::CurrentUser;
use crate::web::path_id::PathId;
use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use sqlx::PgConnection;
use tower_sessions::Session;
use uuid::Uuid;

#[derive(Template, WebTemplate)]
#[template(path = "admin/activities.html")]
pub struct ListPage {
    chrome: Chrome,
    rows: Vec<Row>,
    search: String,
    archived: bool,
}

#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    archived: String,
}

pub async fn list(
    State(state): State<AppState>,
    chrome: Chrome,
    Query(query): Query<ListQuery>,
) -> AppResult<ListPage> {
    let search: String = query.q.trim().chars().take(100).collect();
    let archived = !query.archived.is_empty();
    Ok(ListPage {
        chrome: chrome.at("admin"),
        rows: db::activities::list(&state.db, &search, archived).await?,
        search,
        archived,
    })
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/activity_form.html")]
pub struct FormPage {
    chrome: Chrome,
    id: Option<Uuid>,
    archived: bool,
    /// The policies that grant it (shown on edit).
    policies: String,
    name: String,
    description: String,
    platform: String,
    protocol: String,
    login_mode: String,
    login_template: String,
    target_groups: String,
    file_transfer: bool,
    revoke_on_lock: bool,
    protocols: [Protocol; 4],
    modes: [LoginMode; 3],
    template_hint: String,
    errors: FieldErrors,
}

/// The activity form as posted.
#[derive(Debug, Default, Deserialize)]
pub struct ActivityForm {
    #[serde(default, deserialize_with = "first")]
    name: String,
    #[serde(default, deserialize_with = "first")]
    description: String,
    #[serde(default, deserialize_with = "first")]
    platform: String,
    #[serde(default, deserialize_with = "first")]
    protocol: String,
    #[serde(default, deserialize_with = "first")]
    login_mode: String,
    #[serde(default, deserialize_with = "first")]
    login_template: String,
    #[serde(default, deserialize_with = "first")]
    target_groups: String,
    #[serde(default, deserialize_with = "first")]
    file_transfer: String,
    #[serde(default, deserialize_with = "first")]
    revoke_on_lock: String,
    /// "Save anyway" on a look-alike name.
    #[serde(default, deserialize_with = "first")]
    look_alike_ok: String,
}

impl TryFrom<&ActivityForm> for ActivityInput {
    type Error = FieldErrors;

    fn try_from(f: &ActivityForm) -> Result<Self, FieldErrors> {
        ActivityInput::parse(&RawActivity {
            name: &f.name,
            description: &f.description,
            platform: &f.platform,
            protocol: &f.protocol,
            login_mode: &f.login_mode,
            login_template: &f.login_template,
            target_groups: &f.target_groups,
            file_transfer: checkbox(Some(&f.file_transfer)),
            revoke_on_lock: checkbox(Some(&f.revoke_on_lock)),
        })
    }
}

impl FormPage {
    fn from_fields(
        chrome: Chrome,
        id: Option<Uuid>,
        f: &ActivityForm,
        errors: FieldErrors,
    ) -> Self {
        Self {
            chrome: chrome.at("admin"),
            id,
            archived: false,
            policies: String::new(),
            name: f.name.clone(),
            description: f.description.clone(),
            platform: f.platform.clone(),
            protocol: f.protocol.clone(),
            login_mode: f.login_mode.clone(),
            login_template: f.login_template.clone(),
            target_groups: f.target_groups.clone(),
            file_transfer: checkbox(Some(&f.file_transfer)),
            revoke_on_lock: checkbox(Some(&f.revoke_on_lock)),
            protocols: Protocol::ALL,
            modes: LoginMode::ALL,
            template_hint: template_hint(),
            errors,
        }
    }

    fn from_row(chrome: Chrome, a: Row) -> Self {
        Self {
            chrome: chrome.at("admin"),
            id: Some(a.id),
            archived: a.archived,
            policies: a.policies,
            name: a.name,
            description: a.description,
            platform: a.platform,
            protocol: a.protocol.key().to_owned(),
            login_mode: a.login_mode.key().to_owned(),
            login_template: a.login_template.unwrap_or_default(),
            target_groups: a.target_groups.join(", "),
            file_transfer: a.file_transfer,
            revoke_on_lock: a.revoke_on_lock,
            protocols: Protocol::ALL,
            modes: LoginMode::ALL,
            template_hint: template_hint(),
            errors: FieldErrors::default(),
        }
    }
}

fn template_hint() -> String {
    format!(
        "Ephemeral: a name template using {}. Managed: the shared account's name. Own account: leave empty.",
        TEMPLATE_PLACEHOLDERS.join(", ")
    )
}

pub async fn new(chrome: Chrome) -> FormPage {
    let f = ActivityForm {
        protocol: "ssh".into(),
        login_mode: "own".into(),
        ..ActivityForm::default()
    };
    FormPage::from_fields(chrome, None, &f, FieldErrors::default())
}

/// A new activity's form filled from an existing one, under a free name.
pub async fn clone(
    State(state): State<AppState>,
    chrome: Chrome,
    session: Session,
    PathId(id): PathId,
) -> AppResult<Response> {
    let Some(a) = db::activities::get(&state.db, id).await? else {
        return gone(&session, "activity", "/admin/activities").await;
    };
    let mut conn = state.db.acquire().await?;
    let name = db::activities::free_copy_name(&mut conn, &a.name).await?;
    let mut page = FormPage::from_row(chrome, a);
    page.id = None;
    page.archived = false;
    page.policies = String::new();
    page.name = name;
    Ok(page.into_response())
}

/// Activities as a catalogue: the generic handlers of `super::crud` serve them.
pub struct Activities;

impl Catalogue for Activities {
    type Form = ActivityForm;
    const WHAT: &'static str = "activity";
    const LIST: &'static str = "/admin/activities";
    const NEW: &'static str = "/admin/activities/new";
    const ONE: &'static str = "/admin/activities/{id}";

    async fn edit_page(state: &AppState, chrome: Chrome, id: Uuid) -> AppResult<Option<Response>> {
        Ok(db::activities::get(&state.db, id)
            .await?
            .map(|a| FormPage::from_row(chrome, a).into_response()))
    }

    async fn save(
        state: &AppState,
        chrome: Chrome,
        user: &CurrentUser,
        session: &Session,
        id: Option<Uuid>,
        f: &ActivityForm,
    ) -> AppResult<Response> {
        let input = match ActivityInput::try_from(f) {
            Ok(a) => a,
            Err(errors) => return Ok(invalid(FormPage::from_fields(chrome, id, f, errors))),
        };
        if let Some(errors) = super::look_alike::warning(
            &state.db,
            Named::Activities,
            &input.name,
            id,
            !f.look_alike_ok.is_empty(),
        )
        .await?
        {
            return Ok(invalid(FormPage::from_fields(chrome, id, f, errors)));
        }
        let mut tx = state.db.begin().await?;
        let result = match id {
            None => db::activities::create(&mut tx, &actor(user), &input)
                .await
                .map(|_| ()),
            Some(id) => db::activities::update(&mut tx, &actor(user), id, &input).await,
        };
        match result {
            Ok(()) => {
                tx.commit().await?;
                let verb = if id.is_some() { "Saved" } else { "Created" };
                done(
                    session,
                    format!("{verb} {}.", input.name),
                    "/admin/activities",
                )
                .await
            }
            Err(WriteError::Taken) => {
                let mut errors = FieldErrors::default();
                errors.add("name", taken("activity", &input.name));
                Ok(invalid(FormPage::from_fields(chrome, id, f, errors)))
            }
            Err(WriteError::NotFound) => gone(session, "activity", "/admin/activities").await,
            Err(e) => Err(e.into()),
        }
    }
}

impl Deletable for Activities {
    const DELETE: &'static str = "/admin/activities/{id}/delete";

    async fn remove(tx: &mut PgConnection, actor: &Actor, id: Uuid) -> Result<Removal, WriteError> {
        db::activities::remove(tx, actor, id).await
    }
}

impl Restorable for Activities {
    const RESTORE: &'static str = "/admin/activities/{id}/restore";

    async fn restore(tx: &mut PgConnection, actor: &Actor, id: Uuid) -> Result<String, WriteError> {
        db::activities::restore(tx, actor, id).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::web::form;

    #[test]
    fn an_activity_form_converts_with_its_checkboxes() {
        let f: ActivityForm =
            form::parse(b"name=Deploy&platform=Linux&protocol=ssh&login_mode=own&file_transfer=on")
                .unwrap();
        let a = ActivityInput::try_from(&f).unwrap();
        assert_eq!(a.name, "Deploy");
        assert!(a.file_transfer);
        assert!(!a.revoke_on_lock);
    }

    #[test]
    fn a_bad_activity_form_gives_field_errors() {
        let f: ActivityForm = form::parse(b"name=&protocol=telnet&login_mode=own").unwrap();
        let e = ActivityInput::try_from(&f).unwrap_err();
        assert!(e.get("name").is_some());
        assert!(e.get("protocol").is_some());
    }
}
