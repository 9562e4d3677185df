//! Kubernetes: manifests from what runs locally (`kube generate`), and manifests run
//! locally (`kube play`).

pub mod generate;
pub mod names;
pub mod play;

pub use generate::{ContainerFacts, GenerateOptions, Manifests, WorkloadKind};

use crate::{Engine, EngineError};

impl Engine {
    /// `kube generate CONTAINER|POD…`: one workload holding the containers (a pod stands for
    /// its containers, its infra container left out), the claims of their named volumes and,
    /// when asked, a Service for their published ports (a pod member's are its pod's).
    pub fn kube_generate(
        &mut self,
        names: &[String],
        o: &GenerateOptions,
    ) -> Result<Manifests, EngineError> {
        let mut ids: Vec<String> = Vec::new();
        for name in names {
            for id in self.generate_targets(name)? {
                if !ids.contains(&id) {
                    ids.push(id);
                }
            }
        }
        // The pod ports each member declared (kube play's label), so the rest go to the
        // first member of the pod.
        let mut facts = Vec::new();
        let mut pods_seen: Vec<String> = Vec::new();
        for id in &ids {
            let mut inspect = self.inspect_container(id, false)?;
            let rec = self.container_record(id)?;
            let mut pod_name = None;
            if let Some(pod) = &rec.pod {
                if let Some(row) = self.store().pod(pod)? {
                    pod_name = Some(row.name.clone());
                    let first = !pods_seen.contains(pod);
                    if first {
                        pods_seen.push(pod.clone());
                    }
                    self.pod_ports_onto(&row, &ids, first, &mut inspect)?;
                }
            }
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
                pod: pod_name,
            });
        }
        Ok(generate::generate(&facts, o))
    }

    /// The containers a `kube generate` argument names: a container, or a pod's members.
    fn generate_targets(&mut self, name: &str) -> Result<Vec<String>, EngineError> {
        match self.resolve_container(name) {
            Ok(row) => {
                let rec = self.container_record(&row.id)?;
                if rec.pod_infra {
                    return Err(EngineError::InvalidArgument(format!(
                        "container {name} is the infra container of pod {}: kube generate the pod instead",
                        rec.pod.as_deref().unwrap_or("")
                    )));
                }
                Ok(vec![row.id])
            }
            Err(EngineError::ContainerNotFound(_)) => match self.resolve_pod(name) {
                Ok(pod) => {
                    let ids: Vec<String> = self
                        .pod_members(&pod.id)?
                        .into_iter()
                        .filter(|(_, r)| !r.pod_infra)
                        .map(|(c, _)| c.id)
                        .collect();
                    if ids.is_empty() {
                        return Err(EngineError::InvalidArgument(format!(
                            "pod {name} has no containers besides its infra container: nothing to generate"
                        )));
                    }
                    Ok(ids)
                }
                Err(EngineError::PodNotFound(_)) => Err(EngineError::ContainerNotFound(format!(
                    "{name} (no container or pod has this name or ID)"
                ))),
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        }
    }

    fn container_record(
        &self,
        id: &str,
    ) -> Result<crate::containers::ContainerRecord, EngineError> {
        let row = self.resolve_container(id)?;
        serde_json::from_str(&row.record).map_err(|e| {
            EngineError::Store(berth_store::StoreError::Corrupt(format!(
                "container {}: {e}",
                row.id
            )))
        })
    }

    /// What a pod member has from its pod, put on its `inspect`: the /dev/shm size when the
    /// pod shares IPC; when it shares the network, not the infra's hosts files but its ports:
    /// the ones this member declared (kube play's label), and for the first member of the pod
    /// those no member of `ids` declared.
    fn pod_ports_onto(
        &mut self,
        pod: &berth_store::PodRow,
        ids: &[String],
        first: bool,
        inspect: &mut serde_json::Value,
    ) -> Result<(), EngineError> {
        let rec = Self::pod_record(pod)?;
        let Some(infra) = rec.infra_id.as_deref() else {
            return Ok(());
        };
        let infra = match self.inspect_container(infra, false) {
            Ok(i) => i,
            Err(EngineError::ContainerNotFound(_)) => return Ok(()),
            Err(e) => return Err(e),
        };
        let declared = |ins: &serde_json::Value| -> Option<Vec<String>> {
            ins["Config"]["Labels"][play::plan::LABEL_PORTS]
                .as_str()
                .map(|s| s.split(',').map(str::to_string).collect())
        };
        let mut claimed: Vec<String> = Vec::new();
        for id in ids {
            if let Ok(ins) = self.inspect_container(id, false) {
                claimed.extend(declared(&ins).unwrap_or_default());
            }
        }
        let mine: Vec<String> = match declared(inspect) {
            Some(d) => d,
            None if first => {
                let mut keys: Vec<String> = Vec::new();
                for src in ["ExposedPorts", "PortBindings"] {
                    let obj = if src == "ExposedPorts" {
                        &infra["Config"][src]
                    } else {
                        &infra["HostConfig"][src]
                    };
                    for k in obj.as_object().into_iter().flatten().map(|(k, _)| k) {
                        if !claimed.contains(k) && !keys.contains(k) {
                            keys.push(k.clone());
                        }
                    }
                }
                keys
            }
            None => Vec::new(),
        };
        // The files a container joining another's network gets from it are the pod's.
        let containers_dir = self.root().join("containers");
        if let Some(mounts) = inspect["Mounts"].as_array_mut() {
            mounts.retain(|m| {
                let from_holder = m["Source"]
                    .as_str()
                    .is_some_and(|s| std::path::Path::new(s).starts_with(&containers_dir));
                let dest = m["Destination"].as_str().unwrap_or("");
                !(from_holder
                    && matches!(dest, "/etc/hosts" | "/etc/hostname" | "/etc/resolv.conf"))
            });
        }
        // A pod that shares IPC has one /dev/shm, the infra container's.
        if rec.shares("ipc") {
            inspect["HostConfig"]["ShmSize"] = infra["HostConfig"]["ShmSize"].clone();
        }
        if !rec.shares("net") {
            return Ok(());
        }
        let mut bindings = serde_json::Map::new();
        for k in &mine {
            if !inspect["Config"]["ExposedPorts"].is_object() {
                inspect["Config"]["ExposedPorts"] = serde_json::json!({});
            }
            inspect["Config"]["ExposedPorts"][k] = serde_json::json!({});
            let b = &infra["HostConfig"]["PortBindings"][k];
            if !b.is_null() {
                bindings.insert(k.clone(), b.clone());
            }
        }
        inspect["HostConfig"]["PortBindings"] = serde_json::Value::Object(bindings);
        Ok(())
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
