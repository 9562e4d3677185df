//! `update`: new limits reach the running container's cgroup (seen from inside it), a stopped
//! container's next start, and `inspect`; Docker's conflicts and messages; restart policies.

mod common;

use common::Berth;
use std::time::Duration;

/// The container's own cgroup files, read from inside it: (memory limit, memory+swap limit or
/// v2 swap, cpu quota, pids max).
fn limits(b: &Berth, name: &str) -> Vec<String> {
    let script = "if [ -d /sys/fs/cgroup/memory ]; then \
        cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/memory/memory.memsw.limit_in_bytes \
            /sys/fs/cgroup/memory/memory.soft_limit_in_bytes /sys/fs/cgroup/cpu/cpu.cfs_quota_us \
            /sys/fs/cgroup/cpu/cpu.shares /sys/fs/cgroup/pids/pids.max; \
        else echo v2; fi";
    b.ok(&["exec", name, "sh", "-c", script])
        .lines()
        .map(str::to_string)
        .collect()
}

fn v1() -> bool {
    std::path::Path::new("/sys/fs/cgroup/memory").is_dir()
}

#[test]
fn running_container_gets_new_limits() {
    common::is_root("update");
    let b = Berth::with_busybox();
    b.ok(&[
        "run", "-d", "--name", "u1", "-m", "64m", "busybox", "sleep", "60",
    ]);
    b.ok(&["run", "-d", "--name", "u2", "busybox", "sleep", "60"]);
    // Docker keeps twice the memory as the swap limit when only --memory was given.
    let (code, err) = b.fails(&["update", "-m", "256m", "u1"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("Cannot update container ")
            && err.contains("Memory limit should be smaller than already set memoryswap limit, update the memoryswap at the same time"),
        "{err}"
    );
    let out = b.ok(&[
        "update",
        "-m",
        "100m",
        "--memory-swap",
        "300m",
        "--memory-reservation",
        "50m",
        "--cpus",
        "0.5",
        "--cpu-shares",
        "512",
        "--pids-limit",
        "33",
        "u1",
    ]);
    assert_eq!(out, "u1\n");
    assert_eq!(
        b.ok(&[
            "inspect",
            "-f",
            "{{.HostConfig.Memory}} {{.HostConfig.MemorySwap}} {{.HostConfig.MemoryReservation}} {{.HostConfig.NanoCpus}} {{.HostConfig.CpuShares}} {{.HostConfig.PidsLimit}}",
            "u1"
        ])
        .trim(),
        "104857600 314572800 52428800 500000000 512 33"
    );
    if v1() {
        assert_eq!(
            limits(&b, "u1"),
            ["104857600", "314572800", "52428800", "50000", "512", "33"]
        );
    } else {
        let v = b.ok(&[
            "exec",
            "u1",
            "cat",
            "/sys/fs/cgroup/memory.max",
            "/sys/fs/cgroup/memory.swap.max",
            "/sys/fs/cgroup/memory.low",
            "/sys/fs/cgroup/cpu.max",
            "/sys/fs/cgroup/pids.max",
        ]);
        assert_eq!(
            v.lines().collect::<Vec<_>>(),
            ["104857600", "209715200", "52428800", "50000 100000", "33"]
        );
    }
    // Several containers: each name is printed as given.
    assert_eq!(
        b.ok(&["update", "--pids-limit", "-1", "u1", "u2"]),
        "u1\nu2\n"
    );
    if v1() {
        assert_eq!(limits(&b, "u2")[5], "max");
    }
    // CFS period and quota are exclusive with --cpus.
    let (_, err) = b.fails(&["update", "--cpu-quota", "20000", "u1"]);
    assert!(
        err.contains(
            "Conflicting options: CPU Quota cannot be updated as NanoCPUs has already been set"
        ),
        "{err}"
    );
    b.ok(&[
        "update",
        "--cpu-period",
        "50000",
        "--cpu-quota",
        "25000",
        "u2",
    ]);
    if v1() {
        assert_eq!(limits(&b, "u2")[3], "25000");
    }
    assert_eq!(
        b.ok(&[
            "inspect",
            "-f",
            "{{.HostConfig.CpuPeriod}} {{.HostConfig.CpuQuota}}",
            "u2"
        ])
        .trim(),
        "50000 25000"
    );
    b.ok(&["rm", "-f", "u1", "u2"]);
}

#[test]
fn stopped_container_starts_with_new_limits_and_bad_requests_are_refused() {
    common::is_root("update");
    let b = Berth::with_busybox();
    b.ok(&[
        "create",
        "--name",
        "c1",
        "busybox",
        "sh",
        "-c",
        "cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max",
    ]);
    assert_eq!(b.ok(&["update", "--pids-limit", "44", "c1"]), "c1\n");
    assert_eq!(b.ok(&["start", "-a", "c1"]).trim(), "44");
    assert_eq!(
        b.ok(&["inspect", "-f", "{{.HostConfig.PidsLimit}}", "c1"])
            .trim(),
        "44"
    );

    let (code, err) = b.fails(&["update", "c1"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("you must provide one or more flags when using this command"),
        "{err}"
    );
    for (args, msg) in [
        (vec!["-m", "1m"], "Minimum memory limit allowed is 6MB"),
        (
            vec!["-m", "64m", "--memory-swap", "32m"],
            "Minimum memoryswap limit should be larger than memory limit",
        ),
        (
            vec!["--cpu-period", "10"],
            "CPU cfs period can not be less than 1ms",
        ),
        (
            vec!["--cpuset-cpus", "4000"],
            "Requested CPUs are not available",
        ),
        (
            vec!["--restart", "sometimes"],
            "invalid restart policy format",
        ),
    ] {
        let mut a = vec!["update"];
        a.extend(args.iter().copied());
        a.push("c1");
        let (code, err) = b.fails(&a);
        assert_eq!(code, 1, "{args:?}");
        assert!(err.contains(msg), "{args:?}: {err}");
    }
    let (code, err) = b.fails(&["update", "--restart", "always", "nosuch"]);
    assert_eq!(code, 1);
    assert!(err.contains("No such container: nosuch"), "{err}");
    b.ok(&["create", "--rm", "--name", "gone", "busybox", "true"]);
    let (_, err) = b.fails(&["update", "--restart", "always", "gone"]);
    assert!(
        err.contains(
            "Restart policy cannot be updated because AutoRemove is enabled for the container"
        ),
        "{err}"
    );
    // Below what the container uses: the kernel refuses on cgroup v1 (v2 reclaims instead).
    if v1() {
        b.ok(&[
            "run",
            "-d",
            "--name",
            "big",
            "busybox",
            "sh",
            "-c",
            "dd if=/dev/zero of=/dev/shm/x bs=1M count=40 2>/dev/null; touch /tmp/full; sleep 60",
        ]);
        common::wait_for("40 MB used", Duration::from_secs(15), || {
            b.code(&["exec", "big", "test", "-e", "/tmp/full"]).0 == 0
        });
        let (code, err) = b.fails(&["update", "-m", "10m", "--memory-swap", "20m", "big"]);
        assert_eq!(code, 1);
        assert!(
            err.contains("Cannot update container") && err.contains("unable to set memory limit"),
            "{err}"
        );
        // Nothing was recorded.
        assert_eq!(
            b.ok(&["inspect", "-f", "{{.HostConfig.Memory}}", "big"])
                .trim(),
            "0"
        );
        b.ok(&["rm", "-f", "big"]);
    }
    b.ok(&["rm", "-f", "c1", "gone"]);
}

#[test]
fn restart_policy_of_a_running_container() {
    common::is_root("update");
    let b = Berth::with_busybox();
    b.ok(&[
        "run",
        "-d",
        "--name",
        "rp",
        "busybox",
        "sh",
        "-c",
        "sleep 3; exit 3",
    ]);
    assert_eq!(b.ok(&["update", "--restart", "on-failure:1", "rp"]), "rp\n");
    assert_eq!(
        b.ok(&[
            "inspect",
            "-f",
            "{{.HostConfig.RestartPolicy.Name}}:{{.HostConfig.RestartPolicy.MaximumRetryCount}}",
            "rp"
        ])
        .trim(),
        "on-failure:1"
    );
    common::wait_for("one restart", Duration::from_secs(20), || {
        b.ok(&["inspect", "-f", "{{.State.Status}} {{.RestartCount}}", "rp"])
            .trim()
            == "exited 1"
    });
    b.ok(&["rm", "-f", "rp"]);
}
