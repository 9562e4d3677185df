//! `push`: upload what the registry lacks, then the manifest.

use super::{client_error, registry_and_repo, runtime, LayerStatus, Progress};
use crate::{Engine, EngineError};
use berth_oci::image::{Descriptor, Manifest};
use berth_oci::{media, Digest, Reference};
use berth_registry::client::Client;
use berth_store::{ImageCommit, LayerCommit};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::{mpsc, Semaphore};

/// How many blobs upload at once.
const PARALLEL_BLOBS: usize = 5;

#[derive(Debug, Clone, Default)]
pub struct PushOptions {
    /// `-a`: every tag of the repository.
    pub all_tags: bool,
    /// `-q`: the caller prints only the name.
    pub quiet: bool,
    /// The registry credentials to use.
    pub credentials: super::Credentials,
}

#[derive(Debug, Clone)]
pub struct PushResult {
    /// The full name pushed (the last tag with `-a`).
    pub reference: String,
    /// The digest of the manifest the registry now has.
    pub digest: String,
    /// The manifest's size in bytes.
    pub size: u64,
}

fn registry_digest(d: &Digest) -> berth_registry::Digest {
    d.to_string().parse().expect("a valid sha256 digest")
}

fn short(d: &Digest) -> String {
    d.hex().chars().take(12).collect()
}

/// One blob to upload: where it lives, and repositories of the same registry it may be
/// mounted from.
struct BlobJob {
    desc: Descriptor,
    path: PathBuf,
    shown: bool,
    mount_from: Vec<String>,
}

impl Engine {
    /// `docker push`: uploads the image tagged `name` (`latest` by default) to its registry.
    pub fn push_image(
        &mut self,
        name: &str,
        opts: &PushOptions,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<PushResult, EngineError> {
        let pushed = self.push_image_inner(name, opts, progress)?;
        let familiar = Reference::parse(&pushed.reference)
            .map(|r| r.familiar_string())
            .unwrap_or_else(|_| pushed.reference.clone());
        self.record_event("image", "push", &familiar, &[("name", &familiar)]);
        Ok(pushed)
    }

    fn push_image_inner(
        &mut self,
        name: &str,
        opts: &PushOptions,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<PushResult, EngineError> {
        let parsed = Reference::parse(name)?;
        if parsed.digest().is_some() {
            return Err(EngineError::InvalidArgument(
                "cannot push a digest reference".into(),
            ));
        }
        let refs: Vec<Reference> = if opts.all_tags {
            if parsed.tag().is_some() {
                return Err(EngineError::InvalidArgument(
                    "tag can't be used with --all-tags/-a".into(),
                ));
            }
            let repo = parsed.repository();
            let mut refs: Vec<Reference> = self
                .store()
                .images()?
                .into_iter()
                .flat_map(|row| row.tags)
                .filter_map(|t| Reference::parse(&t).ok())
                .filter(|r| r.repository() == repo)
                .collect();
            refs.sort_by(|a, b| a.tag().cmp(&b.tag()));
            if refs.is_empty() {
                return Err(EngineError::NotFound(format!(
                    "An image does not exist locally with the tag: {}",
                    parsed.familiar_repository()
                )));
            }
            refs
        } else if parsed.tag().is_none() {
            vec![parsed.with_tag("latest")?]
        } else {
            vec![parsed.clone()]
        };
        // Resolve everything before sending a byte.
        let mut images = Vec::new();
        for r in &refs {
            let id = self.store().resolve_name(&r.to_string())?.ok_or_else(|| {
                EngineError::NotFound(format!(
                    "An image does not exist locally with the tag: {}",
                    r.familiar_string()
                ))
            })?;
            let row = self
                .store()
                .image(&id)?
                .ok_or_else(|| EngineError::ImageNotFound(r.familiar_string()))?;
            images.push((r.clone(), row));
        }
        progress(Progress::Message(format!(
            "The push refers to repository [{}]",
            parsed.repository()
        )));
        let rt = runtime()?;
        let client = super::client_with(&rt, &opts.credentials, parsed.domain())?;
        let mut last = None;
        for (r, row) in images {
            let result = self.push_one(&rt, &client, &r, &row, progress)?;
            last = Some(result);
        }
        Ok(last.expect("at least one image"))
    }

    fn push_one(
        &mut self,
        rt: &tokio::runtime::Runtime,
        client: &Client,
        r: &Reference,
        row: &berth_store::ImageRow,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<PushResult, EngineError> {
        let (registry, repo) = registry_and_repo(r);
        let manifest_digest: Digest = row
            .manifest_digest
            .as_deref()
            .and_then(|d| d.parse().ok())
            .ok_or_else(|| {
                EngineError::FailedPrecondition(format!("image {} has no manifest to push", row.id))
            })?;
        let media_type = row
            .manifest_media_type
            .clone()
            .unwrap_or_else(|| media::OCI_MANIFEST.to_string());
        let manifest_bytes = self.store().read_blob(&manifest_digest)?;
        let manifest: Manifest = serde_json::from_slice(&manifest_bytes).map_err(|e| {
            EngineError::Internal(format!("stored manifest {manifest_digest}: {e}"))
        })?;
        let sources = self.mount_sources(&registry, &repo)?;
        let mut jobs = Vec::new();
        for (desc, shown) in manifest
            .layers
            .iter()
            .rev()
            .map(|d| (d, true))
            .chain(std::iter::once((&manifest.config, false)))
        {
            let path = self.store().blob_path(&desc.digest);
            if !path.exists() {
                return Err(EngineError::Store(berth_store::StoreError::BlobMissing(
                    desc.digest.to_string(),
                )));
            }
            if jobs.iter().any(|j: &BlobJob| j.desc.digest == desc.digest) {
                continue;
            }
            if shown {
                progress(Progress::Layer {
                    id: short(&desc.digest),
                    status: LayerStatus::Preparing,
                    current: 0,
                    total: Some(desc.size),
                });
            }
            jobs.push(BlobJob {
                desc: desc.clone(),
                path,
                shown,
                mount_from: sources
                    .get(&desc.digest.to_string())
                    .cloned()
                    .unwrap_or_default(),
            });
        }
        rt.block_on(upload_all(client, &registry, &repo, jobs, progress))?;
        let tag = r.tag().unwrap_or("latest").to_string();
        let digest = rt
            .block_on(client.put_manifest(&registry, &repo, &tag, &media_type, &manifest_bytes))
            .map_err(client_error)?;
        let size = manifest_bytes.len() as u64;
        // The build's records (provenance, SBOM) as referrers of what was just pushed.
        let created = serde_json::from_str::<serde_json::Value>(&row.config)
            .ok()
            .and_then(|c| c["created"].as_str().map(str::to_string))
            .unwrap_or_default();
        self.push_referrers(
            rt,
            client,
            &row.id,
            &created,
            &super::referrers::Subject {
                registry: &registry,
                repo: &repo,
                media_type: &media_type,
                digest: &digest.to_string(),
                size,
            },
        )?;
        progress(Progress::Message(format!(
            "{tag}: digest: {digest} size: {size}"
        )));
        self.record_repo_digest(row, &format!("{}@{}", r.repository(), digest))?;
        Ok(PushResult {
            reference: r.to_string(),
            digest: digest.to_string(),
            size,
        })
    }

    /// Blob digest → other repositories of `registry` that images with that blob were pulled
    /// from or pushed to (by their repo digests): candidates for a cross-repository mount.
    fn mount_sources(
        &self,
        registry: &str,
        repo: &str,
    ) -> Result<HashMap<String, Vec<String>>, EngineError> {
        let mut out: HashMap<String, Vec<String>> = HashMap::new();
        for row in self.store().images()? {
            let repos: Vec<String> = row
                .repo_digests
                .iter()
                .filter_map(|n| Reference::parse(n).ok())
                .filter(|r| r.domain() == registry && r.path() != repo)
                .map(|r| r.path().to_string())
                .collect();
            if repos.is_empty() {
                continue;
            }
            for layer in self.store().image_layers(&row.id)? {
                if let Some(d) = layer.blob_digest {
                    let e = out.entry(d).or_default();
                    for r in &repos {
                        if !e.contains(r) {
                            e.push(r.clone());
                        }
                    }
                }
            }
        }
        Ok(out)
    }

    /// Adds `name` (`repo@sha256:…`) to the image's repo digests.
    fn record_repo_digest(
        &mut self,
        row: &berth_store::ImageRow,
        name: &str,
    ) -> Result<(), EngineError> {
        if row.repo_digests.iter().any(|n| n == name) {
            return Ok(());
        }
        let parse = |s: &str| -> Result<Digest, EngineError> {
            s.parse().map_err(|_| {
                EngineError::Store(berth_store::StoreError::Corrupt(format!("digest {s}")))
            })
        };
        let mut layers = Vec::new();
        for l in self.store().image_layers(&row.id)? {
            layers.push(LayerCommit {
                chain_id: parse(&l.chain_id)?,
                diff_id: parse(&l.diff_id)?,
                parent: l.parent.as_deref().map(parse).transpose()?,
                size: l.size,
                blob: None,
                staged: None,
            });
        }
        // Everything exists already: the commit only adds the name, in one transaction.
        let commit = ImageCommit {
            id: parse(&row.id)?,
            config_json: row.config.clone(),
            created: row.created.clone(),
            manifest: None,
            blobs: Vec::new(),
            layers,
            tags: Vec::new(),
            repo_digests: vec![name.to_string()],
            parent: row.parent.clone(),
        };
        let mut op = self.store().begin_op()?;
        self.store_mut().commit_image(&mut op, &commit)?;
        op.finish();
        Ok(())
    }
}

async fn upload_all(
    client: &Client,
    registry: &str,
    repo: &str,
    jobs: Vec<BlobJob>,
    progress: &mut dyn FnMut(Progress),
) -> Result<(), EngineError> {
    let (events, mut event_rx) = mpsc::unbounded_channel::<Progress>();
    let limit = Arc::new(Semaphore::new(PARALLEL_BLOBS));
    let mut set = tokio::task::JoinSet::new();
    for job in jobs {
        let client = client.clone();
        let registry = registry.to_string();
        let repo = repo.to_string();
        let events = events.clone();
        let limit = limit.clone();
        set.spawn(async move {
            let _permit = limit.acquire_owned().await;
            upload_one(&client, &registry, &repo, job, &events).await
        });
    }
    drop(events);
    let mut first_error = None;
    loop {
        tokio::select! {
            Some(ev) = event_rx.recv() => progress(ev),
            joined = set.join_next() => match joined {
                None => break,
                Some(Ok(Ok(()))) => {}
                Some(Ok(Err(e))) => {
                    if first_error.is_none() {
                        first_error = Some(e);
                        set.abort_all();
                    }
                }
                Some(Err(join)) => {
                    if first_error.is_none() && !join.is_cancelled() {
                        first_error = Some(EngineError::Internal(format!("upload failed: {join}")));
                        set.abort_all();
                    }
                }
            }
        }
    }
    while let Ok(ev) = event_rx.try_recv() {
        progress(ev);
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

async fn upload_one(
    client: &Client,
    registry: &str,
    repo: &str,
    job: BlobJob,
    events: &mpsc::UnboundedSender<Progress>,
) -> Result<(), EngineError> {
    let digest = registry_digest(&job.desc.digest);
    let label = short(&job.desc.digest);
    let report = |status: LayerStatus| {
        if job.shown {
            let _ = events.send(Progress::Layer {
                id: label.clone(),
                status,
                current: job.desc.size,
                total: Some(job.desc.size),
            });
        }
    };
    if client
        .blob_exists(registry, repo, &digest)
        .await
        .map_err(client_error)?
        .is_some()
    {
        report(LayerStatus::LayerAlreadyExists);
        return Ok(());
    }
    for from in &job.mount_from {
        if client
            .mount_blob(registry, repo, from, &digest)
            .await
            .unwrap_or(false)
        {
            report(LayerStatus::MountedFrom(from.clone()));
            return Ok(());
        }
    }
    report(LayerStatus::Pushing);
    let file = tokio::fs::File::open(&job.path)
        .await
        .map_err(|e| EngineError::io(format!("opening {}", job.path.display()), e))?;
    let body = ByteProgress {
        inner: file,
        sent: 0,
        reported: 0,
        total: job.desc.size,
        label: label.clone(),
        events: job.shown.then(|| events.clone()),
    };
    client
        .push_blob(registry, repo, &digest, Some(job.desc.size), body)
        .await
        .map_err(client_error)?;
    report(LayerStatus::Pushed);
    Ok(())
}

/// A blob upload's body that reports the bytes sent as `Pushing` progress (at most about a
/// hundred reports per blob, and none below 512 KiB of change), so `push` shows byte counts
/// as Docker's does.
struct ByteProgress<R> {
    inner: R,
    sent: u64,
    reported: u64,
    total: u64,
    label: String,
    events: Option<mpsc::UnboundedSender<Progress>>,
}

impl<R: tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for ByteProgress<R> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let poll = std::pin::Pin::new(&mut self.inner).poll_read(cx, buf);
        if let std::task::Poll::Ready(Ok(())) = &poll {
            let this = &mut *self;
            this.sent += (buf.filled().len() - before) as u64;
            let step = (this.total / 100).max(512 * 1024);
            if this.sent - this.reported >= step || (this.sent == this.total && this.sent > 0) {
                this.reported = this.sent;
                if let Some(events) = &this.events {
                    let _ = events.send(Progress::Layer {
                        id: this.label.clone(),
                        status: LayerStatus::Pushing,
                        current: this.sent,
                        total: Some(this.total),
                    });
                }
            }
        }
        poll
    }
}
