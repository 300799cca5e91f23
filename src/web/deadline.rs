//! A client-side deadline on every page request's wait for the database.
//!
//! PostgreSQL cancels a statement that runs past `statement_timeout`, and the pool gives up
//! waiting for a connection after its acquire timeout. Neither helps when the server is
//! frozen (stopped by a signal, a hung virtual machine, a network path that drops packets
//! without resetting the connection): it accepts nothing, answers nothing and cancels
//! nothing, and a query sent on a connection the request already holds would wait forever.
//! So a page request still unanswered after the deadline is dropped and answered 503, like
//! any other outage. Dropping it is safe: an open transaction is rolled back when its
//! connection is next used, and a retried submission is one the pages already expect.

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::state::AppState;
use crate::web::error::AppError;

/// Answers 503 when the rest of the request takes longer than the configured deadline.
pub async fn limit(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let deadline = state.settings.db_request_deadline;
    match tokio::time::timeout(deadline, next.run(request)).await {
        Ok(response) => response,
        Err(_) => AppError::Unavailable(format!(
            "no answer within {} s: the database may be frozen or unreachable",
            deadline.as_secs_f32()
        ))
        .into_response(),
    }
}
