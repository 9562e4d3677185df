//! Docker 20.10 parity of command behaviour and output shapes (root): `kill` waiting for the
//! exit, `ps --filter`, `rmi` of multi-tag images, inspect's keys, `network connect` DNS.

mod common;

use common::Berth;
use serde_json::Value;

fn inspect(b: &Berth, what: &str) -> Value {
    let v: Value = serde_json::from_str(&b.ok(&["inspect", what])).unwrap();
    v[0].clone()
}

fn names(out: &str) -> Vec<String> {
    let mut v: Vec<String> = out.lines().map(str::to_string).collect();
    v.sort();
    v
}

#[test]
fn kill_returns_once_the_exit_is_recorded() {
    if !common::is_root("parity") {
        return;
    }
    let b = Berth::with_busybox();
    for i in 0..30 {
        let name = format!("k{i}");
        b.ok(&[
            "run",
            "-d",
            "--network",
            "none",
            "--name",
            &name,
            "busybox",
            "sleep",
            "60",
        ]);
        b.ok(&["kill", &name]);
        if i == 0 {
            let state = inspect(&b, &name)["State"].clone();
            assert_eq!(state["Status"], "exited", "{state}");
            assert_eq!(state["Running"], false, "{state}");
            assert_eq!(state["ExitCode"], 137, "{state}");
        }
        // Without -f: refused if the exit were not recorded yet.
        b.ok(&["rm", &name]);
    }
}

#[test]
fn ps_filters_before_since_publish_expose() {
    if !common::is_root("parity") {
        return;
    }
    let b = Berth::with_busybox();
    b.ok(&["create", "--name", "c1", "busybox"]);
    b.ok(&["create", "--name", "c2", "-p", "127.0.0.1::80", "busybox"]);
    b.ok(&[
        "create",
        "--name",
        "c3",
        "-p",
        "127.0.0.1::8001/udp",
        "busybox",
    ]);
    let ps = |filters: &[&str]| {
        let mut args = vec!["ps", "--format", "{{.Names}}"];
        for f in filters {
            args.push("--filter");
            args.push(f);
        }
        names(&b.ok(&args))
    };
    // before/since list stopped containers too, as Docker's.
    assert_eq!(ps(&["before=c2"]), ["c1"]);
    assert_eq!(ps(&["since=c2"]), ["c3"]);
    assert_eq!(ps(&["since=c1", "before=c3"]), ["c2"]);
    let all = |filters: &[&str]| {
        let mut args = vec!["ps", "-a", "--format", "{{.Names}}"];
        for f in filters {
            args.push("--filter");
            args.push(f);
        }
        names(&b.ok(&args))
    };
    assert_eq!(all(&["publish=80"]), ["c2"]);
    assert_eq!(all(&["publish=80/tcp"]), ["c2"]);
    assert!(all(&["publish=80/udp"]).is_empty());
    assert_eq!(all(&["publish=8000-8001/udp"]), ["c3"]);
    assert_eq!(all(&["expose=80"]), ["c2"]);
    assert_eq!(all(&["expose=80", "expose=8001/udp"]), ["c2", "c3"]);
    assert_eq!(all(&["is-task=false"]), ["c1", "c2", "c3"]);
    assert!(all(&["is-task=true"]).is_empty());
    // Docker's words for what it refuses.
    let (code, err) = b.fails(&["ps", "--filter", "before=nosuch"]);
    assert_eq!(code, 1);
    assert!(err.contains("No such container: nosuch"), "{err}");
    let (code, err) = b.fails(&["ps", "--filter", "xyz=1"]);
    assert_eq!(code, 1);
    assert!(err.contains("invalid filter 'xyz'"), "{err}");
    let (_, err) = b.fails(&["ps", "--filter", "publish=1:80"]);
    assert!(
        err.contains("filter for 'publish' should not contain ':'"),
        "{err}"
    );
    let (_, err) = b.fails(&["ps", "--filter", "is-task=maybe"]);
    assert!(err.contains("invalid filter 'is-task=[maybe]'"), "{err}");
    let (_, err) = b.fails(&["ps", "--filter", "isolation=hyperv"]);
    assert!(err.contains("isolation"), "{err}");
    // `health=` knows Docker's four values (tests/health.rs checks what it selects).
    let (code, err) = b.fails(&["ps", "--filter", "health=fine"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("Unrecognised filter value for health: fine"),
        "{err}"
    );
}

#[test]
fn rmi_by_id_of_an_image_with_two_tags_must_be_forced() {
    let b = Berth::with_busybox();
    b.ok(&["tag", "busybox", "busybox:two"]);
    let id = b.ok(&["images", "-q", "busybox:latest"]).trim().to_string();
    let (code, err) = b.fails(&["rmi", &id]);
    assert_eq!(code, 1);
    assert!(
        err.contains(&format!(
            "conflict: unable to delete {id} (must be forced) - image is referenced in multiple repositories"
        )),
        "{err}"
    );
    assert_eq!(b.ok(&["images", "-q"]).lines().count(), 2);
    let out = b.ok(&["rmi", "-f", &id]);
    assert!(out.contains("Deleted: sha256:"), "{out}");
    assert!(b.ok(&["images", "-q"]).trim().is_empty());
}

#[test]
fn container_inspect_has_dockers_keys_and_values() {
    if !common::is_root("parity") {
        return;
    }
    let b = Berth::with_busybox();
    let data = b.dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let bind = format!("{}:/data", data.display());
    b.ok(&[
        "create",
        "--name",
        "ci",
        "-p",
        "127.0.0.1::80",
        "-m",
        "64m",
        "-v",
        &bind,
        "busybox",
    ]);
    let c = inspect(&b, "ci");
    let hc = &c["HostConfig"];
    for k in [
        "BlkioWeight",
        "BlkioWeightDevice",
        "BlkioDeviceReadBps",
        "BlkioDeviceWriteBps",
        "BlkioDeviceReadIOps",
        "BlkioDeviceWriteIOps",
        "CgroupnsMode",
        "ConsoleSize",
        "CpuPeriod",
        "CpuQuota",
        "CpuRealtimePeriod",
        "CpuRealtimeRuntime",
        "DeviceRequests",
        "DeviceCgroupRules",
        "Devices",
        "DnsOptions",
        "DnsSearch",
        "Links",
        "MemoryReservation",
        "MemorySwappiness",
        "OomKillDisable",
        "UsernsMode",
        "Isolation",
        "KernelMemory",
        "Cgroup",
        "CgroupParent",
    ] {
        assert!(hc.get(k).is_some(), "HostConfig.{k} missing: {hc}");
    }
    assert_eq!(hc["ConsoleSize"], serde_json::json!([0, 0]));
    // The effective swap limit: twice the memory (or unlimited without swap accounting).
    let swap = hc["MemorySwap"].as_i64().unwrap();
    assert!(swap == 2 * 64 * 1024 * 1024 || swap == -1, "{swap}");
    let ns = &c["NetworkSettings"];
    for k in [
        "HairpinMode",
        "LinkLocalIPv6Address",
        "LinkLocalIPv6PrefixLen",
        "SecondaryIPAddresses",
        "SecondaryIPv6Addresses",
        "GlobalIPv6Address",
        "GlobalIPv6PrefixLen",
        "IPv6Gateway",
        "EndpointID",
    ] {
        assert!(ns.get(k).is_some(), "NetworkSettings.{k} missing: {ns}");
    }
    // Only the user's mount: not berth's hosts/hostname/resolv.conf binds.
    let mounts = c["Mounts"].as_array().unwrap();
    assert_eq!(mounts.len(), 1, "{mounts:?}");
    assert_eq!(mounts[0]["Destination"], "/data");
    // A published port is exposed as well.
    assert!(
        c["Config"]["ExposedPorts"].get("80/tcp").is_some(),
        "{}",
        c["Config"]
    );
    // Unset omitempty keys are absent, as in Docker (not null).
    assert!(c["Config"].get("StopSignal").is_none(), "{}", c["Config"]);
    let t = b.ok(&[
        "inspect",
        "-f",
        "{{.HostConfig.CpuQuota}} {{.HostConfig.OomKillDisable}} {{.NetworkSettings.SecondaryIPAddresses}}",
        "ci",
    ]);
    assert_eq!(t.trim(), "0 false <nil>");
}

#[test]
fn image_inspect_has_dockers_config_keys() {
    let b = Berth::with_busybox();
    let v: Value = serde_json::from_str(&b.ok(&["image", "inspect", "busybox"])).unwrap();
    let i = &v[0];
    assert_eq!(i["Container"], "");
    assert_eq!(i["VirtualSize"], i["Size"]);
    for cfg in [&i["Config"], &i["ContainerConfig"]] {
        for k in [
            "Hostname",
            "Domainname",
            "User",
            "AttachStdin",
            "AttachStdout",
            "AttachStderr",
            "Tty",
            "OpenStdin",
            "StdinOnce",
            "Env",
            "Cmd",
            "Image",
            "Volumes",
            "WorkingDir",
            "Entrypoint",
            "OnBuild",
            "Labels",
        ] {
            assert!(cfg.get(k).is_some(), "{k} missing: {cfg}");
        }
    }
    assert_eq!(i["Config"]["Cmd"], serde_json::json!(["sh"]));
    assert_eq!(i["Config"]["Entrypoint"], Value::Null);
    assert_eq!(i["ContainerConfig"]["Cmd"], Value::Null);
}
