//! One operation's staging area and journal.
//!
//! An [`Op`] owns `tmp/<random>/` for as long as it lives and holds an exclusive `flock` on
//! `tmp/<random>/lock`, so another process can tell a live operation from a dead one. Before an
//! operation renames something into `blobs/` or `layers/`, or moves something out of them, it
//! appends the move to `tmp/<random>/journal` and syncs it. Recovery of a dead operation replays
//! that journal against the database (see `Store::recover`).
//!
//! Creating `tmp/<random>/` and locking its `lock` are two steps; a recovery in another
//! process that looked in between would take the operation for dead and remove its directory.
//! So creators hold `tmp/.create.lock` shared while they make and lock their directory, and
//! recovery holds it exclusively while it decides which operations are dead.

use crate::error::{IoContext, StoreError};
use berth_oci::digest::Hasher;
use berth_oci::Digest;
use rustix::fs::{flock, FlockOperation};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Creates `dir` with mode 0700 exactly (an operation's staging area is root's alone).
fn private_dir(dir: &Path) -> Result<(), StoreError> {
    fs::DirBuilder::new()
        .mode(0o700)
        .create(dir)
        .and_then(|()| fs::set_permissions(dir, fs::Permissions::from_mode(0o700)))
        .ctx(|| format!("creating {}", dir.display()))
}

/// Creates (truncating) `path` with mode 0600, whatever the umask.
fn private_file(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
}

/// A journalled move, as recorded in an operation's journal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum JournalEntry {
    /// `path` was (or was about to be) renamed into place; it is garbage unless the DB has it.
    Placed(PathBuf),
    /// `from` was (or was about to be) moved to `to` for deletion; if the DB still has it, move
    /// it back.
    Trashed { from: PathBuf, to: PathBuf },
}

pub struct Op {
    dir: PathBuf,
    journal: File,
    _lock: File,
    seq: u64,
    finished: bool,
}

impl Op {
    pub(crate) fn begin(tmp_root: &Path) -> Result<Op, StoreError> {
        let _creating = creation_lock(tmp_root, FlockOperation::LockShared)?;
        let name = format!("{OP_PREFIX}{:016x}", rand::random::<u64>());
        let dir = tmp_root.join(name);
        private_dir(&dir)?;
        let lock = private_file(&dir.join("lock"))
            .ctx(|| format!("creating lock in {}", dir.display()))?;
        flock(&lock, FlockOperation::NonBlockingLockExclusive)
            .map_err(|e| StoreError::io(format!("locking {}", dir.display()), e.into()))?;
        let journal = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(dir.join("journal"))
            .ctx(|| format!("creating journal in {}", dir.display()))?;
        Ok(Op {
            dir,
            journal,
            _lock: lock,
            seq: 0,
            finished: false,
        })
    }

    /// The staging directory of this operation.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn next_path(&mut self, prefix: &str) -> PathBuf {
        self.seq += 1;
        self.dir.join(format!("{prefix}-{}", self.seq))
    }

    /// A writer for a new blob, staged in this operation until the image that uses it is
    /// committed.
    pub fn blob_writer(&mut self) -> Result<BlobWriter, StoreError> {
        let path = self.next_path("blob");
        // A blob is never readable by another user, whatever the umask.
        let file = private_file(&path).ctx(|| format!("creating {}", path.display()))?;
        Ok(BlobWriter {
            path,
            file: io::BufWriter::with_capacity(1 << 20, file),
            hash: BlobHash::Computed(Hasher::new()),
        })
    }

    /// A writer for a blob whose bytes the caller verifies against `digest` as they stream
    /// (a registry download: the client hashes every byte and fails the stream on a mismatch),
    /// so that they are not hashed a second time here. The caller must not call
    /// [`BlobWriter::finish`] unless that verification passed over every byte written.
    pub fn verified_blob_writer(&mut self, digest: &Digest) -> Result<BlobWriter, StoreError> {
        let mut w = self.blob_writer()?;
        w.hash = BlobHash::Verified {
            digest: digest.clone(),
            len: 0,
        };
        Ok(w)
    }

    /// Writes `bytes` as a staged blob.
    pub fn stage_bytes(&mut self, bytes: &[u8]) -> Result<StagedBlob, StoreError> {
        let mut w = self.blob_writer()?;
        w.write_all(bytes)
            .ctx(|| format!("writing {}", w.path.display()))?;
        w.finish(None)
    }

    /// An empty directory to unpack a layer into.
    pub fn layer_dir(&mut self) -> Result<StagedLayer, StoreError> {
        let path = self.next_path("layer");
        // 0755, the mode of an image's root when its archive does not say; `layers/` (0700) is
        // what keeps other users out, as Docker's `overlay2/<id>/` (0710) holds `diff/`.
        fs::DirBuilder::new()
            .mode(0o755)
            .create(&path)
            .and_then(|()| fs::set_permissions(&path, fs::Permissions::from_mode(0o755)))
            .ctx(|| format!("creating {}", path.display()))?;
        Ok(StagedLayer { path })
    }

    /// A fresh path inside the staging area (not created).
    pub fn scratch_path(&mut self, prefix: &str) -> PathBuf {
        self.next_path(prefix)
    }

    pub(crate) fn journal(&mut self, entry: &JournalEntry) -> Result<(), StoreError> {
        let line = match entry {
            JournalEntry::Placed(p) => format!("placed\t{}\n", p.display()),
            JournalEntry::Trashed { from, to } => {
                format!("trashed\t{}\t{}\n", from.display(), to.display())
            }
        };
        self.journal
            .write_all(line.as_bytes())
            .ctx(|| "writing operation journal".into())?;
        self.journal
            .sync_data()
            .ctx(|| "syncing operation journal".into())
    }

    /// Removes the staging area. Called once the operation's database transaction committed (or
    /// it gave up before placing anything).
    pub fn finish(mut self) {
        self.finished = true;
        let _ = fs::remove_dir_all(&self.dir);
    }
}

impl Drop for Op {
    fn drop(&mut self) {
        if !self.finished {
            // An operation that failed still owns only staged files plus journalled moves that
            // were rolled back with its transaction; the next open recovers anything else.
            let _ = self.journal.sync_data();
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

pub(crate) fn read_journal(dir: &Path) -> Vec<JournalEntry> {
    let Ok(text) = fs::read_to_string(dir.join("journal")) else {
        return Vec::new();
    };
    text.lines()
        .filter_map(|line| {
            let mut parts = line.split('\t');
            match (parts.next(), parts.next(), parts.next()) {
                (Some("placed"), Some(p), None) => Some(JournalEntry::Placed(PathBuf::from(p))),
                (Some("trashed"), Some(from), Some(to)) => Some(JournalEntry::Trashed {
                    from: PathBuf::from(from),
                    to: PathBuf::from(to),
                }),
                // A torn last line: the move it describes never started.
                _ => None,
            }
        })
        .collect()
}

/// The name of every operation's directory in `tmp/` starts with this.
pub(crate) const OP_PREFIX: &str = "op-";

/// `tmp/.create.lock`, held `how` until the returned file is dropped (see the module docs).
pub(crate) fn creation_lock(tmp_root: &Path, how: FlockOperation) -> Result<File, StoreError> {
    let path = tmp_root.join(".create.lock");
    let f = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(&path)
        .ctx(|| format!("opening {}", path.display()))?;
    flock(&f, how).map_err(|e| StoreError::io(format!("locking {}", path.display()), e.into()))?;
    Ok(f)
}

/// Whether the operation that owns `dir` is still alive (holds its lock).
pub(crate) fn is_live(dir: &Path) -> bool {
    let Ok(lock) = File::open(dir.join("lock")) else {
        // No lock file: the op died while creating its directory.
        return false;
    };
    match flock(&lock, FlockOperation::NonBlockingLockShared) {
        Ok(()) => false,
        Err(_) => true,
    }
}

/// A blob being written: hashed as it goes (or verified by its source, see
/// [`Op::verified_blob_writer`]), fsynced and checked by [`BlobWriter::finish`].
pub struct BlobWriter {
    path: PathBuf,
    file: io::BufWriter<File>,
    hash: BlobHash,
}

enum BlobHash {
    Computed(Hasher),
    /// The digest the writer's source verified; only the length is counted here.
    Verified {
        digest: Digest,
        len: u64,
    },
}

impl BlobWriter {
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Flushes and syncs the blob, and checks it against `expected` when given.
    pub fn finish(
        self,
        expected: Option<(&Digest, Option<u64>)>,
    ) -> Result<StagedBlob, StoreError> {
        let path = self.path;
        let file = self
            .file
            .into_inner()
            .map_err(|e| StoreError::io(format!("writing {}", path.display()), e.into_error()))?;
        file.sync_all()
            .ctx(|| format!("syncing {}", path.display()))?;
        let (digest, size) = match self.hash {
            BlobHash::Computed(h) => {
                let size = h.len();
                (h.finish(), size)
            }
            BlobHash::Verified { digest, len } => (digest, len),
        };
        if let Some((want, want_size)) = expected {
            if *want != digest {
                let _ = fs::remove_file(&path);
                return Err(StoreError::DigestMismatch {
                    expected: want.to_string(),
                    actual: digest.to_string(),
                });
            }
            if let Some(want_size) = want_size {
                if want_size != size {
                    let _ = fs::remove_file(&path);
                    return Err(StoreError::SizeMismatch {
                        digest: digest.to_string(),
                        expected: want_size,
                        actual: size,
                    });
                }
            }
        }
        Ok(StagedBlob { path, digest, size })
    }
}

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        match &mut self.hash {
            BlobHash::Computed(h) => h.update(&buf[..n]),
            BlobHash::Verified { len, .. } => *len += n as u64,
        }
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

/// A complete, verified blob waiting in the staging area.
#[derive(Debug, Clone)]
pub struct StagedBlob {
    pub path: PathBuf,
    pub digest: Digest,
    pub size: u64,
}

/// A directory a layer was unpacked into, waiting in the staging area.
#[derive(Debug, Clone)]
pub struct StagedLayer {
    pub path: PathBuf,
}
