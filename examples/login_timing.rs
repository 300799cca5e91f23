//! Sign-in timing driver (see bench/README.md, "Sign-in timing"): sends `--count` wrong-
//! password sign-ins, alternating between an existing account and an unknown name, one at a
//! time, and prints the median and p90 of each and their difference. `bench/login_timing.sh`
//! starts the server it talks to.
//!
//! ```sh
//! cargo run --release --example login_timing -- --base http://127.0.0.1:3000 \
//!     --existing alice --unknown nosuchuser --count 2000
//! ```

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Parser;
use reqwest::{Client, StatusCode};

#[derive(Debug, Parser)]
#[command(about = "Portcullis sign-in timing: wrong passwords, existing vs unknown name")]
struct Cli {
    /// Base URL of the Portcullis server (loopback only).
    #[arg(long, default_value = "http://127.0.0.1:3000")]
    base: String,
    /// An account that exists.
    #[arg(long, default_value = "alice")]
    existing: String,
    /// A name no account has.
    #[arg(long, default_value = "nobody-here")]
    unknown: String,
    /// Sign-ins in all, half for each name (at most 20,000).
    #[arg(long, default_value_t = 2000)]
    count: usize,
    /// Sign-ins sent first and not counted (connection set-up, caches).
    #[arg(long, default_value_t = 50)]
    warmup: usize,
}

#[tokio::main]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    let url = reqwest::Url::parse(&cli.base).context("--base")?;
    if !matches!(url.host_str(), Some("127.0.0.1" | "localhost" | "[::1]")) {
        bail!("--base must be a loopback address");
    }
    if cli.count > 20_000 || cli.warmup > 1_000 {
        bail!("--count is at most 20000 and --warmup at most 1000");
    }
    let client = Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()?;
    let mut existing = Vec::with_capacity(cli.count / 2);
    let mut unknown = Vec::with_capacity(cli.count / 2);
    for i in 0..cli.warmup + cli.count {
        let (name, into) = if i % 2 == 0 {
            (&cli.existing, &mut existing)
        } else {
            (&cli.unknown, &mut unknown)
        };
        // A fresh form each time, as a browser would have; only the POST is timed.
        let token = csrf_token(&client, &cli.base).await?;
        let took = attempt(&client, &cli.base, &token, name).await?;
        if i >= cli.warmup {
            into.push(took);
        }
    }
    let e = summary(&mut existing);
    let u = summary(&mut unknown);
    println!("name      count  median_ms  p90_ms");
    println!(
        "existing  {:>5}  {:>9.3}  {:>6.3}",
        existing.len(),
        e.0,
        e.1
    );
    println!("unknown   {:>5}  {:>9.3}  {:>6.3}", unknown.len(), u.0, u.1);
    println!(
        "difference (existing - unknown): median {:+.3} ms, p90 {:+.3} ms",
        e.0 - u.0,
        e.1 - u.1
    );
    Ok(())
}

async fn csrf_token(client: &Client, base: &str) -> Result<String> {
    let page = client
        .get(format!("{base}/login"))
        .send()
        .await?
        .text()
        .await?;
    let marker = r#"name="csrf_token" value=""#;
    let start = page.find(marker).context("no CSRF token on /login")? + marker.len();
    let end = page[start..].find('"').context("unterminated token")?;
    Ok(page[start..start + end].to_owned())
}

/// One wrong-password sign-in; how long the server took to answer it.
async fn attempt(client: &Client, base: &str, token: &str, name: &str) -> Result<Duration> {
    let form = [
        ("csrf_token", token),
        ("username", name),
        ("password", "not-the-password"),
        ("next", ""),
    ];
    let started = Instant::now();
    let response = client
        .post(format!("{base}/login"))
        .form(&form)
        .send()
        .await?;
    let status = response.status();
    response.bytes().await?;
    let took = started.elapsed();
    if status != StatusCode::UNAUTHORIZED {
        bail!("expected 401 for {name}, got {status} (is the sign-in rate limit raised?)");
    }
    Ok(took)
}

/// Median and p90, in milliseconds.
fn summary(samples: &mut [Duration]) -> (f64, f64) {
    samples.sort();
    let at = |q: f64| {
        let i = ((samples.len() as f64 - 1.0) * q).round() as usize;
        samples
            .get(i)
            .map_or(f64::NAN, |d| d.as_secs_f64() * 1000.0)
    };
    (at(0.5), at(0.9))
}
