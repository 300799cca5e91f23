//! Fault tests: PostgreSQL stopped under load, an instance killed behind nginx, SIGTERM under
//! load, each against the real `portcullis` binary. A test binary of its own, so that the
//! many tests of `tests/app` do not share the two cores while these measure recovery times;
//! the tests here also take turns (see [`one_at_a_time`]).
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[allow(dead_code)]
#[path = "../app/support.rs"]
mod support;

mod gateway;
mod hung;
mod instance;
mod load;
mod nginx;
mod outage;
mod provisioning;
mod shutdown;
#[allow(dead_code)]
#[path = "../app/target_host.rs"]
mod target_host;

/// Held by each test for its whole run: load tests running side by side would measure each
/// other.
pub async fn one_at_a_time() -> tokio::sync::MutexGuard<'static, ()> {
    static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    TURN.lock().await
}
