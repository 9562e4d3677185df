//! RUN steps: a real container through berth-runtime on an overlay of the parent's layers and
//! a fresh upper dir (the step's layer-to-be), its output streamed line by line.
//!
//! Mount points the runtime had to create (`/proc`, `/etc/resolv.conf` …) are removed from the
//! upper dir afterwards when they were not in the image, so they never end up in the layer.

use crate::overlay::Merged;
use crate::BuildError;
use berth_runtime::{ImageRuntimeConfig, MountSpec, NetworkMode, RunOptions, StartOptions};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

pub struct RunSpec<'a> {
    /// The container directory (in the build's staging area).
    pub dir: &'a Path,
    pub lowers: &'a [PathBuf],
    pub argv: Vec<String>,
    pub env: Vec<String>,
    pub user: String,
    pub workdir: String,
    pub network: NetworkMode,
    pub mounts: Vec<MountSpec>,
    pub runroot: &'a Path,
    pub monitor: Option<PathBuf>,
    pub cancel: &'a AtomicBool,
}

pub struct RunOutcome {
    pub exit_code: i32,
    /// The last lines of output.
    pub tail: Vec<String>,
}

fn rt_err(e: berth_runtime::Error) -> BuildError {
    BuildError::Failed(e.to_string())
}

/// Runs the command; the upper dir `spec.dir/upper` holds its changes afterwards.
pub fn run(spec: RunSpec<'_>, on_line: &mut dyn FnMut(&str)) -> Result<RunOutcome, BuildError> {
    let dir = spec.dir;
    let mut merged = Merged::mount(dir, spec.lowers)
        .map_err(|e| BuildError::io("mounting the step's root".into(), e))?;
    // Which mount points the image lacks (checked in the merged view).
    let mut targets: Vec<String> = berth_runtime::spec::MOUNT_POINT_STUBS
        .iter()
        .map(|s| s.to_string())
        .collect();
    targets.extend(spec.mounts.iter().map(|m| m.target().to_string()));
    let missing: Vec<String> = targets
        .into_iter()
        .filter(|t| {
            berth_runtime::paths::host_path(&merged.root, t)
                .map(|p| std::fs::symlink_metadata(p).is_err())
                .unwrap_or(false)
        })
        .collect();
    let id = format!("berth-build-{:016x}", rand::random::<u64>());
    let image = ImageRuntimeConfig {
        env: spec.env.clone(),
        cmd: Some(spec.argv.clone()),
        working_dir: spec.workdir.clone(),
        user: spec.user.clone(),
        ..Default::default()
    };
    let opts = RunOptions {
        network: spec.network.clone(),
        hostname: Some("buildkitsandbox".into()),
        mounts: spec.mounts.clone(),
        ..Default::default()
    };
    let result = (|| {
        berth_runtime::prepare_bundle(&id, dir, spec.lowers, &image, &opts).map_err(rt_err)?;
        let so = StartOptions {
            state_root: spec.runroot.join("runtime"),
            monitor_path: spec.monitor.clone(),
            ..Default::default()
        };
        berth_runtime::start(dir, &so).map_err(|e| match &e {
            berth_runtime::Error::Start { .. } => {
                BuildError::Failed(format!("failed to start {:?}: {e}", spec.argv.join(" ")))
            }
            _ => rt_err(e),
        })?;
        let log = berth_runtime::log_path(dir);
        let mut pos = 0u64;
        let mut partial = String::new();
        let mut tail: Vec<String> = Vec::new();
        let mut pump = |pos: &mut u64, tail: &mut Vec<String>| {
            let Ok(mut f) = std::fs::File::open(&log) else {
                return;
            };
            if f.seek(SeekFrom::Start(*pos)).is_err() {
                return;
            }
            let mut buf = String::new();
            let Ok(n) = f.read_to_string(&mut buf) else {
                return;
            };
            let complete = buf.rfind('\n').map_or(0, |i| i + 1);
            *pos += complete as u64;
            let _ = n;
            for line in buf[..complete].lines() {
                let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
                    continue;
                };
                let text = v["log"].as_str().unwrap_or_default();
                partial.push_str(text);
                while let Some(i) = partial.find('\n') {
                    let l: String = partial.drain(..=i).collect();
                    let l = l.trim_end_matches(['\n', '\r']).to_string();
                    on_line(&l);
                    tail.push(l);
                    if tail.len() > 10 {
                        tail.remove(0);
                    }
                }
            }
        };
        let status = loop {
            match berth_runtime::wait(dir, Some(Duration::from_millis(40))) {
                Ok(st) => break st,
                Err(berth_runtime::Error::Timeout) => {
                    pump(&mut pos, &mut tail);
                    if spec.cancel.load(Ordering::SeqCst) {
                        let _ = berth_runtime::kill(dir, libc::SIGKILL);
                        return Err(BuildError::Interrupted);
                    }
                }
                Err(e) => return Err(rt_err(e)),
            }
        };
        pump(&mut pos, &mut tail);
        if !partial.is_empty() {
            on_line(&partial);
            tail.push(std::mem::take(&mut partial));
        }
        Ok(RunOutcome {
            exit_code: status.exit_code,
            tail,
        })
    })();
    let cleaned = berth_runtime::cleanup(dir);
    let _ = merged.unmount();
    let outcome = result?;
    cleaned.map_err(rt_err)?;
    // Drop mount-point stubs the runtime created (deepest first), if still empty.
    let mut missing = missing;
    missing.sort_by_key(|p| std::cmp::Reverse(p.matches('/').count()));
    for m in missing {
        let p = merged.upper.join(m.trim_start_matches('/'));
        match std::fs::symlink_metadata(&p) {
            Ok(md) if md.is_dir() => {
                let _ = std::fs::remove_dir(&p);
            }
            Ok(md) if md.is_file() && md.len() == 0 => {
                let _ = std::fs::remove_file(&p);
            }
            _ => {}
        }
        // A parent that was only copied up to hold the stub is unchanged: drop it too.
        let mut parent = Path::new(&m).parent();
        while let Some(d) = parent {
            if d == Path::new("/") {
                break;
            }
            let p = merged.upper.join(d.strip_prefix("/").unwrap_or(d));
            let empty = std::fs::read_dir(&p)
                .map(|mut r| r.next().is_none())
                .unwrap_or(false);
            if !empty || is_opaque(&p) || std::fs::remove_dir(&p).is_err() {
                break;
            }
            parent = d.parent();
        }
    }
    Ok(outcome)
}

fn is_opaque(p: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c) = std::ffi::CString::new(p.as_os_str().as_bytes()) else {
        return true;
    };
    let mut buf = [0u8; 4];
    // SAFETY: valid path, name and buffer.
    let n = unsafe {
        libc::lgetxattr(
            c.as_ptr(),
            c"trusted.overlay.opaque".as_ptr(),
            buf.as_mut_ptr() as *mut libc::c_void,
            buf.len(),
        )
    };
    n > 0 && buf[0] == b'y'
}
