//! Admin > Webhooks: the endpoints that hear about every request, decision and session
//! status change (see `crate::webhooks`). The list, the form (the secret is sealed and never
//! shown again), delete, the delivery log of an endpoint and its "Send test event" button.

use super::crud::{Catalogue, Deletable};
use super::{actor, done, gone, invalid};
use crate::db;
use crate::db::audit::{Actor, WriteError};
use crate::db::resources::Removal;
use crate::db::webhooks::{Delivery, Endpoint, EndpointInput};
use crate::domain::admin_input::{FieldErrors, checkbox};
use crate::domain::wizard::format_local;
use crate::state::AppState;
use crate::web::chrome::Chrome;
use crate::web::error::AppResult;
use crate::web::form::first;
use crate::web::guard::CurrentUser;
use crate::web::path_id::PathId;
use crate::webhooks::{EVENT_TYPES, check_secret, check_url};
use askama::Template;
use askama_web::WebTemplate;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use sqlx::PgConnection;
use tower_sessions::Session;
use uuid::Uuid;

const LIST: &str = "/admin/webhooks";
/// Deliveries shown on the log page.
const LOG_ROWS: i64 = 200;

#[derive(Template, WebTemplate)]
#[template(path = "admin/webhooks.html")]
pub struct ListPage {
    chrome: Chrome,
    rows: Vec<Endpoint>,
}

pub async fn list(State(state): State<AppState>, chrome: Chrome) -> AppResult<ListPage> {
    Ok(ListPage {
        chrome: chrome.at("admin"),
        rows: db::webhooks::list(&state.db).await?,
    })
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/webhook_form.html")]
pub struct FormPage {
    chrome: Chrome,
    id: Option<Uuid>,
    url: String,
    all_events: bool,
    events: Vec<String>,
    enabled: bool,
    types: [(&'static str, &'static str); 3],
    errors: FieldErrors,
}

/// The webhook form as posted (and as shown again: the secret never is).
#[derive(Debug, Default, serde::Deserialize)]
pub struct WebhookForm {
    #[serde(default, deserialize_with = "first")]
    url: String,
    #[serde(default, deserialize_with = "first")]
    secret: String,
    /// `all`, or event types.
    #[serde(default)]
    events: Vec<String>,
    #[serde(default, deserialize_with = "first")]
    enabled: String,
}

impl From<&Endpoint> for WebhookForm {
    fn from(e: &Endpoint) -> Self {
        let all = e.all_events.then(|| "all".to_owned());
        Self {
            url: e.url.clone(),
            secret: String::new(),
            events: all.into_iter().chain(e.events.iter().cloned()).collect(),
            enabled: if e.enabled {
                "on".into()
            } else {
                String::new()
            },
        }
    }
}

impl FormPage {
    fn new(chrome: Chrome, id: Option<Uuid>, f: &WebhookForm, errors: FieldErrors) -> Self {
        Self {
            chrome: chrome.at("admin"),
            id,
            url: f.url.clone(),
            all_events: f.events.iter().any(|e| e == "all"),
            events: f.events.clone(),
            enabled: checkbox(Some(&f.enabled)),
            types: EVENT_TYPES,
            errors,
        }
    }

    fn wants(&self, key: &str) -> bool {
        self.events.iter().any(|e| e == key)
    }
}

pub async fn new(chrome: Chrome) -> FormPage {
    let f = WebhookForm {
        events: vec!["all".into()],
        enabled: "on".into(),
        ..WebhookForm::default()
    };
    FormPage::new(chrome, None, &f, FieldErrors::default())
}

/// The form's input, checked; every problem by field.
fn parse(f: &WebhookForm, creating: bool) -> Result<EndpointInput, FieldErrors> {
    let mut errors = FieldErrors::default();
    let url = check_url(&f.url).unwrap_or_else(|e| {
        errors.add("url", e);
        String::new()
    });
    let typed = f.secret.as_str();
    let secret = if typed.is_empty() && !creating {
        None
    } else if typed.is_empty() {
        errors.add("secret", "Enter a secret: the endpoint checks each event's signature with it (for example the output of: openssl rand -hex 32).");
        None
    } else {
        check_secret(typed)
            .map_err(|e| errors.add("secret", e))
            .ok()
    };
    let mut all_events = false;
    let mut events = Vec::new();
    for value in f.events.iter().map(String::as_str) {
        if value == "all" {
            all_events = true;
        } else if let Some((key, _)) = EVENT_TYPES.iter().find(|(k, _)| *k == value) {
            if !events.iter().any(|e: &String| e == key) {
                events.push((*key).to_owned());
            }
        } else {
            errors.add(
                "events",
                format!(
                    "Unknown event type \"{}\".",
                    value.chars().take(40).collect::<String>()
                ),
            );
        }
    }
    if !all_events && events.is_empty() && errors.get("events").is_none() {
        errors.add(
            "events",
            "Choose the events to send: all, or at least one type.",
        );
    }
    if all_events {
        events.clear();
    }
    errors.into_result(EndpointInput {
        url,
        secret,
        all_events,
        events,
        enabled: checkbox(Some(&f.enabled)),
    })
}

/// The form again with its problems. A secret that was typed is not sent back.
fn again(chrome: Chrome, id: Option<Uuid>, f: &WebhookForm, mut errors: FieldErrors) -> Response {
    if !f.secret.is_empty() && errors.get("secret").is_none() {
        errors.add("secret", "Not kept: type the secret again to save it.");
    }
    invalid(FormPage::new(chrome, id, f, errors))
}

/// One row of the delivery log, formatted in the viewer's time zone.
pub struct DeliveryView {
    pub id: Uuid,
    pub created: String,
    pub event_type: String,
    pub event: String,
    pub state: &'static str,
    pub attempts: i32,
    pub last_attempt: String,
    pub next_attempt: String,
    pub response_code: String,
    pub last_error: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/webhook_deliveries.html")]
pub struct DeliveriesPage {
    chrome: Chrome,
    endpoint: Endpoint,
    rows: Vec<DeliveryView>,
}

pub async fn deliveries(
    State(state): State<AppState>,
    chrome: Chrome,
    user: CurrentUser,
    session: Session,
    PathId(id): PathId,
) -> AppResult<Response> {
    let Some(endpoint) = db::webhooks::get(&state.db, id).await? else {
        return gone(&session, "webhook", LIST).await;
    };
    let local = |t| format_local(user.time_zone.local(t));
    let rows = db::webhooks::deliveries(&state.db, id, LOG_ROWS)
        .await?
        .into_iter()
        .map(|d: Delivery| DeliveryView {
            id: d.id,
            state: d.state(),
            created: local(d.created_at),
            event_type: d.event_type.clone(),
            event: d.event.clone().unwrap_or_default(),
            attempts: d.attempts,
            last_attempt: d.last_attempt_at.map(local).unwrap_or_default(),
            next_attempt: d.next_attempt_at.map(local).unwrap_or_default(),
            response_code: d.response_code.map(|c| c.to_string()).unwrap_or_default(),
            last_error: d.last_error.unwrap_or_default(),
        })
        .collect();
    Ok(DeliveriesPage {
        chrome: chrome.at("admin"),
        endpoint,
        rows,
    }
    .into_response())
}

/// "Send test event": queues a test delivery; the sender posts it within seconds.
pub async fn send_test(
    State(state): State<AppState>,
    user: CurrentUser,
    session: Session,
    PathId(id): PathId,
) -> AppResult<Response> {
    let mut tx = state.db.begin().await?;
    match db::webhooks::queue_test(&mut tx, &actor(&user), id).await {
        Ok(_) => {
            tx.commit().await?;
            done(
                &session,
                "Queued a test event: it is sent within a few seconds. Reload this page to see the answer.",
                &format!("{LIST}/{id}/deliveries"),
            )
            .await
        }
        Err(WriteError::NotFound) => gone(&session, "webhook", LIST).await,
        Err(e) => Err(e.into()),
    }
}

/// Webhooks as a catalogue: the generic handlers of `super::crud` serve them.
pub struct Webhooks;

impl Catalogue for Webhooks {
    type Form = WebhookForm;
    const WHAT: &'static str = "webhook";
    const LIST: &'static str = "/admin/webhooks";
    const NEW: &'static str = "/admin/webhooks/new";
    const ONE: &'static str = "/admin/webhooks/{id}";

    async fn edit_page(state: &AppState, chrome: Chrome, id: Uuid) -> AppResult<Option<Response>> {
        Ok(db::webhooks::get(&state.db, id).await?.map(|e| {
            FormPage::new(
                chrome,
                Some(id),
                &WebhookForm::from(&e),
                FieldErrors::default(),
            )
            .into_response()
        }))
    }

    async fn save(
        state: &AppState,
        chrome: Chrome,
        user: &CurrentUser,
        session: &Session,
        id: Option<Uuid>,
        f: &WebhookForm,
    ) -> AppResult<Response> {
        let input = match parse(f, id.is_none()) {
            Ok(input) => input,
            Err(errors) => return Ok(again(chrome, id, f, errors)),
        };
        let seal = |id: Uuid, secret: &str| state.secrets.seal(id, secret);
        let mut tx = state.db.begin().await?;
        let result = match id {
            None => db::webhooks::create(&mut tx, &actor(user), &input, seal).await,
            Some(id) => db::webhooks::update(&mut tx, &actor(user), id, &input, seal)
                .await
                .map(|()| id),
        };
        match result {
            Ok(saved) => {
                tx.commit().await?;
                let verb = if id.is_some() { "Saved" } else { "Created" };
                done(
                    session,
                    format!("{verb} the webhook to {}.", input.url),
                    &format!("{LIST}/{saved}/deliveries"),
                )
                .await
            }
            Err(WriteError::NotFound) => gone(session, "webhook", LIST).await,
            Err(e) => Err(e.into()),
        }
    }
}

impl Deletable for Webhooks {
    const DELETE: &'static str = "/admin/webhooks/{id}/delete";

    async fn remove(tx: &mut PgConnection, actor: &Actor, id: Uuid) -> Result<Removal, WriteError> {
        let url = db::webhooks::remove(tx, actor, id).await?;
        Ok(Removal::Deleted(format!("the webhook to {url}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::web::form;

    #[test]
    fn a_webhook_form_converts_its_ticked_events() {
        let f: WebhookForm = form::parse(
            format!("url=https://hooks.example.com/x&secret=0123456789abcdef0123456789abcdef&events={}&enabled=on", EVENT_TYPES[0].0)
                .as_bytes(),
        )
        .unwrap();
        let input = parse(&f, true).unwrap();
        assert!(!input.all_events && input.enabled);
        assert_eq!(input.events, [EVENT_TYPES[0].0]);
    }

    #[test]
    fn an_unknown_event_and_a_missing_secret_are_field_errors() {
        let f: WebhookForm = form::parse(b"url=https://hooks.example.com/x&events=nope").unwrap();
        let e = parse(&f, true).unwrap_err();
        assert!(e.get("events").is_some() && e.get("secret").is_some());
    }
}
