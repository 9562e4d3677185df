use super::start::*;
use super::*;
use crate::relay::{exit_from, write_all_fd};

pub(super) fn exec_mode(dir: PathBuf, json: &str) -> ! {
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
pub(super) fn copy_window_size(master: &impl AsFd) {
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
