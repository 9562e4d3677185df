//! From parsed manifests to what `kube play` will do: the pods (each its containers' create
//! options, in start order), the files and directories their volumes need, the named volumes,
//! and the list of what cannot run locally. A pure function, so every rule is unit-tested
//! without root; nothing runs until the whole plan is made, so bad input starts nothing.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::container::{container_options, PodEnv};
use super::model::*;
use super::parse::Document;
use crate::containers::CreateOptions;

/// Labels `kube play` puts on every container it makes; `kube down` finds them by the first.
pub const LABEL_MANIFEST: &str = "io.berth.kube.manifest";
pub const LABEL_POD: &str = "io.berth.kube.pod";
pub const LABEL_OWNER: &str = "io.berth.kube.owner";
pub const LABEL_CONTAINER: &str = "io.berth.kube.container";
pub const LABEL_INIT: &str = "io.berth.kube.init";
/// The ports a container declares (`8080/tcp,53/udp`): they are the pod's, so this is how
/// `kube generate` gives each back to its container.
pub const LABEL_PORTS: &str = "io.berth.kube.ports";

/// Where the plan puts things.
#[derive(Debug, Clone)]
pub struct PlanContext {
    /// The manifest's identity (its canonical path), written on every container.
    pub identity: String,
    /// This manifest's directory under the root (`$ROOT/kube/<hash>`): ConfigMap and Secret
    /// files, emptyDir directories.
    pub dir: PathBuf,
    /// `$ROOT/volumes` (a claim's directory, for a `subPath` into it).
    pub volumes_dir: PathBuf,
    /// The host's memory in bytes: a memory-backed emptyDir without a size gets what a tmpfs
    /// gets by default, half of it.
    pub host_memory: u64,
}

/// What a hostPath volume's `type` asks to check or create before anything starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostPathCheck {
    /// No type: nothing is checked.
    Any,
    DirectoryOrCreate,
    Directory,
    FileOrCreate,
    File,
    Socket,
    CharDevice,
    BlockDevice,
}

/// One pod to run.
#[derive(Debug, Clone)]
pub struct PodPlan {
    pub name: String,
    /// `Deployment/web`.
    pub owner: String,
    /// Files to write (ConfigMap and Secret volumes): path, content, mode.
    pub files: Vec<(PathBuf, Vec<u8>, u32)>,
    /// Directories to make (emptyDir volumes, empty ConfigMap volumes).
    pub dirs: Vec<PathBuf>,
    pub host_paths: Vec<(String, PathBuf, HostPathCheck)>,
    /// The berth pod: its labels (the manifest's, to find it again), shared namespaces,
    /// hostname, DNS, and the published ports of every container and Service.
    pub pod: crate::pods::PodSpec,
    /// Run to completion, in order, before `containers`, inside the pod.
    pub init: Vec<CreateOptions>,
    /// Started together, inside the pod.
    pub containers: Vec<CreateOptions>,
    /// The containers' named ports (a Service's `targetPort` may name one).
    pub named_ports: BTreeMap<String, i32>,
}

/// The whole plan.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// Named volumes (claims) to create when missing.
    pub volumes: Vec<String>,
    pub pods: Vec<PodPlan>,
    /// What cannot run locally, one entry each (`document 2 (Deployment web):
    /// spec.template.spec.nodeSelector`).
    pub unsupported: Vec<String>,
}

/// The objects of all the files, by kind, with where each came from.
struct Sources<'a> {
    config_maps: BTreeMap<&'a str, &'a ConfigMap>,
    secrets: BTreeMap<&'a str, &'a Secret>,
}

/// Makes the plan for the documents of one manifest (its files concatenated).
pub fn plan(docs: &[Document], ctx: &PlanContext) -> Result<Plan, String> {
    let mut p = Plan::default();
    let mut src = Sources {
        config_maps: BTreeMap::new(),
        secrets: BTreeMap::new(),
    };
    let mut seen: Vec<(String, String)> = Vec::new();
    for d in docs {
        let (kind, name) = d.kind_name();
        if !matches!(d.object, Object::Skipped { .. }) {
            check_meta(d, &kind)?;
            if seen.contains(&(kind.clone(), name.clone())) {
                return Err(format!(
                    "{}: metadata.name: a {kind} named \"{name}\" is defined twice",
                    d.describe()
                ));
            }
            seen.push((kind.clone(), name.clone()));
        }
        match &d.object {
            Object::ConfigMap(c) => {
                for k in c.data.keys().chain(c.binary_data.keys()) {
                    check_key(k).map_err(|e| format!("{}: data.{k}: {e}", d.describe()))?;
                }
                for (k, v) in &c.binary_data {
                    decode_base64(v)
                        .map_err(|e| format!("{}: binaryData.{k}: {e}", d.describe()))?;
                }
                src.config_maps.insert(c.metadata.name.as_str(), &**c);
            }
            Object::Secret(s) => {
                for (k, v) in &s.data {
                    check_key(k).map_err(|e| format!("{}: data.{k}: {e}", d.describe()))?;
                    decode_base64(v).map_err(|e| format!("{}: data.{k}: {e}", d.describe()))?;
                }
                src.secrets.insert(s.metadata.name.as_str(), &**s);
            }
            Object::Pvc(c) => {
                push_unique(&mut p.volumes, &c.metadata.name);
                for f in c.spec.unsupported() {
                    p.unsupported.push(format!("{}: spec.{f}", d.describe()));
                }
                if let Some(r) = &c.spec.resources {
                    if let Some(q) = r.requests.get("storage") {
                        super::quantity::parse(&q.0).map_err(|e| {
                            format!("{}: spec.resources.requests.storage: {e}", d.describe())
                        })?;
                        p.unsupported.push(format!(
                            "{}: spec.resources.requests.storage (a local volume has no size)",
                            d.describe()
                        ));
                    }
                }
            }
            Object::Skipped { .. } => {
                p.unsupported
                    .push(format!("{}: the whole object", d.describe()));
            }
            _ => {}
        }
    }
    let env = PodEnv {
        config_maps: &src.config_maps,
        secrets: &src.secrets,
    };
    for d in docs {
        let (kind, name) = d.kind_name();
        let describe = d.describe();
        let mut ignored = |path: String| p.unsupported.push(format!("{describe}: {path}"));
        let (template, pods, restart): (&PodTemplateSpec, Vec<String>, Restart) = match &d.object {
            Object::Pod(w) => {
                for f in w.metadata.unsupported() {
                    ignored(format!("metadata.{f}"));
                }
                let spec = PodTemplateSpec {
                    metadata: w.metadata.clone(),
                    spec: w.spec.clone(),
                };
                let restart = pod_restart(&spec.spec, &describe, "spec")?;
                let plan = pod(
                    d,
                    &spec,
                    "spec",
                    &w.metadata.name,
                    &kind,
                    restart,
                    ctx,
                    &env,
                    &mut p,
                )?;
                p.pods.push(plan);
                continue;
            }
            Object::Deployment(w) => {
                for f in w.spec.unsupported() {
                    ignored(format!("spec.{f}"));
                }
                check_selector(d, w.spec.selector.as_ref(), &w.spec.template, true)?;
                let replicas = w.spec.replicas.unwrap_or(1);
                if replicas < 0 {
                    return Err(format!(
                        "{describe}: spec.replicas: must be greater than or equal to 0"
                    ));
                }
                if let Some(r) = &w.spec.template.spec.restart_policy {
                    if r != "Always" {
                        return Err(format!(
                            "{describe}: spec.template.spec.restartPolicy: Unsupported value: \"{r}\": supported values: \"Always\""
                        ));
                    }
                }
                let hash = template_hash(&d.raw);
                let pods = (0..replicas)
                    .map(|n| format!("{name}-{hash}-{n}"))
                    .collect();
                (&w.spec.template, pods, Restart::Always)
            }
            Object::DaemonSet(w) => {
                for f in w.spec.unsupported() {
                    ignored(format!("spec.{f}"));
                }
                check_selector(d, w.spec.selector.as_ref(), &w.spec.template, true)?;
                if let Some(r) = &w.spec.template.spec.restart_policy {
                    if r != "Always" {
                        return Err(format!(
                            "{describe}: spec.template.spec.restartPolicy: Unsupported value: \"{r}\": supported values: \"Always\""
                        ));
                    }
                }
                ignored("kind DaemonSet: one pod, for this one node".into());
                let hash = template_hash(&d.raw);
                (
                    &w.spec.template,
                    vec![format!("{name}-{hash}")],
                    Restart::Always,
                )
            }
            Object::Job(w) => {
                for f in w.spec.unsupported() {
                    ignored(format!("spec.{f}"));
                }
                if w.spec.manual_selector == Some(true) {
                    check_selector(d, w.spec.selector.as_ref(), &w.spec.template, true)?;
                }
                for (field, v) in [
                    ("completions", w.spec.completions),
                    ("parallelism", w.spec.parallelism),
                ] {
                    if let Some(n) = v {
                        if n < 0 {
                            return Err(format!(
                                "{describe}: spec.{field}: must be greater than or equal to 0"
                            ));
                        }
                        if n > 1 {
                            ignored(format!("spec.{field}: {n} (one pod runs)"));
                        }
                    }
                }
                let backoff = w.spec.backoff_limit.unwrap_or(6);
                if backoff < 0 {
                    return Err(format!(
                        "{describe}: spec.backoffLimit: must be greater than or equal to 0"
                    ));
                }
                let restart = match w.spec.template.spec.restart_policy.as_deref() {
                    Some("OnFailure") | Some("Never") => Restart::OnFailure(backoff as u32),
                    Some(other) => {
                        return Err(format!(
                            "{describe}: spec.template.spec.restartPolicy: Unsupported value: \"{other}\": supported values: \"OnFailure\", \"Never\""
                        ))
                    }
                    None => {
                        return Err(format!(
                            "{describe}: spec.template.spec.restartPolicy: Required value: a Job's pods need restartPolicy OnFailure or Never"
                        ))
                    }
                };
                let hash = template_hash(&d.raw);
                (&w.spec.template, vec![format!("{name}-{hash}")], restart)
            }
            _ => continue,
        };
        for pod_name in pods {
            let plan = pod(
                d,
                template,
                "spec.template.spec",
                &pod_name,
                &kind,
                restart,
                ctx,
                &env,
                &mut p,
            )?;
            p.pods.push(plan);
        }
    }
    services(docs, &mut p)?;
    // Replicas of one template repeat its entries: each is said once.
    let mut seen = Vec::new();
    p.unsupported.retain(|u| {
        let new = !seen.contains(u);
        if new {
            seen.push(u.clone());
        }
        new
    });
    Ok(p)
}

/// A pod's restart policy as the container's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Restart {
    Always,
    /// `on-failure:N`; a Job's backoffLimit.
    OnFailure(u32),
    Never,
}

impl Restart {
    pub fn docker(self) -> String {
        match self {
            Restart::Always => "always".into(),
            Restart::OnFailure(0) => "no".into(),
            Restart::OnFailure(n) => format!("on-failure:{n}"),
            Restart::Never => "no".into(),
        }
    }
}

fn pod_restart(spec: &PodSpec, describe: &str, path: &str) -> Result<Restart, String> {
    match spec.restart_policy.as_deref() {
        None | Some("Always") => Ok(Restart::Always),
        // A bare pod that fails is restarted as long as it fails: no limit.
        Some("OnFailure") => Ok(Restart::OnFailure(u32::MAX)),
        Some("Never") => Ok(Restart::Never),
        Some(other) => Err(format!(
            "{describe}: {path}.restartPolicy: Unsupported value: \"{other}\": supported values: \"Always\", \"OnFailure\", \"Never\""
        )),
    }
}

fn check_meta(d: &Document, kind: &str) -> Result<(), String> {
    let (_, name) = d.kind_name();
    if name.is_empty() {
        let generate = d
            .raw
            .get("metadata")
            .and_then(|m| m.get("generateName"))
            .is_some();
        return Err(format!(
            "{}: metadata.name: Required value{}",
            d.describe(),
            if generate {
                " (generateName is not supported by kube play)"
            } else {
                ""
            }
        ));
    }
    // Pods, Services and the rest are DNS-1123 subdomains; a Service name is a label.
    let max = if kind == "Service" { 63 } else { 253 };
    if name.len() > max
        || !name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        || !name.starts_with(|c: char| c.is_ascii_alphanumeric())
        || !name.ends_with(|c: char| c.is_ascii_alphanumeric())
        || (kind == "Service" && name.contains('.'))
    {
        return Err(format!(
            "{}: metadata.name: Invalid value: \"{name}\": a lowercase RFC 1123 {} must consist of lower case alphanumeric characters, '-'{}, and must start and end with an alphanumeric character",
            d.describe(),
            if kind == "Service" { "label" } else { "subdomain" },
            if kind == "Service" { "" } else { " or '.'" },
        ));
    }
    Ok(())
}

/// A ConfigMap or Secret key: what Kubernetes allows as a file name.
fn check_key(k: &str) -> Result<(), String> {
    if k.is_empty()
        || k == "."
        || k == ".."
        || k.len() > 253
        || !k
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        return Err(format!(
            "Invalid value: \"{k}\": a valid config key must consist of alphanumeric characters, '-', '_' or '.'"
        ));
    }
    Ok(())
}

pub fn decode_base64(v: &str) -> Result<Vec<u8>, String> {
    use base64::Engine as _;
    let clean: String = v.chars().filter(|c| !c.is_whitespace()).collect();
    base64::engine::general_purpose::STANDARD
        .decode(clean)
        .map_err(|e| format!("illegal base64 data: {e}"))
}

fn check_selector(
    d: &Document,
    sel: Option<&LabelSelector>,
    t: &PodTemplateSpec,
    required: bool,
) -> Result<(), String> {
    let describe = d.describe();
    let Some(sel) = sel else {
        if required {
            return Err(format!("{describe}: spec.selector: Required value"));
        }
        return Ok(());
    };
    if sel.match_expressions.is_some() {
        return Err(format!(
            "{describe}: spec.selector.matchExpressions: not supported by kube play (use matchLabels)"
        ));
    }
    if sel.match_labels.is_empty() {
        return Err(format!(
            "{describe}: spec.selector: Invalid value: empty selector is invalid for deployment"
        ));
    }
    for (k, v) in &sel.match_labels {
        if t.metadata.labels.get(k) != Some(v) {
            return Err(format!(
                "{describe}: spec.template.metadata.labels: Invalid value: `selector` does not match template `labels` ({k}={v})"
            ));
        }
    }
    Ok(())
}

/// The first 10 hex digits of the pod template's digest: pods of a changed template get new
/// names, as Kubernetes' pod-template-hash does.
fn template_hash(raw: &yaml_serde::Value) -> String {
    let t = raw
        .get("spec")
        .and_then(|s| s.get("template"))
        .map(|t| yaml_serde::to_string(t).unwrap_or_default())
        .unwrap_or_default();
    let h = Sha256::digest(t.as_bytes());
    h.iter().take(5).map(|b| format!("{b:02x}")).collect()
}

fn push_unique(v: &mut Vec<String>, s: &str) {
    if !v.iter().any(|x| x == s) {
        v.push(s.to_string());
    }
}

/// One pod from a template.
#[allow(clippy::too_many_arguments)]
fn pod(
    d: &Document,
    t: &PodTemplateSpec,
    path: &str,
    pod_name: &str,
    kind: &str,
    restart: Restart,
    ctx: &PlanContext,
    env: &PodEnv,
    p: &mut Plan,
) -> Result<PodPlan, String> {
    let describe = d.describe();
    let spec = &t.spec;
    let (_, owner_name) = d.kind_name();
    let mut ignored = |f: String| p.unsupported.push(format!("{describe}: {path}.{f}"));
    for f in spec.unsupported() {
        ignored(f.to_string());
    }
    if let Some(sc) = &spec.security_context {
        for f in sc.unsupported() {
            ignored(format!("securityContext.{f}"));
        }
    }
    if spec.share_process_namespace == Some(true) && spec.host_pid == Some(true) {
        return Err(format!(
            "{describe}: {path}.shareProcessNamespace: Invalid value: true: ShareProcessNamespace and HostPID cannot both be enabled"
        ));
    }
    if let Some(ns) = t.metadata.namespace.as_deref().filter(|n| *n != "default") {
        p.unsupported.push(format!(
            "{describe}: metadata.namespace: \"{ns}\" (one local namespace)"
        ));
    }
    if spec.containers.is_empty() {
        return Err(format!("{describe}: {path}.containers: Required value"));
    }
    let pod_dir = ctx.dir.join(pod_name);
    let mut plan = PodPlan {
        name: pod_name.to_string(),
        owner: format!("{kind}/{owner_name}"),
        files: Vec::new(),
        dirs: Vec::new(),
        host_paths: Vec::new(),
        pod: pod_spec(spec, t, pod_name, kind, &owner_name, ctx),
        init: Vec::new(),
        containers: Vec::new(),
        named_ports: BTreeMap::new(),
    };
    for c in &spec.containers {
        for port in &c.ports {
            if let Some(n) = &port.name {
                plan.named_ports.insert(n.clone(), port.container_port);
            }
        }
    }
    let volumes = super::volumes::pod_volumes(
        &describe,
        path,
        spec,
        &pod_dir,
        env,
        ctx,
        &mut plan,
        &mut p.volumes,
        &mut p.unsupported,
    )?;

    // The pod's own metadata, as `fieldRef: metadata.name` sees it.
    let mut meta = t.metadata.clone();
    meta.name = pod_name.to_string();
    let mut names: Vec<&str> = Vec::new();
    let all = spec
        .init_containers
        .iter()
        .map(|c| (true, c))
        .chain(spec.containers.iter().map(|c| (false, c)));
    let mut init_index = 0;
    let mut index = 0;
    for (is_init, c) in all {
        let cpath = if is_init {
            init_index += 1;
            format!("{path}.initContainers[{}]", init_index - 1)
        } else {
            index += 1;
            format!("{path}.containers[{}]", index - 1)
        };
        if names.contains(&c.name.as_str()) {
            return Err(format!(
                "{describe}: {cpath}.name: Duplicate value: \"{}\"",
                c.name
            ));
        }
        names.push(c.name.as_str());
        let mut o = container_options(
            &describe,
            &cpath,
            c,
            spec,
            &meta,
            &volumes,
            env,
            &mut p.unsupported,
        )?;
        // subPaths into claims: made before anything starts, as the kubelet does.
        for b in &o.binds {
            let src = b.split(':').next().unwrap_or("");
            if Path::new(src).starts_with(&ctx.volumes_dir)
                && !plan.dirs.iter().any(|d| d == Path::new(src))
            {
                plan.dirs.push(PathBuf::from(src));
            }
        }
        let cname = format!("{pod_name}-{}", c.name);
        o.name = Some(cname.clone());
        o.detach = true;
        let labels = &mut o.run.labels;
        for (k, v) in &t.metadata.labels {
            labels.insert(k.clone(), v.clone());
        }
        labels.insert(LABEL_MANIFEST.into(), ctx.identity.clone());
        labels.insert(LABEL_POD.into(), pod_name.to_string());
        labels.insert(LABEL_OWNER.into(), plan.owner.clone());
        labels.insert(LABEL_CONTAINER.into(), c.name.clone());
        if is_init {
            labels.insert(LABEL_INIT.into(), "true".into());
            o.restart = None;
        } else {
            o.restart = Some(match restart {
                // A bare pod's OnFailure has no limit.
                Restart::OnFailure(u32::MAX) => "on-failure".into(),
                r => r.docker(),
            });
        }
        // The pod holds the network, hostname, DNS and ports: the container joins it.
        o.pod = Some(pod_name.to_string());
        o.run.hostname = None;
        let ports: Vec<String> = std::mem::take(&mut o.host.expose);
        if !ports.is_empty() {
            o.run.labels.insert(LABEL_PORTS.into(), ports.join(","));
        }
        if spec.host_network != Some(true) {
            for p in std::mem::take(&mut o.net.publish) {
                push_unique(&mut plan.pod.publish, &p);
            }
        }
        o.net = Default::default();
        // A memory-backed emptyDir at /dev/shm sizes the pod's /dev/shm, which its
        // containers share with the IPC namespace (the largest asked for).
        if spec.host_ipc != Some(true) {
            if let Some(size) = o.run.shm_size.take() {
                plan.pod.shm_size = Some(plan.pod.shm_size.unwrap_or(0).max(size));
            }
        }
        if spec.host_pid == Some(true) {
            o.host.pid = Some("host".into());
        }
        if spec.host_ipc == Some(true) {
            o.host.ipc = Some("host".into());
        }
        if is_init {
            plan.init.push(o);
        } else {
            plan.containers.push(o);
        }
    }
    // A memory-backed emptyDir is a tmpfs of each container that mounts it.
    for (name, v) in &volumes {
        if let super::volumes::VolumeSource::Tmpfs { .. } = v {
            let users = spec
                .containers
                .iter()
                .chain(&spec.init_containers)
                .filter(|c| c.volume_mounts.iter().any(|m| &m.name == name))
                .count();
            if users > 1 {
                p.unsupported.push(format!(
                    "{describe}: {path}.volumes[{name}].emptyDir.medium: Memory (each container gets its own tmpfs; not shared)"
                ));
            }
        }
    }
    Ok(plan)
}

/// The berth pod of one Kubernetes pod: the network, IPC and UTS namespaces shared (IPC
/// not with `hostIPC`, UTS not with `hostNetwork`, as the node's are used), the PID namespace
/// with `shareProcessNamespace`; the hostname, host aliases and DNS of the pod spec.
fn pod_spec(
    spec: &PodSpec,
    t: &PodTemplateSpec,
    pod_name: &str,
    kind: &str,
    owner: &str,
    ctx: &PlanContext,
) -> crate::pods::PodSpec {
    let host_network = spec.host_network == Some(true);
    let mut share = vec!["net"];
    if spec.host_ipc != Some(true) {
        share.push("ipc");
    }
    if !host_network {
        share.push("uts");
    }
    if spec.share_process_namespace == Some(true) {
        share.push("pid");
    }
    let mut labels = t.metadata.labels.clone();
    labels.insert(LABEL_MANIFEST.into(), ctx.identity.clone());
    labels.insert(LABEL_POD.into(), pod_name.to_string());
    labels.insert(LABEL_OWNER.into(), format!("{kind}/{owner}"));
    let mut p = crate::pods::PodSpec {
        name: Some(pod_name.to_string()),
        labels,
        share: Some(share.join(",")),
        network: host_network.then(|| "host".to_string()),
        ..Default::default()
    };
    if !host_network {
        p.hostname = Some(
            spec.hostname
                .clone()
                .unwrap_or_else(|| pod_name.to_string()),
        );
    }
    for a in &spec.host_aliases {
        for h in &a.hostnames {
            p.add_hosts.push(format!("{h}:{}", a.ip));
        }
    }
    if let Some(d) = &spec.dns_config {
        p.dns = d.nameservers.clone();
        p.dns_search = d.searches.clone();
        p.dns_options = d
            .options
            .iter()
            .map(|x| match &x.value {
                Some(v) => format!("{}:{v}", x.name),
                None => x.name.clone(),
            })
            .collect();
    }
    p
}

/// Services: a `nodePort` (type NodePort or LoadBalancer) is published on the host, and a
/// LoadBalancer's `port` too, on the first pod the selector matches (one host port goes to
/// one pod); a ClusterIP port has no local meaning and is listed.
fn services(docs: &[Document], p: &mut Plan) -> Result<(), String> {
    for d in docs {
        let Object::Service(s) = &d.object else {
            continue;
        };
        let describe = d.describe();
        for f in s.spec.unsupported() {
            p.unsupported.push(format!("{describe}: spec.{f}"));
        }
        let kind = s.spec.kind.as_deref().unwrap_or("ClusterIP");
        if !matches!(
            kind,
            "ClusterIP" | "NodePort" | "LoadBalancer" | "ExternalName"
        ) {
            return Err(format!(
                "{describe}: spec.type: Unsupported value: \"{kind}\": supported values: \"ClusterIP\", \"ExternalName\", \"LoadBalancer\", \"NodePort\""
            ));
        }
        let matching: Vec<usize> = p
            .pods
            .iter()
            .enumerate()
            .filter(|(_, pod)| {
                !s.spec.selector.is_empty()
                    && s.spec
                        .selector
                        .iter()
                        .all(|(k, v)| pod.pod.labels.get(k) == Some(v))
            })
            .map(|(i, _)| i)
            .collect();
        for (i, port) in s.spec.ports.iter().enumerate() {
            let ppath = format!("spec.ports[{i}]");
            let proto = port.protocol.as_deref().unwrap_or("TCP");
            if !matches!(proto, "TCP" | "UDP") {
                return Err(format!(
                    "{describe}: {ppath}.protocol: Unsupported value: \"{proto}\": supported values: \"TCP\", \"UDP\""
                ));
            }
            if !(1..=65535).contains(&port.port) {
                return Err(format!(
                    "{describe}: {ppath}.port: Invalid value: {}: must be between 1 and 65535, inclusive",
                    port.port
                ));
            }
            let host_port = match (kind, port.node_port) {
                ("NodePort" | "LoadBalancer", Some(n)) => Some(n),
                ("LoadBalancer", None) => Some(port.port),
                (_, Some(_)) => {
                    return Err(format!(
                        "{describe}: {ppath}.nodePort: Forbidden: may not be used when `type` is '{kind}'"
                    ))
                }
                _ => None,
            };
            let Some(host_port) = host_port else {
                p.unsupported.push(format!(
                    "{describe}: {ppath} (type {kind}: not published; give the container a hostPort or the Service type NodePort)"
                ));
                continue;
            };
            if !(1..=65535).contains(&host_port) {
                return Err(format!(
                    "{describe}: {ppath}.nodePort: Invalid value: {host_port}: must be between 1 and 65535, inclusive"
                ));
            }
            let Some(&first) = matching.first() else {
                p.unsupported.push(format!(
                    "{describe}: {ppath} (no pod matches the selector: not published)"
                ));
                continue;
            };
            if matching.len() > 1 {
                p.unsupported.push(format!(
                    "{describe}: {ppath} (port {host_port} goes to pod {} only: no load balancing)",
                    p.pods[first].name
                ));
            }
            let pod = &mut p.pods[first];
            let target = match &port.target_port {
                None => port.port,
                Some(IntOrString::Int(n)) => *n as i32,
                Some(IntOrString::Str(name)) => {
                    named_port(pod, name).ok_or_else(|| {
                        format!(
                            "{describe}: {ppath}.targetPort: no container of pod {} has a port named \"{name}\"",
                            pod.name
                        )
                    })?
                }
            };
            let spec = format!("{host_port}:{target}/{}", proto.to_ascii_lowercase());
            if pod.pod.network.as_deref() == Some("host") {
                continue;
            }
            push_unique(&mut pod.pod.publish, &spec);
        }
    }
    Ok(())
}

fn named_port(pod: &PodPlan, name: &str) -> Option<i32> {
    pod.named_ports.get(name).copied()
}

/// Whether `path` is a plain relative path (no `..`, not absolute).
pub fn relative_path_ok(path: &str) -> bool {
    !path.is_empty()
        && !Path::new(path).is_absolute()
        && Path::new(path)
            .components()
            .all(|c| matches!(c, std::path::Component::Normal(_)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kube::play::parse::parse;

    fn ctx() -> PlanContext {
        PlanContext {
            identity: "/m/web.yaml".into(),
            dir: PathBuf::from("/root/kube/x"),
            volumes_dir: PathBuf::from("/root/volumes"),
            host_memory: 8 << 30,
        }
    }

    fn plan_of(y: &str) -> Result<Plan, String> {
        plan(&parse(y)?, &ctx())
    }

    const WEB: &str = r#"
apiVersion: v1
kind: ConfigMap
metadata: {name: cfg}
data: {GREETING: hello, index.html: "<h1>hi</h1>"}
---
apiVersion: v1
kind: Secret
metadata: {name: creds}
data: {password: c2VjcmV0}
stringData: {user: admin}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 3
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      tolerations: [{key: gpu, operator: Exists}]
      containers:
      - name: httpd
        image: busybox
        command: [httpd, -f, -p, "8080"]
        args: ["$(GREETING)-x"]
        envFrom: [{secretRef: {name: creds}, prefix: DB_}]
        env:
        - {name: GREETING, valueFrom: {configMapKeyRef: {name: cfg, key: GREETING}}}
        - {name: POD, valueFrom: {fieldRef: {fieldPath: metadata.name}}}
        ports: [{containerPort: 8080, name: http}]
        resources:
          limits: {memory: 128Mi, cpu: "1.5"}
          requests: {memory: 64Mi, cpu: 250m}
        livenessProbe: {tcpSocket: {port: http}, periodSeconds: 2, failureThreshold: 5}
        securityContext: {runAsUser: 1000, readOnlyRootFilesystem: true, capabilities: {drop: [ALL], add: [NET_BIND_SERVICE]}}
        volumeMounts:
        - {name: html, mountPath: /www}
        - {name: shm, mountPath: /dev/shm}
        - {name: data, mountPath: /data, subPath: web}
      volumes:
      - {name: html, configMap: {name: cfg, items: [{key: index.html, path: index.html, mode: 0600}]}}
      - {name: shm, emptyDir: {medium: Memory, sizeLimit: 256Mi}}
      - {name: data, persistentVolumeClaim: {claimName: data}}
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  type: NodePort
  selector: {app: web}
  ports: [{port: 80, targetPort: http, nodePort: 30080}]
"#;

    #[test]
    fn a_deployment_becomes_replicas_with_everything_mapped() {
        let p = plan_of(WEB).unwrap();
        assert_eq!(p.pods.len(), 3);
        assert_eq!(p.volumes, ["data"]);
        let names: Vec<&str> = p.pods.iter().map(|p| p.name.as_str()).collect();
        let hash = names[0].trim_start_matches("web-").trim_end_matches("-0");
        assert_eq!(hash.len(), 10, "{names:?}");
        assert_eq!(names[2], format!("web-{hash}-2"));
        let pod = &p.pods[0];
        assert_eq!(pod.owner, "Deployment/web");
        let c = &pod.containers[0];
        assert_eq!(
            c.name.as_deref(),
            Some(format!("{}-httpd", pod.name).as_str())
        );
        assert_eq!(
            c.run.entrypoint,
            Some(vec![
                "httpd".into(),
                "-f".into(),
                "-p".into(),
                "8080".into()
            ])
        );
        assert_eq!(c.run.cmd, ["hello-x"]);
        assert_eq!(
            c.run.env,
            [
                "DB_password=secret".to_string(),
                "DB_user=admin".into(),
                "GREETING=hello".into(),
                format!("POD={}", pod.name)
            ]
        );
        assert_eq!(c.run.memory, Some(128 << 20));
        assert_eq!(c.host.memory_reservation, Some(64 << 20));
        assert_eq!(c.run.cpus, Some(1.5));
        assert_eq!(c.run.cpu_shares, Some(256));
        assert_eq!(c.run.user.as_deref(), Some("1000"));
        assert!(c.run.read_only);
        assert_eq!(c.run.cap_drop, ["ALL"]);
        assert_eq!(c.run.cap_add, ["NET_BIND_SERVICE"]);
        assert_eq!(c.run.shm_size, None);
        assert_eq!(pod.pod.shm_size, Some(256 << 20));
        assert_eq!(c.restart.as_deref(), Some("always"));
        // The hostname, like the ports, is the pod's; the container joins the pod.
        assert_eq!(c.run.hostname, None);
        assert_eq!(pod.pod.hostname.as_deref(), Some(pod.name.as_str()));
        assert_eq!(c.pod.as_deref(), Some(pod.name.as_str()));
        assert_eq!(c.run.labels[LABEL_PORTS], "8080/tcp");
        assert!(c.host.expose.is_empty());
        let hc = c.healthcheck.as_ref().unwrap();
        assert_eq!(hc.test[0], "CMD-SHELL");
        assert!(
            hc.test[1].contains("nc -w 1 '127.0.0.1' 8080"),
            "{:?}",
            hc.test
        );
        assert_eq!((hc.interval, hc.retries), (2_000_000_000, 5));
        assert_eq!(
            c.binds,
            [
                format!("/root/kube/x/{}/volumes/html:/www:ro", pod.name),
                "/root/volumes/data/_data/web:/data".to_string()
            ]
        );
        assert!(pod
            .dirs
            .contains(&PathBuf::from("/root/volumes/data/_data/web")));
        assert_eq!(
            pod.files,
            [(
                PathBuf::from(format!("/root/kube/x/{}/volumes/html/index.html", pod.name)),
                b"<h1>hi</h1>".to_vec(),
                0o600
            )]
        );
        assert_eq!(c.run.labels[LABEL_MANIFEST], "/m/web.yaml");
        assert_eq!(c.run.labels[LABEL_POD], pod.name);
        assert_eq!(c.run.labels["app"], "web");
        // The Service's nodePort goes to the first pod only, and says so.
        assert_eq!(pod.pod.publish, ["30080:8080/tcp"]);
        assert!(c.net.publish.is_empty());
        assert!(p.pods[1].pod.publish.is_empty());
        assert_eq!(pod.pod.labels[LABEL_MANIFEST], "/m/web.yaml");
        assert_eq!(pod.pod.labels["app"], "web");
        let u = p.unsupported.join("\n");
        assert!(
            u.contains("document 3 (Deployment web): spec.template.spec.tolerations"),
            "{u}"
        );
        assert!(u.contains("no load balancing"), "{u}");
        // Said once, not once per replica.
        assert_eq!(u.matches("tolerations").count(), 1, "{u}");
    }

    #[test]
    fn a_pod_of_two_containers_is_a_berth_pod_with_its_init_containers_inside() {
        let p = plan_of(
            r#"
apiVersion: v1
kind: Pod
metadata: {name: duo}
spec:
  restartPolicy: OnFailure
  initContainers:
  - {name: setup, image: busybox, command: [sh, -c, "echo hi > /work/msg"], volumeMounts: [{name: work, mountPath: /work}]}
  containers:
  - {name: server, image: busybox, ports: [{containerPort: 80, hostPort: 8081}], volumeMounts: [{name: work, mountPath: /work}]}
  - {name: client, image: busybox, ports: [{containerPort: 9000, hostPort: 9000, protocol: UDP}]}
  volumes: [{name: work, emptyDir: {}}]
"#,
        )
        .unwrap();
        let pod = &p.pods[0];
        assert_eq!(pod.name, "duo");
        assert_eq!(pod.init.len(), 1);
        assert_eq!(pod.init[0].restart, None);
        assert_eq!(pod.init[0].run.labels[LABEL_INIT], "true");
        let (a, b) = (&pod.containers[0], &pod.containers[1]);
        for c in [&pod.init[0], a, b] {
            assert_eq!(c.pod.as_deref(), Some("duo"));
            assert_eq!(c.network, None);
            assert_eq!(c.run.hostname, None);
            assert!(c.net.publish.is_empty());
        }
        assert_eq!(pod.pod.name.as_deref(), Some("duo"));
        assert_eq!(pod.pod.share.as_deref(), Some("net,ipc,uts"));
        assert_eq!(pod.pod.publish, ["8081:80/tcp", "9000:9000/udp"]);
        assert_eq!(a.run.labels[LABEL_PORTS], "80/tcp");
        assert_eq!(b.run.labels[LABEL_PORTS], "9000/udp");
        assert_eq!(a.restart.as_deref(), Some("on-failure"));
        assert_eq!(pod.dirs, [PathBuf::from("/root/kube/x/duo/volumes/work")]);
        assert_eq!(pod.init[0].binds, ["/root/kube/x/duo/volumes/work:/work"]);
    }

    #[test]
    fn host_namespaces_and_a_shared_process_namespace_shape_the_pod() {
        let pod = |spec: &str| {
            plan_of(&format!(
                "apiVersion: v1\nkind: Pod\nmetadata: {{name: p}}\nspec:\n  {spec}\n  hostAliases: [{{ip: 10.0.0.1, hostnames: [db]}}]\n  dnsConfig: {{nameservers: [10.0.0.53], options: [{{name: ndots, value: '2'}}]}}\n  containers: [{{name: c, image: x, ports: [{{containerPort: 80, hostPort: 8080}}]}}]\n"
            ))
        };
        let p = pod("shareProcessNamespace: true").unwrap();
        let s = &p.pods[0].pod;
        assert_eq!(s.share.as_deref(), Some("net,ipc,uts,pid"));
        assert_eq!(s.add_hosts, ["db:10.0.0.1"]);
        assert_eq!(s.dns, ["10.0.0.53"]);
        assert_eq!(s.dns_options, ["ndots:2"]);
        assert!(p.pods[0].containers[0].net.add_hosts.is_empty());
        assert!(!p
            .unsupported
            .iter()
            .any(|u| u.contains("shareProcessNamespace")));
        let p = pod("hostNetwork: true\n  hostIPC: true").unwrap();
        let s = &p.pods[0].pod;
        assert_eq!(s.share.as_deref(), Some("net"));
        assert_eq!(s.network.as_deref(), Some("host"));
        assert_eq!(s.hostname, None);
        assert!(s.publish.is_empty());
        assert_eq!(p.pods[0].containers[0].host.ipc.as_deref(), Some("host"));
        let e = pod("hostPID: true\n  shareProcessNamespace: true").unwrap_err();
        assert!(
            e.contains("spec.shareProcessNamespace: Invalid value: true: ShareProcessNamespace and HostPID cannot both be enabled"),
            "{e}"
        );
    }

    #[test]
    fn a_job_restarts_on_failure_up_to_its_backoff_limit() {
        let job = |policy: &str, backoff: &str| {
            plan_of(&format!(
                "apiVersion: batch/v1\nkind: Job\nmetadata: {{name: train}}\nspec:\n  {backoff}\n  template:\n    spec:\n      {policy}\n      containers: [{{name: t, image: busybox}}]\n"
            ))
        };
        let p = job("restartPolicy: Never", "backoffLimit: 2").unwrap();
        assert_eq!(
            p.pods[0].containers[0].restart.as_deref(),
            Some("on-failure:2")
        );
        assert!(p.pods[0].name.starts_with("train-"));
        let p = job("restartPolicy: OnFailure", "backoffLimit: 0").unwrap();
        assert_eq!(p.pods[0].containers[0].restart.as_deref(), Some("no"));
        let p = job("restartPolicy: OnFailure", "completions: 1").unwrap();
        assert_eq!(
            p.pods[0].containers[0].restart.as_deref(),
            Some("on-failure:6")
        );
        let e = job("restartPolicy: Always", "backoffLimit: 1").unwrap_err();
        assert!(
            e.contains("spec.template.spec.restartPolicy: Unsupported value: \"Always\""),
            "{e}"
        );
        let e = job("", "backoffLimit: 1").unwrap_err();
        assert!(e.contains("restartPolicy: Required value"), "{e}");
    }

    #[test]
    fn references_and_values_are_checked_with_their_paths() {
        let pod = |c: &str| {
            plan_of(&format!(
                "apiVersion: v1\nkind: Pod\nmetadata: {{name: p}}\nspec:\n  containers:\n  - {c}\n"
            ))
            .unwrap_err()
        };
        let e = pod("{name: c, image: x, env: [{name: A, valueFrom: {configMapKeyRef: {name: nope, key: k}}}]}");
        assert_eq!(e, "document 1 (Pod p): spec.containers[0].env[0].valueFrom.configMapKeyRef: ConfigMap \"nope\" is not in the manifests");
        let e = pod("{name: c, image: x, volumeMounts: [{name: v, mountPath: /v}]}");
        assert!(
            e.contains("spec.containers[0].volumeMounts[0].name: Not found: \"v\""),
            "{e}"
        );
        let e = pod("{name: c}");
        assert_eq!(
            e,
            "document 1 (Pod p): spec.containers[0].image: Required value"
        );
        let e = pod("{name: c, image: x, resources: {limits: {memory: lots}}}");
        assert!(
            e.contains("spec.containers[0].resources.limits.memory: quantity \"lots\""),
            "{e}"
        );
        let e = pod("{name: C, image: x}");
        assert!(
            e.contains("spec.containers[0].name: Invalid value: \"C\""),
            "{e}"
        );
        let e = pod("{name: c, image: x, ports: [{containerPort: 70000}]}");
        assert!(
            e.contains("ports[0].containerPort: Invalid value: 70000"),
            "{e}"
        );
        let e = pod("{name: c, image: x, imagePullPolicy: Sometimes}");
        assert!(
            e.contains("imagePullPolicy: Unsupported value: \"Sometimes\""),
            "{e}"
        );
        let e = plan_of("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec:\n  selector: {matchLabels: {app: a}}\n  template:\n    metadata: {labels: {app: b}}\n    spec: {containers: [{name: c, image: x}]}\n").unwrap_err();
        assert!(
            e.contains("`selector` does not match template `labels`"),
            "{e}"
        );
        let e = plan_of("apiVersion: v1\nkind: Pod\nmetadata: {name: Bad_Name}\nspec: {containers: [{name: c, image: x}]}\n").unwrap_err();
        assert!(
            e.contains("metadata.name: Invalid value: \"Bad_Name\""),
            "{e}"
        );
    }

    #[test]
    fn pull_policies_and_skipped_kinds() {
        let p = plan_of("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n  - {name: a, image: x, imagePullPolicy: Always}\n  - {name: b, image: y, imagePullPolicy: Never}\n  - {name: c, image: z}\n---\napiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {name: web}\nspec: {}\n").unwrap();
        let pulls: Vec<_> = p.pods[0].containers.iter().map(|c| c.pull).collect();
        use crate::registry::PullPolicy::*;
        assert_eq!(pulls, [Always, Never, Missing]);
        assert_eq!(
            p.unsupported,
            ["document 2 (Ingress web): the whole object"]
        );
    }
}
