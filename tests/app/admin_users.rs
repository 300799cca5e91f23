//! Admin > Users: create, edit, disable and enable, reset password; an admin cannot lock
//! themselves out.

use reqwest::StatusCode;

use crate::admin_resources::{DEMO, admin_app, count, flashes, id_of};
use crate::support::new_client;

const STRONG: &str = "violet-harbour-tractor-91";

async fn user_id(app: &crate::support::TestApp, username: &str) -> uuid::Uuid {
    sqlx::query_scalar("SELECT id FROM users WHERE username = $1")
        .bind(username)
        .fetch_one(&app.db)
        .await
        .unwrap()
}

#[tokio::test]
async fn admins_create_a_user_with_groups_who_can_then_sign_in() {
    let app = admin_app().await;
    let ops = id_of(&app, "groups", "Operators").await.to_string();
    let page = app
        .post(
            "/admin/users/new",
            &[
                ("username", "frank"),
                ("display_name", "Frank Foster"),
                ("email", "frank@example.com"),
                ("role", "user"),
                ("time_zone", "Europe/Paris"),
                ("password", STRONG),
                ("groups", &ops),
                ("go", "save"),
            ],
        )
        .await;
    assert_eq!(flashes(&app, &page).await, ["Created frank."]);
    assert_eq!(
        count(&app, "SELECT count(*) FROM group_members gm JOIN users u ON u.id = gm.user_id WHERE u.username = 'frank'").await,
        1
    );
    let frank = new_client();
    let signed_in = app.login_with(&frank, "frank", STRONG).await;
    assert_eq!(signed_in.status, StatusCode::SEE_OTHER);
    // The audit entry never holds the password hash.
    let after: String =
        sqlx::query_scalar("SELECT after::text FROM admin_audit WHERE object_kind = 'user'")
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert!(
        !after.contains("password_hash") && after.contains("Operators"),
        "{after}"
    );
}

#[tokio::test]
async fn bad_user_input_is_refused_at_each_field_and_nothing_is_created() {
    let app = admin_app().await;
    let page = app
        .post(
            "/admin/users/new",
            &[
                ("username", "ALICE"),
                ("display_name", ""),
                ("role", "user"),
                ("time_zone", "Mars/Olympus"),
                ("password", "short"),
                ("go", "save"),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        page.texts("#time_zone-error"),
        ["Unknown time zone \"Mars/Olympus\": use an IANA name such as UTC or Europe/Berlin."]
    );
    assert_eq!(
        page.texts("#password-error"),
        ["The password must be at least 12 characters."]
    );
    let page = app
        .post(
            "/admin/users/new",
            &[
                ("username", "ALICE"),
                ("role", "user"),
                ("time_zone", "UTC"),
                ("password", STRONG),
                ("go", "save"),
            ],
        )
        .await;
    assert_eq!(
        page.texts("#username-error"),
        ["A user named \"ALICE\" already exists (usernames are compared without regard to case)."]
    );
    assert_eq!(count(&app, "SELECT count(*) FROM users").await, 5);
}

#[tokio::test]
async fn an_admin_cannot_remove_their_own_admin_role_or_disable_themselves() {
    let app = admin_app().await;
    let carol = user_id(&app, "carol").await;
    let page = app
        .post(
            &format!("/admin/users/{carol}"),
            &[
                ("display_name", "Carol"),
                ("role", "user"),
                ("time_zone", "UTC"),
                ("go", "save"),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        page.texts("#role-error"),
        ["You cannot remove your own administrator role: ask another administrator."]
    );
    let page = app
        .post(&format!("/admin/users/{carol}/disable"), &[])
        .await;
    assert_eq!(
        flashes(&app, &page).await,
        ["You cannot disable your own account."]
    );
    assert_eq!(
        count(&app, "SELECT count(*) FROM users WHERE username = 'carol' AND role = 'admin' AND NOT disabled").await,
        1
    );
}

#[tokio::test]
async fn a_disabled_user_is_signed_out_and_can_be_enabled_again() {
    let app = admin_app().await;
    let erin = user_id(&app, "erin").await;
    let erins = new_client();
    app.login_with(&erins, "erin", DEMO).await;
    // Twice: the second view is answered from this instance's kept copy of erin's session.
    for _ in 0..2 {
        assert_eq!(
            app.get_with(&erins, "/dashboard").await.status,
            StatusCode::OK
        );
    }
    let page = app.post(&format!("/admin/users/{erin}/disable"), &[]).await;
    assert_eq!(flashes(&app, &page).await, ["Disabled erin."]);
    // The very next click: the admin POST cleared the kept copies before it answered.
    let dashboard = app.get_with(&erins, "/dashboard").await;
    assert_eq!(dashboard.status, StatusCode::SEE_OTHER);
    assert_eq!(
        count(
            &app,
            &format!("SELECT count(*) FROM web_sessions WHERE user_id = '{erin}'")
        )
        .await,
        0
    );
    let page = app.post(&format!("/admin/users/{erin}/enable"), &[]).await;
    assert_eq!(flashes(&app, &page).await, ["Enabled erin."]);
    assert_eq!(
        app.login_with(&erins, "erin", DEMO).await.status,
        StatusCode::SEE_OTHER
    );
}

#[tokio::test]
async fn admins_reset_a_password_and_edit_details() {
    let app = admin_app().await;
    let dave = user_id(&app, "dave").await;
    let daves = new_client();
    app.login_with(&daves, "dave", DEMO).await;
    let page = app
        .post(
            &format!("/admin/users/{dave}/password"),
            &[("password", "password1234")],
        )
        .await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.texts("#password-error")[0].starts_with("The password is too easy to guess"));
    let page = app
        .post(
            &format!("/admin/users/{dave}/password"),
            &[("password", STRONG)],
        )
        .await;
    assert_eq!(flashes(&app, &page).await, ["Set a new password for dave."]);
    // The reset ends dave's sign-ins: a leaked password must not leave a session behind.
    let old = app.get_with(&daves, "/dashboard").await;
    assert_eq!(old.status, StatusCode::SEE_OTHER);
    assert!(old.location().starts_with("/login"));
    assert_eq!(
        app.login_with(&new_client(), "dave", STRONG).await.status,
        StatusCode::SEE_OTHER
    );

    let page = app
        .post(
            &format!("/admin/users/{dave}"),
            &[
                ("display_name", "David Dumont"),
                ("role", "auditor"),
                ("time_zone", "Asia/Tokyo"),
                ("go", "save"),
            ],
        )
        .await;
    assert_eq!(flashes(&app, &page).await, ["Saved dave."]);
    assert_eq!(
        count(&app, "SELECT count(*) FROM users WHERE username = 'dave' AND display_name = 'David Dumont' AND role = 'auditor' AND time_zone = 'Asia/Tokyo'").await,
        1
    );
    let list = app.get("/admin/users?q=dav").await;
    assert_eq!(list.texts("#users tbody td:nth-child(2)"), ["David Dumont"]);
}
