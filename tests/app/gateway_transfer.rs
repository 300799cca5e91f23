//! File transfer through the gateway, and its pinned upstream host key: `scp` (which speaks sftp) goes through only when the
//! activity allows it, lands on the target as the session's login account, and is recorded
//! as a file transfer.

use std::process::Stdio;

use crate::gateway::Rig;
use crate::provisioning::ACTIVITY;

/// `scp` of `local` to `remote` on the target through the gateway, as alice with her key:
/// (success, stderr).
async fn scp(rig: &Rig, string: &str, local: &std::path::Path, remote: &str) -> (bool, String) {
    let out = tokio::process::Command::new("scp")
        .args(["-F", "/dev/null", "-o", "StrictHostKeyChecking=no"])
        .args(["-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes"])
        .args(["-o", "IdentitiesOnly=yes", "-o", "LogLevel=ERROR", "-i"])
        .arg(rig.dir.path().join("alice"))
        .arg("-P")
        .arg(rig.port.to_string())
        .arg(local)
        .arg(format!("{string}@127.0.0.1:{remote}"))
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

async fn allow_transfer(rig: &Rig, allowed: bool) {
    sqlx::query("UPDATE activities SET file_transfer = $1 WHERE name = $2")
        .bind(allowed)
        .bind(ACTIVITY)
        .execute(&rig.app.db)
        .await
        .unwrap();
}

#[tokio::test]
async fn scp_goes_through_only_when_the_activity_allows_file_transfer() {
    let (rig, id) = Rig::start().await;
    let string = rig.connection_string(id).await;
    let local = rig.dir.path().join("notes.txt");
    std::fs::write(&local, "transfer-check-42\n").unwrap();
    let account: String =
        sqlx::query_scalar("SELECT login_account FROM activity_sessions WHERE id = $1")
            .bind(id)
            .fetch_one(&rig.app.db)
            .await
            .unwrap();
    let landed = format!("/home/{account}/notes.txt");

    // Off by default: refused, and nothing reaches the target.
    let (ok, stderr) = scp(&rig, &string, &local, "notes.txt").await;
    assert!(!ok, "{stderr}");
    assert!(stderr.contains("File transfer is not allowed"), "{stderr}");
    assert!(!std::path::Path::new(&landed).exists());

    allow_transfer(&rig, true).await;
    let (ok, stderr) = scp(&rig, &string, &local, "notes.txt").await;
    assert!(ok, "{stderr}");
    assert_eq!(
        std::fs::read_to_string(&landed).unwrap(),
        "transfer-check-42\n"
    );
    let owner = std::process::Command::new("stat")
        .args(["-c", "%U"])
        .arg(&landed)
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&owner.stdout).trim(), account);

    let modes: Vec<String> = sqlx::query_scalar(
        "SELECT mode::text FROM recordings WHERE session_id = $1 ORDER BY started_at",
    )
    .bind(id)
    .fetch_all(&rig.app.db)
    .await
    .unwrap();
    assert_eq!(modes, ["sftp"], "only the allowed transfer opened upstream");
}

#[tokio::test]
async fn a_target_whose_host_key_changed_is_refused_with_that_reason() {
    let (rig, id) = Rig::start().await;
    let string = rig.connection_string(id).await;
    // The pin recorded at the grant no longer matches what the target presents (as when the
    // machine was replaced, or someone sits in between).
    let other = rig.dir.path().join("other_host_key");
    let made = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&other)
        .status()
        .unwrap();
    assert!(made.success());
    let public = std::fs::read_to_string(other.with_extension("pub")).unwrap();
    let public: Vec<&str> = public.split_whitespace().take(2).collect();
    sqlx::query("UPDATE provision_steps SET host_key = $2 WHERE session_id = $1")
        .bind(id)
        .bind(public.join(" "))
        .execute(&rig.app.db)
        .await
        .unwrap();
    sqlx::query(
        "UPDATE resources SET host_key = $1 WHERE id =
             (SELECT resource_id FROM activity_sessions WHERE id = $2)",
    )
    .bind(public.join(" "))
    .bind(id)
    .execute(&rig.app.db)
    .await
    .unwrap();

    let (code, stdout, stderr) = rig.run(&string, "whoami").await;
    assert_ne!(code, 0);
    assert!(stdout.is_empty(), "{stdout}");
    assert!(stderr.contains("does not match the pinned key"), "{stderr}");
}
