//! Search over the recordings' plain text, for administrators and auditors (anyone else:
//! not found): the matching recordings with their session, user, time and a snippet, each
//! linking to its session's View Logs and player.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use crate::db;
use crate::domain::role::Role;
use crate::domain::wizard::format_local;
use crate::state::AppState;
use crate::web::chrome::Chrome;
use crate::web::error::{AppError, AppResult};
use crate::web::guard::CurrentUser;

/// Results shown at most.
const LIMIT: i64 = 50;
const QUERY_MIN: usize = 2;
const QUERY_MAX: usize = 200;

/// One matching recording.
pub struct HitView {
    pub session: String,
    pub recording: String,
    pub user: String,
    pub resource: String,
    pub at: String,
    pub snippet: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "recordings/search.html")]
pub struct SearchPage {
    chrome: Chrome,
    q: String,
    error: Option<String>,
    searched: bool,
    hits: Vec<HitView>,
}

#[derive(Deserialize)]
pub struct SearchQuery {
    #[serde(default)]
    q: String,
}

/// Why a search text is refused, if it is.
fn refusal(q: &str) -> Option<String> {
    let n = q.chars().count();
    if n < QUERY_MIN {
        Some(format!(
            "Type at least {QUERY_MIN} characters to search for."
        ))
    } else if n > QUERY_MAX {
        Some(format!(
            "The search text is too long: at most {QUERY_MAX} characters."
        ))
    } else {
        None
    }
}

/// About 120 characters of `plain` around the first `q` (letter case aside).
fn snippet(plain: &str, q: &str) -> String {
    let chars: Vec<char> = plain.chars().collect();
    let lower: String = plain.to_lowercase();
    let at = lower
        .find(&q.to_lowercase())
        .map_or(0, |byte| lower[..byte].chars().count());
    let start = at.saturating_sub(50);
    let text: String = chars.iter().skip(start).take(120).collect();
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `/recordings/search?q=`.
pub async fn show(
    State(state): State<AppState>,
    chrome: Chrome,
    user: CurrentUser,
    Query(query): Query<SearchQuery>,
) -> AppResult<Response> {
    if !matches!(user.role, Role::Admin | Role::Auditor) {
        return Err(AppError::NotFound);
    }
    let q = query.q.trim().to_owned();
    let mut page = SearchPage {
        chrome: chrome.at("recordings"),
        error: None,
        searched: false,
        hits: Vec::new(),
        q,
    };
    if page.q.is_empty() {
        return Ok(page.into_response());
    }
    if let Some(message) = refusal(&page.q) {
        page.error = Some(message);
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
    }
    let tz = user.time_zone;
    page.hits = db::recordings::search(&state.db, &page.q, LIMIT)
        .await?
        .into_iter()
        .map(|h| HitView {
            session: h.session_id.to_string(),
            recording: h.id.to_string(),
            user: h.user_name,
            resource: h.resource_name,
            at: format_local(tz.local(h.started_at)),
            snippet: snippet(&h.plain, &page.q),
        })
        .collect();
    page.searched = true;
    Ok(page.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_snippet_shows_the_match_with_some_context() {
        let plain = format!("{}needle in\n  a haystack", "x ".repeat(100));
        let s = snippet(&plain, "NEEDLE");
        assert!(s.contains("needle in a haystack"), "{s}");
        assert!(s.len() <= 120);
        assert_eq!(snippet("ÄÖ abc", "abc"), "ÄÖ abc");
    }

    #[test]
    fn short_and_long_texts_are_refused() {
        assert!(refusal("a").is_some());
        assert!(refusal(&"a".repeat(201)).is_some());
        assert!(refusal("ab").is_none());
    }
}
