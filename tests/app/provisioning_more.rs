//! The `postgresql` and `command` provisioners on real targets: a login role made on the test
//! cluster itself (reached over TCP on 127.0.0.1 through a small forwarder to its Unix
//! socket, with password authentication required for the roles the test makes), and small
//! executables written by the test and declared in a provisioners file.

use std::path::{Path, PathBuf};

use reqwest::StatusCode;
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection};
use uuid::Uuid;

use portcullis::provision::command::Provisioners;

use crate::support::{TestApp, new_client, spawn_demo_app};
use crate::wizard::{Request, request};

const DEMO: &str = "portcullis-demo";
const ACTIVITY: &str = "Linux break-glass";
const RESOURCE: &str = "lnx-web-01";
/// Roles in this group must give a password on the test cluster's socket (`pg_hba.conf`).
const PASSWORD_GROUP: &str = "pcq_password_login";
const SERVICE_PASSWORD: &str = "Service-Pass-1";

fn letters() -> String {
    let letters: String = Uuid::new_v4()
        .simple()
        .to_string()
        .chars()
        .filter(char::is_ascii_lowercase)
        .take(5)
        .collect();
    format!("pcq{letters:a<5}")
}

/// alice asks for the activity on the resource; the approval is taken as given, and the
/// worker runs one pass with `provisioners`.
async fn approved_and_granted(app: &TestApp, provisioners: &Provisioners) -> Uuid {
    app.login_with(&app.client, "alice", DEMO).await;
    request(
        app,
        &app.client,
        &Request {
            activity: ACTIVITY,
            policy: None,
            resources: &[RESOURCE],
            notes: "Reporting database needs a fix",
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
    tick(app, provisioners).await;
    id
}

async fn tick(app: &TestApp, provisioners: &Provisioners) {
    portcullis::worker::tick_with(&app.db, &app.secrets, provisioners)
        .await
        .unwrap();
}

async fn status(app: &TestApp, id: Uuid) -> String {
    sqlx::query_scalar("SELECT status::text FROM activity_sessions WHERE id = $1")
        .bind(id)
        .fetch_one(&app.db)
        .await
        .unwrap()
}

async fn account(app: &TestApp, id: Uuid) -> String {
    sqlx::query_scalar("SELECT login_account FROM activity_sessions WHERE id = $1")
        .bind(id)
        .fetch_one(&app.db)
        .await
        .unwrap()
}

async fn events(app: &TestApp, id: Uuid) -> Vec<(String, String)> {
    sqlx::query_as(
        "SELECT kind::text, comment FROM session_events WHERE session_id = $1 ORDER BY id",
    )
    .bind(id)
    .fetch_all(&app.db)
    .await
    .unwrap()
}

async fn reveal(app: &TestApp, id: Uuid) -> String {
    let page = app.post(&format!("/sessions/{id}/reveal"), &[]).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    page.texts("#password").pop().expect("a revealed password")
}

async fn end(app: &TestApp, id: Uuid) {
    app.post(
        "/dashboard/end",
        &[("id", &id.to_string()), ("confirm", "yes")],
    )
    .await;
    assert_eq!(status(app, id).await, "completed");
}

async fn set_activity(app: &TestApp, mode: &str, template: &str, groups: &[String]) {
    sqlx::query(
        "UPDATE activities SET login_mode = $1::login_account_mode, login_template = $2,
                target_groups = $3
         WHERE name = $4",
    )
    .bind(mode)
    .bind(template)
    .bind(groups)
    .bind(ACTIVITY)
    .execute(&app.db)
    .await
    .unwrap();
}

// ---- PostgreSQL ------------------------------------------------------------------------

/// Forwards TCP connections on a loopback port to the test cluster's Unix socket, so that the
/// provisioner reaches it as it would a remote server. Dropping it stops the forwarding.
struct Forwarder {
    port: u16,
    task: tokio::task::JoinHandle<()>,
}

impl Forwarder {
    async fn start(socket: PathBuf) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let task = tokio::spawn(async move {
            while let Ok((mut tcp, _)) = listener.accept().await {
                let socket = socket.clone();
                tokio::spawn(async move {
                    if let Ok(mut unix) = tokio::net::UnixStream::connect(&socket).await {
                        let _ = tokio::io::copy_bidirectional(&mut tcp, &mut unix).await;
                    }
                });
            }
        });
        Self { port, task }
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        self.task.abort();
    }
}

static HBA: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Makes members of `PASSWORD_GROUP` authenticate with a password on the cluster's socket
/// (everyone else keeps the test cluster's trust), once per cluster.
async fn require_passwords(admin: &mut PgConnection) {
    let _ = sqlx::query(&format!("CREATE ROLE {PASSWORD_GROUP} NOLOGIN"))
        .execute(&mut *admin)
        .await;
    let hba_file: String = sqlx::query_scalar("SHOW hba_file")
        .fetch_one(&mut *admin)
        .await
        .unwrap();
    let line = format!("local all +{PASSWORD_GROUP} scram-sha-256\n");
    let changed = {
        let _guard = HBA.lock().unwrap();
        let text = std::fs::read_to_string(&hba_file).unwrap_or_else(|e| {
            panic!(
                "the PostgreSQL provisioning tests change the test server's pg_hba.conf ({hba_file}: {e}): \
                 run them on the suite's own cluster (without DATABASE_URL) or on a server on this machine"
            )
        });
        if text.contains(&line) {
            false
        } else {
            std::fs::write(&hba_file, format!("{line}{text}")).unwrap();
            true
        }
    };
    if changed {
        sqlx::query("SELECT pg_reload_conf()")
            .execute(&mut *admin)
            .await
            .unwrap();
    }
}

/// The test cluster as a PostgreSQL target, with a service role made for the test.
struct PgTarget {
    prefix: String,
    service: String,
    reader: String,
    database: String,
    forwarder: Forwarder,
    admin: PgConnection,
}

impl PgTarget {
    async fn start(app: &TestApp) -> Self {
        let mut admin = PgConnection::connect_with(&app.options).await.unwrap();
        require_passwords(&mut admin).await;
        let prefix = letters();
        let service = format!("{prefix}_svc");
        let reader = format!("{prefix}_reader");
        // A real service role: not a superuser, only CREATEROLE, and ADMIN of the roles it
        // hands out.
        for sql in [
            format!("CREATE ROLE {service} LOGIN CREATEROLE PASSWORD '{SERVICE_PASSWORD}'"),
            format!("CREATE ROLE {reader} NOLOGIN"),
            format!("GRANT {reader}, {PASSWORD_GROUP} TO {service} WITH ADMIN OPTION"),
            format!("CREATE SCHEMA {prefix}_work"),
            format!("GRANT USAGE, CREATE ON SCHEMA {prefix}_work TO {reader}"),
        ] {
            sqlx::query(&sql).execute(&mut admin).await.unwrap();
        }
        let socket = app
            .options
            .get_socket()
            .expect("the test cluster listens on a socket")
            .join(format!(".s.PGSQL.{}", app.options.get_port()));
        let forwarder = Forwarder::start(socket).await;
        let database = app.options.get_database().unwrap().to_owned();
        Self {
            prefix,
            service,
            reader,
            database,
            forwarder,
            admin,
        }
    }

    /// Points the resource at this target with a credential for the service role, and
    /// makes the activity ephemeral roles in the reader and password-login roles.
    async fn use_for(&self, app: &TestApp, owned: &str) {
        let credential = Uuid::new_v4();
        let sealed = app.secrets.seal(credential, SERVICE_PASSWORD);
        portcullis::db::provisioning::create_credential(
            &app.db,
            &portcullis::db::provisioning::NewCredential {
                id: credential,
                name: "test postgres",
                username: &self.service,
                sealed_secret: &sealed,
            },
        )
        .await
        .unwrap();
        sqlx::query(
            "UPDATE resources SET address = '127.0.0.1', port = $1, provisioner = 'postgresql',
                    credential_id = $2, host_key = NULL, database_name = $3 WHERE name = $4",
        )
        .bind(i32::from(self.forwarder.port))
        .bind(credential)
        .bind(&self.database)
        .bind(RESOURCE)
        .execute(&app.db)
        .await
        .unwrap();
        set_activity(
            app,
            "ephemeral",
            &format!("{}-{{session}}", self.prefix),
            &[PASSWORD_GROUP.to_owned(), self.reader.clone()],
        )
        .await;
        sqlx::query(
            "UPDATE activities SET owned_objects = $1::owned_objects_action WHERE name = $2",
        )
        .bind(owned)
        .bind(ACTIVITY)
        .execute(&app.db)
        .await
        .unwrap();
    }

    async fn connect_as(&self, role: &str, password: &str) -> Result<PgConnection, sqlx::Error> {
        let options = PgConnectOptions::new()
            .host("127.0.0.1")
            .port(self.forwarder.port)
            .username(role)
            .password(password)
            .database(&self.database);
        PgConnection::connect_with(&options).await
    }

    async fn role_exists(&mut self, role: &str) -> bool {
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)")
            .bind(role)
            .fetch_one(&mut self.admin)
            .await
            .unwrap()
    }

    async fn valid_until(&mut self, role: &str) -> time::OffsetDateTime {
        sqlx::query_scalar("SELECT rolvaliduntil FROM pg_roles WHERE rolname = $1")
            .bind(role)
            .fetch_one(&mut self.admin)
            .await
            .unwrap()
    }

    async fn table_owner(&mut self, table: &str) -> Option<String> {
        sqlx::query_scalar(
            "SELECT tableowner::text FROM pg_tables WHERE schemaname = $1 AND tablename = $2",
        )
        .bind(format!("{}_work", self.prefix))
        .bind(table)
        .fetch_optional(&mut self.admin)
        .await
        .unwrap()
    }

    /// Removes what the test made on the cluster (the roles are cluster-wide).
    async fn clean(mut self) {
        let roles: Vec<String> = sqlx::query_scalar(
            "SELECT rolname::text FROM pg_roles WHERE rolname LIKE $1 || '%' AND rolname <> $2",
        )
        .bind(&self.prefix)
        .bind(&self.service)
        .fetch_all(&mut self.admin)
        .await
        .unwrap();
        let _ = sqlx::query(&format!("DROP SCHEMA {}_work CASCADE", self.prefix))
            .execute(&mut self.admin)
            .await;
        for role in roles.iter().chain([&self.service]) {
            let _ = sqlx::query(&format!("DROP OWNED BY \"{role}\""))
                .execute(&mut self.admin)
                .await;
            let _ = sqlx::query(&format!("DROP ROLE \"{role}\""))
                .execute(&mut self.admin)
                .await;
        }
    }
}

#[tokio::test]
async fn a_postgresql_role_works_with_the_revealed_password_is_extended_and_is_dropped_at_the_end()
{
    let app = spawn_demo_app().await;
    let mut target = PgTarget::start(&app).await;
    target.use_for(&app, "drop").await;
    let none = Provisioners::default();

    let id = approved_and_granted(&app, &none).await;
    assert_eq!(
        status(&app, id).await,
        "available",
        "{:?}",
        events(&app, id).await
    );
    let role = account(&app, id).await;
    assert!(role.starts_with(&target.prefix), "{role}");
    let log = events(&app, id).await;
    assert!(
        log.iter()
            .any(|(k, c)| k == "access_granted" && c.contains(&format!("Created role {role}"))),
        "{log:?}"
    );

    // The revealed password works, and a wrong one does not (passwords are checked).
    let password = reveal(&app, id).await;
    assert!(target.connect_as(&role, "wrong-password").await.is_err());
    let mut session = target.connect_as(&role, &password).await.unwrap();
    let who: String = sqlx::query_scalar("SELECT current_user::text")
        .fetch_one(&mut session)
        .await
        .unwrap();
    assert_eq!(who, role);
    // It is in the activity's role, and makes something of its own there.
    sqlx::query(&format!(
        "CREATE TABLE {}_work.scratch (x int)",
        target.prefix
    ))
    .execute(&mut session)
    .await
    .unwrap();
    assert_eq!(
        target.table_owner("scratch").await.as_deref(),
        Some(role.as_str())
    );

    // VALID UNTIL is the session's end, and follows an extension.
    let ends: time::OffsetDateTime =
        sqlx::query_scalar("SELECT ends_at FROM activity_sessions WHERE id = $1")
            .bind(id)
            .fetch_one(&app.db)
            .await
            .unwrap();
    let before = target.valid_until(&role).await;
    assert!(
        (ends - before).abs() < time::Duration::seconds(5),
        "{ends} {before}"
    );
    let carol = new_client();
    app.login_with(&carol, "carol", DEMO).await;
    app.post_with(&carol, &format!("/sessions/{id}/extend"), &[])
        .await;
    tick(&app, &none).await;
    let after = target.valid_until(&role).await;
    assert!(
        after - before >= time::Duration::minutes(29),
        "{before} -> {after}"
    );

    // The end: its open session is ended, the role and what it owned are gone.
    end(&app, id).await;
    tick(&app, &none).await;
    assert!(
        !target.role_exists(&role).await,
        "{:?}",
        events(&app, id).await
    );
    assert!(
        sqlx::query("SELECT 1").execute(&mut session).await.is_err(),
        "its open connection was ended"
    );
    assert!(target.connect_as(&role, &password).await.is_err());
    assert_eq!(target.table_owner("scratch").await, None);
    let ended = events(&app, id).await;
    assert!(
        ended
            .iter()
            .any(|(k, c)| k == "access_removed" && c.contains(&format!("Dropped role {role}"))),
        "{ended:?}"
    );
    assert!(ended.iter().all(|(_, c)| !c.contains(&password)));
    target.clean().await;
}

#[tokio::test]
async fn an_unreachable_postgresql_server_at_the_end_leaves_removal_pending_then_reassigns() {
    let app = spawn_demo_app().await;
    let mut target = PgTarget::start(&app).await;
    target.use_for(&app, "reassign").await;
    let none = Provisioners::default();
    let id = approved_and_granted(&app, &none).await;
    let role = account(&app, id).await;
    let password = reveal(&app, id).await;
    let mut session = target.connect_as(&role, &password).await.unwrap();
    sqlx::query(&format!("CREATE TABLE {}_work.kept (x int)", target.prefix))
        .execute(&mut session)
        .await
        .unwrap();
    session.close().await.unwrap();

    // The server cannot be reached when the session ends: a closed port.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port();
    sqlx::query("UPDATE provision_steps SET port = $1 WHERE session_id = $2")
        .bind(i32::from(closed))
        .bind(id)
        .execute(&app.db)
        .await
        .unwrap();
    end(&app, id).await;
    tick(&app, &none).await;
    let pending = portcullis::db::provisioning::pending_removal(&app.db, id)
        .await
        .unwrap()
        .expect("the removal is pending");
    assert!(
        pending
            .last_error
            .as_deref()
            .unwrap_or("")
            .contains("could not reach 127.0.0.1"),
        "{pending:?}"
    );
    assert!(target.role_exists(&role).await, "still there: unreachable");

    // Reachable again: the retry drops the role and hands its table to the service role.
    sqlx::query(
        "UPDATE provision_steps SET port = $1, next_attempt_at = now() WHERE session_id = $2",
    )
    .bind(i32::from(target.forwarder.port))
    .bind(id)
    .execute(&app.db)
    .await
    .unwrap();
    tick(&app, &none).await;
    assert!(
        !target.role_exists(&role).await,
        "{:?}",
        events(&app, id).await
    );
    assert_eq!(
        target.table_owner("kept").await.as_deref(),
        Some(target.service.as_str())
    );
    assert!(
        portcullis::db::provisioning::pending_removal(&app.db, id)
            .await
            .unwrap()
            .is_none()
    );
    target.clean().await;
}

#[tokio::test]
async fn a_postgresql_resource_refuses_managed_accounts_before_contacting_the_server() {
    let app = spawn_demo_app().await;
    let mut target = PgTarget::start(&app).await;
    target.use_for(&app, "drop").await;
    // A shared account must never be dropped at the end: refused, nothing recorded.
    set_activity(&app, "managed", &format!("{}_shared", target.prefix), &[]).await;
    let id = approved_and_granted(&app, &Provisioners::default()).await;
    assert_eq!(status(&app, id).await, "failed");
    let log = events(&app, id).await;
    assert!(
        log.iter().any(|(k, c)| k == "provisioning_failed"
            && c.contains("the postgresql provisioner makes ephemeral roles only")),
        "{log:?}"
    );
    let steps: i64 =
        sqlx::query_scalar("SELECT count(*) FROM provision_steps WHERE session_id = $1")
            .bind(id)
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(steps, 0);
    assert!(
        !target
            .role_exists(&format!("{}_shared", target.prefix))
            .await
    );
    target.clean().await;
}

// ---- Commands ----------------------------------------------------------------------------

/// Writes an executable script into `dir`.
fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// A provisioners file declaring `ad` as `path` with `args`, read the way the server reads it.
fn provisioners(dir: &Path, path: &Path, args: &[&str], timeout: u64) -> Provisioners {
    let file = dir.join("provisioners.toml");
    let args: Vec<String> = args.iter().map(|a| format!("{a:?}")).collect();
    std::fs::write(
        &file,
        format!(
            "[commands.ad]\npath = {:?}\nargs = [{}]\ntimeout_seconds = {timeout}\n",
            path.display().to_string(),
            args.join(", ")
        ),
    )
    .unwrap();
    Provisioners::load(&file).unwrap()
}

async fn use_command(app: &TestApp, name: &str) {
    sqlx::query(
        "UPDATE resources SET provisioner = 'command', provisioner_command = $1,
                credential_id = NULL, host_key = NULL WHERE name = $2",
    )
    .bind(name)
    .bind(RESOURCE)
    .execute(&app.db)
    .await
    .unwrap();
    set_activity(
        app,
        "ephemeral",
        "pc-{username}-{session}",
        &["sudo".to_owned()],
    )
    .await;
}

#[tokio::test]
async fn a_command_grants_with_its_own_account_and_password_and_revokes_the_same_account() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("calls.log");
    let path = script(
        dir.path(),
        "ad.sh",
        "cat >> \"$1\"\necho >> \"$1\"\nenv > \"$1.env\"\n\
         printf '%s' '{\"login_account\": \"CORP\\\\alice-jit\", \"password\": \"From-The-Command-1\"}'\n",
    );
    let commands = provisioners(dir.path(), &path, &[&log.display().to_string()], 10);
    let app = spawn_demo_app().await;
    use_command(&app, "ad").await;

    let id = approved_and_granted(&app, &commands).await;
    assert_eq!(
        status(&app, id).await,
        "available",
        "{:?}",
        events(&app, id).await
    );
    assert_eq!(account(&app, id).await, r"CORP\alice-jit");
    assert_eq!(reveal(&app, id).await, "From-The-Command-1");
    // It ran without the server's environment (which holds its secrets), PATH aside.
    let env = std::fs::read_to_string(dir.path().join("calls.log.env")).unwrap();
    assert!(env.lines().any(|l| l.starts_with("PATH=")), "{env}");
    assert!(std::env::vars().any(|(k, _)| k.starts_with("CARGO")));
    assert!(!env.lines().any(|l| l.starts_with("CARGO")), "{env}");
    let calls = std::fs::read_to_string(&log).unwrap();
    let grant: serde_json::Value = serde_json::from_str(calls.lines().next().unwrap()).unwrap();
    assert_eq!(grant["action"], "grant");
    assert_eq!(grant["session"], id.to_string());
    assert_eq!(grant["resource"]["name"], RESOURCE);
    assert_eq!(grant["mode"], "ephemeral");
    assert_eq!(grant["activity"], ACTIVITY);
    assert_eq!(grant["groups"], serde_json::json!(["sudo"]));
    let first_end = grant["window"]["end"].as_str().unwrap().to_owned();

    // An extension calls it with the new end.
    let carol = new_client();
    app.login_with(&carol, "carol", DEMO).await;
    app.post_with(&carol, &format!("/sessions/{id}/extend"), &[])
        .await;
    tick(&app, &commands).await;
    let calls = std::fs::read_to_string(&log).unwrap();
    let extend: serde_json::Value = serde_json::from_str(calls.lines().nth(1).unwrap()).unwrap();
    assert_eq!(extend["action"], "extend");
    assert_eq!(extend["account"], r"CORP\alice-jit");
    let moved = |s: &str| {
        time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).unwrap()
    };
    assert!(
        moved(extend["window"]["end"].as_str().unwrap()) - moved(&first_end)
            >= time::Duration::minutes(29),
        "{calls}"
    );
    // Told once: another pass does not call it again.
    tick(&app, &commands).await;
    assert_eq!(std::fs::read_to_string(&log).unwrap().lines().count(), 2);

    end(&app, id).await;
    tick(&app, &commands).await;
    let calls = std::fs::read_to_string(&log).unwrap();
    let revoke: serde_json::Value = serde_json::from_str(calls.lines().nth(2).unwrap()).unwrap();
    assert_eq!(revoke["action"], "revoke");
    assert_eq!(revoke["account"], r"CORP\alice-jit");
    assert!(
        portcullis::db::provisioning::pending_removal(&app.db, id)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        events(&app, id)
            .await
            .iter()
            .any(|(k, c)| k == "access_removed" && c.contains(r"CORP\alice-jit")),
    );
}

#[tokio::test]
async fn a_command_that_fails_hangs_or_answers_garbage_fails_the_session_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "no.sh",
            "cat >/dev/null\necho 'starting' >&2\necho 'AD said: no such OU' >&2\nexit 3\n",
            10,
            "exited with 3: AD said: no such OU",
        ),
        (
            "slow.sh",
            "exec sleep 30\n",
            1,
            "gave no answer within 1 seconds and was stopped",
        ),
        (
            "garbage.sh",
            "cat >/dev/null\necho 'hello there'\n",
            10,
            "answered something other than the expected JSON",
        ),
    ];
    for (name, body, timeout, reason) in cases {
        let path = script(dir.path(), name, body);
        let commands = provisioners(dir.path(), &path, &[], timeout);
        let app = spawn_demo_app().await;
        use_command(&app, "ad").await;
        let started = std::time::Instant::now();
        let id = approved_and_granted(&app, &commands).await;
        assert!(started.elapsed() < std::time::Duration::from_secs(10));
        assert_eq!(status(&app, id).await, "failed", "{name}");
        let log = events(&app, id).await;
        assert!(
            log.iter().any(|(k, c)| k == "provisioning_failed"
                && c.contains(&format!("the command ad: {reason}"))),
            "{name}: {log:?}"
        );
    }
}

#[tokio::test]
async fn a_resource_naming_an_undeclared_command_fails_with_a_clear_reason_and_runs_nothing() {
    let app = spawn_demo_app().await;
    use_command(&app, "not-declared").await;
    let id = approved_and_granted(&app, &Provisioners::default()).await;
    assert_eq!(status(&app, id).await, "failed");
    let log = events(&app, id).await;
    assert!(
        log.iter().any(|(k, c)| k == "provisioning_failed"
            && c.contains("no command named \"not-declared\" in the provisioners file")),
        "{log:?}"
    );
    let steps: i64 =
        sqlx::query_scalar("SELECT count(*) FROM provision_steps WHERE session_id = $1")
            .bind(id)
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(steps, 0);
}

#[tokio::test]
async fn the_database_refuses_a_command_resource_with_a_credential_or_without_a_name() {
    let app = spawn_demo_app().await;
    let refused = sqlx::query(
        "UPDATE resources SET provisioner = 'command', provisioner_command = NULL WHERE name = $1",
    )
    .bind(RESOURCE)
    .execute(&app.db)
    .await;
    assert!(refused.is_err());
    let refused = sqlx::query(
        "UPDATE resources SET provisioner = 'command', provisioner_command = 'a;b' WHERE name = $1",
    )
    .bind(RESOURCE)
    .execute(&app.db)
    .await;
    assert!(refused.is_err());
    let refused = sqlx::query(
        "UPDATE resources SET provisioner = 'postgresql', credential_id = NULL WHERE name = $1",
    )
    .bind(RESOURCE)
    .execute(&app.db)
    .await;
    assert!(refused.is_err());
}

#[tokio::test]
async fn a_provisioners_file_with_a_mistake_stops_the_start_naming_the_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("provisioners.toml");
    std::fs::write(
        &file,
        "[commands.ad]\npath = \"/usr/local/bin/ad\"\ntimeout_seconds = \"soon\"\n",
    )
    .unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .env_remove("DATABASE_URL")
        .env("RUST_LOG", "warn")
        .env("PORTCULLIS_PROVISIONERS_FILE", &file)
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .arg("--bind")
        .arg("127.0.0.1:0")
        .arg("serve")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!(
            "the provisioners file {} is invalid: line 3",
            file.display()
        )),
        "{stderr}"
    );
    // Stopped before anything started: no database was made.
    assert!(!dir.path().join("data").exists());
}
