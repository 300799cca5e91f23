//! The benchmark's reference server: what this machine does for the simplest useful page.
//!
//! One axum route, `GET /`, runs one query returning 20 rows of `resources` and renders them
//! as an HTML table with an askama template. No session, no cookies, no middleware: the
//! ceiling that Portcullis' signed-in pages are compared against (see bench/README.md).
//!
//! ```sh
//! DATABASE_URL=postgres://... BENCH_REF_BIND=127.0.0.1:8081 \
//!     cargo run --release --example bench_reference
//! ```
//!
//! `BENCH_REF_POOL` sets the pool size (default 10, the same as Portcullis'
//! `PORTCULLIS_DB_MAX_CONNECTIONS` default, so the two are compared on equal terms);
//! `BENCH_REF_PING=0` stops sqlx from pinging each connection it takes from the pool (on by
//! default, as in Portcullis).

use std::net::SocketAddr;

use askama::Template;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use uuid::Uuid;

#[derive(sqlx::FromRow)]
struct Row {
    id: Uuid,
    name: String,
    kind: String,
    platform: String,
    address: String,
    port: Option<i32>,
}

#[derive(Template)]
#[template(
    ext = "html",
    source = r#"<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Resources</title></head>
<body>
<h1>Resources</h1>
<table>
  <thead><tr><th>Name</th><th>Kind</th><th>Platform</th><th>Address</th><th>Id</th></tr></thead>
  <tbody>
  {% for r in rows %}
    <tr><td>{{ r.name }}</td><td>{{ r.kind }}</td><td>{{ r.platform }}</td><td>{{ r.address }}{% if let Some(p) = r.port %}:{{ p }}{% endif %}</td><td>{{ r.id }}</td></tr>
  {% endfor %}
  </tbody>
</table>
</body>
</html>"#
)]
struct Page {
    rows: Vec<Row>,
}

async fn index(State(pool): State<PgPool>) -> Response {
    let rows: Result<Vec<Row>, _> = sqlx::query_as(
        "SELECT id, name, kind::text AS kind, platform, address, port
         FROM resources WHERE archived_at IS NULL
         ORDER BY lower(name) LIMIT $1",
    )
    .bind(20_i64)
    .fetch_all(&pool)
    .await;
    let rows = match rows {
        Ok(rows) => rows,
        Err(e) => return (StatusCode::SERVICE_UNAVAILABLE, e.to_string()).into_response(),
    };
    let page = Page { rows };
    match page.render() {
        Ok(html) => Html(html).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let url =
        std::env::var("DATABASE_URL").map_err(|_| anyhow::anyhow!("DATABASE_URL is not set"))?;
    let bind: SocketAddr = std::env::var("BENCH_REF_BIND")
        .unwrap_or_else(|_| "127.0.0.1:8081".into())
        .parse()?;
    let pool_size: u32 = std::env::var("BENCH_REF_POOL")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    // sqlx pings a connection each time it leaves the pool unless told not to; the default
    // (on) matches Portcullis' pool. BENCH_REF_PING=0 turns it off.
    let ping = std::env::var("BENCH_REF_PING").map_or(true, |v| v != "0");
    let pool = PgPoolOptions::new()
        .max_connections(pool_size)
        .test_before_acquire(ping)
        .connect(&url)
        .await?;
    // The reference is a bare axum route on purpose, outside Portcullis' route table.
    #[allow(clippy::disallowed_methods)]
    let app = Router::new().route("/", get(index)).with_state(pool);
    let listener = tokio::net::TcpListener::bind(bind).await?;
    eprintln!(
        "bench_reference listening on http://{} (pool {pool_size}, ping on acquire {ping})",
        listener.local_addr()?
    );
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending::<()>().await } } => {}
            }
        })
        .await?;
    Ok(())
}
