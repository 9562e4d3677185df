//! dockerd's JSON progress messages (moby's `pkg/jsonmessage`), as the Engine API streams them
//! for `pull` (`POST /images/create`), `push`, `load` and the classic builder (`POST /build`):
//! one JSON object per message followed by `\r\n`, with Go's HTML escaping of `<`, `>` and `&`
//! (`\u003e`), so a client sees the bytes dockerd sends.
//!
//! - progress: `{"status":"Downloading","progressDetail":{"current":N,"total":M},
//!   "progress":"[==>   ]  1.2MB/3.4MB","id":"<12 hex>"}`
//! - a line about the whole operation: `{"status":"Digest: sha256:…"}`; `X: Pulling from R` is
//!   split into `{"status":"Pulling from R","id":"X"}` as dockerd sends it
//! - the builder's text: `{"stream":"Step 1/2 : FROM busybox\n"}`; results: `{"aux":{…}}`
//! - an error, which ends the stream: `{"errorDetail":{"message":M},"error":M}`

use crate::registry::{LayerStatus, Progress};
use serde_json::{json, Value};

/// One message as the bytes dockerd writes: the JSON, then `\r\n`.
pub fn encode(v: &Value) -> Vec<u8> {
    let text = serde_json::to_string(v).unwrap_or_else(|_| "{}".into());
    // Go's encoder escapes these; they occur only inside strings, never as JSON syntax.
    let text = text
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026");
    let mut out = text.into_bytes();
    out.extend_from_slice(b"\r\n");
    out
}

/// The message for one pull or push progress event; `None` for what dockerd does not send
/// (the CLI's own "Using default tag" line).
pub fn progress(p: &Progress) -> Option<Value> {
    match p {
        Progress::Message(m) => {
            if m.starts_with("Using default tag:") {
                return None;
            }
            if let Some((id, rest)) = m.split_once(": Pulling from ") {
                return Some(json!({"status": format!("Pulling from {rest}"), "id": id}));
            }
            Some(json!({ "status": m }))
        }
        Progress::Layer {
            id,
            status,
            current,
            total,
        } => {
            if matches!(status, LayerStatus::Downloading | LayerStatus::Pushing) {
                let total = total.unwrap_or(0);
                Some(json!({
                    "status": status.text(),
                    "progressDetail": {"current": current, "total": total},
                    "progress": progress_bar(*current, total),
                    "id": id,
                }))
            } else {
                Some(json!({"status": status.text(), "progressDetail": {}, "id": id}))
            }
        }
    }
}

/// A classic builder's text (`Step 1/3 : …`, a RUN's output line).
pub fn stream(text: &str) -> Value {
    json!({ "stream": text })
}

/// Auxiliary data: the built image's ID (`{"ID":"sha256:…"}`), a push's tag, digest and size.
pub fn aux(v: Value) -> Value {
    json!({ "progressDetail": {}, "aux": v })
}

/// An error that ends the stream.
pub fn error(message: &str) -> Value {
    json!({"errorDetail": {"message": message}, "error": message})
}

/// An error with a code (a failed RUN's exit status), as the classic builder sends it.
pub fn error_with_code(message: &str, code: i64) -> Value {
    json!({"errorDetail": {"code": code, "message": message}, "error": message})
}

/// moby's `JSONProgress.String()` for a daemon-side (wide) terminal: a 50-column bar, then
/// `current/total` in go-units' human sizes; past the total only the current size.
pub fn progress_bar(current: u64, total: u64) -> String {
    if current == 0 && total == 0 {
        return String::new();
    }
    if total == 0 {
        return format!("{:>8}", human_size(current));
    }
    let pct = ((current as f64 / total as f64 * 100.0) as u64 / 2).min(50) as usize;
    let bar = format!("[{}>{}] ", "=".repeat(pct), " ".repeat(50 - pct));
    let numbers = if current > total {
        format!("{:>8}", human_size(current))
    } else {
        format!("{:>8}/{}", human_size(current), human_size(total))
    };
    bar + &numbers
}

/// go-units `HumanSize`, the one BuildKit's progress uses too.
pub use berth_build::progress::human_size;

#[cfg(test)]
mod tests {
    use super::*;

    fn text(v: &Value) -> String {
        String::from_utf8(encode(v)).unwrap()
    }

    #[test]
    fn pull_messages_are_dockerds() {
        let m = progress(&Progress::Message(
            "1: Pulling from evalprobe/busybox".into(),
        ))
        .unwrap();
        assert_eq!(
            text(&m),
            "{\"status\":\"Pulling from evalprobe/busybox\",\"id\":\"1\"}\r\n"
        );
        assert!(progress(&Progress::Message("Using default tag: latest".into())).is_none());
        let d = progress(&Progress::Layer {
            id: "097e3a133b4d".into(),
            status: LayerStatus::Downloading,
            current: 3678,
            total: Some(300392),
        })
        .unwrap();
        assert_eq!(
            d["progress"],
            "[\u{3e}                                                  ]  3.678kB/300.4kB"
        );
        assert_eq!(d["progressDetail"]["current"], 3678);
        assert!(text(&d).contains("\"progress\":\"[\\u003e "));
        let c = progress(&Progress::Layer {
            id: "097e3a133b4d".into(),
            status: LayerStatus::PullComplete,
            current: 1,
            total: Some(1),
        })
        .unwrap();
        assert_eq!(
            c,
            json!({"status":"Pull complete","progressDetail":{},"id":"097e3a133b4d"})
        );
    }

    #[test]
    fn bars_and_sizes_match_moby() {
        assert_eq!(
            progress_bar(300392, 300392),
            format!("[{}>]  300.4kB/300.4kB", "=".repeat(50))
        );
        assert_eq!(
            progress_bar(2129920, 1985601),
            format!("[{}>]   2.13MB", "=".repeat(50))
        );
        assert_eq!(
            progress_bar(19968, 1985601),
            format!("[>{}]  19.97kB/1.986MB", " ".repeat(50))
        );
        assert_eq!(human_size(512), "512B");
        assert_eq!(human_size(1_000_000), "1MB");
    }

    #[test]
    fn errors_and_streams() {
        assert_eq!(
            text(&error("no basic auth credentials")),
            "{\"errorDetail\":{\"message\":\"no basic auth credentials\"},\"error\":\"no basic auth credentials\"}\r\n"
        );
        assert_eq!(
            text(&stream("Step 1/2 : RUN a && b > c\n")),
            "{\"stream\":\"Step 1/2 : RUN a \\u0026\\u0026 b \\u003e c\\n\"}\r\n"
        );
    }
}
