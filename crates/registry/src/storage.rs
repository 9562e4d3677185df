//! On-disk layout of a registry root.
//!
//! ```text
//! <root>/
//!   blobs/<alg>/<hex>                          content-addressed blobs and manifests
//!   repositories/<name>/_layers/<alg>/<hex>    empty file: the blob is part of <name>
//!   repositories/<name>/_manifests/revisions/<alg>/<hex>
//!                                              file holding the manifest's media type
//!   repositories/<name>/_manifests/tags/<tag>  file holding the digest the tag points to
//!   repositories/<name>/_referrers/<alg>/<hex>/<alg>-<hex>
//!                                              descriptor (JSON) of a manifest whose
//!                                              `subject` is <alg>:<hex>
//!   _uploads/<id>/{data,repo}                  upload sessions
//!   _uploads/tmp-<random>                      temporary files before rename
//! ```
//!
//! Invariants: a blob file appears only after its content was written to a
//! temporary file under `_uploads`, fsynced and verified against its digest,
//! and then renamed into place; names, tags and digests are validated
//! (see [`crate::reference`]) before they are joined to any path, and no
//! valid name component starts with `_`, so repository directories never
//! collide with the reserved `_layers`, `_manifests` and `_referrers`.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use crate::error::RegistryError;
use crate::reference::{is_valid_name, is_valid_tag, Algorithm, Digest};

#[derive(Debug, Clone)]
pub(crate) struct Storage {
    root: PathBuf,
}

/// A random identifier of 32 lower-case hex characters.
pub(crate) fn random_id() -> String {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).expect("system random source");
    b.iter().map(|x| format!("{x:02x}")).collect()
}

pub(crate) fn is_valid_upload_id(id: &str) -> bool {
    id.len() == 32
        && id
            .bytes()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
}

fn not_found_is_none<T>(r: io::Result<T>) -> io::Result<Option<T>> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

fn remove_file_if_exists(p: &Path) -> io::Result<bool> {
    match fs::remove_file(p) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

impl Storage {
    /// Open (creating if needed) a registry root.
    pub(crate) fn open(root: &Path) -> Result<Storage, RegistryError> {
        let s = Storage {
            root: root.to_path_buf(),
        };
        for d in [
            s.root.join("blobs").join("sha256"),
            s.root.join("blobs").join("sha512"),
            s.root.join("repositories"),
            s.root.join("_uploads"),
        ] {
            fs::create_dir_all(&d)
                .map_err(|e| RegistryError::io(format!("creating {}", d.display()), e))?;
        }
        Ok(s)
    }

    pub(crate) fn root(&self) -> &Path {
        &self.root
    }

    pub(crate) fn blob_path(&self, d: &Digest) -> PathBuf {
        self.root
            .join("blobs")
            .join(d.algorithm().as_str())
            .join(d.hex())
    }

    /// Size of a stored blob, or `None` if it is not stored.
    pub(crate) fn blob_size(&self, d: &Digest) -> io::Result<Option<u64>> {
        Ok(not_found_is_none(fs::metadata(self.blob_path(d)))?.map(|m| m.len()))
    }

    pub(crate) fn read_blob(&self, d: &Digest) -> io::Result<Option<Vec<u8>>> {
        not_found_is_none(fs::read(self.blob_path(d)))
    }

    fn repo_dir(&self, name: &str) -> PathBuf {
        debug_assert!(is_valid_name(name));
        self.root.join("repositories").join(name)
    }

    pub(crate) fn repo_exists(&self, name: &str) -> bool {
        let d = self.repo_dir(name);
        d.join("_manifests").is_dir() || d.join("_layers").is_dir()
    }

    fn layer_link(&self, name: &str, d: &Digest) -> PathBuf {
        self.repo_dir(name)
            .join("_layers")
            .join(d.algorithm().as_str())
            .join(d.hex())
    }

    pub(crate) fn has_layer(&self, name: &str, d: &Digest) -> bool {
        self.layer_link(name, d).is_file()
    }

    pub(crate) fn link_layer(&self, name: &str, d: &Digest) -> io::Result<()> {
        let p = self.layer_link(name, d);
        fs::create_dir_all(p.parent().expect("link has a parent"))?;
        File::create(&p)?;
        Ok(())
    }

    pub(crate) fn unlink_layer(&self, name: &str, d: &Digest) -> io::Result<bool> {
        remove_file_if_exists(&self.layer_link(name, d))
    }

    fn revision_path(&self, name: &str, d: &Digest) -> PathBuf {
        self.repo_dir(name)
            .join("_manifests")
            .join("revisions")
            .join(d.algorithm().as_str())
            .join(d.hex())
    }

    /// The media type of a manifest of `name`, if the repository has it.
    pub(crate) fn get_revision(&self, name: &str, d: &Digest) -> io::Result<Option<String>> {
        not_found_is_none(fs::read_to_string(self.revision_path(name, d)))
    }

    pub(crate) fn put_revision(&self, name: &str, d: &Digest, media_type: &str) -> io::Result<()> {
        self.write_atomic(&self.revision_path(name, d), media_type.as_bytes())
    }

    pub(crate) fn delete_revision(&self, name: &str, d: &Digest) -> io::Result<bool> {
        remove_file_if_exists(&self.revision_path(name, d))
    }

    /// All manifest digests of a repository.
    pub(crate) fn list_revisions(&self, name: &str) -> io::Result<Vec<Digest>> {
        let base = self.repo_dir(name).join("_manifests").join("revisions");
        list_digests(&base)
    }

    fn tag_path(&self, name: &str, tag: &str) -> PathBuf {
        debug_assert!(is_valid_tag(tag));
        self.repo_dir(name)
            .join("_manifests")
            .join("tags")
            .join(tag)
    }

    pub(crate) fn resolve_tag(&self, name: &str, tag: &str) -> io::Result<Option<Digest>> {
        match not_found_is_none(fs::read_to_string(self.tag_path(name, tag)))? {
            None => Ok(None),
            Some(s) => s.trim().parse().map(Some).map_err(|_| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("corrupt tag {name}:{tag}"),
                )
            }),
        }
    }

    pub(crate) fn set_tag(&self, name: &str, tag: &str, d: &Digest) -> io::Result<()> {
        self.write_atomic(&self.tag_path(name, tag), d.to_string().as_bytes())
    }

    pub(crate) fn delete_tag(&self, name: &str, tag: &str) -> io::Result<bool> {
        remove_file_if_exists(&self.tag_path(name, tag))
    }

    /// Sorted tags of a repository (`None` if the repository is unknown).
    pub(crate) fn list_tags(&self, name: &str) -> io::Result<Option<Vec<String>>> {
        if !self.repo_exists(name) {
            return Ok(None);
        }
        let dir = self.repo_dir(name).join("_manifests").join("tags");
        let mut tags = Vec::new();
        if let Some(rd) = not_found_is_none(fs::read_dir(dir))? {
            for e in rd {
                let e = e?;
                if let Some(t) = e.file_name().to_str() {
                    if is_valid_tag(t) {
                        tags.push(t.to_string());
                    }
                }
            }
        }
        tags.sort();
        Ok(Some(tags))
    }

    /// Tags of `name` that point at `d`.
    pub(crate) fn tags_for(&self, name: &str, d: &Digest) -> io::Result<Vec<String>> {
        let mut out = Vec::new();
        for t in self.list_tags(name)?.unwrap_or_default() {
            if self.resolve_tag(name, &t)?.as_ref() == Some(d) {
                out.push(t);
            }
        }
        Ok(out)
    }

    /// Every repository name, sorted.
    pub(crate) fn list_repos(&self) -> io::Result<Vec<String>> {
        let mut out = Vec::new();
        let base = self.root.join("repositories");
        walk_repos(&base, String::new(), &mut out)?;
        out.sort();
        Ok(out)
    }

    fn referrers_dir(&self, name: &str, subject: &Digest) -> PathBuf {
        self.repo_dir(name)
            .join("_referrers")
            .join(subject.algorithm().as_str())
            .join(subject.hex())
    }

    pub(crate) fn add_referrer(
        &self,
        name: &str,
        subject: &Digest,
        referrer: &Digest,
        descriptor: &serde_json::Value,
    ) -> io::Result<()> {
        let p = self.referrers_dir(name, subject).join(format!(
            "{}-{}",
            referrer.algorithm().as_str(),
            referrer.hex()
        ));
        let body = serde_json::to_vec(descriptor).map_err(io::Error::other)?;
        self.write_atomic(&p, &body)
    }

    pub(crate) fn remove_referrer(
        &self,
        name: &str,
        subject: &Digest,
        referrer: &Digest,
    ) -> io::Result<()> {
        let p = self.referrers_dir(name, subject).join(format!(
            "{}-{}",
            referrer.algorithm().as_str(),
            referrer.hex()
        ));
        remove_file_if_exists(&p).map(|_| ())
    }

    /// Descriptors of the manifests of `name` whose subject is `subject`.
    pub(crate) fn list_referrers(
        &self,
        name: &str,
        subject: &Digest,
    ) -> io::Result<Vec<serde_json::Value>> {
        let dir = self.referrers_dir(name, subject);
        let mut names = Vec::new();
        if let Some(rd) = not_found_is_none(fs::read_dir(&dir))? {
            for e in rd {
                names.push(e?.path());
            }
        }
        names.sort();
        let mut out = Vec::new();
        for p in names {
            if let Some(b) = not_found_is_none(fs::read(&p))? {
                if let Ok(v) = serde_json::from_slice(&b) {
                    out.push(v);
                }
            }
        }
        Ok(out)
    }

    /// A new temporary file under `_uploads`, on the same file system as blobs.
    pub(crate) fn temp_path(&self) -> PathBuf {
        self.root
            .join("_uploads")
            .join(format!("tmp-{}", random_id()))
    }

    /// Write a small file atomically (temporary file, fsync, rename).
    pub(crate) fn write_atomic(&self, path: &Path, data: &[u8]) -> io::Result<()> {
        let tmp = self.temp_path();
        let res = (|| {
            let mut f = File::create(&tmp)?;
            f.write_all(data)?;
            f.sync_all()?;
            fs::create_dir_all(path.parent().expect("path has a parent"))?;
            fs::rename(&tmp, path)
        })();
        if res.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        res
    }

    /// Move a verified, fsynced temporary file into the blob store.
    pub(crate) fn commit_blob(&self, tmp: &Path, d: &Digest) -> io::Result<()> {
        let dst = self.blob_path(d);
        if dst.is_file() {
            let _ = fs::remove_file(tmp);
            return Ok(());
        }
        let parent = dst.parent().expect("blob has a parent");
        fs::create_dir_all(parent)?;
        fs::rename(tmp, &dst)?;
        File::open(parent)?.sync_all()
    }

    /// Store bytes as a blob and return their digest.
    pub(crate) fn put_blob_bytes(&self, alg: Algorithm, data: &[u8]) -> io::Result<Digest> {
        let d = alg.digest(data);
        if self.blob_path(&d).is_file() {
            return Ok(d);
        }
        let tmp = self.temp_path();
        let res = (|| {
            let mut f = File::create(&tmp)?;
            f.write_all(data)?;
            f.sync_all()?;
            self.commit_blob(&tmp, &d)
        })();
        if res.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        res.map(|_| d)
    }

    pub(crate) fn upload_dir(&self, id: &str) -> PathBuf {
        debug_assert!(is_valid_upload_id(id));
        self.root.join("_uploads").join(id)
    }

    pub(crate) fn upload_data(&self, id: &str) -> PathBuf {
        self.upload_dir(id).join("data")
    }

    /// Start an upload session for `name`; returns its id.
    pub(crate) fn create_upload(&self, name: &str) -> io::Result<String> {
        let id = random_id();
        let dir = self.upload_dir(&id);
        fs::create_dir_all(&dir)?;
        fs::write(dir.join("repo"), name)?;
        File::create(dir.join("data"))?;
        Ok(id)
    }

    /// The repository an upload session belongs to, if it exists.
    pub(crate) fn upload_repo(&self, id: &str) -> io::Result<Option<String>> {
        not_found_is_none(fs::read_to_string(self.upload_dir(id).join("repo")))
    }

    pub(crate) fn remove_upload(&self, id: &str) -> io::Result<()> {
        match fs::remove_dir_all(self.upload_dir(id)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

/// Digest of a file's content.
pub(crate) fn hash_file(path: &Path, alg: Algorithm) -> io::Result<Digest> {
    let mut f = File::open(path)?;
    let mut h = alg.hasher();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finish())
}

/// Digests stored as `<base>/<alg>/<hex>` files.
pub(crate) fn list_digests(base: &Path) -> io::Result<Vec<Digest>> {
    let mut out = Vec::new();
    for alg in ["sha256", "sha512"] {
        let Some(rd) = not_found_is_none(fs::read_dir(base.join(alg)))? else {
            continue;
        };
        for e in rd {
            let e = e?;
            if let Some(h) = e.file_name().to_str() {
                if let Ok(d) = format!("{alg}:{h}").parse::<Digest>() {
                    out.push(d);
                }
            }
        }
    }
    out.sort();
    Ok(out)
}

fn walk_repos(dir: &Path, prefix: String, out: &mut Vec<String>) -> io::Result<()> {
    let Some(rd) = not_found_is_none(fs::read_dir(dir))? else {
        return Ok(());
    };
    let mut is_repo = false;
    let mut children = Vec::new();
    for e in rd {
        let e = e?;
        let Some(n) = e.file_name().to_str().map(str::to_string) else {
            continue;
        };
        if n == "_manifests" || n == "_layers" {
            is_repo = true;
        } else if !n.starts_with('_') && e.file_type()?.is_dir() {
            children.push(n);
        }
    }
    if is_repo && is_valid_name(&prefix) {
        out.push(prefix.clone());
    }
    for c in children {
        let p = if prefix.is_empty() {
            c.clone()
        } else {
            format!("{prefix}/{c}")
        };
        walk_repos(&dir.join(&c), p, out)?;
    }
    Ok(())
}
