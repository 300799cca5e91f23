//! Admin changes that narrow access (a policy disabled, deleted or edited; a group or a user
//! losing members or groups): when they would end live sessions, the administrator first sees
//! which ones and why, and confirms; the confirmed change ends them in its own transaction.

use crate::auth::session::{self, FlashKind};
use crate::db;
use crate::db::grants::LapsedSession;
use crate::web::chrome::Chrome;
use crate::web::error::AppResult;
use crate::web::form::Fields;
use crate::web::guard::CurrentUser;
use askama::Template;
use askama_web::WebTemplate;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use tower_sessions::Session;
use uuid::Uuid;

/// The page shown instead of saving a change that would end live sessions: which ones and
/// why, and the same form once more with `confirm` set. Answered 409: nothing was changed.
#[derive(Template, WebTemplate)]
#[template(path = "admin/revocation_confirm.html")]
pub struct ConfirmPage {
    chrome: Chrome,
    /// The admin tab it belongs to.
    section: &'static str,
    /// "Save", "Disable", "Delete".
    change: &'static str,
    subject: String,
    summary: String,
    rows: Vec<LapsedSession>,
    action: String,
    /// What was posted, to post again (without the CSRF token and the buttons' values).
    fields: Vec<(String, String)>,
    /// How many sessions the administrator agrees to end: a confirmation that no longer
    /// covers them all (more would end now) asks again.
    confirm: usize,
    button: String,
    back: String,
}

/// A change that may end sessions, asked about first.
pub struct Ask<'a> {
    pub section: &'static str,
    pub change: &'static str,
    /// What changes, as the event's comment names it ("the policy Linux operations").
    pub subject: String,
    /// Where the confirmation posts (the same route as the change).
    pub action: String,
    /// Where Cancel goes.
    pub back: String,
    pub fields: &'a Fields,
}

impl<'a> Ask<'a> {
    /// A change to policy `id` posted to `/admin/policies/{id}{route}`.
    pub fn policy(
        change: &'static str,
        id: Uuid,
        name: &str,
        route: &str,
        fields: &'a Fields,
    ) -> Self {
        Self {
            section: "policies",
            change,
            subject: format!("the policy {name}"),
            action: format!("/admin/policies/{id}{route}"),
            back: format!("/admin/policies/{id}"),
            fields,
        }
    }
}

/// How many sessions the administrator agreed to end with this POST (0: not asked yet).
fn confirmed(f: &Fields) -> usize {
    f.text("confirm").parse().unwrap_or(0)
}

fn confirm_page(chrome: Chrome, ask: Ask<'_>, rows: Vec<LapsedSession>) -> Response {
    let n = rows.len();
    let sessions = if n == 1 { "session" } else { "sessions" };
    let fields = ask
        .fields
        .0
        .iter()
        .filter(|(k, _)| !matches!(k.as_str(), "csrf_token" | "confirm" | "go"))
        .cloned()
        .collect();
    let page = ConfirmPage {
        chrome: chrome.at("admin"),
        section: ask.section,
        change: ask.change,
        summary: format!(
            "This change to {} ends {n} {sessions} it no longer grants: live ones are cut and waiting ones withdrawn, each with the reason in its log. Nothing is changed until you confirm.",
            ask.subject
        ),
        subject: ask.subject,
        rows,
        action: ask.action,
        fields,
        confirm: n,
        button: format!("{} and end {n} {sessions}", ask.change),
        back: ask.back,
    };
    (StatusCode::CONFLICT, page).into_response()
}

/// In the transaction of a change, after the change: the sessions among `before` (the live
/// sessions it may touch, read before it) whose grant no longer holds. `Ok(n)`: `n` ended,
/// the change may commit; `Err(page)`: not confirmed (or more would end than confirmed), the
/// caller rolls back and answers with the page.
pub async fn end_or_ask(
    tx: &mut sqlx::PgConnection,
    chrome: Chrome,
    user: &CurrentUser,
    before: &[Uuid],
    ask: Ask<'_>,
) -> AppResult<Result<usize, Response>> {
    if before.is_empty() {
        return Ok(Ok(0));
    }
    let lapsed = db::grants::lapsed(&mut *tx, before).await?;
    if lapsed.is_empty() {
        return Ok(Ok(0));
    }
    if lapsed.len() > confirmed(ask.fields) {
        return Ok(Err(confirm_page(chrome, ask, lapsed)));
    }
    let by = format!("{} (changing {})", user.display_name, ask.subject);
    let ended = db::grants::end_lapsed(
        tx,
        &lapsed,
        db::sessions::Actor::User {
            id: user.id,
            name: &user.display_name,
        },
        &by,
    )
    .await?;
    Ok(Ok(ended))
}

/// "Ended N sessions ..." after the change's own message.
pub async fn flash_ended(session: &Session, ended: usize) -> AppResult<()> {
    if ended > 0 {
        let noun = if ended == 1 { "session" } else { "sessions" };
        session::flash(
            session,
            FlashKind::Info,
            format!("Ended {ended} {noun} the change no longer grants."),
        )
        .await?;
    }
    Ok(())
}
