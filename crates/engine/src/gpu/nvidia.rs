//! The discovered NVIDIA driver as a CDI spec of kind `nvidia.com/gpu`: one device per GPU by
//! index and by UUID, and `all`; the spec-wide edits hold the control nodes and the driver's
//! files for the capabilities asked for. Paths on the host are under the driver root.

use super::cdi::{ContainerEdits, Device, DeviceNode, Mount, Spec};
use super::discover::Driver;
use super::{Capability, GpuConfig, GpuError};

pub const KIND: &str = "nvidia.com/gpu";

fn host(cfg: &GpuConfig, container: &str) -> String {
    cfg.driver_root
        .join(container.trim_start_matches('/'))
        .display()
        .to_string()
}

fn node(cfg: &GpuConfig, path: &str) -> DeviceNode {
    DeviceNode {
        path: path.to_string(),
        host_path: Some(host(cfg, path)),
        ..Default::default()
    }
}

/// The spec for these capabilities.
pub fn spec(cfg: &GpuConfig, d: &Driver, caps: &[Capability]) -> Spec {
    let gpu_edits = |minors: &[u32]| ContainerEdits {
        device_nodes: minors
            .iter()
            .map(|m| node(cfg, &format!("/dev/nvidia{m}")))
            .collect(),
        ..Default::default()
    };
    let mut devices = Vec::new();
    for g in &d.gpus {
        devices.push(Device {
            name: g.index.to_string(),
            container_edits: gpu_edits(&[g.minor]),
            ..Default::default()
        });
        if !g.uuid.is_empty() {
            devices.push(Device {
                name: g.uuid.clone(),
                container_edits: gpu_edits(&[g.minor]),
                ..Default::default()
            });
        }
    }
    let all: Vec<u32> = d.gpus.iter().map(|g| g.minor).collect();
    devices.push(Device {
        name: "all".into(),
        container_edits: gpu_edits(&all),
        ..Default::default()
    });
    let mut common = ContainerEdits {
        device_nodes: d.control_nodes.iter().map(|n| node(cfg, n)).collect(),
        ..Default::default()
    };
    for f in d
        .libraries
        .iter()
        .chain(&d.binaries)
        .chain(&d.firmware)
        .filter(|f| caps.contains(&f.capability))
    {
        common.mounts.push(Mount {
            host_path: f.host.display().to_string(),
            container_path: f.container.clone(),
            kind: None,
            options: vec!["ro".into(), "nosuid".into(), "nodev".into(), "bind".into()],
        });
    }
    Spec {
        cdi_version: "0.6.0".into(),
        kind: KIND.into(),
        devices,
        container_edits: common,
        ..Default::default()
    }
}

/// The GPUs the host has, for error messages.
pub fn known(d: &Driver) -> String {
    let list: Vec<String> = d
        .gpus
        .iter()
        .map(|g| format!("{} ({})", g.index, g.uuid))
        .collect();
    format!("this host has GPUs {}", list.join(", "))
}

/// `--gpus device=ID`: an index or a UUID (`GPU-…`) → the spec's device name.
pub fn device_name(d: &Driver, id: &str) -> Result<String, GpuError> {
    let id = id.trim();
    let found = d.gpus.iter().find(|g| {
        g.index.to_string() == id || (!g.uuid.is_empty() && g.uuid.eq_ignore_ascii_case(id))
    });
    match found {
        Some(g) => Ok(g.index.to_string()),
        None => Err(GpuError::Invalid(format!(
            "--gpus: unknown GPU {id:?}: {}",
            known(d)
        ))),
    }
}
