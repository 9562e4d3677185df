//! `--restart` policies and `--rm` for detached containers, applied by the exit hook the
//! container's monitor runs when init exits (no later command is needed).

mod common;

use common::Berth;
use std::time::{Duration, Instant};

/// (State.Status, RestartCount)
fn state(b: &Berth, id: &str) -> (String, u32) {
    let out = b.ok(&["inspect", "-f", "{{.State.Status}} {{.RestartCount}}", id]);
    let mut it = out.split_whitespace();
    let status = it.next().unwrap_or_default().to_string();
    let count = it.next().and_then(|c| c.parse().ok()).unwrap_or(u32::MAX);
    (status, count)
}

#[test]
fn on_failure_restarts_up_to_the_limit() {
    assert!(common::is_root("restart"));
    let b = Berth::with_busybox();
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
    common::wait_for("two restarts", Duration::from_secs(15), || {
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
    assert!(common::is_root("restart"));
    let b = Berth::with_busybox();
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
    common::wait_for("a restart", Duration::from_secs(10), || {
        state(&b, &id).1 >= 1
    });
    b.ok(&["stop", "-t", "1", &id]);
    let (status, count) = state(&b, &id);
    assert_eq!(status, "exited");
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(state(&b, &id), ("exited".to_string(), count));
    // A user's start forgets the stop: the policy applies again, counting from zero.
    b.ok(&["start", &id]);
    common::wait_for("a restart after start", Duration::from_secs(10), || {
        let (_, c) = state(&b, &id);
        c >= 1 && c != u32::MAX
    });
    b.ok(&["rm", "-f", &id]);
}

#[test]
fn detached_rm_container_is_removed_when_it_exits() {
    assert!(common::is_root("restart"));
    let b = Berth::with_busybox();
    let id = b
        .ok(&["run", "-d", "--rm", "busybox", "true"])
        .trim()
        .to_string();
    let dir = b.root().join("containers").join(&id);
    // Nothing else touches the store until the directory is gone.
    common::wait_for("the container's removal", Duration::from_secs(10), || {
        !dir.exists()
    });
    // The row goes right after the directory (same removal).
    common::wait_for("the container's row to go", Duration::from_secs(5), || {
        !b.ok(&["ps", "-a", "-q", "--no-trunc"]).contains(&id)
    });
}

/// `inspect -f '{{.State.Status}} {{.State.Restarting}}'`
fn status_restarting(b: &Berth, id: &str) -> String {
    b.ok(&[
        "inspect",
        "-f",
        "{{.State.Status}} {{.State.Restarting}}",
        id,
    ])
    .trim()
    .to_string()
}

/// Waits for the start of a backoff with at least `min_restarts` behind it (it then lasts
/// 100 ms << restarts: 1.6 s after 4) and returns the pid of the exit hook waiting it out.
fn fresh_backoff(b: &Berth, id: &str, min_restarts: u32) -> i32 {
    let mut prev = String::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        assert!(Instant::now() < deadline, "timed out waiting for a backoff");
        let out = b.ok(&["inspect", "-f", "{{.State.Status}} {{.RestartCount}}", id]);
        let mut it = out.split_whitespace();
        let status = it.next().unwrap_or_default().to_string();
        let count: u32 = it.next().and_then(|c| c.parse().ok()).unwrap_or(0);
        if status == "restarting" && prev != "restarting" && count >= min_restarts {
            if let Some(pid) = hook_pid(b, id) {
                return pid;
            }
        }
        prev = status;
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The exit hook's pid, from the `restarting` file it writes for its backoff.
fn hook_pid(b: &Berth, id: &str) -> Option<i32> {
    let s =
        std::fs::read_to_string(b.root().join("containers").join(id).join("restarting")).ok()?;
    s.split_whitespace().next()?.parse().ok()
}

fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => !matches!(
            s.rsplit_once(") ").map(|(_, r)| &r[..1]),
            Some("Z") | Some("X")
        ),
        Err(_) => false,
    }
}

#[test]
fn restarting_during_backoff_and_stop_cancels_it() {
    assert!(common::is_root("restart"));
    let b = Berth::with_busybox();
    let id = b
        .ok(&[
            "run",
            "-d",
            "--restart",
            "always",
            "busybox",
            "sh",
            "-c",
            "exit 1",
        ])
        .trim()
        .to_string();
    fresh_backoff(&b, &id, 3);
    let full = b.ok(&["inspect", "-f", "{{json .State}}", &id]);
    let st: serde_json::Value = serde_json::from_str(full.trim()).unwrap();
    // Docker counts a restarting container as running, with no pid.
    assert_eq!(st["Status"], "restarting", "{st}");
    assert_eq!(st["Restarting"], true, "{st}");
    assert_eq!(st["Running"], true, "{st}");
    assert_eq!(st["Pid"], 0, "{st}");
    assert_eq!(st["ExitCode"], 1, "{st}");
    // `ps -a` (and plain `ps`, as in Docker) show it with the last exit code.
    let mut seen = String::new();
    common::wait_for("ps showing Restarting (1)", Duration::from_secs(30), || {
        seen = b.ok(&["ps", "--no-trunc", "--format", "{{.ID}} {{.Status}}"]);
        seen.lines()
            .any(|l| l.starts_with(&id) && l.contains("Restarting (1) "))
    });
    common::wait_for(
        "ps -a showing Restarting (1)",
        Duration::from_secs(30),
        || {
            seen = b.ok(&["ps", "-a", "--format", "{{.Status}}|{{.State}}"]);
            seen.starts_with("Restarting (1) ") && seen.trim_end().ends_with("|restarting")
        },
    );
    common::wait_for(
        "ps --filter status=restarting",
        Duration::from_secs(30),
        || {
            b.ok(&["ps", "-q", "--no-trunc", "--filter", "status=restarting"])
                .contains(&id)
        },
    );
    // Stop during a backoff long enough to be sure it is still pending.
    let hook = fresh_backoff(&b, &id, 4);
    let t = Instant::now();
    b.ok(&["stop", "-t", "1", &id]);
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "stop took {:?}",
        t.elapsed()
    );
    assert_eq!(status_restarting(&b, &id), "exited false");
    let (_, count) = state(&b, &id);
    std::thread::sleep(Duration::from_millis(100));
    assert!(
        !alive(hook),
        "the exit hook {hook} still waits to restart it"
    );
    // The backoff it was in has passed: no restart came of it.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(state(&b, &id), ("exited".to_string(), count));
    let ps = b.ok(&["ps", "-a", "--format", "{{.Status}}"]);
    assert!(ps.contains("Exited (1)"), "{ps}");
    b.ok(&["rm", &id]);
}

#[test]
fn killed_exit_hook_leaves_an_honest_exited_and_rm_cancels() {
    assert!(common::is_root("restart"));
    let b = Berth::with_busybox();
    let run = |b: &Berth| {
        b.ok(&[
            "run",
            "-d",
            "--restart",
            "on-failure",
            "busybox",
            "sh",
            "-c",
            "exit 7",
        ])
        .trim()
        .to_string()
    };
    // The hook dies during its backoff: nobody will restart it, so it is exited.
    let id = run(&b);
    let hook = fresh_backoff(&b, &id, 4);
    common::sh(&format!("kill -9 {hook}"));
    common::wait_for("the hook's death", Duration::from_secs(5), || !alive(hook));
    assert_eq!(status_restarting(&b, &id), "exited false");
    let ps = b.ok(&["ps", "-a", "--format", "{{.Status}}"]);
    assert!(ps.contains("Exited (7)"), "{ps}");
    b.ok(&["rm", &id]);
    // `rm` refuses a restarting container, `rm -f` removes it and cancels the restart.
    let id = run(&b);
    let hook = fresh_backoff(&b, &id, 4);
    let (code, err) = b.fails(&["rm", &id]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("You cannot remove a restarting container"),
        "{err}"
    );
    assert_eq!(status_restarting(&b, &id), "restarting true");
    b.ok(&["rm", "-f", &id]);
    std::thread::sleep(Duration::from_millis(100));
    assert!(!alive(hook), "the exit hook {hook} survived rm -f");
    let ps = b.ok(&["ps", "-a", "-q", "--no-trunc"]);
    assert!(!ps.contains(&id), "{ps}");
}

/// The exit hook of a run that was not restarted cleans up its mounts and network; a `start`
/// right after the exit must not have them taken away (it failed with "network namespace …:
/// No such file" or ENOENT from the runtime).
#[test]
fn start_right_after_an_exit_keeps_its_network_and_rootfs() {
    assert!(common::is_root("restart"));
    let b = Berth::with_busybox();
    let id = b.ok(&["create", "busybox", "sh", "-c", "echo hi"]);
    let id = id.trim();
    for round in 0..30 {
        let out = b.run(&["start", "-a", id]);
        assert!(
            out.status.success(),
            "round {round}: start -a failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "hi\n",
            "round {round}"
        );
    }
    b.ok(&["rm", id]);
}

/// `wait` on a restarting container waits, as Docker's does (it counts as running), and
/// returns when a `stop` ends it; `attach` and `start -a` refuse it with Docker's messages.
#[test]
fn wait_and_attach_on_a_restarting_container() {
    assert!(common::is_root("restart"));
    let b = Berth::with_busybox();
    let id = b
        .ok(&[
            "run",
            "-d",
            "--restart",
            "always",
            "busybox",
            "sh",
            "-c",
            "exit 1",
        ])
        .trim()
        .to_string();
    // A backoff of 1.6 s or more: `wait` starts while only the restart is pending.
    fresh_backoff(&b, &id, 4);
    let mut waiter = b
        .command()
        .args(["wait", &id])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        waiter.try_wait().unwrap().is_none(),
        "wait returned while the container was restarting"
    );
    // Docker's words for attaching to it, by `attach` and by `start -a`.
    let out = b.run(&["attach", &id]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("You cannot attach to a restarting container, wait until it is running"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = b.run(&["start", "-a", &id]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("is restarting, wait until the container is running"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    b.ok(&["stop", "-t", "1", &id]);
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(st) = waiter.try_wait().unwrap() {
            break st;
        }
        assert!(Instant::now() < deadline, "wait did not return after stop");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success());
    b.ok(&["rm", &id]);
}
