//! Webhook endpoints as administrators manage them (Admin > Webhooks), and their delivery
//! log. The secret is written sealed and never read back here: only the sender opens it.
//! Every change writes its audit entry in the same transaction, without the secret.

use sqlx::{PgConnection, PgExecutor};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::db::audit::{self, Actor, Entry, WriteError};

/// An endpoint as listed (no secret).
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub id: Uuid,
    pub url: String,
    pub all_events: bool,
    pub events: Vec<String>,
    pub enabled: bool,
    pub created_at: OffsetDateTime,
    /// Deliveries still to be made (queued or being retried).
    pub pending: i64,
    /// Deliveries given up.
    pub failed: i64,
}

impl Endpoint {
    /// "All events", or the labels of those chosen.
    pub fn events_label(&self) -> String {
        if self.all_events {
            return "All events".into();
        }
        crate::domain::webhook::EVENT_TYPES
            .iter()
            .filter(|(key, _)| self.events.iter().any(|e| e == key))
            .map(|(_, label)| *label)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// What the form saves: checked by the caller.
#[derive(Debug, Clone)]
pub struct EndpointInput {
    pub url: String,
    /// `None`: keep the stored one (edit only).
    pub secret: Option<String>,
    pub all_events: bool,
    pub events: Vec<String>,
    pub enabled: bool,
}

/// Every endpoint, oldest first.
pub async fn list(db: impl PgExecutor<'_>) -> Result<Vec<Endpoint>, sqlx::Error> {
    sqlx::query_as!(
        Endpoint,
        r#"SELECT e.id, e.url, e.all_events, e.events, e.enabled, e.created_at,
                (SELECT count(*) FROM webhook_deliveries d
                 WHERE d.endpoint_id = e.id AND d.next_attempt_at IS NOT NULL) AS "pending!",
                (SELECT count(*) FROM webhook_deliveries d
                 WHERE d.endpoint_id = e.id AND d.gave_up_at IS NOT NULL) AS "failed!"
         FROM webhook_endpoints e
         ORDER BY e.created_at, e.id LIMIT 1000"#
    )
    .fetch_all(db)
    .await
}

/// One endpoint.
pub async fn get(db: impl PgExecutor<'_>, id: Uuid) -> Result<Option<Endpoint>, sqlx::Error> {
    sqlx::query_as!(
        Endpoint,
        r#"SELECT e.id, e.url, e.all_events, e.events, e.enabled, e.created_at,
                (SELECT count(*) FROM webhook_deliveries d
                 WHERE d.endpoint_id = e.id AND d.next_attempt_at IS NOT NULL) AS "pending!",
                (SELECT count(*) FROM webhook_deliveries d
                 WHERE d.endpoint_id = e.id AND d.gave_up_at IS NOT NULL) AS "failed!"
         FROM webhook_endpoints e
         WHERE e.id = $1"#,
        id
    )
    .fetch_optional(db)
    .await
}

async fn snapshot(tx: &mut PgConnection, id: Uuid) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar!(
        r#"SELECT (to_jsonb(e) - 'secret_ciphertext')::text AS "snapshot!"
         FROM webhook_endpoints e WHERE id = $1"#,
        id
    )
    .fetch_optional(tx)
    .await
}

/// Stores a new endpoint; `seal` seals its secret with the endpoint's id.
pub async fn create(
    tx: &mut PgConnection,
    actor: &Actor,
    input: &EndpointInput,
    seal: impl FnOnce(Uuid, &str) -> Vec<u8>,
) -> Result<Uuid, WriteError> {
    let id = Uuid::now_v7();
    let sealed = seal(id, input.secret.as_deref().unwrap_or_default());
    sqlx::query!(
        "INSERT INTO webhook_endpoints (id, url, secret_ciphertext, all_events, events, enabled)
         VALUES ($1, $2, $3, $4, $5, $6)",
        id,
        input.url,
        sealed,
        input.all_events,
        &input.events,
        input.enabled
    )
    .execute(&mut *tx)
    .await?;
    let after = snapshot(tx, id).await?;
    record(tx, actor, "create", id, &input.url, None, after).await?;
    Ok(id)
}

/// Changes an endpoint, replacing its secret when a new one was given (the audit entry says
/// so with `secret_replaced`, never with the secret).
pub async fn update(
    tx: &mut PgConnection,
    actor: &Actor,
    id: Uuid,
    input: &EndpointInput,
    seal: impl FnOnce(Uuid, &str) -> Vec<u8>,
) -> Result<(), WriteError> {
    sqlx::query_scalar!(
        "SELECT 1 AS one FROM webhook_endpoints WHERE id = $1 FOR UPDATE",
        id
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(WriteError::NotFound)?;
    let before = snapshot(tx, id).await?;
    let sealed = input.secret.as_deref().map(|s| seal(id, s));
    sqlx::query!(
        "UPDATE webhook_endpoints
         SET url = $2, secret_ciphertext = coalesce($3, secret_ciphertext), all_events = $4,
             events = $5, enabled = $6, updated_at = now()
         WHERE id = $1",
        id,
        input.url,
        sealed.as_deref(),
        input.all_events,
        &input.events,
        input.enabled
    )
    .execute(&mut *tx)
    .await?;
    let after: Option<String> = sqlx::query_scalar!(
        r#"SELECT (to_jsonb(e) - 'secret_ciphertext'
                 || jsonb_build_object('secret_replaced', $2::boolean))::text AS "after!"
         FROM webhook_endpoints e WHERE id = $1"#,
        id,
        sealed.is_some()
    )
    .fetch_optional(&mut *tx)
    .await?;
    record(tx, actor, "update", id, &input.url, before, after).await?;
    Ok(())
}

/// Deletes an endpoint and its delivery log (undelivered events are dropped).
pub async fn remove(tx: &mut PgConnection, actor: &Actor, id: Uuid) -> Result<String, WriteError> {
    let url: String = sqlx::query_scalar!(
        "SELECT url FROM webhook_endpoints WHERE id = $1 FOR UPDATE",
        id
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(WriteError::NotFound)?;
    let before = snapshot(tx, id).await?;
    sqlx::query!("DELETE FROM webhook_endpoints WHERE id = $1", id)
        .execute(&mut *tx)
        .await?;
    record(tx, actor, "delete", id, &url, before, None).await?;
    Ok(url)
}

/// Queues a test event for the endpoint (delivered by the sender like any other, even when
/// the endpoint is disabled it waits for it to be enabled). Audited.
pub async fn queue_test(
    tx: &mut PgConnection,
    actor: &Actor,
    id: Uuid,
) -> Result<Uuid, WriteError> {
    let url: String = sqlx::query_scalar!(
        "SELECT url FROM webhook_endpoints WHERE id = $1 FOR SHARE",
        id
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(WriteError::NotFound)?;
    let delivery: Uuid = sqlx::query_scalar!(
        "INSERT INTO webhook_deliveries (endpoint_id, event_type, payload)
         VALUES ($1, 'test', jsonb_build_object(
             'type', 'test',
             'occurred_at', to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'),
             'actor', jsonb_build_object('id', $2::uuid, 'name', $3::text),
             'comment', 'A test event sent from Admin > Webhooks.'))
         RETURNING id",
        id,
        actor.id,
        actor.name
    )
    .fetch_one(&mut *tx)
    .await?;
    let after = Some(serde_json::json!({ "delivery_id": delivery }).to_string());
    record(tx, actor, "send_test_event", id, &url, None, after).await?;
    Ok(delivery)
}

/// One delivery in the log.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub id: Uuid,
    pub event_type: String,
    pub event: Option<String>,
    pub attempts: i32,
    pub next_attempt_at: Option<OffsetDateTime>,
    pub last_attempt_at: Option<OffsetDateTime>,
    pub delivered_at: Option<OffsetDateTime>,
    pub gave_up_at: Option<OffsetDateTime>,
    pub response_code: Option<i32>,
    pub last_error: Option<String>,
    pub created_at: OffsetDateTime,
}

impl Delivery {
    /// Delivered, Given up, Retrying or Queued.
    pub fn state(&self) -> &'static str {
        if self.delivered_at.is_some() {
            "Delivered"
        } else if self.gave_up_at.is_some() {
            "Given up"
        } else if self.attempts > 0 {
            "Retrying"
        } else {
            "Queued"
        }
    }
}

/// The newest deliveries of an endpoint.
pub async fn deliveries(
    db: impl PgExecutor<'_>,
    endpoint: Uuid,
    limit: i64,
) -> Result<Vec<Delivery>, sqlx::Error> {
    sqlx::query_as!(
        Delivery,
        r#"SELECT id, event_type, payload->>'event' AS "event?", attempts, next_attempt_at,
                last_attempt_at, delivered_at, gave_up_at, response_code, last_error, created_at
         FROM webhook_deliveries WHERE endpoint_id = $1
         ORDER BY created_at DESC, id DESC LIMIT $2"#,
        endpoint,
        limit
    )
    .fetch_all(db)
    .await
}

async fn record(
    tx: &mut PgConnection,
    actor: &Actor,
    action: &str,
    id: Uuid,
    name: &str,
    before: Option<String>,
    after: Option<String>,
) -> Result<(), sqlx::Error> {
    audit::record(
        tx,
        actor,
        Entry {
            action,
            object_kind: "webhook",
            object_id: Some(id),
            object_name: name,
            before,
            after,
        },
    )
    .await
}

/// Deletes at most `batch` deliveries that were delivered or given up more than
/// `retention_days` ago; returns how many.
pub async fn prune(
    db: impl PgExecutor<'_>,
    retention_days: u32,
    batch: i64,
) -> Result<u64, sqlx::Error> {
    sqlx::query!(
        "DELETE FROM webhook_deliveries WHERE id IN (
             SELECT id FROM webhook_deliveries
             WHERE next_attempt_at IS NULL
               AND coalesce(delivered_at, gave_up_at) < now() - make_interval(days => $1)
             LIMIT $2)",
        i32::try_from(retention_days).unwrap_or(i32::MAX),
        batch
    )
    .execute(db)
    .await
    .map(|r| r.rows_affected())
}

/// A queued delivery taken by the sender until its lease runs out.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub id: Uuid,
    pub endpoint_id: Uuid,
    pub event_type: String,
    pub body: String,
    pub url: String,
    pub secret_ciphertext: Vec<u8>,
}

/// Takes up to `batch` due deliveries of enabled endpoints and pushes their next attempt
/// `lease` ahead, so other instances skip them meanwhile.
pub async fn claim_due(
    db: impl PgExecutor<'_>,
    batch: i64,
    lease: std::time::Duration,
) -> Result<Vec<Claimed>, sqlx::Error> {
    sqlx::query_as!(
        Claimed,
        r#"WITH due AS (
             SELECT d.id FROM webhook_deliveries d
             JOIN webhook_endpoints e ON e.id = d.endpoint_id AND e.enabled
             WHERE d.next_attempt_at <= now()
             ORDER BY d.next_attempt_at, d.created_at LIMIT $1
             FOR UPDATE OF d SKIP LOCKED
         )
         UPDATE webhook_deliveries d SET next_attempt_at = now() + make_interval(secs => $2)
         FROM due, webhook_endpoints e
         WHERE d.id = due.id AND e.id = d.endpoint_id
         RETURNING d.id, d.endpoint_id, d.event_type, d.payload::text AS "body!", e.url,
                   e.secret_ciphertext"#,
        batch,
        lease.as_secs_f64()
    )
    .fetch_all(db)
    .await
}

/// The endpoint accepted delivery `id` with `code`.
pub async fn delivered(
    db: impl PgExecutor<'_>,
    id: Uuid,
    code: Option<i32>,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "UPDATE webhook_deliveries
         SET attempts = attempts + 1, delivered_at = now(), last_attempt_at = now(),
             next_attempt_at = NULL, response_code = $2, last_error = NULL
         WHERE id = $1",
        id,
        code
    )
    .execute(db)
    .await
    .map(|_| ())
}

/// An attempt at delivery `id` failed: count it and try again after `first_backoff` ×
/// 2^(failures so far), or give up after `max_attempts`, keeping the error.
pub async fn failed(
    db: impl PgExecutor<'_>,
    id: Uuid,
    code: Option<i32>,
    error: &str,
    max_attempts: i32,
    first_backoff: std::time::Duration,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "UPDATE webhook_deliveries
         SET attempts = attempts + 1, last_attempt_at = now(),
             response_code = $2, last_error = left($3, 2000),
             next_attempt_at = CASE WHEN attempts + 1 >= $4 THEN NULL
                                    ELSE now() + make_interval(secs => $5 * power(2, attempts)) END,
             gave_up_at = CASE WHEN attempts + 1 >= $4 THEN now() END
         WHERE id = $1",
        id,
        code,
        error,
        max_attempts,
        first_backoff.as_secs_f64()
    )
    .execute(db)
    .await
    .map(|_| ())
}
