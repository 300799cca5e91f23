//! Admin > Service credentials: the secret is sealed, never shown again (not even on a form
//! shown again with a problem) and never in the audit log; delete is refused while a resource
//! uses it. Also the activity form's target groups.

use reqwest::StatusCode;
use uuid::Uuid;

use crate::admin_resources::{admin_app, count, flashes, id_of};
use crate::support::TestApp;

/// A private key's shape (not a working key: these tests never log in with it).
pub const KEY: &str = "-----BEGIN OPENSSH PRIVATE KEY-----
b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW
QyNTUxOQAAACCJTcgIdSH6/plXZJ+Cz1mMSPG+I0tht5OHnCaGzJAFCQAAAJDyXnE1
-----END OPENSSH PRIVATE KEY-----
";

/// A line of the key's body, to look for in pages and the audit log.
const KEY_BODY: &str = "QyNTUxOQAAACCJTcgIdSH6";

/// Creates an SSH key credential through its page; its id.
pub async fn create_credential(app: &TestApp, name: &str, user: &str, secret: &str) -> Uuid {
    create_credential_of(app, "ssh_key", name, user, secret).await
}

/// Creates a credential of `kind` through its page; its id.
pub async fn create_credential_of(
    app: &TestApp,
    kind: &str,
    name: &str,
    user: &str,
    secret: &str,
) -> Uuid {
    let page = app
        .post(
            "/admin/credentials/new",
            &[
                ("name", name),
                ("username", user),
                ("kind", kind),
                ("secret", secret),
            ],
        )
        .await;
    assert_eq!(
        flashes(app, &page).await,
        [format!("Created {name}.")],
        "{}",
        page.body
    );
    id_of(app, "service_credentials", name).await
}

async fn audit_text(app: &TestApp) -> String {
    sqlx::query_scalar(
        "SELECT coalesce(string_agg(coalesce(before::text, '') || coalesce(after::text, ''), '|'), '')
         FROM admin_audit WHERE object_kind = 'service_credential'",
    )
    .fetch_one(&app.db)
    .await
    .unwrap()
}

#[tokio::test]
async fn a_credential_saved_on_its_page_is_sealed_never_shown_again_and_audited_without_it() {
    let app = admin_app().await;
    let id = create_credential(&app, "web tier root", "root", KEY).await;

    let sealed: Vec<u8> =
        sqlx::query_scalar("SELECT secret_ciphertext FROM service_credentials WHERE id = $1")
            .bind(id)
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(app.secrets.open(id, &sealed).unwrap(), KEY);
    let list = app.get("/admin/credentials").await;
    assert!(
        list.texts("#credentials td")
            .contains(&"web tier root".to_owned())
    );
    assert!(
        list.texts("#credentials td")
            .contains(&"0 resource(s)".to_owned())
    );
    let edit = app.get(&format!("/admin/credentials/{id}")).await;
    assert_eq!(edit.status, StatusCode::OK);
    assert!(
        !edit.body.contains(KEY_BODY),
        "the key is never shown again"
    );
    assert_eq!(edit.texts("#secret"), [""]);

    // An edit that leaves the secret empty keeps it; the audit log says whether it changed.
    let page = app
        .post(
            &format!("/admin/credentials/{id}"),
            &[
                ("name", "web tier root"),
                ("username", "portcullis"),
                ("kind", "ssh_key"),
                ("secret", ""),
            ],
        )
        .await;
    assert_eq!(flashes(&app, &page).await, ["Saved web tier root."]);
    let kept: Vec<u8> =
        sqlx::query_scalar("SELECT secret_ciphertext FROM service_credentials WHERE id = $1")
            .bind(id)
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(kept, sealed);
    let audit = audit_text(&app).await;
    assert!(audit.contains("\"secret_replaced\": false"), "{audit}");
    assert!(audit.contains("portcullis"), "{audit}");
    assert!(!audit.contains("secret_ciphertext"), "{audit}");
    assert!(!audit.contains(KEY_BODY), "{audit}");
    let page = app.get("/admin/audit?kind=service_credential").await;
    assert!(!page.body.contains(KEY_BODY));
    assert_eq!(
        count(
            &app,
            "SELECT count(*) FROM admin_audit WHERE object_kind = 'service_credential'"
        )
        .await,
        2
    );
}

#[tokio::test]
async fn a_bad_key_is_refused_with_a_message_and_a_good_one_is_never_echoed_back() {
    let app = admin_app().await;
    let public = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIlNyAh1Ifr+mVdkn4LPWYxI8b4jS2G3k4ecJobMkAUJ";
    let page = app
        .post(
            "/admin/credentials/new",
            &[
                ("name", "web tier root"),
                ("username", "root"),
                ("kind", "ssh_key"),
                ("secret", public),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        page.texts("#secret-error")[0].contains("does not look like a private key"),
        "{:?}",
        page.texts("#secret-error")
    );
    assert!(!page.body.contains("AAAAC3NzaC1lZDI1NTE5AAAAIIlN"));

    // A good key with another field wrong: the form comes back without the key.
    let page = app
        .post(
            "/admin/credentials/new",
            &[
                ("name", "web tier root"),
                ("username", "Root;id"),
                ("kind", "ssh_key"),
                ("secret", KEY),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(!page.body.contains(KEY_BODY), "never echoed back");
    assert!(page.texts("#secret-error")[0].contains("paste the key again"));
    assert!(!page.texts("#username-error").is_empty());
    assert_eq!(
        count(&app, "SELECT count(*) FROM service_credentials").await,
        0
    );
    assert_eq!(
        count(
            &app,
            "SELECT count(*) FROM admin_audit WHERE object_kind = 'service_credential'"
        )
        .await,
        0
    );
}

#[tokio::test]
async fn a_credential_a_resource_uses_cannot_be_deleted() {
    let app = admin_app().await;
    let id = create_credential(&app, "web tier root", "root", KEY).await;
    sqlx::query(
        "UPDATE resources SET provisioner = 'linux_ssh', credential_id = $1,
                host_key = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIlNyAh1Ifr+mVdkn4LPWYxI8b4jS2G3k4ecJobMkAUJ'
         WHERE name = 'lnx-web-01'",
    )
    .bind(id)
    .execute(&app.db)
    .await
    .unwrap();
    let list = app.get("/admin/credentials").await;
    assert!(
        list.texts("#credentials td")
            .contains(&"1 resource(s)".to_owned())
    );

    let page = app
        .post(&format!("/admin/credentials/{id}/delete"), &[])
        .await;
    assert_eq!(page.location(), format!("/admin/credentials/{id}"));
    assert_eq!(
        flashes(&app, &page).await,
        [
            "web tier root cannot be deleted: it is used by resources: lnx-web-01. Give them another credential first."
        ]
    );
    assert_eq!(
        count(&app, "SELECT count(*) FROM service_credentials").await,
        1
    );

    sqlx::query(
        "UPDATE resources SET provisioner = 'simulated', credential_id = NULL WHERE name = 'lnx-web-01'",
    )
    .execute(&app.db)
    .await
    .unwrap();
    let page = app
        .post(&format!("/admin/credentials/{id}/delete"), &[])
        .await;
    assert_eq!(flashes(&app, &page).await, ["Deleted web tier root."]);
    assert_eq!(
        count(&app, "SELECT count(*) FROM service_credentials").await,
        0
    );
    assert!(!audit_text(&app).await.contains(KEY_BODY));
}

/// The break-glass activity's form fields as stored, with `groups` typed in.
pub(crate) async fn activity_form(
    app: &TestApp,
    groups: &str,
) -> (Uuid, Vec<(&'static str, String)>) {
    let (id, description, platform, protocol, mode, template): (
        Uuid,
        String,
        String,
        String,
        String,
        Option<String>,
    ) = sqlx::query_as(
        "SELECT id, description, platform, protocol::text, login_mode::text, login_template
         FROM activities WHERE name = 'Linux break-glass'",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    (
        id,
        vec![
            ("name", "Linux break-glass".to_owned()),
            ("description", description),
            ("platform", platform),
            ("protocol", protocol),
            ("login_mode", mode),
            ("login_template", template.unwrap_or_default()),
            ("target_groups", groups.to_owned()),
        ],
    )
}

async fn target_groups(app: &TestApp, id: Uuid) -> Vec<String> {
    sqlx::query_scalar("SELECT target_groups FROM activities WHERE id = $1")
        .bind(id)
        .fetch_one(&app.db)
        .await
        .unwrap()
}

#[tokio::test]
async fn activity_target_groups_are_saved_and_shown_and_bad_ones_refused() {
    let app = admin_app().await;
    let (id, fields) = activity_form(&app, "sudo, adm  sudo").await;
    let form: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let page = app.post(&format!("/admin/activities/{id}"), &form).await;
    assert_eq!(flashes(&app, &page).await, ["Saved Linux break-glass."]);
    assert_eq!(target_groups(&app, id).await, ["sudo", "adm"]);
    let edit = app.get(&format!("/admin/activities/{id}")).await;
    let shown = edit
        .html()
        .select(&scraper::Selector::parse("#target_groups").unwrap())
        .next()
        .and_then(|e| e.value().attr("value").map(str::to_owned));
    assert_eq!(shown.as_deref(), Some("sudo, adm"));

    for bad in [
        "Wheel",
        "sudo;id",
        &(0..17)
            .map(|i| format!("g{i}"))
            .collect::<Vec<_>>()
            .join(","),
    ] {
        let (_, fields) = activity_form(&app, bad).await;
        let form: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let page = app.post(&format!("/admin/activities/{id}"), &form).await;
        assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
        assert_eq!(page.texts("#target_groups-error").len(), 1, "{bad}");
        assert_eq!(target_groups(&app, id).await, ["sudo", "adm"], "{bad}");
    }
}

/// The resource form's fields for `provisioner` on pg-db-01, with `extra` set.
fn resource_form(provisioner: &str, extra: &[(&'static str, &str)]) -> Vec<(&'static str, String)> {
    let mut form = vec![
        ("name", "pg-db-01".to_owned()),
        ("kind", "database".to_owned()),
        ("platform", "PostgreSQL".to_owned()),
        ("address", "pg-db-01.corp.example".to_owned()),
        ("port", "5432".to_owned()),
        ("description", String::new()),
        ("provisioner", provisioner.to_owned()),
        ("go", "save".to_owned()),
    ];
    for (k, v) in extra {
        form.push((k, (*v).to_owned()));
    }
    form
}

async fn stored_access(
    app: &TestApp,
    id: Uuid,
) -> (
    String,
    Option<Uuid>,
    Option<String>,
    Option<String>,
    Option<String>,
) {
    sqlx::query_as(
        "SELECT provisioner::text, credential_id, host_key, database_name, provisioner_command
         FROM resources WHERE id = $1",
    )
    .bind(id)
    .fetch_one(&app.db)
    .await
    .unwrap()
}

#[tokio::test]
async fn the_resource_form_sets_up_postgresql_and_command_targets_and_drops_what_they_do_not_use() {
    let app = admin_app().await;
    let ssh_key = create_credential(&app, "web root", "portcullis", KEY)
        .await
        .to_string();
    let credential = create_credential_of(&app, "password", "dba", "portcullis", "S3cret-pass")
        .await
        .to_string();
    let resource = id_of(&app, "resources", "pg-db-01").await;
    let path = format!("/admin/resources/{resource}");
    let post = |form: Vec<(&'static str, String)>| {
        let app = &app;
        let path = path.clone();
        async move {
            let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
            app.post(&path, &form).await
        }
    };

    // A PostgreSQL login role: a credential is needed, a bad database name is refused.
    let page = post(resource_form(
        "postgresql",
        &[("database_name", "app; drop")],
    ))
    .await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(page.texts("#credential-error").len(), 1);
    assert_eq!(page.texts("#database_name-error").len(), 1);
    assert_eq!(stored_access(&app, resource).await.0, "simulated");
    // An SSH key cannot log in to PostgreSQL: the credential's kind is checked.
    let page = post(resource_form(
        "postgresql",
        &[("credential", &ssh_key), ("database_name", "app")],
    ))
    .await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        page.texts("#credential-error"),
        [
            "The PostgreSQL login role provisioner logs in with a password, and this service credential holds an SSH private key: choose a credential of that kind."
        ]
    );
    assert_eq!(stored_access(&app, resource).await.0, "simulated");
    let page = post(resource_form(
        "postgresql",
        &[
            ("credential", &credential),
            ("database_name", "app"),
            ("host_key", "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG"),
            ("command", "left-over"),
        ],
    ))
    .await;
    assert_eq!(
        flashes(&app, &page).await,
        ["Saved pg-db-01."],
        "{}",
        page.body
    );
    assert_eq!(
        stored_access(&app, resource).await,
        (
            "postgresql".to_owned(),
            Some(Uuid::parse_str(&credential).unwrap()),
            None,
            Some("app".to_owned()),
            None
        ),
        "what PostgreSQL does not use is not kept"
    );
    let shown = app.get(&path).await;
    assert_eq!(
        shown
            .html()
            .select(&scraper::Selector::parse("#database_name").unwrap())
            .next()
            .and_then(|e| e.value().attr("value").map(str::to_owned)),
        Some("app".to_owned())
    );

    // A command: its name is required and checked; the credential is dropped.
    let page = post(resource_form("command", &[("credential", &credential)])).await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(page.texts("#command-error").len(), 1);
    let page = post(resource_form("command", &[("command", "../../bin/sh")])).await;
    assert_eq!(page.texts("#command-error").len(), 1);
    assert_eq!(stored_access(&app, resource).await.0, "postgresql");
    let page = post(resource_form(
        "command",
        &[("command", "active-directory"), ("credential", &credential)],
    ))
    .await;
    assert_eq!(
        flashes(&app, &page).await,
        ["Saved pg-db-01."],
        "{}",
        page.body
    );
    assert_eq!(
        stored_access(&app, resource).await,
        (
            "command".to_owned(),
            None,
            None,
            None,
            Some("active-directory".to_owned())
        )
    );
}
