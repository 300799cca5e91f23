//! A connection through the SSH gateway of one instance is closed when the session is ended
//! on another instance: the end reaches every instance through PostgreSQL's LISTEN/NOTIFY.

use std::process::Stdio;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use uuid::Uuid;

use crate::instance::{Instance, free_port};
use crate::load::{Browser, Read, Record};
use crate::provisioning::Target;
use crate::target_host::TargetHost;

#[tokio::test]
async fn end_on_one_instance_closes_a_gateway_connection_held_by_another() {
    let _turn = crate::one_at_a_time().await;
    let host = TargetHost::start();
    let target = Target::seed(&host).await;
    let pool = target.pool.clone();
    let gateway = format!("127.0.0.1:{}", free_port());
    let mut web = Instance::start(&target.env(&[("PORTCULLIS_SSH_GATEWAY_BIND", "off")]));
    let mut holder = Instance::start(&target.env(&[("PORTCULLIS_SSH_GATEWAY_BIND", &gateway)]));
    web.wait_ready().await;
    holder.wait_ready().await;

    // load1 registers a key on the Account page and asks for a session, on the web instance.
    let keys = tempfile::tempdir().unwrap();
    let key = keys.path().join("id");
    let made = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&key)
        .status()
        .unwrap();
    assert!(made.success());
    let record = Record::default();
    let browser = Browser::new(&web.url(""), &record);
    browser.sign_in("load1", Duration::from_secs(30)).await;
    let token = browser.get("/account").await.unwrap().csrf_token().unwrap();
    let public = std::fs::read_to_string(key.with_extension("pub")).unwrap();
    let added = browser
        .post(
            "/account/ssh-keys",
            &[
                ("csrf_token", &token),
                ("name", "laptop"),
                ("public_key", &public),
            ],
        )
        .await
        .unwrap();
    assert_eq!(added.status, StatusCode::SEE_OTHER);
    let request = browser
        .request_session("load-srv-01", Duration::from_secs(30), |_| {})
        .await;
    let id: Uuid = sqlx::query_scalar("SELECT id FROM activity_sessions WHERE request_id = $1")
        .bind(Uuid::parse_str(&request).unwrap())
        .fetch_one(&pool)
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let epoch: i32 = loop {
        let (status, epoch): (String, i32) = sqlx::query_as(
            "SELECT status::text, access_epoch FROM activity_sessions WHERE id = $1",
        )
        .bind(id)
        .fetch_one(&pool)
        .await
        .unwrap();
        if status == "available" {
            break epoch;
        }
        assert!(Instant::now() < deadline, "not Available: {status}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let string = target.secrets.connection_string(id, epoch);

    // A shell through the other instance's gateway.
    let port = gateway.rsplit(':').next().unwrap();
    let mut ssh = tokio::process::Command::new("ssh")
        .args(["-F", "/dev/null", "-tt", "-o", "StrictHostKeyChecking=no"])
        .args(["-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes"])
        .args(["-o", "IdentitiesOnly=yes", "-o", "LogLevel=ERROR", "-i"])
        .arg(&key)
        .args(["-p", port])
        .arg(format!("{string}@127.0.0.1"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdin = ssh.stdin.take().unwrap();
    let mut stdout = ssh.stdout.take().unwrap();
    stdin.write_all(b"echo held-$((40+2))\n").await.unwrap();
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !String::from_utf8_lossy(&seen).contains("held-42") {
        let mut buf = [0u8; 4096];
        let left = deadline.saturating_duration_since(Instant::now());
        let n = tokio::time::timeout(left, stdout.read(&mut buf))
            .await
            .expect("the shell answers")
            .unwrap();
        assert!(n > 0, "closed early: {}", String::from_utf8_lossy(&seen));
        seen.extend_from_slice(&buf[..n]);
    }

    // End Session on the web instance: the holder closes the connection within 2 seconds.
    let token = browser
        .get("/dashboard")
        .await
        .unwrap()
        .csrf_token()
        .unwrap();
    let ended = Instant::now();
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
    let mut rest = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stdout.read_to_end(&mut rest))
        .await
        .expect("the connection closes")
        .unwrap();
    let took = ended.elapsed();
    ssh.wait().await.unwrap();
    let rest = String::from_utf8_lossy(&rest);
    assert!(took <= Duration::from_secs(2), "closed after {took:?}");
    assert!(
        rest.contains("Portcullis: the session ended (Completed)."),
        "{rest}"
    );
    drop(holder);
    drop(web);
}
