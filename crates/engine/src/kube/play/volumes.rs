//! A pod's `spec.volumes`: what each becomes locally.
//!
//! - ConfigMap and Secret: their keys written as files under the manifest's directory in the
//!   root, bind-mounted read-only;
//! - emptyDir: a directory of the pod (shared by its containers), or with `medium: Memory` a
//!   tmpfs (`/dev/shm` sized to it);
//! - hostPath: a bind mount, its `type` checked (or the path created) before anything starts;
//! - persistentVolumeClaim: the named volume of the claim's name.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::container::PodEnv;
use super::model::*;
use super::plan::{decode_base64, relative_path_ok, HostPathCheck, PlanContext, PodPlan};

#[derive(Debug, Clone)]
pub enum VolumeSource {
    /// A host path (a ConfigMap's files are `read_only`).
    Bind { host: PathBuf, read_only: bool },
    /// A named volume; `dir` is its data directory.
    Named {
        name: String,
        read_only: bool,
        dir: PathBuf,
    },
    /// A memory-backed emptyDir; size in bytes.
    Tmpfs { size: u64 },
}

pub type PodVolumes = BTreeMap<String, VolumeSource>;

#[allow(clippy::too_many_arguments)]
pub fn pod_volumes(
    describe: &str,
    path: &str,
    spec: &PodSpec,
    pod_dir: &Path,
    env: &PodEnv,
    ctx: &PlanContext,
    plan: &mut PodPlan,
    claims: &mut Vec<String>,
    unsupported: &mut Vec<String>,
) -> Result<PodVolumes, String> {
    let mut out = PodVolumes::new();
    for (i, v) in spec.volumes.iter().enumerate() {
        let vpath = format!("{path}.volumes[{i}]");
        if v.name.is_empty() {
            return Err(format!("{describe}: {vpath}.name: Required value"));
        }
        if out.contains_key(&v.name) {
            return Err(format!(
                "{describe}: {vpath}.name: Duplicate value: \"{}\"",
                v.name
            ));
        }
        let others = v.unsupported();
        if let Some(other) = others.first() {
            return Err(format!(
                "{describe}: {vpath}.{other}: a {other} volume needs a cluster; kube play runs emptyDir, hostPath, configMap, secret and persistentVolumeClaim volumes"
            ));
        }
        let dir = pod_dir.join("volumes").join(&v.name);
        let source = if let Some(h) = &v.host_path {
            if !h.path.starts_with('/') {
                return Err(format!(
                    "{describe}: {vpath}.hostPath.path: Invalid value: \"{}\": must be an absolute path",
                    h.path
                ));
            }
            let check = match h.kind.as_deref().unwrap_or("") {
                "" => HostPathCheck::Any,
                "DirectoryOrCreate" => HostPathCheck::DirectoryOrCreate,
                "Directory" => HostPathCheck::Directory,
                "FileOrCreate" => HostPathCheck::FileOrCreate,
                "File" => HostPathCheck::File,
                "Socket" => HostPathCheck::Socket,
                "CharDevice" => HostPathCheck::CharDevice,
                "BlockDevice" => HostPathCheck::BlockDevice,
                other => {
                    return Err(format!(
                        "{describe}: {vpath}.hostPath.type: Unsupported value: \"{other}\": supported values: \"\", \"BlockDevice\", \"CharDevice\", \"Directory\", \"DirectoryOrCreate\", \"File\", \"FileOrCreate\", \"Socket\""
                    ))
                }
            };
            plan.host_paths.push((
                format!("{describe}: {vpath}.hostPath"),
                PathBuf::from(&h.path),
                check,
            ));
            VolumeSource::Bind {
                host: PathBuf::from(&h.path),
                read_only: false,
            }
        } else if let Some(e) = &v.empty_dir {
            let size = e
                .size_limit
                .as_ref()
                .map(|q| {
                    super::quantity::bytes(&q.0)
                        .map_err(|m| format!("{describe}: {vpath}.emptyDir.sizeLimit: {m}"))
                })
                .transpose()?;
            match e.medium.as_deref().unwrap_or("") {
                "" => {
                    if size.is_some() {
                        unsupported.push(format!(
                            "{describe}: {vpath}.emptyDir.sizeLimit (a directory on disk has no size limit)"
                        ));
                    }
                    plan.dirs.push(dir.clone());
                    VolumeSource::Bind {
                        host: dir,
                        read_only: false,
                    }
                }
                "Memory" => VolumeSource::Tmpfs {
                    size: size
                        .map(|s| s as u64)
                        .unwrap_or(ctx.host_memory / 2)
                        .max(4096),
                },
                other => {
                    return Err(format!(
                        "{describe}: {vpath}.emptyDir.medium: Unsupported value: \"{other}\": supported values: \"\", \"Memory\""
                    ))
                }
            }
        } else if let Some(c) = &v.config_map {
            let cpath = format!("{vpath}.configMap");
            let found = env.config_maps.get(c.name.as_str());
            let data = match found {
                Some(cm) => {
                    let mut m: BTreeMap<String, Vec<u8>> = cm
                        .data
                        .iter()
                        .map(|(k, v)| (k.clone(), v.clone().into_bytes()))
                        .collect();
                    for (k, v) in &cm.binary_data {
                        m.insert(k.clone(), decode_base64(v).unwrap_or_default());
                    }
                    Some(m)
                }
                None if c.optional == Some(true) => None,
                None => {
                    return Err(format!(
                        "{describe}: {cpath}.name: ConfigMap \"{}\" is not in the manifests (add it, or mark the volume optional)",
                        c.name
                    ))
                }
            };
            key_files(
                describe,
                &cpath,
                data,
                &c.items,
                c.default_mode,
                c.optional,
                &dir,
                plan,
            )?;
            VolumeSource::Bind {
                host: dir,
                read_only: true,
            }
        } else if let Some(s) = &v.secret {
            let spath = format!("{vpath}.secret");
            let data = match env.secrets.get(s.secret_name.as_str()) {
                Some(sec) => Some(secret_data(sec)),
                None if s.optional == Some(true) => None,
                None => {
                    return Err(format!(
                        "{describe}: {spath}.secretName: Secret \"{}\" is not in the manifests (add it, or mark the volume optional)",
                        s.secret_name
                    ))
                }
            };
            key_files(
                describe,
                &spath,
                data,
                &s.items,
                s.default_mode,
                s.optional,
                &dir,
                plan,
            )?;
            VolumeSource::Bind {
                host: dir,
                read_only: true,
            }
        } else if let Some(c) = &v.persistent_volume_claim {
            if crate::volumes::validate_name(&c.claim_name).is_err() {
                return Err(format!(
                    "{describe}: {vpath}.persistentVolumeClaim.claimName: Invalid value: \"{}\"",
                    c.claim_name
                ));
            }
            if !claims.contains(&c.claim_name) {
                claims.push(c.claim_name.clone());
            }
            VolumeSource::Named {
                name: c.claim_name.clone(),
                read_only: c.read_only == Some(true),
                dir: ctx.volumes_dir.join(&c.claim_name).join("_data"),
            }
        } else {
            // Kubernetes defaults a volume without a source to an emptyDir.
            plan.dirs.push(dir.clone());
            VolumeSource::Bind {
                host: dir,
                read_only: false,
            }
        };
        out.insert(v.name.clone(), source);
    }
    Ok(out)
}

/// A Secret's keys: `data` (base64, checked by the plan) and `stringData` (which wins).
pub fn secret_data(s: &Secret) -> BTreeMap<String, Vec<u8>> {
    let mut m: BTreeMap<String, Vec<u8>> = s
        .data
        .iter()
        .map(|(k, v)| (k.clone(), decode_base64(v).unwrap_or_default()))
        .collect();
    for (k, v) in &s.string_data {
        m.insert(k.clone(), v.clone().into_bytes());
    }
    m
}

/// The files of a ConfigMap or Secret volume: every key, or the `items` chosen (each at its
/// `path`, with its `mode`).
#[allow(clippy::too_many_arguments)]
fn key_files(
    describe: &str,
    path: &str,
    data: Option<BTreeMap<String, Vec<u8>>>,
    items: &[KeyToPath],
    default_mode: Option<i32>,
    optional: Option<bool>,
    dir: &Path,
    plan: &mut PodPlan,
) -> Result<(), String> {
    let mode_ok = |m: i32, p: &str| -> Result<u32, String> {
        if !(0..=0o777).contains(&m) {
            return Err(format!(
                "{describe}: {p}: Invalid value: {m}: must be a number between 0 and 0777 (octal), both inclusive"
            ));
        }
        Ok(m as u32)
    };
    let default = mode_ok(
        default_mode.unwrap_or(0o644),
        &format!("{path}.defaultMode"),
    )?;
    plan.dirs.push(dir.to_path_buf());
    let Some(data) = data else {
        return Ok(());
    };
    if items.is_empty() {
        for (k, v) in data {
            plan.files.push((dir.join(k), v, default));
        }
        return Ok(());
    }
    for (i, it) in items.iter().enumerate() {
        let ipath = format!("{path}.items[{i}]");
        if !relative_path_ok(&it.path) {
            return Err(format!(
                "{describe}: {ipath}.path: Invalid value: \"{}\": must be a relative path without '..'",
                it.path
            ));
        }
        let mode = match it.mode {
            Some(m) => mode_ok(m, &format!("{ipath}.mode"))?,
            None => default,
        };
        match data.get(&it.key) {
            Some(v) => plan.files.push((dir.join(&it.path), v.clone(), mode)),
            None if optional == Some(true) => {}
            None => {
                return Err(format!(
                    "{describe}: {ipath}.key: no key \"{}\" in the object",
                    it.key
                ))
            }
        }
    }
    Ok(())
}
