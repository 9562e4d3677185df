//! Layer archives: compression detection, hostile-archive-safe extraction and layer creation.

mod apply;
mod compress;
mod create;

pub use apply::apply_layer;
pub use compress::{decompress, detect_compression, Compression};
pub use create::{create_layer, CreateOptions};

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
    #[error("layer entry {0:?} escapes the layer root")]
    Breakout(String),
    #[error("layer entry {path:?}: link target {target:?} escapes the layer root")]
    LinkBreakout { path: String, target: String },
    #[error("truncated or corrupt layer archive: {0}")]
    Corrupt(String),
    #[error("layer entry {path:?}: {source}")]
    Io {
        path: String,
        #[source]
        source: io::Error,
    },
    #[error("layer entry {path:?}: {reason}")]
    Invalid { path: String, reason: String },
    #[error("{path}: {source}")]
    Fs {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}
