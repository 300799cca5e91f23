//! Real access on a real target: an OpenSSH server started by the test (`target_host`), the
//! `linux_ssh` provisioner creating, rotating and removing accounts on it, and the OpenSSH
//! client logging in with the password Reveal shows.

use reqwest::StatusCode;
use uuid::Uuid;

use crate::admin_credentials::create_credential;
use crate::admin_resources::{flashes, id_of};
use crate::support::{
    TestApp, fresh_demo_database, new_client, settings, spawn_app_on, spawn_demo_app,
};
use crate::target_host::TargetHost;
use crate::wizard::{Request, request};

pub(crate) const DEMO: &str = "portcullis-demo";
pub(crate) const ACTIVITY: &str = "Linux break-glass";
const RESOURCE: &str = "lnx-web-01";

/// Points `lnx-web-01` at `host` with the `linux_ssh` provisioner and a service credential
/// for its root account, and gives the break-glass activity a template under the host's
/// reserved prefix.
pub(crate) async fn use_target(app: &TestApp, host: &TargetHost, mode: &str, template: &str) {
    let credential = Uuid::new_v4();
    let sealed = app.secrets.seal(credential, &host.service_key);
    portcullis::db::provisioning::create_credential(
        &app.db,
        &portcullis::db::provisioning::NewCredential {
            id: credential,
            name: "test root",
            username: "root",
            sealed_secret: &sealed,
        },
    )
    .await
    .unwrap();
    sqlx::query(
        "UPDATE resources SET address = '127.0.0.1', port = $1, provisioner = 'linux_ssh',
                credential_id = $2, host_key = $3 WHERE name = $4",
    )
    .bind(i32::from(host.port))
    .bind(credential)
    .bind(&host.host_key)
    .bind(RESOURCE)
    .execute(&app.db)
    .await
    .unwrap();
    use_template(app, mode, template).await;
}

/// Gives the break-glass activity the login account `mode` and `template`.
pub(crate) async fn use_template(app: &TestApp, mode: &str, template: &str) {
    sqlx::query(
        "UPDATE activities SET login_mode = $1::login_account_mode, login_template = $2
         WHERE name = $3",
    )
    .bind(mode)
    .bind(template)
    .bind(ACTIVITY)
    .execute(&app.db)
    .await
    .unwrap();
}

/// alice asks for the break-glass activity on the target; the approval is taken as given
/// (approvals have tests of their own), and the worker runs one pass.
pub(crate) async fn approved_and_granted(app: &TestApp) -> Uuid {
    app.login_with(&app.client, "alice", DEMO).await;
    request(
        app,
        &app.client,
        &Request {
            activity: ACTIVITY,
            policy: None,
            resources: &[RESOURCE],
            notes: "Disk full on the web tier",
            ticket: "",
            at: None,
        },
    )
    .await;
    let id: Uuid =
        sqlx::query_scalar("SELECT id FROM activity_sessions ORDER BY created_at DESC LIMIT 1")
            .fetch_one(&app.db)
            .await
            .unwrap();
    sqlx::query(
        "UPDATE activity_sessions SET status = 'provisioning', current_tier = NULL
         WHERE id = $1 AND status = 'waiting_for_approval'",
    )
    .bind(id)
    .execute(&app.db)
    .await
    .unwrap();
    // Made in the request's own path only for simulated targets: a real one waits for the
    // worker.
    portcullis::worker::provision(&app.db, &app.secrets, Some(&[id]))
        .await
        .unwrap();
    assert_eq!(status(app, id).await, "provisioning");
    portcullis::worker::tick(&app.db, &app.secrets)
        .await
        .unwrap();
    id
}

pub(crate) async fn status(app: &TestApp, id: Uuid) -> String {
    sqlx::query_scalar("SELECT status::text FROM activity_sessions WHERE id = $1")
        .bind(id)
        .fetch_one(&app.db)
        .await
        .unwrap()
}

pub(crate) async fn account(app: &TestApp, id: Uuid) -> String {
    sqlx::query_scalar("SELECT login_account FROM activity_sessions WHERE id = $1")
        .bind(id)
        .fetch_one(&app.db)
        .await
        .unwrap()
}

pub(crate) async fn events(app: &TestApp, id: Uuid) -> Vec<(String, String)> {
    sqlx::query_as(
        "SELECT kind::text, comment FROM session_events WHERE session_id = $1 ORDER BY id",
    )
    .bind(id)
    .fetch_all(&app.db)
    .await
    .unwrap()
}

pub(crate) async fn reveal(app: &TestApp, id: Uuid) -> String {
    let page = app.post(&format!("/sessions/{id}/reveal"), &[]).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    page.texts("#password").pop().expect("a revealed password")
}

pub(crate) async fn end(app: &TestApp, id: Uuid) {
    app.post(
        "/dashboard/end",
        &[("id", &id.to_string()), ("confirm", "yes")],
    )
    .await;
    assert_eq!(status(app, id).await, "completed");
}

#[tokio::test]
async fn an_ephemeral_account_exists_on_the_target_for_the_window_and_is_gone_after_end() {
    let host = TargetHost::start();
    let app = spawn_demo_app().await;
    use_target(
        &app,
        &host,
        "ephemeral",
        &format!("{}-{{session}}", host.prefix),
    )
    .await;
    sqlx::query("UPDATE activities SET target_groups = '{adm}' WHERE name = $1")
        .bind(ACTIVITY)
        .execute(&app.db)
        .await
        .unwrap();

    let id = approved_and_granted(&app).await;
    assert_eq!(
        status(&app, id).await,
        "available",
        "{:?}",
        events(&app, id).await
    );
    let name = account(&app, id).await;
    assert!(name.starts_with(&host.prefix));
    assert!(
        TargetHost::account_exists(&name),
        "{name} exists on the target"
    );
    assert!(TargetHost::groups_of(&name).split(' ').any(|g| g == "adm"));
    let granted = events(&app, id).await;
    assert!(
        granted.iter().any(|(k, c)| k == "access_granted"
            && c.contains(&format!(
                "Created account {name} on 127.0.0.1:{}",
                host.port
            ))
            && c.contains("adm")),
        "{granted:?}"
    );

    // The password Reveal shows is the one that works on the target.
    let password = reveal(&app, id).await;
    assert_eq!(
        host.login_with_password(&name, &password).as_deref(),
        Some(name.as_str())
    );
    assert_eq!(host.login_with_password(&name, "wrong-password"), None);

    end(&app, id).await;
    portcullis::worker::tick(&app.db, &app.secrets)
        .await
        .unwrap();
    assert!(!TargetHost::account_exists(&name), "{name} was removed");
    assert_eq!(host.login_with_password(&name, &password), None);
    let ended = events(&app, id).await;
    assert!(
        ended
            .iter()
            .any(|(k, c)| k == "access_removed" && c.contains(&format!("Removed account {name}"))),
        "{ended:?}"
    );
    // No secret on the record.
    assert!(ended.iter().all(|(_, c)| !c.contains(&password)));
}

#[tokio::test]
async fn a_managed_accounts_revealed_password_stops_working_when_the_session_ends() {
    let host = TargetHost::start();
    let app = spawn_demo_app().await;
    let shared = format!("{}-shared", host.prefix);
    host.make_account(&shared, "Before-the-session-1");
    use_target(&app, &host, "managed", &shared).await;

    let id = approved_and_granted(&app).await;
    assert_eq!(
        status(&app, id).await,
        "available",
        "{:?}",
        events(&app, id).await
    );
    assert_eq!(
        host.login_with_password(&shared, "Before-the-session-1"),
        None
    );
    let password = reveal(&app, id).await;
    assert_eq!(
        host.login_with_password(&shared, &password).as_deref(),
        Some(shared.as_str())
    );

    end(&app, id).await;
    portcullis::worker::tick(&app.db, &app.secrets)
        .await
        .unwrap();
    assert!(
        TargetHost::account_exists(&shared),
        "a managed account stays"
    );
    assert_eq!(host.login_with_password(&shared, &password), None);
}

#[tokio::test]
async fn an_unreachable_target_at_the_end_leaves_access_removal_pending_until_it_returns() {
    let mut host = TargetHost::start();
    let app = spawn_demo_app().await;
    use_target(
        &app,
        &host,
        "ephemeral",
        &format!("{}-{{session}}", host.prefix),
    )
    .await;
    let id = approved_and_granted(&app).await;
    let name = account(&app, id).await;
    assert!(TargetHost::account_exists(&name));

    host.stop();
    end(&app, id).await;
    portcullis::worker::tick(&app.db, &app.secrets)
        .await
        .unwrap();
    let pending = portcullis::db::provisioning::pending_removal(&app.db, id)
        .await
        .unwrap()
        .expect("the removal is pending");
    assert_eq!(pending.account, name);
    assert!(
        pending
            .last_error
            .as_deref()
            .unwrap_or("")
            .contains("could not reach 127.0.0.1"),
        "{pending:?}"
    );
    assert!(
        TargetHost::account_exists(&name),
        "still there: the target was down"
    );
    assert!(
        events(&app, id)
            .await
            .iter()
            .any(|(k, c)| k == "access_removal_failed" && c.starts_with("Access removal pending")),
    );
    assert_eq!(
        portcullis::db::provisioning::pending_removals(&app.db)
            .await
            .unwrap(),
        1
    );

    // Back again: the retry (after its backoff, moved forward here) removes the account.
    host.launch();
    sqlx::query("UPDATE provision_steps SET next_attempt_at = now() WHERE session_id = $1")
        .bind(id)
        .execute(&app.db)
        .await
        .unwrap();
    portcullis::worker::tick(&app.db, &app.secrets)
        .await
        .unwrap();
    assert!(!TargetHost::account_exists(&name));
    assert!(
        portcullis::db::provisioning::pending_removal(&app.db, id)
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn a_changed_host_key_fails_the_grant_with_its_reason_and_creates_nothing() {
    let host = TargetHost::start();
    let other = TargetHost::start();
    let app = spawn_demo_app().await;
    use_target(
        &app,
        &host,
        "ephemeral",
        &format!("{}-{{session}}", host.prefix),
    )
    .await;
    sqlx::query("UPDATE resources SET host_key = $1 WHERE name = $2")
        .bind(&other.host_key)
        .bind(RESOURCE)
        .execute(&app.db)
        .await
        .unwrap();

    let id = approved_and_granted(&app).await;
    assert_eq!(status(&app, id).await, "failed");
    let log = events(&app, id).await;
    assert!(
        log.iter().any(|(k, c)| k == "provisioning_failed"
            && c.contains("does not match the pinned key")),
        "{log:?}"
    );
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap();
    assert!(!passwd.contains(&host.prefix), "no account was made");
    // The requester reads the reason on the session's page.
    let page = app.get(&format!("/sessions/{id}")).await;
    assert!(
        page.body.contains("does not match the pinned key"),
        "{}",
        page.body
    );
}

#[tokio::test]
async fn a_hostile_account_name_is_refused_before_the_target_sees_it() {
    let host = TargetHost::start();
    let app = spawn_demo_app().await;
    // Stored directly: the admin forms refuse such a template before this point.
    use_target(&app, &host, "managed", "x;touch /tmp/pcs-pwned").await;
    let id = approved_and_granted(&app).await;
    assert_eq!(status(&app, id).await, "failed");
    let log = events(&app, id).await;
    assert!(
        log.iter().any(|(k, c)| k == "provisioning_failed"
            && c.contains("the login account name \"x;touch /tmp/pcs-pwned\"")),
        "{log:?}"
    );
    assert!(!std::path::Path::new("/tmp/pcs-pwned").exists());
    // No step was recorded: the target was never contacted.
    let steps: i64 =
        sqlx::query_scalar("SELECT count(*) FROM provision_steps WHERE session_id = $1")
            .bind(id)
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(steps, 0);
}

#[tokio::test]
async fn a_grant_that_fails_halfway_is_undone() {
    let host = TargetHost::start();
    let app = spawn_demo_app().await;
    use_target(
        &app,
        &host,
        "ephemeral",
        &format!("{}-{{session}}", host.prefix),
    )
    .await;
    // The account is made, then joining a group that does not exist fails.
    sqlx::query("UPDATE activities SET target_groups = '{nosuchgroupxyz}' WHERE name = $1")
        .bind(ACTIVITY)
        .execute(&app.db)
        .await
        .unwrap();
    let id = approved_and_granted(&app).await;
    assert_eq!(status(&app, id).await, "failed");
    let name = format!(
        "{}-{}",
        host.prefix,
        portcullis::domain::provision::short_id(id)
    );
    // The failure queued the removal of what was made; the next pass does it.
    portcullis::worker::tick(&app.db, &app.secrets)
        .await
        .unwrap();
    assert!(
        !TargetHost::account_exists(&name),
        "{:?}",
        events(&app, id).await
    );
}

#[tokio::test]
async fn disabling_the_requester_removes_their_account_from_the_target() {
    let host = TargetHost::start();
    let app = spawn_demo_app().await;
    use_target(
        &app,
        &host,
        "ephemeral",
        &format!("{}-{{session}}", host.prefix),
    )
    .await;
    let id = approved_and_granted(&app).await;
    let name = account(&app, id).await;
    assert!(TargetHost::account_exists(&name));

    let alice: Uuid = sqlx::query_scalar("SELECT id FROM users WHERE username = 'alice'")
        .fetch_one(&app.db)
        .await
        .unwrap();
    let admin = crate::support::new_client();
    app.login_with(&admin, "carol", DEMO).await;
    app.post_with(&admin, &format!("/admin/users/{alice}/disable"), &[])
        .await;
    assert_eq!(status(&app, id).await, "canceled");
    portcullis::worker::tick(&app.db, &app.secrets)
        .await
        .unwrap();
    assert!(
        !TargetHost::account_exists(&name),
        "{:?}",
        events(&app, id).await
    );
}

/// The value of the input `id` on `page`.
fn input_value(page: &crate::support::Page, id: &str) -> String {
    page.html()
        .select(&scraper::Selector::parse(&format!("#{id}")).unwrap())
        .next()
        .and_then(|e| e.value().attr("value").map(str::to_owned))
        .unwrap_or_default()
}

#[tokio::test]
async fn a_resource_set_up_through_its_form_with_a_fetched_host_key_grants_on_the_real_target() {
    let host = TargetHost::start();
    let app = spawn_demo_app().await;
    app.login_with(&app.client, "carol", DEMO).await;
    let credential = create_credential(&app, "web tier root", "root", &host.service_key).await;
    let resource = id_of(&app, "resources", RESOURCE).await;
    let path = format!("/admin/resources/{resource}");
    let port = host.port.to_string();
    let credential = credential.to_string();
    let form = |provisioner: &'static str, credential: &str, host_key: &str, go: &'static str| {
        vec![
            ("name", RESOURCE.to_owned()),
            ("kind", "server".to_owned()),
            ("platform", "Linux".to_owned()),
            ("address", "127.0.0.1".to_owned()),
            ("port", port.clone()),
            ("description", String::new()),
            ("provisioner", provisioner.to_owned()),
            ("credential", credential.to_owned()),
            ("host_key", host_key.to_owned()),
            ("go", go.to_owned()),
        ]
    };
    let post = |fields: Vec<(&'static str, String)>| {
        let app = &app;
        let path = path.clone();
        async move {
            let form: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
            app.post(&path, &form).await
        }
    };

    // Linux over SSH without a credential or host key: a message at each, nothing saved.
    let page = post(form("linux_ssh", "", "", "save")).await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(page.texts("#credential-error").len(), 1);
    assert_eq!(page.texts("#host_key-error").len(), 1);
    let stored: String =
        sqlx::query_scalar("SELECT provisioner::text FROM resources WHERE id = $1")
            .bind(resource)
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(stored, "simulated");

    // Fetch host key asks the real sshd and fills the field with the key it offers.
    let page = post(form("linux_ssh", &credential, "", "fetch_host_key")).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert_eq!(input_value(&page, "host_key"), host.host_key);
    let fingerprint = portcullis::domain::target_access::fingerprint(&host.host_key).unwrap();
    assert!(
        page.texts("#fetched-keys li")
            .iter()
            .any(|k| k.starts_with(&fingerprint)),
        "{:?}",
        page.texts("#fetched-keys")
    );

    let page = post(form("linux_ssh", &credential, &host.host_key, "save")).await;
    assert_eq!(flashes(&app, &page).await, [format!("Saved {RESOURCE}.")]);
    let shown = app.get(&path).await;
    assert_eq!(
        shown.texts("#host_key-fingerprint"),
        [format!("Pinned fingerprint: {fingerprint}")]
    );
    let list = app.get("/admin/resources?q=lnx-web-01").await;
    assert!(
        list.texts("#resources td")
            .contains(&"Linux over SSH".to_owned())
    );

    // And a session on it is granted on the target, and said so where alice connects.
    use_template(&app, "ephemeral", &format!("{}-{{session}}", host.prefix)).await;
    app.post("/logout", &[]).await;
    let id = approved_and_granted(&app).await;
    assert_eq!(
        status(&app, id).await,
        "available",
        "{:?}",
        events(&app, id).await
    );
    let name = account(&app, id).await;
    assert!(TargetHost::account_exists(&name));
    let connect = app.get(&format!("/sessions/{id}/connect")).await;
    assert_eq!(
        connect.texts("#account-note"),
        [format!(
            "Account {name} on {RESOURCE} (created for this session, removed at the end)."
        )]
    );
    end(&app, id).await;
    portcullis::worker::tick(&app.db, &app.secrets)
        .await
        .unwrap();
    assert!(!TargetHost::account_exists(&name));
}

#[tokio::test]
async fn administrators_see_access_removal_pending_on_the_dashboard_the_session_and_in_metrics() {
    let mut host = TargetHost::start();
    let mut with_token = settings();
    with_token.metrics_token = Some("h6-metrics-token".into());
    let app = spawn_app_on(fresh_demo_database().await, with_token).await;
    use_target(
        &app,
        &host,
        "ephemeral",
        &format!("{}-{{session}}", host.prefix),
    )
    .await;
    let id = approved_and_granted(&app).await;
    let name = account(&app, id).await;
    host.stop();
    end(&app, id).await;
    portcullis::worker::tick(&app.db, &app.secrets)
        .await
        .unwrap();

    let admin = new_client();
    app.login_with(&admin, "carol", DEMO).await;
    let all = app
        .get_with(&admin, "/dashboard/historical?scope=all")
        .await;
    assert!(
        all.texts(".removal-pending")
            .contains(&"Access removal pending".to_owned()),
        "{}",
        all.body
    );
    let own = app.get("/dashboard/historical").await;
    assert!(
        own.texts(".removal-pending").is_empty(),
        "the requester's view is unchanged"
    );
    let details = app.get_with(&admin, &format!("/sessions/{id}")).await;
    let banner = details.texts("#removal-pending").join(" ");
    assert!(banner.contains("Access removal pending"), "{banner}");
    assert!(banner.contains(&name), "{banner}");
    assert!(banner.contains("could not reach 127.0.0.1"), "{banner}");
    assert!(banner.contains("Attempts: 1"), "{banner}");
    let mine = app.get(&format!("/sessions/{id}")).await;
    assert!(
        mine.texts("#removal-pending").is_empty(),
        "for administrators"
    );
    let metric = |text: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix("portcullis_access_removals_pending "))
            .map(str::to_owned)
    };
    let scrape = || async {
        app.client
            .get(app.url("/metrics"))
            .bearer_auth("h6-metrics-token")
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    };
    assert_eq!(metric(&scrape().await).as_deref(), Some("1"));

    host.launch();
    sqlx::query("UPDATE provision_steps SET next_attempt_at = now() WHERE session_id = $1")
        .bind(id)
        .execute(&app.db)
        .await
        .unwrap();
    portcullis::worker::tick(&app.db, &app.secrets)
        .await
        .unwrap();
    assert_eq!(metric(&scrape().await).as_deref(), Some("0"));
    let all = app
        .get_with(&admin, "/dashboard/historical?scope=all")
        .await;
    assert!(all.texts(".removal-pending").is_empty());
}
