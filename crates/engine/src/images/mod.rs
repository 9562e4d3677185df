//! Image operations: resolve, list, inspect, tag, remove, prune, history; import, load, save.

mod archive;
mod changes;
mod filters;
mod import;

pub use archive::SaveOptions;
/// The platform this host runs (`linux/amd64`, …).
pub use berth_oci::image::{host_platform, Platform};
/// An image reference with Docker's normalisation (`busybox` → `docker.io/library/busybox:latest`).
pub use berth_oci::reference::Reference;
pub(crate) use changes::apply_changes;
pub use filters::ImageFilters;
pub(crate) use import::{build_commit, commit_with_manifest, AssembledLayer};
pub use import::{ImportOptions, ImportSource, ImportStream};

use crate::types::{
    DeleteItem, GraphDriver, HistoryItem, ImageInspect, ImageMetadata, ImagePruneReport,
    ImageSummary, RootFs,
};
use crate::{Engine, EngineError};
use berth_oci::image::ImageConfig;
use berth_oci::reference::looks_like_image_id;
use berth_oci::Digest;
use berth_store::ImageRow;
use std::collections::{BTreeMap, BTreeSet, HashSet};

/// Parses an RFC 3339 time into unix seconds (0 when absent or malformed, as Docker shows it).
pub(crate) fn unix_seconds(rfc3339: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .map(|t| t.timestamp())
        .unwrap_or(0)
}

pub(crate) fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

/// `created` for an image made now: `SOURCE_DATE_EPOCH` when given (whole seconds, as a
/// build stamps it), else the clock.
pub(crate) fn created_rfc3339(source_date_epoch: Option<i64>) -> String {
    match source_date_epoch {
        Some(e) => chrono::DateTime::from_timestamp(e, 0)
            .unwrap_or_default()
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        None => now_rfc3339(),
    }
}

/// Familiar form of a normalised tag or digest name (`docker.io/library/x:1` → `x:1`).
///
/// Names in the store are already normalised, so this is string surgery, not a parse: listing
/// a thousand images calls it a thousand times.
pub fn familiar(name: &str) -> String {
    if let Some(rest) = name.strip_prefix("docker.io/library/") {
        let repo_end = rest.find(['@', ':']).unwrap_or(rest.len());
        if !rest[..repo_end].contains('/') {
            return rest.to_string();
        }
    }
    match name.strip_prefix("docker.io/") {
        Some(rest) => rest.to_string(),
        None => name.to_string(),
    }
}

fn parse_config(row: &ImageRow) -> Result<ImageConfig, EngineError> {
    serde_json::from_str(&row.config).map_err(|e| {
        EngineError::Store(berth_store::StoreError::Corrupt(format!(
            "image {}: config: {e}",
            row.id
        )))
    })
}

/// How a user named an image.
pub(crate) enum Named {
    /// By a tag or digest reference (normalised).
    Reference(Reference),
    /// By (a prefix of) its ID.
    Id,
}

impl Engine {
    /// Finds the image `name` refers to: a reference (`busybox`, `x:1`, `x@sha256:…`), a full ID
    /// (`sha256:…`) or an unambiguous ID prefix, as Docker resolves them.
    pub fn resolve_image(&self, name: &str) -> Result<ImageRow, EngineError> {
        self.resolve_image_named(name).map(|(row, _)| row)
    }

    pub(crate) fn resolve_image_named(&self, name: &str) -> Result<(ImageRow, Named), EngineError> {
        let store = self.store();
        let id_like = {
            let hex = name.strip_prefix("sha256:").unwrap_or(name);
            !hex.is_empty() && hex.len() <= 64 && hex.bytes().all(|b| b.is_ascii_hexdigit())
        };
        if name.starts_with("sha256:") {
            return self.resolve_id_prefix(name).map(|row| (row, Named::Id));
        }
        match Reference::parse_with_default_tag(name) {
            Ok(reference) => {
                if let Some(id) = store.resolve_name(&reference.to_string())? {
                    if let Some(row) = store.image(&id)? {
                        return Ok((row, Named::Reference(reference)));
                    }
                }
                if id_like {
                    return self.resolve_id_prefix(name).map(|row| (row, Named::Id));
                }
                Err(EngineError::ImageNotFound(name.to_string()))
            }
            Err(e) => {
                if id_like || looks_like_image_id(name) {
                    return self.resolve_id_prefix(name).map(|row| (row, Named::Id));
                }
                Err(e.into())
            }
        }
    }

    fn resolve_id_prefix(&self, prefix: &str) -> Result<ImageRow, EngineError> {
        let ids = self.store().image_ids_with_prefix(prefix)?;
        match ids.as_slice() {
            [id] => self
                .store()
                .image(id)?
                .ok_or_else(|| EngineError::ImageNotFound(prefix.to_string())),
            [] => Err(EngineError::ImageNotFound(prefix.to_string())),
            _ => Err(EngineError::InvalidArgument(format!(
                "image ID prefix {prefix} is ambiguous: give more of the ID"
            ))),
        }
    }

    /// `GET /images/json`: the images, newest first.
    pub fn list_images(
        &self,
        all: bool,
        filters: &ImageFilters,
    ) -> Result<Vec<ImageSummary>, EngineError> {
        let rows = self.store().images()?;
        let parents: HashSet<String> = rows.iter().filter_map(|r| r.parent.clone()).collect();
        let in_use: HashSet<String> = self
            .store()
            .containers()?
            .into_iter()
            .map(|c| c.image_id)
            .collect();
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            // Intermediate images (untagged parents of other images) are hidden without -a.
            if !all && row.tags.is_empty() && parents.contains(&row.id) {
                continue;
            }
            let summary = summarize(row, &in_use)?;
            out.push(summary);
        }
        let out = filters.apply(self, out)?;
        let mut out = out;
        out.sort_by(|a, b| b.created.cmp(&a.created).then(b.added.cmp(&a.added)));
        Ok(out)
    }

    /// `GET /images/{name}/json`.
    pub fn inspect_image(&self, name: &str) -> Result<ImageInspect, EngineError> {
        let row = self.resolve_image(name)?;
        let config = parse_config(&row)?;
        let layers = self.store().image_layers(&row.id)?;
        let mut data = BTreeMap::new();
        let dirs: Vec<String> = layers
            .iter()
            .rev()
            .filter_map(|l| l.chain_id.parse::<Digest>().ok())
            .map(|d| self.store().layer_path(&d).display().to_string())
            .collect();
        if let Some((top, rest)) = dirs.split_first() {
            data.insert("UpperDir".to_string(), top.clone());
            if !rest.is_empty() {
                data.insert("LowerDir".to_string(), rest.join(":"));
            }
        }
        let image_config = match &config.config {
            Some(c) => serde_json::to_value(c).unwrap_or_default(),
            None => serde_json::json!({}),
        };
        let str_extra = |key: &str| {
            config
                .extra
                .get(key)
                .and_then(|v| v.as_str())
                .map(str::to_string)
                .unwrap_or_default()
        };
        Ok(ImageInspect {
            id: row.id.clone(),
            repo_tags: row.tags.iter().map(|t| familiar(t)).collect(),
            repo_digests: row.repo_digests.iter().map(|t| familiar(t)).collect(),
            parent: row.parent.clone().unwrap_or_default(),
            comment: config.comment.clone().unwrap_or_default(),
            created: config.created.clone().unwrap_or_default(),
            container: str_extra("container"),
            container_config: crate::shape::container_config(
                config
                    .extra
                    .get("container_config")
                    .cloned()
                    .unwrap_or_default(),
            ),
            docker_version: str_extra("docker_version"),
            author: config.author.clone().unwrap_or_default(),
            config: crate::shape::container_config(image_config),
            architecture: config.architecture.clone(),
            variant: config.variant.clone(),
            os: config.os.clone(),
            size: row.size as i64,
            virtual_size: row.size as i64,
            graph_driver: GraphDriver {
                data,
                name: "overlay".to_string(),
            },
            root_fs: RootFs {
                kind: if config.rootfs.kind.is_empty() {
                    "layers".into()
                } else {
                    config.rootfs.kind.clone()
                },
                layers: config
                    .rootfs
                    .diff_ids
                    .iter()
                    .map(|d| d.to_string())
                    .collect(),
            },
            metadata: ImageMetadata {
                last_tag_time: "0001-01-01T00:00:00Z".to_string(),
            },
            provenance: self
                .image_record(&row.id, crate::python::provenance::PROVENANCE_MEDIA_TYPE)?,
        })
    }

    /// A record stored with image `id` (see `python::provenance`), parsed; `None` when the
    /// image has none.
    pub fn image_record(
        &self,
        id: &str,
        media_type: &str,
    ) -> Result<Option<serde_json::Value>, EngineError> {
        let Some((digest, _)) = self
            .store()
            .image_blobs_of_type(id, media_type)?
            .into_iter()
            .next()
        else {
            return Ok(None);
        };
        let d: Digest = digest
            .parse()
            .map_err(|_| EngineError::Internal(format!("corrupt blob digest {digest}")))?;
        let bytes = self.store().read_blob(&d)?;
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| EngineError::Internal(format!("record {digest}: {e}")))
    }

    /// The image configuration of `name`.
    pub fn image_config(&self, name: &str) -> Result<(ImageRow, ImageConfig), EngineError> {
        let row = self.resolve_image(name)?;
        let config = parse_config(&row)?;
        Ok((row, config))
    }

    /// `POST /images/{name}/tag`.
    pub fn tag_image(&mut self, source: &str, target: &str) -> Result<(), EngineError> {
        let row = self.resolve_image(source)?;
        let target = Reference::parse_with_default_tag(target)?;
        if target.digest().is_some() {
            return Err(EngineError::InvalidArgument(
                "refusing to create a tag with a digest reference".into(),
            ));
        }
        self.store_mut().set_tag(&target.to_string(), &row.id)?;
        self.record_event(
            "image",
            "tag",
            &row.id,
            &[("name", &target.familiar_string())],
        );
        Ok(())
    }

    /// `DELETE /images/{name}`: untags, and deletes the image once nothing names it, as Docker
    /// does; refuses images that containers use unless forced (and even then keeps the image's
    /// content for the containers, untagging it only).
    pub fn remove_image(
        &mut self,
        name: &str,
        force: bool,
    ) -> Result<Vec<DeleteItem>, EngineError> {
        let id = self.resolve_image(name)?.id;
        let items = self.remove_image_inner(name, force)?;
        for item in &items {
            match item {
                DeleteItem::Untagged(n) => self.record_event("image", "untag", &id, &[("name", n)]),
                DeleteItem::Deleted(d) if *d == id => {
                    self.record_event("image", "delete", &id, &[("name", name)])
                }
                DeleteItem::Deleted(_) => {}
            }
        }
        Ok(items)
    }

    fn remove_image_inner(
        &mut self,
        name: &str,
        force: bool,
    ) -> Result<Vec<DeleteItem>, EngineError> {
        let (row, named) = self.resolve_image_named(name)?;
        let users = self.store().containers_using_image(&row.id)?;
        let short = short_id(&row.id);
        let mut items = Vec::new();
        match named {
            Named::Reference(reference) => {
                if !users.is_empty() && !force && row.tags.len() + row.repo_digests.len() <= 1 {
                    return Err(EngineError::ImageInUse(format!(
                        "conflict: unable to remove repository reference \"{}\" (must force) - container {} is using its referenced image {}",
                        name,
                        short_id(&users[0].id),
                        short
                    )));
                }
                let full = reference.to_string();
                self.store_mut().remove_name(&full)?;
                items.push(DeleteItem::Untagged(reference.familiar_string()));
                let remaining = self
                    .store()
                    .image(&row.id)?
                    .ok_or_else(|| EngineError::ImageNotFound(name.into()))?;
                if !remaining.tags.is_empty() {
                    return Ok(items);
                }
                // The last tag is gone: digests of the image go with it.
                for digest_name in &remaining.repo_digests {
                    self.store_mut().remove_name(digest_name)?;
                    items.push(DeleteItem::Untagged(familiar(digest_name)));
                }
            }
            Named::Id => {
                if let Some(c) = users.iter().find(|c| self.container_row_running(c)) {
                    return Err(EngineError::ImageInUse(format!(
                        "conflict: unable to delete {} (cannot be forced) - image is being used by running container {}",
                        short,
                        short_id(&c.id)
                    )));
                }
                if !users.is_empty() && !force {
                    return Err(EngineError::ImageInUse(format!(
                        "conflict: unable to delete {} (must be forced) - image is being used by stopped container {}",
                        short,
                        short_id(&users[0].id)
                    )));
                }
                if !force && !is_single_reference(&row.tags, &row.repo_digests) {
                    return Err(EngineError::ImageInUse(format!(
                        "conflict: unable to delete {short} (must be forced) - image is referenced in multiple repositories"
                    )));
                }
                for name in row.tags.iter().chain(row.repo_digests.iter()) {
                    self.store_mut().remove_name(name)?;
                    items.push(DeleteItem::Untagged(familiar(name)));
                }
            }
        }
        if !users.is_empty() {
            // Containers still need the layers: the image stays, untagged.
            return Ok(items);
        }
        let removed = self.store_mut().delete_image(&row.id)?;
        items.push(DeleteItem::Deleted(row.id.clone()));
        for (chain, _) in removed.layers.iter().rev() {
            items.push(DeleteItem::Deleted(chain.clone()));
        }
        Ok(items)
    }

    /// `POST /images/prune`: removes dangling images (all unused ones with `all`).
    pub fn prune_images(
        &mut self,
        all: bool,
        filters: &ImageFilters,
    ) -> Result<ImagePruneReport, EngineError> {
        let mut report = ImagePruneReport::default();
        let in_use: HashSet<String> = self
            .store()
            .containers()?
            .into_iter()
            .map(|c| c.image_id)
            .collect();
        let rows = self.store().images()?;
        let summaries: Vec<ImageSummary> = rows
            .iter()
            .map(|r| summarize(r, &in_use))
            .collect::<Result<_, _>>()?;
        let candidates = filters.apply(self, summaries)?;
        for image in candidates {
            if in_use.contains(&image.id) {
                continue;
            }
            if !all && !image.repo_tags.is_empty() {
                continue;
            }
            let Some(row) = self.store().image(&image.id)? else {
                continue;
            };
            for name in row.tags.iter().chain(row.repo_digests.iter()) {
                self.store_mut().remove_name(name)?;
                report
                    .images_deleted
                    .push(DeleteItem::Untagged(familiar(name)));
            }
            let removed = self.store_mut().delete_image(&row.id)?;
            report
                .images_deleted
                .push(DeleteItem::Deleted(row.id.clone()));
            for (chain, size) in removed.layers.iter().rev() {
                report
                    .images_deleted
                    .push(DeleteItem::Deleted(chain.clone()));
                report.space_reclaimed += size;
            }
            report.space_reclaimed += removed.blobs.iter().map(|(_, s)| s).sum::<u64>();
        }
        Ok(report)
    }

    /// `GET /images/{name}/history`, newest first.
    pub fn image_history(&self, name: &str) -> Result<Vec<HistoryItem>, EngineError> {
        let row = self.resolve_image(name)?;
        let config = parse_config(&row)?;
        let layers = self.store().image_layers(&row.id)?;
        let mut items = Vec::new();
        if config.history.is_empty() {
            for layer in &layers {
                items.push(HistoryItem {
                    id: "<missing>".into(),
                    created: 0,
                    created_by: String::new(),
                    tags: Vec::new(),
                    size: layer.size as i64,
                    comment: String::new(),
                });
            }
        } else {
            let mut layer_iter = layers.iter();
            for h in &config.history {
                let size = if h.empty_layer {
                    0
                } else {
                    layer_iter.next().map(|l| l.size as i64).unwrap_or(0)
                };
                items.push(HistoryItem {
                    id: "<missing>".into(),
                    created: h.created.as_deref().map(unix_seconds).unwrap_or(0),
                    created_by: h.created_by.clone().unwrap_or_default(),
                    tags: Vec::new(),
                    size,
                    comment: h.comment.clone().unwrap_or_default(),
                });
            }
        }
        items.reverse();
        if let Some(top) = items.first_mut() {
            top.id = row.id.clone();
            top.tags = row.tags.iter().map(|t| familiar(t)).collect();
        }
        Ok(items)
    }
}

/// The 12-digit form Docker shows.
#[cfg(test)]
mod familiar_tests {
    use super::familiar;
    use berth_oci::Reference;

    #[test]
    fn familiar_matches_the_reference_parser() {
        for name in [
            "docker.io/library/busybox:latest",
            "docker.io/library/busybox@sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            "docker.io/user/app:1",
            "docker.io/library/a/b:1",
            "localhost:5000/x:1",
            "ghcr.io/org/app:v2",
        ] {
            let parsed = Reference::parse(name).unwrap().familiar_string();
            assert_eq!(familiar(name), parsed, "{name}");
        }
    }
}

pub fn short_id(id: &str) -> String {
    let hex = id.strip_prefix("sha256:").unwrap_or(id);
    hex.chars().take(12).collect()
}

/// Just the labels of an image configuration: listing parses a thousand configurations, so it
/// skips everything else.
#[derive(serde::Deserialize)]
struct LabelsOnly {
    #[serde(default)]
    config: Option<LabelsOnlyInner>,
}

#[derive(serde::Deserialize)]
struct LabelsOnlyInner {
    #[serde(default, rename = "Labels")]
    labels: Option<BTreeMap<String, String>>,
}

fn summarize(row: &ImageRow, in_use: &HashSet<String>) -> Result<ImageSummary, EngineError> {
    let labels = serde_json::from_str::<LabelsOnly>(&row.config)
        .ok()
        .and_then(|c| c.config)
        .and_then(|c| c.labels)
        .unwrap_or_default();
    Ok(ImageSummary {
        id: row.id.clone(),
        parent_id: row.parent.clone().unwrap_or_default(),
        repo_tags: row.tags.iter().map(|t| familiar(t)).collect(),
        repo_digests: row.repo_digests.iter().map(|t| familiar(t)).collect(),
        created: unix_seconds(&row.created),
        size: row.size as i64,
        shared_size: -1,
        labels,
        containers: if in_use.contains(&row.id) { 1 } else { 0 },
        added: row.added,
    })
}

/// Docker's `isSingleReference`: whether deleting an image by ID removes only one name a user
/// gave it: at most one tag, and digests only of that tag's repository. Two tags, even of one
/// repository, need `-f` ("image is referenced in multiple repositories").
fn is_single_reference(tags: &[String], digests: &[String]) -> bool {
    if tags.len() + digests.len() <= 1 {
        return true;
    }
    if tags.len() > 1 {
        return false;
    }
    let repo = |n: &String| Reference::parse(n).map(|r| r.repository()).ok();
    let canonical: BTreeSet<Option<String>> = digests.iter().map(repo).collect();
    let single = match tags.first() {
        Some(t) => repo(t),
        None => repo(&digests[0]),
    };
    canonical.len() == 1 && canonical.contains(&single)
}
