//! A client for any OCI distribution / Docker registry.
//!
//! ```no_run
//! # async fn run() -> Result<(), berth_registry::client::ClientError> {
//! use berth_registry::client::{Client, ClientConfig, Platform, select_platform};
//! let c = Client::new(ClientConfig::default())?;
//! let m = c.get_manifest("docker.io", "library/alpine", "latest").await?;
//! let m = if berth_registry::manifest::is_index(&m.media_type) {
//!     let entry = select_platform(&m.bytes, &Platform::host())?;
//!     c.get_manifest("docker.io", "library/alpine", &entry.digest.to_string()).await?
//! } else {
//!     m
//! };
//! # let _ = m; Ok(()) }
//! ```
//!
//! - Registries are named by host (`localhost:5000`, `ghcr.io`, `docker.io`;
//!   Docker Hub is reached at `registry-1.docker.io`). HTTPS is used except
//!   for insecure registries: `localhost`, `127.0.0.0/8`, `::1` (Docker's
//!   rule) and [`ClientConfig::insecure_registries`], which are tried over
//!   HTTPS first (without certificate checks) and then plain HTTP.
//! - Authentication follows the registry's `WWW-Authenticate` challenge:
//!   Basic, or Bearer tokens fetched from the advertised realm (anonymously,
//!   with Basic credentials, or with an OAuth2 refresh token), cached per
//!   scope and fetched anew when a request is answered `401`.
//! - Credentials come from [`Client::set_credentials`] or Docker's
//!   `config.json` (see [`config`]), which [`store_credentials`] and
//!   [`remove_credentials`] write for `login` and `logout`.
//! - Content is verified: manifests fetched by digest and every blob stream
//!   are hashed, and a mismatch is [`ClientError::DigestMismatch`]. Blob
//!   downloads resume with `Range` requests when the connection breaks.
//! - A hostile registry can neither hang nor flood the client: every request
//!   has a connect timeout and must be answered within
//!   [`ClientConfig::timeout`], every body must keep moving at
//!   [`ClientConfig::min_speed`] over each such window, a blob may not exceed
//!   the size its descriptor gives, and redirects never lead to link-local or
//!   cloud metadata addresses (see the `guard` module).

mod challenge;
pub mod config;
mod error;
mod guard;
mod platform;

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::{Stream, StreamExt, TryStreamExt};
use reqwest::{Method, RequestBuilder, Response, StatusCode, Url};
use tokio::io::{AsyncRead, AsyncReadExt};

pub use challenge::{parse_challenge, Challenge};
pub use config::{load_credentials, remove_credentials, store_credentials, Credential};
pub use error::ClientError;
pub use guard::is_forbidden_address;
pub use platform::{index_entries, select_platform, IndexEntry, Platform};

use crate::error::ErrorCode;
use crate::manifest::{bare_media_type, MANIFEST_TYPES};
use crate::reference::{is_valid_name, Algorithm, Digest, Reference};
use guard::{await_response, read_body, watch_body, Pace};

/// Largest error or token response body read.
const MAX_SMALL_BODY: usize = 1 << 20;

/// Settings of a [`Client`].
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Registries (`host`, `host:port` or an IP network `10.0.0.0/8`) that may
    /// be reached over plain HTTP or HTTPS without certificate checks, in
    /// addition to localhost and 127.0.0.0/8.
    pub insecure_registries: Vec<String>,
    /// Extra trusted CA certificates (PEM).
    pub root_certificates_pem: Vec<Vec<u8>>,
    /// Where `config.json` lives; `None` means `$DOCKER_CONFIG` or `~/.docker`.
    pub docker_config_dir: Option<PathBuf>,
    /// Whether credentials come from `config.json` when none were set with
    /// [`Client::set_credentials`]; `false` for a server acting for its clients (the Engine
    /// API), which uses only what each request carries, as dockerd does.
    pub credentials_from_config: bool,
    pub user_agent: String,
    /// How often a broken blob download is resumed before giving up.
    pub max_resume_attempts: u32,
    pub connect_timeout: Duration,
    /// How long a registry may take to answer a request, and the window over
    /// which every transfer must keep moving at `min_speed`; zero: no limit.
    pub timeout: Duration,
    /// Slowest transfer accepted, in bytes a second averaged over `timeout`.
    pub min_speed: u64,
    /// How many redirects one request may follow.
    pub max_redirects: usize,
    /// Largest manifest accepted.
    pub max_manifest_size: usize,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            insecure_registries: Vec::new(),
            root_certificates_pem: Vec::new(),
            docker_config_dir: None,
            credentials_from_config: true,
            user_agent: format!("berth/{}", env!("CARGO_PKG_VERSION")),
            max_resume_attempts: 5,
            // Docker's dial timeout.
            connect_timeout: Duration::from_secs(30),
            timeout: Duration::from_secs(60),
            min_speed: 1024,
            // Go's http.Client (and so Docker) stops after 10 redirects.
            max_redirects: 10,
            max_manifest_size: 8 << 20,
        }
    }
}

/// A manifest as fetched: its exact bytes, media type and digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestResponse {
    pub bytes: Vec<u8>,
    pub media_type: String,
    pub digest: Digest,
}

/// A verified stream of a blob's bytes; ends with an error on a digest mismatch.
pub type BlobStream = Pin<Box<dyn Stream<Item = Result<Bytes, ClientError>> + Send>>;

/// A registry client; cheap to clone, safe to share between tasks.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    cfg: ClientConfig,
    strict: reqwest::Client,
    insecure: reqwest::Client,
    overrides: Mutex<HashMap<String, Credential>>,
    registries: tokio::sync::Mutex<HashMap<String, Arc<Registry>>>,
    /// Host names of the registries asked for: only these may resolve to link-local or
    /// metadata addresses.
    trusted: Arc<Mutex<HashSet<String>>>,
}

/// What the client learnt about one registry.
struct Registry {
    host: String,
    base: String,
    insecure: bool,
    credential: Option<Credential>,
    challenge: Mutex<Option<Challenge>>,
    tokens: Mutex<HashMap<String, (String, Instant)>>,
}

impl Client {
    pub fn new(cfg: ClientConfig) -> Result<Client, ClientError> {
        let trusted = Arc::new(Mutex::new(HashSet::new()));
        let build = |insecure: bool| -> Result<reqwest::Client, ClientError> {
            let mut b = reqwest::Client::builder()
                .use_rustls_tls()
                .user_agent(cfg.user_agent.clone())
                .redirect(guard::redirect_policy(cfg.max_redirects))
                .dns_resolver(Arc::new(guard::GuardedResolver {
                    trusted: trusted.clone(),
                }))
                .danger_accept_invalid_certs(insecure);
            if !cfg.connect_timeout.is_zero() {
                b = b.connect_timeout(cfg.connect_timeout);
            }
            for pem in &cfg.root_certificates_pem {
                b =
                    b.add_root_certificate(reqwest::Certificate::from_pem(pem).map_err(|e| {
                        ClientError::InvalidArgument(format!("root certificate: {e}"))
                    })?);
            }
            Ok(b.build()?)
        };
        Ok(Client {
            inner: Arc::new(Inner {
                strict: build(false)?,
                insecure: build(true)?,
                cfg,
                overrides: Mutex::new(HashMap::new()),
                registries: tokio::sync::Mutex::new(HashMap::new()),
                trusted,
            }),
        })
    }

    fn pace(&self) -> Pace {
        Pace {
            window: Some(self.inner.cfg.timeout).filter(|t| !t.is_zero()),
            min_speed: self.inner.cfg.min_speed,
        }
    }

    /// Use these credentials for `registry` instead of those in config.json.
    pub async fn set_credentials(&self, registry: &str, cred: Credential) {
        self.inner
            .overrides
            .lock()
            .unwrap()
            .insert(registry.to_string(), cred);
        self.inner.registries.lock().await.remove(registry);
    }

    /// Is `registry` reached over plain HTTP / without certificate checks?
    pub fn is_insecure(&self, registry: &str) -> bool {
        let (host, _) = split_host_port(registry);
        if host == "localhost" {
            return true;
        }
        let ip = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .ok();
        if ip.is_some_and(|ip| ip.is_loopback()) {
            return true;
        }
        self.inner.cfg.insecure_registries.iter().any(|entry| {
            entry == registry
                || entry == host
                || match (ip, parse_cidr(entry)) {
                    (Some(IpAddr::V4(a)), Some((IpAddr::V4(net), bits))) => {
                        let mask = if bits == 0 {
                            0
                        } else {
                            u32::MAX << (32 - bits)
                        };
                        u32::from(a) & mask == u32::from(net) & mask
                    }
                    _ => false,
                }
        })
    }

    async fn registry(&self, host: &str) -> Result<Arc<Registry>, ClientError> {
        if host.is_empty() || host.contains(['/', ' ', '@', '?', '#']) {
            return Err(ClientError::InvalidArgument(format!(
                "invalid registry {host:?}"
            )));
        }
        let mut map = self.inner.registries.lock().await;
        if let Some(r) = map.get(host) {
            return Ok(r.clone());
        }
        let explicit = self.inner.overrides.lock().unwrap().get(host).cloned();
        let credential = match explicit {
            Some(c) => Some(c),
            None if !self.inner.cfg.credentials_from_config => None,
            None => {
                let dir = self
                    .inner
                    .cfg
                    .docker_config_dir
                    .clone()
                    .unwrap_or_else(config::default_config_dir);
                let h = host.to_string();
                tokio::task::spawn_blocking(move || load_credentials(&dir, &h))
                    .await
                    .map_err(|e| ClientError::Credentials(e.to_string()))??
            }
        };
        let api_host = if config::is_docker_hub(host) {
            "registry-1.docker.io"
        } else {
            host
        };
        self.inner
            .trusted
            .lock()
            .unwrap()
            .insert(split_host_port(api_host).0.to_ascii_lowercase());
        let insecure = self.is_insecure(host);
        let schemes: &[&str] = if insecure {
            &["https", "http"]
        } else {
            &["https"]
        };
        let http = if insecure {
            &self.inner.insecure
        } else {
            &self.inner.strict
        };
        let mut last_err = None;
        for scheme in schemes {
            let base = format!("{scheme}://{api_host}");
            let probe = http.get(format!("{base}/v2/")).send();
            // A timeout on HTTPS still leaves plain HTTP to try (a server that waits for a
            // request line it never gets from a TLS handshake).
            match await_response(self.pace(), host, None, probe).await {
                Ok(Ok(resp)) => {
                    let challenge = if resp.status() == StatusCode::UNAUTHORIZED {
                        resp.headers()
                            .get("www-authenticate")
                            .and_then(|v| v.to_str().ok())
                            .and_then(parse_challenge)
                    } else {
                        None
                    };
                    let reg = Arc::new(Registry {
                        host: host.to_string(),
                        base,
                        insecure,
                        credential,
                        challenge: Mutex::new(challenge),
                        tokens: Mutex::new(HashMap::new()),
                    });
                    map.insert(host.to_string(), reg.clone());
                    return Ok(reg);
                }
                Ok(Err(e)) => {
                    last_err = Some(match guard::refusal(&e) {
                        Some(why) => ClientError::Refused {
                            registry: host.to_string(),
                            message: why,
                        },
                        None => ClientError::Unreachable {
                            registry: host.to_string(),
                            message: error_chain(&e),
                        },
                    })
                }
                Err(timeout) => last_err = Some(timeout),
            }
        }
        Err(last_err.expect("at least one scheme tried"))
    }

    fn http(&self, reg: &Registry) -> &reqwest::Client {
        if reg.insecure {
            &self.inner.insecure
        } else {
            &self.inner.strict
        }
    }

    /// A bearer token for `scopes`, from the cache or the token realm.
    async fn token(
        &self,
        reg: &Registry,
        realm: &str,
        service: Option<&str>,
        scopes: &[String],
    ) -> Result<String, ClientError> {
        let key = scopes.join(" ");
        if let Some((t, exp)) = reg.tokens.lock().unwrap().get(&key) {
            if *exp > Instant::now() {
                return Ok(t.clone());
            }
        }
        let realm_url = Url::parse(realm).map_err(|e| ClientError::InvalidResponse {
            registry: reg.host.clone(),
            message: format!("bad token realm {realm:?}: {e}"),
        })?;
        let realm_host = realm_url.host_str().unwrap_or_default().to_string();
        let http = if realm_host == "localhost"
            || realm_host
                .trim_matches(['[', ']'])
                .parse::<IpAddr>()
                .is_ok_and(|i| i.is_loopback())
            || reg.insecure
                && realm_url.host_str()
                    == Url::parse(&reg.base)
                        .ok()
                        .as_ref()
                        .and_then(|u| u.host_str())
        {
            &self.inner.insecure
        } else {
            &self.inner.strict
        };
        let pace = self.pace();
        let resp = match &reg.credential {
            Some(Credential::IdentityToken { token, .. }) => {
                let mut form: Vec<(&str, String)> = vec![
                    ("grant_type", "refresh_token".into()),
                    ("refresh_token", token.clone()),
                    ("client_id", "berth".into()),
                    ("scope", key.clone()),
                ];
                if let Some(s) = service {
                    form.push(("service", s.to_string()));
                }
                let body = form
                    .iter()
                    .map(|(k, v)| format!("{k}={}", form_encode(v)))
                    .collect::<Vec<_>>()
                    .join("&");
                let req = http
                    .post(realm_url.clone())
                    .header("Content-Type", "application/x-www-form-urlencoded")
                    .body(body)
                    .send();
                await_response(pace, &reg.host, None, req).await?
            }
            cred => {
                let mut u = realm_url.clone();
                {
                    let mut q = u.query_pairs_mut();
                    if let Some(s) = service {
                        q.append_pair("service", s);
                    }
                    for s in scopes {
                        q.append_pair("scope", s);
                    }
                    if let Some(Credential::Basic { username, .. }) = cred {
                        q.append_pair("account", username);
                    }
                }
                let mut rb = http.get(u);
                if let Some(Credential::Basic { username, password }) = cred {
                    rb = rb.basic_auth(username, Some(password));
                }
                await_response(pace, &reg.host, None, rb.send()).await?
            }
        }
        .map_err(|e| self.send_error(reg, e))?;
        let status = resp.status();
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            let (_, message) = read_error(pace, &reg.host, resp).await;
            return Err(ClientError::Unauthorized {
                registry: reg.host.clone(),
                message,
            });
        }
        if !status.is_success() {
            return Err(registry_error(pace, &reg.host, resp).await);
        }
        let body = read_body(pace, &reg.host, "token response", resp, MAX_SMALL_BODY).await?;
        let v: serde_json::Value =
            serde_json::from_slice(&body).map_err(|e| ClientError::InvalidResponse {
                registry: reg.host.clone(),
                message: format!("token response: {e}"),
            })?;
        let token = v
            .get("token")
            .or_else(|| v.get("access_token"))
            .and_then(|t| t.as_str())
            .filter(|t| !t.is_empty())
            .ok_or_else(|| ClientError::InvalidResponse {
                registry: reg.host.clone(),
                message: "token response without a token".into(),
            })?
            .to_string();
        let ttl = v
            .get("expires_in")
            .and_then(|e| e.as_u64())
            .unwrap_or(60)
            .max(1);
        let exp = Instant::now() + Duration::from_millis(ttl * 900);
        reg.tokens.lock().unwrap().insert(key, (token.clone(), exp));
        Ok(token)
    }

    async fn authorize(
        &self,
        reg: &Registry,
        scopes: &[String],
        rb: RequestBuilder,
    ) -> Result<RequestBuilder, ClientError> {
        let ch = reg.challenge.lock().unwrap().clone();
        Ok(match ch {
            None => rb,
            Some(Challenge::Basic { .. }) => match &reg.credential {
                Some(Credential::Basic { username, password }) => {
                    rb.basic_auth(username, Some(password))
                }
                Some(Credential::IdentityToken { username, token }) => {
                    rb.basic_auth(username, Some(token))
                }
                None => rb,
            },
            Some(Challenge::Bearer { realm, service, .. }) => {
                let t = self.token(reg, &realm, service.as_deref(), scopes).await?;
                rb.bearer_auth(t)
            }
        })
    }

    fn send_error(&self, reg: &Registry, e: reqwest::Error) -> ClientError {
        if let Some(why) = guard::refusal(&e) {
            ClientError::Refused {
                registry: reg.host.clone(),
                message: why,
            }
        } else if e.is_connect() {
            ClientError::Unreachable {
                registry: reg.host.clone(),
                message: error_chain(&e),
            }
        } else {
            ClientError::Http(e)
        }
    }

    /// Send an authorised request; on `401`, learn the new challenge, drop
    /// the cached token and try once more (when `retry`).
    async fn send(
        &self,
        reg: &Registry,
        scopes: &[String],
        retry: bool,
        make: impl FnMut(&reqwest::Client, &str) -> RequestBuilder,
    ) -> Result<Response, ClientError> {
        self.send_counted(reg, scopes, retry, None, make).await
    }

    /// [`Client::send`] for an upload whose body counts the bytes it sends into `sent`, so
    /// that a long upload is not mistaken for a registry that does not answer.
    async fn send_counted(
        &self,
        reg: &Registry,
        scopes: &[String],
        retry: bool,
        sent: Option<Arc<AtomicU64>>,
        mut make: impl FnMut(&reqwest::Client, &str) -> RequestBuilder,
    ) -> Result<Response, ClientError> {
        let mut attempt = 0;
        loop {
            let rb = make(self.http(reg), &reg.base);
            let rb = self.authorize(reg, scopes, rb).await?;
            let resp = await_response(self.pace(), &reg.host, sent.clone(), rb.send())
                .await?
                .map_err(|e| self.send_error(reg, e))?;
            if resp.status() != StatusCode::UNAUTHORIZED || attempt > 0 || !retry {
                return Ok(resp);
            }
            attempt += 1;
            let ch = resp
                .headers()
                .get("www-authenticate")
                .and_then(|v| v.to_str().ok())
                .and_then(parse_challenge);
            let Some(ch) = ch else { return Ok(resp) };
            let had = reg.challenge.lock().unwrap().clone();
            if matches!(ch, Challenge::Basic { .. }) && reg.credential.is_none() {
                return Ok(resp);
            }
            if matches!(ch, Challenge::Basic { .. }) && had.as_ref() == Some(&ch) {
                // Credentials were sent and refused.
                return Ok(resp);
            }
            reg.tokens.lock().unwrap().remove(&scopes.join(" "));
            *reg.challenge.lock().unwrap() = Some(ch);
        }
    }

    fn check_repo(repo: &str) -> Result<(), ClientError> {
        if is_valid_name(repo) {
            Ok(())
        } else {
            Err(ClientError::InvalidArgument(format!(
                "invalid repository name {repo:?}"
            )))
        }
    }

    /// Check that the registry answers and the credentials are accepted.
    pub async fn ping(&self, registry: &str) -> Result<(), ClientError> {
        let reg = self.registry(registry).await?;
        let resp = self
            .send(&reg, &[], true, |h, b| h.get(format!("{b}/v2/")))
            .await?;
        match resp.status() {
            s if s.is_success() => Ok(()),
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                let (_, message) = read_error(self.pace(), registry, resp).await;
                Err(ClientError::Unauthorized {
                    registry: registry.to_string(),
                    message,
                })
            }
            _ => Err(registry_error(self.pace(), registry, resp).await),
        }
    }

    /// Verify `username`/`password` against the registry (what `login`
    /// does before storing them) and use them for later requests.
    pub async fn login(
        &self,
        registry: &str,
        username: &str,
        password: &str,
    ) -> Result<(), ClientError> {
        self.set_credentials(
            registry,
            Credential::Basic {
                username: username.to_string(),
                password: password.to_string(),
            },
        )
        .await;
        let reg = self.registry(registry).await?;
        let ch = reg.challenge.lock().unwrap().clone();
        if let Some(Challenge::Bearer { realm, service, .. }) = ch {
            // The token endpoint is what checks the password.
            self.token(&reg, &realm, service.as_deref(), &[]).await?;
        }
        self.ping(registry).await
    }

    fn pull_scope(repo: &str) -> Vec<String> {
        vec![format!("repository:{repo}:pull")]
    }

    fn push_scope(repo: &str) -> Vec<String> {
        vec![format!("repository:{repo}:pull,push")]
    }

    /// Fetch a manifest (image manifest or index, Docker or OCI) by tag or
    /// digest. When `reference` is a digest the bytes are verified against it.
    pub async fn get_manifest(
        &self,
        registry: &str,
        repo: &str,
        reference: &str,
    ) -> Result<ManifestResponse, ClientError> {
        Self::check_repo(repo)?;
        let r = Reference::parse(reference).ok_or_else(|| {
            ClientError::InvalidArgument(format!("invalid reference {reference:?}"))
        })?;
        let reg = self.registry(registry).await?;
        let accept = MANIFEST_TYPES.join(", ");
        let resp = self
            .send(&reg, &Self::pull_scope(repo), true, |h, b| {
                h.get(format!("{b}/v2/{repo}/manifests/{reference}"))
                    .header("Accept", accept.clone())
            })
            .await?;
        if let Some(e) = unfollowed_redirect(&reg, &resp) {
            return Err(e);
        }
        if !resp.status().is_success() {
            return Err(self.pull_error(&reg, repo, reference, resp).await);
        }
        let ct = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .map(|c| bare_media_type(c).to_string());
        let header_digest = resp
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            .and_then(|d| d.parse::<Digest>().ok());
        let mut bytes = Vec::new();
        let mut body = watch_body(
            self.pace(),
            registry,
            format!("manifest {repo}:{reference}"),
            resp,
        );
        while let Some(chunk) = body.next().await {
            let chunk = chunk?;
            if bytes.len() + chunk.len() > self.inner.cfg.max_manifest_size {
                return Err(ClientError::InvalidResponse {
                    registry: registry.to_string(),
                    message: "manifest too large".into(),
                });
            }
            bytes.extend_from_slice(&chunk);
        }
        let expected = match &r {
            Reference::Digest(d) => Some(d.clone()),
            Reference::Tag(_) => header_digest,
        };
        let alg = expected
            .as_ref()
            .map(|d| d.algorithm())
            .unwrap_or(Algorithm::Sha256);
        let digest = alg.digest(&bytes);
        if let Some(want) = expected {
            if want != digest {
                return Err(ClientError::DigestMismatch {
                    expected: want,
                    actual: digest,
                });
            }
        }
        let field = serde_json::from_slice::<serde_json::Value>(&bytes)
            .ok()
            .and_then(|v| {
                v.get("mediaType")
                    .and_then(|m| m.as_str())
                    .map(str::to_string)
            });
        let media_type = match (field, ct) {
            (Some(f), _) => f,
            (None, Some(c)) if MANIFEST_TYPES.contains(&c.as_str()) => c,
            (None, _) => {
                let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
                if v.get("manifests").is_some() {
                    crate::manifest::OCI_INDEX.to_string()
                } else {
                    crate::manifest::OCI_MANIFEST.to_string()
                }
            }
        };
        Ok(ManifestResponse {
            bytes,
            media_type,
            digest,
        })
    }

    async fn pull_error(
        &self,
        reg: &Registry,
        repo: &str,
        reference: &str,
        resp: Response,
    ) -> ClientError {
        let status = resp.status();
        let e = registry_error(self.pace(), &reg.host, resp).await;
        let code = match &e {
            ClientError::Registry { code, .. } => *code,
            _ => None,
        };
        match (status.as_u16(), code) {
            (401 | 403, _) | (404, Some(ErrorCode::NameUnknown)) => ClientError::PullAccessDenied {
                repository: format!("{}/{repo}", reg.host),
            },
            (404, _) => ClientError::ManifestUnknown {
                repository: format!("{}/{repo}", reg.host),
                reference: reference.to_string(),
            },
            _ => e,
        }
    }

    /// Does the manifest exist? Returns its digest, media type and size.
    pub async fn head_manifest(
        &self,
        registry: &str,
        repo: &str,
        reference: &str,
    ) -> Result<Option<(Digest, String, u64)>, ClientError> {
        Self::check_repo(repo)?;
        Reference::parse(reference).ok_or_else(|| {
            ClientError::InvalidArgument(format!("invalid reference {reference:?}"))
        })?;
        let reg = self.registry(registry).await?;
        let accept = MANIFEST_TYPES.join(", ");
        let resp = self
            .send(&reg, &Self::pull_scope(repo), true, |h, b| {
                h.head(format!("{b}/v2/{repo}/manifests/{reference}"))
                    .header("Accept", accept.clone())
            })
            .await?;
        if resp.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !resp.status().is_success() {
            return Err(self.pull_error(&reg, repo, reference, resp).await);
        }
        let h = resp.headers();
        let digest = h
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            .and_then(|d| d.parse().ok())
            .ok_or_else(|| ClientError::InvalidResponse {
                registry: registry.to_string(),
                message: "HEAD manifest without Docker-Content-Digest".into(),
            })?;
        let mt = h
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .map(|c| bare_media_type(c).to_string())
            .unwrap_or_default();
        let size = h
            .get("content-length")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        Ok(Some((digest, mt, size)))
    }

    /// Push a manifest under a tag or its digest; returns its digest.
    pub async fn put_manifest(
        &self,
        registry: &str,
        repo: &str,
        reference: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<Digest, ClientError> {
        self.put_manifest_subject(registry, repo, reference, media_type, bytes)
            .await
            .map(|(d, _)| d)
    }

    /// `put_manifest`, also saying whether the registry processed the manifest's `subject`
    /// (the distribution spec 1.1 `OCI-Subject` response header). A registry that did not
    /// lists referrers only through the referrers tag schema (`sha256-<hex>` index tags).
    pub async fn put_manifest_subject(
        &self,
        registry: &str,
        repo: &str,
        reference: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<(Digest, bool), ClientError> {
        Self::check_repo(repo)?;
        let r = Reference::parse(reference).ok_or_else(|| {
            ClientError::InvalidArgument(format!("invalid reference {reference:?}"))
        })?;
        let digest = match &r {
            Reference::Digest(d) => {
                let got = d.algorithm().digest(bytes);
                if &got != d {
                    return Err(ClientError::DigestMismatch {
                        expected: d.clone(),
                        actual: got,
                    });
                }
                got
            }
            Reference::Tag(_) => Digest::sha256(bytes),
        };
        let reg = self.registry(registry).await?;
        let body = Bytes::copy_from_slice(bytes);
        let resp = self
            .send(&reg, &Self::push_scope(repo), true, |h, b| {
                h.put(format!("{b}/v2/{repo}/manifests/{reference}"))
                    .header("Content-Type", media_type)
                    .body(body.clone())
            })
            .await?;
        if !resp.status().is_success() {
            return Err(self.push_error(&reg, repo, resp).await);
        }
        let subject = resp.headers().contains_key("oci-subject");
        Ok((digest, subject))
    }

    async fn push_error(&self, reg: &Registry, repo: &str, resp: Response) -> ClientError {
        match resp.status().as_u16() {
            // No credentials at all: say so, rather than "denied", which reads as if the
            // credentials lacked a permission.
            401 if reg.credential.is_none() => ClientError::AuthenticationRequired {
                registry: reg.host.clone(),
            },
            401 | 403 => ClientError::PushAccessDenied {
                repository: format!("{}/{repo}", reg.host),
            },
            _ => registry_error(self.pace(), &reg.host, resp).await,
        }
    }

    /// Size of a blob if the repository has it (`HEAD`); what `push` asks first, so a refusal
    /// is reported as a push's.
    pub async fn blob_exists(
        &self,
        registry: &str,
        repo: &str,
        digest: &Digest,
    ) -> Result<Option<u64>, ClientError> {
        Self::check_repo(repo)?;
        let reg = self.registry(registry).await?;
        let resp = self
            .send(&reg, &Self::pull_scope(repo), true, |h, b| {
                h.head(format!("{b}/v2/{repo}/blobs/{digest}"))
            })
            .await?;
        match resp.status() {
            StatusCode::NOT_FOUND => Ok(None),
            s if s.is_success() => Ok(Some(
                resp.headers()
                    .get("content-length")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0),
            )),
            _ => Err(self.push_error(&reg, repo, resp).await),
        }
    }

    async fn blob_request(
        &self,
        reg: &Registry,
        repo: &str,
        digest: &Digest,
        offset: u64,
    ) -> Result<Response, ClientError> {
        let resp = self
            .send(reg, &Self::pull_scope(repo), true, |h, b| {
                let rb = h.get(format!("{b}/v2/{repo}/blobs/{digest}"));
                if offset > 0 {
                    rb.header("Range", format!("bytes={offset}-"))
                } else {
                    rb
                }
            })
            .await?;
        let status = resp.status();
        if let Some(e) = unfollowed_redirect(reg, &resp) {
            return Err(e);
        }
        if status == StatusCode::NOT_FOUND {
            return Err(ClientError::BlobUnknown {
                repository: repo.to_string(),
                digest: digest.clone(),
            });
        }
        if !status.is_success() {
            return Err(self.pull_error(reg, repo, &digest.to_string(), resp).await);
        }
        if offset > 0 {
            let start = resp
                .headers()
                .get("content-range")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("bytes "))
                .and_then(|v| v.split('-').next())
                .and_then(|v| v.parse::<u64>().ok());
            if status != StatusCode::PARTIAL_CONTENT || start != Some(offset) {
                return Err(ClientError::InvalidResponse {
                    registry: reg.host.clone(),
                    message: format!("registry ignored Range bytes={offset}-"),
                });
            }
        }
        Ok(resp)
    }

    /// Stream a blob, verifying its digest at the end and resuming with
    /// `Range` requests if the connection breaks. Also returns the size the
    /// registry announced, when it did.
    ///
    /// `size` is the size the blob's descriptor gives: a registry announcing
    /// another size is refused at once, and one that sends more is cut off at
    /// the first byte beyond it, so a lying registry cannot fill the disk.
    /// Without it, only the announced `Content-Length` bounds the stream.
    pub async fn get_blob(
        &self,
        registry: &str,
        repo: &str,
        digest: &Digest,
        size: Option<u64>,
    ) -> Result<(Option<u64>, BlobStream), ClientError> {
        Self::check_repo(repo)?;
        let reg = self.registry(registry).await?;
        let resp = self.blob_request(&reg, repo, digest, 0).await?;
        let announced = resp.content_length();
        if let (Some(n), Some(want)) = (announced, size) {
            if n != want {
                return Err(ClientError::InvalidResponse {
                    registry: reg.host.clone(),
                    message: format!(
                        "blob {digest} is {n} bytes long, but its descriptor says {want}"
                    ),
                });
            }
        }
        let total = size.or(announced);
        let what = format!("blob {digest}");
        struct St {
            client: Client,
            reg: Arc<Registry>,
            repo: String,
            digest: Digest,
            what: String,
            body: Option<guard::Body>,
            hasher: Option<crate::reference::Hasher>,
            offset: u64,
            total: Option<u64>,
            retries: u32,
        }
        let st = St {
            client: self.clone(),
            body: Some(watch_body(self.pace(), &reg.host, what.clone(), resp)),
            reg,
            repo: repo.to_string(),
            digest: digest.clone(),
            what,
            hasher: Some(digest.algorithm().hasher()),
            offset: 0,
            total,
            retries: self.inner.cfg.max_resume_attempts,
        };
        let stream = futures_util::stream::try_unfold(st, |mut st| async move {
            loop {
                let Some(hasher) = st.hasher.as_mut() else {
                    return Ok(None);
                };
                let next = st.body.as_mut().expect("a response body").next().await;
                let broken = match next {
                    Some(Ok(chunk)) => {
                        if let Some(t) = st.total {
                            if st.offset + chunk.len() as u64 > t {
                                st.hasher = None;
                                return Err(ClientError::InvalidResponse {
                                    registry: st.reg.host.clone(),
                                    message: format!(
                                        "{} is longer than the {t} bytes announced: download stopped",
                                        st.what
                                    ),
                                });
                            }
                        }
                        hasher.update(&chunk);
                        st.offset += chunk.len() as u64;
                        return Ok(Some((chunk, st)));
                    }
                    // A broken connection is resumed; a stall or a refusal is final.
                    Some(Err(ClientError::Http(e))) => ClientError::Http(e),
                    Some(Err(e)) => return Err(e),
                    None if st.total.is_some_and(|t| st.offset < t) => {
                        ClientError::InvalidResponse {
                            registry: st.reg.host.clone(),
                            message: "connection closed early".into(),
                        }
                    }
                    None => {
                        let got = st.hasher.take().expect("hasher present").finish();
                        if got != st.digest {
                            return Err(ClientError::DigestMismatch {
                                expected: st.digest.clone(),
                                actual: got,
                            });
                        }
                        return Ok(None);
                    }
                };
                // Resume from where the stream broke.
                st.body = None;
                loop {
                    if st.retries == 0 {
                        return Err(broken);
                    }
                    st.retries -= 1;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    match st
                        .client
                        .blob_request(&st.reg, &st.repo, &st.digest, st.offset)
                        .await
                    {
                        Ok(r) => {
                            st.body = Some(watch_body(
                                st.client.pace(),
                                &st.reg.host,
                                st.what.clone(),
                                r,
                            ));
                            break;
                        }
                        Err(e)
                            if e.is_transient() || matches!(e, ClientError::Unreachable { .. }) =>
                        {
                            continue
                        }
                        Err(e) => return Err(e),
                    }
                }
            }
        });
        Ok((total, Box::pin(stream)))
    }

    /// [`Client::get_blob`] as an `AsyncRead`; a digest mismatch is an
    /// `InvalidData` I/O error wrapping [`ClientError::DigestMismatch`].
    pub async fn get_blob_reader(
        &self,
        registry: &str,
        repo: &str,
        digest: &Digest,
        size: Option<u64>,
    ) -> Result<(Option<u64>, impl AsyncRead + Send + Unpin), ClientError> {
        let (size, s) = self.get_blob(registry, repo, digest, size).await?;
        Ok((
            size,
            tokio_util::io::StreamReader::new(s.map_err(std::io::Error::from)),
        ))
    }

    /// Start an upload session; returns its absolute URL.
    async fn start_upload(&self, reg: &Registry, repo: &str) -> Result<Url, ClientError> {
        let resp = self
            .send(reg, &Self::push_scope(repo), true, |h, b| {
                h.post(format!("{b}/v2/{repo}/blobs/uploads/"))
                    .header("Content-Length", "0")
            })
            .await?;
        if resp.status() != StatusCode::ACCEPTED {
            return Err(self.push_error(reg, repo, resp).await);
        }
        location(reg, &resp)
    }

    /// Upload a blob with `POST` then one streaming `PUT`.
    pub async fn push_blob<R: AsyncRead + Send + 'static>(
        &self,
        registry: &str,
        repo: &str,
        digest: &Digest,
        size: Option<u64>,
        reader: R,
    ) -> Result<(), ClientError> {
        Self::check_repo(repo)?;
        let reg = self.registry(registry).await?;
        let mut url = self.start_upload(&reg, repo).await?;
        url.query_pairs_mut()
            .append_pair("digest", &digest.to_string());
        let sent = Arc::new(AtomicU64::new(0));
        let counter = sent.clone();
        let mut body = Some(reqwest::Body::wrap_stream(
            tokio_util::io::ReaderStream::with_capacity(reader, 256 << 10).inspect(move |c| {
                if let Ok(c) = c {
                    counter.fetch_add(c.len() as u64, Ordering::Relaxed);
                }
            }),
        ));
        let resp = self
            .send_counted(&reg, &Self::push_scope(repo), false, Some(sent), |h, _| {
                let mut rb = h
                    .put(url.clone())
                    .header("Content-Type", "application/octet-stream")
                    .body(body.take().expect("body sent once"));
                if let Some(n) = size {
                    rb = rb.header("Content-Length", n.to_string());
                }
                rb
            })
            .await?;
        if resp.status() != StatusCode::CREATED {
            return Err(self.push_error(&reg, repo, resp).await);
        }
        Ok(())
    }

    /// Upload a blob in `PATCH` chunks of `chunk_size` bytes, then close the
    /// session with `PUT`.
    pub async fn push_blob_chunked<R: AsyncRead + Send + Unpin>(
        &self,
        registry: &str,
        repo: &str,
        digest: &Digest,
        mut reader: R,
        chunk_size: usize,
    ) -> Result<(), ClientError> {
        Self::check_repo(repo)?;
        if chunk_size == 0 {
            return Err(ClientError::InvalidArgument("chunk size 0".into()));
        }
        let reg = self.registry(registry).await?;
        let mut url = self.start_upload(&reg, repo).await?;
        let mut offset = 0u64;
        let mut buf = vec![0u8; chunk_size];
        loop {
            let mut n = 0;
            while n < chunk_size {
                let r = reader.read(&mut buf[n..]).await?;
                if r == 0 {
                    break;
                }
                n += r;
            }
            if n == 0 {
                break;
            }
            let chunk = Bytes::copy_from_slice(&buf[..n]);
            let end = offset + n as u64 - 1;
            let resp = self
                .send(&reg, &Self::push_scope(repo), true, |h, _| {
                    h.patch(url.clone())
                        .header("Content-Type", "application/octet-stream")
                        .header("Content-Range", format!("{offset}-{end}"))
                        .header("Content-Length", n.to_string())
                        .body(chunk.clone())
                })
                .await?;
            if resp.status() != StatusCode::ACCEPTED {
                return Err(self.push_error(&reg, repo, resp).await);
            }
            url = location(&reg, &resp)?;
            offset = end + 1;
            if n < chunk_size {
                break;
            }
        }
        url.query_pairs_mut()
            .append_pair("digest", &digest.to_string());
        let resp = self
            .send(&reg, &Self::push_scope(repo), true, |h, _| {
                h.put(url.clone()).header("Content-Length", "0")
            })
            .await?;
        if resp.status() != StatusCode::CREATED {
            return Err(self.push_error(&reg, repo, resp).await);
        }
        Ok(())
    }

    /// Try to mount a blob from another repository of the same registry.
    /// `Ok(false)`: the registry would not mount it; upload it instead.
    pub async fn mount_blob(
        &self,
        registry: &str,
        repo: &str,
        from: &str,
        digest: &Digest,
    ) -> Result<bool, ClientError> {
        Self::check_repo(repo)?;
        Self::check_repo(from)?;
        let reg = self.registry(registry).await?;
        let scopes = vec![
            format!("repository:{repo}:pull,push"),
            format!("repository:{from}:pull"),
        ];
        let resp = self
            .send(&reg, &scopes, true, |h, b| {
                h.post(format!(
                    "{b}/v2/{repo}/blobs/uploads/?mount={digest}&from={from}"
                ))
                .header("Content-Length", "0")
            })
            .await?;
        match resp.status() {
            StatusCode::CREATED => Ok(true),
            StatusCode::ACCEPTED => {
                if let Ok(u) = location(&reg, &resp) {
                    let _ = self
                        .send(&reg, &scopes, false, |h, _| h.delete(u.clone()))
                        .await;
                }
                Ok(false)
            }
            _ => Err(self.push_error(&reg, repo, resp).await),
        }
    }

    /// All tags of a repository, following `Link` pagination.
    pub async fn list_tags(&self, registry: &str, repo: &str) -> Result<Vec<String>, ClientError> {
        Self::check_repo(repo)?;
        let reg = self.registry(registry).await?;
        let mut next = Some(format!("/v2/{repo}/tags/list"));
        let mut tags = Vec::new();
        while let Some(path) = next.take() {
            let resp = self
                .send(&reg, &Self::pull_scope(repo), true, |h, b| {
                    h.request(Method::GET, format!("{b}{path}"))
                })
                .await?;
            if !resp.status().is_success() {
                return Err(self.pull_error(&reg, repo, "", resp).await);
            }
            next = resp
                .headers()
                .get("link")
                .and_then(|v| v.to_str().ok())
                .and_then(|l| l.split_once('<'))
                .and_then(|(_, r)| r.split_once('>'))
                .and_then(|(p, _)| {
                    // A path, or an absolute URL on the same registry.
                    let base = Url::parse(&reg.base).ok()?;
                    let u = base.join(p).ok()?;
                    (u.origin() == base.origin() && u.path().starts_with("/v2/")).then(|| {
                        format!(
                            "{}{}",
                            u.path(),
                            u.query().map(|q| format!("?{q}")).unwrap_or_default()
                        )
                    })
                });
            let body = read_body(
                self.pace(),
                &reg.host,
                "tag list",
                resp,
                self.inner.cfg.max_manifest_size,
            )
            .await?;
            let v: serde_json::Value =
                serde_json::from_slice(&body).map_err(|e| ClientError::InvalidResponse {
                    registry: reg.host.clone(),
                    message: format!("tag list: {e}"),
                })?;
            if let Some(list) = v.get("tags").and_then(|t| t.as_array()) {
                tags.extend(list.iter().filter_map(|t| t.as_str().map(str::to_string)));
            }
        }
        Ok(tags)
    }
}

/// `url-encode` helper shared with the token form.
pub(crate) fn form_encode(s: &str) -> String {
    const SET: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~');
    percent_encoding::utf8_percent_encode(s, SET).to_string()
}

/// A redirect that reached the caller was not followed: reqwest follows only redirects to
/// http(s) URLs (and [`guard::redirect_policy`] refuses the rest with its own error).
fn unfollowed_redirect(reg: &Registry, resp: &Response) -> Option<ClientError> {
    if !resp.status().is_redirection() {
        return None;
    }
    let to = resp
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("nowhere");
    Some(ClientError::Refused {
        registry: reg.host.clone(),
        message: format!(
            "redirect to {to} not followed: only http and https redirects are followed"
        ),
    })
}

fn location(reg: &Registry, resp: &Response) -> Result<Url, ClientError> {
    let loc = resp
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| ClientError::InvalidResponse {
            registry: reg.host.clone(),
            message: "upload response without Location".into(),
        })?;
    Url::parse(&reg.base)
        .and_then(|b| b.join(loc))
        .map_err(|e| ClientError::InvalidResponse {
            registry: reg.host.clone(),
            message: format!("bad Location {loc:?}: {e}"),
        })
}

/// The first error of a JSON error body, if any, and a message. Only the
/// first 64 KiB of the body are read.
async fn read_error(pace: Pace, registry: &str, resp: Response) -> (Option<ErrorCode>, String) {
    let status = resp.status();
    let mut body = watch_body(pace, registry, "error response".into(), resp);
    let mut raw = Vec::new();
    while let Some(Ok(chunk)) = body.next().await {
        raw.extend_from_slice(&chunk);
        if raw.len() >= 64 << 10 {
            raw.truncate(64 << 10);
            break;
        }
    }
    let text = String::from_utf8_lossy(&raw).to_string();
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) {
        if let Some(e) = v.get("errors").and_then(|e| e.get(0)) {
            let code = e
                .get("code")
                .and_then(|c| c.as_str())
                .and_then(ErrorCode::parse);
            let msg = e
                .get("message")
                .and_then(|m| m.as_str())
                .map(str::to_string)
                .unwrap_or_else(|| code.map(|c| c.message().to_string()).unwrap_or_default());
            return (code, msg);
        }
        if let Some(d) = v
            .get("details")
            .or_else(|| v.get("error"))
            .and_then(|d| d.as_str())
        {
            return (None, d.to_string());
        }
    }
    let t = text.trim();
    (
        None,
        if t.is_empty() {
            status.canonical_reason().unwrap_or("error").to_string()
        } else {
            t.chars().take(300).collect()
        },
    )
}

async fn registry_error(pace: Pace, registry: &str, resp: Response) -> ClientError {
    let status = resp.status().as_u16();
    let (code, message) = read_error(pace, registry, resp).await;
    ClientError::Registry {
        registry: registry.to_string(),
        status,
        code,
        message,
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        s.push_str(": ");
        s.push_str(&c.to_string());
        src = c.source();
    }
    s
}

fn split_host_port(s: &str) -> (&str, Option<&str>) {
    if let Some(rest) = s.strip_prefix('[') {
        if let Some((h, p)) = rest.split_once(']') {
            return (h, p.strip_prefix(':'));
        }
    }
    match s.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => (h, Some(p)),
        _ => (s, None),
    }
}

fn parse_cidr(s: &str) -> Option<(IpAddr, u32)> {
    let (ip, bits) = s.split_once('/')?;
    let ip: IpAddr = ip.parse().ok()?;
    let bits: u32 = bits.parse().ok()?;
    (bits <= 32).then_some((ip, bits))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insecure_rules() {
        let c = Client::new(ClientConfig {
            insecure_registries: vec!["reg.lan:5000".into(), "10.1.0.0/16".into()],
            ..Default::default()
        })
        .unwrap();
        for yes in [
            "localhost",
            "localhost:5000",
            "127.0.0.1:5000",
            "127.9.9.9",
            "[::1]:5000",
            "reg.lan:5000",
            "10.1.2.3:443",
        ] {
            assert!(c.is_insecure(yes), "{yes}");
        }
        for no in ["docker.io", "reg.lan:5001", "10.2.0.1", "ghcr.io"] {
            assert!(!c.is_insecure(no), "{no}");
        }
    }
}
