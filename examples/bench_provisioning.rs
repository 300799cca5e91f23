//! Provisioning benchmark (see bench/README.md; run by `bench/provisioning.sh`, which starts
//! the OpenSSH server this talks to). Starts a PostgreSQL cluster of its own, seeds one
//! requester, an ephemeral-account activity and a `linux_ssh` resource pointing at the sshd,
//! then measures with the worker's own code (`portcullis::worker::tick`):
//!
//! * **one at a time**: `--rounds` sessions, each put in Provisioning alone; the time from a
//!   worker pass starting to the session being Available (grant: one SSH login, `useradd`,
//!   `chpasswd`, group), then from its end to the account being removed (revoke: `pkill`,
//!   `userdel -r`); p50 and p99 of each.
//! * **a burst**: `--burst` sessions entering Provisioning in the same instant (as a minute's
//!   scheduled starts would), the time until every one is Available, and then until every
//!   account is removed after they all end together.
//!
//! Every account it makes starts with `--prefix`; the script removes any left over.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Parser;
use portcullis::crypto::SecretBox;
use portcullis::pg_cluster::cluster::{Cluster, ClusterOptions};
use sqlx::PgPool;
use uuid::Uuid;

#[derive(Debug, Parser)]
struct Args {
    /// The sshd's port on 127.0.0.1.
    #[arg(long)]
    port: u16,
    /// The sshd's public host key file.
    #[arg(long)]
    host_key: PathBuf,
    /// The private key of the service account (root) on the sshd.
    #[arg(long)]
    service_key: PathBuf,
    /// Where the benchmark's own PostgreSQL cluster lives.
    #[arg(long)]
    data_dir: PathBuf,
    /// Prefix of every account made (lower-case letters).
    #[arg(long, default_value = "pcbench")]
    prefix: String,
    #[arg(long, default_value_t = 40)]
    rounds: usize,
    #[arg(long, default_value_t = 100)]
    burst: usize,
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let options = ClusterOptions::new(&args.data_dir);
    let cluster = tokio::task::spawn_blocking(move || Cluster::start(&options)).await??;
    portcullis::pg_cluster::ensure_database(&cluster, "bench").await?;
    let pool = portcullis::db::pool_options(20)
        .connect_with(cluster.connect_options("bench"))
        .await?;
    portcullis::db::MIGRATOR.run(&pool).await?;
    let secrets = SecretBox::random();
    let result = run(&args, &pool, &secrets).await;
    pool.close().await;
    cluster.stop()?;
    result
}

async fn run(args: &Args, pool: &PgPool, secrets: &SecretBox) -> Result<()> {
    seed(args, pool, secrets).await?;
    let mut grants = Vec::new();
    let mut revokes = Vec::new();
    for _ in 0..args.rounds {
        let ids = provisioning_sessions(pool, 1).await?;
        grants.push(until(pool, secrets, &ids, all_available).await?);
        end_all(pool, &ids).await?;
        revokes.push(until(pool, secrets, &ids, all_removed).await?);
    }
    grants.sort();
    revokes.sort();
    println!("one at a time ({} sessions):", args.rounds);
    println!(
        "  grant  p50 {}  p99 {}",
        ms(percentile(&grants, 50.0)),
        ms(percentile(&grants, 99.0))
    );
    println!(
        "  revoke p50 {}  p99 {}",
        ms(percentile(&revokes, 50.0)),
        ms(percentile(&revokes, 99.0))
    );

    let ids = provisioning_sessions(pool, args.burst).await?;
    let all_up = until(pool, secrets, &ids, all_available).await?;
    end_all(pool, &ids).await?;
    let all_gone = until(pool, secrets, &ids, all_removed).await?;
    println!("a burst of {} sessions starting together:", args.burst);
    println!("  all Available after {:.2} s", all_up.as_secs_f64());
    println!(
        "  all accounts removed {:.2} s after they ended",
        all_gone.as_secs_f64()
    );
    Ok(())
}

/// Runs worker passes until `done` holds for `ids`; how long that took.
async fn until(
    pool: &PgPool,
    secrets: &SecretBox,
    ids: &[Uuid],
    done: impl AsyncFn(&PgPool, &[Uuid]) -> Result<bool>,
) -> Result<Duration> {
    let started = Instant::now();
    loop {
        portcullis::worker::tick(pool, secrets).await?;
        if done(pool, ids).await? {
            return Ok(started.elapsed());
        }
        if started.elapsed() > Duration::from_secs(600) {
            bail!("not done after 10 minutes");
        }
    }
}

async fn all_available(pool: &PgPool, ids: &[Uuid]) -> Result<bool> {
    let (available, failed): (i64, i64) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE status = 'available'),
                count(*) FILTER (WHERE status = 'failed')
         FROM activity_sessions WHERE id = ANY($1)",
    )
    .bind(ids)
    .fetch_one(pool)
    .await?;
    if failed > 0 {
        let reason: Option<String> = sqlx::query_scalar(
            "SELECT comment FROM session_events WHERE session_id = ANY($1)
             AND kind = 'provisioning_failed' LIMIT 1",
        )
        .bind(ids)
        .fetch_optional(pool)
        .await?;
        bail!("a grant failed: {}", reason.unwrap_or_default());
    }
    Ok(usize::try_from(available)? == ids.len())
}

async fn all_removed(pool: &PgPool, ids: &[Uuid]) -> Result<bool> {
    let left: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM provision_steps
         WHERE session_id = ANY($1) AND action = 'revoke' AND done_at IS NULL",
    )
    .bind(ids)
    .fetch_one(pool)
    .await?;
    Ok(left == 0)
}

async fn end_all(pool: &PgPool, ids: &[Uuid]) -> Result<()> {
    let mut tx = pool.begin().await?;
    for id in ids {
        let event = portcullis::db::sessions::NewEvent {
            session: *id,
            actor: portcullis::db::sessions::Actor::System,
            kind: portcullis::domain::event::EventKind::WindowEnded,
            from: None,
            to: None,
            comment: "Benchmark: the session ended.",
            client: None,
        };
        portcullis::db::sessions::transition(
            &mut tx,
            portcullis::domain::status::Transition::Complete,
            event,
        )
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

async fn seed(args: &Args, pool: &PgPool, secrets: &SecretBox) -> Result<()> {
    let text = format!(
        "demo = true\n[[users]]\nusername = \"bench\"\npassword = \"portcullis-bench\"\n\
         [[activities]]\nname = \"Break-glass\"\nplatform = \"Linux\"\nprotocol = \"ssh\"\n\
         login_account = \"ephemeral\"\nlogin_template = \"{}-{{session}}\"\n\
         [[profiles]]\nname = \"Instant\"\nmax_duration_minutes = 60\nschedule_horizon_days = 7\n\
         [[resources]]\nname = \"target\"\nkind = \"server\"\nplatform = \"Linux\"\n\
         address = \"127.0.0.1\"\nport = {}\n\
         [[policies]]\nname = \"Bench\"\nprofile = \"Instant\"\nusers = [\"bench\"]\n\
         activities = [\"Break-glass\"]\nresources = [\"target\"]\n",
        args.prefix, args.port
    );
    let seed = portcullis::domain::seed::parse(&text).map_err(|e| {
        anyhow::anyhow!(
            "bench seed: {:?}",
            e.iter().map(|e| e.display("bench")).collect::<Vec<_>>()
        )
    })?;
    portcullis::seeding::apply(pool, &seed).await?;
    let host_key = std::fs::read_to_string(&args.host_key)
        .context("host key")?
        .split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ");
    let service_key = std::fs::read_to_string(&args.service_key).context("service key")?;
    let credential = Uuid::new_v4();
    sqlx::query(
        "INSERT INTO service_credentials (id, name, username, secret_ciphertext)
         VALUES ($1, 'bench root', 'root', $2)",
    )
    .bind(credential)
    .bind(secrets.seal(credential, &service_key))
    .execute(pool)
    .await?;
    sqlx::query(
        "UPDATE resources SET provisioner = 'linux_ssh', credential_id = $1, host_key = $2
         WHERE name = 'target'",
    )
    .bind(credential)
    .bind(host_key)
    .execute(pool)
    .await?;
    Ok(())
}

/// `count` sessions of the bench user entering Provisioning now, one request each (as the
/// worker's start of scheduled sessions leaves them).
async fn provisioning_sessions(pool: &PgPool, count: usize) -> Result<Vec<Uuid>> {
    let mut tx = pool.begin().await?;
    let mut ids = Vec::with_capacity(count);
    for _ in 0..count {
        let request = Uuid::now_v7();
        let session = Uuid::now_v7();
        sqlx::query(
            "INSERT INTO requests (id, requester_id, policy_id, profile_id, activity_id,
                 policy_name, profile_name, activity_name, protocol, login_mode, login_template,
                 notes, start_now, requested_start, duration_minutes, tier_count)
             SELECT $1, u.id, p.id, p.profile_id, a.id, p.name, 'Instant', a.name, a.protocol,
                    a.login_mode, a.login_template, 'Benchmark', true, now(), 60, 0
             FROM users u, access_policies p, activities a
             WHERE u.username = 'bench' AND p.name = 'Bench' AND a.name = 'Break-glass'",
        )
        .bind(request)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO activity_sessions (id, request_id, requester_id, resource_id,
                 resource_name, resource_address, resource_port, activity_name, status,
                 requested_start, ends_at)
             SELECT $1, r.id, r.requester_id, res.id, res.name, res.address, res.port,
                    r.activity_name, 'provisioning', now(), now() + interval '60 minutes'
             FROM requests r, resources res WHERE r.id = $2 AND res.name = 'target'",
        )
        .bind(session)
        .bind(request)
        .execute(&mut *tx)
        .await?;
        ids.push(session);
    }
    tx.commit().await?;
    Ok(ids)
}
