//! Activity sessions: the dashboard's reads, session details and events, and conditional
//! status changes, each in a transaction with its event.

use std::net::IpAddr;

use sqlx::{FromRow, PgConnection, PgExecutor};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::domain::catalog::Protocol;
use crate::domain::event::EventKind;
use crate::domain::status::{NotAllowed, SessionStatus, Tab, Transition};

/// The actor of the event that moved session `s` into its final status (NULL: the system),
/// or NULL while it has not ended. [`details`] spells it out, as its macro needs a literal.
const END_ACTOR: &str = "CASE WHEN s.ended_at IS NULL THEN NULL ELSE
    (SELECT e.actor_id FROM session_events e WHERE e.session_id = s.id AND e.to_status = s.status
     ORDER BY e.id DESC LIMIT 1) END AS end_actor";

/// One row of a dashboard table.
#[derive(Debug, Clone, FromRow)]
pub struct Row {
    pub id: Uuid,
    pub request_id: Uuid,
    pub status: SessionStatus,
    pub created_at: OffsetDateTime,
    pub requester_id: Uuid,
    pub requester_name: String,
    pub resource_name: String,
    pub login_account: Option<String>,
    pub activity_name: String,
    pub requested_start: OffsetDateTime,
    pub ends_at: OffsetDateTime,
    pub notes: String,
    pub ticket_number: String,
    /// All view: the session ended but its target has not confirmed the removal of its access.
    pub removal_pending: bool,
    /// When it really ended (`ends_at` is only the plan).
    pub ended_at: Option<OffsetDateTime>,
    /// Who moved it into its final status (None: the system).
    pub end_actor: Option<Uuid>,
    /// How the requester connects; looked up only while the session can be connected to
    /// (Available, Logged In), for the row's Connection icon.
    pub protocol: Option<Protocol>,
}

/// The activity's protocol of a row that can be connected to; the others are not probed.
const CONNECT_PROTOCOL: &str = "CASE WHEN s.status IN ('available', 'logged_in')
                THEN (SELECT r.protocol FROM requests r WHERE r.id = s.request_id) END AS protocol";

/// What a dashboard table shows.
#[derive(Debug, Clone)]
pub struct Filter {
    pub tab: Tab,
    /// `None`: everyone's sessions (administrators' All).
    pub requester: Option<Uuid>,
    /// Matched in resource, activity, login account, notes and ticket number.
    pub search: String,
    /// Historical: matched in the resource name.
    pub resource: String,
    /// Historical: sessions starting at or after.
    pub from: Option<OffsetDateTime>,
    /// Historical: sessions starting before.
    pub until: Option<OffsetDateTime>,
    pub limit: i64,
    pub offset: i64,
}

/// The sessions of one tab, newest first: at most `limit` rows, and whether more follow.
///
/// The statement is built for the filters actually in use, so each variant gets its own
/// plan: a catch-all `($1 IS NULL OR requester_id = $1)` would leave PostgreSQL a generic
/// plan that cannot use the requester index. No total is counted: counting a million
/// historical rows for every page would cost more than the page.
pub async fn list(db: impl PgExecutor<'_>, f: &Filter) -> Result<(Vec<Row>, bool), sqlx::Error> {
    let tab = crate::db::status_sql::tab(f.tab);
    // One table for one user's sessions: notes and ticket are copied onto each session, and
    // the requester's name is only looked up for a list of everyone's (the caller knows its
    // own user's name).
    // Runtime SQL: built from the filters in use (QueryBuilder) and the tab's status set.
    let mut q = sqlx::QueryBuilder::<sqlx::Postgres>::new(if f.requester.is_some() {
        format!(
        "SELECT s.id, s.request_id, s.status, s.created_at, s.requester_id, '' AS requester_name,
                s.resource_name, s.login_account, s.activity_name, s.requested_start, s.ends_at,
                s.notes, s.ticket_number, false AS removal_pending, s.ended_at, {END_ACTOR},
                {CONNECT_PROTOCOL}
         FROM activity_sessions s
         WHERE "
        )
    } else {
        format!(
        "SELECT s.id, s.request_id, s.status, s.created_at, s.requester_id, u.display_name AS requester_name,
                s.resource_name, s.login_account, s.activity_name, s.requested_start, s.ends_at,
                s.notes, s.ticket_number,
                -- One probe of the (session_id, action) key per row shown, in the All view
                -- only: the requester's own view stays one table.
                EXISTS (SELECT 1 FROM provision_steps p
                        WHERE p.session_id = s.id AND p.action = 'revoke'
                          AND p.done_at IS NULL) AS removal_pending, s.ended_at, {END_ACTOR},
                {CONNECT_PROTOCOL}
         FROM activity_sessions s
         JOIN users u ON u.id = s.requester_id
         WHERE "
        )
    });
    q.push(tab);
    if let Some(requester) = f.requester {
        q.push(" AND s.requester_id = ").push_bind(requester);
    }
    if !f.search.is_empty() {
        let needle = f.search.to_lowercase();
        q.push(" AND (");
        let fields = [
            "s.resource_name",
            "s.activity_name",
            "coalesce(s.login_account, '')",
            "s.notes",
            "s.ticket_number",
        ];
        for (i, field) in fields.iter().enumerate() {
            if i > 0 {
                q.push(" OR ");
            }
            q.push(format_args!("strpos(lower({field}), "))
                .push_bind(needle.clone())
                .push(") > 0");
        }
        q.push(")");
    }
    if !f.resource.is_empty() {
        q.push(" AND strpos(lower(s.resource_name), ")
            .push_bind(f.resource.to_lowercase())
            .push(") > 0");
    }
    if let Some(from) = f.from {
        q.push(" AND s.requested_start >= ").push_bind(from);
    }
    if let Some(until) = f.until {
        q.push(" AND s.requested_start < ").push_bind(until);
    }
    q.push(" ORDER BY s.created_at DESC, s.id DESC LIMIT ")
        .push_bind(f.limit + 1)
        .push(" OFFSET ")
        .push_bind(f.offset);
    let mut rows: Vec<Row> = q.build_query_as().fetch_all(db).await?;
    let more = rows.len() > usize::try_from(f.limit).unwrap_or(usize::MAX);
    rows.truncate(usize::try_from(f.limit).unwrap_or(usize::MAX));
    Ok((rows, more))
}

/// A session with its request, for the details page.
#[derive(Debug, Clone)]
pub struct Details {
    pub id: Uuid,
    pub request_id: Uuid,
    pub status: SessionStatus,
    pub requester_id: Uuid,
    pub requester_name: String,
    pub resource_name: String,
    pub resource_address: String,
    pub resource_port: Option<i32>,
    pub activity_name: String,
    pub protocol: Protocol,
    pub policy_name: String,
    pub profile_name: String,
    pub login_account: Option<String>,
    pub notes: String,
    pub ticket_number: String,
    pub created_at: OffsetDateTime,
    pub requested_start: OffsetDateTime,
    pub ends_at: OffsetDateTime,
    pub current_tier: Option<i16>,
    pub tier_count: i16,
    pub lock_message: Option<String>,
    pub extension_minutes: i32,
    pub max_extensions: i32,
    pub extensions_used: i32,
    pub login_mode: crate::domain::catalog::LoginMode,
    /// As the grant was made on the target, else as the resource says now.
    pub provisioner: crate::domain::provisioner::ProvisionerKind,
    /// When it really ended (`ends_at` is only the plan).
    pub ended_at: Option<OffsetDateTime>,
    /// Who moved it into its final status (None: the system).
    pub end_actor: Option<Uuid>,
}

/// The session, if it exists.
pub async fn details(db: impl PgExecutor<'_>, id: Uuid) -> Result<Option<Details>, sqlx::Error> {
    sqlx::query_as!(
        Details,
        r#"SELECT s.id, s.request_id, s.status AS "status: SessionStatus", s.requester_id,
                u.display_name AS requester_name,
                s.resource_name, s.resource_address, s.resource_port, s.activity_name,
                r.protocol AS "protocol: Protocol", r.policy_name, r.profile_name,
                s.login_account, r.notes,
                r.ticket_number, s.created_at, s.requested_start, s.ends_at, s.current_tier,
                r.tier_count, s.lock_message, r.extension_minutes, r.max_extensions,
                s.extensions_used, r.login_mode AS "login_mode: crate::domain::catalog::LoginMode",
                coalesce((SELECT p.provisioner FROM provision_steps p
                          WHERE p.session_id = s.id AND p.action = 'grant'
                          ORDER BY p.round LIMIT 1),
                         (SELECT res.provisioner FROM resources res WHERE res.id = s.resource_id),
                         'simulated')
                    AS "provisioner!: crate::domain::provisioner::ProvisionerKind",
                s.ended_at,
                CASE WHEN s.ended_at IS NULL THEN NULL ELSE
                    (SELECT e.actor_id FROM session_events e
                     WHERE e.session_id = s.id AND e.to_status = s.status
                     ORDER BY e.id DESC LIMIT 1) END AS "end_actor?"
         FROM activity_sessions s
         JOIN requests r ON r.id = s.request_id
         JOIN users u ON u.id = s.requester_id
         WHERE s.id = $1"#,
        id
    )
    .fetch_optional(db)
    .await
}

/// One entry of a session's log.
#[derive(Debug, Clone)]
pub struct Event {
    pub at: OffsetDateTime,
    pub actor_name: String,
    pub kind: EventKind,
    pub from_status: Option<SessionStatus>,
    pub to_status: Option<SessionStatus>,
    pub comment: String,
}

/// The session's events in the order they happened.
pub async fn events(db: impl PgExecutor<'_>, session: Uuid) -> Result<Vec<Event>, sqlx::Error> {
    sqlx::query_as!(
        Event,
        r#"SELECT at, actor_name, kind AS "kind: EventKind",
                  from_status AS "from_status: SessionStatus",
                  to_status AS "to_status: SessionStatus", comment
           FROM session_events WHERE session_id = $1 ORDER BY id"#,
        session
    )
    .fetch_all(db)
    .await
}

/// Who caused an event: a user, or the system (worker, provisioner).
#[derive(Debug, Clone, Copy)]
pub enum Actor<'a> {
    User { id: Uuid, name: &'a str },
    System,
}

/// A new event.
pub struct NewEvent<'a> {
    pub session: Uuid,
    pub actor: Actor<'a>,
    pub kind: EventKind,
    pub from: Option<SessionStatus>,
    pub to: Option<SessionStatus>,
    pub comment: &'a str,
    pub client: Option<IpAddr>,
}

impl<'a> NewEvent<'a> {
    /// An event by `actor` on `session`; `from` and `to` are left for
    /// [`transition`] to fill in when it changes the status.
    pub fn new(
        session: Uuid,
        actor: Actor<'a>,
        kind: EventKind,
        comment: &'a str,
        client: Option<IpAddr>,
    ) -> Self {
        Self {
            session,
            actor,
            kind,
            from: None,
            to: None,
            comment,
            client,
        }
    }
}

/// Appends an event.
pub async fn record(db: &mut PgConnection, e: &NewEvent<'_>) -> Result<(), sqlx::Error> {
    let (actor_id, actor_name) = match e.actor {
        Actor::User { id, name } => (Some(id), name),
        Actor::System => (None, "Portcullis"),
    };
    // The address goes as text, cast by PostgreSQL (no inet type on the Rust side).
    sqlx::query!(
        "INSERT INTO session_events (session_id, actor_id, actor_name, kind, from_status, to_status, comment, client_addr)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8::text::inet)",
        e.session,
        actor_id,
        actor_name,
        e.kind as EventKind,
        e.from as Option<SessionStatus>,
        e.to as Option<SessionStatus>,
        e.comment,
        e.client.map(|a| a.to_string())
    )
    .execute(db)
    .await
    .map(|_| ())
}

/// What [`transition`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Moved {
    /// The session moved, and its event is written.
    Done {
        from: SessionStatus,
        to: SessionStatus,
    },
    /// Not from the status it is in now (it may have just moved: the caller lost a race).
    NotAllowed(NotAllowed),
    /// No such session.
    Gone,
}

impl Moved {
    pub fn done(&self) -> bool {
        matches!(self, Self::Done { .. })
    }
}

/// The one way a session's status changes: under the row's lock, the domain's
/// [`Transition::apply`] names the target from the status it is in now, one conditional
/// UPDATE makes the move and `event` (its statuses filled in here) is written, all in the
/// caller's transaction. Lock remembers where it was and its message (the event's comment);
/// final statuses record the end and wipe any generated password.
pub async fn transition(
    tx: &mut PgConnection,
    transition: Transition,
    event: NewEvent<'_>,
) -> Result<Moved, sqlx::Error> {
    // NO KEY: rows that reference the session (events, steps) stay insertable meanwhile, as
    // the provisioner's grant needs (it records its step from a second connection).
    let row = sqlx::query!(
        r#"SELECT status AS "status: SessionStatus", locked_from AS "locked_from: SessionStatus"
           FROM activity_sessions WHERE id = $1 FOR NO KEY UPDATE"#,
        event.session
    )
    .fetch_optional(&mut *tx)
    .await?;
    let Some((from, locked_from)) = row.map(|r| (r.status, r.locked_from)) else {
        return Ok(Moved::Gone);
    };
    let to = match transition.apply(from, locked_from) {
        Ok(to) => to,
        Err(refused) => return Ok(Moved::NotAllowed(refused)),
    };
    let locking = to == SessionStatus::Locked;
    let done = sqlx::query!(
        "UPDATE activity_sessions
         SET status = $3,
             current_tier = NULL,
             locked_from = CASE WHEN $5 THEN $2 END,
             lock_message = CASE WHEN $5 THEN $6 END,
             password_ciphertext = CASE WHEN $4 THEN NULL ELSE password_ciphertext END,
             ended_at = CASE WHEN $4 THEN now() ELSE ended_at END,
             updated_at = now()
         WHERE id = $1 AND status = $2",
        event.session,
        from as SessionStatus,
        to as SessionStatus,
        to.is_final(),
        locking,
        event.comment
    )
    .execute(&mut *tx)
    .await?;
    if done.rows_affected() == 0 {
        // Unreachable under the row lock; kept as the statement's own guard.
        return Ok(Moved::NotAllowed(NotAllowed {
            from,
            verb: "moved",
        }));
    }
    record(
        tx,
        &NewEvent {
            from: Some(from),
            to: Some(to),
            ..event
        },
    )
    .await?;
    Ok(Moved::Done { from, to })
}

/// The status and owner of a session, locked for update.
pub async fn lock_row(
    tx: &mut PgConnection,
    session: Uuid,
) -> Result<Option<(SessionStatus, Uuid)>, sqlx::Error> {
    // NO KEY: rows that reference the session (events, steps) stay insertable meanwhile, as
    // the provisioner's grant needs (it records its step from a second connection).
    let row = sqlx::query!(
        r#"SELECT status AS "status: SessionStatus", requester_id
           FROM activity_sessions WHERE id = $1 FOR NO KEY UPDATE"#,
        session
    )
    .fetch_optional(&mut *tx)
    .await?;
    Ok(row.map(|r| (r.status, r.requester_id)))
}

/// A session on a simulated target to prepare (real provisioners: `db::provisioning`).
#[derive(Debug)]
pub struct ToProvision {
    pub id: Uuid,
    pub requester_username: String,
    pub resource_name: String,
    pub login_mode: crate::domain::catalog::LoginMode,
    pub login_template: Option<String>,
}

/// Sessions in Provisioning to prepare. The worker (`only` = None) skips rows another
/// transaction holds (`SKIP LOCKED`); the request that just created or approved sessions
/// (`only` = their ids) waits for such locks instead, because a racing approver that is about
/// to be refused may hold one for a moment.
pub async fn claim_provisioning(
    tx: &mut PgConnection,
    only: Option<&[Uuid]>,
    limit: i64,
) -> Result<Vec<ToProvision>, sqlx::Error> {
    // One statement per lock clause: the same query, waiting or skipping.
    if only.is_some() {
        sqlx::query_as!(
            ToProvision,
            r#"SELECT s.id, u.username AS requester_username, s.resource_name,
                      r.login_mode AS "login_mode: crate::domain::catalog::LoginMode",
                      r.login_template
               FROM activity_sessions s
               JOIN requests r ON r.id = s.request_id
               JOIN users u ON u.id = s.requester_id
               LEFT JOIN resources res ON res.id = s.resource_id
               WHERE s.status = 'provisioning' AND ($1::uuid[] IS NULL OR s.id = ANY($1))
                 AND coalesce(res.provisioner, 'simulated') = 'simulated'
               ORDER BY s.requested_start
               LIMIT $2
               FOR UPDATE OF s"#,
            only,
            limit
        )
        .fetch_all(&mut *tx)
        .await
    } else {
        sqlx::query_as!(
            ToProvision,
            r#"SELECT s.id, u.username AS requester_username, s.resource_name,
                      r.login_mode AS "login_mode: crate::domain::catalog::LoginMode",
                      r.login_template
               FROM activity_sessions s
               JOIN requests r ON r.id = s.request_id
               JOIN users u ON u.id = s.requester_id
               LEFT JOIN resources res ON res.id = s.resource_id
               WHERE s.status = 'provisioning' AND ($1::uuid[] IS NULL OR s.id = ANY($1))
                 AND coalesce(res.provisioner, 'simulated') = 'simulated'
               ORDER BY s.requested_start
               LIMIT $2
               FOR UPDATE OF s SKIP LOCKED"#,
            only,
            limit
        )
        .fetch_all(&mut *tx)
        .await
    }
}

/// Stores the sealed private half of the session's own SSH key (None: the session has none,
/// and the gateway logs in with the password).
pub async fn set_session_key(
    tx: &mut PgConnection,
    session: Uuid,
    sealed_key: Option<&[u8]>,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "UPDATE activity_sessions SET ssh_key_ciphertext = $2 WHERE id = $1",
        session,
        sealed_key
    )
    .execute(&mut *tx)
    .await
    .map(|_| ())
}

/// Provisioning → Available: stores the account and the sealed password and starts the
/// clock: end = max(requested start, now) + the request's duration.
pub async fn make_available(
    tx: &mut PgConnection,
    session: Uuid,
    account: &str,
    sealed_password: Option<&[u8]>,
) -> Result<bool, sqlx::Error> {
    let comment = format!("Login account {account} is ready.");
    let event = NewEvent::new(
        session,
        Actor::System,
        EventKind::Provisioned,
        &comment,
        None,
    );
    if !transition(tx, Transition::Provisioned, event).await?.done() {
        return Ok(false);
    }
    sqlx::query!(
        "UPDATE activity_sessions s
         SET login_account = $2, password_ciphertext = $3, available_at = now(),
             ends_at = greatest(s.requested_start, now()) + make_interval(mins => r.duration_minutes)
         FROM requests r
         WHERE s.id = $1 AND r.id = s.request_id",
        session,
        account,
        sealed_password
    )
    .execute(&mut *tx)
    .await?;
    Ok(true)
}

/// Sessions due for a timed transition, claimed with `FOR UPDATE SKIP LOCKED` so that
/// several workers never take the same one.
pub async fn claim_due(
    tx: &mut PgConnection,
    condition: &str,
    limit: i64,
) -> Result<Vec<(Uuid, SessionStatus)>, sqlx::Error> {
    // Runtime SQL: the condition is the caller's, rendered from the domain (status_sql).
    sqlx::query_as(&format!(
        "SELECT s.id, s.status FROM activity_sessions s JOIN requests r ON r.id = s.request_id
         WHERE {condition}
         ORDER BY s.requested_start
         LIMIT $1
         FOR UPDATE OF s SKIP LOCKED"
    ))
    .bind(limit)
    .fetch_all(&mut *tx)
    .await
}

/// Why an extension was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExtendRefused {
    #[error("Only Available or Logged In sessions can be extended; this one is {0}.")]
    Status(&'static str),
    #[error("The connection profile does not allow extending this session.")]
    NotAllowed,
    #[error("This session has already been extended the most times its profile allows ({0}).")]
    Limit(i32),
}

/// Moves the end of an Available or Logged In session by the profile's extension minutes,
/// within its limit; administrators may always extend (by the profile's minutes, or 30).
pub async fn extend(
    tx: &mut PgConnection,
    event: NewEvent<'_>,
    by_admin: bool,
) -> Result<Result<OffsetDateTime, ExtendRefused>, sqlx::Error> {
    let row = sqlx::query!(
        r#"SELECT s.status AS "status: SessionStatus", s.extensions_used, r.extension_minutes,
                  r.max_extensions
           FROM activity_sessions s JOIN requests r ON r.id = s.request_id
           WHERE s.id = $1 FOR UPDATE OF s"#,
        event.session
    )
    .fetch_optional(&mut *tx)
    .await?;
    let Some((status, used, minutes, max)) = row.map(|r| {
        (
            r.status,
            r.extensions_used,
            r.extension_minutes,
            r.max_extensions,
        )
    }) else {
        return Ok(Err(ExtendRefused::Status("gone")));
    };
    if !status.is_connectable() {
        return Ok(Err(ExtendRefused::Status(status.label())));
    }
    if !by_admin && minutes == 0 {
        return Ok(Err(ExtendRefused::NotAllowed));
    }
    if !by_admin && used >= max {
        return Ok(Err(ExtendRefused::Limit(max)));
    }
    let minutes = if minutes > 0 { minutes } else { 30 };
    let ends: OffsetDateTime = sqlx::query_scalar!(
        "UPDATE activity_sessions SET ends_at = ends_at + make_interval(mins => $2),
                extensions_used = extensions_used + 1, updated_at = now()
         WHERE id = $1 RETURNING ends_at",
        event.session,
        minutes
    )
    .fetch_one(&mut *tx)
    .await?;
    let comment = format!("Extended by {minutes} minutes.");
    record(
        tx,
        &NewEvent {
            from: Some(status),
            to: Some(status),
            comment: &comment,
            ..event
        },
    )
    .await?;
    Ok(Ok(ends))
}

/// What the Connect page needs.
#[derive(Debug, Clone)]
pub struct ConnectInfo {
    pub id: Uuid,
    pub status: SessionStatus,
    pub requester_id: Uuid,
    pub resource_name: String,
    pub resource_address: String,
    pub resource_port: Option<i32>,
    pub activity_name: String,
    pub protocol: Protocol,
    pub login_mode: crate::domain::catalog::LoginMode,
    pub login_account: Option<String>,
    pub password_ciphertext: Option<Vec<u8>>,
    pub ends_at: OffsetDateTime,
    pub lock_message: Option<String>,
    pub extension_minutes: i32,
    pub max_extensions: i32,
    pub extensions_used: i32,
    /// Moves on Lock, Unlock and every end (migration 20261130000001): part of the
    /// connection string.
    pub access_epoch: i32,
    /// As the grant was made on the target, else as the resource says now.
    pub provisioner: crate::domain::provisioner::ProvisionerKind,
    /// The resource's kind (`database`, ...) and platform as the catalogue says now, if it
    /// is still there: a database is not reached with `ssh`.
    pub resource_kind: Option<String>,
    pub resource_platform: Option<String>,
}

/// The session as the Connect page shows it.
pub async fn connect_info(
    db: impl PgExecutor<'_>,
    id: Uuid,
) -> Result<Option<ConnectInfo>, sqlx::Error> {
    sqlx::query_as!(
        ConnectInfo,
        r#"SELECT s.id, s.status AS "status: SessionStatus", s.requester_id, s.resource_name,
                s.resource_address, s.resource_port, s.activity_name,
                r.protocol AS "protocol: Protocol",
                r.login_mode AS "login_mode: crate::domain::catalog::LoginMode",
                s.login_account, s.password_ciphertext,
                s.ends_at, s.lock_message, r.extension_minutes, r.max_extensions, s.extensions_used,
                s.access_epoch,
                coalesce((SELECT p.provisioner FROM provision_steps p
                          WHERE p.session_id = s.id AND p.action = 'grant'
                          ORDER BY p.round LIMIT 1),
                         (SELECT res.provisioner FROM resources res WHERE res.id = s.resource_id),
                         'simulated')
                    AS "provisioner!: crate::domain::provisioner::ProvisionerKind",
                res.kind::text AS "resource_kind?", res.platform AS "resource_platform?"
         FROM activity_sessions s JOIN requests r ON r.id = s.request_id
              LEFT JOIN resources res ON res.id = s.resource_id
         WHERE s.id = $1"#,
        id
    )
    .fetch_optional(db)
    .await
}

/// The session a connection string names, if the string is genuine for the session's access
/// as it is now (its epoch: see [`ConnectInfo::access_epoch`]). A string shown before a Lock,
/// an Unlock or an end no longer verifies. Whether the session may be used now (status,
/// window, owner) is for the caller, the gateway, to check as well.
pub async fn verify_connection_string(
    db: impl PgExecutor<'_>,
    secrets: &crate::crypto::SecretBox,
    text: &str,
) -> Result<Option<Uuid>, sqlx::Error> {
    let Some(id) = crate::crypto::SecretBox::connection_string_session(text) else {
        return Ok(None);
    };
    let epoch: Option<i32> = sqlx::query_scalar!(
        "SELECT access_epoch FROM activity_sessions WHERE id = $1",
        id
    )
    .fetch_optional(db)
    .await?;
    Ok(epoch.and_then(|epoch| secrets.verify_connection_string(text, epoch)))
}
