//! Registries: `pull`, `push`, `login`, `logout`, and the built-in registry server.
//!
//! The engine is synchronous; each call here runs the async registry client
//! ([`berth_registry::client::Client`]) on a runtime of its own and reports progress through a
//! callback, called on the caller's thread.
//!
//! - [`Engine::pull_image`] fetches the manifest (choosing the host's platform from an index),
//!   skips layers whose chain the store already has, and streams every other layer once, all of
//!   them in parallel: download → compressed digest → staged blob and, in the same pass,
//!   decompress → diff ID → unpack into a staged layer directory. The image becomes visible in
//!   one store commit, with the registry's manifest bytes as its stored manifest, so its repo
//!   digest (`name@sha256:…`) is exact. Any failure leaves the store as it was.
//! - [`Engine::push_image`] uploads only what the registry lacks: a `HEAD` per blob first, a
//!   cross-repository mount when another repository of the same registry is known (from the
//!   store's repo digests) to hold the blob, a streamed upload from the blob file otherwise, then
//!   the manifest; the pushed repo digest is recorded on the image.
//! - Credentials live in Docker's `config.json` (`$DOCKER_CONFIG` or `~/.docker`), written only
//!   after the registry accepted them.

mod auth;
mod pull;
mod push;
mod referrers;
mod serve;

pub use auth::{config_dir, normalize_server, server_key, DEFAULT_SERVER};
pub use pull::{PullOptions, PullResult};
pub use push::{PushOptions, PushResult};
pub use serve::{gc_registry, serve_registry, GcReport, ServerConfig};

use crate::{Engine, EngineError};
use berth_oci::Reference;
pub use berth_registry::client::Credential;
use berth_registry::client::{Client, ClientError};
use berth_store::ImageRow;

/// What a pull or push is doing, for progress output (Docker's wording in `status`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// A line about the whole operation ("latest: Pulling from library/x", "Digest: …").
    Message(String),
    /// A layer's state: `id` is the 12-digit short form of its blob digest.
    Layer {
        id: String,
        status: LayerStatus,
        current: u64,
        total: Option<u64>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LayerStatus {
    /// Pull: the store already has this layer.
    AlreadyExists,
    /// Pull: queued.
    Waiting,
    /// Pull: bytes arriving (`current` of `total`).
    Downloading,
    /// Pull: every byte arrived and the digest matched.
    DownloadComplete,
    /// Pull: unpacked and verified.
    PullComplete,
    /// Push: checking whether the registry has it.
    Preparing,
    /// Push: bytes leaving.
    Pushing,
    /// Push: uploaded.
    Pushed,
    /// Push: the registry had it.
    LayerAlreadyExists,
    /// Push: mounted from another repository of the registry.
    MountedFrom(String),
}

impl LayerStatus {
    /// The words Docker prints for this state.
    pub fn text(&self) -> String {
        match self {
            LayerStatus::AlreadyExists => "Already exists".into(),
            LayerStatus::Waiting => "Pulling fs layer".into(),
            LayerStatus::Downloading => "Downloading".into(),
            LayerStatus::DownloadComplete => "Download complete".into(),
            LayerStatus::PullComplete => "Pull complete".into(),
            LayerStatus::Preparing => "Preparing".into(),
            LayerStatus::Pushing => "Pushing".into(),
            LayerStatus::Pushed => "Pushed".into(),
            LayerStatus::LayerAlreadyExists => "Layer already exists".into(),
            LayerStatus::MountedFrom(repo) => format!("Mounted from {repo}"),
        }
    }

    /// Whether the layer is done (nothing more will be reported for it).
    pub fn is_final(&self) -> bool {
        matches!(
            self,
            LayerStatus::AlreadyExists
                | LayerStatus::PullComplete
                | LayerStatus::Pushed
                | LayerStatus::LayerAlreadyExists
                | LayerStatus::MountedFrom(_)
        )
    }
}

/// When `run`, `create` and `build` pull their image (`--pull`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PullPolicy {
    /// Pull only when the store lacks the image (Docker's default).
    #[default]
    Missing,
    /// Always pull (an up-to-date image is not downloaded again).
    Always,
    /// Never pull; fail when the store lacks the image.
    Never,
}

impl std::str::FromStr for PullPolicy {
    type Err = EngineError;
    fn from_str(s: &str) -> Result<Self, EngineError> {
        match s {
            "missing" => Ok(PullPolicy::Missing),
            "always" => Ok(PullPolicy::Always),
            "never" => Ok(PullPolicy::Never),
            other => Err(EngineError::InvalidArgument(format!(
                "invalid pull option: '{other}': must be one of \"always\", \"missing\" or \"never\""
            ))),
        }
    }
}

/// A registry error as one line, in Docker's words where Docker has them.
pub(crate) fn client_error(e: ClientError) -> EngineError {
    let msg = match &e {
        ClientError::DigestMismatch { expected, .. } => {
            format!("filesystem layer verification failed for digest {expected}")
        }
        ClientError::Unauthorized { message, .. } => {
            let m = message.trim();
            if m.is_empty() || m.eq_ignore_ascii_case("unauthorized") {
                "unauthorized: incorrect username or password".to_string()
            } else if m.starts_with("unauthorized") {
                m.to_string()
            } else {
                format!("unauthorized: {m}")
            }
        }
        ClientError::Timeout { .. } => format!("{e} ({})", crate::limits::TIMEOUT_HINT),
        ClientError::Unreachable { message, .. } if message.contains("timed out") => {
            format!("{e} ({})", crate::limits::CONNECT_TIMEOUT_HINT)
        }
        _ => e.to_string(),
    };
    EngineError::Registry {
        message: msg,
        cause: e,
    }
}

/// A runtime for one registry call.
pub(crate) fn runtime() -> Result<tokio::runtime::Runtime, EngineError> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .map_err(|e| EngineError::io("starting the registry client", e))
}

pub(crate) fn client() -> Result<Client, EngineError> {
    Client::new(crate::limits::registry_client_config()?).map_err(client_error)
}

/// Where a pull's or push's registry credentials come from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Credentials {
    /// Docker's `config.json` on this host (the CLI, as `docker` itself does).
    #[default]
    Config,
    /// Exactly these, or none at all: what an Engine API client sent (`X-Registry-Auth`).
    /// The host's `config.json` is never read for them, as dockerd never reads it.
    Given(Option<Credential>),
}

/// A client that authenticates to `registry` as `creds` say.
pub(crate) fn client_with(
    rt: &tokio::runtime::Runtime,
    creds: &Credentials,
    registry: &str,
) -> Result<Client, EngineError> {
    let mut cfg = crate::limits::registry_client_config()?;
    if let Credentials::Given(_) = creds {
        cfg.credentials_from_config = false;
    }
    let client = Client::new(cfg).map_err(client_error)?;
    if let Credentials::Given(Some(c)) = creds {
        rt.block_on(client.set_credentials(registry, c.clone()));
    }
    Ok(client)
}

/// The registry host and repository path a reference names (`docker.io`, `library/busybox`).
pub(crate) fn registry_and_repo(r: &Reference) -> (String, String) {
    (r.domain().to_string(), r.path().to_string())
}

impl Engine {
    /// `GET /distribution/{name}/json`: the descriptor the registry serves for `name` (a tag,
    /// `latest` by default, or a digest) and the platforms it offers: an index's entries, or a
    /// single manifest's configuration's platform.
    pub fn distribution_inspect(
        &self,
        name: &str,
        creds: &Credentials,
    ) -> Result<serde_json::Value, EngineError> {
        let r = Reference::parse_with_default_tag(name)?;
        let (registry, repo) = registry_and_repo(&r);
        let wanted = match (r.digest(), r.tag()) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.to_string(),
            (None, None) => "latest".to_string(),
        };
        let rt = runtime()?;
        let client = client_with(&rt, creds, &registry)?;
        let top = rt
            .block_on(client.get_manifest(&registry, &repo, &wanted))
            .map_err(client_error)?;
        let platform_json = |p: &berth_registry::client::Platform| {
            let mut v = serde_json::json!({"architecture": p.architecture, "os": p.os});
            if let Some(var) = &p.variant {
                v["variant"] = serde_json::json!(var);
            }
            v
        };
        let platforms: Vec<serde_json::Value> = if berth_oci::media::is_index(&top.media_type) {
            berth_registry::client::index_entries(&top.bytes)
                .map_err(|e| EngineError::Download(format!("{name}: {e}")))?
                .iter()
                .filter_map(|e| e.platform.as_ref().map(platform_json))
                .collect()
        } else {
            let m: berth_oci::image::Manifest = serde_json::from_slice(&top.bytes)
                .map_err(|e| EngineError::Download(format!("{name}: manifest: {e}")))?;
            if m.config.size as usize > pull::MAX_CONFIG_SIZE {
                return Err(EngineError::Download(format!(
                    "{name}: image configuration of {} bytes is too large",
                    m.config.size
                )));
            }
            let config = rt.block_on(pull::fetch_small(
                &client,
                &registry,
                &repo,
                &m.config.digest,
                m.config.size,
            ))?;
            let c: serde_json::Value = serde_json::from_slice(&config)
                .map_err(|e| EngineError::Download(format!("{name}: image config: {e}")))?;
            let field = |k: &str| c.get(k).and_then(|v| v.as_str()).unwrap_or("").to_string();
            let mut v =
                serde_json::json!({"architecture": field("architecture"), "os": field("os")});
            if !field("variant").is_empty() {
                v["variant"] = serde_json::json!(field("variant"));
            }
            vec![v]
        };
        Ok(serde_json::json!({
            "Descriptor": {
                "mediaType": top.media_type,
                "digest": top.digest.to_string(),
                "size": top.bytes.len(),
            },
            "Platforms": platforms,
        }))
    }

    /// Makes sure the store has `reference`, pulling it as `policy` says; returns the image.
    pub fn ensure_image(
        &mut self,
        reference: &str,
        policy: PullPolicy,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<ImageRow, EngineError> {
        match policy {
            PullPolicy::Never => self.resolve_image(reference),
            PullPolicy::Missing => match self.resolve_image(reference) {
                Ok(row) => Ok(row),
                Err(e) if e.is_not_found() => {
                    let r = self.pull_image(reference, &PullOptions::default(), progress)?;
                    self.resolve_image(&r.reference)
                }
                Err(e) => Err(e),
            },
            PullPolicy::Always => {
                let r = self.pull_image(reference, &PullOptions::default(), progress)?;
                self.resolve_image(&r.reference)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pull_policy_parses() {
        assert_eq!(
            "missing".parse::<PullPolicy>().unwrap(),
            PullPolicy::Missing
        );
        assert_eq!("always".parse::<PullPolicy>().unwrap(), PullPolicy::Always);
        assert_eq!("never".parse::<PullPolicy>().unwrap(), PullPolicy::Never);
        assert!("sometimes".parse::<PullPolicy>().is_err());
    }

    #[test]
    fn unauthorized_wording() {
        let e = client_error(ClientError::Unauthorized {
            registry: "r".into(),
            message: "authentication required".into(),
        });
        assert_eq!(e.to_string(), "unauthorized: authentication required");
    }
}
