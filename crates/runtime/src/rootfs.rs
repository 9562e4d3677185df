//! The container's root filesystem: an overlay of read-only layer directories plus a
//! per-container upper directory.

use crate::{Error, Result};
use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

const FSOPEN_CLOEXEC: libc::c_uint = 1;
const FSCONFIG_SET_STRING: libc::c_uint = 1;
const FSCONFIG_CMD_CREATE: libc::c_uint = 6;
const FSMOUNT_CLOEXEC: libc::c_uint = 1;
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 4;

fn cstr(p: &Path) -> Result<CString> {
    CString::new(p.as_os_str().as_bytes())
        .map_err(|_| Error::Invalid(format!("path with NUL: {}", p.display())))
}

fn last_err(what: &str) -> Error {
    Error::Io(std::io::Error::new(
        std::io::Error::last_os_error().kind(),
        format!("{what}: {}", std::io::Error::last_os_error()),
    ))
}

/// Whether `path` is a mount point (its device differs from its parent's, or it is listed in
/// /proc/self/mountinfo).
pub fn is_mounted(path: &Path) -> bool {
    if let Some(root) = is_mount_root(path) {
        return root;
    }
    let Ok(canon) = path.canonicalize() else {
        return false;
    };
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    let want = canon.to_string_lossy();
    info.lines().any(|l| {
        l.split(' ')
            .nth(4)
            .map(|m| unescape_mountinfo(m) == want)
            .unwrap_or(false)
    })
}

/// Whether `path` is the root of a mount, from `statx`'s `STATX_ATTR_MOUNT_ROOT` (Linux 5.8):
/// one system call instead of reading the whole mount table, which a host with a thousand
/// running containers makes long. `None` when the kernel does not say.
fn is_mount_root(path: &Path) -> Option<bool> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    // SAFETY: an all-zero `statx` is a valid value of this plain C struct.
    let mut stx: libc::statx = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a NUL-terminated path and `stx` a writable statx buffer that outlives
    // the call.
    let r = unsafe { libc::statx(libc::AT_FDCWD, c.as_ptr(), 0, 0, &mut stx) };
    let bit = libc::STATX_ATTR_MOUNT_ROOT as u64;
    (r == 0 && stx.stx_attributes_mask & bit != 0).then_some(stx.stx_attributes & bit != 0)
}

fn unescape_mountinfo(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 4], 8) {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Mounts an overlay of `lowers` (bottom layer first) with `upper` and `work` at `target`.
/// With no lower layers, `upper` alone is bind-mounted. Uses the new mount API (`lowerdir+`,
/// one layer per call, no length limit) and falls back to a classic mount(2) whose lowerdir
/// paths are short `/proc/self/fd/N` links, so many long layer paths still fit in a page.
pub fn mount_overlay(lowers: &[PathBuf], upper: &Path, work: &Path, target: &Path) -> Result<()> {
    // The upper dir's root is the container's `/`: 0755 as Docker's `diff/`, whatever the
    // umask. The rest is root's alone.
    crate::util::create_dir_mode(upper, 0o755)?;
    crate::util::create_dir_mode(work, 0o700)?;
    crate::util::create_dir_mode(target, 0o700)?;
    if lowers.is_empty() {
        return bind_mount(upper, target);
    }
    match mount_overlay_fsconfig(lowers, upper, work, target) {
        Ok(()) => Ok(()),
        Err(first) => mount_overlay_legacy(lowers, upper, work, target).map_err(|e| {
            Error::Invalid(format!(
                "mounting overlay at {}: {first}; fallback: {e}",
                target.display()
            ))
        }),
    }
}

fn bind_mount(src: &Path, target: &Path) -> Result<()> {
    nix::mount::mount(
        Some(src),
        target,
        None::<&str>,
        nix::mount::MsFlags::MS_BIND,
        None::<&str>,
    )
    .map_err(|e| {
        Error::Invalid(format!(
            "bind mount {} on {}: {e}",
            src.display(),
            target.display()
        ))
    })
}

fn mount_overlay_fsconfig(
    lowers: &[PathBuf],
    upper: &Path,
    work: &Path,
    target: &Path,
) -> Result<()> {
    let fstype = CString::new("overlay").unwrap();
    // SAFETY: plain syscalls with valid, NUL-terminated arguments; returned fds are owned.
    unsafe {
        let fd = libc::syscall(libc::SYS_fsopen, fstype.as_ptr(), FSOPEN_CLOEXEC);
        if fd < 0 {
            return Err(last_err("fsopen overlay"));
        }
        let fs = OwnedFd::from_raw_fd(fd as i32);
        let set = |key: &str, val: &Path| -> Result<()> {
            let k = CString::new(key).unwrap();
            let v = cstr(val)?;
            if libc::syscall(
                libc::SYS_fsconfig,
                fs.as_raw_fd(),
                FSCONFIG_SET_STRING,
                k.as_ptr(),
                v.as_ptr(),
                0,
            ) < 0
            {
                return Err(last_err(&format!("fsconfig {key}={}", val.display())));
            }
            Ok(())
        };
        // lowerdir+ appends below the previous ones: the top layer comes first.
        for l in lowers.iter().rev() {
            set("lowerdir+", l)?;
        }
        set("upperdir", upper)?;
        set("workdir", work)?;
        if libc::syscall(
            libc::SYS_fsconfig,
            fs.as_raw_fd(),
            FSCONFIG_CMD_CREATE,
            0usize,
            0usize,
            0,
        ) < 0
        {
            return Err(last_err("fsconfig create overlay"));
        }
        let m = libc::syscall(libc::SYS_fsmount, fs.as_raw_fd(), FSMOUNT_CLOEXEC, 0);
        if m < 0 {
            return Err(last_err("fsmount overlay"));
        }
        let mnt = OwnedFd::from_raw_fd(m as i32);
        let empty = CString::new("").unwrap();
        let t = cstr(target)?;
        if libc::syscall(
            libc::SYS_move_mount,
            mnt.as_raw_fd(),
            empty.as_ptr(),
            libc::AT_FDCWD,
            t.as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH,
        ) < 0
        {
            return Err(last_err("move_mount overlay"));
        }
    }
    Ok(())
}

fn mount_overlay_legacy(
    lowers: &[PathBuf],
    upper: &Path,
    work: &Path,
    target: &Path,
) -> Result<()> {
    // Keep the layer directories open and name them through short fd links.
    let mut held = Vec::new();
    let mut names = Vec::new();
    for l in lowers.iter().rev() {
        let f = std::fs::File::open(l)?;
        names.push(format!("/proc/self/fd/{}", f.as_raw_fd()));
        held.push(f);
    }
    let data = format!(
        "lowerdir={},upperdir={},workdir={}",
        names.join(":"),
        upper.display(),
        work.display()
    );
    if data.len() >= 4096 {
        return Err(Error::Invalid(format!(
            "overlay options too long ({} bytes)",
            data.len()
        )));
    }
    nix::mount::mount(
        Some("overlay"),
        target,
        Some("overlay"),
        nix::mount::MsFlags::empty(),
        Some(data.as_str()),
    )
    .map_err(|e| Error::Invalid(format!("mount overlay: {e}")))?;
    drop(held);
    Ok(())
}

/// Unmounts `target` (lazily, so a busy mount goes away when its last user does). Succeeds when
/// nothing is mounted there.
pub fn unmount(target: &Path) -> Result<()> {
    loop {
        match nix::mount::umount2(target, nix::mount::MntFlags::MNT_DETACH) {
            Ok(()) => continue,
            Err(nix::errno::Errno::EINVAL) | Err(nix::errno::Errno::ENOENT) => return Ok(()),
            Err(e) => return Err(Error::Invalid(format!("unmount {}: {e}", target.display()))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The statx answer agrees with the mount table, for mount points and for plain
    /// directories.
    #[test]
    fn mount_root_agrees_with_mountinfo() {
        let plain = std::env::temp_dir().join(format!("berth-mnt-{}", std::process::id()));
        std::fs::create_dir_all(&plain).unwrap();
        for (p, want) in [
            (Path::new("/proc"), true),
            (Path::new("/"), true),
            (plain.as_path(), false),
        ] {
            assert_eq!(is_mounted(p), want, "{}", p.display());
            if let Some(root) = is_mount_root(p) {
                assert_eq!(root, want, "{}", p.display());
            }
        }
        assert!(!is_mounted(&plain.join("missing")));
        std::fs::remove_dir(&plain).unwrap();
    }
}
