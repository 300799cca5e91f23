//! Browser tests: the application driven through a real headless Chromium over WebDriver.
//!
//! Needs Chromium and its driver (`apt-get install chromium chromium-driver`); see `harness`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[allow(dead_code)]
#[path = "../app/support.rs"]
mod support;

mod harness;
#[allow(dead_code)]
#[path = "../app/oidc_provider.rs"]
mod oidc_provider;
#[allow(dead_code)]
#[path = "../app/target_host.rs"]
mod target_host;

mod a11y;
mod admin;
mod connect;
mod keyboard;
mod login;
mod recordings;
mod request_page;
mod screens;
mod sso;
mod terminal;
mod wizard;
