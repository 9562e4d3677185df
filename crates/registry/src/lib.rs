//! # berth-registry
//!
//! The OCI distribution side of berth: a registry **server** (what
//! `berth registry serve` runs) and, in [`client`], a registry **client**
//! for pulling from and pushing to any distribution-spec registry.
//!
//! ## Server
//!
//! ```no_run
//! # async fn run() -> Result<(), berth_registry::RegistryError> {
//! use berth_registry::{serve, ServerConfig};
//! let mut cfg = ServerConfig::new("127.0.0.1:5000".parse().unwrap(), "/var/lib/berth/registry");
//! cfg.htpasswd = Some("/etc/berth/htpasswd".into()); // bcrypt entries (htpasswd -B)
//! cfg.delete_enabled = true;
//! serve(cfg).await // runs until the process ends
//! # }
//! ```
//!
//! - [`serve`] binds `cfg.addr` and serves forever; [`spawn`] serves an
//!   already-bound `tokio::net::TcpListener` in the background and returns a
//!   [`RunningServer`] with the bound address (tests bind `127.0.0.1:0`).
//! - [`gc`] removes blobs that no manifest references (`berth registry gc
//!   [--dry-run]`); run it while the server is stopped or read-only.
//!
//! Suggested CLI mapping: `berth registry serve [--addr 0.0.0.0:5000]
//! [--root DIR] [--htpasswd FILE] [--token-auth] [--tls-cert PEM --tls-key PEM]
//! [--read-only] [--delete-enabled]` builds a [`ServerConfig`] and calls
//! [`serve`]; `berth registry gc [--dry-run] [--root DIR]` calls [`gc`] and
//! prints the [`GcReport`].
//!
//! The server implements the whole distribution spec v1.1: ping, pull
//! (manifests and blobs, `Range`), push (monolithic, POST+PUT, chunked
//! PATCH with `416` on gaps, cross-repository mount), content discovery
//! (tags with `n`/`last` and `Link`, `_catalog`), deletion (when enabled,
//! `405 UNSUPPORTED` otherwise) and the referrers API, answering errors with
//! the spec's JSON bodies. Authentication is htpasswd Basic auth, or bearer
//! tokens from a built-in `/token` endpoint ([`ServerConfig::token_auth`]).
//! The storage layout is described in the `storage` module's source.
//!
//! ## Client
//!
//! See [`client::Client`].

pub mod client;
mod error;
mod gc;
pub mod manifest;
pub mod reference;
mod server;
mod storage;
pub mod tls;

pub use error::{ErrorCode, RegistryError};
pub use gc::{gc, GcReport};
pub use reference::{Digest, Reference};
pub use server::{serve, spawn, RunningServer, ServerConfig, TOKEN_SERVICE};
