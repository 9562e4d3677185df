//! Shared helpers for the CLI's integration tests: a temp store per test and a busybox image
//! fixture made from the host's busybox-static (tests never reach the internet).
#![allow(dead_code)]

pub mod kube;
pub mod registry;
pub mod serve;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

pub const BIN: &str = env!("CARGO_BIN_EXE_berth");

/// The binary under test: `BERTH_TEST_BIN` overrides the one cargo built, so prebuilt test
/// executables can run on another host (e.g. a pure cgroup v2 machine).
pub fn bin() -> String {
    std::env::var("BERTH_TEST_BIN").unwrap_or_else(|_| BIN.to_string())
}

/// A berth with its own root and runroot, removed when dropped.
pub struct Berth {
    pub dir: tempfile::TempDir,
}

impl Berth {
    pub fn new() -> Berth {
        let dir = tempfile::Builder::new()
            .prefix("berth-test-")
            .tempdir_in(scratch_dir())
            .unwrap();
        Berth { dir }
    }

    pub fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    pub fn runroot(&self) -> PathBuf {
        self.dir.path().join("run")
    }

    pub fn command(&self) -> Command {
        let mut c = Command::new(bin());
        c.env("BERTH_ROOT", self.root())
            .env("BERTH_RUNROOT", self.runroot())
            // Test contexts lie under the target directory, inside berth's own checkout:
            // builds must not take its HEAD's commit time for their default epoch.
            .env("GIT_CEILING_DIRECTORIES", scratch_dir())
            .stdin(Stdio::null());
        c
    }

    /// A fresh root with the busybox fixture imported as `busybox`.
    pub fn with_busybox() -> Berth {
        let b = Berth::new();
        b.import_busybox("busybox");
        b
    }

    /// Runs; returns (exit code, stdout, stderr).
    pub fn code(&self, args: &[&str]) -> (i32, String, String) {
        let out = self.run(args);
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.command().args(args).output().expect("running berth")
    }

    /// Runs and requires success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "berth {args:?} failed ({:?}):\nstdout: {}\nstderr: {}",
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Runs and requires failure; returns (exit code, stderr).
    pub fn fails(&self, args: &[&str]) -> (i32, String) {
        let out = self.run(args);
        assert!(
            !out.status.success(),
            "berth {args:?} unexpectedly succeeded:\nstdout: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8(out.stderr).unwrap(),
        )
    }

    /// Imports the busybox fixture as `name` and returns its ID.
    pub fn import_busybox(&self, name: &str) -> String {
        let tar = busybox_tar();
        self.ok(&["import", "-c", "CMD [\"sh\"]", tar.to_str().unwrap(), name])
            .trim()
            .to_string()
    }

    /// Files left in the staging area (must be none between commands).
    /// Operation staging areas left in `tmp/` (its `.create.lock` is not one).
    pub fn staged_leftovers(&self) -> Vec<PathBuf> {
        list(&self.root().join("tmp"))
            .into_iter()
            .filter(|p| !p.file_name().unwrap().to_string_lossy().starts_with('.'))
            .collect()
    }

    pub fn layer_dirs(&self) -> Vec<PathBuf> {
        list(&self.root().join("layers"))
    }

    pub fn blobs(&self) -> Vec<PathBuf> {
        list(&self.root().join("blobs/sha256"))
    }
}

impl Drop for Berth {
    /// Removes the host network state this root made: its default bridge and nftables table
    /// (named after the root, see the engine's `containers::network`).
    fn drop(&mut self) {
        // Namespaces of containers a test left running: unmounted, they go with their last
        // process.
        for ns in list(&self.runroot().join("netns")) {
            if ns.extension().is_none() {
                let _ = Command::new("umount")
                    .arg("-l")
                    .arg(&ns)
                    .stderr(Stdio::null())
                    .status();
            }
        }
        // Root file systems of containers a failed test left behind.
        let root = self.root().display().to_string();
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let mut ours: Vec<&str> = mounts
            .lines()
            .filter_map(|l| l.split(' ').nth(4))
            .filter(|m| m.starts_with(&root))
            .collect();
        ours.sort_unstable_by(|a, b| b.cmp(a));
        for m in ours {
            let _ = Command::new("umount").args(["-l", m]).status();
        }
        let (bridge, table) = net_names(&self.root());
        if Path::new("/sys/class/net").join(&bridge).exists() {
            let _ = Command::new("ip").args(["link", "del", &bridge]).status();
            let _ = Command::new("nft")
                .args(["delete", "table", "inet", &table])
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// The default bridge and nftables table of a non-default root.
pub fn net_names(root: &Path) -> (String, String) {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in root.as_os_str().as_encoded_bytes() {
        h ^= *b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    let h = (h ^ (h >> 32)) as u32;
    (format!("berth{h:08x}"), format!("berth_{h:08x}"))
}

pub fn list(dir: &Path) -> Vec<PathBuf> {
    match std::fs::read_dir(dir) {
        Ok(rd) => {
            let mut v: Vec<PathBuf> = rd.filter_map(|e| e.ok()).map(|e| e.path()).collect();
            v.sort();
            v
        }
        Err(_) => Vec::new(),
    }
}

/// A directory for test data, inside cargo's target dir (on the same disk as the store).
pub fn scratch_dir() -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("berth-tests");
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A tarball of a busybox root filesystem: /bin/busybox plus one symlink per applet.
pub fn busybox_tar() -> PathBuf {
    static TAR: OnceLock<PathBuf> = OnceLock::new();
    TAR.get_or_init(|| {
        let busybox = Path::new("/bin/busybox");
        assert!(
            busybox.exists(),
            "/bin/busybox is missing: install Debian's busybox-static (scripts/test.sh does)"
        );
        let dir = scratch_dir().join(format!("fixture-{}", std::process::id()));
        let rootfs = dir.join("rootfs");
        std::fs::create_dir_all(rootfs.join("bin")).unwrap();
        for d in ["etc", "tmp", "root", "proc", "sys", "dev", "var"] {
            std::fs::create_dir_all(rootfs.join(d)).unwrap();
        }
        std::fs::copy(busybox, rootfs.join("bin/busybox")).unwrap();
        let list = Command::new(busybox).arg("--list").output().unwrap();
        for applet in String::from_utf8(list.stdout).unwrap().lines() {
            if applet != "busybox" && !applet.is_empty() {
                let _ = std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(applet));
            }
        }
        std::fs::write(
            rootfs.join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n",
        )
        .unwrap();
        std::fs::write(rootfs.join("etc/group"), "root:x:0:\nnogroup:x:65534:\n").unwrap();
        let tar = dir.join("busybox.tar");
        let status = Command::new("tar")
            .args(["--sort=name", "--mtime=@0", "--owner=0", "--group=0", "-C"])
            .arg(&rootfs)
            .args(["-cf"])
            .arg(&tar)
            .arg(".")
            .status()
            .unwrap();
        assert!(status.success());
        tar
    })
    .clone()
}

/// Runs a shell command and returns stdout, requiring success.
pub fn sh(cmd: &str) -> String {
    let out = Command::new("sh").arg("-c").arg(cmd).output().unwrap();
    assert!(
        out.status.success(),
        "{cmd} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Fails the test unless it runs as root (containers need it): a test that could not run must
/// not pass. Always true when it returns.
pub fn is_root(suite: &str) -> bool {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        return true;
    }
    panic!("the berth {suite} tests must run as root (scripts/test.sh runs them as root)");
}

/// The runtimes to test: the built-in one, and runc when installed
/// (`BERTH_TEST_RUNTIMES=builtin,runc` narrows the set).
pub fn runtimes() -> Vec<&'static str> {
    let mut v = vec!["builtin"];
    if ["/usr/sbin/runc", "/usr/bin/runc", "/usr/local/bin/runc"]
        .iter()
        .any(|p| Path::new(p).exists())
    {
        v.push("runc");
    }
    if let Ok(only) = std::env::var("BERTH_TEST_RUNTIMES") {
        v.retain(|r| only.split(',').any(|o| o == *r));
        return v;
    }
    assert!(
        v.contains(&"runc"),
        "runc is not installed (scripts/setup.sh installs it; BERTH_TEST_RUNTIMES=builtin narrows \
         the runs on purpose)"
    );
    v
}

/// Polls `f` every 50 ms until it holds; fails the test after `timeout`.
pub fn wait_for(what: &str, timeout: std::time::Duration, mut f: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + timeout;
    while !f() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}
