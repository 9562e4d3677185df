//! `update`: new resource limits and restart policy for a created, running or stopped
//! container, with Docker's rules (`verifyContainerSettings`, then `UpdateContainer`); the
//! live cgroup of a running container is changed at once, the stored spec for its next start.

use super::{parse_restart, ContainerSpec};
use crate::{Engine, EngineError};

/// `POST /containers/{id}/update`: zero or `None` leaves a value as it is.
#[derive(Debug, Clone, Default)]
pub struct UpdateOptions {
    /// Bytes.
    pub memory: Option<i64>,
    /// Memory plus swap in bytes; -1 unlimited.
    pub memory_swap: Option<i64>,
    pub memory_reservation: Option<i64>,
    pub cpus: Option<f64>,
    pub cpu_shares: Option<i64>,
    /// Microseconds.
    pub cpu_period: Option<i64>,
    pub cpu_quota: Option<i64>,
    pub cpuset_cpus: Option<String>,
    pub cpuset_mems: Option<String>,
    pub pids_limit: Option<i64>,
    pub restart: Option<String>,
}

use super::validate::{check_cpu_shares, check_cpus, host_cpus, MIN_MEMORY};

fn invalid(s: impl Into<String>) -> EngineError {
    EngineError::InvalidArgument(s.into())
}

/// The CPUs this host has online (`/sys/devices/system/cpu/online`, e.g. `0-3`).
fn online_cpus() -> String {
    std::fs::read_to_string("/sys/devices/system/cpu/online")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| {
            let n = std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1);
            format!("0-{}", n - 1)
        })
}

/// `0-2,4` → the numbers; `None` when malformed.
fn cpu_list(s: &str) -> Option<Vec<u32>> {
    let mut out = Vec::new();
    for part in s.split(',') {
        let part = part.trim();
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (u32, u32) = (a.parse().ok()?, b.parse().ok()?);
                if a > b || b - a > 4096 {
                    return None;
                }
                out.extend(a..=b);
            }
            None => out.push(part.parse().ok()?),
        }
    }
    Some(out)
}

/// The daemon's checks of the request itself (no "Cannot update container" prefix).
fn verify(o: &UpdateOptions) -> Result<(), EngineError> {
    let memory = o.memory.unwrap_or(0);
    let swap = o.memory_swap.unwrap_or(0);
    let reservation = o.memory_reservation.unwrap_or(0);
    if memory != 0 && memory < MIN_MEMORY {
        return Err(invalid("Minimum memory limit allowed is 6MB"));
    }
    if memory > 0 && swap > 0 && swap < memory {
        return Err(invalid(
            "Minimum memoryswap limit should be larger than memory limit, see usage",
        ));
    }
    if reservation != 0 && reservation < MIN_MEMORY {
        return Err(invalid("Minimum memory reservation allowed is 6MB"));
    }
    if memory > 0 && reservation > 0 && memory < reservation {
        return Err(invalid(
            "Minimum memory limit can not be less than memory reservation limit, see usage",
        ));
    }
    let cpus = o.cpus.unwrap_or(0.0);
    let period = o.cpu_period.unwrap_or(0);
    let quota = o.cpu_quota.unwrap_or(0);
    if cpus > 0.0 && period > 0 {
        return Err(invalid(
            "Conflicting options: Nano CPUs and CPU Period cannot both be set",
        ));
    }
    if cpus > 0.0 && quota > 0 {
        return Err(invalid(
            "Conflicting options: Nano CPUs and CPU Quota cannot both be set",
        ));
    }
    check_cpus(cpus, host_cpus())?;
    if period != 0 && !(1000..=1_000_000).contains(&period) {
        return Err(invalid(
            "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)",
        ));
    }
    if quota > 0 && quota < 1000 {
        return Err(invalid(
            "CPU cfs quota can not be less than 1ms (i.e. 1000)",
        ));
    }
    check_cpu_shares(o.cpu_shares.unwrap_or(0))?;
    if let Some(c) = o.cpuset_cpus.as_deref().filter(|c| !c.is_empty()) {
        let online = online_cpus();
        let have = cpu_list(&online).unwrap_or_default();
        match cpu_list(c) {
            None => return Err(invalid(format!("Invalid value {c} for cpuset cpus"))),
            Some(want) if want.iter().any(|x| !have.contains(x)) => {
                return Err(invalid(format!(
                    "Requested CPUs are not available - requested {c}, available: {online}"
                )))
            }
            _ => {}
        }
    }
    if let Some(r) = &o.restart {
        parse_restart(r)?;
    }
    Ok(())
}

impl Engine {
    /// `update`: validates, changes the live cgroup of a running container, then records the
    /// new values (`inspect` shows them; the next start uses them). Returns the ID.
    pub fn update_container(
        &mut self,
        name: &str,
        o: &UpdateOptions,
    ) -> Result<String, EngineError> {
        verify(o)?;
        let (row, mut rec, live) = self.load(name)?;
        let id = row.id.clone();
        let cannot =
            |why: &str| EngineError::Conflict(format!("Cannot update container {id}: {why}"));
        if rec.state.status == "removing" || live.status == "dead" {
            return Err(cannot(
                "container is marked for removal and cannot be \"update\"",
            ));
        }
        let mut spec: ContainerSpec = self.spec_of(&id)?;
        let mut run = spec.run.clone();
        // `UpdateContainer`: conflicts with what is already set.
        let has_cpus = run.cpus.is_some_and(|c| c > 0.0);
        let nano = o.cpus.is_some_and(|c| c > 0.0);
        if nano && run.cpu_period.is_some_and(|p| p > 0) {
            return Err(cannot(
                "Conflicting options: Nano CPUs cannot be updated as CPU Period has already been set",
            ));
        }
        if nano && run.cpu_quota.is_some_and(|q| q > 0) {
            return Err(cannot(
                "Conflicting options: Nano CPUs cannot be updated as CPU Quota has already been set",
            ));
        }
        if o.cpu_period.is_some_and(|p| p > 0) && has_cpus {
            return Err(cannot(
                "Conflicting options: CPU Period cannot be updated as NanoCPUs has already been set",
            ));
        }
        if o.cpu_quota.is_some_and(|q| q > 0) && has_cpus {
            return Err(cannot(
                "Conflicting options: CPU Quota cannot be updated as NanoCPUs has already been set",
            ));
        }
        if let Some(s) = o.cpu_shares.filter(|s| *s != 0) {
            run.cpu_shares = Some(s);
        }
        if let Some(c) = o.cpus.filter(|c| *c != 0.0) {
            run.cpus = Some(c);
        }
        if let Some(p) = o.cpu_period.filter(|p| *p != 0) {
            run.cpu_period = Some(p as u64);
        }
        if let Some(q) = o.cpu_quota.filter(|q| *q != 0) {
            run.cpu_quota = Some(q);
        }
        if let Some(c) = o.cpuset_cpus.clone().filter(|c| !c.is_empty()) {
            run.cpuset_cpus = Some(c);
        }
        if let Some(c) = o.cpuset_mems.clone().filter(|c| !c.is_empty()) {
            run.cpuset_mems = Some(c);
        }
        // The swap limit in effect: Docker records twice the memory when only --memory was
        // given.
        let old_memory = run.memory.unwrap_or(0);
        let stored_swap =
            run.memory_swap
                .unwrap_or(if old_memory > 0 { old_memory * 2 } else { 0 });
        let new_swap = o.memory_swap.unwrap_or(0);
        if let Some(m) = o.memory.filter(|m| *m != 0) {
            if stored_swap > 0 && m > stored_swap && new_swap == 0 {
                return Err(cannot(
                    "Memory limit should be smaller than already set memoryswap limit, update the memoryswap at the same time",
                ));
            }
            if old_memory > 0 && run.memory_swap.is_none() {
                run.memory_swap = Some(stored_swap);
            }
            run.memory = Some(m);
        }
        if new_swap != 0 {
            if run.memory.unwrap_or(0) <= 0 && new_swap > 0 {
                return Err(cannot(
                    "You should always set the Memory limit when using Memoryswap limit, see usage",
                ));
            }
            if new_swap > 0 && run.memory.is_some_and(|m| new_swap < m) {
                return Err(cannot(
                    "Minimum memoryswap limit should be larger than memory limit, see usage",
                ));
            }
            run.memory_swap = Some(new_swap);
        }
        if let Some(r) = o.memory_reservation.filter(|r| *r != 0) {
            if run.memory.is_some_and(|m| m > 0 && m < r) {
                return Err(cannot(
                    "Minimum memory limit can not be less than memory reservation limit, see usage",
                ));
            }
            run.memory_reservation = Some(r);
        }
        if let Some(p) = o.pids_limit {
            run.pids_limit = if p == 0 { None } else { Some(p) };
        }
        let restart = match &o.restart {
            Some(r) => {
                let p = parse_restart(r)?;
                if spec.auto_remove && !matches!(p.name.as_str(), "" | "no") {
                    return Err(cannot(
                        "Restart policy cannot be updated because AutoRemove is enabled for the container",
                    ));
                }
                Some(p)
            }
            None => None,
        };
        let dir = self.container_dir_of(&id);
        let _lock = self.restart_lock(&id);
        let running = live.running && !live.restarting;
        berth_runtime::update_resources(&dir, &run, running).map_err(|e| cannot(&e.to_string()))?;
        spec.run = run;
        if let Some(p) = restart {
            rec.restart_policy = Some(p.name.clone());
            spec.restart = p;
        }
        let b = serde_json::to_vec_pretty(&spec)
            .map_err(|e| invalid(format!("serialising container spec: {e}")))?;
        berth_runtime::util::write_atomic(&dir.join("container.json"), &b)
            .map_err(|e| EngineError::io("writing container.json", e))?;
        self.save_record(&id, &rec)?;
        Ok(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_checks() {
        let err = |o: UpdateOptions| verify(&o).unwrap_err().to_string();
        assert_eq!(
            err(UpdateOptions {
                memory: Some(1 << 20),
                ..Default::default()
            }),
            "Minimum memory limit allowed is 6MB"
        );
        assert!(err(UpdateOptions {
            cpus: Some(0.5),
            cpu_quota: Some(50_000),
            ..Default::default()
        })
        .contains("Nano CPUs and CPU Quota"));
        assert!(err(UpdateOptions {
            cpu_period: Some(10),
            ..Default::default()
        })
        .starts_with("CPU cfs period"));
        assert!(err(UpdateOptions {
            cpuset_cpus: Some("4096".into()),
            ..Default::default()
        })
        .starts_with("Requested CPUs are not available"));
        assert_eq!(cpu_list("0-2,5"), Some(vec![0, 1, 2, 5]));
    }
}
