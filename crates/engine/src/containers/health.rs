//! Health checks: Docker's `HealthConfig` (the `--health-*` flags, the image's `HEALTHCHECK`),
//! its validation and merge, and the probe the container's monitor runs (see
//! `berth_runtime::health`).

use crate::EngineError;
use berth_runtime::health::{
    HealthProbe, DEFAULT_INTERVAL_NS, DEFAULT_RETRIES, DEFAULT_TIMEOUT_NS,
};
use serde::{Deserialize, Serialize};

/// Docker's `HealthConfig` (`Config.Healthcheck`): durations in nanoseconds, zero meaning
/// "inherit" (from the image) or "default".
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HealthConfig {
    /// `[]` inherit, `["NONE"]` disabled, `["CMD", args…]`, `["CMD-SHELL", command]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub test: Vec<String>,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub interval: i64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub timeout: i64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub start_period: i64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub start_interval: i64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub retries: i64,
}

fn is_zero(v: &i64) -> bool {
    *v == 0
}

/// The `run`/`create` health flags as typed.
#[derive(Debug, Clone, Default)]
pub struct HealthFlags {
    pub cmd: Option<String>,
    pub interval: Option<String>,
    pub timeout: Option<String>,
    pub start_period: Option<String>,
    pub start_interval: Option<String>,
    pub retries: Option<String>,
    pub no_healthcheck: bool,
}

/// Go's `time.ParseDuration`, in nanoseconds (signed, as Go accepts `-1s`).
pub fn parse_duration_ns(s: &str) -> Option<i64> {
    let (neg, mut rest) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    if rest == "0" {
        return Some(0);
    }
    if rest.is_empty() {
        return None;
    }
    let mut total: f64 = 0.0;
    while !rest.is_empty() {
        let n = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if n == 0 {
            return None;
        }
        let v: f64 = rest[..n].parse().ok()?;
        rest = &rest[n..];
        let u = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let mult = match &rest[..u] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        rest = &rest[u..];
        total += v * mult;
    }
    if total > i64::MAX as f64 {
        return None;
    }
    let t = total.round() as i64;
    Some(if neg { -t } else { t })
}

impl HealthFlags {
    /// The docker CLI's rules: `None` when no flag was given (the image's health check
    /// applies); `--no-healthcheck` is `["NONE"]` and conflicts with the others.
    pub fn to_config(&self) -> Result<Option<HealthConfig>, EngineError> {
        let dur = |v: &Option<String>, flag: &str| -> Result<i64, EngineError> {
            match v {
                None => Ok(0),
                Some(s) => parse_duration_ns(s).ok_or_else(|| {
                    EngineError::InvalidArgument(format!(
                        "invalid argument \"{s}\" for \"--{flag}\" flag: time: invalid duration \"{s}\""
                    ))
                }),
            }
        };
        let interval = dur(&self.interval, "health-interval")?;
        let timeout = dur(&self.timeout, "health-timeout")?;
        let start_period = dur(&self.start_period, "health-start-period")?;
        let start_interval = dur(&self.start_interval, "health-start-interval")?;
        let retries = match &self.retries {
            None => 0,
            Some(s) => s.parse::<i64>().map_err(|_| {
                EngineError::InvalidArgument(format!(
                    "invalid argument \"{s}\" for \"--health-retries\" flag: strconv.ParseInt: parsing \"{s}\": invalid syntax"
                ))
            })?,
        };
        let cmd = self.cmd.clone().unwrap_or_default();
        let any = !cmd.is_empty()
            || interval != 0
            || timeout != 0
            || start_period != 0
            || start_interval != 0
            || retries != 0;
        if self.no_healthcheck {
            if any {
                return Err(EngineError::InvalidArgument(
                    "--no-healthcheck conflicts with --health-* options".into(),
                ));
            }
            return Ok(Some(HealthConfig {
                test: vec!["NONE".into()],
                ..Default::default()
            }));
        }
        if !any {
            return Ok(None);
        }
        for (v, flag) in [
            (interval, "--health-interval"),
            (timeout, "--health-timeout"),
            (retries, "--health-retries"),
            (start_period, "--health-start-period"),
            (start_interval, "--health-start-interval"),
        ] {
            if v < 0 {
                return Err(EngineError::InvalidArgument(format!(
                    "{flag} cannot be negative"
                )));
            }
        }
        Ok(Some(HealthConfig {
            test: if cmd.is_empty() {
                Vec::new()
            } else {
                vec!["CMD-SHELL".into(), cmd]
            },
            interval,
            timeout,
            start_period,
            start_interval,
            retries,
        }))
    }
}

/// Docker's minimum for the durations (`containertypes.MinimumDuration`).
const MINIMUM_NS: i64 = 1_000_000;

/// The daemon's checks (`verifyContainerSettings`), with Docker's messages.
pub fn validate(h: &HealthConfig) -> Result<(), EngineError> {
    for (v, name) in [
        (h.interval, "Interval"),
        (h.timeout, "Timeout"),
        (h.start_period, "StartPeriod"),
        (h.start_interval, "StartInterval"),
    ] {
        if v != 0 && v < MINIMUM_NS {
            return Err(EngineError::InvalidArgument(format!(
                "{name} in Healthcheck cannot be less than 1ms"
            )));
        }
    }
    if h.retries < 0 {
        return Err(EngineError::InvalidArgument(
            "Retries in Healthcheck cannot be negative".into(),
        ));
    }
    Ok(())
}

/// The container's health check: the user's, with what it leaves unset taken from the
/// image's (Docker's `merge`).
pub fn merge(
    user: Option<HealthConfig>,
    image: Option<&serde_json::Value>,
) -> Option<HealthConfig> {
    let image: Option<HealthConfig> = image.and_then(|v| serde_json::from_value(v.clone()).ok());
    match (user, image) {
        (None, img) => img,
        (Some(u), None) => Some(u),
        (Some(mut u), Some(img)) => {
            if u.test.is_empty() {
                u.test = img.test;
            }
            let inherit = |a: &mut i64, b: i64| {
                if *a == 0 {
                    *a = b
                }
            };
            inherit(&mut u.interval, img.interval);
            inherit(&mut u.timeout, img.timeout);
            inherit(&mut u.start_period, img.start_period);
            inherit(&mut u.start_interval, img.start_interval);
            inherit(&mut u.retries, img.retries);
            Some(u)
        }
    }
}

/// What the monitor runs, or `None` (no test, `NONE`, or a test type Docker ignores).
/// `CMD-SHELL` runs in the image's `SHELL` (default `/bin/sh -c`).
pub fn probe(h: &HealthConfig, shell: Option<&[String]>) -> Option<HealthProbe> {
    let args: Vec<String> = match h.test.first().map(String::as_str) {
        Some("CMD") => h.test[1..].to_vec(),
        Some("CMD-SHELL") => {
            let mut a: Vec<String> = match shell.filter(|s| !s.is_empty()) {
                Some(s) => s.to_vec(),
                None => vec!["/bin/sh".into(), "-c".into()],
            };
            a.extend(h.test[1..].iter().cloned());
            a
        }
        _ => return None,
    };
    if args.is_empty() {
        return None;
    }
    let ns = |v: i64, default: u64| if v > 0 { v as u64 } else { default };
    Some(HealthProbe {
        args,
        interval_ns: ns(h.interval, DEFAULT_INTERVAL_NS),
        timeout_ns: ns(h.timeout, DEFAULT_TIMEOUT_NS),
        start_period_ns: ns(h.start_period, 0),
        start_interval_ns: ns(h.start_interval, 0),
        retries: if h.retries > 0 {
            h.retries.min(u32::MAX as i64) as u32
        } else {
            DEFAULT_RETRIES
        },
    })
}

/// `ps --filter health=`: the values Docker knows.
pub fn valid_filter(v: &str) -> bool {
    matches!(v, "starting" | "healthy" | "unhealthy" | "none")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration_ns("200ms"), Some(200_000_000));
        assert_eq!(parse_duration_ns("1m30s"), Some(90_000_000_000));
        assert_eq!(parse_duration_ns("-1s"), Some(-1_000_000_000));
        assert_eq!(parse_duration_ns("0"), Some(0));
        assert_eq!(parse_duration_ns("5"), None);
        assert_eq!(parse_duration_ns("x"), None);
    }

    #[test]
    fn flags_and_merge() {
        let f = HealthFlags {
            no_healthcheck: true,
            retries: Some("2".into()),
            ..Default::default()
        };
        assert!(f.to_config().unwrap_err().to_string().contains("conflicts"));
        let f = HealthFlags {
            interval: Some("-1s".into()),
            ..Default::default()
        };
        assert_eq!(
            f.to_config().unwrap_err().to_string(),
            "--health-interval cannot be negative"
        );
        let f = HealthFlags {
            interval: Some("100us".into()),
            ..Default::default()
        };
        let c = f.to_config().unwrap().unwrap();
        assert_eq!(
            validate(&c).unwrap_err().to_string(),
            "Interval in Healthcheck cannot be less than 1ms"
        );
        // The user's interval, the image's test.
        let f = HealthFlags {
            interval: Some("2s".into()),
            ..Default::default()
        };
        let img = serde_json::json!({"Test": ["CMD-SHELL", "true"], "Interval": 5_000_000_000u64, "Retries": 4});
        let m = merge(f.to_config().unwrap(), Some(&img)).unwrap();
        assert_eq!(m.test, vec!["CMD-SHELL", "true"]);
        assert_eq!((m.interval, m.retries), (2_000_000_000, 4));
        let p = probe(&m, None).unwrap();
        assert_eq!(p.args, vec!["/bin/sh", "-c", "true"]);
        assert!(probe(
            &HealthConfig {
                test: vec!["NONE".into()],
                ..Default::default()
            },
            None
        )
        .is_none());
    }
}
