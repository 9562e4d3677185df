//! One Kubernetes container as the engine's create options: command/args, env (with
//! ConfigMap/Secret references and `$(VAR)` expansion), ports, resources, probes, mounts,
//! securityContext, pull policy.

use std::collections::BTreeMap;

use super::model::*;
use super::volumes::{secret_data, PodVolumes, VolumeSource};
use crate::containers::health::HealthConfig;
use crate::containers::CreateOptions;
use crate::registry::PullPolicy;

/// The ConfigMaps and Secrets of the manifests, by name.
pub struct PodEnv<'a> {
    pub config_maps: &'a BTreeMap<&'a str, &'a ConfigMap>,
    pub secrets: &'a BTreeMap<&'a str, &'a Secret>,
}

const SECOND: i64 = 1_000_000_000;

#[allow(clippy::too_many_arguments)]
pub fn container_options(
    describe: &str,
    path: &str,
    c: &Container,
    pod: &PodSpec,
    meta: &ObjectMeta,
    volumes: &PodVolumes,
    env: &PodEnv,
    unsupported: &mut Vec<String>,
) -> Result<CreateOptions, String> {
    let err = |field: &str, msg: String| format!("{describe}: {path}.{field}: {msg}");
    let mut ignored = |f: String| unsupported.push(format!("{describe}: {path}.{f}"));
    for f in c.unsupported() {
        ignored(f.to_string());
    }
    if c.resources.claims.is_some() {
        ignored("resources.claims".into());
    }
    if c.name.is_empty() {
        return Err(err("name", "Required value".into()));
    }
    if c.name.len() > 63
        || !c
            .name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        || !c.name.starts_with(|ch: char| ch.is_ascii_alphanumeric())
        || !c.name.ends_with(|ch: char| ch.is_ascii_alphanumeric())
    {
        return Err(err(
            "name",
            format!(
                "Invalid value: \"{}\": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character",
                c.name
            ),
        ));
    }
    let image = match c.image.as_deref() {
        Some(i) if !i.trim().is_empty() => i.to_string(),
        _ => return Err(err("image", "Required value".into())),
    };
    let mut o = CreateOptions {
        image,
        ..Default::default()
    };
    o.pull = match c.image_pull_policy.as_deref() {
        // Unset: what is in the store is used, as podman does (Kubernetes would pull
        // `:latest` every time; a local run prefers the local image).
        None | Some("IfNotPresent") => PullPolicy::Missing,
        Some("Always") => PullPolicy::Always,
        Some("Never") => PullPolicy::Never,
        Some(other) => {
            return Err(err(
                "imagePullPolicy",
                format!("Unsupported value: \"{other}\": supported values: \"Always\", \"IfNotPresent\", \"Never\""),
            ))
        }
    };

    // Environment: envFrom first, then env (a later name wins, as in the kubelet).
    let mut vars: Vec<(String, String)> = Vec::new();
    let set = |vars: &mut Vec<(String, String)>, k: String, v: String| {
        vars.retain(|(n, _)| *n != k);
        vars.push((k, v));
    };
    for (i, ef) in c.env_from.iter().enumerate() {
        let prefix = ef.prefix.clone().unwrap_or_default();
        let fpath = format!("envFrom[{i}]");
        if let Some(r) = &ef.config_map_ref {
            match env.config_maps.get(r.name.as_str()) {
                Some(cm) => {
                    for (k, v) in &cm.data {
                        set(&mut vars, format!("{prefix}{k}"), v.clone());
                    }
                }
                None if r.optional == Some(true) => {}
                None => {
                    return Err(err(
                        &format!("{fpath}.configMapRef.name"),
                        format!("ConfigMap \"{}\" is not in the manifests", r.name),
                    ))
                }
            }
        } else if let Some(r) = &ef.secret_ref {
            match env.secrets.get(r.name.as_str()) {
                Some(s) => {
                    for (k, v) in secret_data(s) {
                        set(
                            &mut vars,
                            format!("{prefix}{k}"),
                            String::from_utf8_lossy(&v).into_owned(),
                        );
                    }
                }
                None if r.optional == Some(true) => {}
                None => {
                    return Err(err(
                        &format!("{fpath}.secretRef.name"),
                        format!("Secret \"{}\" is not in the manifests", r.name),
                    ))
                }
            }
        } else {
            return Err(err(
                &fpath,
                "one of configMapRef or secretRef is required".into(),
            ));
        }
    }
    for (i, e) in c.env.iter().enumerate() {
        let epath = format!("env[{i}]");
        if e.name.is_empty() {
            return Err(err(&format!("{epath}.name"), "Required value".into()));
        }
        let value = match (&e.value, &e.value_from) {
            (Some(_), Some(_)) => {
                return Err(err(
                    &format!("{epath}.valueFrom"),
                    "Invalid value: may not be specified when `value` is not empty".into(),
                ))
            }
            (v, None) => Some(expand(v.as_deref().unwrap_or(""), &vars)),
            (None, Some(src)) => value_from(src, &epath, pod, meta, c, env, &err, &mut ignored)?,
        };
        if let Some(v) = value {
            set(&mut vars, e.name.clone(), v);
        }
    }
    o.run.env = vars.iter().map(|(k, v)| format!("{k}={v}")).collect();

    // Kubernetes' command replaces the entrypoint and drops the image's CMD; args replace CMD.
    if let Some(cmd) = &c.command {
        o.run.entrypoint = Some(cmd.iter().map(|s| expand(s, &vars)).collect());
    }
    if let Some(args) = &c.args {
        o.run.cmd = args.iter().map(|s| expand(s, &vars)).collect();
    }
    if let Some(w) = &c.working_dir {
        if !w.starts_with('/') {
            return Err(err(
                "workingDir",
                format!("Invalid value: \"{w}\": must be an absolute path"),
            ));
        }
        o.run.workdir = Some(w.clone());
    }
    o.run.tty = c.tty == Some(true);
    o.run.stdin_open = c.stdin == Some(true);
    if let Some(g) = pod.termination_grace_period_seconds {
        o.run.stop_timeout = Some(g.max(0));
    }

    // Ports: a hostPort is published (as podman does); the others are only declared.
    for (i, p) in c.ports.iter().enumerate() {
        let ppath = format!("ports[{i}]");
        if !(1..=65535).contains(&p.container_port) {
            return Err(err(
                &format!("{ppath}.containerPort"),
                format!(
                    "Invalid value: {}: must be between 1 and 65535, inclusive",
                    p.container_port
                ),
            ));
        }
        let proto = p.protocol.as_deref().unwrap_or("TCP");
        if !matches!(proto, "TCP" | "UDP") {
            return Err(err(
                &format!("{ppath}.protocol"),
                format!("Unsupported value: \"{proto}\": supported values: \"TCP\", \"UDP\""),
            ));
        }
        let proto = proto.to_ascii_lowercase();
        o.host.expose.push(format!("{}/{proto}", p.container_port));
        match p.host_port {
            Some(h) if !(1..=65535).contains(&h) => {
                return Err(err(
                    &format!("{ppath}.hostPort"),
                    format!("Invalid value: {h}: must be between 1 and 65535, inclusive"),
                ))
            }
            Some(h) => {
                let ip = p
                    .host_ip
                    .as_deref()
                    .map(|ip| format!("{ip}:"))
                    .unwrap_or_default();
                o.net
                    .publish
                    .push(format!("{ip}{h}:{}/{proto}", p.container_port));
            }
            None => {}
        }
    }

    resources(c, &mut o, &err, &mut ignored)?;

    // One health check per container: the liveness probe, else the readiness probe.
    let probe = match (&c.liveness_probe, &c.readiness_probe) {
        (Some(l), r) => {
            if r.is_some() {
                ignored("readinessProbe (the livenessProbe is the health check)".into());
            }
            ignored("livenessProbe (a failing probe marks the container unhealthy; it does not restart it)".into());
            Some(("livenessProbe", l))
        }
        (None, Some(r)) => Some(("readinessProbe", r)),
        (None, None) => None,
    };
    if let Some((field, p)) = probe {
        o.healthcheck = Some(health(p, c, field, &err)?);
    }

    security(c, pod, &mut o, &err, &mut ignored)?;

    for (i, m) in c.volume_mounts.iter().enumerate() {
        let mpath = format!("volumeMounts[{i}]");
        if m.mount_propagation.is_some() {
            ignored(format!("{mpath}.mountPropagation"));
        }
        if m.sub_path_expr.is_some() {
            return Err(err(
                &format!("{mpath}.subPathExpr"),
                "not supported by kube play".into(),
            ));
        }
        if !m.mount_path.starts_with('/') {
            return Err(err(
                &format!("{mpath}.mountPath"),
                format!(
                    "Invalid value: \"{}\": must be an absolute path",
                    m.mount_path
                ),
            ));
        }
        let Some(v) = volumes.get(&m.name) else {
            return Err(err(
                &format!("{mpath}.name"),
                format!(
                    "Not found: \"{}\" (no volume of that name in the pod)",
                    m.name
                ),
            ));
        };
        if let Some(s) = &m.sub_path {
            if !super::plan::relative_path_ok(s) {
                return Err(err(
                    &format!("{mpath}.subPath"),
                    format!("Invalid value: \"{s}\": must be a relative path without '..'"),
                ));
            }
        }
        let ro = m.read_only == Some(true);
        let suffix = |ro: bool| if ro { ":ro" } else { "" };
        match v {
            VolumeSource::Bind { host, read_only } => {
                let src = match &m.sub_path {
                    Some(s) => host.join(s),
                    None => host.clone(),
                };
                o.binds.push(format!(
                    "{}:{}{}",
                    src.display(),
                    m.mount_path,
                    suffix(ro || *read_only)
                ));
            }
            VolumeSource::Named {
                name,
                read_only,
                dir,
            } => match &m.sub_path {
                // A path inside the volume: a bind of it (the runner makes every claim, and
                // the path, before any container).
                Some(s) => o.binds.push(format!(
                    "{}:{}{}",
                    dir.join(s).display(),
                    m.mount_path,
                    suffix(ro || *read_only)
                )),
                None => o.binds.push(format!(
                    "{name}:{}{}",
                    m.mount_path,
                    suffix(ro || *read_only)
                )),
            },
            VolumeSource::Tmpfs { size } => {
                if m.sub_path.is_some() {
                    return Err(err(
                        &format!("{mpath}.subPath"),
                        "not supported on a memory-backed emptyDir".into(),
                    ));
                }
                if m.mount_path == "/dev/shm" {
                    o.run.shm_size = Some(*size);
                } else {
                    o.tmpfs.push(format!(
                        "{}:size={size}{}",
                        m.mount_path,
                        if ro { ",ro" } else { "" }
                    ));
                }
            }
        }
    }
    Ok(o)
}

/// `env[].valueFrom`: a key of a ConfigMap or Secret of the manifests, or a field of the pod.
#[allow(clippy::too_many_arguments)]
fn value_from(
    src: &EnvVarSource,
    epath: &str,
    pod: &PodSpec,
    meta: &ObjectMeta,
    c: &Container,
    env: &PodEnv,
    err: &dyn Fn(&str, String) -> String,
    ignored: &mut dyn FnMut(String),
) -> Result<Option<String>, String> {
    if let Some(r) = &src.config_map_key_ref {
        let cm = env.config_maps.get(r.name.as_str());
        return match cm.and_then(|cm| cm.data.get(&r.key)) {
            Some(v) => Ok(Some(v.clone())),
            None if r.optional == Some(true) => Ok(None),
            None => Err(err(
                &format!("{epath}.valueFrom.configMapKeyRef"),
                match cm {
                    Some(_) => format!("ConfigMap \"{}\" has no key \"{}\"", r.name, r.key),
                    None => format!("ConfigMap \"{}\" is not in the manifests", r.name),
                },
            )),
        };
    }
    if let Some(r) = &src.secret_key_ref {
        let s = env.secrets.get(r.name.as_str());
        return match s.and_then(|s| secret_data(s).remove(&r.key)) {
            Some(v) => Ok(Some(String::from_utf8_lossy(&v).into_owned())),
            None if r.optional == Some(true) => Ok(None),
            None => Err(err(
                &format!("{epath}.valueFrom.secretKeyRef"),
                match s {
                    Some(_) => format!("Secret \"{}\" has no key \"{}\"", r.name, r.key),
                    None => format!("Secret \"{}\" is not in the manifests", r.name),
                },
            )),
        };
    }
    if let Some(f) = &src.field_ref {
        let v = match f.field_path.as_str() {
            "metadata.name" => meta.name.clone(),
            "metadata.namespace" => meta.namespace.clone().unwrap_or_else(|| "default".into()),
            "spec.serviceAccountName" => "default".into(),
            "spec.nodeName" => rustix::system::uname()
                .nodename()
                .to_string_lossy()
                .into_owned(),
            p if p.starts_with("metadata.labels['") => {
                let k = p
                    .trim_start_matches("metadata.labels['")
                    .trim_end_matches("']");
                meta.labels.get(k).cloned().unwrap_or_default()
            }
            p if p.starts_with("metadata.annotations['") => {
                let k = p
                    .trim_start_matches("metadata.annotations['")
                    .trim_end_matches("']");
                meta.annotations.get(k).cloned().unwrap_or_default()
            }
            other => {
                ignored(format!(
                    "{epath}.valueFrom.fieldRef.fieldPath: {other} (not known before the pod runs; left unset)"
                ));
                return Ok(None);
            }
        };
        return Ok(Some(v));
    }
    if let Some(r) = &src.resource_field_ref {
        let limits = &c.resources.limits;
        let divisor = match &r.divisor {
            Some(d) => super::quantity::parse(&d.0)
                .map_err(|m| err(&format!("{epath}.valueFrom.resourceFieldRef.divisor"), m))?,
            None => 1.0,
        };
        let v = match r.resource.as_str() {
            "limits.memory" | "limits.cpu" | "requests.memory" | "requests.cpu" => {
                let (map, key) = r.resource.split_once('.').unwrap_or_default();
                let q = if map == "limits" {
                    limits.get(key)
                } else {
                    c.resources.requests.get(key)
                };
                match q {
                    Some(q) => super::quantity::parse(&q.0).unwrap_or(0.0),
                    // Unset limits are the node's capacity in Kubernetes.
                    None if key == "cpu" => std::thread::available_parallelism()
                        .map(|n| n.get() as f64)
                        .unwrap_or(1.0),
                    None => 0.0,
                }
            }
            other => {
                return Err(err(
                    &format!("{epath}.valueFrom.resourceFieldRef.resource"),
                    format!("Unsupported value: \"{other}\""),
                ))
            }
        };
        let _ = pod;
        return Ok(Some(format!("{}", (v / divisor).ceil() as i64)));
    }
    Err(err(
        &format!("{epath}.valueFrom"),
        "Invalid value: must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`".into(),
    ))
}

/// `$(VAR)` references to earlier variables, as the kubelet expands them in env values,
/// command and args; `$$` is a literal `$`; unknown references stay as written.
pub fn expand(s: &str, vars: &[(String, String)]) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(a) = after.strip_prefix('$') {
            out.push('$');
            rest = a;
        } else if let Some(inner) = after.strip_prefix('(') {
            match inner.find(')') {
                Some(end) => {
                    let name = &inner[..end];
                    match vars.iter().rev().find(|(k, _)| k == name) {
                        Some((_, v)) => out.push_str(v),
                        None => {
                            out.push_str("$(");
                            out.push_str(name);
                            out.push(')');
                        }
                    }
                    rest = &inner[end + 1..];
                }
                None => {
                    out.push('$');
                    rest = after;
                }
            }
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// `resources.limits`/`requests` → `--memory`, `--cpus`, `--memory-reservation`,
/// `--cpu-shares` (the kubelet's shares: 1024 per CPU requested).
fn resources(
    c: &Container,
    o: &mut CreateOptions,
    err: &dyn Fn(&str, String) -> String,
    ignored: &mut dyn FnMut(String),
) -> Result<(), String> {
    let q =
        |map: &BTreeMap<String, Quantity>, which: &str, key: &str| -> Result<Option<f64>, String> {
            map.get(key)
                .map(|v| {
                    super::quantity::parse(&v.0)
                        .map_err(|m| err(&format!("resources.{which}.{key}"), m))
                })
                .transpose()
        };
    let (l, r) = (&c.resources.limits, &c.resources.requests);
    let mem_limit = q(l, "limits", "memory")?;
    let mem_request = q(r, "requests", "memory")?;
    let cpu_limit = q(l, "limits", "cpu")?;
    let cpu_request = q(r, "requests", "cpu")?;
    for (which, map) in [("limits", l), ("requests", r)] {
        for k in map.keys() {
            if k != "memory" && k != "cpu" {
                // Checked, then listed: a GPU or hugepages request cannot be met here.
                super::quantity::parse(&map[k].0)
                    .map_err(|m| err(&format!("resources.{which}.{k}"), m))?;
                ignored(format!("resources.{which}.{k}"));
            }
        }
    }
    if let (Some(req), Some(lim)) = (mem_request, mem_limit) {
        if req > lim {
            return Err(err(
                "resources.requests.memory",
                format!(
                    "Invalid value: \"{}\": must be less than or equal to memory limit of {}",
                    r["memory"].0, l["memory"].0
                ),
            ));
        }
    }
    if let (Some(req), Some(lim)) = (cpu_request, cpu_limit) {
        if req > lim {
            return Err(err(
                "resources.requests.cpu",
                format!(
                    "Invalid value: \"{}\": must be less than or equal to cpu limit of {}",
                    r["cpu"].0, l["cpu"].0
                ),
            ));
        }
    }
    if let Some(m) = mem_limit {
        let b = m.ceil() as i64;
        if b < 6 * 1024 * 1024 {
            return Err(err(
                "resources.limits.memory",
                format!("{}: the minimum memory limit allowed is 6MB", l["memory"].0),
            ));
        }
        o.run.memory = Some(b);
    }
    if let Some(m) = mem_request {
        o.host.memory_reservation = Some(m.ceil() as i64);
    }
    if let Some(cpu) = cpu_limit {
        if cpu > 0.0 {
            // --cpus has a resolution of 0.01 (a CFS quota of 1 ms per 100 ms).
            o.run.cpus = Some(cpu.max(0.01));
        }
    }
    if let Some(cpu) = cpu_request {
        o.run.cpu_shares = Some(((cpu * 1024.0) as i64).max(2));
    }
    Ok(())
}

/// A probe as a health check. exec runs as is; httpGet runs `wget` (else `curl`) and tcpSocket
/// `nc` inside the container, as podman does, so the image needs them.
fn health(
    p: &Probe,
    c: &Container,
    field: &str,
    err: &dyn Fn(&str, String) -> String,
) -> Result<HealthConfig, String> {
    let port_of = |port: &IntOrString, at: &str| -> Result<i64, String> {
        match port {
            IntOrString::Int(n) if (1..=65535).contains(n) => Ok(*n),
            IntOrString::Int(n) => Err(err(
                at,
                format!("Invalid value: {n}: must be between 1 and 65535, inclusive"),
            )),
            IntOrString::Str(name) => c
                .ports
                .iter()
                .find(|cp| cp.name.as_deref() == Some(name))
                .map(|cp| cp.container_port as i64)
                .ok_or_else(|| err(at, format!("no container port named \"{name}\""))),
        }
    };
    let handlers = [
        p.exec.is_some(),
        p.http_get.is_some(),
        p.tcp_socket.is_some(),
        p.grpc.is_some(),
    ]
    .iter()
    .filter(|x| **x)
    .count();
    if handlers != 1 {
        return Err(err(
            field,
            "must specify exactly one of: `exec`, `httpGet`, `tcpSocket` or `grpc`".into(),
        ));
    }
    let test = if let Some(e) = &p.exec {
        if e.command.is_empty() {
            return Err(err(
                &format!("{field}.exec.command"),
                "Required value".into(),
            ));
        }
        let mut t = vec!["CMD".to_string()];
        t.extend(e.command.iter().cloned());
        t
    } else if let Some(h) = &p.http_get {
        let port = port_of(&h.port, &format!("{field}.httpGet.port"))?;
        let scheme = h.scheme.as_deref().unwrap_or("HTTP").to_ascii_lowercase();
        if scheme != "http" && scheme != "https" {
            return Err(err(
                &format!("{field}.httpGet.scheme"),
                format!(
                    "Unsupported value: \"{}\": supported values: \"HTTP\", \"HTTPS\"",
                    h.scheme.as_deref().unwrap_or("")
                ),
            ));
        }
        let host = h.host.as_deref().unwrap_or("localhost");
        let path = h.path.as_deref().unwrap_or("/");
        let path = if path.starts_with('/') {
            path.to_string()
        } else {
            format!("/{path}")
        };
        let url = shell_quote(&format!("{scheme}://{host}:{port}{path}"));
        let mut wget_h = String::new();
        let mut curl_h = String::new();
        for hh in h.http_headers.iter().flatten() {
            let v = shell_quote(&format!("{}: {}", hh.name, hh.value));
            wget_h.push_str(&format!(" --header {v}"));
            curl_h.push_str(&format!(" -H {v}"));
        }
        vec![
            "CMD-SHELL".to_string(),
            format!(
                "if command -v wget >/dev/null 2>&1; then wget -q -O /dev/null{wget_h} {url}; else curl -fsS -o /dev/null{curl_h} {url}; fi"
            ),
        ]
    } else if let Some(t) = &p.tcp_socket {
        let port = port_of(&t.port, &format!("{field}.tcpSocket.port"))?;
        let host = shell_quote(t.host.as_deref().unwrap_or("127.0.0.1"));
        vec![
            "CMD-SHELL".to_string(),
            format!("nc -w 1 {host} {port} </dev/null >/dev/null 2>&1"),
        ]
    } else {
        return Err(err(
            &format!("{field}.grpc"),
            "gRPC probes are not supported by kube play (use exec, httpGet or tcpSocket)".into(),
        ));
    };
    let secs = |v: Option<i64>, default: i64, f: &str| -> Result<i64, String> {
        let v = v.unwrap_or(default);
        if v < 0 {
            return Err(err(
                &format!("{field}.{f}"),
                format!("Invalid value: {v}: must be greater than or equal to 0"),
            ));
        }
        Ok(v)
    };
    let period = secs(p.period_seconds, 10, "periodSeconds")?.max(1);
    let timeout = secs(p.timeout_seconds, 1, "timeoutSeconds")?.max(1);
    let retries = secs(p.failure_threshold, 3, "failureThreshold")?.max(1);
    let delay = secs(p.initial_delay_seconds, 0, "initialDelaySeconds")?;
    Ok(HealthConfig {
        test,
        interval: period * SECOND,
        timeout: timeout * SECOND,
        start_period: delay * SECOND,
        start_interval: 0,
        retries,
    })
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// The pod's and the container's securityContext (the container's wins).
fn security(
    c: &Container,
    pod: &PodSpec,
    o: &mut CreateOptions,
    err: &dyn Fn(&str, String) -> String,
    ignored: &mut dyn FnMut(String),
) -> Result<(), String> {
    let psc = pod.security_context.clone().unwrap_or_default();
    let sc = c.security_context.clone().unwrap_or_default();
    for f in sc.unsupported() {
        ignored(format!("securityContext.{f}"));
    }
    let uid = sc.run_as_user.or(psc.run_as_user);
    let gid = sc.run_as_group.or(psc.run_as_group);
    let non_root = sc.run_as_non_root.or(psc.run_as_non_root) == Some(true);
    for (f, v) in [("runAsUser", uid), ("runAsGroup", gid)] {
        if let Some(v) = v {
            if !(0..=i64::from(u32::MAX - 1)).contains(&v) {
                return Err(err(
                    &format!("securityContext.{f}"),
                    format!("Invalid value: {v}: must be between 0 and 2147483647, inclusive"),
                ));
            }
        }
    }
    if non_root && uid == Some(0) {
        return Err(err(
            "securityContext.runAsNonRoot",
            "Invalid value: true: runAsUser is 0 (root)".into(),
        ));
    }
    if non_root && uid.is_none() {
        ignored("securityContext.runAsNonRoot (the image's user is not checked)".into());
    }
    match (uid, gid) {
        (Some(u), Some(g)) => o.run.user = Some(format!("{u}:{g}")),
        (Some(u), None) => o.run.user = Some(u.to_string()),
        (None, Some(g)) => o.run.user = Some(format!("0:{g}")),
        (None, None) => {}
    }
    for g in psc.supplemental_groups.iter().chain(psc.fs_group.iter()) {
        let g = g.to_string();
        if !o.run.group_add.contains(&g) {
            o.run.group_add.push(g);
        }
    }
    for s in &psc.sysctls {
        o.host.sysctls.push(format!("{}={}", s.name, s.value));
    }
    if let Some(caps) = &sc.capabilities {
        o.run.cap_add = caps.add.clone();
        o.run.cap_drop = caps.drop.clone();
    }
    o.run.privileged = sc.privileged == Some(true);
    o.run.read_only = sc.read_only_root_filesystem == Some(true);
    if sc.allow_privilege_escalation == Some(false) {
        if o.run.privileged {
            return Err(err(
                "securityContext",
                "Invalid value: cannot set `allowPrivilegeEscalation` to false and `privileged` to true".into(),
            ));
        }
        o.security_opt.push("no-new-privileges".into());
    }
    if let Some(p) = sc.seccomp_profile.as_ref().or(psc.seccomp_profile.as_ref()) {
        match p.kind.as_str() {
            "RuntimeDefault" => {}
            "Unconfined" => o.security_opt.push("seccomp=unconfined".into()),
            "Localhost" => ignored("securityContext.seccompProfile (Localhost profiles)".into()),
            other => {
                return Err(err(
                    "securityContext.seccompProfile.type",
                    format!("Unsupported value: \"{other}\": supported values: \"Localhost\", \"RuntimeDefault\", \"Unconfined\""),
                ))
            }
        }
    }
    // The hostname, host aliases, DNS and host namespaces are the pod's (plan::pod_spec).
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expansion_follows_the_kubelet() {
        let v = vec![("A".to_string(), "x".to_string())];
        assert_eq!(expand("$(A)-$(B)-$$(A)-$", &v), "x-$(B)-$(A)-$");
    }
}
