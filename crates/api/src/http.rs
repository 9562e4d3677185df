//! The HTTP vocabulary the routes share: the response body type, errors in dockerd's
//! `{"message": …}` shape with the one mapping from engine error classes to status codes, query
//! parameters and bounded request bodies.

use berth_engine::{EngineError, ErrorClass};
use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::{Frame, Incoming, SizeHint};
use hyper::{Request, Response, StatusCode};
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::sync::mpsc;

/// The largest JSON request body accepted (create, exec, update…): far above anything a real
/// client sends, small enough that a hostile one cannot exhaust memory.
pub const MAX_JSON_BODY: usize = 10 << 20;

/// A response body: a whole buffer, or a stream fed by a task through a channel (events, logs,
/// wait, stats). Dropping the receiver — the client went away — makes the feeder's next send fail,
/// which is how a streaming task learns to stop.
pub enum Body {
    Full(Option<Bytes>),
    Stream(mpsc::Receiver<Bytes>),
}

impl Body {
    pub fn empty() -> Body {
        Body::Full(None)
    }

    pub fn from_bytes(b: impl Into<Bytes>) -> Body {
        let b = b.into();
        if b.is_empty() {
            Body::Full(None)
        } else {
            Body::Full(Some(b))
        }
    }

    /// A streaming body and the sender that feeds it.
    pub fn channel() -> (mpsc::Sender<Bytes>, Body) {
        let (tx, rx) = mpsc::channel(64);
        (tx, Body::Stream(rx))
    }
}

impl hyper::body::Body for Body {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        match self.get_mut() {
            Body::Full(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            Body::Stream(rx) => rx.poll_recv(cx).map(|o| o.map(|b| Ok(Frame::data(b)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self, Body::Full(None))
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Body::Full(None) => SizeHint::with_exact(0),
            Body::Full(Some(b)) => SizeHint::with_exact(b.len() as u64),
            Body::Stream(_) => SizeHint::default(),
        }
    }
}

pub type Resp = Response<Body>;

/// An error answered as dockerd does: a status and `{"message": "…"}`.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, message)
    }

    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, message)
    }

    pub fn into_response(self) -> Resp {
        json_response(self.status, &serde_json::json!({ "message": self.message }))
    }
}

/// The one place an engine error class becomes an HTTP status. `Canceled` has no status of its
/// own: the client that cancelled is gone, so whatever is answered is never read (dockerd's
/// 499 convention is kept for logs).
pub fn status_of(class: ErrorClass) -> StatusCode {
    match class {
        ErrorClass::NotFound => StatusCode::NOT_FOUND,
        ErrorClass::Conflict | ErrorClass::FailedPrecondition => StatusCode::CONFLICT,
        ErrorClass::InvalidArgument => StatusCode::BAD_REQUEST,
        ErrorClass::Unauthenticated => StatusCode::UNAUTHORIZED,
        ErrorClass::PermissionDenied => StatusCode::FORBIDDEN,
        ErrorClass::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorClass::Canceled => StatusCode::from_u16(499).unwrap_or(StatusCode::BAD_REQUEST),
        ErrorClass::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> ApiError {
        ApiError::new(status_of(e.class()), e.to_string())
    }
}

pub type ApiResult = Result<Resp, ApiError>;

pub fn json_response(status: StatusCode, v: &impl serde::Serialize) -> Resp {
    let mut body = serde_json::to_vec(v).unwrap_or_else(|_| b"null".to_vec());
    body.push(b'\n');
    Response::builder()
        .status(status)
        .header("Content-Type", "application/json")
        .body(Body::from_bytes(body))
        .unwrap_or_else(|_| Response::new(Body::empty()))
}

pub fn ok_json(v: &impl serde::Serialize) -> ApiResult {
    Ok(json_response(StatusCode::OK, v))
}

pub fn status_only(status: StatusCode) -> ApiResult {
    Ok(Response::builder()
        .status(status)
        .body(Body::empty())
        .unwrap_or_else(|_| Response::new(Body::empty())))
}

/// The query string's parameters; a repeated key keeps its last value, except where a route
/// reads all of them with [`Query::all`].
#[derive(Debug, Default)]
pub struct Query {
    pairs: Vec<(String, String)>,
}

impl Query {
    pub fn parse(q: Option<&str>) -> Query {
        Query {
            pairs: form_urlencoded::parse(q.unwrap_or("").as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        }
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The parameters' names, in order (repeated ones repeated).
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.pairs.iter().map(|(k, _)| k.as_str())
    }

    #[allow(dead_code)] // for routes with repeated keys (images, build)
    pub fn all(&self, key: &str) -> Vec<&str> {
        self.pairs
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// A boolean as dockerd reads it (`httputils.BoolValue`): anything but "", "0", "no",
    /// "false" and "none" is true.
    pub fn bool(&self, key: &str) -> bool {
        self.get(key).is_some_and(|v| {
            !matches!(
                v.trim().to_ascii_lowercase().as_str(),
                "" | "0" | "no" | "false" | "none"
            )
        })
    }

    /// Like [`Query::bool`], with a default when the key is absent.
    pub fn bool_or(&self, key: &str, default: bool) -> bool {
        if self.get(key).is_some() {
            self.bool(key)
        } else {
            default
        }
    }

    /// An integer parameter; a malformed one is a 400 naming it.
    pub fn int(&self, key: &str) -> Result<Option<i64>, ApiError> {
        match self.get(key) {
            None | Some("") => Ok(None),
            Some(v) => v.trim().parse().map(Some).map_err(|_| {
                ApiError::bad_request(format!(
                    "invalid value for {key}: {v:?} (expected an integer)"
                ))
            }),
        }
    }

    /// The `filters` parameter: JSON `{"key":{"value":true}}` (or the older `{"key":["value"]}`),
    /// flattened into `key=value` strings as the engine's filter parsers take them.
    pub fn filters(&self) -> Result<Vec<String>, ApiError> {
        let Some(raw) = self.get("filters").filter(|s| !s.is_empty()) else {
            return Ok(Vec::new());
        };
        let v: serde_json::Value = serde_json::from_str(raw)
            .map_err(|e| ApiError::bad_request(format!("invalid filter: {e}")))?;
        let obj = v
            .as_object()
            .ok_or_else(|| ApiError::bad_request("invalid filter: expected a JSON object"))?;
        let mut out = Vec::new();
        for (k, vals) in obj {
            match vals {
                serde_json::Value::Object(m) => {
                    for (val, on) in m {
                        if on.as_bool() != Some(false) {
                            out.push(format!("{k}={val}"));
                        }
                    }
                }
                serde_json::Value::Array(a) => {
                    for val in a {
                        match val.as_str() {
                            Some(s) => out.push(format!("{k}={s}")),
                            None => {
                                return Err(ApiError::bad_request(format!(
                                    "invalid filter: the values of {k:?} must be strings"
                                )))
                            }
                        }
                    }
                }
                _ => {
                    return Err(ApiError::bad_request(format!(
                        "invalid filter: the value of {k:?} must be an object or a list"
                    )))
                }
            }
        }
        Ok(out)
    }
}

/// Reads a request body whole, refusing one larger than `limit` with 413.
#[allow(dead_code)] // for routes with other bodies (images, build)
pub async fn read_body(req: Request<Incoming>, limit: usize) -> Result<Bytes, ApiError> {
    read_incoming(req.into_body(), limit).await
}

/// Reads a body whole, refusing one larger than `limit` with 413.
pub async fn read_incoming(body: Incoming, limit: usize) -> Result<Bytes, ApiError> {
    let limited = http_body_util::Limited::new(body, limit);
    match limited.collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("request body too large: the limit is {} MiB", limit >> 20),
        )),
        Err(e) => Err(ApiError::bad_request(format!(
            "error reading the request body: {e}"
        ))),
    }
}

/// Reads a JSON body (bounded); an empty body is `T::default()`-like `null`, which routes decide
/// about by using `Option<T>`.
pub async fn read_json<T: serde::de::DeserializeOwned>(
    req: Request<Incoming>,
) -> Result<Option<T>, ApiError> {
    read_json_body(req.into_body()).await
}

/// [`read_json`] of a body taken from its request (which may still be upgraded).
pub async fn read_json_body<T: serde::de::DeserializeOwned>(
    body: Incoming,
) -> Result<Option<T>, ApiError> {
    let bytes = read_incoming(body, MAX_JSON_BODY).await?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| ApiError::bad_request(format!("invalid JSON: {e}")))
}
