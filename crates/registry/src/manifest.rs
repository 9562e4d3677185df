//! Manifest media types and the little manifest parsing the registry needs:
//! which blobs and manifests a manifest references, and its `subject`.

use serde_json::{json, Value};

use crate::reference::Digest;

pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// Every manifest media type accepted, in the order clients list them in `Accept`.
pub const MANIFEST_TYPES: [&str; 4] = [
    OCI_INDEX,
    OCI_MANIFEST,
    DOCKER_MANIFEST_LIST,
    DOCKER_MANIFEST,
];

/// Is this media type an index (multi-platform list)?
pub fn is_index(media_type: &str) -> bool {
    media_type == OCI_INDEX || media_type == DOCKER_MANIFEST_LIST
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RefKind {
    Blob,
    Manifest,
}

#[derive(Debug)]
pub(crate) struct ParsedManifest {
    pub media_type: String,
    /// Content that must exist in the repository (foreign layers with `urls` excluded).
    pub references: Vec<(Digest, RefKind)>,
    pub subject: Option<Digest>,
    artifact_type: Option<String>,
    annotations: Option<Value>,
}

impl ParsedManifest {
    /// The descriptor the referrers API lists for this manifest.
    pub(crate) fn referrer_descriptor(&self, d: &Digest, size: usize) -> Value {
        let mut v = json!({
            "mediaType": self.media_type,
            "size": size,
            "digest": d.to_string(),
        });
        if let Some(a) = &self.artifact_type {
            v["artifactType"] = json!(a);
        }
        if let Some(a) = &self.annotations {
            v["annotations"] = a.clone();
        }
        v
    }
}

/// Strip parameters from a Content-Type.
pub fn bare_media_type(ct: &str) -> &str {
    ct.split(';').next().unwrap_or("").trim()
}

fn descriptor(v: &Value, what: &str) -> Result<(Digest, Option<String>, bool), String> {
    let obj = v
        .as_object()
        .ok_or_else(|| format!("{what} is not a descriptor"))?;
    let digest = obj
        .get("digest")
        .and_then(Value::as_str)
        .ok_or_else(|| format!("{what} has no digest"))?;
    let digest: Digest = digest
        .parse()
        .map_err(|_| format!("{what} has an invalid digest {digest:?}"))?;
    match obj.get("size") {
        Some(s) if s.as_u64().is_some() => {}
        _ => return Err(format!("{what} has no valid size")),
    }
    let mt = obj
        .get("mediaType")
        .and_then(Value::as_str)
        .map(str::to_string);
    let foreign = obj
        .get("urls")
        .and_then(Value::as_array)
        .is_some_and(|u| !u.is_empty());
    Ok((digest, mt, foreign))
}

/// Validate a pushed manifest. `content_type` is the request's Content-Type.
pub(crate) fn parse(body: &[u8], content_type: Option<&str>) -> Result<ParsedManifest, String> {
    let v: Value =
        serde_json::from_slice(body).map_err(|e| format!("manifest is not valid JSON: {e}"))?;
    let obj = v.as_object().ok_or("manifest is not a JSON object")?;
    match obj.get("schemaVersion").and_then(Value::as_i64) {
        Some(2) => {}
        Some(1) => return Err("Docker schema 1 manifests are not supported".into()),
        _ => return Err("manifest has no schemaVersion 2".into()),
    }
    let field_mt = obj.get("mediaType").and_then(Value::as_str);
    let ct = content_type
        .map(bare_media_type)
        .filter(|c| !c.is_empty() && MANIFEST_TYPES.contains(c));
    if let (Some(f), Some(c)) = (field_mt, ct) {
        if f != c {
            return Err(format!("mediaType {f:?} does not match Content-Type {c:?}"));
        }
    }
    let media_type = match field_mt.or(ct) {
        Some(m) => m.to_string(),
        None if obj.contains_key("manifests") => OCI_INDEX.to_string(),
        None if obj.contains_key("config") => OCI_MANIFEST.to_string(),
        None => return Err("cannot tell the manifest's media type".into()),
    };
    if !MANIFEST_TYPES.contains(&media_type.as_str()) {
        return Err(format!("unsupported manifest media type {media_type:?}"));
    }
    let mut references = Vec::new();
    let mut artifact_type = obj
        .get("artifactType")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string);
    if is_index(&media_type) {
        let list = obj
            .get("manifests")
            .and_then(Value::as_array)
            .ok_or("index has no manifests array")?;
        for (i, m) in list.iter().enumerate() {
            let (d, _, _) = descriptor(m, &format!("manifests[{i}]"))?;
            references.push((d, RefKind::Manifest));
        }
    } else {
        let config = obj.get("config").ok_or("manifest has no config")?;
        let (d, cmt, _) = descriptor(config, "config")?;
        references.push((d, RefKind::Blob));
        if artifact_type.is_none() {
            artifact_type = cmt;
        }
        let layers = obj
            .get("layers")
            .and_then(Value::as_array)
            .ok_or("manifest has no layers array")?;
        for (i, l) in layers.iter().enumerate() {
            let (d, _, foreign) = descriptor(l, &format!("layers[{i}]"))?;
            if !foreign {
                references.push((d, RefKind::Blob));
            }
        }
    }
    let subject = match obj.get("subject") {
        None | Some(Value::Null) => None,
        Some(s) => Some(descriptor(s, "subject")?.0),
    };
    let annotations = obj.get("annotations").filter(|a| a.is_object()).cloned();
    Ok(ParsedManifest {
        media_type,
        references,
        subject,
        artifact_type,
        annotations,
    })
}

/// The `subject` digest of a stored manifest, if any.
pub(crate) fn subject_of(body: &[u8]) -> Option<Digest> {
    let v: Value = serde_json::from_slice(body).ok()?;
    v.get("subject")?.get("digest")?.as_str()?.parse().ok()
}

/// Every digest a stored manifest references (config, layers, child
/// manifests, blobs), for garbage collection. Invalid JSON gives nothing.
pub(crate) fn all_references(body: &[u8]) -> Vec<Digest> {
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut push = |d: &Value| {
        if let Some(d) = d
            .get("digest")
            .and_then(Value::as_str)
            .and_then(|s| s.parse().ok())
        {
            out.push(d);
        }
    };
    if let Some(c) = v.get("config") {
        push(c);
    }
    for key in ["layers", "manifests", "blobs"] {
        if let Some(a) = v.get(key).and_then(Value::as_array) {
            a.iter().for_each(&mut push);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(c: char) -> String {
        format!("sha256:{}", c.to_string().repeat(64))
    }

    #[test]
    fn parses_manifest_and_index() {
        let m = json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.example+json", "digest": d('a'), "size": 2},
            "layers": [
                {"mediaType": "x", "digest": d('b'), "size": 3},
                {"mediaType": "x", "digest": d('c'), "size": 3, "urls": ["http://example.invalid/x"]}
            ],
            "subject": {"mediaType": OCI_MANIFEST, "digest": d('e'), "size": 9},
            "annotations": {"k": "v"}
        });
        let p = parse(&serde_json::to_vec(&m).unwrap(), Some(OCI_MANIFEST)).unwrap();
        assert_eq!(p.references.len(), 2);
        assert_eq!(p.subject.unwrap().to_string(), d('e'));
        assert_eq!(
            p.artifact_type.as_deref(),
            Some("application/vnd.example+json")
        );
        // Content-Type disagreeing with mediaType is refused.
        assert!(parse(&serde_json::to_vec(&m).unwrap(), Some(DOCKER_MANIFEST)).is_err());
        let i = json!({"schemaVersion": 2, "manifests": [{"mediaType": OCI_MANIFEST, "digest": d('f'), "size": 1}]});
        let p = parse(&serde_json::to_vec(&i).unwrap(), None).unwrap();
        assert_eq!(p.media_type, OCI_INDEX);
        assert_eq!(
            p.references,
            vec![(d('f').parse().unwrap(), RefKind::Manifest)]
        );
        assert!(parse(b"{\"schemaVersion\":1}", None).is_err());
        assert!(parse(b"not json", None).is_err());
    }
}
