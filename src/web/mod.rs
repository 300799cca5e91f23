//! Handlers by page, each beside its template struct, and the router that ties them to
//! their guards.

pub mod account;
pub mod account_keys;
pub mod account_tokens;
mod actor;
pub mod admin;
pub mod api;
pub mod approvals;
pub mod body_limit;
pub mod chrome;
pub mod client;
pub mod connect;
pub mod csrf;
pub mod dashboard;
pub mod deadline;
pub mod error;
pub mod events;
pub mod form;
pub mod guard;
pub mod health;
pub mod login;
pub mod login_token;
pub mod multipart;
pub mod path_id;
pub mod recordings;
pub mod recordings_live;
pub mod recordings_search;
pub mod request_page;
pub mod route_table;
pub mod second_factor;
pub mod session_actions;
pub mod session_details;
pub mod sso;
pub mod stamp_cookie;
pub mod static_files;
pub mod terminal;
pub mod text_guard;
pub mod wizard;

use axum::Extension;
use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::{Next, from_fn, from_fn_with_state};
use axum::response::{IntoResponse, Redirect, Response};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;
use tower_sessions::cookie::SameSite;
use tower_sessions::{Expiry, SessionManagerLayer};

use crate::auth::cache;
use crate::metrics::Metrics;
use crate::state::AppState;
use crate::web::error::AppError;
use crate::web::route_table::{Access, Route, Routes, get, post};

/// Largest request body accepted (forms are small; uploads get their own limit).
pub const BODY_LIMIT: usize = body_limit::FORM_LIMIT;

/// The Content-Security-Policy of every response: our own files only, no inline script or
/// style, no framing, forms post only to us.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     object-src 'none'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'";

/// The whole application, with metrics of its own.
pub fn router(state: AppState, store: crate::auth::store::Store) -> Router {
    let metrics = Metrics::new(&state.sessions);
    router_with_metrics(state, store, metrics)
}

/// The whole application, counting its requests into `metrics` (which the server may also
/// serve on an address of its own).
pub fn router_with_metrics(
    state: AppState,
    store: crate::auth::store::Store,
    metrics: Metrics,
) -> Router {
    let (signed_in, _) = signed_in_routes().into_parts();
    let signed_in = signed_in.route_layer(from_fn_with_state(state.clone(), guard::require_user));
    let (public, _) = public_routes().into_parts();
    let (probes, _) = probe_routes().into_parts();
    // The API: tokens, not cookies, so outside the session and CSRF layers (a browser's
    // sign-in alone gets 401 there), with the same database deadline as the pages.
    let (api, _) = api::routes().into_parts();
    let api = api
        .layer(from_fn_with_state(state.clone(), api::auth::authenticate))
        .layer(from_fn_with_state(state.clone(), deadline::limit));
    let probes = probes.layer(Extension(MetricsEndpoint {
        access: crate::metrics::Access::token(state.settings.metrics_token.as_deref()),
        metrics: metrics.clone(),
    }));

    let sessions = SessionManagerLayer::new(store)
        .with_name(if state.settings.cookie_secure {
            "__Host-portcullis"
        } else {
            "portcullis"
        })
        .with_secure(state.settings.cookie_secure)
        .with_http_only(true)
        .with_same_site(SameSite::Lax)
        .with_path("/")
        .with_expiry(Expiry::OnInactivity(time::Duration::seconds(
            crate::auth::session::idle_limit_seconds(state.settings.session_idle_minutes),
        )));

    Router::new()
        .merge(signed_in)
        .merge(public)
        .fallback(|uri: axum::http::Uri| async move {
            if uri.path().starts_with("/api/") {
                api::error::ApiError::not_found().into_response()
            } else {
                AppError::NotFound.into_response()
            }
        })
        .layer(from_fn_with_state(state.clone(), csrf_unless_api))
        .layer(sessions)
        .layer(from_fn_with_state(state.clone(), session_edges))
        .layer(from_fn_with_state(state.clone(), deadline::limit))
        // Probes need neither a session nor a CSRF token.
        .merge(probes)
        .merge(api)
        // Before the session is loaded and the CSRF token checked: a request carrying a NUL
        // or another control character is refused whole, on every route (inside the body
        // limit, which bounds what it reads).
        .layer(from_fn(text_guard::refuse_control_characters))
        // `body_limit::limit` holds each route to its own limit, whatever the framing, with
        // a 413 page; the largest limit stays here as a second line.
        .layer(RequestBodyLimitLayer::new(body_limit::UPLOAD_LIMIT))
        .layer(from_fn(body_limit::limit))
        // An API client gets those refusals as JSON too.
        .layer(from_fn(api::error::json_errors))
        .layer(security_header(header::CONTENT_SECURITY_POLICY, CSP))
        .layer(security_header(header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .layer(security_header(header::X_FRAME_OPTIONS, "DENY"))
        .layer(security_header(header::REFERRER_POLICY, "same-origin"))
        .layer(security_header(
            HeaderName::from_static("cross-origin-opener-policy"),
            "same-origin",
        ))
        .layer(security_header(
            HeaderName::from_static("permissions-policy"),
            "camera=(), microphone=(), geolocation=(), payment=()",
        ))
        // Pages hold privileged data: no shared or back-button caches (static files set
        // their own Cache-Control first).
        .layer(security_header(header::CACHE_CONTROL, "no-store"))
        .layer(TraceLayer::new_for_http())
        .layer(from_fn_with_state(metrics, crate::metrics::track))
        .with_state(state)
}

/// Every route of the application, with who it is for, for the tests' sweeps: collected by
/// the same functions that build the router's groups, so it cannot miss one.
pub fn route_table() -> Vec<Route> {
    [
        signed_in_routes(),
        public_routes(),
        probe_routes(),
        api::routes(),
    ]
    .into_iter()
    .flat_map(|routes| routes.into_parts().1)
    .collect()
}

/// The routes for signed-in accounts (`require_user` is added by the caller: it needs the
/// state), administrators' among them behind their own guard.
fn signed_in_routes() -> Routes {
    let admin = admin::routes()
        .route(
            "/admin/users/{id}/second-factor/reset",
            post(admin::users::reset_second_factor),
        )
        .route_layer(from_fn(guard::require_admin));

    Routes::new(Access::User)
        .route("/", get(|| async { Redirect::to("/dashboard") }))
        .merge(dashboard::routes())
        .merge(wizard::routes())
        .route("/sessions/{id}", get(session_details::show))
        .route("/sessions/{id}/recordings/{file}", get(recordings::cast))
        .route("/recordings/search", get(recordings_search::show))
        .route("/recordings/{id}/live", get(recordings_live::page))
        .route("/recordings/{id}/events", get(recordings_live::events))
        .route("/sessions/{id}/extend", post(session_actions::extend))
        .route("/sessions/{id}/connect", get(connect::show))
        .route("/sessions/{id}/reveal", post(connect::reveal))
        .route(
            "/sessions/{id}/connection-string",
            post(connect::show_connection_string),
        )
        .route("/sessions/{id}/rdp", post(connect::rdp))
        .route("/sessions/{id}/launch", post(connect::launched))
        .route("/sessions/{id}/terminal", get(terminal::page))
        .route("/sessions/{id}/terminal/socket", get(terminal::socket))
        .route(
            "/approvals",
            get(approvals::show).route_layer(from_fn(guard::require_approver)),
        )
        .route("/approvals/decide", post(approvals::decide))
        .route("/requests/{id}", get(request_page::show))
        .route("/requests/{id}/decide", post(request_page::decide))
        .route("/events", get(crate::web::events::events))
        .route("/logout", post(login::logout))
        .route("/account", get(account::show))
        .route(
            "/account/second-factor",
            get(account::show_enrol).post(account::submit_enrol),
        )
        .route("/account/recovery-codes", post(account::regenerate))
        .route("/account/password", post(account::change_password))
        .route("/account/profile", post(account::update_profile))
        .route(
            "/account/recovery-codes.txt",
            post(account::download_recovery_codes),
        )
        .route("/account/second-factor/off", post(account::switch_off))
        .route("/account/ssh-keys", post(account_keys::add))
        .route("/account/api-tokens", post(account_tokens::create))
        .route(
            "/account/api-tokens/{id}/revoke",
            post(account_tokens::revoke),
        )
        .route("/account/ssh-keys/{id}/remove", post(account_keys::remove))
        .route("/account/sso/link", post(account::link_sso))
        .merge(admin)
}

/// The sign-in pages and static files.
fn public_routes() -> Routes {
    let sign_in_steps = Routes::new(Access::SignInStep)
        .route(
            "/login/code",
            get(second_factor::show_code).post(second_factor::submit_code),
        )
        .route(
            "/login/enrol",
            get(second_factor::show_enrol).post(second_factor::submit_enrol),
        );
    Routes::new(Access::Public)
        .route("/login", get(login::show).post(login::submit))
        .route("/login/sso", get(sso::start))
        .route(crate::auth::sso::CALLBACK_PATH, get(sso::callback))
        .merge(sign_in_steps)
        .route("/static/{name}", get(static_files::serve))
}

/// Health probes and metrics: outside the session and CSRF layers.
fn probe_routes() -> Routes {
    Routes::new(Access::Public)
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(metrics_page))
}

/// What `/metrics` on the application's address needs besides the state.
#[derive(Clone)]
struct MetricsEndpoint {
    metrics: Metrics,
    /// Only with the configured token (404 without).
    access: crate::metrics::Access,
}

async fn metrics_page(
    State(state): State<AppState>,
    Extension(endpoint): Extension<MetricsEndpoint>,
    headers: HeaderMap,
) -> Response {
    crate::metrics::scrape(
        &endpoint.metrics,
        &endpoint.access,
        false,
        &state.db,
        &headers,
    )
    .await
    .unwrap_or_else(|| AppError::NotFound.into_response())
}

/// The CSRF check of every POST, except under `/api/`: the API's routes are outside this
/// router's layers, so what reaches here under `/api/` is the fallback, whose JSON 404 needs
/// no token (a POST to an unknown API path is not found, not "Form expired").
async fn csrf_unless_api(
    state: State<AppState>,
    session: tower_sessions::Session,
    request: Request,
    next: Next,
) -> Response {
    if request.uri().path().starts_with("/api/") {
        return next.run(request).await;
    }
    csrf::verify(state, session, request, next).await
}

/// Around the session layer:
/// - tells the session store which stamp the browser's cookie holds on GET and HEAD requests
///   (so a kept copy may answer them; see `auth::cache`) and sends the stamp a save wrote;
/// - clears this instance's kept sessions after any other request that may change an
///   account, a sign-in or who approves, before it answers;
/// - tower-sessions answers a session it could not save with a bare 500 (no body, no
///   Content-Type). The store is PostgreSQL, so that is the database going away between
///   loading the session and saving it: answer 503 with the error page, like every other
///   outage.
async fn session_edges(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let secure = state.settings.cookie_secure;
    let name = stamp_cookie::cookie_name(secure);
    let reads = matches!(*request.method(), Method::GET | Method::HEAD);
    let presented = reads.then(|| stamp_cookie::read_cookie(request.headers(), name));
    let clears = !reads && !leaves_accounts_alone(request.uri().path());
    let (mut response, saved) = cache::scope(presented, next.run(request)).await;
    if clears {
        state.sessions.clear();
    }
    if response.status() == StatusCode::INTERNAL_SERVER_ERROR
        && !response.headers().contains_key(header::CONTENT_TYPE)
    {
        return AppError::Unavailable("the session could not be saved".into()).into_response();
    }
    if let Some(stamp) = saved {
        let max_age = crate::auth::session::idle_limit_seconds(state.settings.session_idle_minutes);
        response.headers_mut().append(
            header::SET_COOKIE,
            stamp_cookie::set_cookie(name, stamp, secure, max_age),
        );
    }
    response
}

/// Routes whose POSTs change no account, group or approval tier, and end no one else's
/// sign-in (their own session's changes reach the cache through the store): they leave this
/// instance's kept sessions in place. Every other POST clears them.
fn leaves_accounts_alone(path: &str) -> bool {
    [
        "/wizard",
        "/dashboard/",
        "/sessions/",
        "/requests/",
        "/login",
        "/logout",
    ]
    .iter()
    .any(|p| path.starts_with(p))
        || path == "/approvals/decide"
}

fn security_header(name: HeaderName, value: &'static str) -> SetResponseHeaderLayer<HeaderValue> {
    SetResponseHeaderLayer::if_not_present(name, HeaderValue::from_static(value))
}
