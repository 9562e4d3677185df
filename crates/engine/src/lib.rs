//! berth-engine: the one facade both front ends (the CLI and the Engine API server) call.
//!
//! Every operation on images, containers, volumes and networks is a method on [`Engine`]; it
//! returns typed values shaped like the Docker Engine API's responses ([`types`]), so the CLI
//! formats them and the API server serialises them, and neither holds any image or container
//! logic of its own.

pub mod build;
pub mod build_check;
pub mod containers;
mod error;
pub mod events;
pub mod gpu;
pub mod images;
pub mod jsonmessage;
pub mod kube;
pub mod limits;
pub mod pods;
pub mod python;
pub mod registry;
pub mod shape;
pub mod streams;
pub mod system;
pub mod types;
pub mod volumes;

pub use error::{EngineError, ErrorClass};

/// The container monitor's entry point (`berth-monitor`): a binary that links the engine and
/// is started under that name (the engine's `berth-monitor` link to the current executable)
/// calls this first. It never returns.
pub fn monitor_main() -> ! {
    berth_runtime::monitor::main()
}

/// A line in the startup trace (`BERTH_MONITOR_TRACE`), shared with the monitor's.
pub fn trace(what: &str) {
    berth_runtime::monitor::trace(what)
}

/// Waits for the fsyncs the last operations deferred (written files are made durable off the
/// critical path): a front end calls this before it reports success of an operation that
/// wrote, or before the process exits.
pub fn finish_deferred_syncs() {
    berth_runtime::util::finish_deferred_syncs()
}

use berth_store::Store;
use std::path::{Path, PathBuf};

/// Where the engine keeps its state.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Persistent state (`--root`, `BERTH_ROOT`), default `/var/lib/berth`.
    pub root: PathBuf,
    /// Runtime state (`--runroot`, `BERTH_RUNROOT`), default `/run/berth`.
    pub runroot: PathBuf,
    /// The container monitor (`berth-monitor`). `None`: a `berth-monitor` beside the current
    /// executable, else the current executable through a `berth-monitor` link in the run root
    /// (a binary that links the engine must then dispatch on that name, as `berth` does).
    pub monitor: Option<PathBuf>,
    /// The port proxy and DNS helper (`berth-netproxy`); `None` as for `monitor`.
    pub netproxy: Option<PathBuf>,
    /// The program a container's monitor runs when the container exits, as
    /// `PROGRAM --root R --runroot RR __container-exited ID` (applies `--rm` and the restart
    /// policy). `None`: the current executable.
    pub exit_hook: Option<PathBuf>,
    /// `--init`'s binary; `None`: the first of Debian's static tini, docker-init or catatonit.
    pub init_path: Option<PathBuf>,
    /// Where `--gpus` finds the NVIDIA driver and CDI devices their specs.
    pub gpu: gpu::GpuConfig,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            root: PathBuf::from("/var/lib/berth"),
            runroot: PathBuf::from("/run/berth"),
            monitor: None,
            netproxy: None,
            exit_hook: None,
            init_path: None,
            gpu: gpu::GpuConfig::default(),
        }
    }
}

pub struct Engine {
    config: EngineConfig,
    store: Store,
}

impl Engine {
    /// Opens the store (creating it on first use) and recovers what interrupted commands left.
    pub fn open(config: EngineConfig) -> Result<Engine, EngineError> {
        let store = Store::open(&config.root, &config.runroot)?;
        Ok(Engine { config, store })
    }

    pub fn root(&self) -> &Path {
        &self.config.root
    }

    pub fn runroot(&self) -> &Path {
        &self.config.runroot
    }

    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn store_mut(&mut self) -> &mut Store {
        &mut self.store
    }
}
