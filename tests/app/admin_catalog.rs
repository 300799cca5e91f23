//! Admin > Activities and Admin > Groups.

use reqwest::StatusCode;

use crate::admin_resources::{admin_app, count, flashes, id_of};

fn activity<'a>(name: &'a str, mode: &'a str, template: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("name", name),
        ("description", "Test"),
        ("platform", "Linux"),
        ("protocol", "ssh"),
        ("login_mode", mode),
        ("login_template", template),
    ]
}

#[tokio::test]
async fn admins_create_edit_clone_and_delete_an_activity() {
    let app = admin_app().await;
    let page = app
        .post(
            "/admin/activities/new",
            &activity("Patch run", "ephemeral", "pc-{username}-{session}"),
        )
        .await;
    assert_eq!(flashes(&app, &page).await, ["Created Patch run."]);
    let id = id_of(&app, "activities", "Patch run").await;

    let page = app
        .post(
            &format!("/admin/activities/{id}"),
            &activity("Patch night", "managed", "svc_patch"),
        )
        .await;
    assert_eq!(flashes(&app, &page).await, ["Saved Patch night."]);

    let clone = app.get(&format!("/admin/activities/{id}/clone")).await;
    let html = clone.html();
    let name = html
        .select(&scraper::Selector::parse("#name").unwrap())
        .next()
        .unwrap()
        .value()
        .attr("value")
        .unwrap()
        .to_owned();
    assert_eq!(name, "Patch night (copy)");

    let page = app
        .post(&format!("/admin/activities/{id}/delete"), &[])
        .await;
    assert_eq!(flashes(&app, &page).await, ["Deleted Patch night."]);
    let actions: Vec<String> = sqlx::query_scalar(
        "SELECT action FROM admin_audit WHERE object_kind = 'activity' ORDER BY id",
    )
    .fetch_all(&app.db)
    .await
    .unwrap();
    assert_eq!(actions, ["create", "update", "delete"]);
}

#[tokio::test]
async fn a_login_template_with_an_unknown_placeholder_is_refused_at_its_field() {
    let app = admin_app().await;
    let page = app
        .post(
            "/admin/activities/new",
            &activity("Bad", "ephemeral", "pc-{user}"),
        )
        .await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        page.texts("#login_template-error"),
        [
            "Unknown placeholder {user} in the login account template (known: {username}, {session}, {resource})."
        ]
    );
    let page = app
        .post(
            "/admin/activities/new",
            &activity("linux ADMINISTRATION", "own", ""),
        )
        .await;
    assert_eq!(
        page.texts("#name-error"),
        [
            "An activity named \"linux ADMINISTRATION\" already exists (names are compared without regard to case)."
        ]
    );
    assert_eq!(count(&app, "SELECT count(*) FROM activities").await, 6);
}

#[tokio::test]
async fn an_activity_a_policy_grants_cannot_be_deleted() {
    let app = admin_app().await;
    let id = id_of(&app, "activities", "Linux administration").await;
    let page = app
        .post(&format!("/admin/activities/{id}/delete"), &[])
        .await;
    assert_eq!(
        flashes(&app, &page).await,
        [
            "Linux administration cannot be deleted: it is used by access policies: Linux operations, Linux self-service. Remove it from them first."
        ]
    );
}

#[tokio::test]
async fn admins_create_a_group_with_members_and_rename_it() {
    let app = admin_app().await;
    let bob: uuid::Uuid = sqlx::query_scalar("SELECT id FROM users WHERE username = 'bob'")
        .fetch_one(&app.db)
        .await
        .unwrap();
    let bob = bob.to_string();
    let form = app.get("/admin/groups/new").await;
    assert!(
        form.texts("#members-picker li")
            .iter()
            .any(|t| t.starts_with("bob"))
    );
    let page = app
        .post(
            "/admin/groups/new",
            &[
                ("name", "DBAs"),
                ("description", ""),
                ("members", &bob),
                ("go", "save"),
            ],
        )
        .await;
    assert_eq!(flashes(&app, &page).await, ["Created DBAs."]);
    let id = id_of(&app, "groups", "DBAs").await;
    let page = app
        .post(
            &format!("/admin/groups/{id}"),
            &[
                ("name", "Database admins"),
                ("description", ""),
                ("go", "save"),
            ],
        )
        .await;
    assert_eq!(flashes(&app, &page).await, ["Saved Database admins."]);
    assert_eq!(
        count(&app, "SELECT count(*) FROM group_members gm JOIN groups g ON g.id = gm.group_id WHERE g.name = 'Database admins'").await,
        0
    );
}

#[tokio::test]
async fn the_member_search_keeps_what_was_ticked_and_saves_nothing() {
    let app = admin_app().await;
    let bob: uuid::Uuid = sqlx::query_scalar("SELECT id FROM users WHERE username = 'bob'")
        .fetch_one(&app.db)
        .await
        .unwrap();
    let bob = bob.to_string();
    let page = app
        .post(
            "/admin/groups/new",
            &[
                ("name", "Typed"),
                ("members", &bob),
                ("members_q", "eri"),
                ("go", "search"),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::OK);
    let labels = page.texts("#members-picker li");
    assert_eq!(labels.len(), 2, "{labels:?}");
    assert!(labels[0].starts_with("bob") && labels[1].starts_with("erin"));
    assert_eq!(
        page.html()
            .select(&scraper::Selector::parse("#members-picker input[checked]").unwrap())
            .count(),
        1
    );
    assert_eq!(
        count(&app, "SELECT count(*) FROM groups WHERE name = 'Typed'").await,
        0
    );
}

#[tokio::test]
async fn a_duplicate_group_name_in_another_case_is_refused() {
    let app = admin_app().await;
    let page = app
        .post(
            "/admin/groups/new",
            &[("name", "approvers"), ("go", "save")],
        )
        .await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        page.texts("#name-error"),
        ["A group named \"approvers\" already exists (names are compared without regard to case)."]
    );
    let id = id_of(&app, "groups", "Approvers").await;
    let page = app.post(&format!("/admin/groups/{id}/delete"), &[]).await;
    assert_eq!(
        flashes(&app, &page).await,
        [
            "Approvers cannot be deleted: it is used by approval tiers of connection profiles: Change window, Standard."
        ]
    );
}
