//! Writes a connection's recording as it flows: its events (`domain::cast`), gathered for
//! about a second (or until a chunk is full) and then appended to PostgreSQL, so a crash loses
//! at most about a second and any instance can serve or follow the recording.
//!
//! A [`Recorder`] is cheap to clone: the gateway's handler records what the user types and
//! its upstream pump records what the target answers, each from its own task. The events go
//! through one bounded channel in order to one writer task; when the database falls behind,
//! the connection waits for it rather than losing part of the record.
//!
//! Every byte is kept, as it came, in chunks of about a second; a chunk of compressible bulk
//! output is compressed here first (`cast::pack`), since every instance's recordings go to
//! the one PostgreSQL. The searchable text beside it (escape sequences removed)
//! is limited to [`SEARCHABLE_PER_SECOND`] of text output, since PostgreSQL's full-text
//! index costs far more than storing the bytes (see `bench/README.md`).

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use sqlx::PgPool;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use uuid::Uuid;

use crate::db::recordings::{self, ChunkData, NewRecording};
use crate::domain::cast::{self, Kind};

/// How long events wait before they are written.
const FLUSH_EVERY: Duration = Duration::from_secs(1);
/// A chunk is written early once its events reach this size. A bulk transfer waits for its
/// chunks, so they should not be small (a commit each); larger chunks cost memory per
/// connection.
const CHUNK_BYTES: usize = 1024 * 1024;
/// Output kept as searchable text, per second of the recording: many screens a second, a
/// few hundred times what typical shell use writes (README, "SSH keys and recordings"); the
/// rest of a bulk dump (`cat` of a large file) is recorded and played, not searchable.
/// Binary output is never searchable (`cast::looks_binary`).
pub const SEARCHABLE_PER_SECOND: usize = 64 * 1024;
/// Events in flight between the connection and the writer.
const QUEUE: usize = 256;
/// Chunks being written at once: the next is compressed and inserted while the one before
/// commits, so a bulk transfer does not wait for each round trip (bench/gateway.sh: text
/// 0.38× → 0.52× of a direct ssh). Each holds a pooled connection; four gained little more
/// (0.56×) for twice the connections a bulk transfer can take from the pages.
const IN_FLIGHT: usize = 2;
/// Chunks kept for a database that failed before the connection is made to wait.
const MAX_QUEUED: usize = 4;
/// A connection with nothing to record still writes an empty chunk this often, so that the
/// worker (which closes recordings with no chunk for ten minutes, left open by a stopped
/// instance) can tell an idle shell from an abandoned recording.
pub const HEARTBEAT: Duration = Duration::from_secs(240);

enum Event {
    Output(Instant, Bytes),
    Input(Instant, Bytes),
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
            next_seq: 0,
            written: Instant::now(),
            heartbeat,
            pending: Pending::new(Instant::now()),
            queue: VecDeque::new(),
            in_flight: VecDeque::new(),
            last_done: None,
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

    /// What the target sent to the user's terminal: the buffer relayed to the user, shared.
    pub async fn output(&self, bytes: impl Into<Bytes>) {
        let bytes = bytes.into();
        if !bytes.is_empty() {
            let _ = self.events.send(Event::Output(Instant::now(), bytes)).await;
        }
    }

    /// What the user typed; kept only when the recording records input.
    pub async fn input(&self, bytes: &[u8]) {
        if self.with_input && !bytes.is_empty() {
            let _ = self
                .events
                .send(Event::Input(Instant::now(), Bytes::copy_from_slice(bytes)))
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
    /// The seq of the next chunk made.
    next_seq: i32,
    /// When the last chunk was written.
    written: Instant,
    /// An empty chunk is written when none was for this long.
    heartbeat: Duration,
    pending: Pending,
    /// Chunks made and not handed to the database yet, in order: a chunk whose write failed
    /// comes back here, before any later one.
    queue: VecDeque<Arc<Chunk>>,
    /// Chunks being written, oldest first, each with its task (true once committed).
    in_flight: VecDeque<(Arc<Chunk>, JoinHandle<bool>)>,
    /// Resolves once the newest chunk handed to the database is committed (true) or not.
    last_done: Option<oneshot::Receiver<bool>>,
}

/// One chunk as it is written.
struct Chunk {
    seq: i32,
    events: cast::Frames,
    plain: String,
    bytes: i64,
}

/// The next chunk, as events come in.
struct Pending {
    started: Instant,
    /// Events not yet written, framed as `cast` stores them.
    events: cast::Frames,
    /// Output bytes of those events, for the searchable plain-text copy.
    plain: Vec<u8>,
    /// The second of the recording whose searchable text is being counted, and how much
    /// more of it may be kept.
    window: Instant,
    searchable_left: usize,
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
                // While chunks wait for a database that failed, the connection waits too.
                event = rx.recv(), if self.queue.len() < MAX_QUEUED => match event {
                    Some(Event::Finish(reason, done)) => {
                        self.close(&reason).await;
                        let _ = done.send(());
                        return;
                    }
                    Some(event) => {
                        self.pending.push(event);
                        if self.pending.events.len() >= CHUNK_BYTES {
                            self.flush().await;
                        }
                    }
                    None => {
                        // Every recorder was dropped without finish: the connection went away.
                        self.close("Connection closed").await;
                        return;
                    }
                },
                _ = tick.tick() => self.flush().await,
            }
        }
    }

    /// Writes everything left, then marks the recording ended.
    async fn close(&mut self, reason: &str) {
        self.flush().await;
        if !self.drain().await {
            // One more try after a moment: the database may be back.
            tokio::time::sleep(FLUSH_EVERY).await;
            self.flush().await;
            self.drain().await;
        }
        if let Err(error) = recordings::finish(&self.db, self.id, reason).await {
            tracing::warn!(%error, recording = %self.id, "could not close a recording");
        }
    }

    /// Makes a chunk of the pending events (or a heartbeat) and hands the queue to the
    /// database, at most [`IN_FLIGHT`] chunks at once.
    async fn flush(&mut self) {
        while self
            .in_flight
            .front()
            .is_some_and(|(_, task)| task.is_finished())
        {
            if !self.reap_oldest().await {
                break;
            }
        }
        if let Some(chunk) = self.take_chunk() {
            self.queue.push_back(chunk);
        }
        while let Some(chunk) = self.queue.front().cloned() {
            if self.in_flight.len() >= IN_FLIGHT && !self.reap_oldest().await {
                // Kept for the next flush: the database may be back by then.
                return;
            }
            self.queue.pop_front();
            self.dispatch(chunk);
        }
    }

    /// The pending events as the next chunk; an empty one when nothing was written for the
    /// heartbeat's time and nothing is on its way.
    fn take_chunk(&mut self) -> Option<Arc<Chunk>> {
        let pending = &mut self.pending;
        if pending.events.is_empty()
            && (self.written.elapsed() < self.heartbeat
                || !self.queue.is_empty()
                || !self.in_flight.is_empty())
        {
            return None;
        }
        let chunk = Chunk {
            seq: self.next_seq,
            events: std::mem::take(&mut pending.events),
            plain: pending.plain_text(),
            bytes: pending.bytes,
        };
        pending.written();
        self.next_seq += 1;
        Some(Arc::new(chunk))
    }

    /// Starts writing `chunk`: it is inserted at once and committed after the chunk before.
    fn dispatch(&mut self, chunk: Arc<Chunk>) {
        let (done, next) = oneshot::channel();
        let before = self.last_done.replace(next);
        let task = tokio::spawn(write(self.db.clone(), self.id, chunk.clone(), before, done));
        self.in_flight.push_back((chunk, task));
    }

    /// Waits for the oldest chunk in flight. When it failed, so do those after it (each
    /// commits only after the one before): they all go back to the front of the queue, in
    /// order. Returns whether it was written.
    async fn reap_oldest(&mut self) -> bool {
        let Some((chunk, task)) = self.in_flight.pop_front() else {
            return true;
        };
        if task.await.unwrap_or(false) {
            self.written = Instant::now();
            return true;
        }
        let mut back = vec![chunk];
        while let Some((chunk, task)) = self.in_flight.pop_front() {
            let _ = task.await;
            back.push(chunk);
        }
        for chunk in back.into_iter().rev() {
            self.queue.push_front(chunk);
        }
        self.last_done = None;
        false
    }

    /// Waits for every chunk in flight; whether all were written.
    async fn drain(&mut self) -> bool {
        while !self.in_flight.is_empty() {
            if !self.reap_oldest().await {
                return false;
            }
        }
        self.queue.is_empty()
    }
}

/// Writes one chunk: packed (`cast::pack`) and inserted while the chunk before may still be
/// on its way, committed only once that one is (`before`), so readers never see a gap.
/// Tells `done` whether it was committed.
async fn write(
    db: PgPool,
    id: Uuid,
    chunk: Arc<Chunk>,
    before: Option<oneshot::Receiver<bool>>,
    done: oneshot::Sender<bool>,
) -> bool {
    let packed = chunk.events.pack();
    let events = match &packed {
        Some(packed) => ChunkData::Packed(packed),
        None => ChunkData::Frames(&chunk.events),
    };
    let inserted = recordings::insert_chunk(&db, id, chunk.seq, events, &chunk.plain).await;
    let before_written = match before {
        Some(before) => before.await.unwrap_or(false),
        None => true,
    };
    let committed = match inserted {
        // Dropping the transaction rolls the chunk back: the one before is written again
        // first, then this one.
        Ok(_) if !before_written => Ok(false),
        Ok(tx) => recordings::commit_chunk(tx, id, chunk.bytes)
            .await
            .map(|()| true),
        Err(error) => Err(error),
    };
    let committed = committed.unwrap_or_else(|error| {
        tracing::warn!(%error, recording = %id, "could not write a recording chunk");
        false
    });
    let _ = done.send(committed);
    committed
}

impl Pending {
    fn new(started: Instant) -> Self {
        Self {
            started,
            events: cast::Frames::default(),
            plain: Vec::new(),
            window: started,
            searchable_left: SEARCHABLE_PER_SECOND,
            bytes: 0,
            output_tail: Vec::new(),
            input_tail: Vec::new(),
        }
    }

    fn push(&mut self, event: Event) {
        let (at, kind, bytes) = match event {
            Event::Output(at, bytes) => (at, Kind::Output, bytes),
            Event::Input(at, bytes) => (at, Kind::Input, bytes),
            Event::Resize(at, width, height) => {
                let (micros, size) = (self.micros(at), format!("{width}x{height}"));
                self.events
                    .push(micros, Kind::Resize, size.as_bytes(), Bytes::new());
                return;
            }
            Event::Finish(..) => return,
        };
        self.bytes += bytes.len() as i64;
        let tail = match kind {
            Kind::Output => &mut self.output_tail,
            _ => &mut self.input_tail,
        };
        // The start of a character split across reads goes before this read; the start of
        // one at its end waits for the next. The read itself is kept as it came, not copied.
        let (head, data) = if bytes.len() >= 3 {
            let cut = bytes.len() - cast::incomplete_suffix(&bytes);
            let head = std::mem::replace(tail, bytes[cut..].to_vec());
            (head, bytes.slice(..cut))
        } else {
            // A short read (a keystroke's echo) may finish, or still not finish, the tail.
            tail.extend_from_slice(&bytes);
            let whole = std::mem::take(tail);
            let cut = whole.len() - cast::incomplete_suffix(&whole);
            tail.extend_from_slice(&whole[cut..]);
            (whole[..cut].to_vec(), Bytes::new())
        };
        if head.is_empty() && data.is_empty() {
            return;
        }
        let micros = self.micros(at);
        if kind == Kind::Output {
            self.searchable(at, &head, &data);
        }
        self.events.push(micros, kind, &head, data);
    }

    /// Microseconds from the start of the recording to `at`.
    fn micros(&self, at: Instant) -> u64 {
        let since = at.saturating_duration_since(self.started).as_micros();
        u64::try_from(since).unwrap_or(u64::MAX)
    }

    /// Keeps output (`head` then `data`) for the searchable text, within this second's
    /// allowance.
    fn searchable(&mut self, at: Instant, head: &[u8], data: &[u8]) {
        if at.saturating_duration_since(self.window) >= Duration::from_secs(1) {
            self.window = at;
            self.searchable_left = SEARCHABLE_PER_SECOND;
        }
        let data = &data[..data.len().min(self.searchable_left)];
        // A NUL makes it binary whatever the head: random output is given up on here,
        // before it is copied.
        if self.searchable_left == 0 || data.contains(&0) {
            return;
        }
        let joined;
        let bytes = if head.is_empty() {
            data
        } else {
            joined = [head, data].concat();
            &joined[..]
        };
        if cast::looks_binary(bytes) {
            return;
        }
        let take = bytes.len().min(self.searchable_left);
        self.plain.extend_from_slice(&bytes[..take]);
        self.searchable_left -= take;
    }

    /// The searchable text of the events so far: escape sequences and NULs removed.
    fn plain_text(&self) -> String {
        String::from_utf8_lossy(&strip_ansi_escapes::strip(&self.plain)).replace('\0', "")
    }

    /// Empties the chunk once it is written; split characters wait for the next one.
    fn written(&mut self) {
        self.events = cast::Frames::default();
        self.plain.clear();
        self.bytes = 0;
    }
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

    fn output(pending: &mut Pending, bytes: &[u8]) {
        pending.push(Event::Output(
            pending.started,
            Bytes::copy_from_slice(bytes),
        ));
    }

    fn rendered(pending: &Pending) -> String {
        let mut out = String::new();
        cast::render(&pending.events.to_vec(), &mut out).unwrap();
        out
    }

    #[test]
    fn a_character_split_across_reads_is_joined() {
        let euro = "€".as_bytes();
        let mut pending = Pending::new(Instant::now());
        output(&mut pending, &[b'a', euro[0]]);
        output(&mut pending, &euro[1..2]);
        output(&mut pending, &[euro[2], b'b']);
        assert_eq!(
            rendered(&pending),
            "[0.0,\"o\",\"a\"]\n[0.0,\"o\",\"€b\"]\n"
        );
        assert!(pending.output_tail.is_empty());
        assert_eq!(pending.bytes, 5, "every byte counts");
    }

    #[test]
    fn a_long_read_is_kept_as_it_came_and_a_split_character_still_joined() {
        let euro = "€".as_bytes();
        let mut pending = Pending::new(Instant::now());
        let first = Bytes::from([&b"x".repeat(1000)[..], &euro[..1]].concat());
        let second = Bytes::from([&euro[1..], &b"y".repeat(1000)[..]].concat());
        pending.push(Event::Output(pending.started, first.clone()));
        pending.push(Event::Output(pending.started, second.clone()));
        let x = "x".repeat(1000);
        let y = "y".repeat(1000);
        assert_eq!(
            rendered(&pending),
            format!("[0.0,\"o\",\"{x}\"]\n[0.0,\"o\",\"€{y}\"]\n")
        );
        // Not copied: the first read's bytes (bar the character's start) and all of the
        // second's are the buffers the gateway relayed.
        let shared: Vec<*const u8> = pending.events.pieces().map(|p| p.as_ptr()).collect();
        assert!(shared.contains(&first.as_ptr()));
        assert!(shared.contains(&second.as_ptr()));
        assert_eq!(pending.events.len(), 2 * cast::FRAME + 2003);
        assert_eq!(
            pending.plain_text(),
            format!("{x}€{y}"),
            "searchable, joined"
        );
    }

    #[test]
    fn invalid_bytes_become_replacement_characters() {
        let mut pending = Pending::new(Instant::now());
        output(&mut pending, &[0xff, b'x']);
        // A lone continuation byte at the end is not the start of anything: written at once.
        output(&mut pending, &[b'y', 0x80]);
        assert_eq!(
            rendered(&pending),
            "[0.0,\"o\",\"\u{fffd}x\"]\n[0.0,\"o\",\"y\u{fffd}\"]\n"
        );
        assert!(pending.output_tail.is_empty());
    }

    #[test]
    fn searchable_text_is_text_output_within_its_allowance_per_second() {
        let start = Instant::now();
        let mut pending = Pending::new(start);
        pending.push(Event::Input(start, Bytes::from_static(b"secret typed")));
        output(&mut pending, b"\x1b[1mhello\x1b[0m\r\n");
        output(&mut pending, &[0u8; 100]);
        assert_eq!(
            pending.plain_text(),
            "hello\n",
            "no input, no escapes, no binary"
        );

        let line = b"0123456789abcdef".repeat(1024);
        let lines = SEARCHABLE_PER_SECOND / line.len() + 2;
        for _ in 0..lines {
            output(&mut pending, &line);
        }
        assert_eq!(
            pending.plain.len(),
            SEARCHABLE_PER_SECOND,
            "the second's allowance"
        );
        pending.push(Event::Output(
            start + Duration::from_secs(1),
            Bytes::from_static(b"next second"),
        ));
        assert!(pending.plain.ends_with(b"next second"));
        let all = rendered(&pending);
        assert_eq!(
            all.lines().count(),
            3 + lines + 1,
            "every event is recorded"
        );
    }
}
