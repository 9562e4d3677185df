//! The Python distributions installed in an image, read from its unpacked layer directories as
//! one merged tree (a higher layer's entry hides a lower one's; overlay whiteouts — character
//! devices 0:0 — and opaque directories hide what is below them).
//!
//! Site directories are the `site-packages` and `dist-packages` directories under `usr/lib`,
//! `usr/local/lib`, `opt/*`, `root/.local/lib`, `home/*/.local/lib` and any directory at the
//! top of the tree holding a virtual environment (`<dir>/lib/python3.X/site-packages`).
//! A distribution is a `NAME-VERSION.dist-info` directory (pip, PEP 376/627) or a
//! `*.egg-info` directory or file (setuptools, Debian's `python3-*` packages).

use std::collections::BTreeMap;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};

/// A merged view of layer directories (bottom first).
pub struct Layers {
    dirs: Vec<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Dir,
    File,
    Other,
}

impl Layers {
    pub fn new(dirs: Vec<PathBuf>) -> Layers {
        Layers { dirs }
    }

    /// The merged entries of directory `rel` (`usr/lib`; "" is the root), sorted by name.
    pub fn read_dir(&self, rel: &str) -> BTreeMap<String, Kind> {
        let mut out = BTreeMap::new();
        let mut hidden: std::collections::HashSet<String> = Default::default();
        for dir in self.dirs.iter().rev() {
            let path = dir.join(rel);
            let Ok(md) = std::fs::symlink_metadata(&path) else {
                // A whiteout of a parent in this layer hides everything below.
                if self.whiteout_above(dir, rel) {
                    break;
                }
                continue;
            };
            if !md.is_dir() {
                break;
            }
            if let Ok(rd) = std::fs::read_dir(&path) {
                for e in rd.flatten() {
                    let name = e.file_name().to_string_lossy().into_owned();
                    if out.contains_key(&name) || hidden.contains(&name) {
                        continue;
                    }
                    let Ok(ft) = e.file_type() else { continue };
                    if ft.is_char_device() {
                        hidden.insert(name);
                        continue;
                    }
                    let kind = if ft.is_dir() {
                        Kind::Dir
                    } else if ft.is_file() {
                        Kind::File
                    } else {
                        Kind::Other
                    };
                    out.insert(name, kind);
                }
            }
            if is_opaque(&path) {
                break;
            }
        }
        out
    }

    fn whiteout_above(&self, dir: &Path, rel: &str) -> bool {
        let mut p = PathBuf::new();
        for c in Path::new(rel).components() {
            p.push(c);
            if std::fs::symlink_metadata(dir.join(&p)).is_ok_and(|m| m.file_type().is_char_device())
            {
                return true;
            }
        }
        false
    }

    /// The file `rel` from the highest layer that has it (bounded: 4 MiB).
    pub fn read(&self, rel: &str) -> Option<Vec<u8>> {
        use std::io::Read;
        for dir in self.dirs.iter().rev() {
            let path = dir.join(rel);
            match std::fs::symlink_metadata(&path) {
                Ok(m) if m.is_file() => {
                    let mut buf = Vec::new();
                    std::fs::File::open(&path)
                        .ok()?
                        .take(4 << 20)
                        .read_to_end(&mut buf)
                        .ok()?;
                    return Some(buf);
                }
                Ok(_) => return None,
                Err(_) if self.whiteout_above(dir, rel) => return None,
                Err(_) => {}
            }
        }
        None
    }

    fn read_string(&self, rel: &str) -> Option<String> {
        self.read(rel)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
    }
}

fn is_opaque(path: &Path) -> bool {
    let mut buf = [0u8; 4];
    matches!(
        rustix::fs::lgetxattr(path, "trusted.overlay.opaque", &mut buf),
        Ok(1) if buf[0] == b'y'
    )
}

/// One installed distribution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dist {
    /// The name as its metadata spells it.
    pub name: String,
    /// PEP 503-normalised.
    pub key: String,
    pub version: String,
    /// The site directory, as an absolute image path.
    pub site: String,
    /// The metadata directory (or file) name in it.
    pub meta: String,
    /// Top-level import names it provides.
    pub top_level: Vec<String>,
    /// Normalised names of its `Requires-Dist` (markers ignored).
    pub requires: Vec<String>,
    /// `INSTALLER` (pip, uv, debian …).
    pub installer: Option<String>,
    /// `direct_url.json` (PEP 610), when it was installed from a URL or path.
    pub direct_url: Option<serde_json::Value>,
    /// `REQUESTED` exists: the user asked for it (not only a dependency).
    pub requested: bool,
    pub license: Option<String>,
}

/// The site directories of the tree (absolute image paths without the leading `/`).
pub fn site_dirs(layers: &Layers) -> Vec<String> {
    let mut out = Vec::new();
    let mut lib_roots: Vec<String> = vec!["usr/lib".into(), "usr/local/lib".into()];
    lib_roots.push("root/.local/lib".into());
    for (home, k) in layers.read_dir("home") {
        if k == Kind::Dir {
            lib_roots.push(format!("home/{home}/.local/lib"));
        }
    }
    // Virtual environments: /<dir>/lib, /<dir>/<dir>/lib (e.g. /opt/venv, /app/.venv).
    for (top, k) in layers.read_dir("") {
        if k != Kind::Dir || matches!(top.as_str(), "proc" | "sys" | "dev" | "usr" | "tmp") {
            continue;
        }
        lib_roots.push(format!("{top}/lib"));
        for (sub, k) in layers.read_dir(&top) {
            if k == Kind::Dir {
                lib_roots.push(format!("{top}/{sub}/lib"));
            }
        }
    }
    for lib in lib_roots {
        for (py, k) in layers.read_dir(&lib) {
            if k != Kind::Dir || !py.starts_with("python") {
                continue;
            }
            for site in ["site-packages", "dist-packages"] {
                let rel = format!("{lib}/{py}/{site}");
                if layers.read_dir(&format!("{lib}/{py}")).get(site) == Some(&Kind::Dir) {
                    out.push(rel);
                }
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

/// Standard-library top-level names of every Python in the tree: the modules and packages in
/// `usr/lib/python3.X`, `usr/local/lib/python3.X` and their `lib-dynload`.
pub fn stdlib_names(layers: &Layers) -> Vec<String> {
    let mut out = Vec::new();
    for lib in ["usr/lib", "usr/local/lib"] {
        for (py, k) in layers.read_dir(lib) {
            if k != Kind::Dir || !py.starts_with("python3.") {
                continue;
            }
            let base = format!("{lib}/{py}");
            let mut add = |dir: &str| {
                for (n, k) in layers.read_dir(dir) {
                    let m = match k {
                        Kind::Dir if !n.contains('-') && n != "__pycache__" => Some(n.as_str()),
                        Kind::File => n
                            .strip_suffix(".py")
                            .or_else(|| n.split('.').next().filter(|_| n.ends_with(".so"))),
                        _ => None,
                    };
                    if let Some(m) = m {
                        out.push(m.to_string());
                    }
                }
            };
            add(&base);
            add(&format!("{base}/lib-dynload"));
        }
    }
    out.sort();
    out.dedup();
    out
}

/// RFC 822-style headers (`METADATA`, `PKG-INFO`): the first value of `key`.
fn header<'a>(meta: &'a str, key: &'a str) -> Option<&'a str> {
    header_all(meta, key).next()
}

fn header_all<'a>(meta: &'a str, key: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    meta.lines()
        .take_while(|l| !l.is_empty())
        .filter_map(move |l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(key).then(|| v.trim())
        })
}

/// Top-level names from `RECORD` (or `installed-files.txt`): the first path component of every
/// installed file inside the site directory, `.py`/`.so` suffixes removed.
fn top_level_from_record(record: &str) -> Vec<String> {
    let mut out = Vec::new();
    for l in record.lines() {
        let path = l.split(',').next().unwrap_or("").trim_matches('"');
        if path.starts_with("..") || path.starts_with('/') || path.is_empty() {
            continue;
        }
        let first = path.split('/').next().unwrap_or("");
        if path.contains('/') {
            if first.ends_with(".dist-info")
                || first.ends_with(".egg-info")
                || first.ends_with(".data")
                || first == "__pycache__"
            {
                continue;
            }
            out.push(first.to_string());
        } else if let Some(m) = first.strip_suffix(".py") {
            out.push(m.to_string());
        } else if first.ends_with(".so") {
            out.push(first.split('.').next().unwrap_or("").to_string());
        }
    }
    out.sort();
    out.dedup();
    out
}

/// Every distribution in every site directory.
pub fn distributions(layers: &Layers) -> Vec<Dist> {
    let mut out = Vec::new();
    for site in site_dirs(layers) {
        let entries = layers.read_dir(&site);
        for (name, kind) in &entries {
            let is_dist = name.ends_with(".dist-info") && *kind == Kind::Dir;
            let is_egg = name.ends_with(".egg-info");
            if !is_dist && !is_egg {
                continue;
            }
            let at = format!("{site}/{name}");
            let (meta_file, dir) = match (is_dist, kind) {
                (true, _) => (format!("{at}/METADATA"), true),
                (false, Kind::Dir) => (format!("{at}/PKG-INFO"), true),
                _ => (at.clone(), false),
            };
            let Some(meta) = layers.read_string(&meta_file) else {
                continue;
            };
            let (Some(n), Some(v)) = (header(&meta, "Name"), header(&meta, "Version")) else {
                continue;
            };
            let file = |f: &str| {
                if dir {
                    layers.read_string(&format!("{at}/{f}"))
                } else {
                    None
                }
            };
            let mut top_level: Vec<String> = match file("top_level.txt") {
                Some(t) => t
                    .lines()
                    .map(|l| l.trim().split('/').next().unwrap_or("").to_string())
                    .filter(|l| !l.is_empty())
                    .collect(),
                None => top_level_from_record(
                    &file("RECORD")
                        .or_else(|| file("installed-files.txt"))
                        .unwrap_or_default(),
                ),
            };
            if top_level.is_empty() {
                // No file list at all (an egg-info file): the usual convention.
                top_level.push(n.replace('-', "_").to_ascii_lowercase());
            }
            top_level.sort();
            top_level.dedup();
            let mut requires: Vec<String> = header_all(&meta, "Requires-Dist")
                .filter(|r| !r.contains("extra =") && !r.contains("extra=="))
                .filter_map(|r| {
                    let end = r
                        .find(|c: char| {
                            !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
                        })
                        .unwrap_or(r.len());
                    Some(crate::normalize(&r[..end])).filter(|s| !s.is_empty())
                })
                .collect();
            requires.sort();
            requires.dedup();
            out.push(Dist {
                name: n.to_string(),
                key: crate::normalize(n),
                version: v.to_string(),
                site: format!("/{site}"),
                meta: name.clone(),
                top_level,
                requires,
                installer: file("INSTALLER").map(|s| s.trim().to_string()),
                direct_url: file("direct_url.json").and_then(|s| serde_json::from_str(&s).ok()),
                requested: dir && entries_has(layers, &at, "REQUESTED"),
                license: header(&meta, "License-Expression")
                    .or_else(|| header(&meta, "License"))
                    .filter(|l| !l.is_empty() && *l != "UNKNOWN")
                    .map(str::to_string),
            });
        }
    }
    out.sort_by(|a, b| (&a.key, &a.site).cmp(&(&b.key, &b.site)));
    out
}

fn entries_has(layers: &Layers, dir: &str, name: &str) -> bool {
    layers.read_dir(dir).contains_key(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(p: &Path, s: &str) {
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, s).unwrap();
    }

    #[test]
    fn reads_dists_across_layers() {
        let d = tempfile::tempdir().unwrap();
        let l0 = d.path().join("l0");
        let l1 = d.path().join("l1");
        let sp = "usr/local/lib/python3.11/site-packages";
        write(
            &l0.join(sp).join("scikit_learn-1.4.0.dist-info/METADATA"),
            "Metadata-Version: 2.1\nName: scikit-learn\nVersion: 1.4.0\nRequires-Dist: numpy>=1.19\nRequires-Dist: pytest ; extra == 'tests'\n\nbody: x\n",
        );
        write(
            &l0.join(sp).join("scikit_learn-1.4.0.dist-info/RECORD"),
            "sklearn/__init__.py,sha256=x,1\nsklearn/svm/x.py,,\nscikit_learn-1.4.0.dist-info/METADATA,,\n../../../bin/x,,\n",
        );
        write(
            &l0.join(sp).join("old-1.0.dist-info/METADATA"),
            "Name: old\nVersion: 1.0\n",
        );
        write(
            &l1.join(sp).join("opencv_python-4.9.0.dist-info/METADATA"),
            "Name: opencv-python\nVersion: 4.9.0\n",
        );
        write(
            &l1.join(sp)
                .join("opencv_python-4.9.0.dist-info/top_level.txt"),
            "cv2\n",
        );
        write(
            &l1.join(sp).join("opencv_python-4.9.0.dist-info/INSTALLER"),
            "pip\n",
        );
        write(
            &l1.join("usr/lib/python3/dist-packages/yaml-6.0.egg-info"),
            "Metadata-Version: 1.1\nName: PyYAML\nVersion: 6.0\n",
        );
        write(&l0.join("usr/lib/python3.11/json/__init__.py"), "");
        write(&l0.join("usr/lib/python3.11/os.py"), "");
        write(
            &l0.join("usr/lib/python3.11/lib-dynload/_ssl.cpython-311-x86_64-linux-gnu.so"),
            "",
        );
        // l1 deletes `old` with an overlay whiteout (a 0:0 character device).
        std::fs::create_dir_all(l1.join(sp)).unwrap();
        rustix::fs::mknodat(
            rustix::fs::CWD,
            l1.join(sp).join("old-1.0.dist-info"),
            rustix::fs::FileType::CharacterDevice,
            rustix::fs::Mode::from_raw_mode(0),
            0,
        )
        .expect("mknod (tests run as root)");
        let layers = Layers::new(vec![l0, l1]);
        let dists = distributions(&layers);
        let got: Vec<_> = dists
            .iter()
            .map(|d| (d.key.as_str(), d.version.as_str(), d.top_level.join(",")))
            .collect();
        assert_eq!(
            got,
            vec![
                ("opencv-python", "4.9.0", "cv2".to_string()),
                ("pyyaml", "6.0", "pyyaml".to_string()),
                ("scikit-learn", "1.4.0", "sklearn".to_string()),
            ]
        );
        assert_eq!(dists[2].requires, vec!["numpy"]);
        assert_eq!(dists[0].installer.as_deref(), Some("pip"));
        assert_eq!(dists[1].site, "/usr/lib/python3/dist-packages");
        let std = stdlib_names(&layers);
        assert_eq!(std, vec!["_ssl", "json", "os"]);
    }
}
