//! Parsing of `run` option values the engine owns: `--restart`, `--mount`, `--tmpfs`, and
//! `ps --filter`.

use super::{ContainerRecord, LiveState};
use crate::EngineError;
use berth_runtime::MountSpec;
use berth_store::ContainerRow;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// `--restart no|always|unless-stopped|on-failure[:N]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestartPolicy {
    pub name: String,
    pub max_retries: u32,
}

pub fn parse_restart(s: &str) -> Result<RestartPolicy, EngineError> {
    let (name, count) = match s.split_once(':') {
        Some((n, c)) => (n, Some(c)),
        None => (s, None),
    };
    match (name, count) {
        ("" | "no", None) => Ok(RestartPolicy {
            name: "no".into(),
            max_retries: 0,
        }),
        ("always" | "unless-stopped", None) => Ok(RestartPolicy {
            name: name.into(),
            max_retries: 0,
        }),
        ("always" | "unless-stopped" | "no", Some(_)) => Err(EngineError::InvalidArgument(
            "invalid restart policy: maximum retry count can only be used with 'on-failure'".to_string(),
        )),
        ("on-failure", c) => {
            let max_retries = match c {
                Some(c) => c.parse::<u32>().map_err(|_| {
                    EngineError::InvalidArgument("invalid restart policy format: maximum retry count must be an integer".to_string())
                })?,
                None => 0,
            };
            Ok(RestartPolicy {
                name: "on-failure".into(),
                max_retries,
            })
        }
        _ => Err(EngineError::InvalidArgument(format!(
            "invalid restart policy format: unknown policy '{name}'; use one of 'no', 'always', 'on-failure' or 'unless-stopped'"
        ))),
    }
}

/// Static init binaries `--init` looks for on the host, in order (a dynamically linked one,
/// like Debian's `/usr/bin/tini`, cannot run in an image without a matching libc).
const INIT_CANDIDATES: &[&str] = &[
    "/usr/bin/tini-static",
    "/usr/libexec/docker/docker-init",
    "/usr/bin/docker-init",
    "/usr/bin/catatonit",
    "/usr/libexec/podman/catatonit",
];

/// The host binary `--init` bind-mounts at `/sbin/docker-init`: `configured`
/// ([`crate::EngineConfig::init_path`], which the CLI takes from `$BERTH_INIT_PATH`), else the
/// first of Debian's static tini (package `tini`), docker-init or catatonit that exists.
pub fn find_init_in(configured: Option<&std::path::Path>) -> Result<PathBuf, EngineError> {
    if let Some(p) = configured {
        let p = p.to_path_buf();
        if !p.is_file() {
            return Err(EngineError::FailedPrecondition(format!(
                "--init: BERTH_INIT_PATH={}: no such file: point it at a static init, or unset it and apt-get install tini",
                p.display()
            )));
        }
        return Ok(p);
    }
    INIT_CANDIDATES
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .ok_or_else(|| {
            EngineError::FailedPrecondition(
                "--init: no init binary on this host (looked for /usr/bin/tini-static): install it with apt-get install tini, or set BERTH_INIT_PATH".to_string(),
            )
        })
}

/// A `--mount` that needs the engine (a volume) or is complete.
pub enum ParsedMount {
    Ready(MountSpec),
    Volume {
        name: Option<String>,
        target: String,
        readonly: bool,
    },
}

/// Parses a size like `64m`, `1g`, `512k`, `100` (bytes).
pub fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let lower = s.to_ascii_lowercase();
    let (num, mult) = match lower.trim_end_matches('b').chars().last()? {
        'k' => (&lower[..lower.trim_end_matches('b').len() - 1], 1u64 << 10),
        'm' => (&lower[..lower.trim_end_matches('b').len() - 1], 1 << 20),
        'g' => (&lower[..lower.trim_end_matches('b').len() - 1], 1 << 30),
        't' => (&lower[..lower.trim_end_matches('b').len() - 1], 1 << 40),
        _ => (lower.trim_end_matches('b'), 1),
    };
    let v: f64 = num.parse().ok()?;
    if v < 0.0 {
        return None;
    }
    Some((v * mult as f64) as u64)
}

/// `--mount type=bind|volume|tmpfs,source=..,target=..,readonly,...`.
pub fn parse_mount(s: &str) -> Result<ParsedMount, EngineError> {
    let bad = |why: &str| {
        EngineError::InvalidArgument(format!(
            "invalid argument \"{s}\" for \"--mount\" flag: {why}"
        ))
    };
    let mut kind = "volume".to_string();
    let mut source: Option<String> = None;
    let mut target: Option<String> = None;
    let mut readonly = false;
    let mut size: Option<u64> = None;
    let mut mode: Option<u32> = None;
    for field in s.split(',') {
        let (k, v) = match field.split_once('=') {
            Some((k, v)) => (k.trim().to_ascii_lowercase(), Some(v.trim())),
            None => (field.trim().to_ascii_lowercase(), None),
        };
        match (k.as_str(), v) {
            ("type", Some(v)) => kind = v.to_string(),
            ("source" | "src", Some(v)) => source = Some(v.to_string()),
            ("target" | "destination" | "dst", Some(v)) => target = Some(v.to_string()),
            ("readonly" | "ro", None) => readonly = true,
            ("readonly" | "ro", Some(v)) => readonly = matches!(v, "1" | "true"),
            ("tmpfs-size", Some(v)) => {
                size = Some(parse_size(v).ok_or_else(|| bad("invalid tmpfs-size"))?)
            }
            ("tmpfs-mode", Some(v)) => {
                mode = Some(u32::from_str_radix(v, 8).map_err(|_| bad("invalid tmpfs-mode"))?)
            }
            (
                "bind-propagation" | "consistency" | "volume-nocopy" | "volume-driver"
                | "volume-label",
                _,
            ) => {}
            _ => return Err(bad(&format!("unexpected key '{k}' in '{field}'"))),
        }
    }
    let target = target.ok_or_else(|| bad("target is required"))?;
    if !target.starts_with('/') {
        return Err(bad("target must be an absolute path"));
    }
    match kind.as_str() {
        "bind" => {
            let source =
                source.ok_or_else(|| bad("source is required when specifying bind mounts"))?;
            if !std::path::Path::new(&source).exists() {
                return Err(EngineError::InvalidArgument(format!(
                    "invalid mount config for type \"bind\": bind source path does not exist: {source}"
                )));
            }
            Ok(ParsedMount::Ready(MountSpec::Bind {
                source: PathBuf::from(source),
                target,
                readonly,
            }))
        }
        "volume" => Ok(ParsedMount::Volume {
            name: source,
            target,
            readonly,
        }),
        "tmpfs" => Ok(ParsedMount::Ready(MountSpec::Tmpfs {
            target,
            size,
            mode,
            options: Vec::new(),
        })),
        other => Err(bad(&format!("invalid mount type '{other}'"))),
    }
}

/// `--tmpfs /run[:rw,size=64m,mode=1777,noexec]`.
pub fn parse_tmpfs(s: &str) -> Result<MountSpec, EngineError> {
    let (target, opts) = s.split_once(':').unwrap_or((s, ""));
    if !target.starts_with('/') {
        return Err(EngineError::InvalidArgument(format!(
            "invalid tmpfs mount: {s}: the path must be absolute"
        )));
    }
    let mut size = None;
    let mut mode = None;
    let mut options = Vec::new();
    for o in opts.split(',').filter(|o| !o.is_empty()) {
        if let Some(v) = o.strip_prefix("size=") {
            size =
                Some(parse_size(v).ok_or_else(|| {
                    EngineError::InvalidArgument(format!("invalid tmpfs size: {v}"))
                })?);
        } else if let Some(v) = o.strip_prefix("mode=") {
            mode =
                Some(u32::from_str_radix(v, 8).map_err(|_| {
                    EngineError::InvalidArgument(format!("invalid tmpfs mode: {v}"))
                })?);
        } else {
            options.push(o.to_string());
        }
    }
    Ok(MountSpec::Tmpfs {
        target: target.to_string(),
        size,
        mode,
        options,
    })
}

/// Go's `time.ParseDuration` for what people type: `10s`, `5m`, `1h30m`, `1.5h`, `250ms`.
pub fn parse_go_duration(s: &str) -> Option<f64> {
    let mut total = 0.0;
    let mut rest = s;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if num_len == 0 {
            return None;
        }
        let n: f64 = rest[..num_len].parse().ok()?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let mult = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total += n * mult;
    }
    Some(total)
}

/// What `ps --filter` matches besides the container's row and record.
#[derive(Debug, Default)]
pub struct MatchContext {
    /// IDs of the images `ancestor=` names.
    pub ancestors: Vec<String>,
    /// Creation time (row `created`) of the container `before=` names.
    pub before: Option<i64>,
    /// Creation time of the container `since=` names.
    pub since: Option<i64>,
    /// The container's published ports (`HostConfig.PortBindings` keys, `80/tcp`).
    pub published: Vec<String>,
    /// The container's exposed ports (`Config.ExposedPorts` keys).
    pub exposed: Vec<String>,
    /// IDs of the pods `pod=` names (podman's filter; a name no pod has matches nothing).
    pub pods: Vec<String>,
}

/// A `publish=`/`expose=` value, `PORT[/PROTO]` or `START-END[/PROTO]`, as the `port/proto`
/// keys it stands for (Docker's `portOp`).
pub fn port_filter(key: &str, value: &str) -> Result<Vec<String>, EngineError> {
    if value.contains(':') {
        return Err(EngineError::InvalidArgument(format!(
            "filter for '{key}' should not contain ':': {value}"
        )));
    }
    let (port, proto) = match value.split_once('/') {
        Some((p, proto)) => (p, proto.to_ascii_lowercase()),
        None => (value, "tcp".to_string()),
    };
    let bad = || {
        EngineError::InvalidArgument(format!(
            "error while looking up for {key} {value}: invalid port range {port:?}"
        ))
    };
    let num = |s: &str| s.parse::<u16>().map_err(|_| bad());
    let (start, end) = match port.split_once('-') {
        Some((a, b)) => (num(a)?, num(b)?),
        None => (num(port)?, num(port)?),
    };
    if end < start || !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
        return Err(bad());
    }
    Ok((start..=end).map(|p| format!("{p}/{proto}")).collect())
}

/// `ps --filter` values: OR within a key, AND across keys.
pub struct Filters {
    items: Vec<(String, String)>,
}

const STATUSES: &[&str] = &[
    "created",
    "restarting",
    "running",
    "removing",
    "paused",
    "exited",
    "dead",
];

impl Filters {
    pub fn parse(args: &[String]) -> Result<Filters, EngineError> {
        let mut items = Vec::new();
        for a in args {
            let Some((k, v)) = a.split_once('=') else {
                return Err(EngineError::InvalidArgument(
                    "bad format of filter (expected name=value)".to_string(),
                ));
            };
            let k = k.trim().to_ascii_lowercase();
            match k.as_str() {
                "status" => {
                    if !STATUSES.contains(&v) {
                        return Err(EngineError::InvalidArgument(format!(
                            "invalid filter 'status={v}'"
                        )));
                    }
                }
                "health" => {
                    if !super::health::valid_filter(v) {
                        return Err(EngineError::InvalidArgument(format!(
                            "Unrecognised filter value for health: {v}"
                        )));
                    }
                }
                "exited" => {
                    v.parse::<i32>().map_err(|_| {
                        EngineError::InvalidArgument(format!("invalid filter 'exited={v}'"))
                    })?;
                }
                "publish" | "expose" => {
                    port_filter(&k, v)?;
                }
                "is-task" => {
                    if v != "true" && v != "false" {
                        return Err(EngineError::InvalidArgument(format!(
                            "invalid filter 'is-task=[{v}]'"
                        )));
                    }
                }
                "isolation" => {
                    // Linux knows one isolation, "default".
                    if !(v.is_empty() || v.eq_ignore_ascii_case("default")) {
                        return Err(EngineError::InvalidArgument(format!(
                            "Unrecognised filter value for isolation: {v}"
                        )));
                    }
                }
                "name" | "id" | "label" | "ancestor" | "before" | "since" | "volume"
                | "network" | "pod" => {}
                _ => {
                    return Err(EngineError::InvalidArgument(format!(
                        "invalid filter '{k}'"
                    )))
                }
            }
            items.push((k, v.to_string()));
        }
        Ok(Filters { items })
    }

    pub fn has(&self, key: &str) -> bool {
        self.items.iter().any(|(k, _)| k == key)
    }

    pub fn get(&self, key: &str) -> Vec<String> {
        self.items
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .collect()
    }

    pub fn matches(
        &self,
        row: &ContainerRow,
        rec: &ContainerRecord,
        live: &LiveState,
        ctx: &MatchContext,
    ) -> bool {
        let mut keys: Vec<&str> = self.items.iter().map(|(k, _)| k.as_str()).collect();
        keys.sort_unstable();
        keys.dedup();
        keys.into_iter().all(|key| {
            let values = self.get(key);
            let one = |v: &String| match key {
                "status" => live.status == *v,
                "exited" => live.status == "exited" && v.parse() == Ok(live.exit_code),
                "name" => {
                    let v = v.strip_prefix('/').unwrap_or(v);
                    match v.strip_prefix('^') {
                        Some(p) => match p.strip_suffix('$') {
                            Some(exact) => row.name == exact,
                            None => row.name.starts_with(p),
                        },
                        None => match v.strip_suffix('$') {
                            Some(end) => row.name.ends_with(end),
                            None => row.name.contains(v),
                        },
                    }
                }
                "id" => row.id.starts_with(v.as_str()),
                "label" => match v.split_once('=') {
                    Some((k, val)) => rec.labels.get(k).map(|x| x == val).unwrap_or(false),
                    None => rec.labels.contains_key(v.as_str()),
                },
                "ancestor" => ctx.ancestors.contains(&row.image_id) || rec.image == *v,
                "volume" => rec.mounts.iter().any(|m| m == v),
                "network" => rec.network_mode == *v,
                "pod" => rec.pod.as_ref().is_some_and(|p| ctx.pods.contains(p)),
                // Created strictly before / after the named container.
                "before" => ctx.before.is_some_and(|t| row.created < t),
                "since" => ctx.since.is_some_and(|t| row.created > t),
                "publish" => port_filter(key, v)
                    .map(|ps| ps.iter().any(|p| ctx.published.contains(p)))
                    .unwrap_or(false),
                "expose" => port_filter(key, v)
                    .map(|ps| ps.iter().any(|p| ctx.exposed.contains(p)))
                    .unwrap_or(false),
                // No container is a swarm task.
                "is-task" => v == "false",
                // A container's isolation is "" on Linux (Docker compares exactly).
                "isolation" => v.is_empty(),
                "health" => live.health.as_deref().unwrap_or("none") == v,
                _ => false,
            };
            // Docker ORs the values of one key, except labels, which must all match
            // (docker-compose lists a project's containers with two labels at once).
            if key == "label" {
                values.iter().all(one)
            } else {
                values.iter().any(one)
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restart_policies() {
        assert_eq!(parse_restart("always").unwrap().name, "always");
        assert_eq!(parse_restart("on-failure:3").unwrap().max_retries, 3);
        assert!(parse_restart("sometimes").is_err());
        assert!(parse_restart("always:3").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_go_duration("10m"), Some(600.0));
        assert_eq!(parse_go_duration("1h30m"), Some(5400.0));
        assert_eq!(parse_go_duration("250ms"), Some(0.25));
        assert_eq!(parse_go_duration("x"), None);
    }

    #[test]
    fn tmpfs() {
        match parse_tmpfs("/run:size=64m,mode=1777,noexec").unwrap() {
            MountSpec::Tmpfs {
                target,
                size,
                mode,
                options,
            } => {
                assert_eq!(target, "/run");
                assert_eq!(size, Some(64 << 20));
                assert_eq!(mode, Some(0o1777));
                assert_eq!(options, vec!["noexec".to_string()]);
            }
            _ => panic!(),
        }
    }
}
