//! The records stored with a built image: an in-toto statement with a SLSA v1 provenance
//! predicate (base image, context digest, Dockerfile digest, build arguments, installed Python
//! packages) and an SPDX 2.3 SBOM of the Python packages. Both are blobs of the image in the
//! store (`image_blobs`, with their media types); `image inspect` shows the provenance and
//! `push` attaches both as OCI referrers of the pushed manifest.
//!
//! Their timestamps are the image's `created`, never the wall clock, so a reproducible build
//! gives the same records.

use berth_build::{Attachment, Finished};
use berth_python::site::Dist;
use serde_json::{json, Value};
use sha2::Digest as _;

/// The provenance: an in-toto statement (`predicateType` says SLSA provenance v1).
pub const PROVENANCE_MEDIA_TYPE: &str = "application/vnd.in-toto+json";
/// The SBOM.
pub const SBOM_MEDIA_TYPE: &str = "application/spdx+json";
/// `buildDefinition.buildType` of berth's Dockerfile builds.
pub const BUILD_TYPE: &str = "urn:berth:build:dockerfile:v1";

/// The base image as the store knows it.
pub struct Base {
    /// The reference the Dockerfile named (normalised).
    pub name: String,
    pub id: String,
    /// The manifest the image was pulled or loaded with.
    pub manifest_digest: Option<String>,
    pub repo_digests: Vec<String>,
}

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex(&sha2::Sha256::digest(bytes)))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn purl(d: &Dist) -> String {
    format!("pkg:pypi/{}@{}", d.key, d.version)
}

/// `{"sha256": "<hex>"}` of a `sha256:<hex>` digest.
fn digest_set(d: &str) -> Value {
    match d.split_once(':') {
        Some((alg, hex)) => json!({ alg: hex }),
        None => json!({}),
    }
}

/// The provenance statement.
pub fn provenance(f: &Finished, base: Option<&Base>, dists: &[Dist], image_id: &str) -> Value {
    let created = f.config.created.clone().unwrap_or_default();
    let mut deps = Vec::new();
    if let Some(b) = base {
        let digest = b.manifest_digest.clone().unwrap_or_else(|| b.id.clone());
        deps.push(json!({
            "uri": format!("docker-image://{}", b.name),
            "digest": digest_set(&digest),
            "annotations": { "imageID": b.id, "repoDigests": b.repo_digests },
        }));
    }
    if let Some(c) = &f.context_digest {
        deps.push(json!({ "uri": "context", "digest": digest_set(c) }));
    }
    for d in dists {
        let mut dep = json!({
            "uri": purl(d),
            "name": d.name,
            "annotations": { "site": d.site, "installer": d.installer },
        });
        if let Some(h) = berth_python::lock::known_hash(d) {
            dep["digest"] = digest_set(&h);
        }
        deps.push(dep);
    }
    json!({
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{ "name": image_id, "digest": digest_set(image_id) }],
        "predicateType": "https://slsa.dev/provenance/v1",
        "predicate": {
            "buildDefinition": {
                "buildType": BUILD_TYPE,
                "externalParameters": {
                    "dockerfile": { "name": f.dockerfile_name, "digest": digest_set(&sha256(f.dockerfile.as_bytes())) },
                    "context": f.context_digest.as_ref().map(|c| json!({ "digest": digest_set(c) })),
                    "buildArgs": f.build_args,
                    "base": base.map(|b| json!({
                        "name": b.name,
                        "imageID": b.id,
                        "manifestDigest": b.manifest_digest,
                    })),
                },
                "resolvedDependencies": deps,
            },
            "runDetails": {
                "builder": { "id": format!("berth {}", env!("CARGO_PKG_VERSION")) },
                "metadata": { "startedOn": created, "finishedOn": created },
            },
        },
    })
}

/// An SPDX identifier: letters, digits, `.` and `-` only.
fn spdx_id(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// The SPDX 2.3 document: the image and the Python packages it contains.
pub fn sbom(f: &Finished, dists: &[Dist], image_id: &str) -> Value {
    let created = f
        .config
        .created
        .clone()
        .filter(|c| !c.is_empty())
        .unwrap_or_else(|| "1970-01-01T00:00:00Z".into());
    let hex_id = image_id.trim_start_matches("sha256:");
    let mut packages = vec![json!({
        "name": image_id,
        "SPDXID": "SPDXRef-Image",
        "downloadLocation": "NOASSERTION",
        "filesAnalyzed": false,
        "primaryPackagePurpose": "CONTAINER",
        "checksums": [{ "algorithm": "SHA256", "checksumValue": hex_id }],
    })];
    let mut relationships = vec![json!({
        "spdxElementId": "SPDXRef-DOCUMENT",
        "relationshipType": "DESCRIBES",
        "relatedSpdxElement": "SPDXRef-Image",
    })];
    let mut seen = std::collections::HashSet::new();
    for d in dists {
        let id = spdx_id(&format!("SPDXRef-Package-pypi-{}-{}", d.key, d.version));
        if !seen.insert(id.clone()) {
            continue;
        }
        let mut p = json!({
            "name": d.name,
            "SPDXID": id,
            "versionInfo": d.version,
            "downloadLocation": "NOASSERTION",
            "filesAnalyzed": false,
            "licenseConcluded": "NOASSERTION",
            "licenseDeclared": "NOASSERTION",
            "sourceInfo": format!("installed in {} ({})", d.site, d.meta),
            "externalRefs": [{
                "referenceCategory": "PACKAGE-MANAGER",
                "referenceType": "purl",
                "referenceLocator": purl(d),
            }],
        });
        if let Some(h) = berth_python::lock::known_hash(d) {
            p["checksums"] = json!([{ "algorithm": "SHA256", "checksumValue": h.trim_start_matches("sha256:") }]);
        }
        packages.push(p);
        relationships.push(json!({
            "spdxElementId": "SPDXRef-Image",
            "relationshipType": "CONTAINS",
            "relatedSpdxElement": id,
        }));
    }
    json!({
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": format!("berth-image-{hex_id}"),
        "documentNamespace": format!("urn:berth:sbom:{hex_id}"),
        "creationInfo": {
            "created": created,
            "creators": [format!("Tool: berth-{}", env!("CARGO_PKG_VERSION"))],
        },
        "packages": packages,
        "relationships": relationships,
    })
}

/// Both records, as the blobs to store with the image.
pub fn records(
    f: &Finished,
    base: Option<&Base>,
    dists: &[Dist],
) -> Result<Vec<Attachment>, serde_json::Error> {
    let image_id = f.image_id.as_str();
    Ok(vec![
        Attachment {
            media_type: PROVENANCE_MEDIA_TYPE.into(),
            bytes: serde_json::to_vec(&provenance(f, base, dists, image_id))?,
        },
        Attachment {
            media_type: SBOM_MEDIA_TYPE.into(),
            bytes: serde_json::to_vec(&sbom(f, dists, image_id))?,
        },
    ])
}
