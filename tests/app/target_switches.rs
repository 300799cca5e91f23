//! The switches the gateway and the Lock obey, on the admin forms and in seed files
//! (activities: file transfer, Lock removes the access on the target; profiles: record what
//! the user types), and the provisioner fields of seed files (postgresql and command
//! resources, the credential's kind), with line-numbered errors and nothing stored on error.

use reqwest::StatusCode;
use uuid::Uuid;

use crate::admin_credentials::{KEY, activity_form, create_credential, create_credential_of};
use crate::admin_policies::profile;
use crate::admin_resources::{admin_app, flashes, id_of};
use crate::seed::snapshot;
use crate::support::TestApp;
use portcullis::domain::seed::parse;
use portcullis::seeding::{ApplyError, apply};

async fn switches(app: &TestApp, id: Uuid) -> (bool, bool) {
    sqlx::query_as("SELECT file_transfer, revoke_on_lock FROM activities WHERE id = $1")
        .bind(id)
        .fetch_one(&app.db)
        .await
        .unwrap()
}

fn checked(page: &crate::support::Page, id: &str) -> bool {
    page.html()
        .select(&scraper::Selector::parse(&format!("#{id}")).unwrap())
        .next()
        .is_some_and(|e| e.value().attr("checked").is_some())
}

async fn last_audit(app: &TestApp, kind: &str) -> String {
    sqlx::query_scalar(
        "SELECT after::text FROM admin_audit WHERE object_kind = $1 ORDER BY id DESC LIMIT 1",
    )
    .bind(kind)
    .fetch_one(&app.db)
    .await
    .unwrap()
}

#[tokio::test]
async fn the_activity_form_saves_shows_and_audits_its_two_switches() {
    let app = admin_app().await;
    let (id, fields) = activity_form(&app, "").await;
    assert_eq!(switches(&app, id).await, (false, false), "off by default");
    let edit = app.get(&format!("/admin/activities/{id}")).await;
    assert!(
        edit.body
            .contains("Allow file transfer (scp/sftp) through the gateway")
    );
    assert!(edit.body.contains("Lock removes the access on the target"));
    assert!(!checked(&edit, "file_transfer") && !checked(&edit, "revoke_on_lock"));

    let mut form: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    form.push(("file_transfer", "on"));
    form.push(("revoke_on_lock", "on"));
    let page = app.post(&format!("/admin/activities/{id}"), &form).await;
    assert_eq!(flashes(&app, &page).await, ["Saved Linux break-glass."]);
    assert_eq!(switches(&app, id).await, (true, true));
    let edit = app.get(&format!("/admin/activities/{id}")).await;
    assert!(checked(&edit, "file_transfer") && checked(&edit, "revoke_on_lock"));
    let audit = last_audit(&app, "activity").await;
    assert!(audit.contains("\"file_transfer\": true"), "{audit}");
    assert!(audit.contains("\"revoke_on_lock\": true"), "{audit}");

    // A form with a problem keeps what was ticked and saves nothing.
    form.retain(|(k, _)| *k != "file_transfer" && *k != "name");
    form.push(("name", ""));
    let page = app.post(&format!("/admin/activities/{id}"), &form).await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(!checked(&page, "file_transfer") && checked(&page, "revoke_on_lock"));
    assert_eq!(switches(&app, id).await, (true, true));

    // Unticked: off again.
    let (_, fields) = activity_form(&app, "").await;
    let form: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    app.post(&format!("/admin/activities/{id}"), &form).await;
    assert_eq!(switches(&app, id).await, (false, false));
}

#[tokio::test]
async fn the_profile_form_saves_shows_and_audits_record_input() {
    let app = admin_app().await;
    let page = app
        .post(
            "/admin/profiles/new",
            &profile("Recorded", &[("record_input", "on")]),
        )
        .await;
    assert_eq!(flashes(&app, &page).await, ["Created Recorded."]);
    let id = id_of(&app, "connection_profiles", "Recorded").await;
    let on: bool = sqlx::query_scalar("SELECT record_input FROM connection_profiles WHERE id = $1")
        .bind(id)
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert!(on);
    let edit = app.get(&format!("/admin/profiles/{id}")).await;
    assert!(edit.body.contains("Record what the user types"));
    assert!(checked(&edit, "record_input"));
    assert!(
        last_audit(&app, "profile")
            .await
            .contains("\"record_input\": true")
    );

    let page = app
        .post(&format!("/admin/profiles/{id}"), &profile("Recorded", &[]))
        .await;
    assert_eq!(flashes(&app, &page).await, ["Saved Recorded."]);
    let on: bool = sqlx::query_scalar("SELECT record_input FROM connection_profiles WHERE id = $1")
        .bind(id)
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert!(!on, "unticked is off");
}

#[tokio::test]
async fn a_linux_resource_refuses_a_password_credential_on_its_form() {
    let app = admin_app().await;
    let password = create_credential_of(&app, "password", "dba", "postgres", "S3cret-pass").await;
    let resource = id_of(&app, "resources", "lnx-web-01").await;
    let credential = password.to_string();
    let page = app
        .post(
            &format!("/admin/resources/{resource}"),
            &[
                ("name", "lnx-web-01"),
                ("kind", "server"),
                ("platform", "Linux"),
                ("address", "lnx-web-01.corp.example"),
                ("port", "22"),
                ("description", ""),
                ("provisioner", "linux_ssh"),
                ("credential", &credential),
                (
                    "host_key",
                    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIlNyAh1Ifr+mVdkn4LPWYxI8b4jS2G3k4ecJobMkAUJ",
                ),
                ("go", "save"),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        page.texts("#credential-error"),
        [
            "The Linux over SSH provisioner logs in with an SSH private key, and this service credential holds a password: choose a credential of that kind."
        ]
    );
    let stored: String =
        sqlx::query_scalar("SELECT provisioner::text FROM resources WHERE id = $1")
            .bind(resource)
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(stored, "simulated");
}

const SEEDED: &str = r#"
[[resources]]
name = "pg-real-01"
kind = "database"
platform = "PostgreSQL"
address = "pg.example"
port = 5432
provisioner = "postgresql"
credential = "DBA"
database = "app"

[[resources]]
name = "ad-01"
kind = "server"
platform = "Windows"
address = "ad.example"
provisioner = "command"
command = "active-directory"

[[activities]]
name = "Linux break-glass"
platform = "Linux"
protocol = "ssh"
login_account = "ephemeral"
login_template = "pc-{username}-{session}"
file_transfer = true
revoke_on_lock = true

[[profiles]]
name = "Recorded"
max_duration_minutes = 60
record_input = true
"#;

/// A resource's name, provisioner, database, command and whether it has a credential.
type SeededResource = (String, String, Option<String>, Option<String>, bool);

#[tokio::test]
async fn a_seed_describes_postgresql_and_command_resources_and_the_switches() {
    let app = admin_app().await;
    create_credential_of(&app, "password", "dba", "portcullis", "S3cret-pass").await;
    let seed = parse(SEEDED).unwrap();
    apply(&app.db, &seed).await.unwrap();
    let rows: Vec<SeededResource> = sqlx::query_as(
        "SELECT name, provisioner::text, database_name, provisioner_command,
                credential_id IS NOT NULL
         FROM resources WHERE name IN ('pg-real-01', 'ad-01') ORDER BY name",
    )
    .fetch_all(&app.db)
    .await
    .unwrap();
    assert_eq!(
        rows,
        [
            (
                "ad-01".into(),
                "command".into(),
                None,
                Some("active-directory".into()),
                false
            ),
            (
                "pg-real-01".into(),
                "postgresql".into(),
                Some("app".into()),
                None,
                true
            ),
        ]
    );
    let id = id_of(&app, "activities", "Linux break-glass").await;
    assert_eq!(switches(&app, id).await, (true, true));
    let recorded: bool =
        sqlx::query_scalar("SELECT record_input FROM connection_profiles WHERE name = 'Recorded'")
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert!(recorded);
    // Applied again: nothing changes.
    let before = snapshot(&app.db).await;
    apply(&app.db, &seed).await.unwrap();
    assert_eq!(snapshot(&app.db).await, before);
}

#[tokio::test]
async fn a_seed_with_misplaced_provisioner_fields_or_the_wrong_credential_kind_stores_nothing() {
    let app = admin_app().await;
    // Fields another provisioner uses, a missing command, a bad database name: refused
    // before the database is read, each with its line.
    let text = r#"
[[resources]]
name = "lnx-x"
kind = "server"
platform = "Linux"
address = "x.example"
provisioner = "linux_ssh"
credential = "root"
host_key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIlNyAh1Ifr+mVdkn4LPWYxI8b4jS2G3k4ecJobMkAUJ"
database = "app"

[[resources]]
name = "ad-x"
kind = "server"
platform = "Windows"
address = "ad.example"
provisioner = "command"
credential = "root"

[[resources]]
name = "pg-x"
kind = "database"
platform = "PostgreSQL"
address = "pg.example"
provisioner = "postgresql"
credential = "dba"
database = "app; drop"
"#;
    let errors = parse(text).unwrap_err();
    let found: Vec<(usize, &str)> = errors.iter().map(|e| (e.line, e.field.as_str())).collect();
    assert_eq!(
        found,
        [
            (2, "resources[0].database"),
            (12, "resources[1].credential"),
            (12, "resources[1].command"),
            (20, "resources[2].database"),
        ],
        "{errors:?}"
    );
    assert!(
        errors[0]
            .message
            .contains("used by the postgresql provisioner only")
    );
    assert!(
        errors[2]
            .message
            .contains("command from the provisioners file is required")
    );

    // A credential of the wrong kind is found when the names are resolved: nothing stored.
    create_credential(&app, "dba", "portcullis", KEY).await;
    let before = snapshot(&app.db).await;
    let seed = parse(SEEDED).unwrap();
    let Err(ApplyError::Invalid(errors)) = apply(&app.db, &seed).await else {
        panic!("an SSH key cannot serve a PostgreSQL resource");
    };
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(
        (errors[0].line, errors[0].field.as_str()),
        (2, "resources[0].credential")
    );
    assert!(
        errors[0].message.contains(
            "logs in with a password, and this service credential holds an SSH private key"
        ),
        "{}",
        errors[0].message
    );
    assert_eq!(snapshot(&app.db).await, before);
}
