use super::*;
use crate::relay::Delete;

pub(super) struct StartFailure {
    pub(super) kind: StartErrorKind,
    pub(super) message: String,
}

pub(super) fn fail(message: impl Into<String>) -> StartFailure {
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

pub(super) enum Runtime {
    Builtin(Box<libcontainer::container::Container>),
    External {
        bin: PathBuf,
        root: PathBuf,
        id: String,
    },
}

pub(super) struct Started {
    pub pid: i32,
    /// stdout pipe read end, or the pty master.
    pub out: OwnedFd,
    pub err: Option<OwnedFd>,
    pub stdin: Option<OwnedFd>,
    /// How the relay deletes the runtime's state after the exit.
    pub delete: Delete,
}

pub(super) fn pipe() -> Result<(OwnedFd, OwnedFd), StartFailure> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| fail(format!("pipe: {e}")))
}

/// A console socket for an external runtime, bound at `path`.
pub(super) struct ConsoleSocket {
    pub(super) listener: UnixListener,
    /// What the runtime is told to connect to: `path` itself, or, when that is too long for
    /// `sun_path`, `/proc/<our pid>/fd/<N>/<name>` through `_dir`, an open handle of its
    /// directory (the runtime is our child and root, so it can follow that link).
    pub(super) connect: PathBuf,
    pub(super) _dir: Option<OwnedFd>,
}

pub(super) fn console_listener(path: &Path) -> Result<ConsoleSocket, StartFailure> {
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
pub(super) fn receive_master(listener: &UnixListener) -> Result<OwnedFd, StartFailure> {
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
pub(super) fn receive_fd(stream: &UnixStream) -> Result<OwnedFd, StartFailure> {
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
pub(super) struct SeccompLoad {
    pub(super) bpf: std::sync::Arc<Vec<u8>>,
    pub(super) added_effective: bool,
    pub(super) added_permitted: bool,
}

/// The built-in runtime's workload executor. For `-t` it allocates the pty inside the
/// container (from the container's own devpts, as runc does, so `tty` names `/dev/pts/0`),
/// makes it the controlling terminal and stdio and sends the master to the monitor; with a
/// precompiled seccomp program it loads it and drops the capability bits added for that;
/// then it execs as usual.
#[derive(Clone)]
pub(super) struct Workload {
    pub(super) pty_sock: Option<RawFd>,
    pub(super) seccomp: Option<SeccompLoad>,
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
pub(super) fn reset_signals() {
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
pub(super) fn add_capability(process: &mut serde_json::Value, cap: &str) -> (bool, bool) {
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
pub(super) fn precompiled_seccomp(
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
pub(super) fn builtin_bundle(
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
pub(super) fn readonly_cgroup_v1(spec: &mut serde_json::Value) {
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
pub(super) fn cgroup_v1_mount_points(mountinfo: &str) -> Vec<String> {
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

pub(super) fn setup_pty(sock: RawFd) -> nix::Result<()> {
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
    super::exec::copy_window_size(&master);
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
pub(super) fn rebuild_ld_cache(
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

pub(super) fn create_and_start(
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
    let delete = match runtime {
        // libcontainer's delete matters only for the hooks it runs.
        Runtime::Builtin(_) if has_poststop_hooks(&spec) => Delete::Builtin {
            state_root: rec.state_root.clone(),
            id: info.id.clone(),
        },
        Runtime::Builtin(_) => Delete::State(rec.state_root.join(&info.id)),
        Runtime::External { bin, root, id } => Delete::External { bin, root, id },
    };
    Ok(Started {
        pid,
        out,
        err,
        stdin,
        delete,
    })
}

pub(super) fn has_poststop_hooks(spec: &serde_json::Value) -> bool {
    spec["hooks"]["poststop"]
        .as_array()
        .is_some_and(|h| !h.is_empty())
}

/// `berth-monitor delete`: libcontainer's delete of a stopped container (its `poststop`
/// hooks run), then exit.
pub(super) fn delete_stopped(state_root: &Path, id: &str) -> ! {
    match libcontainer::container::Container::load(state_root.join(id)) {
        Ok(c) => delete_runtime(Runtime::Builtin(Box::new(c))),
        Err(e) => eprintln!("berth-monitor: container state {id}: {e}"),
    }
    std::process::exit(0)
}

/// The last error line of an OCI runtime's `--log` file.
pub(super) fn runtime_error(log: &Path) -> String {
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

pub(super) fn drain_now(fd: &OwnedFd) -> String {
    let _ = nix::fcntl::fcntl(
        fd.as_raw_fd(),
        nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
    );
    let mut buf = vec![0u8; 8192];
    let n = nix::unistd::read(fd.as_raw_fd(), &mut buf).unwrap_or(0);
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

pub(super) fn delete_runtime(rt: Runtime) {
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
