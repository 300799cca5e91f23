//! Admin > Groups: the list, the group form (name, description, members), delete.

use super::crud::{Catalogue, Deletable};
use super::picker::{self, Picker};
use super::revocation::{Ask, end_or_ask, flash_ended};
use super::{actor, finish_save, invalid, taken};
use crate::db;
use crate::db::audit::{Actor, WriteError};
use crate::db::groups::Row;
use crate::db::look_alike::Named;
use crate::db::resources::Removal;
use crate::domain::admin_input::{self, FieldErrors, GroupInput};
use crate::state::AppState;
use crate::web::chrome::Chrome;
use crate::web::error::AppResult;
use crate::web::form::{Fields, first};
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

/// The group form as posted.
#[derive(Debug, Default, Deserialize)]
pub struct GroupForm {
    #[serde(default, deserialize_with = "first")]
    name: String,
    #[serde(default, deserialize_with = "first")]
    description: String,
    /// Ticked users.
    #[serde(default)]
    members: Vec<String>,
    /// The members list's search box.
    #[serde(default, deserialize_with = "first")]
    members_q: String,
    /// `search` from the list's Search button, else Save.
    #[serde(default, deserialize_with = "first")]
    go: String,
    /// "Save anyway" on a look-alike name.
    #[serde(default, deserialize_with = "first")]
    look_alike_ok: String,
    /// How many sessions the administrator agreed to end.
    #[serde(default, deserialize_with = "first")]
    confirm: String,
}

impl GroupForm {
    fn members(&self) -> Vec<Uuid> {
        admin_input::ids(self.members.iter().map(String::as_str))
    }

    /// The form as fields, posted again by the "end these sessions?" page.
    fn echo(&self) -> Fields {
        Fields::of(
            &[
                ("name", &self.name),
                ("description", &self.description),
                ("members_q", &self.members_q),
                ("look_alike_ok", &self.look_alike_ok),
                ("confirm", &self.confirm),
            ],
            &[("members", &self.members)],
        )
    }
}

async fn page(
    state: &AppState,
    chrome: Chrome,
    id: Option<Uuid>,
    f: &GroupForm,
    errors: FieldErrors,
) -> AppResult<FormPage> {
    let ticked = f.members();
    let search = picker::bounded(&f.members_q);
    let choices = db::users::choices(&state.db, &search, &ticked, picker::SHOWN).await?;
    Ok(FormPage {
        chrome: chrome.at("admin"),
        id,
        name: f.name.clone(),
        description: f.description.clone(),
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
        &GroupForm::default(),
        FieldErrors::default(),
    )
    .await
}

/// Groups as a catalogue: the generic handlers of `super::crud` serve them.
pub struct Groups;

impl Catalogue for Groups {
    type Form = GroupForm;
    const WHAT: &'static str = "group";
    const LIST: &'static str = "/admin/groups";
    const NEW: &'static str = "/admin/groups/new";
    const ONE: &'static str = "/admin/groups/{id}";

    async fn edit_page(state: &AppState, chrome: Chrome, id: Uuid) -> AppResult<Option<Response>> {
        let Some(g) = db::groups::get(&state.db, id).await? else {
            return Ok(None);
        };
        let members = db::groups::member_ids(&state.db, id).await?;
        let f = GroupForm {
            name: g.name,
            description: g.description,
            members: members.iter().map(Uuid::to_string).collect(),
            ..GroupForm::default()
        };
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
        f: &GroupForm,
    ) -> AppResult<Response> {
        if f.go == "search" {
            return Ok(page(state, chrome, id, f, FieldErrors::default())
                .await?
                .into_response());
        }
        let members = f.members();
        let mut errors = FieldErrors::default();
        let input = GroupInput::parse(&f.name, &f.description);
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
        if let Some(errors) = super::look_alike::warning(
            &state.db,
            Named::Groups,
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
            None => db::groups::create(&mut tx, &actor(user), &input, &members)
                .await
                .map(|_| ()),
            Some(id) => {
                // Members who leave lose what policies grant the group.
                let before = db::grants::live_through_group(&mut tx, id).await?;
                let result = db::groups::update(&mut tx, &actor(user), id, &input, &members).await;
                if result.is_ok() {
                    let echo = f.echo();
                    let ask = Ask {
                        section: "groups",
                        change: "Save",
                        subject: format!("the group {}", input.name),
                        action: format!("/admin/groups/{id}"),
                        back: format!("/admin/groups/{id}"),
                        fields: &echo,
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
}

impl Deletable for Groups {
    const DELETE: &'static str = "/admin/groups/{id}/delete";

    async fn remove(tx: &mut PgConnection, actor: &Actor, id: Uuid) -> Result<Removal, WriteError> {
        db::groups::remove(tx, actor, id).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::web::form;

    #[test]
    fn ticked_members_are_ids_and_the_echo_keeps_them() {
        let id = Uuid::new_v4();
        let body = format!("name=Ops&members={id}&members=nonsense&go=save&csrf_token=t");
        let f: GroupForm = form::parse(body.as_bytes()).unwrap();
        assert_eq!(f.members(), [id]);
        let echo = f.echo();
        assert_eq!(echo.text("name"), "Ops");
        assert_eq!(echo.all("members").count(), 2);
        assert_eq!(echo.first("csrf_token"), None);
    }
}
