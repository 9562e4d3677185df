//! Lexer: splits a template into text and action tokens, applying the
//! `{{-` / `-}}` trim markers and dropping `{{/* comments */}}`.

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok {
    Text(String),
    Left,
    Right,
    Space,
    Ident(String),
    /// `.Name` (name without the dot).
    Field(String),
    /// `$` or `$name` (with the dollar).
    Var(String),
    Dot,
    Str(String),
    /// Raw text of a number literal.
    Number(String),
    Char(char),
    Bool(bool),
    Nil,
    Pipe,
    LParen,
    RParen,
    Decl,
    Assign,
    Comma,
    Eof,
}

#[derive(Debug, Clone)]
pub(crate) struct Token {
    pub tok: Tok,
    pub pos: usize,
}

/// A lexing error: message and byte offset.
pub(crate) type LexError = (String, usize);

fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

fn is_alnum(c: char) -> bool {
    c == '_' || c.is_alphanumeric()
}

const LEFT: &str = "{{";
const RIGHT: &str = "}}";

struct Lexer<'a> {
    src: &'a str,
    pos: usize,
    toks: Vec<Token>,
    paren_depth: usize,
}

pub(crate) fn lex(src: &str) -> Result<Vec<Token>, LexError> {
    let mut l = Lexer {
        src,
        pos: 0,
        toks: Vec::new(),
        paren_depth: 0,
    };
    l.run()?;
    Ok(l.toks)
}

impl<'a> Lexer<'a> {
    fn rest(&self) -> &'a str {
        &self.src[self.pos..]
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn emit(&mut self, tok: Tok, pos: usize) {
        self.toks.push(Token { tok, pos });
    }

    fn run(&mut self) -> Result<(), LexError> {
        let mut trim_next_text = false;
        loop {
            let rest = self.rest();
            let start = self.pos;
            let (text_end, found) = match rest.find(LEFT) {
                Some(i) => (self.pos + i, true),
                None => (self.src.len(), false),
            };
            let mut text = &self.src[start..text_end];
            if trim_next_text {
                text = text.trim_start_matches(is_space);
            }
            let after = &self.src[text_end..];
            let left_trim = found && {
                let mut it = after[LEFT.len()..].chars();
                it.next() == Some('-') && it.next().is_some_and(is_space)
            };
            if left_trim {
                text = text.trim_end_matches(is_space);
            }
            if !text.is_empty() {
                let tpos = text.as_ptr() as usize - self.src.as_ptr() as usize;
                self.emit(Tok::Text(text.to_string()), tpos);
            }
            if !found {
                self.emit(Tok::Eof, self.src.len());
                return Ok(());
            }
            self.pos = text_end + LEFT.len();
            if left_trim {
                self.pos += 2;
            }
            // Comment?
            if self.rest().starts_with("/*") {
                let cpos = self.pos;
                let Some(end) = self.rest().find("*/") else {
                    return Err(("unclosed comment".into(), cpos));
                };
                self.pos += end + 2;
                if let Some(n) = self.right_trim_at() {
                    self.pos += n;
                    trim_next_text = true;
                } else if self.rest().starts_with(RIGHT) {
                    self.pos += RIGHT.len();
                    trim_next_text = false;
                } else {
                    return Err(("comment ends before closing delimiter".into(), cpos));
                }
                continue;
            }
            self.emit(Tok::Left, text_end);
            trim_next_text = self.lex_action()?;
        }
    }

    /// If the input at pos is whitespace followed by `-}}`, returns the
    /// length of that whole right delimiter.
    fn right_trim_at(&self) -> Option<usize> {
        let rest = self.rest();
        let ws = rest.len() - rest.trim_start_matches(is_space).len();
        if ws > 0 && rest[ws..].starts_with("-}}") {
            Some(ws + 3)
        } else {
            None
        }
    }

    /// Lexes the inside of an action up to and including its right
    /// delimiter. Returns whether the delimiter carried a trim marker.
    fn lex_action(&mut self) -> Result<bool, LexError> {
        self.paren_depth = 0;
        loop {
            let p = self.pos;
            if let Some(n) = self.right_trim_at() {
                if self.paren_depth > 0 {
                    return Err(("unclosed left paren".into(), p));
                }
                self.pos += n;
                self.emit(Tok::Right, p);
                return Ok(true);
            }
            if self.rest().starts_with(RIGHT) {
                if self.paren_depth > 0 {
                    return Err(("unclosed left paren".into(), p));
                }
                self.pos += RIGHT.len();
                self.emit(Tok::Right, p);
                return Ok(false);
            }
            let Some(c) = self.peek() else {
                return Err(("unclosed action".into(), p));
            };
            match c {
                c if is_space(c) => {
                    let rest = self.rest();
                    let n = rest.len() - rest.trim_start_matches(is_space).len();
                    self.pos += n;
                    self.emit(Tok::Space, p);
                }
                '=' => {
                    self.pos += 1;
                    self.emit(Tok::Assign, p);
                }
                ':' => {
                    if !self.rest().starts_with(":=") {
                        return Err(("expected :=".into(), p));
                    }
                    self.pos += 2;
                    self.emit(Tok::Decl, p);
                }
                '|' => {
                    self.pos += 1;
                    self.emit(Tok::Pipe, p);
                }
                ',' => {
                    self.pos += 1;
                    self.emit(Tok::Comma, p);
                }
                '(' => {
                    self.pos += 1;
                    self.paren_depth += 1;
                    self.emit(Tok::LParen, p);
                }
                ')' => {
                    if self.paren_depth == 0 {
                        return Err(("unexpected right paren".into(), p));
                    }
                    self.paren_depth -= 1;
                    self.pos += 1;
                    self.emit(Tok::RParen, p);
                }
                '"' => {
                    let s = self.lex_quote()?;
                    self.emit(Tok::Str(s), p);
                }
                '`' => {
                    self.pos += 1;
                    let Some(end) = self.rest().find('`') else {
                        return Err(("unterminated raw quoted string".into(), p));
                    };
                    let s = self.rest()[..end].to_string();
                    self.pos += end + 1;
                    self.emit(Tok::Str(s), p);
                }
                '\'' => {
                    let ch = self.lex_char()?;
                    self.emit(Tok::Char(ch), p);
                }
                '$' => {
                    self.pos += 1;
                    let name = self.take_while(is_alnum);
                    self.check_terminator()?;
                    self.emit(Tok::Var(format!("${name}")), p);
                }
                '.' => {
                    let next = self.rest()[1..].chars().next();
                    match next {
                        Some(d) if d.is_ascii_digit() => {
                            let n = self.lex_number()?;
                            self.emit(Tok::Number(n), p);
                        }
                        Some(a) if is_alnum(a) => {
                            self.pos += 1;
                            let name = self.take_while(is_alnum);
                            self.check_terminator()?;
                            self.emit(Tok::Field(name), p);
                        }
                        _ => {
                            self.pos += 1;
                            self.emit(Tok::Dot, p);
                        }
                    }
                }
                '+' | '-' | '0'..='9' => {
                    let n = self.lex_number()?;
                    self.emit(Tok::Number(n), p);
                }
                c if is_alnum(c) => {
                    let word = self.take_while(is_alnum);
                    self.check_terminator()?;
                    let tok = match word.as_str() {
                        "true" => Tok::Bool(true),
                        "false" => Tok::Bool(false),
                        "nil" => Tok::Nil,
                        _ => Tok::Ident(word),
                    };
                    self.emit(tok, p);
                }
                other => {
                    return Err((format!("unrecognized character in action: {other:?}"), p));
                }
            }
        }
    }

    fn take_while(&mut self, f: impl Fn(char) -> bool) -> String {
        let rest = self.rest();
        let n = rest.len() - rest.trim_start_matches(f).len();
        let s = rest[..n].to_string();
        self.pos += n;
        s
    }

    fn check_terminator(&self) -> Result<(), LexError> {
        let rest = self.rest();
        match rest.chars().next() {
            None => Ok(()),
            Some(c) if is_space(c) || matches!(c, '.' | ',' | '|' | ':' | ')' | '(' | '=') => {
                Ok(())
            }
            Some(_) if rest.starts_with(RIGHT) => Ok(()),
            Some(c) => Err((format!("bad character {c:?}"), self.pos)),
        }
    }

    fn lex_number(&mut self) -> Result<String, LexError> {
        let start = self.pos;
        let rest = self.rest();
        let b = rest.as_bytes();
        let mut i = 0;
        if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
            i += 1;
        }
        let mut digits: &[u8] = b"0123456789_";
        let mut exp_chars: &[u8] = b"eE";
        if i + 1 < b.len() && b[i] == b'0' {
            match b[i + 1] {
                b'x' | b'X' => {
                    i += 2;
                    digits = b"0123456789abcdefABCDEF_";
                    exp_chars = b"pP";
                }
                b'o' | b'O' => {
                    i += 2;
                    digits = b"01234567_";
                    exp_chars = b"";
                }
                b'b' | b'B' => {
                    i += 2;
                    digits = b"01_";
                    exp_chars = b"";
                }
                _ => {}
            }
        }
        while i < b.len() && digits.contains(&b[i]) {
            i += 1;
        }
        if i < b.len() && b[i] == b'.' {
            i += 1;
            while i < b.len() && digits.contains(&b[i]) {
                i += 1;
            }
        }
        if !exp_chars.is_empty() && i < b.len() && exp_chars.contains(&b[i]) {
            i += 1;
            if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
                i += 1;
            }
            while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'_') {
                i += 1;
            }
        }
        let text = &rest[..i];
        let next = rest[i..].chars().next();
        if next.is_some_and(is_alnum) || text.is_empty() || text == "+" || text == "-" {
            let end = i + next.map_or(0, char::len_utf8);
            return Err((format!("bad number syntax: {:?}", &rest[..end]), start));
        }
        self.pos += i;
        Ok(text.to_string())
    }

    fn lex_escape(&mut self, start: usize) -> Result<char, LexError> {
        // self.pos is just after the backslash
        let Some(c) = self.peek() else {
            return Err(("unterminated quoted string".into(), start));
        };
        self.pos += c.len_utf8();
        let hex = |l: &mut Self, n: usize| -> Result<char, LexError> {
            let rest = l.rest();
            let digits = rest.get(..n).unwrap_or("");
            let v = u32::from_str_radix(digits, 16)
                .ok()
                .filter(|_| digits.len() == n && digits.chars().all(|c| c.is_ascii_hexdigit()))
                .and_then(char::from_u32)
                .ok_or_else(|| ("invalid syntax in quoted string".to_string(), start))?;
            l.pos += n;
            Ok(v)
        };
        Ok(match c {
            'a' => '\x07',
            'b' => '\x08',
            'f' => '\x0c',
            'n' => '\n',
            'r' => '\r',
            't' => '\t',
            'v' => '\x0b',
            '\\' => '\\',
            '"' => '"',
            '\'' => '\'',
            'x' => hex(self, 2)?,
            'u' => hex(self, 4)?,
            'U' => hex(self, 8)?,
            '0'..='7' => {
                let rest = self.rest();
                let digits = rest.get(..2).unwrap_or("");
                let v = u32::from_str_radix(&format!("{c}{digits}"), 8)
                    .ok()
                    .filter(|v| *v < 256 && digits.len() == 2)
                    .and_then(char::from_u32)
                    .ok_or_else(|| ("invalid syntax in quoted string".to_string(), start))?;
                self.pos += 2;
                v
            }
            _ => return Err(("invalid syntax in quoted string".into(), start)),
        })
    }

    fn lex_quote(&mut self) -> Result<String, LexError> {
        let start = self.pos;
        self.pos += 1;
        let mut out = String::new();
        loop {
            let Some(c) = self.peek() else {
                return Err(("unterminated quoted string".into(), start));
            };
            self.pos += c.len_utf8();
            match c {
                '"' => return Ok(out),
                '\\' => out.push(self.lex_escape(start)?),
                c => out.push(c),
            }
        }
    }

    fn lex_char(&mut self) -> Result<char, LexError> {
        let start = self.pos;
        self.pos += 1;
        let Some(c) = self.peek() else {
            return Err(("unterminated character constant".into(), start));
        };
        self.pos += c.len_utf8();
        let ch = match c {
            '\\' => self.lex_escape(start)?,
            '\'' | '\n' => return Err(("malformed character constant".into(), start)),
            c => c,
        };
        if self.peek() != Some('\'') {
            return Err(("unterminated character constant".into(), start));
        }
        self.pos += 1;
        Ok(ch)
    }
}
