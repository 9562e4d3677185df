//! Overlay mounts for build steps: the parent's layers (read-only) under a fresh upper dir whose
//! contents become the step's layer.
//!
//! The oci crate turns an upper dir into a layer only when the overlay was mounted with
//! `redirect_dir=off,metacopy=off` (a renamed directory or a metadata-only copy-up cannot be
//! expressed in a layer tar without the lower layers), so every build mount says so explicitly
//! instead of relying on the kernel's defaults. `index=off` keeps overlay from recording
//! origins in the (shared) lower layers' filesystem.

use std::ffi::CString;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// A mounted merged view; unmounted (lazily) when dropped.
pub struct Merged {
    /// The directory to read and write through: the mount point, or the upper dir itself when
    /// there are no lower layers.
    pub root: PathBuf,
    /// Where changes land.
    pub upper: PathBuf,
    mounted: bool,
}

impl Merged {
    /// Mounts `lowers` (bottom first) under `dir/upper` at `dir/rootfs` (work dir `dir/work`).
    pub fn mount(dir: &Path, lowers: &[PathBuf]) -> std::io::Result<Merged> {
        let upper = dir.join("upper");
        let work = dir.join("work");
        let target = dir.join("rootfs");
        // The upper dir becomes the layer, its root the image's `/`: 0755 whatever the umask.
        berth_runtime::util::create_dir_mode(&upper, 0o755)?;
        if lowers.is_empty() {
            return Ok(Merged {
                root: upper.clone(),
                upper,
                mounted: false,
            });
        }
        berth_runtime::util::create_dir_mode(&work, 0o700)?;
        berth_runtime::util::create_dir_mode(&target, 0o700)?;
        mount_overlay(lowers, &upper, &work, &target)?;
        Ok(Merged {
            root: target,
            upper,
            mounted: true,
        })
    }

    /// Unmounts now (idempotent).
    pub fn unmount(&mut self) -> std::io::Result<()> {
        if self.mounted {
            self.mounted = false;
            unmount(&self.root)?;
        }
        Ok(())
    }
}

impl Drop for Merged {
    fn drop(&mut self) {
        let _ = self.unmount();
    }
}

fn cstr(s: &[u8]) -> std::io::Result<CString> {
    CString::new(s).map_err(|_| std::io::Error::other("path contains NUL"))
}

/// Mounts an overlay with the options layer creation needs. Lower dirs are named through
/// `/proc/self/fd/N` links so long stacks of long paths fit in one page of options.
pub fn mount_overlay(
    lowers: &[PathBuf],
    upper: &Path,
    work: &Path,
    target: &Path,
) -> std::io::Result<()> {
    let mut held = Vec::with_capacity(lowers.len());
    let mut names = Vec::with_capacity(lowers.len());
    for l in lowers.iter().rev() {
        let f = std::fs::File::open(l)?;
        names.push(format!("/proc/self/fd/{}", f.as_raw_fd()));
        held.push(f);
    }
    let with = |extra: &str| {
        format!(
            "lowerdir={},upperdir={},workdir={}{extra}",
            names.join(":"),
            upper.display(),
            work.display()
        )
    };
    let src = cstr(b"overlay")?;
    let t = cstr(target.as_os_str().as_bytes())?;
    let mut last = std::io::Error::other("overlay mount failed");
    // Older kernels lack some options; metacopy and redirect_dir default to off there.
    for extra in [
        ",redirect_dir=off,metacopy=off,index=off",
        ",redirect_dir=off,index=off",
        "",
    ] {
        let data = cstr(with(extra).as_bytes())?;
        // SAFETY: valid NUL-terminated strings.
        let rc = unsafe {
            libc::mount(
                src.as_ptr(),
                t.as_ptr(),
                src.as_ptr(),
                0,
                data.as_ptr() as *const libc::c_void,
            )
        };
        if rc == 0 {
            return Ok(());
        }
        last = std::io::Error::last_os_error();
        if last.raw_os_error() != Some(libc::EINVAL) {
            break;
        }
    }
    Err(std::io::Error::new(
        last.kind(),
        format!("mounting overlay at {}: {last}", target.display()),
    ))
}

/// Lazily unmounts `target`; nothing mounted is fine.
pub fn unmount(target: &Path) -> std::io::Result<()> {
    let t = cstr(target.as_os_str().as_bytes())?;
    loop {
        // SAFETY: valid NUL-terminated string.
        let rc = unsafe { libc::umount2(t.as_ptr(), libc::MNT_DETACH) };
        if rc == 0 {
            continue;
        }
        let e = std::io::Error::last_os_error();
        return match e.raw_os_error() {
            Some(libc::EINVAL) | Some(libc::ENOENT) => Ok(()),
            _ => Err(e),
        };
    }
}
