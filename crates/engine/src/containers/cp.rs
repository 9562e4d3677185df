//! `cp`: copying files out of and into a container, stopped or running.
//!
//! Every container path is resolved by the kernel inside the container's merged root:
//! `openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)` on a descriptor of `<dir>/rootfs`, so `..`
//! and symlinks (absolute or relative) planted in the container are clamped to its root, as
//! they would be for a process inside it. The final component is then examined with `*at`
//! calls that do not follow it (unless `-L`), directories are walked by descriptor, and files
//! are opened with `O_NOFOLLOW`: a running container that swaps a directory for a symlink while
//! we copy cannot lead a read or a write outside its root. Extraction into the container goes
//! through [`berth_oci::layer::apply_layer`] rooted at the resolved destination directory,
//! which applies the same rule to every entry. Nothing from the container is ever executed.
//!
//! A stopped container's overlay is mounted for the copy and unmounted afterwards (unless the
//! container was started meanwhile); a running one is reached through its mounted rootfs.
//! Volumes and tmpfs mounts of a running container are not part of that view.

use super::{ContainerSpec, LiveState};
use crate::{Engine, EngineError};
/// Extracts a tar stream into a host directory (`cp CONTAINER:SRC DEST`): entries are made
/// inside `root` only, whatever their names and links say.
pub use berth_oci::layer::{apply_archive, ApplyStats};
use rustix::fs::{AtFlags, FileType, Mode, OFlags, ResolveFlags};
use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

/// What `stat` finds at a path (Docker's `X-Docker-Container-Path-Stat`).
#[derive(Debug, Clone)]
pub struct PathStat {
    pub name: String,
    pub size: u64,
    pub mode: u32,
    pub is_dir: bool,
    /// The target when the path is a symlink (not followed).
    pub link_target: Option<String>,
}

/// Options of a tar made from a tree.
#[derive(Debug, Clone, Copy, Default)]
pub struct TarOptions {
    /// Owner written for every entry instead of the files' own (`cp` without `-a`).
    pub owner: Option<(u32, u32)>,
}

/// A container's root filesystem opened for `cp`; unmounts what it mounted when dropped.
pub struct ContainerRoot {
    pub id: String,
    pub spec: ContainerSpec,
    root: OwnedFd,
    dir: PathBuf,
    mounted_here: bool,
}

fn errno(e: rustix::io::Errno) -> io::Error {
    e.into()
}

fn open_in_root(root: BorrowedFd<'_>, path: &OsStr, flags: OFlags) -> io::Result<OwnedFd> {
    let path: &OsStr = if path.is_empty() {
        OsStr::new(".")
    } else {
        path
    };
    let mut tries = 0;
    loop {
        match rustix::fs::openat2(
            root,
            path,
            flags | OFlags::CLOEXEC,
            Mode::empty(),
            ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
        ) {
            Err(rustix::io::Errno::AGAIN) if tries < 16 => tries += 1,
            r => return r.map_err(errno),
        }
    }
}

/// Splits a path into its parent and its last component (`None` when the path names a
/// directory by itself: `/`, `.`, `..`, `a/..`).
fn split_last(path: &str) -> (String, Option<String>) {
    let trimmed = path.trim_end_matches('/');
    if trimmed.is_empty() {
        return ("/".into(), None);
    }
    let (parent, base) = match trimmed.rfind('/') {
        Some(i) => (&trimmed[..i], &trimmed[i + 1..]),
        None => ("", trimmed),
    };
    if base == "." || base == ".." {
        return (trimmed.to_string(), None);
    }
    let parent = if parent.is_empty() && trimmed.starts_with('/') {
        "/".to_string()
    } else {
        parent.to_string()
    };
    (parent, Some(base.to_string()))
}

/// An object found by [`resolve`]: a directory descriptor and a name in it, or (`name` empty)
/// the object itself, opened `O_PATH`.
struct Found {
    dir: OwnedFd,
    name: OsString,
}

impl Found {
    fn stat(&self) -> io::Result<rustix::fs::Stat> {
        if self.name.is_empty() {
            rustix::fs::statat(&self.dir, "", AtFlags::EMPTY_PATH).map_err(errno)
        } else {
            rustix::fs::statat(&self.dir, &self.name, AtFlags::SYMLINK_NOFOLLOW).map_err(errno)
        }
    }
}

/// Resolves `path` inside the directory `root` (as the root), following a final symlink only
/// with `follow`.
fn resolve(root: BorrowedFd<'_>, path: &str, follow: bool) -> io::Result<Found> {
    let (parent, base) = split_last(path);
    let Some(base) = base else {
        let fd = open_in_root(root, OsStr::new(&parent), OFlags::PATH)?;
        return Ok(Found {
            dir: fd,
            name: OsString::new(),
        });
    };
    let dir = open_in_root(root, OsStr::new(&parent), OFlags::PATH | OFlags::DIRECTORY)?;
    let st = rustix::fs::statat(&dir, base.as_str(), AtFlags::SYMLINK_NOFOLLOW).map_err(errno)?;
    if follow && FileType::from_raw_mode(st.st_mode) == FileType::Symlink {
        let fd = open_in_root(root, OsStr::new(path), OFlags::PATH)?;
        return Ok(Found {
            dir: fd,
            name: OsString::new(),
        });
    }
    if path.ends_with('/') && FileType::from_raw_mode(st.st_mode) != FileType::Directory {
        return Err(io::Error::from_raw_os_error(libc_enotdir()));
    }
    Ok(Found {
        dir,
        name: OsString::from(base),
    })
}

fn libc_enotdir() -> i32 {
    20
}

fn stat_of(found: &Found, name: &str) -> io::Result<PathStat> {
    let st = found.stat()?;
    let ft = FileType::from_raw_mode(st.st_mode);
    let link_target = if ft == FileType::Symlink {
        let t = rustix::fs::readlinkat(&found.dir, found.name.as_os_str(), Vec::new())
            .map_err(errno)?;
        Some(String::from_utf8_lossy(t.as_bytes()).into_owned())
    } else {
        None
    };
    Ok(PathStat {
        name: name.to_string(),
        size: st.st_size as u64,
        mode: st.st_mode,
        is_dir: ft == FileType::Directory,
        link_target,
    })
}

impl Engine {
    /// Opens a container's merged root for `cp`, mounting the overlay of a stopped container.
    pub fn open_container_root(&mut self, name: &str) -> Result<ContainerRoot, EngineError> {
        let (row, _rec, live): (_, _, LiveState) = self.load(name)?;
        let spec = self.spec_of(&row.id)?;
        let dir = self.container_dir_of(&row.id);
        let rootfs = dir.join("rootfs");
        let mut mounted_here = false;
        if !berth_runtime::rootfs::is_mounted(&rootfs) {
            if live.running {
                return Err(EngineError::Conflict(format!(
                    "container {}: its root filesystem is not mounted",
                    row.id
                )));
            }
            berth_runtime::mount_rootfs(&dir, &spec.layers).map_err(EngineError::Runtime)?;
            mounted_here = true;
        }
        let root = rustix::fs::open(
            &rootfs,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| EngineError::io(format!("opening {}", rootfs.display()), e.into()));
        let root = match root {
            Ok(r) => r,
            Err(e) => {
                if mounted_here {
                    let _ = berth_runtime::rootfs::unmount(&rootfs);
                }
                return Err(e);
            }
        };
        Ok(ContainerRoot {
            id: row.id,
            spec,
            root,
            dir,
            mounted_here,
        })
    }
}

impl ContainerRoot {
    fn not_found(&self, path: &str) -> EngineError {
        EngineError::NotFound(format!(
            "Could not find the file {path} in container {}",
            &self.id[..12.min(self.id.len())]
        ))
    }

    fn resolve(&self, path: &str, follow: bool) -> Result<Found, EngineError> {
        resolve(self.root.as_fd(), path, follow).map_err(|e| {
            if e.kind() == io::ErrorKind::NotFound {
                self.not_found(path)
            } else {
                EngineError::io(format!("{path} in container"), e)
            }
        })
    }

    /// What is at container path `path` (`None` when nothing is).
    pub fn stat(&self, path: &str, follow: bool) -> Result<Option<PathStat>, EngineError> {
        let found = match resolve(self.root.as_fd(), path, follow) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(EngineError::io(format!("{path} in container"), e)),
        };
        let name = split_last(path).1.unwrap_or_else(|| "/".into());
        stat_of(&found, &name)
            .map(Some)
            .map_err(|e| EngineError::io(format!("{path} in container"), e))
    }

    /// Writes a tar of container path `path` to `out`, its entries named `top` and `top/…`
    /// (children only when `top` is empty).
    pub fn archive(
        &self,
        path: &str,
        follow: bool,
        top: &str,
        opts: TarOptions,
        out: &mut dyn Write,
    ) -> Result<(), EngineError> {
        let found = self.resolve(path, follow)?;
        write_tar(&found.dir, &found.name, top, opts, out)
            .map_err(|e| EngineError::io(format!("copying {path} from the container"), e))
    }

    /// Extracts the tar `input` into container directory `dir` (resolved in the root; it must
    /// exist). Every entry is resolved inside that directory.
    pub fn extract(&self, dir: &str, input: &mut dyn Read) -> Result<(), EngineError> {
        if self.spec.run.read_only {
            return Err(EngineError::Conflict(
                "container rootfs is marked read-only".into(),
            ));
        }
        let fd = open_in_root(self.root.as_fd(), OsStr::new(dir), OFlags::PATH).map_err(|e| {
            if e.kind() == io::ErrorKind::NotFound {
                self.not_found(dir)
            } else {
                EngineError::io(format!("{dir} in container"), e)
            }
        })?;
        let st = rustix::fs::fstat(&fd).map_err(|e| EngineError::io(dir.to_string(), e.into()))?;
        if FileType::from_raw_mode(st.st_mode) != FileType::Directory {
            return Err(EngineError::InvalidArgument(format!(
                "extraction point is not a directory: {dir}"
            )));
        }
        let target = PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()));
        berth_oci::layer::apply_archive(input, &target).map_err(|e| EngineError::Layer {
            context: format!("copying to {dir} in the container"),
            source: e,
        })?;
        Ok(())
    }
}

impl Drop for ContainerRoot {
    fn drop(&mut self) {
        if !self.mounted_here {
            return;
        }
        let running = matches!(
            berth_runtime::state(&self.dir),
            Ok(berth_runtime::ContainerState::Running { .. })
        );
        if !running {
            let _ = berth_runtime::rootfs::unmount(&self.dir.join("rootfs"));
        }
    }
}

/// Writes a tar of host path `path` (symlinks in its parents followed as usual; the final one
/// only with `follow`) with the top entry named `top` (children only when empty).
pub fn archive_host_path(
    path: &Path,
    follow: bool,
    top: &str,
    opts: TarOptions,
    out: &mut dyn Write,
) -> io::Result<()> {
    let s = path.as_os_str().as_bytes();
    let abs = if s.starts_with(b"/") {
        path.to_path_buf()
    } else {
        std::env::current_dir()?.join(path)
    };
    let host_root = rustix::fs::open("/", OFlags::PATH | OFlags::CLOEXEC, Mode::empty())?;
    let p = String::from_utf8_lossy(abs.as_os_str().as_bytes()).into_owned();
    // The host is trusted: resolve like any program would, from the real root.
    let found = resolve(host_root.as_fd(), &p, follow)?;
    write_tar(&found.dir, &found.name, top, opts, out)
}

fn write_tar(
    dir: &OwnedFd,
    name: &OsStr,
    top: &str,
    opts: TarOptions,
    out: &mut dyn Write,
) -> io::Result<()> {
    let mut b = tar::Builder::new(out);
    b.mode(tar::HeaderMode::Complete);
    b.follow_symlinks(false);
    let mut w = Walker {
        b: &mut b,
        opts,
        links: HashMap::new(),
    };
    // Depth-first without recursion (a container can nest directories deeper than any stack),
    // each open directory with the names left to visit in it, last first.
    let mut stack: Vec<(OwnedFd, String, Vec<OsString>)> = Vec::new();
    if let Some(d) = w.entry(dir.as_fd(), name, top)? {
        stack.push(d);
    }
    while let Some((d, prefix, names)) = stack.last_mut() {
        let Some(n) = names.pop() else {
            stack.pop();
            continue;
        };
        let child = if prefix.is_empty() || prefix == "." {
            String::from_utf8_lossy(n.as_bytes()).into_owned()
        } else {
            format!("{prefix}/{}", String::from_utf8_lossy(n.as_bytes()))
        };
        let d = d.as_fd();
        if let Some(sub) = w.entry(d, &n, &child)? {
            if stack.len() >= MAX_DEPTH {
                let start: String = child.chars().take(60).collect();
                return Err(io::Error::other(format!(
                    "{start}…: directories nested more than {MAX_DEPTH} levels deep cannot be copied"
                )));
            }
            stack.push(sub);
        }
    }
    b.finish()
}

/// How deep `cp` and `export` follow nested directories: each level holds a descriptor, and
/// no real file system needs more (Docker's walk fails at PATH_MAX, about 2,000 levels).
const MAX_DEPTH: usize = 1024;

struct Walker<'a, W: Write> {
    b: &'a mut tar::Builder<W>,
    opts: TarOptions,
    links: HashMap<(u64, u64), String>,
}

impl<W: Write> Walker<'_, W> {
    fn header(&self, st: &rustix::fs::Stat, kind: tar::EntryType) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(st.st_mode & 0o7777);
        let (uid, gid) = self.opts.owner.unwrap_or((st.st_uid, st.st_gid));
        h.set_uid(uid as u64);
        h.set_gid(gid as u64);
        h.set_mtime(st.st_mtime.max(0) as u64);
        h.set_size(0);
        h
    }

    /// Writes the entry for `name` in `dir` (the object `dir` itself when `name` is empty); for
    /// a directory, returns it opened, with its name and its children's names (last first).
    fn entry(
        &mut self,
        dir: BorrowedFd<'_>,
        name: &OsStr,
        tar_name: &str,
    ) -> io::Result<Option<(OwnedFd, String, Vec<OsString>)>> {
        let itself = name.is_empty();
        let st = if itself {
            rustix::fs::statat(dir, "", AtFlags::EMPTY_PATH)?
        } else {
            rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW)?
        };
        match FileType::from_raw_mode(st.st_mode) {
            FileType::Directory => {
                if !tar_name.is_empty() && tar_name != "." {
                    let mut h = self.header(&st, tar::EntryType::Directory);
                    self.b
                        .append_data(&mut h, format!("{tar_name}/"), io::empty())?;
                }
                let d = if itself {
                    rustix::fs::openat(
                        dir,
                        ".",
                        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
                        Mode::empty(),
                    )?
                } else {
                    rustix::fs::openat(
                        dir,
                        name,
                        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                        Mode::empty(),
                    )?
                };
                let mut names: Vec<OsString> = Vec::new();
                for e in rustix::fs::Dir::read_from(&d)? {
                    let e = e?;
                    let n = e.file_name().to_bytes();
                    if n == b"." || n == b".." {
                        continue;
                    }
                    names.push(OsString::from_vec(n.to_vec()));
                }
                names.sort_unstable_by(|a, b| b.cmp(a));
                return Ok(Some((d, tar_name.to_string(), names)));
            }
            FileType::RegularFile => {
                let key = (st.st_dev, st.st_ino);
                if st.st_nlink > 1 {
                    if let Some(first) = self.links.get(&key).cloned() {
                        let mut h = self.header(&st, tar::EntryType::Link);
                        return self.b.append_link(&mut h, tar_name, first).map(|()| None);
                    }
                }
                let fd = if itself {
                    // The object itself, already resolved: reopen it for reading.
                    let p = format!("/proc/self/fd/{}", dir.as_raw_fd());
                    rustix::fs::open(
                        p.as_str(),
                        OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOCTTY,
                        Mode::empty(),
                    )?
                } else {
                    open_regular(dir, name)?
                };
                let fst = rustix::fs::fstat(&fd)?;
                if (fst.st_dev, fst.st_ino) != key {
                    return Err(io::Error::other(format!(
                        "{tar_name}: changed while being copied"
                    )));
                }
                let mut h = self.header(&fst, tar::EntryType::Regular);
                h.set_size(fst.st_size as u64);
                let file = std::fs::File::from(fd);
                let mut r = Exact {
                    inner: file.take(fst.st_size as u64),
                    left: fst.st_size as u64,
                };
                self.b.append_data(&mut h, tar_name, &mut r)?;
                if st.st_nlink > 1 {
                    self.links.insert(key, tar_name.to_string());
                }
            }
            FileType::Symlink => {
                let target = rustix::fs::readlinkat(dir, name, Vec::new())?;
                let mut h = self.header(&st, tar::EntryType::Symlink);
                self.b
                    .append_link(&mut h, tar_name, OsStr::from_bytes(target.as_bytes()))?;
            }
            t @ (FileType::CharacterDevice | FileType::BlockDevice | FileType::Fifo) => {
                let kind = match t {
                    FileType::CharacterDevice => tar::EntryType::Char,
                    FileType::BlockDevice => tar::EntryType::Block,
                    _ => tar::EntryType::Fifo,
                };
                let mut h = self.header(&st, kind);
                if kind != tar::EntryType::Fifo {
                    h.set_device_major(rustix::fs::major(st.st_rdev))?;
                    h.set_device_minor(rustix::fs::minor(st.st_rdev))?;
                }
                self.b.append_data(&mut h, tar_name, io::empty())?;
            }
            // Sockets (and anything else) cannot be archived.
            _ => {}
        }
        Ok(None)
    }
}

/// Opens `name` in `dir` for reading only if it is (still) a regular file. It is first opened
/// `O_PATH | O_NOFOLLOW`, which opens nothing: a running container may have swapped the file
/// for a FIFO (a plain open would hang the copy) or a device node of the host's disk (a plain
/// open happens outside the container's device cgroup) since it was examined. Only once that
/// descriptor is seen to be a regular file is it reopened through its `/proc/self/fd` link,
/// which names that inode and no other.
fn open_regular(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<OwnedFd> {
    let path = rustix::fs::openat(
        dir,
        name,
        OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let st = rustix::fs::fstat(&path)?;
    if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
        return Err(io::Error::other(format!(
            "{}: changed while being copied",
            name.to_string_lossy()
        )));
    }
    let link = format!("/proc/self/fd/{}", path.as_raw_fd());
    Ok(rustix::fs::open(
        link.as_str(),
        OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOCTTY,
        Mode::empty(),
    )?)
}

/// A reader of exactly `left` bytes: a file that shrank while being read is padded with
/// zeros, so the archive stays well-formed.
struct Exact<R> {
    inner: R,
    left: u64,
}

impl<R: Read> Read for Exact<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            return Ok(0);
        }
        let want = buf.len().min(self.left as usize);
        let mut n = self.inner.read(&mut buf[..want])?;
        if n == 0 {
            buf[..want].fill(0);
            n = want;
        }
        self.left -= n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_paths() {
        assert_eq!(split_last("/"), ("/".into(), None));
        assert_eq!(split_last("/a"), ("/".into(), Some("a".into())));
        assert_eq!(split_last("/a/b/"), ("/a".into(), Some("b".into())));
        assert_eq!(split_last("a"), ("".into(), Some("a".into())));
        assert_eq!(split_last("/a/.."), ("/a/..".into(), None));
    }

    #[test]
    fn a_file_swapped_for_a_fifo_or_symlink_is_not_opened() {
        let t = tempfile::tempdir().unwrap();
        let fifo = t.path().join("fifo");
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &fifo,
            FileType::Fifo,
            Mode::from_raw_mode(0o644),
            0,
        )
        .unwrap();
        std::fs::write(t.path().join("file"), "x").unwrap();
        std::os::unix::fs::symlink(t.path().join("file"), t.path().join("link")).unwrap();
        let dir =
            rustix::fs::open(t.path(), OFlags::PATH | OFlags::DIRECTORY, Mode::empty()).unwrap();
        // A plain open of the FIFO would block here for ever.
        assert!(open_regular(dir.as_fd(), OsStr::new("fifo")).is_err());
        assert!(open_regular(dir.as_fd(), OsStr::new("link")).is_err());
        let mut s = String::new();
        std::fs::File::from(open_regular(dir.as_fd(), OsStr::new("file")).unwrap())
            .read_to_string(&mut s)
            .unwrap();
        assert_eq!(s, "x");
    }

    #[test]
    fn symlinks_stay_inside_the_root() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("root");
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::fs::write(root.join("etc/passwd"), "inside").unwrap();
        std::os::unix::fs::symlink("/", root.join("escape")).unwrap();
        std::os::unix::fs::symlink("../../../../etc", root.join("x")).unwrap();
        let fd = rustix::fs::open(&root, OFlags::PATH | OFlags::DIRECTORY, Mode::empty()).unwrap();
        for p in ["/escape/etc/passwd", "/x/passwd", "/../../etc/passwd"] {
            let f = resolve(fd.as_fd(), p, true).unwrap();
            let mut out = Vec::new();
            write_tar(&f.dir, &f.name, "f", TarOptions::default(), &mut out).unwrap();
            let mut ar = tar::Archive::new(&out[..]);
            let mut e = ar.entries().unwrap().next().unwrap().unwrap();
            let mut s = String::new();
            e.read_to_string(&mut s).unwrap();
            assert_eq!(s, "inside", "{p}");
        }
    }
}
