//! Lock on the target and extensions of Linux accounts, against the real sshd of
//! `target_host`: a Lock of an activity with "Lock removes the access on the target" takes
//! the account away (or rotates the managed password) and the Unlock grants it afresh with a
//! new password; an ephemeral account expires after the session and Extend moves the expiry;
//! a target that refuses the extension leaves the session's old end, with a readable reason.

use reqwest::StatusCode;
use uuid::Uuid;

use crate::provisioning::{
    ACTIVITY, DEMO, account, approved_and_granted, end, events, reveal, status, use_target,
};
use crate::support::{TestApp, new_client, spawn_demo_app};
use crate::target_host::TargetHost;

async fn revoke_on_lock(app: &TestApp, on: bool) {
    sqlx::query("UPDATE activities SET revoke_on_lock = $1 WHERE name = $2")
        .bind(on)
        .bind(ACTIVITY)
        .execute(&app.db)
        .await
        .unwrap();
}

async fn tick(app: &TestApp) {
    portcullis::worker::tick(&app.db, &app.secrets)
        .await
        .unwrap();
}

async fn admin(app: &TestApp) -> reqwest::Client {
    let carol = new_client();
    app.login_with(&carol, "carol", DEMO).await;
    carol
}

async fn lock(app: &TestApp, admin: &reqwest::Client, id: Uuid) {
    app.post_with(
        admin,
        &format!("/admin/sessions/{id}/lock"),
        &[("message", "Incident 7: hands off")],
    )
    .await;
    assert_eq!(status(app, id).await, "locked");
}

async fn unlock(app: &TestApp, admin: &reqwest::Client, id: Uuid) {
    app.post_with(admin, &format!("/admin/sessions/{id}/unlock"), &[])
        .await;
    let back = status(app, id).await;
    assert!(back == "available" || back == "logged_in", "{back}");
}

async fn ends_at(app: &TestApp, id: Uuid) -> time::OffsetDateTime {
    sqlx::query_scalar("SELECT ends_at FROM activity_sessions WHERE id = $1")
        .bind(id)
        .fetch_one(&app.db)
        .await
        .unwrap()
}

/// The account's expiry on this machine, in days since 1970 (`/etc/shadow`, field 8).
fn expiry_days(name: &str) -> Option<i64> {
    let out = std::process::Command::new("getent")
        .args(["shadow", name])
        .output()
        .unwrap();
    let line = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    line.split(':').nth(7).and_then(|d| d.parse().ok())
}

fn days_of(date: &str) -> i64 {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    let day = time::Date::parse(date, format).unwrap();
    i64::from(day.to_julian_day() - time::macros::date!(1970 - 01 - 01).to_julian_day())
}

#[tokio::test]
async fn a_lock_that_removes_access_deletes_the_account_and_the_unlock_grants_a_new_password() {
    let host = TargetHost::start();
    let app = spawn_demo_app().await;
    use_target(
        &app,
        &host,
        "ephemeral",
        &format!("{}-{{session}}", host.prefix),
    )
    .await;
    revoke_on_lock(&app, true).await;
    let id = approved_and_granted(&app).await;
    assert_eq!(
        status(&app, id).await,
        "available",
        "{:?}",
        events(&app, id).await
    );
    let name = account(&app, id).await;
    let first = reveal(&app, id).await;
    assert_eq!(
        host.login_with_password(&name, &first).as_deref(),
        Some(name.as_str())
    );

    let carol = admin(&app).await;
    lock(&app, &carol, id).await;
    tick(&app).await;
    assert!(
        !TargetHost::account_exists(&name),
        "the Lock removed {name}"
    );
    assert_eq!(host.login_with_password(&name, &first), None);
    assert!(
        events(&app, id)
            .await
            .iter()
            .any(|(k, c)| k == "access_removed" && c.contains(&name)),
        "{:?}",
        events(&app, id).await
    );

    unlock(&app, &carol, id).await;
    // Until the fresh grant is made, the old password is not offered.
    let early = app.post(&format!("/sessions/{id}/reveal"), &[]).await;
    assert!(early.texts("#password").is_empty(), "{}", early.body);
    let waiting = app.get(&format!("/sessions/{id}/connect")).await;
    assert_eq!(
        waiting.texts("#password-restoring").len(),
        1,
        "{}",
        waiting.body
    );
    assert!(waiting.texts("#reveal").is_empty());
    tick(&app).await;
    assert!(
        TargetHost::account_exists(&name),
        "the Unlock made {name} again"
    );
    let second = reveal(&app, id).await;
    assert_ne!(first, second, "a new password");
    assert_eq!(host.login_with_password(&name, &first), None);
    assert_eq!(
        host.login_with_password(&name, &second).as_deref(),
        Some(name.as_str())
    );
    let restored = events(&app, id).await;
    assert!(
        restored.iter().any(
            |(k, c)| k == "access_granted" && c.starts_with("Access restored after the unlock")
        ),
        "{restored:?}"
    );
    assert!(restored.iter().all(|(_, c)| !c.contains(&second)));

    // A second tick does nothing twice; the end removes the fresh account.
    tick(&app).await;
    let steps: Vec<(String, i32, bool)> = sqlx::query_as(
        "SELECT action::text, round, done_at IS NOT NULL FROM provision_steps
         WHERE session_id = $1 ORDER BY round, action",
    )
    .bind(id)
    .fetch_all(&app.db)
    .await
    .unwrap();
    assert_eq!(
        steps,
        [
            ("grant".to_owned(), 0, true),
            ("revoke".to_owned(), 0, true),
            ("grant".to_owned(), 1, true)
        ]
    );
    end(&app, id).await;
    tick(&app).await;
    assert!(!TargetHost::account_exists(&name));
}

#[tokio::test]
async fn a_locked_managed_account_refuses_the_old_password_and_the_unlock_reveals_a_working_one() {
    let host = TargetHost::start();
    let app = spawn_demo_app().await;
    let shared = format!("{}-shared", host.prefix);
    host.make_account(&shared, "Before-the-session-1");
    use_target(&app, &host, "managed", &shared).await;
    revoke_on_lock(&app, true).await;
    let id = approved_and_granted(&app).await;
    let first = reveal(&app, id).await;
    assert_eq!(
        host.login_with_password(&shared, &first).as_deref(),
        Some(shared.as_str())
    );

    let carol = admin(&app).await;
    lock(&app, &carol, id).await;
    tick(&app).await;
    assert!(
        TargetHost::account_exists(&shared),
        "a managed account stays"
    );
    assert_eq!(host.login_with_password(&shared, &first), None);

    unlock(&app, &carol, id).await;
    tick(&app).await;
    let second = reveal(&app, id).await;
    assert_ne!(first, second);
    assert_eq!(
        host.login_with_password(&shared, &second).as_deref(),
        Some(shared.as_str())
    );

    // Locked again and ended while locked: one revoke per grant, nothing left working.
    lock(&app, &carol, id).await;
    app.post_with(
        &carol,
        "/dashboard/end",
        &[("id", &id.to_string()), ("confirm", "yes")],
    )
    .await;
    assert_eq!(status(&app, id).await, "canceled", "an administrator's End");
    tick(&app).await;
    assert_eq!(host.login_with_password(&shared, &second), None);
    let revokes: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM provision_steps WHERE session_id = $1 AND action = 'revoke'",
    )
    .bind(id)
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(revokes, 2, "one revoke for each of the two grants");
}

#[tokio::test]
async fn without_the_switch_a_lock_only_freezes_connections_and_leaves_the_account() {
    let host = TargetHost::start();
    let app = spawn_demo_app().await;
    use_target(
        &app,
        &host,
        "ephemeral",
        &format!("{}-{{session}}", host.prefix),
    )
    .await;
    let id = approved_and_granted(&app).await;
    let name = account(&app, id).await;
    let password = reveal(&app, id).await;
    let carol = admin(&app).await;
    lock(&app, &carol, id).await;
    tick(&app).await;
    assert!(TargetHost::account_exists(&name));
    unlock(&app, &carol, id).await;
    tick(&app).await;
    assert_eq!(reveal(&app, id).await, password, "the same password");
    assert_eq!(
        host.login_with_password(&name, &password).as_deref(),
        Some(name.as_str())
    );
    end(&app, id).await;
    tick(&app).await;
    assert!(!TargetHost::account_exists(&name));
}

#[tokio::test]
async fn an_ephemeral_account_expires_after_the_session_and_extend_moves_the_expiry() {
    let mut host = TargetHost::start();
    let app = spawn_demo_app().await;
    use_target(
        &app,
        &host,
        "ephemeral",
        &format!("{}-{{session}}", host.prefix),
    )
    .await;
    let id = approved_and_granted(&app).await;
    let name = account(&app, id).await;
    let first_end = ends_at(&app, id).await;
    let expected = portcullis::provision::linux_ssh::expiry_date(first_end);
    assert_eq!(
        expiry_days(&name),
        Some(days_of(&expected)),
        "{name} expires after the end"
    );

    // Extensions of a whole day, so that the expiry date moves.
    sqlx::query("UPDATE requests SET extension_minutes = 1440 WHERE id = (SELECT request_id FROM activity_sessions WHERE id = $1)")
        .bind(id)
        .execute(&app.db)
        .await
        .unwrap();
    let carol = admin(&app).await;
    let page = app
        .post_with(&carol, &format!("/sessions/{id}/extend"), &[])
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    let second_end = ends_at(&app, id).await;
    assert_eq!(second_end - first_end, time::Duration::days(1));
    tick(&app).await;
    let moved = portcullis::provision::linux_ssh::expiry_date(second_end);
    assert_eq!(
        expiry_days(&name),
        Some(days_of(&moved)),
        "{:?}",
        events(&app, id).await
    );
    assert!(
        events(&app, id)
            .await
            .iter()
            .any(|(k, c)| k == "access_extended" && c.contains(&format!("now expires on {moved}"))),
    );

    // The target is gone: the extension is refused, the session keeps its end, and the
    // requester reads why on the session page.
    host.stop();
    app.post_with(&carol, &format!("/sessions/{id}/extend"), &[])
        .await;
    assert!(ends_at(&app, id).await > second_end);
    tick(&app).await;
    assert_eq!(ends_at(&app, id).await, second_end, "the old end stays");
    let refused = events(&app, id).await;
    assert!(
        refused.iter().any(|(k, c)| k == "extension_failed"
            && c.contains("could not reach 127.0.0.1")
            && c.contains("The session still ends at")),
        "{refused:?}"
    );
    let page = app.get(&format!("/sessions/{id}")).await;
    assert!(
        page.body
            .contains("The extension could not be made on the target"),
        "{}",
        page.body
    );
    host.launch();
    end(&app, id).await;
    tick(&app).await;
    assert!(!TargetHost::account_exists(&name));
}

/// The flash messages `page` (a redirect for `client`) leads to.
async fn flashes_for(
    app: &TestApp,
    client: &reqwest::Client,
    page: &crate::support::Page,
) -> Vec<String> {
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    app.get_with(client, page.location()).await.texts(".flash")
}

#[tokio::test]
async fn a_credential_is_deletable_once_a_session_ended_before_its_fresh_grant_ran() {
    let host = TargetHost::start();
    let app = spawn_demo_app().await;
    use_target(
        &app,
        &host,
        "ephemeral",
        &format!("{}-{{session}}", host.prefix),
    )
    .await;
    revoke_on_lock(&app, true).await;
    let id = approved_and_granted(&app).await;
    assert_eq!(status(&app, id).await, "available");
    let name = account(&app, id).await;
    let credential: Uuid =
        sqlx::query_scalar("SELECT credential_id FROM resources WHERE name = 'lnx-web-01'")
            .fetch_one(&app.db)
            .await
            .unwrap();
    let carol = admin(&app).await;
    lock(&app, &carol, id).await;
    tick(&app).await;
    assert!(!TargetHost::account_exists(&name));
    unlock(&app, &carol, id).await;
    // The resource no longer uses the credential; the session's fresh grant, still to make,
    // does: deleting it is refused, naming the session.
    sqlx::query(
        "UPDATE resources SET provisioner = 'simulated', credential_id = NULL, host_key = NULL
         WHERE name = 'lnx-web-01'",
    )
    .execute(&app.db)
    .await
    .unwrap();
    let delete = format!("/admin/credentials/{credential}/delete");
    let refused = app.post_with(&carol, &delete, &[]).await;
    let short = portcullis::domain::provision::short_id(id);
    assert_eq!(
        flashes_for(&app, &carol, &refused).await,
        [format!(
            "test root cannot be deleted: sessions still need it on their target: lnx-web-01 (session {short}, access still to grant). Try again once the worker has finished with them."
        )]
    );

    // The session ends before the worker makes the fresh grant: the grant never runs, the
    // removal queued by the end runs (nothing is left to remove), and then nothing uses the
    // credential any more.
    end(&app, id).await;
    tick(&app).await;
    let steps: Vec<(String, i32, bool)> = sqlx::query_as(
        "SELECT action::text, round, done_at IS NOT NULL FROM provision_steps
         WHERE session_id = $1 ORDER BY round, action",
    )
    .bind(id)
    .fetch_all(&app.db)
    .await
    .unwrap();
    assert_eq!(
        steps,
        [
            ("grant".to_owned(), 0, true),
            ("revoke".to_owned(), 0, true),
            ("grant".to_owned(), 1, false),
            ("revoke".to_owned(), 1, true)
        ]
    );
    let deleted = app.post_with(&carol, &delete, &[]).await;
    assert_eq!(
        flashes_for(&app, &carol, &deleted).await,
        ["Deleted test root."]
    );
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM service_credentials")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(left, 0);
    assert!(!TargetHost::account_exists(&name));
}
