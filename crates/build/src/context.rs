//! The build context: a directory walked once (`.dockerignore` applied), source matching for
//! COPY/ADD (globs, Docker's path cleaning, symlinks resolved inside the context only), and
//! content hashes for cache keys (content and mode, never mtimes).

use crate::hashes::HashCache;
use berth_dockerfile::ignore::{clean_path, DockerIgnore};
use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// What a path in a source tree is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    Dir,
    File,
    Symlink(String),
    Other,
}

/// One entry of a tree, relative to the tree's root (`a/b.txt`).
#[derive(Debug, Clone)]
pub struct Entry {
    pub rel: String,
    pub kind: Kind,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    pub mtime: i64,
}

/// Lists `root` recursively (sorted, directories before their contents), skipping what
/// `ignore` excludes.
pub fn walk(root: &Path, ignore: Option<&DockerIgnore>) -> std::io::Result<Vec<Entry>> {
    let mut out = Vec::new();
    walk_dir(root, "", ignore, &mut out)?;
    Ok(out)
}

fn entry_of(rel: String, md: &std::fs::Metadata, path: &Path) -> Entry {
    let ft = md.file_type();
    let kind = if ft.is_dir() {
        Kind::Dir
    } else if ft.is_file() {
        Kind::File
    } else if ft.is_symlink() {
        Kind::Symlink(
            std::fs::read_link(path)
                .map(|t| t.to_string_lossy().into_owned())
                .unwrap_or_default(),
        )
    } else {
        Kind::Other
    };
    Entry {
        rel,
        kind,
        mode: md.permissions().mode() & 0o7777,
        uid: md.uid(),
        gid: md.gid(),
        size: md.len(),
        mtime: md.mtime(),
    }
}

fn walk_dir(
    dir: &Path,
    rel: &str,
    ignore: Option<&DockerIgnore>,
    out: &mut Vec<Entry>,
) -> std::io::Result<()> {
    let mut names: Vec<_> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name())
        .collect();
    names.sort();
    for name in names {
        let name = name.to_string_lossy().into_owned();
        let child_rel = if rel.is_empty() {
            name.clone()
        } else {
            format!("{rel}/{name}")
        };
        let path = dir.join(&name);
        let md = std::fs::symlink_metadata(&path)?;
        let excluded = ignore.is_some_and(|i| i.is_excluded(&child_rel));
        if md.is_dir() {
            if excluded && !ignore.is_some_and(|i| i.might_contain_included(&child_rel)) {
                continue;
            }
            let at = out.len();
            if !excluded {
                out.push(entry_of(child_rel.clone(), &md, &path));
            }
            walk_dir(&path, &child_rel, ignore, out)?;
            if excluded && out.len() > at {
                // Re-included contents need their directory.
                out.insert(at, entry_of(child_rel.clone(), &md, &path));
            }
        } else if !excluded {
            out.push(entry_of(child_rel, &md, &path));
        }
    }
    Ok(())
}

/// The build context.
pub struct Context {
    /// The context directory; `None` for a build without context (`build -` or `-f -` with no
    /// path).
    pub root: Option<PathBuf>,
    pub ignore: DockerIgnore,
    /// The ignore file that was used, for messages.
    pub ignore_file: Option<String>,
    entries: Option<Vec<Entry>>,
    index: HashMap<String, usize>,
    hashes: HashMap<String, String>,
    /// Digests kept between builds ([`HashCache`]); without it every file is read.
    hash_cache: Option<HashCache>,
}

/// Whether `s` has glob metacharacters.
pub fn is_glob(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

impl Context {
    pub fn new(root: Option<PathBuf>, ignore: DockerIgnore, ignore_file: Option<String>) -> Self {
        Context {
            root,
            ignore,
            ignore_file,
            entries: None,
            index: HashMap::new(),
            hashes: HashMap::new(),
            hash_cache: None,
        }
    }

    /// Takes file digests from `cache` where the files are unchanged.
    pub fn set_hash_cache(&mut self, cache: HashCache) {
        self.hash_cache = Some(cache);
    }

    /// Records the digests this build read for the next one (see [`HashCache::save`]).
    pub fn save_hashes(&mut self) -> std::io::Result<()> {
        let Some(cache) = self.hash_cache.as_mut() else {
            return Ok(());
        };
        let present = self
            .entries
            .as_deref()
            .unwrap_or_default()
            .iter()
            .filter(|e| e.kind == Kind::File)
            .map(|e| e.rel.as_str());
        cache.save(present)
    }

    /// The entries (walked on first use). Returns (count, total bytes) for progress.
    pub fn load(&mut self) -> std::io::Result<(usize, u64)> {
        if self.entries.is_none() {
            let list = match &self.root {
                Some(r) => walk(r, Some(&self.ignore))?,
                None => Vec::new(),
            };
            self.index = list
                .iter()
                .enumerate()
                .map(|(i, e)| (e.rel.clone(), i))
                .collect();
            self.entries = Some(list);
        }
        let e = self.entries.as_deref().unwrap_or_default();
        Ok((e.len(), e.iter().map(|e| e.size).sum()))
    }

    fn entries(&self) -> &[Entry] {
        self.entries.as_deref().unwrap_or_default()
    }

    /// The regular files (loaded with [`Context::load`]), relative paths, sorted.
    pub fn files(&self) -> Vec<&str> {
        self.entries()
            .iter()
            .filter(|e| e.kind == Kind::File)
            .map(|e| e.rel.as_str())
            .collect()
    }

    pub fn get(&self, rel: &str) -> Option<&Entry> {
        self.index.get(rel).map(|&i| &self.entries()[i])
    }

    /// Entries below `rel` (a directory), with paths relative to it.
    pub fn children(&self, rel: &str) -> Vec<Entry> {
        let entries = self.entries();
        if rel.is_empty() || rel == "." {
            return entries.to_vec();
        }
        let prefix = format!("{rel}/");
        entries
            .iter()
            .filter(|e| e.rel.starts_with(&prefix))
            .map(|e| Entry {
                rel: e.rel[prefix.len()..].to_string(),
                ..e.clone()
            })
            .collect()
    }

    /// Resolves one COPY/ADD source to context-relative paths ("" for the root). Globs match
    /// entry paths (`*` never crosses `/`); a literal path whose components are symlinks is
    /// resolved inside the context (a link pointing outside is clamped to the context root, so
    /// it is never followed out).
    pub fn matches(&self, src: &str) -> Result<Vec<String>, String> {
        let root = self
            .root
            .as_ref()
            .ok_or_else(|| format!("{src:?} not found: this build has no context (a Dockerfile from stdin with no PATH); give a context directory"))?;
        let cleaned = clean_path(src);
        if cleaned == "." {
            return Ok(vec![String::new()]);
        }
        if cleaned == ".." || cleaned.starts_with("../") {
            return Err(format!(
                "{src:?} is outside the build context {} — COPY/ADD can only use files inside it",
                root.display()
            ));
        }
        if is_glob(&cleaned) {
            let pat =
                glob::Pattern::new(&cleaned).map_err(|e| format!("bad pattern {src:?}: {e}"))?;
            let opts = glob::MatchOptions {
                case_sensitive: true,
                require_literal_separator: true,
                require_literal_leading_dot: false,
            };
            let found: Vec<String> = self
                .entries()
                .iter()
                .filter(|e| pat.matches_with(&e.rel, opts))
                .map(|e| e.rel.clone())
                .collect();
            if found.is_empty() {
                return Err(self.missing(src, &cleaned));
            }
            return Ok(found);
        }
        let mut rel = cleaned.clone();
        // Follow symlinks (in any component) inside the context.
        for _ in 0..40 {
            match self.get(&rel).map(|e| e.kind.clone()) {
                Some(Kind::Symlink(_)) | None => {}
                Some(_) => return Ok(vec![rel]),
            }
            let resolved = berth_runtime::paths::resolve_in_root(root, &format!("/{rel}"))
                .map_err(|e| format!("resolving {src:?} in the build context: {e}"))?;
            let next = resolved.trim_start_matches('/').to_string();
            if next == rel || next.is_empty() {
                break;
            }
            rel = next;
        }
        match self.get(&rel) {
            Some(e) if !matches!(e.kind, Kind::Symlink(_)) => Ok(vec![rel]),
            _ if rel.is_empty() => Ok(vec![String::new()]),
            _ => Err(self.missing(src, &cleaned)),
        }
    }

    fn missing(&self, src: &str, cleaned: &str) -> String {
        let root = self
            .root
            .as_ref()
            .map(|r| r.display().to_string())
            .unwrap_or_default();
        if self.ignore.is_excluded(cleaned) {
            let file = self.ignore_file.as_deref().unwrap_or(".dockerignore");
            format!(
                "\"/{cleaned}\" not found: {src:?} is excluded by {file} in the build context {root} — remove its pattern there to send it"
            )
        } else {
            format!(
                "\"/{cleaned}\" not found: no file {src:?} in the build context {root} (and {} does not exclude it) — check the path, it is relative to the context",
                self.ignore_file.as_deref().unwrap_or(".dockerignore")
            )
        }
    }

    /// A digest of what copying `rel` brings in: paths, types, modes, link targets and file
    /// contents (never owners). Mtimes only with `SOURCE_DATE_EPOCH` (`epoch`): COPY keeps
    /// them and the layer clamps them to the epoch, so an mtime before it is part of the
    /// layer's bytes; without an epoch every build's times differ anyway (BuildKit's keys also
    /// ignore mtimes), and a touched file stays a cache hit.
    pub fn content_key(&mut self, rel: &str, epoch: Option<i64>) -> std::io::Result<String> {
        let root = self.root.clone().unwrap_or_default();
        let mut items: BTreeMap<String, String> = BTreeMap::new();
        let top = if rel.is_empty() {
            None
        } else {
            self.get(rel).cloned()
        };
        let mut list: Vec<Entry> = Vec::new();
        if let Some(t) = top.clone() {
            list.push(Entry {
                rel: String::new(),
                ..t
            });
        }
        if top.as_ref().is_none_or(|t| t.kind == Kind::Dir) {
            list.extend(self.children(rel));
        }
        for e in list {
            let full = if rel.is_empty() {
                e.rel.clone()
            } else if e.rel.is_empty() {
                rel.to_string()
            } else {
                format!("{rel}/{}", e.rel)
            };
            let desc = match &e.kind {
                Kind::Dir => format!("d {:o}", e.mode),
                Kind::Symlink(t) => format!("l {t}"),
                Kind::Other => "o".to_string(),
                Kind::File => {
                    let h = match self.hashes.get(&full) {
                        Some(h) => h.clone(),
                        None => {
                            let path = root.join(&full);
                            let h = match self.hash_cache.as_mut() {
                                Some(c) => c.hash(&full, &path)?,
                                None => hash_file(&path)?,
                            };
                            self.hashes.insert(full.clone(), h.clone());
                            h
                        }
                    };
                    format!("f {:o} {h}", e.mode)
                }
            };
            let desc = match epoch {
                Some(ep) => format!("{desc} t{}", e.mtime.min(ep).max(0)),
                None => desc,
            };
            items.insert(e.rel, desc);
        }
        let mut text = String::new();
        for (k, v) in items {
            text.push_str(&k);
            text.push('\0');
            text.push_str(&v);
            text.push('\n');
        }
        Ok(crate::sha(&text))
    }
}

pub fn hash_file(path: &Path) -> std::io::Result<String> {
    use sha2::Digest;
    let mut f = std::fs::File::open(path)?;
    let mut h = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}
