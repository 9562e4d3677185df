//! `load` and `save`: docker-archive (`docker save`'s format) and OCI image layouts as tar.
//!
//! `load` streams the archive once into staged blobs (hashing as it goes, so memory does not
//! depend on layer size), then reads `manifest.json` (docker-archive) or `index.json` (OCI
//! layout), verifies every digest and diff ID while unpacking the layers, and only then commits
//! the images. `save` writes the layout Docker 25+ writes: a docker-archive `manifest.json` and
//! an OCI `index.json` over the same `blobs/sha256/` files, which `docker load`, `podman load`
//! and `skopeo` all accept.

use super::familiar;
use super::import::{commit_with_manifest, AssembledLayer};
use crate::limits::{check_depth, Expansion};
use crate::types::LoadedImage;
use crate::{Engine, EngineError};
use berth_oci::image::{Descriptor, ImageConfig, Index, Manifest};
use berth_oci::layer::{apply_layer, decompress, detect_compression, Compression};
use berth_oci::reference::Reference;
use berth_oci::{digest::HashingReader, media, Digest};
use berth_store::{ImageCommit, Op, StagedBlob, StagedLayer};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{self, BufReader, Read, Write};

#[derive(Debug, Clone, Default)]
pub struct SaveOptions {
    pub names: Vec<String>,
}

#[derive(Debug, Serialize, Deserialize)]
struct ArchiveManifestEntry {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "RepoTags", default)]
    repo_tags: Option<Vec<String>>,
    #[serde(rename = "Layers")]
    layers: Vec<String>,
}

const CONTAINERD_NAME: &str = "io.containerd.image.name";
const OCI_REF_NAME: &str = "org.opencontainers.image.ref.name";

fn invalid(msg: impl Into<String>) -> EngineError {
    EngineError::InvalidArchive(msg.into())
}

/// Archive member paths as written by different tools: `./x`, `x`.
fn clean_member_path(p: &str) -> String {
    let mut s = p.trim_start_matches("./").to_string();
    while s.ends_with('/') {
        s.pop();
    }
    s
}

/// The members of an archive, either streamed into staged blobs (stdin) or indexed by offset
/// in a seekable file (read once per layer, straight into the store).
enum Members {
    Staged(Staged),
    Indexed(Indexed),
}

/// Small members (manifests, configs) are read into memory; anything bigger is not metadata.
const MAX_METADATA: u64 = 32 << 20;

struct Indexed {
    file: File,
    members: HashMap<String, (u64, u64)>,
    links: HashMap<String, String>,
}

impl Indexed {
    fn get(&self, path: &str) -> Option<(u64, u64)> {
        let mut p = clean_member_path(path);
        for _ in 0..8 {
            if let Some(m) = self.members.get(&p) {
                return Some(*m);
            }
            p = self.links.get(&p)?.clone();
        }
        None
    }

    fn open(&self, path: &str) -> Result<(impl Read + '_, u64), EngineError> {
        use std::io::{Seek, SeekFrom};
        let (offset, size) = self
            .get(path)
            .ok_or_else(|| invalid(format!("{path} is referenced but missing from the archive")))?;
        let mut f = &self.file;
        f.seek(SeekFrom::Start(offset))
            .map_err(|e| EngineError::io("seeking in the archive", e))?;
        Ok((f.take(size), size))
    }
}

impl Members {
    fn contains(&self, path: &str) -> bool {
        match self {
            Members::Staged(s) => s.get(path).is_some(),
            Members::Indexed(i) => i.get(path).is_some(),
        }
    }

    fn read(&self, path: &str) -> Result<Vec<u8>, EngineError> {
        match self {
            Members::Staged(s) => s.read(path),
            Members::Indexed(i) => {
                let (mut r, size) = i.open(path)?;
                if size > MAX_METADATA {
                    return Err(invalid(format!(
                        "{path} is {size} bytes: too large for image metadata"
                    )));
                }
                let mut buf = Vec::with_capacity(size as usize);
                r.read_to_end(&mut buf)
                    .map_err(|e| EngineError::io(format!("reading {path} from the archive"), e))?;
                Ok(buf)
            }
        }
    }

    /// A metadata member as a staged blob, checked against `expected` when given.
    fn stage(
        &self,
        op: &mut Op,
        path: &str,
        expected: Option<&Digest>,
    ) -> Result<StagedBlob, EngineError> {
        let blob = match self {
            Members::Staged(s) => s
                .get(path)
                .ok_or_else(|| {
                    invalid(format!("{path} is referenced but missing from the archive"))
                })?
                .clone(),
            Members::Indexed(_) => {
                let bytes = self.read(path)?;
                op.stage_bytes(&bytes)?
            }
        };
        if let Some(want) = expected {
            if blob.digest != *want {
                return Err(invalid(format!(
                    "{path}: content digest {} does not match its name",
                    blob.digest
                )));
            }
        }
        Ok(blob)
    }
}

struct Staged {
    files: HashMap<String, StagedBlob>,
    links: HashMap<String, String>,
}

impl Staged {
    fn get(&self, path: &str) -> Option<&StagedBlob> {
        let mut p = clean_member_path(path);
        for _ in 0..8 {
            if let Some(b) = self.files.get(&p) {
                return Some(b);
            }
            let target = self.links.get(&p)?;
            p = target.clone();
        }
        None
    }

    fn read(&self, path: &str) -> Result<Vec<u8>, EngineError> {
        let blob = self
            .get(path)
            .ok_or_else(|| invalid(format!("{path} is referenced but missing from the archive")))?;
        std::fs::read(&blob.path).map_err(|e| EngineError::io(format!("reading staged {path}"), e))
    }
}

/// Pending work for one image, validated and unpacked but not yet committed.
struct PendingImage {
    commit: ImageCommit,
    names: Vec<String>,
}

impl Engine {
    /// Loads every image in a docker-archive or OCI-layout tar stream (e.g. stdin): members are
    /// staged as they stream past, then unpacked.
    pub fn load_images<R: Read>(&mut self, input: R) -> Result<Vec<LoadedImage>, EngineError> {
        let mut op = self.store().begin_op()?;
        let staged = Members::Staged(stage_members(&mut op, input)?);
        self.load_members(op, staged)
    }

    /// Loads every image in an archive file: the file is indexed, then each layer is read once,
    /// straight into the store.
    pub fn load_images_from_file(&mut self, file: File) -> Result<Vec<LoadedImage>, EngineError> {
        let op = self.store().begin_op()?;
        let indexed = Members::Indexed(index_members(file)?);
        self.load_members(op, indexed)
    }

    fn load_members(
        &mut self,
        mut op: Op,
        staged: Members,
    ) -> Result<Vec<LoadedImage>, EngineError> {
        let mut unpacked: HashMap<Digest, u64> = HashMap::new();
        let pending = if staged.contains("manifest.json") {
            self.plan_docker_archive(&mut op, &staged, &mut unpacked)?
        } else if staged.contains("index.json") {
            self.plan_oci_layout(&mut op, &staged, &mut unpacked)?
        } else {
            return Err(invalid(
                "neither manifest.json (docker save format) nor index.json (OCI image layout) found: is this an image archive? (use `import` for a root filesystem tarball)",
            ));
        };
        let mut loaded = Vec::new();
        for image in pending {
            self.store_mut().commit_image(&mut op, &image.commit)?;
            if image.names.is_empty() {
                loaded.push(LoadedImage::Id(image.commit.id.to_string()));
            }
            for name in image.names {
                loaded.push(LoadedImage::Tag(familiar(&name)));
            }
        }
        op.finish();
        Ok(loaded)
    }

    fn plan_docker_archive(
        &self,
        op: &mut Op,
        staged: &Members,
        unpacked: &mut HashMap<Digest, u64>,
    ) -> Result<Vec<PendingImage>, EngineError> {
        let entries: Vec<ArchiveManifestEntry> =
            serde_json::from_slice(&staged.read("manifest.json")?)
                .map_err(|e| invalid(format!("manifest.json: {e}")))?;
        let mut out = Vec::new();
        for entry in entries {
            let config_blob = staged.stage(op, &entry.config, None)?;
            let layers: Vec<(String, Option<Descriptor>)> =
                entry.layers.iter().map(|l| (l.clone(), None)).collect();
            let tags = entry
                .repo_tags
                .unwrap_or_default()
                .iter()
                .map(|t| Reference::parse_with_default_tag(t).map(|r| r.to_string()))
                .collect::<Result<Vec<_>, _>>()?;
            out.push(self.plan_image(op, staged, unpacked, config_blob, &layers, tags)?);
        }
        Ok(out)
    }

    fn plan_oci_layout(
        &self,
        op: &mut Op,
        staged: &Members,
        unpacked: &mut HashMap<Digest, u64>,
    ) -> Result<Vec<PendingImage>, EngineError> {
        let index: Index = serde_json::from_slice(&staged.read("index.json")?)
            .map_err(|e| invalid(format!("index.json: {e}")))?;
        let mut out = Vec::new();
        let mut queue: Vec<(Descriptor, Option<BTreeMap<String, String>>)> = index
            .manifests
            .into_iter()
            .map(|d| (d.clone(), d.annotations.clone()))
            .collect();
        let host = berth_oci::image::host_platform();
        while let Some((desc, annotations)) = queue.pop() {
            let bytes = read_verified(staged, &desc)?;
            if media::is_index(&desc.media_type) {
                let nested: Index = serde_json::from_slice(&bytes)
                    .map_err(|e| invalid(format!("index {}: {e}", desc.digest)))?;
                // A multi-platform index: load the host's platform, as Docker does.
                for d in nested.manifests {
                    let matches = d
                        .platform
                        .as_ref()
                        .map(|p| p.os == host.os && p.architecture == host.architecture)
                        .unwrap_or(true);
                    if matches {
                        queue.push((d, annotations.clone()));
                        break;
                    }
                }
                continue;
            }
            if !media::is_manifest(&desc.media_type) {
                return Err(invalid(format!(
                    "unsupported media type {} in index.json",
                    desc.media_type
                )));
            }
            let manifest: Manifest = serde_json::from_slice(&bytes)
                .map_err(|e| invalid(format!("manifest {}: {e}", desc.digest)))?;
            let config_path = format!("blobs/sha256/{}", manifest.config.digest.hex());
            let config_blob = staged.stage(op, &config_path, Some(&manifest.config.digest))?;
            let layers: Vec<(String, Option<Descriptor>)> = manifest
                .layers
                .iter()
                .map(|l| (format!("blobs/sha256/{}", l.digest.hex()), Some(l.clone())))
                .collect();
            let mut tags = Vec::new();
            if let Some(a) = &annotations {
                let name = a.get(CONTAINERD_NAME).or_else(|| {
                    a.get(OCI_REF_NAME)
                        .filter(|n| n.contains(':') || n.contains('/'))
                });
                if let Some(name) = name {
                    tags.push(Reference::parse_with_default_tag(name)?.to_string());
                }
            }
            out.push(self.plan_image(op, staged, unpacked, config_blob, &layers, tags)?);
        }
        Ok(out)
    }

    /// Verifies and unpacks one image's layers and prepares its commit.
    fn plan_image(
        &self,
        op: &mut Op,
        staged: &Members,
        unpacked: &mut HashMap<Digest, u64>,
        config_blob: StagedBlob,
        layers: &[(String, Option<Descriptor>)],
        tags: Vec<String>,
    ) -> Result<PendingImage, EngineError> {
        let config_json = String::from_utf8(
            std::fs::read(&config_blob.path)
                .map_err(|e| EngineError::io("reading staged config", e))?,
        )
        .map_err(|_| invalid("image config is not UTF-8 JSON"))?;
        let config: ImageConfig = serde_json::from_str(&config_json)
            .map_err(|e| invalid(format!("image config {}: {e}", config_blob.digest)))?;
        check_depth(&format!("image {}", config_blob.digest), layers.len())?;
        let expansion = Expansion::from_env()?;
        if config.rootfs.diff_ids.len() != layers.len() {
            return Err(invalid(format!(
                "image config {} lists {} layers but the manifest has {}",
                config_blob.digest,
                config.rootfs.diff_ids.len(),
                layers.len()
            )));
        }
        let chains = berth_oci::image::chain_ids(&config.rootfs.diff_ids);
        let mut assembled: Vec<AssembledLayer> = Vec::new();
        for (i, (path, desc)) in layers.iter().enumerate() {
            if let Some(desc) = desc {
                if !media::is_layer(&desc.media_type) {
                    return Err(invalid(format!(
                        "layer {path}: unsupported media type {}",
                        desc.media_type
                    )));
                }
            }
            let want = &config.rootfs.diff_ids[i];
            let chain = &chains[i];
            let known_size = match unpacked.get(chain) {
                Some(size) => Some(*size),
                None => self.store().layer(chain)?.map(|l| l.size),
            };
            let dir = if known_size.is_none() {
                Some(op.layer_dir()?)
            } else {
                None
            };
            let (blob, got, unpacked_size, detected_type) = match staged {
                Members::Staged(s) => {
                    let blob = s
                        .get(path)
                        .ok_or_else(|| {
                            invalid(format!("layer {path} is missing from the archive"))
                        })?
                        .clone();
                    let f = File::open(&blob.path)
                        .map_err(|e| EngineError::io("reading staged layer", e))?;
                    // A staged file needs no draining: its digest is already known.
                    let (got, size, media_type) =
                        digest_layer(f, blob.size, expansion, dir.as_ref(), path, false)?;
                    let got = got.unwrap_or_else(|| blob.digest.clone());
                    (blob, got, size, media_type)
                }
                Members::Indexed(idx) => {
                    let (reader, compressed) = idx.open(path)?;
                    let mut writer = op.blob_writer()?;
                    let tee = super::import::TeeReader {
                        inner: reader,
                        sink: &mut writer,
                        total: 0,
                    };
                    // Every byte must pass through the tee into the blob.
                    let (got, size, media_type) =
                        digest_layer(tee, compressed, expansion, dir.as_ref(), path, true)?;
                    let expected = desc.as_ref().map(|d| (&d.digest, Some(d.size)));
                    let blob = writer.finish(expected).map_err(|e| match e {
                        berth_store::StoreError::DigestMismatch { expected, actual } => invalid(format!(
                            "layer {path}: content digest {actual} does not match the manifest's {expected}"
                        )),
                        other => other.into(),
                    })?;
                    let got = got.unwrap_or_else(|| blob.digest.clone());
                    (blob, got, size, media_type)
                }
            };
            if let Some(desc) = desc {
                if desc.digest != blob.digest {
                    return Err(invalid(format!(
                        "layer {path}: content digest {} does not match the manifest's {}",
                        blob.digest, desc.digest
                    )));
                }
            }
            check_diff_id(path, want, &got)?;
            let size = match known_size {
                Some(size) => size,
                None => {
                    unpacked.insert(chain.clone(), unpacked_size);
                    unpacked_size
                }
            };
            let media_type = match desc {
                Some(d) => d.media_type.clone(),
                None => detected_type,
            };
            let descriptor = Descriptor::new(media_type, blob.digest.clone(), blob.size);
            assembled.push((descriptor, want.clone(), size, dir, Some(blob)));
        }
        let manifest = Manifest::oci(
            config_blob.digest.clone(),
            config_blob.size,
            assembled.iter().map(|l| l.0.clone()).collect(),
        );
        let manifest_json =
            serde_json::to_vec(&manifest).map_err(|e| invalid(format!("manifest: {e}")))?;
        // The configuration blob is the archive's own bytes: the image ID is their digest.
        let commit = commit_with_manifest(
            op,
            config,
            config_json,
            config_blob,
            manifest_json,
            media::OCI_MANIFEST,
            assembled,
            tags.clone(),
            Vec::new(),
        )?;
        Ok(PendingImage {
            commit,
            names: tags,
        })
    }

    /// Writes the named images as one docker-archive (which is also an OCI image layout).
    pub fn save_images<W: Write>(&self, names: &[String], out: W) -> Result<(), EngineError> {
        // Resolve everything first: a bad name fails before a byte is written.
        let mut images: Vec<(berth_store::ImageRow, Vec<String>)> = Vec::new();
        for name in names {
            let (row, named) = self.resolve_image_named(name)?;
            let tag = match named {
                super::Named::Reference(r) if r.digest().is_none() => Some(r.to_string()),
                _ => None,
            };
            match images.iter_mut().find(|(r, _)| r.id == row.id) {
                Some((_, tags)) => tags.extend(tag),
                None => images.push((row, tag.into_iter().collect())),
            }
        }
        let mut builder = tar::Builder::new(out);
        let mut written: HashMap<String, ()> = HashMap::new();
        let mut manifest_entries = Vec::new();
        let mut index = Index {
            schema_version: 2,
            media_type: Some(media::OCI_INDEX.into()),
            manifests: Vec::new(),
            annotations: None,
        };
        append_dir(&mut builder, "blobs/")?;
        append_dir(&mut builder, "blobs/sha256/")?;
        for (row, tags) in &images {
            let manifest_digest: Digest = row
                .manifest_digest
                .as_deref()
                .ok_or_else(|| invalid(format!("image {} has no manifest", row.id)))?
                .parse()
                .map_err(|_| {
                    invalid(format!("image {} has a malformed manifest digest", row.id))
                })?;
            let manifest_bytes = self.store().read_blob(&manifest_digest)?;
            let manifest: Manifest = serde_json::from_slice(&manifest_bytes)
                .map_err(|e| invalid(format!("stored manifest {manifest_digest}: {e}")))?;
            let mut blob_list = vec![manifest.config.digest.clone()];
            blob_list.extend(manifest.layers.iter().map(|l| l.digest.clone()));
            blob_list.push(manifest_digest.clone());
            for digest in &blob_list {
                if written.insert(digest.to_string(), ()).is_some() {
                    continue;
                }
                let file = self.store().open_blob(digest)?;
                let size = file
                    .metadata()
                    .map_err(|e| EngineError::io("reading blob size", e))?
                    .len();
                let mut header = file_header(size);
                builder
                    .append_data(
                        &mut header,
                        format!("blobs/sha256/{}", digest.hex()),
                        BufReader::with_capacity(1 << 20, file),
                    )
                    .map_err(|e| EngineError::io("writing archive", e))?;
            }
            manifest_entries.push(ArchiveManifestEntry {
                config: format!("blobs/sha256/{}", manifest.config.digest.hex()),
                repo_tags: if tags.is_empty() {
                    None
                } else {
                    Some(tags.iter().map(|t| familiar(t)).collect())
                },
                layers: manifest
                    .layers
                    .iter()
                    .map(|l| format!("blobs/sha256/{}", l.digest.hex()))
                    .collect(),
            });
            let media_type = row
                .manifest_media_type
                .clone()
                .unwrap_or_else(|| media::OCI_MANIFEST.into());
            let tag_list: Vec<Option<&String>> = if tags.is_empty() {
                vec![None]
            } else {
                tags.iter().map(Some).collect()
            };
            for tag in tag_list {
                let annotations = tag.map(|t| {
                    let mut a = BTreeMap::new();
                    a.insert(CONTAINERD_NAME.to_string(), t.clone());
                    if let Ok(r) = Reference::parse(t) {
                        if let Some(tag) = r.tag() {
                            a.insert(OCI_REF_NAME.to_string(), tag.to_string());
                        }
                    }
                    a
                });
                index.manifests.push(Descriptor {
                    annotations,
                    ..Descriptor::new(
                        media_type.clone(),
                        manifest_digest.clone(),
                        manifest_bytes.len() as u64,
                    )
                });
            }
        }
        let json = |v: &dyn erased::Json| v.to_json();
        append_bytes(&mut builder, "index.json", &json(&index))?;
        append_bytes(&mut builder, "manifest.json", &json(&manifest_entries))?;
        append_bytes(
            &mut builder,
            "oci-layout",
            br#"{"imageLayoutVersion":"1.0.0"}"#,
        )?;
        builder
            .into_inner()
            .map_err(|e| EngineError::io("writing archive", e))?
            .flush()
            .map_err(|e| EngineError::io("writing archive", e))?;
        Ok(())
    }
}

mod erased {
    pub trait Json {
        fn to_json(&self) -> Vec<u8>;
    }
    impl<T: serde::Serialize> Json for T {
        fn to_json(&self) -> Vec<u8> {
            serde_json::to_vec(self).unwrap_or_default()
        }
    }
}

fn file_header(size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_size(size);
    h.set_mode(0o644);
    h.set_mtime(0);
    h.set_entry_type(tar::EntryType::Regular);
    h
}

fn append_dir<W: Write>(builder: &mut tar::Builder<W>, path: &str) -> Result<(), EngineError> {
    let mut h = tar::Header::new_gnu();
    h.set_size(0);
    h.set_mode(0o755);
    h.set_mtime(0);
    h.set_entry_type(tar::EntryType::Directory);
    builder
        .append_data(&mut h, path, io::empty())
        .map_err(|e| EngineError::io("writing archive", e))
}

fn append_bytes<W: Write>(
    builder: &mut tar::Builder<W>,
    path: &str,
    bytes: &[u8],
) -> Result<(), EngineError> {
    let mut h = file_header(bytes.len() as u64);
    builder
        .append_data(&mut h, path, bytes)
        .map_err(|e| EngineError::io("writing archive", e))
}

/// Streams every regular member of the archive into a staged blob.
fn stage_members<R: Read>(op: &mut Op, input: R) -> Result<Staged, EngineError> {
    let mut archive = tar::Archive::new(BufReader::with_capacity(1 << 20, input));
    let mut staged = Staged {
        files: HashMap::new(),
        links: HashMap::new(),
    };
    let entries = archive
        .entries()
        .map_err(|e| invalid(format!("not a tar archive: {e}")))?;
    let mut count = 0u64;
    for entry in entries {
        let mut entry =
            entry.map_err(|e| invalid(format!("corrupt or truncated tar archive: {e}")))?;
        count += 1;
        let path = entry
            .path()
            .map_err(|e| invalid(format!("bad member name: {e}")))?
            .to_string_lossy()
            .to_string();
        let path = clean_member_path(&path);
        match entry.header().entry_type() {
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                let mut writer = op.blob_writer()?;
                io::copy(&mut entry, &mut writer).map_err(|e| {
                    if e.raw_os_error() == Some(28) {
                        EngineError::io(format!("staging {path}"), e)
                    } else {
                        invalid(format!("corrupt or truncated tar archive at {path}: {e}"))
                    }
                })?;
                staged.files.insert(path, writer.finish(None)?);
            }
            tar::EntryType::Symlink | tar::EntryType::Link => {
                if let Ok(Some(target)) = entry.link_name() {
                    let target = target.to_string_lossy().to_string();
                    // Old docker-archives link `<id>/layer.tar` to `../<other>/layer.tar`.
                    let resolved = if entry.header().entry_type() == tar::EntryType::Symlink {
                        let base = std::path::Path::new(&path)
                            .parent()
                            .map(|p| p.to_path_buf())
                            .unwrap_or_default();
                        normalize(&base.join(&target).to_string_lossy())
                    } else {
                        clean_member_path(&target)
                    };
                    staged.links.insert(path, resolved);
                }
            }
            _ => {}
        }
    }
    if count == 0 {
        return Err(invalid("the archive is empty"));
    }
    Ok(staged)
}

fn normalize(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    parts.join("/")
}

/// A metadata blob of an OCI layout, checked against its descriptor.
fn read_verified(members: &Members, desc: &Descriptor) -> Result<Vec<u8>, EngineError> {
    let path = format!("blobs/sha256/{}", desc.digest.hex());
    let bytes = members.read(&path)?;
    let actual = Digest::of(&bytes);
    if actual != desc.digest {
        return Err(invalid(format!(
            "{path}: content digest {actual} does not match its name"
        )));
    }
    Ok(bytes)
}

fn check_diff_id(path: &str, want: &Digest, got: &Digest) -> Result<(), EngineError> {
    if want != got {
        return Err(invalid(format!(
            "layer {path}: uncompressed content {got} does not match the diff_id {want} in the image config"
        )));
    }
    Ok(())
}

/// Reads one layer archive to its end: detects its compression, and either unpacks it into
/// `dir` or only reads it, returning the diff ID, the unpacked size and the media type. The diff
/// ID is `None` when the archive is uncompressed: then it is the raw blob's own digest, which the
/// caller already computes, and hashing the same bytes twice would cost a third of the time.
/// A compressed layer (of `compressed` bytes) may expand only as far as `expansion` allows.
fn digest_layer<R: Read>(
    raw: R,
    compressed: u64,
    expansion: Expansion,
    dir: Option<&StagedLayer>,
    path: &str,
    must_read_all: bool,
) -> Result<(Option<Digest>, u64, String), EngineError> {
    let mut buffered = BufReader::with_capacity(1 << 20, raw);
    let head = io::BufRead::fill_buf(&mut buffered)
        .map_err(|e| EngineError::io(format!("reading layer {path}"), e))?;
    let compression = detect_compression(head);
    let media_type = match compression {
        Compression::Gzip => media::OCI_LAYER_GZIP,
        Compression::Zstd => media::OCI_LAYER_ZSTD,
        Compression::None => media::OCI_LAYER,
    }
    .to_string();
    let unpack = |reader: &mut dyn Read| -> Result<u64, EngineError> {
        match dir {
            Some(dir) => Ok(apply_layer(reader, &dir.path)
                .map_err(|source| EngineError::Layer {
                    context: format!("unpacking layer {path}"),
                    source,
                })?
                .size),
            None => Ok(0),
        }
    };
    if matches!(compression, Compression::None) {
        let size = unpack(&mut buffered)?;
        if must_read_all || dir.is_some() {
            io::copy(&mut buffered, &mut io::sink())
                .map_err(|e| invalid(format!("corrupt layer {path}: {e}")))?;
        }
        return Ok((None, size, media_type));
    }
    let reader = decompress(buffered)
        .map_err(|e| EngineError::io(format!("decompressing layer {path}"), e))?;
    let mut bounded = expansion.bound(reader, compressed);
    let mut hashing = HashingReader::new(&mut bounded);
    let hashed = unpack(&mut hashing).and_then(|size| {
        let (digest, _) = hashing
            .finish()
            .map_err(|e| invalid(format!("corrupt layer {path}: {e}")))?;
        Ok((digest, size))
    });
    if let Some(e) = bounded.limit_error(&format!("layer {path}")) {
        return Err(e);
    }
    let (digest, size) = hashed?;
    Ok((Some(digest), size, media_type))
}

/// Indexes a seekable archive: member offsets and sizes, without reading their data.
fn index_members(file: File) -> Result<Indexed, EngineError> {
    let mut members = HashMap::new();
    let mut links = HashMap::new();
    {
        let mut archive = tar::Archive::new(&file);
        let entries = archive
            .entries_with_seek()
            .map_err(|e| invalid(format!("not a tar archive: {e}")))?;
        for entry in entries {
            let entry =
                entry.map_err(|e| invalid(format!("corrupt or truncated tar archive: {e}")))?;
            let path = entry
                .path()
                .map_err(|e| invalid(format!("bad member name: {e}")))?
                .to_string_lossy()
                .to_string();
            let path = clean_member_path(&path);
            match entry.header().entry_type() {
                tar::EntryType::Regular | tar::EntryType::Continuous => {
                    members.insert(path, (entry.raw_file_position(), entry.size()));
                }
                kind @ (tar::EntryType::Symlink | tar::EntryType::Link) => {
                    if let Ok(Some(target)) = entry.link_name() {
                        links.insert(
                            path.clone(),
                            resolve_link(&path, &target.to_string_lossy(), kind),
                        );
                    }
                }
                _ => {}
            }
        }
    }
    if members.is_empty() && links.is_empty() {
        return Err(invalid("the archive is empty"));
    }
    // A member that claims more bytes than the file holds is a truncated archive.
    let len = file
        .metadata()
        .map_err(|e| EngineError::io("reading archive size", e))?
        .len();
    if let Some((p, _)) = members.iter().find(|(_, (off, size))| off + size > len) {
        return Err(invalid(format!("corrupt or truncated tar archive at {p}")));
    }
    Ok(Indexed {
        file,
        members,
        links,
    })
}

fn resolve_link(path: &str, target: &str, kind: tar::EntryType) -> String {
    // Old docker-archives link `<id>/layer.tar` to `../<other>/layer.tar`.
    if kind == tar::EntryType::Symlink {
        let base = std::path::Path::new(path)
            .parent()
            .map(|p| p.to_path_buf())
            .unwrap_or_default();
        normalize(&base.join(target).to_string_lossy())
    } else {
        clean_member_path(target)
    }
}
