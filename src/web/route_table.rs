//! The router's own list of routes. axum cannot list the routes of a `Router`, yet the
//! access, CSRF and input sweeps must walk every one of them; so every route is registered
//! through [`Routes`], which records its method, path and who it is for as it hands the
//! handler to axum. The call sites read like axum's (`.route(path, get(a).post(b))`, with
//! [`get`] and [`post`] from here), and a plain `axum::Router::route` is refused by clippy
//! (`disallowed-methods` in `clippy.toml`), so no route can bypass the list.

use std::convert::Infallible;

use axum::Router;
use axum::extract::Request;
use axum::handler::Handler;
use axum::http::Method;
use axum::response::IntoResponse;
use axum::routing::{MethodRouter, Route as AxumRoute};
use tower::{Layer, Service};

use crate::state::AppState;

/// Who a route is for. The guards in `web::router_with_metrics` enforce it; the sweeps in
/// the tests check that they do, route by route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone, signed in or not.
    Public,
    /// Public, but only meaningful in the middle of a sign-in (right password, second factor
    /// next): without one it sends the browser to `/login`, as signed-in routes do.
    SignInStep,
    /// Any signed-in account.
    User,
    /// Administrators only.
    Admin,
    /// `/api/v1`: a Bearer API token with this scope (and, for `Admin`, an administrator
    /// owner); no cookie, so no CSRF token. The guards are in `web::api::auth`.
    Api(crate::domain::api_token::Scope),
}

/// One method on one path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub method: Method,
    /// As registered, with `{id}`-style parameters.
    pub path: &'static str,
    pub access: Access,
}

/// The handlers of one path, with the methods they answer (an axum `MethodRouter` cannot say).
pub struct Endpoint {
    methods: Vec<Method>,
    inner: MethodRouter<AppState>,
}

/// An endpoint answering GET (and HEAD, as axum does) with `handler`.
pub fn get<H, T>(handler: H) -> Endpoint
where
    H: Handler<T, AppState>,
    T: 'static,
{
    Endpoint {
        methods: vec![Method::GET],
        inner: axum::routing::get(handler),
    }
}

/// An endpoint answering POST with `handler`.
pub fn post<H, T>(handler: H) -> Endpoint
where
    H: Handler<T, AppState>,
    T: 'static,
{
    Endpoint {
        methods: vec![Method::POST],
        inner: axum::routing::post(handler),
    }
}

impl Endpoint {
    /// Also answers GET with `handler`.
    pub fn get<H, T>(mut self, handler: H) -> Self
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        self.methods.push(Method::GET);
        self.inner = self.inner.get(handler);
        self
    }

    /// Also answers POST with `handler`.
    pub fn post<H, T>(mut self, handler: H) -> Self
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        self.methods.push(Method::POST);
        self.inner = self.inner.post(handler);
        self
    }

    /// As `MethodRouter::layer`.
    pub fn layer<L>(mut self, layer: L) -> Self
    where
        L: Layer<AxumRoute> + Clone + Send + Sync + 'static,
        L::Service: Service<Request, Error = Infallible> + Clone + Send + Sync + 'static,
        <L::Service as Service<Request>>::Response: IntoResponse + 'static,
        <L::Service as Service<Request>>::Future: Send + 'static,
    {
        self.inner = self.inner.layer(layer);
        self
    }

    /// As `MethodRouter::route_layer`.
    pub fn route_layer<L>(mut self, layer: L) -> Self
    where
        L: Layer<AxumRoute> + Clone + Send + Sync + 'static,
        L::Service: Service<Request, Error = Infallible> + Clone + Send + Sync + 'static,
        <L::Service as Service<Request>>::Response: IntoResponse + 'static,
        <L::Service as Service<Request>>::Future: Send + 'static,
    {
        self.inner = self.inner.route_layer(layer);
        self
    }
}

/// A group of routes for one kind of user, and the list of what it holds.
pub struct Routes {
    access: Access,
    router: Router<AppState>,
    table: Vec<Route>,
}

impl Routes {
    /// An empty group whose routes are for `access`.
    pub fn new(access: Access) -> Self {
        Self {
            access,
            router: Router::new(),
            table: Vec::new(),
        }
    }

    /// Serves `endpoint` at `path`, and lists it.
    // The one place a route reaches axum; everything else comes through here.
    #[allow(clippy::disallowed_methods)]
    pub fn route(mut self, path: &'static str, endpoint: Endpoint) -> Self {
        for method in endpoint.methods {
            self.table.push(Route {
                method,
                path,
                access: self.access,
            });
        }
        self.router = self.router.route(path, endpoint.inner);
        self
    }

    /// Adds another group's routes (each keeps the access it was listed with).
    pub fn merge(mut self, other: Routes) -> Self {
        self.router = self.router.merge(other.router);
        self.table.extend(other.table);
        self
    }

    /// As `Router::route_layer`: a guard over every route added so far.
    pub fn route_layer<L>(mut self, layer: L) -> Self
    where
        L: Layer<AxumRoute> + Clone + Send + Sync + 'static,
        L::Service: Service<Request> + Clone + Send + Sync + 'static,
        <L::Service as Service<Request>>::Response: IntoResponse + 'static,
        <L::Service as Service<Request>>::Error: Into<Infallible> + 'static,
        <L::Service as Service<Request>>::Future: Send + 'static,
    {
        self.router = self.router.route_layer(layer);
        self
    }

    /// The router, and the list of its routes.
    pub fn into_parts(self) -> (Router<AppState>, Vec<Route>) {
        (self.router, self.table)
    }
}
