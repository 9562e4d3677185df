//! Docker's inspect shapes: every key Docker 20.10 prints, in its order, with its zero value, so
//! `inspect -f` templates written for Docker never meet a missing key (`<no value>`).
//!
//! The engine builds its inspect values with the keys it has values for; these functions then
//! lay them out in Docker's order and add the keys it left out with Docker's zero values. A
//! key the engine set is never overwritten, and keys Docker does not have are kept at the end.

use serde_json::{json, Map, Value};

/// `HostConfig` keys in Docker's order, with the value Docker shows when the option is unset
/// (as `docker run` without the flag sends it).
fn host_config_keys() -> Vec<(&'static str, Value)> {
    vec![
        ("Binds", Value::Null),
        ("ContainerIDFile", json!("")),
        ("LogConfig", json!({"Type": "json-file", "Config": {}})),
        ("NetworkMode", json!("default")),
        ("PortBindings", json!({})),
        (
            "RestartPolicy",
            json!({"Name": "no", "MaximumRetryCount": 0}),
        ),
        ("AutoRemove", json!(false)),
        ("VolumeDriver", json!("")),
        ("VolumesFrom", Value::Null),
        ("CapAdd", Value::Null),
        ("CapDrop", Value::Null),
        // berth always gives a container its own cgroup namespace.
        ("CgroupnsMode", json!("private")),
        ("Dns", json!([])),
        ("DnsOptions", json!([])),
        ("DnsSearch", json!([])),
        ("ExtraHosts", Value::Null),
        ("GroupAdd", Value::Null),
        ("IpcMode", json!("private")),
        ("Cgroup", json!("")),
        ("Links", Value::Null),
        ("OomScoreAdj", json!(0)),
        ("PidMode", json!("")),
        ("Privileged", json!(false)),
        ("PublishAllPorts", json!(false)),
        ("ReadonlyRootfs", json!(false)),
        ("SecurityOpt", Value::Null),
        ("UTSMode", json!("")),
        ("UsernsMode", json!("")),
        ("ShmSize", json!(64 * 1024 * 1024)),
        ("Runtime", json!("")),
        ("ConsoleSize", json!([0, 0])),
        ("Isolation", json!("")),
        ("CpuShares", json!(0)),
        ("Memory", json!(0)),
        ("NanoCpus", json!(0)),
        ("CgroupParent", json!("")),
        ("BlkioWeight", json!(0)),
        ("BlkioWeightDevice", json!([])),
        ("BlkioDeviceReadBps", Value::Null),
        ("BlkioDeviceWriteBps", Value::Null),
        ("BlkioDeviceReadIOps", Value::Null),
        ("BlkioDeviceWriteIOps", Value::Null),
        ("CpuPeriod", json!(0)),
        ("CpuQuota", json!(0)),
        ("CpuRealtimePeriod", json!(0)),
        ("CpuRealtimeRuntime", json!(0)),
        ("CpusetCpus", json!("")),
        ("CpusetMems", json!("")),
        ("Devices", json!([])),
        ("DeviceCgroupRules", Value::Null),
        ("DeviceRequests", Value::Null),
        ("KernelMemory", json!(0)),
        ("KernelMemoryTCP", json!(0)),
        ("MemoryReservation", json!(0)),
        ("MemorySwap", json!(0)),
        ("MemorySwappiness", Value::Null),
        ("OomKillDisable", json!(false)),
        ("PidsLimit", Value::Null),
        ("Ulimits", Value::Null),
        ("CpuCount", json!(0)),
        ("CpuPercent", json!(0)),
        ("IOMaximumIOps", json!(0)),
        ("IOMaximumBandwidth", json!(0)),
        ("MaskedPaths", Value::Null),
        ("ReadonlyPaths", Value::Null),
    ]
}

/// `NetworkSettings` keys (without `Networks`, which comes last) in Docker's order.
fn network_settings_keys() -> Vec<(&'static str, Value)> {
    vec![
        ("Bridge", json!("")),
        ("SandboxID", json!("")),
        ("HairpinMode", json!(false)),
        ("LinkLocalIPv6Address", json!("")),
        ("LinkLocalIPv6PrefixLen", json!(0)),
        ("Ports", json!({})),
        ("SandboxKey", json!("")),
        ("SecondaryIPAddresses", Value::Null),
        ("SecondaryIPv6Addresses", Value::Null),
        ("EndpointID", json!("")),
        ("Gateway", json!("")),
        ("GlobalIPv6Address", json!("")),
        ("GlobalIPv6PrefixLen", json!(0)),
        ("IPAddress", json!("")),
        ("IPPrefixLen", json!(0)),
        ("IPv6Gateway", json!("")),
        ("MacAddress", json!("")),
        ("Networks", json!({})),
    ]
}

/// One entry of `NetworkSettings.Networks`, in Docker's order.
fn endpoint_keys() -> Vec<(&'static str, Value)> {
    vec![
        ("IPAMConfig", Value::Null),
        ("Links", Value::Null),
        ("Aliases", Value::Null),
        ("NetworkID", json!("")),
        ("EndpointID", json!("")),
        ("Gateway", json!("")),
        ("IPAddress", json!("")),
        ("IPPrefixLen", json!(0)),
        ("IPv6Gateway", json!("")),
        ("GlobalIPv6Address", json!("")),
        ("GlobalIPv6PrefixLen", json!(0)),
        ("MacAddress", json!("")),
        ("DriverOpts", Value::Null),
    ]
}

/// The container configuration (`Config`, and an image's `Config`/`ContainerConfig`) keys Docker
/// always prints, in its order; the `omitempty` ones (ExposedPorts, Healthcheck, ArgsEscaped,
/// StopSignal, StopTimeout, Shell, …) only when set.
fn config_keys() -> Vec<(&'static str, Option<Value>)> {
    vec![
        ("Hostname", Some(json!(""))),
        ("Domainname", Some(json!(""))),
        ("User", Some(json!(""))),
        ("AttachStdin", Some(json!(false))),
        ("AttachStdout", Some(json!(false))),
        ("AttachStderr", Some(json!(false))),
        ("ExposedPorts", None),
        ("Tty", Some(json!(false))),
        ("OpenStdin", Some(json!(false))),
        ("StdinOnce", Some(json!(false))),
        ("Env", Some(Value::Null)),
        ("Cmd", Some(Value::Null)),
        ("Healthcheck", None),
        ("ArgsEscaped", None),
        ("Image", Some(json!(""))),
        ("Volumes", Some(Value::Null)),
        ("WorkingDir", Some(json!(""))),
        ("Entrypoint", Some(Value::Null)),
        ("NetworkDisabled", None),
        ("MacAddress", None),
        ("OnBuild", Some(Value::Null)),
        ("Labels", Some(Value::Null)),
        ("StopSignal", None),
        ("StopTimeout", None),
        ("Shell", None),
    ]
}

/// Whether a value is what Go's `omitempty` leaves out.
fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(m) => m.is_empty(),
        Value::Number(n) => n.as_f64() == Some(0.0),
    }
}

/// `v`'s keys laid out in the order of `keys`, missing ones filled with their default; the keys
/// `keys` does not name follow in their own order.
fn ordered(v: Value, keys: Vec<(&'static str, Value)>) -> Value {
    let mut old = match v {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    let mut out = Map::new();
    for (k, default) in keys {
        let val = old.remove(k).unwrap_or(default);
        out.insert(k.to_string(), val);
    }
    out.extend(old);
    Value::Object(out)
}

/// `HostConfig` of container inspect, in Docker's shape.
pub fn host_config(v: Value) -> Value {
    ordered(v, host_config_keys())
}

/// `NetworkSettings` of container inspect, in Docker's shape (also each of its `Networks`).
pub fn network_settings(v: Value) -> Value {
    let mut v = ordered(v, network_settings_keys());
    if let Some(nets) = v["Networks"].as_object_mut() {
        for e in nets.values_mut() {
            *e = ordered(std::mem::take(e), endpoint_keys());
        }
    }
    v
}

/// A container configuration (container inspect's `Config`, an image's `Config` and
/// `ContainerConfig`) in Docker's shape: the keys Docker always prints present, the
/// `omitempty` ones only when set.
pub fn container_config(v: Value) -> Value {
    let mut old = match v {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    let mut out = Map::new();
    for (k, default) in config_keys() {
        match (old.remove(k), default) {
            (Some(val), None) if is_empty(&val) => {}
            (Some(val), _) => {
                out.insert(k.to_string(), val);
            }
            (None, Some(d)) => {
                out.insert(k.to_string(), d);
            }
            (None, None) => {}
        }
    }
    out.extend(old);
    Value::Object(out)
}

fn read_trim(path: &str) -> String {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// `GET /info` in Docker's shape: berth's values with the keys Docker adds around them (what
/// the host supports, the plugin lists, registry and swarm settings), as `info --format
/// '{{json .}}'` prints them.
pub fn info(v: Value) -> Value {
    let v1 = v["CgroupVersion"] == "1";
    let flag = |p: &str| read_trim(p) == "1";
    let os_version = std::fs::read_to_string("/etc/os-release")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VERSION_ID="))
        .map(|x| x.trim_matches('"').to_string())
        .unwrap_or_default();
    let nfd = std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count())
        .unwrap_or(0);
    let env = |k: &str| std::env::var(k).unwrap_or_default();
    let keys: Vec<(&'static str, Value)> = vec![
        ("ID", json!("")),
        ("Containers", json!(0)),
        ("ContainersRunning", json!(0)),
        ("ContainersPaused", json!(0)),
        ("ContainersStopped", json!(0)),
        ("Images", json!(0)),
        ("Driver", json!("overlay")),
        ("DriverStatus", json!([])),
        (
            "Plugins",
            json!({"Volume": ["local"], "Network": ["bridge", "host", "null"],
                   "Authorization": null, "Log": ["json-file"]}),
        ),
        ("MemoryLimit", json!(true)),
        ("SwapLimit", json!(berth_runtime::cgroup::swap_supported())),
        ("KernelMemory", json!(false)),
        ("KernelMemoryTCP", json!(false)),
        ("CpuCfsPeriod", json!(true)),
        ("CpuCfsQuota", json!(true)),
        ("CPUShares", json!(true)),
        ("CPUSet", json!(true)),
        ("PidsLimit", json!(true)),
        (
            "IPv4Forwarding",
            json!(flag("/proc/sys/net/ipv4/ip_forward")),
        ),
        (
            "BridgeNfIptables",
            json!(flag("/proc/sys/net/bridge/bridge-nf-call-iptables")),
        ),
        (
            "BridgeNfIp6tables",
            json!(flag("/proc/sys/net/bridge/bridge-nf-call-ip6tables")),
        ),
        ("Debug", json!(false)),
        ("NFd", json!(nfd)),
        ("OomKillDisable", json!(v1)),
        ("NGoroutines", json!(1)),
        (
            "SystemTime",
            json!(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)),
        ),
        ("LoggingDriver", json!("json-file")),
        ("CgroupDriver", json!("cgroupfs")),
        ("CgroupVersion", json!("")),
        ("NEventsListener", json!(0)),
        ("KernelVersion", json!("")),
        ("OperatingSystem", json!("")),
        ("OSVersion", json!(os_version)),
        ("OSType", json!("linux")),
        ("Architecture", json!("")),
        ("IndexServerAddress", json!("https://index.docker.io/v1/")),
        (
            "RegistryConfig",
            json!({"AllowNondistributableArtifactsCIDRs": [],
                   "AllowNondistributableArtifactsHostnames": [],
                   "InsecureRegistryCIDRs": ["127.0.0.0/8"],
                   "IndexConfigs": {"docker.io": {"Name": "docker.io", "Mirrors": [],
                                                  "Secure": true, "Official": true}},
                   "Mirrors": []}),
        ),
        ("NCPU", json!(0)),
        ("MemTotal", json!(0)),
        ("GenericResources", Value::Null),
        ("DockerRootDir", json!("")),
        ("HttpProxy", json!(env("HTTP_PROXY"))),
        ("HttpsProxy", json!(env("HTTPS_PROXY"))),
        ("NoProxy", json!(env("NO_PROXY"))),
        ("Name", json!("")),
        ("Labels", json!([])),
        ("ExperimentalBuild", json!(false)),
        ("ServerVersion", json!("")),
        ("Runtimes", json!({})),
        ("DefaultRuntime", json!("")),
        (
            "Swarm",
            json!({"NodeID": "", "NodeAddr": "", "LocalNodeState": "inactive",
                   "ControlAvailable": false, "Error": "", "RemoteManagers": null}),
        ),
        ("LiveRestoreEnabled", json!(false)),
        ("Isolation", json!("")),
        ("InitBinary", json!("tini")),
        ("ContainerdCommit", json!({"ID": "", "Expected": ""})),
        ("RuncCommit", json!({"ID": "", "Expected": ""})),
        ("InitCommit", json!({"ID": "", "Expected": ""})),
        ("SecurityOptions", json!(["name=seccomp,profile=default"])),
        ("Warnings", Value::Null),
    ];
    let mut v = ordered(v, keys);
    // The docker CLI prints its own part with the daemon's.
    v["ClientInfo"] =
        json!({"Debug": false, "Context": "default", "Plugins": [], "Warnings": null});
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_config_keeps_values_and_fills_docker_keys_in_order() {
        let v = host_config(json!({"Memory": 5, "Init": true, "Binds": ["/a:/b"]}));
        let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
        assert_eq!(keys[0], "Binds");
        assert_eq!(keys.last().unwrap().as_str(), "Init");
        assert_eq!(v["Memory"], 5);
        assert_eq!(v["Binds"], json!(["/a:/b"]));
        for k in [
            "BlkioWeight",
            "CgroupnsMode",
            "ConsoleSize",
            "CpuPeriod",
            "CpuQuota",
            "DeviceRequests",
            "Devices",
            "DnsOptions",
            "DnsSearch",
            "Links",
            "MemoryReservation",
            "MemorySwappiness",
            "OomKillDisable",
            "UsernsMode",
        ] {
            assert!(v.get(k).is_some(), "{k} missing");
        }
        assert_eq!(v["ConsoleSize"], json!([0, 0]));
        assert_eq!(v["MemorySwappiness"], Value::Null);
    }

    #[test]
    fn network_settings_fill_endpoints_too() {
        let v = network_settings(
            json!({"IPAddress": "10.0.0.2", "Networks": {"n": {"IPAddress": "10.0.0.2"}}}),
        );
        assert_eq!(v["IPAddress"], "10.0.0.2");
        assert_eq!(v["SecondaryIPAddresses"], Value::Null);
        assert_eq!(v["GlobalIPv6Address"], "");
        assert_eq!(v["Networks"]["n"]["DriverOpts"], Value::Null);
        assert_eq!(v["Networks"]["n"]["IPAddress"], "10.0.0.2");
        let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
        assert_eq!(keys.last().unwrap().as_str(), "Networks");
    }

    #[test]
    fn container_config_drops_empty_omitempty_keys() {
        let v = container_config(
            json!({"Cmd": ["sh"], "StopSignal": null, "ExposedPorts": {"80/tcp": {}}}),
        );
        assert_eq!(v["Cmd"], json!(["sh"]));
        assert!(v.get("StopSignal").is_none());
        assert_eq!(v["ExposedPorts"], json!({"80/tcp": {}}));
        assert_eq!(v["Env"], Value::Null);
        assert_eq!(v["Hostname"], "");
        assert_eq!(v["Labels"], Value::Null);
    }
}
