//! Pods: groups of containers that share a network namespace (and, by default, the IPC and
//! UTS namespaces), as Kubernetes pods and podman's pods do.
//!
//! # API (what the front ends and `kube play` call)
//! - [`Engine::pod_create`]`(&PodSpec) -> id`: records the pod and creates its infra
//!   container (not started). Published ports (`PodSpec::publish`), the network, hostname,
//!   `--add-host` and DNS are the pod's: they are given to the infra container.
//! - a member: [`crate::containers::CreateOptions::pod`]` = Some(name or id)` on an ordinary
//!   `create_container`/`run_container`. It joins the infra's shared namespaces at every start
//!   (so a member restarted after the pod restarted joins the new ones); starting a member
//!   starts the infra first. A member may not publish ports or pick a network while the pod
//!   shares its network, nor set a hostname while it shares UTS (podman's errors).
//! - [`Engine::pod_start`], [`Engine::pod_stop`]`(name, timeout)`, [`Engine::pod_restart`],
//!   [`Engine::pod_rm`]`(name, force)`, [`Engine::pod_prune`]: each returns the pod's ID (or
//!   the removed pods' IDs); the infra starts first and stops last.
//! - [`Engine::pod_inspect`]`(name) -> Value` (podman's `pod inspect` shape),
//!   [`Engine::pod_list`]`(filters) -> Vec<PodSummary>` (`name=`, `id=`, `label=`, `status=`),
//!   [`Engine::resolve_pod`]`(name) -> PodRow` (full ID, name, or unique ID prefix).
//! - Errors: [`EngineError::PodNotFound`] (NotFound, "no pod with name or ID X found: no such
//!   pod"), a taken name is a Conflict, bad options InvalidArgument.
//!
//! # How a pod holds its namespaces
//! The infra container is an ordinary container record (`<pod id 12>-infra`, listed by `ps -a`)
//! with no image: its root is an empty directory (`$ROOT/pods/rootfs`) and its process is the
//! host's static `catatonit -P` (Debian's `catatonit`, podman's pause), bind-mounted read-only.
//! Members are `--network container:<infra>` (with `--ipc container:<infra>`, the infra being
//! `shareable`, and the UTS namespace joined the same way), so the existing join-at-start
//! machinery does the work and ports are published on the infra's network endpoint.
//!
//! # State and the crash rule
//! A pod is one row of the `pods` table (name UNIQUE, checked in the insert's transaction); its
//! members are the container rows whose record names the pod. `pod create` inserts the row
//! first, then creates the infra and records its ID (a kill in between leaves a pod without
//! infra, which `pod start` re-creates and `pod rm` removes). `pod rm` removes members, then
//! the infra, then the row, so a kill at any point leaves a pod that a second `pod rm`
//! finishes. Member creates hold `$ROOT/pods/<id>.lock` shared until their row exists, `pod rm`
//! holds it exclusively, so no member is created into a pod being removed.

mod list;

pub use list::{PodContainer, PodSummary};

use crate::containers::CreateOptions;
use crate::{Engine, EngineError};
use berth_store::PodRow;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// The namespaces a pod shares by default (podman's default).
pub const DEFAULT_SHARE: &[&str] = &["ipc", "net", "uts"];

/// Where the pause binary is looked for: podman's location, then Debian's `catatonit`.
const PAUSE_CANDIDATES: &[&str] = &[
    "/usr/libexec/podman/catatonit",
    "/usr/bin/catatonit",
    "/usr/libexec/catatonit/catatonit",
];

/// What `pod create` asks for.
#[derive(Debug, Clone)]
pub struct PodSpec {
    pub name: Option<String>,
    pub labels: BTreeMap<String, String>,
    /// `-p` values, as `run -p` takes them; they belong to the infra container.
    pub publish: Vec<String>,
    /// `--share`: namespaces the members share (`ipc`, `net`, `uts`, `pid`, or `none`); a
    /// value starting with `+` adds to the default. `None`: [`DEFAULT_SHARE`].
    pub share: Option<String>,
    /// `--hostname` (default: the pod's name) when UTS is shared.
    pub hostname: Option<String>,
    pub add_hosts: Vec<String>,
    pub dns: Vec<String>,
    pub dns_search: Vec<String>,
    pub dns_options: Vec<String>,
    /// `--network` of the infra (default: the default bridge).
    pub network: Option<String>,
    /// `--infra` (default true). Without it nothing is shared and no ports can be published.
    pub infra: bool,
    /// `--shm-size`: the size of the pod's `/dev/shm` (the infra's, which members share
    /// with the IPC namespace; default 64 MiB).
    pub shm_size: Option<u64>,
}

impl Default for PodSpec {
    fn default() -> Self {
        PodSpec {
            name: None,
            labels: BTreeMap::new(),
            publish: Vec::new(),
            share: None,
            hostname: None,
            add_hosts: Vec::new(),
            dns: Vec::new(),
            dns_search: Vec::new(),
            dns_options: Vec::new(),
            network: None,
            infra: true,
            shm_size: None,
        }
    }
}

/// The pod row's record (JSON).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct PodRecord {
    pub created: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Shared namespaces, sorted.
    #[serde(default)]
    pub share: Vec<String>,
    /// Whether the pod has an infra container (it may be missing after a killed create).
    #[serde(default)]
    pub infra: bool,
    #[serde(default)]
    pub infra_id: Option<String>,
    #[serde(default)]
    pub hostname: String,
    #[serde(default)]
    pub publish: Vec<String>,
    #[serde(default)]
    pub network: Option<String>,
    #[serde(default)]
    pub add_hosts: Vec<String>,
    #[serde(default)]
    pub dns: Vec<String>,
    #[serde(default)]
    pub dns_search: Vec<String>,
    #[serde(default)]
    pub dns_options: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shm_size: Option<u64>,
}

impl PodRecord {
    pub(crate) fn shares(&self, ns: &str) -> bool {
        self.share.iter().any(|s| s == ns)
    }
}

/// A pod's container: its row and record.
pub(crate) type Member = (
    berth_store::ContainerRow,
    crate::containers::ContainerRecord,
);

/// What `create` needs to make a pod's infra container.
pub(crate) struct InfraSource {
    pub pod: String,
    /// The empty directory that is the infra's only layer.
    pub rootfs: PathBuf,
}

/// What `create` needs to make a container a pod member.
pub(crate) struct PodJoin {
    pub pod: String,
    /// The infra container whose UTS namespace the member joins.
    pub uts: Option<String>,
}

fn invalid(msg: impl Into<String>) -> EngineError {
    EngineError::InvalidArgument(msg.into())
}

/// Parses `--share` into a sorted list.
pub fn parse_share(share: Option<&str>) -> Result<Vec<String>, EngineError> {
    let mut out: Vec<String> = Vec::new();
    let s = match share {
        None => {
            return Ok(DEFAULT_SHARE.iter().map(|s| s.to_string()).collect());
        }
        Some(s) => s,
    };
    let (mut out_base, rest) = match s.strip_prefix('+') {
        Some(rest) => (DEFAULT_SHARE.iter().map(|s| s.to_string()).collect(), rest),
        None => (Vec::new(), s),
    };
    out.append(&mut out_base);
    for ns in rest.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        match ns {
            "none" => out.clear(),
            "ipc" | "net" | "uts" | "pid" => {
                if !out.iter().any(|o| o == ns) {
                    out.push(ns.to_string());
                }
            }
            "cgroup" | "user" => {
                return Err(invalid(format!(
                    "--share {ns}: sharing the {ns} namespace is not supported by berth (use ipc, net, uts, pid or none)"
                )))
            }
            other => {
                return Err(invalid(format!(
                    "Invalid kernel namespace to share: {other}. Options are: cgroup, ipc, net, pid, uts or none"
                )))
            }
        }
    }
    out.sort();
    Ok(out)
}

/// The host's pause program (`catatonit`).
fn find_pause() -> Result<PathBuf, EngineError> {
    PAUSE_CANDIDATES
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .and_then(|p| std::fs::canonicalize(p).ok())
        .ok_or_else(|| {
            EngineError::FailedPrecondition(format!(
                "pods need a pause program for their infra container and none is installed (looked for {}): apt-get install catatonit, or create the pod with --infra=false",
                PAUSE_CANDIDATES.join(", ")
            ))
        })
}

impl Engine {
    fn pods_dir(&self) -> PathBuf {
        self.root().join("pods")
    }

    /// The empty directory every infra container has as its only layer (mode 0755, like an
    /// image's root).
    fn infra_rootfs(&self) -> Result<PathBuf, EngineError> {
        let dir = self.pods_dir();
        berth_runtime::util::create_dir_mode(&dir, 0o700)
            .map_err(|e| EngineError::io(format!("creating {}", dir.display()), e))?;
        let rootfs = dir.join("rootfs");
        berth_runtime::util::create_dir_mode(&rootfs, 0o755)
            .map_err(|e| EngineError::io(format!("creating {}", rootfs.display()), e))?;
        Ok(rootfs)
    }

    /// A pod lock (`$ROOT/pods/<id>.lock`): shared by member creates, exclusive by `pod rm`.
    fn pod_lock(&self, id: &str, exclusive: bool) -> Result<std::fs::File, EngineError> {
        let dir = self.pods_dir();
        berth_runtime::util::create_dir_mode(&dir, 0o700)
            .map_err(|e| EngineError::io(format!("creating {}", dir.display()), e))?;
        let path = dir.join(format!("{id}.lock"));
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| EngineError::io(format!("opening {}", path.display()), e))?;
        let op = if exclusive {
            rustix::fs::FlockOperation::LockExclusive
        } else {
            rustix::fs::FlockOperation::LockShared
        };
        rustix::fs::flock(&f, op)
            .map_err(|e| EngineError::io(format!("locking {}", path.display()), e.into()))?;
        Ok(f)
    }

    /// A pod by full ID, name, or unique ID prefix.
    pub fn resolve_pod(&self, name: &str) -> Result<PodRow, EngineError> {
        let not_found = || EngineError::PodNotFound(name.to_string());
        if name.is_empty() {
            return Err(not_found());
        }
        if let Some(row) = self.store().pod(name)? {
            return Ok(row);
        }
        if let Some(row) = self.store().pod_by_name(name)? {
            return Ok(row);
        }
        if name.bytes().all(|b| b.is_ascii_hexdigit()) {
            let ids = self
                .store()
                .pod_ids_with_prefix(&name.to_ascii_lowercase())?;
            match ids.as_slice() {
                [id] => return self.store().pod(id)?.ok_or_else(not_found),
                [] => {}
                _ => {
                    return Err(invalid(format!(
                        "more than one result for pod ID {name}: use a longer ID or the name"
                    )))
                }
            }
        }
        Err(not_found())
    }

    pub(crate) fn pod_record(row: &PodRow) -> Result<PodRecord, EngineError> {
        serde_json::from_str(&row.record).map_err(|e| {
            EngineError::Store(berth_store::StoreError::Corrupt(format!(
                "pod {}: {e}",
                row.id
            )))
        })
    }

    fn save_pod_record(&mut self, id: &str, rec: &PodRecord) -> Result<(), EngineError> {
        let s = serde_json::to_string(rec)
            .map_err(|e| EngineError::Internal(format!("serialising pod record: {e}")))?;
        self.store_mut().update_pod_record(id, &s)?;
        Ok(())
    }

    /// `pod create`: records the pod and creates its infra container (not started).
    pub fn pod_create(&mut self, spec: &PodSpec) -> Result<String, EngineError> {
        let share = if spec.infra {
            parse_share(spec.share.as_deref())?
        } else {
            if spec.share.is_some() {
                return Err(invalid(
                    "You cannot share kernel namespaces on the pod level without an infra container",
                ));
            }
            if !spec.publish.is_empty() {
                return Err(invalid(
                    "you must have an infra container to publish port bindings to the host",
                ));
            }
            if spec.network.is_some()
                || !spec.add_hosts.is_empty()
                || !spec.dns.is_empty()
                || !spec.dns_search.is_empty()
                || !spec.dns_options.is_empty()
            {
                return Err(invalid(
                    "cannot set the pod's network options without an infra container",
                ));
            }
            Vec::new()
        };
        if spec.shm_size.is_some() && !share.iter().any(|s| s == "ipc") {
            return Err(invalid(
                "cannot set the pod's --shm-size without sharing the IPC namespace (--share ipc)",
            ));
        }
        if spec.hostname.is_some() && !share.iter().any(|s| s == "uts") {
            return Err(invalid(
                "cannot set a hostname without sharing the UTS namespace (--share uts)",
            ));
        }
        let has_net = share.iter().any(|s| s == "net");
        if !has_net && spec.infra && !spec.publish.is_empty() {
            return Err(invalid(
                "cannot publish ports of a pod that does not share its network namespace (--share net)",
            ));
        }
        let pause = if spec.infra {
            Some(find_pause()?)
        } else {
            None
        };
        let id = crate::containers::new_pod_id();
        let name = match &spec.name {
            Some(n) => {
                // podman's rule: `[a-zA-Z0-9][a-zA-Z0-9_.-]*`.
                let ok = n.as_bytes().first().is_some_and(u8::is_ascii_alphanumeric)
                    && n.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'-');
                if !ok {
                    return Err(invalid(format!(
                        "Invalid pod name ({n}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
                    )));
                }
                n.clone()
            }
            None => crate::containers::names::random_name(0),
        };
        let created = crate::images::now_rfc3339();
        let rec = PodRecord {
            created: created.clone(),
            labels: spec.labels.clone(),
            share,
            infra: spec.infra,
            infra_id: None,
            hostname: spec.hostname.clone().unwrap_or_else(|| name.clone()),
            publish: spec.publish.clone(),
            network: spec.network.clone(),
            add_hosts: spec.add_hosts.clone(),
            dns: spec.dns.clone(),
            dns_search: spec.dns_search.clone(),
            dns_options: spec.dns_options.clone(),
            shm_size: spec.shm_size,
        };
        let created_nanos = chrono::DateTime::parse_from_rfc3339(&created)
            .ok()
            .and_then(|t| t.timestamp_nanos_opt())
            .unwrap_or(0);
        let row = PodRow {
            id: id.clone(),
            name: name.clone(),
            created: created_nanos,
            record: serde_json::to_string(&rec)
                .map_err(|e| EngineError::Internal(format!("serialising pod record: {e}")))?,
        };
        if let Err(holder) = self.store_mut().insert_pod(&row)? {
            return Err(EngineError::Conflict(format!(
                "adding pod to state: name \"{name}\" is in use: pod {holder} already exists"
            )));
        }
        if let Some(pause) = pause {
            if let Err(e) = self.create_infra(&id, &rec, &pause) {
                let _ = self.store_mut().delete_pod(&id);
                return Err(e);
            }
        }
        self.record_event("pod", "create", &id, &[("name", name.as_str())]);
        Ok(id)
    }

    /// Creates the pod's infra container and records its ID in the pod's row.
    fn create_infra(
        &mut self,
        pod: &str,
        rec: &PodRecord,
        pause: &std::path::Path,
    ) -> Result<String, EngineError> {
        let mut o = CreateOptions {
            image: String::new(),
            name: Some(format!("{}-infra", &pod[..12])),
            detach: true,
            network: if rec.shares("net") {
                rec.network.clone()
            } else {
                Some("none".into())
            },
            ..Default::default()
        };
        o.run.entrypoint = Some(vec!["/catatonit".into(), "-P".into()]);
        o.binds
            .push(format!("{}:/catatonit:ro", pause.to_string_lossy()));
        o.net.publish = rec.publish.clone();
        o.net.add_hosts = rec.add_hosts.clone();
        o.net.dns = rec.dns.clone();
        o.net.dns_search = rec.dns_search.clone();
        o.net.dns_options = rec.dns_options.clone();
        if rec.shares("uts") {
            o.run.hostname = Some(rec.hostname.clone());
        }
        if rec.shares("ipc") {
            o.host.ipc = Some("shareable".into());
            o.run.shm_size = rec.shm_size;
        }
        o.run.labels = BTreeMap::new();
        let source = InfraSource {
            pod: pod.to_string(),
            rootfs: self.infra_rootfs()?,
        };
        let infra = self.create_from(&o, false, &mut |_| {}, Some(&source), None)?;
        let row = self
            .store()
            .pod(pod)?
            .ok_or_else(|| EngineError::PodNotFound(pod.to_string()))?;
        let mut rec = Self::pod_record(&row)?;
        rec.infra_id = Some(infra.clone());
        self.save_pod_record(pod, &rec)?;
        Ok(infra)
    }

    /// The options of a container created into `pod`: the pod's namespaces joined, its
    /// ports refused. Returns the pod lock, held shared until the container's row exists.
    pub(crate) fn pod_member_options(
        &mut self,
        pod: &str,
        o: &CreateOptions,
    ) -> Result<(CreateOptions, PodJoin, std::fs::File), EngineError> {
        let row = self.resolve_pod(pod)?;
        let lock = self.pod_lock(&row.id, false)?;
        // Re-read under the lock: a `pod rm` may have finished meanwhile.
        let row = self
            .store()
            .pod(&row.id)?
            .ok_or_else(|| EngineError::PodNotFound(pod.to_string()))?;
        let rec = Self::pod_record(&row)?;
        let mut o = o.clone();
        o.pod = None;
        let mut join = PodJoin {
            pod: row.id.clone(),
            uts: None,
        };
        if !rec.infra {
            return Ok((o, join, lock));
        }
        let infra = match &rec.infra_id {
            Some(i) => i.clone(),
            None => {
                let pause = find_pause()?;
                self.create_infra(&row.id, &rec, &pause)?
            }
        };
        if rec.shares("net") {
            if !o.net.publish.is_empty() || o.net.publish_all || !o.host.expose.is_empty() {
                return Err(invalid("invalid config provided: published or exposed ports must be defined when the pod is created: network cannot be configured when it is shared with a pod"));
            }
            if o.network.is_some() {
                return Err(invalid("invalid config provided: networks must be defined when the pod is created: network cannot be configured when it is shared with a pod"));
            }
            if !o.net.add_hosts.is_empty()
                || !o.net.dns.is_empty()
                || !o.net.dns_search.is_empty()
                || !o.net.dns_options.is_empty()
            {
                return Err(invalid("invalid config provided: extra host entries and DNS must be set when the pod is created: network cannot be configured when it is shared with a pod"));
            }
            o.network = Some(format!("container:{infra}"));
        }
        if rec.shares("uts") {
            if o.run.hostname.is_some() {
                return Err(invalid("invalid config provided: cannot set hostname when joining the pod UTS namespace: invalid configuration"));
            }
            if o.host.uts.is_some() {
                return Err(invalid(
                    "invalid config provided: cannot set --uts when joining the pod UTS namespace",
                ));
            }
            join.uts = Some(infra.clone());
        }
        if rec.shares("ipc") {
            if o.host.ipc.is_some() {
                return Err(invalid(
                    "invalid config provided: cannot set --ipc when joining the pod IPC namespace",
                ));
            }
            o.host.ipc = Some(format!("container:{infra}"));
        }
        if rec.shares("pid") {
            if o.host.pid.is_some() {
                return Err(invalid(
                    "invalid config provided: cannot set --pid when joining the pod PID namespace",
                ));
            }
            o.host.pid = Some(format!("container:{infra}"));
        }
        Ok((o, join, lock))
    }

    /// Before a member starts: the pod's infra must run (started here if it does not).
    pub(crate) fn pod_ensure_infra_running(
        &mut self,
        pod: &str,
        member: &str,
    ) -> Result<(), EngineError> {
        let Some(row) = self.store().pod(pod)? else {
            return Ok(());
        };
        let rec = Self::pod_record(&row)?;
        match &rec.infra_id {
            Some(infra) if infra != member => {
                self.start_container(infra)?;
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// The pod's containers (the infra first), from the container rows.
    pub(crate) fn pod_members(&self, pod: &str) -> Result<Vec<Member>, EngineError> {
        Ok(self.all_pod_members()?.remove(pod).unwrap_or_default())
    }

    /// Every pod's containers (the infra first, then oldest first), in one pass over the
    /// container rows.
    pub(crate) fn all_pod_members(&self) -> Result<BTreeMap<String, Vec<Member>>, EngineError> {
        let mut out: BTreeMap<String, Vec<Member>> = BTreeMap::new();
        // Newest first from the store: reversed here.
        for row in self.store().containers()?.into_iter().rev() {
            let Ok(rec) = serde_json::from_str::<crate::containers::ContainerRecord>(&row.record)
            else {
                continue;
            };
            if let Some(pod) = rec.pod.clone() {
                out.entry(pod).or_default().push((row, rec));
            }
        }
        for members in out.values_mut() {
            members.sort_by_key(|(_, rec)| !rec.pod_infra);
        }
        Ok(out)
    }

    /// `stop` of an infra container whose pod has other running containers is refused: they
    /// live in its namespaces, and its network would be released under them.
    pub(crate) fn refuse_infra_stop(
        &self,
        id: &str,
        rec: &crate::containers::ContainerRecord,
    ) -> Result<(), EngineError> {
        let (true, Some(pod)) = (rec.pod_infra, rec.pod.as_deref()) else {
            return Ok(());
        };
        if self.store().pod(pod)?.is_none() {
            return Ok(());
        }
        for (c, _) in self.pod_members(pod)? {
            if c.id == id {
                continue;
            }
            let running = matches!(
                berth_runtime::state(&self.container_dir_of(&c.id)),
                Ok(berth_runtime::ContainerState::Running { .. })
            );
            if running {
                return Err(EngineError::Conflict(format!(
                    "container {id} is the infra container of pod {pod} and container {} of the pod runs in its namespaces: stop the pod (pod stop) instead",
                    c.id
                )));
            }
        }
        Ok(())
    }

    /// `pod start`: the infra, then every member. Fails (after trying them all) naming the
    /// containers that did not start.
    pub fn pod_start(&mut self, name: &str) -> Result<String, EngineError> {
        let row = self.resolve_pod(name)?;
        let rec = Self::pod_record(&row)?;
        if rec.infra && rec.infra_id.is_none() {
            let pause = find_pause()?;
            self.create_infra(&row.id, &rec, &pause)?;
        }
        let mut failed = Vec::new();
        for (c, _) in self.pod_members(&row.id)? {
            if let Err(e) = self.start_container(&c.id) {
                failed.push(format!("{}: {e}", c.name));
            }
        }
        if !failed.is_empty() {
            return Err(EngineError::Conflict(format!(
                "starting containers of pod {}: {}",
                row.id,
                failed.join("; ")
            )));
        }
        self.record_event("pod", "start", &row.id, &[("name", row.name.as_str())]);
        Ok(row.id)
    }

    /// `pod stop`: every member, then the infra.
    pub fn pod_stop(&mut self, name: &str, timeout: Option<i64>) -> Result<String, EngineError> {
        let row = self.resolve_pod(name)?;
        let mut failed = Vec::new();
        let mut members = self.pod_members(&row.id)?;
        members.reverse();
        for (c, _) in members {
            if let Err(e) = self.stop_container(&c.id, timeout, None) {
                failed.push(format!("{}: {e}", c.name));
            }
        }
        if !failed.is_empty() {
            return Err(EngineError::Conflict(format!(
                "stopping containers of pod {}: {}",
                row.id,
                failed.join("; ")
            )));
        }
        self.record_event("pod", "stop", &row.id, &[("name", row.name.as_str())]);
        Ok(row.id)
    }

    /// `pod restart`: stop, then start.
    pub fn pod_restart(&mut self, name: &str) -> Result<String, EngineError> {
        self.pod_stop(name, None)?;
        self.pod_start(name)
    }

    /// `pod rm [-f]`: refuses a pod with running containers unless forced; removes the
    /// members, then the infra, then the pod.
    pub fn pod_rm(&mut self, name: &str, force: bool) -> Result<String, EngineError> {
        let row = self.resolve_pod(name)?;
        let _lock = self.pod_lock(&row.id, true)?;
        let members = self.pod_members(&row.id)?;
        if !force {
            let mut running = Vec::new();
            for (c, _) in &members {
                let live = self.container_live(&c.id)?;
                if live.running || live.restarting {
                    running.push(c.id.clone());
                }
            }
            if !running.is_empty() {
                return Err(EngineError::Conflict(format!(
                    "pod {} has containers that are not ready to be removed: cannot remove container {} as it is running - running or paused containers cannot be removed without force: container state improper",
                    row.id, running[0]
                )));
            }
        }
        // The members in one batch, then the infra: a kill in between leaves the infra
        // and the pod row, which the next `pod rm` removes.
        let (infra, others): (Vec<Member>, Vec<Member>) =
            members.into_iter().partition(|(_, r)| r.pod_infra);
        for batch in [others, infra] {
            let ids: Vec<String> = batch.into_iter().map(|(c, _)| c.id).collect();
            if ids.is_empty() {
                continue;
            }
            for r in self.remove_containers_with(&ids, true, true, true)? {
                match r {
                    Ok(_) | Err(EngineError::ContainerNotFound(_)) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        self.store_mut().delete_pod(&row.id)?;
        let _ = std::fs::remove_file(self.pods_dir().join(format!("{}.lock", row.id)));
        self.record_event("pod", "remove", &row.id, &[("name", row.name.as_str())]);
        Ok(row.id)
    }

    /// `pod prune`: removes every pod none of whose containers runs.
    pub fn pod_prune(&mut self) -> Result<Vec<String>, EngineError> {
        let mut removed = Vec::new();
        for p in self.pod_list(&[])? {
            if p.containers
                .iter()
                .all(|c| c.status != "running" && c.status != "paused" && c.status != "restarting")
            {
                match self.pod_rm(&p.id, false) {
                    Ok(id) => removed.push(id),
                    Err(EngineError::PodNotFound(_)) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(removed)
    }
}
