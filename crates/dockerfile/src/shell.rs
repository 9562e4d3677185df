//! Variable expansion and word splitting, as Docker's shell lexer does it
//! (BuildKit's `shell.Lex`): `$V`, `${V}`, `${V:-w}`, `${V-w}`, `${V:+w}`,
//! `${V+w}`, `${V:?msg}`, `${V?msg}`, `${V#p}`, `${V##p}`, `${V%p}`,
//! `${V%%p}`, `${V/p/r}`, `${V//p/r}`, single and double quotes and the
//! escape character.
//!
//! This is not a shell: there is no command substitution, arithmetic or
//! globbing. Positional and special parameters (`$1`, `$@`, `$$` …) are
//! always unset.

use std::collections::{BTreeMap, BTreeSet, HashMap};

/// An expansion failure. The messages follow BuildKit's wording.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShellError {
    /// A quote was opened and never closed.
    #[error("unexpected end of statement while looking for matching {0}")]
    Unterminated(&'static str),
    /// `${` without its `}`.
    #[error("syntax error: missing '}}' — close the ${{...}} expansion")]
    MissingBrace,
    /// `${V/pat` without the `/` that separates the replacement.
    #[error("syntax error: missing '/' in ${{}}")]
    MissingSlash,
    /// `${}`, `${:x}`, `${{x}`.
    #[error("syntax error: bad substitution — a variable name must follow ${{")]
    BadSubstitution,
    /// `${V:=x}` and other modifiers Docker does not support.
    #[error(
        "unsupported modifier ({0}) in substitution — supported: :- - :+ + :? ? # ## % %% / //"
    )]
    UnsupportedModifier(String),
    /// `${V?msg}` / `${V:?msg}` with V unset (or empty).
    #[error("{name}: {message}")]
    Required {
        /// The variable.
        name: String,
        /// The message from the expression, or the default one.
        message: String,
    },
    /// A bad `#`, `%` or `/` pattern.
    #[error("invalid pattern ({pattern}) in substitution: {reason}")]
    InvalidPattern {
        /// The pattern.
        pattern: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// A source of variables for expansion.
pub trait Env {
    /// The value of `name`, or `None` when it is unset.
    fn get_var(&self, name: &str) -> Option<String>;
}

impl<E: Env + ?Sized> Env for &E {
    fn get_var(&self, name: &str) -> Option<String> {
        (**self).get_var(name)
    }
}

impl Env for HashMap<String, String> {
    fn get_var(&self, name: &str) -> Option<String> {
        self.get(name).cloned()
    }
}

impl Env for BTreeMap<String, String> {
    fn get_var(&self, name: &str) -> Option<String> {
        self.get(name).cloned()
    }
}

/// Ordered pairs; a later pair overrides an earlier one of the same name.
impl Env for [(String, String)] {
    fn get_var(&self, name: &str) -> Option<String> {
        self.iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    }
}

impl Env for Vec<(String, String)> {
    fn get_var(&self, name: &str) -> Option<String> {
        self.as_slice().get_var(name)
    }
}

/// `KEY=value` strings, as in an image config; a later entry wins.
impl Env for [String] {
    fn get_var(&self, name: &str) -> Option<String> {
        self.iter().rev().find_map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv.as_str(), ""));
            (k == name).then(|| v.to_string())
        })
    }
}

/// No variables at all.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoEnv;

impl Env for NoEnv {
    fn get_var(&self, _name: &str) -> Option<String> {
        None
    }
}

/// The lexer. `Lexer::new('\\')` is what Dockerfile instructions use
/// (or the file's `# escape=` character).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lexer {
    escape: char,
    /// Keep quote characters in the output.
    pub raw_quotes: bool,
    /// Keep escape characters in the output.
    pub raw_escapes: bool,
    /// Leave references to unset variables as written.
    pub skip_unset_env: bool,
    /// Treat quotes as ordinary characters.
    pub skip_process_quotes: bool,
}

impl Default for Lexer {
    fn default() -> Self {
        Lexer::new('\\')
    }
}

/// The result of [`Lexer::process_word_with_matches`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Expanded {
    /// The expanded word.
    pub word: String,
    /// Variables that were referenced and set.
    pub matched: BTreeSet<String>,
    /// Variables that were referenced but unset.
    pub unmatched: BTreeSet<String>,
}

impl Lexer {
    /// A lexer with the given escape character.
    pub fn new(escape: char) -> Self {
        Lexer {
            escape,
            raw_quotes: false,
            raw_escapes: false,
            skip_unset_env: false,
            skip_process_quotes: false,
        }
    }

    /// The escape character.
    pub fn escape(&self) -> char {
        self.escape
    }

    /// Expands `word` as one word: quotes removed, no field splitting.
    pub fn process_word(&self, word: &str, env: &dyn Env) -> Result<String, ShellError> {
        self.process_word_with_matches(word, env).map(|e| e.word)
    }

    /// Like [`Lexer::process_word`], also reporting which variables were used.
    pub fn process_word_with_matches(
        &self,
        word: &str,
        env: &dyn Env,
    ) -> Result<Expanded, ShellError> {
        let mut sw = ShellWord::new(self, word, env);
        let (word, _) = sw.process_stop_on(None, self.raw_escapes)?;
        Ok(Expanded {
            word,
            matched: sw.matched,
            unmatched: sw.unmatched,
        })
    }

    /// Expands `line` and splits it into words: unquoted expansions are split
    /// on whitespace, quoted ones are not.
    pub fn process_words(&self, line: &str, env: &dyn Env) -> Result<Vec<String>, ShellError> {
        let mut sw = ShellWord::new(self, line, env);
        sw.process_stop_on(None, self.raw_escapes).map(|(_, w)| w)
    }
}

#[derive(Default)]
struct Words {
    word: String,
    words: Vec<String>,
    in_word: bool,
}

impl Words {
    fn add_char(&mut self, ch: char) {
        if ch.is_whitespace() {
            if self.in_word && !self.word.is_empty() {
                self.words.push(std::mem::take(&mut self.word));
                self.in_word = false;
            }
        } else {
            self.add_raw_char(ch);
        }
    }
    fn add_raw_char(&mut self, ch: char) {
        self.word.push(ch);
        self.in_word = true;
    }
    fn add_string(&mut self, s: &str) {
        for c in s.chars() {
            self.add_char(c);
        }
    }
    fn add_raw_string(&mut self, s: &str) {
        self.word.push_str(s);
        self.in_word = true;
    }
    fn finish(mut self) -> Vec<String> {
        if !self.word.is_empty() {
            self.words.push(self.word);
        }
        self.words
    }
}

struct ShellWord<'a> {
    chars: Vec<char>,
    pos: usize,
    lex: &'a Lexer,
    env: &'a dyn Env,
    matched: BTreeSet<String>,
    unmatched: BTreeSet<String>,
}

impl<'a> ShellWord<'a> {
    fn new(lex: &'a Lexer, src: &str, env: &'a dyn Env) -> Self {
        ShellWord {
            chars: src.chars().collect(),
            pos: 0,
            lex,
            env,
            matched: BTreeSet::new(),
            unmatched: BTreeSet::new(),
        }
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek();
        if c.is_some() {
            self.pos += 1;
        }
        c
    }

    fn get_env(&mut self, name: &str) -> Option<String> {
        let v = self.env.get_var(name);
        if v.is_some() {
            self.matched.insert(name.to_string());
        } else {
            self.unmatched.insert(name.to_string());
        }
        v
    }

    /// Processes until `stop` (consumed) or the end of input.
    fn process_stop_on(
        &mut self,
        stop: Option<char>,
        raw_escapes: bool,
    ) -> Result<(String, Vec<String>), ShellError> {
        let mut result = String::new();
        let mut words = Words::default();
        while let Some(ch) = self.peek() {
            if Some(ch) == stop {
                self.next();
                return Ok((result, words.finish()));
            }
            let special = match ch {
                '$' => true,
                '\'' | '"' => !self.lex.skip_process_quotes,
                _ => false,
            };
            if special {
                let tmp = match ch {
                    '\'' => self.process_single_quote()?,
                    '"' => self.process_double_quote()?,
                    _ => self.process_dollar()?,
                };
                result.push_str(&tmp);
                if ch == '$' {
                    words.add_string(&tmp);
                } else {
                    words.add_raw_string(&tmp);
                }
                continue;
            }
            let mut ch = self.next().unwrap_or_default();
            if ch == self.lex.escape {
                if raw_escapes {
                    words.add_raw_char(ch);
                    result.push(ch);
                }
                match self.next() {
                    None => break,
                    Some(c) => ch = c,
                }
                words.add_raw_char(ch);
            } else {
                words.add_char(ch);
            }
            result.push(ch);
        }
        if let Some(stop) = stop {
            return Err(match stop {
                '}' => ShellError::MissingBrace,
                '/' => ShellError::MissingSlash,
                _ => ShellError::Unterminated("character"),
            });
        }
        Ok((result, words.finish()))
    }

    fn process_single_quote(&mut self) -> Result<String, ShellError> {
        let mut out = String::new();
        let open = self.next().unwrap_or('\'');
        if self.lex.raw_quotes {
            out.push(open);
        }
        loop {
            match self.next() {
                None => return Err(ShellError::Unterminated("single-quote")),
                Some('\'') => {
                    if self.lex.raw_quotes {
                        out.push('\'');
                    }
                    return Ok(out);
                }
                Some(c) => out.push(c),
            }
        }
    }

    fn process_double_quote(&mut self) -> Result<String, ShellError> {
        let mut out = String::new();
        let open = self.next().unwrap_or('"');
        if self.lex.raw_quotes {
            out.push(open);
        }
        loop {
            match self.peek() {
                None => return Err(ShellError::Unterminated("double-quote")),
                Some('"') => {
                    self.next();
                    if self.lex.raw_quotes {
                        out.push('"');
                    }
                    return Ok(out);
                }
                Some('$') => {
                    let v = self.process_dollar()?;
                    out.push_str(&v);
                }
                Some(_) => {
                    let mut ch = self.next().unwrap_or_default();
                    if ch == self.lex.escape {
                        match self.peek() {
                            None => continue,
                            Some(c) if c == '"' || c == '$' || c == self.lex.escape => {
                                if self.lex.raw_escapes {
                                    out.push(ch);
                                }
                                ch = c;
                                self.next();
                            }
                            Some(_) => {}
                        }
                    }
                    out.push(ch);
                }
            }
        }
    }

    fn process_name(&mut self) -> String {
        let mut name = String::new();
        while let Some(ch) = self.peek() {
            if name.is_empty() && ch.is_numeric() {
                while let Some(c) = self.peek() {
                    if !c.is_numeric() {
                        break;
                    }
                    name.push(c);
                    self.next();
                }
                return name;
            }
            if name.is_empty() && matches!(ch, '@' | '*' | '#' | '?' | '-' | '$' | '!' | '0') {
                self.next();
                return ch.to_string();
            }
            if !(ch.is_alphanumeric() || ch == '_') {
                break;
            }
            name.push(ch);
            self.next();
        }
        name
    }

    fn process_dollar(&mut self) -> Result<String, ShellError> {
        self.next(); // '$'
        if self.peek() != Some('{') {
            let name = self.process_name();
            if name.is_empty() {
                return Ok("$".into());
            }
            let value = self.get_env(&name);
            return Ok(match value {
                Some(v) => v,
                None if self.lex.skip_unset_env => format!("${name}"),
                None => String::new(),
            });
        }
        self.next(); // '{'
        match self.peek() {
            None => return Err(ShellError::MissingBrace),
            Some('{' | '}' | ':') => return Err(ShellError::BadSubstitution),
            _ => {}
        }
        let name = self.process_name();
        let Some(mut ch) = self.next() else {
            return Err(ShellError::MissingBrace);
        };
        let mut modifier = ch.to_string();
        match ch {
            '}' => {
                let value = self.get_env(&name);
                Ok(match value {
                    Some(v) => v,
                    None if self.lex.skip_unset_env => format!("${{{name}}}"),
                    None => String::new(),
                })
            }
            ':' | '+' | '-' | '?' | '#' | '%' => {
                let null_is_unset = ch == ':';
                if null_is_unset {
                    match self.next() {
                        Some(c) => {
                            ch = c;
                            modifier.push(c);
                        }
                        None => return Err(ShellError::MissingBrace),
                    }
                }
                let pattern_like = ch == '#' || ch == '%';
                if null_is_unset && pattern_like {
                    return Err(ShellError::UnsupportedModifier(modifier));
                }
                let (mut word, _) = self.process_stop_on(Some('}'), pattern_like)?;
                let value = self.get_env(&name);
                if self.lex.skip_unset_env && value.is_none() {
                    return Ok(format!("${{{name}{modifier}{word}}}"));
                }
                let empty = value
                    .as_deref()
                    .is_none_or(|v| null_is_unset && v.is_empty());
                match ch {
                    '-' => Ok(if empty {
                        word
                    } else {
                        value.unwrap_or_default()
                    }),
                    '+' => Ok(if empty { String::new() } else { word }),
                    '?' => match value {
                        None => Err(ShellError::Required {
                            name,
                            message: if word.is_empty() {
                                "is not allowed to be unset".into()
                            } else {
                                word
                            },
                        }),
                        Some(v) if null_is_unset && v.is_empty() => Err(ShellError::Required {
                            name,
                            message: if word.is_empty() {
                                "is not allowed to be empty".into()
                            } else {
                                word
                            },
                        }),
                        Some(v) => Ok(v),
                    },
                    '#' | '%' => {
                        let greedy = word.starts_with(ch);
                        if greedy {
                            word.remove(0);
                        }
                        let value = value.unwrap_or_default();
                        if ch == '%' {
                            trim_suffix(&word, &value, greedy)
                        } else {
                            trim_prefix(&word, &value, greedy)
                        }
                    }
                    _ => Err(ShellError::UnsupportedModifier(modifier)),
                }
            }
            '/' => {
                let all = self.peek() == Some('/');
                if all {
                    self.next();
                }
                let (pattern, _) = self.process_stop_on(Some('/'), true)?;
                let (replacement, _) = self.process_stop_on(Some('}'), true)?;
                let value = self.get_env(&name);
                if self.lex.skip_unset_env && value.is_none() {
                    let slashes = if all { "//" } else { "/" };
                    return Ok(format!("${{{name}{slashes}{pattern}/{replacement}}}"));
                }
                replace(&value.unwrap_or_default(), &pattern, &replacement, all)
            }
            _ => Err(ShellError::UnsupportedModifier(modifier)),
        }
    }
}

/// One element of a `#`/`%`/`/` pattern.
#[derive(Debug, Clone, PartialEq)]
enum Pat {
    Lit(char),
    Any,
    Star,
}

fn compile_pattern(pattern: &str) -> Result<Vec<Pat>, ShellError> {
    let mut out = Vec::new();
    let mut it = pattern.chars().peekable();
    while let Some(c) = it.next() {
        match c {
            '*' => out.push(Pat::Star),
            '?' => out.push(Pat::Any),
            '\\' => match it.peek().copied() {
                Some('}') | Some('/') => {}
                Some(n @ ('*' | '?' | '\\')) => {
                    it.next();
                    out.push(Pat::Lit(n));
                }
                other => {
                    return Err(ShellError::InvalidPattern {
                        pattern: pattern.to_string(),
                        reason: match other {
                            Some(n) => format!("invalid escape '\\{n}'"),
                            None => "trailing escape".into(),
                        },
                    })
                }
            },
            _ => out.push(Pat::Lit(c)),
        }
    }
    Ok(out)
}

/// Whether `pat` matches all of `s`.
fn glob_full(pat: &[Pat], s: &[char]) -> bool {
    match pat.first() {
        None => s.is_empty(),
        Some(Pat::Star) => (0..=s.len()).any(|i| glob_full(&pat[1..], &s[i..])),
        Some(Pat::Any) => !s.is_empty() && glob_full(&pat[1..], &s[1..]),
        Some(Pat::Lit(c)) => s.first() == Some(c) && glob_full(&pat[1..], &s[1..]),
    }
}

/// Length of the shortest (or longest) prefix of `s` matched by `pat`.
fn prefix_match(pat: &[Pat], s: &[char], greedy: bool) -> Option<usize> {
    if greedy {
        (0..=s.len()).rev().find(|&n| glob_full(pat, &s[..n]))
    } else {
        (0..=s.len()).find(|&n| glob_full(pat, &s[..n]))
    }
}

fn trim_prefix(pattern: &str, value: &str, greedy: bool) -> Result<String, ShellError> {
    let pat = compile_pattern(pattern)?;
    let chars: Vec<char> = value.chars().collect();
    Ok(match prefix_match(&pat, &chars, greedy) {
        Some(n) => chars[n..].iter().collect(),
        None => value.to_string(),
    })
}

fn trim_suffix(pattern: &str, value: &str, greedy: bool) -> Result<String, ShellError> {
    let mut pat = compile_pattern(pattern)?;
    pat.reverse();
    let mut chars: Vec<char> = value.chars().collect();
    chars.reverse();
    let n = prefix_match(&pat, &chars, greedy).unwrap_or(0);
    Ok(chars[n..].iter().rev().collect())
}

fn replace(value: &str, pattern: &str, replacement: &str, all: bool) -> Result<String, ShellError> {
    let pat = compile_pattern(pattern)?;
    let chars: Vec<char> = value.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    let mut replaced = false;
    while i <= chars.len() {
        if !replaced || all {
            if let Some(n) = prefix_match(&pat, &chars[i..], true) {
                out.push_str(replacement);
                replaced = true;
                if n > 0 {
                    i += n;
                    continue;
                }
            }
        }
        if i < chars.len() {
            out.push(chars[i]);
        }
        i += 1;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> Vec<(String, String)> {
        vec![
            ("V".into(), "foo/bar/baz.tar.gz".into()),
            ("E".into(), String::new()),
        ]
    }

    fn word(s: &str) -> Result<String, ShellError> {
        Lexer::new('\\').process_word(s, &env())
    }

    #[test]
    fn prefix_and_suffix_removal() {
        assert_eq!(word("${V#*/}").unwrap(), "bar/baz.tar.gz");
        assert_eq!(word("${V##*/}").unwrap(), "baz.tar.gz");
        assert_eq!(word("${V%.*}").unwrap(), "foo/bar/baz.tar");
        assert_eq!(word("${V%%.*}").unwrap(), "foo/bar/baz");
        assert_eq!(word("${V#nomatch}").unwrap(), "foo/bar/baz.tar.gz");
        assert_eq!(word("${V%\\*}").unwrap(), "foo/bar/baz.tar.gz");
        assert!(word("${V:#x}").is_err());
    }

    #[test]
    fn replacement() {
        assert_eq!(word("${V/bar/qux}").unwrap(), "foo/qux/baz.tar.gz");
        assert_eq!(word("${V//a/A}").unwrap(), "foo/bAr/bAz.tAr.gz");
        assert_eq!(word("${V/\\//-}").unwrap(), "foo-bar/baz.tar.gz");
        assert_eq!(word("${V//\\//-}").unwrap(), "foo-bar-baz.tar.gz");
        assert_eq!(word("${V/b*z/X}").unwrap(), "foo/X");
        assert_eq!(word("${V/b?r/X}").unwrap(), "foo/X/baz.tar.gz");
        assert_eq!(word("${NOPE/a/b}").unwrap(), "");
        assert_eq!(word("${V/a"), Err(ShellError::MissingSlash));
    }

    #[test]
    fn required_messages() {
        assert_eq!(
            word("${NOPE?must be set}").unwrap_err().to_string(),
            "NOPE: must be set"
        );
        assert_eq!(
            word("${E:?}").unwrap_err().to_string(),
            "E: is not allowed to be empty"
        );
    }

    #[test]
    fn skip_unset_keeps_references() {
        let mut lex = Lexer::new('\\');
        lex.skip_unset_env = true;
        assert_eq!(
            lex.process_word("$A ${B} ${C:-x} $V", &env()).unwrap(),
            "$A ${B} ${C:-x} foo/bar/baz.tar.gz"
        );
    }

    #[test]
    fn matches_are_reported() {
        let e = Lexer::new('\\')
            .process_word_with_matches("$V-$NOPE", &env())
            .unwrap();
        assert!(e.matched.contains("V"));
        assert!(e.unmatched.contains("NOPE"));
    }

    #[test]
    fn backtick_escape() {
        let lex = Lexer::new('`');
        assert_eq!(lex.process_word("a`$b\\c", &NoEnv).unwrap(), "a$b\\c");
    }
}
