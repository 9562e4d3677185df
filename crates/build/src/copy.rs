//! COPY/ADD into a step's merged root, with Docker's semantics: a directory source copies its
//! contents; a file goes to `dest/<name>` when the destination is a directory (ends with `/`,
//! several sources, or an existing directory) and to `dest` otherwise; missing parents are
//! created (0755, owned by `--chown`'s user); owners become 0:0 or `--chown`; modes are kept
//! or replaced by `--chmod`; mtimes are kept (the layer writer clamps them to
//! `SOURCE_DATE_EPOCH`). Every destination path is resolved inside the root, so a symlink in
//! the image never leads a write outside it.

use crate::context::{Entry, Kind};
use berth_runtime::paths::{host_path, resolve_in_root};
use std::collections::HashMap;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// One resolved source.
pub struct SourceItem {
    /// Where it is on the host.
    pub host: PathBuf,
    /// Its base name (for `dest/<name>`).
    pub name: String,
    /// The source itself (`rel` empty).
    pub top: Entry,
    /// What is below it (directories only), relative to it.
    pub children: Vec<Entry>,
    /// Keep the owners the entries have (ADD's archive extraction).
    pub keep_owner: bool,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct CopySpec {
    pub chown: Option<(u32, u32)>,
    pub chmod: Option<u32>,
}

pub struct Copier<'a> {
    root: &'a Path,
    spec: CopySpec,
    dirs: HashMap<String, PathBuf>,
    dir_times: Vec<(PathBuf, i64)>,
}

fn parent_and_name(p: &str) -> (String, String) {
    let p = p.trim_end_matches('/');
    match p.rfind('/') {
        Some(0) => ("/".into(), p[1..].to_string()),
        Some(i) => (p[..i].to_string(), p[i + 1..].to_string()),
        None => ("/".into(), p.to_string()),
    }
}

fn cpath(p: &Path) -> std::ffi::CString {
    std::ffi::CString::new(p.as_os_str().as_bytes()).unwrap_or_default()
}

fn lchown(p: &Path, uid: u32, gid: u32) -> io::Result<()> {
    let c = cpath(p);
    // SAFETY: valid path string.
    if unsafe { libc::lchown(c.as_ptr(), uid, gid) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn set_mtime(p: &Path, secs: i64) {
    let c = cpath(p);
    let ts = libc::timespec {
        tv_sec: secs as libc::time_t,
        tv_nsec: 0,
    };
    let times = [ts, ts];
    // SAFETY: valid path and two timespecs.
    unsafe {
        libc::utimensat(
            libc::AT_FDCWD,
            c.as_ptr(),
            times.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        );
    }
}

fn chmod(p: &Path, mode: u32) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode))
}

impl<'a> Copier<'a> {
    pub fn new(root: &'a Path, spec: CopySpec) -> Self {
        Copier {
            root,
            spec,
            dirs: HashMap::new(),
            dir_times: Vec::new(),
        }
    }

    fn owner(&self, e: &Entry, keep: bool) -> (u32, u32) {
        match self.spec.chown {
            Some(o) => o,
            None if keep => (e.uid, e.gid),
            None => (0, 0),
        }
    }

    /// Makes sure container directory `path` exists (parents too); returns its host path.
    pub fn ensure_dir(&mut self, path: &str) -> io::Result<PathBuf> {
        if let Some(p) = self.dirs.get(path) {
            return Ok(p.clone());
        }
        let resolved = resolve_in_root(self.root, path)?;
        let mut cur = self.root.to_path_buf();
        let mut cpath_so_far = String::new();
        for comp in resolved.split('/').filter(|c| !c.is_empty()) {
            cpath_so_far.push('/');
            cpath_so_far.push_str(comp);
            let next = cur.join(comp);
            match std::fs::symlink_metadata(&next) {
                Ok(m) if m.is_dir() => {}
                Ok(m) if m.file_type().is_symlink() => {
                    // resolve_in_root already followed links; a link here is a race.
                    return Err(io::Error::other(format!(
                        "{cpath_so_far} changed while copying"
                    )));
                }
                Ok(_) => {
                    return Err(io::Error::other(format!(
                        "cannot copy to {path}: {cpath_so_far} is not a directory"
                    )))
                }
                Err(_) => {
                    std::fs::create_dir(&next)?;
                    chmod(&next, 0o755)?;
                    let (u, g) = self.spec.chown.unwrap_or((0, 0));
                    lchown(&next, u, g)?;
                }
            }
            cur = next;
        }
        self.dirs.insert(path.to_string(), cur.clone());
        Ok(cur)
    }

    /// Copies every source to `dest` (an absolute container path).
    pub fn copy(
        &mut self,
        sources: &[SourceItem],
        dest: &str,
        dest_is_dir: bool,
    ) -> io::Result<()> {
        for src in sources {
            match src.top.kind {
                Kind::Dir => {
                    let base = dest.trim_end_matches('/').to_string();
                    let base = if base.is_empty() {
                        "/".to_string()
                    } else {
                        base
                    };
                    let host_dir = self.ensure_dir(&base)?;
                    if let Some(mode) = self.spec.chmod {
                        let _ = chmod(&host_dir, mode);
                    }
                    for child in &src.children {
                        let target = if base == "/" {
                            format!("/{}", child.rel)
                        } else {
                            format!("{base}/{}", child.rel)
                        };
                        let from = src.host.join(&child.rel);
                        self.place(child, &from, &target, src.keep_owner)?;
                    }
                }
                _ => {
                    let into_dir = dest_is_dir || {
                        let d = dest.trim_end_matches('/');
                        host_path(self.root, if d.is_empty() { "/" } else { d })
                            .map(|p| p.is_dir())
                            .unwrap_or(false)
                    };
                    let target = if into_dir {
                        format!("{}/{}", dest.trim_end_matches('/'), src.name)
                    } else {
                        dest.to_string()
                    };
                    self.place(&src.top, &src.host, &target, src.keep_owner)?;
                }
            }
        }
        for (p, t) in self.dir_times.drain(..).rev() {
            set_mtime(&p, t);
        }
        Ok(())
    }

    fn place(&mut self, e: &Entry, from: &Path, target: &str, keep: bool) -> io::Result<()> {
        let (parent, name) = parent_and_name(target);
        let host_parent = self.ensure_dir(&parent)?;
        let to = host_parent.join(&name);
        let (uid, gid) = self.owner(e, keep);
        let existing = std::fs::symlink_metadata(&to).ok();
        match &e.kind {
            Kind::Dir => {
                match existing {
                    Some(m) if m.is_dir() => {}
                    Some(_) => {
                        std::fs::remove_file(&to)?;
                        std::fs::create_dir(&to)?;
                    }
                    None => std::fs::create_dir(&to)?,
                }
                lchown(&to, uid, gid)?;
                chmod(&to, self.spec.chmod.unwrap_or(e.mode))?;
                self.dirs.insert(target.to_string(), to.clone());
                self.dir_times.push((to, e.mtime));
            }
            Kind::File => {
                if let Some(m) = existing {
                    if m.is_dir() {
                        return Err(io::Error::other(format!(
                            "cannot replace directory {target} with a file"
                        )));
                    }
                    std::fs::remove_file(&to)?;
                }
                std::fs::copy(from, &to)?;
                lchown(&to, uid, gid)?;
                chmod(&to, self.spec.chmod.unwrap_or(e.mode))?;
                set_mtime(&to, e.mtime);
            }
            Kind::Symlink(t) => {
                if let Some(m) = existing {
                    if m.is_dir() {
                        std::fs::remove_dir_all(&to)?;
                    } else {
                        std::fs::remove_file(&to)?;
                    }
                }
                std::os::unix::fs::symlink(t, &to)?;
                lchown(&to, uid, gid)?;
                set_mtime(&to, e.mtime);
            }
            Kind::Other => {}
        }
        Ok(())
    }
}
