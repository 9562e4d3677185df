//! `container prune` with filters, `system prune` and `system df`.

use super::{dir_size, ContainerPruneReport, ListOptions};
use crate::{Engine, EngineError};

impl Engine {
    /// Whether the container of `row` runs now (paused and restarting count as running).
    pub(crate) fn container_row_running(&self, row: &berth_store::ContainerRow) -> bool {
        let Ok(mut rec) = serde_json::from_str::<super::ContainerRecord>(&row.record) else {
            return false;
        };
        let live = self.live_state(&row.id, &mut rec).0;
        live.running || live.restarting
    }

    /// `POST /containers/prune` with Docker's filters: `until=` (timestamp or duration),
    /// `label=`, `label!=`.
    pub fn prune_containers(
        &mut self,
        filters: &[String],
    ) -> Result<ContainerPruneReport, EngineError> {
        let mut until: Option<f64> = None;
        let mut labels = Vec::new();
        let mut not_labels: Vec<String> = Vec::new();
        for f in filters {
            let (k, v) = f
                .split_once('=')
                .ok_or_else(|| EngineError::InvalidArgument(format!("invalid filter '{f}'")))?;
            match k {
                "until" => until = Some(super::parse_time_arg(v)?),
                "label" => labels.push(format!("label={v}")),
                "label!" => not_labels.push(v.to_string()),
                _ => {
                    return Err(EngineError::InvalidArgument(format!(
                        "invalid filter '{k}'"
                    )))
                }
            }
        }
        let list = self.list_containers(&ListOptions {
            all: true,
            filters: labels,
            ..Default::default()
        })?;
        let mut report = ContainerPruneReport::default();
        for c in list {
            if matches!(c.state.as_str(), "running" | "paused" | "restarting") {
                continue;
            }
            if let Some(u) = until {
                if c.created as f64 >= u {
                    continue;
                }
            }
            if not_labels.iter().any(|l| match l.split_once('=') {
                Some((k, v)) => c.labels.get(k).map(|x| x == v).unwrap_or(false),
                None => c.labels.contains_key(l),
            }) {
                continue;
            }
            let size = dir_size(&self.container_dir_of(&c.id).join("upper"));
            if self.remove_container(&c.id, false, false).is_ok() {
                report.containers_deleted.push(c.id);
                report.space_reclaimed += size;
            }
        }
        Ok(report)
    }
}

/// A volume with what `system df` says about it (`UsageData` in the Engine API).
#[derive(Debug, Clone)]
pub struct VolumeUsage {
    pub volume: crate::volumes::Volume,
    /// Bytes of the files under `_data` (their apparent size, as dockerd's `directory.Size`).
    pub size: u64,
    /// Containers that mount it.
    pub ref_count: usize,
}

/// One line of `system df`'s summary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageTotal {
    /// `Images`, `Containers`, `Local Volumes`, `Build Cache`.
    pub kind: &'static str,
    pub total_count: usize,
    pub active: usize,
    pub size: u64,
    pub reclaimable: u64,
}

/// `GET /system/df` and `berth system df`: every image, container (with its size) and volume
/// (with its size and users), the build cache, and the totals both front ends render.
#[derive(Debug, Clone)]
pub struct DiskUsage {
    pub images: Vec<crate::types::ImageSummary>,
    pub containers: Vec<super::ContainerSummary>,
    pub volumes: Vec<VolumeUsage>,
    pub build_cache_entries: u64,
    pub build_cache_size: u64,
}

impl DiskUsage {
    /// `LayersSize`: the images' bytes.
    pub fn layers_size(&self) -> u64 {
        self.images.iter().map(|i| i.size.max(0) as u64).sum()
    }

    /// The summary's four lines, computed as the docker CLI does from dockerd's answer: an
    /// image is active when a container uses it, a container when it runs (paused and
    /// restarting count), a volume when a container mounts it; what is not active is
    /// reclaimable; the build cache is all reclaimable.
    pub fn totals(&self) -> [UsageTotal; 4] {
        let used: std::collections::HashSet<&str> = self
            .containers
            .iter()
            .map(|c| c.image_id.as_str())
            .collect();
        let image_size = |i: &crate::types::ImageSummary| i.size.max(0) as u64;
        let images = UsageTotal {
            kind: "Images",
            total_count: self.images.len(),
            active: self
                .images
                .iter()
                .filter(|i| used.contains(i.id.as_str()))
                .count(),
            size: self.layers_size(),
            reclaimable: self
                .images
                .iter()
                .filter(|i| !used.contains(i.id.as_str()))
                .map(image_size)
                .sum(),
        };
        let running = |c: &&super::ContainerSummary| {
            matches!(c.state.as_str(), "running" | "paused" | "restarting")
        };
        let rw = |c: &super::ContainerSummary| c.size_rw.unwrap_or(0).max(0) as u64;
        let containers = UsageTotal {
            kind: "Containers",
            total_count: self.containers.len(),
            active: self.containers.iter().filter(running).count(),
            size: self.containers.iter().map(rw).sum(),
            reclaimable: self.containers.iter().filter(|c| !running(c)).map(rw).sum(),
        };
        let volumes = UsageTotal {
            kind: "Local Volumes",
            total_count: self.volumes.len(),
            active: self.volumes.iter().filter(|v| v.ref_count > 0).count(),
            size: self.volumes.iter().map(|v| v.size).sum(),
            reclaimable: self
                .volumes
                .iter()
                .filter(|v| v.ref_count == 0)
                .map(|v| v.size)
                .sum(),
        };
        let cache = UsageTotal {
            kind: "Build Cache",
            total_count: self.build_cache_entries as usize,
            active: 0,
            size: self.build_cache_size,
            reclaimable: self.build_cache_size,
        };
        [images, containers, volumes, cache]
    }
}

/// The apparent size of the files under `p` (symbolic links are not followed).
pub(crate) fn tree_bytes(p: &std::path::Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![p.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            match e.file_type() {
                Ok(t) if t.is_dir() => stack.push(e.path()),
                Ok(_) => total += e.metadata().map(|m| m.len()).unwrap_or(0),
                Err(_) => {}
            }
        }
    }
    total
}

impl Engine {
    /// `GET /system/df` and `berth system df`.
    pub fn disk_usage(&mut self) -> Result<DiskUsage, EngineError> {
        let images = self.list_images(true, &crate::images::ImageFilters::default())?;
        let containers = self.list_containers(&ListOptions {
            all: true,
            size: true,
            ..Default::default()
        })?;
        let mut volumes = Vec::new();
        for v in self.list_volumes()? {
            let size = tree_bytes(std::path::Path::new(&v.mountpoint));
            let ref_count = self.volume_users(&v.name)?.len();
            volumes.push(VolumeUsage {
                volume: v,
                size,
                ref_count,
            });
        }
        let (build_cache_entries, build_cache_size) = self.build_cache_usage()?;
        Ok(DiskUsage {
            images,
            containers,
            volumes,
            build_cache_entries,
            build_cache_size,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totals_count_what_is_in_use() {
        let image = |id: &str, size: i64| crate::types::ImageSummary {
            id: id.into(),
            size,
            ..Default::default()
        };
        let container =
            |image_id: &str, state: &str, size_rw: i64| super::super::ContainerSummary {
                image_id: image_id.into(),
                state: state.into(),
                size_rw: Some(size_rw),
                ..Default::default()
            };
        let volume = |size: u64, ref_count: usize| VolumeUsage {
            volume: crate::volumes::Volume::default(),
            size,
            ref_count,
        };
        let du = DiskUsage {
            images: vec![image("sha256:a", 100), image("sha256:b", 40)],
            containers: vec![
                container("sha256:a", "running", 5),
                container("sha256:a", "exited", 7),
                container("sha256:a", "paused", 1),
            ],
            volumes: vec![volume(10, 1), volume(20, 0)],
            build_cache_entries: 3,
            build_cache_size: 99,
        };
        let [i, c, v, b] = du.totals();
        assert_eq!(
            (i.total_count, i.active, i.size, i.reclaimable),
            (2, 1, 140, 40)
        );
        assert_eq!(
            (c.total_count, c.active, c.size, c.reclaimable),
            (3, 2, 13, 7)
        );
        assert_eq!(
            (v.total_count, v.active, v.size, v.reclaimable),
            (2, 1, 30, 20)
        );
        assert_eq!(
            (b.kind, b.total_count, b.active, b.size, b.reclaimable),
            ("Build Cache", 3, 0, 99, 99)
        );
        assert_eq!(du.layers_size(), 140);
    }

    #[test]
    fn tree_bytes_counts_files_below() {
        let d = std::env::temp_dir().join(format!("berth-df-{}", std::process::id()));
        std::fs::create_dir_all(d.join("a/b")).unwrap();
        std::fs::write(d.join("x"), [0u8; 10]).unwrap();
        std::fs::write(d.join("a/b/y"), [0u8; 5]).unwrap();
        std::os::unix::fs::symlink("/etc", d.join("link")).unwrap();
        assert_eq!(
            tree_bytes(&d),
            15 + std::fs::symlink_metadata(d.join("link")).unwrap().len()
        );
        std::fs::remove_dir_all(&d).unwrap();
    }
}
