//! `/_ping`, `/version`, `/info`, `/system/df`, `/events`.

use crate::http::{ok_json, ApiError, ApiResult, Body, Query};
use crate::router::{text, Call, Routed};
use crate::state::State;
use berth_engine::events::{EventFilters, EventsQuery};
use bytes::Bytes;
use hyper::{Response, StatusCode};
use serde_json::{json, Value};
use std::sync::Arc;

pub async fn route(state: &Arc<State>, call: Call) -> Routed {
    let segs = call.segs.clone();
    let s: Vec<&str> = segs.iter().map(String::as_str).collect();
    let method = call.method.clone();
    Routed::Done(match (method.as_str(), s.as_slice()) {
        ("GET" | "HEAD", ["_ping"]) => Ok(ping()),
        ("GET", ["version"]) => version(state).await,
        ("GET", ["info"]) => info(state).await,
        ("GET", ["system", "df"]) => df(state).await,
        ("GET", ["events"]) => events(state, &call.query).await,
        _ => return Routed::Next(call),
    })
}

/// The CLI's first call: the API version and what the daemon is.
fn ping() -> crate::http::Resp {
    let mut r = text(StatusCode::OK, "OK");
    let h = r.headers_mut();
    for (k, v) in [
        ("Builder-Version", "1"),
        ("Swarm", "inactive"),
        ("Cache-Control", "no-cache, no-store, must-revalidate"),
        ("Pragma", "no-cache"),
    ] {
        h.insert(k, hyper::header::HeaderValue::from_static(v));
    }
    r
}

async fn version(state: &Arc<State>) -> ApiResult {
    let v = state.pool.run(|e| Ok(e.version())).await?;
    let details = json!({
        "ApiVersion": v.api_version,
        "Arch": v.arch,
        "BuildTime": v.build_time,
        "Experimental": "false",
        "GitCommit": v.git_commit,
        "GoVersion": v.go_version,
        "KernelVersion": v.kernel_version,
        "MinAPIVersion": v.min_api_version,
        "Os": v.os,
    });
    ok_json(&json!({
        "Platform": {"Name": "berth"},
        "Components": [{"Name": "Engine", "Version": v.version, "Details": details}],
        "Version": v.version,
        "ApiVersion": v.api_version,
        "MinAPIVersion": v.min_api_version,
        "GitCommit": v.git_commit,
        "GoVersion": v.go_version,
        "Os": v.os,
        "Arch": v.arch,
        "KernelVersion": v.kernel_version,
        "BuildTime": v.build_time,
    }))
}

async fn info(state: &Arc<State>) -> ApiResult {
    let v = state
        .pool
        .run(|e| {
            let info = e.info()?;
            let counts = e.container_counts()?;
            Ok((info, counts))
        })
        .await?;
    let (info, (total, running, paused, stopped)) = v;
    let mut v = serde_json::to_value(&info)
        .map_err(|e| ApiError::internal(format!("cannot encode info: {e}")))?;
    v["Containers"] = json!(total);
    v["ContainersRunning"] = json!(running);
    v["ContainersPaused"] = json!(paused);
    v["ContainersStopped"] = json!(stopped);
    ok_json(&berth_engine::shape::info(v))
}

/// `GET /system/df`: images, containers (with sizes), volumes (with usage) and the build cache,
/// in dockerd's shape; the CLI computes the totals.
async fn df(state: &Arc<State>) -> ApiResult {
    // The engine's figures, the same the CLI's `system df` renders.
    let usage = state.pool.run(|e| e.disk_usage()).await?;
    let layers = usage.layers_size();
    let cache_size = usage.build_cache_size;
    let images = usage.images;
    let containers: Vec<Value> = usage
        .containers
        .iter()
        .map(super::containers::summary_json)
        .collect();
    let volumes: Vec<Value> = usage
        .volumes
        .iter()
        .map(|u| {
            let v = &u.volume;
            json!({
                "Name": v.name,
                "Driver": v.driver,
                "Mountpoint": v.mountpoint,
                "CreatedAt": v.created_at,
                "Labels": v.labels,
                "Scope": v.scope,
                "Options": v.options,
                "UsageData": {"Size": u.size, "RefCount": u.ref_count},
            })
        })
        .collect();
    // The build cache is one entry: berth keeps no per-record usage.
    let cache: Vec<Value> = if cache_size > 0 {
        vec![json!({
            "ID": "berth-build-cache", "Type": "regular", "Description": "berth build cache",
            "InUse": false, "Shared": false, "Size": cache_size,
            "CreatedAt": "", "LastUsedAt": null, "UsageCount": 0,
        })]
    } else {
        Vec::new()
    };
    ok_json(&json!({
        "LayersSize": layers,
        "Images": images,
        "Containers": containers,
        "Volumes": volumes,
        "BuildCache": cache,
    }))
}

/// A `since`/`until` value as the docker CLI sends it (`SECONDS.NANOS`), or anything
/// `berth events` accepts (RFC 3339, a duration before now).
fn event_time(q: &Query, key: &str) -> Result<Option<i64>, ApiError> {
    let Some(s) = q.get(key).filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    if let Some((secs, frac)) = s.split_once('.') {
        if let (Ok(secs), true) = (
            secs.parse::<i64>(),
            frac.bytes().all(|b| b.is_ascii_digit()),
        ) {
            let mut nanos = frac.to_string();
            nanos.truncate(9);
            while nanos.len() < 9 {
                nanos.push('0');
            }
            let n: i64 = nanos.parse().unwrap_or(0);
            return Ok(Some(secs * 1_000_000_000 + n));
        }
    }
    if let Ok(secs) = s.parse::<i64>() {
        return Ok(Some(secs * 1_000_000_000));
    }
    berth_engine::containers::parse_time_arg(s)
        .map(|f| Some((f * 1e9) as i64))
        .map_err(|_| {
            ApiError::bad_request(format!(
                "invalid value for {key}: {s:?} (use unix seconds, RFC 3339 or a duration such as 10m)"
            ))
        })
}

/// `GET /events`: the log's history in range, then (without `until`) new events as they are
/// recorded, one JSON object a line, until the client goes away.
async fn events(state: &Arc<State>, q: &Query) -> ApiResult {
    let filters = EventFilters::parse(&q.filters()?)?;
    let query = EventsQuery {
        since: event_time(q, "since")?,
        until: event_time(q, "until")?,
        filters,
    };
    let (tx, body) = Body::channel();
    let pool = state.pool.clone();
    tokio::spawn(async move {
        let _ = pool
            .run_long(move |e| {
                let stop = || tx.is_closed();
                e.events(&query, &stop, &mut |ev| {
                    let mut line = ev.api_json().to_string();
                    line.push('\n');
                    tx.blocking_send(Bytes::from(line))
                        .map_err(|_| std::io::Error::other("client gone"))
                })
            })
            .await;
    });
    Ok(Response::builder()
        .status(StatusCode::OK)
        .header("Content-Type", "application/json")
        .body(body)
        .unwrap_or_else(|_| Response::new(Body::empty())))
}
