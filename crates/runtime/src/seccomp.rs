//! Docker's default seccomp profile, kept as data.
//!
//! The profile is an allowlist: every syscall not listed fails with `EPERM`. Some rules apply
//! only on some architectures, only when the container holds (or lacks) a capability, or only
//! on kernels new enough. [`default_profile`] resolves those conditions for one container the
//! way Docker's daemon does, and yields the `linux.seccomp` section of the runtime spec.

use serde_json::{json, Value};

/// Conditions under which a rule is part of the profile.
#[derive(Debug, Default, Clone, Copy)]
struct Cond {
    /// The rule applies only on these (Go-named) architectures.
    arches: &'static [&'static str],
    /// The rule applies only when the container holds all of these capabilities.
    caps: &'static [&'static str],
    /// The rule does not apply on these architectures.
    not_arches: &'static [&'static str],
    /// The rule does not apply when the container holds any of these capabilities.
    not_caps: &'static [&'static str],
    /// The rule applies only on kernels at least this new.
    min_kernel: Option<(u32, u32)>,
}

/// One argument comparison: (index, value, value_two, operator).
type Arg = (u32, u64, u64, &'static str);

struct Rule {
    names: &'static [&'static str],
    action: &'static str,
    errno: Option<u32>,
    args: &'static [Arg],
    cond: Cond,
}

const NONE: Cond = Cond {
    arches: &[],
    caps: &[],
    not_arches: &[],
    not_caps: &[],
    min_kernel: None,
};

const fn allow(names: &'static [&'static str], cond: Cond) -> Rule {
    Rule {
        names,
        action: "SCMP_ACT_ALLOW",
        errno: None,
        args: &[],
        cond,
    }
}
const fn arches(a: &'static [&'static str]) -> Cond {
    Cond { arches: a, ..NONE }
}
const fn caps(c: &'static [&'static str]) -> Cond {
    Cond { caps: c, ..NONE }
}

/// Syscalls every container may use.
const BASE: &[&str] = &[
    "accept",
    "accept4",
    "access",
    "adjtimex",
    "alarm",
    "bind",
    "brk",
    "cachestat",
    "capget",
    "capset",
    "chdir",
    "chmod",
    "chown",
    "chown32",
    "clock_adjtime",
    "clock_adjtime64",
    "clock_getres",
    "clock_getres_time64",
    "clock_gettime",
    "clock_gettime64",
    "clock_nanosleep",
    "clock_nanosleep_time64",
    "close",
    "close_range",
    "connect",
    "copy_file_range",
    "creat",
    "dup",
    "dup2",
    "dup3",
    "epoll_create",
    "epoll_create1",
    "epoll_ctl",
    "epoll_ctl_old",
    "epoll_pwait",
    "epoll_pwait2",
    "epoll_wait",
    "epoll_wait_old",
    "eventfd",
    "eventfd2",
    "execve",
    "execveat",
    "exit",
    "exit_group",
    "faccessat",
    "faccessat2",
    "fadvise64",
    "fadvise64_64",
    "fallocate",
    "fanotify_mark",
    "fchdir",
    "fchmod",
    "fchmodat",
    "fchmodat2",
    "fchown",
    "fchown32",
    "fchownat",
    "fcntl",
    "fcntl64",
    "fdatasync",
    "fgetxattr",
    "flistxattr",
    "flock",
    "fork",
    "fremovexattr",
    "fsetxattr",
    "fstat",
    "fstat64",
    "fstatat64",
    "fstatfs",
    "fstatfs64",
    "fsync",
    "ftruncate",
    "ftruncate64",
    "futex",
    "futex_requeue",
    "futex_time64",
    "futex_wait",
    "futex_waitv",
    "futex_wake",
    "futimesat",
    "getcpu",
    "getcwd",
    "getdents",
    "getdents64",
    "getegid",
    "getegid32",
    "geteuid",
    "geteuid32",
    "getgid",
    "getgid32",
    "getgroups",
    "getgroups32",
    "getitimer",
    "getpeername",
    "getpgid",
    "getpgrp",
    "getpid",
    "getppid",
    "getpriority",
    "getrandom",
    "getresgid",
    "getresgid32",
    "getresuid",
    "getresuid32",
    "getrlimit",
    "get_robust_list",
    "getrusage",
    "getsid",
    "getsockname",
    "getsockopt",
    "get_thread_area",
    "gettid",
    "gettimeofday",
    "getuid",
    "getuid32",
    "getxattr",
    "inotify_add_watch",
    "inotify_init",
    "inotify_init1",
    "inotify_rm_watch",
    "io_cancel",
    "ioctl",
    "io_destroy",
    "io_getevents",
    "io_pgetevents",
    "io_pgetevents_time64",
    "ioprio_get",
    "ioprio_set",
    "io_setup",
    "io_submit",
    "ipc",
    "kill",
    "landlock_add_rule",
    "landlock_create_ruleset",
    "landlock_restrict_self",
    "lchown",
    "lchown32",
    "lgetxattr",
    "link",
    "linkat",
    "listen",
    "listxattr",
    "llistxattr",
    "_llseek",
    "lremovexattr",
    "lseek",
    "lsetxattr",
    "lstat",
    "lstat64",
    "madvise",
    "map_shadow_stack",
    "membarrier",
    "memfd_create",
    "memfd_secret",
    "mincore",
    "mkdir",
    "mkdirat",
    "mknod",
    "mknodat",
    "mlock",
    "mlock2",
    "mlockall",
    "mmap",
    "mmap2",
    "mprotect",
    "mq_getsetattr",
    "mq_notify",
    "mq_open",
    "mq_timedreceive",
    "mq_timedreceive_time64",
    "mq_timedsend",
    "mq_timedsend_time64",
    "mq_unlink",
    "mremap",
    "msgctl",
    "msgget",
    "msgrcv",
    "msgsnd",
    "msync",
    "munlock",
    "munlockall",
    "munmap",
    "name_to_handle_at",
    "nanosleep",
    "newfstatat",
    "_newselect",
    "open",
    "openat",
    "openat2",
    "pause",
    "pidfd_open",
    "pidfd_send_signal",
    "pipe",
    "pipe2",
    "pkey_alloc",
    "pkey_free",
    "pkey_mprotect",
    "poll",
    "ppoll",
    "ppoll_time64",
    "prctl",
    "pread64",
    "preadv",
    "preadv2",
    "prlimit64",
    "process_mrelease",
    "pselect6",
    "pselect6_time64",
    "pwrite64",
    "pwritev",
    "pwritev2",
    "read",
    "readahead",
    "readlink",
    "readlinkat",
    "readv",
    "recv",
    "recvfrom",
    "recvmmsg",
    "recvmmsg_time64",
    "recvmsg",
    "remap_file_pages",
    "removexattr",
    "rename",
    "renameat",
    "renameat2",
    "restart_syscall",
    "rmdir",
    "rseq",
    "rt_sigaction",
    "rt_sigpending",
    "rt_sigprocmask",
    "rt_sigqueueinfo",
    "rt_sigreturn",
    "rt_sigsuspend",
    "rt_sigtimedwait",
    "rt_sigtimedwait_time64",
    "rt_tgsigqueueinfo",
    "sched_getaffinity",
    "sched_getattr",
    "sched_getparam",
    "sched_get_priority_max",
    "sched_get_priority_min",
    "sched_getscheduler",
    "sched_rr_get_interval",
    "sched_rr_get_interval_time64",
    "sched_setaffinity",
    "sched_setattr",
    "sched_setparam",
    "sched_setscheduler",
    "sched_yield",
    "seccomp",
    "select",
    "semctl",
    "semget",
    "semop",
    "semtimedop",
    "semtimedop_time64",
    "send",
    "sendfile",
    "sendfile64",
    "sendmmsg",
    "sendmsg",
    "sendto",
    "setfsgid",
    "setfsgid32",
    "setfsuid",
    "setfsuid32",
    "setgid",
    "setgid32",
    "setgroups",
    "setgroups32",
    "setitimer",
    "setpgid",
    "setpriority",
    "setregid",
    "setregid32",
    "setresgid",
    "setresgid32",
    "setresuid",
    "setresuid32",
    "setreuid",
    "setreuid32",
    "setrlimit",
    "set_robust_list",
    "setsid",
    "setsockopt",
    "set_thread_area",
    "set_tid_address",
    "setuid",
    "setuid32",
    "setxattr",
    "shmat",
    "shmctl",
    "shmdt",
    "shmget",
    "shutdown",
    "sigaltstack",
    "signalfd",
    "signalfd4",
    "sigprocmask",
    "sigreturn",
    "socketcall",
    "socketpair",
    "splice",
    "stat",
    "stat64",
    "statfs",
    "statfs64",
    "statx",
    "symlink",
    "symlinkat",
    "sync",
    "sync_file_range",
    "syncfs",
    "sysinfo",
    "tee",
    "tgkill",
    "time",
    "timer_create",
    "timer_delete",
    "timer_getoverrun",
    "timer_gettime",
    "timer_gettime64",
    "timer_settime",
    "timer_settime64",
    "timerfd_create",
    "timerfd_gettime",
    "timerfd_gettime64",
    "timerfd_settime",
    "timerfd_settime64",
    "times",
    "tkill",
    "truncate",
    "truncate64",
    "ugetrlimit",
    "umask",
    "uname",
    "unlink",
    "unlinkat",
    "utime",
    "utimensat",
    "utimensat_time64",
    "utimes",
    "vfork",
    "vmsplice",
    "wait4",
    "waitid",
    "waitpid",
    "write",
    "writev",
];

/// `CLONE_NEWNS|CLONE_NEWCGROUP|CLONE_NEWUTS|CLONE_NEWIPC|CLONE_NEWUSER|CLONE_NEWPID|CLONE_NEWNET`
const CLONE_NS_MASK: u64 = 0x7E02_0000;

const RULES: &[Rule] = &[
    allow(BASE, NONE),
    allow(
        &["process_vm_readv", "process_vm_writev", "ptrace"],
        Cond {
            min_kernel: Some((4, 8)),
            ..NONE
        },
    ),
    // Any socket family but AF_VSOCK (40).
    Rule {
        names: &["socket"],
        action: "SCMP_ACT_ALLOW",
        errno: None,
        args: &[(0, 40, 0, "SCMP_CMP_NE")],
        cond: NONE,
    },
    // personality(2) only with the harmless persona values.
    Rule {
        names: &["personality"],
        action: "SCMP_ACT_ALLOW",
        errno: None,
        args: &[(0, 0x0, 0, "SCMP_CMP_EQ")],
        cond: NONE,
    },
    Rule {
        names: &["personality"],
        action: "SCMP_ACT_ALLOW",
        errno: None,
        args: &[(0, 0x0008, 0, "SCMP_CMP_EQ")],
        cond: NONE,
    },
    Rule {
        names: &["personality"],
        action: "SCMP_ACT_ALLOW",
        errno: None,
        args: &[(0, 0x20000, 0, "SCMP_CMP_EQ")],
        cond: NONE,
    },
    Rule {
        names: &["personality"],
        action: "SCMP_ACT_ALLOW",
        errno: None,
        args: &[(0, 0x20008, 0, "SCMP_CMP_EQ")],
        cond: NONE,
    },
    Rule {
        names: &["personality"],
        action: "SCMP_ACT_ALLOW",
        errno: None,
        args: &[(0, 0xffff_ffff, 0, "SCMP_CMP_EQ")],
        cond: NONE,
    },
    allow(&["sync_file_range2", "swapcontext"], arches(&["ppc64le"])),
    allow(
        &[
            "arm_fadvise64_64",
            "arm_sync_file_range",
            "sync_file_range2",
            "breakpoint",
            "cacheflush",
            "set_tls",
        ],
        arches(&["arm", "arm64"]),
    ),
    allow(&["arch_prctl"], arches(&["amd64", "x32"])),
    allow(&["modify_ldt"], arches(&["amd64", "x32", "x86"])),
    allow(
        &[
            "s390_pci_mmio_read",
            "s390_pci_mmio_write",
            "s390_runtime_instr",
        ],
        arches(&["s390", "s390x"]),
    ),
    allow(&["riscv_flush_icache"], arches(&["riscv64"])),
    allow(&["open_by_handle_at"], caps(&["CAP_DAC_READ_SEARCH"])),
    allow(
        &[
            "bpf",
            "clone",
            "clone3",
            "fanotify_init",
            "fsconfig",
            "fsmount",
            "fsopen",
            "fspick",
            "lookup_dcookie",
            "mount",
            "mount_setattr",
            "move_mount",
            "open_tree",
            "perf_event_open",
            "quotactl",
            "quotactl_fd",
            "setdomainname",
            "sethostname",
            "setns",
            "syslog",
            "umount",
            "umount2",
            "unshare",
        ],
        caps(&["CAP_SYS_ADMIN"]),
    ),
    // Without CAP_SYS_ADMIN, clone(2) may not create namespaces.
    Rule {
        names: &["clone"],
        action: "SCMP_ACT_ALLOW",
        errno: None,
        args: &[(0, CLONE_NS_MASK, 0, "SCMP_CMP_MASKED_EQ")],
        cond: Cond {
            not_caps: &["CAP_SYS_ADMIN"],
            not_arches: &["s390", "s390x"],
            ..NONE
        },
    },
    Rule {
        names: &["clone"],
        action: "SCMP_ACT_ALLOW",
        errno: None,
        args: &[(1, CLONE_NS_MASK, 0, "SCMP_CMP_MASKED_EQ")],
        cond: Cond {
            not_caps: &["CAP_SYS_ADMIN"],
            arches: &["s390", "s390x"],
            ..NONE
        },
    },
    // clone3 hides its flags in memory seccomp cannot read: make libc fall back to clone.
    Rule {
        names: &["clone3"],
        action: "SCMP_ACT_ERRNO",
        errno: Some(38),
        args: &[],
        cond: Cond {
            not_caps: &["CAP_SYS_ADMIN"],
            ..NONE
        },
    },
    allow(&["reboot"], caps(&["CAP_SYS_BOOT"])),
    allow(&["chroot"], caps(&["CAP_SYS_CHROOT"])),
    allow(
        &["delete_module", "init_module", "finit_module"],
        caps(&["CAP_SYS_MODULE"]),
    ),
    allow(&["acct"], caps(&["CAP_SYS_PACCT"])),
    allow(
        &[
            "kcmp",
            "pidfd_getfd",
            "process_madvise",
            "process_vm_readv",
            "process_vm_writev",
            "ptrace",
        ],
        caps(&["CAP_SYS_PTRACE"]),
    ),
    allow(&["iopl", "ioperm"], caps(&["CAP_SYS_RAWIO"])),
    allow(
        &["settimeofday", "stime", "clock_settime", "clock_settime64"],
        caps(&["CAP_SYS_TIME"]),
    ),
    allow(&["vhangup"], caps(&["CAP_SYS_TTY_CONFIG"])),
    allow(
        &[
            "get_mempolicy",
            "mbind",
            "set_mempolicy",
            "set_mempolicy_home_node",
        ],
        caps(&["CAP_SYS_NICE"]),
    ),
    allow(&["syslog"], caps(&["CAP_SYSLOG"])),
    allow(&["bpf"], caps(&["CAP_BPF"])),
    allow(&["perf_event_open"], caps(&["CAP_PERFMON"])),
];

/// The Go name of the host architecture (`amd64`, `arm64`, ...), as Docker's profile uses it.
pub fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "x86" => "x86",
        "aarch64" => "arm64",
        "arm" => "arm",
        "powerpc64" => "ppc64le",
        "s390x" => "s390x",
        "riscv64" => "riscv64",
        other => other,
    }
}

/// The seccomp architectures a filter for `arch` must cover (native plus compat ABIs).
fn seccomp_arches(arch: &str) -> &'static [&'static str] {
    match arch {
        "amd64" => &["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "arm64" => &["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"],
        "arm" => &["SCMP_ARCH_ARM"],
        "x86" => &["SCMP_ARCH_X86"],
        "ppc64le" => &["SCMP_ARCH_PPC64LE"],
        "s390x" => &["SCMP_ARCH_S390X", "SCMP_ARCH_S390"],
        "riscv64" => &["SCMP_ARCH_RISCV64"],
        _ => &[],
    }
}

/// The running kernel's (major, minor) version, if readable.
pub fn kernel_version() -> Option<(u32, u32)> {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").ok()?;
    let mut it = release.trim().split(['.', '-']);
    let major = it.next()?.parse().ok()?;
    let minor = it.next()?.parse().ok()?;
    Some((major, minor))
}

/// Whether libseccomp can resolve a syscall name (on any architecture it knows).
pub fn known_syscall(name: &str) -> bool {
    libseccomp::ScmpSyscall::from_name(name).is_ok()
}

/// Docker's default profile for a container holding `caps` (bounding set, `CAP_*` names), on
/// architecture `arch` (Go name, see [`host_arch`]) and kernel `kernel`, as the JSON value of
/// the runtime spec's `linux.seccomp`.
pub fn default_profile(arch: &str, caps: &[String], kernel: Option<(u32, u32)>) -> Value {
    let has = |c: &str| caps.iter().any(|h| h == c);
    let mut syscalls = Vec::new();
    for rule in RULES {
        let c = &rule.cond;
        if !c.arches.is_empty() && !c.arches.contains(&arch) {
            continue;
        }
        if c.not_arches.contains(&arch) {
            continue;
        }
        if !c.caps.iter().all(|cap| has(cap)) {
            continue;
        }
        if c.not_caps.iter().any(|cap| has(cap)) {
            continue;
        }
        if let (Some(min), Some(k)) = (c.min_kernel, kernel) {
            if k < min {
                continue;
            }
        }
        // Names this host's libseccomp does not know (syscalls newer than it) are left out,
        // as runc does, so every runtime can load the profile.
        let names: Vec<&str> = rule
            .names
            .iter()
            .copied()
            .filter(|n| known_syscall(n))
            .collect();
        if names.is_empty() {
            continue;
        }
        let mut s = json!({ "names": names, "action": rule.action });
        if let Some(e) = rule.errno {
            s["errnoRet"] = json!(e);
        }
        if !rule.args.is_empty() {
            s["args"] = rule
                .args
                .iter()
                .map(|(index, value, value_two, op)| {
                    json!({"index": index, "value": value, "valueTwo": value_two, "op": op})
                })
                .collect();
        }
        syscalls.push(s);
    }
    json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": 1,
        "architectures": seccomp_arches(arch),
        "syscalls": syscalls,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &Value) -> Vec<String> {
        v["syscalls"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["action"] == "SCMP_ACT_ALLOW" && s.get("args").is_none())
            .flat_map(|s| {
                s["names"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|n| n.as_str().unwrap().to_string())
            })
            .collect()
    }

    #[test]
    fn default_caps_do_not_allow_mount_or_namespaces() {
        let caps = vec!["CAP_CHOWN".to_string(), "CAP_SYS_CHROOT".to_string()];
        let p = default_profile("amd64", &caps, Some((6, 1)));
        let n = names(&p);
        assert!(n.contains(&"read".to_string()));
        assert!(n.contains(&"arch_prctl".to_string()));
        assert!(n.contains(&"chroot".to_string()));
        assert!(n.contains(&"ptrace".to_string()));
        assert!(!n.contains(&"mount".to_string()));
        assert!(!n.contains(&"unshare".to_string()));
        assert!(!n.contains(&"riscv_flush_icache".to_string()));
        let clone3 = p["syscalls"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["names"][0] == "clone3")
            .unwrap();
        assert_eq!(clone3["errnoRet"], 38);
        assert_eq!(p["architectures"][0], "SCMP_ARCH_X86_64");
    }

    #[test]
    fn sys_admin_unlocks_mount_and_drops_clone_mask() {
        let caps = vec!["CAP_SYS_ADMIN".to_string()];
        let p = default_profile("amd64", &caps, Some((6, 1)));
        let n = names(&p);
        assert!(n.contains(&"mount".to_string()) && n.contains(&"clone3".to_string()));
        assert!(!p["syscalls"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["names"][0] == "clone" && s.get("args").is_some()));
    }

    #[test]
    fn old_kernels_lose_ptrace() {
        let p = default_profile("arm64", &[], Some((4, 4)));
        let n = names(&p);
        assert!(!n.contains(&"ptrace".to_string()));
        assert!(n.contains(&"set_tls".to_string()));
    }
}
