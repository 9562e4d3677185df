//! The daemon's checks of a create request (`verifyContainerSettings` and
//! `verifyPlatformContainerResources` in dockerd), in Docker's words, shared by every front end:
//! the CLI only turns strings into typed values (`64m` → bytes), the Engine API server hands
//! the request's numbers over as they came, and both get the same answers from here.

use super::CreateOptions;
use crate::EngineError;
use berth_runtime::RunOptions;

/// dockerd's `linuxMinMemory`: the smallest memory limit (and reservation) it accepts.
pub(crate) const MIN_MEMORY: i64 = 6 * 1024 * 1024;

fn invalid(s: impl Into<String>) -> EngineError {
    EngineError::InvalidArgument(s.into())
}

/// The number of CPUs `--cpus` may ask for at most.
pub(crate) fn host_cpus() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

/// `--cpus` (`NanoCpus`): from 0.01 up to the host's CPU count; 0 means no limit.
pub(crate) fn check_cpus(cpus: f64, ncpus: usize) -> Result<(), EngineError> {
    if !cpus.is_finite() || cpus < 0.0 || (cpus > 0.0 && cpus < 0.01) || cpus > ncpus as f64 {
        return Err(invalid(format!(
            "Range of CPUs is from 0.01 to {ncpus}.00, as there are only {ncpus} CPUs available"
        )));
    }
    Ok(())
}

/// `--cpu-shares`: 0 means the default, a negative value is refused.
pub(crate) fn check_cpu_shares(shares: i64) -> Result<(), EngineError> {
    if shares < 0 {
        return Err(invalid("invalid CPU shares: must be positive"));
    }
    Ok(())
}

/// `-m` and `--memory-swap` of a create (an update may change the swap alone; see
/// `update::verify`).
pub(crate) fn check_memory(memory: i64, swap: i64) -> Result<(), EngineError> {
    if memory != 0 && memory < MIN_MEMORY {
        return Err(invalid("Minimum memory limit allowed is 6MB"));
    }
    if memory > 0 && swap > 0 && swap < memory {
        return Err(invalid(
            "Minimum memoryswap limit should be larger than memory limit, see usage",
        ));
    }
    if memory == 0 && swap > 0 {
        return Err(invalid(
            "You should always set the Memory limit when using Memoryswap limit, see usage",
        ));
    }
    Ok(())
}

/// `--ulimit`: a resource the kernel knows, soft ≤ hard (go-units' words).
pub(crate) fn check_ulimits(run: &RunOptions) -> Result<(), EngineError> {
    for u in &run.ulimits {
        if !berth_runtime::spec::rlimit_known(&u.name) {
            return Err(invalid(format!("invalid ulimit type: {}", u.name)));
        }
        if u.soft > u.hard {
            return Err(invalid(format!(
                "ulimit soft limit must be less than or equal to hard limit: {} > {}",
                u.soft, u.hard
            )));
        }
    }
    Ok(())
}

/// `-w`: Docker refuses a relative working directory.
pub(crate) fn check_workdir(workdir: Option<&str>) -> Result<(), EngineError> {
    match workdir {
        Some(w) if !w.is_empty() && !w.starts_with('/') => Err(invalid(format!(
            "the working directory '{w}' is invalid, it needs to be an absolute path"
        ))),
        _ => Ok(()),
    }
}

/// `--security-opt` values into the runtime options. Only what berth enforces is accepted:
/// `no-new-privileges[=bool]`, `seccomp=unconfined`; AppArmor and SELinux `unconfined`/`disable`
/// are accepted because berth applies neither. Anything else (a seccomp profile file, an
/// AppArmor profile, SELinux labels) is refused rather than ignored.
pub(crate) fn apply_security_opts(
    run: &mut RunOptions,
    opts: &[String],
) -> Result<(), EngineError> {
    for s in opts {
        match s.as_str() {
            "no-new-privileges" | "no-new-privileges=true" | "no-new-privileges:true" => {
                run.no_new_privileges = true
            }
            "no-new-privileges=false" | "no-new-privileges:false" => run.no_new_privileges = false,
            "seccomp=unconfined" | "seccomp:unconfined" => run.seccomp_unconfined = true,
            "apparmor=unconfined" | "apparmor:unconfined" | "label=disable" | "label:disable" => {}
            other => return Err(invalid(format!("invalid --security-opt: {other:?}"))),
        }
    }
    Ok(())
}

/// Checks a create request and returns its runtime options with the request's defaults
/// applied (zero limits mean "none", `--security-opt` applied). Runs before anything is
/// pulled or written, so a bad request changes nothing.
pub(crate) fn run_options(o: &CreateOptions) -> Result<RunOptions, EngineError> {
    run_options_on(o, host_cpus())
}

pub(crate) fn run_options_on(o: &CreateOptions, ncpus: usize) -> Result<RunOptions, EngineError> {
    if let Some(n) = &o.name {
        super::names::validate(n)?;
    }
    if let Some(r) = &o.restart {
        let restart = super::parse_restart(r)?;
        if o.auto_remove && !matches!(restart.name.as_str(), "" | "no") {
            return Err(invalid("Conflicting options: --restart and --rm"));
        }
    }
    let mut run = o.run.clone();
    check_workdir(run.workdir.as_deref())?;
    check_memory(run.memory.unwrap_or(0), run.memory_swap.unwrap_or(0))?;
    if run.memory == Some(0) {
        run.memory = None;
    }
    if let Some(c) = run.cpus {
        check_cpus(c, ncpus)?;
        if c == 0.0 {
            run.cpus = None;
        }
    }
    if let Some(s) = run.cpu_shares {
        check_cpu_shares(s)?;
        if s == 0 {
            run.cpu_shares = None;
        }
    }
    // dockerd: a pids limit of 0 or less is "unlimited"; -1 is what `inspect` shows for it.
    if run.pids_limit == Some(0) {
        run.pids_limit = None;
    }
    // A negative stop timeout is Docker's "wait forever"; berth does not wait forever and
    // sends SIGKILL at once instead (the behaviour of a zero timeout).
    if let Some(t) = run.stop_timeout {
        run.stop_timeout = Some(t.max(0));
    }
    check_ulimits(&run)?;
    apply_security_opts(&mut run, &o.security_opt)?;
    if let Some(s) = &run.stop_signal {
        berth_runtime::parse_signal(s).map_err(|_| invalid(format!("Invalid signal: {s}")))?;
    }
    Ok(run)
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_runtime::Ulimit;

    fn opts(run: RunOptions) -> CreateOptions {
        CreateOptions {
            image: "busybox".into(),
            run,
            ..Default::default()
        }
    }

    fn err(o: &CreateOptions) -> String {
        match run_options_on(o, 4) {
            Ok(_) => panic!("accepted: {o:?}"),
            Err(e) => {
                assert_eq!(e.class(), crate::ErrorClass::InvalidArgument, "{e}");
                e.to_string()
            }
        }
    }

    #[test]
    fn memory_rules() {
        let m = |memory: Option<i64>, memory_swap: Option<i64>| {
            opts(RunOptions {
                memory,
                memory_swap,
                ..Default::default()
            })
        };
        assert_eq!(
            err(&m(Some(4 << 20), None)),
            "Minimum memory limit allowed is 6MB"
        );
        assert_eq!(
            err(&m(Some(-5), None)),
            "Minimum memory limit allowed is 6MB"
        );
        assert_eq!(
            err(&m(Some(64 << 20), Some(32 << 20))),
            "Minimum memoryswap limit should be larger than memory limit, see usage"
        );
        // The engine accepted this silently before: swap needs a memory limit.
        assert_eq!(
            err(&m(None, Some(64 << 20))),
            "You should always set the Memory limit when using Memoryswap limit, see usage"
        );
        assert_eq!(
            err(&m(Some(0), Some(64 << 20))),
            "You should always set the Memory limit when using Memoryswap limit, see usage"
        );
        for ok in [
            m(Some(6 << 20), None),
            m(Some(64 << 20), Some(64 << 20)),
            m(Some(64 << 20), Some(-1)),
            m(None, Some(-1)),
            m(None, None),
        ] {
            run_options_on(&ok, 4).unwrap();
        }
        assert_eq!(run_options_on(&m(Some(0), None), 4).unwrap().memory, None);
    }

    #[test]
    fn cpu_rules() {
        let c = |cpus: f64| {
            opts(RunOptions {
                cpus: Some(cpus),
                ..Default::default()
            })
        };
        let range = "Range of CPUs is from 0.01 to 4.00, as there are only 4 CPUs available";
        for bad in [-1.0, 0.001, 4.5, f64::NAN, f64::INFINITY] {
            assert_eq!(err(&c(bad)), range, "{bad}");
        }
        assert_eq!(run_options_on(&c(0.01), 4).unwrap().cpus, Some(0.01));
        assert_eq!(run_options_on(&c(4.0), 4).unwrap().cpus, Some(4.0));
        assert_eq!(run_options_on(&c(0.0), 4).unwrap().cpus, None);
        let shares = |s: i64| {
            opts(RunOptions {
                cpu_shares: Some(s),
                ..Default::default()
            })
        };
        assert_eq!(err(&shares(-1)), "invalid CPU shares: must be positive");
        assert_eq!(run_options_on(&shares(0), 4).unwrap().cpu_shares, None);
        assert_eq!(
            run_options_on(&shares(512), 4).unwrap().cpu_shares,
            Some(512)
        );
    }

    #[test]
    fn pids_and_stop_timeout_defaults() {
        let o = opts(RunOptions {
            pids_limit: Some(0),
            stop_timeout: Some(-3),
            ..Default::default()
        });
        let run = run_options_on(&o, 4).unwrap();
        assert_eq!(run.pids_limit, None);
        assert_eq!(run.stop_timeout, Some(0));
        let o = opts(RunOptions {
            pids_limit: Some(-1),
            stop_timeout: Some(7),
            ..Default::default()
        });
        let run = run_options_on(&o, 4).unwrap();
        assert_eq!(run.pids_limit, Some(-1));
        assert_eq!(run.stop_timeout, Some(7));
    }

    #[test]
    fn workdir_must_be_absolute() {
        let w = |w: &str| {
            opts(RunOptions {
                workdir: Some(w.into()),
                ..Default::default()
            })
        };
        assert_eq!(
            err(&w("rel/dir")),
            "the working directory 'rel/dir' is invalid, it needs to be an absolute path"
        );
        run_options_on(&w("/srv"), 4).unwrap();
        run_options_on(&w(""), 4).unwrap();
    }

    #[test]
    fn ulimit_rules() {
        let u = |name: &str, soft: u64, hard: u64| {
            opts(RunOptions {
                ulimits: vec![Ulimit {
                    name: name.into(),
                    soft,
                    hard,
                }],
                ..Default::default()
            })
        };
        assert_eq!(err(&u("nofiles", 1, 1)), "invalid ulimit type: nofiles");
        assert_eq!(
            err(&u("nofile", 2048, 1024)),
            "ulimit soft limit must be less than or equal to hard limit: 2048 > 1024"
        );
        run_options_on(&u("nofile", 1024, 2048), 4).unwrap();
        run_options_on(&u("nproc", u64::MAX, u64::MAX), 4).unwrap();
    }

    #[test]
    fn security_opts() {
        let s = |v: &[&str]| CreateOptions {
            security_opt: v.iter().map(|s| s.to_string()).collect(),
            ..opts(RunOptions::default())
        };
        let run = run_options_on(&s(&["no-new-privileges", "seccomp=unconfined"]), 4).unwrap();
        assert!(run.no_new_privileges && run.seccomp_unconfined);
        let run = run_options_on(
            &s(&["no-new-privileges:true", "no-new-privileges=false"]),
            4,
        )
        .unwrap();
        assert!(!run.no_new_privileges);
        run_options_on(&s(&["apparmor=unconfined", "label=disable"]), 4).unwrap();
        assert_eq!(
            err(&s(&["seccomp=/etc/profile.json"])),
            "invalid --security-opt: \"seccomp=/etc/profile.json\""
        );
        assert_eq!(
            err(&s(&["apparmor=docker-default"])),
            "invalid --security-opt: \"apparmor=docker-default\""
        );
    }

    #[test]
    fn restart_name_and_signal() {
        let o = CreateOptions {
            auto_remove: true,
            restart: Some("always".into()),
            ..opts(RunOptions::default())
        };
        assert_eq!(err(&o), "Conflicting options: --restart and --rm");
        let o = CreateOptions {
            auto_remove: true,
            restart: Some("no".into()),
            ..opts(RunOptions::default())
        };
        run_options_on(&o, 4).unwrap();
        let o = CreateOptions {
            restart: Some("sometimes".into()),
            ..opts(RunOptions::default())
        };
        assert!(err(&o).starts_with("invalid restart policy format: unknown policy 'sometimes'"));
        let o = CreateOptions {
            name: Some("a b".into()),
            ..opts(RunOptions::default())
        };
        assert!(
            err(&o).contains("Invalid container name (a b)"),
            "{}",
            err(&o)
        );
        let o = opts(RunOptions {
            stop_signal: Some("SIGNOPE".into()),
            ..Default::default()
        });
        assert_eq!(err(&o), "Invalid signal: SIGNOPE");
    }
}
