//! Values the engine returns, shaped (and named) like the Docker Engine API's responses so the
//! API server can serialise them as they are.

use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;

/// One entry of `GET /images/json`.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ImageSummary {
    pub id: String,
    pub parent_id: String,
    pub repo_tags: Vec<String>,
    pub repo_digests: Vec<String>,
    /// Unix seconds.
    pub created: i64,
    pub size: i64,
    pub shared_size: i64,
    pub labels: BTreeMap<String, String>,
    pub containers: i64,
    /// Not in the API: when the image entered this store (unix nanoseconds), for `before`/`since`.
    #[serde(skip)]
    pub added: i64,
}

/// `GET /images/{name}/json`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ImageInspect {
    pub id: String,
    pub repo_tags: Vec<String>,
    pub repo_digests: Vec<String>,
    pub parent: String,
    pub comment: String,
    pub created: String,
    /// The container an image was committed from (empty for built and imported images).
    pub container: String,
    /// Docker's `ContainerConfig`: the committing container's configuration (all zero values
    /// when there was none).
    pub container_config: Value,
    pub docker_version: String,
    pub author: String,
    pub config: Value,
    pub architecture: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    pub os: String,
    pub size: i64,
    /// The same as `size` (Docker 20.10 still prints it).
    pub virtual_size: i64,
    pub graph_driver: GraphDriver,
    #[serde(rename = "RootFS")]
    pub root_fs: RootFs,
    pub metadata: ImageMetadata,
    /// Not Docker's: the provenance `berth build` recorded (an in-toto statement with a SLSA
    /// provenance v1 predicate); absent for images that were not built here, so their output
    /// is Docker's exactly.
    #[serde(rename = "BerthProvenance", skip_serializing_if = "Option::is_none")]
    pub provenance: Option<Value>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct GraphDriver {
    pub data: BTreeMap<String, String>,
    pub name: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct RootFs {
    #[serde(rename = "Type")]
    pub kind: String,
    pub layers: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ImageMetadata {
    pub last_tag_time: String,
}

/// One entry of `GET /images/{name}/history`, newest first.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct HistoryItem {
    pub id: String,
    pub created: i64,
    pub created_by: String,
    pub tags: Vec<String>,
    pub size: i64,
    pub comment: String,
}

/// One line of `DELETE /images/{name}` and of prune reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum DeleteItem {
    Untagged(String),
    Deleted(String),
}

/// `POST /images/prune`.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ImagePruneReport {
    pub images_deleted: Vec<DeleteItem>,
    pub space_reclaimed: u64,
}

/// What `load` made visible.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoadedImage {
    /// A tag, in familiar form (`busybox:latest`).
    Tag(String),
    /// An untagged image, by ID.
    Id(String),
}
