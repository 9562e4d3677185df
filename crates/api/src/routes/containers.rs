//! `/containers/…`.

use crate::http::{ok_json, ApiResult, Query};
use crate::router::{Call, Routed};
use crate::state::State;
use berth_engine::containers::{ContainerSummary, ListOptions};
use serde_json::{json, Value};
use std::sync::Arc;

pub async fn route(state: &Arc<State>, call: Call) -> Routed {
    let segs = call.segs.clone();
    let s: Vec<&str> = segs.iter().map(String::as_str).collect();
    let method = call.method.clone();
    Routed::Done(match (method.as_str(), s.as_slice()) {
        ("GET", ["containers", "json"]) => list(state, &call.query).await,
        _ => return Routed::Next(call),
    })
}

/// One `GET /containers/json` entry in dockerd's shape (`HostConfig.NetworkMode`,
/// `NetworkSettings`, `Mounts` as objects).
pub fn summary_json(c: &ContainerSummary) -> Value {
    let mounts: Vec<Value> = c
        .mounts
        .iter()
        .map(|m| {
            if m.starts_with('/') {
                json!({"Type": "bind", "Source": m})
            } else {
                json!({"Type": "volume", "Name": m, "Source": ""})
            }
        })
        .collect();
    let mut v = json!({
        "Id": c.id,
        "Names": c.names,
        "Image": c.image,
        "ImageID": c.image_id,
        "Command": c.command,
        "Created": c.created,
        "Ports": c.ports,
        "Labels": c.labels,
        "State": c.state,
        "Status": c.status,
        "HostConfig": {"NetworkMode": c.network_mode},
        "NetworkSettings": {"Networks": {}},
        "Mounts": mounts,
    });
    if let Some(rw) = c.size_rw {
        v["SizeRw"] = json!(rw);
    }
    if let Some(root) = c.size_root_fs {
        v["SizeRootFs"] = json!(root);
    }
    v
}

async fn list(state: &Arc<State>, q: &Query) -> ApiResult {
    let o = ListOptions {
        all: q.bool("all"),
        limit: q.int("limit")?.filter(|n| *n > 0).map(|n| n as usize),
        latest: false,
        size: q.bool("size"),
        filters: q.filters()?,
    };
    let list = state.pool.run(move |e| e.list_containers(&o)).await?;
    ok_json(&list.iter().map(summary_json).collect::<Vec<_>>())
}
