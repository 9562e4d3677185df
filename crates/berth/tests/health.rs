//! Health checks run by the container's monitor: `--health-*` flags and the image's
//! `HEALTHCHECK`, `State.Health` in `inspect`, `(healthy)` in `ps`, `ps --filter health=`.

mod common;

use common::Berth;
use std::time::Duration;

fn f(b: &Berth, id: &str, template: &str) -> String {
    b.ok(&["inspect", "-f", template, id]).trim().to_string()
}

fn status(b: &Berth, id: &str) -> String {
    f(b, id, "{{.State.Health.Status}}")
}

fn ps_status(b: &Berth, id: &str) -> String {
    b.ok(&[
        "ps",
        "-a",
        "--filter",
        &format!("id={id}"),
        "--format",
        "{{.Status}}",
    ])
    .trim()
    .to_string()
}

fn ps_health(b: &Berth, health: &str) -> Vec<String> {
    b.ok(&[
        "ps",
        "-q",
        "--no-trunc",
        "--filter",
        &format!("health={health}"),
    ])
    .lines()
    .map(str::to_string)
    .collect()
}

#[test]
fn failing_then_passing_check_goes_unhealthy_then_healthy() {
    common::is_root("health");
    let b = Berth::with_busybox();
    let id = b
        .ok(&[
            "run",
            "-d",
            "--health-cmd",
            "echo probing; test -e /tmp/ok",
            "--health-interval",
            "200ms",
            "--health-retries",
            "2",
            "busybox",
            "sleep",
            "60",
        ])
        .trim()
        .to_string();
    let plain = b
        .ok(&["run", "-d", "busybox", "sleep", "60"])
        .trim()
        .to_string();
    // Recorded before `run -d` returns; the first probe comes one interval later.
    let waiting = b
        .ok(&[
            "run",
            "-d",
            "--health-cmd",
            "true",
            "--health-interval",
            "1h",
            "busybox",
            "sleep",
            "60",
        ])
        .trim()
        .to_string();
    assert_eq!(status(&b, &waiting), "starting");
    assert!(ps_status(&b, &waiting).ends_with("(health: starting)"));
    // The failing container may still be starting too (its first probe is 200 ms away on a
    // busy machine); the one without a check never is.
    let starting = ps_health(&b, "starting");
    assert!(starting.contains(&waiting), "{starting:?}");
    assert!(!starting.contains(&plain), "{starting:?}");
    b.ok(&["rm", "-f", &waiting]);
    assert_eq!(f(&b, &plain, "{{json .State.Health}}"), "null");
    assert_eq!(
        f(&b, &id, "{{json .Config.Healthcheck}}"),
        r#"{"Test":["CMD-SHELL","echo probing; test -e /tmp/ok"],"Interval":200000000,"Retries":2}"#
    );
    common::wait_for("unhealthy", Duration::from_secs(15), || {
        status(&b, &id) == "unhealthy"
    });
    assert!(
        ps_status(&b, &id).ends_with("(unhealthy)"),
        "{}",
        ps_status(&b, &id)
    );
    assert!(
        f(&b, &id, "{{.State.Health.FailingStreak}}")
            .parse::<u32>()
            .unwrap()
            >= 2
    );
    assert_eq!(f(&b, &id, "{{(index .State.Health.Log 0).ExitCode}}"), "1");
    assert_eq!(
        f(&b, &id, "{{json (index .State.Health.Log 0).Output}}"),
        r#""probing\n""#
    );
    assert_eq!(ps_health(&b, "unhealthy"), vec![id.clone()]);
    assert_eq!(ps_health(&b, "none"), vec![plain.clone()]);
    assert!(ps_health(&b, "healthy").is_empty());

    b.ok(&["exec", &id, "touch", "/tmp/ok"]);
    common::wait_for("healthy", Duration::from_secs(15), || {
        status(&b, &id) == "healthy"
    });
    assert!(ps_status(&b, &id).ends_with("(healthy)"));
    assert_eq!(f(&b, &id, "{{.State.Health.FailingStreak}}"), "0");
    assert_eq!(ps_health(&b, "healthy"), vec![id.clone()]);
    // Only the last 5 results are kept.
    common::wait_for("a full log", Duration::from_secs(15), || {
        f(&b, &id, "{{len .State.Health.Log}}") == "5"
    });
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(f(&b, &id, "{{len .State.Health.Log}}"), "5");

    let (code, err) = b.fails(&["ps", "--filter", "health=bogus"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("Unrecognised filter value for health: bogus"),
        "{err}"
    );
    b.ok(&["rm", "-f", &id, &plain]);
}

#[test]
fn timeout_kills_the_probe_and_output_is_truncated() {
    common::is_root("health");
    let b = Berth::with_busybox();
    let slow = b
        .ok(&[
            "run",
            "-d",
            "--health-cmd",
            "sleep 7; true",
            "--health-timeout",
            "300ms",
            "--health-interval",
            "100ms",
            "--health-retries",
            "1",
            "busybox",
            "sleep",
            "60",
        ])
        .trim()
        .to_string();
    let chatty = b
        .ok(&[
            "run",
            "-d",
            "--health-cmd",
            "yes | head -c 5000; exit 3",
            "--health-interval",
            "100ms",
            "--health-retries",
            "1",
            "--health-start-period",
            "1m",
            "busybox",
            "sleep",
            "60",
        ])
        .trim()
        .to_string();
    common::wait_for("a timed-out probe", Duration::from_secs(15), || {
        status(&b, &slow) == "unhealthy"
    });
    assert_eq!(
        f(
            &b,
            &slow,
            "{{(index .State.Health.Log 0).ExitCode}} {{(index .State.Health.Log 0).Output}}"
        ),
        "-1 Health check exceeded timeout (300ms)"
    );
    // The timed-out probes were killed inside the container too.
    std::thread::sleep(Duration::from_millis(200));
    let procs = b.ok(&["exec", &slow, "ps", "-o", "args"]);
    let running: Vec<&str> = procs.lines().filter(|l| l.starts_with("sleep 7")).collect();
    assert!(running.len() <= 1, "probes left running:\n{procs}");

    // Failures inside the start period do not count while starting.
    common::wait_for("three results", Duration::from_secs(15), || {
        f(&b, &chatty, "{{len .State.Health.Log}}")
            .parse::<u32>()
            .unwrap_or(0)
            >= 3
    });
    assert_eq!(status(&b, &chatty), "starting");
    assert_eq!(f(&b, &chatty, "{{.State.Health.FailingStreak}}"), "0");
    let out = f(&b, &chatty, "{{json (index .State.Health.Log 0)}}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["ExitCode"], 3);
    let o = v["Output"].as_str().unwrap();
    assert_eq!(o.len(), 4096 + 3, "{o:?}");
    assert!(o.ends_with("y\n..."));
    assert_eq!(ps_health(&b, "starting"), vec![chatty.clone()]);
    b.ok(&["rm", "-f", &slow, &chatty]);
}

#[test]
fn image_healthcheck_from_build_and_flag_rules() {
    common::is_root("health");
    let b = Berth::with_busybox();
    let ctx = tempfile::tempdir_in(common::scratch_dir()).unwrap();
    std::fs::write(
        ctx.path().join("Dockerfile"),
        "FROM busybox\nHEALTHCHECK --interval=150ms --retries=1 CMD [\"sh\", \"-c\", \"test -e /ready\"]\nCMD [\"sleep\", \"60\"]\n",
    )
    .unwrap();
    b.ok(&["build", "-q", "-t", "hc", ctx.path().to_str().unwrap()]);
    let id = b.ok(&["run", "-d", "hc"]).trim().to_string();
    common::wait_for("unhealthy", Duration::from_secs(15), || {
        status(&b, &id) == "unhealthy"
    });
    // The user's flags override the image's one by one.
    let more = b
        .ok(&[
            "run",
            "-d",
            "--health-retries",
            "7",
            "hc",
            "sh",
            "-c",
            "touch /ready; sleep 60",
        ])
        .trim()
        .to_string();
    assert_eq!(
        f(&b, &more, "{{json .Config.Healthcheck}}"),
        r#"{"Test":["CMD","sh","-c","test -e /ready"],"Interval":150000000,"Retries":7}"#
    );
    common::wait_for("healthy", Duration::from_secs(15), || {
        status(&b, &more) == "healthy"
    });
    // --no-healthcheck: no probe, no State.Health.
    let none = b
        .ok(&["run", "-d", "--no-healthcheck", "hc"])
        .trim()
        .to_string();
    assert_eq!(f(&b, &none, "{{index .Config.Healthcheck.Test 0}}"), "NONE");
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(f(&b, &none, "{{json .State.Health}}"), "null");
    assert!(ps_health(&b, "none").contains(&none));
    // During the start period probes come every start interval and their failures do not
    // count; after it, every interval.
    let late = b
        .ok(&[
            "run",
            "-d",
            "--health-cmd",
            "exit 1",
            "--health-interval",
            "300ms",
            "--health-start-interval",
            "100ms",
            "--health-start-period",
            "4s",
            "--health-retries",
            "1",
            "busybox",
            "sleep",
            "60",
        ])
        .trim()
        .to_string();
    common::wait_for(
        "unhealthy after the start period",
        Duration::from_secs(20),
        || status(&b, &late) == "unhealthy",
    );
    // A restart starts over at `starting`, keeping the log.
    b.ok(&["restart", "-t", "0", &late]);
    assert_eq!(status(&b, &late), "starting");
    assert_eq!(f(&b, &late, "{{.State.Health.FailingStreak}}"), "0");
    assert_ne!(f(&b, &late, "{{len .State.Health.Log}}"), "0");
    b.ok(&["rm", "-f", &late]);

    for (args, msg) in [
        (
            vec!["--no-healthcheck", "--health-retries", "1"],
            "--no-healthcheck conflicts with --health-* options",
        ),
        (
            vec!["--health-interval", "500us"],
            "Interval in Healthcheck cannot be less than 1ms",
        ),
        (
            vec!["--health-timeout", "-1s"],
            "--health-timeout cannot be negative",
        ),
        (
            vec!["--health-start-period", "soon"],
            "invalid argument \"soon\" for \"--health-start-period\" flag",
        ),
        (
            vec!["--health-retries", "-2"],
            "--health-retries cannot be negative",
        ),
    ] {
        let mut a = vec!["create"];
        a.extend(args.iter().copied());
        a.push("hc");
        let (code, err) = b.fails(&a);
        assert_eq!(code, 125, "{args:?}: {err}");
        assert!(err.contains(msg), "{args:?}: {err}");
    }
    b.ok(&["rm", "-f", &id, &more, &none]);
}

#[test]
fn probes_run_with_every_runtime() {
    common::is_root("health");
    let b = Berth::with_busybox();
    for rt in common::runtimes() {
        let id = b
            .ok(&[
                "run",
                "-d",
                "--runtime",
                rt,
                "--health-cmd",
                "echo ok from $0",
                "--health-interval",
                "100ms",
                "busybox",
                "sleep",
                "60",
            ])
            .trim()
            .to_string();
        common::wait_for(
            &format!("healthy under {rt}"),
            Duration::from_secs(15),
            || status(&b, &id) == "healthy",
        );
        assert_eq!(
            f(&b, &id, "{{(index .State.Health.Log 0).Output}}"),
            "ok from /bin/sh",
            "{rt}"
        );
        b.ok(&["rm", "-f", &id]);
    }
}
