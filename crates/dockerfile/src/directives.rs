//! Parser directives: `# syntax=`, `# escape=` and `# check=` comments at the
//! very top of a Dockerfile.
//!
//! Directives are only recognised before the first instruction, blank line
//! or ordinary comment; after that such a line is just a comment. Names are
//! case-insensitive and each may appear once.

use crate::error::ErrorKind;

/// The directives found at the top of a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directives {
    /// The escape character: `\` (default) or `` ` ``.
    pub escape: char,
    /// `# syntax=` value (a frontend image reference), if present.
    pub syntax: Option<String>,
    /// `# check=` value, if present.
    pub check: Option<CheckDirective>,
    /// Every directive in order: (name lower-cased, value, 1-based line).
    pub all: Vec<(String, String, usize)>,
}

impl Default for Directives {
    fn default() -> Self {
        Directives {
            escape: '\\',
            syntax: None,
            check: None,
            all: Vec::new(),
        }
    }
}

/// The parsed `# check=skip=A,B;error=true` directive.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckDirective {
    /// The raw value.
    pub raw: String,
    /// Checks to skip (`all` skips every check).
    pub skip: Vec<String>,
    /// Whether check violations fail the build.
    pub error: bool,
}

impl CheckDirective {
    /// Parses the value of a `check` directive.
    pub fn parse(raw: &str) -> Result<Self, ErrorKind> {
        let mut out = CheckDirective {
            raw: raw.to_string(),
            ..Default::default()
        };
        for part in raw.split(';').map(str::trim).filter(|p| !p.is_empty()) {
            let (k, v) = part.split_once('=').ok_or_else(|| {
                ErrorKind::Invalid(format!(
                    "invalid check directive {part:?} — use `# check=skip=<names>;error=true`"
                ))
            })?;
            match k.trim().to_ascii_lowercase().as_str() {
                "skip" => {
                    out.skip = v
                        .split(',')
                        .map(|s| s.trim().to_string())
                        .filter(|s| !s.is_empty())
                        .collect()
                }
                "error" => {
                    out.error = parse_bool(v.trim()).ok_or_else(|| {
                        ErrorKind::Invalid(format!(
                            "invalid check directive error value {v:?} — use true or false"
                        ))
                    })?
                }
                other => {
                    return Err(ErrorKind::Invalid(format!(
                        "invalid check directive option {other:?} — the options are skip and error"
                    )))
                }
            }
        }
        Ok(out)
    }
}

pub(crate) fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// Feeds lines to the directive recogniser while it is still active.
#[derive(Debug, Default)]
pub(crate) struct DirectiveParser {
    done: bool,
    pub(crate) directives: Directives,
}

const KNOWN: &[&str] = &["syntax", "escape", "check"];

/// Splits `#  name = value` into its parts, as BuildKit's directive regex
/// `^#[ \t]*([a-zA-Z][a-zA-Z0-9]*)[ \t]*=[ \t]*(.+?)[ \t]*$` does.
pub(crate) fn split_directive(line: &str) -> Option<(String, String)> {
    let rest = line.strip_prefix('#')?;
    let rest = rest.trim_start_matches([' ', '\t']);
    let name_len = rest
        .char_indices()
        .take_while(|(i, c)| {
            if *i == 0 {
                c.is_ascii_alphabetic()
            } else {
                c.is_ascii_alphanumeric()
            }
        })
        .count();
    if name_len == 0 {
        return None;
    }
    let (name, rest) = rest.split_at(name_len);
    let rest = rest.trim_start_matches([' ', '\t']).strip_prefix('=')?;
    let value = rest.trim_matches([' ', '\t']);
    if value.is_empty() {
        return None;
    }
    Some((name.to_ascii_lowercase(), value.to_string()))
}

impl DirectiveParser {
    /// Offers one physical line (newline removed). `line_no` is 1-based.
    pub(crate) fn feed(&mut self, line: &str, line_no: usize) -> Result<(), ErrorKind> {
        if self.done {
            return Ok(());
        }
        let Some((name, value)) = split_directive(line) else {
            self.done = true;
            return Ok(());
        };
        if !KNOWN.contains(&name.as_str()) {
            self.done = true;
            return Ok(());
        }
        if self.directives.all.iter().any(|(n, _, _)| *n == name) {
            return Err(ErrorKind::DuplicateDirective(name));
        }
        match name.as_str() {
            "escape" => {
                self.directives.escape = match value.as_str() {
                    "\\" => '\\',
                    "`" => '`',
                    _ => return Err(ErrorKind::InvalidEscapeToken(value)),
                }
            }
            "syntax" => self.directives.syntax = Some(value.clone()),
            _ => self.directives.check = Some(CheckDirective::parse(&value)?),
        }
        self.directives.all.push((name, value, line_no));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_directives() {
        assert_eq!(
            split_directive("# escape = `"),
            Some(("escape".into(), "`".into()))
        );
        assert_eq!(
            split_directive("#SYNTAX=docker/dockerfile:1 "),
            Some(("syntax".into(), "docker/dockerfile:1".into()))
        );
        assert_eq!(split_directive("# just a comment"), None);
        assert_eq!(split_directive("FROM x"), None);
    }

    #[test]
    fn stops_after_first_non_directive() {
        let mut p = DirectiveParser::default();
        p.feed("# syntax=x", 1).unwrap();
        p.feed("# comment", 2).unwrap();
        p.feed("# escape=`", 3).unwrap();
        assert_eq!(p.directives.escape, '\\');
        assert_eq!(p.directives.syntax.as_deref(), Some("x"));
    }

    #[test]
    fn rejects_duplicates_and_bad_escape() {
        let mut p = DirectiveParser::default();
        p.feed("# escape=`", 1).unwrap();
        assert_eq!(
            p.feed("# ESCAPE=\\", 2),
            Err(ErrorKind::DuplicateDirective("escape".into()))
        );
        let mut p = DirectiveParser::default();
        let e = p.feed("# escape=x", 1).unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid escape token 'x' does not match ` or \\ — use `# escape=\\` or `# escape=``"
        );
    }

    #[test]
    fn check_directive() {
        let c =
            CheckDirective::parse("skip=JSONArgsRecommended,StageNameCasing;error=true").unwrap();
        assert_eq!(c.skip, vec!["JSONArgsRecommended", "StageNameCasing"]);
        assert!(c.error);
        assert!(CheckDirective::parse("bogus=1").is_err());
    }
}
