//! The browser harness: a headless Chromium driven over WebDriver by `fantoccini`.
//!
//! Each [`Browser`] starts its own `chromedriver` on a free loopback port (in its own process
//! group, so Chromium goes with it) and opens one session with a fresh, empty profile. Several
//! browsers can run at once, in one test or in parallel tests. Call [`Browser::close`] at the
//! end of a test; if a test panics first, dropping the browser kills the driver and Chromium.
//!
//! The helpers panic with the page's address on failure, as test code wants.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::error::CmdError;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

use crate::support::TestApp;

/// How long element lookups (`text`, `click`, `fill`) wait for the element to appear.
pub const FIND_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a form submission may take to load the next page.
pub const NAVIGATION_TIMEOUT: Duration = Duration::from_secs(10);
/// How long `chromedriver` may take to start answering.
const DRIVER_START_TIMEOUT: Duration = Duration::from_secs(20);
/// Polling interval for every wait.
const POLL: Duration = Duration::from_millis(50);

/// The flags Chromium runs with (the profile directory is added per browser).
const CHROME_ARGS: &[&str] = &[
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--window-size=1280,1024",
];

/// A running `chromedriver`, killed (with its process group: Chromium too) on drop.
struct Driver {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Driver {
    /// Starts `chromedriver` on a free port and waits until it is ready.
    async fn start(log_dir: &Path) -> Driver {
        let binary = chromedriver_binary();
        let log = log_dir.join("chromedriver.log");
        // A free port can be taken between our probe and chromedriver's bind: retry.
        let mut last_error = String::new();
        for _ in 0..3 {
            let port = free_port();
            let child = {
                use std::os::unix::process::CommandExt;
                Command::new(&binary)
                    .arg(format!("--port={port}"))
                    .arg(format!("--log-path={}", log.display()))
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .process_group(0)
                    .spawn()
                    .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()))
            };
            let mut driver = Driver {
                child,
                port,
                log: log.clone(),
            };
            match driver.wait_ready().await {
                Ok(()) => return driver,
                Err(e) => last_error = e,
            }
        }
        panic!("chromedriver did not start: {last_error}");
    }

    /// Polls `/status` until the driver says it is ready, or it exits, or time runs out.
    async fn wait_ready(&mut self) -> Result<(), String> {
        let client = reqwest::Client::new();
        let url = format!("{}/status", self.url());
        let deadline = Instant::now() + DRIVER_START_TIMEOUT;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!(
                    "it exited with {status}; log:\n{}",
                    self.log_tail()
                ));
            }
            if let Ok(response) = client
                .get(&url)
                .timeout(Duration::from_secs(2))
                .send()
                .await
                && let Ok(body) = response.text().await
                && let Ok(body) = serde_json::from_str::<Value>(&body)
                && body["value"]["ready"] == json!(true)
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "no answer on port {} within {DRIVER_START_TIMEOUT:?}; log:\n{}",
                    self.port,
                    self.log_tail()
                ));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The end of the driver's log, for failure messages.
    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // The child leads its own process group; take Chromium (and its helpers) with it.
        if let Ok(pid) = i32::try_from(self.child.id()) {
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::SIGKILL,
            );
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `chromedriver` from `PATH`, else `/usr/bin/chromedriver`; panics if neither exists.
fn chromedriver_binary() -> PathBuf {
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .map(|dir| dir.join("chromedriver"))
        .find(|candidate| candidate.is_file());
    let binary = on_path.unwrap_or_else(|| PathBuf::from("/usr/bin/chromedriver"));
    assert!(
        binary.is_file(),
        "chromedriver not found on PATH or at /usr/bin/chromedriver; the browser tests need \
         Chromium and its driver: apt-get install chromium chromium-driver"
    );
    binary
}

/// The Chromium binary: `CHROME_BIN`, else `/usr/bin/chromium`.
fn chrome_binary() -> String {
    let binary = std::env::var("CHROME_BIN").unwrap_or_else(|_| "/usr/bin/chromium".to_owned());
    assert!(
        Path::new(&binary).is_file(),
        "Chromium not found at {binary} (set CHROME_BIN to override); the browser tests need \
         Chromium and its driver: apt-get install chromium chromium-driver"
    );
    binary
}

/// A port nobody is listening on right now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("find a free port")
}

/// A headless Chromium with its own profile, driven over WebDriver.
pub struct Browser {
    // Fields drop in order: the session handle, then the driver (and Chromium), then the
    // profile directory (only once nothing is using it).
    /// The underlying WebDriver client, for anything the helpers do not cover.
    pub client: Client,
    driver: Driver,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Starts a fresh browser: its own `chromedriver`, its own empty profile.
    pub async fn new() -> Browser {
        // lettre (ring) and fantoccini (aws-lc-rs) each enable a rustls crypto provider, so
        // rustls cannot pick one by itself. Only loopback HTTP is spoken here anyway.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let chrome = chrome_binary();
        let profile = tempfile::Builder::new()
            .prefix("portcullis-browser-")
            .tempdir()
            .expect("profile dir");
        let user_data_dir = profile.path().join("profile");
        let driver = Driver::start(profile.path()).await;

        let mut args: Vec<String> = CHROME_ARGS.iter().map(|&a| a.to_owned()).collect();
        args.push(format!("--user-data-dir={}", user_data_dir.display()));
        let capabilities = json!({
            "browserName": "chrome",
            "pageLoadStrategy": "normal",
            "goog:chromeOptions": { "binary": chrome, "args": args },
        });
        let Value::Object(capabilities) = capabilities else {
            unreachable!("a JSON object literal")
        };
        let client = match ClientBuilder::rustls()
            .expect("TLS roots")
            .capabilities(capabilities)
            .connect(&driver.url())
            .await
        {
            Ok(client) => client,
            Err(e) => panic!(
                "cannot open a Chromium session: {e}; chromedriver log:\n{}",
                driver.log_tail()
            ),
        };
        Browser {
            client,
            driver,
            _profile: profile,
        }
    }

    /// Loads `path` of `app` and waits for the page to load.
    pub async fn goto(&self, app: &TestApp, path: &str) {
        let url = app.url(path);
        self.client
            .goto(&url)
            .await
            .unwrap_or_else(|e| panic!("cannot load {url}: {e}"));
    }

    /// The current address.
    pub async fn url(&self) -> String {
        self.client
            .current_url()
            .await
            .expect("current URL")
            .to_string()
    }

    /// The path of the current address (without the query).
    pub async fn path(&self) -> String {
        self.client
            .current_url()
            .await
            .expect("current URL")
            .path()
            .to_owned()
    }

    /// Signs in through the form at `/login` and waits for the next page.
    pub async fn login(&self, app: &TestApp, username: &str, password: &str) {
        self.goto(app, "/login").await;
        self.fill("#username", username).await;
        self.fill("#password", password).await;
        self.submit(r#"form[action="/login"] button[type="submit"]"#)
            .await;
    }

    /// The rendered text of the first element matching `css`, trimmed (waits for it to exist).
    pub async fn text(&self, css: &str) -> String {
        let element = self.find(css).await;
        let text = element
            .text()
            .await
            .unwrap_or_else(|e| panic!("cannot read the text of {css:?}: {e}"));
        text.trim().to_owned()
    }

    /// The rendered text of every element matching `css`, trimmed (does not wait: may be empty).
    pub async fn texts(&self, css: &str) -> Vec<String> {
        self.try_texts(css)
            .await
            .unwrap_or_else(|e| panic!("cannot read the texts of {css:?}: {e}"))
    }

    async fn try_texts(&self, css: &str) -> Result<Vec<String>, CmdError> {
        let mut texts = Vec::new();
        for element in self.client.find_all(Locator::Css(css)).await? {
            texts.push(element.text().await?.trim().to_owned());
        }
        Ok(texts)
    }

    /// Clicks the first element matching `css` (waits for it to exist). Does not wait for any
    /// navigation the click starts: use [`Browser::submit`] for that.
    pub async fn click(&self, css: &str) {
        let element = self.find(css).await;
        // Centre it first: a sticky header or the window's edge must not intercept the click.
        let arg = serde_json::to_value(&element).expect("element as a script argument");
        if let Err(e) = self
            .client
            .execute(
                "arguments[0].scrollIntoView({block: 'center', behavior: 'instant'})",
                vec![arg],
            )
            .await
        {
            eprintln!("scrollIntoView failed: {e}");
        }
        element
            .click()
            .await
            .unwrap_or_else(|e| panic!("cannot click {css:?}: {e:?}"));
    }

    /// Clicks the first element matching `css` and waits until the page it leads to has loaded
    /// (the old document is gone and the new one is complete): for submit buttons and links.
    pub async fn submit(&self, css: &str) {
        let old_page = self
            .client
            .find(Locator::Css("html"))
            .await
            .expect("the page's html element");
        self.click(css).await;
        let deadline = Instant::now() + NAVIGATION_TIMEOUT;
        loop {
            let gone = match old_page.tag_name().await {
                Err(e) => e.is_stale_element_reference(),
                Ok(_) => false,
            };
            if gone && self.ready_state().await.as_deref() == Some("complete") {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "clicking {css:?} on {} did not load a new page within {NAVIGATION_TIMEOUT:?}",
                self.url().await
            );
            tokio::time::sleep(POLL).await;
        }
    }

    async fn ready_state(&self) -> Option<String> {
        match self
            .client
            .execute("return document.readyState", vec![])
            .await
        {
            Ok(Value::String(state)) => Some(state),
            _ => None,
        }
    }

    /// Replaces the value of the first input matching `css` (waits for it to exist).
    pub async fn fill(&self, css: &str, value: &str) {
        let element = self.find(css).await;
        element
            .clear()
            .await
            .unwrap_or_else(|e| panic!("cannot clear {css:?}: {e}"));
        element
            .send_keys(value)
            .await
            .unwrap_or_else(|e| panic!("cannot type into {css:?}: {e}"));
    }

    /// Polls until an element matching `css` has text containing `expected`, and returns that
    /// element's text; panics with what was there instead after `timeout`.
    pub async fn wait_for_text(&self, css: &str, expected: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let texts = self.try_texts(css).await.unwrap_or_default();
            if let Some(found) = texts.iter().find(|t| t.contains(expected)) {
                return found.clone();
            }
            assert!(
                Instant::now() < deadline,
                "no {css:?} with text {expected:?} on {} within {timeout:?}; found {texts:?}",
                self.url().await
            );
            tokio::time::sleep(POLL).await;
        }
    }

    /// Sends a Chrome DevTools Protocol command through chromedriver (`goog/cdp/execute`) and
    /// returns its result, e.g. `Emulation.setEmulatedMedia`.
    pub async fn cdp(&self, cmd: &str, params: Value) -> Value {
        let session = self
            .client
            .session_id()
            .await
            .expect("session id")
            .expect("an open session");
        let url = format!("{}/session/{session}/goog/cdp/execute", self.driver.url());
        let body = json!({ "cmd": cmd, "params": params }).to_string();
        let response = reqwest::Client::new()
            .post(&url)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap_or_else(|e| panic!("cannot send {cmd} to chromedriver: {e}"));
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        assert!(status.is_success(), "{cmd} failed with {status}: {text}");
        serde_json::from_str::<Value>(&text)
            .map(|v| v["value"].clone())
            .unwrap_or_else(|e| panic!("{cmd} answered {text:?}: {e}"))
    }

    /// Emulates `prefers-color-scheme: dark` (true) or light (false) for this tab, across
    /// navigations, as if the system were set so.
    pub async fn set_dark_scheme(&self, dark: bool) {
        let value = if dark { "dark" } else { "light" };
        self.cdp(
            "Emulation.setEmulatedMedia",
            json!({ "features": [{ "name": "prefers-color-scheme", "value": value }] }),
        )
        .await;
    }

    /// The current code of the authenticator secret the second-factor page shows
    /// (`#totp-secret`), computed as an authenticator app would.
    pub async fn totp_code(&self) -> String {
        let secret = totp_rs::Secret::Encoded(self.text("#totp-secret").await.replace(' ', ""))
            .to_bytes()
            .expect("a base32 secret");
        totp_rs::TOTP::new(
            totp_rs::Algorithm::SHA1,
            6,
            1,
            30,
            secret,
            None,
            String::new(),
        )
        .expect("TOTP parameters")
        .generate_current()
        .expect("a clock after 1970")
    }

    /// Ends the session (Chromium quits) and stops the driver.
    pub async fn close(self) {
        let Browser {
            client,
            driver,
            _profile,
        } = self;
        client.close().await.expect("close the WebDriver session");
        drop(driver);
    }

    /// The first element matching `css`, waiting up to [`FIND_TIMEOUT`] for it to exist.
    async fn find(&self, css: &str) -> fantoccini::elements::Element {
        match self
            .client
            .wait()
            .at_most(FIND_TIMEOUT)
            .every(POLL)
            .for_element(Locator::Css(css))
            .await
        {
            Ok(element) => element,
            Err(e) => panic!(
                "no element {css:?} on {} within {FIND_TIMEOUT:?}: {e}",
                self.url().await
            ),
        }
    }
}
