//! `POST /build`: the classic builder's API (docker CLI 28 uses it when the buildx plugin is
//! absent or `DOCKER_BUILDKIT=0`; docker-py and compose always do). The body is the context as
//! a tar (plain or compressed), read as it arrives and unpacked by the engine within
//! `BERTH_BUILD_CONTEXT_MAX`; berth's builder (BuildKit's semantics) runs it, and its steps are
//! streamed in the classic shape: `{"stream":"Step 2/3 : RUN …\n"}`, the step's output,
//! `{"aux":{"ID":"sha256:…"}}`, `Successfully built …`, `Successfully tagged …`, or
//! `{"errorDetail":…}`.

use super::images::{json_stream, BodyReader, Sink, StreamError};
use crate::http::{ApiError, ApiResult, Query};
use crate::router::{Call, Routed};
use crate::state::State;
use berth_engine::build::{BuildError, BuildOptions, Progress, ProgressMode};
use berth_engine::jsonmessage;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Arc;

pub async fn route(state: &Arc<State>, call: Call) -> Routed {
    let segs = call.segs.clone();
    let s: Vec<&str> = segs.iter().map(String::as_str).collect();
    let method = call.method.clone();
    Routed::Done(match (method.as_str(), s.as_slice()) {
        ("POST", ["build"]) => build(state, call).await,
        ("POST", ["build", "prune"]) => prune(state, &call.query).await,
        _ => return Routed::Next(call),
    })
}

/// Parameters of dockerd's builder that berth's does not implement: refused with 400 when set
/// to anything but their default, never ignored.
const UNSUPPORTED: &[&str] = &[
    "remote",
    "extrahosts",
    "cachefrom",
    "memory",
    "memswap",
    "cpushares",
    "cpusetcpus",
    "cpuperiod",
    "cpuquota",
    "shmsize",
    "squash",
    "isolation",
    "ulimits",
    "outputs",
    "session",
    // Sent by the Go client (the docker CLI, compose), empty unless the user set them.
    "securityopt",
    "cpusetmems",
    "cgroupparent",
    "buildid",
];

/// The parameters berth's builder reads: dockerd's, then berth's own (`strict`: the
/// requirement checks fail the build, as `build --strict`; `timestamp`: `now` or seconds, as
/// `build --timestamp`). Any other name is refused with 400, so a client's option never goes
/// unheard.
const SUPPORTED: &[&str] = &[
    "dockerfile",
    "t",
    "q",
    "nocache",
    "pull",
    "rm",
    "forcerm",
    "buildargs",
    "labels",
    "networkmode",
    "platform",
    "target",
    "version",
    "strict",
    "timestamp",
];

fn is_default(v: &str) -> bool {
    matches!(
        v.trim().to_ascii_lowercase().as_str(),
        "" | "0" | "false" | "no" | "[]" | "{}" | "null" | "default"
    )
}

/// A JSON object of strings (`buildargs`, `labels`); `null` values (dockerd: "take it from the
/// daemon's environment", which berth never does) are left out.
fn string_map(q: &Query, key: &str) -> Result<BTreeMap<String, String>, ApiError> {
    let Some(raw) = q.get(key).filter(|s| !s.trim().is_empty()) else {
        return Ok(BTreeMap::new());
    };
    let v: Value = serde_json::from_str(raw)
        .map_err(|e| ApiError::bad_request(format!("invalid {key}: {e}")))?;
    let obj = v.as_object().ok_or_else(|| {
        ApiError::bad_request(format!("invalid {key}: expected a JSON object of strings"))
    })?;
    let mut out = BTreeMap::new();
    for (k, v) in obj {
        match v {
            Value::String(s) => {
                out.insert(k.clone(), s.clone());
            }
            Value::Null => {}
            _ => {
                return Err(ApiError::bad_request(format!(
                    "invalid {key}: the value of {k:?} must be a string"
                )))
            }
        }
    }
    Ok(out)
}

/// The classic builder's text, one `{"stream": …}` message per write of the progress.
struct StreamWriter(Sink);

impl std::io::Write for StreamWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .send(jsonmessage::stream(&String::from_utf8_lossy(buf)));
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

async fn build(state: &Arc<State>, call: Call) -> ApiResult {
    let q = &call.query;
    if let Some(k) = q
        .keys()
        .find(|k| !SUPPORTED.contains(k) && !UNSUPPORTED.contains(k))
    {
        return Err(ApiError::bad_request(format!(
            "unknown build parameter {k:?}: berth's builder takes {} (and dockerd's {} at their defaults)",
            SUPPORTED.join(", "),
            UNSUPPORTED.join(", ")
        )));
    }
    for key in UNSUPPORTED {
        if let Some(v) = q.get(key).filter(|v| !is_default(v)) {
            return Err(ApiError::bad_request(format!(
                "{key}={v} is not supported by berth's builder: leave it out"
            )));
        }
    }
    if let Some(v) = q.get("version").filter(|v| !v.is_empty() && *v != "1") {
        return Err(ApiError::bad_request(format!(
            "builder version {v} (BuildKit's session API) is not supported by berth serve: use the classic builder (version=1, DOCKER_BUILDKIT=0)"
        )));
    }
    let network = match q.get("networkmode").unwrap_or("") {
        "" | "default" | "bridge" => None,
        "host" => Some("host".to_string()),
        "none" => Some("none".to_string()),
        other => {
            return Err(ApiError::bad_request(format!(
            "networkmode {other:?} is not supported by berth's builder: use default, host or none"
        )))
        }
    };
    let tags: Vec<String> = q
        .all("t")
        .into_iter()
        .filter(|t| !t.is_empty())
        .map(String::from)
        .collect();
    for t in &tags {
        berth_engine::images::Reference::parse(t)
            .map_err(|e| ApiError::bad_request(format!("invalid tag {t:?}: {e}")))?;
    }
    // rm and forcerm (remove intermediate containers) are what berth always does: its RUN
    // steps run in the build's staging area and leave no container behind, so both are
    // accepted and there is nothing to keep when they are false.
    let quiet = q.bool("q");
    let (timestamp_now, source_date_epoch) = match q.get("timestamp").unwrap_or("") {
        "" => (false, None),
        "now" => (true, None),
        v => (
            false,
            Some(v.parse::<i64>().map_err(|_| {
                ApiError::bad_request(format!(
                    "invalid timestamp {v:?}: use \"now\" or a number of seconds since 1970"
                ))
            })?),
        ),
    };
    let opts = BuildOptions {
        tags: tags.clone(),
        build_args: string_map(q, "buildargs")?,
        target: q.get("target").filter(|t| !t.is_empty()).map(String::from),
        no_cache: q.bool("nocache"),
        pull: q.bool("pull"),
        network,
        labels: string_map(q, "labels")?,
        platform: q
            .get("platform")
            .filter(|p| !p.is_empty())
            .map(String::from),
        strict: q.bool("strict"),
        timestamp_now,
        source_date_epoch,
        ..Default::default()
    };
    let dockerfile = q.get("dockerfile").unwrap_or("Dockerfile").to_string();
    let mut context = BodyReader::new(call.req.into_body());
    json_stream(state, 0, move |e, sink| {
        let mode = if quiet {
            ProgressMode::Quiet
        } else {
            ProgressMode::Classic
        };
        let mut progress = Progress::new(mode, Box::new(StreamWriter(sink.clone())));
        let built = e.build_archive(&mut context, &dockerfile, &opts, &mut progress);
        progress.finish();
        let out = match built {
            Ok(out) => out,
            Err(BuildError::StepFailed { message, exit_code }) => {
                return Err(StreamError::Message(jsonmessage::error_with_code(
                    &message,
                    exit_code.into(),
                )))
            }
            Err(e) => return Err(StreamError::Message(jsonmessage::error(&e.to_string()))),
        };
        let id = out.id.to_string();
        let short: String = out.id.hex().chars().take(12).collect();
        // The requirement checks' findings, in the classic builder's warning form.
        if !quiet {
            for w in &out.warnings {
                sink.send(jsonmessage::stream(&format!("[Warning] {w}\n")));
            }
        }
        sink.send(json!({"aux": {"ID": id}}));
        if quiet {
            sink.send(jsonmessage::stream(&format!("{id}\n")));
        } else {
            sink.send(jsonmessage::stream(&format!(
                "Successfully built {short}\n"
            )));
            for t in &tags {
                sink.send(jsonmessage::stream(&format!("Successfully tagged {t}\n")));
            }
        }
        Ok(())
    })
    .await
}

/// `POST /build/prune?all=&filters=`: `until=` only, as `builder prune`.
async fn prune(state: &Arc<State>, q: &Query) -> ApiResult {
    let all = q.bool("all");
    let mut older = None;
    for f in q.filters()? {
        match f.split_once('=') {
            Some(("until", v)) => {
                older = Some(parse_secs(v).ok_or_else(|| {
                    ApiError::bad_request(format!(
                        "invalid filter until={v:?}: use a duration such as 24h"
                    ))
                })?)
            }
            _ => {
                return Err(ApiError::bad_request(format!(
                    "invalid filter {f:?}: berth's build cache takes until=<duration> only"
                )))
            }
        }
    }
    let r = state
        .pool
        .run(move |e| e.prune_build_cache(older, all))
        .await?;
    crate::http::ok_json(&json!({
        "CachesDeleted": Value::Null,
        "SpaceReclaimed": r.space_reclaimed,
    }))
}

/// `24h`, `30m`, `10s`, or plain seconds.
fn parse_secs(s: &str) -> Option<u64> {
    let i = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(i);
    let n: u64 = num.parse().ok()?;
    Some(match unit {
        "" | "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        _ => return None,
    })
}
