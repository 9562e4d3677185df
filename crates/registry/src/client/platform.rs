//! Choosing a platform's manifest from an index (manifest list).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::error::ClientError;
use crate::reference::Digest;

/// An OS / architecture / variant triple, as in an index's `platform`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

impl Platform {
    pub fn new(os: &str, architecture: &str, variant: Option<&str>) -> Platform {
        Platform {
            os: os.to_string(),
            architecture: architecture.to_string(),
            variant: variant.map(str::to_string),
        }
    }

    /// The platform berth runs on, in Go's (and so OCI's) names.
    pub fn host() -> Platform {
        Platform::new(
            std::env::consts::OS,
            berth_oci::image::host_architecture(),
            berth_oci::image::host_variant(),
        )
    }

    /// Parse `os/arch[/variant]` (e.g. `linux/arm64/v8`).
    pub fn parse(s: &str) -> Option<Platform> {
        let mut it = s.split('/');
        let os = it.next().filter(|s| !s.is_empty())?;
        let arch = it.next().filter(|s| !s.is_empty())?;
        let variant = it.next();
        if it.next().is_some() {
            return None;
        }
        Some(Platform::new(os, arch, variant))
    }

    fn normalized_variant(&self) -> Option<&str> {
        match (self.architecture.as_str(), self.variant.as_deref()) {
            ("arm64", None | Some("") | Some("v8")) => Some("v8"),
            ("arm", None | Some("")) => Some("v7"),
            (_, Some("")) => None,
            (_, v) => v,
        }
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

/// A manifest entry of an index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexEntry {
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    pub platform: Option<Platform>,
}

/// The entries of an OCI index or Docker manifest list.
pub fn index_entries(index: &[u8]) -> Result<Vec<IndexEntry>, String> {
    let v: Value = serde_json::from_slice(index).map_err(|e| format!("index is not JSON: {e}"))?;
    let list = v
        .get("manifests")
        .and_then(Value::as_array)
        .ok_or("index has no manifests")?;
    let mut out = Vec::new();
    for m in list {
        let digest = m
            .get("digest")
            .and_then(Value::as_str)
            .and_then(|d| d.parse().ok())
            .ok_or("index entry without a valid digest")?;
        out.push(IndexEntry {
            media_type: m
                .get("mediaType")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            digest,
            size: m.get("size").and_then(Value::as_u64).unwrap_or(0),
            platform: m
                .get("platform")
                .and_then(|p| serde_json::from_value(p.clone()).ok()),
        });
    }
    Ok(out)
}

/// Pick the entry of `index` for `want`: same OS and architecture, the
/// same variant when one is asked for (an exact variant match wins over an
/// entry without a variant). Attestation entries (`unknown/unknown`) never match.
pub fn select_platform(index: &[u8], want: &Platform) -> Result<IndexEntry, ClientError> {
    let entries = index_entries(index).map_err(|m| ClientError::InvalidResponse {
        registry: String::new(),
        message: m,
    })?;
    let wv = want.normalized_variant();
    let mut fallback = None;
    for e in entries {
        let Some(p) = &e.platform else { continue };
        if p.os != want.os || p.architecture != want.architecture {
            continue;
        }
        let pv = p.normalized_variant();
        if pv == wv {
            return Ok(e);
        }
        if (pv.is_none() || wv.is_none()) && fallback.is_none() {
            fallback = Some(e);
        }
    }
    fallback.ok_or_else(|| ClientError::NoMatchingPlatform(want.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn d(c: char) -> String {
        format!("sha256:{}", c.to_string().repeat(64))
    }

    #[test]
    fn selects() {
        let idx = serde_json::to_vec(&json!({"schemaVersion": 2, "manifests": [
            {"mediaType": "m", "digest": d('1'), "size": 1, "platform": {"os": "linux", "architecture": "amd64"}},
            {"mediaType": "m", "digest": d('2'), "size": 1, "platform": {"os": "linux", "architecture": "arm", "variant": "v6"}},
            {"mediaType": "m", "digest": d('3'), "size": 1, "platform": {"os": "linux", "architecture": "arm", "variant": "v7"}},
            {"mediaType": "m", "digest": d('4'), "size": 1, "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}},
            {"mediaType": "m", "digest": d('5'), "size": 1, "platform": {"os": "unknown", "architecture": "unknown"}},
        ]})).unwrap();
        let pick = |p: &str| {
            select_platform(&idx, &Platform::parse(p).unwrap()).map(|e| e.digest.to_string())
        };
        assert_eq!(pick("linux/amd64").unwrap(), d('1'));
        assert_eq!(pick("linux/arm/v6").unwrap(), d('2'));
        assert_eq!(pick("linux/arm").unwrap(), d('3'));
        assert_eq!(pick("linux/arm64").unwrap(), d('4'));
        assert!(matches!(
            pick("linux/s390x"),
            Err(ClientError::NoMatchingPlatform(_))
        ));
        assert!(pick("windows/amd64").is_err());
        let h = Platform::host();
        assert_eq!(h.os, "linux");
    }
}
