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
    assert!(common::is_root("parity"));
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
    assert!(common::is_root("parity"));
    let b = Berth::with_busybox();
    b.ok(&["create", "--name", "c1", "busybox"]);
    b.ok(&[
        "run",
        "-d",
        "--name",
        "c2",
        "-p",
        "127.0.0.1::80",
        "busybox",
        "sleep",
        "100",
    ]);
    b.ok(&[
        "run",
        "-d",
        "--name",
        "c3",
        "-p",
        "127.0.0.1::8001/udp",
        "busybox",
        "sleep",
        "100",
    ]);
    // Created, never started: its ports are planned, not held.
    b.ok(&["create", "--name", "c4", "-p", "127.0.0.1::80", "busybox"]);
    let ps = |filters: &[&str]| {
        let mut args = vec!["ps", "--format", "{{.Names}}"];
        for f in filters {
            args.push("--filter");
            args.push(f);
        }
        names(&b.ok(&args))
    };
    let all = |filters: &[&str]| {
        let mut args = vec!["ps", "-a", "--format", "{{.Names}}"];
        for f in filters {
            args.push("--filter");
            args.push(f);
        }
        names(&b.ok(&args))
    };
    // before/since list running containers only without -a, as dockerd 20.10 (recorded).
    assert!(ps(&["before=c2"]).is_empty());
    assert_eq!(all(&["before=c2"]), ["c1"]);
    assert_eq!(ps(&["since=c1"]), ["c2", "c3"]);
    assert_eq!(all(&["since=c1"]), ["c2", "c3", "c4"]);
    assert_eq!(ps(&["since=c1", "before=c3"]), ["c2"]);
    // publish/expose match the ports a running container has: c4's are only planned.
    assert_eq!(all(&["publish=80"]), ["c2"]);
    assert_eq!(all(&["publish=80/tcp"]), ["c2"]);
    assert!(all(&["publish=80/udp"]).is_empty());
    assert_eq!(all(&["publish=8000-8001/udp"]), ["c3"]);
    assert_eq!(all(&["expose=80"]), ["c2"]);
    assert_eq!(all(&["expose=80", "expose=8001/udp"]), ["c2", "c3"]);
    assert_eq!(all(&["is-task=false"]), ["c1", "c2", "c3", "c4"]);
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
    assert!(common::is_root("parity"));
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
    // A null prints as the docker CLI prints it (recorded from dockerd 20.10).
    assert_eq!(t.trim(), "0 false <no value>");
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

#[test]
fn network_connect_makes_the_networks_names_resolvable() {
    assert!(common::is_root("parity"));
    let b = Berth::with_busybox();
    b.ok(&[
        "network",
        "create",
        "--subnet",
        "10.197.31.0/24",
        "paritynet",
    ]);
    let db = b.ok(&[
        "run",
        "-d",
        "--name",
        "db",
        "--network",
        "paritynet",
        "--ip",
        "10.197.31.40",
        "busybox",
        "sleep",
        "60",
    ]);
    let side = b.ok(&["run", "-d", "--name", "side", "busybox", "sleep", "60"]);
    b.ok(&["network", "connect", "paritynet", "side"]);
    let out = b.ok(&["exec", "side", "nslookup", "db", "127.0.0.11"]);
    assert!(out.contains("10.197.31.40"), "{out}");
    b.ok(&["exec", "side", "ping", "-c1", "-W3", "db"]);
    // And the other way round, by name and by short ID.
    b.ok(&["exec", "db", "ping", "-c1", "-W3", "side"]);
    b.ok(&["exec", "db", "ping", "-c1", "-W3", &side.trim()[..12]]);
    let aliases = |c: &str| {
        b.ok(&[
            "inspect",
            "-f",
            "{{json .NetworkSettings.Networks.paritynet.Aliases}}",
            c,
        ])
        .trim()
        .to_string()
    };
    assert_eq!(aliases("side"), format!("[\"{}\"]", &side.trim()[..12]));
    assert_eq!(aliases("db"), format!("[\"{}\"]", &db.trim()[..12]));
    b.ok(&["network", "disconnect", "paritynet", "side"]);
    b.ok(&["rm", "-f", "db", "side"]);
    b.ok(&["network", "rm", "paritynet"]);
}

#[test]
fn output_shapes_scripts_rely_on() {
    assert!(common::is_root("parity"));
    let b = Berth::with_busybox();
    // load -q still names what it loaded.
    let archive = b.dir.path().join("bb.tar");
    b.ok(&["save", "-o", archive.to_str().unwrap(), "busybox"]);
    let out = b.ok(&["load", "-q", "-i", archive.to_str().unwrap()]);
    assert_eq!(out, "Loaded image: busybox:latest\n");
    // inspect of a missing object: `[]` on stdout, the error on stderr.
    let (code, out, err) = b.code(&["inspect", "nosuch"]);
    assert_eq!((code, out.as_str()), (1, "[]\n"), "{err}");
    assert!(err.contains("No such object: nosuch"), "{err}");
    let (code, out, _) = b.code(&["inspect", "-f", "{{.Id}}", "nosuch"]);
    assert_eq!((code, out.as_str()), (1, ""));
    // /.dockerenv exists, and is not one of the container's changes.
    b.ok(&[
        "run",
        "--name",
        "env",
        "--network",
        "none",
        "busybox",
        "ls",
        "/.dockerenv",
    ]);
    assert!(!b.ok(&["diff", "env"]).contains("dockerenv"));
    // The primary group is among the supplementary groups.
    let id = b.ok(&["run", "--rm", "--network", "none", "busybox", "id"]);
    assert_eq!(id.trim(), "uid=0(root) gid=0(root) groups=0(root)");
    // COMMAND quotes arguments with spaces; `.Label "k"` takes an argument.
    b.ok(&[
        "create",
        "--name",
        "lab",
        "-l",
        "com.x=hello",
        "busybox",
        "sh",
        "-c",
        "echo a b",
    ]);
    let out = b.ok(&[
        "ps",
        "-a",
        "--no-trunc",
        "--filter",
        "name=lab",
        "--format",
        "{{.Command}}|{{.Label \"com.x\"}}|{{.Label \"nope\"}}",
    ]);
    assert_eq!(out, "\"sh -c 'echo a b'\"|hello|\n");
    let out = b.ok(&[
        "ps",
        "-a",
        "--filter",
        "name=lab",
        "--format",
        "table {{.Names}}\t{{.Label \"com.x\"}}",
    ]);
    assert_eq!(
        out.lines()
            .nth(1)
            .unwrap()
            .split_whitespace()
            .collect::<Vec<_>>(),
        ["lab", "hello"]
    );
    // {{.Mounts}} prints Docker's struct form.
    b.ok(&["create", "--name", "mnt", "-v", "vol1:/data", "busybox"]);
    let out = b.ok(&["inspect", "-f", "{{.Mounts}}", "mnt"]);
    let src = b.root().join("volumes/vol1/_data");
    assert_eq!(
        out.trim(),
        format!("[{{volume vol1 {} /data local z true }}]", src.display())
    );
    assert_eq!(
        b.ok(&["inspect", "-f", "{{.HostConfig.RestartPolicy}}", "mnt"])
            .trim(),
        "{no 0}"
    );
    // info's JSON has Docker's keys.
    let info: Value = serde_json::from_str(&b.ok(&["info", "--format", "{{json .}}"])).unwrap();
    for k in [
        "Plugins",
        "MemoryLimit",
        "SwapLimit",
        "IPv4Forwarding",
        "LoggingDriver",
        "IndexServerAddress",
        "RegistryConfig",
        "Swarm",
        "SecurityOptions",
        "Warnings",
        "ClientInfo",
    ] {
        assert!(info.get(k).is_some(), "{k} missing: {info}");
    }
    assert_eq!(info["Swarm"]["LocalNodeState"], "inactive");
}

#[test]
fn volume_ls_filters() {
    let b = Berth::with_busybox();
    b.ok(&["volume", "create", "--label", "k=v", "vol1"]);
    b.ok(&["volume", "create", "vol2"]);
    b.ok(&["create", "--name", "user", "-v", "vol2:/x", "busybox"]);
    let ls = |f: &[&str]| {
        let mut args = vec!["volume", "ls", "-q"];
        for x in f {
            args.push("--filter");
            args.push(x);
        }
        names(&b.ok(&args))
    };
    assert_eq!(ls(&["dangling=true"]), ["vol1"]);
    assert_eq!(ls(&["dangling=0"]), ["vol2"]);
    assert_eq!(ls(&["label=k"]), ["vol1"]);
    assert_eq!(ls(&["label=k=v"]), ["vol1"]);
    assert!(ls(&["label=k=w"]).is_empty());
    assert_eq!(ls(&["name=2"]), ["vol2"]);
    assert_eq!(ls(&["driver=local"]), ["vol1", "vol2"]);
    assert!(ls(&["driver=nfs"]).is_empty());
    let (code, err) = b.fails(&["volume", "ls", "--filter", "colour=red"]);
    assert_eq!(code, 1);
    assert!(err.contains("invalid filter 'colour'"), "{err}");
    let (_, err) = b.fails(&["volume", "ls", "--filter", "dangling=maybe"]);
    assert!(err.contains("invalid filter 'dangling=[maybe]'"), "{err}");
    let out = b.ok(&[
        "volume",
        "ls",
        "--filter",
        "name=vol1",
        "--format",
        "{{.Name}} {{.Label \"k\"}}",
    ]);
    assert_eq!(out, "vol1 v\n");
}

#[test]
fn prune_filters_are_applied_or_refused() {
    let b = Berth::with_busybox();
    b.ok(&[
        "network",
        "create",
        "--label",
        "keep=1",
        "--subnet",
        "10.197.32.0/24",
        "keepnet",
    ]);
    b.ok(&["network", "create", "--subnet", "10.197.33.0/24", "dropnet"]);
    let out = b.ok(&["network", "prune", "-f", "--filter", "label!=keep"]);
    assert!(out.contains("dropnet") && !out.contains("keepnet"), "{out}");
    let out = b.ok(&[
        "network",
        "prune",
        "-f",
        "--filter",
        "until=2000-01-01T00:00:00",
    ]);
    assert!(!out.contains("keepnet"), "{out}");
    let (code, err) = b.fails(&["network", "prune", "-f", "--filter", "colour=red"]);
    assert_eq!(code, 1);
    assert!(err.contains("invalid filter 'colour'"), "{err}");
    // network ls: Docker's label=, scope=, dangling= besides name= id= driver= type=.
    let ls = |f: &str| names(&b.ok(&["network", "ls", "--format", "{{.Name}}", "--filter", f]));
    assert_eq!(ls("label=keep"), ["keepnet"]);
    assert_eq!(ls("label=keep=1"), ["keepnet"]);
    assert_eq!(ls("dangling=true"), ["keepnet"]);
    assert!(ls("scope=swarm").is_empty());
    let out = b.ok(&[
        "network",
        "ls",
        "--format",
        "{{.Name}} {{.Label \"keep\"}}",
        "--filter",
        "name=keepnet",
    ]);
    assert_eq!(out, "keepnet 1\n");
    // system prune checks its filters before removing anything.
    b.ok(&["create", "--name", "stopped", "busybox"]);
    let (code, err) = b.fails(&["system", "prune", "-f", "--filter", "colour=red"]);
    assert_eq!(code, 1);
    assert!(err.contains("invalid filter 'colour'"), "{err}");
    assert!(b.ok(&["ps", "-a"]).contains("stopped"));
    let out = b.ok(&["system", "prune", "-f", "--filter", "label=nomatch"]);
    assert!(!out.contains("keepnet"), "{out}");
    assert!(b.ok(&["ps", "-a"]).contains("stopped"));
    b.ok(&["network", "rm", "keepnet"]);
}

/// Docker 20.10's output for command lines berth must match, recorded from a real dockerd
/// (20.10.24) by `tests/parity/record.sh` into `tests/parity/recorded.jsonl` (the command lines
/// are `tests/parity/cases.jsonl`), compared after normalising what differs on purpose:
/// `Error response from daemon: ` is berth's `Error: `, the storage root is `/var/lib/docker`,
/// IDs are `<ID>`, and two wordings where berth follows the current Engine API (v1.50) that its
/// API server serves: `invalid filter` (20.10: `Invalid filter`) and `No such container: X`
/// (20.10's `ps --filter since=`/`before=` said `no such container X`).
#[test]
fn differential_against_recorded_docker_output() {
    assert!(common::is_root("parity"));
    struct Case {
        args: Vec<String>,
        stdout: String,
        stderr: String,
        code: i32,
    }
    let cases: Vec<Case> = include_str!("parity/recorded.jsonl")
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: Value = serde_json::from_str(l).expect("a recorded case");
            Case {
                args: v["args"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|a| a.as_str().unwrap().to_string())
                    .collect(),
                stdout: v["stdout"].as_str().unwrap().to_string(),
                stderr: v["stderr"].as_str().unwrap().to_string(),
                code: v["code"].as_i64().unwrap() as i32,
            }
        })
        .collect();
    let listed = include_str!("parity/cases.jsonl")
        .lines()
        .filter(|l| !l.trim().is_empty())
        .count();
    assert_eq!(
        cases.len(),
        listed,
        "cases.jsonl and recorded.jsonl disagree: run tests/parity/record.sh"
    );
    let b = Berth::with_busybox();
    let other = b.import_busybox("other");
    let other_short = &other[7..19];
    let root = b.root().display().to_string();
    let norm = |s: &str| {
        let mut s = s
            .replace(&root, "/var/lib/docker")
            .replace("Error response from daemon: ", "Error: ")
            .replace("Invalid filter '", "invalid filter '");
        if let Some(rest) = s.strip_prefix("Error: no such container ") {
            s = format!("Error: No such container: {rest}");
        }
        // Container IDs printed alone on a line.
        if s.len() == 65 && s.ends_with('\n') && s[..64].bytes().all(|c| c.is_ascii_hexdigit()) {
            s = "<ID>\n".into();
        }
        s
    };
    // Where berth does not print what dockerd printed yet: berth's output, pinned so that a
    // change shows, with the reason. Remove an entry when berth matches the recording.
    #[allow(clippy::type_complexity)]
    let known: &[(&[&str], i32, &str, &str, &str)] = &[
        (&["inspect", "-f", "{{.Config.Cmd}} {{.Config.Env}} {{.ContainerConfig.Cmd}}", "other"],
         0, "[sh] <no value> <no value>\n", "",
         "dockerd's imported image has empty lists where berth has null"),
        (&["network", "create", "--ipv6", "nov6"], 1, "",
         "Error: could not find an available, non-overlapping IPv6 address pool among the defaults to assign to the network: give an IPv6 --subnet (e.g. --subnet fd00:1::/64)\n",
         "berth's message adds the fix, as its errors do"),
        // dockerd 20.10 records an IPv6 subnet given without --ipv6 and gives no container an
        // IPv6 address (accepted, unused); berth refuses it, so the network does not exist.
        (&["network", "create", "--subnet", "fd00:b0:77::/64", "v6sub"], 1, "",
         "Error: IPv6 subnet fd00:b0:77::/64 given without --ipv6: add --ipv6 to enable IPv6 on the network\n",
         "berth refuses an IPv6 subnet without --ipv6"),
        (&["network", "inspect", "-f", "{{.EnableIPv6}} {{json .IPAM.Config}}", "v6sub"], 1, "",
         "Error: network v6sub not found\n", "the network was refused"),
        (&["network", "rm", "v6sub"], 1, "", "Error: network v6sub not found\n",
         "the network was refused"),
    ];
    let mut failures = Vec::new();
    for c in &cases {
        let args: Vec<String> = c
            .args
            .iter()
            .map(|a| a.replace("{other}", other_short))
            .collect();
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        let (code, out, errout) = b.code(&argv);
        let pinned = known.iter().find(|k| k.0 == c.args.as_slice());
        let (want_code, want_out, want_err) = match pinned {
            Some((_, code, o, e, _)) => (*code, o.to_string(), e.to_string()),
            None => (
                c.code,
                norm(&c.stdout.replace("{other}", other_short)),
                norm(&c.stderr.replace("{other}", other_short)),
            ),
        };
        if (code, norm(&out), norm(&errout)) != (want_code, want_out.clone(), want_err.clone()) {
            failures.push(format!(
                "berth {argv:?}\n  want ({want_code}, {want_out:?}, {want_err:?})\n  berth ({code}, {:?}, {:?})",
                norm(&out),
                norm(&errout)
            ));
        }
    }
    for k in known {
        assert!(
            cases.iter().any(|c| c.args.as_slice() == k.0),
            "a pinned difference names no recorded case: {:?}",
            k.0
        );
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
