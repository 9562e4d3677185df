//! Garbage collection of a registry root: blobs that no manifest of any
//! repository references are removed.
//!
//! Run it while the server is stopped or read-only: a blob pushed by a
//! client that has not yet pushed the manifest referencing it is, to the
//! collector, unreferenced.

use std::collections::HashSet;
use std::path::Path;

use crate::error::RegistryError;
use crate::manifest;
use crate::reference::Digest;
use crate::storage::{list_digests, Storage};

/// What a garbage collection found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GcReport {
    /// Manifests found across all repositories.
    pub manifests: usize,
    /// Blobs kept because a manifest references them (manifests included).
    pub blobs_kept: usize,
    /// Blobs removed (or, in a dry run, that would be removed).
    pub blobs_removed: Vec<Digest>,
    /// Bytes those blobs take.
    pub bytes_freed: u64,
    /// Stale upload sessions and temporary files removed.
    pub uploads_removed: usize,
}

/// Remove every blob that no manifest references, with the repository links
/// to it. With `dry_run`, only report what would go.
pub fn gc(root: &Path, dry_run: bool) -> Result<GcReport, RegistryError> {
    let io = |what: &str| {
        let what = what.to_string();
        move |e| RegistryError::io(format!("{what} under {}", root.display()), e)
    };
    let st = Storage::open(root)?;
    let mut report = GcReport::default();
    let mut marked: HashSet<Digest> = HashSet::new();
    let repos = st.list_repos().map_err(io("listing repositories"))?;
    for repo in &repos {
        for m in st.list_revisions(repo).map_err(io("listing manifests"))? {
            report.manifests += 1;
            if let Some(body) = st.read_blob(&m).map_err(io("reading manifest"))? {
                marked.extend(manifest::all_references(&body));
            }
            marked.insert(m);
        }
    }
    let all = list_digests(&st.root().join("blobs")).map_err(io("listing blobs"))?;
    for d in all {
        if marked.contains(&d) {
            report.blobs_kept += 1;
            continue;
        }
        let size = st.blob_size(&d).map_err(io("reading blob"))?.unwrap_or(0);
        if !dry_run {
            for repo in &repos {
                st.unlink_layer(repo, &d)
                    .map_err(io("removing layer link"))?;
            }
            match std::fs::remove_file(st.blob_path(&d)) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(io("removing blob")(e))
                }
                _ => {}
            }
        }
        report.bytes_freed += size;
        report.blobs_removed.push(d);
    }
    // Temporary files are never referenced; remove ones older than an hour.
    let uploads = st.root().join("_uploads");
    if let Ok(rd) = std::fs::read_dir(&uploads) {
        let cutoff = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
        for e in rd.flatten() {
            let old = e
                .metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|t| t < cutoff);
            if old {
                report.uploads_removed += 1;
                if !dry_run {
                    let p = e.path();
                    let _ = if p.is_dir() {
                        std::fs::remove_dir_all(&p)
                    } else {
                        std::fs::remove_file(&p)
                    };
                }
            }
        }
    }
    Ok(report)
}
