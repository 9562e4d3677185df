//! Links, addresses and routes through rtnetlink (no `ip` binary).
//!
//! Every function runs its own current-thread tokio runtime, so callers stay synchronous. Work
//! inside a container's network namespace happens on a short-lived thread that `setns`es into it
//! first: a netlink socket belongs to the namespace it was created in.

use crate::{Error, Result};
use futures_util::TryStreamExt;
use rtnetlink::packet_route::link::{InfoData, InfoVeth, LinkAttribute, LinkMessage};
use rtnetlink::{
    Handle, LinkBridge, LinkMessageBuilder, LinkUnspec, LinkVeth, RouteMessageBuilder,
};
use std::fs::File;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::AsRawFd;
use std::path::Path;

/// errno carried by a netlink error (positive), if any.
fn errno(e: &rtnetlink::Error) -> Option<i32> {
    match e {
        rtnetlink::Error::NetlinkError(m) => m.code.map(|c| -c.get()),
        _ => None,
    }
}

fn nl(what: &str, e: rtnetlink::Error) -> Error {
    match errno(&e) {
        Some(code) => Error::Netlink(format!(
            "{what}: {}",
            std::io::Error::from_raw_os_error(code)
        )),
        None => Error::Netlink(format!("{what}: {e}")),
    }
}

/// Runs `f` with a netlink handle in the current network namespace.
pub(crate) fn with_handle<T, F, Fut>(f: F) -> Result<T>
where
    F: FnOnce(Handle) -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()?;
    rt.block_on(async move {
        let (conn, handle, _) = rtnetlink::new_connection()?;
        let task = tokio::spawn(conn);
        let r = f(handle).await;
        task.abort();
        r
    })
}

/// Runs `f` on a thread that has joined the network namespace at `netns`.
pub(crate) fn in_netns<T: Send, F: FnOnce() -> Result<T> + Send>(netns: &Path, f: F) -> Result<T> {
    let ns = File::open(netns)
        .map_err(|e| Error::Invalid(format!("network namespace {}: {e}", netns.display())))?;
    std::thread::scope(|s| {
        s.spawn(|| {
            // SAFETY: plain syscall on a valid fd; only this thread changes namespace, and it
            // ends right after `f`.
            if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                return Err(Error::Io(std::io::Error::last_os_error()));
            }
            f()
        })
        .join()
        .map_err(|_| Error::Netlink("namespace thread panicked".into()))?
    })
}

async fn link_index(handle: &Handle, name: &str) -> Result<Option<u32>> {
    let mut links = handle.link().get().match_name(name.to_string()).execute();
    match links.try_next().await {
        Ok(Some(m)) => Ok(Some(m.header.index)),
        Ok(None) => Ok(None),
        Err(e) if errno(&e) == Some(libc::ENODEV) => Ok(None),
        Err(e) => Err(nl(&format!("looking up {name}"), e)),
    }
}

/// Index of the link `name` in the current namespace, if it exists.
pub fn link_exists(name: &str) -> Result<bool> {
    with_handle(|h| async move { Ok(link_index(&h, name).await?.is_some()) })
}

/// Creates the bridge `name` (up) with `gateway/prefix` on it, or completes a partial one.
pub fn ensure_bridge(name: &str, gateway: Ipv4Addr, prefix: u8) -> Result<()> {
    with_handle(|h| async move {
        let idx = match link_index(&h, name).await? {
            Some(i) => i,
            None => {
                match h.link().add(LinkBridge::new(name).build()).execute().await {
                    Ok(()) => {}
                    Err(e) if errno(&e) == Some(libc::EEXIST) => {}
                    Err(e) => return Err(nl(&format!("creating bridge {name}"), e)),
                }
                link_index(&h, name)
                    .await?
                    .ok_or_else(|| Error::Netlink(format!("bridge {name} vanished")))?
            }
        };
        match h
            .address()
            .add(idx, IpAddr::V4(gateway), prefix)
            .execute()
            .await
        {
            Ok(()) => {}
            Err(e) if errno(&e) == Some(libc::EEXIST) => {}
            Err(e) => return Err(nl(&format!("adding {gateway}/{prefix} to {name}"), e)),
        }
        h.link()
            .set(LinkUnspec::new_with_index(idx).up().build())
            .execute()
            .await
            .map_err(|e| nl(&format!("setting {name} up"), e))
    })
}

/// Adds an IPv6 address without duplicate address detection (the address is berth's to give;
/// with DAD it would stay tentative, unusable, for a second or more); an existing one is fine.
async fn add_address6(h: &Handle, idx: u32, ip: Ipv6Addr, prefix: u8, what: &str) -> Result<()> {
    use rtnetlink::packet_route::address::{AddressAttribute, AddressFlags};
    let mut req = h.address().add(idx, IpAddr::V6(ip), prefix);
    req.message_mut()
        .attributes
        .push(AddressAttribute::Flags(AddressFlags::Nodad));
    match req.execute().await {
        Ok(()) => Ok(()),
        Err(e) if errno(&e) == Some(libc::EEXIST) => Ok(()),
        Err(e) => Err(nl(&format!("adding {ip}/{prefix} to {what}"), e)),
    }
}

/// Puts the IPv6 gateway `gateway/prefix` of an `--ipv6` network on its bridge.
pub fn ensure_bridge_ipv6(name: &str, gateway: Ipv6Addr, prefix: u8) -> Result<()> {
    with_handle(|h| async move {
        let idx = link_index(&h, name)
            .await?
            .ok_or_else(|| Error::Netlink(format!("bridge {name} does not exist")))?;
        add_address6(&h, idx, gateway, prefix, name).await
    })
}

/// Deletes the link `name` in the current namespace; a missing link is not an error.
pub fn delete_link(name: &str) -> Result<()> {
    with_handle(|h| async move {
        let Some(idx) = link_index(&h, name).await? else {
            return Ok(());
        };
        match h.link().del(idx).execute().await {
            Ok(()) => Ok(()),
            Err(e) if errno(&e) == Some(libc::ENODEV) => Ok(()),
            Err(e) => Err(nl(&format!("deleting {name}"), e)),
        }
    })
}

/// Names of the links enslaved to the bridge `bridge` (empty when it does not exist).
pub fn bridge_ports(bridge: &str) -> Result<Vec<String>> {
    with_handle(|h| async move {
        let Some(b) = link_index(&h, bridge).await? else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        let mut links = h.link().get().execute();
        while let Some(m) = links.try_next().await.map_err(|e| nl("listing links", e))? {
            let mut name = None;
            let mut on = false;
            for a in m.attributes {
                match a {
                    LinkAttribute::IfName(n) => name = Some(n),
                    LinkAttribute::Controller(c) if c == b => on = true,
                    _ => {}
                }
            }
            if let (true, Some(n)) = (on, name) {
                out.push(n);
            }
        }
        Ok(out)
    })
}

/// What [`attach`] sets up.
pub struct VethConfig<'a> {
    pub bridge: &'a str,
    pub host_name: &'a str,
    pub netns: &'a Path,
    /// Interface name inside the namespace (`eth0`, `eth1`, ...).
    pub ifname: &'a str,
    pub mac: [u8; 6],
    pub ip: Ipv4Addr,
    pub prefix: u8,
    /// Default route via this address (`None`: no default route, e.g. a second network).
    pub gateway: Option<Ipv4Addr>,
    /// The IPv6 address and prefix on an `--ipv6` network.
    pub ip6: Option<(Ipv6Addr, u8)>,
    /// IPv6 default route via this address.
    pub gateway6: Option<Ipv6Addr>,
}

/// Creates a veth pair whose host end joins the bridge and whose other end is created directly
/// inside the namespace (one netlink request), then configures it there: address, up, default
/// route, loopback up.
pub fn attach(c: &VethConfig) -> Result<()> {
    // Host names are derived from the container and network, so a link with this name is the
    // previous start's, which the kernel may still be tearing down after its namespace went
    // (a quick stop/start): remove it rather than fail with EEXIST.
    delete_link(c.host_name)?;
    let ns = File::open(c.netns)
        .map_err(|e| Error::Invalid(format!("network namespace {}: {e}", c.netns.display())))?;
    let nsfd = ns.as_raw_fd();
    with_handle(|h| async move {
        let bridge = link_index(&h, c.bridge)
            .await?
            .ok_or_else(|| Error::Netlink(format!("bridge {} does not exist", c.bridge)))?;
        let peer: LinkMessage = LinkUnspec::new_with_name(c.ifname)
            .setns_by_fd(nsfd)
            .address(c.mac.to_vec())
            .build();
        let msg = LinkMessageBuilder::<LinkVeth>::new(c.host_name, c.ifname)
            .set_info_data(InfoData::Veth(InfoVeth::Peer(peer)))
            .controller(bridge)
            .up()
            .build();
        h.link().add(msg).execute().await.map_err(|e| {
            if errno(&e) == Some(libc::EEXIST) {
                Error::Conflict(format!(
                    "interface {} or {} already exists",
                    c.host_name, c.ifname
                ))
            } else {
                nl(&format!("creating veth {}", c.host_name), e)
            }
        })
    })?;
    let r = in_netns(c.netns, || {
        with_handle(|h| async move {
            for name in ["lo", c.ifname] {
                h.link()
                    .set(LinkUnspec::new_with_name(name).up().build())
                    .execute()
                    .await
                    .map_err(|e| nl(&format!("setting {name} up in the container"), e))?;
            }
            let idx = link_index(&h, c.ifname)
                .await?
                .ok_or_else(|| Error::Netlink(format!("{} missing in the container", c.ifname)))?;
            h.address()
                .add(idx, IpAddr::V4(c.ip), c.prefix)
                .execute()
                .await
                .map_err(|e| nl(&format!("adding {}/{}", c.ip, c.prefix), e))?;
            if let Some(gw) = c.gateway {
                // `onlink`: the gateway is on this link's subnet by construction, and without
                // the flag the kernel checks its reachability, which fails with ENETUNREACH
                // while the veth's carrier is still coming up (seen under concurrent starts).
                let route = RouteMessageBuilder::<Ipv4Addr>::new()
                    .gateway(gw)
                    .output_interface(idx)
                    .onlink()
                    .build();
                h.route()
                    .add(route)
                    .execute()
                    .await
                    .map_err(|e| nl("adding the default route", e))?;
            }
            if let Some((ip6, prefix6)) = c.ip6 {
                add_address6(&h, idx, ip6, prefix6, c.ifname).await?;
            }
            if let Some(gw6) = c.gateway6 {
                let route = RouteMessageBuilder::<Ipv6Addr>::new()
                    .gateway(gw6)
                    .output_interface(idx)
                    .onlink()
                    .build();
                h.route()
                    .add(route)
                    .execute()
                    .await
                    .map_err(|e| nl("adding the IPv6 default route", e))?;
            }
            Ok(())
        })
    });
    if r.is_err() {
        let _ = delete_link(c.host_name);
    }
    r
}

/// Deletes the interface `ifname` inside the namespace (used by `disconnect` while the
/// container runs; its host end goes with it).
pub fn detach_in_netns(netns: &Path, ifname: &str) -> Result<()> {
    if !netns.exists() {
        return Ok(());
    }
    in_netns(netns, || delete_link(ifname))
}

/// Sets loopback up in a namespace (for `--network none`).
pub fn loopback_up(netns: &Path) -> Result<()> {
    in_netns(netns, || {
        with_handle(|h| async move {
            h.link()
                .set(LinkUnspec::new_with_name("lo").up().build())
                .execute()
                .await
                .map_err(|e| nl("setting lo up", e))
        })
    })
}

/// Creates a persistent network namespace bound at `path` (like `ip netns add`), with `lo` up.
/// The engine points the container's runtime spec at it, connects it before the container
/// starts, and removes it with [`remove_netns`] after the container exited.
pub fn create_netns(path: &Path) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)?;
    let target = std::ffi::CString::new(path.as_os_str().as_encoded_bytes())
        .map_err(|_| Error::Invalid(format!("bad path {}", path.display())))?;
    let r = std::thread::scope(|s| {
        s.spawn(|| -> Result<()> {
            // SAFETY: unshare/mount on this thread only; it ends right after.
            unsafe {
                if libc::unshare(libc::CLONE_NEWNET) != 0 {
                    return Err(std::io::Error::last_os_error().into());
                }
                let src = c"/proc/thread-self/ns/net";
                if libc::mount(
                    src.as_ptr(),
                    target.as_ptr(),
                    std::ptr::null(),
                    libc::MS_BIND,
                    std::ptr::null(),
                ) != 0
                {
                    return Err(std::io::Error::last_os_error().into());
                }
            }
            with_handle(|h| async move {
                h.link()
                    .set(LinkUnspec::new_with_name("lo").up().build())
                    .execute()
                    .await
                    .map_err(|e| nl("setting lo up", e))
            })
        })
        .join()
        .map_err(|_| Error::Netlink("namespace thread panicked".into()))?
    });
    if r.is_err() {
        let _ = remove_netns(path);
    }
    r
}

/// Unmounts and removes a namespace made by [`create_netns`] (idempotent). The namespace, and
/// every veth end inside it, goes away once no process uses it.
pub fn remove_netns(path: &Path) -> Result<()> {
    let Ok(target) = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()) else {
        return Ok(());
    };
    // SAFETY: umount2 of a path string; errors (not mounted) are ignored.
    unsafe { libc::umount2(target.as_ptr(), libc::MNT_DETACH) };
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
        _ => Ok(()),
    }
}
