//! Extraction of a layer tar into an overlay diff directory, safe against hostile archives.
//!
//! # Path safety
//!
//! Every lookup of an archive path goes through `openat2(2)` (via `rustix`) on a descriptor of
//! the layer root with `RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS`: the kernel resolves `..` and
//! absolute symlinks as if the layer root were `/`, so no symlink planted by an earlier entry can
//! lead a later one outside the root, and `/proc` magic links are refused. Only the *parent*
//! directory of an entry is resolved that way; the entry itself is then created, replaced or
//! changed with `*at` calls relative to that parent descriptor, with a single path component and
//! without following a final symlink (`O_NOFOLLOW`, `AT_SYMLINK_NOFOLLOW`, `O_EXCL`). This is the
//! semantics Docker gets by extracting inside a chroot, without the chroot.
//!
//! We use our own few lines over `openat2` instead of the `pathrs` crate: extraction needs
//! `mknodat`, `linkat`, `symlinkat`, `fchownat` and xattrs relative to a resolved parent, which
//! are plain syscalls once the parent descriptor is known, and keeping the hot path to one
//! `openat2` per new parent directory (cached across consecutive entries) keeps extraction fast.
//! Kernels without `openat2` (< 5.6) are not supported.
//!
//! On top of that, names are checked lexically as Docker does: an entry name or hardlink target
//! whose `..` components climb above the root, and a relative symlink target that climbs above
//! the root from the symlink's directory, are rejected with [`LayerError::Breakout`] and friends.
//! Absolute names are taken relative to the root.
//!
//! # Semantics (Docker's `UnpackLayer` with the overlay whiteout format)
//!
//! - `.wh.NAME` becomes an overlay whiteout: a character device 0:0 named `NAME`.
//! - `.wh..wh..opq` sets `trusted.overlay.opaque=y` on its directory.
//! - Other top-level `.wh..wh.*` entries (AUFS metadata) are skipped.
//! - An entry replaces whatever exists at its path, except that a directory entry over an
//!   existing directory merges (only the metadata is applied).
//! - Missing parent directories are created with mode 0755.
//! - Ownership (`lchown`), modes (setuid/setgid/sticky included, applied after `chown`), xattrs
//!   (PAX `SCHILY.xattr.*`; `trusted.overlay.*` from an archive is dropped, as overlayfs would
//!   trust it; `EPERM`/`ENOTSUP` are ignored as Docker does) and mtimes are applied; directory
//!   mtimes are applied after all entries.
//! - Character and block devices and FIFOs are created with `mknod`.
//! - Sparse files: GNU's old `S` entries (read by the `tar` crate, holes written as zeros) and
//!   PAX sparse files (`GNU.sparse.*`, formats 0.0, 0.1 and 1.0, as Go's reader and so Docker
//!   take them): named by `GNU.sparse.name`, data segments written at their offsets, holes kept.
//! - Nothing is fsynced: the caller syncs the whole directory once (`syncfs`).

use super::{ApplyStats, LayerError};
use rustix::fs::{AtFlags, Mode, OFlags, ResolveFlags};
use std::ffi::{CString, OsStr};
use std::fs::File;
use std::io::{self, BufReader, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::rc::Rc;

const BUF: usize = 1 << 20;
const WHITEOUT_PREFIX: &[u8] = b".wh.";
const WHITEOUT_META_PREFIX: &[u8] = b".wh..wh.";
const WHITEOUT_OPAQUE: &[u8] = b".wh..wh..opq";
const OPAQUE_XATTR: &str = "trusted.overlay.opaque";

/// Extracts the uncompressed tar stream `archive` into `root`, an existing (normally empty)
/// directory that becomes this layer's overlay diff directory. Reads `archive` to its end.
pub fn apply_layer<R: Read>(archive: R, root: &Path) -> Result<ApplyStats, LayerError> {
    extract(archive, root, false)
}

/// Extracts a plain tar (`cp`, not a layer) into `root` with the same path safety: no
/// whiteout handling (`.wh.*` names are ordinary files), and symlink targets are kept as they
/// are (a link is never followed when entries are created, so its target cannot lead a write
/// out of `root`).
pub fn apply_archive<R: Read>(archive: R, root: &Path) -> Result<ApplyStats, LayerError> {
    extract(archive, root, true)
}

fn extract<R: Read>(archive: R, root: &Path, plain: bool) -> Result<ApplyStats, LayerError> {
    let root_fd = rustix::fs::open(
        root,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| LayerError::Fs {
        path: root.to_path_buf(),
        source: e.into(),
    })?;
    let mut ex = Extractor {
        root: Rc::new(root_fd),
        cache: None,
        dirs: Vec::new(),
        buf: vec![0u8; BUF],
        stats: ApplyStats::default(),
        plain,
    };
    let mut ar = tar::Archive::new(BufReader::with_capacity(BUF, archive));
    for entry in ar.entries().map_err(corrupt)? {
        let mut entry = entry.map_err(corrupt)?;
        ex.entry(&mut entry)?;
    }
    // Read what follows the end-of-archive blocks so that a decompressor sees (and checks) the
    // end of its stream.
    let mut rest = ar.into_inner();
    io::copy(&mut rest, &mut io::sink()).map_err(corrupt)?;
    ex.finish();
    Ok(ex.stats)
}

fn corrupt(e: io::Error) -> LayerError {
    LayerError::Corrupt(e.to_string())
}

struct Extractor {
    root: Rc<OwnedFd>,
    /// The last resolved parent directory: its path (components joined by `/`) and descriptor.
    cache: Option<(Vec<u8>, Rc<OwnedFd>)>,
    /// Directories whose mtime is set at the end: path (joined) and mtime.
    dirs: Vec<(Vec<u8>, Timespec)>,
    buf: Vec<u8>,
    stats: ApplyStats,
    /// A plain archive: no whiteouts, link targets unchecked.
    plain: bool,
}

#[derive(Clone, Copy)]
struct Timespec {
    sec: i64,
    nsec: i64,
}

/// The metadata of one entry.
struct Meta {
    uid: u32,
    gid: u32,
    mode: u32,
    mtime: Timespec,
    xattrs: Vec<(CString, Vec<u8>)>,
}

/// A cleaned archive path: components, none of them empty, `.` or `..`.
type Comps = Vec<Vec<u8>>;

/// Lexically cleans `p` (as Go's `filepath.Clean` relative to the root): leading `/` dropped,
/// `.` and empty components skipped, `..` removing the previous component. `None` when `..`
/// climbs above the root.
fn clean(p: &[u8]) -> Option<Comps> {
    let mut out: Comps = Vec::new();
    for c in p.split(|&b| b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => {
                out.pop()?;
            }
            c => out.push(c.to_vec()),
        }
    }
    Some(out)
}

fn join(c: &[Vec<u8>]) -> Vec<u8> {
    c.join(&b'/')
}

fn show(p: &[u8]) -> String {
    String::from_utf8_lossy(p).into_owned()
}

fn os(b: &[u8]) -> &OsStr {
    OsStr::from_bytes(b)
}

fn errno(e: rustix::io::Errno) -> io::Error {
    e.into()
}

impl Extractor {
    fn entry<R: Read>(&mut self, e: &mut tar::Entry<'_, R>) -> Result<(), LayerError> {
        use tar::EntryType as T;
        let kind = e.header().entry_type();
        if matches!(
            kind,
            T::XGlobalHeader | T::XHeader | T::GNULongName | T::GNULongLink
        ) {
            return Ok(());
        }
        let sparse = sparse_of(e)?;
        let raw = match sparse.as_ref().and_then(|s| s.name.clone()) {
            Some(n) => n,
            None => e.path_bytes().into_owned(),
        };
        // Old tars mark directories only by a trailing '/' on a type '\0' entry (as Go reads them).
        let kind = if e.header().as_old().linkflag[0] == 0 && raw.ends_with(b"/") {
            T::Directory
        } else {
            kind
        };
        let name = show(&raw);
        let comps = clean(&raw).ok_or_else(|| LayerError::Breakout(name.clone()))?;
        self.stats.entries += 1;

        // AUFS metadata directories at the top level are not part of the image.
        if let Some(first) = comps.first().filter(|_| !self.plain) {
            if first.starts_with(WHITEOUT_META_PREFIX)
                && !(comps.len() == 1 && first == WHITEOUT_OPAQUE)
            {
                return Ok(());
            }
        }

        let meta = self.meta(e, &name)?;
        let io_err = |source: io::Error| LayerError::Io {
            path: name.clone(),
            source,
        };

        let Some((base, parent)) = comps.split_last() else {
            // The root itself: only a directory entry makes sense; apply its metadata.
            if kind != T::Directory {
                return Err(LayerError::Invalid {
                    path: name,
                    reason: "only a directory can replace the layer root".into(),
                });
            }
            let fd = rustix::fs::openat(
                &self.root,
                ".",
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(|e| io_err(errno(e)))?;
            apply_fd_meta(fd.as_fd(), &meta).map_err(io_err)?;
            self.dirs.push((Vec::new(), meta.mtime));
            return Ok(());
        };

        // Whiteouts.
        if base == WHITEOUT_OPAQUE && !self.plain {
            let pfd = self.parent(parent, &name)?;
            let dfd = reopen_dir(pfd.as_fd()).map_err(io_err)?;
            set_xattr_fd(dfd.as_fd(), &CString::new(OPAQUE_XATTR).unwrap(), b"y")
                .map_err(io_err)?;
            return Ok(());
        }
        if let Some(hidden) = base.strip_prefix(WHITEOUT_PREFIX).filter(|_| !self.plain) {
            if hidden.is_empty() || hidden == b"." {
                return Err(LayerError::Invalid {
                    path: name,
                    reason: "whiteout of nothing".into(),
                });
            }
            if hidden == b".." {
                return Err(LayerError::Breakout(name));
            }
            let pfd = self.parent(parent, &name)?;
            self.remove_existing(pfd.as_fd(), hidden).map_err(io_err)?;
            rustix::fs::mknodat(
                pfd.as_fd(),
                os(hidden),
                rustix::fs::FileType::CharacterDevice,
                Mode::empty(),
                rustix::fs::makedev(0, 0),
            )
            .map_err(|e| io_err(errno(e)))?;
            chown_at(pfd.as_fd(), hidden, meta.uid, meta.gid).map_err(io_err)?;
            return Ok(());
        }

        let pfd_rc = self.parent(parent, &name)?;
        let pfd = pfd_rc.as_fd();
        let bos = os(base);

        // Each creation below is tried first; when the name exists, what is there is replaced
        // (see `create_or_replace`), which spares a lookup per entry in a fresh directory.
        match kind {
            T::Regular | T::Continuous | T::GNUSparse => {
                let fd = self
                    .create_or_replace(pfd, base, false, || {
                        rustix::fs::openat(
                            pfd,
                            bos,
                            OFlags::WRONLY
                                | OFlags::CREATE
                                | OFlags::EXCL
                                | OFlags::NOFOLLOW
                                | OFlags::CLOEXEC,
                            Mode::from_raw_mode(0o600),
                        )
                    })
                    .map_err(io_err)?
                    .expect("not a directory");
                let mut f = File::from(fd);
                let want = e.size();
                if let Some(sp) = sparse {
                    self.sparse_data(e, &mut f, sp, &name)
                        .map_err(|err| match err {
                            SparseError::Io(err) => io_err(err),
                            SparseError::Layer(l) => l,
                        })?;
                    apply_fd_meta(f.as_fd(), &meta).map_err(io_err)?;
                    set_times_fd(f.as_fd(), meta.mtime).map_err(io_err)?;
                    return Ok(());
                }
                let mut got = 0u64;
                loop {
                    let n = match e.read(&mut self.buf) {
                        Ok(0) => break,
                        Ok(n) => n,
                        Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                        Err(err) => return Err(corrupt_at(&name, err)),
                    };
                    f.write_all(&self.buf[..n]).map_err(io_err)?;
                    got += n as u64;
                }
                if got != want {
                    return Err(LayerError::Corrupt(format!(
                        "entry {name:?} ends after {got} of {want} bytes"
                    )));
                }
                self.stats.size += want;
                apply_fd_meta(f.as_fd(), &meta).map_err(io_err)?;
                set_times_fd(f.as_fd(), meta.mtime).map_err(io_err)?;
            }
            T::Directory => {
                // An existing directory is merged with (only the metadata applies).
                self.create_or_replace(pfd, base, true, || {
                    rustix::fs::mkdirat(pfd, bos, Mode::from_raw_mode(0o700))
                })
                .map_err(io_err)?;
                let dfd = rustix::fs::openat(
                    pfd,
                    bos,
                    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .map_err(|e| io_err(errno(e)))?;
                apply_fd_meta(dfd.as_fd(), &meta).map_err(io_err)?;
                self.dirs.push((join(&comps), meta.mtime));
            }
            T::Symlink => {
                let target = e
                    .link_name_bytes()
                    .map(|c| c.into_owned())
                    .unwrap_or_default();
                if target.is_empty() {
                    return Err(LayerError::Invalid {
                        path: name,
                        reason: "symlink with an empty target".into(),
                    });
                }
                // Docker's check: a relative target must stay inside the root when resolved
                // lexically from the symlink's directory.
                if target[0] != b'/' && !self.plain {
                    let mut full = join(parent);
                    full.push(b'/');
                    full.extend_from_slice(&target);
                    if clean(&full).is_none() {
                        return Err(LayerError::LinkBreakout {
                            path: name,
                            target: show(&target),
                        });
                    }
                }
                self.create_or_replace(pfd, base, false, || {
                    rustix::fs::symlinkat(os(&target), pfd, bos)
                })
                .map_err(io_err)?;
                self.cache = None;
                chown_at(pfd, base, meta.uid, meta.gid).map_err(io_err)?;
                set_xattrs_at(pfd, base, &meta.xattrs).map_err(io_err)?;
                set_times_at(pfd, base, meta.mtime).map_err(io_err)?;
            }
            T::Link => {
                let target = e
                    .link_name_bytes()
                    .map(|c| c.into_owned())
                    .unwrap_or_default();
                let tcomps = clean(&target).ok_or_else(|| LayerError::LinkBreakout {
                    path: name.clone(),
                    target: show(&target),
                })?;
                let Some((tbase, tparent)) = tcomps.split_last() else {
                    return Err(LayerError::Invalid {
                        path: name,
                        reason: "hardlink to the layer root".into(),
                    });
                };
                let missing = || LayerError::Invalid {
                    path: name.clone(),
                    reason: format!(
                        "hardlink target {:?} is not an earlier entry of the layer",
                        show(&target)
                    ),
                };
                let tpfd = match self.lookup_dir(&join(tparent)) {
                    Ok(fd) => fd,
                    Err(rustix::io::Errno::NOENT) | Err(rustix::io::Errno::NOTDIR) => {
                        return Err(missing())
                    }
                    Err(e) => return Err(io_err(errno(e))),
                };
                let tst = match rustix::fs::statat(&tpfd, os(tbase), AtFlags::SYMLINK_NOFOLLOW) {
                    Ok(st) => st,
                    Err(rustix::io::Errno::NOENT) => return Err(missing()),
                    Err(e) => return Err(io_err(errno(e))),
                };
                let ttype = rustix::fs::FileType::from_raw_mode(tst.st_mode);
                if ttype == rustix::fs::FileType::Directory {
                    return Err(LayerError::Invalid {
                        path: name,
                        reason: "hardlink to a directory".into(),
                    });
                }
                match self.create_or_replace(pfd, base, false, || {
                    rustix::fs::linkat(&tpfd, os(tbase), pfd, bos, AtFlags::empty())
                }) {
                    Ok(_) => {}
                    // The target was the entry's own (replaced) name.
                    Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(missing()),
                    Err(e) => return Err(io_err(e)),
                }
                // As Docker: ownership and mode, but no times (they belong to the shared inode),
                // and no mode through a symlink.
                chown_at(pfd, base, meta.uid, meta.gid).map_err(io_err)?;
                if ttype != rustix::fs::FileType::Symlink {
                    chmod_at(pfd, base, meta.mode).map_err(io_err)?;
                }
                set_xattrs_at(pfd, base, &meta.xattrs).map_err(io_err)?;
            }
            T::Char | T::Block | T::Fifo => {
                let (ft, dev) = match kind {
                    T::Fifo => (rustix::fs::FileType::Fifo, rustix::fs::makedev(0, 0)),
                    _ => {
                        let h = e.header();
                        let major = h.device_major().ok().flatten().unwrap_or(0);
                        let minor = h.device_minor().ok().flatten().unwrap_or(0);
                        let ft = if kind == T::Char {
                            rustix::fs::FileType::CharacterDevice
                        } else {
                            rustix::fs::FileType::BlockDevice
                        };
                        (ft, rustix::fs::makedev(major, minor))
                    }
                };
                self.create_or_replace(pfd, base, false, || {
                    rustix::fs::mknodat(pfd, bos, ft, Mode::from_raw_mode(0o600), dev)
                })
                .map_err(io_err)?;
                chown_at(pfd, base, meta.uid, meta.gid).map_err(io_err)?;
                chmod_at(pfd, base, meta.mode).map_err(io_err)?;
                set_xattrs_at(pfd, base, &meta.xattrs).map_err(io_err)?;
                set_times_at(pfd, base, meta.mtime).map_err(io_err)?;
            }
            other => {
                return Err(LayerError::Invalid {
                    path: name,
                    reason: format!("unsupported tar entry type {:?}", other.as_byte() as char),
                })
            }
        }
        Ok(())
    }

    /// Writes the data of a PAX sparse file: each data segment at its offset, holes left as
    /// holes, then the real size. Format 1.0 keeps the map at the start of the data.
    fn sparse_data<R: Read>(
        &mut self,
        e: &mut tar::Entry<'_, R>,
        f: &mut File,
        sp: Sparse,
        name: &str,
    ) -> Result<(), SparseError> {
        use std::io::{Seek, SeekFrom};
        let corrupt = |what: &str| {
            SparseError::Layer(LayerError::Corrupt(format!(
                "sparse entry {name:?}: {what}"
            )))
        };
        let stored = e.size();
        let (map, got) = match sp.map {
            Some(m) => (m, 0u64),
            None => read_sparse_map(e).map_err(|w| corrupt(&w))?,
        };
        let mut end = 0u64;
        let mut data = 0u64;
        for &(off, len) in &map {
            let seg_end = off
                .checked_add(len)
                .ok_or_else(|| corrupt("segment overflows"))?;
            if off < end || seg_end > sp.size {
                return Err(corrupt("segments overlap or pass the real size"));
            }
            end = seg_end;
            data = data
                .checked_add(len)
                .ok_or_else(|| corrupt("segments overflow"))?;
        }
        if got.checked_add(data) != Some(stored) {
            return Err(corrupt("the map does not match the stored size"));
        }
        for (off, len) in map {
            f.seek(SeekFrom::Start(off)).map_err(SparseError::Io)?;
            let mut left = len;
            while left > 0 {
                let want = left.min(self.buf.len() as u64) as usize;
                let n = match e.read(&mut self.buf[..want]) {
                    Ok(0) => return Err(corrupt("ends early")),
                    Ok(n) => n,
                    Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                    Err(err) => return Err(SparseError::Layer(corrupt_at(name, err))),
                };
                f.write_all(&self.buf[..n]).map_err(SparseError::Io)?;
                left -= n as u64;
            }
        }
        f.set_len(sp.size).map_err(SparseError::Io)?;
        self.stats.size += sp.size;
        Ok(())
    }

    /// The entry's ownership, mode, mtime and xattrs, PAX records taking precedence.
    fn meta<R: Read>(&self, e: &mut tar::Entry<'_, R>, name: &str) -> Result<Meta, LayerError> {
        let h = e.header();
        let bad = |what: &str, err: io::Error| {
            LayerError::Corrupt(format!("entry {name:?}: bad {what}: {err}"))
        };
        let mut uid = h.uid().map_err(|e| bad("uid", e))?;
        let mut gid = h.gid().map_err(|e| bad("gid", e))?;
        let mode = h.mode().map_err(|e| bad("mode", e))? & 0o7777;
        let mut mtime = Timespec {
            sec: h.mtime().map_err(|e| bad("mtime", e))? as i64,
            nsec: 0,
        };
        let mut xattrs = Vec::new();
        if let Some(pax) = e.pax_extensions().map_err(|e| bad("pax header", e))? {
            for ext in pax {
                let ext = ext.map_err(|e| bad("pax header", e))?;
                let key = ext.key_bytes();
                let value = ext.value_bytes();
                match key {
                    b"uid" => {
                        uid = parse_num(value)
                            .ok_or_else(|| bad("uid", io::ErrorKind::InvalidData.into()))?
                    }
                    b"gid" => {
                        gid = parse_num(value)
                            .ok_or_else(|| bad("gid", io::ErrorKind::InvalidData.into()))?
                    }
                    b"mtime" => {
                        if let Some(t) = parse_time(value) {
                            mtime = t;
                        }
                    }
                    _ => {
                        if let Some(xname) = key.strip_prefix(b"SCHILY.xattr.") {
                            if xname.starts_with(b"trusted.overlay.") || xname.is_empty() {
                                continue;
                            }
                            if let Ok(c) = CString::new(xname) {
                                xattrs.push((c, value.to_vec()));
                            }
                        }
                    }
                }
            }
        }
        let id = |v: u64, what: &str| {
            u32::try_from(v)
                .ok()
                .filter(|&v| v != u32::MAX)
                .ok_or_else(|| LayerError::Invalid {
                    path: name.to_string(),
                    reason: format!("{what} {v} out of range"),
                })
        };
        Ok(Meta {
            uid: id(uid, "uid")?,
            gid: id(gid, "gid")?,
            mode,
            mtime,
            xattrs,
        })
    }

    /// Resolves (creating missing directories, mode 0755) the parent directory `comps` inside
    /// the root.
    fn parent(&mut self, comps: &[Vec<u8>], name: &str) -> Result<Rc<OwnedFd>, LayerError> {
        if comps.is_empty() {
            return Ok(self.root.clone());
        }
        let key = join(comps);
        let hit = matches!(&self.cache, Some((k, _)) if *k == key);
        if !hit {
            let fd = self.mkdir_all(comps).map_err(|source| LayerError::Io {
                path: name.to_string(),
                source,
            })?;
            self.cache = Some((key, Rc::new(fd)));
        }
        Ok(self.cache.as_ref().unwrap().1.clone())
    }

    fn lookup_dir(&self, path: &[u8]) -> rustix::io::Result<OwnedFd> {
        if path.is_empty() {
            return rustix::fs::openat(
                &self.root,
                ".",
                OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            );
        }
        let mut tries = 0;
        loop {
            match rustix::fs::openat2(
                &self.root,
                os(path),
                OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
                ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
            ) {
                Err(rustix::io::Errno::AGAIN) if tries < 16 => tries += 1,
                r => return r,
            }
        }
    }

    fn mkdir_all(&self, comps: &[Vec<u8>]) -> io::Result<OwnedFd> {
        match self.lookup_dir(&join(comps)) {
            Ok(fd) => return Ok(fd),
            Err(rustix::io::Errno::NOENT) => {}
            Err(e) => return Err(e.into()),
        }
        let mut fd: Option<OwnedFd> = None;
        for i in 0..comps.len() {
            let prefix = join(&comps[..=i]);
            match self.lookup_dir(&prefix) {
                Ok(f) => {
                    fd = Some(f);
                    continue;
                }
                Err(rustix::io::Errno::NOENT) => {}
                Err(e) => return Err(e.into()),
            }
            let pfd = match &fd {
                Some(f) => f.as_fd(),
                None => self.root.as_fd(),
            };
            match rustix::fs::mkdirat(pfd, os(&comps[i]), Mode::from_raw_mode(0o755)) {
                Ok(()) => {
                    // Mode 0755 regardless of the umask, as Docker's MkdirAll under its umask
                    // 022 — on the directory just made, never through a name that something
                    // else (a symlink from the layer, a racing container) may have replaced.
                    if let Ok(dfd) = rustix::fs::openat(
                        pfd,
                        os(&comps[i]),
                        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                        Mode::empty(),
                    ) {
                        let _ = rustix::fs::fchmod(&dfd, Mode::from_raw_mode(0o755));
                    }
                }
                // What exists (a directory, or a symlink resolved below inside the root) keeps
                // its metadata.
                Err(rustix::io::Errno::EXIST) => {}
                Err(e) => return Err(e.into()),
            }
            fd = Some(self.lookup_dir(&prefix)?);
        }
        Ok(fd.expect("non-empty path"))
    }

    /// Runs `create`; if the name exists, replaces what is there and runs it again, except
    /// that with `dir` set an existing directory is kept (merge) and `None` is returned.
    fn create_or_replace<T>(
        &mut self,
        pfd: BorrowedFd<'_>,
        name: &[u8],
        dir: bool,
        mut create: impl FnMut() -> rustix::io::Result<T>,
    ) -> io::Result<Option<T>> {
        match create() {
            Ok(t) => return Ok(Some(t)),
            Err(rustix::io::Errno::EXIST) => {}
            Err(e) => return Err(e.into()),
        }
        if dir {
            let st = rustix::fs::statat(pfd, os(name), AtFlags::SYMLINK_NOFOLLOW).map_err(errno)?;
            if rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::Directory {
                return Ok(None);
            }
        }
        self.remove_existing(pfd, name)?;
        create().map(Some).map_err(errno)
    }

    /// Removes `name` in `dir` (recursively for a directory), if it exists.
    fn remove_existing(&mut self, dir: BorrowedFd<'_>, name: &[u8]) -> io::Result<()> {
        // A removal can invalidate the cached parent (it may lie below what is removed).
        if let Some((_, fd)) = &self.cache {
            if fd.as_raw_fd() != dir.as_raw_fd() {
                self.cache = None;
            }
        }
        remove_all(dir, name, 0)
    }

    fn finish(&mut self) {
        for (path, t) in self.dirs.iter().rev() {
            let fd = if path.is_empty() {
                rustix::fs::openat(
                    &self.root,
                    ".",
                    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
                    Mode::empty(),
                )
            } else {
                rustix::fs::openat2(
                    &self.root,
                    os(path),
                    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                    ResolveFlags::IN_ROOT | ResolveFlags::NO_SYMLINKS,
                )
            };
            // A directory replaced or removed by a later entry keeps what it got.
            if let Ok(fd) = fd {
                let _ = set_times_fd(fd.as_fd(), *t);
            }
        }
    }
}

/// A GNU sparse file described by PAX records (GNU tar's formats 0.0, 0.1 and 1.0).
struct Sparse {
    /// `GNU.sparse.name`: the real name (the header's is `GNUSparseFile.N/…` in 0.1 and 1.0).
    name: Option<Vec<u8>>,
    /// The real size.
    size: u64,
    /// (offset, length) of each data segment; `None` for 1.0, whose map opens the data.
    map: Option<Vec<(u64, u64)>>,
}

enum SparseError {
    Io(io::Error),
    Layer(LayerError),
}

/// The sparse description in `e`'s PAX records, if any.
fn sparse_of<R: Read>(e: &mut tar::Entry<'_, R>) -> Result<Option<Sparse>, LayerError> {
    let bad = |what: &str| LayerError::Corrupt(format!("bad sparse PAX record: {what}"));
    let Some(pax) = e.pax_extensions().map_err(|_| bad("unreadable"))? else {
        return Ok(None);
    };
    let (mut major, mut name, mut size, mut map) = (None, None, None, None);
    let (mut offsets, mut lengths) = (Vec::new(), Vec::new());
    for ext in pax {
        let ext = ext.map_err(|_| bad("unreadable"))?;
        let v = ext.value_bytes();
        let num = |k: &str| parse_num(v).ok_or_else(|| bad(k));
        match ext.key_bytes() {
            b"GNU.sparse.major" => major = Some(num("major")?),
            b"GNU.sparse.name" => name = Some(v.to_vec()),
            b"GNU.sparse.realsize" | b"GNU.sparse.size" => size = Some(num("size")?),
            b"GNU.sparse.offset" => offsets.push(num("offset")?),
            b"GNU.sparse.numbytes" => lengths.push(num("numbytes")?),
            b"GNU.sparse.map" => {
                let nums = if v.is_empty() {
                    Vec::new()
                } else {
                    v.split(|&b| b == b',')
                        .map(|n| parse_num(n).ok_or_else(|| bad("map")))
                        .collect::<Result<Vec<u64>, _>>()?
                };
                if nums.len() % 2 != 0 {
                    return Err(bad("map"));
                }
                map = Some(nums.chunks(2).map(|c| (c[0], c[1])).collect());
            }
            _ => {}
        }
    }
    if major.is_none() && map.is_none() && offsets.is_empty() {
        return Ok(None);
    }
    let size = size.ok_or_else(|| bad("no real size"))?;
    let map = if major == Some(1) {
        None
    } else if map.is_some() {
        map
    } else {
        if offsets.len() != lengths.len() {
            return Err(bad("offsets without lengths"));
        }
        Some(offsets.into_iter().zip(lengths).collect())
    };
    Ok(Some(Sparse { name, size, map }))
}

/// Reads format 1.0's map from the start of the data: decimal numbers one a line (the count,
/// then offset and length pairs), padded to a 512-byte block. Returns it and the bytes read.
fn read_sparse_map<R: Read>(e: &mut R) -> Result<(Vec<(u64, u64)>, u64), String> {
    let mut read = 0u64;
    let mut number = || -> Result<u64, String> {
        let mut digits = Vec::new();
        loop {
            let mut b = [0u8; 1];
            match e.read(&mut b) {
                Ok(1) => {}
                Ok(_) => return Err("the map ends early".into()),
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(err) => return Err(err.to_string()),
            }
            read += 1;
            if b[0] == b'\n' {
                break;
            }
            if digits.len() >= 20 {
                return Err("a number of the map is too long".into());
            }
            digits.push(b[0]);
        }
        parse_num(&digits).ok_or_else(|| "a number of the map is not one".to_string())
    };
    let count = number()?;
    // Each pair takes at least four bytes of the stored data; no more can be real.
    if count > 1 << 24 {
        return Err("the map is too long".into());
    }
    let mut map = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let off = number()?;
        let len = number()?;
        map.push((off, len));
    }
    let pad = (512 - read % 512) % 512;
    let mut skip = vec![0u8; pad as usize];
    e.read_exact(&mut skip).map_err(|e| e.to_string())?;
    Ok((map, read + pad))
}

fn corrupt_at(name: &str, e: io::Error) -> LayerError {
    LayerError::Corrupt(format!("entry {name:?}: {e}"))
}

fn parse_num(v: &[u8]) -> Option<u64> {
    std::str::from_utf8(v).ok()?.trim().parse().ok()
}

/// A PAX time: decimal seconds with an optional fraction.
fn parse_time(v: &[u8]) -> Option<Timespec> {
    let s = std::str::from_utf8(v).ok()?.trim();
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    let sec: i64 = int.parse().ok()?;
    let mut nsec: i64 = 0;
    if !frac.is_empty() {
        let digits: String = frac.chars().take(9).collect();
        if !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        nsec = format!("{digits:0<9}").parse().ok()?;
        if sec < 0 || int.starts_with('-') {
            // -1.5 is 1.5 s before the epoch.
            return Some(if nsec == 0 {
                Timespec { sec, nsec: 0 }
            } else {
                Timespec {
                    sec: sec - 1,
                    nsec: 1_000_000_000 - nsec,
                }
            });
        }
    }
    Some(Timespec { sec, nsec })
}

fn timestamps(t: Timespec) -> rustix::fs::Timestamps {
    let ts = rustix::fs::Timespec {
        tv_sec: t.sec,
        tv_nsec: t.nsec as _,
    };
    rustix::fs::Timestamps {
        last_access: ts,
        last_modification: ts,
    }
}

fn set_times_fd(fd: BorrowedFd<'_>, t: Timespec) -> io::Result<()> {
    rustix::fs::futimens(fd, &timestamps(t)).map_err(errno)
}

fn set_times_at(dir: BorrowedFd<'_>, name: &[u8], t: Timespec) -> io::Result<()> {
    rustix::fs::utimensat(dir, os(name), &timestamps(t), AtFlags::SYMLINK_NOFOLLOW).map_err(errno)
}

fn cstr(b: &[u8]) -> io::Result<CString> {
    CString::new(b).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in name"))
}

fn chown_at(dir: BorrowedFd<'_>, name: &[u8], uid: u32, gid: u32) -> io::Result<()> {
    let c = cstr(name)?;
    // SAFETY: valid descriptor and NUL-terminated name.
    let r = unsafe {
        libc::fchownat(
            dir.as_raw_fd(),
            c.as_ptr(),
            uid,
            gid,
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// `chmod` of `name` in `dir` without ever following a symlink: the entry is opened `O_PATH |
/// O_NOFOLLOW` and changed through its `/proc/self/fd` link, which names that inode and no
/// other. `chmod` has no `AT_SYMLINK_NOFOLLOW` before Linux 6.6, and the name may have been
/// swapped for a symlink to a host file since it was created (`cp` into a running container);
/// a symlink found there is left alone (its own mode means nothing).
fn chmod_at(dir: BorrowedFd<'_>, name: &[u8], mode: u32) -> io::Result<()> {
    let fd = rustix::fs::openat(
        dir,
        os(name),
        OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(errno)?;
    let st = rustix::fs::fstat(&fd).map_err(errno)?;
    if rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::Symlink {
        return Ok(());
    }
    let link = format!("/proc/self/fd/{}", fd.as_raw_fd());
    rustix::fs::chmod(link.as_str(), Mode::from_raw_mode(mode)).map_err(errno)
}

/// Ownership, then mode (chown clears setuid bits), then xattrs, on an open file or directory.
fn apply_fd_meta(fd: BorrowedFd<'_>, meta: &Meta) -> io::Result<()> {
    // SAFETY: valid descriptor.
    if unsafe { libc::fchown(fd.as_raw_fd(), meta.uid, meta.gid) } != 0 {
        return Err(io::Error::last_os_error());
    }
    rustix::fs::fchmod(fd, Mode::from_raw_mode(meta.mode)).map_err(errno)?;
    for (k, v) in &meta.xattrs {
        ignore_unsupported(set_xattr_fd(fd, k, v))?;
    }
    Ok(())
}

/// Docker ignores xattrs that the filesystem or the node type refuses.
fn ignore_unsupported(r: io::Result<()>) -> io::Result<()> {
    match r {
        Err(e) if matches!(e.raw_os_error(), Some(libc::EPERM) | Some(libc::EOPNOTSUPP)) => Ok(()),
        r => r,
    }
}

fn set_xattr_fd(fd: BorrowedFd<'_>, name: &CString, value: &[u8]) -> io::Result<()> {
    // SAFETY: valid descriptor, NUL-terminated name, value pointer and length from a slice.
    let r = unsafe {
        libc::fsetxattr(
            fd.as_raw_fd(),
            name.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// xattrs on `name` in `dir` without following it: through the `/proc/self/fd/N/` directory
/// link (the kernel resolves the descriptor, then looks `name` up without following it).
fn set_xattrs_at(
    dir: BorrowedFd<'_>,
    name: &[u8],
    xattrs: &[(CString, Vec<u8>)],
) -> io::Result<()> {
    if xattrs.is_empty() {
        return Ok(());
    }
    let mut p = format!("/proc/self/fd/{}/", dir.as_raw_fd()).into_bytes();
    p.extend_from_slice(name);
    let p = cstr(&p)?;
    for (k, v) in xattrs {
        // SAFETY: NUL-terminated path and name, value from a slice.
        let r = unsafe { libc::lsetxattr(p.as_ptr(), k.as_ptr(), v.as_ptr().cast(), v.len(), 0) };
        ignore_unsupported(if r == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        })?;
    }
    Ok(())
}

fn reopen_dir(pfd: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    rustix::fs::openat(
        pfd,
        ".",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(errno)
}

/// Removes `name` in `dir`, recursively, never following symlinks.
fn remove_all(dir: BorrowedFd<'_>, name: &[u8], depth: usize) -> io::Result<()> {
    let n = os(name);
    match rustix::fs::unlinkat(dir, n, AtFlags::empty()) {
        Ok(()) | Err(rustix::io::Errno::NOENT) => return Ok(()),
        Err(rustix::io::Errno::ISDIR) | Err(rustix::io::Errno::PERM) => {}
        Err(e) => return Err(e.into()),
    }
    if depth > 4096 {
        return Err(io::Error::other("directory tree too deep to remove"));
    }
    let sub = rustix::fs::openat(
        dir,
        n,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(errno)?;
    let mut names = Vec::new();
    for ent in rustix::fs::Dir::read_from(&sub).map_err(errno)? {
        let ent = ent.map_err(errno)?;
        let b = ent.file_name().to_bytes();
        if b != b"." && b != b".." {
            names.push(b.to_vec());
        }
    }
    for child in names {
        remove_all(sub.as_fd(), &child, depth + 1)?;
    }
    match rustix::fs::unlinkat(dir, n, AtFlags::REMOVEDIR) {
        Ok(()) | Err(rustix::io::Errno::NOENT) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cleans_like_docker() {
        let c = |s: &str| clean(s.as_bytes()).map(|v| show(&join(&v)));
        assert_eq!(c("a/b/c").as_deref(), Some("a/b/c"));
        assert_eq!(c("/etc/passwd").as_deref(), Some("etc/passwd"));
        assert_eq!(c("./a//b/./c/").as_deref(), Some("a/b/c"));
        assert_eq!(c("a/../b").as_deref(), Some("b"));
        assert_eq!(c("./").as_deref(), Some(""));
        assert_eq!(c("../x"), None);
        assert_eq!(c("a/../../x"), None);
        assert_eq!(c("/../x"), None);
    }

    #[test]
    fn pax_times() {
        let t = parse_time(b"1700000000.5").unwrap();
        assert_eq!((t.sec, t.nsec), (1_700_000_000, 500_000_000));
        let t = parse_time(b"12").unwrap();
        assert_eq!((t.sec, t.nsec), (12, 0));
        let t = parse_time(b"-1.25").unwrap();
        assert_eq!((t.sec, t.nsec), (-2, 750_000_000));
        assert!(parse_time(b"x").is_none());
    }
}
