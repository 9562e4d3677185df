//! Extraction of a layer tar into an overlay diff directory.

use super::{ApplyStats, LayerError};
use std::io::Read;
use std::path::Path;

pub fn apply_layer<R: Read>(archive: R, root: &Path) -> Result<ApplyStats, LayerError> {
    let _ = (archive, root);
    todo!()
}
