//! The second factor (TOTP and recovery codes) and the per-address sign-in rate limit. Codes
//! are computed with the same crate from the secret the enrolment page shows, as an
//! authenticator app would.

use portcullis::Settings;
use portcullis::config::SecondFactorPolicy;
use portcullis::domain::role::Role;
use reqwest::StatusCode;
use totp_rs::{Algorithm, Secret, TOTP};
use uuid::Uuid;

use crate::support::{PASSWORD, Page, TestApp, fresh_database, new_client, settings, spawn_app_on};

const DEMO_PASSWORD: &str = "portcullis-demo";

async fn spawn_with(policy: SecondFactorPolicy, limit: u32) -> TestApp {
    let s = Settings {
        second_factor: policy,
        sign_in_limit: limit,
        ..settings()
    };
    spawn_app_on(fresh_database().await, s).await
}

/// The secret shown on an enrolment page, as an app would read it.
fn secret_of(page: &Page) -> Vec<u8> {
    let shown = page.texts("#totp-secret");
    assert_eq!(shown.len(), 1, "the page shows the secret: {}", page.body);
    Secret::Encoded(shown[0].replace(' ', ""))
        .to_bytes()
        .unwrap()
}

pub(crate) fn code(secret: &[u8], step: i64) -> String {
    TOTP::new(
        Algorithm::SHA1,
        6,
        1,
        30,
        secret.to_vec(),
        None,
        String::new(),
    )
    .unwrap()
    .generate(step as u64 * 30)
}

/// The current time step, once at least five seconds of it remain (so that a code computed
/// now is judged in the same step by the server).
pub(crate) async fn step() -> i64 {
    loop {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        if 30 - now % 30 >= 5 {
            return now / 30;
        }
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
}

/// A six-digit code that is none of the secret's codes around now.
fn wrong_code(secret: &[u8], now: i64) -> String {
    let near: Vec<String> = (now - 2..=now + 2).map(|s| code(secret, s)).collect();
    (0..)
        .map(|n: u32| format!("{:06}", (n * 7919) % 1_000_000))
        .find(|c| !near.contains(c))
        .unwrap()
}

async fn is_on(app: &TestApp, user: Uuid) -> bool {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM user_totp WHERE user_id = $1 AND confirmed_at IS NOT NULL)",
    )
    .bind(user)
    .fetch_one(&app.db)
    .await
    .unwrap()
}

async fn failed_logins(app: &TestApp, user: Uuid) -> i32 {
    sqlx::query_scalar("SELECT failed_logins FROM users WHERE id = $1")
        .bind(user)
        .fetch_one(&app.db)
        .await
        .unwrap()
}

/// Switches the second factor on from the account page of a signed-in client, confirming
/// with the previous step's code (so the current and next steps stay free for sign-ins).
/// Returns the secret and the recovery codes shown.
pub(crate) async fn enrol_from_account(
    app: &TestApp,
    client: &reqwest::Client,
) -> (Vec<u8>, Vec<String>) {
    let page = app.get_with(client, "/account/second-factor").await;
    assert_eq!(page.status, StatusCode::OK);
    let secret = secret_of(&page);
    let now = step().await;
    let done = app
        .post_with(
            client,
            "/account/second-factor",
            &[("code", &code(&secret, now - 1))],
        )
        .await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    let codes = done.texts("#recovery-codes li");
    assert_eq!(codes.len(), 10);
    (secret, codes)
}

/// Signs in with the password; the answer leads to the code page.
async fn password(app: &TestApp, client: &reqwest::Client, username: &str, pw: &str) {
    let login = app.login_with(client, username, pw).await;
    assert_eq!(login.status, StatusCode::SEE_OTHER);
    assert_eq!(login.location(), "/login/code");
}

/// A user with a second factor, signed out, and the secret.
async fn enrolled_user(app: &TestApp, name: &str) -> (Uuid, Vec<u8>, Vec<String>) {
    let id = app.create_user(name, Role::User).await;
    let client = new_client();
    app.login_with(&client, name, PASSWORD).await;
    let (secret, codes) = enrol_from_account(app, &client).await;
    (id, secret, codes)
}

#[tokio::test]
async fn enrolment_needs_a_right_code_before_the_factor_is_on() {
    let app = spawn_with(SecondFactorPolicy::Optional, 1_000_000).await;
    let alice = app.create_user("alice", Role::User).await;
    app.login("alice").await;

    let page = app.get("/account/second-factor").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("<svg"), "the QR code is in the page");
    let secret = secret_of(&page);
    let now = step().await;
    let wrong = app
        .post(
            "/account/second-factor",
            &[("code", &wrong_code(&secret, now))],
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(wrong.texts(".form-error").len(), 1);
    assert_eq!(
        secret_of(&wrong),
        secret,
        "the same secret is offered again"
    );
    assert!(!is_on(&app, alice).await);
    assert_eq!(
        app.get("/account").await.texts("#second-factor-state")[0],
        "Off: you sign in with your password alone."
    );

    // Not on yet: the password alone still signs in.
    let other = new_client();
    let login = app.login_with(&other, "alice", PASSWORD).await;
    assert_eq!(login.location(), "/");

    let right = app
        .post("/account/second-factor", &[("code", &code(&secret, now))])
        .await;
    assert_eq!(right.status, StatusCode::OK);
    assert_eq!(right.texts("#recovery-codes li").len(), 10);
    assert!(is_on(&app, alice).await);
    let stored: Vec<Vec<u8>> = sqlx::query_scalar("SELECT secret_sealed FROM user_totp")
        .fetch_all(&app.db)
        .await
        .unwrap();
    assert!(
        !stored[0]
            .windows(secret.len())
            .any(|w| w == secret.as_slice()),
        "the secret is stored sealed"
    );
    let account = app.get("/account").await;
    assert_eq!(account.texts("#recovery-remaining"), ["10"]);
}

#[tokio::test]
async fn sign_in_needs_the_code_after_the_password() {
    let app = spawn_with(SecondFactorPolicy::Optional, 1_000_000).await;
    let (_, secret, _) = enrolled_user(&app, "alice").await;

    password(&app, &app.client, "alice", PASSWORD).await;
    // Not signed in yet.
    let dashboard = app.get("/dashboard").await;
    assert_eq!(dashboard.status, StatusCode::SEE_OTHER);
    assert!(dashboard.location().starts_with("/login"));
    let page = app.get("/login/code").await;
    assert_eq!(page.texts("h1"), ["Enter your code"]);

    let now = step().await;
    let done = app
        .post("/login/code", &[("code", &code(&secret, now))])
        .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER);
    assert_eq!(done.location(), "/");
    let dashboard = app.get("/dashboard").await;
    assert_eq!(dashboard.status, StatusCode::OK);
    assert_eq!(dashboard.texts(".account-name"), ["alice"]);
}

#[tokio::test]
async fn wrong_codes_are_refused_and_lock_the_account_like_wrong_passwords() {
    let app = spawn_with(SecondFactorPolicy::Optional, 1_000_000).await;
    let (alice, secret, _) = enrolled_user(&app, "alice").await;
    password(&app, &app.client, "alice", PASSWORD).await;
    let now = step().await;
    let wrong = wrong_code(&secret, now);

    for n in 1..=4 {
        let page = app.post("/login/code", &[("code", &wrong)]).await;
        assert_eq!(page.status, StatusCode::UNAUTHORIZED);
        assert_eq!(page.texts(".form-error").len(), 1);
        assert_eq!(failed_logins(&app, alice).await, n);
    }
    let fifth = app.post("/login/code", &[("code", &wrong)]).await;
    assert_eq!(fifth.status, StatusCode::SEE_OTHER);
    assert_eq!(fifth.location(), "/login");
    assert!(app.get("/login").await.body.contains("locked"));

    // Locked: neither the right code nor the password signs in now.
    let right = app
        .post("/login/code", &[("code", &code(&secret, now))])
        .await;
    assert_eq!(right.location(), "/login");
    let again = app.login("alice").await;
    assert_eq!(again.status, StatusCode::UNAUTHORIZED);
    assert_eq!(app.get("/dashboard").await.status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn a_code_is_never_accepted_twice() {
    let app = spawn_with(SecondFactorPolicy::Optional, 1_000_000).await;
    let (_, secret, _) = enrolled_user(&app, "alice").await;
    let now = step().await;

    password(&app, &app.client, "alice", PASSWORD).await;
    let first = app
        .post("/login/code", &[("code", &code(&secret, now))])
        .await;
    assert_eq!(first.location(), "/");

    let other = new_client();
    password(&app, &other, "alice", PASSWORD).await;
    let replay = app
        .post_with(&other, "/login/code", &[("code", &code(&secret, now))])
        .await;
    assert_eq!(replay.status, StatusCode::UNAUTHORIZED);
    // Nor an earlier step's code once a later one was used.
    let earlier = app
        .post_with(&other, "/login/code", &[("code", &code(&secret, now - 1))])
        .await;
    assert_eq!(earlier.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        app.get_with(&other, "/dashboard").await.status,
        StatusCode::SEE_OTHER
    );
}

#[tokio::test]
async fn two_simultaneous_submissions_of_one_code_give_one_sign_in() {
    let app = spawn_with(SecondFactorPolicy::Optional, 1_000_000).await;
    let (_, secret, _) = enrolled_user(&app, "alice").await;
    let (a, b) = (new_client(), new_client());
    password(&app, &a, "alice", PASSWORD).await;
    password(&app, &b, "alice", PASSWORD).await;
    let (ta, tb) = (app.csrf_with(&a).await, app.csrf_with(&b).await);
    let now = step().await;
    let c = code(&secret, now);

    let (fa, fb) = (
        [("csrf_token", ta.as_str()), ("code", c.as_str())],
        [("csrf_token", tb.as_str()), ("code", c.as_str())],
    );
    let (ra, rb) = tokio::join!(
        app.post_raw_with(&a, "/login/code", &fa),
        app.post_raw_with(&b, "/login/code", &fb),
    );
    let mut statuses = [ra.status, rb.status];
    statuses.sort();
    assert_eq!(statuses, [StatusCode::SEE_OTHER, StatusCode::UNAUTHORIZED]);
    let signed_in = [
        app.get_with(&a, "/dashboard").await.status,
        app.get_with(&b, "/dashboard").await.status,
    ];
    assert_eq!(
        signed_in.iter().filter(|s| **s == StatusCode::OK).count(),
        1
    );
}

#[tokio::test]
async fn the_previous_steps_code_is_accepted_but_not_one_two_steps_back() {
    let app = spawn_with(SecondFactorPolicy::Optional, 1_000_000).await;
    let (alice, secret, _) = enrolled_user(&app, "alice").await;
    // As if enrolled long ago: no recent step used.
    sqlx::query("UPDATE user_totp SET last_step = 0 WHERE user_id = $1")
        .bind(alice)
        .execute(&app.db)
        .await
        .unwrap();
    password(&app, &app.client, "alice", PASSWORD).await;
    let now = step().await;

    let too_old = app
        .post("/login/code", &[("code", &code(&secret, now - 2))])
        .await;
    assert_eq!(too_old.status, StatusCode::UNAUTHORIZED);
    let previous = app
        .post("/login/code", &[("code", &code(&secret, now - 1))])
        .await;
    assert_eq!(previous.status, StatusCode::SEE_OTHER);
    assert_eq!(previous.location(), "/");
}

#[tokio::test]
async fn a_recovery_code_signs_in_once() {
    let app = spawn_with(SecondFactorPolicy::Optional, 1_000_000).await;
    let (alice, _, codes) = enrolled_user(&app, "alice").await;

    password(&app, &app.client, "alice", PASSWORD).await;
    // Typed in capitals, without dashes: still the same code.
    let typed = codes[3].replace('-', "").to_uppercase();
    let used = app.post("/login/code", &[("code", &typed)]).await;
    assert_eq!(used.status, StatusCode::SEE_OTHER);
    assert_eq!(
        app.get("/account").await.texts("#recovery-remaining"),
        ["9"]
    );

    let other = new_client();
    password(&app, &other, "alice", PASSWORD).await;
    let again = app
        .post_with(&other, "/login/code", &[("code", &codes[3])])
        .await;
    assert_eq!(again.status, StatusCode::UNAUTHORIZED);
    assert_eq!(failed_logins(&app, alice).await, 1);
    let stored: i64 =
        sqlx::query_scalar("SELECT count(*) FROM user_recovery_codes WHERE user_id = $1")
            .bind(alice)
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(stored, 10);
    let plain: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM user_recovery_codes WHERE position(convert_to($1, 'UTF8') IN code_hash) > 0",
    )
    .bind(codes[0].replace('-', ""))
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(plain, 0, "recovery codes are stored hashed");
}

/// Signs in with the password and enrols on the page that follows; returns the secret.
async fn enrol_at_sign_in(
    app: &TestApp,
    client: &reqwest::Client,
    name: &str,
    pw: &str,
) -> Vec<u8> {
    let login = app.login_with(client, name, pw).await;
    assert_eq!(login.status, StatusCode::SEE_OTHER);
    assert_eq!(login.location(), "/login/enrol", "{name} is led to enrol");
    let dashboard = app.get_with(client, "/dashboard").await;
    assert_eq!(
        dashboard.status,
        StatusCode::SEE_OTHER,
        "no other page before enrolling"
    );
    let page = app.get_with(client, "/login/enrol").await;
    let secret = secret_of(&page);
    let now = step().await;
    let done = app
        .post_with(client, "/login/enrol", &[("code", &code(&secret, now - 1))])
        .await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    assert_eq!(done.texts("#recovery-codes li").len(), 10);
    assert_eq!(
        app.get_with(client, "/dashboard").await.status,
        StatusCode::OK
    );
    secret
}

#[tokio::test]
async fn required_for_privileged_users_leads_approvers_and_admins_to_enrol_but_not_requesters() {
    let app = spawn_with(SecondFactorPolicy::Privileged, 1_000_000).await;
    app.seed_demo().await;

    let alice = app.login_with(&new_client(), "alice", DEMO_PASSWORD).await;
    assert_eq!(alice.status, StatusCode::SEE_OTHER);
    assert_eq!(alice.location(), "/");

    let bob = new_client();
    enrol_at_sign_in(&app, &bob, "bob", DEMO_PASSWORD).await;
    enrol_at_sign_in(&app, &new_client(), "carol", DEMO_PASSWORD).await;

    // Required: it cannot be switched off.
    let account = app.get_with(&bob, "/account").await;
    assert!(account.body.contains("cannot be switched off"));
    let off = app
        .post_with(&bob, "/account/second-factor/off", &[("code", "000000")])
        .await;
    assert_eq!(off.status, StatusCode::SEE_OTHER);
    let bob_id: Uuid = sqlx::query_scalar("SELECT id FROM users WHERE username = 'bob'")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert!(is_on(&app, bob_id).await);
    let back = app.get_with(&bob, "/account").await;
    assert_eq!(
        back.texts(".flash-error"),
        ["Your account must have a second factor: it cannot be switched off."]
    );
}

#[tokio::test]
async fn an_admin_reset_is_logged_and_the_user_enrols_again() {
    let app = spawn_with(SecondFactorPolicy::Everyone, 1_000_000).await;
    let alice = app.create_user("alice", Role::User).await;
    app.create_user("carol", Role::Admin).await;
    enrol_at_sign_in(&app, &new_client(), "alice", PASSWORD).await;
    enrol_at_sign_in(&app, &app.client, "carol", PASSWORD).await;
    assert!(is_on(&app, alice).await);

    let reset = app
        .post(&format!("/admin/users/{alice}/second-factor/reset"), &[])
        .await;
    assert_eq!(reset.status, StatusCode::SEE_OTHER);
    let page = app.get(reset.location()).await;
    assert!(
        page.texts(".flash-success")[0].starts_with("Reset the second factor of alice"),
        "{:?}",
        page.texts(".flash")
    );
    assert!(!is_on(&app, alice).await);
    let (actor, action): (String, String) = sqlx::query_as(
        "SELECT actor_name, action FROM admin_audit WHERE object_id = $1 ORDER BY id DESC LIMIT 1",
    )
    .bind(alice)
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(
        (actor.as_str(), action.as_str()),
        ("carol", "reset_second_factor")
    );

    enrol_at_sign_in(&app, &new_client(), "alice", PASSWORD).await;
}

#[tokio::test]
async fn a_user_may_switch_the_factor_off_when_not_required() {
    let app = spawn_with(SecondFactorPolicy::Optional, 1_000_000).await;
    let (alice, secret, _) = enrolled_user(&app, "alice").await;
    password(&app, &app.client, "alice", PASSWORD).await;
    let now = step().await;
    app.post("/login/code", &[("code", &code(&secret, now))])
        .await;

    let off = app
        .post(
            "/account/second-factor/off",
            &[("code", &code(&secret, now + 1))],
        )
        .await;
    assert_eq!(off.status, StatusCode::SEE_OTHER);
    assert!(!is_on(&app, alice).await);
    let login = app.login_with(&new_client(), "alice", PASSWORD).await;
    assert_eq!(login.location(), "/");
}

#[tokio::test]
async fn sign_in_attempts_over_the_limit_get_429_from_that_address_only() {
    let app = spawn_with(SecondFactorPolicy::Optional, 3).await;
    let alice = app.create_user("alice", Role::User).await;
    for _ in 0..3 {
        let page = app
            .login_with(&app.client, "alice", "not-the-password")
            .await;
        assert_eq!(page.status, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(failed_logins(&app, alice).await, 3);

    let limited = app.login("alice").await;
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = limited.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=600).contains(&retry), "{retry}");
    assert_eq!(limited.texts("h1"), ["Too many sign-in attempts"]);
    // Nothing was checked or changed: not signed in, no failure counted.
    assert_eq!(app.get("/dashboard").await.status, StatusCode::SEE_OTHER);
    assert_eq!(failed_logins(&app, alice).await, 3);

    // Another address is not limited.
    let elsewhere = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .local_address(std::net::IpAddr::from([127, 0, 0, 2]))
        .build()
        .unwrap();
    let login = app.login_with(&elsewhere, "alice", PASSWORD).await;
    assert_eq!(login.status, StatusCode::SEE_OTHER);
    assert_eq!(login.location(), "/");
}

fn client_forwarded_for(address: &str) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert("x-forwarded-for", address.parse().unwrap());
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .default_headers(headers)
        .build()
        .unwrap()
}

#[tokio::test]
async fn behind_a_trusted_proxy_the_limit_counts_the_forwarded_address() {
    let s = Settings {
        sign_in_limit: 2,
        trusted_proxies: vec![std::net::IpAddr::from([127, 0, 0, 1])],
        ..settings()
    };
    let app = spawn_app_on(fresh_database().await, s).await;
    app.create_user("alice", Role::User).await;
    let first = client_forwarded_for("203.0.113.9");
    for _ in 0..2 {
        let page = app.login_with(&first, "alice", "not-the-password").await;
        assert_eq!(page.status, StatusCode::UNAUTHORIZED);
    }
    let limited = app.login_with(&first, "alice", PASSWORD).await;
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
    // Another client behind the same proxy signs in.
    let second = client_forwarded_for("203.0.113.10");
    let login = app.login_with(&second, "alice", PASSWORD).await;
    assert_eq!(login.status, StatusCode::SEE_OTHER);
    assert_eq!(login.location(), "/");
}

#[tokio::test]
async fn without_trusted_proxies_a_forwarded_address_is_ignored() {
    let app = spawn_with(SecondFactorPolicy::Optional, 2).await;
    app.create_user("alice", Role::User).await;
    for _ in 0..2 {
        let page = app
            .login_with(&client_forwarded_for("203.0.113.9"), "alice", "wrong")
            .await;
        assert_eq!(page.status, StatusCode::UNAUTHORIZED);
    }
    // A new made-up address does not buy more attempts: the peer (127.0.0.1) is counted.
    let page = app
        .login_with(&client_forwarded_for("203.0.113.77"), "alice", PASSWORD)
        .await;
    assert_eq!(page.status, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn new_recovery_codes_need_a_right_code_and_replace_the_old_ones() {
    let app = spawn_with(SecondFactorPolicy::Optional, 1_000_000).await;
    let (alice, secret, old) = enrolled_user(&app, "alice").await;
    password(&app, &app.client, "alice", PASSWORD).await;
    let now = step().await;
    app.post("/login/code", &[("code", &code(&secret, now))])
        .await;

    let wrong = app
        .post(
            "/account/recovery-codes",
            &[("code", &wrong_code(&secret, now))],
        )
        .await;
    assert_eq!(wrong.status, StatusCode::SEE_OTHER);
    assert_eq!(wrong.location(), "/account");
    let account = app.get("/account").await;
    assert!(
        account.texts(".flash-error")[0].starts_with("Nothing was changed."),
        "{}",
        account.body
    );
    assert_eq!(failed_logins(&app, alice).await, 1);

    let right = app
        .post(
            "/account/recovery-codes",
            &[("code", &code(&secret, now + 1))],
        )
        .await;
    assert_eq!(right.status, StatusCode::OK, "{}", right.body);
    let new = right.texts("#recovery-codes li");
    assert_eq!(new.len(), 10);
    assert!(new.iter().all(|c| !old.contains(c)));

    let client = new_client();
    password(&app, &client, "alice", PASSWORD).await;
    let refused = app
        .post_with(&client, "/login/code", &[("code", &old[0])])
        .await;
    assert_eq!(
        refused.status,
        StatusCode::UNAUTHORIZED,
        "an old code is gone"
    );
    let signed_in = app
        .post_with(&client, "/login/code", &[("code", &new[0])])
        .await;
    assert_eq!(signed_in.status, StatusCode::SEE_OTHER);
    assert_eq!(signed_in.location(), "/");
}
