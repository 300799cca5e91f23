//! All SQL, one module per aggregate. Functions take a pool, connection or transaction, so a
//! handler that changes several things commits once.

pub mod activities;
pub mod api_tokens;
pub mod approvals;
pub mod audit;
pub mod catalog;
pub mod credentials;
pub mod gateway;
pub mod grants;
pub mod groups;
pub mod identities;
pub mod installation;
pub mod look_alike;
pub mod notifications;
pub mod policies;
pub mod profiles;
pub mod provisioning;
pub mod provisioning_rounds;
pub mod recordings;
pub mod request_page;
pub mod requests;
pub mod resources;
pub mod second_factor;
pub mod seed;
pub mod sessions;
pub mod sign_in_limit;
pub mod ssh_keys;
pub mod stats;
pub mod status_sql;
pub mod users;
pub mod web_sessions;
pub mod webhooks;

use std::time::Duration;

use sqlx::postgres::PgPoolOptions;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

/// The migrations, embedded in the binary.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Pool settings: fail fast (3 s unless the caller sets its own acquire timeout) when
/// PostgreSQL is away, so pages answer 503 quickly and recover by themselves when it returns.
/// No ping before each checkout: it doubled the round trips of a page (the benchmark measured
/// it at 12% of the server's CPU); a connection that broke is found out by its next query,
/// which fails that one request with 503 and is dropped from the pool.
pub fn pool_options(max_connections: u32) -> PgPoolOptions {
    PgPoolOptions::new()
        .max_connections(max_connections)
        .test_before_acquire(false)
        .min_connections(0)
        .acquire_timeout(Duration::from_secs(3))
        .idle_timeout(Duration::from_secs(600))
}

/// Makes PostgreSQL cancel any statement of the pool's connections that runs longer than
/// `limit`: a runaway query then fails its own request instead of holding a connection that
/// every other request needs. Set once per new connection (one round trip); a startup
/// parameter would save it, but some connection poolers refuse those.
pub fn with_statement_timeout(pool: PgPoolOptions, limit: Duration) -> PgPoolOptions {
    let millis = limit.as_millis();
    pool.after_connect(move |conn, _| {
        Box::pin(async move {
            // Runtime SQL: SET takes no parameters; a number we formatted, not input.
            sqlx::query(&format!("SET statement_timeout = {millis}"))
                .execute(conn)
                .await
                .map(|_| ())
        })
    })
}

/// Creates the database `name` on the server `conn` is connected to, unless it exists.
pub async fn create_database_if_missing(
    conn: &mut PgConnection,
    name: &str,
) -> Result<(), sqlx::Error> {
    let exists = sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1) AS "exists!""#,
        name
    )
    .fetch_one(&mut *conn)
    .await?;
    if !exists {
        // Runtime SQL: identifiers cannot be bound as parameters; a name we control, not user
        // input.
        sqlx::query(&format!("CREATE DATABASE \"{}\"", name.replace('"', "")))
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// Whether the database answers (for `/readyz`).
pub async fn ping(pool: &PgPool) -> Result<(), sqlx::Error> {
    sqlx::query!("SELECT 1 AS one")
        .fetch_one(pool)
        .await
        .map(|_| ())
}

/// Makes the link table hold exactly `ids` for `owner`, touching only what differs. Table and
/// column names are constants of the callers, never input.
pub(crate) async fn replace_links(
    tx: &mut PgConnection,
    table: &'static str,
    owner_column: &'static str,
    item_column: &'static str,
    owner: Uuid,
    ids: &[Uuid],
) -> Result<(), sqlx::Error> {
    // Runtime SQL: one helper for every link table, the names given by the callers.
    sqlx::query(&format!(
        "DELETE FROM {table} WHERE {owner_column} = $1 AND NOT ({item_column} = ANY($2))"
    ))
    .bind(owner)
    .bind(ids)
    .execute(&mut *tx)
    .await?;
    // Runtime SQL: as above.
    sqlx::query(&format!(
        "INSERT INTO {table} ({owner_column}, {item_column})
         SELECT $1, unnest($2::uuid[]) ON CONFLICT DO NOTHING"
    ))
    .bind(owner)
    .bind(ids)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Whether a database error means "cannot reach PostgreSQL" rather than "the query failed".
pub fn is_unavailable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => {
            // admin_shutdown, crash_shutdown, cannot_connect_now, too_many_connections, and
            // query_canceled: the statement timeout ran out (a lock held too long, a server
            // too busy), which a retry a moment later may not meet.
            matches!(
                db.code().as_deref(),
                Some("57P01" | "57P02" | "57P03" | "53300" | "57014")
            )
        }
        _ => false,
    }
}
