//! Container lifecycle tests against real containers (root, namespaces, cgroups), run with
//! the built-in runtime and with runc (when installed): the same tests for both.

mod common;

use common::{Berth, BIN};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn run_args<'a>(rt: &'a str, rest: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec!["run", "--runtime", rt];
    v.extend_from_slice(rest);
    v
}

fn inspect(b: &Berth, name: &str, fmt: &str) -> String {
    b.ok(&["inspect", "-f", fmt, name]).trim().to_string()
}

#[test]
fn lifecycle_each_runtime() {
    assert!(common::is_root("container"));
    for rt in common::runtimes() {
        let b = Berth::with_busybox();
        // Foreground run: output, exit codes 0/1/N, 126, 127.
        assert_eq!(
            b.ok(&run_args(rt, &["--rm", "busybox", "echo", "hello"])),
            "hello\n",
            "{rt}"
        );
        assert_eq!(b.code(&run_args(rt, &["busybox", "false"])).0, 1, "{rt}");
        assert_eq!(
            b.code(&run_args(rt, &["busybox", "sh", "-c", "exit 42"])).0,
            42
        );
        let (c, _, err) = b.code(&run_args(rt, &["busybox", "nosuchcommand"]));
        assert_eq!(c, 127, "{rt}: {err}");
        assert!(err.contains("executable file not found"), "{err}");
        assert_eq!(
            b.code(&run_args(rt, &["busybox", "/etc/passwd"])).0,
            126,
            "{rt}"
        );
        // -e, -w, -u
        let out = b.ok(&run_args(
            rt,
            &[
                "--rm",
                "-e",
                "FOO=bar",
                "-w",
                "/tmp/x",
                "-u",
                "65534",
                "busybox",
                "sh",
                "-c",
                "echo $FOO $(pwd) $(id -u)",
            ],
        ));
        assert_eq!(out, "bar /tmp/x 65534\n", "{rt}");
        // -w /proc/self/fd/N is refused (CVE-2024-21626).
        let (c, _, err) = b.code(&run_args(rt, &["busybox", "-w", "/proc/self/fd/7", "true"]));
        let (c2, _, err2) = b.code(&run_args(rt, &["-w", "/proc/self/fd/7", "busybox", "true"]));
        assert_ne!(c, 0, "{err}");
        assert_eq!(c2, 125, "{err2}");
        assert!(err2.contains("/proc"), "{err2}");

        // Detached: ps, exec, logs, stop, start, kill, rm.
        let id = b
            .ok(&run_args(
                rt,
                &[
                    "-d",
                    "--name",
                    "web",
                    "busybox",
                    "sh",
                    "-c",
                    "echo started; echo oops >&2; exec sleep 1000",
                ],
            ))
            .trim()
            .to_string();
        assert_eq!(id.len(), 64);
        let ps = b.ok(&["ps"]);
        let header = ps.lines().next().unwrap();
        for col in [
            "CONTAINER ID",
            "IMAGE",
            "COMMAND",
            "CREATED",
            "STATUS",
            "PORTS",
            "NAMES",
        ] {
            assert!(header.contains(col), "{header}");
        }
        assert!(
            ps.contains(&id[..12]) && ps.contains(" Up ") && ps.contains("web"),
            "{ps}"
        );
        assert_eq!(b.ok(&["exec", "web", "echo", "from-exec"]), "from-exec\n");
        assert_eq!(b.code(&["exec", "web", "sh", "-c", "exit 3"]).0, 3);
        assert_eq!(b.code(&["exec", "web", "nosuch"]).0, 127);
        assert_eq!(
            b.ok(&[
                "exec",
                "-e",
                "A=1",
                "-w",
                "/tmp",
                "-u",
                "65534",
                "web",
                "sh",
                "-c",
                "echo $A $(pwd) $(id -u)"
            ]),
            "1 /tmp 65534\n"
        );
        let deadline = Instant::now() + Duration::from_secs(5);
        while !b.ok(&["logs", "web"]).contains("started") && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let out = b.run(&["logs", "web"]);
        assert_eq!(String::from_utf8_lossy(&out.stdout), "started\n");
        assert_eq!(String::from_utf8_lossy(&out.stderr), "oops\n");
        assert!(b.ok(&["logs", "-t", "--tail", "2", "web"]).contains("T"));
        assert_eq!(
            inspect(&b, "web", "{{.State.Status}} {{.State.Running}} {{.Name}}"),
            "running true /web"
        );
        assert!(inspect(&b, "web", "{{.State.Pid}}").parse::<i32>().unwrap() > 0);
        // rm without -f refuses a running container.
        let (c, _, err) = b.code(&["rm", "web"]);
        assert_eq!(c, 1);
        assert!(
            err.contains("You cannot remove a running container"),
            "{err}"
        );
        assert!(err.contains("Stop the container before attempting removal or force remove"));
        b.ok(&["stop", "-t", "1", "web"]);
        assert_eq!(
            inspect(&b, "web", "{{.State.Status}} {{.State.ExitCode}}"),
            "exited 137"
        );
        let ps = b.ok(&["ps", "-a"]);
        assert!(ps.contains("Exited (137)"), "{ps}");
        assert!(!b.ok(&["ps"]).contains("web"));
        b.ok(&["start", "web"]);
        assert_eq!(inspect(&b, "web", "{{.State.Running}}"), "true");
        b.ok(&["kill", "-s", "TERM", "web"]);
        b.ok(&["kill", "web"]);
        assert_eq!(b.ok(&["wait", "web"]).trim(), "137");
        b.ok(&["rm", "web"]);
        assert_eq!(b.code(&["inspect", "--type", "container", "web"]).0, 1);
        // rm -f of a running one; created containers; prune.
        b.ok(&run_args(
            rt,
            &["-d", "--name", "r2", "busybox", "sleep", "100"],
        ));
        b.ok(&["rm", "-f", "r2"]);
        b.ok(&["create", "--name", "c1", "busybox", "true"]);
        let ps = b.ok(&["ps", "-a", "--filter", "name=c1"]);
        assert!(ps.contains("Created"), "{ps}");
        b.ok(&["start", "-a", "c1"]);
        b.ok(&["container", "prune", "-f"]);
        assert_eq!(b.ok(&["ps", "-a", "-q"]), "");
        assert!(no_leftovers(&b), "{rt}: leftovers");
    }
}

/// No container directories, mounts or cgroups are left once every container is gone.
fn no_leftovers(b: &Berth) -> bool {
    let dirs: Vec<_> = common::list(&b.root().join("containers"))
        .into_iter()
        .filter(|p| !p.file_name().unwrap().to_string_lossy().starts_with('.'))
        .collect();
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let root = b.root().display().to_string();
    dirs.is_empty() && !mounts.contains(&format!("{root}/containers"))
}

#[test]
fn ps_filters_formats_and_inspect() {
    assert!(common::is_root("container"));
    let b = Berth::with_busybox();
    b.ok(&[
        "create", "--name", "a1", "--label", "tier=web", "busybox", "true",
    ]);
    b.run(&["run", "--name", "a2", "busybox", "sh", "-c", "exit 3"]);
    b.ok(&["run", "-d", "--name", "a3", "busybox", "sleep", "100"]);
    let names = |f: &str| {
        let mut v: Vec<String> = b
            .ok(&["ps", "-a", "--filter", f, "--format", "{{.Names}}"])
            .lines()
            .map(str::to_string)
            .collect();
        v.sort();
        v.join(",")
    };
    assert_eq!(names("status=created"), "a1");
    assert_eq!(names("status=exited"), "a2");
    assert_eq!(names("exited=3"), "a2");
    assert_eq!(names("status=running"), "a3");
    assert_eq!(names("label=tier=web"), "a1");
    assert_eq!(names("name=a"), "a1,a2,a3");
    assert_eq!(names("ancestor=busybox"), "a1,a2,a3");
    assert_eq!(b.ok(&["ps", "-q"]).lines().count(), 1);
    assert_eq!(b.ok(&["ps", "-a", "-q"]).lines().count(), 3);
    assert_eq!(b.ok(&["ps", "-l", "--format", "{{.Names}}"]), "a3\n");
    assert_eq!(b.ok(&["ps", "-n", "2", "-q"]).lines().count(), 2);
    assert_eq!(
        b.ok(&["ps", "-a", "--no-trunc", "-q"])
            .lines()
            .next()
            .unwrap()
            .len(),
        64
    );
    let s = b.ok(&["ps", "-s", "--format", "{{.Size}}"]);
    assert!(s.contains("virtual"), "{s}");
    let v: serde_json::Value = serde_json::from_str(&b.ok(&["inspect", "a2"])).unwrap();
    let c = &v[0];
    assert_eq!(c["State"]["ExitCode"], 3);
    assert_eq!(c["State"]["Status"], "exited");
    assert_eq!(c["Path"], "sh");
    assert_eq!(c["Name"], "/a2");
    assert_eq!(c["Config"]["Image"], "busybox");
    assert!(c["HostConfig"].is_object() && c["NetworkSettings"].is_object());
    // inspect falls back to images.
    assert!(b
        .ok(&["inspect", "-f", "{{.Id}}", "busybox"])
        .starts_with("sha256:"));
    b.ok(&["rename", "a1", "b1"]);
    assert_eq!(inspect(&b, "b1", "{{.Name}}"), "/b1");
    b.ok(&["pause", "a3"]);
    assert!(b.ok(&["ps"]).contains("(Paused)"));
    b.ok(&["unpause", "a3"]);
    assert!(b.ok(&["top", "a3"]).contains("sleep"));
    assert_eq!(b.ok(&["port", "a3"]), "");
    b.ok(&["rm", "-f", "a3", "a2", "b1"]);
}

/// The daemon's rules on create's values come from the engine (the same answers an Engine API
/// create gets), with Docker's words and exit 125; nothing is created or pulled.
#[test]
fn create_rules_are_the_engines() {
    let b = Berth::with_busybox();
    for (args, msg) in [
        (vec!["-m", "4m"], "Minimum memory limit allowed is 6MB"),
        (
            vec!["-m", "64m", "--memory-swap", "32m"],
            "Minimum memoryswap limit should be larger than memory limit, see usage",
        ),
        (
            vec!["--memory-swap", "64m"],
            "You should always set the Memory limit when using Memoryswap limit, see usage",
        ),
        (vec!["--cpus", "100000"], "Range of CPUs is from 0.01 to"),
        (
            vec!["--cpu-shares", "-2"],
            "invalid CPU shares: must be positive",
        ),
        (
            vec!["-w", "rel"],
            "the working directory 'rel' is invalid, it needs to be an absolute path",
        ),
        (
            vec!["--security-opt", "seccomp=/x.json"],
            "invalid --security-opt: \"seccomp=/x.json\"",
        ),
        (
            vec!["--ulimit", "nofile=20:10"],
            "ulimit soft limit must be less than or equal to hard limit: 20 > 10",
        ),
        (
            vec!["--ulimit", "nofiles=1"],
            "invalid ulimit type: nofiles",
        ),
        (
            vec!["--rm", "--restart", "always"],
            "Conflicting options: --restart and --rm",
        ),
    ] {
        for cmd in ["create", "run"] {
            let mut a = vec![cmd];
            a.extend(args.iter().copied());
            // An image that is not there: the request is refused before any pull.
            a.extend(["nosuchimage", "true"]);
            let (c, _, err) = b.code(&a);
            assert_eq!(c, 125, "{a:?}: {err}");
            assert!(err.contains(msg), "{a:?}: {err}");
            assert!(!err.contains("Unable to find image"), "{a:?}: {err}");
        }
    }
    assert_eq!(b.ok(&["ps", "-aq"]), "");
    let (c, _, err) = b.code(&["create", "--pull", "never", "nosuchimage"]);
    assert_eq!(c, 125);
    assert!(err.contains("No such image: nosuchimage:latest"), "{err}");
    assert!(!err.contains("Unable to find image"), "{err}");
    let (c, _, err) = b.code(&["create", "--pull", "sometimes", "busybox"]);
    assert_eq!(c, 125);
    assert!(err.contains("invalid pull option: 'sometimes'"), "{err}");
    // Zero limits mean none, as in Docker.
    b.ok(&[
        "create",
        "--name",
        "zz",
        "-m",
        "0",
        "--cpus",
        "0",
        "--cpu-shares",
        "0",
        "--pids-limit",
        "0",
        "busybox",
        "true",
    ]);
    assert_eq!(
        b.ok(&[
            "inspect",
            "-f",
            "{{.HostConfig.Memory}} {{.HostConfig.NanoCpus}} {{.HostConfig.CpuShares}}",
            "zz"
        ])
        .trim(),
        "0 0 0"
    );
}

#[test]
fn bad_input_messages() {
    assert!(common::is_root("container"));
    let b = Berth::with_busybox();
    let (c, _, err) = b.code(&["run", "--memory", "12q", "busybox", "true"]);
    assert_eq!(c, 125);
    assert!(
        err.contains("invalid argument \"12q\" for \"-m, --memory\" flag: invalid size: '12q'"),
        "{err}"
    );
    let (c, _, err) = b.code(&["run", "--cpus", "-1", "busybox", "true"]);
    assert_eq!(c, 125);
    assert!(err.contains("Range of CPUs is from 0.01 to"), "{err}");
    let (c, _, err) = b.code(&["run", "--nosuchflag", "busybox", "true"]);
    assert_eq!(c, 125, "{err}");
    let (c, _, err) = b.code(&["run", "--rm", "nosuchimage", "true"]);
    assert_eq!(c, 125);
    assert!(
        err.contains("Unable to find image 'nosuchimage:latest' locally"),
        "{err}"
    );
    let (c, _, err) = b.code(&["run", "--name", "bad/name", "busybox", "true"]);
    assert_eq!(c, 125);
    assert!(err.contains("Invalid container name"), "{err}");
    let (c, _, err) = b.code(&["rm", "nosuch"]);
    assert_eq!(c, 1);
    assert!(err.contains("No such container: nosuch"), "{err}");
    // `rm $(ps -aq)` with nothing listed, and other missing arguments: Docker's words, exit 1.
    let (c, _, err) = b.code(&["rm"]);
    assert_eq!(c, 1, "{err}");
    assert!(
        err.starts_with("\"berth rm\" requires at least 1 argument.\nSee 'berth rm --help'."),
        "{err}"
    );
    let (c, _, err) = b.code(&["exec", "nosuch"]);
    assert_eq!(c, 1, "{err}");
    assert!(
        err.contains("\"berth exec\" requires at least 2 arguments."),
        "{err}"
    );
    let (c, _, err) = b.code(&["container", "rename", "a"]);
    assert_eq!(c, 1, "{err}");
    assert!(
        err.contains("\"berth container rename\" requires exactly 2 arguments."),
        "{err}"
    );
    assert_eq!(b.ok(&["ps", "-a", "-q"]), "");
}

#[test]
fn oom_kill_is_reported() {
    assert!(common::is_root("container"));
    for rt in common::runtimes() {
        let b = Berth::with_busybox();
        let (c, _, err) = b.code(&run_args(
            rt,
            &[
                "--name",
                "oom",
                "--memory",
                "8m",
                "--memory-swap",
                "8m",
                "busybox",
                "sh",
                "-c",
                "x=$(head -c 64000000 /dev/zero | tr '\\0' a); echo ${#x}",
            ],
        ));
        assert_eq!(c, 137, "{rt}: {err}");
        // The foreground run says why, with the limit and the peak.
        assert!(
            err.contains("was killed: out of memory (limit 8.0 MiB; peak "),
            "{rt}: {err}"
        );
        assert!(err.contains("--memory"), "{rt}: {err}");
        let status = b.ok(&[
            "ps",
            "-a",
            "--filter",
            "name=oom",
            "--format",
            "{{.Status}}",
        ]);
        assert!(
            status.starts_with("Exited (137) ") && status.trim_end().ends_with(" ago (OOM)"),
            "{rt}: {status}"
        );
        // inspect keeps the run's peak, near the 8 MiB limit.
        let peak: u64 = inspect(&b, "oom", "{{.State.MemoryPeak}}")
            .parse()
            .unwrap_or_else(|e| panic!("{rt}: MemoryPeak: {e}"));
        assert!((4 << 20..=9 << 20).contains(&peak), "{rt}: peak {peak}");
        assert_eq!(
            inspect(&b, "oom", "{{.State.OOMKilled}} {{.State.ExitCode}}"),
            "true 137",
            "{rt}"
        );
        b.ok(&["rm", "oom"]);
    }
}

#[test]
fn two_runs_with_one_name() {
    assert!(common::is_root("container"));
    let b = Berth::with_busybox();
    let spawn = || {
        b.command()
            .args(["run", "-d", "--name", "xy", "busybox", "sleep", "100"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (p1, p2) = (spawn(), spawn());
    let outs = [
        p1.wait_with_output().unwrap(),
        p2.wait_with_output().unwrap(),
    ];
    let wins = outs.iter().filter(|o| o.status.success()).count();
    assert_eq!(wins, 1);
    let loser = outs.iter().find(|o| !o.status.success()).unwrap();
    let err = String::from_utf8_lossy(&loser.stderr);
    assert_eq!(loser.status.code(), Some(125));
    assert!(
        err.contains("Conflict. The container name \"/xy\" is already in use by container \""),
        "{err}"
    );
    assert!(err
        .contains("You have to remove (or rename) that container to be able to reuse that name."));
    assert_eq!(b.ok(&["ps", "-a", "-q"]).lines().count(), 1);
    b.ok(&["rm", "-f", "xy"]);
    assert!(no_leftovers(&b));
}

#[test]
fn fifty_invocations_at_once() {
    assert!(common::is_root("container"));
    let b = Berth::with_busybox();
    let mut children = Vec::new();
    for i in 0..50 {
        let mut c = b.command();
        match i % 5 {
            0 | 1 => c.args(["run", "--rm", "busybox", "true"]),
            2 => c.args([
                "run",
                "-d",
                "--name",
                &format!("n{i}"),
                "busybox",
                "sleep",
                "100",
            ]),
            3 => c.args(["ps", "-a"]),
            _ => c.args(["create", "busybox", "true"]),
        };
        children.push(
            c.stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap(),
        );
    }
    for ch in children {
        let out = ch.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // 10 running + 10 created, and every row has its directory.
    let ids = b.ok(&["ps", "-a", "-q", "--no-trunc"]);
    assert_eq!(ids.lines().count(), 20);
    for id in ids.lines() {
        assert!(b
            .root()
            .join("containers")
            .join(id)
            .join("container.json")
            .exists());
    }
    let all: Vec<String> = ids.lines().map(str::to_string).collect();
    let mut args = vec!["rm", "-f"];
    args.extend(all.iter().map(String::as_str));
    b.ok(&args);
    assert!(no_leftovers(&b));
}

#[test]
fn killed_cli_and_monitor_leave_nothing_behind() {
    assert!(common::is_root("container"));
    let b = Berth::with_busybox();
    // kill -9 of the CLI at several points of `run`.
    for delay_ms in [1u64, 5, 15, 40, 100] {
        let mut ch = b
            .command()
            .args([
                "run",
                "--name",
                &format!("k{delay_ms}"),
                "busybox",
                "sleep",
                "100",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        let _ = ch.kill();
        let _ = ch.wait();
    }
    // The next commands see a consistent store: every listed container can be removed.
    let ids = b.ok(&["ps", "-a", "-q", "--no-trunc"]);
    for id in ids.lines() {
        b.ok(&["rm", "-f", id]);
    }
    assert_eq!(b.ok(&["ps", "-a", "-q"]), "");
    assert!(no_leftovers(&b), "leftovers after killed runs");

    // A killed monitor: the container shows as exited, honestly.
    b.ok(&["run", "-d", "--name", "mon", "busybox", "sleep", "100"]);
    let dir = b
        .root()
        .join("containers")
        .join(inspect(&b, "mon", "{{.Id}}"));
    let pid: i32 = std::fs::read_to_string(dir.join("monitor.pid"))
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap();
    // The kill is asynchronous: give a loaded machine time to deliver it.
    let deadline = Instant::now() + Duration::from_secs(10);
    while inspect(&b, "mon", "{{.State.Status}}") != "exited" && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(inspect(&b, "mon", "{{.State.Status}}"), "exited");
    assert!(b.ok(&["ps", "-a"]).contains("Exited (255)"));
    b.ok(&["rm", "mon"]);
    assert!(no_leftovers(&b));
}

#[test]
fn volumes_and_mounts() {
    assert!(common::is_root("container"));
    let b = Berth::with_busybox();
    let host = b.dir.path().join("hostdir");
    std::fs::create_dir_all(&host).unwrap();
    std::fs::write(host.join("f"), "from-host").unwrap();
    let bind = format!("{}:/data:ro", host.display());
    assert_eq!(
        b.ok(&["run", "--rm", "-v", &bind, "busybox", "cat", "/data/f"]),
        "from-host"
    );
    assert_ne!(
        b.code(&["run", "--rm", "-v", &bind, "busybox", "touch", "/data/g"])
            .0,
        0
    );
    // Relative sources starting with "." are the client's paths (docker CLI ≥ 23).
    let out = b
        .command()
        .current_dir(b.dir.path())
        .args([
            "run",
            "--rm",
            "-v",
            "./hostdir/../hostdir:/data",
            "busybox",
            "cat",
            "/data/f",
        ])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "from-host", "{out:?}");
    let (code, _, err) = b.code(&["run", "--rm", "-v", "data/x:/x", "busybox", "true"]);
    assert_eq!(code, 125);
    assert!(
        err.contains("includes invalid characters for a local volume name"),
        "{err}"
    );
    b.ok(&[
        "run",
        "--rm",
        "-v",
        "vol1:/v",
        "busybox",
        "sh",
        "-c",
        "echo kept > /v/x",
    ]);
    assert_eq!(
        b.ok(&["run", "--rm", "-v", "vol1:/v", "busybox", "cat", "/v/x"]),
        "kept\n"
    );
    assert!(b.ok(&["volume", "ls"]).contains("vol1"));
    assert_eq!(
        b.ok(&[
            "run",
            "--rm",
            "--tmpfs",
            "/scratch",
            "busybox",
            "sh",
            "-c",
            "mount | grep -c /scratch"
        ]),
        "1\n"
    );
    b.ok(&["volume", "rm", "vol1"]);
    assert!(!b.ok(&["volume", "ls", "-q"]).contains("vol1"));
}

#[test]
fn foreground_run_forwards_sigterm() {
    assert!(common::is_root("container"));
    let b = Berth::with_busybox();
    let mut ch = b
        .command()
        .args([
            "run",
            "--name",
            "sig",
            "busybox",
            "sh",
            "-c",
            "trap 'echo got; exit 7' TERM; echo ready; while true; do sleep 0.1; done",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // The trap is installed once the container says so; signal only then (a fixed delay is
    // not enough on a loaded machine).
    let mut stdout = std::io::BufReader::new(ch.stdout.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut stdout, &mut line).unwrap();
    assert_eq!(line, "ready\n");
    Command::new("kill")
        .args(["-TERM", &ch.id().to_string()])
        .status()
        .unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
    let status = ch.wait().unwrap();
    assert_eq!(status.code(), Some(7));
    assert_eq!(rest, "got\n");
    b.ok(&["rm", "sig"]);
    let _ = BIN;
}

/// The host's capability bounding set (hex, as in /proc/self/status).
fn host_cap_bounding() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let hex = status
        .lines()
        .find_map(|l| l.strip_prefix("CapBnd:"))
        .unwrap()
        .trim();
    u64::from_str_radix(hex, 16).unwrap()
}

/// `--privileged` and `--cap-add ALL` give every capability the host has, even where root
/// lacks some (this VM's root has no CAP_SYS_RESOURCE: asking for it made every privileged
/// start fail with EPERM). A capability named on its own that the host lacks is refused with
/// a message that says so.
#[test]
fn privileged_gets_the_hosts_capabilities() {
    assert!(common::is_root("container"));
    let b = Berth::with_busybox();
    let host = host_cap_bounding();
    for rt in common::runtimes() {
        for flags in [&["--privileged"][..], &["--cap-add", "ALL"][..]] {
            let mut args = run_args(rt, &["--rm", "--network", "none"]);
            args.extend_from_slice(flags);
            args.extend_from_slice(&["busybox", "grep", "CapEff", "/proc/self/status"]);
            let (c, out, err) = b.code(&args);
            assert_eq!(c, 0, "{rt} {flags:?}: {err}");
            let eff = u64::from_str_radix(out.trim().trim_start_matches("CapEff:").trim(), 16)
                .unwrap_or_else(|e| panic!("{rt} {flags:?}: {out:?}: {e}"));
            assert_eq!(eff, host, "{rt} {flags:?}: {out}");
        }
    }
    // exec --privileged too, into a container started with the default set.
    for rt in common::runtimes() {
        let id = b.ok(&run_args(
            rt,
            &["-d", "--network", "none", "busybox", "sleep", "100"],
        ));
        let out = b.ok(&[
            "exec",
            "--privileged",
            id.trim(),
            "grep",
            "CapEff",
            "/proc/self/status",
        ]);
        let eff = u64::from_str_radix(out.trim().trim_start_matches("CapEff:").trim(), 16).unwrap();
        assert_eq!(eff, host, "{rt} exec --privileged: {out}");
        b.ok(&["rm", "-f", id.trim()]);
    }
    if host & (1 << 24) == 0 {
        let (c, _, err) = b.code(&[
            "run",
            "--rm",
            "--cap-add",
            "SYS_RESOURCE",
            "busybox",
            "true",
        ]);
        assert_eq!(c, 125, "{err}");
        assert!(
            err.contains("CAP_SYS_RESOURCE") && err.contains("bounding set"),
            "{err}"
        );
    }
}

/// A host reboot, simulated: every process and mount of the container gone and the run root
/// (a tmpfs under /run) empty. The container shows as exited, starts again (its rootfs
/// remounted, its network set up anew) and is removed without leftovers.
#[test]
fn after_a_reboot_running_containers_show_as_exited_and_start_again() {
    assert!(common::is_root("container"));
    let b = Berth::with_busybox();
    for network in ["none", "bridge"] {
        let name = format!("boot-{network}");
        let id = b.ok(&[
            "run",
            "-d",
            "--name",
            &name,
            "--network",
            network,
            "busybox",
            "sleep",
            "1000",
        ]);
        let id = id.trim();
        let dir = b.root().join("containers").join(id);
        let monitor = std::fs::read_to_string(dir.join("monitor.pid")).unwrap();
        let init = inspect(&b, &name, "{{.State.Pid}}");
        for pid in [monitor.split_whitespace().next().unwrap(), init.as_str()] {
            Command::new("kill").args(["-9", pid]).status().unwrap();
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::path::Path::new(&format!("/proc/{init}")).exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        // What a reboot takes away: the mounts (rootfs, persistent netns) and the run root.
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        let ours: Vec<&str> = mounts
            .lines()
            .filter_map(|l| l.split(' ').nth(4))
            .filter(|m| {
                m.starts_with(b.root().to_str().unwrap())
                    || m.starts_with(b.runroot().to_str().unwrap())
            })
            .collect();
        for m in ours.iter().rev() {
            Command::new("umount").args(["-l", m]).status().unwrap();
        }
        for e in std::fs::read_dir(b.runroot()).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                std::fs::remove_dir_all(&p).unwrap();
            } else {
                std::fs::remove_file(&p).unwrap();
            }
        }
        assert_eq!(
            inspect(&b, &name, "{{.State.Status}} {{.State.Running}}"),
            "exited false"
        );
        let ps = b.ok(&["ps", "-a", "--format", "{{.Names}} {{.Status}}"]);
        assert!(ps.contains(&format!("{name} Exited (255)")), "{ps}");
        b.ok(&["start", &name]);
        assert_eq!(b.ok(&["exec", &name, "echo", "back"]), "back\n");
        b.ok(&["rm", "-f", &name]);
    }
    assert!(no_leftovers(&b), "leftovers after the reboot");
}

#[test]
fn arguments_after_the_image_belong_to_the_container() {
    assert!(common::is_root("container"));
    let b = Berth::with_busybox();
    // Options after IMAGE (and `--`) go to the container, as in Docker.
    assert_eq!(
        b.ok(&["run", "--rm", "busybox", "echo", "-p", "8000", "-e", "X=1", "--name", "foo"]),
        "-p 8000 -e X=1 --name foo\n"
    );
    assert_eq!(
        b.ok(&[
            "run",
            "--rm",
            "--entrypoint",
            "echo",
            "busybox",
            "-d",
            "-l",
            "x",
            "--",
            "--help"
        ]),
        "-d -l x -- --help\n"
    );
    // The first operand ends berth's options even when it starts the command.
    let (code, _, err) = b.code(&["run", "--rm", "busybox", "--", "echo", "x"]);
    assert_eq!(code, 127, "{err}");
    assert!(err.contains("\"--\""), "{err}");
    // Nothing was published and no container took the name.
    assert_eq!(b.ok(&["ps", "-aq", "--filter", "name=foo"]), "");
    // create and exec the same.
    b.ok(&[
        "create",
        "--name",
        "c1",
        "--entrypoint",
        "echo",
        "busybox",
        "-e",
        "Y=2",
    ]);
    assert_eq!(inspect(&b, "c1", "{{json .Args}}"), r#"["-e","Y=2"]"#);
    b.ok(&["run", "-d", "--name", "w1", "busybox", "sleep", "60"]);
    assert_eq!(
        b.ok(&[
            "exec",
            "w1",
            "sh",
            "-c",
            "echo \"$*\"",
            "sh",
            "-e",
            "-u",
            "1",
            "-w",
            "/x"
        ]),
        "-e -u 1 -w /x\n"
    );
    b.ok(&["rm", "-f", "w1", "c1"]);
}

#[test]
fn closed_stdout_ends_quietly() {
    use std::os::unix::process::ExitStatusExt;
    let b = Berth::with_busybox();
    // A pipe whose reader is already gone: every write fails with EPIPE.
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = b
        .command()
        .args(["images"])
        .stdout(writer)
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.is_empty(), "{err}");
    assert_eq!(out.status.signal(), Some(libc::SIGPIPE), "{:?}", out.status);
}

/// Creates `n` containers (`create`, four at a time) named `{prefix}{i}`; their names.
fn create_many(b: &Berth, prefix: &str, n: usize, extra: &[&str]) -> Vec<String> {
    let names: Vec<String> = (0..n).map(|i| format!("{prefix}{i}")).collect();
    for group in names.chunks(4) {
        let children: Vec<_> = group
            .iter()
            .map(|name| {
                let mut args = vec!["create", "--name", name.as_str()];
                args.extend_from_slice(extra);
                args.extend_from_slice(&["busybox", "true"]);
                b.command()
                    .args(&args)
                    .stdout(Stdio::null())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for ch in children {
            let out = ch.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
    names
}

/// A multi-name `rm` (batched and torn down in parallel) reports each container as the docker
/// CLI does: every removed name on stdout in order, every failure on stderr, exit 1 if any
/// failed; and more containers than one batch holds are all removed.
#[test]
fn rm_of_many_reports_each_container() {
    assert!(common::is_root("container"));
    let b = Berth::with_busybox();
    // More than one batch (128), some on the default bridge network.
    let mut names = create_many(&b, "c", 140, &["--network", "none"]);
    names.extend(create_many(&b, "n", 4, &[]));
    // Running, one on the bridge network.
    b.ok(&["run", "-d", "--name", "up", "busybox", "sleep", "100"]);
    b.ok(&[
        "run",
        "-d",
        "--name",
        "up2",
        "--network",
        "none",
        "busybox",
        "sleep",
        "100",
    ]);

    // Without -f: the running ones and a missing name fail, a repeated name fails the second
    // time, everything else goes.
    let mut args: Vec<&str> = vec!["rm", "c0", "up", "nope"];
    args.extend(names.iter().skip(1).map(String::as_str));
    args.extend(["up2", "c0"]);
    let (code, out, err) = b.code(&args);
    assert_eq!(code, 1, "stdout: {out}\nstderr: {err}");
    let mut removed: Vec<&str> = vec!["c0"];
    removed.extend(names.iter().skip(1).map(String::as_str));
    assert_eq!(out.lines().collect::<Vec<_>>(), removed);
    let errors: Vec<&str> = err.lines().collect();
    assert_eq!(errors.len(), 4, "{err}");
    assert!(
        errors[0].contains("You cannot remove a running container"),
        "{err}"
    );
    assert!(errors[1].contains("No such container: nope"), "{err}");
    assert!(
        errors[2].contains("You cannot remove a running container"),
        "{err}"
    );
    assert!(errors[3].contains("No such container: c0"), "{err}");
    let left = b.ok(&["ps", "-a", "--format", "{{.Names}}"]);
    let mut left: Vec<&str> = left.lines().collect();
    left.sort();
    assert_eq!(left, ["up", "up2"]);

    // -f takes the running ones, their network included.
    assert_eq!(b.ok(&["rm", "-f", "up", "up2"]), "up\nup2\n");
    assert_eq!(b.ok(&["ps", "-a", "-q"]), "");
    assert!(no_leftovers(&b));
}

/// A multi-name `rm -f` killed half-way leaves every container either whole (listed, with its
/// directory) or gone; the next command finishes the ones it had marked.
#[test]
fn killed_rm_of_many_leaves_whole_containers() {
    assert!(common::is_root("container"));
    let b = Berth::with_busybox();
    let names = create_many(&b, "k", 60, &["--network", "none"]);
    for delay_ms in [30u64, 120] {
        let mut args = vec!["rm", "-f"];
        args.extend(names.iter().map(String::as_str));
        let mut ch = b
            .command()
            .args(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        let _ = ch.kill();
        let _ = ch.wait();
        // `ps` finishes what the killed `rm` marked; every container it lists is whole.
        for id in b.ok(&["ps", "-a", "-q", "--no-trunc"]).lines() {
            let dir = b.root().join("containers").join(id);
            assert!(
                dir.join("container.json").exists(),
                "{id} lost its directory"
            );
        }
    }
    let ids = b.ok(&["ps", "-a", "-q", "--no-trunc"]);
    let mut args = vec!["rm", "-f"];
    args.extend(ids.lines());
    if args.len() > 2 {
        b.ok(&args);
    }
    assert_eq!(b.ok(&["ps", "-a", "-q"]), "");
    assert!(no_leftovers(&b));
}
