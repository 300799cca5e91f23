//! Admin > Service credentials: what Portcullis logs in to targets with. The list, the form
//! (the secret is written, sealed, and never shown again: not after saving, not on a form
//! shown again with a problem), delete (refused while a resource uses it).

use super::crud::{Catalogue, Deletable};
use super::{actor, finish_save, invalid, taken};
use crate::db;
use crate::db::audit::{Actor, WriteError};
use crate::db::credentials::Row;
use crate::db::resources::Removal;
use crate::domain::admin_input::FieldErrors;
use crate::domain::target_access::{CredentialInput, CredentialKind, RawCredential};
use crate::state::AppState;
use crate::web::chrome::Chrome;
use crate::web::error::AppResult;
use crate::web::form::first;
use crate::web::guard::CurrentUser;
use askama::Template;
use askama_web::WebTemplate;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use sqlx::PgConnection;
use tower_sessions::Session;
use uuid::Uuid;

const LIST: &str = "/admin/credentials";

#[derive(Template, WebTemplate)]
#[template(path = "admin/credentials.html")]
pub struct ListPage {
    chrome: Chrome,
    rows: Vec<Row>,
}

pub async fn list(State(state): State<AppState>, chrome: Chrome) -> AppResult<ListPage> {
    Ok(ListPage {
        chrome: chrome.at("admin"),
        rows: db::credentials::list(&state.db).await?,
    })
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/credential_form.html")]
pub struct FormPage {
    chrome: Chrome,
    id: Option<Uuid>,
    name: String,
    username: String,
    kind: String,
    kinds: [CredentialKind; 2],
    /// Resources that use it (edit).
    used_by: i64,
    errors: FieldErrors,
}

/// The credential form as posted (and as shown again: the secret never is).
#[derive(Debug, Default, Deserialize)]
pub struct CredentialForm {
    #[serde(default, deserialize_with = "first")]
    name: String,
    #[serde(default, deserialize_with = "first")]
    username: String,
    #[serde(default, deserialize_with = "first")]
    kind: String,
    #[serde(default, deserialize_with = "first")]
    secret: String,
}

impl CredentialForm {
    /// The checked input; a new credential needs its secret.
    fn input(&self, creating: bool) -> Result<CredentialInput, FieldErrors> {
        let raw = RawCredential {
            name: &self.name,
            username: &self.username,
            kind: &self.kind,
            secret: &self.secret,
        };
        CredentialInput::parse(&raw, creating)
    }
}

impl FormPage {
    fn new(chrome: Chrome, id: Option<Uuid>, f: &CredentialForm, errors: FieldErrors) -> Self {
        Self {
            chrome: chrome.at("admin"),
            id,
            name: f.name.clone(),
            username: f.username.clone(),
            kind: f.kind.clone(),
            kinds: CredentialKind::ALL,
            used_by: 0,
            errors,
        }
    }
}

pub async fn new(chrome: Chrome) -> FormPage {
    let f = CredentialForm {
        kind: CredentialKind::SshKey.key().into(),
        ..CredentialForm::default()
    };
    FormPage::new(chrome, None, &f, FieldErrors::default())
}

/// The form again with its problems. A secret that was typed is not sent back (the page
/// would carry it to the browser's cache and history): the field asks for it again.
fn again(
    chrome: Chrome,
    id: Option<Uuid>,
    f: &CredentialForm,
    mut errors: FieldErrors,
) -> Response {
    if !f.secret.trim().is_empty() && errors.get("secret").is_none() {
        errors.add(
            "secret",
            "Not kept: paste the key again (or type the password again) to save it.",
        );
    }
    invalid(FormPage::new(chrome, id, f, errors))
}

/// Credentials as a catalogue: the generic handlers of `super::crud` serve them.
pub struct Credentials;

impl Catalogue for Credentials {
    type Form = CredentialForm;
    const WHAT: &'static str = "service credential";
    const LIST: &'static str = "/admin/credentials";
    const NEW: &'static str = "/admin/credentials/new";
    const ONE: &'static str = "/admin/credentials/{id}";

    async fn edit_page(state: &AppState, chrome: Chrome, id: Uuid) -> AppResult<Option<Response>> {
        let Some(c) = db::credentials::get(&state.db, id).await? else {
            return Ok(None);
        };
        let f = CredentialForm {
            name: c.name,
            username: c.username,
            kind: c.kind.key().into(),
            secret: String::new(),
        };
        let mut page = FormPage::new(chrome, Some(id), &f, FieldErrors::default());
        page.used_by = c.resources;
        Ok(Some(page.into_response()))
    }

    async fn save(
        state: &AppState,
        chrome: Chrome,
        user: &CurrentUser,
        session: &Session,
        id: Option<Uuid>,
        f: &CredentialForm,
    ) -> AppResult<Response> {
        let input = match f.input(id.is_none()) {
            Ok(c) => c,
            Err(errors) => return Ok(again(chrome, id, f, errors)),
        };
        let seal = |id: Uuid, secret: &str| state.secrets.seal(id, secret);
        let mut tx = state.db.begin().await?;
        let result = match id {
            None => db::credentials::create(&mut tx, &actor(user), &input, seal)
                .await
                .map(|_| ()),
            Some(id) => db::credentials::update(&mut tx, &actor(user), id, &input, seal).await,
        };
        match finish_save(
            tx,
            session,
            result.map(|()| LIST.to_owned()),
            id.is_some(),
            &input.name,
            "service credential",
            LIST,
        )
        .await?
        {
            Some(response) => Ok(response),
            None => {
                let mut errors = FieldErrors::default();
                errors.add("name", taken("service credential", &input.name));
                Ok(again(chrome, id, f, errors))
            }
        }
    }
}

impl Deletable for Credentials {
    const DELETE: &'static str = "/admin/credentials/{id}/delete";

    async fn remove(tx: &mut PgConnection, actor: &Actor, id: Uuid) -> Result<Removal, WriteError> {
        db::credentials::remove(tx, actor, id).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::web::form;

    #[test]
    fn a_new_credential_needs_its_secret_an_edit_does_not() {
        let f: CredentialForm = form::parse(b"name=deploy&username=svc&kind=password").unwrap();
        assert!(f.input(true).unwrap_err().get("secret").is_some());
        let c = f.input(false).unwrap();
        assert_eq!(
            (c.name.as_str(), c.kind),
            ("deploy", CredentialKind::Password)
        );
        assert_eq!(c.secret, None);
    }

    #[test]
    fn a_bad_kind_is_a_field_error() {
        let f: CredentialForm =
            form::parse(b"name=deploy&username=svc&kind=token&secret=x").unwrap();
        assert!(f.input(true).unwrap_err().get("kind").is_some());
    }
}
