//! Turning a step's upper directory into a stored layer: a deterministic tar (the oci crate's
//! `create_layer`: sorted entries, numeric ids, whole-second mtimes clamped to
//! `SOURCE_DATE_EPOCH`, whiteouts converted), gzip-compressed with fixed header fields so the
//! blob is byte-stable, hashed twice on the way (diff ID of the tar, digest of the blob).

use crate::BuildError;
use berth_oci::digest::HashingWriter;
use berth_oci::layer::{create_layer, CreateOptions};
use berth_oci::{media, Digest};
use berth_store::{Op, StagedBlob, StagedLayer};
use std::path::Path;

/// A layer made by a step, staged in the build's operation.
pub struct NewLayer {
    pub dir: StagedLayer,
    pub blob: StagedBlob,
    pub diff_id: Digest,
    pub size: u64,
    pub media_type: &'static str,
}

/// Makes a layer of `upper`; `None` when the step changed nothing. On success `upper` has been
/// moved into the staging area as the layer's directory.
pub fn make_layer(
    op: &mut Op,
    upper: &Path,
    source_date_epoch: Option<i64>,
) -> Result<Option<NewLayer>, BuildError> {
    let empty = std::fs::read_dir(upper)
        .map_err(|e| BuildError::io(format!("reading {}", upper.display()), e))?
        .next()
        .is_none();
    if empty {
        return Ok(None);
    }
    let blob = op.blob_writer()?;
    // mtime 0, no name, OS "unknown" (255): the same bytes for the same tar everywhere.
    let gz = flate2::GzBuilder::new()
        .mtime(0)
        .operating_system(255)
        .write(blob, flate2::Compression::fast());
    let mut tar = HashingWriter::new(gz);
    let stats = create_layer(upper, &mut tar, &CreateOptions { source_date_epoch })
        .map_err(|e| BuildError::Failed(format!("creating layer: {e}")))?;
    let (gz, diff_id, _) = tar.finish();
    let blob = gz
        .finish()
        .map_err(|e| BuildError::io("compressing layer".into(), e))?;
    let blob = blob.finish(None)?;
    let path = op.scratch_path("layer");
    std::fs::rename(upper, &path)
        .map_err(|e| BuildError::io(format!("staging {}", upper.display()), e))?;
    Ok(Some(NewLayer {
        dir: StagedLayer { path },
        blob,
        diff_id,
        size: stats.size,
        media_type: media::OCI_LAYER_GZIP,
    }))
}
