//! Layer archives: compression detection, hostile-archive-safe extraction and layer creation.
//!
//! A pull streams each blob through [`decompress`] (gzip, zstd or plain, decided by the magic
//! bytes) into [`apply_layer`], which unpacks the tar into an empty directory that becomes the
//! layer's overlay lower/diff directory, with OCI whiteouts turned into overlayfs ones. A commit
//! or build step turns an overlay upper directory back into a layer tar with [`create_layer`]
//! (deterministic bytes; the caller compresses and hashes). See the submodules for the exact
//! rules: `apply` for path safety and Docker's unpack semantics, `create` for the output format.

mod apply;
mod compress;
mod create;

pub use apply::{apply_archive, apply_layer};
pub use compress::{decompress, detect_compression, Compression};
pub use create::{create_layer, create_layer_filtered, CreateOptions};

use std::io;
use std::path::PathBuf;

/// What one extraction (or creation) saw.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ApplyStats {
    /// Archive entries processed (whiteouts included).
    pub entries: u64,
    /// Sum of the entries' data sizes (as Docker reports a layer's size).
    pub size: u64,
}

/// Why a layer could not be applied or created.
#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    /// An entry name whose `..` components climb above the root.
    #[error("layer entry {0:?} escapes the layer root")]
    Breakout(String),
    /// A hardlink target, or a relative symlink target, that climbs above the root.
    #[error("layer entry {path:?}: link target {target:?} escapes the layer root")]
    LinkBreakout { path: String, target: String },
    /// The stream is not a well-formed (or complete) tar, or its decompression failed.
    #[error("truncated or corrupt layer archive: {0}")]
    Corrupt(String),
    /// A filesystem operation for an entry failed.
    #[error("layer entry {path:?}: {source}")]
    Io {
        path: String,
        #[source]
        source: io::Error,
    },
    /// An entry that cannot be applied (hardlink to a missing path, unsupported type, ...).
    #[error("layer entry {path:?}: {reason}")]
    Invalid { path: String, reason: String },
    /// A filesystem operation on the layer root or (for creation) a source file failed.
    #[error("{path}: {source}")]
    Fs {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}
