//! `berth-monitor`: the per-container monitor process, and the exec helper.
//!
//! `berth-monitor run <container_dir> <ready_fd>` (spawned by [`crate::start`]): starts sealed
//! against CVE-2019-5736 (the spawner made it a private mount namespace with its binary bound
//! read-only over itself; otherwise it does that itself and re-executes), forks once more and
//! lets the spawner return, becomes a child subreaper, creates and starts the container
//! through the built-in runtime (libcontainer, `start.rs`) or an external OCI runtime, reports
//! `{"pid":N}` or `{"error":...}` on the ready fd, then hands over to the relay
//! ([`crate::relay`]): it execs the small `berth-relay` binary beside its own, or, without one,
//! runs the relay itself. An optional `<attach_fd>` after the ready fd is a connected socket
//! served as an attach client from before the container's process runs (`start -a`, `run -i`).
//!
//! `berth-monitor exec <container_dir> <ExecOptions JSON>` (built by [`crate::exec`],
//! `exec.rs`): joins the running container with a new process using its own stdio (or a pty it
//! relays), and exits with that process's status.
//!
//! `berth-monitor delete <state_root> <id>`: the built-in runtime's delete of a stopped
//! container, for a relay whose container has `poststop` hooks to run.
//!
//! Everything here is single-threaded: libcontainer clones the calling process.

mod exec;
mod start;

use crate::relay::{LogWriter, Relay};
use start::create_and_start;

pub use start::check_executable;

use crate::cgroup::CgroupMode;
use crate::util;
use crate::{BundleInfo, ExecOptions, ExitStatus, Ready, RuntimeKind, StartErrorKind, StartRecord};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use std::ffi::CString;
use std::fs::File;
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Entry point of the `berth-monitor` binary (also callable from another binary's hidden
/// subcommand: it reads `std::env::args()` as `<prog> run|exec ...`).
pub fn main() -> ! {
    adopt_host_mntns_fd();
    let args: Vec<String> = std::env::args().collect();
    match (args.get(1).map(String::as_str), args.get(2), args.get(3)) {
        (Some("run"), Some(dir), Some(fd)) => {
            let attach = match args.get(4).map(|a| a.parse::<RawFd>()) {
                None => None,
                Some(Ok(fd)) => Some(fd),
                Some(Err(_)) => die("bad attach fd"),
            };
            match fd.parse() {
                Ok(fd) => run_mode(PathBuf::from(dir), fd, attach),
                Err(_) => die("bad ready fd"),
            }
        }
        (Some("exec"), Some(dir), Some(json)) => exec::exec_mode(PathBuf::from(dir), json),
        (Some("delete"), Some(root), Some(id)) => start::delete_stopped(Path::new(root), id),
        _ => die(
            "usage: berth-monitor run <container_dir> <ready_fd> [<attach_fd>] | \
             exec <container_dir> <json> | delete <state_root> <id>",
        ),
    }
}

/// With `BERTH_MONITOR_TRACE` set, timestamps of each phase go to stderr: the monitor's go to
/// `monitor.log`, the CLI's (`cli: …`, on the path of `run`) to the terminal. A developer aid
/// for finding where a start spends its time.
pub fn trace(what: &str) {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    if *ON.get_or_init(|| std::env::var_os("BERTH_MONITOR_TRACE").is_some()) {
        let d = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        eprintln!(
            "{}.{:06} [{}] {what}",
            d.as_secs(),
            d.subsec_micros(),
            std::process::id()
        );
    }
}

pub(crate) fn die(msg: &str) -> ! {
    eprintln!("berth-monitor: {msg}");
    std::process::exit(125)
}

/// Makes sure the running binary cannot be written through `/proc/<pid>/exe` by a container
/// process (CVE-2019-5736): unless it already runs from a read-only mount, the monitor moves
/// into its own mount namespace (a slave of the host's, so host unmounts still reach it),
/// bind-mounts its binary read-only over itself and re-executes through that mount. Unlike a
/// sealed memfd copy this costs no memory and no copying.
pub(crate) fn seal_exe() {
    if exe_is_read_only() {
        return;
    }
    if let Err(e) = try_seal_exe() {
        eprintln!("berth-monitor: cannot protect /proc/self/exe: {e}");
    }
}

fn exe_is_read_only() -> bool {
    nix::sys::statvfs::statvfs("/proc/self/exe")
        .map(|s| s.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY))
        .unwrap_or(false)
}

fn try_seal_exe() -> std::io::Result<()> {
    use nix::mount::{mount, MsFlags};
    let exe = std::fs::read_link("/proc/self/exe")?;
    // The host's mount namespace, kept open across the re-exec for the exit hook.
    let host_ns = unsafe { libc::open(c"/proc/self/ns/mnt".as_ptr(), libc::O_RDONLY) };
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS)?;
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_SLAVE | MsFlags::MS_REC,
        None::<&str>,
    )?;
    mount(
        Some(&exe),
        &exe,
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )?;
    mount(
        None::<&str>,
        &exe,
        None::<&str>,
        MsFlags::MS_BIND
            | MsFlags::MS_REMOUNT
            | MsFlags::MS_RDONLY
            | MsFlags::MS_NOSUID
            | MsFlags::MS_NODEV,
        None::<&str>,
    )?;
    // The relay binary, which this process execs into later, sealed the same way.
    let relay = exe.with_file_name(crate::relay::RELAY_BINARY);
    if relay.is_file() {
        let _ = mount(
            Some(&relay),
            &relay,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .and_then(|_| {
            mount(
                None::<&str>,
                &relay,
                None::<&str>,
                MsFlags::MS_BIND
                    | MsFlags::MS_REMOUNT
                    | MsFlags::MS_RDONLY
                    | MsFlags::MS_NOSUID
                    | MsFlags::MS_NODEV,
                None::<&str>,
            )
        });
    }
    let path = CString::new(std::os::unix::ffi::OsStrExt::as_bytes(exe.as_os_str()))?;
    let argv: Vec<CString> = std::env::args_os()
        .map(|a| {
            CString::new(std::os::unix::ffi::OsStrExt::as_bytes(a.as_os_str())).unwrap_or_default()
        })
        .collect();
    let mut envp: Vec<CString> = std::env::vars_os()
        .filter(|(k, _)| k != HOST_MNTNS_ENV)
        .filter_map(|(k, v)| {
            let mut s = std::os::unix::ffi::OsStrExt::as_bytes(k.as_os_str()).to_vec();
            s.push(b'=');
            s.extend_from_slice(std::os::unix::ffi::OsStrExt::as_bytes(v.as_os_str()));
            CString::new(s).ok()
        })
        .collect();
    if host_ns >= 0 {
        envp.extend(CString::new(format!("{HOST_MNTNS_ENV}={host_ns}")).ok());
    }
    nix::unistd::execve(&path, &argv, &envp)?;
    unreachable!()
}

/// Names the fd of the host's mount namespace that [`try_seal_exe`] keeps across its re-exec.
pub(crate) const HOST_MNTNS_ENV: &str = "BERTH_MONITOR_HOST_MNTNS_FD";

static HOST_MNTNS: std::sync::OnceLock<Option<RawFd>> = std::sync::OnceLock::new();

/// Takes over the host mount namespace fd left by [`try_seal_exe`] (close-on-exec from now on).
fn adopt_host_mntns_fd() {
    let fd = std::env::var(HOST_MNTNS_ENV)
        .ok()
        .and_then(|v| v.parse::<RawFd>().ok())
        .filter(|fd| *fd > 2);
    if let Some(fd) = fd {
        set_cloexec(fd);
    }
    let _ = HOST_MNTNS.set(fd);
}

/// Lets go of the memory that only starting the container needed, so a long-running monitor
/// costs little: the heap's free pages, and the pages of code and read-only data it mapped in
/// (libcontainer, seccomp, the spec code). Those are clean copies of files in the page cache;
/// dropping them from this process loses nothing (a later access faults them back in). A
/// read-only mapping that holds private changes (relocated data, text relocations) is left
/// alone.
pub(crate) fn shed_startup_memory() {
    let Ok(smaps) = std::fs::read_to_string("/proc/self/smaps") else {
        return;
    };
    // On the stack, so that the heap can be trimmed with nothing of this left on it.
    let mut clean = [(0usize, 0usize); 256];
    let mut n = 0;
    let mut code: Option<(usize, usize)> = None;
    for line in smaps.lines() {
        let mut f = line.split_whitespace();
        let first = f.next().unwrap_or("");
        if let Some((a, b)) = first.split_once('-') {
            let perms = f.next().unwrap_or("");
            let inode = f.nth(2).unwrap_or("0");
            code = match (usize::from_str_radix(a, 16), usize::from_str_radix(b, 16)) {
                (Ok(a), Ok(b)) if (perms == "r-xp" || perms == "r--p") && inode != "0" => {
                    Some((a, b))
                }
                _ => None,
            };
        } else if first == "Anonymous:" {
            if let Some(range) = code.take() {
                if f.next() == Some("0") && n < clean.len() {
                    clean[n] = range;
                    n += 1;
                }
            }
        }
    }
    drop(smaps);
    // SAFETY: malloc_trim only returns free heap memory to the kernel.
    unsafe { libc::malloc_trim(0) };
    // Last, in a tight loop: what runs after this faults its pages back in (with the kernel's
    // fault-around, 64 kB at a time), so as little as possible should run after it.
    for &(a, b) in &clean[..n] {
        // SAFETY: a read-only, file-backed private mapping with no private pages:
        // MADV_DONTNEED only unmaps clean page-cache pages.
        unsafe { libc::madvise(a as *mut libc::c_void, b - a, libc::MADV_DONTNEED) };
    }
}

pub(crate) fn set_cloexec(fd: RawFd) {
    unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
}

fn set_subreaper() {
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
}

/// Kills and reaps every child of this process (as a subreaper, that includes orphans a failed
/// libcontainer attempt left behind).
pub(crate) fn kill_children() {
    let me = std::process::id().to_string();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.parse::<i32>().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let Some(close) = stat.rfind(')') else {
            continue;
        };
        if stat[close + 2..].split(' ').nth(1) == Some(me.as_str()) {
            unsafe { libc::kill(pid, libc::SIGKILL) };
            unsafe { libc::waitpid(pid, std::ptr::null_mut(), 0) };
        }
    }
}

/// SIGCHLD and the termination signals the loops handle (forwarded to the container).
fn handled_signals() -> SigSet {
    let mut set = SigSet::empty();
    set.add(Signal::SIGCHLD);
    set.add(Signal::SIGTERM);
    set.add(Signal::SIGINT);
    set.add(Signal::SIGHUP);
    set
}

/// Blocks the handled signals: they stay pending (across an exec too) until a signalfd
/// reads them.
fn block_signals() {
    let _ = handled_signals().thread_block();
}

/// Blocks the handled signals and returns a signalfd for them.
pub(crate) fn signal_fd() -> SignalFd {
    block_signals();
    SignalFd::with_flags(
        &handled_signals(),
        SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK,
    )
    .unwrap_or_else(|e| die(&format!("signalfd: {e}")))
}

pub(crate) fn unblock_signals() {
    let _ = handled_signals().thread_unblock();
}

fn report(ready: &mut File, r: &Ready) {
    let _ = ready.write_all(&serde_json::to_vec(r).unwrap_or_default());
}

fn run_mode(dir: PathBuf, ready_fd: RawFd, attach_fd: Option<RawFd>) -> ! {
    trace("run: begin");
    seal_exe();
    trace("run: sealed");
    // Second fork: the spawner reaps our parent at once and is not the monitor's parent.
    match unsafe { nix::unistd::fork() } {
        Ok(nix::unistd::ForkResult::Parent { .. }) => unsafe { libc::_exit(0) },
        Ok(nix::unistd::ForkResult::Child) => {}
        Err(e) => die(&format!("fork: {e}")),
    }
    set_cloexec(ready_fd);
    let mut ready = unsafe { File::from_raw_fd(ready_fd) };
    // The starter's attach connection (`start -a`): a client from before the container runs,
    // so none of its output is missed. Close-on-exec: neither the runtime nor the container
    // may hold it.
    let first_client = attach_fd.map(|fd| {
        set_cloexec(fd);
        unsafe { UnixStream::from_raw_fd(fd) }
    });
    set_subreaper();
    let _ = util::write_pid_file(&dir.join("monitor.pid"), std::process::id() as i32);
    let info: BundleInfo = match std::fs::read(dir.join("bundle.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
    {
        Some(i) => i,
        None => {
            report(
                &mut ready,
                &Ready {
                    pid: None,
                    error: Some("bundle.json missing or invalid".into()),
                    kind: None,
                },
            );
            std::process::exit(1);
        }
    };
    let rec: StartRecord = match std::fs::read(dir.join("start.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
    {
        Some(r) => r,
        None => {
            report(
                &mut ready,
                &Ready {
                    pid: None,
                    error: Some("start.json missing or invalid".into()),
                    kind: None,
                },
            );
            std::process::exit(1);
        }
    };
    trace("run: forked, config read");
    let started = match create_and_start(&dir, &info, &rec) {
        Ok(s) => s,
        Err(f) => {
            let st = ExitStatus {
                exit_code: match f.kind {
                    StartErrorKind::NotFound => 127,
                    StartErrorKind::PermissionDenied => 126,
                    StartErrorKind::Other => 125,
                },
                signal: None,
                oom_killed: false,
                finished_at: util::now_rfc3339(),
                error: Some(f.message.clone()),
                ..Default::default()
            };
            let _ = CgroupMode::detect().remove(&info.cgroup);
            let _ = util::write_atomic_nosync(
                &crate::exit_path(&dir),
                &serde_json::to_vec(&st).unwrap_or_default(),
            );
            report(
                &mut ready,
                &Ready {
                    pid: None,
                    error: Some(f.message),
                    kind: Some(f.kind),
                },
            );
            std::process::exit(1);
        }
    };
    // Blocked signals are inherited by the container's init through clone(2): block them only
    // now. A SIGCHLD that came earlier is not lost: the relay reaps once before waiting.
    trace("run: container started");
    block_signals();
    let _ = util::write_pid_file(&dir.join("init.pid"), started.pid);
    // `starting` is recorded before anyone learns the container runs.
    crate::health::record_starting(&dir);
    // The attach socket exists before the spawner learns the container runs.
    let sock = crate::attach_socket_path(&dir);
    let _ = std::fs::remove_file(&sock);
    let listener = util::socket_path(&sock)
        .and_then(|(p, _keep)| UnixListener::bind(p))
        .ok();
    if let Some(l) = &listener {
        let _ = l.set_nonblocking(true);
    }
    // The log exists before the spawner learns the container runs, too: a foreground `run`
    // that found no log yet and then saw the container exited would print nothing.
    let log = LogWriter::open(&dir, &info.log);
    crate::relay::record_event(&dir, "start", &[]);
    report(
        &mut ready,
        &Ready {
            pid: Some(started.pid),
            error: None,
            kind: None,
        },
    );
    drop(ready);
    trace("run: ready reported");
    let relay = Relay {
        init: started.pid,
        tty: info.tty,
        cgroup: info.cgroup,
        monitor: std::fs::read_link("/proc/self/exe").unwrap_or_else(|_| "/proc/self/exe".into()),
        delete: started.delete,
        out: started.out,
        err: started.err,
        stdin: started.stdin,
        log,
        listener,
        client: first_client,
        host_mntns: HOST_MNTNS.get().copied().flatten(),
        dir,
    };
    // No relay binary: this process relays itself.
    crate::relay::run(exec_relay(relay))
}

/// The relay binary beside this monitor's, when it is there and sealed (on a read-only mount:
/// the spawner binds it read-only with the monitor's binary, see [`crate::start`]).
fn relay_binary() -> Option<PathBuf> {
    let exe = std::fs::read_link("/proc/self/exe").ok()?;
    let relay = exe.parent()?.join(crate::relay::RELAY_BINARY);
    let ro = nix::sys::statvfs::statvfs(&relay)
        .map(|s| s.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY))
        .unwrap_or(false);
    ro.then_some(relay)
}

/// Execs the relay binary with `r` handed over; returns `r` when there is no relay binary or
/// the exec failed (this process then relays itself).
fn exec_relay(r: Relay) -> Relay {
    let Some(bin) = relay_binary() else {
        return r;
    };
    let handoff = r.into_handoff();
    let exec = || -> Option<nix::errno::Errno> {
        let path = CString::new(bin.as_os_str().as_encoded_bytes()).ok()?;
        let json = CString::new(serde_json::to_vec(&handoff).ok()?).ok()?;
        trace("run: exec relay");
        nix::unistd::execv(&path, &[c"berth-relay", json.as_c_str()]).err()
    };
    if let Some(e) = exec() {
        eprintln!("berth-monitor: cannot run {}: {e}", bin.display());
    }
    // SAFETY: the handoff's descriptors are this process's and nothing else owns them.
    unsafe { Relay::adopt(handoff) }
}
