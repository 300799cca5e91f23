//! Admin > Resources: the list, the form, delete or archive, and the CSV import.

use reqwest::StatusCode;

use crate::support::{Page, TestApp, spawn_demo_app};

pub const DEMO: &str = "portcullis-demo";

/// A demo app with carol (admin) signed in.
pub async fn admin_app() -> TestApp {
    let app = spawn_demo_app().await;
    app.login_with(&app.client, "carol", DEMO).await;
    app
}

pub async fn count(app: &TestApp, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(&app.db).await.unwrap()
}

pub async fn id_of(app: &TestApp, table: &str, name: &str) -> uuid::Uuid {
    sqlx::query_scalar(&format!("SELECT id FROM {table} WHERE name = $1"))
        .bind(name)
        .fetch_one(&app.db)
        .await
        .unwrap()
}

/// Follows a 303 and returns the flash texts of the page it leads to.
pub async fn flashes(app: &TestApp, page: &Page) -> Vec<String> {
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    app.get(page.location()).await.texts(".flash")
}

/// Posts a multipart form (with the CSRF token unless `token` is given) as a browser would.
pub async fn post_multipart(
    app: &TestApp,
    path: &str,
    token: Option<&str>,
    file: Option<(&str, &[u8])>,
    csv: &str,
) -> Page {
    let token = match token {
        Some(t) => t.to_owned(),
        None => app.csrf_with(&app.client).await,
    };
    let boundary = "----portcullis-test-boundary";
    let mut body = Vec::new();
    if !token.is_empty() {
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"csrf_token\"\r\n\r\n{token}\r\n").as_bytes(),
        );
    }
    let (filename, data) = file.unwrap_or(("", b""));
    body.extend_from_slice(
        format!("--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\nContent-Type: text/csv\r\n\r\n").as_bytes(),
    );
    body.extend_from_slice(data);
    body.extend_from_slice(
        format!("\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"csv\"\r\n\r\n{csv}\r\n--{boundary}--\r\n").as_bytes(),
    );
    let response = app
        .client
        .post(app.url(path))
        .header(
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(body)
        .send()
        .await
        .unwrap();
    Page {
        status: response.status(),
        headers: response.headers().clone(),
        body: response.text().await.unwrap(),
    }
}

fn resource<'a>(name: &'a str, address: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("name", name),
        ("kind", "server"),
        ("platform", "Linux"),
        ("address", address),
        ("port", "22"),
        ("description", "Test box"),
    ]
}

#[tokio::test]
async fn admins_create_a_resource_and_the_audit_log_records_it() {
    let app = admin_app().await;
    let page = app
        .post(
            "/admin/resources/new",
            &resource("lnx-db-09", "lnx-db-09.corp.example"),
        )
        .await;
    assert_eq!(flashes(&app, &page).await, ["Created lnx-db-09."]);
    let list = app.get("/admin/resources?q=lnx-db").await;
    assert_eq!(list.texts("#resources tbody td:first-child"), ["lnx-db-09"]);
    let audit = app.get("/admin/audit?kind=resource").await;
    assert_eq!(
        audit.texts("#audit tbody td:nth-child(2)"),
        ["carol"],
        "{}",
        audit.body
    );
    assert_eq!(audit.texts("#audit tbody td:nth-child(5)"), ["lnx-db-09"]);
}

#[tokio::test]
async fn bad_input_is_shown_at_its_field_and_kept_and_nothing_is_saved() {
    let app = admin_app().await;
    let before = count(&app, "SELECT count(*) FROM resources").await;
    let long = "x".repeat(201);
    type Case<'a> = (Vec<(&'a str, &'a str)>, &'a str, &'a str);
    let cases: Vec<Case> = vec![
        (resource("", "a.example"), "name", "Name is required."),
        (
            resource(&long, "a.example"),
            "name",
            "Name must be at most 200 characters.",
        ),
        (
            resource("GRAFANA", "a.example"),
            "name",
            "A resource named \"GRAFANA\" already exists (names are compared without regard to case).",
        ),
        (
            resource("new-one", "has space"),
            "address",
            "Address must be a DNS name or an IP address (letters, digits, '.', '-', '_', ':').",
        ),
    ];
    for (form, field, message) in cases {
        let page = app.post("/admin/resources/new", &form).await;
        assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY, "{field}");
        assert_eq!(page.texts(&format!("#{field}-error")), [message]);
        let html = page.html();
        let input = html
            .select(&scraper::Selector::parse(&format!("#{field}")).unwrap())
            .next()
            .unwrap();
        assert_eq!(input.value().attr("aria-invalid"), Some("true"));
        assert_eq!(
            input.value().attr("value"),
            form.iter().find(|(k, _)| *k == field).map(|(_, v)| *v)
        );
    }
    let mut bad_port = resource("new-one", "a.example");
    bad_port[4] = ("port", "99999");
    let page = app.post("/admin/resources/new", &bad_port).await;
    assert_eq!(
        page.texts("#port-error"),
        ["Port must be a whole number from 1 to 65535."]
    );
    assert_eq!(count(&app, "SELECT count(*) FROM resources").await, before);
    assert_eq!(count(&app, "SELECT count(*) FROM admin_audit").await, 0);
}

#[tokio::test]
async fn the_list_searches_filters_and_pages() {
    let app = admin_app().await;
    let page = app
        .get("/admin/resources?kind=database&platform=PostgreSQL")
        .await;
    assert_eq!(
        page.texts("#resources tbody td:first-child"),
        ["pg-db-01", "pg-db-02", "pg-db-03", "pg-db-04"]
    );
    sqlx::query(
        "INSERT INTO resources (id, name, kind, platform, address)
         SELECT gen_random_uuid(), 'bulk-' || lpad(n::text, 5, '0'), 'server', 'Linux', 'bulk.example'
         FROM generate_series(1, 20000) n",
    )
    .execute(&app.db)
    .await
    .unwrap();
    let page = app.get("/admin/resources?q=bulk&page=3").await;
    assert_eq!(page.status, StatusCode::OK);
    let names = page.texts("#resources tbody td:first-child");
    assert_eq!(names.len(), 50);
    assert_eq!(names[0], "bulk-00101");
    assert!(
        page.texts("nav.pager span")
            .contains(&"Page 3 of 400".to_owned())
    );
}

#[tokio::test]
async fn a_resource_a_policy_uses_cannot_be_deleted_and_the_message_says_which() {
    let app = admin_app().await;
    let id = id_of(&app, "resources", "Grafana").await;
    let page = app
        .post(&format!("/admin/resources/{id}/delete"), &[])
        .await;
    assert_eq!(
        flashes(&app, &page).await,
        [
            "Grafana cannot be deleted: it is used by access policies: Web consoles. Remove it from them first."
        ]
    );
    assert_eq!(
        count(
            &app,
            "SELECT count(*) FROM resources WHERE name = 'Grafana' AND archived_at IS NULL"
        )
        .await,
        1
    );
}

#[tokio::test]
async fn an_unused_resource_is_deleted_and_one_with_history_is_archived() {
    let app = admin_app().await;
    app.post("/admin/resources/new", &resource("spare", "spare.example"))
        .await;
    let spare = id_of(&app, "resources", "spare").await;
    let page = app
        .post(&format!("/admin/resources/{spare}/delete"), &[])
        .await;
    assert_eq!(flashes(&app, &page).await, ["Deleted spare."]);
    assert_eq!(
        count(&app, "SELECT count(*) FROM resources WHERE name = 'spare'").await,
        0
    );

    // A past session names a resource no policy uses any more: it is archived.
    let old = id_of(&app, "resources", "lnx-web-08").await;
    let alice: uuid::Uuid = sqlx::query_scalar("SELECT id FROM users WHERE username = 'alice'")
        .fetch_one(&app.db)
        .await
        .unwrap();
    let request = uuid::Uuid::now_v7();
    sqlx::query("INSERT INTO requests (id, requester_id, policy_name, profile_name, activity_name, protocol, login_mode, start_now, requested_start, duration_minutes, tier_count) VALUES ($1, $2, 'p', 'p', 'a', 'ssh', 'own', true, now() - interval '2 days', 60, 0)")
        .bind(request).bind(alice).execute(&app.db).await.unwrap();
    sqlx::query("INSERT INTO activity_sessions (id, request_id, requester_id, resource_id, resource_name, resource_address, activity_name, status, requested_start, ends_at) VALUES ($1, $2, $3, $4, 'lnx-web-08', 'x', 'a', 'completed', now() - interval '2 days', now() - interval '1 day')")
        .bind(uuid::Uuid::now_v7()).bind(request).bind(alice).bind(old).execute(&app.db).await.unwrap();
    sqlx::query("DELETE FROM policy_resources WHERE resource_id = $1")
        .bind(old)
        .execute(&app.db)
        .await
        .unwrap();
    let page = app
        .post(&format!("/admin/resources/{old}/delete"), &[])
        .await;
    assert!(flashes(&app, &page).await[0].starts_with("Archived lnx-web-08"));
    let list = app.get("/admin/resources?q=lnx-web-08").await;
    assert_eq!(
        list.texts("#resources tbody td.empty"),
        ["No resources match."]
    );
    let list = app.get("/admin/resources?q=lnx-web-08&archived=1").await;
    assert_eq!(list.texts("#resources tbody td:last-child"), ["Archived"]);
}

const HEADER: &str = "name,kind,platform,address,port,description\n";

#[tokio::test]
async fn an_import_previews_every_line_then_applies_all_of_it() {
    let app = admin_app().await;
    let csv = format!(
        "{HEADER}new-01,server,Linux,new-01.example,22,New\nGrafana,website,Web,grafana2.corp.example,443,Moved\nJenkins,website,Web,ci.corp.example,443,Jenkins web console\n"
    );
    let page = post_multipart(
        &app,
        "/admin/resources/import",
        None,
        Some(("r.csv", csv.as_bytes())),
        "",
    )
    .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert_eq!(
        page.texts("#preview tbody td:nth-child(3)"),
        ["Create", "Update", "Unchanged"]
    );
    assert_eq!(
        page.texts("#preview tbody td:nth-child(4)")[1],
        "Changes address, description."
    );
    assert_eq!(
        count(&app, "SELECT count(*) FROM resources WHERE name = 'new-01'").await,
        0
    );

    let token = page
        .html()
        .select(&scraper::Selector::parse("input[name=token]").unwrap())
        .next()
        .unwrap()
        .value()
        .attr("value")
        .unwrap()
        .to_owned();
    let applied = app
        .post("/admin/resources/import/apply", &[("token", &token)])
        .await;
    assert_eq!(
        flashes(&app, &applied).await,
        ["Imported the file: 1 created, 1 updated, 1 unchanged."]
    );
    assert_eq!(
        count(&app, "SELECT count(*) FROM resources WHERE name = 'new-01'").await,
        1
    );
    assert_eq!(
        count(
            &app,
            "SELECT count(*) FROM resources WHERE address = 'grafana2.corp.example'"
        )
        .await,
        1
    );
    assert_eq!(
        count(
            &app,
            "SELECT count(*) FROM admin_audit WHERE object_kind = 'resource'"
        )
        .await,
        2
    );

    // The same preview cannot be applied twice.
    let again = app
        .post("/admin/resources/import/apply", &[("token", &token)])
        .await;
    assert!(flashes(&app, &again).await[0].starts_with("This preview is no longer current"));
}

#[tokio::test]
async fn an_import_with_a_bad_line_refuses_it_with_its_number_and_applies_nothing() {
    let app = admin_app().await;
    let before = count(&app, "SELECT count(*) FROM resources").await;
    let csv = format!(
        "{HEADER}ok-01,server,Linux,ok.example,22,\nbad,printer,Linux,b.example,22,\nOK-01,server,Linux,ok.example,22,\nshort,server\n"
    );
    let page = post_multipart(&app, "/admin/resources/import", None, None, &csv).await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        page.texts("#preview tbody td:first-child"),
        ["2", "3", "4", "5"]
    );
    assert_eq!(
        page.texts("#preview tbody td:nth-child(3)"),
        ["Create", "Refuse", "Refuse", "Refuse"]
    );
    let details = page.texts("#preview tbody td:nth-child(4)");
    assert_eq!(
        details[1],
        "Kind must be server, database, website or domain."
    );
    assert!(details[2].contains("already on line 2"), "{details:?}");
    assert_eq!(details[3], "has 2 field(s), but the header has 6.");
    assert!(page.texts("input[name=token]").is_empty());
    // What was pasted is still in the box.
    assert_eq!(
        page.texts("#csv"),
        [csv.split_whitespace().collect::<Vec<_>>().join(" ")]
    );
    assert_eq!(count(&app, "SELECT count(*) FROM resources").await, before);
}

#[tokio::test]
async fn files_that_are_not_csv_get_a_clear_message() {
    let app = admin_app().await;
    let cases: [(&[u8], &str); 4] = [
        (
            b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR",
            "This is not a CSV file: it contains binary data.",
        ),
        (
            b"name,kind\n\xff\xfe\xfd",
            "The file is not UTF-8 text. Save it as \"CSV UTF-8\" and try again.",
        ),
        (
            b"host;ip\na;b\n",
            "Line 1: unknown column \"host;ip\". The header must name the columns name, kind, platform, address, port, description, and may add provisioner, credential, host_key, database, command.",
        ),
        (b"", "Choose a CSV file or paste its text."),
    ];
    for (data, message) in cases {
        let file = if data.is_empty() {
            None
        } else {
            Some(("x.csv", data))
        };
        let page = post_multipart(&app, "/admin/resources/import", None, file, "").await;
        assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
        let got = page.texts("#file-error");
        let expected = if data.is_empty() {
            "The file is empty."
        } else {
            message
        };
        assert_eq!(got, [expected]);
    }
}

#[tokio::test]
async fn a_ten_megabyte_upload_gets_a_413_page_and_changes_nothing() {
    let app = admin_app().await;
    let mut big = HEADER.as_bytes().to_vec();
    while big.len() < 10 * 1024 * 1024 {
        big.extend_from_slice(
            b"big-resource,server,Linux,big.example,22,padding padding padding\n",
        );
    }
    let page = post_multipart(
        &app,
        "/admin/resources/import",
        None,
        Some(("big.csv", &big)),
        "",
    )
    .await;
    assert_eq!(page.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(page.texts("h1"), ["Too large"]);
    assert_eq!(
        count(
            &app,
            "SELECT count(*) FROM resources WHERE name = 'big-resource'"
        )
        .await,
        0
    );
}

#[tokio::test]
async fn a_multipart_upload_without_the_csrf_token_is_refused() {
    let app = admin_app().await;
    let csv = format!("{HEADER}x,server,Linux,x.example,22,\n");
    for token in ["", "0000"] {
        let page = post_multipart(
            &app,
            "/admin/resources/import",
            Some(token),
            Some(("r.csv", csv.as_bytes())),
            "",
        )
        .await;
        assert_eq!(page.status, StatusCode::FORBIDDEN);
    }
}

const HOST_KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIlNyAh1Ifr+mVdkn4LPWYxI8b4jS2G3k4ecJobMkAUJ";

/// The stored provisioner, credential name, host key, database and command of `name`.
async fn access_of(
    app: &TestApp,
    name: &str,
) -> (
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
) {
    sqlx::query_as(
        "SELECT r.provisioner::text, c.name, r.host_key, r.database_name, r.provisioner_command
         FROM resources r LEFT JOIN service_credentials c ON c.id = r.credential_id
         WHERE r.name = $1",
    )
    .bind(name)
    .fetch_one(&app.db)
    .await
    .unwrap()
}

#[tokio::test]
async fn an_import_sets_provisioners_with_credentials_by_name() {
    use crate::admin_credentials::{KEY, create_credential_of};
    let app = admin_app().await;
    create_credential_of(&app, "ssh_key", "Web root", "root", KEY).await;
    create_credential_of(&app, "password", "dba", "postgres", "s3cret-pass").await;
    let csv = format!(
        "name,kind,platform,address,port,description,provisioner,credential,host_key,database,command\n\
         lnx-new-01,server,Linux,10.0.0.5,22,,linux_ssh,web ROOT,127.0.0.1 {HOST_KEY},,\n\
         pg-new-01,database,PostgreSQL,10.0.0.6,5432,,postgresql,dba,,app_db,\n\
         ad-new-01,domain,Windows,ad.example,,,command,,,,active-directory\n\
         lnx-web-01,server,Linux,lnx-web-01.corp.example,22,Web tier,linux_ssh,Web root,{HOST_KEY},,\n"
    );
    let page = post_multipart(&app, "/admin/resources/import", None, None, &csv).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert_eq!(
        page.texts("#preview tbody td:nth-child(3)"),
        ["Create", "Create", "Create", "Update"]
    );
    let details = page.texts("#preview tbody td:nth-child(4)");
    assert!(
        details[3].contains("provisioner, credential, host key"),
        "{details:?}"
    );
    let token = page
        .html()
        .select(&scraper::Selector::parse("input[name=token]").unwrap())
        .next()
        .unwrap()
        .value()
        .attr("value")
        .unwrap()
        .to_owned();
    let applied = app
        .post("/admin/resources/import/apply", &[("token", &token)])
        .await;
    assert_eq!(
        flashes(&app, &applied).await,
        ["Imported the file: 3 created, 1 updated, 0 unchanged."]
    );
    let key = Some(HOST_KEY.to_owned());
    assert_eq!(
        access_of(&app, "lnx-new-01").await,
        (
            "linux_ssh".into(),
            Some("Web root".into()),
            key.clone(),
            None,
            None
        )
    );
    assert_eq!(
        access_of(&app, "pg-new-01").await,
        (
            "postgresql".into(),
            Some("dba".into()),
            None,
            Some("app_db".into()),
            None
        )
    );
    assert_eq!(
        access_of(&app, "ad-new-01").await,
        (
            "command".into(),
            None,
            None,
            None,
            Some("active-directory".into())
        )
    );
    assert_eq!(
        access_of(&app, "lnx-web-01").await,
        (
            "linux_ssh".into(),
            Some("Web root".into()),
            key.clone(),
            None,
            None
        )
    );

    // A file without the access columns leaves how access is granted as it is.
    let plain = format!("{HEADER}lnx-new-01,server,Linux,10.0.0.7,22,\n");
    let page = post_multipart(&app, "/admin/resources/import", None, None, &plain).await;
    assert_eq!(
        page.texts("#preview tbody td:nth-child(4)"),
        ["Changes address."]
    );
    let token = page
        .html()
        .select(&scraper::Selector::parse("input[name=token]").unwrap())
        .next()
        .unwrap()
        .value()
        .attr("value")
        .unwrap()
        .to_owned();
    app.post("/admin/resources/import/apply", &[("token", &token)])
        .await;
    assert_eq!(
        access_of(&app, "lnx-new-01").await,
        ("linux_ssh".into(), Some("Web root".into()), key, None, None)
    );
}

#[tokio::test]
async fn an_import_with_bad_access_columns_names_each_line_and_stores_nothing() {
    use crate::admin_credentials::{KEY, create_credential_of};
    let app = admin_app().await;
    create_credential_of(&app, "password", "dba", "postgres", "s3cret-pass").await;
    create_credential_of(&app, "ssh_key", "Web root", "root", KEY).await;
    let before = count(&app, "SELECT count(*) FROM resources").await;
    let audit = count(&app, "SELECT count(*) FROM admin_audit").await;
    let csv = format!(
        "name,kind,platform,address,provisioner,credential,host_key,database,command\n\
         ok-01,server,Linux,ok.example,linux_ssh,Web root,{HOST_KEY},,\n\
         a,server,Linux,a.example,linux_ssh,nobody,{HOST_KEY},,\n\
         b,server,Linux,b.example,linux_ssh,dba,{HOST_KEY},,\n\
         c,database,PostgreSQL,c.example,postgresql,dba,{HOST_KEY},,\n\
         d,server,Linux,d.example,linux_ssh,Web root,,,\n\
         e,server,Linux,e.example,telepathy,,,,\n\
         f,database,PostgreSQL,f.example,postgresql,dba,,1bad;db,\n\
         g,domain,Windows,g.example,command,,,,Bad Name\n"
    );
    let page = post_multipart(&app, "/admin/resources/import", None, None, &csv).await;
    assert_eq!(
        page.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        page.body
    );
    assert_eq!(
        page.texts("#preview tbody td:first-child"),
        ["2", "3", "4", "5", "6", "7", "8", "9"]
    );
    assert_eq!(
        page.texts("#preview tbody td:nth-child(3)"),
        [
            "Create", "Refuse", "Refuse", "Refuse", "Refuse", "Refuse", "Refuse", "Refuse"
        ]
    );
    let details = page.texts("#preview tbody td:nth-child(4)");
    assert_eq!(
        details[1],
        "No service credential is named \"nobody\": create it on Admin > Service credentials first."
    );
    assert!(details[2].contains("password"), "{details:?}");
    assert_eq!(
        details[3],
        "The host_key column is for the linux_ssh provisioner only; leave it empty for postgresql."
    );
    assert!(details[4].starts_with("The linux_ssh provisioner needs the target's host key"));
    assert!(details[5].starts_with("The provisioner must be one of simulated, linux_ssh"));
    assert!(details[6].starts_with("A database name starts with"));
    assert!(details[7].starts_with("A command name is lower-case"));
    assert!(page.texts("input[name=token]").is_empty());
    assert_eq!(count(&app, "SELECT count(*) FROM resources").await, before);
    assert_eq!(count(&app, "SELECT count(*) FROM admin_audit").await, audit);

    // An access column without the provisioner column: the header is refused.
    let page = post_multipart(
        &app,
        "/admin/resources/import",
        None,
        None,
        "name,kind,platform,address,host_key\nx,server,Linux,x.example,\n",
    )
    .await;
    assert_eq!(
        page.texts("#file-error"),
        ["Line 1: the column \"host_key\" needs the column \"provisioner\" too."]
    );
}
