//! The SSH server side: authentication as the user, the channel requests a session channel
//! may make (a PTY, a shell, one command, the sftp subsystem), and nothing else (no port,
//! agent or X11 forwarding). Each channel becomes a [`Terminal`] from `upstream`; a refusal
//! is written as one line on the client's stderr with exit status 1.

use std::borrow::Cow;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use russh::keys::{HashAlg, PrivateKey};
use russh::server::{self, Auth, ChannelOpenHandle, Msg, Session, VerifiedPublicKey};
use russh::{Channel, ChannelId, MethodKind, MethodSet};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use uuid::Uuid;

use super::password;
use super::upstream::{self, Door, Input, Output, Pty, Request, Start};
use crate::db;
use crate::db::recordings::Via;
use crate::state::AppState;

pub(super) async fn run(app: AppState, listener: TcpListener, host_key: PrivateKey) {
    let config = Arc::new(server::Config {
        methods: MethodSet::from(&[MethodKind::PublicKey, MethodKind::KeyboardInteractive][..]),
        auth_rejection_time: Duration::from_millis(300),
        auth_rejection_time_initial: Some(Duration::ZERO),
        keys: vec![host_key],
        inactivity_timeout: None,
        keepalive_interval: Some(Duration::from_secs(30)),
        nodelay: true,
        preferred: crate::gateway::ciphers::downstream(&app.settings.ssh_gateway_ciphers),
        ..server::Config::default()
    });
    let mut gateway = Gateway { app };
    if let Err(e) = server::Server::run_on_socket(&mut gateway, config, &listener).await {
        tracing::error!(error = %e, "the SSH gateway stopped");
    }
}

struct Gateway {
    app: AppState,
}

impl server::Server for Gateway {
    type Handler = Connection;

    fn new_client(&mut self, peer: Option<SocketAddr>) -> Connection {
        Connection {
            app: self.app.clone(),
            peer,
            user: None,
            connection_string: String::new(),
            pty: HashMap::new(),
            inputs: HashMap::new(),
            asked: None,
        }
    }
}

struct Connection {
    app: AppState,
    peer: Option<SocketAddr>,
    /// The authenticated Portcullis user.
    user: Option<Uuid>,
    /// The SSH user name: the session's connection string.
    connection_string: String,
    pty: HashMap<ChannelId, Pty>,
    inputs: HashMap<ChannelId, mpsc::Sender<Input>>,
    /// Keyboard-interactive: whose password was asked for, and what follows it.
    asked: Option<(Option<Uuid>, Option<crate::app::sign_in::SecondStep>)>,
}

impl Connection {
    /// Opens the upstream side of `channel`, or writes why not and closes it.
    async fn start(&mut self, channel: ChannelId, start: Start, session: &mut Session) {
        let _ = session.channel_success(channel);
        let handle = session.handle();
        let Some(user) = self.user else {
            return;
        };
        let request = Request {
            user,
            door: Door::ConnectionString(self.connection_string.clone()),
            via: Via::Ssh,
            start,
            pty: self.pty.get(&channel).cloned(),
            client: self.peer.map(|p| p.ip()),
        };
        let app = self.app.clone();
        let (tx, rx) = mpsc::channel(64);
        self.inputs.insert(channel, tx);
        // The checks and the upstream login may take a while: the client waits on the
        // channel, not on this handler.
        tokio::spawn(async move {
            match upstream::open_terminal(&app, request).await {
                Ok(terminal) => relay(handle, channel, terminal, rx).await,
                Err(refusal) => {
                    let line = format!("Portcullis: {refusal}\r\n");
                    let _ = handle.extended_data(channel, 1, line.into_bytes()).await;
                    let _ = handle.exit_status_request(channel, 1).await;
                    let _ = handle.eof(channel).await;
                    let _ = handle.close(channel).await;
                }
            }
        });
    }
}

/// Passes the client's input to the terminal and its output back until it closes.
async fn relay(
    handle: server::Handle,
    channel: ChannelId,
    mut terminal: upstream::Terminal,
    mut from_client: mpsc::Receiver<Input>,
) {
    let input = terminal.input.clone();
    let forward = tokio::spawn(async move {
        while let Some(inp) = from_client.recv().await {
            if input.send(inp).await.is_err() {
                break;
            }
        }
    });
    while let Some(out) = terminal.output.recv().await {
        let sent = match out {
            Output::Data(bytes) => handle.data(channel, bytes).await.is_ok(),
            Output::Stderr(bytes) => handle.extended_data(channel, 1, bytes).await.is_ok(),
            Output::Exit(code) => handle.exit_status_request(channel, code).await.is_ok(),
            Output::Closed(_) => break,
        };
        if !sent {
            break;
        }
    }
    forward.abort();
    let _ = handle.eof(channel).await;
    let _ = handle.close(channel).await;
}

impl server::Handler for Connection {
    type Error = russh::Error;

    async fn auth_publickey(
        &mut self,
        user: &str,
        key: VerifiedPublicKey<'_>,
    ) -> Result<Auth, Self::Error> {
        let fingerprint = key.public_key.fingerprint(HashAlg::Sha256).to_string();
        match db::gateway::key_owner(&self.app.db, &fingerprint).await {
            Ok(Some(owner)) => {
                self.user = Some(owner.user_id);
                self.connection_string = user.to_owned();
                Ok(Auth::Accept)
            }
            Ok(None) => Ok(Auth::reject()),
            Err(e) => {
                tracing::error!(error = %e, "gateway key lookup failed");
                Ok(Auth::reject())
            }
        }
    }

    async fn auth_keyboard_interactive<'a>(
        &'a mut self,
        user: &str,
        _submethods: &str,
        response: Option<server::Response<'a>>,
    ) -> Result<Auth, Self::Error> {
        let Some(response) = response else {
            let (who, step) = password::who(&self.app, user).await;
            self.asked = Some((who, step));
            let prompts: Vec<_> = password::prompts(step)
                .into_iter()
                .map(|(p, echo)| (Cow::Owned(p), echo))
                .collect();
            return Ok(Auth::Partial {
                name: Cow::Borrowed("Portcullis"),
                instructions: Cow::Borrowed(""),
                prompts: Cow::Owned(prompts),
            });
        };
        let answers: Vec<String> = response
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .collect();
        let Some((who, step)) = self.asked.take() else {
            return Ok(Auth::reject());
        };
        let client = self.peer.map(|p| p.ip());
        if password::check(&self.app, who, step, client, answers).await {
            self.user = who;
            self.connection_string = user.to_owned();
            return Ok(Auth::Accept);
        }
        Ok(Auth::reject())
    }

    async fn channel_open_session(
        &mut self,
        _channel: Channel<Msg>,
        reply: ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        reply.accept().await;
        Ok(())
    }

    async fn pty_request(
        &mut self,
        channel: ChannelId,
        term: &str,
        cols: u32,
        rows: u32,
        _pix_width: u32,
        _pix_height: u32,
        _modes: &[(russh::Pty, u32)],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        let pty = Pty {
            term: term.to_owned(),
            cols,
            rows,
        };
        self.pty.insert(channel, pty);
        session.channel_success(channel)
    }

    async fn shell_request(
        &mut self,
        channel: ChannelId,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.start(channel, Start::Shell, session).await;
        Ok(())
    }

    async fn exec_request(
        &mut self,
        channel: ChannelId,
        data: &[u8],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        let command = String::from_utf8_lossy(data).into_owned();
        self.start(channel, Start::Exec(command), session).await;
        Ok(())
    }

    async fn subsystem_request(
        &mut self,
        channel: ChannelId,
        name: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.start(channel, Start::Subsystem(name.to_owned()), session)
            .await;
        Ok(())
    }

    async fn data(
        &mut self,
        channel: ChannelId,
        data: &[u8],
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        if let Some(tx) = self.inputs.get(&channel) {
            let _ = tx.send(Input::Data(data.to_vec())).await;
        }
        Ok(())
    }

    async fn channel_eof(
        &mut self,
        channel: ChannelId,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        if let Some(tx) = self.inputs.get(&channel) {
            let _ = tx.send(Input::Eof).await;
        }
        Ok(())
    }

    async fn channel_close(
        &mut self,
        channel: ChannelId,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.inputs.remove(&channel);
        self.pty.remove(&channel);
        Ok(())
    }

    async fn window_change_request(
        &mut self,
        channel: ChannelId,
        cols: u32,
        rows: u32,
        _pix_width: u32,
        _pix_height: u32,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        if let Some(tx) = self.inputs.get(&channel) {
            let _ = tx.send(Input::Resize { cols, rows }).await;
        }
        Ok(())
    }

    async fn x11_request(
        &mut self,
        channel: ChannelId,
        _single: bool,
        _protocol: &str,
        _cookie: &str,
        _screen: u32,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_failure(channel)
    }

    async fn env_request(
        &mut self,
        channel: ChannelId,
        _name: &str,
        _value: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_failure(channel)
    }

    async fn tcpip_forward(
        &mut self,
        _address: &str,
        _port: &mut u32,
        _session: &mut Session,
    ) -> Result<bool, Self::Error> {
        Ok(false)
    }
}
