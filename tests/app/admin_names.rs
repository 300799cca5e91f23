//! Names administrators type: invisible and direction-changing characters are refused at
//! their field, look-alikes of an existing name are warned about (and saved when confirmed),
//! and login account templates make only names a target accepts, checked at save and again
//! at provisioning.

use reqwest::StatusCode;

use crate::admin_resources::{admin_app, count, flashes, post_multipart};
use crate::wizard::{Request, request};

fn resource(name: &str) -> Vec<(&str, &str)> {
    vec![
        ("name", name),
        ("kind", "server"),
        ("platform", "Linux"),
        ("address", "new.example"),
        ("port", "22"),
        ("description", "Test box"),
    ]
}

#[tokio::test]
async fn invisible_and_direction_changing_characters_are_refused_in_names() {
    let app = admin_app().await;
    let before = count(&app, "SELECT count(*) FROM resources").await;
    let page = app
        .post("/admin/resources/new", &resource("lnx-web\u{200B}-09"))
        .await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        page.texts("#name-error"),
        ["Name must not contain invisible or direction-changing characters (U+200B)."]
    );
    assert_eq!(count(&app, "SELECT count(*) FROM resources").await, before);

    let page = app
        .post(
            "/admin/groups/new",
            &[("name", "ops\u{202E}nimda"), ("description", "")],
        )
        .await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        page.texts("#name-error"),
        ["Name must not contain invisible or direction-changing characters (U+202E)."]
    );

    let page = app
        .post(
            "/admin/users/new",
            &[
                ("username", "frank"),
                ("display_name", "Frank\u{2066} Foster"),
                ("role", "user"),
                ("time_zone", "UTC"),
                ("password", "violet-harbour-tractor-91"),
                ("go", "save"),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        page.texts("#display_name-error"),
        [
            "A display name is 1 to 128 characters, without control, invisible or direction-changing characters."
        ]
    );
    assert_eq!(
        count(&app, "SELECT count(*) FROM users WHERE username = 'frank'").await,
        0
    );
}

#[tokio::test]
async fn a_csv_line_with_an_invisible_character_is_refused_with_its_number() {
    let app = admin_app().await;
    let before = count(&app, "SELECT count(*) FROM resources").await;
    let csv = "name,kind,platform,address,port,description\n\
               ok-01,server,Linux,ok.example,22,\n\
               lnx-web-01\u{FEFF},server,Linux,b.example,22,\n";
    let page = post_multipart(
        &app,
        "/admin/resources/import",
        None,
        Some(("r.csv", csv.as_bytes())),
        "",
    )
    .await;
    assert_eq!(
        page.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        page.body
    );
    assert_eq!(page.texts("#preview tbody td:first-child"), ["2", "3"]);
    assert_eq!(
        page.texts("#preview tbody td:nth-child(4)")[1],
        "Name must not contain invisible or direction-changing characters (U+FEFF)."
    );
    assert_eq!(count(&app, "SELECT count(*) FROM resources").await, before);
}

#[tokio::test]
async fn a_look_alike_name_is_warned_about_and_saved_when_confirmed() {
    let app = admin_app().await;
    let before = count(&app, "SELECT count(*) FROM resources").await;
    // "0l" for "01": a look-alike of the demo's lnx-web-01.
    let page = app
        .post("/admin/resources/new", &resource("lnx-web-0l"))
        .await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        page.texts("#look_alike-warning"),
        [
            "\"lnx-web-0l\" looks like the existing resource \"lnx-web-01\". Check the name, or tick Save anyway to keep it."
        ]
    );
    // What was typed is kept, and the box to confirm it is there.
    let html = page.html();
    let typed = html
        .select(&scraper::Selector::parse("#name").unwrap())
        .next()
        .unwrap()
        .value()
        .attr("value")
        .unwrap()
        .to_owned();
    assert_eq!(typed, "lnx-web-0l");
    assert_eq!(page.texts("label[for=look_alike_ok]"), ["Save anyway"]);
    assert_eq!(count(&app, "SELECT count(*) FROM resources").await, before);

    let mut confirmed = resource("lnx-web-0l");
    confirmed.push(("look_alike_ok", "1"));
    let page = app.post("/admin/resources/new", &confirmed).await;
    assert_eq!(flashes(&app, &page).await, ["Created lnx-web-0l."]);
    assert_eq!(
        count(&app, "SELECT count(*) FROM resources").await,
        before + 1
    );

    // A Cyrillic а in an activity's name.
    let page = app
        .post(
            "/admin/activities/new",
            &[
                ("name", "Linux \u{0430}dministration"),
                ("description", ""),
                ("platform", "Linux"),
                ("protocol", "ssh"),
                ("login_mode", "own"),
                ("login_template", ""),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        page.texts("#look_alike-warning")[0]
            .contains("looks like the existing activity \"Linux administration\""),
        "{}",
        page.body
    );

    // Saving a resource under its own name, or a name unlike any other, warns of nothing.
    let id = crate::admin_resources::id_of(&app, "resources", "lnx-web-02").await;
    let page = app
        .post(&format!("/admin/resources/{id}"), &resource("lnx-web-02"))
        .await;
    assert_eq!(flashes(&app, &page).await, ["Saved lnx-web-02."]);
    let page = app
        .post(
            "/admin/groups/new",
            &[("name", "Night shift"), ("description", "")],
        )
        .await;
    assert_eq!(flashes(&app, &page).await, ["Created Night shift."]);
}

fn activity<'a>(name: &'a str, mode: &'a str, template: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("name", name),
        ("description", ""),
        ("platform", "Linux"),
        ("protocol", "ssh"),
        ("login_mode", mode),
        ("login_template", template),
    ]
}

#[tokio::test]
async fn login_account_templates_make_only_names_a_target_accepts() {
    let app = admin_app().await;
    let before = count(&app, "SELECT count(*) FROM activities").await;
    for (mode, template, message) in [
        (
            "ephemeral",
            "PC-{username}",
            "The login account template may only hold lowercase letters, digits, '_', '.', '-' and the placeholders {username}, {session}, {resource}.",
        ),
        (
            "ephemeral",
            "{session}-{username}",
            "The login account template must start with a lowercase letter, '_' or {username}.",
        ),
        (
            "ephemeral",
            "pc-{session}-{session}-{session}-{session}",
            "The login account template makes names of at least 38 characters; account names are at most 32.",
        ),
        (
            "managed",
            "svc;dba",
            "The managed account name may only hold lowercase letters, digits, '_', '.' and '-', and must start with a letter or '_'.",
        ),
        (
            "managed",
            "CORP\\svc;dba",
            "The managed account name must be an account name (lowercase letters, digits, '_', '.', '-') or DOMAIN\\name, at most 32 characters.",
        ),
    ] {
        let page = app
            .post("/admin/activities/new", &activity("Odd", mode, template))
            .await;
        assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY, "{template}");
        assert_eq!(page.texts("#login_template-error"), [message], "{template}");
    }
    assert_eq!(count(&app, "SELECT count(*) FROM activities").await, before);
    let page = app
        .post(
            "/admin/activities/new",
            &activity("Jit shell", "ephemeral", "jit_{username}_{session}"),
        )
        .await;
    assert_eq!(flashes(&app, &page).await, ["Created Jit shell."]);
}

#[tokio::test]
async fn a_template_saved_before_the_rules_fails_at_provisioning_with_the_reason() {
    let app = admin_app().await;
    // Written straight to the database, as rows saved before the rule existed were.
    sqlx::query(
        "UPDATE activities SET login_template = 'PC {username}' WHERE name = 'Linux break-glass'",
    )
    .execute(&app.db)
    .await
    .unwrap();
    let alice = crate::support::new_client();
    app.login_with(&alice, "alice", crate::admin_resources::DEMO)
        .await;
    request(
        &app,
        &alice,
        &Request {
            activity: "Linux break-glass",
            policy: None,
            resources: &["lnx-web-04"],
            notes: "x",
            ticket: "",
            at: None,
        },
    )
    .await;
    sqlx::query("UPDATE activity_sessions SET status = 'provisioning', current_tier = NULL")
        .execute(&app.db)
        .await
        .unwrap();
    portcullis::worker::tick(&app.db, &app.secrets)
        .await
        .unwrap();
    let (status, account, comment): (String, Option<String>, String) = sqlx::query_as(
        "SELECT s.status::text, s.login_account, e.comment FROM activity_sessions s
         JOIN session_events e ON e.session_id = s.id AND e.kind = 'provisioning_failed'",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(status, "failed");
    assert_eq!(account, None);
    assert_eq!(
        comment,
        "Provisioning failed: the login account name \"PC alice\" may only hold lowercase letters, digits, '_', '.' and '-', and must start with a letter or '_'."
    );
}

#[tokio::test]
async fn a_csv_import_previews_a_look_alike_name_with_a_warning() {
    let app = admin_app().await;
    let csv =
        "name,kind,platform,address,port,description\nlnx-web-0l,server,Linux,x.example,22,\n";
    let page = post_multipart(
        &app,
        "/admin/resources/import",
        None,
        Some(("r.csv", csv.as_bytes())),
        "",
    )
    .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert_eq!(page.texts("#preview tbody td:nth-child(3)"), ["Create"]);
    assert_eq!(
        page.texts("#preview tbody td:nth-child(4)"),
        ["Looks like the resource \"lnx-web-01\": check the name."]
    );
}
