//! Containers: create, start, stop, kill, remove, list, inspect, logs, exec, wait, rename,
//! pause, prune, top.
//!
//! # Where a container's state lives
//! - the `containers` row (`id`, `name` UNIQUE, `image_id`, `created`, `record`): the record is
//!   a small JSON [`ContainerRecord`] (what `ps` needs: image, command, labels and a cache of
//!   the last observed state), so listing 10,000 containers parses little;
//! - `$ROOT/containers/<id>/`: the runtime's container directory (OCI bundle `config.json`,
//!   overlay `upper/` `work/` `rootfs/`, `container.log`, pid files, `exit.json`) plus
//!   `container.json`, the full [`ContainerSpec`] (`inspect` reads it);
//! - the runtime's state under `$RUNROOT/runtime` (whatever the length of that path: sockets
//!   are reached through short `/proc/<pid>/fd/<dirfd>/<name>` paths or a chdir).
//!
//! The live state always comes from [`berth_runtime::state`]; the cached state in the record
//! is trusted only for containers not recorded as running (nothing but a berth command can
//! start them, and it updates the record first).
//!
//! # Crash rule
//! A row is inserted only once its directory is complete. `create` and `rm` hold a marker in
//! `$ROOT/containers/.pending/` (see [`pending`]); a marker whose process died tells the next
//! command to finish the job: a directory without a row is cleaned up and removed, a row marked
//! `removing` is removed. Both steps are idempotent.

pub mod commit;
pub mod cp;
pub mod health;
pub mod host_opts;
pub mod names;
pub mod network;
mod opts;
mod pending;
mod remove;
mod restart;
pub mod stats;
pub mod system;
pub mod top;
pub mod update;
mod validate;
mod wait;

/// The run and exec options the runtime takes, as the engine's types.
pub use berth_runtime::{
    DevShm, DeviceEdits, DeviceHook, DeviceMount, DeviceNode, DeviceRule, ExecOptions, LdConfig,
    LogConfig, MountSpec, NamespaceMode, NetworkMode, RunOptions, RuntimeKind, Ulimit,
};
pub use opts::{find_init_in, parse_mount, parse_restart, parse_tmpfs, RestartPolicy};
pub use update::UpdateOptions;
pub use wait::{WaitCondition, WaitTicket};

use crate::streams::{AttachStream, ContainerHandle};
use crate::{Engine, EngineError};
use berth_runtime::{ContainerState, ImageRuntimeConfig};
use berth_store::ContainerRow;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::io::{BufRead, Read};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long a SIGKILL `kill` waits for the exit to be recorded (Docker waits 10 s as well).
const KILL_WAIT: Duration = Duration::from_secs(10);

/// Fills `buf` with random bytes from the kernel.
pub(crate) fn fill_random(buf: &mut [u8]) {
    let mut filled = 0;
    while filled < buf.len() {
        match rustix::rand::getrandom(&mut buf[filled..], rustix::rand::GetRandomFlags::empty()) {
            Ok(n) => filled += n,
            Err(_) => {
                // Never expected; fall back to time-based bytes.
                let t = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap_or_default()
                    .as_nanos();
                for (i, b) in buf.iter_mut().enumerate().skip(filled) {
                    *b = (t >> ((i % 16) * 8)) as u8 ^ (i as u8);
                }
                return;
            }
        }
    }
}

pub(crate) fn fill_random_pub(buf: &mut [u8]) {
    fill_random(buf)
}

/// A new container ID: 64 hex digits whose 12-digit short form is not all digits (Docker's
/// rule, so a short ID never reads as a number).
fn new_id() -> String {
    loop {
        let mut b = [0u8; 32];
        fill_random(&mut b);
        let id = pending::hex(&b);
        if !id[..12].bytes().all(|c| c.is_ascii_digit()) {
            return id;
        }
    }
}

/// A new pod ID (the same form as a container's).
pub(crate) fn new_pod_id() -> String {
    new_id()
}

/// What `create` / `run` / `POST /containers/create` ask for.
#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    /// The image as the user named it.
    pub image: String,
    pub name: Option<String>,
    /// Runtime options (env already resolved, sizes parsed).
    pub run: RunOptions,
    /// `-v SRC:DST[:OPTS]` / `-v DST`.
    pub binds: Vec<String>,
    /// `--mount` values.
    pub mounts: Vec<String>,
    /// `--tmpfs DST[:OPTS]`.
    pub tmpfs: Vec<String>,
    /// `--runtime` (empty: the built-in one).
    pub runtime: Option<String>,
    /// `--rm`
    pub auto_remove: bool,
    /// `--restart`
    pub restart: Option<String>,
    /// `--network` (`none`, `host`, `default`/`bridge`, a network's name).
    pub network: Option<String>,
    /// `-p`, `-P`, `--network-alias`, `--ip`, `--add-host`, `--dns*`.
    pub net: network::NetRequest,
    /// `-d`: shapes Config.AttachStdout/Stderr.
    pub detach: bool,
    /// `--security-opt` values as given (recorded for inspect).
    pub security_opt: Vec<String>,
    /// `--health-*` / `--no-healthcheck` ([`health::HealthFlags::to_config`]).
    pub healthcheck: Option<health::HealthConfig>,
    /// `--ipc --pid --uts --device --sysctl --log-* --volumes-from --expose`, resource knobs.
    pub host: host_opts::HostOptions,
    /// `--pull`: whether create pulls the image (Docker's CLI default: when missing). The
    /// Engine API's `POST /containers/create` never pulls: it passes `Never`.
    pub pull: crate::registry::PullPolicy,
    /// `--init` (`HostConfig.Init`): run an init as pid 1, found as
    /// [`crate::EngineConfig::init_path`] says (or `run.init` when the caller chose one).
    pub init: bool,
    /// `--pod NAME|ID`: the container joins the pod's shared namespaces (see
    /// [`crate::pods`]); ports are the pod's, so `net.publish` must then be empty.
    pub pod: Option<String>,
}

/// What `create` and `run` report while they work; the CLI prints them, an API server may
/// ignore them.
pub enum CreateEvent<'a> {
    /// The image is not in the store and is about to be pulled; Docker's CLI prints
    /// "Unable to find image '<name>' locally". The name is the familiar reference.
    PullingMissing(&'a str),
    /// Progress of that pull (or of a `--pull always` one).
    Pull(crate::registry::Progress),
    /// The container exists (before it starts): Docker's CLI writes `--cidfile` now, so a
    /// container that fails to start still has one.
    Created(&'a str),
}

/// Everything about a container that does not change after `create`; `container.json` in
/// its directory.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContainerSpec {
    pub id: String,
    pub created: String,
    pub image: String,
    pub image_id: String,
    pub image_config: ImageRuntimeConfig,
    pub run: RunOptions,
    /// Layer directories, bottom first.
    pub layers: Vec<PathBuf>,
    pub runtime: RuntimeKind,
    pub runtime_name: String,
    pub path: String,
    pub args: Vec<String>,
    pub auto_remove: bool,
    pub restart: RestartPolicy,
    pub network_mode: String,
    pub binds: Vec<String>,
    pub tmpfs: Vec<String>,
    pub security_opt: Vec<String>,
    /// Named volumes mounted, with their targets.
    pub volumes: Vec<(String, String)>,
    /// Docker's `Config` object.
    pub config: Value,
    /// Namespaces, devices, logging… as asked for (absent in containers from before).
    #[serde(default)]
    pub host: host_opts::HostSpec,
    /// The pod (ID) the container belongs to, its infra container included.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<String>,
}

/// The last state berth observed.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct StateCache {
    /// `created`, `running`, `exited`, `removing`, `dead`.
    pub status: String,
    #[serde(default)]
    pub exit_code: i32,
    #[serde(default)]
    pub oom_killed: bool,
    #[serde(default)]
    pub error: String,
    #[serde(default)]
    pub started_at: String,
    #[serde(default)]
    pub finished_at: String,
    #[serde(default)]
    pub pid: i32,
}

/// The record JSON in the `containers` row: what listing needs, kept small.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContainerRecord {
    pub image: String,
    pub command: String,
    pub state: StateCache,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub restart_count: u32,
    #[serde(default)]
    pub auto_remove: bool,
    #[serde(default)]
    pub network_mode: String,
    /// Volume names and bind sources (ps `.Mounts`).
    #[serde(default)]
    pub mounts: Vec<String>,
    /// The restart policy's name (`no`, `always`, …), so listing thousands of exited
    /// containers looks for a pending restart only where one can be. Absent in records from
    /// before it was kept: look.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart_policy: Option<String>,
    /// The pod (ID) the container belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<String>,
    /// The pod's infra container, which holds the shared namespaces: removed only with the pod.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub pod_infra: bool,
}

/// A container's state now.
#[derive(Debug, Clone)]
pub struct LiveState {
    /// Docker's `State.Status`: created, running, paused, restarting, removing, exited, dead.
    pub status: String,
    /// Init runs (paused or not). False while `restarting`.
    pub running: bool,
    pub paused: bool,
    /// Exited, and its exit hook waits out the restart policy's backoff before starting it
    /// again (`status` is `restarting`; Docker reports `Running` too).
    pub restarting: bool,
    pub pid: i32,
    pub exit_code: i32,
    pub oom_killed: bool,
    pub error: String,
    pub started_at: String,
    pub finished_at: String,
    /// The health check's status (`starting`, `healthy`, `unhealthy`) once it ran; `None`
    /// without a health check.
    pub health: Option<String>,
}

/// One entry of `GET /containers/json`.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerSummary {
    pub id: String,
    pub names: Vec<String>,
    pub image: String,
    #[serde(rename = "ImageID")]
    pub image_id: String,
    pub command: String,
    /// Unix seconds.
    pub created: i64,
    pub state: String,
    pub status: String,
    pub ports: Vec<Value>,
    pub labels: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size_rw: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size_root_fs: Option<i64>,
    pub mounts: Vec<String>,
    pub network_mode: String,
    /// The pod (ID and name) the container belongs to: `ps --pod` (not in Docker's API).
    #[serde(skip)]
    pub pod: Option<(String, String)>,
}

/// `ps` options.
#[derive(Debug, Clone, Default)]
pub struct ListOptions {
    pub all: bool,
    /// `-n`
    pub limit: Option<usize>,
    /// `-l`
    pub latest: bool,
    /// `-s`
    pub size: bool,
    /// `--filter key=value`
    pub filters: Vec<String>,
}

/// One log line.
#[derive(Debug, Clone)]
pub struct LogEntry {
    /// 1 stdout, 2 stderr.
    pub stream: u8,
    /// RFC 3339 with nanoseconds.
    pub time: String,
    pub data: Vec<u8>,
}

/// `logs` options.
#[derive(Debug, Clone, Default)]
pub struct LogOptions {
    pub follow: bool,
    /// `--tail N` (None: all).
    pub tail: Option<usize>,
    /// Unix seconds (fractional).
    pub since: Option<f64>,
    pub until: Option<f64>,
}

/// `container prune`.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerPruneReport {
    pub containers_deleted: Vec<String>,
    pub space_reclaimed: u64,
}

fn not_found(name: &str) -> EngineError {
    EngineError::ContainerNotFound(name.to_string())
}

fn name_conflict(name: &str, id: &str) -> EngineError {
    EngineError::NameInUse {
        name: name.to_string(),
        id: id.to_string(),
    }
}

fn io_err(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> EngineError {
    let c = context.into();
    move |e| EngineError::io(c, e)
}

fn now_rfc3339() -> String {
    crate::images::now_rfc3339()
}

fn parse_rfc3339(s: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&chrono::Utc))
}

/// go-units `HumanDuration`, for `Status` strings.
pub fn human_duration(seconds: i64) -> String {
    if seconds < 1 {
        return "Less than a second".into();
    }
    if seconds == 1 {
        return "1 second".into();
    }
    if seconds < 60 {
        return format!("{seconds} seconds");
    }
    let minutes = seconds / 60;
    if minutes == 1 {
        return "About a minute".into();
    }
    if minutes < 60 {
        return format!("{minutes} minutes");
    }
    let hours = (seconds as f64 / 3600.0 + 0.5) as i64;
    if hours == 1 {
        return "About an hour".into();
    }
    if hours < 48 {
        return format!("{hours} hours");
    }
    if hours < 24 * 7 * 2 {
        return format!("{} days", hours / 24);
    }
    if hours < 24 * 30 * 2 {
        return format!("{} weeks", hours / 24 / 7);
    }
    if hours < 24 * 365 * 2 {
        return format!("{} months", hours / 24 / 30);
    }
    format!("{} years", seconds / 3600 / 24 / 365)
}

/// Docker's `Status` column for a state.
pub fn status_text(s: &LiveState) -> String {
    let now = chrono::Utc::now();
    let ago = |t: &str| {
        parse_rfc3339(t)
            .map(|t| (now - t).num_seconds())
            .unwrap_or(0)
    };
    match s.status.as_str() {
        "running" | "paused" => {
            let mut t = format!("Up {}", human_duration(ago(&s.started_at)));
            if s.paused {
                t.push_str(" (Paused)");
            } else if let Some(h) = &s.health {
                if h == berth_runtime::health::STARTING {
                    t.push_str(" (health: starting)");
                } else {
                    t.push_str(&format!(" ({h})"));
                }
            }
            t
        }
        // "(OOM)" after Docker's words: the memory cgroup killed it (Docker says nothing).
        "exited" => format!(
            "Exited ({}) {} ago{}",
            s.exit_code,
            human_duration(ago(&s.finished_at)),
            if s.oom_killed { " (OOM)" } else { "" }
        ),
        "restarting" => format!(
            "Restarting ({}) {} ago",
            s.exit_code,
            human_duration(ago(&s.finished_at))
        ),
        "removing" => "Removal In Progress".into(),
        "dead" => "Dead".into(),
        _ => "Created".into(),
    }
}

fn dir_size(p: &Path) -> u64 {
    let mut total = 0;
    let Ok(rd) = std::fs::read_dir(p) else {
        return 0;
    };
    for e in rd.flatten() {
        let Ok(m) = e.metadata() else { continue };
        if m.is_dir() {
            total += dir_size(&e.path());
        } else {
            total += m.len();
        }
    }
    total
}

/// Docker's rendering of a command for `ps`: path and args joined by spaces.
/// `ps`'s COMMAND as Docker's daemon makes it: an argument with a space in single quotes.
fn command_line(path: &str, args: &[String]) -> String {
    let mut s = path.to_string();
    for a in args {
        s.push(' ');
        if a.contains(' ') {
            s.push('\'');
            s.push_str(a);
            s.push('\'');
        } else {
            s.push_str(a);
        }
    }
    s
}

/// Docker's copy-up: the image's files at `target` become the new volume's first content.
/// `target` is resolved inside the container's root (an image's symlinks cannot point it at
/// the host), and `cp -a` copies symlinks as symlinks; nothing runs in the root yet.
fn copy_up(rootfs: &Path, target: &str, volume: &Path) -> Result<(), EngineError> {
    let src = berth_runtime::paths::host_path(rootfs, target)
        .map_err(io_err(format!("resolving the image's VOLUME {target}")))?;
    match std::fs::symlink_metadata(&src) {
        Ok(m) if m.is_dir() => {}
        _ => return Ok(()),
    }
    let out = std::process::Command::new("cp")
        .arg("-a")
        .arg("--")
        .arg(src.join("."))
        .arg(volume)
        .output()
        .map_err(io_err("running cp to fill an image volume"))?;
    if !out.status.success() {
        return Err(EngineError::io(
            format!("copying the image's files at {target} into its volume"),
            std::io::Error::other(String::from_utf8_lossy(&out.stderr).trim().to_string()),
        ));
    }
    Ok(())
}

/// The image `VOLUME` paths that need an anonymous volume: each absolute path (cleaned of
/// trailing slashes) that no mount in `mounts` already targets, once.
fn image_volume_targets(
    image_volumes: &[String],
    mounts: &[MountSpec],
) -> Result<Vec<String>, EngineError> {
    fn clean(p: &str) -> String {
        let t = p.trim_end_matches('/');
        if t.is_empty() {
            "/".to_string()
        } else {
            t.to_string()
        }
    }
    let taken: Vec<String> = mounts
        .iter()
        .map(|m| match m {
            MountSpec::Bind { target, .. }
            | MountSpec::Volume { target, .. }
            | MountSpec::Tmpfs { target, .. } => clean(target),
        })
        .collect();
    let mut out: Vec<String> = Vec::new();
    for v in image_volumes {
        if !v.starts_with('/') {
            return Err(EngineError::InvalidArgument(format!(
                "invalid volume specification: '{v}' (the image's VOLUME): invalid mount config for type \"volume\": invalid mount path: '{v}' mount path must be absolute"
            )));
        }
        let t = clean(v);
        if t == "/" {
            return Err(EngineError::InvalidArgument(
                "invalid volume specification: '/' (the image's VOLUME): invalid mount config for type \"volume\": invalid specification: destination can't be '/'"
                    .into(),
            ));
        }
        if !taken.contains(&t) && !out.contains(&t) {
            out.push(t);
        }
    }
    Ok(out)
}

fn image_runtime_config(config: &berth_oci::image::ImageConfig) -> ImageRuntimeConfig {
    let Some(c) = &config.config else {
        return ImageRuntimeConfig::default();
    };
    ImageRuntimeConfig {
        env: c.env.clone().unwrap_or_default(),
        entrypoint: c.entrypoint.clone(),
        cmd: c.cmd.clone(),
        working_dir: c.working_dir.clone().unwrap_or_default(),
        user: c.user.clone().unwrap_or_default(),
        stop_signal: c.stop_signal.clone(),
        exposed_ports: c
            .exposed_ports
            .as_ref()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default(),
        volumes: c
            .volumes
            .as_ref()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default(),
        labels: c.labels.clone().unwrap_or_default(),
    }
}

impl Engine {
    fn containers_dir(&self) -> PathBuf {
        self.root().join("containers")
    }

    fn pending_dir(&self) -> PathBuf {
        self.containers_dir().join(".pending")
    }

    /// The runtime directory of container `id`.
    pub fn container_dir_of(&self, id: &str) -> PathBuf {
        self.containers_dir().join(id)
    }

    /// Where the OCI runtime keeps its state: `$RUNROOT/runtime`, whatever its length. Unix
    /// sockets in it are bound and reached through a short path (libcontainer's notify socket
    /// by a chdir, ours and the console socket handed to external runtimes through
    /// `/proc/<pid>/fd/<dirfd>/<name>`), so nothing of a root lives outside it.
    pub fn runtime_state_root(&self) -> PathBuf {
        self.runroot().join("runtime")
    }

    /// The monitor binary: [`crate::EngineConfig::monitor`], `berth-monitor` next to the
    /// current executable, else the current executable itself reached through a
    /// `berth-monitor` symlink in the runroot (the binary dispatches on its name).
    pub fn monitor_path(&self) -> Result<PathBuf, EngineError> {
        if let Some(p) = &self.config().monitor {
            return Ok(p.clone());
        }
        let exe = std::env::current_exe().map_err(io_err("finding the berth executable"))?;
        if let Some(dir) = exe.parent() {
            let cand = dir.join("berth-monitor");
            if cand.is_file() {
                return Ok(cand);
            }
        }
        let link = self.runroot().join("berth-monitor");
        if std::fs::read_link(&link).ok().as_deref() == Some(exe.as_path()) {
            return Ok(link);
        }
        let mut r = [0u8; 6];
        fill_random(&mut r);
        let tmp = self
            .runroot()
            .join(format!(".berth-monitor-{}", pending::hex(&r)));
        std::os::unix::fs::symlink(&exe, &tmp).map_err(io_err("linking berth-monitor"))?;
        std::fs::rename(&tmp, &link).map_err(io_err("linking berth-monitor"))?;
        Ok(link)
    }

    /// Finishes or undoes container operations whose process died (see [`pending`]).
    pub fn recover_containers(&mut self) -> Result<(), EngineError> {
        for orphan in pending::orphans(&self.pending_dir()) {
            let id = orphan.id.clone();
            match self.store().container(&id)? {
                None => {
                    let dir = self.container_dir_of(&id);
                    if dir.exists() {
                        let _ = berth_runtime::cleanup(&dir);
                        if !berth_runtime::rootfs::is_mounted(&dir.join("rootfs")) {
                            let _ = std::fs::remove_dir_all(&dir);
                        }
                    }
                }
                Some(row) => {
                    let rec: Option<ContainerRecord> = serde_json::from_str(&row.record).ok();
                    if rec.map(|r| r.state.status == "removing").unwrap_or(false) {
                        self.finish_remove(&id, false)?;
                    }
                }
            }
            orphan.release();
        }
        Ok(())
    }

    /// Finds a container by full ID, name, or unambiguous ID prefix.
    pub fn resolve_container(&self, name: &str) -> Result<ContainerRow, EngineError> {
        if name.is_empty() {
            return Err(not_found(name));
        }
        if let Some(row) = self.store().container(name)? {
            return Ok(row);
        }
        let bare = name.strip_prefix('/').unwrap_or(name);
        if let Some(row) = self.store().container_by_name(bare)? {
            return Ok(row);
        }
        if name.bytes().all(|b| b.is_ascii_hexdigit()) {
            let ids = self
                .store()
                .container_ids_with_prefix(&name.to_ascii_lowercase())?;
            match ids.as_slice() {
                [id] => {
                    return self.store().container(id)?.ok_or_else(|| not_found(name));
                }
                [] => {}
                _ => {
                    return Err(EngineError::InvalidArgument(format!(
                        "multiple IDs found with provided prefix: {name}"
                    )))
                }
            }
        }
        Err(not_found(name))
    }

    fn record_of(row: &ContainerRow) -> Result<ContainerRecord, EngineError> {
        serde_json::from_str(&row.record).map_err(|e| {
            EngineError::Store(berth_store::StoreError::Corrupt(format!(
                "container {}: {e}",
                row.id
            )))
        })
    }

    pub(crate) fn spec_of(&self, id: &str) -> Result<ContainerSpec, EngineError> {
        let p = self.container_dir_of(id).join("container.json");
        let b = std::fs::read(&p).map_err(io_err(format!("reading {}", p.display())))?;
        serde_json::from_slice(&b).map_err(|e| {
            EngineError::Store(berth_store::StoreError::Corrupt(format!(
                "{}: {e}",
                p.display()
            )))
        })
    }

    fn save_record(&mut self, id: &str, rec: &ContainerRecord) -> Result<(), EngineError> {
        let s = serde_json::to_string(rec)
            .map_err(|e| EngineError::Internal(format!("serialising container record: {e}")))?;
        self.store_mut().update_container_record(id, &s)?;
        Ok(())
    }

    /// The state of a container now, from the runtime when it was last seen running. Updates
    /// `rec.state` and returns whether it changed (the caller may save it).
    pub fn live_state(&self, id: &str, rec: &mut ContainerRecord) -> (LiveState, bool) {
        let mut changed = false;
        let mut paused = false;
        let mut pid = 0;
        if rec.state.status == "running" {
            let dir = self.container_dir_of(id);
            match berth_runtime::state(&dir) {
                Ok(ContainerState::Running { pid: p, paused: z }) => {
                    pid = p;
                    paused = z;
                }
                Ok(ContainerState::Created) => {}
                Ok(ContainerState::Exited(st)) | Ok(ContainerState::MonitorDied(st)) => {
                    rec.state.status = "exited".into();
                    rec.state.exit_code = st.exit_code;
                    rec.state.oom_killed = st.oom_killed;
                    rec.state.finished_at = st.finished_at;
                    rec.state.error = st.error.unwrap_or_default();
                    rec.state.pid = 0;
                    changed = true;
                }
                Err(_) => {
                    rec.state.status = "dead".into();
                    changed = true;
                }
            }
        }
        // Not cached in the record: only while the exit hook that will restart it is alive.
        let may_restart = rec
            .restart_policy
            .as_deref()
            .is_none_or(|p| !p.is_empty() && p != "no");
        let restarting = rec.state.status == "exited"
            && may_restart
            && restart::restart_pending(&self.container_dir_of(id));
        let status = if rec.state.status == "running" && paused {
            "paused".to_string()
        } else if restarting {
            "restarting".to_string()
        } else {
            rec.state.status.clone()
        };
        let running = matches!(status.as_str(), "running" | "paused");
        (
            LiveState {
                status,
                running,
                paused,
                restarting,
                pid: if running { pid } else { 0 },
                exit_code: rec.state.exit_code,
                oom_killed: rec.state.oom_killed,
                error: rec.state.error.clone(),
                started_at: rec.state.started_at.clone(),
                finished_at: rec.state.finished_at.clone(),
                health: berth_runtime::health::read_state(&self.container_dir_of(id))
                    .map(|h| h.status),
            },
            changed,
        )
    }

    /// Resolves a container and refreshes its state (saving a change).
    fn load(
        &mut self,
        name: &str,
    ) -> Result<(ContainerRow, ContainerRecord, LiveState), EngineError> {
        let row = self.resolve_container(name)?;
        let mut rec = Self::record_of(&row)?;
        let (live, changed) = self.live_state(&row.id, &mut rec);
        if changed {
            self.save_record(&row.id, &rec)?;
        }
        Ok((row, rec, live))
    }

    /// `POST /containers/create` (with `pull: Never`) and `berth create`: checks the request
    /// with Docker's rules, pulls the image as `o.pull` says, writes the bundle, then the row.
    /// Returns the ID.
    pub fn create_container(&mut self, o: &CreateOptions) -> Result<String, EngineError> {
        self.create_inner(o, false, &mut |_| {})
    }

    /// [`Engine::create_container`], telling `events` about a pull on demand.
    pub fn create_container_with(
        &mut self,
        o: &CreateOptions,
        events: &mut dyn FnMut(CreateEvent),
    ) -> Result<String, EngineError> {
        let id = self.create_inner(o, false, events)?;
        events(CreateEvent::Created(&id));
        Ok(id)
    }

    /// Makes sure the store has the image a create names, as `policy` says (Docker's `--pull`).
    fn ensure_create_image(
        &mut self,
        image: &str,
        policy: crate::registry::PullPolicy,
        events: &mut dyn FnMut(CreateEvent),
    ) -> Result<(), EngineError> {
        use crate::registry::PullPolicy;
        let familiar = || {
            berth_oci::reference::Reference::parse_with_default_tag(image)
                .map(|r| r.familiar_string())
                .unwrap_or_else(|_| image.to_string())
        };
        let mut progress = |p| events(CreateEvent::Pull(p));
        match policy {
            PullPolicy::Always => {
                self.ensure_image(image, policy, &mut progress)?;
            }
            PullPolicy::Never => match self.resolve_image(image) {
                Err(e) if e.is_not_found() => return Err(EngineError::ImageNotFound(familiar())),
                r => {
                    r?;
                }
            },
            PullPolicy::Missing => match self.resolve_image(image) {
                Err(e) if e.is_not_found() => {
                    events(CreateEvent::PullingMissing(&familiar()));
                    let mut progress = |p| events(CreateEvent::Pull(p));
                    self.ensure_image(image, policy, &mut progress)?;
                }
                r => {
                    r?;
                }
            },
        }
        Ok(())
    }

    fn create_inner(
        &mut self,
        o: &CreateOptions,
        keep_mounted: bool,
        events: &mut dyn FnMut(CreateEvent),
    ) -> Result<String, EngineError> {
        match &o.pod {
            Some(pod) => {
                // Held shared until the row exists, so a `pod rm` never misses a member.
                let (o, join, _lock) = self.pod_member_options(pod, o)?;
                self.create_from(&o, keep_mounted, events, None, Some(&join))
            }
            None => self.create_from(o, keep_mounted, events, None, None),
        }
    }

    /// `create`; `infra` (the pod's infra container) replaces the image with the pod's empty
    /// root and the pause binary, `join` makes the container a member of a pod.
    pub(crate) fn create_from(
        &mut self,
        o: &CreateOptions,
        keep_mounted: bool,
        events: &mut dyn FnMut(CreateEvent),
        infra: Option<&crate::pods::InfraSource>,
        join: Option<&crate::pods::PodJoin>,
    ) -> Result<String, EngineError> {
        // Docker's checks first: a bad request pulls nothing and writes nothing.
        let mut run = validate::run_options(o)?;
        if infra.is_none() {
            self.ensure_create_image(&o.image, o.pull, events)?;
        }
        self.recover_containers()?;
        let name = match &o.name {
            Some(n) => {
                let n = names::validate(n)?;
                if let Some(row) = self.store().container_by_name(&n)? {
                    return Err(name_conflict(&n, &row.id));
                }
                Some(n)
            }
            None => None,
        };
        let restart = match &o.restart {
            Some(r) => parse_restart(r)?,
            None => RestartPolicy::default(),
        };
        let (image_id, image_config) = match infra {
            Some(_) => (String::new(), berth_oci::image::ImageConfig::default()),
            None => {
                let (row, config) = self.image_config(&o.image)?;
                (row.id, config)
            }
        };
        let img = image_runtime_config(&image_config);
        if let Some(h) = &o.healthcheck {
            health::validate(h)?;
        }
        let image_cc = image_config.config.as_ref();
        let healthcheck = health::merge(
            o.healthcheck.clone(),
            image_cc.and_then(|c| c.healthcheck.as_ref()),
        );
        let probe = healthcheck
            .as_ref()
            .and_then(|h| health::probe(h, image_cc.and_then(|c| c.shell.as_deref())));
        let layers: Vec<PathBuf> = match infra {
            Some(i) => vec![i.rootfs.clone()],
            None => self
                .store()
                .image_layers(&image_id)?
                .iter()
                .filter_map(|l| l.chain_id.parse::<berth_oci::Digest>().ok())
                .map(|d| self.store().layer_path(&d))
                .collect(),
        };
        if o.init && run.init.is_none() {
            run.init = Some(opts::find_init_in(self.config().init_path.as_deref())?);
        }
        if let Some(init) = &run.init {
            if !init.is_file() {
                return Err(EngineError::FailedPrecondition(format!(
                    "--init: {}: no such file: install tini (apt-get install tini) or set BERTH_INIT_PATH",
                    init.display()
                )));
            }
        }
        let network_mode = self.resolve_network_mode(o, &mut run)?;
        // Mounts: -v, --mount, --tmpfs.
        let mut volumes: Vec<(String, String)> = Vec::new();
        let mut mount_names: Vec<String> = Vec::new();
        for b in &o.binds {
            let m = self.parse_bind(b, &mut volumes)?;
            run.mounts.push(m);
        }
        for m in &o.mounts {
            let spec = parse_mount(m)?;
            let spec = match spec {
                opts::ParsedMount::Ready(s) => s,
                opts::ParsedMount::Volume {
                    name,
                    target,
                    readonly,
                } => {
                    let name = match name {
                        Some(n) => n,
                        None => new_id(),
                    };
                    let source = self.ensure_volume(&name)?;
                    volumes.push((name, target.clone()));
                    MountSpec::Volume {
                        source,
                        target,
                        readonly,
                    }
                }
            };
            run.mounts.push(spec);
        }
        for t in &o.tmpfs {
            run.mounts.push(parse_tmpfs(t)?);
        }
        let (mut host, shared_volumes) = self.apply_host_options(&o.host, &mut run)?;
        if let Some(uts) = join.and_then(|j| j.uts.as_ref()) {
            host.uts_mode = format!("container:{uts}");
            host.uts_container = Some(uts.clone());
        }
        if !host.device_requests.is_empty() {
            let mut env = img.env.clone();
            berth_runtime::spec::merge_env(&mut env, &run.env);
            crate::gpu::apply_requests(&self.config().gpu, &host.device_requests, &env, &mut run)?;
        }
        volumes.extend(shared_volumes);
        let mut exposed_ports = img.exposed_ports.clone();
        for p in &host.exposed {
            if !exposed_ports.contains(p) {
                exposed_ports.push(p.clone());
            }
        }
        // The image's `VOLUME`s: an anonymous volume at each path no mount of the user's
        // covers (Docker's rule), removed with the container by `rm -v` and `--rm`.
        let mut image_volumes: Vec<(PathBuf, String)> = Vec::new();
        for target in image_volume_targets(&img.volumes, &run.mounts)? {
            let name = new_id();
            let source = self.ensure_volume(&name)?;
            volumes.push((name, target.clone()));
            image_volumes.push((source.clone(), target.clone()));
            run.mounts.push(MountSpec::Volume {
                source,
                target,
                readonly: false,
            });
        }
        for m in &run.mounts {
            if let MountSpec::Bind { source, .. } = m {
                mount_names.push(source.display().to_string());
            }
        }
        for (n, _) in &volumes {
            mount_names.push(n.clone());
        }
        let runtime_name = o.runtime.clone().unwrap_or_default();
        let runtime = RuntimeKind::parse(&runtime_name);
        if let RuntimeKind::External(p) = &runtime {
            let found = p.is_absolute() && p.exists()
                || std::env::var_os("PATH")
                    .map(|path| std::env::split_paths(&path).any(|d| d.join(p).is_file()))
                    .unwrap_or(false);
            if !found {
                return Err(EngineError::InvalidArgument(format!(
                    "unknown or invalid runtime name: {runtime_name}"
                )));
            }
        }
        let args = berth_runtime::spec::process_args(&img, &run)
            .map_err(|_| EngineError::InvalidArgument("no command specified".into()))?;
        let id = new_id();
        // Taken before anything is written for this container (the network plan creates its
        // directory): a kill from here on leaves a marker the next command recovers from.
        let marker = pending::Marker::acquire(&self.pending_dir(), &id)
            .map_err(io_err("creating the container's pending marker"))?;
        if let Err(e) = self.plan_network(&id, &network_mode, o, &exposed_ports, &mut run) {
            let _ = std::fs::remove_dir_all(self.container_dir_of(&id));
            return Err(e);
        }
        let created = now_rfc3339();
        let mut env = img.env.clone();
        berth_runtime::spec::merge_env(&mut env, &run.env);
        let mut labels = img.labels.clone();
        labels.extend(run.labels.clone());
        let hostname = berth_runtime::spec::hostname(&id, &run);
        let interactive = run.stdin_open;
        let attached = o.host.attached(interactive, o.detach);
        let mut config = json!({
            "Hostname": hostname,
            "Domainname": run.domainname.clone().unwrap_or_default(),
            "User": run.user.clone().unwrap_or_else(|| img.user.clone()),
            "AttachStdin": attached.0,
            "AttachStdout": attached.1,
            "AttachStderr": attached.2,
            "ExposedPorts": if exposed_ports.is_empty() { Value::Null } else {
                Value::Object(exposed_ports.iter().map(|p| (p.clone(), json!({}))).collect())
            },
            "Tty": run.tty,
            "OpenStdin": interactive,
            "StdinOnce": interactive && !o.detach,
            "Env": env,
            "Cmd": if run.cmd.is_empty() && run.entrypoint.is_none() { json!(img.cmd) } else { json!(run.cmd) },
            "Image": o.image,
            "Volumes": if img.volumes.is_empty() { Value::Null } else {
                Value::Object(img.volumes.iter().map(|p| (p.clone(), json!({}))).collect())
            },
            "WorkingDir": run.workdir.clone().unwrap_or_else(|| img.working_dir.clone()),
            "Entrypoint": match &run.entrypoint { Some(e) if e.is_empty() => Value::Null, Some(e) => json!(e), None => json!(img.entrypoint) },
            "OnBuild": Value::Null,
            "Labels": labels,
            "StopSignal": run.stop_signal.clone().or_else(|| img.stop_signal.clone()),
            "StopTimeout": run.stop_timeout,
        });
        // As Docker's CLI does, a published port is also an exposed one.
        if let Some(plan) = self.plan_of(&id) {
            for p in &plan.ports {
                let key = format!("{}/{}", p.container_port, p.proto.as_str());
                if !config["ExposedPorts"].is_object() {
                    config["ExposedPorts"] = json!({});
                }
                config["ExposedPorts"][key] = json!({});
            }
        }
        if let Some(h) = &healthcheck {
            config["Healthcheck"] = json!(h);
        }
        let spec = ContainerSpec {
            id: id.clone(),
            created: created.clone(),
            image: o.image.clone(),
            image_id: image_id.clone(),
            image_config: img.clone(),
            run: run.clone(),
            layers: layers.clone(),
            runtime,
            runtime_name: if runtime_name.is_empty() {
                "berth".into()
            } else {
                runtime_name
            },
            path: args[0].clone(),
            args: args[1..].to_vec(),
            auto_remove: o.auto_remove,
            restart,
            network_mode: network_mode.clone(),
            binds: o.binds.clone(),
            tmpfs: o.tmpfs.clone(),
            security_opt: o.security_opt.clone(),
            volumes,
            config,
            host,
            pod: infra
                .map(|i| i.pod.clone())
                .or_else(|| join.map(|j| j.pod.clone())),
        };
        let dir = self.container_dir_of(&id);
        let prepared = (|| -> Result<(), EngineError> {
            berth_runtime::prepare_bundle(&id, &dir, &layers, &img, &run)
                .map_err(EngineError::Runtime)?;
            for (volume, target) in &image_volumes {
                copy_up(&dir.join("rootfs"), target, volume)?;
            }
            if !keep_mounted {
                berth_runtime::rootfs::unmount(&dir.join("rootfs"))
                    .map_err(EngineError::Runtime)?;
            }
            let b = serde_json::to_vec_pretty(&spec)
                .map_err(|e| EngineError::Internal(format!("serialising container spec: {e}")))?;
            berth_runtime::util::write_atomic_deferred(&dir.join("container.json"), &b)
                .map_err(io_err("writing container.json"))?;
            berth_runtime::health::write_probe(&dir, probe.as_ref())
                .map_err(io_err("writing healthcheck.json"))?;
            Ok(())
        })();
        let undo = |dir: &Path| {
            let _ = berth_runtime::cleanup(dir);
            if !berth_runtime::rootfs::is_mounted(&dir.join("rootfs")) {
                let _ = std::fs::remove_dir_all(dir);
            }
        };
        if let Err(e) = prepared {
            undo(&dir);
            drop(marker);
            return Err(e);
        }
        let rec = ContainerRecord {
            image: o.image.clone(),
            command: command_line(&spec.path, &spec.args),
            state: StateCache {
                status: "created".into(),
                ..Default::default()
            },
            labels: run.labels.clone().into_iter().chain(img.labels).collect(),
            restart_count: 0,
            auto_remove: o.auto_remove,
            network_mode,
            mounts: mount_names,
            restart_policy: Some(spec.restart.name.clone()),
            pod: spec.pod.clone(),
            pod_infra: infra.is_some(),
        };
        let record = serde_json::to_string(&rec)
            .map_err(|e| EngineError::Internal(format!("serialising record: {e}")))?;
        let created_nanos = parse_rfc3339(&created)
            .and_then(|t| t.timestamp_nanos_opt())
            .unwrap_or(0);
        let mut attempt = 0;
        loop {
            let n = match &name {
                Some(n) => n.clone(),
                None => names::random_name(attempt),
            };
            let row = ContainerRow {
                id: id.clone(),
                name: n.clone(),
                image_id: image_id.clone(),
                created: created_nanos,
                record: record.clone(),
            };
            match self.store_mut().insert_container(&row) {
                Ok(Ok(())) => {
                    self.write_container_event_attributes(&id, &n, &o.image, &rec.labels);
                    break;
                }
                Ok(Err(holder)) if name.is_none() && attempt < 10 => {
                    let _ = holder;
                    attempt += 1;
                }
                Ok(Err(holder)) => {
                    undo(&dir);
                    drop(marker);
                    return Err(name_conflict(&n, &holder));
                }
                Err(e) => {
                    undo(&dir);
                    drop(marker);
                    return Err(e.into());
                }
            }
        }
        drop(marker);
        self.record_container_event("create", &id, &[]);
        Ok(id)
    }

    fn parse_bind(
        &mut self,
        b: &str,
        volumes: &mut Vec<(String, String)>,
    ) -> Result<MountSpec, EngineError> {
        let parts: Vec<&str> = b.split(':').collect();
        let (src, dst, mode) = match parts.as_slice() {
            [d] => (None, *d, ""),
            [s, d] => (Some(*s), *d, ""),
            [s, d, m] => (Some(*s), *d, *m),
            _ => {
                return Err(EngineError::InvalidArgument(format!(
                    "invalid volume specification: '{b}'"
                )))
            }
        };
        if !dst.starts_with('/') {
            return Err(EngineError::InvalidArgument(format!(
                "invalid volume specification: '{b}': invalid mount config for type \"bind\": invalid mount path: '{dst}' mount path must be absolute"
            )));
        }
        let mut readonly = false;
        for m in mode.split(',').filter(|m| !m.is_empty()) {
            match m {
                "ro" => readonly = true,
                "rw" | "z" | "Z" | "rprivate" | "private" | "rshared" | "shared" | "rslave"
                | "slave" | "nocopy" => {}
                _ => return Err(EngineError::InvalidArgument(format!("invalid mode: {m}"))),
            }
        }
        match src {
            Some(s) if s.starts_with('/') => {
                if !Path::new(s).exists() {
                    // Docker creates a missing bind source directory for -v.
                    std::fs::create_dir_all(s).map_err(io_err(format!("creating {s}")))?;
                }
                Ok(MountSpec::Bind {
                    source: PathBuf::from(s),
                    target: dst.to_string(),
                    readonly,
                })
            }
            Some(s) => {
                crate::volumes::validate_name(s)?;
                let source = self.ensure_volume(s)?;
                volumes.push((s.to_string(), dst.to_string()));
                Ok(MountSpec::Volume {
                    source,
                    target: dst.to_string(),
                    readonly,
                })
            }
            None => {
                let name = new_id();
                let source = self.ensure_volume(&name)?;
                volumes.push((name, dst.to_string()));
                Ok(MountSpec::Volume {
                    source,
                    target: dst.to_string(),
                    readonly,
                })
            }
        }
    }

    /// The container's state now (running, paused, restarting, exited…).
    pub fn container_live(&mut self, name: &str) -> Result<LiveState, EngineError> {
        Ok(self.load(name)?.2)
    }

    /// `POST /containers/{id}/start`. Returns the container ID.
    pub fn start_container(&mut self, name: &str) -> Result<String, EngineError> {
        self.start_container_inner(name, None).map(|(id, _)| id)
    }

    /// `start -a`: attaches, then starts, as Docker does: the monitor serves the returned
    /// connection from before the container's process runs, so no output is lost however soon
    /// it exits (and none of an earlier run is replayed). A container already running is
    /// attached to through its socket.
    pub fn start_container_attached(
        &mut self,
        name: &str,
    ) -> Result<(String, AttachStream), EngineError> {
        use std::os::fd::AsRawFd;
        let (client, theirs) = berth_runtime::attach_pair().map_err(EngineError::Runtime)?;
        let (id, started) = self.start_container_inner(name, Some(theirs.as_raw_fd()))?;
        drop(theirs);
        if started {
            return Ok((id, AttachStream::new(client)));
        }
        if self.container_live(&id)?.restarting {
            return Err(EngineError::Conflict(format!(
                "container {id} is restarting, wait until the container is running"
            )));
        }
        let client = AttachStream::connect(&self.container_dir_of(&id))
            .map_err(io_err("attaching to the container"))?;
        Ok((id, client))
    }

    /// Starts the container unless it runs; returns its ID and whether it was started here.
    fn start_container_inner(
        &mut self,
        name: &str,
        attach: Option<std::os::fd::RawFd>,
    ) -> Result<(String, bool), EngineError> {
        let row = self.resolve_container(name)?;
        // Held through the start: the exit hook of the previous run cleans up under the same
        // lock, after checking the container has not been started again.
        let _lock = self.restart_lock(&row.id);
        let (row, mut rec, live) = self.load(&row.id)?;
        let id = row.id.clone();
        // A restarting container is started by its exit hook (Docker: not modified).
        if live.running || live.restarting {
            return Ok((id, false));
        }
        if rec.state.status == "removing" {
            return Err(EngineError::Conflict(format!(
                "container {id} is marked for removal and cannot be started"
            )));
        }
        let spec = self.spec_of(&id)?;
        self.reset_restart_state(&id, &mut rec);
        self.start_spec_attached(&id, &spec, &mut rec, attach)?;
        Ok((id, true))
    }

    fn start_spec(
        &mut self,
        id: &str,
        spec: &ContainerSpec,
        rec: &mut ContainerRecord,
    ) -> Result<(), EngineError> {
        self.start_spec_attached(id, spec, rec, None)
    }

    /// Starts the container; `attach` is an attach connection for the monitor to serve from
    /// the start ([`berth_runtime::StartOptions::attach`]).
    fn start_spec_attached(
        &mut self,
        id: &str,
        spec: &ContainerSpec,
        rec: &mut ContainerRecord,
        attach: Option<std::os::fd::RawFd>,
    ) -> Result<(), EngineError> {
        if let Some(pod) = &spec.pod {
            self.pod_ensure_infra_running(pod, id)?;
        }
        let dir = self.container_dir_of(id);
        berth_runtime::mount_rootfs(&dir, &spec.layers).map_err(EngineError::Runtime)?;
        self.join_namespaces(&dir, spec)?;
        berth_runtime::monitor::trace("cli: mounted");
        let net = self.network_before_start(id)?;
        berth_runtime::monitor::trace("cli: network");
        let previous = rec.state.clone();
        rec.state = StateCache {
            status: "running".into(),
            started_at: now_rfc3339(),
            finished_at: previous.finished_at.clone(),
            ..Default::default()
        };
        self.save_record(id, rec)?;
        self.write_exit_hook(id)?;
        self.hold_start_lock(id);
        let opts = berth_runtime::StartOptions {
            runtime: spec.runtime.clone(),
            monitor_path: Some(self.monitor_path()?),
            state_root: self.runtime_state_root(),
            attach,
        };
        berth_runtime::monitor::trace("cli: before start");
        match berth_runtime::start(&dir, &opts) {
            Ok(started) => {
                self.network_after_start(id, net, Some(started.pid));
                rec.state.pid = started.pid;
                self.save_record(id, rec)?;
                Ok(())
            }
            Err(e) => {
                self.network_after_start(id, net, None);
                rec.state = StateCache {
                    status: if previous.status == "exited" {
                        "exited".into()
                    } else {
                        "created".into()
                    },
                    exit_code: e.exit_code(),
                    error: e.to_string(),
                    started_at: previous.started_at,
                    finished_at: previous.finished_at,
                    ..Default::default()
                };
                let _ = std::fs::remove_file(dir.join("exit.json"));
                let _ = berth_runtime::cleanup(&dir);
                self.save_record(id, rec)?;
                Err(EngineError::Runtime(e))
            }
        }
    }

    /// `create` + `start` in one call (`docker run`), keeping the rootfs mounted in between.
    /// `events` hears of a pull on demand and, once the container exists and before it starts,
    /// of its ID (Docker's CLI
    /// writes `--cidfile` then, so a container that fails to start still has one).
    pub fn run_container(
        &mut self,
        o: &CreateOptions,
        events: &mut dyn FnMut(CreateEvent),
    ) -> Result<String, EngineError> {
        self.run_container_inner(o, None, events)
    }

    /// `run -i`: [`Engine::run_container`] with an attach connection served from before the
    /// container's process runs (as [`Engine::start_container_attached`]).
    pub fn run_container_attached(
        &mut self,
        o: &CreateOptions,
        events: &mut dyn FnMut(CreateEvent),
    ) -> Result<(String, AttachStream), EngineError> {
        use std::os::fd::AsRawFd;
        let (client, theirs) = berth_runtime::attach_pair().map_err(EngineError::Runtime)?;
        let id = self.run_container_inner(o, Some(theirs.as_raw_fd()), events)?;
        Ok((id, AttachStream::new(client)))
    }

    fn run_container_inner(
        &mut self,
        o: &CreateOptions,
        attach: Option<std::os::fd::RawFd>,
        events: &mut dyn FnMut(CreateEvent),
    ) -> Result<String, EngineError> {
        let id = self.create_inner(o, true, events)?;
        events(CreateEvent::Created(&id));
        berth_runtime::monitor::trace("cli: created");
        let spec = self.spec_of(&id)?;
        let row = self.resolve_container(&id)?;
        let mut rec = Self::record_of(&row)?;
        match self.start_spec_attached(&id, &spec, &mut rec, attach) {
            Ok(()) => Ok(id),
            Err(e) => {
                if o.auto_remove {
                    let _ = self.remove_container(&id, true, true);
                }
                Err(e)
            }
        }
    }

    /// The directory of a container (for attach and logs clients).
    pub fn container_dir(&self, name: &str) -> Result<(String, PathBuf), EngineError> {
        let row = self.resolve_container(name)?;
        let dir = self.container_dir_of(&row.id);
        Ok((row.id, dir))
    }

    /// A handle on the container for signals, waits, resize and further attaches (see
    /// [`crate::streams`]).
    pub fn container_handle(&self, name: &str) -> Result<ContainerHandle, EngineError> {
        let (id, dir) = self.container_dir(name)?;
        Ok(ContainerHandle::new(id, dir))
    }

    /// `attach`: a connection to the streams of a running container, refused with dockerd's
    /// words when it restarts, is paused or does not run.
    pub fn attach_container(
        &mut self,
        name: &str,
    ) -> Result<(ContainerHandle, AttachStream), EngineError> {
        let (row, _rec, live) = self.load(name)?;
        if live.restarting {
            return Err(EngineError::Conflict(
                "You cannot attach to a restarting container, wait until it is running".into(),
            ));
        }
        let handle = ContainerHandle::new(row.id.clone(), self.container_dir_of(&row.id));
        match handle.run_state()? {
            ContainerState::Running { paused: false, .. } => {}
            ContainerState::Running { paused: true, .. } => {
                return Err(EngineError::Conflict(
                    "You cannot attach to a paused container, unpause it first".into(),
                ))
            }
            _ => {
                return Err(EngineError::Conflict(
                    "You cannot attach to a stopped container, start it first".into(),
                ))
            }
        }
        let stream = handle.attach()?;
        Ok((handle, stream))
    }

    /// The container's spec (`container.json`).
    pub fn container_spec(&self, name: &str) -> Result<ContainerSpec, EngineError> {
        let row = self.resolve_container(name)?;
        self.spec_of(&row.id)
    }

    /// `POST /containers/{id}/stop`: the stop signal, then SIGKILL after `timeout` seconds
    /// (default: the container's `--stop-timeout`, 10). Stopping a stopped container is fine.
    pub fn stop_container(
        &mut self,
        name: &str,
        timeout: Option<i64>,
        signal: Option<&str>,
    ) -> Result<String, EngineError> {
        let row = self.resolve_container(name)?;
        self.refuse_infra_stop(&row.id, &Self::record_of(&row)?)?;
        self.mark_manually_stopped(&row.id);
        let lock = self.restart_lock(&row.id);
        self.cancel_restart(&row.id);
        let (row, _rec, live) = self.load(&row.id)?;
        let id = row.id.clone();
        let dir = self.container_dir_of(&id);
        if live.running {
            let sig =
                match signal {
                    Some(s) => Some(berth_runtime::parse_signal(s).map_err(|_| {
                        EngineError::InvalidArgument(format!("Invalid signal: {s}"))
                    })?),
                    None => None,
                };
            let t = timeout.map(|t| Duration::from_secs(t.max(0) as u64));
            if live.paused {
                let _ = berth_runtime::unpause(&dir);
            }
            let signal_number = sig
                .or_else(|| berth_runtime::bundle_info(&dir).ok().map(|b| b.stop_signal))
                .unwrap_or(15)
                .to_string();
            self.record_container_event("kill", &id, &[("signal", &signal_number)]);
            match berth_runtime::stop(&dir, sig, t) {
                Ok(_) | Err(berth_runtime::Error::NotRunning) => {}
                Err(e) => return Err(EngineError::Runtime(e)),
            }
        }
        // Released first: removing a `--rm` container takes it again (flock is per open
        // file, so this process would wait for itself).
        drop(lock);
        self.record_container_event("stop", &id, &[]);
        self.after_exit(&id)?;
        Ok(id)
    }

    /// Records the exit of a container that stopped, unmounts its rootfs, and removes it when
    /// it was run with `--rm`.
    fn after_exit(&mut self, id: &str) -> Result<(), EngineError> {
        let (row, rec, live) = match self.load(id) {
            Ok(x) => x,
            // Removed by its exit hook (`--rm`).
            Err(EngineError::ContainerNotFound(_)) => return Ok(()),
            Err(e) => return Err(e),
        };
        if live.running {
            return Ok(());
        }
        let dir = self.container_dir_of(&row.id);
        let _ = berth_runtime::cleanup(&dir);
        self.release_network(&row.id);
        if rec.auto_remove {
            // Its exit hook may have removed it already.
            match self.remove_container(&row.id, true, true) {
                Ok(_) | Err(EngineError::ContainerNotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// `POST /containers/{id}/kill`.
    pub fn kill_container(&mut self, name: &str, signal: &str) -> Result<String, EngineError> {
        let (row, _rec, live) = self.load(name)?;
        let sig = berth_runtime::parse_signal(signal)
            .map_err(|_| EngineError::InvalidArgument(format!("Invalid signal: {signal}")))?;
        if live.restarting {
            // Nothing runs: killing it means not restarting it (as in Docker).
            self.mark_killed(&row.id);
            let lock = self.restart_lock(&row.id);
            self.cancel_restart(&row.id);
            drop(lock);
            self.after_exit(&row.id)?;
            return Ok(row.id);
        }
        if !live.running {
            // dockerd's words: the API router wraps errNotRunning.
            return Err(EngineError::FailedPrecondition(format!(
                "Cannot kill container: {name}: {}",
                EngineError::NotRunning(row.id)
            )));
        }
        let dir = self.container_dir_of(&row.id);
        self.mark_killed(&row.id);
        let lock = self.restart_lock(&row.id);
        if live.paused && sig == libc_sigkill() {
            let _ = berth_runtime::unpause(&dir);
        }
        berth_runtime::kill(&dir, sig).map_err(EngineError::Runtime)?;
        self.record_container_event("kill", &row.id, &[("signal", &sig.to_string())]);
        if sig == libc_sigkill() {
            // As Docker's, a SIGKILL returns once the exit is recorded, so `kill X && rm X`
            // and an `inspect` right after see it stopped. Other signals may be handled or
            // ignored: no wait.
            match berth_runtime::wait(&dir, Some(KILL_WAIT)) {
                Ok(_) | Err(berth_runtime::Error::NotRunning) => {}
                Err(berth_runtime::Error::Timeout) => {
                    return Err(EngineError::Conflict(format!(
                        "tried to kill container, but did not receive an exit event: container {} did not exit within {} seconds",
                        row.id,
                        KILL_WAIT.as_secs()
                    )))
                }
                Err(e) => return Err(EngineError::Runtime(e)),
            }
            drop(lock);
            self.after_exit(&row.id)?;
        }
        Ok(row.id)
    }

    /// `GET /containers/json`.
    ///
    /// Side effects, kept on purpose: [`Engine::recover_containers`] finishes a create or
    /// remove whose process died (else a half-made container would be listed, or a removed
    /// one kept); `network_gc_dead` releases the endpoints, ports and namespaces of containers
    /// that no longer run (what frees a detached container's ports when its monitor was
    /// killed; it does nothing, and no firewall work, when every holder is live); a state
    /// change seen in the runtime is saved to the row's cache. Nothing else is written.
    pub fn list_containers(
        &mut self,
        o: &ListOptions,
    ) -> Result<Vec<ContainerSummary>, EngineError> {
        self.recover_containers()?;
        let _ = self.network_gc_dead();
        let filters = opts::Filters::parse(&o.filters)?;
        let mut ctx = opts::MatchContext {
            ancestors: filters
                .get("ancestor")
                .iter()
                .filter_map(|a| self.resolve_image(a).ok().map(|r| r.id))
                .collect(),
            ..Default::default()
        };
        for v in filters.get("pod") {
            match self.resolve_pod(&v) {
                Ok(p) => ctx.pods.push(p.id),
                Err(EngineError::PodNotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        // `before=`/`since=` name a container that must exist (Docker: "No such container").
        for (key, slot) in [("before", &mut ctx.before), ("since", &mut ctx.since)] {
            for v in filters.get(key) {
                *slot = Some(self.resolve_container(&v)?.created);
            }
        }
        let rows = self.store().containers()?;
        let mut out = Vec::new();
        let limit = if o.latest { Some(1) } else { o.limit };
        // As Docker's, a `status=` or `exited=` filter lists stopped containers too;
        // `before=`/`since=` do not (dockerd 20.10 lists running containers only without -a).
        let all = o.all || limit.is_some() || ["status", "exited"].iter().any(|k| filters.has(k));
        let ports_wanted = filters.has("publish") || filters.has("expose");
        let mut updates: Vec<(String, ContainerRecord)> = Vec::new();
        let mut autoremove: Vec<String> = Vec::new();
        let mut pod_names: Option<BTreeMap<String, String>> = None;
        for row in rows {
            if let Some(l) = limit {
                if out.len() >= l {
                    break;
                }
            }
            let Ok(mut rec) = serde_json::from_str::<ContainerRecord>(&row.record) else {
                continue;
            };
            let (live, changed) = self.live_state(&row.id, &mut rec);
            if changed {
                if rec.auto_remove && live.status == "exited" {
                    autoremove.push(row.id.clone());
                    continue;
                }
                updates.push((row.id.clone(), rec.clone()));
            }
            if !all && !live.running && !live.restarting {
                continue;
            }
            if ports_wanted {
                // dockerd matches these on the ports a container has while it runs (its
                // `Ports`), so a created or exited container matches neither.
                (ctx.published, ctx.exposed) = if live.running {
                    self.published_and_exposed(&row.id)
                } else {
                    Default::default()
                };
            }
            if !filters.matches(&row, &rec, &live, &ctx) {
                continue;
            }
            let created = row.created / 1_000_000_000;
            let (size_rw, size_root_fs) = if o.size {
                let rw = dir_size(&self.container_dir_of(&row.id).join("upper")) as i64;
                let image = self
                    .store()
                    .image(&row.image_id)
                    .ok()
                    .flatten()
                    .map(|i| i.size as i64)
                    .unwrap_or(0);
                (Some(rw), Some(rw + image))
            } else {
                (None, None)
            };
            let ports = self.network_ps_ports(&row.id, live.running);
            let pod = match &rec.pod {
                Some(p) => {
                    let names = match &mut pod_names {
                        Some(n) => n,
                        None => pod_names.insert(
                            self.store()
                                .pods()?
                                .into_iter()
                                .map(|r| (r.id, r.name))
                                .collect(),
                        ),
                    };
                    Some((p.clone(), names.get(p).cloned().unwrap_or_default()))
                }
                None => None,
            };
            out.push(ContainerSummary {
                id: row.id,
                names: vec![format!("/{}", row.name)],
                image: rec.image,
                image_id: row.image_id,
                command: rec.command,
                created,
                status: status_text(&live),
                state: live.status,
                ports,
                labels: rec.labels,
                size_rw,
                size_root_fs,
                mounts: rec.mounts,
                network_mode: rec.network_mode,
                pod,
            });
        }
        for (id, rec) in updates {
            let _ = self.save_record(&id, &rec);
        }
        for id in autoremove {
            let _ = self.remove_container(&id, true, true);
        }
        Ok(out)
    }

    /// `GET /containers/{id}/json`: Docker's shape.
    pub fn inspect_container(&mut self, name: &str, size: bool) -> Result<Value, EngineError> {
        let (row, rec, live) = self.load(name)?;
        let spec = self.spec_of(&row.id)?;
        let dir = self.container_dir_of(&row.id);
        let zero = "0001-01-01T00:00:00Z";
        let or_zero = |s: &str| {
            if s.is_empty() {
                zero.to_string()
            } else {
                s.to_string()
            }
        };
        let run = &spec.run;
        // The hosts/hostname/resolv.conf binds berth adds are not the user's: Docker does not
        // list its own either.
        let internal: Vec<PathBuf> = ["hosts", "hostname", "resolv.conf"]
            .iter()
            .map(|f| dir.join(f))
            .collect();
        let mounts: Vec<Value> = run
            .mounts
            .iter()
            .filter(|m| !matches!(m, MountSpec::Bind { source, .. } if internal.contains(source)))
            .map(|m| match m {
                MountSpec::Bind {
                    source,
                    target,
                    readonly,
                } => json!({"Type": "bind", "Source": source, "Destination": target, "Mode": if *readonly {"ro"} else {""}, "RW": !readonly, "Propagation": "rprivate"}),
                MountSpec::Volume {
                    source,
                    target,
                    readonly,
                } => {
                    let name = spec
                        .volumes
                        .iter()
                        .find(|(_, t)| t == target)
                        .map(|(n, _)| n.clone())
                        .unwrap_or_default();
                    json!({"Type": "volume", "Name": name, "Source": source, "Destination": target, "Driver": "local", "Mode": if *readonly {"ro"} else {"z"}, "RW": !readonly, "Propagation": ""})
                }
                MountSpec::Tmpfs { target, .. } => {
                    json!({"Type": "tmpfs", "Source": "", "Destination": target, "Mode": "", "RW": true, "Propagation": ""})
                }
            })
            .collect();
        let ulimits: Vec<Value> = run
            .ulimits
            .iter()
            .map(|u| json!({"Name": u.name, "Soft": u.soft, "Hard": u.hard}))
            .collect();
        let tmpfs: BTreeMap<String, String> = spec
            .tmpfs
            .iter()
            .map(|t| match t.split_once(':') {
                Some((d, o)) => (d.to_string(), o.to_string()),
                None => (t.clone(), String::new()),
            })
            .collect();
        let host_config = json!({
            "Binds": if spec.binds.is_empty() { Value::Null } else { json!(spec.binds) },
            "ContainerIDFile": "",
            "LogConfig": {"Type": "json-file", "Config": {}},
            "NetworkMode": spec.network_mode,
            "PortBindings": {},
            "RestartPolicy": {"Name": if spec.restart.name.is_empty() {"no"} else {&spec.restart.name}, "MaximumRetryCount": spec.restart.max_retries},
            "AutoRemove": spec.auto_remove,
            "VolumeDriver": "",
            "VolumesFrom": Value::Null,
            "CapAdd": if run.cap_add.is_empty() { Value::Null } else { json!(run.cap_add) },
            "CapDrop": if run.cap_drop.is_empty() { Value::Null } else { json!(run.cap_drop) },
            "GroupAdd": if run.group_add.is_empty() { Value::Null } else { json!(run.group_add) },
            "IpcMode": "private",
            "OomScoreAdj": run.oom_score_adj.unwrap_or(0),
            "PidMode": "",
            "Privileged": run.privileged,
            "PublishAllPorts": false,
            "ReadonlyRootfs": run.read_only,
            "SecurityOpt": if spec.security_opt.is_empty() { Value::Null } else { json!(spec.security_opt) },
            "Tmpfs": if tmpfs.is_empty() { Value::Null } else { json!(tmpfs) },
            "UTSMode": "",
            "ShmSize": run.shm_size.unwrap_or(64 * 1024 * 1024),
            "Runtime": spec.runtime_name,
            "Memory": run.memory.unwrap_or(0),
            "MemorySwap": run.memory_swap.unwrap_or(0),
            "NanoCpus": run.cpus.map(|c| (c * 1e9) as i64).unwrap_or(0),
            "CpuShares": run.cpu_shares.unwrap_or(0),
            "CpusetCpus": run.cpuset_cpus.clone().unwrap_or_default(),
            "CpusetMems": run.cpuset_mems.clone().unwrap_or_default(),
            "PidsLimit": run.pids_limit,
            "Ulimits": if ulimits.is_empty() { Value::Null } else { json!(ulimits) },
            "Init": if run.init.is_some() { json!(true) } else { Value::Null },
            "Mounts": Value::Null,
            "MaskedPaths": berth_runtime::spec::MASKED_PATHS,
            "ReadonlyPaths": berth_runtime::spec::READONLY_PATHS,
        });
        let rootfs = dir.join("rootfs");
        let lower: Vec<String> = spec
            .layers
            .iter()
            .rev()
            .map(|p| p.display().to_string())
            .collect();
        let mut v = json!({
            "Id": row.id,
            "Created": spec.created,
            "Path": spec.path,
            "Args": spec.args,
            "State": {
                "Status": live.status,
                // Docker counts a restarting container as running.
                "Running": live.running || live.restarting,
                "Paused": live.paused,
                "Restarting": live.restarting,
                "OOMKilled": live.oom_killed,
                "Dead": live.status == "dead",
                "Pid": live.pid,
                "ExitCode": live.exit_code,
                "Error": live.error,
                "StartedAt": or_zero(&live.started_at),
                "FinishedAt": or_zero(&live.finished_at),
            },
            "Image": row.image_id,
            "ResolvConfPath": "",
            "HostnamePath": "",
            "HostsPath": "",
            "LogPath": berth_runtime::log_path(&dir),
            "Name": format!("/{}", row.name),
            "RestartCount": rec.restart_count,
            "Driver": "overlay",
            "Platform": "linux",
            "MountLabel": "",
            "ProcessLabel": "",
            "AppArmorProfile": "",
            "ExecIDs": Value::Null,
            "HostConfig": host_config,
            "GraphDriver": {
                "Name": "overlay",
                "Data": {
                    "LowerDir": lower.join(":"),
                    "MergedDir": rootfs,
                    "UpperDir": dir.join("upper"),
                    "WorkDir": dir.join("work"),
                }
            },
            "Mounts": mounts,
            "Config": spec.config,
            "NetworkSettings": {
                "Bridge": "",
                "SandboxID": "",
                "SandboxKey": "",
                "Ports": {},
                "Gateway": "",
                "IPAddress": "",
                "IPPrefixLen": 0,
                "MacAddress": "",
                "Networks": {
                    spec.network_mode.clone(): {
                        "NetworkID": "",
                        "EndpointID": "",
                        "Gateway": "",
                        "IPAddress": "",
                        "IPPrefixLen": 0,
                        "MacAddress": "",
                    }
                }
            },
        });
        if let Some(h) = berth_runtime::health::read_state(&dir) {
            v["State"]["Health"] = json!(h);
        }
        // berth's own key: the most memory the last run used, in bytes (from the memory
        // cgroup at exit), so an OOM kill can be compared with the limit afterwards.
        if !live.running {
            if let Some(peak) = berth_runtime::recorded_exit(&dir).and_then(|st| st.memory_peak) {
                v["State"]["MemoryPeak"] = json!(peak);
            }
        }
        self.fill_network_settings(&row.id, &spec, live.running, &mut v);
        host_opts::fill_inspect(&spec, &mut v);
        // Docker shows the swap limit in effect: twice the memory limit when only --memory was
        // given (or -1, unlimited, where the kernel has no swap accounting).
        if run.memory.is_some_and(|m| m > 0) && run.memory_swap.unwrap_or(0) == 0 {
            let m = run.memory.unwrap_or(0);
            v["HostConfig"]["MemorySwap"] = json!(if berth_runtime::cgroup::swap_supported() {
                m * 2
            } else {
                -1
            });
        }
        v["HostConfig"] = crate::shape::host_config(v["HostConfig"].take());
        v["NetworkSettings"] = crate::shape::network_settings(v["NetworkSettings"].take());
        v["Config"] = crate::shape::container_config(v["Config"].take());
        // podman's field: the pod the container belongs to.
        if let Some(pod) = &spec.pod {
            v["Pod"] = json!(pod);
        }
        if size {
            let rw = dir_size(&dir.join("upper"));
            let image = self
                .store()
                .image(&row.image_id)?
                .map(|i| i.size)
                .unwrap_or(0);
            v["SizeRw"] = json!(rw);
            v["SizeRootFs"] = json!(rw + image);
        }
        Ok(v)
    }

    /// Reads a container's json-file log and hands each entry to `sink`; with `follow`, keeps
    /// reading until the container stops (or `stop` returns true).
    pub fn container_logs(
        &mut self,
        name: &str,
        o: &LogOptions,
        stop: &dyn Fn() -> bool,
        sink: &mut dyn FnMut(&LogEntry) -> std::io::Result<()>,
    ) -> Result<(), EngineError> {
        let row = self.resolve_container(name)?;
        if self
            .spec_of(&row.id)
            .is_ok_and(|s| s.host.log_type == "none")
        {
            return Err(EngineError::InvalidArgument(
                "configured logging driver does not support reading".into(),
            ));
        }
        let dir = self.container_dir_of(&row.id);
        follow_log(&dir, o, stop, sink)
    }

    /// `exec`: a command that runs `opts.args` in the running container with the caller's
    /// stdio (the caller spawns it).
    pub fn exec_command(
        &mut self,
        name: &str,
        opts: &ExecOptions,
    ) -> Result<std::process::Command, EngineError> {
        let (row, _rec, live) = self.load(name)?;
        if live.restarting {
            return Err(EngineError::Conflict(format!(
                "Container {} is restarting, wait until the container is running",
                row.id
            )));
        }
        if !live.running {
            return Err(EngineError::NotRunning(row.id));
        }
        if live.paused {
            return Err(EngineError::Conflict(format!(
                "container {} is paused, unpause the container before exec",
                row.id
            )));
        }
        let dir = self.container_dir_of(&row.id);
        let monitor = self.monitor_path()?;
        berth_runtime::exec(&dir, opts, Some(&monitor)).map_err(EngineError::Runtime)
    }

    /// `POST /containers/{id}/rename`.
    pub fn rename_container(&mut self, name: &str, new_name: &str) -> Result<(), EngineError> {
        let row = self.resolve_container(name)?;
        let new = names::validate(new_name)?;
        if new == row.name {
            return Err(EngineError::Conflict(
                "Renaming a container with the same name as its current name".to_string(),
            ));
        }
        match self.store_mut().rename_container(&row.id, &new)? {
            Ok(()) => {
                self.rename_in_event_attributes(&row.id, &new);
                self.record_container_event(
                    "rename",
                    &row.id,
                    &[("oldName", &format!("/{}", row.name))],
                );
                Ok(())
            }
            Err(holder) => Err(name_conflict(&new, &holder)),
        }
    }

    /// `POST /containers/{id}/pause`.
    pub fn pause_container(&mut self, name: &str) -> Result<(), EngineError> {
        let (row, _rec, live) = self.load(name)?;
        if !live.running {
            return Err(EngineError::NotRunning(row.id));
        }
        if live.paused {
            return Err(EngineError::Conflict(format!(
                "container {} is already paused",
                row.id
            )));
        }
        berth_runtime::pause(&self.container_dir_of(&row.id)).map_err(EngineError::Runtime)?;
        self.record_container_event("pause", &row.id, &[]);
        Ok(())
    }

    /// `POST /containers/{id}/unpause`.
    pub fn unpause_container(&mut self, name: &str) -> Result<(), EngineError> {
        let (row, _rec, live) = self.load(name)?;
        if !live.paused {
            return Err(EngineError::Conflict(format!(
                "container {} is not paused",
                row.id
            )));
        }
        berth_runtime::unpause(&self.container_dir_of(&row.id)).map_err(EngineError::Runtime)?;
        self.record_container_event("unpause", &row.id, &[]);
        Ok(())
    }

    /// `GET /containers/{id}/top`: host PIDs of the container's processes.
    pub fn container_pids(&mut self, name: &str) -> Result<Vec<i32>, EngineError> {
        let (row, _rec, live) = self.load(name)?;
        if !live.running {
            return Err(EngineError::NotRunning(row.id));
        }
        let mut pids = berth_runtime::cgroup::CgroupMode::detect().procs(&format!(
            "{}/{}",
            berth_runtime::CGROUP_PARENT,
            row.id
        ));
        if pids.is_empty() && live.pid > 0 {
            pids.push(live.pid);
        }
        pids.sort_unstable();
        Ok(pids)
    }

    /// Counts for `info`: (total, running, paused, stopped).
    pub fn container_counts(&self) -> Result<(u64, u64, u64, u64), EngineError> {
        let rows = self.store().containers()?;
        let (mut running, mut paused, mut stopped) = (0, 0, 0);
        for row in &rows {
            let Ok(mut rec) = serde_json::from_str::<ContainerRecord>(&row.record) else {
                continue;
            };
            let (live, _) = self.live_state(&row.id, &mut rec);
            match live.status.as_str() {
                "running" => running += 1,
                "paused" => paused += 1,
                _ => stopped += 1,
            }
        }
        Ok((rows.len() as u64, running, paused, stopped))
    }
}

fn libc_sigkill() -> i32 {
    9
}

/// Parses `--since`/`--until`: RFC 3339, unix seconds (with fraction), or a duration before
/// now (`10m`, `1h30m`, `45s`).
pub fn parse_time_arg(s: &str) -> Result<f64, EngineError> {
    if let Some(t) = parse_rfc3339(s) {
        return Ok(t.timestamp() as f64 + t.timestamp_subsec_nanos() as f64 / 1e9);
    }
    if let Ok(n) = s.parse::<f64>() {
        return Ok(n);
    }
    if let Ok(t) = chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S") {
        return Ok(t.and_utc().timestamp() as f64);
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Ok(d
            .and_hms_opt(0, 0, 0)
            .map(|t| t.and_utc().timestamp() as f64)
            .unwrap_or(0.0));
    }
    let secs = opts::parse_go_duration(s).ok_or_else(|| {
        EngineError::InvalidArgument(format!(
            "invalid value for \"since\"/\"until\": {s}: use a timestamp or a duration like 10m"
        ))
    })?;
    let now = chrono::Utc::now();
    Ok(now.timestamp() as f64 + now.timestamp_subsec_nanos() as f64 / 1e9 - secs)
}

#[derive(Deserialize)]
struct RawLogLine {
    log: String,
    stream: String,
    time: String,
}

fn entry_of(line: &[u8]) -> Option<LogEntry> {
    let raw: RawLogLine = serde_json::from_slice(line).ok()?;
    Some(LogEntry {
        stream: if raw.stream == "stderr" { 2 } else { 1 },
        time: raw.time,
        data: raw.log.into_bytes(),
    })
}

fn entry_time(e: &LogEntry) -> f64 {
    parse_rfc3339(&e.time)
        .map(|t| t.timestamp() as f64 + t.timestamp_subsec_nanos() as f64 / 1e9)
        .unwrap_or(0.0)
}

/// Streams a container's log; see [`Engine::container_logs`].
pub fn follow_log(
    dir: &Path,
    o: &LogOptions,
    stop: &dyn Fn() -> bool,
    sink: &mut dyn FnMut(&LogEntry) -> std::io::Result<()>,
) -> Result<(), EngineError> {
    let path = berth_runtime::log_path(dir);
    let file = loop {
        match std::fs::File::open(&path) {
            Ok(f) => break Some(f),
            Err(_) if o.follow && !stop() && is_running(dir) => {
                std::thread::sleep(Duration::from_millis(10))
            }
            Err(_) => break None,
        }
    };
    let Some(file) = file else { return Ok(()) };
    // Rotated files first, oldest first (`--log-opt max-file`); the one held open is skipped
    // should it have been rotated meanwhile: it is read below.
    let mut all = Vec::new();
    let held = inode_of(&file);
    let mut rotated = Vec::new();
    for n in 1.. {
        let p = berth_runtime::rotated_log_path(dir, n);
        if !p.exists() {
            break;
        }
        rotated.push(p);
    }
    for p in rotated.iter().rev() {
        if let Ok(mut f) = std::fs::File::open(p) {
            if inode_of(&f) != held {
                let _ = f.read_to_end(&mut all);
                if !all.is_empty() && !all.ends_with(b"\n") {
                    all.push(b'\n');
                }
            }
        }
    }
    let mut reader = std::io::BufReader::new(file);
    let keep = |e: &LogEntry| {
        let t = entry_time(e);
        o.since.map(|s| t >= s).unwrap_or(true) && o.until.map(|u| t <= u).unwrap_or(true)
    };
    let emit = |e: &LogEntry, sink: &mut dyn FnMut(&LogEntry) -> std::io::Result<()>| {
        sink(e).map_err(|e| EngineError::io("writing logs", e))
    };
    // What is there now (honouring --tail).
    let mut pending_line: Vec<u8>;
    {
        reader
            .read_to_end(&mut all)
            .map_err(io_err("reading the log"))?;
        let complete = match all.iter().rposition(|&b| b == b'\n') {
            Some(i) => {
                pending_line = all[i + 1..].to_vec();
                &all[..=i]
            }
            None => {
                pending_line = all.clone();
                &all[..0]
            }
        };
        let mut entries: Vec<LogEntry> = complete
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .filter_map(entry_of)
            .filter(|e| keep(e))
            .collect();
        if let Some(n) = o.tail {
            let skip = entries.len().saturating_sub(n);
            entries.drain(..skip);
        }
        for e in &entries {
            emit(e, sink)?;
        }
    }
    if !o.follow {
        return Ok(());
    }
    let mut last_check = std::time::Instant::now();
    let mut finishing = false;
    let mut switch_file = false;
    loop {
        let mut line = std::mem::take(&mut pending_line);
        let n = reader
            .read_until(b'\n', &mut line)
            .map_err(io_err("reading the log"))?;
        if line.ends_with(b"\n") {
            if let Some(e) = entry_of(&line[..line.len() - 1]) {
                if keep(&e) {
                    emit(&e, sink)?;
                }
            }
            continue;
        }
        pending_line = line;
        if n == 0 {
            if switch_file {
                // The old file was read to its end after it was rotated away: go on with the
                // new one (a partial line cannot be continued in another file).
                switch_file = false;
                if let Ok(f) = std::fs::File::open(&path) {
                    reader = std::io::BufReader::new(f);
                    pending_line.clear();
                    continue;
                }
            } else if std::fs::metadata(&path).map(|m| m.ino()).ok() != inode_of(reader.get_ref()) {
                // Rotated: whatever was written before the rename is still to be read from the
                // file held open.
                switch_file = true;
                continue;
            }
            if finishing {
                return Ok(());
            }
            if stop() {
                finishing = true;
                continue;
            }
            if last_check.elapsed() > Duration::from_millis(100) {
                last_check = std::time::Instant::now();
                if !is_running(dir) {
                    finishing = true;
                    continue;
                }
            }
            // Parked rather than slept, so a caller that knows the container has exited can
            // wake the follower at once (`Thread::unpark`).
            std::thread::park_timeout(Duration::from_millis(5));
        }
    }
}

fn inode_of(f: &std::fs::File) -> Option<u64> {
    f.metadata().map(|m| m.ino()).ok()
}

fn is_running(dir: &Path) -> bool {
    matches!(
        berth_runtime::state(dir),
        Ok(ContainerState::Running { .. }) | Ok(ContainerState::Created)
            if dir.join("monitor.pid").exists()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_volumes_skip_paths_the_user_mounts() {
        let mounts = vec![MountSpec::Tmpfs {
            target: "/cache/".into(),
            size: None,
            mode: None,
            options: Vec::new(),
        }];
        let vols: Vec<String> = ["/data", "/data/", "/cache", "/logs"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(
            image_volume_targets(&vols, &mounts).unwrap(),
            ["/data", "/logs"]
        );
        for bad in ["data", "/"] {
            let e = image_volume_targets(&[bad.to_string()], &[]).unwrap_err();
            assert!(matches!(e, EngineError::InvalidArgument(_)), "{bad}: {e}");
        }
    }
}
