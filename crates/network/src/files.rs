//! Per-container `/etc/hosts`, `/etc/hostname` and `/etc/resolv.conf` content, as Docker
//! writes them.

use crate::{Error, Result};
use std::net::{IpAddr, Ipv4Addr};

/// The address of the embedded DNS responder inside containers on user-defined networks.
pub const EMBEDDED_DNS: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 11);

/// Docker's fallback resolvers when the host has only loopback ones.
pub const FALLBACK_DNS: [&str; 2] = ["8.8.8.8", "8.8.4.4"];

/// One `--add-host name:ip` (`host-gateway` is replaced by the caller's gateway address).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtraHost {
    pub name: String,
    pub ip: String,
}

/// Parses `--add-host NAME:IP` (also `NAME=IP`, and `[v6]` addresses). `host-gateway` becomes
/// `gateway` when given.
pub fn parse_add_host(s: &str, gateway: Option<Ipv4Addr>) -> Result<ExtraHost> {
    let bad = || Error::Invalid(format!("bad format for add-host: {s:?}"));
    let (name, ip) = s
        .split_once('=')
        .or_else(|| s.split_once(':'))
        .ok_or_else(bad)?;
    if name.is_empty() {
        return Err(bad());
    }
    let ip = ip.trim_start_matches('[').trim_end_matches(']');
    let ip = if ip == "host-gateway" {
        gateway
            .ok_or_else(|| Error::Invalid("host-gateway needs a bridge network".into()))?
            .to_string()
    } else {
        ip.parse::<IpAddr>()
            .map_err(|_| Error::Invalid(format!("invalid IP address in add-host: {ip:?}")))?
            .to_string()
    };
    Ok(ExtraHost {
        name: name.to_string(),
        ip,
    })
}

/// `/etc/hosts`: Docker's header, the extra hosts, then the container's own addresses with its
/// hostname (and aliases).
pub fn hosts(extra: &[ExtraHost], own: &[(IpAddr, Vec<String>)]) -> String {
    let mut s = String::from(
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n",
    );
    for e in extra {
        s.push_str(&format!("{}\t{}\n", e.ip, e.name));
    }
    for (ip, names) in own {
        s.push_str(&format!("{}\t{}\n", ip, names.join(" ")));
    }
    s
}

/// `/etc/hostname`.
pub fn hostname(name: &str) -> String {
    format!("{name}\n")
}

/// What [`resolv_conf`] produced: the file and the upstream servers the embedded DNS forwards to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolv {
    pub content: String,
    pub upstreams: Vec<IpAddr>,
}

fn is_loopback(ip: &str) -> bool {
    ip.parse::<IpAddr>()
        .map(|i| i.is_loopback())
        .unwrap_or(false)
}

/// Builds a container's resolv.conf from the host's (`host`), as Docker does:
/// - `--dns` servers (`dns`) replace the host's nameservers; `dns_search`/`dns_options` replace
///   `search`/`options` lines;
/// - on the default bridge (`embedded` false) loopback nameservers (unreachable from the
///   container) are dropped; if none remain, Google's public resolvers are used;
/// - on user-defined networks (`embedded` true) the only nameserver is 127.0.0.11 and the
///   servers are returned as upstreams for the embedded DNS (which forwards from the host's
///   namespace, so loopback resolvers keep working).
pub fn resolv_conf(
    host: &str,
    dns: &[String],
    dns_search: &[String],
    dns_options: &[String],
    embedded: bool,
) -> Resolv {
    let mut servers: Vec<String> = Vec::new();
    let mut search: Vec<String> = Vec::new();
    let mut options: Vec<String> = Vec::new();
    for line in host.lines() {
        let line = line.trim();
        let mut f = line.split_whitespace();
        match f.next() {
            Some("nameserver") => servers.extend(f.next().map(String::from)),
            Some("search") | Some("domain") => search = f.map(String::from).collect(),
            Some("options") => options.extend(f.map(String::from)),
            _ => {}
        }
    }
    if !dns.is_empty() {
        servers = dns.to_vec();
    }
    if !dns_search.is_empty() {
        search = dns_search.iter().filter(|s| *s != ".").cloned().collect();
    }
    if !dns_options.is_empty() {
        options = dns_options.to_vec();
    }
    let mut out = String::new();
    let upstreams: Vec<IpAddr>;
    if embedded {
        upstreams = servers.iter().filter_map(|s| s.parse().ok()).collect();
        out.push_str(&format!("nameserver {EMBEDDED_DNS}\n"));
        if !search.is_empty() {
            out.push_str(&format!("search {}\n", search.join(" ")));
        }
        if !options.iter().any(|o| o.starts_with("ndots:")) {
            options.insert(0, "ndots:0".into());
        }
    } else {
        servers.retain(|s| !is_loopback(s));
        if servers.is_empty() {
            servers = FALLBACK_DNS.iter().map(|s| s.to_string()).collect();
        }
        upstreams = servers.iter().filter_map(|s| s.parse().ok()).collect();
        for s in &servers {
            out.push_str(&format!("nameserver {s}\n"));
        }
        if !search.is_empty() {
            out.push_str(&format!("search {}\n", search.join(" ")));
        }
    }
    if !options.is_empty() {
        out.push_str(&format!("options {}\n", options.join(" ")));
    }
    Resolv {
        content: out,
        upstreams,
    }
}

/// The host's resolv.conf (systemd-resolved's upstream list when the stub 127.0.0.53 is used).
pub fn host_resolv_conf() -> String {
    let main = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    if main.contains("127.0.0.53") {
        if let Ok(s) = std::fs::read_to_string("/run/systemd/resolve/resolv.conf") {
            return s;
        }
    }
    main
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn resolv_drops_loopback() {
        let host = "nameserver 127.0.0.1\nnameserver 10.1.1.1\nsearch example.org\noptions edns0\n";
        let r = resolv_conf(host, &[], &[], &[], false);
        assert_eq!(
            r.content,
            "nameserver 10.1.1.1\nsearch example.org\noptions edns0\n"
        );
        let r = resolv_conf("nameserver 127.0.0.53\n", &[], &[], &[], false);
        assert!(r
            .content
            .contains("nameserver 8.8.8.8\nnameserver 8.8.4.4\n"));
        let r = resolv_conf(host, &[], &[], &[], true);
        assert_eq!(
            r.content,
            "nameserver 127.0.0.11\nsearch example.org\noptions ndots:0 edns0\n"
        );
        assert_eq!(r.upstreams.len(), 2);
        let r = resolv_conf(host, &["1.1.1.1".into()], &[], &[], false);
        assert!(r.content.starts_with("nameserver 1.1.1.1\n"));
    }
    #[test]
    fn hosts_and_add_host() {
        let e = parse_add_host("db:10.0.0.5", None).unwrap();
        let g = parse_add_host("gw:host-gateway", Some(Ipv4Addr::new(10, 9, 0, 1))).unwrap();
        assert_eq!(g.ip, "10.9.0.1");
        assert!(parse_add_host("nocolon", None).is_err());
        assert!(parse_add_host("x:notanip", None).is_err());
        let h = hosts(
            &[e],
            &[(Ipv4Addr::new(10, 9, 0, 2).into(), vec!["abc".into()])],
        );
        assert!(h.starts_with("127.0.0.1\tlocalhost\n"));
        assert!(h.ends_with("10.0.0.5\tdb\n10.9.0.2\tabc\n"));
    }
}
