//! `run`/`create` flags checked by their effect inside the container: namespaces (`--ipc`,
//! `--pid`, `--uts`), devices, sysctls, resource knobs, log rotation and drivers, and the
//! front-end flags (`--cidfile`, `--pull`, `--platform`, `--expose`, `--label-file`,
//! `--volumes-from`, `-a`, `--sig-proxy`), each with Docker's validation messages.

mod common;

use common::Berth;
use std::process::Stdio;
use std::time::{Duration, Instant};

fn inspect(b: &Berth, name: &str, fmt: &str) -> String {
    b.ok(&["inspect", "-f", fmt, name]).trim().to_string()
}

fn host_ns(kind: &str) -> String {
    std::fs::read_link(format!("/proc/self/ns/{kind}"))
        .unwrap()
        .display()
        .to_string()
}

/// Runs `sh -c script` in a fresh container without a network; its stdout.
fn sh(b: &Berth, flags: &[&str], script: &str) -> String {
    let mut args = vec!["run", "--rm", "--network", "none"];
    args.extend_from_slice(flags);
    args.extend_from_slice(&["busybox", "sh", "-c", script]);
    b.ok(&args)
}

/// Exit code and stderr of a `run` expected to be refused.
fn refused(b: &Berth, flags: &[&str]) -> (i32, String) {
    let mut args = vec!["run", "--rm"];
    if !flags.contains(&"--network") {
        args.extend_from_slice(&["--network", "none"]);
    }
    args.extend_from_slice(flags);
    args.extend_from_slice(&["busybox", "true"]);
    b.fails(&args)
}

#[test]
fn host_namespaces_are_the_hosts() {
    assert!(common::is_root("run flags"));
    let b = Berth::with_busybox();
    let script = "for n in ipc pid uts; do readlink /proc/self/ns/$n; done; hostname";
    let own = sh(&b, &[], script);
    let host = format!(
        "{}\n{}\n{}\n",
        host_ns("ipc"),
        host_ns("pid"),
        host_ns("uts")
    );
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let hostname = hostname.trim();
    assert_ne!(own, format!("{host}{hostname}\n"));
    for l in own.lines().take(3) {
        assert!(!host.contains(l), "a private namespace is the host's: {l}");
    }
    let shared = sh(
        &b,
        &["--ipc", "host", "--pid", "host", "--uts", "host"],
        script,
    );
    assert_eq!(shared, format!("{host}{hostname}\n"));
    // --ipc host shares the host's /dev/shm too.
    let marker = format!("/dev/shm/berth-test-{}", std::process::id());
    sh(&b, &["--ipc", "host"], &format!("echo hi > {marker}"));
    assert_eq!(std::fs::read_to_string(&marker).unwrap(), "hi\n");
    std::fs::remove_file(&marker).unwrap();
    // --ipc none: no /dev/shm at all.
    assert_eq!(
        sh(&b, &["--ipc", "none"], "test -e /dev/shm || echo none"),
        "none\n"
    );

    b.ok(&[
        "create",
        "--name",
        "ns",
        "--network",
        "none",
        "--ipc",
        "host",
        "--pid",
        "host",
        "--uts",
        "host",
        "busybox",
        "true",
    ]);
    assert_eq!(
        inspect(
            &b,
            "ns",
            "{{.HostConfig.IpcMode}} {{.HostConfig.PidMode}} {{.HostConfig.UTSMode}}"
        ),
        "host host host"
    );
    assert_eq!(inspect(&b, "ns", "{{.Config.Hostname}}"), hostname);
    b.ok(&[
        "create",
        "--name",
        "dflt",
        "--network",
        "none",
        "busybox",
        "true",
    ]);
    assert_eq!(
        inspect(
            &b,
            "dflt",
            "{{.HostConfig.IpcMode}}|{{.HostConfig.PidMode}}|{{.HostConfig.UTSMode}}"
        ),
        "private||"
    );

    for (flags, msg) in [
        (&["--ipc", "bogus"][..], "--ipc: invalid IPC mode"),
        (&["--ipc", "container:"][..], "--ipc: invalid IPC mode"),
        (&["--pid", "private"][..], "--pid: invalid PID mode"),
        (&["--uts", "container:x"][..], "--uts: invalid UTS mode"),
        (
            &["--uts", "host", "-h", "box"][..],
            "Conflicting options: hostname and the UTS mode",
        ),
        (
            &["--pid", "container:nosuch"][..],
            "No such container: nosuch",
        ),
    ] {
        let (code, err) = refused(&b, flags);
        assert_eq!(code, 125, "{flags:?}: {err}");
        assert!(err.contains(msg), "{flags:?}: {err}");
    }
}

#[test]
fn joined_ipc_and_pid_namespaces() {
    assert!(common::is_root("run flags"));
    let b = Berth::with_busybox();
    b.ok(&[
        "run",
        "-d",
        "--name",
        "donor",
        "--network",
        "none",
        "--ipc",
        "shareable",
        "busybox",
        "sleep",
        "60",
    ]);
    b.ok(&[
        "run",
        "-d",
        "--name",
        "plain",
        "--network",
        "none",
        "busybox",
        "sleep",
        "60",
    ]);
    let donor_ipc = b.ok(&["exec", "donor", "readlink", "/proc/self/ns/ipc"]);
    let out = sh(
        &b,
        &["--ipc", "container:donor", "--pid", "container:donor"],
        "readlink /proc/self/ns/ipc; echo shared > /dev/shm/f; ps -o comm | grep -c sleep",
    );
    assert_eq!(out, format!("{donor_ipc}1\n"));
    // The joiner wrote into the donor's /dev/shm.
    assert_eq!(b.ok(&["exec", "donor", "cat", "/dev/shm/f"]), "shared\n");
    assert_eq!(inspect(&b, "donor", "{{.HostConfig.IpcMode}}"), "shareable");

    let (code, err) = refused(&b, &["--ipc", "container:plain"]);
    assert_eq!(code, 125);
    assert!(err.contains("non-shareable IPC"), "{err}");
    b.ok(&["stop", "-t", "0", "donor"]);
    let (code, err) = refused(&b, &["--pid", "container:donor"]);
    assert_eq!(code, 125);
    assert!(
        err.contains("cannot join PID of a non running container"),
        "{err}"
    );
    b.ok(&["rm", "-f", "donor", "plain"]);
}

#[test]
fn devices_and_device_cgroup_rules() {
    assert!(common::is_root("run flags"));
    let b = Berth::with_busybox();
    // A node like the host's, under another name, usable with the permissions given.
    assert_eq!(
        sh(
            &b,
            &["--device", "/dev/null:/dev/mynull:rw"],
            "stat -c '%F %t:%T' /dev/mynull; echo x > /dev/mynull && echo written"
        ),
        "character special file 1:3\nwritten\n"
    );
    // /dev/fuse's numbers (10:229) are not allowed by default; the rule allows them.
    let open = "mknod /tmp/n c 10 229 && (exec 3<>/tmp/n) && echo opened";
    let (code, _, err) = b.code(&[
        "run",
        "--rm",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        open,
    ]);
    assert_ne!(code, 0, "opened a device the cgroup should deny: {err}");
    assert_eq!(
        sh(&b, &["--device-cgroup-rule", "c 10:229 rw"], open),
        "opened\n"
    );
    b.ok(&[
        "create",
        "--name",
        "dev",
        "--network",
        "none",
        "--device",
        "/dev/null:/dev/mynull:rw",
        "--device-cgroup-rule",
        "c 10:229 rw",
        "busybox",
        "true",
    ]);
    assert_eq!(
        inspect(
            &b,
            "dev",
            "{{json .HostConfig.Devices}} {{json .HostConfig.DeviceCgroupRules}}"
        ),
        r#"[{"PathOnHost":"/dev/null","PathInContainer":"/dev/mynull","CgroupPermissions":"rw"}] ["c 10:229 rw"]"#
    );
    for (flags, msg) in [
        (
            &["--device", "/dev/nosuch"][..],
            "error gathering device information while adding custom device \"/dev/nosuch\": no such file or directory",
        ),
        (&["--device", "/etc/passwd"][..], "not a device node"),
        (&["--device", "/dev/null:/dev/x:rwz"][..], "bad mode specified: rwz"),
        (
            &["--device-cgroup-rule", "c 10 rw"][..],
            "invalid device cgroup format 'c 10 rw'",
        ),
    ] {
        let (code, err) = refused(&b, flags);
        assert_eq!(code, 125, "{flags:?}: {err}");
        assert!(err.contains(msg), "{flags:?}: {err}");
    }
}

#[test]
fn sysctls_are_set_in_the_containers_namespaces() {
    assert!(common::is_root("run flags"));
    let b = Berth::with_busybox();
    assert_eq!(
        sh(
            &b,
            &[
                "--sysctl",
                "net.ipv4.ip_forward=1",
                "--sysctl",
                "kernel.shmmax=123456"
            ],
            "cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/shmmax"
        ),
        "1\n123456\n"
    );
    b.ok(&[
        "create",
        "--name",
        "sc",
        "--network",
        "none",
        "--sysctl",
        "kernel.shmmax=123456",
        "busybox",
        "true",
    ]);
    assert_eq!(
        inspect(&b, "sc", "{{json .HostConfig.Sysctls}}"),
        r#"{"kernel.shmmax":"123456"}"#
    );
    for (flags, msg) in [
        (
            &["--sysctl", "kernel.hostname=x"][..],
            "invalid argument \"kernel.hostname=x\" for \"--sysctl\" flag: sysctl 'kernel.hostname=x' is not whitelisted",
        ),
        (&["--sysctl", "vm.swappiness=1"][..], "is not whitelisted"),
        // Never the host's own: these would change the host.
        (
            &["--network", "host", "--sysctl", "net.ipv4.ip_forward=1"][..],
            "sysctl \"net.ipv4.ip_forward\" is not allowed in the hosts network namespace",
        ),
        (
            &["--ipc", "host", "--sysctl", "kernel.shmmax=1"][..],
            "sysctl \"kernel.shmmax\" is not allowed in the hosts ipc namespace",
        ),
    ] {
        let (code, err) = refused(&b, flags);
        assert_eq!(code, 125, "{flags:?}: {err}");
        assert!(err.contains(msg), "{flags:?}: {err}");
    }
}

#[test]
fn memory_and_cpu_knobs_reach_the_cgroup() {
    assert!(common::is_root("run flags"));
    let b = Berth::with_busybox();
    for rt in common::runtimes() {
        let out = sh(
            &b,
            &[
                "--runtime",
                rt,
                "--memory",
                "64m",
                "--memory-reservation",
                "32m",
                "--memory-swappiness",
                "10",
                "--oom-kill-disable",
                "--oom-score-adj",
                "500",
                "--cpu-period",
                "50000",
                "--cpu-quota",
                "25000",
            ],
            "cat /proc/self/oom_score_adj; cd /sys/fs/cgroup/memory; cat memory.soft_limit_in_bytes memory.swappiness; \
             grep oom_kill_disable memory.oom_control; cat /sys/fs/cgroup/cpu/cpu.cfs_period_us /sys/fs/cgroup/cpu/cpu.cfs_quota_us",
        );
        assert_eq!(
            out, "500\n33554432\n10\noom_kill_disable 1\n50000\n25000\n",
            "{rt}"
        );
    }
    b.ok(&[
        "create",
        "--name",
        "res",
        "--network",
        "none",
        "--memory-reservation",
        "32m",
        "--memory-swappiness",
        "10",
        "--oom-kill-disable",
        "--oom-score-adj",
        "-200",
        "--cpu-period",
        "50000",
        "--cpu-quota",
        "25000",
        "busybox",
        "true",
    ]);
    assert_eq!(
        inspect(
            &b,
            "res",
            "{{.HostConfig.MemoryReservation}} {{.HostConfig.MemorySwappiness}} {{.HostConfig.OomKillDisable}} {{.HostConfig.OomScoreAdj}} {{.HostConfig.CpuPeriod}} {{.HostConfig.CpuQuota}}"
        ),
        "33554432 10 true -200 50000 25000"
    );
    let (code, _, err) = b.code(&["create", "--oom-kill-disable", "busybox", "true"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("WARNING: Disabling the OOM killer on containers without setting a '-m/--memory' limit may be dangerous."),
        "{err}"
    );
    for (flags, msg) in [
        (
            &["--memory-reservation", "1m"][..],
            "Minimum memory reservation allowed is 6MB",
        ),
        (
            &["-m", "16m", "--memory-reservation", "32m"][..],
            "Minimum memory limit can not be less than memory reservation limit, see usage",
        ),
        (
            &["--memory-swappiness", "101"][..],
            "Invalid value: 101, valid memory swappiness range is 0-100",
        ),
        (
            &["--oom-score-adj", "1001"][..],
            "Invalid value 1001, range for oom score adj is [-1000, 1000]",
        ),
        (
            &["--cpu-period", "10"][..],
            "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)",
        ),
        (
            &["--cpu-quota", "10"][..],
            "CPU cfs quota can not be less than 1ms (i.e. 1000)",
        ),
        (
            &["--cpus", "1", "--cpu-quota", "50000"][..],
            "Conflicting options: Nano CPUs and CPU Quota cannot both be set",
        ),
        (
            &["--oom-score-adj", "x"][..],
            "invalid argument \"x\" for \"--oom-score-adj\" flag",
        ),
    ] {
        let (code, err) = refused(&b, flags);
        assert_eq!(code, 125, "{flags:?}: {err}");
        assert!(err.contains(msg), "{flags:?}: {err}");
    }
}

const CHATTY: &str =
    "i=0; while [ $i -lt 300 ]; do echo line-$i-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxx; i=$((i+1)); done";

#[test]
fn log_rotation_bounds_the_log_and_logs_reads_across_files() {
    assert!(common::is_root("run flags"));
    let b = Berth::with_busybox();
    // The foreground run shows every line, however fast the log rotates.
    let out = b.ok(&[
        "run",
        "--name",
        "chatty",
        "--network",
        "none",
        "--log-opt",
        "max-size=2k",
        "--log-opt",
        "max-file=3",
        "busybox",
        "sh",
        "-c",
        CHATTY,
    ]);
    assert_eq!(out.lines().count(), 300);
    let dir = b
        .root()
        .join("containers")
        .join(inspect(&b, "chatty", "{{.Id}}"));
    let mut logs: Vec<String> = common::list(&dir)
        .iter()
        .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().to_string()))
        .filter(|n| n.starts_with("container.log"))
        .collect();
    logs.sort();
    assert_eq!(
        logs,
        ["container.log", "container.log.1", "container.log.2"]
    );
    for l in &logs {
        let len = std::fs::metadata(dir.join(l)).unwrap().len();
        assert!(len <= 2000, "{l} is {len} bytes, over max-size");
    }
    // `logs` reads the rotated files, oldest first: an unbroken run of the last lines.
    let kept = b.ok(&["logs", "chatty"]);
    let nums: Vec<usize> = kept
        .lines()
        .map(|l| l.split('-').nth(1).unwrap().parse().unwrap())
        .collect();
    assert!(nums.len() > 20 && nums.len() < 300, "{}", nums.len());
    assert_eq!(*nums.last().unwrap(), 299);
    assert!(nums.windows(2).all(|w| w[1] == w[0] + 1), "{nums:?}");
    assert_eq!(
        b.ok(&["logs", "--tail", "2", "chatty"]),
        "line-298-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\nline-299-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n"
    );
    assert_eq!(
        inspect(&b, "chatty", "{{json .HostConfig.LogConfig}}"),
        r#"{"Type":"json-file","Config":{"max-file":"3","max-size":"2k"}}"#
    );
    // `logs -f` follows the current file across rotations.
    b.ok(&[
        "run",
        "-d",
        "--name",
        "slow",
        "--network",
        "none",
        "--log-opt",
        "max-size=1k",
        "busybox",
        "sh",
        "-c",
        "i=0; while [ $i -lt 60 ]; do echo l-$i-xxxxxxxxxxxxxxxxxxxx; i=$((i+1)); sleep 0.01; done",
    ]);
    let followed = b.ok(&["logs", "-f", "slow"]);
    let last = followed.lines().last().unwrap_or_default().to_string();
    assert_eq!(last, "l-59-xxxxxxxxxxxxxxxxxxxx", "{followed}");
    let dir = b
        .root()
        .join("containers")
        .join(inspect(&b, "slow", "{{.Id}}"));
    assert!(
        !dir.join("container.log.1").exists(),
        "max-file 1 keeps one file"
    );

    // none: nothing written, `logs` refuses as Docker does, the run still shows its output.
    assert_eq!(
        b.ok(&[
            "run",
            "--name",
            "quiet",
            "--network",
            "none",
            "--log-driver",
            "none",
            "busybox",
            "echo",
            "shown",
        ]),
        "shown\n"
    );
    let (code, err) = b.fails(&["logs", "quiet"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("configured logging driver does not support reading"),
        "{err}"
    );
    // local: json-file files with local's defaults.
    b.ok(&[
        "create",
        "--name",
        "loc",
        "--network",
        "none",
        "--log-driver",
        "local",
        "busybox",
        "true",
    ]);
    assert_eq!(
        inspect(&b, "loc", "{{.HostConfig.LogConfig.Type}}"),
        "local"
    );

    for (flags, msg) in [
        (
            &["--log-driver", "syslog"][..],
            "no log driver named 'syslog' is registered",
        ),
        (
            &["--log-driver", "none", "--log-opt", "max-size=1m"][..],
            "invalid logging opts for driver none",
        ),
        (
            &["--log-opt", "max-file=0"][..],
            "max-file cannot be less than 1",
        ),
        (
            &["--log-opt", "max-size=-1"][..],
            "max-size must be a positive number",
        ),
        (
            &["--log-opt", "colour=1"][..],
            "unknown log opt 'colour' for json-file log driver",
        ),
        (&["--log-opt", "compress=true"][..], "compress"),
    ] {
        let (code, err) = refused(&b, flags);
        assert_eq!(code, 125, "{flags:?}: {err}");
        assert!(err.contains(msg), "{flags:?}: {err}");
    }
}

#[test]
fn cidfile_pull_platform_expose_labels() {
    assert!(common::is_root("run flags"));
    let b = Berth::with_busybox();
    let cid = b.dir.path().join("cid");
    let cid_s = cid.to_str().unwrap();
    b.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--cidfile",
        cid_s,
        "busybox",
        "true",
    ]);
    let id = std::fs::read_to_string(&cid).unwrap();
    assert_eq!(id.len(), 64, "{id}");
    let (code, err) = refused(&b, &["--cidfile", cid_s]);
    assert_eq!(code, 125);
    assert!(
        err.contains(&format!(
            "Container ID file found, make sure the other container isn't running or delete {cid_s}"
        )),
        "{err}"
    );
    // A container that exists but fails to start keeps its file, as in Docker.
    let cid3 = b.dir.path().join("cid3");
    let (code, _, _) = b.code(&[
        "run",
        "--network",
        "none",
        "--cidfile",
        cid3.to_str().unwrap(),
        "busybox",
        "nosuchcommand",
    ]);
    assert_eq!(code, 127);
    let id3 = std::fs::read_to_string(&cid3).unwrap();
    assert_eq!(inspect(&b, &id3, "{{.Id}}"), id3);
    // A failed create leaves no file behind.
    let cid2 = b.dir.path().join("cid2");
    b.fails(&[
        "create",
        "--cidfile",
        cid2.to_str().unwrap(),
        "--ipc",
        "bogus",
        "busybox",
    ]);
    assert!(!cid2.exists());
    b.ok(&[
        "create",
        "--name",
        "cf",
        "--cidfile",
        cid2.to_str().unwrap(),
        "busybox",
        "true",
    ]);
    assert_eq!(
        inspect(&b, "cf", "{{.HostConfig.ContainerIDFile}}"),
        cid2.to_str().unwrap()
    );

    // --pull never: only what the store has; always: asks the registry even then.
    assert_eq!(
        b.ok(&[
            "run",
            "--rm",
            "--network",
            "none",
            "--pull",
            "never",
            "busybox",
            "echo",
            "ok"
        ]),
        "ok\n"
    );
    let (code, err) = b.fails(&["run", "--rm", "--pull", "never", "nosuch:1", "true"]);
    assert_eq!(code, 125);
    assert!(err.contains("No such image: nosuch:1"), "{err}");
    b.ok(&["tag", "busybox", "127.0.0.1:1/bb"]);
    let (code, err) = b.fails(&["run", "--rm", "--pull", "always", "127.0.0.1:1/bb", "true"]);
    assert_eq!(code, 125);
    assert!(err.contains("127.0.0.1:1"), "{err}");
    let (_, err) = refused(&b, &["--pull", "sometimes"]);
    assert!(
        err.contains(
            "invalid pull option: 'sometimes': must be one of \"always\", \"missing\" or \"never\""
        ),
        "{err}"
    );

    // --platform: the host's only.
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        a => a,
    };
    b.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--platform",
        &format!("linux/{arch}"),
        "busybox",
        "true",
    ]);
    let other = if arch == "arm64" {
        "linux/amd64"
    } else {
        "linux/arm64"
    };
    let (code, err) = refused(&b, &["--platform", other]);
    assert_eq!(code, 125);
    assert!(
        err.contains(&format!(
            "image platform {other} does not match the host platform"
        )),
        "{err}"
    );

    // --expose reaches Config.ExposedPorts and -P publishes it; --label-file, --label wins.
    let lf = b.dir.path().join("labels");
    std::fs::write(&lf, "# comment\na=1\n\nb=2\n").unwrap();
    b.ok(&[
        "create",
        "--name",
        "ex",
        "--network",
        "none",
        "--expose",
        "7000-7001/udp",
        "--expose",
        "80",
        "--label-file",
        lf.to_str().unwrap(),
        "-l",
        "b=3",
        "busybox",
        "true",
    ]);
    assert_eq!(
        inspect(
            &b,
            "ex",
            "{{json .Config.ExposedPorts}} {{json .Config.Labels}}"
        ),
        r#"{"7000/udp":{},"7001/udp":{},"80/tcp":{}} {"a":"1","b":"3"}"#
    );
    b.ok(&[
        "run", "-d", "--name", "pub", "--expose", "7123", "-P", "busybox", "sleep", "30",
    ]);
    let port = b.ok(&["port", "pub"]);
    assert!(port.starts_with("7123/tcp -> 0.0.0.0:"), "{port}");
    b.ok(&["rm", "-f", "pub"]);
    let (_, err) = refused(&b, &["--expose", "1:2"]);
    assert!(
        err.contains("invalid port format for --expose: 1:2"),
        "{err}"
    );
    let (_, err) = refused(&b, &["--label-file", "/nonexistent/labels"]);
    assert!(err.contains("/nonexistent/labels"), "{err}");
}

#[test]
fn volumes_from_attach_and_sig_proxy() {
    assert!(common::is_root("run flags"));
    let b = Berth::with_busybox();
    b.ok(&[
        "run",
        "--name",
        "vd",
        "--network",
        "none",
        "-v",
        "/data",
        "busybox",
        "sh",
        "-c",
        "echo shared > /data/f",
    ]);
    assert_eq!(
        sh(
            &b,
            &["--volumes-from", "vd"],
            "cat /data/f; echo more > /data/g"
        ),
        "shared\n"
    );
    let (code, _, err) = b.code(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--volumes-from",
        "vd:ro",
        "busybox",
        "sh",
        "-c",
        "cat /data/g; echo x > /data/h",
    ]);
    assert_ne!(code, 0);
    assert!(err.contains("Read-only file system"), "{err}");
    b.ok(&[
        "create",
        "--name",
        "vf",
        "--volumes-from",
        "vd:ro",
        "busybox",
        "true",
    ]);
    assert_eq!(
        inspect(&b, "vf", "{{json .HostConfig.VolumesFrom}}"),
        r#"["vd:ro"]"#
    );
    // `rm -v` of a container that borrowed the volume leaves it to its owner.
    b.ok(&["rm", "-v", "vf"]);
    assert_eq!(sh(&b, &["--volumes-from", "vd"], "cat /data/f"), "shared\n");
    let (_, err) = refused(&b, &["--volumes-from", "nosuch"]);
    assert!(err.contains("No such container: nosuch"), "{err}");

    // -a: only the streams asked for.
    let script = "echo out; echo err >&2";
    let (code, out, err) = b.code(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-a",
        "stderr",
        "busybox",
        "sh",
        "-c",
        script,
    ]);
    assert_eq!((code, out.as_str(), err.as_str()), (0, "", "err\n"));
    let (code, out, err) = b.code(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-a",
        "STDOUT",
        "busybox",
        "sh",
        "-c",
        script,
    ]);
    assert_eq!((code, out.as_str(), err.as_str()), (0, "out\n", ""));
    b.ok(&["create", "--name", "at", "-a", "stdout", "busybox", "true"]);
    assert_eq!(
        inspect(
            &b,
            "at",
            "{{.Config.AttachStdin}} {{.Config.AttachStdout}} {{.Config.AttachStderr}}"
        ),
        "false true false"
    );
    let (code, err) = refused(&b, &["-d", "-a", "stdout"]);
    assert_eq!(code, 125);
    assert!(err.contains("Conflicting options: -a and -d"), "{err}");
    let (_, err) = refused(&b, &["-a", "stdlog"]);
    assert!(
        err.contains("invalid argument \"stdlog\" for \"-a, --attach\" flag: valid streams are STDIN, STDOUT and STDERR"),
        "{err}"
    );

    // --sig-proxy=false: a signal ends berth, not the container.
    let mut child = b
        .command()
        .args([
            "run",
            "--name",
            "sp",
            "--network",
            "none",
            "--sig-proxy=false",
            "busybox",
            "sleep",
            "30",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while inspect_status(&b, "sp") != "running" {
        assert!(Instant::now() < deadline, "sp never ran");
        std::thread::sleep(Duration::from_millis(50));
    }
    // SAFETY: kill(2) on our own child's pid; no memory is involved.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
    let _ = child.wait().unwrap();
    assert_eq!(inspect_status(&b, "sp"), "running");
    b.ok(&["rm", "-f", "sp"]);
}

fn inspect_status(b: &Berth, name: &str) -> String {
    let (_, out, _) = b.code(&["inspect", "-f", "{{.State.Status}}", name]);
    out.trim().to_string()
}
