//! Ids in paths (`web::path_id::PathId`): anything that is not an id is answered with the
//! not-found page, and no handler runs.

use reqwest::StatusCode;

use crate::admin_resources::{admin_app, count, id_of};

#[tokio::test]
async fn a_malformed_id_in_a_path_answers_not_found_and_changes_nothing() {
    let app = admin_app().await;
    let live = "SELECT count(*) FROM resources WHERE archived_at IS NULL";
    let before = count(&app, live).await;
    for id in [
        "not-an-id",
        "12345",
        "{00000000-0000-0000-0000-00000000000g}",
    ] {
        for path in [
            format!("/admin/resources/{id}"),
            format!("/admin/users/{id}"),
            format!("/requests/{id}"),
            format!("/sessions/{id}"),
            format!("/sessions/{id}/connect"),
        ] {
            let page = app.get(&path).await;
            assert_eq!(page.status, StatusCode::NOT_FOUND, "{path}: {}", page.body);
            assert_eq!(page.texts("h1"), ["Not found"], "{path}");
        }
        let page = app
            .post(&format!("/admin/resources/{id}/delete"), &[])
            .await;
        assert_eq!(page.status, StatusCode::NOT_FOUND, "{id}: {}", page.body);
    }
    assert_eq!(count(&app, live).await, before, "nothing was deleted");
    let real = id_of(&app, "resources", "lnx-web-01").await;
    let page = app.get(&format!("/admin/resources/{real}")).await;
    assert_eq!(
        page.status,
        StatusCode::OK,
        "a real id still opens its page"
    );
}
