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

struct EngineHost<'a>(&'a mut Engine, HashMap<String, std::fs::File>, bool);

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
            hosts: files::hosts(&[], &[(ep.ip.into(), vec!["buildkitsandbox".into()])]),
            resolv_conf: files::resolv_conf(&files::host_resolv_conf(), &[], &[], &[], false)
                .content,
        })
    }

    /// The Python requirement checks and the provenance records (`crate::python`).
    fn finish(&mut self, image: &berth_build::Finished) -> Result<berth_build::Finish, BuildError> {
        crate::python::finish(self.0, image, self.2)
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

/// Counts what passes and fails once more than `max` bytes went through.
struct Bounded<R> {
    inner: R,
    seen: u64,
    max: u64,
}

impl<R: std::io::Read> std::io::Read for Bounded<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.seen += n as u64;
        if self.seen > self.max {
            return Err(std::io::Error::other(format!(
                "the build context is larger than {} bytes (BERTH_BUILD_CONTEXT_MAX); leave big files out with .dockerignore or raise the limit",
                self.max
            )));
        }
        Ok(n)
    }
}

/// The Dockerfile's path inside an unpacked context: relative, never leaving it.
fn dockerfile_in(context: &std::path::Path, name: &str) -> Result<std::path::PathBuf, BuildError> {
    let name = if name.is_empty() { "Dockerfile" } else { name };
    let mut out = context.to_path_buf();
    for c in std::path::Path::new(name).components() {
        match c {
            std::path::Component::Normal(p) => out.push(p),
            std::path::Component::CurDir => {}
            _ => {
                return Err(BuildError::Invalid(format!(
                    "invalid dockerfile {name:?}: name a file inside the build context, without \"..\" or a leading \"/\""
                )))
            }
        }
    }
    Ok(out)
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
        let strict = opts.strict;
        berth_build::build(
            &mut EngineHost(self, HashMap::new(), strict),
            &opts,
            progress,
        )
    }

    /// The Engine API's `POST /build`: `context` is the build context as a tar (plain, gzip
    /// or zstd), unpacked with `cp`'s path safety into this operation's staging area (so a
    /// crash leaves nothing the next command does not clean) and bounded by
    /// `BERTH_BUILD_CONTEXT_MAX`; `dockerfile` names the Dockerfile inside it. The context is
    /// removed when the build ends.
    pub fn build_archive(
        &mut self,
        context: &mut dyn std::io::Read,
        dockerfile: &str,
        opts: &BuildOptions,
        progress: &mut Progress,
    ) -> Result<BuildOutput, BuildError> {
        let max =
            crate::limits::build_context_max().map_err(|e| BuildError::Failed(e.to_string()))?;
        let mut op = self.store().begin_op()?;
        let dir = op.scratch_path("context");
        std::fs::create_dir(&dir)
            .map_err(|e| BuildError::io(format!("creating {}", dir.display()), e))?;
        let reader = std::io::BufReader::new(context);
        let plain = berth_oci::layer::decompress(reader)
            .map_err(|e| BuildError::Failed(format!("reading the build context: {e}")))?;
        berth_oci::layer::apply_archive(
            Bounded {
                inner: plain,
                seen: 0,
                max,
            },
            &dir,
        )
        .map_err(|e| BuildError::Failed(format!("unpacking the build context: {e}")))?;
        let df = dockerfile_in(&dir, dockerfile)?;
        if !df.is_file() {
            return Err(BuildError::NotFound(format!(
                "Cannot locate specified Dockerfile: {}",
                if dockerfile.is_empty() {
                    "Dockerfile"
                } else {
                    dockerfile
                }
            )));
        }
        let mut opts = opts.clone();
        opts.context = Some(dir);
        opts.dockerfile = Some(df);
        opts.dockerfile_text = None;
        // The unpacked context lies in the engine's store: only a `.git` sent with it counts.
        opts.git_above_context = false;
        let out = self.build(&opts, progress);
        op.finish();
        out
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
        // The context files' digests kept between builds (berth-build's `build-hashes`).
        let hashes = self.root().join("build-hashes");
        if older_than_secs.is_none() && all && hashes.exists() {
            let _ = std::fs::remove_dir_all(&hashes);
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
