//! `--flag[=value]` parsing for the typed layer (BuildKit's BFlags rules):
//! unknown flags are errors, non-repeatable flags may appear once, boolean
//! flags take an optional `=true|false`, string flags need a value.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::directives::parse_bool;
use crate::error::{nearest, ErrorKind};

/// The type of a flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `--link` / `--link=false`.
    Bool,
    /// `--from=x`, at most once.
    String,
    /// `--mount=...`, repeatable.
    Strings,
}

/// The flags given to one instruction, checked against what it accepts.
#[derive(Debug, Clone, Default)]
pub struct Flags {
    values: BTreeMap<String, Vec<String>>,
}

impl Flags {
    /// Parses `flags` (each `--name[=value]`) against `spec`.
    pub fn parse(
        instruction: &str,
        flags: &[String],
        spec: &[(&str, Kind)],
    ) -> Result<Flags, ErrorKind> {
        let mut values: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for raw in flags {
            let body = raw.strip_prefix("--").unwrap_or(raw);
            let (name, value) = match body.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (body, None),
            };
            let Some((_, kind)) = spec.iter().find(|(n, _)| *n == name) else {
                let names: Vec<&str> = spec.iter().map(|(n, _)| *n).collect();
                return Err(ErrorKind::UnknownFlag {
                    instruction: instruction.to_string(),
                    flag: name.to_string(),
                    suggestion: nearest(name, &names).map(|s| format!("--{s}")),
                });
            };
            let entry = values.entry(name.to_string()).or_default();
            if *kind != Kind::Strings && !entry.is_empty() {
                return Err(ErrorKind::Invalid(format!(
                    "duplicate flag specified: --{name} — give it once"
                )));
            }
            let value = match (kind, value) {
                (Kind::Bool, None) => "true".to_string(),
                (Kind::Bool, Some(v)) => match parse_bool(v) {
                    Some(b) => b.to_string(),
                    None => {
                        return Err(ErrorKind::Invalid(format!(
                            "expecting boolean value for flag --{name}, not: {v} — use --{name}=true or --{name}=false"
                        )))
                    }
                },
                (_, None) => {
                    return Err(ErrorKind::Invalid(format!(
                        "missing a value on flag: --{name} — write --{name}=<value>"
                    )))
                }
                (_, Some(v)) => v.to_string(),
            };
            entry.push(value);
        }
        Ok(Flags { values })
    }

    /// The value of a string flag, if given.
    pub fn string(&mut self, name: &str) -> Option<String> {
        self.values.get(name).and_then(|v| v.last().cloned())
    }

    /// Every value of a repeatable flag.
    pub fn strings(&mut self, name: &str) -> Vec<String> {
        self.values.get(name).cloned().unwrap_or_default()
    }

    /// A boolean flag: false when absent.
    pub fn bool(&mut self, name: &str) -> bool {
        self.opt_bool(name).unwrap_or(false)
    }

    /// A boolean flag, `None` when absent.
    pub fn opt_bool(&mut self, name: &str) -> Option<bool> {
        self.string(name).map(|v| v == "true")
    }
}

/// Parses a Go duration (`300ms`, `1.5h`, `1m30s`, `0`).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    if s.is_empty() {
        return Err("empty duration".into());
    }
    if s.starts_with('-') {
        return Err("negative duration".into());
    }
    let s = s.strip_prefix('+').unwrap_or(s);
    let mut total = 0f64;
    let mut rest = s;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if num_len == 0 {
            return Err(format!("invalid duration {s:?}"));
        }
        let n: f64 = rest[..num_len]
            .parse()
            .map_err(|_| format!("invalid duration {s:?}"))?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let factor = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "" => return Err(format!("missing unit in duration {s:?}")),
            u => return Err(format!("unknown unit {u:?} in duration {s:?}")),
        };
        total += n * factor;
        rest = &rest[unit_len..];
    }
    Ok(Duration::from_secs_f64(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("1m30s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("300ms").unwrap(), Duration::from_millis(300));
        assert_eq!(parse_duration("0").unwrap(), Duration::ZERO);
        assert!(parse_duration("5").is_err());
        assert!(parse_duration("5x").is_err());
    }

    #[test]
    fn flag_rules() {
        let spec = [
            ("link", Kind::Bool),
            ("from", Kind::String),
            ("exclude", Kind::Strings),
        ];
        let f = |v: &[&str]| {
            let v: Vec<String> = v.iter().map(|s| s.to_string()).collect();
            Flags::parse("COPY", &v, &spec)
        };
        let mut ok = f(&["--link", "--from=a", "--exclude=x", "--exclude=y"]).unwrap();
        assert!(ok.bool("link"));
        assert_eq!(ok.string("from").as_deref(), Some("a"));
        assert_eq!(ok.strings("exclude"), vec!["x", "y"]);
        assert_eq!(
            f(&["--form=a"]).unwrap_err().to_string(),
            "unknown flag --form for COPY (did you mean --from?)"
        );
        assert!(f(&["--from=a", "--from=b"]).is_err());
        assert!(f(&["--from"]).is_err());
        assert!(f(&["--link=maybe"]).is_err());
    }
}
