//! `--restart` policies and `--rm` for detached containers, applied by the exit hook the
//! container's monitor runs when init exits (no later command is needed).

mod common;

use common::Berth;
use std::time::{Duration, Instant};

fn is_root() -> bool {
    if unsafe { libc_geteuid() } == 0 {
        return true;
    }
    eprintln!("\n!!!!!!!!!! berth restart tests SKIPPED: they must run as root !!!!!!!!!!\n");
    false
}

extern "C" {
    #[link_name = "geteuid"]
    fn libc_geteuid() -> u32;
}

fn setup() -> Berth {
    let b = Berth::new();
    b.import_busybox("busybox");
    b
}

/// (State.Status, RestartCount)
fn state(b: &Berth, id: &str) -> (String, u32) {
    let out = b.ok(&["inspect", "-f", "{{.State.Status}} {{.RestartCount}}", id]);
    let mut it = out.split_whitespace();
    let status = it.next().unwrap_or_default().to_string();
    let count = it.next().and_then(|c| c.parse().ok()).unwrap_or(u32::MAX);
    (status, count)
}

fn wait_for(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn on_failure_restarts_up_to_the_limit() {
    if !is_root() {
        return;
    }
    let b = setup();
    let id = b
        .ok(&[
            "run",
            "-d",
            "--restart",
            "on-failure:2",
            "busybox",
            "sh",
            "-c",
            "exit 3",
        ])
        .trim()
        .to_string();
    wait_for("two restarts", Duration::from_secs(15), || {
        state(&b, &id) == ("exited".to_string(), 2)
    });
    // No third run.
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(state(&b, &id), ("exited".to_string(), 2));
    let code = b.ok(&["inspect", "-f", "{{.State.ExitCode}}", &id]);
    assert_eq!(code.trim(), "3");
    b.ok(&["rm", &id]);
}

#[test]
fn always_restarts_until_stopped() {
    if !is_root() {
        return;
    }
    let b = setup();
    let id = b
        .ok(&[
            "run",
            "-d",
            "--restart",
            "always",
            "busybox",
            "sh",
            "-c",
            "sleep 0.2; exit 0",
        ])
        .trim()
        .to_string();
    wait_for("a restart", Duration::from_secs(10), || {
        state(&b, &id).1 >= 1
    });
    b.ok(&["stop", "-t", "1", &id]);
    let (status, count) = state(&b, &id);
    assert_eq!(status, "exited");
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(state(&b, &id), ("exited".to_string(), count));
    // A user's start forgets the stop: the policy applies again, counting from zero.
    b.ok(&["start", &id]);
    wait_for("a restart after start", Duration::from_secs(10), || {
        let (_, c) = state(&b, &id);
        c >= 1 && c != u32::MAX
    });
    b.ok(&["rm", "-f", &id]);
}

#[test]
fn detached_rm_container_is_removed_when_it_exits() {
    if !is_root() {
        return;
    }
    let b = setup();
    let id = b
        .ok(&["run", "-d", "--rm", "busybox", "true"])
        .trim()
        .to_string();
    let dir = b.root().join("containers").join(&id);
    // Nothing else touches the store until the directory is gone.
    wait_for("the container's removal", Duration::from_secs(10), || {
        !dir.exists()
    });
    let ps = b.ok(&["ps", "-a", "-q", "--no-trunc"]);
    assert!(!ps.contains(&id), "still listed: {ps}");
}
