//! The NVIDIA driver as the host has it, found without NVIDIA's container toolkit: GPUs from
//! `/proc/driver/nvidia/gpus/*/information`, device nodes from `/dev`, the driver's user-space
//! libraries and programs by their names in the driver's usual directories, firmware from
//! `/lib/firmware/nvidia/<version>/`. Every path is under [`GpuConfig`]'s roots, so a fake
//! driver tree in a temporary directory stands in for a real one.

use super::{Capability, GpuConfig, GpuError};
use std::path::{Path, PathBuf};

/// One GPU, as the driver lists it. `index` is NVML's: the GPUs ordered by PCI bus location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gpu {
    pub index: usize,
    pub minor: u32,
    pub uuid: String,
    pub model: String,
    pub bus: String,
}

/// A file of the driver: where it is on the host and where it goes in a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DriverFile {
    pub host: PathBuf,
    pub container: String,
    pub capability: Capability,
}

#[derive(Debug, Clone, Default)]
pub struct Driver {
    /// e.g. `550.54.15`; empty when `/proc/driver/nvidia/version` does not say.
    pub version: String,
    pub gpus: Vec<Gpu>,
    /// Control nodes present on the host: `/dev/nvidiactl`, `/dev/nvidia-uvm`, … (container
    /// paths; the host's are under the driver root).
    pub control_nodes: Vec<String>,
    pub libraries: Vec<DriverFile>,
    pub binaries: Vec<DriverFile>,
    pub firmware: Vec<DriverFile>,
}

/// The driver's libraries by the capability that needs them (the toolkit's grouping).
pub(crate) const LIBRARIES: &[(&str, Capability)] = &[
    ("libcuda", Capability::Compute),
    ("libcudadebugger", Capability::Compute),
    ("libnvidia-ptxjitcompiler", Capability::Compute),
    ("libnvidia-nvvm", Capability::Compute),
    ("libnvidia-gpucomp", Capability::Compute),
    ("libnvidia-opencl", Capability::Compute),
    ("libnvidia-ml", Capability::Utility),
    ("libnvidia-cfg", Capability::Utility),
    ("libnvcuvid", Capability::Video),
    ("libnvidia-encode", Capability::Video),
    ("libnvidia-opticalflow", Capability::Video),
    ("libnvidia-eglcore", Capability::Graphics),
    ("libnvidia-glcore", Capability::Graphics),
    ("libnvidia-tls", Capability::Graphics),
    ("libnvidia-glsi", Capability::Graphics),
    ("libnvidia-fbc", Capability::Graphics),
    ("libnvidia-rtcore", Capability::Graphics),
    ("libnvoptix", Capability::Graphics),
    ("libnvidia-glvkspirv", Capability::Graphics),
    ("libGLX_nvidia", Capability::Graphics),
    ("libEGL_nvidia", Capability::Graphics),
    ("libGLESv2_nvidia", Capability::Graphics),
    ("libGLESv1_CM_nvidia", Capability::Graphics),
];

/// The driver's programs; they go to `/usr/bin` in the container, on every image's `PATH`.
pub(crate) const BINARIES: &[(&str, Capability)] = &[
    ("nvidia-smi", Capability::Utility),
    ("nvidia-debugdump", Capability::Utility),
    ("nvidia-persistenced", Capability::Utility),
    ("nvidia-cuda-mps-control", Capability::Compute),
    ("nvidia-cuda-mps-server", Capability::Compute),
];

/// Where drivers put their libraries (64-bit only), driver-specific directories first.
const LIBRARY_DIRS: &[&str] = &[
    "usr/local/nvidia/lib64",
    "usr/lib/x86_64-linux-gnu",
    "usr/lib/aarch64-linux-gnu",
    "usr/lib64",
    "lib/x86_64-linux-gnu",
    "lib/aarch64-linux-gnu",
    "lib64",
    "usr/lib",
];

const BINARY_DIRS: &[&str] = &[
    "usr/local/nvidia/bin",
    "usr/bin",
    "usr/local/bin",
    "usr/sbin",
    "bin",
    "sbin",
];

/// The control nodes a container with GPUs gets when the host has them.
const CONTROL_NODES: &[&str] = &[
    "/dev/nvidiactl",
    "/dev/nvidia-uvm",
    "/dev/nvidia-uvm-tools",
    "/dev/nvidia-modeset",
];

/// `Key: value` lines of a driver information file.
fn field<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        (k.trim() == key).then(|| v.trim())
    })
}

/// The version in `NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.54.15  Tue Mar …`.
fn driver_version(text: &str) -> String {
    let line = text.lines().find(|l| l.starts_with("NVRM")).unwrap_or("");
    line.split_whitespace()
        .find(|w| {
            w.contains('.')
                && w.split('.')
                    .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        })
        .unwrap_or("")
        .to_string()
}

fn under(root: &Path, rel: &str) -> PathBuf {
    root.join(rel.trim_start_matches('/'))
}

/// Finds `NAME.so.VERSION` (or, when the version is unknown, `NAME.so.X.Y…`) in the library
/// directories; the first directory that has it wins.
fn find_library(root: &Path, name: &str, version: &str) -> Option<(PathBuf, String)> {
    for dir in LIBRARY_DIRS {
        let d = under(root, dir);
        if !version.is_empty() {
            let file = format!("{name}.so.{version}");
            if d.join(&file).is_file() {
                return Some((d.join(&file), format!("/{dir}/{file}")));
            }
            continue;
        }
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        let prefix = format!("{name}.so.");
        let mut hits: Vec<String> = rd
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|f| {
                f.strip_prefix(&prefix).is_some_and(|v| {
                    v.contains('.') && v.split('.').all(|p| p.parse::<u32>().is_ok())
                })
            })
            .collect();
        hits.sort();
        if let Some(f) = hits.pop() {
            return Some((d.join(&f), format!("/{dir}/{f}")));
        }
    }
    None
}

/// Discovers the driver; fails when the host has no NVIDIA driver or no GPU.
pub fn discover(cfg: &GpuConfig) -> Result<Driver, GpuError> {
    let gpus_dir = cfg.proc_root.join("driver/nvidia/gpus");
    let entries = std::fs::read_dir(&gpus_dir).map_err(|_| GpuError::NoDriver {
        looked: gpus_dir.clone(),
    })?;
    let mut gpus = Vec::new();
    for e in entries.flatten() {
        let info = e.path().join("information");
        let text = std::fs::read_to_string(&info).map_err(|err| GpuError::Driver {
            message: format!("reading {}: {err}", info.display()),
        })?;
        let minor = field(&text, "Device Minor")
            .and_then(|m| m.parse::<u32>().ok())
            .ok_or_else(|| GpuError::Driver {
                message: format!("{}: no \"Device Minor\" line", info.display()),
            })?;
        gpus.push(Gpu {
            index: 0,
            minor,
            uuid: field(&text, "GPU UUID").unwrap_or("").to_string(),
            model: field(&text, "Model").unwrap_or("").to_string(),
            bus: field(&text, "Bus Location")
                .map(str::to_string)
                .unwrap_or_else(|| e.file_name().to_string_lossy().into_owned()),
        });
    }
    if gpus.is_empty() {
        return Err(GpuError::NoDriver { looked: gpus_dir });
    }
    gpus.sort_by_key(|g| g.bus.to_lowercase());
    for (i, g) in gpus.iter_mut().enumerate() {
        g.index = i;
    }
    let version = std::fs::read_to_string(cfg.proc_root.join("driver/nvidia/version"))
        .map(|t| driver_version(&t))
        .unwrap_or_default();
    let root = &cfg.driver_root;
    let control_nodes = CONTROL_NODES
        .iter()
        .filter(|n| under(root, n).exists())
        .map(|n| n.to_string())
        .collect();
    let libraries = LIBRARIES
        .iter()
        .filter_map(|(name, cap)| {
            let (host, container) = find_library(root, name, &version)?;
            Some(DriverFile {
                host,
                container,
                capability: *cap,
            })
        })
        .collect();
    let binaries = BINARIES
        .iter()
        .filter_map(|(name, cap)| {
            let host = BINARY_DIRS
                .iter()
                .map(|d| under(root, d).join(name))
                .find(|p| p.is_file())?;
            Some(DriverFile {
                host,
                container: format!("/usr/bin/{name}"),
                capability: *cap,
            })
        })
        .collect();
    let mut firmware = Vec::new();
    if !version.is_empty() {
        let rel = format!("lib/firmware/nvidia/{version}");
        if let Ok(rd) = std::fs::read_dir(under(root, &rel)) {
            let mut files: Vec<String> = rd
                .filter_map(|e| e.ok()?.file_name().into_string().ok())
                .filter(|f| f.ends_with(".bin"))
                .collect();
            files.sort();
            for f in files {
                firmware.push(DriverFile {
                    host: under(root, &rel).join(&f),
                    container: format!("/{rel}/{f}"),
                    capability: Capability::Compute,
                });
            }
        }
    }
    Ok(Driver {
        version,
        gpus,
        control_nodes,
        libraries,
        binaries,
        firmware,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_and_fields() {
        assert_eq!(
            driver_version("NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.54.15  Tue Mar  5 22:23:56 UTC 2024\nGCC version: gcc 12\n"),
            "550.54.15"
        );
        assert_eq!(driver_version("garbage"), "");
        let info = "Model: \t\t NVIDIA H100 80GB HBM3\nGPU UUID: \t GPU-1c3f\nBus Location: \t 0000:18:00.0\nDevice Minor: \t 3\n";
        assert_eq!(field(info, "Model"), Some("NVIDIA H100 80GB HBM3"));
        assert_eq!(field(info, "Bus Location"), Some("0000:18:00.0"));
        assert_eq!(field(info, "Device Minor"), Some("3"));
    }

    #[test]
    fn no_driver_is_named() {
        let t = tempfile::tempdir().unwrap();
        let cfg = GpuConfig {
            driver_root: t.path().into(),
            proc_root: t.path().join("proc"),
            ..GpuConfig::default()
        };
        let e = discover(&cfg).unwrap_err();
        let m = e.to_string();
        assert!(m.contains("no NVIDIA GPU driver"), "{m}");
        assert!(m.contains("install the NVIDIA driver"), "{m}");
    }

    #[test]
    fn finds_gpus_libraries_binaries_firmware() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path();
        let w = |rel: &str, text: &str| {
            let p = root.join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        };
        // Listed out of bus order: indexes follow the bus, minors do not.
        w(
            "proc/driver/nvidia/gpus/0000:3b:00.0/information",
            "Model: B\nGPU UUID: GPU-bbbb\nBus Location: 0000:3b:00.0\nDevice Minor: 0\n",
        );
        w(
            "proc/driver/nvidia/gpus/0000:18:00.0/information",
            "Model: A\nGPU UUID: GPU-aaaa\nBus Location: 0000:18:00.0\nDevice Minor: 1\n",
        );
        w(
            "proc/driver/nvidia/version",
            "NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.54.15  x\n",
        );
        w("usr/local/nvidia/lib64/libcuda.so.550.54.15", "");
        w("usr/local/nvidia/lib64/libcuda.so.1", "");
        w("usr/lib/x86_64-linux-gnu/libnvidia-ml.so.550.54.15", "");
        w("usr/lib/x86_64-linux-gnu/libnvidia-ml.so.535.1", "");
        w("usr/local/nvidia/bin/nvidia-smi", "#!/bin/sh\n");
        w("lib/firmware/nvidia/550.54.15/gsp_ga10x.bin", "");
        w("dev/nvidiactl", "");
        let cfg = GpuConfig {
            driver_root: root.into(),
            proc_root: root.join("proc"),
            ..GpuConfig::default()
        };
        let d = discover(&cfg).unwrap();
        assert_eq!(d.version, "550.54.15");
        let g: Vec<(usize, u32, &str)> = d
            .gpus
            .iter()
            .map(|g| (g.index, g.minor, g.uuid.as_str()))
            .collect();
        assert_eq!(g, [(0, 1, "GPU-aaaa"), (1, 0, "GPU-bbbb")]);
        let libs: Vec<&str> = d.libraries.iter().map(|l| l.container.as_str()).collect();
        assert_eq!(
            libs,
            [
                "/usr/local/nvidia/lib64/libcuda.so.550.54.15",
                "/usr/lib/x86_64-linux-gnu/libnvidia-ml.so.550.54.15"
            ]
        );
        assert_eq!(d.binaries[0].container, "/usr/bin/nvidia-smi");
        assert_eq!(
            d.firmware[0].container,
            "/lib/firmware/nvidia/550.54.15/gsp_ga10x.bin"
        );
        assert_eq!(d.control_nodes, ["/dev/nvidiactl"]);
    }
}
