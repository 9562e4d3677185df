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
