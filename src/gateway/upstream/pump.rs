//! One live connection: bytes both ways (recorded), and the session's say over it. Every
//! status change of the session reaches this instance through LISTEN (`live::Hub`), so a
//! Lock, an End, a Cancel or a revoke closes the connection here within moments, with a line
//! on the user's terminal saying why; the window's end closes it on time, and ten and one
//! minute before it a warning is written. A re-check every few seconds covers a lost LISTEN.

use std::time::Duration;

use bytes::Bytes;
use russh::client::{self, Msg};
use russh::{Channel, ChannelMsg, Disconnect};
use time::OffsetDateTime;
use tokio::sync::{broadcast, mpsc};
use tokio::time::Instant;
use uuid::Uuid;

use super::{Input, Output, Pinned, Terminal};
use crate::gateway::checks;
use crate::recording::Recorder;
use crate::state::AppState;

/// How often a live connection re-checks its session even without an announcement.
const RECHECK: Duration = Duration::from_secs(10);
/// Warnings before the window ends, in minutes.
const WARNINGS: [i64; 2] = [10, 1];

pub(super) struct Upstream {
    pub handle: client::Handle<Pinned>,
    pub channel: Channel<Msg>,
}

pub(super) fn start(
    app: AppState,
    session: Uuid,
    ends_at: OffsetDateTime,
    upstream: Upstream,
    recorder: Recorder,
) -> Terminal {
    let (input, input_rx) = mpsc::channel(64);
    let (output_tx, output) = mpsc::channel(64);
    let recording = recorder.id();
    let changes = app.live.changes();
    let pump = Pump {
        app,
        session,
        ends_at,
        warned: Vec::new(),
        recorder,
        output: output_tx,
    };
    tokio::spawn(pump.run(upstream, input_rx, changes));
    Terminal {
        input,
        output,
        recording,
    }
}

struct Pump {
    app: AppState,
    session: Uuid,
    ends_at: OffsetDateTime,
    /// Warnings already written (minutes before the end).
    warned: Vec<i64>,
    recorder: Recorder,
    output: mpsc::Sender<Output>,
}

/// What ended the loop.
enum Ended {
    /// The target closed the channel (the shell exited, the command finished).
    Upstream,
    /// The user's side went away.
    Client,
    /// The session no longer allows the connection.
    Cut(String),
}

impl Pump {
    async fn run(
        mut self,
        upstream: Upstream,
        mut input: mpsc::Receiver<Input>,
        mut changes: broadcast::Receiver<crate::live::Change>,
    ) {
        let Upstream {
            handle,
            mut channel,
        } = upstream;
        let ended = loop {
            let wake = self.next_wake();
            tokio::select! {
                msg = channel.wait() => match msg {
                    Some(msg) => self.relay_target(msg).await,
                    None => break Ended::Upstream,
                },
                inp = input.recv() => match inp {
                    Some(inp) => self.relay_user(&channel, inp).await,
                    None => break Ended::Client,
                },
                change = changes.recv() => match change {
                    Ok(c) if c.session != self.session => {}
                    Err(broadcast::error::RecvError::Closed) => {
                        changes = self.app.live.changes();
                    }
                    _ => if let Some(why) = self.recheck().await { break Ended::Cut(why) },
                },
                () = tokio::time::sleep_until(wake) => {
                    if let Some(why) = self.recheck().await { break Ended::Cut(why) }
                    self.warn().await;
                }
            }
        };
        let reason = match &ended {
            Ended::Upstream => "The connection ended.".to_owned(),
            Ended::Client => "The user disconnected.".to_owned(),
            Ended::Cut(why) => format!("Portcullis closed the connection: {why}."),
        };
        if let Ended::Cut(why) = &ended {
            let line = format!("\r\nPortcullis: {why}.\r\n");
            let line = Bytes::from(line);
            self.recorder.output(line.clone()).await;
            let _ = self.output.send(Output::Data(line)).await;
        }
        let _ = channel.close().await;
        let _ = handle.disconnect(Disconnect::ByApplication, "", "en").await;
        self.recorder.finish(&reason).await;
        let closed = match ended {
            Ended::Cut(why) => Some(why),
            _ => None,
        };
        let _ = self.output.send(Output::Closed(closed)).await;
    }

    async fn relay_target(&mut self, msg: ChannelMsg) {
        let out = match msg {
            // The target's buffer goes to the user and to the recording as it is, shared.
            ChannelMsg::Data { data } => {
                self.recorder.output(data.clone()).await;
                Output::Data(data)
            }
            ChannelMsg::ExtendedData { data, .. } => {
                self.recorder.output(data.clone()).await;
                Output::Stderr(data)
            }
            ChannelMsg::ExitStatus { exit_status } => Output::Exit(exit_status),
            _ => return,
        };
        let _ = self.output.send(out).await;
    }

    async fn relay_user(&mut self, channel: &Channel<Msg>, inp: Input) {
        match inp {
            Input::Data(bytes) => {
                self.recorder.input(&bytes).await;
                let _ = channel.data_bytes(bytes).await;
            }
            Input::Resize { cols, rows } => {
                let w = u16::try_from(cols).unwrap_or(u16::MAX);
                let h = u16::try_from(rows).unwrap_or(u16::MAX);
                self.recorder.resize(w, h).await;
                let _ = channel.window_change(cols, rows, 0, 0).await;
            }
            Input::Eof => {
                let _ = channel.eof().await;
            }
        }
    }

    /// The session as it is now: why to close, else its (maybe extended) end is noted.
    async fn recheck(&mut self) -> Option<String> {
        match checks::verdict(&self.app, self.session).await {
            Ok(ends_at) => {
                if ends_at != self.ends_at {
                    self.ends_at = ends_at;
                    self.warned.clear();
                }
                None
            }
            Err(why) => Some(why),
        }
    }

    /// The next moment to look: a warning, the end of the window, or the periodic re-check.
    fn next_wake(&self) -> Instant {
        let left = self.ends_at - OffsetDateTime::now_utc();
        let mut wait = RECHECK;
        let mut consider = |d: time::Duration| {
            wait = wait.min(Duration::try_from(d).unwrap_or(Duration::ZERO));
        };
        consider(left);
        for m in WARNINGS.iter().filter(|m| !self.warned.contains(m)) {
            consider(left - time::Duration::minutes(*m));
        }
        Instant::now() + wait
    }

    /// Writes the warning whose time has come, once.
    async fn warn(&mut self) {
        let left = self.ends_at - OffsetDateTime::now_utc();
        let due = WARNINGS
            .iter()
            .copied()
            .filter(|m| !self.warned.contains(m) && left <= time::Duration::minutes(*m))
            .min();
        let Some(minutes) = due else { return };
        // Both are due when the connection opened late in the window: one line is enough.
        self.warned
            .extend(WARNINGS.iter().filter(|m| **m >= minutes));
        let unit = if minutes == 1 { "minute" } else { "minutes" };
        let line = format!(
            "\r\nPortcullis: the session ends in {minutes} {unit}; extend it on its Connect page.\r\n"
        );
        let line = Bytes::from(line);
        self.recorder.output(line.clone()).await;
        let _ = self.output.send(Output::Data(line)).await;
    }
}
