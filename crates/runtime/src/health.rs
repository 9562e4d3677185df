//! Health checks: what the container's monitor runs and what it records.
//!
//! The engine writes the probe ([`HealthProbe`], already resolved: the argv to exec, the
//! durations with Docker's defaults applied) to `healthcheck.json` at create. The monitor
//! (see `monitor.rs`) runs it through the same exec path as `berth exec`, every `interval`
//! after the previous probe ended, kills it after `timeout`, and writes [`Health`] (Docker's
//! `State.Health`) to `health.json` after each result. Docker's rules: the status is
//! `starting` until the first success or until `retries` consecutive failures after the start
//! period (failures inside the start period do not count while still `starting`); output is
//! cut at 4096 bytes; the last 5 results are kept; a new start resets the status to
//! `starting` and the streak to 0 but keeps the log.

use crate::util;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Docker's defaults (`daemon/health.go`).
pub const DEFAULT_INTERVAL_NS: u64 = 30_000_000_000;
pub const DEFAULT_TIMEOUT_NS: u64 = 30_000_000_000;
pub const DEFAULT_RETRIES: u32 = 3;
/// Output kept per result, in bytes (Docker's `maxOutputLen`).
pub const MAX_OUTPUT: usize = 4096;
/// Results kept (Docker's `maxLogEntries`).
pub const MAX_LOG_ENTRIES: usize = 5;

pub const STARTING: &str = "starting";
pub const HEALTHY: &str = "healthy";
pub const UNHEALTHY: &str = "unhealthy";

/// A resolved health probe.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthProbe {
    /// The command to exec in the container (`CMD-SHELL` already wrapped in the shell).
    pub args: Vec<String>,
    pub interval_ns: u64,
    pub timeout_ns: u64,
    pub start_period_ns: u64,
    /// Interval between probes during the start period while still `starting`; 0: `interval`.
    #[serde(default)]
    pub start_interval_ns: u64,
    pub retries: u32,
}

/// Docker's `State.Health`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Health {
    pub status: String,
    pub failing_streak: u32,
    pub log: Vec<HealthResult>,
}

/// One probe's result (Docker's `HealthcheckResult`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HealthResult {
    pub start: String,
    pub end: String,
    pub exit_code: i32,
    pub output: String,
}

/// `<container dir>/healthcheck.json`: the probe, when the container has one.
pub fn probe_path(dir: &Path) -> PathBuf {
    dir.join("healthcheck.json")
}

/// `<container dir>/health.json`: the last recorded [`Health`].
pub fn state_path(dir: &Path) -> PathBuf {
    dir.join("health.json")
}

/// Records the container's probe (`None`: no health check; the file is removed).
pub fn write_probe(dir: &Path, probe: Option<&HealthProbe>) -> std::io::Result<()> {
    match probe {
        Some(p) => util::write_atomic_deferred(&probe_path(dir), &serde_json::to_vec(p)?),
        None => match std::fs::remove_file(probe_path(dir)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        },
    }
}

pub fn read_probe(dir: &Path) -> Option<HealthProbe> {
    serde_json::from_slice(&std::fs::read(probe_path(dir)).ok()?).ok()
}

/// The health the monitor last recorded; `None` for a container without a health check or
/// never started.
pub fn read_state(dir: &Path) -> Option<Health> {
    serde_json::from_slice(&std::fs::read(state_path(dir)).ok()?).ok()
}

pub(crate) fn write_state(dir: &Path, h: &Health) {
    if let Ok(b) = serde_json::to_vec(h) {
        let _ = util::write_atomic_nosync(&state_path(dir), &b);
    }
}

impl Health {
    /// Applies one result with Docker's rules (`handleProbeResult`); `in_start_period`: the
    /// probe started before the start period ended.
    pub fn record(&mut self, result: HealthResult, retries: u32, in_start_period: bool) {
        let retries = if retries == 0 {
            DEFAULT_RETRIES
        } else {
            retries
        };
        let ok = result.exit_code == 0;
        if self.log.len() >= MAX_LOG_ENTRIES {
            self.log.drain(..self.log.len() + 1 - MAX_LOG_ENTRIES);
        }
        self.log.push(result);
        if ok {
            self.failing_streak = 0;
            self.status = HEALTHY.into();
        } else if !(self.status == STARTING && in_start_period) {
            self.failing_streak += 1;
            if self.failing_streak >= retries {
                self.status = UNHEALTHY.into();
            }
        }
    }
}

/// Go's `time.Duration.String()` for the timeout message: `30s`, `200ms`, `1m30s`, `1.5s`.
pub fn go_duration(ns: u64) -> String {
    if ns == 0 {
        return "0s".into();
    }
    let frac = |v: u64, unit: u64, suffix: &str| {
        let whole = v / unit;
        let rest = v % unit;
        if rest == 0 {
            format!("{whole}{suffix}")
        } else {
            let digits = unit.to_string().len() - 1;
            let f = format!("{rest:0digits$}");
            format!("{whole}.{}{suffix}", f.trim_end_matches('0'))
        }
    };
    if ns < 1_000 {
        return format!("{ns}ns");
    }
    if ns < 1_000_000 {
        return frac(ns, 1_000, "µs");
    }
    if ns < 1_000_000_000 {
        return frac(ns, 1_000_000, "ms");
    }
    let h = ns / 3_600_000_000_000;
    let m = (ns / 60_000_000_000) % 60;
    let s = frac(ns % 60_000_000_000, 1_000_000_000, "s");
    match (h, m) {
        (0, 0) => s,
        (0, m) => format!("{m}m{s}"),
        (h, m) => format!("{h}h{m}m{s}"),
    }
}

/// The monitor's side: runs the probe on schedule and records the results. Single-threaded:
/// the monitor's poll loop asks [`Prober::wakeup`] for its timeout, polls [`Prober::fd`]
/// and hands every reaped child to [`Prober::reaped`].
pub(crate) struct Prober {
    dir: PathBuf,
    probe: HealthProbe,
    state: Health,
    cgroup: String,
    monitor: PathBuf,
    started: std::time::Instant,
    next: std::time::Instant,
    running: Option<Running>,
}

struct Running {
    pid: i32,
    out: Option<std::os::fd::OwnedFd>,
    output: Vec<u8>,
    truncated: bool,
    start: String,
    started: std::time::Instant,
    deadline: std::time::Instant,
}

/// Records `starting` for a container with a health check (keeping the log of earlier runs, as
/// Docker does), before the container is reported started.
pub(crate) fn record_starting(dir: &Path) {
    if read_probe(dir).is_some_and(|p| !p.args.is_empty()) {
        let mut state = read_state(dir).unwrap_or_default();
        state.status = STARTING.into();
        state.failing_streak = 0;
        write_state(dir, &state);
    }
}

impl Prober {
    /// The container's prober, when it has a health check, once [`record_starting`] ran;
    /// `monitor`: the monitor binary, whose `exec` mode runs the probe.
    pub(crate) fn resume(dir: &Path, cgroup: &str, monitor: &Path) -> Option<Prober> {
        let probe = read_probe(dir).filter(|p| !p.args.is_empty())?;
        let state = read_state(dir).unwrap_or_default();
        let now = std::time::Instant::now();
        let mut p = Prober {
            dir: dir.to_path_buf(),
            probe,
            state,
            cgroup: cgroup.to_string(),
            monitor: monitor.to_path_buf(),
            started: now,
            next: now,
            running: None,
        };
        p.next = now + p.interval();
        Some(p)
    }

    fn interval(&self) -> std::time::Duration {
        let ns = |v: u64, default: u64| {
            std::time::Duration::from_nanos(if v == 0 { default } else { v })
        };
        let interval = ns(self.probe.interval_ns, DEFAULT_INTERVAL_NS);
        if self.probe.start_interval_ns > 0
            && self.state.status == STARTING
            && self.started.elapsed() < ns(self.probe.start_period_ns, 0)
        {
            return ns(self.probe.start_interval_ns, 0);
        }
        interval
    }

    /// When the loop must call [`Prober::tick`] next.
    pub(crate) fn wakeup(&self) -> std::time::Instant {
        match &self.running {
            Some(r) => r.deadline,
            None => self.next,
        }
    }

    /// The running probe's output pipe, while open.
    pub(crate) fn fd(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        use std::os::fd::AsFd;
        self.running.as_ref()?.out.as_ref().map(|f| f.as_fd())
    }

    /// Reads what the probe wrote: the first [`MAX_OUTPUT`] bytes are kept, the rest read
    /// and dropped (so the probe never blocks on a full pipe).
    pub(crate) fn readable(&mut self) {
        use std::os::fd::AsRawFd;
        let Some(r) = self.running.as_mut() else {
            return;
        };
        let Some(fd) = r.out.as_ref().map(|f| f.as_raw_fd()) else {
            return;
        };
        let mut buf = [0u8; 8192];
        loop {
            match nix::unistd::read(fd, &mut buf) {
                Ok(0) => {
                    r.out = None;
                    return;
                }
                Ok(n) => {
                    let room = MAX_OUTPUT - r.output.len();
                    if n > room {
                        r.truncated = true;
                    }
                    r.output.extend_from_slice(&buf[..n.min(room)]);
                }
                Err(nix::errno::Errno::EINTR) => {}
                Err(nix::errno::Errno::EAGAIN) => return,
                Err(_) => {
                    r.out = None;
                    return;
                }
            }
        }
    }

    /// Starts a probe when one is due, or ends one that ran past its timeout.
    pub(crate) fn tick(&mut self) {
        let now = std::time::Instant::now();
        if let Some(r) = &self.running {
            if now >= r.deadline {
                let pid = r.pid;
                kill_tree(pid);
                let timeout = if self.probe.timeout_ns == 0 {
                    DEFAULT_TIMEOUT_NS
                } else {
                    self.probe.timeout_ns
                };
                self.finish(
                    -1,
                    Some(format!(
                        "Health check exceeded timeout ({})",
                        go_duration(timeout)
                    )),
                );
            }
            return;
        }
        if now < self.next {
            return;
        }
        let start = util::now_rfc3339();
        if crate::cgroup::CgroupMode::detect().is_frozen(&self.cgroup) {
            let id = self
                .dir
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .to_string();
            self.result(
                start,
                now,
                -1,
                format!("Container {id} is paused, unpause the container before exec"),
            );
            return;
        }
        match self.spawn() {
            Ok((pid, out)) => {
                let timeout = if self.probe.timeout_ns == 0 {
                    DEFAULT_TIMEOUT_NS
                } else {
                    self.probe.timeout_ns
                };
                self.running = Some(Running {
                    pid,
                    out: Some(out),
                    output: Vec::new(),
                    truncated: false,
                    start,
                    started: now,
                    deadline: now + std::time::Duration::from_nanos(timeout),
                });
            }
            Err(e) => self.result(start, now, -1, e.to_string()),
        }
    }

    /// The probe through `berth exec`'s path, its stdout and stderr into one pipe.
    fn spawn(&self) -> crate::Result<(i32, std::os::fd::OwnedFd)> {
        use std::os::unix::process::CommandExt;
        let opts = crate::ExecOptions {
            args: self.probe.args.clone(),
            ..Default::default()
        };
        // The monitor binary may be `berth` itself, which dispatches on this name.
        let mut cmd = crate::exec(&self.dir, &opts, Some(&self.monitor))?;
        if cmd.get_program() == self.monitor.as_os_str() {
            cmd.arg0("berth-monitor");
        }
        let (r, w) =
            nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC | nix::fcntl::OFlag::O_NONBLOCK)?;
        // The write end must block for the probe: only our end is non-blocking.
        nix::fcntl::fcntl(
            std::os::fd::AsRawFd::as_raw_fd(&w),
            nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::empty()),
        )?;
        let w2 = w.try_clone()?;
        cmd.stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::from(w))
            .stderr(std::process::Stdio::from(w2));
        let child = cmd.spawn()?;
        // Reaped by the monitor's loop (`reaped`), never through `Child`.
        Ok((child.id() as i32, r))
    }

    /// A child the monitor reaped: the probe's end, when it is ours.
    pub(crate) fn reaped(&mut self, pid: i32, code: i32) {
        if self.running.as_ref().map(|r| r.pid) == Some(pid) {
            self.readable();
            self.finish(code, None);
        }
    }

    fn finish(&mut self, code: i32, message: Option<String>) {
        let Some(r) = self.running.take() else {
            return;
        };
        let output = match message {
            Some(m) => m,
            None => {
                let mut o = String::from_utf8_lossy(&r.output).into_owned();
                if r.truncated {
                    o.push_str("...");
                }
                o
            }
        };
        self.result(r.start, r.started, code, output);
    }

    fn result(&mut self, start: String, started: std::time::Instant, code: i32, output: String) {
        let period = std::time::Duration::from_nanos(self.probe.start_period_ns);
        let in_start_period = started.duration_since(self.started) < period;
        self.state.record(
            HealthResult {
                start,
                end: util::now_rfc3339(),
                exit_code: code,
                output,
            },
            self.probe.retries,
            in_start_period,
        );
        write_state(&self.dir, &self.state);
        self.next = std::time::Instant::now() + self.interval();
    }

    /// The container ended: a probe still running is killed, its result never recorded.
    pub(crate) fn abort(&mut self) {
        if let Some(r) = self.running.take() {
            kill_tree(r.pid);
        }
    }
}

/// SIGKILLs `pid` and every process below it (the exec helper and the probe it started in
/// the container, which is the helper's child: the helper is a subreaper).
fn kill_tree(pid: i32) {
    let mut parent_of: Vec<(i32, i32)> = Vec::new();
    if let Ok(rd) = std::fs::read_dir("/proc") {
        for e in rd.flatten() {
            let Some(p) = e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{p}/stat")) else {
                continue;
            };
            let Some(close) = stat.rfind(')') else {
                continue;
            };
            if let Some(pp) = stat[close + 2..]
                .split(' ')
                .nth(1)
                .and_then(|v| v.parse::<i32>().ok())
            {
                parent_of.push((p, pp));
            }
        }
    }
    let mut tree = vec![pid];
    let mut i = 0;
    while i < tree.len() {
        let p = tree[i];
        tree.extend(parent_of.iter().filter(|(_, pp)| *pp == p).map(|(c, _)| *c));
        i += 1;
    }
    // Deepest first, the helper last: its children are never re-parented to a live helper.
    for p in tree.into_iter().rev() {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(p),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(code: i32) -> HealthResult {
        HealthResult {
            exit_code: code,
            ..Default::default()
        }
    }

    #[test]
    fn docker_rules() {
        let mut h = Health {
            status: STARTING.into(),
            ..Default::default()
        };
        // Failures in the start period do not count while starting.
        h.record(res(1), 2, true);
        assert_eq!((h.status.as_str(), h.failing_streak), (STARTING, 0));
        h.record(res(1), 2, false);
        assert_eq!((h.status.as_str(), h.failing_streak), (STARTING, 1));
        h.record(res(0), 2, false);
        assert_eq!((h.status.as_str(), h.failing_streak), (HEALTHY, 0));
        // Once healthy, a failure in the start period counts.
        h.record(res(1), 2, true);
        assert_eq!((h.status.as_str(), h.failing_streak), (HEALTHY, 1));
        h.record(res(-1), 2, false);
        assert_eq!((h.status.as_str(), h.failing_streak), (UNHEALTHY, 2));
        for _ in 0..4 {
            h.record(res(2), 2, false);
        }
        assert_eq!(h.log.len(), MAX_LOG_ENTRIES);
        // Default retries: 3.
        let mut h = Health {
            status: STARTING.into(),
            ..Default::default()
        };
        h.record(res(1), 0, false);
        h.record(res(1), 0, false);
        assert_eq!(h.status, STARTING);
        h.record(res(1), 0, false);
        assert_eq!(h.status, UNHEALTHY);
    }

    #[test]
    fn go_durations() {
        assert_eq!(go_duration(30_000_000_000), "30s");
        assert_eq!(go_duration(200_000_000), "200ms");
        assert_eq!(go_duration(1_500_000_000), "1.5s");
        assert_eq!(go_duration(90_000_000_000), "1m30s");
        assert_eq!(go_duration(3_600_000_000_000), "1h0m0s");
        assert_eq!(go_duration(1_000_000), "1ms");
    }
}
