//! `-p/--publish` and `-P/--publish-all`: Docker's port syntax, host port reservation.

use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::OwnedFd;

/// `tcp` or `udp`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    Tcp,
    Udp,
}

impl Proto {
    pub fn as_str(&self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        }
    }
    pub fn parse(s: &str) -> Result<Proto> {
        match s.to_ascii_lowercase().as_str() {
            "" | "tcp" => Ok(Proto::Tcp),
            "udp" => Ok(Proto::Udp),
            _ => Err(Error::Invalid(format!("invalid proto: {s}"))),
        }
    }
}

/// One requested mapping after range expansion: host port `None` (or a range to pick from)
/// means "any free port".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortSpec {
    /// `None`: every address: `0.0.0.0` and, when the host has IPv6, `[::]` too (Docker
    /// 20.10's two bindings). An address given, `0.0.0.0` included, is bound alone.
    pub host_ip: Option<IpAddr>,
    /// Inclusive host port range to choose from; `(0, 0)` for a random port.
    pub host_ports: (u16, u16),
    pub container_port: u16,
    pub proto: Proto,
}

/// A published port as Docker reports it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PortBinding {
    pub container_port: u16,
    pub proto: Proto,
    /// `0.0.0.0`, `::` or the address given.
    pub host_ip: IpAddr,
    pub host_port: u16,
}

impl PortBinding {
    /// `ps` column entry: `0.0.0.0:8080->80/tcp`, `:::8080->80/tcp`.
    pub fn ps_string(&self) -> String {
        format!(
            "{}->{}/{}",
            self.host_addr(),
            self.container_port,
            self.proto.as_str()
        )
    }
    /// `host:port` as Docker 20.10's `port` and `ps` print it: IPv6 without brackets
    /// (`:::8080`, `::1:8080`).
    pub fn host_addr(&self) -> String {
        format!("{}:{}", self.host_ip, self.host_port)
    }
    /// Docker's `NetworkSettings.Ports` key, `80/tcp`.
    pub fn key(&self) -> String {
        format!("{}/{}", self.container_port, self.proto.as_str())
    }
}

fn parse_range(s: &str, what: &str) -> Result<(u16, u16)> {
    let bad = || Error::Invalid(format!("invalid {what}: {s}"));
    let num = |x: &str| -> Result<u16> {
        let n: u32 = x.trim().parse().map_err(|_| bad())?;
        if n == 0 || n > 65535 {
            return Err(bad());
        }
        Ok(n as u16)
    };
    match s.split_once('-') {
        Some((a, b)) => {
            let (a, b) = (num(a)?, num(b)?);
            if b < a {
                return Err(Error::Invalid(format!(
                    "invalid range specified for {what}: {s}"
                )));
            }
            Ok((a, b))
        }
        None => {
            let n = num(s)?;
            Ok((n, n))
        }
    }
}

/// Parses one `-p` value: `[ip:][hostPort:]containerPort[/tcp|udp]`, ports or ranges
/// (`8000-8010:80-90`, `8000-8010:80` picks one free port of the range, `[::1]:80:80`).
pub fn parse_publish(spec: &str) -> Result<Vec<PortSpec>> {
    let (body, proto) = match spec.rsplit_once('/') {
        Some((b, p)) => (b, Proto::parse(p)?),
        None => (spec, Proto::Tcp),
    };
    // Split off a bracketed IPv6 address first.
    let (ip_part, rest) = if let Some(r) = body.strip_prefix('[') {
        let (ip, rest) = r
            .split_once(']')
            .ok_or_else(|| Error::Invalid(format!("invalid ip address: {body}")))?;
        (Some(ip), rest.strip_prefix(':').unwrap_or(rest))
    } else {
        (None, body)
    };
    let parts: Vec<&str> = rest.split(':').collect();
    let (ip, host, cont) = match (ip_part, parts.as_slice()) {
        (None, [c]) => (None, "", *c),
        (None, [h, c]) => (None, *h, *c),
        (None, [i, h, c]) => (Some(*i), *h, *c),
        (Some(i), [h, c]) => (Some(i), *h, *c),
        (Some(i), [c]) => (Some(i), "", *c),
        _ => {
            return Err(Error::Invalid(format!(
                "invalid port format for --publish: {spec}"
            )))
        }
    };
    let host_ip = match ip {
        None | Some("") => None,
        Some(i) => Some(
            i.parse::<IpAddr>()
                .map_err(|_| Error::Invalid(format!("invalid ip address: {i}")))?,
        ),
    };
    if cont.is_empty() {
        return Err(Error::Invalid(format!("no port specified: {spec}<empty>")));
    }
    let c = parse_range(cont, "containerPort")?;
    let h = if host.is_empty() {
        None
    } else {
        Some(parse_range(host, "hostPort")?)
    };
    let n = (c.1 - c.0) as usize + 1;
    let mut out = Vec::with_capacity(n);
    match h {
        None => {
            for p in c.0..=c.1 {
                out.push(PortSpec {
                    host_ip,
                    host_ports: (0, 0),
                    container_port: p,
                    proto,
                });
            }
        }
        Some(h) if n == 1 => out.push(PortSpec {
            host_ip,
            host_ports: h,
            container_port: c.0,
            proto,
        }),
        Some(h) => {
            if (h.1 - h.0) as usize + 1 != n {
                return Err(Error::Invalid(format!(
                    "invalid ranges specified for container and host Ports: {cont} and {host}"
                )));
            }
            for i in 0..n as u16 {
                out.push(PortSpec {
                    host_ip,
                    host_ports: (h.0 + i, h.0 + i),
                    container_port: c.0 + i,
                    proto,
                });
            }
        }
    }
    Ok(out)
}

/// `-P`: every exposed port (`80/tcp`, `53/udp`, `8000-8002`) on a random host port.
pub fn publish_all(exposed: &[String]) -> Result<Vec<PortSpec>> {
    let mut out = Vec::new();
    for e in exposed {
        let (p, proto) = match e.split_once('/') {
            Some((p, pr)) => (p, Proto::parse(pr)?),
            None => (e.as_str(), Proto::Tcp),
        };
        let (a, b) = parse_range(p, "containerPort")?;
        for port in a..=b {
            out.push(PortSpec {
                host_ip: None,
                host_ports: (0, 0),
                container_port: port,
                proto,
            });
        }
    }
    Ok(out)
}

/// A reserved host port: the bound socket (kept open by the port proxy) and its binding.
#[derive(Debug)]
pub struct Reserved {
    pub binding: PortBinding,
    pub fd: OwnedFd,
}

/// Whether the host has IPv6: an address on some interface (`/proc/net/if_inet6` lists one
/// a line; the file is empty with IPv6 disabled by sysctl and missing when the kernel has none).
pub fn host_has_ipv6() -> bool {
    has_ipv6_addresses(&std::fs::read_to_string("/proc/net/if_inet6").unwrap_or_default())
}

fn has_ipv6_addresses(if_inet6: &str) -> bool {
    if_inet6.lines().any(|l| !l.trim().is_empty())
}

/// Binds one socket as the proxy will serve it. IPv6 sockets are `IPV6_V6ONLY`, as Go's
/// `tcp6` listeners (docker-proxy) are, so `[::]:P` and `0.0.0.0:P` are two sockets that can
/// coexist; TCP sockets take `SO_REUSEADDR` as std's listeners do.
fn bind_one(ip: IpAddr, port: u16, proto: Proto) -> std::io::Result<(OwnedFd, u16)> {
    use socket2::{Domain, Protocol, Socket, Type};
    let addr = SocketAddr::new(ip, port);
    let (ty, pr) = match proto {
        Proto::Tcp => (Type::STREAM, Protocol::TCP),
        Proto::Udp => (Type::DGRAM, Protocol::UDP),
    };
    let s = Socket::new(Domain::for_address(addr), ty, Some(pr))?;
    if ip.is_ipv6() {
        s.set_only_v6(true)?;
    }
    if proto == Proto::Tcp {
        s.set_reuse_address(true)?;
    }
    s.bind(&addr.into())?;
    if proto == Proto::Tcp {
        s.listen(128)?;
    }
    let p = s
        .local_addr()?
        .as_socket()
        .map(|a| a.port())
        .unwrap_or(port);
    Ok((s.into(), p))
}

fn in_use_error(ip: IpAddr, port: u16, proto: Proto, e: std::io::Error) -> Error {
    let fam = if ip.is_ipv4() { "4" } else { "6" };
    let what = if e.kind() == std::io::ErrorKind::AddrInUse {
        "bind: address already in use".to_string()
    } else {
        format!("bind: {e}")
    };
    Error::PortInUse(format!(
        "Error starting userland proxy: listen {}{fam} {}: {what}",
        proto.as_str(),
        SocketAddr::new(ip, port)
    ))
}

/// Binds `port` (0: a random one) on every address in `ips`, the same port on each.
fn bind_all(ips: &[IpAddr], port: u16, proto: Proto) -> Result<Vec<(IpAddr, OwnedFd, u16)>> {
    // A random port the first family got may be taken in the other: try a few others.
    let tries = if port == 0 && ips.len() > 1 { 16 } else { 1 };
    let mut last = None;
    for _ in 0..tries {
        let mut got: Vec<(IpAddr, OwnedFd, u16)> = Vec::with_capacity(ips.len());
        let mut want = port;
        let mut failed = None;
        for ip in ips {
            match bind_one(*ip, want, proto) {
                Ok((fd, p)) => {
                    want = p;
                    got.push((*ip, fd, p));
                }
                Err(e) => {
                    failed = Some(in_use_error(*ip, want, proto, e));
                    break;
                }
            }
        }
        match failed {
            None => return Ok(got),
            Some(e) => last = Some(e),
        }
    }
    Err(last.expect("at least one try"))
}

/// Binds every requested host port (random ones from the kernel's ephemeral range), so a port
/// in use fails here, before anything else is set up, with Docker's message. A spec without an
/// address is bound on `0.0.0.0` and, when the host has IPv6, on `[::]` (the same port on
/// both). On error, what was bound is closed again.
pub fn reserve(specs: &[PortSpec]) -> Result<Vec<Reserved>> {
    reserve_with(
        specs,
        specs.iter().any(|s| s.host_ip.is_none()) && host_has_ipv6(),
    )
}

fn reserve_with(specs: &[PortSpec], ipv6: bool) -> Result<Vec<Reserved>> {
    let mut out: Vec<Reserved> = Vec::with_capacity(specs.len());
    for s in specs {
        let ips: Vec<IpAddr> = match s.host_ip {
            Some(ip) => vec![ip],
            None if ipv6 => vec![
                IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                IpAddr::V6(Ipv6Addr::UNSPECIFIED),
            ],
            None => vec![IpAddr::V4(Ipv4Addr::UNSPECIFIED)],
        };
        let bound = if s.host_ports.0 == s.host_ports.1 {
            bind_all(&ips, s.host_ports.0, s.proto)?
        } else {
            let mut res = None;
            for p in s.host_ports.0..=s.host_ports.1 {
                match bind_all(&ips, p, s.proto) {
                    Ok(b) => {
                        res = Some(Ok(b));
                        break;
                    }
                    Err(e) => res = Some(Err(e)),
                }
            }
            res.expect("a range has at least one port")?
        };
        for (ip, fd, port) in bound {
            out.push(Reserved {
                binding: PortBinding {
                    container_port: s.container_port,
                    proto: s.proto,
                    host_ip: ip,
                    host_port: port,
                },
                fd,
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn parses_docker_forms() {
        let p = parse_publish("8080:80").unwrap();
        assert_eq!(
            p,
            vec![PortSpec {
                host_ip: None,
                host_ports: (8080, 8080),
                container_port: 80,
                proto: Proto::Tcp
            }]
        );
        let p = parse_publish("127.0.0.1::53/udp").unwrap();
        assert_eq!(p[0].host_ip, Some("127.0.0.1".parse().unwrap()));
        assert_eq!(p[0].host_ports, (0, 0));
        assert_eq!(p[0].proto, Proto::Udp);
        assert_eq!(parse_publish("80").unwrap()[0].host_ports, (0, 0));
        let p = parse_publish("8000-8002:80-82").unwrap();
        assert_eq!(p.len(), 3);
        assert_eq!((p[2].host_ports, p[2].container_port), ((8002, 8002), 82));
        assert_eq!(
            parse_publish("9000-9010:80").unwrap()[0].host_ports,
            (9000, 9010)
        );
        assert_eq!(
            parse_publish("[::1]:80:80").unwrap()[0].host_ip,
            Some("::1".parse().unwrap())
        );
        for bad in [
            "abc",
            "80/sctpx",
            "99999:80",
            "1.2.3:80:80",
            "8000-8001:80-82",
            "a:b:c:d",
            "80-70",
        ] {
            assert!(parse_publish(bad).is_err(), "{bad}");
        }
        assert_eq!(
            publish_all(&["80/tcp".into(), "53/udp".into()])
                .unwrap()
                .len(),
            2
        );
    }
    #[test]
    fn binding_strings() {
        let b = PortBinding {
            container_port: 80,
            proto: Proto::Tcp,
            host_ip: "0.0.0.0".parse().unwrap(),
            host_port: 8080,
        };
        assert_eq!(b.ps_string(), "0.0.0.0:8080->80/tcp");
        assert_eq!(b.key(), "80/tcp");
        let b6 = PortBinding {
            host_ip: "::".parse().unwrap(),
            ..b.clone()
        };
        assert_eq!(b6.ps_string(), ":::8080->80/tcp");
        assert_eq!(b6.host_addr(), ":::8080");
    }

    #[test]
    fn ipv6_detection() {
        assert!(!has_ipv6_addresses(""));
        assert!(!has_ipv6_addresses("\n"));
        assert!(has_ipv6_addresses(
            "00000000000000000000000000000001 01 80 10 80       lo\n"
        ));
    }

    /// Loopback only, so nothing is exposed: `[::1]` and `127.0.0.1` stand in for `[::]` and
    /// `0.0.0.0` in `bind_all`, which the unspecified specs use.
    #[test]
    fn same_port_on_both_families() {
        if !host_has_ipv6() {
            eprintln!("skipped: the host has no IPv6");
            return;
        }
        let ips: [IpAddr; 2] = ["127.0.0.1".parse().unwrap(), "::1".parse().unwrap()];
        let got = bind_all(&ips, 0, Proto::Tcp).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].2, got[1].2);
        assert_ne!(got[0].2, 0);
        // Taken on one family: the fixed port fails naming that family, as docker-proxy does.
        let port = got[0].2;
        let only6: [IpAddr; 1] = ["::1".parse().unwrap()];
        let e = bind_all(&only6, port, Proto::Tcp).unwrap_err().to_string();
        assert_eq!(
            e,
            format!(
                "Error starting userland proxy: listen tcp6 [::1]:{port}: bind: address already in use"
            )
        );
        // Without IPv6 an unspecified spec is bound on 0.0.0.0 alone.
        let spec = PortSpec {
            host_ip: None,
            host_ports: (0, 0),
            container_port: 80,
            proto: Proto::Udp,
        };
        let r = reserve_with(std::slice::from_ref(&spec), false).unwrap();
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].binding.host_ip, IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        let r = reserve_with(&[spec], true).unwrap();
        assert_eq!(r.len(), 2);
        assert_eq!(r[1].binding.host_ip, IpAddr::V6(Ipv6Addr::UNSPECIFIED));
        assert_eq!(r[0].binding.host_port, r[1].binding.host_port);
    }
}
