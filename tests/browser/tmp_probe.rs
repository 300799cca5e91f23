use crate::harness::Browser;
use crate::support::spawn_app;

#[tokio::test(flavor = "multi_thread")]
async fn probe_timing() {
    let t = std::time::Instant::now();
    let app = spawn_app().await;
    eprintln!("spawn_app {:?}", t.elapsed());
    let t = std::time::Instant::now();
    app.seed_demo().await;
    eprintln!("seed {:?}", t.elapsed());
    let t = std::time::Instant::now();
    let b = Browser::new().await;
    eprintln!("browser {:?}", t.elapsed());
    let t = std::time::Instant::now();
    b.login(&app, "alice", "portcullis-demo").await;
    eprintln!("login {:?}", t.elapsed());
    let t = std::time::Instant::now();
    assert_eq!(b.text("h1").await, "Dashboard");
    eprintln!("text {:?}", t.elapsed());
    let t = std::time::Instant::now();
    b.close().await;
    eprintln!("close {:?}", t.elapsed());
}
