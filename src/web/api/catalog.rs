//! What the caller may request: each activity their policies grant, with its policy and the
//! resources that policy grants (the ids `POST /api/v1/requests` takes).

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use uuid::Uuid;

use super::auth::Caller;
use super::error::ApiResult;
use crate::db::catalog;
use crate::state::AppState;

/// Most resources listed per grant.
const MAX_RESOURCES: i64 = 1000;

#[derive(Debug, Serialize)]
pub struct GrantedResource {
    pub id: Uuid,
    pub name: String,
    pub kind: crate::domain::catalog::ResourceKind,
    pub platform: String,
    pub address: String,
}

#[derive(Debug, Serialize)]
pub struct Grant {
    pub activity_id: Uuid,
    pub activity: String,
    pub platform: String,
    pub description: String,
    pub policy_id: Uuid,
    pub policy: String,
    pub approval_required: bool,
    pub resources: Vec<GrantedResource>,
}

#[derive(Debug, Serialize)]
pub struct Catalog {
    pub grants: Vec<Grant>,
}

/// `GET /api/v1/catalog`: as Request Type and Resource Selection offer them.
pub async fn show(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Catalog>> {
    let mut grants = Vec::new();
    for g in crate::app::requests::granted(&state, &caller.actor).await? {
        let (resources, _) =
            catalog::granted_resources(&state.db, g.policy_id, "", MAX_RESOURCES, 0).await?;
        grants.push(Grant {
            activity_id: g.activity_id,
            activity: g.name,
            platform: g.platform,
            description: g.description,
            policy_id: g.policy_id,
            policy: g.policy_name,
            approval_required: g.approval_required,
            resources: resources
                .into_iter()
                .map(|r| GrantedResource {
                    id: r.id,
                    name: r.name,
                    kind: r.kind,
                    platform: r.platform,
                    address: r.address,
                })
                .collect(),
        });
    }
    Ok(Json(Catalog { grants }))
}
