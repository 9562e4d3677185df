//! Executes a parsed tree over a `serde_json::Value`.

use std::rc::Rc;

use serde_json::Value;

use crate::funcs;
use crate::gofmt;
use crate::parse::{Arg, Cmd, Control, Node, Num, Pipe, Tree};
use crate::TemplateError;

/// Nesting limit for `{{template}}` calls and control structures together,
/// so recursive templates end in an error rather than a stack overflow.
const MAX_EXEC_DEPTH: usize = 300;

pub(crate) static NULL: Value = Value::Null;

/// A value during execution.
#[derive(Clone, Debug)]
pub(crate) enum Val<'d> {
    /// Go's invalid `reflect.Value`: a missing map key. Prints `<no value>`.
    Missing,
    /// Header-rendering context: fields evaluate to their column headers.
    Header,
    B(&'d Value),
    O(Rc<Value>),
}

impl<'d> Val<'d> {
    pub(crate) fn owned(v: Value) -> Self {
        Val::O(Rc::new(v))
    }

    /// The JSON value (nil for `Missing` and `Header`).
    pub(crate) fn value(&self) -> &Value {
        match self {
            Val::Missing | Val::Header => &NULL,
            Val::B(v) => v,
            Val::O(v) => v,
        }
    }

    /// A child value selected by `f`, borrowed when possible.
    pub(crate) fn child(&self, f: impl FnOnce(&Value) -> Option<&Value>) -> Option<Val<'d>> {
        match self {
            Val::B(v) => f(v).map(Val::B),
            Val::O(v) => f(v).map(|c| Val::owned(c.clone())),
            Val::Missing | Val::Header => None,
        }
    }
}

/// Go's notion of truth.
pub(crate) fn truth(v: &Val) -> bool {
    match v {
        Val::Missing => false,
        Val::Header => true,
        _ => match v.value() {
            Value::Null => false,
            Value::Bool(b) => *b,
            Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
            Value::String(s) => !s.is_empty(),
            Value::Array(a) => !a.is_empty(),
            Value::Object(m) => !m.is_empty(),
        },
    }
}

pub(crate) type HeaderFn<'a> = &'a dyn Fn(&str) -> String;

/// Methods of the data (`{{.Label "k"}}`): name, receiver, arguments; `None` when the data has
/// no method of that name.
pub type MethodFn<'a> = &'a dyn Fn(&str, &Value, &[Value]) -> Option<Result<Value, String>>;

enum Flow {
    Normal,
    Break,
    Continue,
}

/// An error during evaluation: either a bare message still to be located
/// at the enclosing command, or an already located error.
pub(crate) enum EErr {
    Raw(String),
    Located(String),
}

impl From<String> for EErr {
    fn from(s: String) -> Self {
        EErr::Raw(s)
    }
}

type EResult<T> = Result<T, EErr>;

pub(crate) struct State<'t, 'd> {
    tree: &'t Tree,
    src: &'t str,
    name: String,
    vars: Vec<(String, Val<'d>)>,
    out: String,
    header: Option<HeaderFn<'t>>,
    methods: Option<MethodFn<'t>>,
    depth: usize,
}

pub(crate) fn execute<'t, 'd>(
    tree: &'t Tree,
    src: &'t str,
    data: Val<'d>,
    header: Option<HeaderFn<'t>>,
    methods: Option<MethodFn<'t>>,
) -> Result<String, TemplateError> {
    let mut st = State {
        tree,
        src,
        name: String::new(),
        vars: vec![("$".to_string(), data.clone())],
        out: String::new(),
        header,
        methods,
        depth: 0,
    };
    match st.walk_list(&data, &tree.root) {
        Ok(_) => Ok(st.out),
        Err(EErr::Located(m)) => Err(TemplateError::Exec(m)),
        Err(EErr::Raw(m)) => Err(TemplateError::Exec(format!(
            "{}: executing {:?}: {m}",
            st.location(0),
            st.name
        ))),
    }
}

impl<'t, 'd> State<'t, 'd> {
    fn location(&self, pos: usize) -> String {
        let pos = pos.min(self.src.len());
        let before = &self.src.as_bytes()[..pos];
        let line = 1 + before.iter().filter(|&&b| b == b'\n').count();
        let col = match before.iter().rposition(|&b| b == b'\n') {
            Some(nl) => pos - nl - 1,
            None => pos,
        };
        format!("{}:{line}:{col}", self.name)
    }

    fn locate(&self, e: EErr, pos: usize, ctx: &dyn std::fmt::Display) -> EErr {
        match e {
            EErr::Raw(m) => EErr::Located(format!(
                "{}: executing {:?} at <{ctx}>: {m}",
                self.location(pos),
                self.name
            )),
            located => located,
        }
    }

    fn walk_list(&mut self, dot: &Val<'d>, nodes: &'t [Node]) -> EResult<Flow> {
        for n in nodes {
            match self.walk(dot, n)? {
                Flow::Normal => {}
                other => return Ok(other),
            }
        }
        Ok(Flow::Normal)
    }

    fn walk(&mut self, dot: &Val<'d>, node: &'t Node) -> EResult<Flow> {
        match node {
            Node::Text(t) => self.out.push_str(t),
            Node::Action(pipe) => {
                let v = self.eval_pipeline(dot, pipe)?;
                if pipe.decl.is_empty() {
                    self.print(&v);
                }
            }
            Node::If(c) | Node::With(c) | Node::Range(c) => {
                if self.depth >= MAX_EXEC_DEPTH {
                    return Err(self.locate(
                        EErr::Raw(format!(
                            "exceeded maximum template depth ({MAX_EXEC_DEPTH})"
                        )),
                        c.pipe.pos,
                        &c.pipe,
                    ));
                }
                self.depth += 1;
                let r = match node {
                    Node::If(_) => self.walk_if_with(dot, c, false),
                    Node::With(_) => self.walk_if_with(dot, c, true),
                    _ => self.walk_range(dot, c),
                };
                self.depth -= 1;
                return r;
            }
            Node::Break => return Ok(Flow::Break),
            Node::Continue => return Ok(Flow::Continue),
            Node::Template { pos, name, pipe } => {
                let Some(body) = self.tree.defines.get(name) else {
                    return Err(self.locate(
                        EErr::Raw(format!("no such template {name:?}")),
                        *pos,
                        &format!("template {}", gofmt::quote(name)),
                    ));
                };
                if self.depth >= MAX_EXEC_DEPTH {
                    return Err(self.locate(
                        EErr::Raw(format!(
                            "exceeded maximum template depth ({MAX_EXEC_DEPTH})"
                        )),
                        *pos,
                        &format!("template {}", gofmt::quote(name)),
                    ));
                }
                let new_dot = match pipe {
                    Some(p) => self.eval_pipeline(dot, p)?,
                    None => Val::owned(Value::Null),
                };
                let saved_vars =
                    std::mem::replace(&mut self.vars, vec![("$".to_string(), new_dot.clone())]);
                let saved_name = std::mem::replace(&mut self.name, name.clone());
                self.depth += 1;
                let r = self.walk_list(&new_dot, body);
                self.depth -= 1;
                self.name = saved_name;
                self.vars = saved_vars;
                r?;
            }
        }
        Ok(Flow::Normal)
    }

    fn print(&mut self, v: &Val<'d>) {
        match v {
            Val::Missing => self.out.push_str("<no value>"),
            Val::Header => {}
            // A JSON null is a nil interface{} in Go; text/template digs into an interface{}
            // after each command, leaving an invalid value, which prints as `<no value>` (the
            // docker CLI prints `{{.HostConfig.MemorySwappiness}}` so). Nested nulls, printed
            // by fmt, stay `<nil>`.
            _ if v.value().is_null() => self.out.push_str("<no value>"),
            _ => gofmt::fmt_v(v.value(), &mut self.out),
        }
    }

    fn walk_if_with(&mut self, dot: &Val<'d>, c: &'t Control, with: bool) -> EResult<Flow> {
        let mark = self.vars.len();
        let r = (|| {
            let v = self.eval_pipeline(dot, &c.pipe)?;
            if truth(&v) {
                let d = if with { v } else { dot.clone() };
                self.walk_list(&d, &c.body)
            } else if let Some(els) = &c.els {
                self.walk_list(dot, els)
            } else {
                Ok(Flow::Normal)
            }
        })();
        self.vars.truncate(mark);
        r
    }

    fn walk_range(&mut self, dot: &Val<'d>, c: &'t Control) -> EResult<Flow> {
        let mark = self.vars.len();
        let r = self.walk_range_inner(dot, c);
        self.vars.truncate(mark);
        r
    }

    fn walk_range_inner(&mut self, dot: &Val<'d>, c: &'t Control) -> EResult<Flow> {
        let v = self.eval_cmds(dot, &c.pipe)?;
        let items: Vec<(Val<'d>, Val<'d>)> = match &v {
            Val::Missing | Val::Header => Vec::new(),
            _ => match v.value() {
                Value::Null => Vec::new(),
                Value::Array(a) => (0..a.len())
                    .map(|i| {
                        (
                            Val::owned(Value::from(i)),
                            v.child(|x| x.get(i)).unwrap_or(Val::Missing),
                        )
                    })
                    .collect(),
                Value::Object(m) => gofmt::sorted_entries(m)
                    .into_iter()
                    .map(|(k, _)| {
                        (
                            Val::owned(Value::String(k.clone())),
                            v.child(|x| x.get(k)).unwrap_or(Val::Missing),
                        )
                    })
                    .collect(),
                Value::Number(n) if n.as_i64().is_some() => {
                    if c.pipe.decl.len() > 1 {
                        return Err(self.locate(
                            EErr::Raw(format!(
                                "can't use {n} to iterate over more than one variable"
                            )),
                            c.pipe.pos,
                            &c.pipe,
                        ));
                    }
                    let n = n.as_i64().unwrap_or(0).clamp(0, i64::MAX);
                    (0..n)
                        .map(|i| (Val::owned(Value::from(i)), Val::owned(Value::from(i))))
                        .collect()
                }
                other => {
                    return Err(self.locate(
                        EErr::Raw(format!("range can't iterate over {}", gofmt::to_v(other))),
                        c.pipe.pos,
                        &c.pipe,
                    ))
                }
            },
        };
        if items.is_empty() {
            if let Some(els) = &c.els {
                return self.walk_list(dot, els);
            }
            return Ok(Flow::Normal);
        }
        for (key, elem) in items {
            let inner = self.vars.len();
            match c.pipe.decl.as_slice() {
                [] => {}
                [e] => self.bind(e, elem.clone(), c.pipe.is_assign),
                [k, e, ..] => {
                    self.bind(k, key, c.pipe.is_assign);
                    self.bind(e, elem.clone(), c.pipe.is_assign);
                }
            }
            let flow = self.walk_list(&elem, &c.body);
            self.vars.truncate(inner);
            match flow? {
                Flow::Break => break,
                Flow::Normal | Flow::Continue => {}
            }
        }
        Ok(Flow::Normal)
    }

    fn bind(&mut self, name: &str, v: Val<'d>, assign: bool) {
        if assign {
            if let Some(slot) = self.vars.iter_mut().rev().find(|(n, _)| n == name) {
                slot.1 = v;
            }
        } else {
            self.vars.push((name.to_string(), v));
        }
    }

    /// Evaluates the commands of a pipeline, without its declarations.
    fn eval_cmds(&mut self, dot: &Val<'d>, pipe: &'t Pipe) -> EResult<Val<'d>> {
        let mut value: Option<Val<'d>> = None;
        for cmd in &pipe.cmds {
            let v = self
                .eval_cmd(dot, cmd, value.take())
                .map_err(|e| self.locate(e, cmd.pos, cmd))?;
            value = Some(v);
        }
        Ok(value.unwrap_or(Val::Missing))
    }

    fn eval_pipeline(&mut self, dot: &Val<'d>, pipe: &'t Pipe) -> EResult<Val<'d>> {
        let v = self.eval_cmds(dot, pipe)?;
        for name in &pipe.decl {
            self.bind(name, v.clone(), pipe.is_assign);
        }
        Ok(v)
    }

    fn eval_cmd(&mut self, dot: &Val<'d>, cmd: &'t Cmd, fin: Option<Val<'d>>) -> EResult<Val<'d>> {
        let first = &cmd.args[0];
        match first {
            Arg::Func(name) => return self.call(dot, name, &cmd.args[1..], fin),
            Arg::Nil => return Err(EErr::Raw("nil is not a command".into())),
            _ => {}
        }
        if cmd.args.len() > 1 || fin.is_some() {
            if let Some(v) = self.call_method(dot, first, &cmd.args[1..], fin.clone())? {
                return Ok(v);
            }
            return Err(EErr::Raw(match first {
                Arg::Field(names) | Arg::Var(_, names) | Arg::Chain(_, names)
                    if !names.is_empty() =>
                {
                    format!(
                        "{} is not a method but has arguments",
                        names[names.len() - 1]
                    )
                }
                _ => format!("can't give argument to non-function {first}"),
            }));
        }
        self.eval_arg(dot, first)
    }

    /// `{{.Recv.Name arg…}}` where the data has a method `Name` (see [`MethodFn`]).
    fn call_method(
        &mut self,
        dot: &Val<'d>,
        first: &'t Arg,
        args: &'t [Arg],
        fin: Option<Val<'d>>,
    ) -> EResult<Option<Val<'d>>> {
        let Arg::Field(names) = first else {
            return Ok(None);
        };
        let Some((name, path)) = names.split_last() else {
            return Ok(None);
        };
        if let Val::Header = dot {
            let h = self.header.map(|f| f(name)).unwrap_or_default();
            return Ok(Some(Val::owned(Value::String(h))));
        }
        let Some(methods) = self.methods else {
            return Ok(None);
        };
        let recv = self.fields(dot.clone(), path)?;
        let mut vals = Vec::with_capacity(args.len() + 1);
        for a in args {
            vals.push(self.eval_arg(dot, a)?.value().clone());
        }
        if let Some(f) = fin {
            vals.push(f.value().clone());
        }
        match methods(name, recv.value(), &vals) {
            None => Ok(None),
            Some(r) => r.map(|v| Some(Val::owned(v))).map_err(EErr::Raw),
        }
    }

    fn eval_arg(&mut self, dot: &Val<'d>, arg: &'t Arg) -> EResult<Val<'d>> {
        Ok(match arg {
            Arg::Dot => dot.clone(),
            Arg::Nil => Val::owned(Value::Null),
            Arg::Bool(b) => Val::owned(Value::Bool(*b)),
            Arg::Str(s) => Val::owned(Value::String(s.clone())),
            Arg::Num(n, _) => Val::owned(match n {
                Num::Int(i) => Value::from(*i),
                Num::Uint(u) => Value::from(*u),
                Num::Float(f) => Value::from(*f),
            }),
            Arg::Field(names) => self.fields(dot.clone(), names)?,
            Arg::Var(name, names) => {
                let v = self
                    .vars
                    .iter()
                    .rev()
                    .find(|(n, _)| n == name)
                    .map(|(_, v)| v.clone())
                    .ok_or_else(|| format!("undefined variable: {name}"))?;
                self.fields(v, names)?
            }
            Arg::Chain(inner, names) => {
                let v = match &**inner {
                    Arg::Func(name) => self.call(dot, name, &[], None)?,
                    other => self.eval_arg(dot, other)?,
                };
                self.fields(v, names)?
            }
            Arg::Func(name) => self.call(dot, name, &[], None)?,
            Arg::Pipe(p) => self.eval_pipeline(dot, p)?,
        })
    }

    fn fields(&mut self, mut v: Val<'d>, names: &[String]) -> EResult<Val<'d>> {
        for name in names {
            v = match &v {
                Val::Header => {
                    let h = self.header.map(|f| f(name)).unwrap_or_default();
                    return Ok(Val::owned(Value::String(h)));
                }
                Val::Missing => Val::Missing,
                _ => match v.value() {
                    Value::Object(_) => v.child(|x| x.get(name)).unwrap_or(Val::Missing),
                    Value::Null => {
                        return Err(EErr::Raw(format!(
                            "nil pointer evaluating interface {{}}.{name}"
                        )))
                    }
                    other => {
                        return Err(EErr::Raw(format!(
                            "can't evaluate field {name} in type {}",
                            gofmt::type_name(other)
                        )))
                    }
                },
            };
        }
        Ok(v)
    }

    fn call(
        &mut self,
        dot: &Val<'d>,
        name: &str,
        args: &'t [Arg],
        fin: Option<Val<'d>>,
    ) -> EResult<Val<'d>> {
        if name == "and" || name == "or" {
            if args.is_empty() && fin.is_none() {
                return Err(EErr::Raw(format!(
                    "wrong number of args for {name}: want at least 1 got 0"
                )));
            }
            let mut last = Val::Missing;
            for a in args {
                last = self.eval_arg(dot, a)?;
                if truth(&last) == (name == "or") {
                    return Ok(last);
                }
            }
            if let Some(f) = fin {
                last = f;
            }
            return Ok(last);
        }
        let mut vals = Vec::with_capacity(args.len() + 1);
        for a in args {
            vals.push(self.eval_arg(dot, a)?);
        }
        if let Some(f) = fin {
            vals.push(f);
        }
        funcs::call(name, vals, self.header.is_some()).map_err(EErr::Raw)
    }
}
