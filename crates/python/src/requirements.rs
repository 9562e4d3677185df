//! Requirement files as pip reads them, and `pyproject.toml`'s `[project] dependencies`.
//!
//! pip's requirements-file format (pip's `req_file.py`) is not PEP 508: it adds line
//! continuations, `#` comments, option lines (`-r`, `-c`, `-e`, `-i`, `--hash` …) and bare
//! URLs or paths. No published crate parses it (uv's parser is internal to uv), so this module
//! handles the file format and hands each requirement to `pep508_rs`, which parses the PEP 508
//! part (name, extras, specifiers, URL, markers).

use pep508_rs::{Requirement as Pep508, VersionOrUrl};
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// How exactly a requirement names what gets installed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pin {
    /// `name==1.2.3` or `name===1.2.3`: the version.
    Exact(String),
    /// `name @ https://…`, a bare URL or path, `-e …`: the artifact itself is named.
    Url,
    /// `name`, `name>=1.2`, `name==1.*`, `name~=1.2`: pip picks the version.
    Range,
}

/// One requirement of a file.
#[derive(Debug, Clone)]
pub struct Requirement {
    /// The file, as the user names it (relative to the build context).
    pub file: String,
    /// 1-based line where the requirement starts.
    pub line: usize,
    /// The requirement as written, without its options.
    pub text: String,
    /// The distribution name, PEP 503-normalised; `None` for a bare URL or path.
    pub name: Option<String>,
    pub pin: Pin,
    /// `--hash=sha256:…` values on the line.
    pub hashes: Vec<String>,
    /// Whether it has an environment marker (`; python_version < "3.12"`): it may not apply.
    pub has_marker: bool,
    /// From a `-c` constraints file: constrains a version, installs nothing.
    pub constraint: bool,
}

/// A line that could not be read, with where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub file: String,
    pub line: usize,
    pub message: String,
}

/// What a set of requirement files holds.
#[derive(Debug, Clone, Default)]
pub struct Parsed {
    pub requirements: Vec<Requirement>,
    /// Lines that are not valid (reported, never silently dropped).
    pub problems: Vec<Problem>,
    /// The files read (the top file and its includes), as named for the user.
    pub files: Vec<String>,
}

/// pip's options that take a value, in their short and long spellings. They install nothing
/// by themselves (`-r`, `-c` and `-e` are handled separately).
const VALUE_OPTIONS: &[&str] = &[
    "-i",
    "--index-url",
    "--extra-index-url",
    "-f",
    "--find-links",
    "--trusted-host",
    "--only-binary",
    "--no-binary",
    "--use-feature",
];
const FLAG_OPTIONS: &[&str] = &["--no-index", "--pre", "--prefer-binary", "--require-hashes"];

/// Reads `file` (a path inside `root`, named `display` for messages) and the files it includes.
/// Includes that leave `root` or cannot be read are problems, not errors: the build itself
/// decides whether pip can read them.
pub fn parse_file(root: &Path, display: &str) -> Parsed {
    let mut out = Parsed::default();
    let mut seen = Vec::new();
    read_into(root, display, false, &mut out, &mut seen, 0);
    out
}

fn read_into(
    root: &Path,
    display: &str,
    constraint: bool,
    out: &mut Parsed,
    seen: &mut Vec<PathBuf>,
    depth: usize,
) {
    let path = root.join(display);
    let canon = match path.canonicalize() {
        Ok(p) => p,
        Err(e) => {
            out.problems.push(Problem {
                file: display.into(),
                line: 0,
                message: format!("cannot read {display}: {e}"),
            });
            return;
        }
    };
    let root_canon = root.canonicalize().unwrap_or_else(|_| root.to_path_buf());
    if !canon.starts_with(&root_canon) {
        out.problems.push(Problem {
            file: display.into(),
            line: 0,
            message: format!("{display} is outside the build context; not checked"),
        });
        return;
    }
    if seen.contains(&canon) || depth > 32 {
        return;
    }
    seen.push(canon.clone());
    let text = match std::fs::read_to_string(&canon) {
        Ok(t) => t,
        Err(e) => {
            out.problems.push(Problem {
                file: display.into(),
                line: 0,
                message: format!("cannot read {display}: {e}"),
            });
            return;
        }
    };
    out.files.push(display.to_string());
    let dir = Path::new(display)
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    for (line, logical) in logical_lines(&text) {
        match parse_line(&logical) {
            Line::Empty => {}
            Line::Include {
                file,
                constraint: c,
            } => {
                if file.contains("://") {
                    out.problems.push(Problem {
                        file: display.into(),
                        line,
                        message: format!("{file}: remote requirement files are not checked"),
                    });
                    continue;
                }
                let rel = clean(&dir.join(&file));
                read_into(root, &rel, constraint || c, out, seen, depth + 1);
            }
            Line::Requirement(mut r) => {
                r.file = display.to_string();
                r.line = line;
                r.constraint = constraint;
                out.requirements.push(r);
            }
            Line::Invalid(message) => out.problems.push(Problem {
                file: display.into(),
                line,
                message,
            }),
        }
    }
}

/// `a/./b/../c` → `a/c` (lexically; the include's own file is checked against the root).
fn clean(p: &Path) -> String {
    let mut parts: Vec<String> = Vec::new();
    for c in p.components() {
        match c {
            std::path::Component::Normal(s) => parts.push(s.to_string_lossy().into_owned()),
            std::path::Component::ParentDir if parts.pop().is_none() => parts.push("..".into()),
            _ => {}
        }
    }
    parts.join("/")
}

/// Logical lines with the number of their first physical line: a line ending in `\` continues
/// on the next, and comments (`#` at the start or after whitespace) are removed, as pip does.
pub fn logical_lines(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut start = 0;
    for (i, raw) in text.lines().enumerate() {
        if current.is_empty() {
            start = i + 1;
        }
        // pip removes comments before joining continuations.
        let line = strip_comment(raw);
        if let Some(body) = line.strip_suffix('\\') {
            current.push_str(body);
            continue;
        }
        current.push_str(line);
        out.push((start, std::mem::take(&mut current)));
    }
    if !current.is_empty() {
        out.push((start, current));
    }
    out
}

fn strip_comment(line: &str) -> &str {
    if line.trim_start().starts_with('#') {
        return "";
    }
    let b = line.as_bytes();
    for i in 1..b.len() {
        if b[i] == b'#' && b[i - 1].is_ascii_whitespace() {
            return line[..i].trim_end();
        }
    }
    line
}

enum Line {
    Empty,
    Include { file: String, constraint: bool },
    Requirement(Requirement),
    Invalid(String),
}

/// Splits `--opt=value` / `--opt value` into (opt, value).
fn option_value<'a>(tokens: &[&'a str], i: usize) -> (&'a str, Option<String>, usize) {
    let t = tokens[i];
    if let Some((k, v)) = t.split_once('=') {
        if k.starts_with("--") {
            return (k, Some(v.to_string()), 1);
        }
    }
    // `-rfile` (short option glued to its value).
    if t.len() > 2 && !t.starts_with("--") {
        return (&t[..2], Some(t[2..].to_string()), 1);
    }
    (t, tokens.get(i + 1).map(|s| s.to_string()), 2)
}

fn parse_line(line: &str) -> Line {
    let line = line.trim();
    if line.is_empty() {
        return Line::Empty;
    }
    let tokens: Vec<&str> = line.split_whitespace().collect();
    if line.starts_with('-') {
        let (opt, value, _) = option_value(&tokens, 0);
        return match opt {
            "-r" | "--requirement" | "-c" | "--constraint" => match value {
                Some(file) => Line::Include {
                    file,
                    constraint: matches!(opt, "-c" | "--constraint"),
                },
                None => Line::Invalid(format!("{opt} needs a file name")),
            },
            "-e" | "--editable" => match value {
                Some(target) => Line::Requirement(Requirement {
                    file: String::new(),
                    line: 0,
                    name: egg_name(&target),
                    text: format!("-e {target}"),
                    pin: Pin::Url,
                    hashes: Vec::new(),
                    has_marker: false,
                    constraint: false,
                }),
                None => Line::Invalid(format!("{opt} needs a path or URL")),
            },
            o if VALUE_OPTIONS.contains(&o) || FLAG_OPTIONS.contains(&o) => Line::Empty,
            o => Line::Invalid(format!(
                "unknown option {o}: pip's requirement files accept -r, -c, -e, -i, --extra-index-url, -f, --no-index, --pre, --hash …"
            )),
        };
    }
    // The requirement, then its per-requirement options (pip: from the first token that
    // starts with `-`).
    let first_opt = tokens
        .iter()
        .position(|t| t.starts_with("--") || *t == "-C")
        .unwrap_or(tokens.len());
    let spec = tokens[..first_opt].join(" ");
    let mut hashes = Vec::new();
    let mut i = first_opt;
    while i < tokens.len() {
        let (opt, value, used) = option_value(&tokens, i);
        match opt {
            "--hash" => match value {
                Some(v) => hashes.push(v),
                None => return Line::Invalid("--hash needs a value such as sha256:<hex>".into()),
            },
            "--global-option" | "--config-settings" | "-C" => {}
            o => {
                return Line::Invalid(format!(
                    "unknown option {o} after a requirement: pip allows --hash, --config-settings and --global-option there"
                ))
            }
        }
        i += used;
    }
    Line::Requirement(match requirement(&spec) {
        Ok(mut r) => {
            r.hashes = hashes;
            r
        }
        Err(e) => return Line::Invalid(e),
    })
}

/// `#egg=name` of an editable or URL requirement.
fn egg_name(target: &str) -> Option<String> {
    let frag = target.split_once('#')?.1;
    frag.split('&')
        .find_map(|kv| kv.strip_prefix("egg="))
        .map(|n| crate::normalize(n.split('[').next().unwrap_or(n)))
}

/// Parses one requirement: PEP 508, or a bare URL/path as pip also accepts.
pub fn requirement(spec: &str) -> Result<Requirement, String> {
    let base = Requirement {
        file: String::new(),
        line: 0,
        text: spec.to_string(),
        name: None,
        pin: Pin::Url,
        hashes: Vec::new(),
        has_marker: false,
        constraint: false,
    };
    let looks_like_path = spec.starts_with('.')
        || spec.starts_with('/')
        || spec.contains("://") && !spec.contains(" @ ") && !spec.contains('@')
        || [".whl", ".tar.gz", ".zip"].iter().any(|s| {
            spec.split([';', '#'])
                .next()
                .unwrap_or("")
                .trim()
                .ends_with(s)
        }) && !spec.contains('@');
    if looks_like_path {
        return Ok(Requirement {
            name: egg_name(spec),
            ..base
        });
    }
    let r = Pep508::<pep508_rs::VerbatimUrl>::from_str(spec).map_err(|e| {
        format!(
            "{spec:?} is not a valid requirement: {}",
            first_line(&e.to_string())
        )
    })?;
    let pin = match &r.version_or_url {
        Some(VersionOrUrl::Url(_)) => Pin::Url,
        Some(VersionOrUrl::VersionSpecifier(specs)) => {
            let exact: Vec<_> = specs
                .iter()
                .filter(|s| {
                    matches!(
                        s.operator(),
                        pep440_rs::Operator::Equal | pep440_rs::Operator::ExactEqual
                    )
                })
                .collect();
            match exact.first() {
                Some(s) if specs.len() == 1 => Pin::Exact(s.version().to_string()),
                _ => Pin::Range,
            }
        }
        None => Pin::Range,
    };
    Ok(Requirement {
        name: Some(crate::normalize(r.name.as_ref())),
        pin,
        has_marker: !r.marker.is_true(),
        ..base
    })
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or(s)
}

/// `[project] dependencies` of a `pyproject.toml`, each with the line it is written on.
pub fn parse_pyproject(text: &str, display: &str) -> Parsed {
    let mut out = Parsed {
        files: vec![display.to_string()],
        ..Default::default()
    };
    let doc: toml::Table = match text.parse() {
        Ok(d) => d,
        Err(e) => {
            out.problems.push(Problem {
                file: display.into(),
                line: 0,
                message: format!(
                    "{display} is not valid TOML: {}",
                    first_line(&e.to_string())
                ),
            });
            return out;
        }
    };
    let deps = doc
        .get("project")
        .and_then(|p| p.get("dependencies"))
        .and_then(|d| d.as_array());
    let Some(deps) = deps else {
        return out;
    };
    for d in deps {
        let Some(spec) = d.as_str() else {
            continue;
        };
        let line = line_of(text, spec);
        match requirement(spec) {
            Ok(mut r) => {
                r.file = display.into();
                r.line = line;
                out.requirements.push(r);
            }
            Err(message) => out.problems.push(Problem {
                file: display.into(),
                line,
                message,
            }),
        }
    }
    out
}

/// The line of the first quoted occurrence of `s` after `dependencies`.
fn line_of(text: &str, s: &str) -> usize {
    let from = text.find("dependencies").unwrap_or(0);
    for q in ['"', '\''] {
        let needle = format!("{q}{s}{q}");
        if let Some(at) = text[from..].find(&needle) {
            return text[..from + at].matches('\n').count() + 1;
        }
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(s: &str) -> Requirement {
        match parse_line(s) {
            Line::Requirement(r) => r,
            _ => panic!("{s:?} is no requirement"),
        }
    }

    #[test]
    fn pins_and_ranges() {
        assert_eq!(one("numpy==1.26.4").pin, Pin::Exact("1.26.4".into()));
        assert_eq!(one("numpy===1.26.4").pin, Pin::Exact("1.26.4".into()));
        assert_eq!(one("numpy").pin, Pin::Range);
        assert_eq!(one("numpy>=1.2").pin, Pin::Range);
        assert_eq!(one("numpy==1.*").pin, Pin::Range);
        assert_eq!(one("numpy>=1,==1.2").pin, Pin::Range);
        assert_eq!(one("numpy~=1.2").pin, Pin::Range);
        let r = one("Scikit_Learn[alldeps] == 1.4.0 ; python_version >= \"3.9\"");
        assert_eq!(r.name.as_deref(), Some("scikit-learn"));
        assert_eq!(r.pin, Pin::Exact("1.4.0".into()));
        assert!(r.has_marker);
        let u = one("pkg @ https://example.com/pkg-1.0-py3-none-any.whl");
        assert_eq!(u.pin, Pin::Url);
        assert_eq!(u.name.as_deref(), Some("pkg"));
        assert_eq!(one("./wheels/x-1.0-py3-none-any.whl").pin, Pin::Url);
        assert_eq!(
            one("git+https://h/x.git#egg=Foo_Bar").name.as_deref(),
            Some("foo-bar")
        );
    }

    #[test]
    fn options_hashes_and_errors() {
        let r = one("requests==2.31.0 --hash=sha256:aa --hash sha256:bb");
        assert_eq!(r.hashes, ["sha256:aa", "sha256:bb"]);
        assert_eq!(r.text, "requests==2.31.0");
        assert!(matches!(
            parse_line("--index-url https://x/simple"),
            Line::Empty
        ));
        assert!(matches!(parse_line("--no-index"), Line::Empty));
        assert!(matches!(parse_line("-fwheels"), Line::Empty));
        assert!(matches!(parse_line("--bogus"), Line::Invalid(_)));
        assert!(matches!(parse_line("numpy ==="), Line::Invalid(_)));
        assert!(matches!(parse_line("-r"), Line::Invalid(_)));
        match parse_line("-e ./lib#egg=mylib") {
            Line::Requirement(r) => {
                assert_eq!(r.pin, Pin::Url);
                assert_eq!(r.name.as_deref(), Some("mylib"));
            }
            _ => panic!("editable"),
        }
    }

    #[test]
    fn continuations_comments_and_line_numbers() {
        let t = "# top\nnumpy \\\n  ==1.0  # pinned\n\npandas>=2 # loose\n  # indented comment\nx#y==1\n";
        let l = logical_lines(t);
        assert_eq!(
            l.iter()
                .map(|(n, s)| (*n, s.trim().to_string()))
                .filter(|(_, s)| !s.is_empty())
                .collect::<Vec<_>>(),
            vec![
                (2, "numpy   ==1.0".to_string()),
                (5, "pandas>=2".to_string()),
                (7, "x#y==1".to_string()),
            ]
        );
    }

    #[test]
    fn includes_constraints_and_escapes() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("ctx");
        std::fs::create_dir_all(root.join("req")).unwrap();
        std::fs::write(
            root.join("requirements.txt"),
            "-r req/base.txt\n-c req/constraints.txt\nflask\n-r ../../etc/passwd\n-r requirements.txt\n",
        )
        .unwrap();
        std::fs::write(root.join("req/base.txt"), "numpy==1.26.4\n-r more.txt\n").unwrap();
        std::fs::write(root.join("req/more.txt"), "pandas\n").unwrap();
        std::fs::write(root.join("req/constraints.txt"), "flask==3.0.0\n").unwrap();
        let p = parse_file(&root, "requirements.txt");
        let got: Vec<_> = p
            .requirements
            .iter()
            .map(|r| {
                (
                    r.file.as_str(),
                    r.line,
                    r.name.clone().unwrap(),
                    r.constraint,
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                ("req/base.txt", 1, "numpy".to_string(), false),
                ("req/more.txt", 1, "pandas".to_string(), false),
                ("req/constraints.txt", 1, "flask".to_string(), true),
                ("requirements.txt", 3, "flask".to_string(), false),
            ]
        );
        assert_eq!(p.problems.len(), 1, "{:?}", p.problems);
        assert!(
            p.problems[0].message.contains("cannot read")
                || p.problems[0].message.contains("outside")
        );
    }

    #[test]
    fn pyproject_dependencies_with_lines() {
        let t = "[project]\nname = \"app\"\ndependencies = [\n  \"numpy==1.26.4\",\n  'pandas>=2',\n]\n[project.optional-dependencies]\ndev = [\"pytest\"]\n";
        let p = parse_pyproject(t, "pyproject.toml");
        let got: Vec<_> = p
            .requirements
            .iter()
            .map(|r| (r.line, r.name.clone().unwrap(), r.pin.clone()))
            .collect();
        assert_eq!(
            got,
            vec![
                (4, "numpy".into(), Pin::Exact("1.26.4".into())),
                (5, "pandas".into(), Pin::Range)
            ]
        );
        assert_eq!(parse_pyproject("[project", "p").problems.len(), 1);
    }
}
