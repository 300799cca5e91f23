//! Every route of the application, with who may use it. The access and CSRF tests walk this
//! list; a new route must be added here.

/// Who a route is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Public,
    User,
    Admin,
}

/// Method, path (`{id}` is replaced by a real id) and access.
pub const ROUTES: &[(&str, &str, Access)] = &[
    ("GET", "/healthz", Access::Public),
    ("GET", "/readyz", Access::Public),
    ("GET", "/static/app.css", Access::Public),
    ("GET", "/login", Access::Public),
    ("POST", "/login", Access::Public),
    ("GET", "/", Access::User),
    ("GET", "/dashboard", Access::User),
    ("GET", "/dashboard/scheduled", Access::User),
    ("GET", "/dashboard/historical", Access::User),
    ("GET", "/dashboard/historical.csv", Access::User),
    ("GET", "/dashboard/logs", Access::User),
    ("POST", "/dashboard/end", Access::User),
    ("GET", "/sessions/{id}", Access::User),
    ("GET", "/events", Access::User),
    ("GET", "/approvals", Access::User),
    ("GET", "/wizard", Access::User),
    ("GET", "/wizard/request-type", Access::User),
    ("POST", "/wizard/request-type", Access::User),
    ("GET", "/wizard/resources", Access::User),
    ("POST", "/wizard/resources", Access::User),
    ("GET", "/wizard/notes", Access::User),
    ("POST", "/wizard/notes", Access::User),
    ("GET", "/wizard/scheduling", Access::User),
    ("POST", "/wizard/scheduling", Access::User),
    ("GET", "/wizard/review", Access::User),
    ("POST", "/wizard/finish", Access::User),
    ("POST", "/sessions/{id}/extend", Access::User),
    ("POST", "/approvals/decide", Access::User),
    ("POST", "/logout", Access::User),
    ("GET", "/admin", Access::Admin),
    ("GET", "/admin/users", Access::Admin),
    ("POST", "/admin/users/{id}/unlock", Access::Admin),
    ("POST", "/admin/sessions/{id}/lock", Access::Admin),
    ("POST", "/admin/sessions/{id}/unlock", Access::Admin),
];

/// The POST routes.
pub fn posts() -> impl Iterator<Item = (&'static str, Access)> {
    ROUTES
        .iter()
        .filter(|(m, _, _)| *m == "POST")
        .map(|(_, p, a)| (*p, *a))
}

/// Fills in `{id}`.
pub fn path(template: &str, id: uuid::Uuid) -> String {
    template.replace("{id}", &id.to_string())
}
