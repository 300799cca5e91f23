//! Gateway benchmark helper (see bench/README.md; run by `bench/gateway.sh`). Prepares one
//! session that is Available through the SSH gateway of a running Portcullis server: adopts
//! that server's built-in PostgreSQL (its data directory), seeds a requester `bench`, an
//! ephemeral-account SSH activity and a `linux_ssh` resource pointing at the benchmark's sshd,
//! puts one session in Provisioning and runs the worker's own code until it is Available (the
//! account made on the target, its password sealed with the server's key), registers the
//! user's public key as the Account page does, and prints the connection string and the
//! login account, one per line.

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
    /// The running server's data directory (its built-in database is adopted).
    #[arg(long)]
    data_dir: PathBuf,
    /// The server's key file (the session's password is sealed with it).
    #[arg(long)]
    key_file: PathBuf,
    /// The sshd's port on 127.0.0.1.
    #[arg(long)]
    port: u16,
    /// The sshd's public host key file.
    #[arg(long)]
    host_key: PathBuf,
    /// The private key of the service account (root) on the sshd.
    #[arg(long)]
    service_key: PathBuf,
    /// The user's public key file, registered for `bench`.
    #[arg(long)]
    user_key: PathBuf,
    /// Prefix of the account made (lower-case letters).
    #[arg(long, default_value = "pcgwbench")]
    prefix: String,
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let options = ClusterOptions::new(&args.data_dir);
    let cluster = tokio::task::spawn_blocking(move || Cluster::start(&options)).await??;
    if cluster.owns_server() {
        bail!(
            "no Portcullis server is running on {}",
            args.data_dir.display()
        );
    }
    let pool = portcullis::db::pool_options(4)
        .connect_with(cluster.connect_options(portcullis::pg_cluster::BUILTIN_DATABASE))
        .await?;
    let secrets = SecretBox::load_or_create(&args.key_file)?;
    let result = run(&args, &pool, &secrets).await;
    pool.close().await;
    result
}

async fn run(args: &Args, pool: &PgPool, secrets: &SecretBox) -> Result<()> {
    seed(args, pool, secrets).await?;
    let session = provisioning_session(pool).await?;
    let started = Instant::now();
    loop {
        portcullis::worker::tick(pool, secrets).await?;
        let (status, epoch, account): (String, i32, Option<String>) = sqlx::query_as(
            "SELECT status::text, access_epoch, login_account FROM activity_sessions WHERE id = $1",
        )
        .bind(session)
        .fetch_one(pool)
        .await?;
        match status.as_str() {
            "available" => {
                println!("{}", secrets.connection_string(session, epoch));
                println!("{}", account.unwrap_or_default());
                return Ok(());
            }
            "provisioning" if started.elapsed() < Duration::from_secs(120) => {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            other => {
                let why: Vec<String> = sqlx::query_scalar(
                    "SELECT kind || ': ' || comment FROM session_events WHERE session_id = $1 ORDER BY id",
                )
                .bind(session)
                .fetch_all(pool)
                .await?;
                bail!("the session is {other}, not Available: {why:?}");
            }
        }
    }
}

async fn seed(args: &Args, pool: &PgPool, secrets: &SecretBox) -> Result<()> {
    let text = format!(
        "demo = true\n[[users]]\nusername = \"bench\"\npassword = \"portcullis-bench\"\n\
         [[activities]]\nname = \"Gateway bench\"\nplatform = \"Linux\"\nprotocol = \"ssh\"\n\
         login_account = \"ephemeral\"\nlogin_template = \"{}-{{session}}\"\n\
         [[profiles]]\nname = \"Gateway bench\"\nmax_duration_minutes = 120\nschedule_horizon_days = 7\n\
         [[resources]]\nname = \"gateway-bench-target\"\nkind = \"server\"\nplatform = \"Linux\"\n\
         address = \"127.0.0.1\"\nport = {}\n\
         [[policies]]\nname = \"Gateway bench\"\nprofile = \"Gateway bench\"\nusers = [\"bench\"]\n\
         activities = [\"Gateway bench\"]\nresources = [\"gateway-bench-target\"]\n",
        args.prefix, args.port
    );
    let seed = portcullis::domain::seed::parse(&text).map_err(|e| {
        anyhow::anyhow!(
            "bench seed: {:?}",
            e.iter().map(|e| e.display("bench")).collect::<Vec<_>>()
        )
    })?;
    portcullis::seeding::apply(pool, &seed).await?;
    let host_key = one_line(&args.host_key)?;
    let service_key = std::fs::read_to_string(&args.service_key).context("service key")?;
    let credential = Uuid::new_v4();
    sqlx::query(
        "INSERT INTO service_credentials (id, name, username, secret_ciphertext)
         VALUES ($1, 'gateway bench root', 'root', $2)",
    )
    .bind(credential)
    .bind(secrets.seal(credential, &service_key))
    .execute(pool)
    .await?;
    sqlx::query(
        "UPDATE resources SET provisioner = 'linux_ssh', credential_id = $1, host_key = $2
         WHERE name = 'gateway-bench-target'",
    )
    .bind(credential)
    .bind(host_key)
    .execute(pool)
    .await?;
    // The user's key, as the Account page registers it.
    let key = portcullis::domain::ssh_keys::parse(&one_line(&args.user_key)?)
        .map_err(|e| anyhow::anyhow!("user key: {e}"))?;
    sqlx::query(
        "INSERT INTO user_ssh_keys (id, user_id, name, algorithm, public_key, fingerprint)
         SELECT $1, id, 'bench', $2, $3, $4 FROM users WHERE username = 'bench'",
    )
    .bind(Uuid::new_v4())
    .bind(&key.algorithm)
    .bind(&key.public_key)
    .bind(&key.fingerprint)
    .execute(pool)
    .await?;
    Ok(())
}

/// The key type and base64 of an OpenSSH public key file (no comment).
fn one_line(path: &std::path::Path) -> Result<String> {
    Ok(std::fs::read_to_string(path)
        .with_context(|| format!("reading {}", path.display()))?
        .split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" "))
}

/// A session of `bench` entering Provisioning now, with its request (as the worker's start
/// of a scheduled session leaves it).
async fn provisioning_session(pool: &PgPool) -> Result<Uuid> {
    let mut tx = pool.begin().await?;
    let request = Uuid::now_v7();
    let session = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO requests (id, requester_id, policy_id, profile_id, activity_id,
             policy_name, profile_name, activity_name, protocol, login_mode, login_template,
             notes, start_now, requested_start, duration_minutes, tier_count)
         SELECT $1, u.id, p.id, p.profile_id, a.id, p.name, 'Gateway bench', a.name, a.protocol,
                a.login_mode, a.login_template, 'Gateway benchmark', true, now(), 120, 0
         FROM users u, access_policies p, activities a
         WHERE u.username = 'bench' AND p.name = 'Gateway bench' AND a.name = 'Gateway bench'",
    )
    .bind(request)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO activity_sessions (id, request_id, requester_id, resource_id,
             resource_name, resource_address, resource_port, activity_name, status,
             requested_start, ends_at)
         SELECT $1, r.id, r.requester_id, res.id, res.name, res.address, res.port,
                r.activity_name, 'provisioning', now(), now() + interval '120 minutes'
         FROM requests r, resources res WHERE r.id = $2 AND res.name = 'gateway-bench-target'",
    )
    .bind(session)
    .bind(request)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(session)
}
