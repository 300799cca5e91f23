//! Admin > Connection profiles and Admin > Access policies.

use reqwest::StatusCode;
use uuid::Uuid;

use crate::admin_resources::{DEMO, admin_app, count, flashes, id_of};
use crate::support::{TestApp, new_client};
use crate::wizard::{Request, activity_value, request};

async fn user_id(app: &TestApp, username: &str) -> String {
    let id: Uuid = sqlx::query_scalar("SELECT id FROM users WHERE username = $1")
        .bind(username)
        .fetch_one(&app.db)
        .await
        .unwrap();
    id.to_string()
}

async fn id(app: &TestApp, table: &str, name: &str) -> String {
    id_of(app, table, name).await.to_string()
}

/// A profile form with sensible values; `extra` adds the tiers and overrides.
pub(crate) fn profile<'a>(name: &'a str, extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut form = vec![
        ("name", name),
        ("description", "Test"),
        ("max_duration_minutes", "90"),
        ("schedule_horizon_days", "7"),
        ("decision_timeout_minutes", "120"),
        ("extension_minutes", "15"),
        ("max_extensions", "1"),
        ("notes_required", "on"),
        ("go", "save"),
    ];
    for (k, v) in extra {
        form.retain(|(key, _)| key != k || k.ends_with("users") || k.ends_with("groups"));
        form.push((k, v));
    }
    form
}

async fn audit_count(app: &TestApp) -> i64 {
    count(app, "SELECT count(*) FROM admin_audit").await
}

#[tokio::test]
async fn admins_create_a_two_tier_profile_and_a_policy_erin_can_request_under() {
    let app = admin_app().await;
    let approvers = id(&app, "groups", "Approvers").await;
    let carol = user_id(&app, "carol").await;
    let page = app
        .post(
            "/admin/profiles/new",
            &profile(
                "Night shift",
                &[
                    ("ticket_required", "on"),
                    ("ticket_pattern", "^INC[0-9]{4}$"),
                    ("tier1_required", "2"),
                    ("tier1_groups", &approvers),
                    ("tier2_required", "1"),
                    ("tier2_users", &carol),
                    ("tier3_required", "1"),
                ],
            ),
        )
        .await;
    assert_eq!(flashes(&app, &page).await, ["Created Night shift."]);
    let profile = id(&app, "connection_profiles", "Night shift").await;
    let (approval, ticket): (bool, Option<String>) = sqlx::query_as(
        "SELECT approval_required, ticket_pattern FROM connection_profiles WHERE name = 'Night shift'",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert!(approval);
    assert_eq!(ticket.as_deref(), Some("^INC[0-9]{4}$"));
    let tiers: Vec<(i16, i32)> = sqlx::query_as(
        "SELECT t.position, t.approvals_required FROM approval_tiers t
         JOIN connection_profiles cp ON cp.id = t.profile_id WHERE cp.name = 'Night shift'
         ORDER BY t.position",
    )
    .fetch_all(&app.db)
    .await
    .unwrap();
    assert_eq!(tiers, [(1, 2), (2, 1)]);

    // The edit page shows what was saved.
    let edit = app.get(&format!("/admin/profiles/{profile}")).await;
    assert_eq!(edit.status, StatusCode::OK);
    assert!(edit.body.contains("^INC[0-9]{4}$"));
    assert!(edit.texts(".banner-warning").is_empty());

    let erin = user_id(&app, "erin").await;
    let activity = id(&app, "activities", "Database maintenance").await;
    let resource = id(&app, "resources", "pg-db-01").await;
    let page = app
        .post(
            "/admin/policies/new",
            &[
                ("name", "Night access"),
                ("description", "On-call database work"),
                ("profile", &profile),
                ("users", &erin),
                ("activities", &activity),
                ("resources", &resource),
                ("go", "save"),
            ],
        )
        .await;
    assert_eq!(flashes(&app, &page).await, ["Created Night access."]);
    let policy = id(&app, "access_policies", "Night access").await;
    let list = app.get("/admin/policies").await;
    assert!(
        list.texts("#policies td a")
            .contains(&"Night access".to_owned())
    );

    // erin's wizard offers it at once, and a request goes through both tiers.
    let client = new_client();
    app.login_with(&client, "erin", DEMO).await;
    activity_value(&app, &client, "Database maintenance", Some("Night access")).await;
    let finish = request(
        &app,
        &client,
        &Request {
            activity: "Database maintenance",
            policy: Some("Night access"),
            resources: &["pg-db-01"],
            notes: "Vacuum",
            ticket: "INC1234",
            at: None,
        },
    )
    .await;
    assert_eq!(finish.status, StatusCode::SEE_OTHER, "{}", finish.body);
    let (tiers, status): (i16, String) = sqlx::query_as(
        "SELECT r.tier_count, s.status::text FROM requests r
         JOIN activity_sessions s ON s.request_id = r.id WHERE r.policy_name = 'Night access'",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!((tiers, status.as_str()), (2, "waiting_for_approval"));

    // Disabling it withdraws erin's waiting request: the administrator is asked first.
    let page = app
        .post(&format!("/admin/policies/{policy}/disable"), &[])
        .await;
    assert_eq!(page.status, StatusCode::CONFLICT);
    assert_eq!(page.texts("#ending-sessions tbody tr").len(), 1);
    let page = app
        .post(
            &format!("/admin/policies/{policy}/disable"),
            &[("confirm", "1")],
        )
        .await;
    assert_eq!(
        flashes(&app, &page).await,
        [
            "Disabled Night access.",
            "Ended 1 session the change no longer grants."
        ]
    );
    // Disabled, it is no longer offered.
    let wizard = app.get_with(&client, "/wizard/request-type").await;
    assert!(!wizard.body.contains("Policy: Night access"));

    let page = app
        .post(&format!("/admin/policies/{policy}/enable"), &[])
        .await;
    assert_eq!(flashes(&app, &page).await, ["Enabled Night access."]);
    activity_value(&app, &client, "Database maintenance", Some("Night access")).await;
    let page = app
        .post(&format!("/admin/policies/{policy}/delete"), &[])
        .await;
    assert_eq!(flashes(&app, &page).await, ["Deleted Night access."]);
    let wizard = app.get_with(&client, "/wizard/request-type").await;
    assert!(!wizard.body.contains("Policy: Night access"));

    let actions: Vec<(String, String)> = sqlx::query_as(
        "SELECT object_kind, action FROM admin_audit
         WHERE object_kind IN ('profile', 'policy') ORDER BY id",
    )
    .fetch_all(&app.db)
    .await
    .unwrap();
    let actions: Vec<(&str, &str)> = actions
        .iter()
        .map(|(k, a)| (k.as_str(), a.as_str()))
        .collect();
    assert_eq!(
        actions,
        [
            ("profile", "create"),
            ("policy", "create"),
            ("policy", "disable"),
            ("policy", "enable"),
            ("policy", "delete")
        ]
    );
    let after: String =
        sqlx::query_scalar("SELECT after::text FROM admin_audit WHERE object_kind = 'profile'")
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert!(
        after.contains("\"carol\"") && after.contains("\"Approvers\""),
        "{after}"
    );
}

#[tokio::test]
async fn bad_profile_inputs_are_refused_at_their_fields_and_change_nothing() {
    let app = admin_app().await;
    let profiles = count(&app, "SELECT count(*) FROM connection_profiles").await;
    let tiers = count(&app, "SELECT count(*) FROM approval_tiers").await;
    let audit = audit_count(&app).await;
    let approvers = id(&app, "groups", "Approvers").await;

    let page = app
        .post(
            "/admin/profiles/new",
            &profile("Broken", &[("ticket_pattern", "^(INC")]),
        )
        .await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    let error = page.texts("#ticket_pattern-error");
    assert_eq!(error.len(), 1);
    assert!(
        error[0].starts_with("The ticket pattern does not compile"),
        "{error:?}"
    );
    assert!(page.body.contains("value=\"Broken\""), "the input is kept");

    let page = app
        .post(
            "/admin/profiles/new",
            &profile(
                "Greedy",
                &[("tier1_required", "3"), ("tier1_groups", &approvers)],
            ),
        )
        .await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        page.texts("#tier1_required-error"),
        [
            "Tier 1 requires 3 approval(s) but only 2 enabled user(s) can approve in it (its users and the members of its groups)."
        ]
    );

    let page = app
        .post(
            "/admin/profiles/new",
            &profile(
                "Gap",
                &[("tier1_required", "1"), ("tier2_groups", &approvers)],
            ),
        )
        .await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        page.texts("#tier2_required-error"),
        ["Tier 1 has no approvers, so tier 2 cannot follow it: fill the tiers in order."]
    );

    let page = app
        .post("/admin/profiles/new", &profile("sTANDARD", &[]))
        .await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        page.texts("#name-error"),
        [
            "A connection profile named \"sTANDARD\" already exists (names are compared without regard to case)."
        ]
    );

    let ghost = Uuid::now_v7().to_string();
    let page = app
        .post(
            "/admin/profiles/new",
            &profile("Ghost", &[("tier1_required", "1"), ("tier1_users", &ghost)]),
        )
        .await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        page.texts("#tier1_users-error"),
        ["Some of the ticked users no longer exist. Check the list again."]
    );

    let page = app
        .post(
            "/admin/profiles/new",
            &profile("Too long", &[("max_duration_minutes", "10081")]),
        )
        .await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        page.texts("#max_duration_minutes-error"),
        ["Maximum duration (minutes) must be a whole number from 5 to 10080."]
    );

    // Editing an existing profile badly changes nothing either.
    let standard = id(&app, "connection_profiles", "Standard").await;
    let page = app
        .post(
            &format!("/admin/profiles/{standard}"),
            &profile(
                "Standard",
                &[("tier1_required", "5"), ("tier1_groups", &approvers)],
            ),
        )
        .await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);

    assert_eq!(
        count(&app, "SELECT count(*) FROM connection_profiles").await,
        profiles
    );
    assert_eq!(
        count(&app, "SELECT count(*) FROM approval_tiers").await,
        tiers
    );
    assert_eq!(
        count(
            &app,
            "SELECT max_duration_minutes::bigint FROM connection_profiles WHERE name = 'Standard'"
        )
        .await,
        120
    );
    assert_eq!(audit_count(&app).await, audit);
}

#[tokio::test]
async fn bad_policy_inputs_are_refused_and_change_nothing() {
    let app = admin_app().await;
    let policies = count(&app, "SELECT count(*) FROM access_policies").await;
    let links = count(&app, "SELECT count(*) FROM policy_activities").await;
    let audit = audit_count(&app).await;
    let standard = id(&app, "connection_profiles", "Standard").await;
    let ghost = Uuid::now_v7().to_string();

    let page = app
        .post(
            "/admin/policies/new",
            &[
                ("name", "linux OPERATIONS"),
                ("profile", &standard),
                ("go", "save"),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        page.texts("#name-error"),
        [
            "An access policy named \"linux OPERATIONS\" already exists (names are compared without regard to case)."
        ]
    );

    let page = app
        .post(
            "/admin/policies/new",
            &[
                ("name", "Forged"),
                ("profile", &standard),
                ("activities", &ghost),
                ("resources", &ghost),
                ("go", "save"),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        page.texts("#activities-error"),
        ["Some of the ticked activities no longer exist. Check the list again."]
    );
    assert_eq!(
        page.texts("#resources-error"),
        ["Some of the ticked resources no longer exist. Check the list again."]
    );

    let page = app
        .post(
            "/admin/policies/new",
            &[("name", "No profile"), ("profile", &ghost), ("go", "save")],
        )
        .await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        page.texts("#profile-error"),
        ["That connection profile no longer exists. Choose another."]
    );

    assert_eq!(
        count(&app, "SELECT count(*) FROM access_policies").await,
        policies
    );
    assert_eq!(
        count(&app, "SELECT count(*) FROM policy_activities").await,
        links
    );
    assert_eq!(audit_count(&app).await, audit);
}

#[tokio::test]
async fn a_profile_a_policy_uses_cannot_be_deleted() {
    let app = admin_app().await;
    let standard = id(&app, "connection_profiles", "Standard").await;
    let page = app
        .post(&format!("/admin/profiles/{standard}/delete"), &[])
        .await;
    assert_eq!(
        flashes(&app, &page).await,
        [
            "Standard cannot be deleted: it is used by access policies: Linux operations, Windows operations. Give them another profile first."
        ]
    );
    assert_eq!(
        count(
            &app,
            "SELECT count(*) FROM connection_profiles WHERE name = 'Standard'"
        )
        .await,
        1
    );

    let page = app
        .post("/admin/profiles/new", &profile("Spare", &[]))
        .await;
    assert_eq!(flashes(&app, &page).await, ["Created Spare."]);
    let spare = id(&app, "connection_profiles", "Spare").await;
    let page = app
        .post(&format!("/admin/profiles/{spare}/delete"), &[])
        .await;
    assert_eq!(flashes(&app, &page).await, ["Deleted Spare."]);
}

#[tokio::test]
async fn later_changes_that_leave_too_few_approvers_are_warned_about() {
    let app = admin_app().await;
    // Approvers (bob, dave) is Standard's only tier; dave leaves and bob is disabled.
    sqlx::query(
        "DELETE FROM group_members WHERE user_id = (SELECT id FROM users WHERE username = 'dave')",
    )
    .execute(&app.db)
    .await
    .unwrap();
    sqlx::query("UPDATE users SET disabled = true WHERE username = 'bob'")
        .execute(&app.db)
        .await
        .unwrap();
    let standard = id(&app, "connection_profiles", "Standard").await;
    let page = app.get(&format!("/admin/profiles/{standard}")).await;
    assert_eq!(
        page.texts(".banner-warning"),
        [
            "Tier 1 requires 1 approval(s) but only 0 enabled user(s) can approve in it now: requests under this profile cannot be approved until you add approvers or lower the number."
        ]
    );
}

#[tokio::test]
async fn a_policy_whose_only_approver_is_its_only_member_is_warned_about() {
    let app = admin_app().await;
    let erin = user_id(&app, "erin").await;
    let page = app
        .post(
            "/admin/profiles/new",
            &profile("Solo", &[("tier1_required", "1"), ("tier1_users", &erin)]),
        )
        .await;
    assert_eq!(flashes(&app, &page).await, ["Created Solo."]);
    let solo = id(&app, "connection_profiles", "Solo").await;
    let page = app
        .post(
            "/admin/policies/new",
            &[
                ("name", "Erin alone"),
                ("profile", &solo),
                ("users", &erin),
                ("go", "save"),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    let saved = app.get(page.location()).await;
    assert_eq!(saved.texts(".flash"), ["Created Erin alone."]);
    assert_eq!(
        saved.texts(".banner-warning"),
        [
            "erin is this policy's only member and also the only approver its connection profile names: nobody else can approve erin's requests."
        ]
    );
}

#[tokio::test]
async fn the_pages_are_for_administrators_only() {
    let app = admin_app().await;
    let client = new_client();
    app.login_with(&client, "erin", DEMO).await;
    for path in ["/admin/profiles", "/admin/policies/new"] {
        assert_eq!(
            app.get_with(&client, path).await.status,
            StatusCode::FORBIDDEN
        );
    }
    let nav = app.get("/admin/users").await;
    assert!(
        nav.texts("nav.tabs a")
            .contains(&"Connection profiles".to_owned())
    );
    assert!(
        nav.texts("nav.tabs a")
            .contains(&"Access policies".to_owned())
    );
}

#[tokio::test]
async fn the_resource_list_searches_on_the_server_and_keeps_ticks_first() {
    let app = admin_app().await;
    let web = id(&app, "resources", "lnx-web-01").await;
    let page = app
        .post(
            "/admin/policies/new",
            &[
                ("name", "Searching"),
                ("resources", &web),
                ("resources_q", "pg-db"),
                ("go", "search"),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::OK);
    let labels = page.texts("#resources-picker li label span:first-of-type");
    assert_eq!(
        labels,
        ["lnx-web-01", "pg-db-01", "pg-db-02", "pg-db-03", "pg-db-04"]
    );
    assert!(page.body.contains("value=\"Searching\""));
    assert_eq!(
        count(
            &app,
            "SELECT count(*) FROM access_policies WHERE name = 'Searching'"
        )
        .await,
        0
    );
}

/// The resource names the signed-in requester's Resource Selection lists now.
async fn offered_resources(app: &TestApp, client: &reqwest::Client) -> Vec<String> {
    let page = app.get_with(client, "/wizard/resources").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    page.texts("#resources tbody td label")
}

/// The audit entry of the last change to `kind` `name`: action, before and after (JSON).
async fn last_audit(
    app: &TestApp,
    kind: &str,
    name: &str,
) -> (String, serde_json::Value, serde_json::Value) {
    let (action, before, after): (String, String, String) = sqlx::query_as(
        "SELECT action, before::text, after::text FROM admin_audit
         WHERE object_kind = $1 AND object_name = $2 ORDER BY id DESC LIMIT 1",
    )
    .bind(kind)
    .bind(name)
    .fetch_one(&app.db)
    .await
    .unwrap();
    let json = |text: &str| serde_json::from_str(text).unwrap();
    (action, json(&before), json(&after))
}

#[tokio::test]
async fn a_policy_edit_is_stored_audited_and_offered_at_once() {
    let app = admin_app().await;
    // erin is half-way through the wizard under Web consoles.
    let erin = new_client();
    app.login_with(&erin, "erin", DEMO).await;
    let value = activity_value(&app, &erin, "Web console access", None).await;
    let page = app
        .post_with(
            &erin,
            "/wizard/request-type",
            &[("activity", &value), ("go", "next")],
        )
        .await;
    assert_eq!(page.location(), "/wizard/resources", "{}", page.body);
    let before = offered_resources(&app, &erin).await;
    assert!(before.contains(&"Jenkins".to_owned()), "{before:?}");
    assert!(!before.contains(&"lnx-web-01".to_owned()), "{before:?}");

    // carol drops alice and Jenkins, and adds lnx-web-01.
    let policy = id(&app, "access_policies", "Web consoles").await;
    let self_service = id(&app, "connection_profiles", "Self-service").await;
    let erin_id = user_id(&app, "erin").await;
    let activity = id(&app, "activities", "Web console access").await;
    let mut form = vec![
        ("name", "Web consoles".to_owned()),
        ("description", "Consoles, and one web server".to_owned()),
        ("profile", self_service),
        ("users", erin_id),
        ("activities", activity),
        ("go", "save".to_owned()),
    ];
    for name in ["Grafana", "Router admin", "Firewall console", "lnx-web-01"] {
        form.push(("resources", id(&app, "resources", name).await));
    }
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let page = app.post(&format!("/admin/policies/{policy}"), &form).await;
    assert_eq!(page.location(), format!("/admin/policies/{policy}"));
    assert_eq!(flashes(&app, &page).await, ["Saved Web consoles."]);

    // Stored.
    let stored: Vec<String> = sqlx::query_scalar(
        "SELECT r.name FROM policy_resources x JOIN resources r ON r.id = x.resource_id
         JOIN access_policies p ON p.id = x.policy_id WHERE p.name = 'Web consoles'
         ORDER BY lower(r.name)",
    )
    .fetch_all(&app.db)
    .await
    .unwrap();
    assert_eq!(
        stored,
        ["Firewall console", "Grafana", "lnx-web-01", "Router admin"]
    );
    let description: String =
        sqlx::query_scalar("SELECT description FROM access_policies WHERE name = 'Web consoles'")
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(description, "Consoles, and one web server");

    // Audited with both sides.
    let (action, before, after) = last_audit(&app, "policy", "Web consoles").await;
    assert_eq!(action, "update");
    assert_eq!(before["users"], serde_json::json!(["alice", "erin"]));
    assert_eq!(after["users"], serde_json::json!(["erin"]));
    assert_eq!(
        before["resources"],
        serde_json::json!(["Firewall console", "Grafana", "Jenkins", "Router admin"])
    );
    assert_eq!(
        after["resources"],
        serde_json::json!(["Firewall console", "Grafana", "lnx-web-01", "Router admin"])
    );

    // In effect at once: erin's next Resource Selection, alice's next Request Type.
    let now = offered_resources(&app, &erin).await;
    assert!(now.contains(&"lnx-web-01".to_owned()), "{now:?}");
    assert!(!now.contains(&"Jenkins".to_owned()), "{now:?}");
    let alice = new_client();
    app.login_with(&alice, "alice", DEMO).await;
    let offered = app.get_with(&alice, "/wizard/request-type").await;
    assert!(
        !offered
            .texts("ul.choices li strong")
            .contains(&"Web console access".to_owned()),
        "{}",
        offered.body
    );
}

#[tokio::test]
async fn a_tier_change_is_stored_audited_and_moves_waiting_requests_to_the_new_approvers() {
    let app = admin_app().await;
    let erin = new_client();
    app.login_with(&erin, "erin", DEMO).await;
    let finish = request(
        &app,
        &erin,
        &Request {
            activity: "Linux administration",
            policy: Some("Linux operations"),
            resources: &["lnx-web-03"],
            notes: "Rotate logs",
            ticket: "",
            at: None,
        },
    )
    .await;
    assert_eq!(finish.status, StatusCode::SEE_OTHER, "{}", finish.body);
    let bob = new_client();
    app.login_with(&bob, "bob", DEMO).await;
    let waiting = |page: &crate::support::Page| page.texts("#approvals tbody td:nth-child(4)");
    assert_eq!(
        waiting(&app.get_with(&bob, "/approvals").await),
        ["Erin Estrada"]
    );
    assert_eq!(waiting(&app.get("/approvals").await), Vec::<String>::new());

    // Standard's only tier: carol alone instead of the Approvers group; 90 minutes.
    let standard = id(&app, "connection_profiles", "Standard").await;
    let carol = user_id(&app, "carol").await;
    let page = app
        .post(
            &format!("/admin/profiles/{standard}"),
            &profile(
                "Standard",
                &[
                    ("max_duration_minutes", "90"),
                    ("tier1_required", "1"),
                    ("tier1_users", &carol),
                ],
            ),
        )
        .await;
    assert_eq!(flashes(&app, &page).await, ["Saved Standard."]);

    let (minutes, users, groups): (i32, i64, i64) = sqlx::query_as(
        "SELECT cp.max_duration_minutes,
                (SELECT count(*) FROM approval_tier_users tu WHERE tu.tier_id = t.id),
                (SELECT count(*) FROM approval_tier_groups tg WHERE tg.tier_id = t.id)
         FROM connection_profiles cp JOIN approval_tiers t ON t.profile_id = cp.id
         WHERE cp.name = 'Standard'",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!((minutes, users, groups), (90, 1, 0));

    let (action, before, after) = last_audit(&app, "profile", "Standard").await;
    assert_eq!(action, "update");
    assert_eq!(before["max_duration_minutes"], 120);
    assert_eq!(after["max_duration_minutes"], 90);
    assert_eq!(
        before["tiers"][0]["groups"],
        serde_json::json!(["Approvers"])
    );
    assert_eq!(before["tiers"][0]["users"], serde_json::json!([]));
    assert_eq!(after["tiers"][0]["groups"], serde_json::json!([]));
    assert_eq!(after["tiers"][0]["users"], serde_json::json!(["carol"]));

    // The waiting request now waits for carol, not bob.
    assert_eq!(
        waiting(&app.get_with(&bob, "/approvals").await),
        Vec::<String>::new()
    );
    assert_eq!(waiting(&app.get("/approvals").await), ["Erin Estrada"]);
}

#[tokio::test]
async fn the_approver_count_is_taken_after_a_concurrent_membership_change_commits() {
    let app = admin_app().await;
    let approvers = id(&app, "groups", "Approvers").await;
    let profiles = count(&app, "SELECT count(*) FROM connection_profiles").await;
    let audit = audit_count(&app).await;

    // Another administrator's change is under way: dave leaves Approvers, not committed yet.
    let mut other = app.db.begin().await.unwrap();
    sqlx::query(
        "DELETE FROM group_members WHERE user_id = (SELECT id FROM users WHERE username = 'dave')",
    )
    .execute(&mut *other)
    .await
    .unwrap();

    // Two approvals from Approvers: true before that change, false after it.
    let form = profile(
        "Pair",
        &[("tier1_required", "2"), ("tier1_groups", &approvers)],
    );
    let save = app.post("/admin/profiles/new", &form);
    let commit_once_the_save_waits = async {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let waiting = count(
                &app,
                "SELECT count(*) FROM pg_stat_activity
                 WHERE datname = current_database() AND wait_event_type = 'Lock'",
            )
            .await;
            if waiting > 0 {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the save never waited for the membership change"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        other.commit().await.unwrap();
    };
    let (page, ()) = tokio::join!(save, commit_once_the_save_waits);

    assert_eq!(
        page.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        page.body
    );
    assert_eq!(
        page.texts("#tier1_required-error"),
        [
            "Tier 1 requires 2 approval(s) but only 1 enabled user(s) can approve in it (its users and the members of its groups)."
        ]
    );
    assert!(page.body.contains("value=\"Pair\""), "the input is kept");
    assert_eq!(
        count(&app, "SELECT count(*) FROM connection_profiles").await,
        profiles
    );
    assert_eq!(audit_count(&app).await, audit);
}

/// A tier's approver list searches on the server: the page comes back with the search
/// applied, the ticked user still ticked and every other field as typed; nothing is stored.
#[tokio::test]
async fn a_profile_tiers_user_list_searches_and_keeps_the_form() {
    let app = admin_app().await;
    let carol = user_id(&app, "carol").await;
    let before = count(&app, "SELECT count(*) FROM connection_profiles").await;
    let page = app
        .post(
            "/admin/profiles/new",
            &profile(
                "Searching",
                &[
                    ("tier1_required", "2"),
                    ("tier1_users", &carol),
                    ("tier1_users_q", "erin"),
                    ("notes_required", "on"),
                    ("go", "search"),
                ],
            ),
        )
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert_eq!(
        page.texts("#tier1_users-picker li label span:first-of-type"),
        ["carol", "erin"],
        "the ticked user first, then the matches"
    );
    assert!(page.body.contains("value=\"Searching\""));
    assert!(
        page.body.contains("value=\"erin\""),
        "the search box as typed"
    );
    let html = page.html();
    let attr = |selector: &str, name: &str| {
        let selector = scraper::Selector::parse(selector).unwrap();
        html.select(&selector)
            .next()
            .and_then(|e| e.value().attr(name).map(str::to_owned))
    };
    assert_eq!(
        attr("input[name=tier1_required]", "value").as_deref(),
        Some("2")
    );
    assert!(attr("input[name=notes_required]", "checked").is_some());
    assert_eq!(
        count(&app, "SELECT count(*) FROM connection_profiles").await,
        before
    );
}
