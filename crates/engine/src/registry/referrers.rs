//! `push` of the records a build stored with an image (provenance, SBOM): each becomes an OCI
//! artifact manifest (image-spec 1.1: `artifactType`, the empty config, the record as its one
//! layer, `subject` = the pushed image manifest), which registries list through the referrers
//! API. A registry that does not acknowledge `subject` (no `OCI-Subject` header) gets the
//! referrers tag schema instead: the index tagged `sha256-<hex of the subject>`.

use super::client_error;
use crate::python::provenance::{PROVENANCE_MEDIA_TYPE, SBOM_MEDIA_TYPE};
use crate::{Engine, EngineError};
use berth_oci::{media, Digest};
use berth_registry::client::{Client, ClientError};
use serde_json::{json, Value};

/// The empty JSON object `{}` every artifact manifest uses as its config.
const EMPTY: &[u8] = b"{}";

fn reg_digest(d: &str) -> Result<berth_registry::Digest, EngineError> {
    d.parse()
        .map_err(|_| EngineError::Internal(format!("invalid digest {d}")))
}

/// Where the referrers go, and their subject: the manifest just pushed.
pub(super) struct Subject<'a> {
    pub registry: &'a str,
    pub repo: &'a str,
    pub media_type: &'a str,
    pub digest: &'a str,
    pub size: u64,
}

impl Engine {
    /// Pushes every record of image `id` as a referrer of `subject`; returns the pushed
    /// manifests' digests.
    pub(super) fn push_referrers(
        &self,
        rt: &tokio::runtime::Runtime,
        client: &Client,
        id: &str,
        created: &str,
        subject: &Subject,
    ) -> Result<Vec<String>, EngineError> {
        let (registry, repo) = (subject.registry, subject.repo);
        let mut out = Vec::new();
        for media_type in [PROVENANCE_MEDIA_TYPE, SBOM_MEDIA_TYPE] {
            for (digest, size) in self.store().image_blobs_of_type(id, media_type)? {
                let d: Digest = digest
                    .parse()
                    .map_err(|_| EngineError::Internal(format!("invalid digest {digest}")))?;
                let path = self.store().blob_path(&d);
                rt.block_on(async {
                    let empty = reg_digest(&Digest::of(EMPTY).to_string())?;
                    if client
                        .blob_exists(registry, repo, &empty)
                        .await
                        .map_err(client_error)?
                        .is_none()
                    {
                        client
                            .push_blob(
                                registry,
                                repo,
                                &empty,
                                Some(EMPTY.len() as u64),
                                std::io::Cursor::new(EMPTY.to_vec()),
                            )
                            .await
                            .map_err(client_error)?;
                    }
                    let rd = reg_digest(&digest)?;
                    if client
                        .blob_exists(registry, repo, &rd)
                        .await
                        .map_err(client_error)?
                        .is_none()
                    {
                        let file = tokio::fs::File::open(&path).await.map_err(|e| {
                            EngineError::io(format!("opening {}", path.display()), e)
                        })?;
                        client
                            .push_blob(registry, repo, &rd, Some(size), file)
                            .await
                            .map_err(client_error)?;
                    }
                    Ok::<(), EngineError>(())
                })?;
                let manifest = artifact_manifest(media_type, &digest, size, created, subject);
                let bytes = serde_json::to_vec(&manifest)
                    .map_err(|e| EngineError::Internal(format!("referrer manifest: {e}")))?;
                let mdigest = Digest::of(&bytes).to_string();
                let acknowledged = rt
                    .block_on(client.put_manifest_subject(
                        registry,
                        repo,
                        &mdigest,
                        media::OCI_MANIFEST,
                        &bytes,
                    ))
                    .map_err(client_error)?
                    .1;
                if !acknowledged {
                    let desc = json!({
                        "mediaType": media::OCI_MANIFEST,
                        "digest": mdigest,
                        "size": bytes.len(),
                        "artifactType": media_type,
                    });
                    rt.block_on(update_tag_schema(
                        client,
                        registry,
                        repo,
                        subject.digest,
                        desc,
                    ))?;
                }
                out.push(mdigest);
            }
        }
        Ok(out)
    }
}

/// The artifact manifest of one record.
fn artifact_manifest(
    media_type: &str,
    digest: &str,
    size: u64,
    created: &str,
    subject: &Subject,
) -> Value {
    let mut m = json!({
        "schemaVersion": 2,
        "mediaType": media::OCI_MANIFEST,
        "artifactType": media_type,
        "config": {
            "mediaType": media::OCI_EMPTY,
            "digest": Digest::of(EMPTY).to_string(),
            "size": EMPTY.len(),
            "data": "e30=",
        },
        "layers": [{ "mediaType": media_type, "digest": digest, "size": size }],
        "subject": {
            "mediaType": subject.media_type,
            "digest": subject.digest,
            "size": subject.size,
        },
    });
    if !created.is_empty() {
        m["annotations"] = json!({ "org.opencontainers.image.created": created });
    }
    m
}

/// The referrers tag schema (distribution spec 1.1, "Referrers Tag Schema"): the index
/// tagged `<alg>-<hex>` of the subject gains the referrer's descriptor.
async fn update_tag_schema(
    client: &Client,
    registry: &str,
    repo: &str,
    subject: &str,
    desc: Value,
) -> Result<(), EngineError> {
    let tag = subject.replacen(':', "-", 1);
    let mut index = match client.get_manifest(registry, repo, &tag).await {
        Ok(m) => serde_json::from_slice::<Value>(&m.bytes).map_err(|e| {
            EngineError::Internal(format!("the registry's referrers index {tag}: {e}"))
        })?,
        Err(ClientError::ManifestUnknown { .. }) => json!({
            "schemaVersion": 2,
            "mediaType": media::OCI_INDEX,
            "manifests": [],
        }),
        Err(e) => return Err(client_error(e)),
    };
    let list = index["manifests"]
        .as_array_mut()
        .ok_or_else(|| EngineError::Internal(format!("referrers index {tag} has no manifests")))?;
    if !list.iter().any(|m| m["digest"] == desc["digest"]) {
        list.push(desc);
    }
    let bytes = serde_json::to_vec(&index)
        .map_err(|e| EngineError::Internal(format!("referrers index: {e}")))?;
    client
        .put_manifest(registry, repo, &tag, media::OCI_INDEX, &bytes)
        .await
        .map_err(client_error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn artifact_manifests_follow_the_image_spec() {
        let s = Subject {
            registry: "r",
            repo: "a",
            media_type: media::OCI_MANIFEST,
            digest: "sha256:aa",
            size: 10,
        };
        let m = artifact_manifest(SBOM_MEDIA_TYPE, "sha256:bb", 5, "2024-01-01T00:00:00Z", &s);
        assert_eq!(m["artifactType"], SBOM_MEDIA_TYPE);
        assert_eq!(
            m["config"]["digest"],
            "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
        );
        assert_eq!(m["subject"]["digest"], "sha256:aa");
        assert_eq!(m["layers"][0]["mediaType"], SBOM_MEDIA_TYPE);
        assert_eq!(
            m["annotations"]["org.opencontainers.image.created"],
            "2024-01-01T00:00:00Z"
        );
    }
}
