//! Email notifications: session events queue emails, which a sender pass delivers to a real
//! SMTP server (a small sink speaking SMTP on a random port, in this module).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use portcullis::notify::{self, Mailer, SmtpConfig, SmtpTls};
use reqwest::StatusCode;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use uuid::Uuid;

use crate::support::{TestApp, spawn_demo_app};
use crate::wizard::{Request, request};

const PUBLIC_URL: &str = "https://portcullis.example";

// ---------------------------------------------------------------------------------------
// The SMTP sink

/// How the sink answers.
#[derive(Debug, Clone, PartialEq)]
enum Mode {
    Accept,
    /// 451 to DATA: every message is refused, for now.
    RefuseData,
    /// 450 to RCPT for this address only.
    RefuseRecipient(String),
}

/// A message the sink took.
#[derive(Debug, Clone)]
struct Mail {
    /// Envelope recipients.
    to: Vec<String>,
    /// The message as sent (headers and encoded body), dot-unstuffed.
    data: String,
}

impl Mail {
    fn only_recipient(&self) -> &str {
        assert_eq!(self.to.len(), 1, "one recipient per email");
        &self.to[0]
    }

    fn header(&self, name: &str) -> String {
        let (head, _) = self.data.split_once("\r\n\r\n").unwrap();
        let unfolded = head.replace("\r\n ", " ").replace("\r\n\t", " ");
        unfolded
            .split("\r\n")
            .find_map(|l| {
                let (n, v) = l.split_once(':')?;
                n.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
            })
            .unwrap_or_default()
    }

    fn subject(&self) -> String {
        self.header("Subject")
    }

    /// The body, decoded from quoted-printable where lettre chose it.
    fn body(&self) -> String {
        let (_, body) = self.data.split_once("\r\n\r\n").unwrap();
        let encoding = self.header("Content-Transfer-Encoding");
        let text = match encoding.as_str() {
            "quoted-printable" => decode_quoted_printable(body),
            "7bit" | "" => body.to_owned(),
            other => panic!("unexpected encoding {other}"),
        };
        text.replace("\r\n", "\n")
    }
}

fn decode_quoted_printable(s: &str) -> String {
    let s = s.replace("=\r\n", "");
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'=' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
            out.push(u8::from_str_radix(hex, 16).unwrap());
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

/// An SMTP server that keeps what it is sent.
struct Sink {
    address: SocketAddr,
    mails: Arc<Mutex<Vec<Mail>>>,
    mode: Arc<Mutex<Mode>>,
}

impl Sink {
    async fn start() -> Sink {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let mails = Arc::new(Mutex::new(Vec::new()));
        let mode = Arc::new(Mutex::new(Mode::Accept));
        let (m, md) = (mails.clone(), mode.clone());
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve_smtp(stream, m.clone(), md.clone()));
            }
        });
        Sink {
            address,
            mails,
            mode,
        }
    }

    fn set_mode(&self, mode: Mode) {
        *self.mode.lock().unwrap() = mode;
    }

    /// The messages received since the last call, by recipient.
    fn take(&self) -> Vec<Mail> {
        let mut mails = std::mem::take(&mut *self.mails.lock().unwrap());
        mails.sort_by(|a, b| a.to.cmp(&b.to));
        mails
    }

    fn config(&self) -> SmtpConfig {
        smtp_config(self.address.port())
    }

    fn mailer(&self) -> Mailer {
        Mailer::new(&self.config()).unwrap()
    }
}

fn smtp_config(port: u16) -> SmtpConfig {
    SmtpConfig {
        host: Some("127.0.0.1".into()),
        port,
        tls: SmtpTls::None,
        username: None,
        password: None,
        from: "Portcullis <portcullis@example.test>".parse().unwrap(),
        public_url: Some(PUBLIC_URL.into()),
    }
}

async fn reply(w: &mut tokio::net::tcp::OwnedWriteHalf, text: &str) -> bool {
    w.write_all(text.as_bytes()).await.is_ok()
}

async fn serve_smtp(stream: TcpStream, mails: Arc<Mutex<Vec<Mail>>>, mode: Arc<Mutex<Mode>>) {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read);
    if !reply(&mut write, "220 sink.test ESMTP\r\n").await {
        return;
    }
    let mut to = Vec::new();
    loop {
        let mut line = String::new();
        if lines.read_line(&mut line).await.unwrap_or(0) == 0 {
            return;
        }
        let command = line.trim_end().to_owned();
        let verb = command
            .split([' ', ':'])
            .next()
            .unwrap_or("")
            .to_ascii_uppercase();
        let current = mode.lock().unwrap().clone();
        let answer = match verb.as_str() {
            "EHLO" => "250-sink.test\r\n250 8BITMIME\r\n".to_owned(),
            "HELO" | "NOOP" => "250 OK\r\n".to_owned(),
            "MAIL" => {
                to.clear();
                "250 OK\r\n".to_owned()
            }
            "RCPT" => {
                let address = command
                    .split_once('<')
                    .and_then(|(_, r)| r.split_once('>'))
                    .map(|(a, _)| a.to_owned())
                    .unwrap_or_default();
                if current == Mode::RefuseRecipient(address.clone()) {
                    "450 4.2.1 Mailbox busy, try later\r\n".to_owned()
                } else {
                    to.push(address);
                    "250 OK\r\n".to_owned()
                }
            }
            "DATA" if current == Mode::RefuseData => {
                "451 4.3.0 Local problem, try later\r\n".to_owned()
            }
            "DATA" => {
                if !reply(&mut write, "354 End data with <CR><LF>.<CR><LF>\r\n").await {
                    return;
                }
                let mut data = String::new();
                loop {
                    let mut l = String::new();
                    if lines.read_line(&mut l).await.unwrap_or(0) == 0 {
                        return;
                    }
                    if l == ".\r\n" {
                        break;
                    }
                    data.push_str(l.strip_prefix('.').unwrap_or(&l));
                }
                mails.lock().unwrap().push(Mail {
                    to: std::mem::take(&mut to),
                    data,
                });
                "250 OK queued\r\n".to_owned()
            }
            "RSET" => {
                to.clear();
                "250 OK\r\n".to_owned()
            }
            "QUIT" => {
                reply(&mut write, "221 Bye\r\n").await;
                return;
            }
            _ => "500 Unknown command\r\n".to_owned(),
        };
        if !reply(&mut write, &answer).await {
            return;
        }
    }
}

// ---------------------------------------------------------------------------------------
// Helpers

/// The demo data, with email addresses for alice, bob, carol and dave (erin has none).
async fn demo_app() -> TestApp {
    let app = spawn_demo_app().await;
    sqlx::query(
        "UPDATE users SET email = username || '@example.test'
         WHERE username IN ('alice', 'bob', 'carol', 'dave')",
    )
    .execute(&app.db)
    .await
    .unwrap();
    app
}

/// Alice asks for Linux administration (Standard profile: tier 1 is group Approvers, that is
/// bob and dave) on the given servers.
async fn alice_requests(app: &TestApp, resources: &[&str]) {
    let page = app
        .login_with(&app.client, "alice", "portcullis-demo")
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    let finish = request(
        app,
        &app.client,
        &Request {
            activity: "Linux administration",
            policy: Some("Linux operations"),
            resources,
            notes: "x",
            ticket: "",
            at: None,
        },
    )
    .await;
    assert_eq!(finish.location(), "/dashboard", "{}", finish.body);
}

async fn session_ids(app: &TestApp) -> Vec<Uuid> {
    sqlx::query_scalar("SELECT id FROM activity_sessions ORDER BY resource_name")
        .fetch_all(&app.db)
        .await
        .unwrap()
}

/// A decision as the approvals code makes it: the status change and its event (and the
/// approver's decision row), in one transaction.
async fn decide(app: &TestApp, session: Uuid, approver: &str, kind: &str, to: &str, comment: &str) {
    let mut tx = app.db.begin().await.unwrap();
    sqlx::query(
        "UPDATE activity_sessions SET status = $2::session_status, current_tier = NULL,
             ended_at = CASE WHEN $2 = 'approval_denied' THEN now() END
         WHERE id = $1 AND status = 'waiting_for_approval'",
    )
    .bind(session)
    .bind(to)
    .execute(&mut *tx)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO approval_decisions (id, session_id, tier, approver_id, decision, comment)
         SELECT $1, $2, 1, u.id, $4::approval_decision, $5 FROM users u WHERE u.username = $3",
    )
    .bind(Uuid::now_v7())
    .bind(session)
    .bind(approver)
    .bind(if kind == "denied" {
        "denied"
    } else {
        "approved"
    })
    .bind(comment)
    .execute(&mut *tx)
    .await
    .unwrap();
    let event_comment = if kind == "denied" {
        comment.to_owned()
    } else {
        format!("Approved: {comment}")
    };
    sqlx::query(
        "INSERT INTO session_events (session_id, actor_id, actor_name, kind, from_status, to_status, comment)
         SELECT $1, u.id, u.display_name, $3::session_event_kind, 'waiting_for_approval', $4::session_status, $5
         FROM users u WHERE u.username = $2",
    )
    .bind(session)
    .bind(approver)
    .bind(kind)
    .bind(to)
    .bind(event_comment)
    .execute(&mut *tx)
    .await
    .unwrap();
    tx.commit().await.unwrap();
}

async fn status_of(app: &TestApp, session: Uuid) -> String {
    sqlx::query_scalar("SELECT status::text FROM activity_sessions WHERE id = $1")
        .bind(session)
        .fetch_one(&app.db)
        .await
        .unwrap()
}

/// (attempts, seconds until the next attempt, sent, last error) of every queue row.
async fn queue_rows(app: &TestApp) -> Vec<(i32, Option<f64>, bool, Option<String>)> {
    sqlx::query_as(
        "SELECT attempts, extract(epoch FROM next_attempt_at - now())::float8,
                sent_at IS NOT NULL, last_error
         FROM notifications ORDER BY id",
    )
    .fetch_all(&app.db)
    .await
    .unwrap()
}

async fn make_all_due(app: &TestApp) {
    sqlx::query(
        "UPDATE notifications SET next_attempt_at = now() WHERE next_attempt_at IS NOT NULL",
    )
    .execute(&app.db)
    .await
    .unwrap();
}

/// One sender pass, once the request's latest events have settled.
async fn pass(app: &TestApp, mailer: &Mailer) -> usize {
    tokio::time::sleep(notify::SETTLE).await;
    notify::send_due(&app.db, mailer).await.unwrap()
}

fn recipients(mails: &[Mail]) -> Vec<&str> {
    mails.iter().map(Mail::only_recipient).collect()
}

fn assert_contains(text: &str, expected: &[&str]) {
    for e in expected {
        assert!(text.contains(e), "{e:?} missing from:\n{text}");
    }
}

// ---------------------------------------------------------------------------------------
// Tests

#[tokio::test]
async fn a_standard_request_emails_the_approvers_of_its_tier_but_not_the_requester() {
    let app = demo_app().await;
    let sink = Sink::start().await;
    alice_requests(&app, &["lnx-web-01"]).await;

    let sent = pass(&app, &sink.mailer()).await;

    assert_eq!(sent, 2);
    let mails = sink.take();
    assert_eq!(
        recipients(&mails),
        ["bob@example.test", "dave@example.test"]
    );
    let bob = &mails[0];
    assert_eq!(
        bob.subject(),
        "Approval needed: Linux administration on lnx-web-01 for Alice Archer"
    );
    assert_eq!(bob.header("To"), "\"Bob Brennan\" <bob@example.test>");
    assert_eq!(bob.header("From"), "Portcullis <portcullis@example.test>");
    assert_contains(
        &bob.body(),
        &[
            "Hello Bob Brennan,",
            "Alice Archer requested an activity session that needs your decision.",
            "Status: Waiting for Approval (tier 1 of 1).",
            "Activity: Linux administration",
            "Requested By: Alice Archer",
            "Resource: lnx-web-01",
            "(Europe/London)", // Bob's time zone
            "Notes: x",
            &format!(
                "Approve or Deny on the request's page: https://portcullis.example/requests/{}",
                request_id(&app).await
            ),
        ],
    );
    assert_contains(&mails[1].body(), &["Hello Dave Dumont,", "(Etc/UTC)"]);

    // A second pass sends nothing more.
    assert_eq!(pass(&app, &sink.mailer()).await, 0);
    assert!(sink.take().is_empty());
    assert_eq!(queue_rows(&app).await, [(0, None, true, None)]);
}

#[tokio::test]
async fn two_sessions_of_one_request_make_one_email_per_approver() {
    let app = demo_app().await;
    let sink = Sink::start().await;
    alice_requests(&app, &["lnx-web-01", "lnx-web-02"]).await;

    pass(&app, &sink.mailer()).await;

    let mails = sink.take();
    assert_eq!(
        recipients(&mails),
        ["bob@example.test", "dave@example.test"]
    );
    assert_eq!(
        mails[0].subject(),
        "Approval needed: Linux administration on lnx-web-01, lnx-web-02 for Alice Archer"
    );
    assert_contains(
        &mails[0].body(),
        &["Resources:\n  lnx-web-01\n  lnx-web-02\n"],
    );
    let sent: i64 =
        sqlx::query_scalar("SELECT count(*) FROM notifications WHERE sent_at IS NOT NULL")
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(sent, 2, "both sessions' rows are done");
}

#[tokio::test]
async fn an_approval_emails_the_requester_with_the_status_comment_and_link() {
    let app = demo_app().await;
    let sink = Sink::start().await;
    alice_requests(&app, &["lnx-web-01"]).await;
    pass(&app, &sink.mailer()).await;
    sink.take();
    let [session] = session_ids(&app).await[..] else {
        panic!("one session")
    };

    decide(&app, session, "bob", "approved", "provisioning", "Go ahead").await;
    pass(&app, &sink.mailer()).await;

    let mails = sink.take();
    assert_eq!(recipients(&mails), ["alice@example.test"]);
    assert_eq!(
        mails[0].subject(),
        "Approved: Linux administration on lnx-web-01"
    );
    assert_contains(
        &mails[0].body(),
        &[
            "Hello Alice Archer,",
            "was approved by Bob Brennan.",
            "Comment: Go ahead",
            "Status: Provisioning",
            "(Europe/Berlin)",
            &format!("Details: https://portcullis.example/sessions/{session}"),
            &format!(
                "Request: https://portcullis.example/requests/{}",
                request_id(&app).await
            ),
        ],
    );
}

#[tokio::test]
async fn sessions_of_one_request_decided_one_by_one_make_one_email() {
    let app = demo_app().await;
    let sink = Sink::start().await;
    alice_requests(&app, &["lnx-web-01", "lnx-web-02"]).await;
    pass(&app, &sink.mailer()).await;
    sink.take();
    let ids = session_ids(&app).await;

    // The approvals page decides each ticked session in a transaction of its own.
    decide(&app, ids[0], "bob", "approved", "provisioning", "").await;
    decide(&app, ids[1], "bob", "approved", "provisioning", "").await;
    assert_eq!(pass(&app, &sink.mailer()).await, 1);

    let mails = sink.take();
    assert_eq!(recipients(&mails), ["alice@example.test"]);
    assert_eq!(
        mails[0].subject(),
        "Approved: Linux administration on lnx-web-01, lnx-web-02"
    );
    assert_contains(
        &mails[0].body(),
        &["was approved by Bob Brennan.", "Status: Provisioning"],
    );
}

#[tokio::test]
async fn a_denial_emails_the_requester_with_the_reason() {
    let app = demo_app().await;
    let sink = Sink::start().await;
    alice_requests(&app, &["lnx-web-01"]).await;
    let [session] = session_ids(&app).await[..] else {
        panic!("one session")
    };
    pass(&app, &sink.mailer()).await;
    sink.take();

    decide(
        &app,
        session,
        "dave",
        "denied",
        "approval_denied",
        "Not during the freeze.",
    )
    .await;
    pass(&app, &sink.mailer()).await;

    let mails = sink.take();
    assert_eq!(recipients(&mails), ["alice@example.test"]);
    assert_eq!(
        mails[0].subject(),
        "Approval Denied: Linux administration on lnx-web-01"
    );
    assert_contains(
        &mails[0].body(),
        &[
            "was denied by Dave Dumont. Status: Approval Denied.",
            "Reason: Not during the freeze.",
        ],
    );
}

#[tokio::test]
async fn an_expiry_by_the_worker_emails_the_requester() {
    let app = demo_app().await;
    let sink = Sink::start().await;
    alice_requests(&app, &["lnx-web-01", "lnx-web-02"]).await;
    pass(&app, &sink.mailer()).await;
    sink.take();

    sqlx::query("UPDATE requests SET decision_deadline = now() - interval '1 minute'")
        .execute(&app.db)
        .await
        .unwrap();
    portcullis::worker::tick(&app.db, &app.secrets)
        .await
        .unwrap();
    pass(&app, &sink.mailer()).await;

    let mails = sink.take();
    assert_eq!(
        recipients(&mails),
        ["alice@example.test"],
        "one email for both sessions"
    );
    assert_eq!(
        mails[0].subject(),
        "Expired: Linux administration on lnx-web-01, lnx-web-02"
    );
    assert_contains(
        &mails[0].body(),
        &["received no decision in time. Status: Expired."],
    );
}

#[tokio::test]
async fn a_satisfied_tier_asks_the_next_tier_only() {
    let app = demo_app().await;
    let sink = Sink::start().await;
    app.login_with(&app.client, "alice", "portcullis-demo")
        .await;
    request(
        &app,
        &app.client,
        &Request {
            activity: "Domain administration",
            policy: None,
            resources: &["win-dc-01"],
            notes: "Rotate keys",
            ticket: "CHG000042",
            at: None,
        },
    )
    .await;
    pass(&app, &sink.mailer()).await;
    let first = sink.take();
    assert_eq!(
        recipients(&first),
        ["bob@example.test", "dave@example.test"]
    );
    assert_contains(
        &first[0].body(),
        &["(tier 1 of 2)", "Ticket Number: CHG000042"],
    );

    // Bob approves tier 1; tier 2 (Carol) now decides.
    let [session] = session_ids(&app).await[..] else {
        panic!("one session")
    };
    sqlx::query("UPDATE activity_sessions SET current_tier = 2 WHERE id = $1")
        .bind(session)
        .execute(&app.db)
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO session_events (session_id, actor_name, kind, from_status, to_status, comment)
         VALUES ($1, 'Bob Brennan', 'tier_approved', 'waiting_for_approval', 'waiting_for_approval',
                 'Tier 1 of 2 approved; waiting for tier 2.')",
    )
    .bind(session)
    .execute(&app.db)
    .await
    .unwrap();
    pass(&app, &sink.mailer()).await;

    let second = sink.take();
    assert_eq!(recipients(&second), ["carol@example.test"]);
    assert_contains(
        &second[0].body(),
        &["Hello Carol Chen,", "(tier 2 of 2)", "(America/New_York)"],
    );
}

#[tokio::test]
async fn requesters_are_not_asked_to_approve_their_own_request_unless_allowed() {
    let app = demo_app().await;
    let sink = Sink::start().await;
    sqlx::query(
        "INSERT INTO group_members (group_id, user_id)
         SELECT g.id, u.id FROM groups g, users u WHERE g.name = 'Approvers' AND u.username = 'alice'",
    )
    .execute(&app.db)
    .await
    .unwrap();
    alice_requests(&app, &["lnx-web-01"]).await;
    pass(&app, &sink.mailer()).await;
    assert_eq!(
        recipients(&sink.take()),
        ["bob@example.test", "dave@example.test"]
    );

    sqlx::query(
        "UPDATE connection_profiles SET allow_self_approval = true WHERE name = 'Standard'",
    )
    .execute(&app.db)
    .await
    .unwrap();
    alice_requests(&app, &["lnx-web-02"]).await;
    pass(&app, &sink.mailer()).await;
    assert_eq!(
        recipients(&sink.take()),
        [
            "alice@example.test",
            "bob@example.test",
            "dave@example.test"
        ]
    );
}

#[tokio::test]
async fn approvers_who_are_disabled_or_have_no_email_are_skipped() {
    let app = demo_app().await;
    let sink = Sink::start().await;
    sqlx::query("UPDATE users SET disabled = true WHERE username = 'dave'")
        .execute(&app.db)
        .await
        .unwrap();
    alice_requests(&app, &["lnx-web-01"]).await;
    pass(&app, &sink.mailer()).await;
    assert_eq!(recipients(&sink.take()), ["bob@example.test"]);

    // Nobody to write to: the row is done, with nobody reached.
    sqlx::query("UPDATE users SET email = NULL WHERE username = 'bob'")
        .execute(&app.db)
        .await
        .unwrap();
    alice_requests(&app, &["lnx-web-02"]).await;
    assert_eq!(pass(&app, &sink.mailer()).await, 0);
    assert!(sink.take().is_empty());
    let reached: Vec<i32> = sqlx::query_scalar(
        "SELECT cardinality(delivered_to) FROM notifications WHERE sent_at IS NOT NULL ORDER BY id",
    )
    .fetch_all(&app.db)
    .await
    .unwrap();
    assert_eq!(reached, [1, 0]);
}

#[tokio::test]
async fn an_approval_request_decided_before_its_email_went_out_is_not_sent() {
    let app = demo_app().await;
    let sink = Sink::start().await;
    alice_requests(&app, &["lnx-web-01"]).await;
    let [session] = session_ids(&app).await[..] else {
        panic!("one session")
    };
    decide(&app, session, "bob", "approved", "provisioning", "").await;

    pass(&app, &sink.mailer()).await;

    let mails = sink.take();
    assert_eq!(recipients(&mails), ["alice@example.test"]);
    assert_eq!(
        mails[0].subject(),
        "Approved: Linux administration on lnx-web-01"
    );
    let skipped: Vec<String> =
        sqlx::query_scalar("SELECT skipped FROM notifications WHERE skipped IS NOT NULL")
            .fetch_all(&app.db)
            .await
            .unwrap();
    assert_eq!(skipped, ["no longer waiting at tier 1 (now Provisioning)"]);
}

#[tokio::test]
async fn the_ten_minute_warning_is_sent_once_per_end_time() {
    let app = demo_app().await;
    let sink = Sink::start().await;
    app.login_with(&app.client, "alice", "portcullis-demo")
        .await;
    // Self-service: Available at once, no approval, so no email yet.
    request(
        &app,
        &app.client,
        &Request {
            activity: "Web console access",
            policy: None,
            resources: &["Grafana"],
            notes: "",
            ticket: "",
            at: None,
        },
    )
    .await;
    let [session] = session_ids(&app).await[..] else {
        panic!("one session")
    };
    assert_eq!(status_of(&app, session).await, "available");
    assert_eq!(pass(&app, &sink.mailer()).await, 0);

    // 52 minutes later: 8 minutes left.
    sqlx::query(
        "UPDATE activity_sessions SET available_at = now() - interval '52 minutes',
             requested_start = now() - interval '52 minutes', ends_at = now() + interval '8 minutes'",
    )
    .execute(&app.db)
    .await
    .unwrap();
    assert_eq!(pass(&app, &sink.mailer()).await, 1);
    assert_eq!(pass(&app, &sink.mailer()).await, 0);
    let mails = sink.take();
    assert_eq!(recipients(&mails), ["alice@example.test"]);
    assert_eq!(
        mails[0].subject(),
        "Ends in 10 minutes: Web console access on Grafana"
    );
    assert_contains(
        &mails[0].body(),
        &[
            "will end in about 10 minutes",
            "Need more time? Use Extend on the session's page before it ends.",
        ],
    );

    // Extended: the new end earns its own warning, once.
    sqlx::query(
        "UPDATE activity_sessions SET ends_at = ends_at + interval '1 minute', extensions_used = 1",
    )
    .execute(&app.db)
    .await
    .unwrap();
    assert_eq!(pass(&app, &sink.mailer()).await, 1);
    assert_eq!(pass(&app, &sink.mailer()).await, 0);
    let mails = sink.take();
    assert_eq!(mails.len(), 1);
    assert!(
        !mails[0].body().contains("Extend"),
        "no extension left: Extend is not offered"
    );
}

#[tokio::test]
async fn a_refusing_server_leaves_the_row_queued_and_the_session_untouched() {
    let app = demo_app().await;
    let sink = Sink::start().await;
    sink.set_mode(Mode::RefuseData);
    alice_requests(&app, &["lnx-web-01"]).await;

    assert_eq!(pass(&app, &sink.mailer()).await, 0);

    assert!(sink.take().is_empty());
    let [(attempts, next, sent, error)] = &queue_rows(&app).await[..] else {
        panic!("one row")
    };
    assert_eq!((*attempts, *sent), (1, false));
    let next = next.expect("a next attempt");
    assert!((25.0..=35.0).contains(&next), "retry in about 30 s: {next}");
    assert!(error.as_deref().unwrap().contains("451"), "{error:?}");
    let [session] = session_ids(&app).await[..] else {
        panic!("one session")
    };
    assert_eq!(status_of(&app, session).await, "waiting_for_approval");

    // Not due yet: nothing is tried.
    assert_eq!(pass(&app, &sink.mailer()).await, 0);
    assert_eq!(queue_rows(&app).await[0].0, 1);

    // The server is back and the retry is due.
    sink.set_mode(Mode::Accept);
    make_all_due(&app).await;
    assert_eq!(pass(&app, &sink.mailer()).await, 2);
    assert_eq!(
        recipients(&sink.take()),
        ["bob@example.test", "dave@example.test"]
    );
    assert!(queue_rows(&app).await[0].2, "sent");
}

#[tokio::test]
async fn an_unreachable_server_counts_attempts_and_gives_up_after_eight() {
    let app = demo_app().await;
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let mailer = Mailer::new(&smtp_config(closed)).unwrap();
    alice_requests(&app, &["lnx-web-01"]).await;

    assert_eq!(pass(&app, &mailer).await, 0);
    let [(attempts, next, _, error)] = &queue_rows(&app).await[..] else {
        panic!("one row")
    };
    assert_eq!(*attempts, 1);
    assert!(next.is_some());
    assert!(error.is_some());

    sqlx::query("UPDATE notifications SET attempts = 7, next_attempt_at = now()")
        .execute(&app.db)
        .await
        .unwrap();
    pass(&app, &mailer).await;
    let [(attempts, next, sent, error)] = &queue_rows(&app).await[..] else {
        panic!("one row")
    };
    assert_eq!((*attempts, *next, *sent), (8, None, false), "given up");
    assert!(error.is_some(), "the last error is kept");
}

#[tokio::test]
async fn starttls_is_required_when_configured_and_never_falls_back_to_plain_text() {
    let app = demo_app().await;
    let sink = Sink::start().await; // offers no STARTTLS
    let mailer = Mailer::new(&SmtpConfig {
        tls: SmtpTls::Starttls,
        ..sink.config()
    })
    .unwrap();
    alice_requests(&app, &["lnx-web-01"]).await;

    assert_eq!(pass(&app, &mailer).await, 0);

    assert!(sink.take().is_empty(), "nothing sent in the clear");
    let [(attempts, next, sent, error)] = &queue_rows(&app).await[..] else {
        panic!("one row")
    };
    assert_eq!((*attempts, next.is_some(), *sent), (1, true, false));
    assert!(error.is_some());
}

#[tokio::test]
async fn a_retry_reaches_only_the_approvers_not_yet_mailed() {
    let app = demo_app().await;
    let sink = Sink::start().await;
    sink.set_mode(Mode::RefuseRecipient("dave@example.test".into()));
    alice_requests(&app, &["lnx-web-01"]).await;

    assert_eq!(pass(&app, &sink.mailer()).await, 1);
    assert_eq!(recipients(&sink.take()), ["bob@example.test"]);
    assert_eq!(queue_rows(&app).await[0].0, 1, "an attempt counted");

    sink.set_mode(Mode::Accept);
    make_all_due(&app).await;
    assert_eq!(pass(&app, &sink.mailer()).await, 1);
    assert_eq!(recipients(&sink.take()), ["dave@example.test"]);
}

#[tokio::test]
async fn events_that_need_no_email_queue_nothing() {
    let app = demo_app().await;
    app.login_with(&app.client, "alice", "portcullis-demo")
        .await;
    request(
        &app,
        &app.client,
        &Request {
            activity: "Web console access",
            policy: None,
            resources: &["Grafana"],
            notes: "",
            ticket: "",
            at: None,
        },
    )
    .await;
    let (events, queued): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM session_events), (SELECT count(*) FROM notifications)",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert!(events >= 2, "requested and provisioned");
    assert_eq!(queued, 0);
}

#[tokio::test]
async fn rows_older_than_a_day_are_dropped_unsent() {
    let app = demo_app().await;
    let sink = Sink::start().await;
    alice_requests(&app, &["lnx-web-01"]).await;
    sqlx::query("UPDATE notifications SET created_at = now() - interval '2 days'")
        .execute(&app.db)
        .await
        .unwrap();

    assert_eq!(pass(&app, &sink.mailer()).await, 0);

    assert!(sink.take().is_empty());
    let skipped: Option<String> = sqlx::query_scalar("SELECT skipped FROM notifications")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(
        skipped.as_deref(),
        Some("older than a day when its turn came")
    );
}

#[tokio::test]
async fn the_sender_task_sends_by_itself_and_stops_when_asked() {
    let app = demo_app().await;
    let sink = Sink::start().await;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(notify::run(app.db.clone(), sink.config(), stopped));
    alice_requests(&app, &["lnx-web-01"]).await;

    let mut mails = Vec::new();
    for _ in 0..100 {
        mails.extend(sink.take());
        if mails.len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(mails.len(), 2, "both approvers mailed within 10 s");

    stop.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(15), task)
        .await
        .expect("the sender stops")
        .unwrap();
}

#[tokio::test]
async fn without_an_smtp_host_the_sender_returns_at_once_and_rows_wait() {
    let app = demo_app().await;
    let (_stop, stopped) = tokio::sync::watch::channel(false);
    let config = SmtpConfig {
        host: None,
        ..smtp_config(25)
    };
    assert!(matches!(
        Mailer::new(&config),
        Err(notify::MailerError::NotConfigured)
    ));
    tokio::time::timeout(
        Duration::from_secs(1),
        notify::run(app.db.clone(), config, stopped),
    )
    .await
    .expect("returns at once");

    alice_requests(&app, &["lnx-web-01"]).await;
    let queued: i64 =
        sqlx::query_scalar("SELECT count(*) FROM notifications WHERE next_attempt_at IS NOT NULL")
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(queued, 1, "queued, not sent");
}

/// The one request's id.
async fn request_id(app: &TestApp) -> Uuid {
    sqlx::query_scalar("SELECT id FROM requests")
        .fetch_one(&app.db)
        .await
        .unwrap()
}
