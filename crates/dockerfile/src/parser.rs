//! The line-level parser: text → [`Ast`] of raw instructions, as BuildKit's
//! `parser.Parse` does it (directives, continuations, comments, heredocs,
//! flags, JSON and shell forms). Nothing is expanded at this stage.

use crate::directives::{DirectiveParser, Directives};
use crate::error::{Error, ErrorKind};
use crate::heredoc::{heredocs_from_line, Heredoc};

/// BuildKit's limit on the length of one physical line.
pub const MAX_LINE_LEN: usize = 65535;

/// A parsed Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ast {
    /// Parser directives from the top of the file.
    pub directives: Directives,
    /// The instructions in order.
    pub children: Vec<Node>,
    /// First line (1-based) of the first instruction.
    pub start_line: usize,
    /// Last line of the last instruction (trailing blank lines and comments excluded).
    pub end_line: usize,
    /// Non-fatal findings (e.g. empty continuation lines).
    pub warnings: Vec<Warning>,
}

/// A non-fatal finding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// The message.
    pub message: String,
    /// First line of the instruction concerned.
    pub line: usize,
}

/// One instruction as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// The keyword as written (`run`, `RUN`, `onBuild` …).
    pub keyword: String,
    /// Leading `--flag[=value]` words, quotes removed, `--` terminator dropped.
    pub flags: Vec<String>,
    /// The arguments, unexpanded, as BuildKit's parser gives them:
    ///
    /// - FROM, EXPOSE: whitespace-separated words;
    /// - RUN, CMD, ENTRYPOINT, SHELL: the JSON array's strings (exec form,
    ///   `json` set) or one string, the rest of the line (shell form);
    /// - ADD, COPY, VOLUME: the JSON array's strings or whitespace-separated words;
    /// - ENV, LABEL: triples `key, value, sep` (`sep` is `=` for `k=v`, empty
    ///   for the legacy `ENV k v` form); values keep their quotes;
    /// - ARG: words, quotes kept (`abc="1 2"`);
    /// - MAINTAINER, USER, WORKDIR, STOPSIGNAL: one string, the rest of the line;
    /// - HEALTHCHECK: the type word (`CMD`, `NONE` …) then the command as for CMD;
    /// - ONBUILD: none (see `sub`);
    /// - unknown keywords: one empty string.
    pub args: Vec<String>,
    /// For ONBUILD: the wrapped instruction.
    pub sub: Option<Box<Node>>,
    /// Whether the arguments came from a JSON array (exec form).
    pub json: bool,
    /// The whole logical line after joining continuations.
    pub original: String,
    /// Heredocs opened on this line, with their bodies.
    pub heredocs: Vec<Heredoc>,
    /// Comments directly above the instruction.
    pub comments: Vec<String>,
    /// First line (1-based).
    pub start_line: usize,
    /// Last line (1-based), including continuation and heredoc lines.
    pub end_line: usize,
    /// Column (1-based) of the keyword on `start_line`.
    pub column: usize,
    /// Whether the keyword is a known instruction.
    pub known: bool,
}

impl Node {
    /// The keyword lower-cased.
    pub fn command(&self) -> String {
        self.keyword.to_ascii_lowercase()
    }
}

/// Every instruction keyword, lower-case.
pub const INSTRUCTIONS: &[&str] = &[
    "add",
    "arg",
    "cmd",
    "copy",
    "entrypoint",
    "env",
    "expose",
    "from",
    "healthcheck",
    "label",
    "maintainer",
    "onbuild",
    "run",
    "shell",
    "stopsignal",
    "user",
    "volume",
    "workdir",
];

fn is_space(c: char) -> bool {
    c.is_whitespace()
}

/// Go's `reWhitespace` = `[\t\v\f\r ]+`.
fn is_ws_sep(c: char) -> bool {
    matches!(c, '\t' | '\u{b}' | '\u{c}' | '\r' | ' ')
}

fn split_ws(s: &str) -> Vec<String> {
    s.split(is_ws_sep)
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect()
}

/// Physical lines with their terminators.
struct Lines<'a> {
    rest: &'a str,
}

impl<'a> Iterator for Lines<'a> {
    type Item = &'a str;
    fn next(&mut self) -> Option<&'a str> {
        if self.rest.is_empty() {
            return None;
        }
        let end = self.rest.find('\n').map_or(self.rest.len(), |i| i + 1);
        let (line, rest) = self.rest.split_at(end);
        self.rest = rest;
        Some(line)
    }
}

fn trim_newline(s: &str) -> &str {
    s.trim_end_matches(['\r', '\n'])
}

fn trim_leading_ws(s: &str) -> &str {
    s.trim_start_matches(is_space)
}

fn is_comment(s: &str) -> bool {
    trim_leading_ws(trim_newline(s)).starts_with('#')
}

/// Removes a trailing continuation (escape char followed only by blanks,
/// not itself escaped). Returns the line and whether the instruction ends here.
fn trim_continuation(line: &str, escape: char) -> (String, bool) {
    let trimmed = line.trim_end_matches([' ', '\t']);
    if let Some(before) = trimmed.strip_suffix(escape) {
        if before.is_empty() || !before.ends_with(escape) {
            return (before.to_string(), false);
        }
    }
    (line.to_string(), true)
}

/// Parses a Dockerfile into its raw instructions.
pub fn parse(source: &str) -> Result<Ast, Error> {
    let mut dp = DirectiveParser::default();
    let mut lines = Lines { rest: source };
    let mut current = 0usize;
    let mut children: Vec<Node> = Vec::new();
    let mut warnings = Vec::new();
    let mut comments: Vec<String> = Vec::new();
    let mut start: Option<usize> = None;

    let check_len = |raw: &str, line_no: usize| -> Result<(), Error> {
        if trim_newline(raw).len() > MAX_LINE_LEN {
            return Err(Error::new(ErrorKind::LineTooLong).at(source, line_no, line_no, 0));
        }
        Ok(())
    };

    while let Some(raw) = lines.next() {
        let raw = if current == 0 {
            raw.strip_prefix('\u{feff}').unwrap_or(raw)
        } else {
            raw
        };
        check_len(raw, current + 1)?;
        if is_comment(raw) {
            let c = trim_leading_ws(trim_newline(raw))[1..].trim();
            if c.is_empty() {
                comments.clear();
            } else {
                comments.push(c.to_string());
            }
        }
        let stripped = trim_leading_ws(trim_newline(raw));
        dp.feed(stripped, current + 1)
            .map_err(|k| Error::new(k).at(source, current + 1, current + 1, 0))?;
        let processed = if is_comment(stripped) { "" } else { stripped };
        current += 1;
        let start_line = current;
        let column = trim_newline(raw).chars().count() - stripped.chars().count() + 1;
        let escape = dp.directives.escape;
        let (mut line, mut end) = trim_continuation(processed, escape);
        if end && line.is_empty() {
            continue;
        }
        let mut empty_continuation = false;
        while !end {
            let Some(raw) = lines.next() else { break };
            check_len(raw, current + 1)?;
            let text = trim_newline(raw);
            dp.feed(text, current + 1)
                .map_err(|k| Error::new(k).at(source, current + 1, current + 1, 0))?;
            current += 1;
            if is_comment(raw) {
                continue;
            }
            if trim_leading_ws(text).is_empty() {
                empty_continuation = true;
                continue;
            }
            let (cont, e) = trim_continuation(text, escape);
            line.push_str(&cont);
            end = e;
        }
        if empty_continuation {
            warnings.push(Warning {
                message: format!("Empty continuation line found in: {line}"),
                line: start_line,
            });
        }

        let mut node = node_from_line(&line, escape)
            .map_err(|k| Error::new(k).at(source, start_line, current, column))?;
        node.comments = std::mem::take(&mut comments);
        node.start_line = start_line;
        node.column = column;

        if can_contain_heredoc(&node) && line.contains("<<") {
            let mut docs = heredocs_from_line(&line)
                .map_err(|k| Error::new(k).at(source, start_line, current, column))?;
            for doc in &mut docs {
                let mut terminated = false;
                for raw in lines.by_ref() {
                    check_len(raw, current + 1)?;
                    current += 1;
                    let mut candidate = trim_newline(raw);
                    if doc.chomp {
                        candidate = candidate.trim_start_matches('\t');
                    }
                    if candidate == doc.name {
                        terminated = true;
                        break;
                    }
                    doc.content.push_str(raw);
                }
                if !terminated {
                    return Err(Error::new(ErrorKind::UnterminatedHeredoc {
                        name: doc.name.clone(),
                        start_line,
                    })
                    .at(source, start_line, current, column));
                }
            }
            node.heredocs = docs;
        }
        node.end_line = current;
        start.get_or_insert(start_line);
        children.push(node);
    }

    let Some(start_line) = start else {
        let line = current.max(1);
        return Err(Error::new(ErrorKind::NoInstructions).at(source, line, line, 0));
    };
    let end_line = children.last().map_or(current, |n| n.end_line);
    Ok(Ast {
        directives: dp.directives,
        children,
        start_line,
        end_line,
        warnings,
    })
}

fn can_contain_heredoc(node: &Node) -> bool {
    let n = match (&node.sub, node.command().as_str()) {
        (Some(sub), "onbuild") => sub,
        _ => node,
    };
    matches!(n.command().as_str(), "add" | "copy" | "run") && !n.json
}

/// Builds a node from one logical line (continuations joined).
pub(crate) fn node_from_line(line: &str, escape: char) -> Result<Node, ErrorKind> {
    let trimmed = line.trim_matches(is_space);
    let (keyword, rest) = match trimmed.find(is_ws_sep) {
        Some(i) => (&trimmed[..i], trimmed[i..].trim_start_matches(is_ws_sep)),
        None => (trimmed, ""),
    };
    let (rest, flags) = if rest.is_empty() {
        (String::new(), Vec::new())
    } else {
        extract_flags(rest)
    };
    let rest = rest.trim_matches(is_space).to_string();
    let mut node = Node {
        keyword: keyword.to_string(),
        flags,
        args: Vec::new(),
        sub: None,
        json: false,
        original: line.to_string(),
        heredocs: Vec::new(),
        comments: Vec::new(),
        start_line: 0,
        end_line: 0,
        column: 0,
        known: true,
    };
    let cmd = keyword.to_ascii_lowercase();
    match cmd.as_str() {
        "add" | "copy" | "volume" => {
            (node.args, node.json) = maybe_json_to_list(&rest, &cmd)?;
        }
        "cmd" | "entrypoint" | "run" | "shell" => {
            (node.args, node.json) = maybe_json(&rest, &cmd)?;
        }
        "arg" => node.args = parse_words(&rest, escape),
        "env" | "label" => node.args = parse_name_val(&rest, &cmd, escape)?,
        "expose" | "from" => node.args = split_ws(&rest),
        "healthcheck" => {
            let first_end = rest.find(is_space).unwrap_or(rest.len());
            if first_end > 0 {
                let typ = &rest[..first_end];
                let (args, json) =
                    maybe_json(rest[first_end..].trim_start_matches(is_space), &cmd)?;
                node.args.push(typ.to_string());
                node.args.extend(args);
                node.json = json;
            }
        }
        "maintainer" | "stopsignal" | "user" | "workdir" => {
            if !rest.is_empty() {
                node.args.push(rest);
            }
        }
        "onbuild" => {
            if !rest.is_empty() {
                node.sub = Some(Box::new(node_from_line(&rest, escape)?));
            }
        }
        _ => {
            node.known = false;
            node.args.push(String::new());
        }
    }
    Ok(node)
}

/// Splits leading `--flag` words off `line`, as BuildKit's
/// `extractBuilderFlags`: quotes and backslashes inside flags are removed,
/// a bare `--` ends the flags.
pub(crate) fn extract_flags(line: &str) -> (String, Vec<String>) {
    #[derive(PartialEq)]
    enum Phase {
        Spaces,
        Word,
        Quote,
    }
    let b = line.as_bytes();
    let mut words = Vec::new();
    let mut phase = Phase::Spaces;
    let mut word: Vec<u8> = Vec::new();
    let mut quote = 0u8;
    let mut blank_ok = false;
    let mut pos = 0;
    let finish = |w: &[u8]| String::from_utf8_lossy(w).into_owned();
    while pos <= b.len() {
        let ch = if pos < b.len() { b[pos] } else { 0 };
        if phase == Phase::Spaces {
            if pos == b.len() {
                break;
            }
            if (ch as char).is_ascii_whitespace() || ch == 0x0b {
                pos += 1;
                continue;
            }
            if ch != b'-' || pos + 1 == b.len() || b[pos + 1] != b'-' {
                return (line[pos..].to_string(), words);
            }
            phase = Phase::Word;
        }
        if pos == b.len() {
            if word != b"--" && (blank_ok || !word.is_empty()) {
                words.push(finish(&word));
            }
            break;
        }
        if phase == Phase::Word {
            if (ch as char).is_ascii_whitespace() || ch == 0x0b {
                phase = Phase::Spaces;
                if word == b"--" {
                    return (line[pos..].to_string(), words);
                }
                if blank_ok || !word.is_empty() {
                    words.push(finish(&word));
                }
                word.clear();
                blank_ok = false;
                pos += 1;
                continue;
            }
            if ch == b'\'' || ch == b'"' {
                quote = ch;
                blank_ok = true;
                phase = Phase::Quote;
                pos += 1;
                continue;
            }
            let mut c = ch;
            if c == b'\\' {
                if pos + 1 == b.len() {
                    pos += 1;
                    continue;
                }
                pos += 1;
                c = b[pos];
            }
            word.push(c);
            pos += 1;
            continue;
        }
        // In quotes.
        if ch == quote {
            phase = Phase::Word;
            pos += 1;
            continue;
        }
        let mut c = ch;
        if c == b'\\' {
            if pos + 1 == b.len() {
                phase = Phase::Word;
                pos += 1;
                continue;
            }
            pos += 1;
            c = b[pos];
        }
        word.push(c);
        pos += 1;
    }
    (String::new(), words)
}

enum JsonOutcome {
    Strings(Vec<String>),
    NotJson,
}

fn parse_json(rest: &str, cmd: &str) -> Result<JsonOutcome, ErrorKind> {
    let rest = rest.trim_start_matches(is_space);
    if !rest.starts_with('[') {
        return Ok(JsonOutcome::NotJson);
    }
    let value: Vec<serde_json::Value> = match serde_json::from_str(rest) {
        Ok(v) => v,
        Err(_) => return Ok(JsonOutcome::NotJson),
    };
    value
        .into_iter()
        .map(|v| match v {
            serde_json::Value::String(s) => Ok(s),
            _ => Err(ErrorKind::NotStringArray(cmd.to_ascii_uppercase())),
        })
        .collect::<Result<Vec<_>, _>>()
        .map(JsonOutcome::Strings)
}

fn maybe_json(rest: &str, cmd: &str) -> Result<(Vec<String>, bool), ErrorKind> {
    if rest.is_empty() {
        return Ok((Vec::new(), false));
    }
    Ok(match parse_json(rest, cmd)? {
        JsonOutcome::Strings(v) => (v, true),
        JsonOutcome::NotJson => (vec![rest.to_string()], false),
    })
}

fn maybe_json_to_list(rest: &str, cmd: &str) -> Result<(Vec<String>, bool), ErrorKind> {
    Ok(match parse_json(rest, cmd)? {
        JsonOutcome::Strings(v) => (v, true),
        JsonOutcome::NotJson => (split_ws(rest), false),
    })
}

/// Splits on whitespace, keeping quotes and escapes in the words: quoting
/// only decides where a word ends (BuildKit's `parseWords`).
pub(crate) fn parse_words(rest: &str, escape: char) -> Vec<String> {
    let chars: Vec<char> = rest.chars().collect();
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut blank_ok = false;
    let mut i = 0;
    while i < chars.len() {
        let ch = chars[i];
        if !in_word && quote.is_none() {
            if ch.is_whitespace() {
                i += 1;
                continue;
            }
            in_word = true;
        }
        match quote {
            None => {
                if ch.is_whitespace() {
                    if blank_ok || !word.is_empty() {
                        words.push(std::mem::take(&mut word));
                    }
                    word.clear();
                    blank_ok = false;
                    in_word = false;
                    i += 1;
                    continue;
                }
                if ch == '\'' || ch == '"' {
                    quote = Some(ch);
                    blank_ok = true;
                }
                if ch == escape {
                    if i + 1 == chars.len() {
                        i += 1;
                        continue;
                    }
                    word.push(ch);
                    i += 1;
                }
                word.push(chars[i]);
                i += 1;
            }
            Some(q) => {
                if ch == q {
                    quote = None;
                }
                if ch == escape && q != '\'' {
                    if i + 1 == chars.len() {
                        quote = None;
                        i += 1;
                        continue;
                    }
                    word.push(ch);
                    i += 1;
                }
                word.push(chars[i]);
                i += 1;
            }
        }
    }
    if (in_word || quote.is_some()) && (blank_ok || !word.is_empty()) {
        words.push(word);
    }
    words
}

fn parse_name_val(rest: &str, cmd: &str, escape: char) -> Result<Vec<String>, ErrorKind> {
    let words = parse_words(rest, escape);
    if words.is_empty() {
        return Ok(Vec::new());
    }
    let upper = cmd.to_ascii_uppercase();
    if !words[0].contains('=') {
        let mut parts = rest.splitn(2, is_ws_sep);
        let key = parts.next().unwrap_or_default();
        let value = parts
            .next()
            .unwrap_or_default()
            .trim_start_matches(is_ws_sep);
        if value.is_empty() {
            return Err(ErrorKind::MissingValue {
                instruction: upper,
                name: key.to_string(),
            });
        }
        return Ok(vec![key.to_string(), value.to_string(), String::new()]);
    }
    let mut out = Vec::new();
    for w in words {
        let Some((k, v)) = w.split_once('=') else {
            return Err(ErrorKind::MissingEquals {
                instruction: upper,
                word: w,
            });
        };
        out.extend([k.to_string(), v.to_string(), "=".to_string()]);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_are_extracted() {
        assert_eq!(
            extract_flags("--from=a --chown=\"u g\" src dst"),
            (
                "src dst".to_string(),
                vec!["--from=a".into(), "--chown=u g".into()]
            )
        );
        assert_eq!(
            extract_flags("--x -- --y"),
            (" --y".to_string(), vec!["--x".into()])
        );
        assert_eq!(
            extract_flags("--only"),
            (String::new(), vec!["--only".into()])
        );
    }

    #[test]
    fn words_keep_quotes() {
        assert_eq!(
            parse_words(r#"a="b c" d\ e 'f\'g"#, '\\'),
            vec![r#"a="b c""#, r"d\ e", r"'f\'g"]
        );
    }

    #[test]
    fn continuation_rules() {
        assert_eq!(trim_continuation("a \\  ", '\\'), ("a ".into(), false));
        assert_eq!(trim_continuation("\\", '\\'), ("".into(), false));
        assert_eq!(trim_continuation("a\\\\", '\\'), ("a\\\\".into(), true));
        assert_eq!(trim_continuation("a `", '`'), ("a ".into(), false));
    }

    #[test]
    fn heredoc_bodies_and_lines() {
        let src = "FROM a\nRUN <<EOF bash\necho hi\nEOF\nCOPY <<-A <<B /d/\n\tx\n\tA\ny\nB\n";
        let ast = parse(src).unwrap();
        let run = &ast.children[1];
        assert_eq!(run.heredocs[0].content, "echo hi\n");
        assert_eq!((run.start_line, run.end_line), (2, 4));
        let copy = &ast.children[2];
        assert_eq!(copy.heredocs.len(), 2);
        assert_eq!(copy.heredocs[0].content, "\tx\n");
        assert_eq!(copy.heredocs[0].body(), "x\n");
        assert_eq!(copy.heredocs[1].content, "y\n");
        assert_eq!((copy.start_line, copy.end_line), (5, 9));
    }

    #[test]
    fn heredoc_extraction_cases() {
        let src =
            "FROM a\nUSER <<INVALID\nINVALID\nRUN <<EMPTY\nEMPTY\nRUN 3<<E2\nE2\nRUN \"<<NO\"\n\
RUN <<-U2\n\tbaz\n\tU2\nRUN <<C\n# internal comment\necho x # trailing\nC\n\
COPY <<X <<Y /dest\nY\nX\nX\nY\nRUN <<'one two'\necho bar\none two\nRUN <<  EOF  > foo\nEOF\n";
        let ast = parse(src).unwrap();
        type Doc = (String, String, bool, bool, u32);
        let docs: Vec<Vec<Doc>> = ast.children[1..]
            .iter()
            .map(|n| {
                n.heredocs
                    .iter()
                    .map(|h| {
                        (
                            h.name.clone(),
                            h.content.clone(),
                            h.expand,
                            h.chomp,
                            h.file_descriptor,
                        )
                    })
                    .collect()
            })
            .collect();
        let d = |n: &str, c: &str, e: bool, ch: bool, fd: u32| {
            (n.to_string(), c.to_string(), e, ch, fd)
        };
        assert_eq!(
            docs,
            vec![
                vec![],
                vec![],
                vec![d("EMPTY", "", true, false, 0)],
                vec![d("E2", "", true, false, 3)],
                vec![],
                vec![d("U2", "\tbaz\n", true, true, 0)],
                vec![d(
                    "C",
                    "# internal comment\necho x # trailing\n",
                    true,
                    false,
                    0
                )],
                vec![d("X", "Y\n", true, false, 0), d("Y", "X\n", true, false, 0)],
                vec![d("one two", "echo bar\n", false, false, 0)],
                vec![d("EOF", "", true, false, 0)],
            ]
        );
    }

    #[test]
    fn exec_form_has_no_heredocs() {
        let ast = parse("RUN [\"cat\", \"<<EOF\"]\nEOF\n").unwrap();
        assert!(ast.children[0].heredocs.is_empty());
        assert_eq!(ast.children.len(), 2);
    }

    #[test]
    fn onbuild_heredoc() {
        let ast = parse("ONBUILD RUN <<EOF\nls\nEOF\n").unwrap();
        assert_eq!(ast.children[0].heredocs[0].content, "ls\n");
    }

    #[test]
    fn bom_and_crlf() {
        let ast = parse("\u{feff}FROM a\r\nRUN b \\\r\n c\r\n").unwrap();
        assert_eq!(ast.children[0].args, vec!["a"]);
        assert_eq!(ast.children[1].args, vec!["b  c"]);
    }

    #[test]
    fn long_line_fails() {
        let src = format!("FROM a\nRUN {}\n", "x".repeat(MAX_LINE_LEN));
        let e = parse(&src).unwrap_err();
        assert_eq!(e.kind, ErrorKind::LineTooLong);
        assert_eq!(e.line, 2);
    }
}
