//! What keeps a hostile registry from hanging or flooding the client: a progress watchdog on
//! every request and response body, and the rules for where a redirect may lead.
//!
//! - A request must get its response head within one window ([`Pace::window`]); while an
//!   upload body is still being sent, the window restarts as long as the body moves fast enough.
//! - A response body must keep moving: over every window, at least `min_speed` bytes a second
//!   on average. A registry that trickles a byte a second, or stops sending, is cut off after
//!   one window, however big the blob; a slow but steady download of a big layer is not.
//! - Redirects are followed only to `http`/`https`, at most `max_redirects` times, and never to
//!   link-local or cloud metadata addresses unless the registry itself lives at that address.
//!   Host names are checked when they resolve ([`GuardedResolver`]), literal addresses when the
//!   redirect is seen ([`redirect_policy`]). Credentials are never carried to another host or
//!   port: reqwest drops `Authorization` when either changes, which the tests assert.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use reqwest::Response;
use tokio::time::Instant;

use super::ClientError;

/// How fast a registry must answer and keep data moving.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Pace {
    /// `None`: no watchdog (a zero timeout in the configuration).
    pub window: Option<Duration>,
    /// Bytes per second, averaged over a window.
    pub min_speed: u64,
}

impl Pace {
    fn min_bytes(&self, window: Duration) -> u64 {
        // At least one byte: a window in which nothing at all arrives is always a stall.
        ((self.min_speed as f64 * window.as_secs_f64()) as u64).max(1)
    }
}

/// `1s`, `1.5s`, `250ms`, `2m`: a duration as people write it.
pub(crate) fn human(d: Duration) -> String {
    let ms = d.as_millis();
    if ms.is_multiple_of(60_000) && ms >= 60_000 {
        format!("{}m", ms / 60_000)
    } else if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else if ms >= 1000 {
        format!("{:.1}s", d.as_secs_f64())
    } else {
        format!("{ms}ms")
    }
}

/// Waits for a response head. `sent` counts the bytes of an upload body as they leave: while
/// it grows fast enough the wait goes on; without a body, the registry has one window.
pub(crate) async fn await_response<F>(
    pace: Pace,
    registry: &str,
    sent: Option<Arc<AtomicU64>>,
    fut: F,
) -> Result<Result<Response, reqwest::Error>, ClientError>
where
    F: std::future::Future<Output = Result<Response, reqwest::Error>>,
{
    let Some(window) = pace.window else {
        return Ok(fut.await);
    };
    tokio::pin!(fut);
    let mut last = 0u64;
    loop {
        match tokio::time::timeout(window, &mut fut).await {
            Ok(r) => return Ok(r),
            Err(_) => {
                let now = sent.as_ref().map_or(0, |s| s.load(Ordering::Relaxed));
                let moved = now - last;
                last = now;
                if moved == 0 {
                    return Err(ClientError::Timeout {
                        registry: registry.to_string(),
                        message: format!(
                            "registry {registry} did not answer within {}",
                            human(window)
                        ),
                    });
                }
                if moved < pace.min_bytes(window) {
                    return Err(ClientError::Timeout {
                        registry: registry.to_string(),
                        message: format!(
                            "upload to registry {registry} stalled: less than {} bytes/s over {}",
                            pace.min_speed,
                            human(window)
                        ),
                    });
                }
            }
        }
    }
}

/// A response body as a stream that fails with [`ClientError::Timeout`] when the registry
/// stops sending or sends slower than the pace allows; `what` names the transfer in the error.
pub(crate) type Body = Pin<Box<dyn Stream<Item = Result<Bytes, ClientError>> + Send>>;

pub(crate) fn watch_body(pace: Pace, registry: &str, what: String, resp: Response) -> Body {
    let inner = resp.bytes_stream();
    let Some(window) = pace.window else {
        return Box::pin(inner.map(|r| r.map_err(ClientError::Http)));
    };
    struct St {
        inner: Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>,
        deadline: Instant,
        in_window: u64,
        done: bool,
        window: Duration,
        min_bytes: u64,
        min_speed: u64,
        registry: String,
        what: String,
    }
    impl St {
        /// The window ended: enough bytes moved, or the transfer stalled.
        fn roll(&mut self) -> Result<(), ClientError> {
            if self.in_window < self.min_bytes {
                self.done = true;
                return Err(ClientError::Timeout {
                    registry: self.registry.clone(),
                    message: format!(
                        "{} from registry {} stalled: less than {} bytes/s over {}",
                        self.what,
                        self.registry,
                        self.min_speed,
                        human(self.window)
                    ),
                });
            }
            self.in_window = 0;
            self.deadline = Instant::now() + self.window;
            Ok(())
        }
    }
    let st = St {
        inner: Box::pin(inner),
        deadline: Instant::now() + window,
        in_window: 0,
        done: false,
        window,
        min_bytes: pace.min_bytes(window),
        min_speed: pace.min_speed,
        registry: registry.to_string(),
        what,
    };
    Box::pin(futures_util::stream::unfold(st, |mut st| async move {
        if st.done {
            return None;
        }
        loop {
            match tokio::time::timeout_at(st.deadline, st.inner.next()).await {
                Ok(None) => return None,
                Ok(Some(Err(e))) => {
                    st.done = true;
                    return Some((Err(ClientError::Http(e)), st));
                }
                Ok(Some(Ok(chunk))) => {
                    st.in_window += chunk.len() as u64;
                    if Instant::now() >= st.deadline {
                        if let Err(e) = st.roll() {
                            return Some((Err(e), st));
                        }
                    }
                    return Some((Ok(chunk), st));
                }
                Err(_) => {
                    if let Err(e) = st.roll() {
                        return Some((Err(e), st));
                    }
                }
            }
        }
    }))
}

/// Reads a whole (small) body, refusing more than `max` bytes.
pub(crate) async fn read_body(
    pace: Pace,
    registry: &str,
    what: &str,
    resp: Response,
    max: usize,
) -> Result<Vec<u8>, ClientError> {
    if resp.content_length().is_some_and(|n| n > max as u64) {
        return Err(ClientError::InvalidResponse {
            registry: registry.to_string(),
            message: format!("{what} is larger than {max} bytes"),
        });
    }
    let mut body = watch_body(pace, registry, what.to_string(), resp);
    let mut out = Vec::new();
    while let Some(chunk) = body.next().await {
        let chunk = chunk?;
        if out.len() + chunk.len() > max {
            return Err(ClientError::InvalidResponse {
                registry: registry.to_string(),
                message: format!("{what} is larger than {max} bytes"),
            });
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// Link-local and cloud metadata addresses: what a redirect or a host name met on the way
/// (not the registry's own address) may never lead to.
pub fn is_forbidden_address(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return forbidden_v4(v4);
            }
            // fe80::/10 (link-local), and AWS's IPv6 instance metadata service.
            (v6.segments()[0] & 0xffc0) == 0xfe80
                || v6 == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254)
        }
    }
}

fn forbidden_v4(ip: Ipv4Addr) -> bool {
    // 169.254.0.0/16 holds 169.254.169.254 (AWS, GCP, Azure, OpenStack, DigitalOcean …);
    // Alibaba Cloud's metadata service and Azure's wire server sit elsewhere.
    ip.is_link_local()
        || ip == Ipv4Addr::new(100, 100, 100, 200)
        || ip == Ipv4Addr::new(168, 63, 129, 16)
}

/// Host names of metadata services, refused as redirect targets whatever they resolve to.
const METADATA_NAMES: &[&str] = &["metadata.google.internal", "metadata.goog"];

fn parse_host_ip(host: &str) -> Option<IpAddr> {
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .ok()
}

/// Why a redirect was not followed; found again in the error's source chain.
#[derive(Debug)]
pub(crate) struct RedirectRefused(pub String);

impl std::fmt::Display for RedirectRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for RedirectRefused {}

/// The redirect rules: http(s) only, at most `max` hops, never to a link-local or metadata
/// address or name unless it is where the request started (the registry itself).
pub(crate) fn redirect_policy(max: usize) -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(move |attempt| {
        let url = attempt.url().clone();
        if attempt.previous().len() > max {
            return attempt.error(RedirectRefused(format!(
                "more than {max} redirects, the last to {url}"
            )));
        }
        if !matches!(url.scheme(), "http" | "https") {
            return attempt.error(RedirectRefused(format!(
                "redirect to {url}: only http and https redirects are followed"
            )));
        }
        let origin = attempt
            .previous()
            .first()
            .and_then(|u| u.host_str())
            .map(|h| h.to_ascii_lowercase());
        let Some(host) = url.host_str().map(|h| h.to_ascii_lowercase()) else {
            return attempt.error(RedirectRefused(format!("redirect to {url}: no host")));
        };
        if origin.as_deref() != Some(host.as_str()) {
            let forbidden = match parse_host_ip(&host) {
                Some(ip) => is_forbidden_address(ip),
                None => METADATA_NAMES.contains(&host.trim_end_matches('.')),
            };
            if forbidden {
                return attempt.error(RedirectRefused(format!(
                    "redirect to {url}: refusing a link-local or cloud metadata address"
                )));
            }
        }
        attempt.follow()
    })
}

/// A DNS resolver that drops link-local and metadata addresses from every name except the
/// registries the client was asked to talk to, so that a redirect (or a token realm) naming
/// a host that resolves to 169.254.169.254 reaches nothing.
pub(crate) struct GuardedResolver {
    pub trusted: Arc<Mutex<HashSet<String>>>,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_ascii_lowercase();
        let trusted = self.trusted.lock().unwrap().contains(&host);
        Box::pin(async move {
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if trusted {
                return Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs);
            }
            let any = !addrs.is_empty();
            let kept: Vec<SocketAddr> = addrs
                .into_iter()
                .filter(|a| !is_forbidden_address(a.ip()))
                .collect();
            if any && kept.is_empty() {
                return Err(Box::new(RedirectRefused(format!(
                    "{host} resolves to a link-local or cloud metadata address, which berth contacts only when it is the registry's own"
                ))) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(kept.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// The refusal in an error's source chain, if a redirect rule stopped the request.
pub(crate) fn refusal(e: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cur {
        if let Some(r) = c.downcast_ref::<RedirectRefused>() {
            return Some(r.0.clone());
        }
        cur = c.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forbidden_addresses() {
        for bad in [
            "169.254.169.254",
            "169.254.0.1",
            "100.100.100.200",
            "168.63.129.16",
            "fe80::1",
            "febf::1",
            "fd00:ec2::254",
            "::ffff:169.254.169.254",
        ] {
            assert!(is_forbidden_address(bad.parse().unwrap()), "{bad}");
        }
        for good in [
            "127.0.0.1",
            "10.0.0.1",
            "8.8.8.8",
            "::1",
            "fec0::1",
            "2001:db8::1",
        ] {
            assert!(!is_forbidden_address(good.parse().unwrap()), "{good}");
        }
    }

    #[test]
    fn durations_read_as_written() {
        assert_eq!(human(Duration::from_secs(30)), "30s");
        assert_eq!(human(Duration::from_secs(120)), "2m");
        assert_eq!(human(Duration::from_millis(250)), "250ms");
        assert_eq!(human(Duration::from_millis(1500)), "1.5s");
    }
}
