//! Measurements for bench/network.sh (run as root).
//!
//! - `netbench endpoint N`: median time of connect (veth + address + route) and of release for
//!   one container on the default bridge, over N fresh namespaces (made with `ip netns add`,
//!   untimed), in a private root with its own bridge and nftables table.
//! - `netbench serve`: one namespace on a private bridge with `busybox nc -ll -p 9000` (sink) and
//!   `busybox httpd -p 80` inside, published on 127.0.0.1 random ports through berth's proxy;
//!   prints `PORTS <sink> <httpd>` and serves until stdin closes.
//! - `netbench tput ADDR MIB`: sends MIB MiB to ADDR, half-closes, waits for EOF; prints MB/s.
//! - `netbench lat ADDR N`: N HTTP/1.0 requests, connect → first response byte; prints p50 p99 ms.

use berth_network::*;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

fn opts() -> NetOptions {
    NetOptions {
        nft_table: "berth_bench".into(),
        default_bridge: "berthbench0".into(),
        default_subnet: Some("10.239.0.0/24".into()),
    }
}

fn netns_add(name: &str) -> PathBuf {
    if std::path::Path::new("/run/netns").join(name).exists() {
        let _ = Command::new("ip").args(["netns", "del", name]).status();
    }
    assert!(Command::new("ip")
        .args(["netns", "add", name])
        .status()
        .unwrap()
        .success());
    PathBuf::from("/run/netns").join(name)
}

fn open_db(dir: &std::path::Path) -> rusqlite::Connection {
    let db = rusqlite::Connection::open(dir.join("berth.db")).unwrap();
    // As the store opens it.
    db.pragma_update(None, "journal_mode", "WAL").unwrap();
    db.pragma_update(None, "synchronous", "NORMAL").unwrap();
    db
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("endpoint") => {
            let n: usize = args[2].parse().unwrap();
            let dir = tempfile::tempdir().unwrap();
            let db = open_db(dir.path());
            let net = Networking::with_options(&db, dir.path(), opts()).unwrap();
            net.ensure_default_bridge().unwrap();
            let (mut c, mut r) = (Vec::new(), Vec::new());
            for i in 0..n {
                let ns = netns_add("berthbench");
                let id = format!("{i:064}");
                let t = Instant::now();
                net.connect(&Connect {
                    container_id: id.clone(),
                    container_name: format!("c{i}"),
                    netns: ns,
                    network: "bridge".into(),
                    ..Default::default()
                })
                .unwrap();
                c.push(t.elapsed().as_secs_f64() * 1e3);
                // As after the container exited: its namespace (and the veth) are gone.
                let _ = Command::new("ip")
                    .args(["netns", "del", "berthbench"])
                    .status();
                let t = Instant::now();
                net.release_container(&id).unwrap();
                r.push(t.elapsed().as_secs_f64() * 1e3);
            }
            println!(
                "connect_ms {:.2} release_ms {:.2}",
                median(&mut c),
                median(&mut r)
            );
            let _ = netlink::delete_link("berthbench0");
            let _ = nft::remove_table("berth_bench");
        }
        Some("serve") => {
            let dir = tempfile::tempdir().unwrap();
            let db = open_db(dir.path());
            let net = Networking::with_options(&db, dir.path(), opts()).unwrap();
            net.ensure_default_bridge().unwrap();
            let ns = netns_add("berthbenchsrv");
            let id = "f".repeat(64);
            let ep = net
                .connect(&Connect {
                    container_id: id.clone(),
                    container_name: "srv".into(),
                    netns: ns,
                    network: "bridge".into(),
                    ..Default::default()
                })
                .unwrap();
            let www = dir.path().join("www");
            std::fs::create_dir_all(&www).unwrap();
            std::fs::write(www.join("index.html"), "hello\n").unwrap();
            let mut kids = vec![
                Command::new("ip")
                    .args([
                        "netns",
                        "exec",
                        "berthbenchsrv",
                        "busybox",
                        "nc",
                        "-ll",
                        "-p",
                        "9000",
                        "-e",
                        "/bin/sh",
                        "-c",
                        "cat >/dev/null",
                    ])
                    .spawn()
                    .unwrap(),
                Command::new("ip")
                    .args([
                        "netns",
                        "exec",
                        "berthbenchsrv",
                        "busybox",
                        "httpd",
                        "-f",
                        "-p",
                        "80",
                        "-h",
                    ])
                    .arg(&www)
                    .spawn()
                    .unwrap(),
            ];
            std::thread::sleep(Duration::from_millis(300));
            let specs = [
                ports::parse_publish("127.0.0.1::9000").unwrap(),
                ports::parse_publish("127.0.0.1::80").unwrap(),
            ]
            .concat();
            let reserved = net.publish(&id, &specs).unwrap();
            let p: Vec<u16> = reserved.iter().map(|r| r.binding.host_port).collect();
            net.start_proxy(&id, 0, reserved, &[ep], &[]).unwrap();
            println!("PORTS {} {}", p[0], p[1]);
            std::io::stdout().flush().unwrap();
            let mut s = String::new();
            let _ = std::io::stdin().read_to_string(&mut s);
            for k in &mut kids {
                let _ = k.kill();
                let _ = k.wait();
            }
            net.release_container(&id).unwrap();
            let _ = Command::new("ip")
                .args(["netns", "del", "berthbenchsrv"])
                .status();
            let _ = netlink::delete_link("berthbench0");
            let _ = nft::remove_table("berth_bench");
        }
        Some("tput") => {
            let addr: SocketAddr = args[2].parse().unwrap();
            let mib: usize = args[3].parse().unwrap();
            let buf = vec![0x5au8; 1 << 20];
            let t = Instant::now();
            let mut c = TcpStream::connect(addr).unwrap();
            for _ in 0..mib {
                c.write_all(&buf).unwrap();
            }
            c.shutdown(std::net::Shutdown::Write).unwrap();
            let mut rest = Vec::new();
            let _ = c.read_to_end(&mut rest);
            let s = t.elapsed().as_secs_f64();
            println!("{:.0}", (mib << 20) as f64 / s / 1e6);
        }
        Some("lat") => {
            let addr: SocketAddr = args[2].parse().unwrap();
            let n: usize = args[3].parse().unwrap();
            let mut v = Vec::with_capacity(n);
            for _ in 0..n {
                let t = Instant::now();
                let mut c = TcpStream::connect(addr).unwrap();
                c.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
                let mut b = [0u8; 1];
                c.read_exact(&mut b).unwrap();
                v.push(t.elapsed().as_secs_f64() * 1e3);
                let mut rest = Vec::new();
                let _ = c.read_to_end(&mut rest);
            }
            v.sort_by(|a, b| a.partial_cmp(b).unwrap());
            println!("{:.3} {:.3}", v[n / 2], v[(n * 99 / 100).min(n - 1)]);
        }
        _ => {
            eprintln!("usage: netbench endpoint N | serve | tput ADDR MIB | lat ADDR N");
            std::process::exit(2);
        }
    }
}
