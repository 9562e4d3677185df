//! The Container Device Interface: spec files (`cdiVersion`, `kind`, `devices`,
//! `containerEdits`) read from the CDI directories (`/etc/cdi`, `/var/run/cdi`; JSON or YAML),
//! validated with the file and field named, and `vendor/class=name` resolved to the edits to
//! apply. The NVIDIA GPUs berth discovers are described in the same types (`nvidia.rs`).

use super::GpuError;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Spec {
    pub cdi_version: String,
    pub kind: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    pub devices: Vec<Device>,
    #[serde(default, skip_serializing_if = "ContainerEdits::is_empty")]
    pub container_edits: ContainerEdits,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Device {
    pub name: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    #[serde(default)]
    pub container_edits: ContainerEdits,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ContainerEdits {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub device_nodes: Vec<DeviceNode>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hooks: Vec<Hook>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mounts: Vec<Mount>,
    /// Read so a spec that has them parses; a device that needs them is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intel_rdt: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub additional_gids: Vec<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub net_devices: Option<serde_json::Value>,
}

impl ContainerEdits {
    pub fn is_empty(&self) -> bool {
        self.env.is_empty()
            && self.device_nodes.is_empty()
            && self.hooks.is_empty()
            && self.mounts.is_empty()
            && self.intel_rdt.is_none()
            && self.additional_gids.is_empty()
            && self.net_devices.is_none()
    }

    /// Appends another set of edits (a spec's, then each device's).
    pub fn extend(&mut self, o: &ContainerEdits) {
        self.env.extend(o.env.iter().cloned());
        self.device_nodes.extend(o.device_nodes.iter().cloned());
        self.hooks.extend(o.hooks.iter().cloned());
        self.mounts.extend(o.mounts.iter().cloned());
        if o.intel_rdt.is_some() {
            self.intel_rdt = o.intel_rdt.clone();
        }
        self.additional_gids
            .extend(o.additional_gids.iter().copied());
        if o.net_devices.is_some() {
            self.net_devices = o.net_devices.clone();
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DeviceNode {
    pub path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_path: Option<String>,
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub major: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minor: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_mode: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permissions: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gid: Option<u32>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Mount {
    pub host_path: String,
    pub container_path: String,
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Hook {
    pub hook_name: String,
    pub path: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<i64>,
}

/// The OCI hooks a CDI spec may name.
const HOOK_NAMES: &[&str] = &[
    "prestart",
    "createRuntime",
    "createContainer",
    "startContainer",
    "poststart",
    "poststop",
];

/// Spec versions this reader understands (the CDI project's released ones).
const VERSIONS: &[&str] = &[
    "0.3.0", "0.4.0", "0.5.0", "0.6.0", "0.7.0", "0.8.0", "1.0.0", "1.1.0",
];

fn label_ok(s: &str, extra: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || extra.contains(c))
}

/// `vendor.com/class`: a vendor of DNS labels and a class of letters, digits, `_.-`.
pub fn kind_error(kind: &str) -> Option<String> {
    let Some((vendor, class)) = kind.split_once('/') else {
        return Some(format!(
            "invalid kind {kind:?}: expected VENDOR/CLASS (e.g. nvidia.com/gpu)"
        ));
    };
    if !label_ok(vendor, "-.") || vendor.split('.').any(|l| !label_ok(l, "-")) {
        return Some(format!(
            "invalid vendor {vendor:?} in kind {kind:?}: expected a domain name like vendor.com"
        ));
    }
    if !label_ok(class, "-_.") {
        return Some(format!(
            "invalid class {class:?} in kind {kind:?}: letters, digits, '-', '_' and '.', starting and ending with a letter or digit"
        ));
    }
    None
}

/// A device name: letters, digits, `_.:-`, starting and ending with a letter or digit.
pub fn name_error(name: &str) -> Option<String> {
    (!label_ok(name, "-_.:")).then(|| {
        format!("invalid device name {name:?}: letters, digits, '-', '_', '.' and ':', starting and ending with a letter or digit")
    })
}

/// Whether `--device` names a CDI device (`vendor/class=name`) rather than a host path.
pub fn is_qualified_name(s: &str) -> bool {
    parse_qualified(s).is_ok()
}

/// `vendor/class=name` → (kind, name).
pub fn parse_qualified(s: &str) -> Result<(&str, &str), String> {
    let (kind, name) = s
        .split_once('=')
        .ok_or_else(|| format!("{s:?} is not a CDI device name (VENDOR/CLASS=NAME)"))?;
    if let Some(e) = kind_error(kind) {
        return Err(e);
    }
    if let Some(e) = name_error(name) {
        return Err(e);
    }
    Ok((kind, name))
}

fn check_perms(p: &str) -> bool {
    !p.is_empty() && p.len() <= 3 && p.chars().all(|c| "rwm".contains(c))
}

fn validate_edits(e: &ContainerEdits, at: &str) -> Result<(), String> {
    for (i, v) in e.env.iter().enumerate() {
        if !v.contains('=') || v.starts_with('=') {
            return Err(format!("{at}.env[{i}]: {v:?} is not KEY=VALUE"));
        }
    }
    for (i, d) in e.device_nodes.iter().enumerate() {
        let at = format!("{at}.deviceNodes[{i}]");
        if !d.path.starts_with('/') {
            return Err(format!("{at}.path: {:?} must be an absolute path", d.path));
        }
        if let Some(h) = &d.host_path {
            if !h.starts_with('/') {
                return Err(format!("{at}.hostPath: {h:?} must be an absolute path"));
            }
        }
        if let Some(t) = &d.kind {
            if !matches!(t.as_str(), "b" | "c" | "u" | "p") {
                return Err(format!("{at}.type: {t:?} is not one of b, c, u, p"));
            }
        }
        if let Some(p) = &d.permissions {
            if !check_perms(p) {
                return Err(format!("{at}.permissions: {p:?} is not some of \"rwm\""));
            }
        }
    }
    for (i, h) in e.hooks.iter().enumerate() {
        let at = format!("{at}.hooks[{i}]");
        if !HOOK_NAMES.contains(&h.hook_name.as_str()) {
            return Err(format!(
                "{at}.hookName: {:?} is not one of {}",
                h.hook_name,
                HOOK_NAMES.join(", ")
            ));
        }
        if !h.path.starts_with('/') {
            return Err(format!("{at}.path: {:?} must be an absolute path", h.path));
        }
        if h.timeout.is_some_and(|t| t <= 0) {
            return Err(format!("{at}.timeout: must be greater than zero"));
        }
        for (j, v) in h.env.iter().enumerate() {
            if !v.contains('=') {
                return Err(format!("{at}.env[{j}]: {v:?} is not KEY=VALUE"));
            }
        }
    }
    for (i, m) in e.mounts.iter().enumerate() {
        let at = format!("{at}.mounts[{i}]");
        if m.host_path.is_empty() {
            return Err(format!("{at}.hostPath: missing"));
        }
        if !m.container_path.starts_with('/') {
            return Err(format!(
                "{at}.containerPath: {:?} must be an absolute path",
                m.container_path
            ));
        }
    }
    Ok(())
}

impl Spec {
    /// The CDI project's validation rules; the error names the field.
    pub fn validate(&self) -> Result<(), String> {
        if !VERSIONS.contains(&self.cdi_version.as_str()) {
            return Err(format!(
                "cdiVersion: unsupported version {:?} (berth reads {})",
                self.cdi_version,
                VERSIONS.join(", ")
            ));
        }
        if let Some(e) = kind_error(&self.kind) {
            return Err(format!("kind: {e}"));
        }
        validate_edits(&self.container_edits, "containerEdits")?;
        if self.devices.is_empty() {
            return Err("devices: a spec must define at least one device".into());
        }
        let mut names: Vec<&str> = Vec::new();
        for (i, d) in self.devices.iter().enumerate() {
            if let Some(e) = name_error(&d.name) {
                return Err(format!("devices[{i}].name: {e}"));
            }
            if names.contains(&d.name.as_str()) {
                return Err(format!(
                    "devices[{i}].name: device {:?} defined twice",
                    d.name
                ));
            }
            names.push(&d.name);
            if d.container_edits.is_empty() {
                return Err(format!(
                    "devices[{i}].containerEdits: a device must have edits"
                ));
            }
            validate_edits(&d.container_edits, &format!("devices[{i}].containerEdits"))?;
        }
        Ok(())
    }

    /// Parses a spec file's bytes: JSON for `.json`, YAML otherwise.
    pub fn parse(path: &Path, bytes: &[u8]) -> Result<Spec, String> {
        let spec: Spec = if path.extension().is_some_and(|e| e == "json") {
            serde_json::from_slice(bytes).map_err(|e| e.to_string())?
        } else {
            let text = std::str::from_utf8(bytes).map_err(|e| e.to_string())?;
            yaml_serde::from_str(text).map_err(|e| e.to_string())?
        };
        spec.validate()?;
        Ok(spec)
    }
}

/// Every spec of the CDI directories: later directories win over earlier ones for a device
/// both define (`/var/run/cdi` over `/etc/cdi`, as in the CDI project's registry); two files of
/// one directory defining the same device are a conflict, reported when it is asked for.
#[derive(Debug, Default)]
pub struct Registry {
    /// `vendor/class=name` → (priority, file, the spec's edits + the device's).
    devices: BTreeMap<String, (usize, PathBuf, ContainerEdits)>,
    conflicts: BTreeMap<String, (PathBuf, PathBuf)>,
    /// Files that did not parse or validate: "FILE: FIELD: why".
    pub errors: Vec<String>,
}

impl Registry {
    pub fn load(dirs: &[PathBuf]) -> Registry {
        let mut r = Registry::default();
        for (prio, dir) in dirs.iter().enumerate() {
            let Ok(rd) = std::fs::read_dir(dir) else {
                continue;
            };
            let mut files: Vec<PathBuf> = rd
                .filter_map(|e| Some(e.ok()?.path()))
                .filter(|p| {
                    p.extension()
                        .is_some_and(|e| e == "json" || e == "yaml" || e == "yml")
                })
                .collect();
            files.sort();
            for f in files {
                let spec = std::fs::read(&f)
                    .map_err(|e| e.to_string())
                    .and_then(|b| Spec::parse(&f, &b));
                match spec {
                    Ok(s) => r.add(prio, &f, &s),
                    Err(e) => r.errors.push(format!("CDI spec {}: {e}", f.display())),
                }
            }
        }
        r
    }

    pub fn add(&mut self, prio: usize, file: &Path, spec: &Spec) {
        for d in &spec.devices {
            let name = format!("{}={}", spec.kind, d.name);
            let mut edits = spec.container_edits.clone();
            edits.extend(&d.container_edits);
            match self.devices.get(&name) {
                Some((p, other, _)) if *p == prio => {
                    self.conflicts
                        .insert(name.clone(), (other.clone(), file.to_path_buf()));
                }
                Some((p, _, _)) if *p > prio => continue,
                _ => {
                    self.conflicts.remove(&name);
                }
            }
            self.devices.insert(name, (prio, file.to_path_buf(), edits));
        }
    }

    /// The fully qualified names of every device.
    pub fn names(&self) -> Vec<String> {
        self.devices.keys().cloned().collect()
    }

    /// The edits of `vendor/class=name`.
    pub fn resolve(&self, name: &str) -> Result<ContainerEdits, GpuError> {
        parse_qualified(name).map_err(GpuError::Cdi)?;
        if let Some((a, b)) = self.conflicts.get(name) {
            return Err(GpuError::Cdi(format!(
                "CDI device {name} is defined by both {} and {}: remove one",
                a.display(),
                b.display()
            )));
        }
        match self.devices.get(name) {
            Some((_, _, e)) => Ok(e.clone()),
            None => {
                let mut m = format!("unresolvable CDI devices {name}: no CDI spec defines it");
                if !self.errors.is_empty() {
                    m.push_str(&format!(
                        " (invalid specs were skipped: {})",
                        self.errors.join("; ")
                    ));
                }
                Err(GpuError::Cdi(m))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The CDI project's README example, in YAML and JSON.
    const VENDOR_YAML: &str = r#"
cdiVersion: "0.6.0"
kind: "vendor.com/device"
devices:
  - name: "myDevice"
    containerEdits:
      deviceNodes:
        - hostPath: "/vendor/dev/card1"
          path: "/dev/card1"
          type: "c"
          major: 25
          minor: 25
          fileMode: 384
          permissions: "rw"
          uid: 1000
          gid: 1000
        - path: "/dev/card-render1"
          type: "c"
          major: 25
          minor: 25
          fileMode: 384
          permissions: "rwm"
          uid: 1000
          gid: 1000
containerEdits:
  env:
    - "FOO=VALID_SPEC"
    - "BAR=BARVALUE1"
  deviceNodes:
    - path: "/dev/vendorctl"
      type: "b"
      major: 25
      minor: 25
      fileMode: 384
      permissions: "rw"
      uid: 1000
      gid: 1000
  mounts:
    - hostPath: "/bin/vendorBin"
      containerPath: "/bin/vendorBin"
    - hostPath: "/usr/lib/libVendor.so.0"
      containerPath: "/usr/lib/libVendor.so.0"
    - hostPath: "tmpfs"
      containerPath: "/tmp/data"
      type: "tmpfs"
      options: ["nosuid","strictatime","mode=755","size=65536k"]
  hooks:
    - hookName: "createContainer"
      path: "/bin/vendor-hook"
      args: ["vendor-hook", "--debug"]
      env: ["HOOK_ENV=some_value"]
"#;

    #[test]
    fn reads_the_projects_example() {
        let s = Spec::parse(Path::new("vendor.yaml"), VENDOR_YAML.as_bytes()).unwrap();
        assert_eq!(s.kind, "vendor.com/device");
        assert_eq!(s.devices[0].container_edits.device_nodes.len(), 2);
        assert_eq!(s.container_edits.mounts[2].kind.as_deref(), Some("tmpfs"));
        // JSON of the same spec reads the same.
        let json = serde_json::to_vec(&s).unwrap();
        let j = Spec::parse(Path::new("vendor.json"), &json).unwrap();
        assert_eq!(j, s);
        let mut r = Registry::default();
        r.add(0, Path::new("/etc/cdi/vendor.yaml"), &s);
        assert_eq!(r.names(), ["vendor.com/device=myDevice"]);
        let e = r.resolve("vendor.com/device=myDevice").unwrap();
        // The spec's edits, then the device's.
        assert_eq!(e.device_nodes[0].path, "/dev/vendorctl");
        assert_eq!(e.device_nodes[1].path, "/dev/card1");
        assert_eq!(e.env, ["FOO=VALID_SPEC", "BAR=BARVALUE1"]);
        let err = r
            .resolve("vendor.com/device=other")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("unresolvable CDI devices vendor.com/device=other"),
            "{err}"
        );
    }

    #[test]
    fn invalid_specs_name_the_field() {
        let cases: &[(&str, &str)] = &[
            ("cdiVersion: \"9.9.9\"\nkind: a.com/b\ndevices: [{name: x, containerEdits: {env: [A=1]}}]\n", "cdiVersion: unsupported version"),
            ("cdiVersion: \"0.6.0\"\nkind: nokind\ndevices: [{name: x, containerEdits: {env: [A=1]}}]\n", "kind: invalid kind"),
            ("cdiVersion: \"0.6.0\"\nkind: a.com/b\ndevices: []\n", "devices: a spec must define at least one device"),
            ("cdiVersion: \"0.6.0\"\nkind: a.com/b\ndevices: [{name: \"-x\", containerEdits: {env: [A=1]}}]\n", "devices[0].name: invalid device name"),
            ("cdiVersion: \"0.6.0\"\nkind: a.com/b\ndevices: [{name: x, containerEdits: {env: [A]}}]\n", "devices[0].containerEdits.env[0]"),
            ("cdiVersion: \"0.6.0\"\nkind: a.com/b\ndevices: [{name: x, containerEdits: {deviceNodes: [{path: dev/x}]}}]\n", "devices[0].containerEdits.deviceNodes[0].path"),
            ("cdiVersion: \"0.6.0\"\nkind: a.com/b\ndevices: [{name: x, containerEdits: {deviceNodes: [{path: /dev/x, type: z}]}}]\n", "deviceNodes[0].type"),
            ("cdiVersion: \"0.6.0\"\nkind: a.com/b\ndevices: [{name: x, containerEdits: {hooks: [{hookName: bogus, path: /x}]}}]\n", "hooks[0].hookName"),
            ("cdiVersion: \"0.6.0\"\nkind: a.com/b\ndevices: [{name: x, containerEdits: {mounts: [{hostPath: /a, containerPath: b}]}}]\n", "mounts[0].containerPath"),
            ("cdiVersion: \"0.6.0\"\nkind: a.com/b\ndevices: [{name: x}]\n", "devices[0].containerEdits: a device must have edits"),
            ("cdiVersion: \"0.6.0\"\nkind: a.com/b\ndevices: [{name: x, containerEdits: {env: [A=1]}, bogus: 1}]\n", "unknown field `bogus`"),
            ("kind: a.com/b\ndevices: [{name: x, containerEdits: {env: [A=1]}}]\n", "missing field `cdiVersion`"),
        ];
        for (text, want) in cases {
            let e = Spec::parse(Path::new("x.yaml"), text.as_bytes()).unwrap_err();
            assert!(e.contains(want), "{text}: {e}");
        }
    }

    #[test]
    fn qualified_names() {
        assert!(is_qualified_name("nvidia.com/gpu=0"));
        assert!(is_qualified_name("nvidia.com/gpu=all"));
        assert!(is_qualified_name("nvidia.com/gpu=GPU-3a23c669-1f69"));
        assert!(is_qualified_name("vendor.com/device=myDevice"));
        assert!(!is_qualified_name("/dev/fuse"));
        assert!(!is_qualified_name("nvidia.com/gpu"));
        assert!(!is_qualified_name("gpu=0"));
        assert!(!is_qualified_name("/dev/x=y"));
    }

    #[test]
    fn priorities_and_conflicts() {
        let spec = |env: &str| Spec {
            cdi_version: "0.6.0".into(),
            kind: "a.com/b".into(),
            devices: vec![Device {
                name: "x".into(),
                container_edits: ContainerEdits {
                    env: vec![env.into()],
                    ..Default::default()
                },
                ..Default::default()
            }],
            ..Default::default()
        };
        let mut r = Registry::default();
        r.add(0, Path::new("/etc/cdi/a.yaml"), &spec("A=etc"));
        r.add(1, Path::new("/var/run/cdi/a.yaml"), &spec("A=run"));
        assert_eq!(r.resolve("a.com/b=x").unwrap().env, ["A=run"]);
        r.add(1, Path::new("/var/run/cdi/b.yaml"), &spec("A=run2"));
        let e = r.resolve("a.com/b=x").unwrap_err().to_string();
        assert!(e.contains("defined by both"), "{e}");
    }
}
