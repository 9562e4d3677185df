//! Resolving container paths inside a root directory on the host, following symlinks the way
//! the container would see them: never out of the root.

use std::io;
use std::path::{Component, Path, PathBuf};

const MAX_LINKS: usize = 255;

/// Lexically cleans an absolute container path: `/a/./b/../c` → `/a/c`; never above `/`.
pub fn clean(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for p in path.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    format!("/{}", parts.join("/"))
}

/// Resolves `path` (a container path) inside `root`, following symlinks as if `root` were `/`.
/// Returns the resolved container path (absolute, starting with `/`). Components that do not
/// exist yet are kept as they are.
pub fn resolve_in_root(root: &Path, path: &str) -> io::Result<String> {
    let mut resolved: Vec<String> = Vec::new();
    let mut pending: Vec<String> = clean(path)
        .split('/')
        .filter(|s| !s.is_empty())
        .rev()
        .map(str::to_string)
        .collect();
    let mut links = 0;
    while let Some(part) = pending.pop() {
        if part == "." {
            continue;
        }
        if part == ".." {
            resolved.pop();
            continue;
        }
        let mut host = root.to_path_buf();
        for r in &resolved {
            host.push(r);
        }
        host.push(&part);
        match std::fs::symlink_metadata(&host) {
            Ok(m) if m.file_type().is_symlink() => {
                links += 1;
                if links > MAX_LINKS {
                    return Err(io::Error::from_raw_os_error(libc::ELOOP));
                }
                let target = std::fs::read_link(&host)?;
                let target = target.to_string_lossy().to_string();
                if target.starts_with('/') {
                    resolved.clear();
                }
                for t in target.split('/').filter(|s| !s.is_empty()).rev() {
                    pending.push(t.to_string());
                }
            }
            _ => resolved.push(part),
        }
    }
    Ok(format!("/{}", resolved.join("/")))
}

/// The host path of container path `path` inside `root` (after [`resolve_in_root`]).
pub fn host_path(root: &Path, path: &str) -> io::Result<PathBuf> {
    let r = resolve_in_root(root, path)?;
    Ok(join_root(root, &r))
}

/// Joins an already-resolved container path onto the root.
pub fn join_root(root: &Path, resolved: &str) -> PathBuf {
    let mut p = root.to_path_buf();
    for c in Path::new(resolved).components() {
        if let Component::Normal(n) = c {
            p.push(n);
        }
    }
    p
}

/// Creates container directory `path` (and its parents) inside `root`, resolving each level
/// inside the root. Returns the resolved container path.
pub fn mkdir_all_in_root(root: &Path, path: &str) -> io::Result<String> {
    let resolved = resolve_in_root(root, path)?;
    let mut cur = String::new();
    for part in resolved.split('/').filter(|s| !s.is_empty()) {
        cur.push('/');
        cur.push_str(part);
        let r = resolve_in_root(root, &cur)?;
        let host = join_root(root, &r);
        match std::fs::symlink_metadata(&host) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    format!("{cur}: not a directory"),
                ))
            }
            Err(_) => std::fs::create_dir(&host)?,
        }
        cur = r;
    }
    Ok(resolved)
}

/// Creates an empty file at container path `path` (parents too) inside `root` if nothing is
/// there yet, e.g. as a mount point for a bind-mounted file. Returns the resolved path.
pub fn touch_in_root(root: &Path, path: &str) -> io::Result<String> {
    let resolved = resolve_in_root(root, path)?;
    let parent = Path::new(&resolved)
        .parent()
        .map(|p| p.to_string_lossy().to_string())
        .unwrap_or_else(|| "/".into());
    mkdir_all_in_root(root, &parent)?;
    let host = join_root(root, &resolved);
    if std::fs::symlink_metadata(&host).is_err() {
        std::fs::File::create(&host)?;
    }
    Ok(resolved)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cleans() {
        assert_eq!(clean("/a/./b/../c"), "/a/c");
        assert_eq!(clean("../../x"), "/x");
        assert_eq!(clean(""), "/");
    }

    #[test]
    fn symlinks_stay_inside() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        std::fs::create_dir_all(root.join("real/dir")).unwrap();
        std::os::unix::fs::symlink("/etc", root.join("escape")).unwrap();
        std::os::unix::fs::symlink("../../../../..", root.join("up")).unwrap();
        std::os::unix::fs::symlink("real/dir", root.join("rel")).unwrap();
        assert_eq!(
            resolve_in_root(root, "/escape/passwd").unwrap(),
            "/etc/passwd"
        );
        assert_eq!(resolve_in_root(root, "/up/etc").unwrap(), "/etc");
        assert_eq!(resolve_in_root(root, "/rel/x").unwrap(), "/real/dir/x");
        let made = mkdir_all_in_root(root, "/escape/sub").unwrap();
        assert_eq!(made, "/etc/sub");
        assert!(root.join("etc/sub").is_dir());
        std::os::unix::fs::symlink("loop", root.join("loop")).unwrap();
        assert!(resolve_in_root(root, "/loop").is_err());
    }
}
