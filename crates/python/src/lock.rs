//! A fully pinned requirements file from what an image installed.
//!
//! Installed metadata records a distribution's name and version, not the hash of the wheel it
//! came from. The one place a hash is recorded is PEP 610's `direct_url.json` of a package
//! installed from a URL or a file (`archive_info.hashes`). pip's hash-checking mode needs a
//! hash on every line once one line has one, so hashes are written only when every pinned
//! distribution has one; otherwise the known ones are kept as comments and the header says why.

use crate::site::Dist;

/// What `pip freeze` leaves out: the installer's own tools.
const TOOLS: &[&str] = &["pip", "setuptools", "wheel", "distribute"];

/// Site directories whose packages the operating system installed (Debian's `python3-*`).
fn os_site(site: &str) -> bool {
    site == "/usr/lib/python3/dist-packages"
}

/// `sha256:<hex>` of a distribution installed from an archive, if `direct_url.json` has it.
pub fn known_hash(d: &Dist) -> Option<String> {
    let a = d.direct_url.as_ref()?.get("archive_info")?;
    if let Some(h) = a
        .get("hashes")
        .and_then(|h| h.get("sha256"))
        .and_then(|v| v.as_str())
    {
        return Some(format!("sha256:{h}"));
    }
    // The older single `hash` field: "sha256=<hex>".
    let h = a.get("hash")?.as_str()?;
    let (alg, hex) = h.split_once('=')?;
    (alg == "sha256").then(|| format!("sha256:{hex}"))
}

/// The lock file's text. `image` names the image in the header.
pub fn render(image: &str, dists: &[Dist]) -> String {
    let mut pinned: Vec<&Dist> = Vec::new();
    let mut skipped: Vec<String> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for d in dists {
        if !seen.insert(d.key.clone()) {
            continue; // the first site directory wins, as on sys.path order is not known
        }
        if TOOLS.contains(&d.key.as_str()) || os_site(&d.site) {
            skipped.push(format!("{}=={} ({})", d.key, d.version, d.site));
            continue;
        }
        pinned.push(d);
    }
    let hashed = pinned.iter().filter(|d| known_hash(d).is_some()).count();
    let all_hashed = !pinned.is_empty() && hashed == pinned.len();
    let mut out = String::new();
    out.push_str(&format!(
        "# Written by `berth lock` from {image}: every distribution the image installed, pinned\n# to the version its metadata records.\n"
    ));
    if all_hashed {
        out.push_str(
            "# Hashes come from each package's direct_url.json (the archive pip installed).\n",
        );
    } else {
        out.push_str(&format!(
            "# No --hash lines: the image records the archive hash of only {hashed} of {} distributions\n# (PEP 610 direct_url.json, for packages installed from a URL or file), and pip's\n# hash-checking mode needs one on every line. Known hashes are noted as comments.\n",
            pinned.len()
        ));
    }
    if !skipped.is_empty() {
        out.push_str("# Left out (installer tools and the operating system's packages):\n");
        for s in &skipped {
            out.push_str(&format!("#   {s}\n"));
        }
    }
    for d in pinned {
        let vcs = d.direct_url.as_ref().and_then(|u| {
            let info = u.get("vcs_info")?;
            Some(format!(
                "{} @ {}+{}@{}",
                d.key,
                info.get("vcs")?.as_str()?,
                u.get("url")?.as_str()?,
                info.get("commit_id")?.as_str()?
            ))
        });
        match (vcs, known_hash(d)) {
            (Some(v), _) => out.push_str(&format!("{v}\n")),
            (None, Some(h)) if all_hashed => {
                out.push_str(&format!("{}=={} \\\n    --hash={h}\n", d.key, d.version))
            }
            (None, Some(h)) => out.push_str(&format!("{}=={}  # {h}\n", d.key, d.version)),
            (None, None) => out.push_str(&format!("{}=={}\n", d.key, d.version)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dist(name: &str, version: &str, site: &str, url: Option<serde_json::Value>) -> Dist {
        Dist {
            name: name.into(),
            key: crate::normalize(name),
            version: version.into(),
            site: site.into(),
            meta: String::new(),
            top_level: Vec::new(),
            requires: Vec::new(),
            installer: Some("pip".into()),
            direct_url: url,
            requested: true,
            license: None,
        }
    }

    const SP: &str = "/usr/local/lib/python3.11/site-packages";

    #[test]
    fn pins_and_hashes_never_invented() {
        let a = dist(
            "Foo_Bar",
            "1.0",
            SP,
            Some(
                serde_json::json!({"url": "file:///w/foo.whl", "archive_info": {"hashes": {"sha256": "ab"}}}),
            ),
        );
        let b = dist("numpy", "1.26.4", SP, None);
        let pip = dist("pip", "23.0", SP, None);
        let deb = dist("PyYAML", "6.0", "/usr/lib/python3/dist-packages", None);
        let t = render("app:latest", &[a.clone(), b, pip, deb]);
        assert!(t.contains("foo-bar==1.0  # sha256:ab\n"), "{t}");
        assert!(t.contains("\nnumpy==1.26.4\n"), "{t}");
        assert!(t.contains("only 1 of 2"), "{t}");
        assert!(!t.contains("--hash="), "{t}");
        assert!(t.contains("#   pip==23.0"), "{t}");
        assert!(
            t.contains("#   pyyaml==6.0 (/usr/lib/python3/dist-packages)"),
            "{t}"
        );
        let t = render("app", &[a]);
        assert!(t.contains("foo-bar==1.0 \\\n    --hash=sha256:ab\n"), "{t}");
    }
}
