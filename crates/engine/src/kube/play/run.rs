//! Carrying out a plan (`kube play`) and undoing it (`kube down`).
//!
//! Order: parse and plan every file (bad input stops here), check host paths and names,
//! make sure every image is in the store, then create every container (a failed create
//! removes what this call created), then start the pods in parallel, one thread and one
//! engine handle each: init containers one after the other to completion, then the pod's
//! containers, the one holding the network first.

use std::collections::BTreeMap;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::parse;
use super::plan::{self, HostPathCheck, Plan, PlanContext, LABEL_MANIFEST, LABEL_POD};
use crate::containers::{CreateOptions, ListOptions};
use crate::{Engine, EngineError};

/// One manifest file: its identity (the canonical path, or a digest of standard input), the
/// name to show in errors, its text.
#[derive(Debug, Clone)]
pub struct Manifest {
    pub identity: String,
    pub display: String,
    pub text: String,
}

impl Manifest {
    /// A file by path.
    pub fn from_path(path: &Path) -> Result<Manifest, EngineError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            EngineError::InvalidArgument(format!("reading {}: {e}", path.display()))
        })?;
        let canonical = std::fs::canonicalize(path).map_err(|e| {
            EngineError::InvalidArgument(format!("reading {}: {e}", path.display()))
        })?;
        Ok(Manifest {
            identity: canonical.display().to_string(),
            display: path.display().to_string(),
            text,
        })
    }

    /// Standard input (`-`): known by its content's digest, so `kube down -` of the same text
    /// finds what `kube play -` made.
    pub fn from_stdin(text: String) -> Manifest {
        let h = Sha256::digest(text.as_bytes());
        let hex: String = h.iter().take(8).map(|b| format!("{b:02x}")).collect();
        Manifest {
            identity: format!("stdin:{hex}"),
            display: "-".into(),
            text,
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct PlayOptions {
    /// Remove what an earlier play of the same manifests made first.
    pub replace: bool,
}

/// What `kube play` did, for podman-style output.
#[derive(Debug, Clone, Default)]
pub struct PlayReport {
    pub volumes: Vec<String>,
    pub pods: Vec<PodReport>,
    /// What cannot run locally (one warning).
    pub unsupported: Vec<String>,
}

#[derive(Debug, Clone, Default)]
pub struct PodReport {
    pub name: String,
    /// `Deployment/web`.
    pub owner: String,
    /// IDs of the init containers (run to completion) and of the pod's containers.
    pub init: Vec<String>,
    pub containers: Vec<String>,
}

/// What `kube down` removed.
#[derive(Debug, Clone, Default)]
pub struct DownReport {
    /// Pod name → IDs of its containers.
    pub pods: BTreeMap<String, Vec<String>>,
    /// Claims left in place (their data is kept).
    pub volumes: Vec<String>,
}

impl Engine {
    /// This manifest's directory under the root: ConfigMap/Secret files, emptyDirs.
    fn kube_dir(&self, identity: &str) -> PathBuf {
        let h = Sha256::digest(identity.as_bytes());
        let hex: String = h.iter().take(8).map(|b| format!("{b:02x}")).collect();
        self.root().join("kube").join(hex)
    }

    /// Parses and plans `manifests` without running anything (every error is found here).
    pub fn kube_plan(&self, manifests: &[Manifest]) -> Result<Vec<(Manifest, Plan)>, EngineError> {
        let host_memory = host_memory();
        let mut out = Vec::new();
        for m in manifests {
            let prefix = |e: String| {
                if manifests.len() > 1 || m.display != "-" {
                    EngineError::InvalidArgument(format!("{}: {e}", m.display))
                } else {
                    EngineError::InvalidArgument(e)
                }
            };
            let docs = parse::parse(&m.text).map_err(prefix)?;
            let ctx = PlanContext {
                identity: m.identity.clone(),
                dir: self.kube_dir(&m.identity),
                volumes_dir: self.root().join("volumes"),
                host_memory,
            };
            let p = plan::plan(&docs, &ctx).map_err(prefix)?;
            out.push((m.clone(), p));
        }
        // Pods of two files must not share a name either.
        let mut names: Vec<&str> = Vec::new();
        for (m, p) in &out {
            for pod in &p.pods {
                if names.contains(&pod.name.as_str()) {
                    return Err(EngineError::InvalidArgument(format!(
                        "{}: pod \"{}\" is defined twice",
                        m.display, pod.name
                    )));
                }
                names.push(pod.name.as_str());
            }
        }
        Ok(out)
    }

    /// `kube play FILE…`.
    pub fn kube_play(
        &mut self,
        manifests: &[Manifest],
        o: &PlayOptions,
    ) -> Result<PlayReport, EngineError> {
        let plans = self.kube_plan(manifests)?;
        let mut report = PlayReport::default();
        for (_, p) in &plans {
            report.unsupported.extend(p.unsupported.iter().cloned());
        }

        // Checks before anything changes: host paths, names, images.
        for (_, p) in &plans {
            for pod in &p.pods {
                for (what, path, check) in &pod.host_paths {
                    check_host_path(what, path, check)?;
                }
            }
        }
        if o.replace {
            for (m, _) in &plans {
                self.kube_down_identity(&m.identity)?;
            }
        }
        for (_, p) in &plans {
            for pod in &p.pods {
                for c in pod.init.iter().chain(&pod.containers) {
                    let name = c.name.as_deref().unwrap_or("");
                    if let Ok(row) = self.resolve_container(name) {
                        return Err(EngineError::Conflict(format!(
                            "the container name \"{name}\" is already in use by container \"{}\": kube play --replace (or kube down FILE) removes what an earlier play made",
                            row.id
                        )));
                    }
                }
            }
        }
        let mut images: Vec<(String, crate::registry::PullPolicy)> = Vec::new();
        for (_, p) in &plans {
            for pod in &p.pods {
                for c in pod.init.iter().chain(&pod.containers) {
                    if !images.iter().any(|(i, _)| i == &c.image) {
                        images.push((c.image.clone(), c.pull));
                    }
                }
            }
        }
        for (image, policy) in &images {
            self.ensure_image(image, *policy, &mut |_| {})?;
        }

        // Volumes, files, directories.
        for (m, p) in &plans {
            for v in &p.volumes {
                self.ensure_volume(v)?;
                if !report.volumes.contains(v) {
                    report.volumes.push(v.clone());
                }
            }
            let dir = self.kube_dir(&m.identity);
            std::fs::create_dir_all(&dir)
                .map_err(|e| EngineError::io(dir.display().to_string(), e))?;
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755))
                .map_err(|e| EngineError::io(dir.display().to_string(), e))?;
            for pod in &p.pods {
                for d in &pod.dirs {
                    make_dir(d)?;
                }
                for (path, content, mode) in &pod.files {
                    if let Some(parent) = path.parent() {
                        make_dir(parent)?;
                    }
                    write_file(path, content, *mode)?;
                }
            }
        }

        // Create everything; a failure removes what this call created.
        let mut created: Vec<String> = Vec::new();
        let mut pods: Vec<(PodReport, Vec<CreateOptions>)> = Vec::new();
        for (_, p) in &plans {
            for pod in &p.pods {
                let mut r = PodReport {
                    name: pod.name.clone(),
                    owner: pod.owner.clone(),
                    ..Default::default()
                };
                for (is_init, c) in pod
                    .init
                    .iter()
                    .map(|c| (true, c))
                    .chain(pod.containers.iter().map(|c| (false, c)))
                {
                    match self.create_container(c) {
                        Ok(id) => {
                            created.push(id.clone());
                            if is_init {
                                r.init.push(id);
                            } else {
                                r.containers.push(id);
                            }
                        }
                        Err(e) => {
                            for id in created.iter().rev() {
                                let _ = self.remove_container(id, true, false);
                            }
                            return Err(with_context(e, &pod.name, c));
                        }
                    }
                }
                pods.push((r, pod.init.clone()));
            }
        }

        // Start the pods in parallel.
        let config = self.config().clone();
        let results: Vec<Result<(), EngineError>> = std::thread::scope(|s| {
            let handles: Vec<_> = pods
                .iter()
                .map(|(r, init)| {
                    let config = config.clone();
                    s.spawn(move || -> Result<(), EngineError> {
                        let mut e = Engine::open(config)?;
                        for (id, c) in r.init.iter().zip(init) {
                            e.start_container(id)?;
                            e.release_start_lock(id);
                            let code = e.wait_container(id)?;
                            if code != 0 {
                                return Err(EngineError::FailedPrecondition(format!(
                                    "pod {}: init container {} exited with code {code}; the pod's containers were not started (berth logs {} shows its output; kube down removes the pod)",
                                    r.name,
                                    c.run.labels.get(plan::LABEL_CONTAINER).map(String::as_str).unwrap_or(""),
                                    c.name.as_deref().unwrap_or(id),
                                )));
                            }
                        }
                        for id in &r.containers {
                            e.start_container(id)?;
                            e.release_start_lock(id);
                        }
                        Ok(())
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join().unwrap_or_else(|_| {
                        Err(EngineError::Internal(
                            "a pod's start thread panicked".into(),
                        ))
                    })
                })
                .collect()
        });
        let errors: Vec<String> = results
            .into_iter()
            .filter_map(|r| r.err().map(|e| e.to_string()))
            .collect();
        report.pods = pods.into_iter().map(|(r, _)| r).collect();
        if !errors.is_empty() {
            return Err(EngineError::FailedPrecondition(errors.join("; ")));
        }
        Ok(report)
    }

    /// `kube down FILE…`: removes every container `kube play` made from these manifests (found
    /// by their label, so an edited manifest still takes down what the earlier one made) and
    /// their files; the claims' volumes keep their data.
    pub fn kube_down(&mut self, manifests: &[Manifest]) -> Result<DownReport, EngineError> {
        let mut report = DownReport::default();
        for m in manifests {
            let r = self.kube_down_identity(&m.identity)?;
            report.pods.extend(r.pods);
            // The claims the manifest names, when it still parses.
            if let Ok(docs) = parse::parse(&m.text) {
                for d in docs {
                    if let super::model::Object::Pvc(c) = &d.object {
                        if !report.volumes.contains(&c.metadata.name) {
                            report.volumes.push(c.metadata.name.clone());
                        }
                    }
                }
            }
        }
        Ok(report)
    }

    fn kube_down_identity(&mut self, identity: &str) -> Result<DownReport, EngineError> {
        let list = self.list_containers(&ListOptions {
            all: true,
            filters: vec![format!("label={LABEL_MANIFEST}={identity}")],
            ..Default::default()
        })?;
        let mut report = DownReport::default();
        // Stopped in parallel: each waits out its own grace period.
        let config = self.config().clone();
        let ids: Vec<String> = list.iter().map(|c| c.id.clone()).collect();
        let results: Vec<Result<(), EngineError>> = std::thread::scope(|s| {
            let handles: Vec<_> = ids
                .iter()
                .map(|id| {
                    let config = config.clone();
                    s.spawn(move || -> Result<(), EngineError> {
                        let mut e = Engine::open(config)?;
                        match e.stop_container(id, None, None) {
                            Ok(_) | Err(EngineError::NotRunning(_)) => {}
                            Err(EngineError::ContainerNotFound(_)) => return Ok(()),
                            Err(err) => return Err(err),
                        }
                        match e.remove_container(id, true, false) {
                            Ok(_) | Err(EngineError::ContainerNotFound(_)) => Ok(()),
                            Err(err) => Err(err),
                        }
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join().unwrap_or_else(|_| {
                        Err(EngineError::Internal("a stop thread panicked".into()))
                    })
                })
                .collect()
        });
        for r in results {
            r?;
        }
        for c in &list {
            let pod = c.labels.get(LABEL_POD).cloned().unwrap_or_default();
            report.pods.entry(pod).or_default().push(c.id.clone());
        }
        let dir = self.kube_dir(identity);
        if dir.exists() {
            std::fs::remove_dir_all(&dir)
                .map_err(|e| EngineError::io(dir.display().to_string(), e))?;
        }
        Ok(report)
    }
}

fn with_context(e: EngineError, pod: &str, c: &CreateOptions) -> EngineError {
    let container = c
        .run
        .labels
        .get(plan::LABEL_CONTAINER)
        .cloned()
        .unwrap_or_default();
    match e {
        EngineError::InvalidArgument(m) => {
            EngineError::InvalidArgument(format!("pod {pod}, container {container}: {m}"))
        }
        other => other,
    }
}

fn write_file(path: &Path, content: &[u8], mode: u32) -> Result<(), EngineError> {
    let io = |e| EngineError::io(path.display().to_string(), e);
    std::fs::write(path, content).map_err(io)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(io)
}

fn make_dir(d: &Path) -> Result<(), EngineError> {
    std::fs::create_dir_all(d).map_err(|e| EngineError::io(d.display().to_string(), e))?;
    // Directories containers see are 0755 whatever the umask (as volumes' _data).
    let _ = std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755));
    Ok(())
}

fn check_host_path(what: &str, path: &Path, check: &HostPathCheck) -> Result<(), EngineError> {
    let meta = std::fs::metadata(path);
    let bad = |want: &str| {
        Err(EngineError::InvalidArgument(format!(
            "{what}: {} is not {want} on this host",
            path.display()
        )))
    };
    match check {
        HostPathCheck::Any => Ok(()),
        HostPathCheck::DirectoryOrCreate => match meta {
            Ok(m) if m.is_dir() => Ok(()),
            Ok(_) => bad("a directory"),
            Err(_) => make_dir(path),
        },
        HostPathCheck::FileOrCreate => match meta {
            Ok(m) if m.is_file() => Ok(()),
            Ok(_) => bad("a file"),
            Err(_) => {
                if let Some(parent) = path.parent() {
                    make_dir(parent)?;
                }
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .map(|_| ())
                    .map_err(|e| EngineError::io(path.display().to_string(), e))
            }
        },
        HostPathCheck::Directory => match meta {
            Ok(m) if m.is_dir() => Ok(()),
            _ => bad("a directory"),
        },
        HostPathCheck::File => match meta {
            Ok(m) if m.is_file() => Ok(()),
            _ => bad("a file"),
        },
        HostPathCheck::Socket => match meta {
            Ok(m) if m.file_type().is_socket() => Ok(()),
            _ => bad("a socket"),
        },
        HostPathCheck::CharDevice => match meta {
            Ok(m) if m.file_type().is_char_device() => Ok(()),
            _ => bad("a character device"),
        },
        HostPathCheck::BlockDevice => match meta {
            Ok(m) if m.file_type().is_block_device() => Ok(()),
            _ => bad("a block device"),
        },
    }
}

/// MemTotal of /proc/meminfo in bytes (1 GiB when it cannot be read).
fn host_memory() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map(|kb| kb * 1024)
        .unwrap_or(1 << 30)
}
