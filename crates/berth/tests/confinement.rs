//! What confines a container, asserted from inside it, for the built-in runtime and for runc
//! alike (Docker 20.10's defaults are the reference): capabilities, seccomp and the syscalls
//! its default profile blocks, `--security-opt`, masked and read-only /proc and /sys paths, a
//! read-only cgroupfs with the container's own cgroup in every hierarchy, signal dispositions,
//! and the same for a process started by `exec`.

mod common;

use common::Berth;
use std::path::PathBuf;
use std::sync::OnceLock;

/// Docker's default capability set (CHOWN DAC_OVERRIDE FOWNER FSETID KILL SETGID SETUID
/// SETPCAP NET_BIND_SERVICE NET_RAW SYS_CHROOT MKNOD AUDIT_WRITE SETFCAP).
const DOCKER_CAPS: &str = "00000000a80425fb";

fn run<'a>(rt: &'a str, rest: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec!["run", "--rm", "--runtime", rt];
    v.extend_from_slice(rest);
    v
}

/// `Key:\tvalue` lines of /proc/self/status, as a lookup.
fn field(status: &str, key: &str) -> String {
    status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{key}:")))
        .unwrap_or_else(|| panic!("no {key} in:\n{status}"))
        .trim()
        .to_string()
}

/// Run as the container's command itself (a `sh -c` of busybox would ignore SIGQUIT).
const STATUS: &[&str] = &[
    "grep",
    "-E",
    "^(Cap|NoNewPrivs|Seccomp|Sig)",
    "/proc/self/status",
];

fn with_status<'a>(head: &[&'a str]) -> Vec<&'a str> {
    let mut v = head.to_vec();
    v.extend_from_slice(STATUS);
    v
}

fn assert_default_status(status: &str, what: &str) {
    for k in ["CapEff", "CapPrm", "CapBnd"] {
        assert_eq!(field(status, k), DOCKER_CAPS, "{what}: {k}\n{status}");
    }
    assert_eq!(field(status, "CapInh"), "0000000000000000", "{what}");
    assert_eq!(field(status, "CapAmb"), "0000000000000000", "{what}");
    assert_eq!(field(status, "NoNewPrivs"), "0", "{what}");
    assert_eq!(field(status, "Seccomp"), "2", "{what}");
    assert_eq!(field(status, "SigBlk"), "0000000000000000", "{what}");
    let ign = u64::from_str_radix(&field(status, "SigIgn"), 16).unwrap();
    // No signal may be ignored (SIGPIPE ignored makes programs get EPIPE instead of dying),
    // except that runc itself leaves signal 32 (glibc's SIGCANCEL) ignored.
    let tolerated = if what.starts_with("runc") { 1 << 31 } else { 0 };
    assert_eq!(
        ign & !tolerated,
        0,
        "{what}: ignored signals {ign:x}\n{status}"
    );
}

#[test]
fn default_capabilities_seccomp_and_signals_each_runtime() {
    assert!(common::is_root("confinement"));
    for rt in common::runtimes() {
        let b = Berth::with_busybox();
        let status = b.ok(&with_status(&run(rt, &["busybox"])));
        assert_default_status(&status, &format!("{rt} run"));
        // A writer whose reader went away dies of SIGPIPE (141), as on any shell.
        let (code, _, err) = b.code(&run(
            rt,
            &[
                "busybox",
                "sh",
                "-c",
                "(yes; echo \"yes=$?\" >&2) | head -1 >/dev/null",
            ],
        ));
        assert_eq!(code, 0, "{rt}: {err}");
        assert!(err.contains("yes=141"), "{rt}: {err}");
        // A process started by exec gets the same confinement.
        let id = b
            .ok(&["run", "-d", "--runtime", rt, "busybox", "sleep", "30"])
            .trim()
            .to_string();
        let status = b.ok(&with_status(&["exec", &id]));
        assert_default_status(&status, &format!("{rt} exec"));
        b.ok(&["rm", "-f", &id]);
    }
}

#[test]
fn security_opts_each_runtime() {
    assert!(common::is_root("confinement"));
    for rt in common::runtimes() {
        let b = Berth::with_busybox();
        let nnp = b.ok(&with_status(&run(
            rt,
            &["--security-opt", "no-new-privileges", "busybox"],
        )));
        assert_eq!(field(&nnp, "NoNewPrivs"), "1", "{rt}: {nnp}");
        assert_eq!(field(&nnp, "Seccomp"), "2", "{rt}: {nnp}");
        assert_eq!(field(&nnp, "CapEff"), DOCKER_CAPS, "{rt}: {nnp}");
        let unconfined = b.ok(&with_status(&run(
            rt,
            &["--security-opt", "seccomp=unconfined", "busybox"],
        )));
        assert_eq!(field(&unconfined, "Seccomp"), "0", "{rt}: {unconfined}");
        assert_eq!(field(&unconfined, "NoNewPrivs"), "0", "{rt}");
        assert_eq!(field(&unconfined, "CapEff"), DOCKER_CAPS, "{rt}");
        let privileged = b.ok(&with_status(&run(rt, &["--privileged", "busybox"])));
        assert_eq!(field(&privileged, "Seccomp"), "0", "{rt}: {privileged}");
        // A capability asked for by name is added, and only that one (SYS_ADMIN is bit 21).
        let added = b.ok(&with_status(&run(
            rt,
            &["--cap-add", "SYS_ADMIN", "busybox"],
        )));
        assert_eq!(field(&added, "CapEff"), "00000000a82425fb", "{rt}: {added}");
    }
}

/// A static test program that calls syscalls Docker's default profile blocks and prints
/// `name errno` for each (0: the call succeeded).
fn syscall_probe() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = common::scratch_dir().join(format!("probe-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let src = dir.join("probe.c");
        std::fs::write(&src, PROBE_C).unwrap();
        let out = std::process::Command::new("cc")
            .args(["-static", "-O1", "-o"])
            .arg(dir.join("probe"))
            .arg(&src)
            .output()
            .expect("cc is needed to build the syscall probe: apt-get install gcc libc6-dev");
        assert!(
            out.status.success(),
            "cc failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        dir
    })
    .clone()
}

const PROBE_C: &str = r#"
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/perf_event.h>

static void report(const char *name, long r) {
    printf("%s %d\n", name, r < 0 ? errno : 0);
}

int main(void) {
    /* KEYCTL_GET_KEYRING_ID of KEY_SPEC_THREAD_KEYRING, created: works for any process. */
    report("keyctl", syscall(SYS_keyctl, 0, -1, 1));
    report("unshare", syscall(SYS_unshare, CLONE_NEWUSER));
    char attr[128];
    memset(attr, 0, sizeof attr);
    report("bpf", syscall(SYS_bpf, 0 /* BPF_MAP_CREATE */, attr, sizeof attr));
    struct perf_event_attr pe;
    memset(&pe, 0, sizeof pe);
    pe.type = PERF_TYPE_SOFTWARE;
    pe.size = sizeof pe;
    pe.config = PERF_COUNT_SW_CPU_CLOCK;
    pe.exclude_kernel = 1;
    pe.exclude_hv = 1;
    report("perf_event_open", syscall(SYS_perf_event_open, &pe, 0, -1, -1, 0));
    report("mount", mount("none", "/tmp", "tmpfs", 0, NULL));
    return 0;
}
"#;

fn errno_of(out: &str, name: &str) -> i32 {
    out.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .unwrap_or_else(|| panic!("no {name} in:\n{out}"))
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn default_seccomp_profile_blocks_syscalls_each_runtime() {
    assert!(common::is_root("confinement"));
    let probe = syscall_probe();
    let vol = format!("{}:/probe:ro", probe.display());
    for rt in common::runtimes() {
        let b = Berth::with_busybox();
        // Through sh: `run` checks the command in the image, where the bind mount is not.
        let out = b.ok(&run(
            rt,
            &["-v", &vol, "busybox", "sh", "-c", "/probe/probe"],
        ));
        for sc in ["keyctl", "unshare", "bpf", "perf_event_open", "mount"] {
            assert_eq!(errno_of(&out, sc), libc::EPERM, "{rt}: {sc}\n{out}");
        }
        // Without the profile, keyctl works: the EPERM above is the filter's.
        let out = b.ok(&run(
            rt,
            &[
                "--security-opt",
                "seccomp=unconfined",
                "-v",
                &vol,
                "busybox",
                "sh",
                "-c",
                "/probe/probe",
            ],
        ));
        assert_eq!(errno_of(&out, "keyctl"), 0, "{rt}\n{out}");
        // And the same filter holds for exec'd processes.
        let id = b
            .ok(&[
                "run",
                "-d",
                "--runtime",
                rt,
                "-v",
                &vol,
                "busybox",
                "sleep",
                "30",
            ])
            .trim()
            .to_string();
        let out = b.ok(&["exec", &id, "sh", "-c", "/probe/probe"]);
        assert_eq!(errno_of(&out, "keyctl"), libc::EPERM, "{rt} exec\n{out}");
        b.ok(&["rm", "-f", &id]);
    }
}

#[test]
fn masked_and_read_only_paths_each_runtime() {
    assert!(common::is_root("confinement"));
    // The host has content behind these, so empty views inside mean masks.
    for p in ["/proc/interrupts", "/proc/keys", "/proc/timer_list"] {
        assert!(!std::fs::read(p).unwrap().is_empty(), "{p} on the host");
    }
    let script = r#"
for p in /proc/interrupts /proc/keys /proc/timer_list /proc/kcore /proc/latency_stats \
         /proc/sched_debug /proc/timer_stats; do
  [ -e $p ] && [ ! -d $p ] && echo "masked-file $p $(head -c 64 $p | wc -c)"
done
for p in /proc/acpi /proc/scsi /proc/asound /sys/firmware /sys/devices/virtual/powercap; do
  [ -d $p ] && echo "masked-dir $p $(ls -A $p | wc -l)"
done
echo 1 > /proc/sysrq-trigger 2>/dev/null && echo "wrote /proc/sysrq-trigger"
echo berth > /proc/sys/kernel/domainname 2>/dev/null && echo "wrote /proc/sys"
mkdir /sys/kernel/berth-test 2>/dev/null && echo "wrote /sys"
cat /proc/self/mountinfo
"#;
    for rt in common::runtimes() {
        let b = Berth::with_busybox();
        let out = b.ok(&run(rt, &["busybox", "sh", "-c", script]));
        assert!(!out.contains("wrote "), "{rt}:\n{out}");
        let mut masked_files = 0;
        for l in out.lines().filter(|l| l.starts_with("masked-")) {
            assert!(l.ends_with(" 0"), "{rt}: not masked: {l}");
            masked_files += 1;
        }
        assert!(masked_files >= 4, "{rt}:\n{out}");
        // Read-only mounts where Docker has them.
        for p in [
            "/proc/bus",
            "/proc/fs",
            "/proc/irq",
            "/proc/sys",
            "/proc/sysrq-trigger",
            "/sys",
        ] {
            let ro = out.lines().any(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                f.len() > 5 && f[4] == p && f[5].split(',').any(|o| o == "ro")
            });
            let exists = std::path::Path::new(p).exists();
            assert!(ro || !exists, "{rt}: {p} is not read-only:\n{out}");
        }
    }
}

/// The cgroup v1 hierarchies mounted on this host, by directory name under /sys/fs/cgroup.
fn v1_hierarchies() -> Vec<String> {
    let mi = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    mi.lines()
        .filter(|l| {
            l.split(" - ")
                .nth(1)
                .is_some_and(|t| t.starts_with("cgroup "))
        })
        .filter_map(|l| l.split_whitespace().nth(4))
        .filter_map(|m| m.strip_prefix("/sys/fs/cgroup/"))
        .map(str::to_string)
        .collect()
}

#[test]
fn cgroupfs_is_read_only_and_the_containers_own_each_runtime() {
    assert!(common::is_root("confinement"));
    let v1 = v1_hierarchies();
    let script = if v1.is_empty() {
        // Pure cgroup v2: the container's cgroup is the namespace's root.
        r#"
echo 10 > /sys/fs/cgroup/pids.max 2>&1
echo 10000000 > /sys/fs/cgroup/memory.max 2>&1
mkdir /sys/fs/cgroup/child 2>&1
"#
        .to_string()
    } else {
        assert!(v1.iter().any(|h| h == "memory") && v1.iter().any(|h| h == "pids"));
        let mut s = String::from(
            "echo 10 > /sys/fs/cgroup/pids/pids.max 2>&1\n\
             echo 10000000 > /sys/fs/cgroup/memory/memory.limit_in_bytes 2>&1\n",
        );
        for h in &v1 {
            s.push_str(&format!("mkdir /sys/fs/cgroup/{h}/child 2>&1\n"));
        }
        s
    };
    let attempts = script.lines().filter(|l| !l.trim().is_empty()).count();
    for rt in common::runtimes() {
        let b = Berth::with_busybox();
        let (_, out, err) = b.code(&run(rt, &["busybox", "sh", "-c", &script]));
        assert_eq!(
            format!("{out}{err}")
                .matches("Read-only file system")
                .count(),
            attempts,
            "{rt}: every write must fail with EROFS:\n{out}{err}"
        );
        // --privileged gets a writable cgroupfs, as with Docker.
        let mi = b.ok(&run(
            rt,
            &[
                "--privileged",
                "busybox",
                "grep",
                " /sys/fs/cgroup",
                "/proc/self/mountinfo",
            ],
        ));
        let probe = if v1.is_empty() {
            "/sys/fs/cgroup"
        } else {
            "/sys/fs/cgroup/memory"
        };
        assert!(
            mi.lines().any(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                f[4] == probe && f[5].split(',').any(|o| o == "rw")
            }),
            "{rt}: privileged cgroupfs:\n{mi}"
        );
        // From the host: the container sits in its own cgroup in every hierarchy, named
        // ones (name=systemd) included, and sees only that.
        let id = b
            .ok(&["run", "-d", "--runtime", rt, "busybox", "sleep", "30"])
            .trim()
            .to_string();
        let pid = b.ok(&["inspect", "-f", "{{.State.Pid}}", &id]);
        let host_view = std::fs::read_to_string(format!("/proc/{}/cgroup", pid.trim())).unwrap();
        // On a hybrid host the controller-less cgroup2 tree (`0::`, not mounted in
        // containers) is left alone: joining it costs an RCU grace period per start.
        // A v1 hierarchy that is listed but mounted nowhere (one a daemon mounted and
        // unmounted again lives on in the kernel until reboot) cannot be joined by anyone.
        let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap();
        let mounted = |controllers: &str| {
            mounts.lines().any(|m| {
                let f: Vec<&str> = m.split_whitespace().collect();
                f.len() > 3
                    && f[2] == "cgroup"
                    && controllers
                        .split(',')
                        .all(|c| f[3].split(',').any(|o| o == c))
            })
        };
        for l in host_view.lines().filter(|l| {
            if l.starts_with("0::") {
                return v1.is_empty();
            }
            mounted(l.split(':').nth(1).unwrap_or(""))
        }) {
            assert!(
                l.ends_with(&format!("/{id}")),
                "{rt}: not in its own cgroup: {l}\n{host_view}"
            );
        }
        let inside = b.ok(&["exec", &id, "cat", "/proc/self/cgroup"]);
        for l in inside.lines() {
            assert!(l.ends_with(":/"), "{rt}: sees the host's tree: {l}");
        }
        b.ok(&["rm", "-f", &id]);
        if !v1.is_empty() {
            for h in &v1 {
                let d = format!("/sys/fs/cgroup/{h}/berth/{id}");
                assert!(!std::path::Path::new(&d).exists(), "{rt}: {d} left behind");
            }
        }
    }
}

#[test]
fn image_volumes_get_anonymous_volumes() {
    assert!(common::is_root("confinement"));
    let b = Berth::new();
    let tar = common::busybox_tar();
    b.ok(&[
        "import",
        "-c",
        "VOLUME [\"/data\", \"/cache\"]",
        tar.to_str().unwrap(),
        "withvol",
    ]);
    // `run --rm`: a volume at each path while it runs, gone with the container.
    let out = b.ok(&[
        "run",
        "--rm",
        "withvol",
        "sh",
        "-c",
        "grep -E ' /(data|cache) ' /proc/self/mountinfo | wc -l; echo x > /data/f",
    ]);
    assert_eq!(out.trim(), "2", "{out}");
    assert_eq!(b.ok(&["volume", "ls", "-q"]), "");
    // A mount of the user's at one of the paths replaces the image's volume there.
    let id = b
        .ok(&["create", "--tmpfs", "/cache", "withvol", "true"])
        .trim()
        .to_string();
    let vols = b.ok(&["volume", "ls", "-q"]);
    assert_eq!(vols.lines().count(), 1, "{vols}");
    let mounts = b.ok(&[
        "inspect",
        "-f",
        "{{range .Mounts}}{{.Type}} {{.Destination}} {{.Name}};{{end}}",
        &id,
    ]);
    assert!(
        mounts.contains(&format!("volume /data {}", vols.trim())),
        "{mounts}"
    );
    // `rm` keeps it, `rm -v` removes it.
    b.ok(&["rm", &id]);
    assert_eq!(b.ok(&["volume", "ls", "-q"]), vols);
    b.ok(&["volume", "rm", vols.trim()]);
    let id = b.ok(&["create", "withvol", "true"]).trim().to_string();
    assert_eq!(b.ok(&["volume", "ls", "-q"]).lines().count(), 2);
    b.ok(&["rm", "-v", &id]);
    assert_eq!(b.ok(&["volume", "ls", "-q"]), "");
}

/// A block device that root on this host can open, as (major, minor): the test must show
/// that only the container's allow-list stops it (the host's own disk may be off limits to
/// root itself, as on sandboxed VMs).
fn an_openable_block_device() -> (String, String) {
    let dir = common::scratch_dir().join(format!("blockdev-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut devs: Vec<String> = std::fs::read_dir("/sys/dev/block")
        .expect("/sys/dev/block")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().to_string())
        .collect();
    devs.sort();
    for d in devs {
        let Some((maj, min)) = d.split_once(':') else {
            continue;
        };
        let node = dir.join(format!("b{maj}-{min}"));
        let _ = std::fs::remove_file(&node);
        let made = std::process::Command::new("mknod")
            .arg(&node)
            .args(["b", maj, min])
            .status()
            .is_ok_and(|s| s.success());
        let opened = made && std::fs::File::open(&node).is_ok();
        let _ = std::fs::remove_file(&node);
        if opened {
            return (maj.to_string(), min.to_string());
        }
    }
    panic!("no block device this host's root can open (a loop device will do: modprobe loop)");
}

/// On a cgroup2-only hierarchy (mounted over /sys/fs/cgroup in a private mount namespace, so
/// berth and both runtimes drive cgroup v2 as on a pure v2 host) the spec's device rules are
/// enforced by an eBPF program: a container may mknod a block device of the host but not open
/// it. `--privileged` may, so the refusal is the allow-list's, not something else's.
#[test]
fn device_allow_list_on_a_cgroup2_only_hierarchy_each_runtime() {
    assert!(common::is_root("confinement"));
    let (maj, min) = an_openable_block_device();
    let probe = format!(
        "mknod /tmp/disk b {maj} {min} && echo MKNOD; head -c 1 /tmp/disk >/dev/null && echo OPENED; true"
    );
    for rt in common::runtimes() {
        let b = Berth::with_busybox();
        let script = r#"
mount -t cgroup2 cgroup2 /sys/fs/cgroup
[ "$(stat -f -c %T /sys/fs/cgroup)" = cgroup2fs ]
echo "== default"
"$BERTH" run --rm --runtime "$RT" --network none busybox sh -c "$PROBE"
echo "== privileged"
"$BERTH" run --rm --runtime "$RT" --network none --privileged busybox sh -c "$PROBE"
"#;
        let out = std::process::Command::new("unshare")
            .args(["--mount", "--propagation", "private", "sh", "-ec", script])
            .env("BERTH", common::bin())
            .env("BERTH_ROOT", b.root())
            .env("BERTH_RUNROOT", b.runroot())
            .env("RT", rt)
            .env("PROBE", &probe)
            .stdin(std::process::Stdio::null())
            .output()
            .expect("unshare (util-linux) is needed to mount a cgroup2-only hierarchy");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{rt}: {stdout}{stderr}");
        let (default, privileged) = stdout.split_once("== privileged").unwrap();
        // Docker's rules allow mknod of any block device ("b *:* m"), never its use.
        assert!(default.contains("MKNOD"), "{rt}: {stdout}{stderr}");
        assert!(!default.contains("OPENED"), "{rt}: {stdout}{stderr}");
        assert!(
            stderr.contains("Operation not permitted"),
            "{rt}: {stdout}{stderr}"
        );
        assert!(privileged.contains("OPENED"), "{rt}: {stdout}{stderr}");
    }
}

/// Docker's copy-up: a new volume for an image `VOLUME` starts with the image's files there;
/// an image whose VOLUME path is a symlink out of its root gets its own files, never the
/// host's.
#[test]
fn image_volumes_start_with_the_images_files() {
    assert!(common::is_root("confinement"));
    let b = Berth::with_busybox();
    let dir = tempfile::tempdir_in(common::scratch_dir()).unwrap();
    let root = dir.path().join("rootfs");
    std::fs::create_dir_all(root.join("data/sub")).unwrap();
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::write(root.join("data/sub/hello"), "from the image\n").unwrap();
    std::os::unix::fs::symlink("sub/hello", root.join("data/link")).unwrap();
    std::fs::write(root.join("etc/marker"), "the image's etc\n").unwrap();
    std::os::unix::fs::symlink("/etc", root.join("escape")).unwrap();
    let tar = dir.path().join("layer.tar");
    common::sh(&format!(
        "tar -C {} -cf {} .",
        root.display(),
        tar.display()
    ));
    b.ok(&[
        "import",
        "-c",
        "VOLUME [\"/data\", \"/escape\"]",
        tar.to_str().unwrap(),
        "seeded",
    ]);
    let id = b.ok(&["create", "seeded", "true"]).trim().to_string();
    let vols = b.ok(&[
        "inspect",
        "-f",
        "{{range .Mounts}}{{.Destination}}={{.Source}};{{end}}",
        &id,
    ]);
    let source = |dest: &str| -> PathBuf {
        vols.split(';')
            .find_map(|m| m.strip_prefix(&format!("{dest}=")))
            .unwrap_or_else(|| panic!("no volume at {dest}: {vols}"))
            .into()
    };
    let data = source("/data");
    assert_eq!(
        std::fs::read_to_string(data.join("sub/hello")).unwrap(),
        "from the image\n"
    );
    assert_eq!(
        std::fs::read_link(data.join("link")).unwrap(),
        PathBuf::from("sub/hello")
    );
    let escape = source("/escape");
    assert_eq!(
        std::fs::read_to_string(escape.join("marker")).unwrap(),
        "the image's etc\n"
    );
    assert!(
        !escape.join("passwd").exists(),
        "the host's /etc was copied"
    );
    b.ok(&["rm", "-v", &id]);
}

/// The rest of the confinement on a cgroup2-only hierarchy (as on a pure v2 host): Docker's
/// capabilities, seccomp and no ignored signals, and a cgroupfs the container cannot write to
/// lift its own limits, for both runtimes.
#[test]
fn confinement_on_a_cgroup2_only_hierarchy_each_runtime() {
    assert!(common::is_root("confinement"));
    for rt in common::runtimes() {
        let b = Berth::with_busybox();
        let script = r#"
mount -t cgroup2 cgroup2 /sys/fs/cgroup
[ "$(stat -f -c %T /sys/fs/cgroup)" = cgroup2fs ]
echo "== status"
"$BERTH" run --rm --runtime "$RT" --network none busybox cat /proc/self/status
echo "== limits"
"$BERTH" run --rm --runtime "$RT" --network none busybox sh -c '
  stat -f -c "fs=%t" /sys/fs/cgroup
  echo 1 > /sys/fs/cgroup/cgroup.max.depth && echo WROTE-DEPTH
  echo 1 > /sys/fs/cgroup/cgroup.max.descendants && echo WROTE-DESCENDANTS
  mkdir /sys/fs/cgroup/escape && echo MADE-CHILD
  echo "depth=$(cat /sys/fs/cgroup/cgroup.max.depth)"
  true'
"#;
        let out = std::process::Command::new("unshare")
            .args(["--mount", "--propagation", "private", "sh", "-ec", script])
            .env("BERTH", common::bin())
            .env("BERTH_ROOT", b.root())
            .env("BERTH_RUNROOT", b.runroot())
            .env("RT", rt)
            .stdin(std::process::Stdio::null())
            .output()
            .expect("unshare (util-linux) is needed to mount a cgroup2-only hierarchy");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{rt}: {stdout}{stderr}");
        let (status, limits) = stdout
            .split_once("== limits")
            .unwrap_or_else(|| panic!("{rt}: {stdout}{stderr}"));
        assert_default_status(status, &format!("{rt} on cgroup v2"));
        // cgroup2's magic number: the container sees the v2 hierarchy.
        assert!(limits.contains("fs=63677270"), "{rt}: {limits}{stderr}");
        // (This host's memory and pids controllers belong to its v1 hierarchies, so the
        // cgroup2 files every cgroup has stand for the limits here.)
        for escape in ["WROTE-DEPTH", "WROTE-DESCENDANTS", "MADE-CHILD"] {
            assert!(!limits.contains(escape), "{rt}: {escape}: {limits}{stderr}");
        }
        assert!(limits.contains("depth=max"), "{rt}: {limits}{stderr}");
        assert!(stderr.contains("Read-only file system"), "{rt}: {stderr}");
    }
}

/// docker cp's CVE-2019-14271: Docker's cp helper ran chrooted in the container and loaded the
/// container's libnss, which ran the container's code as root on the host. berth's `cp` runs
/// nothing from the container. A container whose libnss_files runs code when loaded: `cp -a`
/// both ways, running and stopped, leaves the library's marker nowhere.
#[test]
fn cp_loads_nothing_from_the_container() {
    assert!(common::is_root("confinement"));
    let b = Berth::with_busybox();
    let dir = b.dir.path().join("nss");
    std::fs::create_dir_all(&dir).unwrap();
    let marker = dir.join("loaded");
    std::fs::write(
        dir.join("nss.c"),
        format!(
            "#include <fcntl.h>\n#include <unistd.h>\n\
             __attribute__((constructor)) static void loaded(void) {{\n\
             int fd = open(\"{}\", O_CREAT | O_WRONLY, 0644); if (fd >= 0) close(fd);\n\
             fd = open(\"/nss-loaded\", O_CREAT | O_WRONLY, 0644); if (fd >= 0) close(fd); }}\n",
            marker.display()
        ),
    )
    .unwrap();
    let lib = dir.join("libnss_files.so.2");
    let out = std::process::Command::new("cc")
        .args(["-shared", "-fPIC", "-o"])
        .arg(&lib)
        .arg(dir.join("nss.c"))
        .output()
        .expect("cc is needed to build the library: apt-get install gcc libc6-dev");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The library does what the attack needs when something loads it.
    let loaded = std::process::Command::new("true")
        .env("LD_PRELOAD", &lib)
        .status()
        .unwrap();
    assert!(
        loaded.success() && marker.exists(),
        "the probe library does not run"
    );
    std::fs::remove_file(&marker).unwrap();
    let _ = std::fs::remove_file("/nss-loaded");

    b.ok(&["run", "-d", "--name", "nss", "busybox", "sleep", "60"]);
    b.ok(&[
        "exec",
        "nss",
        "mkdir",
        "-p",
        "/lib/x86_64-linux-gnu",
        "/lib64",
        "/out",
    ]);
    for at in ["/lib/x86_64-linux-gnu/", "/lib64/", "/lib/"] {
        b.ok(&["cp", lib.to_str().unwrap(), &format!("nss:{at}")]);
    }
    let conf = dir.join("nsswitch.conf");
    std::fs::write(&conf, "passwd: files\ngroup: files\n").unwrap();
    b.ok(&["cp", conf.to_str().unwrap(), "nss:/etc/nsswitch.conf"]);
    let host_out = dir.join("from-container");
    for round in ["running", "stopped"] {
        b.ok(&["cp", "-a", "nss:/etc", host_out.to_str().unwrap()]);
        b.ok(&["cp", "-a", conf.to_str().unwrap(), "nss:/out/"]);
        assert!(
            !marker.exists(),
            "{round}: cp loaded the container's library"
        );
        assert!(!std::path::Path::new("/nss-loaded").exists(), "{round}");
        if round == "running" {
            let inside = b.code(&["exec", "nss", "test", "-e", "/nss-loaded"]).0;
            assert_ne!(inside, 0, "cp loaded the library inside the container");
            b.ok(&["stop", "-t", "0", "nss"]);
        }
        let _ = std::fs::remove_dir_all(&host_out);
    }
    b.ok(&["rm", "-f", "nss"]);
}
