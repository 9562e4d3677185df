//! `.dockerignore` matching, with Docker's rules:
//!
//! - one pattern per line; lines starting with `#` are comments; blank lines
//!   are skipped; surrounding whitespace is trimmed;
//! - patterns use `filepath.Match` syntax (`*`, `?`, `[a-z]`, `[^a-z]`, `\`
//!   escapes) plus `**`, which matches any number of directories (zero
//!   included);
//! - paths are cleaned: a leading `/` or `./` is dropped, `a/../b` is `b`;
//! - a pattern matches a path or anything below it (`build` excludes
//!   `build/x/y`);
//! - `!pattern` re-includes what earlier patterns excluded; the last matching
//!   pattern wins.

/// One compiled pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    /// The cleaned pattern text (without `!`).
    pub text: String,
    /// Whether it is an exception (`!pattern`).
    pub exclusion: bool,
    tokens: Vec<Tok>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Lit(char),
    /// `?`: one character other than `/`.
    Any,
    /// `*`: any run of characters other than `/`.
    Star,
    /// `**/` or `**` inside a pattern: any run of characters ending in `/`, or nothing.
    Dirs,
    /// `**` at the end: anything.
    All,
    /// `[...]`.
    Class(Vec<(char, char)>, bool),
}

/// Cleans a path like Go's `filepath.Clean`, then drops a leading `/`.
pub fn clean_path(p: &str) -> String {
    let rooted = p.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in p.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|l| *l != "..") {
                    parts.pop();
                } else if !rooted {
                    parts.push("..");
                }
            }
            other => parts.push(other),
        }
    }
    if parts.is_empty() {
        return ".".into();
    }
    parts.join("/")
}

fn compile(pattern: &str) -> Vec<Tok> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        i += 1;
        match c {
            '*' if chars.get(i) == Some(&'*') => {
                i += 1;
                if chars.get(i) == Some(&'/') {
                    i += 1;
                }
                out.push(if i >= chars.len() {
                    Tok::All
                } else {
                    Tok::Dirs
                });
            }
            '*' => out.push(Tok::Star),
            '?' => out.push(Tok::Any),
            '\\' => match chars.get(i) {
                Some(&n) => {
                    out.push(Tok::Lit(n));
                    i += 1;
                }
                None => out.push(Tok::Lit('\\')),
            },
            '[' => {
                let mut j = i;
                let negated = matches!(chars.get(j), Some('^') | Some('!'));
                if negated {
                    j += 1;
                }
                let mut ranges = Vec::new();
                let mut closed = false;
                while j < chars.len() {
                    let mut lo = chars[j];
                    if lo == ']' && (j > i + usize::from(negated)) {
                        closed = true;
                        j += 1;
                        break;
                    }
                    if lo == '\\' && j + 1 < chars.len() {
                        j += 1;
                        lo = chars[j];
                    }
                    let mut hi = lo;
                    if chars.get(j + 1) == Some(&'-') && chars.get(j + 2).is_some_and(|c| *c != ']')
                    {
                        hi = chars[j + 2];
                        j += 2;
                    }
                    ranges.push((lo, hi));
                    j += 1;
                }
                if closed {
                    out.push(Tok::Class(ranges, negated));
                    i = j;
                } else {
                    out.push(Tok::Lit('['));
                }
            }
            c => out.push(Tok::Lit(c)),
        }
    }
    out
}

/// Whether `toks` matches `s` entirely (`at_end`) or some prefix of `s`
/// that ends at a `/` boundary or at the end (a pattern matches a path and
/// everything below it).
fn matches(toks: &[Tok], s: &[char]) -> bool {
    match toks.first() {
        None => s.is_empty() || s[0] == '/',
        Some(Tok::Lit(c)) => s.first() == Some(c) && matches(&toks[1..], &s[1..]),
        Some(Tok::Any) => s.first().is_some_and(|c| *c != '/') && matches(&toks[1..], &s[1..]),
        Some(Tok::Class(ranges, neg)) => match s.first() {
            Some(&c) if c != '/' => {
                let hit = ranges.iter().any(|(lo, hi)| *lo <= c && c <= *hi);
                hit != *neg && matches(&toks[1..], &s[1..])
            }
            _ => false,
        },
        Some(Tok::Star) => {
            let mut i = 0;
            loop {
                if matches(&toks[1..], &s[i..]) {
                    return true;
                }
                if i >= s.len() || s[i] == '/' {
                    return false;
                }
                i += 1;
            }
        }
        Some(Tok::Dirs) => {
            if matches(&toks[1..], s) {
                return true;
            }
            (0..s.len()).any(|i| s[i] == '/' && matches(&toks[1..], &s[i + 1..]))
        }
        Some(Tok::All) => true,
    }
}

/// Whether `toks` could match some path that starts with `prefix` (a
/// directory path followed by `/`).
fn could_match_below(toks: &[Tok], s: &[char]) -> bool {
    if s.is_empty() {
        return true;
    }
    match toks.first() {
        None => s[0] == '/',
        Some(Tok::Lit(c)) => s[0] == *c && could_match_below(&toks[1..], &s[1..]),
        Some(Tok::Any) => s[0] != '/' && could_match_below(&toks[1..], &s[1..]),
        Some(Tok::Class(ranges, neg)) => {
            let c = s[0];
            c != '/'
                && ranges.iter().any(|(lo, hi)| *lo <= c && c <= *hi) != *neg
                && could_match_below(&toks[1..], &s[1..])
        }
        Some(Tok::Star) => {
            let mut i = 0;
            loop {
                if could_match_below(&toks[1..], &s[i..]) {
                    return true;
                }
                if i >= s.len() || s[i] == '/' {
                    return false;
                }
                i += 1;
            }
        }
        Some(Tok::Dirs) | Some(Tok::All) => true,
    }
}

impl Pattern {
    /// Compiles one pattern line (already trimmed; may start with `!`).
    pub fn new(line: &str) -> Pattern {
        let (exclusion, body) = match line.strip_prefix('!') {
            Some(rest) => (true, rest.trim()),
            None => (false, line),
        };
        let text = clean_path(body);
        Pattern {
            tokens: compile(&text),
            text,
            exclusion,
        }
    }

    /// Whether the pattern matches `path` (cleaned, relative) or one of its parents.
    pub fn matches(&self, path: &str) -> bool {
        let chars: Vec<char> = path.chars().collect();
        matches(&self.tokens, &chars)
    }
}

/// A parsed `.dockerignore`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DockerIgnore {
    /// The patterns in file order.
    pub patterns: Vec<Pattern>,
}

impl DockerIgnore {
    /// Parses the text of a `.dockerignore` file.
    pub fn parse(text: &str) -> DockerIgnore {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let patterns = text
            .lines()
            .filter(|l| !l.starts_with('#'))
            .map(str::trim)
            .filter(|l| !l.is_empty() && *l != "!")
            .map(Pattern::new)
            .collect();
        DockerIgnore { patterns }
    }

    /// Builds a matcher from pattern strings (as from `--exclude` flags).
    pub fn from_patterns<S: AsRef<str>>(patterns: &[S]) -> DockerIgnore {
        DockerIgnore {
            patterns: patterns
                .iter()
                .map(|p| p.as_ref().trim())
                .filter(|p| !p.is_empty())
                .map(Pattern::new)
                .collect(),
        }
    }

    /// Whether there are `!` exceptions at all.
    pub fn has_exclusions(&self) -> bool {
        self.patterns.iter().any(|p| p.exclusion)
    }

    /// Whether `path` (relative to the context root, `/`-separated) is left
    /// out of the build context.
    pub fn is_excluded(&self, path: &str) -> bool {
        let path = clean_path(path);
        if path == "." {
            return false;
        }
        let mut excluded = false;
        for p in &self.patterns {
            if p.exclusion != excluded {
                continue;
            }
            if p.matches(&path) {
                excluded = !p.exclusion;
            }
        }
        excluded
    }

    /// For an excluded directory: whether some `!` exception could
    /// re-include a path below it, so a walker must still descend into it.
    pub fn might_contain_included(&self, dir: &str) -> bool {
        let dir = clean_path(dir);
        if dir == "." {
            return self.has_exclusions();
        }
        let mut prefix: Vec<char> = dir.chars().collect();
        prefix.push('/');
        self.patterns
            .iter()
            .filter(|p| p.exclusion)
            .any(|p| could_match_below(&p.tokens, &prefix))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn di(s: &str) -> DockerIgnore {
        DockerIgnore::parse(s)
    }

    #[test]
    fn cleans_paths() {
        assert_eq!(clean_path("./a//b/../c/"), "a/c");
        assert_eq!(clean_path("/foo"), "foo");
        assert_eq!(clean_path("."), ".");
    }

    #[test]
    fn comments_and_blank_lines() {
        let d = di("# comment\n\n  node_modules  \n #notacomment\n");
        assert_eq!(d.patterns.len(), 2);
        assert!(d.is_excluded("node_modules/x/y.js"));
        assert!(d.is_excluded("#notacomment"));
        assert!(!d.is_excluded("# comment"));
    }

    #[test]
    fn leading_slash_and_dot() {
        let d = di("/build\n./dist\n");
        assert!(d.is_excluded("build"));
        assert!(d.is_excluded("build/out.o"));
        assert!(d.is_excluded("dist/a"));
        assert!(!d.is_excluded("src/build"));
    }

    #[test]
    fn star_does_not_cross_slash() {
        let d = di("*.md\n");
        assert!(d.is_excluded("README.md"));
        assert!(!d.is_excluded("docs/README.md"));
        let d = di("*/temp*\n");
        assert!(d.is_excluded("a/temporary"));
        assert!(!d.is_excluded("a/b/temporary"));
    }

    #[test]
    fn double_star() {
        let d = di("**/*.go\n");
        assert!(d.is_excluded("main.go"));
        assert!(d.is_excluded("a/b/c.go"));
        let d = di("a/**/z\n");
        assert!(d.is_excluded("a/z"));
        assert!(d.is_excluded("a/b/c/z"));
        assert!(!d.is_excluded("b/z"));
        let d = di("docs/**\n");
        assert!(d.is_excluded("docs/x/y"));
        let d = di("**\n!keep\n");
        assert!(d.is_excluded("anything/at/all"));
        assert!(!d.is_excluded("keep"));
    }

    #[test]
    fn question_mark_and_classes() {
        let d = di("file?.txt\n[abc].log\n[^x]y\n");
        assert!(d.is_excluded("file1.txt"));
        assert!(!d.is_excluded("file10.txt"));
        assert!(d.is_excluded("b.log"));
        assert!(!d.is_excluded("d.log"));
        assert!(d.is_excluded("ay"));
        assert!(!d.is_excluded("xy"));
        let d = di("a\\*b\n");
        assert!(d.is_excluded("a*b"));
        assert!(!d.is_excluded("axb"));
    }

    #[test]
    fn exceptions_last_match_wins() {
        let d = di("*.md\n!README.md\nREADME-secret.md\n");
        assert!(d.is_excluded("CHANGES.md"));
        assert!(!d.is_excluded("README.md"));
        assert!(d.is_excluded("README-secret.md"));
        let d = di("!README.md\n*.md\n");
        assert!(d.is_excluded("README.md"));
    }

    #[test]
    fn excluded_dir_with_reincluded_child() {
        let d = di("vendor\n!vendor/keep/**\n");
        assert!(d.is_excluded("vendor/other/x"));
        assert!(!d.is_excluded("vendor/keep/x"));
        assert!(d.is_excluded("vendor"));
        assert!(d.might_contain_included("vendor"));
        assert!(d.might_contain_included("vendor/keep"));
        assert!(!d.might_contain_included("vendor/other"));
        assert!(!d.might_contain_included("node_modules"));
        let d = di("*\n!**/*.rs\n");
        assert!(d.might_contain_included("deep/dir"));
        let d = di("target\n");
        assert!(!d.might_contain_included("target"));
    }
}
