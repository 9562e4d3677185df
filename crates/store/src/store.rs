use crate::db::{self, CacheRow, ContainerRow, ImageRow, LayerRow};
use crate::error::{IoContext, StoreError};
use crate::op::{self, JournalEntry, Op, StagedBlob, StagedLayer};
use berth_oci::Digest;
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use std::collections::HashMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// The on-disk store. One per process; every method is a short SQLite transaction.
pub struct Store {
    root: PathBuf,
    runroot: PathBuf,
    db_path: PathBuf,
    pub(crate) conn: Connection,
}

/// Past this size the write-ahead log is folded back into the database when a store closes.
/// Commands close without a checkpoint (it costs an fsync each), and a checkpoint run inside a
/// busy process may not finish, so without this the log grows with every write and every
/// later open pays for it (1,000 imports made `image inspect` 10× slower).
const WAL_CHECKPOINT_BYTES: u64 = 4 << 20;

impl Drop for Store {
    fn drop(&mut self) {
        let wal = self.db_path.with_extension("db-wal");
        if std::fs::metadata(&wal)
            .map(|m| m.len() > WAL_CHECKPOINT_BYTES)
            .unwrap_or(false)
        {
            // Best effort: a concurrent reader makes it partial, and the next close retries.
            let _ = self.conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)");
        }
    }
}

/// A blob an image references; `staged` is `None` when the store already has it.
#[derive(Debug, Clone)]
pub struct BlobCommit {
    pub digest: Digest,
    pub size: u64,
    pub media_type: Option<String>,
    pub staged: Option<StagedBlob>,
}

/// One layer of an image being committed; `staged` is `None` when the store already has it.
#[derive(Debug, Clone)]
pub struct LayerCommit {
    pub chain_id: Digest,
    pub diff_id: Digest,
    pub parent: Option<Digest>,
    pub size: u64,
    pub blob: Option<(Digest, String, u64)>,
    pub staged: Option<StagedLayer>,
}

/// Everything that makes an image visible in one transaction.
#[derive(Debug, Clone)]
pub struct ImageCommit {
    pub id: Digest,
    pub config_json: String,
    pub created: String,
    pub manifest: Option<(Digest, String)>,
    pub blobs: Vec<BlobCommit>,
    pub layers: Vec<LayerCommit>,
    pub tags: Vec<String>,
    pub repo_digests: Vec<String>,
    pub parent: Option<String>,
}

/// What deleting an image removed.
#[derive(Debug, Clone, Default)]
pub struct RemovedImage {
    /// Chain IDs and unpacked sizes of the layers removed.
    pub layers: Vec<(String, u64)>,
    /// Digests and sizes of the blobs removed.
    pub blobs: Vec<(String, u64)>,
}

/// The mode of the root, the run root and every directory berth keeps of its own: root's alone
/// (Docker keeps `/var/lib/docker` 0710 for its API socket's group; berth has no such group).
pub const PRIVATE_DIR_MODE: u32 = 0o700;

/// Creates `dir` (its missing parents with the default modes: they are not berth's) and gives
/// it exactly [`PRIVATE_DIR_MODE`], also when it existed with a wider mode.
fn private_dir(dir: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    let ctx = || format!("creating {}", dir.display());
    match fs::DirBuilder::new().mode(PRIVATE_DIR_MODE).create(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if let Some(parent) = dir.parent() {
                fs::create_dir_all(parent).ctx(ctx)?;
            }
            match fs::DirBuilder::new().mode(PRIVATE_DIR_MODE).create(dir) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(StoreError::io(ctx(), e)),
            }
        }
        Err(e) => return Err(StoreError::io(ctx(), e)),
    }
    // Unconditionally: the umask may have narrowed a new one, an older berth left old ones 0755.
    fs::set_permissions(dir, fs::Permissions::from_mode(PRIVATE_DIR_MODE))
        .ctx(|| format!("making {} private", dir.display()))
}

/// Creates the database file with mode 0600 before SQLite does (SQLite gives its WAL and
/// shared-memory files the database's mode), and tightens the three files of an older store.
fn private_db_files(db_path: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let private = fs::Permissions::from_mode(0o600);
    let db = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(db_path)
        .ctx(|| format!("creating {}", db_path.display()))?;
    db.set_permissions(private.clone())
        .ctx(|| format!("making {} private", db_path.display()))?;
    for ext in ["db-wal", "db-shm"] {
        let path = db_path.with_extension(ext);
        match fs::set_permissions(&path, private.clone()) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                return Err(StoreError::io(
                    format!("making {} private", path.display()),
                    e,
                ))
            }
            _ => {}
        }
    }
    Ok(())
}

/// A permission error opening the store, for a caller who is not root, says what to do.
fn needs_root(root: &Path, e: StoreError) -> StoreError {
    match e {
        StoreError::Io { source, .. }
            if source.kind() == io::ErrorKind::PermissionDenied
                && !rustix::process::geteuid().is_root() =>
        {
            StoreError::NeedsRoot(root.to_path_buf())
        }
        e => e,
    }
}

fn now_nanos() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

impl Store {
    /// Opens (creating if needed) the store at `root`, with runtime state under `runroot`, and
    /// recovers whatever dead operations left behind.
    ///
    /// The root and the run root are root's alone: both are made (or, when an older berth left
    /// them open, changed to) mode 0700, the database and its WAL 0600, whatever the umask.
    /// Another user can therefore reach no layer (and no setuid binary or device node in one),
    /// no container's file system, no blob and no list of images or containers. A user who is
    /// not root is told that berth needs root.
    pub fn open(root: &Path, runroot: &Path) -> Result<Store, StoreError> {
        Self::prepare_dirs(root, runroot).map_err(|e| needs_root(root, e))?;
        let db_path = root.join("berth.db");
        private_db_files(&db_path).map_err(|e| needs_root(root, e))?;
        let conn = db::open(&db_path).map_err(|source| StoreError::Db {
            path: db_path.clone(),
            source,
        })?;
        let mut store = Store {
            root: root.to_path_buf(),
            runroot: runroot.to_path_buf(),
            db_path,
            conn,
        };
        store.recover()?;
        Ok(store)
    }

    /// Creates the root's directories with mode 0700 and tightens those an older berth made.
    fn prepare_dirs(root: &Path, runroot: &Path) -> Result<(), StoreError> {
        private_dir(root)?;
        for sub in [
            "blobs",
            "blobs/sha256",
            "layers",
            "tmp",
            "containers",
            "volumes",
        ] {
            private_dir(&root.join(sub))?;
        }
        private_dir(runroot)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn runroot(&self) -> &Path {
        &self.runroot
    }

    pub(crate) fn db_err(&self, source: rusqlite::Error) -> StoreError {
        StoreError::Db {
            path: self.db_path.clone(),
            source,
        }
    }

    /// Direct access to the database, for engine modules that keep their own tables' rows in
    /// the store's transactions.
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    pub fn begin_op(&self) -> Result<Op, StoreError> {
        Op::begin(&self.root.join("tmp"))
    }

    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.root.join("blobs/sha256").join(digest.hex())
    }

    pub fn layer_path(&self, chain_id: &Digest) -> PathBuf {
        self.root.join("layers").join(chain_id.hex())
    }

    /// Finishes or undoes the journals of operations whose process died.
    fn recover(&mut self) -> Result<(), StoreError> {
        let tmp = self.root.join("tmp");
        let ops = || -> Result<Vec<PathBuf>, StoreError> {
            Ok(fs::read_dir(&tmp)
                .ctx(|| format!("reading {}", tmp.display()))?
                .filter_map(|e| e.ok())
                .filter(|e| e.file_name().to_string_lossy().starts_with(op::OP_PREFIX))
                .map(|e| e.path())
                .collect())
        };
        if ops()?.is_empty() {
            return Ok(());
        }
        // No operation is between creating its directory and locking it while this is held;
        // one found dead stays dead, so the lock is not needed past the check.
        let dead: Vec<PathBuf> = {
            let _creating = op::creation_lock(&tmp, rustix::fs::FlockOperation::LockExclusive)?;
            ops()?.into_iter().filter(|p| !op::is_live(p)).collect()
        };
        if dead.is_empty() {
            return Ok(());
        }
        for dir in dead {
            let journal = op::read_journal(&dir);
            if !journal.is_empty() {
                let tx = rusqlite::Transaction::new_unchecked(
                    &self.conn,
                    TransactionBehavior::Immediate,
                )
                .map_err(|e| self.db_err(e))?;
                for entry in journal {
                    match entry {
                        JournalEntry::Placed(path) => {
                            if self.is_store_path(&path) && !self.recorded(&tx, &path)? {
                                remove_path(&path);
                            }
                        }
                        JournalEntry::Trashed { from, to } => {
                            if self.is_store_path(&from)
                                && self.recorded(&tx, &from)?
                                && !from.exists()
                                && to.exists()
                            {
                                fs::rename(&to, &from)
                                    .ctx(|| format!("restoring {}", from.display()))?;
                            }
                        }
                    }
                }
                tx.commit().map_err(|e| self.db_err(e))?;
            }
            remove_path(&dir);
        }
        Ok(())
    }

    fn is_store_path(&self, path: &Path) -> bool {
        path.starts_with(self.root.join("blobs/sha256"))
            || path.starts_with(self.root.join("layers"))
    }

    /// Whether the database has a row for a file under `blobs/` or `layers/`.
    fn recorded(&self, conn: &Connection, path: &Path) -> Result<bool, StoreError> {
        let Some(hex) = path.file_name().and_then(|n| n.to_str()) else {
            return Ok(false);
        };
        let key = format!("sha256:{hex}");
        let sql = if path.starts_with(self.root.join("layers")) {
            "SELECT 1 FROM layers WHERE chain_id = ?1"
        } else {
            "SELECT 1 FROM blobs WHERE digest = ?1"
        };
        conn.query_row(sql, [key], |_| Ok(()))
            .optional()
            .map(|r| r.is_some())
            .map_err(|e| self.db_err(e))
    }

    pub fn has_layer(&self, chain_id: &Digest) -> Result<bool, StoreError> {
        self.conn
            .query_row(
                "SELECT 1 FROM layers WHERE chain_id = ?1",
                [chain_id.to_string()],
                |_| Ok(()),
            )
            .optional()
            .map(|r| r.is_some())
            .map_err(|e| self.db_err(e))
    }

    pub fn has_blob(&self, digest: &Digest) -> Result<bool, StoreError> {
        self.conn
            .query_row(
                "SELECT 1 FROM blobs WHERE digest = ?1",
                [digest.to_string()],
                |_| Ok(()),
            )
            .optional()
            .map(|r| r.is_some())
            .map_err(|e| self.db_err(e))
    }

    /// Makes an image visible: places its staged blobs and layers and records everything in
    /// one write transaction.
    pub fn commit_image(&mut self, op: &mut Op, commit: &ImageCommit) -> Result<(), StoreError> {
        // Staged layer directories were written without per-file fsync; make them durable
        // before anything points at them.
        if commit.layers.iter().any(|l| l.staged.is_some()) {
            sync_filesystem(op.dir())?;
        }
        let tx = rusqlite::Transaction::new_unchecked(&self.conn, TransactionBehavior::Immediate)
            .map_err(|e| StoreError::Db {
            path: self.db_path.clone(),
            source: e,
        })?;
        let db_err = |e| StoreError::Db {
            path: self.db_path.clone(),
            source: e,
        };
        for blob in &commit.blobs {
            self.place_blob(&tx, op, blob)?;
        }
        for layer in &commit.layers {
            self.place_layer(&tx, op, layer)?;
        }
        let id = commit.id.to_string();
        let size: u64 = commit.layers.iter().map(|l| l.size).sum();
        let inserted = tx
            .execute(
                "INSERT OR IGNORE INTO images (id, config, manifest_digest, manifest_media_type, created, added, size, parent)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    id,
                    commit.config_json,
                    commit.manifest.as_ref().map(|m| m.0.to_string()),
                    commit.manifest.as_ref().map(|m| m.1.clone()),
                    commit.created,
                    now_nanos(),
                    size as i64,
                    commit.parent
                ],
            )
            .map_err(db_err)?;
        if inserted == 1 {
            for (idx, layer) in commit.layers.iter().enumerate() {
                tx.execute(
                    "INSERT INTO image_layers (image_id, idx, chain_id) VALUES (?1, ?2, ?3)",
                    params![id, idx as i64, layer.chain_id.to_string()],
                )
                .map_err(db_err)?;
            }
        }
        for blob in &commit.blobs {
            tx.execute(
                "INSERT OR IGNORE INTO image_blobs (image_id, digest) VALUES (?1, ?2)",
                params![id, blob.digest.to_string()],
            )
            .map_err(db_err)?;
        }
        for tag in &commit.tags {
            tx.execute(
                "INSERT OR REPLACE INTO tags (name, image_id) VALUES (?1, ?2)",
                params![tag, id],
            )
            .map_err(db_err)?;
        }
        for name in &commit.repo_digests {
            tx.execute(
                "INSERT OR IGNORE INTO repo_digests (name, image_id) VALUES (?1, ?2)",
                params![name, id],
            )
            .map_err(db_err)?;
        }
        tx.commit().map_err(db_err)?;
        Ok(())
    }

    /// All images with their tags and digests.
    pub fn images(&self) -> Result<Vec<ImageRow>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT id, config, manifest_digest, manifest_media_type, created, added, size, parent FROM images",
            )
            .map_err(|e| self.db_err(e))?;
        let mut images: Vec<ImageRow> = stmt
            .query_map([], row_to_image)
            .map_err(|e| self.db_err(e))?
            .collect::<Result<_, _>>()
            .map_err(|e| self.db_err(e))?;
        let mut index: HashMap<String, usize> = HashMap::with_capacity(images.len());
        for (i, img) in images.iter().enumerate() {
            index.insert(img.id.clone(), i);
        }
        for (table, is_tag) in [("tags", true), ("repo_digests", false)] {
            let mut stmt = self
                .conn
                .prepare_cached(&format!("SELECT name, image_id FROM {table} ORDER BY name"))
                .map_err(|e| self.db_err(e))?;
            let rows = stmt
                .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
                .map_err(|e| self.db_err(e))?;
            for row in rows {
                let (name, image_id) = row.map_err(|e| self.db_err(e))?;
                if let Some(&i) = index.get(&image_id) {
                    if is_tag {
                        images[i].tags.push(name);
                    } else {
                        images[i].repo_digests.push(name);
                    }
                }
            }
        }
        Ok(images)
    }

    /// One image by full ID (`sha256:<hex>`).
    pub fn image(&self, id: &str) -> Result<Option<ImageRow>, StoreError> {
        let img = self
            .conn
            .query_row(
                "SELECT id, config, manifest_digest, manifest_media_type, created, added, size, parent FROM images WHERE id = ?1",
                [id],
                row_to_image,
            )
            .optional()
            .map_err(|e| self.db_err(e))?;
        let Some(mut img) = img else { return Ok(None) };
        img.tags = self.names_for("tags", id)?;
        img.repo_digests = self.names_for("repo_digests", id)?;
        Ok(Some(img))
    }

    fn names_for(&self, table: &str, id: &str) -> Result<Vec<String>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(&format!(
                "SELECT name FROM {table} WHERE image_id = ?1 ORDER BY name"
            ))
            .map_err(|e| self.db_err(e))?;
        let names = stmt
            .query_map([id], |r| r.get(0))
            .map_err(|e| self.db_err(e))?
            .collect::<Result<_, _>>()
            .map_err(|e| self.db_err(e))?;
        Ok(names)
    }

    /// Image IDs starting with `prefix` (hex digits, with or without `sha256:`).
    pub fn image_ids_with_prefix(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        let hex = prefix.strip_prefix("sha256:").unwrap_or(prefix);
        if hex.is_empty() || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(Vec::new());
        }
        let pattern = format!("sha256:{}%", hex.to_ascii_lowercase());
        let mut stmt = self
            .conn
            .prepare_cached("SELECT id FROM images WHERE id LIKE ?1 LIMIT 2")
            .map_err(|e| self.db_err(e))?;
        let ids = stmt
            .query_map([pattern], |r| r.get(0))
            .map_err(|e| self.db_err(e))?
            .collect::<Result<_, _>>()
            .map_err(|e| self.db_err(e))?;
        Ok(ids)
    }

    /// The image a normalised tag or repo digest names.
    pub fn resolve_name(&self, name: &str) -> Result<Option<String>, StoreError> {
        let table = if name.contains('@') {
            "repo_digests"
        } else {
            "tags"
        };
        self.conn
            .query_row(
                &format!("SELECT image_id FROM {table} WHERE name = ?1"),
                [name],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.db_err(e))
    }

    /// The image's layers, bottom first.
    pub fn image_layers(&self, id: &str) -> Result<Vec<LayerRow>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT l.chain_id, l.diff_id, l.parent, l.size, l.blob_digest, l.blob_media_type, l.blob_size
                 FROM image_layers il JOIN layers l ON l.chain_id = il.chain_id
                 WHERE il.image_id = ?1 ORDER BY il.idx",
            )
            .map_err(|e| self.db_err(e))?;
        let layers = stmt
            .query_map([id], row_to_layer)
            .map_err(|e| self.db_err(e))?
            .collect::<Result<_, _>>()
            .map_err(|e| self.db_err(e))?;
        Ok(layers)
    }

    /// One layer by chain ID.
    pub fn layer(&self, chain_id: &Digest) -> Result<Option<LayerRow>, StoreError> {
        self.conn
            .query_row(
                "SELECT chain_id, diff_id, parent, size, blob_digest, blob_media_type, blob_size FROM layers WHERE chain_id = ?1",
                [chain_id.to_string()],
                row_to_layer,
            )
            .optional()
            .map_err(|e| self.db_err(e))
    }

    /// Points `name` at `image_id`; returns the image it pointed at before, if another.
    pub fn set_tag(&mut self, name: &str, image_id: &str) -> Result<Option<String>, StoreError> {
        let tx = rusqlite::Transaction::new_unchecked(&self.conn, TransactionBehavior::Immediate)
            .map_err(|e| StoreError::Db {
            path: self.db_path.clone(),
            source: e,
        })?;
        let db_err = |e| StoreError::Db {
            path: self.db_path.clone(),
            source: e,
        };
        let previous: Option<String> = tx
            .query_row("SELECT image_id FROM tags WHERE name = ?1", [name], |r| {
                r.get(0)
            })
            .optional()
            .map_err(db_err)?;
        let exists = tx
            .query_row("SELECT 1 FROM images WHERE id = ?1", [image_id], |_| Ok(()))
            .optional()
            .map_err(db_err)?
            .is_some();
        if !exists {
            return Err(StoreError::ImageNotFound(image_id.to_string()));
        }
        tx.execute(
            "INSERT OR REPLACE INTO tags (name, image_id) VALUES (?1, ?2)",
            params![name, image_id],
        )
        .map_err(db_err)?;
        tx.commit().map_err(db_err)?;
        Ok(previous.filter(|p| p != image_id))
    }

    /// Removes a tag or repo digest name; returns whether it existed.
    pub fn remove_name(&mut self, name: &str) -> Result<bool, StoreError> {
        let table = if name.contains('@') {
            "repo_digests"
        } else {
            "tags"
        };
        let n = self
            .conn
            .execute(&format!("DELETE FROM {table} WHERE name = ?1"), [name])
            .map_err(|e| self.db_err(e))?;
        Ok(n > 0)
    }

    /// Deletes an image record and every layer and blob no other image uses.
    pub fn delete_image(&mut self, id: &str) -> Result<RemovedImage, StoreError> {
        let mut op = self.begin_op()?;
        let removed;
        {
            let tx =
                rusqlite::Transaction::new_unchecked(&self.conn, TransactionBehavior::Immediate)
                    .map_err(|e| StoreError::Db {
                        path: self.db_path.clone(),
                        source: e,
                    })?;
            let db_err = |e| StoreError::Db {
                path: self.db_path.clone(),
                source: e,
            };
            let n = tx
                .execute("DELETE FROM images WHERE id = ?1", [id])
                .map_err(db_err)?;
            if n == 0 {
                return Err(StoreError::ImageNotFound(id.to_string()));
            }
            removed = self.delete_unused(&tx, &mut op)?;
            tx.commit().map_err(db_err)?;
        }
        // The trash goes with the staging area, outside the write lock.
        op.finish();
        Ok(removed)
    }

    /// Inside `tx`: deletes the rows of every layer and blob that nothing needs any more and
    /// moves their files into `op`'s staging area (removed with it, after the commit).
    fn delete_unused(
        &self,
        tx: &rusqlite::Transaction<'_>,
        op: &mut Op,
    ) -> Result<RemovedImage, StoreError> {
        let db_err = |e| self.db_err(e);
        let removed = RemovedImage {
            layers: collect_sized(tx, db::UNUSED_LAYERS_SQL).map_err(db_err)?,
            blobs: collect_sized(tx, db::UNUSED_BLOBS_SQL).map_err(db_err)?,
        };
        for (chain, _) in &removed.layers {
            tx.execute("DELETE FROM layers WHERE chain_id = ?1", [chain])
                .map_err(db_err)?;
            let digest: Digest = chain
                .parse()
                .map_err(|_| StoreError::Corrupt(format!("layer id {chain}")))?;
            self.trash(op, &self.layer_path(&digest))?;
        }
        for (blob, _) in &removed.blobs {
            tx.execute("DELETE FROM blobs WHERE digest = ?1", [blob])
                .map_err(db_err)?;
            let digest: Digest = blob
                .parse()
                .map_err(|_| StoreError::Corrupt(format!("blob id {blob}")))?;
            self.trash(op, &self.blob_path(&digest))?;
        }
        Ok(removed)
    }

    fn trash(&self, op: &mut Op, path: &Path) -> Result<(), StoreError> {
        if !path.exists() {
            return Ok(());
        }
        let to = op.scratch_path("trash");
        op.journal(&JournalEntry::Trashed {
            from: path.to_path_buf(),
            to: to.clone(),
        })?;
        fs::rename(path, &to).ctx(|| format!("removing {}", path.display()))
    }

    /// Opens a stored blob for reading.
    pub fn open_blob(&self, digest: &Digest) -> Result<fs::File, StoreError> {
        let path = self.blob_path(digest);
        fs::File::open(&path).map_err(|e| {
            if e.kind() == io::ErrorKind::NotFound {
                StoreError::BlobMissing(digest.to_string())
            } else {
                StoreError::io(format!("opening {}", path.display()), e)
            }
        })
    }

    pub fn read_blob(&self, digest: &Digest) -> Result<Vec<u8>, StoreError> {
        let path = self.blob_path(digest);
        fs::read(&path).map_err(|e| {
            if e.kind() == io::ErrorKind::NotFound {
                StoreError::BlobMissing(digest.to_string())
            } else {
                StoreError::io(format!("reading {}", path.display()), e)
            }
        })
    }

    /// The blobs of image `id` with media type `media_type` (records stored with it, such as a
    /// build's provenance), as (digest, size), ordered by digest.
    pub fn image_blobs_of_type(
        &self,
        id: &str,
        media_type: &str,
    ) -> Result<Vec<(String, u64)>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT b.digest, b.size FROM image_blobs ib JOIN blobs b ON b.digest = ib.digest
                 WHERE ib.image_id = ?1 AND b.media_type = ?2 ORDER BY b.digest",
            )
            .map_err(|e| self.db_err(e))?;
        let rows = stmt
            .query_map(params![id, media_type], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u64))
            })
            .map_err(|e| self.db_err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.db_err(e))
    }

    /// Counts for `info`: (images, layers, blobs, containers).
    pub fn counts(&self) -> Result<(u64, u64, u64, u64), StoreError> {
        let count = |sql: &str| -> Result<u64, StoreError> {
            self.conn
                .query_row(sql, [], |r| r.get::<_, i64>(0))
                .map(|n| n as u64)
                .map_err(|e| self.db_err(e))
        };
        Ok((
            count("SELECT COUNT(*) FROM images")?,
            count("SELECT COUNT(*) FROM layers")?,
            count("SELECT COUNT(*) FROM blobs")?,
            count("SELECT COUNT(*) FROM containers")?,
        ))
    }

    /// Containers created from `image_id`.
    pub fn containers_using_image(&self, image_id: &str) -> Result<Vec<ContainerRow>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT id, name, image_id, created, record FROM containers WHERE image_id = ?1",
            )
            .map_err(|e| self.db_err(e))?;
        let rows = stmt
            .query_map([image_id], row_to_container)
            .map_err(|e| self.db_err(e))?
            .collect::<Result<_, _>>()
            .map_err(|e| self.db_err(e))?;
        Ok(rows)
    }

    /// Inserts a container row, checking the name in the same write transaction: returns
    /// `Ok(Err(id))` with the ID of the container that already holds the name.
    pub fn insert_container(
        &mut self,
        row: &ContainerRow,
    ) -> Result<Result<(), String>, StoreError> {
        let tx = rusqlite::Transaction::new_unchecked(&self.conn, TransactionBehavior::Immediate)
            .map_err(|e| self.db_err(e))?;
        let holder: Option<String> = tx
            .query_row(
                "SELECT id FROM containers WHERE name = ?1",
                [&row.name],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.db_err(e))?;
        if let Some(id) = holder {
            return Ok(Err(id));
        }
        tx.execute(
            "INSERT INTO containers (id, name, image_id, created, record) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![row.id, row.name, row.image_id, row.created, row.record],
        )
        .map_err(|e| self.db_err(e))?;
        tx.commit().map_err(|e| self.db_err(e))?;
        Ok(Ok(()))
    }

    /// Replaces a container's record JSON; returns whether the container exists.
    pub fn update_container_record(&mut self, id: &str, record: &str) -> Result<bool, StoreError> {
        let n = self
            .conn
            .execute(
                "UPDATE containers SET record = ?2 WHERE id = ?1",
                params![id, record],
            )
            .map_err(|e| self.db_err(e))?;
        Ok(n > 0)
    }

    /// Replaces the records of several containers in one write transaction (one commit for
    /// a multi-name `rm` instead of one per container).
    pub fn update_container_records(&mut self, rows: &[(&str, &str)]) -> Result<(), StoreError> {
        let tx = rusqlite::Transaction::new_unchecked(&self.conn, TransactionBehavior::Immediate)
            .map_err(|e| self.db_err(e))?;
        {
            let mut stmt = tx
                .prepare_cached("UPDATE containers SET record = ?2 WHERE id = ?1")
                .map_err(|e| self.db_err(e))?;
            for (id, record) in rows {
                stmt.execute(params![id, record])
                    .map_err(|e| self.db_err(e))?;
            }
        }
        tx.commit().map_err(|e| self.db_err(e))
    }

    /// Renames a container: `Ok(Err(id))` when another container holds `name`.
    pub fn rename_container(
        &mut self,
        id: &str,
        name: &str,
    ) -> Result<Result<(), String>, StoreError> {
        let tx = rusqlite::Transaction::new_unchecked(&self.conn, TransactionBehavior::Immediate)
            .map_err(|e| self.db_err(e))?;
        let holder: Option<String> = tx
            .query_row("SELECT id FROM containers WHERE name = ?1", [name], |r| {
                r.get(0)
            })
            .optional()
            .map_err(|e| self.db_err(e))?;
        if let Some(other) = holder {
            if other != id {
                return Ok(Err(other));
            }
        }
        tx.execute(
            "UPDATE containers SET name = ?2 WHERE id = ?1",
            params![id, name],
        )
        .map_err(|e| self.db_err(e))?;
        tx.commit().map_err(|e| self.db_err(e))?;
        Ok(Ok(()))
    }

    /// Deletes a container row; returns whether it existed.
    pub fn delete_container(&mut self, id: &str) -> Result<bool, StoreError> {
        let n = self
            .conn
            .execute("DELETE FROM containers WHERE id = ?1", [id])
            .map_err(|e| self.db_err(e))?;
        Ok(n > 0)
    }

    /// Deletes several container rows in one write transaction.
    pub fn delete_containers(&mut self, ids: &[&str]) -> Result<(), StoreError> {
        let tx = rusqlite::Transaction::new_unchecked(&self.conn, TransactionBehavior::Immediate)
            .map_err(|e| self.db_err(e))?;
        {
            let mut stmt = tx
                .prepare_cached("DELETE FROM containers WHERE id = ?1")
                .map_err(|e| self.db_err(e))?;
            for id in ids {
                stmt.execute([id]).map_err(|e| self.db_err(e))?;
            }
        }
        tx.commit().map_err(|e| self.db_err(e))
    }

    /// The container with this exact ID.
    pub fn container(&self, id: &str) -> Result<Option<ContainerRow>, StoreError> {
        self.container_where("id = ?1", id)
    }

    /// The container with this exact name (without Docker's leading slash).
    pub fn container_by_name(&self, name: &str) -> Result<Option<ContainerRow>, StoreError> {
        self.container_where("name = ?1", name)
    }

    fn container_where(&self, cond: &str, arg: &str) -> Result<Option<ContainerRow>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(&format!(
                "SELECT id, name, image_id, created, record FROM containers WHERE {cond}"
            ))
            .map_err(|e| self.db_err(e))?;
        stmt.query_row([arg], row_to_container)
            .optional()
            .map_err(|e| self.db_err(e))
    }

    /// IDs of containers starting with `prefix` (lower-case hex).
    pub fn container_ids_with_prefix(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT id FROM containers WHERE id >= ?1 AND id < ?2 LIMIT 2")
            .map_err(|e| self.db_err(e))?;
        let upper = format!("{prefix}\u{10ffff}");
        let rows = stmt
            .query_map(params![prefix, upper], |r| r.get(0))
            .map_err(|e| self.db_err(e))?
            .collect::<Result<_, _>>()
            .map_err(|e| self.db_err(e))?;
        Ok(rows)
    }

    /// All containers, newest first.
    ///
    /// Read in table order and sorted here: with 10,000 containers, walking the `created`
    /// index costs a b-tree seek per row (ps -a: 27.7 ms against 22.9), and table order is
    /// already creation order but for concurrent creates, so the sort has little to do.
    pub fn containers(&self) -> Result<Vec<ContainerRow>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT id, name, image_id, created, record FROM containers ORDER BY rowid DESC",
            )
            .map_err(|e| self.db_err(e))?;
        let mut rows: Vec<ContainerRow> = stmt
            .query_map([], row_to_container)
            .map_err(|e| self.db_err(e))?
            .collect::<Result<_, _>>()
            .map_err(|e| self.db_err(e))?;
        rows.sort_by_key(|r| std::cmp::Reverse(r.created));
        Ok(rows)
    }
}

fn row_to_image(r: &rusqlite::Row<'_>) -> rusqlite::Result<ImageRow> {
    Ok(ImageRow {
        id: r.get(0)?,
        config: r.get(1)?,
        manifest_digest: r.get(2)?,
        manifest_media_type: r.get(3)?,
        created: r.get(4)?,
        added: r.get(5)?,
        size: r.get::<_, i64>(6)? as u64,
        parent: r.get(7)?,
        tags: Vec::new(),
        repo_digests: Vec::new(),
    })
}

fn row_to_layer(r: &rusqlite::Row<'_>) -> rusqlite::Result<LayerRow> {
    Ok(LayerRow {
        chain_id: r.get(0)?,
        diff_id: r.get(1)?,
        parent: r.get(2)?,
        size: r.get::<_, i64>(3)? as u64,
        blob_digest: r.get(4)?,
        blob_media_type: r.get(5)?,
        blob_size: r.get::<_, Option<i64>>(6)?.map(|s| s as u64),
    })
}

fn row_to_container(r: &rusqlite::Row<'_>) -> rusqlite::Result<ContainerRow> {
    Ok(ContainerRow {
        id: r.get(0)?,
        name: r.get(1)?,
        image_id: r.get(2)?,
        created: r.get(3)?,
        record: r.get(4)?,
    })
}

fn collect_sized(conn: &Connection, sql: &str) -> rusqlite::Result<Vec<(String, u64)>> {
    let mut stmt = conn.prepare(sql)?;
    let rows = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as u64)))?
        .collect();
    rows
}

fn remove_path(path: &Path) {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => {
            let _ = fs::remove_dir_all(path);
        }
        Ok(_) => {
            let _ = fs::remove_file(path);
        }
        Err(_) => {}
    }
}

fn sync_filesystem(any_path: &Path) -> Result<(), StoreError> {
    let dir = fs::File::open(any_path).ctx(|| format!("opening {}", any_path.display()))?;
    rustix::fs::syncfs(&dir).map_err(|e| StoreError::io("syncing the store's filesystem", e.into()))
}

/// The build cache (`berth build`, `berth builder prune`).
impl Store {
    /// The cache row for `key`, if any.
    pub fn cache_get(&self, key: &str) -> Result<Option<CacheRow>, StoreError> {
        self.conn
            .query_row(
                "SELECT key, layer, created FROM build_cache WHERE key = ?1",
                [key],
                |r| {
                    Ok(CacheRow {
                        key: r.get(0)?,
                        layer: r.get(1)?,
                        created: r.get(2)?,
                    })
                },
            )
            .optional()
            .map_err(|e| self.db_err(e))
    }

    /// Places `blob` unless the store has it: see [`Store::place`].
    fn place_blob(
        &self,
        tx: &rusqlite::Transaction<'_>,
        op: &mut Op,
        blob: &BlobCommit,
    ) -> Result<(), StoreError> {
        let key = blob.digest.to_string();
        if self.row_exists(tx, "SELECT 1 FROM blobs WHERE digest = ?1", &key)? {
            return Ok(());
        }
        let Some(staged) = &blob.staged else {
            return Err(StoreError::BlobMissing(key));
        };
        self.place(op, &staged.path, &self.blob_path(&blob.digest), || {
            tx.execute(
                "INSERT INTO blobs (digest, size, media_type) VALUES (?1, ?2, ?3)",
                params![key, blob.size as i64, blob.media_type],
            )
        })
    }

    /// Places `layer` unless the store has it: see [`Store::place`].
    fn place_layer(
        &self,
        tx: &rusqlite::Transaction<'_>,
        op: &mut Op,
        layer: &LayerCommit,
    ) -> Result<(), StoreError> {
        let key = layer.chain_id.to_string();
        if self.row_exists(tx, "SELECT 1 FROM layers WHERE chain_id = ?1", &key)? {
            return Ok(());
        }
        let Some(staged) = &layer.staged else {
            return Err(StoreError::Corrupt(format!(
                "layer {key} is neither stored nor staged"
            )));
        };
        self.place(op, &staged.path, &self.layer_path(&layer.chain_id), || {
            insert_layer_row(tx, &key, layer)
        })
    }

    /// The crash rule for one object, the only place it is written: journal `placed`, rename
    /// the staged file or directory to `target`, insert its row with `insert` (in the caller's
    /// write transaction, which commits later). A process that dies after the rename and before
    /// the commit leaves a journalled path without a row, which the next open removes
    /// ([`Store::recover`]). The caller holds the write lock and saw no row, so a `target` that
    /// exists is a dead operation's leftover: it is moved aside into the operation's scratch
    /// area (a directory cannot be renamed over a non-empty one).
    fn place(
        &self,
        op: &mut Op,
        staged: &Path,
        target: &Path,
        insert: impl FnOnce() -> rusqlite::Result<usize>,
    ) -> Result<(), StoreError> {
        op.journal(&JournalEntry::Placed(target.to_path_buf()))?;
        if let Err(e) = fs::rename(staged, target) {
            if !target.exists() {
                return Err(StoreError::io(format!("placing {}", target.display()), e));
            }
            let junk = op.scratch_path("orphan");
            fs::rename(target, &junk).ctx(|| format!("moving aside {}", target.display()))?;
            fs::rename(staged, target).ctx(|| format!("placing {}", target.display()))?;
        }
        #[cfg(test)]
        if tests::CRASH_AFTER_RENAME.with(|c| c.get()) {
            return Err(StoreError::Corrupt(
                "simulated crash after the rename".into(),
            ));
        }
        insert().map_err(|e| self.db_err(e))?;
        Ok(())
    }

    fn row_exists(
        &self,
        tx: &rusqlite::Transaction<'_>,
        sql: &str,
        key: &str,
    ) -> Result<bool, StoreError> {
        tx.query_row(sql, [key], |_| Ok(()))
            .optional()
            .map(|r| r.is_some())
            .map_err(|e| self.db_err(e))
    }

    /// Records a build step: places its staged layer and blob (when the store does not have
    /// them yet) and inserts the cache row, in one write transaction. `layer`, when given, is
    /// the step's new layer, whose chain ID is `top`; `top` is the stack after the step.
    pub fn commit_cache(
        &mut self,
        op: &mut Op,
        layer: Option<(&LayerCommit, &BlobCommit)>,
        key: &str,
        top: Option<&Digest>,
        created: &str,
    ) -> Result<(), StoreError> {
        if layer.is_some_and(|(l, _)| l.staged.is_some()) {
            sync_filesystem(op.dir())?;
        }
        let tx = rusqlite::Transaction::new_unchecked(&self.conn, TransactionBehavior::Immediate)
            .map_err(|e| self.db_err(e))?;
        let db_err = |e| StoreError::Db {
            path: self.db_path.clone(),
            source: e,
        };
        if let Some((layer, blob)) = layer {
            self.place_blob(&tx, op, blob)?;
            self.place_layer(&tx, op, layer)?;
        }
        if let Some(top) = top {
            // A cached stack whose layers were collected in the meantime is not recorded.
            let present = tx
                .query_row(
                    "SELECT 1 FROM layers WHERE chain_id = ?1",
                    [top.to_string()],
                    |_| Ok(()),
                )
                .optional()
                .map_err(db_err)?
                .is_some();
            if !present {
                return Err(StoreError::Corrupt(format!(
                    "build cache: layer {top} is not in the store"
                )));
            }
        }
        tx.execute(
            "INSERT OR REPLACE INTO build_cache (key, layer, created, last_used) VALUES (?1, ?2, ?3, ?4)",
            params![key, top.map(|t| t.to_string()), created, now_nanos()],
        )
        .map_err(db_err)?;
        tx.commit().map_err(db_err)?;
        Ok(())
    }

    /// Number of build cache rows and the unpacked size of the layers only the cache keeps.
    pub fn cache_usage(&self) -> Result<(u64, u64), StoreError> {
        let rows: i64 = self
            .conn
            .query_row("SELECT COUNT(*) FROM build_cache", [], |r| r.get(0))
            .map_err(|e| self.db_err(e))?;
        let sql = "WITH RECURSIVE kept(c) AS (
                SELECT layer FROM build_cache WHERE layer IS NOT NULL
                UNION SELECT l.parent FROM layers l JOIN kept ON l.chain_id = kept.c WHERE l.parent IS NOT NULL)
             SELECT COALESCE(SUM(size), 0) FROM layers
             WHERE chain_id IN (SELECT c FROM kept) AND chain_id NOT IN (SELECT chain_id FROM image_layers)";
        let size: i64 = self
            .conn
            .query_row(sql, [], |r| r.get(0))
            .map_err(|e| self.db_err(e))?;
        Ok((rows as u64, size as u64))
    }

    /// Deletes the build cache rows (those not used since `older_than`, unix nanoseconds, when
    /// given; with `all` false only the dangling ones, whose layer no image uses), and every
    /// layer and blob that neither an image nor a remaining row needs.
    /// Returns the number of rows removed and what was removed from disk.
    pub fn prune_cache(
        &mut self,
        older_than: Option<i64>,
        all: bool,
    ) -> Result<(u64, RemovedImage), StoreError> {
        let mut op = self.begin_op()?;
        let removed;
        let rows;
        {
            let tx =
                rusqlite::Transaction::new_unchecked(&self.conn, TransactionBehavior::Immediate)
                    .map_err(|e| self.db_err(e))?;
            let db_err = |e| StoreError::Db {
                path: self.db_path.clone(),
                source: e,
            };
            // Without `all`, BuildKit's rule: only dangling entries, those whose layer no
            // image shares.
            let dangling = if all {
                ""
            } else {
                " AND (layer IS NULL OR layer NOT IN (SELECT chain_id FROM image_layers))"
            };
            rows = match older_than {
                Some(t) => tx.execute(
                    &format!("DELETE FROM build_cache WHERE last_used < ?1{dangling}"),
                    [t],
                ),
                None => tx.execute(&format!("DELETE FROM build_cache WHERE 1{dangling}"), []),
            }
            .map_err(db_err)?;
            removed = self.delete_unused(&tx, &mut op)?;
            tx.commit().map_err(db_err)?;
        }
        op.finish();
        Ok((rows as u64, removed))
    }
}

/// The `layers` row of a layer being placed.
fn insert_layer_row(
    tx: &rusqlite::Transaction<'_>,
    chain_id: &str,
    layer: &LayerCommit,
) -> rusqlite::Result<usize> {
    let (blob_digest, blob_media_type, blob_size) = match &layer.blob {
        Some((d, m, s)) => (Some(d.to_string()), Some(m.clone()), Some(*s as i64)),
        None => (None, None, None),
    };
    tx.execute(
        "INSERT INTO layers (chain_id, diff_id, parent, size, blob_digest, blob_media_type, blob_size)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            chain_id,
            layer.diff_id.to_string(),
            layer.parent.as_ref().map(|p| p.to_string()),
            layer.size as i64,
            blob_digest,
            blob_media_type,
            blob_size
        ],
    )
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::cell::Cell;

    thread_local! {
        /// Makes [`Store::place`] fail right after its rename, as a process killed there would
        /// stop: the file is in place, the journal says so, the row was never committed.
        pub(crate) static CRASH_AFTER_RENAME: Cell<bool> = const { Cell::new(false) };
    }

    fn open(dir: &Path) -> Store {
        Store::open(&dir.join("root"), &dir.join("run")).unwrap()
    }

    /// An image of `layers` (content names); each layer has a compressed blob named after
    /// it too. Returns the commit, with everything staged in `op`.
    fn image(op: &mut Op, config: &str, layers: &[&str]) -> ImageCommit {
        let config_blob = op.stage_bytes(config.as_bytes()).unwrap();
        let mut blobs = vec![BlobCommit {
            digest: config_blob.digest.clone(),
            size: config_blob.size,
            media_type: None,
            staged: Some(config_blob.clone()),
        }];
        let mut commits = Vec::new();
        let mut parent: Option<Digest> = None;
        for name in layers {
            let blob = op
                .stage_bytes(format!("blob of {name}").as_bytes())
                .unwrap();
            let dir = op.layer_dir().unwrap();
            fs::write(dir.path.join("file"), name).unwrap();
            let diff = Digest::of(name.as_bytes());
            let chain = match &parent {
                None => diff.clone(),
                Some(p) => Digest::of(format!("{p} {diff}").as_bytes()),
            };
            commits.push(LayerCommit {
                chain_id: chain.clone(),
                diff_id: diff,
                parent: parent.clone(),
                size: name.len() as u64,
                blob: Some((blob.digest.clone(), "x".into(), blob.size)),
                staged: Some(dir),
            });
            blobs.push(BlobCommit {
                digest: blob.digest.clone(),
                size: blob.size,
                media_type: None,
                staged: Some(blob),
            });
            parent = Some(chain);
        }
        ImageCommit {
            id: config_blob.digest.clone(),
            config_json: config.into(),
            created: "2026-01-01T00:00:00Z".into(),
            manifest: None,
            blobs,
            layers: commits,
            tags: vec![],
            repo_digests: vec![],
            parent: None,
        }
    }

    /// What a process killed inside a commit leaves: its staging area with the journal and
    /// no lock holder. Copies `op`'s journal into such a directory, then drops `op`.
    fn die(root: &Path, op: Op) {
        let dead = root.join("tmp/op-killed");
        fs::create_dir_all(&dead).unwrap();
        fs::write(dead.join("lock"), "").unwrap();
        fs::copy(op.dir().join("journal"), dead.join("journal")).unwrap();
        drop(op);
    }

    fn crash_during(f: impl FnOnce() -> Result<(), StoreError>) {
        CRASH_AFTER_RENAME.with(|c| c.set(true));
        let r = f();
        CRASH_AFTER_RENAME.with(|c| c.set(false));
        let e = r.expect_err("the commit stops at the simulated crash");
        assert!(e.to_string().contains("simulated crash"), "{e}");
    }

    #[test]
    fn an_image_commit_killed_between_rename_and_commit_is_recovered() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        let mut store = open(dir.path());
        let mut op = store.begin_op().unwrap();
        let commit = image(&mut op, "{\"a\":1}", &["l1"]);
        crash_during(|| store.commit_image(&mut op, &commit));
        // The first placement (the config blob) happened; its row did not.
        let placed = store.blob_path(&commit.blobs[0].digest);
        assert!(placed.exists());
        assert!(!store.has_blob(&commit.blobs[0].digest).unwrap());
        die(&root, op);
        drop(store);

        let mut store = open(dir.path());
        assert!(!placed.exists(), "the placed blob without a row is removed");
        assert!(!root.join("tmp/op-killed").exists());
        assert!(store.images().unwrap().is_empty());
        // The same image commits cleanly afterwards.
        let mut op = store.begin_op().unwrap();
        let commit = image(&mut op, "{\"a\":1}", &["l1"]);
        store.commit_image(&mut op, &commit).unwrap();
        op.finish();
        assert!(placed.exists());
        assert!(store.has_layer(&commit.layers[0].chain_id).unwrap());
    }

    #[test]
    fn a_cache_commit_killed_between_rename_and_commit_is_recovered() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        let mut store = open(dir.path());
        let mut op = store.begin_op().unwrap();
        let commit = image(&mut op, "{}", &["step"]);
        let (layer, blob) = (&commit.layers[0], &commit.blobs[1]);
        // Let the blob be placed; stop after the layer directory's rename.
        store
            .commit_cache(&mut op, Some((layer, blob)), "k0", None, "t")
            .unwrap();
        let mut op2 = store.begin_op().unwrap();
        let other = image(&mut op2, "{}", &["step2"]);
        let (layer2, blob2) = (&other.layers[0], &other.blobs[1]);
        crash_during(|| {
            store.commit_cache(
                &mut op2,
                Some((layer2, blob2)),
                "k1",
                Some(&layer2.chain_id),
                "t",
            )
        });
        let placed_blob = store.blob_path(&blob2.digest);
        assert!(placed_blob.exists());
        die(&root, op2);
        op.finish();
        drop(store);

        let store = open(dir.path());
        assert!(
            !placed_blob.exists(),
            "the placed blob without a row is removed"
        );
        assert!(!store.layer_path(&layer2.chain_id).exists());
        assert!(store.cache_get("k1").unwrap().is_none());
        // The step committed before the crash is untouched.
        assert!(store.has_layer(&layer.chain_id).unwrap());
        assert!(store.layer_path(&layer.chain_id).join("file").exists());
    }

    #[test]
    fn placing_over_a_dead_operations_leftover_moves_it_aside() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = open(dir.path());
        let mut op = store.begin_op().unwrap();
        let commit = image(&mut op, "{}", &["l1"]);
        // A directory where the layer goes, with no row: what a killed commit leaves when its
        // journal is lost.
        let target = store.layer_path(&commit.layers[0].chain_id);
        fs::create_dir_all(target.join("stale")).unwrap();
        store.commit_image(&mut op, &commit).unwrap();
        op.finish();
        assert!(!target.join("stale").exists());
        assert_eq!(fs::read_to_string(target.join("file")).unwrap(), "l1");
    }

    #[test]
    fn deleting_an_image_deletes_exactly_what_no_other_image_needs() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = open(dir.path());
        let mut op = store.begin_op().unwrap();
        let a = image(&mut op, "{\"a\":1}", &["base", "only-a"]);
        store.commit_image(&mut op, &a).unwrap();
        op.finish();
        let mut op = store.begin_op().unwrap();
        // b shares `base` (same chain, same blob) with a.
        let b = image(&mut op, "{\"b\":1}", &["base", "only-b"]);
        store.commit_image(&mut op, &b).unwrap();
        op.finish();
        let digest = |c: &BlobCommit| c.digest.to_string();

        let removed = store.delete_image(&a.id.to_string()).unwrap();
        let layers: Vec<&str> = removed.layers.iter().map(|(c, _)| c.as_str()).collect();
        assert_eq!(layers, vec![a.layers[1].chain_id.to_string()]);
        let mut blobs: Vec<String> = removed.blobs.iter().map(|(d, _)| d.clone()).collect();
        blobs.sort();
        let mut want = vec![digest(&a.blobs[0]), digest(&a.blobs[2])];
        want.sort();
        assert_eq!(blobs, want, "a's config and its own layer's blob");
        assert!(!store.layer_path(&a.layers[1].chain_id).exists());
        assert!(!store.blob_path(&a.blobs[2].digest).exists());
        for l in &b.layers {
            assert!(store.has_layer(&l.chain_id).unwrap());
            assert!(store.layer_path(&l.chain_id).join("file").exists());
        }
        for bl in &b.blobs {
            assert!(store.has_blob(&bl.digest).unwrap());
            assert!(store.blob_path(&bl.digest).exists());
        }

        // A build cache row keeps its stack (and the stack's blobs) after the last image goes.
        let mut op = store.begin_op().unwrap();
        store
            .commit_cache(&mut op, None, "step", Some(&b.layers[1].chain_id), "t")
            .unwrap();
        op.finish();
        let removed = store.delete_image(&b.id.to_string()).unwrap();
        assert!(removed.layers.is_empty(), "{:?}", removed.layers);
        assert_eq!(
            removed
                .blobs
                .iter()
                .map(|(d, _)| d.clone())
                .collect::<Vec<_>>(),
            vec![digest(&b.blobs[0])],
            "only the config goes"
        );
        assert!(store.has_layer(&b.layers[0].chain_id).unwrap());
        assert!(store.blob_path(&b.blobs[1].digest).exists());
        assert_eq!(store.counts().unwrap().0, 0);
        assert!(matches!(
            store.delete_image(&b.id.to_string()),
            Err(StoreError::ImageNotFound(_))
        ));
    }
}
