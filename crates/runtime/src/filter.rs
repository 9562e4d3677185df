//! Compiled seccomp filters for the built-in runtime, cached per profile.
//!
//! Compiling Docker's default profile with libseccomp (three architectures, ~400 rules) costs
//! 10–20 ms, on every `run` and every `exec`. The monitor compiles a profile once, keeps the
//! BPF program in `<state root>/seccomp/<sha256>` (tmpfs: gone after a reboot, so a new kernel
//! or libseccomp never sees a stale program) and hands the bytes to the container's init, which
//! loads them right before `execve` (see `monitor`'s workload executor).
//!
//! The key is the SHA-256 of the profile's JSON, the kernel release and the libseccomp version.
//! Profiles this path does not handle (notify actions, filter flags, a listener) are left in
//! the spec for libcontainer to compile as before: [`supported`] says which.

use oci_spec::runtime::{Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompOperator};
use sha2::{Digest, Sha256};
use std::io::{self, Read};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;

/// Whether `profile` can be compiled ahead and loaded as a plain filter: no notify actions,
/// no flags, no listener.
pub fn supported(profile: &LinuxSeccomp) -> bool {
    profile
        .flags()
        .as_ref()
        .map(|f| f.is_empty())
        .unwrap_or(true)
        && profile.listener_path().is_none()
        && profile.default_action() != LinuxSeccompAction::ScmpActNotify
        && !profile
            .syscalls()
            .iter()
            .flatten()
            .any(|s| s.action() == LinuxSeccompAction::ScmpActNotify)
}

fn action(a: LinuxSeccompAction, errno: Option<u32>) -> Result<libseccomp::ScmpAction, String> {
    use libseccomp::ScmpAction as A;
    let errno = errno.map(|e| e as i32).unwrap_or(libc::EPERM);
    Ok(match a {
        LinuxSeccompAction::ScmpActKill | LinuxSeccompAction::ScmpActKillThread => A::KillThread,
        LinuxSeccompAction::ScmpActKillProcess => A::KillProcess,
        LinuxSeccompAction::ScmpActTrap => A::Trap,
        LinuxSeccompAction::ScmpActErrno => A::Errno(errno),
        LinuxSeccompAction::ScmpActTrace => A::Trace(
            errno
                .try_into()
                .map_err(|_| format!("seccomp: bad trace errno {errno}"))?,
        ),
        LinuxSeccompAction::ScmpActAllow => A::Allow,
        LinuxSeccompAction::ScmpActLog => A::Log,
        LinuxSeccompAction::ScmpActNotify => return Err("seccomp: notify is not supported".into()),
    })
}

fn arch_of(a: Arch) -> libseccomp::ScmpArch {
    use libseccomp::ScmpArch as S;
    match a {
        Arch::ScmpArchNative => S::Native,
        Arch::ScmpArchX86 => S::X86,
        Arch::ScmpArchX86_64 => S::X8664,
        Arch::ScmpArchX32 => S::X32,
        Arch::ScmpArchArm => S::Arm,
        Arch::ScmpArchAarch64 => S::Aarch64,
        Arch::ScmpArchMips => S::Mips,
        Arch::ScmpArchMips64 => S::Mips64,
        Arch::ScmpArchMips64n32 => S::Mips64N32,
        Arch::ScmpArchMipsel => S::Mipsel,
        Arch::ScmpArchMipsel64 => S::Mipsel64,
        Arch::ScmpArchMipsel64n32 => S::Mipsel64N32,
        Arch::ScmpArchPpc => S::Ppc,
        Arch::ScmpArchPpc64 => S::Ppc64,
        Arch::ScmpArchPpc64le => S::Ppc64Le,
        Arch::ScmpArchS390 => S::S390,
        Arch::ScmpArchS390x => S::S390X,
        Arch::ScmpArchRiscv64 => S::Riscv64,
    }
}

fn op(o: LinuxSeccompOperator, b: Option<u64>) -> libseccomp::ScmpCompareOp {
    use libseccomp::ScmpCompareOp as C;
    match o {
        LinuxSeccompOperator::ScmpCmpNe => C::NotEqual,
        LinuxSeccompOperator::ScmpCmpLt => C::Less,
        LinuxSeccompOperator::ScmpCmpLe => C::LessOrEqual,
        LinuxSeccompOperator::ScmpCmpEq => C::Equal,
        LinuxSeccompOperator::ScmpCmpGe => C::GreaterEqual,
        LinuxSeccompOperator::ScmpCmpGt => C::Greater,
        LinuxSeccompOperator::ScmpCmpMaskedEq => C::MaskedEqual(b.unwrap_or(0)),
    }
}

/// Builds the libseccomp context exactly as libcontainer does (same action mapping, rules
/// equal to the default action skipped, unknown syscall names skipped, one rule per argument
/// comparison).
fn context(p: &LinuxSeccomp) -> Result<libseccomp::ScmpFilterContext, String> {
    let e = |what: &str| {
        let what = what.to_string();
        move |err: libseccomp::error::SeccompError| format!("seccomp: {what}: {err}")
    };
    let default = action(p.default_action(), p.default_errno_ret())?;
    let mut ctx = libseccomp::ScmpFilterContext::new(default).map_err(e("new filter"))?;
    for arch in p.architectures().iter().flatten() {
        let a = arch_of(*arch);
        ctx.add_arch(a).map_err(e("add arch"))?;
    }
    ctx.set_ctl_nnp(false).map_err(e("nnp"))?;
    for sc in p.syscalls().iter().flatten() {
        let act = action(sc.action(), sc.errno_ret())?;
        if act == default {
            continue;
        }
        for name in sc.names() {
            let Ok(nr) = libseccomp::ScmpSyscall::from_name(name) else {
                continue;
            };
            match sc.args() {
                Some(args) => {
                    for a in args {
                        let cmp = libseccomp::ScmpArgCompare::new(
                            a.index() as u32,
                            op(a.op(), a.value_two()),
                            a.value(),
                        );
                        ctx.add_rule_conditional(act, nr, &[cmp])
                            .map_err(e(&format!("rule for {name}")))?;
                    }
                }
                None => {
                    ctx.add_rule(act, nr)
                        .map_err(e(&format!("rule for {name}")))?;
                }
            }
        }
    }
    Ok(ctx)
}

fn cache_key(profile_json: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(profile_json);
    h.update(b"\0");
    if let Ok(r) = std::fs::read("/proc/sys/kernel/osrelease") {
        h.update(r);
    }
    h.update(b"\0");
    let v = libseccomp::ScmpVersion::current()
        .map(|v| format!("{}.{}.{}", v.major, v.minor, v.micro))
        .unwrap_or_default();
    h.update(v.as_bytes());
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// The BPF program (an array of `struct sock_filter`) for `profile`, from the cache in
/// `cache_dir` or compiled and stored there.
pub fn compiled(profile: &LinuxSeccomp, cache_dir: &Path) -> Result<Vec<u8>, String> {
    let json = serde_json::to_vec(profile).map_err(|e| e.to_string())?;
    let path = cache_dir.join(cache_key(&json));
    if let Ok(mut f) = std::fs::File::open(&path) {
        let mut buf = Vec::new();
        if f.read_to_end(&mut buf).is_ok() && !buf.is_empty() && buf.len().is_multiple_of(8) {
            return Ok(buf);
        }
    }
    let ctx = context(profile)?;
    let _ = std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(cache_dir);
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let write = || -> io::Result<Vec<u8>> {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(true)
            .read(true)
            .write(true)
            .mode(0o600)
            .open(&tmp)?;
        ctx.export_bpf(&f).map_err(io::Error::other)?;
        use std::io::Seek;
        f.seek(io::SeekFrom::Start(0))?;
        let mut buf = Vec::new();
        f.read_to_end(&mut buf)?;
        Ok(buf)
    };
    match write() {
        Ok(buf) if !buf.is_empty() && buf.len().is_multiple_of(8) => {
            let _ = std::fs::rename(&tmp, &path);
            Ok(buf)
        }
        Ok(_) => {
            let _ = std::fs::remove_file(&tmp);
            Err("seccomp: empty program".into())
        }
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(format!("seccomp: exporting the filter: {e}"))
        }
    }
}

/// Loads a BPF program as the calling thread's seccomp filter (needs CAP_SYS_ADMIN or
/// no_new_privs). Async-signal-safe: only a syscall.
pub fn load(bpf: &[u8]) -> io::Result<()> {
    let prog = libc::sock_fprog {
        len: (bpf.len() / 8) as u16,
        filter: bpf.as_ptr() as *mut libc::sock_filter,
    };
    // SECCOMP_SET_MODE_FILTER = 1, no flags.
    let r = unsafe { libc::syscall(libc::SYS_seccomp, 1, 0, &prog as *const libc::sock_fprog) };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Removes `cap` from the calling thread's effective and/or permitted sets.
pub fn drop_capability(cap: u32, effective: bool, permitted: bool) -> io::Result<()> {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Clone, Copy, Default)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    let mut h = Header {
        version: 0x2008_0522, // _LINUX_CAPABILITY_VERSION_3
        pid: 0,
    };
    let mut d = [Data::default(); 2];
    // SAFETY: version 3 headers take two data structs; both point to live locals.
    if unsafe { libc::syscall(libc::SYS_capget, &mut h as *mut Header, d.as_mut_ptr()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let (i, bit) = ((cap / 32) as usize, 1u32 << (cap % 32));
    if effective || permitted {
        d[i].effective &= !bit;
    }
    if permitted {
        d[i].permitted &= !bit;
    }
    // SAFETY: as above; capset only reads the two structs.
    if unsafe { libc::syscall(libc::SYS_capset, &mut h as *mut Header, d.as_ptr()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // Read the sets back: the caller starts a container on the strength of this, so a drop
    // the kernel did not apply is an error, not a success.
    let mut after = [Data::default(); 2];
    // SAFETY: as for the first capget.
    if unsafe { libc::syscall(libc::SYS_capget, &mut h as *mut Header, after.as_mut_ptr()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    if after[i].effective & bit != d[i].effective & bit
        || after[i].permitted & bit != d[i].permitted & bit
    {
        return Err(io::Error::other(format!(
            "capability {cap} is still set after capset"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_profile_compiles_and_caches() {
        let v = crate::seccomp::default_profile(
            crate::seccomp::host_arch(),
            &[],
            crate::seccomp::kernel_version(),
        );
        let p: LinuxSeccomp = serde_json::from_value(v).unwrap();
        assert!(supported(&p));
        let dir = tempfile::tempdir().unwrap();
        let a = compiled(&p, dir.path()).unwrap();
        assert!(a.len() > 8 && a.len().is_multiple_of(8));
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        let b = compiled(&p, dir.path()).unwrap();
        assert_eq!(a, b);
    }
}
