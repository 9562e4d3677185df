//! The long-lived half of a container's monitor: relays the container's stdio (json-file log,
//! attach clients, stdin, pty resize), runs its health probe, and when init exits records
//! [`crate::ExitStatus`] in `exit.json` (OOM kills included), deletes the runtime state and the
//! cgroup, starts the exit hook and exits.
//!
//! The monitor (`monitor/`) starts the container with the whole runtime linked in (libcontainer,
//! seccomp, the spec code); once the container runs it execs the small `berth-relay` binary,
//! which runs [`run`] with what the monitor hands over ([`Handoff`]: descriptors and a few
//! facts, as JSON in its argument). Same process, same pid (the container's parent, a child
//! subreaper), but only the relay's pages: a monitor that lives as long as its container costs
//! a fraction of the memory. Without a `berth-relay` beside the monitor binary (a single
//! `berth` binary reached as `berth-monitor`), the monitor calls [`run`] itself.

use crate::attach;
use crate::cgroup::CgroupMode;
use crate::monitor::{signal_fd, trace};
use crate::util;
use crate::ExitStatus;
use nix::sys::signal::Signal;
use nix::sys::signalfd::SignalFd;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The relay binary's name; the monitor looks for it beside its own executable.
pub const RELAY_BINARY: &str = "berth-relay";

/// How the relay deletes the runtime's state once init has exited.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum Delete {
    /// The built-in runtime's state directory: removed by the relay (what libcontainer's
    /// `delete` does for a stopped container with no `poststop` hook; the cgroup's leftover
    /// processes are killed and its directories removed in any case).
    State(PathBuf),
    /// The built-in runtime with `poststop` hooks: `berth-monitor delete <state root> <id>`,
    /// which runs them through libcontainer.
    Builtin { state_root: PathBuf, id: String },
    /// An external OCI runtime: `<bin> --root <root> delete --force <id>`.
    External {
        bin: PathBuf,
        root: PathBuf,
        id: String,
    },
}

/// What the monitor hands to the relay: open descriptors by number (inherited through the
/// exec) and the facts the relay needs.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Handoff {
    pub dir: PathBuf,
    pub init: i32,
    pub tty: bool,
    pub cgroup: String,
    /// The monitor binary, for health probes (its `exec` mode) and [`Delete::Builtin`].
    pub monitor: PathBuf,
    pub delete: Delete,
    /// stdout (or the pty master), stderr, the container's stdin.
    pub out: RawFd,
    pub err: Option<RawFd>,
    pub stdin: Option<RawFd>,
    /// The json-file log (`None`: `--log-driver none`) and its rotation.
    pub log: Option<RawFd>,
    pub log_max_size: Option<u64>,
    pub log_max_file: u32,
    /// The attach socket's listener and the starter's attach connection (`start -a`).
    pub listener: Option<RawFd>,
    pub client: Option<RawFd>,
    /// The host's mount namespace, for the exit hook.
    pub host_mntns: Option<RawFd>,
}

/// The relay's inputs as owned values (in the monitor's process, or adopted from a
/// [`Handoff`] after the exec).
pub(crate) struct Relay {
    pub dir: PathBuf,
    pub init: i32,
    pub tty: bool,
    pub cgroup: String,
    pub monitor: PathBuf,
    pub delete: Delete,
    pub out: OwnedFd,
    pub err: Option<OwnedFd>,
    pub stdin: Option<OwnedFd>,
    pub log: Option<LogWriter>,
    pub listener: Option<UnixListener>,
    pub client: Option<UnixStream>,
    pub host_mntns: Option<RawFd>,
}

impl Relay {
    /// The [`Handoff`] for an exec of the relay binary: every descriptor it names stays open
    /// across the exec (close-on-exec cleared); the relay sets the flag again.
    pub(crate) fn into_handoff(self) -> Handoff {
        let keep = |fd: RawFd| {
            // SAFETY: fcntl on a descriptor this process owns.
            unsafe { libc::fcntl(fd, libc::F_SETFD, 0) };
            fd
        };
        let (log, log_max_size, log_max_file) = match self.log {
            Some(w) => (Some(keep(w.file.into_raw_fd())), w.max_size, w.max_file),
            None => (None, None, 1),
        };
        Handoff {
            dir: self.dir,
            init: self.init,
            tty: self.tty,
            cgroup: self.cgroup,
            monitor: self.monitor,
            delete: self.delete,
            out: keep(self.out.into_raw_fd()),
            err: self.err.map(|f| keep(f.into_raw_fd())),
            stdin: self.stdin.map(|f| keep(f.into_raw_fd())),
            log,
            log_max_size,
            log_max_file,
            listener: self.listener.map(|l| keep(l.into_raw_fd())),
            client: self.client.map(|c| keep(c.into_raw_fd())),
            host_mntns: self.host_mntns.map(keep),
        }
    }

    /// Takes over the descriptors a [`Handoff`] names (close-on-exec again).
    ///
    /// # Safety
    /// The handoff's descriptors must be open and owned by nothing else in this process.
    pub(crate) unsafe fn adopt(h: Handoff) -> Relay {
        for fd in h.fds() {
            crate::monitor::set_cloexec(fd);
        }
        // SAFETY: the caller's promise: open, and owned by no one else.
        let own = |fd: RawFd| unsafe { OwnedFd::from_raw_fd(fd) };
        let log = h.log.map(|fd| {
            let file = File::from(own(fd));
            let size = file.metadata().map(|m| m.len()).unwrap_or(0);
            LogWriter {
                dir: h.dir.clone(),
                file,
                size,
                max_size: h.log_max_size,
                max_file: h.log_max_file.max(1),
            }
        });
        Relay {
            init: h.init,
            tty: h.tty,
            cgroup: h.cgroup,
            monitor: h.monitor,
            delete: h.delete,
            out: own(h.out),
            err: h.err.map(own),
            stdin: h.stdin.map(own),
            log,
            listener: h.listener.map(|fd| UnixListener::from(own(fd))),
            client: h.client.map(|fd| UnixStream::from(own(fd))),
            host_mntns: h.host_mntns,
            dir: h.dir,
        }
    }
}

impl Handoff {
    /// The descriptors it names, sorted.
    fn fds(&self) -> Vec<RawFd> {
        let mut fds: Vec<RawFd> = [self.out]
            .into_iter()
            .chain(self.err)
            .chain(self.stdin)
            .chain(self.log)
            .chain(self.listener)
            .chain(self.client)
            .chain(self.host_mntns)
            .collect();
        fds.sort_unstable();
        fds
    }
}

/// Closes every descriptor above 2 that is not in `keep` (sorted).
fn close_others(keep: &[RawFd]) {
    let mut from: u32 = 3;
    for &fd in keep {
        let fd = fd as u32;
        if fd >= from {
            if fd > from {
                // SAFETY: closes descriptors nothing in this fresh process uses.
                unsafe { libc::syscall(libc::SYS_close_range, from, fd - 1, 0u32) };
            }
            from = fd + 1;
        }
    }
    // SAFETY: as above.
    unsafe { libc::syscall(libc::SYS_close_range, from, u32::MAX, 0u32) };
}

/// Entry point of the `berth-relay` binary: `berth-relay <Handoff JSON>`.
pub fn main() -> ! {
    let arg = std::env::args().nth(1).unwrap_or_default();
    let h: Handoff = match serde_json::from_str(&arg) {
        Ok(h) => h,
        Err(e) => {
            eprintln!("berth-relay: bad handoff: {e}");
            std::process::exit(125)
        }
    };
    trace("relay: begin");
    // Nothing the monitor left open by mistake lives on in the relay.
    close_others(&h.fds());
    // SAFETY: the monitor exec'd this process with exactly these descriptors open for it.
    let r = unsafe { Relay::adopt(h) };
    run(r)
}

/// Relays until init exits and its output is drained, records the exit, cleans up and exits.
pub(crate) fn run(r: Relay) -> ! {
    let sigfd = signal_fd();
    let health = crate::health::Prober::resume(&r.dir, &r.cgroup, &r.monitor);
    let dir = r.dir.clone();
    let sock = crate::attach_socket_path(&dir);
    let status = relay(
        &r.cgroup, r.tty, r.init, &sigfd, r.log, r.out, r.err, r.stdin, r.listener, r.client,
        health,
    );
    trace("run: exited");
    let _ = std::fs::remove_file(&sock);
    let _ = util::write_atomic_nosync(
        &crate::exit_path(&dir),
        &serde_json::to_vec(&status).unwrap_or_default(),
    );
    trace("run: exit recorded");
    report_exit_events(&dir, &status);
    delete_runtime(&r.delete, &r.monitor, &r.cgroup);
    let _ = CgroupMode::detect().remove(&r.cgroup);
    trace("run: runtime state and cgroup removed");
    run_exit_hook(&dir, r.host_mntns);
    std::process::exit(0)
}

/// Deletes the runtime's state of the exited container (see [`Delete`]).
fn delete_runtime(d: &Delete, monitor: &Path, cgroup: &str) {
    match d {
        Delete::State(state) => {
            // What libcontainer's delete does: processes left in the cgroup (a shared pid
            // namespace outlives init) are killed before the cgroup goes.
            let cgroups = CgroupMode::detect();
            if !cgroups.procs(cgroup).is_empty() {
                cgroups.kill_all(cgroup);
            }
            let _ = std::fs::remove_dir_all(state);
        }
        Delete::Builtin { state_root, id } => {
            use std::os::unix::process::CommandExt;
            let _ = Command::new(monitor)
                .arg0("berth-monitor")
                .arg("delete")
                .arg(state_root)
                .arg(id)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .status();
        }
        Delete::External { bin, root, id } => {
            let _ = std::fs::remove_file(root.join(format!("{id}.pid")));
            let _ = Command::new(bin)
                .arg("--root")
                .arg(root)
                .args(["delete", "--force", id])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// Runs the container's exit hook ([`crate::exit_hook_path`]), if any, detached: in the host's
/// mount namespace (what it mounts must be seen by everyone), in a new session, with no signal
/// blocked. Its stderr goes to `monitor.log`; nobody waits for it.
fn run_exit_hook(dir: &Path, ns: Option<RawFd>) {
    let Some(argv) = std::fs::read(crate::exit_hook_path(dir))
        .ok()
        .and_then(|b| serde_json::from_slice::<Vec<String>>(&b).ok())
        .filter(|a| !a.is_empty())
    else {
        return;
    };
    // The monitor exits now, so a foreground `run` waiting for it goes on at once; a child
    // waits for the commands that started the container to finish (they may handle this exit
    // themselves: `run --rm` removes the container) and runs the hook only if the container
    // is still there, so the hook's start-up does not compete with them.
    // SAFETY: the monitor is single-threaded.
    let forked = match unsafe { nix::unistd::fork() } {
        Ok(nix::unistd::ForkResult::Child) => true,
        Ok(nix::unistd::ForkResult::Parent { .. }) => return,
        // Run the hook from here; it waits for the starters itself.
        Err(_) => false,
    };
    if forked {
        if let Ok(lock) = std::fs::OpenOptions::new()
            .write(true)
            .open(crate::starter_lock_path(dir))
        {
            let _ = nix::fcntl::Flock::lock(lock, nix::fcntl::FlockArg::LockExclusive);
        }
        if !dir.exists() {
            unsafe { libc::_exit(0) };
        }
    }
    let mut cmd = Command::new(&argv[0]);
    cmd.args(&argv[1..])
        .env_remove(crate::monitor::HOST_MNTNS_ENV)
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    match std::fs::OpenOptions::new()
        .append(true)
        .open(dir.join("monitor.log"))
    {
        Ok(f) => cmd.stderr(Stdio::from(f)),
        Err(_) => cmd.stderr(Stdio::null()),
    };
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut cmd, move || {
            if let Some(fd) = ns {
                if libc::setns(fd, libc::CLONE_NEWNS) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            let mut empty: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut empty);
            libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
            libc::setsid();
            Ok(())
        });
    }
    if let Err(e) = cmd.spawn() {
        eprintln!("berth-monitor: exit hook {}: {e}", argv[0]);
    }
    if forked {
        unsafe { libc::_exit(0) };
    }
}

/// A container event in the event log, with the container's attributes. The monitor records
/// `start` (before anyone learns the container runs) and `oom`/`die` (it is the one that sees
/// the exit, whichever process started the container), so they are in the order they happened.
pub(crate) fn record_event(dir: &Path, action: &str, extra: &[(&str, &str)]) {
    let Some(root) = crate::events::root_of_container_dir(dir) else {
        return;
    };
    let id = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let attrs = crate::events::container_attributes(dir);
    let mut pairs: Vec<(&str, &str)> = attrs
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    pairs.extend_from_slice(extra);
    let _ = crate::events::append(
        root,
        &crate::events::Event::now("container", action, &id, &pairs),
    );
}

fn report_exit_events(dir: &Path, status: &ExitStatus) {
    if status.oom_killed {
        record_event(dir, "oom", &[]);
    }
    record_event(dir, "die", &[("exitCode", &status.exit_code.to_string())]);
}

struct Client {
    s: UnixStream,
    buf: Vec<u8>,
}

struct Output {
    fd: OwnedFd,
    stream: &'static str,
    kind: u8,
    partial: Vec<u8>,
    open: bool,
}

#[derive(serde::Serialize)]
struct LogLine<'a> {
    log: &'a str,
    stream: &'a str,
    time: &'a str,
}

/// The json-file log with Docker's rotation (`--log-opt max-size= max-file=`): before a line
/// would take the current file past `max_size`, `container.log.N-1` … `.1` move up one, the
/// oldest beyond `max_file` is dropped, `container.log` becomes `.1` and a new one is begun (with
/// `max_file` 1 the file is simply begun again). Readers follow the renames (see the engine's
/// `follow_log`), so a long training job's output never takes more than `max_size * max_file`.
pub(crate) struct LogWriter {
    dir: PathBuf,
    file: File,
    size: u64,
    max_size: Option<u64>,
    max_file: u32,
}

impl LogWriter {
    /// `None` for `--log-driver none`, or when the file cannot be opened (the output is then
    /// still served to attached clients).
    pub(crate) fn open(dir: &Path, cfg: &crate::LogConfig) -> Option<LogWriter> {
        if !cfg.enabled {
            return None;
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(crate::log_path(dir))
            .ok()?;
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        Some(LogWriter {
            dir: dir.to_path_buf(),
            file,
            size,
            max_size: cfg.max_size.filter(|m| *m > 0),
            max_file: cfg.max_file.max(1),
        })
    }

    fn write_line(&mut self, line: &[u8]) {
        if let Some(max) = self.max_size {
            if self.size > 0 && self.size + line.len() as u64 > max {
                self.rotate();
            }
        }
        if self.file.write_all(line).is_ok() {
            self.size += line.len() as u64;
        }
    }

    fn rotate(&mut self) {
        let current = crate::log_path(&self.dir);
        if self.max_file > 1 {
            let _ = std::fs::remove_file(crate::rotated_log_path(&self.dir, self.max_file - 1));
            for n in (1..self.max_file - 1).rev() {
                let _ = std::fs::rename(
                    crate::rotated_log_path(&self.dir, n),
                    crate::rotated_log_path(&self.dir, n + 1),
                );
            }
            let _ = std::fs::rename(&current, crate::rotated_log_path(&self.dir, 1));
        } else {
            // A reader that has the old file open sees a new inode and starts over.
            let _ = std::fs::remove_file(&current);
        }
        if let Ok(f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&current)
        {
            self.file = f;
            self.size = 0;
        }
    }
}

fn write_log(log: &mut Option<LogWriter>, stream: &str, data: &[u8]) {
    if let Some(w) = log {
        let text = String::from_utf8_lossy(data);
        let line = LogLine {
            log: &text,
            stream,
            time: &util::now_rfc3339(),
        };
        if let Ok(mut v) = serde_json::to_vec(&line) {
            v.push(b'\n');
            w.write_line(&v);
        }
    }
}

/// Feeds output into the log, one json line per line (partial lines are held back up to
/// 16 KiB, like Docker).
fn log_output(log: &mut Option<LogWriter>, o: &mut Output, data: &[u8]) {
    o.partial.extend_from_slice(data);
    while let Some(i) = o.partial.iter().position(|b| *b == b'\n') {
        let line: Vec<u8> = o.partial.drain(..=i).collect();
        write_log(log, o.stream, &line);
    }
    if o.partial.len() >= 16 * 1024 {
        let chunk = std::mem::take(&mut o.partial);
        write_log(log, o.stream, &chunk);
    }
}

pub(crate) fn exit_from(ws: WaitStatus) -> Option<(i32, Option<i32>)> {
    match ws {
        WaitStatus::Exited(_, c) => Some((c, None)),
        WaitStatus::Signaled(_, s, _) => Some((128 + s as i32, Some(s as i32))),
        _ => None,
    }
}

#[allow(clippy::too_many_arguments)]
fn relay(
    cgroup: &str,
    tty: bool,
    init: i32,
    sigfd: &SignalFd,
    mut log: Option<LogWriter>,
    out: OwnedFd,
    err: Option<OwnedFd>,
    mut stdin: Option<OwnedFd>,
    listener: Option<UnixListener>,
    first_client: Option<UnixStream>,
    mut health: Option<crate::health::Prober>,
) -> ExitStatus {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    let tty_master = if tty { Some(out.as_raw_fd()) } else { None };
    let mut outputs = vec![Output {
        fd: out,
        stream: "stdout",
        kind: attach::STDOUT,
        partial: Vec::new(),
        open: true,
    }];
    if let Some(e) = err {
        outputs.push(Output {
            fd: e,
            stream: "stderr",
            kind: attach::STDERR,
            partial: Vec::new(),
            open: true,
        });
    }
    for o in &outputs {
        let _ = nix::fcntl::fcntl(
            o.fd.as_raw_fd(),
            nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
        );
    }
    let mut clients: Vec<Client> = Vec::new();
    if let Some(s) = first_client {
        let _ = s.set_nonblocking(false);
        let _ = s.set_write_timeout(Some(Duration::from_secs(2)));
        clients.push(Client { s, buf: Vec::new() });
    }
    let mut exit: Option<(i32, Option<i32>)> = None;
    let mut drain_deadline: Option<Instant> = None;
    let mut buf = vec![0u8; 64 * 1024];
    let mut first = true;
    let mut shed = true;
    loop {
        if first {
            first = false;
            while let Ok(ws) = waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                if ws == WaitStatus::StillAlive {
                    break;
                }
                if ws.pid() == Some(Pid::from_raw(init)) {
                    exit = exit_from(ws);
                    drain_deadline = Some(Instant::now() + Duration::from_millis(500));
                } else {
                    probe_reaped(&mut health, ws);
                }
            }
        }
        if exit.is_some() {
            let done = outputs.iter().all(|o| !o.open);
            if done || drain_deadline.map(|d| Instant::now() >= d).unwrap_or(false) {
                break;
            }
        }
        let mut pfds: Vec<PollFd> = vec![PollFd::new(sigfd.as_fd(), PollFlags::POLLIN)];
        let mut map: Vec<(u8, usize)> = vec![(0, 0)];
        for (i, o) in outputs.iter().enumerate() {
            if o.open {
                pfds.push(PollFd::new(o.fd.as_fd(), PollFlags::POLLIN));
                map.push((1, i));
            }
        }
        if let Some(l) = &listener {
            pfds.push(PollFd::new(l.as_fd(), PollFlags::POLLIN));
            map.push((2, 0));
        }
        for (i, c) in clients.iter().enumerate() {
            pfds.push(PollFd::new(c.s.as_fd(), PollFlags::POLLIN));
            map.push((3, i));
        }
        if let Some(fd) = health.as_ref().and_then(|h| h.fd()) {
            pfds.push(PollFd::new(fd, PollFlags::POLLIN));
            map.push((4, 0));
        }
        // No new probe once init has exited.
        let wake = match (drain_deadline, health.as_ref().filter(|_| exit.is_none())) {
            (Some(d), _) => Some(d),
            (None, Some(h)) => Some(h.wakeup()),
            (None, None) => None,
        };
        let timeout = match wake {
            Some(d) => PollTimeout::try_from(
                d.saturating_duration_since(Instant::now())
                    .as_millis()
                    .min(i32::MAX as u128 - 1) as i32
                    + 1,
            )
            .unwrap_or(PollTimeout::MAX),
            None => PollTimeout::NONE,
        };
        if shed {
            // What starting needed (the dynamic linker's work, the monitor's whole runtime
            // when this is the monitor's process) is not kept for the container's lifetime;
            // done right before the first wait, so that little runs between it and the wait.
            shed = false;
            crate::monitor::shed_startup_memory();
        }
        let polled = poll(&mut pfds, timeout).is_ok();
        let ready: Vec<(u8, usize)> = pfds
            .iter()
            .zip(map.iter())
            .filter(|(p, _)| polled && p.revents().map(|r| !r.is_empty()).unwrap_or(false))
            .map(|(_, m)| *m)
            .collect();
        drop(pfds);
        if exit.is_none() {
            if let Some(h) = &mut health {
                h.tick();
            }
        }
        let mut drop_clients: Vec<usize> = Vec::new();
        for (what, idx) in ready {
            match what {
                0 => {
                    while let Ok(Some(si)) = sigfd.read_signal() {
                        let sig = si.ssi_signo as i32;
                        if sig != libc::SIGCHLD {
                            // Forward termination signals to the container.
                            let _ = nix::sys::signal::kill(
                                Pid::from_raw(init),
                                Signal::try_from(sig).unwrap_or(Signal::SIGTERM),
                            );
                        }
                    }
                    loop {
                        match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                            Ok(WaitStatus::StillAlive) | Err(_) => break,
                            Ok(ws) => {
                                if ws.pid() == Some(Pid::from_raw(init)) {
                                    exit = exit_from(ws);
                                    drain_deadline =
                                        Some(Instant::now() + Duration::from_millis(500));
                                } else {
                                    probe_reaped(&mut health, ws);
                                }
                            }
                        }
                    }
                }
                1 => {
                    let o = &mut outputs[idx];
                    match nix::unistd::read(o.fd.as_raw_fd(), &mut buf) {
                        Ok(0) | Err(nix::errno::Errno::EIO) => o.open = false,
                        Ok(n) => {
                            log_output(&mut log, o, &buf[..n]);
                            let fr = attach::frame(o.kind, &buf[..n]);
                            for (ci, c) in clients.iter_mut().enumerate() {
                                if c.s.write_all(&fr).is_err() {
                                    drop_clients.push(ci);
                                }
                            }
                        }
                        Err(nix::errno::Errno::EAGAIN) | Err(nix::errno::Errno::EINTR) => {}
                        Err(_) => o.open = false,
                    }
                }
                4 => {
                    if let Some(h) = &mut health {
                        h.readable();
                    }
                }
                2 => {
                    if let Some(l) = &listener {
                        while let Ok((s, _)) = l.accept() {
                            let _ = s.set_nonblocking(false);
                            let _ = s.set_write_timeout(Some(Duration::from_secs(2)));
                            clients.push(Client { s, buf: Vec::new() });
                        }
                    }
                }
                _ => {
                    let c = &mut clients[idx];
                    let mut tmp = [0u8; 8192];
                    let _ = c.s.set_nonblocking(true);
                    let r = c.s.read(&mut tmp);
                    let _ = c.s.set_nonblocking(false);
                    match r {
                        Ok(0) => drop_clients.push(idx),
                        Ok(n) => {
                            c.buf.extend_from_slice(&tmp[..n]);
                            for (kind, payload) in attach::parse_frames(&mut c.buf) {
                                match kind {
                                    attach::STDIN => {
                                        if let Some(fd) = &stdin {
                                            let _ = write_all_fd(fd.as_raw_fd(), &payload);
                                        }
                                    }
                                    attach::STDIN_CLOSE => {
                                        if tty_master.is_some() {
                                            if let Some(fd) = &stdin {
                                                let _ = write_all_fd(fd.as_raw_fd(), &[4]);
                                            }
                                        } else {
                                            stdin = None;
                                        }
                                    }
                                    attach::RESIZE if payload.len() == 4 => {
                                        if let Some(m) = tty_master {
                                            let ws = libc::winsize {
                                                ws_row: u16::from_be_bytes([
                                                    payload[0], payload[1],
                                                ]),
                                                ws_col: u16::from_be_bytes([
                                                    payload[2], payload[3],
                                                ]),
                                                ws_xpixel: 0,
                                                ws_ypixel: 0,
                                            };
                                            unsafe { libc::ioctl(m, libc::TIOCSWINSZ, &ws) };
                                        }
                                    }
                                    _ => {}
                                }
                            }
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                        Err(_) => drop_clients.push(idx),
                    }
                }
            }
        }
        drop_clients.sort_unstable();
        drop_clients.dedup();
        for i in drop_clients.into_iter().rev() {
            clients.remove(i);
        }
    }
    for o in outputs.iter_mut() {
        if !o.partial.is_empty() {
            let rest = std::mem::take(&mut o.partial);
            write_log(&mut log, o.stream, &rest);
        }
    }
    if let Some(h) = &mut health {
        h.abort();
    }
    let (exit_code, signal) = exit.unwrap_or((255, None));
    let cgroups = CgroupMode::detect();
    let oom_killed = cgroups.oom_kills(cgroup) > 0;
    let (memory_peak, memory_limit) = cgroups.memory_peak_and_limit(cgroup);
    ExitStatus {
        exit_code,
        signal,
        oom_killed,
        finished_at: util::now_rfc3339(),
        error: None,
        memory_peak,
        memory_limit,
    }
}

/// Hands a reaped child that is not init to the health prober (its probe, perhaps).
fn probe_reaped(health: &mut Option<crate::health::Prober>, ws: WaitStatus) {
    if let (Some(h), Some(pid), Some((code, _))) = (health.as_mut(), ws.pid(), exit_from(ws)) {
        h.reaped(pid.as_raw(), code);
    }
}

pub(crate) fn write_all_fd(fd: RawFd, mut data: &[u8]) -> nix::Result<()> {
    let b = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
    while !data.is_empty() {
        match nix::unistd::write(b, data) {
            Ok(n) => data = &data[n..],
            Err(nix::errno::Errno::EINTR) => {}
            Err(nix::errno::Errno::EAGAIN) => std::thread::sleep(Duration::from_millis(1)),
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
