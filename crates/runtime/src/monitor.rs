//! `berth-monitor`: the per-container monitor process, and the exec helper.
//!
//! `berth-monitor run <container_dir> <ready_fd>` (spawned by [`crate::start`]): re-executes
//! itself from a sealed memfd (so a container can never reach the host binary through
//! `/proc/self/exe`, CVE-2019-5736), forks once more and lets the spawner return, becomes a
//! child subreaper, creates and starts the container through the built-in runtime
//! (libcontainer) or an external OCI runtime, reports `{"pid":N}` or `{"error":...}` on the
//! ready fd, then relays the container's stdio: json-file log, attach socket, stdin, pty
//! resize. When init exits it records [`crate::ExitStatus`] in `exit.json` (OOM kills
//! included), deletes the runtime state and the cgroup, and exits. An optional `<attach_fd>`
//! after the ready fd is a connected socket served as an attach client from before the
//! container's process runs (`start -a`, `run -i`).
//!
//! `berth-monitor exec <container_dir> <ExecOptions JSON>` (built by [`crate::exec`]): joins the
//! running container with a new process using its own stdio (or a pty it relays), and exits
//! with that process's status.
//!
//! Everything here is single-threaded: libcontainer clones the calling process.

use crate::attach;
use crate::cgroup::CgroupMode;
use crate::util;
use crate::{BundleInfo, ExecOptions, ExitStatus, Ready, RuntimeKind, StartErrorKind, StartRecord};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use std::ffi::CString;
use std::fs::File;
use std::io::{Read, Write};
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
        (Some("exec"), Some(dir), Some(json)) => exec_mode(PathBuf::from(dir), json),
        _ => {
            die("usage: berth-monitor run <container_dir> <ready_fd> [<attach_fd>] | exec <container_dir> <json>")
        }
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

fn die(msg: &str) -> ! {
    eprintln!("berth-monitor: {msg}");
    std::process::exit(125)
}

/// Makes sure the running binary cannot be written through `/proc/<pid>/exe` by a container
/// process (CVE-2019-5736): unless it already runs from a read-only mount, the monitor moves
/// into its own mount namespace (a slave of the host's, so host unmounts still reach it),
/// bind-mounts its binary read-only over itself and re-executes through that mount. Unlike a
/// sealed memfd copy this costs no memory and no copying.
fn seal_exe() {
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
const HOST_MNTNS_ENV: &str = "BERTH_MONITOR_HOST_MNTNS_FD";

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

/// Runs the container's exit hook ([`crate::exit_hook_path`]), if any, detached: in the host's
/// mount namespace (what it mounts must be seen by everyone), in a new session, with no signal
/// blocked. Its stderr goes to `monitor.log`; nobody waits for it.
fn run_exit_hook(dir: &Path) {
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
    let ns = HOST_MNTNS.get().copied().flatten();
    let mut cmd = Command::new(&argv[0]);
    cmd.args(&argv[1..])
        .env_remove(HOST_MNTNS_ENV)
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

/// Lets go of the memory that only starting the container needed, so a long-running monitor
/// costs little: the heap's free pages, and the pages of code and read-only data it mapped in
/// (libcontainer, seccomp, the spec code). Those are clean copies of files in the page cache;
/// dropping them from this process loses nothing (a later access faults them back in). A
/// read-only mapping that holds private changes (relocated data, text relocations) is left
/// alone.
fn shed_startup_memory() {
    if let Ok(smaps) = std::fs::read_to_string("/proc/self/smaps") {
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
                if let Some((a, b)) = code.take() {
                    if f.next() == Some("0") {
                        // SAFETY: a read-only, file-backed private mapping with no private
                        // pages: MADV_DONTNEED only unmaps clean page-cache pages.
                        unsafe {
                            libc::madvise(a as *mut libc::c_void, b - a, libc::MADV_DONTNEED)
                        };
                    }
                }
            }
        }
    }
    // SAFETY: malloc_trim only returns free heap memory to the kernel.
    unsafe { libc::malloc_trim(0) };
}

fn set_cloexec(fd: RawFd) {
    unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
}

fn set_subreaper() {
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
}

/// Kills and reaps every child of this process (as a subreaper, that includes orphans a failed
/// libcontainer attempt left behind).
fn kill_children() {
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

/// Blocks SIGCHLD (and termination signals, handled in the loop) and returns a signalfd.
fn signal_fd() -> SignalFd {
    let mut set = SigSet::empty();
    set.add(Signal::SIGCHLD);
    set.add(Signal::SIGTERM);
    set.add(Signal::SIGINT);
    set.add(Signal::SIGHUP);
    let _ = set.thread_block();
    SignalFd::with_flags(&set, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
        .unwrap_or_else(|e| die(&format!("signalfd: {e}")))
}

fn unblock_signals() {
    let mut set = SigSet::empty();
    set.add(Signal::SIGCHLD);
    set.add(Signal::SIGTERM);
    set.add(Signal::SIGINT);
    set.add(Signal::SIGHUP);
    let _ = set.thread_unblock();
}

struct StartFailure {
    kind: StartErrorKind,
    message: String,
}

fn fail(message: impl Into<String>) -> StartFailure {
    StartFailure {
        kind: StartErrorKind::Other,
        message: message.into(),
    }
}

/// Checks that the container's command can be executed, with Docker's messages.
pub fn check_executable(
    rootfs: &Path,
    spec: &serde_json::Value,
    cwd: &str,
    arg0: &str,
    env: &[String],
) -> Result<(), (StartErrorKind, String)> {
    use std::os::unix::fs::PermissionsExt;
    // A file bind-mounted into the container (`-v`, a device request's binaries) is its
    // source; the rootfs holds only an empty mount point there.
    let binds: Vec<(String, PathBuf)> = spec["mounts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|m| m["type"] == "bind")
        .filter_map(|m| {
            Some((
                crate::paths::clean(m["destination"].as_str()?),
                PathBuf::from(m["source"].as_str()?),
            ))
        })
        .collect();
    let check = |container_path: &str| -> Option<std::io::Result<std::fs::Metadata>> {
        let clean = crate::paths::clean(container_path);
        if let Some((_, src)) = binds.iter().rev().find(|(d, _)| *d == clean) {
            return Some(std::fs::metadata(src));
        }
        let host = crate::paths::host_path(rootfs, container_path).ok()?;
        Some(std::fs::metadata(host))
    };
    if arg0.contains('/') {
        let p = if arg0.starts_with('/') {
            arg0.to_string()
        } else {
            format!("{cwd}/{arg0}")
        };
        return match check(&p) {
            Some(Ok(m)) if m.is_dir() => Err((
                StartErrorKind::PermissionDenied,
                format!("exec: \"{arg0}\": is a directory"),
            )),
            Some(Ok(m)) if m.permissions().mode() & 0o111 == 0 => Err((
                StartErrorKind::PermissionDenied,
                format!("exec: \"{arg0}\": permission denied"),
            )),
            Some(Ok(_)) => Ok(()),
            _ => Err((
                StartErrorKind::NotFound,
                format!("exec: \"{arg0}\": stat {arg0}: no such file or directory"),
            )),
        };
    }
    let path = env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or(crate::spec::DEFAULT_PATH);
    let mut denied = false;
    for dir in path.split(':').filter(|d| !d.is_empty()) {
        if let Some(Ok(m)) = check(&format!("{dir}/{arg0}")) {
            if !m.is_dir() && m.permissions().mode() & 0o111 != 0 {
                return Ok(());
            }
            denied = true;
        }
    }
    if denied {
        return Err((
            StartErrorKind::PermissionDenied,
            format!("exec: \"{arg0}\": permission denied"),
        ));
    }
    Err((
        StartErrorKind::NotFound,
        format!("exec: \"{arg0}\": executable file not found in $PATH"),
    ))
}

enum Runtime {
    Builtin(Box<libcontainer::container::Container>),
    External {
        bin: PathBuf,
        root: PathBuf,
        id: String,
    },
}

struct Started {
    pid: i32,
    /// stdout pipe read end, or the pty master.
    out: OwnedFd,
    err: Option<OwnedFd>,
    stdin: Option<OwnedFd>,
    runtime: Runtime,
}

fn pipe() -> Result<(OwnedFd, OwnedFd), StartFailure> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| fail(format!("pipe: {e}")))
}

/// A console socket for an external runtime, bound at `path`.
struct ConsoleSocket {
    listener: UnixListener,
    /// What the runtime is told to connect to: `path` itself, or, when that is too long for
    /// `sun_path`, `/proc/<our pid>/fd/<N>/<name>` through `_dir`, an open handle of its
    /// directory (the runtime is our child and root, so it can follow that link).
    connect: PathBuf,
    _dir: Option<OwnedFd>,
}

fn console_listener(path: &Path) -> Result<ConsoleSocket, StartFailure> {
    let _ = std::fs::remove_file(path);
    let err = |e: std::io::Error| fail(format!("console socket {}: {e}", path.display()));
    let (short, dir) = util::socket_path(path).map_err(err)?;
    let listener = UnixListener::bind(&short).map_err(err)?;
    let connect = match &dir {
        Some(fd) => PathBuf::from(format!(
            "/proc/{}/fd/{}",
            std::process::id(),
            fd.as_raw_fd()
        ))
        .join(path.file_name().unwrap_or_default()),
        None => short,
    };
    Ok(ConsoleSocket {
        listener,
        connect,
        _dir: dir,
    })
}

/// Receives the pty master a runtime sends over the console socket.
fn receive_master(listener: &UnixListener) -> Result<OwnedFd, StartFailure> {
    listener.set_nonblocking(true).ok();
    let deadline = Instant::now() + Duration::from_secs(10);
    let stream = loop {
        match listener.accept() {
            Ok((s, _)) => break s,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(1))
            }
            Err(e) => return Err(fail(format!("console socket accept: {e}"))),
        }
    };
    stream.set_nonblocking(false).ok();
    receive_fd(&stream)
}

/// Receives one fd (SCM_RIGHTS) from a connected unix stream.
fn receive_fd(stream: &UnixStream) -> Result<OwnedFd, StartFailure> {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let mut buf = [0u8; 4096];
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    let mut cmsg = nix::cmsg_space!([RawFd; 1]);
    let msg = recvmsg::<()>(
        stream.as_raw_fd(),
        &mut iov,
        Some(&mut cmsg),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .map_err(|e| fail(format!("console socket recvmsg: {e}")))?;
    for c in msg
        .cmsgs()
        .map_err(|e| fail(format!("console socket: {e}")))?
    {
        if let ControlMessageOwned::ScmRights(fds) = c {
            if let Some(fd) = fds.first() {
                return Ok(unsafe { OwnedFd::from_raw_fd(*fd) });
            }
        }
    }
    Err(fail("console socket: no pty master received"))
}

/// A seccomp program compiled ahead (see [`crate::filter`]) for the init or exec'd process to
/// load right before `execve`, and the CAP_SYS_ADMIN bits that were added to its capability
/// sets only so that it may load the program without no_new_privs.
#[derive(Clone)]
struct SeccompLoad {
    bpf: std::sync::Arc<Vec<u8>>,
    added_effective: bool,
    added_permitted: bool,
}

/// The built-in runtime's workload executor. For `-t` it allocates the pty inside the
/// container (from the container's own devpts, as runc does, so `tty` names `/dev/pts/0`),
/// makes it the controlling terminal and stdio and sends the master to the monitor; with a
/// precompiled seccomp program it loads it and drops the capability bits added for that;
/// then it execs as usual.
#[derive(Clone)]
struct Workload {
    pty_sock: Option<RawFd>,
    seccomp: Option<SeccompLoad>,
}

impl libcontainer::workload::Executor for Workload {
    fn exec(
        &self,
        spec: &oci_spec::runtime::Spec,
    ) -> Result<(), libcontainer::workload::ExecutorError> {
        use libcontainer::workload::ExecutorError;
        reset_signals();
        if let Some(sock) = self.pty_sock {
            if let Err(e) = setup_pty(sock) {
                return Err(ExecutorError::Other(format!("setting up the pty: {e}")));
            }
        }
        if let Some(sc) = &self.seccomp {
            crate::filter::load(&sc.bpf)
                .map_err(|e| ExecutorError::Other(format!("loading the seccomp filter: {e}")))?;
            if sc.added_effective || sc.added_permitted {
                // CAP_SYS_ADMIN is in neither the bounding nor the inheritable set, so execve
                // would clear it anyway; dropping it here keeps the last steps unprivileged.
                // A failed drop fails the start: the container must never run with a
                // capability it was not given.
                crate::filter::drop_capability(
                    21, // CAP_SYS_ADMIN
                    sc.added_effective,
                    sc.added_permitted,
                )
                .map_err(|e| {
                    ExecutorError::Other(format!(
                        "dropping CAP_SYS_ADMIN after loading the seccomp filter: {e}"
                    ))
                })?;
            }
        }
        libcontainer::workload::default::get_executor().exec(spec)
    }

    fn validate(
        &self,
        spec: &oci_spec::runtime::Spec,
    ) -> Result<(), libcontainer::workload::ExecutorValidationError> {
        libcontainer::workload::default::get_executor().validate(spec)
    }
}

/// Gives the container's process default signal dispositions and an empty signal mask, as
/// runc does: the monitor is a Rust program (SIGPIPE ignored from its first instruction) and
/// an ignored signal stays ignored across `execve`, so without this `yes | head -1` in a
/// container would never end on SIGPIPE.
fn reset_signals() {
    // The kernel's `struct sigaction` with every field zero: handler SIG_DFL, no flags, an
    // empty mask, whatever the architecture's field order. Through the raw syscall because
    // glibc refuses the signals it keeps for itself (32, 33), which may be inherited ignored.
    let dfl = [0u64; 4];
    for sig in 1..=64 {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        // SAFETY: `dfl` outlives the call and is as large as the kernel's struct; the old
        // action is not asked for; a number the kernel rejects just fails.
        unsafe {
            libc::syscall(
                libc::SYS_rt_sigaction,
                sig,
                dfl.as_ptr(),
                std::ptr::null_mut::<u64>(),
                8usize,
            )
        };
    }
    let mut empty: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: `empty` is a valid, initialised sigset for these calls.
    unsafe {
        libc::sigemptyset(&mut empty);
        libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
    }
}

/// Adds `cap` to the effective and permitted sets of a spec's `process` when it has
/// explicit capability sets lacking it; returns which sets were changed.
fn add_capability(process: &mut serde_json::Value, cap: &str) -> (bool, bool) {
    let mut added = (false, false);
    let Some(caps) = process.get_mut("capabilities").filter(|c| c.is_object()) else {
        return added;
    };
    for (set, flag) in [("effective", &mut added.0), ("permitted", &mut added.1)] {
        let list = caps
            .as_object_mut()
            .map(|o| o.entry(set).or_insert_with(|| serde_json::json!([])));
        if let Some(serde_json::Value::Array(a)) = list {
            if !a.iter().any(|v| v.as_str() == Some(cap)) {
                a.push(serde_json::json!(cap));
                *flag = true;
            }
        }
    }
    added
}

/// The seccomp program of a spec's profile, when it can be loaded by [`Workload`] (`None`
/// when the spec has no profile or one that libcontainer must compile itself).
fn precompiled_seccomp(
    spec: &serde_json::Value,
    state_root: &Path,
) -> Result<Option<Vec<u8>>, String> {
    let Some(sec) = spec.get("linux").and_then(|l| l.get("seccomp")) else {
        return Ok(None);
    };
    if sec.is_null() {
        return Ok(None);
    }
    let profile: oci_spec::runtime::LinuxSeccomp =
        serde_json::from_value(sec.clone()).map_err(|e| format!("seccomp profile: {e}"))?;
    if !crate::filter::supported(&profile) {
        return Ok(None);
    }
    crate::filter::compiled(&profile, &state_root.join("seccomp")).map(Some)
}

/// The bundle handed to libcontainer: `<dir>/builtin/config.json`, the container's spec with
/// an absolute rootfs path, without its seccomp profile when that is loaded precompiled by
/// [`Workload`], and with the cgroup v1 hierarchies listed as read-only paths (libcontainer
/// mounts them read-write whatever the spec's `/sys/fs/cgroup` mount says, so a container
/// could lift its own limits). Falls back to the container directory itself (and
/// libcontainer compiling the profile) only when that file cannot be written.
fn builtin_bundle(
    dir: &Path,
    spec: &serde_json::Value,
    state_root: &Path,
) -> (PathBuf, Option<SeccompLoad>) {
    let bpf = match precompiled_seccomp(spec, state_root) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("berth-monitor: {e}; libcontainer compiles the profile");
            None
        }
    };
    let mut lean = spec.clone();
    lean["root"]["path"] = serde_json::json!(dir.join("rootfs"));
    readonly_cgroup_v1(&mut lean);
    let seccomp = bpf.map(|bpf| {
        if let Some(l) = lean.get_mut("linux").and_then(|l| l.as_object_mut()) {
            l.remove("seccomp");
        }
        let nnp = spec["process"]["noNewPrivileges"].as_bool() == Some(true);
        let (added_effective, added_permitted) = if nnp {
            (false, false)
        } else {
            add_capability(&mut lean["process"], "CAP_SYS_ADMIN")
        };
        SeccompLoad {
            bpf: std::sync::Arc::new(bpf),
            added_effective,
            added_permitted,
        }
    });
    let bdir = dir.join("builtin");
    let written = std::fs::create_dir_all(&bdir).and_then(|_| {
        util::write_atomic_nosync(
            &bdir.join("config.json"),
            &serde_json::to_vec(&lean).unwrap_or_default(),
        )
    });
    if let Err(e) = written {
        eprintln!("berth-monitor: {}: {e}", bdir.display());
        return (dir.to_path_buf(), None);
    }
    (bdir, seccomp)
}

/// When the spec mounts `/sys/fs/cgroup` read-only (every container but `--privileged`) and
/// the host has cgroup v1 hierarchies, adds each hierarchy's mount point to
/// `linux.readonlyPaths`, which libcontainer bind-remounts read-only after mounting them.
fn readonly_cgroup_v1(spec: &mut serde_json::Value) {
    let ro = spec["mounts"].as_array().is_some_and(|m| {
        m.iter().any(|m| {
            m["destination"] == "/sys/fs/cgroup"
                && m["options"]
                    .as_array()
                    .is_some_and(|o| o.iter().any(|o| o == "ro"))
        })
    });
    if !ro {
        return;
    }
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let paths = cgroup_v1_mount_points(&mountinfo);
    if paths.is_empty() {
        return;
    }
    let linux = &mut spec["linux"];
    if !linux["readonlyPaths"].is_array() {
        linux["readonlyPaths"] = serde_json::json!([]);
    }
    if let Some(list) = linux["readonlyPaths"].as_array_mut() {
        for p in paths {
            if !list.iter().any(|v| v == p.as_str()) {
                list.push(serde_json::json!(p));
            }
        }
    }
}

/// The cgroup v1 hierarchies mounted directly under `/sys/fs/cgroup` (as libcontainer mounts
/// them in a container: by the host mount point's name), from a mountinfo text.
fn cgroup_v1_mount_points(mountinfo: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in mountinfo.lines() {
        let Some((pre, post)) = line.split_once(" - ") else {
            continue;
        };
        if post.split_whitespace().next() != Some("cgroup") {
            continue;
        }
        let Some(mp) = pre.split_whitespace().nth(4) else {
            continue;
        };
        let Some(name) = mp.strip_prefix("/sys/fs/cgroup/") else {
            continue;
        };
        if !name.is_empty() && !name.contains('/') && !name.contains('\\') {
            out.push(mp.to_string());
        }
    }
    out
}

fn setup_pty(sock: RawFd) -> nix::Result<()> {
    use nix::fcntl::OFlag;
    use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
    let master = nix::pty::posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC)?;
    nix::pty::grantpt(&master)?;
    nix::pty::unlockpt(&master)?;
    let name = nix::pty::ptsname_r(&master)?;
    let slave = nix::fcntl::open(
        name.as_str(),
        OFlag::O_RDWR | OFlag::O_NOCTTY,
        nix::sys::stat::Mode::empty(),
    )?;
    // `exec -t` from a terminal: the new terminal gets the caller's size before the command
    // runs (stdio here is still the caller's), so programs that read it at start see it.
    copy_window_size(&master);
    let _ = nix::unistd::setsid();
    unsafe { libc::ioctl(slave, libc::TIOCSCTTY, 0) };
    for fd in 0..3 {
        nix::unistd::dup2(slave, fd)?;
    }
    if slave > 2 {
        let _ = nix::unistd::close(slave);
    }
    let fds = [master.as_raw_fd()];
    let iov = [std::io::IoSlice::new(b"m")];
    sendmsg::<()>(
        sock,
        &iov,
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::empty(),
        None,
    )?;
    let _ = nix::unistd::close(sock);
    Ok(())
}

/// Device requests' libraries: the host's `ldconfig`, chrooted into the created container's
/// root (`/proc/<init>/root`, where its mounts are in place; the init waits for `start`),
/// writes the container's `/etc/ld.so.cache` and the SONAME links of the mounted libraries.
/// A read-only rootfs keeps the image's cache (nothing can be written there).
fn rebuild_ld_cache(
    info: &BundleInfo,
    spec: &serde_json::Value,
    pid: i32,
) -> Result<(), StartFailure> {
    let Some(ld) = &info.ldconfig else {
        return Ok(());
    };
    if spec["root"]["readonly"] == serde_json::Value::Bool(true) {
        return Ok(());
    }
    let out = Command::new(&ld.program)
        .arg("-r")
        .arg(format!("/proc/{pid}/root"))
        .args(&ld.dirs)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| fail(format!("running {}: {e}", ld.program.display())))?;
    trace("create: ldconfig done");
    if !out.status.success() {
        return Err(fail(format!(
            "updating the container's library cache ({} -r ROOT {}): {}",
            ld.program.display(),
            ld.dirs.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(())
}

fn create_and_start(
    dir: &Path,
    info: &BundleInfo,
    rec: &StartRecord,
) -> Result<Started, StartFailure> {
    let spec: serde_json::Value = serde_json::from_slice(
        &std::fs::read(dir.join("config.json"))
            .map_err(|e| fail(format!("reading config.json: {e}")))?,
    )
    .map_err(|e| fail(format!("config.json: {e}")))?;
    let proc_ = &spec["process"];
    let args: Vec<String> = serde_json::from_value(proc_["args"].clone()).unwrap_or_default();
    let env: Vec<String> = serde_json::from_value(proc_["env"].clone()).unwrap_or_default();
    let cwd = proc_["cwd"].as_str().unwrap_or("/");
    let arg0 = args.first().ok_or_else(|| fail("no command specified"))?;
    // With `--init` the init comes from the host (a bind mount over an empty placeholder):
    // check the user's command behind it, which the init will run.
    let init_mounted = spec["mounts"].as_array().is_some_and(|m| {
        m.iter()
            .any(|m| m["destination"] == crate::spec::INIT_PATH && m["type"] == "bind")
    });
    let arg0 = match args.as_slice() {
        [init, sep, cmd, ..] if init_mounted && init == crate::spec::INIT_PATH && sep == "--" => {
            cmd
        }
        _ => arg0,
    };
    // A command that is itself a file bind-mounted from the host (a pod's pause program,
    // `-v /bin/tool:/tool`, a device request's binaries) is checked at its source.
    check_executable(&dir.join("rootfs"), &spec, cwd, arg0, &env)
        .map_err(|(kind, message)| StartFailure { kind, message })?;

    std::fs::create_dir_all(&rec.state_root)
        .map_err(|e| fail(format!("{}: {e}", rec.state_root.display())))?;
    let console = rec.state_root.join(format!("{}.tty", info.id));
    let builtin = rec.runtime == RuntimeKind::Builtin;
    let listener = if info.tty && !builtin {
        Some(console_listener(&console)?)
    } else {
        None
    };
    let pty_pair = if info.tty && builtin {
        Some(UnixStream::pair().map_err(|e| fail(format!("socketpair: {e}")))?)
    } else {
        None
    };
    let mut pty_master: Option<OwnedFd> = None;
    let (out_r, out_w) = pipe()?;
    let (err_r, err_w) = pipe()?;
    let (in_r, in_w) = pipe()?;

    let (pid, runtime) = match &rec.runtime {
        RuntimeKind::Builtin => {
            use libcontainer::container::builder::ContainerBuilder;
            use libcontainer::syscall::syscall::SyscallType;
            let _ = std::fs::remove_dir_all(rec.state_root.join(&info.id));
            let mut b = ContainerBuilder::new(info.id.clone(), SyscallType::default())
                .with_root_path(&rec.state_root)
                .map_err(|e| fail(format!("runtime root: {e}")))?;
            b = b.with_stdin(in_r).with_stdout(out_w).with_stderr(err_w);
            let (bundle, seccomp) = builtin_bundle(dir, &spec, &rec.state_root);
            trace("create: seccomp program ready");
            let pty_sock = pty_pair.as_ref().map(|(_, theirs)| theirs.as_raw_fd());
            // Always ours: it also resets the signal dispositions before the exec.
            b = b.with_executor(Workload { pty_sock, seccomp });
            trace("create: builder ready");
            let mut c = b
                .as_init(&bundle)
                .with_systemd(false)
                .with_detach(true)
                .build()
                .map_err(|e| fail(format!("creating container: {e}")))?;
            trace("create: created");
            // libcontainer does not apply `disableOOMKiller` (runc does): set it on the
            // created cgroup before the process runs.
            let no_oom_kill = spec["linux"]["resources"]["memory"]["disableOOMKiller"]
                == serde_json::Value::Bool(true);
            if no_oom_kill {
                let mode = CgroupMode::detect();
                if let Err(e) = std::fs::write(
                    mode.dir("memory", &info.cgroup).join("memory.oom_control"),
                    "1",
                ) {
                    let _ = c.delete(true);
                    return Err(fail(format!("disabling the OOM killer: {e}")));
                }
            }
            if let Some(pid) = c.pid() {
                if let Err(e) = rebuild_ld_cache(info, &spec, pid.as_raw()) {
                    let _ = c.delete(true);
                    return Err(e);
                }
            }
            if let Err(e) = c.start() {
                let _ = c.delete(true);
                return Err(fail(format!("starting container: {e}")));
            }
            trace("create: started");
            if let Some((ours, theirs)) = pty_pair {
                drop(theirs);
                match receive_fd(&ours) {
                    Ok(m) => pty_master = Some(m),
                    Err(e) => {
                        let _ = c.delete(true);
                        return Err(e);
                    }
                }
            }
            let pid = c
                .pid()
                .map(|p| p.as_raw())
                .ok_or_else(|| fail("runtime reported no pid"))?;
            (pid, Runtime::Builtin(Box::new(c)))
        }
        RuntimeKind::External(bin) => {
            let pidfile = rec.state_root.join(format!("{}.pid", info.id));
            let logfile = dir.join("runtime.log");
            let _ = std::fs::remove_file(&pidfile);
            let _ = std::fs::remove_file(&logfile);
            let mut cmd = Command::new(bin);
            cmd.arg("--root")
                .arg(&rec.state_root)
                .arg("--log")
                .arg(&logfile);
            cmd.arg("create")
                .arg("--bundle")
                .arg(dir)
                .arg("--pid-file")
                .arg(&pidfile);
            if let Some(l) = &listener {
                cmd.arg("--console-socket").arg(&l.connect);
            }
            cmd.arg(&info.id);
            cmd.stdin(Stdio::from(in_r))
                .stdout(Stdio::from(out_w))
                .stderr(Stdio::from(err_w));
            let status = cmd
                .status()
                .map_err(|e| fail(format!("running {}: {e}", bin.display())))?;
            drop(cmd);
            let runtime = Runtime::External {
                bin: bin.clone(),
                root: rec.state_root.clone(),
                id: info.id.clone(),
            };
            if !status.success() {
                let mut msg = runtime_error(&logfile);
                if msg.is_empty() {
                    msg = drain_now(&err_r);
                }
                delete_runtime(runtime);
                return Err(fail(format!(
                    "{} create failed: {}",
                    bin.display(),
                    msg.trim()
                )));
            }
            let pid: i32 = std::fs::read_to_string(&pidfile)
                .ok()
                .and_then(|s| s.trim().parse().ok())
                .ok_or_else(|| fail("runtime wrote no pid file"))?;
            if let Err(e) = rebuild_ld_cache(info, &spec, pid) {
                delete_runtime(runtime);
                return Err(e);
            }
            let st = Command::new(bin)
                .arg("--root")
                .arg(&rec.state_root)
                .arg("--log")
                .arg(&logfile)
                .arg("start")
                .arg(&info.id)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .map_err(|e| fail(format!("running {}: {e}", bin.display())))?;
            if !st.success() {
                let msg = runtime_error(&logfile);
                delete_runtime(runtime);
                return Err(fail(format!(
                    "{} start failed: {}",
                    bin.display(),
                    msg.trim()
                )));
            }
            (pid, runtime)
        }
    };
    if let Some(l) = listener {
        pty_master = Some(receive_master(&l.listener)?);
        let _ = std::fs::remove_file(&console);
    }
    let (out, err, stdin) = if let Some(master) = pty_master {
        let stdin = if info.stdin_open {
            master.try_clone().ok()
        } else {
            None
        };
        (master, None, stdin)
    } else {
        (
            out_r,
            Some(err_r),
            if info.stdin_open { Some(in_w) } else { None },
        )
    };
    Ok(Started {
        pid,
        out,
        err,
        stdin,
        runtime,
    })
}

/// The last error line of an OCI runtime's `--log` file.
fn runtime_error(log: &Path) -> String {
    let s = std::fs::read_to_string(log).unwrap_or_default();
    let line = s
        .lines()
        .rev()
        .find(|l| l.contains("error") || l.contains("msg"))
        .unwrap_or("");
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(line) {
        if let Some(m) = v["msg"].as_str() {
            return m.to_string();
        }
    }
    if let Some(i) = line.find("msg=") {
        return line[i + 4..].trim_matches('"').replace("\\\"", "\"");
    }
    line.to_string()
}

fn drain_now(fd: &OwnedFd) -> String {
    let _ = nix::fcntl::fcntl(
        fd.as_raw_fd(),
        nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
    );
    let mut buf = vec![0u8; 8192];
    let n = nix::unistd::read(fd.as_raw_fd(), &mut buf).unwrap_or(0);
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

fn delete_runtime(rt: Runtime) {
    match rt {
        Runtime::Builtin(mut c) => {
            let _ = c.refresh_status();
            let _ = c.delete(true);
        }
        Runtime::External { bin, root, id } => {
            let _ = std::fs::remove_file(root.join(format!("{id}.pid")));
            let _ = Command::new(bin)
                .arg("--root")
                .arg(root)
                .args(["delete", "--force", &id])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
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
    // now. A SIGCHLD that came earlier is not lost: `relay` reaps once before waiting.
    trace("run: container started");
    let sigfd = signal_fd();
    let _ = util::write_pid_file(&dir.join("init.pid"), started.pid);
    // `starting` is recorded before anyone learns the container runs.
    let health = crate::health::Prober::new(&dir, &info.cgroup);
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
    record_event(&dir, "start", &[]);
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
    shed_startup_memory();
    let status = relay(
        &info,
        started.pid,
        &sigfd,
        log,
        started.out,
        started.err,
        started.stdin,
        listener,
        first_client,
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
    delete_runtime(started.runtime);
    let _ = CgroupMode::detect().remove(&info.cgroup);
    trace("run: runtime state and cgroup removed");
    run_exit_hook(&dir);
    std::process::exit(0)
}

/// A container event in the event log, with the container's attributes. The monitor records
/// `start` (before anyone learns the container runs) and `oom`/`die` (it is the one that sees
/// the exit, whichever process started the container), so they are in the order they happened.
fn record_event(dir: &Path, action: &str, extra: &[(&str, &str)]) {
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
struct LogWriter {
    dir: PathBuf,
    file: File,
    size: u64,
    max_size: Option<u64>,
    max_file: u32,
}

impl LogWriter {
    /// `None` for `--log-driver none`, or when the file cannot be opened (the output is then
    /// still served to attached clients).
    fn open(dir: &Path, cfg: &crate::LogConfig) -> Option<LogWriter> {
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

fn exit_from(ws: WaitStatus) -> Option<(i32, Option<i32>)> {
    match ws {
        WaitStatus::Exited(_, c) => Some((c, None)),
        WaitStatus::Signaled(_, s, _) => Some((128 + s as i32, Some(s as i32))),
        _ => None,
    }
}

#[allow(clippy::too_many_arguments)]
fn relay(
    info: &BundleInfo,
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
    let tty_master = if info.tty {
        Some(out.as_raw_fd())
    } else {
        None
    };
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
    let oom_killed = cgroups.oom_kills(&info.cgroup) > 0;
    let (memory_peak, memory_limit) = cgroups.memory_peak_and_limit(&info.cgroup);
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

fn write_all_fd(fd: RawFd, mut data: &[u8]) -> nix::Result<()> {
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

fn exec_mode(dir: PathBuf, json: &str) -> ! {
    seal_exe();
    let opts: ExecOptions =
        serde_json::from_str(json).unwrap_or_else(|e| die(&format!("bad exec options: {e}")));
    match exec_inner(&dir, &opts) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(match e {
                crate::Error::Start {
                    kind: StartErrorKind::NotFound,
                    ..
                } => 127,
                crate::Error::Start {
                    kind: StartErrorKind::PermissionDenied,
                    ..
                } => 126,
                _ => 126,
            })
        }
    }
}

fn exec_inner(dir: &Path, opts: &ExecOptions) -> crate::Result<i32> {
    use libcontainer::container::builder::ContainerBuilder;
    use libcontainer::syscall::syscall::SyscallType;
    let info = crate::bundle_info(dir)?;
    let rec = crate::start_record(dir)?;
    if let RuntimeKind::External(rt) = &rec.runtime {
        return exec_external_tty(dir, rt, &rec, &info, opts);
    }
    let spec: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.join("config.json"))?)?;
    let rootfs = dir.join("rootfs");
    let mut process = spec["process"].clone();
    let mut env: Vec<String> = serde_json::from_value(process["env"].clone()).unwrap_or_default();
    crate::spec::exec_env(&mut env, &opts.env, opts.tty);
    process["env"] = serde_json::json!(env);
    process["args"] = serde_json::json!(opts.args);
    // The pty is set up by the Workload executor, not through a console socket.
    process["terminal"] = serde_json::json!(false);
    if let Some(w) = &opts.workdir {
        process["cwd"] = serde_json::json!(w);
    }
    let cwd = process["cwd"].as_str().unwrap_or("/").to_string();
    if let Some(u) = &opts.user {
        let r = crate::spec::resolve_user(&rootfs, u, &[])?;
        process["user"] =
            serde_json::json!({"uid": r.uid, "gid": r.gid, "additionalGids": r.additional_gids});
        if r.uid != 0 {
            process["capabilities"]["effective"] = serde_json::json!([]);
            process["capabilities"]["permitted"] = serde_json::json!([]);
        }
    }
    if opts.privileged {
        let all = serde_json::json!(crate::spec::host_caps());
        process["capabilities"] =
            serde_json::json!({"bounding": all, "effective": all, "permitted": all});
    }
    check_executable(&rootfs, &spec, &cwd, &opts.args[0], &env)
        .map_err(|(kind, message)| crate::Error::Start { kind, message })?;
    // The container's profile, precompiled; libcontainer's bundle may lack it (see
    // `builtin_bundle`), so failing to compile it here is an error, never an unfiltered exec.
    let seccomp = match precompiled_seccomp(&spec, &rec.state_root) {
        Ok(Some(bpf)) => {
            let nnp = process["noNewPrivileges"].as_bool() == Some(true);
            let (added_effective, added_permitted) = if nnp {
                (false, false)
            } else {
                add_capability(&mut process, "CAP_SYS_ADMIN")
            };
            Some(SeccompLoad {
                bpf: std::sync::Arc::new(bpf),
                added_effective,
                added_permitted,
            })
        }
        Ok(None) => None,
        Err(e) => return Err(crate::Error::Invalid(format!("exec failed: {e}"))),
    };
    let pfile = rec
        .state_root
        .join(format!("{}.exec{}.json", info.id, std::process::id()));
    std::fs::write(&pfile, serde_json::to_vec(&process)?)?;
    set_subreaper();
    let pair = if opts.tty {
        Some(UnixStream::pair()?)
    } else {
        None
    };
    let dup = |fd: RawFd| -> crate::Result<OwnedFd> {
        let b = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
        Ok(b.try_clone_to_owned()?)
    };
    let pty_sock = pair.as_ref().map(|(_, theirs)| theirs.as_raw_fd());
    let workload = Workload { pty_sock, seccomp };
    let attempt = || -> crate::Result<_> {
        let mut b = ContainerBuilder::new(info.id.clone(), SyscallType::default())
            .with_root_path(&rec.state_root)
            .map_err(|e| crate::Error::Invalid(e.to_string()))?;
        // libcontainer needs pipes or files as stdio; /dev/null-like stdio is swapped for a pipe.
        b = b
            .with_stdin(stdio_or_pipe(dup(0)?))
            .with_stdout(dup(1)?)
            .with_stderr(dup(2)?);
        b = b.with_executor(workload.clone());
        Ok(b.as_tenant()
            .with_process(Some(&pfile))
            .with_detach(true)
            .build())
    };
    let mut res = attempt()?;
    // libcontainer's setup channel can see the init's "ready" before the intermediate's on a
    // loaded machine and gives up, leaving the init waiting for a message that never comes
    // (and holding the caller's stdout). The user's command has not run yet: kill what the
    // attempt left (we are its subreaper) and try again.
    for _ in 0..3 {
        match &res {
            Err(e) if e.to_string().contains("unexpected message") => {
                kill_children();
                res = attempt()?;
            }
            _ => break,
        }
    }
    if res.is_err() {
        kill_children();
    }
    let _ = std::fs::remove_file(&pfile);
    let pid = res.map_err(|e| crate::Error::Start {
        kind: StartErrorKind::Other,
        message: format!("exec failed: {e}"),
    })?;
    if let Some((ours, theirs)) = pair {
        drop(theirs);
        let master = receive_fd(&ours).map_err(|f| crate::Error::Invalid(f.message))?;
        return Ok(relay_tty(pid.as_raw(), master));
    }
    loop {
        match waitpid(pid, None) {
            Ok(ws) => {
                if let Some((code, _)) = exit_from(ws) {
                    return Ok(code);
                }
            }
            Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
}

/// `<runtime> exec --detach --tty --console-socket`, then relay the pty until the process
/// (re-parented to us, the subreaper) exits.
fn exec_external_tty(
    dir: &Path,
    rt: &Path,
    rec: &StartRecord,
    info: &BundleInfo,
    opts: &ExecOptions,
) -> crate::Result<i32> {
    set_subreaper();
    let tag = format!("{}.exec{}", info.id, std::process::id());
    let console = rec.state_root.join(format!("{tag}.tty"));
    let pidfile = rec.state_root.join(format!("{tag}.pid"));
    let listener = console_listener(&console).map_err(|f| crate::Error::Invalid(f.message))?;
    let extra = [
        std::ffi::OsStr::new("--detach"),
        std::ffi::OsStr::new("--tty"),
        std::ffi::OsStr::new("--console-socket"),
        listener.connect.as_os_str(),
        std::ffi::OsStr::new("--pid-file"),
        pidfile.as_os_str(),
    ];
    let mut cmd = crate::external_exec_command(rt, rec, info, dir, opts, &extra)?;
    let out = cmd.stdin(Stdio::null()).output()?;
    let _ = std::fs::remove_file(&console);
    if !out.status.success() {
        let _ = std::fs::remove_file(&pidfile);
        return Err(crate::Error::Invalid(format!(
            "exec failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    let master =
        receive_master(&listener.listener).map_err(|f| crate::Error::Invalid(f.message))?;
    let pid: i32 = std::fs::read_to_string(&pidfile)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0);
    let _ = std::fs::remove_file(&pidfile);
    Ok(relay_tty(pid, master))
}

/// A character device (like /dev/null) as stdin is replaced by an empty pipe.
fn stdio_or_pipe(fd: OwnedFd) -> OwnedFd {
    use std::os::unix::fs::FileTypeExt;
    let f = File::from(fd);
    let is_chr = f
        .metadata()
        .map(|m| m.file_type().is_char_device())
        .unwrap_or(false);
    let tty = unsafe { libc::isatty(f.as_raw_fd()) } == 1;
    if is_chr && !tty {
        if let Ok((r, _w)) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC) {
            return r;
        }
    }
    OwnedFd::from(f)
}

/// Gives the pty `master` the size of the terminal on our stdin (or stdout), if there is one.
fn copy_window_size(master: &impl AsFd) {
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    for fd in [0, 1] {
        // SAFETY: TIOCGWINSZ writes one winsize into `ws`; a non-terminal fd fails harmlessly.
        if unsafe { libc::ioctl(fd, libc::TIOCGWINSZ, &mut ws) } == 0 && ws.ws_row > 0 {
            // SAFETY: TIOCSWINSZ reads one winsize from `ws`; the master is open.
            unsafe { libc::ioctl(master.as_fd().as_raw_fd(), libc::TIOCSWINSZ, &ws) };
            return;
        }
    }
}

/// Relays our stdin/stdout to a pty master until `pid` exits; returns its exit code. The
/// caller's terminal size is copied at once and again on every SIGWINCH (we are in the
/// terminal's foreground process group, so resizes reach us).
fn relay_tty(pid: i32, master: OwnedFd) -> i32 {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    let sigfd = signal_fd();
    let winch = {
        let mut set = SigSet::empty();
        set.add(Signal::SIGWINCH);
        let _ = set.thread_block();
        SignalFd::with_flags(&set, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK).ok()
    };
    copy_window_size(&master);
    let stdin = unsafe { std::os::fd::BorrowedFd::borrow_raw(0) };
    let mut stdin_open = true;
    let mut buf = vec![0u8; 32 * 1024];
    let mut code = None;
    let mut deadline: Option<Instant> = None;
    loop {
        if let Some(d) = deadline {
            if Instant::now() >= d {
                break;
            }
        }
        let mut fds = vec![
            PollFd::new(sigfd.as_fd(), PollFlags::POLLIN),
            PollFd::new(master.as_fd(), PollFlags::POLLIN),
        ];
        if stdin_open {
            fds.push(PollFd::new(stdin, PollFlags::POLLIN));
        }
        let winch_at = fds.len();
        if let Some(w) = &winch {
            fds.push(PollFd::new(w.as_fd(), PollFlags::POLLIN));
        }
        let t = if deadline.is_some() {
            PollTimeout::from(50u8)
        } else {
            PollTimeout::NONE
        };
        if poll(&mut fds, t).is_err() {
            continue;
        }
        let rv: Vec<bool> = fds
            .iter()
            .map(|f| f.revents().map(|r| !r.is_empty()).unwrap_or(false))
            .collect();
        drop(fds);
        if rv.get(winch_at) == Some(&true) {
            if let Some(w) = &winch {
                while let Ok(Some(_)) = w.read_signal() {}
            }
            copy_window_size(&master);
        }
        if rv[0] {
            while let Ok(Some(_)) = sigfd.read_signal() {}
            while let Ok(ws) = waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                if ws == WaitStatus::StillAlive {
                    break;
                }
                if ws.pid() == Some(Pid::from_raw(pid)) {
                    code = exit_from(ws).map(|c| c.0);
                    deadline = Some(Instant::now() + Duration::from_millis(200));
                }
            }
        }
        if rv[1] {
            match nix::unistd::read(master.as_raw_fd(), &mut buf) {
                Ok(0) | Err(_) => {
                    if code.is_some() {
                        break;
                    }
                    deadline.get_or_insert(Instant::now() + Duration::from_secs(1));
                }
                Ok(n) => {
                    let _ = write_all_fd(1, &buf[..n]);
                }
            }
        }
        if stdin_open && rv[2] {
            match nix::unistd::read(0, &mut buf) {
                Ok(0) | Err(_) => {
                    stdin_open = false;
                    let _ = write_all_fd(master.as_raw_fd(), &[4]);
                }
                Ok(n) => {
                    let _ = write_all_fd(master.as_raw_fd(), &buf[..n]);
                }
            }
        }
    }
    unblock_signals();
    if winch.is_some() {
        let mut set = SigSet::empty();
        set.add(Signal::SIGWINCH);
        let _ = set.thread_unblock();
    }
    if code.is_none() {
        if let Ok(ws) = waitpid(Pid::from_raw(pid), None) {
            code = exit_from(ws).map(|c| c.0);
        }
    }
    code.unwrap_or(255)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cgroup_v1_hierarchies_become_read_only_paths() {
        let mountinfo = "\
24 1 0:22 / /sys rw,nosuid - sysfs sysfs rw
29 24 0:26 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro,mode=755
30 29 0:27 / /sys/fs/cgroup/unified rw,nosuid - cgroup2 cgroup2 rw
31 29 0:28 / /sys/fs/cgroup/systemd rw,nosuid - cgroup cgroup rw,xattr,name=systemd
35 29 0:32 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid - cgroup cgroup rw,cpu,cpuacct
36 29 0:33 / /sys/fs/cgroup/pids rw,nosuid - cgroup cgroup rw,pids
90 1 0:33 / /mnt/elsewhere/pids rw - cgroup cgroup rw,pids
";
        assert_eq!(
            cgroup_v1_mount_points(mountinfo),
            [
                "/sys/fs/cgroup/systemd",
                "/sys/fs/cgroup/cpu,cpuacct",
                "/sys/fs/cgroup/pids"
            ]
        );
        // Only when the spec asks for a read-only cgroupfs (never for --privileged).
        let mut spec = serde_json::json!({
            "mounts": [{"destination": "/sys/fs/cgroup", "type": "cgroup", "options": ["nosuid", "rw"]}],
            "linux": {}
        });
        readonly_cgroup_v1(&mut spec);
        assert!(spec["linux"]["readonlyPaths"].is_null());
    }
}
