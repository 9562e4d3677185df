//! `--filter` for `images` and `image prune`, with Docker's keys and matching rules.

use crate::types::ImageSummary;
use crate::{Engine, EngineError};
use berth_oci::reference::Reference;
use glob::{MatchOptions, Pattern};

#[derive(Debug, Clone, Default)]
pub struct ImageFilters {
    pub dangling: Option<bool>,
    pub references: Vec<String>,
    pub labels: Vec<(String, Option<String>)>,
    pub before: Option<String>,
    pub since: Option<String>,
    /// Unix seconds: only images created before this.
    pub until: Option<i64>,
}

const PATH_MATCH: MatchOptions = MatchOptions {
    case_sensitive: true,
    require_literal_separator: true,
    require_literal_leading_dot: false,
};

impl ImageFilters {
    /// Parses `key=value` filter arguments as `docker images --filter` takes them.
    pub fn parse(args: &[String]) -> Result<ImageFilters, EngineError> {
        let mut f = ImageFilters::default();
        for arg in args {
            let Some((key, value)) = arg.split_once('=') else {
                return Err(EngineError::InvalidArgument(format!(
                    "bad format of filter (expected name=value): {arg}"
                )));
            };
            match key.trim().to_ascii_lowercase().as_str() {
                "dangling" => {
                    f.dangling = Some(match value.to_ascii_lowercase().as_str() {
                        "true" | "1" => true,
                        "false" | "0" => false,
                        _ => {
                            return Err(EngineError::InvalidArgument(format!(
                                "invalid filter 'dangling={value}': expected true or false"
                            )))
                        }
                    })
                }
                "reference" => {
                    Pattern::new(value).map_err(|e| {
                        EngineError::InvalidArgument(format!(
                            "invalid reference filter pattern {value:?}: {e}"
                        ))
                    })?;
                    f.references.push(value.to_string())
                }
                "label" => match value.split_once('=') {
                    Some((k, v)) => f.labels.push((k.to_string(), Some(v.to_string()))),
                    None => f.labels.push((value.to_string(), None)),
                },
                "before" => f.before = Some(value.to_string()),
                "since" => f.since = Some(value.to_string()),
                "until" => f.until = Some(parse_until(value)?),
                other => {
                    return Err(EngineError::InvalidArgument(format!(
                        "invalid filter '{other}'"
                    )))
                }
            }
        }
        Ok(f)
    }

    pub(crate) fn apply(
        &self,
        engine: &Engine,
        images: Vec<ImageSummary>,
    ) -> Result<Vec<ImageSummary>, EngineError> {
        let before = match &self.before {
            Some(name) => Some(engine.resolve_image(name)?),
            None => None,
        };
        let since = match &self.since {
            Some(name) => Some(engine.resolve_image(name)?),
            None => None,
        };
        let before_created = before.map(|r| (crate::images::unix_seconds(&r.created), r.added));
        let since_created = since.map(|r| (crate::images::unix_seconds(&r.created), r.added));
        let mut out = Vec::with_capacity(images.len());
        for mut image in images {
            if let Some(dangling) = self.dangling {
                if image.repo_tags.is_empty() != dangling {
                    continue;
                }
            }
            if !self
                .labels
                .iter()
                .all(|(k, v)| match (image.labels.get(k), v) {
                    (Some(actual), Some(want)) => actual == want,
                    (Some(_), None) => true,
                    (None, _) => false,
                })
            {
                continue;
            }
            let key = (image.created, image.added);
            if let Some(b) = before_created {
                if key >= b {
                    continue;
                }
            }
            if let Some(s) = since_created {
                if key <= s {
                    continue;
                }
            }
            if let Some(until) = self.until {
                if image.created >= until {
                    continue;
                }
            }
            if !self.references.is_empty() {
                let matching: Vec<String> = image
                    .repo_tags
                    .iter()
                    .filter(|tag| self.references.iter().any(|p| reference_matches(p, tag)))
                    .cloned()
                    .collect();
                if matching.is_empty() {
                    continue;
                }
                image.repo_tags = matching;
            }
            out.push(image);
        }
        Ok(out)
    }
}

/// Docker's `FamiliarMatch`: the pattern is matched against the familiar string and the
/// familiar name.
fn reference_matches(pattern: &str, familiar_tag: &str) -> bool {
    let Ok(p) = Pattern::new(pattern) else {
        return false;
    };
    if p.matches_with(familiar_tag, PATH_MATCH) {
        return true;
    }
    match Reference::parse(familiar_tag) {
        Ok(r) => p.matches_with(&r.familiar_repository(), PATH_MATCH),
        Err(_) => false,
    }
}

/// `until`: a Go duration before now (`24h`, `90m`, `1h30m`), a unix timestamp, or an RFC 3339
/// time.
fn parse_until(value: &str) -> Result<i64, EngineError> {
    let now = chrono::Utc::now().timestamp();
    if let Some(secs) = parse_go_duration(value) {
        return Ok(now - secs);
    }
    if let Ok(ts) = value.parse::<f64>() {
        return Ok(ts as i64);
    }
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(value) {
        return Ok(t.timestamp());
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(value, "%Y-%m-%d") {
        return Ok(d
            .and_hms_opt(0, 0, 0)
            .map(|t| t.and_utc().timestamp())
            .unwrap_or(0));
    }
    Err(EngineError::InvalidArgument(format!(
        "failed to parse value of filter (until): {value:?} is neither a duration (like 24h) nor a timestamp"
    )))
}

pub(crate) fn parse_go_duration(value: &str) -> Option<i64> {
    if value.is_empty() {
        return None;
    }
    let mut total = 0f64;
    let mut num = String::new();
    let mut chars = value.chars().peekable();
    let mut any = false;
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() || c == '.' {
            num.push(c);
            continue;
        }
        let mut unit = c.to_string();
        if c == 'm' && chars.peek() == Some(&'s') {
            unit.push(chars.next()?);
        }
        let n: f64 = num.parse().ok()?;
        num.clear();
        total += n * match unit.as_str() {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 0.001,
            _ => return None,
        };
        any = true;
    }
    if !num.is_empty() || !any {
        return None;
    }
    Some(total as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        assert_eq!(parse_go_duration("24h"), Some(86400));
        assert_eq!(parse_go_duration("1h30m"), Some(5400));
        assert_eq!(parse_go_duration("10"), None);
        assert_eq!(parse_go_duration("x"), None);
    }

    #[test]
    fn reference_patterns() {
        assert!(reference_matches("busy*", "busybox:latest"));
        assert!(reference_matches("busybox:lat*", "busybox:latest"));
        assert!(!reference_matches("busy*", "localhost:5000/busybox:latest"));
        assert!(
            reference_matches("*/busybox", "localhost:5000/busybox:latest")
                || reference_matches("*/*", "localhost:5000/busybox:latest")
        );
    }

    #[test]
    fn unknown_filter_is_an_error() {
        let err = ImageFilters::parse(&["colour=red".to_string()]).unwrap_err();
        assert_eq!(err.to_string(), "invalid filter 'colour'");
    }
}
