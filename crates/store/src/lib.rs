//! berth-store: everything berth keeps on disk, under one root.
//!
//! ```text
//! $ROOT/berth.db              SQLite (WAL): images, tags, layers, blobs, containers
//! $ROOT/blobs/sha256/<hex>    content store: manifests, configs, layer archives (immutable)
//! $ROOT/layers/<chain hex>/   unpacked layer directories (overlay lowerdirs), shared by images
//! $ROOT/tmp/<op>/             work in progress of one operation (staged blobs and layers)
//! $RUNROOT                    sockets, pid files; lost on reboot
//! ```
//!
//! The crash rule: a file is renamed into `blobs/` or `layers/` only inside the SQLite write
//! transaction that records it, so under the write lock a path there without a row is garbage
//! left by a process that died between the rename and the commit. Every operation stages its work
//! in its own `tmp/<op>/` directory, holds an advisory lock on it while alive, and journals the
//! final paths it places or removes; the next [`Store::open`] finishes or undoes the journal of
//! any dead operation (see [`op`]).

mod db;
mod error;
pub mod op;
mod pods;
mod store;

pub use db::{CacheRow, ContainerRow, ImageRow, LayerRow};
pub use error::StoreError;
pub use op::{Op, StagedBlob, StagedLayer};
pub use pods::PodRow;
pub use store::{BlobCommit, ImageCommit, LayerCommit, RemovedImage, Store};
