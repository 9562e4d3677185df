//! `berth build` and `berth builder prune`: the engine side of berth-build. The builder asks
//! the engine for base images (local first, pulled when missing or with `--pull`) and works on
//! the engine's store; the result is an ordinary image.

use crate::registry::PullPolicy;
use crate::{Engine, EngineError};
use berth_build::{BaseImage, Host, StepNetwork};
pub use berth_build::{BuildError, BuildOptions, BuildOutput, Progress, ProgressMode};
use berth_network::{files, netlink, Connect};
use berth_store::Store;
use std::collections::HashMap;

struct EngineHost<'a>(&'a mut Engine, HashMap<String, std::fs::File>);

impl Host for EngineHost<'_> {
    fn store(&mut self) -> &mut Store {
        self.0.store_mut()
    }

    /// Like a container's start on the default bridge (`containers::network`): the step's
    /// start lock `$RUNROOT/netns/<id>.lock` is held while it runs, so a concurrent network
    /// cleanup never takes its endpoint for a dead container's; once the lock is free (the
    /// step ended, or the build was killed) the endpoint has no container and any cleanup
    /// releases it.
    fn step_network_up(&mut self, id: &str) -> Result<StepNetwork, String> {
        let e = &*self.0;
        let ns = e.netns_path(id);
        let dir = ns.parent().map(|p| p.to_path_buf()).unwrap_or_default();
        std::fs::create_dir_all(&dir)
            .map_err(|err| format!("creating {}: {err}", dir.display()))?;
        let lock_path = dir.join(format!("{id}.lock"));
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|err| format!("creating {}: {err}", lock_path.display()))?;
        rustix::fs::flock(&lock, rustix::fs::FlockOperation::NonBlockingLockExclusive)
            .map_err(|err| format!("locking {}: {err}", lock_path.display()))?;
        self.1.insert(id.to_string(), lock);
        let e = &*self.0;
        e.ensure_default_bridge().map_err(|err| err.to_string())?;
        let net = e.networking().map_err(|err| err.to_string())?;
        netlink::create_netns(&ns).map_err(|err| err.to_string())?;
        let ep = net
            .connect(&Connect {
                container_id: id.into(),
                container_name: format!("build-{}", &id[..12.min(id.len())]),
                netns: ns.clone(),
                network: berth_network::DEFAULT_NETWORK.into(),
                aliases: Vec::new(),
                ip: None,
            })
            .map_err(|err| err.to_string())?;
        Ok(StepNetwork {
            netns: ns,
            hosts: files::hosts(&[], &[(ep.ip, vec!["buildkitsandbox".into()])]),
            resolv_conf: files::resolv_conf(&files::host_resolv_conf(), &[], &[], &[], false)
                .content,
        })
    }

    fn step_network_down(&mut self, id: &str) {
        self.0.release_network(id);
        if let Some(lock) = self.1.remove(id) {
            let _ = std::fs::remove_file(self.0.netns_path(id).with_extension("lock"));
            drop(lock);
        }
    }

    fn resolve_image(&mut self, name: &str, pull: bool) -> Result<BaseImage, String> {
        let policy = if pull {
            PullPolicy::Always
        } else {
            PullPolicy::Missing
        };
        let row = match self.0.ensure_image(name, policy, &mut |_| {}) {
            Ok(row) => row,
            Err(e) => {
                let local = self.0.resolve_image(name).is_ok();
                return Err(if local {
                    format!("failed to pull {name}: {e}")
                } else {
                    format!(
                        "pull access denied for {name}: not found locally and pulling failed ({e}) — `berth pull`, `berth load` or `berth import` it first"
                    )
                });
            }
        };
        let config = serde_json::from_str(&row.config)
            .map_err(|e| format!("image {}: config: {e}", row.id))?;
        let layers = self
            .0
            .store()
            .image_layers(&row.id)
            .map_err(|e| e.to_string())?;
        Ok(BaseImage {
            id: row.id,
            config,
            layers,
        })
    }
}

/// What `builder prune` removed.
#[derive(Debug, Clone, Default)]
pub struct BuildCachePruneReport {
    pub entries: u64,
    pub space_reclaimed: u64,
}

impl Engine {
    /// `docker build`: builds the image `opts` describes; progress goes to `progress`.
    pub fn build(
        &mut self,
        opts: &BuildOptions,
        progress: &mut Progress,
    ) -> Result<BuildOutput, BuildError> {
        let mut opts = opts.clone();
        if opts.runroot.as_os_str().is_empty() {
            opts.runroot = self.runroot().to_path_buf();
        }
        if opts.monitor.is_none() {
            opts.monitor = self.monitor_path().ok();
        }
        berth_build::build(&mut EngineHost(self, HashMap::new()), &opts, progress)
    }

    /// `docker builder prune`: removes the build cache (all of it, or entries unused for
    /// `older_than_secs`) and every layer only the cache kept.
    pub fn prune_build_cache(
        &mut self,
        older_than_secs: Option<u64>,
        all: bool,
    ) -> Result<BuildCachePruneReport, EngineError> {
        let cutoff = older_than_secs.map(|s| {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as i64)
                .unwrap_or(0);
            now - (s as i64) * 1_000_000_000
        });
        let (entries, removed) = self.store_mut().prune_cache(cutoff, all)?;
        let mounts = self.root().join("build-mounts");
        if older_than_secs.is_none() && all && mounts.exists() {
            let _ = std::fs::remove_dir_all(&mounts);
        }
        Ok(BuildCachePruneReport {
            entries,
            space_reclaimed: removed.layers.iter().map(|l| l.1).sum::<u64>()
                + removed.blobs.iter().map(|b| b.1).sum::<u64>(),
        })
    }

    /// Build cache rows and the size of the layers only they keep.
    pub fn build_cache_usage(&self) -> Result<(u64, u64), EngineError> {
        Ok(self.store().cache_usage()?)
    }
}
