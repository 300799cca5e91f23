//! A real OpenID Connect provider for the single sign-on tests: `tests/tools/oidc-provider.mjs`
//! (the certified `oidc-provider` package) run with Node on a random loopback port, and an
//! application configured to sign in through it.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;

use portcullis::Settings;
use portcullis::auth::sso::flow::Provider;
use portcullis::auth::sso::{Mapping, Sso};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::support::{Page, TestApp, fresh_database, settings, spawn_app_on_listener};

pub const CLIENT_ID: &str = "portcullis-test";
const CLIENT_SECRET: &str = "test-client-secret-0123456789";

/// The group map the tests use: two provider groups onto Portcullis groups, one of which
/// makes administrators.
pub const MAPPING: &str = r#"
[groups]
"idp-ops" = "Operations"
"idp-admins" = "Administrators"
[roles]
admin = "Administrators"
"#;

/// A running provider; stopped when dropped.
pub struct TestProvider {
    pub issuer: String,
    accounts: PathBuf,
    config: PathBuf,
    child: tokio::process::Child,
    _dir: tempfile::TempDir,
}

impl TestProvider {
    /// Starts the provider for `redirect_uri` with `accounts` (see the script), handing out
    /// tampered ID tokens when `tamper` says so.
    pub async fn start(redirect_uri: &str, accounts: &Value, tamper: Option<&str>) -> Self {
        let tools = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tools");
        assert!(
            tools.join("node_modules/oidc-provider").exists(),
            "install the test tools: npm ci --ignore-scripts --prefix tests/tools"
        );
        let dir = tempfile::tempdir().expect("temp dir");
        let accounts_file = dir.path().join("accounts.json");
        std::fs::write(&accounts_file, accounts.to_string()).expect("accounts file");
        let config = dir.path().join("config.json");
        let body = json!({
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "redirect_uri": redirect_uri,
            "accounts_file": accounts_file,
            "tamper": tamper,
        });
        std::fs::write(&config, body.to_string()).expect("config file");
        let (child, issuer) = launch(&config).await;
        Self {
            issuer,
            accounts: accounts_file,
            config,
            child,
            _dir: dir,
        }
    }

    /// Stops the provider and starts it again at the same address with a new signing key
    /// under another key id: a key rotation, as a provider does it.
    pub async fn rotate_key(&mut self) {
        self.child.kill().await.expect("stop the provider");
        let mut body: Value =
            serde_json::from_str(&std::fs::read_to_string(&self.config).expect("config"))
                .expect("config JSON");
        let port: u16 = self
            .issuer
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .expect("port");
        body["port"] = json!(port);
        body["kid"] = json!(format!("rotated-{}", uuid::Uuid::new_v4().simple()));
        std::fs::write(&self.config, body.to_string()).expect("config file");
        let (child, issuer) = launch(&self.config).await;
        assert_eq!(issuer, self.issuer);
        self.child = child;
    }

    /// Replaces the provider's accounts (read again at each sign-in).
    pub fn set_accounts(&self, accounts: &Value) {
        std::fs::write(&self.accounts, accounts.to_string()).expect("accounts file");
    }
}

/// Runs the provider script with `config`; the process and the issuer it printed.
async fn launch(config: &Path) -> (tokio::process::Child, String) {
    let tools = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tools");
    let mut child = tokio::process::Command::new("node")
        .arg(tools.join("oidc-provider.mjs"))
        .arg(config)
        .current_dir(&tools)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start node");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let line = tokio::time::timeout(std::time::Duration::from_secs(20), lines.next_line())
        .await
        .expect("the provider started in time")
        .expect("read")
        .expect("the provider printed its issuer");
    // Keep reading: a closed pipe would stop the provider at its next line of output.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    let issuer = serde_json::from_str::<Value>(&line).expect("JSON")["issuer"]
        .as_str()
        .expect("issuer")
        .to_owned();
    (child, issuer)
}

/// One provider account.
pub fn account(username: &str, groups: &[&str], amr: &[&str]) -> Value {
    json!({
        "claims": {
            "preferred_username": username,
            "name": format!("{username} from the directory"),
            "email": format!("{username}@corp.example"),
            "groups": groups,
        },
        "amr": amr,
    })
}

/// What a test changes in the single sign-on settings.
pub struct Options {
    pub create_accounts: bool,
    pub trust_mfa: bool,
    pub break_glass: Option<Vec<String>>,
    pub tamper: Option<&'static str>,
    /// Sign out also signs out of the provider (`PORTCULLIS_OIDC_PROVIDER_LOGOUT`).
    pub provider_logout: bool,
    pub settings: Settings,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            create_accounts: true,
            trust_mfa: false,
            break_glass: None,
            tamper: None,
            provider_logout: true,
            settings: settings(),
        }
    }
}

/// An application signing in through a provider of its own, with the groups of [`MAPPING`]
/// created.
pub async fn spawn(accounts: &Value, options: Options) -> (TestApp, TestProvider) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("address"));
    let redirect = format!("{base}{}", portcullis::auth::sso::CALLBACK_PATH);
    let provider = TestProvider::start(&redirect, accounts, options.tamper).await;
    let sso = Sso {
        issuer: openidconnect::IssuerUrl::new(provider.issuer.clone()).expect("issuer"),
        client_id: CLIENT_ID.into(),
        client_secret: CLIENT_SECRET.into(),
        name: "Test Directory".into(),
        redirect_uri: openidconnect::RedirectUrl::new(redirect).expect("redirect"),
        post_logout_uri: options.provider_logout.then(|| {
            openidconnect::PostLogoutRedirectUrl::new(format!("{base}/login")).expect("back")
        }),
        scopes: vec!["profile".into(), "email".into(), "groups".into()],
        create_accounts: options.create_accounts,
        groups_claim: "groups".into(),
        mapping: Mapping::parse(MAPPING).expect("mapping"),
        trust_mfa: options.trust_mfa,
        break_glass: options.break_glass,
    };
    let settings = Settings {
        sso: Some(Arc::new(Provider::new(sso).expect("provider"))),
        ..options.settings
    };
    let app = spawn_app_on_listener(listener, fresh_database().await, settings).await;
    for group in ["Operations", "Administrators", "Unmapped"] {
        sqlx::query("INSERT INTO groups (id, name) VALUES ($1, $2)")
            .bind(uuid::Uuid::now_v7())
            .bind(group)
            .execute(&app.db)
            .await
            .expect("group");
    }
    (app, provider)
}

/// A GET of an absolute URL (the provider's pages) with `client`'s cookies.
pub async fn get(client: &reqwest::Client, url: &str) -> Page {
    crate::support::read(client.get(url).send().await.expect("GET")).await
}

fn absolute(base: &str, location: &str) -> String {
    if location.starts_with("http") {
        location.to_owned()
    } else {
        format!("{base}{location}")
    }
}

/// Presses "Sign in with" on the app's sign-in page and signs in at the provider as `login`;
/// returns the URL the provider sends the browser back to (not visited yet).
pub async fn way_back(
    app: &TestApp,
    provider: &TestProvider,
    client: &reqwest::Client,
    login: &str,
) -> String {
    let form = app.get_with(client, "/login").await;
    assert_eq!(
        form.texts("#sso-sign-in"),
        vec!["Sign in with Test Directory".to_owned()]
    );
    let link = form
        .html()
        .select(&scraper::Selector::parse("#sso-sign-in").unwrap())
        .next()
        .and_then(|a| a.value().attr("href"))
        .unwrap()
        .to_owned();
    let started = app.get_with(client, &link).await;
    assert_eq!(started.status, 303, "{}", started.body);
    at_the_provider(app, provider, client, started.location(), login).await
}

/// From the provider's authorization `url`, signs in there as `login`; returns the URL the
/// provider sends the browser back to (not visited yet).
pub async fn at_the_provider(
    app: &TestApp,
    provider: &TestProvider,
    client: &reqwest::Client,
    url: &str,
    login: &str,
) -> String {
    let mut url = url.to_owned();
    assert!(url.starts_with(&provider.issuer), "{url}");
    for _ in 0..10 {
        let page = get(client, &url).await;
        if page.status == 200 {
            // The provider's sign-in form.
            let action = format!("{}{}", provider.issuer, url_path(&url));
            let submitted = client
                .post(action)
                .form(&[("login", login)])
                .send()
                .await
                .expect("POST");
            let submitted = crate::support::read(submitted).await;
            assert_eq!(submitted.status, 303, "{}", submitted.body);
            url = absolute(&provider.issuer, submitted.location());
        } else {
            assert!(
                page.status.is_redirection(),
                "{} {}",
                page.status,
                page.body
            );
            url = absolute(&provider.issuer, page.location());
        }
        if url.starts_with(&app.url(portcullis::auth::sso::CALLBACK_PATH)) {
            return url;
        }
    }
    panic!("the provider never sent the browser back: {url}");
}

fn url_path(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest.find('/').map_or("/", |i| &rest[i..])
}

/// Whether the provider asks who you are when "Sign in with" is pressed in `client`: true
/// when it shows its sign-in form, false when it sends the browser straight back (it still
/// has a session for this browser).
pub async fn provider_asks_who(
    app: &TestApp,
    provider: &TestProvider,
    client: &reqwest::Client,
) -> bool {
    let started = app.get_with(client, "/login/sso").await;
    assert_eq!(started.status, 303, "{}", started.body);
    let mut url = started.location().to_owned();
    for _ in 0..10 {
        if url.starts_with(&app.url(portcullis::auth::sso::CALLBACK_PATH)) {
            return false;
        }
        let page = get(client, &url).await;
        if page.status == 200 {
            return true;
        }
        assert!(
            page.status.is_redirection(),
            "{} {}",
            page.status,
            page.body
        );
        url = absolute(&provider.issuer, page.location());
    }
    panic!("the provider neither asked nor sent the browser back: {url}");
}

/// Signs in as `login` all the way: the app's answer to the way back.
pub async fn sign_in(
    app: &TestApp,
    provider: &TestProvider,
    client: &reqwest::Client,
    login: &str,
) -> Page {
    let back = way_back(app, provider, client, login).await;
    get(client, &back).await
}
