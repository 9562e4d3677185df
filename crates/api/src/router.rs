//! Connections and routing: every request is split into method, API version and path segments,
//! then offered to the route modules in turn (each matches `(method, segments)` itself);
//! what none takes is dockerd's 404 "page not found".

use crate::http::{ApiError, Body, Query, Resp};
use crate::listen::Listener;
use crate::routes;
use crate::state::State;
use berth_registry::tls::TlsAcceptor;
use hyper::body::Incoming;
use hyper::header::HeaderValue;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

pub const API_VERSION: (u32, u32) = (1, 50);
pub const MIN_API_VERSION: (u32, u32) = (1, 24);

/// One request, taken apart for the routes.
pub struct Call {
    pub method: Method,
    /// The path's segments after the version prefix, percent-decoded.
    pub segs: Vec<String>,
    pub query: Query,
    /// The API version the client asked for (the prefix), or the newest.
    #[allow(dead_code)] // read by routes whose answer depends on the version
    pub version: (u32, u32),
    /// The request itself, for its headers and body.
    pub req: Request<Incoming>,
}

/// What a route module does with a call: answers it, or passes it on.
pub enum Routed {
    Done(Result<Resp, ApiError>),
    Next(Call),
}

pub async fn accept_loop(
    listener: Listener,
    state: Arc<State>,
    mut stop: watch::Receiver<bool>,
    in_flight: Arc<()>,
) {
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            accepted = accept(&listener) => {
                match accepted {
                    Ok(Conn::Unix(s)) => spawn_conn(s, &state, &stop, &in_flight),
                    Ok(Conn::Tcp(s)) => {
                        let _ = s.set_nodelay(true);
                        match &listener {
                            Listener::Tcp(_, _, Some(tls)) => {
                                spawn_tls_conn(s, tls.clone(), &state, &stop, &in_flight)
                            }
                            _ => spawn_conn(s, &state, &stop, &in_flight),
                        }
                    }
                    // EMFILE and friends: back off a little instead of spinning.
                    Err(_) => tokio::time::sleep(std::time::Duration::from_millis(50)).await,
                }
            }
        }
    }
}

enum Conn {
    Unix(tokio::net::UnixStream),
    Tcp(tokio::net::TcpStream),
}

async fn accept(l: &Listener) -> std::io::Result<Conn> {
    match l {
        Listener::Unix(l, _) => l.accept().await.map(|(s, _)| Conn::Unix(s)),
        Listener::Tcp(l, _, _) => l.accept().await.map(|(s, _)| Conn::Tcp(s)),
    }
}

/// How long a client has for the TLS handshake, and for each request's headers (an idle
/// keep-alive connection is closed after it): a thousand silent clients cost sockets, never
/// the server.
const HANDSHAKE_AND_HEADER_TIMEOUT: Duration = Duration::from_secs(30);

fn spawn_tls_conn(
    stream: tokio::net::TcpStream,
    tls: TlsAcceptor,
    state: &Arc<State>,
    stop: &watch::Receiver<bool>,
    in_flight: &Arc<()>,
) {
    let (state, stop, in_flight) = (state.clone(), stop.clone(), in_flight.clone());
    tokio::spawn(async move {
        // A failed handshake (no client certificate, one another CA signed, plain HTTP) is
        // the client's to report; the server just drops the connection.
        if let Ok(Ok(s)) =
            tokio::time::timeout(HANDSHAKE_AND_HEADER_TIMEOUT, tls.accept(stream)).await
        {
            spawn_conn(s, &state, &stop, &in_flight);
        }
    });
}

fn spawn_conn<S>(stream: S, state: &Arc<State>, stop: &watch::Receiver<bool>, in_flight: &Arc<()>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let state = state.clone();
    let mut stop = stop.clone();
    let guard = in_flight.clone();
    tokio::spawn(async move {
        let _guard = guard;
        let svc = hyper::service::service_fn(move |req| {
            let state = state.clone();
            async move { Ok::<_, Infallible>(handle(state, req).await) }
        });
        let conn = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(HANDSHAKE_AND_HEADER_TIMEOUT)
            .serve_connection(TokioIo::new(stream), svc)
            .with_upgrades();
        tokio::pin!(conn);
        tokio::select! {
            _ = conn.as_mut() => {}
            _ = stop.changed() => {
                // Finish the request in progress, take no new one on this connection.
                conn.as_mut().graceful_shutdown();
                let _ = conn.await;
            }
        }
    });
}

/// Parses `/v1.NN` into a version.
fn parse_version(seg: &str) -> Option<(u32, u32)> {
    let v = seg.strip_prefix('v')?;
    let (a, b) = v.split_once('.')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

pub async fn handle(state: Arc<State>, req: Request<Incoming>) -> Resp {
    let mut resp = match route(&state, req).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    };
    let h = resp.headers_mut();
    h.insert("Api-Version", HeaderValue::from_static("1.50"));
    h.insert("Docker-Experimental", HeaderValue::from_static("false"));
    h.insert("Ostype", HeaderValue::from_static("linux"));
    if let Ok(v) =
        HeaderValue::from_str(&format!("berth/{} (linux)", berth_engine::system::VERSION))
    {
        h.insert("Server", v);
    }
    resp
}

async fn route(state: &Arc<State>, req: Request<Incoming>) -> Result<Resp, ApiError> {
    let raw: Vec<&str> = req
        .uri()
        .path()
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    let (version, rest) = match raw.first().and_then(|s| parse_version(s)) {
        Some(v) => (v, &raw[1..]),
        None => (API_VERSION, &raw[..]),
    };
    if version > API_VERSION {
        return Err(ApiError::bad_request(format!(
            "client version {}.{} is too new. Maximum supported API version is {}.{}",
            version.0, version.1, API_VERSION.0, API_VERSION.1
        )));
    }
    if version < MIN_API_VERSION {
        return Err(ApiError::bad_request(format!(
            "client version {}.{} is too old. Minimum supported API version is {}.{}, please \
             upgrade your client to a newer version",
            version.0, version.1, MIN_API_VERSION.0, MIN_API_VERSION.1
        )));
    }
    let segs: Vec<String> = rest
        .iter()
        .map(|s| {
            percent_decode(s).ok_or_else(|| {
                ApiError::bad_request(format!("invalid path segment {s:?}: bad percent-encoding"))
            })
        })
        .collect::<Result<_, _>>()?;
    let call = Call {
        method: req.method().clone(),
        query: Query::parse(req.uri().query()),
        segs,
        version,
        req,
    };
    let call = match routes::system::route(state, call).await {
        Routed::Done(r) => return r,
        Routed::Next(c) => c,
    };
    let call = match routes::containers::route(state, call).await {
        Routed::Done(r) => return r,
        Routed::Next(c) => c,
    };
    let call = match routes::exec::route(state, call).await {
        Routed::Done(r) => return r,
        Routed::Next(c) => c,
    };
    let call = match routes::images::route(state, call).await {
        Routed::Done(r) => return r,
        Routed::Next(c) => c,
    };
    let call = match routes::build::route(state, call).await {
        Routed::Done(r) => return r,
        Routed::Next(c) => c,
    };
    let call = match routes::volumes::route(state, call).await {
        Routed::Done(r) => return r,
        Routed::Next(c) => c,
    };
    let call = match routes::networks::route(state, call).await {
        Routed::Done(r) => return r,
        Routed::Next(c) => c,
    };
    Err(not_found(&call))
}

/// dockerd's answer for a path no route serves.
fn not_found(_call: &Call) -> ApiError {
    ApiError::not_found("page not found")
}

fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// A plain-text response (the ping's `OK`).
pub fn text(status: StatusCode, body: &'static str) -> Resp {
    Response::builder()
        .status(status)
        .header("Content-Type", "text/plain; charset=utf-8")
        .body(Body::from_bytes(body))
        .unwrap_or_else(|_| Response::new(Body::empty()))
}
