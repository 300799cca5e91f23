//! For administrators (admin scope and the admin role): the catalogue and the audit log,
//! read-only, with the admin pages' filters; the audit log also as a CSV or JSON export.

use axum::Json;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::error::{ApiError, ApiResult};
use super::ts;
use crate::db;
use crate::domain::catalog::ResourceKind;
use crate::domain::spreadsheet;
use crate::state::AppState;

/// Most rows one list or export holds.
const LIMIT: i64 = 10_000;

#[derive(Debug, Default, Deserialize)]
pub struct SearchParams {
    /// Part of a name (and of the other texts each admin page searches).
    #[serde(default)]
    pub q: String,
    /// Resources: `server`, `database`, `website` or `domain`.
    #[serde(default)]
    pub kind: String,
    /// Include archived resources and activities.
    #[serde(default)]
    pub archived: bool,
}

fn bounded(text: &str) -> String {
    text.trim().chars().take(200).collect()
}

/// `GET /api/v1/admin/resources`.
pub async fn resources(
    State(state): State<AppState>,
    Query(p): Query<SearchParams>,
) -> ApiResult<Json<Value>> {
    let kind = match p.kind.trim() {
        "" => None,
        k => Some(
            serde_json::from_value::<ResourceKind>(json!(k)).map_err(|_| {
                ApiError::invalid("Unknown kind.")
                    .field("kind", "Choose server, database, website or domain.")
            })?,
        ),
    };
    let search = bounded(&p.q);
    let (rows, total) = db::resources::list(
        &state.db,
        &db::resources::Filter {
            search: &search,
            kind,
            platform: "",
            archived: p.archived,
        },
        LIMIT,
        0,
    )
    .await?;
    let items: Vec<Value> = rows
        .into_iter()
        .map(|r| {
            json!({
                "id": r.id, "name": r.name, "kind": r.kind, "platform": r.platform,
                "address": r.address, "port": r.port, "description": r.description,
                "archived": r.archived, "provisioner": r.provisioner.key(),
            })
        })
        .collect();
    Ok(Json(json!({ "total": total, "resources": items })))
}

/// `GET /api/v1/admin/activities`.
pub async fn activities(
    State(state): State<AppState>,
    Query(p): Query<SearchParams>,
) -> ApiResult<Json<Value>> {
    let rows = db::activities::list(&state.db, &bounded(&p.q), p.archived).await?;
    let items: Vec<Value> = rows
        .into_iter()
        .map(|a| {
            json!({
                "id": a.id, "name": a.name, "description": a.description,
                "platform": a.platform, "protocol": a.protocol, "login_mode": a.login_mode,
                "archived": a.archived, "policies": a.policies,
            })
        })
        .collect();
    Ok(Json(json!({ "activities": items })))
}

/// `GET /api/v1/admin/policies`.
pub async fn policies(
    State(state): State<AppState>,
    Query(p): Query<SearchParams>,
) -> ApiResult<Json<Value>> {
    let rows = db::policies::list(&state.db, &bounded(&p.q)).await?;
    let items: Vec<Value> = rows
        .into_iter()
        .map(|p| {
            json!({
                "id": p.id, "name": p.name, "description": p.description,
                "profile": p.profile, "enabled": p.enabled, "members": p.members,
                "activities": p.activities, "resources": p.resources,
            })
        })
        .collect();
    Ok(Json(json!({ "policies": items })))
}

/// `GET /api/v1/admin/users`.
pub async fn users(
    State(state): State<AppState>,
    Query(p): Query<SearchParams>,
) -> ApiResult<Json<Value>> {
    let rows = db::users::list(&state.db, &bounded(&p.q), LIMIT).await?;
    let items: Vec<Value> = rows
        .into_iter()
        .map(|u| {
            json!({
                "id": u.id, "username": u.username, "display_name": u.display_name,
                "role": u.role, "disabled": u.disabled,
                "locked_until": u.locked_until.map(ts), "has_password": u.has_password,
            })
        })
        .collect();
    Ok(Json(json!({ "users": items })))
}

#[derive(Debug, Default, Deserialize)]
pub struct AuditParams {
    /// The kind of object changed (`user`, `resource`, `api_token`, ...).
    #[serde(default)]
    pub kind: String,
    /// Part of the actor's name.
    #[serde(default)]
    pub actor: String,
    /// Part of the object's name or the action.
    #[serde(default)]
    pub q: String,
    /// Export: `csv` (default) or `json`.
    #[serde(default)]
    pub format: String,
}

async fn audit_rows(state: &AppState, p: &AuditParams) -> ApiResult<(Vec<db::audit::Row>, i64)> {
    let (kind, actor, search) = (bounded(&p.kind), bounded(&p.actor), bounded(&p.q));
    Ok(db::audit::list(
        &state.db,
        &db::audit::Filter {
            kind: &kind,
            actor: &actor,
            search: &search,
        },
        LIMIT,
        0,
    )
    .await?)
}

fn audit_json(r: db::audit::Row) -> Value {
    let parse = |t: Option<String>| t.and_then(|t| serde_json::from_str::<Value>(&t).ok());
    json!({
        "id": r.id, "at": ts(r.at), "actor": r.actor_name, "action": r.action,
        "object_kind": r.object_kind, "object_name": r.object_name,
        "before": parse(r.before), "after": parse(r.after),
    })
}

/// `GET /api/v1/admin/audit`: newest first.
pub async fn audit(
    State(state): State<AppState>,
    Query(p): Query<AuditParams>,
) -> ApiResult<Json<Value>> {
    let (rows, total) = audit_rows(&state, &p).await?;
    let entries: Vec<Value> = rows.into_iter().map(audit_json).collect();
    Ok(Json(json!({ "total": total, "entries": entries })))
}

/// The formats of an audit export.
enum Format {
    Csv,
    Json,
}

impl Format {
    fn parse(text: &str) -> ApiResult<Self> {
        match text.trim() {
            "" | "csv" => Ok(Self::Csv),
            "json" => Ok(Self::Json),
            _ => Err(ApiError::invalid("Unknown format.").field("format", "Choose csv or json.")),
        }
    }
}

/// `GET /api/v1/admin/audit/export?format=csv|json`: a file to keep.
pub async fn audit_export(
    State(state): State<AppState>,
    Query(p): Query<AuditParams>,
) -> ApiResult<Response> {
    let format = Format::parse(&p.format)?;
    let (rows, _) = audit_rows(&state, &p).await?;
    Ok(match format {
        Format::Json => {
            let entries: Vec<Value> = rows.into_iter().map(audit_json).collect();
            (
                [(
                    header::CONTENT_DISPOSITION,
                    "attachment; filename=\"audit.json\"",
                )],
                Json(entries),
            )
                .into_response()
        }
        Format::Csv => (
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
                (
                    header::CONTENT_DISPOSITION,
                    "attachment; filename=\"audit.csv\"",
                ),
            ],
            audit_csv(rows)?,
        )
            .into_response(),
    })
}

/// The audit entries as a spreadsheet.
fn audit_csv(rows: Vec<db::audit::Row>) -> ApiResult<Vec<u8>> {
    let mut out = spreadsheet::writer();
    let write = |out: &mut csv::Writer<Vec<u8>>, fields: &[&str]| {
        out.write_record(fields.iter().map(|f| spreadsheet::defuse(f)))
            .map_err(ApiError::internal)
    };
    write(
        &mut out,
        &[
            "At",
            "Actor",
            "Action",
            "Object Kind",
            "Object",
            "Before",
            "After",
        ],
    )?;
    for r in rows {
        write(
            &mut out,
            &[
                &ts(r.at),
                &r.actor_name,
                &r.action,
                &r.object_kind,
                &r.object_name,
                r.before.as_deref().unwrap_or(""),
                r.after.as_deref().unwrap_or(""),
            ],
        )?;
    }
    out.into_inner()
        .map_err(|e| ApiError::internal(e.into_error()))
}
