//! End-to-end container tests: a busybox rootfs run through the built-in runtime and through
//! runc and crun. They need root; without it they print a loud message and pass.

use berth_runtime::*;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const STATE_ROOT: &str = "/run/berth-test/rt";

fn is_root() -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    panic!(
        "the berth-runtime container tests must run as root (scripts/test.sh runs them as root)"
    );
}

/// A busybox layer: bin/busybox plus one symlink per applet, a passwd and group file.
fn busybox_layer() -> &'static Path {
    static LAYER: OnceLock<PathBuf> = OnceLock::new();
    LAYER.get_or_init(|| {
        let done = std::env::temp_dir().join("berth-rt-busybox-layer");
        if done.join("bin/busybox").exists() {
            return done;
        }
        let dir = std::env::temp_dir().join(format!("berth-rt-busybox-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        for d in [
            "bin",
            "etc",
            "tmp",
            "root",
            "home/user",
            "proc",
            "sys",
            "dev",
        ] {
            std::fs::create_dir_all(dir.join(d)).unwrap();
        }
        std::fs::copy("/bin/busybox", dir.join("bin/busybox")).expect("busybox-static installed");
        let list = std::process::Command::new("/bin/busybox")
            .arg("--list")
            .output()
            .unwrap();
        for applet in String::from_utf8_lossy(&list.stdout).lines() {
            if applet != "busybox" {
                let _ = std::os::unix::fs::symlink("busybox", dir.join("bin").join(applet));
            }
        }
        std::fs::write(
            dir.join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000:user:/home/user:/bin/sh\n",
        )
        .unwrap();
        std::fs::write(
            dir.join("etc/group"),
            "root:x:0:\nuser:x:1000:\nextra:x:2000:user\n",
        )
        .unwrap();
        std::fs::write(dir.join("etc/notexec"), "data\n").unwrap();
        std::fs::set_permissions(
            dir.join("tmp"),
            std::os::unix::fs::PermissionsExt::from_mode(0o1777),
        )
        .unwrap();
        dir
    })
}

fn runtimes() -> Vec<RuntimeKind> {
    let mut v = vec![RuntimeKind::Builtin];
    for rt in ["runc", "crun"] {
        for dir in ["/usr/sbin", "/usr/bin", "/usr/local/bin", "/usr/local/sbin"] {
            let p = Path::new(dir).join(rt);
            if p.exists() {
                v.push(RuntimeKind::External(p));
                break;
            }
        }
    }
    let hybrid = cgroup::hybrid_v2_controllers();
    if !hybrid.is_empty() {
        eprintln!(
            "!!! crun runs SKIPPED: this hybrid cgroup host has controllers {hybrid:?} on the v2 side, \
             which crun refuses (\"cgroups in hybrid mode not supported\"); builtin and runc still run"
        );
        v.retain(|k| !matches!(k, RuntimeKind::External(p) if p.ends_with("crun")));
    }
    for rt in ["runc", "crun"] {
        let present = v
            .iter()
            .any(|k| matches!(k, RuntimeKind::External(p) if p.ends_with(rt)));
        // A missing runtime fails the run unless BERTH_TEST_RUNTIMES leaves it out on purpose.
        let narrowed = std::env::var("BERTH_TEST_RUNTIMES").is_ok();
        assert!(
            present || narrowed || (rt == "crun" && !hybrid.is_empty()),
            "{rt} is not installed (scripts/setup.sh installs it)"
        );
    }
    // BERTH_TEST_RUNTIMES=builtin,runc narrows the set while developing.
    if let Ok(only) = std::env::var("BERTH_TEST_RUNTIMES") {
        v.retain(|k| {
            let name = match k {
                RuntimeKind::Builtin => "builtin".to_string(),
                RuntimeKind::External(p) => p.file_name().unwrap().to_string_lossy().to_string(),
            };
            only.split(',').any(|o| o == name)
        });
    }
    v
}

fn start_opts(rt: &RuntimeKind) -> StartOptions {
    StartOptions {
        runtime: rt.clone(),
        monitor_path: Some(PathBuf::from(env!("CARGO_BIN_EXE_berth-monitor"))),
        state_root: PathBuf::from(STATE_ROOT),
        attach: None,
    }
}

fn new_id() -> String {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    format!(
        "t{}x{}",
        std::process::id(),
        N.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
    )
}

struct Ctr {
    dir: tempfile::TempDir,
    rt: RuntimeKind,
}

impl Ctr {
    fn path(&self) -> &Path {
        self.dir.path()
    }
    fn log(&self) -> String {
        std::fs::read_to_string(log_path(self.path())).unwrap_or_default()
    }
    /// The `log` fields of the json-file log, concatenated per stream.
    fn output(&self, stream: &str) -> String {
        self.log()
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| v["stream"] == stream)
            .map(|v| v["log"].as_str().unwrap().to_string())
            .collect()
    }
}

impl Drop for Ctr {
    fn drop(&mut self) {
        if let Err(e) = cleanup(self.dir.path()) {
            eprintln!("cleanup failed: {e}");
        }
    }
}

fn create(rt: &RuntimeKind, cmd: &[&str], f: impl FnOnce(&mut RunOptions)) -> Result<Ctr> {
    let dir = tempfile::Builder::new()
        .prefix("berth-rt-")
        .tempdir()
        .unwrap();
    let mut opts = RunOptions {
        cmd: cmd.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    };
    f(&mut opts);
    let ctr = Ctr {
        dir,
        rt: rt.clone(),
    };
    prepare_bundle(
        &new_id(),
        ctr.path(),
        &[busybox_layer().to_path_buf()],
        &ImageRuntimeConfig::default(),
        &opts,
    )?;
    Ok(ctr)
}

fn run(rt: &RuntimeKind, cmd: &[&str], f: impl FnOnce(&mut RunOptions)) -> (ExitStatus, Ctr) {
    let ctr = create(rt, cmd, f).expect("prepare_bundle");
    start(ctr.path(), &start_opts(&ctr.rt)).unwrap_or_else(|e| panic!("{rt:?} start {cmd:?}: {e}"));
    let st = wait(ctr.path(), Some(Duration::from_secs(30))).expect("wait");
    (st, ctr)
}

#[test]
fn exit_codes_true_false() {
    if !is_root() {
        return;
    }
    for rt in runtimes() {
        let (st, _c) = run(&rt, &["true"], |_| {});
        assert_eq!(st.exit_code, 0, "{rt:?}");
        assert!(!st.oom_killed);
        let (st, _c) = run(&rt, &["false"], |_| {});
        assert_eq!(st.exit_code, 1, "{rt:?}");
        let (st, _c) = run(&rt, &["sh", "-c", "exit 42"], |_| {});
        assert_eq!(st.exit_code, 42, "{rt:?}");
        assert!(st.finished_at.ends_with('Z'));
    }
}

#[test]
fn stdout_and_stderr_in_json_log() {
    if !is_root() {
        return;
    }
    for rt in runtimes() {
        let (st, c) = run(
            &rt,
            &["sh", "-c", "echo hello; echo oops >&2; printf partial"],
            |_| {},
        );
        assert_eq!(st.exit_code, 0);
        assert_eq!(
            c.output("stdout"),
            "hello\npartial",
            "{rt:?} log: {}",
            c.log()
        );
        assert_eq!(c.output("stderr"), "oops\n");
        let first: serde_json::Value =
            serde_json::from_str(c.log().lines().next().unwrap()).unwrap();
        let t = first["time"].as_str().unwrap();
        assert!(t.len() == 30 && t.ends_with('Z'), "time {t}");
    }
}

#[test]
fn env_workdir_user() {
    if !is_root() {
        return;
    }
    for rt in runtimes() {
        let (st, c) = run(
            &rt,
            &[
                "sh",
                "-c",
                "echo $FOO $HOSTNAME; pwd; id -u; id -g; id -G; echo $HOME",
            ],
            |o| {
                o.env = vec!["FOO=bar".into()];
                o.workdir = Some("/made/here".into());
                o.user = Some("user".into());
                o.hostname = Some("boxname".into());
            },
        );
        assert_eq!(st.exit_code, 0, "{}", c.log());
        assert_eq!(
            c.output("stdout"),
            "bar boxname\n/made/here\n1000\n1000\n1000 2000\n/home/user\n",
            "{rt:?}"
        );
    }
}

#[test]
fn capabilities_and_seccomp_apply() {
    if !is_root() {
        return;
    }
    for rt in runtimes() {
        let (_, c) = run(&rt, &["sh", "-c", "grep CapEff /proc/self/status; mount -t tmpfs x /mnt 2>&1 >/dev/null || echo mountfail; cat /proc/kcore 2>&1 | head -c 0 ; echo ok"], |_| {});
        let out = c.output("stdout");
        // Docker's default set is 0xa80425fb.
        assert!(out.contains("00000000a80425fb"), "{rt:?}: {out}");
        assert!(out.contains("mountfail"), "{rt:?}: {out}");
        let (_, c) = run(&rt, &["sh", "-c", "grep CapEff /proc/self/status"], |o| {
            o.user = Some("1000".into())
        });
        assert!(
            c.output("stdout").contains("0000000000000000"),
            "{rt:?}: {}",
            c.log()
        );
    }
}

#[test]
fn oom_kill_reported_as_137() {
    if !is_root() {
        return;
    }
    for rt in runtimes() {
        // tail keeps /dev/zero (no newlines) in memory until the limit kills it.
        let (st, c) = run(&rt, &["tail", "/dev/zero"], |o| {
            o.memory = Some(16 << 20);
            o.memory_swap = Some(16 << 20);
        });
        assert_eq!(st.exit_code, 137, "{rt:?} {st:?} {}", c.log());
        assert!(st.oom_killed, "{rt:?} {st:?}");
        assert_eq!(st.signal, Some(9));
    }
}

#[test]
fn pids_limit() {
    if !is_root() {
        return;
    }
    for rt in runtimes() {
        let (st, c) = run(
            &rt,
            &[
                "sh",
                "-c",
                "i=0; while [ $i -lt 30 ]; do sleep 5 & i=$((i+1)); done; echo spawned",
            ],
            |o| {
                o.pids_limit = Some(10);
            },
        );
        let err = c.output("stderr");
        assert!(
            err.contains("fork") || err.contains("Resource temporarily unavailable"),
            "{rt:?} {st:?} {}",
            c.log()
        );
    }
}

#[test]
fn read_only_rootfs_with_tmpfs() {
    if !is_root() {
        return;
    }
    for rt in runtimes() {
        let (st, c) = run(&rt, &["sh", "-c", "touch /x 2>/dev/null && echo rw || echo ro; touch /scratch/y && echo tmpfs-ok; grep /scratch /proc/mounts | cut -d' ' -f3"], |o| {
            o.read_only = true;
            o.mounts = vec![MountSpec::Tmpfs { target: "/scratch".into(), size: Some(1 << 20), mode: None, options: vec![] }];
        });
        assert_eq!(st.exit_code, 0);
        assert_eq!(
            c.output("stdout"),
            "ro\ntmpfs-ok\ntmpfs\n",
            "{rt:?} {}",
            c.log()
        );
    }
}

#[test]
fn bind_mounts_and_symlinked_targets() {
    if !is_root() {
        return;
    }
    let host = tempfile::tempdir().unwrap();
    std::fs::write(host.path().join("in.txt"), "from-host\n").unwrap();
    for rt in runtimes() {
        let _ = std::fs::remove_file(host.path().join("out.txt"));
        let (st, c) = run(&rt, &["sh", "-c", "cat /data/in.txt; echo written > /data/out.txt; cat /ro/in.txt; echo x > /ro/z 2>/dev/null || echo ro-ok"], |o| {
            o.mounts = vec![
                MountSpec::Bind { source: host.path().to_path_buf(), target: "/data".into(), readonly: false },
                MountSpec::Volume { source: host.path().to_path_buf(), target: "/ro".into(), readonly: true },
            ];
        });
        assert_eq!(st.exit_code, 0, "{}", c.log());
        assert_eq!(
            c.output("stdout"),
            "from-host\nfrom-host\nro-ok\n",
            "{rt:?}"
        );
        assert_eq!(
            std::fs::read_to_string(host.path().join("out.txt")).unwrap(),
            "written\n"
        );
    }
}

#[test]
fn symlink_mount_target_resolved_inside_rootfs() {
    if !is_root() {
        return;
    }
    let layer = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink("/tmp/inside", layer.path().join("evil")).unwrap();
    std::os::unix::fs::symlink("../../../../../../tmp", layer.path().join("evil2")).unwrap();
    let host = tempfile::tempdir().unwrap();
    std::fs::write(host.path().join("f"), "x\n").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let opts = RunOptions {
        cmd: vec![
            "sh".into(),
            "-c".into(),
            "cat /tmp/inside/f /tmp/in2/f".into(),
        ],
        mounts: vec![
            MountSpec::Bind {
                source: host.path().to_path_buf(),
                target: "/evil".into(),
                readonly: true,
            },
            MountSpec::Bind {
                source: host.path().to_path_buf(),
                target: "/evil2/in2".into(),
                readonly: true,
            },
        ],
        ..Default::default()
    };
    let layers = [busybox_layer().to_path_buf(), layer.path().to_path_buf()];
    let spec = prepare_bundle(
        &new_id(),
        dir.path(),
        &layers,
        &ImageRuntimeConfig::default(),
        &opts,
    )
    .unwrap();
    let dests: Vec<String> = spec
        .mounts()
        .as_ref()
        .unwrap()
        .iter()
        .map(|m| m.destination().display().to_string())
        .collect();
    assert!(
        dests.contains(&"/tmp/inside".to_string()) && dests.contains(&"/tmp/in2".to_string()),
        "{dests:?}"
    );
    assert!(!Path::new("/tmp/inside").exists() && !Path::new("/tmp/in2").exists());
    start(dir.path(), &start_opts(&RuntimeKind::Builtin)).unwrap();
    let st = wait(dir.path(), Some(Duration::from_secs(20))).unwrap();
    assert_eq!(st.exit_code, 0);
    cleanup(dir.path()).unwrap();
}

#[test]
fn no_host_fd_leaks_and_proc_workdir_rejected() {
    if !is_root() {
        return;
    }
    for n in [3, 4, 5, 6, 7, 8] {
        let err = create(&RuntimeKind::Builtin, &["true"], |o| {
            o.workdir = Some(format!("/proc/self/fd/{n}"))
        });
        assert!(err.is_err(), "workdir /proc/self/fd/{n} accepted");
    }
    for rt in runtimes() {
        let (st, c) = run(
            &rt,
            &["sh", "-c", "cd /proc/self/fd && ls; ls /proc/1/fd"],
            |_| {},
        );
        assert_eq!(st.exit_code, 0, "{}", c.log());
        let out = c.output("stdout");
        let fds: Vec<&str> = out.split_whitespace().collect();
        for fd in fds {
            assert!(
                ["0", "1", "2", "3", "255", "10"].contains(&fd),
                "{rt:?}: unexpected fd {fd} in {out:?}"
            );
        }
    }
}

#[test]
fn start_errors_map_to_127_and_126() {
    if !is_root() {
        return;
    }
    for rt in runtimes() {
        let c = create(&rt, &["nosuchcmd"], |_| {}).unwrap();
        let e = start(c.path(), &start_opts(&rt)).unwrap_err();
        assert_eq!(e.exit_code(), 127, "{e}");
        assert_eq!(
            e.to_string(),
            "exec: \"nosuchcmd\": executable file not found in $PATH"
        );
        match state(c.path()).unwrap() {
            ContainerState::Exited(st) => assert_eq!(st.exit_code, 127),
            s => panic!("{s:?}"),
        }
        let c = create(&rt, &["/etc/notexec"], |_| {}).unwrap();
        let e = start(c.path(), &start_opts(&rt)).unwrap_err();
        assert_eq!(e.exit_code(), 126, "{e}");
        let c = create(&rt, &["/no/such"], |_| {}).unwrap();
        assert_eq!(
            start(c.path(), &start_opts(&rt)).unwrap_err().exit_code(),
            127
        );
    }
}

#[test]
fn exec_into_running_container() {
    if !is_root() {
        return;
    }
    for rt in runtimes() {
        let c = create(&rt, &["sleep", "30"], |o| o.env = vec!["IN=ctr".into()]).unwrap();
        let started = start(c.path(), &start_opts(&rt)).unwrap();
        assert!(started.pid > 0);
        std::thread::sleep(Duration::from_millis(50));
        let status = std::fs::read_to_string(format!("/proc/{}/status", started.monitor_pid))
            .unwrap_or_default();
        let rss: Vec<&str> = status
            .lines()
            .filter(|l| l.starts_with("VmRSS") || l.starts_with("Rss"))
            .collect();
        eprintln!("BENCH monitor memory {rt:?}: {rss:?}");
        let monitor = PathBuf::from(env!("CARGO_BIN_EXE_berth-monitor"));
        let opts = ExecOptions {
            args: vec![
                "sh".into(),
                "-c".into(),
                "echo $IN $X; cat /proc/1/cmdline; grep CapEff /proc/self/status; exit 3".into(),
            ],
            env: vec!["X=y".into()],
            ..Default::default()
        };
        let t = Instant::now();
        let out = exec(c.path(), &opts, Some(&monitor))
            .unwrap()
            .output()
            .unwrap();
        let took = t.elapsed();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            out.status.code(),
            Some(3),
            "{rt:?} {stdout} {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            stdout.starts_with("ctr y\nsleep\u{0}30\u{0}"),
            "{rt:?}: {stdout:?}"
        );
        assert!(stdout.contains("00000000a80425fb"), "{rt:?}: {stdout:?}");
        eprintln!("BENCH exec {rt:?}: {took:?}");
        // Exec as another user in another directory.
        let opts = ExecOptions {
            args: vec!["sh".into(), "-c".into(), "id -u; pwd".into()],
            user: Some("user".into()),
            workdir: Some("/tmp".into()),
            ..Default::default()
        };
        let out = exec(c.path(), &opts, Some(&monitor))
            .unwrap()
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "1000\n/tmp\n",
            "{rt:?}"
        );
        // With a pty.
        let opts = ExecOptions {
            args: vec!["sh".into(), "-c".into(), "tty; echo $TERM".into()],
            tty: true,
            env: vec!["TERM=xterm".into()],
            ..Default::default()
        };
        let out = exec(c.path(), &opts, Some(&monitor))
            .unwrap()
            .stdin(std::process::Stdio::piped())
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("/dev/pts/") && text.contains("xterm"),
            "{rt:?}: {text:?} {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // Not found.
        let opts = ExecOptions {
            args: vec!["nope".into()],
            ..Default::default()
        };
        assert_eq!(
            exec(c.path(), &opts, Some(&monitor))
                .unwrap_err()
                .exit_code(),
            127,
            "{rt:?}"
        );
        kill(c.path(), libc::SIGKILL).unwrap();
        let st = wait(c.path(), Some(Duration::from_secs(10))).unwrap();
        assert_eq!(st.exit_code, 137);
    }
}

#[test]
fn kill_and_stop() {
    if !is_root() {
        return;
    }
    for rt in runtimes() {
        // A trap handler: SIGTERM ends it with its own code.
        let c = create(
            &rt,
            &[
                "sh",
                "-c",
                "trap 'exit 42' TERM; while true; do sleep 0.05; done",
            ],
            |_| {},
        )
        .unwrap();
        start(c.path(), &start_opts(&rt)).unwrap();
        std::thread::sleep(Duration::from_millis(100));
        let st = stop(c.path(), None, Some(Duration::from_secs(5))).unwrap();
        assert_eq!(st.exit_code, 42, "{rt:?}");
        // pid 1 without a handler ignores SIGTERM: stop falls back to SIGKILL.
        let c = create(&rt, &["sleep", "100"], |_| {}).unwrap();
        start(c.path(), &start_opts(&rt)).unwrap();
        let t = Instant::now();
        let st = stop(
            c.path(),
            Some(libc::SIGTERM),
            Some(Duration::from_millis(300)),
        )
        .unwrap();
        assert_eq!(st.exit_code, 137, "{rt:?}");
        assert!(t.elapsed() < Duration::from_secs(5));
        assert!(matches!(kill(c.path(), 9), Err(Error::NotRunning)));
    }
}

#[test]
fn pause_and_unpause() {
    if !is_root() {
        return;
    }
    let rt = RuntimeKind::Builtin;
    let c = create(
        &rt,
        &["sh", "-c", "while true; do echo tick; sleep 0.02; done"],
        |_| {},
    )
    .unwrap();
    start(c.path(), &start_opts(&rt)).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    pause(c.path()).unwrap();
    assert!(matches!(
        state(c.path()).unwrap(),
        ContainerState::Running { paused: true, .. }
    ));
    std::thread::sleep(Duration::from_millis(50));
    let n1 = c.output("stdout").len();
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(c.output("stdout").len(), n1, "output while paused");
    unpause(c.path()).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    assert!(c.output("stdout").len() > n1);
    kill(c.path(), 9).unwrap();
    wait(c.path(), Some(Duration::from_secs(5))).unwrap();
}

#[test]
fn monitor_death_is_reported_honestly() {
    if !is_root() {
        return;
    }
    let rt = RuntimeKind::Builtin;
    let c = create(&rt, &["sleep", "100"], |_| {}).unwrap();
    let s = start(c.path(), &start_opts(&rt)).unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(s.monitor_pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(100));
    match state(c.path()).unwrap() {
        ContainerState::MonitorDied(st) => assert_eq!(st.exit_code, 255),
        other => panic!("{other:?}"),
    }
    std::thread::sleep(Duration::from_millis(100));
    assert!(
        !Path::new(&format!("/proc/{}", s.pid)).exists()
            || std::fs::read_to_string(format!("/proc/{}/stat", s.pid))
                .map(|x| x.contains(") Z"))
                .unwrap_or(true)
    );
    assert!(matches!(
        state(c.path()).unwrap(),
        ContainerState::Exited(_)
    ));
}

#[test]
fn attach_stdin_and_output() {
    if !is_root() {
        return;
    }
    for rt in runtimes() {
        let c = create(
            &rt,
            &["sh", "-c", "read x; echo got $x; echo err >&2"],
            |o| o.stdin_open = true,
        )
        .unwrap();
        start(c.path(), &start_opts(&rt)).unwrap();
        let mut a = attach::AttachClient::connect(c.path()).unwrap();
        a.send_stdin(b"hello\n").unwrap();
        let mut out = String::new();
        while let Some((kind, data)) = a.next_output().unwrap() {
            out.push_str(&format!("{kind}:{}", String::from_utf8_lossy(&data)));
        }
        assert!(
            out.contains("1:got hello\n") && out.contains("2:err\n"),
            "{rt:?}: {out:?}"
        );
        assert_eq!(
            wait(c.path(), Some(Duration::from_secs(5)))
                .unwrap()
                .exit_code,
            0
        );
    }
}

#[test]
fn tty_containers() {
    if !is_root() {
        return;
    }
    for rt in runtimes() {
        let c = create(
            &rt,
            &["sh", "-c", "read x; tty; echo $TERM $x; stty size"],
            |o| {
                o.tty = true;
                o.stdin_open = true;
            },
        )
        .unwrap();
        start(c.path(), &start_opts(&rt)).unwrap();
        let mut a = attach::AttachClient::connect(c.path()).unwrap();
        a.resize(33, 99).unwrap();
        std::thread::sleep(Duration::from_millis(50));
        a.send_stdin(b"hi\n").unwrap();
        let st = wait(c.path(), Some(Duration::from_secs(10))).unwrap();
        let out = c.output("stdout");
        assert_eq!(st.exit_code, 0, "{rt:?} {out}");
        assert!(
            out.contains("/dev/pts/0\r\n") && out.contains("xterm hi\r\n") && out.contains("33 99"),
            "{rt:?}: {out:?}"
        );
    }
}

#[test]
fn overlay_with_60_long_layers() {
    if !is_root() {
        return;
    }
    let base = tempfile::tempdir().unwrap();
    let mut layers = vec![busybox_layer().to_path_buf()];
    for i in 0..60 {
        let l = base.path().join(format!("{:0>64}/{}", i, "x".repeat(40)));
        std::fs::create_dir_all(&l).unwrap();
        std::fs::write(l.join(format!("f{i}")), format!("{i}")).unwrap();
        std::fs::write(l.join("top"), format!("{i}")).unwrap();
        layers.push(l);
    }
    let total: usize = layers.iter().map(|l| l.as_os_str().len() + 1).sum();
    assert!(total > 4096, "layer paths must exceed a page ({total})");
    let dir = tempfile::tempdir().unwrap();
    let opts = RunOptions {
        cmd: vec![
            "sh".into(),
            "-c".into(),
            "cat /top; ls / | grep -c '^f'".into(),
        ],
        ..Default::default()
    };
    prepare_bundle(
        &new_id(),
        dir.path(),
        &layers,
        &ImageRuntimeConfig::default(),
        &opts,
    )
    .unwrap();
    assert_eq!(
        std::fs::read_to_string(dir.path().join("rootfs/top")).unwrap(),
        "59"
    );
    assert!(
        dir.path().join("rootfs/f0").exists() && dir.path().join("rootfs/bin/busybox").exists()
    );
    start(dir.path(), &start_opts(&RuntimeKind::Builtin)).unwrap();
    wait(dir.path(), Some(Duration::from_secs(10))).unwrap();
    let log = std::fs::read_to_string(log_path(dir.path())).unwrap();
    assert!(log.contains("\"59\"") || log.contains("59"), "{log}");
    cleanup(dir.path()).unwrap();
    cleanup(dir.path()).unwrap();
    assert!(!rootfs::is_mounted(&dir.path().join("rootfs")));
}

#[test]
fn bench_start_wait_true() {
    if !is_root() {
        return;
    }
    for rt in runtimes() {
        let mut times = Vec::new();
        for _ in 0..5 {
            let c = create(&rt, &["true"], |_| {}).unwrap();
            let t = Instant::now();
            start(c.path(), &start_opts(&rt)).unwrap();
            let st = wait(c.path(), Some(Duration::from_secs(10))).unwrap();
            times.push(t.elapsed());
            assert_eq!(st.exit_code, 0);
            if std::env::var_os("BERTH_MONITOR_TRACE").is_some() {
                std::thread::sleep(Duration::from_millis(200));
                eprintln!(
                    "{}",
                    std::fs::read_to_string(c.path().join("monitor.log")).unwrap_or_default()
                );
            }
            let t = Instant::now();
            drop(c);
            times.push(Duration::ZERO);
            eprintln!("BENCH cleanup {rt:?}: {:?}", t.elapsed());
        }
        let mut starts: Vec<Duration> = times.into_iter().filter(|d| !d.is_zero()).collect();
        starts.sort();
        eprintln!(
            "BENCH start+wait `true` {rt:?}: min {:?} median {:?} max {:?}",
            starts[0],
            starts[starts.len() / 2],
            starts[starts.len() - 1]
        );
    }
}

/// The process that stays with a running container is the small relay binary (same pid as the
/// monitor, none of the runtime's code mapped), and it still does the monitor's whole job:
/// output into the log, the exit status, the runtime's state and the cgroup removed.
#[test]
fn relay_takes_over_from_the_monitor() {
    if !is_root() {
        return;
    }
    for rt in runtimes() {
        let c = create(&rt, &["sh", "-c", "echo up; exec sleep 100"], |_| {}).unwrap();
        let s = start(c.path(), &start_opts(&rt)).unwrap();
        let info = bundle_info(c.path()).unwrap();
        // The monitor reports the start, then execs the relay.
        let deadline = Instant::now() + Duration::from_secs(20);
        let exe = loop {
            let exe = std::fs::read_link(format!("/proc/{}/exe", s.monitor_pid)).unwrap();
            if exe.ends_with("berth-relay") || Instant::now() > deadline {
                break exe;
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        assert!(exe.ends_with("berth-relay"), "{rt:?}: monitor runs {exe:?}");
        let maps = std::fs::read_to_string(format!("/proc/{}/maps", s.monitor_pid)).unwrap();
        assert!(!maps.contains("berth-monitor"), "{rt:?}: {maps}");
        assert!(!maps.contains("libseccomp"), "{rt:?}: {maps}");
        kill(c.path(), 9).unwrap();
        let st = wait(c.path(), Some(Duration::from_secs(30))).unwrap();
        assert_eq!((st.exit_code, st.signal), (137, Some(9)), "{rt:?}");
        assert_eq!(c.output("stdout"), "up\n", "{rt:?}");
        if rt == RuntimeKind::Builtin {
            assert!(!Path::new(STATE_ROOT).join(&info.id).exists());
        }
        let cgroup = cgroup::CgroupMode::detect().dir("memory", &info.cgroup);
        assert!(!cgroup.exists(), "{rt:?}: {cgroup:?} left");
    }
}

/// Without a `berth-relay` beside the monitor's binary (a single binary installed alone), the
/// monitor relays itself.
#[test]
fn monitor_relays_itself_without_a_relay_binary() {
    if !is_root() {
        return;
    }
    let bin = tempfile::tempdir().unwrap();
    let monitor = bin.path().join("berth-monitor");
    std::fs::copy(env!("CARGO_BIN_EXE_berth-monitor"), &monitor).unwrap();
    let rt = RuntimeKind::Builtin;
    let c = create(&rt, &["sh", "-c", "echo up; read x; exit 3"], |o| {
        o.stdin_open = true
    })
    .unwrap();
    let opts = StartOptions {
        monitor_path: Some(monitor.clone()),
        ..start_opts(&rt)
    };
    let s = start(c.path(), &opts).unwrap();
    let exe = std::fs::read_link(format!("/proc/{}/exe", s.monitor_pid)).unwrap();
    assert_eq!(exe, monitor);
    // Closing stdin through an attach client ends `read`.
    let mut a = std::os::unix::net::UnixStream::connect(attach_socket_path(c.path())).unwrap();
    std::io::Write::write_all(&mut a, &attach::frame(attach::STDIN_CLOSE, &[])).unwrap();
    let st = wait(c.path(), Some(Duration::from_secs(30))).unwrap();
    assert_eq!(st.exit_code, 3);
    assert_eq!(c.output("stdout"), "up\n");
}

/// A `poststop` hook (a CDI device's, say) still runs: the relay hands the delete to the
/// monitor binary, which runs it through libcontainer.
#[test]
fn poststop_hooks_run_after_the_exit() {
    if !is_root() {
        return;
    }
    let rt = RuntimeKind::Builtin;
    let marker = tempfile::tempdir().unwrap();
    let file = marker.path().join("poststop-ran");
    let c = create(&rt, &["true"], |o| {
        o.device_edits.hooks.push(DeviceHook {
            hook_name: "poststop".into(),
            path: "/bin/sh".into(),
            args: vec![
                "sh".into(),
                "-c".into(),
                format!("touch {}", file.display()),
            ],
            env: vec![],
            timeout: None,
        })
    })
    .unwrap();
    let info = bundle_info(c.path()).unwrap();
    start(c.path(), &start_opts(&rt)).unwrap();
    let st = wait(c.path(), Some(Duration::from_secs(30))).unwrap();
    assert_eq!(st.exit_code, 0);
    assert!(file.exists(), "the poststop hook did not run");
    assert!(!Path::new(STATE_ROOT).join(&info.id).exists());
}
