//! `pull`: manifest → config → layers, each layer streamed once and unpacked as it arrives.

use super::{client_error, registry_and_repo, runtime, LayerStatus, Progress};
use crate::images::{commit_with_manifest, AssembledLayer};
use crate::limits::{check_depth, Expansion};
use crate::{Engine, EngineError};
use berth_oci::image::{chain_ids, Descriptor, ImageConfig, Manifest};
use berth_oci::layer::{apply_layer, decompress};
use berth_oci::{digest::HashingReader, media, Digest, Reference};
use berth_registry::client::{select_platform, Client, ClientError, Platform};
use berth_store::op::BlobWriter;
use berth_store::{StagedBlob, StagedLayer};
use bytes::Bytes;
use futures_util::StreamExt;
use std::io::{self, BufRead, Read, Write};
use std::sync::Arc;
use tokio::sync::{mpsc, watch, Semaphore};

/// How many layers download at once.
const PARALLEL_LAYERS: usize = 6;
/// Largest image configuration accepted.
pub(super) const MAX_CONFIG_SIZE: usize = 32 << 20;

#[derive(Debug, Clone, Default)]
pub struct PullOptions {
    /// `-a`: every tag of the repository.
    pub all_tags: bool,
    /// `--platform os/arch[/variant]`; the host's platform when `None`.
    pub platform: Option<String>,
    /// `-q`: the caller prints only the name (the engine reports progress regardless).
    pub quiet: bool,
    /// The registry credentials to use.
    pub credentials: super::Credentials,
}

#[derive(Debug, Clone)]
pub struct PullResult {
    /// The full name pulled: `docker.io/library/busybox:latest` (the repository with `-a`).
    pub reference: String,
    /// The image ID (of the last image with `-a`).
    pub id: String,
    /// The manifest (or index) digest the registry served.
    pub digest: String,
    /// Whether anything new arrived (`false`: "Image is up to date").
    pub downloaded: bool,
}

struct PulledOne {
    id: String,
    digest: String,
    downloaded: bool,
}

fn registry_digest(d: &Digest) -> berth_registry::Digest {
    d.to_string().parse().expect("a valid sha256 digest")
}

fn oci_digest(d: &berth_registry::Digest) -> Result<Digest, EngineError> {
    d.to_string().parse().map_err(|_| {
        EngineError::Download(format!("unsupported digest {d}: only sha256 is supported"))
    })
}

fn short(d: &Digest) -> String {
    d.hex().chars().take(12).collect()
}

impl Engine {
    /// `docker pull`: fetches `reference` (a tag, `latest` by default, or a digest) from its
    /// registry into the store. Every layer is verified (compressed digest and diff ID) before
    /// the image becomes visible; on any failure the store is unchanged.
    pub fn pull_image(
        &mut self,
        reference: &str,
        opts: &PullOptions,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<PullResult, EngineError> {
        let pulled = self.pull_image_inner(reference, opts, progress)?;
        let name = Reference::parse(&pulled.reference)
            .map(|r| r.familiar_string())
            .unwrap_or_else(|_| pulled.reference.clone());
        self.record_event("image", "pull", &name, &[("name", &name)]);
        Ok(pulled)
    }

    fn pull_image_inner(
        &mut self,
        reference: &str,
        opts: &PullOptions,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<PullResult, EngineError> {
        let parsed = Reference::parse(reference)?;
        let platform = match &opts.platform {
            Some(p) if !p.is_empty() => Some(Platform::parse(p).ok_or_else(|| {
                EngineError::InvalidArgument(format!(
                    "invalid platform {p:?}: expected os/arch[/variant]"
                ))
            })?),
            _ => None,
        };
        let rt = runtime()?;
        let client = super::client_with(&rt, &opts.credentials, parsed.domain())?;
        if opts.all_tags {
            if parsed.tag().is_some() || parsed.digest().is_some() {
                return Err(EngineError::InvalidArgument(
                    "tag can't be used with --all-tags/-a".into(),
                ));
            }
            let (registry, repo) = registry_and_repo(&parsed);
            let mut tags = rt
                .block_on(client.list_tags(&registry, &repo))
                .map_err(client_error)?;
            if tags.is_empty() {
                return Err(EngineError::Download(format!(
                    "no tags found for {}",
                    parsed.familiar_repository()
                )));
            }
            tags.sort();
            let mut downloaded = false;
            let mut last = None;
            for tag in tags {
                let r = parsed.with_tag(&tag)?;
                let one = self.pull_one(&rt, &client, &r, platform.as_ref(), progress)?;
                downloaded |= one.downloaded;
                last = Some(one);
            }
            let last = last.expect("at least one tag");
            let name = parsed.familiar_repository();
            progress(Progress::Message(if downloaded {
                format!("Status: Downloaded newer image for {name}")
            } else {
                format!("Status: Image is up to date for {name}")
            }));
            return Ok(PullResult {
                reference: parsed.repository(),
                id: last.id,
                digest: last.digest,
                downloaded,
            });
        }
        let r = if parsed.tag().is_none() && parsed.digest().is_none() {
            progress(Progress::Message("Using default tag: latest".into()));
            parsed.with_tag("latest")?
        } else {
            parsed
        };
        let one = self.pull_one(&rt, &client, &r, platform.as_ref(), progress)?;
        let name = r.familiar_string();
        progress(Progress::Message(if one.downloaded {
            format!("Status: Downloaded newer image for {name}")
        } else {
            format!("Status: Image is up to date for {name}")
        }));
        Ok(PullResult {
            reference: r.to_string(),
            id: one.id,
            digest: one.digest,
            downloaded: one.downloaded,
        })
    }

    fn pull_one(
        &mut self,
        rt: &tokio::runtime::Runtime,
        client: &Client,
        r: &Reference,
        platform: Option<&Platform>,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<PulledOne, EngineError> {
        let (registry, repo) = registry_and_repo(r);
        let wanted = match (r.digest(), r.tag()) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.to_string(),
            (None, None) => "latest".to_string(),
        };
        progress(Progress::Message(format!("{wanted}: Pulling from {repo}")));

        // The manifest, through the index when there is one.
        let top = rt
            .block_on(client.get_manifest(&registry, &repo, &wanted))
            .map_err(client_error)?;
        let top_digest = oci_digest(&top.digest)?;
        let from_index = media::is_index(&top.media_type);
        let m = if from_index {
            let want = platform.cloned().unwrap_or_else(Platform::host);
            let entry = select_platform(&top.bytes, &want).map_err(|e| match e {
                ClientError::NoMatchingPlatform(p) => EngineError::Registry {
                    message: format!("no matching manifest for {p} in the manifest list entries"),
                    cause: ClientError::NoMatchingPlatform(p),
                },
                e => client_error(e),
            })?;
            rt.block_on(client.get_manifest(&registry, &repo, &entry.digest.to_string()))
                .map_err(client_error)?
        } else {
            top.clone()
        };
        if !media::is_manifest(&m.media_type) {
            return Err(EngineError::Download(format!(
                "unsupported manifest media type {} for {}",
                m.media_type,
                r.familiar_string()
            )));
        }
        let manifest: Manifest = serde_json::from_slice(&m.bytes)
            .map_err(|e| EngineError::Download(format!("invalid manifest {}: {e}", m.digest)))?;
        // Before anything else is fetched: an image the overlay cannot mount is not worth a byte.
        check_depth(&r.familiar_string(), manifest.layers.len())?;
        let expansion = Expansion::from_env()?;

        // The configuration: its digest is the image ID.
        let config_desc = manifest.config.clone();
        if config_desc.size as usize > MAX_CONFIG_SIZE {
            return Err(EngineError::Download(format!(
                "image config {} is too large ({} bytes)",
                config_desc.digest, config_desc.size
            )));
        }
        let config_bytes = rt.block_on(fetch_small(
            client,
            &registry,
            &repo,
            &config_desc.digest,
            config_desc.size,
        ))?;
        let config_json = String::from_utf8(config_bytes)
            .map_err(|_| EngineError::Download("image config is not UTF-8 JSON".into()))?;
        let config: ImageConfig = serde_json::from_str(&config_json).map_err(|e| {
            EngineError::Download(format!("invalid image config {}: {e}", config_desc.digest))
        })?;
        if let (Some(want), false) = (platform, from_index) {
            if config.os != want.os || config.architecture != want.architecture {
                return Err(EngineError::Download(format!(
                    "image with reference {} was found but does not match the specified platform: wanted {}, actual: {}/{}",
                    r.familiar_string(),
                    want,
                    config.os,
                    config.architecture
                )));
            }
        }
        let diff_ids = config.rootfs.diff_ids.clone();
        if diff_ids.len() != manifest.layers.len() {
            return Err(EngineError::Download(format!(
                "image config {} lists {} layers but the manifest has {}",
                config_desc.digest,
                diff_ids.len(),
                manifest.layers.len()
            )));
        }
        let id = config_desc.digest.to_string();
        let repo_digest = format!("{}@{}", r.repository(), top_digest);
        let tags: Vec<String> = match (r.digest(), r.tag()) {
            (None, Some(_)) => vec![r.to_string()],
            _ => Vec::new(),
        };
        let name = tags.first().cloned().unwrap_or_else(|| repo_digest.clone());
        let previous = self.store().resolve_name(&name)?;
        let have_names = self.store().resolve_name(&repo_digest)?.as_deref() == Some(id.as_str());
        if previous.as_deref() == Some(id.as_str()) && have_names {
            progress(Progress::Message(format!("Digest: {top_digest}")));
            return Ok(PulledOne {
                id,
                digest: top_digest.to_string(),
                downloaded: false,
            });
        }

        // Layers: skip what the store has, stream the rest in parallel.
        let chains = chain_ids(&diff_ids);
        let mut op = self.store().begin_op()?;
        let mut assembled: Vec<Option<AssembledLayer>> = vec![None; manifest.layers.len()];
        let mut jobs = Vec::new();
        for (i, desc) in manifest.layers.iter().enumerate() {
            if !media::is_layer(&desc.media_type) {
                return Err(EngineError::Download(format!(
                    "layer {} has unsupported media type {}",
                    desc.digest, desc.media_type
                )));
            }
            let stored = self.store().layer(&chains[i])?;
            let have_blob = self.store().has_blob(&desc.digest)?;
            let label = short(&desc.digest);
            if let (Some(layer), true) = (&stored, have_blob) {
                progress(Progress::Layer {
                    id: label,
                    status: LayerStatus::AlreadyExists,
                    current: 0,
                    total: None,
                });
                assembled[i] = Some((desc.clone(), diff_ids[i].clone(), layer.size, None, None));
                continue;
            }
            progress(Progress::Layer {
                id: label,
                status: LayerStatus::Waiting,
                current: 0,
                total: Some(desc.size),
            });
            jobs.push(LayerJob {
                index: i,
                desc: desc.clone(),
                diff_id: diff_ids[i].clone(),
                // The client hashes the download and fails the stream on a mismatch, and
                // `stage_and_unpack` reads the stream to its end before it finishes the blob:
                // the store need not hash the same bytes again.
                blob: op.verified_blob_writer(&desc.digest)?,
                // A chain the store has only needs its blob: hash it, do not unpack it again.
                dir: if stored.is_none() {
                    Some(op.layer_dir()?)
                } else {
                    None
                },
                known_size: stored.map(|l| l.size),
                expansion,
            });
        }
        let fetched = rt.block_on(run_jobs(client, &registry, &repo, jobs, progress))?;
        for done in fetched {
            assembled[done.index] = Some((
                done.desc,
                done.diff_id,
                done.size,
                done.dir,
                Some(done.blob),
            ));
        }
        let assembled: Vec<AssembledLayer> = assembled
            .into_iter()
            .map(|a| a.expect("every layer assembled"))
            .collect();

        let config_blob = {
            let mut w = op.blob_writer()?;
            w.write_all(config_json.as_bytes())
                .map_err(|e| EngineError::io("staging the image config", e))?;
            w.finish(Some((&config_desc.digest, Some(config_desc.size))))?
        };
        let mut commit = commit_with_manifest(
            &mut op,
            config,
            config_json,
            config_blob,
            m.bytes.clone(),
            &m.media_type,
            assembled,
            tags,
            vec![repo_digest],
        )?;
        if from_index {
            // Keep the index too, so the repo digest names content the store has.
            let staged = op.stage_bytes(&top.bytes)?;
            commit.blobs.push(berth_store::BlobCommit {
                digest: staged.digest.clone(),
                size: staged.size,
                media_type: Some(top.media_type.clone()),
                staged: Some(staged),
            });
        }
        self.store_mut().commit_image(&mut op, &commit)?;
        op.finish();
        progress(Progress::Message(format!("Digest: {top_digest}")));
        Ok(PulledOne {
            id,
            digest: top_digest.to_string(),
            downloaded: true,
        })
    }
}

/// A small blob (a configuration) of `size` bytes (at most [`MAX_CONFIG_SIZE`]), read whole
/// and verified; the client stops a registry that sends more.
pub(super) async fn fetch_small(
    client: &Client,
    registry: &str,
    repo: &str,
    digest: &Digest,
    size: u64,
) -> Result<Vec<u8>, EngineError> {
    let (_, mut stream) = client
        .get_blob(registry, repo, &registry_digest(digest), Some(size))
        .await
        .map_err(client_error)?;
    let mut out = Vec::new();
    while let Some(chunk) = stream.next().await {
        out.extend_from_slice(&chunk.map_err(client_error)?);
    }
    Ok(out)
}

struct LayerJob {
    index: usize,
    desc: Descriptor,
    diff_id: Digest,
    blob: BlobWriter,
    dir: Option<StagedLayer>,
    known_size: Option<u64>,
    expansion: Expansion,
}

struct LayerDone {
    index: usize,
    desc: Descriptor,
    diff_id: Digest,
    size: u64,
    dir: Option<StagedLayer>,
    blob: StagedBlob,
}

/// Runs every layer job, at most [`PARALLEL_LAYERS`] at once, reporting progress on this
/// thread. On the first failure the others are told to stop, and this returns only once every
/// job (and the unpacking thread each one drives) has ended, so nothing writes into the
/// staging area afterwards.
async fn run_jobs(
    client: &Client,
    registry: &str,
    repo: &str,
    jobs: Vec<LayerJob>,
    progress: &mut dyn FnMut(Progress),
) -> Result<Vec<LayerDone>, EngineError> {
    let (events, mut event_rx) = mpsc::unbounded_channel::<Progress>();
    let (cancel, cancelled) = watch::channel(false);
    let limit = Arc::new(Semaphore::new(PARALLEL_LAYERS));
    let mut set = tokio::task::JoinSet::new();
    for job in jobs {
        let client = client.clone();
        let registry = registry.to_string();
        let repo = repo.to_string();
        let events = events.clone();
        let cancelled = cancelled.clone();
        let limit = limit.clone();
        set.spawn(async move {
            let _permit = limit.acquire_owned().await;
            if *cancelled.borrow() {
                return Err(None);
            }
            fetch_layer(client, registry, repo, job, events, cancelled)
                .await
                .map_err(Some)
        });
    }
    drop(events);
    let mut done = Vec::new();
    let mut first_error: Option<EngineError> = None;
    loop {
        tokio::select! {
            Some(ev) = event_rx.recv() => progress(ev),
            joined = set.join_next() => match joined {
                None => break,
                Some(Ok(Ok(d))) => done.push(d),
                Some(Ok(Err(e))) => {
                    if first_error.is_none() {
                        first_error = e;
                    }
                    let _ = cancel.send(true);
                }
                Some(Err(join)) => {
                    if first_error.is_none() {
                        first_error = Some(EngineError::Internal(format!("layer download failed: {join}")));
                    }
                    let _ = cancel.send(true);
                }
            }
        }
    }
    while let Ok(ev) = event_rx.try_recv() {
        progress(ev);
    }
    match first_error {
        Some(e) => Err(e),
        None => {
            if *cancelled.borrow() {
                return Err(EngineError::Canceled("pull cancelled".into()));
            }
            Ok(done)
        }
    }
}

/// Downloads one layer and feeds it to a blocking thread that stages and unpacks it.
async fn fetch_layer(
    client: Client,
    registry: String,
    repo: String,
    job: LayerJob,
    events: mpsc::UnboundedSender<Progress>,
    mut cancelled: watch::Receiver<bool>,
) -> Result<LayerDone, EngineError> {
    let label = short(&job.desc.digest);
    let total = job.desc.size;
    let (tx, rx) = mpsc::channel::<io::Result<Bytes>>(32);
    let index = job.index;
    let desc = job.desc.clone();
    let want_diff = job.diff_id.clone();
    let known_size = job.known_size;
    let expansion = job.expansion;
    let LayerJob { blob, dir, .. } = job;
    let unpacker = tokio::task::spawn_blocking(move || {
        stage_and_unpack(rx, blob, dir, &desc, known_size, expansion)
    });
    let mut feed_error: Option<EngineError> = None;
    match client
        .get_blob(
            &registry,
            &repo,
            &registry_digest(&job.desc.digest),
            Some(job.desc.size),
        )
        .await
    {
        Err(e) => feed_error = Some(client_error(e)),
        Ok((_, mut stream)) => {
            let mut current = 0u64;
            let mut reported = 0u64;
            loop {
                let next = tokio::select! {
                    biased;
                    _ = cancelled.changed() => {
                        feed_error = Some(EngineError::Canceled("pull cancelled".into()));
                        break;
                    }
                    next = stream.next() => next,
                };
                match next {
                    None => break,
                    Some(Ok(chunk)) => {
                        current += chunk.len() as u64;
                        if current - reported >= 256 << 10 {
                            reported = current;
                            let _ = events.send(Progress::Layer {
                                id: label.clone(),
                                status: LayerStatus::Downloading,
                                current,
                                total: Some(total),
                            });
                        }
                        if tx.send(Ok(chunk)).await.is_err() {
                            // The unpacker stopped: its error says why.
                            break;
                        }
                    }
                    Some(Err(e)) => {
                        let _ = tx
                            .send(Err(io::Error::new(
                                io::ErrorKind::InvalidData,
                                e.to_string(),
                            )))
                            .await;
                        feed_error = Some(client_error(e));
                        break;
                    }
                }
            }
        }
    }
    if feed_error.is_some() {
        let _ = tx
            .send(Err(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "download failed",
            )))
            .await;
    }
    drop(tx);
    let unpacked = unpacker.await;
    if let Some(e) = feed_error {
        return Err(e);
    }
    let (blob, dir, diff_id, size) =
        unpacked.map_err(|e| EngineError::Download(format!("unpacking layer {label}: {e}")))??;
    let _ = events.send(Progress::Layer {
        id: label.clone(),
        status: LayerStatus::DownloadComplete,
        current: total,
        total: Some(total),
    });
    if diff_id != want_diff {
        return Err(EngineError::Download(format!(
            "layer {}: uncompressed content {diff_id} does not match the diff ID {want_diff} in the image config",
            job.desc.digest
        )));
    }
    let _ = events.send(Progress::Layer {
        id: label,
        status: LayerStatus::PullComplete,
        current: total,
        total: Some(total),
    });
    Ok(LayerDone {
        index,
        desc: job.desc,
        diff_id,
        size,
        dir,
        blob,
    })
}

/// The compressed stream, one pass: every byte is written to the staged blob as it is read,
/// decompressed, hashed into the diff ID and (when `dir` is given) unpacked.
fn stage_and_unpack(
    rx: mpsc::Receiver<io::Result<Bytes>>,
    mut blob: BlobWriter,
    dir: Option<StagedLayer>,
    desc: &Descriptor,
    known_size: Option<u64>,
    expansion: Expansion,
) -> Result<(StagedBlob, Option<StagedLayer>, Digest, u64), EngineError> {
    let label = short(&desc.digest);
    let corrupt = |e: io::Error| {
        if e.raw_os_error() == Some(28) {
            EngineError::io(format!("staging layer {label}"), e)
        } else {
            EngineError::Download(format!("layer {label}: {e}"))
        }
    };
    let mut tee = ChannelTee {
        rx,
        current: Bytes::new(),
        done: false,
        sink: &mut blob,
    };
    // The format is told by the first four bytes, whatever size the first chunks have.
    tee.gather(4).map_err(corrupt)?;
    let (diff_id, size) = {
        let decompressed = decompress(&mut tee).map_err(corrupt)?;
        let mut bounded = expansion.bound(decompressed, desc.size);
        let mut hashing = HashingReader::new(&mut bounded);
        let unpacked = match &dir {
            Some(d) => apply_layer(&mut hashing, &d.path)
                .map(|stats| Some(stats.size))
                .map_err(|source| EngineError::Layer {
                    context: format!("unpacking layer {label}"),
                    source,
                }),
            None => Ok(None),
        };
        // Padding after the end-of-archive marker belongs to the diff ID too.
        let hashed = unpacked.and_then(|size| Ok((hashing.finish().map_err(corrupt)?, size)));
        if let Some(e) = bounded.limit_error(&format!("layer {}", desc.digest)) {
            return Err(e);
        }
        let ((diff_id, _), unpacked_size) = hashed?;
        (diff_id, unpacked_size.or(known_size).unwrap_or(0))
    };
    // Compressed bytes past the end of the compressed stream still belong to the blob, and the
    // client's digest check comes with the end of the stream.
    tee.drain().map_err(corrupt)?;
    let staged = blob.finish(Some((&desc.digest, Some(desc.size))))?;
    Ok((staged, dir, diff_id, size))
}

/// The compressed stream as a blocking `BufRead` over the chunks a download task sends. Each
/// chunk is written whole to the staged blob as it arrives and then lent to the decompressor
/// as it is, so the compressed bytes are not copied into a second read buffer.
struct ChannelTee<'a> {
    rx: mpsc::Receiver<io::Result<Bytes>>,
    current: Bytes,
    done: bool,
    sink: &'a mut BlobWriter,
}

impl ChannelTee<'_> {
    /// Receives the next non-empty chunk into `current` (empty when called) and writes it to
    /// the blob; false at the end of the stream.
    fn next_chunk(&mut self) -> io::Result<bool> {
        while !self.done {
            match self.rx.blocking_recv() {
                Some(Ok(chunk)) if chunk.is_empty() => {}
                Some(Ok(chunk)) => {
                    self.sink.write_all(&chunk)?;
                    self.current = chunk;
                    return Ok(true);
                }
                Some(Err(e)) => return Err(e),
                None => self.done = true,
            }
        }
        Ok(false)
    }

    /// Joins chunks until `current` holds at least `n` bytes (fewer only at the end).
    fn gather(&mut self, n: usize) -> io::Result<()> {
        while self.current.len() < n {
            let head = std::mem::take(&mut self.current);
            if !self.next_chunk()? {
                self.current = head;
                break;
            }
            let mut joined = bytes::BytesMut::with_capacity(head.len() + self.current.len());
            joined.extend_from_slice(&head);
            joined.extend_from_slice(&self.current);
            self.current = joined.freeze();
        }
        Ok(())
    }

    /// Reads (and so stages) the rest of the stream.
    fn drain(&mut self) -> io::Result<()> {
        self.current.clear();
        while self.next_chunk()? {
            self.current.clear();
        }
        Ok(())
    }
}

impl Read for ChannelTee<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let available = self.fill_buf()?;
        let n = buf.len().min(available.len());
        buf[..n].copy_from_slice(&available[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl BufRead for ChannelTee<'_> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.current.is_empty() {
            self.next_chunk()?;
        }
        Ok(&self.current)
    }
    fn consume(&mut self, n: usize) {
        bytes::Buf::advance(&mut self.current, n);
    }
}
