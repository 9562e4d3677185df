//! Real networking tests (root): bridges, veths into network namespaces made here, DNAT and the
//! port proxy on 127.0.0.1, the embedded DNS, IPAM under concurrency, cleanup. Traffic goes only
//! to 127.0.0.1 and to addresses inside these namespaces. Each test has its own database, run
//! root, nftables table, bridge and subnet, so tests run in parallel and beside a real berth.

use berth_network::ports::{parse_publish, Proto};
use berth_network::*;
use rusqlite::Connection;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

static N: AtomicU32 = AtomicU32::new(0);
/// Numbers the environments only (their default subnets are 10.x.(8·n).0/24, so n stays < 25).
static ENVS: AtomicU32 = AtomicU32::new(0);

fn is_root() -> bool {
    // SAFETY: trivial syscall.
    unsafe { libc::geteuid() == 0 }
}

macro_rules! need_root {
    () => {
        assert!(
            is_root(),
            "the network tests must run as root (scripts/test.sh does)"
        );
    };
}

struct Env {
    dir: tempfile::TempDir,
    opts: NetOptions,
    netns: Vec<String>,
}

impl Env {
    fn new() -> Env {
        let n = ENVS.fetch_add(1, Ordering::SeqCst);
        let pid = std::process::id() % 10000;
        Env {
            dir: tempfile::tempdir().unwrap(),
            opts: NetOptions {
                nft_table: format!("berth_test_{pid}_{n}"),
                default_bridge: format!("berthT{pid}x{n}"),
                default_subnet: Some(format!("10.{}.{}.0/24", 240 + (pid % 10), n * 8)),
            },
            netns: Vec::new(),
        }
    }
    fn db(&self) -> Connection {
        let c = Connection::open(self.dir.path().join("berth.db")).unwrap();
        c.busy_timeout(Duration::from_secs(30)).unwrap();
        c.pragma_update(None, "journal_mode", "WAL").unwrap();
        c.pragma_update(None, "synchronous", "NORMAL").unwrap();
        c
    }
    fn runroot(&self) -> PathBuf {
        self.dir.path().join("run")
    }
    fn net<'a>(&self, db: &'a Connection) -> Networking<'a> {
        Networking::with_options(db, &self.runroot(), self.opts.clone()).unwrap()
    }
    fn netns(&mut self) -> PathBuf {
        let name = format!(
            "bt{}_{}_{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst),
            self.netns.len()
        );
        let ok = Command::new("ip")
            .args(["netns", "add", &name])
            .status()
            .unwrap()
            .success();
        assert!(ok, "ip netns add {name}");
        self.netns.push(name.clone());
        PathBuf::from("/run/netns").join(name)
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        let db = self.db();
        if let Ok(net) = Networking::with_options(&db, &self.runroot(), self.opts.clone()) {
            for n in net.networks().unwrap_or_default() {
                for ep in net.network_endpoints(&n.id).unwrap_or_default() {
                    let _ = net.release_container(&ep.container_id);
                }
                if let Some(b) = n.bridge {
                    let _ = netlink::delete_link(&b);
                }
            }
        }
        let _ = nft::remove_table(&self.opts.nft_table);
        for n in &self.netns {
            let _ = Command::new("ip").args(["netns", "del", n]).status();
        }
    }
}

/// Runs `f` inside the namespace (sockets made there stay there).
fn inside<T: Send>(ns: &Path, f: impl FnOnce() -> T + Send) -> T {
    let file = std::fs::File::open(ns).unwrap();
    std::thread::scope(|s| {
        s.spawn(|| {
            use std::os::fd::AsRawFd;
            // SAFETY: setns on this thread only.
            assert_eq!(
                unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) },
                0
            );
            f()
        })
        .join()
        .unwrap()
    })
}

fn echo_server(l: TcpListener) {
    std::thread::spawn(move || {
        for c in l.incoming() {
            let Ok(mut c) = c else { continue };
            std::thread::spawn(move || {
                let mut b = [0u8; 65536];
                while let Ok(n) = c.read(&mut b) {
                    if n == 0 || c.write_all(&b[..n]).is_err() {
                        break;
                    }
                }
            });
        }
    });
}

fn udp_echo(s: UdpSocket) {
    std::thread::spawn(move || {
        let mut b = [0u8; 2048];
        while let Ok((n, from)) = s.recv_from(&mut b) {
            let _ = s.send_to(&b[..n], from);
        }
    });
}

fn tcp_roundtrip(addr: SocketAddr, msg: &[u8]) -> Vec<u8> {
    let mut c = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    c.write_all(msg).unwrap();
    let mut got = vec![0u8; msg.len()];
    c.read_exact(&mut got).unwrap();
    got
}

fn udp_roundtrip(addr: SocketAddr, msg: &[u8]) -> Vec<u8> {
    let s = UdpSocket::bind("0.0.0.0:0").unwrap();
    s.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let mut b = [0u8; 2048];
    for _ in 0..10 {
        s.send_to(msg, addr).unwrap();
        if let Ok((n, _)) = s.recv_from(&mut b) {
            return b[..n].to_vec();
        }
    }
    panic!("no UDP answer from {addr}");
}

fn dns_query(name: &str) -> (u8, Vec<Ipv4Addr>) {
    use hickory_proto::op::{Message, Query};
    use hickory_proto::rr::{Name, RData, RecordType};
    let mut m = Message::new();
    m.set_id(7).set_recursion_desired(true);
    m.add_query(Query::query(Name::from_ascii(name).unwrap(), RecordType::A));
    let r = udp_roundtrip("127.0.0.11:53".parse().unwrap(), &m.to_vec().unwrap());
    let r = Message::from_vec(&r).unwrap();
    let ips = r
        .answers()
        .iter()
        .filter_map(|a| match a.data() {
            RData::A(a) => Some(a.0),
            _ => None,
        })
        .collect();
    (u16::from(r.response_code()) as u8, ips)
}

fn connect(
    net: &Networking,
    id: &str,
    name: &str,
    ns: &Path,
    network: &str,
    aliases: &[&str],
) -> Endpoint {
    net.connect(&Connect {
        container_id: id.into(),
        container_name: name.into(),
        netns: ns.into(),
        network: network.into(),
        aliases: aliases.iter().map(|s| s.to_string()).collect(),
        ip: None,
    })
    .unwrap()
}

fn proxy_env() {
    let exe = std::env::current_exe().unwrap();
    let p = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("berth-netproxy");
    assert!(p.exists(), "build berth-netproxy first ({})", p.display());
}

#[test]
fn two_namespaces_on_a_user_network_talk_and_resolve_names() {
    need_root!();
    proxy_env();
    let mut env = Env::new();
    let db = env.db();
    let net = env.net(&db);
    net.ensure_default_bridge().unwrap();
    let sub = format!(
        "10.{}.{}.0/24",
        240 + (std::process::id() % 10),
        200 + N.fetch_add(1, Ordering::SeqCst) % 50
    );
    let n = net
        .create_network(&CreateNetwork {
            name: "front".into(),
            subnet: Some(sub),
            ..Default::default()
        })
        .unwrap();
    let (a, b) = (env.netns(), env.netns());
    let ea = connect(&net, "aaaaaaaaaaaaaaaa", "alpha", &a, "front", &[]);
    let eb = connect(&net, "bbbbbbbbbbbbbbbb", "beta", &b, "front", &["db"]);
    assert_ne!(ea.ip, eb.ip);
    assert_eq!(
        ea.gateway,
        Some(n.gateway.as_deref().unwrap().parse().unwrap())
    );
    assert_eq!(ea.ifname, "eth0");
    assert!(netlink::link_exists(&ea.host_veth).unwrap());

    // TCP and UDP from a to b, across the bridge (and past a FORWARD drop policy if Docker runs).
    let l = inside(&b, || TcpListener::bind("0.0.0.0:7000").unwrap());
    echo_server(l);
    let u = inside(&b, || UdpSocket::bind("0.0.0.0:7001").unwrap());
    udp_echo(u);
    let ip = eb.ip;
    assert_eq!(
        inside(&a, || tcp_roundtrip(SocketAddr::from((ip, 7000)), b"hello")),
        b"hello"
    );
    assert_eq!(
        inside(&a, || udp_roundtrip(SocketAddr::from((ip, 7001)), b"ping")),
        b"ping"
    );

    // Embedded DNS inside a: names, aliases and short IDs on the network; NXDOMAIN otherwise.
    let eps = net.container_endpoints("aaaaaaaaaaaaaaaa").unwrap();
    net.start_proxy("aaaaaaaaaaaaaaaa", 0, Vec::new(), &eps, &[])
        .unwrap();
    let (rc, ips) = inside(&a, || dns_query("beta."));
    assert_eq!((rc, ips), (0, vec![eb.ip]));
    assert_eq!(inside(&a, || dns_query("DB")).1, vec![eb.ip]);
    assert_eq!(inside(&a, || dns_query("bbbbbbbbbbbb")).1, vec![eb.ip]);
    assert_eq!(inside(&a, || dns_query("alpha")).1, vec![ea.ip]);
    assert_eq!(inside(&a, || dns_query("nosuchname")).0, 3);

    // A removed network in use is refused; disconnect frees it.
    let e = net.remove_network("front").unwrap_err();
    assert!(e.to_string().contains("has active endpoints"), "{e}");
    net.release_container("aaaaaaaaaaaaaaaa").unwrap();
    net.disconnect("bbbbbbbbbbbbbbbb", "front").unwrap();
    assert!(!netlink::link_exists(&ea.host_veth).unwrap());
    assert!(!netlink::link_exists(&eb.host_veth).unwrap());
    let bridge = n.bridge.clone().unwrap();
    net.remove_network("front").unwrap();
    assert!(!netlink::link_exists(&bridge).unwrap());
}

#[test]
fn published_ports_answer_on_loopback_and_cleanup_leaves_nothing() {
    need_root!();
    proxy_env();
    let mut env = Env::new();
    let db = env.db();
    let net = env.net(&db);
    net.ensure_default_bridge().unwrap();
    let ns = env.netns();
    let id = "cccccccccccccccc";
    let ep = connect(&net, id, "web", &ns, "bridge", &[]);
    echo_server(inside(&ns, || TcpListener::bind("0.0.0.0:80").unwrap()));
    udp_echo(inside(&ns, || UdpSocket::bind("0.0.0.0:53").unwrap()));
    let mut specs = parse_publish("127.0.0.1::80").unwrap();
    specs.extend(parse_publish("127.0.0.1::53/udp").unwrap());
    let reserved = net.publish(id, &specs).unwrap();
    let ports = net.ports(id).unwrap();
    assert_eq!(ports.len(), 2);
    let tcp = ports
        .iter()
        .find(|p| p.proto == Proto::Tcp)
        .unwrap()
        .clone();
    let udp = ports
        .iter()
        .find(|p| p.proto == Proto::Udp)
        .unwrap()
        .clone();
    assert!(tcp.host_port >= 1024);
    // The DNAT rule is in our table.
    let table = nft::list_table(&env.opts.nft_table).unwrap();
    assert!(
        table.contains(&format!("dnat ip to {}:80", ep.ip)),
        "{table}"
    );
    net.start_proxy(id, 0, reserved, std::slice::from_ref(&ep), &[])
        .unwrap();

    let addr = SocketAddr::from(([127, 0, 0, 1], tcp.host_port));
    assert_eq!(tcp_roundtrip(addr, b"over the proxy"), b"over the proxy");
    // Large transfer through splice.
    let big: Vec<u8> = (0..4 << 20).map(|i| (i % 251) as u8).collect();
    assert_eq!(tcp_roundtrip(addr, &big), big);
    assert_eq!(
        udp_roundtrip(SocketAddr::from(([127, 0, 0, 1], udp.host_port)), b"dgram"),
        b"dgram"
    );

    // The same port again: Docker's message, nothing recorded.
    let again = parse_publish(&format!("127.0.0.1:{}:80", tcp.host_port)).unwrap();
    let e = net.publish(id, &again).unwrap_err();
    assert!(e.to_string().contains("address already in use"), "{e}");
    assert_eq!(net.ports(id).unwrap(), ports);

    net.release_container(id).unwrap();
    net.release_container(id).unwrap(); // idempotent
    assert!(!netlink::link_exists(&ep.host_veth).unwrap());
    assert!(net.ports(id).unwrap().is_empty());
    let table = nft::list_table(&env.opts.nft_table).unwrap();
    assert!(!table.contains("dnat"), "{table}");
    // The proxy is gone, so the port is free again.
    std::thread::sleep(Duration::from_millis(100));
    TcpListener::bind(addr).expect("port released");
}

#[test]
fn twenty_concurrent_connects_get_distinct_addresses() {
    need_root!();
    let mut env = Env::new();
    {
        let db = env.db();
        env.net(&db).ensure_default_bridge().unwrap();
    }
    let nss: Vec<PathBuf> = (0..20).map(|_| env.netns()).collect();
    let env_ref = &env;
    let ips: Vec<Ipv4Addr> = std::thread::scope(|s| {
        let hs: Vec<_> = nss
            .iter()
            .enumerate()
            .map(|(i, ns)| {
                s.spawn(move || {
                    let db = env_ref.db();
                    let net = env_ref.net(&db);
                    connect(
                        &net,
                        &format!("{i:016}"),
                        &format!("c{i}"),
                        ns,
                        "bridge",
                        &[],
                    )
                    .ip
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let set: std::collections::HashSet<_> = ips.iter().collect();
    assert_eq!(set.len(), 20, "{ips:?}");
    // Each namespace really has its address and a default route.
    let out = Command::new("ip")
        .args(["netns", "exec", env.netns[3].as_str(), "ip", "-4", "route"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("default via"));
    // gc with nobody alive releases everything.
    let db = env.db();
    let net = env.net(&db);
    let rep = net.gc(&|_| false).unwrap();
    assert_eq!(rep.endpoints, 20);
    assert!(net.all_endpoints().unwrap().is_empty());
    let bridge = env.opts.default_bridge.clone();
    assert!(netlink::bridge_ports(&bridge).unwrap().is_empty());
}

/// `gc` runs while other containers start (any command may collect a crashed container's
/// network): it must never take a veth whose endpoint row is being written, or that start fails
/// half-way with "No such device".
#[test]
fn gc_running_beside_connects_takes_nothing_live() {
    need_root!();
    let mut env = Env::new();
    {
        let db = env.db();
        env.net(&db).ensure_default_bridge().unwrap();
    }
    let nss: Vec<PathBuf> = (0..24).map(|_| env.netns()).collect();
    let env_ref = &env;
    let done = std::sync::atomic::AtomicBool::new(false);
    let done_ref = &done;
    let collected = std::thread::scope(|s| {
        let gc = s.spawn(move || {
            let db = env_ref.db();
            let net = env_ref.net(&db);
            let mut links = 0;
            while !done_ref.load(Ordering::SeqCst) {
                links += net.gc(&|_| true).unwrap().links;
            }
            links
        });
        let hs: Vec<_> = nss
            .iter()
            .enumerate()
            .map(|(i, ns)| {
                s.spawn(move || {
                    let db = env_ref.db();
                    let net = env_ref.net(&db);
                    net.connect(&Connect {
                        container_id: format!("{i:064}"),
                        container_name: format!("g{i}"),
                        netns: ns.clone(),
                        network: "bridge".into(),
                        aliases: Vec::new(),
                        ip: None,
                    })
                })
            })
            .collect();
        let results: Vec<_> = hs.into_iter().map(|h| h.join().unwrap()).collect();
        done_ref.store(true, Ordering::SeqCst);
        for r in &results {
            assert!(r.is_ok(), "a connect beside gc failed: {r:?}");
        }
        gc.join().unwrap()
    });
    assert_eq!(collected, 0, "gc deleted veths of live endpoints");
    let db = env.db();
    let net = env.net(&db);
    assert_eq!(net.all_endpoints().unwrap().len(), 24);
    assert_eq!(
        netlink::bridge_ports(&env.opts.default_bridge)
            .unwrap()
            .len(),
        24
    );
}

#[test]
fn bad_networks_are_refused() {
    need_root!();
    let env = Env::new();
    let db = env.db();
    let net = env.net(&db);
    let def = net.ensure_default_bridge().unwrap();
    let create = |name: &str, subnet: Option<&str>| {
        net.create_network(&CreateNetwork {
            name: name.into(),
            subnet: subnet.map(String::from),
            ..Default::default()
        })
    };
    let e = create("x", def.subnet.as_deref()).unwrap_err();
    assert!(e.to_string().contains("overlaps"), "{e}");
    if let Some(r) = subnet::host_routes()
        .into_iter()
        .find(|r| r.dev == "lo" || !r.dev.starts_with("berth"))
    {
        let e = create("y", Some(&r.dest.to_string())).unwrap_err();
        assert!(e.to_string().contains("overlap"), "{e}");
    }
    assert!(create("bad name", None).is_err());
    assert!(create("z", Some("10.1.2.3/24")).is_err());
    assert!(net
        .remove_network("bridge")
        .unwrap_err()
        .to_string()
        .contains("pre-defined"));
    assert!(matches!(net.network("nope"), Err(Error::NotFound(_))));
    for bad in ["http", "80/sctp", "70000:80", "1-2:3-5"] {
        assert!(parse_publish(bad).is_err(), "{bad}");
    }
    assert_eq!(net.networks().unwrap().len(), 3);
}

#[test]
fn persistent_namespace_has_only_loopback_until_connected() {
    need_root!();
    let env = Env::new();
    let db = env.db();
    let net = env.net(&db);
    net.ensure_default_bridge().unwrap();
    let path = env.runroot().join("netns").join("ctr");
    netlink::create_netns(&path).unwrap();
    assert!(inside(&path, || netlink::link_exists("lo").unwrap()));
    assert!(!inside(&path, || netlink::link_exists("eth0").unwrap()));
    let ep = connect(&net, "eeeeeeeeeeeeeeee", "e", &path, "bridge", &[]);
    assert!(inside(&path, || netlink::link_exists("eth0").unwrap()));
    netlink::remove_netns(&path).unwrap();
    netlink::remove_netns(&path).unwrap();
    net.release_container("eeeeeeeeeeeeeeee").unwrap();
    // The veth goes with the namespace (asynchronously in the kernel).
    for _ in 0..50 {
        if !netlink::link_exists(&ep.host_veth).unwrap() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!netlink::link_exists(&ep.host_veth).unwrap());
}
