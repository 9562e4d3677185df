//! Bounds on what a registry, an archive or a layer can make berth do, so that hostile input
//! costs bounded time, disk and memory. README's security notes list them for users.
//!
//! - Registries ([`registry_client_config`]): a connect timeout (`BERTH_REGISTRY_CONNECT_TIMEOUT`,
//!   default 30s, Docker's dial timeout) and a progress window (`BERTH_REGISTRY_TIMEOUT`, default
//!   60s): a registry must answer each request within one window, and every transfer must move
//!   at least 1 KiB a second averaged over each window. A slow but steady download of a big
//!   layer goes on for as long as it takes; a registry that trickles or stops is cut off.
//!   Blobs are also bounded by their descriptor's size as they stream (the registry client).
//! - Layers ([`Expansion`]): a compressed layer may unpack to at most
//!   `max(BERTH_LAYER_MAX_RATIO × its compressed size, BERTH_LAYER_RATIO_FLOOR)` bytes (defaults
//!   100 and 1 GiB): a gzip bomb stops there, whether it comes from `pull`, `load` or `import`.
//! - Depth ([`check_depth`]): images of more than [`MAX_LAYER_DEPTH`] layers are refused before
//!   any layer is fetched or unpacked, as Docker refuses them ("max depth exceeded").

use crate::EngineError;
use berth_registry::client::ClientConfig;
use std::io::{self, Read};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The most layers an image may have: Docker's limit, which keeps an overlay mount's lower
/// directories within what the kernel accepts.
pub const MAX_LAYER_DEPTH: usize = 125;

/// Refuses an image of more than [`MAX_LAYER_DEPTH`] layers, in Docker's words.
pub(crate) fn check_depth(what: &str, layers: usize) -> Result<(), EngineError> {
    if layers > MAX_LAYER_DEPTH {
        return Err(EngineError::Limit(format!(
            "max depth exceeded: {what} has {layers} layers, more than the {MAX_LAYER_DEPTH} an overlay mount can stack"
        )));
    }
    Ok(())
}

/// A duration as `30`, `30s`, `1.5s`, `500ms` or `2m`; `0` turns the limit off.
fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| !(c.is_ascii_digit() || c == '.')) {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let n: f64 = num.parse().ok()?;
    let secs = match unit.trim() {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return None,
    };
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs))
}

/// A size as `1048576`, `512k`, `64MiB`, `1g` or `1GB` (all binary multiples, as Docker's
/// `--memory`).
fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let i = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(i);
    let n: u64 = num.parse().ok()?;
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        "t" | "tb" | "tib" => 40,
        _ => return None,
    };
    n.checked_mul(1u64 << shift)
}

fn env_value<T>(
    var: &str,
    default: T,
    parse: impl Fn(&str) -> Option<T>,
    expected: &str,
) -> Result<T, EngineError> {
    match std::env::var(var) {
        Ok(v) if !v.trim().is_empty() => parse(&v).ok_or_else(|| {
            EngineError::InvalidArgument(format!("invalid {var}={v:?}: expected {expected}"))
        }),
        _ => Ok(default),
    }
}

/// The registry client's settings, with the timeouts the environment sets.
pub(crate) fn registry_client_config() -> Result<ClientConfig, EngineError> {
    let d = ClientConfig::default();
    let duration = "a duration such as 30s, 500ms or 2m (0: no limit)";
    Ok(ClientConfig {
        connect_timeout: env_value(
            "BERTH_REGISTRY_CONNECT_TIMEOUT",
            d.connect_timeout,
            parse_duration,
            duration,
        )?,
        timeout: env_value(
            "BERTH_REGISTRY_TIMEOUT",
            d.timeout,
            parse_duration,
            duration,
        )?,
        ..d
    })
}

/// The largest build context the Engine API's `POST /build` unpacks (`BERTH_BUILD_CONTEXT_MAX`,
/// default 16 GiB, counted uncompressed), so a client cannot fill the disk with one request.
pub(crate) fn build_context_max() -> Result<u64, EngineError> {
    env_value(
        "BERTH_BUILD_CONTEXT_MAX",
        16 << 30,
        parse_size,
        "a size such as 16GiB, 512m or 1048576",
    )
}

/// What to change when a registry was cut off for being slow.
pub(crate) const TIMEOUT_HINT: &str = "raise BERTH_REGISTRY_TIMEOUT to wait longer";
/// What to change when connecting to a registry timed out.
pub(crate) const CONNECT_TIMEOUT_HINT: &str = "raise BERTH_REGISTRY_CONNECT_TIMEOUT to wait longer";

/// How far a compressed layer may expand when it is unpacked.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Expansion {
    /// Times its compressed size; 0: no limit.
    ratio: u64,
    /// Layers unpacking to at most this many bytes are never refused.
    floor: u64,
}

impl Expansion {
    pub(crate) fn from_env() -> Result<Expansion, EngineError> {
        Ok(Expansion {
            ratio: env_value(
                "BERTH_LAYER_MAX_RATIO",
                100,
                |s| s.trim().parse().ok(),
                "a whole number (0: no limit)",
            )?,
            floor: env_value(
                "BERTH_LAYER_RATIO_FLOOR",
                1 << 30,
                parse_size,
                "a size such as 1GiB, 512m or 1048576",
            )?,
        })
    }

    /// The most bytes a layer of `compressed` bytes may unpack to.
    pub(crate) fn allowed(&self, compressed: u64) -> u64 {
        if self.ratio == 0 {
            return u64::MAX;
        }
        self.ratio.saturating_mul(compressed).max(self.floor)
    }

    /// Wraps the decompressed stream of a layer whose compressed size is known.
    pub(crate) fn bound<R: Read>(&self, inner: R, compressed: u64) -> Bounded<R> {
        Bounded {
            inner,
            produced: 0,
            expansion: *self,
            compressed: Basis::Known(compressed),
            exceeded: None,
        }
    }

    /// Wraps the decompressed stream of a layer read from a stream of unknown length:
    /// `counted` is the number of compressed bytes read so far (see [`Counting`]).
    pub(crate) fn bound_counted<R: Read>(&self, inner: R, counted: Arc<AtomicU64>) -> Bounded<R> {
        Bounded {
            inner,
            produced: 0,
            expansion: *self,
            compressed: Basis::Counted(counted),
            exceeded: None,
        }
    }
}

enum Basis {
    Known(u64),
    Counted(Arc<AtomicU64>),
}

/// A decompressed layer stream that fails once it grows past what [`Expansion`] allows.
pub(crate) struct Bounded<R> {
    inner: R,
    produced: u64,
    expansion: Expansion,
    compressed: Basis,
    /// `(allowed, compressed)` once the bound was hit.
    exceeded: Option<(u64, u64)>,
}

impl<R> Bounded<R> {
    /// The error to report instead of whatever the reader's failure became on its way up,
    /// when the bound is why reading stopped.
    pub(crate) fn limit_error(&self, what: &str) -> Option<EngineError> {
        let (allowed, compressed) = self.exceeded?;
        Some(EngineError::Limit(format!(
            "{what} unpacks to more than {allowed} bytes from {compressed} compressed bytes: refused as a possible decompression bomb (the bound is max(BERTH_LAYER_MAX_RATIO={} times the compressed size, BERTH_LAYER_RATIO_FLOOR={} bytes); raise them if the layer is genuine)",
            self.expansion.ratio, self.expansion.floor
        )))
    }
}

impl<R: Read> Read for Bounded<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.produced += n as u64;
        let compressed = match &self.compressed {
            Basis::Known(c) => *c,
            Basis::Counted(c) => c.load(Ordering::Relaxed),
        };
        let allowed = self.expansion.allowed(compressed);
        if self.produced > allowed {
            self.exceeded = Some((allowed, compressed));
            return Err(io::Error::other(format!(
                "decompressed layer exceeds {allowed} bytes"
            )));
        }
        Ok(n)
    }
}

/// Why a [`Paced`] download stopped, for the caller to report instead of whatever the read
/// error became on its way up.
pub(crate) type Stall = Arc<std::sync::Mutex<Option<String>>>;

/// A download read synchronously (`import URL`) that must keep moving: at least `min_speed`
/// bytes a second over every window (the transport's per-read timeout covers silence).
pub(crate) struct Paced<R> {
    inner: R,
    stall: Stall,
    window: Duration,
    min_bytes: u64,
    min_speed: u64,
    window_end: Instant,
    in_window: u64,
    what: String,
}

impl<R> Paced<R> {
    pub(crate) fn new(
        inner: R,
        window: Duration,
        min_speed: u64,
        what: String,
        stall: Stall,
    ) -> Paced<R> {
        Paced {
            inner,
            stall,
            window,
            min_bytes: ((min_speed as f64 * window.as_secs_f64()) as u64).max(1),
            min_speed,
            window_end: Instant::now() + window,
            in_window: 0,
            what,
        }
    }
}

impl<R: Read> Read for Paced<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if self.window.is_zero() || n == 0 {
            return Ok(n);
        }
        self.in_window += n as u64;
        let now = Instant::now();
        if now >= self.window_end {
            if self.in_window < self.min_bytes {
                let why = format!(
                    "download of {} stalled: less than {} bytes/s over {:?} ({TIMEOUT_HINT})",
                    self.what, self.min_speed, self.window
                );
                *self.stall.lock().unwrap() = Some(why.clone());
                return Err(io::Error::new(io::ErrorKind::TimedOut, why));
            }
            self.in_window = 0;
            self.window_end = now + self.window;
        }
        Ok(n)
    }
}

/// Counts the bytes read through it into a shared counter.
pub(crate) struct Counting<R> {
    pub inner: R,
    pub count: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_sizes_parse() {
        assert_eq!(parse_duration("30"), Some(Duration::from_secs(30)));
        assert_eq!(parse_duration("30s"), Some(Duration::from_secs(30)));
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2m"), Some(Duration::from_secs(120)));
        assert_eq!(parse_duration("0"), Some(Duration::ZERO));
        for bad in ["", "s", "-1", "10x", "1.2.3s"] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
        assert_eq!(parse_size("1048576"), Some(1 << 20));
        assert_eq!(parse_size("512k"), Some(512 << 10));
        assert_eq!(parse_size("64MiB"), Some(64 << 20));
        assert_eq!(parse_size("1g"), Some(1 << 30));
        assert_eq!(parse_size("1GB"), Some(1 << 30));
        for bad in ["", "g", "1.5g", "12parsecs", "99999999999999999999"] {
            assert_eq!(parse_size(bad), None, "{bad}");
        }
    }

    #[test]
    fn expansion_bound() {
        let e = Expansion {
            ratio: 10,
            floor: 1000,
        };
        assert_eq!(e.allowed(10), 1000);
        assert_eq!(e.allowed(500), 5000);
        let none = Expansion { ratio: 0, floor: 0 };
        assert_eq!(none.allowed(1), u64::MAX);
        // 2000 zero bytes from "10 compressed bytes": stops just past the floor.
        let mut r = e.bound(io::repeat(0).take(2000), 10);
        let mut out = Vec::new();
        assert!(r.read_to_end(&mut out).is_err());
        assert!(out.len() <= 1000, "{}", out.len());
        assert!(r
            .limit_error("layer x")
            .unwrap()
            .to_string()
            .contains("decompression bomb"));
        let mut ok = e.bound(io::repeat(0).take(1000), 10);
        io::copy(&mut ok, &mut io::sink()).unwrap();
        assert!(ok.limit_error("layer x").is_none());
    }
}
