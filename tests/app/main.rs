//! Integration tests: the application over real HTTP against a real PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;
mod target_host;

mod access;
mod admin_catalog;
mod admin_credentials;
mod admin_names;
mod admin_policies;
mod admin_resources;
mod admin_users;
mod approvals;
mod auth;
mod bounds;
mod cluster;
mod connect;
mod csrf;
mod dashboard;
mod headers;
mod hostile_input;
mod live;
mod metrics;
mod notify;
mod outage;
mod provisioning;
mod provisioning_more;
mod revocation;
mod rough_edges;
mod routes;
mod second_factor;
mod seed;
mod session_cache;
mod sign_in_timing;
mod slow_clients;
mod wizard;
