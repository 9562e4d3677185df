//! The modules a Python file imports: `import a.b as c, d` and `from a.b import c` statements,
//! anywhere a statement can start (also indented, after `;`), outside strings and comments.
//! Relative imports (`from . import x`) are the project's own and are left out.
//!
//! A small scanner rather than a Python parser: it only needs to know where statements start,
//! which takes strings (all quote forms, prefixes, escapes), comments, brackets and line
//! continuations. Imports under `try:` (and its handlers) or `if TYPE_CHECKING:` are marked
//! optional: code written that way runs without the module.

/// One imported top-level module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Import {
    /// The top-level module (`sklearn` for `from sklearn.linear_model import X`).
    pub module: String,
    /// 1-based line of the statement.
    pub line: usize,
    /// Under `try:`/`except` or `if TYPE_CHECKING:`: the program runs without it.
    pub optional: bool,
}

/// Statements of `src`: (line, indentation, text with strings blanked and comments removed).
fn statements(src: &str) -> Vec<(usize, usize, String)> {
    let b = src.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let mut line = 1;
    let mut depth = 0usize; // open brackets: newlines inside do not end a statement
    let mut cur = String::new();
    let mut cur_line = 1;
    let mut indent = 0;
    let mut at_start = true;
    while i < b.len() {
        let c = b[i];
        if at_start {
            // Measure indentation of a new logical line.
            let mut n = 0;
            while i < b.len() && (b[i] == b' ' || b[i] == b'\t') {
                n += if b[i] == b'\t' { 8 } else { 1 };
                i += 1;
            }
            indent = n;
            cur_line = line;
            at_start = false;
            continue;
        }
        match c {
            b'#' => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'\\' if b.get(i + 1) == Some(&b'\n') => {
                i += 2;
                line += 1;
                cur.push(' ');
            }
            b'\n' => {
                line += 1;
                i += 1;
                if depth == 0 {
                    push(&mut out, cur_line, indent, &mut cur);
                    at_start = true;
                } else {
                    cur.push(' ');
                }
            }
            b';' if depth == 0 => {
                push(&mut out, cur_line, indent, &mut cur);
                i += 1;
                cur_line = line;
            }
            b'(' | b'[' | b'{' => {
                depth += 1;
                cur.push(c as char);
                i += 1;
            }
            b')' | b']' | b'}' => {
                depth = depth.saturating_sub(1);
                cur.push(c as char);
                i += 1;
            }
            b'\'' | b'"' => {
                let triple = b.get(i + 1) == Some(&c) && b.get(i + 2) == Some(&c);
                i += if triple { 3 } else { 1 };
                while i < b.len() {
                    if b[i] == b'\\' {
                        if b.get(i + 1) == Some(&b'\n') {
                            line += 1;
                        }
                        i += 2;
                        continue;
                    }
                    if b[i] == b'\n' {
                        line += 1;
                        if !triple {
                            // An unterminated string ends at the line (a syntax error).
                            break;
                        }
                    }
                    if b[i] == c
                        && (!triple || (b.get(i + 1) == Some(&c) && b.get(i + 2) == Some(&c)))
                    {
                        i += if triple { 3 } else { 1 };
                        break;
                    }
                    i += 1;
                }
                cur.push_str("''");
            }
            _ => {
                // Multi-byte UTF-8 is copied as is: identifiers we look at are ASCII.
                let ch_len = utf8_len(c);
                cur.push_str(std::str::from_utf8(&b[i..(i + ch_len).min(b.len())]).unwrap_or("?"));
                i += ch_len;
            }
        }
    }
    push(&mut out, cur_line, indent, &mut cur);
    out
}

fn utf8_len(first: u8) -> usize {
    match first {
        0xF0..=0xFF => 4,
        0xE0..=0xEF => 3,
        0xC0..=0xDF => 2,
        _ => 1,
    }
}

fn push(out: &mut Vec<(usize, usize, String)>, line: usize, indent: usize, cur: &mut String) {
    let t = cur.trim();
    if !t.is_empty() {
        out.push((line, indent, t.to_string()));
    }
    cur.clear();
}

fn is_ident(s: &str) -> bool {
    let mut c = s.chars();
    c.next().is_some_and(|f| f.is_alphabetic() || f == '_')
        && c.all(|ch| ch.is_alphanumeric() || ch == '_')
}

/// The imports of one file's source.
pub fn scan(src: &str) -> Vec<Import> {
    let mut out = Vec::new();
    // Open blocks that make imports optional: their indentation.
    let mut guards: Vec<usize> = Vec::new();
    for (line, indent, text) in statements(src) {
        // A statement at or left of a guard's indentation closes it, except its own handlers.
        let continues_guard = ["except", "else", "finally", "elif"]
            .iter()
            .any(|k| text.starts_with(k) && !is_ident_char(text.as_bytes().get(k.len())));
        guards.retain(|&g| indent > g || (indent == g && continues_guard));
        let first = text.split_whitespace().next().unwrap_or("");
        if first == "try:" || (first == "try" && text.ends_with(':')) {
            guards.push(indent);
            continue;
        }
        if (first == "if" || first == "elif") && text.contains("TYPE_CHECKING") {
            guards.push(indent);
            continue;
        }
        let optional = !guards.is_empty();
        if let Some(rest) = text.strip_prefix("import ") {
            for part in rest.split(',') {
                let name = part.split_whitespace().next().unwrap_or("");
                let top = name.split('.').next().unwrap_or("");
                if is_ident(top) {
                    out.push(Import {
                        module: top.to_string(),
                        line,
                        optional,
                    });
                }
            }
        } else if let Some(rest) = text.strip_prefix("from ") {
            let module = rest.split_whitespace().next().unwrap_or("");
            if module.starts_with('.') {
                continue;
            }
            let top = module.split('.').next().unwrap_or("");
            if is_ident(top) && rest.split_whitespace().nth(1) == Some("import") {
                out.push(Import {
                    module: top.to_string(),
                    line,
                    optional,
                });
            }
        }
    }
    out
}

fn is_ident_char(c: Option<&u8>) -> bool {
    c.is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mods(src: &str) -> Vec<(String, usize, bool)> {
        scan(src)
            .into_iter()
            .map(|i| (i.module, i.line, i.optional))
            .collect()
    }

    #[test]
    fn statement_forms() {
        let src = "import os, sys as system\nimport numpy.linalg as la\nfrom sklearn.linear_model import (\n    LinearRegression,\n)\nfrom . import local\nfrom .x import y\nx = 1; import yaml\ndef f():\n    import cv2\n";
        assert_eq!(
            mods(src),
            vec![
                ("os".into(), 1, false),
                ("sys".into(), 1, false),
                ("numpy".into(), 2, false),
                ("sklearn".into(), 3, false),
                ("yaml".into(), 8, false),
                ("cv2".into(), 10, false),
            ]
        );
    }

    #[test]
    fn strings_and_comments_are_not_code() {
        let src = "\"\"\"Docs.\nimport fake\n\"\"\"\ns = 'import nope'\n# import commented\nt = f\"{x}\" r'\\'' ; import real\nu = '''\nfrom nowhere import x'''\nimport after\n";
        assert_eq!(
            mods(src),
            vec![("real".into(), 6, false), ("after".into(), 9, false)]
        );
    }

    #[test]
    fn guarded_imports_are_optional() {
        let src = "try:\n    import ujson as json\nexcept ImportError:\n    import json\nimport requests\nif TYPE_CHECKING:\n    from pandas import DataFrame\nimport torch\n";
        assert_eq!(
            mods(src),
            vec![
                ("ujson".into(), 2, true),
                ("json".into(), 4, true),
                ("requests".into(), 5, false),
                ("pandas".into(), 7, true),
                ("torch".into(), 8, false),
            ]
        );
    }

    #[test]
    fn continuation_and_non_ascii() {
        let src = "name = 'é'\nimport \\\n  numpy\nprint('ü')\n";
        assert_eq!(mods(src), vec![("numpy".into(), 2, false)]);
    }
}
