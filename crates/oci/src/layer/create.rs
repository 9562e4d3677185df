//! Creation of a layer tar from a directory (an overlay upper dir, or any tree).
//!
//! The output is deterministic: entries in depth-first order with the names of each directory
//! sorted bytewise (a directory before its contents), numeric uid/gid only (no user or group
//! names), whole-second mtimes, optionally clamped to `SOURCE_DATE_EPOCH`, no atime or ctime,
//! xattrs (sorted) as PAX `SCHILY.xattr.*` records. Headers are USTAR; a PAX extended header is
//! added only where USTAR cannot hold a field (long names, xattrs, large ids or sizes), as Go's
//! tar writer (and so Docker) does.
//!
//! Overlay whiteouts are converted back to the OCI form, as Docker's overlay diff does: a
//! character device 0:0 becomes an empty regular file `.wh.NAME`, and a directory with
//! `trusted.overlay.opaque=y` is followed by an empty `.wh..wh..opq` inside it. Other
//! `trusted.overlay.*` xattrs (origins, impure markers) are never written, and sockets are
//! skipped. An upper directory with `trusted.overlay.redirect` (a renamed directory) or
//! `trusted.overlay.metacopy` (a metadata-only copy-up) cannot be turned into a layer without its
//! lower layers and is refused: mount overlays whose upper dir becomes a layer with
//! `redirect_dir=off,metacopy=off` (as Docker's naive diff requires).
//! Hard links within the tree (same inode) become tar hard links to the first path written.
//! A file of 1 MiB or more with holes (fewer blocks than its size) becomes a PAX 1.0 sparse
//! entry, as `tar --sparse --format=pax` writes it (`GNUSparseFile.0/NAME`, `GNU.sparse.*`
//! records, the map at the start of the data), which Go's reader (Docker) and GNU tar restore:
//! a container's 20 GB sparse file commits as a small layer.

use super::{ApplyStats, LayerError};
use rustix::fs::{AtFlags, FileType, Mode, OFlags};
use std::collections::HashMap;
use std::ffi::{CString, OsStr};
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

const BUF: usize = 1 << 20;
const BLOCK: usize = 512;
/// How deep nested directories are archived (Docker's walk fails at PATH_MAX, about 2,000).
const MAX_DEPTH: usize = 1024;

/// Options for [`create_layer`].
#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    /// Clamp every mtime to at most this many seconds since the epoch (`SOURCE_DATE_EPOCH`).
    pub source_date_epoch: Option<i64>,
}

/// Writes a layer tar (uncompressed) of the contents of `dir` to `out`. Returns the number of
/// entries written and the sum of the regular files' sizes.
pub fn create_layer<W: Write>(
    dir: &Path,
    out: W,
    opts: &CreateOptions,
) -> Result<ApplyStats, LayerError> {
    create_layer_filtered(dir, out, opts, &|_| false)
}

/// [`create_layer`] without the entries for which `skip` returns true (nor anything below
/// them): it is given each entry's path relative to `dir` (`etc/hosts`), before the entry is
/// examined. A container commit leaves out the mount points the runtime created this way.
pub fn create_layer_filtered<W: Write>(
    dir: &Path,
    out: W,
    opts: &CreateOptions,
    skip: &dyn Fn(&Path) -> bool,
) -> Result<ApplyStats, LayerError> {
    let fs_err = |path: PathBuf| move |e: io::Error| LayerError::Fs { path, source: e };
    let root = rustix::fs::open(
        dir,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| fs_err(dir.to_path_buf())(e.into()))?;
    let mut w = Writer {
        out,
        skip,
        opts: opts.clone(),
        buf: vec![0u8; BUF],
        links: HashMap::new(),
        stats: ApplyStats::default(),
        base: dir.to_path_buf(),
    };
    w.walk(root)?;
    w.out
        .write_all(&[0u8; BLOCK * 2])
        .and_then(|_| w.out.flush())
        .map_err(fs_err(dir.to_path_buf()))?;
    Ok(w.stats)
}

struct Writer<'a, W> {
    out: W,
    skip: &'a dyn Fn(&Path) -> bool,
    opts: CreateOptions,
    buf: Vec<u8>,
    /// (dev, ino) of multiply-linked files already written → their archive path.
    links: HashMap<(u64, u64), Vec<u8>>,
    stats: ApplyStats,
    base: PathBuf,
}

/// One header to write.
struct Entry {
    path: Vec<u8>,
    kind: tar::EntryType,
    mode: u32,
    uid: u64,
    gid: u64,
    mtime: i64,
    size: u64,
    link: Option<Vec<u8>>,
    dev: (u32, u32),
    xattrs: Xattrs,
    /// A PAX 1.0 sparse file: its real name and size (`path` is then `GNUSparseFile.0/…`).
    sparse: Option<(Vec<u8>, u64)>,
}

impl<W: Write> Writer<'_, W> {
    fn err(&self, rel: &[u8]) -> impl Fn(io::Error) -> LayerError {
        let path = self.base.join(OsStr::from_bytes(rel));
        move |source| LayerError::Fs {
            path: path.clone(),
            source,
        }
    }

    /// The names in `dir` (`rel` in the tree), sorted bytewise, last first.
    fn names(&self, dir: BorrowedFd<'_>, rel: &[u8]) -> Result<Vec<Vec<u8>>, LayerError> {
        let mut names: Vec<Vec<u8>> = Vec::new();
        let d = rustix::fs::Dir::read_from(dir).map_err(|e| self.err(rel)(e.into()))?;
        for ent in d {
            let ent = ent.map_err(|e| self.err(rel)(e.into()))?;
            let n = ent.file_name().to_bytes();
            if n != b"." && n != b".." {
                names.push(n.to_vec());
            }
        }
        names.sort_unstable_by(|a, b| b.cmp(a));
        Ok(names)
    }

    /// Depth-first without recursion: a container can nest directories deeper than any stack
    /// (each level still holds a descriptor, hence the bound).
    fn walk(&mut self, root: OwnedFd) -> Result<(), LayerError> {
        let names = self.names(root.as_fd(), &[])?;
        let mut stack: Vec<(OwnedFd, Vec<u8>, Vec<Vec<u8>>)> = vec![(root, Vec::new(), names)];
        while let Some((dir, rel, names)) = stack.last_mut() {
            let Some(name) = names.pop() else {
                stack.pop();
                continue;
            };
            let sub = self.entry(dir.as_fd(), rel, name)?;
            if let Some(sub) = sub {
                if stack.len() > MAX_DEPTH {
                    return Err(self.err(&sub.1[..sub.1.len().min(60)])(io::Error::other(
                        format!(
                        "directories nested more than {MAX_DEPTH} levels deep cannot be archived"
                    ),
                    )));
                }
                stack.push(sub);
            }
        }
        Ok(())
    }

    /// Writes the entry (or entries) for `name` in `dir` (`rel` in the tree); for a directory,
    /// returns it opened, with its path and its children's names, to be walked next.
    #[allow(clippy::type_complexity)]
    fn entry(
        &mut self,
        dir: BorrowedFd<'_>,
        rel: &[u8],
        name: Vec<u8>,
    ) -> Result<Option<(OwnedFd, Vec<u8>, Vec<Vec<u8>>)>, LayerError> {
        {
            let mut path = rel.to_vec();
            if !path.is_empty() {
                path.push(b'/');
            }
            path.extend_from_slice(&name);
            if (self.skip)(Path::new(OsStr::from_bytes(&path))) {
                return Ok(None);
            }
            let err = self.err(&path);
            let st = rustix::fs::statat(dir, OsStr::from_bytes(&name), AtFlags::SYMLINK_NOFOLLOW)
                .map_err(|e| err(e.into()))?;
            let ft = FileType::from_raw_mode(st.st_mode);
            let mtime = match self.opts.source_date_epoch {
                Some(epoch) => st.st_mtime.min(epoch),
                None => st.st_mtime,
            }
            .max(0);
            let mut e = Entry {
                path: path.clone(),
                kind: tar::EntryType::Regular,
                mode: st.st_mode & 0o7777,
                uid: st.st_uid as u64,
                gid: st.st_gid as u64,
                mtime,
                size: 0,
                link: None,
                dev: (0, 0),
                xattrs: Vec::new(),
                sparse: None,
            };
            match ft {
                FileType::CharacterDevice
                    if rustix::fs::major(st.st_rdev) == 0 && rustix::fs::minor(st.st_rdev) == 0 =>
                {
                    // Overlay whiteout → `.wh.NAME`.
                    let mut p = rel.to_vec();
                    if !p.is_empty() {
                        p.push(b'/');
                    }
                    p.extend_from_slice(b".wh.");
                    p.extend_from_slice(&name);
                    e.path = p;
                    e.mode &= 0o777;
                    self.header(&e).map_err(&err)?;
                }
                FileType::Directory => {
                    e.kind = tar::EntryType::Directory;
                    e.path.push(b'/');
                    let (xattrs, opaque) = read_xattrs(dir, &name).map_err(&err)?;
                    e.xattrs = xattrs;
                    self.header(&e).map_err(&err)?;
                    if opaque {
                        let mut p = path.clone();
                        p.extend_from_slice(b"/.wh..wh..opq");
                        let wo = Entry {
                            path: p,
                            kind: tar::EntryType::Regular,
                            mode: e.mode & 0o777,
                            xattrs: Vec::new(),
                            ..e
                        };
                        self.header(&wo).map_err(&err)?;
                    }
                    let sub = rustix::fs::openat(
                        dir,
                        OsStr::from_bytes(&name),
                        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                        Mode::empty(),
                    )
                    .map_err(|e| err(e.into()))?;
                    let names = self.names(sub.as_fd(), &path)?;
                    return Ok(Some((sub, path, names)));
                }
                FileType::RegularFile => {
                    e.xattrs = read_xattrs(dir, &name).map_err(&err)?.0;
                    if st.st_nlink > 1 {
                        let key = (st.st_dev, st.st_ino);
                        if let Some(first) = self.links.get(&key) {
                            e.kind = tar::EntryType::Link;
                            e.link = Some(first.clone());
                            self.header(&e).map_err(&err)?;
                            return Ok(None);
                        }
                        self.links.insert(key, path.clone());
                    }
                    e.size = st.st_size as u64;
                    let fd = open_regular(dir, OsStr::from_bytes(&name), &st).map_err(&err)?;
                    if let Some(segments) = sparse_segments(fd.as_fd(), &st) {
                        // Holes stay holes: a PAX 1.0 sparse entry, as GNU tar writes it.
                        let map = sparse_map(&segments);
                        let data: u64 = segments.iter().map(|s| s.1).sum();
                        let mut hidden = rel.to_vec();
                        if !hidden.is_empty() {
                            hidden.push(b'/');
                        }
                        hidden.extend_from_slice(b"GNUSparseFile.0/");
                        hidden.extend_from_slice(&name);
                        e.sparse = Some((path.clone(), e.size));
                        e.path = hidden;
                        e.size = map.len() as u64 + data;
                        self.header(&e).map_err(&err)?;
                        self.sparse_data(fd, &map, &segments).map_err(&err)?;
                        self.stats.size += st.st_size as u64;
                        return Ok(None);
                    }
                    self.header(&e).map_err(&err)?;
                    self.data(fd, e.size).map_err(&err)?;
                    self.stats.size += e.size;
                }
                FileType::Symlink => {
                    e.kind = tar::EntryType::Symlink;
                    let target = rustix::fs::readlinkat(dir, OsStr::from_bytes(&name), Vec::new())
                        .map_err(|e| err(e.into()))?;
                    e.link = Some(target.into_bytes());
                    e.xattrs = read_xattrs(dir, &name).map_err(&err)?.0;
                    self.header(&e).map_err(&err)?;
                }
                FileType::CharacterDevice | FileType::BlockDevice | FileType::Fifo => {
                    e.kind = match ft {
                        FileType::CharacterDevice => tar::EntryType::Char,
                        FileType::BlockDevice => tar::EntryType::Block,
                        _ => tar::EntryType::Fifo,
                    };
                    if ft != FileType::Fifo {
                        e.dev = (rustix::fs::major(st.st_rdev), rustix::fs::minor(st.st_rdev));
                    }
                    e.xattrs = read_xattrs(dir, &name).map_err(&err)?.0;
                    self.header(&e).map_err(&err)?;
                }
                // Sockets (and anything unknown) do not belong in a layer.
                _ => {}
            }
        }
        Ok(None)
    }

    /// Writes the (PAX and) USTAR header of `e`.
    fn header(&mut self, e: &Entry) -> io::Result<()> {
        let mut h = tar::Header::new_ustar();
        let mut pax: Vec<(&str, Vec<u8>)> = Vec::new();
        if !set_ustar_name(&mut h, &e.path) {
            pax.push(("path", e.path.clone()));
            set_ustar_name(&mut h, &truncate_name(&e.path, 100));
        }
        if let Some(l) = &e.link {
            if l.len() <= 100 {
                h.set_link_name_literal(l.as_slice())?;
            } else {
                pax.push(("linkpath", l.clone()));
                h.set_link_name_literal(&l[..100])?;
            }
        }
        const MAX_ID: u64 = 0o7777777;
        if e.uid > MAX_ID {
            pax.push(("uid", e.uid.to_string().into_bytes()));
            h.set_uid(0);
        } else {
            h.set_uid(e.uid);
        }
        if e.gid > MAX_ID {
            pax.push(("gid", e.gid.to_string().into_bytes()));
            h.set_gid(0);
        } else {
            h.set_gid(e.gid);
        }
        const MAX_SIZE: u64 = 0o77777777777;
        if e.size > MAX_SIZE {
            pax.push(("size", e.size.to_string().into_bytes()));
        }
        h.set_size(e.size);
        h.set_mode(e.mode);
        h.set_mtime(e.mtime as u64);
        h.set_entry_type(e.kind);
        if matches!(e.kind, tar::EntryType::Char | tar::EntryType::Block) {
            h.set_device_major(e.dev.0)?;
            h.set_device_minor(e.dev.1)?;
        } else if e.kind == tar::EntryType::Fifo {
            h.set_device_major(0)?;
            h.set_device_minor(0)?;
        }
        let mut records: Vec<(Vec<u8>, Vec<u8>)> = pax
            .into_iter()
            .map(|(k, v)| (k.as_bytes().to_vec(), v))
            .collect();
        if let Some((name, size)) = &e.sparse {
            records.push((b"GNU.sparse.major".to_vec(), b"1".to_vec()));
            records.push((b"GNU.sparse.minor".to_vec(), b"0".to_vec()));
            records.push((b"GNU.sparse.name".to_vec(), name.clone()));
            records.push((
                b"GNU.sparse.realsize".to_vec(),
                size.to_string().into_bytes(),
            ));
        }
        for (k, v) in &e.xattrs {
            let mut key = b"SCHILY.xattr.".to_vec();
            key.extend_from_slice(k);
            records.push((key, v.clone()));
        }
        if !records.is_empty() {
            records.sort();
            let mut body = Vec::new();
            for (k, v) in &records {
                pax_record(&mut body, k, v);
            }
            let mut ph = tar::Header::new_ustar();
            set_ustar_name(&mut ph, &pax_header_name(&e.path));
            ph.set_entry_type(tar::EntryType::XHeader);
            ph.set_mode(0o644);
            ph.set_size(body.len() as u64);
            ph.set_mtime(e.mtime as u64);
            ph.set_uid(0);
            ph.set_gid(0);
            ph.set_cksum();
            self.out.write_all(ph.as_bytes())?;
            self.out.write_all(&body)?;
            self.pad(body.len() as u64)?;
        }
        h.set_cksum();
        self.out.write_all(h.as_bytes())?;
        self.stats.entries += 1;
        Ok(())
    }

    /// Copies exactly `size` bytes of `fd`, then the block padding.
    fn data(&mut self, fd: OwnedFd, size: u64) -> io::Result<()> {
        let mut f = File::from(fd);
        let mut left = size;
        while left > 0 {
            let want = left.min(self.buf.len() as u64) as usize;
            let n = match f.read(&mut self.buf[..want]) {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "file shrank while it was archived",
                    ))
                }
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            self.out.write_all(&self.buf[..n])?;
            left -= n as u64;
        }
        self.pad(size)
    }

    /// Writes a sparse entry's data: the map block, then each data segment read at its offset,
    /// then the block padding.
    fn sparse_data(&mut self, fd: OwnedFd, map: &[u8], segments: &[(u64, u64)]) -> io::Result<()> {
        use std::os::unix::fs::FileExt;
        let f = File::from(fd);
        self.out.write_all(map)?;
        let mut total = map.len() as u64;
        for &(off, len) in segments {
            let mut done = 0u64;
            while done < len {
                let want = (len - done).min(self.buf.len() as u64) as usize;
                let n = match f.read_at(&mut self.buf[..want], off + done) {
                    Ok(0) => {
                        return Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "file shrank while it was archived",
                        ))
                    }
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e),
                };
                self.out.write_all(&self.buf[..n])?;
                done += n as u64;
            }
            total += len;
        }
        self.pad(total)
    }

    fn pad(&mut self, len: u64) -> io::Result<()> {
        let rem = (len % BLOCK as u64) as usize;
        if rem != 0 {
            self.out.write_all(&[0u8; BLOCK][..BLOCK - rem])?;
        }
        Ok(())
    }
}

/// Puts `path` in the USTAR name (and prefix) fields; false when it does not fit.
/// Opens `name` in `dir` for reading only if it still is the regular file `st` describes: first
/// `O_PATH | O_NOFOLLOW` (which opens nothing), then, once that inode is seen to be the one
/// examined, through its `/proc/self/fd` link. A running container (`commit --pause=false`)
/// that swapped the file for a FIFO would otherwise hang the walk, and one that swapped it for
/// a device node would have it opened outside the container's device cgroup.
fn open_regular(dir: BorrowedFd<'_>, name: &OsStr, st: &rustix::fs::Stat) -> io::Result<OwnedFd> {
    let path = rustix::fs::openat(
        dir,
        name,
        OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let now = rustix::fs::fstat(&path)?;
    if FileType::from_raw_mode(now.st_mode) != FileType::RegularFile
        || (now.st_dev, now.st_ino) != (st.st_dev, st.st_ino)
    {
        return Err(io::Error::other("changed while it was archived"));
    }
    let link = format!("/proc/self/fd/{}", path.as_raw_fd());
    Ok(rustix::fs::open(
        link.as_str(),
        OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOCTTY,
        Mode::empty(),
    )?)
}

/// The data segments (offset, length) of a file whose holes are worth keeping (1 MiB or more
/// with fewer blocks allocated than its size), from `SEEK_DATA`/`SEEK_HOLE`; `None` otherwise,
/// and when the file system cannot tell or the file is too fragmented to list.
fn sparse_segments(fd: BorrowedFd<'_>, st: &rustix::fs::Stat) -> Option<Vec<(u64, u64)>> {
    let size = st.st_size as u64;
    if size < 1 << 20 || (st.st_blocks as u64).saturating_mul(512) >= size {
        return None;
    }
    let mut segments = Vec::new();
    let mut off = 0u64;
    while off < size {
        let data = match rustix::fs::seek(fd, rustix::fs::SeekFrom::Data(off)) {
            Ok(d) => d,
            // No data past `off`: the rest is a hole.
            Err(rustix::io::Errno::NXIO) => break,
            Err(_) => return None,
        };
        let hole = rustix::fs::seek(fd, rustix::fs::SeekFrom::Hole(data))
            .ok()?
            .min(size);
        if hole <= data || segments.len() >= 1 << 16 {
            return None;
        }
        segments.push((data, hole - data));
        off = hole;
    }
    Some(segments)
}

/// Format 1.0's map: the number of segments, then each offset and length, one a line, padded
/// to a block.
fn sparse_map(segments: &[(u64, u64)]) -> Vec<u8> {
    let mut map = format!("{}\n", segments.len()).into_bytes();
    for (off, len) in segments {
        map.extend_from_slice(format!("{off}\n{len}\n").as_bytes());
    }
    let rem = map.len() % BLOCK;
    if rem != 0 {
        map.resize(map.len() + BLOCK - rem, 0);
    }
    map
}

fn set_ustar_name(h: &mut tar::Header, path: &[u8]) -> bool {
    let u = h.as_ustar_mut().expect("ustar header");
    u.name = [0; 100];
    u.prefix = [0; 155];
    if path.len() <= 100 {
        u.name[..path.len()].copy_from_slice(path);
        return true;
    }
    // Split at a '/' so that the prefix has at most 155 bytes and the name at most 100 (and is
    // not empty). A trailing '/' (directories) stays with the name.
    let body = path.strip_suffix(b"/").unwrap_or(path);
    for (i, &b) in body.iter().enumerate().rev() {
        if b != b'/' {
            continue;
        }
        let (prefix, name) = (&path[..i], &path[i + 1..]);
        if name.len() > 100 {
            return false;
        }
        if prefix.len() <= 155 && !name.is_empty() {
            u.prefix[..prefix.len()].copy_from_slice(prefix);
            u.name[..name.len()].copy_from_slice(name);
            return true;
        }
    }
    false
}

fn truncate_name(p: &[u8], n: usize) -> Vec<u8> {
    p[..p.len().min(n)].to_vec()
}

/// `dir/PaxHeaders.0/base`, as Go's writer names PAX headers.
fn pax_header_name(path: &[u8]) -> Vec<u8> {
    let trimmed = path.strip_suffix(b"/").unwrap_or(path);
    let (dir, base) = match trimmed.iter().rposition(|&b| b == b'/') {
        Some(i) => (&trimmed[..i + 1], &trimmed[i + 1..]),
        None => (&b""[..], trimmed),
    };
    let mut out = dir.to_vec();
    out.extend_from_slice(b"PaxHeaders.0/");
    out.extend_from_slice(base);
    truncate_name(&out, 100)
}

/// `"%d %s=%s\n"` where the length counts the whole record, itself included.
fn pax_record(out: &mut Vec<u8>, k: &[u8], v: &[u8]) {
    let rest = k.len() + v.len() + 3; // ' ', '=', '\n'
    let mut len = rest + 1;
    while len != rest + len.to_string().len() {
        len = rest + len.to_string().len();
    }
    out.extend_from_slice(len.to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(k);
    out.push(b'=');
    out.extend_from_slice(v);
    out.push(b'\n');
}

/// xattr names and values.
type Xattrs = Vec<(Vec<u8>, Vec<u8>)>;

/// The xattrs of `name` in `dir` (sorted, `trusted.overlay.*` left out) and whether it is an
/// opaque overlay directory.
fn read_xattrs(dir: BorrowedFd<'_>, name: &[u8]) -> io::Result<(Xattrs, bool)> {
    let mut p = format!("/proc/self/fd/{}/", dir.as_raw_fd()).into_bytes();
    p.extend_from_slice(name);
    let p = CString::new(p).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    let list = loop {
        // SAFETY: NUL-terminated path; a null buffer asks for the size.
        let n = unsafe { libc::llistxattr(p.as_ptr(), std::ptr::null_mut(), 0) };
        if n < 0 {
            let e = io::Error::last_os_error();
            return match e.raw_os_error() {
                Some(libc::ENOTSUP) => Ok((Vec::new(), false)),
                _ => Err(e),
            };
        }
        if n == 0 {
            return Ok((Vec::new(), false));
        }
        let mut buf = vec![0u8; n as usize];
        // SAFETY: buffer of the given length.
        let m = unsafe { libc::llistxattr(p.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
        if m < 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::ERANGE) {
                continue;
            }
            return Err(e);
        }
        buf.truncate(m as usize);
        break buf;
    };
    let mut out = Vec::new();
    let mut opaque = false;
    for key in list.split(|&b| b == 0).filter(|k| !k.is_empty()) {
        let Some(value) = get_xattr(&p, key)? else {
            continue;
        };
        if key == b"trusted.overlay.opaque" {
            opaque = value == b"y";
            continue;
        }
        if key == b"trusted.overlay.redirect" || key == b"trusted.overlay.metacopy" {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                format!(
                    "overlay {} xattr: the layer would need its lower layers \
                     (mount with redirect_dir=off,metacopy=off)",
                    String::from_utf8_lossy(key)
                ),
            ));
        }
        if key.starts_with(b"trusted.overlay.") {
            continue;
        }
        out.push((key.to_vec(), value));
    }
    out.sort();
    Ok((out, opaque))
}

fn get_xattr(path: &CString, key: &[u8]) -> io::Result<Option<Vec<u8>>> {
    let k = CString::new(key).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    loop {
        // SAFETY: NUL-terminated path and name; a null buffer asks for the size.
        let n = unsafe { libc::lgetxattr(path.as_ptr(), k.as_ptr(), std::ptr::null_mut(), 0) };
        if n < 0 {
            let e = io::Error::last_os_error();
            return match e.raw_os_error() {
                Some(libc::ENODATA) => Ok(None),
                _ => Err(e),
            };
        }
        let mut buf = vec![0u8; n as usize];
        // SAFETY: buffer of the given length.
        let m = unsafe {
            libc::lgetxattr(
                path.as_ptr(),
                k.as_ptr(),
                buf.as_mut_ptr().cast(),
                buf.len(),
            )
        };
        if m < 0 {
            let e = io::Error::last_os_error();
            match e.raw_os_error() {
                Some(libc::ERANGE) => continue,
                Some(libc::ENODATA) => return Ok(None),
                _ => return Err(e),
            }
        }
        buf.truncate(m as usize);
        return Ok(Some(buf));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_record_lengths() {
        let mut out = Vec::new();
        pax_record(&mut out, b"path", b"a");
        assert_eq!(out, b"9 path=a\n");
        let mut out = Vec::new();
        let v = vec![b'x'; 95];
        pax_record(&mut out, b"path", &v);
        // 4 + 95 + 3 = 102, plus "105" → 105.
        assert!(out.starts_with(b"105 path="));
        assert_eq!(out.len(), 105);
    }

    #[test]
    fn ustar_split() {
        let mut h = tar::Header::new_ustar();
        let long = format!("{}/{}", "d".repeat(120), "f".repeat(90));
        assert!(set_ustar_name(&mut h, long.as_bytes()));
        assert_eq!(h.path_bytes().as_ref(), long.as_bytes());
        let dir = format!("{}/{}/", "d".repeat(120), "e".repeat(90));
        assert!(set_ustar_name(&mut h, dir.as_bytes()));
        assert_eq!(h.path_bytes().as_ref(), dir.as_bytes());
        let too_long = "x".repeat(101);
        assert!(!set_ustar_name(&mut h, too_long.as_bytes()));
        assert_eq!(pax_header_name(b"a/b/"), b"a/PaxHeaders.0/b");
        assert_eq!(pax_header_name(b"f"), b"PaxHeaders.0/f");
    }
}
