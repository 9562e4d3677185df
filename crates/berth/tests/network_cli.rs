//! Networking through the CLI with real containers (root): published TCP and UDP ports on
//! 127.0.0.1 and ::1, user networks with name resolution, `--ipv6` dual-stack networks, `--network none|host`, parallel address
//! allocation, cleanup, port conflicts, `network` commands. Traffic goes only to 127.0.0.1
//! and to addresses inside namespaces berth created. Every test has its own root, hence its
//! own bridge, nftables table and subnet (see `common::net_names`); user networks get
//! explicit, distinct subnets.

mod common;

use common::{net_names, Berth};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::process::Command;
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The `bv…` veths on this root's default bridge.
fn bridge_veths(b: &Berth) -> Vec<String> {
    let (bridge, _) = net_names(&b.root());
    common::list(
        &std::path::Path::new("/sys/class/net")
            .join(&bridge)
            .join("brif"),
    )
    .iter()
    .filter_map(|p| p.file_name().map(|f| f.to_string_lossy().to_string()))
    .collect()
}

/// Waits (up to 5 s) until no veth is left on the bridge: the host end of a pair goes with the
/// container's namespace, which the kernel dismantles asynchronously.
fn no_veths_left(b: &Berth) -> bool {
    let start = Instant::now();
    while !bridge_veths(b).is_empty() {
        if start.elapsed() > Duration::from_secs(5) {
            eprintln!("veths left: {:?}", bridge_veths(b));
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    true
}

/// Namespaces left in the run root (start locks aside).
fn netns_left(b: &Berth) -> Vec<std::path::PathBuf> {
    common::list(&b.runroot().join("netns"))
        .into_iter()
        .filter(|p| p.extension().is_none_or(|e| e != "lock"))
        .collect()
}

fn nft_table(b: &Berth) -> String {
    let (_, table) = net_names(&b.root());
    let out = Command::new("nft")
        .args(["list", "table", "inet", &table])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).to_string()
}

fn http_get(port: u16, deadline: Duration) -> String {
    http_get_at("127.0.0.1", port, deadline)
}

fn http_get_at(host: &str, port: u16, deadline: Duration) -> String {
    let start = Instant::now();
    loop {
        let r = (|| -> std::io::Result<String> {
            let mut s = TcpStream::connect((host, port))?;
            s.set_read_timeout(Some(Duration::from_secs(2)))?;
            s.write_all(b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n")?;
            let mut body = String::new();
            s.read_to_string(&mut body)?;
            Ok(body)
        })();
        match r {
            Ok(body) if body.contains("200") => return body,
            _ if start.elapsed() > deadline => panic!("no HTTP answer on {host}:{port}: {r:?}"),
            _ => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

#[test]
fn http_published_on_loopback_then_cleanup() {
    assert!(common::is_root("network"));
    let b = Berth::with_busybox();
    let port = free_port();
    let publish = format!("127.0.0.1:{port}:80");
    b.ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "-p",
        &publish,
        "busybox",
        "sh",
        "-c",
        "mkdir -p /www && echo hello-from-berth > /www/index.html && exec httpd -f -p 80 -h /www",
    ]);
    let body = http_get(port, Duration::from_secs(10));
    assert!(body.contains("hello-from-berth"), "{body}");
    // ps, port, inspect
    let ps = b.ok(&["ps"]);
    assert!(ps.contains(&format!("127.0.0.1:{port}->80/tcp")), "{ps}");
    assert_eq!(
        b.ok(&["port", "web"]).trim(),
        format!("80/tcp -> 127.0.0.1:{port}")
    );
    assert_eq!(
        b.ok(&["port", "web", "80"]).trim(),
        format!("127.0.0.1:{port}")
    );
    let ip = b.ok(&[
        "inspect",
        "-f",
        "{{.NetworkSettings.Networks.bridge.IPAddress}}",
        "web",
    ]);
    assert!(ip.trim().starts_with("10."), "{ip}");
    let binding = b.ok(&["inspect", "-f", "{{json .HostConfig.PortBindings}}", "web"]);
    assert_eq!(
        binding.trim(),
        format!("{{\"80/tcp\":[{{\"HostIp\":\"127.0.0.1\",\"HostPort\":\"{port}\"}}]}}")
    );
    let ports = b.ok(&["inspect", "-f", "{{json .NetworkSettings.Ports}}", "web"]);
    assert!(
        ports.contains(&format!("\"HostPort\":\"{port}\"")),
        "{ports}"
    );
    // The container's own files.
    let hosts = b.ok(&["exec", "web", "cat", "/etc/hosts"]);
    assert!(hosts.contains(ip.trim()), "{hosts}");
    assert_eq!(bridge_veths(&b).len(), 1);
    assert!(nft_table(&b).contains(&format!("dport {port}")));

    // The same port again: Docker's error, and nothing left half-started.
    let (code, err) = b.fails(&[
        "run", "-d", "--name", "web2", "-p", &publish, "busybox", "sleep", "30",
    ]);
    assert_ne!(code, 0);
    assert!(err.contains("address already in use"), "{err}");
    let start = Instant::now();
    while bridge_veths(&b).len() != 1 && start.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(bridge_veths(&b).len(), 1);
    let st = b.ok(&["inspect", "-f", "{{.State.Status}}", "web2"]);
    assert_eq!(st.trim(), "created");
    b.ok(&["rm", "web2"]);

    b.ok(&["rm", "-f", "web"]);
    assert!(no_veths_left(&b));
    assert!(!nft_table(&b).contains(&format!("dport {port}")));
    assert!(netns_left(&b).is_empty());
    assert!(TcpStream::connect(("127.0.0.1", port)).is_err());
}

/// A port free on 0.0.0.0 and [::] alike (a dual-stack listener holds both while it asks).
fn free_port_both() -> u16 {
    TcpListener::bind("[::]:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// What `/proc/net/if_inet6` says, as berth decides it.
fn host_has_ipv6() -> bool {
    std::fs::read_to_string("/proc/net/if_inet6")
        .map(|s| s.lines().any(|l| !l.trim().is_empty()))
        .unwrap_or(false)
}

const HTTPD: &str =
    "mkdir -p /www && echo hello-from-berth > /www/index.html && exec httpd -f -p 80 -h /www";

/// `-p PORT:80` is published on 0.0.0.0 and, when the host has IPv6, on [::] (forwarded to the
/// container's IPv4 address, as docker-proxy does); `port`, `ps` and `inspect` show both as
/// Docker 20.10 does. `-p [::1]:P:80` binds ::1 alone. Connections go to 127.0.0.1 and ::1 only.
#[test]
fn published_on_ipv4_and_ipv6() {
    assert!(common::is_root("network"));
    let b = Berth::with_busybox();
    let v6 = host_has_ipv6();
    let port = free_port_both();
    b.ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "-p",
        &format!("{port}:80"),
        "busybox",
        "sh",
        "-c",
        HTTPD,
    ]);
    let body = http_get(port, Duration::from_secs(10));
    assert!(body.contains("hello-from-berth"), "{body}");
    let ports = b.ok(&["inspect", "-f", "{{json .NetworkSettings.Ports}}", "web"]);
    let bindings = b.ok(&["inspect", "-f", "{{json .HostConfig.PortBindings}}", "web"]);
    assert_eq!(
        bindings.trim(),
        format!("{{\"80/tcp\":[{{\"HostIp\":\"\",\"HostPort\":\"{port}\"}}]}}")
    );
    let ps = b.ok(&["ps", "--format", "{{.Ports}}"]);
    let port_out = b.ok(&["port", "web"]);
    if v6 {
        let body = http_get_at("::1", port, Duration::from_secs(10));
        assert!(body.contains("hello-from-berth"), "{body}");
        assert_eq!(
            port_out,
            format!("80/tcp -> 0.0.0.0:{port}\n80/tcp -> :::{port}\n")
        );
        assert_eq!(
            b.ok(&["port", "web", "80/tcp"]),
            format!("0.0.0.0:{port}\n:::{port}\n")
        );
        assert_eq!(
            ps.trim(),
            format!("0.0.0.0:{port}->80/tcp, :::{port}->80/tcp")
        );
        assert_eq!(
            ports.trim(),
            format!("{{\"80/tcp\":[{{\"HostIp\":\"0.0.0.0\",\"HostPort\":\"{port}\"}},{{\"HostIp\":\"::\",\"HostPort\":\"{port}\"}}]}}")
        );
    } else {
        assert_eq!(port_out, format!("80/tcp -> 0.0.0.0:{port}\n"));
        assert_eq!(ps.trim(), format!("0.0.0.0:{port}->80/tcp"));
    }
    // IPv6 rules: none in the firewall (the proxy serves [::] itself), IPv4's DNAT stays.
    assert!(nft_table(&b).contains(&format!("dport {port}")));
    b.ok(&["rm", "-f", "web"]);
    assert!(TcpStream::connect(("127.0.0.1", port)).is_err());
    if !v6 {
        return;
    }
    assert!(TcpStream::connect(("::1", port)).is_err());

    // [::1] alone.
    let port6 = free_port_both();
    b.ok(&[
        "run",
        "-d",
        "--name",
        "web6",
        "-p",
        &format!("[::1]:{port6}:80"),
        "busybox",
        "sh",
        "-c",
        HTTPD,
    ]);
    let body = http_get_at("::1", port6, Duration::from_secs(10));
    assert!(body.contains("hello-from-berth"), "{body}");
    assert!(TcpStream::connect(("127.0.0.1", port6)).is_err());
    assert_eq!(b.ok(&["port", "web6"]), format!("80/tcp -> ::1:{port6}\n"));
    assert_eq!(
        b.ok(&["ps", "--format", "{{.Ports}}"]).trim(),
        format!("::1:{port6}->80/tcp")
    );
    b.ok(&["rm", "-f", "web6"]);

    // [::]:PORT taken while 0.0.0.0:PORT is free: Docker's tcp6 error, nothing left bound.
    let busy = free_port_both();
    let holder = {
        let s = socket_v6only(busy);
        s.listen(8).unwrap();
        s
    };
    let (code, err) = b.fails(&[
        "run",
        "-d",
        "--name",
        "web7",
        "-p",
        &format!("{busy}:80"),
        "busybox",
        "sleep",
        "30",
    ]);
    assert_ne!(code, 0);
    assert!(
        err.contains(&format!(
            "listen tcp6 [::]:{busy}: bind: address already in use"
        )),
        "{err}"
    );
    assert!(
        TcpListener::bind(("0.0.0.0", busy)).is_ok(),
        "0.0.0.0:{busy} is still held"
    );
    drop(holder);
    b.ok(&["rm", "web7"]);
    assert!(no_veths_left(&b));
}

/// `network create --ipv6` (dual stack): Docker 20.10's refusals without an IPv6 subnet, the
/// IPAM config and addresses in `inspect`, ping and HTTP between two containers by IPv6
/// address and by name (AAAA records from the embedded DNS), the hosts file, the ip6 NAT rule.
/// Traffic stays inside the network's bridge.
#[test]
fn ipv6_user_network() {
    assert!(common::is_root("network"));
    assert!(
        host_has_ipv6(),
        "the --ipv6 network test needs IPv6 on the host (/proc/net/if_inet6 is empty)"
    );
    let b = Berth::with_busybox();
    let (code, err) = b.fails(&["network", "create", "--ipv6", "nov6"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("could not find an available, non-overlapping IPv6 address pool among the defaults to assign to the network"),
        "{err}"
    );
    let (code, err) = b.fails(&["network", "create", "--subnet", "fd00:b0:9::/64", "nox"]);
    assert_eq!(code, 1);
    assert!(err.contains("add --ipv6"), "{err}");
    assert!(b.fails(&["network", "inspect", "nov6"]).0 != 0);

    let v4 = "10.198.9.0/24";
    let v6 = "fd00:b0:9::/64";
    b.ok(&[
        "network", "create", "--ipv6", "--subnet", v4, "--subnet", v6, "dual",
    ]);
    // A failed assertion must not leave the bridge (and its subnet) behind on the host.
    struct Cleanup<'a>(&'a Berth);
    impl Drop for Cleanup<'_> {
        fn drop(&mut self) {
            let _ = self.0.run(&["rm", "-f", "web", "cli"]);
            let _ = self.0.run(&["network", "rm", "dual"]);
        }
    }
    let _cleanup = Cleanup(&b);
    assert_eq!(
        b.ok(&[
            "network",
            "inspect",
            "-f",
            "{{.EnableIPv6}} {{json .IPAM.Config}}",
            "dual"
        ])
        .trim(),
        r#"true [{"Subnet":"10.198.9.0/24","Gateway":"10.198.9.1"},{"Subnet":"fd00:b0:9::/64","Gateway":"fd00:b0:9::1"}]"#
    );
    let ls = b.ok(&["network", "ls", "--format", "{{.Name}} {{.IPv6}}"]);
    assert!(ls.lines().any(|l| l == "dual true"), "{ls}");
    assert!(ls.lines().any(|l| l == "bridge false"), "{ls}");

    b.ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "--network",
        "dual",
        "busybox",
        "sh",
        "-c",
        HTTPD,
    ]);
    b.ok(&[
        "run",
        "-d",
        "--name",
        "cli",
        "--network",
        "dual",
        "busybox",
        "sleep",
        "60",
    ]);
    let f = "{{.NetworkSettings.Networks.dual.GlobalIPv6Address}} {{.NetworkSettings.Networks.dual.GlobalIPv6PrefixLen}} {{.NetworkSettings.Networks.dual.IPv6Gateway}} {{.NetworkSettings.GlobalIPv6Address}}";
    assert_eq!(
        b.ok(&["inspect", "-f", f, "web"]).trim(),
        "fd00:b0:9::2 64 fd00:b0:9::1 fd00:b0:9::2"
    );
    assert_eq!(
        b.ok(&["inspect", "-f", f, "cli"]).trim(),
        "fd00:b0:9::3 64 fd00:b0:9::1 fd00:b0:9::3"
    );
    let containers = b.ok(&[
        "network",
        "inspect",
        "-f",
        "{{range .Containers}}{{.Name}} {{.IPv6Address}};{{end}}",
        "dual",
    ]);
    assert!(containers.contains("web fd00:b0:9::2/64;"), "{containers}");
    let addr = b.ok(&["exec", "cli", "ip", "-6", "addr", "show", "dev", "eth0"]);
    assert!(addr.contains("fd00:b0:9::3/64"), "{addr}");
    let hosts = b.ok(&["exec", "cli", "cat", "/etc/hosts"]);
    assert!(hosts.contains("fd00:b0:9::3\t"), "{hosts}");

    // By address, then by name (the name's AAAA record).
    b.ok(&[
        "exec",
        "cli",
        "ping",
        "-6",
        "-c",
        "1",
        "-W",
        "5",
        "fd00:b0:9::2",
    ]);
    b.ok(&["exec", "cli", "ping", "-6", "-c", "1", "-W", "5", "web"]);
    let start = Instant::now();
    let body = loop {
        let out = b.run(&[
            "exec",
            "cli",
            "wget",
            "-q",
            "-O",
            "-",
            "http://[fd00:b0:9::2]/",
        ]);
        if out.status.success() || start.elapsed() > Duration::from_secs(10) {
            break String::from_utf8_lossy(&out.stdout).to_string();
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(body.contains("hello-from-berth"), "{body}");
    let look = b.ok(&["exec", "cli", "nslookup", "-type=AAAA", "web", "127.0.0.11"]);
    assert!(look.contains("fd00:b0:9::2"), "{look}");

    let table = nft_table(&b);
    assert!(
        table.contains("ip6 saddr fd00:b0:9::/64 oifname != "),
        "{table}"
    );
    b.ok(&["rm", "-f", "web", "cli"]);
    b.ok(&["network", "rm", "dual"]);
    assert!(!nft_table(&b).contains("fd00:b0:9::"));
}

/// An IPv6-only TCP socket bound to [::]:port.
fn socket_v6only(port: u16) -> socket2::Socket {
    use socket2::{Domain, Protocol, Socket, Type};
    let s = Socket::new(Domain::IPV6, Type::STREAM, Some(Protocol::TCP)).unwrap();
    s.set_only_v6(true).unwrap();
    let addr: std::net::SocketAddr = format!("[::]:{port}").parse().unwrap();
    s.bind(&addr.into()).unwrap();
    s
}

/// A UDP echo server inside the container: this test binary, run with `BERTH_UDP_ECHO=PORT`
/// (the host's libraries bind-mounted read-only).
#[test]
#[ignore = "not a test: the UDP echo server the port tests run inside a container"]
fn udp_echo_helper() {
    let Ok(port) = std::env::var("BERTH_UDP_ECHO") else {
        return;
    };
    let s = UdpSocket::bind(("0.0.0.0", port.parse::<u16>().unwrap())).unwrap();
    let mut buf = [0u8; 2048];
    loop {
        let (n, from) = s.recv_from(&mut buf).unwrap();
        let _ = s.send_to(&buf[..n], from);
    }
}

#[test]
fn udp_published() {
    assert!(common::is_root("network"));
    let b = Berth::with_busybox();
    let port = free_udp_port();
    let exe = std::env::current_exe().unwrap();
    let mount = format!("{}:/t:ro", exe.parent().unwrap().display());
    // Through sh: the runtime looks the command up before the bind mounts exist.
    let prog = format!(
        "exec /t/{} udp_echo_helper --ignored --exact",
        exe.file_name().unwrap().to_string_lossy()
    );
    b.ok(&[
        "run",
        "-d",
        "--name",
        "udp",
        "-p",
        &format!("127.0.0.1:{port}:5000/udp"),
        "-e",
        "BERTH_UDP_ECHO=5000",
        "-v",
        "/usr/lib:/usr/lib:ro",
        "-v",
        "/usr/lib:/lib:ro",
        "-v",
        "/usr/lib64:/lib64:ro",
        "-v",
        &mount,
        "busybox",
        "sh",
        "-c",
        &prog,
    ]);
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let start = Instant::now();
    let mut buf = [0u8; 64];
    loop {
        s.send_to(b"udp-through-berth", ("127.0.0.1", port))
            .unwrap();
        if let Ok((n, _)) = s.recv_from(&mut buf) {
            assert_eq!(&buf[..n], b"udp-through-berth");
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "no UDP echo");
    }
    assert!(b
        .ok(&["ps"])
        .contains(&format!("127.0.0.1:{port}->5000/udp")));
    b.ok(&["rm", "-f", "udp"]);
    assert!(no_veths_left(&b));
}

#[test]
fn user_network_name_resolution_and_commands() {
    assert!(common::is_root("network"));
    let b = Berth::with_busybox();
    let id = b.ok(&["network", "create", "--subnet", "10.198.7.0/24", "appnet"]);
    assert_eq!(id.trim().len(), 64);
    let ls = b.ok(&["network", "ls"]);
    assert!(ls.starts_with("NETWORK ID"), "{ls}");
    for n in ["appnet", "bridge", "host", "none"] {
        assert!(ls.contains(n), "{ls}");
    }
    let (_, err) = b.fails(&[
        "network",
        "create",
        "--subnet",
        "10.198.7.128/25",
        "overlap",
    ]);
    assert!(err.contains("overlaps"), "{err}");
    b.ok(&[
        "run",
        "-d",
        "--name",
        "db",
        "--network",
        "appnet",
        "--network-alias",
        "database",
        "--ip",
        "10.198.7.50",
        "busybox",
        "sleep",
        "60",
    ]);
    let ip = b.ok(&[
        "inspect",
        "-f",
        "{{.NetworkSettings.Networks.appnet.IPAddress}}",
        "db",
    ]);
    assert_eq!(ip.trim(), "10.198.7.50");
    let out = b.ok(&[
        "run", "--rm", "--network", "appnet", "busybox", "sh", "-c",
        "ping -c1 -W3 db >/dev/null && ping -c1 -W3 database >/dev/null && nslookup db 127.0.0.11 && echo reached",
    ]);
    assert!(out.contains("reached"), "{out}");
    assert!(out.contains("10.198.7.50"), "{out}");
    let out = b.fails(&[
        "run",
        "--rm",
        "--network",
        "appnet",
        "busybox",
        "ping",
        "-c1",
        "-W2",
        "nosuchname",
    ]);
    assert!(!out.1.is_empty() || out.0 != 0);
    let inspect = b.ok(&["network", "inspect", "-f", "{{json .Containers}}", "appnet"]);
    assert!(inspect.contains("10.198.7.50/24"), "{inspect}");
    let (code, err) = b.fails(&["network", "rm", "appnet"]);
    assert_eq!(code, 1);
    assert!(err.contains("active endpoints"), "{err}");
    // connect / disconnect a running container
    let (_, err) = b.fails(&["network", "connect", "appnet", "db"]);
    assert!(err.contains("already exists"), "{err}");
    b.ok(&["run", "-d", "--name", "side", "busybox", "sleep", "60"]);
    b.ok(&[
        "network", "connect", "--alias", "sidekick", "appnet", "side",
    ]);
    let ifs = b.ok(&["exec", "side", "ls", "/sys/class/net"]);
    assert!(ifs.contains("eth1"), "{ifs}");
    b.ok(&["network", "disconnect", "appnet", "side"]);
    let ifs = b.ok(&["exec", "side", "ls", "/sys/class/net"]);
    assert!(!ifs.contains("eth1"), "{ifs}");
    b.ok(&["rm", "-f", "db", "side"]);
    b.ok(&["network", "rm", "appnet"]);
    assert!(!b.ok(&["network", "ls"]).contains("appnet"));
    b.ok(&["network", "create", "--subnet", "10.198.8.0/24", "unused"]);
    let pruned = b.ok(&["network", "prune", "-f"]);
    assert!(pruned.contains("unused"), "{pruned}");
    assert!(no_veths_left(&b));
}

#[test]
fn none_and_host_modes() {
    assert!(common::is_root("network"));
    let b = Berth::with_busybox();
    let out = b.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "busybox",
        "ls",
        "/sys/class/net",
    ]);
    assert_eq!(out.split_whitespace().collect::<Vec<_>>(), vec!["lo"]);
    let out = b.ok(&[
        "run",
        "--rm",
        "--network",
        "host",
        "busybox",
        "ls",
        "/sys/class/net",
    ]);
    let mut inside: Vec<String> = out.split_whitespace().map(String::from).collect();
    inside.sort();
    let mut host: Vec<String> = common::list(std::path::Path::new("/sys/class/net"))
        .iter()
        .filter_map(|p| p.file_name().map(|f| f.to_string_lossy().to_string()))
        .collect();
    host.sort();
    for i in host
        .iter()
        .filter(|i| !i.starts_with("bv") && !i.starts_with("veth"))
    {
        assert!(inside.contains(i), "{i} missing inside: {inside:?}");
    }
    // The default bridge: eth0 with an address, hostname and hosts from berth.
    let out = b.ok(&[
        "run",
        "--rm",
        "--hostname",
        "box",
        "--add-host",
        "db.local:10.9.9.9",
        "--dns",
        "10.1.2.3",
        "busybox",
        "sh",
        "-c",
        "ls /sys/class/net; hostname; cat /etc/hosts /etc/resolv.conf",
    ]);
    assert!(out.contains("eth0"), "{out}");
    assert!(out.contains("\nbox\n"), "{out}");
    assert!(out.contains("10.9.9.9\tdb.local"), "{out}");
    assert!(out.contains("nameserver 10.1.2.3"), "{out}");
    assert!(no_veths_left(&b));
    assert!(netns_left(&b).is_empty());
}

#[test]
fn parallel_containers_get_distinct_addresses() {
    assert!(common::is_root("network"));
    let b = std::sync::Arc::new(Berth::with_busybox());
    let handles: Vec<_> = (0..20)
        .map(|i| {
            let b = b.clone();
            std::thread::spawn(move || {
                b.ok(&[
                    "run",
                    "-d",
                    "--name",
                    &format!("p{i}"),
                    "busybox",
                    "sleep",
                    "60",
                ]);
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let mut ips = Vec::new();
    for i in 0..20 {
        let ip = b.ok(&[
            "inspect",
            "-f",
            "{{.NetworkSettings.IPAddress}}",
            &format!("p{i}"),
        ]);
        assert!(ip.trim().starts_with("10."), "{ip}");
        ips.push(ip.trim().to_string());
    }
    let mut uniq = ips.clone();
    uniq.sort();
    uniq.dedup();
    assert_eq!(uniq.len(), 20, "{ips:?}");
    assert_eq!(bridge_veths(&b).len(), 20);
    // One container reaches another across the bridge.
    b.ok(&["exec", "p0", "ping", "-c1", "-W3", &ips[19]]);
    let names: Vec<String> = (0..20).map(|i| format!("p{i}")).collect();
    let mut args = vec!["rm", "-f"];
    args.extend(names.iter().map(|s| s.as_str()));
    b.ok(&args);
    assert!(no_veths_left(&b));
    assert!(netns_left(&b).is_empty());
}

#[test]
fn exited_detached_container_is_released_by_ps() {
    assert!(common::is_root("network"));
    let b = Berth::with_busybox();
    let port = free_port();
    b.ok(&[
        "run",
        "-d",
        "--name",
        "short",
        "-p",
        &format!("127.0.0.1:{port}:80"),
        "busybox",
        "sleep",
        "1",
    ]);
    std::thread::sleep(Duration::from_millis(1500));
    let start = Instant::now();
    loop {
        b.ok(&["ps", "-a"]);
        if no_veths_left(&b) && TcpStream::connect(("127.0.0.1", port)).is_err() {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "not released");
        std::thread::sleep(Duration::from_millis(200));
    }
    // The port is free for the next container, and a restart gets it again.
    b.ok(&["start", "short"]);
    assert_eq!(
        b.ok(&["port", "short"]).trim(),
        format!("80/tcp -> 127.0.0.1:{port}")
    );
    b.ok(&["rm", "-f", "short"]);
}
