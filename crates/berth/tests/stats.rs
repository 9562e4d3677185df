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
    if !common::is_root("stats") {
        return;
    }
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
