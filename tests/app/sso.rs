//! Single sign-on through a real OpenID Connect provider (`oidc_provider`): accounts found by
//! the provider's subject or created, groups and role following the directory, the second
//! factor, and every refusal with its page and nothing created.

use portcullis::config::SecondFactorPolicy;
use portcullis::domain::role::Role;
use serde_json::json;

use crate::oidc_provider::{Options, account, sign_in, spawn, way_back};
use crate::support::{Page, TestApp, new_client, settings};

async fn count(app: &TestApp, table: &str) -> i64 {
    sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
        .fetch_one(&app.db)
        .await
        .unwrap()
}

async fn groups_of(app: &TestApp, username: &str) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT g.name FROM groups g JOIN group_members gm ON gm.group_id = g.id
         JOIN users u ON u.id = gm.user_id WHERE u.username = $1 ORDER BY g.name",
    )
    .bind(username)
    .fetch_all(&app.db)
    .await
    .unwrap()
}

fn problem(page: &Page) -> String {
    page.texts("#sso-problem").join(" ")
}

/// Nothing was created: no account and no link beyond the `users` already there.
async fn assert_nothing_created(app: &TestApp, users: i64) {
    assert_eq!(count(app, "users").await, users);
    assert_eq!(count(app, "user_identities").await, 0);
}

#[tokio::test]
async fn first_sign_in_creates_the_account_from_the_claims_with_mapped_groups_and_role() {
    let accounts = json!({ "ann": account("ann", &["idp-ops", "idp-admins", "other"], &["pwd"]) });
    let (app, provider) = spawn(&accounts, Options::default()).await;

    let back = sign_in(&app, &provider, &app.client, "ann").await;

    assert_eq!(back.status, 303, "{}", back.body);
    assert_eq!(back.location(), "/");
    let dashboard = app.get("/dashboard").await;
    assert_eq!(dashboard.status, 200);
    let (name, email, role, password): (String, Option<String>, Role, Option<String>) =
        sqlx::query_as(
            "SELECT display_name, email, role, password_hash FROM users WHERE username = 'ann'",
        )
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(name, "ann from the directory");
    assert_eq!(email.as_deref(), Some("ann@corp.example"));
    assert_eq!(role, Role::Admin);
    assert!(password.is_none(), "a provider's account has no password");
    assert_eq!(
        groups_of(&app, "ann").await,
        ["Administrators", "Operations"]
    );
    let (issuer, subject): (String, String) =
        sqlx::query_as("SELECT issuer, subject FROM user_identities")
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(
        (issuer.as_str(), subject.as_str()),
        (provider.issuer.as_str(), "ann")
    );
    let audit: Vec<String> =
        sqlx::query_scalar("SELECT action FROM admin_audit WHERE object_name = 'ann' ORDER BY id")
            .fetch_all(&app.db)
            .await
            .unwrap();
    assert_eq!(audit, ["create", "sign in (single sign-on)"]);
}

#[tokio::test]
async fn groups_and_role_follow_the_provider_at_the_next_sign_in() {
    let accounts = json!({ "bob": account("bob", &["idp-ops", "idp-admins"], &["pwd"]) });
    let (app, provider) = spawn(&accounts, Options::default()).await;
    sign_in(&app, &provider, &new_client(), "bob").await;
    // A membership the mapping does not manage stays as the administrator set it.
    sqlx::query(
        "INSERT INTO group_members (group_id, user_id)
         SELECT g.id, u.id FROM groups g, users u WHERE g.name = 'Unmapped' AND u.username = 'bob'",
    )
    .execute(&app.db)
    .await
    .unwrap();

    provider.set_accounts(&json!({ "bob": account("bob", &["idp-ops"], &["pwd"]) }));
    let again = sign_in(&app, &provider, &new_client(), "bob").await;

    assert_eq!(again.status, 303, "{}", again.body);
    assert_eq!(groups_of(&app, "bob").await, ["Operations", "Unmapped"]);
    let role: Role = sqlx::query_scalar("SELECT role FROM users WHERE username = 'bob'")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(role, Role::User);
    assert_eq!(
        count(&app, "users").await,
        1,
        "the same account, found by subject"
    );
}

#[tokio::test]
async fn a_way_back_with_another_state_is_refused_and_creates_nothing() {
    let accounts = json!({ "cat": account("cat", &[], &["pwd"]) });
    let (app, provider) = spawn(&accounts, Options::default()).await;
    let back = way_back(&app, &provider, &app.client, "cat").await;
    let forged = back.replace("state=", "state=forged");

    let page = app.get(forged.trim_start_matches(&app.url(""))).await;

    assert_eq!(page.status, 400);
    assert!(
        problem(&page).contains("was not started in this browser"),
        "{}",
        page.body
    );
    assert_nothing_created(&app, 0).await;
    assert_eq!(app.get("/dashboard").await.status, 303, "not signed in");
}

#[tokio::test]
async fn a_replayed_code_is_refused_and_creates_nothing_more() {
    let accounts = json!({ "dan": account("dan", &[], &["pwd"]) });
    let (app, provider) = spawn(&accounts, Options::default()).await;
    let victim = new_client();
    let back = way_back(&app, &provider, &victim, "dan").await;
    let path = back.trim_start_matches(&app.url("")).to_owned();
    assert_eq!(app.get_with(&victim, &path).await.status, 303);

    // The same way back again: its sign-in is over.
    let replay = app.get_with(&victim, &path).await;
    assert_eq!(replay.status, 400);
    assert!(problem(&replay).contains("already used"), "{}", replay.body);
    // The used code inside a fresh sign-in's way back: the provider refuses it.
    let attacker = new_client();
    let fresh = way_back(&app, &provider, &attacker, "dan").await;
    let old_code = query_value(&back, "code");
    let new_code = query_value(&fresh, "code");
    let injected = fresh
        .replace(&new_code, &old_code)
        .trim_start_matches(&app.url(""))
        .to_owned();
    let refused = app.get_with(&attacker, &injected).await;

    assert_eq!(refused.status, 400, "{}", refused.body);
    assert!(
        problem(&refused).contains("refused to complete"),
        "{}",
        refused.body
    );
    assert_eq!(app.get_with(&attacker, "/dashboard").await.status, 303);
    assert_eq!(count(&app, "users").await, 1);
}

fn query_value(url: &str, name: &str) -> String {
    url.split(['?', '&'])
        .find_map(|p| p.strip_prefix(&format!("{name}=")))
        .unwrap()
        .to_owned()
}

/// Signs in through a provider that hands out an ID token tampered as `tamper` says.
async fn refused_token(tamper: &'static str) -> (Page, TestApp) {
    let accounts = json!({ "eve": account("eve", &["idp-admins"], &["pwd"]) });
    let options = Options {
        tamper: Some(tamper),
        ..Options::default()
    };
    let (app, provider) = spawn(&accounts, options).await;
    let page = sign_in(&app, &provider, &app.client, "eve").await;
    assert_eq!(page.status, 400, "{}", page.body);
    assert_nothing_created(&app, 0).await;
    assert_eq!(app.get("/dashboard").await.status, 303, "not signed in");
    (page, app)
}

#[tokio::test]
async fn an_id_token_for_another_audience_is_refused() {
    let (page, _app) = refused_token("wrong-audience").await;
    assert!(problem(&page).contains("wrong audience"), "{}", page.body);
}

#[tokio::test]
async fn an_expired_id_token_is_refused() {
    let (page, _app) = refused_token("expired").await;
    assert!(problem(&page).contains("has expired"), "{}", page.body);
}

#[tokio::test]
async fn an_id_token_from_an_unknown_issuer_is_refused() {
    let (page, _app) = refused_token("wrong-issuer").await;
    assert!(problem(&page).contains("unknown issuer"), "{}", page.body);
}

#[tokio::test]
async fn without_account_creation_a_new_person_is_refused_and_nothing_is_created() {
    let accounts = json!({ "fay": account("fay", &["idp-ops"], &["pwd"]) });
    let options = Options {
        create_accounts: false,
        ..Options::default()
    };
    let (app, provider) = spawn(&accounts, options).await;

    let page = sign_in(&app, &provider, &app.client, "fay").await;

    assert_eq!(page.status, 403);
    assert!(
        problem(&page).contains("accounts are not created"),
        "{}",
        page.body
    );
    assert_nothing_created(&app, 0).await;
}

#[tokio::test]
async fn a_taken_username_is_refused_and_nothing_is_created() {
    let accounts = json!({ "gus": account("Gus", &["idp-admins"], &["pwd"]) });
    let (app, provider) = spawn(&accounts, Options::default()).await;
    app.create_user("gus", Role::User).await;

    let page = sign_in(&app, &provider, &app.client, "gus").await;

    assert_eq!(page.status, 403);
    assert!(
        problem(&page).contains("named “Gus” already exists"),
        "{}",
        page.body
    );
    assert_nothing_created(&app, 1).await;
    assert!(groups_of(&app, "gus").await.is_empty());
}

#[tokio::test]
async fn a_disabled_account_stays_refused() {
    let accounts = json!({ "hal": account("hal", &["idp-ops"], &["pwd"]) });
    let (app, provider) = spawn(&accounts, Options::default()).await;
    sign_in(&app, &provider, &new_client(), "hal").await;
    sqlx::query("UPDATE users SET disabled = true WHERE username = 'hal'")
        .execute(&app.db)
        .await
        .unwrap();
    provider.set_accounts(&json!({ "hal": account("hal", &["idp-admins"], &["pwd"]) }));

    let page = sign_in(&app, &provider, &app.client, "hal").await;

    assert_eq!(page.status, 403);
    assert!(problem(&page).contains("is disabled"), "{}", page.body);
    assert_eq!(app.get("/dashboard").await.status, 303, "not signed in");
    assert_eq!(
        groups_of(&app, "hal").await,
        ["Operations"],
        "nothing refreshed"
    );
}

#[tokio::test]
async fn the_providers_mfa_stands_in_for_the_second_factor_only_when_trusted() {
    let accounts = json!({
        "ida": account("ida", &[], &["pwd", "mfa"]),
        "jon": account("jon", &[], &["pwd"]),
    });
    let options = Options {
        trust_mfa: true,
        settings: portcullis::Settings {
            second_factor: SecondFactorPolicy::Everyone,
            ..settings()
        },
        ..Options::default()
    };
    let (app, provider) = spawn(&accounts, options).await;

    let with_mfa = sign_in(&app, &provider, &new_client(), "ida").await;
    let without = sign_in(&app, &provider, &new_client(), "jon").await;

    assert_eq!(with_mfa.location(), "/", "{}", with_mfa.body);
    assert_eq!(
        without.location(),
        "/login/enrol",
        "our own second factor still applies"
    );
}

#[tokio::test]
async fn password_sign_in_is_off_except_for_the_break_glass_administrator() {
    let (app, _provider) = spawn(
        &json!({}),
        Options {
            break_glass: Some(vec!["root".into()]),
            ..Options::default()
        },
    )
    .await;
    app.create_user("root", Role::Admin).await;
    app.create_user("kim", Role::User).await;

    let refused = app.login("kim").await;
    let admin = app
        .login_with(&new_client(), "root", crate::support::PASSWORD)
        .await;

    assert_eq!(refused.status, 403);
    assert!(
        refused.texts("#login-error")[0].contains("reserved for break-glass"),
        "{}",
        refused.body
    );
    assert_eq!(
        app.get("/dashboard").await.status,
        303,
        "kim is not signed in"
    );
    assert_eq!(admin.status, 303, "{}", admin.body);
    assert_eq!(admin.location(), "/");
}

#[tokio::test]
async fn the_providers_mfa_is_not_trusted_unless_configured() {
    let accounts = json!({ "lea": account("lea", &[], &["pwd", "mfa"]) });
    let options = Options {
        settings: portcullis::Settings {
            second_factor: SecondFactorPolicy::Everyone,
            ..settings()
        },
        ..Options::default()
    };
    let (app, provider) = spawn(&accounts, options).await;

    let page = sign_in(&app, &provider, &app.client, "lea").await;

    assert_eq!(page.location(), "/login/enrol");
    assert_eq!(app.get("/dashboard").await.status, 303, "not signed in yet");
}

#[tokio::test]
async fn a_provider_that_cannot_be_reached_gets_a_clear_page() {
    let (app, provider) = spawn(&json!({}), Options::default()).await;
    drop(provider);

    let page = app.get("/login/sso").await;

    assert_eq!(page.status, 502);
    assert!(
        problem(&page).contains("cannot be reached"),
        "{}",
        page.body
    );
}

#[tokio::test]
async fn a_group_map_naming_a_missing_group_stops_the_start_with_its_name() {
    let (app, _provider) = spawn(&json!({}), Options::default()).await;
    let mapping = portcullis::auth::sso::Mapping::parse(
        "[groups]\n\"idp-ops\" = \"Operations\"\n\"idp-x\" = \"Nowhere\"\n",
    )
    .unwrap();

    let err = portcullis::db::identities::check_mapped_groups(&app.db, &mapping)
        .await
        .unwrap_err();

    assert!(err.to_string().contains("do not exist: Nowhere"), "{err}");
    let fine = portcullis::auth::sso::Mapping::parse(crate::oidc_provider::MAPPING).unwrap();
    assert!(
        portcullis::db::identities::check_mapped_groups(&app.db, &fine)
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn keys_rotated_at_the_provider_are_read_again_and_the_sign_in_goes_through() {
    let accounts = json!({ "kim": account("kim", &["idp-ops"], &["pwd"]) });
    let (app, mut provider) = spawn(&accounts, Options::default()).await;
    let first = sign_in(&app, &provider, &new_client(), "kim").await;
    assert_eq!(first.status, 303, "{}", first.body);

    // The provider now signs with a new key under a new key id; ours is five minutes old
    // at most, so the token names a key we have not seen: we read the keys again.
    provider.rotate_key().await;
    let again = sign_in(&app, &provider, &new_client(), "kim").await;
    assert_eq!(again.status, 303, "{}", again.body);
    assert_eq!(again.location(), "/");
    assert_eq!(count(&app, "users").await, 1);
}

/// Confirms the password on the Account page and signs in at the provider as `login`: the
/// app's answer to the way back.
async fn link_from_account(
    app: &TestApp,
    provider: &crate::oidc_provider::TestProvider,
    client: &reqwest::Client,
    login: &str,
) -> Page {
    let page = app
        .post_with(
            client,
            "/account/sso/link",
            &[("password", crate::support::PASSWORD)],
        )
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    let url = page
        .html()
        .select(&scraper::Selector::parse("#sso-link-continue").unwrap())
        .next()
        .and_then(|a| a.value().attr("href"))
        .expect("the way to the provider")
        .to_owned();
    let back = crate::oidc_provider::at_the_provider(app, provider, client, &url, login).await;
    crate::oidc_provider::get(client, &back).await
}

#[tokio::test]
async fn a_password_account_links_its_provider_sign_in_from_account_never_by_email() {
    // The provider's person has pat's username and email: that alone links nothing.
    let accounts = json!({ "pat-sub": account("pat", &["idp-ops"], &["pwd"]) });
    let options = Options {
        create_accounts: false,
        ..Options::default()
    };
    let (app, provider) = spawn(&accounts, options).await;
    let pat = app.create_user("pat", Role::User).await;
    app.create_user("quinn", Role::User).await;
    sqlx::query("UPDATE users SET email = 'pat@corp.example' WHERE id = $1")
        .bind(pat)
        .execute(&app.db)
        .await
        .unwrap();
    let stranger = sign_in(&app, &provider, &new_client(), "pat-sub").await;
    assert_eq!(stranger.status, 403, "{}", stranger.body);
    assert_eq!(count(&app, "user_identities").await, 0);

    // pat, signed in with the password, links from Account: a wrong password links nothing.
    let client = new_client();
    app.login_with(&client, "pat", crate::support::PASSWORD)
        .await;
    let account_page = app.get_with(&client, "/account").await;
    assert!(
        account_page.texts("#sso-link-state")[0].starts_with("Not linked."),
        "{}",
        account_page.body
    );
    let wrong = app
        .post_with(
            &client,
            "/account/sso/link",
            &[("password", "not-my-password")],
        )
        .await;
    assert_eq!(wrong.status, 303);
    let after = app.get_with(&client, wrong.location()).await;
    assert!(after.texts(".flash")[0].starts_with("That is not your password"));
    assert_eq!(count(&app, "user_identities").await, 0);

    let linked = link_from_account(&app, &provider, &client, "pat-sub").await;
    assert_eq!(linked.status, 303, "{}", linked.body);
    assert_eq!(linked.location(), "/account");
    let shown = app.get_with(&client, "/account").await;
    assert_eq!(
        shown.texts(".flash"),
        ["Linked: you can now sign in with Test Directory."]
    );
    assert!(shown.texts("#sso-link-state")[0].starts_with("Linked"));
    let (subject, user): (String, uuid::Uuid) =
        sqlx::query_as("SELECT subject, user_id FROM user_identities")
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!((subject.as_str(), user), ("pat-sub", pat));
    let audit: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM admin_audit WHERE action = 'link single sign-on' AND object_id = $1",
    )
    .bind(pat)
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(audit, 1);

    // Now the provider's sign-in lands in pat's account.
    let fresh = new_client();
    let back = sign_in(&app, &provider, &fresh, "pat-sub").await;
    assert_eq!(back.status, 303, "{}", back.body);
    assert_eq!(count(&app, "users").await, 2);

    // quinn cannot take the same provider sign-in: refused, nothing changes.
    let quinn = new_client();
    app.login_with(&quinn, "quinn", crate::support::PASSWORD)
        .await;
    let taken = link_from_account(&app, &provider, &quinn, "pat-sub").await;
    assert_eq!(taken.status, 303, "{}", taken.body);
    let page = app.get_with(&quinn, "/account").await;
    assert!(
        page.texts(".flash")[0].starts_with("That Test Directory sign-in is linked to another"),
        "{:?}",
        page.texts(".flash")
    );
    assert_eq!(count(&app, "user_identities").await, 1);

    // A way back for a link started by another browser's account links nothing.
    let other = new_client();
    app.login_with(&other, "quinn", crate::support::PASSWORD)
        .await;
    let page = app
        .post_with(
            &other,
            "/account/sso/link",
            &[("password", crate::support::PASSWORD)],
        )
        .await;
    let url = page
        .html()
        .select(&scraper::Selector::parse("#sso-link-continue").unwrap())
        .next()
        .and_then(|a| a.value().attr("href"))
        .unwrap()
        .to_owned();
    let back =
        crate::oidc_provider::at_the_provider(&app, &provider, &other, &url, "pat-sub").await;
    // Signed out before coming back: the link is refused.
    app.post_with(&other, "/logout", &[]).await;
    let refused = crate::oidc_provider::get(&other, &back).await;
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert_eq!(count(&app, "user_identities").await, 1);
}

/// Signing out after a provider sign-in signs out of the provider too (RP-initiated logout):
/// our page refreshes to its end-session endpoint with the ID token as the hint; once
/// confirmed there the browser is back on our sign-in page, and the provider asks who you are
/// again. A password sign-in, or an instance with provider logout off, just goes to /login.
#[tokio::test]
async fn signing_out_signs_out_of_the_provider_too() {
    use crate::oidc_provider::{get, provider_asks_who};
    let accounts = json!({ "ann": account("ann", &["idp-ops"], &["pwd"]) });
    let (app, provider) = spawn(&accounts, Options::default()).await;
    let client = new_client();
    assert_eq!(sign_in(&app, &provider, &client, "ann").await.status, 303);
    assert!(
        !provider_asks_who(&app, &provider, &client).await,
        "signed in at the provider, it sends the browser straight back"
    );

    let out = app.post_with(&client, "/logout", &[]).await;
    assert_eq!(out.status, 200, "{}", out.body);
    let html = out.html();
    let link = html
        .select(&scraper::Selector::parse("#provider-logout").unwrap())
        .next()
        .and_then(|a| a.value().attr("href"))
        .unwrap()
        .to_owned();
    let refresh = html
        .select(&scraper::Selector::parse(r#"meta[http-equiv="refresh"]"#).unwrap())
        .next()
        .and_then(|m| m.value().attr("content"))
        .unwrap()
        .to_owned();
    assert_eq!(refresh, format!("0; url={link}"));
    let url = reqwest::Url::parse(&link).unwrap();
    assert_eq!(
        url.as_str().split('?').next().unwrap(),
        format!("{}/session/end", provider.issuer)
    );
    let query: std::collections::HashMap<String, String> = url.query_pairs().into_owned().collect();
    assert_eq!(query["client_id"], crate::oidc_provider::CLIENT_ID);
    assert_eq!(query["post_logout_redirect_uri"], app.url("/login"));
    assert_eq!(query["id_token_hint"].split('.').count(), 3, "a JWT");
    // Signed out of Portcullis at once, whatever happens at the provider.
    let dashboard = app.get_with(&client, "/dashboard").await;
    assert_eq!(dashboard.status, 303);
    assert!(dashboard.location().starts_with("/login"));

    // The provider asks; confirming sends the browser back to our sign-in page.
    let confirm = get(&client, &link).await;
    assert_eq!(confirm.status, 200, "{}", confirm.body);
    let page = confirm.html();
    let form = page
        .select(&scraper::Selector::parse("form").unwrap())
        .next()
        .unwrap();
    let action = form.value().attr("action").unwrap().to_owned();
    let mut fields: Vec<(String, String)> = form
        .select(&scraper::Selector::parse("input[type=hidden]").unwrap())
        .map(|i| {
            let v = i.value();
            (
                v.attr("name").unwrap().to_owned(),
                v.attr("value").unwrap_or_default().to_owned(),
            )
        })
        .collect();
    fields.push(("logout".into(), "yes".into()));
    let action = if action.starts_with("http") {
        action
    } else {
        format!("{}{action}", provider.issuer)
    };
    let done = crate::support::read(client.post(&action).form(&fields).send().await.unwrap()).await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(done.location(), app.url("/login"));
    assert!(
        provider_asks_who(&app, &provider, &client).await,
        "signed out at the provider, it asks again"
    );

    // A password sign-in on the same instance signs out of Portcullis only.
    let bob = new_client();
    app.create_user("pw-user", Role::User).await;
    app.login_with(&bob, "pw-user", crate::support::PASSWORD)
        .await;
    let out = app.post_with(&bob, "/logout", &[]).await;
    assert_eq!((out.status.as_u16(), out.location()), (303, "/login"));

    // With provider logout switched off, a provider sign-in signs out of Portcullis only.
    let (app, provider) = spawn(
        &accounts,
        Options {
            provider_logout: false,
            ..Options::default()
        },
    )
    .await;
    let client = new_client();
    assert_eq!(sign_in(&app, &provider, &client, "ann").await.status, 303);
    let out = app.post_with(&client, "/logout", &[]).await;
    assert_eq!((out.status.as_u16(), out.location()), (303, "/login"));
    assert!(!provider_asks_who(&app, &provider, &client).await);
}
