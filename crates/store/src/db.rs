//! The SQLite schema and row types.

use rusqlite::Connection;
use std::path::Path;
use std::time::Duration;

const SCHEMA_VERSION: i64 = 1;

const SCHEMA: &str = r#"
CREATE TABLE images (
    id                  TEXT PRIMARY KEY,      -- sha256:<config digest>
    config              TEXT NOT NULL,         -- the image configuration JSON, as stored in its blob
    manifest_digest     TEXT,
    manifest_media_type TEXT,
    created             TEXT NOT NULL,         -- from the configuration, RFC 3339
    added               INTEGER NOT NULL,      -- unix nanoseconds when it entered this store
    size                INTEGER NOT NULL,      -- sum of the unpacked layer sizes
    parent              TEXT
);
CREATE TABLE tags (
    name     TEXT PRIMARY KEY,                 -- normalised, e.g. docker.io/library/busybox:latest
    image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE
);
CREATE INDEX tags_image ON tags(image_id);
CREATE TABLE repo_digests (
    name     TEXT NOT NULL,                    -- docker.io/library/busybox@sha256:...
    image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    PRIMARY KEY (name, image_id)
);
CREATE TABLE blobs (
    digest     TEXT PRIMARY KEY,
    size       INTEGER NOT NULL,
    media_type TEXT
);
CREATE TABLE layers (
    chain_id        TEXT PRIMARY KEY,
    diff_id         TEXT NOT NULL,
    parent          TEXT,
    size            INTEGER NOT NULL,
    blob_digest     TEXT,
    blob_media_type TEXT,
    blob_size       INTEGER
);
CREATE TABLE image_layers (
    image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    idx      INTEGER NOT NULL,
    chain_id TEXT NOT NULL REFERENCES layers(chain_id),
    PRIMARY KEY (image_id, idx)
);
CREATE INDEX image_layers_chain ON image_layers(chain_id);
CREATE TABLE image_blobs (
    image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    digest   TEXT NOT NULL REFERENCES blobs(digest),
    PRIMARY KEY (image_id, digest)
);
CREATE INDEX image_blobs_digest ON image_blobs(digest);
CREATE TABLE containers (
    id       TEXT PRIMARY KEY,
    name     TEXT NOT NULL UNIQUE,
    image_id TEXT NOT NULL,
    created  INTEGER NOT NULL,
    record   TEXT NOT NULL                     -- the engine's container record, JSON
);
CREATE INDEX containers_image ON containers(image_id);
"#;

pub(crate) fn open(path: &Path) -> rusqlite::Result<Connection> {
    // Processes opening a new store at once race to switch it to WAL and create the schema;
    // SQLite answers some of those steps with SQLITE_BUSY at once, without its busy handler.
    let mut attempt = 0;
    loop {
        match open_once(path) {
            Err(rusqlite::Error::SqliteFailure(e, _))
                if matches!(
                    e.code,
                    rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
                ) && attempt < 200 =>
            {
                attempt += 1;
                std::thread::sleep(Duration::from_millis(5));
            }
            r => return r,
        }
    }
}

fn open_once(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(Duration::from_secs(30))?;
    // WAL lets readers (`images`, `ps`) run while another process writes.
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    // Every CLI command opens and closes the database: without this, each close checkpoints
    // the WAL (fsyncs) and the next writer restarts it (another fsync). The WAL is
    // checkpointed by the automatic checkpoint of whichever commit crosses its threshold,
    // kept small: the first connection of every process rereads the whole WAL to rebuild its
    // index (a 4 MB WAL made `ps -a` take 14 ms instead of 6).
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE,
        true,
    )?;
    conn.pragma_update(None, "wal_autocheckpoint", 128)?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    // Reads through a mapping instead of a pread per page, and sorts in memory.
    conn.pragma_update(None, "mmap_size", 256i64 << 20)?;
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if version < SCHEMA_VERSION {
        let tx =
            rusqlite::Transaction::new_unchecked(&conn, rusqlite::TransactionBehavior::Immediate)?;
        // Re-check under the write lock: a concurrent first open may have created it.
        let version: i64 = tx.pragma_query_value(None, "user_version", |r| r.get(0))?;
        if version < SCHEMA_VERSION {
            tx.execute_batch(SCHEMA)?;
            tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
        }
        tx.commit()?;
    }
    ensure_build_cache(&conn)?;
    crate::pods::ensure_table(&conn)?;
    Ok(conn)
}

/// The build cache (`berth build`): one row per build step, keyed by a digest of the step's
/// parent key and its inputs; `layer` is the chain ID of the layer stack after the step (NULL
/// for a step on `scratch` that left it empty). The foreign key makes a row that points at a
/// deleted layer impossible; the image GC keeps every layer a row needs (its whole chain).
const BUILD_CACHE_SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS build_cache (
    key       TEXT PRIMARY KEY,
    layer     TEXT REFERENCES layers(chain_id),
    created   TEXT NOT NULL,                   -- RFC 3339, the step's history time
    last_used INTEGER NOT NULL                 -- unix nanoseconds
);
CREATE INDEX IF NOT EXISTS build_cache_layer ON build_cache(layer);
"#;

fn ensure_build_cache(conn: &Connection) -> rusqlite::Result<()> {
    let exists: bool = conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'build_cache')",
        [],
        |r| r.get(0),
    )?;
    if !exists {
        conn.execute_batch(BUILD_CACHE_SCHEMA)?;
    }
    Ok(())
}

/// Layers no image and no build cache row needs, with their sizes.
pub(crate) const UNUSED_LAYERS_SQL: &str = "WITH RECURSIVE kept(c) AS (
    SELECT layer FROM build_cache WHERE layer IS NOT NULL
    UNION SELECT l.parent FROM layers l JOIN kept ON l.chain_id = kept.c WHERE l.parent IS NOT NULL)
    SELECT chain_id, size FROM layers
    WHERE chain_id NOT IN (SELECT chain_id FROM image_layers) AND chain_id NOT IN (SELECT c FROM kept)";

/// Blobs no image and no build cache layer needs, with their sizes.
pub(crate) const UNUSED_BLOBS_SQL: &str = "WITH RECURSIVE kept(c) AS (
    SELECT layer FROM build_cache WHERE layer IS NOT NULL
    UNION SELECT l.parent FROM layers l JOIN kept ON l.chain_id = kept.c WHERE l.parent IS NOT NULL)
    SELECT digest, size FROM blobs
    WHERE digest NOT IN (SELECT digest FROM image_blobs)
      AND digest NOT IN (SELECT blob_digest FROM layers WHERE blob_digest IS NOT NULL AND chain_id IN (SELECT c FROM kept))";

/// A build cache row.
#[derive(Debug, Clone)]
pub struct CacheRow {
    pub key: String,
    /// Chain ID of the layer stack after the step.
    pub layer: Option<String>,
    /// RFC 3339.
    pub created: String,
}

/// An image as the store records it.
#[derive(Debug, Clone)]
pub struct ImageRow {
    pub id: String,
    pub config: String,
    pub manifest_digest: Option<String>,
    pub manifest_media_type: Option<String>,
    pub created: String,
    pub added: i64,
    pub size: u64,
    pub parent: Option<String>,
    /// Normalised tags, e.g. `docker.io/library/busybox:latest`.
    pub tags: Vec<String>,
    /// Normalised repo digests, e.g. `docker.io/library/busybox@sha256:...`.
    pub repo_digests: Vec<String>,
}

/// An unpacked layer.
#[derive(Debug, Clone)]
pub struct LayerRow {
    pub chain_id: String,
    pub diff_id: String,
    pub parent: Option<String>,
    pub size: u64,
    pub blob_digest: Option<String>,
    pub blob_media_type: Option<String>,
    pub blob_size: Option<u64>,
}

/// A container record; the engine owns the meaning of `record`.
#[derive(Debug, Clone)]
pub struct ContainerRow {
    pub id: String,
    pub name: String,
    pub image_id: String,
    pub created: i64,
    pub record: String,
}
