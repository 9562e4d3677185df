//! Generates the OCI runtime-spec `config.json` for a container, the way Docker does.

use crate::config::{
    DevShm, ImageRuntimeConfig, MountSpec, NamespaceMode, NetworkMode, RunOptions,
};
use crate::paths;
use crate::{Error, Result};
use oci_spec::runtime::Spec;
use serde_json::{json, Value};
use std::path::Path;

/// `PATH` when neither the image nor the user sets one.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Docker's default capability set.
pub const DEFAULT_CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// Every capability the kernel knows (for `--privileged` and `--cap-add ALL`).
pub const ALL_CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// Paths the runtime creates in a container's root filesystem as mount points when the image
/// lacks them (besides the destinations of the container's own mounts). They are not the
/// user's changes: `diff`, `commit` and `build` leave them out while they are still empty.
pub const MOUNT_POINT_STUBS: &[&str] = &[
    "/proc",
    "/sys",
    "/dev",
    "/dev/pts",
    "/dev/shm",
    "/dev/mqueue",
    "/sys/fs/cgroup",
    "/etc/resolv.conf",
    "/etc/hosts",
    "/etc/hostname",
    "/sbin/docker-init",
    "/.dockerenv",
];

/// Paths Docker hides from containers (a null device or empty read-only tmpfs over them).
pub const MASKED_PATHS: &[&str] = &[
    "/proc/asound",
    "/proc/acpi",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// Paths Docker makes read-only.
pub const READONLY_PATHS: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// Where `--init`'s binary is mounted.
pub const INIT_PATH: &str = "/sbin/docker-init";

/// The container's user, resolved against the image's `/etc/passwd` and `/etc/group`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedUser {
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    pub home: Option<String>,
}

fn read_db(rootfs: &Path, file: &str) -> Vec<Vec<String>> {
    let Ok(p) = paths::host_path(rootfs, file) else {
        return Vec::new();
    };
    std::fs::read_to_string(p)
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| l.split(':').map(str::to_string).collect())
        .collect()
}

/// Resolves Docker's `--user` syntax (`name`, `uid`, `name:group`, `uid:gid`) inside `rootfs`.
pub fn resolve_user(rootfs: &Path, user: &str, group_add: &[String]) -> Result<ResolvedUser> {
    let passwd = read_db(rootfs, "/etc/passwd");
    let groups = read_db(rootfs, "/etc/group");
    let (u, g) = match user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (user, None),
    };
    let u = if u.is_empty() { "0" } else { u };
    let entry = passwd
        .iter()
        .find(|e| e.len() >= 3 && (e[0] == u || (u.parse::<u32>().is_ok() && e[2] == u)));
    let uid: u32 = match u.parse() {
        Ok(n) => n,
        Err(_) => entry.and_then(|e| e.get(2)?.parse().ok()).ok_or_else(|| {
            Error::Invalid(format!(
                "unable to find user {u}: no matching entries in passwd file"
            ))
        })?,
    };
    let name = entry.map(|e| e[0].clone());
    let home = entry.and_then(|e| e.get(5).cloned());
    let find_group = |g: &str| -> Result<u32> {
        if let Ok(n) = g.parse() {
            return Ok(n);
        }
        groups
            .iter()
            .find(|e| !e.is_empty() && e[0] == g)
            .and_then(|e| e.get(2)?.parse().ok())
            .ok_or_else(|| {
                Error::Invalid(format!(
                    "unable to find group {g}: no matching entries in group file"
                ))
            })
    };
    let gid = match g {
        Some(g) if !g.is_empty() => find_group(g)?,
        _ => entry.and_then(|e| e.get(3)?.parse().ok()).unwrap_or(0),
    };
    let mut additional = Vec::new();
    if g.is_none() {
        // As in Docker, the primary group is among the supplementary ones (`id` lists it in
        // `groups=`), followed by the groups that name the user.
        additional.push(gid);
        if let Some(name) = &name {
            for e in &groups {
                if e.len() >= 4 && e[3].split(',').any(|m| m == name) {
                    if let Ok(n) = e[2].parse::<u32>() {
                        if n != gid && !additional.contains(&n) {
                            additional.push(n);
                        }
                    }
                }
            }
        }
    }
    for g in group_add {
        let n = find_group(g)?;
        if !additional.contains(&n) {
            additional.push(n);
        }
    }
    Ok(ResolvedUser {
        uid,
        gid,
        additional_gids: additional,
        home,
    })
}

fn norm_cap(c: &str) -> String {
    let up = c.trim().to_ascii_uppercase();
    if up.starts_with("CAP_") || up == "ALL" {
        up
    } else {
        format!("CAP_{up}")
    }
}

/// The capabilities this host can hand out: the ones in our own bounding set (`ALL_CAPS` is
/// in capability-number order). Unknown (no /proc): all of them.
pub(crate) fn host_caps() -> Vec<&'static str> {
    let bounding = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapBnd:"))
                .and_then(|h| u64::from_str_radix(h.trim(), 16).ok())
        })
        .unwrap_or(u64::MAX);
    ALL_CAPS
        .iter()
        .enumerate()
        .filter(|(i, _)| bounding & (1u64 << i) != 0)
        .map(|(_, c)| *c)
        .collect()
}

/// The capability set after `--cap-add`/`--cap-drop` (Docker's order: drops, then adds).
///
/// `--privileged` and `--cap-add ALL` mean every capability the host has: Docker asks for
/// every capability the kernel knows, which fails every start where root itself lacks one (a
/// host without CAP_SYS_RESOURCE). A capability added by name that the host lacks is refused
/// with a message naming it, and a default one the host lacks is left out.
pub fn capabilities(opts: &RunOptions) -> Result<Vec<String>> {
    let host = host_caps();
    if opts.privileged {
        return Ok(host.iter().map(|s| s.to_string()).collect());
    }
    let adds: Vec<String> = opts.cap_add.iter().map(|c| norm_cap(c)).collect();
    let drops: Vec<String> = opts.cap_drop.iter().map(|c| norm_cap(c)).collect();
    for c in adds.iter().chain(drops.iter()) {
        if c != "ALL" && !ALL_CAPS.contains(&c.as_str()) {
            return Err(Error::Invalid(format!("unknown capability: \"{c}\"")));
        }
    }
    let mut caps: Vec<String> = if drops.iter().any(|c| c == "ALL") {
        Vec::new()
    } else {
        DEFAULT_CAPS
            .iter()
            .map(|s| s.to_string())
            .filter(|c| !drops.contains(c))
            .collect()
    };
    if adds.iter().any(|c| c == "ALL") {
        caps = host.iter().map(|s| s.to_string()).collect();
        caps.retain(|c| !drops.contains(c));
    } else {
        for c in adds {
            if !host.contains(&c.as_str()) {
                return Err(Error::Invalid(format!(
                    "capability {c} is not in this host's bounding set: berth itself runs without it, so no container can have it"
                )));
            }
            if !caps.contains(&c) {
                caps.push(c);
            }
        }
    }
    caps.retain(|c| host.contains(&c.as_str()));
    Ok(caps)
}

/// Whether `--ulimit NAME=…` names a resource the kernel has (`nofile`, `nproc`, …).
pub fn rlimit_known(name: &str) -> bool {
    rlimit_resource(name).is_some()
}

fn rlimit_resource(name: &str) -> Option<(&'static str, libc::__rlimit_resource_t)> {
    Some(match name {
        "core" => ("RLIMIT_CORE", libc::RLIMIT_CORE),
        "cpu" => ("RLIMIT_CPU", libc::RLIMIT_CPU),
        "data" => ("RLIMIT_DATA", libc::RLIMIT_DATA),
        "fsize" => ("RLIMIT_FSIZE", libc::RLIMIT_FSIZE),
        "locks" => ("RLIMIT_LOCKS", libc::RLIMIT_LOCKS),
        "memlock" => ("RLIMIT_MEMLOCK", libc::RLIMIT_MEMLOCK),
        "msgqueue" => ("RLIMIT_MSGQUEUE", libc::RLIMIT_MSGQUEUE),
        "nice" => ("RLIMIT_NICE", libc::RLIMIT_NICE),
        "nofile" => ("RLIMIT_NOFILE", libc::RLIMIT_NOFILE),
        "nproc" => ("RLIMIT_NPROC", libc::RLIMIT_NPROC),
        "rss" => ("RLIMIT_RSS", libc::RLIMIT_RSS),
        "rtprio" => ("RLIMIT_RTPRIO", libc::RLIMIT_RTPRIO),
        "rttime" => ("RLIMIT_RTTIME", libc::RLIMIT_RTTIME),
        "sigpending" => ("RLIMIT_SIGPENDING", libc::RLIMIT_SIGPENDING),
        "stack" => ("RLIMIT_STACK", libc::RLIMIT_STACK),
        "as" => ("RLIMIT_AS", libc::RLIMIT_AS),
        _ => return None,
    })
}

/// The host's hard limit for a resource (`u64::MAX` for unlimited).
pub fn host_hard_limit(res: libc::__rlimit_resource_t) -> u64 {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we own.
    if unsafe { libc::getrlimit(res, &mut r) } != 0 {
        return u64::MAX;
    }
    r.rlim_max
}

/// The rlimits for the container: Docker's default `nofile` (1048576) plus `--ulimit`s, each
/// clamped to the host's hard limit (an unprivileged-resource root cannot raise them).
pub fn rlimits(opts: &RunOptions) -> Result<Vec<Value>> {
    let mut wanted: Vec<(String, u64, u64)> = vec![("nofile".into(), 1_048_576, 1_048_576)];
    for u in &opts.ulimits {
        if rlimit_resource(&u.name).is_none() {
            return Err(Error::Invalid(format!("invalid ulimit type: {}", u.name)));
        }
        if u.soft > u.hard {
            return Err(Error::Invalid(format!(
                "ulimit soft limit must be less than or equal to hard limit: {} > {}",
                u.soft, u.hard
            )));
        }
        wanted.retain(|w| w.0 != u.name);
        wanted.push((u.name.clone(), u.soft, u.hard));
    }
    Ok(wanted
        .into_iter()
        .map(|(name, soft, hard)| {
            let (ty, res) = rlimit_resource(&name).expect("checked");
            let max = host_hard_limit(res);
            json!({ "type": ty, "soft": soft.min(max), "hard": hard.min(max) })
        })
        .collect())
}

/// Merges `KEY=value` lists: later entries replace earlier ones with the same key.
/// An exec's environment: the container's, then the exec's own; with a terminal, `TERM=xterm`
/// unless one of them sets TERM (Docker's exec does the same, so top/vim/less/clear work in a
/// container that was started without `-t`).
pub fn exec_env(container: &mut Vec<String>, extra: &[String], tty: bool) {
    merge_env(container, extra);
    if tty && !container.iter().any(|e| e.starts_with("TERM=")) {
        container.push("TERM=xterm".into());
    }
}

pub fn merge_env(base: &mut Vec<String>, extra: &[String]) {
    for e in extra {
        let key = e.split('=').next().unwrap_or(e);
        if let Some(slot) = base.iter_mut().find(|b| b.split('=').next() == Some(key)) {
            *slot = e.clone();
        } else {
            base.push(e.clone());
        }
    }
}

/// The process arguments: entrypoint + cmd with Docker's override rules.
pub fn process_args(image: &ImageRuntimeConfig, opts: &RunOptions) -> Result<Vec<String>> {
    let (entry, cmd) = match &opts.entrypoint {
        Some(e) => (e.clone(), opts.cmd.clone()),
        None => {
            let cmd = if opts.cmd.is_empty() {
                image.cmd.clone().unwrap_or_default()
            } else {
                opts.cmd.clone()
            };
            (image.entrypoint.clone().unwrap_or_default(), cmd)
        }
    };
    let mut args = entry;
    args.extend(cmd);
    if args.is_empty() {
        return Err(Error::Invalid("no command specified".into()));
    }
    Ok(args)
}

/// The hostname Docker gives a container: `--hostname`, the host's with `--network host` or
/// `--uts host`, else the first 12 characters of the id.
pub fn hostname(id: &str, opts: &RunOptions) -> String {
    if let Some(h) = &opts.hostname {
        return h.clone();
    }
    if opts.network == NetworkMode::Host || opts.uts_host {
        if let Ok(h) = nix::unistd::gethostname() {
            return h.to_string_lossy().to_string();
        }
    }
    id.chars().take(12).collect()
}

/// Everything [`generate`] needs.
pub struct SpecInput<'a> {
    /// Container id (also names the cgroup `/berth/<id>`).
    pub id: &'a str,
    /// The container's root filesystem on the host (mounted), used to resolve users and mount
    /// targets; the spec itself points at `rootfs` relative to the bundle.
    pub rootfs: &'a Path,
    pub image: &'a ImageRuntimeConfig,
    pub opts: &'a RunOptions,
    /// Cgroup parent (default `/berth`).
    pub cgroup_parent: &'a str,
    /// Create missing workdir / mount targets inside the rootfs (true when preparing a bundle).
    pub create_paths: bool,
}

fn mount(dest: &str, ty: &str, src: &str, options: &[&str]) -> Value {
    json!({ "destination": dest, "type": ty, "source": src, "options": options })
}

/// The memory, cpu and pids parts of `linux.resources` for the options (what `update`
/// changes on a live container too).
pub fn resources_of(opts: &RunOptions) -> Result<serde_json::Map<String, Value>> {
    let mut resources = serde_json::Map::new();
    let mut memory = serde_json::Map::new();
    // The limits were checked by the engine (`containers/validate.rs`, Docker's rules).
    if let Some(m) = opts.memory.filter(|m| *m > 0) {
        memory.insert("limit".into(), json!(m));
        if crate::cgroup::swap_supported() {
            let swap = match opts.memory_swap {
                Some(-1) => -1,
                Some(s) if s > 0 => s,
                _ => m * 2,
            };
            memory.insert("swap".into(), json!(swap));
        }
    }
    if let Some(r) = opts.memory_reservation.filter(|r| *r > 0) {
        memory.insert("reservation".into(), json!(r));
    }
    if let Some(s) = opts.memory_swappiness {
        memory.insert("swappiness".into(), json!(s));
    }
    if opts.oom_kill_disable {
        memory.insert("disableOOMKiller".into(), json!(true));
    }
    if !memory.is_empty() {
        resources.insert("memory".into(), Value::Object(memory));
    }
    let mut cpu = serde_json::Map::new();
    if let Some(c) = opts.cpus.filter(|c| *c > 0.0) {
        let period: u64 = 100_000;
        cpu.insert("period".into(), json!(period));
        cpu.insert("quota".into(), json!((c * period as f64).round() as i64));
    }
    if let Some(p) = opts.cpu_period.filter(|p| *p > 0) {
        cpu.insert("period".into(), json!(p));
    }
    if let Some(q) = opts.cpu_quota.filter(|q| *q != 0) {
        cpu.insert("quota".into(), json!(q.max(-1)));
    }
    if let Some(s) = opts.cpu_shares.filter(|s| *s > 0) {
        cpu.insert("shares".into(), json!(s));
    }
    if let Some(s) = &opts.cpuset_cpus {
        cpu.insert("cpus".into(), json!(s));
    }
    if let Some(s) = &opts.cpuset_mems {
        cpu.insert("mems".into(), json!(s));
    }
    if !cpu.is_empty() {
        resources.insert("cpu".into(), Value::Object(cpu));
    }
    if let Some(p) = opts.pids_limit.filter(|p| *p != 0) {
        resources.insert(
            "pids".into(),
            json!({ "limit": if p < 0 { -1 } else { p } }),
        );
    }

    Ok(resources)
}

/// Generates the runtime spec.
pub fn generate(input: &SpecInput<'_>) -> Result<Spec> {
    Ok(serde_json::from_value(generate_json(input)?)?)
}

/// The mounts of device requests (CDI `mounts`): binds unless a type is given; the mount
/// point is made in the rootfs like a user's bind's.
fn device_mounts(input: &SpecInput<'_>, mounts: &mut Vec<Value>) -> Result<()> {
    for m in &input.opts.device_edits.mounts {
        let target = &m.container_path;
        if !target.starts_with('/') {
            return Err(Error::Invalid(format!(
                "device mount: container path must be absolute: {target}"
            )));
        }
        let kind = if m.kind.is_empty() { "bind" } else { &m.kind };
        let mut options = m.options.clone();
        if kind == "bind" {
            let md = m.host_path.metadata().map_err(|e| {
                Error::Invalid(format!("device mount: {}: {e}", m.host_path.display()))
            })?;
            if !options.iter().any(|o| o == "bind" || o == "rbind") {
                options.push("rbind".into());
            }
            let dest = if input.create_paths {
                if md.is_dir() {
                    paths::mkdir_all_in_root(input.rootfs, target)?
                } else {
                    paths::touch_in_root(input.rootfs, target)?
                }
            } else {
                paths::resolve_in_root(input.rootfs, target)?
            };
            mounts.push(json!({"destination": dest, "type": "bind",
                "source": m.host_path, "options": options}));
        } else {
            let dest = if input.create_paths {
                paths::mkdir_all_in_root(input.rootfs, target)?
            } else {
                paths::resolve_in_root(input.rootfs, target)?
            };
            mounts.push(json!({"destination": dest, "type": kind,
                "source": m.host_path, "options": options}));
        }
    }
    Ok(())
}

/// Generates the runtime spec as JSON.
pub fn generate_json(input: &SpecInput<'_>) -> Result<Value> {
    let SpecInput {
        id,
        rootfs,
        image,
        opts,
        ..
    } = *input;
    let caps = capabilities(opts)?;
    let user_str = opts.user.clone().unwrap_or_else(|| image.user.clone());
    let user = resolve_user(rootfs, &user_str, &opts.group_add)?;

    // Environment: PATH, HOSTNAME, TERM, then image env, then user env.
    let host = hostname(id, opts);
    let mut env = vec![format!("PATH={DEFAULT_PATH}"), format!("HOSTNAME={host}")];
    if opts.tty {
        env.push("TERM=xterm".into());
    }
    merge_env(&mut env, &image.env);
    merge_env(&mut env, &opts.env);
    merge_env(&mut env, &opts.device_edits.env);
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        env.push(format!(
            "HOME={}",
            user.home
                .clone()
                .filter(|h| !h.is_empty())
                .unwrap_or_else(|| "/".into())
        ));
    }

    // Working directory (Docker creates it). Never let it point into /proc: a
    // `/proc/self/fd/N` cwd is how runtimes leak host directories (CVE-2024-21626).
    let wd = opts
        .workdir
        .clone()
        .filter(|w| !w.is_empty())
        .unwrap_or_else(|| image.working_dir.clone());
    let wd = if wd.is_empty() { "/".to_string() } else { wd };
    if !wd.starts_with('/') {
        return Err(Error::Invalid(format!(
            "the working directory '{wd}' is invalid, it needs to be an absolute path"
        )));
    }
    let mut cwd = paths::clean(&wd);
    if cwd == "/proc" || cwd.starts_with("/proc/") || cwd == "/sys" || cwd.starts_with("/sys/") {
        return Err(Error::Invalid(format!(
            "the working directory '{wd}' is inside /proc or /sys, which is not allowed"
        )));
    }
    if input.create_paths {
        cwd = paths::mkdir_all_in_root(rootfs, &cwd)?;
        if let Ok(h) = paths::host_path(rootfs, &cwd) {
            let _ = nix::unistd::chown(&h, None, None);
        }
    }

    let mut args = process_args(image, opts)?;
    if opts.init.is_some() {
        let mut a = vec![INIT_PATH.to_string(), "--".to_string()];
        a.append(&mut args);
        args = a;
    }

    let (eff, perm): (Vec<String>, Vec<String>) = if user.uid == 0 {
        (caps.clone(), caps.clone())
    } else {
        (Vec::new(), Vec::new())
    };
    let mut process = json!({
        "terminal": opts.tty,
        "user": { "uid": user.uid, "gid": user.gid },
        "args": args,
        "env": env,
        "cwd": cwd,
        "capabilities": { "bounding": caps, "effective": eff, "permitted": perm },
        "rlimits": rlimits(opts)?,
    });
    // Only written when set: libcontainer treats an explicit `false` like "set" and would load
    // the seccomp filter after dropping CAP_SYS_ADMIN, which fails.
    if opts.no_new_privileges {
        process["noNewPrivileges"] = json!(true);
    }
    let mut gids = user.additional_gids.clone();
    for g in &opts.device_edits.additional_gids {
        if !gids.contains(g) {
            gids.push(*g);
        }
    }
    if !gids.is_empty() {
        process["user"]["additionalGids"] = json!(gids);
    }
    if let Some(adj) = opts.oom_score_adj {
        process["oomScoreAdj"] = json!(adj);
    }

    // Mounts.
    let shm = format!("size={}", opts.shm_size.unwrap_or(64 << 20));
    let sys_opts: &[&str] = if opts.privileged {
        &["nosuid", "noexec", "nodev", "rw"]
    } else {
        &["nosuid", "noexec", "nodev", "ro"]
    };
    let cg_opts: &[&str] = if opts.privileged {
        &["nosuid", "noexec", "nodev", "relatime", "rw"]
    } else {
        &["nosuid", "noexec", "nodev", "relatime", "ro"]
    };
    let mut mounts = vec![
        mount("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"]),
        mount(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        ),
        mount(
            "/dev/pts",
            "devpts",
            "devpts",
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
        ),
        mount("/sys", "sysfs", "sysfs", sys_opts),
        mount("/sys/fs/cgroup", "cgroup", "cgroup", cg_opts),
        mount(
            "/dev/mqueue",
            "mqueue",
            "mqueue",
            &["nosuid", "noexec", "nodev"],
        ),
    ];
    match &opts.dev_shm {
        DevShm::Tmpfs => mounts.push(mount(
            "/dev/shm",
            "tmpfs",
            "shm",
            &["nosuid", "noexec", "nodev", "mode=1777", &shm],
        )),
        DevShm::None => {}
        DevShm::Bind(src) => mounts.push(json!({"destination": "/dev/shm", "type": "bind",
            "source": src, "options": ["rbind", "rprivate", "nosuid", "noexec", "nodev"]})),
    }
    if let Some(init) = &opts.init {
        let dest = if input.create_paths {
            paths::touch_in_root(rootfs, INIT_PATH)?
        } else {
            INIT_PATH.to_string()
        };
        mounts.push(json!({"destination": dest, "type": "bind", "source": init, "options": ["rbind", "ro", "nosuid", "nodev"]}));
    }
    for m in &opts.mounts {
        let target = m.target();
        if !target.starts_with('/') {
            return Err(Error::Invalid(format!(
                "invalid mount config: mount path must be absolute: {target}"
            )));
        }
        let is_file = match m {
            MountSpec::Bind { source, .. } => {
                source.metadata().map(|md| !md.is_dir()).unwrap_or(false)
            }
            _ => false,
        };
        if let MountSpec::Bind { source, .. } = m {
            if !source.exists() {
                return Err(Error::Invalid(format!(
                    "invalid mount config for type \"bind\": bind source path does not exist: {}",
                    source.display()
                )));
            }
        }
        let dest = if input.create_paths {
            if is_file {
                paths::touch_in_root(rootfs, target)?
            } else {
                paths::mkdir_all_in_root(rootfs, target)?
            }
        } else {
            paths::resolve_in_root(rootfs, target)?
        };
        mounts.push(match m {
            MountSpec::Bind {
                source, readonly, ..
            }
            | MountSpec::Volume {
                source, readonly, ..
            } => {
                let mut o = vec!["rbind", "rprivate"];
                o.push(if *readonly { "ro" } else { "rw" });
                json!({"destination": dest, "type": "bind", "source": source, "options": o})
            }
            MountSpec::Tmpfs {
                size,
                mode,
                options,
                ..
            } => {
                let mut o: Vec<String> = vec!["nosuid".into(), "nodev".into(), "noexec".into()];
                if let Some(s) = size {
                    o.push(format!("size={s}"));
                }
                if let Some(md) = mode {
                    o.push(format!("mode={md:o}"));
                }
                o.extend(options.iter().cloned());
                json!({"destination": dest, "type": "tmpfs", "source": "tmpfs", "options": o})
            }
        });
    }

    device_mounts(input, &mut mounts)?;

    // Namespaces.
    let mut namespaces = Vec::new();
    for (ty, mode) in [("pid", &opts.pid), ("ipc", &opts.ipc)] {
        match mode {
            NamespaceMode::Private => namespaces.push(json!({ "type": ty })),
            NamespaceMode::Host => {}
            NamespaceMode::Join(p) => namespaces.push(json!({ "type": ty, "path": p })),
        }
    }
    if !opts.uts_host {
        namespaces.push(json!({"type": "uts"}));
    }
    namespaces.push(json!({"type": "mount"}));
    match &opts.network {
        NetworkMode::None => namespaces.push(json!({"type": "network"})),
        NetworkMode::Host => {}
        NetworkMode::Path(p) => namespaces.push(json!({"type": "network", "path": p})),
    }
    namespaces.push(json!({"type": "cgroup"}));

    // Resources.
    let mut devices = vec![json!({"allow": false, "access": "rwm"})];
    if opts.privileged {
        devices = vec![json!({"allow": true, "access": "rwm"})];
    } else {
        devices.push(json!({"allow": true, "type": "c", "access": "m"}));
        devices.push(json!({"allow": true, "type": "b", "access": "m"}));
        for (major, minor) in [
            (1, 3),
            (1, 8),
            (1, 7),
            (5, 0),
            (1, 5),
            (1, 9),
            (5, 1),
            (5, 2),
        ] {
            devices.push(json!({"allow": true, "type": "c", "major": major, "minor": minor, "access": "rwm"}));
        }
        devices.push(json!({"allow": true, "type": "c", "major": 136, "access": "rwm"}));
        devices
            .push(json!({"allow": true, "type": "c", "major": 10, "minor": 200, "access": "rwm"}));
        for d in &opts.devices {
            devices.push(
                json!({"allow": true, "type": d.kind.to_string(), "major": d.major,
                "minor": d.minor, "access": d.access}),
            );
        }
        for r in &opts.device_rules {
            let mut rule = json!({"allow": true, "type": r.kind.to_string(), "access": r.access});
            if let Some(m) = r.major {
                rule["major"] = json!(m);
            }
            if let Some(m) = r.minor {
                rule["minor"] = json!(m);
            }
            devices.push(rule);
        }
    }
    let mut resources = json!({ "devices": devices });
    for (k, v) in resources_of(opts)? {
        resources[k] = v;
    }
    let mut linux = json!({
        "namespaces": namespaces,
        "resources": resources,
        "cgroupsPath": format!("{}/{}", input.cgroup_parent.trim_end_matches('/'), id),
    });
    if !opts.privileged {
        linux["maskedPaths"] = json!(MASKED_PATHS);
        linux["readonlyPaths"] = json!(READONLY_PATHS);
        if !opts.seccomp_unconfined {
            linux["seccomp"] = crate::seccomp::default_profile(
                crate::seccomp::host_arch(),
                &caps,
                crate::seccomp::kernel_version(),
            );
        }
    }
    if !opts.sysctls.is_empty() {
        linux["sysctl"] = json!(opts.sysctls);
    }
    if !opts.devices.is_empty() {
        linux["devices"] = Value::Array(
            opts.devices
                .iter()
                .map(|d| {
                    json!({"path": d.path, "type": d.kind.to_string(), "major": d.major,
                        "minor": d.minor, "fileMode": d.file_mode, "uid": d.uid, "gid": d.gid})
                })
                .collect(),
        );
    }

    let mut annotations = serde_json::Map::new();
    for (k, v) in image.labels.iter().chain(opts.labels.iter()) {
        annotations.insert(k.clone(), json!(v));
    }
    if let Some(s) = opts.stop_signal.as_ref().or(image.stop_signal.as_ref()) {
        annotations.insert("org.opencontainers.image.stopSignal".into(), json!(s));
    }

    let mut spec = json!({
        "ociVersion": "1.0.2-dev",
        "process": process,
        "root": { "path": "rootfs", "readonly": opts.read_only },
        "mounts": mounts,
        "linux": linux,
    });
    // No hostname in the host's UTS namespace: runc refuses one there, and it would be the
    // host's to change.
    if !opts.uts_host {
        spec["hostname"] = json!(host);
    }
    if let Some(d) = &opts.domainname {
        spec["domainname"] = json!(d);
    }
    if !opts.device_edits.hooks.is_empty() {
        let mut hooks = serde_json::Map::new();
        for h in &opts.device_edits.hooks {
            let mut v = json!({"path": h.path});
            if !h.args.is_empty() {
                v["args"] = json!(h.args);
            }
            if !h.env.is_empty() {
                v["env"] = json!(h.env);
            }
            if let Some(t) = h.timeout {
                v["timeout"] = json!(t);
            }
            match hooks.get_mut(&h.hook_name) {
                Some(Value::Array(a)) => a.push(v),
                _ => {
                    hooks.insert(h.hook_name.clone(), json!([v]));
                }
            }
        }
        spec["hooks"] = Value::Object(hooks);
    }
    if !annotations.is_empty() {
        spec["annotations"] = Value::Object(annotations);
    }
    Ok(spec)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{MountSpec, Ulimit};
    use std::path::PathBuf;

    const SCHEMA_DIR: &str = "/work/shared/specs/oci/runtime-spec/schema";

    struct FileRetriever;
    impl jsonschema::Retrieve for FileRetriever {
        fn retrieve(
            &self,
            uri: &jsonschema::Uri<String>,
        ) -> std::result::Result<Value, Box<dyn std::error::Error + Send + Sync>> {
            let path = uri.path().as_str().to_string();
            Ok(serde_json::from_slice(&std::fs::read(path)?)?)
        }
    }

    fn validator() -> Option<jsonschema::Validator> {
        let p = Path::new(SCHEMA_DIR).join("config-schema.json");
        let Ok(bytes) = std::fs::read(&p) else {
            eprintln!(
                "!!! runtime-spec schema not found at {SCHEMA_DIR}: schema validation SKIPPED"
            );
            return None;
        };
        let schema: Value = serde_json::from_slice(&bytes).unwrap();
        Some(
            jsonschema::options()
                .with_draft(jsonschema::Draft::Draft4)
                .with_base_uri(format!("file://{}", p.display()))
                .with_retriever(FileRetriever)
                .build(&schema)
                .expect("schema compiles"),
        )
    }

    fn rootfs() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("etc")).unwrap();
        std::fs::write(
            d.path().join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\napp:x:1000:1000::/home/app:/bin/sh\n",
        )
        .unwrap();
        std::fs::write(
            d.path().join("etc/group"),
            "root:x:0:\nwheel:x:10:app\napp:x:1000:\nstaff:x:50:\n",
        )
        .unwrap();
        std::os::unix::fs::symlink("/etc", d.path().join("link-out")).unwrap();
        d
    }

    fn gen(root: &Path, image: &ImageRuntimeConfig, opts: &RunOptions) -> Value {
        let input = SpecInput {
            id: "0123456789abcdef",
            rootfs: root,
            image,
            opts,
            cgroup_parent: "/berth",
            create_paths: true,
        };
        let v = generate_json(&input).unwrap();
        // It must also parse as oci-spec's typed Spec.
        let _: Spec = serde_json::from_value(v.clone()).unwrap();
        v
    }

    fn assert_valid(v: &Value) {
        if let Some(val) = validator() {
            let errors: Vec<String> = val
                .iter_errors(v)
                .map(|e| format!("{} at {}", e, e.instance_path))
                .collect();
            assert!(errors.is_empty(), "schema errors: {errors:#?}");
        }
    }

    #[test]
    fn default_config_is_valid_and_docker_like() {
        let d = rootfs();
        let image = ImageRuntimeConfig {
            env: vec!["PATH=/usr/bin:/bin".into(), "A=1".into()],
            cmd: Some(vec!["sh".into()]),
            ..Default::default()
        };
        let v = gen(d.path(), &image, &RunOptions::default());
        assert_valid(&v);
        assert_eq!(v["process"]["args"], json!(["sh"]));
        assert_eq!(v["process"]["cwd"], "/");
        assert_eq!(v["hostname"], "0123456789ab");
        let env = v["process"]["env"].as_array().unwrap();
        assert_eq!(env[0], "PATH=/usr/bin:/bin");
        assert_eq!(env[1], "HOSTNAME=0123456789ab");
        assert!(env.contains(&json!("HOME=/root")));
        let caps = v["process"]["capabilities"]["bounding"].as_array().unwrap();
        assert_eq!(caps.len(), DEFAULT_CAPS.len());
        assert_eq!(v["linux"]["cgroupsPath"], "/berth/0123456789abcdef");
        let ns: Vec<&str> = v["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["type"].as_str().unwrap())
            .collect();
        assert_eq!(ns, ["pid", "ipc", "uts", "mount", "network", "cgroup"]);
        assert!(v["linux"]["seccomp"]["syscalls"].as_array().unwrap().len() > 10);
        assert_eq!(
            v["linux"]["maskedPaths"].as_array().unwrap().len(),
            MASKED_PATHS.len()
        );
        let dests: Vec<&str> = v["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["destination"].as_str().unwrap())
            .collect();
        for want in [
            "/proc",
            "/dev",
            "/dev/pts",
            "/dev/shm",
            "/dev/mqueue",
            "/sys",
            "/sys/fs/cgroup",
        ] {
            assert!(dests.contains(&want), "{want} missing");
        }
    }

    #[test]
    fn host_namespaces_devices_and_knobs_are_valid_specs() {
        let d = rootfs();
        let opts = RunOptions {
            cmd: vec!["true".into()],
            ipc: crate::NamespaceMode::Host,
            dev_shm: DevShm::Bind("/dev/shm".into()),
            pid: crate::NamespaceMode::Join("/proc/1/ns/pid".into()),
            uts_host: true,
            devices: vec![crate::DeviceNode {
                kind: 'c',
                path: "/dev/mynull".into(),
                major: 1,
                minor: 3,
                file_mode: 0o666,
                uid: 0,
                gid: 0,
                access: "rw".into(),
            }],
            device_rules: vec![crate::DeviceRule {
                kind: 'c',
                major: Some(10),
                minor: None,
                access: "rwm".into(),
            }],
            memory: Some(64 << 20),
            memory_reservation: Some(32 << 20),
            memory_swappiness: Some(10),
            oom_kill_disable: true,
            oom_score_adj: Some(-100),
            cpu_period: Some(50_000),
            cpu_quota: Some(25_000),
            ..Default::default()
        };
        let v = gen(d.path(), &ImageRuntimeConfig::default(), &opts);
        assert_valid(&v);
        let ns: Vec<&Value> = v["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .collect();
        assert!(!ns.iter().any(|n| n["type"] == "ipc" || n["type"] == "uts"));
        assert!(ns
            .iter()
            .any(|n| n["type"] == "pid" && n["path"] == "/proc/1/ns/pid"));
        // No hostname in the host's UTS namespace (runc refuses one).
        assert!(v.get("hostname").is_none());
        let shm = v["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["destination"] == "/dev/shm")
            .unwrap();
        assert_eq!(
            (&shm["type"], &shm["source"]),
            (&json!("bind"), &json!("/dev/shm"))
        );
        assert_eq!(v["linux"]["devices"][0]["path"], "/dev/mynull");
        let rules = v["linux"]["resources"]["devices"].as_array().unwrap();
        assert!(rules.contains(
            &json!({"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rw"})
        ));
        assert!(rules.contains(&json!({"allow": true, "type": "c", "major": 10, "access": "rwm"})));
        let r = &v["linux"]["resources"];
        assert_eq!(r["memory"]["reservation"], 32 << 20);
        assert_eq!(r["memory"]["swappiness"], 10);
        assert_eq!(r["memory"]["disableOOMKiller"], true);
        assert_eq!(
            (&r["cpu"]["period"], &r["cpu"]["quota"]),
            (&json!(50_000), &json!(25_000))
        );
        assert_eq!(v["process"]["oomScoreAdj"], -100);
        // --ipc none: no /dev/shm at all.
        let none = RunOptions {
            cmd: vec!["true".into()],
            dev_shm: DevShm::None,
            ..Default::default()
        };
        let v = gen(d.path(), &ImageRuntimeConfig::default(), &none);
        assert!(!v["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["destination"] == "/dev/shm"));
    }

    #[test]
    fn options_map_like_docker() {
        let d = rootfs();
        let src = tempfile::tempdir().unwrap();
        let opts = RunOptions {
            cmd: vec!["id".into()],
            user: Some("app".into()),
            workdir: Some("/work/dir".into()),
            tty: true,
            read_only: true,
            cap_add: vec!["NET_ADMIN".into()],
            cap_drop: vec!["chown".into()],
            no_new_privileges: true,
            ulimits: vec![
                Ulimit {
                    name: "nofile".into(),
                    soft: 1 << 30,
                    hard: 1 << 30,
                },
                Ulimit {
                    name: "nproc".into(),
                    soft: 100,
                    hard: 200,
                },
            ],
            memory: Some(64 << 20),
            memory_swap: Some(128 << 20),
            cpus: Some(1.5),
            cpu_shares: Some(512),
            cpuset_cpus: Some("0".into()),
            pids_limit: Some(50),
            network: NetworkMode::Host,
            mounts: vec![
                MountSpec::Bind {
                    source: src.path().to_path_buf(),
                    target: "/link-out/data".into(),
                    readonly: true,
                },
                MountSpec::Tmpfs {
                    target: "/scratch".into(),
                    size: Some(1 << 20),
                    mode: Some(0o1777),
                    options: vec![],
                },
            ],
            hostname: Some("box".into()),
            ..Default::default()
        };
        let v = gen(d.path(), &ImageRuntimeConfig::default(), &opts);
        assert_valid(&v);
        let p = &v["process"];
        assert_eq!(p["user"]["uid"], 1000);
        assert_eq!(p["user"]["gid"], 1000);
        assert_eq!(p["user"]["additionalGids"], json!([1000, 10]));
        assert_eq!(p["cwd"], "/work/dir");
        assert!(d.path().join("work/dir").is_dir());
        assert_eq!(p["terminal"], true);
        assert!(p["env"].as_array().unwrap().contains(&json!("TERM=xterm")));
        assert!(p["env"]
            .as_array()
            .unwrap()
            .contains(&json!("HOME=/home/app")));
        assert_eq!(p["capabilities"]["effective"], json!([]));
        let bounding = p["capabilities"]["bounding"].as_array().unwrap();
        assert!(
            bounding.contains(&json!("CAP_NET_ADMIN")) && !bounding.contains(&json!("CAP_CHOWN"))
        );
        assert_eq!(p["noNewPrivileges"], true);
        let nofile = p["rlimits"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["type"] == "RLIMIT_NOFILE")
            .unwrap();
        let host = host_hard_limit(libc::RLIMIT_NOFILE);
        assert_eq!(nofile["hard"].as_u64().unwrap(), host.min(1 << 30));
        assert_eq!(v["root"]["readonly"], true);
        let r = &v["linux"]["resources"];
        assert_eq!(r["memory"]["limit"], 64 << 20);
        assert_eq!(r["cpu"]["quota"], 150_000);
        assert_eq!(r["cpu"]["period"], 100_000);
        assert_eq!(r["cpu"]["shares"], 512);
        assert_eq!(r["pids"]["limit"], 50);
        assert_eq!(v["hostname"], "box");
        assert!(!v["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["type"] == "network"));
        // The bind target behind a symlink leaving the rootfs lands inside it.
        let bind = v["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["type"] == "bind")
            .unwrap();
        assert_eq!(bind["destination"], "/etc/data");
        assert!(bind["options"].as_array().unwrap().contains(&json!("ro")));
        assert!(d.path().join("etc/data").is_dir());
        let tmpfs = v["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["destination"] == "/scratch")
            .unwrap();
        assert!(tmpfs["options"]
            .as_array()
            .unwrap()
            .contains(&json!("mode=1777")));
    }

    #[test]
    fn privileged_and_unconfined() {
        let d = rootfs();
        let opts = RunOptions {
            cmd: vec!["sh".into()],
            privileged: true,
            ..Default::default()
        };
        let v = gen(d.path(), &ImageRuntimeConfig::default(), &opts);
        assert_valid(&v);
        assert!(v["linux"].get("seccomp").is_none());
        assert!(v["linux"].get("maskedPaths").is_none());
        assert_eq!(
            v["process"]["capabilities"]["bounding"]
                .as_array()
                .unwrap()
                .len(),
            host_caps().len()
        );
        let opts = RunOptions {
            cmd: vec!["sh".into()],
            seccomp_unconfined: true,
            ..Default::default()
        };
        let v = gen(d.path(), &ImageRuntimeConfig::default(), &opts);
        assert!(v["linux"].get("seccomp").is_none());
        assert!(v["linux"].get("maskedPaths").is_some());
    }

    #[test]
    fn entrypoint_cmd_rules() {
        let image = ImageRuntimeConfig {
            entrypoint: Some(vec!["/entry".into()]),
            cmd: Some(vec!["default".into()]),
            ..Default::default()
        };
        let o = |e: Option<Vec<&str>>, c: Vec<&str>| RunOptions {
            entrypoint: e.map(|e| e.into_iter().map(String::from).collect()),
            cmd: c.into_iter().map(String::from).collect(),
            ..Default::default()
        };
        assert_eq!(
            process_args(&image, &o(None, vec![])).unwrap(),
            ["/entry", "default"]
        );
        assert_eq!(
            process_args(&image, &o(None, vec!["x"])).unwrap(),
            ["/entry", "x"]
        );
        assert_eq!(
            process_args(&image, &o(Some(vec!["sh"]), vec![])).unwrap(),
            ["sh"]
        );
        assert!(process_args(&ImageRuntimeConfig::default(), &o(Some(vec![]), vec![])).is_err());
    }

    #[test]
    fn bad_input_is_rejected() {
        let d = rootfs();
        let base = RunOptions {
            cmd: vec!["sh".into()],
            ..Default::default()
        };
        for opts in [
            RunOptions {
                workdir: Some("/proc/self/fd/3".into()),
                ..base.clone()
            },
            RunOptions {
                workdir: Some("rel".into()),
                ..base.clone()
            },
            RunOptions {
                user: Some("ghost".into()),
                ..base.clone()
            },
            RunOptions {
                cap_add: vec!["CAP_BOGUS".into()],
                ..base.clone()
            },
            RunOptions {
                mounts: vec![MountSpec::Bind {
                    source: PathBuf::from("/nonexistent/x"),
                    target: "/x".into(),
                    readonly: false,
                }],
                ..base.clone()
            },
        ] {
            let input = SpecInput {
                id: "c",
                rootfs: d.path(),
                image: &ImageRuntimeConfig::default(),
                opts: &opts,
                cgroup_parent: "/berth",
                create_paths: true,
            };
            assert!(generate_json(&input).is_err(), "{opts:?} accepted");
        }
    }

    #[test]
    fn users_resolve() {
        let d = rootfs();
        assert_eq!(resolve_user(d.path(), "", &[]).unwrap().uid, 0);
        let u = resolve_user(d.path(), "1000:50", &["wheel".into()]).unwrap();
        assert_eq!(
            (u.uid, u.gid, u.additional_gids.clone()),
            (1000, 50, vec![10])
        );
        let u = resolve_user(d.path(), "4242", &[]).unwrap();
        assert_eq!((u.uid, u.gid), (4242, 0));
        assert!(resolve_user(d.path(), "app:nogroup", &[]).is_err());
    }
}
