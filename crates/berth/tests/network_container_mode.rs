//! `--network container:X`: a container that joins another's network namespace, as sidecars
//! and pods do (real containers, root).

mod common;
use common::Berth;

#[test]
fn a_container_joins_another_containers_network() {
    let b = Berth::with_busybox();
    let donor = b
        .ok(&[
            "run", "-d", "--name", "donor", "--hostname", "dhost", "busybox", "sh", "-c",
            "mkdir -p /www && echo served-by-donor > /www/index.html && exec httpd -f -p 80 -h /www",
        ])
        .trim()
        .to_string();
    // The sidecar reaches the donor's server on its own loopback and sees the donor's names.
    let out = b.ok(&[
        "run", "--rm", "--network", "container:donor", "busybox", "sh", "-c",
        "hostname; for i in 1 2 3 4 5 6 7 8 9 10; do wget -q -O- http://127.0.0.1:80/ && break; sleep 0.2; done",
    ]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.first(), Some(&"dhost"), "{out}");
    assert!(out.contains("served-by-donor"), "{out}");
    // Same network namespace: the same interfaces and addresses.
    let ns = |args: &[&str]| b.ok(args);
    let donor_addrs = ns(&["exec", "donor", "cat", "/proc/net/fib_trie"]);
    let joined_addrs = ns(&[
        "run",
        "--rm",
        "--network",
        "container:donor",
        "busybox",
        "cat",
        "/proc/net/fib_trie",
    ]);
    assert_eq!(donor_addrs, joined_addrs);

    b.ok(&[
        "create",
        "--name",
        "joined",
        "--network",
        "container:donor",
        "busybox",
        "true",
    ]);
    let mode = b.ok(&["inspect", "-f", "{{.HostConfig.NetworkMode}}", "joined"]);
    assert_eq!(mode.trim(), format!("container:{donor}"));
    let nets = b.ok(&[
        "inspect",
        "-f",
        "{{json .NetworkSettings.Networks}}",
        "joined",
    ]);
    assert_eq!(nets.trim(), "{}");
    let hosts = b.ok(&["inspect", "-f", "{{.HostsPath}}", "joined"]);
    let donor_hosts = b.ok(&["inspect", "-f", "{{.HostsPath}}", "donor"]);
    assert_eq!(hosts, donor_hosts);

    // Docker's answer when the donor does not run.
    b.ok(&["stop", "-t", "1", "donor"]);
    let (code, _, err) = b.code(&["start", "joined"]);
    assert_ne!(code, 0);
    assert!(
        err.contains(&format!(
            "cannot join network of a non running container: {donor}"
        )),
        "{err}"
    );
    b.ok(&["rm", "-f", "joined", "donor"]);
}

#[test]
fn options_that_contradict_a_shared_network_are_refused() {
    let b = Berth::with_busybox();
    b.ok(&["create", "--name", "donor", "busybox", "true"]);
    for (flag, value, message) in [
        (
            "-p",
            "8080:80",
            "conflicting options: port publishing and the container type network mode",
        ),
        (
            "--hostname",
            "x",
            "conflicting options: hostname and the network mode",
        ),
        (
            "--dns",
            "1.1.1.1",
            "conflicting options: dns and the network mode",
        ),
        (
            "--add-host",
            "a:1.2.3.4",
            "conflicting options: custom host-to-IP mapping and the network mode",
        ),
        (
            "--expose",
            "80",
            "conflicting options: port exposing and the container type network mode",
        ),
    ] {
        let (code, _, err) = b.code(&[
            "create",
            "--network",
            "container:donor",
            flag,
            value,
            "busybox",
            "true",
        ]);
        assert_eq!(code, 125, "{flag}: {err}");
        assert!(err.contains(message), "{flag}: {err}");
    }
    let (code, _, err) = b.code(&["create", "--network", "container:nosuch", "busybox", "true"]);
    assert_eq!(code, 125);
    assert!(err.contains("No such container: nosuch"), "{err}");
    let (code, _, err) = b.code(&["create", "--network", "container:", "busybox", "true"]);
    assert_eq!(code, 125);
    assert!(
        err.contains("invalid container format container:<name|id>"),
        "{err}"
    );
    // Nothing half-created.
    assert_eq!(b.ok(&["ps", "-aq"]).lines().count(), 1);
}
