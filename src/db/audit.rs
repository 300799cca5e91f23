//! The administrators' audit log (`admin_audit`, append-only): who changed what, when, with
//! the object before and after as JSON. Written in the same transaction as the change.

use sqlx::{FromRow, PgConnection, PgExecutor};
use time::OffsetDateTime;
use uuid::Uuid;

/// Who made a change: an administrator on the web, or the command line.
#[derive(Debug, Clone)]
pub struct Actor {
    pub id: Option<Uuid>,
    pub name: String,
}

impl Actor {
    /// Changes made with the `portcullis` command.
    pub fn command_line() -> Self {
        Self {
            id: None,
            name: "command line".into(),
        }
    }
}

/// One change to record. `before` and `after` are JSON text (from `to_jsonb(row)`).
pub struct Entry<'a> {
    pub action: &'a str,
    pub object_kind: &'a str,
    pub object_id: Option<Uuid>,
    pub object_name: &'a str,
    pub before: Option<String>,
    pub after: Option<String>,
}

/// Appends one entry.
pub async fn record(
    db: &mut PgConnection,
    actor: &Actor,
    entry: Entry<'_>,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "INSERT INTO admin_audit (actor_id, actor_name, action, object_kind, object_id,
                                  object_name, before, after)
         VALUES ($1, $2, $3, $4, $5, $6, $7::text::jsonb, $8::text::jsonb)",
        actor.id,
        &actor.name,
        entry.action,
        entry.object_kind,
        entry.object_id,
        entry.object_name,
        entry.before,
        entry.after,
    )
    .execute(db)
    .await
    .map(|_| ())
}

/// The JSON of one row of `table` (a constant of the calling module, never input).
pub async fn snapshot(
    db: &mut PgConnection,
    table: &'static str,
    id: Uuid,
) -> Result<Option<String>, sqlx::Error> {
    // Runtime SQL: one helper for every audited table, the name given by the caller.
    sqlx::query_scalar(&format!(
        "SELECT to_jsonb(t)::text FROM {table} t WHERE t.id = $1"
    ))
    .bind(id)
    .fetch_optional(db)
    .await
}

/// A row of the audit page.
#[derive(Debug)]
pub struct Row {
    pub id: i64,
    pub at: OffsetDateTime,
    pub actor_name: String,
    pub action: String,
    pub object_kind: String,
    pub object_name: String,
    pub before: Option<String>,
    pub after: Option<String>,
}

/// What the audit page filters by; empty strings match everything.
#[derive(Debug, Default)]
pub struct Filter<'a> {
    pub kind: &'a str,
    pub actor: &'a str,
    pub search: &'a str,
}

/// One page of entries, newest first, with the number matching.
pub async fn list(
    db: impl PgExecutor<'_>,
    filter: &Filter<'_>,
    limit: i64,
    offset: i64,
) -> Result<(Vec<Row>, i64), sqlx::Error> {
    let rows = sqlx::query!(
        r#"SELECT id, at, actor_name, action, object_kind, object_name,
                before::text AS before, after::text AS after, count(*) OVER () AS "total!"
         FROM admin_audit
         WHERE ($1 = '' OR object_kind = $1)
           AND ($2 = '' OR strpos(lower(actor_name), lower($2)) > 0)
           AND ($3 = '' OR strpos(lower(object_name), lower($3)) > 0
                OR strpos(lower(action), lower($3)) > 0)
         ORDER BY at DESC, id DESC
         LIMIT $4 OFFSET $5"#,
        filter.kind,
        filter.actor,
        filter.search,
        limit,
        offset,
    )
    .fetch_all(db)
    .await?;
    let total = rows.first().map_or(0, |r| r.total);
    let rows = rows
        .into_iter()
        .map(|r| Row {
            id: r.id,
            at: r.at,
            actor_name: r.actor_name,
            action: r.action,
            object_kind: r.object_kind,
            object_name: r.object_name,
            before: r.before,
            after: r.after,
        })
        .collect();
    Ok((rows, total))
}

/// Why an audited change to the catalogue was not made.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// Another object of this kind has the name in some letter case (`*_name_key`).
    #[error("the name is taken")]
    Taken,
    /// The object is gone (deleted meanwhile).
    #[error("not found")]
    NotFound,
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

impl WriteError {
    /// Maps a unique-name violation of `index` to [`WriteError::Taken`].
    pub fn from_unique(e: sqlx::Error, index: &str) -> Self {
        match &e {
            sqlx::Error::Database(d) if d.constraint() == Some(index) => Self::Taken,
            _ => Self::Db(e),
        }
    }
}

/// One entry of a checkbox list.
#[derive(Debug, Clone, FromRow)]
pub struct Choice {
    pub id: Uuid,
    pub label: String,
    pub detail: String,
}

/// The entries of a checkbox list: every ticked one first, then up to `limit` of the live
/// rows matching `search`, by label; and how many rows matched in all. `table`, `label`,
/// `detail` and `live` are SQL constants of the calling module, never input.
#[allow(clippy::too_many_arguments)]
pub async fn choices(
    db: impl PgExecutor<'_>,
    table: &'static str,
    label: &'static str,
    detail: &'static str,
    live: &'static str,
    search: &str,
    ticked: &[Uuid],
    limit: i64,
) -> Result<(Vec<Choice>, i64), sqlx::Error> {
    #[derive(FromRow)]
    struct Counted {
        #[sqlx(flatten)]
        choice: Choice,
        total: i64,
    }
    // Runtime SQL: one helper for every checkbox list, the table and columns given by the caller.
    let rows: Vec<Counted> = sqlx::query_as(&format!(
        "SELECT id, {label} AS label, {detail} AS detail, count(*) OVER () AS total
         FROM {table}
         WHERE id = ANY($1)
            OR (({live}) AND ($2 = '' OR strpos(lower({label}), lower($2)) > 0))
         ORDER BY (id = ANY($1)) DESC, lower({label})
         LIMIT $3"
    ))
    .bind(ticked)
    .bind(search)
    .bind(limit + i64::try_from(ticked.len()).unwrap_or(0))
    .fetch_all(db)
    .await?;
    let total = rows.first().map_or(0, |r| r.total);
    Ok((rows.into_iter().map(|r| r.choice).collect(), total))
}

/// The names of rows of `table` with the given ids, in order (for messages and snapshots).
pub async fn names(
    db: impl PgExecutor<'_>,
    table: &'static str,
    column: &'static str,
    ids: &[Uuid],
) -> Result<Vec<String>, sqlx::Error> {
    // Runtime SQL: one helper for every table, the table and column given by the caller.
    sqlx::query_scalar(&format!(
        "SELECT {column} FROM {table} WHERE id = ANY($1) ORDER BY lower({column})"
    ))
    .bind(ids)
    .fetch_all(db)
    .await
}

/// How many of `ids` exist in `table` (to refuse references to rows deleted meanwhile).
pub async fn count_existing(
    db: impl PgExecutor<'_>,
    table: &'static str,
    ids: &[Uuid],
) -> Result<usize, sqlx::Error> {
    // Runtime SQL: one helper for every table, the name given by the caller.
    let n: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {table} WHERE id = ANY($1)"))
        .bind(ids)
        .fetch_one(db)
        .await?;
    Ok(usize::try_from(n).unwrap_or(0))
}
