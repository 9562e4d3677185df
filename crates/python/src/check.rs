//! The requirement checks: what a project's requirements say against what its code imports and
//! what the built image installed.

use crate::imports::Import;
use crate::requirements::{Pin, Problem, Requirement};
use crate::site::Dist;
use std::collections::{BTreeMap, HashSet};
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A requirement without an exact version.
    Unpinned,
    /// An import that no requirement provides.
    Unprovided,
    /// A pin that pip resolved to another version, or a requirement the image lacks.
    Mismatch,
    /// A line that is not a valid requirement.
    Invalid,
}

/// One finding, with the file and line it is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub kind: Kind,
    pub file: String,
    pub line: usize,
    pub message: String,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.line > 0 {
            write!(f, "{}:{}: {}", self.file, self.line, self.message)
        } else {
            write!(f, "{}: {}", self.file, self.message)
        }
    }
}

/// The project as the build sees it.
pub struct Project<'a> {
    pub requirements: &'a [Requirement],
    pub problems: &'a [Problem],
    /// (file, import) for every `.py` file of the context.
    pub imports: &'a [(String, Import)],
    /// Top-level names of the project's own modules and packages.
    pub local: &'a HashSet<String>,
    pub stdlib: &'a HashSet<String>,
    pub installed: &'a [Dist],
}

fn same_version(a: &str, b: &str) -> bool {
    match (
        pep440_rs::Version::from_str(a),
        pep440_rs::Version::from_str(b),
    ) {
        (Ok(x), Ok(y)) => x == y,
        _ => a == b,
    }
}

/// Every finding, in file and line order.
pub fn check(p: &Project) -> Vec<Finding> {
    let mut out = Vec::new();
    for pr in p.problems {
        out.push(Finding {
            kind: Kind::Invalid,
            file: pr.file.clone(),
            line: pr.line,
            message: pr.message.clone(),
        });
    }
    let mut installed: BTreeMap<&str, &Dist> = BTreeMap::new();
    for d in p.installed {
        installed.entry(d.key.as_str()).or_insert(d);
    }
    let constrained: HashSet<&str> = p
        .requirements
        .iter()
        .filter(|r| r.constraint && matches!(r.pin, Pin::Exact(_) | Pin::Url))
        .filter_map(|r| r.name.as_deref())
        .collect();
    for r in p.requirements {
        let Some(name) = r.name.as_deref() else {
            continue;
        };
        let have = installed.get(name);
        match &r.pin {
            Pin::Range if !r.constraint && r.hashes.is_empty() && !constrained.contains(name) => {
                let hint = match have {
                    Some(d) => format!(
                        "the image has {} {}: write {}=={}",
                        d.name, d.version, name, d.version
                    ),
                    None => "pin it with ==".to_string(),
                };
                out.push(Finding {
                    kind: Kind::Unpinned,
                    file: r.file.clone(),
                    line: r.line,
                    message: format!("{} has no exact version; {hint}", r.text),
                });
            }
            Pin::Exact(v) => match have {
                Some(d) if !same_version(v, &d.version) => out.push(Finding {
                    kind: Kind::Mismatch,
                    file: r.file.clone(),
                    line: r.line,
                    message: format!(
                        "{} is pinned, but pip installed {} {} (in {})",
                        r.text, d.name, d.version, d.site
                    ),
                }),
                None if !r.constraint && !r.has_marker && !p.installed.is_empty() => {
                    out.push(Finding {
                        kind: Kind::Mismatch,
                        file: r.file.clone(),
                        line: r.line,
                        message: format!("{} is required, but the image has no {name}", r.text),
                    })
                }
                _ => {}
            },
            _ => {}
        }
    }
    // Imports: a requirement provides a module when it names a distribution whose top-level
    // names include it; a requirement by URL or path without a name provides every
    // distribution installed from a URL or path (PEP 610 `direct_url.json`).
    let required: HashSet<&str> = p
        .requirements
        .iter()
        .filter(|r| !r.constraint)
        .filter_map(|r| r.name.as_deref())
        .collect();
    let unnamed_url = p
        .requirements
        .iter()
        .any(|r| !r.constraint && r.name.is_none());
    let mut providers: BTreeMap<&str, Vec<&Dist>> = BTreeMap::new();
    for d in p.installed {
        for t in &d.top_level {
            providers.entry(t.as_str()).or_default().push(d);
        }
    }
    let mut reported: HashSet<&str> = HashSet::new();
    for (file, imp) in p.imports {
        let m = imp.module.as_str();
        if imp.optional
            || p.stdlib.contains(m)
            || p.local.contains(m)
            || m == "__future__"
            || reported.contains(m)
        {
            continue;
        }
        let provided_by: Vec<&Dist> = providers.get(m).cloned().unwrap_or_default();
        let ok = provided_by
            .iter()
            .any(|d| required.contains(d.key.as_str()) || (unnamed_url && d.direct_url.is_some()));
        if ok {
            continue;
        }
        let message = match provided_by.first() {
            None => format!(
                "import {m}: no requirement provides it and no installed distribution has a top-level module {m:?}; add the distribution that provides it to the requirements"
            ),
            Some(d) => {
                let parents: Vec<&str> = p
                    .installed
                    .iter()
                    .filter(|x| x.requires.iter().any(|r| r == &d.key))
                    .map(|x| x.name.as_str())
                    .collect();
                let via = if parents.is_empty() {
                    String::new()
                } else {
                    format!(" (installed only as a dependency of {})", parents.join(", "))
                };
                format!(
                    "import {m}: provided by {} {}, which no requirement names{via}; add {}=={}",
                    d.name, d.version, d.key, d.version
                )
            }
        };
        reported.insert(m);
        out.push(Finding {
            kind: Kind::Unprovided,
            file: file.clone(),
            line: imp.line,
            message,
        });
    }
    out.sort_by(|a, b| (&a.file, a.line).cmp(&(&b.file, b.line)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::requirements::requirement;

    fn dist(name: &str, version: &str, top: &[&str], requires: &[&str]) -> Dist {
        Dist {
            name: name.into(),
            key: crate::normalize(name),
            version: version.into(),
            site: "/usr/local/lib/python3.11/site-packages".into(),
            meta: format!("{name}-{version}.dist-info"),
            top_level: top.iter().map(|s| s.to_string()).collect(),
            requires: requires.iter().map(|s| s.to_string()).collect(),
            installer: Some("pip".into()),
            direct_url: None,
            requested: true,
            license: None,
        }
    }

    fn req(s: &str, line: usize) -> Requirement {
        let mut r = requirement(s).unwrap();
        r.file = "requirements.txt".into();
        r.line = line;
        r
    }

    #[test]
    fn the_three_findings() {
        let reqs = vec![
            req("numpy>=1.2", 1),
            req("scikit-learn==1.3.0", 2),
            req("requests==2.31", 3),
            req("flask==3.0.0", 4),
        ];
        let installed = vec![
            dist("numpy", "1.26.4", &["numpy"], &[]),
            dist("scikit-learn", "1.4.0", &["sklearn"], &["numpy", "scipy"]),
            dist("scipy", "1.12.0", &["scipy"], &["numpy"]),
            dist("requests", "2.31.0", &["requests"], &[]),
        ];
        let imports: Vec<(String, Import)> = [
            ("train.py", "numpy", 1, false),
            ("train.py", "sklearn", 2, false),
            ("train.py", "scipy", 3, false),
            ("train.py", "cv2", 4, false),
            ("train.py", "os", 5, false),
            ("train.py", "helpers", 6, false),
            ("train.py", "ujson", 7, true),
            ("other.py", "cv2", 1, false),
        ]
        .iter()
        .map(|(f, m, l, o)| {
            (
                f.to_string(),
                Import {
                    module: m.to_string(),
                    line: *l,
                    optional: *o,
                },
            )
        })
        .collect();
        let local: HashSet<String> = ["helpers".to_string()].into();
        let stdlib: HashSet<String> = crate::stdlib::STDLIB_MODULES
            .iter()
            .map(|s| s.to_string())
            .collect();
        let f = check(&Project {
            requirements: &reqs,
            problems: &[],
            imports: &imports,
            local: &local,
            stdlib: &stdlib,
            installed: &installed,
        });
        let got: Vec<(Kind, String, usize)> =
            f.iter().map(|f| (f.kind, f.file.clone(), f.line)).collect();
        assert_eq!(
            got,
            vec![
                (Kind::Unpinned, "requirements.txt".into(), 1),
                (Kind::Mismatch, "requirements.txt".into(), 2),
                (Kind::Mismatch, "requirements.txt".into(), 4),
                (Kind::Unprovided, "train.py".into(), 3),
                (Kind::Unprovided, "train.py".into(), 4),
            ],
            "{f:#?}"
        );
        assert!(f[0].message.contains("write numpy==1.26.4"), "{}", f[0]);
        assert!(
            f[1].message.contains("pip installed scikit-learn 1.4.0"),
            "{}",
            f[1]
        );
        assert!(
            f[3].message.contains("dependency of scikit-learn"),
            "{}",
            f[3]
        );
        assert_eq!(
            f[0].to_string(),
            "requirements.txt:1: numpy>=1.2 has no exact version; the image has numpy 1.26.4: write numpy==1.26.4"
        );
    }
}
