//! berth-runtime: turns an image's config plus `docker run` options into an isolated process.
//!
//! What lives here:
//! - [`spec`]: the OCI runtime-spec `config.json`, generated the way Docker does (default
//!   capabilities, [`seccomp`] profile, masked paths, mounts, namespaces, rlimits, resources).
//! - [`rootfs`]: the overlay root filesystem (layers + upper + work).
//! - the built-in runtime (youki's `libcontainer`) and external OCI runtimes (`runc`, `crun`, any
//!   path) driven through their CLI;
//! - [`monitor`]: the per-container monitor process (`berth-monitor`): parent of the container's
//!   init, holds its stdio, writes the json-file log, serves [`attach`], records the exit status;
//! - [`cgroup`]: v1 and v2 bookkeeping (OOM kills, freezer, kill-all, removal).
//!
//! # How the engine uses it
//! ```no_run
//! use berth_runtime::*;
//! # fn demo(layers: Vec<std::path::PathBuf>) -> berth_runtime::Result<()> {
//! let dir = std::path::Path::new("/var/lib/berth/containers/abc");
//! let image = ImageRuntimeConfig { cmd: Some(vec!["true".into()]), ..Default::default() };
//! let opts = RunOptions::default();
//! // `create`: overlay rootfs + config.json (idempotent; re-mounts after a reboot).
//! prepare_bundle("abc", dir, &layers, &image, &opts)?;
//! // `start`: spawns the detached monitor and returns once the container runs (or failed).
//! let started = start(dir, &StartOptions::default())?;
//! let status = wait(dir, None)?; // ExitStatus { exit_code, oom_killed, finished_at, .. }
//! cleanup(dir)?; // kill leftovers, remove cgroup + runtime state, unmount rootfs
//! # let _ = (started, status); Ok(()) }
//! ```
//! Start failures come back as [`Error::Start`]; [`Error::exit_code`] maps them the way Docker
//! does (127 command not found, 126 not executable, 125 other).
//!
//! Files in the container directory: `config.json`, `rootfs/`, `upper/`, `work/`, `bundle.json`
//! (what cleanup needs), `start.json` (runtime choice), `container.log` (docker json-file),
//! `attach.sock`, `monitor.pid` / `init.pid` (`pid start_time`), `exit.json` ([`ExitStatus`]),
//! `monitor.log` (the monitor's own errors).
//!
//! Everything that starts containers clones the calling process, so it never runs inside the
//! caller: [`start`] spawns `berth-monitor`, [`exec`] returns a command running it (or the
//! external runtime). The library is safe to call from a multi-threaded (tokio) process.
//!
//! # Invariants and notes
//! - Crash safety: every step can be interrupted by a kill -9 of any process; [`cleanup`] (kill
//!   leftovers, delete runtime state, remove the cgroup, unmount) is idempotent and [`state`]
//!   turns a dead monitor into a recorded exit (code 255, `error` set), never "running forever".
//! - Cgroups: `linux.cgroupsPath` is `/berth/<id>`; hybrid hosts are driven as v1 (like runc).
//!   crun refuses hybrid hosts that have controllers on the v2 side.
//! - The monitor protects its binary against CVE-2019-5736 by re-executing through a read-only
//!   bind mount of itself in a private (slave) mount namespace.
//! - `-w` under `/proc` or `/sys` is refused (CVE-2024-21626 class); the runtimes also close
//!   every fd but stdio before exec.
//! - libcontainer quirks handled here: `noNewPrivileges: false` is omitted (an explicit false
//!   makes it load seccomp after dropping CAP_SYS_ADMIN), and for `-t` the pty is allocated inside
//!   the container by a custom executor (libcontainer's console socket allocates it from the
//!   host's devpts).
//! - Developer aids: `BERTH_MONITOR_TRACE=1` timestamps the monitor's phases into
//!   `monitor.log` and the CLI's phases of `run` on its stderr; `BERTH_TEST_RUNTIMES=builtin,runc,crun` narrows the container tests.

pub mod attach;
pub mod cgroup;
pub mod config;
pub mod events;
pub mod filter;
pub mod health;
pub mod monitor;
pub mod paths;
pub mod relay;
pub mod rootfs;
pub mod seccomp;
pub mod spec;
pub mod util;

pub use config::{
    DevShm, DeviceEdits, DeviceHook, DeviceMount, DeviceNode, DeviceRule, ImageRuntimeConfig,
    LdConfig, LogConfig, MountSpec, NamespaceMode, NetworkMode, RunOptions, RuntimeKind, Ulimit,
};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Why a container could not start, for Docker's exit code mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum StartErrorKind {
    /// The command was not found (exit 127).
    NotFound,
    /// The command is not executable (exit 126).
    PermissionDenied,
    /// Anything else (exit 125).
    Other,
}

/// Errors of this crate.
#[derive(Debug)]
pub enum Error {
    Io(std::io::Error),
    Json(serde_json::Error),
    /// Invalid input (bad option, missing file, ...).
    Invalid(String),
    /// The container failed to start; the message is Docker's wording where Docker has one,
    /// e.g. `exec: "foo": executable file not found in $PATH`.
    Start {
        kind: StartErrorKind,
        message: String,
    },
    /// The container is not running.
    NotRunning,
    /// Waiting timed out.
    Timeout,
}

impl Error {
    /// Docker's exit code for a failed `run`: 127, 126 or 125.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Start {
                kind: StartErrorKind::NotFound,
                ..
            } => 127,
            Error::Start {
                kind: StartErrorKind::PermissionDenied,
                ..
            } => 126,
            _ => 125,
        }
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Io(e) => write!(f, "{e}"),
            Error::Json(e) => write!(f, "{e}"),
            Error::Invalid(s) => write!(f, "{s}"),
            Error::Start { message, .. } => write!(f, "{message}"),
            Error::NotRunning => write!(f, "container is not running"),
            Error::Timeout => write!(f, "timed out"),
        }
    }
}

impl std::error::Error for Error {}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::Io(e)
    }
}
impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Error::Json(e)
    }
}
impl From<nix::Error> for Error {
    fn from(e: nix::Error) -> Self {
        Error::Io(e.into())
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The cgroup parent all containers live under.
pub const CGROUP_PARENT: &str = "/berth";
/// Default directory for runtime state (libcontainer's or runc's `--root`): short, so unix
/// socket paths inside it fit.
pub const DEFAULT_STATE_ROOT: &str = "/run/berth/runtime";

/// What [`prepare_bundle`] records for the later steps.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BundleInfo {
    pub id: String,
    pub layers: Vec<PathBuf>,
    pub cgroup: String,
    pub tty: bool,
    pub stdin_open: bool,
    /// Signal number `stop` sends first.
    pub stop_signal: i32,
    pub stop_timeout: u32,
    /// What the monitor does with the output (absent in bundles from before: json-file).
    #[serde(default)]
    pub log: LogConfig,
    /// The library cache the monitor rebuilds before the process runs (device requests).
    /// Here, not in `config.json`'s annotations, which labels can set.
    #[serde(default)]
    pub ldconfig: Option<LdConfig>,
}

/// What [`start`] records for the monitor and for exec/cleanup.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StartRecord {
    pub runtime: RuntimeKind,
    pub state_root: PathBuf,
}

/// How to start a container.
#[derive(Debug, Clone)]
pub struct StartOptions {
    pub runtime: RuntimeKind,
    /// The `berth-monitor` binary; default: `$BERTH_MONITOR`, next to the current executable,
    /// then `$PATH`.
    pub monitor_path: Option<PathBuf>,
    /// Runtime state directory (default [`DEFAULT_STATE_ROOT`]).
    pub state_root: PathBuf,
    /// A connected unix socket the monitor serves as an attach client from before the
    /// container's process runs, so the caller sees all of its output (`start -a`); the
    /// caller keeps the other end (see [`attach_pair`]). Only borrowed for the call.
    pub attach: Option<RawFd>,
}

impl Default for StartOptions {
    fn default() -> Self {
        StartOptions {
            runtime: RuntimeKind::Builtin,
            monitor_path: None,
            state_root: PathBuf::from(DEFAULT_STATE_ROOT),
            attach: None,
        }
    }
}

/// A socket pair for [`StartOptions::attach`]: the caller's client and the end to hand to
/// [`start`] (drop it once `start` returned).
pub fn attach_pair() -> Result<(attach::AttachClient, OwnedFd)> {
    let (ours, theirs) = std::os::unix::net::UnixStream::pair()?;
    Ok((
        attach::AttachClient::from_stream(ours),
        OwnedFd::from(theirs),
    ))
}

/// A started container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StartedContainer {
    /// The container's init, as seen from the host.
    pub pid: i32,
    /// The monitor process.
    pub monitor_pid: i32,
}

/// How a container ended.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExitStatus {
    /// Docker's exit code: the code, or 128 + signal.
    pub exit_code: i32,
    /// The signal that killed init, if any.
    pub signal: Option<i32>,
    pub oom_killed: bool,
    /// RFC 3339 with nanoseconds, UTC.
    pub finished_at: String,
    /// Set when the container never ran (start error) or its monitor died.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The most memory the run used, in bytes (read at exit; absent when unknown).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_peak: Option<u64>,
    /// The memory limit the run had, in bytes (absent when unlimited or unknown).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_limit: Option<u64>,
}

impl ExitStatus {
    /// For a run the kernel ended for lack of memory: one line saying so, with the limit, the
    /// peak and what to do (Docker says nothing; the exit code 137 alone looks like a kill).
    pub fn oom_explanation(&self, container: &str) -> Option<String> {
        if !self.oom_killed {
            return None;
        }
        let mib = |b: u64| format!("{:.1} MiB", b as f64 / (1024.0 * 1024.0));
        let mut facts = Vec::new();
        if let Some(l) = self.memory_limit {
            facts.push(format!("limit {}", mib(l)));
        }
        if let Some(p) = self.memory_peak {
            facts.push(format!("peak {}", mib(p)));
        }
        let facts = if facts.is_empty() {
            String::new()
        } else {
            format!(" ({})", facts.join("; "))
        };
        Some(format!(
            "berth: container {container} was killed: out of memory{facts}\n\
             hint: give it more with --memory (and --memory-swap), or make it use less"
        ))
    }
}

/// What [`state`] finds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContainerState {
    /// Bundle prepared, never started (or start not yet reported).
    Created,
    Running {
        pid: i32,
        paused: bool,
    },
    Exited(ExitStatus),
    /// The monitor is gone without recording an exit: the container's remaining processes have
    /// been killed and an exit status with code 255 and an `error` was recorded (so later calls
    /// see `Exited`).
    MonitorDied(ExitStatus),
}

/// Container directory file names.
pub fn attach_socket_path(container_dir: &Path) -> PathBuf {
    container_dir.join("attach.sock")
}
/// The docker json-file log.
pub fn log_path(container_dir: &Path) -> PathBuf {
    container_dir.join("container.log")
}
/// The `n`th rotated log (`container.log.1` is the newest), as Docker's json-file names them.
pub fn rotated_log_path(container_dir: &Path, n: u32) -> PathBuf {
    container_dir.join(format!("container.log.{n}"))
}
/// The exit hook: a JSON argv the monitor runs, detached, after recording `exit.json` (see
/// the monitor's `run_exit_hook`). Written by the caller before [`start`]; optional.
pub fn exit_hook_path(container_dir: &Path) -> PathBuf {
    container_dir.join("exit-hook.json")
}
/// A lock the commands that start a container hold (shared) until they exit; the exit hook
/// runs only once it can take it exclusively, so a foreground `run` deals with its own
/// container's exit first.
pub fn starter_lock_path(container_dir: &Path) -> PathBuf {
    container_dir.join("starter.lock")
}
pub(crate) fn exit_path(dir: &Path) -> PathBuf {
    dir.join("exit.json")
}

fn read_json<T: serde::de::DeserializeOwned>(p: &Path) -> Result<T> {
    let s = std::fs::read(p).map_err(|e| Error::Invalid(format!("{}: {e}", p.display())))?;
    Ok(serde_json::from_slice(&s)?)
}

/// The bundle description berth wrote for the container (`bundle.json`).
pub fn bundle_info(dir: &Path) -> Result<BundleInfo> {
    read_json(&dir.join("bundle.json"))
}
pub(crate) fn start_record(dir: &Path) -> Result<StartRecord> {
    read_json(&dir.join("start.json"))
}

/// Parses `SIGTERM`, `TERM`, `term` or `15`.
pub fn parse_signal(s: &str) -> Result<i32> {
    if let Ok(n) = s.parse::<i32>() {
        return Ok(n);
    }
    let up = s.to_ascii_uppercase();
    let name = if up.starts_with("SIG") {
        up
    } else {
        format!("SIG{up}")
    };
    name.parse::<nix::sys::signal::Signal>()
        .map(|s| s as i32)
        .map_err(|_| Error::Invalid(format!("invalid signal: {s}")))
}

/// `create`: mounts the overlay rootfs at `<container_dir>/rootfs` (layers bottom first, upper
/// and work dirs in the container dir) and writes `config.json`. Idempotent: an existing
/// mount is reused, files are rewritten atomically.
pub fn prepare_bundle(
    id: &str,
    container_dir: &Path,
    layers: &[PathBuf],
    image: &ImageRuntimeConfig,
    opts: &RunOptions,
) -> Result<oci_spec::runtime::Spec> {
    if id.is_empty()
        || !id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_+-.".contains(c))
        || id.starts_with('.')
    {
        return Err(Error::Invalid(format!("invalid container id {id:?}")));
    }
    // Root's alone (Docker: 0710), whatever the umask.
    util::create_dir_mode(container_dir, 0o700)?;
    let rootfs = container_dir.join("rootfs");
    mount_rootfs(container_dir, layers)?;
    // Docker's marker that tools (Python's among them) check to know they run in a container:
    // an empty file, a stub `diff` and `commit` leave out (MOUNT_POINT_STUBS). `create_new`
    // never follows a link the image may have put there; an existing entry is kept.
    let _ = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(rootfs.join(".dockerenv"));
    let input = spec::SpecInput {
        id,
        rootfs: &rootfs,
        image,
        opts,
        cgroup_parent: CGROUP_PARENT,
        create_paths: true,
    };
    let value = match spec::generate_json(&input) {
        Ok(v) => v,
        Err(e) => {
            let _ = rootfs::unmount(&rootfs);
            return Err(e);
        }
    };
    let spec: oci_spec::runtime::Spec = serde_json::from_value(value.clone())?;
    util::write_atomic_deferred(
        &container_dir.join("config.json"),
        serde_json::to_string_pretty(&value)?.as_bytes(),
    )?;
    let stop_signal = match opts.stop_signal.as_ref().or(image.stop_signal.as_ref()) {
        Some(s) => parse_signal(s)?,
        None => libc::SIGTERM,
    };
    let info = BundleInfo {
        id: id.to_string(),
        layers: layers.to_vec(),
        cgroup: format!("{CGROUP_PARENT}/{id}"),
        tty: opts.tty,
        stdin_open: opts.stdin_open,
        stop_signal,
        stop_timeout: opts
            .stop_timeout
            .map(|t| t.clamp(0, u32::MAX as i64) as u32)
            .unwrap_or(10),
        log: opts.log.clone(),
        ldconfig: opts.device_edits.ldconfig.clone(),
    };
    util::write_atomic_deferred(
        &container_dir.join("bundle.json"),
        &serde_json::to_vec(&info)?,
    )?;
    Ok(spec)
}

/// Mounts the container's overlay rootfs unless it already is (e.g. after a reboot, before
/// `start`).
pub fn mount_rootfs(container_dir: &Path, layers: &[PathBuf]) -> Result<()> {
    let rootfs = container_dir.join("rootfs");
    if rootfs.exists() && rootfs::is_mounted(&rootfs) {
        return Ok(());
    }
    rootfs::mount_overlay(
        layers,
        &container_dir.join("upper"),
        &container_dir.join("work"),
        &rootfs,
    )
}

/// Protects the monitor's binary against CVE-2019-5736 before it even starts (saving the
/// monitor a re-exec of itself): the child moves into its own mount namespace (a slave of the
/// host's) and bind-mounts the binary read-only over itself, then execs it. When any step
/// fails the monitor does it itself (`monitor::seal_exe`).
fn seal_monitor_exe(cmd: &mut Command, monitor: &Path, with_relay: bool) {
    use std::os::unix::ffi::OsStrExt;
    let Ok(target) = std::fs::canonicalize(monitor) else {
        return;
    };
    // The relay binary the monitor execs into once the container runs, sealed the same way.
    let relay = with_relay
        .then(|| target.with_file_name(relay::RELAY_BINARY))
        .filter(|r| r.is_file())
        .and_then(|r| std::ffi::CString::new(r.as_os_str().as_bytes()).ok());
    let Ok(target) = std::ffi::CString::new(target.as_os_str().as_bytes()) else {
        return;
    };
    // SAFETY: only async-signal-safe system calls between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            let root = c"/".as_ptr();
            if libc::unshare(libc::CLONE_NEWNS) == 0
                && libc::mount(
                    std::ptr::null(),
                    root,
                    std::ptr::null(),
                    libc::MS_SLAVE | libc::MS_REC,
                    std::ptr::null(),
                ) == 0
            {
                for bin in std::iter::once(&target).chain(relay.as_ref()) {
                    bind_read_only(bin);
                }
            }
            Ok(())
        });
    }
}

/// Binds `path` read-only over itself (in a private mount namespace). Async-signal-safe.
fn bind_read_only(path: &std::ffi::CStr) {
    // SAFETY: mount(2) with valid C strings.
    unsafe {
        if libc::mount(
            path.as_ptr(),
            path.as_ptr(),
            std::ptr::null(),
            libc::MS_BIND,
            std::ptr::null(),
        ) == 0
        {
            libc::mount(
                std::ptr::null(),
                path.as_ptr(),
                std::ptr::null(),
                libc::MS_BIND
                    | libc::MS_REMOUNT
                    | libc::MS_RDONLY
                    | libc::MS_NOSUID
                    | libc::MS_NODEV,
                std::ptr::null(),
            );
        }
    }
}

fn find_monitor(opts: &StartOptions) -> PathBuf {
    if let Some(p) = &opts.monitor_path {
        return p.clone();
    }
    if let Some(p) = std::env::var_os("BERTH_MONITOR") {
        return PathBuf::from(p);
    }
    if let Ok(exe) = std::env::current_exe() {
        if let Some(dir) = exe.parent() {
            for cand in [dir.join("berth-monitor"), dir.join("../berth-monitor")] {
                if cand.exists() {
                    return cand;
                }
            }
        }
    }
    PathBuf::from("berth-monitor")
}

/// The monitor's readiness report.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Ready {
    pub pid: Option<i32>,
    pub error: Option<String>,
    pub kind: Option<StartErrorKind>,
}

/// `start`: spawns the detached monitor (double fork + setsid), which creates and starts the
/// container and reports back before this returns. The bundle must be prepared and its rootfs
/// mounted ([`prepare_bundle`] / [`mount_rootfs`]).
pub fn start(container_dir: &Path, opts: &StartOptions) -> Result<StartedContainer> {
    let info = bundle_info(container_dir)?;
    if let Ok(ContainerState::Running { .. }) = state(container_dir) {
        return Err(Error::Invalid(format!(
            "container {} is already running",
            info.id
        )));
    }
    // Forget the previous run.
    for f in ["exit.json", "init.pid", "monitor.pid"] {
        let _ = std::fs::remove_file(container_dir.join(f));
    }
    std::fs::create_dir_all(&opts.state_root)?;
    let rec = StartRecord {
        runtime: opts.runtime.clone(),
        state_root: opts.state_root.clone(),
    };
    util::write_atomic_nosync(
        &container_dir.join("start.json"),
        &serde_json::to_vec(&rec)?,
    )?;

    let (r, w): (OwnedFd, OwnedFd) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    let wfd = w.as_raw_fd();
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(container_dir.join("monitor.log"))?;
    let monitor = find_monitor(opts);
    let mut cmd = Command::new(&monitor);
    cmd.arg("run").arg(container_dir).arg(wfd.to_string());
    let afd = opts.attach.unwrap_or(-1);
    if afd >= 0 {
        cmd.arg(afd.to_string());
    }
    seal_monitor_exe(&mut cmd, &monitor, true);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(log));
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            if libc::fcntl(wfd, libc::F_SETFD, 0) < 0
                || (afd >= 0 && libc::fcntl(afd, libc::F_SETFD, 0) < 0)
                || libc::setsid() < 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| Error::Invalid(format!("cannot run berth-monitor: {e}")))?;
    crate::monitor::trace("cli: spawned");
    drop(w);
    drop(cmd);
    let mut buf = Vec::new();
    let mut rf = std::fs::File::from(r);
    let _ = rf.read_to_end(&mut buf);
    let _ = child.wait();
    let ready: Ready = serde_json::from_slice(&buf).map_err(|_| {
        let log = std::fs::read_to_string(container_dir.join("monitor.log")).unwrap_or_default();
        Error::Start {
            kind: StartErrorKind::Other,
            message: format!(
                "berth-monitor exited without reporting: {}",
                log.lines().last().unwrap_or("")
            ),
        }
    })?;
    if let Some(e) = ready.error {
        return Err(Error::Start {
            kind: ready.kind.unwrap_or(StartErrorKind::Other),
            message: e,
        });
    }
    let pid = ready
        .pid
        .ok_or_else(|| Error::Invalid("monitor reported no pid".into()))?;
    let monitor_pid = util::read_pid_file(&container_dir.join("monitor.pid"))
        .map(|p| p.0)
        .unwrap_or(0);
    Ok(StartedContainer { pid, monitor_pid })
}

/// How the container's last run ended, as its monitor recorded it (None while it runs, or
/// before it ever ran). Reads only; unlike [`state`] it never touches processes.
pub fn recorded_exit(container_dir: &Path) -> Option<ExitStatus> {
    read_json(&exit_path(container_dir)).ok()
}

fn record_exit(dir: &Path, st: &ExitStatus) -> Result<()> {
    util::write_atomic_nosync(&exit_path(dir), &serde_json::to_vec(st)?)?;
    Ok(())
}

/// `state`: what the container is doing now. When the monitor died without recording an exit,
/// the container's leftover processes are killed (nobody can collect their output or status
/// any more) and an honest status is recorded: code 255, `error: "monitor died"`.
pub fn state(container_dir: &Path) -> Result<ContainerState> {
    if let Ok(st) = read_json::<ExitStatus>(&exit_path(container_dir)) {
        return Ok(ContainerState::Exited(st));
    }
    let Some((mpid, mstart)) = util::read_pid_file(&container_dir.join("monitor.pid")) else {
        return Ok(ContainerState::Created);
    };
    let init = util::read_pid_file(&container_dir.join("init.pid"));
    if util::proc_alive(mpid, mstart) {
        return Ok(match init {
            Some((pid, _)) => {
                let paused = bundle_info(container_dir)
                    .map(|i| cgroup::CgroupMode::detect().is_frozen(&i.cgroup))
                    .unwrap_or(false);
                ContainerState::Running { pid, paused }
            }
            None => ContainerState::Created,
        });
    }
    // The monitor may have written exit.json just before we looked at its pid.
    if let Ok(st) = read_json::<ExitStatus>(&exit_path(container_dir)) {
        return Ok(ContainerState::Exited(st));
    }
    let mut oom = false;
    if let Ok(info) = bundle_info(container_dir) {
        let cg = cgroup::CgroupMode::detect();
        oom = cg.oom_kills(&info.cgroup) > 0;
        let _ = cg.freeze(&info.cgroup, false);
        cg.kill_all(&info.cgroup);
    }
    if let Some((pid, start)) = init {
        if util::proc_alive(pid, start) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
    let st = ExitStatus {
        exit_code: 255,
        signal: None,
        oom_killed: oom,
        finished_at: util::now_rfc3339(),
        error: Some("container monitor died; exit status unknown".into()),
        ..Default::default()
    };
    record_exit(container_dir, &st)?;
    Ok(ContainerState::MonitorDied(st))
}

/// Waits until the container exits (or `timeout` passes) and returns its status.
///
/// Sleeps on a pidfd of the monitor, which exits right after it records the exit. Not inotify:
/// closing an inotify descriptor that had a watch waits for an SRCU grace period (10–20 ms
/// measured), which every short `run` would pay.
pub fn wait(container_dir: &Path, timeout: Option<Duration>) -> Result<ExitStatus> {
    let deadline = timeout.map(|t| Instant::now() + t);
    let mut monitor: Option<OwnedFd> = None;
    loop {
        match state(container_dir)? {
            ContainerState::Exited(st) | ContainerState::MonitorDied(st) => return Ok(st),
            ContainerState::Created if !container_dir.join("monitor.pid").exists() => {
                return Err(Error::NotRunning)
            }
            _ => {}
        }
        let mut wait_ms: i32 = 100;
        if let Some(d) = deadline {
            let left = d.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(Error::Timeout);
            }
            wait_ms = wait_ms.min(left.as_millis() as i32 + 1);
        }
        if monitor.is_none() {
            monitor = util::read_pid_file(&container_dir.join("monitor.pid"))
                .and_then(|(pid, start)| util::pidfd_of(pid, start));
        }
        match &monitor {
            Some(fd) => {
                let mut fds = [nix::poll::PollFd::new(
                    fd.as_fd(),
                    nix::poll::PollFlags::POLLIN,
                )];
                let _ = nix::poll::poll(
                    &mut fds,
                    nix::poll::PollTimeout::try_from(wait_ms)
                        .unwrap_or(nix::poll::PollTimeout::MAX),
                );
            }
            None => std::thread::sleep(Duration::from_millis(5)),
        }
    }
}

fn running_pid(container_dir: &Path) -> Result<i32> {
    match state(container_dir)? {
        ContainerState::Running { pid, .. } => Ok(pid),
        _ => Err(Error::NotRunning),
    }
}

/// Sends `signal` to the container's init.
pub fn kill(container_dir: &Path, signal: i32) -> Result<()> {
    let pid = running_pid(container_dir)?;
    let sig = nix::sys::signal::Signal::try_from(signal)
        .map_err(|_| Error::Invalid(format!("invalid signal {signal}")))?;
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), sig)?;
    Ok(())
}

/// `stop`: the stop signal (given, or the image's / `--stop-signal`, default SIGTERM), then
/// SIGKILL after `timeout` (default: `--stop-timeout`, 10 s). Returns the exit status.
pub fn stop(
    container_dir: &Path,
    signal: Option<i32>,
    timeout: Option<Duration>,
) -> Result<ExitStatus> {
    let info = bundle_info(container_dir)?;
    let sig = signal.unwrap_or(info.stop_signal);
    let timeout = timeout.unwrap_or(Duration::from_secs(info.stop_timeout as u64));
    match kill(container_dir, sig) {
        Ok(()) | Err(Error::NotRunning) => {}
        Err(e) => return Err(e),
    }
    match wait(container_dir, Some(timeout)) {
        Ok(st) => Ok(st),
        Err(Error::Timeout) => {
            let _ = kill(container_dir, libc::SIGKILL);
            wait(container_dir, Some(Duration::from_secs(10)))
        }
        Err(e) => Err(e),
    }
}

/// `pause`: freezes every process of the container (cgroup freezer).
pub fn pause(container_dir: &Path) -> Result<()> {
    running_pid(container_dir)?;
    let info = bundle_info(container_dir)?;
    cgroup::CgroupMode::detect().freeze(&info.cgroup, true)?;
    Ok(())
}

/// `unpause`: thaws the container.
pub fn unpause(container_dir: &Path) -> Result<()> {
    let info = bundle_info(container_dir)?;
    cgroup::CgroupMode::detect().freeze(&info.cgroup, false)?;
    Ok(())
}

/// `update`: writes the memory, cpu and pids limits of `opts` into the bundle's `config.json`
/// (used from the next start on) and, when `live`, into the running container's cgroup
/// (v1 or v2, through libcgroups, which orders the memory and swap writes so the kernel
/// accepts them). Limits the options leave unset are left as they are.
pub fn update_resources(container_dir: &Path, opts: &RunOptions, live: bool) -> Result<()> {
    let res = spec::resources_of(opts)?;
    if live {
        use libcgroups::common::CgroupManager;
        let info = bundle_info(container_dir)?;
        // On cgroup v2 applying resources also replaces the container's eBPF device program,
        // built from these rules: hand it the container's own, never none (which would mean
        // the default allow-list, taking a --privileged or --device container's devices).
        let mut with_devices = res.clone();
        let current: Value = read_json(&container_dir.join("config.json"))?;
        if let Some(d) = current["linux"]["resources"].get("devices") {
            with_devices.insert("devices".into(), d.clone());
        }
        let linux: oci_spec::runtime::LinuxResources =
            serde_json::from_value(Value::Object(with_devices))?;
        let manager = libcgroups::common::create_cgroup_manager(libcgroups::common::CgroupConfig {
            cgroup_path: PathBuf::from(&info.cgroup),
            systemd_cgroup: false,
            container_name: info.id.clone(),
        })
        .map_err(|e| Error::Invalid(e.to_string()))?;
        manager
            .apply(&libcgroups::common::ControllerOpt {
                resources: &linux,
                disable_oom_killer: opts.oom_kill_disable,
                oom_score_adj: None,
                freezer_state: None,
            })
            .map_err(|e| Error::Invalid(e.to_string()))?;
    }
    let path = container_dir.join("config.json");
    let mut spec: Value = read_json(&path)?;
    let r = &mut spec["linux"]["resources"];
    if !r.is_object() {
        *r = Value::Object(Default::default());
    }
    for key in ["memory", "cpu", "pids"] {
        match res.get(key) {
            Some(v) => r[key] = v.clone(),
            None => {
                if let Some(o) = r.as_object_mut() {
                    o.remove(key);
                }
            }
        }
    }
    util::write_atomic(&path, serde_json::to_string_pretty(&spec)?.as_bytes())?;
    Ok(())
}

/// An extra process to run in a running container (`berth exec`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ExecOptions {
    pub args: Vec<String>,
    /// Extra `KEY=value` entries on top of the container's environment.
    pub env: Vec<String>,
    pub workdir: Option<String>,
    /// `uid[:gid]` or a name (resolved in the container's /etc/passwd).
    pub user: Option<String>,
    pub tty: bool,
    pub privileged: bool,
}

/// `exec`: a command that, when spawned, runs `opts.args` inside the running container (its
/// namespaces, cgroup, capabilities and seccomp profile) with the command's stdio, and exits
/// with the process's exit status (128 + signal when killed). A command that is missing or not
/// executable is reported right away as [`Error::Start`] (exit code 127 / 126). For `tty`, the command's stdio is
/// relayed through a new pty inside the container. The caller sets stdio and spawns it.
pub fn exec(
    container_dir: &Path,
    opts: &ExecOptions,
    monitor_path: Option<&Path>,
) -> Result<Command> {
    running_pid(container_dir)?;
    if opts.args.is_empty() {
        return Err(Error::Invalid("no command specified".into()));
    }
    let rec = start_record(container_dir)?;
    let info = bundle_info(container_dir)?;
    {
        let spec: serde_json::Value = read_json(&container_dir.join("config.json"))?;
        let mut env: Vec<String> =
            serde_json::from_value(spec["process"]["env"].clone()).unwrap_or_default();
        spec::merge_env(&mut env, &opts.env);
        let cwd = opts
            .workdir
            .clone()
            .unwrap_or_else(|| spec["process"]["cwd"].as_str().unwrap_or("/").to_string());
        monitor::check_executable(
            &container_dir.join("rootfs"),
            &spec,
            &cwd,
            &opts.args[0],
            &env,
        )
        .map_err(|(kind, message)| Error::Start { kind, message })?;
    }
    match &rec.runtime {
        RuntimeKind::Builtin => {
            let so = StartOptions {
                monitor_path: monitor_path.map(Path::to_path_buf),
                ..Default::default()
            };
            let monitor = find_monitor(&so);
            let mut cmd = Command::new(&monitor);
            cmd.arg("exec")
                .arg(container_dir)
                .arg(serde_json::to_string(opts)?);
            seal_monitor_exe(&mut cmd, &monitor, false);
            Ok(cmd)
        }
        RuntimeKind::External(_) if opts.tty => {
            // External runtimes need a console socket (and --detach) for a pty: the exec
            // helper drives them and relays the pty.
            let so = StartOptions {
                monitor_path: monitor_path.map(Path::to_path_buf),
                ..Default::default()
            };
            let mut cmd = Command::new(find_monitor(&so));
            cmd.arg("exec")
                .arg(container_dir)
                .arg(serde_json::to_string(opts)?);
            Ok(cmd)
        }
        RuntimeKind::External(rt) => {
            external_exec_command(rt, &rec, &info, container_dir, opts, &[])
        }
    }
}

/// `<runtime> --root R exec [extra] --env .. --cwd .. --user .. <id> <args>`.
pub(crate) fn external_exec_command(
    rt: &Path,
    rec: &StartRecord,
    info: &BundleInfo,
    container_dir: &Path,
    opts: &ExecOptions,
    extra: &[&std::ffi::OsStr],
) -> Result<Command> {
    let spec: serde_json::Value = read_json(&container_dir.join("config.json"))?;
    let rootfs = container_dir.join("rootfs");
    let mut cmd = Command::new(rt);
    cmd.arg("--root")
        .arg(&rec.state_root)
        .arg("exec")
        .args(extra);
    let mut env: Vec<String> = spec["process"]["env"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    spec::exec_env(&mut env, &opts.env, opts.tty);
    for e in env {
        cmd.arg("--env").arg(e);
    }
    if let Some(w) = &opts.workdir {
        cmd.arg("--cwd").arg(w);
    }
    if let Some(u) = &opts.user {
        let r = spec::resolve_user(&rootfs, u, &[])?;
        cmd.arg("--user").arg(format!("{}:{}", r.uid, r.gid));
        for g in r.additional_gids {
            cmd.arg("--additional-gids").arg(g.to_string());
        }
    }
    if opts.privileged {
        for c in spec::host_caps() {
            cmd.arg("--cap").arg(c);
        }
    }
    cmd.arg(&info.id).args(&opts.args);
    Ok(cmd)
}

/// Removes everything a run left behind, whatever state it was interrupted in: kills leftover
/// processes (and the monitor), deletes the runtime's state and the cgroup, removes sockets and
/// pid files and unmounts the rootfs. Keeps the log, `exit.json` and the upper dir. Idempotent.
pub fn cleanup(container_dir: &Path) -> Result<()> {
    let info = bundle_info(container_dir).ok();
    let cg = cgroup::CgroupMode::detect();
    if let Some(info) = &info {
        let _ = cg.freeze(&info.cgroup, false);
        cg.kill_all(&info.cgroup);
    }
    if let Some((pid, start)) = util::read_pid_file(&container_dir.join("init.pid")) {
        if util::proc_alive(pid, start) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
    if let Some((pid, start)) = util::read_pid_file(&container_dir.join("monitor.pid")) {
        // Give the monitor a moment to record the exit, then make sure it is gone.
        let deadline = Instant::now() + Duration::from_secs(2);
        while util::proc_alive(pid, start) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        if util::proc_alive(pid, start) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
    if let (Some(info), Ok(rec)) = (&info, start_record(container_dir)) {
        match &rec.runtime {
            RuntimeKind::Builtin => {
                let _ = std::fs::remove_dir_all(rec.state_root.join(&info.id));
            }
            RuntimeKind::External(rt) => {
                let _ = Command::new(rt)
                    .arg("--root")
                    .arg(&rec.state_root)
                    .args(["delete", "--force", &info.id])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status();
            }
        }
        for suffix in ["pid", "tty"] {
            let _ = std::fs::remove_file(rec.state_root.join(format!("{}.{suffix}", info.id)));
        }
    }
    if let Some(info) = &info {
        cg.remove(&info.cgroup)?;
    }
    for f in ["attach.sock", "init.pid", "monitor.pid"] {
        let _ = std::fs::remove_file(container_dir.join(f));
    }
    rootfs::unmount(&container_dir.join("rootfs"))?;
    let shm = container_dir.join("shm");
    if shm.exists() {
        rootfs::unmount(&shm)?;
    }
    Ok(())
}

/// `--ipc shareable`: the container's `/dev/shm` as a tmpfs of `size` bytes at
/// `<container_dir>/shm` on the host, so containers joining its IPC namespace can bind it too.
/// Idempotent.
pub fn mount_shm(container_dir: &Path, size: u64) -> Result<()> {
    let shm = container_dir.join("shm");
    std::fs::create_dir_all(&shm)?;
    if rootfs::is_mounted(&shm) {
        return Ok(());
    }
    nix::mount::mount(
        Some("shm"),
        &shm,
        Some("tmpfs"),
        nix::mount::MsFlags::MS_NOSUID
            | nix::mount::MsFlags::MS_NODEV
            | nix::mount::MsFlags::MS_NOEXEC,
        Some(format!("mode=1777,size={size}").as_str()),
    )?;
    Ok(())
}

/// Points the bundle's namespaces of the given types at existing namespace files
/// (`/proc/<pid>/ns/ipc`) and, with `dev_shm`, binds that directory at `/dev/shm`: for
/// `--ipc`/`--pid container:X`, whose init is only known at start.
pub fn set_joined_namespaces(
    container_dir: &Path,
    joins: &[(&str, PathBuf)],
    dev_shm: Option<&Path>,
) -> Result<()> {
    let path = container_dir.join("config.json");
    let mut v: serde_json::Value = read_json(&path)?;
    if let Some(list) = v["linux"]["namespaces"].as_array_mut() {
        for (ty, p) in joins {
            for ns in list.iter_mut() {
                if ns["type"] == *ty {
                    ns["path"] = serde_json::json!(p);
                }
            }
        }
    }
    if let Some(src) = dev_shm {
        if let Some(mounts) = v["mounts"].as_array_mut() {
            for m in mounts.iter_mut() {
                if m["destination"] == "/dev/shm" {
                    *m = serde_json::json!({"destination": "/dev/shm", "type": "bind",
                        "source": src, "options": ["rbind", "rprivate", "nosuid", "noexec", "nodev"]});
                }
            }
        }
    }
    util::write_atomic_deferred(&path, serde_json::to_string_pretty(&v)?.as_bytes())?;
    Ok(())
}
