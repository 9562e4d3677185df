//! The `run`/`create` options about namespaces (`--ipc --pid --uts`), devices, kernel
//! parameters, resource knobs and logging: Docker's validation and defaults (so an Engine API
//! server shares them), how they shape the runtime options, and how `inspect` shows them.

use super::ContainerSpec;
use crate::{Engine, EngineError};
use berth_runtime::{
    DevShm, DeviceNode, DeviceRule, LogConfig, MountSpec, NamespaceMode, NetworkMode, RunOptions,
};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

/// What the caller asked for, as typed (sizes and numbers already parsed by the front end).
#[derive(Debug, Clone, Default)]
pub struct HostOptions {
    /// `--ipc` (`private`, `shareable`, `host`, `none`, `container:X`).
    pub ipc: Option<String>,
    /// `--pid` (`host`, `container:X`).
    pub pid: Option<String>,
    /// `--uts` (`host`).
    pub uts: Option<String>,
    /// `--device HOST[:CONTAINER[:PERMS]]`
    pub devices: Vec<String>,
    /// `--device-cgroup-rule 'c 1:3 rwm'`
    pub device_cgroup_rules: Vec<String>,
    /// `--gpus` (parsed by [`crate::gpu::parse_gpus`]) or the API's `DeviceRequests`.
    pub device_requests: Vec<crate::gpu::DeviceRequest>,
    /// `--sysctl KEY=VALUE`
    pub sysctls: Vec<String>,
    /// `--log-driver`
    pub log_driver: Option<String>,
    /// `--log-opt KEY=VALUE`
    pub log_opts: Vec<String>,
    /// `--volumes-from CONTAINER[:ro|rw]`
    pub volumes_from: Vec<String>,
    /// `--cidfile` (written by the front end; recorded for inspect).
    pub container_id_file: Option<String>,
    /// `--expose PORT[-PORT][/PROTO]`
    pub expose: Vec<String>,
    /// `--memory-reservation` in bytes.
    pub memory_reservation: Option<i64>,
    /// `--memory-swappiness` (-1: the host's default).
    pub memory_swappiness: Option<i64>,
    /// `--oom-kill-disable`
    pub oom_kill_disable: bool,
    /// `--oom-score-adj`
    pub oom_score_adj: Option<i64>,
    /// `--cpu-period`, `--cpu-quota` (microseconds).
    pub cpu_period: Option<i64>,
    pub cpu_quota: Option<i64>,
    /// `--platform`
    pub platform: Option<String>,
    /// `-a/--attach`: `stdin`, `stdout`, `stderr` (empty: Docker's default).
    pub attach: Vec<String>,
}

impl HostOptions {
    /// Whether an attached `run` must take the output from the container (the attach
    /// socket) rather than follow the log: there is none (`--log-driver none`), or it rotates,
    /// and a fast writer could rotate lines away before the follower reads them.
    pub fn output_not_in_log(&self) -> bool {
        parse_log(self.log_driver.as_deref(), &self.log_opts)
            .map(|(c, _, _)| !c.enabled || c.max_size.is_some())
            .unwrap_or(false)
    }

    /// `Config.AttachStdin`, `AttachStdout`, `AttachStderr`.
    pub fn attached(&self, interactive: bool, detach: bool) -> (bool, bool, bool) {
        if self.attach.is_empty() {
            return (interactive && !detach, !detach, !detach);
        }
        let has = |s: &str| self.attach.iter().any(|a| a == s);
        (has("stdin"), has("stdout"), has("stderr"))
    }
}

/// `--device` as Docker's `HostConfig.Devices` shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeviceMapping {
    pub path_on_host: String,
    pub path_in_container: String,
    pub cgroup_permissions: String,
}

/// What `container.json` keeps of these options (for `inspect` and for `start`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct HostSpec {
    /// Docker's `IpcMode`: `private` by default.
    pub ipc_mode: String,
    /// `PidMode`, `UTSMode`: empty by default.
    pub pid_mode: String,
    pub uts_mode: String,
    /// The containers whose namespaces are joined (`container:X`), by ID: their init's
    /// namespaces are looked up at each start.
    pub ipc_container: Option<String>,
    pub pid_container: Option<String>,
    /// A pod member's UTS namespace: the pod's infra container's (by ID).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uts_container: Option<String>,
    pub devices: Vec<DeviceMapping>,
    pub device_cgroup_rules: Vec<String>,
    /// `HostConfig.DeviceRequests`: `--gpus`, then the CDI devices of `--device` as one
    /// request of driver `cdi` (Docker 25's CLI).
    #[serde(default)]
    pub device_requests: Vec<crate::gpu::DeviceRequest>,
    pub sysctls: BTreeMap<String, String>,
    /// `LogConfig.Type` and `.Config`.
    pub log_type: String,
    pub log_config: BTreeMap<String, String>,
    pub volumes_from: Vec<String>,
    pub container_id_file: String,
    pub memory_swappiness: Option<i64>,
    /// `--expose` ports (`80/tcp`), added to the image's.
    pub exposed: Vec<String>,
}

/// The namespace path written at create for `container:X`: replaced at every start by the
/// donor's (`join_namespaces`); a path that does not exist, so a start that skipped that step
/// fails instead of joining some other namespace.
pub(crate) const JOINED_AT_START: &str = "/nonexistent/berth/namespace-of-the-donor-at-start";

fn is_cgroup_v2() -> bool {
    matches!(
        berth_runtime::cgroup::CgroupMode::detect(),
        berth_runtime::cgroup::CgroupMode::V2 { .. }
    )
}

fn invalid(m: impl Into<String>) -> EngineError {
    EngineError::InvalidArgument(m.into())
}

/// The kernel parameters a container may set: those of the namespaces it owns (Docker's
/// list).
fn sysctl_allowed(key: &str) -> bool {
    const KEYS: &[&str] = &[
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.sem",
        "kernel.shmall",
        "kernel.shmmax",
        "kernel.shmmni",
        "kernel.shm_rmid_forced",
    ];
    KEYS.contains(&key) || key.starts_with("net.") || key.starts_with("fs.mqueue.")
}

fn is_ipc_sysctl(key: &str) -> bool {
    key.starts_with("kernel.") || key.starts_with("fs.mqueue.")
}

/// The host's platform as Docker names it (`linux/amd64`).
pub fn host_platform() -> (String, String) {
    (
        "linux".to_string(),
        berth_oci::image::host_architecture().to_string(),
    )
}

/// `--platform`: the host's platform is accepted; berth runs no emulated containers, so any
/// other is refused rather than run on the wrong architecture.
pub fn check_platform(p: &str) -> Result<(), EngineError> {
    let (os, arch) = host_platform();
    let lower = p.trim().to_ascii_lowercase();
    let mut parts = lower.split('/');
    let want_os = parts.next().unwrap_or("");
    let want_arch = parts.next();
    let norm = |a: &str| match a {
        "x86_64" | "x86-64" => "amd64".to_string(),
        "aarch64" => "arm64".to_string(),
        other => other.to_string(),
    };
    if want_os.is_empty() || parts.count() > 1 {
        return Err(invalid(format!(
            "\"{p}\": unknown operating system or architecture: invalid argument"
        )));
    }
    if want_os != os || want_arch.map(norm).is_some_and(|a| a != arch) {
        return Err(invalid(format!(
            "image platform {p} does not match the host platform {os}/{arch}: berth runs containers for the host platform only (drop --platform or use --platform {os}/{arch})"
        )));
    }
    Ok(())
}

/// `--device`: Docker's modes are some of `rwm`.
fn valid_device_mode(m: &str) -> bool {
    !m.is_empty()
        && m.len() <= 3
        && m.chars().all(|c| "rwm".contains(c))
        && m.chars().collect::<std::collections::BTreeSet<_>>().len() == m.len()
}

/// `HOST[:CONTAINER][:PERMS]` → (host, container, perms).
pub fn parse_device(s: &str) -> Result<(String, String, String), EngineError> {
    let parts: Vec<&str> = s.split(':').collect();
    let (src, mut dst, mut perms) = (parts[0].to_string(), String::new(), "rwm".to_string());
    match parts.len() {
        1 => {}
        2 => {
            if valid_device_mode(parts[1]) {
                perms = parts[1].to_string();
            } else {
                dst = parts[1].to_string();
            }
        }
        3 => {
            dst = parts[1].to_string();
            perms = parts[2].to_string();
        }
        _ => return Err(invalid(format!("invalid device specification: {s}"))),
    }
    if dst.is_empty() {
        dst = src.clone();
    }
    if !valid_device_mode(&perms) {
        return Err(invalid(format!(
            "invalid argument \"{s}\" for \"--device\" flag: bad mode specified: {perms}"
        )));
    }
    for p in [&src, &dst] {
        if !p.starts_with('/') {
            return Err(invalid(format!(
                "invalid argument \"{s}\" for \"--device\" flag: {p} is not an absolute path"
            )));
        }
    }
    Ok((src, dst, perms))
}

/// The device nodes of a host path: the node itself, or every node under a directory.
fn gather_devices(
    spec: &str,
    host: &Path,
    target: &str,
    perms: &str,
    out: &mut Vec<DeviceNode>,
) -> Result<(), EngineError> {
    let err = |why: String| {
        invalid(format!(
            "error gathering device information while adding custom device \"{}\": {why}",
            host.display()
        ))
    };
    let md = std::fs::metadata(host).map_err(|e| {
        err(match e.kind() {
            std::io::ErrorKind::NotFound => "no such file or directory".to_string(),
            _ => e.to_string(),
        })
    })?;
    let ft = md.file_type();
    if ft.is_dir() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(host)
            .map_err(|e| err(e.to_string()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        entries.sort();
        for p in entries {
            let Some(name) = p.file_name() else { continue };
            let t = format!(
                "{}/{}",
                target.trim_end_matches('/'),
                name.to_string_lossy()
            );
            // Only nodes and directories of nodes; other files there are not devices.
            match std::fs::symlink_metadata(&p) {
                Ok(m)
                    if m.file_type().is_dir()
                        || m.file_type().is_char_device()
                        || m.file_type().is_block_device() =>
                {
                    gather_devices(spec, &p, &t, perms, out)?
                }
                _ => {}
            }
        }
        return Ok(());
    }
    let kind = if ft.is_char_device() {
        'c'
    } else if ft.is_block_device() {
        'b'
    } else {
        return Err(err("not a device node".to_string()));
    };
    let rdev = md.rdev();
    out.push(DeviceNode {
        kind,
        path: target.to_string(),
        major: rustix::fs::major(rdev) as i64,
        minor: rustix::fs::minor(rdev) as i64,
        file_mode: md.mode() & 0o7777,
        uid: md.uid(),
        gid: md.gid(),
        access: perms.to_string(),
    });
    let _ = spec;
    Ok(())
}

/// `--device-cgroup-rule 'TYPE MAJOR:MINOR ACCESS'`.
pub fn parse_device_rule(s: &str) -> Result<DeviceRule, EngineError> {
    let bad = || invalid(format!("invalid device cgroup format '{s}'"));
    let parts: Vec<&str> = s.split(' ').collect();
    let [kind, nums, access] = parts.as_slice() else {
        return Err(bad());
    };
    let kind = match *kind {
        "a" | "b" | "c" => kind.chars().next().unwrap_or('a'),
        _ => return Err(bad()),
    };
    let (major, minor) = nums.split_once(':').ok_or_else(bad)?;
    let num = |n: &str| -> Result<Option<i64>, EngineError> {
        if n == "*" {
            Ok(None)
        } else if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) {
            n.parse().map(Some).map_err(|_| bad())
        } else {
            Err(bad())
        }
    };
    if !valid_device_mode(access) {
        return Err(bad());
    }
    Ok(DeviceRule {
        kind,
        major: num(major)?,
        minor: num(minor)?,
        access: access.to_string(),
    })
}

/// `--log-driver` / `--log-opt`: json-file (Docker's default), local (the same json-file
/// files with `local`'s rotation defaults, uncompressed), none.
pub fn parse_log(
    driver: Option<&str>,
    opts: &[String],
) -> Result<(LogConfig, String, BTreeMap<String, String>), EngineError> {
    let driver = driver.filter(|d| !d.is_empty()).unwrap_or("json-file");
    let mut map = BTreeMap::new();
    for o in opts {
        let (k, v) = o.split_once('=').unwrap_or((o.as_str(), ""));
        map.insert(k.to_string(), v.to_string());
    }
    let (mut max_size, mut max_file) = match driver {
        "json-file" => (None, 1),
        "local" => (Some(20 << 20), 5),
        "none" => {
            if !opts.is_empty() {
                return Err(invalid("invalid logging opts for driver none"));
            }
            return Ok((
                LogConfig {
                    enabled: false,
                    ..Default::default()
                },
                driver.to_string(),
                map,
            ));
        }
        other => {
            return Err(invalid(format!(
                "logger: no log driver named '{other}' is registered (berth has json-file, local and none)"
            )))
        }
    };
    for (k, v) in &map {
        match k.as_str() {
            "max-size" => {
                let n = from_human_size(v)
                    .ok_or_else(|| invalid(format!("invalid size: '{v}'")))?;
                if n <= 0 {
                    return Err(invalid("max-size must be a positive number"));
                }
                max_size = Some(n as u64);
            }
            "max-file" => {
                let n: i64 = v.parse().map_err(|_| {
                    invalid(format!("strconv.Atoi: parsing \"{v}\": invalid syntax"))
                })?;
                if n < 1 {
                    return Err(invalid("max-file cannot be less than 1"));
                }
                max_file = n.min(u32::MAX as i64) as u32;
            }
            "compress" => match v.as_str() {
                "false" | "0" => {}
                "true" | "1" => {
                    return Err(invalid(format!(
                        "log opt 'compress={v}' is not supported by berth: rotated logs are kept uncompressed; drop it"
                    )))
                }
                _ => {
                    return Err(invalid(format!(
                        "strconv.ParseBool: parsing \"{v}\": invalid syntax"
                    )))
                }
            },
            "labels" | "labels-regex" | "env" | "env-regex" | "tag" => {
                return Err(invalid(format!(
                    "log opt '{k}' is not supported by berth's {driver} log driver: only max-size and max-file are"
                )))
            }
            other => {
                return Err(invalid(format!(
                    "unknown log opt '{other}' for {driver} log driver"
                )))
            }
        }
    }
    Ok((
        LogConfig {
            enabled: true,
            max_size,
            max_file,
        },
        driver.to_string(),
        map,
    ))
}

/// go-units `FromHumanSize`: decimal units (`10m` is 10,000,000 bytes), as Docker's log opts.
fn from_human_size(s: &str) -> Option<i64> {
    let lower = s.trim().to_ascii_lowercase();
    let body = lower
        .strip_suffix("ib")
        .or_else(|| lower.strip_suffix('b'))
        .unwrap_or(&lower);
    let (num, mult) = match body.chars().last()? {
        'k' => (&body[..body.len() - 1], 1e3),
        'm' => (&body[..body.len() - 1], 1e6),
        'g' => (&body[..body.len() - 1], 1e9),
        't' => (&body[..body.len() - 1], 1e12),
        'p' => (&body[..body.len() - 1], 1e15),
        c if c.is_ascii_digit() => (body, 1.0),
        _ => return None,
    };
    let v: f64 = num.trim().parse().ok()?;
    if !v.is_finite() {
        return None;
    }
    Some((v * mult) as i64)
}

/// `--expose 80`, `80/udp`, `8000-8010/tcp` → `80/tcp` entries.
pub fn parse_expose(e: &str) -> Result<Vec<String>, EngineError> {
    if e.contains(':') {
        return Err(invalid(format!("invalid port format for --expose: {e}")));
    }
    let (port, proto) = e.split_once('/').unwrap_or((e, "tcp"));
    let proto = if proto.is_empty() { "tcp" } else { proto };
    let bad = |why: &str| {
        invalid(format!(
            "invalid range format for --expose: {e}, error: {why}"
        ))
    };
    let p = |x: &str| {
        x.parse::<u16>().map_err(|_| {
            bad(&format!(
                "strconv.ParseUint: parsing \"{x}\": invalid syntax"
            ))
        })
    };
    let (start, end) = match port.split_once('-') {
        Some((a, b)) => (p(a)?, p(b)?),
        None => {
            let v = p(port)?;
            (v, v)
        }
    };
    if end < start {
        return Err(bad(&format!("invalid range specified for port: {port}")));
    }
    Ok((start..=end).map(|n| format!("{n}/{proto}")).collect())
}

impl Engine {
    /// Checks the options and applies them to `run`; returns what `container.json` records.
    /// `network_mode` is the resolved network mode (`host`, `none`, a network).
    pub(crate) fn apply_host_options(
        &mut self,
        h: &HostOptions,
        run: &mut RunOptions,
    ) -> Result<(HostSpec, Vec<(String, String)>), EngineError> {
        let mut spec = HostSpec {
            ipc_mode: "private".into(),
            ..Default::default()
        };
        if let Some(p) = &h.platform {
            check_platform(p)?;
        }
        // --ipc
        match h.ipc.as_deref().unwrap_or("") {
            "" | "private" => {}
            "shareable" => spec.ipc_mode = "shareable".into(),
            "host" => {
                spec.ipc_mode = "host".into();
                run.ipc = NamespaceMode::Host;
                run.dev_shm = DevShm::Bind(PathBuf::from("/dev/shm"));
            }
            "none" => {
                spec.ipc_mode = "none".into();
                run.dev_shm = DevShm::None;
            }
            other => match other.strip_prefix("container:") {
                Some(x) if !x.is_empty() => {
                    let row = self.resolve_container(x)?;
                    spec.ipc_mode = other.to_string();
                    spec.ipc_container = Some(row.id);
                    // Filled in at each start, from the donor's init (see `join_namespaces`).
                    run.ipc = NamespaceMode::Join(PathBuf::from(JOINED_AT_START));
                    run.dev_shm = DevShm::Bind(PathBuf::from("/dev/shm"));
                }
                _ => return Err(invalid("--ipc: invalid IPC mode")),
            },
        }
        if spec.ipc_mode == "shareable" {
            // Docker's design: the container's /dev/shm is a tmpfs on the host (mounted at
            // start in its directory), so containers joining its IPC namespace can share it.
            run.dev_shm = DevShm::Bind(PathBuf::from("shm"));
        }
        // --pid
        match h.pid.as_deref().unwrap_or("") {
            "" => {}
            "host" => {
                spec.pid_mode = "host".into();
                run.pid = NamespaceMode::Host;
            }
            other => match other.strip_prefix("container:") {
                Some(x) if !x.is_empty() => {
                    let row = self.resolve_container(x)?;
                    spec.pid_mode = other.to_string();
                    spec.pid_container = Some(row.id);
                    run.pid = NamespaceMode::Join(PathBuf::from(JOINED_AT_START));
                }
                _ => return Err(invalid("--pid: invalid PID mode")),
            },
        }
        // --uts
        match h.uts.as_deref().unwrap_or("") {
            "" => {}
            "host" => {
                if run.hostname.is_some() {
                    return Err(invalid("Conflicting options: hostname and the UTS mode"));
                }
                if run.domainname.is_some() {
                    return Err(invalid("Conflicting options: domainname and the UTS mode"));
                }
                spec.uts_mode = "host".into();
                run.uts_host = true;
            }
            _ => return Err(invalid("--uts: invalid UTS mode")),
        }
        // --device, --device-cgroup-rule
        spec.device_requests = h.device_requests.clone();
        let cdi: Vec<String> = h
            .devices
            .iter()
            .filter(|d| crate::gpu::cdi::is_qualified_name(d))
            .cloned()
            .collect();
        if !cdi.is_empty() {
            spec.device_requests.push(crate::gpu::DeviceRequest {
                driver: "cdi".into(),
                count: 0,
                device_ids: Some(cdi),
                capabilities: None,
                options: None,
            });
        }
        for d in &h.devices {
            if crate::gpu::cdi::is_qualified_name(d) {
                continue;
            }
            let (src, dst, perms) = parse_device(d)?;
            gather_devices(d, Path::new(&src), &dst, &perms, &mut run.devices)?;
            spec.devices.push(DeviceMapping {
                path_on_host: src,
                path_in_container: dst,
                cgroup_permissions: perms,
            });
        }
        for r in &h.device_cgroup_rules {
            run.device_rules.push(parse_device_rule(r)?);
            spec.device_cgroup_rules.push(r.clone());
        }
        // --sysctl
        for s in &h.sysctls {
            let (k, v) = s.split_once('=').unwrap_or((s.as_str(), ""));
            if !s.contains('=') || !sysctl_allowed(k) {
                return Err(invalid(format!(
                    "invalid argument \"{s}\" for \"--sysctl\" flag: sysctl '{s}' is not whitelisted"
                )));
            }
            if k.starts_with("net.") && run.network == NetworkMode::Host {
                return Err(invalid(format!(
                    "sysctl \"{k}\" is not allowed in the hosts network namespace"
                )));
            }
            if is_ipc_sysctl(k) && run.ipc != NamespaceMode::Private {
                return Err(invalid(format!(
                    "sysctl \"{k}\" is not allowed in the hosts ipc namespace"
                )));
            }
            run.sysctls.insert(k.to_string(), v.to_string());
            spec.sysctls.insert(k.to_string(), v.to_string());
        }
        // --log-driver, --log-opt
        let (log, ty, cfg) = parse_log(h.log_driver.as_deref(), &h.log_opts)?;
        run.log = log;
        spec.log_type = ty;
        spec.log_config = cfg;
        // Resources.
        if let Some(r) = h.memory_reservation.filter(|r| *r != 0) {
            if r < 6 * 1024 * 1024 {
                return Err(invalid("Minimum memory reservation allowed is 6MB"));
            }
            if run.memory.is_some_and(|m| m > 0 && m < r) {
                return Err(invalid(
                    "Minimum memory limit can not be less than memory reservation limit, see usage",
                ));
            }
            run.memory_reservation = Some(r);
        }
        if let Some(s) = h.memory_swappiness.filter(|s| *s != -1) {
            if !(0..=100).contains(&s) {
                return Err(invalid(format!(
                    "Invalid value: {s}, valid memory swappiness range is 0-100"
                )));
            }
            if is_cgroup_v2() {
                return Err(invalid(
                    "--memory-swappiness: cgroup v2 has no per-container swappiness; drop the flag",
                ));
            }
            run.memory_swappiness = Some(s as u64);
            spec.memory_swappiness = Some(s);
        }
        if h.oom_kill_disable && is_cgroup_v2() {
            // Docker discards it there with a warning; refused, so nobody counts on it.
            return Err(invalid(
                "--oom-kill-disable: this host's cgroup v2 has no switch for the OOM killer; drop the flag",
            ));
        }
        run.oom_kill_disable = h.oom_kill_disable;
        if let Some(a) = h.oom_score_adj {
            if !(-1000..=1000).contains(&a) {
                return Err(invalid(format!(
                    "Invalid value {a}, range for oom score adj is [-1000, 1000]"
                )));
            }
            run.oom_score_adj = Some(a as i32);
        }
        if let Some(p) = h.cpu_period.filter(|p| *p != 0) {
            if run.cpus.is_some() {
                return Err(invalid(
                    "Conflicting options: Nano CPUs and CPU Period cannot both be set",
                ));
            }
            if !(1000..=1_000_000).contains(&p) {
                return Err(invalid(
                    "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)",
                ));
            }
            run.cpu_period = Some(p as u64);
        }
        if let Some(q) = h.cpu_quota.filter(|q| *q != 0) {
            if run.cpus.is_some() {
                return Err(invalid(
                    "Conflicting options: Nano CPUs and CPU Quota cannot both be set",
                ));
            }
            if q > 0 && q < 1000 {
                return Err(invalid(
                    "CPU cfs quota can not be less than 1ms (i.e. 1000)",
                ));
            }
            run.cpu_quota = Some(q);
        }
        // --expose
        for e in &h.expose {
            for p in parse_expose(e)? {
                if !spec.exposed.contains(&p) {
                    spec.exposed.push(p);
                }
            }
        }
        // --volumes-from
        let mut volumes = Vec::new();
        for v in &h.volumes_from {
            let (name, mode) = match v.split_once(':') {
                Some((n, m)) => (n, Some(m)),
                None => (v.as_str(), None),
            };
            let readonly = match mode {
                None | Some("") => None,
                Some("ro") => Some(true),
                Some("rw") => Some(false),
                Some(m) if m.split(',').all(|x| matches!(x, "z" | "Z" | "rw")) => None,
                Some(m) => return Err(invalid(format!("invalid mode: {m}"))),
            };
            let row = self.resolve_container(name)?;
            let donor = self.spec_of(&row.id)?;
            for m in &donor.run.mounts {
                let m = match m {
                    MountSpec::Bind {
                        source,
                        target,
                        readonly: ro,
                    } => MountSpec::Bind {
                        source: source.clone(),
                        target: target.clone(),
                        readonly: readonly.unwrap_or(*ro),
                    },
                    MountSpec::Volume {
                        source,
                        target,
                        readonly: ro,
                    } => {
                        if let Some((n, _)) = donor.volumes.iter().find(|(_, t)| t == target) {
                            volumes.push((n.clone(), target.clone()));
                        }
                        MountSpec::Volume {
                            source: source.clone(),
                            target: target.clone(),
                            readonly: readonly.unwrap_or(*ro),
                        }
                    }
                    // Docker shares volumes and binds, not tmpfs mounts.
                    MountSpec::Tmpfs { .. } => continue,
                };
                if !run.mounts.iter().any(|x| x.target() == m.target()) {
                    run.mounts.push(m);
                }
            }
            spec.volumes_from.push(v.clone());
        }
        spec.container_id_file = h.container_id_file.clone().unwrap_or_default();
        Ok((spec, volumes))
    }

    /// Before a start: points `container:X` namespaces (and a shared `/dev/shm`) at the
    /// donor's running init, and mounts a shareable container's `/dev/shm` on the host.
    pub(crate) fn join_namespaces(
        &mut self,
        dir: &Path,
        spec: &ContainerSpec,
    ) -> Result<(), EngineError> {
        let h = &spec.host;
        let mut joins: Vec<(&str, PathBuf)> = Vec::new();
        let mut shm: Option<PathBuf> = None;
        if let Some(x) = &h.ipc_container {
            let msg = format!("can't join IPC of container {x}: ");
            let donor = self
                .spec_of(x)
                .map_err(|_| invalid(format!("{msg}container does not exist")))?;
            let live = self.container_live(x)?;
            if !live.running || live.pid <= 0 {
                return Err(EngineError::Conflict(format!(
                    "{msg}container is not running"
                )));
            }
            match donor.host.ipc_mode.as_str() {
                "shareable" => shm = Some(self.container_dir_of(x).join("shm")),
                "host" => shm = Some(PathBuf::from("/dev/shm")),
                _ => {
                    return Err(EngineError::Conflict(format!(
                    "{msg}non-shareable IPC (hint: use IpcMode:shareable for the donor container)"
                )))
                }
            }
            joins.push(("ipc", PathBuf::from(format!("/proc/{}/ns/ipc", live.pid))));
        }
        if let Some(x) = &h.pid_container {
            let live = self.container_live(x)?;
            if !live.running || live.pid <= 0 {
                return Err(EngineError::Conflict(format!(
                    "cannot join PID of a non running container: {x}"
                )));
            }
            joins.push(("pid", PathBuf::from(format!("/proc/{}/ns/pid", live.pid))));
        }
        if let Some(x) = &h.uts_container {
            let live = self.container_live(x)?;
            if !live.running || live.pid <= 0 {
                return Err(EngineError::Conflict(format!(
                    "cannot join UTS of a non running container: {x}"
                )));
            }
            joins.push(("uts", PathBuf::from(format!("/proc/{}/ns/uts", live.pid))));
        }
        if let Some(x) = Self::network_donor(&spec.network_mode) {
            let live = self.container_live(x)?;
            if !live.running || live.pid <= 0 {
                return Err(EngineError::Conflict(format!(
                    "cannot join network of a non running container: {x}"
                )));
            }
            joins.push((
                "network",
                PathBuf::from(format!("/proc/{}/ns/net", live.pid)),
            ));
        }
        if h.ipc_mode == "shareable" {
            let size = spec.run.shm_size.unwrap_or(64 << 20);
            berth_runtime::mount_shm(dir, size).map_err(EngineError::Runtime)?;
            shm = Some(dir.join("shm"));
        }
        if joins.is_empty() && shm.is_none() {
            return Ok(());
        }
        berth_runtime::set_joined_namespaces(dir, &joins, shm.as_deref())
            .map_err(EngineError::Runtime)
    }
}

/// Writes these options into `inspect`'s `HostConfig` and `Config`.
pub(crate) fn fill_inspect(spec: &ContainerSpec, v: &mut Value) {
    let h = &spec.host;
    let run = &spec.run;
    let hc = &mut v["HostConfig"];
    hc["IpcMode"] = json!(if h.ipc_mode.is_empty() {
        "private"
    } else {
        &h.ipc_mode
    });
    hc["PidMode"] = json!(h.pid_mode);
    hc["UTSMode"] = json!(h.uts_mode);
    hc["Devices"] = json!(h.devices);
    hc["DeviceRequests"] = if h.device_requests.is_empty() {
        Value::Null
    } else {
        json!(h.device_requests)
    };
    hc["DeviceCgroupRules"] = if h.device_cgroup_rules.is_empty() {
        Value::Null
    } else {
        json!(h.device_cgroup_rules)
    };
    if !h.sysctls.is_empty() {
        hc["Sysctls"] = json!(h.sysctls);
    }
    hc["LogConfig"] = json!({
        "Type": if h.log_type.is_empty() { "json-file" } else { &h.log_type },
        "Config": h.log_config,
    });
    hc["VolumesFrom"] = if h.volumes_from.is_empty() {
        Value::Null
    } else {
        json!(h.volumes_from)
    };
    hc["ContainerIDFile"] = json!(h.container_id_file);
    hc["MemoryReservation"] = json!(run.memory_reservation.unwrap_or(0));
    hc["MemorySwappiness"] = json!(h.memory_swappiness);
    hc["OomKillDisable"] = json!(run.oom_kill_disable);
    hc["OomScoreAdj"] = json!(run.oom_score_adj.unwrap_or(0));
    hc["CpuPeriod"] = json!(run.cpu_period.unwrap_or(0));
    hc["CpuQuota"] = json!(run.cpu_quota.unwrap_or(0));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_parse_like_docker() {
        assert_eq!(
            parse_device("/dev/fuse").unwrap(),
            ("/dev/fuse".into(), "/dev/fuse".into(), "rwm".into())
        );
        assert_eq!(
            parse_device("/dev/fuse:r").unwrap(),
            ("/dev/fuse".into(), "/dev/fuse".into(), "r".into())
        );
        assert_eq!(
            parse_device("/dev/null:/dev/x:rw").unwrap(),
            ("/dev/null".into(), "/dev/x".into(), "rw".into())
        );
        assert!(parse_device("/dev/null:/dev/x:rwz").is_err());
        assert!(parse_device("dev/null").is_err());
        assert!(parse_device("/a:/b:r:x").is_err());
    }

    #[test]
    fn device_rules() {
        let r = parse_device_rule("c 10:* rwm").unwrap();
        assert_eq!((r.kind, r.major, r.minor), ('c', Some(10), None));
        for bad in ["c 10 rwm", "x 1:2 r", "c 1:2 rwx", "c 1:2", "c a:2 r"] {
            assert!(parse_device_rule(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn log_options() {
        let (c, t, _) = parse_log(None, &[]).unwrap();
        assert_eq!(
            (c.enabled, c.max_size, c.max_file, t.as_str()),
            (true, None, 1, "json-file")
        );
        let (c, _, m) = parse_log(
            Some("json-file"),
            &["max-size=10k".into(), "max-file=3".into()],
        )
        .unwrap();
        assert_eq!((c.max_size, c.max_file), (Some(10_000), 3));
        assert_eq!(m["max-size"], "10k");
        let (c, _, _) = parse_log(Some("local"), &[]).unwrap();
        assert_eq!((c.max_size, c.max_file), (Some(20 << 20), 5));
        assert!(!parse_log(Some("none"), &[]).unwrap().0.enabled);
        for (d, o, msg) in [
            (
                "none",
                "max-size=1m",
                "invalid logging opts for driver none",
            ),
            ("json-file", "max-file=0", "max-file cannot be less than 1"),
            (
                "json-file",
                "max-size=0",
                "max-size must be a positive number",
            ),
            ("json-file", "max-size=x", "invalid size: 'x'"),
            (
                "json-file",
                "foo=1",
                "unknown log opt 'foo' for json-file log driver",
            ),
            ("syslog", "", "no log driver named 'syslog'"),
        ] {
            let opts: Vec<String> = if o.is_empty() { vec![] } else { vec![o.into()] };
            let e = parse_log(Some(d), &opts).unwrap_err().to_string();
            assert!(e.contains(msg), "{d} {o}: {e}");
        }
    }

    #[test]
    fn expose_ranges() {
        assert_eq!(parse_expose("80").unwrap(), vec!["80/tcp"]);
        assert_eq!(parse_expose("53/udp").unwrap(), vec!["53/udp"]);
        assert_eq!(parse_expose("8000-8002").unwrap().len(), 3);
        assert!(parse_expose("1:2").is_err());
        assert!(parse_expose("x").is_err());
        assert!(parse_expose("9-8").is_err());
    }

    #[test]
    fn platforms() {
        let (os, arch) = host_platform();
        check_platform(&format!("{os}/{arch}")).unwrap();
        check_platform("linux").unwrap();
        assert!(check_platform("windows/amd64").is_err());
        assert!(check_platform("linux/s390x").is_err() || arch == "s390x");
    }
}
