//! `build --check-reproducible`: builds a second time without the cache and, when the two
//! images differ, says where — which config key, which layer, which file and which field
//! (content, mtime, owner, mode, order) — so the cause is found in one read.

use crate::{Engine, EngineError};
use berth_build::{BuildOptions, BuildOutput, Progress};
use berth_oci::Digest;
use serde_json::Value;
use sha2::{Digest as _, Sha256};
use std::collections::BTreeMap;
use std::io::Read;

/// At most this many differences are listed (the count says how many there were).
const SHOWN: usize = 20;

/// The outcome of a reproducibility check.
#[derive(Debug, Clone)]
pub struct ReproReport {
    pub first: String,
    pub second: String,
    /// Empty when the two builds gave the same image.
    pub differences: Vec<String>,
    /// How many differences there were in all.
    pub total: usize,
}

impl ReproReport {
    pub fn reproducible(&self) -> bool {
        self.first == self.second
    }
}

impl Engine {
    /// Builds `opts` again with no cache, empty cache mounts (as a fresh root would give) and
    /// no tags, and compares the result with `first`;
    /// the second image is removed again unless it is the same image.
    pub fn check_reproducible(
        &mut self,
        opts: &BuildOptions,
        first: &BuildOutput,
        progress: &mut Progress,
    ) -> Result<ReproReport, EngineError> {
        let mut again = opts.clone();
        again.no_cache = true;
        again.fresh_cache_mounts = true;
        again.tags.clear();
        let second = self
            .build(&again, progress)
            .map_err(|e| EngineError::InvalidArgument(format!("the second build failed: {e}")))?;
        let (a, b) = (first.id.to_string(), second.id.to_string());
        let mut report = ReproReport {
            first: a.clone(),
            second: b.clone(),
            differences: Vec::new(),
            total: 0,
        };
        if a == b {
            return Ok(report);
        }
        let diffs = self.image_differences(&a, &b);
        // The second image was only made to compare; nothing names it.
        let _ = self.remove_image(&b, false);
        let diffs = diffs?;
        report.total = diffs.len();
        report.differences = diffs.into_iter().take(SHOWN).collect();
        Ok(report)
    }

    /// Every difference between two images: configuration keys, then layers entry by entry.
    pub fn image_differences(&self, a: &str, b: &str) -> Result<Vec<String>, EngineError> {
        let (_, ca) = self.image_config(a)?;
        let (_, cb) = self.image_config(b)?;
        let ja = serde_json::to_value(&ca).unwrap_or_default();
        let jb = serde_json::to_value(&cb).unwrap_or_default();
        let mut out = Vec::new();
        json_differences("config", &ja, &jb, &mut out);
        // Layer digests are compared below, where the files say why.
        out.retain(|d| !d.starts_with("config.rootfs"));

        let la = self.store().image_layers(a)?;
        let lb = self.store().image_layers(b)?;
        if la.len() != lb.len() {
            out.push(format!("layers: {} vs {}", la.len(), lb.len()));
        }
        let steps = layer_steps(&ja);
        for (i, (x, y)) in la.iter().zip(&lb).enumerate() {
            if x.diff_id == y.diff_id {
                continue;
            }
            let step = steps.get(i).map(|s| format!(" ({s})")).unwrap_or_default();
            let name = format!("layer {}{step}", i + 1);
            let ea = self.layer_entries(x.blob_digest.as_deref())?;
            let eb = self.layer_entries(y.blob_digest.as_deref())?;
            entry_differences(&name, &ea, &eb, &mut out);
            if out.last().is_none_or(|l| !l.starts_with(&name)) {
                out.push(format!("{name}: same files, different archive bytes"));
            }
        }
        Ok(out)
    }

    /// A layer's entries, in archive order, with a digest of each file's content.
    fn layer_entries(&self, blob: Option<&str>) -> Result<Vec<Entry>, EngineError> {
        let Some(blob) = blob else {
            return Ok(Vec::new());
        };
        let digest: Digest = blob
            .parse()
            .map_err(|_| EngineError::InvalidArgument(format!("bad layer digest {blob}")))?;
        let file = self.store().open_blob(&digest)?;
        let reader = berth_oci::layer::decompress(std::io::BufReader::new(file))
            .map_err(|e| EngineError::io("reading a layer", e))?;
        let mut archive = tar::Archive::new(reader);
        let mut entries = Vec::new();
        for e in archive
            .entries()
            .map_err(|e| EngineError::io("reading a layer", e))?
        {
            let mut e = e.map_err(|e| EngineError::io("reading a layer", e))?;
            let h = e.header();
            let mut entry = Entry {
                path: e
                    .path()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default(),
                kind: format!("{:?}", h.entry_type()),
                mode: h.mode().unwrap_or(0),
                uid: h.uid().unwrap_or(0),
                gid: h.gid().unwrap_or(0),
                mtime: h.mtime().unwrap_or(0),
                link: e
                    .link_name()
                    .ok()
                    .flatten()
                    .map(|l| l.display().to_string())
                    .unwrap_or_default(),
                content: String::new(),
            };
            let mut hasher = Sha256::new();
            let mut buf = [0u8; 64 * 1024];
            loop {
                let n = e
                    .read(&mut buf)
                    .map_err(|e| EngineError::io("reading a layer", e))?;
                if n == 0 {
                    break;
                }
                hasher.update(&buf[..n]);
            }
            entry.content = hex(&hasher.finalize()[..6]);
            entries.push(entry);
        }
        Ok(entries)
    }
}

/// What is compared of one archive entry.
#[derive(Debug, Clone, PartialEq)]
struct Entry {
    path: String,
    kind: String,
    mode: u32,
    uid: u64,
    gid: u64,
    mtime: u64,
    link: String,
    content: String,
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The `created_by` of the history entries that made layers, in layer order.
fn layer_steps(config: &Value) -> Vec<String> {
    config["history"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|h| h["empty_layer"].as_bool() != Some(true))
        .map(|h| {
            let s = h["created_by"].as_str().unwrap_or("").trim().to_string();
            let s = s.trim_end_matches("# buildkit").trim().to_string();
            if s.chars().count() > 60 {
                format!("{}…", s.chars().take(60).collect::<String>())
            } else {
                s
            }
        })
        .collect()
}

/// Differences between two JSON values, as `path: a vs b` lines.
fn json_differences(path: &str, a: &Value, b: &Value, out: &mut Vec<String>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for k in keys {
                let (va, vb) = (
                    x.get(k).unwrap_or(&Value::Null),
                    y.get(k).unwrap_or(&Value::Null),
                );
                json_differences(&format!("{path}.{k}"), va, vb, out);
            }
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (i, (va, vb)) in x.iter().zip(y).enumerate() {
                json_differences(&format!("{path}[{i}]"), va, vb, out);
            }
        }
        _ if a != b => out.push(format!("{path}: {a} vs {b}")),
        _ => {}
    }
}

/// Differences between two layers' entries: files only in one, fields that differ, and the
/// order when the same files come in a different order.
fn entry_differences(layer: &str, a: &[Entry], b: &[Entry], out: &mut Vec<String>) {
    let ma: BTreeMap<&str, &Entry> = a.iter().map(|e| (e.path.as_str(), e)).collect();
    let mb: BTreeMap<&str, &Entry> = b.iter().map(|e| (e.path.as_str(), e)).collect();
    for (path, x) in &ma {
        let Some(y) = mb.get(path) else {
            out.push(format!("{layer}: /{path}: only in the first build"));
            continue;
        };
        let mut fields = Vec::new();
        if x.kind != y.kind {
            fields.push(format!("type {} vs {}", x.kind, y.kind));
        }
        if x.content != y.content {
            fields.push(format!(
                "content sha256:{}… vs sha256:{}…",
                x.content, y.content
            ));
        }
        if x.link != y.link {
            fields.push(format!("link target {} vs {}", x.link, y.link));
        }
        if x.mtime != y.mtime {
            fields.push(format!("mtime {} vs {}", x.mtime, y.mtime));
        }
        if (x.uid, x.gid) != (y.uid, y.gid) {
            fields.push(format!("owner {}:{} vs {}:{}", x.uid, x.gid, y.uid, y.gid));
        }
        if x.mode != y.mode {
            fields.push(format!("mode {:o} vs {:o}", x.mode, y.mode));
        }
        if !fields.is_empty() {
            out.push(format!("{layer}: /{path}: {}", fields.join(", ")));
        }
    }
    for path in mb.keys() {
        if !ma.contains_key(path) {
            out.push(format!("{layer}: /{path}: only in the second build"));
        }
    }
    let order_a: Vec<&str> = a.iter().map(|e| e.path.as_str()).collect();
    let order_b: Vec<&str> = b.iter().map(|e| e.path.as_str()).collect();
    if ma.len() == mb.len() && ma.keys().eq(mb.keys()) && order_a != order_b {
        out.push(format!("{layer}: the same files in a different order"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn entry(path: &str, content: &str, mtime: u64) -> Entry {
        Entry {
            path: path.into(),
            kind: "Regular".into(),
            mode: 0o644,
            uid: 0,
            gid: 0,
            mtime,
            link: String::new(),
            content: content.into(),
        }
    }

    #[test]
    fn each_field_that_differs_is_named_with_its_file() {
        let a = [entry("app/f", "aa", 1), entry("app/g", "bb", 1)];
        let mut g = entry("app/g", "bb", 2);
        g.mode = 0o755;
        g.uid = 1000;
        let b = [entry("app/f", "cc", 1), g, entry("app/new", "dd", 1)];
        let mut out = Vec::new();
        entry_differences("layer 2 (RUN x)", &a, &b, &mut out);
        assert_eq!(
            out,
            [
                "layer 2 (RUN x): /app/f: content sha256:aa… vs sha256:cc…",
                "layer 2 (RUN x): /app/g: mtime 1 vs 2, owner 0:0 vs 1000:0, mode 644 vs 755",
                "layer 2 (RUN x): /app/new: only in the second build",
            ]
        );
    }

    #[test]
    fn the_order_of_entries_counts() {
        let a = [entry("a", "1", 0), entry("b", "2", 0)];
        let b = [entry("b", "2", 0), entry("a", "1", 0)];
        let mut out = Vec::new();
        entry_differences("layer 1", &a, &b, &mut out);
        assert_eq!(out, ["layer 1: the same files in a different order"]);
    }

    #[test]
    fn config_differences_name_the_key() {
        let a = json!({"created": "2024-01-01", "config": {"Env": ["A=1"]}, "history": [{"created": "x"}]});
        let b = json!({"created": "2024-01-02", "config": {"Env": ["A=1"]}, "history": [{"created": "y"}]});
        let mut out = Vec::new();
        json_differences("config", &a, &b, &mut out);
        assert_eq!(
            out,
            [
                "config.created: \"2024-01-01\" vs \"2024-01-02\"",
                "config.history[0].created: \"x\" vs \"y\"",
            ]
        );
    }

    #[test]
    fn steps_are_the_history_entries_that_made_layers() {
        let c = json!({"history": [
            {"created_by": "FROM busybox"},
            {"created_by": "WORKDIR /app", "empty_layer": true},
            {"created_by": "RUN date > f # buildkit"},
        ]});
        assert_eq!(layer_steps(&c), ["FROM busybox", "RUN date > f"]);
    }
}
