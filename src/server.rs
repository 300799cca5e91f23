//! `portcullis serve`: open the database, load the demo data on a new built-in database,
//! serve until SIGTERM or SIGINT, then drain requests and stop the database.

pub mod connections;

use std::sync::Arc;

use tokio::net::TcpListener;

use crate::config::Config;
use crate::db;
use crate::pg_cluster::Database;
use crate::state::{AppState, Settings, session_store};

/// The demo seed, loaded on the first start of the built-in database only.
pub const DEMO_SEED: &str = include_str!("../seed/demo.toml");
const DEMO_MARKER: &str = "demo_seed_loaded_at";

/// Runs the web server until a shutdown signal.
pub async fn serve(config: &Config) -> anyhow::Result<()> {
    // Read first: a mistake in it stops the start before anything else happens.
    let provisioners = Arc::new(match &config.provisioners_file {
        Some(path) => crate::provision::command::Provisioners::load(path)?,
        None => crate::provision::command::Provisioners::default(),
    });
    let sso = match config.sso.load()? {
        Some(sso) => Some(Arc::new(crate::auth::sso::flow::Provider::new(sso)?)),
        None => None,
    };
    let database = Database::open_for_server(config).await?;
    if let Some(sso) = &sso {
        db::identities::check_mapped_groups(&database.pool, &sso.sso.mapping).await?;
    }
    if database.cluster.is_some() {
        load_demo_once(&database.pool).await?;
    }
    crate::auth::password::warm_up();
    let secrets = crate::crypto::SecretBox::load_or_create(&config.key_file())?;
    let state = AppState {
        db: database.pool.clone(),
        settings: Arc::new(Settings {
            sso,
            ..Settings::from_config(config)
        }),
        secrets: secrets.clone(),
        live: crate::live::Hub::with_limit(config.max_event_streams as usize)
            .with_terminal_limit(config.max_browser_terminals as usize),
        sessions: crate::auth::cache::SessionCache::new(std::time::Duration::from_secs(u64::from(
            config.session_cache_seconds,
        ))),
    };
    let store = session_store(&state);
    let cleanup = tokio::spawn(
        store
            .clone()
            .delete_expired_every(std::time::Duration::from_secs(300)),
    );
    // Bind before starting anything, so a taken port stops the start cleanly.
    let listener = TcpListener::bind(config.bind).await?;
    let metrics_listener = match config.metrics_bind {
        Some(bind) => Some(TcpListener::bind(bind).await?),
        None => None,
    };
    let gateway = match config.ssh_gateway_bind() {
        Some(bind) => Some(start_gateway(config, bind, state.clone()).await?),
        None => None,
    };
    let listener_task = tokio::spawn(
        state
            .live
            .clone()
            .listen(database.pool.clone(), state.sessions.clone()),
    );
    let live = state.live.clone();
    let (stop_worker, stopped) = tokio::sync::watch::channel(false);
    let notifier = tokio::spawn(crate::notify::run(
        database.pool.clone(),
        config.smtp.clone(),
        stopped.clone(),
    ));
    let limits = connections::Limits::from_config(config);
    let metrics = crate::metrics::Metrics::new(&state.sessions);
    let metrics_server = metrics_listener.map(|l| {
        let access = crate::metrics::Access::token(config.metrics_token.as_deref());
        let app = crate::metrics::router(metrics.clone(), access, database.pool.clone());
        tokio::spawn(serve_metrics(l, app, limits, stopped.clone()))
    });
    let retention = tokio::spawn(crate::worker::recordings::run(
        database.pool.clone(),
        config.recording_retention_days,
        stopped.clone(),
    ));
    let webhooks = tokio::spawn(crate::webhooks::run(
        database.pool.clone(),
        secrets.clone(),
        config.webhooks.clone(),
        stopped.clone(),
    ));
    let worker = tokio::spawn(crate::worker::run(
        database.pool.clone(),
        secrets,
        provisioners,
        stopped,
    ));
    let app = crate::web::router_with_metrics(state, store, metrics);
    let address = listener.local_addr()?;
    tracing::info!("Portcullis is listening on http://{address}");
    connections::serve(listener, app, limits, async move {
        shutdown_signal().await;
        // Open event streams would keep their connections, and the drain, going forever.
        live.stop();
    })
    .await;
    tracing::info!("requests drained; shutting down");
    let _ = stop_worker.send(true);
    let _ = worker.await;
    let _ = retention.await;
    let _ = listener_task.await;
    let _ = notifier.await;
    let _ = webhooks.await;
    if let Some(task) = metrics_server {
        let _ = task.await;
    }
    cleanup.abort();
    if let Some(gateway) = gateway {
        gateway.abort();
    }
    database.close().await;
    Ok(())
}

/// Binds the SSH gateway and starts it, with its host key next to the key file.
async fn start_gateway(
    config: &Config,
    bind: std::net::SocketAddr,
    state: crate::state::AppState,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let path = crate::gateway::host_key_path(&config.key_file());
    let key = crate::gateway::load_or_create_host_key(&path)?;
    let listener = TcpListener::bind(bind).await.map_err(|e| {
        anyhow::anyhow!(
            "cannot listen for the SSH gateway on {bind}: {e} (set PORTCULLIS_SSH_GATEWAY_BIND to another address, or to off)"
        )
    })?;
    tracing::info!(
        "the SSH gateway is listening on {bind}; its host key is {}",
        crate::gateway::fingerprint(&key)
    );
    Ok(crate::gateway::spawn(state, listener, key))
}

/// Serves `/metrics` alone on its own address until `stop` changes.
async fn serve_metrics(
    listener: TcpListener,
    app: axum::Router,
    limits: connections::Limits,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    if let Ok(address) = listener.local_addr() {
        tracing::info!("metrics are served on http://{address}/metrics");
    }
    let stopped = async move {
        let _ = stop.changed().await;
    };
    connections::serve(listener, app, limits, stopped).await;
}

/// Applies the demo seed unless this database already had it.
pub async fn load_demo_once(pool: &sqlx::PgPool) -> anyhow::Result<()> {
    if db::installation::get(pool, DEMO_MARKER).await?.is_some() {
        return Ok(());
    }
    let seed = crate::domain::seed::parse(DEMO_SEED).map_err(|errors| {
        let lines: Vec<String> = errors.iter().map(|e| e.display("seed/demo.toml")).collect();
        anyhow::anyhow!("the built-in demo seed is invalid:\n{}", lines.join("\n"))
    })?;
    crate::seeding::apply(pool, &seed).await?;
    db::installation::mark_now(pool, DEMO_MARKER).await?;
    tracing::info!("loaded the demo data (users alice, bob, carol, dave, erin)");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutdown signal received");
}
