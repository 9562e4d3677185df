//! Container commands: `run`, `create`, `start`, `stop`, `restart`, `kill`, `rm`, `ps`, `logs`,
//! `exec`, `attach`, `wait`, `rename`, `pause`, `unpause`, `top`, `port`, `container inspect`,
//! `container prune`, and the `volume` commands.

use crate::cli::{
    AttachArgs, ContainerInspectArgs, ContainersArgs, ExecArgs, KillArgs, LogsArgs, PortArgs,
    PsArgs, RenameArgs, RmArgs, RunArgs, StartArgs, StopArgs, TopArgs, UpdateArgs,
    VolumeCreateArgs, VolumeInspectArgs, VolumeLsArgs, VolumePruneArgs, VolumeRmArgs,
};
use crate::output::{default_header, go_time, human_size, since};
use crate::{exit_status, StatusError};
use anyhow::Result;
use berth_engine::containers::{
    parse_time_arg, ContainerSummary, CreateOptions, ExecOptions, ListOptions, LogOptions,
    RunOptions, Ulimit,
};
use berth_engine::streams::{
    AttachStream, ContainerHandle, DetachKeys, DetachMatcher, ExitStatus, STDERR,
};
use berth_engine::{Engine, EngineError};
use serde_json::{json, Value};
use std::io::{IsTerminal, Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// An error with Docker's exit code and message.
pub(super) fn status(code: u8, message: impl Into<String>) -> anyhow::Error {
    let message: String = message.into();
    // main prints "Error: " in front; one prefix is enough.
    let message = message
        .strip_prefix("Error response from daemon: ")
        .map(str::to_string)
        .unwrap_or(message);
    StatusError { code, message }.into()
}

fn flag_error(value: &str, flag: &str, why: &str) -> anyhow::Error {
    status(
        125,
        format!("invalid argument \"{value}\" for \"{flag}\" flag: {why}"),
    )
}

/// Docker's RAMInBytes: `12`, `64k`, `512m`, `1g`, `1.5g` (binary units, optional `b`).
pub fn parse_ram(s: &str) -> Option<i64> {
    let lower = s.trim().to_ascii_lowercase();
    let body = lower.strip_suffix('b').unwrap_or(&lower);
    let (num, mult): (&str, f64) = match body.chars().last()? {
        'k' => (&body[..body.len() - 1], 1024.0),
        'm' => (&body[..body.len() - 1], 1024.0 * 1024.0),
        'g' => (&body[..body.len() - 1], 1024.0 * 1024.0 * 1024.0),
        't' => (&body[..body.len() - 1], 1024f64.powi(4)),
        'p' => (&body[..body.len() - 1], 1024f64.powi(5)),
        c if c.is_ascii_digit() => (body, 1.0),
        _ => return None,
    };
    let v: f64 = num.parse().ok()?;
    if !v.is_finite() || v < 0.0 {
        return None;
    }
    Some((v * mult) as i64)
}

fn read_env_files(files: &[std::path::PathBuf]) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(f)
            .map_err(|e| status(125, format!("open {}: {e}", f.display())))?;
        for line in text.lines() {
            let l = line.trim_start();
            if l.is_empty() || l.starts_with('#') {
                continue;
            }
            out.push(l.to_string());
        }
    }
    Ok(out)
}

/// `-e KEY` takes KEY from the caller's environment (dropped when unset), as the docker CLI.
fn resolve_env(list: Vec<String>) -> Vec<String> {
    list.into_iter()
        .filter_map(|e| {
            if e.contains('=') {
                Some(e)
            } else {
                std::env::var(&e).ok().map(|v| format!("{e}={v}"))
            }
        })
        .collect()
}

/// Turns `run`/`create` flags into engine options. Only the flags' syntax is checked here
/// (the docker CLI's "invalid argument" errors); the daemon's rules on the values (limits,
/// ranges, `--security-opt`, `-w`) are the engine's, which answers with Docker's words.
fn create_options(a: &RunArgs) -> Result<CreateOptions> {
    let mut env = read_env_files(&a.env_file)?;
    env.extend(a.env.iter().cloned());
    let env = resolve_env(env);
    let mut run = RunOptions {
        cmd: a.command.clone(),
        env,
        workdir: a.workdir.clone(),
        user: a.user.clone(),
        group_add: a.group_add.clone(),
        hostname: a.hostname.clone(),
        domainname: a.domainname.clone(),
        tty: a.tty,
        stdin_open: a.interactive,
        read_only: a.read_only,
        cap_add: a.cap_add.clone(),
        cap_drop: a.cap_drop.clone(),
        privileged: a.privileged,
        stop_signal: a.stop_signal.clone(),
        cpuset_cpus: a.cpuset_cpus.clone(),
        ..Default::default()
    };
    if let Some(e) = &a.entrypoint {
        run.entrypoint = Some(if e.is_empty() {
            Vec::new()
        } else {
            vec![e.clone()]
        });
    }
    // --label-file first: --label wins, as in Docker.
    for l in read_env_files(&a.host.label_file)?.iter().chain(&a.label) {
        let (k, v) = l.split_once('=').unwrap_or((l.as_str(), ""));
        run.labels.insert(k.to_string(), v.to_string());
    }
    if let Some(m) = &a.memory {
        let v = parse_ram(m)
            .ok_or_else(|| flag_error(m, "-m, --memory", &format!("invalid size: '{m}'")))?;
        run.memory = Some(v);
    }
    if let Some(m) = &a.memory_swap {
        let v = if m == "-1" {
            -1
        } else {
            parse_ram(m)
                .ok_or_else(|| flag_error(m, "--memory-swap", &format!("invalid size: '{m}'")))?
        };
        run.memory_swap = Some(v);
    }
    if let Some(c) = &a.cpus {
        let v: f64 = c.parse().map_err(|_| {
            flag_error(
                c,
                "--cpus",
                &format!("failed to parse {c} as a rational number"),
            )
        })?;
        run.cpus = Some(v);
    }
    if let Some(c) = &a.cpu_shares {
        let v: i64 = c.parse().map_err(|_| {
            flag_error(
                c,
                "-c, --cpu-shares",
                &format!("strconv.ParseInt: parsing \"{c}\": invalid syntax"),
            )
        })?;
        run.cpu_shares = Some(v);
    }
    if let Some(p) = &a.pids_limit {
        let v: i64 = p.parse().map_err(|_| {
            flag_error(
                p,
                "--pids-limit",
                &format!("strconv.ParseInt: parsing \"{p}\": invalid syntax"),
            )
        })?;
        run.pids_limit = Some(v);
    }
    if let Some(s) = &a.shm_size {
        let v = parse_ram(s)
            .ok_or_else(|| flag_error(s, "--shm-size", &format!("invalid size: '{s}'")))?;
        run.shm_size = Some(v as u64);
    }
    if let Some(t) = &a.stop_timeout {
        let v: i64 = t.parse().map_err(|_| {
            flag_error(
                t,
                "--stop-timeout",
                &format!("strconv.ParseInt: parsing \"{t}\": invalid syntax"),
            )
        })?;
        run.stop_timeout = Some(v);
    }
    for u in &a.ulimit {
        let bad = || flag_error(u, "--ulimit", &format!("invalid ulimit argument: {u}"));
        let (name, vals) = u.split_once('=').ok_or_else(bad)?;
        let (soft, hard) = match vals.split_once(':') {
            Some((s, h)) => (s, h),
            None => (vals, vals),
        };
        let p = |x: &str| -> Result<u64> {
            if x == "-1" || x == "unlimited" {
                Ok(u64::MAX)
            } else {
                x.parse::<u64>().map_err(|_| bad())
            }
        };
        run.ulimits.push(Ulimit {
            name: name.to_string(),
            soft: p(soft)?,
            hard: p(hard)?,
        });
    }
    if let Some(k) = &a.detach_keys {
        parse_detach_keys(Some(k))?;
    }
    let healthcheck = berth_engine::containers::health::HealthFlags {
        cmd: a.health_cmd.clone(),
        interval: a.health_interval.clone(),
        timeout: a.health_timeout.clone(),
        start_period: a.health_start_period.clone(),
        start_interval: a.health_start_interval.clone(),
        retries: a.health_retries.clone(),
        no_healthcheck: a.no_healthcheck,
    }
    .to_config()
    .map_err(|e| status(125, e.to_string()))?;
    Ok(CreateOptions {
        image: a.image.clone(),
        name: a.name.clone(),
        run,
        binds: a.volume.iter().map(|b| absolute_bind_source(b)).collect(),
        mounts: a.mount.clone(),
        tmpfs: a.tmpfs.clone(),
        runtime: a.runtime.clone(),
        auto_remove: a.rm,
        restart: a.restart.clone(),
        network: a.network.clone(),
        net: berth_engine::containers::network::NetRequest {
            publish: a.publish.clone(),
            publish_all: a.publish_all,
            aliases: a.network_alias.clone(),
            ip: a.ip.clone(),
            add_hosts: a.add_host.clone(),
            dns: a.dns.clone(),
            dns_search: a.dns_search.clone(),
            dns_options: a.dns_option.clone(),
        },
        detach: a.detach,
        security_opt: a.security_opt.clone(),
        healthcheck,
        host: host_options(a)?,
        init: a.init,
        pod: a.pod.clone(),
        pull: a
            .host
            .pull
            .parse()
            .map_err(|e: EngineError| status(125, e.to_string()))?,
    })
}

/// A number flag, with the docker CLI's words for a bad one.
fn int_flag(v: &Option<String>, flag: &str) -> Result<Option<i64>> {
    v.as_ref()
        .map(|s| {
            s.parse::<i64>().map_err(|_| {
                flag_error(
                    s,
                    flag,
                    &format!("strconv.ParseInt: parsing \"{s}\": invalid syntax"),
                )
            })
        })
        .transpose()
}

/// `-a/--attach` values: which of stdin, stdout, stderr (none given: stdout and stderr).
fn attach_streams_of(a: &RunArgs) -> Result<(bool, bool, bool)> {
    if a.host.attach.is_empty() {
        return Ok((a.interactive, true, true));
    }
    if a.detach {
        return Err(status(125, "Conflicting options: -a and -d"));
    }
    let (mut i, mut o, mut e) = (false, false, false);
    for s in &a.host.attach {
        match s.to_ascii_lowercase().as_str() {
            "stdin" => i = true,
            "stdout" => o = true,
            "stderr" => e = true,
            _ => {
                return Err(flag_error(
                    s,
                    "-a, --attach",
                    "valid streams are STDIN, STDOUT and STDERR",
                ))
            }
        }
    }
    Ok((i, o, e))
}

fn host_options(a: &RunArgs) -> Result<berth_engine::containers::host_opts::HostOptions> {
    let h = &a.host;
    let memory_reservation = match &h.memory_reservation {
        Some(m) => Some(parse_ram(m).ok_or_else(|| {
            flag_error(m, "--memory-reservation", &format!("invalid size: '{m}'"))
        })?),
        None => None,
    };
    if h.oom_kill_disable && a.memory.as_deref().and_then(parse_ram).unwrap_or(0) <= 0 {
        eprintln!("WARNING: Disabling the OOM killer on containers without setting a '-m/--memory' limit may be dangerous.");
    }
    let (i, o, e) = attach_streams_of(a)?;
    let mut attach = Vec::new();
    if !h.attach.is_empty() {
        for (on, name) in [(i, "stdin"), (o, "stdout"), (e, "stderr")] {
            if on {
                attach.push(name.to_string());
            }
        }
    }
    // `--gpus` is parsed as the docker CLI parses it; its errors are flag errors (125).
    let device_requests = h
        .gpus
        .iter()
        .map(|g| berth_engine::gpu::parse_gpus(g).map_err(|e| status(125, e)))
        .collect::<Result<Vec<_>>>()?;
    Ok(berth_engine::containers::host_opts::HostOptions {
        device_requests,
        ipc: h.ipc.clone(),
        pid: h.pid.clone(),
        uts: h.uts.clone(),
        devices: h.device.clone(),
        device_cgroup_rules: h.device_cgroup_rule.clone(),
        sysctls: h.sysctl.clone(),
        log_driver: h.log_driver.clone(),
        log_opts: h.log_opt.clone(),
        volumes_from: h.volumes_from.clone(),
        container_id_file: h.cidfile.as_ref().map(|p| p.display().to_string()),
        expose: h.expose.clone(),
        memory_reservation,
        memory_swappiness: int_flag(&h.memory_swappiness, "--memory-swappiness")?,
        oom_kill_disable: h.oom_kill_disable,
        oom_score_adj: int_flag(&h.oom_score_adj, "--oom-score-adj")?,
        cpu_period: int_flag(&h.cpu_period, "--cpu-period")?,
        cpu_quota: int_flag(&h.cpu_quota, "--cpu-quota")?,
        platform: h.platform.clone(),
        attach,
    })
}

/// `--cidfile`: refused when the file exists (Docker's words), made empty before the
/// container is created and removed again if that fails.
struct CidFile(Option<std::path::PathBuf>);

impl CidFile {
    fn create(path: &Option<std::path::PathBuf>) -> Result<CidFile> {
        let Some(p) = path else {
            return Ok(CidFile(None));
        };
        if p.exists() {
            return Err(status(
                125,
                format!(
                    "Container ID file found, make sure the other container isn't running or delete {}",
                    p.display()
                ),
            ));
        }
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(p)
            .map_err(|e| {
                status(
                    125,
                    format!(
                        "failed to create the container ID file: {}: {e}",
                        p.display()
                    ),
                )
            })?;
        Ok(CidFile(Some(p.clone())))
    }

    /// Writes the ID; the file then stays, whatever happens next.
    fn write(&mut self, id: &str) -> Result<()> {
        if let Some(p) = self.0.take() {
            std::fs::write(&p, id).map_err(|e| {
                status(
                    125,
                    format!(
                        "failed to write the container ID to the file: {}: {e}",
                        p.display()
                    ),
                )
            })?;
        }
        Ok(())
    }
}

impl Drop for CidFile {
    fn drop(&mut self) {
        if let Some(p) = &self.0 {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// `--detach-keys`: Docker's syntax, checked by the engine; unset or empty: ctrl-p,ctrl-q.
fn parse_detach_keys(s: Option<&str>) -> Result<DetachKeys> {
    DetachKeys::parse_or_default(s).map_err(|e| status(125, e.to_string()))
}

/// What the CLI shows of a create's work: Docker's line before a pull on demand, and the
/// container's ID into `--cidfile` once it exists.
fn create_events<'a>(
    cidfile: &'a mut CidFile,
    written: &'a mut Result<()>,
) -> impl FnMut(berth_engine::containers::CreateEvent) + 'a {
    use berth_engine::containers::CreateEvent;
    move |e| match e {
        CreateEvent::PullingMissing(name) => eprintln!("Unable to find image '{name}' locally"),
        CreateEvent::Pull(_) => {}
        CreateEvent::Created(id) => *written = cidfile.write(id),
    }
}

/// A failed run/create/start/wait of a container: Docker's line, and the exit status
/// `crate::exit_code` gives for `run`.
fn engine_error(e: EngineError) -> anyhow::Error {
    let code = crate::exit_code(&e, crate::Verb::Run);
    match &e {
        EngineError::Runtime(_) => status(
            code,
            format!("Error response from daemon: failed to create task for container: OCI runtime create failed: {e}"),
        ),
        _ => status(code, format!("Error response from daemon: {e}")),
    }
}

pub fn create(engine: &mut Engine, a: RunArgs) -> Result<()> {
    let opts = create_options(&a)?;
    let mut cidfile = CidFile::create(&a.host.cidfile)?;
    let mut written = Ok(());
    let id = engine
        .create_container_with(&opts, &mut create_events(&mut cidfile, &mut written))
        .map_err(engine_error)?;
    written?;
    println!("{id}");
    Ok(())
}

/// Blocks SIGINT/SIGTERM/SIGHUP/SIGQUIT/SIGWINCH in this thread (and the threads it starts
/// later) and forwards them from a dedicated thread: termination signals go to the container,
/// SIGWINCH calls `on_winch`.
fn forward_signals(
    container: ContainerHandle,
    on_winch: Option<Box<dyn Fn() + Send>>,
    proxy: bool,
) {
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in [
            libc::SIGINT,
            libc::SIGTERM,
            libc::SIGHUP,
            libc::SIGQUIT,
            libc::SIGWINCH,
        ] {
            libc::sigaddset(&mut set, s);
        }
        if !proxy {
            // `--sig-proxy=false`: only SIGWINCH is ours; the others end berth as usual and
            // leave the container running.
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, libc::SIGWINCH);
        }
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        let set_copy = set;
        std::thread::spawn(move || loop {
            let mut sig: libc::c_int = 0;
            if libc::sigwait(&set_copy, &mut sig) != 0 {
                return;
            }
            if sig == libc::SIGWINCH {
                if let Some(f) = &on_winch {
                    f();
                }
                continue;
            }
            let _ = container.signal(sig);
        });
    }
}

fn print_entry(e: &berth_engine::containers::LogEntry, timestamps: bool) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(e.data.len() + 40);
    if timestamps {
        buf.extend_from_slice(e.time.as_bytes());
        buf.push(b' ');
    }
    buf.extend_from_slice(&e.data);
    if e.stream == 2 {
        let mut err = std::io::stderr().lock();
        err.write_all(&buf)?;
        err.flush()
    } else {
        let mut out = std::io::stdout().lock();
        out.write_all(&buf)?;
        out.flush()
    }
}

/// Which output streams an attached command shows (`-a`), and whether it forwards signals
/// (`--sig-proxy`).
#[derive(Clone, Copy)]
struct Streams {
    stdout: bool,
    stderr: bool,
    sig_proxy: bool,
}

impl Streams {
    const ALL: Streams = Streams {
        stdout: true,
        stderr: true,
        sig_proxy: true,
    };

    fn shows(&self, stream: u8) -> bool {
        if stream == 2 {
            self.stderr
        } else {
            self.stdout
        }
    }
}

/// Streams a container's output from its log until it exits, forwarding signals; returns its
/// exit code.
fn follow_until_exit(engine: &mut Engine, id: &str, streams: Streams) -> Result<i32> {
    let (_, dir) = engine.container_dir(id)?;
    let container = engine.container_handle(id)?;
    forward_signals(container.clone(), None, streams.sig_proxy);
    let done = Arc::new(AtomicBool::new(false));
    let d2 = done.clone();
    let dir2 = dir.clone();
    let reader = std::thread::spawn(move || {
        let opts = LogOptions {
            follow: true,
            ..Default::default()
        };
        let _ = berth_engine::containers::follow_log(
            &dir2,
            &opts,
            &|| d2.load(Ordering::Relaxed),
            &mut |e| {
                if streams.shows(e.stream) {
                    print_entry(e, false)
                } else {
                    Ok(())
                }
            },
        );
    });
    let st = container.wait_exit(None);
    done.store(true, Ordering::Relaxed);
    reader.thread().unpark();
    let _ = reader.join();
    let code = match st {
        Ok(Some(st)) => {
            explain_exit(id, &st);
            st.exit_code
        }
        Ok(None) | Err(_) => engine
            .wait_and_finish(id)
            .map(|st| explain_exit(id, &st).exit_code)
            .unwrap_or(255),
    };
    engine.wait_and_finish(id).map_err(engine_error)?;
    Ok(code)
}

/// `-v ./data:/data`: a bind source starting with `.` is the client's relative path, made
/// absolute here against the current directory, as the docker CLI ≥ 23 does (the engine, like
/// Docker's daemon, takes only absolute sources; `data/x:/x` stays a volume-name error).
fn absolute_bind_source(bind: &str) -> String {
    let Some((source, rest)) = bind.split_once(':') else {
        return bind.to_string();
    };
    if !source.starts_with('.') {
        return bind.to_string();
    }
    let Ok(cwd) = std::env::current_dir() else {
        return bind.to_string();
    };
    let mut path = std::path::PathBuf::new();
    for part in cwd.join(source).components() {
        match part {
            std::path::Component::ParentDir => {
                path.pop();
            }
            std::path::Component::CurDir => {}
            other => path.push(other),
        }
    }
    format!("{}:{rest}", path.display())
}

/// A foreground run that the kernel ended for lack of memory says so on stderr.
fn explain_exit<'a>(id: &str, st: &'a ExitStatus) -> &'a ExitStatus {
    if let Some(line) = st.oom_explanation(&id[..id.len().min(12)]) {
        eprintln!("{line}");
    }
    st
}

/// A terminal in raw mode, restored on drop.
struct RawTerminal {
    saved: Option<rustix::termios::Termios>,
}

impl RawTerminal {
    fn enable(on: bool) -> RawTerminal {
        let stdin = std::io::stdin();
        if !on || !stdin.is_terminal() {
            return RawTerminal { saved: None };
        }
        let Ok(saved) = rustix::termios::tcgetattr(&stdin) else {
            return RawTerminal { saved: None };
        };
        let mut raw = saved.clone();
        raw.make_raw();
        let _ = rustix::termios::tcsetattr(&stdin, rustix::termios::OptionalActions::Now, &raw);
        RawTerminal { saved: Some(saved) }
    }
}

impl Drop for RawTerminal {
    fn drop(&mut self) {
        if let Some(s) = &self.saved {
            let _ = rustix::termios::tcsetattr(
                std::io::stdin(),
                rustix::termios::OptionalActions::Now,
                s,
            );
        }
    }
}

fn window_size() -> Option<(u16, u16)> {
    let ws = rustix::termios::tcgetwinsize(std::io::stdout()).ok()?;
    Some((ws.ws_row, ws.ws_col))
}

/// Shows an attach connection's output, with stdin (with `stdin`), the pty size and signals
/// forwarded. Returns `true` when the user detached with the detach keys (only with a tty, as
/// Docker's).
fn attach_client(
    mut stream: AttachStream,
    container: ContainerHandle,
    stdin: bool,
    tty: bool,
    detach_keys: &DetachKeys,
    streams: Streams,
) -> Result<bool> {
    let _raw = RawTerminal::enable(tty && stdin);
    {
        let w = stream.input()?;
        let resize = move || {
            if let Some((r, c)) = window_size() {
                let _ = w.resize(r, c);
            }
        };
        if tty {
            resize();
        }
        forward_signals(container, Some(Box::new(resize)), streams.sig_proxy);
    }
    let detached = Arc::new(AtomicBool::new(false));
    if stdin {
        let mut matcher = if tty {
            detach_keys.matcher()
        } else {
            DetachMatcher::none()
        };
        let det = detached.clone();
        let w = stream.input()?;
        std::thread::spawn(move || {
            let mut input = std::io::stdin();
            let mut buf = [0u8; 4096];
            loop {
                let n = match input.read(&mut buf) {
                    Ok(0) | Err(_) => {
                        let _ = w.close_stdin();
                        return;
                    }
                    Ok(n) => n,
                };
                let (forward, detach) = matcher.feed(&buf[..n]);
                if !forward.is_empty() && w.send_stdin(&forward).is_err() {
                    return;
                }
                if detach {
                    det.store(true, Ordering::SeqCst);
                    w.detach();
                    return;
                }
            }
        });
    }
    let stdout = std::io::stdout();
    let stderr = std::io::stderr();
    while let Ok(Some((stream_no, data))) = stream.next_output() {
        if !streams.shows(stream_no) {
            continue;
        }
        if stream_no == STDERR {
            let mut e = stderr.lock();
            let _ = e.write_all(&data);
            let _ = e.flush();
        } else {
            let mut o = stdout.lock();
            let _ = o.write_all(&data);
            let _ = o.flush();
        }
    }
    Ok(detached.load(Ordering::SeqCst))
}

pub fn run(engine: &mut Engine, a: RunArgs) -> Result<()> {
    let opts = create_options(&a)?;
    let (attach_stdin, stdout, stderr) = attach_streams_of(&a)?;
    let streams = Streams {
        stdout,
        stderr,
        sig_proxy: a.host.sig_proxy,
    };
    let mut cidfile = CidFile::create(&a.host.cidfile)?;
    let mut cid_written: Result<()> = Ok(());
    let mut note_id = create_events(&mut cidfile, &mut cid_written);
    let detach_keys = parse_detach_keys(a.detach_keys.as_deref())?;
    // Without a log to follow whole (`--log-driver none`, or one that rotates) the output
    // comes through the attach socket, as it does for -i.
    let no_log = opts.host.output_not_in_log();
    if (a.interactive || no_log) && !a.detach {
        // Attached before the process runs: nothing it prints early is lost.
        let (id, client) = engine
            .run_container_attached(&opts, &mut note_id)
            .map_err(engine_error)?;
        drop(note_id);
        cid_written?;
        let container = engine.container_handle(&id)?;
        let stdin = a.interactive && attach_stdin;
        if attach_client(client, container, stdin, a.tty, &detach_keys, streams)? {
            return Ok(());
        }
        let code = explain_exit(&id, &engine.wait_and_finish(&id).map_err(engine_error)?).exit_code;
        if code != 0 {
            return Err(exit_status(code.clamp(0, 255) as u8));
        }
        return Ok(());
    }
    let id = engine
        .run_container(&opts, &mut note_id)
        .map_err(engine_error)?;
    drop(note_id);
    cid_written?;
    if a.detach {
        println!("{id}");
        return Ok(());
    }
    let code = follow_until_exit(engine, &id, streams)?;
    if code != 0 {
        return Err(exit_status(code.clamp(0, 255) as u8));
    }
    Ok(())
}

pub fn start(engine: &mut Engine, a: StartArgs) -> Result<()> {
    let attach = a.attach || a.interactive;
    if attach && a.containers.len() > 1 {
        return Err(status(
            1,
            "you cannot start and attach multiple containers at once",
        ));
    }
    let mut failed = false;
    for name in &a.containers {
        // Docker attaches first, then starts: the output of a process that exits at once is
        // not lost, and that of an earlier run is not replayed.
        let started = if attach {
            engine
                .start_container_attached(name)
                .map(|(id, c)| (id, Some(c)))
        } else {
            engine.start_container(name).map(|id| (id, None))
        };
        match started {
            Ok((id, Some(client))) => {
                let spec = engine.container_spec(&id)?;
                let container = engine.container_handle(&id)?;
                let keys = parse_detach_keys(a.detach_keys.as_deref())?;
                if attach_client(
                    client,
                    container,
                    a.interactive,
                    spec.run.tty,
                    &keys,
                    Streams::ALL,
                )? {
                    return Ok(());
                }
                let code = explain_exit(&id, &engine.wait_and_finish(&id).map_err(engine_error)?)
                    .exit_code;
                if code != 0 {
                    return Err(exit_status(code.clamp(0, 255) as u8));
                }
                return Ok(());
            }
            Ok((_, None)) => println!("{name}"),
            Err(e) => {
                let code = crate::exit_code(&e, crate::Verb::Start);
                eprintln!("Error response from daemon: {e}");
                failed = true;
                if a.containers.len() == 1 {
                    return Err(exit_status(code));
                }
            }
        }
    }
    if failed {
        eprintln!(
            "Error: failed to start containers: {}",
            a.containers.join(", ")
        );
        return Err(exit_status(1));
    }
    Ok(())
}

/// Runs `f` for each container, printing the name as given, or Docker's error line.
fn each(
    engine: &mut Engine,
    names: &[String],
    mut f: impl FnMut(&mut Engine, &str) -> Result<(), EngineError>,
) -> Result<()> {
    let mut failed = false;
    for n in names {
        match f(engine, n) {
            Ok(()) => println!("{n}"),
            Err(e) => {
                eprintln!("Error response from daemon: {e}");
                failed = true;
            }
        }
    }
    if failed {
        return Err(exit_status(1));
    }
    Ok(())
}

pub fn stop(engine: &mut Engine, a: StopArgs) -> Result<()> {
    each(engine, &a.containers, |e, n| {
        e.stop_container(n, a.time, a.signal.as_deref()).map(|_| ())
    })
}

pub fn restart(engine: &mut Engine, a: StopArgs) -> Result<()> {
    each(engine, &a.containers, |e, n| {
        let id = e.stop_container(n, a.time, a.signal.as_deref())?;
        e.start_container(&id).map(|_| ())
    })
}

pub fn kill(engine: &mut Engine, a: KillArgs) -> Result<()> {
    each(engine, &a.containers, |e, n| {
        e.kill_container(n, &a.signal).map(|_| ())
    })
}

/// `rm NAME…`: one engine call for all of them (batched and torn down in parallel); each name
/// printed as removed or its error, exit 1 if any failed, as the docker CLI.
pub fn rm(engine: &mut Engine, a: RmArgs) -> Result<()> {
    let results = engine
        .remove_containers(&a.containers, a.force, a.volumes)
        .map_err(|e| status(1, format!("Error response from daemon: {e}")))?;
    let mut failed = false;
    for (n, r) in a.containers.iter().zip(results) {
        match r {
            Ok(_) => println!("{n}"),
            Err(e) => {
                eprintln!("Error response from daemon: {e}");
                failed = true;
            }
        }
    }
    if failed {
        return Err(exit_status(1));
    }
    Ok(())
}

pub fn wait(engine: &mut Engine, a: ContainersArgs) -> Result<()> {
    let mut failed = false;
    for n in &a.containers {
        match engine.wait_container(n) {
            Ok(code) => println!("{code}"),
            Err(e) => {
                eprintln!("Error response from daemon: {e}");
                failed = true;
            }
        }
    }
    if failed {
        return Err(exit_status(1));
    }
    Ok(())
}

pub fn rename(engine: &mut Engine, a: RenameArgs) -> Result<()> {
    engine
        .rename_container(&a.container, &a.new_name)
        .map_err(|e| status(1, format!("Error response from daemon: {e}")))
}

pub fn pause(engine: &mut Engine, a: ContainersArgs) -> Result<()> {
    each(engine, &a.containers, |e, n| e.pause_container(n))
}

/// `update`: the docker CLI's flag parsing; the engine applies Docker's rules.
pub fn update(engine: &mut Engine, a: UpdateArgs) -> Result<()> {
    let int = int_flag;
    let size = |v: &Option<String>, flag: &str| -> Result<Option<i64>> {
        v.as_ref()
            .map(|s| {
                if s == "-1" {
                    return Ok(-1);
                }
                parse_ram(s).ok_or_else(|| flag_error(s, flag, &format!("invalid size: '{s}'")))
            })
            .transpose()
    };
    let cpus = a
        .cpus
        .as_ref()
        .map(|c| {
            c.parse::<f64>().map_err(|_| {
                flag_error(
                    c,
                    "--cpus",
                    &format!("failed to parse {c} as a rational number"),
                )
            })
        })
        .transpose()?;
    let memory = size(&a.memory, "-m, --memory")?;
    if memory == Some(-1) {
        return Err(flag_error("-1", "-m, --memory", "invalid size: '-1'"));
    }
    let o = berth_engine::containers::UpdateOptions {
        memory,
        memory_swap: size(&a.memory_swap, "--memory-swap")?,
        memory_reservation: size(&a.memory_reservation, "--memory-reservation")?,
        cpus,
        cpu_shares: int(&a.cpu_shares, "-c, --cpu-shares")?,
        cpu_period: int(&a.cpu_period, "--cpu-period")?,
        cpu_quota: int(&a.cpu_quota, "--cpu-quota")?,
        cpuset_cpus: a.cpuset_cpus.clone(),
        cpuset_mems: a.cpuset_mems.clone(),
        pids_limit: int(&a.pids_limit, "--pids-limit")?,
        restart: a.restart.clone(),
    };
    let given = [
        o.memory.is_some(),
        o.memory_swap.is_some(),
        o.memory_reservation.is_some(),
        o.cpus.is_some(),
        o.cpu_shares.is_some(),
        o.cpu_period.is_some(),
        o.cpu_quota.is_some(),
        o.cpuset_cpus.is_some(),
        o.cpuset_mems.is_some(),
        o.pids_limit.is_some(),
        o.restart.is_some(),
    ];
    if !given.contains(&true) {
        return Err(status(
            1,
            "you must provide one or more flags when using this command",
        ));
    }
    each(engine, &a.containers, |e, n| {
        e.update_container(n, &o).map(|_| ())
    })
}

pub fn unpause(engine: &mut Engine, a: ContainersArgs) -> Result<()> {
    each(engine, &a.containers, |e, n| e.unpause_container(n))
}

pub fn top(engine: &mut Engine, a: TopArgs) -> Result<()> {
    let t = engine
        .container_top(&a.container, &a.ps_options)
        .map_err(|e| status(1, format!("Error response from daemon: {e}")))?;
    let mut rows = vec![t.titles.join("\t")];
    rows.extend(t.processes.iter().map(|p| p.join("\t")));
    println!("{}", crate::output::tabwrite(&rows.join("\n")));
    Ok(())
}

pub fn port(engine: &mut Engine, a: PortArgs) -> Result<()> {
    let ports = engine
        .container_ports(&a.container)
        .map_err(|e| status(1, format!("Error response from daemon: {e}")))?;
    let mut out = String::new();
    match &a.private_port {
        Some(p) => {
            let key = if p.contains('/') {
                p.clone()
            } else {
                format!("{p}/tcp")
            };
            for b in ports.iter().filter(|b| b.key() == key) {
                out.push_str(&b.host_addr());
                out.push('\n');
            }
            if out.is_empty() {
                return Err(status(
                    1,
                    format!(
                        "Error: No public port '{key}' published for {}",
                        a.container
                    ),
                ));
            }
        }
        None => {
            for b in &ports {
                out.push_str(&format!("{} -> {}\n", b.key(), b.host_addr()));
            }
        }
    }
    print!("{out}");
    Ok(())
}

pub fn logs(engine: &mut Engine, a: LogsArgs) -> Result<()> {
    let tail = match a.tail.as_str() {
        "all" | "" => None,
        t => match t.parse::<i64>() {
            Ok(n) if n < 0 => None,
            Ok(n) => Some(n as usize),
            Err(_) => return Err(status(1, format!("invalid value for \"tail\": {t}"))),
        },
    };
    let since = a.since.as_deref().map(parse_time_arg).transpose()?;
    let until = a.until.as_deref().map(parse_time_arg).transpose()?;
    let opts = LogOptions {
        follow: a.follow,
        tail,
        since,
        until,
    };
    engine
        .container_logs(&a.container, &opts, &|| false, &mut |e| {
            print_entry(e, a.timestamps)
        })
        .map_err(|e| status(1, format!("Error response from daemon: {e}")))
}

pub fn exec(engine: &mut Engine, a: ExecArgs) -> Result<()> {
    let mut env = read_env_files(&a.env_file)?;
    env.extend(a.env.iter().cloned());
    let opts = ExecOptions {
        args: a.command.clone(),
        env: resolve_env(env),
        workdir: a.workdir.clone(),
        user: a.user.clone(),
        tty: a.tty,
        privileged: a.privileged,
    };
    let mut cmd = match engine.exec_command(&a.container, &opts) {
        Ok(c) => c,
        Err(e @ EngineError::Runtime(_)) => {
            return Err(status(
                crate::exit_code(&e, crate::Verb::Exec),
                format!(
                    "OCI runtime exec failed: exec failed: unable to start container process: {e}"
                ),
            ));
        }
        Err(e) => {
            return Err(status(
                crate::exit_code(&e, crate::Verb::Exec),
                format!("Error response from daemon: {e}"),
            ))
        }
    };
    // dockerd's exec events: the CLI creates and starts in one go.
    let exec_id = berth_engine::events::new_exec_id();
    let container_id = engine.resolve_container(&a.container).map(|r| r.id).ok();
    if let Some(cid) = &container_id {
        use berth_engine::events::ExecEvent;
        engine.record_exec_event(cid, &exec_id, ExecEvent::Create(&opts.args));
        engine.record_exec_event(cid, &exec_id, ExecEvent::Start(&opts.args));
    }
    if a.detach {
        use std::os::unix::process::CommandExt;
        cmd.stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        // SAFETY: setsid is async-signal-safe; the child calls nothing else before exec.
        unsafe {
            cmd.pre_exec(|| {
                libc::setsid();
                Ok(())
            });
        }
        cmd.spawn()?;
        return Ok(());
    }
    if !a.interactive {
        cmd.stdin(std::process::Stdio::null());
    }
    let _raw = RawTerminal::enable(a.tty && a.interactive);
    let st = cmd.status()?;
    drop(_raw);
    let code = match st.code() {
        Some(c) => c,
        None => {
            use std::os::unix::process::ExitStatusExt;
            128 + st.signal().unwrap_or(0)
        }
    };
    if let Some(cid) = &container_id {
        engine.record_exec_event(cid, &exec_id, berth_engine::events::ExecEvent::Die(code));
    }
    if code != 0 {
        return Err(exit_status(code.clamp(0, 255) as u8));
    }
    Ok(())
}

pub fn attach(engine: &mut Engine, a: AttachArgs) -> Result<()> {
    let spec = engine.container_spec(&a.container)?;
    let keys = parse_detach_keys(a.detach_keys.as_deref())?;
    let (container, stream) = engine
        .attach_container(&a.container)
        .map_err(|e| status(1, e.to_string()))?;
    let id = container.id().to_string();
    let stdin = !a.no_stdin && spec.run.stdin_open;
    if attach_client(stream, container, stdin, spec.run.tty, &keys, Streams::ALL)? {
        return Ok(());
    }
    let code = engine.wait_container(&id).unwrap_or(0);
    if code != 0 {
        return Err(exit_status(code.clamp(0, 255) as u8));
    }
    Ok(())
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(n - 1).collect();
        t.push('…');
        t
    }
}

fn ps_header(field: &str) -> String {
    match field {
        "ID" => "CONTAINER ID".into(),
        "RunningFor" => "CREATED".into(),
        "Names" => "NAMES".into(),
        "Pod" => "POD ID".into(),
        "PodName" => "PODNAME".into(),
        other => default_header(other),
    }
}

/// Whether a `ps` format needs a field: one it names (`.Status`), or all of them for `json`
/// and templates that look at the whole row (`{{json .}}`). Computing only the named fields
/// keeps `ps -a` fast with thousands of containers (`CreatedAt` alone is a date formatting).
fn ps_fields(format: &str) -> impl Fn(&str) -> bool + '_ {
    let b = format.as_bytes();
    let whole_row = format == "json"
        || b.iter()
            .enumerate()
            .any(|(i, &c)| c == b'.' && !b.get(i + 1).is_some_and(|n| n.is_ascii_alphabetic()));
    move |field: &str| {
        whole_row
            || format.match_indices(field).any(|(i, _)| {
                i > 0
                    && b[i - 1] == b'.'
                    && !b
                        .get(i + field.len())
                        .is_some_and(|n| n.is_ascii_alphanumeric())
            })
    }
}

/// The fields of a `ps` row, in the order of `{{json .}}`.
const PS_FIELDS: [&str; 14] = [
    "Command",
    "CreatedAt",
    "ID",
    "Image",
    "Labels",
    "LocalVolumes",
    "Mounts",
    "Names",
    "Networks",
    "Ports",
    "RunningFor",
    "Size",
    "State",
    "Status",
];

/// One cell of `ps`: the value of `field` for a container.
fn ps_cell(c: &ContainerSummary, field: &str, no_trunc: bool) -> String {
    match field {
        "Command" if no_trunc => format!("{:?}", c.command),
        "Command" => format!("{:?}", truncate(&c.command, 20)),
        "CreatedAt" => go_time(c.created),
        "ID" if no_trunc => c.id.clone(),
        "ID" => c.id.get(..12).unwrap_or(&c.id).to_string(),
        "Image" if c.image.starts_with("sha256:") && !no_trunc => {
            berth_engine::images::short_id(&c.image)
        }
        "Image" => c.image.clone(),
        "Labels" => {
            let labels: Vec<String> = c.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
            labels.join(",")
        }
        "LocalVolumes" => c
            .mounts
            .iter()
            .filter(|m| !m.starts_with('/'))
            .count()
            .to_string(),
        "Mounts" => c.mounts.join(","),
        "Names" => c
            .names
            .iter()
            .map(|n| n.trim_start_matches('/'))
            .collect::<Vec<_>>()
            .join(","),
        "Networks" => c.network_mode.clone(),
        "Pod" => match &c.pod {
            Some((id, _)) if no_trunc => id.clone(),
            Some((id, _)) => id.get(..12).unwrap_or(id).to_string(),
            None => String::new(),
        },
        "PodName" => c.pod.as_ref().map(|(_, n)| n.clone()).unwrap_or_default(),
        "Ports" => super::network::ps_ports(&c.ports),
        "RunningFor" => since(c.created),
        "Size" => match (c.size_rw, c.size_root_fs) {
            (Some(rw), Some(root)) => format!(
                "{} (virtual {})",
                human_size(rw as f64),
                human_size(root as f64)
            ),
            _ => String::new(),
        },
        "State" => c.state.clone(),
        "Status" => c.status.clone(),
        _ => String::new(),
    }
}

/// A `ps` row: the fields Docker has, and with `pods` podman's `.Pod` and `.PodName`.
fn ps_row(
    c: &ContainerSummary,
    no_trunc: bool,
    wanted: &dyn Fn(&str) -> bool,
    pods: bool,
) -> Value {
    let mut row = serde_json::Map::new();
    for f in PS_FIELDS {
        if wanted(f) {
            row.insert(f.to_string(), Value::String(ps_cell(c, f, no_trunc)));
        }
    }
    if pods {
        for f in ["Pod", "PodName"] {
            row.insert(f.to_string(), Value::String(ps_cell(c, f, no_trunc)));
        }
    }
    Value::Object(row)
}

pub fn ps(engine: &mut Engine, a: PsArgs) -> Result<()> {
    let opts = ListOptions {
        all: a.all,
        limit: a.last.filter(|n| *n > 0).map(|n| n as usize),
        latest: a.latest,
        size: a.size,
        filters: a.filter.clone(),
    };
    let list = engine
        .list_containers(&opts)
        .map_err(|e| status(1, format!("Error response from daemon: {e}")))?;
    if a.quiet && a.format.is_none() {
        let mut out = String::with_capacity(list.len() * 13);
        for c in &list {
            if a.no_trunc {
                out.push_str(&c.id);
            } else {
                out.push_str(&c.id[..12.min(c.id.len())]);
            }
            out.push('\n');
        }
        print!("{out}");
        return Ok(());
    }
    if matches!(a.format.as_deref(), None | Some("table")) {
        // The default table, without the template engine: the same cells, in the same order.
        let mut fields = vec![
            "ID",
            "Image",
            "Command",
            "RunningFor",
            "Status",
            "Ports",
            "Names",
        ];
        if a.size {
            fields.push("Size");
        }
        if a.pod {
            fields.extend(["Pod", "PodName"]);
        }
        let mut text = fields
            .iter()
            .map(|f| ps_header(f))
            .collect::<Vec<_>>()
            .join("\t");
        text.push('\n');
        for c in &list {
            for (i, f) in fields.iter().enumerate() {
                if i > 0 {
                    text.push('\t');
                }
                text.push_str(&ps_cell(c, f, a.no_trunc));
            }
            text.push('\n');
        }
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(crate::output::tabwrite(&text).as_bytes());
        return Ok(());
    }
    let format = match a.format.as_deref() {
        Some("table") | None => {
            let mut f = "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}".to_string();
            if a.size {
                f.push_str("\t{{.Size}}");
            }
            if a.pod {
                f.push_str("\t{{.Pod}}\t{{.PodName}}");
            }
            f
        }
        Some(f) => f.to_string(),
    };
    let wanted = ps_fields(&format);
    // podman's fields, only where asked for: `{{json .}}` stays Docker's row.
    let pods = a.pod || format.contains(".Pod");
    let rows: Vec<Value> = list
        .iter()
        .map(|c| ps_row(c, a.no_trunc, &wanted, pods))
        .collect();
    let text =
        crate::output::render_rows_with_methods(&format, &rows, &ps_header, &|i, m, args| {
            crate::output::label_method(&list[i].labels)(m, args)
        })?;
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    Ok(())
}

pub fn inspect(engine: &mut Engine, a: ContainerInspectArgs) -> Result<()> {
    crate::output::inspect_each(&a.names, a.format.as_deref(), "Error", |n| {
        engine.inspect_container(n, a.size)
    })
}

pub fn volume_create(engine: &mut Engine, a: VolumeCreateArgs) -> Result<()> {
    if a.driver != "local" {
        return Err(status(
            1,
            format!(
                "Error response from daemon: plugin \"{}\" not found",
                a.driver
            ),
        ));
    }
    // No name: the engine makes one (Docker's 64 hex digits).
    let name = a.name.clone().unwrap_or_default();
    let labels = a
        .label
        .iter()
        .map(|l| {
            let (k, v) = l.split_once('=').unwrap_or((l.as_str(), ""));
            (k.to_string(), v.to_string())
        })
        .collect();
    let v = engine
        .create_volume(&name, &labels)
        .map_err(|e| status(1, format!("Error response from daemon: {e}")))?;
    println!("{}", v.name);
    Ok(())
}

pub fn volume_ls(engine: &mut Engine, a: VolumeLsArgs) -> Result<()> {
    let vols = engine
        .list_volumes_filtered(&a.filter)
        .map_err(|e| status(1, format!("Error response from daemon: {e}")))?;
    let rows: Vec<Value> = vols
        .iter()
        .map(|v| {
            let labels: Vec<String> = v.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
            json!({"Driver": v.driver, "Name": v.name, "Mountpoint": v.mountpoint, "Scope": v.scope, "Labels": labels.join(",")})
        })
        .collect();
    let format = if a.quiet {
        "{{.Name}}".to_string()
    } else {
        a.format
            .clone()
            .filter(|f| f != "table")
            .unwrap_or_else(|| "table {{.Driver}}\t{{.Name}}".into())
    };
    let header = |f: &str| match f {
        "Name" => "VOLUME NAME".to_string(),
        other => default_header(other),
    };
    let text = crate::output::render_rows_with_methods(&format, &rows, &header, &|i, m, args| {
        crate::output::label_method(&vols[i].labels)(m, args)
    })?;
    print!("{text}");
    Ok(())
}

pub fn volume_inspect(engine: &mut Engine, a: VolumeInspectArgs) -> Result<()> {
    crate::output::inspect_each(
        &a.names,
        a.format.as_deref(),
        "Error response from daemon",
        |n| engine.inspect_volume(n),
    )
}

pub fn volume_rm(engine: &mut Engine, a: VolumeRmArgs) -> Result<()> {
    each(engine, &a.names, |e, n| e.remove_volume(n, a.force))
}

pub fn volume_prune(engine: &mut Engine, a: VolumePruneArgs) -> Result<()> {
    if !a.force
        && !super::confirm(
            "WARNING! This will remove anonymous local volumes not used by at least one container.\nAre you sure you want to continue?",
        )
    {
        return Ok(());
    }
    let r = engine.prune_volumes(a.all)?;
    if !r.volumes_deleted.is_empty() {
        println!("Deleted Volumes:");
        for v in &r.volumes_deleted {
            println!("{v}");
        }
        println!();
    }
    println!(
        "Total reclaimed space: {}",
        human_size(r.space_reclaimed as f64)
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ram_sizes() {
        assert_eq!(parse_ram("12"), Some(12));
        assert_eq!(parse_ram("64m"), Some(64 << 20));
        assert_eq!(parse_ram("1g"), Some(1 << 30));
        assert_eq!(parse_ram("512MB"), Some(512 << 20));
        assert_eq!(parse_ram("12q"), None);
        assert_eq!(parse_ram("-1"), None);
    }
}
