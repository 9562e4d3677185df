//! Parser: tokens to a tree of nodes, with Go's parse-time checks (known
//! functions, defined variables, `break`/`continue` inside `range`).

use std::collections::HashMap;
use std::fmt;

use crate::funcs;
use crate::lex::{lex, Tok, Token};

/// Nesting limit for blocks and parentheses, so hostile input cannot
/// exhaust the stack.
const MAX_DEPTH: usize = 100;

#[derive(Debug, Clone)]
pub(crate) enum Node {
    Text(String),
    Action(Pipe),
    If(Control),
    Range(Control),
    With(Control),
    Template {
        pos: usize,
        name: String,
        pipe: Option<Pipe>,
    },
    Break,
    Continue,
}

#[derive(Debug, Clone)]
pub(crate) struct Control {
    pub pipe: Pipe,
    pub body: Vec<Node>,
    pub els: Option<Vec<Node>>,
}

#[derive(Debug, Clone)]
pub(crate) struct Pipe {
    pub pos: usize,
    pub is_assign: bool,
    pub decl: Vec<String>,
    pub cmds: Vec<Cmd>,
}

#[derive(Debug, Clone)]
pub(crate) struct Cmd {
    pub pos: usize,
    pub args: Vec<Arg>,
}

#[derive(Debug, Clone)]
pub(crate) enum Num {
    Int(i64),
    Uint(u64),
    Float(f64),
}

#[derive(Debug, Clone)]
pub(crate) enum Arg {
    Dot,
    Nil,
    Bool(bool),
    Str(String),
    Num(Num, String),
    /// `.A.B` relative to dot.
    Field(Vec<String>),
    /// `$x.A.B`.
    Var(String, Vec<String>),
    /// A function name.
    Func(String),
    /// `(pipeline).A.B` or similar.
    Chain(Box<Arg>, Vec<String>),
    Pipe(Box<Pipe>),
}

impl fmt::Display for Arg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Arg::Dot => f.write_str("."),
            Arg::Nil => f.write_str("nil"),
            Arg::Bool(b) => write!(f, "{b}"),
            Arg::Str(s) => write!(f, "{}", crate::gofmt::quote(s)),
            Arg::Num(_, text) => f.write_str(text),
            Arg::Field(names) => {
                for n in names {
                    write!(f, ".{n}")?;
                }
                Ok(())
            }
            Arg::Var(v, names) => {
                f.write_str(v)?;
                for n in names {
                    write!(f, ".{n}")?;
                }
                Ok(())
            }
            Arg::Func(name) => f.write_str(name),
            Arg::Chain(inner, names) => {
                write!(f, "{inner}")?;
                for n in names {
                    write!(f, ".{n}")?;
                }
                Ok(())
            }
            Arg::Pipe(p) => write!(f, "({p})"),
        }
    }
}

impl fmt::Display for Cmd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, a) in self.args.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{a}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Pipe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.decl.is_empty() {
            f.write_str(&self.decl.join(", "))?;
            f.write_str(if self.is_assign { " = " } else { " := " })?;
        }
        for (i, c) in self.cmds.iter().enumerate() {
            if i > 0 {
                f.write_str(" | ")?;
            }
            write!(f, "{c}")?;
        }
        Ok(())
    }
}

/// The parsed tree: the main list and `{{define}}`d templates.
#[derive(Debug, Clone)]
pub(crate) struct Tree {
    pub root: Vec<Node>,
    pub defines: HashMap<String, Vec<Node>>,
}

/// A parse error: message and byte offset.
pub(crate) type ParseError = (String, usize);
type PResult<T> = Result<T, ParseError>;

enum ListEnd {
    Eof,
    End,
    Else,
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    If,
    Range,
    With,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::If => "if",
            Kind::Range => "range",
            Kind::With => "with",
        }
    }
}

struct Parser {
    toks: Vec<Token>,
    i: usize,
    vars: Vec<String>,
    defines: HashMap<String, Vec<Node>>,
    depth: usize,
    range_depth: usize,
}

pub(crate) fn parse(src: &str) -> PResult<Tree> {
    let toks = lex(src)?;
    let mut p = Parser {
        toks,
        i: 0,
        vars: vec!["$".to_string()],
        defines: HashMap::new(),
        depth: 0,
        range_depth: 0,
    };
    let (root, end) = p.list(true)?;
    match end {
        ListEnd::Eof => Ok(Tree {
            root,
            defines: p.defines,
        }),
        ListEnd::End => Err(("unexpected {{end}}".into(), p.prev_pos())),
        ListEnd::Else => Err(("unexpected {{else}}".into(), p.prev_pos())),
    }
}

fn describe(t: &Tok) -> String {
    match t {
        Tok::Text(_) => "text".into(),
        Tok::Left => "\"{{\"".into(),
        Tok::Right => "\"}}\"".into(),
        Tok::Space => "space".into(),
        Tok::Ident(s) => format!("<{s}>"),
        Tok::Field(s) => format!("<.{s}>"),
        Tok::Var(s) => format!("<{s}>"),
        Tok::Dot => "<.>".into(),
        Tok::Str(s) => format!("{s:?}"),
        Tok::Number(s) => format!("<{s}>"),
        Tok::Char(c) => format!("{c:?}"),
        Tok::Bool(b) => format!("<{b}>"),
        Tok::Nil => "<nil>".into(),
        Tok::Pipe => "\"|\"".into(),
        Tok::LParen => "\"(\"".into(),
        Tok::RParen => "\")\"".into(),
        Tok::Decl => "\":=\"".into(),
        Tok::Assign => "\"=\"".into(),
        Tok::Comma => "\",\"".into(),
        Tok::Eof => "EOF".into(),
    }
}

fn is_keyword(s: &str) -> bool {
    matches!(
        s,
        "if" | "else"
            | "end"
            | "range"
            | "with"
            | "define"
            | "template"
            | "block"
            | "break"
            | "continue"
    )
}

fn parse_number(text: &str, pos: usize) -> PResult<Num> {
    let bad = || (format!("illegal number syntax: {text:?}"), pos);
    let t: String = text.chars().filter(|&c| c != '_').collect();
    let (neg, body) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, &t[..]),
    };
    let lower = body.to_ascii_lowercase();
    let radix_int = if let Some(h) = lower.strip_prefix("0x") {
        if h.contains('.') || h.contains('p') {
            return Err((
                "hexadecimal floating-point numbers are not supported".into(),
                pos,
            ));
        }
        Some((h.to_string(), 16))
    } else if let Some(o) = lower.strip_prefix("0o") {
        Some((o.to_string(), 8))
    } else if let Some(b) = lower.strip_prefix("0b") {
        Some((b.to_string(), 2))
    } else if !lower.contains(['.', 'e']) {
        if lower.len() > 1 && lower.starts_with('0') {
            Some((lower[1..].to_string(), 8))
        } else {
            Some((lower.clone(), 10))
        }
    } else {
        None
    };
    match radix_int {
        Some((digits, radix)) => {
            if digits.is_empty() {
                return Err(bad());
            }
            let mag = u128::from_str_radix(&digits, radix).map_err(|_| bad())?;
            if neg {
                if mag <= i64::MAX as u128 + 1 {
                    Ok(Num::Int((-(mag as i128)) as i64))
                } else {
                    Err(bad())
                }
            } else if mag <= i64::MAX as u128 {
                Ok(Num::Int(mag as i64))
            } else if mag <= u64::MAX as u128 {
                Ok(Num::Uint(mag as u64))
            } else {
                Err(bad())
            }
        }
        None => {
            let f: f64 = body.parse().map_err(|_| bad())?;
            if !f.is_finite() {
                return Err(bad());
            }
            Ok(Num::Float(if neg { -f } else { f }))
        }
    }
}

impl Parser {
    fn peek(&self) -> &Tok {
        &self.toks[self.i.min(self.toks.len() - 1)].tok
    }

    fn pos(&self) -> usize {
        self.toks[self.i.min(self.toks.len() - 1)].pos
    }

    fn prev_pos(&self) -> usize {
        self.toks[self.i.saturating_sub(1).min(self.toks.len() - 1)].pos
    }

    fn next(&mut self) -> Token {
        let t = self.toks[self.i.min(self.toks.len() - 1)].clone();
        if self.i < self.toks.len() {
            self.i += 1;
        }
        t
    }

    fn skip_space(&mut self) {
        while *self.peek() == Tok::Space {
            self.i += 1;
        }
    }

    fn next_non_space(&mut self) -> Token {
        self.skip_space();
        self.next()
    }

    fn expect_right(&mut self, context: &str) -> PResult<()> {
        let t = self.next_non_space();
        if t.tok == Tok::Right {
            Ok(())
        } else {
            Err((
                format!("unexpected {} in {context}", describe(&t.tok)),
                t.pos,
            ))
        }
    }

    fn enter(&mut self, pos: usize) -> PResult<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err((format!("max nesting depth {MAX_DEPTH} exceeded"), pos));
        }
        Ok(())
    }

    fn list(&mut self, top: bool) -> PResult<(Vec<Node>, ListEnd)> {
        let mut nodes = Vec::new();
        loop {
            let t = self.next();
            match t.tok {
                Tok::Eof => return Ok((nodes, ListEnd::Eof)),
                Tok::Text(s) => nodes.push(Node::Text(s)),
                Tok::Left => {
                    self.skip_space();
                    let kw_pos = self.pos();
                    let kw = match self.peek() {
                        Tok::Ident(s) if is_keyword(s) => Some(s.clone()),
                        _ => None,
                    };
                    match kw.as_deref() {
                        Some("end") => {
                            self.i += 1;
                            self.expect_right("end")?;
                            return Ok((nodes, ListEnd::End));
                        }
                        Some("else") => {
                            self.i += 1;
                            return Ok((nodes, ListEnd::Else));
                        }
                        Some("if") => {
                            self.i += 1;
                            nodes.push(self.control(Kind::If, kw_pos)?);
                        }
                        Some("range") => {
                            self.i += 1;
                            nodes.push(self.control(Kind::Range, kw_pos)?);
                        }
                        Some("with") => {
                            self.i += 1;
                            nodes.push(self.control(Kind::With, kw_pos)?);
                        }
                        Some("break") | Some("continue") => {
                            self.i += 1;
                            let word = kw.unwrap_or_default();
                            if self.range_depth == 0 {
                                return Err((
                                    format!("{{{{{word}}}}} outside {{{{range}}}}"),
                                    kw_pos,
                                ));
                            }
                            self.expect_right(&word)?;
                            nodes.push(if word == "break" {
                                Node::Break
                            } else {
                                Node::Continue
                            });
                        }
                        Some("template") => {
                            self.i += 1;
                            nodes.push(self.template_call(kw_pos, "template")?);
                        }
                        Some("block") => {
                            self.i += 1;
                            let node = self.template_call(kw_pos, "block")?;
                            if let Node::Template { name, .. } = &node {
                                let name = name.clone();
                                self.define_body(name, kw_pos)?;
                            }
                            nodes.push(node);
                        }
                        Some("define") => {
                            self.i += 1;
                            if !top {
                                return Err(("unexpected <define> in command".into(), kw_pos));
                            }
                            let t = self.next_non_space();
                            let Tok::Str(name) = t.tok else {
                                return Err((
                                    format!("unexpected {} in define clause", describe(&t.tok)),
                                    t.pos,
                                ));
                            };
                            self.expect_right("define clause")?;
                            self.define_body(name, kw_pos)?;
                        }
                        _ => {
                            let pipe = self.pipeline("command", false, true)?;
                            nodes.push(Node::Action(pipe));
                        }
                    }
                }
                other => {
                    return Err((format!("unexpected {}", describe(&other)), t.pos));
                }
            }
        }
    }

    fn define_body(&mut self, name: String, pos: usize) -> PResult<()> {
        self.enter(pos)?;
        let saved_vars = std::mem::replace(&mut self.vars, vec!["$".to_string()]);
        let saved_range = std::mem::replace(&mut self.range_depth, 0);
        let (body, end) = self.list(false)?;
        self.vars = saved_vars;
        self.range_depth = saved_range;
        self.depth -= 1;
        match end {
            ListEnd::End => {
                self.defines.insert(name, body);
                Ok(())
            }
            ListEnd::Else => Err(("unexpected {{else}} in define".into(), self.prev_pos())),
            ListEnd::Eof => Err(("unexpected EOF".into(), self.prev_pos())),
        }
    }

    fn template_call(&mut self, pos: usize, context: &str) -> PResult<Node> {
        let t = self.next_non_space();
        let Tok::Str(name) = t.tok else {
            return Err((
                format!("unexpected {} in {context} clause", describe(&t.tok)),
                t.pos,
            ));
        };
        self.skip_space();
        let pipe = if *self.peek() == Tok::Right {
            if context == "block" {
                return Err(("missing value for block clause".into(), self.pos()));
            }
            self.i += 1;
            None
        } else {
            Some(self.pipeline(context, false, false)?)
        };
        Ok(Node::Template { pos, name, pipe })
    }

    fn control(&mut self, kind: Kind, pos: usize) -> PResult<Node> {
        self.enter(pos)?;
        let mark = self.vars.len();
        let pipe = self.pipeline(kind.name(), true, true)?;
        if pipe.decl.len() > 1 && kind != Kind::Range {
            return Err((
                format!("too many declarations in {}", kind.name()),
                pipe.pos,
            ));
        }
        if kind == Kind::Range {
            self.range_depth += 1;
        }
        let body = self.list(false);
        if kind == Kind::Range {
            self.range_depth -= 1;
        }
        let (body, end) = body?;
        let els = match end {
            ListEnd::End => None,
            ListEnd::Eof => return Err(("unexpected EOF".into(), self.prev_pos())),
            ListEnd::Else => {
                self.skip_space();
                let chained = match (kind, self.peek()) {
                    (Kind::If, Tok::Ident(s)) if s == "if" => Some(Kind::If),
                    (Kind::With, Tok::Ident(s)) if s == "with" => Some(Kind::With),
                    _ => None,
                };
                if let Some(k) = chained {
                    let p = self.pos();
                    self.i += 1;
                    // `{{else if ...}}` is `{{else}}{{if ...}}...{{end}}{{end}}`
                    // sharing the final `{{end}}`.
                    Some(vec![self.control(k, p)?])
                } else {
                    self.expect_right("else")?;
                    let (els, end) = self.list(false)?;
                    match end {
                        ListEnd::End => {}
                        ListEnd::Else => {
                            return Err((
                                format!("expected end; found {{{{else}}}} in {}", kind.name()),
                                self.prev_pos(),
                            ))
                        }
                        ListEnd::Eof => return Err(("unexpected EOF".into(), self.prev_pos())),
                    }
                    Some(els)
                }
            }
        };
        self.vars.truncate(mark);
        self.depth -= 1;
        let c = Control { pipe, body, els };
        Ok(match kind {
            Kind::If => Node::If(c),
            Kind::Range => Node::Range(c),
            Kind::With => Node::With(c),
        })
    }

    fn check_var(&self, name: &str, pos: usize) -> PResult<()> {
        if self.vars.iter().any(|v| v == name) {
            Ok(())
        } else {
            Err((format!("undefined variable {name:?}"), pos))
        }
    }

    /// Parses a pipeline ending at `}}` (or `)` when `paren`).
    fn pipeline(&mut self, context: &str, two_vars: bool, allow_decl: bool) -> PResult<Pipe> {
        self.pipeline_until(context, two_vars, allow_decl, false)
    }

    fn pipeline_until(
        &mut self,
        context: &str,
        two_vars: bool,
        allow_decl: bool,
        paren: bool,
    ) -> PResult<Pipe> {
        self.skip_space();
        let pos = self.pos();
        let mut pipe = Pipe {
            pos,
            is_assign: false,
            decl: Vec::new(),
            cmds: Vec::new(),
        };
        // Declarations.
        if allow_decl {
            if let Tok::Var(first) = self.peek().clone() {
                let save = self.i;
                self.i += 1;
                self.skip_space();
                let mut names = vec![first];
                let mut op = self.peek().clone();
                if op == Tok::Comma && two_vars {
                    self.i += 1;
                    self.skip_space();
                    if let Tok::Var(second) = self.peek().clone() {
                        self.i += 1;
                        self.skip_space();
                        names.push(second);
                        op = self.peek().clone();
                        if op != Tok::Decl && op != Tok::Assign {
                            return Err((
                                format!("unexpected {} in {context}", describe(&op)),
                                self.pos(),
                            ));
                        }
                    } else {
                        return Err((
                            format!("unexpected {} in {context}", describe(self.peek())),
                            self.pos(),
                        ));
                    }
                }
                match op {
                    Tok::Decl => {
                        self.i += 1;
                        pipe.decl = names;
                    }
                    Tok::Assign => {
                        self.i += 1;
                        for n in &names {
                            self.check_var(n, pos)?;
                        }
                        pipe.is_assign = true;
                        pipe.decl = names;
                    }
                    _ => self.i = save,
                }
            }
        }
        let end = if paren { Tok::RParen } else { Tok::Right };
        loop {
            self.skip_space();
            let t = self.peek().clone();
            if t == end {
                self.i += 1;
                break;
            }
            match t {
                Tok::Bool(_)
                | Tok::Char(_)
                | Tok::Dot
                | Tok::Field(_)
                | Tok::Ident(_)
                | Tok::Number(_)
                | Tok::Nil
                | Tok::Str(_)
                | Tok::Var(_)
                | Tok::LParen => {
                    let cmd = self.command(context)?;
                    pipe.cmds.push(cmd);
                }
                other => {
                    return Err((
                        format!("unexpected {} in {context}", describe(&other)),
                        self.pos(),
                    ))
                }
            }
        }
        if pipe.cmds.is_empty() {
            return Err((format!("missing value for {context}"), pos));
        }
        for (i, c) in pipe.cmds.iter().enumerate().skip(1) {
            if matches!(
                c.args[0],
                Arg::Bool(_) | Arg::Dot | Arg::Nil | Arg::Num(..) | Arg::Str(_)
            ) {
                return Err((
                    format!("non executable command in pipeline stage {}", i + 1),
                    c.pos,
                ));
            }
        }
        // Declared variables become visible after the declaration.
        if !pipe.is_assign {
            self.vars.extend(pipe.decl.iter().cloned());
        }
        Ok(pipe)
    }

    fn command(&mut self, context: &str) -> PResult<Cmd> {
        let pos = self.pos();
        let mut args = Vec::new();
        loop {
            self.skip_space();
            match self.peek() {
                Tok::Right | Tok::RParen => break,
                Tok::Pipe => {
                    self.i += 1;
                    if args.is_empty() {
                        return Err(("missing command before |".into(), pos));
                    }
                    self.skip_space();
                    if matches!(self.peek(), Tok::Right | Tok::RParen) {
                        return Err(("missing command after |".into(), self.pos()));
                    }
                    return Ok(Cmd { pos, args });
                }
                _ => {}
            }
            let tpos = self.pos();
            let Some(op) = self.operand()? else {
                let t = self.peek().clone();
                return Err((format!("unexpected {} in operand", describe(&t)), tpos));
            };
            args.push(op);
            match self.peek() {
                Tok::Space | Tok::Right | Tok::RParen | Tok::Pipe => {}
                other => {
                    return Err((
                        format!("unexpected {} in operand", describe(other)),
                        self.pos(),
                    ))
                }
            }
        }
        if args.is_empty() {
            return Err((format!("empty command in {context}"), pos));
        }
        Ok(Cmd { pos, args })
    }

    fn operand(&mut self) -> PResult<Option<Arg>> {
        let Some(term) = self.term()? else {
            return Ok(None);
        };
        let mut fields = Vec::new();
        while let Tok::Field(f) = self.peek() {
            fields.push(f.clone());
            self.i += 1;
        }
        if fields.is_empty() {
            return Ok(Some(term));
        }
        Ok(Some(match term {
            Arg::Field(mut names) => {
                names.extend(fields);
                Arg::Field(names)
            }
            Arg::Var(v, mut names) => {
                names.extend(fields);
                Arg::Var(v, names)
            }
            Arg::Pipe(_) | Arg::Func(_) => Arg::Chain(Box::new(term), fields),
            other => {
                return Err((
                    format!("unexpected . after term {:?}", other.to_string()),
                    self.prev_pos(),
                ))
            }
        }))
    }

    fn term(&mut self) -> PResult<Option<Arg>> {
        let t = self.peek().clone();
        let pos = self.pos();
        let arg = match t {
            Tok::Ident(name) => {
                if is_keyword(&name) {
                    return Err((format!("unexpected <{name}> in operand"), pos));
                }
                if !funcs::exists(&name) {
                    return Err((format!("function {name:?} not defined"), pos));
                }
                Arg::Func(name)
            }
            Tok::Dot => Arg::Dot,
            Tok::Nil => Arg::Nil,
            Tok::Var(v) => {
                self.check_var(&v, pos)?;
                Arg::Var(v, Vec::new())
            }
            Tok::Field(f) => Arg::Field(vec![f]),
            Tok::Bool(b) => Arg::Bool(b),
            Tok::Number(text) => Arg::Num(parse_number(&text, pos)?, text),
            Tok::Char(c) => Arg::Num(Num::Int(c as i64), format!("{c:?}")),
            Tok::Str(s) => Arg::Str(s),
            Tok::LParen => {
                self.i += 1;
                self.enter(pos)?;
                let p = self.pipeline_until("parenthesized pipeline", false, true, true)?;
                self.depth -= 1;
                return Ok(Some(Arg::Pipe(Box::new(p))));
            }
            _ => return Ok(None),
        };
        self.i += 1;
        Ok(Some(arg))
    }
}
