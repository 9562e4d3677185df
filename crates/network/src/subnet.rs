//! IPv4 subnets: parsing, containment, overlap, the host's routes.

use crate::{Error, Result};
use std::fmt;
use std::net::Ipv4Addr;
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
}
