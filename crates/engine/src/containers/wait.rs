//! Waiting for a container: `wait` (the CLI's), the Engine API's wait with Docker's conditions
//! (`not-running`, `next-exit`, `removed`), and the wait of a foreground `run` that finishes
//! the container (`--rm`).

use super::LiveState;
use crate::streams::ExitStatus;
use crate::{Engine, EngineError};
use std::time::Duration;

/// How often a wait looks again at what it cannot sleep on (a restart, a removal, a client).
const TICK: Duration = Duration::from_millis(20);

/// Docker's wait conditions (`POST /containers/{id}/wait?condition=`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WaitCondition {
    /// The container does not run (now, or once it exits): the default.
    NotRunning,
    /// The container's next exit: a container that does not run must first be started.
    NextExit,
    /// The container is removed (after its next exit, when it does not run yet).
    Removed,
}

impl WaitCondition {
    /// Parses dockerd's names; empty is the default.
    pub fn parse(s: &str) -> Result<WaitCondition, EngineError> {
        match s {
            "" | "not-running" => Ok(WaitCondition::NotRunning),
            "next-exit" => Ok(WaitCondition::NextExit),
            "removed" => Ok(WaitCondition::Removed),
            other => Err(EngineError::InvalidArgument(format!(
                "invalid condition: \"{other}\" (use not-running, next-exit or removed)"
            ))),
        }
    }
}

/// A registered wait (see [`Engine::register_wait`]): the container and what it was doing when
/// the wait began, with its starter lock held.
pub struct WaitTicket {
    id: String,
    first: LiveState,
    lock: Option<std::fs::File>,
}

impl WaitTicket {
    pub fn id(&self) -> &str {
        &self.id
    }
}

impl Engine {
    /// `POST /containers/{id}/wait`: blocks until the container exits; its exit code.
    pub fn wait_container(&mut self, name: &str) -> Result<i32, EngineError> {
        let (row, _rec, mut live) = self.load(name)?;
        // Docker counts a restarting container as running: wait for its next exit (or for
        // a stop that cancels the restart).
        while live.restarting {
            std::thread::sleep(TICK);
            live = self.load(&row.id)?.2;
        }
        if !live.running {
            return Ok(live.exit_code);
        }
        let dir = self.container_dir_of(&row.id);
        let st = berth_runtime::wait(&dir, None).map_err(EngineError::Runtime)?;
        let _ = self.load(&row.id);
        Ok(st.exit_code)
    }

    /// Waits for the exit of a container started by this process and finishes it (`--rm`).
    pub fn wait_and_finish(&mut self, id: &str) -> Result<ExitStatus, EngineError> {
        let dir = self.container_dir_of(id);
        let st = match berth_runtime::wait(&dir, None) {
            Ok(st) => st,
            Err(berth_runtime::Error::NotRunning) => {
                let (_, _, live) = self.load(id)?;
                ExitStatus {
                    exit_code: live.exit_code,
                    signal: None,
                    oom_killed: live.oom_killed,
                    finished_at: live.finished_at,
                    ..Default::default()
                }
            }
            Err(e) => return Err(EngineError::Runtime(e)),
        };
        self.after_exit(id)?;
        Ok(st)
    }

    /// The first half of a wait with a condition: registered before the front end answers
    /// (the docker CLI registers its wait, then starts the container, so the start cannot be
    /// missed). The ticket holds the container's starter lock, so the exit hook of a `--rm`
    /// container removes it only after this wait read its exit code.
    pub fn register_wait(&mut self, name: &str) -> Result<WaitTicket, EngineError> {
        let id = self.resolve_container(name)?.id;
        let lock = self.shared_starter_lock(&id);
        let first = self.container_live(&id)?;
        Ok(WaitTicket { id, first, lock })
    }

    /// The second half: blocks until `cond` holds; the exit code, or `None` when `canceled`
    /// said so first (the client went away).
    pub fn wait_condition(
        &mut self,
        ticket: WaitTicket,
        cond: WaitCondition,
        canceled: &dyn Fn() -> bool,
    ) -> Option<i32> {
        let WaitTicket { id, first, lock } = ticket;
        let id = id.as_str();
        let dir = self.container_dir_of(id);
        let mut code = first.exit_code;
        let running = |l: &LiveState| l.running || l.restarting;
        if cond != WaitCondition::NotRunning && !running(&first) {
            // Until it starts (a new StartedAt), or is removed.
            loop {
                if canceled() {
                    return None;
                }
                match self.container_live(id) {
                    Ok(l) if l.started_at != first.started_at || running(&l) => break,
                    Ok(_) => {}
                    Err(_) => return Some(code),
                }
                std::thread::sleep(TICK);
            }
        }
        // Until it exits.
        loop {
            if canceled() {
                return None;
            }
            match berth_runtime::wait(&dir, Some(Duration::from_millis(200))) {
                Ok(st) => {
                    code = st.exit_code;
                    break;
                }
                Err(berth_runtime::Error::Timeout) => continue,
                Err(_) => match self.container_live(id) {
                    Ok(l) if l.restarting => std::thread::sleep(TICK),
                    Ok(l) if !l.running => {
                        code = l.exit_code;
                        break;
                    }
                    Ok(_) => std::thread::sleep(TICK),
                    Err(_) => return Some(code),
                },
            }
        }
        // A `--rm` container is finished here as a foreground `run` finishes it (unmounted,
        // network released, removed) rather than by its exit hook, which waits for this lock:
        // the answer does not wait for another process. Both are idempotent; containers with
        // a restart policy are left to the hook.
        if self.container_spec(id).is_ok_and(|s| s.auto_remove) {
            let _ = self.wait_and_finish(id);
        }
        drop(lock);
        if cond == WaitCondition::Removed {
            loop {
                if canceled() {
                    return None;
                }
                if self.resolve_container(id).is_err() {
                    break;
                }
                std::thread::sleep(TICK);
            }
        }
        Some(code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions_are_dockers() {
        assert_eq!(WaitCondition::parse("").unwrap(), WaitCondition::NotRunning);
        assert_eq!(
            WaitCondition::parse("not-running").unwrap(),
            WaitCondition::NotRunning
        );
        assert_eq!(
            WaitCondition::parse("next-exit").unwrap(),
            WaitCondition::NextExit
        );
        assert_eq!(
            WaitCondition::parse("removed").unwrap(),
            WaitCondition::Removed
        );
        let e = WaitCondition::parse("exited").unwrap_err();
        assert_eq!(e.class(), crate::ErrorClass::InvalidArgument);
        assert_eq!(
            e.to_string(),
            "invalid condition: \"exited\" (use not-running, next-exit or removed)"
        );
    }
}
