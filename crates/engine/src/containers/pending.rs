//! Markers for container operations in progress (`create`, `rm`), so that the next command can
//! finish or undo what a killed process left.
//!
//! An operation on container `<id>` creates `$ROOT/containers/.pending/.tmp-<id>-<rand>`, takes
//! an exclusive `flock` on it and renames it to `.pending/<id>`; the kernel drops the lock when
//! the process dies, however it dies. Any command may then find a marker whose lock it can take:
//! its owner is dead and the engine repairs the container (see `Engine::recover_containers`).

use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

pub(crate) struct Marker {
    path: PathBuf,
    _file: File,
}

impl Marker {
    /// Creates and locks the marker for `id`.
    pub fn acquire(dir: &Path, id: &str) -> std::io::Result<Marker> {
        berth_runtime::util::create_dir_mode(dir, 0o700)?;
        let mut r = [0u8; 6];
        super::fill_random(&mut r);
        let tmp = dir.join(format!(".tmp-{id}-{}", hex(&r)));
        let file = File::create(&tmp)?;
        rustix::fs::flock(&file, rustix::fs::FlockOperation::LockExclusive)?;
        let path = dir.join(id);
        std::fs::rename(&tmp, &path)?;
        Ok(Marker { path, _file: file })
    }
}

impl Drop for Marker {
    fn drop(&mut self) {
        // Removed while still locked; the lock goes with the file descriptor.
        let _ = std::fs::remove_file(&self.path);
    }
}

/// A dead operation's marker, locked by us until dropped.
pub(crate) struct Orphan {
    pub id: String,
    marker: Marker,
}

impl Orphan {
    pub fn release(self) {
        drop(self.marker);
    }
}

/// Markers whose owner died, each locked by the caller now. Temporary names of markers being
/// created are skipped unless they are old (their creator died between create and rename).
pub(crate) fn orphans(dir: &Path) -> Vec<Orphan> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        let path = e.path();
        if name.starts_with(".tmp-") {
            let old = e
                .metadata()
                .ok()
                .and_then(|m| m.modified().ok())
                .and_then(|t| t.elapsed().ok())
                .map(|d| d.as_secs() > 60)
                .unwrap_or(false);
            if old {
                if let Ok(f) = File::open(&path) {
                    if rustix::fs::flock(&f, rustix::fs::FlockOperation::NonBlockingLockExclusive)
                        .is_ok()
                    {
                        let _ = std::fs::remove_file(&path);
                    }
                }
            }
            continue;
        }
        let Ok(f) = File::open(&path) else { continue };
        if rustix::fs::flock(&f, rustix::fs::FlockOperation::NonBlockingLockExclusive).is_err() {
            continue;
        }
        // The file may have been removed (and maybe re-created) since we opened it.
        let same = match (f.metadata(), std::fs::metadata(&path)) {
            (Ok(a), Ok(b)) => a.ino() == b.ino() && a.dev() == b.dev(),
            _ => false,
        };
        if !same {
            continue;
        }
        out.push(Orphan {
            id: name,
            marker: Marker { path, _file: f },
        });
    }
    out
}

pub(crate) fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
