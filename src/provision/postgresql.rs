//! The `postgresql` provisioner: logs in to a PostgreSQL server with the resource's service
//! credential (a role with CREATEROLE; the credential's secret is its password) and makes a
//! login role for the session, valid until the session's end, member of the activity's roles
//! (`target_groups`). At the end the role's sessions are ended and it is dropped, with what it
//! owns in the resource's database reassigned to the service role or dropped.
//!
//! Statements are built by the target server itself with `format('%I', ...)` and
//! `format('%L', ...)`, so identifiers and literals are quoted by the same rules that read
//! them; names are also checked against the Linux name pattern first. Every step is
//! idempotent: creating a role that exists is a repair, dropping one that is gone is done.

use std::time::Duration;

use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection};
use time::OffsetDateTime;

use super::{StepError, valid_name};

/// How long connecting to the target may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the statements of one step may take.
const STEP_TIMEOUT: Duration = Duration::from_secs(20);

/// A PostgreSQL server and how to log in to it.
#[derive(Clone)]
pub struct Server {
    pub host: String,
    pub port: u16,
    /// The database to connect to (the role's owned objects are handled there).
    pub database: String,
    pub service_user: String,
    pub password: String,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("database", &self.database)
            .field("service_user", &self.service_user)
            .finish_non_exhaustive()
    }
}

impl Server {
    fn place(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

pub use crate::domain::provisioner::OwnedObjects;

/// Checks the role and the roles it joins before anything is sent.
pub fn check(role: &str, roles: &[String]) -> Result<(), StepError> {
    if !valid_name(role) {
        return Err(StepError::BadRole(role.to_owned()));
    }
    if let Some(bad) = roles.iter().find(|r| !valid_name(r)) {
        return Err(StepError::BadRole(bad.clone()));
    }
    Ok(())
}

async fn connect(server: &Server) -> Result<PgConnection, StepError> {
    let options = PgConnectOptions::new()
        .host(&server.host)
        .port(server.port)
        .username(&server.service_user)
        .password(&server.password)
        .database(&server.database)
        .application_name("portcullis-provisioner");
    match tokio::time::timeout(CONNECT_TIMEOUT, PgConnection::connect_with(&options)).await {
        Err(_) => Err(StepError::Timeout(
            server.place(),
            CONNECT_TIMEOUT.as_secs(),
        )),
        Ok(Ok(conn)) => Ok(conn),
        Ok(Err(sqlx::Error::Database(e))) if e.code().as_deref() == Some("28P01") => {
            Err(StepError::Denied(server.place()))
        }
        Ok(Err(e)) => Err(StepError::Unreachable(server.place(), brief(&e))),
    }
}

/// An error's text without anything the server might echo beyond its message.
fn brief(e: &sqlx::Error) -> String {
    let text = match e {
        sqlx::Error::Database(d) => d.message().to_owned(),
        other => other.to_string(),
    };
    text.chars().take(300).collect()
}

fn on_target(server: &Server, e: &sqlx::Error) -> StepError {
    StepError::Target(server.place(), brief(e))
}

/// Builds a statement on the server: `template` is a `format()` string, `args` its values.
async fn build(
    conn: &mut PgConnection,
    template: &str,
    args: &[&str],
) -> Result<String, sqlx::Error> {
    let placeholders: Vec<String> = (2..args.len() + 2).map(|i| format!("${i}")).collect();
    let sql = format!("SELECT format($1, {})", placeholders.join(", "));
    let mut query = sqlx::query_scalar(&sql).bind(template);
    for a in args {
        query = query.bind(*a);
    }
    query.fetch_one(&mut *conn).await
}

/// The outcome of a step's statements, run within the step's time.
fn finished<T>(
    server: &Server,
    outcome: Result<Result<T, sqlx::Error>, tokio::time::error::Elapsed>,
) -> Result<T, StepError> {
    match outcome {
        Err(_) => Err(StepError::Timeout(server.place(), STEP_TIMEOUT.as_secs())),
        Ok(result) => result.map_err(|e| on_target(server, &e)),
    }
}

async fn role_exists(conn: &mut PgConnection, role: &str) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)")
        .bind(role)
        .fetch_one(&mut *conn)
        .await
}

/// Builds a statement with `build` and runs it.
async fn run(conn: &mut PgConnection, template: &str, args: &[&str]) -> Result<(), sqlx::Error> {
    let statement = build(conn, template, args).await?;
    // Not kept as a prepared statement: it may hold a password.
    sqlx::query(&statement)
        .persistent(false)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// Makes the session's role, or repairs it: LOGIN with `password`, valid until `until`,
/// member of `roles`. The service role is made a member of it too, so that it may later end
/// its sessions and drop what it owns (PostgreSQL asks for the privileges of the role).
pub async fn grant(
    server: &Server,
    role: &str,
    password: &str,
    until: OffsetDateTime,
    roles: &[String],
) -> Result<String, StepError> {
    check(role, roles)?;
    let until = rfc3339(until);
    let mut conn = connect(server).await?;
    let outcome = tokio::time::timeout(
        STEP_TIMEOUT,
        grant_on(&mut conn, role, password, &until, roles),
    )
    .await;
    let _ = conn.close().await;
    finished(server, outcome)
}

async fn grant_on(
    conn: &mut PgConnection,
    role: &str,
    password: &str,
    until: &str,
    roles: &[String],
) -> Result<String, sqlx::Error> {
    let mut tx = conn.begin().await?;
    let exists = role_exists(&mut tx, role).await?;
    let template = if exists {
        "ALTER ROLE %I LOGIN PASSWORD %L VALID UNTIL %L"
    } else {
        "CREATE ROLE %I LOGIN PASSWORD %L VALID UNTIL %L"
    };
    // The statement holds the password: it is never logged here.
    run(&mut tx, template, &[role, password, until]).await?;
    let mine: bool = sqlx::query_scalar("SELECT pg_has_role(current_user, $1, 'USAGE')")
        .bind(role)
        .fetch_one(&mut *tx)
        .await?;
    if !mine {
        run(&mut tx, "GRANT %I TO CURRENT_USER", &[role]).await?;
    }
    for r in roles {
        run(&mut tx, "GRANT %I TO %I", &[r.as_str(), role]).await?;
    }
    tx.commit().await?;
    Ok(if exists {
        format!("repaired role {role}")
    } else {
        format!("created role {role}")
    })
}

/// Moves the role's end to `until` (an extension of the session).
pub async fn extend(server: &Server, role: &str, until: OffsetDateTime) -> Result<(), StepError> {
    check(role, &[])?;
    let until = rfc3339(until);
    let mut conn = connect(server).await?;
    let outcome = tokio::time::timeout(STEP_TIMEOUT, extend_on(&mut conn, role, &until)).await;
    let _ = conn.close().await;
    finished(server, outcome)
}

async fn extend_on(conn: &mut PgConnection, role: &str, until: &str) -> Result<(), sqlx::Error> {
    if role_exists(conn, role).await? {
        run(conn, "ALTER ROLE %I VALID UNTIL %L", &[role, until]).await?;
    }
    Ok(())
}

/// Takes the role away: no more logins, its sessions ended, what it owns reassigned to the
/// service role or dropped, and the role dropped. A role already gone is done.
pub async fn revoke(server: &Server, role: &str, owned: OwnedObjects) -> Result<String, StepError> {
    check(role, &[])?;
    let mut conn = connect(server).await?;
    let outcome = tokio::time::timeout(STEP_TIMEOUT, revoke_on(&mut conn, role, owned)).await;
    let _ = conn.close().await;
    finished(server, outcome)
}

async fn revoke_on(
    conn: &mut PgConnection,
    role: &str,
    owned: OwnedObjects,
) -> Result<String, sqlx::Error> {
    if !role_exists(conn, role).await? {
        return Ok(format!("role {role} was already gone"));
    }
    // First no new logins, then end the ones open, so none slips in between.
    run(conn, "ALTER ROLE %I NOLOGIN", &[role]).await?;
    sqlx::query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
         WHERE usename = $1 AND pid <> pg_backend_pid()",
    )
    .bind(role)
    .execute(&mut *conn)
    .await?;
    let mut tx = conn.begin().await?;
    if owned == OwnedObjects::Reassign {
        run(&mut tx, "REASSIGN OWNED BY %I TO CURRENT_USER", &[role]).await?;
    }
    // Also takes away the privileges granted to it, which DROP ROLE would refuse over.
    run(&mut tx, "DROP OWNED BY %I", &[role]).await?;
    run(&mut tx, "DROP ROLE IF EXISTS %I", &[role]).await?;
    tx.commit().await?;
    Ok(format!("dropped role {role}"))
}
