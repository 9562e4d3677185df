//! Networks, endpoints and published ports in berth.db, and the host state derived from them.

use crate::nft::{FwNetwork, FwPort};
use crate::ports::{PortBinding, PortSpec, Proto, Reserved};
use crate::proxy::{DnsConfig, ProxyConfig, ProxyPort};
use crate::subnet::{host_routes, host_routes6, Subnet, Subnet6};
use crate::{netlink, nft, Error, Result};
use rusqlite::{params, Connection, OptionalExtension, Transaction, TransactionBehavior};
use serde::{Deserialize, Serialize};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Name of the default bridge network.
pub const DEFAULT_NETWORK: &str = "bridge";
/// Device of the default bridge network.
pub const DEFAULT_BRIDGE: &str = "berth0";

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS net_networks (
  id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, driver TEXT NOT NULL,
  subnet TEXT, gateway TEXT, bridge TEXT, internal INTEGER NOT NULL DEFAULT 0,
  created TEXT NOT NULL, labels TEXT NOT NULL DEFAULT '{}');
CREATE TABLE IF NOT EXISTS net_endpoints (
  container_id TEXT NOT NULL, network_id TEXT NOT NULL REFERENCES net_networks(id),
  container_name TEXT NOT NULL, aliases TEXT NOT NULL, ip TEXT NOT NULL, mac TEXT NOT NULL,
  host_veth TEXT NOT NULL, ifname TEXT NOT NULL, netns TEXT NOT NULL,
  PRIMARY KEY (container_id, network_id), UNIQUE (network_id, ip));
CREATE TABLE IF NOT EXISTS net_ports (
  container_id TEXT NOT NULL, host_ip TEXT NOT NULL, host_port INTEGER NOT NULL,
  proto TEXT NOT NULL, container_port INTEGER NOT NULL, target_ip TEXT NOT NULL,
  PRIMARY KEY (host_ip, host_port, proto));
";

/// Columns added after the first release, for `--ipv6` networks: (table, column, type).
/// Older databases get them through `ALTER TABLE` when opened.
const ADDED_COLUMNS: [(&str, &str, &str); 4] = [
    ("net_networks", "ipv6", "INTEGER NOT NULL DEFAULT 0"),
    ("net_networks", "subnet6", "TEXT"),
    ("net_networks", "gateway6", "TEXT"),
    ("net_endpoints", "ip6", "TEXT"),
];

fn add_columns(db: &Connection) -> Result<()> {
    for (table, col, ty) in ADDED_COLUMNS {
        let has: bool = db.query_row(
            &format!("SELECT COUNT(*) FROM pragma_table_info('{table}') WHERE name = ?1"),
            [col],
            |r| r.get::<_, i64>(0),
        )? > 0;
        if has {
            continue;
        }
        match db.execute_batch(&format!("ALTER TABLE {table} ADD COLUMN {col} {ty}")) {
            Ok(()) => {}
            // Another process added it in between.
            Err(e) if e.to_string().contains("duplicate column name") => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// A network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Network {
    pub id: String,
    pub name: String,
    /// `bridge`, `host` or `null`.
    pub driver: String,
    pub subnet: Option<String>,
    pub gateway: Option<String>,
    /// Bridge device (`berth0`, `berth-<id>`).
    pub bridge: Option<String>,
    pub internal: bool,
    /// RFC 3339.
    pub created: String,
    pub labels: std::collections::BTreeMap<String, String>,
    /// `--ipv6`: dual stack, with `subnet6`/`gateway6` beside the IPv4 pool.
    #[serde(default)]
    pub ipv6: bool,
    #[serde(default)]
    pub subnet6: Option<String>,
    #[serde(default)]
    pub gateway6: Option<String>,
}

impl Network {
    /// Predefined networks cannot be removed and have no embedded DNS.
    pub fn is_predefined(&self) -> bool {
        matches!(self.name.as_str(), "bridge" | "host" | "none")
    }
    pub fn subnet(&self) -> Option<Subnet> {
        self.subnet.as_deref().and_then(|s| s.parse().ok())
    }
    fn gateway_ip(&self) -> Option<Ipv4Addr> {
        self.gateway.as_deref().and_then(|s| s.parse().ok())
    }
    pub fn subnet6(&self) -> Option<Subnet6> {
        self.subnet6.as_deref().and_then(|s| s.parse().ok())
    }
    fn gateway6_ip(&self) -> Option<Ipv6Addr> {
        self.gateway6.as_deref().and_then(|s| s.parse().ok())
    }
}

/// A container's attachment to a network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    pub container_id: String,
    pub container_name: String,
    pub network_id: String,
    pub network_name: String,
    pub aliases: Vec<String>,
    pub ip: Ipv4Addr,
    pub prefix: u8,
    pub gateway: Option<Ipv4Addr>,
    /// On `--ipv6` networks: the IPv6 address, its prefix length and gateway.
    pub ip6: Option<Ipv6Addr>,
    pub prefix6: u8,
    pub gateway6: Option<Ipv6Addr>,
    /// `02:42:…` derived from the address, as Docker does.
    pub mac: String,
    pub host_veth: String,
    /// Interface name inside the container (`eth0`, …).
    pub ifname: String,
    pub netns: PathBuf,
}

/// `network create`.
#[derive(Debug, Clone, Default)]
pub struct CreateNetwork {
    pub name: String,
    pub subnet: Option<String>,
    pub gateway: Option<String>,
    pub internal: bool,
    pub labels: std::collections::BTreeMap<String, String>,
    /// `--ipv6`: needs `subnet6` (berth has no default IPv6 pool, like Docker 20.10).
    pub ipv6: bool,
    pub subnet6: Option<String>,
    pub gateway6: Option<String>,
}

impl CreateNetwork {
    /// Sorts `--subnet` and `--gateway` values (each may be given for IPv4 and for IPv6) into
    /// the request by address family; one subnet and one gateway per family.
    pub fn set_pools(&mut self, subnets: &[String], gateways: &[String]) -> Result<()> {
        let is6 = |s: &str| s.contains(':');
        for s in subnets {
            let slot = if is6(s) {
                &mut self.subnet6
            } else {
                &mut self.subnet
            };
            if slot.is_some() {
                return Err(Error::Invalid(format!(
                    "more than one {} subnet given ({} and {s}): berth takes one IPv4 and one IPv6 subnet per network",
                    if is6(s) { "IPv6" } else { "IPv4" },
                    slot.as_deref().unwrap()
                )));
            }
            *slot = Some(s.clone());
        }
        for g in gateways {
            let (slot, subnet) = if is6(g) {
                (&mut self.gateway6, &self.subnet6)
            } else {
                (&mut self.gateway, &self.subnet)
            };
            if subnet.is_none() || slot.is_some() {
                return Err(Error::Invalid(format!(
                    "every ip-range or gateway must have a corresponding subnet (gateway {g})"
                )));
            }
            *slot = Some(g.clone());
        }
        Ok(())
    }
}

/// `connect`.
#[derive(Debug, Clone, Default)]
pub struct Connect {
    pub container_id: String,
    /// Resolvable on user-defined networks (with the aliases and the short ID).
    pub container_name: String,
    /// The container's network namespace (`/proc/PID/ns/net` or a bind mount of it).
    pub netns: PathBuf,
    /// Network name, ID or unique ID prefix.
    pub network: String,
    pub aliases: Vec<String>,
    /// `--ip`: a fixed address (user-defined networks with a subnet only, as in Docker).
    pub ip: Option<Ipv4Addr>,
}

/// Whether `ip` is free for a new endpoint: not the gateway, not taken.
fn free6(ip: u128, gw: Option<Ipv6Addr>, used: &std::collections::HashSet<u128>) -> bool {
    Some(Ipv6Addr::from(ip)) != gw && !used.contains(&ip)
}

/// What [`Networking::gc`] removed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct GcReport {
    pub endpoints: usize,
    pub links: usize,
    pub ports: usize,
}

/// Host-wide names, so that a second berth root (tests) can live beside the main one.
#[derive(Debug, Clone)]
pub struct NetOptions {
    /// nftables table (family inet); `BERTH_NFT_TABLE`, default `berth`.
    pub nft_table: String,
    /// Default bridge device; `BERTH_BRIDGE_NAME`, default `berth0` (must start with `berth`).
    pub default_bridge: String,
    /// Default bridge subnet; `BERTH_BRIDGE_SUBNET`, default the first free of 10.210-250.0.0/16.
    pub default_subnet: Option<String>,
}

impl Default for NetOptions {
    fn default() -> Self {
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        NetOptions {
            nft_table: env("BERTH_NFT_TABLE").unwrap_or_else(|| nft::TABLE.into()),
            default_bridge: env("BERTH_BRIDGE_NAME").unwrap_or_else(|| DEFAULT_BRIDGE.into()),
            default_subnet: env("BERTH_BRIDGE_SUBNET"),
        }
    }
}

/// The network manager for one store (see the crate docs).
pub struct Networking<'a> {
    db: &'a Connection,
    dir: PathBuf,
    opts: NetOptions,
}

fn new_id() -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    (0..32)
        .map(|_| format!("{:02x}", rng.random::<u8>()))
        .collect()
}

fn now() -> String {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    // RFC 3339 in UTC without pulling in a date crate.
    let secs = d.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86400), secs.rem_euclid(86400));
    let (y, m, dd) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{dd:02}T{:02}:{:02}:{:02}.{:09}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_nanos()
    )
}

fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + (m <= 2) as i64, m, d)
}

/// `02:42:` + the four address bytes.
pub fn mac_for(ip: Ipv4Addr) -> [u8; 6] {
    let o = ip.octets();
    [0x02, 0x42, o[0], o[1], o[2], o[3]]
}

fn mac_string(m: [u8; 6]) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Deterministic host-side veth name for (container, network): `bv` + 12 hex digits.
pub fn host_veth_name(container_id: &str, network_id: &str) -> String {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in container_id.bytes().chain([0]).chain(network_id.bytes()) {
        h ^= b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    format!("bv{:012x}", h & 0xffff_ffff_ffff)
}

fn row_network(r: &rusqlite::Row) -> rusqlite::Result<Network> {
    let labels: String = r.get(8)?;
    Ok(Network {
        id: r.get(0)?,
        name: r.get(1)?,
        driver: r.get(2)?,
        subnet: r.get(3)?,
        gateway: r.get(4)?,
        bridge: r.get(5)?,
        internal: r.get::<_, i64>(6)? != 0,
        created: r.get(7)?,
        labels: serde_json::from_str(&labels).unwrap_or_default(),
        ipv6: r.get::<_, i64>(9)? != 0,
        subnet6: r.get(10)?,
        gateway6: r.get(11)?,
    })
}

const NET_COLS: &str =
    "id, name, driver, subnet, gateway, bridge, internal, created, labels, ipv6, subnet6, gateway6";

/// A file lock held while derived host state (nft table, DNS records) is rewritten.
struct Lock {
    _file: std::fs::File,
}
impl Lock {
    fn take(dir: &Path) -> Result<Lock> {
        std::fs::create_dir_all(dir)?;
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join("lock"))?;
        // SAFETY: flock on a valid fd; released when the file closes.
        if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) } != 0 {
            return Err(std::io::Error::last_os_error().into());
        }
        Ok(Lock { _file: f })
    }
}

fn write_atomic(path: &Path, data: &str) -> Result<()> {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, data)?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

impl<'a> Networking<'a> {
    /// Creates the tables if needed. `runroot` is berth's run root (`/run/berth`); derived host
    /// state goes to `runroot/network`.
    pub fn new(db: &'a Connection, runroot: &Path) -> Result<Self> {
        Self::with_options(db, runroot, NetOptions::default())
    }

    /// [`Networking::new`] with explicit host-wide names.
    pub fn with_options(db: &'a Connection, runroot: &Path, opts: NetOptions) -> Result<Self> {
        if !opts.default_bridge.starts_with("berth") || opts.default_bridge.len() > 15 {
            return Err(Error::Invalid(format!(
                "bridge name {:?} must start with \"berth\" and have at most 15 characters",
                opts.default_bridge
            )));
        }
        db.execute_batch(SCHEMA)?;
        add_columns(db)?;
        Ok(Networking {
            db,
            dir: runroot.join("network"),
            opts,
        })
    }

    /// The options in force.
    pub fn options(&self) -> &NetOptions {
        &self.opts
    }

    /// Directory of the derived state.
    pub fn state_dir(&self) -> &Path {
        &self.dir
    }

    fn tx(&self) -> Result<Transaction<'a>> {
        Ok(Transaction::new_unchecked(
            self.db,
            TransactionBehavior::Immediate,
        )?)
    }

    /// All networks, by name.
    pub fn networks(&self) -> Result<Vec<Network>> {
        let mut st = self.db.prepare(&format!(
            "SELECT {NET_COLS} FROM net_networks ORDER BY name"
        ))?;
        let v = st
            .query_map([], row_network)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(v)
    }

    /// A network by name, full ID or unique ID prefix.
    pub fn network(&self, name_or_id: &str) -> Result<Network> {
        let nf = || Error::NotFound(format!("network {name_or_id} not found"));
        if name_or_id.is_empty() {
            return Err(nf());
        }
        if let Some(n) = self
            .db
            .query_row(
                &format!("SELECT {NET_COLS} FROM net_networks WHERE name = ?1 OR id = ?1"),
                [name_or_id],
                row_network,
            )
            .optional()?
        {
            return Ok(n);
        }
        let mut st = self.db.prepare(&format!(
            "SELECT {NET_COLS} FROM net_networks WHERE id LIKE ?1 || '%'"
        ))?;
        let v = st
            .query_map([name_or_id], row_network)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        match v.len() {
            1 => Ok(v.into_iter().next().unwrap()),
            0 => Err(nf()),
            _ => Err(Error::Conflict(format!(
                "network {name_or_id} is ambiguous ({} matches found based on ID prefix)",
                v.len()
            ))),
        }
    }

    fn subnet_free(&self, s: &Subnet, own_bridge: Option<&str>) -> Result<()> {
        let nets = self.networks()?;
        for n in &nets {
            if let Some(o) = n.subnet() {
                if o.overlaps(s) {
                    return Err(Error::Conflict(format!(
                        "invalid pool request: Pool overlaps with other one on this address space ({s} overlaps network {} with subnet {o})",
                        n.name
                    )));
                }
            }
        }
        for r in host_routes() {
            let ours = nets
                .iter()
                .any(|n| n.bridge.as_deref() == Some(r.dev.as_str()));
            if Some(r.dev.as_str()) == own_bridge || ours {
                continue;
            }
            if r.dest.overlaps(s) {
                return Err(Error::Conflict(format!(
                    "subnet {s} overlaps the host route {} on {}: choose another --subnet",
                    r.dest, r.dev
                )));
            }
        }
        Ok(())
    }

    fn insert_network(&self, tx: &Transaction, n: &Network) -> Result<()> {
        tx.execute(
            &format!("INSERT INTO net_networks ({NET_COLS}) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12)"),
            params![
                n.id,
                n.name,
                n.driver,
                n.subnet,
                n.gateway,
                n.bridge,
                n.internal as i64,
                n.created,
                serde_json::to_string(&n.labels).unwrap(),
                n.ipv6 as i64,
                n.subnet6,
                n.gateway6
            ],
        )?;
        Ok(())
    }

    /// Makes sure `bridge`, `host` and `none` exist in the database and the default bridge
    /// device is up with its address; returns the `bridge` network.
    pub fn ensure_default_bridge(&self) -> Result<Network> {
        if let Ok(n) = self.network(DEFAULT_NETWORK) {
            self.ensure_host_setup(&n)?;
            return Ok(n);
        }
        let own = Some(self.opts.default_bridge.as_str());
        let subnet = match &self.opts.default_subnet {
            Some(s) => {
                let s: Subnet = s.parse()?;
                self.subnet_free(&s, own)?;
                s
            }
            None => (210u8..=250)
                .map(|b| Subnet::new(Ipv4Addr::new(10, b, 0, 0), 16))
                .find(|s| self.subnet_free(s, own).is_ok())
                .ok_or_else(|| {
                    Error::Conflict(
                        "no free subnet for the default bridge: set BERTH_BRIDGE_SUBNET".into(),
                    )
                })?,
        };
        let tx = self.tx()?;
        let exists: bool = tx.query_row(
            "SELECT COUNT(*) FROM net_networks WHERE name = 'bridge'",
            [],
            |r| r.get::<_, i64>(0),
        )? > 0;
        if !exists {
            for (name, driver) in [("host", "host"), ("none", "null")] {
                tx.execute(
                    &format!("INSERT OR IGNORE INTO net_networks ({NET_COLS}) VALUES (?1,?2,?3,NULL,NULL,NULL,0,?4,'{{}}',0,NULL,NULL)"),
                    params![new_id(), name, driver, now()],
                )?;
            }
            let n = Network {
                id: new_id(),
                name: DEFAULT_NETWORK.into(),
                driver: "bridge".into(),
                subnet: Some(subnet.to_string()),
                gateway: Some(subnet.first_host().to_string()),
                bridge: Some(self.opts.default_bridge.clone()),
                internal: false,
                created: now(),
                labels: Default::default(),
                ipv6: false,
                subnet6: None,
                gateway6: None,
            };
            self.insert_network(&tx, &n)?;
        }
        tx.commit()?;
        let n = self.network(DEFAULT_NETWORK)?;
        self.ensure_host_setup(&n)?;
        Ok(n)
    }

    /// Bridge device, forwarding and firewall for a network; cheap when already done (a
    /// marker file per bridge in the run root, which a reboot clears).
    pub fn ensure_host_setup(&self, n: &Network) -> Result<()> {
        let (Some(bridge), Some(s), Some(gw)) = (&n.bridge, n.subnet(), n.gateway_ip()) else {
            return Ok(());
        };
        let marker = self.dir.join(format!("up-{bridge}"));
        if marker.exists() && netlink::link_exists(bridge)? {
            return Ok(());
        }
        netlink::ensure_bridge(bridge, gw, s.prefix)?;
        if !n.internal {
            let _ = std::fs::write("/proc/sys/net/ipv4/ip_forward", "1");
        }
        if let (Some(s6), Some(gw6)) = (n.subnet6(), n.gateway6_ip()) {
            netlink::ensure_bridge_ipv6(bridge, gw6, s6.prefix)?;
            if !n.internal {
                // As Docker's bridge driver does for `--ipv6` networks.
                let _ = std::fs::write("/proc/sys/net/ipv6/conf/all/forwarding", "1");
            }
        }
        nft::ensure_forward_accept()?;
        self.sync()?;
        std::fs::create_dir_all(&self.dir)?;
        std::fs::write(marker, "")?;
        Ok(())
    }

    /// `network create`: validates, records, brings the bridge up.
    pub fn create_network(&self, req: &CreateNetwork) -> Result<Network> {
        let valid = !req.name.is_empty()
            && req.name.chars().next().unwrap().is_ascii_alphanumeric()
            && req
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
        if !valid {
            return Err(Error::Invalid(format!(
                "invalid network name {:?}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed",
                req.name
            )));
        }
        self.ensure_default_bridge()?;
        let id = new_id();
        let bridge = format!("berth-{}", &id[..9]);
        let tx = self.tx()?;
        if tx.query_row(
            "SELECT COUNT(*) FROM net_networks WHERE name = ?1",
            [&req.name],
            |r| r.get::<_, i64>(0),
        )? > 0
        {
            return Err(Error::Conflict(format!(
                "network with name {} already exists",
                req.name
            )));
        }
        let subnet = match &req.subnet {
            Some(s) => {
                let s: Subnet = s.parse()?;
                self.subnet_free(&s, None)?;
                s
            }
            None => (0u8..=255)
                .map(|b| Subnet::new(Ipv4Addr::new(10, 211, b, 0), 24))
                .find(|s| self.subnet_free(s, None).is_ok())
                .ok_or_else(|| Error::Conflict("could not find an available, non-overlapping IPv4 address pool: use --subnet".into()))?,
        };
        let gateway = match &req.gateway {
            Some(g) => {
                let g: Ipv4Addr = g
                    .parse()
                    .map_err(|_| Error::Invalid(format!("invalid gateway address {g:?}")))?;
                let (lo, hi) = subnet.host_range();
                if !(lo..=hi).contains(&u32::from(g)) {
                    return Err(Error::Invalid(format!(
                        "no matching subnet for gateway {g}"
                    )));
                }
                g
            }
            None => subnet.first_host(),
        };
        let (subnet6, gateway6) = self.pool6(req)?;
        let n = Network {
            id,
            name: req.name.clone(),
            driver: "bridge".into(),
            subnet: Some(subnet.to_string()),
            gateway: Some(gateway.to_string()),
            bridge: Some(bridge),
            internal: req.internal,
            created: now(),
            labels: req.labels.clone(),
            ipv6: req.ipv6,
            subnet6: subnet6.map(|s| s.to_string()),
            gateway6: gateway6.map(|g| g.to_string()),
        };
        self.insert_network(&tx, &n)?;
        tx.commit()?;
        if let Err(e) = self.ensure_host_setup(&n) {
            let _ = self
                .db
                .execute("DELETE FROM net_networks WHERE id = ?1", [&n.id]);
            let _ = netlink::delete_link(n.bridge.as_deref().unwrap());
            return Err(e);
        }
        Ok(n)
    }

    /// The IPv6 pool of a `network create`: Docker 20.10's rules (no default IPv6 pool, so
    /// `--ipv6` needs an IPv6 `--subnet`); an IPv6 subnet without `--ipv6` is refused rather
    /// than left unused.
    fn pool6(&self, req: &CreateNetwork) -> Result<(Option<Subnet6>, Option<Ipv6Addr>)> {
        let Some(s6) = &req.subnet6 else {
            if req.ipv6 {
                return Err(Error::Invalid(
                    "could not find an available, non-overlapping IPv6 address pool among the defaults to assign to the network: give an IPv6 --subnet (e.g. --subnet fd00:1::/64)".into(),
                ));
            }
            return Ok((None, None));
        };
        if !req.ipv6 {
            return Err(Error::Invalid(format!(
                "IPv6 subnet {s6} given without --ipv6: add --ipv6 to enable IPv6 on the network"
            )));
        }
        let s: Subnet6 = s6.parse()?;
        for n in self.networks()? {
            if let Some(o) = n.subnet6() {
                if o.overlaps(&s) {
                    return Err(Error::Conflict(format!(
                        "invalid pool request: Pool overlaps with other one on this address space ({s} overlaps network {} with subnet {o})",
                        n.name
                    )));
                }
            }
        }
        for r in host_routes6() {
            if r.dev.starts_with("berth") || r.dest.prefix < 8 {
                continue;
            }
            if r.dest.overlaps(&s) && !r.dest.addr.is_loopback() {
                return Err(Error::Conflict(format!(
                    "subnet {s} overlaps the host route {} on {}: choose another --subnet",
                    r.dest, r.dev
                )));
            }
        }
        let gw = match &req.gateway6 {
            Some(g) => {
                let g: Ipv6Addr = g
                    .parse()
                    .map_err(|_| Error::Invalid(format!("invalid gateway address {g:?}")))?;
                let (lo, hi) = s.host_range();
                if !(lo..=hi).contains(&u128::from(g)) {
                    return Err(Error::Invalid(format!(
                        "no matching subnet for gateway {g}"
                    )));
                }
                g
            }
            None => s.first_host(),
        };
        Ok((Some(s), Some(gw)))
    }

    /// `network rm`: refuses predefined networks and networks with endpoints.
    pub fn remove_network(&self, name_or_id: &str) -> Result<Network> {
        let n = self.network(name_or_id)?;
        if n.is_predefined() {
            return Err(Error::Conflict(format!(
                "{} is a pre-defined network and cannot be removed",
                n.name
            )));
        }
        let tx = self.tx()?;
        let users: Vec<String> = {
            let mut st = tx.prepare("SELECT container_name FROM net_endpoints WHERE network_id = ?1 ORDER BY container_name")?;
            let v = st
                .query_map([&n.id], |r| r.get(0))?
                .collect::<rusqlite::Result<Vec<String>>>()?;
            v
        };
        if !users.is_empty() {
            return Err(Error::Conflict(format!(
                "error while removing network: network {} id {} has active endpoints ({})",
                n.name,
                n.id,
                users.join(", ")
            )));
        }
        tx.execute("DELETE FROM net_networks WHERE id = ?1", [&n.id])?;
        tx.commit()?;
        self.remove_host_state(&n)?;
        Ok(n)
    }

    fn remove_host_state(&self, n: &Network) -> Result<()> {
        if let Some(b) = &n.bridge {
            netlink::delete_link(b)?;
            let _ = std::fs::remove_file(self.dir.join(format!("up-{b}")));
        }
        let _ = std::fs::remove_file(self.records_path(&n.id));
        self.sync()
    }

    /// `network prune`: removes user-defined networks without endpoints; returns their names.
    pub fn prune(&self) -> Result<Vec<String>> {
        let mut out = Vec::new();
        for n in self.networks()? {
            if n.is_predefined() {
                continue;
            }
            match self.remove_network(&n.id) {
                Ok(_) => out.push(n.name),
                Err(Error::Conflict(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    fn endpoint_rows(&self, sql_where: &str, arg: &str) -> Result<Vec<Endpoint>> {
        let sql = format!(
            "SELECT e.container_id, e.container_name, e.network_id, n.name, e.aliases, e.ip, n.subnet, n.gateway, e.mac, e.host_veth, e.ifname, e.netns, n.internal, e.ip6, n.subnet6, n.gateway6
             FROM net_endpoints e JOIN net_networks n ON n.id = e.network_id WHERE {sql_where} ORDER BY e.ifname, n.name"
        );
        let mut st = self.db.prepare(&sql)?;
        let rows = st.query_map([arg], |r| {
            let aliases: String = r.get(4)?;
            let ip: String = r.get(5)?;
            let subnet: Option<String> = r.get(6)?;
            let gw: Option<String> = r.get(7)?;
            let internal = r.get::<_, i64>(12)? != 0;
            let ip6: Option<Ipv6Addr> =
                r.get::<_, Option<String>>(13)?.and_then(|s| s.parse().ok());
            let subnet6: Option<Subnet6> =
                r.get::<_, Option<String>>(14)?.and_then(|s| s.parse().ok());
            let gw6: Option<Ipv6Addr> =
                r.get::<_, Option<String>>(15)?.and_then(|s| s.parse().ok());
            Ok(Endpoint {
                container_id: r.get(0)?,
                container_name: r.get(1)?,
                network_id: r.get(2)?,
                network_name: r.get(3)?,
                aliases: serde_json::from_str(&aliases).unwrap_or_default(),
                ip: ip.parse().unwrap_or(Ipv4Addr::UNSPECIFIED),
                prefix: subnet
                    .and_then(|s| s.parse::<Subnet>().ok())
                    .map(|s| s.prefix)
                    .unwrap_or(32),
                gateway: if internal {
                    None
                } else {
                    gw.and_then(|g| g.parse().ok())
                },
                prefix6: if ip6.is_some() {
                    subnet6.map(|s| s.prefix).unwrap_or(128)
                } else {
                    0
                },
                gateway6: if internal || ip6.is_none() { None } else { gw6 },
                ip6,
                mac: r.get(8)?,
                host_veth: r.get(9)?,
                ifname: r.get(10)?,
                netns: PathBuf::from(r.get::<_, String>(11)?),
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    /// A container's endpoints, `eth0` first.
    pub fn container_endpoints(&self, container_id: &str) -> Result<Vec<Endpoint>> {
        self.endpoint_rows("e.container_id = ?1", container_id)
    }

    /// A network's endpoints.
    pub fn network_endpoints(&self, network_id: &str) -> Result<Vec<Endpoint>> {
        self.endpoint_rows("e.network_id = ?1", network_id)
    }

    /// Every endpoint.
    pub fn all_endpoints(&self) -> Result<Vec<Endpoint>> {
        self.endpoint_rows("?1 = ?1", "")
    }

    /// Attaches a running container's namespace to a network: allocates the address (or takes
    /// `ip`), records the endpoint, creates the veth pair and configures the inside.
    pub fn connect(&self, req: &Connect) -> Result<Endpoint> {
        let t0 = std::time::Instant::now();
        let trace = std::env::var_os("BERTH_NETWORK_TRACE").is_some();
        let n = self.network(&req.network)?;
        if n.driver != "bridge" {
            return Err(Error::Invalid(format!(
                "container cannot be connected to network {}: only bridge networks take endpoints",
                n.name
            )));
        }
        self.ensure_host_setup(&n)?;
        let subnet = n
            .subnet()
            .ok_or_else(|| Error::Invalid(format!("network {} has no subnet", n.name)))?;
        let gw = n.gateway_ip();
        if req.ip.is_some() && n.is_predefined() {
            return Err(Error::Invalid(
                "user specified IP address is supported on user defined networks only".into(),
            ));
        }
        if !req.aliases.is_empty() && n.is_predefined() {
            return Err(Error::Invalid(
                "network-scoped alias is supported only for containers in user defined networks"
                    .into(),
            ));
        }
        let tx = self.tx()?;
        if tx.query_row(
            "SELECT COUNT(*) FROM net_endpoints WHERE container_id = ?1 AND network_id = ?2",
            [&req.container_id, &n.id],
            |r| r.get::<_, i64>(0),
        )? > 0
        {
            return Err(Error::Conflict(format!(
                "endpoint with name {} already exists in network {}",
                req.container_name, n.name
            )));
        }
        let used: std::collections::HashSet<u32> = {
            let mut st = tx.prepare("SELECT ip FROM net_endpoints WHERE network_id = ?1")?;
            let v = st
                .query_map([&n.id], |r| r.get::<_, String>(0))?
                .filter_map(|r| r.ok()?.parse::<Ipv4Addr>().ok().map(u32::from))
                .collect();
            v
        };
        let (lo, hi) = subnet.host_range();
        let ip = match req.ip {
            Some(ip) => {
                if !subnet.contains(ip) || !(lo..=hi).contains(&u32::from(ip)) {
                    return Err(Error::Invalid(format!("invalid address {ip}: it does not belong to any of this network's subnets ({subnet})")));
                }
                if used.contains(&u32::from(ip)) || Some(ip) == gw {
                    return Err(Error::Conflict(format!(
                        "Address already in use: {ip} on network {}",
                        n.name
                    )));
                }
                ip
            }
            None => (lo..=hi)
                .map(Ipv4Addr::from)
                .find(|a| Some(*a) != gw && !used.contains(&u32::from(*a)))
                .ok_or_else(|| {
                    Error::Conflict(format!("no available IPv4 addresses on network {}", n.name))
                })?,
        };
        let ifnames: Vec<String> = {
            let mut st = tx.prepare("SELECT ifname FROM net_endpoints WHERE container_id = ?1")?;
            let v = st
                .query_map([&req.container_id], |r| r.get(0))?
                .collect::<rusqlite::Result<Vec<String>>>()?;
            v
        };
        let ifname = (0..)
            .map(|i| format!("eth{i}"))
            .find(|f| !ifnames.contains(f))
            .unwrap();
        let subnet6 = n.subnet6();
        let gw6 = n.gateway6_ip();
        let ip6: Option<Ipv6Addr> = match subnet6 {
            None => None,
            Some(s6) => {
                let used: std::collections::HashSet<u128> = {
                    let mut st = tx.prepare(
                        "SELECT ip6 FROM net_endpoints WHERE network_id = ?1 AND ip6 IS NOT NULL",
                    )?;
                    let v = st
                        .query_map([&n.id], |r| r.get::<_, String>(0))?
                        .filter_map(|r| r.ok()?.parse::<Ipv6Addr>().ok().map(u128::from))
                        .collect();
                    v
                };
                // Sequential from the start of the pool, as Docker's IPAM hands them out; at
                // most one more candidate than addresses in use needs looking at.
                let (lo, hi) = s6.host_range();
                let found = (lo..=hi)
                    .take(used.len() + 2)
                    .find(|a| free6(*a, gw6, &used))
                    .map(Ipv6Addr::from);
                Some(found.ok_or_else(|| {
                    Error::Conflict(format!("no available IPv6 addresses on network {}", n.name))
                })?)
            }
        };
        let mac = mac_for(ip);
        let host_veth = host_veth_name(&req.container_id, &n.id);
        tx.execute(
            "INSERT INTO net_endpoints (container_id, network_id, container_name, aliases, ip, mac, host_veth, ifname, netns, ip6) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10)",
            params![req.container_id, n.id, req.container_name, serde_json::to_string(&req.aliases).unwrap(), ip.to_string(), mac_string(mac), host_veth, ifname, req.netns.to_string_lossy(), ip6.map(|i| i.to_string())],
        )?;
        tx.commit()?;
        if trace {
            eprintln!("connect: db {:?}", t0.elapsed());
        }
        let first = ifname == "eth0";
        let r = netlink::attach(&netlink::VethConfig {
            bridge: n.bridge.as_deref().unwrap(),
            host_name: &host_veth,
            netns: &req.netns,
            ifname: &ifname,
            mac,
            ip,
            prefix: subnet.prefix,
            gateway: if first && !n.internal { gw } else { None },
            ip6: ip6.zip(subnet6.map(|s| s.prefix)),
            gateway6: if first && !n.internal && ip6.is_some() {
                gw6
            } else {
                None
            },
        });
        if trace {
            eprintln!("connect: attached {:?}", t0.elapsed());
        }
        if let Err(e) = r {
            let _ = self.db.execute(
                "DELETE FROM net_endpoints WHERE container_id = ?1 AND network_id = ?2",
                [&req.container_id, &n.id],
            );
            return Err(e);
        }
        if !n.is_predefined() {
            self.write_records(&n.id)?;
        }
        self.container_endpoints(&req.container_id)?
            .into_iter()
            .find(|e| e.network_id == n.id)
            .ok_or_else(|| Error::NotFound("endpoint vanished".into()))
    }

    /// Detaches a container from one network (idempotent for the host side).
    pub fn disconnect(&self, container_id: &str, network: &str) -> Result<()> {
        let n = self.network(network)?;
        let ep = self
            .container_endpoints(container_id)?
            .into_iter()
            .find(|e| e.network_id == n.id);
        let Some(ep) = ep else {
            return Err(Error::NotFound(format!(
                "container {container_id} is not connected to network {}",
                n.name
            )));
        };
        self.remove_endpoint(&ep)?;
        Ok(())
    }

    fn remove_endpoint(&self, ep: &Endpoint) -> Result<()> {
        // Without its namespace the pair is already going away with it (deleting it ourselves
        // would only wait for the kernel); orphans on our bridges are left to `gc`.
        if ep.netns.exists() {
            netlink::delete_link(&ep.host_veth)?;
        }
        self.db.execute(
            "DELETE FROM net_endpoints WHERE container_id = ?1 AND network_id = ?2",
            [&ep.container_id, &ep.network_id],
        )?;
        let had_ports = self.db.execute(
            "DELETE FROM net_ports WHERE container_id = ?1 AND target_ip = ?2",
            [&ep.container_id, &ep.ip.to_string()],
        )?;
        self.write_records(&ep.network_id)?;
        if had_ports > 0 {
            self.sync()?;
        }
        Ok(())
    }

    /// Everything a container holds: endpoints, addresses, veths, port rules, the proxy.
    /// Idempotent; what is already gone is skipped.
    pub fn release_container(&self, container_id: &str) -> Result<()> {
        self.stop_proxy(container_id);
        for ep in self.container_endpoints(container_id)? {
            self.remove_endpoint(&ep)?;
        }
        if self.db.execute(
            "DELETE FROM net_ports WHERE container_id = ?1",
            [container_id],
        )? > 0
        {
            self.sync()?;
        }
        Ok(())
    }

    /// Reserves host ports (binding them), records the mappings and installs the DNAT rules to
    /// the container's first endpoint. The returned sockets go to [`Networking::start_proxy`].
    pub fn publish(&self, container_id: &str, specs: &[PortSpec]) -> Result<Vec<Reserved>> {
        if specs.is_empty() {
            return Ok(Vec::new());
        }
        let ep = self
            .container_endpoints(container_id)?
            .into_iter()
            .next()
            .ok_or_else(|| Error::Invalid("published ports need a bridge network".into()))?;
        let reserved = crate::ports::reserve(specs)?;
        let tx = self.tx()?;
        for r in &reserved {
            let b = &r.binding;
            tx.execute(
                "INSERT OR REPLACE INTO net_ports (container_id, host_ip, host_port, proto, container_port, target_ip) VALUES (?1,?2,?3,?4,?5,?6)",
                params![container_id, b.host_ip.to_string(), b.host_port, b.proto.as_str(), b.container_port, ep.ip.to_string()],
            )?;
        }
        tx.commit()?;
        if let Err(e) = self.sync() {
            let _ = self.db.execute(
                "DELETE FROM net_ports WHERE container_id = ?1",
                [container_id],
            );
            return Err(e);
        }
        Ok(reserved)
    }

    /// A container's published ports, sorted as Docker lists them.
    pub fn ports(&self, container_id: &str) -> Result<Vec<PortBinding>> {
        let mut st = self.db.prepare("SELECT host_ip, host_port, proto, container_port FROM net_ports WHERE container_id = ?1")?;
        let mut v = st
            .query_map([container_id], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, u16>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, u16>(3)?,
                ))
            })?
            .filter_map(|r| r.ok())
            .map(|(ip, hp, pr, cp)| PortBinding {
                container_port: cp,
                proto: Proto::parse(&pr).unwrap_or(Proto::Tcp),
                host_ip: ip.parse().unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
                host_port: hp,
            })
            .collect::<Vec<_>>();
        v.sort();
        Ok(v)
    }

    fn records_path(&self, network_id: &str) -> PathBuf {
        self.dir.join("dns").join(network_id)
    }

    /// Rewrites a user network's DNS records (`ip name alias… shortid`).
    fn write_records(&self, network_id: &str) -> Result<()> {
        let _l = Lock::take(&self.dir)?;
        let path = self.records_path(network_id);
        std::fs::create_dir_all(path.parent().unwrap())?;
        let mut s = String::new();
        for e in self.network_endpoints(network_id)? {
            // One line per address: an `--ipv6` network answers AAAA queries too.
            let ips = std::iter::once(IpAddr::V4(e.ip)).chain(e.ip6.map(IpAddr::V6));
            for ip in ips {
                s.push_str(&ip.to_string());
                for n in std::iter::once(&e.container_name).chain(e.aliases.iter()) {
                    if !n.is_empty() {
                        s.push(' ');
                        s.push_str(n);
                    }
                }
                s.push(' ');
                s.push_str(&e.container_id[..e.container_id.len().min(12)]);
                s.push('\n');
            }
        }
        write_atomic(&path, &s)
    }

    /// Rewrites the nftables table from the database (atomic, under the state lock).
    pub fn sync(&self) -> Result<()> {
        let _l = Lock::take(&self.dir)?;
        let nets: Vec<FwNetwork> = self
            .networks()?
            .into_iter()
            .filter_map(|n| {
                Some(FwNetwork {
                    subnet6: n.subnet6(),
                    subnet: n.subnet()?,
                    bridge: n.bridge?,
                    internal: n.internal,
                })
            })
            .collect();
        let mut st = self.db.prepare("SELECT host_ip, host_port, proto, container_port, target_ip FROM net_ports ORDER BY host_port")?;
        let ports: Vec<FwPort> = st
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, u16>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, u16>(3)?,
                    r.get::<_, String>(4)?,
                ))
            })?
            .filter_map(|r| r.ok())
            .filter_map(|(hi, hp, pr, cp, t)| {
                Some(FwPort {
                    host_ip: hi.parse().ok()?,
                    host_port: hp,
                    proto: if pr == "udp" { "udp" } else { "tcp" },
                    target: t.parse().ok()?,
                    target_port: cp,
                })
            })
            .collect();
        nft::apply(&nft::script(&self.opts.nft_table, &nets, &ports))
    }

    fn proxy_pid_file(&self, container_id: &str) -> PathBuf {
        self.dir.join("proxy").join(format!("{container_id}.pid"))
    }

    /// The pid file of a DNS-only helper started by [`Networking::update_dns`].
    fn dns_pid_file(&self, container_id: &str) -> PathBuf {
        self.dir
            .join("proxy")
            .join(format!("{container_id}.dns.pid"))
    }

    /// The record files a container's DNS responder reads (see [`DnsConfig::records_list`]).
    fn dns_list_file(&self, container_id: &str) -> PathBuf {
        self.dir.join("proxy").join(format!("{container_id}.dns"))
    }

    fn dns_list(&self, endpoints: &[&Endpoint]) -> String {
        endpoints
            .iter()
            .map(|e| format!("{}\n", self.records_path(&e.network_id).display()))
            .collect()
    }

    /// After `network connect`/`disconnect` of a running container: its DNS responder answers
    /// for the user networks in `endpoints` (all the container's endpoints now). When no
    /// responder runs yet (the container was on no user network), a DNS-only helper is
    /// started that lives as long as `watch_pid`.
    pub fn update_dns(
        &self,
        container_id: &str,
        endpoints: &[Endpoint],
        upstreams: &[IpAddr],
        watch_pid: i32,
        binary: &Path,
    ) -> Result<()> {
        let user_nets: Vec<&Endpoint> = endpoints
            .iter()
            .filter(|e| !matches!(e.network_name.as_str(), "bridge" | "host" | "none"))
            .collect();
        let list = self.dns_list_file(container_id);
        if list.exists() {
            return write_atomic(&list, &self.dns_list(&user_nets));
        }
        if user_nets.is_empty() || watch_pid <= 0 {
            return Ok(());
        }
        let pid_file = self.dns_pid_file(container_id);
        self.spawn_helper(
            container_id,
            Some(watch_pid),
            Vec::new(),
            endpoints,
            upstreams,
            binary,
            pid_file,
        )
        .map(|_| ())
    }

    /// Starts the `berth-netproxy` helper for a container: serves the reserved ports (to the
    /// container's address) and, when an endpoint is on a user-defined network, DNS on
    /// 127.0.0.11 inside `netns` (forwarding other names to `upstreams`). Returns once it is
    /// ready; it exits by itself when `watch_pid` exits. Does nothing when there is nothing to
    /// serve.
    pub fn start_proxy(
        &self,
        container_id: &str,
        watch_pid: i32,
        reserved: Vec<Reserved>,
        endpoints: &[Endpoint],
        upstreams: &[IpAddr],
    ) -> Result<()> {
        self.spawn_proxy(
            container_id,
            Some(watch_pid),
            reserved,
            endpoints,
            upstreams,
            &proxy_binary(),
        )
        .map(|_| ())
    }

    /// [`Networking::start_proxy`] before the container exists: the helper listens and serves
    /// DNS at once (no early lookup can miss it) and learns the process to watch later through
    /// [`ProxyWatch::watch`]; it exits when the returned handle is dropped without a pid (the
    /// start failed, or the caller died). `None` when there is nothing to serve.
    pub fn start_proxy_deferred(
        &self,
        container_id: &str,
        reserved: Vec<Reserved>,
        endpoints: &[Endpoint],
        upstreams: &[IpAddr],
        binary: &Path,
    ) -> Result<Option<ProxyWatch>> {
        self.spawn_proxy(container_id, None, reserved, endpoints, upstreams, binary)
    }

    fn spawn_proxy(
        &self,
        container_id: &str,
        watch: Option<i32>,
        reserved: Vec<Reserved>,
        endpoints: &[Endpoint],
        upstreams: &[IpAddr],
        binary: &Path,
    ) -> Result<Option<ProxyWatch>> {
        // A list left by an earlier run of the container names networks it may no longer be on.
        let _ = std::fs::remove_file(self.dns_list_file(container_id));
        let pid_file = self.proxy_pid_file(container_id);
        self.spawn_helper(
            container_id,
            watch,
            reserved,
            endpoints,
            upstreams,
            binary,
            pid_file,
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn spawn_helper(
        &self,
        container_id: &str,
        watch: Option<i32>,
        reserved: Vec<Reserved>,
        endpoints: &[Endpoint],
        upstreams: &[IpAddr],
        binary: &Path,
        pid_file: PathBuf,
    ) -> Result<Option<ProxyWatch>> {
        let user_nets: Vec<&Endpoint> = endpoints
            .iter()
            .filter(|e| !matches!(e.network_name.as_str(), "bridge" | "host" | "none"))
            .collect();
        if reserved.is_empty() && user_nets.is_empty() {
            return Ok(None);
        }
        let target_ip = endpoints
            .first()
            .map(|e| e.ip)
            .unwrap_or(Ipv4Addr::LOCALHOST);
        std::fs::create_dir_all(pid_file.parent().unwrap())?;
        let dns = match user_nets.first() {
            Some(e) => {
                let list = self.dns_list_file(container_id);
                write_atomic(&list, &self.dns_list(&user_nets))?;
                Some(DnsConfig {
                    netns: e.netns.clone(),
                    records: user_nets
                        .iter()
                        .map(|e| self.records_path(&e.network_id))
                        .collect(),
                    records_list: Some(list),
                    upstreams: upstreams.to_vec(),
                })
            }
            None => None,
        };
        let mut p = [0 as libc::c_int; 2];
        // SAFETY: pipe2 fills two new fds that we own from here on.
        if unsafe { libc::pipe2(p.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
            return Err(std::io::Error::last_os_error().into());
        }
        use std::os::fd::FromRawFd;
        // SAFETY: fresh fds from pipe2.
        let (rd, wr) = unsafe {
            (
                std::fs::File::from_raw_fd(p[0]),
                std::os::fd::OwnedFd::from_raw_fd(p[1]),
            )
        };
        let mut fds: Vec<i32> = vec![wr.as_raw_fd()];
        let mut ports = Vec::new();
        for (i, r) in reserved.iter().enumerate() {
            fds.push(r.fd.as_raw_fd());
            ports.push(ProxyPort {
                fd: 4 + i as i32,
                proto: r.binding.proto,
                target: SocketAddr::new(IpAddr::V4(target_ip), r.binding.container_port),
            });
        }
        // Deferred: the helper reads the pid to watch from a pipe (EOF: exit).
        let watch_pipe = match watch {
            Some(_) => None,
            None => {
                let mut q = [0 as libc::c_int; 2];
                // SAFETY: pipe2 fills two new fds that we own from here on.
                if unsafe { libc::pipe2(q.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
                    return Err(std::io::Error::last_os_error().into());
                }
                // SAFETY: fresh fds from pipe2.
                let pair = unsafe {
                    (
                        std::os::fd::OwnedFd::from_raw_fd(q[0]),
                        std::fs::File::from_raw_fd(q[1]),
                    )
                };
                fds.push(pair.0.as_raw_fd());
                Some(pair)
            }
        };
        let cfg = ProxyConfig {
            container_id: container_id.into(),
            watch_pid: watch.unwrap_or(0),
            ports,
            dns,
            pid_file,
            ready_fd: 3,
            watch_fd: watch_pipe.as_ref().map(|_| 3 + fds.len() as i32 - 1),
        };
        let mut cmd = Command::new(binary);
        cmd.arg(serde_json::to_string(&cfg).unwrap())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                // Move the sources out of the way first so dup2 cannot clobber one.
                let mut high = Vec::with_capacity(fds.len());
                for &fd in &fds {
                    let h = libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 1000);
                    if h < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    high.push(h);
                }
                for (i, &h) in high.iter().enumerate() {
                    if libc::dup2(h, 3 + i as i32) < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                libc::setsid();
                Ok(())
            });
        }
        let mut child = cmd.spawn().map_err(|e| {
            Error::Io(std::io::Error::new(
                e.kind(),
                format!("starting berth-netproxy: {e}"),
            ))
        })?;
        drop(wr);
        drop(reserved);
        let watch_tx = watch_pipe.map(|(r, w)| {
            drop(r);
            w
        });
        let mut line = String::new();
        use std::io::BufRead;
        let _ = std::io::BufReader::new(rd).read_line(&mut line);
        if line.trim() != "ok" {
            let _ = child.kill();
            let _ = child.wait();
            return Err(Error::Io(std::io::Error::other(format!(
                "port proxy: {}",
                if line.is_empty() {
                    "exited"
                } else {
                    line.trim()
                }
            ))));
        }
        // The helper outlives us; reaping is init's job once we exit.
        std::mem::forget(child);
        Ok(watch_tx.map(|file| ProxyWatch { file }))
    }

    /// Stops a container's helper if it runs (idempotent).
    pub fn stop_proxy(&self, container_id: &str) {
        let _ = std::fs::remove_file(self.dns_list_file(container_id));
        for f in [
            self.proxy_pid_file(container_id),
            self.dns_pid_file(container_id),
        ] {
            self.stop_helper(container_id, &f);
        }
    }

    fn stop_helper(&self, container_id: &str, f: &Path) {
        if let Ok(s) = std::fs::read_to_string(f) {
            if let Ok(pid) = s.trim().parse::<i32>() {
                let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
                let cmdline = String::from_utf8_lossy(&cmdline);
                if cmdline.contains("berth-netproxy") && cmdline.contains(container_id) {
                    // SAFETY: signalling a process we verified is our helper.
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                }
            }
            let _ = std::fs::remove_file(f);
        }
    }

    /// Crash recovery: releases endpoints and ports of containers `live` says are gone,
    /// deletes `bv*` veths without an endpoint, and resyncs the firewall.
    pub fn gc(&self, live: &dyn Fn(&str) -> bool) -> Result<GcReport> {
        let mut rep = GcReport::default();
        for ep in self.all_endpoints()? {
            if !live(&ep.container_id) {
                self.stop_proxy(&ep.container_id);
                self.remove_endpoint(&ep)?;
                rep.endpoints += 1;
            }
        }
        let dead_ports: Vec<String> = {
            let mut st = self
                .db
                .prepare("SELECT DISTINCT container_id FROM net_ports")?;
            let v = st
                .query_map([], |r| r.get::<_, String>(0))?
                .filter_map(|r| r.ok())
                .filter(|c| !live(c))
                .collect();
            v
        };
        for c in dead_ports {
            rep.ports += self
                .db
                .execute("DELETE FROM net_ports WHERE container_id = ?1", [&c])?;
        }
        // The bridges' ports are listed before the endpoints are read: `connect` commits its
        // endpoint row before it creates the veth, so any veth seen here whose row is missing
        // from the later read really is an orphan. The other order takes the veth of a
        // container starting meanwhile (its row written just after the read).
        let mut ports = Vec::new();
        for n in self.networks()? {
            let Some(b) = &n.bridge else { continue };
            ports.extend(
                netlink::bridge_ports(b)?
                    .into_iter()
                    .filter(|l| l.len() == 14 && l.starts_with("bv")),
            );
        }
        let known: std::collections::HashSet<String> = self
            .all_endpoints()?
            .into_iter()
            .map(|e| e.host_veth)
            .collect();
        for l in ports.into_iter().filter(|l| !known.contains(l)) {
            netlink::delete_link(&l)?;
            rep.links += 1;
        }
        for n in self.networks()? {
            if n.bridge.is_some() {
                self.ensure_host_setup(&n)?;
            }
        }
        self.sync()?;
        Ok(rep)
    }
}

/// A helper started by [`Networking::start_proxy_deferred`], waiting for its pid to watch.
#[derive(Debug)]
pub struct ProxyWatch {
    file: std::fs::File,
}

impl ProxyWatch {
    /// Tells the helper which process to outlive (the container's init); it exits with it.
    pub fn watch(mut self, pid: i32) {
        use std::io::Write;
        let _ = writeln!(self.file, "{pid}");
    }
}

/// The helper binary: `$BERTH_NETPROXY`, next to the current executable (or its parent, for
/// test binaries in `deps/`), then `$PATH`.
pub fn proxy_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("BERTH_NETPROXY") {
        return p.into();
    }
    if let Ok(exe) = std::env::current_exe() {
        for dir in exe.ancestors().skip(1).take(2) {
            let p = dir.join("berth-netproxy");
            if p.is_file() {
                return p;
            }
        }
    }
    PathBuf::from("berth-netproxy")
}

#[cfg(test)]
mod pool_tests {
    use super::*;

    #[test]
    fn subnets_and_gateways_sorted_by_family() {
        let mut r = CreateNetwork::default();
        r.set_pools(
            &["10.1.0.0/24".into(), "fd00:1::/64".into()],
            &["fd00:1::9".into(), "10.1.0.9".into()],
        )
        .unwrap();
        assert_eq!(r.subnet.as_deref(), Some("10.1.0.0/24"));
        assert_eq!(r.subnet6.as_deref(), Some("fd00:1::/64"));
        assert_eq!(r.gateway.as_deref(), Some("10.1.0.9"));
        assert_eq!(r.gateway6.as_deref(), Some("fd00:1::9"));
        let mut r = CreateNetwork::default();
        let e = r
            .set_pools(&["fd00:1::/64".into(), "fd00:2::/64".into()], &[])
            .unwrap_err();
        assert!(e.to_string().contains("more than one IPv6 subnet"), "{e}");
        let mut r = CreateNetwork::default();
        let e = r
            .set_pools(&["10.1.0.0/24".into()], &["fd00:1::1".into()])
            .unwrap_err();
        assert!(
            e.to_string()
                .contains("every ip-range or gateway must have a corresponding subnet"),
            "{e}"
        );
    }

    #[test]
    fn ipv6_addresses_skip_the_gateway_and_used_ones() {
        let gw: Ipv6Addr = "fd00:1::1".parse().unwrap();
        let used: std::collections::HashSet<u128> =
            [u128::from("fd00:1::2".parse::<Ipv6Addr>().unwrap())].into();
        assert!(!free6(u128::from(gw), Some(gw), &used));
        assert!(!free6(u128::from(gw) + 1, Some(gw), &used));
        assert!(free6(u128::from(gw) + 2, Some(gw), &used));
    }
}
