//! Load for the fault tests: signed-in users on their own HTTP clients, some walking the
//! wizard to Finish, some reading the dashboard, every response recorded with its time.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use scraper::Selector;
use sqlx::PgPool;

use crate::support::Page;

/// The password of every load user.
pub const PASSWORD: &str = "portcullis-demo";
/// The resources load users may request.
pub const RESOURCES: [&str; 2] = ["load-srv-01", "load-srv-02"];

/// Users `load1` ... `loadN` in the group Load, which may open a session on the load
/// resources at once (no approval).
pub async fn seed(pool: &PgPool, users: usize) {
    let mut text = String::from("demo = true\n");
    let names: Vec<String> = (1..=users).map(|i| format!("load{i}")).collect();
    for name in &names {
        text += &format!("[[users]]\nusername = \"{name}\"\npassword = \"{PASSWORD}\"\n");
    }
    text += &format!(
        "[[groups]]\nname = \"Load\"\nmembers = {names:?}\n\
         [[activities]]\nname = \"Shell\"\nplatform = \"Linux\"\nprotocol = \"ssh\"\nlogin_account = \"own\"\n\
         [[profiles]]\nname = \"Instant\"\nmax_duration_minutes = 60\nschedule_horizon_days = 7\n\
         [[policies]]\nname = \"Load\"\nprofile = \"Instant\"\ngroups = [\"Load\"]\n\
         activities = [\"Shell\"]\nresources = {RESOURCES:?}\n"
    );
    for r in RESOURCES {
        text += &format!(
            "[[resources]]\nname = \"{r}\"\nkind = \"server\"\nplatform = \"Linux\"\naddress = \"{r}.test\"\nport = 22\n"
        );
    }
    let seed = portcullis::domain::seed::parse(&text).unwrap_or_else(|errors| {
        panic!(
            "load seed: {:?}",
            errors.iter().map(|e| e.display("load")).collect::<Vec<_>>()
        )
    });
    portcullis::seeding::apply(pool, &seed).await.unwrap();
}

/// Evaluates `attempt` (an expression giving an `Option`, awaited inside) again and again
/// until it gives a value; fails the test after `limit`. A macro rather than a function over an
/// async closure, whose futures the spawned load tasks could not prove `Send`.
macro_rules! until {
    ($what:expr, $limit:expr, $attempt:expr) => {{
        let deadline = std::time::Instant::now() + $limit;
        loop {
            if let Some(value) = $attempt {
                break value;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{}: no success in {:?}",
                $what,
                $limit
            );
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }};
}

/// One response (or failure to get one).
#[derive(Debug, Clone)]
pub struct Outcome {
    pub sent: Instant,
    pub received: Instant,
    pub what: String,
    /// The status, or why there was none (connection refused, reset, ...).
    pub status: Result<StatusCode, String>,
    /// The `X-Upstream` header (which instance answered, behind nginx).
    pub upstream: Option<String>,
}

/// Every outcome of a test, shared by its clients.
#[derive(Clone, Default)]
pub struct Record(Arc<Mutex<Vec<Outcome>>>);

impl Record {
    pub fn all(&self) -> Vec<Outcome> {
        self.0.lock().unwrap().clone()
    }
}

/// A user's browser: a cookie jar, no redirects followed, every response recorded.
pub struct Browser {
    base: String,
    client: reqwest::Client,
    record: Record,
}

impl Browser {
    pub fn new(base: &str, record: &Record) -> Self {
        Self {
            base: base.to_owned(),
            client: crate::support::new_client(),
            record: record.clone(),
        }
    }

    async fn send(&self, what: String, request: reqwest::RequestBuilder) -> Option<Page> {
        let sent = Instant::now();
        let result = match request.timeout(Duration::from_secs(30)).send().await {
            Ok(r) => {
                let status = r.status();
                let headers = r.headers().clone();
                match r.text().await {
                    Ok(body) => Ok(Page {
                        status,
                        headers,
                        body,
                    }),
                    Err(e) => Err(format!("body cut off: {e:?}")),
                }
            }
            Err(e) => Err(format!("{e:?}")),
        };
        let outcome = Outcome {
            sent,
            received: Instant::now(),
            what,
            status: result.as_ref().map(|p| p.status).map_err(Clone::clone),
            upstream: result.as_ref().ok().and_then(|p| {
                p.headers
                    .get("x-upstream")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned)
            }),
        };
        self.record.0.lock().unwrap().push(outcome);
        result.ok()
    }

    pub async fn get(&self, path: &str) -> Option<Page> {
        let request = self.client.get(format!("{}{path}", self.base));
        self.send(format!("GET {path}"), request).await
    }

    pub async fn post(&self, path: &str, form: &[(&str, &str)]) -> Option<Page> {
        let body = serde_urlencoded::to_string(form).unwrap();
        let request = self
            .client
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        self.send(format!("POST {path}"), request).await
    }

    /// Signs in (retrying while the service is unavailable).
    pub async fn sign_in(&self, username: &str, limit: Duration) {
        until!(
            "sign-in",
            limit,
            async {
                let token = self.get("/login").await?.csrf_token()?;
                let page = self
                    .post(
                        "/login",
                        &[
                            ("csrf_token", &token),
                            ("username", username),
                            ("password", PASSWORD),
                        ],
                    )
                    .await?;
                (page.status == StatusCode::SEE_OTHER && !page.location().starts_with("/login"))
                    .then_some(())
            }
            .await
        );
    }

    /// Walks the wizard from Request Type to Finish for `resource`, each step repeated until
    /// it lands where it should. `finishing` is called with the draft id just before Finish
    /// is posted the first time. Returns the draft (= request) id.
    pub async fn request_session(
        &self,
        resource: &str,
        limit: Duration,
        finishing: impl FnOnce(&str),
    ) -> String {
        let (token, activity) = until!(
            "request type",
            limit,
            async {
                let page = self.get("/wizard/request-type").await?;
                Some((
                    page.csrf_token()?,
                    page.attr("input[name=activity]", "value")?,
                ))
            }
            .await
        );
        self.post_until(
            limit,
            "/wizard/request-type",
            &[
                ("csrf_token", &token),
                ("activity", &activity),
                ("go", "next"),
            ],
            "/wizard/resources",
        )
        .await;
        let pick = until!(
            "resources",
            limit,
            async {
                let page = self.get(&format!("/wizard/resources?q={resource}")).await?;
                page.attr("input[name=pick]", "value")
            }
            .await
        );
        self.post_until(
            limit,
            "/wizard/resources",
            &[
                ("csrf_token", &token),
                ("shown", &pick),
                ("pick", &pick),
                ("go", "next"),
            ],
            "/wizard/notes",
        )
        .await;
        self.post_until(
            limit,
            "/wizard/notes",
            &[
                ("csrf_token", &token),
                ("notes", "Load test"),
                ("ticket", ""),
                ("go", "next"),
            ],
            "/wizard/scheduling",
        )
        .await;
        self.post_until(
            limit,
            "/wizard/scheduling",
            &[("csrf_token", &token), ("when", "now"), ("go", "next")],
            "/wizard/review",
        )
        .await;
        let draft = until!(
            "review",
            limit,
            async {
                let page = self.get("/wizard/review").await?;
                page.attr("input[name=draft_id]", "value")
            }
            .await
        );
        finishing(&draft);
        self.post_until(
            limit,
            "/wizard/finish",
            &[
                ("csrf_token", &token),
                ("draft_id", &draft),
                ("go", "finish"),
            ],
            "/dashboard",
        )
        .await;
        draft
    }

    /// Posts until the answer is a redirect to `to`.
    pub async fn post_until(
        &self,
        limit: Duration,
        path: &str,
        form: &[(&str, &str)],
        to: &str,
    ) -> Page {
        until!(
            path,
            limit,
            async {
                let page = self.post(path, form).await?;
                (page.status == StatusCode::SEE_OTHER && page.location() == to).then_some(page)
            }
            .await
        )
    }
}

/// What load tests read from pages.
pub trait Read {
    fn csrf_token(&self) -> Option<String>;
    fn attr(&self, selector: &str, attr: &str) -> Option<String>;
}

impl Read for Page {
    fn csrf_token(&self) -> Option<String> {
        if self.status != StatusCode::OK {
            return None;
        }
        self.attr(r#"input[name="csrf_token"]"#, "value")
    }

    fn attr(&self, selector: &str, attr: &str) -> Option<String> {
        if self.status != StatusCode::OK {
            return None;
        }
        let selector = Selector::parse(selector).unwrap();
        self.html()
            .select(&selector)
            .next()
            .and_then(|e| e.value().attr(attr))
            .map(str::to_owned)
    }
}

/// The request ids and session counts of every request in the database.
pub async fn requests_in_database(pool: &PgPool) -> Vec<(String, i64)> {
    sqlx::query_as(
        "SELECT r.id::text, count(s.id) FROM requests r
         LEFT JOIN activity_sessions s ON s.request_id = r.id
         GROUP BY r.id ORDER BY r.id",
    )
    .fetch_all(pool)
    .await
    .unwrap()
}
