//! Kubernetes: manifests from what runs locally (`kube generate`).

pub mod generate;
pub mod names;
pub mod play;

pub use generate::{ContainerFacts, GenerateOptions, Manifests, WorkloadKind};

use crate::{Engine, EngineError};

impl Engine {
    /// `kube generate CONTAINER…`: one workload holding the containers, the claims of their
    /// named volumes and, when asked, a Service for their published ports.
    pub fn kube_generate(
        &mut self,
        containers: &[String],
        o: &GenerateOptions,
    ) -> Result<Manifests, EngineError> {
        let mut facts = Vec::new();
        for name in containers {
            let inspect = self.inspect_container(name, false)?;
            let image_id = inspect["Image"].as_str().unwrap_or("").to_string();
            let image = self.inspect_image(&image_id)?;
            let wanted = inspect["Config"]["Image"]
                .as_str()
                .unwrap_or("")
                .to_string();
            facts.push(ContainerFacts {
                image_ref: image_reference(&wanted, &image.repo_digests),
                image_config: image.config.clone(),
                inspect,
            });
        }
        Ok(generate::generate(&facts, o))
    }
}

/// The reference a cluster should pull: the digest the image has in a registry when it has
/// one (in the repository the user named, if that is among them), so the cluster runs exactly
/// this image; otherwise the name the container was created from.
fn image_reference(wanted: &str, repo_digests: &[String]) -> String {
    let repo = crate::images::familiar(wanted.split('@').next().unwrap_or(wanted));
    let repo = match repo.rsplit_once(':') {
        Some((r, tag)) if !tag.contains('/') => r.to_string(),
        _ => repo,
    };
    repo_digests
        .iter()
        .find(|d| d.split('@').next() == Some(repo.as_str()))
        .or(repo_digests.first())
        .cloned()
        .unwrap_or_else(|| wanted.to_string())
}

/// Manifests as a multi-document YAML stream.
pub fn to_yaml(documents: &[serde_json::Value]) -> Result<String, EngineError> {
    let mut out = String::new();
    for (i, d) in documents.iter().enumerate() {
        if i > 0 {
            out.push_str("---\n");
        }
        let y = yaml_serde::to_string(d)
            .map_err(|e| EngineError::InvalidArgument(format!("writing YAML: {e}")))?;
        out.push_str(&y);
        if !out.ends_with('\n') {
            out.push('\n');
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_document_ends_its_line() {
        let y = to_yaml(&[serde_json::json!({"a": 1}), serde_json::json!({"b": "x"})]).unwrap();
        assert_eq!(y, "a: 1\n---\nb: x\n");
    }

    #[test]
    fn pushed_images_are_referenced_by_digest() {
        let d = vec!["localhost:5000/app@sha256:abc".to_string()];
        assert_eq!(
            image_reference("localhost:5000/app:v1", &d),
            "localhost:5000/app@sha256:abc"
        );
        assert_eq!(image_reference("busybox", &[]), "busybox");
    }
}
