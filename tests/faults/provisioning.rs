//! SIGKILL of the server in the middle of a grant on a real target (an OpenSSH server the
//! test starts): the next instance repairs the grant rather than doing it twice, and the
//! session's end leaves no account behind.

use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use reqwest::StatusCode;
use sqlx::PgPool;
use uuid::Uuid;

use crate::instance::{Instance, database_url};
use crate::load::{Browser, Read, Record, seed};
use crate::target_host::TargetHost;

async fn wait_for(what: &str, limit: Duration, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !check().await {
        assert!(Instant::now() < deadline, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn status(pool: &PgPool, id: Uuid) -> String {
    sqlx::query_scalar("SELECT status::text FROM activity_sessions WHERE id = $1")
        .bind(id)
        .fetch_one(pool)
        .await
        .unwrap()
}

/// A database seeded for the load users, whose `load-srv-01` is `host` and whose `Shell`
/// activity makes ephemeral accounts there, and the environment of instances sharing it.
pub(crate) struct Target {
    pub pool: PgPool,
    url: String,
    key: String,
    _keys: tempfile::TempDir,
    pub secrets: portcullis::crypto::SecretBox,
}

impl Target {
    pub async fn seed(host: &TargetHost) -> Self {
        let options = crate::support::fresh_database().await;
        let pool = PgPool::connect_with(options.clone()).await.unwrap();
        seed(&pool, 1).await;
        // Instances share one key file, as instances of one installation do.
        let keys = tempfile::tempdir().unwrap();
        let key_file = keys.path().join("portcullis.key");
        let secrets = portcullis::crypto::SecretBox::load_or_create(&key_file).unwrap();
        let credential = Uuid::new_v4();
        sqlx::query(
            "INSERT INTO service_credentials (id, name, username, secret_ciphertext)
             VALUES ($1, 'target root', 'root', $2)",
        )
        .bind(credential)
        .bind(secrets.seal(credential, &host.service_key))
        .execute(&pool)
        .await
        .unwrap();
        sqlx::query(
            "UPDATE resources SET address = '127.0.0.1', port = $1, provisioner = 'linux_ssh',
                    credential_id = $2, host_key = $3 WHERE name = 'load-srv-01'",
        )
        .bind(i32::from(host.port))
        .bind(credential)
        .bind(&host.host_key)
        .execute(&pool)
        .await
        .unwrap();
        sqlx::query(
            "UPDATE activities SET login_mode = 'ephemeral', login_template = $1 WHERE name = 'Shell'",
        )
        .bind(format!("{}-{{session}}", host.prefix))
        .execute(&pool)
        .await
        .unwrap();
        Target {
            pool,
            url: database_url(&options),
            key: key_file.to_string_lossy().into_owned(),
            _keys: keys,
            secrets,
        }
    }

    /// An instance's environment: the shared database and key file, and `more`.
    pub fn env<'a>(&'a self, more: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
        let mut env = vec![
            ("DATABASE_URL", self.url.as_str()),
            ("PORTCULLIS_KEY_FILE", self.key.as_str()),
        ];
        env.extend_from_slice(more);
        env
    }
}

#[tokio::test]
async fn a_server_killed_during_a_grant_leaves_no_orphan_account() {
    let _turn = crate::one_at_a_time().await;
    let host = TargetHost::start();
    let target = Target::seed(&host).await;
    let pool = target.pool.clone();
    let env = target.env(&[]);
    let mut first = Instance::start(&env);
    first.wait_ready().await;
    host.hang_after_commands(Some(60));
    let record = Record::default();
    let browser = Browser::new(&first.url(""), &record);
    browser.sign_in("load1", Duration::from_secs(30)).await;
    let request = browser
        .request_session("load-srv-01", Duration::from_secs(30), |_| {})
        .await;
    let id: Uuid = sqlx::query_scalar("SELECT id FROM activity_sessions WHERE request_id = $1")
        .bind(Uuid::parse_str(&request).unwrap())
        .fetch_one(&pool)
        .await
        .unwrap();
    let account = format!(
        "{}-{}",
        host.prefix,
        portcullis::domain::provision::short_id(id)
    );

    // The grant is done on the target, but its answer never comes: kill the server then.
    wait_for(
        "the account on the target",
        Duration::from_secs(30),
        async || TargetHost::account_exists(&account),
    )
    .await;
    first.signal(Signal::SIGKILL);
    first.exit_status(Duration::from_secs(10)).await;
    assert_eq!(status(&pool, id).await, "provisioning");
    let (attempts, done): (i32, bool) = sqlx::query_as(
        "SELECT attempts, done_at IS NOT NULL FROM provision_steps
         WHERE session_id = $1 AND action = 'grant'",
    )
    .bind(id)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(
        (attempts, done),
        (1, false),
        "the grant was recorded before the target saw it"
    );

    // Another instance takes over: it repairs the grant (the account exists) and the session
    // becomes usable, once.
    host.hang_after_commands(None);
    let mut second = Instance::start(&env);
    second.wait_ready().await;
    let pool_ref = &pool;
    wait_for(
        "Available after the restart",
        Duration::from_secs(60),
        async || status(pool_ref, id).await == "available",
    )
    .await;
    let granted: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM session_events WHERE session_id = $1 AND kind = 'access_granted'",
    )
    .bind(id)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(granted, 1);

    // Ending it removes the account: nothing is left on the target.
    let browser = Browser::new(&second.url(""), &record);
    browser.sign_in("load1", Duration::from_secs(30)).await;
    let token = browser
        .get("/dashboard")
        .await
        .unwrap()
        .csrf_token()
        .unwrap();
    let page = browser
        .post(
            "/dashboard/end",
            &[
                ("csrf_token", &token),
                ("id", &id.to_string()),
                ("confirm", "yes"),
            ],
        )
        .await
        .unwrap();
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    wait_for("the account removed", Duration::from_secs(30), async || {
        !TargetHost::account_exists(&account)
    })
    .await;
    assert_eq!(status(&pool, id).await, "completed");
    drop(second);
}
