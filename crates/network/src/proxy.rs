//! The per-container helper process, `berth-netproxy`: the userland port proxy and the embedded
//! DNS responder. It lives exactly as long as the container (it watches the container's init
//! through a pidfd) and needs no daemon.
//!
//! - Port proxy: the CLI binds every published host port itself (so "address already in use"
//!   is reported before the container starts) and hands the bound sockets to this process.
//!   Loopback traffic (127.0.0.1) never passes nftables' DNAT in a useful way, so connections
//!   to the listener are forwarded to the container's address. IPv6 listeners (`[::]`, `[::1]`)
//!   get no DNAT at all and forward to the container's IPv4 address, as docker-proxy does. TCP is copied with `splice(2)`
//!   through a 1 MiB pipe per direction: the bytes stay in the kernel (no copy to user space,
//!   no user buffer), one thread per direction with a 64 KiB stack. UDP is forwarded per client
//!   address through a connected socket.
//! - DNS: on user-defined networks a UDP socket is bound to 127.0.0.11:53 inside the
//!   container's namespace; names from the networks' record files (container name, aliases,
//!   short ID) are answered, everything else is forwarded from the host namespace to the
//!   upstream resolvers.

use crate::ports::Proto;
use hickory_proto::op::{Message, MessageType, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA};
use hickory_proto::rr::{RData, Record, RecordType};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::io::Write;
use std::net::{IpAddr, Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One forwarded port: the inherited socket's fd number and where to send.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProxyPort {
    pub fd: RawFd,
    pub proto: Proto,
    pub target: SocketAddr,
}

/// The embedded DNS responder's setup.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DnsConfig {
    /// The container's network namespace (the listener is created inside it).
    pub netns: PathBuf,
    /// Hosts-format record files, one per user-defined network the container is on.
    pub records: Vec<PathBuf>,
    /// A file naming the record files, one path a line, read at each query instead of
    /// `records`: `network connect`/`disconnect` of a running container rewrite it.
    #[serde(default)]
    pub records_list: Option<PathBuf>,
    /// Servers for everything else (port 53), queried from the host namespace.
    pub upstreams: Vec<IpAddr>,
}

/// What the helper process is told (argv\[1\], JSON).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProxyConfig {
    pub container_id: String,
    /// Exit when this process exits (the container's init); 0 runs until killed.
    pub watch_pid: i32,
    pub ports: Vec<ProxyPort>,
    pub dns: Option<DnsConfig>,
    /// Written with our pid once everything listens.
    pub pid_file: PathBuf,
    /// Inherited pipe: `ok\n` or an error line once ready.
    pub ready_fd: RawFd,
    /// With `watch_pid` 0: an inherited pipe that brings the pid to watch (one line) once the
    /// container runs; end of file before a pid means exit.
    #[serde(default)]
    pub watch_fd: Option<RawFd>,
}

const PIPE_SIZE: i32 = 1 << 20;

fn splice_all(from: RawFd, to: RawFd) -> std::io::Result<()> {
    let mut p = [0 as libc::c_int; 2];
    // SAFETY: plain syscalls on fds this function owns or borrows for its lifetime.
    unsafe {
        if libc::pipe2(p.as_mut_ptr(), libc::O_CLOEXEC) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        let (r, w) = (OwnedFd::from_raw_fd(p[0]), OwnedFd::from_raw_fd(p[1]));
        libc::fcntl(w.as_raw_fd(), libc::F_SETPIPE_SZ, PIPE_SIZE);
        loop {
            let n = libc::splice(
                from,
                std::ptr::null_mut(),
                w.as_raw_fd(),
                std::ptr::null_mut(),
                PIPE_SIZE as usize,
                libc::SPLICE_F_MOVE,
            );
            if n < 0 {
                let e = std::io::Error::last_os_error();
                if e.kind() == std::io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            if n == 0 {
                return Ok(());
            }
            let mut left = n as usize;
            while left > 0 {
                let m = libc::splice(
                    r.as_raw_fd(),
                    std::ptr::null_mut(),
                    to,
                    std::ptr::null_mut(),
                    left,
                    libc::SPLICE_F_MOVE,
                );
                if m < 0 {
                    let e = std::io::Error::last_os_error();
                    if e.kind() == std::io::ErrorKind::Interrupted {
                        continue;
                    }
                    return Err(e);
                }
                left -= m as usize;
            }
        }
    }
}

fn small_thread<F: FnOnce() + Send + 'static>(f: F) {
    let _ = std::thread::Builder::new().stack_size(64 * 1024).spawn(f);
}

fn pipe_tcp(a: TcpStream, b: TcpStream) {
    let (a2, b2) = match (a.try_clone(), b.try_clone()) {
        (Ok(x), Ok(y)) => (x, y),
        _ => return,
    };
    small_thread(move || {
        let _ = splice_all(a2.as_raw_fd(), b2.as_raw_fd());
        let _ = b2.shutdown(Shutdown::Write);
    });
    let _ = splice_all(b.as_raw_fd(), a.as_raw_fd());
    let _ = a.shutdown(Shutdown::Write);
}

fn serve_tcp(l: TcpListener, target: SocketAddr) {
    loop {
        let Ok((client, _)) = l.accept() else {
            continue;
        };
        small_thread(move || {
            let Ok(up) = TcpStream::connect_timeout(&target, Duration::from_secs(10)) else {
                return;
            };
            let _ = client.set_nodelay(true);
            let _ = up.set_nodelay(true);
            pipe_tcp(client, up);
        });
    }
}

fn serve_udp(l: UdpSocket, target: SocketAddr) {
    let l = Arc::new(l);
    let peers: Arc<Mutex<HashMap<SocketAddr, Arc<UdpSocket>>>> = Arc::default();
    let mut buf = vec![0u8; 65536];
    loop {
        let Ok((n, from)) = l.recv_from(&mut buf) else {
            continue;
        };
        let up = peers.lock().unwrap().get(&from).cloned();
        let up = match up {
            Some(u) => u,
            None => {
                let bind: SocketAddr = if target.is_ipv4() {
                    "0.0.0.0:0"
                } else {
                    "[::]:0"
                }
                .parse()
                .unwrap();
                let Ok(u) = UdpSocket::bind(bind) else {
                    continue;
                };
                if u.connect(target).is_err() {
                    continue;
                }
                let _ = u.set_read_timeout(Some(Duration::from_secs(60)));
                let u = Arc::new(u);
                peers.lock().unwrap().insert(from, u.clone());
                let (l2, u2, peers2) = (l.clone(), u.clone(), peers.clone());
                small_thread(move || {
                    let mut b = vec![0u8; 65536];
                    while let Ok(m) = u2.recv(&mut b) {
                        let _ = l2.send_to(&b[..m], from);
                    }
                    peers2.lock().unwrap().remove(&from);
                });
                u
            }
        };
        let _ = up.send(&buf[..n]);
    }
}

/// Reads `ip name...` lines; returns the addresses for `name` (case-insensitive), IPv4 and
/// IPv6 (an `--ipv6` network's endpoints have a line of each).
pub fn lookup(files: &[PathBuf], name: &str) -> Vec<IpAddr> {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    let mut out = Vec::new();
    for f in files {
        let Ok(text) = std::fs::read_to_string(f) else {
            continue;
        };
        for line in text.lines() {
            let mut it = line.split_whitespace();
            let Some(Ok(ip)) = it.next().map(str::parse::<IpAddr>) else {
                continue;
            };
            if it.any(|n| n.eq_ignore_ascii_case(&name)) && !out.contains(&ip) {
                out.push(ip);
            }
        }
    }
    out
}

/// Answers one DNS query from the records; `None` means "forward it".
pub fn answer(query: &[u8], files: &[PathBuf], have_upstreams: bool) -> Option<Vec<u8>> {
    let req = Message::from_vec(query).ok()?;
    let q = req.queries().first()?.clone();
    let ips = lookup(files, &q.name().to_ascii());
    let mut resp = Message::new();
    resp.set_id(req.id())
        .set_message_type(MessageType::Response)
        .set_op_code(req.op_code())
        .set_recursion_desired(req.recursion_desired())
        .set_recursion_available(true)
        .add_query(q.clone());
    if ips.is_empty() {
        if have_upstreams {
            return None;
        }
        resp.set_response_code(ResponseCode::NXDomain);
    } else {
        resp.set_authoritative(true);
        // A name without an address of the asked family: no answers, no error (NODATA).
        let (a, aaaa) = match q.query_type() {
            RecordType::A => (true, false),
            RecordType::AAAA => (false, true),
            RecordType::ANY => (true, true),
            _ => (false, false),
        };
        for ip in ips {
            let rdata = match ip {
                IpAddr::V4(v4) if a => RData::A(A(v4)),
                IpAddr::V6(v6) if aaaa => RData::AAAA(AAAA(v6)),
                _ => continue,
            };
            resp.add_answer(Record::from_rdata(q.name().clone(), 600, rdata));
        }
    }
    resp.to_vec().ok()
}

fn servfail(query: &[u8]) -> Option<Vec<u8>> {
    let req = Message::from_vec(query).ok()?;
    let mut resp = Message::new();
    resp.set_id(req.id())
        .set_message_type(MessageType::Response)
        .set_op_code(req.op_code())
        .set_recursion_desired(req.recursion_desired())
        .set_response_code(ResponseCode::ServFail);
    for q in req.queries() {
        resp.add_query(q.clone());
    }
    resp.to_vec().ok()
}

fn forward(query: &[u8], upstreams: &[IpAddr]) -> Option<Vec<u8>> {
    for up in upstreams {
        let bind = if up.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" };
        let Ok(s) = UdpSocket::bind(bind) else {
            continue;
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(3)));
        if s.connect(SocketAddr::new(*up, 53)).is_err() || s.send(query).is_err() {
            continue;
        }
        let mut b = vec![0u8; 4096];
        if let Ok(n) = s.recv(&mut b) {
            b.truncate(n);
            return Some(b);
        }
    }
    None
}

/// Binds the DNS listener inside the namespace (from a thread that joins it).
pub fn bind_in_netns(netns: &Path, addr: SocketAddr) -> crate::Result<UdpSocket> {
    crate::netlink::in_netns(netns, || Ok(UdpSocket::bind(addr)?))
}

fn serve_dns(sock: UdpSocket, cfg: DnsConfig) {
    let sock = Arc::new(sock);
    let cfg = Arc::new(cfg);
    let mut buf = vec![0u8; 4096];
    loop {
        let Ok((n, from)) = sock.recv_from(&mut buf) else {
            continue;
        };
        let q = buf[..n].to_vec();
        let listed: Option<Vec<PathBuf>> = cfg.records_list.as_ref().and_then(|l| {
            std::fs::read_to_string(l).ok().map(|t| {
                t.lines()
                    .filter(|x| !x.is_empty())
                    .map(PathBuf::from)
                    .collect()
            })
        });
        let records = listed.as_deref().unwrap_or(&cfg.records);
        if let Some(r) = answer(&q, records, !cfg.upstreams.is_empty()) {
            let _ = sock.send_to(&r, from);
            continue;
        }
        let (sock, cfg) = (sock.clone(), cfg.clone());
        small_thread(move || {
            if let Some(r) = forward(&q, &cfg.upstreams).or_else(|| servfail(&q)) {
                let _ = sock.send_to(&r, from);
            }
        });
    }
}

fn pidfd_open(pid: i32) -> Option<OwnedFd> {
    // SAFETY: pidfd_open returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// The helper's main: set everything up, report readiness, serve until the watched process
/// exits.
pub fn run(cfg: ProxyConfig) -> ! {
    // SAFETY: the fd was handed to us for this purpose.
    let mut ready = unsafe { std::fs::File::from_raw_fd(cfg.ready_fd) };
    let fail = |ready: &mut std::fs::File, msg: String| -> ! {
        let _ = writeln!(ready, "{msg}");
        std::process::exit(1)
    };
    let watch = if cfg.watch_pid > 0 {
        match pidfd_open(cfg.watch_pid) {
            Some(fd) => Some(fd),
            None => fail(
                &mut ready,
                format!("container process {} is gone", cfg.watch_pid),
            ),
        }
    } else {
        None
    };
    for p in &cfg.ports {
        // SAFETY: inherited, bound sockets, owned by this process from here on.
        let fd = unsafe { OwnedFd::from_raw_fd(p.fd) };
        let target = p.target;
        match p.proto {
            Proto::Tcp => {
                let l = TcpListener::from(fd);
                if let Err(e) = l.listen_backlog() {
                    fail(&mut ready, format!("listen: {e}"));
                }
                std::thread::spawn(move || serve_tcp(l, target));
            }
            Proto::Udp => {
                let s = UdpSocket::from(fd);
                std::thread::spawn(move || serve_udp(s, target));
            }
        }
    }
    if let Some(d) = cfg.dns.clone() {
        match bind_in_netns(
            &d.netns,
            SocketAddr::new(IpAddr::V4(crate::files::EMBEDDED_DNS), 53),
        ) {
            Ok(s) => {
                std::thread::spawn(move || serve_dns(s, d));
            }
            Err(e) => fail(&mut ready, format!("embedded DNS: {e}")),
        }
    }
    let _ = std::fs::write(&cfg.pid_file, format!("{}\n", std::process::id()));
    let _ = ready.write_all(b"ok\n");
    drop(ready);
    let watch = match (watch, cfg.watch_fd) {
        (None, Some(fd)) => {
            use std::io::Read;
            // SAFETY: inherited pipe, ours from here on.
            let mut f = unsafe { std::fs::File::from_raw_fd(fd) };
            let mut s = String::new();
            let _ = f.read_to_string(&mut s);
            match s.trim().parse::<i32>().ok().and_then(pidfd_open) {
                Some(fd) => Some(fd),
                None => {
                    let _ = std::fs::remove_file(&cfg.pid_file);
                    std::process::exit(0)
                }
            }
        }
        (w, _) => w,
    };
    match watch {
        Some(fd) => {
            let mut pfd = libc::pollfd {
                fd: fd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd.
            while unsafe { libc::poll(&mut pfd, 1, -1) } <= 0 {}
        }
        None => loop {
            std::thread::park();
        },
    }
    let _ = std::fs::remove_file(&cfg.pid_file);
    std::process::exit(0)
}

trait ListenBacklog {
    fn listen_backlog(&self) -> std::io::Result<()>;
}
impl ListenBacklog for TcpListener {
    /// std listens with 128; raise it to the system maximum for bursts of connections.
    fn listen_backlog(&self) -> std::io::Result<()> {
        // SAFETY: listen on a valid, bound socket.
        if unsafe { libc::listen(self.as_raw_fd(), 4096) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::Query;
    use hickory_proto::rr::Name;

    fn ask(files: &[PathBuf], name: &str, ty: RecordType) -> Message {
        let mut q = Message::new();
        q.set_id(7)
            .add_query(Query::query(Name::from_ascii(name).unwrap(), ty));
        Message::from_vec(&answer(&q.to_vec().unwrap(), files, false).unwrap()).unwrap()
    }

    #[test]
    fn a_and_aaaa_records() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("net");
        std::fs::write(&f, "10.1.0.2 web abc\nfd00:1::2 web abc\n10.1.0.3 v4only\n").unwrap();
        let files = [f];
        let a = ask(&files, "web.", RecordType::A);
        assert_eq!(a.answers().len(), 1);
        assert_eq!(
            a.answers()[0].data(),
            &RData::A(A("10.1.0.2".parse().unwrap()))
        );
        let aaaa = ask(&files, "WEB", RecordType::AAAA);
        assert_eq!(aaaa.answers().len(), 1);
        assert_eq!(
            aaaa.answers()[0].data(),
            &RData::AAAA(AAAA("fd00:1::2".parse().unwrap()))
        );
        // Known name, no IPv6 address: no answers, no error.
        let none = ask(&files, "v4only", RecordType::AAAA);
        assert!(none.answers().is_empty());
        assert_eq!(none.response_code(), ResponseCode::NoError);
        assert_eq!(
            ask(&files, "nope", RecordType::A).response_code(),
            ResponseCode::NXDomain
        );
    }
}
