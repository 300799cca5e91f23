//! Admin > Resources > Import CSV: upload (or paste) a file, see line by line what would be
//! created, updated or refused and why, then apply it all or nothing. The file waits in the
//! server-side session between the preview and Apply, and is checked again on Apply.

use super::{done, invalid, refused};
use crate::app;
use crate::app::resource_import::{self, Applied};
use crate::domain::csv_import::{Action, COLUMNS, Plan, PlanLine};
use crate::state::AppState;
use crate::web::chrome::Chrome;
use crate::web::error::{AppError, AppResult};
use crate::web::form::{self, Form, first};
use crate::web::guard::CurrentUser;
use crate::web::multipart;
use askama::Template;
use askama_web::WebTemplate;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use tower_sessions::Session;
use uuid::Uuid;

/// Lines listed in the preview at most (the counts cover them all).
const PREVIEW_LINES: usize = 1000;
/// The session key of a previewed file.
const DRAFT: &str = "admin_resource_import";

/// A previewed file, waiting for Apply.
#[derive(Debug, Serialize, Deserialize)]
struct Draft {
    token: Uuid,
    csv: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/resource_import.html")]
pub struct ImportPage {
    chrome: Chrome,
    columns: String,
    pasted: String,
    error: Option<String>,
    preview: Option<Preview>,
}

/// The preview part of the page.
pub struct Preview {
    lines: Vec<PlanLine>,
    hidden: usize,
    create: usize,
    update: usize,
    unchanged: usize,
    refuse: usize,
    /// Present when the file can be applied.
    token: Option<Uuid>,
}

fn page(
    chrome: Chrome,
    pasted: String,
    error: Option<String>,
    preview: Option<Preview>,
) -> ImportPage {
    ImportPage {
        chrome: chrome.at("admin"),
        columns: COLUMNS.join(","),
        pasted,
        error,
        preview,
    }
}

pub async fn show(chrome: Chrome) -> ImportPage {
    page(chrome, String::new(), None, None)
}

/// The file from an upload (`file`) or the paste box (`csv`); the paste box's text, to show
/// again.
/// The import form posted without a file: the pasted text.
#[derive(serde::Deserialize)]
struct PastedForm {
    #[serde(default, deserialize_with = "first")]
    csv: String,
}

async fn read_upload(headers: &HeaderMap, body: Bytes) -> Result<(Vec<u8>, String), String> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if multipart::is_multipart(content_type) {
        let parts = multipart::parse(content_type, body)
            .await
            .ok_or_else(|| "The upload could not be read. Try again.".to_owned())?;
        let pasted = parts
            .iter()
            .find(|p| p.name == "csv" && p.filename.is_none())
            .map(|p| String::from_utf8_lossy(&p.data).into_owned())
            .unwrap_or_default();
        let file = parts
            .into_iter()
            .find(|p| p.name == "file" && p.filename.as_deref().is_some_and(|f| !f.is_empty()));
        match file {
            Some(f) => Ok((f.data, pasted)),
            None => Ok((pasted.clone().into_bytes(), pasted)),
        }
    } else if content_type.starts_with("application/x-www-form-urlencoded") {
        let pasted = form::parse::<PastedForm>(&body)
            .map_err(|_| "The form could not be read.".to_owned())?
            .csv;
        Ok((pasted.clone().into_bytes(), pasted))
    } else {
        Err("Choose a CSV file or paste its text.".to_owned())
    }
}

fn preview_of(plan: &Plan, token: Option<Uuid>) -> Preview {
    Preview {
        lines: plan.lines.iter().take(PREVIEW_LINES).cloned().collect(),
        hidden: plan.lines.len().saturating_sub(PREVIEW_LINES),
        create: plan.count(Action::Create),
        update: plan.count(Action::Update),
        unchanged: plan.count(Action::Unchanged),
        refuse: plan.count(Action::Refuse),
        token,
    }
}

pub async fn preview(
    State(state): State<AppState>,
    chrome: Chrome,
    session: Session,
    headers: HeaderMap,
    body: Bytes,
) -> AppResult<Response> {
    let (bytes, pasted) = match read_upload(&headers, body).await {
        Ok(x) => x,
        Err(message) => return Ok(invalid(page(chrome, String::new(), Some(message), None))),
    };
    // Pasted text too big to show again is not kept in the box.
    let pasted = if pasted.len() > 256 * 1024 {
        String::new()
    } else {
        pasted
    };
    let (plan, text) = match resource_import::plan(&state, &bytes).await? {
        Ok(x) => x,
        Err(e) => return Ok(invalid(page(chrome, pasted, Some(e.to_string()), None))),
    };
    if !plan.can_apply() {
        return Ok(invalid(page(
            chrome,
            pasted,
            None,
            Some(preview_of(&plan, None)),
        )));
    }
    let token = if plan.writes.is_empty() {
        None
    } else {
        let token = Uuid::new_v4();
        session.insert(DRAFT, Draft { token, csv: text }).await?;
        Some(token)
    };
    Ok(page(chrome, pasted, None, Some(preview_of(&plan, token))).into_response())
}

/// The import page.
const IMPORT: &str = "/admin/resources/import";
/// Apply on a preview that is not the one in the session.
const STALE: &str = "This preview is no longer current (it was applied, or another file was previewed since). Nothing was imported: upload the file again.";
/// Apply after a credential the file names was deleted.
const CREDENTIAL_GONE: &str = "A service credential the file names was deleted meanwhile. Nothing was imported: preview the file again.";

/// Apply on the preview: the token of the preview it applies.
#[derive(serde::Deserialize)]
pub struct ApplyForm {
    #[serde(default, deserialize_with = "first")]
    token: String,
}

pub async fn apply(
    State(state): State<AppState>,
    chrome: Chrome,
    user: CurrentUser,
    session: Session,
    Form(f): Form<ApplyForm>,
) -> AppResult<Response> {
    let draft: Option<Draft> = session.get(DRAFT).await?;
    let Some(draft) = draft.filter(|d| d.token.to_string() == f.token) else {
        return refused(&session, STALE, IMPORT).await;
    };
    let again = |error, preview| Ok(invalid(page(chrome, String::new(), error, preview)));
    match resource_import::apply(&state, &app::Actor::from(&user), &draft.csv).await? {
        Applied::Imported {
            created,
            updated,
            unchanged,
        } => {
            session.remove_value(DRAFT).await?;
            let message = format!(
                "Imported the file: {created} created, {updated} updated, {unchanged} unchanged."
            );
            done(&session, message, "/admin/resources").await
        }
        Applied::Unreadable(e) => again(Some(e.to_string()), None),
        Applied::Refused(plan) => again(None, Some(preview_of(&plan, None))),
        Applied::CredentialGone => refused(&session, CREDENTIAL_GONE, IMPORT).await,
        Applied::NameTaken => Err(AppError::Conflict("That name is already taken.".into())),
    }
}
