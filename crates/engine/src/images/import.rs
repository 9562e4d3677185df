//! `import`: a root filesystem tarball becomes a one-layer image.

use super::changes::apply_changes;
use crate::limits::{Counting, Expansion, Stall};
use crate::{Engine, EngineError};
use berth_oci::image::{Descriptor, History, ImageConfig, Manifest, RootFs};
use berth_oci::layer::{apply_layer, decompress};
use berth_oci::reference::Reference;
use berth_oci::{media, Digest};
use berth_store::{BlobCommit, ImageCommit, LayerCommit, Op};
use std::fs::File;
use std::io::{self, BufReader, Read, Write};
use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

/// Where `import` reads the tarball from.
#[derive(Debug, Clone)]
pub enum ImportSource {
    File(PathBuf),
    Stdin,
    Url(String),
    /// A stream the front end hands over (the API's request body), read once.
    Stream(ImportStream),
}

/// A byte stream for [`ImportSource::Stream`]; the first `import_image` takes it.
#[derive(Clone)]
pub struct ImportStream(Arc<std::sync::Mutex<Option<Box<dyn Read + Send>>>>);

impl ImportStream {
    pub fn new(r: impl Read + Send + 'static) -> ImportStream {
        ImportStream(Arc::new(std::sync::Mutex::new(Some(Box::new(r)))))
    }
}

impl std::fmt::Debug for ImportStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ImportStream")
    }
}

impl ImportSource {
    /// `-` is stdin, `http(s)://…` a URL, anything else a file.
    pub fn from_arg(arg: &str) -> ImportSource {
        if arg == "-" {
            ImportSource::Stdin
        } else if arg.starts_with("http://") || arg.starts_with("https://") {
            ImportSource::Url(arg.to_string())
        } else {
            ImportSource::File(PathBuf::from(arg))
        }
    }

    fn describe(&self) -> String {
        match self {
            ImportSource::File(p) => p.display().to_string(),
            ImportSource::Stdin | ImportSource::Stream(_) => "-".to_string(),
            ImportSource::Url(u) => u.clone(),
        }
    }

    /// The tarball's bytes, and (for a URL) where a stalled download says why it stopped.
    fn open(&self) -> Result<(Box<dyn Read>, Stall), EngineError> {
        let stall = Stall::default();
        match self {
            ImportSource::Stdin => Ok((Box::new(io::stdin().lock()), stall)),
            ImportSource::Stream(s) => {
                let taken = s.0.lock().ok().and_then(|mut r| r.take());
                let r = taken.ok_or_else(|| {
                    EngineError::InvalidArgument("the import stream was already read".into())
                })?;
                Ok((r, stall))
            }
            ImportSource::File(p) => {
                let f = File::open(p)
                    .map_err(|e| EngineError::io(format!("open {}", p.display()), e))?;
                Ok((Box::new(f), stall))
            }
            ImportSource::Url(url) => {
                // The same time bounds as a registry: the server must answer and keep sending.
                let limits = crate::limits::registry_client_config()?;
                let nonzero = |d: std::time::Duration| Some(d).filter(|d| !d.is_zero());
                let agent: ureq::Agent = ureq::Agent::config_builder()
                    .timeout_connect(nonzero(limits.connect_timeout))
                    .timeout_recv_response(nonzero(limits.timeout))
                    .timeout_per_read(nonzero(limits.timeout))
                    .build()
                    .into();
                let response = agent.get(url).call().map_err(|e| {
                    EngineError::Download(format!(
                        "downloading {url}: {e} ({})",
                        crate::limits::TIMEOUT_HINT
                    ))
                })?;
                let paced = crate::limits::Paced::new(
                    response.into_body().into_reader(),
                    limits.timeout,
                    limits.min_speed,
                    url.clone(),
                    stall.clone(),
                );
                Ok((Box::new(paced), stall))
            }
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// `REPO[:TAG]` to tag the image with.
    pub reference: Option<String>,
    /// `-c/--change` Dockerfile instructions.
    pub changes: Vec<String>,
    /// `-m/--message`: the history comment.
    pub message: Option<String>,
    /// `SOURCE_DATE_EPOCH`: `created` and the history entry, so the same archive imports as
    /// the same image. `None`: the clock, as Docker. The archive itself is stored as given.
    pub source_date_epoch: Option<i64>,
}

/// Copies everything read from `inner` into `sink` as well.
pub(crate) struct TeeReader<'a, R, W> {
    pub inner: R,
    pub sink: &'a mut W,
    pub total: u64,
}

impl<R: Read, W: Write> Read for TeeReader<'_, R, W> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.sink.write_all(&buf[..n])?;
        self.total += n as u64;
        Ok(n)
    }
}

impl Engine {
    /// Imports a root filesystem tarball (plain, gzip or zstd) as a one-layer image and returns
    /// its ID. The store is unchanged if anything fails.
    pub fn import_image(
        &mut self,
        source: &ImportSource,
        opts: &ImportOptions,
    ) -> Result<Digest, EngineError> {
        // Check everything the user typed before reading a byte.
        let reference = match &opts.reference {
            Some(r) => {
                let r = Reference::parse_with_default_tag(r)?;
                if r.digest().is_some() {
                    return Err(EngineError::InvalidArgument(
                        "import: a digest reference cannot be used as the image name; give REPO[:TAG]".into(),
                    ));
                }
                Some(r)
            }
            None => None,
        };
        let mut config = ImageConfig {
            architecture: berth_oci::image::host_platform().architecture,
            os: "linux".into(),
            ..Default::default()
        };
        apply_changes(&mut config, &opts.changes)?;

        let mut op = self.store().begin_op()?;
        let (input, stall) = source.open()?;
        let (diff_id, size, layer_dir, blob) =
            unpack_single_layer(&mut op, input, &source.describe(), &stall)?;

        let created = super::created_rfc3339(opts.source_date_epoch);
        config.created = Some(created.clone());
        config.rootfs = RootFs {
            kind: "layers".into(),
            diff_ids: vec![diff_id.clone()],
        };
        let comment = opts
            .message
            .clone()
            .unwrap_or_else(|| format!("Imported from {}", source.describe()));
        config.history = vec![History {
            created: Some(created.clone()),
            comment: Some(comment),
            ..Default::default()
        }];

        let layer_desc = Descriptor::new(media::OCI_LAYER, blob.digest.clone(), blob.size);
        let commit = build_commit(
            &mut op,
            config,
            vec![(layer_desc, diff_id, size, Some(layer_dir), Some(blob))],
            reference.iter().map(|r| r.to_string()).collect(),
            Vec::new(),
        )?;
        let id = commit.id.clone();
        self.store_mut().commit_image(&mut op, &commit)?;
        op.finish();
        Ok(id)
    }
}

/// Streams `input` once: decompressed, copied into a blob, hashed into the diff ID, and
/// unpacked into a fresh layer directory.
fn unpack_single_layer(
    op: &mut Op,
    input: Box<dyn Read>,
    source: &str,
    stall: &Stall,
) -> Result<
    (
        Digest,
        u64,
        berth_store::StagedLayer,
        berth_store::StagedBlob,
    ),
    EngineError,
> {
    // The tarball's length is not known up front (stdin, a URL): the expansion bound follows
    // the compressed bytes read so far.
    let expansion = Expansion::from_env()?;
    let consumed = Arc::new(AtomicU64::new(0));
    let counted = Counting {
        inner: input,
        count: consumed.clone(),
    };
    let buffered = BufReader::with_capacity(1 << 20, counted);
    let decompressed =
        decompress(buffered).map_err(|e| EngineError::io(format!("reading {source}"), e))?;
    let mut bounded = expansion.bound_counted(decompressed, consumed);
    let layer = op.layer_dir()?;
    let mut blob = op.blob_writer()?;
    let mut tee = TeeReader {
        inner: &mut bounded,
        sink: &mut blob,
        total: 0,
    };
    let unpacked = apply_layer(&mut tee, &layer.path)
        .map_err(|source_err| EngineError::Layer {
            context: format!("importing {source}"),
            source: source_err,
        })
        .and_then(|stats| {
            // Trailing padding after the end-of-archive marker belongs to the diff ID too.
            io::copy(&mut tee, &mut io::sink())
                .map_err(|e| EngineError::io(format!("reading {source}"), e))?;
            Ok(stats)
        });
    let total = tee.total;
    if let Some(e) = bounded.limit_error(source) {
        return Err(e);
    }
    if let Some(why) = stall.lock().unwrap().take() {
        return Err(EngineError::Download(why));
    }
    let stats = unpacked?;
    if total == 0 {
        return Err(EngineError::InvalidArchive(format!(
            "{source} is empty: expected a tar archive"
        )));
    }
    let staged = blob.finish(None)?;
    Ok((staged.digest.clone(), stats.size, layer, staged))
}

/// One layer of an image being assembled: its descriptor in the manifest, diff ID, unpacked
/// size, and the staged directory and blob when they are new to the store.
pub(crate) type AssembledLayer = (
    Descriptor,
    Digest,
    u64,
    Option<berth_store::StagedLayer>,
    Option<berth_store::StagedBlob>,
);

/// Writes the configuration and an OCI manifest for `layers` and returns the commit that makes
/// the image visible.
pub(crate) fn build_commit(
    op: &mut Op,
    config: ImageConfig,
    layers: Vec<AssembledLayer>,
    tags: Vec<String>,
    repo_digests: Vec<String>,
) -> Result<ImageCommit, EngineError> {
    let config_json = serde_json::to_string(&config)
        .map_err(|e| EngineError::Internal(format!("image config: {e}")))?;
    let config_blob = op.stage_bytes(config_json.as_bytes())?;
    let manifest = Manifest::oci(
        config_blob.digest.clone(),
        config_blob.size,
        layers.iter().map(|l| l.0.clone()).collect(),
    );
    let manifest_json = serde_json::to_vec(&manifest)
        .map_err(|e| EngineError::Internal(format!("manifest: {e}")))?;
    commit_with_manifest(
        op,
        config,
        config_json,
        config_blob,
        manifest_json,
        media::OCI_MANIFEST,
        layers,
        tags,
        repo_digests,
    )
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn commit_with_manifest(
    op: &mut Op,
    config: ImageConfig,
    config_json: String,
    config_blob: berth_store::StagedBlob,
    manifest_json: Vec<u8>,
    manifest_media_type: &str,
    layers: Vec<AssembledLayer>,
    tags: Vec<String>,
    repo_digests: Vec<String>,
) -> Result<ImageCommit, EngineError> {
    // Whatever made the image (pull, load, import, commit, build), the overlay must mount it.
    crate::limits::check_depth("the image", layers.len())?;
    let manifest_blob = op.stage_bytes(&manifest_json)?;
    let diff_ids: Vec<Digest> = layers.iter().map(|l| l.1.clone()).collect();
    let chains = berth_oci::image::chain_ids(&diff_ids);
    let mut blobs = vec![
        BlobCommit {
            digest: config_blob.digest.clone(),
            size: config_blob.size,
            media_type: Some(media::OCI_CONFIG.into()),
            staged: Some(config_blob.clone()),
        },
        BlobCommit {
            digest: manifest_blob.digest.clone(),
            size: manifest_blob.size,
            media_type: Some(manifest_media_type.into()),
            staged: Some(manifest_blob.clone()),
        },
    ];
    let mut layer_commits = Vec::new();
    for (i, (desc, diff_id, size, dir, blob)) in layers.into_iter().enumerate() {
        blobs.push(BlobCommit {
            digest: desc.digest.clone(),
            size: desc.size,
            media_type: Some(desc.media_type.clone()),
            staged: blob,
        });
        layer_commits.push(LayerCommit {
            chain_id: chains[i].clone(),
            diff_id,
            parent: if i == 0 {
                None
            } else {
                Some(chains[i - 1].clone())
            },
            size,
            blob: Some((desc.digest.clone(), desc.media_type.clone(), desc.size)),
            staged: dir,
        });
    }
    Ok(ImageCommit {
        id: config_blob.digest.clone(),
        config_json,
        created: config.created.clone().unwrap_or_default(),
        manifest: Some((manifest_blob.digest.clone(), manifest_media_type.into())),
        blobs,
        layers: layer_commits,
        tags,
        repo_digests,
        parent: None,
    })
}
