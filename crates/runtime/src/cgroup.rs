//! Cgroup bookkeeping berth does itself (the runtime creates and configures the cgroup):
//! finding a container's cgroup on v1 and v2 hosts, OOM-kill detection, freezing, killing every
//! process in it and removing it.

use std::io;
use std::path::{Path, PathBuf};

const CGROUP2_SUPER_MAGIC: i64 = 0x6367_7270;

/// How cgroups are laid out on this host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CgroupMode {
    /// Unified hierarchy mounted at `root` (normally `/sys/fs/cgroup`).
    V2 { root: PathBuf },
    /// One hierarchy per controller under `root` (`/sys/fs/cgroup/<controller>`); hybrid hosts
    /// (v1 controllers plus `/sys/fs/cgroup/unified`) are driven as v1, like runc does.
    V1 { root: PathBuf },
}

fn is_cgroup2(p: &Path) -> bool {
    nix::sys::statfs::statfs(p)
        .map(|s| s.filesystem_type().0 == CGROUP2_SUPER_MAGIC)
        .unwrap_or(false)
}

impl CgroupMode {
    /// Detects the host's layout.
    pub fn detect() -> CgroupMode {
        let root = PathBuf::from("/sys/fs/cgroup");
        if is_cgroup2(&root) {
            CgroupMode::V2 { root }
        } else {
            CgroupMode::V1 { root }
        }
    }

    /// The directory of `cgroup` (e.g. `/berth/<id>`) for v2, or for controller `ctrl` on v1.
    pub fn dir(&self, ctrl: &str, cgroup: &str) -> PathBuf {
        let rel = cgroup.trim_start_matches('/');
        match self {
            CgroupMode::V2 { root } => root.join(rel),
            CgroupMode::V1 { root } => root.join(ctrl).join(rel),
        }
    }

    /// Number of OOM kills recorded for the cgroup (v2 `memory.events` `oom_kill`; v1
    /// `memory.oom_control` `oom_kill`, falling back to "under_oom" / `memory.failcnt` hits at
    /// the limit on old kernels).
    pub fn oom_kills(&self, cgroup: &str) -> u64 {
        let dir = self.dir("memory", cgroup);
        match self {
            CgroupMode::V2 { .. } => {
                read_keyed(&dir.join("memory.events"), "oom_kill").unwrap_or(0)
            }
            CgroupMode::V1 { .. } => {
                let f = dir.join("memory.oom_control");
                if let Some(n) = read_keyed(&f, "oom_kill") {
                    return n;
                }
                read_keyed(&f, "under_oom").unwrap_or(0)
            }
        }
    }

    /// The most memory the cgroup has used (v2 `memory.peak`, v1 `memory.max_usage_in_bytes`)
    /// and its limit (None when unlimited), read before the cgroup is removed.
    pub fn memory_peak_and_limit(&self, cgroup: &str) -> (Option<u64>, Option<u64>) {
        let dir = self.dir("memory", cgroup);
        let read = |name: &str| -> Option<u64> {
            std::fs::read_to_string(dir.join(name))
                .ok()?
                .trim()
                .parse()
                .ok()
        };
        match self {
            CgroupMode::V2 { .. } => (read("memory.peak"), read("memory.max")),
            // v1 reports "no limit" as the largest page-aligned value.
            CgroupMode::V1 { .. } => (
                read("memory.max_usage_in_bytes"),
                read("memory.limit_in_bytes").filter(|&l| l < (1 << 62)),
            ),
        }
    }

    /// Freezes (pause) or thaws (unpause) the cgroup.
    pub fn freeze(&self, cgroup: &str, frozen: bool) -> io::Result<()> {
        match self {
            CgroupMode::V2 { .. } => std::fs::write(
                self.dir("", cgroup).join("cgroup.freeze"),
                if frozen { "1" } else { "0" },
            ),
            CgroupMode::V1 { .. } => {
                let f = self.dir("freezer", cgroup).join("freezer.state");
                std::fs::write(&f, if frozen { "FROZEN" } else { "THAWED" })?;
                // Wait until the state settles.
                for _ in 0..1000 {
                    let s = std::fs::read_to_string(&f)?;
                    if s.trim() == if frozen { "FROZEN" } else { "THAWED" } {
                        return Ok(());
                    }
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
                Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "freezer did not settle",
                ))
            }
        }
    }

    /// Whether the cgroup is frozen.
    pub fn is_frozen(&self, cgroup: &str) -> bool {
        match self {
            CgroupMode::V2 { .. } => {
                std::fs::read_to_string(self.dir("", cgroup).join("cgroup.freeze"))
                    .map(|s| s.trim() == "1")
                    .unwrap_or(false)
            }
            CgroupMode::V1 { .. } => {
                std::fs::read_to_string(self.dir("freezer", cgroup).join("freezer.state"))
                    .map(|s| s.trim() == "FROZEN")
                    .unwrap_or(false)
            }
        }
    }

    /// Pids in the cgroup (v1: read from the pids or memory hierarchy, whichever exists).
    pub fn procs(&self, cgroup: &str) -> Vec<i32> {
        let dirs: Vec<PathBuf> = match self {
            CgroupMode::V2 { .. } => vec![self.dir("", cgroup)],
            CgroupMode::V1 { .. } => ["pids", "memory", "freezer", "cpu"]
                .iter()
                .map(|c| self.dir(c, cgroup))
                .collect(),
        };
        for d in dirs {
            if let Ok(s) = std::fs::read_to_string(d.join("cgroup.procs")) {
                return s.lines().filter_map(|l| l.trim().parse().ok()).collect();
            }
        }
        Vec::new()
    }

    /// Sends SIGKILL to every process in the cgroup (v2 `cgroup.kill` when available), thawing
    /// it first so the kill is delivered.
    pub fn kill_all(&self, cgroup: &str) {
        if let CgroupMode::V2 { .. } = self {
            if std::fs::write(self.dir("", cgroup).join("cgroup.kill"), "1").is_ok() {
                return;
            }
        }
        for _ in 0..10 {
            let pids = self.procs(cgroup);
            if pids.is_empty() {
                break;
            }
            for p in pids {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(p),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            let _ = self.freeze(cgroup, false);
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
    }

    /// Removes the cgroup directories (all v1 hierarchies). Missing ones are fine.
    pub fn remove(&self, cgroup: &str) -> io::Result<()> {
        let dirs: Vec<PathBuf> = match self {
            CgroupMode::V2 { .. } => vec![self.dir("", cgroup)],
            CgroupMode::V1 { root } => match std::fs::read_dir(root) {
                Ok(rd) => rd
                    .flatten()
                    .filter(|e| e.file_type().map(|t| t.is_dir()).unwrap_or(false))
                    .map(|e| e.path().join(cgroup.trim_start_matches('/')))
                    .collect(),
                Err(_) => Vec::new(),
            },
        };
        let mut last = Ok(());
        for d in dirs {
            if !d.exists() {
                continue;
            }
            let mut ok = false;
            for _ in 0..50 {
                match std::fs::remove_dir(&d) {
                    Ok(()) => {
                        ok = true;
                        break;
                    }
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {
                        ok = true;
                        break;
                    }
                    Err(_) => std::thread::sleep(std::time::Duration::from_millis(2)),
                }
            }
            if !ok {
                last = Err(io::Error::other(format!(
                    "cannot remove cgroup {}",
                    d.display()
                )));
            }
        }
        last
    }
}

/// Reads `key value` from a flat-keyed cgroup file.
fn read_keyed(file: &Path, key: &str) -> Option<u64> {
    let s = std::fs::read_to_string(file).ok()?;
    s.lines().find_map(|l| {
        let mut it = l.split_whitespace();
        if it.next()? == key {
            it.next()?.parse().ok()
        } else {
            None
        }
    })
}

/// On a hybrid host (v1 controllers plus a cgroup2 mount at `/sys/fs/cgroup/unified`), the
/// controllers enabled on the v2 side. crun refuses such hosts unless this is empty.
pub fn hybrid_v2_controllers() -> Vec<String> {
    let unified = Path::new("/sys/fs/cgroup/unified");
    if !matches!(CgroupMode::detect(), CgroupMode::V1 { .. }) || !is_cgroup2(unified) {
        return Vec::new();
    }
    std::fs::read_to_string(unified.join("cgroup.controllers"))
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

/// Whether the host accounts swap, so `memory.swap` can be set.
pub fn swap_supported() -> bool {
    match CgroupMode::detect() {
        CgroupMode::V2 { root } => {
            // The root has no memory.swap.max; look at any child that does, or the controller list.
            std::fs::read_to_string(root.join("cgroup.controllers"))
                .map(|c| c.contains("memory"))
                .unwrap_or(false)
                && Path::new("/proc/swaps").exists()
                && has_v2_swap(&root)
        }
        CgroupMode::V1 { root } => root.join("memory/memory.memsw.limit_in_bytes").exists(),
    }
}

fn has_v2_swap(root: &Path) -> bool {
    std::fs::read_dir(root)
        .map(|rd| {
            rd.flatten()
                .any(|e| e.path().join("memory.swap.max").exists())
        })
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake_v2() -> (tempfile::TempDir, CgroupMode) {
        let d = tempfile::tempdir().unwrap();
        let cg = d.path().join("berth/abc");
        std::fs::create_dir_all(&cg).unwrap();
        std::fs::write(
            cg.join("memory.events"),
            "low 0\nhigh 0\nmax 12\noom 1\noom_kill 1\noom_group_kill 0\n",
        )
        .unwrap();
        std::fs::write(cg.join("cgroup.freeze"), "0\n").unwrap();
        std::fs::write(cg.join("cgroup.procs"), "12\n34\n").unwrap();
        let m = CgroupMode::V2 {
            root: d.path().to_path_buf(),
        };
        (d, m)
    }

    #[test]
    fn v2_oom_freeze_procs() {
        let (_d, m) = fake_v2();
        assert_eq!(m.oom_kills("/berth/abc"), 1);
        assert_eq!(m.oom_kills("/berth/missing"), 0);
        assert!(!m.is_frozen("/berth/abc"));
        m.freeze("/berth/abc", true).unwrap();
        assert!(m.is_frozen("/berth/abc"));
        m.freeze("/berth/abc", false).unwrap();
        assert!(!m.is_frozen("/berth/abc"));
        assert_eq!(m.procs("/berth/abc"), vec![12, 34]);
    }

    #[test]
    fn v2_remove_is_idempotent() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("berth/x")).unwrap();
        let m = CgroupMode::V2 {
            root: d.path().to_path_buf(),
        };
        m.remove("/berth/x").unwrap();
        assert!(!d.path().join("berth/x").exists());
        m.remove("/berth/x").unwrap();
    }

    #[test]
    fn v1_paths_and_oom_control() {
        let d = tempfile::tempdir().unwrap();
        let mem = d.path().join("memory/berth/c1");
        std::fs::create_dir_all(&mem).unwrap();
        std::fs::write(
            mem.join("memory.oom_control"),
            "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n",
        )
        .unwrap();
        let m = CgroupMode::V1 {
            root: d.path().to_path_buf(),
        };
        assert_eq!(m.dir("pids", "/berth/c1"), d.path().join("pids/berth/c1"));
        assert_eq!(m.oom_kills("/berth/c1"), 2);
    }
}
