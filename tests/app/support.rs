//! The test harness: one throwaway PostgreSQL cluster per test binary (or `DATABASE_URL`), a
//! fresh database per test cloned from a migrated template, and the application served on a
//! random port, driven over real HTTP with a cookie jar.

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use portcullis::auth::cache::SessionCache;
use portcullis::domain::names::{DisplayName, Username};
use portcullis::domain::role::Role;
use portcullis::pg_cluster::cluster::{Cluster, ClusterOptions};
use portcullis::{AppState, Settings};
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection, PgPool};
use uuid::Uuid;

/// The password every test user has.
pub const PASSWORD: &str = "correct-horse-battery-staple";

/// Where test databases are made.
struct Server {
    /// Options for the server's maintenance database; each test swaps in its own name.
    admin: PgConnectOptions,
    _cluster: Option<std::sync::Mutex<Cluster>>,
    _dir: Option<tempfile::TempDir>,
}

const TEMPLATE: &str = "portcullis_test_template";
/// The template with the demo seed applied.
const DEMO_TEMPLATE: &str = "portcullis_test_demo";

fn server() -> &'static Server {
    static SERVER: OnceLock<Server> = OnceLock::new();
    SERVER.get_or_init(|| {
        // Set up on a plain thread with its own runtime: the caller is inside a test's
        // runtime, and no connection made here may outlive this setup.
        std::thread::spawn(|| {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(start_server())
        })
        .join()
        .expect("test database setup panicked")
    })
}

async fn start_server() -> Server {
    let (admin, cluster, dir) = match std::env::var("DATABASE_URL") {
        Ok(url) => (
            url.parse::<PgConnectOptions>().expect("DATABASE_URL"),
            None,
            None,
        ),
        Err(_) => {
            remove_stale_test_clusters();
            let dir = tempfile::Builder::new()
                .prefix("portcullis-test-")
                .tempdir()
                .expect("temp dir");
            std::fs::write(dir.path().join("owner.pid"), std::process::id().to_string())
                .expect("owner file");
            let cluster = start_cluster(dir.path());
            (
                cluster.connect_options("postgres"),
                Some(cluster),
                Some(dir),
            )
        }
    };
    let mut conn = PgConnection::connect_with(&admin)
        .await
        .expect("connect to the test server");
    sqlx::query(&format!("DROP DATABASE IF EXISTS {TEMPLATE}"))
        .execute(&mut conn)
        .await
        .expect("drop old template");
    sqlx::query(&format!("CREATE DATABASE {TEMPLATE}"))
        .execute(&mut conn)
        .await
        .expect("create template");
    conn.close().await.ok();
    let pool = PgPool::connect_with(admin.clone().database(TEMPLATE))
        .await
        .expect("template pool");
    portcullis::db::MIGRATOR
        .run(&pool)
        .await
        .expect("migrations");
    pool.close().await;
    make_demo_template(&admin).await;
    Server {
        admin,
        _cluster: cluster.map(std::sync::Mutex::new),
        _dir: dir,
    }
}

/// Makes the demo template: the migrated template with the demo seed applied, once per test
/// binary, so that tests which start from the demo data clone it instead of hashing its five
/// passwords again each.
async fn make_demo_template(admin: &PgConnectOptions) {
    let mut conn = PgConnection::connect_with(admin)
        .await
        .expect("connect to the test server");
    sqlx::query(&format!("DROP DATABASE IF EXISTS {DEMO_TEMPLATE}"))
        .execute(&mut conn)
        .await
        .expect("drop old demo template");
    sqlx::query(&format!(
        "CREATE DATABASE {DEMO_TEMPLATE} TEMPLATE {TEMPLATE}"
    ))
    .execute(&mut conn)
    .await
    .expect("create demo template");
    conn.close().await.ok();
    let pool = PgPool::connect_with(admin.clone().database(DEMO_TEMPLATE))
        .await
        .expect("demo template pool");
    let seed =
        portcullis::domain::seed::parse(portcullis::server::DEMO_SEED).expect("demo seed parses");
    portcullis::seeding::apply(&pool, &seed)
        .await
        .expect("demo seed applies");
    pool.close().await;
}

/// Removes the folders of earlier test runs whose test process has exited (a test binary's
/// cluster stops when the binary exits, but its folder stays). Each folder names its owner in
/// `owner.pid`, so folders of test binaries running right now are left alone.
fn remove_stale_test_clusters() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        if !entry
            .file_name()
            .to_string_lossy()
            .starts_with("portcullis-test-")
        {
            continue;
        }
        let owner = std::fs::read_to_string(entry.path().join("owner.pid"))
            .ok()
            .and_then(|t| t.trim().parse::<u32>().ok());
        let alive = owner.is_some_and(|pid| std::path::Path::new(&format!("/proc/{pid}")).exists());
        // A folder without an owner file may be one being set up this instant; give it time.
        let young = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_none_or(|age| age < std::time::Duration::from_secs(600));
        if !alive && (owner.is_some() || !young) {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// Starts a cluster tuned for tests (no durability: a crash loses nothing we need).
pub fn start_cluster(dir: &std::path::Path) -> Cluster {
    let mut options = ClusterOptions::new(dir);
    for (k, v) in [
        ("fsync", "off"),
        ("synchronous_commit", "off"),
        ("full_page_writes", "off"),
        ("max_connections", "300"),
    ] {
        options.settings.push((k.into(), v.into()));
    }
    Cluster::start(&options).expect("start the test cluster")
}

/// A fresh database, cloned from the migrated template.
pub async fn fresh_database() -> PgConnectOptions {
    clone_of(TEMPLATE).await
}

/// A fresh database holding the demo data (its passwords are "portcullis-demo").
pub async fn fresh_demo_database() -> PgConnectOptions {
    clone_of(DEMO_TEMPLATE).await
}

async fn clone_of(template: &str) -> PgConnectOptions {
    let server = server();
    let name = format!("t_{}", Uuid::new_v4().simple());
    let mut conn = PgConnection::connect_with(&server.admin)
        .await
        .expect("connect");
    sqlx::query(&format!("CREATE DATABASE {name} TEMPLATE {template}"))
        .execute(&mut conn)
        .await
        .expect("create test database");
    conn.close().await.ok();
    server.admin.clone().database(&name)
}

/// The settings tests run with (plain HTTP on loopback: no Secure cookie).
pub fn settings() -> Settings {
    Settings {
        cookie_secure: false,
        session_idle_minutes: 30,
        session_lifetime_hours: 12,
        default_time_zone: "UTC".into(),
        ssh_jump_host: None,
        gateway_host: None,
        ssh_gateway_ciphers: Vec::new(),
        trusted_proxies: Vec::new(),
        // Tests that need a second factor or a low rate limit set their own.
        second_factor: portcullis::config::SecondFactorPolicy::Optional,
        sign_in_limit: 1_000_000,
        sign_in_window_seconds: 600,
        metrics_token: None,
        db_request_deadline: std::time::Duration::from_secs(6),
        sso: None,
    }
}

/// A running application and a browser-like client for it.
pub struct TestApp {
    pub address: SocketAddr,
    pub db: PgPool,
    pub client: reqwest::Client,
    /// The key the app seals passwords with.
    pub secrets: portcullis::crypto::SecretBox,
    /// Its database, for a second instance on the same one.
    pub options: PgConnectOptions,
    /// The app's session cache.
    pub sessions: Arc<SessionCache>,
}

/// Serves the application on a random port against a fresh database.
pub async fn spawn_app() -> TestApp {
    let options = fresh_database().await;
    spawn_app_on(options, settings()).await
}

/// Serves the application against a fresh database holding the demo data.
pub async fn spawn_demo_app() -> TestApp {
    spawn_app_on(fresh_demo_database().await, settings()).await
}

/// Serves the application against the given database.
pub async fn spawn_app_on(options: PgConnectOptions, settings: Settings) -> TestApp {
    spawn_app_with_cache(options, settings, std::time::Duration::from_secs(30)).await
}

/// Serves the application with a session cache lifetime of its own (zero: off).
pub async fn spawn_app_with_cache(
    options: PgConnectOptions,
    settings: Settings,
    session_cache: std::time::Duration,
) -> TestApp {
    serve(options, settings, session_cache, true).await
}

/// Serves the application with a session cache that hears no announcement (no listener runs,
/// yet the cache is on): every instance is in that state between a change and the arrival of
/// its notification, so what such an app does right is what does not depend on them.
pub async fn spawn_app_unannounced(options: PgConnectOptions) -> TestApp {
    let app = serve(
        options,
        settings(),
        std::time::Duration::from_secs(30),
        false,
    )
    .await;
    app.sessions.set_listening(true);
    app
}

/// Serves the application on a listener bound beforehand (a test that must tell an outside
/// system the app's address before the app starts).
pub async fn spawn_app_on_listener(
    listener: tokio::net::TcpListener,
    options: PgConnectOptions,
    settings: Settings,
) -> TestApp {
    serve_on(
        listener,
        options,
        settings,
        std::time::Duration::from_secs(30),
        true,
    )
    .await
}

async fn serve(
    options: PgConnectOptions,
    settings: Settings,
    session_cache: std::time::Duration,
    listen: bool,
) -> TestApp {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    serve_on(listener, options, settings, session_cache, listen).await
}

async fn serve_on(
    listener: tokio::net::TcpListener,
    options: PgConnectOptions,
    settings: Settings,
    session_cache: std::time::Duration,
    listen: bool,
) -> TestApp {
    let db = portcullis::db::pool_options(5)
        .connect_with(options.clone())
        .await
        .expect("test pool");
    let secrets = portcullis::crypto::SecretBox::random();
    let state = AppState {
        db: db.clone(),
        settings: Arc::new(settings),
        secrets: secrets.clone(),
        live: portcullis::live::Hub::new(),
        sessions: SessionCache::new(session_cache),
    };
    let store = portcullis::session_store(&state);
    let sessions = state.sessions.clone();
    if listen {
        tokio::spawn(state.live.clone().listen(db.clone(), sessions.clone()));
    }
    let app = portcullis::build_router(state, store);
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .expect("serve");
    });
    let app = TestApp {
        address,
        db,
        client: new_client(),
        secrets,
        options,
        sessions,
    };
    if listen {
        app.wait_until_listening().await;
    }
    app
}

/// Calls `next` every 20 ms until what it gives passes `done`, for at most five seconds (time
/// for an announcement to reach an instance, well under the 30 s its session cache keeps
/// copies); returns the last answer.
pub async fn settled<T, Fut>(mut next: impl FnMut() -> Fut, done: impl Fn(&T) -> bool) -> T
where
    Fut: std::future::Future<Output = T>,
{
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let answer = next().await;
        if done(&answer) || std::time::Instant::now() > deadline {
            return answer;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// A client with its own cookie jar that does not follow redirects (tests look at them).
pub fn new_client() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

/// A response, read whole.
pub struct Page {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Page {
    /// The `Location` of a redirect.
    pub fn location(&self) -> &str {
        self.headers
            .get("location")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// The parsed HTML.
    pub fn html(&self) -> scraper::Html {
        scraper::Html::parse_document(&self.body)
    }

    /// The text of every element matching `selector`, trimmed.
    pub fn texts(&self, selector: &str) -> Vec<String> {
        let selector = scraper::Selector::parse(selector).expect("selector");
        self.html()
            .select(&selector)
            .map(|e| {
                e.text()
                    .collect::<String>()
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect()
    }

    /// The CSRF token of the page's first form.
    pub fn csrf(&self) -> String {
        let selector = scraper::Selector::parse(r#"input[name="csrf_token"]"#).expect("selector");
        self.html()
            .select(&selector)
            .next()
            .and_then(|e| e.value().attr("value"))
            .expect("the page has a CSRF token")
            .to_owned()
    }
}

impl TestApp {
    /// Waits (at most 10 s) until the app listens for announcements, as a started server does
    /// before its first request in practice; its session cache is off until then.
    pub async fn wait_until_listening(&self) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !self.sessions.is_listening() {
            assert!(
                std::time::Instant::now() < deadline,
                "the app never listened for announcements"
            );
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.address, path)
    }

    pub async fn get(&self, path: &str) -> Page {
        self.get_with(&self.client, path).await
    }

    pub async fn get_with(&self, client: &reqwest::Client, path: &str) -> Page {
        read(client.get(self.url(path)).send().await.expect("GET")).await
    }

    /// Posts a form as it is, without adding a CSRF token.
    pub async fn post_raw(&self, path: &str, form: &[(&str, &str)]) -> Page {
        self.post_raw_with(&self.client, path, form).await
    }

    pub async fn post_raw_with(
        &self,
        client: &reqwest::Client,
        path: &str,
        form: &[(&str, &str)],
    ) -> Page {
        let body = serde_urlencoded::to_string(form).expect("form");
        read(
            client
                .post(self.url(path))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body)
                .send()
                .await
                .expect("POST"),
        )
        .await
    }

    /// Posts a form with the session's CSRF token, as the browser would from a page.
    pub async fn post(&self, path: &str, form: &[(&str, &str)]) -> Page {
        self.post_with(&self.client, path, form).await
    }

    pub async fn post_with(
        &self,
        client: &reqwest::Client,
        path: &str,
        form: &[(&str, &str)],
    ) -> Page {
        let token = self.csrf_with(client).await;
        let mut fields = vec![("csrf_token", token.as_str())];
        fields.extend_from_slice(form);
        self.post_raw_with(client, path, &fields).await
    }

    /// The client's current CSRF token (from a page that always has a form).
    pub async fn csrf_with(&self, client: &reqwest::Client) -> String {
        let page = self.get_with(client, "/login").await;
        page.csrf()
    }

    /// Signs the default client in.
    pub async fn login(&self, username: &str) -> Page {
        self.login_with(&self.client, username, PASSWORD).await
    }

    pub async fn login_with(
        &self,
        client: &reqwest::Client,
        username: &str,
        password: &str,
    ) -> Page {
        let token = self.csrf_with(client).await;
        self.post_raw_with(
            client,
            "/login",
            &[
                ("csrf_token", &token),
                ("username", username),
                ("password", password),
                ("next", ""),
            ],
        )
        .await
    }

    /// Creates an account with [`PASSWORD`].
    pub async fn create_user(&self, username: &str, role: Role) -> Uuid {
        let hash = password_hash().await;
        portcullis::db::users::create(
            &self.db,
            &portcullis::db::users::NewUser {
                username: &Username::parse(username).expect("username"),
                display_name: &DisplayName::parse(username).expect("display name"),
                role,
                time_zone: "UTC",
                password_hash: Some(&hash),
            },
        )
        .await
        .expect("create user")
    }

    /// Moves times of every stored session `seconds` into the past, as if that much time had
    /// passed since they were recorded: each of `auth_fields` of its sign-in (`signed_in_at`,
    /// `last_seen`: Unix seconds), and its expiry when `expiry` is set. Forgets the app's kept
    /// copies, which hold the times as they were.
    pub async fn backdate_sessions(&self, auth_fields: &[&str], seconds: i64, expiry: bool) {
        for field in auth_fields {
            sqlx::query(
                "UPDATE web_sessions SET data = convert_to(jsonb_set(
                     convert_from(data, 'UTF8')::jsonb, ARRAY['auth', $1],
                     to_jsonb((convert_from(data, 'UTF8')::jsonb #>> ARRAY['auth', $1])::bigint - $2)
                 )::text, 'UTF8')
                 WHERE convert_from(data, 'UTF8')::jsonb ? 'auth'",
            )
            .bind(field)
            .bind(seconds)
            .execute(&self.db)
            .await
            .expect("backdate the sign-ins");
        }
        if expiry {
            sqlx::query(
                "UPDATE web_sessions SET expires_at = expires_at - make_interval(secs => $1)",
            )
            .bind(seconds as f64)
            .execute(&self.db)
            .await
            .expect("backdate the expiry");
        }
        self.sessions.clear();
    }

    /// Loads the demo seed (its passwords are "portcullis-demo").
    pub async fn seed_demo(&self) {
        let seed = portcullis::domain::seed::parse(portcullis::server::DEMO_SEED)
            .expect("demo seed parses");
        portcullis::seeding::apply(&self.db, &seed)
            .await
            .expect("demo seed applies");
    }
}

/// One argon2 hash of [`PASSWORD`], shared by every test user (hashing is slow by design).
pub async fn password_hash() -> String {
    static HASH: tokio::sync::OnceCell<String> = tokio::sync::OnceCell::const_new();
    HASH.get_or_init(|| async {
        portcullis::auth::password::hash(PASSWORD.to_owned())
            .await
            .expect("hash")
    })
    .await
    .clone()
}

pub async fn read(response: reqwest::Response) -> Page {
    Page {
        status: response.status(),
        headers: response.headers().clone(),
        body: response.text().await.expect("body"),
    }
}

/// What alice's shell on `session` opens with, for the real recorder
/// (`portcullis::recording::Recorder`), as the gateway opens it.
pub async fn alice_shell(app: &TestApp, session: Uuid) -> portcullis::db::recordings::NewRecording {
    use portcullis::db::recordings::{Mode, NewRecording, Via};
    let alice: Uuid = sqlx::query_scalar("SELECT id FROM users WHERE username = 'alice'")
        .fetch_one(&app.db)
        .await
        .expect("alice");
    NewRecording {
        session_id: session,
        user_id: alice,
        user_name: "alice".into(),
        via: Via::Ssh,
        mode: Mode::Shell,
        command: String::new(),
        width: 100,
        height: 30,
        with_input: false,
        client_addr: None,
    }
}

/// A finished recording of alice's shell on `session`, written by the real recorder.
pub async fn record(app: &TestApp, session: Uuid, output: &[&str]) -> Uuid {
    let new = alice_shell(app, session).await;
    let recorder = portcullis::recording::Recorder::start(&app.db, new)
        .await
        .expect("recording");
    for text in output {
        recorder.output(text.as_bytes().to_vec()).await;
    }
    recorder.finish("Session ended").await;
    recorder.id()
}
