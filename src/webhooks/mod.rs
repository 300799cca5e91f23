//! Webhooks: every request, decision and session status change, delivered as signed JSON to
//! the endpoints administrators registered (Admin > Webhooks).
//!
//! A trigger on `session_events` (migration `20261201000020_webhooks.sql`) queues one row in
//! `webhook_deliveries` per endpoint that wants the event, in the transition's own
//! transaction; nothing else happens there, so an endpoint can neither slow nor fail a
//! transition. The sender task ([`run`]) drains the queue every [`INTERVAL`]: it claims due
//! rows under a lease (`FOR UPDATE SKIP LOCKED`, safe with several instances), posts them
//! all at once with a short timeout, and records the answer; failures are retried after
//! the first backoff × 2^(failures so far), and given up after the maximum of attempts
//! ([`WebhookArgs`], defaults [`FIRST_BACKOFF`] and [`MAX_ATTEMPTS`]). Finished deliveries
//! (delivered or given up) are deleted once older than the retention, once an hour.
//!
//! Each POST carries `Portcullis-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of
//! "<t>.<body>" with the endpoint's secret>` (see the README's "Webhooks" section for how a
//! receiver checks it and refuses replays).

use std::time::Duration;

use hmac::Mac;
use sqlx::PgPool;
use tokio::sync::watch;
use uuid::Uuid;

use crate::crypto::SecretBox;
use crate::db::webhooks::{self as deliveries, Claimed};

/// How often the sender looks for due deliveries.
pub const INTERVAL: Duration = Duration::from_secs(2);
/// Attempts before a delivery is given up (marked so, its last error kept), by default.
pub const MAX_ATTEMPTS: i32 = 8;
/// The wait after the first failure, by default; each further failure doubles it (10 s …
/// about 21 min).
pub const FIRST_BACKOFF: Duration = Duration::from_secs(10);
/// How long one POST may take, connecting included, by default.
pub const TIMEOUT: Duration = Duration::from_secs(10);
/// How long a claimed row is left alone by other instances, beyond the POST's timeout.
const LEASE_MARGIN: Duration = Duration::from_secs(50);
/// How often finished deliveries older than the retention are deleted.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);
/// Finished deliveries deleted per statement (short transactions).
const PRUNE_BATCH: i64 = 1000;

/// The webhook sender's settings.
#[derive(Debug, Clone, clap::Args)]
pub struct WebhookArgs {
    /// Seconds one delivery (POST) may take, connecting included.
    #[arg(long, env = "PORTCULLIS_WEBHOOK_TIMEOUT_SECONDS", default_value_t = TIMEOUT.as_secs(),
          value_parser = clap::value_parser!(u64).range(1..=120), global = true)]
    pub webhook_timeout_seconds: u64,

    /// Attempts before a delivery is given up (its last error kept in the delivery log).
    #[arg(long, env = "PORTCULLIS_WEBHOOK_MAX_ATTEMPTS", default_value_t = MAX_ATTEMPTS,
          value_parser = clap::value_parser!(i32).range(1..=30), global = true)]
    pub webhook_max_attempts: i32,

    /// Seconds to wait after a first failed delivery; each further failure doubles it.
    #[arg(long, env = "PORTCULLIS_WEBHOOK_FIRST_BACKOFF_SECONDS",
          default_value_t = FIRST_BACKOFF.as_secs(),
          value_parser = clap::value_parser!(u64).range(1..=3600), global = true)]
    pub webhook_first_backoff_seconds: u64,

    /// Days a delivered or given-up delivery stays in the delivery log before it is deleted.
    #[arg(long, env = "PORTCULLIS_WEBHOOK_RETENTION_DAYS", default_value_t = 30,
          value_parser = clap::value_parser!(u32).range(1..=3650), global = true)]
    pub webhook_retention_days: u32,
}
/// Deliveries claimed per pass (posted concurrently).
const BATCH: i64 = 50;
pub use crate::domain::webhook::{EVENT_TYPES, check_secret, check_url};

/// The header carrying the timestamp and signature.
pub const SIGNATURE_HEADER: &str = "Portcullis-Signature";

/// `t=<timestamp>,v1=<hex HMAC-SHA256 of "<timestamp>.<body>">`.
pub fn signature(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let mut hex = String::with_capacity(64);
    if let Ok(mut mac) = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()) {
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        for byte in mac.finalize().into_bytes() {
            hex.push_str(&format!("{byte:02x}"));
        }
    }
    format!("t={timestamp},v1={hex}")
}

/// Posts deliveries: one HTTP client (no redirects followed, short timeouts) and the key that
/// opens the endpoints' secrets.
#[derive(Clone)]
pub struct Sender {
    http: reqwest::Client,
    secrets: SecretBox,
    lease: Duration,
    max_attempts: i32,
    first_backoff: Duration,
}

impl Sender {
    /// A sender whose POSTs time out after `timeout`, retrying as by default.
    pub fn new(secrets: SecretBox, timeout: Duration) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            .user_agent(concat!("Portcullis-Webhooks/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            http,
            secrets,
            lease: timeout + LEASE_MARGIN,
            max_attempts: MAX_ATTEMPTS,
            first_backoff: FIRST_BACKOFF,
        })
    }

    /// The same sender giving up after `max_attempts`, waiting `first_backoff` after the
    /// first failure (doubling after each further one).
    pub fn retrying(mut self, max_attempts: i32, first_backoff: Duration) -> Self {
        self.max_attempts = max_attempts;
        self.first_backoff = first_backoff;
        self
    }

    /// The sender the settings describe.
    pub fn from_args(secrets: SecretBox, args: &WebhookArgs) -> Result<Self, reqwest::Error> {
        Ok(
            Self::new(secrets, Duration::from_secs(args.webhook_timeout_seconds))?.retrying(
                args.webhook_max_attempts,
                Duration::from_secs(args.webhook_first_backoff_seconds),
            ),
        )
    }
}

/// What one attempt came to.
#[derive(Debug)]
struct Outcome {
    code: Option<i32>,
    error: Option<String>,
}

/// Sends webhooks until `stop` changes, and deletes finished deliveries older than the
/// retention once an hour.
pub async fn run(
    pool: PgPool,
    secrets: SecretBox,
    args: WebhookArgs,
    mut stop: watch::Receiver<bool>,
) {
    let sender = match Sender::from_args(secrets, &args) {
        Ok(sender) => sender,
        Err(e) => {
            tracing::error!(error = %e, "webhooks are off: no HTTP client");
            return;
        }
    };
    let mut ticker = tokio::time::interval(INTERVAL);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut pruner = tokio::time::interval(PRUNE_EVERY);
    pruner.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = pruner.tick() => {
                match prune(&pool, args.webhook_retention_days).await {
                    Ok(0) => {}
                    Ok(deleted) => tracing::info!(deleted, "deleted old webhook deliveries"),
                    Err(e) => tracing::warn!(error = %e, "webhook deliveries not pruned"),
                }
            }
            _ = ticker.tick() => {
                tokio::select! {
                    outcome = deliver_due(&pool, &sender) => {
                        if let Err(e) = outcome {
                            if crate::db::is_unavailable(&e) {
                                tracing::warn!(error = %e, "webhooks: database unavailable");
                            } else {
                                tracing::error!(error = %e, "webhook pass failed");
                            }
                        }
                    }
                    // Rows in flight come due again when their lease runs out.
                    _ = stop.changed() => break,
                }
            }
            _ = stop.changed() => break,
        }
    }
    tracing::info!("webhook sender stopped");
}

/// One pass: claims the due deliveries of enabled endpoints, posts them concurrently and
/// records each answer. Returns how many were delivered.
pub async fn deliver_due(pool: &PgPool, sender: &Sender) -> Result<usize, sqlx::Error> {
    let claimed = deliveries::claim_due(pool, BATCH, sender.lease).await?;
    let attempts = claimed.iter().map(|c| async move {
        let outcome = attempt(sender, c).await;
        (c.id, outcome)
    });
    let outcomes = futures_util::future::join_all(attempts).await;
    let mut delivered = 0;
    for (id, outcome) in outcomes {
        if outcome.error.is_none() {
            delivered += 1;
        }
        record(pool, sender, id, &outcome).await?;
    }
    Ok(delivered)
}

async fn attempt(sender: &Sender, c: &Claimed) -> Outcome {
    let secret = match sender.secrets.open(c.endpoint_id, &c.secret_ciphertext) {
        Ok(secret) => secret,
        Err(e) => {
            return Outcome {
                code: None,
                error: Some(format!("{e}: save the endpoint's secret again")),
            };
        }
    };
    let timestamp = time::OffsetDateTime::now_utc().unix_timestamp();
    let response = sender
        .http
        .post(&c.url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(
            SIGNATURE_HEADER,
            signature(&secret, timestamp, c.body.as_bytes()),
        )
        .header("Portcullis-Event", &c.event_type)
        .header("Portcullis-Delivery", c.id.to_string())
        .body(c.body.clone())
        .send()
        .await;
    match response {
        Ok(r) if r.status().is_success() => Outcome {
            code: Some(i32::from(r.status().as_u16())),
            error: None,
        },
        Ok(r) => Outcome {
            code: Some(i32::from(r.status().as_u16())),
            error: Some(format!("The endpoint answered {}.", r.status())),
        },
        Err(e) if e.is_timeout() => Outcome {
            code: None,
            error: Some("No answer in time (timed out).".into()),
        },
        Err(e) => Outcome {
            code: None,
            error: Some(error_chain(&e)),
        },
    }
}

/// An error with its causes ("error sending request: ...: Connection refused").
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// Deletes delivered and given-up deliveries that finished more than `retention_days` ago
/// (never one still to be tried); returns how many.
pub async fn prune(pool: &PgPool, retention_days: u32) -> Result<u64, sqlx::Error> {
    let mut deleted = 0;
    loop {
        let n = crate::db::webhooks::prune(pool, retention_days, PRUNE_BATCH).await?;
        deleted += n;
        if n < PRUNE_BATCH.unsigned_abs() {
            return Ok(deleted);
        }
    }
}

async fn record(
    pool: &PgPool,
    sender: &Sender,
    id: Uuid,
    outcome: &Outcome,
) -> Result<(), sqlx::Error> {
    match &outcome.error {
        None => deliveries::delivered(pool, id, outcome.code).await,
        Some(error) => {
            deliveries::failed(
                pool,
                id,
                outcome.code,
                error,
                sender.max_attempts,
                sender.first_backoff,
            )
            .await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert!(check_url("https://hooks.example.com/x").is_ok());
        assert!(check_url("http://127.0.0.1:8080/x").is_ok());
        assert!(check_url("http://[::1]:8080/x").is_ok());
        assert!(check_url("http://localhost/x").is_ok());
        assert!(check_url("http://hooks.example.com/x").is_err());
        assert!(check_url("ftp://hooks.example.com/x").is_err());
        assert!(check_url("https://user:pw@hooks.example.com/x").is_err());
        assert!(check_url("hooks.example.com").is_err());
        assert!(check_url("").is_err());
    }

    #[test]
    fn signature_is_hmac_of_timestamp_dot_body() {
        // python3: hmac.new(b"secret-secret-secret", b"1700000000.{}", "sha256").hexdigest()
        assert_eq!(
            signature("secret-secret-secret", 1_700_000_000, b"{}"),
            "t=1700000000,v1=9abb7ec2de5533bf35e03b3947b220889dd81b1238d43182a426463aafcc6e8c"
        );
    }
}
