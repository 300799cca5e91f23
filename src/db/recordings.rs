//! Recordings of connections through the gateway and the browser terminal: the row that
//! describes one connection, and its events in chunks (`crate::recording` writes them as the
//! stream flows, in the form of `domain::cast`, which renders them as asciicast on reading).

use std::net::IpAddr;

use sqlx::{FromRow, PgExecutor};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::domain::cast;

/// How the connection came in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::Type)]
#[sqlx(type_name = "recording_via", rename_all = "snake_case")]
pub enum Via {
    /// An SSH client through the gateway.
    Ssh,
    /// The browser terminal behind the Connection icon.
    Browser,
}

/// What the connection ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::Type)]
#[sqlx(type_name = "recording_mode", rename_all = "snake_case")]
pub enum Mode {
    /// An interactive shell.
    Shell,
    /// One command (`ssh host command`).
    Exec,
    /// A file transfer (scp or sftp).
    Sftp,
}

/// What is known when a connection opens.
#[derive(Debug, Clone)]
pub struct NewRecording {
    pub session_id: Uuid,
    pub user_id: Uuid,
    pub user_name: String,
    pub via: Via,
    pub mode: Mode,
    pub command: String,
    pub width: u16,
    pub height: u16,
    pub with_input: bool,
    pub client_addr: Option<IpAddr>,
}

/// A recording as listed and as its asciicast header needs it.
#[derive(Debug, Clone)]
pub struct Row {
    pub id: Uuid,
    pub session_id: Uuid,
    pub user_id: Option<Uuid>,
    pub user_name: String,
    pub via: Via,
    pub mode: Mode,
    pub command: String,
    pub width: i32,
    pub height: i32,
    pub with_input: bool,
    pub started_at: OffsetDateTime,
    pub ended_at: Option<OffsetDateTime>,
    pub end_reason: Option<String>,
    pub bytes: i64,
}

/// Opens a recording; `started_at` is the database's clock, which the event times count from.
pub async fn create(db: impl PgExecutor<'_>, new: &NewRecording) -> Result<Row, sqlx::Error> {
    let command: String = new.command.chars().take(4096).collect();
    sqlx::query_as!(
        Row,
        r#"INSERT INTO recordings (id, session_id, user_id, user_name, via, mode, command, width,
               height, with_input, client_addr)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11::text::inet)
           RETURNING id, session_id, user_id, user_name, via AS "via: Via", mode AS "mode: Mode",
               command, width, height, with_input, started_at, ended_at, end_reason, bytes"#,
        Uuid::now_v7(),
        new.session_id,
        new.user_id,
        &new.user_name,
        new.via as Via,
        new.mode as Mode,
        command,
        i32::from(new.width.clamp(1, 1000)),
        i32::from(new.height.clamp(1, 1000)),
        new.with_input,
        new.client_addr.map(|a| a.to_string()) as Option<String>,
    )
    .fetch_one(db)
    .await
}

/// A chunk's bytes as they go into `recording_chunks.data`: one packed frame, or the frames
/// as gathered, written piece by piece straight into the statement's parameters.
#[derive(Debug, Clone, Copy)]
pub enum ChunkData<'a> {
    Packed(&'a [u8]),
    Frames(&'a cast::Frames),
}

impl ChunkData<'_> {
    fn len(&self) -> usize {
        match self {
            ChunkData::Packed(bytes) => bytes.len(),
            ChunkData::Frames(frames) => frames.len(),
        }
    }
}

impl sqlx::Type<sqlx::Postgres> for ChunkData<'_> {
    fn type_info() -> sqlx::postgres::PgTypeInfo {
        <&[u8] as sqlx::Type<sqlx::Postgres>>::type_info()
    }
}

impl sqlx::Encode<'_, sqlx::Postgres> for ChunkData<'_> {
    fn encode_by_ref(
        &self,
        buf: &mut sqlx::postgres::PgArgumentBuffer,
    ) -> Result<sqlx::encode::IsNull, sqlx::error::BoxDynError> {
        match self {
            ChunkData::Packed(bytes) => buf.extend_from_slice(bytes),
            ChunkData::Frames(frames) => {
                for piece in frames.pieces() {
                    buf.extend_from_slice(piece);
                }
            }
        }
        Ok(sqlx::encode::IsNull::No)
    }

    fn size_hint(&self) -> usize {
        self.len()
    }
}

/// Inserts one chunk of events (`domain::cast` frames), in a transaction that
/// [`commit_chunk`] finishes: the recorder inserts the next chunk while the one before is
/// still being written, and commits them in order, so a reader never sees a later chunk
/// without the earlier ones.
///
/// Committed without waiting for the WAL flush (`synchronous_commit = off` for this
/// transaction only): a bulk transfer waits for its chunks, and a flush per chunk made it
/// crawl (bench/gateway.sh). A crash loses at most the last few hundred milliseconds of
/// commits (`wal_writer_delay`), within the recorder's "about a second".
pub async fn insert_chunk(
    db: &sqlx::PgPool,
    id: Uuid,
    seq: i32,
    events: ChunkData<'_>,
    plain: &str,
) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, sqlx::Error> {
    let mut tx = db.begin().await?;
    sqlx::query!("SET LOCAL synchronous_commit = off")
        .execute(&mut *tx)
        .await?;
    sqlx::query!(
        "INSERT INTO recording_chunks (recording_id, seq, data, plain) VALUES ($1, $2, $3, $4)",
        id,
        seq,
        // `ChunkData` is bytea (its `Type`), which the macro cannot see through.
        events as _,
        plain,
    )
    .execute(&mut *tx)
    .await?;
    Ok(tx)
}

/// Counts the chunk's `bytes` on its recording and commits it. Called once the chunk before
/// is committed: the count takes the recording's row lock, which two chunks in flight would
/// otherwise take in either order.
pub async fn commit_chunk(
    mut tx: sqlx::Transaction<'static, sqlx::Postgres>,
    id: Uuid,
    bytes: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "UPDATE recordings SET bytes = bytes + $2 WHERE id = $1",
        id,
        bytes
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await
}

/// Marks a recording ended (once: a second call keeps the first reason).
pub async fn finish(db: impl PgExecutor<'_>, id: Uuid, reason: &str) -> Result<(), sqlx::Error> {
    let reason: String = reason.chars().take(500).collect();
    sqlx::query!(
        "UPDATE recordings SET ended_at = now(), end_reason = $2 WHERE id = $1 AND ended_at IS NULL",
        id,
        reason
    )
    .execute(db)
    .await?;
    Ok(())
}

/// One recording.
pub async fn get(db: impl PgExecutor<'_>, id: Uuid) -> Result<Option<Row>, sqlx::Error> {
    sqlx::query_as!(
        Row,
        r#"SELECT id, session_id, user_id, user_name, via AS "via: Via", mode AS "mode: Mode",
               command, width, height, with_input, started_at, ended_at, end_reason, bytes
           FROM recordings WHERE id = $1"#,
        id
    )
    .fetch_optional(db)
    .await
}

/// A session's recordings, oldest first.
pub async fn for_session(
    db: impl PgExecutor<'_>,
    session_id: Uuid,
) -> Result<Vec<Row>, sqlx::Error> {
    sqlx::query_as!(
        Row,
        r#"SELECT id, session_id, user_id, user_name, via AS "via: Via", mode AS "mode: Mode",
               command, width, height, with_input, started_at, ended_at, end_reason, bytes
           FROM recordings
           WHERE session_id = $1 ORDER BY started_at, id LIMIT 1000"#,
        session_id
    )
    .fetch_all(db)
    .await
}

/// The asciicast event lines of chunks from `from_seq` on, in order, with the next seq to
/// ask for.
pub async fn events_from(
    db: impl PgExecutor<'_>,
    id: Uuid,
    from_seq: i32,
) -> Result<(String, i32), sqlx::Error> {
    let (events, next, _) = events_page(db, id, from_seq, i64::from(i32::MAX)).await?;
    Ok((events, next))
}

/// Like [`events_from`], but at most `max_chunks` chunks (a watcher catching up with a bulk
/// transfer gets it in pieces, not all at once); also says whether more chunks follow.
pub async fn events_page(
    db: impl PgExecutor<'_>,
    id: Uuid,
    from_seq: i32,
    max_chunks: i64,
) -> Result<(String, i32, bool), sqlx::Error> {
    let mut rows = sqlx::query!(
        r#"SELECT seq, coalesce(packed, data) AS "data!" FROM recording_chunks
           WHERE recording_id = $1 AND seq >= $2 ORDER BY seq LIMIT $3"#,
        id,
        from_seq,
        max_chunks + 1
    )
    .fetch_all(db)
    .await?;
    let more = rows.len() as i64 > max_chunks;
    rows.truncate(usize::try_from(max_chunks).unwrap_or(0));
    let next = rows.last().map_or(from_seq, |row| row.seq + 1);
    let mut events = String::new();
    for row in &rows {
        cast::render(&row.data, &mut events).map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
    }
    Ok((events, next, more))
}

/// The oldest recording that ended at least `settle_seconds` ago and whose chunks are not
/// compacted yet, with its first chunk still to do.
pub async fn next_to_compact(
    db: impl PgExecutor<'_>,
    settle_seconds: i32,
) -> Result<Option<(Uuid, i32)>, sqlx::Error> {
    let row = sqlx::query!(
        r#"SELECT r.id, coalesce((SELECT min(c.seq) FROM recording_chunks c
                                  WHERE c.recording_id = r.id AND c.packed IS NULL), 0) AS "from!"
           FROM recordings r
           WHERE r.compacted_at IS NULL AND r.ended_at < now() - make_interval(secs => $1)
           ORDER BY r.ended_at LIMIT 1"#,
        f64::from(settle_seconds)
    )
    .fetch_optional(db)
    .await?;
    Ok(row.map(|r| (r.id, r.from)))
}

/// Compacts chunks `from_seq .. from_seq + batch` of recording `id`: their bytes move to
/// `packed`, which PostgreSQL compresses. Returns the seq to go on from, or `None` once every
/// chunk is done (the recording is then marked compacted). A chunk written after that (by an
/// instance still holding a connection the worker took for abandoned) stays in `data`,
/// which readers fall back to.
pub async fn compact_some(
    db: &sqlx::PgPool,
    id: Uuid,
    from_seq: i32,
    batch: i32,
) -> Result<Option<i32>, sqlx::Error> {
    sqlx::query!(
        "UPDATE recording_chunks SET packed = data, data = '\\x'
         WHERE recording_id = $1 AND seq >= $2 AND seq < $2 + $3 AND packed IS NULL",
        id,
        from_seq,
        batch
    )
    .execute(db)
    .await?;
    let more = sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM recording_chunks
                          WHERE recording_id = $1 AND seq >= $2) AS "more!""#,
        id,
        from_seq + batch
    )
    .fetch_one(db)
    .await?;
    if more {
        return Ok(Some(from_seq + batch));
    }
    sqlx::query!(
        "UPDATE recordings SET compacted_at = now() WHERE id = $1",
        id
    )
    .execute(db)
    .await?;
    Ok(None)
}

/// Deletes (with their chunks) up to `batch` recordings that ended more than `days` days
/// ago; how many went.
pub async fn prune(db: impl PgExecutor<'_>, days: u32, batch: i64) -> Result<u64, sqlx::Error> {
    let done = sqlx::query!(
        "DELETE FROM recordings WHERE id IN (
             SELECT id FROM recordings
             WHERE ended_at < now() - make_interval(days => $1)
             ORDER BY ended_at LIMIT $2)",
        i32::try_from(days).unwrap_or(i32::MAX),
        batch
    )
    .execute(db)
    .await?;
    Ok(done.rows_affected())
}

/// Closes recordings left open by an instance that stopped without finishing them: no
/// chunk (nor start) for `idle_minutes`. They end at their last chunk, with
/// "Portcullis stopped"; how many were closed.
pub async fn close_abandoned(
    db: impl PgExecutor<'_>,
    idle_minutes: i32,
) -> Result<u64, sqlx::Error> {
    let done = sqlx::query!(
        "WITH last AS (
             SELECT r.id, GREATEST(r.started_at, (SELECT max(c.at) FROM recording_chunks c
                                                 WHERE c.recording_id = r.id)) AS at
             FROM recordings r WHERE r.ended_at IS NULL
         )
         UPDATE recordings r SET ended_at = last.at, end_reason = 'Portcullis stopped'
         FROM last
         WHERE r.id = last.id AND r.ended_at IS NULL
           AND last.at < now() - make_interval(mins => $1)",
        idle_minutes
    )
    .execute(db)
    .await?;
    Ok(done.rows_affected())
}

/// A recording whose plain text matched a search, with the text of its first matching chunk.
#[derive(Debug, Clone, FromRow)]
pub struct Hit {
    pub id: Uuid,
    pub session_id: Uuid,
    pub user_name: String,
    pub resource_name: String,
    pub started_at: OffsetDateTime,
    pub plain: String,
}

/// Recordings whose output holds `text`, newest first: the words as a phrase through the
/// full-text index; when that finds nothing (part of a word, a path), the text as it is,
/// letter case aside.
pub async fn search(db: &sqlx::PgPool, text: &str, limit: i64) -> Result<Vec<Hit>, sqlx::Error> {
    const QUERY: &str = "WITH hits AS (
             SELECT DISTINCT ON (c.recording_id) c.recording_id, c.plain
             FROM recording_chunks c WHERE {condition}
             ORDER BY c.recording_id, c.seq)
         SELECT r.id, r.session_id, r.user_name, s.resource_name, r.started_at, hits.plain
         FROM hits JOIN recordings r ON r.id = hits.recording_id
         JOIN activity_sessions s ON s.id = r.session_id
         ORDER BY r.started_at DESC, r.id LIMIT $2";
    let phrase = QUERY.replace(
        "{condition}",
        "to_tsvector('simple', c.plain) @@ phraseto_tsquery('simple', $1)",
    );
    // Runtime SQL: one query text with two search conditions.
    let hits: Vec<Hit> = sqlx::query_as(&phrase)
        .bind(text)
        .bind(limit)
        .fetch_all(db)
        .await?;
    if !hits.is_empty() {
        return Ok(hits);
    }
    let pattern = format!(
        "%{}%",
        text.replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_")
    );
    // Runtime SQL: the same query text, with the other search condition.
    sqlx::query_as(&QUERY.replace("{condition}", "c.plain ILIKE $1"))
        .bind(pattern)
        .bind(limit)
        .fetch_all(db)
        .await
}
