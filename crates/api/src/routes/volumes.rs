//! `/volumes/…`: the local driver only; anything another driver would need is refused.

use crate::http::{json_response, ok_json, read_json, status_only, ApiError, ApiResult, Query};
use crate::router::{Call, Routed};
use crate::state::State;
use hyper::StatusCode;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Arc;

pub async fn route(state: &Arc<State>, call: Call) -> Routed {
    let segs = call.segs.clone();
    let s: Vec<&str> = segs.iter().map(String::as_str).collect();
    let method = call.method.clone();
    Routed::Done(match (method.as_str(), s.as_slice()) {
        ("GET", ["volumes"]) => list(state, &call.query).await,
        ("POST", ["volumes", "create"]) => create(state, call).await,
        ("POST", ["volumes", "prune"]) => prune(state, &call.query).await,
        ("GET", ["volumes", name]) => {
            let name = name.to_string();
            let v = state.pool.run(move |e| e.inspect_volume(&name)).await;
            v.and_then(|v| ok_json(&v))
        }
        ("DELETE", ["volumes", name]) => {
            let name = name.to_string();
            let force = call.query.bool("force");
            match state.pool.run(move |e| e.remove_volume(&name, force)).await {
                Ok(()) => status_only(StatusCode::NO_CONTENT),
                Err(e) => Err(e),
            }
        }
        _ => return Routed::Next(call),
    })
}

async fn list(state: &Arc<State>, q: &Query) -> ApiResult {
    let filters = q.filters()?;
    let vols = state
        .pool
        .run(move |e| e.list_volumes_filtered(&filters))
        .await?;
    ok_json(&json!({ "Volumes": vols, "Warnings": Value::Null }))
}

#[derive(serde::Deserialize, Default)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
struct CreateBody {
    #[serde(default)]
    name: String,
    #[serde(default)]
    driver: String,
    #[serde(default)]
    driver_opts: Option<BTreeMap<String, String>>,
    #[serde(default)]
    labels: Option<BTreeMap<String, String>>,
    /// Swarm cluster volumes (API 1.42): not served here.
    #[serde(default)]
    cluster_volume_spec: Option<Value>,
}

/// `POST /volumes/create`: 201 with the volume; a name is made up when none is given, as
/// dockerd does.
async fn create(state: &Arc<State>, call: Call) -> ApiResult {
    let body: CreateBody = read_json(call.req).await?.unwrap_or_default();
    if !matches!(body.driver.as_str(), "" | "local") {
        return Err(ApiError::not_found(format!(
            "plugin \"{}\" not found: berth has the local volume driver only",
            body.driver
        )));
    }
    if body.driver_opts.as_ref().is_some_and(|o| !o.is_empty()) {
        return Err(ApiError::bad_request(
            "driver options (type, device, o) are not supported by berth's local volume driver: leave them out",
        ));
    }
    if body
        .cluster_volume_spec
        .as_ref()
        .is_some_and(|v| !v.is_null())
    {
        return Err(ApiError::bad_request(
            "cluster volumes need swarm mode, which berth does not have",
        ));
    }
    let name = if body.name.is_empty() {
        random_name()?
    } else {
        body.name
    };
    let labels = body.labels.unwrap_or_default();
    let v = state
        .pool
        .run(move |e| e.create_volume(&name, &labels))
        .await?;
    Ok(json_response(StatusCode::CREATED, &v))
}

/// 64 hex digits, the shape of dockerd's anonymous volume names.
fn random_name() -> Result<String, ApiError> {
    use std::io::Read;
    let mut b = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .map_err(|e| ApiError::internal(format!("reading /dev/urandom: {e}")))?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

/// `POST /volumes/prune?filters=`: anonymous volumes no container uses; `all=true` (API 1.42)
/// every unused one. Label filters are refused (berth's volume prune takes none yet).
async fn prune(state: &Arc<State>, q: &Query) -> ApiResult {
    let mut all = false;
    for f in q.filters()? {
        match f.as_str() {
            "all=true" | "all=1" => all = true,
            "all=false" | "all=0" => {}
            other => {
                return Err(ApiError::bad_request(format!(
                    "invalid filter {other:?}: berth's volume prune takes all=true|false only"
                )))
            }
        }
    }
    let r = state.pool.run(move |e| e.prune_volumes(all)).await?;
    ok_json(&json!({
        "VolumesDeleted": if r.volumes_deleted.is_empty() { Value::Null } else { json!(r.volumes_deleted) },
        "SpaceReclaimed": r.space_reclaimed,
    }))
}
