//! `stats --no-stream`: a real container (root, namespaces, cgroups), busybox fixture.

mod common;

use common::Berth;

#[test]
fn stats_no_stream_table_format_and_errors() {
    let b = Berth::new();
    // The unknown-container error needs no privileges.
    let (code, err) = b.fails(&["stats", "--no-stream", "nosuchcontainer"]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("No such container: nosuchcontainer"),
        "stderr: {err}"
    );
    assert!(common::is_root("stats"));
    b.import_busybox("busybox");
    b.ok(&[
        "run", "-d", "--name", "st1", "--memory", "64m", "busybox", "sleep", "100",
    ]);

    let out = b.ok(&["stats", "--no-stream"]);
    let mut lines = out.lines();
    let header = lines.next().unwrap();
    for col in [
        "CONTAINER ID",
        "NAME",
        "CPU %",
        "MEM USAGE / LIMIT",
        "MEM %",
        "NET I/O",
        "BLOCK I/O",
        "PIDS",
    ] {
        assert!(header.contains(col), "header: {header}");
    }
    let row = lines
        .find(|l| l.contains("st1"))
        .unwrap_or_else(|| panic!("no st1 row:\n{out}"));
    assert!(row.contains("/ 64MiB"), "row: {row}");
    assert!(row.contains('%'), "row: {row}");
    let pids: u64 = row.split_whitespace().last().unwrap().parse().unwrap();
    assert!(pids >= 1, "row: {row}");

    // By name, through a template.
    let out = b.ok(&[
        "stats",
        "--no-stream",
        "--format",
        "{{.Name}} {{.PIDs}}",
        "st1",
    ]);
    let line = out.trim();
    let (name, pids) = line.split_once(' ').unwrap();
    assert_eq!(name, "st1");
    assert!(pids.parse::<u64>().unwrap() >= 1, "{line}");

    // A stopped container is listed with -a only, with zeros.
    b.ok(&["stop", "-t", "0", "st1"]);
    let out = b.ok(&["stats", "--no-stream", "--format", "{{.Name}}"]);
    assert!(!out.contains("st1"), "{out}");
    let out = b.ok(&[
        "stats",
        "--no-stream",
        "-a",
        "--format",
        "{{.Name}} {{.MemUsage}} {{.PIDs}}",
    ]);
    assert_eq!(out.trim(), "st1 0B / 0B 0");

    b.ok(&["rm", "-f", "st1"]);
}

#[test]
fn stats_streams_until_the_reader_goes_away() {
    use std::io::Read;
    assert!(common::is_root("stats"));
    let b = Berth::new();
    b.import_busybox("busybox");
    b.ok(&["run", "-d", "--name", "live1", "busybox", "sleep", "100"]);
    let mut child = b
        .command()
        .args(["stats", "--format", "{{.Name}} {{.PIDs}}", "live1"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    // Two redraws: each clears the screen, then shows the container.
    let mut seen = String::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while seen.matches("\x1b[2J\x1b[H").count() < 3 {
        assert!(
            std::time::Instant::now() < deadline,
            "no second update: {seen:?}"
        );
        let mut buf = [0u8; 512];
        let n = stdout.read(&mut buf).unwrap();
        assert!(n > 0, "stats ended: {seen:?}");
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    let frames: Vec<&str> = seen.split("\x1b[2J\x1b[H").skip(1).take(2).collect();
    for f in &frames {
        assert_eq!(f.trim(), "live1 1", "{seen:?}");
    }
    // The reader leaves: stats ends by itself, quietly.
    drop(stdout);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        assert!(std::time::Instant::now() < deadline, "stats kept running");
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert!(status.success() || status.code().is_none(), "{status:?}");
    // --no-stream: one table, no screen control.
    let once = b.ok(&["stats", "--no-stream", "--format", "{{.Name}}", "live1"]);
    assert_eq!(once, "live1\n");
    b.ok(&["rm", "-f", "live1"]);
}
