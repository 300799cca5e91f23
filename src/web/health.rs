//! Liveness and readiness for load balancers and orchestrators.

use axum::extract::State;
use axum::http::StatusCode;

use crate::state::AppState;

/// The process is up.
pub async fn healthz() -> &'static str {
    "ok\n"
}

/// The process can serve requests: the database answers a trivial query within the pool's
/// acquire timeout. The limit is ours, not the server's: a frozen server would never answer.
pub async fn readyz(State(state): State<AppState>) -> (StatusCode, &'static str) {
    let limit = state.db.options().get_acquire_timeout();
    let error = match tokio::time::timeout(limit, crate::db::ping(&state.db)).await {
        Ok(Ok(())) => return (StatusCode::OK, "ready\n"),
        Ok(Err(e)) => e.to_string(),
        Err(_) => format!("no answer within {} s", limit.as_secs_f32()),
    };
    tracing::warn!(error, "readiness check failed");
    (StatusCode::SERVICE_UNAVAILABLE, "database unavailable\n")
}
