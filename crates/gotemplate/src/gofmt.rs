//! Go's `fmt` and `encoding/json` output for JSON values, treating them as
//! the Go types they decode to (`string`, `int`, `float64`, `bool`, nil,
//! `[]interface {}`, `map[string]interface {}`).

use serde_json::{Number, Value};

/// The Go type name a value stands for, as `fmt` prints it in `%!verb(...)`.
pub(crate) fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "<nil>",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float64",
        Value::Number(_) => "int",
        Value::String(_) => "string",
        Value::Array(_) => "[]interface {}",
        Value::Object(_) => "map[string]interface {}",
    }
}

/// Object entries sorted by key, as Go prints and ranges over maps.
pub(crate) fn sorted_entries(m: &serde_json::Map<String, Value>) -> Vec<(&String, &Value)> {
    let mut e: Vec<_> = m.iter().collect();
    e.sort_by(|a, b| a.0.cmp(b.0));
    e
}

/// Shortest decimal digits and decimal exponent of a finite, non-zero,
/// non-negative float: value = 0.d1d2d3... × 10^(exp+1), i.e. d1.d2d3… × 10^exp.
fn shortest_digits(f: f64) -> (String, i32) {
    let s = format!("{:e}", f);
    split_sci(&s)
}

fn split_sci(s: &str) -> (String, i32) {
    let (mant, exp) = s.split_once('e').unwrap_or((s, "0"));
    let digits: String = mant.chars().filter(|c| c.is_ascii_digit()).collect();
    (digits, exp.parse().unwrap_or(0))
}

fn exp_suffix(out: &mut String, e: char, exp: i32) {
    out.push(e);
    out.push(if exp < 0 { '-' } else { '+' });
    let a = exp.unsigned_abs();
    if a < 10 {
        out.push('0');
    }
    out.push_str(&a.to_string());
}

/// `d.ddd` + exponent form from digits.
fn e_form(neg: bool, digits: &str, exp: i32, e: char) -> String {
    let mut out = String::new();
    if neg {
        out.push('-');
    }
    out.push_str(&digits[..1]);
    if digits.len() > 1 {
        out.push('.');
        out.push_str(&digits[1..]);
    }
    exp_suffix(&mut out, e, exp);
    out
}

/// Plain decimal form from digits, with at least `min_frac` fraction digits.
fn f_form(neg: bool, digits: &str, exp: i32, min_frac: usize) -> String {
    let mut out = String::new();
    if neg {
        out.push('-');
    }
    let point = exp + 1; // digits before the decimal point
    let (int_part, frac_part) = if point <= 0 {
        (
            "0".to_string(),
            format!("{}{}", "0".repeat((-point) as usize), digits),
        )
    } else if point as usize >= digits.len() {
        (
            format!("{}{}", digits, "0".repeat(point as usize - digits.len())),
            String::new(),
        )
    } else {
        (
            digits[..point as usize].to_string(),
            digits[point as usize..].to_string(),
        )
    };
    out.push_str(&int_part);
    let mut frac = frac_part;
    while frac.len() < min_frac {
        frac.push('0');
    }
    if !frac.is_empty() {
        out.push('.');
        out.push_str(&frac);
    }
    out
}

fn special(f: f64) -> Option<String> {
    if f.is_nan() {
        Some("NaN".into())
    } else if f.is_infinite() {
        Some(if f < 0.0 { "-Inf" } else { "+Inf" }.into())
    } else {
        None
    }
}

/// Go's `%v` / `%g` for float64 (shortest representation).
pub(crate) fn float_g(f: f64) -> String {
    if let Some(s) = special(f) {
        return s;
    }
    let neg = f.is_sign_negative();
    if f == 0.0 {
        return if neg { "-0".into() } else { "0".into() };
    }
    let (digits, exp) = shortest_digits(f.abs());
    if !(-4..6).contains(&exp) {
        e_form(neg, &digits, exp, 'e')
    } else {
        f_form(neg, &digits, exp, 0)
    }
}

/// Go's `%.Ng`.
fn float_g_prec(f: f64, prec: usize, e: char) -> String {
    if let Some(s) = special(f) {
        return s;
    }
    let neg = f.is_sign_negative();
    let prec = prec.max(1);
    if f == 0.0 {
        return if neg { "-0".into() } else { "0".into() };
    }
    let s = format!("{:.*e}", prec - 1, f.abs());
    let (mut digits, exp) = split_sci(&s);
    while digits.len() > 1 && digits.ends_with('0') {
        digits.pop();
    }
    let nd = digits.len() as i32;
    let mut eprec = prec as i32;
    if eprec > nd && nd > exp {
        eprec = nd;
    }
    if exp < -4 || exp >= eprec {
        e_form(neg, &digits, exp, e)
    } else {
        f_form(neg, &digits, exp, 0)
    }
}

fn float_e(f: f64, prec: usize, e: char) -> String {
    if let Some(s) = special(f) {
        return s;
    }
    let s = format!("{:.*e}", prec, f);
    let (mant, exp) = s.split_once('e').unwrap_or((&s, "0"));
    let mut out = mant.to_string();
    exp_suffix(&mut out, e, exp.parse().unwrap_or(0));
    out
}

fn float_f(f: f64, prec: usize) -> String {
    if let Some(s) = special(f) {
        return s;
    }
    format!("{:.*}", prec, f)
}

/// Go's `encoding/json` float64 encoding.
pub(crate) fn json_float(f: f64) -> String {
    if !f.is_finite() {
        return "null".into();
    }
    if f == 0.0 {
        return if f.is_sign_negative() {
            "-0".into()
        } else {
            "0".into()
        };
    }
    let neg = f < 0.0;
    let a = f.abs();
    let (digits, exp) = shortest_digits(a);
    if !(1e-6..1e21).contains(&a) {
        let mut s = String::new();
        if neg {
            s.push('-');
        }
        s.push_str(&digits[..1]);
        if digits.len() > 1 {
            s.push('.');
            s.push_str(&digits[1..]);
        }
        s.push('e');
        s.push(if exp < 0 { '-' } else { '+' });
        s.push_str(&exp.unsigned_abs().to_string());
        s
    } else {
        f_form(neg, &digits, exp, 0)
    }
}

fn number_v(n: &Number) -> String {
    if let Some(i) = n.as_i64() {
        i.to_string()
    } else if let Some(u) = n.as_u64() {
        u.to_string()
    } else {
        float_g(n.as_f64().unwrap_or(0.0))
    }
}

/// A Go struct the data stands for: an object with all of `fields` but `optional` (and no
/// other key) prints as Go prints that struct, `{v1 v2 …}` in field order (a missing optional
/// field as its zero value ""), not as a map.
#[derive(Debug, Clone, Copy)]
pub struct StructShape {
    pub fields: &'static [&'static str],
    pub optional: &'static [&'static str],
}

thread_local! {
    /// The shapes of the template executing on this thread.
    pub(crate) static STRUCTS: std::cell::Cell<&'static [StructShape]> =
        const { std::cell::Cell::new(&[]) };
}

fn struct_shape(m: &serde_json::Map<String, Value>) -> Option<StructShape> {
    STRUCTS.with(|s| s.get()).iter().copied().find(|sh| {
        m.keys().all(|k| sh.fields.contains(&k.as_str()))
            && sh
                .fields
                .iter()
                .all(|f| sh.optional.contains(f) || m.contains_key(*f))
    })
}

/// Go's `%v`.
pub(crate) fn fmt_v(v: &Value, out: &mut String) {
    match v {
        Value::Null => out.push_str("<nil>"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&number_v(n)),
        Value::String(s) => out.push_str(s),
        Value::Array(a) => {
            out.push('[');
            for (i, e) in a.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                fmt_v(e, out);
            }
            out.push(']');
        }
        Value::Object(m) if struct_shape(m).is_some() => {
            let shape = struct_shape(m).unwrap_or(StructShape {
                fields: &[],
                optional: &[],
            });
            out.push('{');
            for (i, f) in shape.fields.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                if let Some(e) = m.get(*f) {
                    fmt_v(e, out);
                }
            }
            out.push('}');
        }
        Value::Object(m) => {
            out.push_str("map[");
            for (i, (k, e)) in sorted_entries(m).into_iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                out.push_str(k);
                out.push(':');
                fmt_v(e, out);
            }
            out.push(']');
        }
    }
}

pub(crate) fn to_v(v: &Value) -> String {
    let mut s = String::new();
    fmt_v(v, &mut s);
    s
}

/// `fmt.Sprint`: spaces between operands when neither is a string.
pub(crate) fn sprint(args: &[&Value]) -> String {
    let mut out = String::new();
    for (i, a) in args.iter().enumerate() {
        if i > 0 && !args[i - 1].is_string() && !a.is_string() {
            out.push(' ');
        }
        fmt_v(a, &mut out);
    }
    out
}

/// `fmt.Sprintln`: always spaces, newline at the end.
pub(crate) fn sprintln(args: &[&Value]) -> String {
    let mut out = String::new();
    for (i, a) in args.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        fmt_v(a, &mut out);
    }
    out.push('\n');
    out
}

fn is_print(c: char) -> bool {
    !c.is_control() && !matches!(c, '\u{2028}' | '\u{2029}' | '\u{feff}' | '\u{ad}')
}

fn quote_with(s: &str, q: char) -> String {
    let mut out = String::new();
    out.push(q);
    for c in s.chars() {
        match c {
            '\x07' => out.push_str("\\a"),
            '\x08' => out.push_str("\\b"),
            '\x0c' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\x0b' => out.push_str("\\v"),
            '\\' => out.push_str("\\\\"),
            c if c == q => {
                out.push('\\');
                out.push(c);
            }
            c if is_print(c) => out.push(c),
            c if (c as u32) < 0x80 => out.push_str(&format!("\\x{:02x}", c as u32)),
            c if (c as u32) < 0x10000 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push_str(&format!("\\U{:08x}", c as u32)),
        }
    }
    out.push(q);
    out
}

/// `strconv.Quote`.
pub(crate) fn quote(s: &str) -> String {
    quote_with(s, '"')
}

/// Go's `encoding/json` output (compact), as the docker CLI's `json`
/// function produces it: no HTML escaping (the CLI turns it off), U+2028
/// and U+2029 escaped, object members in the value's own order.
pub(crate) fn json(v: &Value, out: &mut String) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => {
            if n.is_f64() {
                out.push_str(&json_float(n.as_f64().unwrap_or(0.0)));
            } else {
                out.push_str(&n.to_string());
            }
        }
        Value::String(s) => json_str(s, out),
        Value::Array(a) => {
            out.push('[');
            for (i, e) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                json(e, out);
            }
            out.push(']');
        }
        Value::Object(m) => {
            out.push('{');
            for (i, (k, e)) in m.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                json_str(k, out);
                out.push(':');
                json(e, out);
            }
            out.push('}');
        }
    }
}

fn json_str(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\x08' => out.push_str("\\b"),
            '\x0c' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out.push('"');
}

// ---------------------------------------------------------------- printf

#[derive(Default, Clone, Copy)]
struct Spec {
    minus: bool,
    plus: bool,
    sharp: bool,
    space: bool,
    zero: bool,
    width: Option<usize>,
    prec: Option<usize>,
}

fn pad(s: String, spec: &Spec, numeric: bool) -> String {
    let Some(w) = spec.width else { return s };
    let n = s.chars().count();
    if n >= w {
        return s;
    }
    let fill = w - n;
    if spec.minus {
        format!("{s}{}", " ".repeat(fill))
    } else if spec.zero && numeric {
        // zeros go after the sign
        let (sign, digits) = match s.chars().next() {
            Some(c @ ('-' | '+' | ' ')) => (c.to_string(), s[1..].to_string()),
            _ => (String::new(), s.clone()),
        };
        format!("{sign}{}{digits}", "0".repeat(fill))
    } else {
        format!("{}{s}", " ".repeat(fill))
    }
}

fn sign_prefix(neg: bool, spec: &Spec) -> &'static str {
    if neg {
        "-"
    } else if spec.plus {
        "+"
    } else if spec.space {
        " "
    } else {
        ""
    }
}

fn bad_verb(verb: char, v: &Value) -> String {
    match v {
        Value::Null => format!("%!{verb}(<nil>)"),
        _ => format!("%!{verb}({}={})", type_name(v), to_v(v)),
    }
}

fn fmt_int(verb: char, i: i128, spec: &Spec) -> Option<String> {
    let neg = i < 0;
    let a = i.unsigned_abs();
    let mut digits = match verb {
        'd' | 'v' => a.to_string(),
        'x' => format!("{a:x}"),
        'X' => format!("{a:X}"),
        'o' | 'O' => format!("{a:o}"),
        'b' => format!("{a:b}"),
        'c' => {
            return Some(pad(
                char::from_u32(i as u32).unwrap_or('\u{fffd}').to_string(),
                spec,
                false,
            ))
        }
        'q' => {
            let c = char::from_u32(i as u32).unwrap_or('\u{fffd}');
            return Some(pad(quote_with(&c.to_string(), '\''), spec, false));
        }
        'U' => return Some(pad(format!("U+{a:04X}"), spec, false)),
        _ => return None,
    };
    if let Some(p) = spec.prec {
        while digits.len() < p {
            digits.insert(0, '0');
        }
    }
    let prefix = match verb {
        'x' if spec.sharp => "0x",
        'X' if spec.sharp => "0X",
        'o' if spec.sharp => "0",
        'O' => "0o",
        _ => "",
    };
    let s = format!("{}{prefix}{digits}", sign_prefix(neg, spec));
    Some(pad(s, spec, spec.prec.is_none()))
}

fn fmt_float(verb: char, f: f64, spec: &Spec) -> Option<String> {
    let body = match verb {
        'v' | 'g' => match spec.prec {
            Some(p) => float_g_prec(f, p, 'e'),
            None => float_g(f),
        },
        'G' => match spec.prec {
            Some(p) => float_g_prec(f, p, 'E'),
            None => float_g(f).to_uppercase(),
        },
        'e' => float_e(f, spec.prec.unwrap_or(6), 'e'),
        'E' => float_e(f, spec.prec.unwrap_or(6), 'E'),
        'f' | 'F' => float_f(f, spec.prec.unwrap_or(6)),
        _ => return None,
    };
    let s = if !body.starts_with('-') && (spec.plus || spec.space) {
        format!("{}{body}", if spec.plus { "+" } else { " " })
    } else {
        body
    };
    Some(pad(s, spec, f.is_finite()))
}

fn fmt_one(verb: char, v: &Value, spec: &Spec) -> String {
    match v {
        Value::Array(a) => {
            let mut out = String::from("[");
            for (i, e) in a.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                out.push_str(&fmt_one(verb, e, spec));
            }
            out.push(']');
            out
        }
        Value::Object(m) => {
            let mut out = String::from("map[");
            for (i, (k, e)) in sorted_entries(m).into_iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                out.push_str(&fmt_one(verb, &Value::String(k.clone()), spec));
                out.push(':');
                out.push_str(&fmt_one(verb, e, spec));
            }
            out.push(']');
            out
        }
        Value::Null => match verb {
            'v' => pad("<nil>".into(), spec, false),
            _ => bad_verb(verb, v),
        },
        Value::Bool(b) => match verb {
            'v' | 't' => pad(b.to_string(), spec, false),
            _ => bad_verb(verb, v),
        },
        Value::String(s) => match verb {
            'v' | 's' => {
                let s = match spec.prec {
                    Some(p) => s.chars().take(p).collect(),
                    None => s.clone(),
                };
                if verb == 'v' && spec.sharp {
                    pad(quote(&s), spec, false)
                } else {
                    pad(s, spec, false)
                }
            }
            'q' => {
                let s: String = match spec.prec {
                    Some(p) => s.chars().take(p).collect(),
                    None => s.clone(),
                };
                if spec.sharp && !s.contains('`') {
                    pad(format!("`{s}`"), spec, false)
                } else {
                    pad(quote(&s), spec, false)
                }
            }
            'x' | 'X' => {
                let mut out = String::new();
                for b in s.bytes() {
                    if verb == 'x' {
                        out.push_str(&format!("{b:02x}"));
                    } else {
                        out.push_str(&format!("{b:02X}"));
                    }
                }
                pad(out, spec, false)
            }
            _ => bad_verb(verb, v),
        },
        Value::Number(n) => {
            let int = n
                .as_i64()
                .map(i128::from)
                .or_else(|| n.as_u64().map(i128::from));
            match int {
                Some(i) => fmt_int(verb, i, spec)
                    .or_else(|| fmt_float(verb, i as f64, spec))
                    .unwrap_or_else(|| bad_verb(verb, v)),
                None => {
                    let f = n.as_f64().unwrap_or(0.0);
                    let as_int = (matches!(verb, 'd') && f.fract() == 0.0 && f.abs() < 9.0e15)
                        .then(|| fmt_int(verb, f as i128, spec))
                        .flatten();
                    as_int
                        .or_else(|| fmt_float(verb, f, spec))
                        .unwrap_or_else(|| bad_verb(verb, v))
                }
            }
        }
    }
}

/// Go's `fmt.Sprintf` for the verbs templates use.
pub(crate) fn sprintf(format: &str, args: &[&Value]) -> String {
    let mut out = String::new();
    let mut argi = 0;
    let mut chars = format.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut spec = Spec::default();
        while let Some(&f) = chars.peek() {
            match f {
                '-' => spec.minus = true,
                '+' => spec.plus = true,
                '#' => spec.sharp = true,
                ' ' => spec.space = true,
                '0' => spec.zero = !spec.minus,
                _ => break,
            }
            chars.next();
        }
        let num = |chars: &mut std::iter::Peekable<std::str::Chars>,
                   argi: &mut usize,
                   out: &mut String|
         -> Option<usize> {
            if chars.peek() == Some(&'*') {
                chars.next();
                let a = args.get(*argi).copied();
                *argi += 1;
                match a.and_then(Value::as_i64) {
                    Some(n) if (0..=1_000_000).contains(&n) => Some(n as usize),
                    _ => {
                        out.push_str("%!(BADWIDTH)");
                        None
                    }
                }
            } else {
                let mut n: Option<usize> = None;
                while let Some(d) = chars.peek().and_then(|c| c.to_digit(10)) {
                    n = Some((n.unwrap_or(0) * 10 + d as usize).min(1_000_000));
                    chars.next();
                }
                n
            }
        };
        spec.width = num(&mut chars, &mut argi, &mut out);
        if chars.peek() == Some(&'.') {
            chars.next();
            spec.prec = Some(num(&mut chars, &mut argi, &mut out).unwrap_or(0));
        }
        let Some(verb) = chars.next() else {
            out.push_str("%!(NOVERB)");
            break;
        };
        if verb == '%' {
            out.push('%');
            continue;
        }
        let Some(arg) = args.get(argi) else {
            out.push_str(&format!("%!{verb}(MISSING)"));
            continue;
        };
        argi += 1;
        out.push_str(&fmt_one(verb, arg, &spec));
    }
    if argi < args.len() {
        out.push_str("%!(EXTRA ");
        for (i, a) in args[argi..].iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            match a {
                Value::Null => out.push_str("<nil>"),
                _ => {
                    out.push_str(type_name(a));
                    out.push('=');
                    fmt_v(a, &mut out);
                }
            }
        }
        out.push(')');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn floats_like_go() {
        assert_eq!(float_g(1.5), "1.5");
        assert_eq!(float_g(1e6), "1e+06");
        assert_eq!(float_g(100000.0), "100000");
        assert_eq!(float_g(1234567.0), "1.234567e+06");
        assert_eq!(float_g(0.0001), "0.0001");
        assert_eq!(float_g(0.00001), "1e-05");
        assert_eq!(float_g(1.0), "1");
        assert_eq!(float_g(-2.25), "-2.25");
        assert_eq!(float_g(1e21), "1e+21");
        assert_eq!(float_g(123.456), "123.456");
    }

    #[test]
    fn json_floats_like_go() {
        assert_eq!(json_float(1.0), "1");
        assert_eq!(json_float(1.5), "1.5");
        assert_eq!(json_float(1e20), "100000000000000000000");
        assert_eq!(json_float(1e21), "1e+21");
        assert_eq!(json_float(1e-7), "1e-7");
        assert_eq!(json_float(0.000001), "0.000001");
    }

    #[test]
    fn printf_verbs() {
        let s = |f: &str, a: &[Value]| sprintf(f, &a.iter().collect::<Vec<_>>());
        assert_eq!(s("%-6s|", &[json!("ab")]), "ab    |");
        assert_eq!(s("%6s|", &[json!("ab")]), "    ab|");
        assert_eq!(s("%d", &[json!(42)]), "42");
        assert_eq!(s("%05d", &[json!(-42)]), "-0042");
        assert_eq!(s("%+d", &[json!(5)]), "+5");
        assert_eq!(s("%x %X", &[json!(255), json!(255)]), "ff FF");
        assert_eq!(s("%x", &[json!("hi")]), "6869");
        assert_eq!(s("%q", &[json!("a\"b")]), "\"a\\\"b\"");
        assert_eq!(s("%t", &[json!(true)]), "true");
        assert_eq!(s("%.2f", &[json!(1.23456)]), "1.23");
        assert_eq!(s("%f", &[json!(2)]), "2.000000");
        assert_eq!(s("%e", &[json!(1234.5)]), "1.234500e+03");
        assert_eq!(s("%.3g", &[json!(1234.5)]), "1.23e+03");
        assert_eq!(s("%g", &[json!(0.5)]), "0.5");
        assert_eq!(s("%v", &[json!([1, "a", null])]), "[1 a <nil>]");
        assert_eq!(s("%s", &[json!(["a", "b"])]), "[a b]");
        assert_eq!(s("%v", &[json!({"b": 1, "a": 2})]), "map[a:2 b:1]");
        assert_eq!(s("%d", &[json!("x")]), "%!d(string=x)");
        assert_eq!(s("%s", &[json!(5)]), "%!s(int=5)");
        assert_eq!(s("%s", &[json!(null)]), "%!s(<nil>)");
        assert_eq!(s("%d %d", &[json!(1)]), "1 %!d(MISSING)");
        assert_eq!(s("%d", &[json!(1), json!("x")]), "1%!(EXTRA string=x)");
        assert_eq!(s("100%%", &[]), "100%");
        assert_eq!(s("%c", &[json!(65)]), "A");
        assert_eq!(s("%.2s", &[json!("hello")]), "he");
        assert_eq!(s("%*d", &[json!(4), json!(7)]), "   7");
    }

    #[test]
    fn sprint_spacing() {
        let a = json!(1);
        let b = json!(2);
        let s = json!("s");
        assert_eq!(sprint(&[&a, &b]), "1 2");
        assert_eq!(sprint(&[&a, &s, &b]), "1s2");
        assert_eq!(sprintln(&[&a, &s]), "1 s\n");
    }
}
