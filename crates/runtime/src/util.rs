//! Small helpers shared by the library and the monitor: time stamps, atomic writes, process
//! identity, unix socket paths.

use std::io::{self, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

/// Formats a UNIX time (seconds + nanoseconds) as RFC 3339 with nanoseconds, in UTC, the way
/// Docker's json-file log and `State.FinishedAt` do: `2024-05-01T12:34:56.123456789Z`.
pub fn rfc3339_nano(secs: i64, nanos: u32) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (h, m, s) = (rem / 3600, (rem % 3600) / 60, rem % 60);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let mo = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if mo <= 2 { y + 1 } else { y };
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{m:02}:{s:02}.{nanos:09}Z")
}

/// The current time as [`rfc3339_nano`].
pub fn now_rfc3339() -> String {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    rfc3339_nano(d.as_secs() as i64, d.subsec_nanos())
}

/// Creates the directory `path` (missing parents with mode 0700) with exactly `mode`, whatever
/// the umask; an existing one is left as it is (a container may have changed its own `/`).
pub fn create_dir_mode(path: &Path, mode: u32) -> io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(parent)?;
    }
    match std::fs::DirBuilder::new().mode(mode).create(path) {
        Ok(()) => std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && path.is_dir() => Ok(()),
        Err(e) => Err(e),
    }
}

/// Writes `data` to `path` atomically: a temp file in the same directory, fsync, rename.
pub fn write_atomic(path: &Path, data: &[u8]) -> io::Result<()> {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)
}

/// Background fsyncs started by [`write_atomic_deferred`], joined by [`finish_deferred_syncs`].
static DEFERRED_SYNCS: std::sync::Mutex<Vec<std::thread::JoinHandle<()>>> =
    std::sync::Mutex::new(Vec::new());

/// Like [`write_atomic`], but the fsync runs on a background thread: the file is in place at
/// once and the command goes on while the disk catches up (one journal commit for several
/// files instead of one each). The process must call [`finish_deferred_syncs`] before it
/// reports success. A power loss before that may leave the file empty; readers treat an empty
/// container file like a damaged container, which `rm` still removes.
pub fn write_atomic_deferred(path: &Path, data: &[u8]) -> io::Result<()> {
    write_atomic_nosync(path, data)?;
    let f = std::fs::File::open(path)?;
    let h = std::thread::spawn(move || {
        let _ = f.sync_all();
    });
    if let Ok(mut v) = DEFERRED_SYNCS.lock() {
        v.push(h);
    }
    Ok(())
}

/// Waits for the fsyncs started by [`write_atomic_deferred`].
pub fn finish_deferred_syncs() {
    let pending = match DEFERRED_SYNCS.lock() {
        Ok(mut v) => std::mem::take(&mut *v),
        Err(_) => return,
    };
    for h in pending {
        let _ = h.join();
    }
}

/// Like [`write_atomic`] without the fsync: for files that describe one run of a container
/// (start record, exit status, runtime bundle copy). They are replaced whole by a rename, so a
/// reader never sees a torn file; after a power loss the run they describe is over anyway and
/// [`crate::state`] copes with a missing or empty one.
pub fn write_atomic_nosync(path: &Path, data: &[u8]) -> io::Result<()> {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, data)?;
    std::fs::rename(&tmp, path)
}

/// A process's start time (field 22 of /proc/PID/stat), to tell a pid from a recycled one.
pub fn proc_start_time(pid: i32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &s[s.rfind(')')? + 2..];
    after.split(' ').nth(19)?.parse().ok()
}

/// Whether process `pid` is alive (not a zombie) and started at `start`.
pub fn proc_alive(pid: i32, start: u64) -> bool {
    let Ok(s) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let Some(close) = s.rfind(')') else {
        return false;
    };
    let mut f = s[close + 2..].split(' ');
    let state = f.next().unwrap_or("");
    let st: Option<u64> = f.nth(18).and_then(|x| x.parse().ok());
    state != "Z" && state != "X" && st == Some(start)
}

/// A pidfd for `pid` if it is still the process that started at `start` (checked after the
/// pidfd is open, so a recycled pid is never waited on).
pub fn pidfd_of(pid: i32, start: u64) -> Option<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return None;
    }
    // SAFETY: the descriptor was just returned to us and is owned by nothing else.
    let fd = unsafe { std::os::fd::OwnedFd::from_raw_fd(fd as i32) };
    proc_alive(pid, start).then_some(fd)
}

/// Reads a `pid start_time` file.
pub fn read_pid_file(path: &Path) -> Option<(i32, u64)> {
    let s = std::fs::read_to_string(path).ok()?;
    let mut it = s.split_whitespace();
    Some((it.next()?.parse().ok()?, it.next()?.parse().ok()?))
}

/// Writes a `pid start_time` file atomically (not fsynced: pids mean nothing after a reboot).
pub fn write_pid_file(path: &Path, pid: i32) -> io::Result<()> {
    let st = proc_start_time(pid).unwrap_or(0);
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, format!("{pid} {st}\n"))?;
    std::fs::rename(&tmp, path)
}

/// A path for binding/connecting a unix socket at `path` even when it is longer than
/// `sun_path` allows: through an `O_PATH` handle of its directory (`/proc/self/fd/N/name`).
/// Keep the returned fd alive while the path is used.
pub fn socket_path(path: &Path) -> io::Result<(PathBuf, Option<OwnedFd>)> {
    if path.as_os_str().len() < 100 {
        return Ok((path.to_path_buf(), None));
    }
    let dir = path.parent().unwrap_or(Path::new("/"));
    let fd: OwnedFd = nix::fcntl::open(
        dir,
        nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map(|fd| unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) })
    .map_err(io::Error::from)?;
    let name = path.file_name().unwrap_or_default();
    let p = PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd())).join(name);
    Ok((p, Some(fd)))
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn time_format() {
        assert_eq!(rfc3339_nano(0, 0), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(
            rfc3339_nano(1_700_000_000, 5),
            "2023-11-14T22:13:20.000000005Z"
        );
        assert_eq!(
            rfc3339_nano(951_782_400, 0),
            "2000-02-29T00:00:00.000000000Z"
        );
    }
}
