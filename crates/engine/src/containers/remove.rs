//! `rm`: one container or many.
//!
//! A multi-name `rm` (`rm -f $(ps -aq)`) works in chunks: the checks and markers one container
//! at a time, then one transaction that marks the whole chunk `removing`, the teardown (network
//! namespace, runtime state, cgroups, mounts, the directory) on a small pool of threads, and one
//! transaction that deletes the rows whose files are gone. The crash rule holds for each
//! container as for a single `rm`: its pending marker is held and its row says `removing`
//! before anything is torn down, and the row goes only after its directory is gone, so a
//! killed `rm` leaves rows the next command finishes (see [`super::pending`]).

use super::{not_found, pending, ContainerSpec};
use crate::{Engine, EngineError};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Containers per chunk: bounds the descriptors held (a marker and a lock each) and the
/// size of one transaction.
const CHUNK: usize = 128;

/// Threads tearing down containers at once. The work is mostly system calls (unmounts,
/// unlinks, cgroup removal), so a few more than the cores keep them busy.
fn workers(n: usize) -> usize {
    let cores = std::thread::available_parallelism().map_or(2, |c| c.get());
    (cores * 2).clamp(2, 8).min(n)
}

/// A container past its checks, held for removal.
struct Held {
    /// Index of the name in the caller's list.
    idx: usize,
    id: String,
    record: String,
    attributes: Vec<(String, String)>,
    /// Its spec, read before the directory goes, when anonymous volumes are to be removed.
    spec: Option<ContainerSpec>,
    _restart_lock: Option<std::fs::File>,
    _marker: pending::Marker,
}

impl Engine {
    /// `DELETE /containers/{id}`: refuses a running container unless `force` (which kills
    /// it); `volumes` also removes its anonymous volumes.
    pub fn remove_container(
        &mut self,
        name: &str,
        force: bool,
        volumes: bool,
    ) -> Result<String, EngineError> {
        self.remove_container_inner(name, force, volumes, false)
    }

    /// [`Engine::remove_container`]; `infra_too` lets `pod rm` remove the pod's infra
    /// container, which `rm` refuses while the pod exists.
    pub(crate) fn remove_container_inner(
        &mut self,
        name: &str,
        force: bool,
        volumes: bool,
        infra_too: bool,
    ) -> Result<String, EngineError> {
        self.remove_containers_with(&[name.to_string()], force, volumes, infra_too)?
            .pop()
            .unwrap_or_else(|| Err(not_found(name)))
    }

    /// `rm NAME…`: removes each container as [`Engine::remove_container`] would; one result
    /// per name, in order (the ID, or why that one was not removed). The outer error is a
    /// failure before any container was looked at.
    pub fn remove_containers(
        &mut self,
        names: &[String],
        force: bool,
        volumes: bool,
    ) -> Result<Vec<Result<String, EngineError>>, EngineError> {
        self.remove_containers_with(names, force, volumes, false)
    }

    pub(crate) fn remove_containers_with(
        &mut self,
        names: &[String],
        force: bool,
        volumes: bool,
        infra_too: bool,
    ) -> Result<Vec<Result<String, EngineError>>, EngineError> {
        self.recover_containers()?;
        let mut results: Vec<Option<Result<String, EngineError>>> =
            names.iter().map(|_| None).collect();
        let mut seen = std::collections::HashSet::new();
        for (chunk_no, chunk) in names.chunks(CHUNK).enumerate() {
            let base = chunk_no * CHUNK;
            let mut held = Vec::new();
            for (i, name) in chunk.iter().enumerate() {
                match self.hold_for_removal(name, force, volumes, infra_too, &mut seen) {
                    Ok(h) => held.push(Held { idx: base + i, ..h }),
                    Err(e) => results[base + i] = Some(Err(e)),
                }
            }
            for (idx, r) in self.remove_held(held, volumes) {
                results[idx] = Some(r);
            }
        }
        Ok(results
            .into_iter()
            .zip(names)
            .map(|(r, n)| r.unwrap_or_else(|| Err(not_found(n))))
            .collect())
    }

    /// The checks of `rm` and the steps before the teardown: the `manually-stopped` marker
    /// (no restart), the restart lock, a pending restart cancelled, the pending marker.
    fn hold_for_removal(
        &mut self,
        name: &str,
        force: bool,
        volumes: bool,
        infra_too: bool,
        seen: &mut std::collections::HashSet<String>,
    ) -> Result<Held, EngineError> {
        let (row, mut rec, live) = self.load(name)?;
        let id = row.id.clone();
        if rec.pod_infra && !infra_too {
            if let Some(pod) = &rec.pod {
                if self.store().pod(pod)?.is_some() {
                    return Err(EngineError::Conflict(format!(
                        "container {id} is the infra container of pod {pod} and cannot be removed without removing the pod"
                    )));
                }
            }
        }
        // `rm x x`: the second one is gone by then, as in Docker.
        if !seen.insert(id.clone()) {
            return Err(not_found(name));
        }
        if (live.running || live.restarting) && !force {
            return Err(EngineError::Conflict(format!(
                "You cannot remove a {} container {id}. Stop the container before attempting removal or force remove",
                if live.restarting { "restarting" } else { "running" }
            )));
        }
        self.mark_manually_stopped(&id);
        let restart_lock = self.restart_lock(&id);
        self.cancel_restart(&id);
        let marker = pending::Marker::acquire(&self.pending_dir(), &id)
            .map_err(super::io_err("creating the container's pending marker"))?;
        rec.state.status = "removing".into();
        let record = serde_json::to_string(&rec)
            .map_err(|e| EngineError::Internal(format!("serialising container record: {e}")))?;
        let attributes = berth_runtime::events::container_attributes(&self.container_dir_of(&id));
        let spec = if volumes {
            self.spec_of(&id).ok()
        } else {
            None
        };
        Ok(Held {
            idx: 0,
            id,
            record,
            attributes: attributes.into_iter().collect(),
            spec,
            _restart_lock: restart_lock,
            _marker: marker,
        })
    }

    /// Marks the held containers `removing` (one transaction), tears them down in parallel,
    /// deletes the rows of those whose files are gone (one transaction), then their volumes
    /// and the `destroy` events. Markers and locks are released on return.
    fn remove_held(
        &mut self,
        held: Vec<Held>,
        volumes: bool,
    ) -> Vec<(usize, Result<String, EngineError>)> {
        if held.is_empty() {
            return Vec::new();
        }
        let mut out = Vec::with_capacity(held.len());
        // The tombstones. If the batch fails, each row on its own (and its own error).
        let rows: Vec<(&str, &str)> = held
            .iter()
            .map(|h| (h.id.as_str(), h.record.as_str()))
            .collect();
        let mut live: Vec<Held> = Vec::with_capacity(held.len());
        if self.store_mut().update_container_records(&rows).is_ok() {
            live = held;
        } else {
            for h in held {
                match self.store_mut().update_container_record(&h.id, &h.record) {
                    Ok(_) => live.push(h),
                    Err(e) => out.push((h.idx, Err(e.into()))),
                }
            }
        }

        let jobs: Vec<(PathBuf, PathBuf, PathBuf)> = live
            .iter()
            .map(|h| {
                (
                    self.container_dir_of(&h.id),
                    self.containers_dir().join(format!(".trash-{}", h.id)),
                    self.netns_path(&h.id),
                )
            })
            .collect();
        let torn = run_pool(&jobs, |(dir, trash, netns)| teardown(dir, trash, netns));
        // The network rows and helpers (the namespace went first, so its veth died with it).
        if let Ok(net) = self.networking() {
            for h in &live {
                let _ = net.release_container(&h.id);
            }
        }

        let mut gone: Vec<Held> = Vec::with_capacity(live.len());
        for (h, r) in live.into_iter().zip(torn) {
            match r {
                Ok(()) => gone.push(h),
                Err(e) => out.push((h.idx, Err(e))),
            }
        }
        let ids: Vec<&str> = gone.iter().map(|h| h.id.as_str()).collect();
        let mut deleted: Vec<Held> = Vec::with_capacity(gone.len());
        if self.store_mut().delete_containers(&ids).is_ok() {
            deleted = gone;
        } else {
            for h in gone {
                match self.store_mut().delete_container(&h.id) {
                    Ok(_) => deleted.push(h),
                    Err(e) => out.push((h.idx, Err(e.into()))),
                }
            }
        }
        for h in deleted {
            if volumes {
                self.remove_anonymous_volumes(h.spec.as_ref());
            }
            let pairs: Vec<(&str, &str)> = h
                .attributes
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            self.record_event("container", "destroy", &h.id, &pairs);
            out.push((h.idx, Ok(h.id)));
        }
        out
    }

    fn remove_anonymous_volumes(&mut self, spec: Option<&ContainerSpec>) {
        let Some(spec) = spec else { return };
        for (name, _) in &spec.volumes {
            // Anonymous volumes are named by 64 hex digits.
            if name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit()) {
                let _ = self.remove_volume(name, false);
            }
        }
    }

    /// The idempotent second half of `rm` for one container (a dead `rm`'s leftovers): stop
    /// everything, unmount, delete the directory, delete the row.
    pub(super) fn finish_remove(&mut self, id: &str, volumes: bool) -> Result<(), EngineError> {
        let spec = if volumes { self.spec_of(id).ok() } else { None };
        teardown(
            &self.container_dir_of(id),
            &self.containers_dir().join(format!(".trash-{id}")),
            &self.netns_path(id),
        )?;
        if let Ok(net) = self.networking() {
            let _ = net.release_container(id);
        }
        self.store_mut().delete_container(id)?;
        self.remove_anonymous_volumes(spec.as_ref());
        Ok(())
    }
}

/// Runs `f` over `jobs` on up to [`workers`] threads; the results in the jobs' order.
fn run_pool<J: Sync, R: Send>(jobs: &[J], f: impl Fn(&J) -> R + Sync) -> Vec<R> {
    let n = workers(jobs.len());
    if n <= 1 {
        return jobs.iter().map(&f).collect();
    }
    let next = AtomicUsize::new(0);
    let mut slots: Vec<Option<R>> = jobs.iter().map(|_| None).collect();
    let done: Vec<Vec<(usize, R)>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..n)
            .map(|_| {
                s.spawn(|| {
                    let mut mine = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(job) = jobs.get(i) else { break };
                        mine.push((i, f(job)));
                    }
                    mine
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    });
    for (i, r) in done.into_iter().flatten() {
        slots[i] = Some(r);
    }
    slots
        .into_iter()
        .map(|r| r.expect("every job ran once"))
        .collect()
}

/// Tears one container down on the host: its network namespace (its veth dies with it in the
/// kernel's own time), the runtime's processes, state, cgroups and mounts, then its directory,
/// moved aside first so a half-deleted directory is never taken for a container. Idempotent.
fn teardown(dir: &Path, trash: &Path, netns: &Path) -> Result<(), EngineError> {
    let _ = berth_network::netlink::remove_netns(netns);
    if dir.exists() {
        berth_runtime::cleanup(dir).map_err(EngineError::Runtime)?;
        if berth_runtime::rootfs::is_mounted(&dir.join("rootfs")) {
            let id = dir.file_name().unwrap_or_default().to_string_lossy();
            return Err(EngineError::Conflict(format!(
                "container {id}: its root filesystem is still mounted; retry the removal"
            )));
        }
        match std::fs::rename(dir, trash) {
            Ok(()) => {
                let _ = std::fs::remove_dir_all(trash);
            }
            Err(_) => {
                let _ = std::fs::remove_dir_all(dir);
            }
        }
    } else {
        let _ = std::fs::remove_dir_all(trash);
    }
    Ok(())
}
