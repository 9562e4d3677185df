//! Plain input structs the engine fills in: what the image says and what the user asked for.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// The parts of an image's config that matter to running it (OCI image config `config` section).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ImageRuntimeConfig {
    /// `KEY=value` entries.
    pub env: Vec<String>,
    pub entrypoint: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    /// Working directory; empty means `/`.
    pub working_dir: String,
    /// `user`, `uid`, `user:group` or `uid:gid`; empty means root.
    pub user: String,
    /// e.g. `SIGTERM` or `15`.
    pub stop_signal: Option<String>,
    /// e.g. `80/tcp`.
    pub exposed_ports: Vec<String>,
    /// Paths the image declares as volumes.
    pub volumes: Vec<String>,
    pub labels: BTreeMap<String, String>,
}

/// Which OCI runtime runs the container.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum RuntimeKind {
    /// The built-in runtime (libcontainer), no external binary needed.
    #[default]
    Builtin,
    /// An external OCI runtime binary (`runc`, `crun`, or a path), driven through its CLI.
    External(PathBuf),
}

impl RuntimeKind {
    /// Parses `--runtime`: `berth`/`builtin`/empty for the built-in one, `runc`, `crun` or a path.
    pub fn parse(s: &str) -> RuntimeKind {
        match s {
            "" | "builtin" | "berth" | "default" => RuntimeKind::Builtin,
            other => RuntimeKind::External(PathBuf::from(other)),
        }
    }
}

/// Network namespace choice.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum NetworkMode {
    /// A fresh, empty network namespace (loopback only).
    #[default]
    None,
    /// Share the host's network namespace.
    Host,
    /// Join an existing network namespace (e.g. one a bridge network prepared).
    Path(PathBuf),
}

/// One `--mount` / `-v` / `--tmpfs`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum MountSpec {
    /// Bind mount a host path (file or directory).
    Bind {
        source: PathBuf,
        target: String,
        readonly: bool,
    },
    /// A named volume's data directory (a bind of a directory berth manages).
    Volume {
        source: PathBuf,
        target: String,
        readonly: bool,
    },
    /// A tmpfs; `size` in bytes, `mode` e.g. 0o1777.
    Tmpfs {
        target: String,
        size: Option<u64>,
        mode: Option<u32>,
        options: Vec<String>,
    },
}

impl MountSpec {
    pub fn target(&self) -> &str {
        match self {
            MountSpec::Bind { target, .. }
            | MountSpec::Volume { target, .. }
            | MountSpec::Tmpfs { target, .. } => target,
        }
    }
}

/// One `--ulimit name=soft[:hard]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ulimit {
    /// Docker's name: `nofile`, `nproc`, `core`, `memlock`, `stack`, ...
    pub name: String,
    pub soft: u64,
    pub hard: u64,
}

/// Docker's `run` flags that shape the runtime spec.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunOptions {
    /// Overrides the image's entrypoint (`--entrypoint`); `Some(vec![])` clears it.
    pub entrypoint: Option<Vec<String>>,
    /// Arguments after the image name; replace the image's cmd when not empty.
    pub cmd: Vec<String>,
    /// `-e KEY=value` (a bare `KEY` is taken from the caller's environment by the engine).
    pub env: Vec<String>,
    pub workdir: Option<String>,
    pub user: Option<String>,
    /// `--group-add`
    pub group_add: Vec<String>,
    pub hostname: Option<String>,
    pub domainname: Option<String>,
    pub tty: bool,
    pub stdin_open: bool,
    pub read_only: bool,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    pub privileged: bool,
    /// `--security-opt no-new-privileges`
    pub no_new_privileges: bool,
    /// `--security-opt seccomp=unconfined`
    pub seccomp_unconfined: bool,
    pub ulimits: Vec<Ulimit>,
    /// `--memory` in bytes.
    pub memory: Option<i64>,
    /// `--memory-swap` in bytes (memory + swap); -1 for unlimited.
    pub memory_swap: Option<i64>,
    /// `--cpus`
    pub cpus: Option<f64>,
    /// `--cpu-shares` (the engine refuses a negative value, 0 means the default).
    pub cpu_shares: Option<i64>,
    pub cpuset_cpus: Option<String>,
    pub cpuset_mems: Option<String>,
    pub pids_limit: Option<i64>,
    pub mounts: Vec<MountSpec>,
    pub network: NetworkMode,
    /// `--init`: path of a static init binary on the host (tini/catatonit); mounted at
    /// `/sbin/docker-init` and run as pid 1 in front of the command.
    pub init: Option<PathBuf>,
    pub stop_signal: Option<String>,
    /// Seconds to wait after the stop signal before SIGKILL (the engine makes a negative
    /// value 0).
    pub stop_timeout: Option<i64>,
    pub labels: BTreeMap<String, String>,
    /// `--shm-size` in bytes (default 64 MiB).
    pub shm_size: Option<u64>,
    /// `--sysctl`
    pub sysctls: BTreeMap<String, String>,
    pub oom_score_adj: Option<i32>,
    /// `--ipc`: the IPC namespace (host's, one to join, or a new one) and what `/dev/shm` is.
    #[serde(default)]
    pub ipc: NamespaceMode,
    #[serde(default)]
    pub dev_shm: DevShm,
    /// `--pid`: the PID namespace.
    #[serde(default)]
    pub pid: NamespaceMode,
    /// `--uts host`: the host's UTS namespace (and so its hostname).
    #[serde(default)]
    pub uts_host: bool,
    /// `--device`: host device nodes created in the container, each allowed by the device
    /// cgroup with its permissions.
    #[serde(default)]
    pub devices: Vec<DeviceNode>,
    /// `--device-cgroup-rule`: extra device cgroup rules.
    #[serde(default)]
    pub device_rules: Vec<DeviceRule>,
    /// `--memory-reservation` in bytes (a soft limit).
    #[serde(default)]
    pub memory_reservation: Option<i64>,
    /// `--memory-swappiness` 0..=100.
    #[serde(default)]
    pub memory_swappiness: Option<u64>,
    /// `--oom-kill-disable`
    #[serde(default)]
    pub oom_kill_disable: bool,
    /// `--cpu-period`, `--cpu-quota` (CFS, microseconds).
    #[serde(default)]
    pub cpu_period: Option<u64>,
    #[serde(default)]
    pub cpu_quota: Option<i64>,
    /// `--log-driver` / `--log-opt`: what the monitor does with the container's output.
    #[serde(default)]
    pub log: LogConfig,
    /// What device requests (`--gpus`, CDI devices) add beyond their device nodes (which are
    /// in `devices`): environment, mounts, hooks, groups, the library cache.
    #[serde(default)]
    pub device_edits: DeviceEdits,
}

/// The container edits of device requests (CDI's `containerEdits`, less the device nodes).
/// Kept apart from the user's `env`/`mounts` so `inspect`'s `Config.Env` and `Mounts` show
/// what the user asked for, as Docker's do.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DeviceEdits {
    /// `KEY=value`, applied after the image's and the user's environment.
    #[serde(default)]
    pub env: Vec<String>,
    #[serde(default)]
    pub mounts: Vec<DeviceMount>,
    #[serde(default)]
    pub hooks: Vec<DeviceHook>,
    /// Groups added to the process's supplementary groups.
    #[serde(default)]
    pub additional_gids: Vec<u32>,
    /// Rebuild the container's dynamic linker cache once its mounts are in place.
    #[serde(default)]
    pub ldconfig: Option<LdConfig>,
}

/// One CDI mount: `options` are OCI mount options (`ro`, `nosuid`, `bind`, …).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceMount {
    pub host_path: PathBuf,
    pub container_path: String,
    /// Mount type; empty means `bind`.
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub options: Vec<String>,
}

/// One OCI hook (`createRuntime`, `createContainer`, `startContainer`, `poststart`, `poststop`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceHook {
    pub hook_name: String,
    pub path: String,
    #[serde(default)]
    pub args: Vec<String>,
    #[serde(default)]
    pub env: Vec<String>,
    #[serde(default)]
    pub timeout: Option<i64>,
}

/// `ldconfig` run by the monitor from the host (`program -r /proc/<init>/root DIRS…`) between
/// the runtime's create and start, when the container's mounts are in place: the driver's
/// libraries are then in the container's cache and have their SONAME links, whether or not
/// the image has an `ldconfig` of its own (busybox has none).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LdConfig {
    /// The host's `ldconfig` (a static binary on glibc systems).
    pub program: PathBuf,
    /// Container directories holding the mounted libraries.
    pub dirs: Vec<String>,
}

/// A namespace the container gets: its own (the default), the host's, or one to join.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum NamespaceMode {
    #[default]
    Private,
    Host,
    /// A namespace file (`/proc/<pid>/ns/<type>`), filled in at start for `container:X`.
    Join(PathBuf),
}

/// What is mounted at `/dev/shm`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum DevShm {
    /// A fresh tmpfs of `--shm-size`.
    #[default]
    Tmpfs,
    /// Nothing (`--ipc none`).
    None,
    /// A bind of a host directory: the host's `/dev/shm` (`--ipc host`) or another
    /// container's (`--ipc container:X`).
    Bind(PathBuf),
}

/// One `--device`: a node made in the container like the host's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceNode {
    /// `c` or `b`.
    pub kind: char,
    pub path: String,
    pub major: i64,
    pub minor: i64,
    /// Permission bits of the host's node.
    pub file_mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// Cgroup access: some of `rwm`.
    pub access: String,
}

/// One device cgroup rule: `type major:minor access` (`None` for `*`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceRule {
    /// `a`, `c` or `b`.
    pub kind: char,
    pub major: Option<i64>,
    pub minor: Option<i64>,
    pub access: String,
}

/// What the monitor does with the container's output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogConfig {
    /// Write the json-file log at all (`--log-driver none`: no).
    pub enabled: bool,
    /// Rotate when the current file would grow past this many bytes.
    pub max_size: Option<u64>,
    /// Files kept, the current one included (1: the current file is truncated instead).
    pub max_file: u32,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            enabled: true,
            max_size: None,
            max_file: 1,
        }
    }
}
