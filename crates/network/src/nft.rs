//! Host firewall state: one nftables table, `inet berth`, rewritten whole and atomically by one
//! `nft -f -` transaction from what berth.db says (so a crash mid-change is repaired by the next
//! sync, and no rule handles are ever tracked). Docker's and Podman's tables are never touched;
//! only when Docker's `DOCKER-USER` chain (or a FORWARD chain with a drop policy) exists, two
//! `iptables` rules accepting `berth+` bridges are inserted there, since a drop verdict in
//! another table's base chain would otherwise win.

use crate::subnet::{Subnet, Subnet6};
use crate::{Error, Result};
use std::fmt::Write as _;
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::process::{Command, Stdio};

/// Default table name (family inet).
pub const TABLE: &str = "berth";

/// A bridge network as the firewall sees it.
pub struct FwNetwork {
    pub bridge: String,
    pub subnet: Subnet,
    /// The IPv6 subnet of an `--ipv6` network (masqueraded as the IPv4 one).
    pub subnet6: Option<Subnet6>,
    pub internal: bool,
}

/// A DNAT rule for one published port.
pub struct FwPort {
    pub host_ip: IpAddr,
    pub host_port: u16,
    pub proto: &'static str,
    pub target: Ipv4Addr,
    pub target_port: u16,
}

/// The nft script that replaces the whole table.
pub fn script(table: &str, nets: &[FwNetwork], ports: &[FwPort]) -> String {
    let mut s = String::new();
    // `add table` then `delete table` makes the delete succeed whether or not it existed.
    let _ = writeln!(
        s,
        "add table inet {table}\ndelete table inet {table}\ntable inet {table} {{"
    );
    s.push_str(
        "  chain forward {\n    type filter hook forward priority filter - 10; policy accept;\n",
    );
    for n in nets.iter().filter(|n| n.internal) {
        let _ = writeln!(
            s,
            "    iifname \"{b}\" oifname != \"{b}\" drop\n    oifname \"{b}\" iifname != \"{b}\" drop",
            b = n.bridge
        );
    }
    s.push_str("  }\n");
    s.push_str(
        "  chain postrouting {\n    type nat hook postrouting priority srcnat; policy accept;\n",
    );
    for n in nets.iter().filter(|n| !n.internal) {
        let _ = writeln!(
            s,
            "    ip saddr {} oifname != \"{}\" masquerade",
            n.subnet, n.bridge
        );
        if let Some(s6) = n.subnet6 {
            let _ = writeln!(
                s,
                "    ip6 saddr {s6} oifname != \"{}\" masquerade",
                n.bridge
            );
        }
    }
    s.push_str("  }\n  chain ports {\n");
    for p in ports {
        let m = match p.host_ip {
            IpAddr::V4(ip) if !ip.is_unspecified() => format!("ip daddr {ip} "),
            IpAddr::V4(_) => String::new(),
            IpAddr::V6(_) => continue,
        };
        let _ = writeln!(
            s,
            "    {m}{proto} dport {hp} dnat ip to {t}:{tp}",
            proto = p.proto,
            hp = p.host_port,
            t = p.target,
            tp = p.target_port
        );
    }
    s.push_str("  }\n");
    s.push_str("  chain prerouting {\n    type nat hook prerouting priority dstnat; policy accept;\n    fib daddr type local jump ports\n  }\n");
    s.push_str("  chain output {\n    type nat hook output priority -100; policy accept;\n    ip daddr != 127.0.0.0/8 fib daddr type local jump ports\n  }\n}\n");
    s
}

/// Runs an nft script in one transaction.
pub fn apply(script: &str) -> Result<()> {
    let mut child = Command::new(nft_binary())
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Error::Firewall(format!("running nft: {e} (install the nftables package)")))?;
    child.stdin.take().unwrap().write_all(script.as_bytes())?;
    let out = child.wait_with_output()?;
    if !out.status.success() {
        return Err(Error::Firewall(format!(
            "nft: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(())
}

fn nft_binary() -> &'static str {
    for p in ["/usr/sbin/nft", "/sbin/nft", "/usr/bin/nft"] {
        if Path::new(p).exists() {
            return p;
        }
    }
    "nft"
}

/// Removes the table (idempotent).
pub fn remove_table(table: &str) -> Result<()> {
    apply(&format!(
        "add table inet {table}\ndelete table inet {table}\n"
    ))
}

/// Whether our table exists and the rules it holds (for tests and `gc`).
pub fn list_table(table: &str) -> Option<String> {
    let out = Command::new(nft_binary())
        .args(["list", "table", "inet", table])
        .stderr(Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

const COMMENT: &str = "berth bridges";

/// Makes forwarding to and from `berth+` bridges pass a foreign FORWARD drop policy (Docker's):
/// inserts accept rules into `DOCKER-USER` (Docker's documented place for them) or, without
/// Docker, into `FORWARD` when its policy is DROP. Idempotent; does nothing without iptables.
pub fn ensure_forward_accept() -> Result<()> {
    let ipt = ["/usr/sbin/iptables", "/sbin/iptables"]
        .into_iter()
        .find(|p| Path::new(p).exists());
    let Some(ipt) = ipt else { return Ok(()) };
    let run = |args: &[&str]| -> bool {
        Command::new(ipt)
            .args(["-w", "5"])
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    };
    let chain = if run(&["-t", "filter", "-n", "-L", "DOCKER-USER"]) {
        "DOCKER-USER"
    } else {
        let out = Command::new(ipt)
            .args(["-w", "5", "-t", "filter", "-S", "FORWARD"])
            .stderr(Stdio::null())
            .output();
        match out {
            Ok(o) if String::from_utf8_lossy(&o.stdout).contains("-P FORWARD DROP") => "FORWARD",
            _ => return Ok(()),
        }
    };
    let rules: [&[&str]; 2] = [
        &[
            "-i",
            "berth+",
            "-m",
            "comment",
            "--comment",
            COMMENT,
            "-j",
            "ACCEPT",
        ],
        &[
            "-o",
            "berth+",
            "-m",
            "conntrack",
            "--ctstate",
            "RELATED,ESTABLISHED,DNAT",
            "-m",
            "comment",
            "--comment",
            COMMENT,
            "-j",
            "ACCEPT",
        ],
    ];
    for r in rules {
        let mut check = vec!["-C", chain];
        check.extend_from_slice(r);
        if !run(&check) {
            let mut ins = vec!["-I", chain, "1"];
            ins.extend_from_slice(r);
            if !run(&ins) {
                return Err(Error::Firewall(format!(
                    "could not add a forward accept rule for berth bridges to iptables chain {chain}"
                )));
            }
        }
    }
    Ok(())
}
