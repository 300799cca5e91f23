//! Activity sessions: the dashboard's reads.

use sqlx::{FromRow, PgExecutor};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::domain::status::SessionStatus;

/// One row of a dashboard table.
#[derive(Debug, FromRow)]
pub struct Row {
    pub id: Uuid,
    pub status: SessionStatus,
    pub created_at: OffsetDateTime,
    pub resource_name: String,
    pub login_account: Option<String>,
    pub activity_name: String,
    pub requested_start: OffsetDateTime,
    pub ends_at: OffsetDateTime,
    pub notes: String,
    pub ticket_number: String,
}

/// The user's sessions that are not over, newest first.
pub async fn active_for(db: impl PgExecutor<'_>, user: Uuid) -> Result<Vec<Row>, sqlx::Error> {
    sqlx::query_as(
        "SELECT s.id, s.status, s.created_at, s.resource_name, s.login_account, s.activity_name,
                s.requested_start, s.ends_at, r.notes, r.ticket_number
         FROM activity_sessions s JOIN requests r ON r.id = s.request_id
         WHERE s.requester_id = $1
           AND s.status IN ('waiting_for_approval', 'pending', 'provisioning', 'available', 'logged_in', 'locked')
         ORDER BY s.created_at DESC, s.id
         LIMIT 200",
    )
    .bind(user)
    .fetch_all(db)
    .await
}
