//! Every route of the application, with who may use it, taken from the router's own table
//! (`portcullis::web::route_table`): the access, CSRF and input sweeps walk this list, so a
//! new route is swept as soon as it is served.

use portcullis::domain::api_token::Scope;
use portcullis::web::route_table::Access as RouteAccess;

/// Who a route is for, as the sweeps treat it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Public,
    User,
    Admin,
}

/// Method, path (`{id}` is replaced by a real id) and access, for every route of the pages
/// (the API's routes, which take tokens instead of cookies, are swept by `api_routes`).
pub fn routes() -> Vec<(&'static str, String, Access)> {
    portcullis::web::route_table()
        .into_iter()
        .filter(|route| !route.path.starts_with("/api/"))
        .map(|route| {
            let method = match route.method.as_str() {
                "GET" => "GET",
                "POST" => "POST",
                other => panic!("the sweeps do not know method {other}"),
            };
            let access = match route.access {
                RouteAccess::Public => Access::Public,
                // Public, but only in the middle of a sign-in: without one they send the
                // browser to /login, as signed-in routes do.
                RouteAccess::SignInStep | RouteAccess::User => Access::User,
                RouteAccess::Admin => Access::Admin,
                RouteAccess::Api(_) => panic!("{} is an API route outside /api/", route.path),
            };
            // The one static file every page uses stands for all of them.
            (method, route.path.replace("{name}", "app.css"), access)
        })
        .collect()
}

/// Method, path and scope (`None`: needs no token) of every API route, from the table.
pub fn api_routes() -> Vec<(&'static str, String, Option<Scope>)> {
    portcullis::web::route_table()
        .into_iter()
        .filter(|route| route.path.starts_with("/api/"))
        .map(|route| {
            let method = match route.method.as_str() {
                "GET" => "GET",
                "POST" => "POST",
                other => panic!("the sweeps do not know method {other}"),
            };
            let scope = match route.access {
                RouteAccess::Api(scope) => Some(scope),
                RouteAccess::Public => None,
                other => panic!("{} is under /api/ but for {other:?}", route.path),
            };
            (method, route.path.to_owned(), scope)
        })
        .collect()
}

/// The POST routes.
pub fn posts() -> impl Iterator<Item = (String, Access)> {
    routes()
        .into_iter()
        .filter(|(m, _, _)| *m == "POST")
        .map(|(_, p, a)| (p, a))
}

/// Fills in `{id}`.
pub fn path(template: &str, id: uuid::Uuid) -> String {
    template.replace("{id}", &id.to_string())
}

#[test]
fn the_table_lists_the_routes_the_old_hand_kept_list_had() {
    // A sample across every group, so an empty or truncated table cannot pass the sweeps.
    let routes = routes();
    for (method, path, access) in [
        ("GET", "/healthz", Access::Public),
        ("GET", "/metrics", Access::Public),
        ("GET", "/static/app.css", Access::Public),
        ("POST", "/login", Access::Public),
        ("POST", "/login/code", Access::User),
        ("GET", "/", Access::User),
        ("GET", "/dashboard/historical.csv", Access::User),
        ("POST", "/wizard/finish", Access::User),
        ("GET", "/approvals", Access::User),
        (
            "POST",
            "/admin/users/{id}/second-factor/reset",
            Access::Admin,
        ),
        ("POST", "/admin/resources/import", Access::Admin),
        ("GET", "/admin/audit", Access::Admin),
    ] {
        assert!(
            routes.contains(&(method, path.to_owned(), access)),
            "{method} {path} {access:?}"
        );
    }
    // The hand-kept list this replaced had 95 routes, the same as the table had then.
    assert!(routes.len() >= 95, "{} routes", routes.len());
}

#[test]
fn no_route_reaches_axum_outside_the_table() {
    // clippy's disallowed-methods refuses `Router::route` (see clippy.toml), and the `get`
    // and `post` in scope in the route modules build table entries, not axum handlers; a
    // route that bypasses the table needs axum's own, so no source may name them.
    fn visit(dir: &std::path::Path, found: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                visit(&path, found);
            } else if path.extension().is_some_and(|e| e == "rs")
                // The table itself, and the separate metrics address's one-route server.
                && !path.ends_with("web/route_table.rs")
                && !path.ends_with("src/metrics.rs")
                && std::fs::read_to_string(&path).unwrap().contains("axum::routing")
            {
                found.push(path.display().to_string());
            }
        }
    }
    let mut found = Vec::new();
    visit(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut found,
    );
    assert!(
        found.is_empty(),
        "routes outside web::route_table: {found:?}"
    );
}
