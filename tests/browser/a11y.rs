//! Accessibility and markup of every page a user can reach, for each role.
//!
//! One tour, with one browser and one sign-in per role, visits every page (error states
//! included). On each page axe-core runs in the light and in the dark colour scheme, and the
//! page's HTML as the server sent it is kept (fetched over HTTP by the page itself, with its
//! cookies). Two tests read the tour: one fails on axe's serious and critical violations, the
//! other validates all the HTML in one run of the Nu Html Checker.
//!
//! Needs the test tools (axe-core and vnu-jar from tests/tools/package-lock.json, which the
//! tour installs with `npm ci` when they are missing), and Java for the checker
//! (`apt-get install default-jre-headless`).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use serde_json::{Value, json};
use uuid::Uuid;

use crate::harness::Browser;
use crate::support::{TestApp, spawn_demo_app};

const DEMO_PASSWORD: &str = "portcullis-demo";

/// A file of the test tools (under `tests/tools/node_modules`). When they are not installed
/// yet, installs them once with npm from the lock file, so that `cargo test` alone works on a
/// machine with npm; panics, saying how to install them, when that is not possible.
pub fn tool(relative: &str) -> PathBuf {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    let tools = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tools");
    let path = tools.join("node_modules").join(relative);
    if !path.is_file() {
        INSTALLED.get_or_init(|| {
            // No install scripts: vnu-jar's would download a Java runtime; the jar is in the
            // package itself.
            let status = Command::new("npm")
                .args([
                    "ci",
                    "--ignore-scripts",
                    "--no-audit",
                    "--no-fund",
                    "--prefix",
                ])
                .arg(&tools)
                .status();
            if !matches!(status, Ok(s) if s.success()) {
                eprintln!("npm ci in {} failed: {status:?}", tools.display());
            }
        });
    }
    assert!(
        path.is_file(),
        "{} is missing: install the test tools with `npm ci --ignore-scripts --prefix tests/tools` \
         (needs Node.js and npm)",
        path.display()
    );
    path
}

/// axe-core's script, to inject into pages.
pub fn axe_source() -> String {
    let path = tool("axe-core/axe.min.js");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// Injects axe-core into the current page (WebDriver's execute is not subject to the CSP) and
/// runs it; returns every serious or critical violation, one line per element.
pub async fn axe_violations(browser: &Browser, axe: &str) -> Vec<String> {
    let present = browser
        .client
        .execute("return typeof axe === 'object';", vec![])
        .await
        .unwrap_or_else(|e| panic!("cannot look for axe-core: {e}"));
    if present != json!(true) {
        browser
            .client
            .execute(axe, vec![])
            .await
            .unwrap_or_else(|e| panic!("cannot inject axe-core: {e}"));
    }
    let result = browser
        .client
        .execute_async(
            r"const done = arguments[arguments.length - 1];
              axe.run(document, { resultTypes: ['violations'] }).then(
                (r) => done(r.violations.flatMap((v) => v.nodes
                  .filter((n) => n.impact === 'serious' || n.impact === 'critical')
                  .map((n) => n.impact + ' ' + v.id + ' at ' + n.target.join(' ') + ': ' + v.help
                    + ' (' + (n.failureSummary || '').replace(/\s+/g, ' ').trim() + ')'))),
                (e) => done(['axe-core failed: ' + e]));",
            vec![],
        )
        .await
        .unwrap_or_else(|e| panic!("cannot run axe-core: {e}"));
    serde_json::from_value(result).expect("axe results as strings")
}

/// One page as the tour saw it.
pub struct Checked {
    /// What the page is, e.g. "alice: Wizard > Notes (error)".
    pub label: String,
    pub url: String,
    /// The HTML as served.
    pub html: String,
    /// Serious and critical axe violations, light scheme then dark.
    pub violations: Vec<String>,
    /// What is too wide at a phone's size, and (for the pages of `screens::WIDE_TABLES`
    /// only) at a laptop's (see `screens::too_wide`).
    pub phone: Vec<String>,
    pub laptop: Option<Vec<String>>,
}

/// Everything the tour saw.
pub struct Tour {
    pub pages: Vec<Checked>,
    /// The body's computed background in the light and the dark scheme, and whether the page
    /// matched `(prefers-color-scheme: dark)` when dark was emulated.
    pub light_background: String,
    pub dark_background: String,
    pub dark_matched: bool,
    /// What axe found on a page with a planted violation.
    pub axe_self_check: Vec<String>,
}

/// The tour, run once for the tests of this module (on its own runtime, so that it outlives
/// whichever test asked first).
pub fn tour() -> &'static Tour {
    static TOUR: OnceLock<Result<Tour, String>> = OnceLock::new();
    let tour = TOUR.get_or_init(|| {
        std::thread::spawn(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("runtime")
                .block_on(run_tour())
        })
        .join()
        .map_err(|panic| {
            panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_default()
        })
    });
    match tour {
        Ok(tour) => tour,
        Err(message) => panic!("the page tour failed: {message}"),
    }
}

/// Checks pages as a browser reaches them.
struct Checker {
    axe: String,
    pages: Vec<Checked>,
}

impl Checker {
    /// Checks the page `browser` is on. Its served HTML is `html` when given (a form's answer),
    /// else fetched again from the page's address.
    async fn check(&mut self, browser: &Browser, label: &str, html: Option<String>) {
        let url = browser.url().await;
        let html = match html {
            Some(html) => html,
            None => fetch_again(browser).await,
        };
        assert!(
            html.starts_with("<!doctype html>"),
            "{label}: {url} served no page:\n{html}"
        );
        let mut violations = Vec::new();
        for (dark, scheme) in [(false, "light"), (true, "dark")] {
            apply_scheme(browser, dark)
                .await
                .unwrap_or_else(|e| panic!("{label}: {e}"));
            for v in axe_violations(browser, &self.axe).await {
                violations.push(format!("{label} [{scheme}] {url}: {v}"));
            }
        }
        browser.set_dark_scheme(false).await;
        let (phone, laptop) = crate::screens::measure(browser, label).await;
        self.pages.push(Checked {
            label: label.to_owned(),
            url,
            html,
            violations,
            phone,
            laptop,
        });
    }

    /// Loads `path` and checks it.
    async fn visit(&mut self, browser: &Browser, app: &TestApp, label: &str, path: &str) {
        browser.goto(app, path).await;
        self.check(browser, label, None).await;
    }

    /// Submits the form of `button` (its browser-side validation off, as a client without it
    /// would) and checks the answer: for error states, whose answer is the form again. The
    /// served HTML is fetched first with the same form data, so the submission is made twice:
    /// only for submissions that change nothing.
    async fn submit_error(&mut self, browser: &Browser, label: &str, button: &str) {
        let html = post_form(browser, button).await;
        browser
            .client
            .execute(
                "document.querySelector(arguments[0]).form.noValidate = true;",
                vec![json!(button)],
            )
            .await
            .expect("turn off browser-side validation");
        browser.submit(button).await;
        assert!(
            ["form-error", "field-error", "flash-error"]
                .iter()
                .any(|class| html.contains(class)),
            "{label}: the answer shows no error:\n{html}"
        );
        self.check(browser, label, Some(html)).await;
    }
}

/// Switches the colour scheme and waits until the page shows it: the media query matches and
/// the colours have finished fading (CSS transitions) to the new scheme's.
async fn apply_scheme(browser: &Browser, dark: bool) -> Result<(), String> {
    browser.set_dark_scheme(dark).await;
    let matched = browser
        .client
        .execute_async(
            r"const done = arguments[arguments.length - 1];
              const frame = () => new Promise((r) => requestAnimationFrame(() => r()));
              frame().then(frame)
                .then(() => Promise.all(document.getAnimations().map((a) => a.finished)))
                .catch(() => null)
                .then(() => done(matchMedia('(prefers-color-scheme: dark)').matches));",
            vec![],
        )
        .await
        .map_err(|e| format!("cannot read the colour scheme: {e}"))?;
    if matched == json!(dark) {
        Ok(())
    } else {
        Err(format!(
            "the {} scheme is not applied",
            if dark { "dark" } else { "light" }
        ))
    }
}

/// The current page's HTML as the server sends it now (a new GET with the page's cookies).
async fn fetch_again(browser: &Browser) -> String {
    let html = browser
        .client
        .execute_async(
            r"const done = arguments[arguments.length - 1];
              fetch(location.href, { credentials: 'same-origin' })
                .then((r) => r.text()).then(done, (e) => done('fetch failed: ' + e));",
            vec![],
        )
        .await
        .expect("fetch the page again");
    html.as_str().expect("HTML as a string").to_owned()
}

/// Posts the form of `button` as the browser would (same fields, same encoding) and returns
/// the HTML of the answer (after redirects).
async fn post_form(browser: &Browser, button: &str) -> String {
    let html = browser
        .client
        .execute_async(
            r"const done = arguments[arguments.length - 1];
              const button = document.querySelector(arguments[0]);
              const form = button.form;
              const data = new FormData(form, button);
              const body = form.enctype === 'multipart/form-data' ? data : new URLSearchParams(data);
              const action = button.hasAttribute('formaction') ? button.formAction : form.action;
              fetch(action, { method: 'POST', body, credentials: 'same-origin' })
                .then((r) => r.text()).then(done, (e) => done('fetch failed: ' + e));",
            vec![json!(button)],
        )
        .await
        .unwrap_or_else(|e| panic!("cannot post the form of {button:?}: {e}"));
    html.as_str().expect("HTML as a string").to_owned()
}

/// A session of `username`'s inserted directly (with its request), for fixtures the wizard
/// cannot make quickly.
async fn insert_session(
    app: &TestApp,
    username: &str,
    resource: &str,
    status: &str,
    start: &str,
) -> Uuid {
    let request = Uuid::now_v7();
    let session = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO requests (id, requester_id, policy_id, profile_id, activity_id, policy_name,
             profile_name, activity_name, protocol, login_mode, login_template, notes,
             ticket_number, start_now, requested_start, duration_minutes, tier_count, created_at)
         SELECT $1, u.id, p.id, p.profile_id, a.id, 'Linux operations', 'Standard',
                'Linux break-glass', 'ssh', 'ephemeral', 'pc-{username}-{session}',
                'Kernel patching: rolling restart of the web tier after the kernel update, one node at a time, draining each from the load balancer first', 'CHG-1042', false, $3::timestamptz, 120, 0, $3::timestamptz
         FROM users u, access_policies p, activities a
         WHERE u.username = $2 AND p.name = 'Linux operations' AND a.name = 'Linux break-glass'",
    )
    .bind(request)
    .bind(username)
    .bind(start)
    .execute(&app.db)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO activity_sessions (id, request_id, requester_id, resource_id, resource_name,
             resource_address, resource_port, activity_name, status, requested_start, ends_at,
             created_at)
         SELECT $1, r.id, r.requester_id, (SELECT id FROM resources WHERE name = $3), $3,
                $3 || '.corp.example', 22, 'Linux break-glass', $4::session_status,
                r.requested_start, r.requested_start + interval '2 hours', r.created_at
         FROM requests r WHERE r.id = $2",
    )
    .bind(session)
    .bind(request)
    .bind(resource)
    .bind(status)
    .execute(&app.db)
    .await
    .unwrap();
    session
}

/// The id of the row of `table` whose `column` is `value`.
async fn id_of(app: &TestApp, table: &str, column: &str, value: &str) -> Uuid {
    sqlx::query_scalar(&format!("SELECT id FROM {table} WHERE {column} = $1"))
        .bind(value)
        .fetch_one(&app.db)
        .await
        .unwrap_or_else(|e| panic!("no {table} with {column} {value:?}: {e}"))
}

async fn run_tour() -> Tour {
    let app = spawn_demo_app().await;
    let mut c = Checker {
        axe: axe_source(),
        pages: Vec::new(),
    };

    // Fixtures: alice has a session in each tab, one of them Available with a password.
    let available = insert_session(
        &app,
        "alice",
        "lnx-web-01",
        "provisioning",
        "2020-01-01T10:00:00Z",
    )
    .await;
    sqlx::query("UPDATE activity_sessions SET ends_at = now() + interval '2 hours' WHERE id = $1")
        .bind(available)
        .execute(&app.db)
        .await
        .unwrap();
    portcullis::worker::provision(&app.db, &app.secrets, Some(&[available]))
        .await
        .unwrap();
    insert_session(
        &app,
        "alice",
        "lnx-web-02",
        "pending",
        "2999-01-01T10:00:00Z",
    )
    .await;
    let completed = insert_session(
        &app,
        "alice",
        "lnx-web-03",
        "completed",
        "2026-01-05T10:00:00Z",
    )
    .await;
    insert_session(
        &app,
        "alice",
        "lnx-web-04",
        "approval_denied",
        "2026-01-06T10:00:00Z",
    )
    .await;

    // Anonymous.
    let anonymous = Browser::new().await;
    c.visit(&anonymous, &app, "anonymous: API reference", "/api/v1/docs")
        .await;
    c.visit(&anonymous, &app, "anonymous: Sign in", "/login")
        .await;
    let (light_background, dark_background, dark_matched) = scheme_proof(&anonymous).await;
    let axe_self_check = axe_self_check(&anonymous, &c.axe).await;
    anonymous.fill("#username", "nobody").await;
    anonymous.fill("#password", "wrong").await;
    c.submit_error(
        &anonymous,
        "anonymous: Sign in (error)",
        r#"form[action="/login"] button[type="submit"]"#,
    )
    .await;
    anonymous.close().await;

    // alice: the Dashboard, her sessions, the error pages and the whole wizard.
    let alice = Browser::new().await;
    alice.login(&app, "alice", DEMO_PASSWORD).await;
    c.check(&alice, "alice: Dashboard > Active", None).await;
    c.visit(
        &alice,
        &app,
        "alice: Dashboard > Scheduled",
        "/dashboard/scheduled",
    )
    .await;
    c.visit(
        &alice,
        &app,
        "alice: Dashboard > Historical",
        "/dashboard/historical",
    )
    .await;
    c.visit(
        &alice,
        &app,
        "alice: Dashboard > Historical (error)",
        "/dashboard/historical?from=yesterday",
    )
    .await;
    c.visit(
        &alice,
        &app,
        "alice: Dashboard (error message)",
        "/dashboard/logs",
    )
    .await;
    c.visit(
        &alice,
        &app,
        "alice: Session details",
        &format!("/sessions/{completed}"),
    )
    .await;
    c.visit(
        &alice,
        &app,
        "alice: Connect",
        &format!("/sessions/{available}/connect"),
    )
    .await;
    let revealed = post_form(&alice, "#reveal").await;
    alice.submit("#reveal").await;
    c.check(&alice, "alice: Connect (password revealed)", Some(revealed))
        .await;
    c.visit(&alice, &app, "alice: 404", "/no-such-page").await;
    c.visit(&alice, &app, "alice: 403", "/admin/users").await;

    c.visit(&alice, &app, "alice: Wizard > Request Type", "/wizard")
        .await;
    c.submit_error(
        &alice,
        "alice: Wizard > Request Type (error)",
        "button.primary[value=next]",
    )
    .await;
    alice.fill("#q", "break-glass").await;
    alice.submit("button[value=search]").await;
    alice.click("input[name=activity]").await;
    alice.submit("button.primary[value=next]").await;
    c.check(&alice, "alice: Wizard > Resource Selection", None)
        .await;
    c.submit_error(
        &alice,
        "alice: Wizard > Resource Selection (error)",
        "button.primary[value=next]",
    )
    .await;
    alice
        .click("#resources tbody tr:nth-child(1) input[name=pick]")
        .await;
    alice
        .click("#resources tbody tr:nth-child(2) input[name=pick]")
        .await;
    alice.submit("button[value=selections]").await;
    c.check(&alice, "alice: Wizard > View Selections", None)
        .await;
    alice.submit("button.primary[value=next]").await;
    c.check(&alice, "alice: Wizard > Notes", None).await;
    c.submit_error(
        &alice,
        "alice: Wizard > Notes (error)",
        "button.primary[value=next]",
    )
    .await;
    // As long as people write them: tables must clip them.
    alice
        .fill(
            "#notes",
            "Kernel patching, maintenance window: rolling restart of the web tier after the \
             kernel update, one node at a time, draining each from the load balancer first",
        )
        .await;
    alice.submit("button.primary[value=next]").await;
    c.check(&alice, "alice: Wizard > Scheduling", None).await;
    alice.click("input[name=when][value=later]").await;
    c.submit_error(
        &alice,
        "alice: Wizard > Scheduling (error)",
        "button.primary[value=next]",
    )
    .await;
    alice.click("input[name=when][value=now]").await;
    alice.submit("button.primary[value=next]").await;
    c.check(&alice, "alice: Wizard > Review", None).await;
    c.visit(
        &alice,
        &app,
        "alice: Create Session (draft in progress)",
        "/wizard",
    )
    .await;
    alice.submit("#draft-continue").await;
    alice.submit("button[value=finish]").await;
    c.check(&alice, "alice: Dashboard after Finish", None).await;
    alice.click("#sessions tbody input[name=id]").await;
    let end = r#"button[formaction="/dashboard/end"]"#;
    let confirm = post_form(&alice, end).await;
    alice.submit(end).await;
    c.check(&alice, "alice: End Session confirmation", Some(confirm))
        .await;
    alice.close().await;

    // erin: her account, switching a second factor on, and signing in with it.
    second_factor_pages(&mut c, &app).await;

    // bob approves.
    let bob = Browser::new().await;
    bob.login(&app, "bob", DEMO_PASSWORD).await;
    c.visit(&bob, &app, "bob: Approvals", "/approvals").await;
    c.submit_error(&bob, "bob: Approvals (error)", "button[value=deny]")
        .await;
    let waiting: Uuid = sqlx::query_scalar(
        "SELECT request_id FROM activity_sessions WHERE status = 'waiting_for_approval'
         ORDER BY created_at DESC LIMIT 1",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    c.visit(&bob, &app, "bob: Request", &format!("/requests/{waiting}"))
        .await;
    c.submit_error(&bob, "bob: Request (error)", "button[value=deny]")
        .await;
    bob.close().await;

    // carol administers.
    let carol = Browser::new().await;
    carol.login(&app, "carol", DEMO_PASSWORD).await;
    c.visit(
        &carol,
        &app,
        "carol: Dashboard > All",
        "/dashboard?scope=all",
    )
    .await;
    let alice_id = id_of(&app, "users", "username", "alice").await;
    let resource = id_of(&app, "resources", "name", "lnx-web-01").await;
    let activity = id_of(&app, "activities", "name", "Linux break-glass").await;
    let group = id_of(&app, "groups", "name", "Approvers").await;
    let profile = id_of(&app, "connection_profiles", "name", "Standard").await;
    let policy = id_of(&app, "access_policies", "name", "Linux operations").await;
    // A webhook with one delivery given up, for its form and its log (the secret is never
    // opened on those pages).
    let webhook = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO webhook_endpoints (id, url, secret_ciphertext) VALUES ($1, 'https://hooks.example.com/in', '\\x00')",
    )
    .bind(webhook)
    .execute(&app.db)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO webhook_deliveries (endpoint_id, event_type, payload, attempts, next_attempt_at, gave_up_at, response_code, last_error)
         VALUES ($1, 'test', '{}', 8, NULL, now(), 500, 'The endpoint answered 500 Internal Server Error.')",
    )
    .bind(webhook)
    .execute(&app.db)
    .await
    .unwrap();
    for (label, path) in [
        ("Users", "/admin/users".to_owned()),
        ("User", format!("/admin/users/{alice_id}")),
        ("Resources", "/admin/resources".to_owned()),
        ("Resource", format!("/admin/resources/{resource}")),
        ("Activities", "/admin/activities".to_owned()),
        ("Activity", format!("/admin/activities/{activity}")),
        (
            "Clone activity",
            format!("/admin/activities/{activity}/clone"),
        ),
        ("Groups", "/admin/groups".to_owned()),
        ("Group", format!("/admin/groups/{group}")),
        ("Profiles", "/admin/profiles".to_owned()),
        ("Profile", format!("/admin/profiles/{profile}")),
        ("Policies", "/admin/policies".to_owned()),
        ("Policy", format!("/admin/policies/{policy}")),
        ("Audit", "/admin/audit".to_owned()),
        ("Service credentials", "/admin/credentials".to_owned()),
        ("Webhooks", "/admin/webhooks".to_owned()),
        ("Webhook", format!("/admin/webhooks/{webhook}")),
        (
            "Webhook deliveries",
            format!("/admin/webhooks/{webhook}/deliveries"),
        ),
    ] {
        c.visit(&carol, &app, &format!("carol: Admin > {label}"), &path)
            .await;
    }
    for kind in [
        "users",
        "resources",
        "activities",
        "groups",
        "profiles",
        "policies",
        "credentials",
        "webhooks",
    ] {
        c.visit(
            &carol,
            &app,
            &format!("carol: Admin > New in {kind}"),
            &format!("/admin/{kind}/new"),
        )
        .await;
        c.submit_error(
            &carol,
            &format!("carol: Admin > New in {kind} (error)"),
            "main form.stacked button.primary",
        )
        .await;
    }
    c.visit(
        &carol,
        &app,
        "carol: Admin > Import",
        "/admin/resources/import",
    )
    .await;
    c.submit_error(
        &carol,
        "carol: Admin > Import (error)",
        "main form.stacked button.primary",
    )
    .await;
    carol
        .fill(
            "#csv",
            "name,kind,platform,address\nimp-01,server,Linux,imp-01.corp.example\n",
        )
        .await;
    let preview = post_form(&carol, "main form.stacked button.primary").await;
    carol.submit("main form.stacked button.primary").await;
    c.check(&carol, "carol: Admin > Import preview", Some(preview))
        .await;
    // A wrong current password (counted as a failed sign-in: carol's only one).
    carol.goto(&app, "/account").await;
    c.submit_error(
        &carol,
        "carol: Account > Password (error)",
        "#password-change button[type=submit]",
    )
    .await;
    carol.close().await;

    Tour {
        pages: c.pages,
        light_background,
        dark_background,
        dark_matched,
        axe_self_check,
    }
}

/// The account and second-factor pages: erin switches a factor on from her account (the
/// code computed from the secret the page shows, as an authenticator app would), signs out and
/// in again with a recovery code; on an instance that requires a factor of everyone, dave is
/// led to set one up at sign-in.
async fn second_factor_pages(c: &mut Checker, app: &TestApp) {
    let erin = Browser::new().await;
    erin.login(app, "erin", DEMO_PASSWORD).await;
    c.visit(&erin, app, "erin: Account (second factor off)", "/account")
        .await;
    erin.fill("#time_zone", "Mars/Olympus").await;
    c.submit_error(
        &erin,
        "erin: Account > Name and time zone (error)",
        "#profile button[type=submit]",
    )
    .await;
    c.visit(
        &erin,
        app,
        "erin: Account > Second factor",
        "/account/second-factor",
    )
    .await;
    erin.fill("#code", "not-a-code").await;
    c.submit_error(
        &erin,
        "erin: Account > Second factor (error)",
        "main form.stacked button.primary",
    )
    .await;
    let code = erin.totp_code().await;
    erin.fill("#code", &code).await;
    erin.submit("main form.stacked button.primary").await;
    let recovery = erin.texts("#recovery-codes li").await;
    assert_eq!(
        recovery.len(),
        10,
        "the factor is on, with its recovery codes"
    );
    c.check(&erin, "erin: Recovery codes", None).await;
    c.visit(&erin, app, "erin: Account (second factor on)", "/account")
        .await;
    erin.submit(r#"form[action="/logout"] button"#).await;
    erin.login(app, "erin", DEMO_PASSWORD).await;
    assert_eq!(erin.path().await, "/login/code");
    c.check(&erin, "erin: Sign in > Code", None).await;
    erin.fill("#code", "not-a-code").await;
    c.submit_error(
        &erin,
        "erin: Sign in > Code (error)",
        r#"form[action="/login/code"] button"#,
    )
    .await;
    erin.fill("#code", &recovery[0]).await;
    erin.submit(r#"form[action="/login/code"] button"#).await;
    assert_eq!(erin.path().await, "/dashboard");
    erin.close().await;

    let mut required = crate::support::settings();
    required.second_factor = portcullis::config::SecondFactorPolicy::Everyone;
    let strict = crate::support::spawn_app_on(app.options.clone(), required).await;
    let dave = Browser::new().await;
    dave.login(&strict, "dave", DEMO_PASSWORD).await;
    assert_eq!(dave.path().await, "/login/enrol");
    c.check(&dave, "dave: Sign in > Set up a second factor", None)
        .await;
    dave.fill("#code", "not-a-code").await;
    c.submit_error(
        &dave,
        "dave: Sign in > Set up a second factor (error)",
        "main form.stacked button.primary",
    )
    .await;
    dave.close().await;
}

/// What axe reports on the current page once an image without a text alternative is added
/// to it (the image is removed again): proof that axe runs and its findings are read.
async fn axe_self_check(browser: &Browser, axe: &str) -> Vec<String> {
    let add = "const img = document.createElement('img'); img.id = 'axe-self-check'; \
               img.src = '/static/favicon.svg'; document.querySelector('main').append(img);";
    browser.client.execute(add, vec![]).await.unwrap();
    let found = axe_violations(browser, axe).await;
    browser
        .client
        .execute(
            "document.getElementById('axe-self-check').remove();",
            vec![],
        )
        .await
        .unwrap();
    found
}

/// The body's background in the light and the dark scheme, and whether dark matched.
async fn scheme_proof(browser: &Browser) -> (String, String, bool) {
    let read = "return [getComputedStyle(document.body).backgroundColor, \
                matchMedia('(prefers-color-scheme: dark)').matches];";
    browser.set_dark_scheme(false).await;
    let light = browser.client.execute(read, vec![]).await.unwrap();
    browser.set_dark_scheme(true).await;
    let dark = browser.client.execute(read, vec![]).await.unwrap();
    browser.set_dark_scheme(false).await;
    (
        light[0].as_str().unwrap_or_default().to_owned(),
        dark[0].as_str().unwrap_or_default().to_owned(),
        dark[1] == Value::Bool(true),
    )
}

#[test]
fn every_page_has_no_serious_or_critical_axe_violation_in_light_and_dark() {
    let tour = tour();
    assert!(
        tour.dark_matched && tour.light_background != tour.dark_background,
        "the dark scheme was not applied: background {} in light, {} in dark",
        tour.light_background,
        tour.dark_background
    );
    assert!(
        tour.axe_self_check.iter().any(|v| v.contains("image-alt")),
        "axe-core missed an image without alt text: {:?}",
        tour.axe_self_check
    );
    let violations: Vec<&String> = tour.pages.iter().flat_map(|p| &p.violations).collect();
    let mut report = String::new();
    for v in &violations {
        let _ = writeln!(report, "{v}");
    }
    assert!(
        violations.is_empty(),
        "{} serious or critical axe violations on {} pages checked:\n{report}",
        violations.len(),
        tour.pages.len()
    );
}

#[test]
fn every_page_is_valid_html() {
    let tour = tour();
    let jar = tool("vnu-jar/build/dist/vnu.jar");
    let dir = tempfile::Builder::new()
        .prefix("portcullis-vnu-")
        .tempdir()
        .unwrap();
    let mut files = Vec::new();
    for (i, page) in tour.pages.iter().enumerate() {
        let file = dir.path().join(format!("page-{i:03}.html"));
        std::fs::write(&file, &page.html).unwrap();
        files.push(file);
    }
    let output = Command::new("java")
        .arg("-jar")
        .arg(&jar)
        .args(["--errors-only", "--format", "json"])
        .args(&files)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run java ({e}): the Nu Html Checker needs Java \
                 (apt-get install default-jre-headless)"
            )
        });
    let text = String::from_utf8_lossy(&output.stderr);
    let report: Value = serde_json::from_str(&text).unwrap_or_else(|e| {
        panic!(
            "the Nu Html Checker said something else than JSON ({e}), exit {}:\n{text}\n{}",
            output.status,
            String::from_utf8_lossy(&output.stdout)
        )
    });
    let mut errors = Vec::new();
    for message in report["messages"].as_array().into_iter().flatten() {
        let url = message["url"].as_str().unwrap_or_default();
        let page = url
            .rsplit_once("page-")
            .and_then(|(_, n)| n.strip_suffix(".html"))
            .and_then(|n| n.parse::<usize>().ok())
            .and_then(|i| tour.pages.get(i));
        let (label, address) = page.map_or(("?", url), |p| (p.label.as_str(), p.url.as_str()));
        errors.push(format!(
            "{label} {address} line {}: {} {}",
            message["lastLine"],
            message["type"].as_str().unwrap_or_default(),
            message["message"].as_str().unwrap_or_default()
        ));
    }
    assert!(
        errors.is_empty(),
        "{} HTML errors on {} pages:\n{}",
        errors.len(),
        tour.pages.len(),
        errors.join("\n")
    );
    assert!(
        output.status.success(),
        "the Nu Html Checker failed: {text}"
    );
}
