//! Which RUN steps install a Python project, and from which files: `pip install -r FILE`,
//! `-c FILE`, `pip install .` / `-e DIR` (the project's `pyproject.toml`), and packages named
//! on the command line. `pip`, `pip3`, `pip3.X`, `python* -m pip` and `uv pip` are recognised.

/// What one install names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum What {
    /// `-r FILE`: a requirements file (an image path, usually relative to WORKDIR).
    Requirements(String),
    /// `-c FILE`.
    Constraints(String),
    /// `.`, `./dir`, `-e DIR`: a project directory.
    Project(String),
    /// `numpy==1.26.4` on the command line.
    Named(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Install {
    /// The RUN's first line in the Dockerfile.
    pub line: usize,
    pub what: What,
}

/// pip install options that take a value (the value is not a requirement).
const VALUE_OPTS: &[&str] = &[
    "-i",
    "--index-url",
    "--extra-index-url",
    "-f",
    "--find-links",
    "-t",
    "--target",
    "--prefix",
    "--root",
    "--trusted-host",
    "--no-binary",
    "--only-binary",
    "--platform",
    "--python-version",
    "--implementation",
    "--abi",
    "--progress-bar",
    "--cache-dir",
    "--src",
    "--upgrade-strategy",
    "-C",
    "--config-settings",
    "--global-option",
    "--log",
    "--timeout",
    "--retries",
    "--proxy",
    "--cert",
    "--client-cert",
    "--exists-action",
    "--python",
    "--report",
];

/// Shell words of a command, split at `&&`, `||`, `;`, `|` and newlines; quotes removed.
fn commands(text: &str) -> Vec<Vec<String>> {
    let mut out = vec![Vec::new()];
    let mut word = String::new();
    let mut quote: Option<char> = None;
    let mut chars = text.chars().peekable();
    let end_word = |word: &mut String, out: &mut Vec<Vec<String>>| {
        if !word.is_empty() {
            out.last_mut()
                .expect("one command")
                .push(std::mem::take(word));
        }
    };
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => word.push(c),
            (None, '\'' | '"') => quote = Some(c),
            (None, '\\') => match chars.next() {
                Some('\n') | None => {}
                Some(n) => word.push(n),
            },
            (None, ' ' | '\t') => end_word(&mut word, &mut out),
            (None, '\n' | ';' | '|' | '&') => {
                end_word(&mut word, &mut out);
                out.push(Vec::new());
            }
            (None, c) => word.push(c),
        }
    }
    end_word(&mut word, &mut out);
    out.retain(|c| !c.is_empty());
    out
}

/// The index of `install` after a pip invocation in `words`, if the command is one.
fn pip_install_at(words: &[String]) -> Option<usize> {
    for (i, w) in words.iter().enumerate() {
        // The command word, after `VAR=value`s, `env`, `sudo` or `exec`.
        if w.contains('=') && !w.starts_with('-') || matches!(w.as_str(), "env" | "sudo" | "exec") {
            continue;
        }
        let base = w.rsplit('/').next().unwrap_or(w);
        let is_pip = base == "pip"
            || base == "pip3"
            || (base.starts_with("pip3.") && base[5..].chars().all(|c| c.is_ascii_digit()));
        let module_pip = base.starts_with("python")
            && words.get(i + 1).map(String::as_str) == Some("-m")
            && words.get(i + 2).map(String::as_str) == Some("pip");
        let uv_pip = base == "uv" && words.get(i + 1).map(String::as_str) == Some("pip");
        let at = if uv_pip {
            i + 2
        } else if is_pip {
            i + 1
        } else if module_pip {
            i + 3
        } else {
            return None;
        };
        if words.get(at).map(String::as_str) == Some("install") {
            return Some(at);
        }
        return None;
    }
    None
}

/// Every install of every RUN (line, command text).
pub fn find(runs: &[(usize, String)]) -> Vec<Install> {
    let mut out = Vec::new();
    for (line, text) in runs {
        for words in commands(text) {
            let Some(at) = pip_install_at(&words) else {
                continue;
            };
            let mut i = at + 1;
            while i < words.len() {
                let w = words[i].as_str();
                let push =
                    |what: What, out: &mut Vec<Install>| out.push(Install { line: *line, what });
                let (opt, glued) = match w.split_once('=') {
                    Some((k, v)) if k.starts_with("--") => (k, Some(v.to_string())),
                    _ if w.len() > 2
                        && (w.starts_with("-r") || w.starts_with("-c") || w.starts_with("-e"))
                        && !w.starts_with("--") =>
                    {
                        (&w[..2], Some(w[2..].to_string()))
                    }
                    _ => (w, None),
                };
                let value = |i: &mut usize| -> Option<String> {
                    match &glued {
                        Some(v) => Some(v.clone()),
                        None => {
                            *i += 1;
                            words.get(*i).cloned()
                        }
                    }
                };
                match opt {
                    "-r" | "--requirement" => {
                        if let Some(v) = value(&mut i) {
                            push(What::Requirements(v), &mut out);
                        }
                    }
                    "-c" | "--constraint" => {
                        if let Some(v) = value(&mut i) {
                            push(What::Constraints(v), &mut out);
                        }
                    }
                    "-e" | "--editable" => {
                        if let Some(v) = value(&mut i) {
                            if !v.contains("://") {
                                push(What::Project(v), &mut out);
                            }
                        }
                    }
                    o if VALUE_OPTS.contains(&o) && glued.is_none() => i += 1,
                    o if o.starts_with('-') => {}
                    // An archive is pinned by its file.
                    p if p.ends_with(".whl") || p.ends_with(".tar.gz") || p.ends_with(".zip") => {}
                    p if p == "." || p.starts_with("./") || p.starts_with('/') => {
                        push(What::Project(p.to_string()), &mut out)
                    }
                    p if !p.contains("://") && !p.contains('$') => {
                        push(What::Named(p.to_string()), &mut out)
                    }
                    _ => {}
                }
                i += 1;
            }
        }
    }
    out
}

/// The context file an image path names: the longest trailing part of `path` that is a
/// context file (`/app/requirements.txt` → `requirements.txt`; `./req/dev.txt` →
/// `req/dev.txt`).
pub fn in_context(path: &str, files: &[String]) -> Option<String> {
    let parts: Vec<&str> = path
        .split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .collect();
    (0..parts.len()).find_map(|skip| {
        let cand = parts[skip..].join("/");
        files.iter().find(|f| **f == cand).cloned()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn whats(run: &str) -> Vec<What> {
        find(&[(7, run.to_string())])
            .into_iter()
            .map(|i| i.what)
            .collect()
    }

    #[test]
    fn finds_installs() {
        assert_eq!(
            whats("pip install --no-cache-dir -r requirements.txt"),
            vec![What::Requirements("requirements.txt".into())]
        );
        assert_eq!(
            whats("python3 -m pip install --no-index --find-links wheels -rreq.txt -c c.txt && pip3 install -e . 'numpy==1.26.4'"),
            vec![
                What::Requirements("req.txt".into()),
                What::Constraints("c.txt".into()),
                What::Project(".".into()),
                What::Named("numpy==1.26.4".into()),
            ]
        );
        assert_eq!(
            whats("apt-get install -y python3 && /usr/local/bin/pip3.11 install --requirement=/app/r.txt ./"),
            vec![
                What::Requirements("/app/r.txt".into()),
                What::Project("./".into())
            ]
        );
        assert_eq!(whats("echo pip install x; pip download -r r.txt"), vec![]);
        assert_eq!(whats("pip install ./dist/app-1.0-py3-none-any.whl"), vec![]);
        assert_eq!(
            whats("pip install \\\n  -r requirements.txt"),
            vec![What::Requirements("requirements.txt".into())]
        );
        assert_eq!(
            whats("PIP_NO_CACHE_DIR=1 uv pip install -r r.txt"),
            vec![What::Requirements("r.txt".into())]
        );
    }

    #[test]
    fn maps_image_paths_to_the_context() {
        let files = vec!["requirements.txt".to_string(), "req/dev.txt".to_string()];
        assert_eq!(
            in_context("/app/requirements.txt", &files).as_deref(),
            Some("requirements.txt")
        );
        assert_eq!(
            in_context("./req/dev.txt", &files).as_deref(),
            Some("req/dev.txt")
        );
        assert_eq!(in_context("other.txt", &files), None);
    }
}
