//! `/containers/…`: list, create, inspect, the lifecycle (start, stop, kill, restart, pause,
//! unpause, rename, rm, wait, resize, update, prune), and their streams (attach, logs, stats,
//! export, archive, changes, top).

use crate::http::{
    json_response, ok_json, read_json, status_only, ApiError, ApiResult, Body, Query,
};
use crate::router::{Call, Routed};
use crate::state::State;
use crate::stream::{self, Streams};
use berth_engine::containers::{ContainerSummary, ListOptions, LogOptions, WaitCondition};
use berth_engine::streams::DetachMatcher;
use berth_engine::{Engine, EngineError};
use bytes::Bytes;
use hyper::{Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

pub async fn route(state: &Arc<State>, call: Call) -> Routed {
    let segs = call.segs.clone();
    let s: Vec<&str> = segs.iter().map(String::as_str).collect();
    let method = call.method.clone();
    let q = &call.query;
    Routed::Done(match (method.as_str(), s.as_slice()) {
        ("GET", ["containers", "json"]) => list(state, q).await,
        ("POST", ["containers", "create"]) => create(state, call).await,
        ("POST", ["containers", "prune"]) => prune(state, q).await,
        ("GET", ["containers", id, "json"]) => inspect(state, id, q).await,
        ("POST", ["containers", id, "start"]) => start(state, id, q).await,
        ("POST", ["containers", id, "stop"]) => stop(state, id, q).await,
        ("POST", ["containers", id, "restart"]) => restart(state, id, q).await,
        ("POST", ["containers", id, "kill"]) => kill(state, id, q).await,
        ("POST", ["containers", id, "pause"]) => {
            simple(state, id, |e, id| e.pause_container(id)).await
        }
        ("POST", ["containers", id, "unpause"]) => {
            simple(state, id, |e, id| e.unpause_container(id)).await
        }
        ("POST", ["containers", id, "rename"]) => rename(state, id, q).await,
        ("DELETE", ["containers", id]) => remove(state, id, q).await,
        ("POST", ["containers", id, "wait"]) => wait(state, id, q).await,
        ("POST", ["containers", id, "resize"]) => resize(state, id, q).await,
        ("POST", ["containers", id, "attach"]) => attach(state, id, call).await,
        ("GET", ["containers", id, "logs"]) => logs(state, id, q).await,
        ("GET", ["containers", id, "top"]) => top(state, id, q).await,
        ("GET", ["containers", id, "stats"]) => stats(state, id, q).await,
        ("GET", ["containers", id, "changes"]) => changes(state, id).await,
        ("GET", ["containers", id, "export"]) => export(state, id).await,
        ("HEAD", ["containers", id, "archive"]) => archive_stat(state, id, q).await,
        ("GET", ["containers", id, "archive"]) => archive_get(state, id, q).await,
        ("PUT", ["containers", id, "archive"]) => archive_put(state, id, call).await,
        ("POST", ["containers", id, "update"]) => update(state, id, call).await,
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

async fn create(state: &Arc<State>, call: Call) -> ApiResult {
    let name = call
        .query
        .get("name")
        .filter(|n| !n.is_empty())
        .map(str::to_string);
    if let Some(p) = call.query.get("platform").filter(|p| !p.is_empty()) {
        berth_engine::containers::host_opts::check_platform(p)?;
    }
    let body: Value = read_json(call.req)
        .await?
        .ok_or_else(|| ApiError::bad_request("a container configuration (JSON) is required"))?;
    let created = super::create::create_options(body, name)?;
    let o = created.options;
    let id = state
        .pool
        // With `pull: Never` a missing image is the engine's not-found: dockerd's 404, on which
        // the docker CLI pulls and retries.
        .run(move |e| e.create_container(&o))
        .await?;
    Ok(json_response(
        StatusCode::CREATED,
        &json!({"Id": id, "Warnings": []}),
    ))
}

async fn inspect(state: &Arc<State>, id: &str, q: &Query) -> ApiResult {
    let id = id.to_string();
    let size = q.bool("size");
    let v = state
        .pool
        .run(move |e| e.inspect_container(&id, size))
        .await?;
    ok_json(&v)
}

async fn simple<F>(state: &Arc<State>, id: &str, f: F) -> ApiResult
where
    F: FnOnce(&mut Engine, &str) -> Result<(), EngineError> + Send + 'static,
{
    let id = id.to_string();
    state.pool.run(move |e| f(e, &id)).await?;
    status_only(StatusCode::NO_CONTENT)
}

/// `start`: 304 when it already runs. An attach that arrived first is handed the connection
/// the monitor serves from before the process runs.
async fn start(state: &Arc<State>, id: &str, q: &Query) -> ApiResult {
    stream::detach_keys(q.get("detachKeys"))?;
    let name = id.to_string();
    let st = state.clone();
    let started = state
        .pool
        .run(move |e| {
            let id = e.resolve_container(&name)?.id;
            let live = e.container_live(&id)?;
            if live.running || live.restarting {
                return Ok(false);
            }
            let pending = st.take_pending_attach(&id);
            let r = match pending {
                Some(tx) => e.start_container_attached(&id).map(|(_, client)| {
                    let _ = tx.send(client);
                }),
                None => e.start_container(&id).map(|_| ()),
            };
            // The server never exits: the exit hook must not wait for it.
            e.release_start_lock(&id);
            r?;
            let container = e.container_handle(&id)?;
            for tx in st.take_other_attaches(&id) {
                if let Ok(c) = container.attach() {
                    let _ = tx.send(c);
                }
            }
            Ok(true)
        })
        .await?;
    status_only(if started {
        StatusCode::NO_CONTENT
    } else {
        StatusCode::NOT_MODIFIED
    })
}

fn signal_param(q: &Query) -> Option<String> {
    q.get("signal")
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

fn timeout_param(q: &Query) -> Result<Option<i64>, ApiError> {
    // `t` (older clients: `timeout`); -1 waits for ever, as dockerd: a day is enough.
    Ok(match q.int("t")?.or(q.int("timeout")?) {
        Some(t) if t < 0 => Some(86_400),
        t => t,
    })
}

async fn stop(state: &Arc<State>, id: &str, q: &Query) -> ApiResult {
    let (name, t, sig) = (id.to_string(), timeout_param(q)?, signal_param(q));
    let stopped = state
        .pool
        .run(move |e| {
            let live = e.container_live(&name)?;
            if !live.running && !live.restarting {
                return Ok(false);
            }
            e.stop_container(&name, t, sig.as_deref())?;
            Ok(true)
        })
        .await?;
    status_only(if stopped {
        StatusCode::NO_CONTENT
    } else {
        StatusCode::NOT_MODIFIED
    })
}

async fn restart(state: &Arc<State>, id: &str, q: &Query) -> ApiResult {
    let (name, t, sig) = (id.to_string(), timeout_param(q)?, signal_param(q));
    state
        .pool
        .run(move |e| {
            let id = e.stop_container(&name, t, sig.as_deref())?;
            let r = e.start_container(&id);
            e.release_start_lock(&id);
            r.map(|_| ())
        })
        .await?;
    status_only(StatusCode::NO_CONTENT)
}

async fn kill(state: &Arc<State>, id: &str, q: &Query) -> ApiResult {
    let name = id.to_string();
    let sig = signal_param(q).unwrap_or_else(|| "KILL".into());
    state
        .pool
        .run(move |e| e.kill_container(&name, &sig).map(|_| ()))
        .await?;
    status_only(StatusCode::NO_CONTENT)
}

async fn rename(state: &Arc<State>, id: &str, q: &Query) -> ApiResult {
    let name = id.to_string();
    let new = q
        .get("name")
        .filter(|n| !n.is_empty())
        .ok_or_else(|| ApiError::bad_request("the new name is required (?name=NEW)"))?
        .to_string();
    state
        .pool
        .run(move |e| e.rename_container(&name, &new))
        .await?;
    status_only(StatusCode::NO_CONTENT)
}

async fn remove(state: &Arc<State>, id: &str, q: &Query) -> ApiResult {
    if q.bool("link") {
        return Err(ApiError::bad_request(
            "links are not supported by berth (link=1): there is no link to remove",
        ));
    }
    let (name, force, volumes) = (id.to_string(), q.bool("force"), q.bool("v"));
    state
        .pool
        .run(move |e| e.remove_container(&name, force, volumes).map(|_| ()))
        .await?;
    status_only(StatusCode::NO_CONTENT)
}

async fn prune(state: &Arc<State>, q: &Query) -> ApiResult {
    let filters = q.filters()?;
    let report = state
        .pool
        .run(move |e| e.prune_containers(&filters))
        .await?;
    ok_json(&report)
}

/// `wait`: the 200 and its headers at once (the docker CLI registers the wait, then starts the
/// container), the body `{"StatusCode": N, "Error": null}` once the condition holds (the
/// engine's [`WaitCondition`]s).
async fn wait(state: &Arc<State>, id: &str, q: &Query) -> ApiResult {
    let cond = WaitCondition::parse(q.get("condition").unwrap_or(""))?;
    let name = id.to_string();
    // Registered before the answer: a start that follows cannot be missed.
    let ticket = state.pool.run(move |e| e.register_wait(&name)).await?;
    let (tx, body) = Body::channel();
    let pool = state.pool.clone();
    tokio::spawn(async move {
        let tx2 = tx.clone();
        let code = pool
            .run_long(move |e| Ok(e.wait_condition(ticket, cond, &|| tx2.is_closed())))
            .await;
        if let Ok(Some(code)) = code {
            let mut line = json!({"Error": null, "StatusCode": code}).to_string();
            line.push('\n');
            let _ = tx.send(Bytes::from(line)).await;
        }
    });
    Ok(Response::builder()
        .status(StatusCode::OK)
        .header("Content-Type", "application/json")
        .body(body)
        .unwrap_or_else(|_| Response::new(Body::empty())))
}

async fn resize(state: &Arc<State>, id: &str, q: &Query) -> ApiResult {
    let h = q.int("h")?.unwrap_or(0);
    let w = q.int("w")?.unwrap_or(0);
    if !(0..=u16::MAX as i64).contains(&h) || !(0..=u16::MAX as i64).contains(&w) {
        return Err(ApiError::bad_request(format!(
            "invalid size {h}x{w}: h and w must be between 0 and 65535"
        )));
    }
    let name = id.to_string();
    state
        .pool
        .run(move |e| {
            let container = e.container_handle(&name)?;
            let id = container.id();
            if !e.container_live(id)?.running {
                return Err(EngineError::Conflict(format!(
                    "Container {id} is not running"
                )));
            }
            container.resize(h as u16, w as u16)
        })
        .await?;
    status_only(StatusCode::OK)
}

/// `attach`: a hijacked connection carrying the container's streams (the container's first
/// byte when the attach came before the start), or, without an upgrade, its output as the body.
async fn attach(state: &Arc<State>, id: &str, call: Call) -> ApiResult {
    let q = &call.query;
    let streams = (q.bool("stdin"), q.bool("stdout"), q.bool("stderr"));
    let stream_live = q.bool("stream");
    let with_logs = q.bool("logs");
    let keys = stream::detach_keys(q.get("detachKeys"))?;
    let name = id.to_string();
    let st = state.clone();
    // What the container is, and (for a stream) the attach: now if it runs, at its start if not.
    let (tty, stdin_open, history, now, later) = state
        .pool
        .run(move |e| {
            let spec = e.container_spec(&name)?;
            let id = spec.id.clone();
            let live = e.container_live(&id)?;
            if live.paused && stream_live {
                return Err(EngineError::Conflict(
                    "You cannot attach to a paused container, unpause it first".into(),
                ));
            }
            let mut history = Vec::new();
            if with_logs {
                let o = LogOptions::default();
                e.container_logs(&id, &o, &|| false, &mut |entry| {
                    history.push((entry.stream, entry.data.clone()));
                    Ok(())
                })?;
            }
            let (mut now, mut later) = (None, None);
            if stream_live {
                if live.running {
                    now = Some(e.container_handle(&id)?.attach()?);
                } else {
                    later = Some(st.add_pending_attach(&id));
                }
            }
            Ok((spec.run.tty, spec.run.stdin_open, history, now, later))
        })
        .await?;
    let s = Streams {
        stdin: streams.0 && stdin_open,
        stdout: streams.1,
        stderr: streams.2,
        tty,
    };
    let mut head = Vec::new();
    for (kind, data) in &history {
        if (*kind == 1 && s.stdout) || (*kind == 2 && s.stderr) {
            head.extend(stream::frame_out(tty, *kind, data));
        }
    }
    if !stream_live {
        return Ok(Response::builder()
            .status(StatusCode::OK)
            .header("Content-Type", stream_type(tty))
            .body(Body::from_bytes(head))
            .unwrap_or_else(|_| Response::new(Body::empty())));
    }
    if !stream::wants_upgrade(&call.req) {
        // No hijack: the output as a streamed body (no stdin).
        let (tx, body) = Body::channel();
        tokio::spawn(async move {
            let client = match (now, later) {
                (Some(c), _) => Some(c),
                (None, Some(rx)) => rx.await.ok(),
                _ => None,
            };
            if !head.is_empty() && tx.send(Bytes::from(head)).await.is_err() {
                return;
            }
            if let Some(c) = client {
                let (ours, theirs) = tokio::io::duplex(64 * 1024);
                let s2 = Streams { stdin: false, ..s };
                tokio::spawn(stream::pump_monitor(theirs, c, s2, DetachMatcher::none()));
                forward(ours, tx).await;
            }
        });
        return Ok(Response::builder()
            .status(StatusCode::OK)
            .header("Content-Type", stream_type(tty))
            .body(body)
            .unwrap_or_else(|_| Response::new(Body::empty())));
    }
    let req = call.req;
    tokio::spawn(async move {
        let Ok(upgraded) = hyper::upgrade::on(req).await else {
            return;
        };
        let mut io = TokioIo::new(upgraded);
        if !head.is_empty() {
            use tokio::io::AsyncWriteExt;
            if io.write_all(&head).await.is_err() {
                return;
            }
        }
        let client = match (now, later) {
            (Some(c), _) => Some(c),
            (None, Some(rx)) => rx.await.ok(),
            _ => None,
        };
        let Some(client) = client else { return };
        stream::pump_monitor(io, client, s, keys.matcher()).await;
    });
    Ok(stream::switching(tty))
}

fn stream_type(tty: bool) -> &'static str {
    if tty {
        "application/vnd.docker.raw-stream"
    } else {
        "application/vnd.docker.multiplexed-stream"
    }
}

/// Copies a duplex pipe's bytes into a response body.
async fn forward(mut from: tokio::io::DuplexStream, tx: mpsc::Sender<Bytes>) {
    use tokio::io::AsyncReadExt;
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if tx.send(Bytes::copy_from_slice(&buf[..n])).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// A `since`/`until` of logs: unix seconds with a fraction (the docker CLI's form) or what
/// `berth logs` takes.
fn log_time(q: &Query, key: &str) -> Result<Option<f64>, ApiError> {
    match q.get(key).filter(|s| !s.is_empty() && *s != "0") {
        None => Ok(None),
        Some(s) => berth_engine::containers::parse_time_arg(s)
            .map(Some)
            .map_err(|e| ApiError::bad_request(format!("invalid value for {key}: {e}"))),
    }
}

/// `logs`: stdcopy frames (raw bytes for a TTY), optionally with timestamps, followed until the
/// container stops or the client goes away.
async fn logs(state: &Arc<State>, id: &str, q: &Query) -> ApiResult {
    let (stdout, stderr) = (q.bool("stdout"), q.bool("stderr"));
    if !stdout && !stderr {
        return Err(ApiError::bad_request(
            "Bad parameters: you must choose at least one stream",
        ));
    }
    let tail = match q.get("tail").unwrap_or("all") {
        "all" | "" => None,
        t => match t.parse::<i64>() {
            Ok(n) if n >= 0 => Some(n as usize),
            _ => None,
        },
    };
    let o = LogOptions {
        follow: q.bool("follow"),
        tail,
        since: log_time(q, "since")?,
        until: log_time(q, "until")?,
    };
    let timestamps = q.bool("timestamps");
    let name = id.to_string();
    let (id, tty) = state
        .pool
        .run(move |e| {
            let spec = e.container_spec(&name)?;
            Ok((spec.id, spec.run.tty))
        })
        .await?;
    let (tx, body) = Body::channel();
    let pool = state.pool.clone();
    tokio::spawn(async move {
        let _ = pool
            .run_long(move |e| {
                let stop = || tx.is_closed();
                e.container_logs(&id, &o, &stop, &mut |entry| {
                    let wanted = (entry.stream == 1 && stdout) || (entry.stream == 2 && stderr);
                    if !wanted {
                        return Ok(());
                    }
                    let mut data = Vec::with_capacity(entry.data.len() + 32);
                    if timestamps {
                        data.extend_from_slice(entry.time.as_bytes());
                        data.push(b' ');
                    }
                    data.extend_from_slice(&entry.data);
                    tx.blocking_send(Bytes::from(stream::frame_out(tty, entry.stream, &data)))
                        .map_err(|_| std::io::Error::other("client gone"))
                })
            })
            .await;
    });
    Ok(Response::builder()
        .status(StatusCode::OK)
        .header("Content-Type", stream_type(tty))
        .body(body)
        .unwrap_or_else(|_| Response::new(Body::empty())))
}

/// `top`: the host's `ps` (arguments `ps_args`, default `-ef`) limited to the container's
/// processes, as dockerd does.
async fn top(state: &Arc<State>, id: &str, q: &Query) -> ApiResult {
    let args: Vec<String> = q
        .get("ps_args")
        .filter(|a| !a.is_empty())
        .unwrap_or("-ef")
        .split_whitespace()
        .map(str::to_string)
        .collect();
    let name = id.to_string();
    let top = state
        .pool
        .run(move |e| e.container_top(&name, &args))
        .await?;
    ok_json(&json!({"Titles": top.titles, "Processes": top.processes}))
}

/// One stats sample in dockerd's shape, made so the docker CLI's arithmetic gives berth's
/// figures (CPU as a share of one second of one CPU's time, scaled by the percentage).
fn stats_json(s: &berth_engine::containers::stats::ContainerStats) -> Value {
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
    let cpu_total = (s.cpu_percent / 100.0 * 1e9) as u64;
    json!({
        "read": now,
        "preread": "0001-01-01T00:00:00Z",
        "id": s.id,
        "name": format!("/{}", s.name),
        "pids_stats": {"current": s.pids},
        "blkio_stats": {"io_service_bytes_recursive": [
            {"major": 0, "minor": 0, "op": "read", "value": s.block_read},
            {"major": 0, "minor": 0, "op": "write", "value": s.block_write},
        ]},
        "num_procs": 0,
        "cpu_stats": {
            "cpu_usage": {"total_usage": cpu_total, "usage_in_kernelmode": 0, "usage_in_usermode": 0},
            "system_cpu_usage": 1_000_000_000u64,
            "online_cpus": 1,
            "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0},
        },
        "precpu_stats": {
            "cpu_usage": {"total_usage": 0, "usage_in_kernelmode": 0, "usage_in_usermode": 0},
            "system_cpu_usage": 0,
            "online_cpus": 1,
            "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0},
        },
        "memory_stats": {"usage": s.mem_usage, "limit": s.mem_limit, "stats": {}},
        "networks": {"eth0": {
            "rx_bytes": s.net_rx, "rx_packets": 0, "rx_errors": 0, "rx_dropped": 0,
            "tx_bytes": s.net_tx, "tx_packets": 0, "tx_errors": 0, "tx_dropped": 0,
        }},
    })
}

/// `stats`: one sample (`stream=0` or `one-shot=1`), or one a second until the client goes.
async fn stats(state: &Arc<State>, id: &str, q: &Query) -> ApiResult {
    let stream_it = q.bool_or("stream", true) && !q.bool("one-shot");
    let name = id.to_string();
    let first = state
        .pool
        .run(move |e| e.container_stats(&[name], true))
        .await?;
    let Some(first) = first.into_iter().next() else {
        return Err(ApiError::not_found(format!("No such container: {id}")));
    };
    if !stream_it {
        return ok_json(&stats_json(&first));
    }
    let (tx, body) = Body::channel();
    let pool = state.pool.clone();
    let cid = first.id.clone();
    tokio::spawn(async move {
        let mut line = stats_json(&first).to_string();
        line.push('\n');
        if tx.send(Bytes::from(line)).await.is_err() {
            return;
        }
        loop {
            tokio::time::sleep(Duration::from_millis(500)).await;
            let id = cid.clone();
            let Ok(s) = pool.run_long(move |e| e.container_stats(&[id], true)).await else {
                return;
            };
            let Some(s) = s.into_iter().next() else {
                return;
            };
            let mut line = stats_json(&s).to_string();
            line.push('\n');
            if tx.send(Bytes::from(line)).await.is_err() {
                return;
            }
        }
    });
    Ok(Response::builder()
        .status(StatusCode::OK)
        .header("Content-Type", "application/json")
        .body(body)
        .unwrap_or_else(|_| Response::new(Body::empty())))
}

async fn changes(state: &Arc<State>, id: &str) -> ApiResult {
    let name = id.to_string();
    let list = state.pool.run(move |e| e.container_changes(&name)).await?;
    let v: Vec<Value> = list
        .iter()
        .map(|c| json!({"Path": c.path, "Kind": c.kind}))
        .collect();
    ok_json(&v)
}

/// A blocking writer into a response body (64 KiB chunks).
struct ChannelWriter {
    tx: mpsc::Sender<Bytes>,
    buf: Vec<u8>,
}

impl ChannelWriter {
    fn new(tx: mpsc::Sender<Bytes>) -> ChannelWriter {
        ChannelWriter {
            tx,
            buf: Vec::with_capacity(64 * 1024),
        }
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= 64 * 1024 {
            self.flush()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::take(&mut self.buf));
        self.tx
            .blocking_send(chunk)
            .map_err(|_| std::io::Error::other("client gone"))
    }
}

/// Runs `f` writing into a streamed body; an error before the first byte is the answer's
/// status, a later one ends the stream early (the client sees a short tar).
async fn stream_out<F>(
    state: &Arc<State>,
    content_type: &'static str,
    headers: Vec<(String, String)>,
    f: F,
) -> ApiResult
where
    F: FnOnce(&mut Engine, &mut ChannelWriter) -> Result<(), EngineError> + Send + 'static,
{
    let (tx, body) = Body::channel();
    let pool = state.pool.clone();
    tokio::spawn(async move {
        let _ = pool
            .run_long(move |e| {
                let mut w = ChannelWriter::new(tx);
                f(e, &mut w)?;
                w.flush()
                    .map_err(|err| EngineError::InvalidArgument(err.to_string()))
            })
            .await;
    });
    let mut b = Response::builder()
        .status(StatusCode::OK)
        .header("Content-Type", content_type);
    for (k, v) in headers {
        b = b.header(k, v);
    }
    Ok(b.body(body)
        .unwrap_or_else(|_| Response::new(Body::empty())))
}

async fn export(state: &Arc<State>, id: &str) -> ApiResult {
    let name = id.to_string();
    // Fail with a status before streaming when the container does not exist.
    let n2 = name.clone();
    state
        .pool
        .run(move |e| e.resolve_container(&n2).map(|_| ()))
        .await?;
    stream_out(state, "application/x-tar", Vec::new(), move |e, w| {
        e.export_container(&name, w)
    })
    .await
}

/// Go's `os.FileMode` bits of a Unix mode, as the docker CLI decodes the path stat.
fn go_file_mode(mode: u32) -> u32 {
    let mut m = mode & 0o777;
    match mode & 0o170000 {
        0o040000 => m |= 1 << 31,
        0o120000 => m |= 1 << 27,
        0o060000 => m |= 1 << 26,
        0o020000 => m |= (1 << 26) | (1 << 21),
        0o010000 => m |= 1 << 25,
        0o140000 => m |= 1 << 24,
        _ => {}
    }
    if mode & 0o4000 != 0 {
        m |= 1 << 23;
    }
    if mode & 0o2000 != 0 {
        m |= 1 << 22;
    }
    if mode & 0o1000 != 0 {
        m |= 1 << 20;
    }
    m
}

fn path_param(q: &Query) -> Result<String, ApiError> {
    q.get("path")
        .filter(|p| !p.is_empty())
        .map(str::to_string)
        .ok_or_else(|| ApiError::bad_request("the path query parameter is required"))
}

/// The `X-Docker-Container-Path-Stat` header of `path` in the container; 404 when nothing is.
fn path_stat_header(
    e: &mut Engine,
    name: &str,
    path: &str,
) -> Result<Option<(String, berth_engine::containers::cp::PathStat)>, EngineError> {
    let root = e.open_container_root(name)?;
    let Some(st) = root.stat(path, false)? else {
        return Ok(None);
    };
    let v = json!({
        "name": st.name,
        "size": st.size,
        "mode": go_file_mode(st.mode),
        "mtime": "0001-01-01T00:00:00Z",
        "linkTarget": st.link_target.clone().unwrap_or_default(),
    });
    Ok(Some((base64(v.to_string().as_bytes()), st)))
}

/// Standard base64 with padding (Go's `base64.StdEncoding`).
fn base64(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for c in data.chunks(3) {
        let n = (c[0] as u32) << 16
            | (*c.get(1).unwrap_or(&0) as u32) << 8
            | *c.get(2).unwrap_or(&0) as u32;
        out.push(T[(n >> 18) as usize & 63] as char);
        out.push(T[(n >> 12) as usize & 63] as char);
        out.push(if c.len() > 1 {
            T[(n >> 6) as usize & 63] as char
        } else {
            '='
        });
        out.push(if c.len() > 2 {
            T[n as usize & 63] as char
        } else {
            '='
        });
    }
    out
}

/// dockerd's 404 for a path that is not in the container.
fn no_such_path(path: &str, id: &str) -> ApiError {
    ApiError::not_found(format!("Could not find the file {path} in container {id}"))
}

async fn archive_stat(state: &Arc<State>, id: &str, q: &Query) -> ApiResult {
    let path = path_param(q)?;
    let (name, p2) = (id.to_string(), path.clone());
    let (header, _) = state
        .pool
        .run(move |e| path_stat_header(e, &name, &p2))
        .await?
        .ok_or_else(|| no_such_path(&path, id))?;
    Ok(Response::builder()
        .status(StatusCode::OK)
        .header("X-Docker-Container-Path-Stat", header)
        .body(Body::empty())
        .unwrap_or_else(|_| Response::new(Body::empty())))
}

async fn archive_get(state: &Arc<State>, id: &str, q: &Query) -> ApiResult {
    let path = path_param(q)?;
    let (name, p2) = (id.to_string(), path.clone());
    let (header, st) = state
        .pool
        .run(move |e| path_stat_header(e, &name, &p2))
        .await?
        .ok_or_else(|| no_such_path(&path, id))?;
    let name = id.to_string();
    let top = st.name.clone();
    stream_out(
        state,
        "application/x-tar",
        vec![("X-Docker-Container-Path-Stat".into(), header)],
        move |e, w| {
            let root = e.open_container_root(&name)?;
            root.archive(
                &path,
                false,
                &top,
                berth_engine::containers::cp::TarOptions::default(),
                w,
            )
        },
    )
    .await
}

/// A blocking reader over a request body fed by an async task.
struct BodyReader {
    rx: std::sync::mpsc::Receiver<Result<Bytes, String>>,
    cur: Bytes,
}

impl std::io::Read for BodyReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.cur.is_empty() {
            match self.rx.recv() {
                Ok(Ok(b)) => self.cur = b,
                Ok(Err(e)) => return Err(std::io::Error::other(e)),
                Err(_) => return Ok(0),
            }
        }
        let n = out.len().min(self.cur.len());
        out[..n].copy_from_slice(&self.cur[..n]);
        self.cur = self.cur.slice(n..);
        Ok(n)
    }
}

/// `PUT archive`: a tar extracted into directory `path` of the container, every entry
/// resolved inside the container's root.
async fn archive_put(state: &Arc<State>, id: &str, call: Call) -> ApiResult {
    use http_body_util::BodyExt;
    let path = path_param(&call.query)?;
    let (tx, rx) = std::sync::mpsc::sync_channel::<Result<Bytes, String>>(16);
    let mut body = call.req.into_body();
    let feeder = tokio::spawn(async move {
        while let Some(frame) = body.frame().await {
            match frame {
                Ok(f) => {
                    if let Ok(data) = f.into_data() {
                        let tx = tx.clone();
                        // The channel is bounded: the send may wait for the extractor.
                        if tokio::task::spawn_blocking(move || tx.send(Ok(data)))
                            .await
                            .map(|r| r.is_err())
                            .unwrap_or(true)
                        {
                            return;
                        }
                    }
                }
                Err(e) => {
                    let _ = tx.send(Err(e.to_string()));
                    return;
                }
            }
        }
    });
    let name = id.to_string();
    let r = state
        .pool
        .run_long(move |e| {
            let root = e.open_container_root(&name)?;
            let mut reader = BodyReader {
                rx,
                cur: Bytes::new(),
            };
            root.extract(&path, &mut reader)
        })
        .await;
    feeder.abort();
    // The engine's "Could not find the file" is dockerd's 404 here.
    r.map_err(|e| {
        if e.message.starts_with("Could not find the file") {
            ApiError::not_found(e.message)
        } else {
            e
        }
    })?;
    status_only(StatusCode::OK)
}

/// `update`: resources and the restart policy; any other field set is refused.
async fn update(state: &Arc<State>, id: &str, call: Call) -> ApiResult {
    let body: Value = read_json(call.req).await?.unwrap_or(Value::Null);
    let Value::Object(m) = body else {
        return Err(ApiError::bad_request("invalid JSON: expected an object"));
    };
    let mut o = berth_engine::containers::UpdateOptions::default();
    let int = |k: &str, v: &Value| -> Result<Option<i64>, ApiError> {
        match v {
            Value::Null => Ok(None),
            v => v
                .as_i64()
                .map(Some)
                .ok_or_else(|| ApiError::bad_request(format!("invalid {k}: expected an integer"))),
        }
    };
    for (k, v) in &m {
        match k.as_str() {
            "Memory" => o.memory = int(k, v)?.filter(|n| *n != 0),
            "MemorySwap" => o.memory_swap = int(k, v)?.filter(|n| *n != 0),
            "MemoryReservation" => o.memory_reservation = int(k, v)?.filter(|n| *n != 0),
            "NanoCpus" => o.cpus = int(k, v)?.filter(|n| *n != 0).map(|n| n as f64 / 1e9),
            "CpuShares" => o.cpu_shares = int(k, v)?.filter(|n| *n != 0),
            "CpuPeriod" => o.cpu_period = int(k, v)?.filter(|n| *n != 0),
            "CpuQuota" => o.cpu_quota = int(k, v)?.filter(|n| *n != 0),
            "CpusetCpus" => {
                o.cpuset_cpus = v.as_str().filter(|s| !s.is_empty()).map(str::to_string)
            }
            "CpusetMems" => {
                o.cpuset_mems = v.as_str().filter(|s| !s.is_empty()).map(str::to_string)
            }
            "PidsLimit" => o.pids_limit = int(k, v)?.filter(|n| *n != 0),
            "RestartPolicy" => {
                let name = v["Name"].as_str().unwrap_or("");
                let max = v["MaximumRetryCount"].as_i64().unwrap_or(0);
                if !name.is_empty() {
                    o.restart = Some(if max > 0 {
                        format!("{name}:{max}")
                    } else {
                        name.to_string()
                    });
                }
            }
            _ if is_zero(v) => {}
            _ => {
                return Err(ApiError::bad_request(format!(
                    "{k} cannot be updated by berth; remove it from the request"
                )))
            }
        }
    }
    let name = id.to_string();
    state
        .pool
        .run(move |e| e.update_container(&name, &o).map(|_| ()))
        .await?;
    ok_json(&json!({"Warnings": []}))
}

fn is_zero(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.values().all(is_zero),
    }
}
