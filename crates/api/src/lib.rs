//! berth-api: the Docker Engine API server (`berth serve`), the second front end of the engine.
//!
//! It speaks HTTP/1.1 on unix sockets (and, when asked, plain TCP) with hyper, maps each request
//! onto one engine call run on tokio's blocking pool with an engine from a small pool
//! ([`pool`]), and answers in dockerd's shapes. It holds no container or image logic: what it
//! keeps in memory is only what belongs to a connection (see ARCHITECTURE.md, "The Engine API
//! server").

mod http;
mod listen;
mod pool;
mod router;
mod routes;
mod state;
mod stream;

use berth_engine::EngineConfig;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub use listen::default_host;

/// How long a stopping server waits for requests in flight.
const DRAIN: Duration = Duration::from_secs(10);

/// What `berth serve` was asked for.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub config: EngineConfig,
    /// `unix:///path` or `tcp://addr:port`; empty means [`default_host`].
    pub hosts: Vec<String>,
    /// The group that may use the unix sockets (name or number); default `docker` when that
    /// group exists, else root's.
    pub group: Option<String>,
    /// Allow TCP without TLS.
    pub insecure_tcp: bool,
    pub tls: TlsOptions,
}

/// dockerd's TLS flags, for `tcp://` hosts: `--tlsverify` with a CA, a certificate and a key
/// serves mutual TLS (only clients with a certificate the CA signed get in); a certificate and
/// key without `--tlsverify` serve TLS to anyone, which needs `--insecure-tcp` as plain TCP does.
/// The front end fills in dockerd's default paths.
#[derive(Debug, Clone, Default)]
pub struct TlsOptions {
    pub verify: bool,
    pub ca: Option<PathBuf>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The options cannot be served (bad address, TLS asked for, TCP without consent).
    #[error("{0}")]
    Invalid(String),
    /// Binding or preparing a socket failed.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

/// Serves the Engine API until SIGTERM or SIGINT, then stops accepting, lets requests in
/// flight finish (up to 10 s) and returns. Containers are not touched: their monitors own them.
pub fn serve(opts: ServeOptions) -> Result<(), ServeError> {
    let hosts = if opts.hosts.is_empty() {
        vec![default_host(&opts.config.runroot)]
    } else {
        opts.hosts.clone()
    };
    let specs = hosts
        .iter()
        .map(|h| listen::parse_host(h))
        .collect::<Result<Vec<_>, _>>()?;
    let any_tcp = specs.iter().any(|s| matches!(s, listen::HostSpec::Tcp(_)));
    let tls = tls_acceptor(&opts.tls, any_tcp)?;
    let mutual = tls.is_some() && opts.tls.verify;
    if any_tcp && !mutual {
        if !opts.insecure_tcp {
            return Err(ServeError::Invalid(
                if tls.is_some() {
                    "refusing to serve the API on TCP without client certificates: anyone who can \
                 reach the port would be root on this host. Add --tlsverify --tlscacert CA.pem, \
                 or pass --insecure-tcp if the port is reachable only by trusted users"
                } else {
                    "refusing to serve the API on TCP without TLS: anyone who can reach the port \
                 would be root on this host. Use a unix socket, serve mutual TLS (--tlsverify \
                 --tlscacert --tlscert --tlskey), or pass --insecure-tcp if the port is \
                 reachable only by trusted users"
                }
                .into(),
            ));
        }
        eprintln!(
            "WARNING: serving the API on TCP without {}: anyone who can reach the port is root \
             on this host",
            if tls.is_some() {
                "client certificates"
            } else {
                "TLS"
            }
        );
    }
    raise_open_file_limit();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("berth-api")
        .enable_all()
        .build()
        .map_err(|source| ServeError::Io {
            context: "cannot start the server's runtime".into(),
            source,
        })?;
    runtime.block_on(async move {
        let gid = listen::socket_group(opts.group.as_deref())?;
        let mut listeners = Vec::new();
        for spec in &specs {
            listeners.push(listen::bind(spec, gid, tls.as_ref()).await?);
        }
        let state = Arc::new(state::State::new(opts.config.clone()));
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let in_flight = Arc::new(());
        for l in &listeners {
            eprintln!("berth serve: API listening on {}", l.describe());
        }
        let mut accepting = Vec::new();
        for l in listeners {
            accepting.push(tokio::spawn(router::accept_loop(
                l,
                state.clone(),
                stop_rx.clone(),
                in_flight.clone(),
            )));
        }
        wait_for_signal().await;
        eprintln!("berth serve: stopping (finishing requests in flight)");
        let _ = stop_tx.send(true);
        for a in accepting {
            let _ = a.await;
        }
        // Every connection task holds a clone of `in_flight`.
        let deadline = tokio::time::Instant::now() + DRAIN;
        while Arc::strong_count(&in_flight) > 1 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        for spec in &specs {
            if let listen::HostSpec::Unix(p) = spec {
                let _ = std::fs::remove_file(p);
            }
        }
        Ok::<(), ServeError>(())
    })?;
    // Streams still open past the drain (an events follower) are cut here.
    runtime.shutdown_timeout(Duration::from_millis(100));
    berth_engine::finish_deferred_syncs();
    Ok(())
}

/// Every connection is a file descriptor: the soft limit (often 1024) is raised to the hard
/// one, as dockerd does, so a thousand idle clients do not starve the server of sockets.
fn raise_open_file_limit() {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let Rlimit { current, maximum } = getrlimit(Resource::Nofile);
    if current < maximum {
        let _ = setrlimit(
            Resource::Nofile,
            Rlimit {
                current: maximum,
                maximum,
            },
        );
    }
}

/// The TLS acceptor for the TCP hosts, when TLS was asked for.
fn tls_acceptor(
    t: &TlsOptions,
    any_tcp: bool,
) -> Result<Option<berth_registry::tls::TlsAcceptor>, ServeError> {
    let asked = t.verify || t.ca.is_some() || t.cert.is_some() || t.key.is_some();
    if !asked {
        return Ok(None);
    }
    if !any_tcp {
        return Err(ServeError::Invalid(
            "TLS applies to tcp:// hosts and none was given: add -H tcp://ADDRESS:PORT, or \
             drop the --tls flags to serve the unix socket alone"
                .into(),
        ));
    }
    let (Some(cert), Some(key)) = (&t.cert, &t.key) else {
        return Err(ServeError::Invalid(
            "TLS needs both --tlscert and --tlskey (the server's certificate and its key)".into(),
        ));
    };
    let ca = match (&t.ca, t.verify) {
        (Some(ca), true) => Some(ca.as_path()),
        (None, true) => {
            return Err(ServeError::Invalid(
                "--tlsverify needs --tlscacert: the CA whose certificates clients must present"
                    .into(),
            ))
        }
        (Some(_), false) => {
            return Err(ServeError::Invalid(
                "--tlscacert is only used with --tlsverify: add --tlsverify to require client \
                 certificates signed by that CA"
                    .into(),
            ))
        }
        (None, false) => None,
    };
    berth_registry::tls::acceptor(cert, key, ca)
        .map(Some)
        .map_err(|e| ServeError::Invalid(e.to_string()))
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let term = signal(SignalKind::terminate());
    let int = signal(SignalKind::interrupt());
    match (term, int) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        // Without signal handlers the process is stopped the default way.
        _ => std::future::pending::<()>().await,
    }
}
