// Handlers return `ApiError` by value: it is built only on a failed request and carries the
// status, code, message, detail and headers of the response, so boxing it buys nothing.
#![allow(clippy::result_large_err)]

//! The registry server: configuration, listener, routing and authentication.

mod auth;
mod handlers;
mod http;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::error::{ErrorCode, RegistryError};
use crate::reference::is_valid_name;
use crate::storage::Storage;
use auth::{parse_basic, parse_bearer, Htpasswd, Scope, TokenStore};
use http::{ApiError, Resp};

pub(crate) use auth::Scope as TokenScope;

/// The `service` name the built-in token endpoint advertises.
pub const TOKEN_SERVICE: &str = "berth-registry";

/// Configuration of `berth registry serve`.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Address to listen on (e.g. `0.0.0.0:5000`); unused by [`spawn`].
    pub addr: SocketAddr,
    /// Storage root (created if missing).
    pub root: PathBuf,
    /// htpasswd file with bcrypt entries; enables authentication.
    pub htpasswd: Option<PathBuf>,
    /// PEM certificate chain; with `tls_key`, serves HTTPS.
    pub tls_cert: Option<PathBuf>,
    /// PEM private key.
    pub tls_key: Option<PathBuf>,
    /// Reject every write with `405 UNSUPPORTED`.
    pub read_only: bool,
    /// Allow `DELETE` of manifests, tags and blobs (otherwise `405 UNSUPPORTED`).
    pub delete_enabled: bool,
    /// Use bearer tokens from the built-in `/token` endpoint instead of Basic
    /// auth on every request. Tokens are granted after Basic auth against
    /// `htpasswd` at `/token` (anonymous token requests get no access). Without
    /// `htpasswd` anyone would get a token for any scope, pushes included, so
    /// that is refused at startup unless `read_only` (a public pull-only
    /// registry).
    pub token_auth: bool,
    /// Lifetime of issued bearer tokens.
    pub token_ttl: Duration,
    /// Largest manifest accepted, in bytes (`413` above it).
    pub max_manifest_size: usize,
}

impl ServerConfig {
    /// A plain HTTP, unauthenticated, writable configuration.
    pub fn new(addr: SocketAddr, root: impl Into<PathBuf>) -> ServerConfig {
        ServerConfig {
            addr,
            root: root.into(),
            htpasswd: None,
            tls_cert: None,
            tls_key: None,
            read_only: false,
            delete_enabled: false,
            token_auth: false,
            token_ttl: Duration::from_secs(300),
            max_manifest_size: 4 << 20,
        }
    }
}

pub(crate) struct State {
    pub(crate) cfg: ServerConfig,
    pub(crate) storage: Storage,
    htpasswd: Option<Htpasswd>,
    tokens: TokenStore,
    pub(crate) tls: bool,
    pub(crate) local_addr: SocketAddr,
    pub(crate) uploads: handlers::Uploads,
}

/// A server running in the background (see [`spawn`]).
pub struct RunningServer {
    addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl RunningServer {
    /// The address the server is bound to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
    /// `http://addr` or `https://addr`.
    pub fn url(&self, tls: bool) -> String {
        format!("{}://{}", if tls { "https" } else { "http" }, self.addr)
    }
    /// Stop accepting connections and wait for the accept loop to end.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        let _ = self.task.await;
    }
}

/// Serve a registry on `cfg.addr` until the process ends.
pub async fn serve(cfg: ServerConfig) -> Result<(), RegistryError> {
    let listener = TcpListener::bind(cfg.addr).await.map_err(|e| {
        let hint = if e.kind() == std::io::ErrorKind::AddrInUse {
            " (another process listens there: choose another address with --addr \
                 HOST:PORT; port 0 picks a free one)"
        } else {
            ""
        };
        RegistryError::io(format!("binding {}{hint}", cfg.addr), e)
    })?;
    let state = prepare(cfg, &listener)?;
    let (_tx, rx) = watch::channel(false);
    accept_loop(listener, state, rx).await;
    Ok(())
}

/// Serve a registry on an already-bound listener in a background task and
/// return at once; the returned handle tells the bound address.
pub async fn spawn(
    listener: TcpListener,
    cfg: ServerConfig,
) -> Result<RunningServer, RegistryError> {
    let state = prepare(cfg, &listener)?;
    let addr = state.0.local_addr;
    let (tx, rx) = watch::channel(false);
    let task = tokio::spawn(accept_loop(listener, state, rx));
    Ok(RunningServer {
        addr,
        shutdown: tx,
        task,
    })
}

type Acceptor = Option<tokio_rustls::TlsAcceptor>;

fn prepare(
    cfg: ServerConfig,
    listener: &TcpListener,
) -> Result<(Arc<State>, Acceptor), RegistryError> {
    if cfg.token_auth && cfg.htpasswd.is_none() && !cfg.read_only {
        return Err(RegistryError::Config(
            "--token-auth without --htpasswd would hand anyone a token to push: give --htpasswd FILE (bcrypt entries) to say who may have tokens, or add --read-only for a public pull-only registry".into(),
        ));
    }
    let storage = Storage::open(&cfg.root)?;
    let htpasswd = cfg.htpasswd.as_deref().map(Htpasswd::load).transpose()?;
    let acceptor = match (&cfg.tls_cert, &cfg.tls_key) {
        (Some(c), Some(k)) => Some(crate::tls::acceptor(c, k, None)?),
        (None, None) => None,
        _ => {
            return Err(RegistryError::Config(
                "tls_cert and tls_key must be given together".into(),
            ))
        }
    };
    let local_addr = listener
        .local_addr()
        .map_err(|e| RegistryError::io("reading listener address", e))?;
    let state = State {
        tokens: TokenStore::new(cfg.token_ttl),
        tls: acceptor.is_some(),
        cfg,
        storage,
        htpasswd,
        local_addr,
        uploads: Default::default(),
    };
    Ok((Arc::new(state), acceptor))
}

async fn accept_loop(
    listener: TcpListener,
    (state, acceptor): (Arc<State>, Acceptor),
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let (stream, _peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(_) => {
                    // Out of file descriptors and the like: back off briefly.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = shutdown.changed() => return,
        };
        let _ = stream.set_nodelay(true);
        let state = state.clone();
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req| {
                let state = state.clone();
                async move { Ok::<_, std::convert::Infallible>(handle(state, req).await) }
            });
            let builder = hyper::server::conn::http1::Builder::new();
            match acceptor {
                Some(a) => {
                    if let Ok(tls) = a.accept(stream).await {
                        let _ = builder.serve_connection(TokioIo::new(tls), svc).await;
                    }
                }
                None => {
                    let _ = builder.serve_connection(TokioIo::new(stream), svc).await;
                }
            }
        });
    }
}

/// What a request addresses under `/v2/`.
#[derive(Debug)]
pub(crate) enum Route {
    Base,
    Catalog,
    Tags { name: String },
    Manifest { name: String, reference: String },
    Blob { name: String, digest: String },
    UploadStart { name: String },
    Upload { name: String, id: String },
    Referrers { name: String, digest: String },
}

impl Route {
    fn name(&self) -> Option<&str> {
        match self {
            Route::Base | Route::Catalog => None,
            Route::Tags { name }
            | Route::Manifest { name, .. }
            | Route::Blob { name, .. }
            | Route::UploadStart { name }
            | Route::Upload { name, .. }
            | Route::Referrers { name, .. } => Some(name),
        }
    }
}

/// Parse a request path. Segments are percent-decoded one by one, so an
/// encoded `/` can never create a path component, and the name is checked
/// against the spec's grammar.
pub(crate) fn parse_route(path: &str) -> Result<Route, ApiError> {
    let not_found = || {
        ApiError::new(ErrorCode::NameUnknown)
            .status(404)
            .msg("no such endpoint")
    };
    let rest = path.strip_prefix("/v2").ok_or_else(not_found)?;
    if rest.is_empty() || rest == "/" {
        return Ok(Route::Base);
    }
    let rest = rest.strip_prefix('/').ok_or_else(not_found)?;
    let segs: Vec<String> = rest
        .split('/')
        .map(|s| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8()
                .map(|c| c.into_owned())
        })
        .collect::<Result<_, _>>()
        .map_err(|_| ApiError::new(ErrorCode::NameInvalid))?;
    let n = segs.len();
    if n == 1 && segs[0] == "_catalog" {
        return Ok(Route::Catalog);
    }
    let name_of = |k: usize| -> Result<String, ApiError> {
        if k == 0 {
            return Err(not_found());
        }
        let name = segs[..k].join("/");
        if !is_valid_name(&name) {
            return Err(
                ApiError::new(ErrorCode::NameInvalid).detail(serde_json::json!({ "name": name }))
            );
        }
        Ok(name)
    };
    let seg = |i: usize| segs.get(i).map(String::as_str);
    if n >= 3 && seg(n - 2) == Some("tags") && seg(n - 1) == Some("list") {
        return Ok(Route::Tags {
            name: name_of(n - 2)?,
        });
    }
    if n >= 4 && seg(n - 3) == Some("blobs") && seg(n - 2) == Some("uploads") {
        let name = name_of(n - 3)?;
        return Ok(if segs[n - 1].is_empty() {
            Route::UploadStart { name }
        } else {
            Route::Upload {
                name,
                id: segs[n - 1].clone(),
            }
        });
    }
    if n >= 3 && seg(n - 2) == Some("blobs") && seg(n - 1) == Some("uploads") {
        return Ok(Route::UploadStart {
            name: name_of(n - 2)?,
        });
    }
    if n >= 3 {
        let last = segs[n - 1].clone();
        match seg(n - 2) {
            Some("manifests") => {
                return Ok(Route::Manifest {
                    name: name_of(n - 2)?,
                    reference: last,
                })
            }
            Some("blobs") => {
                return Ok(Route::Blob {
                    name: name_of(n - 2)?,
                    digest: last,
                })
            }
            Some("referrers") => {
                return Ok(Route::Referrers {
                    name: name_of(n - 2)?,
                    digest: last,
                })
            }
            _ => {}
        }
    }
    Err(not_found())
}

/// What the authenticated caller may do.
pub(crate) enum Access {
    All,
    Scoped(Vec<Scope>),
}

impl Access {
    pub(crate) fn can(&self, name: &str, action: &str) -> bool {
        match self {
            Access::All => true,
            Access::Scoped(s) => s.iter().any(|s| s.allows("repository", name, action)),
        }
    }
}

fn is_write(m: &Method) -> bool {
    !(m == Method::GET || m == Method::HEAD || m == Method::OPTIONS)
}

async fn handle(state: Arc<State>, req: Request<Incoming>) -> Resp {
    let head = req.method() == Method::HEAD;
    let mut resp = match route_request(&state, req).await {
        Ok(r) => r,
        Err(e) => e.into_response(head),
    };
    resp.headers_mut().insert(
        "Docker-Distribution-API-Version",
        hyper::header::HeaderValue::from_static("registry/2.0"),
    );
    resp
}

async fn route_request(state: &Arc<State>, req: Request<Incoming>) -> Result<Resp, ApiError> {
    let path = req.uri().path().to_string();
    if path == "/token" && state.cfg.token_auth {
        return handlers::token(state, req).await;
    }
    if path != "/v2" && !path.starts_with("/v2/") {
        return Err(ApiError::new(ErrorCode::Unsupported)
            .status(404)
            .msg("not found"));
    }
    let route = parse_route(&path)?;
    let access = authenticate(state, &req, &route)?;
    if state.cfg.read_only && is_write(req.method()) {
        return Err(ApiError::new(ErrorCode::Unsupported).msg("the registry is read-only"));
    }
    handlers::dispatch(state, req, route, access).await
}

fn realm_host(state: &State, req: &Request<Incoming>) -> String {
    req.headers()
        .get(hyper::header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| !h.is_empty() && !h.contains(['"', ' ', '/']))
        .map(str::to_string)
        .unwrap_or_else(|| state.local_addr.to_string())
}

fn authenticate(state: &State, req: &Request<Incoming>, route: &Route) -> Result<Access, ApiError> {
    let Some(ht) = state.htpasswd.as_ref().filter(|_| !state.cfg.token_auth) else {
        if !state.cfg.token_auth {
            return Ok(Access::All);
        }
        return authenticate_bearer(state, req, route);
    };
    let header = req
        .headers()
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if let Some((u, p)) = header.and_then(parse_basic) {
        if ht.verify(&u, &p) {
            return Ok(Access::All);
        }
    }
    Err(ApiError::new(ErrorCode::Unauthorized).header(
        "WWW-Authenticate",
        format!("Basic realm=\"{TOKEN_SERVICE}\""),
    ))
}

fn authenticate_bearer(
    state: &State,
    req: &Request<Incoming>,
    route: &Route,
) -> Result<Access, ApiError> {
    let action = if is_write(req.method()) {
        "push"
    } else {
        "pull"
    };
    let (needed, wanted): (Option<(&str, &str, &str)>, Option<String>) = match route {
        Route::Base => (None, None),
        Route::Catalog => (
            Some(("registry", "catalog", "*")),
            Some("registry:catalog:*".to_string()),
        ),
        r => {
            let name = r.name().expect("repository route");
            let actions = if action == "push" {
                "pull,push"
            } else {
                "pull"
            };
            (
                Some(("repository", name, action)),
                Some(format!("repository:{name}:{actions}")),
            )
        }
    };
    let token = req
        .headers()
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(parse_bearer);
    let mut error = None;
    if let Some(t) = token {
        match state.tokens.lookup(t) {
            Some(scopes) => {
                let ok = match needed {
                    None => true,
                    Some((k, n, a)) => scopes.iter().any(|s| s.allows(k, n, a)),
                };
                if ok {
                    return Ok(Access::Scoped(scopes));
                }
                error = Some("insufficient_scope");
            }
            None => error = Some("invalid_token"),
        }
    }
    let scheme = if state.tls { "https" } else { "http" };
    let mut challenge = format!(
        "Bearer realm=\"{scheme}://{}/token\",service=\"{TOKEN_SERVICE}\"",
        realm_host(state, req)
    );
    if let Some(w) = wanted {
        challenge.push_str(&format!(",scope=\"{w}\""));
    }
    if let Some(e) = error {
        challenge.push_str(&format!(",error=\"{e}\""));
    }
    // A token without the needed scope also gets 401 (not 403), so clients
    // request a new token for the advertised scope, as distribution does.
    Err(ApiError::new(ErrorCode::Unauthorized).header("WWW-Authenticate", challenge))
}

pub(crate) fn token_grants(state: &State, user_ok: bool, scopes: Vec<Scope>) -> Vec<Scope> {
    if state.htpasswd.is_some() && !user_ok {
        return Vec::new();
    }
    scopes
        .into_iter()
        .filter(|s| match s.kind.as_str() {
            "repository" => is_valid_name(&s.name),
            "registry" => s.name == "catalog",
            _ => false,
        })
        .collect()
}

pub(crate) fn status(code: u16) -> StatusCode {
    StatusCode::from_u16(code).expect("valid status")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        assert!(matches!(parse_route("/v2/").unwrap(), Route::Base));
        assert!(matches!(
            parse_route("/v2/_catalog").unwrap(),
            Route::Catalog
        ));
        match parse_route("/v2/a/b/manifests/latest").unwrap() {
            Route::Manifest { name, reference } => {
                assert_eq!(name, "a/b");
                assert_eq!(reference, "latest");
            }
            r => panic!("{r:?}"),
        }
        assert!(matches!(
            parse_route("/v2/a/blobs/uploads/").unwrap(),
            Route::UploadStart { .. }
        ));
        assert!(matches!(
            parse_route("/v2/a/blobs/uploads").unwrap(),
            Route::UploadStart { .. }
        ));
        assert!(matches!(
            parse_route("/v2/a/blobs/uploads/abc").unwrap(),
            Route::Upload { .. }
        ));
        assert!(matches!(
            parse_route("/v2/a/tags/list").unwrap(),
            Route::Tags { .. }
        ));
        assert!(matches!(
            parse_route("/v2/a/referrers/sha256:x").unwrap(),
            Route::Referrers { .. }
        ));
        for bad in [
            "/v2/../manifests/x",
            "/v2/a/..%2f..%2fetc/manifests/x",
            "/v2/a%2F..%2F..%2Fb/manifests/x",
            "/v2/A/manifests/x",
            "/v2//manifests/x",
        ] {
            assert!(parse_route(bad).is_err(), "{bad}");
        }
    }
}
