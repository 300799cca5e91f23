//! Portcullis: just-in-time privileged access.
//!
//! `domain` holds the rules, `db` all SQL, `auth` who is asking, `web` the pages;
//! [`build_router`] ties them together for `main` and the tests alike. The modules form
//! layers without an import cycle (README, "Code map"; checked by `tests/app/layers.rs`).

pub mod app;
pub mod auth;
pub mod cli;
pub mod config;
pub mod crypto;
pub mod db;
pub mod domain;
pub mod gateway;
pub mod live;
pub mod metrics;
pub mod notify;
pub mod pg_cluster;
pub mod provision;
pub mod recording;
pub mod seeding;
pub mod server;
pub mod state;
pub mod ticket_validation;
pub mod web;
pub mod webhooks;
pub mod worker;

pub use state::{AppState, Settings, session_store};

/// The application's router, for the server and the tests.
pub fn build_router(state: AppState, store: auth::store::Store) -> axum::Router {
    web::router(state, store)
}
