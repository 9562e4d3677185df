//! Container networking: `--network none|host|bridge|NAME`, published ports, aliases, fixed
//! addresses, `/etc/hosts`, `/etc/hostname`, `/etc/resolv.conf`, and the `network` commands,
//! on top of `berth_network`.
//!
//! # Lifecycle
//! - `create` records the request in `network.json` (container directory), points the runtime
//!   spec at a namespace path `$RUNROOT/netns/<id>` (bridge networks) and bind-mounts the
//!   container's `hosts`, `hostname` and `resolv.conf` files (written at every start).
//! - `start`, before the runtime runs anything: under `$RUNROOT/netns/<id>.lock` (held until
//!   the container runs, so no concurrent cleanup takes it for dead) the namespace is made, the
//!   container is connected (address, veth, route), the host ports are bound (Docker's "address
//!   already in use" fails the start here, with nothing left behind), the files are written and
//!   `berth-netproxy` is started; it learns the container's pid once the runtime started it
//!   and exits with it.
//! - exit (`stop`, the foreground `run`, `rm`): endpoints, addresses, port rules, the proxy and
//!   the namespace are released (idempotent). A detached container that exits by itself is
//!   released by the next `ps`, `run`/`start` with ports, or `network`/`system prune` command:
//!   [`Engine::network_gc`] finds endpoints, ports, proxies and namespaces whose container is
//!   not running and no start holds.

use super::{ContainerSpec, CreateOptions};
use crate::{Engine, EngineError};
use berth_network::ports::{PortSpec, Proto};
use berth_network::subnet::Subnet;
use berth_network::{
    files, netlink, Connect, CreateNetwork, Endpoint, NetOptions, Network, Networking,
};
use berth_runtime::{MountSpec, NetworkMode, RunOptions};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashSet};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

pub use berth_network;

/// The networking flags of `create`/`run`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct NetRequest {
    /// `-p` values as given.
    #[serde(default)]
    pub publish: Vec<String>,
    /// `-P`
    #[serde(default)]
    pub publish_all: bool,
    /// `--network-alias`
    #[serde(default)]
    pub aliases: Vec<String>,
    /// `--ip`
    #[serde(default)]
    pub ip: Option<String>,
    /// `--add-host NAME:IP`
    #[serde(default)]
    pub add_hosts: Vec<String>,
    #[serde(default)]
    pub dns: Vec<String>,
    #[serde(default)]
    pub dns_search: Vec<String>,
    #[serde(default)]
    pub dns_options: Vec<String>,
}

/// An extra network (`network connect` on a stopped container, or kept for the next start).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ExtraNetwork {
    pub network: String,
    #[serde(default)]
    pub aliases: Vec<String>,
    #[serde(default)]
    pub ip: Option<String>,
}

/// `network.json` in the container directory.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct NetPlan {
    /// `none`, `host`, `bridge` or a user network's name.
    pub mode: String,
    pub request: NetRequest,
    /// Expanded `-p`/`-P` mappings.
    pub ports: Vec<PortSpec>,
    pub hostname: String,
    #[serde(default)]
    pub domainname: String,
    #[serde(default)]
    pub extra: Vec<ExtraNetwork>,
}

impl NetPlan {
    /// Whether the container has its own namespace on the bridge side (mode `""`: a namespace
    /// whose every network was disconnected).
    fn bridged(&self) -> bool {
        !matches!(self.mode.as_str(), "none" | "host") && !self.mode.starts_with("container:")
    }
}

/// What a start holds between "connected" and "the container runs".
pub(crate) struct NetStart {
    _lock: std::fs::File,
    watch: Option<berth_network::ProxyWatch>,
}

fn net_err(e: berth_network::Error) -> EngineError {
    match e {
        berth_network::Error::Conflict(s) | berth_network::Error::PortInUse(s) => {
            EngineError::Conflict(s)
        }
        berth_network::Error::Invalid(s) => EngineError::InvalidArgument(s),
        berth_network::Error::NotFound(s) => EngineError::NotFound(s),
        other => EngineError::Network(other),
    }
}

/// Looking up network `name`: Docker's "network … not found" when there is none, the manager's
/// own error otherwise.
fn network_lookup(name: &str) -> impl FnOnce(berth_network::Error) -> EngineError + '_ {
    move |e| match e {
        berth_network::Error::NotFound(_) => EngineError::NetworkNotFound(name.to_string()),
        e => net_err(e),
    }
}

fn io_err(what: &str) -> impl FnOnce(std::io::Error) -> EngineError + '_ {
    move |e| EngineError::io(what.to_string(), e)
}

const PLAN_FILE: &str = "network.json";
const DEFAULT_ROOT: &str = "/var/lib/berth";

fn root_hash(root: &Path) -> u32 {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in root.as_os_str().as_encoded_bytes() {
        h ^= *b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    (h ^ (h >> 32)) as u32
}

/// A free /24 in 10.212.0.0-10.249.255.0 (starting at `seed`), clear of the host's routes.
fn pick_subnet(seed: u32) -> Subnet {
    let routes = berth_network::subnet::host_routes();
    let n = 38 * 256;
    for i in 0..n {
        let k = (seed + i) % n;
        let s = Subnet::new(
            Ipv4Addr::new(10, 212 + (k / 256) as u8, (k % 256) as u8, 0),
            24,
        );
        if !routes.iter().any(|r| r.dest.overlaps(&s)) {
            return s;
        }
    }
    Subnet::new(Ipv4Addr::new(10, 212, 0, 0), 24)
}

/// Writes `data` in place (the file may be bind-mounted into a running container).
fn write_in_place(path: &Path, data: &str) -> Result<(), EngineError> {
    std::fs::write(path, data)
        .map_err(|e| EngineError::io(format!("writing {}", path.display()), e))
}

fn try_lock(path: &Path, block: bool) -> Option<std::fs::File> {
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .ok()?;
    let op = if block {
        rustix::fs::FlockOperation::LockExclusive
    } else {
        rustix::fs::FlockOperation::NonBlockingLockExclusive
    };
    rustix::fs::flock(&f, op).ok().map(|_| f)
}

impl Engine {
    /// The network manager on this engine's database.
    pub fn networking(&self) -> Result<Networking<'_>, EngineError> {
        Networking::with_options(
            self.store().connection(),
            self.runroot(),
            self.net_options(),
        )
        .map_err(net_err)
    }

    /// Host-wide names: the defaults (`berth0`, table `berth`) for the default root; a root
    /// elsewhere (tests, a second store) gets its own bridge `berth<hash>`, table
    /// `berth_<hash>` and a /24 of its own, unless `BERTH_BRIDGE_NAME`, `BERTH_NFT_TABLE`,
    /// `BERTH_BRIDGE_SUBNET` say otherwise.
    fn net_options(&self) -> NetOptions {
        let mut o = NetOptions::default();
        if self.root() == Path::new(DEFAULT_ROOT) {
            return o;
        }
        let h = root_hash(self.root());
        let env = |k: &str| std::env::var_os(k).is_some_and(|v| !v.is_empty());
        if !env("BERTH_NFT_TABLE") {
            o.nft_table = format!("berth_{h:08x}");
        }
        if !env("BERTH_BRIDGE_NAME") {
            o.default_bridge = format!("berth{h:08x}");
        }
        o
    }

    /// Makes sure the default bridge exists; its first creation picks its subnet under a
    /// host-wide lock, so roots created side by side never choose the same one.
    pub fn ensure_default_bridge(&self) -> Result<Network, EngineError> {
        let net = self.networking()?;
        if net.network(berth_network::DEFAULT_NETWORK).is_ok() {
            return net.ensure_default_bridge().map_err(net_err);
        }
        let _lock = try_lock(Path::new("/run/berth-network.lock"), true);
        let mut o = self.net_options();
        if o.default_subnet.is_none() && self.root() != Path::new(DEFAULT_ROOT) {
            o.default_subnet = Some(pick_subnet(root_hash(self.root())).to_string());
        }
        Networking::with_options(self.store().connection(), self.runroot(), o)
            .and_then(|n| n.ensure_default_bridge())
            .map_err(net_err)
    }

    fn netns_dir(&self) -> PathBuf {
        self.runroot().join("netns")
    }

    /// The persistent namespace of a container on a bridge network.
    pub fn netns_path(&self, id: &str) -> PathBuf {
        self.netns_dir().join(id)
    }

    /// `create`: validates the network flags and returns the network mode name; sets
    /// `run.network` for `none`/`host` (bridge modes get their namespace path in
    /// [`Engine::plan_network`]).
    pub(crate) fn resolve_network_mode(
        &self,
        o: &CreateOptions,
        run: &mut RunOptions,
    ) -> Result<String, EngineError> {
        let mode = match o.network.as_deref() {
            None | Some("") | Some("default") | Some("bridge") => "bridge".to_string(),
            Some("none") => {
                run.network = NetworkMode::None;
                "none".into()
            }
            Some("host") => {
                run.network = NetworkMode::Host;
                "host".into()
            }
            Some(other) if other.starts_with("container:") => {
                return self.resolve_container_network(other, o, run);
            }
            Some(other) => {
                let net = self.networking()?;
                match net.network(other) {
                    Ok(n) if n.driver == "bridge" => n.name,
                    Ok(n) if n.name == "host" => {
                        run.network = NetworkMode::Host;
                        "host".into()
                    }
                    Ok(_) => {
                        run.network = NetworkMode::None;
                        "none".into()
                    }
                    Err(e) => return Err(network_lookup(other)(e)),
                }
            }
        };
        let r = &o.net;
        let predefined = matches!(mode.as_str(), "bridge" | "host" | "none");
        if !r.aliases.is_empty() && predefined {
            return Err(EngineError::InvalidArgument(
                "network-scoped alias is supported only for containers in user defined networks"
                    .into(),
            ));
        }
        if let Some(ip) = &r.ip {
            ip.parse::<Ipv4Addr>()
                .map_err(|_| EngineError::InvalidArgument(format!("invalid IPv4 address: {ip}")))?;
            if predefined {
                return Err(EngineError::InvalidArgument(
                    "user specified IP address is supported on user defined networks only".into(),
                ));
            }
        }
        for h in &r.add_hosts {
            files::parse_add_host(h, Some(Ipv4Addr::UNSPECIFIED)).map_err(net_err)?;
        }
        for d in &r.dns {
            d.parse::<std::net::IpAddr>()
                .map_err(|_| EngineError::InvalidArgument(format!("{d} is not an ip address")))?;
        }
        for p in &r.publish {
            berth_network::ports::parse_publish(p).map_err(net_err)?;
        }
        Ok(mode)
    }

    /// `--network container:X`: the container joins X's network namespace at every start and
    /// sees X's hostname, `/etc/hosts` and `/etc/resolv.conf` (Docker's rules and messages for
    /// the options that would contradict that).
    fn resolve_container_network(
        &self,
        mode: &str,
        o: &CreateOptions,
        run: &mut RunOptions,
    ) -> Result<String, EngineError> {
        let donor = mode.trim_start_matches("container:");
        if donor.is_empty() {
            return Err(EngineError::InvalidArgument(
                "invalid container format container:<name|id>".into(),
            ));
        }
        let r = &o.net;
        let conflict = |what: &str| {
            Err(EngineError::InvalidArgument(format!(
                "conflicting options: {what}"
            )))
        };
        if run.hostname.is_some() {
            return conflict("hostname and the network mode");
        }
        if !r.dns.is_empty() || !r.dns_search.is_empty() || !r.dns_options.is_empty() {
            return conflict("dns and the network mode");
        }
        if !r.add_hosts.is_empty() {
            return conflict("custom host-to-IP mapping and the network mode");
        }
        if !r.publish.is_empty() || r.publish_all {
            return conflict("port publishing and the container type network mode");
        }
        if !o.host.expose.is_empty() {
            return conflict("port exposing and the container type network mode");
        }
        if !r.aliases.is_empty() {
            return Err(EngineError::InvalidArgument(
                "network-scoped alias is supported only for containers in user defined networks"
                    .into(),
            ));
        }
        if r.ip.is_some() {
            return Err(EngineError::InvalidArgument(
                "user specified IP address is supported on user defined networks only".into(),
            ));
        }
        let row = self.resolve_container(donor)?;
        let spec = self.spec_of(&row.id)?;
        // The donor's names, as Docker copies them into the joining container's config.
        run.hostname = spec.config["Hostname"].as_str().map(str::to_string);
        run.domainname = spec.config["Domainname"]
            .as_str()
            .filter(|d| !d.is_empty())
            .map(str::to_string);
        // Filled in at each start with the donor's namespace (see `join_namespaces`).
        run.network = NetworkMode::Path(PathBuf::from(super::host_opts::JOINED_AT_START));
        Ok(format!("container:{}", row.id))
    }

    /// The container whose network namespace a `container:ID` mode joins.
    pub(crate) fn network_donor(mode: &str) -> Option<&str> {
        mode.strip_prefix("container:")
    }

    /// `create`, once the ID is known: records the plan, writes first versions of the files
    /// (bind sources must exist) and adds their mounts; bridge modes join `$RUNROOT/netns/<id>`.
    pub(crate) fn plan_network(
        &self,
        id: &str,
        mode: &str,
        o: &CreateOptions,
        exposed: &[String],
        run: &mut RunOptions,
    ) -> Result<(), EngineError> {
        let mut ports: Vec<PortSpec> = Vec::new();
        let mut plan = NetPlan {
            mode: mode.to_string(),
            request: o.net.clone(),
            ports: Vec::new(),
            hostname: berth_runtime::spec::hostname(id, run),
            domainname: run.domainname.clone().unwrap_or_default(),
            extra: Vec::new(),
        };
        if plan.bridged() {
            for p in &o.net.publish {
                ports.extend(berth_network::ports::parse_publish(p).map_err(net_err)?);
            }
            if o.net.publish_all {
                for s in berth_network::ports::publish_all(exposed).map_err(net_err)? {
                    if !ports
                        .iter()
                        .any(|p| p.container_port == s.container_port && p.proto == s.proto)
                    {
                        ports.push(s);
                    }
                }
            }
            run.network = NetworkMode::Path(self.netns_path(id));
        }
        plan.ports = ports;
        let dir = self.container_dir_of(id);
        // Root's alone (as `prepare_bundle` makes it), whatever the umask.
        berth_runtime::util::create_dir_mode(&dir, 0o700)
            .map_err(io_err("creating the container directory"))?;
        let b = serde_json::to_vec_pretty(&plan)
            .map_err(|e| EngineError::Internal(format!("serialising {PLAN_FILE}: {e}")))?;
        berth_runtime::util::write_atomic_deferred(&dir.join(PLAN_FILE), &b)
            .map_err(io_err("writing network.json"))?;
        let donor = Self::network_donor(mode).map(|d| self.container_dir_of(d));
        for (file, target) in [
            ("hosts", "/etc/hosts"),
            ("hostname", "/etc/hostname"),
            ("resolv.conf", "/etc/resolv.conf"),
        ] {
            if run
                .mounts
                .iter()
                .any(|m| m.target().trim_end_matches('/') == target || m.target() == "/etc")
            {
                continue;
            }
            // A container on another's network shares that container's files (which are
            // rewritten in place, so the binds stay current).
            let p = match &donor {
                Some(d) => d.join(file),
                None => {
                    let p = dir.join(file);
                    write_in_place(&p, "")?;
                    p
                }
            };
            run.mounts.push(MountSpec::Bind {
                source: p,
                target: target.into(),
                readonly: false,
            });
        }
        if donor.is_none() {
            self.write_net_files(&dir, &plan, &[])?;
        }
        Ok(())
    }

    pub(crate) fn plan_of(&self, id: &str) -> Option<NetPlan> {
        let b = std::fs::read(self.container_dir_of(id).join(PLAN_FILE)).ok()?;
        serde_json::from_slice(&b).ok()
    }

    fn save_plan(&self, id: &str, plan: &NetPlan) -> Result<(), EngineError> {
        let b = serde_json::to_vec_pretty(plan)
            .map_err(|e| EngineError::Internal(format!("serialising {PLAN_FILE}: {e}")))?;
        berth_runtime::util::write_atomic(&self.container_dir_of(id).join(PLAN_FILE), &b)
            .map_err(io_err("writing network.json"))
    }

    /// hosts / hostname / resolv.conf for the endpoints the container has.
    fn write_net_files(
        &self,
        dir: &Path,
        plan: &NetPlan,
        eps: &[Endpoint],
    ) -> Result<Vec<std::net::IpAddr>, EngineError> {
        let r = &plan.request;
        let gw = eps.first().and_then(|e| e.gateway);
        let mut extra = Vec::new();
        for h in &r.add_hosts {
            extra.push(
                files::parse_add_host(h, gw.or(Some(Ipv4Addr::UNSPECIFIED))).map_err(net_err)?,
            );
        }
        let mut names = vec![plan.hostname.clone()];
        if !plan.domainname.is_empty() {
            names.insert(0, format!("{}.{}", plan.hostname, plan.domainname));
        }
        let host_files = plan.mode == "host";
        let hosts = if host_files {
            let mut s = std::fs::read_to_string("/etc/hosts").unwrap_or_default();
            for e in &extra {
                s.push_str(&format!("{}\t{}\n", e.ip, e.name));
            }
            s
        } else {
            // Docker lists the IPv6 address of an `--ipv6` network after the IPv4 one.
            let own: Vec<(std::net::IpAddr, Vec<String>)> = eps
                .iter()
                .flat_map(|e| {
                    std::iter::once(std::net::IpAddr::V4(e.ip))
                        .chain(e.ip6.map(std::net::IpAddr::V6))
                        .map(|ip| (ip, names.clone()))
                })
                .collect();
            files::hosts(&extra, &own)
        };
        let embedded = eps
            .iter()
            .any(|e| !matches!(e.network_name.as_str(), "bridge" | "host" | "none"));
        let resolv = files::resolv_conf(
            &files::host_resolv_conf(),
            &r.dns,
            &r.dns_search,
            &r.dns_options,
            embedded,
        );
        let set = |f: &str, data: &str| -> Result<(), EngineError> {
            let p = dir.join(f);
            if p.exists() {
                write_in_place(&p, data)?;
            }
            Ok(())
        };
        set("hosts", &hosts)?;
        set("hostname", &files::hostname(&plan.hostname))?;
        set("resolv.conf", &resolv.content)?;
        Ok(resolv.upstreams)
    }

    /// `start`, before the runtime runs the container: namespace, endpoints, ports, files,
    /// proxy. On error everything is released again.
    pub(crate) fn network_before_start(
        &mut self,
        id: &str,
    ) -> Result<Option<NetStart>, EngineError> {
        let Some(plan) = self.plan_of(id) else {
            return Ok(None);
        };
        let name = self
            .store()
            .container(id)?
            .map(|r| r.name)
            .unwrap_or_default();
        let name = name.as_str();
        let dir = self.container_dir_of(id);
        if Self::network_donor(&plan.mode).is_some() {
            // The donor's files are the donor's to write.
            return Ok(None);
        }
        if !plan.bridged() {
            self.write_net_files(&dir, &plan, &[])?;
            return Ok(None);
        }
        std::fs::create_dir_all(self.netns_dir()).map_err(io_err("creating the netns dir"))?;
        let lock =
            try_lock(&self.netns_dir().join(format!("{id}.lock")), true).ok_or_else(|| {
                EngineError::Conflict(format!("container {id}: cannot lock its network"))
            })?;
        if !plan.ports.is_empty() || plan.request.ip.is_some() {
            // Ports or addresses an exited container still holds.
            let _ = self.network_gc_dead();
        }
        match self.connect_all(id, name, &plan, &dir) {
            Ok(watch) => Ok(Some(NetStart { _lock: lock, watch })),
            Err(e) => {
                self.release_network(id);
                Err(e)
            }
        }
    }

    fn connect_all(
        &mut self,
        id: &str,
        name: &str,
        plan: &NetPlan,
        dir: &Path,
    ) -> Result<Option<berth_network::ProxyWatch>, EngineError> {
        let proxy_bin = self.netproxy_path()?;
        let net = self.networking()?;
        let _ = net.release_container(id);
        let ns = self.netns_path(id);
        let _ = netlink::remove_netns(&ns);
        netlink::create_netns(&ns).map_err(net_err)?;
        self.ensure_default_bridge()?;
        let parse_ip = |ip: &Option<String>| ip.as_deref().and_then(|s| s.parse().ok());
        let mut eps = Vec::new();
        if !plan.mode.is_empty() {
            eps.push(
                net.connect(&Connect {
                    container_id: id.into(),
                    container_name: name.into(),
                    netns: ns.clone(),
                    network: plan.mode.clone(),
                    aliases: plan.request.aliases.clone(),
                    ip: parse_ip(&plan.request.ip),
                })
                .map_err(net_err)?,
            );
        }
        for x in &plan.extra {
            eps.push(
                net.connect(&Connect {
                    container_id: id.into(),
                    container_name: name.into(),
                    netns: ns.clone(),
                    network: x.network.clone(),
                    aliases: x.aliases.clone(),
                    ip: parse_ip(&x.ip),
                })
                .map_err(net_err)?,
            );
        }
        let reserved = net.publish(id, &plan.ports).map_err(|e| match e {
            berth_network::Error::PortInUse(m) => EngineError::Conflict(format!(
                "driver failed programming external connectivity on endpoint {name} ({id}): {m}"
            )),
            e => net_err(e),
        })?;
        let upstreams = self.write_net_files(dir, plan, &eps)?;
        net.start_proxy_deferred(id, reserved, &eps, &upstreams, &proxy_bin)
            .map_err(net_err)
    }

    /// `start`, once the runtime started the container (pid > 0) or failed (`None`).
    pub(crate) fn network_after_start(&mut self, id: &str, ns: Option<NetStart>, pid: Option<i32>) {
        let Some(ns) = ns else { return };
        match pid {
            Some(pid) => {
                if let Some(w) = ns.watch {
                    w.watch(pid);
                }
            }
            None => {
                drop(ns);
                self.release_network(id);
            }
        }
    }

    /// Releases everything a container holds on the network (idempotent, errors ignored).
    pub(crate) fn release_network(&self, id: &str) {
        // The namespace goes first: its veth end then dies with it in the kernel's own time
        // instead of a synchronous delete (tens of milliseconds) on our side.
        let _ = netlink::remove_netns(&self.netns_path(id));
        if let Ok(net) = self.networking() {
            let _ = net.release_container(id);
        }
    }

    /// The `berth-netproxy` helper: [`crate::EngineConfig::netproxy`], next to the executable, else this
    /// executable reached through a `berth-netproxy` link in the run root (the binary
    /// dispatches on its name).
    fn netproxy_path(&self) -> Result<PathBuf, EngineError> {
        if let Some(p) = &self.config().netproxy {
            return Ok(p.clone());
        }
        let exe = std::env::current_exe().map_err(io_err("finding the berth executable"))?;
        if let Some(dir) = exe.parent() {
            let cand = dir.join("berth-netproxy");
            if cand.is_file() {
                return Ok(cand);
            }
        }
        let link = self.runroot().join("berth-netproxy");
        if std::fs::read_link(&link).ok().as_deref() == Some(exe.as_path()) {
            return Ok(link);
        }
        let mut r = [0u8; 6];
        super::fill_random(&mut r);
        let tmp = self
            .runroot()
            .join(format!(".berth-netproxy-{}", super::pending::hex(&r)));
        std::os::unix::fs::symlink(&exe, &tmp).map_err(io_err("linking berth-netproxy"))?;
        std::fs::rename(&tmp, &link).map_err(io_err("linking berth-netproxy"))?;
        Ok(link)
    }

    /// Whether a container is running (or restarting: its exit hook releases and reconnects
    /// the network itself), or a start of it holds its network lock.
    fn network_live(&self, id: &str) -> bool {
        let lock = self.netns_dir().join(format!("{id}.lock"));
        if lock.exists() && try_lock(&lock, false).is_none() {
            return true;
        }
        self.container_running(id)
    }

    fn container_running(&self, id: &str) -> bool {
        let Ok(Some(row)) = self.store().container(id) else {
            return false;
        };
        let Ok(mut rec) = serde_json::from_str::<super::ContainerRecord>(&row.record) else {
            return false;
        };
        let live = self.live_state(id, &mut rec).0;
        live.running || live.restarting
    }

    /// Cheap check run by `ps` and by starts with ports: releases what containers that are no
    /// longer running still hold (a detached container that exited, a crashed CLI). Does
    /// nothing (and no firewall work) when every holder is live.
    pub fn network_gc_dead(&self) -> Result<usize, EngineError> {
        let net = self.networking()?;
        let mut holders: HashSet<String> = net
            .all_endpoints()
            .map_err(net_err)?
            .into_iter()
            .map(|e| e.container_id)
            .collect();
        {
            let db = self.store().connection();
            if let Ok(mut st) = db.prepare("SELECT DISTINCT container_id FROM net_ports") {
                if let Ok(rows) = st.query_map([], |r| r.get::<_, String>(0)) {
                    holders.extend(rows.flatten());
                }
            }
        }
        for dir in [net.state_dir().join("proxy"), self.netns_dir()] {
            if let Ok(rd) = std::fs::read_dir(&dir) {
                for e in rd.flatten() {
                    let n = e.file_name().to_string_lossy().to_string();
                    if let Some(id) = n.strip_suffix(".lock") {
                        // Start locks stay with their container; one without a row goes.
                        if matches!(self.store().container(id), Ok(None)) {
                            if let Some(_f) = try_lock(&e.path(), false) {
                                let _ = std::fs::remove_file(e.path());
                            }
                        }
                        continue;
                    }
                    let id = n.trim_end_matches(".pid");
                    if id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit()) {
                        holders.insert(id.to_string());
                    }
                }
            }
        }
        // A container is dead when we get its start lock (no start in progress; held until
        // the cleanup is over, so a start that begins now waits for it) and, under the lock,
        // it is not running.
        let _ = std::fs::create_dir_all(self.netns_dir());
        let mut held = Vec::new();
        let mut dead: HashSet<String> = HashSet::new();
        for c in holders {
            let lock = self.netns_dir().join(format!("{c}.lock"));
            let Some(f) = try_lock(&lock, false) else {
                continue;
            };
            if self.container_running(&c) {
                continue;
            }
            held.push((lock, f));
            dead.insert(c);
        }
        if dead.is_empty() {
            return Ok(0);
        }
        let live = |c: &str| !dead.contains(c);
        net.gc(&live).map_err(net_err)?;
        for id in &dead {
            net.stop_proxy(id);
            self.release_network(id);
        }
        for (lock, _f) in &held {
            let id = lock.file_stem().unwrap_or_default().to_string_lossy();
            if matches!(self.store().container(&id), Ok(None)) {
                let _ = std::fs::remove_file(lock);
            }
        }
        Ok(dead.len())
    }

    /// Full network garbage collection (`network prune`, `system prune`).
    pub fn network_gc(&self) -> Result<(), EngineError> {
        self.network_gc_dead()?;
        self.ensure_default_bridge()?;
        let net = self.networking()?;
        net.gc(&|c| self.network_live(c)).map_err(net_err)?;
        Ok(())
    }

    /// `ps`'s ports of a running container, in the API's shape.
    pub(crate) fn network_ps_ports(&self, id: &str, running: bool) -> Vec<Value> {
        if !running {
            return Vec::new();
        }
        let Ok(net) = self.networking() else {
            return Vec::new();
        };
        net.ports(id)
            .unwrap_or_default()
            .into_iter()
            .map(|b| {
                json!({"IP": b.host_ip.to_string(), "PrivatePort": b.container_port,
                       "PublicPort": b.host_port, "Type": b.proto.as_str()})
            })
            .collect()
    }

    /// A running container's published ports (`port`).
    pub fn container_ports(
        &mut self,
        name: &str,
    ) -> Result<Vec<berth_network::ports::PortBinding>, EngineError> {
        let (row, _rec, live) = self.load(name)?;
        if !live.running {
            return Ok(Vec::new());
        }
        self.networking()?.ports(&row.id).map_err(net_err)
    }

    /// For `ps --filter publish=/expose=`: the container ports `-p` published
    /// (`HostConfig.PortBindings` keys; `-P` adds none there, as in Docker) and the exposed
    /// ones (`Config.ExposedPorts`: the image's, `--expose` and the published ones).
    pub(crate) fn published_and_exposed(&self, id: &str) -> (Vec<String>, Vec<String>) {
        let mut published: Vec<String> = Vec::new();
        if let Some(plan) = self.plan_of(id) {
            for p in &plan.request.publish {
                for s in berth_network::ports::parse_publish(p).unwrap_or_default() {
                    published.push(format!("{}/{}", s.container_port, s.proto.as_str()));
                }
            }
        }
        let mut exposed = published.clone();
        if let Ok(spec) = self.spec_of(id) {
            if let Some(m) = spec.config["ExposedPorts"].as_object() {
                exposed.extend(m.keys().cloned());
            }
            exposed.extend(spec.image_config.exposed_ports.iter().map(|p| {
                if p.contains('/') {
                    p.clone()
                } else {
                    format!("{p}/tcp")
                }
            }));
        }
        (published, exposed)
    }

    /// Fills `NetworkSettings` and `HostConfig.PortBindings`/`PublishAllPorts` of `inspect`.
    pub(crate) fn fill_network_settings(
        &self,
        id: &str,
        spec: &ContainerSpec,
        running: bool,
        v: &mut Value,
    ) {
        let Some(plan) = self.plan_of(id) else { return };
        let dir = self.container_dir_of(id);
        let mut bindings: BTreeMap<String, Vec<Value>> = BTreeMap::new();
        for p in &plan.ports {
            let key = format!("{}/{}", p.container_port, p.proto.as_str());
            let hp = match p.host_ports {
                (0, 0) => String::new(),
                (a, b) if a == b => a.to_string(),
                (a, b) => format!("{a}-{b}"),
            };
            bindings.entry(key).or_default().push(json!({
                "HostIp": p.host_ip.map(|i| i.to_string()).unwrap_or_default(),
                "HostPort": hp,
            }));
        }
        v["HostConfig"]["PortBindings"] = json!(bindings);
        v["HostConfig"]["PublishAllPorts"] = json!(plan.request.publish_all);
        v["HostConfig"]["Dns"] = json!(plan.request.dns);
        v["HostConfig"]["ExtraHosts"] = if plan.request.add_hosts.is_empty() {
            Value::Null
        } else {
            json!(plan.request.add_hosts)
        };
        // A container on another's network uses the donor's files (Docker shows their paths).
        let files_dir = match Self::network_donor(&plan.mode) {
            Some(d) => self.container_dir_of(d),
            None => dir.clone(),
        };
        for (k, f) in [
            ("ResolvConfPath", "resolv.conf"),
            ("HostnamePath", "hostname"),
            ("HostsPath", "hosts"),
        ] {
            if files_dir.join(f).exists() {
                v[k] = json!(files_dir.join(f));
            }
        }
        if Self::network_donor(&plan.mode).is_some() {
            // Docker: no ports and no networks of its own.
            v["NetworkSettings"]["Ports"] = json!({});
            v["NetworkSettings"]["Networks"] = json!({});
            return;
        }
        let (eps, ports) = match (running, self.networking()) {
            (true, Ok(net)) => (
                net.container_endpoints(id).unwrap_or_default(),
                net.ports(id).unwrap_or_default(),
            ),
            _ => (Vec::new(), Vec::new()),
        };
        let mut port_map: BTreeMap<String, Value> = BTreeMap::new();
        if running {
            let exposed = spec.image_config.exposed_ports.iter().cloned();
            for k in exposed.chain(
                plan.ports
                    .iter()
                    .map(|p| format!("{}/{}", p.container_port, p.proto.as_str())),
            ) {
                let k = if k.contains('/') {
                    k
                } else {
                    format!("{k}/tcp")
                };
                port_map.entry(k).or_insert(Value::Null);
            }
            for b in &ports {
                let e = port_map.entry(b.key()).or_insert(Value::Null);
                if e.is_null() {
                    *e = json!([]);
                }
                e.as_array_mut().unwrap().push(json!({
                    "HostIp": b.host_ip.to_string(), "HostPort": b.host_port.to_string()
                }));
            }
        }
        let ns = &mut v["NetworkSettings"];
        ns["Ports"] = json!(port_map);
        if plan.bridged() {
            ns["SandboxKey"] = json!(if running {
                self.netns_path(id).display().to_string()
            } else {
                String::new()
            });
        }
        let endpoint_json = |n: &str, e: Option<&Endpoint>, aliases: &[String]| {
            let netid = self
                .networking()
                .ok()
                .and_then(|net| net.network(n).ok())
                .map(|n| n.id)
                .unwrap_or_default();
            let mut a: Vec<String> = aliases.to_vec();
            if let Some(e) = e {
                for x in &e.aliases {
                    if !a.contains(x) {
                        a.push(x.clone());
                    }
                }
            }
            // Docker adds the short ID on user networks (DNS answers it, too).
            let short = &id[..id.len().min(12)];
            if !a.iter().any(|x| x == short) {
                a.push(short.to_string());
            }
            json!({
                "IPAMConfig": Value::Null,
                "Links": Value::Null,
                "Aliases": if a.is_empty() || matches!(n, "bridge" | "host" | "none") { Value::Null } else { json!(a) },
                "NetworkID": netid,
                "EndpointID": e.map(|e| berth_network::host_veth_name(&e.container_id, &e.network_id)).unwrap_or_default(),
                "Gateway": e.and_then(|e| e.gateway).map(|g| g.to_string()).unwrap_or_default(),
                "IPAddress": e.map(|e| e.ip.to_string()).unwrap_or_default(),
                "IPPrefixLen": e.map(|e| e.prefix).unwrap_or(0),
                "IPv6Gateway": e.and_then(|e| e.gateway6).map(|g| g.to_string()).unwrap_or_default(),
                "GlobalIPv6Address": e.and_then(|e| e.ip6).map(|i| i.to_string()).unwrap_or_default(),
                "GlobalIPv6PrefixLen": e.map(|e| e.prefix6).unwrap_or(0),
                "MacAddress": e.map(|e| e.mac.clone()).unwrap_or_default(),
                "DriverOpts": Value::Null,
            })
        };
        let mut nets = serde_json::Map::new();
        let mut wanted: Vec<(String, Vec<String>)> =
            vec![(plan.mode.clone(), plan.request.aliases.clone())];
        for x in &plan.extra {
            wanted.push((x.network.clone(), x.aliases.clone()));
        }
        for (n, aliases) in wanted.iter().filter(|(n, _)| !n.is_empty()) {
            let e = eps.iter().find(|e| &e.network_name == n);
            nets.insert(n.clone(), endpoint_json(n, e, aliases));
        }
        if let Some(first) = eps.first() {
            ns["Gateway"] = json!(first.gateway.map(|g| g.to_string()).unwrap_or_default());
            ns["IPAddress"] = json!(first.ip.to_string());
            ns["IPPrefixLen"] = json!(first.prefix);
            ns["MacAddress"] = json!(first.mac);
            ns["IPv6Gateway"] = json!(first.gateway6.map(|g| g.to_string()).unwrap_or_default());
            ns["GlobalIPv6Address"] = json!(first.ip6.map(|i| i.to_string()).unwrap_or_default());
            ns["GlobalIPv6PrefixLen"] = json!(first.prefix6);
            ns["EndpointID"] = json!(berth_network::host_veth_name(
                &first.container_id,
                &first.network_id
            ));
        }
        ns["Networks"] = Value::Object(nets);
    }

    // ---- network commands ----

    /// `network create`.
    pub fn network_create(&self, req: &CreateNetwork) -> Result<Network, EngineError> {
        self.ensure_default_bridge()?;
        let n = self.networking()?.create_network(req).map_err(net_err)?;
        self.record_event(
            "network",
            "create",
            &n.id,
            &[("name", &n.name), ("type", "bridge")],
        );
        Ok(n)
    }

    /// `network ls` (makes sure the predefined networks exist).
    pub fn network_list(&self) -> Result<Vec<Network>, EngineError> {
        let net = self.networking()?;
        if net.network("bridge").is_err() {
            self.ensure_default_bridge()?;
        }
        net.networks().map_err(net_err)
    }

    /// `GET /networks?filters=` and `network ls --filter`: `name=` (substring), `id=` (prefix),
    /// `driver=`, `type=builtin|custom`, `label=KEY[=VALUE]`, `scope=`, `dangling=`, with
    /// Docker's words for a filter it does not know.
    pub fn network_list_filtered(&self, filters: &[String]) -> Result<Vec<Network>, EngineError> {
        let mut out = Vec::new();
        'nets: for n in self.network_list()? {
            for f in filters {
                let (k, v) = f.split_once('=').unwrap_or((f.as_str(), ""));
                let ok = match k {
                    "name" => n.name.contains(v),
                    "id" => n.id.starts_with(v),
                    "driver" => n.driver == v,
                    "type" => match v {
                        "builtin" => n.is_predefined(),
                        "custom" => !n.is_predefined(),
                        _ => {
                            return Err(EngineError::InvalidArgument(format!(
                                "invalid filter: 'type'='{v}'"
                            )))
                        }
                    },
                    "label" => match v.split_once('=') {
                        Some((lk, lv)) => n.labels.get(lk).is_some_and(|x| x == lv),
                        None => n.labels.contains_key(v),
                    },
                    // Every berth network is local.
                    "scope" => v == "local",
                    // Docker's: a custom network no container uses.
                    "dangling" => {
                        let want = match v {
                            "true" | "1" => true,
                            "false" | "0" => false,
                            _ => {
                                return Err(EngineError::InvalidArgument(format!(
                                    "invalid filter 'dangling={v}'"
                                )))
                            }
                        };
                        let unused = !n.is_predefined()
                            && self.containers_configured_for(&n.name)?.is_empty();
                        unused == want
                    }
                    _ => {
                        return Err(EngineError::InvalidArgument(format!(
                            "invalid filter '{k}'"
                        )))
                    }
                };
                if !ok {
                    continue 'nets;
                }
            }
            out.push(n);
        }
        Ok(out)
    }

    /// `GET /networks/{id}` and `network inspect`: Docker's shape.
    ///
    /// Side effects, kept on purpose: `network_gc_dead` first (so `Containers` lists only
    /// containers that still hold an endpoint), and the default `bridge` network's row and
    /// bridge are made if missing (Docker always has it; berth makes it on first use).
    pub fn network_inspect(&self, name: &str) -> Result<Value, EngineError> {
        let _ = self.network_gc_dead();
        let net = self.networking()?;
        if net.network("bridge").is_err() {
            self.ensure_default_bridge()?;
        }
        let n = net.network(name).map_err(network_lookup(name))?;
        let mut containers = serde_json::Map::new();
        for e in net.network_endpoints(&n.id).map_err(net_err)? {
            containers.insert(
                e.container_id.clone(),
                json!({
                    "Name": e.container_name,
                    "EndpointID": berth_network::host_veth_name(&e.container_id, &e.network_id),
                    "MacAddress": e.mac,
                    "IPv4Address": format!("{}/{}", e.ip, e.prefix),
                    "IPv6Address": e.ip6.map(|i| format!("{i}/{}", e.prefix6)).unwrap_or_default(),
                }),
            );
        }
        let mut config: Vec<Value> = Vec::new();
        for (s, g) in [(&n.subnet, &n.gateway), (&n.subnet6, &n.gateway6)] {
            match (s, g) {
                (Some(s), Some(g)) => config.push(json!({"Subnet": s, "Gateway": g})),
                (Some(s), None) => config.push(json!({"Subnet": s})),
                _ => {}
            }
        }
        let mut options = serde_json::Map::new();
        if let Some(b) = &n.bridge {
            options.insert("com.docker.network.bridge.name".into(), json!(b));
        }
        Ok(json!({
            "Name": n.name,
            "Id": n.id,
            "Created": n.created,
            "Scope": "local",
            "Driver": n.driver,
            "EnableIPv4": true,
            "EnableIPv6": n.ipv6,
            "IPAM": {"Driver": "default", "Options": {}, "Config": config},
            "Internal": n.internal,
            "Attachable": false,
            "Ingress": false,
            "ConfigFrom": {"Network": ""},
            "ConfigOnly": false,
            "Containers": containers,
            "Options": options,
            "Labels": n.labels,
        }))
    }

    /// `network rm`: refuses networks with endpoints (running containers) and networks that
    /// stopped containers are configured for.
    pub fn network_remove(&self, name: &str) -> Result<String, EngineError> {
        let _ = self.network_gc_dead();
        let net = self.networking()?;
        let n = net.network(name).map_err(network_lookup(name))?;
        if let Some(c) = self.containers_configured_for(&n.name)?.first() {
            if !n.is_predefined() {
                return Err(EngineError::Conflict(format!(
                    "error while removing network: network {} id {} has active endpoints ({c})",
                    n.name, n.id
                )));
            }
        }
        net.remove_network(&n.id).map_err(net_err)?;
        self.record_event(
            "network",
            "destroy",
            &n.id,
            &[("name", &n.name), ("type", "bridge")],
        );
        Ok(name.to_string())
    }

    /// Names of containers whose plan names network `name`.
    pub fn containers_configured_for(&self, name: &str) -> Result<Vec<String>, EngineError> {
        let mut out = Vec::new();
        for row in self.store().containers()? {
            if let Some(p) = self.plan_of(&row.id) {
                if p.mode == name || p.extra.iter().any(|x| x.network == name) {
                    out.push(row.name.clone());
                }
            }
        }
        Ok(out)
    }

    /// `network prune`: user networks no container uses or is configured for.
    pub fn network_prune(&self, filters: &[String]) -> Result<Vec<String>, EngineError> {
        let f = PruneFilters::parse(filters)?;
        self.network_gc()?;
        let net = self.networking()?;
        let mut out = Vec::new();
        for n in net.networks().map_err(net_err)? {
            if n.is_predefined() || !self.containers_configured_for(&n.name)?.is_empty() {
                continue;
            }
            let created = super::parse_time_arg(&n.created).unwrap_or(0.0);
            if !f.matches(created, &n.labels) {
                continue;
            }
            match net.remove_network(&n.id) {
                Ok(_) => out.push(n.name),
                Err(berth_network::Error::Conflict(_)) => {}
                Err(e) => return Err(net_err(e)),
            }
        }
        Ok(out)
    }

    /// `network connect`: a running container is attached now (and again at each start); a
    /// stopped one at its next start.
    pub fn network_connect(
        &mut self,
        network: &str,
        container: &str,
        aliases: &[String],
        ip: Option<&str>,
    ) -> Result<(), EngineError> {
        let (row, _rec, live) = self.load(container)?;
        let mut plan = self.plan_of(&row.id).ok_or_else(|| {
            EngineError::FailedPrecondition(format!(
                "container {container} has no network settings"
            ))
        })?;
        if !plan.bridged() {
            return Err(EngineError::Conflict(format!(
                "container sharing network namespace with another container or host cannot be connected to any other network (network mode {})",
                plan.mode
            )));
        }
        let n = self
            .networking()?
            .network(network)
            .map_err(network_lookup(network))?;
        let event = (n.id.clone(), n.name.clone());
        if plan.mode == n.name || plan.extra.iter().any(|x| x.network == n.name) {
            return Err(EngineError::Conflict(format!(
                "endpoint with name {} already exists in network {}",
                row.name, n.name
            )));
        }
        if live.running {
            let ep = self
                .networking()?
                .connect(&Connect {
                    container_id: row.id.clone(),
                    container_name: row.name.clone(),
                    netns: self.netns_path(&row.id),
                    network: n.name.clone(),
                    aliases: aliases.to_vec(),
                    ip: ip.and_then(|s| s.parse().ok()),
                })
                .map_err(net_err)?;
            let _ = ep;
            let eps = self
                .networking()?
                .container_endpoints(&row.id)
                .unwrap_or_default();
            let upstreams = self
                .write_net_files(&self.container_dir_of(&row.id), &plan, &eps)
                .unwrap_or_default();
            // The container now resolves the names of its new network (embedded DNS).
            let proxy_bin = self.netproxy_path()?;
            self.networking()?
                .update_dns(&row.id, &eps, &upstreams, live.pid, &proxy_bin)
                .map_err(net_err)?;
        }
        if plan.mode.is_empty() {
            plan.mode = n.name;
            plan.request.aliases = aliases.to_vec();
            plan.request.ip = ip.map(String::from);
        } else {
            plan.extra.push(ExtraNetwork {
                network: n.name,
                aliases: aliases.to_vec(),
                ip: ip.map(String::from),
            });
        }
        self.save_plan(&row.id, &plan)?;
        let attrs = [
            ("container", row.id.as_str()),
            ("name", &event.1),
            ("type", "bridge"),
        ];
        self.record_event("network", "connect", &event.0, &attrs);
        Ok(())
    }

    /// `network disconnect`.
    pub fn network_disconnect(
        &mut self,
        network: &str,
        container: &str,
    ) -> Result<(), EngineError> {
        let (row, _rec, live) = self.load(container)?;
        let mut plan = self.plan_of(&row.id).unwrap_or_default();
        let n = self
            .networking()?
            .network(network)
            .map_err(network_lookup(network))?;
        let configured = plan.mode == n.name || plan.extra.iter().any(|x| x.network == n.name);
        let event = (n.id.clone(), n.name.clone());
        if !configured {
            return Err(EngineError::FailedPrecondition(format!(
                "container {} is not connected to network {}",
                row.id, n.name
            )));
        }
        if live.running {
            let net = self.networking()?;
            let _ = net.disconnect(&row.id, &n.id);
            let eps = net.container_endpoints(&row.id).unwrap_or_default();
            // Only rewrites what a running responder reads; never starts one.
            let _ = net.update_dns(&row.id, &eps, &[], 0, Path::new(""));
        }
        if plan.mode == n.name {
            plan.mode = match plan.extra.first() {
                Some(_) => plan.extra.remove(0).network,
                None => String::new(),
            };
        } else {
            plan.extra.retain(|x| x.network != n.name);
        }
        self.save_plan(&row.id, &plan)?;
        let attrs = [
            ("container", row.id.as_str()),
            ("name", &event.1),
            ("type", "bridge"),
        ];
        self.record_event("network", "disconnect", &event.0, &attrs);
        Ok(())
    }
}

/// `berth-netproxy` entry point (the berth binary dispatches on its name).
pub fn netproxy_main() -> ! {
    let Some(arg) = std::env::args().nth(1) else {
        eprintln!("usage: berth-netproxy CONFIG-JSON");
        std::process::exit(2);
    };
    match serde_json::from_str::<berth_network::proxy::ProxyConfig>(&arg) {
        Ok(cfg) => berth_network::proxy::run(cfg),
        Err(e) => {
            eprintln!("berth-netproxy: bad config: {e}");
            std::process::exit(2);
        }
    }
}

/// Protocol helper for callers formatting ports.
pub fn proto_str(p: Proto) -> &'static str {
    p.as_str()
}

/// The filters `network prune` and `system prune` take, as Docker's: `until=` (a timestamp or a
/// duration), `label=KEY[=VALUE]`, `label!=KEY[=VALUE]`.
#[derive(Debug, Default)]
pub struct PruneFilters {
    until: Option<f64>,
    labels: Vec<String>,
    not_labels: Vec<String>,
}

impl PruneFilters {
    pub fn parse(filters: &[String]) -> Result<PruneFilters, EngineError> {
        let mut f = PruneFilters::default();
        for a in filters {
            let Some((k, v)) = a.split_once('=') else {
                return Err(EngineError::InvalidArgument(
                    "bad format of filter (expected name=value)".into(),
                ));
            };
            match k {
                "until" => f.until = Some(super::parse_time_arg(v)?),
                "label" => f.labels.push(v.to_string()),
                "label!" => f.not_labels.push(v.to_string()),
                _ => {
                    return Err(EngineError::InvalidArgument(format!(
                        "invalid filter '{k}'"
                    )))
                }
            }
        }
        Ok(f)
    }

    /// Whether `until=` was given.
    pub fn has_until(&self) -> bool {
        self.until.is_some()
    }

    /// Whether a `label`/`label!` filter was given.
    pub fn has_labels(&self) -> bool {
        !self.labels.is_empty() || !self.not_labels.is_empty()
    }

    /// The `until=` cutoff (unix seconds).
    pub fn until(&self) -> Option<f64> {
        self.until
    }

    /// Whether an object created at `created` (unix seconds) with `labels` is pruned.
    pub fn matches(&self, created: f64, labels: &BTreeMap<String, String>) -> bool {
        let has = |l: &String| match l.split_once('=') {
            Some((k, v)) => labels.get(k).is_some_and(|x| x == v),
            None => labels.contains_key(l),
        };
        self.until.is_none_or(|u| created < u)
            && self.labels.iter().all(has)
            && !self.not_labels.iter().any(has)
    }
}
