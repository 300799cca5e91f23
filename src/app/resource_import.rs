//! Admin > Resources > Import CSV: a file checked against the stored resources line by line,
//! and applied all or nothing once it is checked again.

use crate::app::Actor;
use crate::db;
use crate::db::audit::WriteError;
use crate::domain::csv_import::{self, Action, FileError, Plan};
use crate::state::AppState;

/// Checks a file against the stored resources: what each line would do, and the file's text;
/// or why the file cannot be read at all.
pub async fn plan(
    state: &AppState,
    bytes: &[u8],
) -> crate::app::Result<Result<(Plan, String), FileError>> {
    let lines = match csv_import::parse(bytes) {
        Ok(l) => l,
        Err(e) => return Ok(Err(e)),
    };
    let names: Vec<String> = lines
        .iter()
        .filter_map(|l| l.parsed.as_ref().ok().map(|r| r.resource.name.clone()))
        .collect();
    let existing = db::resources::existing(&state.db, &names).await?;
    // Parsing succeeded, so the bytes are UTF-8 (with a BOM at most).
    let text = String::from_utf8_lossy(bytes).into_owned();
    let stored: Vec<String> = db::look_alike::names(&state.db, db::look_alike::Named::Resources)
        .await?
        .into_iter()
        .map(|(_, name)| name)
        .collect();
    let credentials = db::credentials::by_name(&state.db).await?;
    Ok(Ok((
        csv_import::plan(lines, &existing, &stored, &credentials),
        text,
    )))
}

/// What applying a previewed file did.
#[derive(Debug)]
pub enum Applied {
    /// Everything written, in one transaction.
    Imported {
        created: usize,
        updated: usize,
        unchanged: usize,
    },
    /// The file no longer reads: why. Nothing was written.
    Unreadable(FileError),
    /// Checked again, some lines are refused now (the stored resources changed since the
    /// preview): the new plan, to show. Nothing was written.
    Refused(Plan),
    /// A service credential the file names was deleted meanwhile. Nothing was written.
    CredentialGone,
    /// Another resource has a name the file writes. Nothing was written.
    NameTaken,
}

/// Applies a previewed file (its text, `csv`) for `user`, after checking it again: all its
/// lines or none, each change in the audit log.
pub async fn apply(state: &AppState, user: &Actor, csv: &str) -> crate::app::Result<Applied> {
    let plan = match plan(state, csv.as_bytes()).await? {
        Ok((plan, _)) => plan,
        Err(e) => return Ok(Applied::Unreadable(e)),
    };
    if !plan.can_apply() {
        return Ok(Applied::Refused(plan));
    }
    let audited = db::audit::Actor {
        id: Some(user.id),
        name: user.username.clone(),
    };
    let mut tx = state.db.begin().await?;
    let (created, updated) = match db::resources::import(&mut tx, &audited, &plan.writes).await {
        Ok(n) => n,
        Err(WriteError::NotFound) => return Ok(Applied::CredentialGone),
        Err(WriteError::Taken) => return Ok(Applied::NameTaken),
        Err(WriteError::Db(e)) => return Err(e),
    };
    tx.commit().await?;
    Ok(Applied::Imported {
        created,
        updated,
        unchanged: plan.count(Action::Unchanged),
    })
}
