//! Restart policies and `--rm` for containers that exit on their own.
//!
//! `start` records an exit hook ([`berth_runtime::exit_hook_path`]): when the container's init
//! exits, its monitor runs `berth --root R --runroot RR __container-exited <id>`, which calls
//! [`Engine::container_exited`]. `stop`, `kill` and `rm` first leave a `manually-stopped`
//! marker in the container directory: such an exit is never restarted (a `--rm` container
//! killed by `kill` is still removed; `stop` and `rm` remove it themselves). `start` clears the
//! marker, the restart count and the backoff. The hook first waits for the command that
//! started the container to finish (it may be waiting for this exit: a foreground `run --rm`
//! removes the container itself).
//!
//! Docker's rules: `always`/`unless-stopped` restart whatever the exit code, `on-failure[:N]`
//! only after a non-zero exit, at most N times (unlimited without N). Each restart waits a
//! backoff that starts at 100 ms and doubles (at most a minute), back to 100 ms once a run
//! lasted 10 seconds.
//!
//! While the hook waits out the backoff the container is `restarting` (Docker's
//! `State.Restarting`): the hook writes its own `pid start_time` to `restarting` (under
//! `restart.lock`, after checking for a manual stop) and removes it once the restart is done.
//! Readers trust the file only while that process is alive, so a hook that was killed leaves
//! an honest `exited`. `stop`, `kill` and `rm` cancel a pending restart by killing the hook
//! while they hold `restart.lock` (it is then sleeping or waiting for the lock, never
//! restarting).

use super::{io_err, parse_rfc3339, ContainerRecord};
use crate::{Engine, EngineError};
use std::path::Path;
use std::time::Duration;

const STOPPED_MARKER: &str = "manually-stopped";
const BACKOFF_FILE: &str = "restart-backoff";
const RESTARTING_FILE: &str = "restarting";
const FIRST_DELAY_MS: u64 = 100;
const MAX_DELAY_MS: u64 = 60_000;
const RESET_AFTER_SECS: i64 = 10;

/// Whether a policy restarts a container that exited with `exit_code` after `restarts`
/// restarts.
pub(crate) fn should_restart(policy: &super::RestartPolicy, exit_code: i32, restarts: u32) -> bool {
    match policy.name.as_str() {
        "always" | "unless-stopped" => true,
        "on-failure" => {
            exit_code != 0 && (policy.max_retries == 0 || restarts < policy.max_retries)
        }
        _ => false,
    }
}

/// The delay before the next restart, given the previous one (`None`: first restart) and how
/// long the last run lasted.
pub(crate) fn next_delay_ms(previous: Option<u64>, ran_secs: Option<i64>) -> u64 {
    match (previous, ran_secs) {
        (Some(p), Some(r)) if r < RESET_AFTER_SECS => (p * 2).min(MAX_DELAY_MS),
        (Some(p), None) => (p * 2).min(MAX_DELAY_MS),
        _ => FIRST_DELAY_MS,
    }
}

/// Whether the exit hook of the container in `dir` is waiting to restart it: `restarting`
/// names a live process (a stale file left by a killed hook means nothing).
pub(crate) fn restart_pending(dir: &Path) -> bool {
    match berth_runtime::util::read_pid_file(&dir.join(RESTARTING_FILE)) {
        Some((pid, start)) => berth_runtime::util::proc_alive(pid, start),
        None => false,
    }
}

/// Removes the `restarting` file when the hook is done with it, however it returns.
struct PendingRestart(std::path::PathBuf);

impl Drop for PendingRestart {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Kills the process that started at `start` with pid `pid` (through a pidfd, so a recycled
/// pid is never signalled).
fn kill_exact(pid: i32, start: u64) {
    let Some(p) = rustix::process::Pid::from_raw(pid) else {
        return;
    };
    let Ok(fd) = rustix::process::pidfd_open(p, rustix::process::PidfdFlags::empty()) else {
        return;
    };
    if berth_runtime::util::proc_alive(pid, start) {
        let _ = rustix::process::pidfd_send_signal(&fd, rustix::process::Signal::KILL);
    }
}

impl Engine {
    /// Cancels a restart the exit hook is waiting for. Called by `stop`, `kill` and `rm` with
    /// `restart.lock` held, after leaving the `manually-stopped` marker: the hook is then
    /// sleeping out its backoff or waiting for the lock, so killing it loses nothing.
    pub(crate) fn cancel_restart(&self, id: &str) {
        let p = self.container_dir_of(id).join(RESTARTING_FILE);
        if let Some((pid, start)) = berth_runtime::util::read_pid_file(&p) {
            if pid != std::process::id() as i32 {
                kill_exact(pid, start);
            }
        }
        let _ = std::fs::remove_file(p);
    }

    /// Records that `stop`, `kill` or `rm` ended (or is ending) the container, so its exit
    /// hook does not restart it.
    pub(crate) fn mark_manually_stopped(&self, id: &str) {
        let _ = std::fs::write(self.container_dir_of(id).join(STOPPED_MARKER), b"");
    }

    /// Forgets a manual stop and the restart history (a user's `start`).
    pub(crate) fn reset_restart_state(&self, id: &str, rec: &mut ContainerRecord) {
        let dir = self.container_dir_of(id);
        let _ = std::fs::remove_file(dir.join(STOPPED_MARKER));
        let _ = std::fs::remove_file(dir.join(BACKOFF_FILE));
        rec.restart_count = 0;
    }

    /// Writes the exit hook the monitor runs when the container's init exits.
    pub(crate) fn write_exit_hook(&self, id: &str) -> Result<(), EngineError> {
        let exe = match &self.config().exit_hook {
            Some(p) => p.clone(),
            None => std::env::current_exe().map_err(io_err("finding the berth executable"))?,
        };
        let argv = [
            exe.display().to_string(),
            "--root".into(),
            self.root().display().to_string(),
            "--runroot".into(),
            self.runroot().display().to_string(),
            "__container-exited".into(),
            id.to_string(),
        ];
        let p = berth_runtime::exit_hook_path(&self.container_dir_of(id));
        std::fs::write(&p, serde_json::to_vec(&argv).unwrap_or_default())
            .map_err(io_err(format!("writing {}", p.display())))
    }

    /// The exit hook (`berth __container-exited <id>`): applies `--rm` and the restart policy
    /// to a container whose init just exited.
    pub fn container_exited(&mut self, id: &str) -> Result<(), EngineError> {
        let row = match self.resolve_container(id) {
            Ok(r) => r,
            Err(EngineError::ContainerNotFound(_)) => return Ok(()),
            Err(e) => return Err(e),
        };
        let id = row.id.clone();
        self.wait_for_starters(&id);
        let (_, rec, live) = match self.load(&id) {
            Ok(x) => x,
            Err(EngineError::ContainerNotFound(_)) => return Ok(()),
            Err(e) => return Err(e),
        };
        let dir = self.container_dir_of(&id);
        if live.running || rec.state.status == "removing" || !dir.exists() {
            return Ok(());
        }
        let stopped = dir.join(STOPPED_MARKER).exists();
        if rec.auto_remove {
            // `stop` and `rm` remove it themselves; after `kill` or its own exit, we do.
            if stopped && !self.stopped_by_kill(&dir) {
                return Ok(());
            }
            return self.remove_exited(&id);
        }
        if stopped {
            return Ok(());
        }
        let spec = self.spec_of(&id)?;
        if !should_restart(&spec.restart, live.exit_code, rec.restart_count) {
            // A `start` since the exit owns the container now: leave its mounts and network.
            let _lock = self.restart_lock(&id);
            match self.load(&id) {
                Ok((_, rec, live)) if !live.running && rec.state.status == "exited" => {
                    let _ = berth_runtime::cleanup(&dir);
                    self.release_network(&id);
                }
                _ => {}
            }
            return Ok(());
        }
        let ran = match (
            parse_rfc3339(&live.started_at),
            parse_rfc3339(&live.finished_at),
        ) {
            (Some(a), Some(b)) => Some((b - a).num_seconds()),
            _ => None,
        };
        let previous = std::fs::read_to_string(dir.join(BACKOFF_FILE))
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok());
        let delay = next_delay_ms(previous, ran);
        let _ = std::fs::write(dir.join(BACKOFF_FILE), delay.to_string());
        // `restarting` from here on; a stop that came first wins.
        let pending = {
            let _lock = self.restart_lock(&id);
            if dir.join(STOPPED_MARKER).exists() {
                return Ok(());
            }
            let p = dir.join(RESTARTING_FILE);
            let _ = berth_runtime::util::write_pid_file(&p, std::process::id() as i32);
            PendingRestart(p)
        };
        std::thread::sleep(Duration::from_millis(delay));
        // A `stop`, `kill` or `rm` during the backoff cancels the restart (it kills this
        // process); they wait for a restart under way to finish.
        let _lock = self.restart_lock(&id);
        // Dropped before the lock: the file goes while the lock is held.
        let _pending = pending;
        if dir.join(STOPPED_MARKER).exists() {
            return Ok(());
        }
        let (_, mut rec, live) = match self.load(&id) {
            Ok(x) => x,
            Err(EngineError::ContainerNotFound(_)) => return Ok(()),
            Err(e) => return Err(e),
        };
        if live.running || rec.state.status != "exited" {
            return Ok(());
        }
        let _ = berth_runtime::cleanup(&dir);
        self.release_network(&id);
        rec.restart_count += 1;
        self.start_spec(&id, &spec, &mut rec)
    }

    /// Holds a shared lock on `starter.lock` until this process exits (or
    /// [`Engine::release_start_lock`]): a command that started the container may still wait for
    /// it and finish it (a foreground `run --rm` removes it itself, with its exit code), so the
    /// exit hook waits for it to be done.
    pub(crate) fn hold_start_lock(&self, id: &str) {
        if let Some(f) = self.shared_starter_lock(id) {
            if let Ok(mut v) = HELD_START_LOCKS.lock() {
                v.push((id.to_string(), f));
            }
        }
    }

    /// A shared lock on the container's `starter.lock`, held while the file is open.
    pub(crate) fn shared_starter_lock(&self, id: &str) -> Option<std::fs::File> {
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(berth_runtime::starter_lock_path(&self.container_dir_of(id)))
            .ok()?;
        rustix::fs::flock(&f, rustix::fs::FlockOperation::LockShared).ok()?;
        Some(f)
    }

    /// Lets the exit hook of a container this process started run: a long-lived front end (the
    /// API server) calls it once the start is answered, since it never exits and a container
    /// it started would otherwise never be finished (`--rm`, restart policies).
    pub fn release_start_lock(&self, id: &str) {
        if let Ok(mut v) = HELD_START_LOCKS.lock() {
            v.retain(|(held, _)| held != id);
        }
    }

    /// Waits until no process that started the container (see [`Self::hold_start_lock`]) is
    /// left.
    fn wait_for_starters(&self, id: &str) {
        if let Ok(f) = std::fs::OpenOptions::new()
            .write(true)
            .open(berth_runtime::starter_lock_path(&self.container_dir_of(id)))
        {
            let _ = rustix::fs::flock(&f, rustix::fs::FlockOperation::LockExclusive);
        }
    }

    /// Serialises a restart with `stop`, `kill` and `rm` (`restart.lock`, flock).
    pub(crate) fn restart_lock(&self, id: &str) -> Option<std::fs::File> {
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(self.container_dir_of(id).join("restart.lock"))
            .ok()?;
        rustix::fs::flock(&f, rustix::fs::FlockOperation::LockExclusive).ok()?;
        Some(f)
    }

    fn stopped_by_kill(&self, dir: &Path) -> bool {
        std::fs::read(dir.join(STOPPED_MARKER)).ok().as_deref() == Some(b"kill")
    }

    /// Marks a `kill` (a `--rm` container is then removed by its exit hook).
    pub(crate) fn mark_killed(&self, id: &str) {
        let _ = std::fs::write(self.container_dir_of(id).join(STOPPED_MARKER), b"kill");
    }

    /// Removes an exited `--rm` container; one removed meanwhile by another command is fine.
    fn remove_exited(&mut self, id: &str) -> Result<(), EngineError> {
        let _ = berth_runtime::cleanup(&self.container_dir_of(id));
        self.release_network(id);
        match self.remove_container(id, true, true) {
            Ok(_) | Err(EngineError::ContainerNotFound(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

/// The `starter.lock`s this process holds, by container ID (see
/// [`Engine::hold_start_lock`]).
static HELD_START_LOCKS: std::sync::Mutex<Vec<(String, std::fs::File)>> =
    std::sync::Mutex::new(Vec::new());

#[cfg(test)]
mod tests {
    use super::*;
    use crate::containers::RestartPolicy;

    fn p(name: &str, n: u32) -> RestartPolicy {
        RestartPolicy {
            name: name.into(),
            max_retries: n,
        }
    }

    #[test]
    fn policies() {
        assert!(!should_restart(&p("", 0), 1, 0));
        assert!(!should_restart(&p("no", 0), 1, 0));
        assert!(should_restart(&p("always", 0), 0, 100));
        assert!(should_restart(&p("unless-stopped", 0), 0, 0));
        assert!(!should_restart(&p("on-failure", 0), 0, 0));
        assert!(should_restart(&p("on-failure", 0), 3, 50));
        assert!(should_restart(&p("on-failure", 2), 3, 1));
        assert!(!should_restart(&p("on-failure", 2), 3, 2));
    }

    #[test]
    fn restarting_file_is_believed_only_while_its_process_lives() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join(RESTARTING_FILE);
        assert!(!restart_pending(d.path()));
        berth_runtime::util::write_pid_file(&p, std::process::id() as i32).unwrap();
        assert!(restart_pending(d.path()));
        // The same pid with another start time: a recycled pid, not the hook.
        std::fs::write(&p, format!("{} 1\n", std::process::id())).unwrap();
        assert!(!restart_pending(d.path()));
        std::fs::write(&p, "garbage").unwrap();
        assert!(!restart_pending(d.path()));
    }

    #[test]
    fn backoff() {
        assert_eq!(next_delay_ms(None, Some(0)), 100);
        assert_eq!(next_delay_ms(Some(100), Some(1)), 200);
        assert_eq!(next_delay_ms(Some(400), Some(9)), 800);
        assert_eq!(next_delay_ms(Some(800), Some(10)), 100);
        assert_eq!(next_delay_ms(Some(50_000), Some(0)), 60_000);
    }
}
