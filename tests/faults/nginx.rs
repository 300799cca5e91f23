//! Two instances behind nginx (round robin) on one database: the wizard goes on from page to
//! page across instances, and survives one of them being killed in the middle.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use reqwest::StatusCode;

use crate::instance::{Instance, database_url, free_port};
use crate::load::{Browser, Outcome, RESOURCES, Read, Record, requests_in_database, seed};
use crate::support::fresh_database;

const NGINX: &str = "/usr/sbin/nginx";

/// nginx in the foreground with a configuration of its own, stopped when dropped.
struct Nginx {
    port: u16,
    child: Child,
}

impl Nginx {
    fn start(dir: &Path, upstreams: &[u16]) -> Self {
        assert!(
            Path::new(NGINX).exists(),
            "nginx is missing: apt-get install nginx-light (Debian), or run .ci/run"
        );
        let port = free_port();
        let servers: String = upstreams
            .iter()
            .map(|p| format!("        server 127.0.0.1:{p} max_fails=1 fail_timeout=30s;\n"))
            .collect();
        // As root, nginx's workers would run as nobody, who cannot enter a private temp dir.
        let user = if nix::unistd::geteuid().is_root() {
            "user root;"
        } else {
            ""
        };
        let d = dir.display();
        let config = format!(
            "{user}
worker_processes 1;
pid {d}/nginx.pid;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    upstream portcullis {{
{servers}    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://portcullis;
            proxy_http_version 1.1;
            proxy_set_header Connection \"\";
            proxy_set_header Host $host;
            proxy_next_upstream error timeout;
            add_header X-Upstream $upstream_addr always;
        }}
    }}
}}
"
        );
        std::fs::write(dir.join("nginx.conf"), config).unwrap();
        let child = Command::new(NGINX)
            .arg("-p")
            .arg(dir)
            .arg("-e")
            .arg(dir.join("error.log"))
            .arg("-c")
            .arg(dir.join("nginx.conf"))
            .args(["-g", "daemon off;"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let nginx = Self { port, child };
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "nginx did not start: {}",
                std::fs::read_to_string(dir.join("error.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        nginx
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(i32::try_from(self.child.id()).unwrap()),
            Signal::SIGQUIT,
        );
        let _ = self.child.wait();
    }
}

fn upstreams(outcomes: &[Outcome]) -> Vec<String> {
    outcomes
        .iter()
        .map(|o| o.upstream.clone().unwrap_or_default())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wizard_goes_on_across_instances_behind_nginx_and_survives_one_killed() {
    let _turn = crate::one_at_a_time().await;
    let options = fresh_database().await;
    let db = portcullis::db::pool_options(2)
        .connect_with(options.clone())
        .await
        .unwrap();
    seed(&db, 1).await;

    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("secret.key");
    std::fs::write(&key, "ab".repeat(32)).unwrap();
    let url = database_url(&options);
    let key = key.to_string_lossy().into_owned();
    let env = [
        ("DATABASE_URL", url.as_str()),
        ("PORTCULLIS_KEY_FILE", key.as_str()),
    ];
    let mut first = Instance::start(&env);
    let mut second = Instance::start(&env);
    first.wait_ready().await;
    second.wait_ready().await;
    let first_addr = format!("127.0.0.1:{}", first.port);
    let second_addr = format!("127.0.0.1:{}", second.port);
    let nginx = Nginx::start(dir.path(), &[first.port, second.port]);

    let record = Record::default();
    let user = Browser::new(&format!("http://127.0.0.1:{}", nginx.port), &record);
    let limit = Duration::from_secs(5);
    user.sign_in("load1", limit).await;

    // Request Type, Resource Selection and Notes, as a browser does: each page, then its form.
    let page = user.get("/wizard/request-type").await.unwrap();
    let token = page.csrf_token().unwrap();
    let activity = page.attr("input[name=activity]", "value").unwrap();
    user.post_until(
        limit,
        "/wizard/request-type",
        &[
            ("csrf_token", &token),
            ("activity", &activity),
            ("go", "next"),
        ],
        "/wizard/resources",
    )
    .await;
    let mut form = vec![("csrf_token", token.clone()), ("go", "next".to_owned())];
    for resource in RESOURCES {
        let page = user
            .get(&format!("/wizard/resources?q={resource}"))
            .await
            .unwrap();
        let id = page.attr("input[name=pick]", "value").unwrap();
        form.push(("shown", id.clone()));
        form.push(("pick", id));
    }
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    user.post_until(limit, "/wizard/resources", &form, "/wizard/notes")
        .await;
    user.get("/wizard/notes").await.unwrap();

    let before = record.all();
    assert!(before.iter().all(|o| o.status.is_ok()), "{before:#?}");
    let served = upstreams(&before);
    assert!(
        served.contains(&first_addr) && served.contains(&second_addr),
        "both instances served: {served:?}"
    );
    for pair in served.windows(2) {
        assert_ne!(
            pair[0], pair[1],
            "each page from the other instance: {served:?}"
        );
    }

    // The instance round robin picks next dies without a word.
    let victim = served[served.len() - 2].clone();
    let (killed, survivor) = if victim == first_addr {
        (&mut first, &second_addr)
    } else {
        (&mut second, &first_addr)
    };
    killed.signal(Signal::SIGKILL);
    killed.exit_status(Duration::from_secs(5)).await;

    user.post_until(
        limit,
        "/wizard/notes",
        &[
            ("csrf_token", &token),
            ("notes", "Across instances"),
            ("ticket", ""),
            ("go", "next"),
        ],
        "/wizard/scheduling",
    )
    .await;
    user.post_until(
        limit,
        "/wizard/scheduling",
        &[("csrf_token", &token), ("when", "now"), ("go", "next")],
        "/wizard/review",
    )
    .await;
    let review = user.get("/wizard/review").await.unwrap();
    let draft = review.attr("input[name=draft_id]", "value").unwrap();
    let finish = [
        ("csrf_token", token.as_str()),
        ("draft_id", draft.as_str()),
        ("go", "finish"),
    ];
    user.post_until(limit, "/wizard/finish", &finish, "/dashboard")
        .await;
    // A second click on Finish (or a replayed POST) creates nothing more.
    user.post_until(limit, "/wizard/finish", &finish, "/dashboard")
        .await;
    let dashboard = user.get("/dashboard").await.unwrap();
    assert_eq!(dashboard.status, StatusCode::OK);

    let after = &record.all()[before.len()..];
    for o in after {
        assert!(
            matches!(o.status, Ok(StatusCode::OK | StatusCode::SEE_OTHER)),
            "after the kill every answer is whole: {o:?}"
        );
        assert_eq!(
            o.upstream.as_deref().and_then(|u| u.rsplit(", ").next()),
            Some(survivor.as_str()),
            "answered by the survivor: {o:?}"
        );
    }
    assert!(
        after[0].upstream.as_deref().unwrap_or("").contains(&victim),
        "nginx tried the killed instance first, then the survivor: {:?}",
        after[0].upstream
    );

    eprintln!(
        "nginx: before the kill {served:?}; first answer after it via {:?}",
        after[0].upstream
    );
    let stored = requests_in_database(&db).await;
    assert_eq!(
        stored,
        vec![(draft.clone(), 2)],
        "one request with its two sessions"
    );
    let notes: String = sqlx::query_scalar("SELECT notes FROM requests WHERE id = $1::uuid")
        .bind(&draft)
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(
        notes, "Across instances",
        "the draft carried across instances"
    );
    drop(nginx);
    db.close().await;
}
