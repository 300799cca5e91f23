//! SSH keys on the Account page: added with the fingerprint `ssh-keygen -lf` prints, listed,
//! removed, audited; every refusal says why and leaves the stored keys as they were.

use std::process::Command;

use portcullis::domain::role::Role;
use reqwest::StatusCode;

use crate::support::{TestApp, new_client, spawn_app};

/// A fresh key pair made by the real `ssh-keygen`: (public line, private text, fingerprint).
fn keygen(kind: &[&str], comment: &str) -> (String, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("key");
    let status = Command::new("ssh-keygen")
        .args(["-q", "-N", "", "-C", comment, "-f"])
        .arg(&path)
        .args(kind)
        .status()
        .unwrap();
    assert!(status.success());
    let public = std::fs::read_to_string(path.with_extension("pub")).unwrap();
    let private = std::fs::read_to_string(&path).unwrap();
    let listed = Command::new("ssh-keygen")
        .arg("-lf")
        .arg(path.with_extension("pub"))
        .output()
        .unwrap();
    let listed = String::from_utf8(listed.stdout).unwrap();
    let fingerprint = listed.split_whitespace().nth(1).unwrap().to_owned();
    (public.trim().to_owned(), private, fingerprint)
}

fn ed25519(comment: &str) -> (String, String, String) {
    keygen(&["-t", "ed25519"], comment)
}

/// The stored keys, as (user name, key name, fingerprint), and the audit entries about keys.
async fn stored(app: &TestApp) -> (Vec<(String, String, String)>, i64) {
    let keys = sqlx::query_as(
        "SELECT u.username, k.name, k.fingerprint FROM user_ssh_keys k JOIN users u ON u.id = k.user_id ORDER BY k.created_at",
    )
    .fetch_all(&app.db)
    .await
    .unwrap();
    let audited =
        sqlx::query_scalar("SELECT count(*) FROM admin_audit WHERE object_kind = 'ssh_key'")
            .fetch_one(&app.db)
            .await
            .unwrap();
    (keys, audited)
}

async fn add(app: &TestApp, client: &reqwest::Client, name: &str, key: &str) -> String {
    let page = app
        .post_with(
            client,
            "/account/ssh-keys",
            &[("name", name), ("public_key", key)],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    app.get_with(client, "/account").await.body
}

#[tokio::test]
async fn a_key_is_added_listed_with_its_fingerprint_and_removed_audited() {
    let app = spawn_app().await;
    app.create_user("alice", Role::User).await;
    app.login("alice").await;
    let (public, _, fingerprint) = ed25519("alice@laptop");
    let body = add(&app, &app.client, "", &public).await;
    assert!(
        body.contains(&format!("Added the key alice@laptop ({fingerprint}).")),
        "{body}"
    );
    let page = app.get("/account").await;
    let rows = page.texts("#ssh-keys-table tbody tr");
    assert_eq!(rows.len(), 1);
    assert!(rows[0].contains("alice@laptop") && rows[0].contains("ssh-ed25519"));
    assert!(rows[0].contains(&fingerprint) && rows[0].contains("Never"));
    let stored_key: String = sqlx::query_scalar("SELECT public_key FROM user_ssh_keys")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(stored_key, public.rsplit_once(' ').unwrap().0);
    assert_eq!(stored(&app).await.1, 1);

    let id: uuid::Uuid = sqlx::query_scalar("SELECT id FROM user_ssh_keys")
        .fetch_one(&app.db)
        .await
        .unwrap();
    // Someone else cannot remove it.
    let bob = new_client();
    app.create_user("bob", Role::User).await;
    app.login_with(&bob, "bob", crate::support::PASSWORD).await;
    let refused = app
        .post_with(&bob, &format!("/account/ssh-keys/{id}/remove"), &[])
        .await;
    assert_eq!(refused.status, StatusCode::NOT_FOUND);
    assert_eq!(stored(&app).await.0.len(), 1);

    let removed = app
        .post(&format!("/account/ssh-keys/{id}/remove"), &[])
        .await;
    assert_eq!(removed.status, StatusCode::SEE_OTHER);
    assert!(
        app.get("/account")
            .await
            .body
            .contains("Removed the key alice@laptop")
    );
    let (keys, audited) = stored(&app).await;
    assert!(keys.is_empty());
    let actions: Vec<String> = sqlx::query_scalar(
        "SELECT action || ' by ' || actor_name FROM admin_audit WHERE object_kind = 'ssh_key' ORDER BY id",
    )
    .fetch_all(&app.db)
    .await
    .unwrap();
    assert_eq!(audited, 2);
    assert_eq!(actions, ["add_ssh_key by alice", "remove_ssh_key by alice"]);
}

#[tokio::test]
async fn refusals_say_why_and_change_nothing() {
    let app = spawn_app().await;
    app.create_user("alice", Role::User).await;
    app.create_user("bob", Role::User).await;
    app.login("alice").await;
    let (public, private, _) = ed25519("alice@laptop");
    add(&app, &app.client, "laptop", &public).await;
    let before = stored(&app).await;

    let (rsa_weak, _, _) = keygen(&["-t", "rsa", "-b", "1024"], "old");
    let (other, _, _) = ed25519("");
    let long = "n".repeat(101);
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "",
            "not a key at all".into(),
            "This is not an OpenSSH public key.",
        ),
        ("k", private.clone(), "This is a private key."),
        (
            "k",
            rsa_weak,
            "This RSA key has 1024 bits; at least 2048 are needed.",
        ),
        ("other", public.clone(), "This key is already registered."),
        ("", other.clone(), "Give the key a name"),
        (
            "laptop",
            other.clone(),
            "You already have a key named laptop",
        ),
        (
            "LAPTOP",
            other.clone(),
            "You already have a key named LAPTOP",
        ),
        (&long, other.clone(), "The name is too long"),
        ("k", format!("{public}\n{other}"), "Paste one key at a time"),
    ];
    for (name, key, message) in &cases {
        let body = add(&app, &app.client, name, key).await;
        assert!(
            body.contains(&format!("Nothing was added. {message}")),
            "{message}: {body}"
        );
        if key.contains("PRIVATE") {
            assert!(
                !body.contains(key.lines().nth(1).unwrap()),
                "the private key was echoed"
            );
        }
        assert_eq!(stored(&app).await, before, "{message}");
    }
    // The same key by someone else: refused without naming the owner.
    let bob = new_client();
    app.login_with(&bob, "bob", crate::support::PASSWORD).await;
    let body = add(&app, &bob, "mine", &public).await;
    assert!(body.contains("Nothing was added. This key is already registered."));
    assert!(!body.contains("alice"));
    assert_eq!(stored(&app).await, before);
}

#[tokio::test]
async fn dsa_keys_are_refused_and_the_cap_holds() {
    let app = spawn_app().await;
    app.create_user("alice", Role::User).await;
    app.login("alice").await;
    let (ecdsa, _, fingerprint) = keygen(&["-t", "ecdsa"], "");
    let body = add(&app, &app.client, "ec", &ecdsa).await;
    assert!(body.contains(&fingerprint), "{body}");
    let (dss, _, _) = keygen(&["-t", "dsa"], "");
    let body = add(&app, &app.client, "old", &dss).await;
    assert!(
        body.contains("Nothing was added. DSA keys are too weak"),
        "{body}"
    );

    for n in 1..20 {
        let (key, _, _) = ed25519("");
        add(&app, &app.client, &format!("key {n}"), &key).await;
    }
    assert_eq!(stored(&app).await.0.len(), 20);
    let (key, _, _) = ed25519("");
    let body = add(&app, &app.client, "one too many", &key).await;
    assert!(
        body.contains("You have 20 keys, the most allowed"),
        "{body}"
    );
    assert_eq!(stored(&app).await.0.len(), 20);
}
