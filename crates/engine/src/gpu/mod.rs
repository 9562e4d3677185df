//! GPUs and CDI devices without NVIDIA's container toolkit.
//!
//! `--gpus` requests (`request.rs`) and `--device VENDOR/CLASS=NAME` both end as CDI container
//! edits (`cdi.rs`) applied to the run options by one function, [`apply_edits`]: the NVIDIA
//! driver is discovered from the host (`discover.rs`) and described as an in-memory CDI spec of
//! kind `nvidia.com/gpu` (`nvidia.rs`), other devices come from the CDI spec files.

pub mod cdi;
pub mod discover;
pub mod nvidia;
pub mod request;

pub use request::{parse_gpus, DeviceRequest};

use berth_runtime::{DeviceHook, DeviceMount, DeviceNode, LdConfig, RunOptions};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

/// Where the engine looks for the driver and the CDI specs (`EngineConfig::gpu`).
#[derive(Debug, Clone)]
pub struct GpuConfig {
    /// The root the driver's files are under (`/dev/nvidia*`, libraries, programs,
    /// firmware); `/` on a real host.
    pub driver_root: PathBuf,
    /// Where `/proc` is (`driver/nvidia/gpus/*/information`, `driver/nvidia/version`).
    pub proc_root: PathBuf,
    /// CDI spec directories, lowest priority first.
    pub cdi_dirs: Vec<PathBuf>,
    /// The host's `ldconfig`; `None`: `/sbin/ldconfig.real` (Ubuntu's binary behind its
    /// wrapper script), else `/sbin/ldconfig`, else `/usr/sbin/ldconfig`.
    pub ldconfig: Option<PathBuf>,
}

impl Default for GpuConfig {
    fn default() -> Self {
        GpuConfig {
            driver_root: PathBuf::from("/"),
            proc_root: PathBuf::from("/proc"),
            cdi_dirs: vec![PathBuf::from("/etc/cdi"), PathBuf::from("/var/run/cdi")],
            ldconfig: None,
        }
    }
}

/// NVIDIA's driver capabilities (`NVIDIA_DRIVER_CAPABILITIES`) berth knows how to provide.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Capability {
    Compute,
    Utility,
    Graphics,
    Video,
}

impl Capability {
    pub const ALL: [Capability; 4] = [
        Capability::Compute,
        Capability::Utility,
        Capability::Graphics,
        Capability::Video,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Capability::Compute => "compute",
            Capability::Utility => "utility",
            Capability::Graphics => "graphics",
            Capability::Video => "video",
        }
    }

    pub fn parse(s: &str) -> Option<Capability> {
        Capability::ALL.into_iter().find(|c| c.name() == s)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum GpuError {
    /// The host has no NVIDIA driver loaded (or no GPU).
    #[error("no NVIDIA GPU driver on this host ({} is missing or empty): install the NVIDIA driver (its kernel module and user-space libraries, e.g. apt-get install nvidia-driver); berth needs no NVIDIA container toolkit", looked.display())]
    NoDriver { looked: PathBuf },
    /// The driver is there but something it should have is not.
    #[error("NVIDIA driver: {message}")]
    Driver { message: String },
    /// A request berth cannot satisfy as asked (unknown GPU, bad capabilities).
    #[error("{0}")]
    Invalid(String),
    /// A CDI spec that does not validate, or a device no spec defines.
    #[error("{0}")]
    Cdi(String),
}

/// The host's `ldconfig`.
fn find_ldconfig(cfg: &GpuConfig) -> Result<PathBuf, GpuError> {
    if let Some(p) = &cfg.ldconfig {
        return Ok(p.clone());
    }
    ["/sbin/ldconfig.real", "/sbin/ldconfig", "/usr/sbin/ldconfig"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .ok_or_else(|| GpuError::Driver {
            message: "no ldconfig on the host to update the container's library cache (looked for /sbin/ldconfig.real, /sbin/ldconfig, /usr/sbin/ldconfig)".into(),
        })
}

/// A mount whose target is a shared library (`libX.so`, `libX.so.1.2`).
fn is_library(container_path: &str) -> bool {
    let name = container_path.rsplit('/').next().unwrap_or("");
    name.ends_with(".so") || name.contains(".so.")
}

/// Applies CDI container edits to the run options: the one path for `--gpus` and CDI
/// devices. Device nodes are made like the host's (type and numbers from the spec, else from
/// the host node) and allowed by the device cgroup; mounts, environment, hooks and groups go
/// to [`RunOptions::device_edits`]; when libraries are mounted, the monitor rebuilds the
/// container's library cache over their directories before the process runs.
pub fn apply_edits(
    cfg: &GpuConfig,
    who: &str,
    edits: &cdi::ContainerEdits,
    run: &mut RunOptions,
) -> Result<(), GpuError> {
    let refuse = |what: &str| {
        GpuError::Cdi(format!(
            "{who}: {what} edits are not supported by berth; remove them from the CDI spec"
        ))
    };
    if edits.intel_rdt.is_some() {
        return Err(refuse("intelRdt"));
    }
    if edits.net_devices.is_some() {
        return Err(refuse("netDevices"));
    }
    for d in &edits.device_nodes {
        if run.devices.iter().any(|x| x.path == d.path) {
            continue;
        }
        let host = d.host_path.clone().unwrap_or_else(|| d.path.clone());
        let md = std::fs::metadata(&host);
        let (kind, major, minor) = match (d.kind.as_deref(), d.major, d.minor) {
            (Some(t), Some(ma), Some(mi)) => (t.chars().next().unwrap_or('c'), ma, mi),
            _ => {
                let md = md
                    .as_ref()
                    .map_err(|e| GpuError::Cdi(format!("{who}: device node {host}: {e}")))?;
                let ft = md.file_type();
                let kind = if ft.is_char_device() {
                    'c'
                } else if ft.is_block_device() {
                    'b'
                } else {
                    return Err(GpuError::Cdi(format!("{who}: {host} is not a device node")));
                };
                let rdev = md.rdev();
                (
                    kind,
                    rustix::fs::major(rdev) as i64,
                    rustix::fs::minor(rdev) as i64,
                )
            }
        };
        let kind = match kind {
            'u' => 'c',
            'p' => {
                return Err(GpuError::Cdi(format!(
                    "{who}: {}: FIFO device nodes are not supported by berth",
                    d.path
                )))
            }
            k => k,
        };
        let md = md.ok();
        run.devices.push(DeviceNode {
            kind,
            path: d.path.clone(),
            major,
            minor,
            file_mode: d
                .file_mode
                .or(md.as_ref().map(|m| m.mode() & 0o7777))
                .unwrap_or(0o666),
            uid: d.uid.or(md.as_ref().map(|m| m.uid())).unwrap_or(0),
            gid: d.gid.or(md.as_ref().map(|m| m.gid())).unwrap_or(0),
            access: d.permissions.clone().unwrap_or_else(|| "rwm".into()),
        });
    }
    let de = &mut run.device_edits;
    for m in &edits.mounts {
        if de
            .mounts
            .iter()
            .any(|x| x.container_path == m.container_path)
        {
            continue;
        }
        de.mounts.push(DeviceMount {
            host_path: PathBuf::from(&m.host_path),
            container_path: m.container_path.clone(),
            kind: m.kind.clone().unwrap_or_default(),
            options: m.options.clone(),
        });
    }
    berth_runtime::spec::merge_env(&mut de.env, &edits.env);
    for h in &edits.hooks {
        let h = DeviceHook {
            hook_name: h.hook_name.clone(),
            path: h.path.clone(),
            args: h.args.clone(),
            env: h.env.clone(),
            timeout: h.timeout,
        };
        if !de.hooks.contains(&h) {
            de.hooks.push(h);
        }
    }
    for g in &edits.additional_gids {
        if !de.additional_gids.contains(g) {
            de.additional_gids.push(*g);
        }
    }
    let mut dirs: Vec<String> = Vec::new();
    for m in &de.mounts {
        if is_library(&m.container_path) {
            let dir = Path::new(&m.container_path)
                .parent()
                .map(|p| p.display().to_string())
                .unwrap_or_else(|| "/".into());
            if !dirs.contains(&dir) {
                dirs.push(dir);
            }
        }
    }
    if !dirs.is_empty() {
        de.ldconfig = Some(LdConfig {
            program: find_ldconfig(cfg)?,
            dirs,
        });
    }
    Ok(())
}

/// The capabilities a request gets: the request's own (`capabilities=`), else the image's or
/// the user's `NVIDIA_DRIVER_CAPABILITIES` (`all`: every one), else compute and utility — the
/// toolkit's rules.
fn capabilities(req: &DeviceRequest, env: &[String]) -> Result<(Vec<Capability>, bool), GpuError> {
    let asked: Vec<&String> = req
        .capabilities
        .iter()
        .flatten()
        .flatten()
        .filter(|c| *c != "gpu" && *c != "nvidia")
        .collect();
    if !asked.is_empty() {
        let mut caps = Vec::new();
        for c in asked {
            match c.as_str() {
                "all" => caps.extend(Capability::ALL),
                s => caps.push(Capability::parse(s).ok_or_else(|| {
                    GpuError::Invalid(format!(
                        "--gpus capabilities={s}: not supported by berth (it provides compute, utility, graphics and video)"
                    ))
                })?),
            }
        }
        caps.sort();
        caps.dedup();
        return Ok((caps, true));
    }
    let from_env = env
        .iter()
        .rev()
        .find_map(|e| e.strip_prefix("NVIDIA_DRIVER_CAPABILITIES="));
    let mut caps: Vec<Capability> = match from_env {
        Some("all") => Capability::ALL.to_vec(),
        Some(v) if !v.trim().is_empty() => v
            .split(',')
            .filter_map(|c| Capability::parse(c.trim()))
            .collect(),
        _ => Vec::new(),
    };
    if caps.is_empty() {
        caps = vec![Capability::Compute, Capability::Utility];
    }
    caps.sort();
    caps.dedup();
    Ok((caps, false))
}

/// Go's `fmt` of `[][]string`: `[[compute utility gpu]]`.
fn go_caps(c: &Option<Vec<Vec<String>>>) -> String {
    let inner: Vec<String> = c
        .iter()
        .flatten()
        .map(|s| format!("[{}]", s.join(" ")))
        .collect();
    format!("[{}]", inner.join(" "))
}

/// Whether a request is for NVIDIA GPUs: driver `""`/`nvidia` and a capability set the
/// driver covers (dockerd's driver selection).
fn selects_nvidia(req: &DeviceRequest) -> bool {
    const NVIDIA: &[&str] = &[
        "gpu", "nvidia", "compute", "compat32", "graphics", "utility", "video", "display", "all",
    ];
    (req.driver.is_empty() || req.driver == "nvidia")
        && req
            .capabilities
            .iter()
            .flatten()
            .any(|set| !set.is_empty() && set.iter().all(|c| NVIDIA.contains(&c.as_str())))
}

/// Applies every device request of a container to its run options. `env` is the process
/// environment before the requests (image's, then user's).
pub fn apply_requests(
    cfg: &GpuConfig,
    requests: &[DeviceRequest],
    env: &[String],
    run: &mut RunOptions,
) -> Result<(), GpuError> {
    let mut driver: Option<discover::Driver> = None;
    let mut registry: Option<cdi::Registry> = None;
    for req in requests {
        if req.driver == "cdi" {
            let names = req.device_ids.clone().unwrap_or_default();
            let reg = registry.get_or_insert_with(|| cdi::Registry::load(&cfg.cdi_dirs));
            for name in &names {
                let edits = match reg.resolve(name) {
                    Ok(e) => e,
                    // No spec file for the GPUs: the ones berth discovers.
                    Err(_) if name.starts_with(&format!("{}=", nvidia::KIND)) => {
                        let d = match &driver {
                            Some(d) => d,
                            None => driver.insert(discover::discover(cfg)?),
                        };
                        let (caps, _) = capabilities(req, env)?;
                        let mut own = cdi::Registry::default();
                        own.add(0, Path::new("(discovered)"), &nvidia::spec(cfg, d, &caps));
                        own.resolve(name).map_err(|_| {
                            GpuError::Invalid(format!(
                                "unresolvable CDI devices {name}: {}",
                                nvidia::known(d)
                            ))
                        })?
                    }
                    Err(e) => return Err(e),
                };
                apply_edits(cfg, &format!("CDI device {name}"), &edits, run)?;
            }
            continue;
        }
        if !selects_nvidia(req) {
            return Err(GpuError::Invalid(format!(
                "could not select device driver {:?} with capabilities: {}: berth provides NVIDIA GPUs (--gpus) and CDI devices (--device VENDOR/CLASS=NAME)",
                req.driver,
                go_caps(&req.capabilities)
            )));
        }
        let ids = req.device_ids.clone().unwrap_or_default();
        if req.count != 0 && !ids.is_empty() {
            return Err(GpuError::Invalid(
                "cannot set both Count and DeviceIDs on device request".into(),
            ));
        }
        if req.count == 0 && ids.is_empty() {
            continue;
        }
        let d = match &driver {
            Some(d) => d,
            None => driver.insert(discover::discover(cfg)?),
        };
        let names: Vec<String> = if !ids.is_empty() {
            ids.iter()
                .map(|id| nvidia::device_name(d, id))
                .collect::<Result<_, _>>()?
        } else if req.count < 0 {
            vec!["all".into()]
        } else {
            let n = req.count as usize;
            if n > d.gpus.len() {
                return Err(GpuError::Invalid(format!(
                    "--gpus {n}: this host has {} GPU{}",
                    d.gpus.len(),
                    if d.gpus.len() == 1 { "" } else { "s" }
                )));
            }
            (0..n).map(|i| i.to_string()).collect()
        };
        let (caps, explicit) = capabilities(req, env)?;
        let spec = nvidia::spec(cfg, d, &caps);
        let mut reg = cdi::Registry::default();
        reg.add(0, Path::new("(discovered)"), &spec);
        for n in &names {
            let edits = reg.resolve(&format!("{}={n}", nvidia::KIND))?;
            apply_edits(cfg, "--gpus", &edits, run)?;
        }
        // What dockerd's NVIDIA driver sets for the toolkit, for the tools in the image.
        let visible = if !ids.is_empty() {
            ids.join(",")
        } else if req.count < 0 {
            "all".into()
        } else {
            (0..req.count)
                .map(|i| i.to_string())
                .collect::<Vec<_>>()
                .join(",")
        };
        let mut env_edits = vec![format!("NVIDIA_VISIBLE_DEVICES={visible}")];
        if explicit {
            let c: Vec<&str> = caps.iter().map(|c| c.name()).collect();
            env_edits.push(format!("NVIDIA_DRIVER_CAPABILITIES={}", c.join(",")));
        }
        berth_runtime::spec::merge_env(&mut run.device_edits.env, &env_edits);
    }
    Ok(())
}

/// `berth cdi generate`: the spec of the discovered GPUs, every capability's files.
pub fn generate_spec(cfg: &GpuConfig) -> Result<cdi::Spec, GpuError> {
    let d = discover::discover(cfg)?;
    Ok(nvidia::spec(cfg, &d, &Capability::ALL))
}

/// A spec as a file's text: JSON, or YAML (the CDI project's usual form).
pub fn spec_text(spec: &cdi::Spec, json: bool) -> Result<String, crate::EngineError> {
    let r = if json {
        serde_json::to_string_pretty(spec)
            .map(|s| s + "\n")
            .map_err(|e| e.to_string())
    } else {
        yaml_serde::to_string(spec).map_err(|e| e.to_string())
    };
    r.map_err(crate::EngineError::Internal)
}

/// `berth cdi list`: every CDI device name (spec files, then the discovered GPUs unless a
/// file defines them) and the spec files that do not validate.
pub fn list_devices(cfg: &GpuConfig) -> (Vec<String>, Vec<String>) {
    let reg = cdi::Registry::load(&cfg.cdi_dirs);
    let mut names = reg.names();
    if let Ok(d) = discover::discover(cfg) {
        for n in nvidia::spec(cfg, &d, &Capability::ALL).devices {
            let q = format!("{}={}", nvidia::KIND, n.name);
            if !names.contains(&q) {
                names.push(q);
            }
        }
    }
    (names, reg.errors)
}
