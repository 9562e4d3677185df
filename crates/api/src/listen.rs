//! The sockets `berth serve` listens on: `-H unix://PATH` (mode 0660, owner root, the socket
//! group) and `-H tcp://ADDR:PORT` (TLS with client certificates, or plain with consent).

use crate::ServeError;
use berth_registry::tls::TlsAcceptor;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use tokio::net::{TcpListener, UnixListener};

pub enum HostSpec {
    Unix(PathBuf),
    Tcp(String),
}

/// `unix://$RUNROOT/berth.sock`.
pub fn default_host(runroot: &Path) -> String {
    format!("unix://{}", runroot.join("berth.sock").display())
}

pub fn parse_host(h: &str) -> Result<HostSpec, ServeError> {
    if let Some(p) = h.strip_prefix("unix://") {
        if p.is_empty() || !p.starts_with('/') {
            return Err(ServeError::Invalid(format!(
                "invalid host {h:?}: a unix socket needs an absolute path (unix:///run/berth/berth.sock)"
            )));
        }
        return Ok(HostSpec::Unix(PathBuf::from(p)));
    }
    if let Some(a) = h.strip_prefix("tcp://") {
        let a = a.trim_end_matches('/');
        if a.parse::<std::net::SocketAddr>().is_err() {
            return Err(ServeError::Invalid(format!(
                "invalid host {h:?}: expected tcp://ADDRESS:PORT, for example tcp://127.0.0.1:2375"
            )));
        }
        return Ok(HostSpec::Tcp(a.to_string()));
    }
    if h.starts_with("fd://") {
        return Err(ServeError::Invalid(
            "fd:// (socket activation) is not supported yet by berth serve; use unix://PATH".into(),
        ));
    }
    Err(ServeError::Invalid(format!(
        "invalid host {h:?}: expected unix://PATH or tcp://ADDRESS:PORT"
    )))
}

/// The group of the unix sockets: `--group` (a name or a number), else `docker` when the group
/// exists, else root's (0).
pub fn socket_group(requested: Option<&str>) -> Result<u32, ServeError> {
    let groups = std::fs::read_to_string("/etc/group").unwrap_or_default();
    let lookup = |name: &str| {
        groups.lines().find_map(|l| {
            let mut f = l.split(':');
            let n = f.next()?;
            let gid = f.nth(1)?;
            (n == name).then(|| gid.parse::<u32>().ok()).flatten()
        })
    };
    match requested {
        Some(g) => g.parse::<u32>().ok().or_else(|| lookup(g)).ok_or_else(|| {
            ServeError::Invalid(format!(
                "group {g:?} not found: create it (groupadd {g}) or name an existing group with --group"
            ))
        }),
        None => Ok(lookup("docker").unwrap_or(0)),
    }
}

pub enum Listener {
    Unix(UnixListener, PathBuf),
    /// A TCP socket; with an acceptor, every connection is TLS (mutual when a CA was given).
    Tcp(TcpListener, String, Option<TlsAcceptor>),
}

impl Listener {
    pub fn describe(&self) -> String {
        match self {
            Listener::Unix(_, p) => format!("unix://{}", p.display()),
            Listener::Tcp(l, a, tls) => {
                let addr = l.local_addr().map(|a| a.to_string()).unwrap_or(a.clone());
                match tls {
                    Some(_) => format!("tcp://{addr} (TLS)"),
                    None => format!("tcp://{addr}"),
                }
            }
        }
    }
}

pub async fn bind(
    spec: &HostSpec,
    gid: u32,
    tls: Option<&TlsAcceptor>,
) -> Result<Listener, ServeError> {
    match spec {
        HostSpec::Tcp(a) => {
            let l = TcpListener::bind(a)
                .await
                .map_err(|source| ServeError::Io {
                    context: format!("cannot listen on tcp://{a}"),
                    source,
                })?;
            Ok(Listener::Tcp(l, a.clone(), tls.cloned()))
        }
        HostSpec::Unix(p) => {
            let io = |context: String| move |source| ServeError::Io { context, source };
            if let Some(dir) = p.parent() {
                std::fs::create_dir_all(dir)
                    .map_err(io(format!("cannot create {}", dir.display())))?;
            }
            if std::fs::symlink_metadata(p).is_ok() {
                // A socket someone answers on belongs to a live server; one nobody answers on
                // is what a killed server left, and is replaced.
                if std::os::unix::net::UnixStream::connect(p).is_ok() {
                    return Err(ServeError::Invalid(format!(
                        "{} is in use: another server is listening on it (stop it, or choose \
                         another socket with -H unix://PATH)",
                        p.display()
                    )));
                }
                std::fs::remove_file(p).map_err(io(format!(
                    "cannot remove the stale socket {}",
                    p.display()
                )))?;
            }
            // The socket is made without any access for others, then opened to the group: a
            // client never finds it wider than 0660.
            let old = rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o177));
            let bound = UnixListener::bind(p);
            rustix::process::umask(old);
            let l = bound.map_err(io(format!("cannot listen on {}", p.display())))?;
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o660))
                .map_err(io(format!("cannot set the mode of {}", p.display())))?;
            rustix::fs::chown(
                p,
                Some(rustix::fs::Uid::ROOT),
                Some(rustix::fs::Gid::from_raw(gid)),
            )
            .map_err(|e| ServeError::Io {
                context: format!("cannot give {} to group {gid}", p.display()),
                source: e.into(),
            })?;
            Ok(Listener::Unix(l, p.clone()))
        }
    }
}
