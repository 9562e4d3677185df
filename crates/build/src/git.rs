//! The commit time of a git work tree's HEAD, read from the repository's files.
//!
//! Why a reader and not the `git` binary: the build context may come from anyone (the Engine
//! API unpacks a client's tar, `.git` included), and `git` honours the repository's own
//! configuration — `safe.directory` refuses a tree another user owns, and settings such as
//! `core.fsmonitor` run commands. Reading HEAD → ref → commit object runs nothing, needs no
//! tool on the machine, and gives the same answer everywhere. It covers what a work tree
//! holds: `.git` as a directory or a `gitdir:` file (linked work trees, submodules) with its
//! `commondir`, symbolic and detached HEAD, loose and packed refs, loose objects, pack files
//! (index v2, whole and delta objects) and `objects/info/alternates`. Every read is bounded.

use flate2::read::ZlibDecoder;
use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// No object this reader inflates (a commit, or a delta on the way to one) may be larger.
const MAX_OBJECT: u64 = 16 << 20;
/// Nor may the deltas of one chain add up to more.
const MAX_CHAIN_BYTES: usize = 64 << 20;
/// git's own limit on a delta chain (`pack.depth` at most 4095).
const MAX_DEPTH: usize = 4096;

/// HEAD's commit time (seconds since the epoch, the committer date) of the git work tree
/// `dir` is in: `dir` itself, or with `parents` any directory above it. `Ok(None)` when there
/// is no work tree or HEAD has no commit yet (a new repository); an error when the
/// repository is there but cannot be read.
pub fn head_commit_time(dir: &Path, parents: bool) -> Result<Option<i64>, String> {
    let Some(git_dir) = find_git_dir(dir, parents)? else {
        return Ok(None);
    };
    let repo = Repo::open(git_dir)?;
    let Some(id) = repo.head()? else {
        return Ok(None);
    };
    repo.commit_time(&id).map(Some)
}

/// The `.git` of the work tree `dir` is in. The search upwards stops, as git's does, below
/// the directories `GIT_CEILING_DIRECTORIES` lists.
fn find_git_dir(dir: &Path, parents: bool) -> Result<Option<PathBuf>, String> {
    let ceilings: Vec<PathBuf> = std::env::var_os("GIT_CEILING_DIRECTORIES")
        .map(|v| {
            std::env::split_paths(&v)
                .filter(|p| p.is_absolute())
                .map(|p| p.canonicalize().unwrap_or(p))
                .collect()
        })
        .unwrap_or_default();
    search(dir, parents, &ceilings)
}

fn search(dir: &Path, parents: bool, ceilings: &[PathBuf]) -> Result<Option<PathBuf>, String> {
    // Relative to where it is: "." has no parents until it is made absolute.
    let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    let mut dirs: Vec<&Path> = vec![&dir];
    if parents {
        dirs = dir
            .ancestors()
            .enumerate()
            .take_while(|(i, d)| *i == 0 || !ceilings.iter().any(|c| c == d))
            .map(|(_, d)| d)
            .collect();
    }
    for d in dirs {
        let dot = d.join(".git");
        if dot.is_dir() {
            return Ok(Some(dot));
        }
        if dot.is_file() {
            let text = read_small(&dot)?;
            let Some(target) = text.trim().strip_prefix("gitdir:") else {
                return Err(format!(
                    "{}: expected \"gitdir: <path>\" in a .git file",
                    dot.display()
                ));
            };
            return Ok(Some(d.join(target.trim())));
        }
    }
    Ok(None)
}

fn read_small(p: &Path) -> Result<String, String> {
    let f = File::open(p).map_err(|e| format!("reading {}: {e}", p.display()))?;
    let mut s = String::new();
    f.take(1 << 20)
        .read_to_string(&mut s)
        .map_err(|e| format!("reading {}: {e}", p.display()))?;
    Ok(s)
}

/// A hash as bytes (20 for SHA-1 repositories, 32 for SHA-256 ones).
type Oid = Vec<u8>;

struct Repo {
    git_dir: PathBuf,
    common: PathBuf,
    /// The object directories: the repository's own, then its alternates.
    objects: Vec<PathBuf>,
}

impl Repo {
    fn open(git_dir: PathBuf) -> Result<Repo, String> {
        let common = match read_small(&git_dir.join("commondir")) {
            Ok(c) => git_dir.join(c.trim()),
            Err(_) => git_dir.clone(),
        };
        let mut objects = vec![common.join("objects")];
        let mut i = 0;
        // Alternates may name further alternates; a few levels are plenty (git allows 5).
        while i < objects.len() && objects.len() < 8 {
            if let Ok(t) = read_small(&objects[i].join("info/alternates")) {
                for l in t.lines().map(str::trim) {
                    if !l.is_empty() && !l.starts_with('#') {
                        let p = objects[i].join(l);
                        if !objects.contains(&p) {
                            objects.push(p);
                        }
                    }
                }
            }
            i += 1;
        }
        Ok(Repo {
            git_dir,
            common,
            objects,
        })
    }

    /// HEAD's commit id, `None` on an unborn branch.
    fn head(&self) -> Result<Option<Oid>, String> {
        let mut text = read_small(&self.git_dir.join("HEAD"))?;
        for _ in 0..8 {
            let t = text.trim();
            let Some(name) = t.strip_prefix("ref:") else {
                return parse_hex(t).map(Some);
            };
            match self.read_ref(name.trim())? {
                Some(next) => text = next,
                None => return Ok(None),
            }
        }
        Err("HEAD: too many levels of symbolic refs".into())
    }

    /// A ref's value: its loose file (the work tree's own refs first), else packed-refs.
    fn read_ref(&self, name: &str) -> Result<Option<String>, String> {
        if name.split('/').any(|c| c.is_empty() || c == "..") {
            return Err(format!("HEAD names an invalid ref {name:?}"));
        }
        for base in [&self.git_dir, &self.common] {
            let p = base.join(name);
            if p.is_file() {
                return read_small(&p).map(Some);
            }
        }
        let packed = self.common.join("packed-refs");
        if packed.is_file() {
            let f = File::open(&packed).map_err(|e| format!("{}: {e}", packed.display()))?;
            let mut text = String::new();
            f.take(256 << 20)
                .read_to_string(&mut text)
                .map_err(|e| format!("{}: {e}", packed.display()))?;
            for l in text.lines() {
                if l.starts_with('#') || l.starts_with('^') {
                    continue;
                }
                if let Some((hex, n)) = l.split_once(' ') {
                    if n.trim() == name {
                        return Ok(Some(hex.to_string()));
                    }
                }
            }
        }
        Ok(None)
    }

    /// The committer time of commit `id` (following an annotated tag to its commit).
    fn commit_time(&self, id: &Oid) -> Result<i64, String> {
        let mut id = id.clone();
        for _ in 0..8 {
            let (kind, body) = self.object(&id)?;
            let text = String::from_utf8_lossy(&body);
            let headers = text.split("\n\n").next().unwrap_or_default();
            match kind {
                Kind::Commit => {
                    return headers
                        .lines()
                        .find_map(|l| l.strip_prefix("committer "))
                        .and_then(|l| l.rsplit(' ').nth(1))
                        .and_then(|t| t.parse().ok())
                        .ok_or_else(|| format!("commit {}: no committer time", hex::encode(&id)))
                }
                Kind::Tag => {
                    let target = headers
                        .lines()
                        .find_map(|l| l.strip_prefix("object "))
                        .ok_or_else(|| format!("tag {}: no object", hex::encode(&id)))?;
                    id = parse_hex(target)?;
                }
                _ => return Err(format!("HEAD {} is not a commit", hex::encode(&id))),
            }
        }
        Err("HEAD: too many levels of tags".into())
    }

    /// An object's type and content, loose or packed.
    fn object(&self, id: &Oid) -> Result<(Kind, Vec<u8>), String> {
        let hex = hex::encode(id);
        for dir in &self.objects {
            let loose = dir.join(&hex[..2]).join(&hex[2..]);
            if let Ok(f) = File::open(&loose) {
                return read_loose(f).map_err(|e| format!("{}: {e}", loose.display()));
            }
        }
        for dir in &self.objects {
            let Ok(entries) = std::fs::read_dir(dir.join("pack")) else {
                continue;
            };
            for e in entries.flatten() {
                let idx = e.path();
                if idx.extension().is_none_or(|x| x != "idx") {
                    continue;
                }
                let pack = Pack::open(&idx).map_err(|err| format!("{}: {err}", idx.display()))?;
                if let Some(off) = pack
                    .find(id)
                    .map_err(|err| format!("{}: {err}", idx.display()))?
                {
                    return self
                        .packed(&pack, off)
                        .map_err(|err| format!("{}: {err}", pack.path.display()));
                }
            }
        }
        Err(format!(
            "object {hex} is missing from {}",
            self.objects[0].display()
        ))
    }

    /// A packed object: its deltas collected back to a whole base, then applied in order.
    fn packed(&self, pack: &Pack, offset: u64) -> Result<(Kind, Vec<u8>), String> {
        let mut deltas: Vec<Vec<u8>> = Vec::new();
        let mut total = 0;
        let mut at = (offset, None::<Oid>);
        loop {
            if deltas.len() >= MAX_DEPTH || total > MAX_CHAIN_BYTES {
                return Err(format!("a delta chain at offset {offset} is too long"));
            }
            let (kind, data) = match at {
                (off, None) => pack.entry(off)?,
                (_, Some(id)) => {
                    // A REF_DELTA's base may sit anywhere: another pack, or loose.
                    let (k, d) = self.object(&id)?;
                    (Entry::Whole(k), d)
                }
            };
            match kind {
                Entry::Whole(k) => {
                    let mut obj = data;
                    for d in deltas.iter().rev() {
                        obj = apply_delta(&obj, d)?;
                    }
                    return Ok((k, obj));
                }
                Entry::OfsDelta(base) => {
                    total += data.len();
                    deltas.push(data);
                    at = (base, None);
                }
                Entry::RefDelta(id) => {
                    total += data.len();
                    deltas.push(data);
                    at = (0, Some(id));
                }
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Commit,
    Tree,
    Blob,
    Tag,
}

impl Kind {
    fn from_name(n: &[u8]) -> Option<Kind> {
        Some(match n {
            b"commit" => Kind::Commit,
            b"tree" => Kind::Tree,
            b"blob" => Kind::Blob,
            b"tag" => Kind::Tag,
            _ => return None,
        })
    }
}

enum Entry {
    Whole(Kind),
    OfsDelta(u64),
    RefDelta(Oid),
}

fn parse_hex(s: &str) -> Result<Oid, String> {
    let s = s.trim();
    if s.len() != 40 && s.len() != 64 {
        return Err(format!("{s:?} is no object id"));
    }
    hex::decode(s).map_err(|_| format!("{s:?} is no object id"))
}

/// `<type> <size>\0<content>`, zlib-compressed.
fn read_loose(f: File) -> Result<(Kind, Vec<u8>), String> {
    let mut data = Vec::new();
    ZlibDecoder::new(BufReader::new(f))
        .take(MAX_OBJECT + 64)
        .read_to_end(&mut data)
        .map_err(|e| e.to_string())?;
    let nul = data
        .iter()
        .position(|&b| b == 0)
        .ok_or("no object header")?;
    let (kind, size) = data[..nul]
        .iter()
        .position(|&b| b == b' ')
        .map(|sp| (&data[..sp], &data[sp + 1..nul]))
        .ok_or("no object header")?;
    let kind = Kind::from_name(kind).ok_or("unknown object type")?;
    let size: usize = std::str::from_utf8(size)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or("bad object size")?;
    let body = data.split_off(nul + 1);
    if body.len() != size {
        return Err(format!(
            "object is {} bytes, its header says {size} (larger than {MAX_OBJECT} bytes?)",
            body.len()
        ));
    }
    Ok((kind, body))
}

/// A pack file and its index (version 2).
struct Pack {
    path: PathBuf,
    idx: File,
    count: u32,
    fanout: Vec<u32>,
    hash_len: usize,
}

impl Pack {
    fn open(idx_path: &Path) -> Result<Pack, String> {
        let idx = File::open(idx_path).map_err(|e| e.to_string())?;
        let mut head = vec![0u8; 8 + 256 * 4];
        idx.read_exact_at(&mut head, 0)
            .map_err(|e| format!("short index: {e}"))?;
        if head[..8] != [0xff, b't', b'O', b'c', 0, 0, 0, 2] {
            return Err("not a version 2 pack index".into());
        }
        let fanout: Vec<u32> = head[8..]
            .chunks(4)
            .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        let count = fanout[255];
        let len = idx.metadata().map_err(|e| e.to_string())?.len();
        // header, fanout, then per object: hash, crc, offset; then the two trailing hashes.
        let fixed = 8 + 1024 + u64::from(count) * 8;
        let hash_len = if count == 0 {
            20
        } else {
            match (len - fixed.min(len)) / (u64::from(count) + 2) {
                20..=31 => 20,
                _ => 32,
            }
        };
        Ok(Pack {
            path: idx_path.with_extension("pack"),
            idx,
            count,
            fanout,
            hash_len,
        })
    }

    fn read_at(&self, off: u64, n: usize) -> Result<Vec<u8>, String> {
        let mut b = vec![0u8; n];
        self.idx
            .read_exact_at(&mut b, off)
            .map_err(|e| format!("short index: {e}"))?;
        Ok(b)
    }

    /// The pack offset of `id`: a binary search in its fanout bucket.
    fn find(&self, id: &Oid) -> Result<Option<u64>, String> {
        if id.len() != self.hash_len {
            return Ok(None);
        }
        let first = id[0] as usize;
        let mut lo = if first == 0 {
            0
        } else {
            self.fanout[first - 1]
        };
        let mut hi = self.fanout[first];
        let hashes = 8 + 1024u64;
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let h = self.read_at(
                hashes + u64::from(mid) * self.hash_len as u64,
                self.hash_len,
            )?;
            match h.as_slice().cmp(id.as_slice()) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return self.offset(mid).map(Some),
            }
        }
        Ok(None)
    }

    fn offset(&self, i: u32) -> Result<u64, String> {
        let n = u64::from(self.count);
        let offsets = 8 + 1024 + n * (self.hash_len as u64 + 4);
        let b = self.read_at(offsets + u64::from(i) * 4, 4)?;
        let o = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
        if o & 0x8000_0000 == 0 {
            return Ok(u64::from(o));
        }
        let large = offsets + n * 4 + u64::from(o & 0x7fff_ffff) * 8;
        let b = self.read_at(large, 8)?;
        Ok(u64::from_be_bytes(b.try_into().expect("8 bytes")))
    }

    /// The entry at `off`: what it is and its inflated data.
    fn entry(&self, off: u64) -> Result<(Entry, Vec<u8>), String> {
        let mut f = File::open(&self.path).map_err(|e| e.to_string())?;
        f.seek(SeekFrom::Start(off)).map_err(|e| e.to_string())?;
        let mut r = BufReader::new(f);
        let mut byte = || -> Result<u8, String> {
            let mut b = [0u8];
            r.read_exact(&mut b)
                .map_err(|e| format!("short pack: {e}"))?;
            Ok(b[0])
        };
        let mut c = byte()?;
        let kind = (c >> 4) & 7;
        let mut size = u64::from(c & 15);
        let mut shift = 4;
        while c & 0x80 != 0 {
            c = byte()?;
            if shift > 56 {
                return Err("bad entry size".into());
            }
            size |= u64::from(c & 0x7f) << shift;
            shift += 7;
        }
        let entry = match kind {
            1 => Entry::Whole(Kind::Commit),
            2 => Entry::Whole(Kind::Tree),
            3 => Entry::Whole(Kind::Blob),
            4 => Entry::Whole(Kind::Tag),
            6 => {
                let mut c = byte()?;
                let mut back = u64::from(c & 0x7f);
                while c & 0x80 != 0 {
                    c = byte()?;
                    if back > u64::MAX >> 8 {
                        return Err("bad delta offset".into());
                    }
                    back = ((back + 1) << 7) | u64::from(c & 0x7f);
                }
                if back == 0 || back > off {
                    return Err(format!("bad delta base at offset {off}"));
                }
                Entry::OfsDelta(off - back)
            }
            7 => {
                let mut id = vec![0u8; self.hash_len];
                for b in id.iter_mut() {
                    *b = byte()?;
                }
                Entry::RefDelta(id)
            }
            k => return Err(format!("unknown entry type {k} at offset {off}")),
        };
        if size > MAX_OBJECT {
            return Err(format!(
                "entry at offset {off} is {size} bytes, more than {MAX_OBJECT}"
            ));
        }
        let mut data = Vec::with_capacity(size as usize);
        ZlibDecoder::new(r)
            .take(size)
            .read_to_end(&mut data)
            .map_err(|e| format!("inflating offset {off}: {e}"))?;
        if data.len() as u64 != size {
            return Err(format!("entry at offset {off} is short"));
        }
        Ok((entry, data))
    }
}

/// A git delta applied to `base`: the sizes, then copy (from the base) and insert ops.
fn apply_delta(base: &[u8], delta: &[u8]) -> Result<Vec<u8>, String> {
    let mut i = 0;
    let varint = |i: &mut usize| -> Result<u64, String> {
        let mut v = 0u64;
        let mut shift = 0;
        loop {
            let c = *delta.get(*i).ok_or("short delta")?;
            *i += 1;
            if shift > 56 {
                return Err("bad delta size".to_string());
            }
            v |= u64::from(c & 0x7f) << shift;
            shift += 7;
            if c & 0x80 == 0 {
                return Ok(v);
            }
        }
    };
    let src = varint(&mut i)?;
    let dst = varint(&mut i)?;
    if src != base.len() as u64 || dst > MAX_OBJECT {
        return Err("delta does not fit its base".into());
    }
    let mut out = Vec::with_capacity(dst as usize);
    while i < delta.len() {
        let op = delta[i];
        i += 1;
        if op & 0x80 != 0 {
            let mut off = 0usize;
            let mut len = 0usize;
            for bit in 0..4 {
                if op & (1 << bit) != 0 {
                    off |= usize::from(*delta.get(i).ok_or("short delta")?) << (8 * bit);
                    i += 1;
                }
            }
            for bit in 0..3 {
                if op & (0x10 << bit) != 0 {
                    len |= usize::from(*delta.get(i).ok_or("short delta")?) << (8 * bit);
                    i += 1;
                }
            }
            if len == 0 {
                len = 0x10000;
            }
            let part = off
                .checked_add(len)
                .and_then(|end| base.get(off..end))
                .ok_or("delta copies past its base")?;
            out.extend_from_slice(part);
        } else if op != 0 {
            let part = delta.get(i..i + usize::from(op)).ok_or("short delta")?;
            out.extend_from_slice(part);
            i += usize::from(op);
        } else {
            return Err("bad delta op 0".into());
        }
        if out.len() as u64 > dst {
            return Err("delta overruns its size".into());
        }
    }
    if out.len() as u64 != dst {
        return Err("delta result has the wrong size".into());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    /// `git` with a fixed identity and dates, failing the test when it fails (or is missing:
    /// scripts/setup.sh installs it).
    fn git(dir: &Path, args: &[&str], date: &str) {
        let out = Command::new("git")
            .args(args)
            .current_dir(dir)
            .env("GIT_AUTHOR_NAME", "a")
            .env("GIT_AUTHOR_EMAIL", "a@example.com")
            .env("GIT_COMMITTER_NAME", "c")
            .env("GIT_COMMITTER_EMAIL", "c@example.com")
            .env("GIT_AUTHOR_DATE", date)
            .env("GIT_COMMITTER_DATE", date)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("HOME", dir)
            .output()
            .expect("running git (scripts/setup.sh installs it)");
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn repo(date: &str) -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        git(d.path(), &["init", "-q", "-b", "main"], date);
        std::fs::write(d.path().join("f"), "one\n").unwrap();
        git(d.path(), &["add", "f"], date);
        git(d.path(), &["commit", "-q", "-m", "first"], date);
        d
    }

    #[test]
    fn no_work_tree_and_unborn_head_are_none() {
        let d = tempfile::tempdir().unwrap();
        assert_eq!(head_commit_time(d.path(), false).unwrap(), None);
        git(d.path(), &["init", "-q"], "@1700000000 +0000");
        assert_eq!(head_commit_time(d.path(), false).unwrap(), None);
    }

    #[test]
    fn loose_commit_and_subdirectory() {
        let d = repo("@1700000000 +0200");
        assert_eq!(head_commit_time(d.path(), false).unwrap(), Some(1700000000));
        let sub = d.path().join("sub/dir");
        std::fs::create_dir_all(&sub).unwrap();
        assert_eq!(head_commit_time(&sub, true).unwrap(), Some(1700000000));
        assert_eq!(head_commit_time(&sub, false).unwrap(), None);
        // The search stops below a ceiling directory, and never checks the ceiling itself.
        let top = d.path().canonicalize().unwrap();
        let ceil = [top.join("sub")];
        assert_eq!(search(&sub, true, &ceil).unwrap(), None);
        assert!(search(&sub, true, &ceil[..0]).unwrap().is_some());
        let ceil = [top.clone()];
        assert_eq!(search(&sub, true, &ceil).unwrap(), None);
        // As in git, a ceiling that is the start directory itself does not stop the search.
        let ceil = [top.join("sub/dir")];
        assert!(search(&sub, true, &ceil).unwrap().is_some());
    }

    #[test]
    fn packed_refs_and_objects_detached_and_tags() {
        let d = repo("@1700000000 +0000");
        git(
            d.path(),
            &["commit", "-q", "--allow-empty", "-m", "second"],
            "@1700000100 +0000",
        );
        git(d.path(), &["gc", "-q", "--aggressive"], "@1700000100 +0000");
        assert!(
            !d.path().join(".git/refs/heads/main").exists(),
            "gc packs the refs"
        );
        assert_eq!(head_commit_time(d.path(), false).unwrap(), Some(1700000100));
        git(
            d.path(),
            &["checkout", "-q", "--detach", "HEAD~1"],
            "@1700000200 +0000",
        );
        assert_eq!(head_commit_time(d.path(), false).unwrap(), Some(1700000000));
    }

    #[test]
    fn delta_chains_in_a_pack() {
        let d = repo("@1700000000 +0000");
        // Long, nearly equal messages make git store commits as deltas of each other.
        let body = "x".repeat(4000);
        for i in 1..=20 {
            let date = format!("@{} +0000", 1700000000 + i);
            git(
                d.path(),
                &["commit", "-q", "--allow-empty", "-m", &format!("{body}{i}")],
                &date,
            );
        }
        git(
            d.path(),
            &["repack", "-q", "-adf", "--window=50", "--depth=50"],
            "@1700000000 +0000",
        );
        let out = Command::new("sh")
            .arg("-c")
            .arg("git verify-pack -v .git/objects/pack/*.idx | awk '$2==\"commit\" && NF>=7' | wc -l")
            .current_dir(d.path())
            .output()
            .unwrap();
        let deltas: u32 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
        assert!(deltas > 0, "the pack holds commit deltas");
        // Every commit of the chain, read back through its deltas.
        for i in 0..=20 {
            git(
                d.path(),
                &["checkout", "-q", "--detach", &format!("main~{i}")],
                "@1700000000 +0000",
            );
            assert_eq!(
                head_commit_time(d.path(), false).unwrap(),
                Some(1700000020 - i),
            );
        }
    }

    #[test]
    fn linked_work_tree() {
        let d = repo("@1700000000 +0000");
        git(
            d.path(),
            &["commit", "-q", "--allow-empty", "-m", "2"],
            "@1700000300 +0000",
        );
        let wt = d.path().join("wt");
        git(
            d.path(),
            &["worktree", "add", "-q", "wt", "HEAD~1"],
            "@1700000000 +0000",
        );
        assert_eq!(head_commit_time(&wt, false).unwrap(), Some(1700000000));
    }

    #[test]
    fn corrupt_repository_is_an_error() {
        let d = repo("@1700000000 +0000");
        std::fs::write(d.path().join(".git/HEAD"), "0123\n").unwrap();
        assert!(head_commit_time(d.path(), false).is_err());
        std::fs::write(d.path().join(".git/HEAD"), format!("{}\n", "ab".repeat(20))).unwrap();
        let e = head_commit_time(d.path(), false).unwrap_err();
        assert!(e.contains("missing"), "{e}");
    }

    #[test]
    fn delta_ops() {
        let base = b"hello world";
        // src 11, dst 10, copy 5 from 0, insert "there"… (here: insert " you!")
        let delta = [11u8, 10, 0x90, 5, 5, b' ', b'y', b'o', b'u', b'!'];
        assert_eq!(apply_delta(base, &delta).unwrap(), b"hello you!");
        assert!(apply_delta(base, &[11, 3, 0x91, 20, 5]).is_err());
        assert!(apply_delta(base, &[11, 1, 0]).is_err());
    }
}
