//! Template functions: Go's builtins and the docker CLI's additions.

use std::cmp::Ordering;

use serde_json::Value;

use crate::exec::{truth, Val};
use crate::gofmt;

const NAMES: &[&str] = &[
    // Go builtins
    "and", "or", "not", "len", "index", "slice", "eq", "ne", "lt", "le", "gt", "ge", "print",
    "printf", "println", "html", "js", "urlquery", // docker CLI
    "json", "split", "join", "title", "lower", "upper", "pad", "truncate",
];

pub(crate) fn exists(name: &str) -> bool {
    NAMES.contains(&name)
}

type FResult<'d> = Result<Val<'d>, String>;

fn arity(name: &str, args: &[Val], want: usize) -> Result<(), String> {
    if args.len() == want {
        Ok(())
    } else {
        Err(format!(
            "wrong number of args for {name}: want {want} got {}",
            args.len()
        ))
    }
}

fn arity_min(name: &str, args: &[Val], want: usize) -> Result<(), String> {
    if args.len() >= want {
        Ok(())
    } else {
        Err(format!(
            "wrong number of args for {name}: want at least {want} got {}",
            args.len()
        ))
    }
}

fn got_type(v: &Val) -> &'static str {
    match v {
        Val::Missing => "<no value>",
        Val::Header => "map[string]string",
        _ => match v.value() {
            Value::Null => "interface {}",
            other => gofmt::type_name(other),
        },
    }
}

fn want_str(v: &Val) -> Result<String, String> {
    match v {
        Val::Missing => Err("invalid value; expected string".into()),
        _ => match v.value() {
            Value::String(s) => Ok(s.clone()),
            _ => Err(format!(
                "wrong type for value; expected string; got {}",
                got_type(v)
            )),
        },
    }
}

fn want_int(v: &Val) -> Result<i64, String> {
    match v.value() {
        Value::Number(n) if n.as_i64().is_some() => Ok(n.as_i64().unwrap_or(0)),
        _ => Err(format!(
            "wrong type for value; expected int; got {}",
            got_type(v)
        )),
    }
}

fn s<'d>(s: String) -> Val<'d> {
    Val::owned(Value::String(s))
}

/// String form of a value for the header-rendering variants of the docker
/// functions, which return their first argument unchanged.
fn header_str(v: &Val) -> String {
    match v.value() {
        Value::String(s) => s.clone(),
        _ if matches!(v, Val::Missing | Val::Header) => String::new(),
        other => gofmt::to_v(other),
    }
}

/// Go's evalArgs for html/js/urlquery: a lone string as-is, else Sprint.
fn eval_args(args: &[Val]) -> String {
    if let [one] = args {
        if let Value::String(s) = one.value() {
            return s.clone();
        }
    }
    let vals: Vec<&Value> = args.iter().map(Val::value).collect();
    gofmt::sprint(&vals)
}

pub(crate) fn call<'d>(name: &str, args: Vec<Val<'d>>, header: bool) -> FResult<'d> {
    if header {
        let passthrough = match name {
            "json" | "title" | "lower" | "upper" => Some(1),
            "split" | "join" | "truncate" => Some(2),
            _ => None,
        };
        if let Some(n) = passthrough {
            arity(name, &args, n)?;
            return Ok(s(header_str(&args[0])));
        }
    }
    let r = match name {
        "not" => {
            arity(name, &args, 1)?;
            Val::owned(Value::Bool(!truth(&args[0])))
        }
        "len" => {
            arity(name, &args, 1)?;
            len(&args[0]).map_err(|e| format!("error calling len: {e}"))?
        }
        "index" => {
            arity_min(name, &args, 1)?;
            index(&args).map_err(|e| format!("error calling index: {e}"))?
        }
        "slice" => {
            arity_min(name, &args, 1)?;
            slice(&args).map_err(|e| format!("error calling slice: {e}"))?
        }
        "eq" => {
            arity_min(name, &args, 1)?;
            Val::owned(Value::Bool(
                eq(&args).map_err(|e| format!("error calling eq: {e}"))?,
            ))
        }
        "ne" => {
            arity(name, &args, 2)?;
            Val::owned(Value::Bool(
                !eq(&args).map_err(|e| format!("error calling ne: {e}"))?,
            ))
        }
        "lt" | "le" | "gt" | "ge" => {
            arity(name, &args, 2)?;
            let ord =
                order(&args[0], &args[1]).map_err(|e| format!("error calling {name}: {e}"))?;
            let b = match name {
                "lt" => ord == Ordering::Less,
                "le" => ord != Ordering::Greater,
                "gt" => ord == Ordering::Greater,
                _ => ord != Ordering::Less,
            };
            Val::owned(Value::Bool(b))
        }
        "print" | "println" => {
            let vals: Vec<&Value> = args.iter().map(Val::value).collect();
            s(if name == "print" {
                gofmt::sprint(&vals)
            } else {
                gofmt::sprintln(&vals)
            })
        }
        "printf" => {
            arity_min(name, &args, 1)?;
            let f = want_str(&args[0])?;
            let vals: Vec<&Value> = args[1..].iter().map(Val::value).collect();
            s(gofmt::sprintf(&f, &vals))
        }
        "html" => s(html_escape(&eval_args(&args))),
        "js" => s(js_escape(&eval_args(&args))),
        "urlquery" => s(query_escape(&eval_args(&args))),
        "json" => {
            arity(name, &args, 1)?;
            let mut out = String::new();
            gofmt::json(args[0].value(), &mut out);
            s(out)
        }
        "split" => {
            arity(name, &args, 2)?;
            let text = want_str(&args[0])?;
            let sep = want_str(&args[1])?;
            let parts: Vec<Value> = if sep.is_empty() {
                text.chars().map(|c| Value::String(c.to_string())).collect()
            } else {
                text.split(sep.as_str())
                    .map(|p| Value::String(p.to_string()))
                    .collect()
            };
            Val::owned(Value::Array(parts))
        }
        "join" => {
            arity(name, &args, 2)?;
            let sep = want_str(&args[1])?;
            match args[0].value() {
                Value::Null => s(String::new()),
                Value::Array(items) => s(items
                    .iter()
                    .map(|v| match v {
                        Value::String(x) => x.clone(),
                        other => gofmt::to_v(other),
                    })
                    .collect::<Vec<_>>()
                    .join(&sep)),
                _ => {
                    return Err(format!(
                        "wrong type for value; expected []string; got {}",
                        got_type(&args[0])
                    ))
                }
            }
        }
        "title" => {
            arity(name, &args, 1)?;
            s(title(&want_str(&args[0])?))
        }
        "lower" => {
            arity(name, &args, 1)?;
            s(want_str(&args[0])?.to_lowercase())
        }
        "upper" => {
            arity(name, &args, 1)?;
            s(want_str(&args[0])?.to_uppercase())
        }
        "pad" => {
            arity(name, &args, 3)?;
            let text = if header {
                header_str(&args[0])
            } else {
                want_str(&args[0])?
            };
            let left = want_int(&args[1])?;
            let right = want_int(&args[2])?;
            if !(0..=1_000_000).contains(&left) || !(0..=1_000_000).contains(&right) {
                return Err("error calling pad: negative or too large Repeat count".into());
            }
            if text.is_empty() {
                s(text)
            } else {
                s(format!(
                    "{}{text}{}",
                    " ".repeat(left as usize),
                    " ".repeat(right as usize)
                ))
            }
        }
        "truncate" => {
            arity(name, &args, 2)?;
            let text = want_str(&args[0])?;
            let n = want_int(&args[1])?;
            if n < 0 {
                return Err(format!(
                    "error calling truncate: slice bounds out of range [:{n}]"
                ));
            }
            let n = n as usize;
            if text.len() <= n {
                s(text)
            } else {
                let mut end = n;
                while !text.is_char_boundary(end) {
                    end -= 1;
                }
                s(text[..end].to_string())
            }
        }
        other => return Err(format!("function {other:?} not defined")),
    };
    Ok(r)
}

fn len<'d>(v: &Val<'d>) -> FResult<'d> {
    let n = match v {
        Val::Missing => return Err("len of nil pointer".into()),
        _ => match v.value() {
            Value::String(s) => s.len(),
            Value::Array(a) => a.len(),
            Value::Object(m) => m.len(),
            Value::Null => return Err("len of nil pointer".into()),
            other => return Err(format!("len of type {}", gofmt::type_name(other))),
        },
    };
    Ok(Val::owned(Value::from(n)))
}

fn index_arg(v: &Val, cap: usize, what: &str) -> Result<usize, String> {
    let Value::Number(n) = v.value() else {
        return Err(format!("cannot index {what} with type {}", got_type(v)));
    };
    let Some(i) = n.as_i64() else {
        return Err(format!("cannot index {what} with type float64"));
    };
    if i < 0 || i as usize > cap {
        return Err(format!("index out of range: {i}"));
    }
    Ok(i as usize)
}

fn index<'d>(args: &[Val<'d>]) -> FResult<'d> {
    let mut item = args[0].clone();
    for idx in &args[1..] {
        item = match &item {
            Val::Missing => return Err("index of untyped nil".into()),
            Val::Header => return Err("can't index item of type map[string]string".into()),
            _ => match item.value() {
                Value::Null => return Err("index of untyped nil".into()),
                Value::Array(a) => {
                    let len = a.len();
                    let i = index_arg(idx, len, "slice")?;
                    if i >= len {
                        return Err(format!("index out of range: {i}"));
                    }
                    item.child(|x| x.get(i)).unwrap_or(Val::Missing)
                }
                Value::String(st) => {
                    let len = st.len();
                    let i = index_arg(idx, len, "string")?;
                    if i >= len {
                        return Err(format!("index out of range: {i}"));
                    }
                    Val::owned(Value::from(st.as_bytes()[i]))
                }
                Value::Object(m) => {
                    let Value::String(k) = idx.value() else {
                        return Err(format!(
                            "value has type {}; should be string",
                            got_type(idx)
                        ));
                    };
                    match item.child(|x| x.get(k)) {
                        Some(v) => v,
                        // Go yields the map's zero element: "" for the
                        // map[string]string label/option maps docker uses,
                        // nil for maps of structs.
                        None if m.values().all(Value::is_string) => s(String::new()),
                        None => Val::owned(Value::Null),
                    }
                }
                other => {
                    return Err(format!(
                        "can't index item of type {}",
                        gofmt::type_name(other)
                    ))
                }
            },
        };
    }
    Ok(item)
}

fn slice<'d>(args: &[Val<'d>]) -> FResult<'d> {
    let item = &args[0];
    let idx = &args[1..];
    if idx.len() > 3 {
        return Err(format!("too many slice indexes: {}", idx.len()));
    }
    match item.value() {
        Value::String(st) => {
            if idx.len() == 3 {
                return Err("cannot 3-index slice a string".into());
            }
            let len = st.len();
            let i = idx
                .first()
                .map(|v| index_arg(v, len, "string"))
                .transpose()?
                .unwrap_or(0);
            let j = idx
                .get(1)
                .map(|v| index_arg(v, len, "string"))
                .transpose()?
                .unwrap_or(len);
            if i > j {
                return Err(format!("invalid slice index: {i} > {j}"));
            }
            let bytes = &st.as_bytes()[i..j];
            Ok(s(String::from_utf8_lossy(bytes).into_owned()))
        }
        Value::Array(a) => {
            let len = a.len();
            let i = idx
                .first()
                .map(|v| index_arg(v, len, "slice"))
                .transpose()?
                .unwrap_or(0);
            let j = idx
                .get(1)
                .map(|v| index_arg(v, len, "slice"))
                .transpose()?
                .unwrap_or(len);
            if let Some(k) = idx.get(2) {
                let k = index_arg(k, len, "slice")?;
                if j > k {
                    return Err(format!("invalid slice index: {j} > {k}"));
                }
            }
            if i > j {
                return Err(format!("invalid slice index: {i} > {j}"));
            }
            Ok(Val::owned(Value::Array(a[i..j].to_vec())))
        }
        Value::Null => Err("slice of untyped nil".into()),
        _ => Err(format!("can't slice item of type {}", got_type(item))),
    }
}

#[derive(PartialEq)]
enum Kind {
    Invalid,
    Bool,
    Num,
    Str,
    Complex,
}

fn kind(v: &Val) -> Kind {
    match v {
        Val::Missing => Kind::Invalid,
        Val::Header => Kind::Complex,
        _ => match v.value() {
            Value::Null => Kind::Invalid,
            Value::Bool(_) => Kind::Bool,
            Value::Number(_) => Kind::Num,
            Value::String(_) => Kind::Str,
            _ => Kind::Complex,
        },
    }
}

fn num_cmp(a: &Value, b: &Value) -> Ordering {
    let int = |v: &Value| match v {
        Value::Number(n) => n
            .as_i64()
            .map(i128::from)
            .or_else(|| n.as_u64().map(i128::from)),
        _ => None,
    };
    match (int(a), int(b)) {
        (Some(x), Some(y)) => x.cmp(&y),
        _ => {
            let x = a.as_f64().unwrap_or(0.0);
            let y = b.as_f64().unwrap_or(0.0);
            x.partial_cmp(&y).unwrap_or(Ordering::Less)
        }
    }
}

fn eq(args: &[Val]) -> Result<bool, String> {
    let a = &args[0];
    if args.len() < 2 {
        return Err("missing argument for comparison".into());
    }
    let ka = kind(a);
    for b in &args[1..] {
        let kb = kind(b);
        let truth = if ka != kb {
            if ka == Kind::Invalid || kb == Kind::Invalid {
                false
            } else {
                return Err("incompatible types for comparison".into());
            }
        } else {
            match ka {
                Kind::Invalid => true,
                Kind::Bool | Kind::Str => a.value() == b.value(),
                Kind::Num => num_cmp(a.value(), b.value()) == Ordering::Equal,
                Kind::Complex => {
                    return Err(format!("non-comparable type {}", got_type(a)));
                }
            }
        };
        if truth {
            return Ok(true);
        }
    }
    Ok(false)
}

fn order(a: &Val, b: &Val) -> Result<Ordering, String> {
    let (ka, kb) = (kind(a), kind(b));
    if !matches!(ka, Kind::Num | Kind::Str) || !matches!(kb, Kind::Num | Kind::Str) {
        return Err("invalid type for comparison".into());
    }
    if ka != kb {
        return Err("incompatible types for comparison".into());
    }
    Ok(match (a.value(), b.value()) {
        (Value::String(x), Value::String(y)) => x.cmp(y),
        (x, y) => num_cmp(x, y),
    })
}

/// `strings.Title`: upper-cases the first letter of each word.
fn title(text: &str) -> String {
    fn is_sep(c: char) -> bool {
        if c.is_ascii() {
            return !(c.is_ascii_alphanumeric() || c == '_');
        }
        if c.is_alphanumeric() {
            return false;
        }
        c.is_whitespace()
    }
    let mut out = String::with_capacity(text.len());
    let mut prev = ' ';
    for c in text.chars() {
        if is_sep(prev) {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        prev = c;
    }
    out
}

fn html_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\0' => out.push('\u{fffd}'),
            '"' => out.push_str("&#34;"),
            '\'' => out.push_str("&#39;"),
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

fn js_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '"' => out.push_str("\\\""),
            '<' => out.push_str("\\u003C"),
            '>' => out.push_str("\\u003E"),
            '&' => out.push_str("\\u0026"),
            '=' => out.push_str("\\u003D"),
            c if (c as u32) < 0x20 || c.is_control() => {
                out.push_str(&format!("\\u{:04X}", c as u32))
            }
            c => out.push(c),
        }
    }
    out
}

fn query_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            b => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn title_like_go() {
        assert_eq!(title("hello world-foo_bar"), "Hello World-Foo_bar");
        assert_eq!(title("élan vital"), "Élan Vital");
    }

    #[test]
    fn escapers() {
        assert_eq!(
            html_escape("<a href=\"x\">&'"),
            "&lt;a href=&#34;x&#34;&gt;&amp;&#39;"
        );
        assert_eq!(query_escape("a b&c/d"), "a+b%26c%2Fd");
        assert_eq!(js_escape("a'<b>"), "a\\'\\u003Cb\\u003E");
    }
}
