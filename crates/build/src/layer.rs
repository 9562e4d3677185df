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

/// The gzip level of built layers. zlib-rs's level 1 ("quick") codes every block with the fixed
/// Huffman table and never falls back to a stored block, so incompressible data (random bytes,
/// already-compressed files) grows by 5.5 % (8.44 bits a byte) and inflates 7x slower; from
/// level 2 on, such blocks are stored (+0.03 %), and text compresses about 17 % smaller too.
/// Changing the level changes every built layer's bytes, hence its digest.
const LAYER_GZIP_LEVEL: u32 = 2;

/// The gzip stream a built layer is written through: mtime 0, no name, OS "unknown" (255) and a
/// fixed level, so the same tar gives the same bytes everywhere.
fn layer_encoder<W: std::io::Write>(w: W) -> flate2::write::GzEncoder<W> {
    flate2::GzBuilder::new()
        .mtime(0)
        .operating_system(255)
        .write(w, flate2::Compression::new(LAYER_GZIP_LEVEL))
}

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
    let mut tar = HashingWriter::new(layer_encoder(blob));
    let stats = create_layer(upper, &mut tar, &CreateOptions { source_date_epoch })
        .map_err(|e| BuildError::Failed(format!("creating layer: {e}")))?;
    if let Some(e) = source_date_epoch {
        // The layer's directory is what containers of the image run on: it shows the same
        // mtimes as the archive, as it would after a pull on another machine.
        clamp_mtimes(upper, e).map_err(|err| {
            BuildError::io(format!("clamping mtimes in {}", upper.display()), err)
        })?;
    }
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

/// Sets every mtime later than `epoch` under `dir` (not `dir` itself: the archive has no entry
/// for it) to `epoch`, without following symlinks, as [`create_layer`] clamps them.
fn clamp_mtimes(dir: &Path, epoch: i64) -> std::io::Result<()> {
    use rustix::fs::{utimensat, AtFlags, Timespec, Timestamps, CWD, UTIME_OMIT};
    use std::os::unix::fs::MetadataExt;
    let times = Timestamps {
        last_access: Timespec {
            tv_sec: 0,
            tv_nsec: UTIME_OMIT,
        },
        last_modification: Timespec {
            tv_sec: epoch,
            tv_nsec: 0,
        },
    };
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d)? {
            let e = e?;
            let m = e.metadata()?;
            if m.mtime() > epoch || (m.mtime() == epoch && m.mtime_nsec() > 0) {
                utimensat(CWD, e.path(), &times, AtFlags::SYMLINK_NOFOLLOW)?;
            }
            if m.is_dir() {
                dirs.push(e.path());
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::unix::fs::MetadataExt;

    fn compress(data: &[u8]) -> Vec<u8> {
        let mut gz = layer_encoder(Vec::new());
        // Written in pieces, as the tar writer does, so block handling is what a build sees.
        for piece in data.chunks(10_000) {
            gz.write_all(piece).unwrap();
        }
        gz.finish().unwrap()
    }

    /// Incompressible content (random bytes) is stored, not coded: Docker's push of the same
    /// content was 5.4 % smaller than berth's level-1 ("quick") layers.
    #[test]
    fn incompressible_content_is_stored() {
        // A xorshift stream: incompressible, and the same bytes on every run.
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let data: Vec<u8> = (0..8 << 20)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect();
        let out = compress(&data);
        let overhead = out.len() as f64 / data.len() as f64 - 1.0;
        assert!(
            overhead < 0.001,
            "{} bytes became {} ({:.3} % larger)",
            data.len(),
            out.len(),
            overhead * 100.0
        );
    }

    #[test]
    fn same_input_same_bytes() {
        let data: Vec<u8> = (0..1_000_000u32)
            .flat_map(|i| (i % 977).to_le_bytes())
            .collect();
        let a = compress(&data);
        assert_eq!(a, compress(&data));
        assert!(a.len() < data.len() / 4, "text-like data compresses");
        // The fixed header: no mtime, no name, OS 255.
        assert_eq!(&a[..10], &[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255]);
    }

    #[test]
    fn clamps_later_mtimes_only_and_not_through_symlinks() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("upper");
        std::fs::create_dir_all(root.join("a/b")).unwrap();
        std::fs::write(root.join("a/b/new"), "n").unwrap();
        std::fs::write(root.join("old"), "o").unwrap();
        let old = std::fs::File::options()
            .write(true)
            .open(root.join("old"))
            .unwrap();
        old.set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(1000))
            .unwrap();
        let outside = d.path().join("outside");
        std::fs::write(&outside, "x").unwrap();
        std::os::unix::fs::symlink(&outside, root.join("link")).unwrap();
        let before = std::fs::metadata(&outside).unwrap().mtime();

        clamp_mtimes(&root, 5000).unwrap();
        let m = |p: &str| std::fs::symlink_metadata(root.join(p)).unwrap().mtime();
        assert_eq!(m("a"), 5000);
        assert_eq!(m("a/b"), 5000);
        assert_eq!(m("a/b/new"), 5000);
        assert_eq!(m("old"), 1000, "an earlier mtime is kept");
        assert_eq!(m("link"), 5000);
        assert_eq!(std::fs::metadata(&outside).unwrap().mtime(), before);
    }
}
