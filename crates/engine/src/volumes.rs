//! Named volumes: `$ROOT/volumes/<name>/_data`, with `$ROOT/volumes/<name>/volume.json`
//! (creation time, labels). A volume appears atomically: it is prepared under a temporary name
//! and renamed into place.

use crate::{Engine, EngineError};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// `GET /volumes/{name}`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Volume {
    pub name: String,
    pub driver: String,
    pub mountpoint: String,
    pub created_at: String,
    pub labels: BTreeMap<String, String>,
    pub scope: String,
    pub options: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Meta {
    created_at: String,
    #[serde(default)]
    labels: BTreeMap<String, String>,
}

/// `POST /volumes/prune`.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct VolumePruneReport {
    pub volumes_deleted: Vec<String>,
    pub space_reclaimed: u64,
}

/// Docker's volume name rule: `[a-zA-Z0-9][a-zA-Z0-9_.-]+`.
pub fn validate_name(name: &str) -> Result<(), EngineError> {
    let ok = name.len() >= 2
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(EngineError::InvalidArgument(format!(
            "create {name}: \"{name}\" includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path"
        )))
    }
}

fn dir_size(p: &std::path::Path) -> u64 {
    let mut total = 0;
    if let Ok(rd) = std::fs::read_dir(p) {
        for e in rd.flatten() {
            if let Ok(m) = e.metadata() {
                total += if m.is_dir() {
                    dir_size(&e.path())
                } else {
                    m.len()
                };
            }
        }
    }
    total
}

impl Engine {
    fn volumes_dir(&self) -> PathBuf {
        self.root().join("volumes")
    }

    /// The data directory of volume `name`, creating the volume if needed.
    pub fn ensure_volume(&mut self, name: &str) -> Result<PathBuf, EngineError> {
        let dir = self.volumes_dir().join(name);
        if !dir.join("_data").is_dir() {
            self.create_volume(name, &BTreeMap::new())?;
        }
        Ok(dir.join("_data"))
    }

    /// `POST /volumes/create`: idempotent, like Docker's local driver. An empty name makes
    /// an anonymous volume named by 64 random hex digits, as Docker does.
    pub fn create_volume(
        &mut self,
        name: &str,
        labels: &BTreeMap<String, String>,
    ) -> Result<Volume, EngineError> {
        let random;
        let name = if name.is_empty() {
            let mut b = [0u8; 32];
            crate::containers::fill_random_pub(&mut b);
            random = b.iter().map(|x| format!("{x:02x}")).collect::<String>();
            random.as_str()
        } else {
            name
        };
        validate_name(name)?;
        let base = self.volumes_dir();
        let dir = base.join(name);
        if !dir.join("_data").is_dir() {
            let mut r = [0u8; 6];
            crate::containers::fill_random_pub(&mut r);
            let tmp = base.join(format!(
                ".tmp-{name}-{}",
                r.iter().map(|b| format!("{b:02x}")).collect::<String>()
            ));
            // The volume's directory is root's alone; `_data` is what containers see at the
            // mount point: 0755 as Docker makes it, whatever the umask.
            berth_runtime::util::create_dir_mode(&tmp, 0o700)
                .and_then(|()| berth_runtime::util::create_dir_mode(&tmp.join("_data"), 0o755))
                .map_err(|e| EngineError::io(format!("creating volume {name}"), e))?;
            let meta = Meta {
                created_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                labels: labels.clone(),
            };
            std::fs::write(
                tmp.join("volume.json"),
                serde_json::to_vec(&meta).unwrap_or_default(),
            )
            .map_err(|e| EngineError::io(format!("creating volume {name}"), e))?;
            if std::fs::rename(&tmp, &dir).is_err() {
                // Another process created it first.
                let _ = std::fs::remove_dir_all(&tmp);
            } else {
                self.record_event("volume", "create", name, &[("driver", "local")]);
            }
        }
        self.inspect_volume(name)
    }

    /// `GET /volumes/{name}`.
    pub fn inspect_volume(&self, name: &str) -> Result<Volume, EngineError> {
        let dir = self.volumes_dir().join(name);
        if name.starts_with('.') || name.contains('/') || !dir.join("_data").is_dir() {
            return Err(EngineError::VolumeNotFound(name.to_string()));
        }
        let meta: Meta = std::fs::read(dir.join("volume.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        Ok(Volume {
            name: name.to_string(),
            driver: "local".into(),
            mountpoint: dir.join("_data").display().to_string(),
            created_at: meta.created_at,
            labels: meta.labels,
            scope: "local".into(),
            options: BTreeMap::new(),
        })
    }

    /// `GET /volumes`.
    pub fn list_volumes(&self) -> Result<Vec<Volume>, EngineError> {
        let mut out = Vec::new();
        if let Ok(rd) = std::fs::read_dir(self.volumes_dir()) {
            for e in rd.flatten() {
                let name = e.file_name().to_string_lossy().to_string();
                if name.starts_with('.') {
                    continue;
                }
                if let Ok(v) = self.inspect_volume(&name) {
                    out.push(v);
                }
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// `GET /volumes?filters=`: Docker's `name=` (substring), `label=KEY[=VALUE]`,
    /// `dangling=true|false|1|0` (no container uses it), `driver=`; OR within a key, AND
    /// across keys.
    pub fn list_volumes_filtered(&self, filters: &[String]) -> Result<Vec<Volume>, EngineError> {
        let mut by_key: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for f in filters {
            let Some((k, v)) = f.split_once('=') else {
                return Err(EngineError::InvalidArgument(
                    "bad format of filter (expected name=value)".into(),
                ));
            };
            match k {
                "name" | "label" | "driver" => {}
                "dangling" => {
                    if !matches!(v, "true" | "false" | "1" | "0") {
                        return Err(EngineError::InvalidArgument(format!(
                            "invalid filter 'dangling=[{v}]'"
                        )));
                    }
                }
                _ => {
                    return Err(EngineError::InvalidArgument(format!(
                        "invalid filter '{k}'"
                    )))
                }
            }
            by_key.entry(k.to_string()).or_default().push(v.to_string());
        }
        let mut out = Vec::new();
        for v in self.list_volumes()? {
            let mut keep = true;
            for (k, values) in &by_key {
                let ok = match k.as_str() {
                    "name" => values.iter().any(|x| v.name.contains(x.as_str())),
                    "driver" => values.contains(&v.driver),
                    "label" => values.iter().any(|x| match x.split_once('=') {
                        Some((lk, lv)) => v.labels.get(lk).is_some_and(|y| y == lv),
                        None => v.labels.contains_key(x),
                    }),
                    _ => {
                        let unused = self.volume_users(&v.name)?.is_empty();
                        values
                            .iter()
                            .any(|x| matches!(x.as_str(), "true" | "1") == unused)
                    }
                };
                keep &= ok;
            }
            if keep {
                out.push(v);
            }
        }
        Ok(out)
    }

    /// Names of the containers using volume `name`.
    pub fn volume_users(&self, name: &str) -> Result<Vec<String>, EngineError> {
        let mut users = Vec::new();
        for row in self.store().containers()? {
            if let Ok(rec) = serde_json::from_str::<crate::containers::ContainerRecord>(&row.record)
            {
                if rec.mounts.iter().any(|m| m == name) {
                    users.push(row.id);
                }
            }
        }
        Ok(users)
    }

    /// `DELETE /volumes/{name}`: refuses volumes in use unless `force`.
    pub fn remove_volume(&mut self, name: &str, force: bool) -> Result<(), EngineError> {
        self.inspect_volume(name)?;
        let users = self.volume_users(name)?;
        if !users.is_empty() && !force {
            return Err(EngineError::Conflict(format!(
                "remove {name}: volume is in use - [{}]",
                users.join(", ")
            )));
        }
        let dir = self.volumes_dir().join(name);
        let trash = self.volumes_dir().join(format!(".trash-{name}"));
        std::fs::rename(&dir, &trash)
            .map_err(|e| EngineError::io(format!("removing volume {name}"), e))?;
        let _ = std::fs::remove_dir_all(&trash);
        self.record_event("volume", "destroy", name, &[("driver", "local")]);
        Ok(())
    }

    /// `POST /volumes/prune`: removes anonymous volumes no container uses (all unused ones
    /// with `all`).
    pub fn prune_volumes(&mut self, all: bool) -> Result<VolumePruneReport, EngineError> {
        let mut report = VolumePruneReport::default();
        for v in self.list_volumes()? {
            let anonymous = v.name.len() == 64 && v.name.bytes().all(|b| b.is_ascii_hexdigit());
            if !all && !anonymous {
                continue;
            }
            if !self.volume_users(&v.name)?.is_empty() {
                continue;
            }
            let size = dir_size(std::path::Path::new(&v.mountpoint));
            if self.remove_volume(&v.name, false).is_ok() {
                report.volumes_deleted.push(v.name);
                report.space_reclaimed += size;
            }
        }
        Ok(report)
    }
}
