//! Writes a connection's recording as it flows: asciicast v2 events, gathered for about a
//! second (or until a chunk is full) and then appended to PostgreSQL, so a crash loses at
//! most about a second and any instance can serve or follow the recording.
//!
//! A [`Recorder`] is cheap to clone: the gateway's handler records what the user types and
//! its upstream pump records what the target answers, each from its own task. The events go
//! through one bounded channel in order to one writer task; when the database falls behind,
//! the connection waits for it rather than losing part of the record.

use std::time::Duration;

use sqlx::PgPool;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use uuid::Uuid;

use crate::db::recordings::{self, NewRecording};

/// How long events wait before they are written.
const FLUSH_EVERY: Duration = Duration::from_secs(1);
/// A chunk is written early once its events reach this size. A bulk transfer waits for its
/// chunks: at 256 KiB, `head -c 20000000 /dev/zero` (120 MB of asciicast JSON, a NUL being
/// `\u0000`) took 470 commits (bench/gateway.sh). Larger chunks cost memory per connection.
const CHUNK_BYTES: usize = 1024 * 1024;
/// Events in flight between the connection and the writer.
const QUEUE: usize = 256;
/// A connection with nothing to record still writes an empty chunk this often, so that the
/// worker (which closes recordings with no chunk for ten minutes, left open by a stopped
/// instance) can tell an idle shell from an abandoned recording.
pub const HEARTBEAT: Duration = Duration::from_secs(240);

enum Event {
    Output(Instant, Vec<u8>),
    Input(Instant, Vec<u8>),
    Resize(Instant, u16, u16),
    Finish(String, oneshot::Sender<()>),
}

/// The recording of one connection.
#[derive(Clone)]
pub struct Recorder {
    id: Uuid,
    with_input: bool,
    events: mpsc::Sender<Event>,
}

impl Recorder {
    /// Opens the recording's row and starts its writer.
    pub async fn start(db: &PgPool, new: NewRecording) -> Result<Self, sqlx::Error> {
        Self::start_with_heartbeat(db, new, HEARTBEAT).await
    }

    /// [`Recorder::start`] with an idle connection's empty chunk every `heartbeat` instead of
    /// every [`HEARTBEAT`] (tests shorten it).
    pub async fn start_with_heartbeat(
        db: &PgPool,
        new: NewRecording,
        heartbeat: Duration,
    ) -> Result<Self, sqlx::Error> {
        let row = recordings::create(db, &new).await?;
        let (events, rx) = mpsc::channel(QUEUE);
        let writer = Writer {
            db: db.clone(),
            id: row.id,
            seq: 0,
            started: Instant::now(),
            written: Instant::now(),
            heartbeat,
            buffer: String::new(),
            plain: Vec::new(),
            bytes: 0,
            output_tail: Vec::new(),
            input_tail: Vec::new(),
        };
        tokio::spawn(writer.run(rx));
        Ok(Self {
            id: row.id,
            with_input: new.with_input,
            events,
        })
    }

    /// The recording's id.
    pub fn id(&self) -> Uuid {
        self.id
    }

    /// What the target sent to the user's terminal.
    pub async fn output(&self, bytes: &[u8]) {
        if !bytes.is_empty() {
            let _ = self
                .events
                .send(Event::Output(Instant::now(), bytes.to_vec()))
                .await;
        }
    }

    /// What the user typed; kept only when the recording records input.
    pub async fn input(&self, bytes: &[u8]) {
        if self.with_input && !bytes.is_empty() {
            let _ = self
                .events
                .send(Event::Input(Instant::now(), bytes.to_vec()))
                .await;
        }
    }

    /// The user's terminal changed size.
    pub async fn resize(&self, width: u16, height: u16) {
        let _ = self
            .events
            .send(Event::Resize(Instant::now(), width, height))
            .await;
    }

    /// Writes what is left and marks the recording ended with `reason`. Later calls (from
    /// another clone) do nothing.
    pub async fn finish(&self, reason: &str) {
        let (done, wait) = oneshot::channel();
        if self
            .events
            .send(Event::Finish(reason.to_owned(), done))
            .await
            .is_ok()
        {
            let _ = wait.await;
        }
    }
}

struct Writer {
    db: PgPool,
    id: Uuid,
    seq: i32,
    started: Instant,
    /// When the last chunk was written.
    written: Instant,
    /// An empty chunk is written when none was for this long.
    heartbeat: Duration,
    /// asciicast event lines not yet written.
    buffer: String,
    /// Output bytes of those events, for the plain-text copy.
    plain: Vec<u8>,
    bytes: i64,
    /// The start of a UTF-8 character split across two reads, kept for the next one.
    output_tail: Vec<u8>,
    input_tail: Vec<u8>,
}

impl Writer {
    async fn run(mut self, mut rx: mpsc::Receiver<Event>) {
        let mut tick = tokio::time::interval(FLUSH_EVERY.min(self.heartbeat));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                event = rx.recv() => match event {
                    Some(Event::Finish(reason, done)) => {
                        self.flush().await;
                        if let Err(error) = recordings::finish(&self.db, self.id, &reason).await {
                            tracing::warn!(%error, recording = %self.id, "could not close a recording");
                        }
                        let _ = done.send(());
                        return;
                    }
                    Some(event) => {
                        self.push(event);
                        if self.buffer.len() >= CHUNK_BYTES {
                            self.flush().await;
                        }
                    }
                    None => {
                        // Every recorder was dropped without finish: the connection went away.
                        self.flush().await;
                        let _ = recordings::finish(&self.db, self.id, "Connection closed").await;
                        return;
                    }
                },
                _ = tick.tick() => self.flush().await,
            }
        }
    }

    fn push(&mut self, event: Event) {
        let (at, code, data) = match event {
            Event::Output(at, bytes) => {
                self.bytes += bytes.len() as i64;
                self.plain.extend_from_slice(&bytes);
                (at, "o", take_utf8(&mut self.output_tail, &bytes))
            }
            Event::Input(at, bytes) => {
                self.bytes += bytes.len() as i64;
                (at, "i", take_utf8(&mut self.input_tail, &bytes))
            }
            Event::Resize(at, width, height) => (at, "r", format!("{width}x{height}")),
            Event::Finish(..) => return,
        };
        if data.is_empty() {
            return;
        }
        let seconds = at.saturating_duration_since(self.started).as_secs_f64();
        let line = serde_json::json!([(seconds * 1e6).round() / 1e6, code, data]);
        self.buffer.push_str(&line.to_string());
        self.buffer.push('\n');
    }

    async fn flush(&mut self) {
        if self.buffer.is_empty() && self.written.elapsed() < self.heartbeat {
            return;
        }
        let plain = String::from_utf8_lossy(&strip_ansi_escapes::strip(&self.plain)).into_owned();
        let result = recordings::append(
            &self.db,
            self.id,
            self.seq,
            &self.buffer,
            &plain.replace('\0', ""),
            self.bytes,
        )
        .await;
        match result {
            Ok(()) => {
                self.seq += 1;
                self.written = Instant::now();
                self.buffer.clear();
                self.plain.clear();
                self.bytes = 0;
            }
            // Kept for the next flush: the database may be back by then.
            Err(error) => {
                tracing::warn!(%error, recording = %self.id, "could not write a recording chunk")
            }
        }
    }
}

/// The complete UTF-8 text of `tail` + `bytes`; an incomplete character at the end waits in
/// `tail` for the next read, and invalid bytes become U+FFFD.
fn take_utf8(tail: &mut Vec<u8>, bytes: &[u8]) -> String {
    tail.extend_from_slice(bytes);
    let keep = incomplete_suffix(tail);
    let rest = tail.split_off(tail.len() - keep);
    let text = String::from_utf8_lossy(tail).into_owned();
    *tail = rest;
    text
}

/// How many bytes at the end of `bytes` start a UTF-8 character that is not complete yet.
fn incomplete_suffix(bytes: &[u8]) -> usize {
    for back in 1..=bytes.len().min(3) {
        let b = bytes[bytes.len() - back];
        if b & 0b1100_0000 == 0b1000_0000 {
            continue;
        }
        let needed = match b {
            0b1100_0000..=0b1101_1111 => 2,
            0b1110_0000..=0b1110_1111 => 3,
            0b1111_0000..=0b1111_0111 => 4,
            _ => return 0,
        };
        return if needed > back { back } else { 0 };
    }
    0
}

/// The asciicast v2 header line of a recording.
pub fn header(row: &recordings::Row) -> String {
    let mut header = serde_json::json!({
        "version": 2,
        "width": row.width,
        "height": row.height,
        "timestamp": row.started_at.unix_timestamp(),
        "title": format!("{} ({})", row.user_name, match row.mode {
            recordings::Mode::Shell => "shell",
            recordings::Mode::Exec => "command",
            recordings::Mode::Sftp => "file transfer",
        }),
    });
    if !row.command.is_empty() {
        header["command"] = serde_json::Value::String(row.command.clone());
    }
    header.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_character_split_across_reads_is_joined() {
        let euro = "€".as_bytes();
        let mut tail = Vec::new();
        assert_eq!(take_utf8(&mut tail, &[b'a', euro[0]]), "a");
        assert_eq!(take_utf8(&mut tail, &euro[1..2]), "");
        assert_eq!(take_utf8(&mut tail, &[euro[2], b'b']), "€b");
        assert!(tail.is_empty());
    }

    #[test]
    fn invalid_bytes_become_replacement_characters() {
        let mut tail = Vec::new();
        assert_eq!(take_utf8(&mut tail, &[0xff, b'x']), "\u{fffd}x");
        // A lone continuation byte at the end is not the start of anything: written at once.
        assert_eq!(take_utf8(&mut tail, &[b'y', 0x80]), "y\u{fffd}");
        assert!(tail.is_empty());
    }
}
