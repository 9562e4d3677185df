//! `commit`, `diff` and `export`: a container's writable layer as an image layer, as a change
//! list, and its merged filesystem as a tar.
//!
//! - `commit`: the upper dir becomes a layer through [`berth_oci::layer::create_layer`]
//!   (whiteouts converted, deterministic order), written once: into a staged blob
//!   (uncompressed, as `import` stores layers: its digest is the diff ID) and unpacked, in a
//!   second thread, into a staged layer directory. The image is the parent image's layers plus this one, with the
//!   container's `Config` and the `--change` instructions; the store commits it like any
//!   import. A running container is frozen (cgroup freezer) meanwhile unless `--pause=false`.
//! - `diff`: a walk of the upper dir: a whiteout (character device 0:0) is `D`, a path some
//!   lower layer has is `C`, anything else `A`.
//! - Mount points the runtime created for the container (`/proc`, `/etc/hosts`, bind and
//!   volume targets, the init, the working dir, and directories made or copied up only to
//!   hold them) are neither changes nor part of a committed layer: Docker keeps them in its
//!   "init" layer, below the container's ([`runtime_stubs`]).
//! - `export`: the merged root as a tar (the overlay is mounted for a stopped container),
//!   mount points included, as Docker's export includes its init layer.

use crate::images::{apply_changes, build_commit};
use crate::{Engine, EngineError};
use berth_oci::image::Descriptor;
use berth_oci::image::{ContainerConfig, History, ImageConfig, RootFs};
use berth_oci::reference::Reference;
use berth_oci::{media, Digest};
use serde_json::Value;
use std::io::{self, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

/// `commit` options.
#[derive(Debug, Clone, Default)]
pub struct CommitOptions {
    /// `REPO[:TAG]`
    pub reference: Option<String>,
    /// `-c/--change` Dockerfile instructions.
    pub changes: Vec<String>,
    /// `-m/--message`
    pub message: Option<String>,
    /// `-a/--author`
    pub author: Option<String>,
    /// `-p/--pause`
    pub pause: bool,
    /// `SOURCE_DATE_EPOCH`: `created`, the history entry and the new layer's mtimes (clamped
    /// to it), so the same container commits as the same image. `None`: the clock, as Docker.
    pub source_date_epoch: Option<i64>,
}

/// One line of `diff`: kind 0 changed, 1 added, 2 deleted (Docker's numbering).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub kind: u8,
    pub path: String,
}

fn opt_str(v: &Value) -> Option<String> {
    v.as_str().filter(|s| !s.is_empty()).map(str::to_string)
}

fn opt_list(v: &Value) -> Option<Vec<String>> {
    v.as_array().map(|a| {
        a.iter()
            .filter_map(|x| x.as_str().map(str::to_string))
            .collect()
    })
}

fn opt_map(v: &Value) -> Option<std::collections::BTreeMap<String, Value>> {
    v.as_object()
        .filter(|m| !m.is_empty())
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
}

/// A writer that copies everything into two writers.
struct Tee<A, B> {
    a: A,
    b: B,
}

impl<A: Write, B: Write> Write for Tee<A, B> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.a.write_all(buf)?;
        self.b.write_all(buf)?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        self.a.flush()?;
        self.b.flush()
    }
}

/// Whether container path `rel` (relative, no leading `/`) exists in the stack `layers`
/// (bottom first), honouring whiteouts and opaque directories of the upper layers.
fn in_lowers(layers: &[PathBuf], rel: &Path) -> bool {
    for l in layers.iter().rev() {
        let p = l.join(rel);
        match std::fs::symlink_metadata(&p) {
            Ok(m) => return !(m.file_type().is_char_device() && m.rdev() == 0),
            Err(_) => {
                // An opaque parent in this layer hides everything below.
                let mut cur = rel.parent();
                while let Some(parent) = cur {
                    if parent.as_os_str().is_empty() {
                        break;
                    }
                    if is_opaque(&l.join(parent)) {
                        return false;
                    }
                    cur = parent.parent();
                }
            }
        }
    }
    false
}

fn is_opaque(p: &Path) -> bool {
    let Ok(c) = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()) else {
        return false;
    };
    let mut buf = [0u8; 4];
    let name = c"trusted.overlay.opaque";
    // SAFETY: valid NUL-terminated strings and a buffer of the given length.
    let n = unsafe {
        libc_lgetxattr(
            c.as_ptr(),
            name.as_ptr(),
            buf.as_mut_ptr() as *mut _,
            buf.len(),
        )
    };
    n == 1 && buf[0] == b'y'
}

extern "C" {
    #[link_name = "lgetxattr"]
    fn libc_lgetxattr(
        path: *const std::ffi::c_char,
        name: *const std::ffi::c_char,
        value: *mut std::ffi::c_void,
        size: usize,
    ) -> isize;
}

/// The entries of the upper dir `upper` that are only mount points the runtime created for
/// the container (relative paths, `etc/hosts`): each of `targets` (container paths) that no
/// lower layer has and that is still an empty directory or an empty file, and every directory
/// above them that holds nothing else (a lower directory copied up only to hold one, or one
/// made as its parent). Docker keeps these in a separate "init" layer; here they are left out of
/// `diff` and `commit` (and kept in `export`, which is the whole filesystem, as Docker's is).
fn runtime_stubs(
    upper: &Path,
    layers: &[PathBuf],
    targets: &[String],
) -> std::collections::BTreeSet<PathBuf> {
    use std::path::Component;
    let mut stubs = std::collections::BTreeSet::new();
    let mut parents = std::collections::BTreeSet::new();
    for t in targets {
        let rel: PathBuf = Path::new(t)
            .components()
            .filter_map(|c| match c {
                Component::Normal(n) => Some(n),
                _ => None,
            })
            .collect();
        if rel.as_os_str().is_empty() {
            continue;
        }
        let p = upper.join(&rel);
        let Ok(m) = std::fs::symlink_metadata(&p) else {
            continue;
        };
        let empty =
            (m.is_dir() && dir_is_empty(&p) && !is_opaque(&p)) || (m.is_file() && m.len() == 0);
        if empty && !in_lowers(layers, &rel) {
            stubs.insert(rel.clone());
        }
        parents.extend(
            rel.ancestors()
                .skip(1)
                .filter(|a| !a.as_os_str().is_empty())
                .map(Path::to_path_buf),
        );
    }
    let mut parents: Vec<PathBuf> = parents.into_iter().collect();
    parents.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    for d in parents {
        let p = upper.join(&d);
        let is_dir = std::fs::symlink_metadata(&p)
            .map(|m| m.is_dir())
            .unwrap_or(false);
        if !is_dir || is_opaque(&p) {
            continue;
        }
        let Ok(rd) = std::fs::read_dir(&p) else {
            continue;
        };
        let mut any = false;
        let mut only_stubs = true;
        for e in rd.flatten() {
            any = true;
            if !stubs.contains(&d.join(e.file_name())) {
                only_stubs = false;
                break;
            }
        }
        if any && only_stubs {
            stubs.insert(d);
        }
    }
    stubs
}

fn walk_upper(
    upper: &Path,
    rel: &Path,
    layers: &[PathBuf],
    stubs: &std::collections::BTreeSet<PathBuf>,
    out: &mut Vec<Change>,
) -> io::Result<()> {
    let mut names: Vec<_> = std::fs::read_dir(upper.join(rel))?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name())
        .collect();
    names.sort();
    for n in names {
        let r = rel.join(&n);
        if stubs.contains(&r) {
            continue;
        }
        let p = upper.join(&r);
        let m = std::fs::symlink_metadata(&p)?;
        let path = format!("/{}", r.display());
        if m.file_type().is_char_device() && m.rdev() == 0 {
            if in_lowers(layers, &r) {
                out.push(Change { kind: 2, path });
            }
            continue;
        }
        out.push(Change {
            kind: if in_lowers(layers, &r) { 0 } else { 1 },
            path,
        });
        if m.is_dir() {
            walk_upper(upper, &r, layers, stubs, out)?;
        }
    }
    Ok(())
}

fn dir_is_empty(p: &Path) -> bool {
    std::fs::read_dir(p)
        .map(|mut r| r.next().is_none())
        .unwrap_or(false)
}

impl Engine {
    /// The mount points the runtime created in the container's upper dir (see
    /// [`runtime_stubs`]): Docker's fixed ones, the mount destinations and working directory
    /// of its `config.json` (symlinks resolved as the runtime did) and of its options.
    fn container_stubs(
        &self,
        id: &str,
        spec: &super::ContainerSpec,
    ) -> std::collections::BTreeSet<PathBuf> {
        let dir = self.container_dir_of(id);
        let mut targets: Vec<String> = berth_runtime::spec::MOUNT_POINT_STUBS
            .iter()
            .map(|s| s.to_string())
            .collect();
        targets.extend(spec.run.mounts.iter().map(|m| m.target().to_string()));
        if let Some(wd) = spec.config["WorkingDir"].as_str() {
            targets.push(wd.to_string());
        }
        if let Ok(b) = std::fs::read(dir.join("config.json")) {
            if let Ok(v) = serde_json::from_slice::<Value>(&b) {
                if let Some(ms) = v["mounts"].as_array() {
                    targets.extend(ms.iter().filter_map(|m| opt_str(&m["destination"])));
                }
                targets.extend(opt_str(&v["process"]["cwd"]));
            }
        }
        runtime_stubs(&dir.join("upper"), &spec.layers, &targets)
    }

    /// `GET /containers/{id}/changes`.
    pub fn container_changes(&mut self, name: &str) -> Result<Vec<Change>, EngineError> {
        let (row, _rec, _live) = self.load(name)?;
        let spec = self.spec_of(&row.id)?;
        let upper = self.container_dir_of(&row.id).join("upper");
        let stubs = self.container_stubs(&row.id, &spec);
        let mut out = Vec::new();
        if upper.exists() {
            walk_upper(&upper, Path::new(""), &spec.layers, &stubs, &mut out)
                .map_err(|e| EngineError::io("reading the container's changes", e))?;
        }
        Ok(out)
    }

    /// `POST /commit`: a new image from the container's changes; returns its ID.
    pub fn commit_container(
        &mut self,
        name: &str,
        o: &CommitOptions,
    ) -> Result<Digest, EngineError> {
        let (row, _rec, live) = self.load(name)?;
        let reference = match &o.reference {
            Some(r) => {
                let r = Reference::parse_with_default_tag(r)?;
                if r.digest().is_some() {
                    return Err(EngineError::InvalidArgument(
                        "invalid reference format: a digest cannot be used as the image name"
                            .into(),
                    ));
                }
                Some(r)
            }
            None => None,
        };
        let spec = self.spec_of(&row.id)?;
        let dir = self.container_dir_of(&row.id);
        let (parent_row, parent) = self.image_config(&row.image_id)?;
        let parent_layers = self.store().image_layers(&parent_row.id)?;

        let mut config: ImageConfig = parent.clone();
        let c = &spec.config;
        let base = parent.config.clone().unwrap_or_default();
        config.config = Some(ContainerConfig {
            user: opt_str(&c["User"]),
            exposed_ports: opt_map(&c["ExposedPorts"]),
            env: opt_list(&c["Env"]),
            entrypoint: opt_list(&c["Entrypoint"]),
            cmd: opt_list(&c["Cmd"]),
            volumes: opt_map(&c["Volumes"]),
            working_dir: opt_str(&c["WorkingDir"]),
            labels: c["Labels"].as_object().filter(|m| !m.is_empty()).map(|m| {
                m.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                    .collect()
            }),
            stop_signal: opt_str(&c["StopSignal"]),
            ..base
        });
        apply_changes(&mut config, &o.changes)?;
        let created = crate::images::created_rfc3339(o.source_date_epoch);
        config.created = Some(created.clone());
        config.author = o.author.clone().filter(|a| !a.is_empty());
        config.comment = o.message.clone().filter(|m| !m.is_empty());

        let paused = o.pause && live.running && !live.paused;
        if paused {
            berth_runtime::pause(&dir).map_err(EngineError::Runtime)?;
        }
        let stubs = self.container_stubs(&row.id, &spec);
        let mut op = self.store().begin_op();
        let made = match op.as_mut() {
            Ok(op) => make_layer(op, &dir.join("upper"), &stubs, o.source_date_epoch),
            Err(_) => Err(EngineError::Internal("store".into())),
        };
        if paused {
            let _ = berth_runtime::unpause(&dir);
        }
        let mut op = op?;
        let (layer, blob, diff_id, size) = made?;

        let mut layers = Vec::new();
        for l in &parent_layers {
            let (Some(d), Some(mt), Some(sz)) = (&l.blob_digest, &l.blob_media_type, l.blob_size)
            else {
                return Err(EngineError::Internal(format!(
                    "layer {} of the container's image has no stored archive",
                    l.chain_id
                )));
            };
            let digest: Digest = d
                .parse()
                .map_err(|_| EngineError::Internal(format!("bad digest {d}")))?;
            let diff: Digest = l
                .diff_id
                .parse()
                .map_err(|_| EngineError::Internal(format!("bad digest {}", l.diff_id)))?;
            layers.push((Descriptor::new(mt, digest, sz), diff, l.size, None, None));
        }
        let desc = Descriptor::new(media::OCI_LAYER, blob.digest.clone(), blob.size);
        layers.push((desc, diff_id.clone(), size, Some(layer), Some(blob)));
        config.rootfs = RootFs {
            kind: "layers".into(),
            diff_ids: layers.iter().map(|l| l.1.clone()).collect(),
        };
        config.history.push(History {
            created: Some(created),
            created_by: Some(
                std::iter::once(spec.path.as_str())
                    .chain(spec.args.iter().map(String::as_str))
                    .collect::<Vec<_>>()
                    .join(" "),
            ),
            author: config.author.clone(),
            comment: config.comment.clone(),
            empty_layer: false,
        });
        let commit = build_commit(
            &mut op,
            config,
            layers,
            reference.iter().map(|r| r.to_string()).collect(),
            Vec::new(),
        )?;
        let id = commit.id.clone();
        self.store_mut().commit_image(&mut op, &commit)?;
        op.finish();
        Ok(id)
    }

    /// `GET /containers/{id}/export`: the merged root filesystem as a tar.
    pub fn export_container(&mut self, name: &str, out: &mut dyn Write) -> Result<(), EngineError> {
        let root = self.open_container_root(name)?;
        root.archive("/", false, "", super::cp::TarOptions::default(), out)
    }
}

/// The upper dir as a layer, without the runtime's mount points `stubs`: an uncompressed
/// blob and an unpacked directory, both staged in `op`.
fn make_layer(
    op: &mut berth_store::Op,
    upper: &Path,
    stubs: &std::collections::BTreeSet<PathBuf>,
    source_date_epoch: Option<i64>,
) -> Result<
    (
        berth_store::StagedLayer,
        berth_store::StagedBlob,
        Digest,
        u64,
    ),
    EngineError,
> {
    let layer = op.layer_dir()?;
    let blob = op.blob_writer()?;
    let (reader, writer) = io::pipe().map_err(|e| EngineError::io("pipe", e))?;
    let target = layer.path.clone();
    let unpack = std::thread::spawn(move || berth_oci::layer::apply_layer(reader, &target));
    let mut tee = Tee { a: blob, b: writer };
    let opts = berth_oci::layer::CreateOptions { source_date_epoch };
    let created = if upper.exists() {
        berth_oci::layer::create_layer_filtered(upper, &mut tee, &opts, &|p| stubs.contains(p))
    } else {
        let empty = std::env::temp_dir().join(format!("berth-empty-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&empty);
        let r = berth_oci::layer::create_layer(&empty, &mut tee, &opts);
        let _ = std::fs::remove_dir(&empty);
        r
    };
    let Tee { a, b } = tee;
    drop(b);
    let unpacked = unpack
        .join()
        .map_err(|_| EngineError::Internal("unpacking the committed layer failed".into()))?;
    let stats = created.map_err(|e| EngineError::Layer {
        context: "creating the container's layer".into(),
        source: e,
    })?;
    unpacked.map_err(|e| EngineError::Layer {
        context: "unpacking the container's layer".into(),
        source: e,
    })?;
    // Stored uncompressed, as `import` does: the blob digest is the diff ID.
    let blob = a.finish(None)?;
    let diff_id = blob.digest.clone();
    Ok((layer, blob, diff_id, stats.size))
}
