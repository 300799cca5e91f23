//! The SSH gateway's refusals: each says why in one line the client prints, and opens
//! nothing on the target; and signing in without a key (password and second factor).

use std::process::Stdio;

use uuid::Uuid;

use crate::gateway::{DEMO, Rig, account, keygen, register_key};
use crate::provisioning::events;
use crate::support::TestApp;

/// Sets the session's status directly (the transitions have tests of their own).
async fn set_status(app: &TestApp, id: Uuid, status: &str) {
    sqlx::query(
        "UPDATE activity_sessions SET status = $2::text::session_status,
                current_tier = CASE WHEN $2::text = 'waiting_for_approval' THEN 1 END,
                password_ciphertext = CASE WHEN $2::text IN ('waiting_for_approval', 'completed')
                                           THEN NULL ELSE password_ciphertext END,
                lock_message = CASE WHEN $2::text = 'locked' THEN 'Incident 9' END,
                locked_from = CASE WHEN $2::text = 'locked' THEN 'available'::session_status END
         WHERE id = $1",
    )
    .bind(id)
    .bind(status)
    .execute(&app.db)
    .await
    .unwrap();
}

#[tokio::test]
async fn refusals_say_why_in_one_line_and_open_nothing_upstream() {
    let (rig, id) = Rig::start().await;
    let string = rig.connection_string(id).await;
    keygen(&rig.dir.path().join("mallory"));
    keygen(&rig.dir.path().join("bob"));
    register_key(&rig.app, "bob", &rig.dir.path().join("bob")).await;

    // A key nobody registered: the client is not let in at all.
    let out = rig
        .ssh("mallory", &string, &[])
        .arg("whoami")
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(255));
    assert!(String::from_utf8_lossy(&out.stderr).contains("Permission denied"));
    // bob's own key, alice's string.
    let out = rig
        .ssh("bob", &string, &[])
        .arg("whoami")
        .output()
        .await
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        "Portcullis: This session is not one of yours."
    );
    assert_eq!(out.status.code(), Some(1));
    // A forged tag.
    let mut forged = string.clone();
    let last = forged.pop().unwrap();
    forged.push(if last == 'A' { 'B' } else { 'A' });
    let (code, _, err) = rig.run(&forged, "whoami").await;
    assert_eq!(code, 1);
    assert_eq!(
        err.trim(),
        "Portcullis: The connection string is not valid for your sessions: show it again on the session's Connect page."
    );
    // Port forwarding, either way.
    let out = rig
        .ssh("alice", &string, &["-W", "127.0.0.1:22"])
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(255));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("stdio forwarding failed"),
        "{out:?}"
    );
    let out = rig
        .ssh(
            "alice",
            &string,
            &[
                "-N",
                "-o",
                "ExitOnForwardFailure=yes",
                "-R",
                "0:127.0.0.1:22",
            ],
        )
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(255));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("forwarding failed"),
        "{out:?}"
    );

    for (status, line) in [
        (
            "waiting_for_approval",
            "Session lnx-web-01 is Waiting for Approval",
        ),
        (
            "locked",
            "Session lnx-web-01 is Locked by an administrator: Incident 9",
        ),
        ("completed", "Session lnx-web-01 is Completed"),
    ] {
        set_status(&rig.app, id, status).await;
        // Lock and the end move the access epoch: a string from before no longer verifies,
        // so the status check is reached with one for the epoch as it is now.
        let string = rig.connection_string(id).await;
        let (code, out, err) = rig.run(&string, "whoami").await;
        assert_eq!((code, out.as_str()), (1, ""), "{status}");
        assert_eq!(err.trim(), format!("Portcullis: {line}"), "{status}");
    }
    assert_eq!(rig.recordings(id).await, 0, "nothing was opened upstream");
    let connected = events(&rig.app, id).await;
    assert!(
        !connected.iter().any(|(k, _)| k == "connected"),
        "{connected:?}"
    );
}

/// `ssh` through the gateway with keyboard-interactive only: `answer(prompt)` answers each
/// prompt (through SSH_ASKPASS).
async fn interactive(rig: &Rig, user: &str, password: &str, code: &str) -> (i32, String, String) {
    let askpass = rig.dir.path().join("askpass");
    std::fs::write(
        &askpass,
        "#!/bin/sh\ncase \"$1\" in *code*) printf '%s\\n' \"$PCT_CODE\" ;; *) printf '%s\\n' \"$PCT_PASSWORD\" ;; esac\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&askpass, std::fs::Permissions::from_mode(0o700)).unwrap();
    let out = tokio::process::Command::new("ssh")
        .args(["-F", "/dev/null", "-o", "StrictHostKeyChecking=no"])
        .args(["-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR"])
        .args([
            "-o",
            "PubkeyAuthentication=no",
            "-o",
            "PreferredAuthentications=keyboard-interactive",
        ])
        .args(["-o", "NumberOfPasswordPrompts=1", "-p"])
        .arg(rig.port.to_string())
        .arg(format!("{user}@127.0.0.1"))
        .arg("whoami")
        .env("SSH_ASKPASS", &askpass)
        .env("SSH_ASKPASS_REQUIRE", "force")
        .env("PCT_PASSWORD", password)
        .env("PCT_CODE", code)
        .env_remove("DISPLAY")
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn without_a_key_the_password_and_second_factor_code_log_in() {
    let (rig, id) = Rig::start().await;
    let string = rig.connection_string(id).await;
    let login = account(&rig.app, id).await;
    let (code, out, err) = interactive(&rig, &string, DEMO, "").await;
    assert_eq!((code, out.trim()), (0, login.as_str()), "{err}");
    let (code, out, _) = interactive(&rig, &string, "wrong password", "").await;
    assert_eq!((code, out.as_str()), (255, ""));

    let (secret, _) = crate::second_factor::enrol_from_account(&rig.app, &rig.app.client).await;
    let (code, out, _) = interactive(&rig, &string, DEMO, "").await;
    assert_eq!(
        (code, out.as_str()),
        (255, ""),
        "the second factor is missing"
    );
    let step = crate::second_factor::step().await;
    let totp = crate::second_factor::code(&secret, step);
    let (code, out, err) = interactive(&rig, &string, DEMO, &totp).await;
    assert_eq!((code, out.trim()), (0, login.as_str()), "{err}");
    let (code, _, _) = interactive(&rig, &string, DEMO, &totp).await;
    assert_eq!(code, 255, "a code is accepted once");
}

#[tokio::test]
async fn an_account_that_must_have_a_second_factor_and_has_none_is_refused_its_password_login() {
    // The gateway's instance requires a second factor of everyone; alice has none yet, so
    // the sign-in page would send her to enrolment first.
    let (rig, id) = Rig::start_with(portcullis::Settings {
        second_factor: portcullis::config::SecondFactorPolicy::Everyone,
        ..crate::support::settings()
    })
    .await;
    let string = rig.connection_string(id).await;
    let login = account(&rig.app, id).await;
    let (code, out, _) = interactive(&rig, &string, DEMO, "").await;
    assert_eq!(
        (code, out.as_str()),
        (255, ""),
        "a right password alone is not enough"
    );
    assert_eq!(rig.recordings(id).await, 0, "nothing was opened upstream");

    // Once enrolled, the password and a code log in.
    let (secret, _) = crate::second_factor::enrol_from_account(&rig.app, &rig.app.client).await;
    let step = crate::second_factor::step().await;
    let totp = crate::second_factor::code(&secret, step);
    let (code, out, err) = interactive(&rig, &string, DEMO, &totp).await;
    assert_eq!((code, out.trim()), (0, login.as_str()), "{err}");
}
