//! `version` and `info`.

use crate::{Engine, EngineError};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;

pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// The Docker Engine API version berth speaks.
pub const API_VERSION: &str = "1.50";
pub const MIN_API_VERSION: &str = "1.24";

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Version {
    pub version: String,
    pub api_version: String,
    pub min_api_version: String,
    pub git_commit: String,
    pub go_version: String,
    pub os: String,
    pub arch: String,
    pub kernel_version: String,
    pub build_time: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Info {
    #[serde(rename = "ID")]
    pub id: String,
    #[serde(rename = "Containers")]
    pub containers: u64,
    #[serde(rename = "ContainersRunning")]
    pub containers_running: u64,
    #[serde(rename = "ContainersPaused")]
    pub containers_paused: u64,
    #[serde(rename = "ContainersStopped")]
    pub containers_stopped: u64,
    #[serde(rename = "Images")]
    pub images: u64,
    #[serde(rename = "Driver")]
    pub driver: String,
    #[serde(rename = "DriverStatus")]
    pub driver_status: Vec<[String; 2]>,
    #[serde(rename = "DockerRootDir")]
    pub root_dir: String,
    #[serde(rename = "RunRoot")]
    pub run_root: String,
    #[serde(rename = "CgroupDriver")]
    pub cgroup_driver: String,
    #[serde(rename = "CgroupVersion")]
    pub cgroup_version: String,
    #[serde(rename = "KernelVersion")]
    pub kernel_version: String,
    #[serde(rename = "OperatingSystem")]
    pub operating_system: String,
    #[serde(rename = "OSType")]
    pub os_type: String,
    #[serde(rename = "Architecture")]
    pub architecture: String,
    #[serde(rename = "NCPU")]
    pub ncpu: usize,
    #[serde(rename = "MemTotal")]
    pub mem_total: u64,
    #[serde(rename = "Name")]
    pub name: String,
    #[serde(rename = "ServerVersion")]
    pub server_version: String,
    #[serde(rename = "Runtimes")]
    pub runtimes: BTreeMap<String, RuntimeInfo>,
    #[serde(rename = "DefaultRuntime")]
    pub default_runtime: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct RuntimeInfo {
    pub path: String,
}

/// Which cgroup hierarchy the host mounts at /sys/fs/cgroup: "2" (unified) or "1" (v1
/// controllers, possibly with a cgroup2 mount beside them: "hybrid").
// `f_type`'s integer type differs between architectures.
#[allow(clippy::unnecessary_cast)]
pub fn cgroup_version() -> &'static str {
    const CGROUP2_SUPER_MAGIC: i64 = 0x6367_7270;
    match rustix::fs::statfs("/sys/fs/cgroup") {
        Ok(s) if s.f_type as i64 == CGROUP2_SUPER_MAGIC => "2",
        _ => "1",
    }
}

fn find_in_path(name: &str) -> Option<String> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .map(|p| p.display().to_string())
}

fn os_pretty_name() -> String {
    std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("PRETTY_NAME=")
                    .map(|v| v.trim_matches('"').to_string())
            })
        })
        .unwrap_or_else(|| "Linux".to_string())
}

fn mem_total() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("MemTotal:")
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            })
        })
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

#[allow(clippy::unnecessary_cast)]
fn backing_filesystem(path: &Path) -> String {
    match rustix::fs::statfs(path) {
        Ok(s) => match s.f_type as i64 {
            0xEF53 => "extfs".into(),
            0x5846_5342 => "xfs".into(),
            0x9123_683E => "btrfs".into(),
            0x0102_1994 => "tmpfs".into(),
            other => format!("0x{other:x}"),
        },
        Err(_) => "unknown".into(),
    }
}

pub fn kernel_version() -> String {
    rustix::system::uname()
        .release()
        .to_string_lossy()
        .to_string()
}

impl Engine {
    pub fn version(&self) -> Version {
        Version {
            version: VERSION.to_string(),
            api_version: API_VERSION.to_string(),
            min_api_version: MIN_API_VERSION.to_string(),
            git_commit: option_env!("BERTH_GIT_COMMIT")
                .unwrap_or("unknown")
                .to_string(),
            go_version: format!(
                "rust{}",
                option_env!("CARGO_PKG_RUST_VERSION").unwrap_or("")
            ),
            os: "linux".into(),
            arch: berth_oci::image::host_platform().architecture,
            kernel_version: kernel_version(),
            build_time: String::new(),
        }
    }

    pub fn info(&self) -> Result<Info, EngineError> {
        let (images, layers, blobs, containers) = self.store().counts()?;
        let mut runtimes = BTreeMap::new();
        runtimes.insert(
            "berth".to_string(),
            RuntimeInfo {
                path: "built-in".into(),
            },
        );
        for name in ["runc", "crun"] {
            if let Some(path) = find_in_path(name) {
                runtimes.insert(name.to_string(), RuntimeInfo { path });
            }
        }
        let name = rustix::system::uname()
            .nodename()
            .to_string_lossy()
            .to_string();
        Ok(Info {
            id: String::new(),
            containers,
            containers_running: 0,
            containers_paused: 0,
            containers_stopped: containers,
            images,
            driver: "overlay".into(),
            driver_status: vec![
                ["Backing Filesystem".into(), backing_filesystem(self.root())],
                ["Layers".into(), layers.to_string()],
                ["Blobs".into(), blobs.to_string()],
                ["Supports d_type".into(), "true".into()],
            ],
            root_dir: self.root().display().to_string(),
            run_root: self.runroot().display().to_string(),
            cgroup_driver: "cgroupfs".into(),
            cgroup_version: cgroup_version().into(),
            kernel_version: kernel_version(),
            operating_system: os_pretty_name(),
            os_type: "linux".into(),
            architecture: std::env::consts::ARCH.to_string(),
            ncpu: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
            mem_total: mem_total(),
            name,
            server_version: VERSION.to_string(),
            runtimes,
            default_runtime: "berth".into(),
        })
    }
}
