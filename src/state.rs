//! What every handler and the SSH gateway can reach: [`AppState`], with the
//! [`Settings`] taken from the configuration once at start.

use std::sync::Arc;

use sqlx::PgPool;

use crate::config::Config;
use crate::{auth, config, crypto, live};

/// Settings the request handlers read, taken from [`Config`] once at start.
#[derive(Debug, Clone)]
pub struct Settings {
    pub cookie_secure: bool,
    pub session_idle_minutes: u32,
    pub session_lifetime_hours: u32,
    pub default_time_zone: String,
    pub ssh_jump_host: Option<String>,
    pub gateway_host: Option<String>,
    /// Ciphers the SSH gateway offers (empty: `gateway::ciphers::offered`'s default).
    pub ssh_gateway_ciphers: Vec<String>,
    /// Reverse proxies whose X-Forwarded-For is believed.
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// Who must sign in with a second factor.
    pub second_factor: config::SecondFactorPolicy,
    /// Sign-in attempts allowed per client address per window.
    pub sign_in_limit: u32,
    /// The sign-in rate limit's window, in seconds.
    pub sign_in_window_seconds: u32,
    /// Bearer token for `/metrics` on the main address; `None`: no `/metrics` there.
    pub metrics_token: Option<String>,
    /// How long a request may wait on the database before it is answered 503 (see
    /// `web::deadline`).
    pub db_request_deadline: std::time::Duration,
    /// Single sign-on through an OpenID Connect provider, when configured (set by
    /// `server::serve` from the checked settings).
    pub sso: Option<Arc<auth::sso::flow::Provider>>,
}

impl Settings {
    pub fn from_config(config: &Config) -> Self {
        Self {
            cookie_secure: config.cookie_secure(),
            session_idle_minutes: config.session_idle_minutes,
            session_lifetime_hours: config.session_lifetime_hours,
            default_time_zone: config.default_time_zone.clone(),
            ssh_jump_host: config.ssh_jump_host.clone(),
            gateway_host: config.gateway_host.clone(),
            ssh_gateway_ciphers: config.ssh_gateway_ciphers.clone(),
            trusted_proxies: config.trusted_proxies.clone(),
            second_factor: config.second_factor(),
            sign_in_limit: config.sign_in_limit,
            sign_in_window_seconds: config.sign_in_window_minutes * 60,
            metrics_token: config.metrics_token.clone(),
            db_request_deadline: config.db_request_deadline(),
            sso: None,
        }
    }
}

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub db: PgPool,
    pub settings: Arc<Settings>,
    /// Seals and opens generated passwords.
    pub secrets: crypto::SecretBox,
    /// Relays status changes to open event streams.
    pub live: live::Hub,
    /// Browser sessions recently loaded by this instance (see `auth::cache`).
    pub sessions: Arc<auth::cache::SessionCache>,
}

/// The session store: the `web_sessions` table, read with each session's user, and kept in
/// the state's session cache.
pub fn session_store(state: &AppState) -> auth::store::Store {
    auth::store::Store::new(
        state.db.clone(),
        state.sessions.clone(),
        state.settings.session_idle_minutes,
    )
}
