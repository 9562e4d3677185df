//! `registry serve` and `registry gc`: the built-in OCI registry.

use crate::EngineError;
pub use berth_registry::{GcReport, ServerConfig};
use std::net::SocketAddr;
use std::path::Path;

fn registry_error(e: berth_registry::RegistryError) -> EngineError {
    EngineError::RegistryServer(e)
}

/// Binds `cfg.addr` (port 0 picks a free port), calls `ready` with the bound address, and serves
/// until the process gets SIGINT or SIGTERM.
pub fn serve_registry(
    cfg: ServerConfig,
    ready: impl FnOnce(SocketAddr, bool),
) -> Result<(), EngineError> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| EngineError::io("starting the registry server", e))?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(cfg.addr)
            .await
            .map_err(|e| EngineError::io(format!("binding {}", cfg.addr), e))?;
        let tls = cfg.tls_cert.is_some() && cfg.tls_key.is_some();
        let server = berth_registry::spawn(listener, cfg)
            .await
            .map_err(registry_error)?;
        ready(server.addr(), tls);
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .map_err(|e| EngineError::io("installing a SIGTERM handler", e))?;
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        server.shutdown().await;
        Ok(())
    })
}

/// Removes blobs of the registry at `root` that no manifest references.
pub fn gc_registry(root: &Path, dry_run: bool) -> Result<GcReport, EngineError> {
    berth_registry::gc(root, dry_run).map_err(registry_error)
}
