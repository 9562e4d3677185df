//! berth-network: container networking for berth — bridge networks, veth endpoints, IPAM,
//! published ports, per-container `/etc/hosts`/`hostname`/`resolv.conf`, an embedded DNS
//! responder — without a daemon.
//!
//! # Model
//! - A [`Network`] (name, id, driver `bridge`, subnet, gateway, internal, bridge device) and its
//!   [`Endpoint`]s (container, address, MAC, aliases, veth names) are rows in berth.db, in tables
//!   this crate creates (`net_networks`, `net_endpoints`, `net_ports`) on the connection the
//!   engine hands over. The predefined networks are `bridge` (device `berth0`, by default
//!   10.210.0.0/16 or the first free /16 after it; `BERTH_BRIDGE_SUBNET` overrides), `host` and
//!   `none`. User networks get `berth-<id>` devices and free /24s from 10.211.0.0/16.
//! - IPAM: an address is chosen and recorded in one `BEGIN IMMEDIATE` transaction (plus a
//!   `UNIQUE(network, ip)` constraint), so concurrent CLIs never hand out the same address and
//!   allocations survive reboots.
//! - Host state (bridge devices, the `inet berth` nftables table, DNS record files under
//!   `$RUNROOT/network`) is derived from the database. The nftables table is rewritten whole in
//!   one atomic `nft -f -` transaction whenever networks or published ports change (never for a
//!   plain `run` on the default bridge); derived state is rewritten under a file lock, after the
//!   database commit, so the last writer always sees every committed change.
//!
//! # Use
//! ```no_run
//! # fn demo(db: &rusqlite::Connection) -> berth_network::Result<()> {
//! use berth_network::*;
//! let net = Networking::new(db, "/run/berth".as_ref())?;
//! net.ensure_default_bridge()?;
//! // `start`, after the runtime made the container's namespace:
//! let ep = net.connect(&Connect {
//!     container_id: "abc…".into(), container_name: "web".into(),
//!     netns: "/proc/1234/ns/net".into(), network: "bridge".into(), ..Default::default()
//! })?;
//! let reserved = net.publish("abc…", &ports::parse_publish("8080:80")?)?; // "address already in use"
//! net.start_proxy("abc…", 1234, reserved, &[ep.clone()], &[])?;         // userland proxy + DNS
//! // `stop`/`rm`, and `gc` for containers that vanished:
//! net.release_container("abc…")?;
//! # Ok(()) }
//! ```
//! File contents for the container come from [`files`]; port syntax from [`ports`]. The
//! engine can make the container's namespace itself ([`netlink::create_netns`], a bind mount
//! like `ip netns add`), point the runtime spec at it (`NetworkMode::Path`), connect it before
//! the container starts and [`netlink::remove_netns`] it after the exit.
//! `BERTH_NETWORK_TRACE=1` prints the time `connect` spends in the database and in netlink.
//!
//! # Invariants
//! - Crash safety: the endpoint row is committed before the veth is created, so a crash leaves
//!   a row that [`Networking::gc`] (given the set of live containers) turns into a full
//!   cleanup; every cleanup step is idempotent (missing links, rows and rules are fine).
//! - Coexistence: berth never edits Docker's/Podman's rules; it owns `table inet berth` and, when
//!   a foreign FORWARD drop policy exists (Docker's), two accept rules for `berth+` in
//!   `DOCKER-USER` (see [`nft::ensure_forward_accept`]).
//! - Published ports: the CLI binds the host sockets itself (errors like Docker's), the
//!   `berth-netproxy` helper inherits them and serves loopback; IPv4 traffic to the host's
//!   other addresses is DNATed by nftables, IPv6 traffic (the `[::]` binding Docker 20.10 adds
//!   on hosts with IPv6) is served by the helper alone (see [`proxy`], [`ports::reserve`]).

pub mod files;
pub mod netlink;
pub mod nft;
pub mod ports;
pub mod proxy;
pub mod subnet;

mod manager;
pub use manager::*;

/// Errors of this crate; messages are single lines meant for users.
#[derive(Debug)]
pub enum Error {
    /// Bad input (subnet, port spec, name).
    Invalid(String),
    /// No such network / endpoint.
    NotFound(String),
    /// Conflicts: name taken, overlapping subnet, address taken, network in use.
    Conflict(String),
    /// A host port is taken (Docker's "address already in use" wording).
    PortInUse(String),
    Netlink(String),
    Firewall(String),
    Db(rusqlite::Error),
    Io(std::io::Error),
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Invalid(s) | Error::NotFound(s) | Error::Conflict(s) | Error::PortInUse(s) => {
                f.write_str(s)
            }
            Error::Netlink(s) => write!(f, "netlink: {s}"),
            Error::Firewall(s) => write!(f, "firewall: {s}"),
            Error::Db(e) => write!(f, "network database: {e}"),
            Error::Io(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Self {
        Error::Db(e)
    }
}
impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::Io(e)
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
