//! File digests kept between builds of the same context directory, so a rebuild reads only the
//! files that changed: every build hashes the whole context (the provenance's context digest)
//! and every file a COPY names, and an ML project's context holds data files of gigabytes.
//!
//! A digest is reused only when the file's device, inode, size, mtime and ctime (both to the
//! nanosecond) are those recorded with it. The ctime cannot be set from user space, so a file
//! rewritten with its old mtime put back is still read again. As in git's "racily clean"
//! rule, a digest is not recorded for a file whose ctime is less than two seconds before the
//! build read it: a write in the same clock tick would leave every stamp as it was.
//!
//! One JSON file per context directory, `$ROOT/build-hashes/<sha256 of the directory's path>`,
//! written beside and renamed, holding only the files that exist at the time: a damaged or
//! unreadable file is an empty cache, never an error.

use std::collections::{BTreeMap, HashMap};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// What must be unchanged for a recorded digest to stand.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Stamp {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Stamp {
    pub fn of(md: &std::fs::Metadata) -> Stamp {
        Stamp {
            dev: md.dev(),
            ino: md.ino(),
            size: md.size(),
            mtime: (md.mtime(), md.mtime_nsec()),
            ctime: (md.ctime(), md.ctime_nsec()),
        }
    }
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Record {
    stamp: Stamp,
    sha256: String,
}

/// The digests of one context directory: those recorded by earlier builds, and those this
/// build used (to be written by [`HashCache::save`]).
#[derive(Debug)]
pub struct HashCache {
    file: PathBuf,
    old: HashMap<String, Record>,
    used: BTreeMap<String, Record>,
    /// Files changed after this (seconds since 1970) are not recorded.
    racy_after: i64,
}

impl HashCache {
    /// The cache of `context` (an absolute path) kept under `dir`.
    pub fn open(dir: &Path, context: &Path) -> HashCache {
        let name = crate::sha(&context.to_string_lossy());
        let file = dir.join(name);
        let old = std::fs::read(&file)
            .ok()
            .and_then(|b| serde_json::from_slice::<HashMap<String, Record>>(&b).ok())
            .unwrap_or_default();
        HashCache {
            file,
            old,
            used: BTreeMap::new(),
            racy_after: chrono::Utc::now().timestamp() - 2,
        }
    }

    /// The digest of `rel` (at `path`), from the cache when its stamp is unchanged, else read.
    pub fn hash(&mut self, rel: &str, path: &Path) -> std::io::Result<String> {
        let stamp = Stamp::of(&std::fs::symlink_metadata(path)?);
        if let Some(r) = self.old.get(rel).filter(|r| r.stamp == stamp) {
            let r = r.clone();
            let sha = r.sha256.clone();
            self.used.insert(rel.to_string(), r);
            return Ok(sha);
        }
        let sha = crate::context::hash_file(path)?;
        // The stamp again: a write while the file was read must not be recorded with it.
        let after = Stamp::of(&std::fs::symlink_metadata(path)?);
        if after == stamp && stamp.ctime.0 < self.racy_after {
            self.used.insert(
                rel.to_string(),
                Record {
                    stamp,
                    sha256: sha.clone(),
                },
            );
        }
        Ok(sha)
    }

    /// Writes the digests this build used, plus the recorded ones of files in `present`
    /// (a build that read only some files keeps the others'), and drops the rest.
    pub fn save<'a>(&mut self, present: impl IntoIterator<Item = &'a str>) -> std::io::Result<()> {
        let mut all = std::mem::take(&mut self.used);
        for rel in present {
            if !all.contains_key(rel) {
                if let Some(r) = self.old.get(rel) {
                    all.insert(rel.to_string(), r.clone());
                }
            }
        }
        let dir = self.file.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir)?;
        let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
        serde_json::to_writer(std::io::BufWriter::new(tmp.as_file_mut()), &all)?;
        tmp.persist(&self.file).map_err(|e| e.error)?;
        self.old = all.into_iter().collect();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set_times(p: &Path, secs: u64) {
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs);
        std::fs::File::options()
            .write(true)
            .open(p)
            .unwrap()
            .set_times(std::fs::FileTimes::new().set_modified(t).set_accessed(t))
            .unwrap();
    }

    #[test]
    fn reuses_a_digest_only_while_the_file_is_unchanged() {
        let ctx = tempfile::tempdir().unwrap();
        let store = tempfile::tempdir().unwrap();
        let f = ctx.path().join("data.csv");
        std::fs::write(&f, "1,2\n").unwrap();
        let real = crate::context::hash_file(&f).unwrap();

        // Just written: racy, so not recorded.
        let mut c = HashCache::open(store.path(), ctx.path());
        assert_eq!(c.hash("data.csv", &f).unwrap(), real);
        c.save(["data.csv"]).unwrap();
        let mut c = HashCache::open(store.path(), ctx.path());
        assert!(
            c.old.is_empty(),
            "a file changed in the last seconds is not recorded"
        );

        // Old enough: recorded, and the recorded digest is what the next build gets (a
        // planted one proves the file was not read again).
        c.racy_after = i64::MAX;
        assert_eq!(c.hash("data.csv", &f).unwrap(), real);
        c.save(["data.csv"]).unwrap();
        let mut c = HashCache::open(store.path(), ctx.path());
        c.old.get_mut("data.csv").unwrap().sha256 = "planted".into();
        assert_eq!(c.hash("data.csv", &f).unwrap(), "planted");

        // Same size, old mtime put back: the ctime moved, so the file is read again.
        std::fs::write(&f, "3,4\n").unwrap();
        set_times(&f, 1_600_000_000);
        let mut c = HashCache::open(store.path(), ctx.path());
        c.old.get_mut("data.csv").unwrap().sha256 = "planted".into();
        assert_eq!(
            c.hash("data.csv", &f).unwrap(),
            crate::context::hash_file(&f).unwrap()
        );
    }

    #[test]
    fn keeps_only_present_files_and_survives_a_damaged_file() {
        let ctx = tempfile::tempdir().unwrap();
        let store = tempfile::tempdir().unwrap();
        for n in ["a", "b"] {
            std::fs::write(ctx.path().join(n), n).unwrap();
        }
        let mut c = HashCache::open(store.path(), ctx.path());
        c.racy_after = i64::MAX;
        c.hash("a", &ctx.path().join("a")).unwrap();
        c.hash("b", &ctx.path().join("b")).unwrap();
        c.save(["a", "b"]).unwrap();
        // A build that read nothing keeps what still exists, drops what does not.
        let mut c = HashCache::open(store.path(), ctx.path());
        c.save(["a"]).unwrap();
        let c = HashCache::open(store.path(), ctx.path());
        assert_eq!(c.old.keys().collect::<Vec<_>>(), vec!["a"]);

        std::fs::write(&c.file, b"{not json").unwrap();
        let mut c = HashCache::open(store.path(), ctx.path());
        assert!(c.old.is_empty());
        assert_eq!(
            c.hash("a", &ctx.path().join("a")).unwrap(),
            crate::context::hash_file(&ctx.path().join("a")).unwrap()
        );
    }
}
