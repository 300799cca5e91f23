//! The connection to the target, for both front doors (the SSH gateway, and the browser
//! terminal): [`open_terminal`] runs the session checks, logs in upstream as the session's
//! login account with the credential the provisioner made (the user never sees it), pins the
//! host key as provisioning does, records the connection, moves Available to Logged In, and
//! keeps the connection only as long as the session allows it (see [`pump`]).

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use russh::client;
use russh::keys::PublicKey;
use tokio::sync::mpsc;
use uuid::Uuid;

use super::Refusal;
use super::checks::{self, Allowed};
use crate::db;
use crate::db::recordings::{Mode, NewRecording, Via};
use crate::db::sessions::{Actor, NewEvent};
use crate::domain::event::EventKind;
use crate::domain::status::{SessionStatus, Transition};
use crate::recording::Recorder;
use crate::state::AppState;

mod pump;

/// Which session: as named by a connection string (the gateway), or by its id (the browser
/// terminal, behind the signed-in web session).
pub enum Door {
    ConnectionString(String),
    Session(Uuid),
}

/// What the client asked for on its channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Start {
    Shell,
    Exec(String),
    Subsystem(String),
}

/// The client's terminal, when it asked for one.
#[derive(Debug, Clone)]
pub struct Pty {
    pub term: String,
    pub cols: u32,
    pub rows: u32,
}

/// One connection's request.
pub struct Request {
    pub user: Uuid,
    pub door: Door,
    pub via: Via,
    pub start: Start,
    pub pty: Option<Pty>,
    pub client: Option<IpAddr>,
}

/// What the user's side sends.
#[derive(Debug)]
pub enum Input {
    Data(Vec<u8>),
    Resize { cols: u32, rows: u32 },
    Eof,
}

/// What the user's side receives; `Closed` is last, with the line saying why when Portcullis
/// closed the connection.
#[derive(Debug, PartialEq, Eq)]
pub enum Output {
    Data(bytes::Bytes),
    Stderr(bytes::Bytes),
    Exit(u32),
    Closed(Option<String>),
}

/// A live connection to the target.
pub struct Terminal {
    pub input: mpsc::Sender<Input>,
    pub output: mpsc::Receiver<Output>,
    pub recording: Uuid,
}

struct Pinned {
    key: Option<PublicKey>,
    mismatch: Arc<AtomicBool>,
}

impl client::Handler for Pinned {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        offered: &russh::keys::PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        let same = match (offered, &self.key) {
            (russh::keys::PublicKeyOrCertificate::PublicKey { key, .. }, Some(pinned)) => {
                key.key_data() == pinned.key_data()
            }
            _ => false,
        };
        self.mismatch.store(!same, Ordering::Relaxed);
        Ok(same)
    }
}

fn refuse(text: impl Into<String>) -> Refusal {
    Refusal(text.into())
}

/// Checks the session, connects upstream and starts the connection's pump.
pub async fn open_terminal(app: &AppState, req: Request) -> Result<Terminal, Refusal> {
    let allowed = match &req.door {
        Door::ConnectionString(text) => checks::authorize(app, req.user, text).await?,
        Door::Session(id) => checks::authorize_session(app, req.user, *id).await?,
    };
    let s = &allowed.session;
    let up = db::gateway::upstream(&app.db, s.id)
        .await
        .ok()
        .flatten()
        .ok_or_else(|| refuse("Portcullis could not find the session's target."))?;
    let mode = match &req.start {
        Start::Shell => Mode::Shell,
        Start::Exec(c) if c.starts_with("scp ") && !up.file_transfer => {
            return Err(refuse("File transfer is not allowed for this activity."));
        }
        Start::Exec(_) => Mode::Exec,
        Start::Subsystem(name) if name == "sftp" && up.file_transfer => Mode::Sftp,
        Start::Subsystem(_) => {
            return Err(refuse("File transfer is not allowed for this activity."));
        }
    };
    let channel = connect(app, s, &up, &req).await?;
    let (cols, rows) = req.pty.as_ref().map_or((80, 24), |p| (p.cols, p.rows));
    let recorder = Recorder::start(
        &app.db,
        NewRecording {
            session_id: s.id,
            user_id: req.user,
            user_name: allowed.user_name.clone(),
            via: req.via,
            mode,
            command: match &req.start {
                Start::Exec(c) => c.clone(),
                _ => String::new(),
            },
            width: u16::try_from(cols).unwrap_or(u16::MAX),
            height: u16::try_from(rows).unwrap_or(u16::MAX),
            with_input: up.record_input,
            client_addr: req.client,
        },
    )
    .await
    .map_err(|e| {
        tracing::error!(error = %e, "recording could not start");
        refuse("Portcullis could not start the recording; nothing was opened.")
    })?;
    logged_in(app, &allowed, req.via, req.client).await;
    Ok(pump::start(app.clone(), s.id, s.ends_at, channel, recorder))
}

/// Logs in upstream and opens the channel the client asked for.
async fn connect(
    app: &AppState,
    s: &db::sessions::ConnectInfo,
    up: &db::gateway::Upstream,
    req: &Request,
) -> Result<pump::Upstream, Refusal> {
    let name = &s.resource_name;
    let account = up
        .login_account
        .clone()
        .ok_or_else(|| refuse(format!("Session {name} has no login account yet.")))?;
    let password = up
        .password_ciphertext
        .as_ref()
        .and_then(|sealed| app.secrets.open(s.id, sealed).ok());
    // The session's own key (linux_ssh ephemeral accounts) first, then the password.
    let key = up
        .ssh_key_ciphertext
        .as_ref()
        .and_then(|sealed| app.secrets.open(s.id, sealed).ok())
        .and_then(|private| crate::provision::session_key::open(&private));
    if password.is_none() && key.is_none() {
        return Err(refuse(format!(
            "Session {name} has no credential the gateway can use."
        )));
    }
    let mismatch = Arc::new(AtomicBool::new(false));
    let pinned = Pinned {
        key: up
            .host_key
            .as_deref()
            .and_then(|k| PublicKey::from_openssh(k).ok()),
        mismatch: mismatch.clone(),
    };
    let config = Arc::new(client::Config {
        inactivity_timeout: None,
        keepalive_interval: Some(Duration::from_secs(30)),
        // Keystrokes go upstream one small packet at a time: Nagle's algorithm would hold
        // each behind the previous one's acknowledgement (the client side has it off too).
        nodelay: true,
        preferred: crate::gateway::ciphers::upstream(),
        ..client::Config::default()
    });
    let port = u16::try_from(up.port).unwrap_or(22);
    let unreachable = |e: russh::Error| {
        if mismatch.load(Ordering::Relaxed) {
            refuse(format!(
                "The host key of {name} does not match the pinned key (it may have been replaced)."
            ))
        } else {
            refuse(format!("{name} could not be reached: {e}"))
        }
    };
    let connecting = client::connect(config, (up.address.as_str(), port), pinned);
    let mut handle = tokio::time::timeout(Duration::from_secs(10), connecting)
        .await
        .map_err(|_| refuse(format!("{name} did not answer in time.")))?
        .map_err(unreachable)?;
    let mut success = false;
    if let Some(key) = key {
        let key = russh::keys::PrivateKeyWithHashAlg::new(Arc::new(key), None);
        success = handle
            .authenticate_publickey(account.clone(), key)
            .await
            .map_err(unreachable)?
            .success();
    }
    if !success && let Some(password) = password {
        success = handle
            .authenticate_password(account, password)
            .await
            .map_err(unreachable)?
            .success();
    }
    if !success {
        return Err(refuse(format!(
            "{name} refused the session's login account."
        )));
    }
    let failed = |e: russh::Error| refuse(format!("{name} refused the channel: {e}"));
    let channel = handle.channel_open_session().await.map_err(failed)?;
    if let Some(p) = &req.pty {
        channel
            .request_pty(true, &p.term, p.cols, p.rows, 0, 0, &[])
            .await
            .map_err(failed)?;
    }
    match &req.start {
        Start::Shell => channel.request_shell(true).await,
        Start::Exec(command) => channel.exec(true, command.as_bytes()).await,
        Start::Subsystem(name) => channel.request_subsystem(true, name.as_str()).await,
    }
    .map_err(failed)?;
    Ok(pump::Upstream { handle, channel })
}

/// The first connection moves Available to Logged In (one outcome when two race).
async fn logged_in(app: &AppState, allowed: &Allowed, via: Via, client: Option<IpAddr>) {
    let s = &allowed.session;
    if s.status != SessionStatus::Available {
        return;
    }
    let comment = match via {
        Via::Ssh => "Connected through the SSH gateway.",
        Via::Browser => "Connected through the browser terminal.",
    };
    let moved = async {
        let mut tx = app.db.begin().await?;
        db::sessions::transition(
            &mut tx,
            Transition::Connect,
            NewEvent::new(
                s.id,
                Actor::User {
                    id: s.requester_id,
                    name: &allowed.user_name,
                },
                EventKind::Connected,
                comment,
                client,
            ),
        )
        .await?;
        tx.commit().await
    };
    if let Err(e) = moved.await {
        tracing::error!(error = %e, session = %s.id, "could not record the connection");
    }
}
