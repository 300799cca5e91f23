//! Warns, without refusing, when a new or renamed catalogue object's name looks like another
//! one's (`lnx-web-0l` beside `lnx-web-01`, a Cyrillic `а` for a Latin `a`): a requester
//! picking from a list, or an approver reading one, could take one for the other. The form
//! comes back with the warning and a "Save anyway" box; ticked, the name is saved as typed.

use crate::db::look_alike::{Named, names};
use crate::domain::admin_input::FieldErrors;
use crate::domain::names::look_alike_key;
use crate::web::error::AppResult;
use sqlx::PgPool;
use uuid::Uuid;

/// The form's errors with the warning, when `name` (of object `id`, `None` when new) looks
/// like another object's name and the form did not confirm it; `None` to go ahead.
pub async fn warning(
    db: &PgPool,
    kind: Named,
    name: &str,
    id: Option<Uuid>,
    confirmed: bool,
) -> AppResult<Option<FieldErrors>> {
    if confirmed {
        return Ok(None);
    }
    let key = look_alike_key(name);
    let lower = name.to_lowercase();
    // The object's own name, and the same name in another case (which the unique index
    // refuses with its own message), are not look-alikes.
    let other = names(db, kind)
        .await?
        .into_iter()
        .find(|(other_id, other)| {
            Some(*other_id) != id && other.to_lowercase() != lower && look_alike_key(other) == key
        });
    Ok(other.map(|(_, other)| {
        let mut errors = FieldErrors::default();
        errors.add(
            "look_alike",
            format!(
                "\"{name}\" looks like the existing {} \"{other}\". Check the name, or tick Save anyway to keep it.",
                kind.noun()
            ),
        );
        errors
    }))
}
