//! `/metrics` for Prometheus: requests and their latency by matched route, sessions by
//! status, the worker's lag and the database pool, in the OpenMetrics text format.
//!
//! Request metrics are counted in memory by a middleware around every route; the database
//! figures are read when scraped, so they cost nothing between scrapes. The endpoint is off
//! unless a token is configured (`PORTCULLIS_METRICS_TOKEN`, sent as a Bearer token) or it has
//! an address of its own (`PORTCULLIS_METRICS_BIND`), since it tells how busy the service is.

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use subtle::ConstantTimeEq;

/// The content type of the OpenMetrics text format, which Prometheus reads.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Labels of a request: the route as declared (`/sessions/{id}`, never the raw path, so
/// ids do not make a series each), the method and the status class (`2xx` ... `5xx`). Every
/// label takes its value from a fixed set, never from what a client wrote: a series lives
/// as long as the process, so a label a client could choose would let it grow our memory
/// and every scrape without bound.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: &'static str,
    route: String,
    status: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabels {
    status: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PoolLabels {
    state: &'static str,
}

/// The figures read from the database at scrape time.
struct Scraped {
    sessions: Family<StatusLabels, Gauge>,
    worker_lag: Gauge<f64, std::sync::atomic::AtomicU64>,
    database_up: Gauge,
    pool: Family<PoolLabels, Gauge>,
    pool_max: Gauge,
    removals_pending: Gauge,
}

struct Inner {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RequestLabels, Histogram>,
    scraped: Scraped,
    /// One scrape at a time: each sets the database gauges, then encodes them.
    scrape: tokio::sync::Mutex<()>,
}

/// The metrics of one server. Cheap to clone.
#[derive(Clone)]
pub struct Metrics(Arc<Inner>);

impl Metrics {
    /// Metrics of a server whose session cache is `sessions`.
    pub fn new(sessions: &crate::auth::cache::SessionCache) -> Self {
        let mut registry = Registry::with_prefix("portcullis");
        registry.register(
            "session_cache_lookups",
            "Page views that looked for a kept browser session, by result (hit: answered without reading the session from the database)",
            sessions.lookups(),
        );
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by method, matched route and status class",
            requests.clone(),
        );
        let latency = Family::<RequestLabels, Histogram>::new_with_constructor(|| {
            // 1 ms to about 16 s.
            Histogram::new(exponential_buckets(0.001, 2.0, 15))
        });
        registry.register(
            "http_request_duration_seconds",
            "Time to answer an HTTP request (to the response head), by method, matched route and status class",
            latency.clone(),
        );
        let scraped = Scraped {
            sessions: Family::default(),
            worker_lag: Gauge::default(),
            database_up: Gauge::default(),
            pool: Family::default(),
            pool_max: Gauge::default(),
            removals_pending: Gauge::default(),
        };
        registry.register(
            "sessions",
            "Activity sessions by status",
            scraped.sessions.clone(),
        );
        registry.register(
            "worker_lag_seconds",
            "How long the oldest session due a timed transition has waited for it (0: none waiting)",
            scraped.worker_lag.clone(),
        );
        registry.register(
            "database_up",
            "1 when the database answered this scrape, else 0",
            scraped.database_up.clone(),
        );
        registry.register(
            "db_pool_connections",
            "Database connections this instance holds, by state",
            scraped.pool.clone(),
        );
        registry.register(
            "db_pool_max_connections",
            "Largest number of database connections this instance may hold",
            scraped.pool_max.clone(),
        );
        registry.register(
            "access_removals_pending",
            "Ended sessions whose access the target has not yet confirmed removed (revokes being retried)",
            scraped.removals_pending.clone(),
        );
        Self(Arc::new(Inner {
            registry,
            requests,
            latency,
            scraped,
            scrape: tokio::sync::Mutex::new(()),
        }))
    }

    fn observe(&self, method: &'static str, route: &str, status: StatusCode, seconds: f64) {
        let labels = RequestLabels {
            method,
            route: route.to_owned(),
            status: status_class(status),
        };
        self.0.requests.get_or_create(&labels).inc();
        self.0.latency.get_or_create(&labels).observe(seconds);
    }

    /// Reads the database figures and encodes everything. A database that does not answer
    /// leaves its figures as they were and sets `portcullis_database_up` to 0.
    pub async fn render(&self, pool: &PgPool) -> String {
        let _one = self.0.scrape.lock().await;
        let s = &self.0.scraped;
        let size = i64::from(pool.size());
        let idle = i64::try_from(pool.num_idle()).unwrap_or(i64::MAX);
        s.pool
            .get_or_create(&PoolLabels { state: "idle" })
            .set(idle);
        s.pool
            .get_or_create(&PoolLabels { state: "in_use" })
            .set((size - idle).max(0));
        s.pool_max
            .set(i64::from(pool.options().get_max_connections()));
        match read_database(pool).await {
            Ok((counts, lag, pending)) => {
                s.removals_pending.set(pending);
                s.database_up.set(1);
                for (status, count) in counts {
                    s.sessions
                        .get_or_create(&StatusLabels { status })
                        .set(count);
                }
                s.worker_lag.set(lag);
            }
            Err(e) => {
                tracing::warn!(error = %e, "metrics: database unavailable");
                s.database_up.set(0);
            }
        }
        let mut text = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut text, &self.0.registry) {
            tracing::error!(error = %e, "metrics: encoding failed");
        }
        text
    }
}

/// `2xx`, `4xx`, ...
fn status_class(status: StatusCode) -> &'static str {
    match status.as_u16() {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

/// Sessions by status (every status, zero included), the worker's lag in seconds, and the
/// access removals still pending.
async fn read_database(pool: &PgPool) -> Result<(Vec<(String, i64)>, f64, i64), sqlx::Error> {
    let counts = crate::db::stats::sessions_by_status(pool).await?;
    let lag = crate::db::stats::worker_lag(pool).await?;
    let pending = crate::db::provisioning::pending_removals(pool).await?;
    Ok((counts, lag.as_secs_f64(), pending))
}

/// The method label: the methods the application routes (GET and its HEAD, POST), any
/// other as `OTHER`, so made-up methods share one series instead of making one each.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        _ => "OTHER",
    }
}

/// Counts every request by the route it matched (`unmatched` for the 404 fallback; the
/// router sets `MatchedPath` only to a route as declared, a fixed set) and times it to its
/// response head.
pub async fn track(State(metrics): State<Metrics>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = method_label(request.method());
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str)
        .to_owned();
    let response = next.run(request).await;
    metrics.observe(
        method,
        &route,
        response.status(),
        started.elapsed().as_secs_f64(),
    );
    response
}

/// Who may read `/metrics` on the application's own address.
#[derive(Clone)]
pub struct Access {
    /// SHA-256 of the configured token; `None`: the endpoint does not exist here.
    token: Option<[u8; 32]>,
}

impl Access {
    /// With a token, `/metrics` answers requests that carry it; without, it is not found.
    pub fn token(token: Option<&str>) -> Self {
        Self {
            token: token.map(digest),
        }
    }
}

fn digest(text: &str) -> [u8; 32] {
    Sha256::digest(text.as_bytes()).into()
}

/// Whether the request's `Authorization: Bearer` token is `expected`, compared in constant
/// time (over digests, so the token's length does not show either).
fn authorized(headers: &HeaderMap, expected: &[u8; 32]) -> bool {
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    match presented {
        Some(token) => bool::from(digest(token).ct_eq(expected)),
        None => false,
    }
}

/// The scrape, answered with the metrics text or 401 without the right token; `None` when
/// the endpoint is off (the caller answers its not-found page).
pub async fn scrape(
    metrics: &Metrics,
    access: &Access,
    open: bool,
    pool: &PgPool,
    headers: &HeaderMap,
) -> Option<Response> {
    match (&access.token, open) {
        (None, false) => return None,
        (Some(expected), _) if !authorized(headers, expected) => {
            return Some(
                (
                    StatusCode::UNAUTHORIZED,
                    [(header::WWW_AUTHENTICATE, "Bearer")],
                    "a valid metrics token is required\n",
                )
                    .into_response(),
            );
        }
        _ => {}
    }
    let text = metrics.render(pool).await;
    Some(([(header::CONTENT_TYPE, CONTENT_TYPE)], text).into_response())
}

/// The router of a separate metrics address: `/metrics` only, without a token unless one is
/// configured.
// A server of its own on another address, not one of the application's routes (which go
// through `web::route_table`).
#[allow(clippy::disallowed_methods)]
pub fn router(metrics: Metrics, access: Access, pool: PgPool) -> Router {
    let open = access.token.is_none();
    Router::new().route(
        "/metrics",
        get(move |headers: HeaderMap| async move {
            // `open` without a token: always answered.
            scrape(&metrics, &access, open, &pool, &headers)
                .await
                .unwrap_or_else(|| StatusCode::NOT_FOUND.into_response())
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bearer(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, value.parse().unwrap());
        h
    }

    #[test]
    fn only_the_configured_bearer_token_is_accepted() {
        let expected = digest("s3cret-token-for-scrapes");
        assert!(authorized(
            &bearer("Bearer s3cret-token-for-scrapes"),
            &expected
        ));
        assert!(!authorized(
            &bearer("Bearer s3cret-token-for-scrape"),
            &expected
        ));
        assert!(!authorized(
            &bearer("Basic s3cret-token-for-scrapes"),
            &expected
        ));
        assert!(!authorized(&HeaderMap::new(), &expected));
    }

    #[test]
    fn methods_outside_the_routed_ones_share_one_label() {
        assert_eq!(method_label(&Method::GET), "GET");
        assert_eq!(method_label(&Method::HEAD), "HEAD");
        assert_eq!(method_label(&Method::POST), "POST");
        assert_eq!(method_label(&Method::DELETE), "OTHER");
        let made_up = Method::from_bytes(b"BREW").unwrap();
        assert_eq!(method_label(&made_up), "OTHER");
    }

    #[test]
    fn status_classes() {
        assert_eq!(status_class(StatusCode::OK), "2xx");
        assert_eq!(status_class(StatusCode::SEE_OTHER), "3xx");
        assert_eq!(status_class(StatusCode::NOT_FOUND), "4xx");
        assert_eq!(status_class(StatusCode::SERVICE_UNAVAILABLE), "5xx");
    }
}
