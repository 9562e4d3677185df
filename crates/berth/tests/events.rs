//! `berth events`: what containers, images, volumes and networks record, read back with
//! Docker's filters and formats, and followed live.

mod common;

use common::Berth;
use std::io::{BufRead, BufReader};
use std::time::{Duration, Instant};

fn now() -> String {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    format!("{}.{:09}", t.as_secs(), t.subsec_nanos())
}

#[test]
fn a_containers_life_is_recorded_and_filtered() {
    assert!(common::is_root("events"));
    let b = Berth::with_busybox();
    let start = now();
    b.code(&[
        "run", "--rm", "--name", "ev1", "--label", "team=ml", "busybox", "sh", "-c", "exit 3",
    ]);
    b.ok(&["volume", "create", "evvol"]);
    b.ok(&["tag", "busybox", "evimg:1"]);
    b.ok(&["rmi", "evimg:1"]);
    let until = now();
    let lines = b.ok(&[
        "events",
        "--since",
        &start,
        "--until",
        &until,
        "--format",
        "{{.Type}} {{.Action}} {{.Actor.Attributes.name}}",
    ]);
    let got: Vec<&str> = lines.lines().collect();
    assert_eq!(
        got,
        [
            "container create ev1",
            "container start ev1",
            "container die ev1",
            "container destroy ev1",
            "volume create <no value>",
            "image tag evimg:1",
            "image untag evimg:1",
        ],
        "{lines}"
    );
    // Filters: keys AND, values OR; attributes carry labels and the exit code.
    let die = b.ok(&[
        "events",
        "--since",
        &start,
        "--until",
        &until,
        "--filter",
        "container=ev1",
        "--filter",
        "event=die",
        "--filter",
        "label=team=ml",
        "--format",
        "{{.Status}} {{.Actor.Attributes.exitCode}} {{.From}}",
    ]);
    assert_eq!(die, "die 3 busybox\n");
    // The default line: time, type, action, ID, sorted attributes.
    let plain = b.ok(&[
        "events",
        "--since",
        &start,
        "--until",
        &until,
        "--filter",
        "event=start",
    ]);
    assert!(plain.contains(" container start "), "{plain}");
    assert!(
        plain.contains("(image=busybox, name=ev1, team=ml)"),
        "{plain}"
    );
    // JSON as the Engine API sends it.
    let json = b.ok(&[
        "events",
        "--since",
        &start,
        "--until",
        &until,
        "--filter",
        "type=volume",
        "--format",
        "json",
    ]);
    let v: serde_json::Value = serde_json::from_str(json.trim()).unwrap();
    assert_eq!(v["Type"], "volume");
    assert_eq!(v["Action"], "create");
    assert_eq!(v["Actor"]["ID"], "evvol");
    // An unknown filter is an error, as in Docker.
    let (code, err) = b.fails(&[
        "events", "--since", &start, "--until", &until, "--filter", "bogus=1",
    ]);
    assert_eq!(code, 1);
    assert!(err.contains("invalid filter 'bogus'"), "{err}");
}

#[test]
fn execs_record_dockerds_three_events() {
    assert!(common::is_root("events"));
    let b = Berth::with_busybox();
    b.ok(&["run", "-d", "--name", "ex1", "busybox", "sleep", "1000"]);
    let start = now();
    assert_eq!(b.code(&["exec", "ex1", "sh", "-c", "exit 3"]).0, 3);
    b.ok(&["exec", "ex1", "true"]);
    let until = now();
    let lines = b.ok(&[
        "events",
        "--since",
        &start,
        "--until",
        &until,
        "--filter",
        "container=ex1",
        "--format",
        "{{.Action}}|{{.Actor.Attributes.exitCode}}|{{.Actor.Attributes.name}}|{{.Actor.Attributes.execID}}",
    ]);
    let got: Vec<Vec<&str>> = lines.lines().map(|l| l.split('|').collect()).collect();
    let actions: Vec<(&str, &str, &str)> = got.iter().map(|f| (f[0], f[1], f[2])).collect();
    assert_eq!(
        actions,
        [
            ("exec_create: sh -c exit 3", "<no value>", "ex1"),
            ("exec_start: sh -c exit 3", "<no value>", "ex1"),
            ("exec_die", "3", "ex1"),
            ("exec_create: true ", "<no value>", "ex1"),
            ("exec_start: true ", "<no value>", "ex1"),
            ("exec_die", "0", "ex1"),
        ],
        "{lines}"
    );
    // One exec ID per exec, 64 hex digits, shared by its three events.
    assert!(got[0][3].len() == 64 && got[0][3].chars().all(|c| c.is_ascii_hexdigit()));
    assert!(got[..3].iter().all(|f| f[3] == got[0][3]), "{lines}");
    assert_ne!(got[0][3], got[3][3]);
    // `event=exec_die` picks the ends.
    let dies = b.ok(&[
        "events",
        "--since",
        &start,
        "--until",
        &until,
        "--filter",
        "event=exec_die",
        "--format",
        "{{.Action}}",
    ]);
    assert_eq!(dies.lines().count(), 2, "{dies}");
    b.ok(&["rm", "-f", "ex1"]);
}

#[test]
fn events_follow_what_happens_next() {
    assert!(common::is_root("events"));
    let b = Berth::with_busybox();
    let mut child = b
        .command()
        .args([
            "events",
            "--filter",
            "type=container",
            "--format",
            "{{.Action}} {{.Actor.Attributes.name}}",
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            if tx.send(line.unwrap()).is_err() {
                return;
            }
        }
    });
    // Events from before the follower started are not replayed without --since.
    std::thread::sleep(Duration::from_millis(300));
    b.ok(&["run", "--rm", "--name", "ev2", "busybox", "true"]);
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut seen = Vec::new();
    while !seen.iter().any(|l: &String| l == "destroy ev2") {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(l) => seen.push(l),
            Err(_) => panic!("no destroy event followed: {seen:?}"),
        }
    }
    assert_eq!(seen, ["create ev2", "start ev2", "die ev2", "destroy ev2"]);
    let _ = child.kill();
    let _ = child.wait();
}
