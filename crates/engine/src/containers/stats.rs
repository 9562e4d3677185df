//! `stats`: a one-shot resource usage snapshot of containers, read from their cgroups (v1 and
//! v2) and their network namespace, computed the way Docker's daemon and CLI do.

use super::ContainerRecord;
use crate::{Engine, EngineError};
use berth_runtime::cgroup::CgroupMode;
use std::path::Path;
use std::time::Duration;

/// How long the two CPU samples lie apart.
const SAMPLE_INTERVAL: Duration = Duration::from_millis(250);

/// Clock ticks per second of `/proc/stat` (Docker assumes 100 on Linux as well).
const CLOCK_TICKS: u64 = 100;

/// One container's resource usage.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ContainerStats {
    pub id: String,
    /// Without the leading `/`.
    pub name: String,
    pub running: bool,
    pub cpu_percent: f64,
    /// Memory usage without the inactive file cache.
    pub mem_usage: u64,
    /// The cgroup's memory limit, or the host's memory when unlimited.
    pub mem_limit: u64,
    pub mem_percent: f64,
    pub net_rx: u64,
    pub net_tx: u64,
    pub block_read: u64,
    pub block_write: u64,
    pub pids: u64,
}

impl Engine {
    /// Stats of the given containers (IDs, names or ID prefixes), or, with none given, of the
    /// running containers (all of them with `all`). Stopped containers get zeros. CPU usage is
    /// sampled twice, [`SAMPLE_INTERVAL`] apart.
    pub fn container_stats(
        &mut self,
        names: &[String],
        all: bool,
    ) -> Result<Vec<ContainerStats>, EngineError> {
        let mut targets: Vec<(String, String, bool, i32)> = Vec::new();
        if names.is_empty() {
            self.recover_containers()?;
            let rows = self.store().containers()?;
            for row in rows {
                let Ok(mut rec) = serde_json::from_str::<ContainerRecord>(&row.record) else {
                    continue;
                };
                let (live, changed) = self.live_state(&row.id, &mut rec);
                if changed {
                    let _ = self.save_record(&row.id, &rec);
                }
                if !all && !live.running {
                    continue;
                }
                targets.push((row.id, row.name, live.running, live.pid));
            }
        } else {
            for n in names {
                let (row, _rec, live) = self.load(n)?;
                targets.push((row.id, row.name, live.running, live.pid));
            }
        }
        let mode = CgroupMode::detect();
        let cgroup = |id: &str| format!("{}/{}", berth_runtime::CGROUP_PARENT, id);
        let first: Vec<Option<u64>> = targets
            .iter()
            .map(|(id, _, running, _)| {
                if *running {
                    cpu_usage_ns(&mode, &cgroup(id))
                } else {
                    None
                }
            })
            .collect();
        let sys1 = system_cpu_ns();
        if first.iter().any(Option::is_some) {
            std::thread::sleep(SAMPLE_INTERVAL);
        }
        let sys2 = system_cpu_ns();
        let cpus = online_cpus();
        let host_mem = host_memory();
        let mut out = Vec::with_capacity(targets.len());
        for ((id, name, running, pid), before) in targets.into_iter().zip(first) {
            let mut s = ContainerStats {
                name: name.trim_start_matches('/').to_string(),
                running,
                ..Default::default()
            };
            if running {
                let cg = cgroup(&id);
                let after = cpu_usage_ns(&mode, &cg);
                if let (Some(b), Some(a), Some(s1), Some(s2)) = (before, after, sys1, sys2) {
                    s.cpu_percent = cpu_percent(b, a, s1, s2, cpus);
                }
                let (usage, limit) = memory(&mode, &cg);
                s.mem_usage = usage;
                s.mem_limit = match limit {
                    Some(l) if l > 0 && (host_mem == 0 || l < host_mem) => l,
                    _ => host_mem,
                };
                if s.mem_limit > 0 {
                    s.mem_percent = s.mem_usage as f64 / s.mem_limit as f64 * 100.0;
                }
                if pid > 0 {
                    (s.net_rx, s.net_tx) = network(pid);
                }
                (s.block_read, s.block_write) = block_io(&mode, &cg);
                s.pids = pids(&mode, &cg).unwrap_or(0);
            }
            s.id = id;
            out.push(s);
        }
        Ok(out)
    }
}

/// Docker CLI's `calculateCPUPercentUnix`.
fn cpu_percent(cpu1: u64, cpu2: u64, sys1: u64, sys2: u64, cpus: u64) -> f64 {
    let cpu_delta = cpu2.saturating_sub(cpu1) as f64;
    let sys_delta = sys2.saturating_sub(sys1) as f64;
    if cpu_delta > 0.0 && sys_delta > 0.0 {
        cpu_delta / sys_delta * cpus as f64 * 100.0
    } else {
        0.0
    }
}

/// Total CPU time of the cgroup in nanoseconds.
fn cpu_usage_ns(mode: &CgroupMode, cg: &str) -> Option<u64> {
    match mode {
        CgroupMode::V2 { .. } => {
            read_keyed(&mode.dir("", cg).join("cpu.stat"), "usage_usec").map(|u| u * 1000)
        }
        CgroupMode::V1 { .. } => ["cpuacct", "cpu,cpuacct", "cpu"]
            .iter()
            .find_map(|c| read_u64(&mode.dir(c, cg).join("cpuacct.usage"))),
    }
}

/// The host's CPU time in nanoseconds: the first seven fields of `/proc/stat`'s `cpu` line.
fn system_cpu_ns() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/stat").ok()?;
    parse_proc_stat(&s)
}

fn parse_proc_stat(s: &str) -> Option<u64> {
    let line = s.lines().find(|l| l.starts_with("cpu "))?;
    let fields: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .take(7)
        .map(|f| f.parse().ok())
        .collect::<Option<_>>()?;
    if fields.len() < 7 {
        return None;
    }
    Some(fields.iter().sum::<u64>() * 1_000_000_000 / CLOCK_TICKS)
}

/// Online CPUs (`/sys/devices/system/cpu/online`, e.g. `0-3,6`).
fn online_cpus() -> u64 {
    std::fs::read_to_string("/sys/devices/system/cpu/online")
        .ok()
        .and_then(|s| parse_cpu_list(s.trim()))
        .filter(|n| *n > 0)
        .unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get() as u64)
                .unwrap_or(1)
        })
}

fn parse_cpu_list(s: &str) -> Option<u64> {
    let mut n = 0;
    for part in s.split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (u64, u64) = (a.parse().ok()?, b.parse().ok()?);
                n += b.checked_sub(a)? + 1;
            }
            None => {
                part.parse::<u64>().ok()?;
                n += 1;
            }
        }
    }
    Some(n)
}

/// `MemTotal` from `/proc/meminfo`, in bytes.
fn host_memory() -> u64 {
    read_keyed(Path::new("/proc/meminfo"), "MemTotal:")
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

/// (usage without inactive file cache, limit; `None` when unlimited).
fn memory(mode: &CgroupMode, cg: &str) -> (u64, Option<u64>) {
    let dir = mode.dir("memory", cg);
    let (usage, cache_key, limit) = match mode {
        CgroupMode::V2 { .. } => (
            read_u64(&dir.join("memory.current")),
            "inactive_file",
            read_u64(&dir.join("memory.max")),
        ),
        CgroupMode::V1 { .. } => (
            read_u64(&dir.join("memory.usage_in_bytes")),
            "total_inactive_file",
            read_u64(&dir.join("memory.limit_in_bytes")),
        ),
    };
    let usage = usage.unwrap_or(0);
    let usage = match read_keyed(&dir.join("memory.stat"), cache_key) {
        Some(c) if c < usage => usage - c,
        _ => usage,
    };
    (usage, limit)
}

/// Bytes received and sent on the interfaces of the container's network namespace, `lo`
/// excluded; zero when it shares the host's namespace.
fn network(pid: i32) -> (u64, u64) {
    let ns = std::fs::read_link(format!("/proc/{pid}/ns/net"));
    let ours = std::fs::read_link("/proc/self/ns/net");
    match (ns, ours) {
        (Ok(a), Ok(b)) if a != b => {}
        _ => return (0, 0),
    }
    std::fs::read_to_string(format!("/proc/{pid}/net/dev"))
        .map(|s| parse_net_dev(&s))
        .unwrap_or((0, 0))
}

fn parse_net_dev(s: &str) -> (u64, u64) {
    let (mut rx, mut tx) = (0, 0);
    for line in s.lines().skip(2) {
        let Some((iface, rest)) = line.split_once(':') else {
            continue;
        };
        if iface.trim() == "lo" {
            continue;
        }
        let f: Vec<u64> = rest
            .split_whitespace()
            .map(|x| x.parse().unwrap_or(0))
            .collect();
        if f.len() >= 9 {
            rx += f[0];
            tx += f[8];
        }
    }
    (rx, tx)
}

/// (bytes read, bytes written) by the cgroup's block I/O.
fn block_io(mode: &CgroupMode, cg: &str) -> (u64, u64) {
    match mode {
        CgroupMode::V2 { .. } => std::fs::read_to_string(mode.dir("", cg).join("io.stat"))
            .map(|s| parse_io_stat(&s))
            .unwrap_or((0, 0)),
        CgroupMode::V1 { .. } => {
            let dir = mode.dir("blkio", cg);
            // The CFQ/BFQ files stay empty without those schedulers; the throttle ones always
            // count. Take the first that has data, as runc does.
            for f in [
                "blkio.io_service_bytes_recursive",
                "blkio.bfq.io_service_bytes_recursive",
                "blkio.throttle.io_service_bytes_recursive",
                "blkio.throttle.io_service_bytes",
            ] {
                if let Ok(s) = std::fs::read_to_string(dir.join(f)) {
                    if let Some(v) = parse_blkio(&s) {
                        return v;
                    }
                }
            }
            (0, 0)
        }
    }
}

/// v1 `blkio.*io_service_bytes*`: `8:0 Read 4096` lines; `None` when it has no device lines.
fn parse_blkio(s: &str) -> Option<(u64, u64)> {
    let (mut r, mut w, mut any) = (0, 0, false);
    for line in s.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() != 3 {
            continue;
        }
        any = true;
        let v: u64 = f[2].parse().unwrap_or(0);
        match f[1] {
            "Read" => r += v,
            "Write" => w += v,
            _ => {}
        }
    }
    any.then_some((r, w))
}

/// v2 `io.stat`: `8:0 rbytes=1 wbytes=2 rios=3 …` lines.
fn parse_io_stat(s: &str) -> (u64, u64) {
    let (mut r, mut w) = (0, 0);
    for line in s.lines() {
        for kv in line.split_whitespace().skip(1) {
            match kv.split_once('=') {
                Some(("rbytes", v)) => r += v.parse().unwrap_or(0),
                Some(("wbytes", v)) => w += v.parse().unwrap_or(0),
                _ => {}
            }
        }
    }
    (r, w)
}

fn pids(mode: &CgroupMode, cg: &str) -> Option<u64> {
    read_u64(&mode.dir("pids", cg).join("pids.current"))
        .or_else(|| Some(mode.procs(cg).len() as u64).filter(|n| *n > 0))
}

/// A file holding one number (`max` and unreadable files give `None`).
fn read_u64(p: &Path) -> Option<u64> {
    std::fs::read_to_string(p).ok()?.trim().parse().ok()
}

/// `key value` from a flat-keyed file.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parsers() {
        assert_eq!(
            parse_proc_stat("cpu  10 0 20 70 0 0 0 5 0 0\ncpu0 1 2 3 4 5 6 7\n"),
            Some(100 * 10_000_000)
        );
        assert_eq!(parse_cpu_list("0-3,6"), Some(5));
        assert_eq!(parse_cpu_list("0"), Some(1));
        let dev = "Inter-|   Receive |  Transmit\n face |bytes packets\n    lo: 100 1 0 0 0 0 0 0 100 1 0 0 0 0 0 0\n  eth0: 1500 10 0 0 0 0 0 0 700 5 0 0 0 0 0 0\n";
        assert_eq!(parse_net_dev(dev), (1500, 700));
        assert_eq!(
            parse_blkio("8:0 Read 4096\n8:0 Write 512\n8:0 Sync 1\n8:0 Total 4608\nTotal 4608\n"),
            Some((4096, 512))
        );
        assert_eq!(parse_blkio("Total 0\n"), None);
        assert_eq!(
            parse_io_stat("8:0 rbytes=10 wbytes=20 rios=1 wios=2\n259:0 rbytes=5 wbytes=0\n"),
            (15, 20)
        );
        assert_eq!(cpu_percent(0, 50, 0, 1000, 4), 20.0);
        assert_eq!(cpu_percent(5, 5, 0, 1000, 4), 0.0);
    }

    #[test]
    fn v2_memory_and_pids() {
        let d = tempfile::tempdir().unwrap();
        let cg = d.path().join("berth/c");
        std::fs::create_dir_all(&cg).unwrap();
        std::fs::write(cg.join("memory.current"), "3000\n").unwrap();
        std::fs::write(cg.join("memory.max"), "max\n").unwrap();
        std::fs::write(cg.join("memory.stat"), "anon 1000\ninactive_file 1000\n").unwrap();
        std::fs::write(cg.join("pids.current"), "2\n").unwrap();
        std::fs::write(cg.join("cpu.stat"), "usage_usec 7\nuser_usec 5\n").unwrap();
        let m = CgroupMode::V2 {
            root: d.path().to_path_buf(),
        };
        assert_eq!(memory(&m, "/berth/c"), (2000, None));
        assert_eq!(pids(&m, "/berth/c"), Some(2));
        assert_eq!(cpu_usage_ns(&m, "/berth/c"), Some(7000));
        std::fs::write(cg.join("memory.max"), "67108864\n").unwrap();
        assert_eq!(memory(&m, "/berth/c"), (2000, Some(67108864)));
    }
}
