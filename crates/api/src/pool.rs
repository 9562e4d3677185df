//! A small pool of engines. The engine's methods take `&mut self` over one SQLite connection,
//! so each request borrows an `Engine` of its own for as long as it runs (opened on demand,
//! given back after). SQLite in WAL mode lets many connections read at once; writers serialise
//! only on commit, so a long pull or a follow never blocks a `ps`.

use crate::http::ApiError;
use berth_engine::{Engine, EngineConfig, EngineError};
use std::sync::{Arc, Mutex};

/// How many idle engines are kept for reuse; more are opened under load and closed after.
const KEEP_IDLE: usize = 8;
/// How many short engine calls run at once; more wait their turn (200 concurrent `ps` queue
/// here instead of opening 200 SQLite connections). Streams and waits do not count.
const CONCURRENT_CALLS: usize = 16;

#[derive(Clone)]
pub struct Pool {
    inner: Arc<Inner>,
}

struct Inner {
    config: EngineConfig,
    idle: Mutex<Vec<Engine>>,
    calls: tokio::sync::Semaphore,
}

impl Pool {
    pub fn new(config: EngineConfig) -> Pool {
        Pool {
            inner: Arc::new(Inner {
                config,
                idle: Mutex::new(Vec::new()),
                calls: tokio::sync::Semaphore::new(CONCURRENT_CALLS),
            }),
        }
    }

    /// An engine for one request (blocking: opening one opens the store).
    fn take(&self) -> Result<Engine, EngineError> {
        let idle = self.inner.idle.lock().ok().and_then(|mut v| v.pop());
        match idle {
            Some(e) => Ok(e),
            None => Engine::open(self.inner.config.clone()),
        }
    }

    fn give_back(&self, e: Engine) {
        if let Ok(mut v) = self.inner.idle.lock() {
            if v.len() < KEEP_IDLE {
                v.push(e);
            }
        }
    }

    /// Runs `f` with an engine on tokio's blocking pool, so engine calls (which block on disk,
    /// SQLite and child processes) never stall the threads that serve other connections.
    /// Engine calls that write files finish their deferred fsyncs before the answer is sent.
    pub async fn run<T, F>(&self, f: F) -> Result<T, ApiError>
    where
        F: FnOnce(&mut Engine) -> Result<T, EngineError> + Send + 'static,
        T: Send + 'static,
    {
        let _permit = self
            .inner
            .calls
            .acquire()
            .await
            .map_err(|_| ApiError::internal("the server is stopping"))?;
        self.run_long(f).await
    }

    /// Like [`Pool::run`] for calls that last as long as a client wants (a followed log, the
    /// event stream, a wait): they do not take one of the short calls' turns.
    pub async fn run_long<T, F>(&self, f: F) -> Result<T, ApiError>
    where
        F: FnOnce(&mut Engine) -> Result<T, EngineError> + Send + 'static,
        T: Send + 'static,
    {
        let pool = self.clone();
        tokio::task::spawn_blocking(move || {
            let mut engine = pool.take()?;
            let result = f(&mut engine);
            pool.give_back(engine);
            berth_engine::finish_deferred_syncs();
            result
        })
        .await
        .map_err(|e| ApiError::internal(format!("engine task failed: {e}")))?
        .map_err(ApiError::from)
    }
}
