//! The event log (`berth events`): one JSON line per event in `$ROOT/events.jsonl`, appended
//! with a single `write` to an `O_APPEND` file, so that every berth process (CLI commands, each
//! container's monitor, a future API server) adds to one history without a lock. Lines carry
//! the Docker Engine API's event shape. The file is rotated once at [`ROTATE_AT`] bytes into
//! `events.jsonl.1`, so the log is bounded (two files) while keeping far more history than
//! Docker's in-memory 256 events.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Size at which the log is rotated.
pub const ROTATE_AT: u64 = 4 << 20;

/// One event, in the Engine API's JSON shape (`GET /events`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    #[serde(rename = "Type")]
    pub kind: String,
    #[serde(rename = "Action")]
    pub action: String,
    #[serde(rename = "Actor")]
    pub actor: Actor,
    #[serde(default = "local")]
    pub scope: String,
    /// Seconds since the epoch.
    pub time: i64,
    #[serde(rename = "timeNano")]
    pub time_nano: i64,
}

fn local() -> String {
    "local".into()
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    #[serde(rename = "ID")]
    pub id: String,
    #[serde(rename = "Attributes", default)]
    pub attributes: BTreeMap<String, String>,
}

impl Event {
    /// An event of `kind` (`container`, `image`, `volume`, `network`) happening now.
    pub fn now(kind: &str, action: &str, id: &str, attributes: &[(&str, &str)]) -> Event {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as i64)
            .unwrap_or(0);
        Event {
            kind: kind.into(),
            action: action.into(),
            actor: Actor {
                id: id.into(),
                attributes: attributes
                    .iter()
                    .filter(|(_, v)| !v.is_empty())
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            },
            scope: local(),
            time: nanos / 1_000_000_000,
            time_nano: nanos,
        }
    }

    /// The API's JSON, with the old `status`/`id`/`from` fields Docker still sends for
    /// container and image events.
    pub fn api_json(&self) -> serde_json::Value {
        let mut v = serde_json::to_value(self).unwrap_or_default();
        if matches!(self.kind.as_str(), "container" | "image") {
            v["status"] = self.action.clone().into();
            v["id"] = self.actor.id.clone().into();
            if let Some(image) = self.actor.attributes.get("image") {
                v["from"] = image.clone().into();
            }
        }
        v
    }
}

/// The log's path under a store root.
pub fn log_path(root: &Path) -> PathBuf {
    root.join("events.jsonl")
}

/// Appends `event` to the log under `root`. Losing an event must never fail the operation
/// that caused it, so errors are returned for the caller to ignore or report.
pub fn append(root: &Path, event: &Event) -> std::io::Result<()> {
    let path = log_path(root);
    let mut line = serde_json::to_vec(event)?;
    line.push(b'\n');
    if std::fs::metadata(&path).is_ok_and(|m| m.len() >= ROTATE_AT) {
        // Another process may rotate at the same moment: either rename wins, no line is lost
        // from the file that is being written (appenders keep their open file).
        let _ = std::fs::rename(&path, root.join("events.jsonl.1"));
    }
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(&path)?;
    // One write of the whole line: appends of whole lines never interleave.
    f.write_all(&line)
}

/// Every event in the log under `root`, oldest first (the rotated file, then the current one).
/// Lines that do not parse (a torn write after a crash) are skipped.
pub fn read_all(root: &Path) -> Vec<Event> {
    let mut out = Vec::new();
    for p in [root.join("events.jsonl.1"), log_path(root)] {
        if let Ok(text) = std::fs::read_to_string(&p) {
            out.extend(text.lines().filter_map(|l| serde_json::from_str(l).ok()));
        }
    }
    out
}

/// The store root of a container directory (`$ROOT/containers/<id>`).
pub fn root_of_container_dir(dir: &Path) -> Option<&Path> {
    dir.parent()?.parent()
}

/// The attributes a container's events carry (`image`, `name`, labels), kept beside the
/// container so that its monitor can report `die` and `oom` with them.
pub fn container_attributes_path(dir: &Path) -> PathBuf {
    dir.join("event-attributes.json")
}

/// Reads the attributes written by [`container_attributes_path`]'s writer (empty when absent).
pub fn container_attributes(dir: &Path) -> BTreeMap<String, String> {
    std::fs::read(container_attributes_path(dir))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn append_read_rotate() {
        let dir = tempfile::tempdir().unwrap();
        let e = Event::now(
            "container",
            "start",
            "abc",
            &[("name", "web"), ("image", "")],
        );
        append(dir.path(), &e).unwrap();
        let all = read_all(dir.path());
        assert_eq!(all, vec![e.clone()]);
        assert_eq!(
            all[0].actor.attributes.len(),
            1,
            "empty attributes are left out"
        );
        let api = e.api_json();
        assert_eq!(api["status"], "start");
        assert_eq!(api["id"], "abc");
        assert_eq!(api["Actor"]["Attributes"]["name"], "web");
        // Past the rotation size the next append starts a new file; both are read.
        let big = std::fs::OpenOptions::new()
            .append(true)
            .open(log_path(dir.path()))
            .unwrap();
        big.set_len(ROTATE_AT).unwrap();
        let e2 = Event::now("image", "tag", "sha256:1", &[]);
        append(dir.path(), &e2).unwrap();
        assert!(dir.path().join("events.jsonl.1").exists());
        assert_eq!(read_all(dir.path()).last(), Some(&e2));
    }
}
