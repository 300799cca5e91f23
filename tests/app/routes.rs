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
    ("GET", "/metrics", Access::Public),
    ("GET", "/static/app.css", Access::Public),
    ("GET", "/login", Access::Public),
    ("POST", "/login", Access::Public),
    // Public, but only in the middle of a sign-in (right password, second factor next):
    // without one they send the browser to /login, as signed-in routes do.
    ("GET", "/login/code", Access::User),
    ("POST", "/login/code", Access::User),
    ("GET", "/login/enrol", Access::User),
    ("POST", "/login/enrol", Access::User),
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
    ("GET", "/sessions/{id}/connect", Access::User),
    ("POST", "/sessions/{id}/reveal", Access::User),
    ("POST", "/sessions/{id}/connection-string", Access::User),
    ("POST", "/sessions/{id}/rdp", Access::User),
    ("POST", "/sessions/{id}/launch", Access::User),
    ("POST", "/approvals/decide", Access::User),
    ("POST", "/logout", Access::User),
    ("GET", "/account", Access::User),
    ("GET", "/account/second-factor", Access::User),
    ("POST", "/account/second-factor", Access::User),
    ("POST", "/account/recovery-codes", Access::User),
    ("POST", "/account/second-factor/off", Access::User),
    ("GET", "/admin", Access::Admin),
    ("GET", "/admin/users", Access::Admin),
    ("POST", "/admin/users/{id}/unlock", Access::Admin),
    ("GET", "/admin/users/new", Access::Admin),
    ("POST", "/admin/users/new", Access::Admin),
    ("GET", "/admin/users/{id}", Access::Admin),
    ("POST", "/admin/users/{id}", Access::Admin),
    ("POST", "/admin/users/{id}/disable", Access::Admin),
    ("POST", "/admin/users/{id}/enable", Access::Admin),
    ("POST", "/admin/users/{id}/password", Access::Admin),
    (
        "POST",
        "/admin/users/{id}/second-factor/reset",
        Access::Admin,
    ),
    ("POST", "/admin/sessions/{id}/lock", Access::Admin),
    ("POST", "/admin/sessions/{id}/unlock", Access::Admin),
    ("GET", "/admin/resources", Access::Admin),
    ("GET", "/admin/resources/new", Access::Admin),
    ("POST", "/admin/resources/new", Access::Admin),
    ("GET", "/admin/resources/{id}", Access::Admin),
    ("POST", "/admin/resources/{id}", Access::Admin),
    ("POST", "/admin/resources/{id}/delete", Access::Admin),
    ("POST", "/admin/resources/{id}/restore", Access::Admin),
    ("GET", "/admin/resources/import", Access::Admin),
    ("POST", "/admin/resources/import", Access::Admin),
    ("POST", "/admin/resources/import/apply", Access::Admin),
    ("GET", "/admin/activities", Access::Admin),
    ("GET", "/admin/activities/new", Access::Admin),
    ("POST", "/admin/activities/new", Access::Admin),
    ("GET", "/admin/activities/{id}", Access::Admin),
    ("POST", "/admin/activities/{id}", Access::Admin),
    ("GET", "/admin/activities/{id}/clone", Access::Admin),
    ("POST", "/admin/activities/{id}/delete", Access::Admin),
    ("POST", "/admin/activities/{id}/restore", Access::Admin),
    ("GET", "/admin/groups", Access::Admin),
    ("GET", "/admin/groups/new", Access::Admin),
    ("POST", "/admin/groups/new", Access::Admin),
    ("GET", "/admin/groups/{id}", Access::Admin),
    ("POST", "/admin/groups/{id}", Access::Admin),
    ("POST", "/admin/groups/{id}/delete", Access::Admin),
    ("GET", "/admin/profiles", Access::Admin),
    ("GET", "/admin/profiles/new", Access::Admin),
    ("POST", "/admin/profiles/new", Access::Admin),
    ("GET", "/admin/profiles/{id}", Access::Admin),
    ("POST", "/admin/profiles/{id}", Access::Admin),
    ("POST", "/admin/profiles/{id}/delete", Access::Admin),
    ("GET", "/admin/policies", Access::Admin),
    ("GET", "/admin/policies/new", Access::Admin),
    ("POST", "/admin/policies/new", Access::Admin),
    ("GET", "/admin/policies/{id}", Access::Admin),
    ("POST", "/admin/policies/{id}", Access::Admin),
    ("POST", "/admin/policies/{id}/enable", Access::Admin),
    ("POST", "/admin/policies/{id}/disable", Access::Admin),
    ("POST", "/admin/policies/{id}/delete", Access::Admin),
    ("GET", "/admin/audit", Access::Admin),
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
