//! Carrying out a plan (`kube play`) and undoing it (`kube down`).
//!
//! Order: parse and plan every file (bad input stops here), check host paths and names (pods'
//! and containers'), make sure every image is in the store, then play the pods in parallel,
//! one thread and one engine handle each: the berth pod (its infra container holds the
//! network, IPC and UTS namespaces, the ports, hostname and DNS), its containers, its init
//! containers one after the other to completion inside it, then its containers started. If
//! any pod fails, every pod this call made is removed.

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
    /// The berth pod's ID.
    pub id: String,
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
    /// Pod ID (for containers found outside any pod: the manifest's pod name) → IDs of its
    /// containers.
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
                if let Ok(row) = self.resolve_pod(&pod.name) {
                    if row.name == pod.name {
                        return Err(EngineError::Conflict(format!(
                            "the pod name \"{}\" is already in use by pod \"{}\": kube play --replace (or kube down FILE) removes what an earlier play made",
                            pod.name, row.id
                        )));
                    }
                }
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

        // Each pod in its own thread with its own engine handle (SQLite in WAL mode): the
        // pod and its infra, its containers, its init containers run to completion, then its
        // containers started. Any failure removes every pod this call made.
        let config = self.config().clone();
        let pods: Vec<&plan::PodPlan> = plans.iter().flat_map(|(_, p)| &p.pods).collect();
        let results: Vec<(Option<String>, Result<PodReport, EngineError>)> =
            std::thread::scope(|s| {
                let handles: Vec<_> = pods
                    .iter()
                    .map(|pod| {
                        let config = config.clone();
                        s.spawn(move || play_pod(config, pod))
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|h| {
                        h.join().unwrap_or_else(|_| {
                            (
                                None,
                                Err(EngineError::Internal(
                                    "a pod's start thread panicked".into(),
                                )),
                            )
                        })
                    })
                    .collect()
            });
        let mut errors: Vec<EngineError> = Vec::new();
        let mut made: Vec<String> = Vec::new();
        for (id, r) in results {
            made.extend(id);
            match r {
                Ok(r) => report.pods.push(r),
                Err(e) => errors.push(e),
            }
        }
        if !errors.is_empty() {
            self.remove_pods(&made);
            if errors.len() == 1 {
                return Err(errors.remove(0));
            }
            let text: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
            return Err(EngineError::FailedPrecondition(text.join("; ")));
        }
        Ok(report)
    }

    /// Removes pods (forced: their containers are killed), in parallel, ignoring errors:
    /// what a failed `kube play` made.
    fn remove_pods(&self, ids: &[String]) {
        let config = self.config().clone();
        std::thread::scope(|s| {
            for id in ids {
                let config = config.clone();
                s.spawn(move || {
                    if let Ok(mut e) = Engine::open(config) {
                        let _ = e.pod_rm(id, true);
                    }
                });
            }
        });
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
        let mut report = DownReport::default();
        let pods = self.pod_list(&[format!("label={LABEL_MANIFEST}={identity}")])?;
        // Each pod stopped (its containers' own grace periods) and removed in parallel.
        let config = self.config().clone();
        let results: Vec<Result<(), EngineError>> = std::thread::scope(|s| {
            let handles: Vec<_> = pods
                .iter()
                .map(|p| {
                    let config = config.clone();
                    s.spawn(move || -> Result<(), EngineError> {
                        let mut e = Engine::open(config)?;
                        match e.pod_stop(&p.id, None) {
                            Ok(_) | Err(EngineError::PodNotFound(_)) => {}
                            // A member that will not stop is killed by the forced removal.
                            Err(_) => {}
                        }
                        match e.pod_rm(&p.id, true) {
                            Ok(_) | Err(EngineError::PodNotFound(_)) => Ok(()),
                            Err(err) => Err(err),
                        }
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join().unwrap_or_else(|_| {
                        Err(EngineError::Internal("a pod's stop thread panicked".into()))
                    })
                })
                .collect()
        });
        for r in results {
            r?;
        }
        for p in &pods {
            report.pods.insert(
                p.id.clone(),
                p.containers
                    .iter()
                    .filter(|c| Some(&c.id) != Some(&p.infra_id))
                    .map(|c| c.id.clone())
                    .collect(),
            );
        }
        // Containers with the label outside any pod (kept from a removal that was killed).
        let list = self.list_containers(&ListOptions {
            all: true,
            filters: vec![format!("label={LABEL_MANIFEST}={identity}")],
            ..Default::default()
        })?;
        for c in &list {
            match self.remove_container(&c.id, true, false) {
                Ok(_) | Err(EngineError::ContainerNotFound(_)) => {}
                Err(e) => return Err(e),
            }
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

/// One pod of `kube play`, in its own engine handle: returns the berth pod's ID once it
/// exists (so a failure can remove it) and what was made.
fn play_pod(
    config: crate::EngineConfig,
    pod: &plan::PodPlan,
) -> (Option<String>, Result<PodReport, EngineError>) {
    let mut e = match Engine::open(config) {
        Ok(e) => e,
        Err(err) => return (None, Err(err)),
    };
    let id = match e.pod_create(&pod.pod) {
        Ok(id) => id,
        Err(err) => return (None, Err(err)),
    };
    let r = fill_pod(&mut e, &id, pod);
    (Some(id), r)
}

fn fill_pod(e: &mut Engine, id: &str, pod: &plan::PodPlan) -> Result<PodReport, EngineError> {
    let mut r = PodReport {
        id: id.to_string(),
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
        let mut c = c.clone();
        c.pod = Some(id.to_string());
        let cid = e
            .create_container(&c)
            .map_err(|err| with_context(err, &pod.name, Some(&c)))?;
        if is_init {
            r.init.push(cid);
        } else {
            r.containers.push(cid);
        }
    }
    for (cid, c) in r.init.iter().zip(&pod.init) {
        e.start_container(cid)
            .map_err(|err| with_context(err, &pod.name, Some(c)))?;
        e.release_start_lock(cid);
        let code = e.wait_container(cid)?;
        if code != 0 {
            return Err(EngineError::FailedPrecondition(format!(
                "pod {}: init container {} exited with code {code}{}; the pod was removed",
                pod.name,
                c.run
                    .labels
                    .get(plan::LABEL_CONTAINER)
                    .map(String::as_str)
                    .unwrap_or(""),
                last_output(e, cid),
            )));
        }
    }
    for (cid, c) in r.containers.iter().zip(&pod.containers) {
        e.start_container(cid)
            .map_err(|err| with_context(err, &pod.name, Some(c)))?;
        e.release_start_lock(cid);
    }
    Ok(r)
}

/// The last lines an exited init container wrote (`: "…"`), for the error: the pod and its
/// logs are removed with it.
fn last_output(e: &mut Engine, id: &str) -> String {
    let o = crate::containers::LogOptions {
        tail: Some(3),
        ..Default::default()
    };
    let mut text = Vec::new();
    let _ = e.container_logs(id, &o, &|| true, &mut |l| {
        text.extend_from_slice(&l.data);
        Ok(())
    });
    let text = String::from_utf8_lossy(&text);
    let text = text.trim();
    if text.is_empty() {
        String::new()
    } else {
        format!(" (its last output: {:?})", text.replace('\n', " | "))
    }
}

/// Names the pod (and the container) in an error of its create or start, keeping its class
/// (a runtime error keeps its own words and exit code).
fn with_context(e: EngineError, pod: &str, c: Option<&CreateOptions>) -> EngineError {
    let container = c
        .and_then(|c| c.run.labels.get(plan::LABEL_CONTAINER))
        .map(|n| format!(", container {n}"))
        .unwrap_or_default();
    let at = |m: String| format!("pod {pod}{container}: {m}");
    match e {
        EngineError::InvalidArgument(m) => EngineError::InvalidArgument(at(m)),
        EngineError::Conflict(m) => EngineError::Conflict(at(m)),
        EngineError::FailedPrecondition(m) => EngineError::FailedPrecondition(at(m)),
        EngineError::NotFound(m) => EngineError::NotFound(at(m)),
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
