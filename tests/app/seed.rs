//! Seed files: idempotent, all-or-nothing, errors with line and field.

use portcullis::domain::seed::parse;
use portcullis::seeding::{ApplyError, apply};
use portcullis::server::DEMO_SEED;

use crate::support::spawn_app;

/// Every row of the catalogue tables, as JSON, in a stable order.
pub(crate) async fn snapshot(db: &sqlx::PgPool) -> Vec<String> {
    let mut rows = Vec::new();
    for table in [
        "users",
        "groups",
        "group_members",
        "resources",
        "activities",
        "connection_profiles",
        "approval_tiers",
        "approval_tier_users",
        "approval_tier_groups",
        "access_policies",
        "policy_users",
        "policy_groups",
        "policy_activities",
        "policy_resources",
    ] {
        let mut these: Vec<String> =
            sqlx::query_scalar(&format!("SELECT to_jsonb(t)::text FROM {table} t"))
                .fetch_all(db)
                .await
                .unwrap();
        these.sort();
        rows.extend(these.into_iter().map(|r| format!("{table}: {r}")));
    }
    rows
}

#[tokio::test]
async fn the_demo_seed_loads_what_the_readme_promises() {
    let app = spawn_app().await;
    app.seed_demo().await;
    let users: Vec<String> = sqlx::query_scalar("SELECT username FROM users ORDER BY username")
        .fetch_all(&app.db)
        .await
        .unwrap();
    assert_eq!(users, ["alice", "bob", "carol", "dave", "erin"]);
    let resources: i64 = sqlx::query_scalar("SELECT count(*) FROM resources")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert!(resources >= 30);
    let modes: Vec<String> =
        sqlx::query_scalar("SELECT DISTINCT login_mode::text FROM activities ORDER BY 1")
            .fetch_all(&app.db)
            .await
            .unwrap();
    assert_eq!(modes, ["ephemeral", "managed", "own"]);
    let protocols: Vec<String> =
        sqlx::query_scalar("SELECT DISTINCT protocol::text FROM activities ORDER BY 1")
            .fetch_all(&app.db)
            .await
            .unwrap();
    assert_eq!(protocols, ["https", "rdp", "ssh"]);
    let tiers: Vec<(String, i16, i32)> = sqlx::query_as(
        "SELECT p.name, t.position, t.approvals_required FROM approval_tiers t
         JOIN connection_profiles p ON p.id = t.profile_id ORDER BY p.name, t.position",
    )
    .fetch_all(&app.db)
    .await
    .unwrap();
    assert_eq!(
        tiers,
        [
            ("Change window".to_owned(), 1, 1),
            ("Change window".to_owned(), 2, 1),
            ("Standard".to_owned(), 1, 1)
        ]
    );
    // The demo passwords work.
    let login = app
        .login_with(&app.client, "alice", "portcullis-demo")
        .await;
    assert_eq!(login.status, reqwest::StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn applying_a_seed_twice_changes_nothing() {
    let app = spawn_app().await;
    let seed = parse(DEMO_SEED).unwrap();
    apply(&app.db, &seed).await.unwrap();
    let first = snapshot(&app.db).await;
    apply(&app.db, &seed).await.unwrap();
    assert_eq!(snapshot(&app.db).await, first);
}

#[tokio::test]
async fn a_seed_with_an_unknown_reference_changes_nothing_and_names_the_line() {
    let app = spawn_app().await;
    app.seed_demo().await;
    let before = snapshot(&app.db).await;

    let text = r#"
[[resources]]
name = "new-server"
kind = "server"
platform = "Linux"
address = "new.example"

[[policies]]
name = "Linux operations"
profile = "Standard"
users = ["alice"]
activities = ["Linux administration", "Telepathy"]
resources = ["new-server"]
"#;
    let seed = parse(text).unwrap();
    let Err(ApplyError::Invalid(errors)) = apply(&app.db, &seed).await else {
        panic!("the seed should have been refused");
    };
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].line, 12);
    assert_eq!(errors[0].field, "policies[0].activities");
    assert!(
        errors[0].message.contains("unknown activity \"Telepathy\""),
        "{}",
        errors[0].message
    );
    assert_eq!(
        snapshot(&app.db).await,
        before,
        "nothing may change, not even new-server"
    );
}

#[tokio::test]
async fn a_tier_that_cannot_gather_its_approvals_is_refused() {
    let app = spawn_app().await;
    app.seed_demo().await;
    let text = r#"
[[profiles]]
name = "Four eyes"
max_duration_minutes = 60

[[profiles.tiers]]
approvals_required = 3
groups = ["Approvers"]
"#;
    let seed = parse(text).unwrap();
    let Err(ApplyError::Invalid(errors)) = apply(&app.db, &seed).await else {
        panic!("refused expected");
    };
    assert_eq!(errors[0].line, 6);
    assert!(
        errors[0]
            .message
            .contains("only 2 enabled user(s) can approve"),
        "{}",
        errors[0].message
    );
    let n: i64 =
        sqlx::query_scalar("SELECT count(*) FROM connection_profiles WHERE name = 'Four eyes'")
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(n, 0);
}

#[tokio::test]
async fn passwords_are_refused_outside_a_demo_file() {
    let errors = parse("[[users]]\nusername = \"x\"\npassword = \"secret-secret\"\n").unwrap_err();
    assert_eq!(errors[0].line, 3);
    assert_eq!(errors[0].field, "users[0].password");
}

#[tokio::test]
async fn a_seed_upserts_by_name_in_any_letter_case() {
    let app = spawn_app().await;
    app.seed_demo().await;
    let text = "[[resources]]\nname = \"LNX-WEB-01\"\nkind = \"server\"\nplatform = \"Linux\"\naddress = \"moved.example\"\nport = 2222\n";
    apply(&app.db, &parse(text).unwrap()).await.unwrap();
    let rows: Vec<(String, String, Option<i32>)> = sqlx::query_as(
        "SELECT name, address, port FROM resources WHERE lower(name) = 'lnx-web-01'",
    )
    .fetch_all(&app.db)
    .await
    .unwrap();
    assert_eq!(
        rows,
        [(
            "LNX-WEB-01".to_owned(),
            "moved.example".to_owned(),
            Some(2222)
        )]
    );
}

#[tokio::test]
async fn a_seed_points_a_resource_at_a_named_credential_and_gives_activities_groups() {
    let app = spawn_app().await;
    app.seed_demo().await;
    let key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIlNyAh1Ifr+mVdkn4LPWYxI8b4jS2G3k4ecJobMkAUJ";
    let text = format!(
        r#"
[[resources]]
name = "lnx-real-01"
kind = "server"
platform = "Linux"
address = "real.example"
provisioner = "linux_ssh"
credential = "Web Tier Root"
host_key = "{key}"

[[activities]]
name = "Linux break-glass"
platform = "Linux"
protocol = "ssh"
login_account = "ephemeral"
login_template = "pc-{{username}}-{{session}}"
groups = ["sudo", "adm"]
"#
    );
    // The credential does not exist yet: a line-numbered error, and nothing changes.
    let before = snapshot(&app.db).await;
    let seed = parse(&text).unwrap();
    let Err(ApplyError::Invalid(errors)) = apply(&app.db, &seed).await else {
        panic!("the seed should have been refused");
    };
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].line, 2);
    assert_eq!(errors[0].field, "resources[0].credential");
    assert!(
        errors[0]
            .message
            .contains("unknown service credential \"Web Tier Root\"")
    );
    assert_eq!(snapshot(&app.db).await, before);

    let id = uuid::Uuid::new_v4();
    portcullis::db::provisioning::create_credential(
        &app.db,
        &portcullis::db::provisioning::NewCredential {
            id,
            name: "web tier root",
            username: "root",
            sealed_secret: &app.secrets.seal(id, "not a key"),
        },
    )
    .await
    .unwrap();
    apply(&app.db, &seed).await.unwrap();
    let (provisioner, credential, host_key): (String, Option<uuid::Uuid>, Option<String>) =
        sqlx::query_as(
            "SELECT provisioner::text, credential_id, host_key FROM resources
             WHERE name = 'lnx-real-01'",
        )
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(provisioner, "linux_ssh");
    assert_eq!(credential, Some(id));
    assert_eq!(host_key.as_deref(), Some(key));
    let groups: Vec<String> =
        sqlx::query_scalar("SELECT target_groups FROM activities WHERE name = 'Linux break-glass'")
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(groups, ["sudo", "adm"]);

    // A provisioner nobody knows, or one without its credential: refused by line.
    let bad = parse(
        "[[resources]]\nname = \"x\"\nkind = \"server\"\nplatform = \"Linux\"\naddress = \"x.example\"\nprovisioner = \"telepathy\"\n\n[[activities]]\nname = \"y\"\nplatform = \"Linux\"\nprotocol = \"ssh\"\nlogin_account = \"own\"\ngroups = [\"Wheel\"]\n",
    )
    .unwrap_err();
    let fields: Vec<&str> = bad.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(
        fields,
        ["resources[0].provisioner", "activities[0].groups"],
        "{bad:?}"
    );
}
