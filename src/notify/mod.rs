//! Email notifications, decoupled from the transitions that cause them.
//!
//! A trigger on `session_events` (migration `20261128000003_notifications.sql`) queues a row in
//! `notifications` for each event someone should hear about; the transition's transaction does
//! nothing more, so mail can neither slow nor fail it. The sender task ([`run`]) drains the
//! queue every few seconds when `PORTCULLIS_SMTP_HOST` is set: it claims due rows under a short
//! lease (`FOR UPDATE SKIP LOCKED`, safe with several instances), writes one email per
//! request, kind and recipient, and records who got it, retrying failures with backoff.
//!
//! | event (kind, to status) | email | to |
//! |---|---|---|
//! | `requested` or `tier_approved` → Waiting for Approval | Approval needed | approvers of the tier now deciding |
//! | `approved` → Pending / Provisioning | Approved | requester |
//! | `denied` → Approval Denied | Approval Denied, with the reason | requester |
//! | `expired` → Expired | Expired | requester |
//! | (a usable session ends within 10 minutes) | Ends in 10 minutes | requester |
//!
//! Without an SMTP host the trigger still queues (one small insert per such event) but nothing
//! is sent. Rows older than [`MAX_AGE`] when their turn comes are dropped unsent, so turning
//! notifications on later does not flood anyone with old news.

mod compose;
mod config;
mod mailer;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use lettre::message::Mailbox;
use sqlx::PgPool;
use time::OffsetDateTime;
use tokio::sync::watch;
use uuid::Uuid;

pub use config::{SmtpConfig, SmtpTls};
pub use mailer::{Mailer, MailerError, SendError};

pub use crate::db::notifications::Kind;
use crate::db::notifications::{self as queue, Claimed, Recipient};
use crate::domain::status::SessionStatus;
use crate::domain::tz::TimeZone;
use compose::{Reader, RequestFacts, SessionFacts};

/// How often the sender looks for due rows.
pub const INTERVAL: Duration = Duration::from_secs(2);
/// How long before its end a usable session's requester is warned.
pub const ENDING_SOON: Duration = Duration::from_secs(10 * 60);
/// Rows older than this when their turn comes are dropped unsent.
pub const MAX_AGE: Duration = Duration::from_secs(24 * 60 * 60);
/// Attempts before a row is given up (its last error kept).
pub const MAX_ATTEMPTS: i32 = 8;
/// The wait after the first failure; each further failure doubles it.
pub const FIRST_BACKOFF: Duration = Duration::from_secs(30);
/// How long a claimed row is left alone by other instances.
const LEASE: Duration = Duration::from_secs(300);
/// Requests whose due rows are claimed per pass.
const BATCH: i64 = 20;
/// How long a request's rows wait for more of the same: the approvals page decides each
/// ticked session in its own transaction, and one click should make one email.
pub const SETTLE: Duration = Duration::from_secs(1);
/// How long a pass under way may still run after shutdown is asked for.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Sends notification emails until `stop` changes; returns at once when no SMTP host is
/// configured.
pub async fn run(pool: PgPool, config: SmtpConfig, mut stop: watch::Receiver<bool>) {
    let mailer = match Mailer::new(&config) {
        Ok(mailer) => mailer,
        Err(MailerError::NotConfigured) => {
            tracing::info!("email notifications are off: PORTCULLIS_SMTP_HOST is not set");
            return;
        }
        Err(e) => {
            tracing::error!(error = %e, "email notifications are off");
            return;
        }
    };
    tracing::info!(host = config.host.as_deref(), "email notifications are on");
    let mut ticker = tokio::time::interval(INTERVAL);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {
                let pass = send_due(&pool, &mailer);
                tokio::pin!(pass);
                let outcome = tokio::select! {
                    outcome = &mut pass => outcome,
                    _ = stop.changed() => {
                        // Let an email the server already took be marked as sent.
                        if let Ok(outcome) = tokio::time::timeout(SHUTDOWN_GRACE, pass).await {
                            log_pass(outcome);
                        }
                        break;
                    }
                };
                log_pass(outcome);
            }
            _ = stop.changed() => break,
        }
    }
    tracing::info!("notification sender stopped");
}

fn log_pass(outcome: Result<usize, sqlx::Error>) {
    match outcome {
        Ok(0) => {}
        Ok(sent) => tracing::info!(sent, "notification emails sent"),
        Err(e) if crate::db::is_unavailable(&e) => {
            tracing::warn!(error = %e, "notifications: database unavailable");
        }
        Err(e) => tracing::error!(error = %e, "notification pass failed"),
    }
}

/// One pass: queue the due "ends in ten minutes" warnings, then send what is due: the rows
/// of requests with nothing new for [`SETTLE`]. Returns how many emails went out. SMTP
/// failures are recorded on the rows, not returned.
pub async fn send_due(pool: &PgPool, mailer: &Mailer) -> Result<usize, sqlx::Error> {
    queue::enqueue_ending_soon(pool, ENDING_SOON).await?;
    let started = Instant::now();
    let claimed = queue::claim(pool, BATCH, SETTLE, LEASE).await?;
    let mut groups: BTreeMap<(Uuid, Kind, Option<i16>), Vec<Claimed>> = BTreeMap::new();
    for row in claimed {
        groups
            .entry((row.request_id, row.kind, row.tier))
            .or_default()
            .push(row);
    }
    let mut sent = 0;
    let mut outage: Option<String> = None;
    let mut groups = groups.into_values();
    while let Some(rows) = groups.next() {
        if started.elapsed() > LEASE / 2 {
            // Slow server: hand the rest back before the lease lets another instance in.
            let rest: Vec<i64> = std::iter::once(rows)
                .chain(groups.by_ref())
                .flatten()
                .map(|r| r.id)
                .collect();
            queue::release(pool, &rest).await?;
            break;
        }
        if let Some(error) = &outage {
            let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
            queue::failed(pool, &ids, error, FIRST_BACKOFF, MAX_ATTEMPTS).await?;
            continue;
        }
        let (count, failure) = send_group(pool, mailer, rows).await?;
        sent += count;
        if let Some(e) = failure.filter(SendError::is_outage) {
            outage = Some(e.to_string());
        }
    }
    Ok(sent)
}

/// Sends the rows of one request, kind and tier: one email per recipient, covering the rows
/// that recipient has not had yet. Returns how many emails went out and the last failure.
async fn send_group(
    pool: &PgPool,
    mailer: &Mailer,
    rows: Vec<Claimed>,
) -> Result<(usize, Option<SendError>), sqlx::Error> {
    let Some(first) = rows.first() else {
        return Ok((0, None));
    };
    let (kind, tier, request_id) = (first.kind, first.tier, first.request_id);
    let now = OffsetDateTime::now_utc();
    let (current, obsolete): (Vec<Claimed>, Vec<Claimed>) =
        rows.into_iter().partition(|r| still_true(r, now));
    for row in &obsolete {
        queue::skip(pool, &[row.id], &obsolete_reason(row, now)).await?;
    }
    if current.is_empty() {
        return Ok((0, None));
    }
    let ids: Vec<i64> = current.iter().map(|r| r.id).collect();
    let Some(request) = queue::request(pool, request_id).await? else {
        queue::skip(pool, &ids, "the request no longer exists").await?;
        return Ok((0, None));
    };
    let recipients = match kind {
        Kind::ApprovalNeeded => match (request.profile_id, tier) {
            (Some(profile), Some(tier)) => {
                queue::approvers(
                    pool,
                    profile,
                    tier,
                    request.requester_id,
                    request.allow_self_approval,
                )
                .await?
            }
            _ => Vec::new(),
        },
        _ => queue::requester(pool, request.requester_id).await?,
    };
    let facts = RequestFacts {
        id: request_id,
        activity_name: request.activity_name,
        requester_name: request.requester_name,
        notes: request.notes,
        ticket_number: request.ticket_number,
        tier_count: request.tier_count,
    };

    let reachable: Vec<(Uuid, Mailbox, &Recipient)> = recipients
        .iter()
        .filter_map(|r| match mailbox(r) {
            Some(to) => Some((r.id, to, r)),
            None => {
                tracing::warn!(user = %r.id, "notifications: skipping an invalid email address");
                None
            }
        })
        .collect();
    let mut delivered: Vec<Vec<Uuid>> = current.iter().map(|r| r.delivered_to.clone()).collect();
    let mut count = 0;
    let mut failure = None;
    for (user, to, recipient) in &reachable {
        let pending: Vec<usize> = (0..current.len())
            .filter(|&i| !delivered[i].contains(user))
            .collect();
        if pending.is_empty() {
            continue;
        }
        let sessions: Vec<SessionFacts> = pending
            .iter()
            .map(|&i| session_facts(&current[i]))
            .collect();
        let (zone, zone_name) = match TimeZone::parse(&recipient.time_zone) {
            Ok(zone) => (zone, recipient.time_zone.as_str()),
            Err(_) => (TimeZone::utc(), "UTC"),
        };
        let email = compose::compose(
            kind,
            tier,
            &facts,
            &sessions,
            Reader {
                name: &recipient.display_name,
                zone,
                zone_name,
            },
            mailer.public_url(),
        );
        match mailer.send(to.clone(), &email).await {
            Ok(()) => {
                let row_ids: Vec<i64> = pending.iter().map(|&i| current[i].id).collect();
                queue::delivered(pool, &row_ids, *user).await?;
                for &i in &pending {
                    delivered[i].push(*user);
                }
                count += 1;
            }
            Err(e) => {
                tracing::warn!(error = %e, %user, ?kind, "notification email failed");
                let outage = e.is_outage();
                failure = Some(e);
                if outage {
                    break;
                }
            }
        }
    }

    // Done: every recipient who can be written to has it (none at all counts as done).
    let (done, undone): (Vec<usize>, Vec<usize>) = (0..current.len()).partition(|&i| {
        reachable
            .iter()
            .all(|(user, _, _)| delivered[i].contains(user))
    });
    let done: Vec<i64> = done.iter().map(|&i| current[i].id).collect();
    let undone: Vec<i64> = undone.iter().map(|&i| current[i].id).collect();
    queue::sent(pool, &done).await?;
    if !undone.is_empty() {
        let error = failure
            .as_ref()
            .map_or_else(|| "not sent".to_owned(), ToString::to_string);
        queue::failed(pool, &undone, &error, FIRST_BACKOFF, MAX_ATTEMPTS).await?;
    }
    Ok((count, failure))
}

/// Whether what the row announces is still so: an approval still waits at that tier, a
/// session still ends at that time; and the row is not too old to matter.
fn still_true(row: &Claimed, now: OffsetDateTime) -> bool {
    if now - row.created_at > MAX_AGE {
        return false;
    }
    match row.kind {
        Kind::ApprovalNeeded => {
            row.status == SessionStatus::WaitingForApproval && row.current_tier == row.tier
        }
        Kind::EndingSoon => {
            matches!(
                row.status,
                SessionStatus::Available | SessionStatus::LoggedIn | SessionStatus::Locked
            ) && row.ends_at == Some(row.session_ends_at)
                && row.session_ends_at > now
        }
        Kind::Approved | Kind::Denied | Kind::Expired => true,
    }
}

fn obsolete_reason(row: &Claimed, now: OffsetDateTime) -> String {
    if now - row.created_at > MAX_AGE {
        return "older than a day when its turn came".into();
    }
    match row.kind {
        Kind::ApprovalNeeded => format!(
            "no longer waiting at tier {} (now {})",
            row.tier.unwrap_or_default(),
            row.status.label()
        ),
        _ => format!(
            "the session's end moved or came (now {})",
            row.status.label()
        ),
    }
}

fn session_facts(row: &Claimed) -> SessionFacts {
    SessionFacts {
        id: row.session_id,
        resource_name: row.resource_name.clone(),
        status: row.status,
        start: row.requested_start,
        end: row.session_ends_at,
        actor_name: row.actor_name.clone(),
        comment: row.comment.clone(),
        can_extend: row.can_extend,
    }
}

fn mailbox(r: &Recipient) -> Option<Mailbox> {
    let address = r.email.trim().parse().ok()?;
    let name = r.display_name.chars().filter(|c| !c.is_control()).collect();
    Some(Mailbox::new(Some(name), address))
}
