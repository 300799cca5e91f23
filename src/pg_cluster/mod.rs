//! The built-in PostgreSQL: a cluster of our own, started from the server binaries on the
//! machine when no `DATABASE_URL` is given (`cluster`), restarted when it dies while serving
//! (`supervisor`), and [`Database`], which opens either that or the configured database.
//! Above `db` (which only speaks SQL to whichever database it is handed).

pub mod cluster;
pub mod supervisor;

use sqlx::postgres::PgConnectOptions;
use sqlx::{PgConnection, PgPool};

use crate::config::Config;
use crate::db::{MIGRATOR, pool_options, with_statement_timeout};
use cluster::{Cluster, ClusterError, ClusterOptions};
use supervisor::BuiltIn;

/// The database name used inside the built-in cluster.
pub const BUILTIN_DATABASE: &str = "portcullis";

/// Where the application's data lives: a pool, and the built-in cluster when we run one.
pub struct Database {
    pub pool: PgPool,
    /// Present when Portcullis runs its own PostgreSQL; stopped by [`Database::close`].
    pub cluster: Option<BuiltIn>,
}

/// Why the database could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    #[error("invalid DATABASE_URL: {0}")]
    Url(sqlx::Error),
    #[error("cannot connect to the database: {0}")]
    Connect(sqlx::Error),
    #[error("cannot apply migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("the built-in PostgreSQL thread failed: {0}")]
    Join(#[from] tokio::task::JoinError),
}

impl Database {
    /// For the command-line tools: connects to `DATABASE_URL`, or starts (or adopts) the
    /// built-in cluster, then applies the migrations. No statement timeout (an import may
    /// take its time), and the built-in cluster is not watched (the command is brief).
    pub async fn open(config: &Config) -> Result<Self, OpenError> {
        Self::open_with(config, false).await
    }

    /// For the web server: as [`Database::open`], but each statement may run only as long as
    /// `PORTCULLIS_DB_STATEMENT_TIMEOUT_SECONDS`, and a built-in cluster whose server dies is
    /// restarted (see [`supervisor`]).
    pub async fn open_for_server(config: &Config) -> Result<Self, OpenError> {
        Self::open_with(config, true).await
    }

    async fn open_with(config: &Config, serving: bool) -> Result<Self, OpenError> {
        let (options, cluster) = match &config.database_url {
            Some(url) => (
                url.parse::<PgConnectOptions>().map_err(OpenError::Url)?,
                None,
            ),
            None => {
                let cluster_options = ClusterOptions::new(&config.data_dir);
                let o = cluster_options.clone();
                let cluster = tokio::task::spawn_blocking(move || Cluster::start(&o)).await??;
                ensure_database(&cluster, BUILTIN_DATABASE).await?;
                (
                    cluster.connect_options(BUILTIN_DATABASE),
                    Some((cluster, cluster_options)),
                )
            }
        };
        // On a connection of their own, without the pool's statement timeout: a migration
        // may rewrite a large table.
        {
            use sqlx::Connection;
            let mut conn = PgConnection::connect_with(&options)
                .await
                .map_err(OpenError::Connect)?;
            MIGRATOR.run(&mut conn).await?;
            let _ = conn.close().await;
        }
        let mut pool =
            pool_options(config.db_max_connections).acquire_timeout(config.db_acquire_timeout());
        if serving {
            pool = with_statement_timeout(pool, config.db_statement_timeout());
        }
        let pool = pool
            .connect_with(options)
            .await
            .map_err(OpenError::Connect)?;
        let cluster = cluster.map(|(cluster, options)| {
            if serving {
                BuiltIn::watch(cluster, options)
            } else {
                BuiltIn::Unwatched(cluster)
            }
        });
        Ok(Self { pool, cluster })
    }

    /// Closes the pool, then stops the built-in cluster if we started it.
    pub async fn close(self) {
        self.pool.close().await;
        if let Some(cluster) = self.cluster {
            cluster.stop().await;
        }
    }
}

/// Creates `name` in the built-in cluster when it does not exist yet.
pub async fn ensure_database(cluster: &Cluster, name: &str) -> Result<(), OpenError> {
    use sqlx::Connection;
    let mut conn = PgConnection::connect_with(&cluster.connect_options("postgres"))
        .await
        .map_err(OpenError::Connect)?;
    crate::db::create_database_if_missing(&mut conn, name)
        .await
        .map_err(OpenError::Connect)?;
    conn.close().await.map_err(OpenError::Connect)?;
    Ok(())
}
