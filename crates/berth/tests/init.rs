//! `run --init` / `create --init`: the host's static tini, bind-mounted read-only at
//! `/sbin/docker-init`, runs as the container's pid 1 in front of the command, forwards
//! signals and passes the command's exit code on. Run with the built-in runtime and runc.

mod common;

use common::Berth;
use std::time::{Duration, Instant};

/// Whether the host has an init binary for `--init` (scripts/setup.sh installs tini).
fn have_init() -> bool {
    if let Some(p) = std::env::var_os("BERTH_INIT_PATH") {
        assert!(
            std::path::Path::new(&p).is_file(),
            "BERTH_INIT_PATH={p:?} names no file"
        );
        return true;
    }
    if std::path::Path::new("/usr/bin/tini-static").is_file() {
        return true;
    }
    panic!("/usr/bin/tini-static is missing: scripts/setup.sh installs it (apt-get install tini)");
}

/// `run --runtime RT --init REST...`
fn with_init<'a>(rt: &'a str, rest: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec!["run", "--runtime", rt, "--init"];
    v.extend_from_slice(rest);
    v
}

#[test]
fn init_is_pid_1_forwards_signals_and_passes_the_exit_code() {
    assert!(common::is_root("--init") && have_init());
    let b = Berth::with_busybox();
    for rt in common::runtimes() {
        let run = |rest: &[&'static str]| with_init(rt, rest);
        // pid 1 is the init, with the command behind `--`.
        let cmdline = b.ok(&run(&["--rm", "busybox", "cat", "/proc/1/cmdline"]));
        assert_eq!(
            cmdline, "/sbin/docker-init\0--\0cat\0/proc/1/cmdline\0",
            "{rt}: {cmdline:?}"
        );
        let ps = b.ok(&run(&["--rm", "busybox", "ps", "-o", "pid,comm"]));
        let procs: Vec<(u32, String)> = ps
            .lines()
            .skip(1)
            .filter_map(|l| {
                let mut it = l.split_whitespace();
                Some((it.next()?.parse().ok()?, it.next()?.to_string()))
            })
            .collect();
        assert!(
            procs.contains(&(1, "docker-init".to_string())),
            "{rt}: {ps}"
        );
        assert!(
            procs.iter().any(|(pid, c)| *pid != 1 && c == "ps"),
            "{rt}: {ps}"
        );
        // The init binary is a read-only bind mount.
        let (c, _, err) = b.code(&run(&[
            "--rm",
            "busybox",
            "sh",
            "-c",
            "echo x > /sbin/docker-init",
        ]));
        assert_ne!(c, 0, "{rt}: the init binary is writable: {err}");
        // The command's exit code is the container's.
        let (c, _, err) = b.code(&run(&["--rm", "busybox", "sh", "-c", "exit 3"]));
        assert_eq!(c, 3, "{rt}: {err}");
        // SIGTERM reaches the command through the init: a `sleep` as pid 1 would ignore it
        // and wait for the SIGKILL after the timeout.
        let id = b
            .ok(&run(&["-d", "busybox", "sleep", "1000"]))
            .trim()
            .to_string();
        let t = Instant::now();
        b.ok(&["stop", "-t", "5", &id]);
        let took = t.elapsed();
        assert!(took < Duration::from_secs(3), "{rt}: stop took {took:?}");
        let st = b.ok(&["inspect", "-f", "{{.State.ExitCode}}", &id]);
        assert_eq!(st.trim(), "143", "{rt}");
        b.ok(&["rm", &id]);
    }
}

#[test]
fn inspect_shows_init_and_the_users_command() {
    assert!(common::is_root("--init") && have_init());
    let b = Berth::with_busybox();
    b.ok(&[
        "create", "--init", "--name", "withinit", "busybox", "sleep", "5",
    ]);
    b.ok(&["create", "--name", "noinit", "busybox", "sleep", "5"]);
    let f = "{{.HostConfig.Init}}|{{.Path}}|{{json .Args}}";
    assert_eq!(
        b.ok(&["inspect", "-f", f, "withinit"]).trim(),
        "true|sleep|[\"5\"]"
    );
    // Not given: null, as Docker's `*bool`.
    assert_eq!(
        b.ok(&["inspect", "-f", f, "noinit"]).trim(),
        "<no value>|sleep|[\"5\"]"
    );
    let j = b.ok(&["inspect", "-f", "{{json .HostConfig.Init}}", "noinit"]);
    assert_eq!(j.trim(), "null");
    // A created container starts with its init later.
    b.ok(&["start", "withinit"]);
    let out = b.ok(&["exec", "withinit", "cat", "/proc/1/cmdline"]);
    assert_eq!(out, "/sbin/docker-init\0--\0sleep\x005\0");
    b.ok(&["rm", "-f", "withinit", "noinit"]);
}

#[test]
fn missing_init_binary_fails_create_with_the_fix() {
    assert!(common::is_root("--init"));
    let b = Berth::with_busybox();
    for cmd in ["create", "run"] {
        let out = b
            .command()
            .env("BERTH_INIT_PATH", "/nonexistent/tini-static")
            .args([cmd, "--init", "busybox", "true"])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(125), "{cmd}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{cmd}: {err}");
        assert!(
            err.contains("BERTH_INIT_PATH=/nonexistent/tini-static")
                && err.contains("apt-get install tini"),
            "{cmd}: {err}"
        );
    }
    assert_eq!(b.ok(&["ps", "-a", "-q"]), "");
    // BERTH_INIT_PATH names the binary to use.
    if std::path::Path::new("/usr/bin/tini-static").is_file() {
        let out = b
            .command()
            .env("BERTH_INIT_PATH", "/usr/bin/tini-static")
            .args(["run", "--rm", "--init", "busybox", "cat", "/proc/1/cmdline"])
            .output()
            .unwrap();
        assert!(out.status.success());
        assert!(out.stdout.starts_with(b"/sbin/docker-init\0--\0"));
    }
}
