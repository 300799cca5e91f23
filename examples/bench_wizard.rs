//! The benchmark's HTTP driver (see bench/README.md). Two commands:
//!
//! * `prepare`: signs seeded users in (optionally leaving each with a wizard draft at Resource
//!   Selection) and writes one `Cookie` header value per line, for wrk to replay. It checks
//!   that every cookie really opens the pages wrk will hit, so a broken sign-in cannot pass
//!   for a fast benchmark (a redirect to /login would otherwise count as a success).
//! * `run`: the whole-wizard load. Each of `--count` workers signs in as its own user, then
//!   walks the Activity Request wizard in a loop the way a browser does (every POST followed
//!   by the GET of the page it redirects to): Create Session, Request Type, Resource
//!   Selection, Notes, Scheduling, Review, Finish, and the dashboard Finish lands on. It
//!   reports finished requests per second and the p50/p99 of whole-wizard latency.
//!
//! ```sh
//! cargo run --release --example bench_wizard -- prepare --base http://127.0.0.1:3000 \
//!     --first 1 --count 64 --draft --search web --out cookies.txt
//! cargo run --release --example bench_wizard -- run --base http://127.0.0.1:3000 \
//!     --first 65 --count 64 --warmup 5 --duration 25
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use clap::{Parser, Subcommand};
use reqwest::cookie::{CookieStore, Jar};
use reqwest::{Client, StatusCode, Url};
use tokio::task::JoinSet;

#[derive(Debug, Parser)]
#[command(about = "Portcullis benchmark driver: sign-ins for wrk, and the whole-wizard load")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

/// Which seeded users: `<prefix><number, zero-padded to width>`, numbers first..first+count.
#[derive(Debug, Clone, clap::Args)]
struct Users {
    /// Base URL of the Portcullis server.
    #[arg(long)]
    base: String,
    /// Username prefix of the seeded users (bench/seed.sql makes u00001..u09995).
    #[arg(long, default_value = "u")]
    prefix: String,
    /// Digits of the zero-padded user number.
    #[arg(long, default_value_t = 5)]
    width: usize,
    /// First user number.
    #[arg(long, default_value_t = 1)]
    first: usize,
    /// How many users (and, for `run`, concurrent workers).
    #[arg(long, default_value_t = 64)]
    count: usize,
    /// Password of every seeded user (copied from the demo user alice).
    #[arg(long, default_value = "portcullis-demo")]
    password: String,
}

impl Users {
    fn name(&self, i: usize) -> String {
        format!(
            "{}{:0width$}",
            self.prefix,
            self.first + i,
            width = self.width
        )
    }
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Sign users in and write their session cookies, one `Cookie` header value per line.
    Prepare {
        #[command(flatten)]
        users: Users,
        /// Also start a wizard draft for each user and leave it at Resource Selection.
        #[arg(long)]
        draft: bool,
        /// With --draft: check that `/wizard/resources?q=<search>` lists resources.
        #[arg(long, default_value = "")]
        search: String,
        /// Where to write the cookies.
        #[arg(long)]
        out: std::path::PathBuf,
    },
    /// Run the whole-wizard load.
    Run(RunArgs),
}

/// `run`'s options.
#[derive(Debug, clap::Args)]
struct RunArgs {
    #[command(flatten)]
    users: Users,
    /// Seconds of load before measuring.
    #[arg(long, default_value_t = 5)]
    warmup: u64,
    /// Seconds measured.
    #[arg(long, default_value_t = 25)]
    duration: u64,
    /// Also write the summary as JSON to this file.
    #[arg(long)]
    json: Option<std::path::PathBuf>,
    /// Use these signed-in sessions (from `prepare`, one per worker) instead of signing
    /// the users in first.
    #[arg(long)]
    cookies: Option<std::path::PathBuf>,
    /// Create this file when the measured window starts (after the warm-up).
    #[arg(long)]
    mark_start: Option<std::path::PathBuf>,
    /// Create this file when the measured window ends.
    #[arg(long)]
    mark_end: Option<std::path::PathBuf>,
}

#[tokio::main]
async fn main() -> Result<()> {
    match Cli::parse().command {
        Cmd::Prepare {
            users,
            draft,
            search,
            out,
        } => prepare(users, draft, search, out).await,
        Cmd::Run(args) => run(args).await,
    }
}

/// A browser: its own cookie jar and keep-alive connection; follows redirects like one.
struct Browser {
    base: Url,
    jar: Arc<Jar>,
    client: Client,
}

/// A page as fetched: where the redirects ended, status, body.
struct Page {
    path: String,
    status: StatusCode,
    body: String,
}

impl Page {
    fn expect(self, step: &str, path: &str) -> Result<Self> {
        if self.status != StatusCode::OK || self.path != path {
            let start: String = self.body.chars().take(600).collect();
            bail!(
                "{step}: expected 200 at {path}, got {} at {}: {start}",
                self.status,
                self.path
            );
        }
        Ok(self)
    }
}

/// The `value` of every `<input ... name="NAME" value="...">` (the templates write `name`
/// then `value`). A string search, not an HTML parser: the driver shares the CPU with the
/// server, so it should cost as little as wrk does.
fn input_values<'a>(html: &'a str, name: &str) -> Vec<&'a str> {
    let needle = format!("name=\"{name}\" value=\"");
    let mut out = Vec::new();
    let mut rest = html;
    while let Some(i) = rest.find(&needle) {
        rest = &rest[i + needle.len()..];
        if let Some(end) = rest.find('"') {
            out.push(&rest[..end]);
            rest = &rest[end..];
        }
    }
    out
}

fn first_value<'a>(html: &'a str, name: &str) -> Result<&'a str> {
    input_values(html, name)
        .into_iter()
        .next()
        .ok_or_else(|| anyhow!("no input named {name} on the page"))
}

impl Browser {
    fn new(base: &str) -> Result<Self> {
        let base = Url::parse(base).context("--base")?;
        let jar = Arc::new(Jar::default());
        let client = Client::builder()
            .cookie_provider(jar.clone())
            .pool_max_idle_per_host(1)
            .timeout(Duration::from_secs(30))
            .build()?;
        Ok(Self { base, jar, client })
    }

    async fn page(&self, requested: &str, response: reqwest::Response) -> Result<Page> {
        let path = response.url().path().to_owned();
        let status = response.status();
        let body = response.text().await?;
        // Two HTTP exchanges when a redirect was followed (the application never chains them).
        let exchanges = if path == requested.split('?').next().unwrap_or(requested) {
            1
        } else {
            2
        };
        if let Some((from, until)) = WINDOW.get() {
            let now = Instant::now();
            if now >= *from && now <= *until {
                HTTP_IN_WINDOW.fetch_add(exchanges, Ordering::Relaxed);
            }
        }
        Ok(Page { path, status, body })
    }

    async fn get(&self, path: &str) -> Result<Page> {
        let response = self.client.get(self.base.join(path)?).send().await?;
        self.page(path, response).await
    }

    async fn post(&self, path: &str, form: &[(&str, &str)]) -> Result<Page> {
        let response = self
            .client
            .post(self.base.join(path)?)
            .form(form)
            .send()
            .await?;
        self.page(path, response).await
    }

    async fn sign_in(&self, username: &str, password: &str) -> Result<Page> {
        let login = self.get("/login").await?.expect("sign-in form", "/login")?;
        let csrf = first_value(&login.body, "csrf_token")?.to_owned();
        self.post(
            "/login",
            &[
                ("csrf_token", &csrf),
                ("username", username),
                ("password", password),
                ("next", ""),
            ],
        )
        .await?
        .expect(&format!("sign-in of {username}"), "/dashboard")
    }

    /// Puts the cookies of a `Cookie` header value (`a=1; b=2`) in the jar.
    fn add_cookies(&self, header: &str) {
        for cookie in header.split("; ") {
            self.jar.add_cookie_str(cookie, &self.base);
        }
    }

    /// The `Cookie` header this browser sends.
    fn cookie_header(&self) -> Result<String> {
        let value = self
            .jar
            .cookies(&self.base)
            .ok_or_else(|| anyhow!("no cookie after sign-in"))?;
        Ok(value.to_str()?.to_owned())
    }
}

/// What `prepare` learned about one user.
struct Prepared {
    cookie: String,
    dashboard_bytes: usize,
    dashboard_rows: usize,
    resources_bytes: usize,
    resources_rows: usize,
}

async fn prepare_one(users: Users, i: usize, draft: bool, search: String) -> Result<Prepared> {
    let username = users.name(i);
    let browser = Browser::new(&users.base)?;
    browser.sign_in(&username, &users.password).await?;
    let (mut resources_bytes, mut resources_rows) = (0, 0);
    if draft {
        let page = browser
            .get("/wizard")
            .await?
            .expect("Create Session", "/wizard/request-type")?;
        let csrf = first_value(&page.body, "csrf_token")?.to_owned();
        let activity = first_value(&page.body, "activity")
            .with_context(|| format!("{username} is granted no activity"))?
            .to_owned();
        browser
            .post(
                "/wizard/request-type",
                &[
                    ("csrf_token", &csrf),
                    ("activity", &activity),
                    ("go", "next"),
                ],
            )
            .await?
            .expect("Request Type", "/wizard/resources")?;
    }
    let cookie = browser.cookie_header()?;
    // What wrk will send: the cookie alone, no redirects followed.
    let fresh = Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let fetch = |path: String| {
        let url = browser.base.join(&path);
        let (fresh, cookie, username) = (fresh.clone(), cookie.clone(), username.clone());
        async move {
            let response = fresh
                .get(url?)
                .header(reqwest::header::COOKIE, cookie)
                .send()
                .await?;
            let status = response.status();
            let body = response.text().await?;
            if status != StatusCode::OK {
                bail!("{path} with {username}'s cookie: {status}");
            }
            Ok::<_, anyhow::Error>(body)
        }
    };
    let dashboard = fetch("/dashboard".into()).await?;
    let dashboard_rows = dashboard.matches("<tr data-session=").count();
    if draft {
        let q = serde_urlencoded::to_string([("q", &search)])?;
        let page = fetch(format!("/wizard/resources?{q}")).await?;
        if !page.contains("id=\"resources\"") {
            bail!("Resource Selection did not render for {}", users.name(i));
        }
        resources_rows = input_values(&page, "shown").len();
        resources_bytes = page.len();
    }
    Ok(Prepared {
        cookie,
        dashboard_bytes: dashboard.len(),
        dashboard_rows,
        resources_bytes,
        resources_rows,
    })
}

async fn prepare(users: Users, draft: bool, search: String, out: std::path::PathBuf) -> Result<()> {
    // Sign-ins cost an argon2 hash each (19 MiB): a few at a time.
    let mut results: Vec<Option<Prepared>> = (0..users.count).map(|_| None).collect();
    let mut set = JoinSet::new();
    let mut next = 0;
    while next < users.count || !set.is_empty() {
        while next < users.count && set.len() < 8 {
            let (u, s) = (users.clone(), search.clone());
            let i = next;
            set.spawn(async move { (i, prepare_one(u, i, draft, s).await) });
            next += 1;
        }
        if let Some(joined) = set.join_next().await {
            let (i, result) = joined?;
            results[i] = Some(result.with_context(|| format!("preparing {}", users.name(i)))?);
        }
    }
    let prepared: Vec<Prepared> = results.into_iter().flatten().collect();
    let lines: Vec<&str> = prepared.iter().map(|p| p.cookie.as_str()).collect();
    std::fs::write(&out, lines.join("\n") + "\n")
        .with_context(|| format!("writing {}", out.display()))?;
    let n = prepared.len().max(1);
    let avg = |f: fn(&Prepared) -> usize| prepared.iter().map(f).sum::<usize>() / n;
    println!(
        "{{\"users\":{},\"dashboard_bytes\":{},\"dashboard_rows\":{},\"resources_bytes\":{},\"resources_rows\":{}}}",
        prepared.len(),
        avg(|p| p.dashboard_bytes),
        avg(|p| p.dashboard_rows),
        avg(|p| p.resources_bytes),
        avg(|p| p.resources_rows),
    );
    Ok(())
}

/// The measured window, and the HTTP exchanges completed inside it (all workers).
static WINDOW: std::sync::OnceLock<(Instant, Instant)> = std::sync::OnceLock::new();
static HTTP_IN_WINDOW: AtomicU64 = AtomicU64::new(0);

/// Step names, in order, for the per-step timings.
const STEPS: [&str; 6] = [
    "create_session",
    "request_type",
    "resources",
    "notes",
    "scheduling",
    "finish",
];
/// One whole wizard, Create Session to Finish. Returns the time each step took.
async fn wizard(b: &Browser, n: u64) -> Result<[Duration; 6]> {
    let mut times = [Duration::ZERO; 6];
    let mut t = Instant::now();
    let mut lap = |i: usize| {
        let now = Instant::now();
        times[i] = now - t;
        t = now;
    };

    let page = b
        .get("/wizard")
        .await?
        .expect("Create Session", "/wizard/request-type")?;
    lap(0);
    let csrf = first_value(&page.body, "csrf_token")?.to_owned();
    let activities = input_values(&page.body, "activity");
    if activities.is_empty() {
        bail!("no activity offered");
    }
    let activity = activities[(n as usize) % activities.len()].to_owned();

    let page = b
        .post(
            "/wizard/request-type",
            &[
                ("csrf_token", &csrf),
                ("activity", &activity),
                ("go", "next"),
            ],
        )
        .await?
        .expect("Request Type", "/wizard/resources")?;
    lap(1);
    let shown: Vec<String> = input_values(&page.body, "shown")
        .into_iter()
        .map(str::to_owned)
        .collect();
    if shown.is_empty() {
        bail!("no resource offered");
    }
    let pick = shown[(n as usize / 3) % shown.len()].clone();
    let mut form: Vec<(&str, &str)> = vec![("csrf_token", &csrf), ("page", "1"), ("q", "")];
    for id in &shown {
        form.push(("shown", id));
    }
    form.push(("pick", &pick));
    form.push(("go", "next"));
    b.post("/wizard/resources", &form)
        .await?
        .expect("Resource Selection", "/wizard/notes")?;
    lap(2);

    let ticket = format!("CHG{:06}", n % 1_000_000);
    b.post(
        "/wizard/notes",
        &[
            ("csrf_token", &csrf),
            ("notes", "Benchmark: routine maintenance window."),
            ("ticket", &ticket),
            ("go", "next"),
        ],
    )
    .await?
    .expect("Notes", "/wizard/scheduling")?;
    lap(3);

    let review = b
        .post(
            "/wizard/scheduling",
            &[("csrf_token", &csrf), ("when", "now"), ("go", "next")],
        )
        .await?
        .expect("Scheduling", "/wizard/review")?;
    lap(4);
    let draft = first_value(&review.body, "draft_id")?.to_owned();

    let done = b
        .post(
            "/wizard/finish",
            &[
                ("csrf_token", &csrf),
                ("draft_id", &draft),
                ("go", "finish"),
            ],
        )
        .await?;
    if done.status != StatusCode::OK
        || !done.path.starts_with("/dashboard")
        || !done.body.contains("Created 1 activity session")
    {
        let start: String = done.body.chars().take(600).collect();
        bail!("Finish: got {} at {}: {start}", done.status, done.path);
    }
    lap(5);
    Ok(times)
}

/// What one worker measured.
#[derive(Default)]
struct Tally {
    /// Whole-wizard latencies of the wizards finished inside the measured window.
    latencies: Vec<Duration>,
    steps: [Duration; 6],
    errors: u64,
}

/// This process's user + system CPU time, in clock ticks (/proc/self/stat).
fn own_cpu_ticks() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(") ").map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let field = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // utime and stime are fields 14 and 15 of stat; 12 and 13 after the command name.
    field(11) + field(12)
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1].as_secs_f64() * 1000.0
}

async fn run(args: RunArgs) -> Result<()> {
    let RunArgs {
        users,
        warmup,
        duration,
        json,
        cookies,
        mark_start,
        mark_end,
    } = args;
    let cookies: Option<Vec<String>> = match cookies {
        Some(path) => Some(
            std::fs::read_to_string(&path)
                .with_context(|| format!("reading {}", path.display()))?
                .lines()
                .filter(|l| !l.trim().is_empty())
                .map(str::to_owned)
                .collect(),
        ),
        None => None,
    };
    if let Some(c) = &cookies
        && c.len() < users.count
    {
        bail!("{} cookies for {} workers", c.len(), users.count);
    }
    // Sign everyone in first (not measured), a few at a time.
    let mut browsers = Vec::with_capacity(users.count);
    for chunk in (0..users.count).collect::<Vec<_>>().chunks(8) {
        let mut set = JoinSet::new();
        for &i in chunk {
            let users = users.clone();
            let cookie = cookies.as_ref().map(|c| c[i].clone());
            set.spawn(async move {
                let b = Browser::new(&users.base)?;
                match &cookie {
                    Some(c) => b.add_cookies(c),
                    None => {
                        b.sign_in(&users.name(i), &users.password).await?;
                    }
                }
                // A draft left over from an interrupted run would change the first page.
                let page = b.get("/wizard/request-type").await?;
                let csrf = first_value(&page.body, "csrf_token")?.to_owned();
                b.post(
                    "/wizard/request-type",
                    &[("csrf_token", &csrf), ("go", "cancel")],
                )
                .await?;
                Ok::<_, anyhow::Error>((i, b))
            });
        }
        while let Some(joined) = set.join_next().await {
            browsers.push(joined??);
        }
    }
    browsers.sort_by_key(|(i, _)| *i);

    let start = Instant::now();
    let measure_from = start + Duration::from_secs(warmup);
    let until = measure_from + Duration::from_secs(duration);
    let _ = WINDOW.set((measure_from, until));
    let shown_errors = Arc::new(AtomicU64::new(0));
    // The driver's own CPU time in the measured window, and the marks for run.sh.
    let window = tokio::spawn(async move {
        tokio::time::sleep_until(measure_from.into()).await;
        let t0 = own_cpu_ticks();
        if let Some(path) = &mark_start {
            let _ = std::fs::write(path, "");
        }
        tokio::time::sleep_until(until.into()).await;
        let t1 = own_cpu_ticks();
        if let Some(path) = &mark_end {
            let _ = std::fs::write(path, "");
        }
        t1.saturating_sub(t0)
    });
    let mut set = JoinSet::new();
    for (i, b) in browsers {
        let shown_errors = shown_errors.clone();
        set.spawn(async move {
            let mut tally = Tally::default();
            let mut n = i as u64 * 7919;
            while Instant::now() < until {
                let t0 = Instant::now();
                match wizard(&b, n).await {
                    Ok(steps) => {
                        let t1 = Instant::now();
                        if t0 >= measure_from && t1 <= until {
                            tally.latencies.push(t1 - t0);
                            for (sum, s) in tally.steps.iter_mut().zip(steps) {
                                *sum += s;
                            }
                        }
                    }
                    Err(e) => {
                        if Instant::now() >= measure_from && Instant::now() <= until {
                            tally.errors += 1;
                        }
                        if shown_errors.fetch_add(1, Ordering::Relaxed) < 5 {
                            eprintln!("bench_wizard: worker {i}: {e:#}");
                        }
                        // Start over: discard whatever draft is half done.
                        if let Ok(page) = b.get("/wizard/request-type").await
                            && let Ok(csrf) = first_value(&page.body, "csrf_token")
                        {
                            let csrf = csrf.to_owned();
                            let _ = b
                                .post(
                                    "/wizard/request-type",
                                    &[("csrf_token", &csrf), ("go", "cancel")],
                                )
                                .await;
                        }
                    }
                }
                n += 1;
            }
            tally
        });
    }
    let mut all = Tally::default();
    while let Some(joined) = set.join_next().await {
        let t = joined?;
        all.latencies.extend(t.latencies);
        for (sum, s) in all.steps.iter_mut().zip(t.steps) {
            *sum += s;
        }
        all.errors += t.errors;
    }
    let cpu_ticks = window.await?;
    all.latencies.sort();
    let finished = all.latencies.len() as u64;
    let secs = duration as f64;
    let per_s = finished as f64 / secs;
    let mean_ms = |d: Duration| {
        if finished == 0 {
            0.0
        } else {
            d.as_secs_f64() * 1000.0 / finished as f64
        }
    };
    let steps: Vec<String> = STEPS
        .iter()
        .zip(all.steps)
        .map(|(name, d)| format!("\"{name}\":{:.2}", mean_ms(d)))
        .collect();
    // Each wizard is 12 HTTP exchanges: GET /wizard and its redirect, then five POSTs each
    // followed by the GET of the page it redirects to.
    let http = HTTP_IN_WINDOW.load(Ordering::Relaxed);
    let summary = format!(
        "{{\"wizards\":{finished},\"seconds\":{secs},\"wizards_per_s\":{per_s:.2},\"http_requests\":{http},\
         \"http_per_s\":{:.1},\"p50_ms\":{:.2},\"p99_ms\":{:.2},\"max_ms\":{:.2},\"errors\":{},\"workers\":{},\
         \"cpu_ticks\":{cpu_ticks},\"step_mean_ms\":{{{}}}}}",
        http as f64 / secs,
        percentile(&all.latencies, 50.0),
        percentile(&all.latencies, 99.0),
        percentile(&all.latencies, 100.0),
        all.errors,
        users.count,
        steps.join(","),
    );
    println!("{summary}");
    if let Some(path) = json {
        std::fs::write(&path, summary + "\n")
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if finished == 0 && duration >= 10 {
        bail!("no wizard finished");
    }
    Ok(())
}
