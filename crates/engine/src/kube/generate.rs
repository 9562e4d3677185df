//! `kube generate`: Kubernetes manifests from what runs locally.
//!
//! A pure function from the Docker-shaped facts of containers (their `inspect` JSON and their
//! image's configuration) to Kubernetes objects, so every mapping rule is unit-tested without
//! root. What a manifest cannot say (a user name instead of a UID, a restart policy a Deployment
//! does not allow) is never dropped silently: it becomes a warning the CLI prints.

use serde_json::{json, Map, Value};

use super::names::{dns1123_label, dns1123_subdomain};

/// The kind of workload to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WorkloadKind {
    #[default]
    Pod,
    Deployment,
    /// A run-to-completion workload: training jobs.
    Job,
}

impl std::str::FromStr for WorkloadKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "pod" => Ok(WorkloadKind::Pod),
            "deployment" => Ok(WorkloadKind::Deployment),
            "job" => Ok(WorkloadKind::Job),
            other => Err(format!(
                "invalid type \"{other}\": must be one of pod, deployment, job"
            )),
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct GenerateOptions {
    pub kind: WorkloadKind,
    /// Add a Service for the published ports.
    pub service: bool,
}

/// What `generate` needs to know about one container.
#[derive(Debug, Clone)]
pub struct ContainerFacts {
    /// `GET /containers/{id}/json`.
    pub inspect: Value,
    /// The image's `Config` (Env, Cmd, Entrypoint, WorkingDir, User).
    pub image_config: Value,
    /// The image reference to write: by digest when the image came from or went to a registry.
    pub image_ref: String,
    /// The name of the berth pod the container belongs to.
    pub pod: Option<String>,
}

/// The manifests, in the order they should be applied, and what could not be expressed.
#[derive(Debug, Clone, Default)]
pub struct Manifests {
    pub documents: Vec<Value>,
    pub warnings: Vec<String>,
}

/// Kubernetes objects for `containers`: one workload holding all of them (a pod's containers
/// share a network namespace, as containers of one `kube generate` call are meant to), the
/// claims of the named volumes they use, and with `service` a Service for published ports.
pub fn generate(containers: &[ContainerFacts], o: &GenerateOptions) -> Manifests {
    let mut out = Manifests::default();
    let Some(first) = containers.first() else {
        return out;
    };
    let first_name = container_name(&first.inspect);
    let one_pod = first
        .pod
        .as_ref()
        .filter(|p| containers.iter().all(|c| c.pod.as_ref() == Some(*p)));
    let name = match one_pod {
        // Containers of one berth pod: the workload is the pod.
        Some(pod) => dns1123_subdomain(pod),
        None if containers.len() == 1 => dns1123_subdomain(&first_name),
        None => dns1123_subdomain(&format!("{first_name}-pod")),
    };
    // Containers `kube play` ran keep their manifest's names and labels, so the manifest
    // written back is the one that was played.
    let played = played_from(containers, o.kind);
    let name = played.as_ref().map(|p| p.0.clone()).unwrap_or(name);
    let labels = match &played {
        Some((_, l)) if !l.is_empty() => Value::Object(l.clone()),
        _ => json!({ "app": dns1123_label(&name) }),
    };

    let mut pod_containers = Vec::new();
    let mut volumes: Vec<Value> = Vec::new();
    let mut claims: Vec<String> = Vec::new();
    let mut service_ports: Vec<Value> = Vec::new();
    let mut restart = None;
    let mut used_names = Vec::new();
    // The init containers of a played pod are its initContainers again (when it has others).
    let is_init = |f: &ContainerFacts| {
        played.is_some() && f.inspect["Config"]["Labels"][LABEL_INIT].as_str() == Some("true")
    };
    let has_app = containers.iter().any(|f| !is_init(f));
    let mut init_containers = Vec::new();
    for facts in containers {
        let c = container(
            facts,
            &mut volumes,
            &mut claims,
            &mut service_ports,
            &mut out,
        );
        let mut c = c;
        if played.is_some() {
            if let Some(n) = facts.inspect["Config"]["Labels"][LABEL_CONTAINER].as_str() {
                c["name"] = json!(n);
            }
        }
        // Container names must be unique within a pod.
        let mut cname = c["name"].as_str().unwrap_or("container").to_string();
        let base = cname.clone();
        let mut n = 2;
        while used_names.contains(&cname) {
            cname = dns1123_label(&format!("{base}-{n}"));
            n += 1;
        }
        c["name"] = json!(cname);
        used_names.push(cname);
        if has_app && is_init(facts) {
            // An init container may not have probes (the API refuses them).
            if let Some(m) = c.as_object_mut() {
                m.remove("livenessProbe");
                m.remove("readinessProbe");
            }
            init_containers.push(c);
            continue;
        }
        pod_containers.push(c);
        let policy = &facts.inspect["HostConfig"]["RestartPolicy"];
        restart.get_or_insert_with(|| {
            (
                policy["Name"].as_str().unwrap_or("").to_string(),
                policy["MaximumRetryCount"].as_i64().unwrap_or(0),
            )
        });
    }
    let (policy, retries) = restart.unwrap_or_default();

    let mut pod_spec = Map::new();
    if !init_containers.is_empty() {
        pod_spec.insert("initContainers".into(), Value::Array(init_containers));
    }
    pod_spec.insert("containers".into(), Value::Array(pod_containers));
    pod_spec.insert(
        "restartPolicy".into(),
        json!(restart_policy(o.kind, &policy, &mut out.warnings)),
    );
    if !volumes.is_empty() {
        pod_spec.insert("volumes".into(), Value::Array(volumes));
    }
    let pod_spec = Value::Object(pod_spec);

    for claim in &claims {
        out.documents.push(json!({
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": { "name": claim, "labels": labels },
            "spec": {
                "accessModes": ["ReadWriteOnce"],
                "resources": { "requests": { "storage": "1Gi" } },
            },
        }));
    }
    if !claims.is_empty() {
        out.warnings.push(format!(
            "named volumes became PersistentVolumeClaims ({}) of 1Gi each: set the size your data needs",
            claims.join(", ")
        ));
    }
    let workload = match o.kind {
        WorkloadKind::Pod => json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": { "name": name, "labels": labels },
            "spec": pod_spec,
        }),
        WorkloadKind::Deployment => json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": { "name": name, "labels": labels },
            "spec": {
                "replicas": 1,
                "selector": { "matchLabels": labels },
                "template": { "metadata": { "labels": labels }, "spec": pod_spec },
            },
        }),
        WorkloadKind::Job => {
            let mut spec =
                json!({ "template": { "metadata": { "labels": labels }, "spec": pod_spec } });
            if policy == "on-failure" && retries > 0 {
                spec["backoffLimit"] = json!(retries);
            } else if policy != "on-failure" {
                // The container ran once; so does the job.
                spec["backoffLimit"] = json!(0);
            }
            json!({
                "apiVersion": "batch/v1",
                "kind": "Job",
                "metadata": { "name": name, "labels": labels },
                "spec": spec,
            })
        }
    };
    out.documents.push(workload);

    if o.service {
        if service_ports.is_empty() {
            out.warnings
                .push("--service: no published ports, so no Service was written".into());
        } else {
            out.documents.push(json!({
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": { "name": name, "labels": labels },
                "spec": { "selector": labels, "ports": service_ports },
            }));
        }
    }
    out
}

/// The label `kube play` puts on a container with its name in the manifest.
const LABEL_CONTAINER: &str = "io.berth.kube.container";
/// The label `kube play` puts on an init container.
const LABEL_INIT: &str = "io.berth.kube.init";

/// When every container came from one pod of `kube play`: the workload's name (the pod's for
/// a Pod, the owner's for a Deployment or Job) and the pod's own labels.
fn played_from(
    containers: &[ContainerFacts],
    kind: WorkloadKind,
) -> Option<(String, Map<String, Value>)> {
    let labels = |f: &ContainerFacts| f.inspect["Config"]["Labels"].clone();
    let first = labels(&containers[0]);
    let pod = first["io.berth.kube.pod"].as_str()?.to_string();
    if containers
        .iter()
        .any(|f| labels(f)["io.berth.kube.pod"].as_str() != Some(pod.as_str()))
    {
        return None;
    }
    let owner = first["io.berth.kube.owner"].as_str().unwrap_or("");
    let name = match (kind, owner.split_once('/')) {
        (WorkloadKind::Pod, _) | (_, None) => pod,
        (_, Some((_, owner))) => owner.to_string(),
    };
    let own: Map<String, Value> = first
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(k, _)| !k.starts_with("io.berth."))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    Some((name, own))
}

fn container_name(inspect: &Value) -> String {
    inspect["Name"]
        .as_str()
        .unwrap_or("")
        .trim_start_matches('/')
        .to_string()
}

/// One entry of `spec.containers`.
fn container(
    facts: &ContainerFacts,
    volumes: &mut Vec<Value>,
    claims: &mut Vec<String>,
    service_ports: &mut Vec<Value>,
    out: &mut Manifests,
) -> Value {
    let ins = &facts.inspect;
    let cfg = &ins["Config"];
    let host = &ins["HostConfig"];
    let img = &facts.image_config;
    let cname = container_name(ins);
    let warn = |out: &mut Manifests, what: String| out.warnings.push(format!("{cname}: {what}"));

    let mut c = Map::new();
    c.insert("name".into(), json!(dns1123_label(&cname)));
    c.insert("image".into(), json!(facts.image_ref));

    // Kubernetes' `command` replaces the image's ENTRYPOINT *and* drops its CMD, as Docker's
    // `--entrypoint` does; `args` replaces CMD only.
    let entrypoint = strings(&cfg["Entrypoint"]);
    let cmd = strings(&cfg["Cmd"]);
    let entrypoint_changed = entrypoint != strings(&img["Entrypoint"]);
    if entrypoint_changed {
        c.insert("command".into(), json!(entrypoint));
    }
    if !cmd.is_empty() && (entrypoint_changed || cmd != strings(&img["Cmd"])) {
        c.insert("args".into(), json!(cmd));
    }

    let image_env = strings(&img["Env"]);
    let env: Vec<Value> = strings(&cfg["Env"])
        .into_iter()
        .filter(|e| !image_env.contains(e))
        .map(|e| match e.split_once('=') {
            Some((k, v)) => json!({ "name": k, "value": v }),
            None => json!({ "name": e, "value": "" }),
        })
        .collect();
    if !env.is_empty() {
        c.insert("env".into(), Value::Array(env));
    }
    let workdir = cfg["WorkingDir"].as_str().unwrap_or("");
    if !workdir.is_empty() && workdir != img["WorkingDir"].as_str().unwrap_or("") {
        c.insert("workingDir".into(), json!(workdir));
    }
    if cfg["Tty"].as_bool() == Some(true) {
        c.insert("tty".into(), json!(true));
    }
    if cfg["OpenStdin"].as_bool() == Some(true) {
        c.insert("stdin".into(), json!(true));
    }

    let ports = container_ports(ins, service_ports);
    if !ports.is_empty() {
        c.insert("ports".into(), Value::Array(ports));
    }

    if let Some(r) = resources(host, &cname, out) {
        c.insert("resources".into(), r);
    }
    if let Some(sc) = security_context(cfg, host, img, &cname, out) {
        c.insert("securityContext".into(), sc);
    }
    if let Some(probe) = probe(&cfg["Healthcheck"], &img["Healthcheck"]) {
        c.insert("livenessProbe".into(), probe.clone());
        c.insert("readinessProbe".into(), probe);
    }

    let mut mounts = Vec::new();
    let prefix = dns1123_label(&cname);
    for (i, m) in ins["Mounts"].as_array().into_iter().flatten().enumerate() {
        let dest = m["Destination"].as_str().unwrap_or("");
        let read_only = m["RW"].as_bool() == Some(false);
        let vol_name = dns1123_label(&format!("{prefix}-{}", mount_label(dest, i)));
        let volume = match m["Type"].as_str().unwrap_or("") {
            "volume" => {
                let claim = dns1123_subdomain(m["Name"].as_str().unwrap_or(""));
                if !claims.contains(&claim) {
                    claims.push(claim.clone());
                }
                json!({ "name": vol_name, "persistentVolumeClaim": { "claimName": claim } })
            }
            "bind" => {
                let src = m["Source"].as_str().unwrap_or("");
                warn(
                    out,
                    format!(
                        "bind mount {src} became a hostPath volume: the path must exist on the node that runs the pod"
                    ),
                );
                let kind = if std::path::Path::new(src).is_file() {
                    "File"
                } else {
                    "DirectoryOrCreate"
                };
                json!({ "name": vol_name, "hostPath": { "path": src, "type": kind } })
            }
            "tmpfs" => {
                let opts = host["Tmpfs"][dest].as_str().unwrap_or("");
                let mut empty = json!({ "medium": "Memory" });
                if let Some(size) = tmpfs_size(opts) {
                    empty["sizeLimit"] = json!(quantity_bytes(size));
                }
                json!({ "name": vol_name, "emptyDir": empty })
            }
            other => {
                warn(
                    out,
                    format!(
                        "mount of type {other:?} at {dest} has no Kubernetes form and was left out"
                    ),
                );
                continue;
            }
        };
        let mut vm = json!({ "name": vol_name, "mountPath": dest });
        if read_only {
            vm["readOnly"] = json!(true);
        }
        mounts.push(vm);
        volumes.push(volume);
    }
    // Docker's --shm-size sizes /dev/shm (PyTorch's DataLoader lives there); a pod's /dev/shm
    // is 64 MiB unless a memory-backed emptyDir is mounted on it.
    let shm = host["ShmSize"].as_i64().unwrap_or(0);
    if shm > 0 && shm != 64 * 1024 * 1024 {
        let vol_name = dns1123_label(&format!("{prefix}-dshm"));
        volumes.push(json!({
            "name": vol_name,
            "emptyDir": { "medium": "Memory", "sizeLimit": quantity_bytes(shm as u64) },
        }));
        mounts.push(json!({ "name": vol_name, "mountPath": "/dev/shm" }));
    }
    if !mounts.is_empty() {
        c.insert("volumeMounts".into(), Value::Array(mounts));
    }
    Value::Object(c)
}

/// A stable, readable volume name from a mount's destination.
fn mount_label(dest: &str, index: usize) -> String {
    let s: String = dest
        .trim_matches('/')
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    if s.is_empty() {
        format!("vol{index}")
    } else {
        s
    }
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_str().map(str::to_string))
        .collect()
}

/// `containerPort`s from the exposed and published ports; each published one also becomes a
/// Service port (the host port as the service's port, the container port as its target).
fn container_ports(ins: &Value, service_ports: &mut Vec<Value>) -> Vec<Value> {
    let mut keys: Vec<String> = Vec::new();
    for src in [
        &ins["Config"]["ExposedPorts"],
        &ins["HostConfig"]["PortBindings"],
    ] {
        if let Some(m) = src.as_object() {
            for k in m.keys() {
                if !keys.contains(k) {
                    keys.push(k.clone());
                }
            }
        }
    }
    let mut ports = Vec::new();
    for key in keys {
        let (port, proto) = key.split_once('/').unwrap_or((key.as_str(), "tcp"));
        let Ok(port) = port.parse::<u16>() else {
            continue;
        };
        let protocol = proto.to_ascii_uppercase();
        ports.push(json!({ "containerPort": port, "protocol": protocol }));
        for b in ins["HostConfig"]["PortBindings"][&key]
            .as_array()
            .into_iter()
            .flatten()
        {
            let host_port = b["HostPort"]
                .as_str()
                .and_then(|p| p.parse::<u16>().ok())
                .unwrap_or(port);
            let name = format!("{}-{host_port}", proto.to_ascii_lowercase());
            if service_ports.iter().any(|p| p["name"] == json!(name)) {
                continue;
            }
            service_ports.push(json!({
                "name": name,
                "port": host_port,
                "targetPort": port,
                "protocol": protocol,
            }));
        }
    }
    ports
}

/// `resources` from `--memory`, `--memory-reservation`, `--cpus` (or quota/period) and
/// `--gpus`.
fn resources(host: &Value, cname: &str, out: &mut Manifests) -> Option<Value> {
    let mut limits = Map::new();
    let mut requests = Map::new();
    let memory = host["Memory"].as_u64().unwrap_or(0);
    if memory > 0 {
        limits.insert("memory".into(), json!(quantity_bytes(memory)));
    }
    let reservation = host["MemoryReservation"].as_u64().unwrap_or(0);
    if reservation > 0 {
        requests.insert("memory".into(), json!(quantity_bytes(reservation)));
    }
    let nano = host["NanoCpus"].as_u64().unwrap_or(0);
    let (quota, period) = (
        host["CpuQuota"].as_i64().unwrap_or(0),
        host["CpuPeriod"].as_i64().unwrap_or(0),
    );
    let millis = if nano > 0 {
        Some(nano.div_ceil(1_000_000))
    } else if quota > 0 {
        let period = if period > 0 { period } else { 100_000 };
        Some((quota as u64 * 1000).div_ceil(period as u64))
    } else {
        None
    };
    if let Some(m) = millis {
        let q = if m.is_multiple_of(1000) {
            json!((m / 1000).to_string())
        } else {
            json!(format!("{m}m"))
        };
        limits.insert("cpu".into(), q);
    }
    for req in host["DeviceRequests"].as_array().into_iter().flatten() {
        let is_gpu = req["Capabilities"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|set| set.as_array().into_iter().flatten())
            .any(|c| c == "gpu");
        if !is_gpu {
            continue;
        }
        let ids = strings(&req["DeviceIDs"]);
        let count = match req["Count"].as_i64().unwrap_or(0) {
            0 if !ids.is_empty() => ids.len() as i64,
            n => n,
        };
        if count > 0 {
            limits.insert("nvidia.com/gpu".into(), json!(count));
            if !ids.is_empty() {
                out.warnings.push(format!(
                    "{cname}: GPUs {} were asked for by ID; Kubernetes schedules a count ({count})",
                    ids.join(",")
                ));
            }
        } else {
            out.warnings.push(format!(
                "{cname}: --gpus all has no Kubernetes form: set resources.limits[\"nvidia.com/gpu\"] to the number of GPUs the pod needs"
            ));
        }
    }
    if limits.is_empty() && requests.is_empty() {
        return None;
    }
    let mut r = Map::new();
    if !limits.is_empty() {
        r.insert("limits".into(), Value::Object(limits));
    }
    if !requests.is_empty() {
        r.insert("requests".into(), Value::Object(requests));
    }
    Some(Value::Object(r))
}

/// Bytes as a Kubernetes quantity: the largest binary unit that divides it exactly.
pub fn quantity_bytes(n: u64) -> String {
    for (unit, size) in [
        ("Ti", 1u64 << 40),
        ("Gi", 1 << 30),
        ("Mi", 1 << 20),
        ("Ki", 1 << 10),
    ] {
        if n >= size && n.is_multiple_of(size) {
            return format!("{}{unit}", n / size);
        }
    }
    n.to_string()
}

/// `size=` of a tmpfs option string, in bytes (`64m`, `1g`, `1048576`).
fn tmpfs_size(opts: &str) -> Option<u64> {
    let v = opts
        .split(',')
        .find_map(|o| o.strip_prefix("size="))?
        .to_ascii_lowercase();
    let (num, mult) = match v.chars().last()? {
        'k' => (&v[..v.len() - 1], 1u64 << 10),
        'm' => (&v[..v.len() - 1], 1 << 20),
        'g' => (&v[..v.len() - 1], 1 << 30),
        _ => (v.as_str(), 1),
    };
    num.parse::<u64>().ok().map(|n| n * mult)
}

/// `securityContext` from `-u`, `--cap-add/--cap-drop`, `--read-only`, `--privileged`.
fn security_context(
    cfg: &Value,
    host: &Value,
    img: &Value,
    cname: &str,
    out: &mut Manifests,
) -> Option<Value> {
    let mut sc = Map::new();
    let user = cfg["User"].as_str().unwrap_or("");
    if !user.is_empty() && user != img["User"].as_str().unwrap_or("") {
        let (u, g) = match user.split_once(':') {
            Some((u, g)) => (u, Some(g)),
            None => (user, None),
        };
        match u.parse::<i64>() {
            Ok(uid) => {
                sc.insert("runAsUser".into(), json!(uid));
            }
            Err(_) => out.warnings.push(format!(
                "{cname}: user {u:?} is a name; Kubernetes needs a numeric UID in securityContext.runAsUser (left out)"
            )),
        }
        if let Some(g) = g {
            match g.parse::<i64>() {
                Ok(gid) => {
                    sc.insert("runAsGroup".into(), json!(gid));
                }
                Err(_) => out.warnings.push(format!(
                    "{cname}: group {g:?} is a name; Kubernetes needs a numeric GID in securityContext.runAsGroup (left out)"
                )),
            }
        }
    }
    let caps = |key: &str| -> Vec<String> {
        strings(&host[key])
            .into_iter()
            .map(|c| {
                let c = c.to_ascii_uppercase();
                c.strip_prefix("CAP_").map(str::to_string).unwrap_or(c)
            })
            .collect()
    };
    let (add, drop) = (caps("CapAdd"), caps("CapDrop"));
    if !add.is_empty() || !drop.is_empty() {
        let mut c = Map::new();
        if !add.is_empty() {
            c.insert("add".into(), json!(add));
        }
        if !drop.is_empty() {
            c.insert("drop".into(), json!(drop));
        }
        sc.insert("capabilities".into(), Value::Object(c));
    }
    if host["ReadonlyRootfs"].as_bool() == Some(true) {
        sc.insert("readOnlyRootFilesystem".into(), json!(true));
    }
    if host["Privileged"].as_bool() == Some(true) {
        sc.insert("privileged".into(), json!(true));
    }
    (!sc.is_empty()).then_some(Value::Object(sc))
}

/// A probe from the container's health check (the image's when the container has none).
/// Docker's defaults: interval 30 s, timeout 30 s, 3 retries; the start period becomes the
/// initial delay.
fn probe(container: &Value, image: &Value) -> Option<Value> {
    let hc = if container.is_object() {
        container
    } else {
        image
    };
    let test = strings(&hc["Test"]);
    let command: Vec<String> = match test.first().map(String::as_str) {
        Some("CMD") => test[1..].to_vec(),
        Some("CMD-SHELL") => vec!["/bin/sh".into(), "-c".into(), test[1..].join(" ")],
        _ => return None,
    };
    if command.is_empty() {
        return None;
    }
    let seconds = |key: &str, default: u64| -> u64 {
        match hc[key].as_u64().unwrap_or(0) {
            0 => default,
            ns => ns.div_ceil(1_000_000_000).max(1),
        }
    };
    let mut p = json!({
        "exec": { "command": command },
        "periodSeconds": seconds("Interval", 30),
        "timeoutSeconds": seconds("Timeout", 30),
        "failureThreshold": match hc["Retries"].as_u64().unwrap_or(0) { 0 => 3, n => n },
    });
    let start = hc["StartPeriod"].as_u64().unwrap_or(0);
    if start > 0 {
        p["initialDelaySeconds"] = json!(start.div_ceil(1_000_000_000));
    }
    Some(p)
}

/// A pod's restart policy for the workload kind (Deployments only allow Always; Jobs only
/// Never or OnFailure).
fn restart_policy(kind: WorkloadKind, docker: &str, warnings: &mut Vec<String>) -> &'static str {
    let wanted = match docker {
        "always" | "unless-stopped" => "Always",
        "on-failure" => "OnFailure",
        _ => "Never",
    };
    match kind {
        WorkloadKind::Pod => wanted,
        WorkloadKind::Deployment => {
            if wanted != "Always" {
                warnings.push(format!(
                    "a Deployment always restarts its pods (restartPolicy: Always); the container's restart policy was {:?}",
                    if docker.is_empty() { "no" } else { docker }
                ));
            }
            "Always"
        }
        WorkloadKind::Job => {
            if wanted == "Always" {
                warnings.push(format!(
                    "a Job cannot restart a container that succeeded; restart policy {docker:?} became OnFailure"
                ));
                "OnFailure"
            } else {
                wanted
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `inspect` shows for `run --name web_1 -p 8080:80 --memory 64m --cpus 0.5 -e A=1
    /// -w /srv -v data:/data -v /tmp:/host:ro --tmpfs /run:size=64m --shm-size 128m
    /// --health-cmd … --restart on-failure:3 --cap-add NET_ADMIN --read-only -u 1000:1000
    /// busybox httpd -f -p 80`.
    fn web() -> ContainerFacts {
        let inspect = json!({
            "Name": "/web_1",
            "Config": {
                "User": "1000:1000",
                "ExposedPorts": { "80/tcp": {} },
                "Env": ["PATH=/usr/bin:/bin", "A=1"],
                "Cmd": ["httpd", "-f", "-p", "80"],
                "Healthcheck": { "Test": ["CMD-SHELL", "wget -q -O- localhost"], "Interval": 5_000_000_000u64 },
                "Image": "busybox",
                "WorkingDir": "/srv",
                "Entrypoint": null,
            },
            "Mounts": [
                { "Type": "volume", "Name": "data", "Destination": "/data", "RW": true },
                { "Type": "bind", "Source": "/srv/host-data", "Destination": "/host", "RW": false },
                { "Type": "tmpfs", "Source": "", "Destination": "/run", "RW": true },
            ],
            "HostConfig": {
                "PortBindings": { "80/tcp": [{ "HostIp": "", "HostPort": "8080" }] },
                "RestartPolicy": { "Name": "on-failure", "MaximumRetryCount": 3 },
                "CapAdd": ["NET_ADMIN"],
                "CapDrop": ["MKNOD"],
                "ReadonlyRootfs": true,
                "ShmSize": 134217728,
                "Memory": 67108864,
                "NanoCpus": 500000000,
                "Tmpfs": { "/run": "size=64m" },
            },
        });
        ContainerFacts {
            inspect,
            image_config: json!({ "Env": ["PATH=/usr/bin:/bin"], "Cmd": ["sh"] }),
            image_ref: "busybox".into(),
            pod: None,
        }
    }

    fn by_kind<'a>(m: &'a Manifests, kind: &str) -> &'a Value {
        m.documents
            .iter()
            .find(|d| d["kind"] == kind)
            .unwrap_or_else(|| panic!("no {kind} in {:#?}", m.documents))
    }

    #[test]
    fn a_pod_says_what_the_run_command_said() {
        let m = generate(&[web()], &GenerateOptions::default());
        let pod = by_kind(&m, "Pod");
        assert_eq!(pod["metadata"]["name"], "web-1");
        assert_eq!(pod["spec"]["restartPolicy"], "OnFailure");
        let c = &pod["spec"]["containers"][0];
        assert_eq!(c["name"], "web-1");
        assert_eq!(c["image"], "busybox");
        assert!(c.get("command").is_none(), "{c}");
        assert_eq!(c["args"], json!(["httpd", "-f", "-p", "80"]));
        // Only what the container added to the image's environment.
        assert_eq!(c["env"], json!([{ "name": "A", "value": "1" }]));
        assert_eq!(c["workingDir"], "/srv");
        assert_eq!(
            c["ports"],
            json!([{ "containerPort": 80, "protocol": "TCP" }])
        );
        assert_eq!(
            c["resources"]["limits"],
            json!({ "memory": "64Mi", "cpu": "500m" })
        );
        let sc = &c["securityContext"];
        assert_eq!(sc["runAsUser"], 1000);
        assert_eq!(sc["runAsGroup"], 1000);
        assert_eq!(
            sc["capabilities"],
            json!({ "add": ["NET_ADMIN"], "drop": ["MKNOD"] })
        );
        assert_eq!(sc["readOnlyRootFilesystem"], true);
        let probe = &c["livenessProbe"];
        assert_eq!(
            probe["exec"]["command"],
            json!(["/bin/sh", "-c", "wget -q -O- localhost"])
        );
        assert_eq!(probe["periodSeconds"], 5);
        assert_eq!(probe["timeoutSeconds"], 30);
        assert_eq!(probe["failureThreshold"], 3);
        assert_eq!(c["readinessProbe"], *probe);

        let mounts = c["volumeMounts"].as_array().unwrap();
        let paths: Vec<&str> = mounts
            .iter()
            .map(|m| m["mountPath"].as_str().unwrap())
            .collect();
        assert_eq!(paths, ["/data", "/host", "/run", "/dev/shm"]);
        assert_eq!(mounts[1]["readOnly"], true);
        let vols = pod["spec"]["volumes"].as_array().unwrap();
        assert_eq!(vols[0]["persistentVolumeClaim"]["claimName"], "data");
        assert_eq!(vols[1]["hostPath"]["path"], "/srv/host-data");
        assert_eq!(
            vols[2]["emptyDir"],
            json!({ "medium": "Memory", "sizeLimit": "64Mi" })
        );
        assert_eq!(
            vols[3]["emptyDir"],
            json!({ "medium": "Memory", "sizeLimit": "128Mi" })
        );
        // Every mount refers to a volume of the pod.
        for m in mounts {
            assert!(vols.iter().any(|v| v["name"] == m["name"]), "{m}");
        }
        let pvc = by_kind(&m, "PersistentVolumeClaim");
        assert_eq!(pvc["metadata"]["name"], "data");
        assert!(
            m.warnings.iter().any(|w| w.contains("hostPath")),
            "{:?}",
            m.warnings
        );
        assert!(
            m.warnings.iter().any(|w| w.contains("1Gi")),
            "{:?}",
            m.warnings
        );
        // The claim comes before the pod that uses it.
        assert_eq!(m.documents.last().unwrap()["kind"], "Pod");
    }

    #[test]
    fn a_deployment_always_restarts_and_says_so() {
        let o = GenerateOptions {
            kind: WorkloadKind::Deployment,
            service: true,
        };
        let m = generate(&[web()], &o);
        let d = by_kind(&m, "Deployment");
        assert_eq!(d["apiVersion"], "apps/v1");
        assert_eq!(
            d["spec"]["selector"]["matchLabels"],
            json!({ "app": "web-1" })
        );
        assert_eq!(
            d["spec"]["template"]["metadata"]["labels"],
            json!({ "app": "web-1" })
        );
        assert_eq!(d["spec"]["template"]["spec"]["restartPolicy"], "Always");
        assert!(m
            .warnings
            .iter()
            .any(|w| w.contains("Deployment always restarts")));
        let svc = by_kind(&m, "Service");
        assert_eq!(svc["spec"]["selector"], json!({ "app": "web-1" }));
        assert_eq!(
            svc["spec"]["ports"],
            json!([{ "name": "tcp-8080", "port": 8080, "targetPort": 80, "protocol": "TCP" }])
        );
    }

    #[test]
    fn a_job_runs_to_completion_with_the_retry_count() {
        let o = GenerateOptions {
            kind: WorkloadKind::Job,
            service: false,
        };
        let m = generate(&[web()], &o);
        let j = by_kind(&m, "Job");
        assert_eq!(j["apiVersion"], "batch/v1");
        assert_eq!(j["spec"]["backoffLimit"], 3);
        assert_eq!(j["spec"]["template"]["spec"]["restartPolicy"], "OnFailure");

        let mut once = web();
        once.inspect["HostConfig"]["RestartPolicy"] = json!({ "Name": "no" });
        let m = generate(&[once], &o);
        let j = by_kind(&m, "Job");
        assert_eq!(j["spec"]["backoffLimit"], 0);
        assert_eq!(j["spec"]["template"]["spec"]["restartPolicy"], "Never");
    }

    #[test]
    fn an_entrypoint_override_sets_command_and_keeps_args() {
        let mut f = web();
        f.inspect["Config"]["Entrypoint"] = json!(["python"]);
        f.inspect["Config"]["Cmd"] = json!(["train.py"]);
        let m = generate(&[f], &GenerateOptions::default());
        let c = &by_kind(&m, "Pod")["spec"]["containers"][0];
        assert_eq!(c["command"], json!(["python"]));
        assert_eq!(c["args"], json!(["train.py"]));

        // The image's own CMD is not repeated.
        let mut f = web();
        f.inspect["Config"]["Cmd"] = json!(["sh"]);
        let m = generate(&[f], &GenerateOptions::default());
        let c = &by_kind(&m, "Pod")["spec"]["containers"][0];
        assert!(c.get("args").is_none() && c.get("command").is_none(), "{c}");
    }

    #[test]
    fn gpus_become_a_count_and_all_gpus_a_warning() {
        let mut f = web();
        f.inspect["HostConfig"]["DeviceRequests"] =
            json!([{ "Driver": "", "Count": 2, "DeviceIDs": null, "Capabilities": [["gpu"]] }]);
        let m = generate(&[f], &GenerateOptions::default());
        let c = &by_kind(&m, "Pod")["spec"]["containers"][0];
        assert_eq!(c["resources"]["limits"]["nvidia.com/gpu"], 2);

        let mut f = web();
        f.inspect["HostConfig"]["DeviceRequests"] =
            json!([{ "Driver": "", "Count": -1, "Capabilities": [["gpu"]] }]);
        let m = generate(&[f], &GenerateOptions::default());
        let c = &by_kind(&m, "Pod")["spec"]["containers"][0];
        assert!(c["resources"]["limits"].get("nvidia.com/gpu").is_none());
        assert!(m.warnings.iter().any(|w| w.contains("--gpus all")));
    }

    #[test]
    fn user_names_are_warned_about_not_dropped_silently() {
        let mut f = web();
        f.inspect["Config"]["User"] = json!("www-data");
        let m = generate(&[f], &GenerateOptions::default());
        let c = &by_kind(&m, "Pod")["spec"]["containers"][0];
        assert!(c["securityContext"].get("runAsUser").is_none());
        assert!(m.warnings.iter().any(|w| w.contains("\"www-data\"")));
    }

    #[test]
    fn containers_of_one_call_share_a_pod_with_unique_names() {
        let m = generate(&[web(), web()], &GenerateOptions::default());
        let pod = by_kind(&m, "Pod");
        assert_eq!(pod["metadata"]["name"], "web-1-pod");
        let names: Vec<&str> = pod["spec"]["containers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["web-1", "web-1-2"]);
        // One claim for the volume both use.
        let claims = m
            .documents
            .iter()
            .filter(|d| d["kind"] == "PersistentVolumeClaim")
            .count();
        assert_eq!(claims, 1);
    }

    #[test]
    fn containers_of_one_berth_pod_are_named_after_it() {
        let mut a = web();
        let mut b = web();
        a.pod = Some("Shop_Front".into());
        b.pod = Some("Shop_Front".into());
        let m = generate(&[a.clone(), b], &GenerateOptions::default());
        assert_eq!(by_kind(&m, "Pod")["metadata"]["name"], "shop-front");
        // Containers of different pods are one new pod, named as before.
        let mut c = web();
        c.pod = Some("other".into());
        let m = generate(&[a, c], &GenerateOptions::default());
        assert_eq!(by_kind(&m, "Pod")["metadata"]["name"], "web-1-pod");
    }

    #[test]
    fn quantities_use_the_largest_exact_unit() {
        assert_eq!(quantity_bytes(64 << 20), "64Mi");
        assert_eq!(quantity_bytes(1 << 30), "1Gi");
        assert_eq!(quantity_bytes(1536 << 20), "1536Mi");
        assert_eq!(quantity_bytes(1000), "1000");
        assert_eq!(tmpfs_size("rw,size=64m,mode=1777"), Some(64 << 20));
    }
}
