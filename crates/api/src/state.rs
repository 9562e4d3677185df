//! What the server keeps in memory. Everything durable (containers, images, events) lives in
//! the store; the server holds only what belongs to open connections:
//! - pending attaches: an attach that arrived before its container's start (the docker CLI
//!   attaches, then starts) waits here for the start, which hands it the connection the
//!   monitor serves from before the process runs, so no output is lost;
//! - exec instances (`routes/exec.rs`): created by one request, started by the next.
//!
//! Losing either with the server loses nothing durable: the clients holding those
//! connections are gone with it.

use crate::pool::Pool;
use berth_engine::streams::AttachStream;
use berth_engine::EngineConfig;
use std::collections::HashMap;
use std::sync::Mutex;
use tokio::sync::oneshot;

pub struct State {
    pub pool: Pool,
    pending_attaches: Mutex<HashMap<String, Vec<oneshot::Sender<AttachStream>>>>,
    pub execs: crate::routes::exec::Execs,
}

impl State {
    pub fn new(config: EngineConfig) -> State {
        State {
            pool: Pool::new(config),
            pending_attaches: Mutex::new(HashMap::new()),
            execs: Default::default(),
        }
    }

    /// Registers an attach waiting for container `id` to start.
    pub fn add_pending_attach(&self, id: &str) -> oneshot::Receiver<AttachStream> {
        let (tx, rx) = oneshot::channel();
        if let Ok(mut m) = self.pending_attaches.lock() {
            let v = m.entry(id.to_string()).or_default();
            v.retain(|t| !t.is_closed());
            v.push(tx);
        }
        rx
    }

    /// The waiting attach a start should serve (the first whose client is still there); the
    /// others connect to the running container's socket once it runs.
    pub fn take_pending_attach(&self, id: &str) -> Option<oneshot::Sender<AttachStream>> {
        let mut m = self.pending_attaches.lock().ok()?;
        let v = m.get_mut(id)?;
        v.retain(|t| !t.is_closed());
        let first = if v.is_empty() {
            None
        } else {
            Some(v.remove(0))
        };
        if v.is_empty() {
            m.remove(id);
        }
        first
    }

    /// The attaches still waiting for `id` after a start that served one: they attach to the
    /// running container's socket.
    pub fn take_other_attaches(&self, id: &str) -> Vec<oneshot::Sender<AttachStream>> {
        self.pending_attaches
            .lock()
            .ok()
            .and_then(|mut m| m.remove(id))
            .unwrap_or_default()
    }
}
