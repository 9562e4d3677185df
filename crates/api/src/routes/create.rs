//! `POST /containers/create`: dockerd's `Config` + `HostConfig` + `NetworkingConfig` mapped onto
//! the engine's create options. Every field berth honours is mapped; every other field that is
//! set (anything but its zero value, which the docker CLI and compose always send) is refused
//! with a 400 naming it, so nothing asked for is silently dropped.

use crate::http::ApiError;
use berth_engine::containers::health::HealthConfig;
use berth_engine::containers::host_opts::HostOptions;
use berth_engine::containers::network::NetRequest;
use berth_engine::containers::CreateOptions;
use berth_engine::containers::{RunOptions, Ulimit};
use serde_json::{Map, Value};

/// Go's zero values: what a client sends for a field it does not use.
fn is_zero(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.values().all(is_zero),
    }
}

/// `HostConfig.DeviceRequests` (`--gpus`, CDI devices): Go's zero values (null, "") allowed in
/// every field, anything else of the wrong type refused.
fn device_requests(
    section: &str,
    key: &str,
    v: &Value,
) -> Result<Vec<berth_engine::gpu::DeviceRequest>, ApiError> {
    let Value::Array(a) = v else {
        return if v.is_null() {
            Ok(Vec::new())
        } else {
            Err(bad(section, key, "a list of device requests"))
        };
    };
    let want = "a list of {Driver, Count, DeviceIDs, Capabilities, Options}";
    let mut out = Vec::new();
    for r in a {
        let Value::Object(m) = r else {
            return Err(bad(section, key, want));
        };
        for k in m.keys() {
            if !["Driver", "Count", "DeviceIDs", "Capabilities", "Options"].contains(&k.as_str()) {
                return Err(unsupported(&format!("{section}.{key}"), k));
            }
        }
        let list = |x: &Value| -> Result<Option<Vec<String>>, ApiError> {
            match x {
                Value::Null => Ok(None),
                _ => strings(section, key, x).map(Some),
            }
        };
        let capabilities = match &r["Capabilities"] {
            Value::Null => None,
            Value::Array(sets) => Some(
                sets.iter()
                    .map(|set| list(set).map(Option::unwrap_or_default))
                    .collect::<Result<Vec<_>, _>>()?,
            ),
            _ => return Err(bad(section, key, want)),
        };
        let options = match &r["Options"] {
            Value::Null => None,
            Value::Object(o) => Some(
                o.iter()
                    .map(|(k, v)| {
                        Ok((
                            k.clone(),
                            v.as_str()
                                .ok_or_else(|| bad(section, key, want))?
                                .to_string(),
                        ))
                    })
                    .collect::<Result<_, ApiError>>()?,
            ),
            _ => return Err(bad(section, key, want)),
        };
        out.push(berth_engine::gpu::DeviceRequest {
            driver: match &r["Driver"] {
                Value::Null => String::new(),
                Value::String(s) => s.clone(),
                _ => return Err(bad(section, key, want)),
            },
            count: match &r["Count"] {
                Value::Null => 0,
                x => x.as_i64().ok_or_else(|| bad(section, key, want))?,
            },
            device_ids: list(&r["DeviceIDs"])?,
            capabilities,
            options,
        });
    }
    Ok(out)
}

fn unsupported(section: &str, key: &str) -> ApiError {
    ApiError::bad_request(format!(
        "{section}.{key} is not supported by berth; remove it from the request"
    ))
}

fn bad(section: &str, key: &str, want: &str) -> ApiError {
    ApiError::bad_request(format!("invalid {section}.{key}: expected {want}"))
}

fn string(section: &str, key: &str, v: &Value) -> Result<Option<String>, ApiError> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) if s.is_empty() => Ok(None),
        Value::String(s) => Ok(Some(s.clone())),
        _ => Err(bad(section, key, "a string")),
    }
}

fn strings(section: &str, key: &str, v: &Value) -> Result<Vec<String>, ApiError> {
    match v {
        Value::Null => Ok(Vec::new()),
        Value::Array(a) => a
            .iter()
            .map(|x| {
                x.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| bad(section, key, "a list of strings"))
            })
            .collect(),
        // `Cmd`, `Entrypoint` and `Shell` may be one string (docker-py sends that).
        Value::String(s) => Ok(vec![s.clone()]),
        _ => Err(bad(section, key, "a list of strings")),
    }
}

fn int(section: &str, key: &str, v: &Value) -> Result<Option<i64>, ApiError> {
    match v {
        Value::Null => Ok(None),
        Value::Number(n) => n
            .as_i64()
            .map(Some)
            .ok_or_else(|| bad(section, key, "an integer")),
        _ => Err(bad(section, key, "an integer")),
    }
}

fn boolean(section: &str, key: &str, v: &Value) -> Result<bool, ApiError> {
    match v {
        Value::Null => Ok(false),
        Value::Bool(b) => Ok(*b),
        _ => Err(bad(section, key, "true or false")),
    }
}

fn string_map(section: &str, key: &str, v: &Value) -> Result<Vec<(String, String)>, ApiError> {
    match v {
        Value::Null => Ok(Vec::new()),
        Value::Object(m) => m
            .iter()
            .map(|(k, v)| match v {
                Value::String(s) => Ok((k.clone(), s.clone())),
                _ => Err(bad(section, key, "an object of strings")),
            })
            .collect(),
        _ => Err(bad(section, key, "an object of strings")),
    }
}

/// What the create request asks for besides the options: the console size to apply at start.
pub struct Created {
    pub options: CreateOptions,
}

pub fn create_options(body: Value, name: Option<String>) -> Result<Created, ApiError> {
    let Value::Object(mut config) = body else {
        return Err(ApiError::bad_request(
            "invalid JSON: the body must be a container configuration object",
        ));
    };
    let host = match config.remove("HostConfig") {
        Some(Value::Object(h)) => h,
        None | Some(Value::Null) => Map::new(),
        Some(_) => return Err(bad("", "HostConfig", "an object")),
    };
    let networking = config.remove("NetworkingConfig").unwrap_or(Value::Null);
    let mut run = RunOptions::default();
    let mut o = CreateOptions {
        image: String::new(),
        name,
        run: RunOptions::default(),
        binds: Vec::new(),
        mounts: Vec::new(),
        tmpfs: Vec::new(),
        runtime: None,
        auto_remove: false,
        restart: None,
        network: None,
        net: NetRequest::default(),
        detach: false,
        security_opt: Vec::new(),
        healthcheck: None,
        host: HostOptions::default(),
        // dockerd's create never pulls: a missing image is a 404, on which clients pull.
        pull: berth_engine::registry::PullPolicy::Never,
        init: false,
        pod: None,
    };
    let mut attach = (false, false, false);
    let c = "Config";
    for (k, v) in &config {
        match k.as_str() {
            "Image" => o.image = string(c, k, v)?.unwrap_or_default(),
            "Hostname" => run.hostname = string(c, k, v)?,
            "Domainname" => run.domainname = string(c, k, v)?,
            "User" => run.user = string(c, k, v)?,
            "AttachStdin" => attach.0 = boolean(c, k, v)?,
            "AttachStdout" => attach.1 = boolean(c, k, v)?,
            "AttachStderr" => attach.2 = boolean(c, k, v)?,
            "Tty" => run.tty = boolean(c, k, v)?,
            "OpenStdin" => run.stdin_open = boolean(c, k, v)?,
            // The attach that opened stdin closes it when it ends: berth's attach does so.
            "StdinOnce" => {}
            "Env" => run.env = strings(c, k, v)?,
            "Cmd" => run.cmd = strings(c, k, v)?,
            "Entrypoint" => {
                if !v.is_null() {
                    run.entrypoint = Some(strings(c, k, v)?);
                }
            }
            "WorkingDir" => run.workdir = string(c, k, v)?,
            "Labels" => {
                for (lk, lv) in string_map(c, k, v)? {
                    run.labels.insert(lk, lv);
                }
            }
            "StopSignal" => run.stop_signal = string(c, k, v)?,
            "StopTimeout" => {
                run.stop_timeout = int(c, k, v)?;
            }
            "ExposedPorts" => {
                if let Value::Object(m) = v {
                    o.host.expose.extend(m.keys().cloned());
                } else if !v.is_null() {
                    return Err(bad(c, k, "an object"));
                }
            }
            // Anonymous volumes declared in the config: `-v /path`.
            "Volumes" => {
                if let Value::Object(m) = v {
                    o.binds.extend(m.keys().cloned());
                } else if !v.is_null() {
                    return Err(bad(c, k, "an object"));
                }
            }
            "Healthcheck" => {
                if !v.is_null() {
                    // Clients send unset durations as null (docker-compose's StartPeriod).
                    let mut v = v.clone();
                    if let Value::Object(m) = &mut v {
                        m.retain(|_, x| !x.is_null());
                    }
                    let h: HealthConfig = serde_json::from_value(v).map_err(|e| {
                        ApiError::bad_request(format!("invalid Config.Healthcheck: {e}"))
                    })?;
                    o.healthcheck = Some(h);
                }
            }
            // Informational in the API (the image's build-time values); nothing to apply.
            "ArgsEscaped" | "OnBuild" | "NetworkDisabled" if is_zero(v) => {}
            "MacAddress" if is_zero(v) => {}
            _ if is_zero(v) => {}
            _ => return Err(unsupported(c, k)),
        }
    }
    if o.image.is_empty() {
        return Err(ApiError::bad_request(
            "Config.Image is required: name the image to create the container from",
        ));
    }
    let h = "HostConfig";
    for (k, v) in &host {
        match k.as_str() {
            "Binds" => o.binds.extend(strings(h, k, v)?),
            "Mounts" => {
                if let Value::Array(a) = v {
                    for m in a {
                        o.mounts.push(mount_string(m)?);
                    }
                } else if !v.is_null() {
                    return Err(bad(h, k, "a list of mounts"));
                }
            }
            "Tmpfs" => {
                for (dst, opts) in string_map(h, k, v)? {
                    o.tmpfs.push(if opts.is_empty() {
                        dst
                    } else {
                        format!("{dst}:{opts}")
                    });
                }
            }
            "ContainerIDFile" => o.host.container_id_file = string(h, k, v)?,
            "LogConfig" => {
                if let Value::Object(m) = v {
                    o.host.log_driver = m
                        .get("Type")
                        .map(|t| string(h, "LogConfig.Type", t))
                        .transpose()?
                        .flatten();
                    if let Some(cfg) = m.get("Config") {
                        for (lk, lv) in string_map(h, "LogConfig.Config", cfg)? {
                            o.host.log_opts.push(format!("{lk}={lv}"));
                        }
                    }
                } else if !v.is_null() {
                    return Err(bad(h, k, "an object"));
                }
            }
            "NetworkMode" => {
                o.network = string(h, k, v)?.filter(|m| m != "default");
            }
            "PortBindings" => {
                if let Value::Object(m) = v {
                    for (port, bindings) in m {
                        let list = match bindings {
                            Value::Array(a) if !a.is_empty() => a.clone(),
                            // A port published without a binding: a random host port.
                            _ => vec![Value::Null],
                        };
                        for b in list {
                            let ip = b["HostIp"].as_str().unwrap_or("");
                            let hp = b["HostPort"].as_str().unwrap_or("");
                            o.net.publish.push(match (ip.is_empty(), hp.is_empty()) {
                                (true, true) => port.clone(),
                                (true, false) => format!("{hp}:{port}"),
                                (false, _) if ip.contains(':') => format!("[{ip}]:{hp}:{port}"),
                                (false, _) => format!("{ip}:{hp}:{port}"),
                            });
                        }
                    }
                } else if !v.is_null() {
                    return Err(bad(h, k, "an object"));
                }
            }
            "PublishAllPorts" => o.net.publish_all = boolean(h, k, v)?,
            "RestartPolicy" => {
                if let Value::Object(m) = v {
                    let name = m.get("Name").and_then(Value::as_str).unwrap_or("");
                    let max = m
                        .get("MaximumRetryCount")
                        .and_then(Value::as_i64)
                        .unwrap_or(0);
                    o.restart = match name {
                        "" | "no" if max == 0 => None,
                        "on-failure" if max > 0 => Some(format!("on-failure:{max}")),
                        other => Some(if max > 0 {
                            format!("{other}:{max}")
                        } else {
                            other.to_string()
                        }),
                    };
                } else if !v.is_null() {
                    return Err(bad(h, k, "an object"));
                }
            }
            "AutoRemove" => o.auto_remove = boolean(h, k, v)?,
            "VolumesFrom" => o.host.volumes_from = strings(h, k, v)?,
            // Applied by the client's resize after start; nothing to keep.
            "ConsoleSize" => {}
            "CapAdd" => run.cap_add = strings(h, k, v)?,
            "CapDrop" => run.cap_drop = strings(h, k, v)?,
            "Dns" => o.net.dns = strings(h, k, v)?,
            "DnsOptions" => o.net.dns_options = strings(h, k, v)?,
            "DnsSearch" => o.net.dns_search = strings(h, k, v)?,
            "ExtraHosts" => o.net.add_hosts = strings(h, k, v)?,
            "GroupAdd" => run.group_add = strings(h, k, v)?,
            "IpcMode" => o.host.ipc = string(h, k, v)?,
            "PidMode" => o.host.pid = string(h, k, v)?,
            "UTSMode" => o.host.uts = string(h, k, v)?,
            "OomScoreAdj" => o.host.oom_score_adj = int(h, k, v)?.filter(|n| *n != 0),
            "Privileged" => run.privileged = boolean(h, k, v)?,
            "ReadonlyRootfs" => run.read_only = boolean(h, k, v)?,
            "SecurityOpt" => o.security_opt = strings(h, k, v)?,
            "ShmSize" => run.shm_size = int(h, k, v)?.filter(|n| *n > 0).map(|n| n as u64),
            "Sysctls" => {
                for (sk, sv) in string_map(h, k, v)? {
                    o.host.sysctls.push(format!("{sk}={sv}"));
                }
            }
            "Runtime" => o.runtime = string(h, k, v)?,
            // Numbers go to the engine as they came: it applies dockerd's rules to them.
            "CpuShares" => run.cpu_shares = int(h, k, v)?,
            "Memory" => run.memory = int(h, k, v)?,
            "MemorySwap" => run.memory_swap = int(h, k, v)?,
            "MemoryReservation" => o.host.memory_reservation = int(h, k, v)?.filter(|n| *n != 0),
            "MemorySwappiness" => {
                o.host.memory_swappiness = int(h, k, v)?.filter(|n| *n != -1);
            }
            "OomKillDisable" => o.host.oom_kill_disable = boolean(h, k, v)?,
            "NanoCpus" => {
                if let Some(n) = int(h, k, v)?.filter(|n| *n != 0) {
                    run.cpus = Some(n as f64 / 1e9);
                }
            }
            "CpuPeriod" => o.host.cpu_period = int(h, k, v)?.filter(|n| *n != 0),
            "CpuQuota" => o.host.cpu_quota = int(h, k, v)?.filter(|n| *n != 0),
            "CpusetCpus" => run.cpuset_cpus = string(h, k, v)?,
            "CpusetMems" => run.cpuset_mems = string(h, k, v)?,
            "PidsLimit" => run.pids_limit = int(h, k, v)?.filter(|n| *n != 0),
            "Devices" => {
                if let Value::Array(a) = v {
                    for d in a {
                        let host = d["PathOnHost"].as_str().unwrap_or("");
                        let ctr = d["PathInContainer"].as_str().unwrap_or("");
                        let perms = d["CgroupPermissions"].as_str().unwrap_or("");
                        let mut s = host.to_string();
                        if !ctr.is_empty() || !perms.is_empty() {
                            s.push(':');
                            s.push_str(if ctr.is_empty() { host } else { ctr });
                        }
                        if !perms.is_empty() {
                            s.push(':');
                            s.push_str(perms);
                        }
                        o.host.devices.push(s);
                    }
                } else if !v.is_null() {
                    return Err(bad(h, k, "a list of devices"));
                }
            }
            "DeviceCgroupRules" => o.host.device_cgroup_rules = strings(h, k, v)?,
            "DeviceRequests" => o.host.device_requests = device_requests(h, k, v)?,
            "Ulimits" => {
                if let Value::Array(a) = v {
                    for u in a {
                        let name = u["Name"].as_str().unwrap_or("").to_string();
                        let lim = |x: &Value| match x.as_i64() {
                            Some(-1) => u64::MAX,
                            Some(n) if n >= 0 => n as u64,
                            _ => u64::MAX,
                        };
                        if name.is_empty() {
                            return Err(bad(h, "Ulimits", "entries with a Name"));
                        }
                        run.ulimits.push(Ulimit {
                            name,
                            soft: lim(&u["Soft"]),
                            hard: lim(&u["Hard"]),
                        });
                    }
                } else if !v.is_null() {
                    return Err(bad(h, k, "a list of ulimits"));
                }
            }
            "Init" => o.init = boolean(h, k, v)?,
            _ if is_zero(v) => {}
            _ => return Err(unsupported(h, k)),
        }
    }
    networking_config(&networking, &mut o)?;
    // The streams the client attaches are what `docker run` without -d asks for.
    o.detach = !attach.1 && !attach.2 && !attach.0;
    if o.detach && run.stdin_open {
        // `docker run -di`: stdin kept open with nobody attached.
    }
    let mut streams = Vec::new();
    for (on, s) in [
        (attach.0, "stdin"),
        (attach.1, "stdout"),
        (attach.2, "stderr"),
    ] {
        if on {
            streams.push(s.to_string());
        }
    }
    // Docker's default (stdout+stderr, stdin with -i) needs no explicit list.
    if !(streams.is_empty() || (attach.1 && attach.2 && attach.0 == run.stdin_open)) {
        o.host.attach = streams;
    }
    o.run = run;
    Ok(Created { options: o })
}

/// `NetworkingConfig.EndpointsConfig`: the endpoint of the network the container starts on
/// (its aliases, a fixed address). berth connects a container to one network at create.
fn networking_config(v: &Value, o: &mut CreateOptions) -> Result<(), ApiError> {
    let Some(eps) = v.get("EndpointsConfig").and_then(Value::as_object) else {
        return Ok(());
    };
    let primary = o.network.clone().unwrap_or_else(|| "default".into());
    for (net, ep) in eps {
        if net != &primary && !(primary == "default" && net == "bridge") {
            if eps.len() == 1 && o.network.is_none() {
                // compose names the network only here.
                o.network = Some(net.clone());
            } else {
                return Err(ApiError::bad_request(format!(
                    "NetworkingConfig.EndpointsConfig names {net:?} besides the container's network \
                     {primary:?}: berth connects a container to one network at create; use \
                     `network connect` after"
                )));
            }
        }
        let Value::Object(ep) = ep else { continue };
        for (k, val) in ep {
            match k.as_str() {
                "Aliases" => o.net.aliases.extend(strings("EndpointsConfig", k, val)?),
                "IPAMConfig" => {
                    if let Some(ip) = val.get("IPv4Address").and_then(Value::as_str) {
                        if !ip.is_empty() {
                            o.net.ip = Some(ip.to_string());
                        }
                    }
                    if let Some(Value::Object(m)) = Some(val) {
                        for (ik, iv) in m {
                            if ik != "IPv4Address" && !is_zero(iv) {
                                return Err(unsupported("EndpointsConfig.IPAMConfig", ik));
                            }
                        }
                    }
                }
                // Read-only fields of inspect that clients echo back.
                "NetworkID"
                | "EndpointID"
                | "Gateway"
                | "IPAddress"
                | "IPPrefixLen"
                | "IPv6Gateway"
                | "GlobalIPv6Address"
                | "GlobalIPv6PrefixLen"
                | "DNSNames"
                | "GwPriority" => {}
                _ if is_zero(val) => {}
                _ => return Err(unsupported("EndpointsConfig", k)),
            }
        }
    }
    Ok(())
}

/// One `HostConfig.Mounts` entry as the `--mount` value the engine parses.
fn mount_string(m: &Value) -> Result<String, ApiError> {
    let Value::Object(m) = m else {
        return Err(bad("HostConfig", "Mounts", "a list of objects"));
    };
    let mut parts = Vec::new();
    for (k, v) in m {
        let s = "HostConfig.Mounts";
        match k.as_str() {
            "Type" => parts.push(format!("type={}", v.as_str().unwrap_or(""))),
            "Source" => {
                if let Some(x) = string(s, k, v)? {
                    parts.push(format!("source={x}"));
                }
            }
            "Target" => parts.push(format!("target={}", v.as_str().unwrap_or(""))),
            "ReadOnly" => {
                if boolean(s, k, v)? {
                    parts.push("readonly".into());
                }
            }
            "BindOptions" => {
                for (bk, bv) in v.as_object().into_iter().flatten() {
                    match bk.as_str() {
                        "Propagation" => {
                            if let Some(p) = bv.as_str().filter(|p| !p.is_empty()) {
                                parts.push(format!("bind-propagation={p}"));
                            }
                        }
                        _ if is_zero(bv) => {}
                        _ => return Err(unsupported("HostConfig.Mounts.BindOptions", bk)),
                    }
                }
            }
            "VolumeOptions" => {
                for (vk, vv) in v.as_object().into_iter().flatten() {
                    match vk.as_str() {
                        "NoCopy" => {
                            if boolean(s, vk, vv)? {
                                parts.push("volume-nocopy".into());
                            }
                        }
                        _ if is_zero(vv) => {}
                        _ => return Err(unsupported("HostConfig.Mounts.VolumeOptions", vk)),
                    }
                }
            }
            "TmpfsOptions" => {
                for (tk, tv) in v.as_object().into_iter().flatten() {
                    match tk.as_str() {
                        "SizeBytes" => {
                            if let Some(n) = tv.as_i64().filter(|n| *n > 0) {
                                parts.push(format!("tmpfs-size={n}"));
                            }
                        }
                        "Mode" => {
                            if let Some(n) = tv.as_i64().filter(|n| *n > 0) {
                                parts.push(format!("tmpfs-mode={n:o}"));
                            }
                        }
                        _ if is_zero(tv) => {}
                        _ => return Err(unsupported("HostConfig.Mounts.TmpfsOptions", tk)),
                    }
                }
            }
            "Consistency" if v.as_str().is_none_or(|c| c.is_empty() || c == "default") => {}
            _ if is_zero(v) => {}
            _ => return Err(unsupported("HostConfig.Mounts", k)),
        }
    }
    Ok(parts.join(","))
}
