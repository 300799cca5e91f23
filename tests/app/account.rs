//! The account page (issue 16): a user changes their own password, display name and time
//! zone; recovery codes can be downloaded; the demo data teaches the right things.

use portcullis::domain::role::Role;
use reqwest::StatusCode;
use uuid::Uuid;

use crate::support::{PASSWORD, TestApp, new_client, spawn_app, spawn_demo_app};

const NEW_PASSWORD: &str = "Plum-Harbour-Violin-93";

async fn password_hash(app: &TestApp, id: Uuid) -> String {
    sqlx::query_scalar("SELECT password_hash FROM users WHERE id = $1")
        .bind(id)
        .fetch_one(&app.db)
        .await
        .unwrap()
}

async fn audit_actions(app: &TestApp, id: Uuid) -> Vec<String> {
    sqlx::query_scalar("SELECT action FROM admin_audit WHERE object_id = $1 ORDER BY id")
        .bind(id)
        .fetch_all(&app.db)
        .await
        .unwrap()
}

async fn signed_in(app: &TestApp, username: &str, password: &str) -> reqwest::Client {
    let client = new_client();
    let login = app.login_with(&client, username, password).await;
    assert_eq!(login.status, StatusCode::SEE_OTHER, "{username} signs in");
    client
}

/// Whether `client` is still signed in.
async fn still_signed_in(app: &TestApp, client: &reqwest::Client) -> bool {
    app.get_with(client, "/account").await.status == StatusCode::OK
}

#[tokio::test]
async fn a_wrong_current_password_a_weak_or_mistyped_new_one_change_nothing() {
    let app = spawn_app().await;
    let ann = app.create_user("ann", Role::User).await;
    let here = signed_in(&app, "ann", PASSWORD).await;
    let elsewhere = signed_in(&app, "ann", PASSWORD).await;
    let before = password_hash(&app, ann).await;

    for (form, field, message) in [
        (
            ["wrong-password-entirely", NEW_PASSWORD, NEW_PASSWORD],
            "#current_password-error",
            "Your current password is not right. Nothing was changed.",
        ),
        (
            [PASSWORD, "short", "short"],
            "#new_password-error",
            "The password must be at least 12 characters",
        ),
        (
            [PASSWORD, "aaaaaaaaaaaaaaaa", "aaaaaaaaaaaaaaaa"],
            "#new_password-error",
            "The password is too easy to guess",
        ),
        (
            [PASSWORD, NEW_PASSWORD, "Plum-Harbour-Violin-94"],
            "#new_password_again-error",
            "The two new passwords differ: type the same one twice.",
        ),
    ] {
        let page = app
            .post_with(
                &here,
                "/account/password",
                &[
                    ("current_password", form[0]),
                    ("new_password", form[1]),
                    ("new_password_again", form[2]),
                ],
            )
            .await;
        assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY, "{form:?}");
        let shown = page.texts(field).join(" ");
        assert!(shown.starts_with(message), "{form:?}: {shown:?}");
        assert!(
            !page.body.contains(form[1]) || form[1] == PASSWORD,
            "a password typed is never shown again"
        );
        assert_eq!(password_hash(&app, ann).await, before, "{form:?}");
        assert!(still_signed_in(&app, &here).await && still_signed_in(&app, &elsewhere).await);
    }
    assert!(audit_actions(&app, ann).await.is_empty());
    // The wrong current password counted as a failed sign-in.
    let failed: i32 = sqlx::query_scalar("SELECT failed_logins FROM users WHERE id = $1")
        .bind(ann)
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(failed, 1);
}

#[tokio::test]
async fn a_new_password_ends_the_other_sign_ins_keeps_this_one_and_is_audited() {
    let app = spawn_app().await;
    let ann = app.create_user("ann", Role::User).await;
    let bob = app.create_user("bob", Role::User).await;
    let here = signed_in(&app, "ann", PASSWORD).await;
    let elsewhere = signed_in(&app, "ann", PASSWORD).await;
    let someone_else = signed_in(&app, "bob", PASSWORD).await;

    let done = app
        .post_with(
            &here,
            "/account/password",
            &[
                ("current_password", PASSWORD),
                ("new_password", NEW_PASSWORD),
                ("new_password_again", NEW_PASSWORD),
            ],
        )
        .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    assert_eq!(done.location(), "/account");
    let page = app.get_with(&here, "/account").await;
    assert_eq!(page.status, StatusCode::OK, "this sign-in is kept");
    assert_eq!(
        page.texts(".flash"),
        ["Your password is changed. Your other sign-in has ended."]
    );
    assert!(
        !still_signed_in(&app, &elsewhere).await,
        "the other sign-in ended"
    );
    assert!(
        still_signed_in(&app, &someone_else).await,
        "other people's sign-ins stay"
    );
    assert_eq!(audit_actions(&app, ann).await, ["change_own_password"]);
    assert!(audit_actions(&app, bob).await.is_empty());

    let old = app.login_with(&new_client(), "ann", PASSWORD).await;
    assert_eq!(
        old.status,
        StatusCode::UNAUTHORIZED,
        "the old password is gone"
    );
    signed_in(&app, "ann", NEW_PASSWORD).await;
}

#[tokio::test]
async fn display_name_and_time_zone_are_checked_and_the_heading_follows_them() {
    let app = spawn_app().await;
    let ann = app.create_user("ann", Role::User).await;
    let client = signed_in(&app, "ann", PASSWORD).await;
    let stored = || async {
        sqlx::query_as::<_, (String, String)>(
            "SELECT display_name, time_zone FROM users WHERE id = $1",
        )
        .bind(ann)
        .fetch_one(&app.db)
        .await
        .unwrap()
    };
    let before = stored().await;

    let bad_zone = app
        .post_with(
            &client,
            "/account/profile",
            &[
                ("display_name", "Ann Archer"),
                ("time_zone", "Mars/Olympus"),
            ],
        )
        .await;
    assert_eq!(bad_zone.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        bad_zone.texts("#time_zone-error"),
        ["Unknown time zone \"Mars/Olympus\": use an IANA name such as UTC or Europe/Berlin."]
    );
    assert!(
        bad_zone.body.contains(r#"value="Mars/Olympus""#)
            && bad_zone.body.contains(r#"value="Ann Archer""#),
        "what was typed is kept"
    );
    let no_name = app
        .post_with(
            &client,
            "/account/profile",
            &[("display_name", "   "), ("time_zone", "Asia/Tokyo")],
        )
        .await;
    assert_eq!(no_name.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(no_name.texts("#display_name-error").len(), 1);
    assert_eq!(stored().await, before, "nothing changed");
    assert!(audit_actions(&app, ann).await.is_empty());

    let saved = app
        .post_with(
            &client,
            "/account/profile",
            &[("display_name", "Ann Archer"), ("time_zone", "Asia/Tokyo")],
        )
        .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
    assert_eq!(
        stored().await,
        ("Ann Archer".to_owned(), "Asia/Tokyo".to_owned())
    );
    let page = app.get_with(&client, "/account").await;
    assert_eq!(page.texts("h1"), ["Account: Ann Archer"]);
    assert_eq!(page.texts(".account-name"), ["Ann Archer"]);
    assert_eq!(
        page.texts(".flash"),
        ["Saved: you are Ann Archer and see times in Asia/Tokyo."]
    );
    let dashboard = app.get_with(&client, "/dashboard").await;
    assert!(
        dashboard.body.contains("Times are shown in Asia/Tokyo."),
        "the new zone is used"
    );
    assert_eq!(audit_actions(&app, ann).await, ["update_own_account"]);
}

#[tokio::test]
async fn recovery_codes_can_be_downloaded_and_the_code_fields_are_labelled_apart() {
    let app = spawn_app().await;
    app.create_user("ann", Role::User).await;
    let client = signed_in(&app, "ann", PASSWORD).await;
    let page = app.get_with(&client, "/account/second-factor").await;
    assert_eq!(page.status, StatusCode::OK);
    let (_, codes) = crate::second_factor::enrol_from_account(&app, &client).await;

    // What the recovery codes page's download form posts: the codes it shows.
    let file = app
        .post_with(
            &client,
            "/account/recovery-codes.txt",
            &[("codes", &codes.join(" "))],
        )
        .await;
    assert_eq!(file.status, StatusCode::OK);
    assert_eq!(
        file.headers["content-type"].to_str().unwrap(),
        "text/plain; charset=utf-8"
    );
    assert_eq!(
        file.headers["content-disposition"].to_str().unwrap(),
        r#"attachment; filename="portcullis-recovery-codes.txt""#
    );
    let lines: Vec<&str> = file.body.lines().collect();
    assert_eq!(lines[0], "Portcullis recovery codes for ann");
    assert_eq!(
        lines[3..],
        codes.iter().map(String::as_str).collect::<Vec<_>>()[..]
    );

    let refused = app
        .post_with(
            &client,
            "/account/recovery-codes.txt",
            &[("codes", "<script>alert(1)</script>")],
        )
        .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(!refused.body.contains("<script>alert"));

    // Two code fields on the account page, each with its own label.
    let account = app.get_with(&client, "/account").await;
    let labels = [
        account.texts(r#"label[for="regenerate-code"]"#),
        account.texts(r#"label[for="off-code"]"#),
    ];
    assert_eq!(labels[0], ["Code for new recovery codes"]);
    assert_eq!(labels[1], ["Code to switch the second factor off"]);
}

#[tokio::test]
async fn the_recovery_codes_page_offers_copy_and_download() {
    let app = spawn_app().await;
    app.create_user("ann", Role::User).await;
    let client = signed_in(&app, "ann", PASSWORD).await;
    let page = app.get_with(&client, "/account/second-factor").await;
    let secret = {
        let shown = page.texts("#totp-secret");
        totp_rs::Secret::Encoded(shown[0].replace(' ', ""))
            .to_bytes()
            .unwrap()
    };
    let now = crate::second_factor::step().await;
    let shown = app
        .post_with(
            &client,
            "/account/second-factor",
            &[("code", &crate::second_factor::code(&secret, now - 1))],
        )
        .await;
    let codes = shown.texts("#recovery-codes li");
    assert_eq!(codes.len(), 10);
    assert_eq!(shown.texts("#copy-recovery-codes"), ["Copy codes"]);
    let html = shown.html();
    let posted = html
        .select(
            &scraper::Selector::parse(
                r#"form[action="/account/recovery-codes.txt"] input[name="codes"]"#,
            )
            .unwrap(),
        )
        .next()
        .and_then(|e| e.value().attr("value"))
        .unwrap()
        .to_owned();
    assert_eq!(posted, codes.join(" "));
}

#[tokio::test]
async fn demo_policies_offer_activities_only_resources_of_their_platform() {
    let app = spawn_demo_app().await;
    let mismatched: Vec<String> = sqlx::query_scalar(
        "SELECT p.name || ': ' || a.name || ' (' || a.platform || ') on ' || r.name
                || ' (' || r.platform || ')'
         FROM access_policies p
         JOIN policy_activities pa ON pa.policy_id = p.id
         JOIN activities a ON a.id = pa.activity_id
         JOIN policy_resources pr ON pr.policy_id = p.id
         JOIN resources r ON r.id = pr.resource_id
         WHERE a.platform <> r.platform
         ORDER BY 1",
    )
    .fetch_all(&app.db)
    .await
    .unwrap();
    assert!(mismatched.is_empty(), "{mismatched:#?}");
}

#[tokio::test]
async fn demo_users_live_in_the_time_zones_the_readme_lists() {
    let app = spawn_demo_app().await;
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let section = readme
        .split("## Demo logins")
        .nth(1)
        .and_then(|s| s.split("\n## ").next())
        .unwrap();
    assert!(section.contains("different time zones"));
    let stored: Vec<(String, String)> =
        sqlx::query_as("SELECT username, time_zone FROM users ORDER BY username")
            .fetch_all(&app.db)
            .await
            .unwrap();
    let zones: std::collections::HashSet<&str> = stored.iter().map(|(_, z)| z.as_str()).collect();
    assert_eq!(
        zones.len(),
        stored.len(),
        "each demo user has a zone of their own"
    );
    for (user, zone) in &stored {
        // PostgreSQL's name for UTC is Etc/UTC; the README says UTC.
        let shown = zone.strip_prefix("Etc/").unwrap_or(zone);
        assert!(
            section
                .lines()
                .any(|l| l.starts_with(&format!("| `{user}` |"))
                    && l.ends_with(&format!("| {shown} |"))),
            "README's Demo logins lists {user} in {zone}"
        );
    }
}

#[tokio::test]
async fn a_database_session_shows_a_psql_line_not_ssh_to_the_database_port() {
    let app = spawn_demo_app().await;
    app.login_with(&app.client, "alice", "portcullis-demo")
        .await;
    crate::wizard::request(
        &app,
        &app.client,
        &crate::wizard::Request {
            activity: "Database maintenance",
            policy: None,
            resources: &["pg-db-01"],
            notes: "Vacuum",
            ticket: "CHG123456",
            at: None,
        },
    )
    .await;
    let id: Uuid = sqlx::query_scalar("SELECT id FROM activity_sessions ORDER BY id DESC LIMIT 1")
        .fetch_one(&app.db)
        .await
        .unwrap();
    sqlx::query(
        "UPDATE activity_sessions SET status = 'provisioning', current_tier = NULL WHERE id = $1",
    )
    .bind(id)
    .execute(&app.db)
    .await
    .unwrap();
    portcullis::worker::provision(&app.db, &app.secrets, Some(&[id]))
        .await
        .unwrap();
    let page = app.get(&format!("/sessions/{id}/connect")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(
        page.texts("#database-command"),
        ["psql -h pg-db-01.corp.example -p 5432 -U svc_dba"]
    );
    assert!(!page.body.contains("ssh -p 5432"), "{}", page.body);
    assert!(page.texts("#open-terminal").is_empty());
}

#[tokio::test]
async fn long_admin_forms_fold_what_is_not_in_use() {
    let app = spawn_demo_app().await;
    app.login_with(&app.client, "carol", "portcullis-demo")
        .await;
    let open = |page: &crate::support::Page, id: &str| -> bool {
        let html = page.html();
        let selector = scraper::Selector::parse(&format!("details#{id}")).unwrap();
        let details = html
            .select(&selector)
            .next()
            .unwrap_or_else(|| panic!("no details#{id}:\n{}", page.body));
        details.value().attr("open").is_some()
    };

    // Standard has one tier: tiers 2 and 3 are folded.
    let standard: Uuid =
        sqlx::query_scalar("SELECT id FROM connection_profiles WHERE name = 'Standard'")
            .fetch_one(&app.db)
            .await
            .unwrap();
    let profile = app.get(&format!("/admin/profiles/{standard}")).await;
    assert_eq!(profile.status, StatusCode::OK);
    assert!(open(&profile, "tier1-fold"));
    assert!(!open(&profile, "tier2-fold") && !open(&profile, "tier3-fold"));
    assert_eq!(
        profile.texts("#tier2-fold > summary"),
        ["Tier 2 (not used)"]
    );

    // Linux operations names users, no group: the groups list is folded.
    let linux: Uuid =
        sqlx::query_scalar("SELECT id FROM access_policies WHERE name = 'Linux operations'")
            .fetch_one(&app.db)
            .await
            .unwrap();
    let policy = app.get(&format!("/admin/policies/{linux}")).await;
    assert_eq!(policy.status, StatusCode::OK);
    assert!(open(&policy, "users-fold") && open(&policy, "activities-fold"));
    assert!(open(&policy, "resources-fold"));
    assert!(!open(&policy, "groups-fold"));
    assert_eq!(policy.texts("#users-fold > summary"), ["Users (2 chosen)"]);

    // A new policy shows every list.
    let new = app.get("/admin/policies/new").await;
    for id in [
        "users-fold",
        "groups-fold",
        "activities-fold",
        "resources-fold",
    ] {
        assert!(open(&new, id), "{id}");
    }
}
