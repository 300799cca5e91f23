//! The README's API examples, run verbatim: every `curl` command of its "API" section, in
//! order, against a test server, with the variables the examples use set by the test.

use portcullis::domain::api_token::Scope;
use serde_json::Value;

use crate::api::token;
use crate::support::spawn_demo_app;

/// The shell commands of the README's API section that run curl, continuation lines joined.
fn curl_commands() -> Vec<String> {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let start = readme
        .find("\n## API\n")
        .expect("README has an API section");
    let section = &readme[start + 1..];
    let section = &section[..section[3..].find("\n## ").map_or(section.len(), |e| e + 3)];
    let mut commands = Vec::new();
    let mut in_block = false;
    let mut current = String::new();
    for line in section.lines() {
        if line.starts_with("```") {
            in_block = !in_block && line == "```sh";
            continue;
        }
        if !in_block {
            continue;
        }
        match line.strip_suffix('\\') {
            Some(head) => current.push_str(head),
            None => {
                current.push_str(line);
                if current.trim_start().starts_with("curl ") {
                    commands.push(std::mem::take(&mut current));
                }
                current.clear();
            }
        }
    }
    commands
}

#[tokio::test]
async fn the_readmes_curl_examples_work_as_written() {
    let commands = curl_commands();
    assert!(commands.len() >= 7, "{commands:#?}");
    let app = spawn_demo_app().await;
    let alice = token(&app, "alice", &[Scope::Read, Scope::Request]).await;
    let bob = token(&app, "bob", &[Scope::Read, Scope::Approve]).await;
    let id = |table: &str, name: &str| {
        let db = app.db.clone();
        let sql = format!("SELECT id::text FROM {table} WHERE name = $1");
        let name = name.to_owned();
        async move {
            sqlx::query_scalar::<_, String>(&sql)
                .bind(name)
                .fetch_one(&db)
                .await
                .unwrap()
        }
    };
    // Linux break-glass needs an approver: the approval example has something to decide.
    let mut env: Vec<(&str, String)> = vec![
        ("PORTCULLIS", format!("http://{}", app.address)),
        ("TOKEN", alice),
        ("APPROVER_TOKEN", bob),
        ("ACTIVITY", id("activities", "Linux break-glass").await),
        ("RESOURCE", id("resources", "lnx-web-01").await),
    ];
    for command in &commands {
        let output = tokio::process::Command::new("bash")
            .arg("-c")
            .arg(format!("set -euo pipefail; {command} --fail-with-body"))
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .output()
            .await
            .expect("bash and curl");
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(
            output.status.success(),
            "{command}\n{stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let answer: Value =
            serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{command}: {e}: {stdout}"));
        if command.contains("/api/v1/requests\"") {
            env.push(("REQUEST", answer["id"].as_str().unwrap().to_owned()));
            let session = answer["sessions"][0]["session_id"]
                .as_str()
                .unwrap()
                .to_owned();
            env.push(("SESSION", session));
        }
        if command.contains("/decide") {
            assert_eq!(answer["approved"], 1, "{answer}");
        }
        if command.contains("/end") {
            assert_eq!(answer["outcome"], "ended", "{answer}");
        }
    }
    // What the examples did is in the database: one request, approved, then ended.
    let (count, status): (i64, String) = sqlx::query_as(
        "SELECT count(*), min(s.status::text) FROM requests r JOIN activity_sessions s ON s.request_id = r.id",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!((count, status.as_str()), (1, "completed"));
}
