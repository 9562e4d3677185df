//! IPv4 and IPv6 subnets: parsing, containment, overlap, the host's routes.

use crate::{Error, Result};
use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// An IPv4 network `addr/prefix` (host bits zero).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subnet {
    pub addr: Ipv4Addr,
    pub prefix: u8,
}

impl Subnet {
    pub fn new(addr: Ipv4Addr, prefix: u8) -> Subnet {
        let s = Subnet { addr, prefix };
        Subnet {
            addr: Ipv4Addr::from(u32::from(addr) & s.mask()),
            prefix,
        }
    }
    pub fn mask(&self) -> u32 {
        if self.prefix == 0 {
            0
        } else {
            u32::MAX << (32 - self.prefix)
        }
    }
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & self.mask() == u32::from(self.addr)
    }
    pub fn overlaps(&self, other: &Subnet) -> bool {
        let p = self.prefix.min(other.prefix);
        let m = Subnet {
            addr: self.addr,
            prefix: p,
        }
        .mask();
        u32::from(self.addr) & m == u32::from(other.addr) & m
    }
    /// First and last usable host address (network and broadcast excluded).
    pub fn host_range(&self) -> (u32, u32) {
        let base = u32::from(self.addr);
        let last = base | !self.mask();
        if self.prefix >= 31 {
            (base, last)
        } else {
            (base + 1, last - 1)
        }
    }
    /// The conventional gateway: the first host address.
    pub fn first_host(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.host_range().0)
    }
}

impl fmt::Display for Subnet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl FromStr for Subnet {
    type Err = Error;
    fn from_str(s: &str) -> Result<Subnet> {
        let bad = || {
            Error::Invalid(format!(
                "invalid subnet {s:?}: expected an IPv4 CIDR like 10.1.0.0/24"
            ))
        };
        let (a, p) = s.split_once('/').ok_or_else(bad)?;
        let addr: Ipv4Addr = a.parse().map_err(|_| bad())?;
        let prefix: u8 = p.parse().map_err(|_| bad())?;
        if !(8..=30).contains(&prefix) {
            return Err(Error::Invalid(format!(
                "invalid subnet {s}: the prefix length must be between 8 and 30"
            )));
        }
        let n = Subnet::new(addr, prefix);
        if n.addr != addr {
            return Err(Error::Invalid(format!(
                "invalid subnet {s}: host bits are set (did you mean {n}?)"
            )));
        }
        Ok(n)
    }
}

/// One IPv4 route of the host's main table: destination and device.
#[derive(Debug, Clone)]
pub struct HostRoute {
    pub dest: Subnet,
    pub dev: String,
}

/// The host's IPv4 routes (from `/proc/net/route`), default route excluded.
pub fn host_routes() -> Vec<HostRoute> {
    let Ok(text) = std::fs::read_to_string("/proc/net/route") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 8 {
            continue;
        }
        let (Ok(d), Ok(m)) = (u32::from_str_radix(f[1], 16), u32::from_str_radix(f[7], 16)) else {
            continue;
        };
        let mask = u32::from_be(m);
        if mask == 0 {
            continue;
        }
        out.push(HostRoute {
            dest: Subnet::new(Ipv4Addr::from(u32::from_be(d)), mask.count_ones() as u8),
            dev: f[0].to_string(),
        });
    }
    out
}

/// An IPv6 network `addr/prefix` (host bits zero), for `--ipv6` networks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subnet6 {
    pub addr: Ipv6Addr,
    pub prefix: u8,
}

impl Subnet6 {
    pub fn new(addr: Ipv6Addr, prefix: u8) -> Subnet6 {
        let s = Subnet6 { addr, prefix };
        Subnet6 {
            addr: Ipv6Addr::from(u128::from(addr) & s.mask()),
            prefix,
        }
    }
    pub fn mask(&self) -> u128 {
        if self.prefix == 0 {
            0
        } else {
            u128::MAX << (128 - self.prefix as u32)
        }
    }
    pub fn contains(&self, ip: Ipv6Addr) -> bool {
        u128::from(ip) & self.mask() == u128::from(self.addr)
    }
    pub fn overlaps(&self, other: &Subnet6) -> bool {
        let m = Subnet6::new(self.addr, self.prefix.min(other.prefix)).mask();
        u128::from(self.addr) & m == u128::from(other.addr) & m
    }
    /// First and last address containers may take (the subnet-router anycast `::` excluded).
    pub fn host_range(&self) -> (u128, u128) {
        let base = u128::from(self.addr);
        (base + 1, base | !self.mask())
    }
    /// The conventional gateway: `…::1`, as Docker's IPAM picks it.
    pub fn first_host(&self) -> Ipv6Addr {
        Ipv6Addr::from(self.host_range().0)
    }
}

impl fmt::Display for Subnet6 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl FromStr for Subnet6 {
    type Err = Error;
    fn from_str(s: &str) -> Result<Subnet6> {
        let bad = || {
            Error::Invalid(format!(
                "invalid subnet {s:?}: expected an IPv6 CIDR like fd00:1::/64"
            ))
        };
        let (a, p) = s.split_once('/').ok_or_else(bad)?;
        let addr: Ipv6Addr = a.parse().map_err(|_| bad())?;
        let prefix: u8 = p.parse().map_err(|_| bad())?;
        if !(8..=126).contains(&prefix) {
            return Err(Error::Invalid(format!(
                "invalid subnet {s}: the prefix length must be between 8 and 126"
            )));
        }
        let n = Subnet6::new(addr, prefix);
        if n.addr != addr {
            return Err(Error::Invalid(format!(
                "invalid subnet {s}: host bits are set (did you mean {n}?)"
            )));
        }
        Ok(n)
    }
}

/// One IPv6 route of the host (every table, from `/proc/net/ipv6_route`): destination and
/// device; default routes excluded.
#[derive(Debug, Clone)]
pub struct HostRoute6 {
    pub dest: Subnet6,
    pub dev: String,
}

/// The host's IPv6 routes, local addresses (`/128`) included.
pub fn host_routes6() -> Vec<HostRoute6> {
    parse_ipv6_route(&std::fs::read_to_string("/proc/net/ipv6_route").unwrap_or_default())
}

fn parse_ipv6_route(text: &str) -> Vec<HostRoute6> {
    let mut out = Vec::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 10 {
            continue;
        }
        let (Ok(d), Ok(p)) = (u128::from_str_radix(f[0], 16), u8::from_str_radix(f[1], 16)) else {
            continue;
        };
        if p == 0 || p > 128 {
            continue;
        }
        out.push(HostRoute6 {
            dest: Subnet6::new(Ipv6Addr::from(d), p),
            dev: f[9].to_string(),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn parse_and_overlap() {
        let a: Subnet = "10.1.0.0/16".parse().unwrap();
        let b: Subnet = "10.1.5.0/24".parse().unwrap();
        let c: Subnet = "10.2.0.0/24".parse().unwrap();
        assert!(a.overlaps(&b) && b.overlaps(&a));
        assert!(!a.overlaps(&c));
        assert!("10.1.0.1/24".parse::<Subnet>().is_err());
        assert!("10.1.0.0".parse::<Subnet>().is_err());
        assert_eq!(b.first_host(), Ipv4Addr::new(10, 1, 5, 1));
        assert_eq!(b.host_range().1, u32::from(Ipv4Addr::new(10, 1, 5, 254)));
    }

    #[test]
    fn ipv6_parse_overlap_and_routes() {
        let a: Subnet6 = "fd00:1::/64".parse().unwrap();
        let b: Subnet6 = "fd00:1::/48".parse().unwrap();
        let c: Subnet6 = "fd00::/64".parse().unwrap();
        assert!(a.overlaps(&b) && b.overlaps(&a));
        assert!(!a.overlaps(&c));
        assert_eq!(a.first_host(), "fd00:1::1".parse::<Ipv6Addr>().unwrap());
        assert!(a.contains("fd00:1::ffff".parse().unwrap()));
        assert!(!a.contains("fd00:2::1".parse().unwrap()));
        assert!("fd00:1::1/64".parse::<Subnet6>().is_err());
        assert!("fd00:1::/127".parse::<Subnet6>().is_err());
        assert!("10.0.0.0/8".parse::<Subnet6>().is_err());
        let routes = parse_ipv6_route(
            "fd000000000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001     eth0\n\
             00000000000000000000000000000000 00 00000000000000000000000000000000 00 fd000000000000000000000000000001 00000400 00000001 00000000 00000003     eth0\n",
        );
        assert_eq!(routes.len(), 1);
        assert_eq!(routes[0].dest, c);
        assert_eq!(routes[0].dev, "eth0");
    }
}
