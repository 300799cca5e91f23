//! PostgreSQL stopped for ten seconds under load: 503 while it is down, nothing lost or
//! doubled, normal answers soon after it returns.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use tokio::sync::watch;

use crate::instance::{Instance, database_url};
use crate::load::{Browser, Record, requests_in_database, seed};
use crate::support::start_cluster;

const CLIENTS: usize = 8;
const DOWN: Duration = Duration::from_secs(10);
const RECOVERY: Duration = Duration::from_secs(5);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_outage_under_load_answers_503_loses_nothing_and_recovers() {
    let _turn = crate::one_at_a_time().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    let cluster = tokio::task::spawn_blocking(move || start_cluster(&path))
        .await
        .unwrap();
    portcullis::pg_cluster::ensure_database(&cluster, "portcullis")
        .await
        .unwrap();
    let options = cluster.connect_options("portcullis");
    let db = sqlx::PgPool::connect_with(options.clone()).await.unwrap();
    portcullis::db::MIGRATOR.run(&db).await.unwrap();
    seed(&db, CLIENTS).await;
    db.close().await;

    let url = database_url(&options);
    let mut server = Instance::start(&[("DATABASE_URL", url.as_str())]);
    server.wait_ready().await;
    let base = server.url("");

    // Half the users walk the wizard again and again, half read their dashboard.
    let record = Record::default();
    let (stop, stopped) = watch::channel(false);
    let mut clients = Vec::new();
    for i in 1..=CLIENTS {
        let browser = Browser::new(&base, &record);
        let stopped = stopped.clone();
        clients.push(tokio::spawn(async move {
            let limit = Duration::from_secs(40);
            browser.sign_in(&format!("load{i}"), limit).await;
            let mut posted = Vec::new();
            let mut finished = Vec::new();
            while !*stopped.borrow() {
                if i % 2 == 0 {
                    let resource = crate::load::RESOURCES[(i / 2) % 2];
                    let draft = browser
                        .request_session(resource, limit, |d| posted.push(d.to_owned()))
                        .await;
                    finished.push(draft);
                } else {
                    browser.get("/dashboard").await;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
            (posted, finished)
        }));
    }

    tokio::time::sleep(Duration::from_secs(3)).await;
    let stopping = Instant::now();
    tokio::task::spawn_blocking(move || cluster.stop().unwrap())
        .await
        .unwrap();
    let down = Instant::now();
    tokio::time::sleep(DOWN).await;
    assert!(server.running(), "the server survived the outage");
    let restarting = Instant::now();
    let path = dir.path().to_path_buf();
    let cluster = tokio::task::spawn_blocking(move || start_cluster(&path))
        .await
        .unwrap();
    let back = Instant::now();
    tokio::time::sleep(RECOVERY + Duration::from_secs(2)).await;
    stop.send(true).unwrap();

    let mut posted = BTreeSet::new();
    let mut finished = BTreeSet::new();
    for client in clients {
        let (p, f) = client.await.unwrap();
        posted.extend(p);
        finished.extend(f);
    }
    assert!(server.running(), "the server is still up");
    let log = server.log();
    assert!(!log.contains("panicked"), "no panic:\n{log}");

    let outcomes = record.all();
    let failures: Vec<_> = outcomes
        .iter()
        .filter(|o| match &o.status {
            Ok(s) => !matches!(
                *s,
                StatusCode::OK | StatusCode::SEE_OTHER | StatusCode::SERVICE_UNAVAILABLE
            ),
            Err(_) => true,
        })
        .collect();
    assert!(
        failures.is_empty(),
        "only 200, 303 and 503, and no broken connection: {failures:#?}\n{log}"
    );
    let unavailable: Vec<_> = outcomes
        .iter()
        .filter(|o| o.status == Ok(StatusCode::SERVICE_UNAVAILABLE))
        .collect();
    assert!(
        !unavailable.is_empty(),
        "the outage was noticed by the clients"
    );
    let early = unavailable.iter().filter(|o| o.received < stopping).count();
    assert_eq!(early, 0, "no 503 before the database stopped");
    let late: Vec<_> = unavailable
        .iter()
        .filter(|o| o.sent > back + RECOVERY)
        .collect();
    assert!(
        late.is_empty(),
        "503 more than {RECOVERY:?} after the database returned: {late:#?}"
    );
    let served_while_down = outcomes
        .iter()
        .filter(|o| o.sent > down && o.received < restarting && o.status.is_ok())
        .filter(|o| o.status != Ok(StatusCode::SERVICE_UNAVAILABLE))
        .count();
    assert_eq!(served_while_down, 0, "only 503 while the database is down");
    let first_ok = outcomes
        .iter()
        .filter(|o| o.sent >= back && o.status == Ok(StatusCode::OK))
        .map(|o| o.received)
        .min()
        .expect("a 200 after the database returned");
    let recovery = first_ok - back;
    assert!(
        recovery < RECOVERY,
        "first 200 came {recovery:?} after the database returned"
    );
    eprintln!(
        "outage: {} responses, {} of them 503, {} requests finished; first 200 {recovery:?} \
         after the database returned",
        outcomes.len(),
        unavailable.len(),
        finished.len()
    );

    // Every Finish that was posted ended in its success redirect (the clients retried), and
    // the database holds exactly those requests, each once with its one session.
    assert!(!finished.is_empty());
    assert_eq!(posted, finished, "every posted Finish succeeded in the end");
    let db = sqlx::PgPool::connect_with(cluster.connect_options("portcullis"))
        .await
        .unwrap();
    let stored = requests_in_database(&db).await;
    let ids: BTreeSet<String> = stored.iter().map(|(id, _)| id.clone()).collect();
    assert_eq!(ids, finished, "exactly the finished requests are stored");
    assert!(
        stored.iter().all(|(_, sessions)| *sessions == 1),
        "one session each: {stored:?}"
    );
    db.close().await;

    drop(server);
    tokio::task::spawn_blocking(move || cluster.stop().unwrap())
        .await
        .unwrap();
}
